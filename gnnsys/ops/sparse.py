"""Fused sparse GNN ops: ``spmm``, ``sddmm``, ``segment_reduce``, ``edge_softmax``.

An adjacency ``adj`` is any of:

* a ``gnnsys.Graph``, a Block, or anything with ``adj_csc() -> (indptr, indices, num_src,
  num_dst)``: CSC of incoming edges, ``indptr`` [num_dst+1], ``indices`` in [0, num_src)
  (bipartite when num_src != num_dst). Edge tensors (weights, scores) are in CSC order.
  An optional ``num_grad_src`` attribute (an int) says that only the first ``num_grad_src``
  sources need a gradient, the others being constants (a pipeline block's history rows):
  ``spmm``'s backward then computes no gradient for them (zeros).
* ``(edge_index, size)``: ``edge_index`` [2, E] (row 0 source, row 1 destination), ``size`` N or
  (num_src, num_dst). Edge tensors are in ``edge_index`` order.

Messages flow source -> destination: ``spmm(adj, x)[v]`` reduces ``x[u]`` over the edges u -> v,
so the output has num_dst rows and ``x`` num_src rows. The ops are fused: the [E, F] message
tensor is never built. Each op validates its inputs (the kernels do no bounds checks), then
dispatches by device: numba on CPU (``_sparse_cpu``), Triton on CUDA (``_sparse_triton``,
imported only when needed). The transposed CSC that backward needs (dX = A^T G) is built once
per adjacency and cached, keyed on the adjacency's index tensor (weakly: it goes with it).
The cache is checked against torch's version counters: an in-place torch write to the index
tensors is validated again, but a write through ``.numpy()`` or ``.data`` is invisible to
them, and the next call may read out of bounds: change an adjacency through torch ops only.

Determinism: every kernel gathers (each output row is computed by one thread, edges in CSC
order; on CUDA a row of more than ``_sparse_triton.SEG_EDGES`` edges is cut into segments whose
partial results a second kernel combines in edge order), so results are identical run to run
whatever the thread count. The one exception is opt-in: ``set_deterministic(False)`` lets the
CUDA backward of sum/mean scatter with atomics instead of gathering over the transpose (no
transpose is built; summation order varies).
"""

from __future__ import annotations

import contextlib
import math
import threading
import weakref
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from gnnsys._checks import (
    check_choice,
    check_data_device,
    data_device,
    index_dtype,
    triton_device_error,
)
from gnnsys._coo import csc_destinations, csc_indptr
from gnnsys._tokens import tensors_token, token_matches

REDUCES = ("sum", "mean", "max", "min")
SDDMM_OPS = ("dot", "add", "mul")
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INTS = (torch.int32, torch.int64)

__all__ = [
    "spmm",
    "sddmm",
    "segment_reduce",
    "edge_softmax",
    "set_deterministic",
    "is_deterministic",
    "clear_cache",
    "adj_size",
    "in_degrees",
    "out_degrees",
    "degree_norm",
    "zero_in_degrees",
    "REDUCES",
    "SDDMM_OPS",
]

_DETERMINISTIC = True
_BACKEND_OVERRIDE: Optional[str] = None


def set_deterministic(flag: bool) -> None:
    """Choose bit-reproducible kernels (the default) or allow atomics where they are faster.

    Deterministic mode gathers everywhere (CSC forward, cached transposed CSC backward). With
    ``False``, the CUDA backward of ``spmm`` sum/mean scatters with atomic adds instead, which
    skips building the transpose; CPU kernels are deterministic either way. Torch's
    ``torch.use_deterministic_algorithms(True)`` also forces deterministic mode.

    Example:
        >>> gnnsys.ops.sparse.set_deterministic(True)
    """
    global _DETERMINISTIC
    if not isinstance(flag, bool):
        raise TypeError(f"flag must be a bool, got {type(flag).__name__}")
    _DETERMINISTIC = flag


def is_deterministic() -> bool:
    """True when only deterministic kernels run (see ``set_deterministic``)."""
    return _DETERMINISTIC or torch.are_deterministic_algorithms_enabled()


@contextlib.contextmanager
def _force_backend(name: Optional[str]) -> Iterator[None]:
    # Tests: run the Triton kernels on CPU tensors (TRITON_INTERPRET=1) through the public ops.
    global _BACKEND_OVERRIDE
    check_choice("backend", name, (None, "numba", "triton"))
    old, _BACKEND_OVERRIDE = _BACKEND_OVERRIDE, name
    try:
        yield
    finally:
        _BACKEND_OVERRIDE = old


def _backend(device: torch.device) -> Any:
    name = _BACKEND_OVERRIDE or ("numba" if device.type == "cpu" else "triton")
    if name == "numba":
        if device.type != "cpu":
            raise ValueError(f"the numba backend runs on CPU tensors, got {device}")
        return _NumbaBackend
    from gnnsys.ops import _sparse_triton

    if device.type != "cuda" and not _sparse_triton.INTERPRETED:
        # Launching now would fail inside Triton ("0 active drivers") or read CPU memory.
        raise RuntimeError(_triton_device_error(device))
    return _sparse_triton


def _triton_device_error(device: torch.device) -> str:
    return triton_device_error("the Triton backend of the sparse ops", device)


