"""Half-width rows widened on gather: the CPU row kernel alone, one thread, float16 vs bfloat16.

``gnnsys.unified(x, storage_dtype=torch.float16 | torch.bfloat16)`` keeps rows at half width
and widens them to float32 as it gathers. bfloat16 widens by a shift; float16 needs its
exponent rebiased and its subnormals, infinities and NaN handled (``gather_cpu.half_to_float``).
This times the serial row kernel (``gather_cpu._rows_serial``) on a random float16 table for
both formats, ``--reps`` interleaved repetitions, and checks the float16 output bit for bit
against numpy's ``astype``. It runs against whichever ``gnnsys`` is on ``PYTHONPATH``, including
trees before session 38, whose kernel looked float16 up in a 65536-entry table (an extra
``lut`` argument), so two trees can be compared by alternating runs.

Prints one JSON line: median milliseconds per gather for each format.

Usage:
    NUMBA_NUM_THREADS=1 python benchmarks/half_widen.py
    for t in /tmp/base .; do PYTHONPATH=$t python benchmarks/half_widen.py --tag $t; done
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import time
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=2_000_000, help="table rows")
    p.add_argument("--dim", type=int, default=128, help="features per row")
    p.add_argument("--ids", type=int, default=181_000, help="rows gathered (random, repeats)")
    p.add_argument("--reps", type=int, default=11)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default="", help="a label for the JSON line (e.g. the tree)")
    args = p.parse_args(argv)
    for name in ("rows", "dim", "ids", "reps"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")

    import numpy as np

    from gnnsys.unified_tensor import gather_cpu as G

    rng = np.random.default_rng(args.seed)
    table = rng.standard_normal((args.rows, args.dim), dtype=np.float32).astype(np.float16)
    bits = table.view(np.uint16)
    ids = rng.integers(0, args.rows, args.ids)
    out = np.empty((args.ids, args.dim), np.float32)
    with_lut = "lut" in inspect.signature(G._rows_serial.py_func).parameters
    if with_lut:  # (a tree before session 38)
        lut, none = G.f16_table(), G._NO_LUT
        runs = {"float16": lambda: G._rows_serial(bits, ids, lut, out),
                "bfloat16": lambda: G._rows_serial(bits, ids, none, out.view(np.uint32))}  # fmt: skip
    else:
        runs = {"float16": lambda: G._rows_serial(bits, ids, out),
                "bfloat16": lambda: G._rows_serial(bits, ids, out.view(np.uint32))}  # fmt: skip
    runs["float16"]()
    want = table[ids].astype(np.float32)
    exact = bool(np.array_equal(out.view(np.uint32), want.view(np.uint32)))
    runs["bfloat16"]()
    times = {k: [] for k in runs}
    for _ in range(args.reps):
        for k, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    row = {"bench": "half_widen", "tag": args.tag, "kernel": "table" if with_lut else "arithmetic",
           "rows": args.rows, "dim": args.dim, "ids": args.ids, "reps": args.reps,
           "float16_exact": exact}  # fmt: skip
    for k, v in times.items():
        row[f"{k}_ms"] = round(statistics.median(v) * 1e3, 3)
    print(json.dumps(row), flush=True)
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
