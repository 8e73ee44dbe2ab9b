"""Numba kernels for neighbour sampling, with global -> local relabelling fused in.

Randomness is counter-based: every draw is a splitmix64 hash of (batch key, hop, tree, node,
draw number), so a destination's sample depends on nothing but its own counters and the result
is the same whatever the number of threads. Each hop runs three passes:

1. count (parallel over destinations): how many edges each destination keeps;
2. sample (parallel over destinations): each destination writes its picks into its own slots
   (uniform without replacement: Floyd's algorithm; with replacement: independent draws;
   weighted without replacement: exponential keys (Efraimidis-Spirakis A-Res) kept in a heap;
   weighted with replacement: binary search in per-column cumulative weights);
3. relabel (sequential, in destination order): new neighbours get the next local ids, so the
   node order is thread-count independent.

The relabel map is either a dense per-worker ``int64 [N]`` array whose entries carry a batch
stamp in their upper 32 bits (no reset between batches) or, for ``disjoint`` sampling and for
graphs too large for a dense map, an open-addressing hash table keyed by ``tree * N + node``.

These kernels do no bounds checks: callers validate every id first (``neighbor.py``).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros

from gnnsys._hash import mix64 as _mix
from gnnsys._numba import (
    PRANGE_ONLY,
    mode_tag,
    parallel_pays,
    prefetch,
    run_items,
    serial_twin,
    variant,
)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_ODD2 = np.uint64(0xD1B54A32D192ED03)
_LOW32 = np.int64(0xFFFFFFFF)
_INV53 = 1.0 / 9007199254740992.0
# Floyd repeat test on columns of more than 64 edges: a linear scan up to this k, a hash set above
_FLOYD_SCAN = 32


_AHEAD = 48  # prefetch distance (elements) in the latency-bound loops (16: 6% slower on rmat20)
_PROBE_AHEAD = 8  # destinations ahead whose binary-search probes pass 1 prefetches
_RUN = 4096  # edges per parallel work item of the source-id pass


@njit(nogil=True, cache=True, inline="always")
def _stream(hop_key, node, tree):
    # The random stream of one (hop, tree, node): independent of which thread draws it.
    return _mix(hop_key ^ _mix(np.uint64(node) * _GOLDEN + np.uint64(tree)))


@njit(nogil=True, cache=True, inline="always")
def _uniform(state, t):
    # A float64 in [0, 1) from draw number t of a stream.
    r = _mix(state + np.uint64(t + 1) * _ODD2)
    return np.float64(r >> np.uint64(11)) * _INV53


@njit(nogil=True, cache=True, inline="always")
def _below(state, t, n):
    # An integer in [0, n) from draw number t of a stream.
    k = np.int64(_uniform(state, t) * n)
    return k if k < n else n - 1


@njit(nogil=True, cache=True)
def hop_key(key, hop):
    """The per-hop key mixed into every stream of that hop."""
    return _mix(np.uint64(key) + np.uint64(hop + 1) * _GOLDEN)


@njit(nogil=True, cache=True)
def random_nodes(key, salt, count, num_nodes):
    """``count`` uniform node ids in [0, num_nodes) from the stream (key, salt)."""
    out = np.empty(count, np.int64)
    state = _mix(np.uint64(key) ^ _mix(np.uint64(salt) * _GOLDEN))
    for i in range(count):
        out[i] = _below(state, i, num_nodes)
    return out


@njit(nogil=True, cache=True)
def random_weighted_nodes(key, salt, count, cumw):
    """``count`` node ids drawn with probability proportional to ``diff(cumw)`` (cumw[0] = 0)."""
    out = np.empty(count, np.int64)
    state = _mix(np.uint64(key) ^ _mix(np.uint64(salt) * _GOLDEN))
    n = cumw.shape[0] - 1
    total = cumw[n]
    for i in range(count):
        target = _uniform(state, i) * total
        lo = 0
        hi = n - 1
        while lo < hi:  # first node whose cumulative weight exceeds target
            mid = (lo + hi) >> 1
            if cumw[mid + 1] > target:
                hi = mid
            else:
                lo = mid + 1
        out[i] = lo
    return out


# ---------------------------------------------------------------------- per-destination samplers
@njit(nogil=True, cache=True, inline="always")
def _count_positive(weights, lo, hi):
    c = 0
    for e in range(lo, hi):
        if weights[e] > 0.0:
            c += 1
    return c


@njit(nogil=True, cache=True)
def _floyd(state, lo, d, k, pos, o):
    # k distinct positions of [lo, lo + d) into pos[o:o+k] (Floyd's algorithm).
    for t in range(k):  # the draws first (independent of each other: they overlap)
        pos[o + t] = _below(state, t, d - k + t + 1)
    if d <= 64:  # the membership test on a bitmask of the column's positions
        mask = np.uint64(0)
        for t in range(k):
            j = d - k + t
            r = pos[o + t]
            if (mask >> np.uint64(r)) & np.uint64(1):
                r = j
            mask |= np.uint64(1) << np.uint64(r)
            pos[o + t] = lo + r
        return
    if k <= _FLOYD_SCAN:
        for t in range(k):
            j = d - k + t
            r = pos[o + t]
            for q in range(t):
                if pos[o + q] == lo + r:
                    r = j
                    break
            pos[o + t] = lo + r
        return
    cap = 1
    while cap < 2 * k:
        cap <<= 1
    table = np.full(cap, -1, np.int64)
    for t in range(k):
        j = d - k + t
        r = pos[o + t]
        h = (r * 0x9E3779B1) & (cap - 1)
        while table[h] != -1 and table[h] != r:
            h = (h + 1) & (cap - 1)
        if table[h] == r:  # taken: j is new (every earlier pick is < j)
            r = j
            h = (r * 0x9E3779B1) & (cap - 1)
            while table[h] != -1:
                h = (h + 1) & (cap - 1)
        table[h] = r
        pos[o + t] = lo + r


@njit(nogil=True, cache=True)
def _sift_down(keys, pos, o, k, i):
    # Restore the min-heap property of keys[o:o+k] (payload pos) below heap slot i.
    while True:
        left = 2 * i + 1
        if left >= k:
            return
        small = left
        if left + 1 < k and keys[o + left + 1] < keys[o + left]:
            small = left + 1
        if keys[o + small] >= keys[o + i]:
            return
        tk = keys[o + i]
        keys[o + i] = keys[o + small]
        keys[o + small] = tk
        tp = pos[o + i]
        pos[o + i] = pos[o + small]
        pos[o + small] = tp
        i = small


@njit(nogil=True, cache=True)
def _weighted_without(state, weights, lo, hi, k, pos, keys, o):
    # A-Res: key = log(u) / w, keep the k largest (a min-heap on keys[o:o+k]).
    filled = 0
    t = 0
    for e in range(lo, hi):
        w = weights[e]
        if w <= 0.0:
            continue
        u = _uniform(state, t)
        t += 1
        key = np.log(u + _INV53) / w
        if filled < k:
            keys[o + filled] = key
            pos[o + filled] = e
            filled += 1
            if filled == k:
                for i in range(k // 2 - 1, -1, -1):
                    _sift_down(keys, pos, o, k, i)
        elif key > keys[o]:
            keys[o] = key
            pos[o] = e
            _sift_down(keys, pos, o, k, 0)


@njit(nogil=True, cache=True)
def _weighted_with(state, cumw, lo, hi, k, pos, o):
    # k independent draws proportional to weight; cumw[e] = weight sum of lo..e (inclusive).
    total = cumw[hi - 1]
    for t in range(k):
        target = _uniform(state, t) * total
        a = lo
        b = hi - 1
        while a < b:
            mid = (a + b) >> 1
            if cumw[mid] > target:
                b = mid
            else:
                a = mid + 1
        pos[o + t] = a


@njit(nogil=True, cache=True, inline="always")
def _keep_count(weights, cumw, lo, hi, f, replace, weighted):
    # How many of the edges [lo, hi) a destination keeps with fanout f.
    d = hi - lo
    if d == 0 or f == 0:
        return 0
    if weighted:
        if replace and f >= 0:
            return f if cumw[hi - 1] > 0.0 else 0
        p = _count_positive(weights, lo, hi)
        return p if f < 0 else min(f, p)
    if f < 0:
        return d
    return f if replace else min(f, d)


@njit(nogil=True, cache=True, inline="always")
def _labor_keeps(adj, edge_ids, packed, p, lkey, tree, thr):
    # LABOR-0: edge p survives when its source's variate (shared by every destination of
    # the batch, hence fewer distinct sources than independent draws) is below k / d. One
    # splitmix64 finaliser per edge (a bijective avalanche of key, node and tree): the scan
    # touches every in-edge of every destination, so the hash is most of LABOR's cost.
    u, _ = _edge_at(adj, edge_ids, packed, p)
    r = _mix((np.uint64(u) * _GOLDEN + np.uint64(tree)) ^ lkey)
    return np.float64(r >> np.uint64(11)) * _INV53 < thr


@njit(nogil=True, cache=True)
def labor_mark_words(indptr, rows, start, m):
    """Word offsets [m+1] of a LABOR-0 bitmask with one bit per in-edge of each column
    ``rows[start + i]`` (a run of 64-bit words per column, so threads never share a word)."""
    wptr = np.zeros(m + 1, np.int64)
    for i in range(m):
        if i + _AHEAD < m:
            prefetch(indptr, rows[start + i + _AHEAD])
        v = rows[start + i]
        wptr[i + 1] = wptr[i] + ((indptr[v + 1] - indptr[v] + 63) >> 6)
    return wptr


@njit(nogil=True, cache=True)
def _labor_mark(adj, edge_ids, packed, lo, hi, f, lkey, tree, bits, w0, col_lo):
    # How many of the edges [lo, hi) LABOR-0 keeps with fanout f (expected min(f, d)); the
    # kept ones get their bit (p - col_lo from word w0 on), so that the fill pass reads the
    # bits instead of reading the edges and hashing them again.
    d = hi - lo
    if d == 0 or f == 0:
        return 0
    if f < 0 or f >= d:
        return d
    thr = f / d
    c = 0
    for p in range(lo, hi):
        if _labor_keeps(adj, edge_ids, packed, p, lkey, tree, thr):
            b = p - col_lo
            bits[w0 + (b >> 6)] |= np.uint64(1) << np.uint64(b & 63)
            c += 1
    return c


@njit(nogil=True, cache=True)
def _labor_fill_marked(bits, w0, col_lo, lo, hi, f, pos, o):
    # The positions _labor_mark kept, in CSC order, into pos[o:].
    d = hi - lo
    if f < 0 or f >= d:
        for j in range(d):
            pos[o + j] = lo + j
        return
    j = o
    b = lo - col_lo
    end = hi - col_lo
    while b < end:
        w = bits[w0 + (b >> 6)] >> np.uint64(b & 63)
        if w == 0:  # no kept edge in the rest of this word
            b = (b | 63) + 1
            continue
        if w & np.uint64(1):
            pos[j] = col_lo + b
            j += 1
        b += 1


# ---------------------------------------------------------------------- LABOR-i, batch dependency
_LABOR_EPS = 1e-4  # relative tolerance of the LABOR-i fixed points (DGL's)
_LABOR_MAX_ITERS = 100  # importance_sampling=-1: iterate to convergence, at most this often
_INV32 = 1.0 / 4294967296.0
_FIXED_ONE = 4294967296.0  # the convergence sum's unit: 2^32 steps of 1 (exact int64 sums)
# LABOR-i keeps each source's importance at its node id (no numbering pass over the
# candidates) when the hop has at least one candidate edge per _LABOR_DIRECT_NODES nodes
# of the graph: two [N] float64 arrays per hop cost less than numbering every candidate.
_LABOR_DIRECT_NODES = 4
_SQRT1_2 = 0.7071067811865476


@njit(nogil=True, cache=True, inline="always")
def _gauss(h):
    # A standard normal from one 64-bit hash (Box-Muller on its two 32-bit halves).
    u1 = (np.float64(h >> np.uint64(32)) + 0.5) * _INV32
    u2 = np.float64(h & np.uint64(0xFFFFFFFF)) * _INV32
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@njit(nogil=True, cache=True, inline="always")
def _labor_variate(u, tree, lkey, lkey2, ca, sa, dep):
    # Source u's shared variate r_u. Without batch dependency the LABOR-0 uniform (bitwise);
    # with it, Phi(ca * z1 + sa * z2) for normals z1, z2 of the window's two keys: uniform for
    # any mix (ca^2 + sa^2 = 1), sliding from key 1's variate to key 2's as the window advances.
    x = np.uint64(u) * _GOLDEN + np.uint64(tree)
    h = _mix(x ^ lkey)
    if not dep:
        return np.float64(h >> np.uint64(11)) * _INV53
    z = ca * _gauss(h) + sa * _gauss(_mix(x ^ lkey2))
    return 0.5 * math.erfc(-z * _SQRT1_2)


@njit(nogil=True, cache=True)
def _labor_count_general(adj, edge_ids, packed, lo, hi, f, vkeys, tree, pe, at):
    # _labor_mark's count with batch-dependent variates and/or per-edge thresholds pe[at:]
    # (LABOR-i), whose edges it does not keep it sets to 0 (_labor_fill_general then lists the
    # kept ones without drawing again: every kept edge has a threshold above its variate >= 0).
    # vkeys = (lkey, lkey2, ca, sa, dep).
    d = hi - lo
    if d == 0 or f == 0:
        return 0
    if f < 0 or f >= d:
        if pe.shape[0] == 0:
            return d
        c = 0  # (weighted LABOR: a zero-weight edge has p = 0 and is never kept)
        for p in range(lo, hi):
            if pe[at + p - lo] > 0.0:
                c += 1
        return c
    lkey, lkey2, ca, sa, dep = vkeys
    thr = f / d
    c = 0
    for p in range(lo, hi):
        t = pe[at + p - lo] if pe.shape[0] > 0 else thr
        u, _ = _edge_at(adj, edge_ids, packed, p)
        if _labor_variate(u, tree, lkey, lkey2, ca, sa, dep) < t:
            c += 1
        elif pe.shape[0] > 0:
            pe[at + p - lo] = 0.0
    return c


@njit(nogil=True, cache=True)
def _labor_fill_general(adj, edge_ids, packed, lo, hi, f, vkeys, tree, pe, at, pos, o,
                        eprob, ewt, weights):  # fmt: skip
    # The positions _labor_count_general counted into pos[o:]; with LABOR-i or weighted LABOR
    # (pe non-empty) also each kept edge's inclusion probability (eprob) and its weight A/p
    # (A: the edge's weight, 1 unweighted) scaled so that a destination's weights sum to its
    # kept count (DGL's edge_weights: fn.mean stays right). ``weights``: per CSC position,
    # empty unweighted.
    d = hi - lo
    full = f < 0 or f >= d
    lkey, lkey2, ca, sa, dep = vkeys
    thr = f / d if not full else 1.0
    weighted = weights.shape[0] > 0
    j = o
    for p in range(lo, hi):
        t = 1.0 if full else (pe[at + p - lo] if pe.shape[0] > 0 else thr)
        keep = full and (not weighted or pe[at + p - lo] > 0.0)
        if not full and pe.shape[0] > 0:
            keep = t > 0.0  # (the count pass zeroed the thresholds of edges it did not keep)
        elif not full:
            u, _ = _edge_at(adj, edge_ids, packed, p)
            keep = _labor_variate(u, tree, lkey, lkey2, ca, sa, dep) < t
        if keep:
            pos[j] = p
            if eprob.shape[0] > 0:
                eprob[j] = t
                if weighted:
                    ewt[j] = weights[p] / t
            j += 1
    if eprob.shape[0] > 0 and j > o and weighted:
        total = 0.0
        for x in range(o, j):
            total += ewt[x]
        scale = (j - o) / total
        for x in range(o, j):
            ewt[x] *= scale
    elif eprob.shape[0] > 0 and j > o:
        inv = 0.0
        for x in range(o, j):
            inv += 1.0 / eprob[x]
        scale = (j - o) / inv
        for x in range(o, j):
            ewt[x] = scale / eprob[x]


@njit(nogil=True, cache=True)
def _labor_sources(adj, edge_ids, packed, seg_lo, seg_hi, stree, cptr, first, last, num_nodes,
                   dense):  # fmt: skip
    # Each candidate edge's source as an index into the hop's distinct (tree, source) pairs,
    # numbered in edge order (deterministic); returns (src index per candidate, count).
    # ``dense`` (one tree; all -1, and left so): an [N] index map, else a hash table.
    base = cptr[first]
    src = np.empty(cptr[last] - base, np.int64)
    use_dense = dense.shape[0] > 0
    hk = np.full(16 if not use_dense else 1, -1, np.int64)
    hv = np.empty(hk.shape[0], np.int64)
    # (sized for every distinct source at once: growing it per new source cost an array
    # return, with its reference counts, per source)
    seen = np.empty(min(num_nodes, src.shape[0]) if use_dense else 0, np.int64)
    nq = 0
    for s in range(first, last):
        tr = stree[s] if stree.shape[0] > 0 else 0
        for p in range(seg_lo[s], seg_hi[s]):
            u, _ = _edge_at(adj, edge_ids, packed, p)
            if use_dense:
                q = dense[u]
                if q < 0:
                    q = nq
                    dense[u] = q
                    seen[nq] = u
                    nq += 1
            else:
                kk = tr * num_nodes + u
                if 2 * (nq + 1) > hk.shape[0]:  # (the call only to grow: it returns arrays)
                    hk, hv = _hash_grow(hk, hv, nq + 1)
                slot = _hash_slot(hk, kk)
                if hk[slot] == -1:
                    hk[slot] = kk
                    hv[slot] = nq
                    nq += 1
                q = hv[slot]
            src[cptr[s] - base + p - seg_lo[s]] = q
    for q in range(nq if use_dense else 0):  # leave the map all -1 for the next call
        dense[seen[q]] = -1
    return src, nq


@njit(nogil=True, cache=True)
def _labor_solve_c(pv, av, lo, hi, c, target, ratio):
    # c_s with sum_t A_t^2 / min(1, c_s pi_t) = target: A_t = 1 unweighted (``av`` empty), the
    # variance of uniform k-of-d sampling (the LABOR paper's condition, target d^2 / k, which
    # exceeds d as f < d here); with edge weights ``av`` DGL's weighted condition, zero-weight
    # edges left out (they add nothing). pv[lo:hi]: the destination's sources' pi_t, gathered
    # contiguously. Exact: while the set of saturated sources (c pi_t >= 1) stays fixed the
    # left side is b + a / c (b their A^2, a the sum of A^2 / pi_t over the rest), so
    # c = a / (target - b) solves it. Re-solving in the new set never overshoots (a source
    # that saturates or unsaturates on the way only raises the true variance above the
    # model's), so after at most one step down c climbs to the root, one saturation set at a
    # time, and stops when the set no longer changes: a few passes over the segment instead
    # of a multiplicative iteration to a tolerance. Each A^2 / pi_t is divided once (into
    # ``ratio``, scratch of at least hi - lo) and the passes add without branches (adding 0.0
    # leaves a sum as it was): the same sums, in the same order, as skipping the terms.
    weighted = av.shape[0] > 0
    for j in range(lo, hi):
        w2 = av[j] * av[j] if weighted else 1.0
        ratio[j - lo] = w2 / pv[j] if (w2 != 0.0 and pv[j] > 0.0) else 0.0
    for _ in range(_LABOR_MAX_ITERS):
        a = 0.0
        b = 0.0
        for j in range(lo, hi):
            w2 = av[j] * av[j] if weighted else 1.0
            sat = c * pv[j] >= 1.0
            b += w2 if sat else 0.0
            a += 0.0 if sat else ratio[j - lo]
        new = a / (target - b)
        if new == c:
            break
        c = new
    return c


@njit(nogil=True, cache=True, inline="always")
def _labor_slot(adj, edge_ids, packed, src, direct, j, shift):
    # Where candidate j's source keeps its importance: its node id (``direct``; candidate j is
    # CSC position j + shift) or its number among the hop's distinct sources (``src``).
    return _edge_at(adj, edge_ids, packed, j + shift)[0] if direct else src[j]


@njit(nogil=True, cache=True, inline="always")
def labor_direct(num_nodes, candidates, trees):
    """Whether ``labor_importance`` keeps importances at node ids (one tree, and at least one
    candidate edge per ``_LABOR_DIRECT_NODES`` nodes) rather than numbering the sources."""
    return not trees and num_nodes <= _LABOR_DIRECT_NODES * candidates


@njit(nogil=True, cache=True)
def labor_importance(adj, edge_ids, packed, seg_lo, seg_hi, stree, cptr, first, last, f,
                     iters, num_nodes, pe, dense, weights, direct):  # fmt: skip
    """LABOR-i inclusion probabilities of one hop and edge type (Balin and Catalyurek,
    NeurIPS 2023): ``pe[cptr[s] + j]`` = min(1, c_s pi_t) for edge j of destination slot s in
    ``first..last-1`` (CSC segment ``seg_lo[s]..seg_hi[s]``, tree ``stree[s]``).

    Fixed-point iteration (``iters`` rounds; -1: until the expected number of distinct sources
    sum_t min(1, pi_t) changes by under 1e-4, at most 100): pi_t *= max over t's destinations
    of c_s, then each destination solves its c_s so that its Horvitz-Thompson variance equals
    uniform sampling's (sum_t 1 / min(1, c_s pi_t) = d_s^2 / k). Starts at LABOR-0 (c_s = k /
    d_s). Destinations keeping every edge (fanout -1 or >= d) have p = 1 and c_s = 1 / min pi_t
    (their sources are sampled anyway, so other destinations may take them for free).
    Serial and in edge order: the same result whatever the thread count. A source's pi is
    kept at its node id (``direct``: one tree and candidates enough to pay for [N] arrays,
    see ``labor_direct``) or at its number among the hop's distinct (tree, source) pairs,
    found through ``dense`` (an int64 [N] map of -1s, left so, for one tree) or a hash table
    (``dense`` empty); the three give the same probabilities. The convergence test sums
    sum_t min(1, pi_t) in fixed point (2^-32 steps, exact integers), so that the order the
    sources are numbered in cannot change where it stops.

    ``weights`` (per CSC position; empty: unweighted): weighted LABOR as DGL computes it,
    A_e the edge's weight and D_s the sum over s's in-edges: one round more than ``iters``
    (LABOR-0 weighted is one round), starting at c_s = k / D_s; the first solves with pi_e =
    A_e, the second takes pi_t = max over t's destinations of c_s A_e, later ones pi_t *= max
    c_s; each solves sum_e A_e^2 / min(1, c_s pi_e) = D_s^2 / k - D_s^2 / d_s + sum_e A_e^2.
    A zero-weight edge gets p = 0 (never sampled, as weighted neighbour sampling).
    """
    if f == 0 or cptr[last] == cptr[first]:
        return
    base = cptr[first]
    nd = last - first
    ncand = cptr[last] - base
    if direct:
        src = np.empty(0, np.int64)
        nq = num_nodes
    else:
        src, nq = _labor_sources(adj, edge_ids, packed, seg_lo, seg_hi, stree, cptr, first,
                                 last, num_nodes, dense)  # fmt: skip
    weighted = weights.shape[0] > 0
    av = np.empty(ncand if weighted else 0, np.float64)  # A of each candidate
    c = np.empty(nd, np.float64)
    target = np.empty(nd, np.float64)  # the right side of each destination's condition
    for s in range(nd):
        d = seg_hi[first + s] - seg_lo[first + s]
        if weighted:
            total = 0.0
            sq = 0.0
            lo = cptr[first + s] - base
            for p in range(seg_lo[first + s], seg_hi[first + s]):
                av[lo + p - seg_lo[first + s]] = weights[p]
                total += weights[p]
                sq += weights[p] * weights[p]
            # (a destination whose in-edges all weigh 0 samples nothing: c = 0 keeps it out of
            # its sources' importances too)
            c[s] = (f / total if f > 0 else 1.0) if total > 0.0 else 0.0
            target[s] = total * total / f - total * total / d + sq if (f > 0 and d > 0) else 0.0
        else:
            c[s] = f / d if (f > 0 and d > 0) else 1.0
            target[s] = d * d / f if f > 0 else 0.0
    # (direct: a node no candidate comes from keeps mx 0, so pi 0 after the first round, and
    # adds nothing to the convergence sum, as a source that is not there)
    pi = np.ones(nq, np.float64)
    mx = np.empty(nq, np.float64)
    # pi of each candidate's source, kept where its probability goes (the last pass turns
    # each into min(1, c_s pi_t) in place: no second array of the candidates' size)
    pv = pe[base : base + ncand]
    widest = 0
    for s in range(first, last):
        widest = max(widest, seg_hi[s] - seg_lo[s])
    ratio = np.empty(widest, np.float64)  # _labor_solve_c's scratch
    prev = -1  # the last round's sum (none yet)
    rounds = iters + 1 if (weighted and iters >= 0) else iters
    it = 0
    while it < rounds or (rounds < 0 and it < _LABOR_MAX_ITERS):
        it += 1
        if weighted and it == 1:  # DGL's first weighted round: pi_e = A_e
            for j in range(ncand):
                pv[j] = av[j]
        else:
            mx[:] = 0.0
            for s in range(nd):
                lo = cptr[first + s] - base
                shift = seg_lo[first + s] - lo
                for j in range(lo, cptr[first + s + 1] - base):
                    q = _labor_slot(adj, edge_ids, packed, src, direct, j, shift)
                    ct = c[s] * av[j] if (weighted and it == 2) else c[s]
                    mx[q] = max(mx[q], ct)  # (a store every time beats a mispredicted branch)
            for q in range(nq):
                pi[q] *= mx[q]
            for s in range(nd):
                lo = cptr[first + s] - base
                shift = seg_lo[first + s] - lo
                for j in range(lo, cptr[first + s + 1] - base):
                    pv[j] = pi[_labor_slot(adj, edge_ids, packed, src, direct, j, shift)]
        for s in range(nd):
            lo = cptr[first + s] - base
            hi = cptr[first + s + 1] - base
            d = hi - lo
            if d == 0:
                continue
            if f < 0 or f >= d:
                low = np.inf
                for j in range(lo, hi):
                    if not weighted or av[j] > 0.0:
                        low = min(low, pv[j])
                full_c = 1.0 / low if low < np.inf else 0.0  # (inf: all weights 0)
                # (DGL's weighted first round keeps its start k / D where that saturates)
                c[s] = max(c[s], full_c) if (weighted and it == 1) else full_c
            elif c[s] > 0.0:  # (0: every in-edge weighs nothing)
                c[s] = _labor_solve_c(pv, av, lo, hi, c[s], target[s], ratio)
        if weighted and it == 1:
            continue  # (DGL checks convergence once pi is a source's)
        cur = 0
        for q in range(nq):
            cur += np.int64(min(1.0, pi[q]) * _FIXED_ONE + 0.5)
        if prev >= 0 and (prev == 0 or cur / prev >= 1.0 - _LABOR_EPS):
            break  # (prev 0: every pi is 0 and stays so)
        prev = cur
    for s in range(nd):
        lo = cptr[first + s] - base
        hi = cptr[first + s + 1] - base
        full = f < 0 or f >= hi - lo
        for j in range(lo, hi):
            if weighted and av[j] == 0.0:
                pe[base + j] = 0.0
            else:
                pe[base + j] = 1.0 if full else min(1.0, c[s] * pv[j])


@njit(nogil=True, cache=True, inline="always")
def _edge_time(adj, edge_ids, packed, node_time, edge_time, p):
    # The time of CSC edge p: its own (edge-level), else its source's (node-level).
    if edge_time.shape[0] > 0:
        return edge_time[p]
    u, _ = _edge_at(adj, edge_ids, packed, p)
    return node_time[u]


TEMPORAL_LAST = 1  # temporal_mode bits: the most recent edges instead of a uniform draw,
TEMPORAL_SORTED = 2  # and every segment's edge_time ascending (then they are a prefix)


@njit(nogil=True, cache=True)
def times_sorted(indptr, type_per_edge, times):
    """Whether ``times`` (per CSC position) ascend within every column's run of one edge type:
    then the edges a seed time admits are a prefix of the segment, found by binary search."""
    typed = type_per_edge.shape[0] > 0
    for v in range(indptr.shape[0] - 1):
        for p in range(indptr[v] + 1, indptr[v + 1]):
            if times[p] < times[p - 1] and (not typed or type_per_edge[p] == type_per_edge[p - 1]):
                return False
    return True


@njit(nogil=True, cache=True, inline="always")
def _upper_bound(a, lo, hi, value):
    # First position in [lo, hi) of sorted a whose entry is > value.
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(nogil=True, cache=True)
def _temporal_count(adj, edge_ids, packed, node_time, edge_time, lo, hi, bound, mode):
    # Edges of [lo, hi) not newer than bound (the seed's time): the ones a destination may use.
    if mode & TEMPORAL_SORTED:
        return _upper_bound(edge_time, lo, hi, bound) - lo
    c = 0
    for p in range(lo, hi):
        if _edge_time(adj, edge_ids, packed, node_time, edge_time, p) <= bound:
            c += 1
    return c


@njit(nogil=True, cache=True, inline="always")
def _temporal_keep(c, f, replace):
    # Edges a destination keeps of the c its seed's time admits, fanout f (-1: all).
    if c == 0 or f == 0:
        return 0
    if f < 0:
        return c
    return f if replace else min(f, c)


@njit(nogil=True, cache=True, inline="always")
def _older(ta, ja, tb, jb):
    # (time, candidate index) order: older first; of equal times the earlier edge is older
    return ta < tb or (ta == tb and ja < jb)


@njit(nogil=True, cache=True)
def _newest(cand, times, k, pos, o):
    # pos[o:o+k] = the k candidates with the largest times (ties: the later ones), in CSC
    # order: a min-heap of the k newest seen so far (hand-written: numba's sorts take seconds
    # to compile, and this runs only for temporal_strategy="last").
    ht = np.empty(k, times.dtype)
    hj = np.empty(k, np.int64)
    m = 0
    for j in range(cand.shape[0]):
        t = times[j]
        if m < k:
            i = m
            ht[i] = t
            hj[i] = j
            m += 1
            while i > 0:
                p = (i - 1) // 2
                if not _older(ht[i], hj[i], ht[p], hj[p]):
                    break
                ht[i], ht[p] = ht[p], ht[i]
                hj[i], hj[p] = hj[p], hj[i]
                i = p
        elif _older(ht[0], hj[0], t, j):
            ht[0] = t
            hj[0] = j
            i = 0
            while True:
                small = i
                left = 2 * i + 1
                if left < k and _older(ht[left], hj[left], ht[small], hj[small]):
                    small = left
                if left + 1 < k and _older(ht[left + 1], hj[left + 1], ht[small], hj[small]):
                    small = left + 1
                if small == i:
                    break
                ht[i], ht[small] = ht[small], ht[i]
                hj[i], hj[small] = hj[small], hj[i]
                i = small
    for a in range(1, k):  # the chosen candidates back in CSC order (k is small)
        v = hj[a]
        b = a - 1
        while b >= 0 and hj[b] > v:
            hj[b + 1] = hj[b]
            b -= 1
        hj[b + 1] = v
    for a in range(k):
        pos[o + a] = cand[hj[a]]


@njit(nogil=True, cache=True)
def _temporal_fill(adj, edge_ids, packed, node_time, edge_time, lo, hi, bound, c, st, f, k,
                   replace, mode, pos, o):  # fmt: skip
    # Draw k of the c edges of [lo, hi) not newer than bound (pass 1's _temporal_count) into
    # pos[o:]: uniformly (Floyd, or independent draws with replacement) or the k most recent
    # ("last"; ties: later position).
    last = (mode & TEMPORAL_LAST) != 0
    if mode & TEMPORAL_SORTED:
        # The admitted edges are lo..lo+c-1 in time order: the same draws as the scan below
        # would make over its candidate list, without reading the segment.
        if f < 0 or (k == c and not replace):
            for j in range(k):
                pos[o + j] = lo + j
        elif last:
            for j in range(k):
                pos[o + j] = lo + c - k + j
        elif replace:
            for j in range(k):
                pos[o + j] = lo + _below(st, j, c)
        else:
            _floyd(st, 0, c, k, pos, o)
            for j in range(k):
                pos[o + j] += lo
        return
    cand = np.empty(c, np.int64)
    # (the times' own dtype, which the bound has: int64 here truncated float times, so "last"
    # took e.g. 1.3 over 1.9 as ties)
    times = np.full(c if last else 0, bound)
    j = 0
    for p in range(lo, hi):
        t = _edge_time(adj, edge_ids, packed, node_time, edge_time, p)
        if t <= bound:
            cand[j] = p
            if last:
                times[j] = t
            j += 1
    if f < 0 or (k == c and not replace):
        for j in range(k):
            pos[o + j] = cand[j]
    elif last:
        _newest(cand, times, k, pos, o)
    elif replace:
        for j in range(k):
            pos[o + j] = cand[_below(st, j, c)]
    else:
        _floyd(st, 0, c, k, pos, o)
        for j in range(k):
            pos[o + j] = cand[pos[o + j]]


# ---------------------------------------------------------------------- relabel maps
@njit(nogil=True, cache=True, inline="always")
def _hash_home(k, cap):
    # The first slot probed for key k in a table of cap (a power of two) slots. (Scalars only:
    # the relabel loops prefetch it for an edge ahead, and an inlined function taking arrays
    # costs them reference counts.)
    return np.int64(_mix(np.uint64(k)) & np.uint64(cap - 1))


@njit(nogil=True, cache=True)
def _hash_slot(hkeys, k):
    cap = hkeys.shape[0]
    h = _hash_home(k, cap)
    while hkeys[h] != -1 and hkeys[h] != k:
        h = (h + 1) & (cap - 1)
    return h


@njit(nogil=True, cache=True)
def _hash_grow(hkeys, hvals, need):
    cap = hkeys.shape[0]
    if 2 * need <= cap:
        return hkeys, hvals
    new_cap = cap
    while new_cap < 2 * need:
        new_cap <<= 1
    nk = np.full(new_cap, -1, np.int64)
    nv = np.empty(new_cap, np.int64)
    for i in range(cap):
        if hkeys[i] != -1:
            s = _hash_slot(nk, hkeys[i])
            nk[s] = hkeys[i]
            nv[s] = hvals[i]
    return nk, nv


@njit(nogil=True, cache=True)
def _grow(a, need):
    if a.shape[0] >= need:
        return a
    cap = max(need, 2 * a.shape[0])
    b = np.empty(cap, a.dtype)
    for i in range(a.shape[0]):  # a loop: slice assignment compiles numba's shape-error text
        b[i] = a[i]
    return b


# ---------------------------------------------------------------------- the sampler
@njit(nogil=True, cache=True, inline="always")
def _edge_at(adj, edge_ids, packed, p):
    # (source node, edge id) of CSC position p.
    a = np.int64(adj[p])
    if packed:
        return a & _LOW32, a >> 32
    if edge_ids.shape[0] > 0:
        return a, edge_ids[p]
    return a, p


@njit(nogil=True, cache=True, inline="always")
def _lower_bound(a, lo, hi, value):
    # First position in [lo, hi) of sorted a whose entry is >= value.
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(nogil=True, cache=True, inline="always")
def _segment(indptr, type_per_edge, v, e):
    # [lo, hi): the edges of type e into v (a column is sorted by edge type; untyped: all).
    lo = indptr[v]
    hi = indptr[v + 1]
    if type_per_edge.shape[0] == 0:
        return lo, hi
    s = _lower_bound(type_per_edge, lo, hi, e)
    return s, _lower_bound(type_per_edge, s, hi, e + 1)


@njit(nogil=True, cache=True, inline="always")
def node_type_of(node_offsets, v):
    """The type of global node ``v`` (nodes of type t are node_offsets[t]..node_offsets[t+1]-1)."""
    t = 0
    while node_offsets[t + 1] <= v:
        t += 1
    return t


@njit(nogil=True, cache=True)
def segment_index(indptr, type_per_edge, node_offsets, dst_etype_ptr, dst_etypes):
    """Where each (node, edge type into it) segment of a typed CSC starts: ``(seg_ptr,
    seg_base)``.

    A node v of type t with K_t edge types into it (``dst_etypes[dst_etype_ptr[t]:...]``,
    ascending, the order of its column) owns the K_t slots from ``seg_base[t] + (v -
    node_offsets[t]) * K_t``; slot q holds where its q-th edge type's edges start, and the next
    slot where they end (the last one is the next node's first: its column's start). The
    sampler reads two adjacent entries instead of two binary searches per segment.
    """
    nt = node_offsets.shape[0] - 1
    seg_base = np.zeros(nt + 1, np.int64)
    for t in range(nt):
        k = dst_etype_ptr[t + 1] - dst_etype_ptr[t]
        seg_base[t + 1] = seg_base[t] + (node_offsets[t + 1] - node_offsets[t]) * k
    seg_ptr = np.empty(seg_base[nt] + 1, np.int64)
    for t in range(nt):
        q0 = dst_etype_ptr[t]
        k = dst_etype_ptr[t + 1] - q0
        for v in range(node_offsets[t], node_offsets[t + 1]):
            b = seg_base[t] + (v - node_offsets[t]) * k
            lo = indptr[v]
            hi = indptr[v + 1]
            for q in range(k):
                lo = _lower_bound(type_per_edge, lo, hi, dst_etypes[q0 + q])
                seg_ptr[b + q] = lo
    seg_ptr[seg_base[nt]] = indptr[indptr.shape[0] - 1]
    return seg_ptr, seg_base


@njit(nogil=True, cache=True, inline="always")
def _segment_slot(seg_base, node_offsets, dst_etype_ptr, v, t):
    # segment_index's slot of node v's first edge type (v of type t), less that type's first
    # position in dst_etypes: slot + q for the q-th entry of dst_etypes.
    q0 = dst_etype_ptr[t]
    return seg_base[t] + (v - node_offsets[t]) * (dst_etype_ptr[t + 1] - q0) - q0


@njit(nogil=True, cache=True)
def _etype_keys(hk, num_etypes):
    # One stream key per edge type of a hop; type 0 keeps the hop key (untyped graphs unchanged).
    out = np.empty(num_etypes, np.uint64)
    for e in range(num_etypes):
        out[e] = hk if e == 0 else _mix(hk ^ (np.uint64(e) * _ODD2))
    return out


# Mode switches of sample_hops, read as compile-time constants: True here; sample_hops_for
# compiles copies (_numba.variant) with the modes a sampler does not use set to False, whose
# branches numba prunes before typing (each use reads ``_WITH_X and flag``), so their code and
# callees never compile (a homogeneous uniform sampler's kernel: ~9 s instead of ~13 s here).
_WITH_LABOR = True  # LABOR-0
_WITH_LABOR_GENERAL = True  # LABOR-i or batch dependency
_WITH_TEMPORAL = True
_WITH_WEIGHTED = True  # weighted counts and draws
_WITH_TYPED = True  # several node types or edge types (node_offsets, ntp / loc, type_per_edge)
_WITH_DISJOINT = True  # one tree per seed (tree ids, frontier trees)
_WITH_HASH = True  # the hash-table relabel map (disjoint, or an empty mapv)
_PARALLEL_BUILD = True  # compiled parallel (PRANGE_ONLY; a serial variant sets it False)


@njit(nogil=True, parallel=PRANGE_ONLY, cache=True)
def sample_hops(
    indptr,
    adj,
    edge_ids,
    packed,
    weights,
    cumw,
    type_per_edge,
    node_offsets,
    etype_src,
    etype_dst,
    dst_etype_ptr,
    dst_etypes,
    seg_ptr,
    seg_base,
    seeds,
    seed_tree,
    fanouts,
    replace,
    weighted,
    layered,
    disjoint,
    key,
    mapv,
    stamp,
    labor,
    layer_dependency,
    node_time,
    edge_time,
    seed_time,
    temporal_mode,
    labor_iters=0,
    labor_key2=-1,
    labor_mix=0.0,
):
    """Sample ``fanouts.shape[0]`` hops around ``seeds`` over a typed CSC; relabel on the fly.

    ``labor``: LABOR-0 (layer-neighbour sampling, Balin and Catalyurek, NeurIPS 2023) instead
    of independent draws: each source node gets one uniform variate per (batch, edge type,
    hop) and an edge into a destination of degree d survives when it is below fanout / d, so
    destinations share sources. ``layer_dependency``: the same variates on every hop.
    ``labor_iters`` != 0: LABOR-i (``labor_importance``): per-edge probabilities
    min(1, c_s pi_t) from that many fixed-point rounds (-1: to convergence) replace fanout / d,
    and each kept edge gets its probability and normalised weight (the last two outputs).
    ``labor_key2`` >= 0: batch dependency: variates mix the keys ``key`` and ``labor_key2``
    with weight ``labor_mix`` in [0, 1) (``_labor_variate``).

    Temporal sampling (``seed_time`` non-empty; needs ``disjoint``): a destination in tree r
    may use only edges not newer than ``seed_time[r]``: an edge's time is ``edge_time`` (per
    CSC position) when given, else its source's ``node_time``. ``temporal_mode`` bits:
    ``TEMPORAL_LAST``, the most recent such edges instead of a uniform draw;
    ``TEMPORAL_SORTED``, ``edge_time`` ascends within every segment (``times_sorted``), so the
    admitted edges are a prefix found by binary search (the same draws, no scan).

    Typing (a homogeneous graph is the one-type case, ``type_per_edge`` empty): nodes of type t
    are the global ids ``node_offsets[t]..node_offsets[t+1]-1``; edges into a node are grouped
    by edge type (``type_per_edge``, ascending within a column); edge type e goes from node type
    ``etype_src[e]`` into the node types listing it in ``dst_etypes[dst_etype_ptr[t]:...]``.
    ``fanouts[h, e]``: neighbours per destination of hop h through edge type e (-1: all).
    ``seg_ptr``, ``seg_base``: ``segment_index`` of the graph (typed graphs; else unread).

    ``adj`` is the CSC source array, or (``packed``) int64 ``edge_id << 32 | source``.
    ``mapv`` is the dense relabel map (size N, or size 0 to use the hash table); entries of
    this call carry ``stamp`` and map a node to its id within its type.

    Returns (nodes, tree, edge_index [2, E], eid, type_counts [H+1, T], edge_ptr [K*H+1],
    indptr_all, indptr_ptr [K*H+1], dst_start [K*H], hkeys, hvals, eprob, ewt): ``eprob`` and
    ``ewt`` (float64 [E], LABOR-i or weighted LABOR only, else empty) are each edge's
    inclusion probability and DGL's ``edge_weights``.

    * ``nodes``: global ids grouped by node type, each type in discovery order (seeds first,
      then each hop's new nodes); ``type_counts[h, t]``: type-t nodes discovered in hop h.
    * edges ordered by edge type, then hop, then destination; ``edge_index`` row 0 holds each
      edge's source, row 1 its destination, both as ids within their node type (for one type:
      positions in ``nodes``); ``eid`` the edge ids (CSC positions when the graph has none).
    * segment (e, h) = ``edge_ptr[e*H + h] .. edge_ptr[e*H + h + 1]``; its CSC is
      ``indptr_all[indptr_ptr[e*H+h]:indptr_ptr[e*H+h+1]]`` (relative offsets) over the
      destinations with ids ``dst_start[e*H+h]`` onwards within the destination type.
    """
    num_nodes = indptr.shape[0] - 1
    num_types = node_offsets.shape[0] - 1
    num_etypes = fanouts.shape[1]
    # (every use below reads a mode as ``_WITH_X and flag``: a variant prunes it; see the switches)
    typed = num_types > 1  # several node types
    etyped = type_per_edge.shape[0] > 0  # columns grouped by edge type
    b = seeds.shape[0]
    num_hops = fanouts.shape[0]
    use_hash = disjoint or mapv.shape[0] == 0
    stamp_hi = np.int64(stamp) << 32
    temporal = seed_time.shape[0] > 0
    # LABOR-i, or weighted LABOR (DGL's: per-edge probabilities from the weights)
    importance = labor and (labor_iters != 0 or (_WITH_WEIGHTED and weighted))
    lweights = weights if (_WITH_WEIGHTED and weighted and labor) else np.empty(0, np.float64)
    # LABOR-i's source index: dense when the relabel map is (one tree, a graph that fits)
    ldense = np.full(num_nodes if (importance and not use_hash) else 0, -1, np.int64)
    dep = labor and labor_key2 >= 0
    ca = math.cos(0.5 * math.pi * labor_mix)
    sa = math.sin(0.5 * math.pi * labor_mix)

    # Discovery order: global id, node type and id within the type (one type: the position).
    nodes = np.empty(max(16, 2 * b), np.int64)
    ntp = np.zeros(nodes.shape[0] if _WITH_TYPED and typed else 0, np.int64)
    loc = np.zeros(nodes.shape[0] if _WITH_TYPED and typed else 0, np.int64)
    tree = np.zeros(nodes.shape[0] if _WITH_DISJOINT and disjoint else 0, np.int64)
    hkeys = np.full(16 if _WITH_HASH and use_hash else 1, -1, np.int64)
    hvals = np.empty(hkeys.shape[0], np.int64)
    if _WITH_HASH and use_hash:
        hkeys, hvals = _hash_grow(hkeys, hvals, b)
    known = np.zeros(num_types, np.int64)  # nodes of each type discovered so far
    type_counts = np.zeros((num_hops + 1, num_types), np.int64)

    # Hop 0: the seeds, verbatim (duplicates kept); the map points at the first occurrence.
    for i in range(b):
        v = seeds[i]
        t = node_type_of(node_offsets, v) if _WITH_TYPED and typed else 0
        local = known[t]
        known[t] += 1
        nodes[i] = v
        if _WITH_TYPED and typed:
            ntp[i] = t
            loc[i] = local
        tr = seed_tree[i] if _WITH_DISJOINT and disjoint else 0
        if _WITH_DISJOINT and disjoint:
            tree[i] = tr
        if _WITH_HASH and use_hash:
            s = _hash_slot(hkeys, tr * num_nodes + v)
            if hkeys[s] == -1:
                hkeys[s] = tr * num_nodes + v
                hvals[s] = local
        elif (mapv[v] & ~_LOW32) != stamp_hi:
            mapv[v] = stamp_hi | local
    n = b
    for t in range(num_types):
        type_counts[0, t] = known[t]

    # Per hop and edge type: sources, edge ids, destination offsets (assembled at the end).
    nseg = num_etypes * num_hops
    # (every slot is assigned before it is read; repetition, not a comprehension, which numba
    # compiles as an inlined closure, a second per comprehension on a cold start)
    seg_rows = [np.empty(0, np.int64)] * nseg
    seg_eids = [np.empty(0, np.int64)] * nseg
    seg_offsets = [np.empty(0, np.int64)] * nseg
    if _WITH_LABOR_GENERAL:  # LABOR-i's per-edge outputs (undefined, and unused, without)
        seg_prob = [np.empty(0, np.float64)] * nseg
        seg_wt = [np.empty(0, np.float64)] * nseg
    dst_start = np.zeros(nseg, np.int64)
    # The outputs (assembled edge-type major, then hop). The last hop, whose segments' final
    # places are known once its counts are, writes straight into them (below); the earlier
    # hops' segments are copied in at the end.
    edge_ptr = np.zeros(nseg + 1, np.int64)
    edge_index = np.empty((2, 0), np.int64)
    eid_out = np.empty(0, np.int64)
    eprob_out = np.empty(0, np.float64)
    ewt_out = np.empty(0, np.float64)
    zero = np.int64(0)  # not the literal 0: callees would compile once more for Literal[int](0)
    prev_lo = zero
    prev_known = np.zeros(num_types, np.int64)
    for h in range(num_hops):
        flo = zero if layered else prev_lo
        fhi = n
        m = fhi - flo
        hk = hop_key(key, h)
        ekeys = _etype_keys(hk, num_etypes)
        lkeys = _etype_keys(hop_key(key, zero), num_etypes) if layer_dependency else ekeys
        lkeys2 = lkeys
        if dep:
            lkeys2 = _etype_keys(hop_key(labor_key2, 0 if layer_dependency else h), num_etypes)
        before = known.copy()
        # Destinations: ids dst_lo[t]..known[t]-1 within each type t (PyG: the nodes new in the
        # previous hop; DGL: every node known so far). Edge type e owns a run of offset slots,
        # one per destination of its destination type plus an end slot, in edge-type order.
        dst_lo = np.zeros(num_types, np.int64) if layered else prev_known
        base = np.empty(num_etypes + 1, np.int64)
        acc = 0
        for e in range(num_etypes):
            t = etype_dst[e]
            base[e] = acc
            acc += known[t] - dst_lo[t] + 1
        base[num_etypes] = acc
        counts = np.zeros(acc, np.int64)
        # Typed graphs: each (destination, edge type)'s CSC segment, read in pass 1 (from
        # segment_index) and again in pass 2.
        seg_lo = np.zeros(acc if ((_WITH_TYPED and etyped) or importance) else 0, np.int64)
        seg_hi = np.zeros(seg_lo.shape[0], np.int64)
        stree = np.zeros(acc if (importance and _WITH_DISJOINT and disjoint) else 0, np.int64)
        pe = np.empty(0, np.float64)
        cptr = np.zeros(acc + 1 if importance else 0, np.int64)
        # Temporal: each (destination, edge type)'s admitted edge count, found once in pass 1
        # (a binary search or a scan of edge times) and handed to pass 2's draw.
        admitted = np.zeros(acc if (_WITH_TEMPORAL and temporal) else 0, np.int64)
        # Pass 1 (parallel): how many edges each destination keeps, per edge type.
        sorted_times = _WITH_TEMPORAL and temporal and (temporal_mode & TEMPORAL_SORTED) != 0
        # LABOR-0: a bit per in-edge of each destination's column (a 64-bit word run per
        # destination, so threads never share a word): pass 1 marks the kept edges, pass 2
        # lists them without reading the edges or hashing them a second time.
        marks = _WITH_LABOR and labor and not dep and not importance
        wptr = labor_mark_words(indptr, nodes, flo, m) if marks else np.zeros(1, np.int64)
        bits = np.zeros(wptr[-1], np.uint64)
        for i in prange(m):
            if i + _AHEAD < m:
                w = nodes[flo + i + _AHEAD]
                if _WITH_TYPED and etyped:
                    tw = ntp[flo + i + _AHEAD] if typed else 0
                    prefetch(seg_ptr, _segment_slot(seg_base, node_offsets, dst_etype_ptr, w, tw))
                else:
                    prefetch(indptr, w)
            if sorted_times and i + _PROBE_AHEAD < m:
                # The binary search's first probes of a later destination (its column's
                # middle and quarters), so their cache misses overlap this one's search.
                w = nodes[flo + i + _PROBE_AHEAD]
                plo = indptr[w]
                pd = indptr[w + 1] - plo
                prefetch(edge_time, plo + (pd >> 1))
                if pd > 16:
                    prefetch(edge_time, plo + (pd >> 2))
                    prefetch(edge_time, plo + ((3 * pd) >> 2))
            v = nodes[flo + i]
            t = ntp[flo + i] if _WITH_TYPED and typed else 0
            r = (loc[flo + i] if _WITH_TYPED and typed else flo + i) - dst_lo[t]
            sb = (
                _segment_slot(seg_base, node_offsets, dst_etype_ptr, v, t)
                if _WITH_TYPED and etyped
                else 0
            )
            for q in range(dst_etype_ptr[t], dst_etype_ptr[t + 1]):
                e = dst_etypes[q]
                if _WITH_TYPED and etyped:
                    lo, hi = seg_ptr[sb + q], seg_ptr[sb + q + 1]
                else:
                    lo, hi = indptr[v], indptr[v + 1]
                if seg_lo.shape[0] > 0:
                    seg_lo[base[e] + r] = lo
                    seg_hi[base[e] + r] = hi
                if _WITH_LABOR_GENERAL and importance:  # counted below, once pe is known
                    if _WITH_DISJOINT and disjoint:
                        stree[base[e] + r] = tree[flo + i]
                elif _WITH_LABOR_GENERAL and dep:
                    tr = tree[flo + i] if _WITH_DISJOINT and disjoint else 0
                    counts[base[e] + r] = _labor_count_general(
                        adj, edge_ids, packed, lo, hi, fanouts[h, e],
                        (lkeys[e], lkeys2[e], ca, sa, dep), tr, pe, 0,
                    )  # fmt: skip
                elif _WITH_LABOR and labor:
                    tr = tree[flo + i] if _WITH_DISJOINT and disjoint else 0
                    counts[base[e] + r] = _labor_mark(
                        adj, edge_ids, packed, lo, hi, fanouts[h, e], lkeys[e], tr, bits,
                        wptr[i], indptr[v],
                    )  # fmt: skip
                elif _WITH_TEMPORAL and temporal:
                    f = fanouts[h, e]
                    c = _temporal_count(
                        adj, edge_ids, packed, node_time, edge_time, lo, hi,
                        seed_time[tree[flo + i]], temporal_mode,
                    )  # fmt: skip
                    admitted[base[e] + r] = c
                    counts[base[e] + r] = _temporal_keep(c, f, replace)
                else:
                    # (the flag through its switch: the unweighted variant compiles no weighted
                    # count, which otherwise keeps this loop ~2.5x slower)
                    counts[base[e] + r] = _keep_count(
                        weights, cumw, lo, hi, fanouts[h, e], replace, _WITH_WEIGHTED and weighted
                    )
        if _WITH_LABOR_GENERAL and importance:
            # LABOR-i: probabilities of every candidate edge (serial, per edge type), then the
            # counts (parallel over destinations, as pass 1).
            for j in range(acc):
                cptr[j + 1] = cptr[j] + seg_hi[j] - seg_lo[j]
            pe = np.empty(cptr[acc], np.float64)
            for e in range(num_etypes):
                ncand = cptr[base[e + 1] - 1] - cptr[base[e]]
                labor_importance(adj, edge_ids, packed, seg_lo, seg_hi, stree, cptr, base[e],
                                 base[e + 1] - 1, fanouts[h, e], labor_iters, num_nodes, pe,
                                 ldense, lweights,
                                 labor_direct(num_nodes, ncand, stree.shape[0] > 0))  # fmt: skip
            for i in prange(m):
                t = ntp[flo + i] if _WITH_TYPED and typed else 0
                r = (loc[flo + i] if _WITH_TYPED and typed else flo + i) - dst_lo[t]
                tr = tree[flo + i] if _WITH_DISJOINT and disjoint else 0
                for q in range(dst_etype_ptr[t], dst_etype_ptr[t + 1]):
                    e = dst_etypes[q]
                    s = base[e] + r
                    counts[s] = _labor_count_general(
                        adj, edge_ids, packed, seg_lo[s], seg_hi[s], fanouts[h, e],
                        (lkeys[e], lkeys2[e], ca, sa, dep), tr, pe, cptr[s],
                    )  # fmt: skip
        # Exclusive prefix sum: edge-type major, each type's destinations in id order.
        e_h = 0
        for e in range(num_etypes):
            for j in range(base[e], base[e + 1] - 1):
                c = counts[j]
                counts[j] = e_h
                e_h += c
            counts[base[e + 1] - 1] = e_h
        last_hop = h == num_hops - 1
        if last_hop:
            # Every segment's size is known now: lay the outputs out and move this hop's slots
            # (edge-type major, as the outputs) to their final places, leaving room for the
            # earlier hops' segments of each edge type.
            for e in range(num_etypes):
                for hh in range(num_hops):
                    sg = e * num_hops + hh
                    size = seg_rows[sg].shape[0]
                    if hh == h:
                        size = counts[base[e + 1] - 1] - counts[base[e]]
                    edge_ptr[sg + 1] = edge_ptr[sg] + size
            for e in range(num_etypes):
                shift = edge_ptr[e * num_hops + h] - counts[base[e]]
                for j in range(base[e], base[e + 1]):
                    counts[j] += shift
            slots = edge_ptr[nseg]
            edge_index = np.empty((2, slots), np.int64)
            eid_out = np.empty(slots, np.int64)
            eprob_out = np.empty(slots if importance else 0, np.float64)
            ewt_out = np.empty(eprob_out.shape[0], np.float64)
            pos = edge_index[0]
            eid = eid_out
            eprob = eprob_out
            ewt = ewt_out
        else:
            slots = e_h
            pos = np.empty(e_h, np.int64)
            eid = np.empty(e_h, np.int64)
            eprob = np.empty(e_h if importance else 0, np.float64)
            ewt = np.empty(eprob.shape[0], np.float64)
        keys = np.empty(slots if (weighted and not replace) else 0, np.float64)
        # Pass 2 (parallel): each destination draws CSC positions into its own slots.
        for i in prange(m):
            if seg_lo.shape[0] == 0 and i + _AHEAD < m:  # the column bounds, read at random again
                prefetch(indptr, nodes[flo + i + _AHEAD])
            v = nodes[flo + i]
            t = ntp[flo + i] if _WITH_TYPED and typed else 0
            r = (loc[flo + i] if _WITH_TYPED and typed else flo + i) - dst_lo[t]
            tr = tree[flo + i] if _WITH_DISJOINT and disjoint else 0
            for q in range(dst_etype_ptr[t], dst_etype_ptr[t + 1]):
                e = dst_etypes[q]
                o = counts[base[e] + r]
                k = counts[base[e] + r + 1] - o
                if k == 0:
                    continue
                f = fanouts[h, e]
                if seg_lo.shape[0] > 0:
                    lo, hi = seg_lo[base[e] + r], seg_hi[base[e] + r]
                else:
                    lo, hi = indptr[v], indptr[v + 1]
                d = hi - lo
                st = _stream(ekeys[e], v, tr)
                if _WITH_LABOR_GENERAL and (importance or dep):
                    at = cptr[base[e] + r] if importance else 0
                    _labor_fill_general(adj, edge_ids, packed, lo, hi, f,
                                        (lkeys[e], lkeys2[e], ca, sa, dep), tr, pe, at, pos, o,
                                        eprob, ewt, lweights)  # fmt: skip
                elif _WITH_LABOR and labor:
                    _labor_fill_marked(bits, wptr[i], indptr[v], lo, hi, f, pos, o)
                elif _WITH_TEMPORAL and temporal:
                    _temporal_fill(adj, edge_ids, packed, node_time, edge_time, lo, hi,
                                   seed_time[tr], admitted[base[e] + r], st, f, k, replace,
                                   temporal_mode, pos, o)  # fmt: skip
                elif _WITH_WEIGHTED and weighted and f >= 0:
                    if replace:
                        _weighted_with(st, cumw, lo, hi, k, pos, o)
                    else:
                        _weighted_without(st, weights, lo, hi, k, pos, keys, o)
                elif _WITH_WEIGHTED and weighted:  # fanout -1: every positive-weight neighbour
                    j = o
                    for p in range(lo, hi):
                        if weights[p] > 0.0:
                            pos[j] = p
                            j += 1
                elif f < 0 or (k == d and not replace):
                    for j in range(k):
                        pos[o + j] = lo + j
                elif replace:
                    for j in range(k):
                        pos[o + j] = lo + _below(st, j, d)
                else:
                    _floyd(st, lo, d, k, pos, o)
        # Pass 3 (parallel over edges): source ids and edge ids, prefetching ahead.
        # (in runs of at most _RUN slots of one edge type: the last hop's types lie apart)
        # Serial (a serial variant: sample_hops_for picks it for one thread) with the dense map:
        # pass 4 reads each edge itself instead ("fused": one sweep over the slots, not two; in
        # a quiet 7-round A/B mini-mag 4% and rmat20 11% less time a batch, the same batches).
        # The Loader's workers run serial. (No numba.get_num_threads() in here: its call
        # through the threading layer's pointer made the parallel variants uncacheable, a
        # 9 s compile in every process.)
        fuse = not (_WITH_HASH and use_hash) and not _PARALLEL_BUILD
        runs = 0
        for e in range(num_etypes if not fuse else 0):
            runs += (counts[base[e + 1] - 1] - counts[base[e]] + _RUN - 1) // _RUN
        run_lo = np.empty(runs, np.int64)
        run_hi = np.empty(runs, np.int64)
        run_end = np.empty(runs, np.int64)  # the end of the run's edge type (prefetch bound)
        c = 0
        for e in range(num_etypes if not fuse else 0):
            for j0 in range(counts[base[e]], counts[base[e + 1] - 1], _RUN):
                run_lo[c] = j0
                run_hi[c] = min(j0 + _RUN, counts[base[e + 1] - 1])
                run_end[c] = counts[base[e + 1] - 1]
                c += 1
        for c in prange(runs):
            j_end = run_end[c]
            for j in range(run_lo[c], run_hi[c]):
                if j + _AHEAD < j_end:
                    prefetch(adj, pos[j + _AHEAD])
                u, ee = _edge_at(adj, edge_ids, packed, pos[j])
                pos[j] = u
                eid[j] = ee
        # Pass 4 (sequential, output order): relabel in place, so ids are thread independent;
        # a new node gets the next id of its type (the edge type's source type).
        nodes = _grow(nodes, n + e_h)
        if _WITH_TYPED and typed:
            ntp = _grow(ntp, n + e_h)
            loc = _grow(loc, n + e_h)
        if _WITH_DISJOINT and disjoint:
            tree = _grow(tree, n + e_h)
        if _WITH_HASH and use_hash:
            hkeys, hvals = _hash_grow(hkeys, hvals, n + e_h)
        for e in range(num_etypes):
            s_type = etype_src[e] if _WITH_TYPED and typed else 0
            first = base[e]
            fr = np.empty(0, np.int64)
            if _WITH_DISJOINT and disjoint:  # the frontier positions of the destination type
                fr = _frontier_of_type(ntp, flo, fhi, etype_dst[e], typed, base[e + 1] - first - 1)
            r = 0
            ra = 0  # (the destination of edge j + _AHEAD: the tree of the slot prefetched)
            j1 = counts[base[e + 1] - 1]
            kn = known[s_type]  # (the source type's count, in a register through the loop)
            for j in range(counts[first], j1):
                u = pos[j]
                if _WITH_HASH and use_hash:  # keyed by (tree, node); tree 0 unless disjoint
                    if j + _AHEAD < j1:
                        ja = j + _AHEAD
                        ta = 0
                        if _WITH_DISJOINT and disjoint:
                            while counts[first + ra + 1] <= ja:
                                ra += 1
                            ta = tree[fr[ra]]
                        ha = _hash_home(ta * num_nodes + pos[ja], hkeys.shape[0])
                        prefetch(hkeys, ha)
                        prefetch(hvals, ha)
                    tr = 0
                    if _WITH_DISJOINT and disjoint:
                        while counts[first + r + 1] <= j:
                            r += 1
                        tr = tree[fr[r]]
                    # The hash step, written out like the dense one below: as an inlined shared
                    # function, each of its array arguments cost an atomic reference count
                    # increment and decrement per edge (numba's pruning left them in this
                    # loop): 31% of the serial kernel's time on papers.
                    kk = tr * num_nodes + u
                    s = _hash_slot(hkeys, kk)
                    if hkeys[s] == -1:
                        hkeys[s] = kk
                        hvals[s] = kn
                        nodes[n] = u
                        if _WITH_DISJOINT and disjoint:
                            tree[n] = tr
                        if _WITH_TYPED and typed:
                            ntp[n] = s_type
                            loc[n] = kn
                        kn += 1
                        n += 1
                    pos[j] = hvals[s]
                else:
                    if not fuse:
                        if j + _AHEAD < j1:
                            prefetch(mapv, pos[j + _AHEAD])
                    else:  # pass 3's read here; the map's entry prefetched from the edge ahead
                        if j + 2 * _AHEAD < j1:
                            prefetch(adj, pos[j + 2 * _AHEAD])
                        if j + _AHEAD < j1:
                            ua, _ea = _edge_at(adj, edge_ids, packed, pos[j + _AHEAD])
                            prefetch(mapv, ua)
                        u, ee = _edge_at(adj, edge_ids, packed, pos[j])
                        eid[j] = ee
                    # the dense map's step, written out: as an inlined shared function the typed
                    # kernel ran 3x slower (mini-mag 4.2 -> 14.7 ms a batch, rmat20 unchanged)
                    # (a branch-free form, every edge writing the map and node slot n and n
                    # advancing by 0 or 1, measured in session 38: mini-mag 3.5% faster but
                    # rmat20 1-3% slower, its map no longer in L2; not kept)
                    entry = mapv[u]
                    if (entry & ~_LOW32) == stamp_hi:
                        pos[j] = entry & _LOW32
                    else:
                        mapv[u] = stamp_hi | kn
                        nodes[n] = u
                        if _WITH_TYPED and typed:
                            ntp[n] = s_type
                            loc[n] = kn
                        pos[j] = kn
                        kn += 1
                        n += 1
            known[s_type] = kn
        for e in range(num_etypes):
            sg = e * num_hops + h
            first = counts[base[e]]
            last = counts[base[e + 1] - 1]
            # (a loop, not the array expression ``counts[...] - first``: in the parallel
            # temporal variant numba compiled that as a parallel subroutine with nothing to
            # parallelise and printed a NumbaPerformanceWarning on first use)
            offs = np.empty(base[e + 1] - base[e], np.int64)
            for j in range(offs.shape[0]):
                offs[j] = counts[base[e] + j] - first
            seg_offsets[sg] = offs
            dst_start[sg] = dst_lo[etype_dst[e]]
            if last_hop:  # already in place in the outputs
                continue
            seg_rows[sg] = pos[first:last]
            seg_eids[sg] = eid[first:last]
            if _WITH_LABOR_GENERAL and importance:
                seg_prob[sg] = eprob[first:last]
                seg_wt[sg] = ewt[first:last]
        for t in range(num_types):
            type_counts[h + 1, t] = known[t] - before[t]
        prev_known = before
        prev_lo = fhi
    # Assembly: the earlier hops' segments copied in (the last hop's are in place); offsets,
    # CSC pointers and destinations alongside.
    indptr_ptr = np.zeros(nseg + 1, np.int64)
    for sg in range(nseg):
        indptr_ptr[sg + 1] = indptr_ptr[sg] + seg_offsets[sg].shape[0]
    indptr_all = np.empty(indptr_ptr[nseg], np.int64)
    # (rows as 1-d views, indexed unsigned: with signed indices numba wraps negative ones and
    # LLVM vectorised the destination fill below into AVX-512 scatters; unsigned, it stores
    # contiguously: 2-3% less time a batch on mini-mag and rmat20)
    src_row = edge_index[0]
    dst_row = edge_index[1]
    for sg in range(nseg):
        off = seg_offsets[sg]
        at = np.uint64(edge_ptr[sg])
        d0 = dst_start[sg]
        for i in range(off.shape[0]):
            indptr_all[indptr_ptr[sg] + i] = off[i]
        if sg % num_hops != num_hops - 1:
            r = seg_rows[sg]
            ee = seg_eids[sg]
            for j in prange(r.shape[0]):
                src_row[at + np.uint64(j)] = r[j]
                eid_out[at + np.uint64(j)] = ee[j]
            if _WITH_LABOR_GENERAL and importance:
                for j in range(r.shape[0]):
                    eprob_out[at + np.uint64(j)] = seg_prob[sg][j]
                    ewt_out[at + np.uint64(j)] = seg_wt[sg][j]
        for i in prange(off.shape[0] - 1):
            v = d0 + i
            for j in range(np.uint64(off[i]), np.uint64(off[i + 1])):
                dst_row[at + j] = v
    # Nodes grouped by type (one type: already in order).
    if _WITH_TYPED and typed:
        start = np.zeros(num_types + 1, np.int64)
        for t in range(num_types):
            start[t + 1] = start[t] + known[t]
        grouped = np.empty(n, np.int64)
        gtree = np.empty(n if _WITH_DISJOINT and disjoint else 0, np.int64)
        for i in range(n):
            g = start[ntp[i]] + loc[i]
            grouped[g] = nodes[i]
            if _WITH_DISJOINT and disjoint:
                gtree[g] = tree[i]
        nodes_out = grouped
        tree_out = gtree
    else:
        nodes_out = nodes[:n]
        tree_out = tree[:n] if _WITH_DISJOINT and disjoint else tree
    return (
        nodes_out,
        tree_out,
        edge_index,
        eid_out,
        type_counts,
        edge_ptr,
        indptr_all,
        indptr_ptr,
        dst_start,
        hkeys,
        hvals,
        eprob_out,
        ewt_out,
    )


@njit(nogil=True, cache=True)
def _frontier_of_type(ntp, flo, fhi, t, typed, count):
    # Discovery positions of the frontier's type-t nodes, in order (their ids within the type).
    out = np.empty(count, np.int64)
    k = 0
    for i in range(flo, fhi):
        if not typed or ntp[i] == t:
            out[k] = i
            k += 1
    return out


# ---------------------------------------------------------------------- induced subgraph
@njit(nogil=True, cache=True, inline="always")
def _lookup(mapv, stamp_hi, hkeys, hvals, u):
    if mapv.shape[0] > 0:
        entry = mapv[u]
        if (entry & ~_LOW32) == stamp_hi:
            return entry & _LOW32
        return -1
    s = _hash_slot(hkeys, u)
    return hvals[s] if hkeys[s] == u else -1


@njit(nogil=True, cache=True, inline="always")
def _bit(bits, v):
    # Bit v (int64) of the bitmap ``bits`` (uint64 words), as a uint64 0 or 1.
    return (bits[v >> 6] >> np.uint64(v & 63)) & np.uint64(1)


@njit(nogil=True, cache=True, inline="always")
def _outside(bits, v):
    # Whether node v's bit is clear in the node-set bitmap ``bits``.
    return _bit(bits, v) == 0


@njit(nogil=True, cache=True)
def position_words(indptr, nodes, active):
    """[n + 1] word offsets of a per-destination bitmap of in-edge CSC positions: node i
    (when ``active[i]``) owns words ``out[i]:out[i + 1]``, word-aligned so that threads
    marking different destinations never share a word."""
    n = nodes.shape[0]
    words = np.zeros(n + 1, np.int64)
    for i in range(n):
        d = indptr[nodes[i] + 1] - indptr[nodes[i]] if active[i] else 0
        words[i + 1] = words[i] + ((d + 63) >> 6)
    return words


@njit(nogil=True, cache=True, inline="always")
def mark_position(kept, word0, q):
    # Marks in-edge q (0-based within its destination) in the destination's words.
    kept[word0 + (q >> 6)] |= np.uint64(1) << np.uint64(q & 63)


@njit(nogil=True, cache=True, inline="always")
def lowest_position(lo, w, word0, x):
    # The CSC position of word w's lowest set bit (x: the word, nonzero) for a destination
    # whose in-edges start at lo and whose words start at word0.
    return lo + ((w - word0) << 6) + np.int64(trailing_zeros(x))


@njit(nogil=True, cache=True, inline="always")
def _popcount64(x):
    # Set bits of a uint64 (SWAR: no loop, no intrinsic).
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(nogil=True, parallel=PRANGE_ONLY, cache=True)
def induced_edges(
    indptr,
    adj,
    edge_ids,
    packed,
    type_per_edge,
    node_offsets,
    num_etypes,
    nodes,
    type_counts,
    mapv,
    stamp,
    hkeys,
    hvals,
):
    """Every graph edge between sampled nodes, ordered by edge type, then by hop =
    max(1, hop(src), hop(dst)), then by destination (the order ``sample_hops`` uses).

    Uses the relabel map left by ``sample_hops`` (same ``stamp``) and its ``nodes`` and
    ``type_counts`` [H+1, T] (one type: [H+1, 1]); ``type_per_edge`` empty when untyped.
    Returns (edge_index [2, E] as ids within each node's type (one type: positions in
    ``nodes``), eid, edge_ptr [K*H+1]): segment (e, h) is ``edge_ptr[e*H + h] ..``.
    """
    n = nodes.shape[0]
    num_hops = type_counts.shape[0] - 1
    num_types = type_counts.shape[1]
    typed_nodes = num_types > 1
    typed_edges = type_per_edge.shape[0] > 0
    stamp_hi = np.int64(stamp) << 32
    # Each position's node type, id within the type and hop (nodes are grouped by type, each
    # type in discovery order, so hops are runs within a type's block).
    start = np.zeros(num_types + 1, np.int64)
    for t in range(num_types):
        start[t + 1] = start[t] + type_counts[:, t].sum()
    ptype = np.zeros(n, np.int64)
    hop_of = np.empty(n, np.int64)
    for t in range(num_types):
        p = start[t]
        for h in range(num_hops + 1):
            for _ in range(type_counts[h, t]):
                ptype[p] = t
                hop_of[p] = h
                p += 1
    nseg = num_etypes * num_hops
    # The seeds may repeat: only each node's first local id is a destination.
    first = np.empty(n, np.bool_)
    for i in prange(n):
        first[i] = _lookup(mapv, stamp_hi, hkeys, hvals, nodes[i]) == i - start[ptype[i]]
    # The sampled nodes as a bitmap (one bit a graph node; with the dense map only, graphs up
    # to DENSE_MAP_MAX_NODES): most in-edges scanned come from outside the set, and the bitmap
    # (N / 8 bytes, cache-resident where the map's N * 8 is not) rejects them without the
    # map's cache miss. The same edges: a bit is set exactly for the map's entries.
    bits = np.zeros((indptr.shape[0] + 63) >> 6 if mapv.shape[0] > 0 else 0, np.uint64)
    with_bits = bits.shape[0] > 0
    if with_bits:
        for i in range(n):
            mark_position(bits, 0, nodes[i])
    # Pass 1 scans each destination's in-edges once, counts its edges per segment and marks
    # the kept CSC positions in a bitmap (word-aligned per destination, so threads never share
    # a word); pass 2 visits only the marked positions. Most scanned edges are rejected
    # (products ShaDow: 14M scanned for 1.1M kept), so the scan is the cost: with the bitmap
    # and one hop it is branch-free, a word of 64 positions at a time.
    words = position_words(indptr, nodes, first)
    kept = np.zeros(words[n], np.uint64)
    counts = np.zeros((n + 1, nseg), np.int64)
    for i in prange(n):
        if not first[i]:
            continue
        v = nodes[i]
        lo = indptr[v]
        hi = indptr[v + 1]
        if with_bits and num_hops == 1:
            w = words[i]
            for e0 in range(lo, hi, 64):
                x = np.uint64(0)
                for e in range(e0, min(e0 + 64, hi)):
                    src, _ = _edge_at(adj, edge_ids, packed, e)
                    b = _bit(bits, src)
                    x |= b << np.uint64(e - e0)
                    if typed_edges:
                        counts[i, type_per_edge[e]] += np.int64(b)
                kept[w] = x
                w += 1
                if not typed_edges:
                    counts[i, 0] += _popcount64(x)
            continue
        for e in range(lo, hi):
            src, _ = _edge_at(adj, edge_ids, packed, e)
            if with_bits and _outside(bits, src):
                continue
            u = _lookup(mapv, stamp_hi, hkeys, hvals, src)
            if u < 0:
                continue
            pu = start[node_type_of(node_offsets, src)] + u if typed_nodes else u
            k = type_per_edge[e] if typed_edges else 0
            g = max(1, max(hop_of[pu], hop_of[i])) - 1
            counts[i, k * num_hops + g] += 1
            mark_position(kept, words[i], e - lo)
    # Offsets: segment-major, destination-minor.
    edge_ptr = np.zeros(nseg + 1, np.int64)
    acc = 0
    for sg in range(nseg):
        for i in range(n):
            c = counts[i, sg]
            counts[i, sg] = acc
            acc += c
        edge_ptr[sg + 1] = acc
    out = np.empty((2, acc), np.int64)
    eid = np.empty(acc, np.int64)
    for i in prange(n):
        if not first[i]:
            continue
        lo = indptr[nodes[i]]
        di = i - start[ptype[i]]
        for w in range(words[i], words[i + 1]):
            x = kept[w]
            while x != 0:
                e = lowest_position(lo, w, words[i], x)
                x &= x - np.uint64(1)
                src, ei = _edge_at(adj, edge_ids, packed, e)
                u = _lookup(mapv, stamp_hi, hkeys, hvals, src)
                pu = start[node_type_of(node_offsets, src)] + u if typed_nodes else u
                k = type_per_edge[e] if typed_edges else 0
                g = max(1, max(hop_of[pu], hop_of[i])) - 1
                j = counts[i, k * num_hops + g]
                counts[i, k * num_hops + g] = j + 1
                out[0, j] = u
                out[1, j] = di
                eid[j] = ei
    return out, eid, edge_ptr


# ---------------------------------------------------------------------- edge order
@njit(nogil=True, cache=True)
def _stable_by(keys, bound, order):
    # ``order`` stably re-sorted by keys[order] (keys in 0..bound-1): one counting pass.
    start = np.zeros(bound + 1, np.int64)
    for j in order:
        start[keys[j] + 1] += 1
    for k in range(bound):
        start[k + 1] += start[k]
    out = np.empty_like(order)
    for j in order:
        k = keys[j]
        out[start[k]] = j
        start[k] += 1
    return out


@njit(nogil=True, cache=True)
def lex_order(primary, secondary, bound):
    """``np.lexsort((secondary, primary))`` for keys in 0..bound-1 (a batch's local node
    ids): two stable counting passes, O(E + bound) instead of a comparison sort. Returns
    (order, already sorted)."""
    order = _stable_by(primary, bound, _stable_by(secondary, bound, np.arange(primary.shape[0])))
    for j in range(order.shape[0]):
        if order[j] != j:
            return order, False
    return order, True


# ---------------------------------------------------------------------- bidirectional
@njit(nogil=True, cache=True)
def bidirectional_edges(edge_index, eid, num_sampled_edges, num_nodes):
    """Sampled edges plus their reverses, deduplicated (the earliest hop keeps an edge).

    Returns (edge_index [2, E'], eid, per-hop counts); a reverse edge carries its original's
    edge id.
    """
    row = edge_index[0]
    col = edge_index[1]
    e = row.shape[0]
    num_hops = num_sampled_edges.shape[0]
    hop = np.empty(e, np.int64)
    start = 0
    for h in range(num_hops):
        for j in range(start, start + num_sampled_edges[h]):
            hop[j] = h
        start += num_sampled_edges[h]
    cap = 16
    while cap < 4 * max(e, 1):
        cap <<= 1
    hkeys = np.full(cap, -1, np.int64)
    out_r = np.empty(2 * e, np.int64)
    out_c = np.empty(2 * e, np.int64)
    out_e = np.empty(2 * e, np.int64)
    per_hop = np.zeros(num_hops, np.int64)
    k = 0
    # Edges come in hop order, so inserting (edge, reverse) pairs in order keeps the earliest hop.
    for j in range(e):
        for flip in range(2):
            r = row[j] if flip == 0 else col[j]
            c = col[j] if flip == 0 else row[j]
            kk = r * num_nodes + c
            s = _hash_slot(hkeys, kk)
            if hkeys[s] == -1:
                hkeys[s] = kk
                out_r[k] = r
                out_c[k] = c
                out_e[k] = eid[j]
                per_hop[hop[j]] += 1
                k += 1
    out = np.empty((2, k), np.int64)
    out[0] = out_r[:k]
    out[1] = out_c[:k]
    return out, out_e[:k], per_hop


# ---------------------------------------------------------------------- helpers
@njit(nogil=True, cache=True)
def _pack_range(indices, edge_ids, out, e0, e1):
    for e in range(e0, e1):
        out[e] = (np.int64(edge_ids[e]) << 32) | (np.int64(indices[e]) & _LOW32)


def pack_adjacency(indices: np.ndarray, edge_ids: np.ndarray, out: np.ndarray) -> None:
    """out[e] = edge_ids[e] << 32 | indices[e]: one load gives an edge's source and id.

    A serial kernel over edge ranges on ``run_items``' threads: it runs once per graph, and a
    ``parallel=True`` kernel would add its compile to every cold first batch.
    """
    run_items(
        _pack_range, indices.shape[0], indices, edge_ids, out, threads=numba.get_num_threads()
    )


@njit(nogil=True, parallel=PRANGE_ONLY, cache=True)
def column_cumsum(indptr, weights, type_per_edge):
    """Inclusive cumulative weights (float64) per column, restarting where the edge type
    changes within a column (``type_per_edge`` empty: untyped), for weighted sampling with
    replacement: each (destination, edge type) segment is then drawn from on its own."""
    n = indptr.shape[0] - 1
    typed = type_per_edge.shape[0] > 0
    out = np.empty(weights.shape[0], np.float64)
    for v in prange(n):
        acc = 0.0
        for e in range(indptr[v], indptr[v + 1]):
            if typed and e > indptr[v] and type_per_edge[e] != type_per_edge[e - 1]:
                acc = 0.0
            acc += weights[e]
            out[e] = acc
    return out


@njit(nogil=True, cache=True)
def first_occurrence_unique(values):
    """(unique values in first-occurrence order, inverse index): a stable ``unique``."""
    n = values.shape[0]
    cap = 16
    while cap < 2 * max(n, 1):
        cap <<= 1
    hkeys = np.full(cap, -1, np.int64)
    hvals = np.empty(cap, np.int64)
    uniq = np.empty(n, np.int64)
    inv = np.empty(n, np.int64)
    k = 0
    for i in range(n):
        v = values[i]
        s = _hash_slot(hkeys, v)
        if hkeys[s] == -1:
            hkeys[s] = v
            hvals[s] = k
            uniq[k] = v
            k += 1
        inv[i] = hvals[s]
    return uniq[:k], inv


# ---------------------------------------------------------------------- serial twins
# Below this much work (edges, or bytes / 64 for gathers) a kernel runs serially.
PARALLEL_MIN_WORK = 1 << 16


def use_parallel(work: int) -> bool:
    """Whether ``work`` is worth a parallel region (``_numba.parallel_pays`` from
    ``PARALLEL_MIN_WORK``)."""
    return parallel_pays(work, PARALLEL_MIN_WORK)


def choose(parallel_kernel, serial_kernel, work: int):
    """The serial twin for small work or when this thread's numba budget is one thread."""
    return parallel_kernel if use_parallel(work) else serial_kernel


sample_hops_serial = serial_twin(sample_hops, "sample_hops_serial")
induced_edges_serial = serial_twin(induced_edges, "induced_edges_serial")

_MODES = ("labor", "labor_general", "temporal", "weighted", "typed", "disjoint", "hashed")
_SWITCHES = tuple(f"_WITH_{m.upper()}" for m in _MODES[:-1]) + ("_WITH_HASH",)


def sample_hops_for(
    work: int,
    labor: bool,
    labor_general: bool,
    temporal: bool,
    weighted: bool,
    typed: bool = True,
    disjoint: bool = True,
    hashed: bool = True,
) -> Any:
    """``sample_hops`` for ``work`` (parallel or serial, as ``choose``) with only these modes.

    ``labor_general``: LABOR-i or batch dependency (``labor`` and ``labor_iters`` != 0 or
    ``labor_key2`` >= 0); ``labor``: LABOR-0 without either; ``temporal``: a non-empty
    ``seed_time``; ``weighted``: the flag; ``typed``: a non-empty ``type_per_edge`` or more
    than one node type (``node_offsets`` longer than 2); ``disjoint``: the flag; ``hashed``:
    the hash-table relabel map (an empty ``mapv``; ``disjoint`` implies it). The other modes'
    branches are compiled out (``_numba.variant``): a cold first batch compiles only what its
    sampler runs, each variant on its first use, cached on disk. The caller must pass the
    modes its arguments use (the last three default to on: the generic code paths); the
    batches are then those of ``sample_hops``.

    Example:
        >>> k = sample_hops_for(100, False, False, False, False, typed=False, disjoint=False,
        ...                     hashed=False)  # homogeneous uniform sampling, dense map
    """
    hashed = hashed or disjoint
    modes = (labor, labor_general, temporal, weighted, typed, disjoint, hashed)
    flags = tuple(bool(f) for f in modes)
    par = use_parallel(work)
    tag = mode_tag(_MODES, flags)
    name = f"sample_hops{'' if par else '_serial'}__{tag}"
    return variant(sample_hops, name, par, **dict(zip(_SWITCHES, flags), _PARALLEL_BUILD=par))


@njit(nogil=True, cache=True)
def has_edges(indptr, indices, type_per_edge, src, dst, etype):
    """Whether the graph has an edge ``src[i] -> dst[i]`` of edge type ``etype`` (global node
    ids; ``type_per_edge`` empty: one edge type), by a scan of ``dst[i]``'s CSC column (its
    sources are in edge-id order, not sorted). Ids must be in range (checked by the caller)."""
    out = np.zeros(src.shape[0], np.bool_)
    for i in range(src.shape[0]):
        v = dst[i]
        u = src[i]
        for p in range(indptr[v], indptr[v + 1]):
            if indices[p] == u and (type_per_edge.shape[0] == 0 or type_per_edge[p] == etype):
                out[i] = True
                break
    return out
