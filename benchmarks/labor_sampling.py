"""LABOR-0 vs neighbour sampling: sampled input nodes per batch and batches/s, gnnsys's DGL
front (``LaborSampler`` / ``NeighborSampler``) against DGL 2.1's own, rounds interleaved.

LABOR's point is fewer distinct nodes per batch for the same per-destination fanout (fewer
feature rows to gather). Prints one JSON line per (round, system, sampler), then a summary
line with the ranges over the rounds of gnnsys's and DGL's labor/neighbor node ratios and of
gnnsys-labor / DGL-labor batches/s.

Usage:
    python benchmarks/labor_sampling.py --graph rmat20 --rounds 3
    python benchmarks/labor_sampling.py --graph tiny --rounds 1 --batches 5 --no-peer
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from loader_throughput import load, resolve_folder  # noqa: E402

PEER_DGL_PYTHON = os.environ.get("GNNSYS_PEER_DGL", "/tmp/gnnsys-peers/dgl/bin/python")


def run_gnnsys(graph: Any, seeds: torch.Tensor, args: Any) -> List[Dict[str, Any]]:
    from gnnsys.loaders import dgl as dl

    fanout = [int(f) for f in args.fanout.split(",")][::-1]
    feats = {"prefetch_node_feats": ["feat"], "prefetch_labels": ["label"]}
    rows = []
    for name, sampler in (
        ("neighbor", dl.NeighborSampler(fanout, **feats)),
        ("labor", dl.LaborSampler(fanout, **feats)),
    ):
        loader = dl.DataLoader(graph, seeds, sampler, batch_size=args.batch_size, shuffle=True,
                               seed=0, block_type="gnnsys")  # fmt: skip
        it = iter(loader)
        for _ in range(3):
            next(it)
        t0 = time.perf_counter()
        nodes = 0
        for _ in range(args.batches):
            inp, _, _ = next(it)
            nodes += inp.numel()
        s = time.perf_counter() - t0
        rows.append({"system": "gnnsys", "sampler": name,
                     "batches_per_s": round(args.batches / s, 3),
                     "nodes_per_batch": round(nodes / args.batches, 1)})  # fmt: skip
    return rows


def run_dgl(folder: Path, args: Any) -> List[Dict[str, Any]]:
    script = HERE / "peers" / "labor_dgl.py"
    if not Path(args.peer_python).exists():
        return [{"system": "dgl", "skipped": True, "reason": f"no {args.peer_python}"}]
    cmd = [args.peer_python, str(script), str(folder), "--batches", str(args.batches),
           "--batch-size", str(args.batch_size), "--fanout", args.fanout]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.peer_timeout)
    rows = []
    for line in proc.stdout.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    if not rows:
        tail = " | ".join((proc.stderr or "").strip().splitlines()[-3:])
        rows = [{"system": "dgl", "skipped": True, "reason": f"exit {proc.returncode}: {tail}"}]
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--graph", default="rmat20", help="a saved folder or a synthetic name")
    p.add_argument("--fanout", default="15,10,5", help="first hop first")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--peer-python", default=PEER_DGL_PYTHON)
    p.add_argument("--peer-timeout", type=int, default=1800)
    args = p.parse_args(argv)
    from gnnsys.graph import Graph

    folder = resolve_folder(args.graph)
    arr = load(folder)
    ei = torch.stack([torch.from_numpy(arr["src"]), torch.from_numpy(arr["dst"])])
    graph = Graph.from_edge_index(ei, int(arr["x"].shape[0]))
    graph.ndata["feat"] = torch.from_numpy(arr["x"])
    graph.ndata["label"] = torch.from_numpy(arr["y"])
    seeds = torch.from_numpy(arr["train_idx"])
    common = {"graph": args.graph, "fanout": args.fanout, "batch_size": args.batch_size,
              "batches": args.batches, "threads": torch.get_num_threads()}  # fmt: skip
    by: Dict[str, List[Dict[str, Any]]] = {}
    for r in range(args.rounds):
        rows = run_gnnsys(graph, seeds, args)
        if not args.no_peer:
            rows += run_dgl(folder, args)
        for row in rows:
            print(json.dumps({"round": r, **common, **row}), flush=True)
            if not row.get("skipped"):
                by.setdefault(f"{row['system']}-{row['sampler']}", []).append(row)

    def ratios(a: str, b: str, field: str) -> Optional[List[float]]:
        if a not in by or b not in by:
            return None
        vals = [x[field] / y[field] for x, y in zip(by[a], by[b]) if y[field]]
        return [round(min(vals), 3), round(max(vals), 3)] if vals else None

    print(json.dumps({
        "summary": "labor_sampling", **common, "rounds": args.rounds,
        "gnnsys_labor_over_neighbor_nodes": ratios("gnnsys-labor", "gnnsys-neighbor",
                                                   "nodes_per_batch"),
        "dgl_labor_over_neighbor_nodes": ratios("dgl-labor", "dgl-neighbor", "nodes_per_batch"),
        "gnnsys_labor_over_dgl_labor_batches_per_s": ratios("gnnsys-labor", "dgl-labor",
                                                            "batches_per_s"),
        "gnnsys_labor_over_dgl_labor_nodes": ratios("gnnsys-labor", "dgl-labor",
                                                    "nodes_per_batch"),
        "command": "python benchmarks/labor_sampling.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
    }), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