# =============================================================================== adjacency
class _Rows:
    """CSC-like rows the kernels walk: row r owns ``indices[indptr[r]:indptr[r+1]]``.

    ``eperm`` (optional) maps a position to the CSC edge id its weight is stored under (the
    transposed CSC); ``num_cols`` bounds ``indices``. ``bounds`` caches the CPU thread chunks.
    """

    __slots__ = ("indptr", "indices", "eperm", "num_rows", "num_cols", "_bounds")

    def __init__(self, indptr, indices, eperm, num_rows, num_cols, bounds=None):
        self.indptr = indptr
        self.indices = indices
        self.eperm = eperm
        self.num_rows = num_rows
        self.num_cols = num_cols
        self._bounds = bounds

    @property
    def num_edges(self) -> int:
        return self.indices.numel()

    def bounds(self) -> np.ndarray:
        if self._bounds is None:
            from gnnsys.ops import _sparse_cpu

            self._bounds = _sparse_cpu.row_bounds(_np(self.indptr))
        return self._bounds


class _Entry:
    """Cached, derived data of one adjacency (never a strong reference to the key tensor)."""

    def __init__(self, key: torch.Tensor, indptr: Optional[torch.Tensor], stamp: tuple):
        self.key_ref = weakref.ref(key)
        self.indptr_ref = weakref.ref(indptr) if indptr is not None else None
        self.stamp = stamp
        self.lock = threading.RLock()  # reentrant: a build may read other cached entries
        self.csc: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = None
        self.per_device: Dict[Tuple[str, Any], Any] = {}

    def get(self, device: torch.device, what: Any, build):
        k = (str(device), what)
        with self.lock:
            if k not in self.per_device:
                self.per_device[k] = build()
            return self.per_device[k]


_CACHE: Dict[int, _Entry] = {}
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Drop every cached transpose / device copy (they also go when their adjacency is freed)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _drop(key_id: int, entry_ref: weakref.ref[_Entry]) -> None:
    with _CACHE_LOCK:
        e = _CACHE.get(key_id)
        if e is not None and e is entry_ref():
            del _CACHE[key_id]


def _entry(key: torch.Tensor, indptr: Optional[torch.Tensor], stamp: tuple, make) -> _Entry:
    """Find or build the cache entry of ``key``; ``make(entry)`` validates and fills a new one."""
    with _CACHE_LOCK:
        e = _CACHE.get(id(key))
        if (
            e is not None
            and e.key_ref() is key
            and (indptr is None or (e.indptr_ref is not None and e.indptr_ref() is indptr))
            and e.stamp == stamp
        ):
            return e
    e = _Entry(key, indptr, stamp)
    make(e)  # raises on invalid input; nothing is cached then
    with _CACHE_LOCK:
        _CACHE[id(key)] = e
    weakref.finalize(key, _drop, id(key), weakref.ref(e))
    return e


class _Adj:
    """One call's view of an adjacency on the op's device."""

    __slots__ = ("fwd", "num_src", "num_dst", "perm", "inv_perm", "_entry", "device", "grad_src")

    def __init__(self, fwd: _Rows, num_src, num_dst, perm, inv_perm, entry, device, grad_src=None):
        self.fwd = fwd
        self.num_src = num_src
        self.num_dst = num_dst
        self.perm = perm  # CSC position -> caller's edge position (edge_index form)
        self.inv_perm = inv_perm
        self._entry = entry
        self.device = device
        # sources [grad_src, num_src) are constants: spmm's backward leaves their gradient 0
        self.grad_src = num_src if grad_src is None else grad_src

    @property
    def num_edges(self) -> int:
        return self.fwd.num_edges

    def transposed(self) -> _Rows:
        """Rows of the reversed edges (one per source), built once and cached."""
        return self._entry.get(self.device, "t", self._build_transpose)

    def in_degrees(self) -> torch.Tensor:
        ip = self.fwd.indptr
        return self._entry.get(self.device, "deg", lambda: ip[1:] - ip[:-1])

    def out_degrees(self) -> torch.Tensor:
        """Per source, over the cached transposed CSC (deterministic)."""
        t = self.transposed()
        return self._entry.get(self.device, "outdeg", lambda: t.indptr[1:] - t.indptr[:-1])

    def _build_transpose(self) -> _Rows:
        ip, ix = self.fwd.indptr, self.fwd.indices
        if ip.device.type == "cpu":
            from gnnsys.ops import _sparse_cpu

            t_ip, t_ix, t_perm = _sparse_cpu.transpose(_np(ip), _np(ix), self.num_src)
            t_ip, t_ix, t_perm = (torch.from_numpy(a) for a in (t_ip, t_ix, t_perm))
        else:
            # Stable sort by source: each reversed row lists its edges in CSC order.
            t_perm = torch.sort(ix.long(), stable=True)[1]
            dst = csc_destinations(ip, dtype=ix.dtype, num_edges=ix.numel())
            t_ix = dst[t_perm]
            t_ip = csc_indptr(ix.long(), self.num_src)
        return _Rows(t_ip, t_ix, t_perm, self.num_src, self.num_dst)

    def transposed_weights(
        self, w2: torch.Tensor, key: Optional[torch.Tensor]
    ) -> Tuple[_Rows, torch.Tensor]:
        """The transposed rows with ``w2`` (edge weights in CSC order) permuted into their order.

        The backward then reads the weights in sequence, as the forward does, rather than
        through ``eperm`` (a random load per edge that also kept the kernel off its four-edges
        -a-step path): the same products in the same order, so the same bits. The permuted copy
        is cached while ``key`` (the caller's ``edge_weight``, which ``w2`` is derived from) is
        the same tensor, unchanged; one slot per dtype, so new weights at every call (attention)
        replace it rather than pile up. Returns ``(rows, weights)``.
        """
        t = self.transposed()
        rows = self._entry.get(  # (cached: its thread chunks are computed once)
            self.device, "t_seq", lambda: _Rows(t.indptr, t.indices, None, t.num_rows, t.num_cols)
        )
        if key is None:
            return rows, w2.index_select(0, t.eperm)
        slot = self._entry.get(self.device, ("tw", w2.dtype, tuple(w2.shape)), lambda: [None])
        with self._entry.lock:
            held = slot[0]
            if held is None or not token_matches(held[0], key):
                held = (tensors_token(key), w2.index_select(0, t.eperm))
                slot[0] = held
            return rows, held[1]

    def grad_rows(self, rows: _Rows, weights: Optional[torch.Tensor]):
        """``(rows, weights)`` of the transposed CSC with the rows of the sources past
        ``grad_src`` emptied (cached with the adjacency): the kernel writes zeros there and
        reads none of their edges, and the gradient keeps its shape without a copy."""
        n = self.grad_src
        if n >= rows.num_rows:
            return rows, weights

        def cut() -> _Rows:
            m = rows.indptr[n : n + 1]
            indptr = torch.cat([rows.indptr[: n + 1], m.expand(rows.num_rows - n)])
            k = int(m)
            eperm = None if rows.eperm is None else rows.eperm[:k]
            return _Rows(indptr, rows.indices[:k], eperm, rows.num_rows, rows.num_cols)

        rows = self._entry.get(self.device, ("t_cut", n, rows.eperm is None), cut)
        return rows, None if weights is None else weights[: rows.num_edges]

    def to_csc_order(self, t: torch.Tensor) -> torch.Tensor:
        return t if self.perm is None else t[self.perm]

    def to_user_order(self, t: torch.Tensor) -> torch.Tensor:
        return t if self.inv_perm is None else t[self.inv_perm]


