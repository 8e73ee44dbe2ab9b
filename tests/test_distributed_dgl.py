"""The DGL front over a partition: ``gnnsys.loaders.dgl.DataLoader`` on a ``DistGraph`` gives,
on every machine, the blocks one machine's DataLoader gives on the whole graph."""

import datetime
import threading

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gnnsys.datasets import synthetic
from gnnsys.distributed import partition

SAMPLERS = [{"fanouts": [2, 4]}, {"fanouts": [3, 3], "replace": True}, {"fanouts": [2, 4],
                                                                          "labor": True}]  # fmt: skip


def _seeds(rank):
    return torch.arange(rank, 96, 2)


def _sampler(cfg):
    from gnnsys.loaders import dgl as dl

    cfg = dict(cfg)
    make = dl.LaborSampler if cfg.pop("labor", False) else dl.NeighborSampler
    return make(cfg.pop("fanouts"), prefetch_node_feats=["feat"], prefetch_labels=["y"], **cfg)


def _flat(batches):
    """Everything a training loop reads from DGL-front batches, as plain tensors."""
    out = []
    for input_nodes, output_nodes, blocks in batches:
        row = [input_nodes, output_nodes, blocks[0].srcdata["feat"], blocks[-1].dstdata["y"]]
        for b in blocks:
            src, dst = b.edges()
            row += [src, dst, b.edata["_ID"], torch.tensor([b.num_src_nodes(), b.num_dst_nodes()])]
        out.append(row)
    return out


EXCLUDES = [None, "self"]


def _edge_seeds(rank):
    return torch.arange(rank, 128, 2) * 5  # global edge ids, 64 per machine


def _edge_sampler(exclude):
    from gnnsys.loaders import dgl as dl

    return dl.as_edge_prediction_sampler(
        _sampler({"fanouts": [2, 4]}),
        exclude=exclude,
        negative_sampler=dl.negative_sampler.Uniform(2),
    )


def _flat_edges(batches):
    """Edge-prediction batches (input nodes, pair graph, negative pair graph, blocks) flat."""
    out = []
    for input_nodes, pair, neg, blocks in batches:
        row = [input_nodes, *pair.edges(), pair.edata["_ID"], pair.ndata["_ID"], *neg.edges()]
        row += _flat([(input_nodes, pair.ndata["_ID"], blocks)])[0]
        out.append(row)
    return out


def _run(rank, world, rendezvous, folder, out):
    from gnnsys.distributed.exchange import Exchange
    from gnnsys.distributed.graph import DistGraph
    from gnnsys.loaders.dgl import DataLoader

    dist.init_process_group("gloo", init_method=rendezvous, rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=60))  # fmt: skip
    g = DistGraph.open(folder, exchange=Exchange.lanes(2))
    g.ndata["feat"] = g.ndata["x"]
    got = []
    for cfg in SAMPLERS:
        loader = DataLoader(g, _seeds(rank), _sampler(cfg), batch_size=16, shuffle=True, seed=7,
                            block_type="gnnsys")  # fmt: skip
        got.append(_flat(loader))
    for exclude in EXCLUDES:
        loader = DataLoader(g, _edge_seeds(rank), _edge_sampler(exclude), batch_size=16,
                            shuffle=True, seed=7, block_type="gnnsys")  # fmt: skip
        got.append(_flat_edges(loader))
    torch.save(got, f"{out}/{rank}.pt")
    dist.destroy_process_group()


def test_dgl_dataloader_over_a_partition(tmp_path, rendezvous):
    from gnnsys.loaders.dgl import DataLoader

    ds = synthetic("tiny")
    folder = tmp_path / "parts"
    partition(ds, 2, folder, method="random")
    mp.spawn(_run, args=(2, rendezvous, str(folder), str(tmp_path)), nprocs=2)
    g = ds.graph
    g.ndata["feat"], g.ndata["y"] = ds.x, ds.y
    for rank in range(2):
        got = torch.load(tmp_path / f"{rank}.pt")
        wants = []
        for cfg in SAMPLERS:
            loader = DataLoader(g, _seeds(rank), _sampler(cfg), batch_size=16, shuffle=True,
                                seed=7, block_type="gnnsys")  # fmt: skip
            wants.append(_flat(loader))
        for exclude in EXCLUDES:
            loader = DataLoader(g, _edge_seeds(rank), _edge_sampler(exclude), batch_size=16,
                                shuffle=True, seed=7, block_type="gnnsys")  # fmt: skip
            wants.append(_flat_edges(loader))
        assert len(got) == len(wants) == len(SAMPLERS) + len(EXCLUDES)
        for cfg, mine, want in zip(SAMPLERS + EXCLUDES, got, wants):
            assert len(mine) == len(want) >= 3
            for a, b in zip(mine, want):
                assert len(a) == len(b)
                for x, y in zip(a, b):
                    assert torch.equal(x, y), cfg


def test_refused_over_a_partition():
    from gnnsys.distributed.graph import DistGraph
    from gnnsys.loaders import dgl as dl

    g = DistGraph.__new__(DistGraph)  # no process group needed to reach the checks
    g._exchanges, g._lane = [object()], threading.local()
    g.num_nodes, g.num_edges, g._ndata = 10, 20, {}
    with pytest.raises(NotImplementedError, match="over a partition"):
        dl.DataLoader(g, torch.arange(4), dl.ShaDowKHopSampler([2]), batch_size=2)
    with pytest.raises(NotImplementedError, match="prob / mask"):
        dl.DataLoader(g, torch.arange(4), dl.NeighborSampler([2], prob="w"), batch_size=2)
