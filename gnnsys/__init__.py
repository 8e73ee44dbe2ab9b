"""gnnsys: load data for and train graph neural networks on graphs too big for one GPU.

The public face. Heavy submodules load on first use, so ``import gnnsys`` stays cheap.

Example:
    >>> import gnnsys
    >>> x = gnnsys.unified(x)          # features stay in host memory, gathered zero-copy
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gnnsys._lazy import lazy_names

if TYPE_CHECKING:  # imported on first use: `import gnnsys` (and `gnnsys --help`) skip torch
    from gnnsys.graph import Graph  # noqa: F401

__version__ = "0.1.0"

# name -> module that defines it, imported lazily on first access.
_LAZY = {
    "Graph": "gnnsys.graph",
    "unified": "gnnsys.unified_tensor",
    "UnifiedTensor": "gnnsys.unified_tensor",
    "FeatureStore": "gnnsys.features",
    "Loader": "gnnsys.loaders",
    "NeighborLoader": "gnnsys.loaders.pyg",
    "LinkNeighborLoader": "gnnsys.loaders.pyg",
    "Block": "gnnsys.block",
    "datasets": "gnnsys.datasets",
    "ops": "gnnsys.ops",
    "nn": "gnnsys.nn",
    "loaders": "gnnsys.loaders",
    "pipeline_parallel": "gnnsys.pipeline_parallel",
    "unified_tensor": "gnnsys.unified_tensor",
}

__all__ = ["__version__", *_LAZY]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
