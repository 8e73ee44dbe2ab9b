"""NeighborSampler / FullNeighborSampler: sampled edges exist, counts, k-hop, uniformity,
weights, semantics, subgraph types, disjoint trees, determinism and input validation."""

from collections import Counter

import numba
import numpy as np
import pytest
import torch
from scipy import stats

from gnnsys.graph import Graph
from gnnsys.loaders import FullNeighborSampler, NeighborSampler, SampleKey


def power_law_graph(n=400, e=4000, seed=0, weights=False):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (e,), generator=g)
    # Skewed destinations: a few hubs with large in-degree, many small ones.
    dst = (torch.rand(e, generator=g) ** 3 * n).long().clamp_max(n - 1)
    ei = torch.stack([src, dst])
    w = torch.rand(e, generator=g) + 0.1 if weights else None
    return ei, Graph.from_edge_index(ei, n, edge_weight=w)


@pytest.fixture(scope="module")
def graph():
    return power_law_graph()


def check_consistent(sub, ei, fanouts=None, replace=False):
    nodes, row, col = sub.nodes, sub.row, sub.col
    n = nodes.numel()
    assert sum(sub.num_sampled_nodes) == n
    assert sum(sub.num_sampled_edges) == row.numel() == col.numel() == sub.edge_ids.numel()
    if row.numel():
        assert int(row.min()) >= 0 and int(row.max()) < n and int(col.max()) < n
    # Every sampled edge exists: its id points at an input edge with the same endpoints.
    eid = sub.edge_ids
    assert torch.equal(ei[0, eid], nodes[row])
    assert torch.equal(ei[1, eid], nodes[col])
    if not sub.layered and sub.batch is None:
        # Nodes after the seeds are distinct and not among the seeds.
        rest = nodes[sub.num_seeds :].tolist()
        assert len(set(rest)) == len(rest)
        assert not set(rest) & set(nodes[: sub.num_seeds].tolist())
    if fanouts is not None and not replace:
        lo = 0
        for h in range(len(fanouts)):
            r, c = sub.hop_edges(h + 1)
            e = eid[lo : lo + r.numel()]
            lo += r.numel()
            for dst in c.unique().tolist():
                mine = e[c == dst]
                assert mine.unique().numel() == mine.numel()  # distinct without replacement


def test_basic_shapes_and_order(graph):
    ei, g = graph
    seeds = torch.tensor([5, 0, 399, 17])
    sub = NeighborSampler(g, [4, 3]).sample(seeds, SampleKey(seed=1))
    assert torch.equal(sub.nodes[:4], seeds)  # seeds first, in batch order
    assert sub.num_sampled_nodes[0] == 4 and sub.num_hops == 2
    assert not sub.layered and sub.batch is None
    check_consistent(sub, ei, [4, 3])


def test_counts_min_fanout_degree(graph):
    ei, g = graph
    deg = g.in_degrees()
    seeds = torch.arange(0, 400, 7)
    for f in (1, 3, 10):
        sub = NeighborSampler(g, [f]).sample(seeds, SampleKey(seed=f))
        per_dst = torch.bincount(sub.col, minlength=sub.nodes.numel())[: seeds.numel()]
        assert torch.equal(per_dst, deg[seeds].clamp_max(f))
        check_consistent(sub, ei, [f])


def test_with_replacement_gives_exactly_fanout(graph):
    ei, g = graph
    deg = g.in_degrees()
    seeds = torch.arange(0, 400, 3)
    sub = NeighborSampler(g, [6], replace=True).sample(seeds, SampleKey(seed=3))
    per_dst = torch.bincount(sub.col, minlength=sub.nodes.numel())[: seeds.numel()]
    assert torch.equal(per_dst, torch.where(deg[seeds] > 0, 6, 0))
    check_consistent(sub, ei, [6], replace=True)


def khop(ei, n, seeds, hops):
    ins = [[] for _ in range(n)]
    for k, (s, d) in enumerate(ei.t().tolist()):
        ins[d].append((s, k))
    seen = {int(s) for s in seeds}
    frontier = list(dict.fromkeys(int(s) for s in seeds))
    edges = set()
    for _ in range(hops):
        nxt = []
        for v in frontier:
            for s, k in ins[v]:
                edges.add(k)
                if s not in seen:
                    seen.add(s)
                    nxt.append(s)
        frontier = nxt
    return seen, edges


