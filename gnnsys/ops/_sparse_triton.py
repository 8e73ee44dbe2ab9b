"""Triton kernels for the sparse ops (``gnnsys.ops.sparse``'s CUDA backend).

Imported only when a CUDA tensor reaches an op (or a test forces this backend), never at
``import gnnsys``: triton is the optional ``gpu`` extra. Under ``TRITON_INTERPRET=1`` the same
kernels run on CPU tensors, which is how CI tests them.

Layout: features are ``[N, H, D]``, read as rows of ``F = H * D`` values (the head of value
``f`` is ``f // D``). A program owns one **segment** of a row of the (transposed) CSC and a
block of features, and walks the segment ``BE`` edges per step: a ``[BE, BF]`` tile of
messages is loaded with masks (ids, weights, features) and reduced over the edge axis, so a
step moves ``BE * BF`` values instead of one edge's.

Heavy rows: power-law graphs have rows of 50k+ edges, which one program would walk alone
while the rest of the GPU idles. A row longer than ``SEG_EDGES`` is cut into segments of
``SEG_EDGES`` edges, one program each (the **plan**, built once per CSC and cached with it).
Reductions over a split row are two-pass: each segment writes a partial (sum; max/min with
its winning edge; softmax max and denominator) and a second kernel combines a row's partials
in edge order. Max/min keep the sequential semantics exactly: the first NaN message wins
(NaN propagates, as in ``torch.scatter_reduce`` "amax"/"amin"), else the first extremum, so
the winning edge (the gradient's route) is the one a one-edge-at-a-time walk picks. Nothing
is atomic (except the opt-in ``spmm_sum_scatter``): results are deterministic, bitwise run to
run for a given plan. Accumulation is float32 (float64 for float64 inputs). The op layer
validates every index.
"""

from __future__ import annotations

import threading
import weakref
from typing import Dict, Optional, Tuple

import torch

try:
    import triton
    import triton.language as tl
except ImportError as exc:  # pragma: no cover - exercised only without the gpu extra
    raise ImportError(
        "gnnsys sparse ops on CUDA tensors need triton: pip install 'gnnsys[gpu]'"
    ) from exc

# Rows with more edges are cut into segments of this many, one program each.
SEG_EDGES = 1024
# Edges per step of a program (the tile's first axis; fewer when features are wide).
MAX_BLOCK_E = 128
# Elements of one tile ([BE, BF] or [BE, BH, BD]).
_TILE = 4096
_NO_EDGE = 4611686018427387904  # 2**62: larger than any edge id (min-reductions over ids)


# =============================================================================== helpers
@triton.jit
def _segment(pid, indptr, seg_row, seg_lo, seg_hi, seg_part, SEGMENTED: tl.constexpr):
    """(row, first edge, end edge, partial slot or -1) of program ``pid``."""
    if SEGMENTED:
        row = tl.load(seg_row + pid).to(tl.int64)
        lo = tl.load(seg_lo + pid).to(tl.int64)
        hi = tl.load(seg_hi + pid).to(tl.int64)
        part = tl.load(seg_part + pid).to(tl.int64)
    else:
        row = pid.to(tl.int64)
        lo = tl.load(indptr + row).to(tl.int64)
        hi = tl.load(indptr + row + 1).to(tl.int64)
        part = row - row - 1
    return row, lo, hi, part


@triton.jit
def _store_sum(out, part, row, p, offs_f, mf, acc, F, cnt, MEAN: tl.constexpr):
    """A whole row's sum (mean) to ``out[row]``, or a segment's partial sum to ``part[p]``."""
    res = acc
    if MEAN:
        res = acc / tl.maximum(cnt, 1).to(acc.dtype)
    pv = offs_f.to(tl.int64) * 0 + p  # a vector: the interpreter rejects vector & scalar masks
    tl.store(out + row * F + offs_f, res.to(out.dtype.element_ty), mask=mf & (pv < 0))
    tl.store(part + p * F + offs_f, acc.to(part.dtype.element_ty), mask=mf & (pv >= 0))


@triton.jit
def _block_best(val, ks, m2, IS_MAX: tl.constexpr):
    """Per column of a [BE, BF] block: (value, edge) of its first NaN, else of its first
    max (min); edge -1 where the column has no edge."""
    kk = ks[:, None] + tl.zeros(val.shape, dtype=tl.int64)
    none = tl.full(val.shape, 4611686018427387904, tl.int64)
    isnan = m2 & (val != val)
    k_nan = tl.min(tl.where(isnan, kk, none), axis=0)
    ok = m2 & (val == val)
    if IS_MAX:
        clean = tl.where(ok, val, float("-inf"))
        mv = tl.max(clean, axis=0)
    else:
        clean = tl.where(ok, val, float("inf"))
        mv = tl.min(clean, axis=0)
    k_m = tl.min(tl.where(ok & (clean == mv[None, :]), kk, none), axis=0)
    has_nan = k_nan < 4611686018427387904
    bk = tl.where(has_nan, k_nan, k_m)
    bk = tl.where(bk < 4611686018427387904, bk, -1)
    bv = tl.where(has_nan, float("nan"), mv)
    return bv, bk


@triton.jit
def _better(best, best_k, bv, bk, IS_MAX: tl.constexpr):
    """Whether a later candidate (bv, bk) replaces (best, best_k) in an edge-order walk: a first
    NaN wins over every number and stays; else only a strictly better value."""
    if IS_MAX:
        strict = bv > best
    else:
        strict = bv < best
    return (bk >= 0) & ((best_k < 0) | ((bv != bv) & (best == best)) | strict)


