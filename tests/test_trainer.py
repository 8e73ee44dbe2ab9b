"""`gnnsys train` end to end on `tiny`: outputs, resume after SIGKILL, config checks, DDP,
your own graph (folder:DIR, pyg:FILE), every model kind, layer-wise inference, unified features
on the GPU route, heterogeneous runs on `tiny-mag`, pipe-mode progress."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import gnnsys.cli
import gnnsys.trainer as trainer_mod
from gnnsys.cli import main
from gnnsys.trainer import read_metrics

TINY = ["train", "--dataset", "synthetic:tiny", "--batch-size", "64", "--hidden", "32"]


def _cli(*argv):
    return [sys.executable, "-m", "gnnsys.cli", *argv]


def test_outputs_are_written_and_parse(tmp_path, capsys):
    assert main([*TINY, "--epochs", "2", "--lr-schedule", "cosine", "--out", str(tmp_path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == (
        f"outputs in {tmp_path.resolve()}: config.json, metrics.jsonl, curves.png, checkpoint.pt"
    )
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


SHORT = [*TINY, "--max-batches", "2"]  # 2 batches an epoch: the resume logic, fast


@pytest.mark.parametrize("model", ["gcn", "gcnii", "gat"])
def test_every_model_kind_trains(tmp_path, model):
    # GCN/GCNII read globally normalised weights rescaled per sampled block, GAT self loops.
    argv = [*TINY, "--model", model, "--epochs", "3", "--fanout", "5,5"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert rows[2]["loss"] < rows[1]["loss"] < rows[0]["loss"]
    assert rows[2]["test_acc"] > 0.5  # 8 classes (chance 0.125); 0.67-0.85 here


@pytest.mark.parametrize("kind", ["sage", "gcn", "gcnii", "gat"])
def test_layerwise_inference_equals_the_full_graph_forward(kind):
    # One layer at a time over full one-hop neighbourhoods, in batches of 500 of tiny's 2549
    # nodes: every node's logits are those of one whole-graph forward.
    from gnnsys.datasets import synthetic
    from gnnsys.nn import GNNStack

    ds = synthetic("tiny")
    torch.manual_seed(0)
    norm = "none" if kind in ("gcn", "gcnii") else "both"
    model = GNNStack(kind, ds.x.shape[1], 16, ds.num_classes, 2, norm=norm, init="pyg").eval()
    graph = model.prepare_graph(ds.graph)
    full = model(graph, ds.x)
    got = trainer_mod.layerwise_inference(
        model, graph, ds.x, torch.device("cpu"), edge_weight=graph.edge_weight, batch_size=500
    )
    torch.testing.assert_close(got, full, atol=2e-5, rtol=1e-5)


def test_unified_features_reach_the_loader_with_the_device(monkeypatch):
    # --features unified --device cuda: the Loader gets device=cuda, so it gathers the unified
    # table with its zero-copy GPU route (not on the CPU into unpinned buffers, then copied).
    from gnnsys.cli import build_parser, validate_train_args
    from gnnsys.datasets import synthetic
    from gnnsys.nn import GNNStack
    from gnnsys.unified_tensor import UnifiedTensor

    ds = synthetic("tiny")
    argv = ["train", "--dataset", "synthetic:tiny", "--features", "unified", "--device", "cuda"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # one pretend GPU
    args = build_parser().parse_args(argv)
    validate_train_args(args, args.parser)
    monkeypatch.undo()
    table = trainer_mod._features(ds, args, torch.device("cpu"))
    assert isinstance(table, UnifiedTensor)
    # no GPU here: the table is made above; the model stays on the CPU (nothing runs on it)
    monkeypatch.setattr(trainer_mod, "_features", lambda d, a, dev: table)
    monkeypatch.setattr(GNNStack, "to", lambda self, *a, **k: self)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cuda = torch.device("cuda", 0)
    loader = trainer_mod.NodeTask(args, ds, cuda).batches(1, 0, 1)
    assert loader.device == cuda and loader.pin_memory
    assert loader.features["x"] is table
    assert loader._gather_device(loader.features, "x") == cuda  # the zero-copy GPU gather


@pytest.mark.gpu
def test_unified_cuda_run_never_gathers_the_table_on_the_cpu(tmp_path, monkeypatch):
    import gnnsys.features as features

    def refuse(*a, **k):
        raise AssertionError("the unified table was gathered on the CPU")

    monkeypatch.setattr(features, "_unified_into", refuse)
    argv = [*SHORT, "--epochs", "1", "--features", "unified", "--device", "cuda"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert math.isfinite(rows[0]["loss"]) and rows[0]["test_acc"] > 0.2


def test_resume_refuses_another_model(tmp_path, capsys):
    main([*SHORT, "--epochs", "1", "--out", str(tmp_path)])
    capsys.readouterr()
    rc = main([*SHORT, "--epochs", "2", "--model", "gcn", "--resume", "--out", str(tmp_path)])
    assert rc == 1
    err = capsys.readouterr().err
    assert err == (
        "gnnsys train: error: --resume: the checkpoint was made with another config "
        "(model: checkpoint 'sage' vs now 'gcn')\n"
    )


@pytest.mark.parametrize(
    "argv, message, max_chunks",
    [
        (["--mode", "pipe", "--chunks", "1021"], "--chunks 1021: at most 1020 chunks an epoch", 0),
        (["--mode", "hybrid", "--chunks", "3000"], "more chunks than the 2549 nodes", 10**6),
        (["--mode", "graph", "--layers", "128"], "--layers 128: --mode graph runs at most 127", 0),
        (["--mode", "graph", "--nproc", "3000"], "--nproc 3000: more processes than the 2549", 0),
    ],
)
def test_full_graph_layouts_the_trainers_cannot_run_are_one_line_errors(
    tmp_path, capsys, monkeypatch, argv, message, max_chunks
):
    # Found past the flags (the dataset's size, the transport's tag space): refused before any
    # rank starts, as one line, not as a rank's traceback.
    from gnnsys.pipeline_parallel import transport

    if max_chunks:  # the tag space's bound out of the way: tiny's 2549 nodes are the limit
        monkeypatch.setattr(transport, "MAX_CHUNKS", max_chunks)
    monkeypatch.setattr(gnnsys.cli, "OVERSUBSCRIBE", 10**4)  # (the flag's own cap: 8 per core)
    argv = ["train", "--dataset", "synthetic:tiny", "--hidden", "32", "--nproc", "2", "--epochs",
            "1", *argv, "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir())  # nothing started, nothing written


@pytest.mark.parametrize("mode", [[], ["--mode", "graph", "--nproc", "2"]])
def test_empty_or_unlabelled_training_split_is_an_error(tmp_path, capsys, mode):
    import numpy as np

    folder = tmp_path / "d"
    assert main(["data", "tiny", str(folder)]) == 0
    np.save(folder / "train_idx.npy", np.zeros(0, np.int64))
    argv = ["train", "--dataset", f"folder:{folder}", "--epochs", "1", *mode]
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "run")]) == 1
    assert "the training split is empty" in capsys.readouterr().err
    y = np.load(folder / "y.npy")
    y[[3, 5]] = -1
    np.save(folder / "y.npy", y)
    np.save(folder / "train_idx.npy", np.arange(10))
    assert main([*argv, "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "2 training node(s) have no label (y = -1), e.g. node 3" in err


def test_checkpoint_is_written_before_its_row(tmp_path, monkeypatch):
    # The order that makes a kill at any moment resumable: when a row is written, the
    # checkpoint covering it is already there (with the rows it covers).
    events = []
    save, write = trainer_mod.save_checkpoint, trainer_mod.write_metrics

    def saving(path, state):
        events.append(("checkpoint", state["epoch"], [r["epoch"] for r in state["rows"]]))
        save(path, state)

    def writing(path, rows):
        events.append(("rows", rows[-1]["epoch"] if rows else 0, None))
        write(path, rows)

    monkeypatch.setattr(trainer_mod, "save_checkpoint", saving)
    monkeypatch.setattr(trainer_mod, "write_metrics", writing)
    assert main([*SHORT, "--epochs", "3", "--checkpoint-every", "2", "--out", str(tmp_path)]) == 0
    assert events == [
        ("rows", 0, None),
        ("rows", 1, None),  # epoch 1 has no checkpoint (every 2): a kill now restarts at 1
        ("checkpoint", 2, [1, 2]),
        ("rows", 2, None),
        ("checkpoint", 3, [1, 2, 3]),  # the last epoch always
        ("rows", 3, None),
    ]


def test_resume_after_a_kill_between_checkpoint_and_row(tmp_path):
    # Killed after the checkpoint of epoch 2 but before its row: the row comes back from it.
    assert main([*SHORT, "--epochs", "2", "--out", str(tmp_path)]) == 0
    rows = read_metrics(tmp_path / "metrics.jsonl")
    trainer_mod.write_metrics(tmp_path / "metrics.jsonl", rows[:1])
    assert main([*SHORT, "--epochs", "3", "--resume", "--out", str(tmp_path)]) == 0
    after = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in after] == [1, 2, 3]
    assert after[:2] == rows


def test_resume_without_a_checkpoint_starts_again(tmp_path, capsys):
    # A run killed before its first checkpoint left config.json and rows but no checkpoint.
    argv = [*SHORT, "--checkpoint-every", "0", "--out", str(tmp_path)]
    assert main([*argv, "--epochs", "1"]) == 0
    first = read_metrics(tmp_path / "metrics.jsonl")
    assert not (tmp_path / "checkpoint.pt").exists()
    capsys.readouterr()
    assert main([*argv, "--epochs", "2", "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"--resume: no checkpoint in {tmp_path} yet, starting again from epoch 1\n" in out
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    same = ("loss", "train_acc", "val_acc", "test_acc")  # epoch 1 again, from the same seed
    assert {k: rows[0][k] for k in same} == {k: first[0][k] for k in same}


@pytest.mark.slow  # two or three Python processes end to end: ~50 s on a busy 2-core box
def test_sigkill_mid_run_then_resume(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    out = tmp_path / "out"
    # 6 epochs of 96 batches: the kill lands after epoch 1 and well before the end (an epoch
    # of tiny takes about 0.2 s here).
    argv = [*TINY, "--epochs", "6", "--batch-size", "16", "--out", str(out)]
    with open(tmp_path / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(_cli(*argv), env=env, stdout=subprocess.DEVNULL, stderr=err)
        metrics = out / "metrics.jsonl"
        deadline = time.time() + 600  # a generous bound for a loaded machine, not a speed test
        while time.time() < deadline and len(read_metrics(metrics)) < 1:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = read_metrics(metrics)
    done_at_kill = len(before)
    assert 1 <= done_at_kill < 6, (
        "the run must be killed after epoch 1 and before the end; "
        f"exit code {proc.returncode}, stderr: {(tmp_path / 'stderr.txt').read_text()[-1500:]}"
    )
    # the checkpoint covering every visible row was there before the row
    assert (out / "checkpoint.pt").is_file()
    resumed = subprocess.run(_cli(*argv, "--resume"), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-1500:]
    assert f"--resume: continuing from {out / 'checkpoint.pt'} (epoch " in resumed.stdout
    rows = read_metrics(metrics)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    # nothing lost: every row written before the kill is kept as it was
    assert rows[:done_at_kill] == before
    ckpt_epoch = torch.load(out / "checkpoint.pt", weights_only=False)["epoch"]
    assert ckpt_epoch == 6


def _run_group(cmd, timeout, env=None):
    """(returncode, stderr) of ``cmd`` in its own session; on timeout the whole group (the
    torchrun launcher and its ranks) is killed, so nothing outlives the test."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, err