def test_fanout_minus_one_is_exact_khop(graph):
    ei, g = graph
    seeds = torch.tensor([3, 250, 11])
    sub = NeighborSampler(g, [-1, -1]).sample(seeds, SampleKey(seed=0))
    nodes, edges = khop(ei, g.num_nodes, seeds, 2)
    assert set(sub.nodes.tolist()) == nodes
    assert set(sub.edge_ids.tolist()) == edges
    assert sub.edge_ids.unique().numel() == sub.edge_ids.numel()
    full = FullNeighborSampler(g, 2).sample(seeds, SampleKey(seed=9))
    assert torch.equal(full.nodes, sub.nodes) and torch.equal(full.edge_ids, sub.edge_ids)
    check_consistent(sub, ei)


def test_pyg_semantics_expand_only_new_nodes(graph):
    ei, g = graph
    sub = NeighborSampler(g, [5, 4, 3]).sample(torch.arange(10), SampleKey(seed=2))
    for h in range(3):
        lo = sum(sub.num_sampled_nodes[:h])
        hi = lo + sub.num_sampled_nodes[h]
        _, c = sub.hop_edges(h + 1)
        assert bool(((c >= lo) & (c < hi)).all())  # hop h+1 aggregates into hop h's new nodes
    check_consistent(sub, ei, [5, 4, 3])


def test_dgl_semantics_is_layered(graph):
    ei, g = graph
    deg = g.in_degrees()
    fanouts = [5, 4]
    sub = NeighborSampler(g, fanouts, semantics="dgl").sample(torch.arange(8), SampleKey(seed=2))
    assert sub.layered
    for h, f in enumerate(fanouts):
        known = sum(sub.num_sampled_nodes[: h + 1])
        _, c = sub.hop_edges(h + 1)
        # Every node known before hop h+1 is a destination, with min(f, deg) edges.
        cnt = torch.bincount(c, minlength=known)
        assert cnt.numel() == known
        assert torch.equal(cnt, deg[sub.nodes[:known]].clamp_max(f))
    check_consistent(sub, ei, fanouts)


def stars(num_dst, deg, weights=None):
    """num_dst destinations, each with its own ``deg`` in-neighbours (edge id = dst*deg + j)."""
    dst = torch.arange(num_dst).repeat_interleave(deg)
    src = num_dst + torch.arange(num_dst * deg)
    w = None if weights is None else torch.tensor(weights, dtype=torch.float).repeat(num_dst)
    return Graph.from_edge_index(torch.stack([src, dst]), num_dst * (deg + 1), edge_weight=w)


def test_uniform_sampling_is_uniform_chi_square():
    # 3000 destinations with 12 in-neighbours each, fanout 4: every neighbour position should
    # be drawn 1/3 of the time; each destination has its own random stream.
    g = stars(3000, 12)
    sub = NeighborSampler(g, [4]).sample(torch.arange(3000), SampleKey(seed=7))
    obs = torch.bincount(sub.edge_ids % 12, minlength=12).numpy()
    assert obs.sum() == 4 * 3000
    assert stats.chisquare(obs).pvalue > 1e-3, obs
    # And across batch keys for one destination.
    s = NeighborSampler(stars(1, 12), [4])
    counts = Counter()
    for b in range(300):
        counts.update(s.sample(torch.tensor([0]), SampleKey(seed=7, batch=b)).edge_ids.tolist())
    assert stats.chisquare([counts[i] for i in range(12)]).pvalue > 1e-3, counts


def test_uniform_with_replacement_chi_square():
    g = stars(2000, 7)
    sub = NeighborSampler(g, [5], replace=True).sample(torch.arange(2000), SampleKey(seed=3))
    obs = torch.bincount(sub.edge_ids % 7, minlength=7).numpy()
    assert obs.sum() == 5 * 2000
    assert stats.chisquare(obs).pvalue > 1e-3, obs


@pytest.mark.parametrize("replace", [False, True])
def test_weighted_sampling_follows_weights(replace):
    trials = 4000
    g = stars(trials, 5, weights=[1.0, 2.0, 3.0, 4.0, 0.0])
    s = NeighborSampler(g, [1], weighted=True, replace=replace)
    sub = s.sample(torch.arange(trials), SampleKey(seed=11))
    obs = torch.bincount(sub.edge_ids % 5, minlength=5).numpy()
    assert obs[4] == 0  # zero weight: never drawn
    expected = trials * np.array([1, 2, 3, 4]) / 10
    assert stats.chisquare(obs[:4], expected).pvalue > 1e-3, obs


