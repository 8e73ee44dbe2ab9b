"""DGL 2.1 GraphBolt's TemporalNeighborSampler (CPU datapipe: ItemSampler ->
temporal_sample_neighbor -> DataLoader) on a saved temporal graph folder: one JSON line with
batches/s and sampled edges and nodes per batch. Run with the DGL peer env's python by
benchmarks/temporal_sampling.py; numbers are comparable only within one run of that script.

Folder (written by temporal_sampling.py): indptr.npy (int64 [N+1]), indices.npy ([E]),
edge_time.npy (int64 [E], in CSC order), seeds.npy and seed_time.npy (int64, batch order).
GraphBolt keeps an edge only when its time is strictly smaller than the seed's, gnnsys when it
is not larger: the caller passes ``--time-offset 1`` so both keep the same edges.
"""

import argparse
import json
import os
import time

import dgl
import dgl.graphbolt as gb
import numpy as np
import torch


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder")
    p.add_argument("--batches", type=int, default=20, help="timed batches (after the warm-up)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--fanout", default="10,10", help="first hop first (PyG order)")
    p.add_argument("--time-offset", type=int, default=1, help="added to every seed time")
    args = p.parse_args()

    def arr(name):
        return torch.from_numpy(np.load(os.path.join(args.folder, f"{name}.npy")))

    t0 = time.perf_counter()
    graph = gb.fused_csc_sampling_graph(
        arr("indptr"), arr("indices").long(), edge_attributes={"timestamp": arr("edge_time")}
    )
    seeds, seed_time = arr("seeds"), arr("seed_time") + args.time_offset
    need = (args.warmup + args.batches) * args.batch_size
    if seeds.numel() < need:
        raise SystemExit(f"the folder holds {seeds.numel()} seeds, {need} needed")
    items = gb.ItemSet((seeds[:need], seed_time[:need]), names=("seed_nodes", "timestamp"))
    fanouts = [int(f) for f in args.fanout.split(",")][::-1]  # GraphBolt: outermost first
    pipe = gb.ItemSampler(items, batch_size=args.batch_size, shuffle=False)
    pipe = pipe.temporal_sample_neighbor(graph, fanouts, edge_timestamp_attr_name="timestamp")
    it = iter(gb.DataLoader(pipe, num_workers=0))
    load_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        next(it)
    t0 = time.perf_counter()
    edges = nodes = 0
    for _ in range(args.batches):
        mb = next(it)
        edges += sum(int(s.sampled_csc.indices.numel()) for s in mb.sampled_subgraphs)
        nodes += int(mb.sampled_subgraphs[0].original_row_node_ids.numel())
    s = time.perf_counter() - t0
    print(json.dumps({
        "system": "graphbolt", "version": dgl.__version__, "sampler": "temporal",
        "strategy": "uniform", "threads": torch.get_num_threads(),
        "batches_per_s": round(args.batches / s, 3),
        "sampled_edges_per_s": round(edges / s, 1),
        "sampled_edges_per_batch": round(edges / args.batches, 1),
        "sampled_nodes_per_batch": round(nodes / args.batches, 1),
        "load_s": round(load_s, 2),
    }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
