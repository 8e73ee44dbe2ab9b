"""Input validation shared by every public entry point.

Numba and Triton kernels do no bounds checks of their own, so every public function validates
its index arguments here first; errors name the argument and the offending value.
"""

from __future__ import annotations

import functools
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

ArrayLike = Union[torch.Tensor, np.ndarray]

_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def as_cpu_tensor(name: str, value: object) -> torch.Tensor:
    """Return ``value`` (tensor, numpy array or sequence) as a CPU tensor without copying when possible."""
    if isinstance(value, torch.Tensor):
        t = value
    elif isinstance(value, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(value))
    elif isinstance(value, (list, tuple, range)):
        # An empty sequence has no dtype: int64, as empty ids (torch would pick float32).
        t = torch.as_tensor(list(value)) if len(value) else torch.empty(0, dtype=torch.int64)
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")
    return t


def check_index(
    name: str,
    value: object,
    num: Optional[int] = None,
    *,
    device: Optional[Union[str, torch.device]] = "cpu",
    allow_cuda: bool = False,
    allow_empty: bool = True,
    exc: type = ValueError,
    unit: str = "nodes",
) -> torch.Tensor:
    """Validate a 1-D tensor of ids and return it as contiguous int64: the one id check.

    Checks: integer dtype (a float or bool tensor is an error, not silently cast), one dimension,
    the expected device (``device=None`` accepts any; ``allow_cuda`` also accepts CUDA),
    non-empty unless ``allow_empty``, non-negative and below ``num``. The range error is ``exc``
    (ValueError by default; gathers use IndexError like torch). ``unit`` names what the ids
    count in the messages: ``"nodes"`` (graph node ids) or ``"rows"`` (table rows, the loaders'
    and FeatureStore's ``check_ids``). The range check on the CPU is a serial numba min/max
    (``gnnsys._ids``), which wakes no thread pool.

    Example:
        >>> check_index("seeds", torch.tensor([0, 3]), 4).tolist()
        [0, 3]
    """
    t = as_cpu_tensor(name, value)
    if device is not None:
        want = torch.device(device).type
        if t.device.type != want and not (allow_cuda and t.device.type == "cuda"):
            raise ValueError(f"{name} must be on {want}, got a tensor on {t.device}")
    if t.dtype not in _INT_DTYPES:
        what = "node ids" if unit == "nodes" else "ids"
        raise ValueError(f"{name} must hold integer {what}, got dtype {t.dtype}")
    if t.dim() != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {tuple(t.shape)}")
    if not allow_empty and t.numel() == 0:
        raise ValueError(f"{name} is empty")
    t = t.long().contiguous()
    if t.numel() == 0:
        return t
    check_data_device(name, t)
    lo, hi = id_range(t)
    if lo < 0:
        raise exc(f"{name} holds a negative id: {lo}")
    if num is not None and hi >= num:
        valid = f"valid: 0..{num - 1}" if num > 0 else "there are none"
        raise exc(f"{name} holds id {hi}, out of range for {num} {unit} ({valid})")
    return t


def id_range(t: torch.Tensor) -> Tuple[int, int]:
    """(min, max) of a non-empty 1-D integer tensor: on the CPU the serial numba scan
    (``gnnsys._ids``, which wakes no thread pool), elsewhere ``torch.aminmax``."""
    if t.device.type == "cpu":
        from gnnsys._ids import min_max  # numba: imported on the first range check only

        lo, hi = min_max(t.numpy())
    else:
        lo, hi = torch.aminmax(t)
    return int(lo), int(hi)


# Feature tables up to this size are scanned for NaN/inf when a dataset is built; a bigger one
# (an out-of-core map: a scan would read it all from disk) is not, and a NaN that reaches
# the loss stops ``gnnsys train`` with an error instead.
FINITE_CHECK_BYTES = 1 << 30
_FINITE_CHECK_ROWS = 1 << 16  # rows per step: the scan's temporary stays small


def check_finite_rows(name: str, x: torch.Tensor) -> None:
    """Raise ValueError naming the first row of ``x`` that holds NaN or inf (a floating
    tensor of at most ``FINITE_CHECK_BYTES``; bigger ones are left unscanned)."""
    if not x.dtype.is_floating_point or x.numel() * x.element_size() > FINITE_CHECK_BYTES:
        return
    if x.numel() == 0:  # (reshape(0, -1) is ambiguous)
        return
    rows = x.reshape(x.shape[0], -1) if x.dim() else x.reshape(1, 1)
    for lo in range(0, rows.shape[0], _FINITE_CHECK_ROWS):
        ok = torch.isfinite(rows[lo : lo + _FINITE_CHECK_ROWS]).all(dim=1)
        if not bool(ok.all()):
            row = lo + int((~ok).nonzero()[0, 0])
            bad = int((~torch.isfinite(rows[row])).sum())
            raise ValueError(
                f"{name} holds NaN or inf: row {row} has {bad} such value(s); replace them "
                "(e.g. torch.nan_to_num) or drop the nodes: a GNN spreads a NaN to every "
                "neighbour's output"
            )


