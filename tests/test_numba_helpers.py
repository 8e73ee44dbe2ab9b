"""gnnsys._numba: prefetch hints never change results; serial twins equal their kernels;
variants compile only the branches their constants keep; PRANGE_ONLY parallelises the prange
loops alone, in every signature; run_items covers every item exactly once, whatever the thread
count; numba's thread pool starts without changing torch's thread count."""

import os
import subprocess
import sys
import threading

import numba
import numpy as np
import pytest

from gnnsys._numba import (
    PRANGE_ONLY,
    mode_tag,
    parallel_pays,
    prefetch,
    prefetch2d,
    prefetch_row,
    prefetch_row_write,
    run_items,
    serial_twin,
    variant,
)


def test_prefetch_hints_are_harmless():
    @numba.njit(cache=False)
    def f(a, b, c):
        s = 0
        for i in range(a.shape[0]):
            prefetch(a, (i * 7) % a.shape[0])
            prefetch2d(b, (i * 3) % b.shape[0], i % b.shape[1])
            prefetch_row(b, (i * 5) % b.shape[0])
            prefetch_row(c, np.int32(i % c.shape[0]))
            prefetch_row_write(c, i % c.shape[0])
            s += a[i] + b[i % b.shape[0], 0]
        return s

    a, b, c = np.arange(100), np.arange(40).reshape(10, 4), np.zeros((3, 2, 5))
    assert f(a, b, c) == 4950 + sum(b[i % 10, 0] for i in range(100))


@numba.njit(parallel=True, cache=False)
def _square_rows(x, out):
    for i in numba.prange(x.shape[0]):
        out[i] = x[i] * x[i]


def test_serial_twin_is_the_same_kernel_without_parallel():
    twin = serial_twin(_square_rows, "square_rows_serial")
    assert twin.py_func.__qualname__ == "square_rows_serial"
    assert not twin.targetoptions.get("parallel", False)
    x = np.arange(1000, dtype=np.float64)
    a, b = np.empty_like(x), np.empty_like(x)
    _square_rows(x, a)
    twin(x, b)
    assert np.array_equal(a, b) and np.array_equal(a, x * x)


_WITH_DOUBLE = True  # a mode switch of _bump, as sample_hops has


@numba.njit(cache=False)
def _double(x):
    return 2 * x


@numba.njit(cache=False)
def _bump(x, double):
    if _WITH_DOUBLE and double:
        return _double(x)
    return x + 1


def test_variant_prunes_switched_off_modes_before_typing():
    plain = variant(_bump, "bump_plain", False, _WITH_DOUBLE=False)
    assert plain.py_func.__qualname__ == "bump_plain"
    assert plain(3, False) == 4
    assert _double.signatures == []  # its branch was pruned: the callee never compiled
    assert _bump(3, True) == 6 and _bump(3, False) == 4  # the module's kernel keeps both
    assert _double.signatures
    with pytest.raises(KeyError, match="_WITH_TRIPLE"):
        variant(_bump, "bump_triple", False, _WITH_TRIPLE=False)


def test_variant_is_made_once_per_arguments():
    plain = variant(_bump, "bump_plain", False, _WITH_DOUBLE=False)
    assert variant(_bump, "bump_plain", False, _WITH_DOUBLE=False) is plain
    assert variant(_bump, "bump_plain", True, _WITH_DOUBLE=False) is not plain
    assert variant(_bump, "bump_with", False, _WITH_DOUBLE=True) is not plain


def _doubled_plus_one(a):
    z = np.zeros(a.shape[0])  # under parallel=True a parallel loop of its own
    for i in numba.prange(a.shape[0]):
        z[i] = a[i] * 2
    return z + 1  # and this one


def _parallel_loops(kernel):
    return [
        len(c.metadata["parfor_diagnostics"].initial_parfors) for c in kernel.overloads.values()
    ]


def test_prange_only_parallelises_the_prange_loops_alone_in_every_signature():
    full = numba.njit(parallel=True, cache=False)(_doubled_plus_one)
    only = numba.njit(parallel=PRANGE_ONLY, cache=False)(_doubled_plus_one)
    for a in (np.arange(5.0), np.arange(5, dtype=np.float32)):  # two signatures
        assert np.array_equal(only(a), full(a)) and np.array_equal(only(a), a * 2 + 1)
    assert _parallel_loops(full) == [3, 3]
    # (the second signature too: numba empties a dict of options on the first compile)
    assert _parallel_loops(only) == [1, 1]
    made = variant(_bump, "bump_parallel", True, _WITH_DOUBLE=False)
    assert made.targetoptions["parallel"] is PRANGE_ONLY


