"""UnifiedTensor: a feature table that stays in host memory and is gathered where it is needed.

``x[idx]`` with a CUDA index gathers on the GPU straight from host memory (registered in place,
read by a Triton kernel over PCIe: zero-copy, no CPU gather, no staging copy); with a CPU index
it gathers on the CPU with a parallel numba kernel. Options: a device cache of the hottest rows,
half-width storage widened on gather, memory-mapped tables larger than RAM (gathered on the CPU,
and for the GPU staged through a pinned ring), and ``__cuda_array_interface__`` for CuPy/Numba.

Index semantics: a tensor, array or list of ids is a batch of node ids: ids must lie in
``0..N-1`` and a negative id is an IndexError (node ids are never negative; this is
``gnnsys._checks.check_index(exc=IndexError)``). A Python ``int`` or ``slice`` is a position and
follows Python's rules (``x[-1]`` is the last row, ``x[-10:]`` the last ten).
"""

from __future__ import annotations

import collections
import importlib.util
import math
import os
import threading
import warnings
import weakref
from typing import Any, Optional, Union

import numpy as np
import torch

from gnnsys._checks import as_cpu_tensor, as_device, check_data_device, check_index, data_device
from gnnsys.unified_tensor import gather_cpu, pinning
from gnnsys.unified_tensor.cache import RowCache, cache_rows_for
from gnnsys.unified_tensor.staging import StagingRing, numpy_bits

_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
_HALF = (torch.float16, torch.bfloat16)
_SUPPORTED = (
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.uint8,
    torch.bool,
)

_NP_DTYPES = {
    torch.float16: np.dtype(np.float16),
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
    torch.int8: np.dtype(np.int8),
    torch.int16: np.dtype(np.int16),
    torch.int32: np.dtype(np.int32),
    torch.int64: np.dtype(np.int64),
    torch.uint8: np.dtype(np.uint8),
    torch.bool: np.dtype(np.bool_),
}

_side_streams: dict = {}
_side_lock = threading.Lock()
_warned: set = set()