def warn_split_problems(splits: Dict[str, torch.Tensor], where: str) -> None:
    """Warn when a split lists a node twice or two splits share nodes (a test node that is
    also trained on inflates the reported accuracy). Ids are int64 CPU tensors, checked."""
    uniq = {}
    for name, ids in splits.items():
        s = np.sort(ids.numpy())
        dup = s[1:][s[1:] == s[:-1]]
        if dup.size:
            warnings.warn(
                f"{where}: {name} lists {np.unique(dup).size} node(s) more than once "
                f"(e.g. node {int(dup[0])}); they are trained or scored once per listing",
                stacklevel=4,  # the caller of the dataset's __init__
            )
        uniq[name] = np.unique(s) if dup.size else s
    names = list(uniq)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            common = np.intersect1d(uniq[a], uniq[b], assume_unique=True)
            if common.size:
                warnings.warn(
                    f"{where}: {a} and {b} share {common.size} node(s) (e.g. node "
                    f"{int(common[0])}); accuracy on {b} is not measured on unseen nodes",
                    stacklevel=4,  # the caller of the dataset's __init__
                )


# The loaders' and FeatureStore's name for the same check: ids are rows of a table.
check_ids = functools.partial(check_index, unit="rows")


def check_data_device(name: str, t: torch.Tensor) -> None:
    """A tensor whose values are read must hold data: on the CPU or a GPU, not the meta device
    (torch's own message, "Tensor.item() cannot be called on meta tensors", names nothing)."""
    if t.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} must be on a cpu or cuda device, got a tensor on {t.device}")


def as_device(device: object, name: str = "device") -> torch.device:
    """``torch.device(device)``, a ValueError naming ``device`` when it is not one (torch raises
    a RuntimeError listing every backend, or one about accelerators for an int)."""
    try:
        return torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError, ValueError) as e:
        raise ValueError(f"{name}={device!r} is not a valid device ({e})") from None


def data_device(device: object, name: str = "device") -> torch.device:
    """``as_device``, refusing device types other than cpu and cuda: a tensor on ``meta`` has
    no data (a batch moved there is empty), and no other backend runs these kernels."""
    dev = as_device(device, name)
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} must be a cpu or cuda device, got {device!r}")
    return dev


def check_choice(name: str, value: object, allowed: tuple) -> None:
    """Raise ValueError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def check_cores(name: str, cores: Optional[Sequence[int]], available: List[int]) -> List[int]:
    """``cores`` as a list of CPUs this process may use ([] for None), or a clear error
    (``available``: ``sorted(os.sched_getaffinity(0))``).

    Example:
        >>> check_cores("loader_cores", [0], [0, 1])
        [0]
    """
    if cores is None:
        return []
    out = list(cores)
    bad = [c for c in out if isinstance(c, bool) or not isinstance(c, (int, np.integer))]
    if bad:
        raise TypeError(f"{name} must be CPU numbers (ints), got {bad[:3]}")
    missing = sorted(set(int(c) for c in out) - set(available))
    if missing:
        raise ValueError(f"{name} names CPUs {missing} that this process may not use ({available})")
    return [int(c) for c in out]


def index_dtype(num_nodes: int) -> torch.dtype:
    """int32 ids below 2^31 nodes, else int64 (DESIGN.md: Graph.indices)."""
    return torch.int32 if num_nodes < 2**31 else torch.int64


def require_cuda(what: str) -> None:
    """Raise a ValueError naming ``what`` (the call and argument that asked for a GPU) unless a
    CUDA device is available: checked before anything touches CUDA, so that a CPU-only machine
    gets this instead of torch's "Torch not compiled with CUDA enabled" or Triton's "0 active
    drivers".

    Example:
        >>> require_cuda("gather(device='cuda')")  # doctest: +SKIP
    """
    if not torch.cuda.is_available():
        raise ValueError(
            f"{what} needs a CUDA device; none is available (torch.cuda.is_available() is False)"
        )


def nccl_device(local_rank: int, local_world_size: int, device_count: Optional[int] = None):
    """The GPU of one NCCL rank: ``cuda:local_rank``, one GPU per rank on a machine.

    NCCL refuses two ranks on one GPU only at the first collective ("Duplicate GPU detected"),
    after every rank has loaded its data; this says so before the process group starts.

    Example:
        >>> nccl_device(1, 2, device_count=4)
        device(type='cuda', index=1)
    """
    count = torch.cuda.device_count() if device_count is None else int(device_count)
    if count < 1:
        raise ValueError(
            "backend 'nccl' needs a CUDA GPU per rank and this machine has none; "
            "use gloo (--device cpu)"
        )
    if local_world_size > count:
        raise ValueError(
            f"NCCL needs one GPU per rank: {local_world_size} ranks on this machine but "
            f"{count} GPU(s); run at most {count} rank(s) per machine (--nproc {count}) or use "
            "gloo (--device cpu)"
        )
    if not 0 <= local_rank < local_world_size:
        raise ValueError(f"local rank {local_rank} is outside 0..{local_world_size - 1}")
    return torch.device("cuda", int(local_rank))


def triton_device_error(what: str, device: torch.device) -> str:
    """The message for a forced Triton backend on non-CUDA tensors whose kernels were compiled
    (not interpreted): no GPU at all, or tensors on the wrong device.

    Example:
        >>> raise RuntimeError(triton_device_error("log_iv backend='triton'", x.device))
    """
    how = (
        "set TRITON_INTERPRET=1 before importing gnnsys to interpret the kernels on CPU "
        "tensors (slow; for tests)"
    )
    if not torch.cuda.is_available():
        return (
            f"{what} needs a CUDA device; none is available (torch.cuda.is_available() is "
            f"False). Use the numba backend (CPU) or {how}"
        )
    return f"{what} runs on CUDA tensors, got tensors on {device}: move them with .cuda(), or {how}"
