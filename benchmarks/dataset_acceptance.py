"""Is a homogeneous synthetic dataset learnable from structure? Full-batch GraphSAGE vs an MLP.

The synthetic generators plant communities so that averaging neighbours helps: a 2-layer
GraphSAGE trained full batch should beat an MLP on the node features alone by a wide margin.
Prints one JSON line per model and a summary line (test accuracy at the best validation epoch),
and appends them to ``--out`` when given.

Usage:
    python benchmarks/dataset_acceptance.py --dataset mini --epochs 100 \\
        --out benchmarks/results/cpu-2core-vm_mini_acceptance.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F


def emit(row: Dict[str, Any], out: Optional[str]) -> None:
    line = json.dumps(row)
    print(line, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


def train(model_kind: str, data: Any, epochs: int, hidden: int, seed: int) -> Dict[str, Any]:
    """Full-batch training; returns test accuracy at the best validation epoch."""
    from torch_geometric.nn import MLP, GraphSAGE

    torch.manual_seed(seed)
    classes = int(data.y.max()) + 1
    if model_kind == "sage":
        model = GraphSAGE(data.num_features, hidden, num_layers=2, out_channels=classes,
                          dropout=0.5)  # fmt: skip
    else:
        model = MLP([data.num_features, hidden, classes], dropout=0.5)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)

    def forward():
        return model(data.x, data.edge_index) if model_kind == "sage" else model(data.x)

    best_val, test_at_best, best_epoch = -1.0, 0.0, 0
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        opt.zero_grad()
        F.cross_entropy(forward()[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = forward().argmax(-1)
        val = float((pred[data.val_mask] == data.y[data.val_mask]).float().mean())
        test = float((pred[data.test_mask] == data.y[data.test_mask]).float().mean())
        if val > best_val:
            best_val, test_at_best, best_epoch = val, test, epoch
    return {
        "model": model_kind,
        "test_acc_at_best_val": round(test_at_best, 4),
        "best_val_acc": round(best_val, 4),
        "best_epoch": best_epoch,
        "last_test_acc": round(test, 4),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mini", help="a synthetic name (tiny, mini, products)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="append the JSON lines to this file")
    args = p.parse_args(argv)
    from gnnsys.datasets import synthetic

    data = synthetic(args.dataset, seed=args.seed).to_pyg()
    common = {"benchmark": "dataset_acceptance", "dataset": f"synthetic:{args.dataset}",
              "epochs": args.epochs, "hidden": args.hidden, "seed": args.seed,
              "cpu_count": os.cpu_count(), "torch": torch.__version__,
              "command": "python benchmarks/dataset_acceptance.py " + " ".join(
                  sys.argv[1:] if argv is None else argv)}  # fmt: skip
    rows = {}
    for kind in ("sage", "mlp"):
        rows[kind] = {**common, **train(kind, data, args.epochs, args.hidden, args.seed)}
        emit(rows[kind], args.out)
    gap = rows["sage"]["test_acc_at_best_val"] - rows["mlp"]["test_acc_at_best_val"]
    emit({**common, "summary": True, "sage_minus_mlp_points": round(100 * gap, 1)}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
