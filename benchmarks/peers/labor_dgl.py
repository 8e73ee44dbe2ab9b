"""DGL 2.1's LaborSampler (LABOR-0 and LABOR-i) and NeighborSampler (CPU DataLoader) on a saved
graph folder: one JSON line per sampler with batches/s, sampled input nodes per batch and new
nodes per hop (features and labels prefetched, as a training script asks). Run with the DGL
peer env's python by benchmarks/labor_sampling.py; numbers are comparable only within one run
of that script."""

import argparse
import json
import os
import time

import dgl
import numpy as np
import torch


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("graph", help="folder with src.npy, dst.npy, x.npy, y.npy, train_idx.npy")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--fanout", default="15,10,5", help="PyG order: first hop first")
    p.add_argument("--importance-sampling", default="0", help="comma-separated: 0, i, -1")
    p.add_argument("--batch-dependency", type=int, default=1)
    args = p.parse_args()
    arr = {k: np.load(os.path.join(args.graph, f"{k}.npy")) for k in ("src", "dst", "x", "y")}
    seeds = torch.from_numpy(np.load(os.path.join(args.graph, "train_idx.npy")))
    n = arr["x"].shape[0]
    g = dgl.graph((torch.from_numpy(arr["src"]), torch.from_numpy(arr["dst"])), num_nodes=n)
    g.ndata["feat"] = torch.from_numpy(arr["x"])
    g.ndata["label"] = torch.from_numpy(arr["y"])
    g.create_formats_()
    fanout = [int(f) for f in args.fanout.split(",")][::-1]  # DGL: input layer first
    feats = {"prefetch_node_feats": ["feat"], "prefetch_labels": ["label"]}
    samplers = [("neighbor", dgl.dataloading.NeighborSampler(fanout, **feats))]
    for i in (int(v) for v in args.importance_sampling.split(",")):
        labor = dgl.dataloading.LaborSampler(
            fanout, importance_sampling=i, batch_dependency=args.batch_dependency, **feats
        )
        samplers.append(("labor" if i == 0 else f"labor-{i}" if i > 0 else "labor-*", labor))
    for name, sampler in samplers:
        torch.manual_seed(0)
        loader = dgl.dataloading.DataLoader(g, seeds, sampler, batch_size=args.batch_size,
                                            shuffle=True)  # fmt: skip
        it = iter(loader)
        for _ in range(3):
            next(it)
        t0 = time.perf_counter()
        nodes = 0
        hops = [0] * len(fanout)
        for _ in range(args.batches):
            inp, _, blocks = next(it)
            nodes += inp.numel()
            for h, b in enumerate(reversed(blocks)):  # hop 1 (into the seeds) first
                hops[h] += b.num_src_nodes() - b.num_dst_nodes()
        s = time.perf_counter() - t0
        print(json.dumps({"system": "dgl", "version": dgl.__version__, "sampler": name,
                          "batches_per_s": round(args.batches / s, 3),
                          "nodes_per_batch": round(nodes / args.batches, 1),
                          "new_nodes_per_hop": [round(x / args.batches, 1) for x in hops]}),
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
