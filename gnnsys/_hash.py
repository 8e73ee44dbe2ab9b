"""splitmix64, the one mixing function behind every counter-based random stream in gnnsys
(sampling kernels, synthetic datasets, dropout masks, batch keys): ``mix64`` for numba kernels
and ``mix64_py`` / ``splitmix64_py`` for Python integers. (The Triton sampler writes the same
finaliser in Triton, ``loaders/_sampler_triton._mix``: a GPU kernel cannot call these.)

Example:
    >>> mix64_py(1) == int(mix64(np.uint64(1)))
    True
"""

from __future__ import annotations

import numpy as np
from numba import njit

GOLDEN = 0x9E3779B97F4A7C15  # the splitmix64 increment (2^64 / golden ratio, odd)
_MASK64 = (1 << 64) - 1
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@njit(nogil=True, cache=True, inline="always")
def mix64(x):
    """The splitmix64 finaliser of a uint64: a bijective avalanche (inlined into callers)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def mix64_py(z: int) -> int:
    """``mix64`` on a Python int (taken modulo 2^64)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def splitmix64_py(x: int) -> int:
    """One splitmix64 step: the state advanced by ``GOLDEN``, then mixed."""
    return mix64_py(x + GOLDEN)
