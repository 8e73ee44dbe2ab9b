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
    # (no --master-port: one launcher, torchrun --standalone binds a free port itself; a fixed
    # one collided when two tests with names of one length ran at once)
    cmd = [sys.executable, "-m", "gnnsys.cli", "train", "--epochs", "2", "--seed", "3",
           "--out", str(tmp_path / name), *argv]  # fmt: skip
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


@pytest.mark.slow
def test_hetero_dist_trains_on_the_batches_of_ddp(tmp_path):
    """A typed partition: two machines train HeteroSAGE exactly as two DDP processes holding
    the whole heterogeneous graph (the PyG loader over the parts' stores gives its batches)."""
    folder = tmp_path / "parts"
    partition(synthetic("tiny-mag", seed=3), 2, folder, method="random", seed=3)
    small = ["--dataset", "synthetic:tiny-mag", "--hidden", "16", "--batch-size", "64",
             "--max-batches", "3"]  # fmt: skip
    dist_rows, out = _train(tmp_path, "hetero-dist", *small, "--mode", "dist", "--part-dir",
                            str(folder), "--nnodes", "2", "--nproc-per-node", "1",
                            "--halo-cache", "halo")  # fmt: skip
    ddp_rows, _ = _train(tmp_path, "hetero-ddp", *small, "--mode", "ddp", "--nproc", "2")
    assert [r["loss"] for r in dist_rows] == pytest.approx([r["loss"] for r in ddp_rows], abs=1e-5)
    assert [r["train_acc"] for r in dist_rows] == [r["train_acc"] for r in ddp_rows]
    assert "HeteroSAGE x2 (to_hetero GraphSAGE), part 0 of 2, halo cache" in out
    assert "evaluates by sampling" in out and 0 <= dist_rows[-1]["test_acc"] <= 1


def _other_run(folder, tmp_path):
    """part-0001 replaced by the part of another partitioning run of the same graph."""
    import shutil

    partition(synthetic("tiny-mag"), 2, tmp_path / "other", method="random", seed=5)
    shutil.rmtree(folder / "part-0001")
    shutil.copytree(tmp_path / "other" / "part-0001", folder / "part-0001")


def _untargeted(tmp_path):
    """A typed partition of a Dataset over a typed graph: no target node type."""
    import torch

    from gnnsys.datasets import Dataset
    from gnnsys.graph import Graph

    g = Graph.from_hetero({("a", "to", "b"): torch.tensor([[0, 1], [0, 0]]),
                           ("b", "back", "a"): torch.tensor([[0], [1]])}, {"a": 2, "b": 1})  # fmt: skip
    ds = Dataset(name="typed", graph=g, x=torch.arange(6.0).view(3, 2),
                 y=torch.tensor([5, 6, 7]), train_idx=torch.tensor([0]),
                 val_idx=torch.tensor([1]), test_idx=torch.tensor([2]), num_classes=8)  # fmt: skip
    partition(ds, 2, tmp_path / "untargeted", method="random")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--part-dir", "{mag}", "--dataset", "synthetic:tiny"],
         "--dataset synthetic:tiny is homogeneous but {mag} holds a typed partition of tiny-mag"),
        (["--part-dir", "{mag}", "--dataset", "synthetic:mini-mag"],
         "--dataset synthetic:mini-mag: {mag} holds a typed partition of tiny-mag"),
        (["--part-dir", "{tiny}", "--dataset", "synthetic:tiny-mag"],
         "--dataset synthetic:tiny-mag is heterogeneous but {tiny} holds a homogeneous "
         "partition of tiny"),
        (["--part-dir", "{mag}", "--nproc", "3"], "do not split evenly"),
        (["--part-dir", "{mag}", "--other-run"], "comes from another partitioning run"),
        (["--part-dir", "{untargeted}"], "without a target node type"),
        (["--part-dir", "{mag}", "--feature-dtype", "bfloat16"], "--feature-dtype float32"),
        (["--part-dir", "{mag}", "--root", "."], "--mode dist reads --part-dir"),
        (["--part-dir", "{mag}", "--model", "gat"], "--model gat: --dataset"),
    ],
)  # fmt: skip
def test_bad_typed_dist_input(tmp_path, capsys, argv, message):
    """Typed partitions in --mode dist: a --dataset that is not the partition's, parts that do
    not fit the ranks or come from two runs, flags that do not apply: one line each, before
    anything launches."""
    mag, tiny = tmp_path / "mag", tmp_path / "tiny"
    partition(synthetic("tiny-mag"), 2, mag, method="random")
    partition(synthetic("tiny"), 2, tiny, method="random")
    if "--other-run" in argv:
        argv = [a for a in argv if a != "--other-run"]
        _other_run(mag, tmp_path)
    if "{untargeted}" in argv:
        _untargeted(tmp_path)
    if "gat" in argv:  # the heterogeneous flag checks apply with --mode dist too
        argv = [*argv, "--dataset", "synthetic:tiny-mag", "--hidden", "16"]
    paths = dict(mag=mag, tiny=tiny, untargeted=tmp_path / "untargeted")
    argv = [a.format(**paths) for a in argv]
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    args = parser.parse_args(["train", "--mode", "dist", "--nproc", "2", *argv])
    with pytest.raises(SystemExit):
        validate_train_args(args, train)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(**paths) in err, err


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
