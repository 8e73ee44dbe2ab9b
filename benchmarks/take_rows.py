"""Time the out-of-core row permutation that converts OGB papers100M hot-first
(``gnnsys.datasets.ogb_stream.take_rows``) on a table written to disk here.

Writes a float16 table of ``--rows`` x ``--dim`` (random values, in chunks) and a random
permutation of its rows, drops the file pages from the page cache where allowed (so the run
reads from disk, as a converted table bigger than RAM would), runs ``take_rows`` under
``--budget``, checks ``--check`` random output rows against the source, and prints one JSON
line: seconds, GB/s of table, the plan (ranges, reads, bytes read) and the resident set's
growth while it runs (sampled every 10 ms).

    python benchmarks/take_rows.py --rows 11105995 --dim 128 --budget 1G --dir /tmp/take
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

from gnnsys.datasets.ogb_stream import take_rows
from gnnsys.datasets.outofcore import parse_bytes, rss_bytes
from gnnsys.graph_io import npy_header


def write_inputs(folder: Path, rows: int, dim: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with open(folder / "x.given.npy", "wb") as f:
        f.write(npy_header(np.float16, (rows, dim)))
        for lo in range(0, rows, 1 << 18):
            k = min(1 << 18, rows - lo)
            rng.standard_normal((k, dim), dtype=np.float32).astype(np.float16).tofile(f)
    np.save(folder / "orig_ids.npy", rng.permutation(rows).astype(np.int64))


def drop_cache(path: Path) -> bool:
    """Evict ``path``'s pages from the page cache (POSIX_FADV_DONTNEED after fsync)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        return True
    except (OSError, AttributeError):
        return False


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_110_599)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--budget", default="256M")
    p.add_argument("--dir", default="/tmp/gnnsys-take-rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", type=int, default=10_000, help="output rows checked")
    p.add_argument("--keep", action="store_true", help="keep the files afterwards")
    args = p.parse_args()
    if args.rows < 1 or args.dim < 1:
        p.error("--rows and --dim must be >= 1")
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    write_inputs(folder, args.rows, args.dim, args.seed)
    write_s = time.perf_counter() - t0
    dropped = all(drop_cache(folder / f) for f in ("x.given.npy", "orig_ids.npy"))
    rss0 = rss_bytes()
    peak = [rss0]
    done = threading.Event()

    def sample() -> None:  # the resident set while take_rows runs, every 10 ms
        while not done.wait(0.01):
            peak[0] = max(peak[0], rss_bytes())

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    t1 = time.perf_counter()
    plan = take_rows(folder / "x.given.npy", folder / "orig_ids.npy", folder / "x.npy",
                     memory_budget=args.budget)  # fmt: skip
    sec = time.perf_counter() - t1
    done.set()
    watcher.join()
    src = np.load(folder / "x.given.npy", mmap_mode="r")
    out = np.load(folder / "x.npy", mmap_mode="r")
    order = np.load(folder / "orig_ids.npy", mmap_mode="r")
    pick = np.random.default_rng(args.seed + 1).integers(0, args.rows, args.check)
    ok = bool(np.array_equal(out[pick], src[order[pick]]))
    table = args.rows * args.dim * 2
    row = {"bench": "take_rows", "rows": args.rows, "dim": args.dim,
           "table_bytes": table, "memory_budget": parse_bytes(args.budget),
           "write_seconds": round(write_s, 2), "page_cache_dropped": dropped,
           "seconds": round(sec, 2), "table_gb_per_s": round(table / sec / 1e9, 3),
           "plan": plan, "sampled_rss_growth_bytes": peak[0] - rss0, "rows_checked": args.check,
           "equal": ok, "machine": platform.node(), "cpus": os.cpu_count(),
           "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}  # fmt: skip
    print(json.dumps(row), flush=True)
    if not args.keep:
        for f in ("x.given.npy", "orig_ids.npy", "x.npy"):
            (folder / f).unlink(missing_ok=True)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
