"""How far ahead the CPU row gather should prefetch, by row width and table size.

A gather copies random rows of a feature table; the sampler that runs before it on the same
thread leaves little of the table in cache. This times a single-threaded numba copy of the
same shape as ``gnnsys.unified_tensor.gather_cpu`` (rows as 64-bit words), prefetching every
cache line of the row ``K`` rows ahead (``K = 0``: no prefetch), with a 64 MiB buffer written
before each gather to flush the caches. Per (table size, row width): the best-of-rounds time
without prefetch and, per ``K``, the best time as a fraction of it. ``gather_cpu``'s
``PREFETCH_ROWS`` and ``PREFETCH_MIN_ROW_BYTES`` come from these numbers.

``--real`` times ``gather_cpu.gather_rows`` itself instead (float32 rows, ``--threads``
numba threads, the same flush): run it with ``PYTHONPATH`` set to each of two source trees to
compare their gathers.

Prints one JSON line per (table, row width).

Usage:
    python benchmarks/gather_prefetch.py
    python benchmarks/gather_prefetch.py --tables-mb 19,256 --rows-b 512 --rounds 5
    PYTHONPATH=/tmp/base python benchmarks/gather_prefetch.py --real --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import List, Optional

import numpy as np
from numba import njit

from gnnsys._numba import prefetch2d


@njit(nogil=True)
def _gather(src, ids, out, ahead):  # pragma: no cover - compiled
    n = ids.shape[0]
    for i in range(n):
        if ahead > 0 and i + ahead < n:
            r2 = ids[i + ahead]
            for j in range(0, src.shape[1], 8):  # 8 words: one 64-byte line
                prefetch2d(src, r2, j)
        r = ids[i]
        for j in range(src.shape[1]):
            out[i, j] = src[r, j]


def _real(table, ids, flush, args, table_mb: int, row_b: int) -> dict:
    """Best-of-rounds time of ``gather_cpu.gather_rows`` on ``table`` viewed as float32."""
    import numba

    import gnnsys
    from gnnsys.unified_tensor import gather_cpu

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    src = table.view(np.float32)
    out = np.empty((ids.shape[0], src.shape[1]), np.float32)
    parallel = numba.get_num_threads() > 1
    gather_cpu.gather_rows(src, ids, out, parallel=parallel)  # compile, fault the output in
    best = float("inf")
    for _ in range(args.rounds):
        total = 0.0
        for _ in range(args.reps):
            flush += 1
            t0 = time.perf_counter()
            gather_cpu.gather_rows(src, ids, out, parallel=parallel)
            total += time.perf_counter() - t0
        best = min(best, total / args.reps)
    return {"table_mb": table_mb, "row_bytes": row_b, "rows_gathered": int(ids.shape[0]),
            "threads": numba.get_num_threads(), "gather_rows_ms": round(best * 1e3, 3),
            "gnnsys": os.path.dirname(os.path.dirname(gnnsys.__file__))}  # fmt: skip


def _ints(text: str) -> List[int]:
    return [int(v) for v in text.split(",") if v]


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables-mb", default="19,256,1024", help="table sizes in MiB")
    p.add_argument("--rows-b", default="128,256,512,1024,2048", help="row widths in bytes")
    p.add_argument("--ahead", default="0,2,4,8,16", help="rows prefetched ahead (0: none)")
    p.add_argument("--gather-kb", type=int, default=14000, help="bytes gathered, in KiB")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--reps", type=int, default=8, help="gathers timed per round")
    p.add_argument("--real", action="store_true", help="time gather_cpu.gather_rows instead")
    p.add_argument("--threads", type=int, default=1, help="numba threads with --real")
    args = p.parse_args(argv)
    tables, widths, aheads = _ints(args.tables_mb), _ints(args.rows_b), _ints(args.ahead)
    if not tables or not widths or min(tables) < 1 or min(widths) < 8:
        p.error("--tables-mb must be >= 1 and --rows-b >= 8")
    if any(w % 8 for w in widths):
        p.error("--rows-b must be multiples of 8 (rows are copied as 64-bit words)")
    if 0 not in aheads or min(aheads) < 0:
        p.error("--ahead must include 0 (the baseline) and no negative value")
    if args.rounds < 1 or args.reps < 1 or args.gather_kb < 1 or args.threads < 1:
        p.error("--rounds, --reps, --gather-kb and --threads must be >= 1")
    print(json.dumps({"command": " ".join([os.path.basename(sys.executable)] + sys.argv),
                      "cpu_count": os.cpu_count(), "gather_kb": args.gather_kb,
                      "rounds": args.rounds, "reps": args.reps}), flush=True)  # fmt: skip
    flush = np.zeros(64 << 17, np.uint64)  # 64 MiB
    rng = np.random.default_rng(0)
    for table_mb in tables:
        for row_b in widths:
            words = row_b // 8
            num_rows = max(1, (table_mb << 20) // row_b)
            table = np.ones((num_rows, words), np.uint64)
            count = max(1, min(num_rows * 3 // 4, (args.gather_kb << 10) // row_b))
            ids = rng.choice(num_rows, count, replace=False).astype(np.int64)
            out = np.empty((count, words), np.uint64)
            if args.real:
                print(json.dumps(_real(table, ids, flush, args, table_mb, row_b)), flush=True)
                del table
                continue
            _gather(table, ids, out, 0)  # compile, fault the output in
            best = {k: float("inf") for k in aheads}
            for _ in range(args.rounds):
                for k in aheads:  # interleaved within each round
                    total = 0.0
                    for _ in range(args.reps):
                        flush += 1
                        t0 = time.perf_counter()
                        _gather(table, ids, out, k)
                        total += time.perf_counter() - t0
                    best[k] = min(best[k], total / args.reps)
            base = best[0]
            row = {"table_mb": table_mb, "row_bytes": row_b, "rows_gathered": int(count),
                   "no_prefetch_ms": round(base * 1e3, 3)}  # fmt: skip
            row.update({f"ahead_{k}": round(best[k] / base, 3) for k in aheads if k})
            print(json.dumps(row), flush=True)
            del table
    return 0


if __name__ == "__main__":
    sys.exit(main())
