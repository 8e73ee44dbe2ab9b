"""What an epoch costs beyond its batches: the Loader over many short epochs, between trees.

Each tree (a source folder, e.g. a ``git archive`` of an earlier commit) runs in its own process
(``PYTHONPATH=<tree>``) and iterates a Loader for a number of whole epochs after a warm one;
the trees alternate in every round, in ABBA order across rounds so that drift cancels. Two
workloads: ``tiny`` (``synthetic("tiny")``, 512 seeds in batches of 256: an epoch is 2 cheap
batches, so per-epoch costs dominate) and ``mini-mag`` (the typed loader of
``loader_throughput.py --graph mini-mag`` with DGL semantics: 31 batches an epoch).

Prints one JSON line per (round, tree, workload): ms per epoch, batches/s, CPU ms per batch
(the process's user + system time) and cores busy (CPU time over wall time); then one summary
line per workload with the per-round ratio of each later tree's batches/s to the first's.

Usage:
    git archive <commit> | tar -x -C /tmp/base
    python benchmarks/epoch_overhead.py --trees /tmp/base,. --rounds 4
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

from ab_trees import trees_and_workloads

WORKLOADS = ("tiny", "mini-mag")


def _loader(workload: str, threads: int):
    import torch

    from gnnsys.loaders import Loader, NeighborSampler

    if workload == "tiny":
        from gnnsys.datasets import synthetic

        ds = synthetic("tiny")
        return Loader(NeighborSampler(ds.graph, [10, 5]), torch.arange(512), batch_size=256,
                      shuffle=True, features={"x": ds.x}, num_threads=threads)  # fmt: skip
    if workload == "mini-mag":
        import loader_throughput as lt  # (beside this file: on sys.path when run as a script)

        from gnnsys.graph import Graph

        arrays = lt.load_hetero(lt.resolve_hetero_folder("mini-mag"))
        graph = Graph.from_hetero(arrays["edges"], arrays["meta"]["node_types"])
        return lt.hetero_dgl_loader(arrays, graph, [15, 10], 1024, num_threads=threads)
    raise ValueError(f"unknown workload {workload!r}")


def child(workload: str, epochs: int, threads: int) -> Dict[str, Any]:
    loader = _loader(workload, threads)
    for _ in loader:  # a warm epoch: compiled kernels, pooled buffers
        pass
    batches = 0
    c0 = os.times()
    w0 = time.perf_counter()
    for _ in range(epochs):
        for _ in loader:
            batches += 1
    wall = time.perf_counter() - w0
    c1 = os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    return {"epochs": epochs, "batches": batches, "ms_per_epoch": round(wall / epochs * 1e3, 4),
            "batches_per_s": round(batches / wall, 2),
            "cpu_ms_per_batch": round(cpu / batches * 1e3, 4),
            "cores_busy": round(cpu / wall, 3)}  # fmt: skip


def run_tree(tree: str, workload: str, epochs: int, threads: int) -> Dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
    cmd = [sys.executable, __file__, "--child", workload, "--epochs", str(epochs),
           "--threads", str(threads)]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trees", default=".", help="comma-separated source trees (first: baseline)")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tiny-epochs", type=int, default=400)
    p.add_argument("--mini-mag-epochs", type=int, default=20)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.epochs, args.threads)))
        return 0
    trees, workloads = trees_and_workloads(p, args.trees, args.workloads, WORKLOADS)
    epochs = {"tiny": args.tiny_epochs, "mini-mag": args.mini_mag_epochs}
    rates: Dict[str, Dict[int, List[float]]] = {}
    for workload in workloads:
        for r in range(args.rounds):
            order = list(enumerate(trees))
            for i, tree in order if r % 2 == 0 else order[::-1]:  # ABBA across rounds
                row = run_tree(tree, workload, epochs[workload], args.threads)
                row.update(workload=workload, tree=tree, round=r, threads=args.threads)
                print(json.dumps(row), flush=True)
                rates.setdefault(workload, {}).setdefault(i, []).append(row["batches_per_s"])
    for workload, by_tree in rates.items():
        for i in range(1, len(trees)):
            ratios = [round(b / a, 3) for a, b in zip(by_tree[0], by_tree[i])]
            print(json.dumps({"workload": workload, "ratio": f"{trees[i]} / {trees[0]}",
                              "per_round": ratios, "range": [min(ratios), max(ratios)]}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
