"""gnnsys.distributed.task: `gnnsys train --mode dist` trains on the batches of `--mode ddp`,
each rank holding only its part; its flags are checked before anything launches."""

import json
import os
import subprocess
import sys

import pytest

from gnnsys.cli import build_parser, validate_train_args
from gnnsys.datasets import synthetic
from gnnsys.distributed import partition
from gnnsys.distributed.task import only_own_part_open


def _metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _train(tmp_path, name, *argv):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "gnnsys.cli", "train", "--epochs", "2", "--seed", "3",
           "--master-port", str(29600 + len(name)), "--out", str(tmp_path / name), *argv]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return _metrics(tmp_path / name), res.stdout


@pytest.mark.slow
def test_dist_trains_on_the_batches_of_ddp(tmp_path):
    """Two machines holding one part each train exactly as two DDP processes holding all."""
    folder = tmp_path / "parts"
    partition(synthetic("tiny", seed=3), 2, folder, method="random", seed=3)
    # (with the halo cache: cached rows are the owners' values, so the batches are unchanged)
    dist_rows, out = _train(tmp_path, "dist", "--mode", "dist", "--part-dir", str(folder),
                            "--nnodes", "2", "--nproc-per-node", "1", "--halo-cache", "halo")  # fmt: skip
    ddp_rows, _ = _train(tmp_path, "ddp", "--mode", "ddp", "--nproc", "2",
                         "--dataset", "synthetic:tiny")  # fmt: skip
    assert [r["loss"] for r in dist_rows] == pytest.approx([r["loss"] for r in ddp_rows], abs=1e-6)
    assert [r["train_acc"] for r in dist_rows] == [r["train_acc"] for r in ddp_rows]
    # sampled evaluation over the parts: a real accuracy, well above chance (8 classes)
    assert dist_rows[-1]["test_acc"] > 0.3
    assert "evaluates by sampling" in out
    assert "halo cache" in out


def test_isolation_check_sees_other_parts(tmp_path):
    folder = tmp_path / "parts"
    partition(synthetic("tiny"), 2, folder, method="random")
    assert only_own_part_open(folder, 0) == []
    with open(folder / "part-0001" / "x.npy", "rb"):
        assert only_own_part_open(folder, 0) == [str((folder / "part-0001" / "x.npy").resolve())]
        assert only_own_part_open(folder, 1) == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--mode", "dist"], "--mode dist needs --part-dir DIR"),
        (["--part-dir", "x"], "--part-dir applies to --mode dist"),
        (["--halo-cache", "halo"], "--halo-cache applies to --mode dist"),
        (["--mode", "dist", "--part-dir", "{parts}", "--halo-cache", "-1"], "must be >= 0"),
        (["--mode", "dist", "--part-dir", "{parts}", "--halo-cache", "all"], "or 'halo'"),
        (["--mode", "dist", "--part-dir", "{missing}"], "--part-dir: "),
        (["--mode", "dist", "--part-dir", "{parts}", "--nproc", "3"], "do not split evenly"),
        (
            ["--mode", "dist", "--part-dir", "{parts}", "--nproc", "2", "--model", "gcn"],
            "--mode dist trains --model sage",
        ),  # fmt: skip
        (
            ["--mode", "dist", "--part-dir", "{parts}", "--nproc", "2", "--features", "unified"],
            "--features host",
        ),  # fmt: skip
    ],
)
def test_bad_dist_flags(tmp_path, capsys, argv, message):
    folder = tmp_path / "parts"
    partition(synthetic("tiny"), 2, folder, method="random")
    argv = [a.format(parts=folder, missing=tmp_path / "none") for a in argv]
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    with pytest.raises(SystemExit):
        validate_train_args(parser.parse_args(["train", *argv]), train)
    assert message in capsys.readouterr().err
