"""Samplers, the one Loader engine, and the PyG and DGL adapters.

Names load on first use, so importing a kernel module (``gnnsys.loaders._kernels``, which
``gnnsys.features`` needs) does not pull in the Loader.

Example:
    >>> from gnnsys.loaders import Loader, NeighborSampler
    >>> loader = Loader(NeighborSampler(graph, [15, 10]), train_idx, batch_size=1024)
"""

from __future__ import annotations

import importlib
from typing import Any

from gnnsys.loaders.base import SampledSubgraph, SampleKey, Sampler

_LAZY = {
    "Batch": "gnnsys.loaders.loader",
    "Loader": "gnnsys.loaders.loader",
    "NeighborSampler": "gnnsys.loaders.neighbor",
    "FullNeighborSampler": "gnnsys.loaders.neighbor",
    "LaborSampler": "gnnsys.loaders.neighbor",
    "TemporalNeighborSampler": "gnnsys.loaders.neighbor",
    "LinkSampler": "gnnsys.loaders.link",
    "NegativeSampling": "gnnsys.loaders.link",
    "ClusterSampler": "gnnsys.loaders.subgraph",
    "SaintSampler": "gnnsys.loaders.subgraph",
    "ShaDowSampler": "gnnsys.loaders.subgraph",
    "InducedSubgraph": "gnnsys.loaders.subgraph",
    "saint_norm": "gnnsys.loaders.subgraph",
}

__all__ = ["SampledSubgraph", "SampleKey", "Sampler", *_LAZY]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'gnnsys.loaders' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value
