"""RMAT (recursive matrix) edge generator: parallel numba, deterministic for a seed.

Each edge descends ``scale`` levels of the adjacency matrix, picking a quadrant per level with
probabilities (a, b, c, d = 1 - a - b - c); the Graph500 parameters a=0.57, b=c=0.19 give the
power-law degrees of real graphs. Randomness is counter-based: edge ``i`` hashes (seed, stream, i)
with splitmix64 (one 16-bit draw per level, so probabilities resolve to 1/65536), and the output
does not depend on how edges are split among threads. Node ids are scrambled by a seeded
bijection of [0, 2^scale) (as Graph500 does), so hubs are not the low ids.

The same kernel can plant communities for ``synthetic``: with probability ``intra`` an edge's
destination is replaced by a node of the source's class with the same number of one bits in its
unscrambled id. Every RMAT node with that many one bits has the same expected degree, so the swap
keeps the degree distribution while making the edge intra-class.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
from numba import njit, prange

from gnnsys._hash import GOLDEN, mix64
from gnnsys._hash import mix64_py as _mix_py

_GOLDEN = np.uint64(GOLDEN)
_S32 = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)
_LOW16 = np.uint64(0xFFFF)
_S16 = np.uint64(16)

# Random streams: one key per purpose, so draws for different purposes never collide.
STREAM_RMAT = 1
STREAM_INTRA = 2
STREAM_CLASS = 4
STREAM_SCRAMBLE = 5
STREAM_CENTROID = 6
STREAM_NOISE = 7
STREAM_SPLIT = 8

MAX_SCALE = 40


# ---------------------------------------------------------------------- hashing (python side)
def stream_key(seed: int, stream: int) -> np.uint64:
    """The 64-bit key of one random stream of ``seed`` (kernels hash (key, counter))."""
    return np.uint64(_mix_py(_mix_py(seed) ^ _mix_py(0xD1B54A32D192ED03 * (stream + 1))))


# ---------------------------------------------------------------------- hashing (numba side)
@njit(nogil=True, cache=True)
def hash_at(key, counter):
    """The ``counter``-th 64-bit random number of stream ``key`` (counter >= 0)."""
    return mix64(key + np.uint64(counter) * _GOLDEN)


@njit(nogil=True, cache=True)
def scramble(x, mask, shift, m1, m2, add):
    """A bijection of [0, mask]: odd multiplies and xor-shifts, all modulo 2^scale."""
    x = (x * m1) & mask
    x ^= x >> shift
    x = (x * m2 + add) & mask
    x ^= x >> shift
    x = (x * m1) & mask
    x ^= x >> shift
    return x


def scramble_params(scale: int, seed: int) -> Tuple[np.uint64, ...]:
    """(mask, shift, m1, m2, add) for ``scramble`` on ``scale`` bits; m1 and m2 are odd."""
    k = _mix_py(int(stream_key(seed, STREAM_SCRAMBLE)))
    mask = (1 << scale) - 1
    m1 = (_mix_py(k + 1) | 1) & mask
    m2 = (_mix_py(k + 2) | 1) & mask
    add = _mix_py(k + 3) & mask
    shift = max(1, (scale + 1) // 2)
    return (np.uint64(mask), np.uint64(shift), np.uint64(m1), np.uint64(m2), np.uint64(add))


@njit(nogil=True, cache=True)
def _one_edge(i, scale, ta, tab, tabc, key_rmat):
    # Descend `scale` levels, MSB first; each level compares a 16-bit random number q with the
    # thresholds 2^16 * (a, a+b, a+b+c): u's bit is q >= a+b, v's bit is 1 in quadrants b and d.
    # Branch-free (the quadrant is unpredictable); four levels per 64-bit hash.
    u = np.uint64(0)
    v = np.uint64(0)
    ones = np.uint64(0)
    r = np.uint64(0)
    hashes = (scale + 3) // 4
    one = np.uint64(1)
    for lvl in range(scale):
        if lvl % 4 == 0:
            r = hash_at(key_rmat, i * hashes + lvl // 4)
        else:
            r >>= _S16
        q = r & _LOW16
        ge_a = np.uint64(q >= ta)
        ge_ab = np.uint64(q >= tab)
        vb = ge_a ^ ge_ab ^ np.uint64(q >= tabc)
        u = (u << one) | ge_ab
        v = (v << one) | vb
        ones += vb
    return u, v, np.int64(ones)


@njit(nogil=True, parallel=True, cache=True)
def _rmat_kernel(
    start,
    num_edges,
    scale,
    ta,
    tab,
    tabc,
    key_rmat,
    mask,
    shift,
    m1,
    m2,
    add,
    intra,
    key_intra,
    key_class,
    num_classes,
    bucket_ptr,
    bucket_ids,
    near,
    out_src,
    out_dst,
    both_directions,
):
    # Edges start..start+num_edges-1 of the stream (edge i depends on i only: chunks of any size
    # concatenate to the same list), written from out_*[0].
    width = scale + 1
    for j in prange(num_edges):
        i = start + j
        u, v, ones = _one_edge(i, scale, ta, tab, tabc, key_rmat)
        su = scramble(u, mask, shift, m1, m2, add)
        sv = np.int64(-1)
        if intra > 0:
            # One hash: the high half decides "intra", the low half picks within the bucket.
            h = hash_at(key_intra, i)
            if (h >> _S32) < intra:
                c = class_of(key_class, su, num_classes)
                k = near[c, ones]
                if k >= 0:
                    b = c * width + k
                    lo = bucket_ptr[b]
                    size = np.uint64(bucket_ptr[b + 1] - lo)
                    sv = np.int64(bucket_ids[lo + np.int64(((h & _LOW32) * size) >> _S32)])
        if sv < 0:
            sv = np.int64(scramble(v, mask, shift, m1, m2, add))
        out_src[j] = su
        out_dst[j] = sv
        if both_directions:
            out_src[num_edges + j] = sv
            out_dst[num_edges + j] = su


@njit(nogil=True, cache=True)
def class_of(key, node, num_classes):
    """The planted class of (scrambled) node id ``node``: a hash, so no table is read."""
    return np.int64((hash_at(key, node) >> _S32) * np.uint64(num_classes) >> _S32)


@njit(nogil=True, parallel=True, cache=True)
def _classes_kernel(ids, num_classes, key, out):
    for i in prange(ids.shape[0]):
        out[i] = class_of(key, ids[i], num_classes)


def node_classes(ids: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
    """int64 planted class of each scrambled node id in ``ids`` (as ``generate`` plants them)."""
    out = np.empty(ids.shape[0], dtype=np.int64)
    _classes_kernel(ids, num_classes, stream_key(seed, STREAM_CLASS), out)
    return out


@njit(nogil=True, cache=True)
def _buckets_kernel(scale, num_classes, key_class, mask, shift, m1, m2, add, ids):
    # Group raw ids by (class of the scrambled id, number of one bits), in raw-id order; `ids`
    # receives the scrambled ids. Returns the bucket starts and the nearest-bucket table.
    n = np.int64(1) << scale
    width = scale + 1
    ptr = np.zeros(num_classes * width + 1, dtype=np.int64)
    for r in range(n):
        s = scramble(np.uint64(r), mask, shift, m1, m2, add)
        k = class_of(key_class, s, num_classes) * width + _popcount(r)
        ptr[k + 1] += 1
    for b in range(num_classes * width):
        ptr[b + 1] += ptr[b]
    fill = ptr[:-1].copy()
    for r in range(n):
        s = scramble(np.uint64(r), mask, shift, m1, m2, add)
        k = class_of(key_class, s, num_classes) * width + _popcount(r)
        ids[fill[k]] = s
        fill[k] += 1
    # near[c, k]: the non-empty bucket of class c closest to k one bits (ties: more bits, the
    # less popular side), or -1 when class c has no ids at all.
    near = np.full((num_classes, width), -1, dtype=np.int64)
    for c in range(num_classes):
        for k in range(width):
            for d in range(width):
                if k + d < width and ptr[c * width + k + d + 1] > ptr[c * width + k + d]:
                    near[c, k] = k + d
                    break
                if k - d >= 0 and ptr[c * width + k - d + 1] > ptr[c * width + k - d]:
                    near[c, k] = k - d
                    break
    return ptr, near


@njit(nogil=True, cache=True)
def _popcount(x):
    ones = 0
    while x:
        ones += x & 1
        x >>= 1
    return ones


def _check_params(scale: int, edge_factor: float, a: float, b: float, c: float, seed: int) -> int:
    if not isinstance(scale, (int, np.integer)) or isinstance(scale, bool):
        raise TypeError(f"scale must be an int, got {type(scale).__name__}")
    if not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be in 1..{MAX_SCALE}, got {scale}")
    if isinstance(edge_factor, bool) or not isinstance(edge_factor, (int, float, np.number)):
        raise TypeError(f"edge_factor must be a number, got {type(edge_factor).__name__}")
    if not (np.isfinite(edge_factor) and edge_factor > 0):
        raise ValueError(f"edge_factor must be a positive number, got {edge_factor}")
    for name, p in (("a", a), ("b", b), ("c", c)):
        if isinstance(p, bool) or not isinstance(p, (int, float, np.number)):
            raise TypeError(f"{name} must be a number, got {type(p).__name__}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    if a + b + c > 1.0 + 1e-12:
        raise ValueError(f"a + b + c must be <= 1 (d = 1 - a - b - c), got {a + b + c}")
    check_seed(seed)
    return int(round(float(edge_factor) * (1 << int(scale))))


def check_seed(seed: object) -> int:
    """Validate a seed: a non-negative int below 2^63."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be in 0..2^63-1, got {seed}")
    return int(seed)


