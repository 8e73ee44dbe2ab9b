"""Huge pages for torch-made tables (gnnsys._hugepages): the row gather and the loader, A/B.

Two measurements, each printing JSON lines:

* ``gather``: a serial random-row gather (``gather_cpu``) from two torch-made tables of
  ``--rows`` x ``--dim`` float32, one left on 4 KiB pages, one advised (``advise_huge``,
  waited for), ``--ids`` random rows per gather, the two alternating for ``--rounds``.
* ``loader``: PyG-semantics ``NeighborLoader`` batches/s over ``--graph`` (fanout 15,10,5,
  batch 1024) with the features, labels and ``edge_index`` as torch tensors (as ``torch.load``
  gives a saved dataset), in subprocesses alternating ``GNNSYS_HUGEPAGES=0`` and ``1``.

Usage:
    python benchmarks/hugepages.py --rounds 9 --loader-rounds 3 --graph rmat20
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from loader_throughput import emit, load, resolve_folder, time_iter  # noqa: E402


def gather_ab(rows: int, dim: int, ids: int, rounds: int) -> None:
    from gnnsys import _hugepages
    from gnnsys.unified_tensor import gather_cpu

    plain = torch.randn(rows, dim).numpy()
    advised = torch.randn(rows, dim)
    t0 = time.perf_counter()
    _hugepages.advise_huge(advised, wait=True)
    collapse_s = time.perf_counter() - t0
    advised = advised.numpy()
    rng = np.random.default_rng(0)
    times: Dict[str, List[float]] = {"4k": [], "huge": []}
    for rnd in range(rounds + 1):
        picks = rng.integers(0, rows, ids)
        for name, table in (("4k", plain), ("huge", advised)):
            src = gather_cpu.word_view(table)
            out = np.empty((ids, dim), np.float32)
            t0 = time.perf_counter()
            gather_cpu._rows_serial(src, picks, out.view(src.dtype))
            if rnd:  # (round 0 warms up)
                times[name].append((time.perf_counter() - t0) * 1e3)
    emit({"measure": "gather", "rows": rows, "dim": dim, "table_mb": round(plain.nbytes / 2**20),
          "ids": ids, "rounds": rounds, "collapse_seconds": round(collapse_s, 3),
          **{f"{k}_ms_median": round(statistics.median(v), 3) for k, v in times.items()},
          **{f"{k}_ms_range": [round(min(v), 3), round(max(v), 3)] for k, v in times.items()},
          "ratio_median": round(statistics.median(times["huge"]) / statistics.median(times["4k"]), 3)})  # fmt: skip


def loader_once(graph: str, batches: int) -> float:
    """Batches/s of one process's loader (this process)."""
    from torch_geometric.data import Data

    from gnnsys.loaders.pyg import NeighborLoader

    arrays = load(resolve_folder(graph))
    n = arrays["x"].shape[0]
    ei = torch.stack([torch.from_numpy(arrays["src"]), torch.from_numpy(arrays["dst"])])
    data = Data(x=torch.from_numpy(arrays["x"]).clone(), y=torch.from_numpy(arrays["y"]).clone(),
                edge_index=ei.clone(), num_nodes=n)  # fmt: skip
    loader = NeighborLoader(data, num_neighbors=[15, 10, 5], batch_size=1024, shuffle=True,
                            input_nodes=torch.from_numpy(arrays["train_idx"]), seed=0)  # fmt: skip
    time.sleep(3)  # (the background collapse ends first)
    r = time_iter(lambda: iter(loader), batches, 5, lambda b: b.n_id.numel())
    return batches / r["seconds"]


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=9, help="gather rounds")
    p.add_argument("--sizes", default="605000x100:84000,2449029x100:180000",
                   help="ROWSxDIM:IDS gathers, comma-separated")  # fmt: skip
    p.add_argument("--graph", default="rmat20")
    p.add_argument("--loader-rounds", type=int, default=3, help="0: no loader runs")
    p.add_argument("--batches", type=int, default=400)
    p.add_argument("--one-loader", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one_loader:
        print(loader_once(args.graph, args.batches))
        return 0
    emit({"command": "python benchmarks/hugepages.py " + " ".join(argv or sys.argv[1:]),
          "cpu_count": os.cpu_count(), "torch": torch.__version__})  # fmt: skip
    for spec in filter(None, args.sizes.split(",")):
        shape, ids = spec.split(":")
        rows, dim = (int(v) for v in shape.split("x"))
        gather_ab(rows, dim, int(ids), args.rounds)
    rates: Dict[str, List[float]] = {"0": [], "1": []}
    for rnd in range(args.loader_rounds):
        for flag in ("0", "1"):
            cmd = [sys.executable, __file__, "--one-loader", "--graph", args.graph,
                   "--batches", str(args.batches)]  # fmt: skip
            env = dict(os.environ, GNNSYS_HUGEPAGES=flag)
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            rate = float(out.stdout.strip().splitlines()[-1])
            rates[flag].append(rate)
            emit({"measure": "loader", "graph": args.graph, "round": rnd,
                  "GNNSYS_HUGEPAGES": flag, "batches_per_s": round(rate, 2)})  # fmt: skip
    if args.loader_rounds:
        emit({"measure": "loader summary", "graph": args.graph,
              "per_round_ratio": [round(b / a, 3) for a, b in zip(rates["0"], rates["1"])],
              "off_range": [round(min(rates["0"]), 1), round(max(rates["0"]), 1)],
              "on_range": [round(min(rates["1"]), 1), round(max(rates["1"]), 1)]})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
