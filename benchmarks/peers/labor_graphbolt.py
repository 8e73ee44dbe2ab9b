"""DGL 2.1 GraphBolt's LayerNeighborSampler (LABOR-0) and NeighborSampler on a saved graph
folder, through GraphBolt's CPU datapipe (ItemSampler -> sample_layer_neighbor /
sample_neighbor -> fetch_feature -> DataLoader): one JSON line per sampler with batches/s,
sampled input nodes per batch and new nodes per hop. Features and labels are fetched, as a
training script asks. Run with the DGL peer env's python by benchmarks/labor_sampling.py;
numbers are comparable only within one run of that script.

GraphBolt 2.1's LayerNeighborSampler has no importance-sampling iterations and no
layer/batch dependency options: it is LABOR-0 with a fresh random variate per node and batch
(DGL's ``LaborSampler(importance_sampling=0, batch_dependency=1)``).
"""

import argparse
import json
import os
import time

import dgl
import dgl.graphbolt as gb
import numpy as np
import torch


def csc(src: np.ndarray, dst: np.ndarray, n: int):
    """(indptr, indices) of the in-edges, by destination (stable: CSC order kept when the
    folder's dst is already sorted, as the synthetic folders write it)."""
    if dst.size and np.any(dst[1:] < dst[:-1]):
        order = np.argsort(dst, kind="stable")
        src, dst = src[order], dst[order]
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(dst, minlength=n), out=indptr[1:])
    return torch.from_numpy(indptr), torch.from_numpy(src.astype(np.int64))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("graph", help="folder with src.npy, dst.npy, x.npy, y.npy, train_idx.npy")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--fanout", default="15,10,5", help="PyG order: first hop first")
    args = p.parse_args()
    arr = {k: np.load(os.path.join(args.graph, f"{k}.npy")) for k in ("src", "dst", "x", "y")}
    seeds = torch.from_numpy(np.load(os.path.join(args.graph, "train_idx.npy")))
    n = arr["x"].shape[0]
    t0 = time.perf_counter()
    indptr, indices = csc(arr["src"], arr["dst"], n)
    graph = gb.fused_csc_sampling_graph(indptr, indices)
    feats = gb.BasicFeatureStore(
        {("node", None, "feat"): gb.TorchBasedFeature(torch.from_numpy(arr["x"]))}
    )
    labels = torch.from_numpy(arr["y"])[seeds]
    load_s = time.perf_counter() - t0
    # GraphBolt lists the input layer first
    fanouts = [torch.LongTensor([int(f)]) for f in reversed(args.fanout.split(","))]
    for name in ("neighbor", "labor"):
        torch.manual_seed(0)
        items = gb.ItemSet((seeds, labels), names=("seed_nodes", "labels"))
        pipe = gb.ItemSampler(items, batch_size=args.batch_size, shuffle=True)
        if name == "labor":
            pipe = pipe.sample_layer_neighbor(graph, fanouts)
        else:
            pipe = pipe.sample_neighbor(graph, fanouts)
        pipe = pipe.fetch_feature(feats, node_feature_keys=["feat"])
        it = iter(gb.DataLoader(pipe, num_workers=0))
        for _ in range(args.warmup):
            next(it)
        t0 = time.perf_counter()
        nodes = 0
        hops = [0] * len(fanouts)
        for _ in range(args.batches):
            mb = next(it)
            subs = mb.sampled_subgraphs  # input layer first
            nodes += int(subs[0].original_row_node_ids.numel())
            for h, s in enumerate(reversed(subs)):  # hop 1 (into the seeds) first
                hops[h] += int(s.original_row_node_ids.numel() - s.original_column_node_ids.numel())
        s = time.perf_counter() - t0
        print(json.dumps({"system": "graphbolt", "version": dgl.__version__, "sampler": name,
                          "batches_per_s": round(args.batches / s, 3),
                          "nodes_per_batch": round(nodes / args.batches, 1),
                          "new_nodes_per_hop": [round(x / args.batches, 1) for x in hops],
                          "load_s": round(load_s, 2)}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
