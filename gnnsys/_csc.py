"""Numba kernels that build and tidy CSC adjacency (incoming edges grouped by destination).

The COO -> CSC build is a parallel, stable counting sort: the edges are cut into chunks, each
chunk counts its destinations into its own histogram, one prefix sum over (node, chunk) gives
every chunk its write offsets, and each chunk scatters its edges in order. Stability makes the
result independent of the number of chunks, so it is the same whatever the thread count.
"""

from __future__ import annotations

from typing import Optional

import numba
import numpy as np
from numba import njit, prange

from gnnsys._numba import run_items


# _count and _scatter are serial kernels over a range of chunks, run on run_items' threads:
# parallel=True kernels would add seconds of compiling to every cold Graph build.
@njit(nogil=True, cache=True)
def _count(dst, hist, c0, c1):
    # hist[c, v]: the edges into v among chunk c's (chunks c0..c1-1).
    e = dst.shape[0]
    num_chunks = hist.shape[0]
    step = (e + num_chunks - 1) // num_chunks
    for c in range(c0, c1):
        lo = c * step
        hi = min(e, lo + step)
        for i in range(lo, hi):
            hist[c, dst[i]] += 1


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


@njit(nogil=True, cache=True)
def _scatter(src, dst, slots, out_src, out_pos, c0, c1):
    e = dst.shape[0]
    num_chunks = slots.shape[0]
    step = (e + num_chunks - 1) // num_chunks
    for c in range(c0, c1):
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
    hist = np.zeros((num_chunks, num_nodes), dtype=np.int64)
    run_items(_count, num_chunks, dst, hist, threads=threads, per_thread=1)
    indptr = np.empty(num_nodes + 1, dtype=np.int64)
    _offsets(hist, indptr)
    indices = np.empty(e, dtype=index_dtype)
    perm = np.empty(e, dtype=np.int64)
    run_items(_scatter, num_chunks, src, dst, hist, indices, perm, threads=threads, per_thread=1)
    return indptr, indices, perm


_INSERTION_MAX = 24  # columns up to this long are sorted in place by insertion sort
_HUB_MIN = 1 << 16  # columns this long are left to numpy's stable sort (see sort_and_filter)


@njit(nogil=True, parallel=True, cache=True)
def _sort_columns(indptr, indices, perm):
    # Sort each column by source, in place. Columns come out of the build in input order and every
    # sort used is stable, so ties stay ordered by original position. Short columns (most of them
    # in a power-law graph) are insertion-sorted without allocating, longer ones merge-sorted;
    # hub columns are skipped here: one thread would sort them alone, several times slower than
    # numpy's stable sort. An empty ``perm`` is not tracked (the out-of-core build keeps none).
    n = indptr.shape[0] - 1
    track = perm.shape[0] == indices.shape[0]
    for v in prange(n):
        lo = indptr[v]
        hi = indptr[v + 1]
        if hi - lo <= 1 or hi - lo >= _HUB_MIN:
            continue
        if hi - lo <= _INSERTION_MAX:
            for k in range(lo + 1, hi):
                key = indices[k]
                pk = perm[k] if track else 0
                j = k - 1
                while j >= lo and indices[j] > key:
                    indices[j + 1] = indices[j]
                    if track:
                        perm[j + 1] = perm[j]
                    j -= 1
                indices[j + 1] = key
                if track:
                    perm[j + 1] = pk
        else:
            order = np.argsort(indices[lo:hi], kind="mergesort")
            s = indices[lo:hi][order]
            for k in range(hi - lo):  # loops: slice assignment compiles numba's error text
                indices[lo + k] = s[k]
            if track:
                p = perm[lo:hi][order]
                for k in range(hi - lo):
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
    # Copy the surviving edges of every column to its new place, in order (perm: when tracked).
    n = indptr.shape[0] - 1
    track = out_perm.shape[0] == out_indices.shape[0]
    for v in prange(n):
        w = new_indptr[v]
        for k in range(indptr[v], indptr[v + 1]):
            if keep[k]:
                out_indices[w] = indices[k]
                if track:
                    out_perm[w] = perm[k]
                w += 1


