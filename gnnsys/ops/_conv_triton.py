"""Triton kernels for ``gnnsys.ops.conv.im2win_conv2d`` (its CUDA backend).

Imported only when a CUDA tensor reaches the op (or a test forces this backend), never at
``import gnnsys``: triton is the optional ``gpu`` extra. Under ``TRITON_INTERPRET=1`` the same
kernels run on CPU tensors, which is how CI tests them.

* ``_window_kernel`` builds the window tensor ``[N, C, OH, Wp * FH]`` on the device (padding
  written as zeros, no padded copy of the input).
* ``_forward_kernel`` is the implicit GEMM of the paper over that layout: rows are output
  pixels ``(n, i, j)``, columns output channels of one group, and the reduction runs over
  ``(c, q, r)``, the window order, so for each channel a row reads ``FW`` runs of ``FH``
  contiguous values (one run of ``FW * FH`` without dilation). Tiles are ``BM x BN`` with a
  ``BK`` slice of the reduction per step; ``num_stages`` software pipelining plays the role of
  the paper's double buffering. fp32 uses ``tl.dot`` with IEEE precision (never TF32); fp16 and
  bf16 accumulate in fp32; fp64 uses a broadcast multiply-sum (no fp64 ``tl.dot`` assumed).
* ``_grad_weight_kernel`` is the GEMM ``dW[(c,q,r), k] = sum_pixels win * dY`` over the window.
* ``_grad_input_kernel`` gathers, for each input pixel, the output pixels whose windows hold it
  (the window map inverted), so no atomics: every kernel here is deterministic.
"""

from __future__ import annotations

import inspect
import os
from typing import Optional

import torch

try:
    import triton
    import triton.language as tl
except ImportError as exc:  # pragma: no cover - exercised only without the gpu extra
    raise ImportError(
        "im2win_conv2d on CUDA tensors needs triton: pip install 'gnnsys[gpu]'"
    ) from exc

from gnnsys.ops.conv import _Geom

# tl.dot's precision argument: ``input_precision`` from triton 3.0, ``allow_tf32`` before.
try:
    _HAS_INPUT_PRECISION = "input_precision" in inspect.signature(tl.dot).parameters
except (TypeError, ValueError):  # pragma: no cover - a wrapped builtin without a signature
    _HAS_INPUT_PRECISION = False

_MODE_F32_IEEE = 0  # tl.dot(..., input_precision="ieee")
_MODE_F32_NO_TF32 = 1  # tl.dot(..., allow_tf32=False) on triton < 3
_MODE_HALF = 2  # fp16 / bf16 inputs, fp32 accumulation
_MODE_F64 = 3  # broadcast multiply + sum in fp64
_MODE_HALF_UPCAST = 4  # fp16 / bf16 upcast to fp32 first: the interpreter's bf16 tl.dot is wrong

_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


def _mode(dtype: torch.dtype) -> int:
    if dtype == torch.float64:
        return _MODE_F64
    if dtype in (torch.float16, torch.bfloat16):
        return _MODE_HALF_UPCAST if _INTERPRET else _MODE_HALF
    return _MODE_F32_IEEE if _HAS_INPUT_PRECISION else _MODE_F32_NO_TF32


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _pow2(n: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, triton.next_power_of_2(max(int(n), 1))))


@triton.jit
def _mma(acc, a, b, MODE: tl.constexpr):
    if MODE == 0:
        acc += tl.dot(a, b, input_precision="ieee")
    elif MODE == 1:
        acc += tl.dot(a, b, allow_tf32=False)
    elif MODE == 2:
        acc += tl.dot(a, b)
    elif MODE == 4:
        acc += tl.dot(a.to(tl.float32), b.to(tl.float32))  # interpreter only: numpy fp32
    else:
        acc += tl.sum(a.to(tl.float64)[:, :, None] * b.to(tl.float64)[None, :, :], axis=1)
    return acc


