"""The RMAT generator: shape, determinism (seed and thread count), the Graph500 recursion, errors."""

import numba
import numpy as np
import pytest

from gnnsys.datasets import rmat as R
from gnnsys.datasets import rmat_edges


def _with_threads(k, fn):
    old = numba.get_num_threads()
    numba.set_num_threads(min(k, numba.config.NUMBA_NUM_THREADS))
    try:
        return fn()
    finally:
        numba.set_num_threads(old)


def test_shape_dtype_range():
    src, dst = rmat_edges(10, 8, seed=3)
    assert src.shape == dst.shape == (8 * 2**10,)
    assert src.dtype == dst.dtype == np.int64
    assert src.min() >= 0 and dst.min() >= 0
    assert max(src.max(), dst.max()) < 2**10


def test_fractional_edge_factor():
    src, _ = rmat_edges(8, 2.5, seed=0)
    assert src.size == round(2.5 * 256)


def test_same_seed_same_edges_different_seed_differs():
    a = rmat_edges(11, 4, seed=7)
    b = rmat_edges(11, 4, seed=7)
    c = rmat_edges(11, 4, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_thread_count_does_not_change_edges():
    one = _with_threads(1, lambda: rmat_edges(12, 8, seed=5))
    two = _with_threads(2, lambda: rmat_edges(12, 8, seed=5))
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


@pytest.mark.parametrize("scale", [1, 2, 7, 12])
def test_scramble_is_a_permutation(scale):
    mask, shift, m1, m2, add = R.scramble_params(scale, seed=11)
    ids = np.array(
        [int(R.scramble(np.uint64(r), mask, shift, m1, m2, add)) for r in range(2**scale)]
    )
    assert sorted(ids.tolist()) == list(range(2**scale))
    if scale >= 7:
        assert not np.array_equal(ids, np.arange(2**scale))  # it does scramble


def _unscrambled(scale, seed, src, dst):
    mask, shift, m1, m2, add = R.scramble_params(scale, seed)
    fwd = np.array(
        [int(R.scramble(np.uint64(r), mask, shift, m1, m2, add)) for r in range(2**scale)]
    )
    inv = np.empty_like(fwd)
    inv[fwd] = np.arange(2**scale)
    return inv[src], inv[dst]


def test_quadrant_probabilities_follow_graph500_parameters():
    # Undo the scramble, then every level's (src bit, dst bit) must be drawn with (a, b, c, d).
    scale, seed = 10, 2
    src, dst = rmat_edges(scale, 64, seed=seed)
    us, ud = _unscrambled(scale, seed, src, dst)
    for level in (scale - 1, scale // 2, 0):
        sb, db = (us >> level) & 1, (ud >> level) & 1
        freq = [np.mean((sb == i) & (db == j)) for i, j in ((0, 0), (0, 1), (1, 0), (1, 1))]
        np.testing.assert_allclose(freq, [0.57, 0.19, 0.19, 0.05], atol=0.01)


def test_custom_parameters_uniform_graph():
    # a = b = c = d = 1/4 is the Erdos-Renyi limit: degrees lose their skew.
    src, dst = rmat_edges(10, 32, a=0.25, b=0.25, c=0.25, seed=1)
    deg = np.bincount(np.concatenate([src, dst]), minlength=2**10)
    assert deg.max() < 2 * deg.mean()


def test_degree_skew():
    src, dst = rmat_edges(14, 8, seed=0)
    deg = np.bincount(np.concatenate([src, dst]), minlength=2**14)
    assert deg.max() > 50 * deg.mean()
    assert np.mean(deg == 0) > 0.2  # RMAT leaves many ids isolated


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(scale=0, edge_factor=4), ValueError, "scale"),
        (dict(scale=41, edge_factor=4), ValueError, "scale"),
        (dict(scale=True, edge_factor=4), TypeError, "scale"),
        (dict(scale=4.0, edge_factor=4), TypeError, "scale"),
        (dict(scale=4, edge_factor=0), ValueError, "edge_factor"),
        (dict(scale=4, edge_factor=float("nan")), ValueError, "edge_factor"),
        (dict(scale=4, edge_factor="8"), TypeError, "edge_factor"),
        (dict(scale=4, edge_factor=4, a=0.6, b=0.3, c=0.3), ValueError, "a \\+ b \\+ c"),
        (dict(scale=4, edge_factor=4, b=-0.1), ValueError, "b must be"),
        (dict(scale=4, edge_factor=4, seed=-1), ValueError, "seed"),
        (dict(scale=4, edge_factor=4, seed=1.5), TypeError, "seed"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        rmat_edges(**kwargs)


def test_hash_streams_are_distinct_and_seeded():
    keys = {int(R.stream_key(s, k)) for s in range(4) for k in range(1, 9)}
    assert len(keys) == 32
