"""First-call latency of each public entry point, cold (empty numba cache) and warm.

What a newcomer waits for: a fresh Python process imports gnnsys and makes one call. Each
entry point runs in its own subprocess, first with ``NUMBA_CACHE_DIR`` set to a new empty
folder (cold: every numba kernel it needs compiles; the repository's ``__pycache__`` caches are
not read, since numba looks only in ``NUMBA_CACHE_DIR`` when it is set), then again in a new
process with that same folder (warm: the kernels load from the cache). Python's own bytecode
caches are left as they are (a ``pip install`` writes them). Each round uses new folders.

Prints one JSON object per line: first the machine (CPU count, numba version, load average),
then one per (entry point, condition, round):

- ``torch_s``: ``import torch, numpy`` (needed to build the inputs; not gnnsys's doing);
- ``import_s``: the gnnsys import(s) the entry point needs, after torch;
- ``first_s``: the first call alone (for the loaders: constructing the loader and its first
  batch); ``second_s``: the same call again in the same process (the steady state);
- ``import_first_s``: ``import_s + setup_s + first_s``, the goal's measure (under 10 s cold,
  3 s warm); ``setup_s`` builds the inputs (for the DGL loader: the ``gnnsys.Graph``, whose
  kernels compile there);
- ``import_first_cpu_s``: the CPU time (all threads) of the same span: about what
  ``import_first_s`` takes on a quiet machine, since compiling is one thread's work;
- ``process_s``: the subprocess's wall time, interpreter start to exit;
- ``cache_files``: files in the numba cache folder after the run; ``load1``: the 1-minute load
  average when the run started.

Usage:
    python benchmarks/cold_start.py                        # every entry point, one round
    python benchmarks/cold_start.py --rounds 3 --only log_iv,im2win_conv2d
    python benchmarks/cold_start.py --list
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A 1,000-node random graph (seeded), shared by the graph and loader entry points.
_GRAPH = """
gen = torch.Generator().manual_seed(0)
N, E = 1000, 10000
edge_index = torch.randint(0, N, (2, E), generator=gen)
feat = torch.randn(N, 16, generator=gen)
label = torch.randint(0, 4, (N,), generator=gen)
"""

# name -> (imports, setup, call): Python sources run in the child. ``call`` is timed twice.
ENTRIES: Dict[str, Tuple[str, str, str]] = {
    "import_gnnsys": ("import gnnsys", "", "gnnsys.Graph"),
    "log_iv": (
        "from gnnsys.ops import log_iv",
        "v = torch.tensor([0.0, 0.5, 3.0, 20.0, 600.0]); x = torch.tensor([1e-3, 1.0, 30.0, 5.0, 1.0])",
        "log_iv(v, x)",
    ),
    "log_kv": (
        "from gnnsys.ops import log_kv",
        "v = np.array([0.0, 0.5, 3.0, 20.0, 600.0]); x = np.array([1e-3, 1.0, 30.0, 5.0, 1.0])",
        "log_kv(v, x)",
    ),
    "im2win_conv2d": (
        "from gnnsys.ops import im2win_conv2d",
        "gen = torch.Generator().manual_seed(0); xi = torch.randn(2, 3, 16, 16, generator=gen); "
        "w = torch.randn(8, 3, 3, 3, generator=gen); b = torch.randn(8, generator=gen)",
        "im2win_conv2d(xi, w, b, padding=1)",
    ),
    "spmm": (
        "from gnnsys.ops import spmm",
        _GRAPH,
        "spmm((edge_index, N), feat, 'sum')",
    ),
    "vmf": (
        "from gnnsys.ops import vmf_log_normalizer, fit_vmf",
        "kappa = torch.tensor([0.0, 10.0, 2048.0], dtype=torch.float64); "
        "gen = torch.Generator().manual_seed(0); X = torch.randn(200, 64, generator=gen) + 3.0",
        "vmf_log_normalizer(kappa, 64); fit_vmf(X)",
    ),
    "graph_from_edge_index": (
        "from gnnsys import Graph",
        _GRAPH,
        "Graph.from_edge_index(edge_index, N)",
    ),
    "pyg_neighbor_loader": (
        "from gnnsys.loaders.pyg import NeighborLoader; from torch_geometric.data import Data",
        _GRAPH + "data = Data(x=feat, y=label, edge_index=edge_index, num_nodes=N)",
        "next(iter(NeighborLoader(data, num_neighbors=[10, 5], batch_size=128, shuffle=True, "
        "seed=0)))",
    ),
    "dgl_data_loader": (
        "from gnnsys import Graph; from gnnsys.loaders import dgl as dgl_loading",
        _GRAPH + "g = Graph.from_edge_index(edge_index, N); "
        "g.ndata['feat'] = feat; g.ndata['label'] = label",
        "next(iter(dgl_loading.DataLoader(g, torch.arange(N), dgl_loading.NeighborSampler("
        "[5, 10], prefetch_node_feats=['feat'], prefetch_labels=['label']), batch_size=128, "
        "shuffle=True, seed=0, block_type='gnnsys')))",
    ),
}

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import torch
t1 = time.perf_counter()
c1 = time.process_time()
{imports}
t2 = time.perf_counter()
{setup}
t3 = time.perf_counter()
{call}
t4 = time.perf_counter()
c4 = time.process_time()
{call}
t5 = time.perf_counter()
print(json.dumps({{"torch_s": t1 - t0, "import_s": t2 - t1, "setup_s": t3 - t2,
                  "first_s": t4 - t3, "second_s": t5 - t4, "import_first_cpu_s": c4 - c1}}))
"""


