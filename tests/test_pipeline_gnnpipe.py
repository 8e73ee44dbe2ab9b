"""gnnsys.pipeline_parallel.gnnpipe: GNNPipe on 3 gloo ranks (one spawn serves every check).

Checks: one chunk reproduces single-process training (loss, gradients, next-step output);
with lr 0 histories become exact layer by layer; stale reads and bytes equal their counts
computed from the graph; 1F1B computes what GPipe computes; every technique runs together,
and switching any one of them off leaves training identical until the epoch where it first acts,
then changes it. On a graph whose edges never point to an earlier chunk every read is fresh, and
with ``fresh_grad`` one epoch of M chunks is exactly full-graph training (1 and 3 stages);
without it, it is not.
"""

import dataclasses
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from gnnsys.datasets import rmat_dataset
from gnnsys.graph import Graph
from gnnsys.pipeline_parallel.config import ModelConfig, TrainConfig
from gnnsys.pipeline_parallel.gnnpipe import PipeTrainer, backward_with
from gnnsys.pipeline_parallel.launch import run, run_many
from gnnsys.pipeline_parallel.model import build_model
from gnnsys.pipeline_parallel.partition import partition

STAGES = 3
KINDS = ["gcnii", "gcn", "sage", "gat"]
HIDDEN = 8
LAYERS = 4


def _toy(seed=0):
    # ~110 nodes, power-law degrees, 3 planted classes, 5 features (the project's generator).
    return rmat_dataset(
        scale=7, edge_factor=6, feat_dim=5, num_classes=3, intra=0.8, seed=seed, cache=False
    )


def _model(kind):
    return {"kind": kind, "hidden": HIDDEN, "num_layers": LAYERS, "heads": 2}


# SGD for runs compared with the reference after a step: its update is linear in the gradient,
# while Adam's first step (lr * sign(g)) turns rounding noise in near-zero gradients into lr.
ONE = {"epochs": 2, "lr": 0.05, "optimizer": "sgd", "record": True}
EXACT = {"epochs": LAYERS + 1, "lr": 0.0, "record": True, "eval_every": 0}
# Raw histories and a fixed order: exactness and stale counts are checkable.
NO_WARM = {"warm_fill": False, "smoothing": False, "shuffle_chunks": False}
# Every technique on; and each one's "off" value.
ALL_TECHNIQUES = {
    "warm_fill": True,
    "smoothing": True,
    "refresh_every": 2,
    "shuffle_chunks": True,
    "clip_norm": 0.1,
}
TECHNIQUE_OFF = {
    "warm_fill": False,
    "smoothing": False,
    "refresh_every": 0,
    "shuffle_chunks": False,
    "clip_norm": None,
}
# The epoch whose loss a technique first changes: the warm fill and the chunk order shape epoch
# 1's reads; smoothing is the identity until a history has two values; clipping acts after the
# first backward; the refresh runs before epoch 3 (every 2nd epoch after the first).
FIRST_EFFECT = {"warm_fill": 1, "shuffle_chunks": 1, "smoothing": 2, "clip_norm": 2,
                "refresh_every": 3}  # fmt: skip


def _techniques_spec(epochs, **techniques):
    return dict(
        mode="pipe",
        model={**_model("sage"), "dropout": 0.3},
        chunks=6,
        train={"epochs": epochs},
        techniques={**ALL_TECHNIQUES, **techniques},
    )


@pytest.fixture(scope="module")
def runs():
    ds = _toy()
    specs = {}
    for kind in KINDS:
        specs[f"one-{kind}"] = dict(mode="pipe", model=_model(kind), chunks=1, train=ONE)
    specs["exact"] = dict(
        mode="pipe", model=_model("gcn"), chunks=4, train=EXACT, techniques=NO_WARM
    )
    for sched in ("gpipe", "1f1b"):  # fresh_grad needs GPipe's order: off in both
        specs[sched] = dict(
            mode="pipe",
            model=_model("gcnii"),
            chunks=5,
            train={"epochs": 3, "lr": 0.02, "schedule": sched, "record": True},
            techniques={"fresh_grad": False},
        )
    specs["all-techniques"] = _techniques_spec(4)
    for name, off in TECHNIQUE_OFF.items():  # 3 epochs: every technique has acted by then
        specs[f"without-{name}"] = _techniques_spec(3, **{name: off})
    outs = run_many(ds, list(specs.values()), STAGES)
    out = dict(zip(specs, outs))
    for kind in KINDS:
        out[f"ref-{kind}"] = run("single", ds, _model(kind), train=ONE)
    out["ref-exact"] = run("single", ds, _model("gcn"), train=EXACT)
    out["dataset"] = ds
    return out


