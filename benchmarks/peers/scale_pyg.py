"""PyG's NeighborLoader (torch-sparse backend) on a gnnsys CSC dataset folder (PyG peer env).

PyG takes the graph as ``adj_t``: a torch-sparse ``SparseTensor`` whose rows are destinations,
which is exactly the folder's CSC (``rowptr=indptr``, ``col=indices``; torch-sparse needs int64
ids, so ``indices`` is widened: 8 bytes an edge). Features and seeds as scale_common gives them;
PyG semantics. Prints one JSON line: batches/s, sampled nodes per batch, peak RSS.
"""

import time

import numpy as np
import torch
import torch_geometric
from scale_common import features, parse_args, report, seeds, time_batches
from torch_geometric.data import Data
from torch_geometric.loader import NeighborLoader
from torch_sparse import SparseTensor

a = parse_args()
t0 = time.perf_counter()
indptr = torch.from_numpy(np.load(f"{a.folder}/indptr.npy", mmap_mode="r"))
col = torch.from_numpy(np.load(f"{a.folder}/indices.npy", mmap_mode="r")).long()
n = indptr.numel() - 1
adj_t = SparseTensor(rowptr=indptr, col=col, sparse_sizes=(n, n), is_sorted=True, trust_data=True)
y = torch.from_numpy(np.load(f"{a.folder}/y.npy"))
data = Data(x=features(a.folder), y=y, adj_t=adj_t, num_nodes=n)
build_s = time.perf_counter() - t0
fanout = [int(f) for f in a.fanout.split(",")]
loader = NeighborLoader(data, num_neighbors=fanout, input_nodes=seeds(a.folder, a),
                        batch_size=a.batch_size)  # fmt: skip
sec, nodes = time_batches(loader, a, lambda batch: batch.num_nodes)
report(torch_geometric.__version__, a, build_s, sec, nodes)
