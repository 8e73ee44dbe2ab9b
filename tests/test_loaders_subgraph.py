"""Whole-subgraph samplers (loaders/subgraph.py) and their PyG drop-ins (loaders/pyg_subgraph.py):
batches against brute-force induced subgraphs, GraphSAINT's coefficients against PyG's formulas
and for unbiasedness, determinism across thread counts, clear errors, PyG training steps."""

import numpy as np
import pytest
import torch

from gnnsys.graph import Graph
from gnnsys.loaders.base import SampleKey
from gnnsys.loaders.subgraph import (
    ClusterSampler,
    SaintSampler,
    ShaDowSampler,
    saint_norm,
)

pyg_data = pytest.importorskip("torch_geometric.data")
Data = pyg_data.Data


def make_data(n=60, e=400, seed=0, undirected=False):
    """A random simple graph (no duplicate edges) with node and edge attributes."""
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    if undirected:
        ei = torch.cat([ei, ei.flip(0)], 1)
    key = torch.unique(ei[0] * n + ei[1])
    ei = torch.stack([key // n, key % n])
    ei = ei[:, torch.randperm(ei.shape[1], generator=g)]
    m = ei.shape[1]
    return Data(
        x=torch.randn(n, 4, generator=g),
        y=torch.randint(0, 3, (n,), generator=g),
        edge_index=ei,
        edge_attr=torch.arange(m, dtype=torch.float32).view(-1, 1),
        train_mask=torch.rand(n, generator=g) < 0.5,
        name="toy",
    )


def induced(edge_index, nodes):
    """Brute force: {(local src, local dst): edge id} of the edges among ``nodes``."""
    pos = {int(v): i for i, v in enumerate(nodes.tolist())}
    out = {}
    for e, (s, d) in enumerate(edge_index.t().tolist()):
        if s in pos and d in pos:
            out[(pos[s], pos[d])] = e
    return out


def edge_map(ei):
    return [tuple(p) for p in ei.t().tolist()]


def khop_in(edge_index, seed, depth):
    """Brute force: the nodes within ``depth`` in-hops of ``seed``."""
    seen, frontier = {seed}, {seed}
    src, dst = edge_index.tolist()
    for _ in range(depth):
        nxt = {s for s, d in zip(src, dst) if d in frontier} - seen
        seen |= nxt
        frontier = nxt
    return seen


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def graph(data):
    return Graph.from_edge_index(data.edge_index, data.num_nodes)


# ---------------------------------------------------------------------- Cluster-GCN
def test_cluster_parts_cover_the_nodes_and_are_seeded(graph):
    a, b = ClusterSampler(graph, 6, seed=3), ClusterSampler(graph, 6, seed=3)
    assert torch.equal(a.part, b.part)
    assert sorted(a.part_nodes.tolist()) == list(range(graph.num_nodes))
    for p in range(6):  # each part's nodes ascending, and in that part
        nodes = a.part_nodes[a.part_ptr[p] : a.part_ptr[p + 1]]
        assert (np.diff(nodes) > 0).all() and (a.part.numpy()[nodes] == p).all()


def test_cluster_sampler_is_the_induced_subgraph(data, graph):
    s = ClusterSampler(graph, 6)
    sub = s.sample(torch.tensor([4, 1, 2]))
    want_nodes = np.concatenate(
        [s.part_nodes[s.part_ptr[p] : s.part_ptr[p + 1]] for p in (4, 1, 2)]
    )
    assert sub.nodes.tolist() == want_nodes.tolist()
    want = induced(data.edge_index, sub.nodes)
    got = dict(zip(edge_map(sub.edge_index()), sub.edge_ids.tolist()))
    assert got == want and sub.edge_ids.numel() == len(want)
    assert sub.metadata["part_sizes"].tolist() == [
        int(s.part_ptr[p + 1] - s.part_ptr[p]) for p in (4, 1, 2)
    ]


@pytest.mark.parametrize("relabel, path", [("dense", "rows"), ("hash", "rows"), ("dense", "sort")])
def test_cluster_sampler_row_order_is_the_lexsorted_induced_subgraph(monkeypatch, relabel, path):
    # edge_order="csr" finds the edges from the sources' out-edges, already in PyG's
    # sort_edge_index order: the same edges and ids as the default order sorted by (row, col),
    # repeated edges in CSC order, hubs past the insertion-sort length included.
    from gnnsys.loaders import subgraph as sg

    if relabel == "hash":
        monkeypatch.setattr(sg, "DENSE_MAP_MAX_NODES", 10)
    # big batches take the out-edge kernel, small ones sort the usual kernel's edges
    monkeypatch.setattr(sg, "ROW_ORDER_MIN_EDGES", 0 if path == "rows" else 1 << 62)
    n = 400
    ei = _hub_edges(n, 7)
    ei = torch.cat([ei, ei.flip(0)[:, -622:]], 1)  # the hubs as sources too (out-degree 63-300)
    g = Graph.from_edge_index(ei, n)
    by_col = ClusterSampler(g, 6, seed=1)
    by_row = ClusterSampler(g, 6, seed=1, edge_order="csr")
    by_csc = ClusterSampler(g, 6, seed=1, edge_order="csc")
    for parts in ([0], [3, 1], [5, 0, 2, 4], [1, 2, 3, 4, 5, 0]):
        a = by_col.sample(torch.tensor(parts))
        b = by_row.sample(torch.tensor(parts))
        order = np.lexsort((a.col.numpy(), a.row.numpy()))
        assert torch.equal(a.nodes, b.nodes)
        assert b.row.tolist() == a.row[order].tolist() and b.col.tolist() == a.col[order].tolist()
        assert b.edge_ids.tolist() == a.edge_ids[order].tolist()
        assert b.metadata["edge_order"] == "csr" and "edge_order" not in a.metadata
        c = by_csc.sample(torch.tensor(parts))  # (destination, source), ties in CSC order
        order = np.lexsort((a.row.numpy(), a.col.numpy()))
        assert c.row.tolist() == a.row[order].tolist() and c.col.tolist() == a.col[order].tolist()
        assert c.edge_ids.tolist() == a.edge_ids[order].tolist()
        assert c.metadata["edge_order"] == "csc"
    with pytest.raises(ValueError, match="edge_order"):
        ClusterSampler(g, 6, edge_order="coo")


def test_cluster_loader_batches(data):
    from gnnsys.loaders.pyg import ClusterData, ClusterLoader

    cd = ClusterData(data, 6, log=False)
    assert len(cd) == 6 and repr(cd) == "ClusterData(6)"
    part = cd.partition
    loader = ClusterLoader(cd, batch_size=2, shuffle=True, seed=5)
    assert len(loader) == 3
    total = 0
    for batch in loader:
        assert set(batch.keys()) == set(data.keys())  # PyG's contract: the data's attributes
        total += batch.num_nodes
    assert total == data.num_nodes
    batch = loader([3, 0])  # input positions = part ids
    nodes = torch.cat([part.node_perm[part.partptr[p] : part.partptr[p + 1]] for p in (3, 0)])
    assert torch.equal(batch.x, data.x[nodes]) and torch.equal(batch.y, data.y[nodes])
    assert torch.equal(batch.train_mask, data.train_mask[nodes]) and batch.name == "toy"
    want = induced(data.edge_index, nodes)
    got = edge_map(batch.edge_index)
    assert sorted(got) == sorted(want) and got == sorted(got)  # csr: sorted by (row, col)
    assert batch.edge_attr.view(-1).long().tolist() == [want[p] for p in got]


def test_cluster_data_parts_and_inter_cluster_edges(data, tmp_path):
    from gnnsys.loaders.pyg import ClusterData

    cd = ClusterData(data, 4, save_dir=str(tmp_path), log=False, sparse_format="csc")
    assert (tmp_path / "part_4" / "gnnsys_metis.pt").exists()
    again = ClusterData(data, 4, save_dir=str(tmp_path), log=False)
    assert torch.equal(again.partition.part, cd.partition.part)
    perm, ptr = cd.partition.node_perm, cd.partition.partptr
    one = cd[2]
    nodes = perm[ptr[2] : ptr[3]]
    assert torch.equal(one.x, data.x[nodes]) and one.num_nodes == nodes.numel()
    got = edge_map(one.edge_index)
    assert sorted(got) == sorted(induced(data.edge_index, nodes))
    assert got == sorted(got, key=lambda p: (p[1], p[0]))  # csc: sorted by (col, row)
    assert torch.equal(cd.data.x, data.x[perm]) and cd.data.edge_index is None
    inter = ClusterData(data, 4, log=False, keep_inter_cluster_edges=True)[2]
    rank = torch.empty_like(perm)
    rank[perm] = torch.arange(perm.numel())
    out_edges = torch.nonzero(cd.partition.part[data.edge_index[0]] == 2).flatten()
    want = rank[data.edge_index[:, out_edges]]
    want[0] -= int(ptr[2])
    assert sorted(edge_map(inter.edge_index)) == sorted(edge_map(want))
    assert sorted(inter.edge_attr.view(-1).long().tolist()) == out_edges.tolist()


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_cluster_partition_compressed_graph_and_edge_perm(data, fmt):
    # PyG's Partition: indptr / index of the part-major graph and edge_perm, each entry the
    # original edge at that position; ClusterData.data's edge attributes in that order
    from gnnsys.loaders.pyg import ClusterData

    cd = ClusterData(data, 3, log=False, sparse_format=fmt)
    part = cd.partition
    n, e = data.num_nodes, data.edge_index.shape[1]
    assert part.indptr.shape == (n + 1,) and part.index.shape == (e,)
    assert sorted(part.edge_perm.tolist()) == list(range(e))
    rank = part.rank()
    assert torch.equal(rank[part.node_perm], torch.arange(n))
    major = torch.repeat_interleave(torch.arange(n), part.indptr.diff())
    src, dst = (major, part.index) if fmt == "csr" else (part.index, major)
    assert torch.equal(rank[data.edge_index[0, part.edge_perm]], src)
    assert torch.equal(rank[data.edge_index[1, part.edge_perm]], dst)
    keys = (major * n + part.index).tolist()
    assert keys == sorted(keys)  # each row's entries ascending
    assert torch.equal(cd.data.edge_attr, data.edge_attr[part.edge_perm])
    assert torch.equal(cd.data.x, data.x[part.node_perm]) and cd.data.name == "toy"


def test_cluster_partition_matches_pygs_for_the_same_parts(data):
    # PyG's own _partition on the parts we computed: the same part boundaries and node sets,
    # the same fields, dtypes and shapes, and the same edges (PyG orders a part's nodes by an
    # unstable sort, ours ascending, so the tensors agree up to that order)
    pyg_cluster = pytest.importorskip("torch_geometric.loader.cluster")
    from gnnsys.loaders.pyg import ClusterData

    def edges(p, fmt):
        major = torch.repeat_interleave(torch.arange(p.node_perm.numel()), p.indptr.diff())
        src, dst = (major, p.index) if fmt == "csr" else (p.index, major)
        return sorted(zip(p.node_perm[src].tolist(), p.node_perm[dst].tolist(),
                          p.edge_perm.tolist()))  # fmt: skip

    for fmt in ("csr", "csc"):
        ours = ClusterData(data, 3, log=False, sparse_format=fmt).partition
        host = type("Host", (), {"num_parts": 3, "sparse_format": fmt})()
        theirs = pyg_cluster.ClusterData._partition(host, data.edge_index, ours.part)
        for name in ("indptr", "index", "partptr", "node_perm", "edge_perm"):
            a, b = getattr(ours, name), getattr(theirs, name)
            assert a.dtype == b.dtype and a.shape == b.shape, (fmt, name)
        assert torch.equal(ours.partptr, theirs.partptr) and ours.sparse_format == fmt
        for p in range(3):
            lo, hi = int(ours.partptr[p]), int(ours.partptr[p + 1])
            assert sorted(theirs.node_perm[lo:hi].tolist()) == ours.node_perm[lo:hi].tolist()
        assert edges(ours, fmt) == edges(theirs, fmt)


# ---------------------------------------------------------------------- ShaDow-KHop
def test_shadow_full_fanout_is_the_exact_khop_induced_subgraph(data):
    from gnnsys.loaders.pyg import ShaDowKHopSampler

    seeds = torch.tensor([5, 17, 5, 40])
    loader = ShaDowKHopSampler(data, depth=2, num_neighbors=-1, node_idx=seeds, batch_size=4)
    b = next(iter(loader))
    assert isinstance(b, pyg_data.Batch) and b.num_graphs == 4
    ptr = b.ptr.tolist()
    assert b.root_n_id.tolist() == ptr[:-1]
    assert torch.equal(b.y, data.y[seeds]) and b.x.shape[0] == ptr[-1]
    n_id = torch.cat([torch.tensor(sorted(khop_in(data.edge_index, int(s), 2))) for s in seeds])
    for i, s in enumerate(seeds.tolist()):
        x = b.x[ptr[i] : ptr[i + 1]]
        rows = [int(torch.nonzero((data.x == r).all(1))[0]) for r in x]
        assert rows[0] == s and set(rows) == khop_in(data.edge_index, s, 2)
        mask = b.batch[b.edge_index[1]] == i
        ei = b.edge_index[:, mask] - ptr[i]
        got = dict(zip(edge_map(ei), b.edge_attr[mask].view(-1).long().tolist()))
        assert got == induced(data.edge_index, torch.tensor(rows))
    assert n_id.numel() == b.x.shape[0]
    assert bool((b.batch[b.edge_index[0]] == b.batch[b.edge_index[1]]).all())


def test_shadow_sampled_subgraphs_are_induced(data, graph):
    s = ShaDowSampler(graph, [2, 2])
    sub = s.sample(torch.tensor([3, 9, 30]), SampleKey(seed=1))
    ptr = sub.metadata["ptr"].tolist()
    for i, seed in enumerate([3, 9, 30]):
        nodes = sub.nodes[ptr[i] : ptr[i + 1]]
        assert int(nodes[0]) == seed and set(nodes.tolist()) <= khop_in(data.edge_index, seed, 2)
        assert len(set(nodes.tolist())) == nodes.numel()
        mask = sub.batch[sub.col] == i
        got = dict(zip(edge_map(sub.edge_index()[:, mask] - ptr[i]), sub.edge_ids[mask].tolist()))
        assert got == induced(data.edge_index, nodes)
    union = ShaDowSampler(graph, [-1], disjoint=False).sample(torch.tensor([3, 9]))
    assert union.nodes[:2].tolist() == [3, 9]
    assert set(union.nodes.tolist()) == khop_in(data.edge_index, 3, 1) | khop_in(
        data.edge_index, 9, 1
    )
    assert dict(zip(edge_map(union.edge_index()), union.edge_ids.tolist())) == induced(
        data.edge_index, union.nodes
    )


def test_shadow_depth_zero_gives_the_roots(data):
    from gnnsys.loaders.pyg import ShaDowKHopSampler

    b = next(iter(ShaDowKHopSampler(data, 0, 5, batch_size=3)))
    assert b.ptr.tolist() == [0, 1, 2, 3] and torch.equal(b.x, data.x[:3])


# ---------------------------------------------------------------------- ShaDow on typed graphs
HETERO_NODES = {"a": 30, "b": 20, "c": 6}


def make_hetero(seed=0):
    """A random heterograph: a->b, b->a, a->a and c->a edges (duplicates kept)."""
    gen = torch.Generator().manual_seed(seed)
    sizes = {("a", "ab", "b"): 90, ("b", "ba", "a"): 70, ("a", "aa", "a"): 60, ("c", "ca", "a"): 12}
    ei = {}
    for et, m in sizes.items():
        ns, nd = HETERO_NODES[et[0]], HETERO_NODES[et[2]]
        ei[et] = torch.stack([torch.randint(0, ns, (m,), generator=gen),
                              torch.randint(0, nd, (m,), generator=gen)])  # fmt: skip
    return Graph.from_hetero(ei, HETERO_NODES), ei


def typed_khop_in(ei, seeds, depth, fanout_zero=()):
    """Brute force: {ntype: node ids} within ``depth`` in-hops of ``seeds`` ({ntype: ids}),
    never through the edge types in ``fanout_zero``."""
    seen = {t: set(v) for t, v in seeds.items()}
    frontier = {t: set(v) for t, v in seeds.items()}
    for _ in range(depth):
        nxt = {}
        for et, e in ei.items():
            if et in fanout_zero:
                continue
            for s, d in e.t().tolist():
                if d in frontier.get(et[2], ()):
                    nxt.setdefault(et[0], set()).add(s)
        frontier = {t: v - seen.get(t, set()) for t, v in nxt.items()}
        for t, v in frontier.items():
            seen.setdefault(t, set()).update(v)
    return seen


def typed_parts(g, sub):
    """{ntype: global-minus-offset ids} and {etype: sorted (src id, dst id, eid)} of a typed
    whole subgraph, checking that row / col are ids within their types' blocks."""
    off = g.type_offsets().tolist()
    nodes = {}
    for t, nt in enumerate(g.node_types):
        nodes[nt] = (sub.type_nodes(t) - off[t]).tolist()
    edges = {}
    for e, et in enumerate(g.edge_types):
        lo, hi = sub.type_edge_range(e)
        src = [nodes[et[0]][i] for i in sub.row[lo:hi].tolist()]
        dst = [nodes[et[2]][i] for i in sub.col[lo:hi].tolist()]
        edges[et] = sorted(zip(src, dst, sub.edge_ids[lo:hi].tolist()))
    return nodes, edges


def typed_induced(g, ei, nodes):
    """Brute force: {etype: sorted (src, dst, edge id)} of the graph's edges among ``nodes``.
    Edge ids are the typed Graph's ``edge_ids`` (CSC position -> id within the type)."""
    out = {}
    for et, e in ei.items():
        keep_s, keep_d = set(nodes.get(et[0], ())), set(nodes.get(et[2], ()))
        out[et] = sorted((s, d, i) for i, (s, d) in enumerate(e.t().tolist())
                         if s in keep_s and d in keep_d)  # fmt: skip
    return out


def test_shadow_on_a_typed_graph_is_the_typed_khop_induced_subgraph():
    g, ei = make_hetero()
    assert g.edge_ids is not None  # ids within each edge type, as from_hetero numbers them
    off = g.type_offsets().tolist()
    seeds = {"a": [4, 11], "b": [7]}
    flat = torch.tensor([4 + off[0], 7 + off[1], 11 + off[0]])
    sub = ShaDowSampler(g, [-1, -1], disjoint=False).sample(flat, SampleKey(seed=0))
    nodes, edges = typed_parts(g, sub)
    want = typed_khop_in(ei, seeds, 2)
    for nt in g.node_types:
        assert sorted(nodes[nt]) == sorted(want.get(nt, ())) and len(set(nodes[nt])) == len(
            nodes[nt]
        )
    assert nodes["a"][:2] == [4, 11] and nodes["b"][:1] == [7]  # the seeds first in their type
    assert sub.type_num_sampled_nodes[0].tolist() == [2, 1, 0]
    assert sub.type_num_sampled_nodes.sum(0).tolist() == [len(nodes[nt]) for nt in g.node_types]
    assert edges == typed_induced(g, ei, nodes)
    assert sub.num_sampled_edges == [sum(len(v) for v in edges.values())]


def test_typed_shadow_fanouts_per_edge_type_and_a_sampling_graph():
    g, ei = make_hetero(1)
    off = g.type_offsets().tolist()
    fan = {("a", "ab", "b"): [2, 1], ("b", "ba", "a"): [2, 2], ("a", "aa", "a"): [1, 1],
           ("c", "ca", "a"): [0, 0]}  # fmt: skip
    s = ShaDowSampler(g, fan, disjoint=False)
    assert s.fanouts == [[2, 2, 1, 0], [1, 2, 1, 0]]
    flat = torch.tensor([0 + off[0], 5 + off[0], 3 + off[1]])
    for b in range(5):
        sub = s.sample(flat, SampleKey(seed=2, batch=b))
        nodes, edges = typed_parts(g, sub)
        reach = typed_khop_in(ei, {"a": [0, 5], "b": [3]}, 2, fanout_zero={("c", "ca", "a")})
        assert nodes["c"] == []  # reached only through a fanout-0 edge type
        for nt in g.node_types:
            assert set(nodes[nt]) <= reach.get(nt, set())
        assert edges == typed_induced(g, ei, nodes)  # every edge among them, sampled or not
    # neighbourhoods drawn from another graph (DGL's prob mask: no a->a edges), induced edges
    # still all of the graph's
    keep = g.type_per_edge != g.edge_type_id(("a", "aa", "a"))
    pos = torch.nonzero(keep).flatten()
    cum = torch.zeros(g.num_edges + 1, dtype=torch.int64)
    torch.cumsum(keep.long(), 0, out=cum[1:])
    masked = Graph(cum[g.indptr], g.indices[pos], node_type_offset=g.node_type_offset,
                   type_per_edge=g.type_per_edge[pos], node_types=g.node_types,
                   edge_types=g.edge_types)  # fmt: skip
    s = ShaDowSampler(g, [-1], disjoint=False, sampling_graph=masked)
    sub = s.sample(torch.tensor([2 + off[0]]), SampleKey(seed=0))
    nodes, edges = typed_parts(g, sub)
    assert set(nodes["a"]) == typed_khop_in(ei, {"a": [2]}, 1, {("a", "aa", "a")})["a"]
    assert edges == typed_induced(g, ei, nodes)


def test_typed_shadow_is_deterministic_across_threads_and_refuses_disjoint(across_threads):
    g, _ = make_hetero(2)
    s = ShaDowSampler(g, [3, 2], disjoint=False)
    seeds = torch.tensor([1, 3, 35])

    def run():
        sub = s.sample(seeds, SampleKey(seed=4, epoch=1, batch=2))
        return [sub.nodes, sub.edge_index(), sub.edge_ids, sub.edge_ptr]

    first, *rest = across_threads(run)
    for other in rest:
        assert all(torch.equal(x, y) for x, y in zip(first, other))
    with pytest.raises(
        NotImplementedError, match=r"ShaDowSampler\(disjoint=True\) samples homogeneous"
    ):
        ShaDowSampler(g, [2])
    with pytest.raises(ValueError, match="fanouts is empty"):
        ShaDowSampler(g, [], disjoint=False)


# ---------------------------------------------------------------------- GraphSAINT
def saint_counts(sampler, num_steps, coverage, seed):
    """Brute force of PyG's pre-sampling loop with the keys saint_norm documents."""
    n = sampler.graph.num_nodes
    nc = torch.zeros(n)
    ec = torch.zeros(sampler.graph.num_edges)
    total = samples = passes = 0
    while total < n * coverage:
        for step in range(num_steps):
            sub = sampler.sample(None, SampleKey(seed, -1 - passes, step))
            nc[sub.nodes] += 1
            ec[sub.edge_ids] += 1
            total += sub.nodes.numel()
        samples += num_steps
        passes += 1
    return nc, ec, samples


@pytest.mark.parametrize("mode", ["node", "edge", "walk"])
def test_saint_norm_is_pygs_formula(data, graph, mode):
    s = SaintSampler(graph, mode, 15, walk_length=2)
    node_norm, edge_norm = saint_norm(s, 4, 10, seed=2)
    nc, ec, samples = saint_counts(s, 4, 10, 2)
    src = data.edge_index[0]
    want_e = (nc[src] / ec).clamp(0, 1e4)
    want_e[torch.isnan(want_e)] = 0.1
    nc[nc == 0] = 0.1
    assert torch.allclose(node_norm, samples / nc / data.num_nodes)
    assert torch.allclose(edge_norm, want_e)
    assert node_norm.dtype == edge_norm.dtype == torch.float32


@pytest.mark.parametrize("mode,budget", [("node", 12), ("edge", 8), ("walk", 4)])
def test_saint_coefficients_are_unbiased(mode, budget):
    """PyG's edge_norm = C_src / C_edge makes the aggregation at the edge's source (row 0)
    unbiased given that node is sampled (unnormalised, it is far off); node_norm makes the
    summed loss an estimate of the mean loss."""
    data = make_data(n=24, e=60, seed=4, undirected=True)
    g = Graph.from_edge_index(data.edge_index, 24)
    s = SaintSampler(g, mode, budget, walk_length=2)
    node_norm, edge_norm = saint_norm(s, 10, 1000, seed=0)
    x = torch.randn(24, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    src, dst = data.edge_index
    full = torch.zeros(24, dtype=torch.float64).index_add_(0, src, x[dst])
    sums = torch.zeros(2, 24, dtype=torch.float64)
    hits = torch.zeros(24, dtype=torch.float64)
    loss = []
    for b in range(2500):
        sub = s.sample(None, SampleKey(7, 0, b))
        e = sub.edge_ids
        for k, w in enumerate((edge_norm[e].double(), torch.ones(e.numel()).double())):
            agg = torch.zeros(24, dtype=torch.float64).index_add_(0, src[e], w * x[dst[e]])
            sums[k, sub.nodes] += agg[sub.nodes]
        hits[sub.nodes] += 1
        loss.append(float((node_norm[sub.nodes].double() * x[sub.nodes]).sum()))
    assert int(hits.min()) > 250
    err = [float((sums[k] / hits - full).norm() / full.norm()) for k in range(2)]
    assert err[0] < 0.1 and err[1] > 0.3, err
    assert abs(np.mean(loss) - float(x.mean())) < 0.05


def test_saint_loaders_batches(data):
    from gnnsys.loaders.pyg import (
        GraphSAINTEdgeSampler,
        GraphSAINTNodeSampler,
        GraphSAINTRandomWalkSampler,
    )

    loaders = [
        GraphSAINTNodeSampler(data, 30, num_steps=3, sample_coverage=5, log=False, seed=1),
        GraphSAINTEdgeSampler(data, 20, num_steps=3, log=False, seed=1),
        GraphSAINTRandomWalkSampler(data, 10, 2, num_steps=3, sample_coverage=5, log=False, seed=1),
    ]
    for loader in loaders:
        assert len(loader) == 3
        for i, batch in enumerate(loader):
            sub = loader.saint.sample(None, SampleKey(loader.loader.seed, 0, i))
            nodes = sub.nodes
            assert (nodes[1:] > nodes[:-1]).all()  # sorted unique, as PyG's unique()
            assert batch.num_nodes == nodes.numel() and torch.equal(batch.x, data.x[nodes])
            assert torch.equal(batch.y, data.y[nodes]) and batch.name == "toy"
            want = induced(data.edge_index, nodes)
            got = edge_map(batch.edge_index)
            assert sorted(got) == sorted(want)
            assert batch.edge_attr.view(-1).long().tolist() == [want[p] for p in got]
            if loader.sample_coverage:
                assert torch.equal(batch.node_norm, loader.node_norm[nodes])
                assert torch.equal(
                    batch.edge_norm, loader.edge_norm[batch.edge_attr.view(-1).long()]
                )
            else:
                assert "node_norm" not in batch
    rw = loaders[2]
    assert rw.walk_length == 2 and rw._filename == "graphsaintrandomwalksampler_2_5.pt"


def test_saint_save_dir_caches_the_norms(data, tmp_path):
    from gnnsys.loaders.pyg import GraphSAINTNodeSampler

    a = GraphSAINTNodeSampler(data, 20, 2, 3, save_dir=str(tmp_path), log=False, seed=0)
    assert (tmp_path / "graphsaintnodesampler_3.pt").exists()
    b = GraphSAINTNodeSampler(data, 20, 2, 3, save_dir=str(tmp_path), log=False, seed=9)
    assert torch.equal(a.node_norm, b.node_norm) and torch.equal(a.edge_norm, b.edge_norm)


def test_out_adjacency_is_each_sources_edges_in_csc_order_and_cached(graph):
    from gnnsys.loaders.subgraph import out_adjacency

    indptr, dst, pos = out_adjacency(graph)
    ei = graph.to_edge_index().numpy()
    order = np.argsort(ei[0], kind="stable")  # the reference: sources, then CSC order
    assert dst.tolist() == ei[1][order].tolist()
    assert indptr.tolist() == [0, *np.cumsum(np.bincount(ei[0], minlength=graph.num_nodes))]
    again = out_adjacency(graph)
    assert again[0] is indptr and again[1] is dst  # one copy per graph
    assert graph.indices.numpy()[pos].tolist() == ei[0][order].tolist()  # CSC positions
    other = Graph.from_edge_index(torch.tensor([[1, 0], [0, 1]]), 2)
    assert out_adjacency(other)[1].tolist() == [1, 0]  # another graph, its own


def test_saint_walks_follow_out_edges(graph, data):
    from gnnsys.loaders.subgraph import random_walks

    s = SaintSampler(graph, "walk", 5, walk_length=4)
    roots = np.arange(10, dtype=np.int64)
    walks = random_walks(s._out_indptr, s._out_indices, roots, 4, 123)
    edges = set(edge_map(data.edge_index))
    out_deg = torch.bincount(data.edge_index[0], minlength=data.num_nodes)
    for w in walks.tolist():
        for a, b in zip(w[:-1], w[1:]):
            assert (a, b) in edges or (a == b and out_deg[a] == 0)


# ---------------------------------------------------------------------- determinism, errors
def test_deterministic_across_threads(graph, across_threads):
    samplers = [
        (ClusterSampler(graph, 5), torch.tensor([2, 0])),
        (ShaDowSampler(graph, [3, 2]), torch.tensor([1, 8, 1])),
        (ShaDowSampler(graph, [3, 2], disjoint=False), torch.tensor([1, 8])),
        (SaintSampler(graph, "node", 30), None),
        (SaintSampler(graph, "edge", 30), None),
        (SaintSampler(graph, "walk", 10, walk_length=3), None),
    ]

    def run():
        out = []
        for s, seeds in samplers:
            sub = s.sample(seeds, SampleKey(seed=4, epoch=1, batch=2))
            out.append((sub.nodes, sub.edge_index(), sub.edge_ids))
        return out

    first, *rest = across_threads(run)
    for other in rest:
        for a, b in zip(first, other):
            assert all(torch.equal(x, y) for x, y in zip(a, b))
    again = SaintSampler(graph, "walk", 10, walk_length=3).sample(None, SampleKey(4, 1, 3))
    assert not torch.equal(again.nodes, first[-1][0])  # another key, another subgraph


def test_bad_inputs_raise_clear_errors(data, graph):
    from gnnsys.loaders.pyg import ClusterData, GraphSAINTNodeSampler, ShaDowKHopSampler

    with pytest.raises(ValueError, match="num_parts must be >= 1"):
        ClusterSampler(graph, 0)
    with pytest.raises(ValueError, match="num_parts=61 exceeds"):
        ClusterSampler(graph, 61)
    with pytest.raises(TypeError, match="num_parts must be an int"):
        ClusterSampler(graph, 2.0)
    with pytest.raises(ValueError, match="out of range"):
        ClusterSampler(graph, 3).sample(torch.tensor([3]))
    with pytest.raises(ValueError, match="distinct"):
        ClusterSampler(graph, 3).sample(torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="budget must be >= 1"):
        SaintSampler(graph, "node", 0)
    with pytest.raises(ValueError, match="walk_length must be >= 1"):
        SaintSampler(graph, "walk", 3, walk_length=0)
    with pytest.raises(ValueError, match="mode"):
        SaintSampler(graph, "nodes", 3)
    with pytest.raises(ValueError, match="depth must be >= 0"):
        ShaDowKHopSampler(data, -1, 3)
    with pytest.raises(ValueError, match="num_neighbors"):
        ShaDowKHopSampler(data, 2, -2)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        GraphSAINTNodeSampler(data, 0)
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        GraphSAINTNodeSampler(data, 5, num_steps=0)
    with pytest.raises(ValueError, match="sparse_format"):
        ClusterData(data, 2, sparse_format="coo", log=False)
    with pytest.raises(ValueError, match="already has 'node_norm'"):
        GraphSAINTNodeSampler(Data(edge_index=data.edge_index, node_norm=torch.ones(60)), 5)
    hetero = Graph.from_hetero({("a", "r", "b"): torch.tensor([[0], [0]])}, {"a": 1, "b": 1})
    with pytest.raises(NotImplementedError, match="homogeneous"):
        ClusterSampler(hetero, 1)
    with pytest.raises(NotImplementedError, match="HeteroData"):
        ClusterData(pyg_data.HeteroData(), 2, log=False)


# ---------------------------------------------------------------------- PyG training steps
def test_pyg_models_train_on_each_loader():
    from torch_geometric.nn import GCNConv, SAGEConv, global_mean_pool

    import gnnsys.datasets
    from gnnsys.loaders.pyg import (
        ClusterData,
        ClusterLoader,
        GraphSAINTRandomWalkSampler,
        ShaDowKHopSampler,
    )

    data = gnnsys.datasets.synthetic("tiny").to_pyg()
    torch.manual_seed(0)
    k = int(data.y.max()) + 1
    sage = torch.nn.ModuleList([SAGEConv(data.num_features, 16), SAGEConv(16, k)])
    gcn = GCNConv(data.num_features, k, normalize=False)
    head = torch.nn.Linear(2 * k, k)
    params = list(sage.parameters()) + list(gcn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=0.01)

    def step(loss):
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)

    def sage_out(b):
        return sage[1](sage[0](b.x, b.edge_index).relu(), b.edge_index)

    for b in ClusterLoader(ClusterData(data, 8, log=False), batch_size=2, shuffle=True):
        step(torch.nn.functional.cross_entropy(sage_out(b)[b.train_mask], b.y[b.train_mask]))
    saint = GraphSAINTRandomWalkSampler(data, 100, 2, num_steps=3, sample_coverage=3, log=False)
    for b in saint:
        out = gcn(b.x, b.edge_index, b.edge_norm)
        loss = torch.nn.functional.cross_entropy(out, b.y, reduction="none")
        step((loss * b.node_norm)[b.train_mask].sum())
    shadow = ShaDowKHopSampler(data, 2, 5, node_idx=data.train_mask, batch_size=64)
    for i, b in enumerate(shadow):
        h = sage_out(b)
        out = head(torch.cat([h[b.root_n_id], global_mean_pool(h, b.batch)], -1))
        step(torch.nn.functional.cross_entropy(out, b.y))
        if i == 2:
            break


def test_induced_subgraph_edges_checks_its_public_input():
    from gnnsys.loaders import InducedSubgraph

    g = Graph.from_edge_index(torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]]), 4)
    ind = InducedSubgraph(g)
    ei, eid = ind.edges(torch.tensor([2, 1]))  # a tensor works as an array does
    assert sorted(zip(*ei.tolist())) == [(0, 1), (1, 0)]  # 2 -> 1 and 1 -> 2, as positions
    ei2, eid2 = ind.edges(np.array([2, 1]))
    assert np.array_equal(ei, ei2) and np.array_equal(eid, eid2)
    # these came back as an empty subgraph, or a numba/numpy error
    for bad, msg in ((np.array([-1, 0]), "negative"), (np.array([0, 0, 1]), "distinct"),
                     (np.array([4]), "out of range"), (np.array([0.5]), "integer")):  # fmt: skip
        with pytest.raises(ValueError, match=msg):
            ind.edges(bad)


