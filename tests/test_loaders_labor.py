"""LaborSampler on the typed core: LABOR-0 and LABOR-i (unbiased Horvitz-Thompson means,
expected fanout per destination, the variance condition of the importance iterations, fewer
distinct nodes), batch dependency (overlap between consecutive batches), determinism, options,
and the DGL / PyG fronts' edge weights."""

import numpy as np
import pytest
import torch

from gnnsys.datasets import rmat_dataset
from gnnsys.graph import Graph
from gnnsys.loaders import LaborSampler, NeighborSampler, SampleKey, _kernels
from gnnsys.loaders.neighbor import labor_window_keys


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
    for bad, err in ((-2, ValueError), (1.5, TypeError), (True, TypeError), ("1", TypeError)):
        with pytest.raises(err, match="importance_sampling"):
            LaborSampler(g, [2], importance_sampling=bad)
    for bad, err in ((0, ValueError), (-1, ValueError), (2.0, TypeError), (None, TypeError)):
        with pytest.raises(err, match="batch_dependency"):
            LaborSampler(g, [2], batch_dependency=bad)
    with pytest.raises(NotImplementedError, match="subgraph_type='directional'"):
        LaborSampler(g, [2], importance_sampling=1, subgraph_type="induced")
    with pytest.raises(ValueError, match="replace=True"):
        LaborSampler(g, [2], replace=True)
    with pytest.raises(NotImplementedError, match="GPU sampler"):
        LaborSampler(g, [2], backend="triton")
    assert repr(LaborSampler(g, [2])).startswith("LaborSampler(fanouts=[2], layer_dependency=")
    assert "importance_sampling=-1, batch_dependency=3" in repr(
        LaborSampler(g, [2], importance_sampling=-1, batch_dependency=3)
    )


# ---------------------------------------------------------------------- LABOR-i
def circulant(n, deg):
    # node v's in-edges come from v+1..v+deg (mod n): every node alike, so LABOR-i's
    # importances are uniform and it samples exactly as LABOR-0.
    dst = torch.arange(n).repeat_interleave(deg)
    src = (dst + torch.arange(1, deg + 1).repeat(n)) % n
    return Graph.from_edge_index(torch.stack([src, dst]), n)


def full_means(g, n, x):
    src_of = g.indices.long()
    deg = g.indptr[1 : n + 1] - g.indptr[:n]
    dst_of = torch.repeat_interleave(torch.arange(n), deg)
    out = torch.zeros(n, dtype=torch.float64)
    out.index_add_(0, dst_of, x[src_of[: dst_of.numel()]])
    return out / deg.double()


@pytest.mark.parametrize("iters", [1, 2, -1])
def test_labor_i_unbiased_mean_and_dgl_weights(iters):
    deg, k, n = 20, 5, 200
    g = stars(n, deg)
    x = torch.randn(g.num_nodes, dtype=torch.float64)
    s = LaborSampler(g, [k], importance_sampling=iters)
    seeds = torch.arange(n)
    full = full_means(g, n, x)
    draws, est = 250, torch.zeros(n, dtype=torch.float64)
    for b in range(draws):
        sub = s.sample(seeds, SampleKey(seed=1, batch=b))
        blk = sub.block(1)
        p = sub.metadata["edge_probs"].double()
        w = sub.metadata["edge_weights"].double()
        assert p.shape == w.shape == (blk.num_edges,) and bool((p > 0).all() & (p <= 1).all())
        ht = torch.zeros(n, dtype=torch.float64)
        ht.index_add_(0, blk.dst(), x[sub.nodes[blk.indices]] / (deg * p))  # sum x_u / (d p)
        est += ht
        # DGL's edge_weights: 1 / p, scaled so that each destination's weights sum to its count
        sums = torch.zeros(n, dtype=torch.float64).index_add_(0, blk.dst(), w)
        kept = (blk.indptr[1:] - blk.indptr[:-1]).double()
        assert torch.allclose(sums, kept, rtol=1e-5)
        if b == 0:
            inv = torch.zeros(n, dtype=torch.float64).index_add_(0, blk.dst(), 1 / p)
            ratio = w * p * inv[blk.dst()] / kept[blk.dst()]
            assert torch.allclose(ratio, torch.ones_like(ratio), rtol=1e-5)
    err = (est / draws - full).abs().max().item()
    assert err < 0.3, err  # the HT mean converges to the full-neighbourhood mean


