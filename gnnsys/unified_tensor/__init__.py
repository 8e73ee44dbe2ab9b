"""Unified tensor: feature tables kept in host memory, gathered zero-copy by the GPU.

``gnnsys.unified(x)`` wraps a CPU tensor, numpy array or memmap as a :class:`UnifiedTensor`;
``gnnsys.unified.from_file(path)`` memory-maps a ``.npy`` file. Triton is imported only when a
CUDA gather first needs it (the optional ``gpu`` extra).

Example:
    >>> import gnnsys
    >>> x = gnnsys.unified(torch.randn(100_000, 128))
    >>> rows = x[torch.randint(0, 100_000, (1024,))]   # CPU ids: numba gather
"""

from gnnsys.unified_tensor.tensor import Gathered, UnifiedTensor, aligned_empty, from_file, unified

__all__ = ["Gathered", "UnifiedTensor", "aligned_empty", "from_file", "unified"]