def _hub_edges(n, seed):
    """Random edges plus hubs whose in-degrees straddle the kernel's 64-position words
    (63, 64, 65, 130, 300), with repeated edges."""
    g = torch.Generator().manual_seed(seed)
    parts = [torch.randint(0, n, (2, 4 * n), generator=g)]
    for hub, deg in zip(range(5), (63, 64, 65, 130, 300)):
        src = torch.randint(0, n, (deg,), generator=g)
        parts.append(torch.stack([src, torch.full((deg,), hub)]))
    return torch.cat(parts, 1)


@pytest.mark.parametrize("relabel", ["dense", "hash"])
def test_induced_edges_on_hubs_are_the_brute_force_ones_in_csc_order(monkeypatch, relabel):
    # Edges kept by the first scan are revisited from a per-destination bitmap of CSC
    # positions: every kept edge, in CSC order within each destination, across word ends.
    from gnnsys.loaders import InducedSubgraph
    from gnnsys.loaders import subgraph as sg

    if relabel == "hash":
        monkeypatch.setattr(sg, "DENSE_MAP_MAX_NODES", 10)
    n = 400
    ei = _hub_edges(n, 0)
    g = Graph.from_edge_index(ei, n)
    ind = InducedSubgraph(g)
    gen = torch.Generator().manual_seed(1)
    for size in (1, 37, 150, n):
        nodes = torch.cat([torch.arange(5), 5 + torch.randperm(n - 5, generator=gen)])[:size]
        nodes = nodes[torch.randperm(size, generator=gen)]
        got, eid = ind.edges(nodes)
        pos = torch.full((n,), -1)
        pos[nodes] = torch.arange(size)
        keep = (pos[ei[0]] >= 0) & (pos[ei[1]] >= 0)
        want = torch.nonzero(keep).flatten()
        # destination position first, then the CSC order (edge id within a destination)
        order = torch.from_numpy(np.lexsort((want.numpy(), pos[ei[1, want]].numpy())))
        want = want[order]
        assert eid.tolist() == want.tolist(), size
        assert got[0].tolist() == pos[ei[0, want]].tolist()
        assert got[1].tolist() == pos[ei[1, want]].tolist()


