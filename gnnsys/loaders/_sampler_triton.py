"""Neighbour sampling in Triton: a CSC on the GPU, or in pinned host memory read in place (UVA).

Batch for batch identical to the numba kernel (``_kernels.sample_hops``) for a key: the same
counter-based streams (splitmix64 of hop key, edge type key, node, tree and draw number, in
uint64 arithmetic that wraps as numba's does), the same per-destination algorithms (Floyd,
independent draws, A-Res with exponential keys kept in a min-heap, binary search in cumulative
weights, every edge), and the same relabelling order. Each hop runs:

1. a count kernel (one lane per (destination, edge type) task): the edges each task keeps;
2. an exclusive prefix sum over the tasks (``torch.cumsum``), in the kernel's slot layout
   (edge-type major, one end slot per edge type);
3. a draw kernel (one lane per task) that writes each task's picks into its slots and resolves
   them to sources, edge ids and destinations at once. Floyd's picks and the A-Res heap live in
   a register tile [tasks, next_pow2(fanout)], so the heap goes through exactly the numba
   kernel's swaps and the picks come out in the same slot order;
4. the relabel: a source is known when the batch's map has it (a dense map with a batch
   stamp, as the CPU's, or for ``disjoint`` trees and very large graphs a sorted unique over
   (tree, node) keys); new ids follow first occurrences in edge order (the least edge position
   of each new source, then a prefix sum), which is the CPU's sequential order. The dense map
   finds the least positions with ``index_fill_`` + ``scatter_reduce_`` (``RELABEL =
   "torch"``, the default) or in three kernels around one ``torch.cumsum`` (``"kernels"``,
   not yet timed on a GPU): a claim pass (each new source's least position, by ``atomic_min``
   on a per-thread claim array whose entries carry a per-call stamp in their high bits, so
   nothing is reset between calls), a first-occurrence pass and, for one node type, a
   placement pass that writes rows, new nodes and the map; typed graphs and the sorted regime
   number the new sources with torch ops.

The graph's arrays are CUDA tensors, or host tensors that are page-locked and mapped (by
``Graph.pin_memory_()``, ``gnnsys.unified_tensor.pinning.register`` or torch's pinned
allocator), passed to the kernels as :class:`HostPointer` device addresses: the kernels then
read the structure over PCIe in place. Under ``TRITON_INTERPRET=1`` the same kernels run on CPU
tensors, which is how CI checks the equality with the numba kernel.

Floating point: every float the draws use is exact in both (a 53-bit integer times 2^-53, its
product with an int or a weight sum, a sum with 2^-53 of an exactly scaled value; the division
is correctly rounded) except the A-Res key ``log(u + 2^-53) / w`` of weighted sampling without
replacement: ``log`` is glibc's in the numba kernel, numpy's under the interpreter (1 ulp apart
on 0.35% of such inputs, measured over 5M draws) and libdevice's ``__nv_log`` on CUDA (within
1 ulp). Keys may so differ in their last bit, and the picks differ only when two keys of one
destination lie within an ulp of each other (about d^2 * 2^-52 for d candidate edges): the
batches are identical in every test, but in that mode not guaranteed bit for bit by
construction. Every other mode is.

Kernels do no bounds checks: ``NeighborSampler`` validates seeds, fanouts and weights first.
"""

# No ``from __future__ import annotations``: Triton 2.x compares ``tl.constexpr`` annotations
# as objects, not strings.

import threading
import weakref
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import triton
import triton.language as tl

from gnnsys.graph import Graph
from gnnsys.loaders import _kernels
from gnnsys.loaders.base import SampledSubgraph
from gnnsys.loaders.neighbor import graph_is_pinned
from gnnsys.unified_tensor.gather_triton import HostPointer  # one pointer type for both

# Lanes (tasks) per program, and the most elements of a Floyd / A-Res register tile; below 4
# lanes a program, Triton's compiler needs tens of GB for the A-Res tile.
MAX_BLOCK = 128
MIN_BLOCK = 4
TILE_ELEMS = 4096
# Graphs up to this many nodes relabel through dense [N] maps on the device (16 bytes a node
# per sampling thread); larger ones through a sorted unique per hop.
DENSE_MAX_NODES = 1 << 25
# The largest fanout sampled without replacement (its tile has next_pow2(fanout) columns).
MAX_TILE_FANOUT = 1024
_LOW32 = 0xFFFFFFFF
# Claim entries: (stamp << 32) | edge position, with the stamp counting down from CLAIM_STAMPS
# (a later call's claims are smaller than any earlier call's); CLAIM_FREE beats none.
CLAIM_STAMPS = (1 << 31) - 1
CLAIM_FREE = (1 << 63) - 1
RELABEL_BLOCK = 1024
# How the dense map finds first occurrences: "torch" (index_fill_ + scatter_reduce_ amin over
# edge positions, ~25 torch ops a hop) or "kernels" (the claim / first / place kernels: ~8 torch
# ops and 3 Triton launches a hop; 112 vs 170 torch ops on a 3-hop batch, counted on CPU
# tensors). Same batches either way. "torch" stays the default until a GPU run times both
# (benchmarks/gpu_sampling.py runs both); a sampler keeps the mode it was built with.
RELABEL = "torch"


# ---------------------------------------------------------------------- counter-based randomness
@triton.jit
def _mix(x):
    # splitmix64 finaliser on uint64 (shifts are logical, products wrap mod 2^64).
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB
    return x ^ (x >> 31)


@triton.jit
def _stream(ekey, node, tree):
    # The stream of one (hop, edge type, tree, node): _kernels._stream with an edge type key.
    h = node.to(tl.uint64, bitcast=True) * 0x9E3779B97F4A7C15 + tree.to(tl.uint64, bitcast=True)
    return _mix(ekey ^ _mix(h))


@triton.jit
def _uniform(state, t):
    # A float64 in [0, 1) from draw number t (int64) of a stream: a 53-bit integer times 2^-53.
    r = _mix(state + (t + 1).to(tl.uint64, bitcast=True) * 0xD1B54A32D192ED03)
    return (r >> 11).to(tl.float64) * 1.1102230246251565e-16


@triton.jit
def _below(state, t, n):
    # An integer in [0, n) from draw number t (int64): truncation as numba's np.int64(u * n).
    k = (_uniform(state, t) * n.to(tl.float64)).to(tl.int64)
    return tl.where(k < n, k, n - 1)


