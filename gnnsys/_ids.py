"""The serial min/max kernel behind every id range check (``gnnsys._checks.check_index``).

Serial on purpose: torch's parallel ``min``/``max`` wake the intra-op thread pool, which costs
milliseconds per call when loader threads already busy every core; numpy's reductions cost a
few microseconds of call overhead each, which a small batch of seeds notices.
"""

from __future__ import annotations

from numba import njit


@njit(nogil=True, cache=True)
def min_max(a):
    """(min, max) of a non-empty 1-D integer array, serially (no thread pool to wake)."""
    lo = a[0]
    hi = a[0]
    for i in range(1, a.shape[0]):
        v = a[i]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    return lo, hi