def _check_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def _check_int_tensor(name: str, t: Any, dim: int) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    check_data_device(name, t)
    if t.dtype not in _INTS:
        raise TypeError(f"{name} must be int32 or int64, got dtype {t.dtype}")
    if t.dim() != dim:
        raise ValueError(f"{name} must be {dim}-D, got shape {tuple(t.shape)}")
    return t


def _validate_csc(indptr: torch.Tensor, indices: torch.Tensor, num_src: int, num_dst: int):
    if indptr.numel() != num_dst + 1:
        raise ValueError(
            f"adj indptr has {indptr.numel()} entries; num_dst={num_dst} needs {num_dst + 1}"
        )
    if indptr.device != indices.device:
        raise ValueError(
            f"adj indptr is on {indptr.device} but indices on {indices.device}; keep them together"
        )
    if int(indptr[0]) != 0:
        raise ValueError(f"adj indptr must start at 0, got {int(indptr[0])}")
    if num_dst > 0 and bool((indptr[1:] < indptr[:-1]).any()):
        bad = int(torch.nonzero(indptr[1:] < indptr[:-1])[0])
        raise ValueError(f"adj indptr must be non-decreasing; it drops after position {bad}")
    if int(indptr[-1]) != indices.numel():
        raise ValueError(
            f"adj indptr ends at {int(indptr[-1])} but indices has {indices.numel()} entries"
        )
    if indices.numel():
        lo, hi = (int(v) for v in torch.aminmax(indices))
        if lo < 0:
            raise IndexError(f"adj indices holds a negative node id: {lo}")
        if hi >= num_src:
            raise IndexError(
                f"adj indices holds source id {hi}, out of range for num_src={num_src} "
                f"(valid: 0..{num_src - 1})"
            )


def _resolve(adj: Any, device: torch.device) -> _Adj:
    """Validate ``adj`` (once per adjacency; cached) and return its view on ``device``."""
    if hasattr(adj, "adj_csc"):
        got = adj.adj_csc()
        if not isinstance(got, tuple) or len(got) != 4:
            raise TypeError("adj.adj_csc() must return (indptr, indices, num_src, num_dst)")
        indptr, indices, num_src, num_dst = got
        indptr = _check_int_tensor("adj indptr", indptr, 1)
        indices = _check_int_tensor("adj indices", indices, 1)
        num_src = _check_size("adj num_src", num_src)
        num_dst = _check_size("adj num_dst", num_dst)
        stamp = ("csc", indptr._version, indices._version, num_src, num_dst)

        def make(e: _Entry) -> None:
            _validate_csc(indptr, indices, num_src, num_dst)

        entry = _entry(indices, indptr, stamp, make)
        ip, ix, perm, inv = indptr, indices, None, None
    elif isinstance(adj, (tuple, list)) and len(adj) == 2:
        edge_index, size = adj
        edge_index = _check_int_tensor("edge_index", edge_index, 2)
        if edge_index.shape[0] != 2:
            raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
        if isinstance(size, (tuple, list)):
            if len(size) != 2:
                raise ValueError(f"size must be N or (num_src, num_dst), got {size!r}")
            num_src, num_dst = _check_size("size[0]", size[0]), _check_size("size[1]", size[1])
        else:
            num_src = num_dst = _check_size("size", size)
        stamp = ("coo", edge_index._version, num_src, num_dst)

        def make(e: _Entry) -> None:
            e.csc = _coo_to_csc(edge_index, num_src, num_dst)

        entry = _entry(edge_index, None, stamp, make)
        assert entry.csc is not None
        ip, ix, perm, inv = entry.csc
    else:
        raise TypeError(
            "adj must be a Graph/Block (anything with adj_csc()) or (edge_index, size), "
            f"got {type(adj).__name__}"
        )
    if ip.device != device or not (ip.is_contiguous() and ix.is_contiguous()):
        ip, ix, perm, inv = entry.get(
            device,
            "csc",
            lambda: tuple(
                t.to(device).contiguous() if t is not None else None for t in (ip, ix, perm, inv)
            ),
        )
    bounds = None  # CPU thread chunks, cached with the adjacency
    if device.type == "cpu":
        bounds = entry.get(device, "bounds", lambda: _Rows(ip, ix, None, num_dst, num_src).bounds())
    fwd = _Rows(ip, ix, None, num_dst, num_src, bounds)
    grad_src = getattr(adj, "num_grad_src", None)
    if grad_src is not None:
        grad_src = _check_size("adj num_grad_src", grad_src)
        if grad_src > num_src:
            raise ValueError(f"adj num_grad_src ({grad_src}) exceeds num_src ({num_src})")
    return _Adj(fwd, num_src, num_dst, perm, inv, entry, device, grad_src)


