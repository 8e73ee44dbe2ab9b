"""Temporal neighbour sampling throughput: gnnsys's TemporalNeighborSampler through the Loader
against gnnsys's non-temporal NeighborSampler of the same fanout and DGL 2.1 GraphBolt's
TemporalNeighborSampler (peer env), rounds interleaved.

Workload: a synthetic interaction stream (``stream``: 0.9M nodes, 15.7M interactions, both
directions in the graph; or ``mini-stream``); seeds are the destinations (items; ``--seeds
src``: users) of uniformly drawn interactions, each seed's time the interaction's time, in the
same batch order for every system; batches of 1024 seeds, fanout [10, 10], uniform without
replacement. Time rule (edge-level): an edge is usable when its time is not later than the
seed's (gnnsys); GraphBolt keeps edges strictly older, so it gets every seed time + 1 on the
integer timestamps and keeps exactly the same edges. gnnsys also runs ``temporal_strategy=
"last"`` (GraphBolt has no such option).

What is not the same (reported, not hidden): gnnsys samples PyG style (hop 2 expands only the
nodes new in hop 1, one subgraph per seed with nodes deduplicated within it); GraphBolt expands
every node known so far (the seeds again in hop 2) and never deduplicates rows. Each row shows
sampled edges and nodes per batch, and sampled edges/s normalises for the work done.

Prints one JSON line per (round, system, sampler), then a summary line with the ranges over
the rounds; writes them all to ``--out``.

Usage:
    python benchmarks/temporal_sampling.py --graph stream --rounds 3
    python benchmarks/temporal_sampling.py --graph mini-stream --rounds 3 --append
    python benchmarks/temporal_sampling.py --graph tiny-stream --rounds 1 --batches 3 --no-peer
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
PEER_DGL_PYTHON = os.environ.get("GNNSYS_PEER_DGL", "/tmp/gnnsys-peers/dgl/bin/python")
DEFAULT_OUT = HERE / "results" / "cpu-2core-vm_temporal.jsonl"


def prepare(args: Any) -> Dict[str, Any]:
    """The dataset, its gnnsys graph and edge times, the seed workload, and a folder with the
    same arrays for the peer (written once, reused)."""
    from gnnsys.datasets import synthetic
    from gnnsys.datasets.stream import GENERATOR_VERSION
    from gnnsys.datasets.synthetic import default_root

    ds = synthetic(args.graph)
    need = (args.warmup + args.batches) * args.batch_size
    rng = np.random.default_rng([args.seed, 7])
    pick = rng.choice(ds.num_edges, need, replace=need > ds.num_edges)
    ends = ds.dst if args.seeds == "dst" else ds.src
    seeds = ends.numpy()[pick]
    seed_time = ds.t.numpy()[pick]
    name = f"temporal-{args.graph}-{GENERATOR_VERSION}-{args.seeds}-n{need}-s{args.seed}"
    folder = default_root() / "bench" / name
    if not (folder / "done").exists():
        _write_peer_folder(folder, ds, seeds, seed_time)
    return {"ds": ds, "seeds": torch.from_numpy(seeds), "seed_time": seed_time,
            "folder": folder}  # fmt: skip


def _write_peer_folder(folder: Path, ds: Any, seeds: np.ndarray, seed_time: np.ndarray) -> None:
    """indptr, indices, edge_time (CSC order), seeds, seed_time as .npy files, then ``done``."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    g = ds.graph
    np.save(folder / "indptr.npy", g.indptr.numpy())
    np.save(folder / "indices.npy", g.indices.numpy())
    np.save(folder / "edge_time.npy", ds.edge_time.numpy()[g.edge_ids.numpy()])
    np.save(folder / "seeds.npy", seeds.astype(np.int64))
    np.save(folder / "seed_time.npy", seed_time.astype(np.int64))
    (folder / "done").write_text("ok\n")


