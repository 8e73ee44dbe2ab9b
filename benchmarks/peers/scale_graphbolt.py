"""DGL 2.1's GraphBolt pipeline (ItemSampler -> sample_neighbor -> fetch_feature) on a gnnsys CSC
dataset folder (run in the DGL peer env).

GraphBolt samples a ``FusedCSCSamplingGraph`` built straight from the folder's CSC arrays (int64
``indptr``, the folder's ``indices`` dtype), both memory-mapped: GraphBolt's own ``OnDiskDataset``
preprocessing would first load the whole edge list. Features come through a
``TorchBasedFeature`` over the mapped float16 table (advised as gnnsys advises it); labels of the
seeds are read as DGL's ``prefetch_labels`` would. Seeds as scale_common gives them. Prints one
JSON line.
"""

import time

import dgl
import dgl.graphbolt as gb
import numpy as np
import torch
from scale_common import features, parse_args, report, seeds, time_batches

a = parse_args()
t0 = time.perf_counter()
indptr = torch.from_numpy(np.load(f"{a.folder}/indptr.npy", mmap_mode="r"))
indices = torch.from_numpy(np.load(f"{a.folder}/indices.npy", mmap_mode="r"))
graph = gb.fused_csc_sampling_graph(indptr, indices)
store = gb.BasicFeatureStore({("node", None, "feat"): gb.TorchBasedFeature(features(a.folder))})
labels = torch.from_numpy(np.load(f"{a.folder}/y.npy", mmap_mode="r"))
build_s = time.perf_counter() - t0
fanout = [torch.LongTensor([int(f)]) for f in a.fanout.split(",")][::-1]  # input layer first
pipe = gb.ItemSampler(gb.ItemSet(seeds(a.folder, a).to(indices.dtype), names="seed_nodes"),
                      batch_size=a.batch_size, shuffle=False)  # fmt: skip
pipe = pipe.sample_neighbor(graph, fanout)
pipe = pipe.fetch_feature(store, node_feature_keys=["feat"])
loader = gb.DataLoader(pipe, num_workers=0)


def count(mb):
    assert mb.node_features["feat"].shape[0] == mb.input_nodes.numel()
    labels[mb.seed_nodes]
    return mb.input_nodes.numel()


sec, nodes = time_batches(loader, a, count)
report(f"graphbolt-{dgl.__version__}", a, build_s, sec, nodes)
