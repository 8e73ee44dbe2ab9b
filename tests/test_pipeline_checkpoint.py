"""gnnsys.pipeline_parallel.checkpoint: per-rank files, the manifest that commits an epoch, and
a run killed mid-epoch that resumes as if it had never stopped."""

import json

import pytest
import torch

from gnnsys.checkpoint import CorruptCheckpointError
from gnnsys.datasets import rmat_dataset
from gnnsys.pipeline_parallel.checkpoint import (
    MANIFEST,
    commit,
    committed_rows,
    latest_epoch,
    load_rank_state,
    rank_file,
    save_rank_state,
)
from gnnsys.pipeline_parallel.launch import RankFailure, run

MODEL = {"kind": "gcnii", "hidden": 8, "num_layers": 4}


def _state(v):
    return {"params": {"w": torch.full((2, 2), float(v))}}


def test_an_epoch_counts_once_every_rank_wrote_it_and_rank_0_committed(tmp_path):
    assert latest_epoch(tmp_path) is None
    for r in range(2):
        save_rank_state(tmp_path, 1, r, _state(r))
    commit(tmp_path, 1, 2)
    save_rank_state(tmp_path, 2, 0, _state(9))  # killed before rank 1 wrote epoch 2
    assert latest_epoch(tmp_path, 2) == 1
    assert torch.equal(load_rank_state(tmp_path, 1, 1)["params"]["w"], torch.ones(2, 2))
    for r in range(2):
        save_rank_state(tmp_path, 3, r, _state(3))
    commit(tmp_path, 3, 2)  # removes every other epoch's files
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == [
        rank_file(tmp_path, 3, 0).name,
        rank_file(tmp_path, 3, 1).name,
    ]
    assert latest_epoch(tmp_path) == 3


def test_the_manifest_carries_the_rows_it_covers(tmp_path):
    # What a resume fills metrics.jsonl from when a kill came between the commit and the row.
    save_rank_state(tmp_path, 1, 0, _state(0))
    assert committed_rows(tmp_path) == []  # no manifest yet
    commit(tmp_path, 1, 1)
    assert committed_rows(tmp_path) == []  # none given (as manifests written before rows)
    rows = [{"epoch": 1, "loss": 0.5, "val_acc": float("nan"), "breakdown": [{"c": 1.0}]}]
    commit(tmp_path, 1, 1, rows)
    assert committed_rows(tmp_path) == [{**rows[0], "val_acc": None}]  # strict JSON, as rows
    assert latest_epoch(tmp_path, 1) == 1
    commit(tmp_path, 1, 1, [{"epoch": 1, "x": object()}])  # unserialisable: left out, no error
    assert committed_rows(tmp_path) == [] and latest_epoch(tmp_path) == 1


def test_bad_manifests_and_rank_files(tmp_path):
    for r in range(2):
        save_rank_state(tmp_path, 1, r, _state(r))
    commit(tmp_path, 1, 2)
    with pytest.raises(ValueError, match="was written by 2 ranks; this run has 4"):
        latest_epoch(tmp_path, 4)
    rank_file(tmp_path, 1, 1).write_bytes(b"torn")
    with pytest.raises(CorruptCheckpointError, match=r"rank-0001.pt is corrupt"):
        load_rank_state(tmp_path, 1, 1)
    with pytest.raises(ValueError, match="does not hold rank 1's state of epoch 1"):
        rank_file(tmp_path, 1, 0).rename(rank_file(tmp_path, 1, 1))
        load_rank_state(tmp_path, 1, 1)
    for text, message in [
        ("{", "is not valid JSON"),
        (json.dumps({"format": "x"}), "not a gnnsys full-graph checkpoint manifest"),
        (json.dumps({"format": "gnnsys-pipeline-checkpoint", "version": 2}), "has version 2"),
        (
            json.dumps({"format": "gnnsys-pipeline-checkpoint", "version": 1, "epoch": "1",
                        "world": 2}),
            "epoch and world must be ints",
        ),
    ]:  # fmt: skip
        (tmp_path / MANIFEST).write_text(text)
        with pytest.raises(ValueError, match=message):
            latest_epoch(tmp_path)


@pytest.mark.slow  # three 2-rank runs: ~20 s
@pytest.mark.parametrize("mode, extra", [("pipe", {"chunks": 2}), ("graph", {})])
def test_a_killed_run_resumes_as_if_it_never_stopped(tmp_path, mode, extra):
    ds = rmat_dataset(scale=7, edge_factor=6, feat_dim=5, num_classes=3, intra=0.8, seed=3,
                      cache=False)  # fmt: skip
    base = {"epochs": 4, "lr": 0.02, "timeout": 20.0}
    whole = run(mode, ds, MODEL, 2, train=base, **extra)["epochs"]
    folder = str(tmp_path / "ckpt")
    ckpt = {**base, "checkpoint_dir": folder}
    with pytest.raises(RankFailure):  # rank 1 dies in epoch 3: epochs 1-2 are committed
        run(mode, ds, MODEL, 2, train={**ckpt, "crash_rank": 1, "crash_epoch": 3}, **extra)
    assert latest_epoch(folder, 2) == 2
    rest = run(mode, ds, MODEL, 2, train={**ckpt, "resume": True}, **extra)["epochs"]
    assert [r["epoch"] for r in rest] == [3, 4]
    for a, b in zip(whole[2:], rest):
        assert a["loss"] == b["loss"]  # bitwise: parameters, optimizer and histories restored
        assert a["test_acc"] == b["test_acc"]