@pytest.mark.parametrize("kernel", ["parallel", "serial"])
def test_disjoint_induced_edges_on_hubs_are_each_trees_brute_force_ones(kernel):
    # PyG's ShaDow: one induced subgraph per tree; trees share nodes, one tree holds 200
    # nodes (a wider membership bitmap), hubs' in-lists cross 64-position words.
    from gnnsys.loaders import subgraph as sg

    fn = sg.disjoint_induced_edges if kernel == "parallel" else sg.disjoint_induced_edges_serial
    n = 400
    ei = _hub_edges(n, 5)
    g = Graph.from_edge_index(ei, n)
    a = sg.prepared_adjacency(g)
    gen = torch.Generator().manual_seed(6)
    sizes = (1, 31, 200, 7, 31)
    trees = [
        torch.cat([torch.arange(5), 5 + torch.randperm(n - 5, generator=gen)])[:k] for k in sizes
    ]
    trees = [t[torch.randperm(t.numel(), generator=gen)] for t in trees]
    nodes = torch.cat(trees).numpy()
    tree = torch.cat([torch.full((t.numel(),), i) for i, t in enumerate(trees)]).numpy()
    got, eid = fn(a.indptr, a.adj, a.edge_ids, a.packed, nodes, tree, n)
    want_src, want_dst, want_eid = [], [], []
    start = 0
    for t in trees:
        pos = torch.full((n,), -1)
        pos[t] = torch.arange(t.numel()) + start
        keep = torch.nonzero((pos[ei[0]] >= 0) & (pos[ei[1]] >= 0)).flatten()
        keep = keep[torch.from_numpy(np.lexsort((keep.numpy(), pos[ei[1, keep]].numpy())))]
        want_src += pos[ei[0, keep]].tolist()
        want_dst += pos[ei[1, keep]].tolist()
        want_eid += keep.tolist()
        start += t.numel()
    assert len(want_eid) > 300  # the hubs' trees keep hundreds of edges
    assert eid.tolist() == want_eid
    assert got[0].tolist() == want_src and got[1].tolist() == want_dst


