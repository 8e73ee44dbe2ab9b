"""Mini-batch training through the gnnsys heterogeneous loader vs full-batch training of the
same model (PyG ``to_hetero`` GraphSAGE with per-type inputs, ``gnnsys.models.HeteroSAGE``).

``--loader``: ``neighbor`` (gnnsys ``NeighborLoader``, ``--fanout``), ``hgt`` (gnnsys
``HGTLoader``, ``--num-samples`` per iteration for every node type) or ``pyg-hgt`` (PyG's own
``HGTLoader``, for comparison: needs torch-sparse, e.g. the PyG env of ../shared/peers with
this repository on PYTHONPATH).

Both report test accuracy at the best validation epoch; full batch takes one step per epoch,
so it gets more epochs. Prints one JSON line (and appends it to ``--out``).

Usage:
    python benchmarks/hetero_minibatch_accuracy.py --dataset mini-mag --full-epochs 150 \\
        --mini-epochs 10 --out benchmarks/results/cpu-2core-vm_hetero_minibatch_accuracy.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F


def _evaluate(model: Any, data: Any, target: str, all_ids: Dict[str, torch.Tensor]):
    model.eval()
    with torch.no_grad():
        pred = model(data.x_dict, data.edge_index_dict, all_ids)[target].argmax(-1)
    y = data[target].y
    return tuple(
        float((pred[data[target][m]] == y[data[target][m]]).float().mean())
        for m in ("val_mask", "test_mask")
    )


def train_both(
    name: str,
    full_epochs: int,
    mini_epochs: int,
    hidden: int = 64,
    fanout: Sequence[int] = (10, 10),
    batch_size: int = 512,
    seed: int = 0,
    loader_kind: str = "neighbor",
    num_samples: Sequence[int] = (512, 512),
) -> Tuple[float, float]:
    """(full-batch, mini-batch) test accuracy at the best validation epoch."""
    from gnnsys.datasets import synthetic
    from gnnsys.models import HeteroSAGE

    ds = synthetic(name, seed=0)
    data = ds.to_pyg()
    t = ds.target
    all_ids = {k: torch.arange(n) for k, n in ds.num_nodes_dict.items()}
    in_dims = {k: x.shape[1] for k, x in ds.x_dict.items()}

    def fresh():
        torch.manual_seed(seed)
        model = HeteroSAGE(data.metadata(), ds.num_nodes_dict, in_dims, hidden, ds.num_classes)
        with torch.no_grad():  # materialise the lazy input sizes
            model(data.x_dict, data.edge_index_dict, all_ids)
        return model, torch.optim.Adam(model.parameters(), lr=0.01)

    results = []
    for mode in ("full", "mini"):
        model, opt = fresh()
        loader = _loader(loader_kind, data, t, ds.train_idx, fanout, num_samples, batch_size,
                         seed)  # fmt: skip
        best = (-1.0, 0.0)
        for _ in range(full_epochs if mode == "full" else mini_epochs):
            model.train()
            if mode == "full":
                opt.zero_grad()
                out = model(data.x_dict, data.edge_index_dict, all_ids)[t]
                F.cross_entropy(out[ds.train_idx], ds.y[ds.train_idx]).backward()
                opt.step()
            else:
                for b in loader:
                    bs = b[t].batch_size
                    opt.zero_grad()
                    out = model(b.x_dict, b.edge_index_dict, b.n_id_dict)[t][:bs]
                    F.cross_entropy(out, b[t].y[:bs]).backward()
                    opt.step()
            best = max(best, _evaluate(model, data, t, all_ids))
        results.append(best[1])
    return results[0], results[1]


LOADERS = ("neighbor", "hgt", "pyg-hgt")


def _loader(kind, data, target, seeds, fanout, num_samples, batch_size, seed):
    """The mini-batch loader ``kind`` over the target type's training seeds."""
    if kind == "neighbor":
        from gnnsys.loaders.pyg import NeighborLoader

        return NeighborLoader(data, list(fanout), input_nodes=(target, seeds),
                              batch_size=batch_size, shuffle=True, seed=seed)  # fmt: skip
    if kind == "hgt":
        from gnnsys.loaders.pyg import HGTLoader

        return HGTLoader(data, list(num_samples), input_nodes=(target, seeds),
                         batch_size=batch_size, shuffle=True, seed=seed)  # fmt: skip
    from torch_geometric.loader import HGTLoader as PygHGTLoader

    torch.manual_seed(seed)
    return PygHGTLoader(data, list(num_samples), input_nodes=(target, seeds),
                        batch_size=batch_size, shuffle=True)  # fmt: skip


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mini-mag")
    p.add_argument("--full-epochs", type=int, default=150)
    p.add_argument("--mini-epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--fanout", default="10,10", help="--loader neighbor: per hop")
    p.add_argument("--loader", default="neighbor", choices=LOADERS)
    p.add_argument("--num-samples", default="512,512", help="--loader hgt / pyg-hgt")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    fanout = [int(f) for f in args.fanout.split(",")]
    counts = [int(c) for c in args.num_samples.split(",")]
    full, mini = train_both(args.dataset, args.full_epochs, args.mini_epochs, args.hidden,
                            fanout, args.batch_size, args.seed, args.loader, counts)  # fmt: skip
    row: Dict[str, Any] = {
        "benchmark": "hetero_minibatch_accuracy", "dataset": args.dataset,
        "model": "HeteroSAGE (to_hetero GraphSAGE, 2 layers)", "hidden": args.hidden,
        "loader": args.loader,
        "fanout": fanout if args.loader == "neighbor" else None,
        "num_samples": None if args.loader == "neighbor" else counts,
        "batch_size": args.batch_size, "full_epochs": args.full_epochs,
        "mini_epochs": args.mini_epochs, "seed": args.seed,
        "full_batch_test_acc": round(full, 4), "mini_batch_test_acc": round(mini, 4),
        "mini_minus_full_points": round(100 * (mini - full), 1),
        "seconds": round(time.perf_counter() - t0, 1), "cpu_count": os.cpu_count(),
        "command": "python benchmarks/hetero_minibatch_accuracy.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
    }  # fmt: skip
    line = json.dumps(row)
    print(line, flush=True)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
