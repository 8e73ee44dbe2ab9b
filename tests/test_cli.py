"""The gnnsys command: flag validation, info, and (once data and loaders exist) training runs."""

import subprocess
import sys

import pytest

from gnnsys.cli import main


def _error(capsys, argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "numba" in out and "cuda usable" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "cora"], "invalid choice"),
        (["--fanout", "10,5", "--layers", "3"], "--fanout has 2 values but --layers is 3"),
        (["--fanout", "10,x"], "comma-separated integers"),
        (["--fanout", "10,-2"], ">= 1 or -1"),
        (["--nproc", "0"], "--nproc must be >= 1"),
        (["--epochs", "-1"], "--epochs must be >= 1"),
        (["--lr", "abc"], "--lr must be a number"),
        (["--dataset", "ogbn-arxiv"], "needs --root"),
        (["--dataset", "ogbn-arxiv", "--root", "/nonexistent/x"], "is not a folder"),
        (["--root", "/tmp"], "only used with ogbn-"),
        (["--nproc", "2"], "need --mode ddp"),
        (["--features", "gpu"], "--features gpu needs --device cuda"),
        (["--model", "mlp"], "invalid choice"),
        (["--layer-weight-decay", "0.01"], "--layer-weight-decay applies to --mode pipe"),
        (["--mode", "pipe", "--layer-weight-decay", "-1"], "--layer-weight-decay must be"),
        (["--mode", "ddp", "--nnodes", "2", "--node-rank", "2"], "--node-rank must be in 0..1"),
    ],
)
def test_bad_flags(capsys, argv, message):
    assert message in _error(capsys, ["train", *argv])


def test_resume_without_checkpoint(capsys, tmp_path):
    err = _error(capsys, ["train", "--resume", "--out", str(tmp_path)])
    assert "no checkpoint" in err


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
