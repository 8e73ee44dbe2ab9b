"""im2win convolution: ``im2win_conv2d`` with the signature of ``torch.nn.functional.conv2d``.

Following "Im2win: An Efficient Convolution Paradigm on GPU" (Lu et al., 2023). The input
``[N, C, H, W]`` (zero-padded on the fly) becomes a *window tensor* ``[N, C, OH, Wp * FH]``: row
``i`` holds the ``FH``-row band that output row ``i`` reads, stored column by column, so
``win[n, c, i, col * FH + r] = x_pad[n, c, i * sh + r * dh, col]``. The receptive field of output
``(i, j)`` in channel ``c`` is then one contiguous slice of ``FW * FH`` values starting at
``j * sw * FH`` (with horizontal dilation: ``FW`` contiguous runs of ``FH``). Filters are reordered
the same way (``w[k, c, r, q]`` -> tap ``q * FH + r``), so every output is a dot product of
contiguous vectors. The window holds ``N*C*OH*Wp*FH`` values against im2col's
``N*C*FH*FW*OH*OW``: about ``1/FW`` of it at stride 1.

Backends (one public function validates and dispatches by device):

* CPU: numba. A register-tiled implicit GEMM over the window: each parallel item owns
  ``(group, block of 32 output channels, a range of output pixels)`` and computes 4 output
  pixels x 4 vectors of output channels in registers, reducing over (channel, tap): each
  pixel's window run is read in order and broadcast against the filter, which the item packs
  into ``[(c, tap), k]`` order one 128-step slice at a time (so no filter-sized copy is made).
  Numba disables LLVM's SLP vectoriser, so the vectors are explicit: a tiny 32-byte vector type
  with load / broadcast / fma intrinsics (below). The kernels are serial (``nogil``) functions
  of an item range, run on a small thread pool (``gnnsys._numba.run_items``) rather than
  ``parallel=True``: a first call compiles in about a third of the time (1.7 s of CPU for the
  forward pass instead of 5 s) and runs as fast, faster on a busy machine.
* CUDA: Triton (``_conv_triton``, imported only when a CUDA tensor arrives): a window kernel,
  then a tiled implicit GEMM over the window layout (``tl.dot``, fp32 with IEEE precision, never
  TF32), in the spirit of the paper's 128x128 block / register-tile kernel.

Autograd (one ``torch.autograd.Function``): the weight gradient is a GEMM over the window
tensor (recomputed from the saved input, so the forward keeps nothing extra); the input
gradient walks the same window map backwards (CPU: each ``(n, c)`` item scatters its taps into
its own input plane; CUDA: a gather kernel per input pixel). Both are deterministic. Double
backward is not supported.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, replace
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.compiler import Compiler
from numba.extending import intrinsic, models, register_model
from torch.autograd.function import once_differentiable

from gnnsys._checks import check_choice, triton_device_error
from gnnsys._numba import run_items

__all__ = ["im2win_conv2d", "im2win", "window_shape", "window_size"]

IntOrPair = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int], str]

_CPU_DTYPES = (torch.float32, torch.float64)
_GPU_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

_BACKEND_OVERRIDE: Optional[str] = None


# =============================================================================== geometry
@dataclass(frozen=True)
class _Geom:
    """Every size of one convolution; built once by ``_geometry`` from validated arguments."""

    n: int
    c: int
    h: int
    w: int
    k: int
    groups: int
    fh: int
    fw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pt: int  # padding top, bottom, left, right ('same' can be asymmetric)
    pb: int
    pl: int
    pr: int
    oh: int
    ow: int

    @property
    def cg(self) -> int:
        return self.c // self.groups

    @property
    def kg(self) -> int:
        return self.k // self.groups

    @property
    def wp(self) -> int:
        return self.w + self.pl + self.pr

    @property
    def taps(self) -> int:
        return self.fh * self.fw

    def window_shape(self) -> Tuple[int, int, int, int]:
        return (self.n, self.c, self.oh, self.wp * self.fh)

    def tap_offsets(self) -> np.ndarray:
        """Offset of tap ``t = q * FH + r`` inside a window row, relative to column ``j * sw``."""
        q, r = np.divmod(np.arange(self.taps, dtype=np.int64), self.fh)
        return q * self.dw * self.fh + r


def _pair(name: str, value: object, minimum: int) -> Tuple[int, int]:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, (int, np.integer)):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


def _padding(
    padding: object, kernel: Tuple[int, int], stride: Tuple[int, int], dilation: Tuple[int, int]
) -> Tuple[int, int, int, int]:
    """(top, bottom, left, right) from an int, a pair, 'valid' or 'same' (as F.conv2d)."""
    if isinstance(padding, str):
        check_choice("padding", padding, ("valid", "same"))
        if padding == "valid":
            return (0, 0, 0, 0)
        if stride != (1, 1):
            raise ValueError(f"padding='same' needs stride 1 (as F.conv2d), got stride={stride}")
        th = dilation[0] * (kernel[0] - 1)
        tw = dilation[1] * (kernel[1] - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = _pair("padding", padding, 0)
    return (ph, ph, pw, pw)


def _geometry(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    stride: object,
    padding: object,
    dilation: object,
    groups: object,
) -> _Geom:
    n, c, h, w = (int(v) for v in input_shape)
    k, cg, fh, fw = (int(v) for v in weight_shape)
    sh, sw = _pair("stride", stride, 1)
    dh, dw = _pair("dilation", dilation, 1)
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"groups must be an int, got {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    if min(k, cg, fh, fw) < 1:
        raise ValueError(
            f"weight must have no zero-sized dimension, got shape {tuple(weight_shape)}"
        )
    if k % groups:
        raise ValueError(f"weight.shape[0] (out channels {k}) must be divisible by groups={groups}")
    if c != cg * groups:
        raise ValueError(
            f"input has {c} channels but weight expects {cg} per group x groups={groups} = "
            f"{cg * groups}"
        )
    pt, pb, pl, pr = _padding(padding, (fh, fw), (sh, sw), (dh, dw))
    oh = (h + pt + pb - dh * (fh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (fw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(
            f"kernel {fh}x{fw} (dilation {(dh, dw)}) is larger than the padded input "
            f"{h + pt + pb}x{w + pl + pr}: the output would be {max(oh, 0)}x{max(ow, 0)}"
        )
    # A stride beyond the padded extent reads one window, as that extent does; clamped so that
    # the kernels' index products stay in int64 (stride=2**62 overflowed).
    sh, sw = min(sh, h + pt + pb), min(sw, w + pl + pr)
    return _Geom(n, c, h, w, k, groups, fh, fw, sh, sw, dh, dw, pt, pb, pl, pr, oh, ow)


def window_shape(
    input_shape: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
) -> Tuple[int, int, int, int]:
    """Shape of the im2win window tensor: ``(N, C, OH, (W + pad_left + pad_right) * FH)``.

    Lets callers (and tests) size the transform before running it; compare with im2col's
    ``N * C * FH * FW * OH * OW``.

    Example:
        >>> window_shape((2, 3, 32, 32), 3, padding=1)
        (2, 3, 32, 102)
    """
    shape = tuple(input_shape)
    if len(shape) != 4:
        raise ValueError(f"input_shape must be (N, C, H, W), got {shape}")
    fh, fw = _pair("kernel_size", kernel_size, 1)
    return _geometry(shape, (1, shape[1], fh, fw), stride, padding, dilation, 1).window_shape()


def window_size(
    input_shape: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
) -> int:
    """Number of elements of the im2win window tensor (``math.prod(window_shape(...))``).

    Example:
        >>> window_size((1, 3, 227, 227), 11, stride=4)  # AlexNet conv1: im2col needs 2.7x more
        412005
    """
    return math.prod(window_shape(input_shape, kernel_size, stride, padding, dilation))


# =============================================================================== validation
def _check_tensor(name: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    return t


def _check_dtype_device(x: torch.Tensor) -> None:
    if x.device.type not in ("cpu", "cuda"):
        raise NotImplementedError(
            f"im2win_conv2d runs on CPU and CUDA tensors, got a tensor on {x.device}"
        )
    if x.dtype.is_complex:
        raise NotImplementedError(f"im2win_conv2d does not support complex dtypes, got {x.dtype}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"input must be a floating-point tensor, got dtype {x.dtype}")
    numba_backend = x.device.type == "cpu" and _BACKEND_OVERRIDE != "triton"
    if numba_backend and x.dtype not in _CPU_DTYPES:
        raise NotImplementedError(
            f"im2win_conv2d on CPU supports float32 and float64, got {x.dtype} "
            "(float16/bfloat16 run on CUDA)"
        )
    if x.dtype not in _GPU_DTYPES:
        raise NotImplementedError(f"im2win_conv2d does not support dtype {x.dtype}")


def _validate(input, weight, bias):
    x = _check_tensor("input", input)
    w = _check_tensor("weight", weight)
    if x.dim() not in (3, 4):
        raise ValueError(
            f"input must be [N, C, H, W] (or unbatched [C, H, W]), got shape {tuple(x.shape)}"
        )
    if w.dim() != 4:
        raise ValueError(f"weight must be [K, C/groups, FH, FW], got shape {tuple(w.shape)}")
    _check_dtype_device(x)
    if w.dtype != x.dtype:
        raise TypeError(f"weight dtype {w.dtype} does not match input dtype {x.dtype}")
    if w.device != x.device:
        raise ValueError(f"weight is on {w.device} but input is on {x.device}")
    if bias is not None:
        b = _check_tensor("bias", bias)
        if b.dim() != 1 or b.shape[0] != w.shape[0]:
            raise ValueError(
                f"bias must be 1-D with {w.shape[0]} entries (out channels), "
                f"got shape {tuple(b.shape)}"
            )
        if b.dtype != x.dtype:
            raise TypeError(f"bias dtype {b.dtype} does not match input dtype {x.dtype}")
        if b.device != x.device:
            raise ValueError(f"bias is on {b.device} but input is on {x.device}")


# =============================================================================== numba vectors
# Numba compiles with LLVM's SLP vectoriser off, and the loop vectoriser cannot keep a GEMM
# register tile in registers, so the CPU kernels use an explicit 32-byte vector (8 float32 or
# 4 float64: one AVX register; LLVM splits it on narrower targets). Accumulators held in
# numba locals of this type live in registers. The intrinsics do no bounds checks: every index
# they get is computed from validated sizes, with buffers padded to whole vectors.
_VBYTES = 32


class _VecType(types.Type):
    def __init__(self, dtype: types.Float) -> None:
        self.dtype = dtype
        self.lanes = _VBYTES // (dtype.bitwidth // 8)
        super().__init__(name=f"Im2winVec({dtype}x{self.lanes})")


@register_model(_VecType)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        elem = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(elem, fe_type.lanes))


def _is_float_array(arr) -> bool:
    return isinstance(arr, types.Array) and arr.layout == "C" and isinstance(arr.dtype, types.Float)


def _elem_ptr(context, builder, arrty, arr, idx):
    ary = context.make_array(arrty)(context, builder, arr)
    return builder.gep(ary.data, [idx])


@intrinsic
def _vlanes(typingctx, arr):
    """Lanes of one vector of ``arr``'s dtype (a compile-time constant)."""
    if not _is_float_array(arr):
        return None
    lanes = _VecType(arr.dtype).lanes

    def codegen(context, builder, sig, args):
        return ir.Constant(ir.IntType(64), lanes)

    return types.int64(arr), codegen


