"""GraphSAGE with PyG's NeighborLoader API, running on gnnsys: the two-line change.

A complete PyG training script. Only the import below differs from stock PyG:

    - from torch_geometric.loader import NeighborLoader
    + from gnnsys.loaders.pyg import NeighborLoader

(the second line of the change: nothing else; no pyg-lib or torch-sparse needed).
``--unified`` adds gnnsys's other two-line change, ``data.x = gnnsys.unified(data.x)``: the
features stay in host memory; with ``device="cuda"`` given to the loader (a gnnsys extension)
each batch's rows are read by the GPU straight from host memory, zero-copy.

    python examples/pyg_two_line_change.py --dataset mini --epochs 5 [--unified]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch_geometric.nn import GraphSAGE

import gnnsys
from gnnsys.loaders.pyg import NeighborLoader  # was: from torch_geometric.loader import ...


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="tiny", choices=["tiny", "mini", "products"])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--fanout", default="15,10")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--unified", action="store_true", help="data.x = gnnsys.unified(data.x)")
    args = p.parse_args()
    torch.manual_seed(args.seed)

    data = gnnsys.datasets.synthetic(args.dataset, seed=0).to_pyg()  # a plain PyG Data
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fanout = [int(f) for f in args.fanout.split(",")]
    extra = {}
    if args.unified:
        data.x = gnnsys.unified(data.x)
        if device.type == "cuda":
            extra["device"] = device  # batches arrive on the GPU; x gathered there zero-copy

    # --- from here on this is an ordinary PyG script -------------------------------------
    train_loader = NeighborLoader(
        data,
        num_neighbors=fanout,
        input_nodes=data.train_mask,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=2,
        **extra,
    )
    eval_loader = NeighborLoader(
        data, num_neighbors=fanout, input_nodes=None, batch_size=4096, shuffle=False, **extra
    )
    num_classes = int(data.y.max()) + 1
    model = GraphSAGE(data.x.shape[1], args.hidden, num_layers=len(fanout),
                      out_channels=num_classes, dropout=0.2).to(device)  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=0.005)

    for epoch in range(1, args.epochs + 1):
        model.train()
        t0, total, count = time.perf_counter(), 0.0, 0
        for batch in train_loader:
            batch = batch.to(device)
            opt.zero_grad()
            out = model(batch.x, batch.edge_index,
                        num_sampled_nodes_per_hop=batch.num_sampled_nodes,
                        num_sampled_edges_per_hop=batch.num_sampled_edges)[: batch.batch_size]  # fmt: skip
            loss = F.cross_entropy(out, batch.y[: batch.batch_size])
            loss.backward()
            opt.step()
            total += loss.item() * batch.batch_size
            count += batch.batch_size
        train_s = time.perf_counter() - t0

        model.eval()
        pred = torch.empty(data.num_nodes, dtype=torch.long)
        with torch.no_grad():
            for batch in eval_loader:
                batch = batch.to(device)
                out = model(batch.x, batch.edge_index)[: batch.batch_size]
                pred[batch.n_id[: batch.batch_size].cpu()] = out.argmax(-1).cpu()
        accs = [float((pred[m] == data.y[m]).float().mean()) for m in
                (data.train_mask, data.val_mask, data.test_mask)]  # fmt: skip
        print(f"epoch {epoch}: loss {total / count:.4f}, train {accs[0]:.4f}, "
              f"val {accs[1]:.4f}, test {accs[2]:.4f} ({train_s:.1f}s/epoch)")  # fmt: skip


if __name__ == "__main__":
    main()
