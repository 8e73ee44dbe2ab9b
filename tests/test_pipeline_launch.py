"""gnnsys.pipeline_parallel.launch: spawning, merging, argument checks, and a rank that dies."""

import dataclasses
import io
import json
import pickle
import socket
import time
from multiprocessing.reduction import ForkingPickler

import pytest
import torch
import torch.multiprocessing  # noqa: F401  (registers the tensor reducers spawn uses)

from gnnsys.datasets import rmat_dataset
from gnnsys.datasets.folder import load_folder, save_folder
from gnnsys.graph_io import mapped_npy
from gnnsys.pipeline_parallel.launch import (
    RankFailure,
    _as_data,
    main,
    merge,
    rendezvous_store,
    run,
    run_many,
)

MODEL = {"kind": "gcnii", "hidden": 8, "num_layers": 3}


def _toy(seed=3):
    # ~110 nodes, power-law degrees, 3 planted classes, 5 features (the project's generator).
    return rmat_dataset(
        scale=7, edge_factor=6, feat_dim=5, num_classes=3, intra=0.8, seed=seed, cache=False
    )


def test_one_rank_modes_equal_single_process():
    ds = _toy()
    train = {"epochs": 3, "lr": 0.05, "optimizer": "sgd"}
    ref = run("single", ds, MODEL, train=train)
    streamed = []
    graph1, pipe1, hyb1 = run_many(
        ds,
        [
            {"mode": "graph", "model": MODEL, "train": train},
            {"mode": "pipe", "model": MODEL, "chunks": 1, "train": train},
            {"mode": "hybrid", "model": MODEL, "chunks": 1, "train": train},
        ],
        nproc=1,
        on_epoch=lambda i, row: streamed.append((i, row)),
    )
    # rank 0's rows came to the caller, run by run, epoch by epoch
    assert streamed == [
        (i, row) for i, out in enumerate((graph1, pipe1, hyb1)) for row in out["ranks"][0]["epochs"]
    ]
    for out in (graph1, pipe1, hyb1):
        assert (out["stages"], out["groups"]) == (1, 1)
        for x, y in zip(out["epochs"], ref["epochs"]):
            assert x["loss"] == pytest.approx(y["loss"], abs=1e-5)
            assert x["test_acc"] == pytest.approx(y["test_acc"])
        assert out["epochs"][0]["bytes"] == {}  # one rank sends nothing
    assert graph1["partition"]["groups"]["method"] == "trivial"


def test_float16_features_train_as_their_float32_values():
    # `gnnsys data papers*` folders store float16 features: every mode widens the rows it
    # reads, so the run equals one on the same values stored as float32 (it used to fail with
    # "mat1 and mat2 must have the same dtype").
    ds = _toy()
    half = dataclasses.replace(ds, x=ds.x.half())
    wide = dataclasses.replace(ds, x=ds.x.half().float())
    train = {"epochs": 2, "lr": 0.05, "optimizer": "sgd"}
    specs = [
        {"mode": "single", "model": MODEL, "train": train},
        {"mode": "graph", "model": MODEL, "train": train},
        {"mode": "pipe", "model": MODEL, "chunks": 2, "train": train},
    ]
    for spec in specs:
        nproc = 1 if spec["mode"] == "single" else 2
        a = run(spec["mode"], half, spec["model"], nproc=nproc, chunks=spec.get("chunks"),
                train=train)  # fmt: skip
        b = run(spec["mode"], wide, spec["model"], nproc=nproc, chunks=spec.get("chunks"),
                train=train)  # fmt: skip
        assert [r["loss"] for r in a["epochs"]] == [r["loss"] for r in b["epochs"]], spec["mode"]


