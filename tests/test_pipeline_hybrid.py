"""gnnsys.pipeline_parallel.hybrid: the stages x groups grid on 4 gloo ranks (one spawn).

Checks: one group is GNNPipe; one chunk is exact full-graph training; one stage with one chunk
is graph parallelism; with lr 0 the output becomes exact after L epochs; bytes equal the rows
the exchange plan and the pipeline boundaries name; gradients through fresh reads are on with
one group and switched off with several.
"""

import pytest
import torch

from gnnsys.datasets import rmat_dataset
from gnnsys.pipeline_parallel.chunks import ExchangePlan
from gnnsys.pipeline_parallel.config import ModelConfig
from gnnsys.pipeline_parallel.launch import run, run_many
from gnnsys.pipeline_parallel.model import build_model

HIDDEN, LAYERS = 8, 4


def _toy(seed=1):
    # ~110 nodes, power-law degrees, 3 planted classes, 5 features (the project's generator).
    return rmat_dataset(
        scale=7, edge_factor=6, feat_dim=5, num_classes=3, intra=0.8, seed=seed, cache=False
    )


def _model(kind):
    return {"kind": kind, "hidden": HIDDEN, "num_layers": LAYERS}


# SGD: a step is linear in the gradient, so runs that agree up to rounding stay together
# (Adam's first step, lr * sign(g), would amplify rounding noise in near-zero gradients).
TRAIN = {"epochs": 3, "lr": 0.05, "optimizer": "sgd", "record": True}
FG = {"fresh_grad": True}  # asked for everywhere: kept with one group, switched off with several
EXACT = {"epochs": LAYERS + 1, "lr": 0.0, "record": True, "eval_every": 0}


def _hybrid(kind, stages, groups, chunks, train=TRAIN, techniques=FG):
    return dict(
        mode="hybrid",
        model=_model(kind),
        stages=stages,
        groups=groups,
        chunks=chunks,
        train=train,
        techniques=techniques,
    )


@pytest.fixture(scope="module")
def runs():
    ds = _toy()
    exact_tech = {
        "warm_fill": False,
        "smoothing": False,
        "shuffle_chunks": False,
        "fresh_grad": True,
    }
    specs = {
        "pipe4": dict(mode="pipe", model=_model("gcnii"), chunks=4, train=TRAIN, techniques=FG),
        "hyb4x1": _hybrid("gcnii", 4, 1, 4),
        "hyb2x2-one": _hybrid("gcnii", 2, 2, 1),
        "hyb2x2-exact": _hybrid("gcn", 2, 2, 3, train=EXACT, techniques=exact_tech),
        "hyb1x4": _hybrid("sage", 1, 4, 1),
        "graph4": dict(mode="graph", model=_model("sage"), train=TRAIN),
    }
    out = dict(zip(specs, run_many(ds, list(specs.values()), 4)))
    out["ref-gcnii"] = run("single", ds, _model("gcnii"), train=TRAIN)
    out["ref-exact"] = run("single", ds, _model("gcn"), train=EXACT)
    out["dataset"] = ds
    return out


def _logits(out, epoch):
    full = None
    for r in out["ranks"]:
        lg = r["record"]["logits"].get(epoch)
        if lg is not None:
            full = lg.clone() if full is None else torch.where(torch.isnan(full), lg, full)
    return full


def test_one_group_is_gnnpipe(runs):
    a, b = runs["pipe4"], runs["hyb4x1"]
    assert a["layer_ranges"] == b["layer_ranges"]
    for x, y in zip(a["epochs"], b["epochs"]):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6)
        assert x["test_acc"] == y["test_acc"]
        assert x["bytes"] == y["bytes"]
    assert torch.allclose(_logits(a, 3), _logits(b, 3), atol=1e-6)


def test_fresh_grad_on_with_one_group_off_with_several(runs):
    assert all(r["fresh_grad"] for r in runs["hyb4x1"]["ranks"])
    for name in ("hyb2x2-one", "hyb2x2-exact", "hyb1x4"):
        assert not any(r["fresh_grad"] for r in runs[name]["ranks"]), name


def test_one_chunk_is_exact_full_graph_training(runs):
    out, ref = runs["hyb2x2-one"], runs["ref-gcnii"]
    for x, y in zip(out["epochs"], ref["epochs"]):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-5)
    for r in out["ranks"]:  # ranks of one stage hold the same all-reduced gradients
        for name, g in r["record"]["grads"].items():
            assert torch.allclose(g, ref["record"]["grads"][name], atol=1e-5), name
    assert torch.allclose(_logits(out, 3), ref["record"]["logits"][3], atol=1e-5)


def test_one_stage_one_chunk_is_graph_parallel(runs):
    a, b = runs["hyb1x4"], runs["graph4"]
    for x, y in zip(a["epochs"], b["epochs"]):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6)
        for kind in ("halo", "halo_grad", "allreduce"):
            assert x["bytes"][kind] == y["bytes"][kind]


def test_lr0_output_exact_after_num_layers_epochs(runs):
    out, ref = runs["hyb2x2-exact"], runs["ref-exact"]
    for epoch in range(1, LAYERS + 2):
        err = (_logits(out, epoch) - ref["record"]["logits"][epoch]).abs().max().item()
        assert (err < 1e-5) == (epoch >= LAYERS), (epoch, err)
    assert out["max_stale_age"] == 1 and out["max_fresh_age"] == 0


def test_bytes_equal_plan_and_boundaries(runs):
    out, ds = runs["hyb2x2-exact"], runs["dataset"]
    adj = build_model(ModelConfig(**_model("gcn")), 5, 3, seed=0).prepare_graph(ds.graph)
    chunk_of, owner = out["assignment"]["chunk_of"], out["assignment"]["owner"]
    plan = ExchangePlan(adj, chunk_of, owner, 3, 2)
    assert plan.live_rows() < plan.total_rows()
    n = ds.graph.num_nodes
    for row in out["epochs"]:
        b = row["bytes"]
        assert b["activation"] == b["gradient"] == 1 * n * HIDDEN * 4
        assert b["halo"] == LAYERS * plan.total_rows() * HIDDEN * 4
        assert b["halo_grad"] == LAYERS * plan.live_rows() * HIDDEN * 4
    ei = adj.to_edge_index()
    stale = int((chunk_of[ei[0]] > chunk_of[ei[1]]).sum())
    assert out["stale_reads"][2] == LAYERS * stale


def test_gcnii_boundaries_carry_d_and_the_projection_is_summed_over_all_ranks(runs):
    # h0 is recomputed on every rank: boundaries carry d floats per node, and the replicated
    # input projection is all-reduced over all 4 ranks, the other parameters in stage groups.
    out, n = runs["hyb2x2-one"], runs["dataset"].graph.num_nodes
    model = build_model(ModelConfig(**_model("gcnii")), 5, 3, seed=0)
    sizes = {name: p.numel() * 4 for name, p in model.named_parameters()}
    pre = sum(b for name, b in sizes.items() if name.startswith("input_proj."))
    rest = sum(sizes.values()) - pre
    for row in out["epochs"]:
        assert row["bytes"]["activation"] == row["bytes"]["gradient"] == 1 * n * HIDDEN * 4
        assert row["bytes"]["allreduce"] == 4 * pre + 2 * rest
