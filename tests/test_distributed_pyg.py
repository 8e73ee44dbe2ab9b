"""gnnsys.distributed.pyg: PyG's (FeatureStore, GraphStore) over a partition; the gnnsys
NeighborLoader on them gives, on every machine, the batches of one machine's NeighborLoader."""

import datetime
import threading

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gnnsys.datasets import synthetic
from gnnsys.distributed import partition

pytest.importorskip("torch_geometric")

OPTIONS = [{}, {"disjoint": True}, {"replace": True}]


def _seeds(rank):
    return torch.arange(rank, 96, 2)


def _link_args(rank, node_part):
    """Each machine's share of every 5th edge (edge_split), binary negatives."""
    from gnnsys.distributed.graph import edge_split

    eli = synthetic("tiny").graph.to_edge_index()[:, ::5]
    eli = eli[:, edge_split(eli, node_part, 2, rank)]
    return dict(num_neighbors=[4, 2], edge_label_index=eli, neg_sampling="binary",
                batch_size=32, shuffle=True, seed=3)  # fmt: skip


def _run(rank, world, rendezvous, folder, out):
    from gnnsys.distributed.pyg import pyg_stores
    from gnnsys.loaders.pyg import LaborLoader, LinkNeighborLoader, NeighborLoader

    dist.init_process_group("gloo", init_method=rendezvous, rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=60))  # fmt: skip
    fs, gs = pyg_stores(folder)
    got = []
    for opts in OPTIONS:
        loader = NeighborLoader((fs, gs), num_neighbors=[4, 2], input_nodes=_seeds(rank),
                                batch_size=16, shuffle=True, seed=7, **opts)  # fmt: skip
        got.append([b.to_dict() for b in loader])
    loader = LaborLoader(
        (fs, gs), num_neighbors=[4, 2], input_nodes=_seeds(rank), batch_size=16, seed=7
    )
    got.append([b.to_dict() for b in loader])
    links = [
        b.to_dict()
        for b in LinkNeighborLoader((fs, gs), **_link_args(rank, gs.dist_graph.node_part))
    ]
    attrs = gs.get_all_edge_attrs()
    torch.save(
        {"batches": got, "links": links, "size": attrs[0].size, "x": fs["x", None].shape},
        f"{out}/{rank}.pt",
    )
    dist.destroy_process_group()


def test_neighbor_loader_over_partition_stores(tmp_path, rendezvous):
    from torch_geometric.data import Data

    from gnnsys.distributed import PartitionBook
    from gnnsys.loaders.pyg import LaborLoader, LinkNeighborLoader, NeighborLoader

    ds = synthetic("tiny")
    folder = tmp_path / "parts"
    partition(ds, 2, folder, method="random")
    mp.spawn(_run, args=(2, rendezvous, str(folder), str(tmp_path)), nprocs=2)
    data = Data(x=ds.x, y=ds.y, edge_index=ds.graph.to_edge_index())
    for rank in range(2):
        res = torch.load(tmp_path / f"{rank}.pt")
        assert res["size"] == (ds.graph.num_nodes, ds.graph.num_nodes)
        want = []
        for opts in OPTIONS:
            loader = NeighborLoader(data, num_neighbors=[4, 2], input_nodes=_seeds(rank),
                                    batch_size=16, shuffle=True, seed=7, **opts)  # fmt: skip
            want.append([b.to_dict() for b in loader])
        loader = LaborLoader(
            data, num_neighbors=[4, 2], input_nodes=_seeds(rank), batch_size=16, seed=7
        )
        want.append([b.to_dict() for b in loader])
        book = PartitionBook.open(folder)
        want.append(
            [b.to_dict() for b in LinkNeighborLoader(data, **_link_args(rank, book.node_part))]
        )
        assert len(want[-1]) >= 3
        for got_batches, want_batches in zip(res["batches"] + [res["links"]], want):
            assert len(got_batches) == len(want_batches) >= 3
            for g, w in zip(got_batches, want_batches):
                assert set(g) == set(w)
                for k in w:
                    same = torch.equal(g[k], w[k]) if torch.is_tensor(w[k]) else g[k] == w[k]
                    assert same, k


def test_refused_options(tmp_path):
    from gnnsys.distributed.graph import DistGraph
    from gnnsys.distributed.pyg import DistFeatureStore, DistGraphStore
    from gnnsys.loaders.pyg import HGTLoader, LinkNeighborLoader, NeighborLoader

    graph = DistGraph.__new__(DistGraph)  # no process group needed to reach the checks
    graph._exchanges, graph._lane = [object()], threading.local()
    graph.num_nodes = 10
    stores = (DistFeatureStore({}), DistGraphStore(graph))
    with pytest.raises(NotImplementedError, match="subgraph_type='induced' over a partition"):
        NeighborLoader(stores, num_neighbors=[2], subgraph_type="induced")
    with pytest.raises(ValueError, match="give each machine its edge_label_index"):
        LinkNeighborLoader(stores, num_neighbors=[2])
    with pytest.raises(NotImplementedError, match="subgraph_type='induced' over a partition"):
        LinkNeighborLoader(stores, num_neighbors=[2], edge_label_index=torch.zeros(2, 3).long(),
                           subgraph_type="induced")  # fmt: skip
    # time_attr over a partition names one of its node tables (its stores hold no edge data)
    with pytest.raises(ValueError, match="'t' is neither a node nor an edge attribute"):
        NeighborLoader(stores, num_neighbors=[2], input_nodes=torch.arange(4), time_attr="t")
    with pytest.raises(ValueError, match="'t' is neither a node nor an edge attribute"):
        LinkNeighborLoader(stores, num_neighbors=[2], edge_label_index=torch.zeros(2, 3).long(),
                           time_attr="t", edge_label_time=torch.zeros(3))  # fmt: skip
    with pytest.raises(NotImplementedError, match="HGTLoader over gnnsys.distributed"):
        HGTLoader(stores, num_samples=[2], input_nodes=None)
    with pytest.raises(NotImplementedError, match="read-only"):
        stores[1].put_edge_index(torch.zeros(2, 1, dtype=torch.long), edge_type=None,
                                 layout="coo", size=(10, 10))  # fmt: skip
    # PyG's own samplers read the topology through csc/csr/coo: over one machine's part they
    # would silently drop the other machines' edges (seen: 297 of 4947 edges of a full-fanout
    # batch), so they are refused
    graph.part, graph.num_parts, graph.owned = 0, 2, np.arange(5)
    for layout in ("csc", "csr", "coo"):
        with pytest.raises(NotImplementedError, match="holds one machine's part.*sample across"):
            getattr(stores[1], layout)()