def importance_of(g, dsts, f, iters, weights=None):
    # labor_importance straight on one hop's segments (untyped, one tree): importances kept at
    # node ids, or at source numbers found through the dense map or the hash table, give the
    # same probabilities.
    w = np.empty(0, np.float64) if weights is None else np.asarray(weights, np.float64)
    ip = g.indptr.numpy()
    lo, hi = ip[dsts].astype(np.int64), ip[dsts + 1].astype(np.int64)
    cptr = np.zeros(dsts.size + 1, np.int64)
    np.cumsum(hi - lo, out=cptr[1:])
    adj = np.asarray(g.indices.numpy(), np.int64)
    out = []
    paths = [(np.full(g.num_nodes, -1, np.int64), False), (np.empty(0, np.int64), False),
             (np.empty(0, np.int64), True)]  # fmt: skip
    for dense, direct in paths:
        pe = np.empty(cptr[-1], np.float64)
        _kernels.labor_importance(adj, np.empty(0, np.int64), False, lo, hi,
                                  np.empty(0, np.int64), cptr, 0, dsts.size, f, iters,
                                  g.num_nodes, pe, dense, w, direct)  # fmt: skip
        assert (dense < 0).all()  # left all -1 for the next hop
        out.append(pe)
    assert np.array_equal(out[0], out[1]) and np.array_equal(out[0], out[2])
    return out[0], cptr, hi - lo