@intrinsic
def _vzero(typingctx, arr):
    """A zero vector of ``arr``'s dtype."""
    if not _is_float_array(arr):
        return None
    vt = _VecType(arr.dtype)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(vt), None)

    return vt(arr), codegen


@intrinsic
def _vload(typingctx, arr, idx):
    """``arr.flat[idx : idx + lanes]`` as a vector (unaligned load)."""
    if not _is_float_array(arr) or not isinstance(idx, types.Integer):
        return None
    vt = _VecType(arr.dtype)

    def codegen(context, builder, sig, args):
        ptr = _elem_ptr(context, builder, sig.args[0], args[0], args[1])
        vty = context.get_value_type(vt)
        return builder.load(builder.bitcast(ptr, vty.as_pointer()), align=arr.dtype.bitwidth // 8)

    return vt(arr, idx), codegen


@intrinsic
def _vstore(typingctx, arr, idx, vec):
    """``arr.flat[idx : idx + lanes] = vec``."""
    if not _is_float_array(arr) or not isinstance(vec, _VecType) or vec.dtype != arr.dtype:
        return None

    def codegen(context, builder, sig, args):
        ptr = _elem_ptr(context, builder, sig.args[0], args[0], args[1])
        vty = context.get_value_type(sig.args[2])
        builder.store(
            args[2], builder.bitcast(ptr, vty.as_pointer()), align=arr.dtype.bitwidth // 8
        )
        return context.get_dummy_value()

    return types.none(arr, idx, vec), codegen


@intrinsic
def _vbcast(typingctx, arr, idx):
    """``arr.flat[idx]`` in every lane."""
    if not _is_float_array(arr) or not isinstance(idx, types.Integer):
        return None
    vt = _VecType(arr.dtype)

    def codegen(context, builder, sig, args):
        ptr = _elem_ptr(context, builder, sig.args[0], args[0], args[1])
        vty = context.get_value_type(vt)
        one = builder.insert_element(
            ir.Constant(vty, ir.Undefined), builder.load(ptr), ir.Constant(ir.IntType(32), 0)
        )
        mask = ir.Constant(ir.VectorType(ir.IntType(32), vt.lanes), [0] * vt.lanes)
        return builder.shuffle_vector(one, ir.Constant(vty, ir.Undefined), mask)

    return vt(arr, idx), codegen


@intrinsic
def _load_at(typingctx, arr, idx):
    """``arr.flat[idx]`` (a plain load: no index wraparound code)."""
    if not _is_float_array(arr) or not isinstance(idx, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        return builder.load(_elem_ptr(context, builder, sig.args[0], args[0], args[1]))

    return arr.dtype(arr, idx), codegen


@intrinsic
def _store_at(typingctx, arr, idx, val):
    """``arr.flat[idx] = val`` (val cast to the array's dtype; no index wraparound code)."""
    if not _is_float_array(arr) or not isinstance(idx, types.Integer):
        return None
    if not isinstance(val, (types.Integer, types.Float)):
        return None

    def codegen(context, builder, sig, args):
        v = context.cast(builder, args[2], sig.args[2], sig.args[0].dtype)
        builder.store(v, _elem_ptr(context, builder, sig.args[0], args[0], args[1]))
        return context.get_dummy_value()

    return types.none(arr, idx, val), codegen


@intrinsic
def _add_at(typingctx, arr, idx, val):
    """``arr.flat[idx] += val`` (a plain load, add and store: no index wraparound code)."""
    if not _is_float_array(arr) or not isinstance(idx, types.Integer) or val != arr.dtype:
        return None

    def codegen(context, builder, sig, args):
        ptr = _elem_ptr(context, builder, sig.args[0], args[0], args[1])
        builder.store(builder.fadd(builder.load(ptr), args[2]), ptr)
        return context.get_dummy_value()

    return types.none(arr, idx, val), codegen


@intrinsic
def _vfma(typingctx, a, b, c):
    """``a * b + c`` per lane, one rounding (llvm.fma): the same bits on every run."""
    if not (isinstance(a, _VecType) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        vty = args[0].type
        suffix = "f32" if sig.args[0].dtype.bitwidth == 32 else "f64"
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vty, [vty, vty, vty]), f"llvm.fma.v{vty.count}{suffix}"
        )
        return builder.call(fn, args)

    return a(a, b, c), codegen


# =============================================================================== CPU kernels
class _NoAliasCompiler(Compiler):
    """numba's compiler with the array arguments marked ``noalias``, as numba marks the body of a
    ``prange`` loop. For the window kernel (its output is a fresh allocation): without it, it
    ran 1.5x slower than its ``parallel=True`` version. The other kernels measured the same
    either way (the forward kernel slower with it), so they go without."""

    def define_pipelines(self):
        self.state.flags.noalias = True
        return super().define_pipelines()


_u64 = np.uint64  # 0 <= i < n as one compare: _u64(i) < _u64(n)
_JT = 4  # register tile: output columns (forward) / taps (backward) ...
_KV = 4  # ... x vectors of output channels (forward, weight grad) or output pixels (input grad)
_RCH = 128  # (channel, tap) steps per filter slice in the forward (16 KiB: stays in L1)
_ITEM_PX = 1024  # most output pixels per forward work item (its partial sums stay in L2)


@njit(nogil=True, cache=True, pipeline_class=_NoAliasCompiler)
def _window_cpu(x, win, sh, dh, pt, pl, fh, item0, item1):
    # x [N*C, H, W] -> win [N*C, OH, WP*FH]; zero where the band leaves the image (padding).
    # Items item0..item1-1 of the N*C*OH rows (each a contiguous band of the window); flat
    # offsets and one unsigned compare per bound (no index wraparound code in the loop).
    h_, w_ = x.shape[1], x.shape[2]
    oh = win.shape[1]
    row_len = win.shape[2]
    wp = row_len // fh
    for p in range(item0, item1):
        nc = p // oh
        i = p - nc * oh
        xo = nc * h_ * w_
        wo = p * row_len  # win[nc, i]
        for col in range(wp):
            src = col - pl
            inside = _u64(src) < _u64(w_)
            for r in range(fh):
                row = i * sh + r * dh - pt
                if inside and _u64(row) < _u64(h_):
                    _store_at(win, wo + col * fh + r, _load_at(x, xo + row * w_ + src))
                else:
                    _store_at(win, wo + col * fh + r, 0)


@njit(nogil=True, cache=True)
def _forward_cpu(win, weight, bias, out, ow, offs, cstep, groups, px_per_item, item0, item1):
    # out[n, g*Kg + k, i, j] = bias + sum_{c, t} win[n, g*Cg + c, i, j*cstep + offs[t]] * w[.., t]
    # win [N, C, OH, L]; weight [K, Cg, FH, FW] as given; out [N*K*OH*OW] flat; offs [T] tap
    # offsets in a window row (tap t = q*FH + r); cstep = sw * FH. An item owns (group, block
    # of 32 output channels, px_per_item output pixels): for each slice of _RCH reduction steps
    # (c, t) it packs that slice of its filter block into [step, k] order (no filter-sized copy
    # is ever made) and sweeps its pixels, 4 pixels x 4 channel vectors at a time. Items
    # item0..item1-1 of the groups * nkb * nchunk.
    n_, c_, oh, row_len = win.shape
    k_, cg, fh, fw = weight.shape
    taps = fh * fw
    kg = k_ // groups
    plane = oh * row_len
    ohw = oh * ow
    npx = n_ * ohw
    lanes = _vlanes(win)
    kb_size = _KV * lanes
    nkb = (kg + kb_size - 1) // kb_size
    nchunk = (npx + px_per_item - 1) // px_per_item
    # scratch, zeroed per item (allocated once: buf alone is 128 KiB, a fresh mmap each time)
    wt = np.empty(_RCH * kb_size, dtype=win.dtype)  # [rho, KB]: one slice of the filter
    xoff = np.empty(_RCH, dtype=np.int64)  # window offset of each (c, t) in the slice
    buf = np.empty(px_per_item * kb_size, dtype=win.dtype)  # [pixel, KB] partial sums
    poff_all = np.empty(px_per_item, dtype=np.int64)
    for p in range(item0, item1):
        chunk = p % nchunk
        rest = p // nchunk
        kb = rest % nkb
        g = rest // nkb
        k0 = kb * kb_size
        kn = min(kb_size, kg - k0)
        wt[:] = 0
        buf[:] = 0
        pb0 = chunk * px_per_item
        pb1 = min(npx, pb0 + px_per_item)
        # Window offset of each pixel's receptive field (channel 0): one division per item
        # pixel here instead of per tile and channel chunk in the loop below.
        poff = poff_all[: pb1 - pb0]
        n = pb0 // ohw
        rem = pb0 - n * ohw
        i = rem // ow
        j = rem - i * ow
        for px in range(pb1 - pb0):
            poff[px] = n * c_ * plane + i * row_len + j * cstep
            j += 1
            if j == ow:
                j = 0
                i += 1
                if i == oh:
                    i = 0
                    n += 1
        nred = cg * taps
        for r0 in range(0, nred, _RCH):
            rn = min(_RCH, nred - r0)
            # Pack this slice of the reduction (channel-major, tap-minor, as the window): the
            # filter block as [rho, k] (lanes past kn stay zero; the filter is read in place,
            # never copied whole) and each step's window offset.
            for e in range(rn):
                c = (r0 + e) // taps
                t = r0 + e - c * taps
                q = t // fh
                xoff[e] = (g * cg + c) * plane + offs[t]
                for kk in range(kn):
                    wt[e * kb_size + kk] = weight[g * kg + k0 + kk, c, t - q * fh, q]
            for u0 in range(pb0, pb1, _JT):
                # The last pixel repeats past pb1 (computed, never stored).
                b0 = poff[u0 - pb0]
                b1 = poff[min(u0 + 1, pb1 - 1) - pb0]
                b2 = poff[min(u0 + 2, pb1 - 1) - pb0]
                b3 = poff[min(u0 + 3, pb1 - 1) - pb0]
                o = (u0 - pb0) * kb_size
                a00 = _vload(buf, o)
                a01 = _vload(buf, o + lanes)
                a02 = _vload(buf, o + 2 * lanes)
                a03 = _vload(buf, o + 3 * lanes)
                a10 = _vload(buf, o + kb_size)
                a11 = _vload(buf, o + kb_size + lanes)
                a12 = _vload(buf, o + kb_size + 2 * lanes)
                a13 = _vload(buf, o + kb_size + 3 * lanes)
                a20 = _vload(buf, o + 2 * kb_size)
                a21 = _vload(buf, o + 2 * kb_size + lanes)
                a22 = _vload(buf, o + 2 * kb_size + 2 * lanes)
                a23 = _vload(buf, o + 2 * kb_size + 3 * lanes)
                a30 = _vload(buf, o + 3 * kb_size)
                a31 = _vload(buf, o + 3 * kb_size + lanes)
                a32 = _vload(buf, o + 3 * kb_size + 2 * lanes)
                a33 = _vload(buf, o + 3 * kb_size + 3 * lanes)
                for e in range(rn):
                    wo = e * kb_size
                    w0 = _vload(wt, wo)
                    w1 = _vload(wt, wo + lanes)
                    w2 = _vload(wt, wo + 2 * lanes)
                    w3 = _vload(wt, wo + 3 * lanes)
                    xo = xoff[e]
                    v = _vbcast(win, xo + b0)
                    a00 = _vfma(v, w0, a00)
                    a01 = _vfma(v, w1, a01)
                    a02 = _vfma(v, w2, a02)
                    a03 = _vfma(v, w3, a03)
                    v = _vbcast(win, xo + b1)
                    a10 = _vfma(v, w0, a10)
                    a11 = _vfma(v, w1, a11)
                    a12 = _vfma(v, w2, a12)
                    a13 = _vfma(v, w3, a13)
                    v = _vbcast(win, xo + b2)
                    a20 = _vfma(v, w0, a20)
                    a21 = _vfma(v, w1, a21)
                    a22 = _vfma(v, w2, a22)
                    a23 = _vfma(v, w3, a23)
                    v = _vbcast(win, xo + b3)
                    a30 = _vfma(v, w0, a30)
                    a31 = _vfma(v, w1, a31)
                    a32 = _vfma(v, w2, a32)
                    a33 = _vfma(v, w3, a33)
                _vstore(buf, o, a00)
                _vstore(buf, o + lanes, a01)
                _vstore(buf, o + 2 * lanes, a02)
                _vstore(buf, o + 3 * lanes, a03)
                _vstore(buf, o + kb_size, a10)
                _vstore(buf, o + kb_size + lanes, a11)
                _vstore(buf, o + kb_size + 2 * lanes, a12)
                _vstore(buf, o + kb_size + 3 * lanes, a13)
                _vstore(buf, o + 2 * kb_size, a20)
                _vstore(buf, o + 2 * kb_size + lanes, a21)
                _vstore(buf, o + 2 * kb_size + 2 * lanes, a22)
                _vstore(buf, o + 2 * kb_size + 3 * lanes, a23)
                _vstore(buf, o + 3 * kb_size, a30)
                _vstore(buf, o + 3 * kb_size + lanes, a31)
                _vstore(buf, o + 3 * kb_size + 2 * lanes, a32)
                _vstore(buf, o + 3 * kb_size + 3 * lanes, a33)
        n0 = pb0 // ohw
        for kk in range(kn):
            k = g * kg + k0 + kk
            bk = bias[k]
            n = n0
            rem = pb0 - n0 * ohw
            for px in range(pb1 - pb0):
                out[(n * k_ + k) * ohw + rem] = buf[px * kb_size + kk] + bk
                rem += 1
                if rem == ohw:
                    rem = 0
                    n += 1


@njit(nogil=True, cache=True)
def _grad_weight_cpu(win, got, gwt, offs, cstep, groups, item0, item1):
    # gwt[g, m, k] = sum_{n,i,j} win[n, g*Cg + c(m), i, j*cstep + offs[t(m)]] * got[n, i, j, g, k]
    # with m = c * T + t. win [N, C, OH, L]; got [N, OH, OW, G, KgP] (grad_output, channels
    # last, zero-padded); gwt [G, Cg*T, KgP]. Items own (group, 4 rows m, 32-channel block):
    # items item0..item1-1 of the G * ceil(Cg*T / 4) * KgP/32.
    n_, c_, oh, row_len = win.shape
    ow, kgp = got.shape[2], got.shape[4]
    m_ = gwt.shape[1]
    taps = offs.shape[0]
    cg = c_ // groups
    lanes = _vlanes(win)
    kb_size = _KV * lanes
    nkb = kgp // kb_size
    nm = (m_ + _JT - 1) // _JT
    plane = oh * row_len
    for p in range(item0, item1):
        kb = p % nkb
        rest = p // nkb
        mt = rest % nm
        g = rest // nm
        k0 = kb * kb_size
        m0 = mt * _JT
        ma = min(m0, m_ - 1)  # tail rows repeat the last one, never stored
        mb = min(m0 + 1, m_ - 1)
        mc = min(m0 + 2, m_ - 1)
        md = min(m0 + 3, m_ - 1)
        oa = (g * cg + ma // taps) * plane + offs[ma % taps]
        ob = (g * cg + mb // taps) * plane + offs[mb % taps]
        oc = (g * cg + mc // taps) * plane + offs[mc % taps]
        od = (g * cg + md // taps) * plane + offs[md % taps]
        a00 = _vzero(win)
        a01 = _vzero(win)
        a02 = _vzero(win)
        a03 = _vzero(win)
        a10 = _vzero(win)
        a11 = _vzero(win)
        a12 = _vzero(win)
        a13 = _vzero(win)
        a20 = _vzero(win)
        a21 = _vzero(win)
        a22 = _vzero(win)
        a23 = _vzero(win)
        a30 = _vzero(win)
        a31 = _vzero(win)
        a32 = _vzero(win)
        a33 = _vzero(win)
        for n in range(n_):
            for i in range(oh):
                rb = n * c_ * plane + i * row_len
                gb = ((n * oh + i) * ow * groups + g) * kgp + k0
                for j in range(ow):
                    go = gb + j * groups * kgp
                    y0 = _vload(got, go)
                    y1 = _vload(got, go + lanes)
                    y2 = _vload(got, go + 2 * lanes)
                    y3 = _vload(got, go + 3 * lanes)
                    xo = rb + j * cstep
                    v = _vbcast(win, xo + oa)
                    a00 = _vfma(v, y0, a00)
                    a01 = _vfma(v, y1, a01)
                    a02 = _vfma(v, y2, a02)
                    a03 = _vfma(v, y3, a03)
                    v = _vbcast(win, xo + ob)
                    a10 = _vfma(v, y0, a10)
                    a11 = _vfma(v, y1, a11)
                    a12 = _vfma(v, y2, a12)
                    a13 = _vfma(v, y3, a13)
                    v = _vbcast(win, xo + oc)
                    a20 = _vfma(v, y0, a20)
                    a21 = _vfma(v, y1, a21)
                    a22 = _vfma(v, y2, a22)
                    a23 = _vfma(v, y3, a23)
                    v = _vbcast(win, xo + od)
                    a30 = _vfma(v, y0, a30)
                    a31 = _vfma(v, y1, a31)
                    a32 = _vfma(v, y2, a32)
                    a33 = _vfma(v, y3, a33)
        base = (g * m_ + m0) * kgp + k0
        _vstore(gwt, base, a00)
        _vstore(gwt, base + lanes, a01)
        _vstore(gwt, base + 2 * lanes, a02)
        _vstore(gwt, base + 3 * lanes, a03)
        if m0 + 1 < m_:
            _vstore(gwt, base + kgp, a10)
            _vstore(gwt, base + kgp + lanes, a11)
            _vstore(gwt, base + kgp + 2 * lanes, a12)
            _vstore(gwt, base + kgp + 3 * lanes, a13)
        if m0 + 2 < m_:
            _vstore(gwt, base + 2 * kgp, a20)
            _vstore(gwt, base + 2 * kgp + lanes, a21)
            _vstore(gwt, base + 2 * kgp + 2 * lanes, a22)
            _vstore(gwt, base + 2 * kgp + 3 * lanes, a23)
        if m0 + 3 < m_:
            _vstore(gwt, base + 3 * kgp, a30)
            _vstore(gwt, base + 3 * kgp + lanes, a31)
            _vstore(gwt, base + 3 * kgp + 2 * lanes, a32)
            _vstore(gwt, base + 3 * kgp + 3 * lanes, a33)


@njit(nogil=True, cache=True)
def _grad_input_cpu(gop, wr, gx, oh, ow, sh, sw, dh, dw, pt, pl, fh, fw, groups, item0, item1):
    # gx[n, c, i*sh + r*dh - pt, j*sw + q*dw - pl] += sum_k gop[n, k, i*OW + j] * wr[k, cl, r, q]
    # (the window map run backwards). gop [N, K, PP]: grad_output with (i, j) flattened and
    # zero-padded to whole tiles; wr [K, Cg*FH*FW]; gx [N, C, H, W] zeroed. Item (n, c) owns the
    # plane gx[n, c] and accumulates into it in a fixed order: deterministic. Items
    # item0..item1-1 of the N*C.
    n_, k_, pp_len = gop.shape
    c_, h_, w_ = gx.shape[1], gx.shape[2], gx.shape[3]
    taps = fh * fw
    cg = c_ // groups
    kg = k_ // groups
    lanes = _vlanes(gop)
    pb_size = _KV * lanes
    npix = oh * ow  # pixels past it (up to pp_len) are zero padding
    npt = (npix + pb_size - 1) // pb_size
    nmt = (taps + _JT - 1) // _JT
    for item in range(item0, item1):
        n = item // c_
        cc = item - n * c_
        g = cc // cg
        cl = cc - g * cg
        plane = item * h_ * w_  # gx[n, cc] in the flat gx
        buf = np.empty(_JT * pb_size, dtype=gop.dtype)
        row0 = np.empty(pb_size, dtype=np.int64)  # i*sh - pt and j*sw - pl of the tile's pixels
        col0 = np.empty(pb_size, dtype=np.int64)
        for ptile in range(npt):
            p0 = ptile * pb_size
            pn = min(pb_size, npix - p0)
            i = p0 // ow
            j = p0 - i * ow
            for pp in range(pn):
                row0[pp] = i * sh - pt
                col0[pp] = j * sw - pl
                j += 1
                if j == ow:
                    j = 0
                    i += 1
            for mt in range(nmt):
                m0 = mt * _JT
                ta = cl * taps + min(m0, taps - 1)
                tb = cl * taps + min(m0 + 1, taps - 1)
                tc = cl * taps + min(m0 + 2, taps - 1)
                td = cl * taps + min(m0 + 3, taps - 1)
                a00 = _vzero(gop)
                a01 = _vzero(gop)
                a02 = _vzero(gop)
                a03 = _vzero(gop)
                a10 = _vzero(gop)
                a11 = _vzero(gop)
                a12 = _vzero(gop)
                a13 = _vzero(gop)
                a20 = _vzero(gop)
                a21 = _vzero(gop)
                a22 = _vzero(gop)
                a23 = _vzero(gop)
                a30 = _vzero(gop)
                a31 = _vzero(gop)
                a32 = _vzero(gop)
                a33 = _vzero(gop)
                for k in range(g * kg, (g + 1) * kg):
                    go = (n * k_ + k) * pp_len + p0
                    y0 = _vload(gop, go)
                    y1 = _vload(gop, go + lanes)
                    y2 = _vload(gop, go + 2 * lanes)
                    y3 = _vload(gop, go + 3 * lanes)
                    wb = k * cg * taps
                    v = _vbcast(wr, wb + ta)
                    a00 = _vfma(v, y0, a00)
                    a01 = _vfma(v, y1, a01)
                    a02 = _vfma(v, y2, a02)
                    a03 = _vfma(v, y3, a03)
                    v = _vbcast(wr, wb + tb)
                    a10 = _vfma(v, y0, a10)
                    a11 = _vfma(v, y1, a11)
                    a12 = _vfma(v, y2, a12)
                    a13 = _vfma(v, y3, a13)
                    v = _vbcast(wr, wb + tc)
                    a20 = _vfma(v, y0, a20)
                    a21 = _vfma(v, y1, a21)
                    a22 = _vfma(v, y2, a22)
                    a23 = _vfma(v, y3, a23)
                    v = _vbcast(wr, wb + td)
                    a30 = _vfma(v, y0, a30)
                    a31 = _vfma(v, y1, a31)
                    a32 = _vfma(v, y2, a32)
                    a33 = _vfma(v, y3, a33)
                _vstore(buf, 0, a00)
                _vstore(buf, lanes, a01)
                _vstore(buf, 2 * lanes, a02)
                _vstore(buf, 3 * lanes, a03)
                _vstore(buf, pb_size, a10)
                _vstore(buf, pb_size + lanes, a11)
                _vstore(buf, pb_size + 2 * lanes, a12)
                _vstore(buf, pb_size + 3 * lanes, a13)
                _vstore(buf, 2 * pb_size, a20)
                _vstore(buf, 2 * pb_size + lanes, a21)
                _vstore(buf, 2 * pb_size + 2 * lanes, a22)
                _vstore(buf, 2 * pb_size + 3 * lanes, a23)
                _vstore(buf, 3 * pb_size, a30)
                _vstore(buf, 3 * pb_size + lanes, a31)
                _vstore(buf, 3 * pb_size + 2 * lanes, a32)
                _vstore(buf, 3 * pb_size + 3 * lanes, a33)
                for u in range(min(_JT, taps - m0)):
                    t = m0 + u
                    r = t // fw
                    q = t - r * fw
                    for pp in range(pn):
                        row = row0[pp] + r * dh
                        col = col0[pp] + q * dw
                        # 0 <= row < h_ and 0 <= col < w_, one unsigned compare each
                        if _u64(row) < _u64(h_) and _u64(col) < _u64(w_):
                            _add_at(gx, plane + row * w_ + col, buf[u * pb_size + pp])


# =============================================================================== CPU backend
def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _pad_to(n: int, m: int) -> int:
    return -(-n // m) * m


def _block(dtype: torch.dtype) -> int:
    """Output channels (or pixels) per register tile on CPU: ``_KV`` 32-byte vectors."""
    return _KV * (_VBYTES * 8 // torch.finfo(dtype).bits)


# Below this much work a kernel runs on the calling thread alone: handing pieces to other
# threads costs more than it saves (and much more on an oversubscribed machine). Results are the
# same bits whichever thread runs a piece.
_PARALLEL_MIN_WORK = 1 << 22


def _threads(work: int) -> int:
    """Threads for a kernel call of ``work`` (numba's thread setting, ``numba.set_num_threads``)."""
    return numba.get_num_threads() if work >= _PARALLEL_MIN_WORK else 1


def _macs(g: _Geom) -> int:
    return g.n * g.k * g.oh * g.ow * g.cg * g.taps


# The CPU backend builds the window of at most this many bytes at once: a bigger batch runs in
# slices of whole images (the window is ~FH times the input, so an unsliced batch peaked above
# F.conv2d: 5.6 vs 3.4 GB for a 1 GiB input, 3x3 filter). Output pixels and input gradients are
# per image, so slicing changes no bit of them; the weight gradient sums the slices' parts.
WINDOW_BUDGET_BYTES = 64 << 20


def _image_slices(x: torch.Tensor, g: _Geom) -> List[Tuple[int, int]]:
    """[lo, hi) image ranges whose windows fit ``WINDOW_BUDGET_BYTES`` (at least one image)."""
    per_image = g.c * g.oh * g.wp * g.fh * x.element_size()
    step = max(1, WINDOW_BUDGET_BYTES // max(1, per_image))
    return [(lo, min(g.n, lo + step)) for lo in range(0, g.n, step)]


def _sliced(x: torch.Tensor, g: _Geom) -> Iterator[Tuple[int, int, torch.Tensor, _Geom]]:
    """Per ``_image_slices`` range: (lo, hi, those images as one contiguous tensor (an expanded
    input is copied a slice at a time, never whole), their geometry)."""
    for lo, hi in _image_slices(x, g):
        yield lo, hi, x[lo:hi].contiguous(), replace(g, n=hi - lo)


class _NumbaBackend:
    @staticmethod
    def window(x: torch.Tensor, g: _Geom) -> torch.Tensor:
        win = torch.empty(g.window_shape(), dtype=x.dtype)
        if win.numel():
            x3 = _np(x.contiguous()).reshape(g.n * g.c, g.h, g.w)
            w3 = _np(win).reshape(g.n * g.c, g.oh, g.wp * g.fh)
            args = (x3, w3, g.sh, g.dh, g.pt, g.pl, g.fh)
            run_items(_window_cpu, g.n * g.c * g.oh, *args, threads=_threads(win.numel()))
        return win

    @staticmethod
    def forward(x, weight, bias, g: _Geom) -> torch.Tensor:
        b = bias.detach().contiguous() if bias is not None else torch.zeros(g.k, dtype=x.dtype)
        out = torch.empty(g.n, g.k, g.oh, g.ow, dtype=x.dtype)
        for lo, hi, xi, gi in _sliced(x, g):
            _NumbaBackend._forward_into(xi, weight, b, gi, out[lo:hi])
        return out

    @staticmethod
    def _forward_into(x, weight, b, g: _Geom, out: torch.Tensor) -> None:
        win = _NumbaBackend.window(x, g)
        # Work split: enough items for every thread (several each, for balance).
        npx = g.n * g.oh * g.ow
        blocks = g.groups * -(-g.kg // _block(x.dtype))
        chunks = max(-(-4 * numba.get_num_threads() // blocks), -(-npx // _ITEM_PX))
        px_per_item = _pad_to(-(-npx // min(chunks, -(-npx // _JT))), _JT)
        items = blocks * -(-npx // px_per_item)
        args = (_np(win), _np(weight), _np(b), _np(out).reshape(-1), g.ow, g.tap_offsets())
        args += (g.sw * g.fh, g.groups, px_per_item)
        run_items(_forward_cpu, items, *args, threads=_threads(_macs(g)))

    @staticmethod
    def grad_weight(x, grad, g: _Geom) -> torch.Tensor:
        total = None
        for lo, hi, xi, gi in _sliced(x, g):
            part = _NumbaBackend._grad_weight_of(xi, grad[lo:hi], gi)
            total = part if total is None else total.add_(part)
        return total

    @staticmethod
    def _grad_weight_of(x, grad, g: _Geom) -> torch.Tensor:
        win = _NumbaBackend.window(x, g)
        kgp = _pad_to(g.kg, _block(x.dtype))
        got = torch.zeros(g.n, g.oh, g.ow, g.groups, kgp, dtype=x.dtype)
        got[..., : g.kg] = grad.reshape(g.n, g.groups, g.kg, g.oh, g.ow).permute(0, 3, 4, 1, 2)
        gwt = torch.empty(g.groups, g.cg * g.taps, kgp, dtype=x.dtype)
        items = g.groups * -(-(g.cg * g.taps) // _JT) * (kgp // _block(x.dtype))
        args = (_np(win), _np(got), _np(gwt), g.tap_offsets(), g.sw * g.fh, g.groups)
        run_items(_grad_weight_cpu, items, *args, threads=_threads(_macs(g)))
        return (
            gwt[..., : g.kg]
            .reshape(g.groups, g.cg, g.fw, g.fh, g.kg)
            .permute(0, 4, 1, 3, 2)
            .reshape(g.k, g.cg, g.fh, g.fw)
            .contiguous()
        )

    @staticmethod
    def grad_input(grad, weight, g: _Geom) -> torch.Tensor:
        npix = g.oh * g.ow
        gop = torch.zeros(g.n, g.k, _pad_to(npix, _block(grad.dtype)), dtype=grad.dtype)
        gop[..., :npix] = grad.reshape(g.n, g.k, npix)
        wr = weight.detach().contiguous().reshape(g.k, g.cg * g.taps)
        gx = torch.zeros(g.n, g.c, g.h, g.w, dtype=grad.dtype)
        args = (_np(gop), _np(wr), _np(gx), g.oh, g.ow, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
        args += (g.fh, g.fw, g.groups)
        run_items(_grad_input_cpu, g.n * g.c, *args, threads=_threads(_macs(g)))
        return gx


# =============================================================================== dispatch
@contextlib.contextmanager
def _force_backend(name: Optional[str]) -> Iterator[None]:
    # Tests: run the Triton kernels on CPU tensors (TRITON_INTERPRET=1) through the public API.
    global _BACKEND_OVERRIDE
    check_choice("backend", name, (None, "numba", "triton"))
    old, _BACKEND_OVERRIDE = _BACKEND_OVERRIDE, name
    try:
        yield
    finally:
        _BACKEND_OVERRIDE = old


def _backend(device: torch.device):
    name = _BACKEND_OVERRIDE or ("numba" if device.type == "cpu" else "triton")
    if name == "numba":
        if device.type != "cpu":
            raise ValueError(f"the numba backend runs on CPU tensors, got {device}")
        return _NumbaBackend
    try:
        from gnnsys.ops import _conv_triton
    except ImportError as exc:
        raise ImportError(
            "im2win_conv2d on CUDA tensors needs triton: pip install 'gnnsys[gpu]'"
        ) from exc
    if device.type != "cuda" and not _conv_triton._INTERPRET:
        raise RuntimeError(triton_device_error("im2win_conv2d's Triton backend", device))
    return _conv_triton


# =============================================================================== autograd
class _Im2winConv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, geom: _Geom):
        be = _backend(x.device)
        if be is not _NumbaBackend:  # the CPU backend copies its image slices itself
            x = x.contiguous()
        ctx.geom, ctx.be, ctx.has_bias = geom, be, bias is not None
        ctx.save_for_backward(x, weight)
        return be.forward(x, weight, bias, geom)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        g, be = ctx.geom, ctx.be
        grad = grad.contiguous()
        gx = be.grad_input(grad, weight, g) if ctx.needs_input_grad[0] else None
        gw = be.grad_weight(x, grad, g) if ctx.needs_input_grad[1] else None
        gb = grad.sum((0, 2, 3)) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb, None


# =============================================================================== public API
def im2win_conv2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> torch.Tensor:
    """2-D convolution (cross-correlation, as ``F.conv2d``) computed through the im2win layout.

    Same arguments and result as ``torch.nn.functional.conv2d``: ``input`` ``[N, C, H, W]`` (or
    ``[C, H, W]``), ``weight`` ``[K, C/groups, FH, FW]``, optional ``bias`` ``[K]``; ``stride``,
    ``padding`` (int, pair, ``'valid'`` or ``'same'``), ``dilation`` and ``groups`` as there.
    Float32/float64 on CPU (numba) and CUDA (Triton), plus float16/bfloat16 on CUDA. It
    differentiates in ``input``, ``weight`` and ``bias``. Why: the window tensor costs about
    ``1/FW`` of im2col's buffer while keeping every dot product contiguous.

    Example:
        >>> x, w = torch.randn(2, 3, 32, 32), torch.randn(8, 3, 3, 3)
        >>> im2win_conv2d(x, w, padding=1).shape
        torch.Size([2, 8, 32, 32])
    """
    _validate(input, weight, bias)
    unbatched = input.dim() == 3
    x = input.unsqueeze(0) if unbatched else input
    geom = _geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    if geom.n == 0:
        # An empty batch: an empty result, still attached to the graph of input, weight and
        # bias (each gets a zero gradient, as with F.conv2d, not None).
        out = x.new_zeros((0, geom.k, geom.oh, geom.ow)) + 0 * weight.sum() + 0 * x.sum()
        if bias is not None:
            out = out + 0 * bias.sum()
    else:
        b = bias.contiguous() if bias is not None else None
        out = _Im2winConv2d.apply(x, weight.contiguous(), b, geom)
    return out.squeeze(0) if unbatched else out


def im2win(
    input: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
) -> torch.Tensor:
    """The im2win window tensor of ``input`` ``[N, C, H, W]``: ``[N, C, OH, (W + pads) * FH]``.

    ``out[n, c, i, col * FH + r] = x_padded[n, c, i * stride_h + r * dilation_h, col]``: row ``i``
    is the band of ``FH`` input rows that output row ``i`` reads, stored column by column, so
    each receptive field is contiguous. Built on the input's device (numba on CPU, Triton on
    CUDA); not differentiable (``im2win_conv2d`` is). Useful to inspect or size the layout.

    Example:
        >>> im2win(torch.arange(16.0).view(1, 1, 4, 4), 2)[0, 0, 0]
        tensor([0., 4., 1., 5., 2., 6., 3., 7.])
    """
    x = _check_tensor("input", input)
    if x.dim() != 4:
        raise ValueError(f"input must be [N, C, H, W], got shape {tuple(x.shape)}")
    _check_dtype_device(x)
    fh, fw = _pair("kernel_size", kernel_size, 1)
    geom = _geometry(x.shape, (1, x.shape[1], fh, fw), stride, padding, dilation, 1)
    with torch.no_grad():
        return _backend(x.device).window(x.contiguous(), geom)
