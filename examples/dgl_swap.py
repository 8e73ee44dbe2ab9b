"""The DGL swap: a DGL GraphSAGE training script where only the data-loading import changes.

    - import dgl.dataloading as dataloading
    + from gnnsys.loaders import dgl as dataloading

Everything else is the DGL script as written: ``NeighborSampler`` fanouts input layer first,
``DataLoader`` yielding ``(input_nodes, output_nodes, blocks)``, features in
``blocks[0].srcdata``, labels in ``blocks[-1].dstdata``. Where dgl imports (torch <= 2.2),
the graph is a DGL graph, the blocks are real DGL blocks and the layers are ``dgl.nn.SAGEConv``;
elsewhere the graph is a ``gnnsys.Graph``, the blocks ``gnnsys.Block`` and the layers
``gnnsys.nn.SAGEConv`` (same signature).

Usage:
    python examples/dgl_swap.py                      # synthetic "tiny", a few seconds
    python examples/dgl_swap.py --dataset mini --epochs 5
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from gnnsys.datasets import synthetic
from gnnsys.loaders import dgl as dataloading  # was: import dgl.dataloading as dataloading

try:  # the model code of a DGL user, unchanged
    import dgl
    import dgl.nn as dglnn
except Exception:  # no dgl for this torch: gnnsys.nn has the same layer signatures
    dgl = None
    from gnnsys import nn as dglnn


class SAGE(nn.Module):
    def __init__(self, in_feats: int, hidden: int, out_feats: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [dglnn.SAGEConv(in_feats, hidden, "mean"), dglnn.SAGEConv(hidden, out_feats, "mean")]
        )
        self.dropout = nn.Dropout(0.5)

    def forward(self, blocks: list, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, (layer, block) in enumerate(zip(self.layers, blocks)):
            h = layer(block, h)
            if i != len(self.layers) - 1:
                h = self.dropout(F.relu(h))
        return h


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="tiny", help="a gnnsys synthetic dataset (tiny, mini)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--fanout", default="10,10", help="DGL order: input layer first")
    args = p.parse_args()

    ds = synthetic(args.dataset)
    if dgl is not None:
        src, dst = ds.graph.to_edge_index()
        g = dgl.graph((src, dst), num_nodes=ds.num_nodes)
    else:
        g = ds.graph
    g.ndata["feat"], g.ndata["label"] = ds.x, ds.y

    torch.manual_seed(0)
    model = SAGE(ds.num_features, 128, ds.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    fanouts = [int(f) for f in args.fanout.split(",")]
    sampler = dataloading.NeighborSampler(
        fanouts, prefetch_node_feats=["feat"], prefetch_labels=["label"]
    )
    train_loader = dataloading.DataLoader(
        g, ds.train_idx, sampler, batch_size=args.batch_size, shuffle=True, drop_last=False
    )
    full = dataloading.MultiLayerFullNeighborSampler(
        len(fanouts), prefetch_node_feats=["feat"], prefetch_labels=["label"]
    )
    val_loader = dataloading.DataLoader(g, ds.val_idx, full, batch_size=1024)

    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        model.train()
        for _input_nodes, _output_nodes, blocks in train_loader:
            logits = model(blocks, blocks[0].srcdata["feat"])
            loss = F.cross_entropy(logits, blocks[-1].dstdata["label"])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for _input_nodes, _output_nodes, blocks in val_loader:
                pred = model(blocks, blocks[0].srcdata["feat"]).argmax(1)
                correct += int((pred == blocks[-1].dstdata["label"]).sum())
                total += pred.numel()
        print(
            f"epoch {epoch}: loss {loss.item():.3f}  val acc {correct / total:.3f}  "
            f"({time.perf_counter() - t0:.1f}s, blocks: {type(blocks[0]).__module__})"
        )


if __name__ == "__main__":
    main()
