"""Triton kernels for the sparse ops (``gnnsys.ops.sparse``'s CUDA backend).

Imported only when a CUDA tensor reaches an op (or a test forces this backend), never at
``import gnnsys``: triton is the optional ``gpu`` extra. Under ``TRITON_INTERPRET=1`` the same
kernels run on CPU tensors, which is how CI tests them.

Layout: features are ``[N, H, D]`` and each program owns one row of the (transposed) CSC and a
``[BH, BD]`` tile of (heads, features); it walks the row's edges in order and writes only its own
output, so (except the opt-in atomic ``spmm_sum_scatter``) the kernels are deterministic.
Accumulation is float32 (float64 for float64 inputs). The op layer validates every index.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

try:
    import triton
    import triton.language as tl
except ImportError as exc:  # pragma: no cover - exercised only without the gpu extra
    raise ImportError(
        "gnnsys sparse ops on CUDA tensors need triton: pip install 'gnnsys[gpu]'"
    ) from exc

_TILE = 2048  # max elements of one (heads x features) tile


@triton.jit
def _spmm_sum_kernel(
    indptr,
    indices,
    eperm,
    x,
    w,
    out,
    H,
    D,
    HAS_W: tl.constexpr,
    HAS_PERM: tl.constexpr,
    MEAN: tl.constexpr,
    ACC: tl.constexpr,
    BH: tl.constexpr,
    BD: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    offs_h = tl.program_id(1) * BH + tl.arange(0, BH)
    offs_d = tl.program_id(2) * BD + tl.arange(0, BD)
    mh = offs_h < H
    mask = mh[:, None] & (offs_d < D)[None, :]
    feat = offs_h[:, None] * D + offs_d[None, :]
    lo = tl.load(indptr + row)
    hi = tl.load(indptr + row + 1)
    acc = tl.zeros((BH, BD), dtype=ACC)
    for k in range(lo, hi):
        u = tl.load(indices + k).to(tl.int64)
        xv = tl.load(x + u * H * D + feat, mask=mask, other=0.0).to(ACC)
        if HAS_W:
            if HAS_PERM:
                e = tl.load(eperm + k).to(tl.int64)
            else:
                e = k
            wv = tl.load(w + e * H + offs_h, mask=mh, other=0.0).to(ACC)
            xv = xv * wv[:, None]
        acc += xv
    if MEAN:
        acc = acc / tl.maximum(hi - lo, 1).to(ACC)
    tl.store(out + row * H * D + feat, acc.to(out.dtype.element_ty), mask=mask)


@triton.jit
def _spmm_arg_kernel(
    indptr,
    indices,
    x,
    w,
    out,
    arg,
    H,
    D,
    HAS_W: tl.constexpr,
    IS_MAX: tl.constexpr,
    ACC: tl.constexpr,
    BH: tl.constexpr,
    BD: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    offs_h = tl.program_id(1) * BH + tl.arange(0, BH)
    offs_d = tl.program_id(2) * BD + tl.arange(0, BD)
    mh = offs_h < H
    mask = mh[:, None] & (offs_d < D)[None, :]
    feat = offs_h[:, None] * D + offs_d[None, :]
    lo = tl.load(indptr + row)
    hi = tl.load(indptr + row + 1)
    best = tl.zeros((BH, BD), dtype=ACC)
    best_k = tl.full((BH, BD), -1, dtype=tl.int64)
    for k in range(lo, hi):
        u = tl.load(indices + k).to(tl.int64)
        val = tl.load(x + u * H * D + feat, mask=mask, other=0.0).to(ACC)
        if HAS_W:
            wv = tl.load(w + k * H + offs_h, mask=mh, other=0.0).to(ACC)
            val = val * wv[:, None]
        # A NaN message wins over every number and the first NaN stays (NaN propagates, as in
        # torch.scatter_reduce "amax"/"amin", whatever the edge order).
        if IS_MAX:
            better = (val > best) | (best_k < 0) | ((val != val) & (best == best))
        else:
            better = (val < best) | (best_k < 0) | ((val != val) & (best == best))
        best = tl.where(better, val, best)
        best_k = tl.where(better, k, best_k)
    tl.store(out + row * H * D + feat, best.to(out.dtype.element_ty), mask=mask)
    tl.store(arg + row * H * D + feat, best_k.to(arg.dtype.element_ty), mask=mask)


@triton.jit
def _spmm_arg_backward_x_kernel(
    t_indptr,
    t_indices,
    t_perm,
    grad,
    w,
    arg,
    dx,
    H,
    D,
    HAS_W: tl.constexpr,
    ACC: tl.constexpr,
    BH: tl.constexpr,
    BD: tl.constexpr,
):
    u = tl.program_id(0).to(tl.int64)
    offs_h = tl.program_id(1) * BH + tl.arange(0, BH)
    offs_d = tl.program_id(2) * BD + tl.arange(0, BD)
    mh = offs_h < H
    mask = mh[:, None] & (offs_d < D)[None, :]
    feat = offs_h[:, None] * D + offs_d[None, :]
    lo = tl.load(t_indptr + u)
    hi = tl.load(t_indptr + u + 1)
    acc = tl.zeros((BH, BD), dtype=ACC)
    for kk in range(lo, hi):
        v = tl.load(t_indices + kk).to(tl.int64)
        k = tl.load(t_perm + kk).to(tl.int64)
        a = tl.load(arg + v * H * D + feat, mask=mask, other=-1)
        g = tl.load(grad + v * H * D + feat, mask=mask, other=0.0).to(ACC)
        if HAS_W:
            wv = tl.load(w + k * H + offs_h, mask=mh, other=0.0).to(ACC)
            g = g * wv[:, None]
        acc += tl.where(a == k, g, 0.0)
    tl.store(dx + u * H * D + feat, acc.to(dx.dtype.element_ty), mask=mask)


@triton.jit
def _spmm_arg_backward_w_kernel(
    indptr,
    indices,
    grad,
    x,
    arg,
    dw,
    H,
    D,
    ACC: tl.constexpr,
    BH: tl.constexpr,
    BD: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    offs_h = tl.program_id(1) * BH + tl.arange(0, BH)
    mh = offs_h < H
    lo = tl.load(indptr + row)
    hi = tl.load(indptr + row + 1)
    for k in range(lo, hi):
        u = tl.load(indices + k).to(tl.int64)
        acc = tl.zeros((BH,), dtype=ACC)
        for d0 in range(0, D, BD):
            offs_d = d0 + tl.arange(0, BD)
            mask = mh[:, None] & (offs_d < D)[None, :]
            feat = offs_h[:, None] * D + offs_d[None, :]
            a = tl.load(arg + row * H * D + feat, mask=mask, other=-1)
            g = tl.load(grad + row * H * D + feat, mask=mask, other=0.0).to(ACC)
            xv = tl.load(x + u * H * D + feat, mask=mask, other=0.0).to(ACC)
            acc += tl.sum(tl.where(a == k, g * xv, 0.0), axis=1)
        tl.store(dw + k * H + offs_h, acc.to(dw.dtype.element_ty), mask=mh)


@triton.jit
def _sddmm_dot_kernel(
    indptr,
    indices,
    x,
    y,
    out,
    H,
    D,
    ACC: tl.constexpr,
    BH: tl.constexpr,
    BD: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    offs_h = tl.program_id(1) * BH + tl.arange(0, BH)
    mh = offs_h < H
    lo = tl.load(indptr + row)
    hi = tl.load(indptr + row + 1)
    for k in range(lo, hi):
        u = tl.load(indices + k).to(tl.int64)
        acc = tl.zeros((BH,), dtype=ACC)
        for d0 in range(0, D, BD):
            offs_d = d0 + tl.arange(0, BD)
            mask = mh[:, None] & (offs_d < D)[None, :]
            feat = offs_h[:, None] * D + offs_d[None, :]
            xv = tl.load(x + u * H * D + feat, mask=mask, other=0.0).to(ACC)
            yv = tl.load(y + row * H * D + feat, mask=mask, other=0.0).to(ACC)
            acc += tl.sum(xv * yv, axis=1)
        tl.store(out + k * H + offs_h, acc.to(out.dtype.element_ty), mask=mh)


@triton.jit
def _sddmm_binary_kernel(
    indptr,
    indices,
    x,
    y,
    out,
    H,
    D,
    IS_MUL: tl.constexpr,
    BH: tl.constexpr,
    BD: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    offs_h = tl.program_id(1) * BH + tl.arange(0, BH)
    offs_d = tl.program_id(2) * BD + tl.arange(0, BD)
    mask = (offs_h < H)[:, None] & (offs_d < D)[None, :]
    feat = offs_h[:, None] * D + offs_d[None, :]
    lo = tl.load(indptr + row)
    hi = tl.load(indptr + row + 1)
    yv = tl.load(y + row * H * D + feat, mask=mask, other=0.0)
    for k in range(lo, hi):
        u = tl.load(indices + k).to(tl.int64)
        xv = tl.load(x + u * H * D + feat, mask=mask, other=0.0)
        if IS_MUL:
            r = xv * yv
        else:
            r = xv + yv
        tl.store(out + k * H * D + feat, r, mask=mask)


@triton.jit
def _edge_softmax_kernel(
    indptr,
    s,
    out,
    H,
    ACC: tl.constexpr,
    BH: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    offs_h = tl.program_id(1) * BH + tl.arange(0, BH)
    mh = offs_h < H
    lo = tl.load(indptr + row)
    hi = tl.load(indptr + row + 1)
    m = tl.full((BH,), float("-inf"), dtype=ACC)
    for k in range(lo, hi):
        m = tl.maximum(m, tl.load(s + k * H + offs_h, mask=mh, other=0.0).to(ACC))
    den = tl.zeros((BH,), dtype=ACC)
    for k in range(lo, hi):
        den += tl.exp(tl.load(s + k * H + offs_h, mask=mh, other=0.0).to(ACC) - m)
    for k in range(lo, hi):
        ex = tl.exp(tl.load(s + k * H + offs_h, mask=mh, other=0.0).to(ACC) - m)
        tl.store(out + k * H + offs_h, (ex / den).to(out.dtype.element_ty), mask=mh)


@triton.jit
def _edge_softmax_backward_kernel(
    indptr,
    p,
    g,
    out,
    H,
    ACC: tl.constexpr,
    BH: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    offs_h = tl.program_id(1) * BH + tl.arange(0, BH)
    mh = offs_h < H
    lo = tl.load(indptr + row)
    hi = tl.load(indptr + row + 1)
    dot = tl.zeros((BH,), dtype=ACC)
    for k in range(lo, hi):
        pv = tl.load(p + k * H + offs_h, mask=mh, other=0.0).to(ACC)
        gv = tl.load(g + k * H + offs_h, mask=mh, other=0.0).to(ACC)
        dot += pv * gv
    for k in range(lo, hi):
        pv = tl.load(p + k * H + offs_h, mask=mh, other=0.0).to(ACC)
        gv = tl.load(g + k * H + offs_h, mask=mh, other=0.0).to(ACC)
        tl.store(out + k * H + offs_h, (pv * (gv - dot)).to(out.dtype.element_ty), mask=mh)


@triton.jit
def _spmm_scatter_kernel(
    indptr,
    indices,
    grad,
    w,
    dx,
    H,
    D,
    HAS_W: tl.constexpr,
    BH: tl.constexpr,
    BD: tl.constexpr,
):
    # dx[u] += w[k] * grad[v] for every edge k = u -> v, with atomics (order not fixed).
    row = tl.program_id(0).to(tl.int64)
    offs_h = tl.program_id(1) * BH + tl.arange(0, BH)
    offs_d = tl.program_id(2) * BD + tl.arange(0, BD)
    mh = offs_h < H
    mask = mh[:, None] & (offs_d < D)[None, :]
    feat = offs_h[:, None] * D + offs_d[None, :]
    lo = tl.load(indptr + row)
    hi = tl.load(indptr + row + 1)
    g = tl.load(grad + row * H * D + feat, mask=mask, other=0.0).to(dx.dtype.element_ty)
    for k in range(lo, hi):
        u = tl.load(indices + k).to(tl.int64)
        val = g
        if HAS_W:
            wv = tl.load(w + k * H + offs_h, mask=mh, other=0.0).to(dx.dtype.element_ty)
            val = g * wv[:, None]
        tl.atomic_add(dx + u * H * D + feat, val, mask=mask)


# True when TRITON_INTERPRET=1 was set as these kernels were defined: they then run on CPU
# tensors (interpreted); otherwise they need CUDA tensors (``sparse._backend`` checks).
INTERPRETED = not isinstance(_spmm_sum_kernel, triton.runtime.jit.JITFunction)


# =============================================================================== launchers
def _acc(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _tiles(heads: int, dim: int) -> Tuple[int, int]:
    bd = min(triton.next_power_of_2(max(dim, 1)), 256)
    bh = max(1, min(triton.next_power_of_2(max(heads, 1)), _TILE // bd))
    return bh, bd


def _grid3(rows: int, heads: int, dim: int, bh: int, bd: int) -> Tuple[int, int, int]:
    return (rows, triton.cdiv(heads, bh), triton.cdiv(dim, bd))


def spmm_sum(rows, x3: torch.Tensor, w2: Optional[torch.Tensor], mean: bool) -> torch.Tensor:
    """out[r] = sum (or mean) over row r of w[e] * x[indices[k]] (see ``_sparse_cpu``)."""
    heads, dim = x3.shape[1], x3.shape[2]
    out = torch.empty((rows.num_rows, heads, dim), dtype=x3.dtype, device=x3.device)
    if out.numel() == 0:
        return out
    bh, bd = _tiles(heads, dim)
    has_perm = rows.eperm is not None and w2 is not None
    _spmm_sum_kernel[_grid3(rows.num_rows, heads, dim, bh, bd)](
        rows.indptr,
        rows.indices,
        rows.eperm if has_perm else rows.indices,
        x3,
        w2 if w2 is not None else x3,
        out,
        heads,
        dim,
        HAS_W=w2 is not None,
        HAS_PERM=has_perm,
        MEAN=mean,
        ACC=_acc(x3.dtype),
        BH=bh,
        BD=bd,
    )
    return out


def spmm_arg(rows, x3: torch.Tensor, w2: Optional[torch.Tensor], is_max: bool):
    """Row max (or min) of w[k] * x[indices[k]] and the winning edge (-1 for empty rows).

    The winning edge is stored as int32 below 2^31 edges (half the traffic of int64).
    """
    heads, dim = x3.shape[1], x3.shape[2]
    shape = (rows.num_rows, heads, dim)
    out = torch.empty(shape, dtype=x3.dtype, device=x3.device)
    arg_dtype = torch.int32 if rows.num_edges < 2**31 else torch.int64
    arg = torch.empty(shape, dtype=arg_dtype, device=x3.device)
    if out.numel() == 0:
        return out, arg
    bh, bd = _tiles(heads, dim)
    _spmm_arg_kernel[_grid3(rows.num_rows, heads, dim, bh, bd)](
        rows.indptr,
        rows.indices,
        x3,
        w2 if w2 is not None else x3,
        out,
        arg,
        heads,
        dim,
        HAS_W=w2 is not None,
        IS_MAX=is_max,
        ACC=_acc(x3.dtype),
        BH=bh,
        BD=bd,
    )
    return out, arg


def spmm_arg_backward_x(t_rows, grad3: torch.Tensor, w2: Optional[torch.Tensor], arg3):
    """dx[u] = sum over u's out-edges k of grad[v] * w[k] where arg[v] == k (a gather)."""
    heads, dim = grad3.shape[1], grad3.shape[2]
    dx = torch.empty((t_rows.num_rows, heads, dim), dtype=grad3.dtype, device=grad3.device)
    if dx.numel() == 0:
        return dx
    bh, bd = _tiles(heads, dim)
    _spmm_arg_backward_x_kernel[_grid3(t_rows.num_rows, heads, dim, bh, bd)](
        t_rows.indptr,
        t_rows.indices,
        t_rows.eperm,
        grad3,
        w2 if w2 is not None else grad3,
        arg3,
        dx,
        heads,
        dim,
        HAS_W=w2 is not None,
        ACC=_acc(grad3.dtype),
        BH=bh,
        BD=bd,
    )
    return dx