@triton.jit
def _rng_kernel(
    x_ptr, key_ptr, node_ptr, tree_ptr, t_ptr, n_ptr, out_ptr, size, BLOCK: tl.constexpr
):
    """Test hook: mix(x), stream(key, node, tree), uniform(x, t) bits and below(x, t, n)."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = i < size
    x = tl.load(x_ptr + i, mask=m, other=0).to(tl.uint64, bitcast=True)
    key = tl.load(key_ptr + i, mask=m, other=0).to(tl.uint64, bitcast=True)
    node = tl.load(node_ptr + i, mask=m, other=0)
    tree = tl.load(tree_ptr + i, mask=m, other=0)
    t = tl.load(t_ptr + i, mask=m, other=0)
    n = tl.load(n_ptr + i, mask=m, other=1)
    tl.store(out_ptr + i, _mix(x).to(tl.int64, bitcast=True), mask=m)
    tl.store(out_ptr + size + i, _stream(key, node, tree).to(tl.int64, bitcast=True), mask=m)
    u = _uniform(x, t)
    tl.store(out_ptr + 2 * size + i, u.to(tl.int64, bitcast=True), mask=m)
    tl.store(out_ptr + 3 * size + i, _below(x, t, n), mask=m)


# ---------------------------------------------------------------------- per-lane helpers
@triton.jit
def _lower_bound(a_ptr, lo, hi, value, mask, iters):
    # First position in [lo, hi) of sorted a whose entry is >= value (iters >= bit length of
    # the longest range).
    for _ in range(0, iters):
        go = mask & (lo < hi)
        mid = (lo + hi) >> 1
        x = tl.load(a_ptr + mid, mask=go, other=0).to(tl.int64)
        less = x < value
        lo = tl.where(go & less, mid + 1, lo)
        hi = tl.where(go & (x >= value), mid, hi)
    return lo


@triton.jit
def _segment(indptr_ptr, tpe_ptr, v, e, mask, iters, SEGMENTED: tl.constexpr):
    # [lo, hi): the edges of type e into v (_kernels._segment).
    lo = tl.load(indptr_ptr + v, mask=mask, other=0).to(tl.int64)
    hi = tl.load(indptr_ptr + v + 1, mask=mask, other=0).to(tl.int64)
    if SEGMENTED:
        s = _lower_bound(tpe_ptr, lo, hi, e, mask, iters)
        hi = _lower_bound(tpe_ptr, s, hi, e + 1, mask, iters)
        lo = s
    return lo, hi


@triton.jit
def _emit(indices_ptr, eids_ptr, src_ptr, eid_out_ptr, col_ptr, tloc, j, p, mask,
          HAS_EIDS: tl.constexpr):  # fmt: skip
    # Slot j gets CSC position p resolved: its source node and edge id (p itself without ids),
    # and its destination's local id tloc.
    u = tl.load(indices_ptr + p, mask=mask, other=0).to(tl.int64)
    tl.store(src_ptr + j, u, mask=mask)
    tl.store(col_ptr + j, tloc, mask=mask)
    if HAS_EIDS:
        eid = tl.load(eids_ptr + p, mask=mask, other=0).to(tl.int64)
    else:
        eid = p
    tl.store(eid_out_ptr + j, eid, mask=mask)


@triton.jit
def _pick_f(tile, cols, idx):
    # tile[lane, idx[lane]] of a float tile (exact: one value against -inf).
    return tl.max(tl.where(cols == idx[:, None], tile, float("-inf")), axis=1)


@triton.jit
def _pick_i(tile, cols, idx):
    # tile[lane, idx[lane]] of an integer tile.
    return tl.sum(tl.where(cols == idx[:, None], tile, 0), axis=1)


@triton.jit
def _sift_down(keys, pos, cols, k, i, act, LOGK: tl.constexpr):
    # _kernels._sift_down on every active lane's heap keys[lane, :k] from slot i[lane].
    for _ in range(0, LOGK):
        left = 2 * i + 1
        has_l = act & (left < k)
        kl = _pick_f(keys, cols, left)
        kr = _pick_f(keys, cols, left + 1)
        ki = _pick_f(keys, cols, i)
        right = (left + 1 < k) & (kr < kl)
        small = tl.where(right, left + 1, left)
        ks = tl.where(right, kr, kl)
        swap = has_l & (ks < ki)
        ps = _pick_i(pos, cols, small)
        pi = _pick_i(pos, cols, i)
        at_i = (cols == i[:, None]) & swap[:, None]
        at_s = (cols == small[:, None]) & swap[:, None]
        keys = tl.where(at_i, ks[:, None], tl.where(at_s, ki[:, None], keys))
        pos = tl.where(at_i, ps[:, None], tl.where(at_s, pi[:, None], pos))
        i = tl.where(swap, small, i)
        act = swap
    return keys, pos


@triton.jit
def _ares(st, w_ptr, lo, d, k, act, BLOCK: tl.constexpr, KMAX: tl.constexpr, LOGK: tl.constexpr):
    # _kernels._weighted_without per lane: A-Res keys log(u)/w of the positive-weight edges in
    # order, the k largest kept in a min-heap whose layout is the CPU's; returns the positions.
    cols = tl.arange(0, KMAX)[None, :]
    keys = tl.zeros([BLOCK, KMAX], tl.float64)
    pos = tl.zeros([BLOCK, KMAX], tl.int64)
    filled = tl.zeros([BLOCK], tl.int64)
    t = tl.zeros([BLOCK], tl.int64)
    dmax = tl.max(tl.where(act, d, 0), axis=0)
    for ee in range(0, dmax):
        p = lo + ee
        on = act & (ee < d)
        w = tl.load(w_ptr + p, mask=on, other=0.0).to(tl.float64)
        pw = on & (w > 0.0)
        u = _uniform(st, t)
        t += pw.to(tl.int64)
        key = tl.log(u + 1.1102230246251565e-16) / tl.where(pw, w, 1.0)
        fill = pw & (filled < k)
        at = (cols == filled[:, None]) & fill[:, None]
        keys = tl.where(at, key[:, None], keys)
        pos = tl.where(at, p[:, None], pos)
        filled += fill.to(tl.int64)
        full = fill & (filled == k)
        if tl.max(full.to(tl.int32), axis=0) > 0:  # heapify the lanes that just filled up
            half = k // 2
            hmax = tl.max(tl.where(full, half, 0), axis=0)
            for ii in range(0, hmax):
                i = half - 1 - ii
                keys, pos = _sift_down(keys, pos, cols, k, i, full & (i >= 0), LOGK)
        root = _pick_f(keys, cols, tl.zeros([BLOCK], tl.int64))
        rep = pw & (~fill) & (key > root)
        if tl.max(rep.to(tl.int32), axis=0) > 0:
            top = (cols == 0) & rep[:, None]
            keys = tl.where(top, key[:, None], keys)
            pos = tl.where(top, p[:, None], pos)
            keys, pos = _sift_down(keys, pos, cols, k, tl.zeros([BLOCK], tl.int64), rep, LOGK)
    return pos


@triton.jit
def _floyd(st, d, k, act, BLOCK: tl.constexpr, KMAX: tl.constexpr):
    # _kernels._floyd per lane: k distinct offsets of [0, d), in the CPU's slot order.
    cols = tl.arange(0, KMAX)[None, :]
    picks = tl.full([BLOCK, KMAX], -1, tl.int64)
    zero = tl.zeros([BLOCK], tl.int64)
    kmax = tl.max(tl.where(act, k, 0), axis=0)
    for t in range(0, kmax):
        tv = zero + t
        on = act & (tv < k)
        j = d - k + tv
        r = _below(st, tv, j + 1)
        hit = tl.max(tl.where(picks == r[:, None], 1, 0), axis=1) > 0
        val = tl.where(hit, j, r)
        picks = tl.where((cols == tv[:, None]) & on[:, None], val[:, None], picks)
    return picks


# ---------------------------------------------------------------------- the kernels
@triton.jit(do_not_specialize=["n_tasks"])  # one compile for every batch size
def _count_kernel(
    task_node_ptr,
    task_etype_ptr,
    fan_ptr,
    indptr_ptr,
    tpe_ptr,
    w_ptr,
    cumw_ptr,
    counts_ptr,
    n_tasks,
    iters,
    BLOCK: tl.constexpr,
    SEGMENTED: tl.constexpr,
    WEIGHTED: tl.constexpr,
    REPLACE: tl.constexpr,
):
    """counts[q + e] = the edges task q (destination, edge type e) keeps (_kernels._keep_count)."""
    q = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = q < n_tasks
    v = tl.load(task_node_ptr + q, mask=m, other=0).to(tl.int64)
    if SEGMENTED:
        e = tl.load(task_etype_ptr + q, mask=m, other=0).to(tl.int64)
    else:
        e = tl.zeros([BLOCK], tl.int64)
    f = tl.load(fan_ptr + e, mask=m, other=0).to(tl.int64)
    lo, hi = _segment(indptr_ptr, tpe_ptr, v, e, m, iters, SEGMENTED)
    d = hi - lo
    live = m & (d > 0) & (f != 0)
    if WEIGHTED:
        if REPLACE:
            need = live & (f < 0)
        else:
            need = live
        pmax = tl.max(tl.where(need, d, 0), axis=0)
        p = tl.zeros([BLOCK], tl.int64)
        for ee in range(0, pmax):
            on = need & (ee < d)
            w = tl.load(w_ptr + lo + ee, mask=on, other=0.0)
            p += (on & (w > 0.0)).to(tl.int64)
        k = tl.where(f < 0, p, tl.minimum(f, p))
        if REPLACE:
            total = tl.load(cumw_ptr + hi - 1, mask=live & (f >= 0), other=0.0)
            k = tl.where(f >= 0, tl.where(total > 0.0, f, 0), k)
    else:
        if REPLACE:
            k = tl.where(f < 0, d, f)
        else:
            k = tl.where(f < 0, d, tl.minimum(f, d))
    k = tl.where(live, k, 0)
    tl.store(counts_ptr + q + e, k, mask=m)


@triton.jit(do_not_specialize=["n_tasks"])  # one compile for every batch size
def _draw_kernel(
    task_node_ptr,
    task_etype_ptr,
    task_tree_ptr,
    task_loc_ptr,
    fan_ptr,
    ekey_ptr,
    indptr_ptr,
    tpe_ptr,
    w_ptr,
    cumw_ptr,
    indices_ptr,
    eids_ptr,
    offs_ptr,
    src_ptr,
    eid_out_ptr,
    col_ptr,
    n_tasks,
    iters,
    BLOCK: tl.constexpr,
    KMAX: tl.constexpr,
    LOGK: tl.constexpr,
    SEGMENTED: tl.constexpr,
    WEIGHTED: tl.constexpr,
    REPLACE: tl.constexpr,
    DISJOINT: tl.constexpr,
    HAS_EIDS: tl.constexpr,
):
    """Each task's picks into slots offs[q+e]..offs[q+e+1]-1, as sources and edge ids, and the
    task's destination local id (task_loc) beside each."""
    q = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = q < n_tasks
    v = tl.load(task_node_ptr + q, mask=m, other=0).to(tl.int64)
    tloc = tl.load(task_loc_ptr + q, mask=m, other=0).to(tl.int64)
    if SEGMENTED:
        e = tl.load(task_etype_ptr + q, mask=m, other=0).to(tl.int64)
    else:
        e = tl.zeros([BLOCK], tl.int64)
    if DISJOINT:
        tr = tl.load(task_tree_ptr + q, mask=m, other=0).to(tl.int64)
    else:
        tr = tl.zeros([BLOCK], tl.int64)
    f = tl.load(fan_ptr + e, mask=m, other=0).to(tl.int64)
    o = tl.load(offs_ptr + q + e, mask=m, other=0)
    k = tl.load(offs_ptr + q + e + 1, mask=m, other=0) - o
    act = m & (k > 0)
    lo, hi = _segment(indptr_ptr, tpe_ptr, v, e, act, iters, SEGMENTED)
    d = hi - lo
    ek = tl.load(ekey_ptr + e, mask=m, other=0).to(tl.uint64, bitcast=True)
    st = _stream(ek, v, tr)
    zero = tl.zeros([BLOCK], tl.int64)
    cols = tl.arange(0, KMAX)[None, :]
    if WEIGHTED:
        every = act & (f < 0)  # fanout -1: every positive-weight edge, in CSC order
        dmax = tl.max(tl.where(every, d, 0), axis=0)
        j = zero
        for ee in range(0, dmax):
            on = every & (ee < d)
            w = tl.load(w_ptr + lo + ee, mask=on, other=0.0)
            ok = on & (w > 0.0)
            _emit(indices_ptr, eids_ptr, src_ptr, eid_out_ptr, col_ptr, tloc, o + j, lo + ee, ok,
                  HAS_EIDS)  # fmt: skip
            j += ok.to(tl.int64)
        drawn = act & (f >= 0)
        if REPLACE:  # k independent draws by binary search in the cumulative weights
            total = tl.load(cumw_ptr + hi - 1, mask=drawn, other=0.0)
            kmax = tl.max(tl.where(drawn, k, 0), axis=0)
            for t in range(0, kmax):
                tv = zero + t
                on = drawn & (tv < k)
                target = _uniform(st, tv) * total
                a = lo
                b = hi - 1
                for _ in range(0, iters):
                    go = on & (a < b)
                    mid = (a + b) >> 1
                    c = tl.load(cumw_ptr + mid, mask=go, other=0.0)
                    gt = c > target
                    b = tl.where(go & gt, mid, b)
                    a = tl.where(go & (c <= target), mid + 1, a)
                _emit(indices_ptr, eids_ptr, src_ptr, eid_out_ptr, col_ptr, tloc, o + tv, a, on,
                      HAS_EIDS)  # fmt: skip
        else:
            pos = _ares(st, w_ptr, lo, d, k, drawn, BLOCK, KMAX, LOGK)
            keep = drawn[:, None] & (cols < k[:, None])
            _emit(indices_ptr, eids_ptr, src_ptr, eid_out_ptr, col_ptr, tloc[:, None],
                  o[:, None] + cols, pos, keep, HAS_EIDS)  # fmt: skip
    else:
        if REPLACE:
            every = act & (f < 0)
        else:
            every = act & ((f < 0) | (k == d))  # all of them, in CSC order
        kmax = tl.max(tl.where(every, k, 0), axis=0)
        for t in range(0, kmax):
            tv = zero + t
            on = every & (tv < k)
            _emit(indices_ptr, eids_ptr, src_ptr, eid_out_ptr, col_ptr, tloc, o + tv, lo + tv, on,
                  HAS_EIDS)  # fmt: skip
        drawn = act & (~every)
        if REPLACE:
            kmax = tl.max(tl.where(drawn, k, 0), axis=0)
            for t in range(0, kmax):
                tv = zero + t
                on = drawn & (tv < k)
                p = lo + _below(st, tv, d)
                _emit(indices_ptr, eids_ptr, src_ptr, eid_out_ptr, col_ptr, tloc, o + tv, p, on,
                      HAS_EIDS)  # fmt: skip
        else:
            picks = _floyd(st, d, k, drawn, BLOCK, KMAX)
            keep = drawn[:, None] & (cols < k[:, None])
            p = lo[:, None] + picks
            _emit(indices_ptr, eids_ptr, src_ptr, eid_out_ptr, col_ptr, tloc[:, None],
                  o[:, None] + cols, p, keep, HAS_EIDS)  # fmt: skip


