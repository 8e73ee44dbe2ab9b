"""DGL's DataLoader + NeighborSampler on a gnnsys CSC dataset folder (run in the DGL peer env).

The graph is built from the folder's CSC arrays as DGL takes them (``("csc", (indptr, indices,
[]))``) with int64 ids, DGL's default: with int32 ids DGL 2.1's DataLoader (torch 2.2) returned
fewer and fewer nodes per batch (42k, 12.7k, 6.5k, 4.8k on mini; int64: 42k every batch).
Features and seeds as scale_common gives them; DGL semantics. Prints one JSON line.
"""

import time

import dgl
import numpy as np
import torch
from scale_common import features, parse_args, report, seeds, time_batches

a = parse_args()
t0 = time.perf_counter()
indptr = np.load(f"{a.folder}/indptr.npy")  # read fully: DGL keeps its own copy
indices = np.load(f"{a.folder}/indices.npy")
csc = (torch.from_numpy(indptr).long(), torch.from_numpy(indices).long(), torch.tensor([]).long())
graph = dgl.graph(("csc", csc), num_nodes=indptr.shape[0] - 1, idtype=torch.int64)
graph.ndata["feat"] = features(a.folder)
graph.ndata["label"] = torch.from_numpy(np.load(f"{a.folder}/y.npy"))
build_s = time.perf_counter() - t0
fanout = [int(f) for f in a.fanout.split(",")][::-1]  # DGL lists the input layer first
sampler = dgl.dataloading.NeighborSampler(
    fanout, prefetch_node_feats=["feat"], prefetch_labels=["label"]
)
loader = dgl.dataloading.DataLoader(
    graph, seeds(a.folder, a), sampler, batch_size=a.batch_size, shuffle=False
)


def count(batch):
    inp, _, blocks = batch
    assert blocks[0].srcdata["feat"].shape[0] == inp.numel()
    return inp.numel()


sec, nodes = time_batches(loader, a, count)
report(dgl.__version__, a, build_s, sec, nodes)
