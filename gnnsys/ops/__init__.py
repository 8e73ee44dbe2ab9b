"""gnnsys.ops: sparse GNN ops, im2win convolution, log modified Bessel functions.

Names load lazily from their modules (``sparse``, ``conv``, ``bessel``, ``vmf``).

Example:
    >>> from gnnsys.ops import spmm, log_iv
"""

from __future__ import annotations

from gnnsys._lazy import lazy_names

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


__getattr__, __dir__ = lazy_names(
    __name__, {k: f"{__name__}.{m}" for k, m in _LAZY.items()}, globals()
)
