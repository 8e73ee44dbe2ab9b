"""LaborSampler (LABOR-0) on the typed core: unbiased Horvitz-Thompson means, expected fanout
per destination, fewer distinct nodes than neighbour sampling, determinism, options."""

import numpy as np
import pytest
import torch

from gnnsys.datasets import rmat_dataset
from gnnsys.graph import Graph
from gnnsys.loaders import LaborSampler, NeighborSampler, SampleKey


def stars(num_dst, deg):
    # num_dst destinations, each with in-edges from deg sources; neighbouring destinations
    # share most sources (a sliding window), as real graphs share neighbourhoods.
    dst = torch.arange(num_dst).repeat_interleave(deg)
    src = num_dst + (torch.arange(num_dst * deg) % deg + dst) % (num_dst + deg)
    return Graph.from_edge_index(torch.stack([src, dst]), 2 * num_dst + deg)


def test_expected_fanout_and_unbiased_mean():
    deg, k, n = 20, 5, 200
    g = stars(n, deg)
    x = torch.randn(g.num_nodes, dtype=torch.float64)
    s = LaborSampler(g, [k])
    seeds = torch.arange(n)
    full = torch.zeros(n, dtype=torch.float64)
    src_of = g.indices.long()
    dst_of = torch.repeat_interleave(torch.arange(n), g.indptr[1 : n + 1] - g.indptr[:n])
    full.index_add_(0, dst_of, x[src_of[: dst_of.numel()]])
    full /= deg
    draws, kept, est = 400, [], torch.zeros(n, dtype=torch.float64)
    for b in range(draws):
        sub = s.sample(seeds, SampleKey(seed=1, batch=b))
        blk = sub.block(1)
        kept.append((blk.indptr[1:] - blk.indptr[:-1]).double())
        u = sub.nodes[blk.indices]
        ht = torch.zeros(n, dtype=torch.float64)
        ht.index_add_(0, blk.dst(), x[u] / (deg * (k / deg)))  # sum x_u / (d * pi)
        est += ht
    kept = torch.stack(kept)
    assert abs(float(kept.mean()) - k) < 0.1  # expected fanout min(k, d) per destination
    assert float(kept.std()) > 0  # a random number per destination, not exactly k
    err = (est / draws - full).abs().max().item()
    assert err < 0.25, err  # the HT mean converges to the full-neighbourhood mean


def test_fewer_distinct_nodes_than_neighbour_sampling():
    ds = rmat_dataset(scale=12, edge_factor=16, feat_dim=4, num_classes=2, seed=0, cache=False)
    g = ds.graph
    seeds = torch.randperm(g.num_nodes, generator=torch.Generator().manual_seed(0))[:256]
    lab, nbr = [], []
    for b in range(5):
        key = SampleKey(seed=2, batch=b)
        lab.append(LaborSampler(g, [10, 10]).sample(seeds, key).nodes.numel())
        nbr.append(NeighborSampler(g, [10, 10]).sample(seeds, key).nodes.numel())
    assert np.mean(lab) < 0.9 * np.mean(nbr), (lab, nbr)
    # each destination keeps min(10, d) in expectation (hubs are shared by many destinations,
    # so one batch's total swings: average over batches)
    deg = (g.indptr[1:] - g.indptr[:-1])[seeds].clamp_max(10).double()
    got = 0.0
    for b in range(20):
        blk = LaborSampler(g, [10]).sample(seeds, SampleKey(seed=3, batch=b)).block(1)
        got += float(blk.num_edges)
    assert abs(got / 20 / float(deg.sum()) - 1.0) < 0.05