def _gloo_vs_nccl(nproc):
    """graph, pipe (4 chunks) and hybrid runs on gloo/CPU and on NCCL/GPU: equal losses."""
    train = {"epochs": 3, "lr": 0.05, "optimizer": "sgd"}
    specs = [
        {"mode": "graph", "model": MODEL, "train": train},
        {"mode": "pipe", "model": MODEL, "chunks": 4, "train": train},
        {"mode": "hybrid", "model": MODEL, "chunks": 4, "train": train},
    ]
    ds = _toy()
    cpu = run_many(ds, specs, nproc=nproc)
    gpu = run_many(ds, specs, nproc=nproc, backend="nccl")
    for a, b in zip(cpu, gpu):
        assert a["epochs"][-1]["bytes"] == b["epochs"][-1]["bytes"]
        for x, y in zip(a["epochs"], b["epochs"]):
            assert y["loss"] == pytest.approx(x["loss"], abs=1e-4)


@pytest.mark.gpu
def test_nccl_one_rank_on_the_gpu_matches_gloo_on_cpu():
    # One rank: histories, chunk blocks, metrics and the optimizer on the GPU (no messages).
    _gloo_vs_nccl(nproc=1)


@pytest.mark.gpu
def test_nccl_two_ranks_match_gloo():
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("NCCL needs one GPU per rank: this machine has fewer than 2")
    _gloo_vs_nccl(nproc=2)


@pytest.mark.slow  # six 2-rank runs
def test_batched_point_to_point_over_gloo_gives_the_same_runs(monkeypatch):
    # NCCL's path (sends held back and posted with the next receive in one batch_isend_irecv)
    # run over gloo: the same losses and bytes as plain isend/irecv, and no hang.
    train = {"epochs": 2, "lr": 0.05, "optimizer": "sgd", "timeout": 60.0}
    specs = [
        {"mode": "graph", "model": MODEL, "train": train},
        {"mode": "pipe", "model": MODEL, "chunks": 4, "train": train},
        {"mode": "hybrid", "model": MODEL, "chunks": 4, "stages": 2, "train": train},
    ]
    ds = _toy()
    plain = run_many(ds, specs, nproc=2)
    monkeypatch.setenv("GNNSYS_P2P_BATCHED", "1")
    batched = run_many(ds, specs, nproc=2)
    for a, b in zip(plain, batched):
        assert a["epochs"][-1]["bytes"] == b["epochs"][-1]["bytes"]
        for x, y in zip(a["epochs"], b["epochs"]):
            assert y["loss"] == pytest.approx(x["loss"], abs=1e-6)


def test_an_automatic_port_is_held_by_the_launcher_before_any_rank_starts():
    # (it was picked, released, and bound by rank 0 seconds later: another process took it now
    # and then, EADDRINUSE in a loaded make test)
    store = rendezvous_store(2, 10.0)
    with socket.create_connection(("127.0.0.1", store.port), timeout=5.0):
        pass  # listening already
    with socket.socket() as s, pytest.raises(OSError):
        s.bind(("127.0.0.1", store.port))  # and nobody else can take it
    # a port the caller names that is taken fails in the launcher, before any rank starts
    with pytest.raises(RuntimeError, match="EADDRINUSE"):
        rendezvous_store(2, 1.0, store.port)


def test_dead_rank_fails_every_rank_within_timeout():
    ds = _toy()
    t0 = time.monotonic()
    with pytest.raises(RankFailure) as info:
        run(
            "pipe",
            ds,
            MODEL,
            nproc=3,
            chunks=3,
            train={"epochs": 2, "timeout": 10.0, "crash_rank": 1, "crash_epoch": 1},
        )
    elapsed = time.monotonic() - t0
    errors = info.value.errors
    assert sorted(errors) == [0, 1, 2]
    assert "died without reporting (exit code 17)" in errors[1]
    for r in (0, 2):  # the survivors raised their own error, naming the failed communication
        assert "RuntimeError" in errors[r] and "probably died" in errors[r], errors[r]
        assert "still running" not in errors[r]
    assert elapsed < 90.0
    assert "rank 1: died without reporting" in str(info.value)


@pytest.mark.parametrize("mode", ["graph", "pipe"])
def test_rows_reach_the_caller_while_the_run_goes_on(mode):
    # Rank 1 dies in epoch 2: epoch 1's row must already have reached the caller.
    rows = []
    train = {"epochs": 3, "timeout": 10.0, "crash_rank": 1, "crash_epoch": 2}
    with pytest.raises(RankFailure):
        run(mode, _toy(), MODEL, nproc=2, train=train, on_epoch=rows.append)
    assert [r["epoch"] for r in rows] == [1]
    assert set(rows[0]) >= {"epoch", "loss", "seconds", "train_acc", "val_acc", "test_acc"}


