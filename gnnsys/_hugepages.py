"""Transparent huge pages for the big tables that gathers and samplers read at random.

A random row gather touches a new page on nearly every row, and with 4 KiB pages each such
touch of a table much bigger than the TLB's reach costs a page walk (nested under a VM).
numpy asks the kernel for huge pages on its own big allocations (``madvise(MADV_HUGEPAGE)``
from 4 MiB), torch does not: a feature tensor made by torch (``torch.load`` of a saved
dataset, which is how PyG and DGL datasets come, ``torch.randn``, a ``torch.cat``) sits on
4 KiB pages. ``advise_huge`` asks for huge pages on such a table's 2 MiB-aligned interior and
collapses the pages it already has into huge ones (``MADV_COLLAPSE``, Linux 6.1 and later; on
older kernels ``khugepaged`` does it slowly in the background), on a background thread, once
per table. The contents do not change, nor does the memory used (the table's pages are all
in use already). File maps are left alone (``gnnsys._mapped`` handles those).

Measured on this project's 2-core VM (session 48): a serial gather of 84k random rows of
400 B from a 242 MB torch-made table 15.8 -> 11.7 ms, of 180k rows from a 980 MB one 43.2 ->
32.8 ms (9 rounds, medians); the rmat20 loader's DGL-semantics batch (one thread, features a
torch tensor) 18.9 -> 17.0 ms. Collapsing took 0.8 s for 242 MB, 1.6 s for 980 MB. Set
``GNNSYS_HUGEPAGES=0`` to leave a process's pages alone.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from gnnsys import _mapped

MIN_BYTES = 32 << 20  # tables smaller than this are left alone (the TLB mostly covers them)
HUGE = 2 << 20
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25

_lock = threading.Lock()
# 2 MiB-aligned range -> a weak reference to the table advised there (a range whose table is
# gone may hold a new table: advised again)
_advised: Dict[Tuple[int, int], Any] = {}


def _after_fork_in_child() -> None:
    # A lock held by another thread at the fork would stay held for ever in the child (which
    # has only the forking thread); what was advised stays so (the child's areas are copies).
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def enabled() -> bool:
    """Whether tables are advised: Linux, unless ``GNNSYS_HUGEPAGES=0``."""
    return sys.platform.startswith("linux") and os.environ.get("GNNSYS_HUGEPAGES", "1") != "0"


def host_span(table: Any) -> Optional[Tuple[int, int]]:
    """(address, bytes) of a table's host memory: a numpy array, a contiguous CPU tensor that
    is not pinned (pinned memory is the CUDA driver's), or a ``UnifiedTensor``'s host rows;
    None for anything else."""
    rows = getattr(table, "_rows_np", None)  # a UnifiedTensor
    if isinstance(rows, np.ndarray):
        table = rows
    if isinstance(table, np.ndarray):
        return (table.ctypes.data, table.nbytes) if table.flags.c_contiguous else None
    if isinstance(table, torch.Tensor) and table.device.type == "cpu":
        if table.is_sparse or table.is_pinned() or not table.is_contiguous():
            return None
        return table.data_ptr(), table.numel() * table.element_size()
    return None


def aligned_interior(addr: int, nbytes: int) -> Tuple[int, int]:
    """The whole 2 MiB pages inside [addr, addr + nbytes): (lo, hi), lo == hi when none."""
    lo, hi = _mapped._pages_within(addr, addr + nbytes, HUGE)
    return lo, max(lo, hi)


def _anonymous(lo: int, hi: int) -> bool:
    """Whether [lo, hi) lies in anonymous memory (no file behind it: not a map of a file,
    whose pages belong to the page cache), per ``/proc/self/maps``."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                start, _, end = parts[0].partition("-")
                a, b = int(start, 16), int(end, 16)
                if b <= lo or a >= hi:
                    continue
                # (no name, the heap or a named anonymous area; not a file, nor shared
                # memory such as /dev/shm or memfd, whose pages are the page cache's)
                path = parts[5].strip() if len(parts) > 5 else ""
                if path and path != "[heap]" and not path.startswith("[anon"):
                    return False
    except (OSError, ValueError, IndexError):
        return False
    return True


def advise_huge(table: Any, wait: bool = False) -> bool:
    """Back ``table`` (see ``host_array``) with huge pages if it is anonymous memory of at
    least ``MIN_BYTES`` not advised before; the collapse runs on a background thread (``wait``:
    on this one). True if advice was started."""
    if not enabled():
        return False
    span = host_span(table)
    if span is None or span[1] < MIN_BYTES:
        return False
    lo, hi = aligned_interior(*span)
    if lo == hi:
        return False
    with _lock:
        ref = _advised.get((lo, hi))
        if ref is not None and ref() is not None:
            return False
        if not _anonymous(lo, hi):
            return False
        try:
            _advised[(lo, hi)] = weakref.ref(table)
        except TypeError:  # (not weakly referenceable: advised again if seen again)
            pass
    if wait:
        _collapse(lo, hi)
    else:
        threading.Thread(target=_collapse, args=(lo, hi), name="gnnsys-hugepages",
                         daemon=True).start()  # fmt: skip
    return True


def _collapse(lo: int, hi: int) -> None:
    # (The thread holds no reference to the table: freeing it is never this daemon thread's
    # job, which at interpreter exit could abort in torch's C++. Were its memory freed and
    # reused meanwhile, the advice would only change the page size under other data: the
    # kernel never changes contents; an unmapped range fails with ENOMEM.)
    if _mapped.madvise_range(lo, hi - lo, MADV_HUGEPAGE):
        _mapped.madvise_range(lo, hi - lo, MADV_COLLAPSE)  # (EINVAL before Linux 6.1: khugepaged)
