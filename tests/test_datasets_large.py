"""The on-disk papers-shaped generator: deterministic, chunking-independent, loadable."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnnsys.datasets import load_folder, synthetic
from gnnsys.datasets.large import LARGE_SPECS, generate_large

FILES = ("indptr.npy", "indices.npy", "x.npy", "y.npy", "train_idx.npy", "val_idx.npy",
         "test_idx.npy", "orig_ids.npy")  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return generate_large("papers-tiny", tmp_path_factory.mktemp("pt") / "d")


def test_same_files_whatever_the_chunking_and_budget(tiny, tmp_path, budget_above_rss):
    other = generate_large(
        "papers-tiny",
        tmp_path / "d",
        chunk_edges=2999,
        chunk_rows=311,
        memory_budget=budget_above_rss("1G"),
    )
    for name in FILES:
        assert (tiny / name).read_bytes() == (other / name).read_bytes(), name
    seed1 = generate_large("papers-tiny", tmp_path / "s1", seed=1)
    assert (seed1 / "indices.npy").read_bytes() != (tiny / "indices.npy").read_bytes()


def test_the_folder_loads_as_a_papers_shaped_dataset(tiny):
    spec = LARGE_SPECS["papers-tiny"]
    ds = load_folder(tiny)
    assert ds.num_nodes == spec.num_nodes and ds.num_classes == spec.num_classes
    assert ds.x.dtype == torch.float16 and ds.x.shape == (spec.num_nodes, spec.feat_dim)
    assert ds.meta["source"] == str(tiny) and ds.meta["num_edges"] == ds.num_edges
    # Symmetric, no self loops, no parallel edges, columns sorted.
    g = ds.graph
    a = sp.csc_matrix(
        (np.ones(g.num_edges), g.indices.numpy(), g.indptr.numpy()),
        shape=(g.num_nodes, g.num_nodes),
    )
    assert (a != a.T).nnz == 0 and a.diagonal().sum() == 0 and a.max() == 1
    # Only the split nodes are labelled, as in papers100M; the split is about its fractions.
    labelled = torch.nonzero(ds.y >= 0).view(-1)
    split = torch.cat([ds.train_idx, ds.val_idx, ds.test_idx]).sort().values
    assert torch.equal(labelled, split)
    assert abs(ds.train_idx.numel() / ds.num_nodes - spec.train) < 0.05
    # Features carry the class: the class means are far apart relative to the noise.
    y, x = ds.y[labelled], ds.x[labelled].float()
    means = torch.stack([x[y == c].mean(0) for c in range(spec.num_classes)])
    assert torch.cdist(means, means).fill_diagonal_(1e9).min() > 0.5


def test_hot_first_folder_is_the_given_order_folder_renamed(tiny, tmp_path):
    given = load_folder(generate_large("papers-tiny", tmp_path / "g", order="given"))
    hot = load_folder(tiny)
    assert not (tmp_path / "g" / "orig_ids.npy").exists()
    orig = torch.from_numpy(np.load(tiny / "orig_ids.npy").astype(np.int64))
    rank = torch.empty_like(orig)
    rank[orig] = torch.arange(orig.numel())
    assert torch.equal(hot.x, given.x[orig]) and torch.equal(hot.y, given.y[orig])
    for part in ("train_idx", "val_idx", "test_idx"):
        assert torch.equal(getattr(hot, part), rank[getattr(given, part)].sort().values)
    # the same edges under the new names, and hot first (ranked by input edge ends before
    # deduplication, so final degrees are nearly, not exactly, non-increasing)
    hs, hd = hot.graph.to_edge_index()
    gs, gd = given.graph.to_edge_index()
    key = lambda s, d: set(zip(s.tolist(), d.tolist()))  # noqa: E731
    assert key(hs, hd) == key(rank[gs], rank[gd])
    top = hot.num_nodes // 10
    for ds, least, most in ((hot, 0.98, 1.0), (given, 0.0, 0.5)):
        deg = ds.graph.indptr.diff()
        share = deg[:top].sum() / deg.sort(descending=True).values[:top].sum()
        assert least <= float(share) <= most


def test_damaged_folders_name_the_file(tiny, tmp_path):
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(tiny, d)
    x = d / "x.npy"
    x.write_bytes(x.read_bytes()[:1000])
    with pytest.raises(ValueError, match="x.npy"):
        load_folder(d)
    shutil.copy(tiny / "x.npy", x)
    (d / "indptr.npy").unlink()
    with pytest.raises(FileNotFoundError, match="indptr.npy is missing"):
        load_folder(d)


def test_synthetic_generates_once_into_the_cache(tmp_path):
    ds = synthetic("papers-tiny", root=tmp_path)
    (folder,) = (tmp_path / "synthetic").iterdir()
    stamp = (folder / "meta.json").stat().st_mtime_ns
    again = synthetic("papers-tiny", root=tmp_path)
    assert (folder / "meta.json").stat().st_mtime_ns == stamp
    assert torch.equal(ds.graph.indices, again.graph.indices)
    with pytest.raises(ValueError, match="cache=True"):
        synthetic("papers-tiny", root=tmp_path, cache=False)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown on-disk"):
        generate_large("papers-huge", "/tmp/never")
    with pytest.raises(ValueError, match="chunk_rows must be >= 1"):
        generate_large("papers-tiny", "/tmp/never", chunk_rows=0)
    with pytest.raises(ValueError, match="memory_budget"):
        generate_large("papers-tiny", "/tmp/never", memory_budget="lots")
