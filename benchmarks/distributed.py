"""Partitioned multi-machine sampling: gnnsys.distributed against DistDGL 2.1, same box.

Each "machine" is one process holding one part (graph and features); P machines run at once
over gloo on localhost. Every machine loads batches of ``--batch-size`` of its training nodes
(owned first, equal shares: ``node_split``), samples ``--fanout`` across the parts (DGL
semantics, as DistDGL) and fetches the input nodes' features and the seeds' labels. Reported
per machine: batches/s, and per batch the bytes each machine sent (sampling and features
separately, from the exchanges' own counters) and all loopback bytes during the timed window
(``/sys/class/net/lo``, the one measure both systems share). DistDGL runs from
``benchmarks/peers/dist_dgl.py`` in the DGL environment of ../shared/peers, on the same graph
folder and train nodes, rounds interleaved with gnnsys.

Prints one JSON line per (round, system, parts), then a summary with ranges over rounds.

Timing a pipelined loader: with L lanes a machine works on L batches at once, started
together, so they complete together. Timed from the first batch, a short window counts the
batches already done in the first round as free (lanes 12 over 60 batches after 3 read 2.5x
DistDGL, 2.0x when timed as below). So the timed window starts after max(--warmup, 2L + 2)
batches, the machines' workers start together (a barrier before, none after: its wait would
let them run ahead), and the rate over the window's second half is reported beside it; keep
``--batches`` well above L. DistDGL's loader (no sampler processes) is synchronous.

``--temporal``: instead, the cost of temporal sampling across machines: gnnsys's disjoint
(PyG-semantics) sampler against ``DistTemporalNeighborSampler`` on the same seeds (node times
drawn uniformly in 0..999, every seed's time 999: the same edges are admitted, so the
difference is the time checks, the sorted copy's layout and the tree-time exchange; the picks
themselves differ, the runs being in time order); no peer.

Usage:
    python benchmarks/distributed.py --graph mini --parts 1,2,4 --rounds 3
    python benchmarks/distributed.py --graph mini --parts 1,2 --rounds 3 --temporal
    python benchmarks/distributed.py --graph tiny --parts 2 --rounds 1 --batches 5 --no-peer
    python benchmarks/distributed.py --graph folder:/data/papers-mini --parts 2 --method random
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from loader_throughput import load, resolve_folder  # noqa: E402

PEER_DGL_PYTHON = os.environ.get("GNNSYS_PEER_DGL", "/tmp/gnnsys-peers/dgl/bin/python")


def loopback_bytes() -> int:
    """Bytes sent over the loopback interface so far (0 where /sys has no counter)."""
    try:
        return int(Path("/sys/class/net/lo/statistics/tx_bytes").read_text())
    except OSError:
        return 0


def partition_folder(folder: Path, parts: int, method: str, work: Path) -> Path:
    """The gnnsys partition of the peers-format ``folder`` (made once per parts/method)."""
    from gnnsys.datasets.dataset import Dataset
    from gnnsys.distributed import partition
    from gnnsys.graph import Graph

    out = work / f"gnnsys-{folder.name}-{parts}-{method}"
    if (out / "partition.json").is_file():
        return out
    g = load(folder)
    n = g["x"].shape[0]
    graph = Graph.from_edge_index(torch.from_numpy(np.stack([g["src"], g["dst"]])), n)
    empty = torch.zeros(0, dtype=torch.int64)
    ds = Dataset(name=folder.name, graph=graph, x=torch.from_numpy(g["x"]),
                 y=torch.from_numpy(g["y"]), train_idx=torch.from_numpy(g["train_idx"]),
                 val_idx=empty, test_idx=empty, num_classes=int(g["y"].max()) + 1)  # fmt: skip
    t0 = time.perf_counter()
    partition(ds, parts, out, method=method, seed=0)
    print(f"partitioned {folder.name} into {parts} ({method}) in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)  # fmt: skip
    return out


def partition_dataset_folder(folder: Path, parts: int, method: str, work: Path) -> Path:
    """The gnnsys partition of a gnnsys dataset folder (``gnnsys data ...``: a memory-mapped
    CSC and features, e.g. papers-mini), streamed from the maps (made once per parts/method)."""
    from gnnsys.datasets import load_folder
    from gnnsys.distributed import partition

    out = work / f"gnnsys-{folder.name}-{parts}-{method}"
    if (out / "partition.json").is_file():
        return out
    t0 = time.perf_counter()
    partition(load_folder(folder), parts, out, method=method, seed=0)
    print(f"partitioned {folder.name} into {parts} ({method}) in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)  # fmt: skip
    return out


def _machine(rank: int, parts: int, folder: str, args: Dict[str, Any], out: str):
    import torch.distributed as dist

    from gnnsys.distributed.exchange import Exchange
    from gnnsys.distributed.features import dist_feature_store
    from gnnsys.distributed.graph import (
        DistGraph,
        DistNeighborSampler,
        DistTemporalNeighborSampler,
        node_split,
    )
    from gnnsys.distributed.task import _all_ids
    from gnnsys.loaders import Loader

    # (a file rendezvous in the run's folder: a port picked free and bound by rank 0 after its
    # imports could be taken by another process meanwhile)
    dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank,
                            world_size=parts, timeout=datetime.timedelta(seconds=600))  # fmt: skip
    lanes = Exchange.lanes(args["lanes"])  # batches in flight per machine, one group each
    g = DistGraph.open(folder, exchange=lanes)
    cache = args["cache_rows"]
    if cache == "halo":  # as many rows as this part's halo (1-hop in-neighbours elsewhere)
        cache = int(g.local.halo.shape[0])
    store = dist_feature_store(g, x=g.ndata["x"], y=g.ndata["y"], cache={"x": int(cache)})
    train = _all_ids(g.local.train, lanes[0])
    seeds = node_split(train, g.node_part, parts, rank)
    # A loader with L lanes starts L batches at once and they complete together: the timed
    # window starts after two such rounds (the module docstring says why)
    warmup = max(args["warmup"], 2 * args["lanes"] + 2)
    need = (warmup + args["batches"]) * args["batch_size"]
    if seeds.numel() < need:  # a short share: go round it again
        seeds = seeds.repeat(-(-need // max(seeds.numel(), 1)))
    fanout = [int(f) for f in args["fanout"].split(",")]
    # the box's cores shared by its machines (DistDGL's peer does the same with OMP threads)
    threads = max(1, (os.cpu_count() or 1) // parts)
    mode = args.get("mode", "dgl")
    extra: Dict[str, Any] = {}
    if mode == "temporal":  # times 0..999 (the same on every machine), every seed at 999
        times = torch.randint(0, 1000, (g.num_nodes,), generator=torch.Generator().manual_seed(0))
        sampler: Any = DistTemporalNeighborSampler(g, fanout, node_time=times)
        extra["seed_time"] = torch.full((need,), 999)
    elif mode == "disjoint":
        sampler = DistNeighborSampler(g, fanout, disjoint=True)
    else:
        sampler = DistNeighborSampler(g, fanout, semantics="dgl")
    loader = Loader(sampler, seeds[:need], batch_size=args["batch_size"], shuffle=True, seed=0,
                    features=store, labels="y", feature_names=["x"], num_threads=threads,
                    **extra)  # fmt: skip
    dist.barrier()  # the machines' workers start together (no barrier once they run: its
    # wait would let them run ahead of the timed window)
    # Bytes are counted over every batch of the run (the plan holds warmup + batches batches,
    # all produced by its end): a lane sends a batch's bytes before the batch is consumed,
    # possibly before the timed window
    before = g.bytes_sent()
    lo0 = loopback_bytes()
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    nodes = 0
    stamps = []
    for _ in range(args["batches"]):
        b = next(it)
        stamps.append(time.perf_counter())
        nodes += int(b.subgraph.nodes.numel())
    seconds = stamps[-1] - t0
    half = len(stamps) // 2
    dist.barrier()
    lo1 = loopback_bytes()
    sent = {k: v - before.get(k, 0) for k, v in g.bytes_sent().items()}
    res = {
        "rank": rank,
        "batches_per_s": args["batches"] / seconds,
        "batches_per_s_second_half": (len(stamps) - half) / (stamps[-1] - stamps[half - 1])
        if half
        else None,
        "warmup": warmup,
        "input_nodes_per_batch": nodes / args["batches"],
        "sample_bytes_per_batch": (sent.get("sample_request", 0) + sent.get("sample_reply", 0))
        / (warmup + args["batches"]),
        "feature_bytes_per_batch": (sent.get("feature_request", 0) + sent.get("features", 0))
        / (warmup + args["batches"]),
        "loopback_bytes": lo1 - lo0,
    }
    with open(f"{out}/machine{rank}.json", "w") as f:
        json.dump(res, f)
    dist.destroy_process_group()


def run_gnnsys(
    folder: Path, parts: int, args: argparse.Namespace, cache: str, mode: str = "dgl"
) -> Dict[str, Any]:
    import torch.multiprocessing as mp

    opts = {"warmup": args.warmup, "batches": args.batches, "batch_size": args.batch_size,
            "fanout": args.fanout, "cache_rows": cache, "lanes": args.lanes, "mode": mode}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        mp.spawn(_machine, args=(parts, str(folder), opts, tmp), nprocs=parts)
        wall = time.perf_counter() - t0
        rows = [json.loads(Path(tmp, f"machine{r}.json").read_text()) for r in range(parts)]
    total_batches = parts * (rows[0]["warmup"] + args.batches)  # (bytes: every batch of the run)
    return {
        "system": "gnnsys",
        "batches_per_s_per_machine": [round(r["batches_per_s"], 2) for r in rows],
        "second_half_batches_per_s_per_machine": [
            round(r["batches_per_s_second_half"], 2) for r in rows if r["batches_per_s_second_half"]
        ],
        "warmup": rows[0]["warmup"],
        "input_nodes_per_batch": float(np.mean([r["input_nodes_per_batch"] for r in rows])),
        "sample_bytes_per_batch": float(np.mean([r["sample_bytes_per_batch"] for r in rows])),
        "feature_bytes_per_batch": float(np.mean([r["feature_bytes_per_batch"] for r in rows])),
        "loopback_bytes_per_batch": rows[0]["loopback_bytes"] / total_batches,
        "seconds": round(wall, 1),
    }


def run_distdgl(graph: Path, parts: int, args: argparse.Namespace) -> Optional[Dict[str, Any]]:
    script = HERE / "peers" / "dist_dgl.py"
    cmd = [PEER_DGL_PYTHON, str(script), str(graph), "--parts", str(parts), "--method",
           args.method, "--batches", str(args.batches), "--batch-size", str(args.batch_size),
           "--fanout", args.fanout, "--warmup", str(args.warmup),
           "--num-samplers", str(args.distdgl_samplers),
           "--workdir", str(Path(args.workdir) / f"distdgl-{graph.name}-{parts}-{args.method}")]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if res.returncode != 0:
        print(f"DistDGL failed ({res.returncode}): {res.stderr[-2000:]}", file=sys.stderr)
        return None
    line = res.stdout.strip().splitlines()[-1]
    return json.loads(line)


def _range(values: List[float]) -> List[float]:
    return [round(min(values), 3), round(max(values), 3)] if values else []


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--graph", default="mini",
                   help="synthetic name, peers-format folder, or folder:DIR for a gnnsys dataset "
                   "folder (memory-mapped CSC, e.g. papers-mini; gnnsys only: no DistDGL)")  # fmt: skip
    p.add_argument("--parts", default="1,2,4", help="machine counts, comma-separated")
    p.add_argument("--method", default="metis", choices=("metis", "random"))
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--fanout", default="15,10,5", help="first hop first (PyG order)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-peer", action="store_true", help="gnnsys only")
    p.add_argument("--lanes", type=int, default=8,
                   help="gnnsys: batches in flight per machine (one process group each; 8: "
                   "the best of 2-16 on mini at 2 parts here, session 20)")  # fmt: skip
    p.add_argument(
        "--distdgl-samplers",
        type=int,
        default=0,
        help="DistDGL: sampler processes per trainer (launch.py's --num_samplers)",
    )
    p.add_argument("--cache-rows", default="0",
                   help="gnnsys: other parts' feature rows each machine caches (an int, or "
                   "'halo': its halo's size; one row set to 0 is also timed when nonzero)")  # fmt: skip
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "gnnsys-dist-bench"))
    p.add_argument("--timeout", type=int, default=1800, help="seconds per DistDGL run")
    p.add_argument("--temporal", action="store_true",
                   help="time temporal sampling against disjoint sampling (gnnsys only)")  # fmt: skip
    args = p.parse_args(argv)
    if args.temporal:
        args.no_peer = True
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    parts_list = [int(v) for v in args.parts.split(",")]
    if args.graph.startswith("folder:"):  # a gnnsys dataset folder: DistDGL needs COO files
        folder = Path(args.graph.split(":", 1)[1])
        args.no_peer = True
        part_dirs = {P: partition_dataset_folder(folder, P, args.method, work) for P in parts_list}
    else:
        folder = resolve_folder(args.graph)
        part_dirs = {P: partition_folder(folder, P, args.method, work) for P in parts_list}
    common = {"graph": args.graph, "method": args.method, "fanout": args.fanout,
              "batch_size": args.batch_size, "batches": args.batches, "lanes": args.lanes}  # fmt: skip
    systems = ["gnnsys", "distdgl"]
    if args.cache_rows != "0":
        systems.insert(1, "gnnsys-cache")
    if args.temporal:
        systems = ["gnnsys-disjoint", "gnnsys-temporal", "distdgl"]
    rows: List[Dict[str, Any]] = []
    for r in range(args.rounds):
        for P in parts_list:
            order = systems if r % 2 == 0 else systems[::-1]
            for system in order:
                if system == "distdgl":
                    if args.no_peer:
                        continue
                    row = run_distdgl(folder, P, args)
                    if row is None:
                        continue
                    row = {"system": "distdgl", **row}
                elif system == "gnnsys":
                    row = run_gnnsys(part_dirs[P], P, args, "0")
                elif system in ("gnnsys-disjoint", "gnnsys-temporal"):
                    row = run_gnnsys(part_dirs[P], P, args, "0", system.split("-")[1])
                    row["system"] = system
                else:
                    row = run_gnnsys(part_dirs[P], P, args, args.cache_rows)
                    row["system"] = "gnnsys-cache"
                    row["cache_rows"] = args.cache_rows
                row = {"round": r, "parts": P, **common, **row}
                rows.append(row)
                print(json.dumps(row), flush=True)
    summary: Dict[str, Any] = {"summary": True, **common}
    for P in parts_list:
        for system in systems:
            sel = [x for x in rows if x["parts"] == P and x["system"] == system]
            if not sel:
                continue
            bps = [v for x in sel for v in x["batches_per_s_per_machine"]]
            summary[f"{system}_{P}_batches_per_s_per_machine"] = _range(bps)
            lb = [x["loopback_bytes_per_batch"] for x in sel if "loopback_bytes_per_batch" in x]
            summary[f"{system}_{P}_loopback_bytes_per_batch"] = _range(lb)
        ratios = []
        for r in range(args.rounds):
            a = [x for x in rows if x["round"] == r and x["parts"] == P]
            d = [x for x in a if x["system"] == "distdgl"]
            for system in systems[:-1]:
                g = [x for x in a if x["system"] == system]
                if g and d:
                    ratios.append((system, float(np.mean(g[0]["batches_per_s_per_machine"]))
                                   / float(np.mean(d[0]["batches_per_s_per_machine"]))))  # fmt: skip
        for system in systems[:-1]:
            mine = [v for s, v in ratios if s == system]
            if mine:
                summary[f"{system}_over_distdgl_{P}"] = _range(mine)
        if args.temporal:  # same-round ratios: what temporal sampling costs
            per = []
            for r in range(args.rounds):
                a = {x["system"]: x for x in rows if x["round"] == r and x["parts"] == P}
                if "gnnsys-temporal" in a and "gnnsys-disjoint" in a:
                    t = np.mean(a["gnnsys-temporal"]["batches_per_s_per_machine"])
                    d = np.mean(a["gnnsys-disjoint"]["batches_per_s_per_machine"])
                    per.append(float(t / d))
            summary[f"temporal_over_disjoint_{P}"] = _range(per)
    summary["command"] = "python benchmarks/distributed.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
