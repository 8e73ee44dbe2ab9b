"""HGT loader throughput: gnnsys's ``HGTLoader`` against PyG's (torch-sparse's ``hgt_sample``) on
the same heterograph, in the same run, rounds interleaved.

The workload of PyG's ``HGTLoader`` docs and ``examples/hetero/to_hetero_mag.py``: seeds are
training papers, ``--num-samples`` nodes of every type per iteration (default 512 x 4), paper
features and labels of every sampled paper gathered. One JSON object per line: a header, one
row per system and round, then each system's range and median and the per-round ratios
(``loader_throughput.summarize``). PyG runs in its own environment
(``benchmarks/peers/hgt_pyg.py``; a missing one gets a line saying so).

Usage:
    python benchmarks/hgt_throughput.py --graph mini-mag --repeat 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loader_throughput import (  # noqa: E402
    HETERO_NAMES,
    _row,
    emit,
    hetero_data,
    load_hetero,
    resolve_hetero_folder,
    run_peer,
    summarize,
    time_iter,
)


def run_gnnsys(data: Any, arrays: Dict[str, Any], args: Any) -> Dict[str, Any]:
    from gnnsys.loaders.pyg import HGTLoader

    t = arrays["meta"]["target"]
    counts = [int(c) for c in args.num_samples.split(",")]
    extra = {"num_threads": args.threads} if args.threads else {}
    loader = HGTLoader(data, num_samples=counts, input_nodes=(t, arrays["train_idx"]),
                       batch_size=args.batch_size, shuffle=True, seed=0, **extra)  # fmt: skip

    def count(b):
        assert b[t].x.shape[0] == b[t].n_id.numel() and b[t].y.shape[0] == b[t].n_id.numel()
        return sum(b[k].n_id.numel() for k in b.node_types)

    r = time_iter(lambda: iter(loader), args.batches, args.warmup, count)
    return _row("gnnsys", "pyg", "gnnsys.loaders.pyg.HGTLoader", args, r, loader.loader.num_threads)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--graph", default="mini-mag", choices=HETERO_NAMES)
    p.add_argument("--num-samples", default="512,512,512,512", help="per iteration, every type")
    p.add_argument("--batches", type=int, default=30, help="timed batches per system")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=0, help="gnnsys loader threads (0: all)")
    p.add_argument("--repeat", type=int, default=3, help="rounds (systems interleaved)")
    p.add_argument("--no-peers", action="store_true", help="gnnsys only")
    p.add_argument("--peer-timeout", type=int, default=900)
    args = p.parse_args(argv)
    for name in ("batches", "batch_size", "repeat"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    t0 = time.perf_counter()
    folder = resolve_hetero_folder(args.graph)
    arrays = load_hetero(folder)
    meta = arrays["meta"]
    data = hetero_data(arrays)
    emit({"graph": str(folder), "num_nodes": meta["node_types"],
          "num_edges": sum(int(ei.shape[1]) for ei in arrays["edges"].values()),
          "edge_types": len(meta["edge_types"]), "seeds": int(arrays["train_idx"].numel()),
          "num_samples": args.num_samples, "batch_size": args.batch_size,
          "setup_seconds": round(time.perf_counter() - t0, 1), "cpu_count": os.cpu_count(),
          "torch": torch.__version__})  # fmt: skip
    # the peer script reads HGT's counts from --fanout
    peer_args = SimpleNamespace(batches=args.batches, batch_size=args.batch_size,
                                fanout=args.num_samples, peer_timeout=args.peer_timeout)  # fmt: skip
    args.fanout = args.num_samples  # (_row's label)
    results: Dict[str, List[Dict[str, Any]]] = {}
    for rnd in range(args.repeat):
        row = run_gnnsys(data, arrays, args)
        row["round"] = rnd
        emit(row)
        results.setdefault("gnnsys-pyg", []).append(row)
        if not args.no_peers:
            row = run_peer("pyg", folder, peer_args, hetero=True, script="hgt_pyg.py")
            row["round"] = rnd
            emit(row)
            if not row.get("skipped"):
                results.setdefault("pyg", []).append(row)
    summarize(results, [("gnnsys-pyg", "pyg")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
