"""Class-balanced partitions: gnnsys's ``balance_types`` against DGL's ``balance_ntypes``.

DGL's ``ClusterGCNSampler`` / ``metis_partition_assignment(balance_ntypes=mask)`` hands METIS
one weight constraint per class; gnnsys partitions with METIS (pymetis, one constraint) and then
moves each class's surplus (``pipeline_parallel.partition.balance_classes``). For each part
count this prints one JSON line per system: the edge cut of the symmetrised graph, the fewest
and most training nodes (the balanced class) and nodes per part, and the seconds taken. DGL's
rows (``dgl``: balanced, ``dgl-plain``: not) appear when dgl imports (the env of
``../shared/peers/setup.sh dgl``; its progress messages go to stderr). The first line
describes the run.

Usage:
    python benchmarks/partition_balance.py --graph mini --parts 16,64
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from typing import Callable, Dict, List, Optional

import torch

from gnnsys.datasets import synthetic
from gnnsys.pipeline_parallel.partition import describe, partition, symmetrize


def systems(graph, sym, mask: torch.Tensor, k: int) -> Dict[str, Callable[[], torch.Tensor]]:
    """name -> a function returning int64 [N] parts."""
    out = {
        "gnnsys": lambda: partition(graph, k, method="metis", seed=0, balance_types=mask).part,
        "gnnsys-plain": lambda: partition(graph, k, method="metis", seed=0).part,
    }
    try:
        import dgl
    except ImportError:
        return out
    src, dst = sym.to_edge_index()
    dg = dgl.graph((src, dst), num_nodes=graph.num_nodes)
    out["dgl"] = lambda: dgl.metis_partition_assignment(dg, k, balance_ntypes=mask.long())
    out["dgl-plain"] = lambda: dgl.metis_partition_assignment(dg, k)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--graph", default="mini", help="synthetic dataset name")
    p.add_argument("--parts", default="16,64", help="comma-separated part counts")
    args = p.parse_args(argv)
    ds = synthetic(args.graph, seed=0)
    graph = ds.graph
    sym = symmetrize(graph)
    mask = torch.zeros(graph.num_nodes, dtype=torch.bool)
    mask[ds.train_idx] = True
    print(json.dumps({"graph": args.graph, "num_nodes": graph.num_nodes,
                      "num_edges": graph.num_edges, "train_nodes": int(mask.sum()),
                      "python": platform.python_version(), "torch": torch.__version__}))  # fmt: skip
    for k in (int(x) for x in args.parts.split(",")):
        for name, run in systems(graph, sym, mask, k).items():
            t = time.perf_counter()
            with contextlib.redirect_stdout(sys.stderr):  # (DGL prints its progress)
                part = torch.as_tensor(run()).long()
            seconds = time.perf_counter() - t
            train = torch.bincount(part[mask], minlength=k)
            nodes = torch.bincount(part, minlength=k)
            row = {"parts": k, "system": name, "edge_cut": describe(graph, part, k, sym=sym).edge_cut,
                   "train_per_part": [int(train.min()), int(train.max())],
                   "nodes_per_part": [int(nodes.min()), int(nodes.max())],
                   "seconds": round(seconds, 2)}  # fmt: skip
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