@pytest.mark.slow  # two or three Python processes end to end: ~50 s on a busy 2-core box
def test_ddp_two_processes_match_one(tmp_path):
    # Strided shards: the two ranks' k-th batches (32 seeds each) are together the k-th batch of
    # one process with 64. Full neighbourhoods, no dropout and mean losses make DDP's averaged
    # gradients the one-process gradients, so the runs agree to float rounding.
    common = [*TINY, "--epochs", "2", "--fanout", "-1,-1", "--dropout", "0",
              "--max-batches", "5"]  # fmt: skip
    one = tmp_path / "one"
    two = tmp_path / "two"
    subprocess.run(
        _cli(*common, "--batch-size", "64", "--out", str(one)), check=True, capture_output=True
    )
    # (no --master-port: torchrun --standalone binds a free port itself, no race with others)
    argv = [*common, "--batch-size", "32", "--mode", "ddp", "--nproc", "2"]
    rc, err = _run_group(_cli(*argv, "--out", str(two)), timeout=300)
    assert rc == 0, err[-2000:]
    rows_one = read_metrics(one / "metrics.jsonl")
    rows_two = read_metrics(two / "metrics.jsonl")
    assert [r["epoch"] for r in rows_two] == [1, 2]
    for a, b in zip(rows_one, rows_two):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)
        for key in ("train_acc", "val_acc", "test_acc"):
            assert b[key] == pytest.approx(a[key], abs=1e-9), key
    p1 = torch.load(one / "checkpoint.pt", weights_only=False)["model"]
    p2 = torch.load(two / "checkpoint.pt", weights_only=False)["model"]
    assert p1.keys() == p2.keys()
    for k in p1:
        torch.testing.assert_close(p2[k], p1[k], rtol=1e-4, atol=1e-6)
    # and they did train (the comparison is not between two idle runs)
    assert rows_two[-1]["loss"] < 0.7 * rows_two[0]["loss"]