def _coo_to_csc(edge_index: torch.Tensor, num_src: int, num_dst: int):
    src, dst = edge_index[0].long(), edge_index[1].long()
    if src.numel():
        for name, t, n in (("source (row 0)", src, num_src), ("destination (row 1)", dst, num_dst)):
            lo, hi = int(t.min()), int(t.max())
            if lo < 0:
                raise IndexError(f"edge_index {name} holds a negative node id: {lo}")
            if hi >= n:
                raise IndexError(
                    f"edge_index {name} holds id {hi}, out of range for {n} nodes "
                    f"(valid: 0..{n - 1})"
                )
    perm = torch.sort(dst, stable=True)[1]
    indices = src[perm].to(index_dtype(num_src))
    indptr = csc_indptr(dst, num_dst)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel(), device=perm.device)
    return indptr, indices, perm, inv


# =============================================================================== numba glue
def _np(t: torch.Tensor) -> np.ndarray:
    # A zero-copy numpy view for the kernels (inputs may require grad; the kernels only read).
    return t.detach().numpy()


def _run(kernel_name: str, rows: _Rows, feat: torch.Tensor, *args: Any, indices: bool = True):
    from gnnsys.ops import _sparse_cpu as k

    width = feat.numel() // max(feat.shape[0], 1)
    work = (rows.num_edges + rows.num_rows) * max(width, 1)
    head = (_np(rows.indptr), _np(rows.indices)) if indices else (_np(rows.indptr),)
    k.launch(getattr(k, kernel_name), work, rows.bounds(), *head, *args)


class _NumbaBackend:
    """CPU backend: allocates outputs and calls the numba kernels (see ``_sparse_cpu``)."""

    @staticmethod
    def spmm_sum(rows: _Rows, x3, w2, mean: bool):
        out = torch.empty((rows.num_rows,) + tuple(x3.shape[1:]), dtype=x3.dtype)
        xn = _np(x3)
        use_w = w2 is not None
        use_perm = use_w and rows.eperm is not None
        ep = _np(rows.eperm) if use_perm else _np(rows.indices)[:0]
        if not use_w or x3.shape[1] == 1:
            # One row per node (heads side by side), at most one weight per edge: the flat
            # kernel, the same sums in the same order.
            width = math.prod(x3.shape[1:])
            flat = xn.reshape(xn.shape[0], width)
            wn = _np(w2)[:, 0] if use_w else np.empty(0, dtype=xn.dtype)
            out_flat = _np(out).reshape(rows.num_rows, width)
            _run("spmm_sum_flat", rows, x3, ep, use_perm, flat, wn, use_w, mean, out_flat)
            return out
        _run("spmm_sum", rows, x3, ep, use_perm, xn, _np(w2), mean, _np(out))  # per-head weights
        return out

    @staticmethod
    def spmm_arg(rows: _Rows, x3, w2, is_max: bool):
        shape = (rows.num_rows,) + tuple(x3.shape[1:])
        out = torch.empty(shape, dtype=x3.dtype)
        arg = torch.empty(shape, dtype=_id_dtype(rows.num_edges))
        wn = _np(w2) if w2 is not None else np.empty((0, x3.shape[1]), dtype=_np(x3).dtype)
        _run("spmm_arg", rows, x3, _np(x3), wn, w2 is not None, is_max, _np(out), _np(arg))
        return out, arg

    @staticmethod
    def spmm_arg_backward_x(t_rows: _Rows, grad3, w2, arg3):
        dx = torch.empty((t_rows.num_rows,) + tuple(grad3.shape[1:]), dtype=grad3.dtype)
        gn = _np(grad3)
        wn = _np(w2) if w2 is not None else np.empty((0, grad3.shape[1]), dtype=gn.dtype)
        ep = _np(t_rows.eperm)
        _run("spmm_arg_backward_x", t_rows, grad3, ep, gn, wn, w2 is not None, _np(arg3), _np(dx))
        return dx

    @staticmethod
    def spmm_arg_backward_w(rows: _Rows, grad3, x3, arg3):
        dw = torch.empty((rows.num_edges, x3.shape[1]), dtype=x3.dtype)
        _run("spmm_arg_backward_w", rows, grad3, _np(grad3), _np(x3), _np(arg3), _np(dw))
        return dw

    @staticmethod
    def sddmm_dot(rows: _Rows, x3, y3):
        out = torch.empty((rows.num_edges, x3.shape[1]), dtype=x3.dtype)
        _run("sddmm_dot", rows, x3, _np(x3), _np(y3), _np(out))
        return out

    @staticmethod
    def sddmm_binary(rows: _Rows, x3, y3, is_mul: bool):
        out = torch.empty((rows.num_edges,) + tuple(x3.shape[1:]), dtype=x3.dtype)
        _run("sddmm_binary", rows, x3, _np(x3), _np(y3), is_mul, _np(out))
        return out

    @staticmethod
    def edge_softmax_forward(rows: _Rows, s2):
        out = torch.empty_like(s2)
        _run("edge_softmax_forward", rows, s2, _np(s2), _np(out), indices=False)
        return out

    @staticmethod
    def edge_softmax_backward(rows: _Rows, p2, g2):
        out = torch.empty_like(p2)
        _run("edge_softmax_backward", rows, p2, _np(p2), _np(g2), _np(out), indices=False)
        return out