def test_every_kept_edge_exists_and_fanout_all_and_zero():
    g = stars(30, 8)
    ei = torch.stack([g.indices.long(), torch.repeat_interleave(torch.arange(g.num_nodes),
                      g.indptr[1:] - g.indptr[:-1])])  # fmt: skip
    sub = LaborSampler(g, [3, 2]).sample(torch.arange(10), SampleKey(seed=4))
    u, v = sub.nodes[sub.row], sub.nodes[sub.col]
    assert torch.equal(ei[0, sub.edge_ids], u) and torch.equal(ei[1, sub.edge_ids], v)
    every = LaborSampler(g, [-1]).sample(torch.arange(10), SampleKey(seed=4))
    assert every.row.numel() == 80  # fanout -1: all in-edges
    assert LaborSampler(g, [0]).sample(torch.arange(10), SampleKey()).row.numel() == 0


def test_layer_dependency_reuses_the_variates_across_hops():
    # Hop 2's destinations include hop 1's sources; with layer dependency a source's variate is
    # the same on both hops, so the decision for an edge repeats when both hops see it.
    g = stars(100, 12)
    seeds = torch.arange(40)
    dep = LaborSampler(g, [4, 4], layer_dependency=True, semantics="dgl")
    sub = dep.sample(seeds, SampleKey(seed=6))
    e1 = set(sub.edge_ids[slice(*sub.edge_span(1))].tolist())
    e2 = set(sub.edge_ids[slice(*sub.edge_span(2))].tolist())
    assert e1 <= e2  # DGL semantics: hop 2 re-samples the seeds with the same variates
    indep = LaborSampler(g, [4, 4], semantics="dgl").sample(seeds, SampleKey(seed=6))
    f1 = set(indep.edge_ids[slice(*indep.edge_span(1))].tolist())
    f2 = set(indep.edge_ids[slice(*indep.edge_span(2))].tolist())
    assert not f1 <= f2


def test_typed_labor_keeps_edge_types_apart():
    n = 50
    ed = {("u", "a", "v"): torch.stack([torch.arange(6 * n) % 40, torch.arange(n).repeat(6)]),
          ("u", "b", "v"): torch.stack([torch.arange(6 * n) % 30, torch.arange(n).repeat(6)])}  # fmt: skip
    g = Graph.from_hetero(ed, {"u": 40, "v": n})
    sub = LaborSampler(g, {"a": [2], "b": [-1]}).sample(torch.arange(n) + 40, SampleKey(seed=1))
    b = sub.block(1, 1)
    assert b.num_edges == 6 * n  # fanout -1 on b: everything
    a = sub.block(1, 0)
    assert 0 < a.num_edges < 6 * n
    assert torch.equal(ed[("u", "a", "v")][0, a.edge_ids], sub.type_nodes(0)[a.indices])


def test_deterministic_across_thread_counts(across_threads):
    g = rmat_dataset(scale=11, edge_factor=8, feat_dim=4, num_classes=2, seed=1, cache=False).graph
    seeds = torch.arange(300)
    out = across_threads(lambda: LaborSampler(g, [5, 5]).sample(seeds, SampleKey(8, 0, 2)))
    for o in out[1:]:
        assert torch.equal(o.nodes, out[0].nodes) and torch.equal(o.edge_ids, out[0].edge_ids)
    other = LaborSampler(g, [5, 5]).sample(seeds, SampleKey(seed=8, batch=3))
    assert not torch.equal(other.edge_ids, out[0].edge_ids)


def test_options_refused_clearly():
    g = stars(5, 3)
    with pytest.raises(NotImplementedError, match="only LABOR-0"):
        LaborSampler(g, [2], importance_sampling=1)
    with pytest.raises(NotImplementedError, match="batch_dependency=1"):
        LaborSampler(g, [2], batch_dependency=4)
    with pytest.raises(ValueError, match="replace=True"):
        LaborSampler(g, [2], replace=True)
    with pytest.raises(NotImplementedError, match="GPU sampler"):
        LaborSampler(g, [2], backend="triton")
    assert repr(LaborSampler(g, [2])).startswith("LaborSampler(fanouts=[2], layer_dependency=")