def test_epoch_shards_are_strided_and_equal():
    idx = torch.arange(100, 111)  # 11 seeds, 2 ranks: one seed left out, 5 each
    full = trainer_mod._epoch_shard(idx, 3, 0, 0, 1)
    r0 = trainer_mod._epoch_shard(idx, 3, 0, 0, 2)
    r1 = trainer_mod._epoch_shard(idx, 3, 0, 1, 2)
    assert sorted(full.tolist()) == idx.tolist()
    assert r0.tolist() == full[0:10:2].tolist() and r1.tolist() == full[1:10:2].tolist()
    # batch k of size 2 on each rank == batch k of size 4 in one process
    for k in range(2):
        union = set(r0[2 * k : 2 * k + 2].tolist()) | set(r1[2 * k : 2 * k + 2].tolist())
        assert union == set(full[4 * k : 4 * k + 4].tolist())


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
    assert [line.split(",")[0] for line in out.splitlines() if line.startswith("epoch ")] == [
        "epoch 1",
        "epoch 2",
    ]
    best = max(rows, key=lambda r: r["val_acc"])
    assert f"final test accuracy: {rows[-1]['test_acc']:.4f}" in out
    assert f"test accuracy at best validation: {best['test_acc']:.4f} (epoch {best['epoch']}" in out
    _check_saved_model(tmp_path, rows[-1])


