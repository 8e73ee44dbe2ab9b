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


def test_a_batch_too_big_for_memory_says_why(monkeypatch):
    # With replacement every destination draws its full fanout: 100k copies of a seed times
    # 2^31 - 1 draws is ~3 PB of edge buffers, beyond any address space, so the allocation
    # fails at once (not an overcommitted map filled later).
    from gnnsys.loaders import _kernels

    monkeypatch.setattr(_kernels, "PARALLEL_MIN_WORK", 1 << 62)  # the serial kernel
    ring = torch.arange(10)
    g = Graph.from_edge_index(torch.stack([ring, (ring + 1) % 10]), 10)
    s = NeighborSampler(g, [2**31 - 1], replace=True)
    with pytest.raises(
        MemoryError,
        match=r"sampling 100000 seeds with fanouts \[2147483647\] "
        r"\(replace=True\) needs more memory.*draws exactly its fanout.*lower the",
    ):
        s.sample(torch.zeros(100_000, dtype=torch.long), SampleKey(seed=1))


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
    [([2, -2], ValueError, ">= -1"), ([2.5], TypeError, "int"), (3, TypeError, "list"),
     (torch.tensor([[1, 2]]), TypeError, "1-D"),
     # a fanout past 2**31 - 1 would overflow the kernels' slot counts (a replace draw of
     # 2**62 per seed wrapped around and wrote past its buffer)
     ([2**31], ValueError, "at most 2147483647"), ([2**62], ValueError, "at most")],
)  # fmt: skip
def test_bad_fanouts(graph, fanouts, exc, msg):
    _, g = graph
    with pytest.raises(exc, match=msg):
        NeighborSampler(g, fanouts, replace=True)
    with pytest.raises(exc, match=msg):
        NeighborSampler(g, fanouts)


def test_edge_ids_past_int32_come_back_whole():
    # The kernels pack (edge id << 32 | source) only when every id fits in 31 bits; global
    # ids of a subgraph may not (they came back wrapped: 2**31 + 7 as -2147483641).
    ids = torch.tensor([2**40, 2**31 + 7, 2**32 + 1])
    g = Graph.from_csc(torch.tensor([0, 2, 3, 3]), torch.tensor([1, 2, 0]), edge_ids=ids)
    sub = NeighborSampler(g, [-1, -1]).sample(torch.tensor([0]), SampleKey())
    assert sorted(sub.edge_ids.tolist()) == sorted(ids.tolist())


def test_largest_fanout_samples(graph):
    _, g = graph
    sub = NeighborSampler(g, [2**31 - 1]).sample(torch.tensor([0]), SampleKey())
    assert sub.nodes[0] == 0 and sub.edge_ids.numel() == int(g.in_degrees()[0])


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


def test_zero_hops_give_the_seeds_alone(graph):
    _, g = graph
    sub = NeighborSampler(g, []).sample(torch.tensor([3, 1, 3]), SampleKey())
    assert sub.nodes.tolist() == [3, 1, 3] and sub.num_sampled_nodes == [3]
    assert sub.num_sampled_edges == [] and sub.row.numel() == 0


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


# ---------------------------------------------------------------------- typed graphs
NN = {"paper": 60, "author": 40, "field": 6}


def hetero_graph(seed=0, e=(300, 150, 80)):
    g = torch.Generator().manual_seed(seed)

    def rand(ns, nd, k):
        return torch.stack(
            [torch.randint(0, ns, (k,), generator=g), torch.randint(0, nd, (k,), generator=g)]
        )

    writes = rand(40, 60, e[1])
    ed = {
        ("paper", "cites", "paper"): rand(60, 60, e[0]),
        ("author", "writes", "paper"): writes,
        ("paper", "rev_writes", "author"): writes.flip(0),
        ("field", "rev_has_topic", "paper"): rand(6, 60, e[2]),
    }
    return ed, Graph.from_hetero(ed, NN)


FANOUTS = {
    ("paper", "cites", "paper"): [4, 2],
    ("author", "writes", "paper"): [2, 3],
    ("paper", "rev_writes", "author"): [3, 2],
    ("field", "rev_has_topic", "paper"): [1, -1],
}


