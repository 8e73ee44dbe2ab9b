"""gnnsys._numba: prefetch hints never change results; serial twins equal their kernels."""

import numba
import numpy as np

from gnnsys._numba import prefetch, prefetch2d, serial_twin


def test_prefetch_hints_are_harmless():
    @numba.njit(cache=False)
    def f(a, b):
        s = 0
        for i in range(a.shape[0]):
            prefetch(a, (i * 7) % a.shape[0])
            prefetch2d(b, (i * 3) % b.shape[0], i % b.shape[1])
            s += a[i] + b[i % b.shape[0], 0]
        return s

    a, b = np.arange(100), np.arange(40).reshape(10, 4)
    assert f(a, b) == 4950 + sum(b[i % 10, 0] for i in range(100))


@numba.njit(parallel=True, cache=False)
def _square_rows(x, out):
    for i in numba.prange(x.shape[0]):
        out[i] = x[i] * x[i]


def test_serial_twin_is_the_same_kernel_without_parallel():
    twin = serial_twin(_square_rows, "square_rows_serial")
    assert twin.py_func.__qualname__ == "square_rows_serial"
    assert not twin.targetoptions.get("parallel", False)
    x = np.arange(1000, dtype=np.float64)
    a, b = np.empty_like(x), np.empty_like(x)
    _square_rows(x, a)
    twin(x, b)
    assert np.array_equal(a, b) and np.array_equal(a, x * x)