def spmm_arg_backward_w(rows, grad3: torch.Tensor, x3: torch.Tensor, arg3) -> torch.Tensor:
    """dw[k, h] = sum over features where edge k won of grad * x[source]."""
    heads, dim = x3.shape[1], x3.shape[2]
    dw = torch.zeros((rows.num_edges, heads), dtype=x3.dtype, device=x3.device)
    if rows.num_edges == 0 or dim == 0:
        return dw
    bh, bd = _tiles(heads, dim)
    _spmm_arg_backward_w_kernel[(rows.num_rows, triton.cdiv(heads, bh))](
        rows.indptr,
        rows.indices,
        grad3,
        x3,
        arg3,
        dw,
        heads,
        dim,
        ACC=_acc(x3.dtype),
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
    bh, bd = _tiles(heads, dim)
    _sddmm_dot_kernel[(rows.num_rows, triton.cdiv(heads, bh))](
        rows.indptr,
        rows.indices,
        x3,
        y3,
        out,
        heads,
        dim,
        ACC=_acc(x3.dtype),
        BH=bh,
        BD=bd,
    )
    return out


def sddmm_binary(rows, x3: torch.Tensor, y3: torch.Tensor, is_mul: bool) -> torch.Tensor:
    """out[k] = x[source] * y[row] (or +), per edge."""
    heads, dim = x3.shape[1], x3.shape[2]
    out = torch.empty((rows.num_edges, heads, dim), dtype=x3.dtype, device=x3.device)
    if out.numel() == 0:
        return out
    bh, bd = _tiles(heads, dim)
    _sddmm_binary_kernel[_grid3(rows.num_rows, heads, dim, bh, bd)](
        rows.indptr, rows.indices, x3, y3, out, heads, dim, IS_MUL=is_mul, BH=bh, BD=bd
    )
    return out


def edge_softmax_forward(rows, s2: torch.Tensor) -> torch.Tensor:
    """Softmax of s2 [E, H] over each row's edges (max-shifted)."""
    out = torch.empty_like(s2)
    heads = s2.shape[1]
    if out.numel() == 0:
        return out
    bh = min(triton.next_power_of_2(heads), 1024)
    _edge_softmax_kernel[(rows.num_rows, triton.cdiv(heads, bh))](
        rows.indptr, s2, out, heads, ACC=_acc(s2.dtype), BH=bh
    )
    return out


def edge_softmax_backward(rows, p2: torch.Tensor, g2: torch.Tensor) -> torch.Tensor:
    """ds = p * (g - sum over the row of p * g)."""
    out = torch.empty_like(p2)
    heads = p2.shape[1]
    if out.numel() == 0:
        return out
    bh = min(triton.next_power_of_2(heads), 1024)
    _edge_softmax_backward_kernel[(rows.num_rows, triton.cdiv(heads, bh))](
        rows.indptr, p2, g2, out, heads, ACC=_acc(p2.dtype), BH=bh
    )
    return out


def spmm_sum_scatter(
    rows, grad3: torch.Tensor, w2: Optional[torch.Tensor], num_src: int
) -> torch.Tensor:
    """Non-deterministic dx = A^T grad with atomic adds over the forward CSC (no transpose)."""
    heads, dim = grad3.shape[1], grad3.shape[2]
    acc_dtype = torch.float64 if grad3.dtype == torch.float64 else torch.float32
    dx = torch.zeros((num_src, heads, dim), dtype=acc_dtype, device=grad3.device)
    if rows.num_edges == 0 or dim == 0:
        return dx.to(grad3.dtype)
    bh, bd = _tiles(heads, dim)
    _spmm_scatter_kernel[_grid3(rows.num_rows, heads, dim, bh, bd)](
        rows.indptr,
        rows.indices,
        grad3,
        w2 if w2 is not None else grad3,
        dx,
        heads,
        dim,
        HAS_W=w2 is not None,
        BH=bh,
        BD=bd,
    )
    return dx.to(grad3.dtype)
