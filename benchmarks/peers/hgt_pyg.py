"""Time PyG's HGTLoader on HeteroData (torch-sparse's hgt_sample). ``--fanout`` is HGT's
``num_samples`` per iteration, the same for every node type."""

import time

import torch
import torch_geometric
from hetero_common import Batches, load, parse_args, report
from torch_geometric.data import HeteroData
from torch_geometric.loader import HGTLoader

args = parse_args()
g = load(args.graph)
data = HeteroData()
for t, n in g["meta"]["node_types"].items():
    data[t].num_nodes = n
target = g["meta"]["target"]
data[target].x = torch.from_numpy(g["x"])
data[target].y = torch.from_numpy(g["y"])
for et, ei in g["edges"].items():
    data[et].edge_index = torch.from_numpy(ei)
counts = [int(f) for f in args.fanout.split(",")]
torch.manual_seed(0)
loader = HGTLoader(
    data,
    num_samples=counts,
    input_nodes=(target, torch.from_numpy(g["train_idx"])),
    batch_size=args.batch_size,
    shuffle=True,
    num_workers=args.workers,
)
it = Batches(loader)
for _ in range(3):
    it.next()
t0 = time.perf_counter()
nodes = 0
for _ in range(args.batches):
    b = it.next()
    assert b[target].x.shape[0] == b[target].n_id.numel()
    nodes += sum(b[t].n_id.numel() for t in b.node_types)
report("pyg", torch_geometric.__version__, args, time.perf_counter() - t0, nodes)
