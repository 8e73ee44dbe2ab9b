"""`gnnsys train` end to end on `tiny`: outputs, resume after SIGKILL, config checks, DDP."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gnnsys.cli import main
from gnnsys.trainer import TrainError, read_metrics

TINY = ["train", "--dataset", "synthetic:tiny", "--batch-size", "64", "--hidden", "32"]


def _cli(*argv):
    return [sys.executable, "-m", "gnnsys.cli", *argv]


def test_outputs_are_written_and_parse(tmp_path):
    assert main([*TINY, "--epochs", "2", "--lr-schedule", "cosine", "--out", str(tmp_path)]) == 0
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["lr"] for r in rows] == pytest.approx([0.01, 0.005])  # cosine over 2 epochs
    for key in (
        "loss",
        "train_acc",
        "val_acc",
        "test_acc",
        "batches_per_s",
        "seconds",
        "peak_memory_mb",
    ):
        assert key in rows[-1]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["dataset"] == "synthetic:tiny" and config["fanout"] == [10, 5]
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "checkpoint.pt").is_file()
    # trained beyond chance on 2 epochs of tiny
    assert rows[-1]["test_acc"] > 0.3


def test_resume_refuses_another_model(tmp_path):
    main([*TINY, "--epochs", "1", "--out", str(tmp_path)])
    with pytest.raises(TrainError, match="model: checkpoint 'sage' vs now 'gcn'"):
        main([*TINY, "--epochs", "2", "--model", "gcn", "--resume", "--out", str(tmp_path)])


def test_sigkill_mid_run_then_resume(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    argv = [*TINY, "--epochs", "4", "--batch-size", "32", "--out", str(tmp_path)]
    proc = subprocess.Popen(
        _cli(*argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and len(read_metrics(metrics)) < 1:
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_metrics(metrics)
    done_at_kill = len(before)
    assert 1 <= done_at_kill < 4, "the run must be killed after epoch 1 and before the end"
    subprocess.run(_cli(*argv, "--resume"), env=env, check=True, capture_output=True)
    rows = read_metrics(metrics)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    # at most one epoch lost: every row written before the kill but the last is kept as it was
    assert rows[: done_at_kill - 1] == before[: done_at_kill - 1]
    ckpt_epoch = __import__("torch").load(tmp_path / "checkpoint.pt", weights_only=False)["epoch"]
    assert ckpt_epoch == 4


def _run_group(cmd, timeout):
    """(returncode, stderr) of ``cmd`` in its own session; on timeout the whole group (the
    torchrun launcher and its ranks) is killed, so nothing outlives the test."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, err


def _free_port() -> int:
    import socket

    with socket.socket() as sock:  # a fixed port collides with a leftover or parallel run
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_two_processes_match_one(tmp_path):
    common = [*TINY, "--epochs", "3", "--checkpoint-every", "0"]
    one = tmp_path / "one"
    two = tmp_path / "two"
    subprocess.run(_cli(*common, "--out", str(one)), check=True, capture_output=True)
    argv = [*common, "--mode", "ddp", "--nproc", "2", "--master-port", str(_free_port())]
    rc, err = _run_group(_cli(*argv, "--out", str(two)), timeout=300)
    assert rc == 0, err[-2000:]
    acc_one = read_metrics(Path(one) / "metrics.jsonl")[-1]["test_acc"]
    acc_two = read_metrics(Path(two) / "metrics.jsonl")[-1]["test_acc"]
    assert abs(acc_one - acc_two) < 0.1, (acc_one, acc_two)


def test_pipe_mode_through_the_cli(tmp_path, capsys):
    argv = ["train", "--dataset", "synthetic:tiny", "--mode", "pipe", "--nproc", "2",
            "--model", "gcnii", "--layers", "4", "--hidden", "16", "--epochs", "2",
            "--weight-decay", "5e-4", "--layer-weight-decay", "0.01", "--lr-schedule", "cosine",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["bytes"]["activation"] > 0
    assert (tmp_path / "curves.png").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["layer_weight_decay"] == 0.01
    out = capsys.readouterr().out
    best = max(rows, key=lambda r: r["val_acc"])
    assert f"final test accuracy: {rows[-1]['test_acc']:.4f}" in out
    assert f"test accuracy at best validation: {best['test_acc']:.4f} (epoch {best['epoch']}" in out


def test_pipe_mode_flag_checks(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--mode", "hybrid", "--nproc", "3", "--pipe-stages", "2"])
    assert "not a multiple of --pipe-stages 2" in capsys.readouterr().err
