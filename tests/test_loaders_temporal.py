"""TemporalNeighborSampler and the PyG front's time_attr: no sampled edge is newer than its
seed's time (node- and edge-level, homogeneous and typed), the "last" strategy takes the most
recent edges, per-destination counts, uniformity, determinism, the Loader's seed_time, errors."""

import numpy as np
import pytest
import torch
from scipy import stats
from torch_geometric.data import Data, HeteroData

from gnnsys.graph import Graph
from gnnsys.loaders import Loader, SampleKey
from gnnsys.loaders.neighbor import TemporalNeighborSampler
from gnnsys.loaders.pyg import LinkNeighborLoader, NeighborLoader


def random_graph(n=200, e=3000, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.stack(
        [torch.randint(0, n, (e,), generator=g), torch.randint(0, n, (e,), generator=g)]
    )
    node_time = torch.randint(0, 100, (n,), generator=g)
    edge_time = torch.randint(0, 100, (e,), generator=g)
    return ei, Graph.from_edge_index(ei, n), node_time, edge_time


def edge_times_of(sub, ei, node_time, edge_time, level):
    return node_time[ei[0, sub.edge_ids]] if level == "node" else edge_time[sub.edge_ids]


def tree_bound(sub, seed_time):
    # each edge's destination belongs to the tree of one seed; its bound is that seed's time
    return seed_time[sub.batch[sub.col]]


@pytest.mark.parametrize("level", ["node", "edge"])
@pytest.mark.parametrize("strategy", ["uniform", "last"])
def test_no_edge_newer_than_its_seed(level, strategy):
    ei, g, node_time, edge_time = random_graph()
    kw = {"node_time": node_time} if level == "node" else {"edge_time": edge_time}
    s = TemporalNeighborSampler(g, [4, 3], temporal_strategy=strategy, **kw)
    seeds = torch.tensor([3, 17, 17, 150, 99])
    seed_time = torch.tensor([50, 20, 80, 99, 0])
    sub = s.sample(seeds, SampleKey(seed=1), seed_time=seed_time)
    assert sub.batch is not None and torch.equal(sub.nodes[:5], seeds)
    t = edge_times_of(sub, ei, node_time, edge_time, level)
    assert sub.row.numel() > 0 and bool((t <= tree_bound(sub, seed_time)).all())
    # every sampled edge is a graph edge between the right nodes
    assert torch.equal(ei[0, sub.edge_ids], sub.nodes[sub.row])
    assert torch.equal(ei[1, sub.edge_ids], sub.nodes[sub.col])
    # hop 1: each seed keeps min(fanout, allowed in-edges); "last" keeps the most recent ones
    lo, hi = sub.edge_span(1)
    for i in range(5):
        mine = (sub.col[lo:hi] == i).nonzero().flatten() + lo
        into = (ei[1] == seeds[i]).nonzero().flatten()
        tt = node_time[ei[0, into]] if level == "node" else edge_time[into]
        allowed = into[tt <= seed_time[i]]
        assert mine.numel() == min(4, allowed.numel()), i
        if strategy == "last" and allowed.numel() > 4:
            want_times = sorted((tt[tt <= seed_time[i]]).tolist())[-4:]
            got = edge_times_of(sub, ei, node_time, edge_time, level)[mine - 0]
            assert sorted(got.tolist()) == want_times


def test_uniform_among_allowed_edges_chi_square():
    # one destination with 12 in-edges, times 0..11; seed time 7: the 8 allowed edges are
    # drawn uniformly (fanout 2), the newer four never
    n = 13
    ei = torch.stack([torch.arange(1, n), torch.zeros(n - 1, dtype=torch.long)])
    g = Graph.from_edge_index(ei, n)
    edge_time = torch.arange(n - 1)
    s = TemporalNeighborSampler(g, [2], edge_time=edge_time)
    counts = np.zeros(n - 1)
    for b in range(2000):
        sub = s.sample(torch.tensor([0]), SampleKey(seed=3, batch=b), seed_time=[7])
        np.add.at(counts, sub.edge_ids.numpy(), 1)
    assert counts[8:].sum() == 0
    assert stats.chisquare(counts[:8]).pvalue > 1e-3, counts


def test_typed_node_level_times_and_missing_types():
    g0 = torch.Generator().manual_seed(2)
    cites = torch.randint(0, 50, (2, 400), generator=g0)
    writes = torch.stack([torch.randint(0, 30, (300,), generator=g0),
                          torch.randint(0, 50, (300,), generator=g0)])  # fmt: skip
    ed = {("paper", "cites", "paper"): cites, ("author", "writes", "paper"): writes}
    g = Graph.from_hetero(ed, {"paper": 50, "author": 30})
    year = torch.randint(2000, 2020, (50,), generator=g0)
    authors = torch.randint(1990, 2020, (30,), generator=g0)
    s = TemporalNeighborSampler(g, [5, 5], node_time={"paper": year, "author": authors})
    seeds = torch.arange(10)  # papers (type 0 comes first)
    sub = s.sample(seeds, SampleKey(seed=4))  # default: each seed's own year
    off = g.type_offsets()
    names = g.node_types
    for e, et in enumerate(g.edge_types):
        lo, hi = sub.edge_span(1, e)[0], sub.edge_span(2, e)[1]
        st, dt = names.index(et[0]), names.index(et[2])
        src = sub.type_nodes(st)[sub.row[lo:hi]] - off[st]
        times = (year if et[0] == "paper" else authors)[src]
        trees = sub.batch[int(sub.node_offsets[dt]) + sub.col[lo:hi]]
        assert bool((times <= year[seeds][trees]).all()), et
    with pytest.raises(ValueError, match="no times for node type 'author'"):
        TemporalNeighborSampler(g, [2], node_time={"paper": year})


def test_deterministic_across_thread_counts(across_threads):
    ei, g, node_time, _ = random_graph(2000, 40000, seed=5)
    seeds = torch.arange(300)
    s = TemporalNeighborSampler(g, [5, 5], node_time=node_time)
    out = across_threads(lambda: s.sample(seeds, SampleKey(seed=8, batch=2)))
    for o in out[1:]:
        assert torch.equal(o.nodes, out[0].nodes) and torch.equal(o.edge_ids, out[0].edge_ids)


def test_loader_passes_each_batchs_seed_times():
    ei, g, node_time, edge_time = random_graph(seed=6)
    seeds = torch.arange(40)
    seed_time = torch.randint(0, 100, (40,), generator=torch.Generator().manual_seed(1))
    s = TemporalNeighborSampler(g, [3, 3], edge_time=edge_time)
    loader = Loader(s, seeds, batch_size=8, shuffle=True, seed=2, seed_time=seed_time)
    n = 0
    for b in loader:
        sub = b.subgraph
        bound = seed_time[b.input_id][sub.batch[sub.col]]
        assert bool((edge_time[sub.edge_ids] <= bound).all())
        n += 1
    assert n == 5
    with pytest.raises(ValueError, match="seed_time is required with edge-level times"):
        s.sample(torch.tensor([1]), SampleKey())
    with pytest.raises(ValueError, match="seed_time must be 1-D with 40 entries"):
        Loader(s, seeds, seed_time=seed_time[:3])
    from gnnsys.loaders import NeighborSampler

    with pytest.raises(TypeError, match="seed_time needs a temporal sampler"):
        Loader(NeighborSampler(g, [2]), seeds, seed_time=seed_time)


def test_bad_options():
    _, g, node_time, edge_time = random_graph()
    with pytest.raises(ValueError, match="exactly one of node_time"):
        TemporalNeighborSampler(g, [2])
    with pytest.raises(ValueError, match="exactly one of node_time"):
        TemporalNeighborSampler(g, [2], node_time=node_time, edge_time=edge_time)
    with pytest.raises(ValueError, match="temporal_strategy must be one of"):
        TemporalNeighborSampler(g, [2], node_time=node_time, temporal_strategy="recent")
    with pytest.raises(ValueError, match="node_time must be 1-D with 200 entries"):
        TemporalNeighborSampler(g, [2], node_time=node_time[:5])
    with pytest.raises(ValueError, match="disjoint"):
        TemporalNeighborSampler(g, [2], node_time=node_time, disjoint=False)
    with pytest.raises(NotImplementedError, match="GPU sampler"):
        TemporalNeighborSampler(g, [2], node_time=node_time, backend="triton")
    with pytest.raises(ValueError, match="must be finite"):
        TemporalNeighborSampler(g, [2], node_time=node_time.double() / 0)


def test_times_that_do_not_fit_or_hold_no_data_are_refused():
    # uint64 times of 2**63 and up wrapped to negatives (a seed later than every node then
    # admitted no neighbour); a str or a meta tensor gave torch's messages
    _, g, _, _ = random_graph()
    node_time = np.arange(200, dtype=np.uint64)
    s = TemporalNeighborSampler(g, [2], node_time=node_time)
    with pytest.raises(ValueError, match="seed_time holds 9223372036854775818, which does not"):
        s.sample(torch.tensor([5]), 0, seed_time=np.array([2**63 + 10], np.uint64))
    s.sample(torch.tensor([5]), 0, seed_time=np.array([2**62], np.uint64))  # fits: fine
    with pytest.raises(ValueError, match="node_time holds 18446744073709551615"):
        TemporalNeighborSampler(g, [2], node_time=np.full(200, 2**64 - 1, np.uint64))
    with pytest.raises(TypeError, match="node_time must be an array of times, got str"):
        TemporalNeighborSampler(g, [2], node_time="abc")
    with pytest.raises(
        ValueError, match="node_time must be on a cpu or cuda device, got a tensor on meta"
    ):
        TemporalNeighborSampler(g, [2], node_time=torch.zeros(200, device="meta"))


# ---------------------------------------------------------------------- PyG front
def test_pyg_time_attr_node_level_batches():
    ei, g, node_time, _ = random_graph(seed=7)
    data = Data(x=torch.randn(200, 4), edge_index=ei, time=node_time, num_nodes=200)
    loader = NeighborLoader(data, [4, 2], input_nodes=torch.arange(30), batch_size=10,
                            time_attr="time", seed=3)  # fmt: skip
    for b in loader:
        assert torch.equal(b.seed_time, node_time[b.input_id])
        assert torch.equal(b.time, node_time[b.n_id])  # sliced as a node attribute
        src, dst = b.edge_index
        assert bool((b.time[src] <= b.seed_time[b.batch[dst]]).all())
        assert b.batch.numel() == b.n_id.numel()  # disjoint, as PyG
    override = torch.full((30,), 10)
    b = next(iter(NeighborLoader(data, [4, 2], input_nodes=torch.arange(30), batch_size=30,
                                 time_attr="time", input_time=override)))  # fmt: skip
    assert bool((b.time[b.edge_index[0]] <= 10).all()) and torch.equal(b.seed_time, override)


def test_pyg_time_attr_edge_level_and_hetero_and_errors():
    ei, g, _, edge_time = random_graph(seed=8)
    data = Data(x=torch.randn(200, 4), edge_index=ei, etime=edge_time, num_nodes=200)
    b = next(iter(NeighborLoader(data, [3], input_nodes=torch.arange(8), batch_size=8,
                                 time_attr="etime", input_time=torch.full((8,), 40),
                                 temporal_strategy="last")))  # fmt: skip
    assert bool((b.etime <= 40).all()) and torch.equal(b.etime, edge_time[b.e_id])
    with pytest.raises(ValueError, match="input_time is required with an edge-level time_attr"):
        NeighborLoader(data, [3], input_nodes=torch.arange(8), time_attr="etime")
    with pytest.raises(ValueError, match="'nope' is neither a node nor an edge attribute"):
        NeighborLoader(data, [3], input_nodes=torch.arange(8), time_attr="nope")
    with pytest.raises(NotImplementedError, match="time_attr with LABOR"):
        from gnnsys.loaders.pyg import LaborLoader

        LaborLoader(data, [3], input_nodes=torch.arange(8), time_attr="etime")
    h = HeteroData()
    h["paper"].x = torch.randn(50, 3)
    h["paper"].time = torch.randint(0, 10, (50,))
    h["author"].x = torch.randn(20, 3)  # no time: always allowed
    h["paper", "cites", "paper"].edge_index = torch.randint(0, 50, (2, 300))
    h["author", "writes", "paper"].edge_index = torch.stack(
        [torch.randint(0, 20, (200,)), torch.randint(0, 50, (200,))]
    )
    b = next(iter(NeighborLoader(h, [3, 3], input_nodes=("paper", torch.arange(10)),
                                 batch_size=10, time_attr="time")))  # fmt: skip
    p = b["paper"]
    assert torch.equal(p.seed_time, h["paper"].time[:10])
    src, dst = b["paper", "cites", "paper"].edge_index
    assert bool((p.time[src] <= p.seed_time[p.batch[dst]]).all())
    assert b["author"].n_id.numel() > 0


def test_pyg_time_attr_through_a_feature_store_and_graph_store():
    # PyG's remote backend: node-level times are a FeatureStore tensor (as PyG reads them);
    # the batches are the ones the same Data gives, times sliced as node attributes
    from torch_geometric.testing import MyFeatureStore, MyGraphStore

    ei, g, node_time, _ = random_graph(seed=9)
    x = torch.randn(200, 4)
    fs, gs = MyFeatureStore(), MyGraphStore()
    fs.put_tensor(x, group_name=None, attr_name="x", index=None)
    fs.put_tensor(node_time, group_name=None, attr_name="time", index=None)
    gs.put_edge_index(ei, edge_type=None, layout="coo", size=(200, 200))
    kw = dict(input_nodes=torch.arange(30), batch_size=10, time_attr="time", seed=3)
    data = Data(x=x, edge_index=ei, time=node_time, num_nodes=200)
    for a, b in zip(NeighborLoader((fs, gs), [4, 2], **kw), NeighborLoader(data, [4, 2], **kw)):
        assert torch.equal(a.n_id, b.n_id) and torch.equal(a.e_id, b.e_id)
        assert torch.equal(a.time, node_time[a.n_id]) and torch.equal(a.seed_time, b.seed_time)
        src, dst = a.edge_index
        assert bool((a.time[src] <= a.seed_time[a.batch[dst]]).all())
    label_time = torch.randint(30, 100, (40,), generator=torch.Generator().manual_seed(4))
    link = LinkNeighborLoader((fs, gs), [3], edge_label_index=ei[:, :40], batch_size=20,
                              edge_label_time=label_time, time_attr="time", seed=2)  # fmt: skip
    for b in link:
        t = label_time[b.input_id]
        assert bool((b.time[b.edge_index[0]] <= t[b.batch[b.edge_index[1]]]).all())
    # typed: one tensor group per node type; a type without times is always allowed
    fs, gs = MyFeatureStore(), MyGraphStore()
    fs.put_tensor(torch.randn(50, 3), group_name="paper", attr_name="x", index=None)
    ptime = torch.randint(0, 10, (50,))
    fs.put_tensor(ptime, group_name="paper", attr_name="time", index=None)
    fs.put_tensor(torch.randn(20, 3), group_name="author", attr_name="x", index=None)
    gs.put_edge_index(torch.randint(0, 50, (2, 300)), edge_type=("paper", "cites", "paper"),
                      layout="coo", size=(50, 50))  # fmt: skip
    writes = torch.stack([torch.randint(0, 20, (200,)), torch.randint(0, 50, (200,))])
    gs.put_edge_index(writes, edge_type=("author", "writes", "paper"), layout="coo",
                      size=(20, 50))  # fmt: skip
    b = next(iter(NeighborLoader((fs, gs), [3, 3], input_nodes=("paper", torch.arange(10)),
                                 batch_size=10, time_attr="time")))  # fmt: skip
    p = b["paper"]
    assert torch.equal(p.seed_time, ptime[:10]) and torch.equal(p.time, ptime[p.n_id])
    src, dst = b["paper", "cites", "paper"].edge_index
    assert bool((p.time[src] <= p.seed_time[p.batch[dst]]).all())
    assert b["author"].n_id.numel() > 0


# ---------------------------------------------------------------------- temporal link sampling
def test_temporal_link_sampler_binary_negatives_and_bounds():
    from gnnsys.loaders import LinkSampler

    ei, g, node_time, edge_time = random_graph(seed=9)
    label_index = ei[:, :40]
    label_time = torch.randint(20, 100, (40,), generator=torch.Generator().manual_seed(3))
    ls = LinkSampler(g, [3, 2], label_index, neg_sampling="binary", node_time=node_time,
                     edge_label_time=label_time)  # fmt: skip
    pos = torch.arange(16)
    sub = ls.sample(pos, SampleKey(seed=5))
    meta = sub.metadata
    t_all = meta["edge_label_time"]
    assert torch.equal(t_all, label_time[pos].repeat(2))  # negative j: edge j mod B
    pairs = sub.nodes[meta["edge_label_index"]]  # global (src, dst) of positives and negatives
    assert torch.equal(pairs[:, :16], label_index[:, pos])
    negs = pairs[:, 16:]
    assert bool((node_time[negs] <= t_all[16:]).all())  # temporal negatives
    bound = label_time[pos][sub.batch[sub.col]]
    assert bool((node_time[ei[0, sub.edge_ids]] <= bound).all())
    # triplets: seed_time per edge, negatives not newer than their edge
    lt = LinkSampler(g, [2], label_index, neg_sampling={"mode": "triplet", "amount": 2}, node_time=node_time,
                     edge_label_time=label_time)  # fmt: skip
    sub = lt.sample(pos, SampleKey(seed=6))
    assert torch.equal(sub.metadata["seed_time"], label_time[pos])
    neg = sub.nodes[sub.metadata["dst_neg_index"]]  # [B, 2]
    assert bool((node_time[neg] <= label_time[pos].view(-1, 1)).all())
    with pytest.raises(ValueError, match="needs edge_label_time"):
        LinkSampler(g, [2], label_index, node_time=node_time)
    with pytest.raises(ValueError, match="edge_label_time needs the graph's times"):
        LinkSampler(g, [2], label_index, edge_label_time=label_time)


def test_temporal_negatives_fall_back_to_the_oldest_node():
    from gnnsys.loaders import LinkSampler

    ei, g, node_time, _ = random_graph(seed=10)
    times = node_time.clone()
    times[7] = -5  # the one node old enough for seeds at time -1
    ls = LinkSampler(g, [2], ei[:, :4], neg_sampling="binary", node_time=times,
                     edge_label_time=torch.full((4,), -1))  # fmt: skip
    sub = ls.sample(torch.arange(4), SampleKey(seed=1))
    negs = sub.nodes[sub.metadata["edge_label_index"][:, 4:]]
    assert bool((negs == 7).all())


def test_pyg_temporal_link_loader():
    ei, g, node_time, edge_time = random_graph(seed=11)
    data = Data(x=torch.randn(200, 4), edge_index=ei, time=node_time, num_nodes=200)
    label_time = torch.randint(30, 100, (100,), generator=torch.Generator().manual_seed(4))
    loader = LinkNeighborLoader(data, [3, 2], edge_label_index=ei[:, :100], batch_size=20,
                                edge_label_time=label_time, time_attr="time",
                                neg_sampling_ratio=1.0, seed=2)  # fmt: skip
    n = 0
    for b in loader:
        t = label_time[b.input_id]
        assert torch.equal(b.edge_label_time, t.repeat(2))
        src, dst = b.edge_index
        assert bool((b.time[src] <= t[b.batch[dst]]).all())
        negs = b.n_id[b.edge_label_index[:, b.input_id.numel() :]]
        assert bool((node_time[negs] <= b.edge_label_time[b.input_id.numel() :]).all())
        n += 1
    assert n == 5
    with pytest.raises(ValueError, match="time_attr needs edge_label_time"):
        LinkNeighborLoader(data, [3], edge_label_index=ei[:, :10], time_attr="time")


@pytest.mark.parametrize("strategy", ["uniform", "last"])
@pytest.mark.parametrize("replace", [False, True])
def test_time_sorted_columns_take_the_binary_search_path_with_the_same_batches(strategy, replace):
    # Edges listed in time order (an interaction stream; ties included): every column of the
    # stable CSC build ascends in time, so the kernel finds the admitted prefix by binary
    # search. Its batches must equal the scan's, forced by clearing the flag.
    from gnnsys.loaders import _kernels

    if strategy == "last" and replace:
        pytest.skip("'last' draws without replacement")
    ei, _, _, _ = random_graph(n=300, e=6000, seed=5)
    edge_time = torch.sort(torch.randint(0, 60, (ei.shape[1],))).values
    g = Graph.from_edge_index(ei, 300)
    fast = TemporalNeighborSampler(
        g, [5, 3], edge_time=edge_time, temporal_strategy=strategy, replace=replace
    )
    assert fast._temporal_mode & _kernels.TEMPORAL_SORTED
    scan = TemporalNeighborSampler(
        g, [5, 3], edge_time=edge_time, temporal_strategy=strategy, replace=replace
    )
    scan._temporal_mode &= ~_kernels.TEMPORAL_SORTED
    seeds = torch.arange(0, 300, 7)
    seed_time = torch.randint(0, 70, (seeds.numel(),), generator=torch.Generator().manual_seed(1))
    for batch in range(3):
        a = fast.sample(seeds, SampleKey(seed=3, batch=batch), seed_time=seed_time)
        b = scan.sample(seeds, SampleKey(seed=3, batch=batch), seed_time=seed_time)
        assert torch.equal(a.nodes, b.nodes) and torch.equal(a.edge_ids, b.edge_ids)
        assert torch.equal(a.row, b.row) and torch.equal(a.col, b.col)
        assert bool((edge_time[a.edge_ids] <= tree_bound(a, seed_time)).all())


@pytest.mark.parametrize("level", ["node", "edge"])
@pytest.mark.parametrize("strategy", ["uniform", "last"])
@pytest.mark.parametrize("float_times", [False, True])
def test_unsorted_times_are_sorted_into_a_copy_with_the_graphs_edge_ids(
    level, strategy, float_times
):
    # Random times: the sampler keeps a time-sorted copy of the adjacency (PyG's sort_csc)
    # and searches it. Its batches equal those of the same graph built from the edges listed
    # in time order (stable: ties keep edge order), up to the edge ids, which must remain
    # the original graph's. Integer times sort by one combined key, floats by lexsort.
    from gnnsys.loaders import _kernels

    ei, g, node_time, edge_time = random_graph(n=150, e=4000, seed=2)
    if float_times:
        node_time, edge_time = node_time.double() / 7, edge_time.double() / 7
    edge_t = node_time[ei[0]] if level == "node" else edge_time
    order = torch.sort(edge_t, stable=True).indices
    g_sorted = Graph.from_edge_index(ei[:, order], 150)
    if level == "node":
        kw, kw_sorted = {"node_time": node_time}, {"node_time": node_time}
    else:
        kw, kw_sorted = {"edge_time": edge_time}, {"edge_time": edge_time[order]}
    s = TemporalNeighborSampler(g, [4, 3], temporal_strategy=strategy, **kw)
    ref = TemporalNeighborSampler(g_sorted, [4, 3], temporal_strategy=strategy, **kw_sorted)
    assert s._temporal_mode & _kernels.TEMPORAL_SORTED
    seeds = torch.arange(0, 150, 4)
    seed_time = torch.randint(0, 110, (seeds.numel(),), generator=torch.Generator().manual_seed(4))
    if float_times:
        seed_time = seed_time.double() / 7
    for batch in range(3):
        a = s.sample(seeds, SampleKey(seed=5, batch=batch), seed_time=seed_time)
        b = ref.sample(seeds, SampleKey(seed=5, batch=batch), seed_time=seed_time)
        assert torch.equal(a.nodes, b.nodes)
        assert torch.equal(a.row, b.row) and torch.equal(a.col, b.col)
        assert torch.equal(a.edge_ids, order[b.edge_ids])
        assert torch.equal(ei[0, a.edge_ids], a.nodes[a.row])
        assert torch.equal(ei[1, a.edge_ids], a.nodes[a.col])


def test_last_on_a_sorted_copy_takes_the_edges_the_scan_takes():
    # The scan over the unsorted graph (time_sorted_copy=False) picks the same k newest edges
    # per destination (ties: later edge) as the binary search over the sorted copy.
    from gnnsys.loaders import _kernels

    ei, g, _, edge_time = random_graph(n=120, e=3000, seed=7)
    edge_time = edge_time // 10  # many ties
    fast = TemporalNeighborSampler(g, [4, 2], edge_time=edge_time, temporal_strategy="last")
    scan = TemporalNeighborSampler(
        g, [4, 2], edge_time=edge_time, temporal_strategy="last", time_sorted_copy=False
    )
    assert fast._temporal_mode & _kernels.TEMPORAL_SORTED
    assert not scan._temporal_mode & _kernels.TEMPORAL_SORTED
    seeds = torch.arange(0, 120, 3)
    seed_time = torch.full((seeds.numel(),), 6)
    a = fast.sample(seeds, SampleKey(seed=1), seed_time=seed_time)
    b = scan.sample(seeds, SampleKey(seed=1), seed_time=seed_time)
    assert torch.equal(a.edge_ids.sort().values, b.edge_ids.sort().values)


def test_a_graph_mapped_from_disk_is_scanned_not_copied(tmp_path):
    from gnnsys.loaders import _kernels

    ei, g, _, edge_time = random_graph(seed=3)
    g.save(tmp_path / "g")
    mapped = Graph.load(tmp_path / "g", mmap=True)
    s = TemporalNeighborSampler(mapped, [3], edge_time=edge_time)
    assert not s._temporal_mode & _kernels.TEMPORAL_SORTED
    sub = s.sample(torch.arange(20), SampleKey(seed=0), seed_time=torch.full((20,), 50))
    assert bool((edge_time[sub.edge_ids] <= 50).all())
    assert torch.equal(ei[0, sub.edge_ids], sub.nodes[sub.row])


def test_float_seed_times_against_integer_node_times_are_exact():
    # "time <= s" for integer times is "time <= floor(s)": -0.5 must not admit a node of time
    # 0 (a cast truncated it to 0), and 1e30 / -1e30 admit everything / nothing (a cast
    # wrapped 1e30 to the int64 minimum, admitting nothing).
    g = Graph.from_edge_index(torch.tensor([[1, 2, 3], [0, 0, 0]]))
    s = TemporalNeighborSampler(g, [-1], node_time=torch.tensor([0, -1, 0, 3]))

    def nodes(t):
        return sorted(s.sample(torch.tensor([0]), seed_time=torch.tensor([t])).nodes.tolist())

    assert nodes(-0.5) == [0, 1]
    assert nodes(2.5) == [0, 1, 2] and nodes(2) == [0, 1, 2]
    assert nodes(1e30) == [0, 1, 2, 3] and nodes(-1e30) == [0]


def test_edge_time_must_cover_the_graphs_edge_ids():
    # edge_time is indexed by edge id; ids past its end gave numpy's "index 7 is out of bounds"
    g = Graph.from_csc(torch.tensor([0, 2, 3, 3]), torch.tensor([1, 2, 0]),
                       edge_ids=torch.tensor([0, 7, 1]))  # fmt: skip
    with pytest.raises(ValueError, match="graph has edge id 7, edge_time holds 3 times"):
        TemporalNeighborSampler(g, [-1], edge_time=torch.tensor([1, 2, 3]))


def test_pyg_time_attr_must_be_one_time_per_node():
    data = Data(x=torch.randn(50, 4), edge_index=torch.randint(0, 50, (2, 200)), num_nodes=50)
    data.t = torch.arange(50).view(-1, 1)  # [n, 1] is one time per node
    assert len(NeighborLoader(data, [2], time_attr="t", input_time=torch.full((50,), 10),
                              batch_size=10)) == 5  # fmt: skip
    with pytest.raises(ValueError, match=r"time attribute 'x' has shape \(50, 4\)"):
        NeighborLoader(data, [2], time_attr="x", input_time=torch.full((50,), 10))


@pytest.mark.parametrize("copy", [True, False])
def test_last_takes_the_newest_float_times_on_both_paths(copy):
    # the scan (no sorted copy) kept float times as int64: 1.3 and 1.9 both read 1, so "last"
    # took the later position instead of the newer edge
    src, dst = torch.tensor([1, 2, 3, 4, 5, 6]), torch.zeros(6, dtype=torch.long)
    g = Graph.from_edge_index(torch.stack([src, dst]), 7)
    node_time = torch.tensor([0.0, 1.1, 1.9, 1.2, 1.3, 1.8, 5.0], dtype=torch.float64)
    s = TemporalNeighborSampler(g, [2], node_time=node_time, temporal_strategy="last",
                                time_sorted_copy=copy)  # fmt: skip
    sub = s.sample(torch.tensor([0]), SampleKey(seed=0), seed_time=[2.0])
    assert sorted(sub.nodes[sub.row].tolist()) == [2, 5]
