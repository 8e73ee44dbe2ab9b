"""File maps read at random, and reading them with many faults in flight.

A table mapped from a file bigger than the page cache is advised ``MADV_RANDOM``
(``graph_io.advise_random``), which registers its address range here. A thread that touches a
page of it not in memory waits for the disk, not for a CPU, so the row gathers read such a
table from ``IO_THREADS`` threads (default 16, ``GNNSYS_IO_THREADS``) rather than one per core:
that many page faults are then in flight at once, and the disk (or the host's cache behind a
VM's disk) serves them in parallel. Measured on this project's VM: random 4 KB reads from one
thread 46k/s, from 8 threads 186k/s.

A stale range (its map since closed) is harmless: memory that reuses the address is then
gathered by more threads than needed, with the same result.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

MIN_SLICE_ROWS = 256  # rows per thread below which a thread is not worth waking


def _io_threads() -> int:
    raw = os.environ.get("GNNSYS_IO_THREADS", "16")
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"GNNSYS_IO_THREADS must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"GNNSYS_IO_THREADS must be a positive integer, got {raw!r}")
    return value


IO_THREADS = _io_threads()

_lock = threading.Lock()
_ranges: List[Tuple[int, int]] = []
_pool: Optional[ThreadPoolExecutor] = None
_pool_pid = -1  # threads do not survive fork: a forked child makes its own pool, not relying
# on how a given Python revives an inherited executor (3.11 starts new threads on submit)


def mark_random(ptr: int, nbytes: int) -> None:
    """Register [ptr, ptr + nbytes) as a file map read at random."""
    with _lock:
        if (ptr, ptr + nbytes) not in _ranges:
            _ranges.append((ptr, ptr + nbytes))


def reads_at_random(a: np.ndarray) -> bool:
    """Whether ``a``'s first byte lies in a registered map (``a`` a numpy array)."""
    if not _ranges:
        return False
    ptr = a.__array_interface__["data"][0]
    return any(lo <= ptr < hi for lo, hi in _ranges)


def run_sliced(fn: Callable[[int, int], Any], n: int) -> None:
    """``fn(lo, hi)`` over consecutive slices of [0, n), on up to ``IO_THREADS`` threads at
    once; returns when all are done (re-raising the first error). ``fn`` must release the GIL
    (a nogil numba kernel) and write disjoint outputs per slice."""
    global _pool, _pool_pid
    parts = max(1, min(IO_THREADS, n // MIN_SLICE_ROWS))
    if parts == 1:
        fn(0, n)
        return
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="gnnsys-io")
            _pool_pid = os.getpid()
        pool = _pool
    cuts = np.linspace(0, n, parts + 1).astype(np.int64)
    futures = [pool.submit(fn, int(cuts[k]), int(cuts[k + 1])) for k in range(parts)]
    for f in futures:
        f.result()
