"""Time DGL's DataLoader + NeighborSampler on a heterograph (CPU sampling)."""

import dgl
import torch
from hetero_common import load, parse_args, report, time_batches

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


def count(batch):
    inp, out, blocks = batch
    assert blocks[0].srcdata["feat"][target].shape[0] == inp[target].numel()
    return sum(v.numel() for v in inp.values())


seconds, nodes = time_batches(loader, args.batches, count)
report("dgl", dgl.__version__, args, seconds, nodes)
