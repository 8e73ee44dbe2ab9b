"""Numba CPU kernels for the sparse ops (``gnnsys.ops.sparse``).

Every kernel is a *gather* over a row range ``[r0, r1)`` of a CSC (or transposed CSC)
adjacency: each row is computed by one thread, in a fixed edge order, into its own output slots.
Nothing is scattered and no atomics are used, so results are bit-for-bit the same whatever the
thread count. ``launch`` cuts the rows into chunks of balanced cost (edges + rows, so power-law
degrees do not leave threads idle) and runs the chunks on a thread pool; the kernels are
``nogil`` numba functions, so the threads run in parallel. (Serial kernels on our own threads
rather than ``parallel=True``: they compile about five times faster, and do not start an OpenMP
team next to torch's for every call.) No [E, F] message tensor is built.

Shapes: node features are viewed as ``[N, H, D]`` (H heads of D features, H = 1 for plain
features) and per-edge weights as ``[E, H]``. Kernels take float32/float64; the op layer
upcasts half precisions. No kernel checks bounds: ``gnnsys.ops.sparse`` validates every index.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numba
import numpy as np
from numba import njit

from gnnsys._numba import prefetch_row

_CHUNKS_PER_THREAD = 4
# Below this much work (edges x features) a kernel runs on the calling thread alone: handing
# chunks to other threads costs more than the work.
_SERIAL_WORK = 1 << 16

_POOL: Optional[ThreadPoolExecutor] = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(
                max_workers=numba.config.NUMBA_NUM_THREADS, thread_name_prefix="gnnsys-sparse"
            )
        return _POOL


def num_threads() -> int:
    """Threads the kernels use: numba's setting (``numba.set_num_threads``, NUMBA_NUM_THREADS)."""
    return numba.get_num_threads()


def launch(kernel, work: int, bounds: np.ndarray, *args) -> None:
    """Run ``kernel(r0, r1, *args)`` over the row chunks ``bounds`` (in parallel when large).

    Up to ``num_threads()`` threads (the caller included) take chunks in turn from a shared
    counter, so a slow chunk does not hold the others back. Which thread runs a chunk does not
    change its result.
    """
    chunks = bounds.shape[0] - 1
    # (small work first: numba's get_num_threads costs ~4 us a call)
    threads = min(num_threads(), chunks) if work >= _SERIAL_WORK else 1
    if threads <= 1:
        kernel(bounds[0], bounds[-1], *args)
        return
    counter = itertools.count()

    def worker() -> None:
        while True:
            c = next(counter)  # atomic under the GIL
            if c >= chunks:
                return
            kernel(bounds[c], bounds[c + 1], *args)

    futures = [_pool().submit(worker) for _ in range(threads - 1)]
    worker()
    for f in futures:
        # Helpers that never started (a busy pool) are not needed any more: every chunk is done.
        if not f.cancel():
            f.result()


@njit(nogil=True, cache=True)
def _bounds_kernel(indptr, num_chunks):
    # Chunk boundaries over rows so that each chunk holds about the same edges + rows.
    n = indptr.shape[0] - 1
    total = indptr[n] + n
    out = np.empty(num_chunks + 1, dtype=np.int64)
    out[0] = 0
    out[num_chunks] = n
    for c in range(1, num_chunks):
        target = (total * c) // num_chunks
        lo = out[c - 1]
        hi = n
        while lo < hi:  # first row v with indptr[v] + v >= target
            mid = (lo + hi) // 2
            if indptr[mid] + mid < target:
                lo = mid + 1
            else:
                hi = mid
        out[c] = lo
    return out


def row_bounds(indptr: np.ndarray, chunks: Optional[int] = None) -> np.ndarray:
    """Balanced chunk boundaries (int64) over the rows of ``indptr``."""
    n = indptr.shape[0] - 1
    if chunks is None:
        chunks = numba.config.NUMBA_NUM_THREADS * _CHUNKS_PER_THREAD
    return _bounds_kernel(indptr, max(1, min(n, chunks)))


