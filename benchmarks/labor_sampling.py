"""LABOR-0 / LABOR-i vs neighbour sampling: sampled input nodes per batch (and per hop) and
batches/s, gnnsys's DGL front (``LaborSampler`` / ``NeighborSampler``) against DGL 2.1's own
with the same settings and GraphBolt 2.1's ``LayerNeighborSampler`` (LABOR-0) /
``NeighborSampler``, rounds interleaved.

LABOR's point is fewer distinct nodes per batch for the same per-destination fanout (fewer
feature rows to gather); LABOR-i (``--importance-sampling i``, several as ``0,1,-1``) fewer
still. Prints one JSON line per (round, system, sampler; sampler ``labor`` is LABOR-0,
``labor-i`` LABOR-i, ``labor-*`` importance_sampling=-1), then a summary line with the ranges over the rounds of the node ratios
(each LABOR variant over neighbour sampling, gnnsys over DGL) and of gnnsys / DGL batches/s.

Usage:
    python benchmarks/labor_sampling.py --graph rmat20 --rounds 3 --importance-sampling 0,1,-1
    python benchmarks/labor_sampling.py --graph products --rounds 3 --importance-sampling 0,1,-1
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


def importance_list(text: str) -> List[int]:
    """``--importance-sampling`` as ints (0: LABOR-0, i: LABOR-i, -1: to convergence)."""
    return [int(v) for v in text.split(",")]


def sampler_name(i: int) -> str:
    """``labor`` for LABOR-0 (the name earlier results use), ``labor-i``, or ``labor-*`` for
    -1 (the paper's LABOR-*: iterated to convergence)."""
    return "labor" if i == 0 else f"labor-{i}" if i > 0 else "labor-*"


def summary_tag(i: int) -> str:
    """The summary's name of a variant: labor (LABOR-0), labor1, labor_star."""
    return "labor" if i == 0 else f"labor{i}" if i > 0 else "labor_star"


def run_gnnsys(graph: Any, seeds: torch.Tensor, args: Any) -> List[Dict[str, Any]]:
    from gnnsys.loaders import dgl as dl

    fanout = [int(f) for f in args.fanout.split(",")][::-1]
    feats = {"prefetch_node_feats": ["feat"], "prefetch_labels": ["label"]}
    samplers = [("neighbor", dl.NeighborSampler(fanout, **feats))]
    for i in importance_list(args.importance_sampling):
        labor = dl.LaborSampler(fanout, importance_sampling=i,
                                batch_dependency=args.batch_dependency, **feats)  # fmt: skip
        samplers.append((sampler_name(i), labor))
    rows = []
    for name, sampler in samplers:
        loader = dl.DataLoader(graph, seeds, sampler, batch_size=args.batch_size, shuffle=True,
                               seed=0, block_type="gnnsys")  # fmt: skip
        it = iter(loader)
        for _ in range(3):
            next(it)
        t0 = time.perf_counter()
        nodes = 0
        hops = [0] * len(fanout)
        for _ in range(args.batches):
            inp, _, blocks = next(it)
            nodes += inp.numel()
            for h, b in enumerate(reversed(blocks)):  # hop 1 (into the seeds) first
                hops[h] += b.num_src_nodes() - b.num_dst_nodes()
        s = time.perf_counter() - t0
        rows.append({"system": "gnnsys", "sampler": name,
                     "batches_per_s": round(args.batches / s, 3),
                     "nodes_per_batch": round(nodes / args.batches, 1),
                     "new_nodes_per_hop": [round(x / args.batches, 1) for x in hops]})  # fmt: skip
    return rows


def run_peer(system: str, folder: Path, args: Any) -> List[Dict[str, Any]]:
    """DGL's DataLoader samplers (``dgl``) or GraphBolt's datapipe (``graphbolt``: LABOR-0 and
    neighbour sampling only, its 2.1 sampler has no importance sampling) in the peer env."""
    if not Path(args.peer_python).exists():
        return [{"system": system, "skipped": True, "reason": f"no {args.peer_python}"}]
    cmd = [args.peer_python, str(HERE / "peers" / f"labor_{system}.py"), str(folder),
           "--batches", str(args.batches), "--batch-size", str(args.batch_size),
           "--fanout", args.fanout]  # fmt: skip
    if system == "dgl":
        cmd += ["--importance-sampling", args.importance_sampling,
                "--batch-dependency", str(args.batch_dependency)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.peer_timeout)
    rows = []
    for line in proc.stdout.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    if not rows:
        tail = " | ".join((proc.stderr or "").strip().splitlines()[-3:])
        rows = [{"system": system, "skipped": True, "reason": f"exit {proc.returncode}: {tail}"}]
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--graph", default="rmat20", help="a saved folder or a synthetic name")
    p.add_argument("--fanout", default="15,10,5", help="first hop first")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--importance-sampling",
        default="0",
        help="LABOR variants to run, comma-separated: 0 (LABOR-0), i (LABOR-i), -1",
    )
    p.add_argument("--batch-dependency", type=int, default=1)
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
    importance_list(args.importance_sampling)  # fails early on a bad list
    common = {"graph": args.graph, "fanout": args.fanout, "batch_size": args.batch_size,
              "batches": args.batches, "batch_dependency": args.batch_dependency,
              "threads": torch.get_num_threads()}  # fmt: skip
    by: Dict[str, List[Dict[str, Any]]] = {}
    for r in range(args.rounds):
        rows = run_gnnsys(graph, seeds, args)
        if not args.no_peer:
            rows += run_peer("dgl", folder, args)
            rows += run_peer("graphbolt", folder, args)
        for row in rows:
            print(json.dumps({"round": r, **common, **row}), flush=True)
            if not row.get("skipped"):
                by.setdefault(f"{row['system']}-{row['sampler']}", []).append(row)

    def ratios(a: str, b: str, field: str) -> Optional[List[float]]:
        if a not in by or b not in by:
            return None
        vals = [x[field] / y[field] for x, y in zip(by[a], by[b]) if y[field]]
        return [round(min(vals), 3), round(max(vals), 3)] if vals else None

    summary: Dict[str, Any] = {"summary": "labor_sampling", **common, "rounds": args.rounds}
    for i in importance_list(args.importance_sampling):
        name, tag = sampler_name(i), summary_tag(i)
        for system in ("gnnsys", "dgl", "graphbolt"):
            summary[f"{system}_{tag}_over_neighbor_nodes"] = ratios(
                f"{system}-{name}", f"{system}-neighbor", "nodes_per_batch"
            )
        for peer in ("dgl", "graphbolt"):
            for field in ("batches_per_s", "nodes"):
                summary[f"gnnsys_{tag}_over_{peer}_{tag}_{field}"] = ratios(
                    f"gnnsys-{name}",
                    f"{peer}-{name}",
                    "nodes_per_batch" if field == "nodes" else field,
                )
    summary["gnnsys_neighbor_over_graphbolt_neighbor_batches_per_s"] = ratios(
        "gnnsys-neighbor", "graphbolt-neighbor", "batches_per_s"
    )
    summary["command"] = "python benchmarks/labor_sampling.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