# ---------------------------------------------------------------------- host side
# True when TRITON_INTERPRET=1 was set as the kernels were defined (they run on CPU tensors).
INTERPRETED = not isinstance(_draw_kernel, triton.runtime.jit.JITFunction)


Array = Union[torch.Tensor, HostPointer]


# ---------------------------------------------------------------------- dense relabel
@triton.jit(do_not_specialize=["e", "stamp", "cstamp"])  # one compile for every hop
def _claim_kernel(u_ptr, mapv_ptr, claim_ptr, old_ptr, e, stamp, cstamp, BLOCK: tl.constexpr):
    """old[j] = the local id of u[j] when the map holds it for this batch (``stamp``), else -1;
    every source not held claims ``(cstamp << 32) | j`` by atomic minimum: afterwards its
    claim holds its least position in ``u``."""
    j = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = j < e
    v = tl.load(u_ptr + j, mask=m, other=0)
    entry = tl.load(mapv_ptr + v, mask=m, other=0)
    hi = entry >> 32
    seen = hi == stamp
    tl.store(old_ptr + j, tl.where(seen, entry - (hi << 32), -1), mask=m)
    tl.atomic_min(claim_ptr + v, (cstamp.to(tl.int64) << 32) | j, mask=m & (~seen))


@triton.jit(do_not_specialize=["e"])
def _first_kernel(u_ptr, claim_ptr, old_ptr, fpos_ptr, isf_ptr, e, BLOCK: tl.constexpr):
    """fpos[j] = the least position of u[j] (new sources; j for known ones) and isf[j] = 1 at
    each new source's first occurrence."""
    j = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = j < e
    v = tl.load(u_ptr + j, mask=m, other=0)
    new = tl.load(old_ptr + j, mask=m, other=0) < 0
    c = tl.load(claim_ptr + v, mask=m & new, other=0)
    f = tl.where(new, c - ((c >> 32) << 32), j)
    tl.store(fpos_ptr + j, f, mask=m)
    tl.store(isf_ptr + j, (new & (f == j)).to(tl.int8), mask=m)


