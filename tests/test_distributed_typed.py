"""gnnsys.distributed on typed graphs: a HeteroDataset partitions by global (fused) id, and
sampling across gloo ranks gives, field for field, the SampledSubgraph of one machine's
NeighborSampler; per-type tables fetch the rows of one machine; bad input fails as there."""

import dataclasses
import datetime
import json

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gnnsys.datasets import synthetic
from gnnsys.distributed import load_part, partition
from gnnsys.distributed.partition import PartitionBook, PartitionError
from gnnsys.features import FeatureStore
from gnnsys.loaders.base import SampledSubgraph, SampleKey
from gnnsys.loaders.neighbor import LaborSampler, NeighborSampler

MAG = "tiny-mag"


def _per_etype(ds):
    """A PyG-style dict: every edge type, one hop with fanout 0 for some."""
    out = {}
    for e, et in enumerate(ds.graph.edge_types):
        out[et] = [[3, 0, 2, 4, -1, 1, 2][e], [0, 2, 1, 0, 2, 3, 1][e]]
    return out


def _configs(ds):
    """(sampler options, fanouts) pairs; ``labor`` picks LaborSampler on one machine."""
    per_layer = [{et: (2 if e % 2 else 0) for e, et in enumerate(ds.graph.edge_types)}, 3]
    return [
        ({}, [4, 3]),
        ({}, _per_etype(ds)),
        ({"disjoint": True}, _per_etype(ds)),
        ({"semantics": "dgl"}, per_layer),
        ({"replace": True}, [3, 2]),
        ({"labor": True}, [3, 2]),
    ]


def _seeds(ds, rank, b):
    """Papers and a few authors (global ids), with a duplicate: each rank its own."""
    off = ds.graph.type_offsets()
    gen = torch.Generator().manual_seed(100 * b + rank)
    papers = torch.randint(0, int(off[1]), (20 + rank,), generator=gen)
    authors = torch.randint(int(off[1]), int(off[2]), (4,), generator=gen)
    seeds = torch.cat([papers, authors])
    seeds[-1] = seeds[0]
    return seeds


def _typed_times(ds):
    """Node-level times per node type (papers: their year) and edge-level ones per edge type
    (by id within the type), as TemporalNeighborSampler takes them."""
    gen = torch.Generator().manual_seed(7)
    node = {t: torch.randint(2000, 2020, (n,), generator=gen) for t, n in ds.num_nodes_dict.items()}
    node["paper"] = ds.year
    tpe = ds.graph.type_per_edge.long()
    edge = {et: torch.randint(2000, 2020, (int((tpe == e).sum()),), generator=gen)
            for e, et in enumerate(ds.graph.edge_types)}  # fmt: skip
    return [({"node_time": node}, "uniform"), ({"edge_time": edge}, "last")]


def _seed_times(ds, rank, b):
    gen = torch.Generator().manual_seed(10 * b + rank)
    return torch.randint(2005, 2020, (_seeds(ds, rank, b).numel(),), generator=gen)


def _error(fn):
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - the test compares type and message
        return type(err).__name__, str(err)
    return None


def _bad_inputs(sampler_cls, graph, store, ds):
    """The errors of bad input, on one machine or over a partition (no collective runs)."""
    n_paper = ds.num_nodes_dict["paper"]
    return [
        _error(lambda: sampler_cls(graph, {("paper", "nope", "paper"): [1]})),
        _error(lambda: sampler_cls(graph, {"cites": [1]})),  # the other types missing
        _error(lambda: sampler_cls(graph, [{"cites": 1}])),
        _error(lambda: sampler_cls(graph, [2]).sample(torch.tensor([ds.num_nodes]))),
        _error(lambda: store.fetch(("paper", "x"), torch.tensor([0, n_paper]))),
        _error(lambda: store.fetch(("paper", "y"), torch.tensor([-1]))),
        _error(lambda: store.fetch(("author", "x"), torch.tensor([0]))),
    ]


def _dgl_batches(graph, rank):
    """The DGL front's batches (node ids and block structure; no features) over ``graph``."""
    from gnnsys.loaders import dgl as gdgl

    loader = gdgl.DataLoader(graph, {"paper": torch.arange(rank, 24, 2)},
                             gdgl.NeighborSampler([2, 3]), batch_size=4, shuffle=True, seed=1)  # fmt: skip
    return [
        (inp, out, [{et: (*b.edges(etype=et), b.edges[et].data["_ID"]) for et in b.canonical_etypes}
                    for b in blocks])
        for inp, out, blocks in loader
    ]  # fmt: skip