def test_mode_tag_names_the_modes_switched_on():
    assert mode_tag(("weighted", "labor"), (True, True)) == "weighted_labor"
    assert mode_tag(("weighted", "labor"), (False, True)) == "labor"
    assert mode_tag(("weighted", "labor"), (False, False)) == "uniform"


@numba.njit(nogil=True, cache=False)
def _mark(hits, owner, tag, i0, i1):
    for i in range(i0, i1):
        hits[i] += 1
        owner[i] = tag


def test_run_items_covers_every_item_once():
    for items, threads, per_thread in [(1, 4, 4), (7, 2, 4), (100, 3, 1), (1000, 2, 4), (5, 1, 4)]:
        hits = np.zeros(items, np.int64)
        owner = np.full(items, -1, np.int64)
        run_items(_mark, items, hits, owner, 0, threads=threads, per_thread=per_thread)
        assert np.array_equal(hits, np.ones(items, np.int64)), (items, threads)
    run_items(_mark, 0, np.zeros(0, np.int64), np.zeros(0, np.int64), 0, threads=2)  # no-op


def test_run_items_pieces_are_contiguous_and_use_other_threads():
    seen = []
    lock = threading.Lock()

    def kernel(out, i0, i1):
        with lock:
            seen.append((i0, i1, threading.get_ident()))
        out[i0:i1] = np.arange(i0, i1)

    out = np.full(50, -1)
    run_items(kernel, 50, out, threads=2, per_thread=4)
    assert np.array_equal(out, np.arange(50))
    pieces = sorted((a, b) for a, b, _ in seen)
    assert len(pieces) == 8 and pieces[0][0] == 0 and pieces[-1][1] == 50
    assert all(b == c for (_, b), (c, _) in zip(pieces, pieces[1:]))  # no gap, no overlap
    seen.clear()
    run_items(kernel, 50, out, threads=1)
    assert [(a, b) for a, b, _ in seen] == [(0, 50)]  # one call on the caller's thread
    assert seen[0][2] == threading.get_ident()


def test_run_items_raises_what_a_piece_raises():
    def kernel(i0, i1):
        if i0 > 0:
            raise ValueError("piece failed")

    with pytest.raises(ValueError, match="piece failed"):
        run_items(kernel, 40, threads=2)


def test_parallel_pays_needs_the_minimum_and_a_second_thread(monkeypatch):
    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)
    assert parallel_pays(100, 100) and not parallel_pays(99, 100)
    monkeypatch.setattr(numba, "get_num_threads", lambda: 1)
    assert not parallel_pays(10**9, 100)


def test_int32_bits_as_float32_reads_the_bits_as_a_float():
    from numba import njit
    from numba.core.errors import TypingError

    from gnnsys._numba import int32_bits_as_float32

    @njit
    def as_float(b):
        return int32_bits_as_float32(b)

    assert as_float(np.int32(0x3F800000)) == 1.0
    assert as_float(np.uint32(0xC0000000)) == -2.0
    assert np.isinf(as_float(np.int32(0x7F800000)))
    with pytest.raises(TypingError):  # 64-bit integers have no float32 reading
        as_float(np.int64(0x3F800000))


# A fresh interpreter: torch's thread count set (or OMP_NUM_THREADS given), then gnnsys's
# kernels imported and run (the synthetic generator's parallel kernels on this thread, then a
# loader batch); numba's own pool keeps its threads.
_THREADS_CHILD = """
import sys, numba, torch
if sys.argv[1] != "env":
    torch.set_num_threads(1)
from gnnsys.datasets import synthetic
from gnnsys.loaders.pyg import NeighborLoader
ds = synthetic("tiny", seed=0)
next(iter(NeighborLoader(ds.to_pyg(), [5, 5], batch_size=64, num_threads=1)))
print(torch.get_num_threads(), numba.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
"""


@pytest.mark.parametrize("how", ["set", "env"])
def test_numba_pool_start_leaves_torchs_thread_count(how):
    # numba's OpenMP layer sets the shared OpenMP thread count when its pool starts: a
    # torch.set_num_threads(1) or OMP_NUM_THREADS=1 made before gnnsys's first parallel kernel
    # was silently undone (processes sharing cores then oversubscribed them).
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    if how == "env":
        env["OMP_NUM_THREADS"] = "1"
    res = subprocess.run([sys.executable, "-c", _THREADS_CHILD, how], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    torch_threads, numba_threads, numba_max = map(int, res.stdout.split()[-3:])
    assert torch_threads == 1
    assert numba_threads == numba_max == 2  # numba's own threads untouched