class RmatStream:
    """The RMAT edge list of (scale, a, b, c, seed[, classes, intra]) as a stream: ``edges(start,
    count)`` computes any slice of it, so a generator can write a graph bigger than memory in
    chunks, and the same edges come out whatever the chunk size or thread count.

    Example:
        >>> stream = RmatStream(10, a=0.57, b=0.19, c=0.19, seed=1)
        >>> s, d = stream.edges(0, 4)
        >>> s.shape
        (4,)
    """

    def __init__(
        self,
        scale: int,
        *,
        a: float,
        b: float,
        c: float,
        seed: int,
        num_classes: int = 0,
        intra: float = 0.0,
    ) -> None:
        self.scale = int(scale)
        self.params = scramble_params(scale, seed)
        self.key_class = stream_key(seed, STREAM_CLASS)
        if num_classes > 0 and intra > 0.0:
            self.ids = np.empty(1 << scale, dtype=np.int32 if scale < 31 else np.int64)
            self.ptr, self.near = _buckets_kernel(
                scale, num_classes, self.key_class, *self.params, self.ids
            )
        else:
            self.ptr = np.zeros(2, dtype=np.int64)
            self.ids = np.zeros(1, dtype=np.int32)
            self.near = np.full((1, scale + 1), -1, dtype=np.int64)
            intra = 0.0
        self.num_classes = max(int(num_classes), 1)
        self.intra = np.uint64(round(float(intra) * 2**32))
        self.thresholds = [np.uint64(round(p * 65536)) for p in (a, a + b, a + b + c)]
        self.key_rmat = stream_key(seed, STREAM_RMAT)
        self.key_intra = stream_key(seed, STREAM_INTRA)

    def edges(
        self, start: int, count: int, *, dtype: type = np.int64, both_directions: bool = False
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Edges ``start..start+count-1`` as (src, dst); ``both_directions`` appends each
        reversed."""
        size = 2 * count if both_directions else count
        src = np.empty(size, dtype=dtype)
        dst = np.empty(size, dtype=dtype)
        ta, tab, tabc = self.thresholds
        _rmat_kernel(
            int(start), int(count), self.scale, ta, tab, tabc, self.key_rmat, *self.params,
            self.intra, self.key_intra, self.key_class, self.num_classes, self.ptr, self.ids,
            self.near, src, dst, both_directions,
        )  # fmt: skip
        return src, dst


def generate(
    scale: int,
    num_edges: int,
    *,
    a: float,
    b: float,
    c: float,
    seed: int,
    dtype: type = np.int64,
    both_directions: bool = False,
    num_classes: int = 0,
    intra: float = 0.0,
) -> Tuple[np.ndarray, np.ndarray]:
    """Generate RMAT edges, optionally with planted classes; the engine behind ``rmat_edges``.

    Returns (src, dst); ``node_classes`` gives the planted classes. Probabilities are resolved
    to 1/65536. ``both_directions`` appends every reverse edge.
    """
    stream = RmatStream(scale, a=a, b=b, c=c, seed=seed, num_classes=num_classes, intra=intra)
    return stream.edges(0, num_edges, dtype=dtype, both_directions=both_directions)


def rmat_edges(
    scale: int,
    edge_factor: float,
    *,
    a: float = 0.57,
    b: float = 0.19,
    c: float = 0.19,
    seed: int = 0,
) -> Tuple[np.ndarray, np.ndarray]:
    """RMAT edges over ``2^scale`` nodes: ``edge_factor * 2^scale`` directed edges (src, dst).

    Raw Graph500-style output: ids scrambled, edges neither symmetrised nor deduplicated, self
    loops and isolated ids kept (``rmat_dataset`` does the cleaning). Parallel and deterministic
    for a seed whatever the thread count.

    Example:
        >>> src, dst = rmat_edges(10, 16, seed=1)
        >>> src.shape, src.dtype, int(max(src.max(), dst.max())) < 2**10
        ((16384,), dtype('int64'), True)
    """
    num_edges = _check_params(scale, edge_factor, a, b, c, seed)
    src, dst = generate(scale, num_edges, a=a, b=b, c=c, seed=int(seed))
    return src, dst