def _merged_logits(out, epoch):
    full = None
    for r in out["ranks"]:
        lg = r["record"]["logits"].get(epoch) if r["record"] else None
        if lg is None:
            continue
        full = lg.clone() if full is None else torch.where(torch.isnan(full), lg, full)
    return full


@pytest.mark.parametrize("kind", KINDS)
def test_one_chunk_equals_single_process(runs, kind):
    out, ref = runs[f"one-{kind}"], runs[f"ref-{kind}"]
    ranges = out["layer_ranges"]
    assert len(ranges) == STAGES and ranges[0][0] == 0 and ranges[-1][1] == LAYERS
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(ranges, ranges[1:]))
    for a, b in zip(out["epochs"], ref["epochs"]):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        assert a["test_acc"] == pytest.approx(b["test_acc"])
    ref_grads = ref["record"]["grads"]
    owned, held = [], set()
    for r in out["ranks"]:
        owned += r["owned_parameters"]
        for name, g in r["record"]["grads"].items():  # replicas too (GCNII's input projection)
            held.add(name)
            assert torch.allclose(g, ref_grads[name], atol=1e-5), (r["rank"], name)
    assert sorted(owned) == sorted(ref_grads)  # the stages own every parameter exactly once
    assert held == set(ref_grads)
    replicas = {
        n for r in out["ranks"][1:] for n in r["record"]["grads"] if n.startswith("input_proj.")
    }
    assert replicas == ({"input_proj.weight", "input_proj.bias"} if kind == "gcnii" else set())
    for epoch in (1, 2):  # epoch 2 runs on weights after one optimizer step
        assert torch.allclose(_merged_logits(out, epoch), ref["record"]["logits"][epoch], atol=1e-5)


def test_histories_become_exact_one_layer_per_epoch(runs):
    out, ref, ds = runs["exact"], runs["ref-exact"], runs["dataset"]
    model = build_model(ModelConfig(**_model("gcn")), ds.x.shape[1], ds.num_classes, seed=0).eval()
    adj = model.prepare_graph(ds.graph)
    with torch.no_grad():
        h = model.embed(ds.x)
        inputs = []
        for layer in range(LAYERS):
            inputs.append(h)
            h = model.layer(layer, adj, h)
    # Only the rows another chunk reads (sources of edges across chunks) are kept; the others
    # are never written.
    chunk_of = out["assignment"]["chunk_of"]
    ei = ds.graph.to_edge_index()
    read = torch.zeros(ds.graph.num_nodes, dtype=torch.bool)
    read[ei[0][chunk_of[ei[0]] != chunk_of[ei[1]]]] = True
    assert 0 < int(read.sum()) < ds.graph.num_nodes
    assert all(r["history_rows"] == int(read.sum()) for r in out["ranks"])  # rows it keeps
    for epoch in range(1, LAYERS + 1):
        for r in out["ranks"]:
            for layer, buf in r["record"]["history"][epoch].items():
                err = (buf[read] - inputs[layer][read]).abs().max().item()
                if layer < epoch:  # layer l's input is l hops deep: exact after epoch l
                    assert err < 1e-5, (epoch, layer, err)
                else:
                    assert err > 1e-4, (epoch, layer, err)
                assert not buf[~read].any(), (epoch, layer)
    for epoch in range(1, LAYERS + 2):
        err = (_merged_logits(out, epoch) - ref["record"]["logits"][epoch]).abs().max().item()
        assert (err < 1e-5) == (epoch >= LAYERS), (epoch, err)  # the output is L hops deep


def test_stale_reads_and_age(runs):
    out, ds = runs["exact"], runs["dataset"]
    chunk_of = out["assignment"]["chunk_of"]
    ei = ds.graph.to_edge_index()
    into_earlier = int((chunk_of[ei[0]] > chunk_of[ei[1]]).sum())
    assert into_earlier > 0
    for epoch in range(1, LAYERS + 2):
        assert out["stale_reads"][epoch] == LAYERS * into_earlier
    assert out["max_stale_age"] == 1
    assert out["max_fresh_age"] == 0


def test_bytes_equal_boundary_volume(runs):
    ds = runs["dataset"]
    n, in_dim = ds.graph.num_nodes, ds.x.shape[1]
    # GCNII recomputes h0 on every stage: its boundaries carry d floats per node like GCN's,
    # plus one all-reduce of the input projection's gradients (each rank contributes it once).
    projection = (in_dim * HIDDEN + HIDDEN) * 4
    for name, replicas in (("exact", 0), ("one-gcnii", STAGES), ("gpipe", STAGES)):
        out = runs[name]
        for row in out["epochs"]:
            expect = (STAGES - 1) * n * HIDDEN * 4
            assert row["bytes"]["activation"] == expect, name
            assert row["bytes"]["gradient"] == expect, name
            assert row["bytes"].get("allreduce", 0) == replicas * projection, name
            assert "halo" not in row["bytes"]
    # The warm fill moves each boundary once forward.
    assert runs["one-gcnii"]["warm"]["bytes"]["warm"] == (STAGES - 1) * n * HIDDEN * 4
    assert runs["exact"]["warm"]["bytes"] == {}