_EMPTY_I64 = np.empty(0, dtype=np.int64)


# =============================================================================== autograd
class _SpmmSum(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        a: _Adj,
        x3: torch.Tensor,
        w2: Optional[torch.Tensor],
        mean: bool,
        w_key: Optional[torch.Tensor] = None,
    ):
        # w_key: the caller's edge_weight (w2 derives from it), keying the backward's cache
        be = _backend(x3.device)
        ctx.a, ctx.mean, ctx.be = a, mean, be
        ctx.w_key = None if w_key is None else weakref.ref(w_key)
        ctx.save_for_backward(x3, w2)
        return be.spmm_sum(a.fwd, x3, w2, mean)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        a, be = ctx.a, ctx.be
        x3, w2 = ctx.saved_tensors
        g = grad.contiguous()
        if ctx.mean:
            deg = a.in_degrees().clamp(min=1).to(g.dtype)
            g = g / deg.view(-1, 1, 1)
        dx = dw = None
        if ctx.needs_input_grad[1]:
            if not is_deterministic() and hasattr(be, "spmm_sum_scatter"):
                dx = be.spmm_sum_scatter(a.fwd, g, w2, a.num_src)
            else:
                if w2 is not None:
                    key = ctx.w_key() if ctx.w_key is not None else None
                    rows, wt = a.transposed_weights(w2, key)
                else:
                    rows, wt = a.transposed(), None
                rows, wt = a.grad_rows(rows, wt)  # (constant sources: empty rows, zeros)
                dx = be.spmm_sum(rows, g, wt, False)
        if ctx.needs_input_grad[2]:
            dw = be.sddmm_dot(a.fwd, x3, g)
        return None, dx, dw, None, None


class _SpmmArg(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: _Adj, x3: torch.Tensor, w2: Optional[torch.Tensor], is_max: bool):
        be = _backend(x3.device)
        out, arg = be.spmm_arg(a.fwd, x3, w2, is_max)
        ctx.a, ctx.be = a, be
        ctx.save_for_backward(x3, w2, arg)
        ctx.mark_non_differentiable(arg)
        return out, arg

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor, _grad_arg: Any):
        a, be = ctx.a, ctx.be
        x3, w2, arg = ctx.saved_tensors
        g = grad.contiguous()
        dx = dw = None
        if ctx.needs_input_grad[1]:
            dx = be.spmm_arg_backward_x(a.transposed(), g, w2, arg)
        if ctx.needs_input_grad[2]:
            dw = be.spmm_arg_backward_w(a.fwd, g, x3, arg)
        return None, dx, dw, None


class _Sddmm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: _Adj, x3: torch.Tensor, y3: torch.Tensor, op: str):
        be = _backend(x3.device)
        ctx.a, ctx.be, ctx.op = a, be, op
        ctx.save_for_backward(x3, y3)
        if op == "dot":
            return be.sddmm_dot(a.fwd, x3, y3)
        return be.sddmm_binary(a.fwd, x3, y3, op == "mul")

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        a, be, op = ctx.a, ctx.be, ctx.op
        x3, y3 = ctx.saved_tensors
        g = grad.contiguous()
        need_x, need_y = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        dx = dy = None
        n_src, n_dst, heads, dim = x3.shape[0], y3.shape[0], x3.shape[1], x3.shape[2]
        if op == "dot":  # dx[u] = sum_e g[e] y[v]; dy[v] = sum_e g[e] x[u]
            if need_x:
                dx = be.spmm_sum(a.transposed(), y3, g, False)
            if need_y:
                dy = be.spmm_sum(a.fwd, x3, g, False)
        elif op == "add":  # dx[u] = sum of g over u's out-edges; dy[v] over v's in-edges
            ge = g.reshape(-1, 1, heads * dim)
            if need_x:
                t = a.transposed()
                rows = _Rows(t.indptr, t.eperm, None, n_src, ge.shape[0], t._bounds)
                dx = be.spmm_sum(rows, ge, None, False)
                dx = dx.view(n_src, heads, dim)
            if need_y:
                ident = torch.arange(a.num_edges, device=g.device, dtype=_id_dtype(a.num_edges))
                dy = be.spmm_sum(_segment_rows(a.fwd.indptr, ident, a), ge, None, False)
                dy = dy.view(n_dst, heads, dim)
        else:  # mul: the per-feature product is a per-"head" weight with one feature each
            gw = g.reshape(-1, heads * dim)
            if need_x:
                yv = y3.reshape(n_dst, heads * dim, 1)
                dx = be.spmm_sum(a.transposed(), yv, gw, False).view(n_src, heads, dim)
            if need_y:
                xv = x3.reshape(n_src, heads * dim, 1)
                dy = be.spmm_sum(a.fwd, xv, gw, False).view(n_dst, heads, dim)
        return None, dx, dy, None


class _EdgeSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: _Adj, s2: torch.Tensor):
        be = _backend(s2.device)
        p = be.edge_softmax_forward(a.fwd, s2)
        ctx.a, ctx.be = a, be
        ctx.save_for_backward(p)
        return p

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        (p,) = ctx.saved_tensors
        return None, ctx.be.edge_softmax_backward(ctx.a.fwd, p, grad.contiguous())