def _spawn_pickle(obj):
    # what spawn does to a rank's arguments (torch.multiprocessing's reducers included)
    buf = io.BytesIO()
    ForkingPickler(buf, pickle.HIGHEST_PROTOCOL).dump(obj)
    return pickle.loads(buf.getvalue())


def test_folder_features_reach_the_ranks_as_the_file(tmp_path):
    """Features mapped from a dataset folder reach a rank as the file, mapped there again: not
    copied into shared memory by torch.multiprocessing (28 GB for papers' features)."""
    ds = load_folder(save_folder(_toy(), tmp_path / "toy"))
    assert mapped_npy(ds.x) == (str(tmp_path / "toy" / "x.npy"), False)
    got = _spawn_pickle(_as_data(ds))
    assert torch.equal(got.x, ds.x)
    assert mapped_npy(got.x) is not None  # a map of the same file on the receiving side
    assert not ds.x.is_shared() and mapped_npy(ds.x) is not None  # the sender's map untouched


def test_written_folder_features_travel_by_value(tmp_path):
    """A copy-on-write map this process wrote into no longer equals its file: by value then."""
    ds = load_folder(save_folder(_toy(), tmp_path / "toy"))
    ds.x[3, 1] = 123.0
    assert mapped_npy(ds.x) is None
    got = _spawn_pickle(_as_data(ds))
    assert got.x[3, 1] == 123.0 and torch.equal(got.x, ds.x)
    assert mapped_npy(ds.x[1:]) is None  # a view is not the map


def test_folder_dataset_trains_as_the_in_memory_one(tmp_path):
    ds = _toy()
    folder = load_folder(save_folder(ds, tmp_path / "toy"))
    train = {"epochs": 2, "lr": 0.05, "optimizer": "sgd"}
    spec = {"mode": "pipe", "model": MODEL, "chunks": 2, "train": train}
    (a,) = run_many(ds, [spec], nproc=2)
    (b,) = run_many(folder, [spec], nproc=2)
    assert [r["loss"] for r in a["epochs"]] == [r["loss"] for r in b["epochs"]]


def test_merge_sums_bytes_and_takes_slowest():
    def rank(r, seconds, b):
        return {
            "rank": r,
            "epochs": [{"epoch": 1, "loss": 0.5, "seconds": seconds}],
            "bytes": {0: {"warm": 4}, 1: b},
            "warm_seconds": 0.1 * r,
        }

    out = merge([rank(1, 2.0, {"activation": 8}), rank(0, 1.0, {"activation": 8, "metrics": 8})])
    assert out["epochs"][0]["seconds"] == 2.0
    assert out["epochs"][0]["bytes"] == {"activation": 16, "metrics": 8}
    assert out["warm"] == {"bytes": {"warm": 8}, "seconds": 0.1}


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        ({"mode": "ring"}, ValueError, "mode must be one of"),
        ({"mode": "pipe", "nproc": 0}, ValueError, "nproc must be >= 1"),
        (
            {"mode": "pipe", "nproc": 4},
            ValueError,
            r"stages \(4\) must not exceed num_layers \(3\)",
        ),
        ({"mode": "hybrid", "nproc": 4, "stages": 3}, ValueError, r"stages \(3\) x groups \(1\)"),
        ({"mode": "graph", "nproc": 2, "chunks": 4}, ValueError, "one chunk per part"),
        (
            {"mode": "pipe", "nproc": 2, "chunks": 999},
            ValueError,
            r"chunks \(999\) must not exceed",
        ),
        ({"mode": "pipe", "backend": "mpi"}, ValueError, "backend must be one of"),
        ({"mode": "pipe", "train": {"epochs": 0}}, ValueError, "epochs must be >= 1"),
    ],
)
def test_bad_arguments_fail_before_spawning(kwargs, exc, msg):
    kwargs = {"nproc": 2, **kwargs}
    with pytest.raises(exc, match=msg):
        run(dataset=_toy(), model=MODEL, **kwargs)