def test_typed_induced_edges_on_hubs_are_the_brute_force_ones():
    from gnnsys.loaders import InducedSubgraph

    na, nb = 300, 120
    e_aa, e_ba = _hub_edges(na, 2), _hub_edges(nb, 3)
    e_ba[1] = e_ba[1] % na  # b -> a: hubs 0..4 of type a again
    edges = {("a", "to", "a"): e_aa, ("b", "to", "a"): e_ba}
    g = Graph.from_hetero(edges, {"a": na, "b": nb})
    ind = InducedSubgraph(g)
    gen = torch.Generator().manual_seed(4)
    a_ids = torch.cat([torch.arange(5), 5 + torch.randperm(na - 5, generator=gen)[:140]])
    b_ids = torch.randperm(nb, generator=gen)[:60]
    nodes = torch.cat([a_ids, b_ids + g.type_offsets()[1]]).numpy()
    ei, eid, ptr = ind.typed_edges_checked(nodes, np.array([a_ids.numel(), b_ids.numel()]))
    for k, (et, src_ids) in enumerate(((("a", "to", "a"), a_ids), (("b", "to", "a"), b_ids))):
        e = edges[et]
        want = torch.isin(e[0], src_ids) & torch.isin(e[1], a_ids)
        got = torch.from_numpy(eid[ptr[k] : ptr[k + 1]])
        assert sorted(got.tolist()) == torch.nonzero(want).flatten().tolist(), et
        assert torch.equal(src_ids[torch.from_numpy(ei[0, ptr[k] : ptr[k + 1]])], e[0, got])
        assert torch.equal(a_ids[torch.from_numpy(ei[1, ptr[k] : ptr[k + 1]])], e[1, got])


