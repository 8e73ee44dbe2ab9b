"""Whether a row gather should read the table in row order when a batch covers much of it.

``gnnsys.unified_tensor.gather_cpu`` reads rows in batch order (random reads) and writes the
output in order. When a batch asks for most of a table (a mini-mag batch: 28.3k of its 36.8k
paper rows), reading the table front to back and writing each wanted row to its batch position
(a dense inverse map: row -> position, -1 for rows not asked for) turns the reads sequential and
the writes random. This times both on one thread (batch order: ``gather_cpu``'s serial kernel
itself; row order: a numba word copy of the same shape), with a 64 MiB buffer written before
each gather to flush the caches as the sampler leaves them, orders alternating; the scan's time
includes filling and clearing the inverse map. Both give the same rows (checked).

Prints one JSON line per coverage (fraction of the table's rows in the batch).

Usage:
    python benchmarks/gather_order.py
    python benchmarks/gather_order.py --rows 36820 --row-bytes 512 --reps 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import List, Optional

import numpy as np
from numba import njit

from gnnsys.unified_tensor.gather_cpu import _rows_serial as _batch_order  # the shipped kernel


@njit(nogil=True, cache=True)
def _row_order(src, ids, inv, out):  # pragma: no cover - compiled
    for i in range(ids.shape[0]):
        inv[ids[i]] = i
    d = src.shape[1]
    for r in range(src.shape[0]):
        p = inv[r]
        if p >= 0:
            for j in range(d):
                out[p, j] = src[r, j]
    for i in range(ids.shape[0]):
        inv[ids[i]] = -1


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=36820, help="table rows (mini-mag's papers)")
    p.add_argument("--row-bytes", type=int, default=512)
    p.add_argument("--coverage", default="0.05,0.1,0.2,0.35,0.5,0.77")
    p.add_argument("--reps", type=int, default=30, help="gathers timed per order and coverage")
    p.add_argument("--flush-mb", type=int, default=64, help="buffer written before each gather")
    args = p.parse_args(argv)
    if args.rows < 1 or args.reps < 1 or args.flush_mb < 1:
        p.error("--rows, --reps and --flush-mb must be >= 1")
    if args.row_bytes < 8 or args.row_bytes % 8:
        p.error("--row-bytes must be a positive multiple of 8 (rows are copied as 64-bit words)")
    try:
        coverage = [float(c) for c in args.coverage.split(",")]
    except ValueError:
        p.error(f"--coverage must be fractions such as 0.1,0.5, got {args.coverage!r}")
    if not all(0 < c <= 1 for c in coverage):
        p.error("--coverage fractions must lie in (0, 1]")
    rng = np.random.default_rng(0)
    n = args.rows
    src = rng.integers(0, 1 << 62, (n, args.row_bytes // 8), dtype=np.uint64)
    inv = np.full(n, -1, np.int32)
    flush = np.ones(args.flush_mb << 20, np.uint8)
    for frac in coverage:
        k = max(1, int(n * frac))
        out = np.empty((k, src.shape[1]), np.uint64)
        times = {"batch_order": [], "row_order": []}
        for rep in range(args.reps + 3):
            ids = rng.permutation(n)[:k].astype(np.int64)
            order = ("batch_order", "row_order") if rep % 2 else ("row_order", "batch_order")
            for name in order:
                flush += 1
                t0 = time.perf_counter()
                if name == "batch_order":
                    _batch_order(src, ids, out)
                else:
                    _row_order(src, ids, inv, out)
                if rep >= 3:  # (the first ones compile and warm up)
                    times[name].append(time.perf_counter() - t0)
                if rep == 0:
                    assert np.array_equal(out, src[ids]), name
        b = statistics.median(times["batch_order"]) * 1e3
        r = statistics.median(times["row_order"]) * 1e3
        print(json.dumps({"bench": "gather_order", "rows": n, "row_bytes": args.row_bytes,
                          "coverage": frac, "batch_rows": k, "reps": args.reps,
                          "batch_order_ms_median": round(b, 3),
                          "row_order_ms_median": round(r, 3),
                          "row_over_batch": round(r / b, 3)}), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
