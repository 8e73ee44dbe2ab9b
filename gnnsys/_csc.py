"""Numba kernels that build and tidy CSC adjacency (incoming edges grouped by destination).

The COO -> CSC build is a parallel, stable counting sort: the edges are cut into chunks, each
chunk counts its destinations into its own histogram, one prefix sum over (node, chunk) gives
every chunk its write offsets, and each chunk scatters its edges in order. Stability makes the
result independent of the number of chunks, so it is the same whatever the thread count.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange


@njit(nogil=True, parallel=True, cache=True)
def _count(dst, num_nodes, num_chunks):
    e = dst.shape[0]
    hist = np.zeros((num_chunks, num_nodes), dtype=np.int64)
    step = (e + num_chunks - 1) // num_chunks
    for c in prange(num_chunks):
        lo = c * step
        hi = min(e, lo + step)
        for i in range(lo, hi):
            hist[c, dst[i]] += 1
    return hist


@njit(nogil=True, cache=True)
def _offsets(hist, indptr):
    # hist[c, v] becomes the first write slot of chunk c for node v; indptr gets the column starts.
    num_chunks, num_nodes = hist.shape
    total = 0
    for v in range(num_nodes):
        indptr[v] = total
        for c in range(num_chunks):
            n = hist[c, v]
            hist[c, v] = total
            total += n
    indptr[num_nodes] = total


@njit(nogil=True, parallel=True, cache=True)
def _scatter(src, dst, slots, out_src, out_pos):
    e = dst.shape[0]
    num_chunks = slots.shape[0]
    step = (e + num_chunks - 1) // num_chunks
    for c in prange(num_chunks):
        lo = c * step
        hi = min(e, lo + step)
        for i in range(lo, hi):
            v = dst[i]
            k = slots[c, v]
            slots[c, v] = k + 1
            out_src[k] = src[i]
            out_pos[k] = i


def coo_to_csc(src: np.ndarray, dst: np.ndarray, num_nodes: int, index_dtype) -> tuple:
    """Group edges by destination. Returns (indptr int64 [N+1], indices [E], perm int64 [E]).

    ``perm[k]`` is the position in the input of the k-th CSC edge (stable within a column).
    """
    e = dst.shape[0]
    threads = numba.get_num_threads()
    # One histogram row per chunk: bound their memory by the edge arrays' own size.
    num_chunks = int(max(1, min(threads, e // max(num_nodes, 1))))
    hist = _count(dst, num_nodes, num_chunks)
    indptr = np.empty(num_nodes + 1, dtype=np.int64)
    _offsets(hist, indptr)
    indices = np.empty(e, dtype=index_dtype)
    perm = np.empty(e, dtype=np.int64)
    _scatter(src, dst, hist, indices, perm)
    return indptr, indices, perm


_INSERTION_MAX = 24  # columns up to this long are sorted in place by insertion sort
_HUB_MIN = 1 << 16  # columns this long are left to numpy's stable sort (see sort_and_filter)


@njit(nogil=True, parallel=True, cache=True)
def _sort_columns(indptr, indices, perm):
    # Sort each column by source, in place. Columns come out of the build in input order and every
    # sort used is stable, so ties stay ordered by original position. Short columns (most of them
    # in a power-law graph) are insertion-sorted without allocating, longer ones merge-sorted;
    # hub columns are skipped here: one thread would sort them alone, several times slower than
    # numpy's stable sort.
    n = indptr.shape[0] - 1
    for v in prange(n):
        lo = indptr[v]
        hi = indptr[v + 1]
        if hi - lo <= 1 or hi - lo >= _HUB_MIN:
            continue
        if hi - lo <= _INSERTION_MAX:
            for k in range(lo + 1, hi):
                key = indices[k]
                pk = perm[k]
                j = k - 1
                while j >= lo and indices[j] > key:
                    indices[j + 1] = indices[j]
                    perm[j + 1] = perm[j]
                    j -= 1
                indices[j + 1] = key
                perm[j + 1] = pk
        else:
            order = np.argsort(indices[lo:hi], kind="mergesort")
            s = indices[lo:hi][order]
            p = perm[lo:hi][order]
            for k in range(hi - lo):  # loops: slice assignment compiles numba's error text
                indices[lo + k] = s[k]
                perm[lo + k] = p[k]


@njit(nogil=True, parallel=True, cache=True)
def _keep_mask(indptr, indices, dedupe, drop_loops):
    # keep[k]: edge k survives; counts[v + 1]: survivors of column v (prefix-summed by the caller).
    e = indices.shape[0]
    keep = np.ones(e, dtype=np.bool_)
    n = indptr.shape[0] - 1
    counts = np.zeros(n + 1, dtype=np.int64)
    for v in prange(n):
        lo = indptr[v]
        hi = indptr[v + 1]
        kept = 0
        for k in range(lo, hi):
            if drop_loops and indices[k] == v:
                keep[k] = False
            elif dedupe and k > lo and indices[k] == indices[k - 1]:
                keep[k] = False
            else:
                kept += 1
        counts[v + 1] = kept
    return keep, counts


@njit(nogil=True, parallel=True, cache=True)
def _compact(indptr, new_indptr, keep, indices, perm, out_indices, out_perm):
    # Copy the surviving edges of every column to its new place, in order.
    n = indptr.shape[0] - 1
    for v in prange(n):
        w = new_indptr[v]
        for k in range(indptr[v], indptr[v + 1]):
            if keep[k]:
                out_indices[w] = indices[k]
                out_perm[w] = perm[k]
                w += 1


def sort_and_filter(
    indptr: np.ndarray,
    indices: np.ndarray,
    perm: np.ndarray,
    *,
    dedupe: bool,
    drop_loops: bool,
) -> tuple:
    """Optionally sort columns by source, drop duplicates (keeping the first) and self loops."""
    if dedupe:
        _sort_columns(indptr, indices, perm)
        for v in np.flatnonzero(np.diff(indptr) >= _HUB_MIN):
            lo, hi = indptr[v], indptr[v + 1]
            order = np.argsort(indices[lo:hi], kind="stable")
            indices[lo:hi] = indices[lo:hi][order]
            perm[lo:hi] = perm[lo:hi][order]
    if not (dedupe or drop_loops):
        return indptr, indices, perm
    keep, new_indptr = _keep_mask(indptr, indices, dedupe, drop_loops)
    np.cumsum(new_indptr, out=new_indptr)
    total = int(new_indptr[-1])
    if total == indices.shape[0]:
        return indptr, indices, perm
    out_indices = np.empty(total, dtype=indices.dtype)
    out_perm = np.empty(total, dtype=perm.dtype)
    _compact(indptr, new_indptr, keep, indices, perm, out_indices, out_perm)
    return new_indptr, out_indices, out_perm