def test_weighted_without_replacement_two_of_three():
    # Fanout 2 of weights (1, 1, 8): the heavy edge is in almost every sample; exact
    # inclusion probability of a light edge under successive sampling is 1/10 + 8/10 * 1/2.
    trials = 4000
    g = stars(trials, 3, weights=[1.0, 1.0, 8.0])
    sub = NeighborSampler(g, [2], weighted=True).sample(torch.arange(trials), SampleKey(seed=2))
    obs = torch.bincount(sub.edge_ids % 3, minlength=3).numpy()
    p_light = 0.1 + 0.8 * 0.5 + 0.1 * (1 / 9)
    expected = trials * np.array([p_light, p_light, 2 - 2 * p_light])
    assert stats.chisquare(obs, expected).pvalue > 1e-3, (obs, expected)


def test_weighted_without_replacement_takes_distinct_positive_edges():
    ei, g = power_law_graph(weights=True)
    sub = NeighborSampler(g, [5, 3], weighted=True).sample(torch.arange(50), SampleKey(seed=4))
    check_consistent(sub, ei, [5, 3])
    deg = g.in_degrees()
    r, c = sub.hop_edges(1)
    assert torch.equal(torch.bincount(c, minlength=50)[:50], deg[:50].clamp_max(5))


def test_weighted_needs_weights_and_rejects_bad_ones(graph):
    _, g = graph
    with pytest.raises(ValueError, match="edge_weight"):
        NeighborSampler(g, [2], weighted=True)
    ei = torch.tensor([[1, 2], [0, 0]])
    bad = Graph.from_edge_index(ei, 3, edge_weight=torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match=">= 0"):
        NeighborSampler(bad, [2], weighted=True)
    nan = Graph.from_edge_index(ei, 3, edge_weight=torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="finite"):
        NeighborSampler(nan, [2], weighted=True)


def test_large_fanout_uses_hash_floyd():
    # Fanout above the linear-scan limit: picks must still be distinct and complete.
    n = 200
    src = torch.arange(1, n)
    g = Graph.from_edge_index(torch.stack([src, torch.zeros(n - 1, dtype=torch.long)]), n)
    sub = NeighborSampler(g, [150]).sample(torch.tensor([0]), SampleKey(seed=1))
    assert sub.row.numel() == 150
    assert sub.edge_ids.unique().numel() == 150


def test_bidirectional_adds_reverse_edges(graph):
    ei, g = graph
    sub = NeighborSampler(g, [3, 2], subgraph_type="bidirectional").sample(
        torch.arange(6), SampleKey(seed=5)
    )
    pairs = set(zip(sub.row.tolist(), sub.col.tolist()))
    assert all((c, r) in pairs for r, c in pairs)
    assert len(pairs) == sub.row.numel()  # deduplicated
    assert sum(sub.num_sampled_edges) == sub.row.numel()
    # Reverse edges carry the original's id, so e_id still names an edge between the two nodes.
    a, b = ei[0, sub.edge_ids], ei[1, sub.edge_ids]
    u, v = sub.nodes[sub.row], sub.nodes[sub.col]
    assert bool((((a == u) & (b == v)) | ((a == v) & (b == u))).all())


def test_induced_is_every_edge_among_sampled_nodes(graph):
    ei, g = graph
    sub = NeighborSampler(g, [3, 2], subgraph_type="induced").sample(
        torch.arange(6), SampleKey(seed=5)
    )
    node_set = set(sub.nodes.tolist())
    want = {k for k, (s, d) in enumerate(ei.t().tolist()) if s in node_set and d in node_set}
    assert set(sub.edge_ids.tolist()) == want and sub.edge_ids.numel() == len(want)
    check_consistent(sub, ei)
    # Grouped by hop: the edges of the first k groups touch only nodes of the first k hops.
    hop_of = torch.repeat_interleave(
        torch.arange(len(sub.num_sampled_nodes)), torch.tensor(sub.num_sampled_nodes)
    )
    lo = 0
    for h, cnt in enumerate(sub.num_sampled_edges):
        r, c = sub.row[lo : lo + cnt], sub.col[lo : lo + cnt]
        assert bool((torch.maximum(hop_of[r], hop_of[c]).clamp_min(1) == h + 1).all())
        lo += cnt


