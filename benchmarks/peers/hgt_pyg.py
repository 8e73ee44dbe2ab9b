"""Time PyG's HGTLoader on HeteroData (torch-sparse's hgt_sample). ``--fanout`` is HGT's
``num_samples`` per iteration, the same for every node type."""

import torch
import torch_geometric
from hetero_common import load, parse_args, pyg_hetero_data, report, time_batches
from torch_geometric.loader import HGTLoader

args = parse_args()
g = load(args.graph)
data = pyg_hetero_data(g)
target = g["meta"]["target"]
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


def count(b):
    assert b[target].x.shape[0] == b[target].n_id.numel()
    return sum(b[t].n_id.numel() for t in b.node_types)


seconds, nodes = time_batches(loader, args.batches, count)
report("pyg", torch_geometric.__version__, args, seconds, nodes)