@pytest.mark.slow  # 2 and 4 ranks spawned: ~20 s
@pytest.mark.parametrize(
    "mode", [["--mode", "graph", "--nproc", "2"], ["--mode", "hybrid", "--nproc", "4",
                                                  "--pipe-stages", "2", "--chunks", "2"]]
)  # fmt: skip
def test_full_graph_modes_write_the_trained_model(tmp_path, capsys, mode):
    argv = ["train", "--dataset", "synthetic:tiny", *mode, "--model", "sage", "--layers", "4",
            "--hidden", "16", "--epochs", "2", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    assert "model.pt" in capsys.readouterr().out.splitlines()[-1]
    _check_saved_model(tmp_path, read_metrics(tmp_path / "metrics.jsonl")[-1])


@pytest.mark.slow  # three runs of 4 ranks: ~30 s
def test_hybrid_resume_through_the_cli_continues_the_run(tmp_path, capsys):
    # 2 epochs, then --resume to 3: the rows (metrics, merged bytes) and model.pt are those of
    # an uninterrupted 3-epoch run; the layout (stages, chunks, ranks) must be the first run's
    base = ["train", "--dataset", "synthetic:tiny", "--mode", "hybrid", "--nproc", "4",
            "--pipe-stages", "2", "--chunks", "2", "--layers", "4", "--hidden", "16"]  # fmt: skip
    assert main([*base, "--epochs", "3", "--out", str(tmp_path / "a")]) == 0
    assert main([*base, "--epochs", "2", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    assert main([*base, "--epochs", "3", "--out", str(tmp_path / "b"), "--resume"]) == 0
    assert "--resume: continuing from epoch 3" in capsys.readouterr().out
    a, b = (read_metrics(tmp_path / x / "metrics.jsonl") for x in "ab")
    keys = ("epoch", "loss", "train_acc", "val_acc", "test_acc", "bytes")
    assert [{k: r[k] for k in keys} for r in a] == [{k: r[k] for k in keys} for r in b]
    _check_saved_model(tmp_path / "b", b[-1])
    other = [*base[:5], "--nproc", "2", *base[7:]]
    assert main([*other, "--epochs", "4", "--out", str(tmp_path / "b"), "--resume"]) == 1
    assert "(nproc: config.json 4 vs now 2)" in capsys.readouterr().err


def test_full_graph_checkpoint_folder_that_is_a_file(tmp_path, capsys):
    (tmp_path / "checkpoint").write_text("")
    argv = ["train", "--mode", "pipe", "--nproc", "2", "--dataset", "synthetic:tiny"]
    assert main([*argv, "--out", str(tmp_path)]) == 1
    assert f"{tmp_path / 'checkpoint'} is not a folder" in capsys.readouterr().err


def test_full_graph_resume_needs_a_fixed_layout(capsys):
    argv = ["train", "--mode", "pipe", "--nproc", "2", "--chunks", "auto", "--resume"]
    with pytest.raises(SystemExit):
        main(argv)
    assert "--resume needs the run's layout fixed" in capsys.readouterr().err


def test_load_model_refuses_other_files(tmp_path):
    torch.save({"model": {}}, tmp_path / "m.pt")
    with pytest.raises(trainer_mod.TrainError, match="is not a model.pt of gnnsys train"):
        trainer_mod.load_model(tmp_path / "m.pt")


def _check_saved_model(folder, last_row):
    # model.pt, assembled from the ranks, is the trained model: evaluated on the whole graph
    # it scores exactly the run's last reported test accuracy
    from gnnsys.datasets import synthetic

    model = trainer_mod.load_model(folder / "model.pt")
    ds = synthetic("tiny")
    with torch.no_grad():
        pred = model(model.prepare_graph(ds.graph), ds.x).argmax(-1)
    acc = (pred[ds.test_idx] == ds.y[ds.test_idx]).float().mean().item()
    assert acc == pytest.approx(last_row["test_acc"], abs=1e-6)


def test_pipe_mode_flag_checks(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--mode", "hybrid", "--nproc", "3", "--pipe-stages", "2"])
    assert "not a multiple of --pipe-stages 2" in capsys.readouterr().err


# ---------------------------------------------------------------------- your own graph
KEYS = ("loss", "train_acc", "val_acc", "test_acc")


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory):
    """tiny's rows trained as synthetic:tiny (the graph and split the files below hold)."""
    out = tmp_path_factory.mktemp("ref")
    assert main([*SHORT, "--epochs", "1", "--out", str(out)]) == 0
    return [{k: r[k] for k in KEYS} for r in read_metrics(out / "metrics.jsonl")]


def _rows(out):
    return [{k: r[k] for k in KEYS} for r in read_metrics(out / "metrics.jsonl")]


def test_folder_dataset_with_its_split_trains_like_the_original(tmp_path, tiny_reference, capsys):
    from gnnsys.datasets import save_folder, synthetic

    folder = save_folder(synthetic("tiny"), tmp_path / "tiny")
    argv = [*SHORT, "--epochs", "1", "--dataset", f"folder:{folder}", "--out", str(tmp_path / "o")]
    assert main(argv) == 0
    assert _rows(tmp_path / "o") == tiny_reference  # same graph, split, classes, seed
    assert "random" not in capsys.readouterr().out


def test_folder_dataset_without_split_gets_a_seeded_one_and_says_so(tmp_path, capsys):
    from gnnsys.datasets import save_folder, synthetic

    folder = save_folder(synthetic("tiny"), tmp_path / "tiny")
    for f in ("train_idx.npy", "val_idx.npy", "test_idx.npy", "meta.json"):
        (folder / f).unlink()
    base = [*SHORT, "--epochs", "1", "--dataset", f"folder:{folder}"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    # 2549 labelled nodes: 60/20/20 -> 1529/510/510; classes from the labels (8)
    assert (
        "split: random 60/20/20 of the labelled nodes, seed 0 (train/val/test 1529/510/510 "
        "nodes): the dataset has none of its own\n"
    ) in out
    assert main([*base, "--out", str(tmp_path / "b")]) == 0
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")  # seeded: the same split again
    assert main([*base, "--seed", "1", "--out", str(tmp_path / "c")]) == 0
    assert "seed 1 (train/val/test" in capsys.readouterr().out


def test_an_empty_validation_split_is_announced_and_written_null(tmp_path, capsys):
    from gnnsys.datasets import save_folder, synthetic

    folder = save_folder(synthetic("tiny"), tmp_path / "tiny")
    np.save(folder / "val_idx.npy", np.empty(0, np.int64))
    out_dir = tmp_path / "o"
    assert (
        main([*SHORT, "--epochs", "1", "--dataset", f"folder:{folder}", "--out", str(out_dir)]) == 0
    )
    out = capsys.readouterr().out
    assert (
        "the dataset has no validation nodes: val_acc print as nan (null in metrics.jsonl)" in out
    )
    row = read_metrics(out_dir / "metrics.jsonl")[-1]
    assert row["val_acc"] is None and 0 <= row["test_acc"] <= 1


def test_pyg_file_with_masks_trains_like_the_original(tmp_path, tiny_reference, capsys):
    from gnnsys.datasets import synthetic

    data = synthetic("tiny").to_pyg()
    torch.save(data, tmp_path / "tiny.pt")
    argv = [*SHORT, "--epochs", "1", "--dataset", f"pyg:{tmp_path / 'tiny.pt'}"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 0
    assert _rows(tmp_path / "o") == tiny_reference
    assert "random" not in capsys.readouterr().out
    del data.train_mask, data.val_mask, data.test_mask
    torch.save(data, tmp_path / "nomask.pt")
    argv = [*SHORT, "--epochs", "1", "--dataset", f"pyg:{tmp_path / 'nomask.pt'}"]
    assert main([*argv, "--out", str(tmp_path / "p")]) == 0
    assert "split: random 60/20/20 of the labelled nodes, seed 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kind, make, message",
    [
        ("pyg", lambda p: p.write_bytes(b"not a torch file"), "is not a readable torch.save file"),
        (
            "pyg",
            lambda p: torch.save({"x": torch.zeros(3, 2)}, p),
            "needs a tensor 'y', got missing",
        ),
        ("pyg", lambda p: torch.save([1, 2], p), "expected a torch_geometric Data or a dict"),
        ("folder", lambda p: p.mkdir(), "lacks src.npy, dst.npy, x.npy, y.npy"),
    ],
)
def test_malformed_own_graph_is_one_clear_line(tmp_path, capsys, kind, make, message):
    path = tmp_path / ("g.pt" if kind == "pyg" else "g")
    make(path)
    rc = main([*SHORT, "--dataset", f"{kind}:{path}", "--out", str(tmp_path / "o")])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith(f"gnnsys train: error: --dataset {kind}:{path}: ") and message in err
    assert err.count("\n") == 1 and str(path) in err


def test_nan_features_are_refused_at_load(tmp_path, capsys):
    import numpy as np

    folder = tmp_path / "d"
    assert main(["data", "tiny", str(folder)]) == 0
    x = np.load(folder / "x.npy")
    x[7, 3] = np.nan
    np.save(folder / "x.npy", x)
    capsys.readouterr()
    rc = main([*SHORT, "--dataset", f"folder:{folder}", "--out", str(tmp_path / "o")])
    assert rc == 1
    assert "x holds NaN or inf: row 7 has 1 such value(s)" in capsys.readouterr().err


@pytest.fixture
def nan_folder(tmp_path, capsys, monkeypatch):
    """tiny as a folder with every feature NaN, loadable: the load-time scan turned off (as
    for a table too big to scan; in this process only, not in spawned ranks)."""
    import numpy as np

    import gnnsys._checks

    folder = tmp_path / "d"
    assert main(["data", "tiny", str(folder)]) == 0
    x = np.load(folder / "x.npy")
    x[:] = np.nan
    np.save(folder / "x.npy", x)
    monkeypatch.setattr(gnnsys._checks, "FINITE_CHECK_BYTES", 0)
    capsys.readouterr()
    return folder


def test_a_nan_loss_stops_the_run_before_its_checkpoint(tmp_path, capsys, nan_folder):
    # NaN rows that training reaches: the run stops with the reason, and writes no checkpoint
    out = tmp_path / "o"
    rc = main([*SHORT, "--dataset", f"folder:{nan_folder}", "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "epoch 1: the training loss is not finite (this rank's batch 1: nan)" in err
    assert not (out / "checkpoint.pt").exists() and read_metrics(out / "metrics.jsonl") == []


@pytest.mark.slow  # two ranks spawned: ~15 s
def test_a_nan_loss_stops_a_full_graph_mode(tmp_path, capsys, nan_folder):
    out = tmp_path / "o"
    argv = ["train", "--dataset", f"folder:{nan_folder}", "--mode", "pipe", "--nproc", "2"]
    assert main([*argv, "--epochs", "3", "--out", str(out)]) == 1
    assert "epoch 1: the training loss is nan" in capsys.readouterr().err
    assert [r["loss"] for r in read_metrics(out / "metrics.jsonl")] == [None]
    assert not (out / "checkpoint" / "checkpoint.json").exists()  # no diverged checkpoint


def test_metrics_are_strict_json_with_an_empty_split(tmp_path):
    import numpy as np

    folder = tmp_path / "d"
    assert main(["data", "tiny", str(folder)]) == 0
    np.save(folder / "val_idx.npy", np.zeros(0, np.int64))
    out = tmp_path / "o"
    assert main([*SHORT, "--dataset", f"folder:{folder}", "--out", str(out)]) == 0

    def refuse(name):
        raise AssertionError(f"{name} in metrics.jsonl")

    rows = [json.loads(line, parse_constant=refuse) for line in open(out / "metrics.jsonl")]
    assert rows[-1]["val_acc"] is None and 0 <= rows[-1]["test_acc"] <= 1


def test_run_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert main([*SHORT, "--out", str(tmp_path)]) == 0
    finally:
        os.umask(old)
    for name in ("config.json", "metrics.jsonl", "curves.png", "checkpoint.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_resume_refuses_a_checkpoint_that_is_a_folder(tmp_path, capsys):
    assert main([*SHORT, "--epochs", "1", "--checkpoint-every", "0", "--out", str(tmp_path)]) == 0
    before = (tmp_path / "metrics.jsonl").read_bytes()
    (tmp_path / "checkpoint.pt").mkdir()
    capsys.readouterr()
    assert main([*SHORT, "--epochs", "2", "--resume", "--out", str(tmp_path)]) == 1
    assert f"--resume: {tmp_path / 'checkpoint.pt'} is not a file" in capsys.readouterr().err
    assert (tmp_path / "metrics.jsonl").read_bytes() == before  # no row lost


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(epoch="1"), "epoch is '1', not an int >= 1"),
        (lambda c: c.update(model=[1, 2]), "model is a list, not a state dict"),
        (lambda c: c.update(rows="1"), "rows is not a list of metrics rows"),
        (lambda c: c["rng"].pop("numpy"), "rng lacks numpy"),
        (lambda c: c["rng"].update(numpy=("MT19937", 5)), "holds a state this version cannot"),
    ],
)
def test_resume_refuses_a_hand_edited_checkpoint(tmp_path, capsys, edit, message):
    assert main([*SHORT, "--epochs", "1", "--out", str(tmp_path)]) == 0
    before = (tmp_path / "metrics.jsonl").read_bytes()
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    edit(ckpt)
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    capsys.readouterr()
    assert main([*SHORT, "--epochs", "2", "--resume", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert message in err and str(tmp_path / "checkpoint.pt") in err and err.count("\n") == 1
    assert (tmp_path / "metrics.jsonl").read_bytes() == before


def test_training_is_the_same_whatever_the_thread_count(tmp_path):
    threads = torch.get_num_threads()
    rows = []
    try:
        for t in (1, 2):
            out = tmp_path / str(t)
            assert main([*SHORT, "--epochs", "2", "--threads", str(t), "--out", str(out)]) == 0
            rows.append(read_metrics(out / "metrics.jsonl"))
    finally:
        torch.set_num_threads(threads)
    keys = ("loss", "train_acc", "val_acc", "test_acc")
    assert [{k: r[k] for k in keys} for r in rows[0]] == [{k: r[k] for k in keys} for r in rows[1]]


# ---------------------------------------------------------------------- heterogeneous
MAG = ["train", "--dataset", "synthetic:tiny-mag", "--batch-size", "128", "--hidden", "32",
       "--max-batches", "4"]  # fmt: skip
MAG_KEYS = ("loss", "train_acc", "val_acc", "test_acc")


def test_hetero_run_writes_the_outputs_and_learns(tmp_path, capsys):
    assert main([*MAG, "--epochs", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "gnnsys train: synthetic:tiny-mag (" in out and "HeteroSAGE x2" in out
    assert out.strip().splitlines()[-1] == (
        f"outputs in {tmp_path.resolve()}: config.json, metrics.jsonl, curves.png, checkpoint.pt"
    )
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert set(rows[0]) == {"epoch", "loss", "train_acc", "batches_per_s", "seconds", "lr",
                            "val_acc", "test_acc", "peak_memory_mb"}  # fmt: skip
    assert rows[1]["loss"] < 0.8 * rows[0]["loss"]
    assert json.loads((tmp_path / "config.json").read_text())["dataset"] == "synthetic:tiny-mag"
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] == 2 and [r["epoch"] for r in ckpt["rows"]] == [1, 2]


def test_ogbn_mag_folder_trains(tmp_path, capsys):
    # --dataset ogbn-mag --root DIR: OGB's raw layout (a 63-node folder the dataset tests write).
    from test_datasets_ogb_mag import _write

    from gnnsys.datasets import ogb

    _write(tmp_path)
    ds = ogb("ogbn-mag", tmp_path)
    argv = ["train", "--dataset", "ogbn-mag", "--root", str(tmp_path), "--epochs", "1",
            "--batch-size", "4", "--hidden", "8", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"gnnsys train: ogbn-mag ({ds.num_nodes} nodes, {ds.num_edges} edges), HeteroSAGE" in out
    (row,) = read_metrics(tmp_path / "o" / "metrics.jsonl")
    assert math.isfinite(row["loss"]) and "test_acc" in row
    batches = -(-ds.train_idx.numel() // 4)  # every training paper, 4 a batch
    assert round(row["batches_per_s"] * row["seconds"]) == batches


@pytest.mark.slow  # three runs end to end: 1-2 s quiet, 24-28 s on the busy 2-core box
def test_hetero_resume_continues_as_an_uninterrupted_run(tmp_path, capsys):
    # The checkpoint restores weights, optimizer and RNG; the loader's epoch keys the shuffle
    # and the samples: epoch 2 after a resume is epoch 2 of a run that never stopped.
    assert main([*MAG, "--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    assert main([*MAG, "--epochs", "1", "--out", str(tmp_path / "cut")]) == 0
    capsys.readouterr()
    assert main([*MAG, "--epochs", "2", "--resume", "--out", str(tmp_path / "cut")]) == 0
    assert "--resume: continuing from" in capsys.readouterr().out
    straight = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    cut = read_metrics(tmp_path / "cut" / "metrics.jsonl")
    assert [{k: r[k] for k in MAG_KEYS} for r in cut] == [
        {k: r[k] for k in MAG_KEYS} for r in straight
    ]


@pytest.mark.slow  # two ranks end to end: ~12 s on the busy 2-core box
def test_hetero_ddp_two_processes_write_the_outputs(tmp_path):
    # HeteroSAGE under DDP: each rank a strided shard of the target type's training nodes
    # (_epoch_shard, as homogeneous ddp), rank 0 writes; the non-target output layers get no
    # gradient, which DDP must see as unused (a hang or an error otherwise).
    argv = [*MAG, "--epochs", "2", "--hidden", "16", "--batch-size", "64", "--max-batches", "3",
            "--mode", "ddp", "--nproc", "2"]  # fmt: skip
    scratch = tmp_path / "tmp"  # the run's temporary files (torchrun's log folder among them)
    scratch.mkdir()
    out = tmp_path / "out"
    rc, err = _run_group(_cli(*argv, "--out", str(out)), timeout=300,
                         env={**os.environ, "TMPDIR": str(scratch)})  # fmt: skip
    assert rc == 0, err[-2000:]
    left = [p.name for p in scratch.iterdir() if p.name.startswith(("torchelastic_", "gnnsys-"))]
    assert left == []  # torchrun's log folder went with the run (PyG's template files stay)
    assert "find_unused_parameters" not in err  # DDP found the unused layers itself
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(math.isfinite(r[k]) for r in rows for k in MAG_KEYS)
    assert all(round(r["batches_per_s"] * r["seconds"]) == 3 for r in rows)
    config = json.loads((out / "config.json").read_text())
    assert (config["dataset"], config["mode"]) == ("synthetic:tiny-mag", "ddp")
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] == 2 and not any(k.startswith("module.") for k in ckpt["model"])


# ---------------------------------------------------------------------- pipe modes
def test_pipe_modes_write_config_first_and_rows_as_epochs_end(tmp_path, monkeypatch, capsys):
    # The launcher is replaced by one that checks the folder at each step of the run.
    from gnnsys.pipeline_parallel import launch

    seen = []

    def fake_run(mode, ds, model, nproc, epochs, on_epoch=None, **kw):
        config = json.loads((tmp_path / "config.json").read_text())
        seen.append(("start", config["mode"], read_metrics(tmp_path / "metrics.jsonl")))
        rows = [{"epoch": e, "loss": 1.0 / e, "seconds": 0.5, "val_acc": 0.5, "test_acc": 0.4}
                for e in (1, 2)]  # fmt: skip
        for r in rows:
            on_epoch(dict(r))
            seen.append(
                ("row", r["epoch"], [x["epoch"] for x in read_metrics(tmp_path / "metrics.jsonl")])
            )
        merged = [dict(r, seconds=0.75, bytes={"activation": 8}) for r in rows]
        return {"epochs": merged}

    monkeypatch.setattr(launch, "run", fake_run)
    argv = ["train", "--dataset", "synthetic:tiny", "--mode", "graph", "--nproc", "2",
            "--epochs", "2", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    assert seen == [("start", "graph", []), ("row", 1, [1]), ("row", 2, [1, 2])]
    rows = read_metrics(tmp_path / "metrics.jsonl")  # the merged rows replace the streamed ones
    assert [(r["seconds"], r["bytes"]) for r in rows] == [(0.75, {"activation": 8})] * 2
    out = capsys.readouterr().out.splitlines()
    assert out[1:3] == [
        "epoch 1, loss 1.0000, seconds 0.5000, val_acc 0.5000, test_acc 0.4000",
        "epoch 2, loss 0.5000, seconds 0.5000, val_acc 0.5000, test_acc 0.4000",
    ]
    assert out[-1].startswith("outputs in ") and out[-1].endswith(
        "config.json, metrics.jsonl, curves.png"
    )


def test_labor_sampler_trains_and_must_match_on_resume(tmp_path, capsys):
    # --sampler labor: LABOR-0 batches (fewer nodes, same expected fanout) train the same model
    assert main([*SHORT, "--epochs", "1", "--sampler", "labor", "--out", str(tmp_path)]) == 0
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert math.isfinite(rows[0]["loss"]) and rows[0]["test_acc"] > 0.2
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["sampler"] == "labor"
    capsys.readouterr()
    rc = main([*SHORT, "--epochs", "2", "--resume", "--out", str(tmp_path)])
    assert rc == 1
    assert "sampler: checkpoint 'labor' vs now 'neighbor'" in capsys.readouterr().err


def test_sampled_eval_with_full_fanout_matches_layerwise_eval(tmp_path):
    # With every neighbour sampled, the sampled evaluation sees what layer-wise inference sees.
    base = [*SHORT, "--epochs", "1", "--fanout", "-1,-1"]
    assert main([*base, "--out", str(tmp_path / "full")]) == 0
    assert main([*base, "--eval", "sampled", "--out", str(tmp_path / "sampled")]) == 0
    full, sampled = _rows(tmp_path / "full")[-1], _rows(tmp_path / "sampled")[-1]
    assert full["loss"] == sampled["loss"]  # the same training
    for key in ("val_acc", "test_acc"):
        assert abs(full[key] - sampled[key]) <= 0.002, (full, sampled)


def test_trains_on_an_on_disk_papers_folder(tmp_path, capsys, budget_above_rss):
    # `gnnsys data papers-tiny` writes CSC + float16 features; training maps them in place.
    # The budget counts this process's RSS too (after the rest of the suite, ~2.7 GB here).
    budget = str(budget_above_rss("3G"))
    assert main(["data", "papers-tiny", str(tmp_path / "pt"), "--memory-budget", budget]) == 0
    assert "wrote papers-tiny (3000 nodes" in capsys.readouterr().out
    out = tmp_path / "o"
    argv = [*SHORT, "--epochs", "1", "--dataset", f"folder:{tmp_path / 'pt'}", "--eval",
            "sampled", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    (row,) = _rows(out)
    assert all(math.isfinite(row[k]) for k in KEYS)
    assert main(["data", "papers-tiny", str(tmp_path / "pt")]) == 2  # exists: no overwrite


def test_feature_row_cache_on_a_mapped_folder_trains_the_same(tmp_path, budget_above_rss):
    # Hot rows in RAM, the rest from the file: the same values, so the same run as host features.
    # The budget counts this process's RSS too (after the rest of the suite, ~2.7 GB here).
    budget = str(budget_above_rss("3G"))
    assert main(["data", "papers-tiny", str(tmp_path / "pt"), "--memory-budget", budget]) == 0
    base = [*SHORT, "--epochs", "1", "--dataset", f"folder:{tmp_path / 'pt'}", "--eval", "sampled"]
    assert main([*base, "--out", str(tmp_path / "host")]) == 0
    cached = [*base, "--features", "unified", "--feature-cache", "20K"]
    assert main([*cached, "--out", str(tmp_path / "cache")]) == 0
    assert _rows(tmp_path / "host") == _rows(tmp_path / "cache")


# ---------------------------------------------------------------------- resume edge cases
PIPE1 = ["train", "--dataset", "synthetic:tiny", "--mode", "pipe", "--nproc", "1",
         "--layers", "2", "--hidden", "16", "--chunks", "2"]  # fmt: skip
ROW_KEYS = ("epoch", "loss", "train_acc", "val_acc", "test_acc")


def _epoch_rows(folder):
    return [{k: r.get(k) for k in ROW_KEYS} for r in read_metrics(folder / "metrics.jsonl")]


@pytest.mark.slow  # four one-rank full-graph runs: ~20 s
def test_full_graph_resume_after_a_kill_between_commit_and_row(tmp_path, capsys):
    # The ranks commit epoch 2's checkpoint, then the launcher writes its row: a kill between
    # the two left a checkpoint ahead of metrics.jsonl, and --resume refused (session 27's
    # audit: 3 of 40 random kills). The manifest now carries the rows it covers.
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert main([*PIPE1, "--epochs", "3", "--out", str(ref)]) == 0
    assert main([*PIPE1, "--epochs", "2", "--checkpoint-every", "1", "--out", str(out)]) == 0
    rows = read_metrics(out / "metrics.jsonl")
    trainer_mod.write_metrics(out / "metrics.jsonl", rows[:1])  # epoch 2's row never written
    capsys.readouterr()
    assert main([*PIPE1, "--epochs", "3", "--resume", "--out", str(out)]) == 0
    assert "--resume: continuing from epoch 3" in capsys.readouterr().out
    assert _epoch_rows(out) == _epoch_rows(ref)
    # and --checkpoint-every 0 on the resume still resumes (it trained from scratch)
    assert main([*PIPE1, "--epochs", "2", "--out", str(out)]) == 0
    assert main([*PIPE1, "--epochs", "3", "--checkpoint-every", "0", "--resume",
                 "--out", str(out)]) == 0  # fmt: skip
    assert _epoch_rows(out) == _epoch_rows(ref)


def test_fresh_run_removes_an_earlier_runs_checkpoint(tmp_path, capsys):
    # Else a later --resume continued the earlier run's weights under this run's rows.
    assert main([*SHORT, "--epochs", "1", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "checkpoint.pt").is_file()
    capsys.readouterr()
    argv = [*SHORT, "--epochs", "1", "--checkpoint-every", "0", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert "starting afresh: removed the earlier run's checkpoint" in capsys.readouterr().out
    assert not (tmp_path / "checkpoint.pt").exists()
    assert main([*SHORT, "--epochs", "2", "--resume", "--out", str(tmp_path)]) == 0
    assert "no checkpoint in" in capsys.readouterr().out


def test_fresh_full_graph_run_removes_the_manifest_and_rank_files(tmp_path, capsys):
    assert main([*PIPE1, "--epochs", "1", "--out", str(tmp_path)]) == 0
    folder = tmp_path / "checkpoint"
    assert (folder / "checkpoint.json").is_file() and list(folder.glob("epoch-*.pt"))
    capsys.readouterr()
    assert main([*PIPE1, "--epochs", "1", "--checkpoint-every", "0", "--out", str(tmp_path)]) == 0
    assert "starting afresh" in capsys.readouterr().out
    assert not (folder / "checkpoint.json").exists() and not list(folder.glob("epoch-*.pt"))


@pytest.mark.parametrize(
    "first, then, message",
    [
        (SHORT, [*PIPE1, "--epochs", "3"], "is a --mode minibatch run; resume it with --mode"),
        ([*PIPE1, "--epochs", "1"], [*SHORT, "--epochs", "3"], "is a --mode pipe run"),
        ([*SHORT, "--epochs", "1"], [*SHORT, "--epochs", "3", "--lr", "0.05"],
         "(lr: checkpoint 0.01 vs now 0.05)"),
        ([*SHORT, "--epochs", "1"], [*SHORT, "--epochs", "3", "--weight-decay", "0.5"],
         "(weight_decay: checkpoint 0.0 vs now 0.5)"),
        ([*PIPE1, "--epochs", "1"], [*PIPE1, "--epochs", "3", "--lr", "0.05"],
         "(lr: config.json 0.01 vs now 0.05)"),
        ([*SHORT, "--epochs", "2"], [*SHORT, "--epochs", "2"], "is at epoch 2 already"),
        ([*PIPE1, "--epochs", "2"], [*PIPE1, "--epochs", "1"], "is at epoch 2 already"),
    ],
)  # fmt: skip
def test_resume_that_would_not_continue_the_run_is_an_error(tmp_path, capsys, first, then, message):
    # Each used to go on silently: another mode found no checkpoint of its kind and started
    # over (replacing the rows); a changed --lr / --weight-decay was dropped by the restored
    # optimizer (mini-batch) or taken (full-graph); --epochs at the checkpoint trained nothing.
    first = first if "--epochs" in first else [*first, "--epochs", "1"]
    assert main([*first, "--out", str(tmp_path)]) == 0
    before = read_metrics(tmp_path / "metrics.jsonl")
    capsys.readouterr()
    assert main([*then, "--resume", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert read_metrics(tmp_path / "metrics.jsonl") == before  # nothing replaced


@pytest.mark.parametrize("damage", ["delete", "empty", "truncate", "garbage"])
def test_resume_with_a_damaged_rank_file_is_one_line(tmp_path, capsys, damage):
    # It used to reach the rank: a RankFailure traceback (and "Connection closed by peer"
    # from the other ranks).
    assert main([*PIPE1, "--epochs", "1", "--out", str(tmp_path)]) == 0
    path = next((tmp_path / "checkpoint").glob("epoch-000001.rank-0000.pt"))
    data = path.read_bytes()
    if damage == "delete":
        path.unlink()
    else:
        path.write_bytes(
            {"empty": b"", "truncate": data[: len(data) // 2], "garbage": b"x" * 99}[damage]
        )
    capsys.readouterr()
    assert main([*PIPE1, "--epochs", "2", "--resume", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err, err
    assert ("is missing" if damage == "delete" else "is damaged") in err