def test_1f1b_computes_what_gpipe_computes(runs):
    a, b = runs["gpipe"], runs["1f1b"]
    for x, y in zip(a["epochs"], b["epochs"]):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6)
        assert x["bytes"] == y["bytes"]
    assert torch.allclose(_merged_logits(a, 3), _merged_logits(b, 3), atol=1e-5)


def test_all_techniques_run(runs):
    out = runs["all-techniques"]
    losses = [r["loss"] for r in out["epochs"]]
    assert all(torch.isfinite(torch.tensor(losses)))
    n = runs["dataset"].graph.num_nodes
    assert out["warm"]["bytes"]["warm"] == (STAGES - 1) * n * HIDDEN * 4
    refreshed = [r["epoch"] for r in out["epochs"] if "refresh" in r["bytes"]]
    assert refreshed == [3]  # before every 2nd epoch after the first
    assert all(r["bytes"]["clip"] > 0 for r in out["epochs"])
    assert out["max_stale_age"] <= 1


@pytest.mark.parametrize("technique", list(FIRST_EFFECT))
def test_each_technique_changes_training_from_the_epoch_it_acts(runs, technique):
    # Same seeds and data: a technique that were ignored would leave every loss bit-identical.
    on = [r["loss"] for r in runs["all-techniques"]["epochs"][:3]]
    off = [r["loss"] for r in runs[f"without-{technique}"]["epochs"]]
    first = FIRST_EFFECT[technique]
    assert len(off) == 3
    assert off[: first - 1] == on[: first - 1], (technique, on, off)  # identical before
    diff = max(abs(a - b) for a, b in zip(on[first - 1 :], off[first - 1 :]))
    assert diff > 1e-5, (technique, on, off)  # and changed from then on (measured >= 1.3e-4)


def test_fresh_grad_refuses_1f1b():
    for sched, ok in (("gpipe", True), ("1f1b", False)):
        stub = SimpleNamespace(tcfg=TrainConfig(schedule=sched))
        if ok:
            assert PipeTrainer._fresh_grad_supported(stub)
        else:
            with pytest.raises(ValueError, match="fresh_grad needs schedule='gpipe'"):
                PipeTrainer._fresh_grad_supported(stub)


# ---------------------------------------------------------------- every read fresh
DAG_CHUNKS = 4
DAG_KINDS = ["gcnii", "sage"]
# lr 0 and no dropout: the weights stay put, so fresh reads hold this epoch's exact values.
DAG_TRAIN = {"epochs": 1, "lr": 0.0, "record": True, "eval_every": 0}
DAG_TECH = {"warm_fill": True, "smoothing": False, "shuffle_chunks": False}


def _dag_dataset():
    """The toy graph without edges into earlier chunks (chunks: the seeded random partition,
    which depends only on the node count, so the launcher assigns the same chunks)."""
    ds = _toy()
    chunk_of = partition(ds.graph, DAG_CHUNKS, method="random", seed=0).part
    ei = ds.graph.to_edge_index()
    keep = chunk_of[ei[0]] <= chunk_of[ei[1]]
    assert 0 < int((chunk_of[ei[0]] < chunk_of[ei[1]]).sum()) and not bool(keep.all())
    graph = Graph.from_edge_index(ei[:, keep], ds.graph.num_nodes)
    assert torch.equal(partition(graph, DAG_CHUNKS, method="random", seed=0).part, chunk_of)
    return dataclasses.replace(ds, graph=graph)


def _dag_spec(kind, fresh_grad):
    return dict(
        mode="pipe",
        model=_model(kind),
        chunks=DAG_CHUNKS,
        train=DAG_TRAIN,
        techniques={**DAG_TECH, "fresh_grad": fresh_grad},
        partition_method="random",
    )


@pytest.fixture(scope="module")
def dag_runs():
    ds = _dag_dataset()
    out = {"dataset": ds}
    keys = [(k, True, STAGES) for k in DAG_KINDS] + [("gcnii", False, STAGES)]
    outs = run_many(ds, [_dag_spec(k, f) for k, f, _ in keys], STAGES)
    out.update(zip(keys, outs))
    keys1 = [(k, True, 1) for k in DAG_KINDS] + [("gcnii", False, 1)]
    out.update(zip(keys1, run_many(ds, [_dag_spec(k, f) for k, f, _ in keys1], 1)))
    for kind in DAG_KINDS:
        out[kind] = run("single", ds, _model(kind), train=DAG_TRAIN)
    return out


