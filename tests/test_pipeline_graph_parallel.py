"""gnnsys.pipeline_parallel.graph_parallel: the halo-exchange baseline on 2 gloo ranks (one spawn)."""

import pytest
import torch

from gnnsys.datasets import rmat_dataset
from gnnsys.pipeline_parallel.config import ModelConfig
from gnnsys.pipeline_parallel.launch import run, run_many
from gnnsys.pipeline_parallel.model import build_model

KINDS = ["gcnii", "gcn", "sage", "gat"]
HIDDEN, LAYERS = 8, 3


def _toy(seed=2):
    # ~110 nodes, power-law degrees, 3 planted classes, 5 features (the project's generator).
    return rmat_dataset(
        scale=7, edge_factor=6, feat_dim=5, num_classes=3, intra=0.8, seed=seed, cache=False
    )


def _model(kind):
    return {"kind": kind, "hidden": HIDDEN, "num_layers": LAYERS, "heads": 2}


# SGD: a step is linear in the gradient, so runs that agree up to rounding stay together
# (Adam's first step, lr * sign(g), would amplify rounding noise in near-zero gradients).
TRAIN = {"epochs": 2, "lr": 0.05, "optimizer": "sgd", "record": True}


@pytest.fixture(scope="module")
def runs():
    ds = _toy()
    specs = [dict(mode="graph", model=_model(k), train=TRAIN) for k in KINDS]
    specs.append(
        dict(mode="graph", model=_model("sage"), train=TRAIN, techniques={"clip_norm": 1e-3})
    )
    outs = run_many(ds, specs, 2)
    res = {k: o for k, o in zip(KINDS + ["clipped"], outs)}
    for k in KINDS:
        res[f"ref-{k}"] = run("single", ds, _model(k), train=TRAIN)
    res["ref-clipped"] = run(
        "single", ds, _model("sage"), train=TRAIN, techniques={"clip_norm": 1e-3}
    )
    res["dataset"] = ds
    return res


@pytest.mark.parametrize("kind", KINDS + ["clipped"])
def test_two_parts_equal_single_process(runs, kind):
    out, ref = runs[kind], runs[f"ref-{kind}"]
    for x, y in zip(out["epochs"], ref["epochs"]):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-5)
        assert x["val_acc"] == pytest.approx(y["val_acc"])
    for r in out["ranks"]:
        for name, g in r["record"]["grads"].items():
            assert torch.allclose(g, ref["record"]["grads"][name], atol=1e-5), name
    full = torch.full_like(ref["record"]["logits"][2], float("nan"))
    for r in out["ranks"]:
        lg = r["record"]["logits"][2]
        full = torch.where(torch.isnan(full), lg, full)
    assert torch.allclose(full, ref["record"]["logits"][2], atol=1e-5)


def test_bytes_equal_halo_volume(runs):
    out = runs["sage"]
    halo = out["partition"]["groups"]["total_halo"]
    assert halo > 0
    assert out["partition"]["groups"]["method"] in ("metis", "bfs")
    model = build_model(ModelConfig(**_model("sage")), 5, 3, seed=0)
    params = sum(p.numel() for p in model.parameters())
    for row in out["epochs"]:
        assert row["bytes"]["halo"] == LAYERS * halo * HIDDEN * 4
        assert row["bytes"]["halo_grad"] == LAYERS * halo * HIDDEN * 4
        assert row["bytes"]["eval"] == LAYERS * halo * HIDDEN * 4  # one exact forward
        assert row["bytes"]["allreduce"] == 2 * params * 4  # every rank sends its gradients