def check_typed(sub, ed, g, fanouts=None):
    """Every sampled edge exists with its type; ids within types are consistent with nodes;
    without replacement each destination keeps min(fanout, degree of that type)."""
    names = g.node_types
    off = g.type_offsets()
    for t, name in enumerate(names):
        ids = sub.type_nodes(t)
        assert bool(((ids >= off[t]) & (ids < off[t + 1])).all()), name
        if not sub.layered:
            rest = ids[int(sub.type_num_sampled_nodes[0, t]) :].tolist()
            assert len(set(rest)) == len(rest)
    assert int(sub.type_num_sampled_nodes.sum()) == sub.nodes.numel()
    total = 0
    for e, et in enumerate(g.edge_types):
        st, dt = names.index(et[0]), names.index(et[2])
        src_nodes, dst_nodes = sub.type_nodes(st) - off[st], sub.type_nodes(dt) - off[dt]
        for h in range(1, sub.num_hops + 1):
            blk = sub.block(h, e)
            total += blk.num_edges
            src = src_nodes[blk.indices]
            dst = dst_nodes[blk.dst()]
            assert torch.equal(ed[et][0, blk.edge_ids], src), (et, h)
            assert torch.equal(ed[et][1, blk.edge_ids], dst), (et, h)
            # destinations are the hop's frontier of the destination type
            counts = sub.type_num_sampled_nodes[:, dt].tolist()
            lo = 0 if sub.layered else sum(counts[: h - 1])
            assert blk.dst_start == lo and blk.num_dst == sum(counts[:h]) - lo
            if fanouts is not None:
                f = fanouts[et][h - 1]
                deg = torch.bincount(ed[et][1], minlength=NN[et[2]])
                want = deg[dst_nodes[lo : lo + blk.num_dst]]
                want = want if f < 0 else want.clamp_max(f)
                assert torch.equal(blk.indptr[1:] - blk.indptr[:-1], want), (et, h)
                for i in range(blk.num_dst):  # distinct without replacement
                    mine = blk.edge_ids[blk.indptr[i] : blk.indptr[i + 1]]
                    assert mine.unique().numel() == mine.numel()
    assert total == sub.row.numel() == sum(sub.num_sampled_edges)


@pytest.mark.parametrize("semantics", ["pyg", "dgl"])
def test_typed_sampling_against_the_graph(semantics):
    ed, g = hetero_graph()
    s = NeighborSampler(g, FANOUTS, semantics=semantics)
    seeds = torch.tensor([0, 5, 59, 7]) + g.type_offsets()[0]  # papers
    for b in range(5):
        sub = s.sample(seeds, SampleKey(seed=3, batch=b))
        assert torch.equal(sub.type_nodes(0)[:4], seeds)  # seeds first within their type
        check_typed(sub, ed, g, FANOUTS)


def test_typed_seeds_of_several_types_and_disjoint():
    ed, g = hetero_graph(1)
    off = g.type_offsets()
    seeds = torch.tensor([int(off[1]) + 3, 2, int(off[1]) + 39, 11])  # author, paper, ...
    sub = NeighborSampler(g, FANOUTS).sample(seeds, SampleKey(seed=1))
    assert sub.type_nodes(0)[:2].tolist() == [2, 11]
    assert (sub.type_nodes(1)[:2] - off[1]).tolist() == [3, 39]
    check_typed(sub, ed, g, FANOUTS)
    sub = NeighborSampler(g, FANOUTS, disjoint=True).sample(seeds, SampleKey(seed=1))
    assert sub.batch.numel() == sub.nodes.numel()
    assert sub.batch[:2].tolist() == [1, 3]  # grouped by type: the paper seeds' trees first


def test_typed_fanout_zero_and_missing_types():
    ed, g = hetero_graph()
    only_cites = {et: ([3, 3] if et[1] == "cites" else [0, 0]) for et in FANOUTS}
    sub = NeighborSampler(g, only_cites).sample(torch.tensor([1, 2]), SampleKey())
    assert sub.type_num_sampled_nodes[:, 1:].sum() == 0  # no author or field reached
    check_typed(sub, ed, g, only_cites)
    with pytest.raises(ValueError, match="no fanouts for edge type"):
        NeighborSampler(g, {("paper", "cites", "paper"): [2]})
    with pytest.raises(ValueError, match="not in the graph"):
        NeighborSampler(g, {**FANOUTS, ("paper", "likes", "paper"): [1, 1]})
    with pytest.raises(ValueError, match="same number of hops"):
        NeighborSampler(g, {**FANOUTS, ("paper", "cites", "paper"): [1]})
    # a plain list applies to every edge type; relation names work when unambiguous
    a = NeighborSampler(g, [2, 2]).sample(torch.tensor([4]), SampleKey(seed=9))
    b = NeighborSampler(g, {et[1]: [2, 2] for et in FANOUTS}).sample(
        torch.tensor([4]), SampleKey(seed=9)
    )
    assert torch.equal(a.nodes, b.nodes) and torch.equal(a.edge_ids, b.edge_ids)
    with pytest.raises(ValueError, match="at least one hop"):
        NeighborSampler(g, [], subgraph_type="induced")