def _warn_once(key: str, msg: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(msg, stacklevel=3)


def have_triton() -> bool:
    """True when the optional ``triton`` package is importable (the ``gpu`` extra)."""
    return importlib.util.find_spec("triton") is not None


def _triton_module():
    from gnnsys.unified_tensor import gather_triton

    return gather_triton


def side_stream(device: torch.device) -> torch.cuda.Stream:
    """The per-device side stream gathers are launched on (created once)."""
    idx = device.index if device.index is not None else torch.cuda.current_device()
    with _side_lock:
        s = _side_streams.get(idx)
        if s is None:
            s = torch.cuda.Stream(device=idx)
            _side_streams[idx] = s
        return s


def _torch_dtype_of(np_dtype: np.dtype) -> torch.dtype:
    try:
        return torch.from_numpy(np.empty(0, dtype=np_dtype)).dtype
    except TypeError as e:
        raise TypeError(f"unsupported numpy dtype for a feature table: {np_dtype}") from e


def _validate_ids(index: Any, n_rows: int) -> torch.Tensor:
    """Ids as a 1-D int tensor on their own device.

    CPU ids are range-checked here (IndexError for any id outside 0..N-1). Ids on a device
    are checked for dtype and shape only, which needs no host round trip: their range is
    checked where they are used (``_device_minmax`` on the GPU, or on the host once they are
    copied back), so a gather with CUDA ids never synchronises the device.
    """
    if isinstance(index, torch.Tensor) and index.device.type != "cpu":
        t = index
        if t.dtype not in _INT_DTYPES:
            raise ValueError(f"index must hold integer node ids, got dtype {t.dtype}")
        if t.dim() != 1:
            raise ValueError(f"index must be 1-dimensional, got shape {tuple(t.shape)}")
        if t.dtype not in (torch.int32, torch.int64):
            t = t.long()
        return t
    return check_index("index", index, n_rows, device=None, exc=IndexError)


def _list_index(index: Union[list, tuple, range]) -> torch.Tensor:
    """A list (or range) index as torch reads it (``as_cpu_tensor``: a list of bools is a
    mask, of ints ids; a list of floats stays float and the id check refuses it); a value no
    int64 holds is an IndexError naming the index, not torch's "Overflow when unpacking"."""
    try:
        return as_cpu_tensor("index", index)
    except (RuntimeError, TypeError, ValueError, OverflowError) as e:
        raise IndexError(f"index: cannot read the list as node ids ({e})") from None


def _range_error(lo: int, hi: int, n_rows: int, where: str = "") -> Optional[IndexError]:
    """The IndexError for ids spanning [lo, hi] in a table of ``n_rows`` rows, or None."""
    if lo < 0:
        return IndexError(f"index{where} holds a negative id: {lo}")
    if hi >= n_rows:
        return IndexError(
            f"index{where} holds id {hi}, out of range for {n_rows} nodes (valid: 0..{n_rows - 1})"
        )
    return None


def _check_range_host(ids: torch.Tensor, n_rows: int) -> None:
    """Range check of CPU ids (after a copy back from the device)."""
    if ids.numel():
        check_index("index", ids, n_rows, device=None, exc=IndexError)


def _device_minmax(ids: torch.Tensor) -> torch.Tensor:
    """[min, max] of ``ids`` as a tensor on their device: queued work, no host read."""
    return torch.stack(torch.aminmax(ids))


class Gathered:
    """A gather in flight on a side stream: ``wait()`` joins it and returns the rows.

    Example:
        >>> pending = x.gather_async(idx_cuda)  # doctest: +SKIP
        >>> ...                                  # other GPU work overlaps the gather
        >>> rows = pending.wait()                # doctest: +SKIP
    """

    def __init__(self, out: torch.Tensor, event: Optional[torch.cuda.Event] = None) -> None:
        self._out = out
        self.event = event

    def ready(self) -> bool:
        """True when the rows are complete (never blocks)."""
        return self.event is None or self.event.query()

    def wait(self, stream: Optional[torch.cuda.Stream] = None) -> torch.Tensor:
        """Make ``stream`` (default: the current one) wait for the gather; return the rows."""
        if self.event is not None:
            s = stream if stream is not None else torch.cuda.current_stream(self._out.device)
            s.wait_event(self.event)
            self._out.record_stream(s)
        return self._out


class _CAIHolder:
    """Carries a ``__cuda_array_interface__`` dict and keeps its owner alive."""

    def __init__(self, owner: UnifiedTensor, cai: dict) -> None:
        self._owner = owner
        self.__cuda_array_interface__ = cai


SEQUENTIAL_CHUNK_BYTES = 64 << 20  # bytes per read when a file-backed cache is filled


class UnifiedTensor:
    """A row table [N, ...] kept in host memory that gathers rows on the device that asks.

    Build it with :func:`gnnsys.unified` or :func:`gnnsys.unified.from_file`. It behaves like a
    read-only tensor for what a feature table needs: ``shape``, ``dtype``, ``len``, ``x[idx]``,
    ``index_select``, ``torch.index_select`` and ``torch.nn.functional.embedding``; other torch
    functions see the whole table as a CPU tensor (a copy when the storage is half width or
    memory-mapped). No autograd: it is input data, not a parameter.

    Example:
        >>> x = UnifiedTensor(torch.randn(1000, 64))
        >>> x[torch.tensor([3, 1])].shape
        torch.Size([2, 64])
    """

    def __init__(
        self,
        data: Any,
        *,
        cache: Union[float, int, None] = None,
        cache_order: Any = None,
        storage_dtype: Optional[torch.dtype] = None,
        cache_device: Optional[Union[str, torch.device]] = None,
        out_dtype: Optional[torch.dtype] = None,
    ) -> None:
        self._memmap: Optional[np.memmap] = None
        self._host: Optional[torch.Tensor] = None
        self._reg: Optional[pinning.Registration] = None
        self._finalizer: Optional[weakref.finalize] = None
        self._cache: Optional[RowCache] = None
        self._staging: Optional[StagingRing] = None
        # Range checks of CUDA ids still in flight: (event, pinned [min, max]); see _poll.
        self._pending: collections.deque = collections.deque()
        self._pending_lock = threading.Lock()
        self._spec = (cache, cache_order, storage_dtype, cache_device, out_dtype)
        if isinstance(data, UnifiedTensor):
            if data._sdtype != data._dtype and storage_dtype is None and out_dtype is None:
                out_dtype = data._dtype
            data = data._np_keep if data._host is None else data._host.view(data._shape)
        if isinstance(data, np.ndarray):
            self._init_numpy(data, storage_dtype, out_dtype)
        elif isinstance(data, torch.Tensor):
            self._init_tensor(data, storage_dtype, out_dtype)
        else:
            raise TypeError(
                f"unified() takes a torch.Tensor or numpy array (np.memmap for files), "
                f"got {type(data).__name__}"
            )
        self._rows_np = numpy_bits(self._host) if self._host is not None else self._rows_np
        self._kind = _upcast_kind(self._sdtype, self._dtype)
        if self._host is not None:
            self._register()
        self._init_cache(cache, cache_order, cache_device)

    # ------------------------------------------------------------------ construction
    def _init_tensor(
        self,
        x: torch.Tensor,
        storage_dtype: Optional[torch.dtype],
        out_dtype: Optional[torch.dtype] = None,
    ) -> None:
        if x.dim() == 0:
            raise ValueError("unified() needs a table with at least one dimension, got a scalar")
        if x.dtype not in _SUPPORTED:
            raise TypeError(f"unsupported dtype {x.dtype}; supported: {_SUPPORTED}")
        check_data_device("unified()'s table", x)
        if x.device.type != "cpu":
            warnings.warn(
                f"unified(): the table is on {x.device}; copying it to host memory", stacklevel=3
            )
        if x.requires_grad:
            x = x.detach()
        if not x.is_contiguous():
            warnings.warn(
                "unified(): the table is not contiguous; making a contiguous copy once",
                stacklevel=3,
            )
        if out_dtype is not None and storage_dtype is not None:
            raise ValueError("pass storage_dtype (to narrow) or out_dtype (to widen), not both")
        if out_dtype is not None:
            self._sdtype = x.dtype
            self._dtype = _check_out_dtype(out_dtype, x.dtype)
        else:
            self._dtype = x.dtype
            self._sdtype = _check_storage_dtype(storage_dtype, x.dtype)
        if x.device.type != "cpu" or not x.is_contiguous() or self._sdtype != x.dtype:
            # One copy (device, layout and dtype at once) into a 128-byte-aligned buffer.
            y = aligned_empty(tuple(x.shape), self._sdtype)
            y.copy_(x)
            x = y
        self._shape = tuple(x.shape)
        self._d = int(math.prod(self._shape[1:]))
        self._host = x.reshape(self._shape[0], self._d)

    def _init_numpy(
        self, a: np.ndarray, storage_dtype: Optional[torch.dtype], out_dtype: Optional[torch.dtype]
    ) -> None:
        if a.ndim == 0:
            raise ValueError("unified() needs a table with at least one dimension, got a scalar")
        if not a.dtype.isnative:
            # The gathers copy raw words: a foreign byte order would come out byte-swapped.
            if isinstance(a, np.memmap) or not a.flags.writeable:
                raise ValueError(
                    f"unified(): the table's byte order is not the machine's (dtype "
                    f"{a.dtype.str}) and a memory-mapped or read-only table is not converted "
                    f"in place; rewrite it with a.astype(a.dtype.newbyteorder('='))"
                )
            warnings.warn(
                f"unified(): the table's byte order is not the machine's (dtype {a.dtype.str}); "
                "making a native-order copy once",
                stacklevel=4,
            )
            a = a.astype(a.dtype.newbyteorder("="))
        sdtype = _torch_dtype_of(a.dtype)
        if sdtype not in _SUPPORTED:
            raise TypeError(f"unsupported dtype {a.dtype}; supported: {_SUPPORTED}")
        if isinstance(a, np.memmap) or not a.flags.writeable:
            if not a.flags.c_contiguous:
                raise ValueError(
                    "a memory-mapped (or read-only) table must be C-contiguous (save it with "
                    "np.save of a C-ordered array, or pass np.ascontiguousarray(a)); copying "
                    "it could exceed RAM"
                )
            if storage_dtype is not None and storage_dtype != sdtype:
                raise ValueError(
                    f"cannot change the storage dtype of a memory-mapped table in place "
                    f"({sdtype} -> {storage_dtype}); convert the file, or read it with "
                    f"out_dtype= to widen on gather"
                )
            self._memmap = a if isinstance(a, np.memmap) else None
            self._sdtype = sdtype
            self._dtype = _check_out_dtype(out_dtype, sdtype)
            self._shape = tuple(a.shape)
            self._d = int(math.prod(self._shape[1:]))
            self._rows_np = np.asarray(a).reshape(self._shape[0], self._d)
            self._np_keep = a
            return
        if not a.flags.c_contiguous:
            warnings.warn(
                "unified(): the table is not contiguous; making a contiguous copy once",
                stacklevel=4,
            )
            t = aligned_empty(tuple(a.shape), sdtype)  # a 128-byte-aligned copy
            t.numpy()[...] = a
            self._init_tensor(t, storage_dtype, out_dtype)
            return
        self._init_tensor(torch.from_numpy(a), storage_dtype, out_dtype)

    def _register(self) -> None:
        if not torch.cuda.is_available() or self._host.numel() == 0:
            return
        host = self._host
        try:
            reg = pinning.register(host.data_ptr(), host.numel() * host.element_size(), host)
        except pinning.CudaError as e:
            _warn_once(
                f"register:{e}",
                f"unified(): host memory could not be registered ({e}); CUDA gathers will "
                f"go through a pinned staging copy",
            )
            return
        self._reg = reg
        self._finalizer = weakref.finalize(self, pinning.release, reg)

    def _init_cache(self, cache: Any, order: Any, cache_device: Any) -> None:
        row_bytes = self._d * _esize(self._sdtype)
        k = cache_rows_for(cache, self._shape[0], row_bytes)
        if cache_device is not None:
            dev = data_device(cache_device, "cache_device")
            if dev.type == "cuda":
                pinning.require_cuda(f"unified(cache_device={cache_device!r})")
        elif torch.cuda.is_available():
            dev = torch.device("cuda", torch.cuda.current_device())
        else:
            if k > 0:
                warnings.warn(
                    "unified(): no CUDA device, so cache= is ignored (every row is already in "
                    "host memory for CPU gathers); pass cache_device='cpu' to keep hot rows of "
                    "a memory-mapped table in RAM",
                    stacklevel=4,
                )
            return
        if k <= 0:
            if cache is not None and cache != 0:
                warnings.warn(
                    f"unified(): cache={cache!r} buys no rows of {row_bytes} bytes",
                    stacklevel=4,
                )
            return
        fetch = self._fetch_storage
        if self._memmap is not None and self._memmap.filename is not None:
            fetch = self._fetch_storage_sequential
        self._cache = RowCache.build(self._shape[0], self._d, fetch, k=k, order=order, device=dev)

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> torch.Size:
        return torch.Size(self._shape)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype gathers return (the input's dtype; wider than storage when upcasting)."""
        return self._dtype

    @property
    def storage_dtype(self) -> torch.dtype:
        return self._sdtype

    @property
    def device(self) -> torch.device:
        """Where the table lives: host memory."""
        return torch.device("cpu")

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def is_cuda(self) -> bool:
        return False

    @property
    def requires_grad(self) -> bool:
        return False

    @property
    def is_registered(self) -> bool:
        """True when the host memory is registered with CUDA (zero-copy GPU gathers)."""
        return self._reg is not None and bool(self._reg.chunks)

    @property
    def is_memmap(self) -> bool:
        return self._host is None

    @property
    def cache(self) -> Optional[RowCache]:
        return self._cache

    @property
    def nbytes(self) -> int:
        """Host bytes of the stored rows."""
        return self._shape[0] * self._d * _esize(self._sdtype)

    def dim(self) -> int:
        return len(self._shape)

    def size(self, dim: Optional[int] = None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(math.prod(self._shape))

    def element_size(self) -> int:
        return _esize(self._dtype)

    def __len__(self) -> int:
        return self._shape[0]

    def __repr__(self) -> str:
        backing = "memmap" if self.is_memmap else "host"
        extra = f", storage_dtype={self._sdtype}" if self._sdtype != self._dtype else ""
        cache = f", cache={self._cache!r}" if self._cache is not None else ""
        return (
            f"UnifiedTensor(shape={tuple(self._shape)}, dtype={self._dtype}{extra}, "
            f"backing={backing}, registered={self.is_registered}{cache})"
        )

    # ------------------------------------------------------------------ gathers
    def gather(
        self,
        index: Any,
        *,
        device: Optional[Union[str, torch.device]] = None,
        sort: bool = False,
        max_programs: Optional[int] = None,
        aligned: bool = True,
        backend: str = "auto",
        out: Optional[torch.Tensor] = None,
        validate: Union[bool, str] = True,
    ) -> torch.Tensor:
        """Rows ``index`` (1-D ids) in index order, on ``device`` (default: the index's device).

        CUDA ids, or CPU ids with ``device="cuda"`` (validated on the host, then copied): Triton
        kernel reading host memory, with no device synchronisation, so the gather overlaps with
        training (``sort`` reads rows in id order and writes them back in index order;
        ``max_programs`` caps the grid, by default at ``gather_triton.HOST_READ_PROGRAMS`` (16:
        PCIe bounds the gather, and fewer programs leave the SMs to training);
        ``aligned=False`` disables the 128-byte alignment, for
        comparisons). CPU ids: numba; ``backend="triton"`` runs the Triton kernel instead (on
        CPU tensors under ``TRITON_INTERPRET=1``: how the kernel is tested). ``out`` (CPU only)
        receives the rows, e.g. a pinned buffer.

        ``validate`` applies to ids already on the GPU (CPU ids are always checked on the host,
        for free): ``True`` checks their range on the device without a host round trip; an
        out-of-range id reads as a row of zeros and the IndexError is raised by a later gather
        of this table (once the check has finished) or by :meth:`check`. ``"sync"`` checks
        before returning (one device synchronisation per call: exact errors, for debugging).
        ``False`` skips the check (ids validated by the caller; a bad id still reads zeros,
        never foreign memory).

        Example:
            >>> x = UnifiedTensor(torch.arange(6.0).view(3, 2))
            >>> x.gather(torch.tensor([2, 0])).tolist()
            [[4.0, 5.0], [0.0, 1.0]]
        """
        return self.gather_async(
            index,
            device=device,
            sort=sort,
            max_programs=max_programs,
            aligned=aligned,
            backend=backend,
            out=out,
            validate=validate,
        ).wait()

    def gather_async(
        self,
        index: Any,
        *,
        device: Optional[Union[str, torch.device]] = None,
        sort: bool = False,
        max_programs: Optional[int] = None,
        aligned: bool = True,
        backend: str = "auto",
        out: Optional[torch.Tensor] = None,
        validate: Union[bool, str] = True,
    ) -> Gathered:
        """Start a gather; CUDA ones run on a side stream. ``.wait()`` returns the rows.

        Example:
            >>> x = UnifiedTensor(torch.arange(6.0).view(3, 2))
            >>> x.gather_async(torch.tensor([1])).wait().tolist()
            [[2.0, 3.0]]
        """
        if backend not in ("auto", "numba", "triton"):
            raise ValueError(f"backend must be one of ('auto', 'numba', 'triton'), got {backend!r}")
        if validate not in (True, False, "sync"):
            raise ValueError(f"validate must be True, False or 'sync', got {validate!r}")
        self._poll()  # raise what an earlier gather's device-side range check found
        ids = _validate_ids(index, self._shape[0])
        target = as_device(device) if device is not None else ids.device
        if target.type == "cuda":
            pinning.require_cuda(f"UnifiedTensor.gather(device={str(target)!r})")
            if target.index is None:
                target = torch.device("cuda", torch.cuda.current_device())
            if ids.device.type == "cuda" and ids.device != target:
                raise ValueError(f"index is on {ids.device} but device={target}")
            if out is not None:
                raise ValueError("out= is supported for CPU gathers only")
            if backend == "numba":
                raise ValueError("backend='numba' gathers on the CPU: use device='cpu'")
            if ids.device.type == "cuda" and validate == "sync":
                _check_range_host(ids.cpu(), self._shape[0])  # one synchronisation
            return self._gather_cuda(ids, target, sort, max_programs, aligned, validate is True)
        if target.type != "cpu":
            if device is None:  # the target is the index's own device
                raise ValueError(f"index must be on cpu or cuda, got a tensor on {target}")
            raise ValueError(f"device must be cpu or cuda, got {target}")
        if ids.device.type != "cpu":
            ids = ids.cpu()
            _check_range_host(ids, self._shape[0])
        if backend == "triton":
            if not have_triton():
                raise ImportError("backend='triton' needs triton: pip install 'gnnsys[gpu]'")
            if not _triton_module().INTERPRETED:
                # The compiled kernel would fail in Triton ("0 active drivers") on CPU ids.
                raise ValueError(
                    "backend='triton' with CPU ids needs TRITON_INTERPRET=1 set before gnnsys "
                    "is imported (the Triton interpreter); for the compiled kernel, pass CUDA "
                    "ids or device='cuda' (a CUDA device is "
                    f"{'' if torch.cuda.is_available() else 'not '}available)"
                )
            return Gathered(self._gather_triton_local(ids, sort, max_programs, aligned))
        return Gathered(self._gather_cpu(ids, out))

    def check(self) -> None:
        """Wait for the range checks of every gather with CUDA ids so far; raise IndexError
        for the first out-of-range id found (``validate=True`` reports lazily).

        Example:
            >>> x.check()  # doctest: +SKIP
        """
        self._poll(block=True)

    def _poll(self, block: bool = False) -> None:
        """Pop the finished range checks (all of them, waiting, with ``block``); raise the
        first failure. Never waits unless ``block``: gathers call it on every launch."""
        with self._pending_lock:
            while self._pending:
                ev, mm = self._pending[0]
                if block:
                    ev.synchronize()
                elif not ev.query():
                    return
                self._pending.popleft()
                lo, hi = (int(v) for v in mm.tolist())
                err = _range_error(lo, hi, self._shape[0], " (of an earlier gather with CUDA ids)")
                if err is not None:
                    self._pending.clear()
                    raise err

    def _empty_out(self, n: int, device: Any) -> torch.Tensor:
        return torch.empty((n, *self._shape[1:]), dtype=self._dtype, device=device)

    def _gather_cpu(self, ids: torch.Tensor, out: Optional[torch.Tensor]) -> torch.Tensor:
        n = ids.numel()
        if out is None:
            out = self._empty_out(n, "cpu")
        else:
            want = (n, *self._shape[1:])
            if not isinstance(out, torch.Tensor) or out.device.type != "cpu":
                raise ValueError("out must be a CPU tensor")
            if tuple(out.shape) != want or out.dtype != self._dtype or not out.is_contiguous():
                raise ValueError(
                    f"out must be a contiguous {self._dtype} tensor of shape {want}, got "
                    f"{out.dtype} {tuple(out.shape)}"
                )
            if out.requires_grad:
                raise ValueError("out must not require grad (the gather is not differentiable)")
            if self._overlaps_host(out):
                raise ValueError(
                    "out overlaps the table's own rows: a gather would read rows it has "
                    "already overwritten"
                )
        ids_np = ids.numpy()
        out_np = numpy_bits(out.view(n, self._d))
        c = self._cache
        if c is not None and c.device.type == "cpu" and self.is_memmap:
            hit_pos, hit_slot, miss_pos, miss_ids = gather_cpu.split_hits(ids_np, c.slot_numpy())
            o2 = out.view(n, self._d)
            if len(hit_pos):
                o2[torch.from_numpy(hit_pos)] = c.rows[torch.from_numpy(hit_slot)].to(self._dtype)
            if len(miss_pos):
                tmp = torch.empty((len(miss_ids), self._d), dtype=self._dtype)
                self._fill(miss_ids, numpy_bits(tmp))
                o2[torch.from_numpy(miss_pos)] = tmp
            return out
        self._fill(ids_np, out_np)
        return out

    def _overlaps_host(self, t: torch.Tensor) -> bool:
        """Whether ``t``'s bytes overlap the stored rows (in-memory tables)."""
        host = self._host
        if host is None or host.numel() == 0 or t.numel() == 0:
            return False
        lo, hi = host.data_ptr(), host.data_ptr() + host.numel() * host.element_size()
        t_lo = t.data_ptr()
        return t_lo < hi and lo < t_lo + t.numel() * t.element_size()

    def _fill(self, ids_np: np.ndarray, out_np: np.ndarray) -> None:
        """Rows ``ids_np`` into ``out_np`` (logical dtype bits), widening half storage."""
        if self._kind is None:
            gather_cpu.gather_rows(self._rows_np, ids_np, out_np)
        else:
            gather_cpu.gather_rows_upcast(
                self._rows_np.view(np.uint16), ids_np, out_np, kind=self._kind
            )

    def _fill_storage(self, ids_np: np.ndarray, out_np: np.ndarray) -> None:
        """Rows ``ids_np`` into ``out_np`` in the storage dtype (no widening)."""
        gather_cpu.gather_rows(self._rows_np, ids_np, out_np)

    def _fetch_storage(self, ids: torch.Tensor) -> torch.Tensor:
        out = torch.empty((ids.numel(), self._d), dtype=self._sdtype)
        self._fill_storage(ids.numpy(), numpy_bits(out))
        return out

    def _fetch_storage_sequential(self, ids: torch.Tensor) -> torch.Tensor:
        """``_fetch_storage`` for a file-backed table: one pass over the file in order with
        plain reads (the kernel's readahead works for them; the map itself may be advised
        random), keeping the asked rows. Picking a few million hot rows out of a table bigger
        than RAM this way costs one sequential read instead of a random page fault per row."""
        mm = self._memmap
        assert mm is not None
        row = self._d * mm.dtype.itemsize
        out = torch.empty((ids.numel(), self._d), dtype=self._sdtype)
        if ids.numel() == 0:
            return out
        order = torch.sort(ids).indices.numpy()
        sorted_ids = ids.numpy()[order]
        out_np = numpy_bits(out)
        rows_per_chunk = max(1, SEQUENTIAL_CHUNK_BYTES // row)
        n = self._shape[0]
        with open(mm.filename, "rb") as f:
            k = 0
            while k < sorted_ids.size:
                lo = int(sorted_ids[k])
                hi = min(n, lo + rows_per_chunk)
                f.seek(int(mm.offset) + lo * row)
                block = np.fromfile(f, dtype=mm.dtype, count=(hi - lo) * self._d)
                block = block.reshape(hi - lo, self._d).view(out_np.dtype)
                end = int(np.searchsorted(sorted_ids, hi, side="left"))
                out_np[order[k:end]] = block[sorted_ids[k:end] - lo]
                k = end
        return out

    def _gather_triton_local(
        self, ids: torch.Tensor, sort: bool, max_programs: Optional[int], aligned: bool
    ) -> torch.Tensor:
        if self._host is None:
            raise ValueError(
                "backend='triton' needs an in-memory table (this one is memory-mapped)"
            )
        src = _bits_tensor(self._host)
        out = self._empty_out(ids.numel(), ids.device)
        c = self._cache if self._cache is not None and self._cache.device == ids.device else None
        self._launch(src, src.data_ptr(), ids, out, sort, max_programs, aligned, c)
        return out

    def _launch(self, src, src_ptr, ids, out, sort, max_programs, aligned, c) -> None:
        gt = _triton_module()
        pos = None
        if sort and ids.numel() > 1:
            ids, pos = torch.sort(ids)
        out2 = _bits_tensor(out.view(ids.numel(), self._d))
        gt.gather(
            src,
            src_ptr,
            d=self._d,
            stride=self._d,
            ids=ids,
            out=out2,
            pos=pos,
            slot=c.slot if c is not None else None,
            cache_rows=_bits_tensor(c.rows) if c is not None else None,
            aligned=aligned,
            max_programs=max_programs,
            n_src=self._shape[0],
        )

    def _gather_cuda(
        self,
        ids: torch.Tensor,
        dev: torch.device,
        sort: bool,
        max_programs: Optional[int],
        aligned: bool,
        check: bool = True,
    ) -> Gathered:
        cur = torch.cuda.current_stream(dev)
        side = side_stream(dev)
        host_ids = ids if ids.device.type == "cpu" else None
        if host_ids is None:
            side.wait_stream(cur)  # the ids may still be being produced on the current stream
        c = self._cache if self._cache is not None and self._cache.device == dev else None
        if self._reg is not None:
            self._reg.used_on(dev)  # release() synchronises the devices that read the memory
        mm = None
        with torch.cuda.device(dev), torch.cuda.stream(side):
            if host_ids is not None:
                ids = host_ids.to(dev, non_blocking=True)
            elif check and ids.numel() and self.is_registered:
                # Device-side range check, read back lazily (_poll): no host round trip.
                mm = torch.empty(2, dtype=ids.dtype, pin_memory=True)
                mm.copy_(_device_minmax(ids), non_blocking=True)
            out = self._empty_out(ids.numel(), dev)
            if self.is_registered and have_triton():
                host = self._host
                dev_ptr = self._reg.device_ptr + (host.data_ptr() - self._reg.ptr)
                gt = _triton_module()
                src = gt.HostPointer(dev_ptr, _bits_dtype(self._sdtype), dev, keepalive=self)
                if max_programs is None:  # PCIe-bound: a few programs, the SMs left to training
                    max_programs = gt.HOST_READ_PROGRAMS
                self._launch(src, dev_ptr, ids, out, sort, max_programs, aligned, c)
            elif self.is_registered and self._uva_ok(dev):
                _warn_once(
                    "notriton",
                    "triton is not installed: CUDA gathers use torch.index_select on a "
                    "zero-copy view (install gnnsys[gpu] for the aligned Triton kernel)",
                )
                n, m = self._shape[0], ids.numel()
                # index_select would hit a device-side assert on a bad id: clamp, then zero
                # those rows (the kernel's behaviour); the range check above reports them.
                rows = torch.index_select(self.uva_view(dev), 0, ids.clamp(0, max(n - 1, 0)))
                o2 = out.view(m, self._d)
                o2.copy_(rows.view(m, self._d))
                o2.masked_fill_(((ids < 0) | (ids >= n)).view(m, 1), 0)
            else:
                self._gather_staged(ids, host_ids, out, side, c)
            ev = torch.cuda.Event()
            ev.record(side)
        if host_ids is None:
            ids.record_stream(side)
        if mm is not None:
            with self._pending_lock:
                self._pending.append((ev, mm))
        return Gathered(out, ev)

    def _uva_ok(self, dev: torch.device) -> bool:
        try:
            self.uva_view(dev)
            return True
        except Exception as e:  # depends on the torch build
            _warn_once("uva", f"no zero-copy torch view ({e!r}); CUDA gathers are staged")
            return False

    def _gather_staged(self, ids, host_ids, out, stream, c: Optional[RowCache]) -> None:
        """GPU gather of a table that is not registered: CPU gather into pinned slots + copy."""
        dev = ids.device
        n = ids.numel()
        # CUDA ids come back to the host (a sync on the side stream) and are range-checked
        # there (the numba gather does no bounds checks); CPU ids were checked already.
        if host_ids is None:
            host_ids = ids.cpu()
            _check_range_host(host_ids, self._shape[0])
        ids_np = host_ids.numpy()
        if self._staging is None:
            self._staging = StagingRing()
        o2 = out.view(n, self._d)
        if c is not None:
            hit_pos, hit_slot, miss_pos, miss_ids = gather_cpu.split_hits(ids_np, c.slot_numpy())
        else:
            hit_pos = hit_slot = np.empty(0, np.int64)
            miss_pos, miss_ids = None, ids_np
        if len(miss_ids):
            staged = self._staging.stage(
                miss_ids, self._fill_storage, self._d, self._sdtype, dev, stream=stream
            )
            if miss_pos is None:
                o2.copy_(staged)
            else:
                o2[torch.from_numpy(miss_pos).to(dev)] = staged.to(self._dtype)
        if len(hit_pos):
            hp = torch.from_numpy(hit_pos).to(dev)
            o2[hp] = c.rows[torch.from_numpy(hit_slot).to(dev)].to(self._dtype)

    # ------------------------------------------------------------------ tensor protocol
    def __setitem__(self, index: Any, value: Any) -> None:
        raise TypeError(
            "a UnifiedTensor is read-only (a feature table its gathers read without locks): "
            "change the source tensor and call gnnsys.unified(...) on it again"
        )

    def __getitem__(self, index: Any) -> torch.Tensor:
        if isinstance(index, tuple):
            if not index:
                return self.cpu()
            first, rest = index[0], index[1:]
            res = self[first]
            if not rest:
                return res
            if isinstance(first, (int, np.integer)):
                return res[rest]
            return res[(slice(None), *rest)]
        if isinstance(index, (bool, np.bool_)):
            raise TypeError("a bool is not a row index")
        if isinstance(index, (int, np.integer)):
            n = self._shape[0]
            i = int(index)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of range for {n} rows")
            return self.gather(torch.tensor([i % n]))[0]
        if isinstance(index, slice):
            return self._slice(index)
        if index is None or index is Ellipsis:
            raise TypeError("UnifiedTensor indexing supports ids, masks, ints and slices on rows")
        if isinstance(index, (list, range)):
            index = _list_index(index)
        elif isinstance(index, np.ndarray):
            index = torch.from_numpy(np.ascontiguousarray(index))
        elif not isinstance(index, torch.Tensor):
            raise TypeError(f"cannot index a UnifiedTensor with {type(index).__name__}")
        elif index.dtype == torch.uint8:
            # torch reads a uint8 tensor as a (deprecated) mask, gather() as ids: refuse to guess.
            raise IndexError(
                "a uint8 index tensor is ambiguous (torch reads it as a mask): pass "
                "index.bool() for a mask, or index.long() (or gather()) for ids"
            )
        if index.dtype == torch.bool:
            if index.dim() != 1 or index.numel() != self._shape[0]:
                raise IndexError(
                    f"a boolean mask must have shape ({self._shape[0]},), got {tuple(index.shape)}"
                )
            index = index.nonzero().view(-1)
        if index.dim() != 1:
            flat = self.gather(index.reshape(-1))
            return flat.view(*index.shape, *self._shape[1:])
        return self.gather(index)

    def _slice(self, sl: slice) -> torch.Tensor:
        if self._host is not None:
            rows = self._host[sl]
            if self._sdtype != self._dtype:
                rows = rows.to(self._dtype)
        else:
            rows = torch.from_numpy(np.array(self._rows_np[sl])).to(self._dtype)
        return rows.view(rows.shape[0], *self._shape[1:])

    def index_select(self, dim: int, index: Any) -> torch.Tensor:
        """``torch.index_select`` along rows (``dim=0``) through the fast gather.

        Example:
            >>> UnifiedTensor(torch.arange(4.0)).index_select(0, torch.tensor([3])).tolist()
            [3.0]
        """
        if dim not in (0, -len(self._shape)):
            return torch.index_select(self.cpu(), dim, index)
        if isinstance(index, torch.Tensor) and index.dim() != 1:
            raise IndexError(f"index_select(): index must be 1-D, got shape {tuple(index.shape)}")
        return self.gather(index)

    def embedding(self, input: torch.Tensor) -> torch.Tensor:
        """``F.embedding(input, self)``: rows for an id tensor of any shape."""
        if len(self._shape) != 2:
            raise ValueError(
                f"embedding needs a 2-D table, this one has shape {tuple(self._shape)}"
            )
        if not isinstance(input, (torch.Tensor, np.ndarray)):
            if not isinstance(input, (list, tuple)):
                raise TypeError(
                    f"embedding input must be a tensor of ids, got {type(input).__name__}"
                )
            input = _list_index(input)
        flat = self.gather(input.reshape(-1))
        return flat.view(*input.shape, self._shape[1])

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.index_select, torch.Tensor.index_select):
            p = dict(zip(("input", "dim", "index"), args), **kwargs)
            if isinstance(p.get("input"), UnifiedTensor) and p.get("out") is None:
                return p["input"].index_select(p["dim"], p["index"])
        if func is torch.nn.functional.embedding:
            p = dict(zip(("input", "weight", "padding_idx", "max_norm"), args), **kwargs)
            w = p.get("weight")
            if isinstance(w, UnifiedTensor) and not isinstance(p.get("input"), UnifiedTensor):
                if p.get("max_norm") is not None:
                    raise ValueError("embedding(max_norm=...) would renormalise a read-only table")
                return w.embedding(p["input"])
        return func(*_materialize(args), **_materialize(kwargs))

    def cpu(self) -> torch.Tensor:
        """The whole table as a CPU tensor of ``dtype`` (a view when no conversion is needed)."""
        return self._slice(slice(None))

    def cuda(self, device: Any = None) -> torch.Tensor:
        """The whole table copied to a GPU (as ``Tensor.cuda``)."""
        pinning.require_cuda("UnifiedTensor.cuda()")
        return self.to(torch.device("cuda") if device is None else torch.device("cuda", device))

    def to(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The whole table as a regular tensor with ``Tensor.to``'s arguments (device, dtype).

        Example:
            >>> UnifiedTensor(torch.ones(2, 2)).to(torch.float64).dtype
            torch.float64
        """
        target = torch._C._nn._parse_to(*args, **kwargs)[0]  # as Tensor.to reads its arguments
        if target is not None and target.type == "cuda":
            pinning.require_cuda(f"UnifiedTensor.to({str(target)!r})")
        probe = torch.empty(0, dtype=self._dtype).to(*args, **kwargs)
        t = self.cpu()
        nb = bool(kwargs.get("non_blocking", False))
        return t.to(device=probe.device, dtype=probe.dtype, non_blocking=nb)

    def numpy(self) -> np.ndarray:
        """The whole table as a numpy array of ``dtype`` (bfloat16 has no numpy dtype)."""
        if self._dtype == torch.bfloat16:
            raise TypeError("bfloat16 has no numpy dtype; use .cpu() or .to(torch.float32)")
        return self.cpu().numpy()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.numpy()
        return a.astype(dtype, copy=False) if dtype is not None else a

    def tolist(self) -> list:
        return self.cpu().tolist()

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        """DLPack export of the whole table as a CPU tensor (``torch.as_tensor`` on torch >= 2.4,
        ``np.from_dlpack``). On a CUDA machine ``torch.as_tensor`` prefers
        ``__cuda_array_interface__`` and returns the zero-copy CUDA view of the stored rows."""
        return self.cpu().__dlpack__(*args, **kwargs)

    def __dlpack_device__(self) -> Any:
        return self.cpu().__dlpack_device__()

    # ------------------------------------------------------------------ interop
    @property
    def __cuda_array_interface__(self) -> dict:
        """The zero-copy view of the stored rows for CuPy / Numba (registered tables only).

        It describes the *stored* rows (``storage_dtype``); bfloat16 storage has no typestr.
        """
        if not self.is_registered:
            raise AttributeError(
                "__cuda_array_interface__ exists only for tables registered with CUDA "
                "(in-memory tables on a CUDA machine)"
            )
        if self._sdtype == torch.bfloat16:
            raise AttributeError("__cuda_array_interface__: bfloat16 storage has no typestr")
        self._reg.used_on(torch.cuda.current_device())  # the consumer reads on its device
        return self._cai(self._sdtype)

    def _cai(self, dtype: torch.dtype) -> dict:
        host = self._host
        return {
            "shape": tuple(self._shape),
            "typestr": _NP_DTYPES[dtype].str,
            "data": (self._reg.device_ptr + (host.data_ptr() - self._reg.ptr), False),
            "version": 3,
            "strides": None,
            "stream": None,
        }

    def uva_view(self, device: Any = None) -> torch.Tensor:
        """A CUDA tensor aliasing the registered host rows (storage dtype), zero-copy.

        Reads through it cross PCIe; it keeps this table alive. Useful to feed other CUDA code
        (e.g. ``torch.index_select`` on the view).

        Example:
            >>> v = x.uva_view()  # doctest: +SKIP
        """
        pinning.require_cuda("UnifiedTensor.uva_view()")
        if not self.is_registered:
            raise ValueError("uva_view() needs a table registered with CUDA")
        dev = torch.device("cuda") if device is None else torch.device(device)
        self._reg.used_on(dev)
        dtype = torch.int16 if self._sdtype == torch.bfloat16 else self._sdtype
        t = torch.as_tensor(_CAIHolder(self, self._cai(dtype)), device=dev)
        if self._sdtype == torch.bfloat16:
            t = t.view(torch.bfloat16)
        return t

    def __reduce__(self):
        cache, order, _, cache_device, _ = self._spec
        out_dtype = self._dtype if self._dtype != self._sdtype else None
        if self._host is None:
            mm = self._memmap
            if mm is None or mm.filename is None:
                return (_rebuild, (np.array(self._np_keep), cache, order, cache_device, out_dtype))
            args = (str(mm.filename), int(mm.offset), mm.dtype.str, tuple(mm.shape))
            return (_rebuild_memmap, (*args, cache, order, cache_device, out_dtype))
        # The stored rows travel (shared-memory tensors by handle under torch.multiprocessing).
        return (_rebuild, (self._host.view(self._shape), cache, order, cache_device, out_dtype))


def _rebuild(data, cache, order, cache_device, out_dtype):
    return UnifiedTensor(
        data, cache=cache, cache_order=order, cache_device=cache_device, out_dtype=out_dtype
    )


def _rebuild_memmap(filename, offset, dtype_str, shape, cache, order, cache_device, out_dtype):
    mm = np.memmap(filename, dtype=np.dtype(dtype_str), mode="r", offset=offset, shape=shape)
    return _rebuild(mm, cache, order, cache_device, out_dtype)


def _materialize(obj: Any) -> Any:
    if isinstance(obj, UnifiedTensor):
        return obj.cpu()
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _materialize(v) for k, v in obj.items()}
    return obj


def _esize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


# Base alignment of the tables unified() allocates: one PCIe packet / L2 line.
ALIGN_BYTES = 128


def aligned_empty(
    shape: Union[int, tuple], dtype: torch.dtype = torch.float32, *, align: int = ALIGN_BYTES
) -> torch.Tensor:
    """An uninitialised contiguous CPU tensor whose first byte sits on an ``align``-byte boundary.

    torch's allocator only guarantees 64 bytes, and its large tensors start 64 bytes past a
    128-byte boundary: rows of 128-byte multiples then straddle one more PCIe packet each when
    the GPU reads them zero-copy. This over-allocates by ``align`` bytes and slices; the result
    behaves as ``torch.empty(shape, dtype=dtype)`` (same shape, dtype and strides) and keeps
    the whole buffer alive. Build a table here (or ``aligned_empty(...).copy_(x)``) before
    ``unified()`` to get an aligned table without a second copy.

    Example:
        >>> t = aligned_empty((1000, 100), torch.float32)
        >>> t.data_ptr() % 128, t.shape, t.stride()
        (0, torch.Size([1000, 100]), (100, 1))
    """
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must hold sizes >= 0, got {shape}")
    if isinstance(align, bool) or not isinstance(align, int) or align < 1 or align & (align - 1):
        raise ValueError(f"align must be a power of two >= 1 (bytes), got {align!r}")
    nbytes = math.prod(shape) * _esize(dtype)
    buf = torch.empty(nbytes + align, dtype=torch.uint8)
    off = (-buf.data_ptr()) % align
    # torch's 64-byte base alignment makes ``off`` a multiple of every element size.
    return buf[off : off + nbytes].view(dtype).view(shape)


def _bits_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.uint8 if dtype == torch.bool else dtype


def _bits_tensor(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.uint8) if t.dtype == torch.bool else t


def _check_storage_dtype(storage_dtype: Optional[torch.dtype], dtype: torch.dtype) -> torch.dtype:
    if storage_dtype is None or storage_dtype == dtype:
        return dtype
    if storage_dtype not in _HALF:
        raise ValueError(
            f"storage_dtype must be torch.float16 or torch.bfloat16 (or None), got {storage_dtype}"
        )
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"storage_dtype={storage_dtype} widens to float32/float64 tables, but the table is {dtype}"
        )
    return storage_dtype


def _check_out_dtype(out_dtype: Optional[torch.dtype], sdtype: torch.dtype) -> torch.dtype:
    if out_dtype is None or out_dtype == sdtype:
        return sdtype
    if sdtype not in _HALF or out_dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"out_dtype widens float16/bfloat16 files to float32/float64; got {sdtype} -> {out_dtype}"
        )
    return out_dtype


def _upcast_kind(sdtype: torch.dtype, dtype: torch.dtype) -> Optional[str]:
    if sdtype == dtype:
        return None
    return "bfloat16" if sdtype == torch.bfloat16 else "float16"


def unified(
    x: Any,
    *,
    cache: Union[float, int, None] = None,
    cache_order: Any = None,
    storage_dtype: Optional[torch.dtype] = None,
    cache_device: Optional[Union[str, torch.device]] = None,
) -> UnifiedTensor:
    """Keep a feature table in host memory and gather rows where they are asked for.

    ``x`` is a CPU tensor, a numpy array, or a ``np.memmap`` (tables larger than RAM). On a
    CUDA machine the host memory is registered in place (never copied); ``x[idx_cuda]`` then
    gathers on the GPU over PCIe, ``x[idx_cpu]`` on the CPU. A contiguous CPU table of the
    storage dtype is used as it is, so its base alignment is the caller's (torch's large
    tensors start 64 bytes past a 128-byte boundary: build the table with
    :func:`aligned_empty` for whole-packet GPU reads); when ``unified()`` copies (another
    device, a non-contiguous input, ``storage_dtype`` narrowing) the copy starts on a
    128-byte boundary. ``storage_dtype`` (float16 or
    bfloat16) stores float rows at half width and widens them on gather. ``cache`` (a fraction
    0 < f <= 1 of the rows, or a byte budget) keeps the hottest rows on ``cache_device``
    (default: the current GPU; without CUDA the cache is ignored with a warning), ranked by
    ``cache_order``: a score per row, higher is hotter (e.g. degrees), or a Graph (how often
    each node is a neighbour); None caches the first rows.

    Example:
        >>> x = unified(torch.randn(10_000, 128), storage_dtype=torch.bfloat16)
        >>> x[torch.tensor([1, 2, 3])].dtype
        torch.float32
    """
    return UnifiedTensor(
        x,
        cache=cache,
        cache_order=cache_order,
        storage_dtype=storage_dtype,
        cache_device=cache_device,
    )


def from_file(
    path: Union[str, os.PathLike],
    *,
    cache: Union[float, int, None] = None,
    cache_order: Any = None,
    out_dtype: Optional[torch.dtype] = None,
    cache_device: Optional[Union[str, torch.device]] = None,
    mode: str = "r",
) -> UnifiedTensor:
    """Memory-map a ``.npy`` file as a UnifiedTensor (features larger than RAM).

    Rows are read from the file as gathers touch them (CPU gather; GPU gathers go through a
    pinned staging ring). ``out_dtype`` widens a float16/bfloat16 file on gather.

    Example:
        >>> x = from_file("features.npy", cache=0.05)  # doctest: +SKIP
    """
    try:
        p = os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
    if not p.endswith(".npy"):
        raise ValueError(f"from_file reads .npy files, got {p!r}")
    if mode not in ("r", "r+", "c"):
        raise ValueError(f"mode must be one of ('r', 'r+', 'c'), got {mode!r}")
    mm = _load_npy(p, mode)
    if not mm.dtype.isnative:
        raise ValueError(
            f"{p!r} holds {mm.dtype.str} values, not in the machine's byte order: the map cannot "
            "be converted in place; rewrite the file with "
            "np.save(path, a.astype(a.dtype.newbyteorder('=')))"
        )
    if mm.ndim > 1 and not mm.flags.c_contiguous:
        raise ValueError(
            f"{p!r} is stored in Fortran (column-major) order; rows must be contiguous: "
            "rewrite it with np.save(path, np.ascontiguousarray(a))"
        )
    return UnifiedTensor(
        mm, cache=cache, cache_order=cache_order, cache_device=cache_device, out_dtype=out_dtype
    )


def _load_npy(p: str, mode: str) -> np.memmap:
    """``np.load(p, mmap_mode=mode)``, with errors that name the file: a file that is not a
    .npy (no magic string), a truncated one, one of Python objects (cannot be mapped)."""
    with open(p, "rb") as f:  # FileNotFoundError / IsADirectoryError name the path already
        magic = f.read(len(_NPY_MAGIC))
    if magic != _NPY_MAGIC:
        raise ValueError(
            f"{p!r} is not a .npy file (it does not start with the NumPy magic string)"
        )
    try:
        mm = np.load(p, mmap_mode=mode)
    except (ValueError, EOFError, OSError) as e:
        if isinstance(e, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise
        why = str(e)
        if "greater than file size" in why or "EOF" in why:
            why = f"the file is truncated ({why})"
        raise ValueError(f"{p!r} cannot be memory-mapped as a .npy file: {why}") from e
    if not isinstance(mm, np.memmap):  # pragma: no cover - np.load returns memmap for .npy
        raise ValueError(f"{p!r} could not be memory-mapped")
    return mm


_NPY_MAGIC = b"\x93NUMPY"

unified.from_file = from_file  # gnnsys.unified.from_file(path)