class _SegmentReduce(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rows: _Rows, src3: torch.Tensor, reduce: str):
        be = _backend(src3.device)
        ctx.rows, ctx.be, ctx.reduce = rows, be, reduce
        if reduce in ("sum", "mean"):
            return be.spmm_sum(rows, src3, None, reduce == "mean")
        out, arg = be.spmm_arg(rows, src3, None, reduce == "max")
        ctx.save_for_backward(arg)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        rows, be, reduce = ctx.rows, ctx.be, ctx.reduce
        g = grad.contiguous()
        ip = rows.indptr
        counts = ip[1:] - ip[:-1]
        if reduce in ("sum", "mean"):
            if reduce == "mean":
                g = g / counts.clamp(min=1).to(g.dtype).view(-1, 1, 1)
            return None, torch.repeat_interleave(g, counts, dim=0), None
        (arg,) = ctx.saved_tensors
        idt = _id_dtype(max(rows.num_rows, rows.num_edges))
        seg = torch.repeat_interleave(
            torch.arange(rows.num_rows, device=ip.device, dtype=idt), counts
        )
        # Each element has one out-edge (to its segment): a transposed CSC of width one.
        e = rows.num_edges
        t_ip = torch.arange(e + 1, device=ip.device)
        t_rows = _Rows(t_ip, seg, torch.arange(e, device=ip.device, dtype=idt), e, rows.num_rows)
        return None, be.spmm_arg_backward_x(t_rows, g, None, arg), None


def _id_dtype(n: int) -> torch.dtype:
    # int32 ids below 2^31 (one numba specialisation shared with Graph.indices), else int64.
    return index_dtype(n)


def _segment_rows(indptr: torch.Tensor, ident: torch.Tensor, a: _Adj) -> _Rows:
    # The CSC rows with identity indices (row v reads its own edge slots); reuses a's chunks.
    bounds = a.fwd._bounds if a is not None else None
    return _Rows(indptr, ident, None, indptr.numel() - 1, ident.numel(), bounds)


# =============================================================================== public API
def _check_float(name: str, t: Any, device: Optional[torch.device] = None) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in _FLOATS:
        raise TypeError(f"{name} must be float16/bfloat16/float32/float64, got dtype {t.dtype}")
    check_data_device(name, t)
    if device is not None and t.device != device:
        raise ValueError(f"{name} is on {t.device} but the features are on {device}")
    return t


def _compute_dtype(dtype: torch.dtype, device: torch.device) -> torch.dtype:
    # numba has no half types: the CPU kernels run float32 and the result is cast back.
    if _backend_name(device) == "numba" and dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    return dtype


def _backend_name(device: torch.device) -> str:
    return _BACKEND_OVERRIDE or ("numba" if device.type == "cpu" else "triton")


def _heads_of(w: Optional[torch.Tensor], num_edges: int, feat_shape: tuple) -> int:
    """Validate an edge weight [E] or [E, H, 1...] against x's trailing shape; return H."""
    if w is None:
        return 1
    if w.dim() == 0 or w.shape[0] != num_edges:
        raise ValueError(
            f"edge_weight must have {num_edges} rows (one per edge), got {tuple(w.shape)}"
        )
    if w.dim() == 1:
        return 1
    if any(s != 1 for s in w.shape[2:]):
        raise ValueError(
            f"edge_weight must be [E] or [E, H] (trailing 1s allowed), got {tuple(w.shape)}"
        )
    heads = w.shape[1]
    if heads != 1 and (len(feat_shape) < 1 or feat_shape[0] != heads):
        raise ValueError(
            f"edge_weight has {heads} heads but x has trailing shape {feat_shape}; "
            f"per-head weights need x of shape [N, {heads}, ...]"
        )
    return heads


