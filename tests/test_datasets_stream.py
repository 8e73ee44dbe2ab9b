"""The synthetic interaction streams: sizes, determinism, chronological split, heavy tails,
drift, the cache, to_pyg, and clear errors."""

import numpy as np
import pytest
import torch

from gnnsys.datasets import STREAM_NAMES, TemporalLinkDataset, synthetic
from gnnsys.datasets.stream import STREAM_SPECS, synthetic_stream


@pytest.fixture(scope="module")
def tiny():
    return synthetic("tiny-stream", cache=False)


def test_tiny_sizes_ids_and_graph(tiny):
    assert isinstance(tiny, TemporalLinkDataset)
    assert set(STREAM_NAMES) == {"tiny-stream", "mini-stream", "stream"}
    assert (tiny.num_users, tiny.num_items, tiny.num_edges) == (900, 100, 10_000)
    assert tiny.num_nodes == 1000 and tiny.x.shape == (1000, 16)
    assert tiny.edge_attr.shape == (10_000, 16) and tiny.edge_attr.dtype == torch.float32
    assert tiny.t.dtype == torch.int64 and bool((tiny.t[1:] >= tiny.t[:-1]).all())
    assert int(tiny.src.max()) < tiny.num_users <= int(tiny.dst.min())
    assert torch.bincount(tiny.src, minlength=900).min() >= 1  # every user interacts
    g = tiny.graph
    assert g.num_edges == 20_000
    # edge ids: k < E is interaction k (user -> item), E + k its reverse
    ei = tiny.edge_index
    col = torch.repeat_interleave(torch.arange(g.num_nodes), g.indptr.diff())
    assert torch.equal(ei[0, g.edge_ids], g.indices.long())
    assert torch.equal(ei[1, g.edge_ids], col)


def test_chronological_split(tiny):
    parts = [tiny.train_idx, tiny.val_idx, tiny.test_idx]
    assert sum(p.numel() for p in parts) == tiny.num_edges
    assert torch.equal(torch.cat(parts), torch.arange(tiny.num_edges))
    fractions = [p.numel() / tiny.num_edges for p in parts]
    assert fractions == pytest.approx([0.70, 0.15, 0.15], abs=0.01)
    (_, t_train), (_, t_val), (v_index, t_test) = (tiny.split(s) for s in ("train", "val", "test"))
    assert int(t_val.min()) > int(t_train.max())  # strictly: ties never straddle a cut
    assert int(t_test.min()) > int(t_val.max())
    index, _ = tiny.split("val")
    assert torch.equal(index, torch.stack([tiny.src[tiny.val_idx], tiny.dst[tiny.val_idx]]))


def test_deterministic_given_seed(tiny):
    again = synthetic_stream("tiny-stream", seed=0, cache=False)
    other = synthetic_stream("tiny-stream", seed=1, cache=False)
    for key in ("src", "dst", "t", "x", "edge_attr"):
        assert torch.equal(getattr(tiny, key), getattr(again, key)), key
    assert torch.equal(tiny.graph.indices, again.graph.indices)
    assert not torch.equal(tiny.dst, other.dst)


def test_heavy_tailed_users_and_drifting_items(tiny):
    deg = np.sort(torch.bincount(tiny.src, minlength=tiny.num_users).numpy())[::-1]
    assert deg[: len(deg) // 100].sum() > 0.15 * deg.sum()  # top 1% of users: > 15% of edges
    assert deg[0] > 20 * np.median(deg)
    e, k = tiny.num_edges, tiny.num_edges // 10
    items = (tiny.dst - tiny.num_users).numpy()

    def share(part):
        return np.bincount(part, minlength=tiny.num_items) / part.size

    drift = 0.5 * np.abs(share(items[:k]) - share(items[e - k :])).sum()
    near = 0.5 * np.abs(share(items[:k]) - share(items[k : 2 * k])).sum()
    assert drift > 0.35 and drift > 2 * near  # total variation, first vs last tenth


def test_to_pyg_edge_level_time(tiny):
    data = tiny.to_pyg()
    e = tiny.num_edges
    assert data.edge_index.shape == (2, 2 * e) and data.time.shape == (2 * e,)
    assert torch.equal(data.time[:e], tiny.t) and torch.equal(data.time[e:], tiny.t)
    assert torch.equal(data.edge_index[:, e:], data.edge_index.flip(0)[:, :e])
    assert data.edge_attr.shape == (2 * e, 16) and data.num_nodes == tiny.num_nodes
    assert int(tiny.item_mask.sum()) == tiny.num_items and not bool(tiny.item_mask[0])


def test_mini_stream_sizes_and_cache(tmp_path):
    ds = synthetic("mini-stream", root=tmp_path)  # generated, written, loaded memory-mapped
    assert (ds.num_users, ds.num_items, ds.num_edges) == (8_227, 1_000, 157_474)
    assert ds.num_nodes == 9_227 and ds.meta["version"] == "s1"
    again = synthetic("mini-stream", root=tmp_path)  # from the cache
    assert torch.equal(again.t, ds.t) and torch.equal(again.graph.edge_ids, ds.graph.edge_ids)
    assert (tmp_path / "synthetic" / "mini-stream-seed0-s1" / "edge_attr.npy").exists()


def test_stream_spec_is_100x_mini():
    big, mini = STREAM_SPECS["stream"], STREAM_SPECS["mini-stream"]
    assert big.num_edges == 100 * mini.num_edges
    assert big.num_users + big.num_items == 100 * (mini.num_users + mini.num_items)
    assert big.edge_dim == 0  # no edge features at that size


def test_bad_names_and_arguments(tiny):
    with pytest.raises(ValueError, match="unknown synthetic dataset 'streams'.*mini-stream"):
        synthetic("streams")
    with pytest.raises(ValueError, match="unknown stream dataset 'mini'"):
        synthetic_stream("mini")
    with pytest.raises(TypeError, match="seed must be an int"):
        synthetic("tiny-stream", seed="0")
    with pytest.raises(ValueError, match="seed must be in"):
        synthetic("tiny-stream", seed=-1)
    with pytest.raises(TypeError, match="cache must be a bool"):
        synthetic_stream("tiny-stream", cache="no")
    with pytest.raises(ValueError, match="split must be one of"):
        tiny.split("valid")
