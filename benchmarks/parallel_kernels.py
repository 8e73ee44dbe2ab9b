"""The parallel sampling kernel, A/B across source trees: its cold compile and its warm batches.

``NeighborSampler.sample`` with the parallel variant of ``sample_hops`` forced (numba's
``PARALLEL_MIN_WORK`` set to 0, ``--threads`` numba threads) on a random homogeneous graph
(``homo``: fanout 15,10,5, PyG semantics) and a random typed one (``typed``: two node types,
three relations, fanout 15,10, DGL semantics), 1024 seeds a batch. Each ``--trees`` entry is a
source tree (a checkout or ``git archive`` of another commit) imported in its own subprocess
with an empty ``NUMBA_CACHE_DIR``, so the first batch compiles the kernel: ``compile_s`` is
numba's own pipeline time for that kernel (every signature it compiled), ``first_s`` the whole
first batch. Then ``--batches`` warm batches give ``ms_per_batch``. Rounds alternate the
trees' order so box drift hits them alike; ``digest`` (of the last batch) shows whether the
trees sample the same batches.

Prints one JSON line per (round, workload, tree) and a summary line per (workload, tree) with
the median and range of each measure.

Usage:
    python benchmarks/parallel_kernels.py --trees /tmp/base,. --rounds 3
    python benchmarks/parallel_kernels.py --workloads homo --scale 0.1 --batches 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from ab_trees import trees_and_workloads

WORKLOADS = ("homo", "typed")


def run_one(workload: str, batches: int, scale: float, threads: int) -> Dict[str, Any]:
    """First (compiling) and warm batches of ``workload`` in this process."""
    import hashlib
    import time

    import numba
    import torch

    from gnnsys import _numba
    from gnnsys.graph import Graph
    from gnnsys.loaders import NeighborSampler, _kernels
    from gnnsys.loaders.base import SampleKey

    torch.set_num_threads(1)
    numba.set_num_threads(threads)
    _kernels.PARALLEL_MIN_WORK = 0  # the parallel variant for every batch
    gen = torch.Generator().manual_seed(0)
    if workload == "homo":
        n, e = int(200_000 * scale), int(4_000_000 * scale)
        graph = Graph.from_edge_index(torch.randint(0, n, (2, e), generator=gen), n)
        sampler = NeighborSampler(graph, [15, 10, 5])
        seeds = torch.randperm(n, generator=gen)
    else:
        n, e = int(100_000 * scale), int(1_500_000 * scale)

        def rel() -> torch.Tensor:
            return torch.randint(0, n, (2, e), generator=gen)

        edges = {("a", "to", "b"): rel(), ("b", "cites", "b"): rel(), ("b", "rev_to", "a"): rel()}
        graph = Graph.from_hetero(edges, {"a": n, "b": n})
        sampler = NeighborSampler(graph, [15, 10], semantics="dgl")
        seeds = n + torch.randperm(n, generator=gen)  # type b's global ids
    per = 1024
    count = max(1, seeds.numel() // per)

    def batch(i: int, epoch: int) -> Any:
        j = i % count
        return sampler.sample(seeds[j * per : (j + 1) * per], SampleKey(0, epoch, i))

    t0 = time.perf_counter()
    batch(0, 1)
    first = time.perf_counter() - t0
    compile_s = 0.0  # the sample_hops variants this batch made (gnnsys._numba.variant)
    made = [k for k in _numba._VARIANTS.values() if k.py_func.__name__.startswith("sample_hops")]
    for kernel in made:
        for cres in kernel.overloads.values():
            for passes in (cres.metadata or {}).get("pipeline_times", {}).values():
                compile_s += sum(t.init + t.run + t.finalize for t in passes.values())
    for i in range(1, 4):
        batch(i, 1)
    t0 = time.perf_counter()
    for i in range(batches):
        out = batch(i, 0)
    ms = (time.perf_counter() - t0) / max(1, batches) * 1e3
    h = hashlib.sha256()
    for t in (out.nodes, out.row, out.col, out.edge_ids):
        h.update(t.contiguous().numpy().tobytes())
    return {
        "compile_s": round(compile_s, 2),
        "first_s": round(first, 2),
        "ms_per_batch": round(ms, 3),
        "edges_per_batch": int(out.row.numel()),
        "digest": h.hexdigest()[:16],
    }


def _summary(rows: List[Dict[str, Any]], key: str) -> Dict[str, Any]:
    v = [r[key] for r in rows]
    return {"median": round(statistics.median(v), 3), "range": [min(v), max(v)]}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trees", default=".", help="source trees, comma-separated (default: .)")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help=f"of {', '.join(WORKLOADS)}")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batches", type=int, default=60)
    p.add_argument("--threads", type=int, default=2, help="numba threads (default 2)")
    p.add_argument("--scale", type=float, default=1.0, help="graph size factor (default 1)")
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: one workload in this process
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.child, args.batches, args.scale, args.threads)))
        return 0
    if args.threads < 1 or args.rounds < 1 or args.batches < 1 or args.scale <= 0:
        p.error("--threads, --rounds and --batches must be >= 1 and --scale > 0")
    trees, workloads = trees_and_workloads(p, args.trees, args.workloads, WORKLOADS)
    print(json.dumps({"command": " ".join([Path(sys.executable).name] + sys.argv),
                      "trees": trees, "workloads": workloads, "rounds": args.rounds,
                      "batches": args.batches, "threads": args.threads, "scale": args.scale,
                      "cpu_count": os.cpu_count()}), flush=True)  # fmt: skip
    rows: Dict[tuple, List[Dict[str, Any]]] = {}
    for rnd in range(args.rounds):
        for w in workloads:
            for t in trees if rnd % 2 == 0 else trees[::-1]:
                with tempfile.TemporaryDirectory() as cache:
                    env = dict(os.environ, PYTHONPATH=t, NUMBA_CACHE_DIR=cache,
                               NUMBA_NUM_THREADS=str(args.threads))  # fmt: skip
                    cmd = [sys.executable, __file__, "--child", w, "--batches", str(args.batches),
                           "--scale", str(args.scale), "--threads", str(args.threads)]  # fmt: skip
                    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if res.returncode != 0:
                    sys.stderr.write(res.stderr)
                    return 1
                row = json.loads(res.stdout.strip().splitlines()[-1])
                row.update(round=rnd, tree=t, workload=w)
                print(json.dumps(row), flush=True)
                rows.setdefault((w, t), []).append(row)
    for (w, t), rs in rows.items():
        print(json.dumps({"summary": True, "workload": w, "tree": t,
                          **{k: _summary(rs, k) for k in ("compile_s", "first_s", "ms_per_batch")},
                          "digests": sorted({r["digest"] for r in rs})}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
