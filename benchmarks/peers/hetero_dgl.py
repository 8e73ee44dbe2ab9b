"""Time DGL's DataLoader + NeighborSampler on a heterograph (CPU sampling)."""

import time

import dgl
import torch
from hetero_common import Batches, load, parse_args, report

args = parse_args()
g = load(args.graph)
graph = dgl.heterograph(
    {et: (torch.from_numpy(ei[0]), torch.from_numpy(ei[1])) for et, ei in g["edges"].items()},
    num_nodes_dict=g["meta"]["node_types"],
)
target = g["meta"]["target"]
graph.nodes[target].data["feat"] = torch.from_numpy(g["x"])
graph.nodes[target].data["label"] = torch.from_numpy(g["y"])
graph.create_formats_()
fanout = [int(f) for f in args.fanout.split(",")][::-1]  # DGL lists the input layer first
sampler = dgl.dataloading.NeighborSampler(
    fanout, prefetch_node_feats={target: ["feat"]}, prefetch_labels={target: ["label"]}
)
torch.manual_seed(0)
loader = dgl.dataloading.DataLoader(
    graph,
    {target: torch.from_numpy(g["train_idx"])},
    sampler,
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
    inp, out, blocks = it.next()
    assert blocks[0].srcdata["feat"][target].shape[0] == inp[target].numel()
    nodes += sum(v.numel() for v in inp.values())
report("dgl", dgl.__version__, args, time.perf_counter() - t0, nodes)