def _pyg_bidirectional(sub, g):
    # PyG 2.8's own HeteroSamplerOutput.to_bidirectional applied to our directional sample.
    from torch_geometric.sampler import HeteroSamplerOutput

    ets = [tuple(et) for et in g.edge_types]
    spans = {et: (sub.edge_span(1, e)[0], sub.edge_span(sub.num_hops, e)[1])
             for e, et in enumerate(ets)}  # fmt: skip
    out = HeteroSamplerOutput(
        node={t: sub.type_nodes(i) for i, t in enumerate(g.node_types)},
        row={et: sub.row[lo:hi] for et, (lo, hi) in spans.items()},
        col={et: sub.col[lo:hi] for et, (lo, hi) in spans.items()},
        edge={et: sub.edge_ids[lo:hi] for et, (lo, hi) in spans.items()},
    )
    return out.to_bidirectional()


def test_typed_bidirectional_matches_pygs_to_bidirectional():
    ed, g = hetero_graph(4)
    seeds = torch.tensor([0, 5, 59, int(g.type_offsets()[1]) + 2])
    key = SampleKey(seed=6)
    want = _pyg_bidirectional(NeighborSampler(g, FANOUTS).sample(seeds, key), g)
    sub = NeighborSampler(g, FANOUTS, subgraph_type="bidirectional").sample(seeds, key)
    rewritten = set(sub.metadata["edge_types_without_ids"])
    for e, et in enumerate(g.edge_types):
        lo, hi = sub.edge_span(1, e)[0], sub.edge_span(sub.num_hops, e)[1]
        assert torch.equal(sub.row[lo:hi], want.row[et]), et
        assert torch.equal(sub.col[lo:hi], want.col[et]), et
        if want.edge[et] is None:
            assert e in rewritten and bool((sub.edge_ids[lo:hi] == -1).all())
        else:
            assert e not in rewritten and torch.equal(sub.edge_ids[lo:hi], want.edge[et])
    # cites (paper->paper, no rev_cites) is closed under reversal; writes/rev_writes mirror
    cites = set(zip(sub.row[: sub.edge_span(2, 0)[1]].tolist(),
                    sub.col[: sub.edge_span(2, 0)[1]].tolist()))  # fmt: skip
    assert cites and all((c, r) in cites for r, c in cites)
    assert sub.row.numel() == sum(sub.num_sampled_edges)
    with pytest.warns(UserWarning, match="does not seem to have a reverse edge type"):
        two = Graph.from_hetero(
            {("a", "likes", "b"): torch.tensor([[0], [1]]),
             ("a", "hates", "b"): torch.tensor([[1], [0]])}, {"a": 2, "b": 2},
        )  # fmt: skip
        NeighborSampler(two, [1], subgraph_type="bidirectional")


@pytest.mark.parametrize("semantics", ["pyg", "dgl"])
def test_typed_induced_is_every_edge_of_each_type_among_sampled_nodes(monkeypatch, semantics):
    from gnnsys.loaders import _kernels

    ed, g = hetero_graph(3)
    off = g.type_offsets()
    seeds = torch.tensor([0, 5, 59, int(off[1]) + 2])
    got = []
    for work in (0, 1 << 62):  # parallel and serial kernels
        monkeypatch.setattr(_kernels, "PARALLEL_MIN_WORK", work)
        s = NeighborSampler(g, FANOUTS, semantics=semantics, subgraph_type="induced")
        got.append(s.sample(seeds, SampleKey(seed=4)))
    sub = got[0]
    assert torch.equal(sub.row, got[1].row) and torch.equal(sub.col, got[1].col)
    names = g.node_types
    total = 0
    for e, et in enumerate(g.edge_types):
        st, dt = names.index(et[0]), names.index(et[2])
        src_ids, dst_ids = sub.type_nodes(st) - off[st], sub.type_nodes(dt) - off[dt]
        lo, hi = sub.edge_span(1, e)[0], sub.edge_span(sub.num_hops, e)[1]
        total += hi - lo
        eid = sub.edge_ids[lo:hi]
        want = torch.isin(ed[et][0], src_ids) & torch.isin(ed[et][1], dst_ids)
        assert sorted(eid.tolist()) == torch.nonzero(want).flatten().tolist(), et
        assert torch.equal(src_ids[sub.row[lo:hi]], ed[et][0, eid]), et  # ids within types
        assert torch.equal(dst_ids[sub.col[lo:hi]], ed[et][1, eid]), et
    assert total == sub.row.numel() == sum(sub.num_sampled_edges)
    # the nodes are those of directional sampling with the same key
    d = NeighborSampler(g, FANOUTS, semantics=semantics).sample(seeds, SampleKey(seed=4))
    assert torch.equal(d.nodes, sub.nodes)
    with pytest.raises(ValueError, match="per-hop CSC"):
        sub.block(1, 0)