def _grad_errors(out, ref):
    ref_grads = ref["record"]["grads"]
    errs = {}
    for r in out["ranks"]:
        for name, g in r["record"]["grads"].items():
            errs[name] = max(errs.get(name, 0.0), (g - ref_grads[name]).abs().max().item())
    assert set(errs) == set(ref_grads)
    return errs


@pytest.mark.parametrize("stages", [1, STAGES])
@pytest.mark.parametrize("kind", DAG_KINDS)
def test_fresh_grad_all_fresh_equals_full_graph(dag_runs, kind, stages):
    out, ref = dag_runs[(kind, True, stages)], dag_runs[kind]
    assert len(out["ranks"]) == stages and all(r["fresh_grad"] for r in out["ranks"])
    assert out["stale_reads"] == {1: 0} and out["max_fresh_age"] == 0  # every read fresh
    assert out["epochs"][0]["loss"] == pytest.approx(ref["epochs"][0]["loss"], abs=1e-5)
    errs = _grad_errors(out, ref)
    assert max(errs.values()) < 1e-5, errs
    n = dag_runs["dataset"].graph.num_nodes
    row = out["epochs"][0]["bytes"]  # no new traffic: the boundary messages as before
    assert row.get("activation", 0) == row.get("gradient", 0) == (stages - 1) * n * HIDDEN * 4


@pytest.mark.parametrize("stages", [1, STAGES])
def test_without_fresh_grad_gradients_differ(dag_runs, stages):
    out, ref = dag_runs[("gcnii", False, stages)], dag_runs["gcnii"]
    assert not any(r["fresh_grad"] for r in out["ranks"])
    # Same forward (every read is fresh and exact), but no gradient through the reads.
    assert out["epochs"][0]["loss"] == pytest.approx(ref["epochs"][0]["loss"], abs=1e-5)
    errs = _grad_errors(out, ref)
    assert max(errs.values()) > 1e-3, errs
    on = dag_runs[("gcnii", True, stages)]
    assert out["epochs"][0]["bytes"] == on["epochs"][0]["bytes"]


def test_backward_with_gives_torchs_gradients_bitwise():
    torch.manual_seed(0)
    x = torch.randn(7, 5, requires_grad=True)
    w = torch.randn(5, 3, requires_grad=True)
    g = torch.randn(7, 3)
    backward_with(torch.tanh(x @ w), g)
    mine = (x.grad.clone(), w.grad.clone())
    x.grad = w.grad = None
    torch.autograd.backward(torch.tanh(x @ w), g)
    assert torch.equal(mine[0], x.grad) and torch.equal(mine[1], w.grad)
    with pytest.raises(RuntimeError, match=r"gradient of shape \(7, 2\) for an output of shape"):
        backward_with(torch.tanh(x @ w), torch.zeros(7, 2))


def test_backward_with_does_not_import_sympy():
    # torch's explicit-gradient backward imports sympy on first use (0.5 s of CPU per rank in
    # the first epoch); backward_with must not.
    code = (
        "import sys, torch\n"
        "from gnnsys.pipeline_parallel.gnnpipe import backward_with\n"
        "x = torch.ones(3, requires_grad=True)\n"
        "backward_with(x * 2, torch.ones(3))\n"
        "assert x.grad.tolist() == [2.0, 2.0, 2.0]\n"
        "print('sympy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_to_device_copies_a_blocks_structure_once():
    # On a device, a chunk's structure (the same tensors in every order) is copied once; the
    # fresh/stale split of the order is copied for each new block. ("meta" stands in for CUDA.)
    from gnnsys.pipeline_parallel.chunks import ChunkSampler

    g = torch.Generator().manual_seed(0)
    graph = Graph.from_edge_index(torch.randint(0, 40, (2, 160), generator=g), 40)
    sampler = ChunkSampler(graph, torch.arange(40) % 4)
    trainer = SimpleNamespace(device=torch.device("meta"), _device_copies={})
    first = PipeTrainer._to_device(trainer, sampler.block(1))
    sampler.set_order([3, 2, 1, 0])
    second = PipeTrainer._to_device(trainer, sampler.block(1))
    for name in ("nodes", "indptr", "indices", "history_rows", "history_nodes"):
        assert getattr(second, name) is getattr(first, name), name
        assert getattr(second, name).device.type == "meta"
    for name in ("fresh_pos", "stale_pos", "fresh_nodes", "stale_nodes"):
        assert getattr(second, name).device.type == "meta"
    assert second.num_fresh != first.num_fresh  # chunk 1: 1 chunk before it, then 2
