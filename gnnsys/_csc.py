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


@njit(nogil=True, parallel=True, cache=True)
def _sort_columns(indptr, indices, perm):
    # Sort each column by source, in place. Columns come out of the build in input order and the
    # sort is stable, so ties stay ordered by original position.
    n = indptr.shape[0] - 1
    for v in prange(n):
        lo = indptr[v]
        hi = indptr[v + 1]
        if hi - lo > 1:
            order = np.argsort(indices[lo:hi], kind="mergesort")
            s = indices[lo:hi][order]
            p = perm[lo:hi][order]
            indices[lo:hi] = s
            perm[lo:hi] = p


@njit(nogil=True, cache=True)
def _keep_mask(indptr, indices, perm, dedupe, drop_loops):
    e = indices.shape[0]
    keep = np.ones(e, dtype=np.bool_)
    n = indptr.shape[0] - 1
    new_indptr = np.zeros(n + 1, dtype=np.int64)
    for v in range(n):
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
        new_indptr[v + 1] = new_indptr[v] + kept
    return keep, new_indptr


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
    if not (dedupe or drop_loops):
        return indptr, indices, perm
    keep, new_indptr = _keep_mask(indptr, indices, perm, dedupe, drop_loops)
    if new_indptr[-1] == indices.shape[0]:
        return indptr, indices, perm
    return new_indptr, indices[keep], perm[keep]