def test_typed_uniform_per_edge_type_chi_square():
    # 2000 papers, each cited by 8 papers and written by 6 authors; fanouts 2 and 3.
    n = 2000
    cites_dst = torch.arange(n).repeat_interleave(8)
    cites_src = (cites_dst + 1 + torch.arange(n * 8) % 8) % n
    writes_dst = torch.arange(n).repeat_interleave(6)
    writes_src = torch.arange(n * 6) % 600
    g = Graph.from_hetero(
        {("paper", "cites", "paper"): torch.stack([cites_src, cites_dst]),
         ("author", "writes", "paper"): torch.stack([writes_src, writes_dst])},
        {"paper": n, "author": 600},
    )  # fmt: skip
    s = NeighborSampler(g, {"cites": [2], "writes": [3]})
    sub = s.sample(torch.arange(n), SampleKey(seed=5))
    for e, (k, deg) in enumerate(((2, 8), (3, 6))):
        blk = sub.block(1, e)
        assert blk.num_edges == k * n
        obs = torch.bincount(blk.edge_ids % deg, minlength=deg).numpy()
        assert stats.chisquare(obs).pvalue > 1e-3, (e, obs)


def test_typed_weighted_sampling_uses_each_types_weights():
    n = 3000
    dst = torch.arange(n).repeat_interleave(3)
    ed = {("u", "a", "v"): torch.stack([torch.arange(3 * n) % 30, dst]),
          ("u", "b", "v"): torch.stack([torch.arange(3 * n) % 30, dst])}  # fmt: skip
    w = {("u", "a", "v"): torch.tensor([1.0, 0.0, 3.0]).repeat(n),
         ("u", "b", "v"): torch.tensor([0.0, 2.0, 2.0]).repeat(n)}  # fmt: skip
    g = Graph.from_hetero(ed, {"u": 30, "v": n}, edge_weight_dict=w)
    for replace in (False, True):
        s = NeighborSampler(g, [1], weighted=True, replace=replace)
        sub = s.sample(torch.arange(n) + 30, SampleKey(seed=7))
        a, b = sub.block(1, 0), sub.block(1, 1)
        obs_a = torch.bincount(a.edge_ids % 3, minlength=3).numpy()
        obs_b = torch.bincount(b.edge_ids % 3, minlength=3).numpy()
        assert obs_a[1] == 0 and obs_b[0] == 0, (obs_a, obs_b)
        assert stats.chisquare(obs_a[[0, 2]], n * np.array([0.25, 0.75])).pvalue > 1e-3
        assert stats.chisquare(obs_b[[1, 2]], n * np.array([0.5, 0.5])).pvalue > 1e-3


def test_typed_deterministic_across_thread_counts(across_threads):
    ed, g = hetero_graph(2, e=(3000, 2000, 500))
    seeds = torch.arange(60)

    def both():
        return [(sem, NeighborSampler(g, FANOUTS, semantics=sem).sample(seeds, SampleKey(2, 1)))
                for sem in ("pyg", "dgl")]  # fmt: skip

    results = [r for run in across_threads(both) for r in run]
    for (sa, a), (sb, b) in zip(results[:2], results[2:4]):
        assert sa == sb and torch.equal(a.nodes, b.nodes) and torch.equal(a.row, b.row)
    for (_, a), (_, c) in zip(results[:2], results[4:]):
        assert torch.equal(a.nodes, c.nodes) and torch.equal(a.edge_ids, c.edge_ids)