def test_importances_at_node_ids_only_for_one_tree_and_candidates_enough():
    n = 400
    per = _kernels._LABOR_DIRECT_NODES
    assert _kernels.labor_direct(n, n // per, False)
    assert not _kernels.labor_direct(n, n // per - 1, False)  # [N] arrays would cost more
    assert not _kernels.labor_direct(n, 10 * n, True)  # per-seed trees: (tree, node) keys


@pytest.mark.parametrize("iters", [1, 3, -1])
def test_labor_i_variance_condition_and_expected_degree(iters):
    # The fixed point: each destination's HT variance equals uniform k-of-d sampling's,
    # sum_t 1 / p_t = d^2 / k; then sum_t p_t >= k (Cauchy-Schwarz), equality when all alike.
    g = rmat_dataset(scale=10, edge_factor=8, feat_dim=2, num_classes=2, seed=3, cache=False).graph
    dsts = np.arange(0, g.num_nodes, 3, dtype=np.int64)
    f = 6
    pe, cptr, deg = importance_of(g, dsts, f, iters)
    partial = 0
    for i, d in enumerate(deg):
        p = pe[cptr[i] : cptr[i + 1]]
        if d <= f:
            assert (p == 1.0).all()  # keeps every edge
            continue
        partial += 1
        assert abs((1 / p).sum() / (d * d / f) - 1) < 1e-9  # solved exactly, not to a tolerance
        assert p.sum() >= f * (1 - 1e-3)
    assert partial > 50
    ring = circulant(300, 12)
    pe, _, _ = importance_of(ring, np.arange(0, 300, 2, dtype=np.int64), 4, iters)
    assert np.allclose(pe, 4 / 12, rtol=1e-3)  # uniform importances: exactly LABOR-0's k / d


def test_labor_i_sampled_degree_and_fewer_nodes_than_labor0():
    ring = circulant(400, 16)
    seeds = torch.arange(0, 400, 2)
    for iters in (1, -1):  # symmetric graph: each destination keeps k in expectation
        got = [LaborSampler(ring, [4], importance_sampling=iters)
               .sample(seeds, SampleKey(seed=4, batch=b)).block(1).num_edges for b in range(40)]  # fmt: skip
        assert abs(np.mean(got) / (4 * seeds.numel()) - 1) < 0.03
    ds = rmat_dataset(scale=12, edge_factor=16, feat_dim=4, num_classes=2, seed=0, cache=False)
    g = ds.graph
    seeds = torch.randperm(g.num_nodes, generator=torch.Generator().manual_seed(0))[:256]
    deg = (g.indptr[1:] - g.indptr[:-1])[seeds].clamp_max(10).double().sum()
    nodes = {}
    for iters in (0, 1, -1):
        s = LaborSampler(g, [10, 10], importance_sampling=iters)
        nodes[iters], edges = [], []
        for b in range(8):
            sub = s.sample(seeds, SampleKey(seed=2, batch=b))
            nodes[iters].append(sub.nodes.numel())
            edges.append(sub.num_sampled_edges[0])
        assert np.mean(edges) >= 0.97 * float(deg)  # at least min(k, d) per seed on average
    # the paper's claim: LABOR-i samples fewer distinct nodes than LABOR-0, more rounds fewer
    assert np.mean(nodes[1]) < 0.9 * np.mean(nodes[0]), nodes
    assert np.mean(nodes[-1]) <= np.mean(nodes[1]), nodes


def test_labor_i_typed_keeps_edge_types_apart():
    n = 50
    ed = {("u", "a", "v"): torch.stack([torch.arange(6 * n) % 40, torch.arange(n).repeat(6)]),
          ("u", "b", "v"): torch.stack([torch.arange(6 * n) % 30, torch.arange(n).repeat(6)])}  # fmt: skip
    g = Graph.from_hetero(ed, {"u": 40, "v": n})
    s = LaborSampler(g, {"a": [2], "b": [-1]}, importance_sampling=-1)
    sub = s.sample(torch.arange(n) + 40, SampleKey(seed=1))
    w, p = sub.metadata["edge_weights"], sub.metadata["edge_probs"]
    assert w.numel() == p.numel() == sub.row.numel()
    lo, hi = sub.edge_span(1, 1)
    assert hi - lo == 6 * n and bool((p[lo:hi] == 1).all() & (w[lo:hi] == 1).all())  # fanout -1
    a = sub.block(1, 0)
    assert 0 < a.num_edges < 6 * n
    assert torch.equal(ed[("u", "a", "v")][0, a.edge_ids], sub.type_nodes(0)[a.indices])


def test_labor_i_deterministic_across_thread_counts(across_threads):
    g = rmat_dataset(scale=11, edge_factor=8, feat_dim=4, num_classes=2, seed=1, cache=False).graph
    seeds = torch.arange(300)
    for kw in ({"importance_sampling": -1}, {"importance_sampling": 2, "batch_dependency": 3}):
        s = LaborSampler(g, [5, 5], semantics="dgl", **kw)
        out = across_threads(lambda s=s: s.sample(seeds, SampleKey(8, 0, 2)))
        for o in out[1:]:
            assert torch.equal(o.nodes, out[0].nodes) and torch.equal(o.edge_ids, out[0].edge_ids)
            assert torch.equal(o.metadata["edge_weights"], out[0].metadata["edge_weights"])


# ---------------------------------------------------------------------- batch dependency
def test_window_keys_slide_between_windows():
    k1, k2, mix = labor_window_keys(SampleKey(seed=3, epoch=1, batch=9), 4)
    assert mix == 0.25
    assert labor_window_keys(SampleKey(seed=3, epoch=1, batch=8), 4) == (k1, k2, 0.0)
    assert labor_window_keys(SampleKey(seed=3, epoch=1, batch=12), 4)[0] == k2
    assert k1 != labor_window_keys(SampleKey(seed=3, epoch=2, batch=9), 4)[0]


def overlaps(sampler, seeds, batches):
    # Jaccard overlap of the sampled node sets of consecutive batches (same seeds).
    sets = [set(sampler.sample(seeds, SampleKey(seed=5, batch=b)).nodes.tolist())
            for b in range(batches)]  # fmt: skip
    return [len(a & b) / len(a | b) for a, b in zip(sets, sets[1:])]


def test_batch_dependency_overlaps_consecutive_batches(across_threads):
    g = rmat_dataset(scale=11, edge_factor=8, feat_dim=4, num_classes=2, seed=1, cache=False).graph
    seeds = torch.arange(0, g.num_nodes, 6)
    base = np.mean(overlaps(LaborSampler(g, [8, 8]), seeds, 9))
    for k, iters in ((4, 0), (8, 1)):
        dep = LaborSampler(g, [8, 8], batch_dependency=k, importance_sampling=iters)
        got = overlaps(dep, seeds, 9)
        assert np.mean(got) > base + 0.1, (k, got, base)
        out = across_threads(lambda dep=dep: dep.sample(seeds, SampleKey(seed=5, batch=3)))
        for o in out:
            assert torch.equal(o.nodes, out[0].nodes) and torch.equal(o.edge_ids, out[0].edge_ids)
    # still uniform variates: each destination keeps min(k, d) edges in expectation
    g2 = stars(1000, 20)
    dep = LaborSampler(g2, [5], batch_dependency=4)
    kept = [dep.sample(torch.arange(1000), SampleKey(seed=s, batch=b)).block(1).num_edges
            for s in range(24) for b in range(4)]  # fmt: skip
    assert abs(np.mean(kept) / 5000 - 1) < 0.03
    # an int key: the batch on its own, as batch_dependency=1
    one = LaborSampler(g2, [5]).sample(torch.arange(20), 77)
    assert torch.equal(dep.sample(torch.arange(20), 77).edge_ids, one.edge_ids)


# ---------------------------------------------------------------------- fronts
def test_fronts_carry_labor_i_edge_weights():
    from gnnsys.loaders import dgl as dl
    from gnnsys.loaders.pyg import LaborLoader

    g = rmat_dataset(scale=9, edge_factor=8, feat_dim=4, num_classes=2, seed=2, cache=False).graph
    g.ndata["feat"] = torch.randn(g.num_nodes, 4)
    sampler = dl.LaborSampler([3, 3], importance_sampling=1, batch_dependency=2)
    assert sampler.importance_sampling == 1 and sampler.batch_dependency == 2
    loader = dl.DataLoader(g, torch.arange(64), sampler, batch_size=32, block_type="gnnsys")
    for _, _, blocks in loader:
        for b in blocks:
            w = b.edata["edge_weights"]
            assert w.shape == (b.num_edges(),) and w.dtype == torch.float32
            sums = torch.zeros(b.num_dst_nodes()).index_add_(0, b.edges()[1].long(), w)
            assert torch.allclose(sums, b.in_degrees().float(), rtol=1e-4)
    _, _, blocks = next(iter(dl.DataLoader(g, torch.arange(8), dl.LaborSampler([3]),
                                           batch_size=8, block_type="gnnsys")))  # fmt: skip
    assert "edge_weights" not in blocks[0].edata  # LABOR-0: none, as DGL
    with pytest.raises(ValueError, match="importance_sampling"):
        dl.LaborSampler([3], importance_sampling=-3)
    from torch_geometric.data import Data

    ip = g.indptr
    ei = torch.stack([g.indices.long(), torch.repeat_interleave(torch.arange(g.num_nodes),
                                                                ip[1:] - ip[:-1])])  # fmt: skip
    data = Data(x=g.ndata["feat"], edge_index=ei)
    batch = next(iter(LaborLoader(data, [3, 3], input_nodes=torch.arange(32), batch_size=32,
                                  importance_sampling=-1, batch_dependency=2)))  # fmt: skip
    assert batch.edge_weight.shape == (batch.edge_index.shape[1],)
    with pytest.raises(ValueError, match="batch_dependency"):
        LaborLoader(data, [3], batch_dependency=0)
    with pytest.raises(ValueError, match="'edge_weight'"):
        LaborLoader(Data(x=data.x, edge_index=ei, edge_weight=torch.ones(ei.shape[1])), [3],
                    importance_sampling=1)  # fmt: skip


# ---------------------------------------------------------------------- weighted LABOR
def with_weights(g, w):
    return Graph(g.indptr, g.indices, edge_weight=w, validate=False)


@pytest.mark.parametrize("iters", [0, 1])
def test_weighted_labor_with_unit_weights_samples_as_unweighted(iters):
    # DGL's weighted LABOR with every weight 1 is LABOR-0 / LABOR-i: the same c_s (k / d, then
    # the same importance rounds), so the same variates keep the same edges
    g = rmat_dataset(scale=9, edge_factor=8, feat_dim=2, num_classes=2, seed=4, cache=False).graph
    gw = with_weights(g, torch.ones(g.num_edges, dtype=torch.float64))
    seeds = torch.arange(0, g.num_nodes, 5)
    plain = LaborSampler(g, [4, 3], importance_sampling=iters)
    weighted = LaborSampler(gw, [4, 3], importance_sampling=iters, weighted=True)
    for b in range(3):
        a = plain.sample(seeds, SampleKey(seed=2, batch=b))
        w = weighted.sample(seeds, SampleKey(seed=2, batch=b))
        assert torch.equal(a.nodes, w.nodes) and torch.equal(a.edge_index(), w.edge_index())
        if iters:
            p, q = a.metadata["edge_probs"], w.metadata["edge_probs"]
            assert torch.allclose(p, q, rtol=1e-5)
    assert "edge_weights" in w.metadata  # weighted LABOR-0 has them too, as DGL


@pytest.mark.parametrize("iters", [0, 1, -1])
def test_weighted_labor_variance_condition(iters):
    # each partial destination's p solves DGL's weighted condition exactly:
    # sum A^2 / p = D^2 / k - D^2 / d + sum A^2 (D = sum A); LABOR-0: p / A is one constant;
    # zero-weight edges get p = 0, a destination keeping every edge p = 1 on the others
    g = rmat_dataset(scale=10, edge_factor=8, feat_dim=2, num_classes=2, seed=3, cache=False).graph
    rng = np.random.default_rng(0)
    w = rng.exponential(1.0, g.num_edges) * (rng.random(g.num_edges) > 0.1)
    dsts = np.arange(0, g.num_nodes, 3, dtype=np.int64)
    f = 5
    ip = g.indptr.numpy()
    w[ip[dsts[1]] : ip[dsts[1] + 1]] = 0.0  # a destination whose in-edges all weigh nothing
    pe, cptr, deg = importance_of(g, dsts, f, iters, w)
    assert np.isfinite(pe).all() and (pe[cptr[1] : cptr[2]] == 0).all()
    partial = 0
    for i, v in enumerate(dsts):
        a = w[ip[v] : ip[v + 1]]
        p = pe[cptr[i] : cptr[i + 1]]
        assert (p[a == 0] == 0).all() and (p[a > 0] > 0).all() and (p <= 1).all()
        if deg[i] <= f:
            assert (p[a > 0] == 1.0).all()
            continue
        if a.sum() == 0:
            continue
        partial += 1
        pos = a > 0
        target = a.sum() ** 2 / f - a.sum() ** 2 / deg[i] + (a * a).sum()
        assert abs((a[pos] ** 2 / p[pos]).sum() / target - 1) < 1e-9
        if iters == 0:
            free = pos & (p < 1)
            assert np.allclose(p[free] / a[free], (p[free] / a[free])[0])
    assert partial > 50


def test_weighted_labor_keeps_edges_at_their_probabilities():
    # over many batches each edge is kept about p of the time, a zero-weight edge never, and
    # DGL's edge_weights (A / p, scaled) sum to each destination's kept count
    deg, k, n = 12, 4, 60
    g = stars(n, deg)
    rng = np.random.default_rng(1)
    w = rng.exponential(1.0, g.num_edges)
    w[::7] = 0.0
    gw = with_weights(g, torch.from_numpy(w))
    s = LaborSampler(gw, [k], weighted=True)
    seeds = torch.arange(n)
    kept = np.zeros(g.num_edges)
    prob = np.zeros(g.num_edges)
    draws = 400
    for b in range(draws):
        sub = s.sample(seeds, SampleKey(seed=3, batch=b))
        eid = sub.edge_ids.numpy()
        kept[eid] += 1
        prob[eid] = sub.metadata["edge_probs"].numpy()
        blk = sub.block(1)
        wts = sub.metadata["edge_weights"].double()
        sums = torch.zeros(n, dtype=torch.float64).index_add_(0, blk.dst(), wts)
        counts = (blk.indptr[1:] - blk.indptr[:-1]).double()
        assert torch.allclose(sums, counts, rtol=1e-5)
    assert kept[w == 0].sum() == 0
    seen = prob > 0
    freq = kept[seen] / draws
    sd = np.sqrt(prob[seen] * (1 - prob[seen]) / draws) + 1e-9
    assert (np.abs(freq - prob[seen]) < 5 * sd + 1e-3).mean() > 0.99


def test_dgl_front_weighted_labor():
    from gnnsys.loaders import dgl as dl

    g = rmat_dataset(scale=9, edge_factor=8, feat_dim=4, num_classes=2, seed=2, cache=False).graph
    w = torch.rand(g.num_edges, generator=torch.Generator().manual_seed(0))
    w[::5] = 0.0
    g.edata["w"] = w
    loader = dl.DataLoader(g, torch.arange(64), dl.LaborSampler([3, 3], prob="w"),
                           batch_size=32, block_type="gnnsys")  # fmt: skip
    for _, _, blocks in loader:
        for b in blocks:
            assert bool((w[b.edata["_ID"].long()] > 0).all())  # zero weight: never sampled
            ew = b.edata["edge_weights"]
            sums = torch.zeros(b.num_dst_nodes()).index_add_(0, b.edges()[1].long(), ew)
            assert torch.allclose(sums, b.in_degrees().float(), rtol=1e-4)


def test_pyg_front_weighted_labor():
    # LaborLoader(weight_attr=...): DGL's weighted LABOR on PyG data, homogeneous and hetero;
    # a zero-weight edge is never sampled, edge_weight on every edge store (scaled to the kept
    # counts, as DGL's edge_weights), the weight attribute sliced as any edge attribute
    from torch_geometric.data import Data, HeteroData

    from gnnsys.loaders.pyg import LaborLoader

    g = rmat_dataset(scale=9, edge_factor=8, feat_dim=4, num_classes=2, seed=2, cache=False).graph
    ip = g.indptr
    ei = torch.stack([g.indices.long(), torch.repeat_interleave(torch.arange(g.num_nodes),
                                                                ip[1:] - ip[:-1])])  # fmt: skip
    w = torch.rand(ei.shape[1], generator=torch.Generator().manual_seed(0))
    w[::4] = 0.0
    data = Data(x=torch.randn(g.num_nodes, 4), edge_index=ei, w=w)
    for iters in (0, 1):
        loader = LaborLoader(data, [3, 3], input_nodes=torch.arange(64), batch_size=32,
                             weight_attr="w", importance_sampling=iters)  # fmt: skip
        for b in loader:
            assert torch.equal(b.w, w[b.e_id]) and bool((b.w > 0).all())
            sums = torch.zeros(b.num_nodes).index_add_(0, b.edge_index[1], b.edge_weight)
            counts = torch.bincount(b.edge_index[1], minlength=b.num_nodes).float()
            assert torch.allclose(sums, counts, rtol=1e-4)
    with pytest.raises(ValueError, match="weighted LABOR's edge weights would overwrite"):
        LaborLoader(Data(x=data.x, edge_index=ei, edge_weight=w), [3], weight_attr="edge_weight")
    hetero = HeteroData()
    gen = torch.Generator().manual_seed(1)
    hetero["paper"].x = torch.randn(100, 3, generator=gen)
    hetero["author"].x = torch.randn(60, 3, generator=gen)
    for et, (ns, nd, m) in {("paper", "cites", "paper"): (100, 100, 600),
                            ("author", "writes", "paper"): (60, 100, 400)}.items():  # fmt: skip
        hetero[et].edge_index = torch.stack([torch.randint(0, ns, (m,), generator=gen),
                                             torch.randint(0, nd, (m,), generator=gen)])  # fmt: skip
        wt = torch.rand(m, generator=gen)
        wt[::3] = 0.0
        hetero[et].w = wt
    b = next(iter(LaborLoader(hetero, [3, 2], input_nodes="paper", batch_size=20,
                              weight_attr="w")))  # fmt: skip
    for et in hetero.edge_types:
        assert torch.equal(b[et].w, hetero[et].w[b[et].e_id]) and bool((b[et].w > 0).all())
        assert b[et].edge_weight.shape == (b[et].edge_index.shape[1],)


def test_weighted_labor_keeps_as_many_edges_as_dgls():
    # against DGL 2.1's own weighted LABOR (its env of ../shared/peers), edges given in CSC
    # order: DGL reads the weights by CSC position, so only then are they the edges' own.
    # The RNGs differ: compare the kept positive-weight edges per destination over 120
    # batches. (DGL's LABOR-i also keeps zero-weight edges, at importance 0; gnnsys never.)
    dgl = pytest.importorskip("dgl")
    from gnnsys.loaders import dgl as dl

    gen = torch.Generator().manual_seed(0)
    n, e = 300, 4500
    src, dst = torch.randint(0, n, (e,), generator=gen), torch.randint(0, n, (e,), generator=gen)
    order = torch.argsort(dst * n + src)
    g = dgl.graph((src[order], dst[order]), num_nodes=n)
    w = torch.rand(e, generator=gen) ** 2
    w[::6] = 0.0
    g.edata["w"] = w
    seeds = torch.arange(0, n, 2)
    for iters in (0, 1):
        kept = {}
        for name, mod in (("dgl", dgl.dataloading), ("gnnsys", dl)):
            total = 0
            for b in range(120):
                kw = {"seed": b, "block_type": "dgl"} if name == "gnnsys" else {}
                dgl.seed(b)
                loader = mod.DataLoader(g, seeds, mod.LaborSampler([5], prob="w",
                                        importance_sampling=iters), batch_size=seeds.numel(),
                                        **kw)  # fmt: skip
                blk = next(iter(loader))[2][0]
                total += int((w[blk.edata[dgl.EID].long()] > 0).sum())
            kept[name] = total / 120 / seeds.numel()
        assert abs(kept["gnnsys"] / kept["dgl"] - 1) < 0.03, (iters, kept)