@triton.jit(do_not_specialize=["e", "n", "stamp"])
def _place_kernel(
    u_ptr, old_ptr, fpos_ptr, csum_ptr, mapv_ptr, rows_ptr, new_ptr, e, n, stamp,
    BLOCK: tl.constexpr,
):  # fmt: skip
    """One node type: rows[j] = u[j]'s local id (known: the map's; new: n + its rank among the
    first occurrences, ``csum`` the inclusive prefix sum of isf); each first occurrence writes
    its node to new[rank] and its id into the map."""
    j = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = j < e
    v = tl.load(u_ptr + j, mask=m, other=0)
    o = tl.load(old_ptr + j, mask=m, other=0)
    f = tl.load(fpos_ptr + j, mask=m, other=0)
    new = m & (o < 0)
    rank = tl.load(csum_ptr + f, mask=new, other=1) - 1
    tl.store(rows_ptr + j, tl.where(new, rank + n, o), mask=m)
    first = new & (f == j)
    tl.store(new_ptr + rank, v, mask=first)
    tl.store(mapv_ptr + v, (stamp.to(tl.int64) << 32) | (rank + n), mask=first)


def _next_pow2(x: int) -> int:
    return 1 << max(0, int(x) - 1).bit_length()


def sampling_device(graph: Graph, device: Any = None) -> torch.device:
    """Where the Triton sampler runs: ``device``, else the graph's CUDA device, else the current
    GPU (a pinned graph is read in place, another copied), else the CPU (interpreter only).

    Example:
        >>> sampling_device(g_on_cuda)  # doctest: +SKIP
        device(type='cuda', index=0)
    """
    if device is not None:
        from gnnsys._checks import data_device

        dev = data_device(device)
        if dev.type == "cuda" and dev.index is None:
            from gnnsys._checks import require_cuda

            require_cuda(f"NeighborSampler(device={device!r})")
            dev = torch.device("cuda", torch.cuda.current_device())
        return dev
    if graph.indptr.device.type == "cuda":
        return graph.indptr.device
    if graph_is_pinned(graph) or (torch.cuda.is_available() and not INTERPRETED):
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class _Scratch(threading.local):
    """Per-thread relabel state of the dense regime: node -> stamp << 32 | local id, and the
    first-occurrence scratch (``RELABEL``: "torch", ``first``; "kernels", the claims of
    ``_claim_kernel``); [N] each on the sampling device."""

    def __init__(self) -> None:
        self.mapv: Optional[torch.Tensor] = None
        self.first: Optional[torch.Tensor] = None
        self.claim: Optional[torch.Tensor] = None
        self.stamp = 0
        self.cstamp = 0

    def next_claim_stamp(self) -> int:
        """A claim stamp below every earlier one (the claims refilled when they run out)."""
        if self.cstamp <= 1:
            assert self.claim is not None
            self.claim.fill_(CLAIM_FREE)
            self.cstamp = CLAIM_STAMPS + 1
        self.cstamp -= 1
        return self.cstamp


