"""The DGL drop-ins of the whole-subgraph samplers (loaders/dgl_subgraph.py): ClusterGCNSampler,
SAINTSampler and ShaDowKHopSampler through the DGL DataLoader, as gnnsys objects (always) and
as real DGL graphs (when dgl imports), against brute-force induced subgraphs and DGL's own."""

import importlib.util
import warnings

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


def make_hetero():
    """A gnnsys heterograph: a->b, b->a (the reverse of a->b), a->a, with typed data."""
    gen = torch.Generator().manual_seed(1)
    ab = torch.stack([torch.randint(0, 20, (60,), generator=gen),
                      torch.randint(0, 12, (60,), generator=gen)])  # fmt: skip
    ei = {("a", "ab", "b"): ab, ("b", "ba", "a"): ab.flip(0),
          ("a", "aa", "a"): torch.randint(0, 20, (2, 40), generator=gen)}  # fmt: skip
    g = Graph.from_hetero(ei, {"a": 20, "b": 12})
    g.ndata[("a", "feat")] = torch.randn(20, 3, generator=gen)
    g.ndata[("b", "feat")] = torch.randn(12, 3, generator=gen)
    for et, e in ei.items():
        g.edata[(et, "w")] = torch.arange(e.shape[1], dtype=torch.float32)  # = the edge id
    return g, ei


def typed_khop(ei, seeds, depth):
    seen = {t: set(v) for t, v in seeds.items()}
    frontier = dict(seen)
    for _ in range(depth):
        nxt = {}
        for et, e in ei.items():
            for u, v in e.t().tolist():
                if v in frontier.get(et[2], ()):
                    nxt.setdefault(et[0], set()).add(u)
        frontier = {t: v - seen.get(t, set()) for t, v in nxt.items()}
        for t, v in frontier.items():
            seen.setdefault(t, set()).update(v)
    return seen


def check_typed_induced(ei, subg):
    """Every edge of each type among the subgraph's nodes, once, with its id and data."""
    for et, e in ei.items():
        src_ids, dst_ids = subg.ndata["_ID"][et[0]].long(), subg.ndata["_ID"][et[2]].long()
        keep_s, keep_d = set(src_ids.tolist()), set(dst_ids.tolist())
        want = sorted((u, v, i) for i, (u, v) in enumerate(e.t().tolist())
                      if u in keep_s and v in keep_d)  # fmt: skip
        u, v = subg.edges(etype=et)
        eid = subg.edges[et].data["_ID"].long()
        got = sorted(zip(src_ids[u.long()].tolist(), dst_ids[v.long()].tolist(), eid.tolist()))
        assert got == want
        assert torch.equal(subg.edges[et].data["w"], eid.float())


@pytest.mark.parametrize("block_type", BLOCK_TYPES)
def test_shadow_on_a_heterograph(block_type):
    g, ei = make_hetero()
    sampler = G.ShaDowKHopSampler([{"ab": -1, "ba": -1, "aa": -1}, -1],
                                  prefetch_node_feats=["feat"], prefetch_edge_feats=["w"])  # fmt: skip
    seeds = {"a": torch.tensor([3, 8, 15]), "b": torch.tensor([4])}
    loader = G.DataLoader(g, seeds, sampler, batch_size=4, block_type=block_type)
    input_nodes, output_nodes, subg = next(iter(loader))
    assert sorted(output_nodes) == ["a", "b"]
    assert output_nodes["a"].tolist() == [3, 8, 15] and output_nodes["b"].tolist() == [4]
    want = typed_khop(ei, {"a": [3, 8, 15], "b": [4]}, 2)
    for nt in ("a", "b"):
        assert torch.equal(input_nodes[nt], subg.ndata["_ID"][nt])
        assert set(input_nodes[nt].tolist()) == want[nt]
        assert input_nodes[nt][: len(output_nodes[nt])].tolist() == output_nodes[nt].tolist()
        assert torch.equal(subg.nodes[nt].data["feat"], g.ndata[(nt, "feat")][input_nodes[nt]])
    assert subg.num_nodes("a") == len(want["a"])
    check_typed_induced(ei, subg)
    # finite fanouts per edge type: a subset of the 2-hop nodes, induced edges all there
    sampler = G.ShaDowKHopSampler([{"ab": 2, "ba": 1, "aa": 0}, 2], prefetch_edge_feats=["w"])
    for input_nodes, output_nodes, subg in G.DataLoader(g, {"a": torch.arange(6)}, sampler,
                                                         batch_size=3, block_type=block_type):  # fmt: skip
        assert list(output_nodes) == ["a"]
        reach = typed_khop(ei, {"a": output_nodes["a"].tolist()}, 2)
        for nt in ("a", "b"):
            assert set(input_nodes[nt].tolist()) <= reach.get(nt, set())
        check_typed_induced(ei, subg)
    # outside a DataLoader, as DGL's sampler.sample(g, indices)
    inp, out, subg = sampler.sample(g, {"b": torch.tensor([1, 2])})
    assert list(out) == ["b"] and out["b"].tolist() == [1, 2]
    check_typed_induced(ei, subg)


