"""gnnsys's drop-in for PyG's legacy ``NeighborSampler`` against PyG's own (torch-sparse's
``sample_adj``), same graph, same process, rounds interleaved: batches/s of ``(batch_size,
n_id, adjs)`` batches (ids only, as the legacy sampler yields; no features). Needs PyG's
``NeighborSampler`` to run (torch-sparse: the PyG env of ../shared/peers, with this repository
on PYTHONPATH); without it only gnnsys's rows are printed.

Usage:
    PYTHONPATH=. /tmp/gnnsys-peers/pyg/bin/python benchmarks/legacy_sampler.py --graph rmat20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loader_throughput import time_iter  # noqa: E402


def _edge_index(name: str) -> torch.Tensor:
    from gnnsys.datasets import synthetic

    return synthetic(name, seed=0).graph.to_edge_index()


def _rate(loader: Any, batches: int, warmup: int) -> float:
    """Batches/s of ``loader`` over ``batches`` after ``warmup`` (``loader_throughput``'s loop)."""
    r = time_iter(lambda: iter(loader), batches, warmup, lambda b: int(b[1].numel()))
    return batches / r["seconds"]


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--graph", default="rmat20", help="a gnnsys synthetic name")
    p.add_argument("--sizes", default="15,10,5")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="gnnsys loader threads (0: all)")
    args = p.parse_args(argv)
    for name in ("batches", "batch_size", "rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    from gnnsys.loaders.pyg import NeighborSampler

    try:
        import torch_sparse  # noqa: F401
        from torch_geometric.loader import NeighborSampler as PygNeighborSampler
    except ImportError:
        PygNeighborSampler = None
    edge_index = _edge_index(args.graph)
    sizes = [int(s) for s in args.sizes.split(",")]
    n = int(edge_index.max()) + 1
    seeds = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:200_000]
    print(json.dumps({"graph": args.graph, "num_nodes": n, "num_edges": int(edge_index.shape[1]),
                      "sizes": sizes, "batch_size": args.batch_size, "batches": args.batches,
                      "cpu_count": os.cpu_count(), "torch": torch.__version__,
                      "pyg_peer": PygNeighborSampler is not None}))  # fmt: skip
    extra = {"num_workers": args.threads} if args.threads else {}
    ours = NeighborSampler(edge_index, sizes, node_idx=seeds, batch_size=args.batch_size,
                           shuffle=True, seed=0, **extra)  # fmt: skip
    theirs = None
    if PygNeighborSampler is not None:
        torch.manual_seed(0)
        theirs = PygNeighborSampler(edge_index, sizes, node_idx=seeds, num_nodes=n,
                                    batch_size=args.batch_size, shuffle=True)  # fmt: skip
    rates: Dict[str, List[float]] = {"gnnsys": [], "pyg": []}
    for rnd in range(args.rounds):
        for name, loader in (("gnnsys", ours), ("pyg", theirs)):
            if loader is None:
                continue
            r = _rate(loader, args.batches, args.warmup)
            rates[name].append(r)
            print(json.dumps({"system": name, "round": rnd, "batches_per_s": round(r, 3)}))
    for name, v in rates.items():
        if v:
            print(json.dumps({"system": name, "batches_per_s_range": [min(v), max(v)],
                              "median": round(statistics.median(v), 3)}))  # fmt: skip
    if rates["pyg"]:
        ratios = [round(a / b, 3) for a, b in zip(rates["gnnsys"], rates["pyg"])]
        print(json.dumps({"ratio": "gnnsys / pyg", "per_round": ratios,
                          "range": [min(ratios), max(ratios)]}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
