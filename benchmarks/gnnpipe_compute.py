"""How much faster a GPU computes a GNNPipe epoch than this machine: the compute factor K that
``benchmarks/gnnpipe.py --dilation K`` emulates on a modeled network.

Runs ``gnnsys train --mode pipe --nproc 1`` (one rank holding every layer, so no transport and
no bubble: what is left is the per-chunk, per-layer work each stage does) for ``--epochs``
epochs with ``--profile`` and prints, per epoch after the first, the seconds charged to compute
and to history reads/writes, as JSON lines, then the median. Run it here (``--device cpu``) and
on a GPU machine (``--device cuda``) with the same arguments; K = CPU compute / GPU compute
(a pipe rank computes with one torch thread, so K is against one core; the 4-rank runs on 2
cores give each rank about half of one).
The kernels of one rank in a 4-rank run are the same (a stage's layers over the same chunks),
so K carries over to the multi-rank runs.

Example:
    python benchmarks/gnnpipe_compute.py --device cpu --dataset synthetic:mini --layers 32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def emit(obj: Dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def run(args: argparse.Namespace, out: str) -> List[Dict[str, Any]]:
    """The trainer's per-epoch records (metrics.jsonl) of one run into ``out``."""
    cmd = [sys.executable, "-m", "gnnsys", "train", "--mode", "pipe", "--nproc", "1",
           "--device", args.device, "--dataset", args.dataset, "--model", "gcn",
           "--layers", str(args.layers), "--hidden", str(args.hidden), "--chunks",
           str(args.chunks), "--epochs", str(args.epochs), "--eval-every", "1000", "--profile",
           "--seed", "0", "--out", out]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if res.returncode != 0:
        raise SystemExit(f"gnnsys train failed ({res.returncode}):\n{res.stderr[-3000:]}")
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: List[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--dataset", default="synthetic:mini")
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--chunks", type=int, default=8)
    p.add_argument("--epochs", type=int, default=4, help="the first is a warm-up (not counted)")
    p.add_argument("--threads", type=int, default=1,
                   help="the rank's torch threads: only 1 (a pipe rank computes with one; the "
                   "option stays so that earlier sessions' recorded commands run)")  # fmt: skip
    a = p.parse_args(argv)
    if a.epochs < 2:
        raise SystemExit("--epochs must be at least 2 (the first is a warm-up)")
    if a.threads != 1:
        raise SystemExit("--threads: a pipe rank computes with one torch thread; only 1 is taken")
    if a.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            emit({"skipped": "no CUDA device"})
            return
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        rows = run(a, out)
    keys = ("device", "dataset", "layers", "hidden", "chunks")
    # (not passed on: `gnnsys train --mode pipe` has no --threads; its rank uses one thread)
    setup = {**{k: getattr(a, k) for k in keys}, "threads": a.threads}
    emit({"bench": "gnnpipe_compute", **setup, "wall_s": round(time.perf_counter() - t0, 1),
          "cpus": os.cpu_count()})  # fmt: skip
    comp, hist, secs = [], [], []
    for r in rows[1:]:
        b = r["breakdown"][0]
        comp.append(b["compute"])
        hist.append(b.get("history", 0.0))
        secs.append(r["seconds"])
        emit({"epoch": r["epoch"], "seconds": round(r["seconds"], 4),
              "compute_s": round(b["compute"], 4), "history_s": round(b.get("history", 0), 4)})  # fmt: skip
    emit({"summary": True, **setup, "median_compute_s": round(statistics.median(comp), 4),
          "median_history_s": round(statistics.median(hist), 4),
          "median_epoch_s": round(statistics.median(secs), 4),
          "compute_range_s": [round(min(comp), 4), round(max(comp), 4)]})  # fmt: skip


if __name__ == "__main__":
    main()