def test_disjoint_trees_do_not_share_nodes(graph):
    ei, g = graph
    seeds = torch.tensor([4, 4, 9])  # a repeated seed gets its own tree
    sub = NeighborSampler(g, [3, 2], disjoint=True).sample(seeds, SampleKey(seed=8))
    assert sub.batch is not None and torch.equal(sub.batch[:3], torch.arange(3))
    # Edges stay inside a tree; within a tree nodes are distinct.
    assert torch.equal(sub.batch[sub.row], sub.batch[sub.col])
    for t in range(3):
        mine = sub.nodes[sub.batch == t].tolist()
        assert len(mine) == len(set(mine))
    # Trees 0 and 1 share a seed and the key, but their trees are drawn independently.
    check_consistent(sub, ei, [3, 2])


def test_deterministic_across_thread_counts(monkeypatch):
    from gnnsys.loaders import _kernels

    monkeypatch.setattr(_kernels, "PARALLEL_MIN_WORK", 0)  # force the parallel kernel
    ei, g = power_law_graph(n=3000, e=60000, seed=3)
    seeds = torch.randperm(3000, generator=torch.Generator().manual_seed(0))[:500]
    kinds = ({}, {"semantics": "dgl"}, {"replace": True}, {"disjoint": True},
             {"subgraph_type": "induced"})  # fmt: skip
    for kw in kinds:
        s = NeighborSampler(g, [10, 5], **kw)
        old = numba.get_num_threads()
        try:
            numba.set_num_threads(1)
            a = s.sample(seeds, SampleKey(seed=1, epoch=2, batch=3))
            numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
            b = s.sample(seeds, SampleKey(seed=1, epoch=2, batch=3))
        finally:
            numba.set_num_threads(old)
        for f in ("nodes", "row", "col", "edge_ids"):
            assert torch.equal(getattr(a, f), getattr(b, f)), (kw, f)
        assert a.num_sampled_nodes == b.num_sampled_nodes
        # The serial twin (small batches, one-thread budgets) draws the same sample.
        monkeypatch.setattr(_kernels, "PARALLEL_MIN_WORK", 1 << 62)
        c = s.sample(seeds, SampleKey(seed=1, epoch=2, batch=3))
        monkeypatch.setattr(_kernels, "PARALLEL_MIN_WORK", 0)
        assert torch.equal(a.nodes, c.nodes) and torch.equal(a.edge_ids, c.edge_ids)


def test_keys_change_samples_and_repeat_exactly(graph):
    _, g = graph
    s = NeighborSampler(g, [3, 3])
    seeds = torch.arange(40)
    a = s.sample(seeds, SampleKey(seed=1, batch=0))
    b = s.sample(seeds, SampleKey(seed=1, batch=0))
    c = s.sample(seeds, SampleKey(seed=1, batch=1))
    assert torch.equal(a.edge_ids, b.edge_ids)
    assert not torch.equal(a.edge_ids, c.edge_ids)


def test_graph_without_edge_ids_reports_csc_positions():
    ei, g0 = power_law_graph(n=50, e=300)
    g = Graph(g0.indptr, g0.indices)  # no edge_ids
    sub = NeighborSampler(g, [3]).sample(torch.arange(10), SampleKey())
    assert torch.equal(g.indices[sub.edge_ids].long(), sub.nodes[sub.row])


def test_hash_relabel_path_matches_dense(monkeypatch, graph):
    import gnnsys.loaders.neighbor as nb

    _, g = graph
    a = NeighborSampler(g, [4, 3]).sample(torch.arange(30), SampleKey(seed=6))
    monkeypatch.setattr(nb, "DENSE_MAP_MAX_NODES", 10)
    b = NeighborSampler(g, [4, 3]).sample(torch.arange(30), SampleKey(seed=6))
    for f in ("nodes", "row", "col", "edge_ids"):
        assert torch.equal(getattr(a, f), getattr(b, f))


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "seeds, exc, msg",
    [
        (torch.tensor([-1, 2]), ValueError, "negative"),
        (torch.tensor([0, 400]), ValueError, "out of range"),
        (torch.tensor([0.0, 1.0]), ValueError, "integer"),
        (torch.tensor([], dtype=torch.long), ValueError, "empty"),
        (torch.tensor([[0, 1]]), ValueError, "1-dimensional"),
        ("abc", TypeError, "Tensor"),
    ],
)
def test_bad_seeds(graph, seeds, exc, msg):
    _, g = graph
    with pytest.raises(exc, match=msg):
        NeighborSampler(g, [2]).sample(seeds, SampleKey())


