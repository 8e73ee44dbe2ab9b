"""Samplers, the one Loader engine, and the PyG and DGL adapters."""

from gnnsys.loaders.base import SampledSubgraph, Sampler, SampleKey

__all__ = ["SampledSubgraph", "Sampler", "SampleKey"]
