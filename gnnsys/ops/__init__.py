"""gnnsys.ops: sparse GNN ops, im2win convolution, log modified Bessel functions.

Names load lazily from their modules (``sparse``, ``conv``, ``bessel``, ``vmf``).

Example:
    >>> from gnnsys.ops import spmm, log_iv
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "spmm": "sparse",
    "sddmm": "sparse",
    "segment_reduce": "sparse",
    "edge_softmax": "sparse",
    "im2win_conv2d": "conv",
    "log_iv": "bessel",
    "log_ive": "bessel",
    "log_kv": "bessel",
    "log_kve": "bessel",
    "vmf_log_normalizer": "vmf",
    "fit_vmf": "vmf",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'gnnsys.ops' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gnnsys.ops.{mod}"), name)
    globals()[name] = value
    return value
