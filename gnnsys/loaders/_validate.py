"""Id validation for the loaders' hot paths.

Same checks and messages as ``gnnsys._checks.check_index`` (integer dtype, 1-D, device, range),
but the range check is a serial numba min/max: torch's parallel ``min``/``max`` wake the intra-op
thread pool, which costs milliseconds per call when loader threads already busy every core.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from gnnsys._checks import as_cpu_tensor
from gnnsys.loaders._kernels import min_max

_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def check_ids(
    name: str,
    value: Any,
    num: Optional[int],
    *,
    allow_empty: bool = True,
    exc: type = ValueError,
    allow_cuda: bool = False,
) -> torch.Tensor:
    """Validate a 1-D tensor of ids (integer dtype, on the CPU, 0 <= id < num) -> int64.

    Example:
        >>> check_ids("seeds", torch.tensor([0, 3]), 4).tolist()
        [0, 3]
    """
    t = as_cpu_tensor(name, value)
    if t.device.type != "cpu" and not (allow_cuda and t.device.type == "cuda"):
        raise ValueError(f"{name} must be on cpu, got a tensor on {t.device}")
    if t.dtype not in _INT_DTYPES:
        raise ValueError(f"{name} must hold integer ids, got dtype {t.dtype}")
    if t.dim() != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {tuple(t.shape)}")
    if not allow_empty and t.numel() == 0:
        raise ValueError(f"{name} is empty")
    t = t.long()
    if t.numel() == 0:
        return t
    if t.device.type == "cpu":
        lo, hi = min_max(t.contiguous().numpy())
    else:
        lo, hi = (int(v) for v in torch.aminmax(t))
    if lo < 0:
        raise exc(f"{name} holds a negative id: {int(lo)}")
    if num is not None and hi >= num:
        raise exc(f"{name} holds id {int(hi)}, out of range for {num} rows (valid: 0..{num - 1})")
    return t if t.is_contiguous() else t.contiguous()


def as_numpy_ids(t: torch.Tensor) -> np.ndarray:
    """A contiguous int64 numpy view of a CPU id tensor."""
    return t.contiguous().numpy()
