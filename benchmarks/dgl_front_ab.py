"""A/B of gnnsys's DGL front across source trees, on a real DGL graph (run it with the DGL peer
env's python): ``gnnsys.loaders.dgl.DataLoader`` batches/s of each tree, rounds interleaved,
each (round, tree) in its own subprocess that imports gnnsys from that tree.

Workloads: ``node`` (``NeighborSampler`` of ``--fanout``, batches of 1024 training seeds,
features and labels prefetched, real DGL blocks) and ``link`` (``as_edge_prediction_sampler``
around it with ``Uniform(1)`` negatives, 1024 positive edges a batch). Prints one JSON line
per (round, tree, workload) and a summary with each tree's range and the range of the per-round
ratio of the last tree over the first.

Usage (from the repository root; ``/tmp/base`` = ``git archive <commit>`` unpacked):
    /tmp/gnnsys-peers/dgl/bin/python benchmarks/dgl_front_ab.py --trees /tmp/base,. \\
        --graph rmat20 --rounds 3 --batches 100
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ab_trees import trees_and_workloads  # noqa: E402

WORKLOADS = ("node", "link")

_CHILD = """
import sys, json
sys.path.insert(0, {tree!r}); sys.path.insert(0, {bench!r})
import numpy as np, torch
import gnnsys
from loader_throughput import load, resolve_folder
from gnnsys.loaders import dgl as G
assert gnnsys.__file__.startswith({tree!r}), gnnsys.__file__
import dgl
torch.set_num_threads({threads})
a = {{k: torch.from_numpy(v) for k, v in load(resolve_folder({graph!r})).items()}}
g = dgl.graph((a["src"], a["dst"]), num_nodes=int(a["x"].shape[0]))
g.ndata["feat"], g.ndata["label"] = a["x"], a["y"]
fanout = {fanout!r}
base = G.NeighborSampler(fanout, prefetch_node_feats=["feat"], prefetch_labels=["label"])
if {workload!r} == "link":
    ids = torch.from_numpy(np.random.default_rng(0).permutation(g.num_edges())[:200000])
    sampler = G.as_edge_prediction_sampler(base, negative_sampler=G.negative_sampler.Uniform(1))
else:
    ids, sampler = a["train_idx"], base
loader = G.DataLoader(g, ids, sampler, batch_size=1024, shuffle=True, seed=0, block_type="dgl")
from interleaved import rate
print(json.dumps(rate(loader, {batches}, lambda b: (int(b[0].numel()), 0))))
"""


def run_tree(tree: str, workload: str, args: Any) -> Dict[str, Any]:
    """One tree's batches/s for ``workload`` in a fresh interpreter (this one's python)."""
    fanout = [int(f) for f in args.fanout.split(",")][::-1]  # DGL lists the input layer first
    code = _CHILD.format(tree=tree, bench=str(HERE), graph=args.graph, fanout=fanout,
                         workload=workload, batches=args.batches, threads=args.threads)  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=args.timeout)  # fmt: skip
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = " | ".join((proc.stderr or "").strip().splitlines()[-3:])
    return {"skipped": True, "reason": f"exit {proc.returncode}: {tail}"}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trees", required=True, help="comma-separated source trees, baseline first")
    p.add_argument("--workloads", default="node,link")
    p.add_argument("--graph", default="rmat20", help="a saved folder or a synthetic name")
    p.add_argument("--fanout", default="15,10,5", help="per hop, first hop first")
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timeout", type=int, default=1800)
    args = p.parse_args(argv)
    trees, workloads = trees_and_workloads(p, args.trees, args.workloads, WORKLOADS)
    by: Dict[tuple, List[float]] = {}
    for r in range(args.rounds):
        for workload in workloads:
            for tree in trees:  # interleaved: every tree once per round and workload
                row = {"round": r, "tree": tree, "workload": workload, "graph": args.graph,
                       "fanout": args.fanout, **run_tree(tree, workload, args)}  # fmt: skip
                row.pop("edges_per_batch", None)  # (not counted here)
                print(json.dumps(row), flush=True)
                if not row.get("skipped"):
                    by.setdefault((workload, tree), []).append(row["batches_per_s"])
    summary: Dict[str, Any] = {"summary": "dgl_front_ab", "graph": args.graph,
                               "trees": trees, "rounds": args.rounds}  # fmt: skip
    for workload in workloads:
        for i, tree in enumerate(trees):
            vals = by.get((workload, tree), [])
            summary[f"{workload}_tree{i}_batches_per_s"] = [min(vals), max(vals)] if vals else None
        first, last = by.get((workload, trees[0]), []), by.get((workload, trees[-1]), [])
        ratios = [b / a for a, b in zip(first, last) if a]
        key = f"{workload}_last_over_first"
        summary[key] = [round(min(ratios), 3), round(max(ratios), 3)] if ratios else None
    summary["command"] = "python benchmarks/dgl_front_ab.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