# ---------------------------------------------------------------------------- spmm: sum / mean
@njit(nogil=True, cache=True)
def _prefetch_distance(row_bytes):
    """Edges ahead whose source rows ``spmm_sum_flat`` prefetches: about 4 KiB of rows, 4 to
    16 edges. Measured (one thread, the 8 chunk blocks of ``mini``, 34k sources and 260k edges
    each, forward and transposed): 16 edges at 64 B rows 0.62-0.76x the time of none, at 256 B
    0.72-0.81x; 8 edges at 512 B 0.83-0.89x (16 there: 0.93-0.99x; 32 at 64-256 B: up to 1.0x).
    """
    return max(4, min(16, 4096 // max(row_bytes, 1)))


@njit(nogil=True, cache=True)
def spmm_sum(r0, r1, indptr, indices, eperm, use_perm, x, w, mean, out):
    """out[v, h] = sum (or ``mean``) over k in row v of w[e, h] * x[indices[k], h]: per-head
    edge weights (every other sum runs on ``spmm_sum_flat``).

    ``e = eperm[k]`` when ``use_perm`` (the transposed CSC reads weights in CSC order), else k.
    """
    num_h = x.shape[1]
    num_d = x.shape[2]
    ahead = _prefetch_distance(num_h * num_d * x.itemsize)
    last = indices.shape[0] - ahead - 1
    for v in range(r0, r1):
        for h in range(num_h):
            for d in range(num_d):
                out[v, h, d] = 0
        for k in range(indptr[v], indptr[v + 1]):
            if k <= last:
                prefetch_row(x, indices[k + ahead])  # (see spmm_sum_flat)
            u = indices[k]
            e = eperm[k] if use_perm else k
            for h in range(num_h):
                wv = w[e, h]
                for d in range(num_d):
                    out[v, h, d] += wv * x[u, h, d]
        deg = indptr[v + 1] - indptr[v]
        if mean and deg > 0:
            for h in range(num_h):
                for d in range(num_d):
                    out[v, h, d] /= deg


@njit(nogil=True, cache=True)
def spmm_sum_flat(r0, r1, indptr, indices, eperm, use_perm, x, w, use_w, mean, out):
    """``spmm_sum`` for 2-D rows ``x [N, F]`` with at most one weight per edge (``w [E]``):
    the same sums, in the same order, so the same bits.

    Features of every head are one row here (the unweighted sum does not care about heads; a
    weighted one has one head): the inner loop runs over one contiguous row into a local
    accumulator, which numba vectorises. 1.3-1.5x faster than ``spmm_sum`` at 16 and 64
    features (one thread, 244k edges).
    """
    num_f = x.shape[1]
    acc = np.empty(num_f, out.dtype)
    ahead = _prefetch_distance(num_f * x.itemsize)
    last = indices.shape[0] - ahead - 4  # prefetch while k + ahead + 3 is an edge
    for v in range(r0, r1):
        acc[:] = 0
        k = indptr[v]
        k1 = indptr[v + 1]
        # Four edges a step: acc[f] stays in a register across their four additions, so an edge
        # costs one add's latency instead of a store and reload of acc[f] as well; the additions
        # keep their order, so the sums keep their bits. (1.1-1.2x at 16-128 features; eight
        # edges a step measured no better. Not for weights read through ``eperm``: four random
        # weight loads a step ran up to 1.2x slower at 64 features.)
        while k + 4 <= k1 and not (use_w and use_perm):
            if k <= last:
                # Source rows are read at random from a table that often outgrows L2 (a
                # 34k-row chunk block at 16 features): ask for the rows ``ahead`` edges on
                # now, so that their misses overlap this step's additions.
                for q in range(k + ahead, k + ahead + 4):
                    prefetch_row(x, indices[q])
            u0 = indices[k]
            u1 = indices[k + 1]
            u2 = indices[k + 2]
            u3 = indices[k + 3]
            if use_w:
                w0 = w[k]
                w1 = w[k + 1]
                w2 = w[k + 2]
                w3 = w[k + 3]
                for f in range(num_f):
                    a = acc[f] + w0 * x[u0, f]
                    a = a + w1 * x[u1, f]
                    a = a + w2 * x[u2, f]
                    acc[f] = a + w3 * x[u3, f]
            else:
                for f in range(num_f):
                    acc[f] = (((acc[f] + x[u0, f]) + x[u1, f]) + x[u2, f]) + x[u3, f]
            k += 4
        while k < k1:
            if k <= last:
                prefetch_row(x, indices[k + ahead])
            u = indices[k]
            if use_w:
                wv = w[eperm[k] if use_perm else k]
                for f in range(num_f):
                    acc[f] += wv * x[u, f]
            else:
                for f in range(num_f):
                    acc[f] += x[u, f]
            k += 1
        deg = k1 - indptr[v]
        if mean and deg > 0:
            for f in range(num_f):
                out[v, f] = acc[f] / deg
        else:
            for f in range(num_f):
                out[v, f] = acc[f]


# ---------------------------------------------------------------------------- spmm: max / min
@njit(nogil=True, cache=True)
def spmm_arg(r0, r1, indptr, indices, x, w, use_w, is_max, out, arg):
    """out[v] = max (or min) over row v of w[k] * x[indices[k]]; arg holds the winning edge.

    Ties keep the first edge of the row; a NaN message wins over every number (NaN propagates,
    as in ``torch.scatter_reduce(..., "amax")``) and the first NaN of the row is the winning
    edge, whatever the edge order. Empty rows give 0 and arg -1. ``arg`` is int32 below 2^31
    edges: half the memory traffic of int64 (measured ~1.4x faster on one core).
    """
    num_h = x.shape[1]
    num_d = x.shape[2]
    one = x.dtype.type(1)
    for v in range(r0, r1):
        lo = indptr[v]
        hi = indptr[v + 1]
        if lo == hi:
            for h in range(num_h):
                for d in range(num_d):
                    out[v, h, d] = 0
                    arg[v, h, d] = -1
            continue
        u = indices[lo]
        for h in range(num_h):
            wv = w[lo, h] if use_w else one
            for d in range(num_d):
                out[v, h, d] = wv * x[u, h, d]
                arg[v, h, d] = lo
        for k in range(lo + 1, hi):
            u = indices[k]
            for h in range(num_h):
                wv = w[k, h] if use_w else one
                if is_max:
                    for d in range(num_d):
                        val = wv * x[u, h, d]
                        cur = out[v, h, d]
                        # NaN wins (val != val) unless the row already holds one (cur != cur)
                        if val > cur or (val != val and cur == cur):
                            out[v, h, d] = val
                            arg[v, h, d] = k
                else:
                    for d in range(num_d):
                        val = wv * x[u, h, d]
                        cur = out[v, h, d]
                        # NaN wins (val != val) unless the row already holds one (cur != cur)
                        if val < cur or (val != val and cur == cur):
                            out[v, h, d] = val
                            arg[v, h, d] = k


@njit(nogil=True, cache=True)
def spmm_arg_backward_x(r0, r1, t_indptr, t_indices, t_perm, grad, w, use_w, arg, dx):
    """dx[u] = sum over out-edges (u -> v, CSC position k) of grad[v] * w[k] where arg[v] == k.

    Runs over the transposed CSC, so every source row is owned by one thread (no scatter).
    """
    num_h = dx.shape[1]
    num_d = dx.shape[2]
    one = grad.dtype.type(1)
    for u in range(r0, r1):
        for h in range(num_h):
            for d in range(num_d):
                dx[u, h, d] = 0
        for kk in range(t_indptr[u], t_indptr[u + 1]):
            v = t_indices[kk]
            k = t_perm[kk]
            for h in range(num_h):
                wv = w[k, h] if use_w else one
                for d in range(num_d):
                    if arg[v, h, d] == k:
                        dx[u, h, d] += grad[v, h, d] * wv


@njit(nogil=True, cache=True)
def spmm_arg_backward_w(r0, r1, indptr, indices, grad, x, arg, dw):
    """dw[k, h] = sum over d with arg[v, h, d] == k of grad[v, h, d] * x[indices[k], h, d].

    Edge k belongs to row v only, so the rows write disjoint slots of dw.
    """
    num_h = x.shape[1]
    num_d = x.shape[2]
    for v in range(r0, r1):
        for k in range(indptr[v], indptr[v + 1]):
            for h in range(num_h):
                dw[k, h] = 0
        for h in range(num_h):
            for d in range(num_d):
                k = arg[v, h, d]
                if k >= 0:
                    dw[k, h] += grad[v, h, d] * x[indices[k], h, d]


# ---------------------------------------------------------------------------- sddmm
@njit(nogil=True, cache=True)
def sddmm_dot(r0, r1, indptr, indices, x, y, out):
    """out[k, h] = <x[indices[k], h, :], y[v, h, :]> for every edge k of row v."""
    num_h = x.shape[1]
    num_d = x.shape[2]
    ahead = _prefetch_distance(num_h * num_d * x.itemsize)
    last = indices.shape[0] - ahead - 1
    for v in range(r0, r1):
        for k in range(indptr[v], indptr[v + 1]):
            if k <= last:
                prefetch_row(x, indices[k + ahead])  # (see spmm_sum_flat)
            u = indices[k]
            for h in range(num_h):
                acc = x.dtype.type(0)
                for d in range(num_d):
                    acc += x[u, h, d] * y[v, h, d]
                out[k, h] = acc


@njit(nogil=True, cache=True)
def sddmm_binary(r0, r1, indptr, indices, x, y, is_mul, out):
    """out[k] = x[indices[k]] * y[v] (``is_mul``) or x[indices[k]] + y[v], per edge k of row v."""
    num_h = x.shape[1]
    num_d = x.shape[2]
    ahead = _prefetch_distance(num_h * num_d * x.itemsize)
    last = indices.shape[0] - ahead - 1
    for v in range(r0, r1):
        for k in range(indptr[v], indptr[v + 1]):
            if k <= last:
                prefetch_row(x, indices[k + ahead])  # (see spmm_sum_flat)
            u = indices[k]
            for h in range(num_h):
                if is_mul:
                    for d in range(num_d):
                        out[k, h, d] = x[u, h, d] * y[v, h, d]
                else:
                    for d in range(num_d):
                        out[k, h, d] = x[u, h, d] + y[v, h, d]


# ---------------------------------------------------------------------------- edge softmax
@njit(nogil=True, cache=True)
def edge_softmax_forward(r0, r1, indptr, scores, out):
    """out[k, h] = softmax of scores[:, h] over the edges of k's row (max-shifted)."""
    num_h = scores.shape[1]
    for v in range(r0, r1):
        lo = indptr[v]
        hi = indptr[v + 1]
        if lo == hi:
            continue
        for h in range(num_h):
            m = scores[lo, h]
            for k in range(lo + 1, hi):
                if scores[k, h] > m:
                    m = scores[k, h]
            s = scores.dtype.type(0)
            for k in range(lo, hi):
                ex = np.exp(scores[k, h] - m)
                out[k, h] = ex
                s += ex
            for k in range(lo, hi):
                out[k, h] = out[k, h] / s


@njit(nogil=True, cache=True)
def edge_softmax_backward(r0, r1, indptr, p, grad, out):
    """out[k, h] = p[k, h] * (grad[k, h] - sum over k's row of p * grad)."""
    num_h = p.shape[1]
    for v in range(r0, r1):
        lo = indptr[v]
        hi = indptr[v + 1]
        for h in range(num_h):
            s = p.dtype.type(0)
            for k in range(lo, hi):
                s += p[k, h] * grad[k, h]
            for k in range(lo, hi):
                out[k, h] = p[k, h] * (grad[k, h] - s)


# ---------------------------------------------------------------------------- transpose
@njit(nogil=True, cache=True)
def _transpose_count(c0, c1, bounds, indptr, indices, hist):
    for c in range(c0, c1):
        for k in range(indptr[bounds[c]], indptr[bounds[c + 1]]):
            hist[c, indices[k]] += 1


@njit(nogil=True, cache=True)
def _transpose_offsets(hist, t_indptr):
    num_chunks, num_src = hist.shape
    total = 0
    for u in range(num_src):
        t_indptr[u] = total
        for c in range(num_chunks):
            n = hist[c, u]
            hist[c, u] = total
            total += n
    t_indptr[num_src] = total


@njit(nogil=True, cache=True)
def _transpose_scatter(c0, c1, bounds, indptr, indices, slots, t_indices, t_perm):
    for c in range(c0, c1):
        for v in range(bounds[c], bounds[c + 1]):
            for k in range(indptr[v], indptr[v + 1]):
                u = indices[k]
                p = slots[c, u]
                slots[c, u] = p + 1
                t_indices[p] = v
                t_perm[p] = k


def transpose(indptr: np.ndarray, indices: np.ndarray, num_src: int) -> tuple:
    """CSC of the reversed edges: (t_indptr [num_src+1], t_indices [E] dst ids, t_perm [E]).

    ``t_perm[p]`` is the CSC position of the p-th reversed edge (``indices``' dtype: int32 below
    2^31 edges). A stable counting sort: each reversed row lists its edges in CSC order,
    whatever the number of chunks.
    """
    e = indices.shape[0]
    n = indptr.shape[0] - 1
    # One histogram row per chunk: keep their memory within the edge arrays' own size.
    chunks = int(max(1, min(n, num_threads(), e // max(num_src, 1))))
    bounds = _bounds_kernel(indptr, chunks)
    one_each = np.arange(chunks + 1, dtype=np.int64)  # chunk c is the pool's task c
    work = e + n + num_src
    hist = np.zeros((chunks, num_src), dtype=np.int64)
    launch(_transpose_count, work, one_each, bounds, indptr, indices, hist)
    t_indptr = np.empty(num_src + 1, dtype=np.int64)
    _transpose_offsets(hist, t_indptr)
    t_indices = np.empty(e, dtype=indices.dtype)
    t_perm = np.empty(e, dtype=np.int32 if e < 2**31 else np.int64)
    launch(_transpose_scatter, work, one_each, bounds, indptr, indices, hist, t_indices, t_perm)
    return t_indptr, t_indices, t_perm
