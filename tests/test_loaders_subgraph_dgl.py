"""The DGL drop-ins of the whole-subgraph samplers (loaders/dgl_subgraph.py): ClusterGCNSampler,
SAINTSampler and ShaDowKHopSampler through the DGL DataLoader, as gnnsys objects (always) and
as real DGL graphs (when dgl imports), against brute-force induced subgraphs and DGL's own."""

import importlib.util

import pytest
import torch

from gnnsys.graph import Graph
from gnnsys.loaders import dgl as G

HAS_DGL = importlib.util.find_spec("dgl") is not None
BLOCK_TYPES = ["gnnsys", pytest.param("dgl", marks=pytest.mark.skipif(not HAS_DGL, reason="dgl"))]


def make_graph(n=50, e=300, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=gen)
    key = torch.unique(ei[0] * n + ei[1])
    g = Graph.from_edge_index(torch.stack([key // n, key % n]), n)
    g.ndata["feat"] = torch.randn(n, 3, generator=gen)
    g.ndata["label"] = torch.randint(0, 4, (n,), generator=gen)
    g.edata["w"] = torch.arange(g.num_edges, dtype=torch.float32)  # CSC order, as Graph.edata
    return g


def parent_edges(g, subg):
    """The subgraph's edges as parent (src, dst) pairs, and its edge "_ID"s."""
    ids = subg.ndata["_ID"].long()
    u, v = subg.edges()
    return list(zip(ids[u.long()].tolist(), ids[v.long()].tolist())), subg.edata["_ID"].long()


def induced_pairs(g, nodes):
    """Brute force: {(src, dst): CSC position} of the edges among ``nodes``."""
    keep = set(nodes.tolist())
    src, dst = g.to_edge_index().tolist()
    return {(s, d): p for p, (s, d) in enumerate(zip(src, dst)) if s in keep and d in keep}


def khop_in(g, seeds, depth):
    src, dst = g.to_edge_index().tolist()
    seen = set(seeds)
    frontier = set(seeds)
    for _ in range(depth):
        nxt = {s for s, d in zip(src, dst) if d in frontier} - seen
        seen |= nxt
        frontier = nxt
    return seen


def check_induced(g, subg):
    """Every parent edge among the subgraph's nodes, once; "_ID" the parent's edge ids (the
    Graph's ``edge_ids``), ``edata`` rows in the Graph's CSC order (as ``Graph.edata``)."""
    pairs, eid = parent_edges(g, subg)
    want = induced_pairs(g, subg.ndata["_ID"].long())
    assert sorted(pairs) == sorted(want) and len(pairs) == len(want)
    pos = torch.tensor([want[p] for p in pairs], dtype=torch.int64)
    assert torch.equal(eid, g.edge_ids[pos] if g.edge_ids is not None else pos)
    ids = subg.ndata["_ID"].long()
    assert torch.equal(subg.ndata["feat"], g.ndata["feat"][ids])
    assert torch.equal(subg.edata["w"], g.edata["w"][pos])


@pytest.mark.parametrize("block_type", BLOCK_TYPES)
def test_cluster_gcn_batches_are_induced_subgraphs(block_type, tmp_path):
    g = make_graph()
    path = str(tmp_path / "parts.pkl")
    sampler = G.ClusterGCNSampler(g, 5, cache_path=path, prefetch_ndata=["feat"],
                                  prefetch_edata=["w"])  # fmt: skip
    loader = G.DataLoader(g, torch.arange(5), sampler, batch_size=2, shuffle=True, seed=1,
                          block_type=block_type)  # fmt: skip
    assert len(loader) == 3
    seen = []
    off, ids = sampler.partition_offset, sampler.partition_node_ids
    parts = [set(ids[off[p] : off[p + 1]].tolist()) for p in range(5)]
    for subg in loader:
        check_induced(g, subg)
        nodes = set(subg.ndata["_ID"].tolist())
        assert any(nodes == a | b for a in parts for b in parts) or nodes in parts
        seen += subg.ndata["_ID"].tolist()
        assert "label" in subg.ndata.keys()  # parent columns readable lazily, as DGL's
    assert sorted(seen) == list(range(g.num_nodes))
    again = G.ClusterGCNSampler(g, 5, cache_path=path)  # read back from the cache file
    assert torch.equal(again.partition_node_ids, ids)
    with pytest.raises(ValueError, match="holds 5 partitions, not k=4"):
        G.ClusterGCNSampler(g, 4, cache_path=path)
    with pytest.raises(IndexError, match="out of range"):
        G.DataLoader(g, torch.arange(6), sampler)


@pytest.mark.parametrize("block_type", BLOCK_TYPES)
@pytest.mark.parametrize("mode,budget", [("node", 20), ("edge", 15), ("walk", (5, 3))])
def test_saint_subgraphs(block_type, mode, budget):
    g = make_graph()
    sampler = G.SAINTSampler(mode, budget, prefetch_ndata=["feat"], prefetch_edata=["w"])
    loader = G.DataLoader(g, torch.arange(4), sampler, seed=3, block_type=block_type)
    subs = list(loader)
    assert len(subs) == 4
    for subg in subs:
        ids = subg.ndata["_ID"].long()
        assert bool((ids[1:] > ids[:-1]).all())  # distinct and sorted, as DGL's unique()
        check_induced(g, subg)
    again = list(G.DataLoader(g, torch.arange(4), sampler, seed=3, block_type=block_type))
    assert all(torch.equal(a.ndata["_ID"], b.ndata["_ID"]) for a, b in zip(subs, again))


@pytest.mark.parametrize("block_type", BLOCK_TYPES)
def test_shadow_full_fanout_is_the_khop_induced_subgraph(block_type):
    g = make_graph()
    sampler = G.ShaDowKHopSampler([-1, -1], prefetch_node_feats=["feat"],
                                  prefetch_edge_feats=["w"])  # fmt: skip
    seeds = torch.tensor([4, 11, 30])
    loader = G.DataLoader(g, seeds, sampler, batch_size=3, block_type=block_type)
    input_nodes, output_nodes, subg = next(iter(loader))
    assert torch.equal(output_nodes, seeds) and torch.equal(input_nodes, subg.ndata["_ID"])
    assert subg.ndata["_ID"][:3].tolist() == seeds.tolist()  # the seeds first
    assert set(input_nodes.tolist()) == khop_in(g, seeds.tolist(), 2)
    check_induced(g, subg)


@pytest.mark.parametrize("block_type", BLOCK_TYPES)
def test_shadow_in_edge_prediction(block_type):
    g = make_graph()
    sampler = G.as_edge_prediction_sampler(
        G.ShaDowKHopSampler([3, 3]), exclude="self", negative_sampler=G.negative_sampler.Uniform(1)
    )
    eids = torch.arange(0, 40, 3)
    loader = G.DataLoader(g, eids, sampler, batch_size=8, seed=0, block_type=block_type)
    for input_nodes, pair, neg, subg in loader:
        k = pair.num_nodes()
        assert torch.equal(input_nodes[:k], pair.ndata["_ID"])  # the pairs' nodes are the seeds
        assert neg.num_nodes() == k
        assert not set(subg.edata["_ID"].tolist()) & set(pair.edata["_ID"].tolist())


def test_refusals():
    g = make_graph()
    cluster = G.ClusterGCNSampler(g, 3, cache_path=None)
    with pytest.raises(TypeError, match="not ClusterGCNSampler"):
        G.as_edge_prediction_sampler(cluster)
    with pytest.raises(ValueError, match="k must be >= 1"):
        G.ClusterGCNSampler(g, 0, cache_path=None)
    with pytest.raises(ValueError, match="num_parts=51 exceeds"):
        G.ClusterGCNSampler(g, 51, cache_path=None)
    with pytest.raises(ValueError, match="mode must be"):
        G.ClusterGCNSampler(g, 3, cache_path=None, mode="kway")
    with pytest.raises(TypeError, match="balance_types must hold integers or bools"):
        G.ClusterGCNSampler(g, 3, cache_path=None, balance_ntypes=torch.zeros(50))
    with pytest.raises(ValueError, match="mode must be"):
        G.SAINTSampler("nodes", 3)
    with pytest.raises(ValueError, match="budget must be >= 1"):
        G.SAINTSampler("node", 0)
    with pytest.raises(ValueError, match="walk_length"):
        G.SAINTSampler("walk", (3, 0))
    with pytest.raises(TypeError, match="num_roots, walk_length"):
        G.SAINTSampler("walk", 3)
    with pytest.raises(ValueError, match="fanouts is empty"):
        G.ShaDowKHopSampler([])
    with pytest.raises(ValueError, match="fanouts\\[0\\]"):
        G.ShaDowKHopSampler([-3])
    hetero = Graph.from_hetero({("a", "r", "b"): torch.tensor([[0], [0]])}, {"a": 1, "b": 1})
    with pytest.raises(NotImplementedError, match="homogeneous"):
        G.DataLoader(hetero, {"a": torch.tensor([0])}, G.ShaDowKHopSampler([2]))


@pytest.mark.skipif(not HAS_DGL, reason="needs dgl")
def test_matches_dgls_own_samplers(tmp_path):
    import dgl

    base = make_graph()
    src, dst = base.to_edge_index()
    g = dgl.graph((src, dst), num_nodes=base.num_nodes)
    g.ndata["feat"] = base.ndata["feat"]
    g.edata["w"] = torch.rand(g.num_edges())
    ours_of = {"block_type": "dgl", "seed": 0}
    cluster = dgl.dataloading.ClusterGCNSampler(g, 4, cache_path=str(tmp_path / "c.pkl"))
    shadow = dgl.dataloading.ShaDowKHopSampler([-1, -1])
    for real, idx in ((cluster, torch.arange(4)), (shadow, torch.tensor([3, 8, 20]))):
        theirs = next(iter(dgl.dataloading.DataLoader(g, idx, real, batch_size=2)))
        ours = next(iter(G.DataLoader(g, idx, real, batch_size=2, **ours_of)))
        assert type(ours) is type(theirs)
        if isinstance(ours, tuple):
            assert torch.equal(ours[1], theirs[1])
            ours, theirs = ours[-1], theirs[-1]
        assert sorted(ours.ndata.keys()) == sorted(theirs.ndata.keys())
        assert sorted(ours.edata.keys()) == sorted(theirs.edata.keys())
        assert ours.idtype == theirs.idtype
        for a, b in ((ours, theirs),):
            assert set(a.ndata["_ID"].tolist()) == set(b.ndata["_ID"].tolist())
            assert sorted(a.edata["_ID"].tolist()) == sorted(b.edata["_ID"].tolist())
    saint = dgl.dataloading.SAINTSampler("walk", (5, 2))
    ours = next(iter(G.DataLoader(g, torch.arange(2), saint, **ours_of)))
    theirs = next(iter(dgl.dataloading.DataLoader(g, torch.arange(2), saint)))
    assert type(ours) is type(theirs)
    assert sorted(ours.ndata.keys()) == sorted(theirs.ndata.keys())


def test_cluster_gcn_recursive_mode_and_balanced_edges():
    # DGL's mode="recursive" (METIS recursive bisection) and balance_edges=True (in-degrees as
    # vertex weights): each a partition of its own, deterministic, covering every node
    pytest.importorskip("pymetis")
    g = make_graph(n=200, e=2000)

    def parts(**kw):
        s = G.ClusterGCNSampler(g, 4, cache_path=None, seed=2, **kw)
        return s.partition_offset, s.partition_node_ids

    kway, rec, bal = parts(), parts(mode="recursive"), parts(balance_edges=True)
    assert torch.equal(parts(mode="recursive")[1], rec[1])
    assert not torch.equal(rec[1], kway[1]) and not torch.equal(bal[1], kway[1])
    for off, ids in (kway, rec, bal):
        assert sorted(ids.tolist()) == list(range(200)) and int(off[-1]) == 200
    deg = torch.diff(g.indptr)  # in-edges per node
    off, ids = bal
    per_part = [int(deg[ids[off[p] : off[p + 1]]].sum()) for p in range(4)]
    assert max(per_part) <= 1.1 * int(deg.sum()) / 4
    # balance_ntypes (e.g. the training mask, as DistDGL scripts pass it): each class spread
    # evenly, at most 3% over its share, the nodes of the first 40 ids being the mask
    mask = torch.arange(200) < 40
    off, ids = parts(balance_ntypes=mask)
    assert sorted(ids.tolist()) == list(range(200))
    for cls, count in ((mask, 40), (~mask, 160)):
        held = [int(cls[ids[off[p] : off[p + 1]]].sum()) for p in range(4)]
        assert max(held) <= max(-(-count // 4), int(1.03 * count / 4)), held
