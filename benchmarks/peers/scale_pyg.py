"""PyG's NeighborLoader (torch-sparse backend) on a gnnsys CSC dataset folder (PyG peer env).

PyG takes the graph as ``adj_t``: a torch-sparse ``SparseTensor`` whose rows are destinations,
which is exactly the folder's CSC (``rowptr=indptr``, ``col=indices``; torch-sparse needs int64
ids, so ``indices`` is widened: 8 bytes an edge). Features memory-mapped as float16, batches of
random training seeds (seed 0) as benchmarks/scale.py draws them; PyG semantics. Prints one JSON
line: batches/s, sampled nodes per batch, peak RSS.
"""

import argparse
import json
import time
import warnings

import numpy as np
import torch
import torch_geometric
from torch_geometric.data import Data
from torch_geometric.loader import NeighborLoader
from torch_sparse import SparseTensor


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
indptr = torch.from_numpy(np.load(f"{a.folder}/indptr.npy", mmap_mode="r"))
col = torch.from_numpy(np.load(f"{a.folder}/indices.npy", mmap_mode="r")).long()
n = indptr.numel() - 1
adj_t = SparseTensor(rowptr=indptr, col=col, sparse_sizes=(n, n), is_sorted=True, trust_data=True)
x = torch.from_numpy(np.load(f"{a.folder}/x.npy", mmap_mode="r"))
advise_random(x)  # the same madvise gnnsys applies (no readahead)
y = torch.from_numpy(np.load(f"{a.folder}/y.npy"))
data = Data(x=x, y=y, adj_t=adj_t, num_nodes=n)
build_s = time.perf_counter() - t0
train = torch.from_numpy(np.load(f"{a.folder}/train_idx.npy"))
g = torch.Generator().manual_seed(0)
need = (a.batches + 3) * a.batch_size
order = train[torch.randperm(train.numel(), generator=g)]
seeds = order.repeat(-(-need // order.numel()))[:need]
fanout = [int(f) for f in a.fanout.split(",")]
loader = NeighborLoader(data, num_neighbors=fanout, input_nodes=seeds, batch_size=a.batch_size)
it = iter(loader)
for _ in range(3):
    next(it)
t1 = time.perf_counter()
nodes = 0
for _ in range(a.batches):
    batch = next(it)
    nodes += batch.num_nodes
sec = time.perf_counter() - t1
print(
    json.dumps(
        {
            "version": torch_geometric.__version__,
            "build_seconds": round(build_s, 2),
            "batches": a.batches,
            "batches_per_s": round(a.batches / sec, 3),
            "sampled_nodes_per_batch": nodes // a.batches,
            "vmhwm_bytes": vm("VmHWM"),
            "vmrss_bytes": vm("VmRSS"),
        }
    )
)