@triton.jit
def _window_kernel(x, win, H, W, OH, WP, FH, SH, DH, PT, PL, BW: tl.constexpr, BR: tl.constexpr):
    # One program: window row (n*C + c, i), BW padded columns x all FH band rows.
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BW + tl.arange(0, BW)
    rs = tl.arange(0, BR)
    nc = row // OH
    i = row - nc * OH
    src_r = i * SH + rs * DH - PT  # [BR]
    src_c = cols - PL  # [BW]
    keep = (cols < WP)[:, None] & (rs < FH)[None, :]
    inside = keep & ((src_r >= 0) & (src_r < H))[None, :] & ((src_c >= 0) & (src_c < W))[:, None]
    v = tl.load(x + nc * H * W + src_r[None, :] * W + src_c[:, None], mask=inside, other=0.0)
    tl.store(win + row * WP * FH + cols[:, None] * FH + rs[None, :], v, mask=keep)


@triton.jit
def _forward_kernel(
    win,
    wt,
    bias,
    out,
    M,
    C,
    OH,
    OW,
    ROW,
    PLANE,
    K,
    KG,
    CG,
    R,
    CSTEP,
    DWF,
    FH,
    TAPS,
    HAS_BIAS: tl.constexpr,
    MODE: tl.constexpr,
    ACC: tl.constexpr,
    BM: tl.constexpr,
    BN: tl.constexpr,
    BK: tl.constexpr,
):
    # out[n, g*KG + k, i, j] = sum_red win[n, g*CG + c, i, j*CSTEP + q*DWF + r] * wt[g, red, k]
    # with red = c*TAPS + q*FH + r.
    g = tl.program_id(2)
    m = (tl.program_id(0) * BM + tl.arange(0, BM)).to(tl.int64)
    mm = m < M
    j = m % OW
    t = m // OW
    i = t % OH
    n = t // OH
    arow = (n * C + g * CG) * PLANE + i * ROW + j * CSTEP  # [BM] start of each receptive field
    kk = tl.program_id(1) * BN + tl.arange(0, BN)
    mk = kk < KG
    acc = tl.zeros((BM, BN), dtype=ACC)
    for r0 in range(0, R, BK):
        red = r0 + tl.arange(0, BK)
        mr = red < R
        c = red // TAPS
        tp = red - c * TAPS
        q = tp // FH
        aoff = c.to(tl.int64) * PLANE + q * DWF + (tp - q * FH)
        a = tl.load(win + arow[:, None] + aoff[None, :], mask=mm[:, None] & mr[None, :], other=0.0)
        b = tl.load(
            wt + (g * R + red[:, None]).to(tl.int64) * KG + kk[None, :],
            mask=mr[:, None] & mk[None, :],
            other=0.0,
        )
        acc = _mma(acc, a, b, MODE)
    if HAS_BIAS:
        acc += tl.load(bias + g * KG + kk, mask=mk, other=0.0).to(ACC)[None, :]
    o = ((n[:, None] * K + g * KG + kk[None, :]) * OH + i[:, None]) * OW + j[:, None]
    tl.store(out + o, acc.to(out.dtype.element_ty), mask=mm[:, None] & mk[None, :])


@triton.jit
def _grad_weight_kernel(
    win,
    go,
    gw,
    M,
    C,
    OH,
    OW,
    ROW,
    PLANE,
    K,
    KG,
    CG,
    R,
    CSTEP,
    DWF,
    FH,
    TAPS,
    MODE: tl.constexpr,
    ACC: tl.constexpr,
    BR: tl.constexpr,
    BN: tl.constexpr,
    BM: tl.constexpr,
):
    # gw[g, red, k] = sum_m win[(n, g*CG + c, i), j*CSTEP + q*DWF + r] * go[n, g*KG + k, i, j]
    g = tl.program_id(2)
    red = tl.program_id(0) * BR + tl.arange(0, BR)
    mr = red < R
    c = red // TAPS
    tp = red - c * TAPS
    q = tp // FH
    aoff = c.to(tl.int64) * PLANE + q * DWF + (tp - q * FH)  # [BR]
    kk = tl.program_id(1) * BN + tl.arange(0, BN)
    mk = kk < KG
    acc = tl.zeros((BR, BN), dtype=ACC)
    for m0 in range(0, M, BM):
        m = (m0 + tl.arange(0, BM)).to(tl.int64)
        mm = m < M
        j = m % OW
        t = m // OW
        i = t % OH
        n = t // OH
        arow = (n * C + g * CG) * PLANE + i * ROW + j * CSTEP
        a = tl.load(win + aoff[:, None] + arow[None, :], mask=mr[:, None] & mm[None, :], other=0.0)
        b = tl.load(
            go + ((n[:, None] * K + g * KG + kk[None, :]) * OH + i[:, None]) * OW + j[:, None],
            mask=mm[:, None] & mk[None, :],
            other=0.0,
        )
        acc = _mma(acc, a, b, MODE)
    o = (g * R + red[:, None]).to(tl.int64) * KG + kk[None, :]
    tl.store(gw + o, acc.to(gw.dtype.element_ty), mask=mr[:, None] & mk[None, :])


