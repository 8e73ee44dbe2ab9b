"""Synthetic datasets: structure, determinism, homophily and skew, the cache, and GNN > MLP."""

import importlib
import json
import os

import numba
import numpy as np
import pytest
import torch

from gnnsys.datasets import Dataset, rmat_dataset, synthetic

S = importlib.import_module(
    "gnnsys.datasets.synthetic"
)  # the module; the package exports the function


@pytest.fixture(scope="module")
def tiny():
    return synthetic("tiny", cache=False)


def _arrays(ds):
    return {
        "indptr": ds.graph.indptr,
        "indices": ds.graph.indices,
        "x": ds.x,
        "y": ds.y,
        "train": ds.train_idx,
        "val": ds.val_idx,
        "test": ds.test_idx,
    }


def _assert_same(a, b):
    for k, v in _arrays(a).items():
        assert torch.equal(v, _arrays(b)[k]), k


def test_tiny_structure(tiny):
    ds = tiny
    n = ds.num_nodes
    assert isinstance(ds, Dataset) and ds.name == "tiny"
    assert 1500 < n < 4000, n
    assert ds.x.shape == (n, 32) and ds.x.dtype == torch.float32
    assert ds.y.dtype == torch.int64 and int(ds.y.min()) >= 0 and int(ds.y.max()) < 8
    assert ds.num_classes == 8 and ds.graph.indices.dtype == torch.int32
    # Every class is present, splits are disjoint and cover every node.
    assert torch.bincount(ds.y, minlength=8).min() > 0
    allidx = torch.cat([ds.train_idx, ds.val_idx, ds.test_idx])
    assert torch.equal(torch.sort(allidx).values, torch.arange(n))
    assert abs(ds.train_idx.numel() - 0.3 * n) <= 1 and abs(ds.val_idx.numel() - 0.2 * n) <= 1


def test_tiny_graph_is_symmetric_simple_and_has_no_isolated_nodes(tiny):
    g = tiny.graph
    a = g.to_scipy().tocsr()
    assert (a != a.T).nnz == 0  # symmetric
    assert a.diagonal().sum() == 0  # no self loops
    assert a.max() == 1  # no parallel edges (weights would add up)
    assert int(g.in_degrees().min()) >= 1  # isolated nodes dropped
    ip, ix = g.indptr.numpy(), g.indices.numpy()
    for v in range(0, g.num_nodes, 97):  # columns sorted by source
        col = ix[ip[v] : ip[v + 1]]
        assert np.all(col[1:] > col[:-1])


def test_homophily_and_degree_skew(tiny):
    ds = tiny
    ei = ds.graph.to_edge_index()
    homophily = (ds.y[ei[0]] == ds.y[ei[1]]).float().mean().item()
    assert homophily > 0.7, homophily
    deg = ds.graph.in_degrees().double()
    assert deg.max() > 15 * deg.mean()
    # Power-law-ish: many degree-1 nodes, and a tail reaching past 10x the median.
    assert (deg == 1).double().mean() > 0.15
    assert (deg > 10 * deg.median()).double().mean() > 0.01


def test_plain_rmat_has_no_homophily():
    ds = rmat_dataset(scale=11, edge_factor=8, feat_dim=8, num_classes=4, cache=False)
    ei = ds.graph.to_edge_index()
    homophily = (ds.y[ei[0]] == ds.y[ei[1]]).float().mean().item()
    assert homophily < 0.4, homophily  # ~1/4 for 4 balanced classes
    assert ds.x.shape[1] == 8 and ds.num_classes == 4


def test_planted_communities_raise_homophily_keep_skew():
    kw = dict(scale=12, edge_factor=8, feat_dim=4, num_classes=10, cache=False)
    plain, planted = rmat_dataset(**kw), rmat_dataset(intra=0.9, **kw)
    ei = planted.graph.to_edge_index()
    assert (planted.y[ei[0]] == planted.y[ei[1]]).float().mean() > 0.8
    dp, dq = plain.graph.in_degrees().double(), planted.graph.in_degrees().double()
    assert dq.max() > 0.3 * dp.max() and dq.max() > 15 * dq.mean()


def test_same_seed_same_arrays_other_seed_differs(tiny):
    _assert_same(tiny, synthetic("tiny", seed=0, cache=False))
    other = synthetic("tiny", seed=1, cache=False)
    assert not torch.equal(other.y[:100], tiny.y[:100]) or other.num_nodes != tiny.num_nodes


def test_thread_count_does_not_change_arrays(tiny):
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = synthetic("tiny", cache=False)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = synthetic("tiny", cache=False)
    finally:
        numba.set_num_threads(old)
    _assert_same(one, two)
    _assert_same(one, tiny)


