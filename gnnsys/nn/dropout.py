"""Fused ReLU + dropout for the deep models: one pass forward, one pass backward, no mask tensor.

Every graph layer of a deep GNN ends in ReLU and dropout over ``[N, d]``. On the CPU torch's
dropout draws a float mask with ``bernoulli_`` (one Mersenne-Twister number per element, on
one thread) and then multiplies twice; on ``mini`` (131k x 64) that is ~0.25 s per layer, more
than the layer's sparse aggregation. Here the keep decision of element ``i`` is a hash of
(seed, i) (splitmix64), computed in a numba kernel that also applies the ReLU and the
``1 / (1 - p)`` scale; backward recomputes it. So the result depends only on the seed and the
shape, never on the thread count, and no ``[N, d]`` mask is stored. The seed is drawn from
torch's default generator, so ``torch.manual_seed`` makes runs repeatable as with
``F.dropout``. GPU tensors (and half precisions) use torch's own ops.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit

from gnnsys._hash import mix64

_BITS = 24  # keep iff the top 24 bits of the hash >= round(p * 2^24)
_PER_CHUNK = 1 << 18  # elements per task handed to a thread
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(nogil=True, cache=True)
def _gated(lo, hi, values, gate, out, seed, threshold, scale, relu):
    """out[i] = values[i] * scale where element i is kept (and, with ``relu``, gate[i] > 0
    or NaN), else 0; i in [lo, hi). Forward: values = gate = x. Backward: values = the incoming
    gradient, gate = the forward output (> 0 exactly where the forward kept a positive input).
    A NaN passes the ReLU as in torch (``F.relu(nan)`` is nan): a NaN input must reach the
    loss, not be silently zeroed."""
    _gated_run(
        values[lo:hi],
        gate[lo:hi],
        out[lo:hi],
        seed + np.uint64(lo) * _GOLDEN,
        threshold,
        scale,
        relu,
    )


@njit(nogil=True, cache=True)
def _gated_run(values, gate, out, seed, threshold, scale, relu):
    # Loops over whole (sliced) arrays from 0 so that LLVM vectorises the hash.
    sc = values.dtype.type(scale)
    zero = values.dtype.type(0)
    if relu:
        for i in range(values.shape[0]):
            keep = _hash(seed, i) >= threshold and not gate[i] <= zero
            out[i] = values[i] * sc if keep else zero
    else:
        for i in range(values.shape[0]):
            out[i] = values[i] * sc if _hash(seed, i) >= threshold else zero


@njit(nogil=True, cache=True)
def _hash(seed, i):
    # splitmix64 of the element's position; the top _BITS bits are the uniform draw.
    z = mix64(seed + (np.uint64(i) + np.uint64(1)) * _GOLDEN)
    return z >> np.uint64(64 - _BITS)


def _launch(n: int, *args) -> None:
    """``_gated`` over n elements, split into tasks of ``_PER_CHUNK`` on the ops thread pool."""
    from gnnsys.ops._sparse_cpu import launch

    bounds = np.arange(0, n + _PER_CHUNK, _PER_CHUNK, dtype=np.int64)
    bounds[-1] = n
    launch(_gated, n, bounds, *args)


class _ReluDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float, seed: int, relu: bool):
        threshold = np.uint64(round(p * (1 << _BITS)))
        scale = 1.0 / (1.0 - p)
        seed64 = np.uint64(seed)
        out = torch.empty_like(x)
        flat = x.view(-1).numpy()
        _launch(flat.size, flat, flat, out.view(-1).numpy(), seed64, threshold, scale, relu)
        ctx.args = (seed64, threshold, scale, relu)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (out,) = ctx.saved_tensors
        g = grad.contiguous()
        gin = torch.empty_like(out)
        flat = g.view(-1).numpy()
        _launch(flat.size, flat, out.view(-1).numpy(), gin.view(-1).numpy(), *ctx.args)
        return gin, None, None, None


def relu_dropout(
    x: torch.Tensor, p: float, training: bool = True, *, relu: bool = True
) -> torch.Tensor:
    """``dropout(relu(x), p)`` (or plain dropout with ``relu=False``), fused on the CPU.

    Kept elements are scaled by ``1 / (1 - p)`` as ``F.dropout`` does; in eval mode or with
    ``p == 0`` only the ReLU applies. The CPU mask is a hash of a seed drawn from torch's
    default generator and the element's position: repeatable under ``torch.manual_seed`` and
    the same for any thread count (but not the same mask ``F.dropout`` would draw).

    Example:
        >>> torch.manual_seed(0)
        >>> y = relu_dropout(torch.randn(1000, 64), 0.5)   # about half the positives kept, x2
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"p must be a probability in [0, 1), got {p!r}")
    if not training or p == 0.0:
        return F.relu(x) if relu else x
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return F.dropout(F.relu(x) if relu else x, p, True)
    seed = int(torch.randint(0, 2**63 - 1, (1,), dtype=torch.int64))
    return _ReluDropout.apply(x.contiguous(), float(p), seed, bool(relu))
