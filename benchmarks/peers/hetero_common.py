"""Shared parsing, loading, timing and reporting of the heterogeneous peer scripts (run in the
peers' virtual environments, which have no gnnsys: numpy and json, torch_geometric only where a
PyG script asks for it).

Folder format (written by ``benchmarks/loader_throughput.py --graph mini-mag``):
``meta.json`` ({"node_types": {type: count}, "edge_types": [[src, rel, dst], ...],
"target": "paper"}), ``edges/<src>__<rel>__<dst>.npy`` (int64 [2, E], ids within the types),
``<target>_x.npy`` (float32 [N, F]), ``<target>_y.npy`` (int64 [N]), ``train_idx.npy``.
"""

import argparse
import json
import os
import time

import numpy as np


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("graph", help="heterogeneous graph folder (see hetero_common.py)")
    p.add_argument("--batches", type=int, default=30, help="timed mini-batches (after 3 warm-up)")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--fanout", default="15,10", help="first hop first, on every relation")
    p.add_argument("--workers", type=int, default=0)
    return p.parse_args()


def load(folder):
    with open(os.path.join(folder, "meta.json")) as f:
        meta = json.load(f)
    edges = {}
    for s, r, d in meta["edge_types"]:
        edges[(s, r, d)] = np.load(os.path.join(folder, "edges", f"{s}__{r}__{d}.npy"))
    t = meta["target"]
    return {
        "meta": meta,
        "edges": edges,
        "x": np.load(os.path.join(folder, f"{t}_x.npy")),
        "y": np.load(os.path.join(folder, f"{t}_y.npy")),
        "train_idx": np.load(os.path.join(folder, "train_idx.npy")),
    }


class Batches:
    """Batches from a (re-iterable) loader, starting a new epoch when one runs out, so a
    short epoch does not end the timing early (as the gnnsys side does)."""

    def __init__(self, loader):
        self.loader = loader
        self.it = iter(loader)

    def next(self):
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)


def pyg_hetero_data(g):
    """``load``'s arrays as a PyG ``HeteroData``: node counts, the target's ``x`` and ``y``, every
    relation's ``edge_index``."""
    import torch
    from torch_geometric.data import HeteroData

    data = HeteroData()
    for t, n in g["meta"]["node_types"].items():
        data[t].num_nodes = n
    target = g["meta"]["target"]
    data[target].x = torch.from_numpy(g["x"])
    data[target].y = torch.from_numpy(g["y"])
    for et, ei in g["edges"].items():
        data[et].edge_index = torch.from_numpy(ei)
    return data


def time_batches(loader, batches, count):
    """(seconds, sampled nodes) of ``batches`` batches of ``loader`` after 3 untimed ones;
    ``count(batch)`` checks a batch and returns its number of sampled nodes."""
    it = Batches(loader)
    for _ in range(3):
        it.next()
    t0 = time.perf_counter()
    nodes = 0
    for _ in range(batches):
        nodes += count(it.next())
    return time.perf_counter() - t0, nodes


def report(name, version, args, seconds, sampled_nodes):
    print(
        json.dumps(
            {
                "peer": name,
                "version": version,
                "workers": args.workers,
                "batch_size": args.batch_size,
                "fanout": args.fanout,
                "batches": args.batches,
                "seconds": round(seconds, 4),
                "batches_per_s": round(args.batches / seconds, 3),
                "sampled_nodes_per_batch": round(sampled_nodes / args.batches, 1),
            }
        ),
        flush=True,
    )