def test_shadow_sampler_argument_types():
    from gnnsys.loaders.subgraph import ShaDowSampler

    g = Graph.from_edge_index(torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]]), 4)
    with pytest.raises(TypeError, match="fanouts must be a list of ints"):  # was len() of int
        ShaDowSampler(g, 3, disjoint=False)
    with pytest.raises(TypeError, match="sampling_graph must be a gnnsys Graph"):
        ShaDowSampler(g, [3], sampling_graph="x")


def test_cluster_data_cache_is_ours_alone(data, tmp_path):
    # PyG's ClusterData caches metis.pt (a pickled object) where its examples keep datasets:
    # ours has its own name, and a file that is not ours is a clear error, not an unpickling one
    from gnnsys.loaders.pyg import ClusterData

    (tmp_path / "part_4").mkdir()
    (tmp_path / "part_4" / "metis.pt").write_bytes(b"not ours")
    cd = ClusterData(data, 4, save_dir=str(tmp_path), log=False)
    assert (tmp_path / "part_4" / "metis.pt").read_bytes() == b"not ours"
    with pytest.raises(ValueError, match="metis.pt is not a gnnsys ClusterData cache"):
        ClusterData(data, 4, save_dir=str(tmp_path), filename="metis.pt", log=False)
    torch.save({"part": torch.zeros(3, dtype=torch.long)}, tmp_path / "part_4" / "other.pt")
    with pytest.raises(ValueError, match="holds parts for another graph"):
        ClusterData(data, 4, save_dir=str(tmp_path), filename="other.pt", log=False)
    again = ClusterData(data, 4, save_dir=str(tmp_path), log=False)
    assert torch.equal(again.partition.part, cd.partition.part)
    assert sorted(p.name for p in (tmp_path / "part_4").iterdir()) == [
        "gnnsys_metis.pt", "metis.pt", "other.pt"
    ]  # fmt: skip