@pytest.mark.parametrize("block_type", BLOCK_TYPES)
def test_shadow_edge_prediction_on_a_heterograph_excludes_reverse_types(block_type):
    g, ei = make_hetero()
    sampler = G.as_edge_prediction_sampler(
        G.ShaDowKHopSampler([-1, -1]), exclude="reverse_types",
        reverse_etypes={"ab": "ba", "ba": "ab"}, negative_sampler=G.negative_sampler.Uniform(1),
    )  # fmt: skip
    loader = G.DataLoader(g, {"ab": torch.arange(0, 30, 4)}, sampler, batch_size=4, seed=0,
                          block_type=block_type)  # fmt: skip
    for input_nodes, pair, neg, subg in loader:
        seed_eids = set(pair.edges["ab"].data["_ID"].tolist())
        assert len(seed_eids) == 4 and neg.num_edges("ab") == 4
        for nt in ("a", "b"):  # the pairs' nodes lead their types
            k = pair.num_nodes(nt)
            assert torch.equal(input_nodes[nt][:k], pair.ndata["_ID"][nt])
        # the seed edges and their reverses (same ids: ba is ab flipped) are not in the subgraph
        assert not seed_eids & set(subg.edges["ab"].data["_ID"].tolist())
        assert not seed_eids & set(subg.edges["ba"].data["_ID"].tolist())
        kept_aa = subg.num_edges("aa")
        a_ids = set(subg.ndata["_ID"]["a"].tolist())
        want_aa = sum(1 for u, v in ei[("a", "aa", "a")].t().tolist() if u in a_ids and v in a_ids)
        assert kept_aa == want_aa  # other types untouched


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
        G.DataLoader(hetero, torch.arange(2), G.SAINTSampler("node", 2))
    with pytest.raises(ValueError, match="fanouts\\[0\\]\\['r'\\]"):
        G.ShaDowKHopSampler([{"r": -2}])
    with pytest.raises(ValueError, match="edge type"):  # a layer's dict must name every type
        G.DataLoader(hetero, {"a": torch.tensor([0])}, G.ShaDowKHopSampler([{"s": 2}]))


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


@pytest.mark.skipif(not HAS_DGL, reason="needs dgl")
def test_hetero_shadow_matches_dgls_own():
    import dgl

    gen = torch.Generator().manual_seed(0)
    data = {
        ("a", "ab", "b"): (torch.randint(0, 20, (60,), generator=gen),
                           torch.randint(0, 15, (60,), generator=gen)),
        ("a", "aa", "a"): (torch.randint(0, 20, (40,), generator=gen),
                           torch.randint(0, 20, (40,), generator=gen)),
        ("c", "ca", "a"): (torch.randint(0, 5, (10,), generator=gen),
                           torch.randint(0, 20, (10,), generator=gen)),
    }  # fmt: skip
    data[("b", "ba", "a")] = (data[("a", "ab", "b")][1], data[("a", "ab", "b")][0])
    g = dgl.heterograph(data, num_nodes_dict={"a": 20, "b": 15, "c": 5})
    g.nodes["a"].data["feat"] = torch.randn(20, 3)
    g.edges["ab"].data["w"] = torch.rand(60)
    real = dgl.dataloading.ShaDowKHopSampler([-1, -1], prefetch_node_feats={"a": ["feat"]})
    idx = {"a": torch.tensor([0, 3]), "b": torch.tensor([2])}
    theirs = next(iter(dgl.dataloading.DataLoader(g, idx, real, batch_size=4)))
    ours = next(iter(G.DataLoader(g, idx, real, batch_size=4, seed=0)))  # DGL's, read by us
    for a, b in zip(theirs[:2], ours[:2]):
        assert sorted(a) == sorted(b)
        assert all(sorted(a[k].tolist()) == sorted(b[k].tolist()) for k in a)
    assert torch.equal(theirs[1]["a"], ours[1]["a"])
    sub_t, sub_o = theirs[2], ours[2]
    assert type(sub_o) is type(sub_t) and sub_o.idtype == sub_t.idtype
    assert sub_o.ntypes == sub_t.ntypes and sub_o.canonical_etypes == sub_t.canonical_etypes
    for nt in g.ntypes:
        assert sorted(sub_o.nodes[nt].data.keys()) == sorted(sub_t.nodes[nt].data.keys())
        assert torch.equal(ours[0][nt], sub_o.nodes[nt].data["_ID"])
    assert torch.equal(sub_o.nodes["a"].data["feat"], g.nodes["a"].data["feat"][ours[0]["a"]])
    for et in g.canonical_etypes:
        assert sorted(sub_o.edges[et].data.keys()) == sorted(sub_t.edges[et].data.keys())
        got, want = sub_o.edges[et].data["_ID"], sub_t.edges[et].data["_ID"]
        assert sorted(got.tolist()) == sorted(want.tolist())
    # lazy parent columns, as DGL's subgraph: the edge weights of the sampled edges
    assert torch.equal(
        sub_o.edges["ab"].data["w"], g.edges["ab"].data["w"][sub_o.edges["ab"].data["_ID"]]
    )
    # DGL's own edge-prediction wrapper around it is read too (no fallback to DGL's loader)
    wrapped = dgl.dataloading.as_edge_prediction_sampler(
        real, exclude="reverse_types", reverse_etypes={"ab": "ba", "ba": "ab"},
        negative_sampler=dgl.dataloading.negative_sampler.Uniform(2),
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loader = G.DataLoader(g, {"ab": torch.arange(8)}, wrapped, batch_size=4, seed=0)
    assert isinstance(loader, G.DataLoader)
    got = next(iter(loader))
    want = next(iter(dgl.dataloading.DataLoader(g, {"ab": torch.arange(8)}, wrapped, batch_size=4)))
    assert len(got) == len(want) == 4
    assert [type(x) for x in got] == [type(x) for x in want]
    assert got[2].num_edges("ab") == want[2].num_edges("ab") == 8
    seed = set(got[1].edges["ab"].data["_ID"].tolist())
    assert not seed & set(got[3].edges["ba"].data["_ID"].tolist())
