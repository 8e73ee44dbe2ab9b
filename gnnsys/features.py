"""FeatureStore: named node (or edge) tables and the row gather the loaders run on every batch.

A table may be a torch tensor (CPU or CUDA), a numpy array or memmap, or anything indexable with
an int64 tensor of row ids (a ``UnifiedTensor``, a PyG feature store attribute). CPU tables are
gathered by the numba row gather of ``gnnsys.unified_tensor.gather_cpu`` (rows copied as machine
words, parallel over rows; the loader's hot path: ~sampled nodes x row bytes per batch), straight
into a pinned buffer when the result is headed for a GPU. A ``UnifiedTensor`` headed for a GPU
is gathered there, zero-copy from host memory.
"""

from __future__ import annotations

import sys
import threading
from functools import partial
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from gnnsys._checks import as_device, check_data_device, check_ids, require_cuda
from gnnsys.unified_tensor import UnifiedTensor, gather_cpu

DeviceLike = Union[str, torch.device, None]
# A table's name: "x" (homogeneous), or (node type, name) / ((src, rel, dst), name) when typed.
TableKey = Union[str, Tuple[Any, str]]


def check_table_key(key: Any) -> None:
    """Raise TypeError unless ``key`` is a table name: a non-empty str, or a typed key
    ``(node_type, name)`` / ``((src_type, relation, dst_type), name)``.

    Example:
        >>> check_table_key(("paper", "x"))
    """
    if isinstance(key, str) and key:
        return
    if isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], str) and key[1]:
        t = key[0]
        if isinstance(t, str) and t:
            return
        if isinstance(t, tuple) and len(t) == 3 and all(isinstance(p, str) and p for p in t):
            return
    raise TypeError(
        "table names must be non-empty strings or typed keys (node_type, name) / "
        f"((src_type, relation, dst_type), name), got {key!r}"
    )


def _as_words(a: Any) -> Optional[np.ndarray]:
    """A 2-D numpy view of the rows of a C-contiguous tensor or array as the widest machine
    words dividing a row (None when there is no such view: non-contiguous, empty, exotic)."""
    if isinstance(a, torch.Tensor):
        if a.dim() == 0 or not a.is_contiguous() or a.numel() == 0 or a.device.type != "cpu":
            return None
        try:
            a = a.reshape(a.shape[0], -1).view(torch.uint8).numpy()
        except (RuntimeError, TypeError):
            return None
    elif isinstance(a, np.ndarray):
        if a.ndim == 0 or a.size == 0 or not a.flags.c_contiguous:
            return None
        a = a.reshape(a.shape[0], -1).view(np.uint8)
    else:
        return None
    return gather_cpu.word_view(a)