@triton.jit
def _grad_input_kernel(
    go,
    w,
    gx,
    MX,
    H,
    W,
    K,
    KG,
    CG,
    C,
    OH,
    OW,
    SH,
    SW,
    DH,
    DW,
    PT,
    PL,
    FH,
    FW,
    MODE: tl.constexpr,
    ACC: tl.constexpr,
    BM: tl.constexpr,
    BN: tl.constexpr,
    BK: tl.constexpr,
):
    # gx[n, g*CG + c, h, x] = sum over taps (r, q) whose window holds (h, x), and k in the group,
    # of go[n, g*KG + k, i, j] * w[g*KG + k, c, r, q], where i*SH + r*DH = h + PT and
    # j*SW + q*DW = x + PL.
    g = tl.program_id(2)
    m = (tl.program_id(0) * BM + tl.arange(0, BM)).to(tl.int64)
    mm = m < MX
    xw = m % W
    t = m // W
    h = t % H
    n = t // H
    cc = tl.program_id(1) * BN + tl.arange(0, BN)
    mc = cc < CG
    acc = tl.zeros((BM, BN), dtype=ACC)
    for tap in range(0, FH * FW):
        r = tap // FW
        q = tap - r * FW
        y = h + PT - r * DH
        xq = xw + PL - q * DW
        ok = mm & (y >= 0) & (xq >= 0)
        y = tl.where(ok, y, 0)
        xq = tl.where(ok, xq, 0)
        i = y // SH
        j = xq // SW
        ok = ok & (i * SH == y) & (j * SW == xq) & (i < OH) & (j < OW)
        gbase = ((n * K + g * KG) * OH + i) * OW + j  # [BM]
        for k0 in range(0, KG, BK):
            kk = k0 + tl.arange(0, BK)
            mk = kk < KG
            a = tl.load(
                go + gbase[:, None] + kk[None, :].to(tl.int64) * OH * OW,
                mask=ok[:, None] & mk[None, :],
                other=0.0,
            )
            b = tl.load(
                w + (((g * KG + kk[:, None]).to(tl.int64) * CG + cc[None, :]) * FH + r) * FW + q,
                mask=mk[:, None] & mc[None, :],
                other=0.0,
            )
            acc = _mma(acc, a, b, MODE)
    o = ((n[:, None] * C + g * CG + cc[None, :]) * H + h[:, None]) * W + xw[:, None]
    tl.store(gx + o, acc.to(gx.dtype.element_ty), mask=mm[:, None] & mc[None, :])


def _tiles(dtype: torch.dtype, n_cols: int):
    """(BM, BN, BK, num_warps): the paper's 128-wide tiles for dot types, small ones for fp64."""
    if dtype == torch.float64:
        return 32, _pow2(n_cols, 16, 32), 8, 4
    bn = _pow2(n_cols, 16, 128)
    return 128, bn, 32, (8 if bn >= 128 else 4)


def window(x: torch.Tensor, g: _Geom) -> torch.Tensor:
    """The window tensor ``[N, C, OH, Wp * FH]`` of ``x`` (contiguous), built on x's device."""
    win = torch.empty(g.window_shape(), dtype=x.dtype, device=x.device)
    if win.numel():
        bw = _pow2(g.wp, 16, 128)
        grid = (g.n * g.c * g.oh, triton.cdiv(g.wp, bw))
        _window_kernel[grid](
            x,
            win,
            g.h,
            g.w,
            g.oh,
            g.wp,
            g.fh,
            g.sh,
            g.dh,
            g.pt,
            g.pl,
            BW=bw,
            BR=_pow2(g.fh, 1, 1 << 20),
        )
    return win