def _dgl_features(graph, rank):
    """The DGL front's prefetched paper features of the first block's source papers."""
    from gnnsys.loaders import dgl as gdgl

    sampler = gdgl.NeighborSampler([2, 2], prefetch_node_feats={"paper": ["x"]})
    loader = gdgl.DataLoader(graph, {"paper": torch.arange(rank, 24, 2)}, sampler, batch_size=6)
    return [(inp["paper"], blocks[0].srcdata["x"]["paper"]) for inp, _out, blocks in loader]


def _pyg_batches(data, world, rank):
    """PyG NeighborLoader batches over ``data`` (HeteroData or the partition's stores)."""
    from gnnsys.loaders.pyg import NeighborLoader

    ds = synthetic(MAG)
    out = []
    # (the last: temporal, PyG's time_attr on the papers' year; the other types always allowed)
    for fanouts, time in (([3, 2], {}), (_per_etype(ds), {}), ([3, 2], {"time_attr": "year"})):
        loader = NeighborLoader(data, num_neighbors=fanouts, batch_size=8, shuffle=True, seed=7,
                                input_nodes=("paper", torch.arange(rank, 48, world)),
                                **time)  # fmt: skip
        for b in loader:
            rows = {(t, k): b[t][k] for t in b.node_types for k in ("n_id", "x", "y", "year",
                    "num_sampled_nodes", "batch_size", "input_id", "seed_time", "batch")
                    if k in b[t]}  # fmt: skip
            rows.update({(et, k): b[et][k] for et in b.edge_types
                         for k in ("edge_index", "e_id", "num_sampled_edges")})  # fmt: skip
            out.append(rows)
    return out


def _pyg_link_batches(data, world, rank):
    """PyG LinkNeighborLoader batches on the writes relation (temporal too: the papers' year
    bounds each edge's subgraph) over ``data`` (HeteroData or the partition's stores)."""
    from gnnsys.loaders.pyg import LinkNeighborLoader

    ds = synthetic(MAG)
    et = ("author", "writes", "paper")
    eli = ds.graph.to_hetero()[0][et][:, rank::world][:, :40]
    label_time = torch.full((eli.shape[1],), 2015)
    out = []
    for time in ({}, {"time_attr": "year", "edge_label_time": label_time}):
        loader = LinkNeighborLoader(data, num_neighbors=[3, 2], edge_label_index=(et, eli),
                                    batch_size=8, shuffle=True, seed=5, neg_sampling="binary",
                                    **time)  # fmt: skip
        for b in loader:
            rows = {(t, k): b[t][k] for t in b.node_types for k in ("n_id", "year", "batch")
                    if k in b[t]}  # fmt: skip
            rows.update({(x, k): b[x][k] for x in b.edge_types for k in
                         ("edge_index", "e_id", "edge_label_index", "edge_label",
                          "edge_label_time") if k in b[x]})  # fmt: skip
            out.append(rows)
    assert len(out) == 10
    return out


def _same_nested(x, y):
    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and torch.equal(x, y)
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_same_nested(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return len(x) == len(y) and all(_same_nested(u, v) for u, v in zip(x, y))
    return x == y


def _run(rank, world, rendezvous, folder, out):
    from gnnsys.distributed.exchange import Exchange
    from gnnsys.distributed.features import DistTable
    from gnnsys.distributed.graph import (
        DistGraph,
        DistNeighborSampler,
        DistTemporalNeighborSampler,
    )

    dist.init_process_group("gloo", init_method=rendezvous, rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=60))  # fmt: skip
    ds = synthetic(MAG)
    g = DistGraph.open(folder, exchange=Exchange())
    subs = []
    for opts, fanouts in _configs(ds):
        opts = dict(opts)
        s = DistNeighborSampler(g, fanouts, **opts)
        subs.append([s.sample(_seeds(ds, rank, b), SampleKey(seed=3, epoch=1, batch=b))
                     for b in range(3)])  # fmt: skip
    for times, strategy in _typed_times(ds):
        s = DistTemporalNeighborSampler(g, _per_etype(ds), temporal_strategy=strategy, **times)
        subs.append([s.sample(_seeds(ds, rank, b), SampleKey(seed=3, batch=b),
                              seed_time=_seed_times(ds, rank, b)) for b in range(2)])  # fmt: skip
    dgl_batches = _dgl_batches(g, rank)
    dgl_features = _dgl_features(g, rank)
    from gnnsys.distributed.pyg import pyg_stores

    pyg = _pyg_batches(pyg_stores(folder), world, rank)
    pyg_links = _pyg_link_batches(pyg_stores(folder), world, rank)
    store = FeatureStore(dict(g.ndata))
    ids = torch.randint(0, ds.num_nodes_dict["paper"], (50,),
                        generator=torch.Generator().manual_seed(rank))  # fmt: skip
    rows = {k: store.fetch(k, ids) for k in (("paper", "x"), ("paper", "y"), ("paper", "year"))}
    # a cache of other parts' hot paper rows: the same values
    cached = DistTable(g, g.ndata[("paper", "x")].rows, "x", ntype="paper", cache_rows=40)
    rows["cached"] = cached[ids]
    rows["cache_ids"] = cached.cache_ids
    errors = _bad_inputs(DistNeighborSampler, g, store, ds)
    torch.save({"subs": subs, "rows": rows, "ids": ids, "errors": errors, "dgl": dgl_batches,
                "dgl_features": dgl_features, "pyg": pyg, "pyg_links": pyg_links,
                "hetero": (g.is_hetero, g.node_types, g.edge_types, g.type_offsets())},
               f"{out}/rank{rank}.pt")  # fmt: skip
    dist.destroy_process_group()