def sort_and_filter(
    indptr: np.ndarray,
    indices: np.ndarray,
    perm: Optional[np.ndarray],
    *,
    dedupe: bool,
    drop_loops: bool,
) -> tuple:
    """Optionally sort columns by source, drop duplicates (keeping the first) and self loops.

    ``perm`` (each edge's input position) follows the edges when given; ``None`` keeps none
    and returns None in its place (the out-of-core build, which has no room for it).
    """
    tracked = perm if perm is not None else np.empty(0, dtype=np.int64)
    if dedupe:
        _sort_columns(indptr, indices, tracked)
        for v in np.flatnonzero(np.diff(indptr) >= _HUB_MIN):
            lo, hi = indptr[v], indptr[v + 1]
            order = np.argsort(indices[lo:hi], kind="stable")
            indices[lo:hi] = indices[lo:hi][order]
            if perm is not None:
                perm[lo:hi] = perm[lo:hi][order]
    if not (dedupe or drop_loops):
        return indptr, indices, perm
    keep, new_indptr = _keep_mask(indptr, indices, dedupe, drop_loops)
    np.cumsum(new_indptr, out=new_indptr)
    total = int(new_indptr[-1])
    if total == indices.shape[0]:
        return indptr, indices, perm
    out_indices = np.empty(total, dtype=indices.dtype)
    out_perm = np.empty(total if perm is not None else 0, dtype=np.int64)
    _compact(indptr, new_indptr, keep, indices, tracked, out_indices, out_perm)
    return new_indptr, out_indices, (out_perm if perm is not None else None)


# ---------------------------------------------------------------------- out-of-core build
# The out-of-core build (gnnsys.datasets.outofcore) streams COO chunks several times: once to
# count in-degrees, then once per destination range to gather that range's edges. These are its
# per-chunk kernels; serial, because a stable order needs either one writer or per-thread
# histograms of the whole range, which the memory budget cannot pay for.


@njit(nogil=True, cache=True)
def count_in_degrees(src, dst, deg, both, drop_loops):
    """deg[v + 1] += the edges into v (and, with ``both``, out of v); loops skipped on request."""
    for i in range(dst.shape[0]):
        s = src[i]
        d = dst[i]
        if drop_loops and s == d:
            continue
        deg[d + 1] += 1
        if both:
            deg[s + 1] += 1


@njit(nogil=True, cache=True)
def scatter_range(src, dst, lo, hi, fill, out, drop_loops):
    """Append each edge with destination in [lo, hi) to its column: ``fill[d - lo]`` is the next
    free slot of column d in ``out``. Input order is kept within a column (stable)."""
    for i in range(dst.shape[0]):
        d = dst[i]
        if d < lo or d >= hi:
            continue
        s = src[i]
        if drop_loops and s == d:
            continue
        k = fill[d - lo]
        out[k] = s
        fill[d - lo] = k + 1


@njit(nogil=True, cache=True)
def plan_ranges(indptr, bytes_per_edge, bytes_per_node, budget, max_edges):
    """Cut [0, N) into consecutive destination ranges whose edges (``indptr``: cumulative raw
    degrees) cost at most ``budget`` bytes and number at most ``max_edges`` each. Returns the
    range starts plus N, or -1 followed by the offending node when one column alone does not
    fit."""
    n = indptr.shape[0] - 1
    cuts = [0]
    used = 0
    edges = 0
    for v in range(n):
        d = indptr[v + 1] - indptr[v]
        cost = d * bytes_per_edge + bytes_per_node
        if cost > budget or d > max_edges:
            return np.array([-1, v], dtype=np.int64)
        if used + cost > budget or edges + d > max_edges:
            cuts.append(v)
            used = 0
            edges = 0
        used += cost
        edges += d
    cuts.append(n)
    return np.array(cuts, dtype=np.int64)


@njit(nogil=True, cache=True)
def max_column(indptr):
    """The longest column of a CSC (0 for none), without a temporary of N entries."""
    best = 0
    for v in range(indptr.shape[0] - 1):
        d = indptr[v + 1] - indptr[v]
        if d > best:
            best = d
    return best


@njit(nogil=True, cache=True)
def count_ids(ids, out):
    """out[v] += the occurrences of v in ``ids`` (ids validated by the caller)."""
    for i in range(ids.shape[0]):
        out[ids[i]] += 1


@njit(nogil=True, cache=True)
def degree_rank(counts, rank):
    """rank[v] = v's position when nodes are ordered by ``counts`` highest first, ties by id
    (a stable counting sort; counts above N tie, so its histogram stays N + 2 entries)."""
    n = counts.shape[0]
    top = 0
    for v in range(n):
        c = min(counts[v], n)
        if c > top:
            top = c
    start = np.zeros(top + 2, dtype=np.int64)
    for v in range(n):
        start[top - min(counts[v], n) + 1] += 1
    for k in range(top + 1):
        start[k + 1] += start[k]
    for v in range(n):
        k = top - min(counts[v], n)
        rank[v] = start[k]
        start[k] += 1