def _geom_args(g: _Geom):
    row = g.wp * g.fh
    return (
        g.n * g.oh * g.ow,
        g.c,
        g.oh,
        g.ow,
        row,
        g.oh * row,
        g.k,
        g.kg,
        g.cg,
        g.cg * g.taps,
        g.sw * g.fh,
        g.dw * g.fh,
        g.fh,
        g.taps,
    )


def forward(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], g: _Geom
) -> torch.Tensor:
    win = window(x, g)
    # wt[g, c*TAPS + q*FH + r, k] = weight[g*KG + k, c, r, q]: the filter in window order.
    wt = (
        weight.reshape(g.groups, g.kg, g.cg, g.fh, g.fw)
        .permute(0, 2, 4, 3, 1)
        .reshape(g.groups, g.cg * g.taps, g.kg)
        .contiguous()
    )
    out = torch.empty(g.n, g.k, g.oh, g.ow, dtype=x.dtype, device=x.device)
    bm, bn, bk, warps = _tiles(x.dtype, g.kg)
    grid = (triton.cdiv(g.n * g.oh * g.ow, bm), triton.cdiv(g.kg, bn), g.groups)
    _forward_kernel[grid](
        win,
        wt,
        bias if bias is not None else out,
        out,
        *_geom_args(g),
        HAS_BIAS=bias is not None,
        MODE=_mode(x.dtype),
        ACC=tl.float64 if x.dtype == torch.float64 else tl.float32,
        BM=bm,
        BN=bn,
        BK=bk,
        num_warps=warps,
        num_stages=3,
    )
    return out


def grad_weight(x: torch.Tensor, grad: torch.Tensor, g: _Geom) -> torch.Tensor:
    win = window(x, g)
    r = g.cg * g.taps
    gw = torch.empty(g.groups, r, g.kg, dtype=_acc_dtype(x.dtype), device=x.device)
    if x.dtype == torch.float64:
        br, bn, bm, warps = 32, _pow2(g.kg, 16, 32), 8, 4
    else:
        br, bn, bm, warps = 64, _pow2(g.kg, 16, 64), 32, 4
    grid = (triton.cdiv(r, br), triton.cdiv(g.kg, bn), g.groups)
    _grad_weight_kernel[grid](
        win,
        grad,
        gw,
        *_geom_args(g),
        MODE=_mode(x.dtype),
        ACC=tl.float64 if x.dtype == torch.float64 else tl.float32,
        BR=br,
        BN=bn,
        BM=bm,
        num_warps=warps,
        num_stages=3,
    )
    return (
        gw.reshape(g.groups, g.cg, g.fw, g.fh, g.kg)
        .permute(0, 4, 1, 3, 2)
        .reshape(g.k, g.cg, g.fh, g.fw)
        .to(x.dtype)
        .contiguous()
    )


def grad_input(grad: torch.Tensor, weight: torch.Tensor, g: _Geom) -> torch.Tensor:
    gx = torch.empty(g.n, g.c, g.h, g.w, dtype=grad.dtype, device=grad.device)
    bm, bn, bk, warps = _tiles(grad.dtype, g.cg)
    grid = (triton.cdiv(g.n * g.h * g.w, bm), triton.cdiv(g.cg, bn), g.groups)
    _grad_input_kernel[grid](
        grad,
        weight.contiguous(),
        gx,
        g.n * g.h * g.w,
        g.h,
        g.w,
        g.k,
        g.kg,
        g.cg,
        g.c,
        g.oh,
        g.ow,
        g.sh,
        g.sw,
        g.dh,
        g.dw,
        g.pt,
        g.pl,
        g.fh,
        g.fw,
        MODE=_mode(grad.dtype),
        ACC=tl.float64 if grad.dtype == torch.float64 else tl.float32,
        BM=bm,
        BN=bn,
        BK=bk,
        num_warps=warps,
        num_stages=3,
    )
    return gx
