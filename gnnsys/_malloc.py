"""Keep glibc from returning scratch memory to the OS after every batch (or chunk).

Each batch allocates and frees a few MiB of kernel scratch and output arrays. With glibc's
defaults, blocks that size are mmap'd, or the freed top of the heap is trimmed, so the next
batch faults every page in again: measured here at ~1/3 of the sampling time (15.4 -> 10.2 ms
a batch on the issue's RMAT workload). Raising the mmap and trim thresholds keeps that memory
in the heap for reuse. The full-graph trainers' ranks (``pipeline_parallel.launch.run_rank``)
call it too: their per-chunk activations and gradients are the same size every epoch (one
rank holding all 32 layers of ``mini``: epochs 2.5-3% shorter). This is process-wide, done
once, only with glibc; set ``GNNSYS_MALLOC_TUNING=0`` to leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading

MMAP_THRESHOLD = 32 << 20  # glibc's maximum: blocks below it come from the heap
TRIM_THRESHOLD = 256 << 20  # free heap kept before returning memory to the OS
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3

_done = False
_lock = threading.Lock()


def tune_malloc() -> bool:
    """Raise glibc's mmap/trim thresholds once per process; True if they are (now) raised.

    Example:
        >>> tune_malloc()  # on Linux with glibc
        True
    """
    global _done
    with _lock:
        if _done:
            return True
        if os.environ.get("GNNSYS_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith(
            "linux"
        ):
            return False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc (musl, ...)
            return False
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
        _done = ok
        return ok