def spmm(
    adj: Any,
    x: torch.Tensor,
    reduce: str = "sum",
    edge_weight: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Aggregate source features into destinations: ``out[v] = reduce_{u->v} w_uv * x[u]``.

    The GNN message-passing step, fused (no [E, F] messages). ``reduce`` is sum, mean, max or
    min; empty rows give 0. ``edge_weight`` is [E] (scales whole rows) or [E, H] per head with
    ``x`` [N, H, D] (GAT attention). Differentiable in ``x`` and ``edge_weight``; max/min route
    the gradient to the first edge attaining the extremum (as ``torch.max(dim)`` does; torch's
    ``scatter_reduce`` splits ties evenly instead). A NaN message makes its max/min NaN, as in
    ``scatter_reduce(..., "amax")``, whatever the edge order; the gradient then goes to the row's
    first NaN edge (``scatter_reduce`` gives NaN gradients to every edge of that row).

    Example:
        >>> g = Graph.from_edge_index(torch.tensor([[0, 1], [2, 2]]))
        >>> spmm(g, torch.tensor([[1.0], [2.0], [5.0]]), "sum").flatten().tolist()
        [0.0, 0.0, 3.0]
    """
    check_choice("reduce", reduce, REDUCES)
    _check_float("x", x)
    if x.dim() < 1:
        raise ValueError("x must have at least one dimension (one row per source node)")
    a = _resolve(adj, x.device)
    if x.shape[0] != a.num_src:
        raise ValueError(f"x has {x.shape[0]} rows but adj has num_src={a.num_src} source nodes")
    feat = tuple(x.shape[1:])
    heads = 1
    w2 = None
    if edge_weight is not None:
        _check_float("edge_weight", edge_weight, x.device)
        heads = _heads_of(edge_weight, a.num_edges, feat)
        w2 = a.to_csc_order(edge_weight.reshape(a.num_edges, heads))
    fdim = math.prod(feat)
    dim = fdim // heads
    cdt = _compute_dtype(x.dtype, x.device)
    x3 = x.reshape(a.num_src, heads, dim).to(cdt).contiguous()
    if w2 is not None:
        w2 = w2.to(cdt).contiguous()
    if reduce in ("sum", "mean"):
        out = _SpmmSum.apply(a, x3, w2, reduce == "mean", edge_weight)
    else:
        out = _SpmmArg.apply(a, x3, w2, reduce == "max")[0]
    return out.to(x.dtype).reshape((a.num_dst,) + feat)


def sddmm(adj: Any, x: torch.Tensor, y: torch.Tensor, op: str = "dot") -> torch.Tensor:
    """Per-edge combination of source and destination features (sampled dense-dense op).

    For each edge u -> v: ``dot`` gives <x[u], y[v]> over the last dimension ([E, *mid]),
    ``add`` x[u] + y[v] and ``mul`` x[u] * y[v] ([E, *feat]). x has num_src rows, y num_dst,
    both the same trailing shape. Used for attention scores (GAT: ``add`` of [N, H, 1]) and
    for the edge-weight gradient of ``spmm``. Differentiable in x and y.

    Example:
        >>> g = Graph.from_edge_index(torch.tensor([[0], [1]]))
        >>> sddmm(g, torch.ones(2, 3), torch.full((2, 3), 2.0), "dot").tolist()
        [6.0]
    """
    check_choice("op", op, SDDMM_OPS)
    _check_float("x", x)
    _check_float("y", y, x.device)
    if x.dim() < 1 or y.dim() < 1:
        raise ValueError("x and y need at least one dimension (one row per node)")
    if x.dtype != y.dtype:
        raise TypeError(f"x and y must share a dtype, got {x.dtype} and {y.dtype}")
    a = _resolve(adj, x.device)
    if x.shape[0] != a.num_src:
        raise ValueError(f"x has {x.shape[0]} rows but adj has num_src={a.num_src} source nodes")
    if y.shape[0] != a.num_dst:
        raise ValueError(f"y has {y.shape[0]} rows but adj has num_dst={a.num_dst} destinations")
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(
            f"x and y must have the same trailing shape, got {tuple(x.shape[1:])} and "
            f"{tuple(y.shape[1:])}"
        )
    feat = tuple(x.shape[1:])
    if op == "dot":
        mid = feat[:-1] if feat else ()
        dim = feat[-1] if feat else 1
        heads = math.prod(mid)
        out_shape = (a.num_edges,) + mid
    else:
        heads, dim = 1, math.prod(feat)
        out_shape = (a.num_edges,) + feat
    cdt = _compute_dtype(x.dtype, x.device)
    x3 = x.reshape(a.num_src, heads, dim).to(cdt).contiguous()
    y3 = y.reshape(a.num_dst, heads, dim).to(cdt).contiguous()
    out = _Sddmm.apply(a, x3, y3, op)
    return a.to_user_order(out.to(x.dtype).reshape(out_shape))


def edge_softmax(adj: Any, scores: torch.Tensor) -> torch.Tensor:
    """Softmax of edge scores over each destination's incoming edges (attention weights).

    ``scores`` is [E] or [E, *] (e.g. [E, H] or DGL's [E, H, 1]); each trailing column is
    normalised independently. Max-shifted, so large scores do not overflow. Differentiable.

    Example:
        >>> g = Graph.from_edge_index(torch.tensor([[0, 1], [2, 2]]))
        >>> edge_softmax(g, torch.zeros(2)).tolist()
        [0.5, 0.5]
    """
    _check_float("scores", scores)
    a = _resolve(adj, scores.device)
    if scores.dim() < 1 or scores.shape[0] != a.num_edges:
        raise ValueError(
            f"scores must have {a.num_edges} rows (one per edge), got {tuple(scores.shape)}"
        )
    cdt = _compute_dtype(scores.dtype, scores.device)
    cols = math.prod(scores.shape[1:])
    s2 = a.to_csc_order(scores.reshape(a.num_edges, cols))
    out = _EdgeSoftmax.apply(a, s2.to(cdt).contiguous())
    return a.to_user_order(out.to(scores.dtype)).reshape(scores.shape)


def segment_reduce(src: torch.Tensor, indptr: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
    """Reduce consecutive row segments: ``out[s] = reduce(src[indptr[s]:indptr[s+1]])``.

    ``indptr`` is int32/int64 [S+1], starting at 0, non-decreasing, ending at ``src.shape[0]``.
    ``reduce`` is sum, mean, max or min; empty segments give 0; a NaN makes its segment's
    max/min NaN (as ``spmm``). Differentiable in ``src``.

    Example:
        >>> segment_reduce(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0, 2, 2, 3])).tolist()
        [3.0, 0.0, 4.0]
    """
    check_choice("reduce", reduce, REDUCES)
    _check_float("src", src)
    ip = _check_int_tensor("indptr", indptr, 1)
    if src.dim() < 1:
        raise ValueError("src must have at least one dimension (one row per element)")
    if ip.numel() < 1:
        raise ValueError("indptr must have at least one entry (S+1 for S segments)")
    ip = ip.to(src.device).long()
    if int(ip[0]) != 0:
        raise ValueError(f"indptr must start at 0, got {int(ip[0])}")
    if ip.numel() > 1 and bool((ip[1:] < ip[:-1]).any()):
        bad = int(torch.nonzero(ip[1:] < ip[:-1])[0])
        raise ValueError(f"indptr must be non-decreasing; it drops after position {bad}")
    if int(ip[-1]) != src.shape[0]:
        raise ValueError(f"indptr ends at {int(ip[-1])} but src has {src.shape[0]} rows")
    feat = tuple(src.shape[1:])
    dim = math.prod(feat)
    e = src.shape[0]
    cdt = _compute_dtype(src.dtype, src.device)
    src3 = src.reshape(e, 1, dim).to(cdt).contiguous()
    rows = _Rows(
        ip, torch.arange(e, device=src.device, dtype=_id_dtype(e)), None, ip.numel() - 1, e
    )
    out = _SegmentReduce.apply(rows, src3, reduce)
    return out.to(src.dtype).reshape((ip.numel() - 1,) + feat)


# =============================================================================== adjacency info
def adj_size(adj: Any) -> Tuple[int, int, int]:
    """(num_src, num_dst, num_edges) of an adjacency, after validating it.

    Example:
        >>> adj_size((torch.tensor([[0, 1], [1, 2]]), (2, 3)))
        (2, 3, 2)
    """
    a = _resolve(adj, _adj_device(adj))
    return a.num_src, a.num_dst, a.num_edges


def in_degrees(
    adj: Any, edge_weight: Optional[torch.Tensor] = None, device: Optional[Any] = None
) -> torch.Tensor:
    """Per destination: the number of incoming edges (int64), or the sum of their weights.

    The weighted form is differentiable in ``edge_weight`` (used by weight normalisation).

    Example:
        >>> in_degrees((torch.tensor([[0, 1], [1, 1]]), 2)).tolist()
        [0, 2]
    """
    dev = data_device(device) if device is not None else _edge_device(adj, edge_weight)
    a = _resolve(adj, dev)
    if edge_weight is None:
        return a.in_degrees()
    w = _edge_weight_1d(a, edge_weight)
    return segment_reduce(w, a.fwd.indptr, "sum")


def out_degrees(
    adj: Any, edge_weight: Optional[torch.Tensor] = None, device: Optional[Any] = None
) -> torch.Tensor:
    """Per source: the number of outgoing edges (int64), or the sum of their weights.

    Computed over the cached transposed CSC (deterministic; differentiable when weighted).

    Example:
        >>> out_degrees((torch.tensor([[0, 0], [1, 1]]), 2)).tolist()
        [2, 0]
    """
    dev = data_device(device) if device is not None else _edge_device(adj, edge_weight)
    a = _resolve(adj, dev)
    if edge_weight is None:
        return a.out_degrees()
    t = a.transposed()
    w = _edge_weight_1d(a, edge_weight)
    return segment_reduce(torch.index_select(w, 0, t.eperm), t.indptr, "sum")


DEGREE_NORMS = ("sqrt", "inv")


def degree_norm(
    adj: Any, side: str, kind: str, dtype: torch.dtype, device: Optional[Any] = None
) -> torch.Tensor:
    """Per node of ``side`` ("in": destinations, "out": sources): ``clamp(deg, min=1) ** -0.5``
    (``kind="sqrt"``, GCN's symmetric normalisation) or ``1 / clamp(deg, min=1)`` (``"inv"``,
    the mean), as ``dtype``. Computed once per adjacency and cached with it, like its degrees:
    layers that run many times over one adjacency (full-graph and pipeline training) do not
    recompute it. The result is shared: do not modify it in place.

    Example:
        >>> degree_norm((torch.tensor([[0, 1], [1, 1]]), 2), "in", "inv", torch.float32).tolist()
        [1.0, 0.5]
    """
    check_choice("side", side, ("in", "out"))
    check_choice("kind", kind, DEGREE_NORMS)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    dev = data_device(device) if device is not None else _adj_device(adj)
    a = _resolve(adj, dev)

    def build() -> torch.Tensor:
        d = (a.in_degrees() if side == "in" else a.out_degrees()).to(dtype).clamp(min=1)
        return d.pow(-0.5) if kind == "sqrt" else 1.0 / d

    return a._entry.get(dev, ("norm", side, kind, dtype), build)


def zero_in_degrees(adj: Any, device: Optional[Any] = None) -> Tuple[int, int]:
    """(how many destinations have no incoming edge, the first of them or -1): what DGL's
    zero-in-degree check reports, cached with the adjacency.

    Example:
        >>> zero_in_degrees((torch.tensor([[0], [1]]), 3))
        (2, 0)
    """
    dev = data_device(device) if device is not None else _adj_device(adj)
    a = _resolve(adj, dev)

    def build() -> Tuple[int, int]:
        zero = a.in_degrees() == 0
        count = int(zero.sum())
        return count, (int(torch.nonzero(zero)[0]) if count else -1)

    return a._entry.get(dev, "zero_in", build)


def _edge_weight_1d(a: _Adj, edge_weight: torch.Tensor) -> torch.Tensor:
    _check_float("edge_weight", edge_weight, a.device)
    if edge_weight.dim() != 1 or edge_weight.shape[0] != a.num_edges:
        raise ValueError(
            f"edge_weight must have shape [{a.num_edges}] (one per edge), "
            f"got {tuple(edge_weight.shape)}"
        )
    return a.to_csc_order(edge_weight)


def _adj_device(adj: Any) -> torch.device:
    if hasattr(adj, "adj_csc"):
        ix = adj.adj_csc()[1]
    elif isinstance(adj, (tuple, list)) and len(adj) == 2:
        ix = adj[0]
    else:
        ix = None
    return ix.device if isinstance(ix, torch.Tensor) else torch.device("cpu")


def _edge_device(adj: Any, edge_weight: Optional[torch.Tensor]) -> torch.device:
    return edge_weight.device if isinstance(edge_weight, torch.Tensor) else _adj_device(adj)