def _triples(gid, adj_t=None, edge_index=None, value=None):
    """The batch's edges as a multiset of (global dst, global src, value), from its ``adj_t``
    or from ``edge_index`` and the edge attribute ``value``."""
    from collections import Counter

    if adj_t is not None:
        dst, src, value = adj_t.coo()
    else:
        src, dst = edge_index
    vals = value.view(value.shape[0], -1).tolist()
    return Counter((int(gid[d]), int(gid[s]), tuple(v)) for d, s, v in zip(dst, src, vals))


def test_adj_t_input_gives_adj_t_batches_with_the_entries_values():
    # A Data with adj_t (T.ToSparseTensor) gives batches with adj_t, its values the sampled
    # entries' values, as PyG's ShaDowKHopSampler does (PyG's ClusterData and GraphSAINT
    # samplers refuse adj_t; ours follow the same rule); the same edges as from edge_index.
    torch_sparse = pytest.importorskip("torch_sparse")
    import torch_geometric.transforms as T

    from gnnsys.loaders.pyg import (
        ClusterData,
        ClusterLoader,
        GraphSAINTNodeSampler,
        ShaDowKHopSampler,
    )

    plain = make_data()
    plain.gid = torch.arange(plain.num_nodes)
    plain.edge_attr = torch.randn(plain.num_edges, 2)
    sparse = T.ToSparseTensor(attr="edge_attr")(plain.clone())
    assert "edge_index" not in sparse and sparse.adj_t.storage.value() is not None

    def check(a, b, in_order=True):
        # (ShaDow lists a subgraph's nodes in discovery order, which follows the CSC's edge
        # order, and adj_t's entries are sorted: the same nodes per subgraph, not in order)
        assert isinstance(a.adj_t, torch_sparse.SparseTensor) and "edge_index" not in a
        n = a.gid.numel()
        assert a.adj_t.sparse_sizes() == (n, n)
        if in_order:
            assert torch.equal(a.gid, b.gid)
        ga = a.gid if in_order else a.batch * plain.num_nodes + a.gid
        gb = b.gid if in_order else b.batch * plain.num_nodes + b.gid
        assert sorted(ga.tolist()) == sorted(gb.tolist())
        assert _triples(ga, adj_t=a.adj_t) == _triples(gb, edge_index=b.edge_index,
                                                       value=b.edge_attr)  # fmt: skip

    for ka, kb in zip(ClusterData(sparse, 4, log=False), ClusterData(plain, 4, log=False)):
        check(ka, kb)
    la = ClusterLoader(ClusterData(sparse, 4, log=False), batch_size=2, seed=3)
    lb = ClusterLoader(ClusterData(plain, 4, log=False), batch_size=2, seed=3)
    for a, b in zip(la, lb):
        check(a, b)
    ca = ClusterData(sparse, 4, log=False, keep_inter_cluster_edges=True)
    cb = ClusterData(plain, 4, log=False, keep_inter_cluster_edges=True)
    for i in range(4):  # the far end of an edge leaving the part: its part-major position
        a, b = ca[i], cb[i]
        n_part = int(ca.partition.partptr[i + 1] - ca.partition.partptr[i])
        assert a.adj_t.sparse_sizes() == (plain.num_nodes, n_part)
        ids = torch.arange(plain.num_nodes)
        assert _triples(ids, adj_t=a.adj_t) == _triples(ids, edge_index=b.edge_index,
                                                        value=b.edge_attr)  # fmt: skip
    assert "adj_t" not in ca.data and ca.data.edge_index is None
    sa = GraphSAINTNodeSampler(sparse, batch_size=10, num_steps=2, sample_coverage=2, log=False,
                               seed=5)  # fmt: skip
    sb = GraphSAINTNodeSampler(plain, batch_size=10, num_steps=2, sample_coverage=2, log=False,
                               seed=5)  # fmt: skip
    for a, b in zip(sa, sb):
        check(a, b)
        assert torch.equal(a.node_norm, b.node_norm) and a.edge_norm.shape == b.edge_norm.shape
    ha = ShaDowKHopSampler(sparse, depth=2, num_neighbors=-1, node_idx=torch.arange(8),
                           batch_size=4)  # fmt: skip
    hb = ShaDowKHopSampler(plain, depth=2, num_neighbors=-1, node_idx=torch.arange(8),
                           batch_size=4)  # fmt: skip
    assert ha.is_sparse_tensor and not hb.is_sparse_tensor  # PyG's attribute
    for a, b in zip(ha, hb):
        check(a, b, in_order=False)
        assert torch.equal(a.gid[a.root_n_id], b.gid[b.root_n_id])
        assert torch.equal(a.ptr, b.ptr) and torch.equal(a.y, b.y)
    # a model written for adj_t runs on the batch
    from torch_geometric.nn import SAGEConv

    b = next(iter(ShaDowKHopSampler(T.ToSparseTensor()(plain.clone()), depth=2, num_neighbors=3,
                                    batch_size=4)))  # fmt: skip
    assert SAGEConv(4, 3)(b.x, b.adj_t).shape == (b.x.shape[0], 3)


def test_cluster_data_recursive_bisection(data, tmp_path):
    # PyG's recursive=True: METIS recursive bisection (k-way by default, as PyG's), cached in
    # PyG's folder for it
    pytest.importorskip("pymetis")
    from gnnsys.loaders.pyg import ClusterData

    kway = ClusterData(data, 4, log=False)
    rec = ClusterData(data, 4, recursive=True, log=False, save_dir=str(tmp_path))
    assert rec.recursive and not kway.recursive
    assert not torch.equal(rec.partition.part, kway.partition.part)
    assert (tmp_path / "part_4_recursive" / "gnnsys_metis.pt").exists()
    again = ClusterData(data, 4, recursive=True, log=False, save_dir=str(tmp_path))
    assert torch.equal(again.partition.part, rec.partition.part)
    nodes = torch.cat([rec[i].x for i in range(4)])
    assert nodes.shape == data.x.shape  # every node in one part
