"""Samplers, the one Loader engine, and the PyG and DGL adapters.

Names load on first use, so importing a kernel module (``gnnsys.loaders._kernels``, which
``gnnsys.features`` needs) does not pull in the Loader.

Example:
    >>> from gnnsys.loaders import Loader, NeighborSampler
    >>> loader = Loader(NeighborSampler(graph, [15, 10]), train_idx, batch_size=1024)
"""

from __future__ import annotations

from gnnsys._lazy import lazy_names
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


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