class TritonSampler:
    """The Triton twin of ``_kernels.sample_hops`` plus the ``SampledSubgraph`` assembly of
    ``NeighborSampler.sample_checked`` (directional subgraphs).

    Args:
        graph: the Graph; its arrays on CUDA, pinned on the host (UVA), or (interpreter) CPU.
        fanouts: int64 [hops, edge types] (``neighbor.fanout_matrix``).
        replace, weighted, layered, disjoint: as ``NeighborSampler`` (layered = DGL semantics).
        device: where kernels run (``sampling_device``); a CPU graph that is not pinned is copied
            to a CUDA ``device`` once.
        dense_map_max_nodes: graphs up to this many nodes relabel through a dense [N] map on
            the device; larger ones (and disjoint trees) through a sorted unique per hop.
        relabel: how the dense map finds first occurrences, "torch" or "kernels" (default:
            the module's ``RELABEL``).

    Example:
        >>> s = TritonSampler(g, np.array([[5], [3]]), device="cuda")  # doctest: +SKIP
        >>> sub = s.sample(torch.tensor([0, 7]), SampleKey(seed=1).as_int())  # doctest: +SKIP
    """

    def __init__(
        self,
        graph: Graph,
        fanouts: np.ndarray,
        *,
        replace: bool = False,
        weighted: bool = False,
        layered: bool = False,
        disjoint: bool = False,
        device: Any = None,
        dense_map_max_nodes: int = 1 << 26,
        relabel: Optional[str] = None,
    ) -> None:
        relabel = RELABEL if relabel is None else relabel
        if relabel not in ("torch", "kernels"):
            raise ValueError(f"relabel must be 'torch' or 'kernels', got {relabel!r}")
        self.relabel = relabel
        self._kw = dict(
            replace=replace, weighted=weighted, layered=layered, disjoint=disjoint,
            device=device, dense_map_max_nodes=dense_map_max_nodes, relabel=relabel,
        )  # fmt: skip
        self.graph = graph
        self.fanouts = np.asarray(fanouts, np.int64)
        self.replace = bool(replace)
        self.weighted = bool(weighted)
        self.layered = bool(layered)
        self.disjoint = bool(disjoint)
        big = int(self.fanouts.max()) if self.fanouts.size else 0
        if not self.replace and big > MAX_TILE_FANOUT:
            raise NotImplementedError(
                f"fanouts above {MAX_TILE_FANOUT} without replacement are not implemented on the "
                f"GPU sampler (got {big}); use -1 (every neighbour), replace=True, or "
                "backend='numba'"
            )
        self.device = sampling_device(graph, device)
        if self.device.type != "cuda" and not INTERPRETED:
            from gnnsys._checks import triton_device_error

            raise ValueError(triton_device_error("the Triton sampler", self.device))
        dense_max = min(dense_map_max_nodes, DENSE_MAX_NODES)
        self.dense = not self.disjoint and graph.num_nodes <= dense_max
        self._regs: List[Any] = []
        self._uva = self.device.type == "cuda" and graph_is_pinned(graph)
        # The typing (Graph.type_layout without numpy, so that CUDA graphs work too).
        names = graph.node_types
        self._etype_src = [names.index(et[0]) for et in graph.edge_types]
        self._etype_dst = [names.index(et[2]) for et in graph.edge_types]
        self._offsets = graph.type_offsets().to(self.device, torch.int64)
        self._num_types = len(names)
        self._segmented = graph.type_per_edge is not None
        self.indptr = self._place(graph.indptr)
        self.indices = self._place(graph.indices)
        self.edge_ids = self._place(graph.edge_ids) if graph.edge_ids is not None else None
        self.tpe = self._place(graph.type_per_edge) if self._segmented else None
        deg = graph.indptr[1:] - graph.indptr[:-1]
        self._iters = int(deg.max()).bit_length() if deg.numel() else 0
        self.weights: Optional[Array] = None
        self.cumw: Optional[Array] = None
        if self.weighted:
            self._prepare_weights(graph)
        self._scratch = _Scratch()
        self._dummy_t = torch.zeros(1, dtype=torch.int64, device=self.device)
        # Per-sampler constants on the device once: a host -> device copy per hop is a sync.
        self._fan_dev = torch.from_numpy(self.fanouts.copy()).to(self.device)
        self._src_types_dev = torch.tensor(self._etype_src, dtype=torch.int64, device=self.device)
        if self._regs:
            from gnnsys.unified_tensor import pinning

            weakref.finalize(self, _release_all, pinning, list(self._regs))

    def __reduce__(self) -> Tuple[Any, ...]:
        # Rebuilt from its arguments: device copies, host registrations and per-thread maps
        # belong to one process.
        return (_rebuild, (self.graph, self.fanouts, self._kw))

    # ------------------------------------------------------------------ arrays
    def _place(self, t: torch.Tensor) -> Array:
        """``t`` where the kernels read it: itself (on the device), a device copy, or a
        :class:`HostPointer` to its page-locked host memory (UVA)."""
        if not t.is_contiguous():
            t = t.contiguous()
        if t.device == self.device:
            return t
        if self._uva and t.device.type == "cpu" and t.numel() and t.is_pinned():
            from gnnsys.unified_tensor import pinning

            nbytes = t.numel() * t.element_size()
            if pinning.is_registered(t.data_ptr(), nbytes):
                reg = pinning.register(t.data_ptr(), nbytes, t)  # our own reference
                reg.used_on(self.device)
                self._regs.append(reg)
                return HostPointer(reg.device_ptr, t.dtype, self.device, t)
            return HostPointer(pinning.host_device_pointer(t.data_ptr()), t.dtype, self.device, t)
        if self._uva and t.device.type == "cpu" and t.numel():
            from gnnsys.unified_tensor import pinning

            try:  # a derived array (cumulative weights): registered in place too
                reg = pinning.register(t.data_ptr(), t.numel() * t.element_size(), t)
            except pinning.CudaError:
                return t.to(self.device)
            reg.used_on(self.device)
            self._regs.append(reg)
            return HostPointer(reg.device_ptr, t.dtype, self.device, t)
        return t.to(self.device)

    def _prepare_weights(self, graph: Graph) -> None:
        w = graph.edge_weight
        if w is None:
            raise ValueError(
                "weighted=True needs a graph with edge_weight (Graph(edge_weight=...))"
            )
        if w.numel():
            bad = ~torch.isfinite(w)
            if bool(bad.any()):
                i = int(torch.nonzero(bad)[0])
                raise ValueError(f"edge_weight must be finite; edge {i} has weight {float(w[i])}")
            neg = w < 0
            if bool(neg.any()):
                i = int(torch.nonzero(neg)[0])
                raise ValueError(f"edge_weight must be >= 0; edge {i} has weight {float(w[i])}")
        if w.dtype not in (torch.float32, torch.float64):
            w = w.double()  # the kernels widen float32 / float64 loads to float64 exactly
        self.weights = self._place(w)
        if self.replace:
            # Per (column, edge type) running sums, added in the numba kernel's order.
            ip = graph.indptr.detach().cpu().numpy().astype(np.int64, copy=False)
            wd = w.detach().cpu().double().numpy()
            tpe = graph.type_per_edge
            tpe = tpe.cpu().numpy() if tpe is not None else np.empty(0, np.int8)
            cumw = _kernels.column_cumsum(ip, np.ascontiguousarray(wd), tpe)
            self.cumw = self._place(torch.from_numpy(cumw))

    def _dummy(self) -> torch.Tensor:
        # Stands in for absent arrays (never read: their constexpr flag is off).
        return self._dummy_t

    # ------------------------------------------------------------------ sampling
    def sample(
        self, seeds: torch.Tensor, key: int, seed_tree: Optional[torch.Tensor] = None
    ) -> SampledSubgraph:
        """Sample around checked int64 ``seeds`` with randomness key ``key`` (an int);
        ``seed_tree`` (disjoint) gives each seed's tree (default: its position).

        Every tensor of the result is on the sampling device.
        """
        if self.device.type == "cuda":
            with torch.cuda.device(self.device):  # Triton launches on the current device
                return self._sample(seeds, key, seed_tree)
        return self._sample(seeds, key, seed_tree)

    def _sample(
        self, seeds: torch.Tensor, key: int, seed_tree: Optional[torch.Tensor]
    ) -> SampledSubgraph:
        dev = self.device
        g = self.graph
        n_nodes = g.num_nodes
        T = self._num_types
        typed = T > 1
        K = self.fanouts.shape[1]
        H = self.fanouts.shape[0]
        seeds = seeds.to(dev, torch.int64)
        b = seeds.numel()
        i64 = dict(dtype=torch.int64, device=dev)
        if self.disjoint:
            tree = (
                seed_tree.to(dev, torch.int64) if seed_tree is not None else torch.arange(b, **i64)
            )
        else:
            tree = None
        # Hop 0: the seeds, duplicates kept; the map points at each node's first occurrence.
        known = [0] * T
        if typed:
            ntp = torch.bucketize(seeds, self._offsets[1:], right=True)
            loc = torch.empty(b, **i64)
            cnt = _type_counts(ntp, T).tolist()
            for t in range(T):
                sel = ntp == t
                loc = torch.where(sel, torch.cumsum(sel, 0) - 1, loc)
                known[t] = int(cnt[t])
        else:  # one type: no per-node types to carry (None), local id = position
            ntp = None
            loc = torch.arange(b, **i64)
            known[0] = b
        relabel = _Relabel(self, seeds, tree, loc, n_nodes)
        nodes = seeds
        n = b
        type_counts = np.zeros((H + 1, T), np.int64)
        type_counts[0] = known
        nseg = K * H
        # Every hop's per-edge-type stream keys, sent to the device in one copy.
        ekeys_all = (
            np.stack(
                [_kernels._etype_keys(np.uint64(_kernels.hop_key(key, h)), K) for h in range(H)]
            ).view(np.int64)
            if H
            else np.zeros((0, K), np.int64)
        )
        ekeys_dev = torch.from_numpy(np.ascontiguousarray(ekeys_all)).to(dev)
        seg_rows: List[Optional[torch.Tensor]] = [None] * nseg
        seg_cols: List[Optional[torch.Tensor]] = [None] * nseg
        seg_eids: List[Optional[torch.Tensor]] = [None] * nseg
        seg_offs: List[Optional[torch.Tensor]] = [None] * nseg
        dst_start = np.zeros(nseg, np.int64)
        prev_lo = 0
        prev_known = [0] * T
        for h in range(H):
            flo = 0 if self.layered else prev_lo
            fhi = n
            before = list(known)
            dst_lo = [0] * T if self.layered else list(prev_known)
            # Tasks: for each edge type, the frontier's nodes of its destination type.
            fr_nodes, fr_loc = nodes[flo:fhi], loc[flo:fhi]
            fr_ntp = ntp[flo:fhi] if typed else None
            # (the per-type frontier sizes below stand in for boolean masks: they must add up)
            assert sum(known[t] - dst_lo[t] for t in range(T)) == fhi - flo
            fr_tree = tree[flo:fhi] if tree is not None else None
            by_type: Dict[int, Tuple[torch.Tensor, ...]] = {}
            t_nodes, t_etype, t_loc, t_tree = [], [], [], []
            sizes = []
            for e in range(K):
                t = self._etype_dst[e]
                if t not in by_type:
                    if typed:
                        # the frontier's type-t nodes: known[t] - dst_lo[t] of them (the nodes
                        # new since dst_lo), so their positions come without a sync
                        at = _positions(fr_ntp == t, known[t] - dst_lo[t])
                        got = (
                            fr_nodes[at],
                            fr_loc[at],
                            fr_tree[at] if fr_tree is not None else None,
                        )
                    else:
                        got = (fr_nodes, fr_loc, fr_tree)
                    by_type[t] = got
                vn, vl, vt = by_type[t]
                t_nodes.append(vn)
                if K > 1 or self._segmented:  # read by the kernels and the host only then
                    t_etype.append(torch.full((vn.numel(),), e, **i64))
                t_loc.append(vl)
                if vt is not None:
                    t_tree.append(vt)
                sizes.append(int(vn.numel()))
            task_node = torch.cat(t_nodes) if K > 1 else t_nodes[0]
            task_etype = (torch.cat(t_etype) if K > 1 else t_etype[0]) if t_etype else self._dummy()
            task_loc = torch.cat(t_loc) if K > 1 else t_loc[0]
            task_tree = (torch.cat(t_tree) if K > 1 else t_tree[0]) if t_tree else None
            n_tasks = sum(sizes)
            base = np.zeros(K + 1, np.int64)
            np.cumsum(np.asarray(sizes, np.int64) + 1, out=base[1:])
            counts = torch.zeros(int(base[K]), **i64)
            fan = self._fan_dev[h]
            if n_tasks:
                self._count(task_node, task_etype, fan, counts, n_tasks)
            offs = torch.zeros(int(base[K]) + 1, **i64)
            torch.cumsum(counts, 0, out=offs[1:])
            if K > 1 or typed:
                bounds_dev = torch.stack([offs[int(x)] for x in base])
                bounds = bounds_dev.tolist()  # the hop's one sync before its draws
            else:  # one edge type: its slots start at 0
                bounds = [0, int(offs[int(base[K])])]  # the hop's one sync before its draws
            e_h = bounds[K]
            src = torch.empty(e_h, **i64)
            eid = torch.empty(e_h, **i64)
            cols = torch.empty(e_h, **i64)  # each edge's destination (local id), by the draws
            if e_h:
                ek = ekeys_dev[h]
                self._draw(task_node, task_etype, task_tree, task_loc, fan, ek, offs, src, eid,
                           cols, n_tasks, h)  # fmt: skip
            # Relabel in output order (edge type, destination, draw).
            stype = None
            if typed and e_h:
                stype = torch.repeat_interleave(
                    self._src_types_dev, bounds_dev[1:] - bounds_dev[:-1], output_size=e_h
                )
            etree = None
            if self.disjoint and e_h:
                # each edge type's tasks are followed by one spare slot in counts; with one
                # edge type, the tasks' counts are its head (a view: no launch)
                if K == 1:
                    tcount = counts[:n_tasks]
                else:
                    tcount = counts[torch.arange(n_tasks, device=dev) + task_etype]
                etree = torch.repeat_interleave(task_tree, tcount, output_size=e_h)
            rows, new_nodes, new_ntp, new_loc = relabel.hop(src, stype, etree, known, n, T)
            if new_nodes.numel():
                nodes = torch.cat([nodes, new_nodes])
                if typed:
                    ntp = torch.cat([ntp, new_ntp])
                loc = torch.cat([loc, new_loc])
                if tree is not None:
                    tree = torch.cat([tree, relabel.new_tree])
                n += int(new_nodes.numel())
            for e in range(K):
                sg = e * H + h
                a, z = bounds[e], bounds[e + 1]
                seg_rows[sg] = rows[a:z]
                seg_cols[sg] = cols[a:z]
                seg_eids[sg] = eid[a:z]
                seg_offs[sg] = offs[int(base[e]) : int(base[e + 1])] - a
                dst_start[sg] = dst_lo[self._etype_dst[e]]
            for t in range(T):
                type_counts[h + 1, t] = known[t] - before[t]
            prev_known = before
            prev_lo = fhi
        return self._assemble(
            nodes, ntp, loc, tree, known, type_counts, seg_rows, seg_cols, seg_eids, seg_offs,
            dst_start,
        )  # fmt: skip

    def _count(self, task_node, task_etype, fan, counts, n_tasks) -> None:
        block = MAX_BLOCK
        dummy = self._dummy()
        _count_kernel[(triton.cdiv(n_tasks, block),)](
            task_node,
            task_etype,
            fan,
            self.indptr,
            self.tpe if self.tpe is not None else dummy,
            self.weights if self.weights is not None else dummy,
            self.cumw if self.cumw is not None else dummy,
            counts,
            n_tasks,
            self._iters,
            BLOCK=block,
            SEGMENTED=self._segmented,
            WEIGHTED=self.weighted,
            REPLACE=self.replace,
            enable_fp_fusion=False,  # rounding as numba's: the same picks bit for bit
        )

    def _draw(
        self, task_node, task_etype, task_tree, task_loc, fan, ekeys, offs, src, eid, cols,
        n_tasks, h,
    ):  # fmt: skip
        fmax = int(self.fanouts[h].max()) if self.fanouts.shape[1] else 0
        tiled = not self.replace and fmax > 0  # Floyd picks or the A-Res heap in registers
        kmax = _next_pow2(fmax) if tiled else 1
        block = max(MIN_BLOCK, min(MAX_BLOCK, TILE_ELEMS // kmax))
        dummy = self._dummy()
        _draw_kernel[(triton.cdiv(n_tasks, block),)](
            task_node,
            task_etype,
            task_tree if task_tree is not None else dummy,
            task_loc,
            fan,
            ekeys,
            self.indptr,
            self.tpe if self.tpe is not None else dummy,
            self.weights if self.weights is not None else dummy,
            self.cumw if self.cumw is not None else dummy,
            self.indices,
            self.edge_ids if self.edge_ids is not None else dummy,
            offs,
            src,
            eid,
            cols,
            n_tasks,
            self._iters,
            BLOCK=block,
            KMAX=kmax,
            LOGK=kmax.bit_length() - 1,
            SEGMENTED=self._segmented,
            WEIGHTED=self.weighted,
            REPLACE=self.replace,
            DISJOINT=self.disjoint,
            HAS_EIDS=self.edge_ids is not None,
            enable_fp_fusion=False,  # rounding as numba's: the same picks bit for bit
        )

    def _assemble(
        self, nodes, ntp, loc, tree, known, type_counts, seg_rows, seg_cols, seg_eids, seg_offs,
        dst_start,
    ) -> SampledSubgraph:  # fmt: skip
        dev = self.device
        g = self.graph
        T = self._num_types
        H = self.fanouts.shape[0]
        nseg = len(seg_rows)
        i64 = dict(dtype=torch.int64, device=dev)
        edge_ptr = np.zeros(nseg + 1, np.int64)
        indptr_ptr = np.zeros(nseg + 1, np.int64)
        for sg in range(nseg):
            edge_ptr[sg + 1] = edge_ptr[sg] + seg_rows[sg].numel()
            indptr_ptr[sg + 1] = indptr_ptr[sg] + seg_offs[sg].numel()
        ei = torch.empty((2, int(edge_ptr[nseg])), **i64)
        if nseg:
            torch.cat(seg_rows, out=ei[0])
            torch.cat(seg_cols, out=ei[1])
            eid = torch.cat(seg_eids)
            indptr_all = torch.cat(seg_offs)
        else:
            eid = torch.empty(0, **i64)
            indptr_all = torch.empty(0, **i64)
        typed = g.is_hetero
        # the host-side arrays of the result in one copy to the device (a copy is a sync)
        tot = type_counts.sum(axis=0)
        off_np = np.concatenate([[0], np.cumsum(tot)]).astype(np.int64)
        start_np = np.concatenate([[0], np.cumsum(known)[:-1]]).astype(np.int64)
        host = [edge_ptr, indptr_ptr, dst_start, type_counts.reshape(-1), off_np, start_np]
        cuts = np.cumsum([0] + [a.shape[0] for a in host])
        packed = torch.from_numpy(np.concatenate(host).astype(np.int64)).to(dev)
        edge_ptr_d, indptr_ptr_d, dst_start_d, tc_d, off_d, start_d = (
            packed[cuts[i] : cuts[i + 1]] for i in range(len(host))
        )
        if T > 1:  # nodes grouped by type, each type in discovery order
            at = start_d[ntp] + loc
            grouped = torch.empty_like(nodes)
            grouped[at] = nodes
            nodes = grouped
            if tree is not None:
                gt = torch.empty_like(tree)
                gt[at] = tree
                tree = gt
        nsn = type_counts.sum(axis=1)
        if H:
            nse = (edge_ptr[1:] - edge_ptr[:-1]).reshape(-1, H).sum(axis=0)
        else:
            nse = np.zeros(0, np.int64)
        return SampledSubgraph(
            nodes=nodes,
            row=ei[0],
            col=ei[1],
            num_sampled_nodes=nsn.tolist(),
            num_sampled_edges=nse.tolist(),
            edge_ids=eid,
            layered=self.layered,
            batch=tree if self.disjoint else None,
            metadata={},
            node_offsets=off_d if typed else None,
            type_num_sampled_nodes=tc_d.view(type_counts.shape) if typed else None,
            edge_ptr=edge_ptr_d,
            hop_indptr=indptr_all,
            hop_indptr_ptr=indptr_ptr_d,
            hop_dst_start=dst_start_d,
            node_types=g.node_types if typed else None,
            edge_types=g.edge_types if typed else None,
        )


class _Relabel:
    """Global -> local ids over one batch, in the CPU kernel's first-occurrence order.

    Dense regime: a per-thread [N] map holding ``stamp << 32 | local id`` (a fresh stamp per
    batch, no reset). Sorted regime (disjoint trees, huge graphs): the (tree, node) keys of every
    node found so far, against which each hop's keys are matched by ``torch.unique``.
    """

    def __init__(
        self,
        s: TritonSampler,
        seeds: torch.Tensor,
        tree: Optional[torch.Tensor],
        loc: torch.Tensor,
        num_nodes: int,
    ) -> None:
        self.num_nodes = num_nodes
        self.dense = s.dense
        self.new_tree: Optional[torch.Tensor] = None
        dev = seeds.device
        b = seeds.numel()
        if self.dense:
            sc = s._scratch
            if sc.mapv is None or sc.mapv.numel() != num_nodes or sc.stamp >= 0x7FFFFFFF:
                sc.mapv = torch.zeros(num_nodes, dtype=torch.int64, device=dev)
                sc.first = sc.claim = None
                sc.stamp = 0
            self.kernels = s.relabel == "kernels"
            if self.kernels and sc.claim is None:
                sc.claim = torch.full((num_nodes,), CLAIM_FREE, dtype=torch.int64, device=dev)
                sc.cstamp = CLAIM_STAMPS + 1
            if not self.kernels and sc.first is None:
                sc.first = torch.empty(num_nodes, dtype=torch.int64, device=dev)
            sc.stamp += 1
            self.scratch = sc
            self.mapv, self.stamp = sc.mapv, sc.stamp
            if b:
                if self.kernels:
                    fpos = self._firsts(seeds)[2]
                else:  # every copy of a seed is a node: only the first copy's position
                    sc.first.index_fill_(0, seeds, b)
                    ar = torch.arange(b, dtype=torch.int64, device=dev)
                    sc.first.scatter_reduce_(0, seeds, ar, "amin")
                    fpos = sc.first[seeds]
                # every copy of a seed writes its first copy's id (no boolean index: no sync)
                self.mapv[seeds] = (self.stamp << 32) | loc[fpos]
        else:
            self.keys = self._key(seeds, tree)
            self.locs = loc

    def _key(self, u: torch.Tensor, tree: Optional[torch.Tensor]) -> torch.Tensor:
        return u if tree is None else tree * self.num_nodes + u

    def _firsts(
        self, u: torch.Tensor
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Dense regime, ``u`` non-empty: (old: each entry's local id where the map holds it
        for this batch (kernels: -1 elsewhere); seen: where it does (None from the kernels:
        ``old >= 0``); fpos: each new entry's first position in ``u``; isf: 1 at first
        occurrences of new entries, bool or int8 from the kernels). No sync."""
        e = u.numel()
        if not self.kernels:
            ar = torch.arange(e, dtype=torch.int64, device=u.device)
            entry = self.mapv[u]
            seen = (entry >> 32) == self.stamp
            first = self.scratch.first
            first.index_fill_(0, u, e)
            first.scatter_reduce_(0, u, ar, "amin")
            fpos = first[u]
            return entry & _LOW32, seen, fpos, (fpos == ar) & ~seen
        if e >= 1 << 32:
            raise ValueError(f"a hop of {e} edges does not fit the relabel's 32-bit positions")
        old = torch.empty(e, dtype=torch.int64, device=u.device)
        fpos = torch.empty(e, dtype=torch.int64, device=u.device)
        isf = torch.empty(e, dtype=torch.int8, device=u.device)
        grid = (triton.cdiv(e, RELABEL_BLOCK),)
        cstamp = self.scratch.next_claim_stamp()
        claim = self.scratch.claim
        _claim_kernel[grid](u, self.mapv, claim, old, e, self.stamp, cstamp, BLOCK=RELABEL_BLOCK)
        _first_kernel[grid](u, claim, old, fpos, isf, e, BLOCK=RELABEL_BLOCK)
        return old, None, fpos, isf

    def hop(
        self,
        u: torch.Tensor,
        stype: Optional[torch.Tensor],
        etree: Optional[torch.Tensor],
        known: List[int],
        n: int,
        num_types: int,
    ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
        """Local ids of the sources ``u`` (in edge order); updates ``known`` in place and
        returns (local ids, new nodes, their types (None without ``stype``), their local
        ids)."""
        e = u.numel()
        dev = u.device
        if self.dense and e:
            old, seen, fpos, isf = self._firsts(u)
            if stype is None and self.kernels:  # one node type: the placement kernel
                csum = torch.cumsum(isf, 0, dtype=torch.int64)
                count = int(csum[-1])  # the hop's one sync
                rows = torch.empty(e, dtype=torch.int64, device=dev)
                new_nodes = torch.empty(count, dtype=torch.int64, device=dev)
                _place_kernel[(triton.cdiv(e, RELABEL_BLOCK),)](
                    u, old, fpos, csum, self.mapv, rows, new_nodes, e, n, self.stamp,
                    BLOCK=RELABEL_BLOCK,
                )  # fmt: skip
                known[0] += count
                return rows, new_nodes, None, torch.arange(n, n + count, device=dev)
            if seen is None:
                seen, isf = old >= 0, isf.bool()
        elif self.dense:  # an empty hop
            old = fpos = torch.zeros(0, dtype=torch.int64, device=dev)
            seen = isf = torch.zeros(0, dtype=torch.bool, device=dev)
        else:
            ar = torch.arange(e, dtype=torch.int64, device=dev)
            keys = self._key(u, etree)
            nk = self.keys.numel()
            allk = torch.cat([self.keys, keys])
            uniq, inv = torch.unique(allk, return_inverse=True)
            firstpos = torch.full((uniq.numel(),), allk.numel(), dtype=torch.int64, device=dev)
            firstpos.scatter_reduce_(0, inv, torch.arange(allk.numel(), device=dev), "amin")
            fk = firstpos[inv[nk:]]
            seen = fk < nk
            isf = fk == nk + ar
            fpos = (fk - nk).clamp_min(0)
        # New local ids: the next ids of the source's type, in order of first occurrence. The
        # per-type counts are the hop's one sync here; the positions of the first occurrences
        # follow from them without another.
        if stype is None:
            rank = torch.cumsum(isf, 0) - 1  # each first occurrence's rank among them
            per_type = [int(rank[-1]) + 1] if e else [0]
            newloc = rank + n
            at = _positions(isf, per_type[0], rank)
        else:
            newloc = torch.zeros(e, dtype=torch.int64, device=dev)
            firsts = torch.where(isf, stype, num_types)
            per_type = _type_counts(firsts, num_types + 1)[:num_types].tolist()
            at = _positions(isf, sum(per_type))
            for t in range(num_types):
                if per_type[t]:
                    sel = stype == t
                    rank = torch.cumsum(isf & sel, 0) - 1
                    newloc = torch.where(sel, known[t] + rank, newloc)
        if not self.dense:
            padded = torch.cat([self.locs, torch.zeros(1, dtype=torch.int64, device=dev)])
            old = padded[fk.clamp_max(nk)]
        rows = torch.where(seen, old, newloc[fpos]) if e else newloc
        new_nodes = u[at]
        new_loc = newloc[at]
        if stype is not None:
            new_ntp = stype[at]
        else:
            new_ntp = None  # one node type: the sampler carries no per-node types
        if self.dense:
            if new_nodes.numel():
                self.mapv[new_nodes] = (self.stamp << 32) | new_loc
        else:
            self.keys = torch.cat([self.keys, keys[at]])
            self.locs = torch.cat([self.locs, new_loc])
            self.new_tree = etree[at] if etree is not None else None
        for t in range(len(per_type)):
            known[t] += int(per_type[t])
        return rows, new_nodes, new_ntp, new_loc


def _type_counts(types: torch.Tensor, num: int) -> torch.Tensor:
    """``torch.bincount(types, minlength=num)`` for ``types`` in [0, num), without the sync in
    which CUDA's bincount learns ``types.max()`` (and without atomics: a one-hot sum, so that
    ``torch.use_deterministic_algorithms`` has nothing to refuse)."""
    ar = torch.arange(num, dtype=types.dtype, device=types.device)
    return (types.unsqueeze(1) == ar).sum(0)


def _positions(mask: torch.Tensor, count: int, rank: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``mask.nonzero()[:, 0]`` when the number of true entries, ``count``, is known on the
    host: no device-to-host sync (``nonzero`` and boolean indexing wait for the GPU to learn
    their size). ``rank``: ``mask.cumsum(0) - 1`` if already computed."""
    if count == 0:
        return torch.zeros(0, dtype=torch.int64, device=mask.device)
    if rank is None:
        rank = torch.cumsum(mask, 0) - 1
    # true entries scatter their position to their rank; false ones to a spill slot, dropped
    slot = torch.where(mask, rank, count)
    out = torch.empty(count + 1, dtype=torch.int64, device=mask.device)
    out.scatter_(0, slot, torch.arange(mask.numel(), dtype=torch.int64, device=mask.device))
    return out[:count]


def _rebuild(graph: Graph, fanouts: np.ndarray, kw: Dict[str, Any]) -> TritonSampler:
    return TritonSampler(graph, fanouts, **kw)


def _release_all(pinning: Any, regs: List[Any]) -> None:
    for reg in regs:
        pinning.release(reg)


# ---------------------------------------------------------------------- test hooks
def rng_values(
    x: torch.Tensor,
    key: torch.Tensor,
    node: torch.Tensor,
    tree: torch.Tensor,
    t: torch.Tensor,
    n: torch.Tensor,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The kernels' own ``mix(x)``, ``stream(key, node, tree)``, ``uniform(x, t)`` and
    ``below(x, t, n)`` for int64 tensors (uint64 bits) of one length, for checking against
    numba's ``_kernels`` functions.

    Example:
        >>> z = torch.zeros(1, dtype=torch.int64)
        >>> rng_values(z, z, z, z, z, z + 1)[3].tolist()
        [0]
    """
    size = x.numel()
    out = torch.empty(4 * size, dtype=torch.int64, device=x.device)
    if size:
        block = 128
        _rng_kernel[(triton.cdiv(size, block),)](
            x, key, node, tree, t, n, out, size, BLOCK=block, enable_fp_fusion=False
        )
    mix, stream, ubits, below = out.view(4, size)
    return mix, stream, ubits.view(torch.float64), below