def test_dataset_must_look_like_a_dataset():
    with pytest.raises(TypeError, match="dataset lacks"):
        run("pipe", object(), MODEL, nproc=2)


def test_command_line_entry(monkeypatch, tmp_path, capsys):
    # The single-process path: same parsing, dataset loading and JSON output, no spawn.
    from gnnsys.datasets import synthetic

    monkeypatch.setenv("GNNSYS_HOME", str(tmp_path))
    monkeypatch.delenv("RANK", raising=False)
    argv = ["--mode", "single", "--dataset", "tiny", "--layers", "2", "--hidden", "8"]
    assert main(argv + ["--epochs", "2", "--lr", "0.02", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    # the flags reached the run: the same numbers as the call they stand for
    direct = run("single", synthetic("tiny", seed=1), {"kind": "gcnii", "num_layers": 2,
                 "hidden": 8, "dropout": 0.0}, train={"epochs": 2, "lr": 0.02, "seed": 1})  # fmt: skip
    assert out["mode"] == "single" and len(out["epochs"]) == 2
    for got, want in zip(out["epochs"], direct["epochs"]):
        for key in ("loss", "train_acc", "val_acc", "test_acc"):
            assert got[key] == want[key], key
    # progress on stderr, one line per epoch; stdout keeps the one JSON line
    assert [line.split(",")[0] for line in captured.err.strip().splitlines()] == [
        "epoch 1",
        "epoch 2",
    ]


def test_nccl_ranks_outnumbering_gpus_fail_before_spawning(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="NCCL needs one GPU per rank: 2 ranks"):
        run_many(_toy(), [{"mode": "graph", "model": MODEL}], nproc=2, backend="nccl")


def test_nccl_process_group_is_bound_to_the_ranks_gpu(monkeypatch):
    import torch
    import torch.distributed as dist

    from gnnsys.pipeline_parallel import launch

    seen = {}
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: seen.setdefault("set", d))
    monkeypatch.setattr(dist, "init_process_group", lambda b, **kw: seen.update(b=b, **kw))
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    launch._init_group("nccl", 1, 2, timeout=5)
    assert seen["b"] == "nccl" and seen["device_id"] == torch.device("cuda", 1)
    assert seen["set"] == torch.device("cuda", 1) and seen["timeout"] == 5
    seen.clear()
    launch._init_group("gloo", 1, 2)
    assert "device_id" not in seen
    # torchrun's LOCAL_RANK / LOCAL_WORLD_SIZE decide on a multi-machine run
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    with pytest.raises(ValueError, match="3 ranks on this machine but 2 GPU"):
        launch._init_group("nccl", 4, 6)


def test_modeled_network_is_for_gloo_runs():
    from gnnsys.pipeline_parallel.launch import _as_data, _make_job

    with pytest.raises(ValueError, match="NCCL runs use their real network"):
        _make_job(_as_data(_toy()), 2, mode="pipe", model=MODEL, train={"net_gbps": 10.0},
                  backend="nccl")  # fmt: skip


def test_calibrate_picks_chunks_and_grid_from_profiled_runs():
    from gnnsys.pipeline_parallel.launch import calibrate

    model = {**MODEL, "num_layers": 4}
    pick = calibrate(_toy(), "hybrid", model, 2, chunks="auto", stages="auto",
                     train={"net_gbps": 10.0, "net_latency_us": 5.0})  # fmt: skip
    assert pick["chunks"] in (2, 4, 8, 16, 32, 64)
    assert (pick["stages"], pick["groups"]) in ((1, 2), (2, 1))
    assert set(pick["grid_predicted"]) == {"1x2", "2x1"}
    assert min(pick["chunks_predicted"].values()) > 0
    with pytest.raises(ValueError, match="stages='auto' applies to mode='hybrid'"):
        calibrate(_toy(), "pipe", model, 2, stages="auto")
    with pytest.raises(ValueError, match="chunks='auto' applies to mode='pipe' or 'hybrid'"):
        calibrate(_toy(), "graph", model, 2, chunks="auto")
