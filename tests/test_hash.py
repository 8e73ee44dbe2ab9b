"""gnnsys._hash: the one splitmix64 (numba and Python twins agree; the reference value of
Vigna's splitmix64 from state 0)."""

import numpy as np

from gnnsys._hash import GOLDEN, mix64, mix64_py, splitmix64_py


def test_numba_and_python_agree_and_match_the_reference():
    for z in (0, 1, 12345, GOLDEN, (1 << 64) - 1):
        assert int(mix64(np.uint64(z))) == mix64_py(z)
    assert splitmix64_py(0) == 0xE220A8397B1DCDAF  # splitmix64's first output from state 0
    assert mix64_py(1 << 64) == mix64_py(0)  # taken modulo 2^64