def _assert_same(a: SampledSubgraph, d: SampledSubgraph, what):
    for f in dataclasses.fields(SampledSubgraph):
        x, y = getattr(a, f.name), getattr(d, f.name)
        if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            ok = x is not None and y is not None and x.dtype == y.dtype and torch.equal(x, y)
        else:
            ok = x == y
        assert ok, (what, f.name)


@pytest.mark.parametrize("parts", [2, 3])
def test_typed_batches_rows_and_errors_match_one_machine(tmp_path, parts, rendezvous):
    ds = synthetic(MAG)
    folder = tmp_path / "parts"
    partition(ds, parts, folder, method="random", seed=1)
    mp.spawn(_run, args=(parts, rendezvous, str(folder), str(tmp_path)), nprocs=parts)
    store = FeatureStore({("paper", "x"): ds.x_dict["paper"], ("paper", "y"): ds.y,
                          ("paper", "year"): ds.year})  # fmt: skip
    want_errors = _bad_inputs(NeighborSampler, ds.graph, store, ds)
    assert all(e is not None for e in want_errors)
    for r in range(parts):
        res = torch.load(tmp_path / f"rank{r}.pt", weights_only=False)
        assert res["hetero"][:3] == (True, ds.graph.node_types, ds.graph.edge_types)
        assert torch.equal(res["hetero"][3], ds.graph.type_offsets())
        for (opts, fanouts), got in zip(_configs(ds), res["subs"]):
            opts = dict(opts)
            cls = LaborSampler if opts.pop("labor", False) else NeighborSampler
            ref = cls(ds.graph, fanouts, **opts)
            for b, sub in enumerate(got):
                want = ref.sample(_seeds(ds, r, b), SampleKey(seed=3, epoch=1, batch=b))
                assert want.num_sampled_edges and sum(want.num_sampled_edges) > 0
                _assert_same(want, sub, (opts, b, r))
        from gnnsys.loaders.neighbor import TemporalNeighborSampler

        for (times, strategy), got in zip(_typed_times(ds), res["subs"][len(_configs(ds)) :]):
            ref = TemporalNeighborSampler(ds.graph, _per_etype(ds), temporal_strategy=strategy,
                                          **times)  # fmt: skip
            assert len(got) == 2
            for b, sub in enumerate(got):
                want = ref.sample(_seeds(ds, r, b), SampleKey(seed=3, batch=b),
                                  seed_time=_seed_times(ds, r, b))  # fmt: skip
                assert sum(want.num_sampled_edges) > 0
                _assert_same(want, sub, (strategy, b, r))
        ids = res["ids"]
        assert torch.equal(res["rows"][("paper", "x")], ds.x_dict["paper"][ids])
        assert torch.equal(res["rows"][("paper", "y")], ds.y[ids])
        assert torch.equal(res["rows"][("paper", "year")], ds.year[ids])
        assert torch.equal(res["rows"]["cached"], ds.x_dict["paper"][ids])
        hot = res["rows"]["cache_ids"]  # global ids of papers other parts own
        assert hot.shape == (40,) and hot.max() < ds.num_nodes_dict["paper"]
        assert res["errors"] == want_errors
        # the DGL front over a typed DistGraph: the blocks of one machine (structure only)
        assert len(res["dgl"]) == 3 and _same_nested(res["dgl"], _dgl_batches(ds.graph, r))
        # ... and its prefetched features: the rows of the papers it sampled
        assert len(res["dgl_features"]) == 2
        for papers, x in res["dgl_features"]:
            assert torch.equal(x, ds.x_dict["paper"][papers])
        # PyG's NeighborLoader over the partition's stores: the HeteroData batches of one machine
        want = _pyg_batches(ds.to_pyg(), parts, r)
        assert len(want) == len(res["pyg"]) > 0 and _same_nested(res["pyg"], want)
        # ... and LinkNeighborLoader's, temporal too
        want = _pyg_link_batches(ds.to_pyg(), parts, r)
        assert _same_nested(res["pyg_links"], want)