def child_source(name: str) -> str:
    imports, setup, call = ENTRIES[name]
    return _CHILD.format(imports=imports, setup=setup, call=call)


def count_files(folder: str) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def run_child(name: str, cache_dir: str, condition: str, rnd: int) -> dict:
    """One fresh process for ``name`` with NUMBA_CACHE_DIR=cache_dir; its timings as a row."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=ROOT)
    row = {"entry": name, "condition": condition, "round": rnd, "load1": os.getloadavg()[0]}
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", child_source(name)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    row["process_s"] = round(time.perf_counter() - t, 3)
    if proc.returncode != 0:
        row["error"] = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return row
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update({k: round(v, 3) for k, v in got.items()})
    row["import_first_s"] = round(got["import_s"] + got["setup_s"] + got["first_s"], 3)
    row["cache_files"] = count_files(cache_dir)
    return row


def main(argv: List[str] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1, help="cold + warm runs per entry point")
    ap.add_argument("--only", default="", help="comma-separated entry points (see --list)")
    ap.add_argument("--list", action="store_true", help="print the entry points and exit")
    ap.add_argument("--label", default="", help="a tag copied into every row (e.g. 'busy')")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(ENTRIES))
        return
    names = [n for n in args.only.split(",") if n] or list(ENTRIES)
    unknown = [n for n in names if n not in ENTRIES]
    if unknown:
        raise SystemExit(f"--only: unknown entry point(s) {unknown}; choose from {list(ENTRIES)}")
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be >= 1, got {args.rounds}")
    import numba  # only for its version

    machine = {
        "machine": platform.node(),
        "cpus": os.cpu_count(),
        "numba": numba.__version__,
        "python": platform.python_version(),
        "load": os.getloadavg(),
        "label": args.label,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    print(json.dumps(machine), flush=True)
    for rnd in range(args.rounds):
        for name in names:
            cache = tempfile.mkdtemp(prefix=f"gnnsys-numba-{name}-")
            try:
                for condition in ("cold", "warm"):
                    row = run_child(name, cache, condition, rnd)
                    if args.label:
                        row["label"] = args.label
                    print(json.dumps(row), flush=True)
            finally:
                shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
