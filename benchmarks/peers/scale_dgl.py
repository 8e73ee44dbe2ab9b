"""DGL's DataLoader + NeighborSampler on a gnnsys CSC dataset folder (run in the DGL peer env).

The graph is built from the folder's CSC arrays as DGL takes them (``("csc", (indptr, indices,
[]))``, int64 ids), features memory-mapped as float16 and advised MADV_RANDOM as gnnsys does (as gnnsys
reads them); batches of random training seeds (seed 0) as benchmarks/scale.py draws them.
Prints one JSON line: batches/s, sampled nodes per batch, peak RSS.
"""

import argparse
import json
import time
import warnings

import dgl
import numpy as np
import torch


def advise_random(t):
    """madvise(MADV_RANDOM) on the map behind ``t``, as gnnsys's load_folder does."""
    import ctypes
    import mmap

    ptr, n = t.data_ptr(), t.numel() * t.element_size()
    start = ptr - ptr % mmap.PAGESIZE
    ctypes.CDLL(None).madvise(
        ctypes.c_void_p(start), ctypes.c_size_t(n + ptr - start), mmap.MADV_RANDOM
    )


def vm(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


p = argparse.ArgumentParser()
p.add_argument("--folder", required=True)
p.add_argument("--fanout", default="15,10,5")
p.add_argument("--batch-size", type=int, default=1024)
p.add_argument("--batches", type=int, default=30)
a = p.parse_args()
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
t0 = time.perf_counter()
indptr = np.load(f"{a.folder}/indptr.npy")  # read fully: DGL keeps its own copy
indices = np.load(f"{a.folder}/indices.npy")
# int64 ids, DGL's default: with int32 ids DGL 2.1's DataLoader (torch 2.2) returned fewer and
# fewer nodes per batch (42k, 12.7k, 6.5k, 4.8k on mini; int64: 42k every batch).
idt = torch.int64
csc = (
    torch.from_numpy(indptr).to(idt),
    torch.from_numpy(indices).to(idt),
    torch.tensor([], dtype=idt),
)
graph = dgl.graph(("csc", csc), num_nodes=indptr.shape[0] - 1, idtype=idt)
graph.ndata["feat"] = torch.from_numpy(np.load(f"{a.folder}/x.npy", mmap_mode="r"))
advise_random(graph.ndata["feat"])  # the same madvise gnnsys applies (no readahead)
graph.ndata["label"] = torch.from_numpy(np.load(f"{a.folder}/y.npy"))
build_s = time.perf_counter() - t0
train = torch.from_numpy(np.load(f"{a.folder}/train_idx.npy"))
g = torch.Generator().manual_seed(0)
need = (a.batches + 3) * a.batch_size
order = train[torch.randperm(train.numel(), generator=g)]
seeds = order.repeat(-(-need // order.numel()))[:need].to(idt)  # as scale.py: cycled when short
fanout = [int(f) for f in a.fanout.split(",")][::-1]  # DGL lists the input layer first
sampler = dgl.dataloading.NeighborSampler(
    fanout, prefetch_node_feats=["feat"], prefetch_labels=["label"]
)
loader = dgl.dataloading.DataLoader(graph, seeds, sampler, batch_size=a.batch_size, shuffle=False)
it = iter(loader)
for _ in range(3):
    next(it)
t1 = time.perf_counter()
nodes = 0
for _ in range(a.batches):
    inp, out, blocks = next(it)
    assert blocks[0].srcdata["feat"].shape[0] == inp.numel()
    nodes += inp.numel()
sec = time.perf_counter() - t1
print(
    json.dumps(
        {
            "version": dgl.__version__,
            "build_seconds": round(build_s, 2),
            "batches": a.batches,
            "batches_per_s": round(a.batches / sec, 3),
            "sampled_nodes_per_batch": nodes // a.batches,
            "vmhwm_bytes": vm("VmHWM"),
            "vmrss_bytes": vm("VmRSS"),
        }
    )
)
