"""CPU row gathers: numba kernels, parallel over rows, that release the GIL.

Rows are copied as machine words (the widest unsigned integer that divides the row's byte
width), so one compiled kernel serves every dtype of that width. Half-width storage is widened
on the fly: bfloat16 by a 16-bit shift into float32, float16 by integer steps that vectorise
(``half_to_float``: exact, subnormals and NaN included; the 65536-entry table lookup used
before compiled to AVX-512 gathers and took 1.7x as long). Random rows are latency bound (TLB
and DRAM misses, worse under a VM's nested page walks), so for wide rows each thread prefetches
the cache lines of the row ``PREFETCH_ROWS`` ahead while it copies the current one. The
kernels do no bounds checks: callers validate ids first (a prefetch is only a hint and never
faults).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from numba import njit, prange
from numba.core import types
from numba.extending import overload

from gnnsys import _mapped
from gnnsys._numba import (
    PRANGE_ONLY,
    int32_bits_as_float32,
    parallel_pays,
    prefetch2d,
    serial_twin,
    variant,
)

# Rows per parallel work item: large enough to amortise scheduling, small enough to balance.
_BLOCK_ROWS = 64
# Below this many output bytes a serial loop beats waking the thread pool.
PARALLEL_MIN_BYTES = 1 << 18

_WORD_DTYPES = (np.uint64, np.uint32, np.uint16, np.uint8)
# Rows prefetched ahead of the copy (every cache line of the row): rows of at least
# PREFETCH_MIN_ROW_BYTES, and rows of at least PREFETCH_SHORT_ROW_BYTES in a table of at least
# PREFETCH_MIN_TABLE_BYTES. Measured first (CPU time per byte, 1 GiB table, random ids, one
# thread, busy shared VM): 8 KB rows gain ~2x, 4 KB rows 1.0-1.4x, rows under 2 KB lose 5-30%.
# Measured again in session 30, quiet, caches flushed before each gather as the sampler leaves
# them (benchmarks/gather_prefetch.py; rows 128 B - 2 KB, 16 rows ahead vs none): tables of
# 64 MB to 1 GiB 0.70-0.90x the time, a 19 MB table 0.80-1.29x (no gain at 512 B).
# Session 48: the short-row rule now holds for maps read at random only (``_SHORT_AHEAD``; the
# kernel ``_run`` picks for them). A table in memory sits on huge pages (numpy's own, or
# gnnsys._hugepages for torch's), where prefetching short rows costs more than it saves:
# benchmarks/gather_prefetch.py on 242 and 934 MB numpy tables, 256 and 400 B rows, 16 rows
# ahead took 1.13-1.23x the time of none; the rmat20 loader without it 113-122 vs 113-115
# batches/s (PyG semantics) and 117-122 vs 112-117 (DGL), 3 pairs
# (``cpu-2core-vm_gather_short_ahead_s48.jsonl``).
PREFETCH_ROWS = 16
PREFETCH_MIN_ROW_BYTES = 4096
PREFETCH_SHORT_ROW_BYTES = 128
PREFETCH_MIN_TABLE_BYTES = 64 << 20
_LINE = 64
_SHORT_AHEAD = False  # short rows prefetched too (a compile-time switch: ``_rows_ahead_*``)


@njit(nogil=True, cache=True)
def _prefetches(src, short):  # pragma: no cover - compiled
    # Whether the gathers prefetch rows of ``src`` ahead (see PREFETCH_ROWS); ``short``: rows
    # under PREFETCH_MIN_ROW_BYTES too (maps read at random).
    row = src.shape[1] * src.itemsize
    return row >= PREFETCH_MIN_ROW_BYTES or (
        short and row >= PREFETCH_SHORT_ROW_BYTES and src.shape[0] * row >= PREFETCH_MIN_TABLE_BYTES
    )


_F16_EXP = 0x7C00  # float16 exponent bits
_F32_REBIAS = 0x38000000  # (127 - 15) << 23: float16 -> float32 exponent bias, in place
_F32_MIN_NORMAL16 = 0x38800000  # float32 bits of 2 ** -14, float16's least normal value


@njit(nogil=True, inline="always")
def half_to_float(h):  # pragma: no cover - compiled
    """The float32 value of float16 bits ``h`` (uint16), exactly, as numpy's ``astype``
    (subnormals, signed zeros, infinities and NaN payloads included), in branch-free integer
    steps that vectorise: the magnitude's bits shifted into float32 position and rebiased;
    infinity and NaN rebiased to the top exponent; a subnormal m * 2**-24 computed as
    (2**-14 + m * 2**-24) - 2**-14, both exact in float32; the sign applied last."""
    em = np.int64(h) & 0x7FFF
    shifted = em << 13
    e = em & _F16_EXP
    top = _F32_REBIAS if e != _F16_EXP else 2 * _F32_REBIAS
    normal = int32_bits_as_float32(np.int32(shifted + top))
    tiny = int32_bits_as_float32(np.int32(shifted + _F32_MIN_NORMAL16)) - int32_bits_as_float32(
        np.int32(_F32_MIN_NORMAL16)
    )
    f = tiny if e == 0 else normal
    return -f if (np.int64(h) & 0x8000) != 0 else f


def _cell(src, r, j, out):  # pragma: no cover - typed by the overload below
    raise NotImplementedError


@overload(_cell, jit_options={"nogil": True, "cache": True}, inline="always")
def _cell_typed(src, r, j, out):
    # One output element of row ``r``, chosen by the dtypes at compile time: a word copy (same
    # dtype), bfloat16 bits widened by a shift (uint16 -> uint32 view of float32), or float16
    # bits widened (uint16 -> float32 or float64).
    if src.dtype == out.dtype:
        return lambda src, r, j, out: src[r, j]
    if src.dtype == types.uint16 and out.dtype == types.uint32:
        return lambda src, r, j, out: np.uint32(src[r, j]) << np.uint32(16)
    return lambda src, r, j, out: half_to_float(src[r, j])


@njit(nogil=True, parallel=PRANGE_ONLY, cache=True)
def _rows_parallel(src, ids, out):  # pragma: no cover - compiled
    n = ids.shape[0]
    d = src.shape[1]
    pre = _prefetches(src, _SHORT_AHEAD)
    step = max(1, _LINE // src.itemsize)
    nblk = (n + _BLOCK_ROWS - 1) // _BLOCK_ROWS
    for b in prange(nblk):
        lo = b * _BLOCK_ROWS
        hi = min(n, lo + _BLOCK_ROWS)
        for i in range(lo, hi):
            # (written out: as an inlined helper taking the arrays, the prefetching loop paid an
            # atomic reference count increment and decrement per row)
            if pre and i + PREFETCH_ROWS < n:
                ra = ids[i + PREFETCH_ROWS]
                for j in range(0, d, step):
                    prefetch2d(src, ra, j)
            r = ids[i]
            for j in range(d):
                out[i, j] = _cell(src, r, j, out)


_rows_serial = serial_twin(_rows_parallel, "_rows_serial")
# The kernel for maps read at random (bigger than memory, 4 KiB page-cache pages): short rows
# prefetched ahead too. Serial: ``_run`` slices such gathers over many threads itself.
_rows_ahead_serial = variant(_rows_parallel, "_rows_ahead_serial", False, _SHORT_AHEAD=True)


@njit(nogil=True, cache=True)
def _split_hits(ids, slot, hit_pos, hit_slot, miss_pos, miss_ids):  # pragma: no cover
    # Serial scan (cheap, one pass over the batch) returning counts; kept in one kernel so the
    # split is deterministic and the arrays are filled in batch order.
    nh = 0
    nm = 0
    for i in range(ids.shape[0]):
        s = slot[ids[i]]
        if s >= 0:
            hit_pos[nh] = i
            hit_slot[nh] = s
            nh += 1
        else:
            miss_pos[nm] = i
            miss_ids[nm] = ids[i]
            nm += 1
    return nh, nm


def use_parallel(nbytes: int) -> bool:
    """Whether a gather of ``nbytes`` output bytes takes the parallel kernel
    (``_numba.parallel_pays`` from ``PARALLEL_MIN_BYTES``; one thread: the serial twin, ~30 us
    less on a 14 MB gather here)."""
    return parallel_pays(nbytes, PARALLEL_MIN_BYTES)


def word_view(a: np.ndarray) -> np.ndarray:
    """View a C-contiguous 2-D array's rows as the widest unsigned words that divide a row.

    Example:
        >>> word_view(np.zeros((3, 4), np.float32)).dtype
        dtype('uint64')
    """
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {a.shape}")
    row_bytes = a.shape[1] * a.itemsize
    if a.shape[1] == 0 or a.shape[0] == 0:
        return a.view(np.uint8) if a.flags.c_contiguous else a
    addr = a.__array_interface__["data"][0]
    for w in _WORD_DTYPES:
        size = np.dtype(w).itemsize
        if row_bytes % size == 0 and addr % size == 0:
            return a.view(w)
    return a.view(np.uint8)  # pragma: no cover - uint8 always divides


def gather_rows(
    src: np.ndarray, ids: np.ndarray, out: np.ndarray, *, parallel: Optional[bool] = None
) -> np.ndarray:
    """Copy ``src[ids]`` into ``out`` (same dtype, C-contiguous 2-D arrays); ids must be valid.

    ``parallel=None`` picks the parallel kernel as ``use_parallel`` does.

    Example:
        >>> src = np.arange(12, dtype=np.float32).reshape(4, 3)
        >>> gather_rows(src, np.array([3, 0]), np.empty((2, 3), np.float32))[0].tolist()
        [9.0, 10.0, 11.0]
    """
    if out.shape[0] == 0 or out.shape[1] == 0:
        return out
    s = word_view(src)
    o = out.view(s.dtype)
    if parallel is None:
        parallel = use_parallel(out.nbytes)
    _run(s, ids, o, parallel)
    return out


def _run(src: np.ndarray, ids: np.ndarray, out: np.ndarray, parallel: bool):
    # A table mapped from a file read at random: many threads, so that many page faults wait
    # on the disk at once (see gnnsys._mapped); otherwise one thread per core.
    if _mapped.reads_at_random(src):

        def part(lo: int, hi: int) -> None:
            _rows_ahead_serial(src, ids[lo:hi], out[lo:hi])

        _mapped.run_sliced(part, ids.shape[0])
        _mapped.request_trim()
    else:
        (_rows_parallel if parallel else _rows_serial)(src, ids, out)


def gather_rows_upcast(
    src_bits: np.ndarray, ids: np.ndarray, out: np.ndarray, *, kind: str
) -> np.ndarray:
    """Gather half-width rows (uint16 bit patterns) widened into ``out`` (float32 or float64).

    ``kind`` is "bfloat16" or "float16": the format of the stored bits.

    Example:
        >>> bits = np.array([[0x3F80]], np.uint16)  # bfloat16 1.0
        >>> gather_rows_upcast(bits, np.array([0]), np.empty((1, 1), np.float32), kind="bfloat16")
        array([[1.]], dtype=float32)
    """
    if out.shape[0] == 0 or out.shape[1] == 0:
        return out
    # (always the parallel kernel: with one numba thread its serial twin measured 7-15% slower
    # on these widening gathers, session 38; plain copies take the twin, see gather_rows)
    parallel = True
    if kind == "bfloat16" and out.dtype == np.float32:
        _run(src_bits, ids, out.view(np.uint32), parallel)
    elif kind == "bfloat16":
        tmp = np.empty(out.shape, np.float32)
        _run(src_bits, ids, tmp.view(np.uint32), parallel)
        out[...] = tmp
    elif kind == "float16":
        _run(src_bits, ids, out, parallel)
    else:
        raise ValueError(f"kind must be 'bfloat16' or 'float16', got {kind!r}")
    return out


def split_hits(ids: np.ndarray, slot: np.ndarray):
    """Split a batch into cache hits and misses, both in batch order.

    Returns (hit_pos, hit_slot, miss_pos, miss_ids) as int64 arrays.

    Example:
        >>> split_hits(np.array([0, 1]), np.array([-1, 0], np.int32))[2].tolist()
        [0]
    """
    n = ids.shape[0]
    hit_pos = np.empty(n, np.int64)
    hit_slot = np.empty(n, np.int64)
    miss_pos = np.empty(n, np.int64)
    miss_ids = np.empty(n, np.int64)
    nh, nm = _split_hits(ids, slot, hit_pos, hit_slot, miss_pos, miss_ids)
    return hit_pos[:nh], hit_slot[:nh], miss_pos[:nm], miss_ids[:nm]
