"""gnnsys.pipeline_parallel.config: configuration records validate every field by name."""

import pytest

from gnnsys.pipeline_parallel.config import ModelConfig, Techniques, TrainConfig, coerce


def test_defaults_and_coerce():
    assert coerce(TrainConfig, None) == TrainConfig()
    assert coerce(TrainConfig, {"epochs": 3}).epochs == 3
    # an instance keeps its fields (default kind included), overrides replace theirs
    assert coerce(ModelConfig, ModelConfig(hidden=8), num_layers=4) == ModelConfig(
        kind="gcnii", hidden=8, num_layers=4
    )
    got = coerce(ModelConfig, ModelConfig(kind="gat", hidden=8, heads=2), num_layers=4)
    assert (got.kind, got.hidden, got.heads, got.num_layers) == ("gat", 8, 2, 4)
    assert got != ModelConfig(hidden=8, num_layers=4)
    assert Techniques().momentum == 0.95


@pytest.mark.parametrize(
    "cls, kwargs, exc, msg",
    [
        (ModelConfig, {"kind": "gin"}, ValueError, "kind must be one of"),
        (ModelConfig, {"hidden": 0}, ValueError, "hidden must be >= 1, got 0"),
        (ModelConfig, {"num_layers": 2.5}, TypeError, "num_layers must be an int"),
        (ModelConfig, {"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\)"),
        (ModelConfig, {"kind": "gat", "hidden": 10, "heads": 4}, ValueError, "divisible by heads"),
        (Techniques, {"warm_fill": 1}, TypeError, "warm_fill must be a bool"),
        (Techniques, {"momentum": 1.5}, ValueError, "momentum must be in"),
        (Techniques, {"refresh_every": -1}, ValueError, "refresh_every must be >= 0"),
        (Techniques, {"clip_norm": 0.0}, ValueError, r"clip_norm must be in \(0"),
        (TrainConfig, {"epochs": 0}, ValueError, "epochs must be >= 1"),
        (TrainConfig, {"optimizer": "lbfgs"}, ValueError, "optimizer must be one of"),
        (TrainConfig, {"schedule": "zb"}, ValueError, "schedule must be one of"),
        (TrainConfig, {"timeout": 0}, ValueError, "timeout must be in"),
        (TrainConfig, {"lr": "fast"}, TypeError, "lr must be a number"),
        (TrainConfig, {"layer_weight_decay": -0.1}, ValueError, "layer_weight_decay must be in"),
        (TrainConfig, {"layer_weight_decay": True}, TypeError, "layer_weight_decay must be a"),
        (TrainConfig, {"lr_schedule": "step"}, ValueError, "lr_schedule must be one of"),
        (TrainConfig, {"profile": 1}, TypeError, "profile must be a bool"),
        (TrainConfig, {"net_gbps": -10}, ValueError, "net gbps must be finite and > 0"),
        (TrainConfig, {"net_gbps": 10, "net_latency_us": -1}, ValueError, "latency_us must be"),
        (TrainConfig, {"net_latency_us": 5}, ValueError, "needs a modeled bandwidth"),
    ],
)
def test_bad_fields_are_named(cls, kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        cls(**kwargs)


def test_coerce_rejects_unknown_fields():
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['epoch'\]"):
        coerce(TrainConfig, {"epoch": 3})
    with pytest.raises(TypeError, match="expected a Techniques or a dict"):
        coerce(Techniques, 3)
