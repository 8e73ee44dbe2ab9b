"""Time DGL GraphBolt's CPU pipeline (ItemSampler -> sample_neighbor -> fetch_feature) on a
heterograph."""

import dgl
import dgl.graphbolt as gb
import torch
from hetero_common import load, parse_args, report, time_batches

args = parse_args()
g = load(args.graph)
dg = dgl.heterograph(
    {et: (torch.from_numpy(ei[0]), torch.from_numpy(ei[1])) for et, ei in g["edges"].items()},
    num_nodes_dict=g["meta"]["node_types"],
)
graph = gb.from_dglgraph(dg, is_homogeneous=False)
target = g["meta"]["target"]
features = gb.BasicFeatureStore(
    {("node", target, "feat"): gb.TorchBasedFeature(torch.from_numpy(g["x"]))}
)
labels = torch.from_numpy(g["y"])
fanouts = [torch.LongTensor([int(f)]) for f in args.fanout.split(",")][::-1]
torch.manual_seed(0)
items = gb.ItemSetDict({target: gb.ItemSet(torch.from_numpy(g["train_idx"]), names="seed_nodes")})
pipe = gb.ItemSampler(items, batch_size=args.batch_size, shuffle=True)
pipe = pipe.sample_neighbor(graph, fanouts)
pipe = pipe.fetch_feature(features, node_feature_keys={target: ["feat"]})
loader = gb.DataLoader(pipe, num_workers=args.workers)


def count(mb):
    x = mb.node_features[(target, "feat")]
    labels[mb.seed_nodes[target]]  # the seeds' labels, as a training step reads them
    assert x.shape[0] == mb.input_nodes[target].numel()
    return sum(v.numel() for v in mb.input_nodes.values())


seconds, nodes = time_batches(loader, args.batches, count)
report("dgl-graphbolt", dgl.__version__, args, seconds, nodes)
