"""The neighbour sampler alone, one thread, interleaved across source trees: kernel A/B timing.

A kernel change is judged by the serial batch time of ``NeighborSampler.sample`` (no loader,
no feature gather, one numba thread) on a typed graph (``mini-mag``: 7 relations, DGL
semantics, fanout 15,10, 1024 papers a batch) and a homogeneous one (``rmat20``: fanout
15,10,5, 1024 seeds, PyG and DGL semantics), because a change can help one and hurt the other
(session 13 found a typed-only 3x regression that rmat20 timing had missed). Each
``--trees`` entry is a source tree (a checkout or ``git archive`` of another commit) whose
``gnnsys`` is imported in its own subprocess; rounds alternate between the trees so box drift
hits them alike. Each round times ``--batches`` batches after a warm-up and also records a
digest of the last batch, so trees that should sample the same batches can be checked to.

Prints one JSON line per (round, tree, workload) and a summary line per workload with each
tree's median and range of ms a batch.

Usage:
    python benchmarks/sampler_serial.py --trees /tmp/base,. --rounds 7
    python benchmarks/sampler_serial.py --workloads mini-mag --rounds 3 --batches 20
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from ab_trees import trees_and_workloads

HERE = Path(__file__).resolve().parent
WORKLOADS = ("mini-mag", "rmat20-pyg", "rmat20-dgl")


def _digest(*tensors: Any) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def run_one(workload: str, batches: int, warmup: int) -> Dict[str, Any]:
    """Time ``batches`` serial batches of ``workload`` in this process (one numba thread)."""
    import time

    import numba
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    import loader_throughput as lt

    from gnnsys.graph import Graph
    from gnnsys.loaders import NeighborSampler
    from gnnsys.loaders.base import SampleKey

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    if workload == "mini-mag":
        arrays = lt.load_hetero(lt.resolve_hetero_folder("mini-mag"))
        meta = arrays["meta"]
        graph = Graph.from_hetero(arrays["edges"], meta["node_types"])
        target = meta["target"]
        offset = int(graph.type_offsets()[graph.node_type_id(target)])
        seeds = arrays["train_idx"] + offset
        sampler = NeighborSampler(graph, [15, 10], semantics="dgl")
    else:
        g = lt.load(lt.resolve_folder("rmat20"))
        n = g["x"].shape[0]
        graph = Graph.from_edge_index(torch.from_numpy(np.stack([g["src"], g["dst"]])), n)
        seeds = torch.from_numpy(g["train_idx"]).long()
        sampler = NeighborSampler(graph, [15, 10, 5], semantics=workload.split("-")[1])
    per = 1024
    count = max(1, seeds.numel() // per)

    def batch(i: int, epoch: int) -> Any:
        j = i % count
        return sampler.sample(seeds[j * per : (j + 1) * per], SampleKey(0, epoch, i))

    for i in range(warmup):
        batch(i, 1)
    t0 = time.perf_counter()
    for i in range(batches):
        out = batch(i, 0)
    ms = (time.perf_counter() - t0) / batches * 1e3
    return {
        "ms_per_batch": round(ms, 4),
        "edges_per_batch": int(out.row.numel()),
        "nodes_per_batch": int(out.nodes.numel()),
        "last_batch_digest": _digest(out.nodes, out.row, out.col, out.edge_ids),
    }


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trees", default=".", help="source trees, comma-separated (default: .)")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help=f"of {', '.join(WORKLOADS)}")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: one workload in this process
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.child, args.batches, args.warmup)))
        return 0
    trees, workloads = trees_and_workloads(p, args.trees, args.workloads, WORKLOADS)
    print(json.dumps({"command": " ".join([Path(sys.executable).name] + sys.argv),
                      "trees": trees, "workloads": workloads, "rounds": args.rounds,
                      "batches": args.batches, "cpu_count": os.cpu_count()}))  # fmt: skip
    times: Dict[tuple, List[float]] = {}
    for rnd in range(args.rounds):
        for w in workloads:
            order = trees if rnd % 2 == 0 else trees[::-1]
            for t in order:
                env = dict(os.environ, PYTHONPATH=t, NUMBA_NUM_THREADS="1")
                cmd = [sys.executable, __file__, "--child", w, "--batches", str(args.batches),
                       "--warmup", str(args.warmup)]  # fmt: skip
                res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                row = json.loads(res.stdout.strip().splitlines()[-1])
                row.update(round=rnd, tree=t, workload=w)
                print(json.dumps(row), flush=True)
                times.setdefault((w, t), []).append(row["ms_per_batch"])
    for w in workloads:
        summary = {"summary": True, "workload": w}
        for t in trees:
            v = times[(w, t)]
            summary[t] = {"median_ms": round(statistics.median(v), 3),
                          "range_ms": [min(v), max(v)]}  # fmt: skip
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
