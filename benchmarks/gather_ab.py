"""A/B of the CPU row gather kernel between source trees, in one process, rounds interleaved.

Imports a copy of each tree's ``gnnsys/unified_tensor/gather_cpu.py`` (the tree's own kernel
source, compiled and cached in a temporary folder by ``ab_trees.load_tree_module``; the helpers
it imports come from the running gnnsys) and times its serial row kernel on the same random
tables and ids, one thread, the trees alternating within every round. Cases cover a table
under the prefetch thresholds (mini-mag's paper rows), tables the kernel prefetches
(rmat20-like 400 B rows, 8 KB rows) and a float16 table widened to float32 (papers-like).
Every tree's output is checked against numpy's ``src[ids]`` first.

Prints one JSON line per case: ms per gather of each tree per round, and the per-round ratio of
each later tree to the first.

Usage:
    git archive <commit> | tar -x -C /tmp/base
    python benchmarks/gather_ab.py --trees /tmp/base,. --rounds 7
    python benchmarks/gather_ab.py --trees /tmp/base,. --cases mini-mag,rmat20 --scale 0.1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from ab_trees import load_tree_module

GATHER = "gnnsys/unified_tensor/gather_cpu.py"

# name -> (rows, row words, stored dtype, batch ids, output dtype)
CASES: Dict[str, Tuple[int, int, type, int, type]] = {
    "mini-mag": (36_819, 64, np.uint64, 28_000, np.uint64),  # 512 B rows, 19 MB: no prefetch
    "rmat20": (605_000, 50, np.uint64, 180_000, np.uint64),  # 400 B rows, 242 MB: prefetched
    "wide": (200_000, 1024, np.uint64, 8_000, np.uint64),  # 8 KB rows, 1.6 GB: prefetched
    "float16": (4_000_000, 128, np.uint16, 60_000, np.float32),  # 256 B stored, 1 GB, widened
}


def run_case(name: str, kernels: List, scale: float, rounds: int, reps: int) -> Dict:
    rows, words, sdt, nids, odt = CASES[name]
    rows = max(1, int(rows * scale))
    nids = max(1, int(nids * scale))
    rng = np.random.default_rng(0)
    high = 1 << 15 if sdt == np.uint16 else 1 << 62  # (float16: the sign bit clear)
    src = rng.integers(0, high, (rows, words)).astype(sdt)
    ids = [rng.integers(0, rows, nids) for _ in range(8)]
    out = np.empty((nids, words), odt)
    if sdt == np.uint16:  # float16 bits widened: numpy's own conversion
        expect = src[ids[0]].view(np.float16).astype(odt)
    else:
        expect = src[ids[0]]
    for k in kernels:
        out[:] = 0
        k(src, ids[0], out)
        if not np.array_equal(out, expect, equal_nan=sdt == np.uint16):
            raise AssertionError(f"case {name}: a tree's kernel gathered wrong rows")
    ms: List[List[float]] = [[] for _ in kernels]
    for _ in range(rounds):
        for t, k in enumerate(kernels):
            t0 = time.perf_counter()
            for i in range(reps):
                k(src, ids[i % len(ids)], out)
            ms[t].append(round((time.perf_counter() - t0) / reps * 1e3, 4))
    ratios = [[round(a / b, 3) for a, b in zip(m, ms[0])] for m in ms[1:]]
    return {
        "case": name,
        "table_rows": rows,
        "row_bytes": words * np.dtype(sdt).itemsize,
        "batch_rows": nids,
        "ms_per_gather": ms,
        "ratio_to_first": ratios,
        "median_ratio_to_first": [statistics.median(r) for r in ratios],
    }


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trees", required=True, help="comma-separated gnnsys source trees (>= 1)")
    p.add_argument("--cases", default=",".join(CASES), help=f"of {','.join(CASES)}")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--reps", type=int, default=12, help="gathers timed per tree and round")
    p.add_argument("--scale", type=float, default=1.0, help="table and batch size factor")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.reps < 1:
        p.error("--rounds and --reps must be >= 1")
    if not 0 < args.scale <= 1:
        p.error("--scale must lie in (0, 1]")
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown or not cases:
        p.error(f"--cases must name some of {', '.join(CASES)} (got {args.cases!r})")
    trees = [Path(t).expanduser().resolve() for t in args.trees.split(",") if t]
    if not trees:
        p.error("--trees needs at least one tree")
    for t in trees:
        if not (t / GATHER).is_file():
            p.error(f"{t / GATHER} not found: --trees takes gnnsys source trees")
    kernels = [load_tree_module(str(t), GATHER, "_gather_ab_")._rows_serial for t in trees]
    print(json.dumps({"trees": [str(t) for t in trees], "rounds": args.rounds,
                      "reps": args.reps, "scale": args.scale}), flush=True)  # fmt: skip
    for c in cases:
        print(json.dumps(run_case(c, kernels, args.scale, args.rounds, args.reps)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