def test_cache_round_trip(tmp_path, tiny):
    first = synthetic("tiny", root=tmp_path)
    folders = list((tmp_path / "synthetic").iterdir())
    assert [f.name for f in folders] == [f"tiny-seed0-{S.GENERATOR_VERSION}"]
    files = sorted(p.name for p in folders[0].iterdir())
    assert files == sorted([f"{k}.npy" for k in S._ARRAYS] + ["meta.json"])
    meta = json.loads((folders[0] / "meta.json").read_text())
    assert meta["version"] == S.GENERATOR_VERSION and meta["num_nodes"] == tiny.num_nodes
    second = synthetic("tiny", root=tmp_path)
    _assert_same(first, tiny)
    _assert_same(second, tiny)
    # The cached copy is memory-mapped copy-on-write: writing to it never touches the file.
    second.x[0, 0] = 1e6
    third = synthetic("tiny", root=tmp_path)
    assert third.x[0, 0] == tiny.x[0, 0]
    synthetic("tiny", seed=1, root=tmp_path)
    assert len(list((tmp_path / "synthetic").iterdir())) == 2  # keyed by seed


def test_cache_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GNNSYS_HOME", str(tmp_path / "home"))
    assert S.default_root() == tmp_path / "home"
    synthetic("tiny")
    assert (tmp_path / "home" / "synthetic" / f"tiny-seed0-{S.GENERATOR_VERSION}").is_dir()
    monkeypatch.delenv("GNNSYS_HOME")
    assert S.default_root() == S.Path.home() / ".cache" / "gnnsys"


def test_damaged_cache_is_regenerated(tmp_path, tiny):
    synthetic("tiny", root=tmp_path)
    folder = tmp_path / "synthetic" / f"tiny-seed0-{S.GENERATOR_VERSION}"
    os.remove(folder / "y.npy")
    with pytest.warns(UserWarning, match="regenerating"):
        again = synthetic("tiny", root=tmp_path)
    _assert_same(again, tiny)
    assert (folder / "y.npy").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp dirs


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match="tiny.*mini.*products.*rmat20"):
        synthetic("huge")


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(scale=0), ValueError, "scale"),
        (dict(feat_dim=0), ValueError, "feat_dim"),
        (dict(num_classes=2.0), TypeError, "num_classes"),
        (dict(scale=2, num_classes=5), ValueError, "num_classes"),
        (dict(intra=1.5), ValueError, "intra"),
        (dict(noise=-1.0), ValueError, "noise"),
        (dict(seed=-3), ValueError, "seed"),
        (dict(scale=1, edge_factor=0.5, num_classes=1), ValueError, "only self loops"),
    ],
)
def test_rmat_dataset_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        rmat_dataset(**{"scale": 8, "edge_factor": 4, "cache": False, **kwargs})


def test_to_pyg(tiny):
    data = tiny.to_pyg()
    assert data.num_nodes == tiny.num_nodes
    assert data.edge_index.shape == (2, tiny.num_edges)
    assert int(data.train_mask.sum()) == tiny.train_idx.numel()
    assert int(data.val_mask.sum()) == tiny.val_idx.numel()
    assert int(data.test_mask.sum()) == tiny.test_idx.numel()
    assert torch.equal(data.x, tiny.x) and torch.equal(data.y, tiny.y)


def _train(model, data, ds, epochs):
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            model(data.x, data.edge_index)[ds.train_idx], ds.y[ds.train_idx]
        )
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(data.x, data.edge_index).argmax(1)
    return (pred[ds.test_idx] == ds.y[ds.test_idx]).double().mean().item()


def test_sage_beats_mlp_on_tiny(tiny):
    from torch_geometric.nn import SAGEConv

    class SAGE(torch.nn.Module):
        def __init__(self, i, h, o):
            super().__init__()
            self.c1, self.c2 = SAGEConv(i, h), SAGEConv(h, o)

        def forward(self, x, ei):
            return self.c2(torch.relu(self.c1(x, ei)), ei)

    class MLP(torch.nn.Module):
        def __init__(self, i, h, o):
            super().__init__()
            self.l1, self.l2 = torch.nn.Linear(i, h), torch.nn.Linear(h, o)

        def forward(self, x, ei):
            return self.l2(torch.relu(self.l1(x)))

    data = tiny.to_pyg()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread avoids OpenMP spinning on a busy host
    try:
        torch.manual_seed(0)
        mlp = _train(MLP(32, 64, 8), data, tiny, 40)
        torch.manual_seed(0)
        sage = _train(SAGE(32, 64, 8), data, tiny, 40)
    finally:
        torch.set_num_threads(threads)
    assert sage > mlp + 0.15, (sage, mlp)