def test_seeds_on_wrong_device(graph):
    _, g = graph
    meta = torch.tensor([1, 2], device="meta")
    with pytest.raises(ValueError, match="must be on cpu"):
        NeighborSampler(g, [2]).sample(meta, SampleKey())


@pytest.mark.parametrize(
    "fanouts, exc, msg",
    [([], ValueError, "empty"), ([2, -2], ValueError, ">= -1"), ([2.5], TypeError, "int"),
     (3, TypeError, "list")],
)  # fmt: skip
def test_bad_fanouts(graph, fanouts, exc, msg):
    _, g = graph
    with pytest.raises(exc, match=msg):
        NeighborSampler(g, fanouts)


def test_bad_options(graph):
    _, g = graph
    with pytest.raises(ValueError, match="semantics"):
        NeighborSampler(g, [2], semantics="torch")
    with pytest.raises(ValueError, match="subgraph_type"):
        NeighborSampler(g, [2], subgraph_type="full")
    with pytest.raises(ValueError, match="disjoint"):
        NeighborSampler(g, [2], disjoint=True, semantics="dgl")
    with pytest.raises(TypeError, match="Graph"):
        NeighborSampler("graph", [2])
    with pytest.raises(ValueError, match="num_hops"):
        FullNeighborSampler(g, 0)
    with pytest.raises(TypeError, match="SampleKey"):
        NeighborSampler(g, [2]).sample(torch.tensor([0]), "key")


def test_zero_fanout_and_isolated_nodes():
    g = Graph.from_edge_index(torch.tensor([[1], [0]]), 4)
    sub = NeighborSampler(g, [0, 3]).sample(torch.tensor([0, 3]), SampleKey())
    assert sub.num_sampled_edges == [0, 0] and sub.nodes.tolist() == [0, 3]
    sub = NeighborSampler(g, [3, 3]).sample(torch.tensor([3]), SampleKey())
    assert sub.row.numel() == 0


def test_pickle_roundtrip(graph):
    import pickle

    _, g = graph
    s = pickle.loads(pickle.dumps(NeighborSampler(g, [2, 2])))
    a = s.sample(torch.arange(5), SampleKey(seed=1))
    b = NeighborSampler(g, [2, 2]).sample(torch.arange(5), SampleKey(seed=1))
    assert torch.equal(a.nodes, b.nodes)


def test_bfs_helper_sanity():
    # The k-hop reference itself: a path 0 <- 1 <- 2 <- 3.
    ei = torch.tensor([[1, 2, 3], [0, 1, 2]])
    nodes, edges = khop(ei, 4, [0], 2)
    assert nodes == {0, 1, 2} and edges == {0, 1}


def test_edge_index_of_shares_memory_only_when_exact(graph):
    from gnnsys.loaders.base import SampledSubgraph
    from gnnsys.loaders.neighbor import edge_index_of

    _, g = graph
    sub = NeighborSampler(g, [3]).sample(torch.arange(5), SampleKey())
    ei = edge_index_of(sub)
    assert ei.data_ptr() == sub.row.data_ptr()  # no copy
    assert torch.equal(ei, torch.stack([sub.row, sub.col]))
    cut = SampledSubgraph(sub.nodes, sub.row[:2], sub.col[:2], sub.num_sampled_nodes, [2])
    assert torch.equal(edge_index_of(cut), torch.stack([sub.row[:2], sub.col[:2]]))
    sep = SampledSubgraph(sub.nodes, sub.row.clone(), sub.col.clone(), [5], [1])
    assert torch.equal(edge_index_of(sep), ei)


def test_unpacked_adjacency_gives_the_same_sample(graph):
    _, g = graph
    a = NeighborSampler(g, [4, 3]).sample(torch.arange(30), SampleKey(seed=2))
    b = NeighborSampler(g, [4, 3], pack_adjacency=False).sample(torch.arange(30), SampleKey(seed=2))
    for f in ("nodes", "row", "col", "edge_ids"):
        assert torch.equal(getattr(a, f), getattr(b, f))