# =============================================================================== spmm
@triton.jit
def _spmm_sum_kernel(
    indptr,
    seg_row,
    seg_lo,
    seg_hi,
    seg_part,
    indices,
    eperm,
    x,
    w,
    out,
    part,
    F,
    D,
    H,
    HAS_W: tl.constexpr,
    HAS_PERM: tl.constexpr,
    MEAN: tl.constexpr,
    SEGMENTED: tl.constexpr,
    ACC: tl.constexpr,
    BE: tl.constexpr,
    BF: tl.constexpr,
):
    row, lo, hi, p = _segment(
        tl.program_id(0), indptr, seg_row, seg_lo, seg_hi, seg_part, SEGMENTED
    )
    offs_f = tl.program_id(1) * BF + tl.arange(0, BF)
    mf = offs_f < F
    e_ar = tl.arange(0, BE)
    acc = tl.zeros((BF,), dtype=ACC)
    for k0 in range(lo, hi, BE):
        ks = k0 + e_ar
        me = ks < hi
        m2 = me[:, None] & mf[None, :]
        u = tl.load(indices + ks, mask=me, other=0).to(tl.int64)
        xv = tl.load(x + u[:, None] * F + offs_f[None, :], mask=m2, other=0.0).to(ACC)
        if HAS_W:
            if HAS_PERM:
                e = tl.load(eperm + ks, mask=me, other=0).to(tl.int64)
            else:
                e = ks
            wv = tl.load(w + e[:, None] * H + (offs_f // D)[None, :], mask=m2, other=0.0)
            xv = xv * wv.to(ACC)
        acc += tl.sum(xv, axis=0)
    _store_sum(out, part, row, p, offs_f, mf, acc, F, hi - lo, MEAN)


@triton.jit
def _sum_combine_kernel(
    split_rows,
    split_ptr,
    indptr,
    part,
    out,
    F,
    MEAN: tl.constexpr,
    BF: tl.constexpr,
):
    """out[row] = the sum (mean) of a split row's partials, in edge order."""
    r = tl.program_id(0)
    row = tl.load(split_rows + r).to(tl.int64)
    p0 = tl.load(split_ptr + r).to(tl.int64)
    p1 = tl.load(split_ptr + r + 1).to(tl.int64)
    offs_f = tl.program_id(1) * BF + tl.arange(0, BF)
    mf = offs_f < F
    acc = tl.zeros((BF,), dtype=part.dtype.element_ty)
    for p in range(p0, p1):
        acc += tl.load(part + p * F + offs_f, mask=mf, other=0.0)
    if MEAN:
        cnt = tl.load(indptr + row + 1) - tl.load(indptr + row)
        acc = acc / tl.maximum(cnt, 1).to(acc.dtype)
    tl.store(out + row * F + offs_f, acc.to(out.dtype.element_ty), mask=mf)


@triton.jit
def _spmm_arg_kernel(
    indptr,
    seg_row,
    seg_lo,
    seg_hi,
    seg_part,
    indices,
    x,
    w,
    out,
    arg,
    part_v,
    part_k,
    F,
    D,
    H,
    HAS_W: tl.constexpr,
    IS_MAX: tl.constexpr,
    SEGMENTED: tl.constexpr,
    ACC: tl.constexpr,
    BE: tl.constexpr,
    BF: tl.constexpr,
):
    row, lo, hi, p = _segment(
        tl.program_id(0), indptr, seg_row, seg_lo, seg_hi, seg_part, SEGMENTED
    )
    offs_f = tl.program_id(1) * BF + tl.arange(0, BF)
    mf = offs_f < F
    e_ar = tl.arange(0, BE)
    best = tl.zeros((BF,), dtype=ACC)
    best_k = tl.full((BF,), -1, dtype=tl.int64)
    for k0 in range(lo, hi, BE):
        ks = k0 + e_ar
        me = ks < hi
        m2 = me[:, None] & mf[None, :]
        u = tl.load(indices + ks, mask=me, other=0).to(tl.int64)
        val = tl.load(x + u[:, None] * F + offs_f[None, :], mask=m2, other=0.0).to(ACC)
        if HAS_W:
            wv = tl.load(w + ks[:, None] * H + (offs_f // D)[None, :], mask=m2, other=0.0)
            val = val * wv.to(ACC)
        bv, bk = _block_best(val, ks, m2, IS_MAX)
        better = _better(best, best_k, bv, bk, IS_MAX)
        best = tl.where(better, bv, best)
        best_k = tl.where(better, bk, best_k)
    pv = offs_f.to(tl.int64) * 0 + p
    whole = mf & (pv < 0)
    tl.store(out + row * F + offs_f, best.to(out.dtype.element_ty), mask=whole)
    tl.store(arg + row * F + offs_f, best_k.to(arg.dtype.element_ty), mask=whole)
    tl.store(part_v + p * F + offs_f, best.to(part_v.dtype.element_ty), mask=mf & (pv >= 0))
    tl.store(part_k + p * F + offs_f, best_k, mask=mf & (pv >= 0))


@triton.jit
def _arg_combine_kernel(
    split_rows,
    split_ptr,
    part_v,
    part_k,
    out,
    arg,
    F,
    IS_MAX: tl.constexpr,
    BF: tl.constexpr,
):
    """A split row's max (min) and winning edge from its partials, in edge order."""
    r = tl.program_id(0)
    row = tl.load(split_rows + r).to(tl.int64)
    p0 = tl.load(split_ptr + r).to(tl.int64)
    p1 = tl.load(split_ptr + r + 1).to(tl.int64)
    offs_f = tl.program_id(1) * BF + tl.arange(0, BF)
    mf = offs_f < F
    best = tl.zeros((BF,), dtype=part_v.dtype.element_ty)
    best_k = tl.full((BF,), -1, dtype=tl.int64)
    for p in range(p0, p1):
        bv = tl.load(part_v + p * F + offs_f, mask=mf, other=0.0)
        bk = tl.load(part_k + p * F + offs_f, mask=mf, other=-1)
        better = _better(best, best_k, bv, bk, IS_MAX)
        best = tl.where(better, bv, best)
        best_k = tl.where(better, bk, best_k)
    tl.store(out + row * F + offs_f, best.to(out.dtype.element_ty), mask=mf)
    tl.store(arg + row * F + offs_f, best_k.to(arg.dtype.element_ty), mask=mf)


@triton.jit
def _spmm_arg_backward_x_kernel(
    indptr,
    seg_row,
    seg_lo,
    seg_hi,
    seg_part,
    t_indices,
    t_perm,
    grad,
    w,
    arg,
    dx,
    part,
    F,
    D,
    H,
    HAS_W: tl.constexpr,
    SEGMENTED: tl.constexpr,
    ACC: tl.constexpr,
    BE: tl.constexpr,
    BF: tl.constexpr,
):
    # dx[u] = sum over u's out-edges k = u -> v of grad[v] * w[k] where arg[v] == k.
    u, lo, hi, p = _segment(tl.program_id(0), indptr, seg_row, seg_lo, seg_hi, seg_part, SEGMENTED)
    offs_f = tl.program_id(1) * BF + tl.arange(0, BF)
    mf = offs_f < F
    e_ar = tl.arange(0, BE)
    acc = tl.zeros((BF,), dtype=ACC)
    for k0 in range(lo, hi, BE):
        kk = k0 + e_ar
        me = kk < hi
        m2 = me[:, None] & mf[None, :]
        v = tl.load(t_indices + kk, mask=me, other=0).to(tl.int64)
        k = tl.load(t_perm + kk, mask=me, other=0).to(tl.int64)
        a = tl.load(arg + v[:, None] * F + offs_f[None, :], mask=m2, other=-1)
        g = tl.load(grad + v[:, None] * F + offs_f[None, :], mask=m2, other=0.0).to(ACC)
        if HAS_W:
            wv = tl.load(w + k[:, None] * H + (offs_f // D)[None, :], mask=m2, other=0.0)
            g = g * wv.to(ACC)
        acc += tl.sum(tl.where(m2 & (a == k[:, None]), g, 0.0), axis=0)
    _store_sum(dx, part, u, p, offs_f, mf, acc, F, hi - lo, False)


@triton.jit
def _spmm_arg_backward_w_kernel(
    indptr,
    seg_row,
    seg_lo,
    seg_hi,
    seg_part,
    indices,
    grad,
    x,
    arg,
    dw,
    F,
    D,
    H,
    SEGMENTED: tl.constexpr,
    ACC: tl.constexpr,
    BE: tl.constexpr,
    BH: tl.constexpr,
    BD: tl.constexpr,
):
    # dw[k, h] = sum over the features of head h where edge k won of grad[row] * x[source].
    row, lo, hi, p = _segment(
        tl.program_id(0), indptr, seg_row, seg_lo, seg_hi, seg_part, SEGMENTED
    )
    offs_h = tl.program_id(1) * BH + tl.arange(0, BH)
    mh = offs_h < H
    e_ar = tl.arange(0, BE)
    for k0 in range(lo, hi, BE):
        ks = k0 + e_ar
        me = ks < hi
        u = tl.load(indices + ks, mask=me, other=0).to(tl.int64)
        acc = tl.zeros((BE, BH), dtype=ACC)
        for d0 in range(0, D, BD):
            offs_d = d0 + tl.arange(0, BD)
            mhd = mh[:, None] & (offs_d < D)[None, :]
            feat = offs_h[:, None] * D + offs_d[None, :]
            a = tl.load(arg + row * F + feat, mask=mhd, other=-1)
            g = tl.load(grad + row * F + feat, mask=mhd, other=0.0).to(ACC)
            m3 = me[:, None, None] & mhd[None, :, :]
            xv = tl.load(x + u[:, None, None] * F + feat[None, :, :], mask=m3, other=0.0).to(ACC)
            sel = m3 & (a[None, :, :] == ks[:, None, None])
            acc += tl.sum(tl.where(sel, g[None, :, :] * xv, 0.0), axis=2)
        out_m = me[:, None] & mh[None, :]
        tl.store(dw + ks[:, None] * H + offs_h[None, :], acc.to(dw.dtype.element_ty), mask=out_m)


# =============================================================================== sddmm
@triton.jit
def _sddmm_dot_kernel(
    indptr,
    seg_row,
    seg_lo,
    seg_hi,
    seg_part,
    indices,
    x,
    y,
    out,
    F,
    D,
    H,
    SEGMENTED: tl.constexpr,
    ACC: tl.constexpr,
    BE: tl.constexpr,
    BH: tl.constexpr,
    BD: tl.constexpr,
):
    row, lo, hi, p = _segment(
        tl.program_id(0), indptr, seg_row, seg_lo, seg_hi, seg_part, SEGMENTED
    )
    offs_h = tl.program_id(1) * BH + tl.arange(0, BH)
    mh = offs_h < H
    e_ar = tl.arange(0, BE)
    for k0 in range(lo, hi, BE):
        ks = k0 + e_ar
        me = ks < hi
        u = tl.load(indices + ks, mask=me, other=0).to(tl.int64)
        acc = tl.zeros((BE, BH), dtype=ACC)
        for d0 in range(0, D, BD):
            offs_d = d0 + tl.arange(0, BD)
            mhd = mh[:, None] & (offs_d < D)[None, :]
            feat = offs_h[:, None] * D + offs_d[None, :]
            yv = tl.load(y + row * F + feat, mask=mhd, other=0.0).to(ACC)
            m3 = me[:, None, None] & mhd[None, :, :]
            xv = tl.load(x + u[:, None, None] * F + feat[None, :, :], mask=m3, other=0.0).to(ACC)
            acc += tl.sum(xv * yv[None, :, :], axis=2)
        out_m = me[:, None] & mh[None, :]
        tl.store(out + ks[:, None] * H + offs_h[None, :], acc.to(out.dtype.element_ty), mask=out_m)


@triton.jit
def _sddmm_binary_kernel(
    indptr,
    seg_row,
    seg_lo,
    seg_hi,
    seg_part,
    indices,
    x,
    y,
    out,
    F,
    IS_MUL: tl.constexpr,
    SEGMENTED: tl.constexpr,
    BE: tl.constexpr,
    BF: tl.constexpr,
):
    row, lo, hi, p = _segment(
        tl.program_id(0), indptr, seg_row, seg_lo, seg_hi, seg_part, SEGMENTED
    )
    offs_f = tl.program_id(1) * BF + tl.arange(0, BF)
    mf = offs_f < F
    e_ar = tl.arange(0, BE)
    yv = tl.load(y + row * F + offs_f, mask=mf, other=0.0)
    for k0 in range(lo, hi, BE):
        ks = k0 + e_ar
        me = ks < hi
        m2 = me[:, None] & mf[None, :]
        u = tl.load(indices + ks, mask=me, other=0).to(tl.int64)
        xv = tl.load(x + u[:, None] * F + offs_f[None, :], mask=m2, other=0.0)
        if IS_MUL:
            r = xv * yv[None, :]
        else:
            r = xv + yv[None, :]
        tl.store(out + ks[:, None] * F + offs_f[None, :], r.to(out.dtype.element_ty), mask=m2)


# =============================================================================== edge softmax
@triton.jit
def _phase2_segment(pid, seg_lo, seg_hi, part_seg):
    """(first edge, end edge, partial slot) of the ``pid``-th segment of a split row."""
    s = tl.load(part_seg + pid).to(tl.int64)
    lo = tl.load(seg_lo + s).to(tl.int64)
    hi = tl.load(seg_hi + s).to(tl.int64)
    return lo, hi, pid.to(tl.int64)


@triton.jit
def _softmax_write(s, out, lo, hi, m, den, offs_h, mh, H, ACC: tl.constexpr, BE: tl.constexpr):
    e_ar = tl.arange(0, BE)
    for k0 in range(lo, hi, BE):
        ks = k0 + e_ar
        m2 = (ks < hi)[:, None] & mh[None, :]
        sv = tl.load(s + ks[:, None] * H + offs_h[None, :], mask=m2, other=0.0).to(ACC)
        ex = tl.exp(sv - m[None, :])
        tl.store(
            out + ks[:, None] * H + offs_h[None, :],
            (ex / den[None, :]).to(out.dtype.element_ty),
            mask=m2,
        )


@triton.jit
def _edge_softmax_kernel(
    indptr,
    seg_row,
    seg_lo,
    seg_hi,
    seg_part,
    part_seg,
    s,
    out,
    part_m,
    part_d,
    H,
    PHASE: tl.constexpr,
    SEGMENTED: tl.constexpr,
    ACC: tl.constexpr,
    BE: tl.constexpr,
    BH: tl.constexpr,
):
    # PHASE 0 (every row or segment): max, then sum of exp; whole rows are written at once,
    # a split row's segments leave (max, denominator) partials. PHASE 1 (the segments of split
    # rows, after _softmax_combine_kernel put the row's max and denominator in their slots):
    # write.
    offs_h = tl.program_id(1) * BH + tl.arange(0, BH)
    mh = offs_h < H
    if PHASE == 0:
        row, lo, hi, p = _segment(
            tl.program_id(0), indptr, seg_row, seg_lo, seg_hi, seg_part, SEGMENTED
        )
        e_ar = tl.arange(0, BE)
        m = tl.full((BH,), float("-inf"), dtype=ACC)
        for k0 in range(lo, hi, BE):
            ks = k0 + e_ar
            m2 = (ks < hi)[:, None] & mh[None, :]
            sv = tl.load(s + ks[:, None] * H + offs_h[None, :], mask=m2, other=0.0).to(ACC)
            m = tl.maximum(m, tl.max(tl.where(m2, sv, float("-inf")), axis=0))
        den = tl.zeros((BH,), dtype=ACC)
        for k0 in range(lo, hi, BE):
            ks = k0 + e_ar
            m2 = (ks < hi)[:, None] & mh[None, :]
            sv = tl.load(s + ks[:, None] * H + offs_h[None, :], mask=m2, other=0.0).to(ACC)
            den += tl.sum(tl.where(m2, tl.exp(sv - m[None, :]), 0.0), axis=0)
        if p < 0:
            _softmax_write(s, out, lo, hi, m, den, offs_h, mh, H, ACC, BE)
        else:
            tl.store(part_m + p * H + offs_h, m, mask=mh)
            tl.store(part_d + p * H + offs_h, den, mask=mh)
    else:
        lo, hi, p = _phase2_segment(tl.program_id(0), seg_lo, seg_hi, part_seg)
        m = tl.load(part_m + p * H + offs_h, mask=mh, other=0.0)
        den = tl.load(part_d + p * H + offs_h, mask=mh, other=1.0)
        _softmax_write(s, out, lo, hi, m, den, offs_h, mh, H, ACC, BE)


@triton.jit
def _softmax_combine_kernel(
    split_ptr,
    part_m,
    part_d,
    H,
    BACKWARD: tl.constexpr,
    BH: tl.constexpr,
):
    """Combine a split row's partials in edge order and write the result into every slot of
    the row: forward (max, sum of exp rescaled to the row max), backward (sum of p * g)."""
    r = tl.program_id(0)
    p0 = tl.load(split_ptr + r).to(tl.int64)
    p1 = tl.load(split_ptr + r + 1).to(tl.int64)
    offs_h = tl.program_id(1) * BH + tl.arange(0, BH)
    mh = offs_h < H
    tot = tl.zeros((BH,), dtype=part_d.dtype.element_ty)
    if BACKWARD:
        for p in range(p0, p1):
            tot += tl.load(part_d + p * H + offs_h, mask=mh, other=0.0)
        for p in range(p0, p1):
            tl.store(part_d + p * H + offs_h, tot, mask=mh)
    else:
        m = tl.full((BH,), float("-inf"), dtype=part_m.dtype.element_ty)
        for p in range(p0, p1):
            m = tl.maximum(m, tl.load(part_m + p * H + offs_h, mask=mh, other=0.0))
        for p in range(p0, p1):
            pm = tl.load(part_m + p * H + offs_h, mask=mh, other=0.0)
            pd = tl.load(part_d + p * H + offs_h, mask=mh, other=0.0)
            tot += pd * tl.exp(pm - m)
        for p in range(p0, p1):
            tl.store(part_m + p * H + offs_h, m, mask=mh)
            tl.store(part_d + p * H + offs_h, tot, mask=mh)


@triton.jit
def _softmax_bwd_write(
    p_ptr, g_ptr, out, lo, hi, dot, offs_h, mh, H, ACC: tl.constexpr, BE: tl.constexpr
):
    e_ar = tl.arange(0, BE)
    for k0 in range(lo, hi, BE):
        ks = k0 + e_ar
        m2 = (ks < hi)[:, None] & mh[None, :]
        off = ks[:, None] * H + offs_h[None, :]
        pv = tl.load(p_ptr + off, mask=m2, other=0.0).to(ACC)
        gv = tl.load(g_ptr + off, mask=m2, other=0.0).to(ACC)
        tl.store(out + off, (pv * (gv - dot[None, :])).to(out.dtype.element_ty), mask=m2)


@triton.jit
def _edge_softmax_backward_kernel(
    indptr,
    seg_row,
    seg_lo,
    seg_hi,
    seg_part,
    part_seg,
    p_ptr,
    g_ptr,
    out,
    part_d,
    H,
    PHASE: tl.constexpr,
    SEGMENTED: tl.constexpr,
    ACC: tl.constexpr,
    BE: tl.constexpr,
    BH: tl.constexpr,
):
    # ds = p * (g - sum over the row of p * g); phases as in _edge_softmax_kernel.
    offs_h = tl.program_id(1) * BH + tl.arange(0, BH)
    mh = offs_h < H
    if PHASE == 0:
        row, lo, hi, p = _segment(
            tl.program_id(0), indptr, seg_row, seg_lo, seg_hi, seg_part, SEGMENTED
        )
        e_ar = tl.arange(0, BE)
        dot = tl.zeros((BH,), dtype=ACC)
        for k0 in range(lo, hi, BE):
            ks = k0 + e_ar
            m2 = (ks < hi)[:, None] & mh[None, :]
            off = ks[:, None] * H + offs_h[None, :]
            pv = tl.load(p_ptr + off, mask=m2, other=0.0).to(ACC)
            gv = tl.load(g_ptr + off, mask=m2, other=0.0).to(ACC)
            dot += tl.sum(pv * gv, axis=0)
        if p < 0:
            _softmax_bwd_write(p_ptr, g_ptr, out, lo, hi, dot, offs_h, mh, H, ACC, BE)
        else:
            tl.store(part_d + p * H + offs_h, dot, mask=mh)
    else:
        lo, hi, p = _phase2_segment(tl.program_id(0), seg_lo, seg_hi, part_seg)
        dot = tl.load(part_d + p * H + offs_h, mask=mh, other=0.0)
        _softmax_bwd_write(p_ptr, g_ptr, out, lo, hi, dot, offs_h, mh, H, ACC, BE)


# =============================================================================== atomic backward
@triton.jit
def _spmm_scatter_kernel(
    indptr,
    seg_row,
    seg_lo,
    seg_hi,
    seg_part,
    indices,
    grad,
    w,
    dx,
    F,
    D,
    H,
    HAS_W: tl.constexpr,
    SEGMENTED: tl.constexpr,
    BE: tl.constexpr,
    BF: tl.constexpr,
):
    # dx[u] += w[k] * grad[v] for every edge k = u -> v, with atomics (order not fixed).
    row, lo, hi, p = _segment(
        tl.program_id(0), indptr, seg_row, seg_lo, seg_hi, seg_part, SEGMENTED
    )
    offs_f = tl.program_id(1) * BF + tl.arange(0, BF)
    mf = offs_f < F
    e_ar = tl.arange(0, BE)
    g = tl.load(grad + row * F + offs_f, mask=mf, other=0.0).to(dx.dtype.element_ty)
    for k0 in range(lo, hi, BE):
        ks = k0 + e_ar
        me = ks < hi
        m2 = me[:, None] & mf[None, :]
        u = tl.load(indices + ks, mask=me, other=0).to(tl.int64)
        val = tl.zeros((BE, BF), dtype=dx.dtype.element_ty) + g[None, :]
        if HAS_W:
            wv = tl.load(w + ks[:, None] * H + (offs_f // D)[None, :], mask=m2, other=0.0)
            val = val * wv.to(dx.dtype.element_ty)
        tl.atomic_add(dx + u[:, None] * F + offs_f[None, :], val, mask=m2)


# True when TRITON_INTERPRET=1 was set as these kernels were defined: they then run on CPU
# tensors (interpreted); otherwise they need CUDA tensors (``sparse._backend`` checks).
INTERPRETED = not isinstance(_spmm_sum_kernel, triton.runtime.jit.JITFunction)


# =============================================================================== the plan
class Plan:
    """How a CSC's rows map to programs: one per row, or, when some row has more than
    ``seg_edges`` edges, one per segment of at most ``seg_edges`` edges.

    Attributes (segmented plans; all int64 on the CSC's device):
        seg_row, seg_lo, seg_hi: the row and edge range [lo, hi) of each segment.
        seg_part: the partial slot of each segment of a split row (in edge order), else -1.
        split_rows: the rows cut into several segments; ``split_ptr`` [n_split + 1] delimits
        each one's partial slots; ``part_seg``: the segment of each partial slot.
    """

    def __init__(self, num_rows: int, seg_edges: int) -> None:
        self.num_rows = num_rows
        self.seg_edges = seg_edges
        self.segmented = False
        self.num_programs = num_rows
        self.n_part = 0
        self.n_split = 0
        self.seg_row = self.seg_lo = self.seg_hi = self.seg_part = None
        self.split_rows = self.split_ptr = self.part_seg = None

    def __repr__(self) -> str:
        return (
            f"Plan(rows={self.num_rows}, programs={self.num_programs}, "
            f"split_rows={self.n_split}, partials={self.n_part})"
        )


def build_plan(indptr: torch.Tensor, seg_edges: int) -> Plan:
    """The segment plan of a CSC ``indptr`` (see :class:`Plan`); one host read of its sizes.

    Example:
        >>> build_plan(torch.tensor([0, 5, 5, 6]), 2).seg_lo.tolist()
        [0, 2, 4, 5, 5]
    """
    if seg_edges < 1:
        raise ValueError(f"seg_edges must be >= 1, got {seg_edges}")
    num_rows = indptr.numel() - 1
    plan = Plan(num_rows, seg_edges)
    if num_rows <= 0:
        return plan
    ip = indptr.long()
    deg = ip[1:] - ip[:-1]
    nseg = torch.clamp(torch.div(deg + seg_edges - 1, seg_edges, rounding_mode="floor"), min=1)
    split = nseg > 1
    sizes = torch.stack([nseg.sum(), split.sum(), torch.where(split, nseg, 0).sum()]).tolist()
    total, n_split, n_part = (int(v) for v in sizes)
    if n_split == 0:
        return plan
    dev = ip.device
    seg_row = torch.repeat_interleave(torch.arange(num_rows, device=dev), nseg, output_size=total)
    first = torch.cumsum(nseg, 0) - nseg
    j = torch.arange(total, device=dev) - first[seg_row]
    seg_lo = ip[seg_row] + j * seg_edges
    seg_hi = torch.minimum(seg_lo + seg_edges, ip[seg_row + 1])
    is_split = split[seg_row]
    seg_part = torch.where(is_split, torch.cumsum(is_split.long(), 0) - 1, -1)
    split_rows = torch.nonzero(split).flatten()
    split_ptr = torch.zeros(n_split + 1, dtype=torch.int64, device=dev)
    torch.cumsum(nseg[split_rows], 0, out=split_ptr[1:])
    plan.segmented = True
    plan.num_programs = total
    plan.n_part, plan.n_split = n_part, n_split
    plan.seg_row, plan.seg_lo, plan.seg_hi, plan.seg_part = seg_row, seg_lo, seg_hi, seg_part
    plan.split_rows, plan.split_ptr = split_rows, split_ptr
    plan.part_seg = torch.nonzero(is_split).flatten()
    return plan


_PLANS: Dict[int, Tuple[weakref.ref, tuple, Plan]] = {}
_PLANS_LOCK = threading.Lock()


def _forget(key: int) -> None:
    with _PLANS_LOCK:
        _PLANS.pop(key, None)


def plan_of(rows) -> Plan:
    """The plan of ``rows`` (a ``sparse._Rows``), cached with its indptr tensor (weakly: it goes
    with it; rebuilt when the tensor is modified in place or ``SEG_EDGES`` changes)."""
    ip = rows.indptr
    key = id(ip)
    stamp = (ip._version, ip.data_ptr(), ip.numel(), SEG_EDGES)
    with _PLANS_LOCK:
        hit = _PLANS.get(key)
        if hit is not None and hit[0]() is ip and hit[1] == stamp:
            return hit[2]
    plan = build_plan(ip, SEG_EDGES)
    with _PLANS_LOCK:
        fresh = key not in _PLANS or _PLANS[key][0]() is not ip
        _PLANS[key] = (weakref.ref(ip), stamp, plan)
    if fresh:
        weakref.finalize(ip, _forget, key)
    return plan


def _seg_args(rows, plan: Plan) -> tuple:
    ip = rows.indptr
    if plan.segmented:
        return (ip, plan.seg_row, plan.seg_lo, plan.seg_hi, plan.seg_part)
    return (ip, ip, ip, ip, ip)


# =============================================================================== launchers
def _acc(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _acc_torch(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _flat_tiles(width: int) -> Tuple[int, int]:
    """(edges per step, features per block) of a [BE, BF] tile over rows of ``width``."""
    bf = min(triton.next_power_of_2(max(width, 1)), 256)
    be = max(1, min(MAX_BLOCK_E, _TILE // bf))
    return be, bf


def _head_tiles(heads: int, dim: int) -> Tuple[int, int, int]:
    """(edges per step, heads per block, features per step) of a [BE, BH, BD] tile."""
    bd = min(triton.next_power_of_2(max(dim, 1)), 128)
    bh = max(1, min(triton.next_power_of_2(max(heads, 1)), 2048 // bd))
    be = max(1, min(MAX_BLOCK_E, _TILE // (bh * bd)))
    return be, bh, bd


def spmm_sum(rows, x3: torch.Tensor, w2: Optional[torch.Tensor], mean: bool) -> torch.Tensor:
    """out[r] = sum (or mean) over row r of w[e] * x[indices[k]] (see ``_sparse_cpu``)."""
    heads, dim = x3.shape[1], x3.shape[2]
    width = heads * dim
    out = torch.empty((rows.num_rows, heads, dim), dtype=x3.dtype, device=x3.device)
    if out.numel() == 0:
        return out
    plan = plan_of(rows)
    be, bf = _flat_tiles(width)
    part = out
    if plan.n_part:
        part = torch.empty((plan.n_part, width), dtype=_acc_torch(x3.dtype), device=x3.device)
    has_perm = rows.eperm is not None and w2 is not None
    _spmm_sum_kernel[(plan.num_programs, triton.cdiv(width, bf))](
        *_seg_args(rows, plan),
        rows.indices,
        rows.eperm if has_perm else rows.indices,
        x3,
        w2 if w2 is not None else x3,
        out,
        part,
        width,
        dim,
        heads,
        HAS_W=w2 is not None,
        HAS_PERM=has_perm,
        MEAN=mean,
        SEGMENTED=plan.segmented,
        ACC=_acc(x3.dtype),
        BE=be,
        BF=bf,
    )
    if plan.n_split:
        _sum_combine_kernel[(plan.n_split, triton.cdiv(width, bf))](
            plan.split_rows, plan.split_ptr, rows.indptr, part, out, width, MEAN=mean, BF=bf
        )
    return out


def spmm_arg(rows, x3: torch.Tensor, w2: Optional[torch.Tensor], is_max: bool):
    """Row max (or min) of w[k] * x[indices[k]] and the winning edge (-1 for empty rows).

    The winning edge is stored as int32 below 2^31 edges (half the traffic of int64).
    """
    heads, dim = x3.shape[1], x3.shape[2]
    width = heads * dim
    shape = (rows.num_rows, heads, dim)
    out = torch.empty(shape, dtype=x3.dtype, device=x3.device)
    arg_dtype = torch.int32 if rows.num_edges < 2**31 else torch.int64
    arg = torch.empty(shape, dtype=arg_dtype, device=x3.device)
    if out.numel() == 0:
        return out, arg
    plan = plan_of(rows)
    be, bf = _flat_tiles(width)
    part_v, part_k = out, arg
    if plan.n_part:
        part_v = torch.empty((plan.n_part, width), dtype=_acc_torch(x3.dtype), device=x3.device)
        part_k = torch.empty((plan.n_part, width), dtype=torch.int64, device=x3.device)
    _spmm_arg_kernel[(plan.num_programs, triton.cdiv(width, bf))](
        *_seg_args(rows, plan),
        rows.indices,
        x3,
        w2 if w2 is not None else x3,
        out,
        arg,
        part_v,
        part_k,
        width,
        dim,
        heads,
        HAS_W=w2 is not None,
        IS_MAX=is_max,
        SEGMENTED=plan.segmented,
        ACC=_acc(x3.dtype),
        BE=be,
        BF=bf,
    )
    if plan.n_split:
        _arg_combine_kernel[(plan.n_split, triton.cdiv(width, bf))](
            plan.split_rows, plan.split_ptr, part_v, part_k, out, arg, width, IS_MAX=is_max, BF=bf
        )
    return out, arg


def spmm_arg_backward_x(t_rows, grad3: torch.Tensor, w2: Optional[torch.Tensor], arg3):
    """dx[u] = sum over u's out-edges k of grad[v] * w[k] where arg[v] == k (a gather)."""
    heads, dim = grad3.shape[1], grad3.shape[2]
    width = heads * dim
    dx = torch.empty((t_rows.num_rows, heads, dim), dtype=grad3.dtype, device=grad3.device)
    if dx.numel() == 0:
        return dx
    plan = plan_of(t_rows)
    be, bf = _flat_tiles(width)
    part = dx
    if plan.n_part:
        part = torch.empty((plan.n_part, width), dtype=_acc_torch(grad3.dtype), device=dx.device)
    _spmm_arg_backward_x_kernel[(plan.num_programs, triton.cdiv(width, bf))](
        *_seg_args(t_rows, plan),
        t_rows.indices,
        t_rows.eperm,
        grad3,
        w2 if w2 is not None else grad3,
        arg3,
        dx,
        part,
        width,
        dim,
        heads,
        HAS_W=w2 is not None,
        SEGMENTED=plan.segmented,
        ACC=_acc(grad3.dtype),
        BE=be,
        BF=bf,
    )
    if plan.n_split:
        _sum_combine_kernel[(plan.n_split, triton.cdiv(width, bf))](
            plan.split_rows, plan.split_ptr, t_rows.indptr, part, dx, width, MEAN=False, BF=bf
        )
    return dx


def spmm_arg_backward_w(rows, grad3: torch.Tensor, x3: torch.Tensor, arg3) -> torch.Tensor:
    """dw[k, h] = sum over features where edge k won of grad * x[source]."""
    heads, dim = x3.shape[1], x3.shape[2]
    dw = torch.zeros((rows.num_edges, heads), dtype=x3.dtype, device=x3.device)
    if rows.num_edges == 0 or dim == 0:
        return dw
    plan = plan_of(rows)
    be, bh, bd = _head_tiles(heads, dim)
    _spmm_arg_backward_w_kernel[(plan.num_programs, triton.cdiv(heads, bh))](
        *_seg_args(rows, plan),
        rows.indices,
        grad3,
        x3,
        arg3,
        dw,
        heads * dim,
        dim,
        heads,
        SEGMENTED=plan.segmented,
        ACC=_acc(x3.dtype),
        BE=be,
        BH=bh,
        BD=bd,
    )
    return dw


def sddmm_dot(rows, x3: torch.Tensor, y3: torch.Tensor) -> torch.Tensor:
    """out[k, h] = <x[source], y[row]> over the last dimension, per edge and head."""
    heads, dim = x3.shape[1], x3.shape[2]
    out = torch.zeros((rows.num_edges, heads), dtype=x3.dtype, device=x3.device)
    if rows.num_edges == 0 or dim == 0:
        return out
    plan = plan_of(rows)
    be, bh, bd = _head_tiles(heads, dim)
    _sddmm_dot_kernel[(plan.num_programs, triton.cdiv(heads, bh))](
        *_seg_args(rows, plan),
        rows.indices,
        x3,
        y3,
        out,
        heads * dim,
        dim,
        heads,
        SEGMENTED=plan.segmented,
        ACC=_acc(x3.dtype),
        BE=be,
        BH=bh,
        BD=bd,
    )
    return out


def sddmm_binary(rows, x3: torch.Tensor, y3: torch.Tensor, is_mul: bool) -> torch.Tensor:
    """out[k] = x[source] * y[row] (or +), per edge."""
    heads, dim = x3.shape[1], x3.shape[2]
    width = heads * dim
    out = torch.empty((rows.num_edges, heads, dim), dtype=x3.dtype, device=x3.device)
    if out.numel() == 0:
        return out
    plan = plan_of(rows)
    be, bf = _flat_tiles(width)
    _sddmm_binary_kernel[(plan.num_programs, triton.cdiv(width, bf))](
        *_seg_args(rows, plan),
        rows.indices,
        x3,
        y3,
        out,
        width,
        IS_MUL=is_mul,
        SEGMENTED=plan.segmented,
        BE=be,
        BF=bf,
    )
    return out


def _softmax_tiles(heads: int) -> Tuple[int, int]:
    bh = min(triton.next_power_of_2(max(heads, 1)), 256)
    return max(1, min(MAX_BLOCK_E, _TILE // bh)), bh


def edge_softmax_forward(rows, s2: torch.Tensor) -> torch.Tensor:
    """Softmax of s2 [E, H] over each row's edges (max-shifted)."""
    out = torch.empty_like(s2)
    heads = s2.shape[1]
    if out.numel() == 0:
        return out
    plan = plan_of(rows)
    be, bh = _softmax_tiles(heads)
    acc = _acc(s2.dtype)
    part_m = part_d = out
    if plan.n_part:
        part_m = torch.empty((plan.n_part, heads), dtype=_acc_torch(s2.dtype), device=s2.device)
        part_d = torch.empty_like(part_m)
    seg = _seg_args(rows, plan)
    part_seg = plan.part_seg if plan.segmented else rows.indptr
    gh = triton.cdiv(heads, bh)
    common = dict(SEGMENTED=plan.segmented, ACC=acc, BE=be, BH=bh)
    _edge_softmax_kernel[(plan.num_programs, gh)](
        *seg, part_seg, s2, out, part_m, part_d, heads, PHASE=0, **common
    )
    if plan.n_split:
        _softmax_combine_kernel[(plan.n_split, gh)](
            plan.split_ptr, part_m, part_d, heads, BACKWARD=False, BH=bh
        )
        _edge_softmax_kernel[(plan.n_part, gh)](
            *seg, part_seg, s2, out, part_m, part_d, heads, PHASE=1, **common
        )
    return out


def edge_softmax_backward(rows, p2: torch.Tensor, g2: torch.Tensor) -> torch.Tensor:
    """ds = p * (g - sum over the row of p * g)."""
    out = torch.empty_like(p2)
    heads = p2.shape[1]
    if out.numel() == 0:
        return out
    plan = plan_of(rows)
    be, bh = _softmax_tiles(heads)
    part_d = out
    if plan.n_part:
        part_d = torch.empty((plan.n_part, heads), dtype=_acc_torch(p2.dtype), device=p2.device)
    seg = _seg_args(rows, plan)
    part_seg = plan.part_seg if plan.segmented else rows.indptr
    gh = triton.cdiv(heads, bh)
    common = dict(SEGMENTED=plan.segmented, ACC=_acc(p2.dtype), BE=be, BH=bh)
    _edge_softmax_backward_kernel[(plan.num_programs, gh)](
        *seg, part_seg, p2, g2, out, part_d, heads, PHASE=0, **common
    )
    if plan.n_split:
        _softmax_combine_kernel[(plan.n_split, gh)](
            plan.split_ptr, part_d, part_d, heads, BACKWARD=True, BH=bh
        )
        _edge_softmax_backward_kernel[(plan.n_part, gh)](
            *seg, part_seg, p2, g2, out, part_d, heads, PHASE=1, **common
        )
    return out


def spmm_sum_scatter(
    rows, grad3: torch.Tensor, w2: Optional[torch.Tensor], num_src: int
) -> torch.Tensor:
    """Non-deterministic dx = A^T grad with atomic adds over the forward CSC (no transpose)."""
    heads, dim = grad3.shape[1], grad3.shape[2]
    width = heads * dim
    acc_dtype = _acc_torch(grad3.dtype)
    dx = torch.zeros((num_src, heads, dim), dtype=acc_dtype, device=grad3.device)
    if rows.num_edges == 0 or dim == 0:
        return dx.to(grad3.dtype)
    plan = plan_of(rows)
    be, bf = _flat_tiles(width)
    _spmm_scatter_kernel[(plan.num_programs, triton.cdiv(width, bf))](
        *_seg_args(rows, plan),
        rows.indices,
        grad3,
        w2 if w2 is not None else grad3,
        dx,
        width,
        dim,
        heads,
        HAS_W=w2 is not None,
        SEGMENTED=plan.segmented,
        BE=be,
        BF=bf,
    )
    return dx.to(grad3.dtype)
