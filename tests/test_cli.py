"""The gnnsys command: flag validation, help defaults, info, one-line errors."""

import os
import re
import subprocess
import sys

import pytest

from gnnsys.cli import build_parser, main, validate_train_args


def _error(capsys, argv):
    """stderr of a refused command line: exit 2 and one line (no usage block, no traceback)."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("--help`)\n"), err
    return err


def test_info(capsys):
    from importlib import metadata

    import torch

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"torch {torch.__version__}\n" in out
    assert f"numba {metadata.version('numba')} (threads: " in out
    assert "cuda usable: " + ("yes" if torch.cuda.is_available() else "no") in out
    if torch.cuda.is_available():
        assert f"{torch.cuda.device_count()} GPU(s): {torch.cuda.get_device_name(0)}" in out


def test_info_reads_cuda_without_torch(monkeypatch, tmp_path):
    # torch's build record (torch/version.py) and the driver (libcuda) decide the CUDA line.
    import ctypes
    import importlib.util

    from gnnsys import cli

    pkg = tmp_path / "torch"
    pkg.mkdir()
    fake = type("Spec", (), {"submodule_search_locations": [str(pkg)]})()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: fake)
    (pkg / "version.py").write_text("cuda: Optional[str] = '12.8'\nhip = None\n")
    assert cli._torch_cuda_build() == "12.8"
    monkeypatch.setattr(ctypes, "CDLL", lambda name: (_ for _ in ()).throw(OSError(name)))
    assert "12.8, but no CUDA driver found" in cli._cuda_line("2.9.0+cu128")

    class Driver:  # two GPUs, the second's name unreadable
        def cuInit(self, flags):
            return 0

        def cuDeviceGetCount(self, ref):
            ref._obj.value = 2
            return 0

        def cuDeviceGet(self, ref, i):
            ref._obj.value = i
            return 0

        def cuDeviceGetName(self, buf, n, dev):
            if dev.value:
                return 1
            buf.value = b"NVIDIA H200"
            return 0

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Driver())
    line = cli._cuda_line("2.9.0+cu128")
    assert line == "cuda usable: yes, 2 GPU(s): NVIDIA H200, device 1 (torch built for CUDA 12.8)"
    (pkg / "version.py").write_text("cuda: Optional[str] = None\n")
    assert cli._cuda_line("2.9.0+cpu") == "cuda usable: no (torch 2.9.0+cpu is a CPU build)"


def _imported_after(code):
    """The heavy modules that running ``code`` in a fresh interpreter imported."""
    probe = (
        f"{code}\nimport sys\n"
        "print(sorted(m for m in ('torch', 'torch_geometric', 'triton', 'numba') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_info_and_help_import_neither_torch_pyg_triton_nor_numba():
    # `gnnsys info` and `gnnsys --help` must stay fast: these imports alone take seconds.
    assert _imported_after("from gnnsys.cli import main; main(['info'])") == "[]"
    for argv in (["--help"], ["train", "--help"]):
        code = f"from gnnsys.cli import main\ntry:\n    main({argv})\nexcept SystemExit:\n    pass"
        assert _imported_after(code) == "[]", argv


def _wait_policy_after_info(env_value):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    code = "import os\nfrom gnnsys.cli import main\nmain(['info'])\n"
    code += "print('POLICY', os.environ.get('OMP_WAIT_POLICY'))"
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.split("POLICY ")[-1].strip()


def test_the_command_has_openmp_threads_sleep_while_they_wait_unless_told_otherwise():
    # set before torch loads OpenMP (which reads it once): the loader's threads need the
    # cores that spinning OpenMP waits would take
    assert _wait_policy_after_info(None) == "PASSIVE"
    assert _wait_policy_after_info("ACTIVE") == "ACTIVE"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "cora"], "--dataset must be one of synthetic:tiny"),
        (["--dataset", "folder:"], "give the path after folder:"),
        (["--dataset", "folder:/nonexistent/x"], "/nonexistent/x is not a folder"),
        (["--dataset", "pyg:/nonexistent/g.pt"], "/nonexistent/g.pt is not a file"),
        (["--pipe-stages", "2"], "--pipe-stages applies to --mode hybrid"),
        (["--mode", "pipe", "--nproc", "2", "--pipe-stages", "2"], "one stage per process"),
        (["--mode", "pipe", "--nproc", "4"], "4 pipeline stages need at least 4 layers, got"),
        (
            ["--mode", "hybrid", "--nproc", "4", "--pipe-stages", "4", "--layers", "2"],
            "lower --pipe-stages",
        ),
        (["--fanout", "10,5", "--layers", "3"], "--fanout has 2 values but --layers is 3"),
        (["--fanout", "10,x"], "comma-separated integers"),
        (["--fanout", "10,,5"], "comma-separated integers such as 15,10,5, got '10,,5'"),
        (["--fanout", "10,5,"], "comma-separated integers"),
        (["--fanout", " "], "--fanout is empty"),
        (["--fanout", "10,-2"], "1..2147483647 or -1"),
        (["--fanout", "99999999999999999999"], "1..2147483647 or -1"),
        (["--lr", "inf"], "--lr must be a finite number >= 0"),
        (["--weight-decay", "nan"], "--weight-decay must be a finite number >= 0"),
        (["--dropout", "1"], "--dropout must be below 1"),
        (["--seed", "-1"], "--seed must be in 0..4294967295"),
        (["--seed", "99999999999999999999999"], "--seed must be in 0..4294967295"),
        (["--out", "/proc/gnnsys-out"], "--out /proc/gnnsys-out cannot be created"),
        (["--nproc", "0"], "--nproc must be >= 1"),
        (["--epochs", "-1"], "--epochs must be >= 1"),
        (["--lr", "abc"], "--lr must be a number"),
        (["--dataset", "ogbn-arxiv"], "needs --root"),
        (["--dataset", "ogbn-arxiv", "--root", "/nonexistent/x"], "is not a folder"),
        (["--root", "/tmp"], "only used with ogbn-"),
        (["--ogb-node-order", "degree"], "--ogb-node-order is for --dataset ogbn-papers100M"),
        (["--ogb-node-order", "hot"], "invalid choice"),
        (["--nproc", "2"], "need --mode ddp"),
        (["--features", "gpu"], "--features gpu needs --device cuda"),
        (["--model", "mlp"], "invalid choice"),
        (["--layer-weight-decay", "0.01"], "--layer-weight-decay applies to --mode pipe"),
        (["--mode", "pipe", "--layer-weight-decay", "-1"], "--layer-weight-decay must be"),
        (["--mode", "ddp", "--nnodes", "2", "--node-rank", "2"], "--node-rank must be in 0..1"),
        (["--model", "gat", "--hidden", "30"], "--model gat has 4 heads of --hidden/4"),
        (["--dataset", "ogbn-mag"], "--dataset ogbn-mag needs --root"),
        (["--eval", "sampled", "--mode", "pipe", "--nproc", "2"], "--eval sampled is for"),
        (["--eval", "sampled", "--dataset", "synthetic:tiny-mag"], "--eval sampled is for"),
        (["--eval", "everything"], "invalid choice"),
        (["--feature-cache", "1G"], "--feature-cache needs --features unified"),
        (["--profile"], "--profile applies to --mode pipe, hybrid or graph"),
        (["--net-gbps", "10"], "--net-gbps applies to --mode pipe, hybrid or graph"),
        (["--mode", "pipe", "--nproc", "2", "--net-latency-us", "5"], "needs --net-gbps"),
        (["--mode", "graph", "--nproc", "2", "--chunks", "auto"], "--chunks auto applies to"),
        (["--mode", "pipe", "--nproc", "2", "--chunks", "many"], "--chunks must be an integer"),
        (["--mode", "pipe", "--nproc", "2", "--net-gbps", "fast"], "--net-gbps must be a number"),
        (
            ["--features", "unified", "--feature-cache", "lots"],
            "--feature-cache 'lots' is not a size like",
        ),
        (
            ["--features", "unified", "--feature-cache", "-5M"],  # a value, not an option
            "--feature-cache '-5M' is not a size like",
        ),
        # heterogeneous datasets: HeteroSAGE (minibatch, ddp, dist), host features; the rest
        # is refused
        (
            ["--dataset", "synthetic:tiny-mag", "--mode", "pipe", "--nproc", "2"],
            "--mode pipe: --dataset synthetic:tiny-mag is heterogeneous (HeteroSAGE); "
            "use --mode minibatch, ddp or dist",
        ),
        (
            ["--dataset", "synthetic:mini-mag", "--mode", "ddp", "--nproc", "2", "--model", "gat"],
            "--model gat: --dataset synthetic:mini-mag is heterogeneous",
        ),
        (
            ["--dataset", "synthetic:mag", "--model", "gcnii"],
            "--model gcnii: --dataset synthetic:mag is heterogeneous (HeteroSAGE); "
            "use --model sage",
        ),
        (
            ["--dataset", "synthetic:tiny-mag", "--features", "unified"],
            "--features unified: --dataset synthetic:tiny-mag is heterogeneous",
        ),
        # a flag the mode does not read is refused, not ignored
        (
            ["--mode", "pipe", "--nproc", "2", "--fanout", "5,5"],
            "--fanout applies to --mode "
            "minibatch, ddp or dist: --mode pipe trains on the whole graph each step; its depth",
        ),
        (["--mode", "graph", "--nproc", "2", "--batch-size", "64"], "--batch-size applies to"),
        (["--mode", "hybrid", "--nproc", "2", "--max-batches", "3"], "--max-batches applies to"),
        (["--mode", "pipe", "--nproc", "2", "--threads", "2"], "one torch thread per process"),
        (
            ["--mode", "pipe", "--nproc", "2", "--features", "unified"],
            "--features unified applies to --mode minibatch or ddp: --mode pipe reads",
        ),
        (
            ["--mode", "graph", "--nproc", "2", "--feature-dtype", "bfloat16"],
            "--feature-dtype bfloat16 applies to --mode minibatch or ddp",
        ),
        (
            ["--mode", "ddp", "--nproc", "2", "--chunks", "8"],
            "--chunks 8 applies to --mode pipe or hybrid (GNNPipe's chunks), not --mode ddp",
        ),
        (["--chunks", "2"], "--chunks 2 applies to --mode pipe or hybrid"),
        (["--threads", "100000"], "--threads 100000: at most"),
        (["--mode", "ddp", "--nproc", "5000"], "--nproc 5000: at most"),
        (["--out", ""], "--out is an empty path"),  # Path("") is the working directory
        (["--mode", "ddp", "--master-port", "99999"], "--master-port must be in 1..65535"),
        (["--mode", "ddp", "--master-port", "0"], "--master-port must be in 1..65535"),
        (["--mode", "ddp", "--master-port", "http"], "--master-port must be an integer"),
    ],
)
def test_bad_flags(capsys, argv, message):
    assert message in _error(capsys, ["train", *argv])


def test_out_that_is_a_file(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    err = _error(capsys, ["train", "--dataset", "synthetic:tiny", "--out", str(tmp_path / "f")])
    assert "is a file, not a folder" in err


def test_resume_of_a_folder_that_does_not_exist(capsys, tmp_path):
    err = _error(capsys, ["train", "--resume", "--out", str(tmp_path / "absent")])
    assert "absent does not exist: there is no run to continue" in err


def _train_parser():
    parser = build_parser()
    return parser, parser._subparsers._group_actions[0].choices["train"]


# Defaults that are not a value but a rule, as the help words them.
_WORDED = {
    "--root": "none",
    "--layer-weight-decay": "--weight-decay",
    "--threads": "all cores",
    "--max-batches": "none, the whole epoch",
    "--net-gbps": "none, the real network",
    "--part-dir": "none",
    "--ogb-node-order": "none, i.e. degree",
    "--master-port": "on one node, a free port the launcher binds itself (torchrun --standalone); "
    "on several, 29517",
}


def test_full_graph_modes_checkpoint_every_10_epochs_by_default():
    parser, train = _train_parser()
    for argv, want in ((["train"], 1), (["train", "--mode", "pipe", "--nproc", "2"], 10),
                       (["train", "--mode", "graph", "--nproc", "2", "--checkpoint-every", "3"],
                        3)):  # fmt: skip
        args = parser.parse_args(argv)
        validate_train_args(args, train)
        assert args.checkpoint_every == want, argv


def test_help_states_the_defaults_the_run_uses():
    """Every flag's help ends in `(default: X)` and X is what a run without the flag uses,
    after validate_train_args fills in the flag-dependent ones."""
    parser, train = _train_parser()
    args = parser.parse_args(["train"])
    validate_train_args(args, train)
    hybrid = parser.parse_args(["train", "--mode", "hybrid", "--nproc", "4"])
    validate_train_args(hybrid, train)
    checked = []
    for action in train._actions:
        flag = next((o for o in action.option_strings if o.startswith("--")), None)
        if flag in (None, "--help", "--resume", "--_worker"):
            continue
        m = re.search(r"\(default: ([^()]*(?:\([^()]*\))?[^()]*)\)$", action.help or "")
        assert m, f"{flag}: its help does not end in (default: ...): {action.help!r}"
        stated = m.group(1)
        value = getattr(hybrid if flag == "--pipe-stages" else args, action.dest)
        if flag in _WORDED:
            assert value is None and stated == _WORDED[flag], (flag, stated, value)
        elif flag == "--layers":
            assert stated == f"one per --fanout value, {value}", (flag, stated, value)
        elif isinstance(value, list):
            assert stated.startswith(",".join(map(str, value)) + ","), (flag, stated, value)
        else:
            assert stated == str(value), (flag, stated, value)
        checked.append(flag)
    assert len(checked) == 39, checked
    assert args.fanout == [10, 5] and args.layers == 2 and hybrid.pipe_stages == 2
    # and the text users read says the same
    out = subprocess.run([sys.executable, "-m", "gnnsys.cli", "train", "--help"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "(default: 10,5, or 10 per layer with --layers)" in " ".join(out.split())


def test_train_errors_are_one_line_not_a_traceback(tmp_path):
    # A corrupt checkpoint under --resume: one line naming the file and what to do, exit 1.
    (tmp_path / "checkpoint.pt").write_bytes(b"\x80\x02garbage")
    out = subprocess.run(
        [sys.executable, "-m", "gnnsys.cli", "train", "--dataset", "synthetic:tiny",
         "--resume", "--out", str(tmp_path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("gnnsys train: error: checkpoint ")
    assert str(tmp_path / "checkpoint.pt") in lines[0] and "is corrupt" in lines[0]
    assert "start again without --resume" in lines[0]


def test_cuda_requested_without_gpu(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    assert "CUDA is not usable" in _error(capsys, ["train", "--device", "cuda"])


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "gnnsys.cli", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for flag in ("--dataset", "--fanout", "--mode", "--nproc", "--features", "--resume"):
        assert flag in out


@pytest.mark.slow  # four interpreters importing torch: 37 s on the busy 2-core box
def test_bench_scripts_exist_and_parse_their_defaults():
    from pathlib import Path

    from gnnsys.cli import BENCHES

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    for script, *defaults in BENCHES.values():
        out = subprocess.run(
            [sys.executable, str(folder / script), "--help"], capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr[-500:]
        for flag in defaults:
            if flag.startswith("--"):
                assert flag in out.stdout, (script, flag)


def test_help_and_import_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, contextlib, io\n"
        "import gnnsys, gnnsys.cli as c\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        c.main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('torch', 'numba', 'torch_geometric', 'triton') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_more_cuda_processes_than_gpus_is_a_flag_error(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    err = _error(capsys, ["train", "--device", "cuda", "--mode", "ddp", "--nproc", "2"])
    assert "NCCL needs one GPU per process and this machine has 1" in err


def test_sampler_flag_applies_to_homogeneous_minibatch_and_ddp(capsys):
    err = _error(capsys, ["train", "--mode", "pipe", "--nproc", "2", "--sampler", "labor"])
    assert "--sampler applies to --mode minibatch or ddp, not pipe" in err
    err = _error(capsys, ["train", "--dataset", "synthetic:tiny-mag", "--sampler", "labor"])
    assert "--sampler labor: --dataset synthetic:tiny-mag is heterogeneous" in err
    err = _error(capsys, ["train", "--sampler", "fast"])
    assert "invalid choice: 'fast'" in err


def test_data_memory_budget_must_be_a_size(capsys):
    with pytest.raises(SystemExit):
        main(["data", "papers-tiny", "/tmp/never", "--memory-budget", "lots"])
    assert "--memory-budget 'lots' is not a size like '8G'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "papers-tiny", "/tmp/never", "--node-order", "random"])
    assert "invalid choice: 'random'" in capsys.readouterr().err


def test_data_out_folder_problems_are_one_line(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    cases = [
        ("", 2, "the output folder is an empty path"),
        (str(afile), 2, f"{afile} exists and is not a folder"),
        (str(afile / "sub"), 2, f"cannot create {afile / 'sub'}: {afile} is a file"),
        (str(tmp_path / "full"), 2, f"{tmp_path / 'full'} already exists (pass --overwrite"),
    ]
    for out, rc, message in cases:
        assert main(["data", "tiny", out]) == rc
        err = capsys.readouterr().err
        assert err.startswith("gnnsys data: error: ") and message in err, err
        assert err.count("\n") == 1
    assert afile.read_text() == "" and (tmp_path / "full" / "x").exists()  # nothing replaced


def test_data_overwrite_replaces_only_a_dataset_folder(capsys, tmp_path, monkeypatch):
    # --overwrite deletes the old folder: one that is not a dataset folder (a typo'd path, a
    # home folder) or that holds the working directory is refused, and left as it was.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    assert main(["data", "tiny", str(tmp_path / "mine"), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "holds no meta.json or graph.json or x.npy or src.npy" in err, err
    assert "not a dataset folder" in err and err.count("\n") == 1
    assert (tmp_path / "mine" / "thesis.tex").exists()
    assert main(["data", "tiny", str(tmp_path / "d")]) == 0
    (tmp_path / "d" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "d" / "sub")
    assert main(["data", "tiny", str(tmp_path / "d"), "--overwrite"]) == 2
    # the path as the user gave it, as `gnnsys partition` shows it (graph_io.check_replaceable)
    assert f": {tmp_path / 'd'} holds the working directory" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d" / "sub").rmdir()
    (tmp_path / "empty").mkdir()
    for out in ("d", "empty"):  # a dataset folder, an empty folder: replaced
        assert main(["data", "tiny", str(tmp_path / out), "--overwrite"]) == 0
        assert (tmp_path / out / "meta.json").is_file()


def test_data_memory_budget_too_small_is_a_flag_error(capsys, tmp_path):
    assert main(["data", "papers-tiny", str(tmp_path / "p"), "--memory-budget", "1K"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gnnsys data: error: --memory-budget: memory_budget 1024 bytes is too")
    assert not (tmp_path / "p").exists()


def test_data_papers_node_order(capsys, tmp_path):
    import json

    assert main(["data", "papers-tiny", str(tmp_path / "h")]) == 0
    assert main(["data", "papers-tiny", str(tmp_path / "g"), "--node-order", "given"]) == 0
    capsys.readouterr()
    for name, order in (("h", "degree"), ("g", "given")):
        meta = json.loads((tmp_path / name / "meta.json").read_text())
        assert meta["node_order"] == order
        assert (tmp_path / name / "orig_ids.npy").exists() == (order == "degree")


def test_partition_writes_a_folder_and_prints_one_json_line(capsys, tmp_path, monkeypatch):
    import json

    from gnnsys.distributed import check_parts

    out = tmp_path / "parts"
    argv = ["partition", "synthetic:tiny", "--parts", "2", "--method", "random", "--out", str(out)]
    assert main([*argv, "--seed", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    summary = json.loads(lines[0])
    assert (summary["parts"], summary["method"], summary["seed"], summary["dataset"]) == (
        2, "random", 3, "tiny")  # fmt: skip
    assert sum(summary["part_sizes"]) == summary["num_nodes"] > 0
    assert len(summary["halo_sizes"]) == 2 and summary["edge_cut"] > 0
    assert summary["seconds"] >= 0 and summary["load_seconds"] >= 0
    assert summary["bytes"] == sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    assert check_parts(out, 2)["halo_sizes"] == summary["halo_sizes"]
    # an existing folder: one line naming it, exit 1; --overwrite replaces it
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gnnsys partition: error: "), err
    assert f"{out} already exists" in err and "--overwrite" in err
    assert main([*argv, "--overwrite"]) == 0
    capsys.readouterr()
    # metis asked for without pymetis: one line, exit 1
    import gnnsys.pipeline_parallel.partition as vp

    monkeypatch.setattr(vp, "_has_pymetis", lambda: False)
    metis = ["partition", "synthetic:tiny", "--parts", "2", "--out", str(tmp_path / "m")]
    assert main([*metis, "--method", "metis"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs pymetis" in err, err


def test_partition_typed_dataset(capsys, tmp_path):
    """A typed dataset partitions through the CLI too (format version 2); --mode dist takes the
    folder (HeteroSAGE) and refuses, in one line, a --dataset that is not its dataset."""
    import json

    out = tmp_path / "mag"
    argv = ["partition", "synthetic:tiny-mag", "--parts", "2", "--method", "random"]
    assert main([*argv, "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dataset"] == "tiny-mag" and sum(summary["part_sizes"]) == 7577
    parser, train = _train_parser()
    dist = ["train", "--mode", "dist", "--part-dir", str(out), "--nproc", "2"]
    args = parser.parse_args([*dist, "--dataset", "synthetic:tiny-mag"])
    validate_train_args(args, train)  # accepted: the partition's own dataset
    err = _error(capsys, [*dist, "--dataset", "synthetic:tiny"])
    assert "--dataset synthetic:tiny is homogeneous but " in err
    assert "holds a typed partition of tiny-mag" in err, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["synthetic:tiny", "--out", "x"], "the following arguments are required: --parts"),
        (["synthetic:tiny", "--parts", "2"], "the following arguments are required: --out"),
        (["synthetic:tiny", "--parts", "0", "--out", "x"], "--parts must be >= 1, got 0"),
        (["synthetic:tiny", "--parts", "2", "--out", "x", "--method", "kahip"],
         "invalid choice: 'kahip'"),
        (["ogbn-arxiv", "--parts", "2", "--out", "x"], "ogbn-arxiv needs --root"),
        (["synthetic:tiny", "--parts", "2", "--out", "x", "--root", "."],
         "--root is only used with ogbn-* datasets"),
        (["folder:/nonexistent/f", "--parts", "2", "--out", "x"], "/nonexistent/f is not a folder"),
        (["pyg:/nonexistent/g.pt", "--parts", "2", "--out", "x"],
         "/nonexistent/g.pt is not a file"),
        (["cora", "--parts", "2", "--out", "x"], "must be one of synthetic:tiny"),
    ],
)  # fmt: skip
def test_partition_bad_flags(capsys, argv, message):
    assert message in _error(capsys, ["partition", *argv])


def test_partition_out_under_a_file_or_unwritable_is_one_line(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    err = _error(capsys, ["partition", "synthetic:tiny", "--parts", "2", "--out", str(afile / "p")])
    assert f"--out: cannot create {afile / 'p'}: {afile} is a file" in err
    err = _error(capsys, ["partition", "synthetic:tiny", "--parts", "2", "--out", ""])
    assert "--out: the output folder is an empty path" in err
    # a folder nobody may create in, root included (the library's OSError, as one line)
    if not os.path.isdir("/proc/self"):
        pytest.skip("needs Linux /proc: a folder where even root cannot create files")
    out = "/proc/gnnsys-test-partition"
    rc = main(["partition", "synthetic:tiny", "--parts", "2", "--out", out])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith(f"gnnsys partition: error: cannot write {out}: "), err
    assert err.count("\n") == 1, err


def test_a_default_value_given_explicitly_is_not_refused():
    # "given" means "differs from the default": restating a default changes nothing
    _, train = _train_parser()
    args = train.parse_args(["--mode", "pipe", "--nproc", "2", "--batch-size", "1024"])
    validate_train_args(args, train)
    assert args.batch_size == 1024 and args.mode == "pipe"


def test_ctrl_c_is_one_line_and_exit_130(capsys, monkeypatch, tmp_path):
    import gnnsys.cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(gnnsys.cli, "cmd_train", interrupted)
    out = str(tmp_path / "run")
    assert main(["train", "--dataset", "synthetic:tiny", "--out", out]) == 130
    err = capsys.readouterr().err
    assert err.strip() == (
        f"gnnsys train: interrupted; `--resume --out {out}` continues from its last "
        "checkpoint, if any"
    )


def test_python_dash_m_gnnsys_is_the_cli():
    proc = subprocess.run([sys.executable, "-m", "gnnsys", "train", "--lr", "x"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "--lr must be a number" in proc.stderr


def test_sweep_removes_only_empty_log_folders_of_dead_launchers(tmp_path):
    import os

    from gnnsys.cli import sweep_dead_log_dirs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid names no process
    gone = tmp_path / f"gnnsys-torchrun-{dead.pid}-abc"
    (gone / "none_x" / "attempt_0" / "0").mkdir(parents=True)  # torchrun's empty tree
    kept_file = tmp_path / f"gnnsys-torchrun-{dead.pid}-def"
    (kept_file / "none_y").mkdir(parents=True)
    (kept_file / "none_y" / "stdout.log").write_text("a redirected worker's output\n")
    live = tmp_path / f"gnnsys-torchrun-{os.getpid()}-ghi"  # a launcher still running
    live.mkdir()
    other = tmp_path / "gnnsys-torchrun-notapid-jkl"
    other.mkdir()
    assert sweep_dead_log_dirs(str(tmp_path)) == [gone.name]
    assert not gone.exists()
    assert kept_file.exists() and live.exists() and other.exists()


def test_torchrun_rendezvous_is_standalone_on_one_node_without_a_port():
    import argparse

    from gnnsys.cli import DEFAULT_MASTER_PORT, _rendezvous_flags

    def flags(**kw):
        base = dict(nnodes=1, node_rank=0, master_addr="127.0.0.1", master_port=None)
        return _rendezvous_flags(argparse.Namespace(**{**base, **kw}))

    assert flags() == ["--standalone"]  # torchrun's agent binds a free port itself
    assert flags(master_port=29999) == ["--nnodes=1", "--node-rank=0", "--master-addr=127.0.0.1",
                                        "--master-port=29999"]  # fmt: skip
    assert flags(nnodes=2, node_rank=1, master_addr="10.0.0.1")[-1] == (
        f"--master-port={DEFAULT_MASTER_PORT}"
    )
    assert build_parser().parse_args(["train", "--mode", "ddp"]).master_port is None