def gather_rows(src: Any, ids: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``src[ids]`` for a CPU tensor or numpy array, by the numba row gather, into ``out``.

    ``ids`` must be validated int64 CPU row ids (the kernel does no bounds checks).

    Example:
        >>> gather_rows(torch.arange(6.0).view(3, 2), torch.tensor([2, 0])).tolist()
        [[4.0, 5.0], [0.0, 1.0]]
    """
    if out is None:
        out = torch.empty((ids.numel(),) + tuple(src.shape[1:]), dtype=_dtype_of(src))
    if ids.numel() == 0:
        return out
    src_words = _as_words(src)
    out_words = _as_words(out) if src_words is not None else None
    if src_words is None or out_words is None or out_words.dtype != src_words.dtype:
        table = torch.from_numpy(np.array(src)) if isinstance(src, np.ndarray) else src
        torch.index_select(table, 0, ids, out=out)
        return out
    gather_cpu.gather_rows(src_words, ids.numpy(), out_words)
    return out


class BufferPool:
    """Reusable host buffers for gathered rows.

    A fresh large ``torch.empty`` faults in every 4 KiB page on first write (measured here:
    2-4x the cost of the gather itself). The pool hands out views of numpy-allocated buffers
    (huge-page backed where the OS allows) and gives a buffer out again only once nothing
    outside the pool references it: a batch the caller still holds, or a view of it, keeps its
    buffer. Requests under ``min_bytes`` get a plain ``torch.empty`` (small blocks come from
    the allocator's heap, which needs no pool). Thread-safe.

    Example:
        >>> pool = BufferPool()
        >>> t = pool.take(1000, (128,), torch.float32)   # a [1000, 128] float32 tensor
    """

    def __init__(self, max_buffers: int = 6, *, min_bytes: int = 0) -> None:
        self.max_buffers = int(max_buffers)
        self.min_bytes = int(min_bytes)
        self._free: Dict[int, List[np.ndarray]] = {}
        self._lock = threading.Lock()

    def take(self, rows: int, row_shape: Tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised [rows, *row_shape] tensor of ``dtype`` backed by a pooled buffer."""
        width = int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
        shape = (rows,) + tuple(row_shape)
        if rows == 0 or width == 0 or self.max_buffers <= 0 or rows * width < self.min_bytes:
            return torch.empty(shape, dtype=dtype)
        with self._lock:
            bufs = self._free.setdefault(width, [])
            pick = -1
            for i in range(len(bufs)):
                # Two references when idle: the list's and getrefcount's own argument.
                if sys.getrefcount(bufs[i]) == 2 and bufs[i].shape[0] >= rows:
                    pick = i
                    break
            if pick < 0:
                fresh = np.empty((rows + rows // 4 + 1, width), np.uint8)
                idle = [i for i in range(len(bufs)) if sys.getrefcount(bufs[i]) == 2]
                if len(bufs) < self.max_buffers:
                    bufs.append(fresh)
                    pick = len(bufs) - 1
                elif idle:  # replace an idle buffer that was too small
                    pick = idle[0]
                    bufs[pick] = fresh
                else:  # every pooled buffer is held by the caller: an unpooled one
                    return torch.from_numpy(fresh[:rows]).view(dtype).view(shape)
            view = bufs[pick][:rows]  # holds a reference until the tensor is freed
        return torch.from_numpy(view).view(dtype).view(shape)


class FeatureStore:
    """Named tables of per-node (or per-edge) rows, fetched by row ids.

    Values: torch tensors (CPU or CUDA), numpy arrays / memmaps (read in place), or any object
    indexable with an int64 tensor that has ``shape`` or ``__len__`` (``UnifiedTensor``).
    Keys: a name (homogeneous graphs) or a typed key ``(node_type, name)`` /
    ``((src_type, relation, dst_type), name)``, whose rows are ids within that type.

    Example:
        >>> store = FeatureStore(x=torch.randn(100, 16), y=torch.randint(0, 4, (100,)))
        >>> store.fetch("x", torch.tensor([3, 1])).shape
        torch.Size([2, 16])
        >>> typed = FeatureStore({("paper", "x"): torch.randn(50, 8)})
    """

    def __init__(self, tables: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        self._tables: Dict[str, Any] = {}
        self.pool = BufferPool()
        for name, value in {**dict(tables or {}), **kwargs}.items():
            self[name] = value

    # ------------------------------------------------------------------ mapping
    def __setitem__(self, name: TableKey, value: Any) -> None:
        check_table_key(name)
        if isinstance(value, (list, tuple)):
            try:
                value = torch.as_tensor(value)
            except (TypeError, ValueError, RuntimeError) as e:
                raise ValueError(
                    f"table {name!r}: a list must be a rectangular table ({e})"
                ) from None
        if isinstance(value, (torch.Tensor, np.ndarray)):
            if value.ndim == 0:
                raise ValueError(f"table {name!r} must have a row dimension, got a scalar")
            if isinstance(value, torch.Tensor):
                check_data_device(f"table {name!r}", value)
        elif not hasattr(value, "__getitem__") or isinstance(value, (str, bytes, Mapping)):
            raise TypeError(
                f"table {name!r} must be a tensor, numpy array or an object indexable by row ids, "
                f"got {type(value).__name__}"
            )
        rows = self.num_rows_of(value, name)  # must know its length
        self._check_type_rows(name, rows)
        self._tables[name] = value

    def _check_type_rows(self, name: TableKey, rows: int) -> None:
        """Tables of one node (or edge) type hold one row per node of that type: a typed key
        whose row count differs from another table of its type is a ValueError (its valid ids
        would index the other table out of range, or miss rows)."""
        if not isinstance(name, tuple):
            return
        for other, table in self._tables.items():
            if isinstance(other, tuple) and other[0] == name[0] and other != name:
                n = self.num_rows_of(table, other)
                if n != rows:
                    raise ValueError(
                        f"table {name!r} has {rows} rows but table {other!r} of the same type "
                        f"{name[0]!r} has {n}: tables of one type hold one row per node (or edge)"
                    )
                return

    def __getitem__(self, name: TableKey) -> Any:
        return self._tables[self._check_name(name)]

    def __delitem__(self, name: TableKey) -> None:
        del self._tables[self._check_name(name)]

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._tables
        except TypeError:  # unhashable: never a table name
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)

    def keys(self) -> Tuple[str, ...]:
        return tuple(self._tables)

    def __repr__(self) -> str:
        parts = [f"{k}: {_describe(v)}" for k, v in self._tables.items()]
        return f"FeatureStore({', '.join(parts)})"

    def _check_name(self, name: TableKey) -> TableKey:
        if name not in self:
            raise KeyError(f"no table named {name!r}; the store holds {list(self._tables)}")
        return name

    @staticmethod
    def num_rows_of(value: Any, name: Any = "table") -> int:
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape) > 0:
            return int(shape[0])
        try:
            return len(value)
        except TypeError:
            raise TypeError(
                f"{name}: cannot tell how many rows a {type(value).__name__} has"
            ) from None

    def num_rows(self, name: TableKey) -> int:
        """Number of rows of table ``name``."""
        return self.num_rows_of(self[name], name)

    # ------------------------------------------------------------------ fetch
    def fetch(
        self,
        name: TableKey,
        ids: Any,
        device: DeviceLike = None,
        out: Optional[torch.Tensor] = None,
        *,
        pin_memory: Optional[bool] = None,
    ) -> torch.Tensor:
        """Rows ``ids`` of table ``name``, on ``device`` (default: where the table lives).

        CPU tables are gathered by the numba kernel into ``out`` when given, else into a
        pooled buffer (``BufferPool``), or a pinned one when the rows are headed for a GPU
        (``pin_memory=None``: pin exactly then), then copied with ``non_blocking=True``. Ids are validated first: an id outside
        the table raises IndexError naming it.

        Example:
            >>> store.fetch("x", torch.tensor([0, 5]), device="cuda")  # pinned gather + copy
        """
        table = self[name]
        n = self.num_rows_of(table, name)
        target = _check_device(device)
        if target is not None and target.type == "cuda" and not isinstance(table, UnifiedTensor):
            require_cuda(f"FeatureStore.fetch(device={device!r})")  # (UnifiedTensor: its gather)
        if isinstance(table, UnifiedTensor) and isinstance(ids, torch.Tensor) and ids.is_cuda:
            # CUDA ids: the table checks them on the device, without a host sync.
            return _finish(table.gather(ids, device=target or ids.device), None, out)
        ids_t = _check_ids(ids, n, allow_cuda=not isinstance(table, np.ndarray))
        if isinstance(table, torch.Tensor) and table.layout != torch.strided:
            rows = _sparse_rows(table, ids_t, name)
            return _finish(rows if out is None else rows.to_dense(), target, out)
        if isinstance(table, torch.Tensor) and table.device.type != "cpu":
            rows = torch.index_select(table, 0, ids_t.to(table.device))
            return _finish(rows, target, out)
        if isinstance(table, (torch.Tensor, np.ndarray)):
            gather = partial(gather_rows, table)
            return self._host_gather(table, ids_t, target, out, pin_memory, gather)
        if isinstance(table, UnifiedTensor):
            if target is not None and target.type == "cuda":
                # Read from host memory by a GPU kernel: no CPU gather, no staging copy.
                return _finish(table.gather(ids_t, device=target), None, out)
            gather = partial(_unified_into, table)
            return self._host_gather(table, ids_t, target, out, pin_memory, gather)
        rows = table[ids_t]
        if not isinstance(rows, torch.Tensor):
            rows = torch.as_tensor(np.asarray(rows))
        return _finish(rows, target, out)

    def fetch_many(
        self,
        requests: List[Tuple[TableKey, Any]],
        device: DeviceLike = None,
        *,
        pin_memory: Optional[bool] = None,
    ) -> List[torch.Tensor]:
        """``[fetch(name, ids, device) for name, ids in requests]``, except that tables which
        can be read together are: a table with a ``fetch_group`` (not None) is fetched with the
        other requests of its group by one ``type(table).fetch_together(tables, ids)`` call (a
        ``DistTable``'s group is its graph: one request / reply round for all its tables).

        Example:
            >>> x, y = store.fetch_many([("x", input_nodes), ("y", seeds)])
        """
        target = _check_device(device)
        if not isinstance(requests, (list, tuple)):
            raise TypeError(
                f"requests must be a list of (name, ids) pairs, got {type(requests).__name__}"
            )
        for i, r in enumerate(requests):
            if not isinstance(r, (list, tuple)) or len(r) != 2:
                raise ValueError(f"requests[{i}] must be a (name, ids) pair, got {r!r}")
        out: List[Optional[torch.Tensor]] = [None] * len(requests)
        groups: Dict[Any, List[int]] = {}
        for i, (name, _) in enumerate(requests):
            group = getattr(self[name], "fetch_group", None)
            if group is None:
                continue
            groups.setdefault(group, []).append(i)
        # every group's ids checked before any group is read (a group's read may be a
        # collective: no rank may fail half-way through a batch's reads)
        checked = {
            i: _check_ids(requests[i][1], self.num_rows(requests[i][0]), False)
            for members in groups.values()
            for i in members
        }
        for members in groups.values():
            tables = [self[requests[i][0]] for i in members]
            got = type(tables[0]).fetch_together(tables, [checked[i] for i in members])
            for i, rows in zip(members, got):
                out[i] = _finish(rows, target, None)
        return [
            o if o is not None else self.fetch(name, ids, device, pin_memory=pin_memory)
            for o, (name, ids) in zip(out, requests)
        ]

    def _host_gather(
        self,
        table: Any,
        ids: torch.Tensor,
        target: Optional[torch.device],
        out: Optional[torch.Tensor],
        pin_memory: Optional[bool],
        gather: Callable[[torch.Tensor, torch.Tensor], Any],
    ) -> torch.Tensor:
        """Rows gathered on the host by ``gather(ids, buffer)`` into ``out`` when it lives where
        the rows go, else into a pinned buffer (``pin_memory``; None: when headed for a GPU) or
        a pooled one, then moved to ``target``."""
        if ids.device.type != "cpu":
            ids = ids.cpu()
        if out is not None and (target is None or out.device == target):
            _check_out(out, table, ids.numel())
            gather(ids, out)
            return out
        headed_for_gpu = target is not None and target.type == "cuda"
        pin = headed_for_gpu if pin_memory is None else bool(pin_memory)
        shape = (ids.numel(),) + tuple(table.shape[1:])
        dtype = _dtype_of(table)
        if pin and torch.cuda.is_available():
            buf = torch.empty(shape, dtype=dtype, pin_memory=True)
        else:
            buf = self.pool.take(ids.numel(), tuple(table.shape[1:]), dtype)
        gather(ids, buf)
        return _finish(buf, target, out)


def _check_device(device: DeviceLike) -> Optional[torch.device]:
    """``device`` as a torch.device (None stays None): cpu or cuda, else a ValueError naming it
    (rows sent to the meta device would hold no data)."""
    if device is None:
        return None
    dev = as_device(device)
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, got {device!r}")
    return dev


def _check_ids(ids: Any, n: int, allow_cuda: bool) -> torch.Tensor:
    return check_ids("ids", ids, n, exc=IndexError, allow_cuda=allow_cuda)


def _check_out(out: torch.Tensor, table: Any, count: int) -> None:
    want = (count,) + tuple(table.shape[1:])
    if tuple(out.shape) != want:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {want}")
    dtype = _dtype_of(table)
    if out.dtype != dtype:
        raise ValueError(f"out has dtype {out.dtype}, the table holds {dtype}")
    if out.device.type != "cpu" or not out.is_contiguous():
        raise ValueError("out must be a contiguous CPU tensor")


def _finish(rows: torch.Tensor, target: Optional[torch.device], out: Optional[torch.Tensor]):
    if target is not None and rows.device != target:
        rows = rows.to(target, non_blocking=rows.is_pinned())
    if out is not None:
        out.copy_(rows)
        return out
    return rows


def _sparse_rows(table: torch.Tensor, ids: torch.Tensor, name: Any) -> torch.Tensor:
    """Rows ``ids`` of a sparse COO table (bag-of-words features, as PyG slices them with
    ``index_select``), a sparse COO tensor; other sparse layouts are a clear TypeError."""
    if table.layout != torch.sparse_coo:
        raise TypeError(
            f"table {name!r} is a {table.layout} tensor: rows can be gathered from dense and "
            "sparse COO tables only (convert it with .to_sparse_coo() or .to_dense())"
        )
    return table.index_select(0, ids.to(table.device))


def _unified_into(table: UnifiedTensor, ids: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    return table.gather(ids, out=out)


def _dtype_of(table: Any) -> torch.dtype:
    """The torch dtype of a tensor, UnifiedTensor or numpy table's rows."""
    return table.dtype if isinstance(table.dtype, torch.dtype) else _torch_dtype(table)


def _torch_dtype(a: np.ndarray) -> torch.dtype:
    return torch.from_numpy(np.empty(0, dtype=a.dtype)).dtype


def _describe(v: Any) -> str:
    shape = tuple(getattr(v, "shape", ()))
    kind = type(v).__name__
    dtype = getattr(v, "dtype", "")
    return f"{kind}{list(shape)} {dtype}".strip()