def gnnsys_samplers(ds: Any, fanout: List[int], unsorted: bool = False) -> List[tuple]:
    """(sampler name, strategy, sampler, temporal?) for every gnnsys configuration timed.

    ``unsorted``: the same edges listed in a random order (a seeded permutation), so no
    destination's in-edges are in time order: ``temporal`` then samples a time-sorted copy
    of the adjacency, and ``temporal-scan`` the graph as it is (the scan of every in-edge)."""
    from gnnsys.graph import Graph
    from gnnsys.loaders.neighbor import NeighborSampler, TemporalNeighborSampler

    g, t = ds.graph, ds.edge_time
    if not unsorted:
        return [
            ("temporal", "uniform", TemporalNeighborSampler(g, fanout, edge_time=t), True),
            ("temporal", "last",
             TemporalNeighborSampler(g, fanout, edge_time=t, temporal_strategy="last"), True),
            ("neighbor-disjoint", "uniform", NeighborSampler(g, fanout, disjoint=True), False),
            ("neighbor", "uniform", NeighborSampler(g, fanout), False),
        ]  # fmt: skip
    ei = ds.edge_index
    perm = torch.from_numpy(np.random.default_rng(11).permutation(ei.shape[1]))
    g = Graph.from_edge_index(ei[:, perm], ds.num_nodes)
    t = t[perm]
    t0 = time.perf_counter()
    copy = TemporalNeighborSampler(g, fanout, edge_time=t)
    copy.setup_s = round(time.perf_counter() - t0, 2)
    scan = TemporalNeighborSampler(g, fanout, edge_time=t, time_sorted_copy=False)
    return [
        ("temporal", "uniform", copy, True),
        ("temporal-scan", "uniform", scan, True),
        ("neighbor-disjoint", "uniform", NeighborSampler(g, fanout, disjoint=True), False),
        ("neighbor", "uniform", NeighborSampler(g, fanout), False),
    ]


def run_gnnsys(sampler: Any, temporal: bool, work: Dict[str, Any], args: Any) -> Dict[str, Any]:
    """Batches/s and sampled edges and nodes per batch through the Loader (no features)."""
    from gnnsys.loaders.loader import Loader

    opts = {"seed_time": work["seed_time"]} if temporal else {}
    loader = Loader(sampler, work["seeds"], batch_size=args.batch_size, shuffle=False, seed=0,
                    **opts)  # fmt: skip
    it = iter(loader)
    for _ in range(args.warmup):
        next(it)
    t0 = time.perf_counter()
    edges = nodes = 0
    for _ in range(args.batches):
        sub = next(it).subgraph
        edges += int(sub.row.numel())
        nodes += int(sub.nodes.numel())
    s = time.perf_counter() - t0
    return {"system": "gnnsys", "threads": loader.num_threads,
            "batches_per_s": round(args.batches / s, 3),
            "sampled_edges_per_s": round(edges / s, 1),
            "sampled_edges_per_batch": round(edges / args.batches, 1),
            "sampled_nodes_per_batch": round(nodes / args.batches, 1)}  # fmt: skip


def run_graphbolt(folder: Path, args: Any) -> Dict[str, Any]:
    """GraphBolt's TemporalNeighborSampler in the DGL peer env (a fresh process per round)."""
    if not Path(args.peer_python).exists():
        return {"system": "graphbolt", "skipped": True, "reason": f"no {args.peer_python}"}
    cmd = [args.peer_python, str(HERE / "peers" / "temporal_graphbolt.py"), str(folder),
           "--batches", str(args.batches), "--warmup", str(args.warmup),
           "--batch-size", str(args.batch_size), "--fanout", args.fanout,
           "--time-offset", "1"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.peer_timeout)
    for line in proc.stdout.splitlines():
        try:
            return json.loads(line)
        except ValueError:
            continue
    tail = " | ".join((proc.stderr or "").strip().splitlines()[-3:])
    return {"system": "graphbolt", "skipped": True, "reason": f"exit {proc.returncode}: {tail}"}


