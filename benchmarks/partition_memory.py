"""Peak memory and time of ``gnnsys.distributed.partition`` on a memory-mapped graph.

The graph (a synthetic name) is generated once and saved as a ``Graph.save`` folder plus
``.npy`` node tables under ``--workdir``; each measured run is a fresh process that maps them
(``Graph.load(mmap=True)``, features ``np.load(mmap_mode="r")``), partitions, and reports its
peak RSS (``ru_maxrss``). Prints one JSON line per run.

Usage:
    python benchmarks/partition_memory.py --graph rmat20 --parts 4 --method random
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import json, resource, sys, time
import numpy as np, torch
from gnnsys.datasets.dataset import Dataset
from gnnsys.distributed import partition
from gnnsys.graph import Graph

work, out, parts, method, classes = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
g = Graph.load(f"{work}/g", mmap=True)
x = torch.from_numpy(np.load(f"{work}/x.npy", mmap_mode="r"))
y = torch.from_numpy(np.load(f"{work}/y.npy"))
sp = {f"{s}_idx": torch.from_numpy(np.load(f"{work}/{s}.npy")) for s in ("train", "val", "test")}
ds = Dataset("graph", g, x, y, **sp, num_classes=classes)
t = time.perf_counter()
book = partition(ds, parts, out, method=method, seed=0, overwrite=True)
print(json.dumps({"seconds": round(time.perf_counter() - t, 2),
                  "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
                  "edge_cut": book.meta["edge_cut"], "method": book.meta["method"],
                  "num_nodes": g.num_nodes, "num_edges": g.num_edges}))
"""


def prepare(graph: str, work: Path) -> int:
    """Save ``synthetic(graph)`` as mapped files in ``work`` (once); returns its class count."""
    done = work / "classes.txt"
    if done.is_file():
        return int(done.read_text())
    import numpy as np

    from gnnsys.datasets import synthetic

    ds = synthetic(graph, seed=0)
    work.mkdir(parents=True, exist_ok=True)
    ds.graph.save(work / "g")
    np.save(work / "x.npy", ds.x.numpy())
    np.save(work / "y.npy", ds.y.numpy())
    for s in ("train", "val", "test"):
        np.save(work / f"{s}.npy", getattr(ds, f"{s}_idx").numpy())
    done.write_text(str(ds.num_classes))
    return ds.num_classes


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--graph", default="rmat20", help="synthetic dataset name")
    p.add_argument("--parts", type=int, default=4)
    p.add_argument("--method", default="random", choices=("random", "metis", "bfs"))
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "gnnsys-partmem"))
    args = p.parse_args(argv)
    work = Path(args.workdir) / args.graph
    classes = prepare(args.graph, work)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for r in range(args.rounds):
        out = Path(args.workdir) / f"out-{args.graph}-{args.parts}-{args.method}"
        argv_child = [str(work), str(out), str(args.parts), args.method, str(classes)]
        proc = subprocess.run([sys.executable, "-c", _CHILD, *argv_child], env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row.update(graph=args.graph, parts=args.parts, round=r)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