def test_pyg_stores_of_a_typed_partition_read_per_type():
    """The stores' PyG views of a typed part (no process group: the graph store alone)."""
    pytest.importorskip("torch_geometric")
    from torch_geometric.data import EdgeAttr, TensorAttr

    from gnnsys.distributed.pyg import DistFeatureStore, DistGraphStore

    ds = synthetic(MAG)
    graph = ds.graph
    fake = type("Part", (), {})()  # the attributes DistGraphStore reads of a DistGraph
    keep = np.arange(0, graph.num_nodes, 2)  # a "part": every other node's in-edges
    indptr = graph.indptr.numpy()
    cols = [np.arange(indptr[v], indptr[v + 1]) for v in keep]
    pos = np.concatenate(cols)
    fake.is_hetero, fake.node_types, fake.edge_types = True, graph.node_types, graph.edge_types
    fake.node_type_offset = graph.type_offsets().numpy()
    fake.owned, fake.indices = keep, graph.indices.numpy()[pos].astype(np.int64)
    fake.indptr = np.concatenate([[0], np.cumsum([len(c) for c in cols])])
    fake.type_per_edge = graph.type_per_edge.numpy()[pos]
    gs = DistGraphStore.__new__(DistGraphStore)
    gs.dist_graph = fake
    attrs = gs.get_all_edge_attrs()
    assert [a.edge_type for a in attrs] == graph.edge_types
    full = ds.edge_index_dict
    for a in attrs:
        src, dst = gs._get_edge_index(EdgeAttr(edge_type=a.edge_type, layout="coo"))
        et = a.edge_type
        n_src, n_dst = ds.num_nodes_dict[et[0]], ds.num_nodes_dict[et[2]]
        assert a.size == (n_src, n_dst)
        d0 = int(fake.node_type_offset[graph.node_types.index(et[2])])
        mine = np.isin(full[et][1].numpy() + d0, keep)
        want = sorted(zip(full[et][0].numpy()[mine].tolist(), full[et][1].numpy()[mine].tolist()))
        assert sorted(zip(src.tolist(), dst.tolist())) == want
    table = ds.x_dict["paper"]
    fs = DistFeatureStore({("paper", "x"): type("T", (), {"rows": table, "shape": table.shape})()})
    assert [(a.group_name, a.attr_name) for a in fs.get_all_tensor_attrs()] == [("paper", "x")]
    assert fs._get_tensor(TensorAttr(group_name="paper", attr_name="x")) is table
    assert fs._get_tensor(TensorAttr(group_name="author", attr_name="x")) is None


def test_typed_partition_metis_and_typed_dataset(tmp_path):
    """metis / bfs on the homogenised graph; a Dataset over a typed graph keeps x and y for
    every node type; version 2 keys missing are named."""
    from gnnsys.datasets import Dataset
    from gnnsys.graph import Graph

    for method in ("metis", "bfs"):
        if method == "metis":
            pytest.importorskip("pymetis")
        book = partition(synthetic(MAG), 2, tmp_path / method, method=method)
        assert book.meta["method"] == method and sum(book.meta["part_sizes"]) == 7577
    g = Graph.from_hetero({("a", "to", "b"): torch.tensor([[0, 1], [0, 0]]),
                           ("b", "back", "a"): torch.tensor([[0], [1]])}, {"a": 2, "b": 1})  # fmt: skip
    ds = Dataset(name="typed", graph=g, x=torch.arange(6.0).view(3, 2),
                 y=torch.tensor([5, 6, 7]), train_idx=torch.tensor([0]),
                 val_idx=torch.tensor([1]), test_idx=torch.tensor([2]), num_classes=8)  # fmt: skip
    book = partition(ds, 2, tmp_path / "d", method="random")
    assert book.meta["target"] is None and set(book.meta["tables"]) == {"x", "y"}
    got = {}
    for i in range(2):
        lp = load_part(tmp_path / "d", i)
        for (ntype, name), rows in lp.tables.items():
            lo, hi = (0, 2) if ntype == "a" else (2, 3)
            ids = lp.owned[(lp.owned >= lo) & (lp.owned < hi)]
            got[(ntype, name, i)] = np.array_equal(rows, getattr(ds, name).numpy()[ids])
    assert got and all(got.values())
    mj = tmp_path / "d" / "partition.json"
    meta = json.loads(mj.read_text())
    del meta["node_types"]
    mj.write_text(json.dumps(meta))
    with pytest.raises(PartitionError, match="lacks node_types .format version 2"):
        PartitionBook.open(tmp_path / "d")