def summary(rows: List[Dict[str, Any]], common: Dict[str, Any]) -> Dict[str, Any]:
    """Ranges over the rounds of the ratios the issue's goals name."""
    by: Dict[str, List[Dict[str, Any]]] = {}
    for row in rows:
        if not row.get("skipped"):
            by.setdefault(f"{row['system']}-{row['sampler']}-{row['strategy']}", []).append(row)

    def ratio(a: str, b: str, field: str) -> Optional[List[float]]:
        if a not in by or b not in by:
            return None
        vals = [x[field] / y[field] for x, y in zip(by[a], by[b]) if y[field]]
        return [round(min(vals), 3), round(max(vals), 3)] if vals else None

    tu, gb = "gnnsys-temporal-uniform", "graphbolt-temporal-uniform"
    return {
        "summary": "temporal_sampling", **common,
        "gnnsys_over_graphbolt_batches_per_s": ratio(tu, gb, "batches_per_s"),
        "sorted_copy_over_scan_batches_per_s": ratio(
            tu, "gnnsys-temporal-scan-uniform", "batches_per_s"
        ),
        "gnnsys_over_graphbolt_edges_per_s": ratio(tu, gb, "sampled_edges_per_s"),
        "gnnsys_over_graphbolt_edges_per_batch": ratio(tu, gb, "sampled_edges_per_batch"),
        "temporal_cost_vs_disjoint_neighbor": ratio("gnnsys-neighbor-disjoint-uniform", tu,
                                                    "batches_per_s"),
        "temporal_cost_vs_neighbor": ratio("gnnsys-neighbor-uniform", tu, "batches_per_s"),
        "temporal_last_cost_vs_disjoint_neighbor": ratio("gnnsys-neighbor-disjoint-uniform",
                                                         "gnnsys-temporal-last", "batches_per_s"),
        "goals": "gnnsys >= 3x GraphBolt; temporal cost <= 1.5x non-temporal (report only)",
    }  # fmt: skip


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--graph", default="stream", choices=["tiny-stream", "mini-stream", "stream"])
    p.add_argument("--seeds", default="dst", choices=["dst", "src"])
    p.add_argument("--fanout", default="10,10", help="first hop first")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--batches", type=int, default=20, help="timed batches per system and round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-peer", action="store_true")
    p.add_argument(
        "--unsorted",
        action="store_true",
        help="list the edges in a random order (no in-edge run in time order): time the "
        "sorted copy against the scan",
    )
    p.add_argument("--peer-python", default=PEER_DGL_PYTHON)
    p.add_argument("--peer-timeout", type=int, default=1800)
    p.add_argument("--out", default=str(DEFAULT_OUT), help="JSON lines file ('' for none)")
    p.add_argument("--append", action="store_true", help="append to --out instead of replacing")
    args = p.parse_args(argv)
    argv_used = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/temporal_sampling.py " + " ".join(argv_used)
    fanout = [int(f) for f in args.fanout.split(",")]
    t0 = time.perf_counter()
    work = prepare(args)
    ds = work["ds"]
    common = {"graph": args.graph, "nodes": ds.num_nodes, "graph_edges": ds.graph.num_edges,
              "seeds": args.seeds, "fanout": fanout, "batch_size": args.batch_size,
              "batches": args.batches, "time_rule": "edge-level: edge time <= seed time",
              "command": command}  # fmt: skip
    print(json.dumps({"setup_s": round(time.perf_counter() - t0, 1), **common}), flush=True)
    samplers = gnnsys_samplers(ds, fanout, args.unsorted)
    if args.unsorted:
        common["edge_order"] = "random (seeded permutation)"
    rows: List[Dict[str, Any]] = []
    for r in range(args.rounds):
        results = []
        for name, strategy, sampler, temporal in samplers:
            res = run_gnnsys(sampler, temporal, work, args)
            if hasattr(sampler, "setup_s"):  # the time-sorted copy's construction
                res["sampler_setup_s"] = sampler.setup_s
            results.append({"sampler": name, "strategy": strategy, **res})
        if not args.no_peer:
            results.append(run_graphbolt(work["folder"], args))
        for res in results:
            row = {"round": r, **res, **common}
            rows.append(row)
            print(json.dumps(row), flush=True)
    rows.append(summary(rows, common))
    print(json.dumps(rows[-1]), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a" if args.append else "w") as f:
            f.write("".join(json.dumps(row) + "\n" for row in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
