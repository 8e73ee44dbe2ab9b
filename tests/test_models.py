"""gnnsys.models: HeteroSAGE (to_hetero GraphSAGE with per-type inputs) trained through the
gnnsys heterogeneous NeighborLoader reaches the accuracy of the same model trained full batch
(the mini-mag run of the same check is benchmarks/hetero_minibatch_accuracy.py)."""

import importlib.util
from pathlib import Path

import pytest
import torch

from gnnsys.datasets import synthetic
from gnnsys.models import HeteroSAGE


def _bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "hetero_minibatch_accuracy.py"
    spec = importlib.util.spec_from_file_location("hetero_minibatch_accuracy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hetero_sage_on_full_graph_and_batches_has_per_type_outputs():
    ds = synthetic("tiny-mag", seed=0)
    data = ds.to_pyg()
    ids = {k: torch.arange(n) for k, n in ds.num_nodes_dict.items()}
    model = HeteroSAGE(data.metadata(), ds.num_nodes_dict, {"paper": 128}, 16, ds.num_classes)
    out = model(data.x_dict, data.edge_index_dict, ids)
    assert out["paper"].shape == (ds.num_nodes_dict["paper"], ds.num_classes)
    # featureless types learn one embedding per node, featured types project their x
    assert set(model.embed) == {"author", "institution", "field_of_study"}
    assert model.embed["author"].num_embeddings == ds.num_nodes_dict["author"]
    assert set(model.proj) == {"paper"}


def test_hetero_sage_drops_out_in_training_only():
    # to_hetero traces the stack: a functional dropout's training flag would be baked in as
    # True (dropout in eval too); the dropout module follows model.eval()/train().
    ds = synthetic("tiny-mag", seed=0)
    data = ds.to_pyg()
    ids = {k: torch.arange(n) for k, n in ds.num_nodes_dict.items()}
    model = HeteroSAGE(data.metadata(), ds.num_nodes_dict, {"paper": 128}, 16, ds.num_classes,
                       dropout=0.5)  # fmt: skip
    runs = []
    for mode in ("eval", "eval", "train"):
        getattr(model, mode)()
        runs.append(model(data.x_dict, data.edge_index_dict, ids)["paper"])
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


@pytest.mark.slow
def test_hetero_sage_minibatch_matches_full_batch_on_tiny_mag():
    """Mini-batch (30 epochs, fanout 10,10) within 2 points of full batch (150 epochs)."""
    full, mini = _bench().train_both("tiny-mag", 150, 30, batch_size=256)
    assert full > 0.45  # the planted structure is learnt
    assert mini >= full - 0.02, (full, mini)


def test_accuracy_benchmark_loaders():
    # benchmarks/hetero_minibatch_accuracy.py's --loader choices build the named loaders
    from gnnsys.loaders.pyg import HGTLoader, NeighborLoader

    bench = _bench()
    ds = synthetic("tiny-mag", seed=0)
    data = ds.to_pyg()
    args = (data, ds.target, ds.train_idx, [4, 4], [8, 8], 16, 0)
    assert isinstance(bench._loader("neighbor", *args), NeighborLoader)
    hgt = bench._loader("hgt", *args)
    assert isinstance(hgt, HGTLoader) and hgt.num_samples[ds.target] == [8, 8]
