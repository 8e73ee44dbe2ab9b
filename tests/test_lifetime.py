"""gnnsys._lifetime: a child started through it, and every rank of `gnnsys train`, ends when
the process that started it is killed outright (SIGKILL: no cleanup code runs)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")


def _alive(pid: int) -> bool:
    """Running (a zombie, waiting for a reaper, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _gone_within(pids, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def _env(extra_path: Path) -> dict:
    root = Path(__file__).resolve().parents[1]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(extra_path), str(root)])}


def test_a_bound_child_dies_with_its_killed_parent(tmp_path):
    (tmp_path / "sleeper.py").write_text("import time\ntime.sleep(60)\n")
    parent_code = textwrap.dedent(
        """
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-m", "gnnsys._lifetime", str(os.getpid()),
                                  "sleeper"])
        print(child.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE,
                              text=True, env=_env(tmp_path))  # fmt: skip
    try:
        child = int(parent.stdout.readline())
        time.sleep(1.0)  # the child has armed its signal and is sleeping
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _gone_within([child], 10.0)
    finally:
        parent.kill()


def test_a_child_whose_parent_is_already_gone_exits():
    code = "from gnnsys._lifetime import die_with_parent; die_with_parent(1 << 30); print('ran')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_env(Path(".")), timeout=60)  # fmt: skip
    assert out.returncode == 1 and "ran" not in out.stdout


@pytest.mark.slow  # a 2-rank pipe run and a 2-rank ddp run, killed: ~40 s
@pytest.mark.parametrize("mode", ["pipe", "ddp"])
def test_killing_gnnsys_train_leaves_no_rank_behind(tmp_path, mode):
    cmd = [sys.executable, "-m", "gnnsys.cli", "train", "--dataset", "synthetic:tiny", "--mode",
           mode, "--nproc", "2", "--epochs", "100000", "--out", str(tmp_path / "run")]  # fmt: skip
    scratch = tmp_path / "tmp"  # the launcher's temporary folders, to look at after the kill
    scratch.mkdir()
    env = {**_env(tmp_path), "TMPDIR": str(scratch)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)  # fmt: skip
    try:
        for line in proc.stdout:  # training has started: every rank is up
            if line.startswith("epoch 2"):
                break
        children = [int(p) for p in subprocess.run(
            ["pgrep", "-g", str(proc.pid)], capture_output=True, text=True
        ).stdout.split() if int(p) != proc.pid]  # fmt: skip
        assert children
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert _gone_within(children, 20.0), [p for p in children if _alive(p)]
        if mode == "ddp":  # torchrun's log folder outlived the launcher; the next one sweeps it
            from gnnsys.cli import sweep_dead_log_dirs

            left = [p.name for p in scratch.iterdir() if p.name.startswith("gnnsys-torchrun-")]
            assert [n.split("-")[2] for n in left] == [str(proc.pid)]
            assert sweep_dead_log_dirs(str(scratch)) == left
            assert not any(scratch.glob("gnnsys-torchrun-*"))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group, test or not


def test_launcher_gone_reads_the_launchers_pid(monkeypatch):
    from gnnsys import _lifetime

    monkeypatch.setenv(_lifetime.LAUNCHER_PID_ENV, str(os.getpid()))
    assert not _lifetime.launcher_gone()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid names no process
    monkeypatch.setenv(_lifetime.LAUNCHER_PID_ENV, str(dead.pid))
    assert _lifetime.launcher_gone()  # whoever this process's parent is now (a subreaper)
    monkeypatch.delenv(_lifetime.LAUNCHER_PID_ENV)
    assert _lifetime.launcher_gone() == (os.getppid() == 1)


def test_the_bound_module_and_its_children_see_the_launcher_pid(tmp_path):
    (tmp_path / "show.py").write_text(
        "import os, subprocess, sys\n"
        "print(os.getpid(), os.environ['GNNSYS_LAUNCHER_PID'])\n"
        "subprocess.run([sys.executable, '-c', "
        "'import os; print(os.getppid(), os.environ[\"GNNSYS_LAUNCHER_PID\"])'])\n"
    )
    out = subprocess.run([sys.executable, "-m", "gnnsys._lifetime", str(os.getpid()), "show"],
                         capture_output=True, text=True, env=_env(tmp_path), timeout=60)  # fmt: skip
    (pid, env1), (ppid, env2) = [line.split() for line in out.stdout.split("\n")[:2]]
    assert pid == env1 == ppid == env2  # a rank's parent is the process named


def test_skip_exit_collection_freezes_what_is_alive_and_the_exit_stays_clean():
    # In a child: freezing is for a process about to end, never for this test process.
    code = textwrap.dedent(
        """
        import gc
        from gnnsys._lifetime import skip_exit_collection
        rows = [[i] for i in range(1000)]
        skip_exit_collection()
        print(gc.get_freeze_count() >= len(rows))  # unflushed: the exit still flushes it
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_skip_exit_collection_leaves_triton_processes_alone():
    # Triton's nanobind extension would report the frozen instances as leaks at exit.
    pytest.importorskip("triton")
    code = textwrap.dedent(
        """
        import triton
        from gnnsys._lifetime import skip_exit_collection
        print(skip_exit_collection())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert "leaked" not in out.stderr
