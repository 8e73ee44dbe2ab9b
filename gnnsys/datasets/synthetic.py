"""Synthetic node-classification datasets that look like real graphs, generated offline.

Structure: RMAT edges (Graph500 a=0.57, b=c=0.19: power-law degrees), ids scrambled, a planted
class per node, and a chosen fraction of edges rewired to stay inside the source's class
(degree-preserving, see ``rmat``), then symmetrised, deduplicated, self loops and isolated nodes
dropped. Features are the class centroid plus large Gaussian noise, so an MLP does poorly and a
GNN that averages the (mostly same-class) neighbours does much better. Everything is counter-based
hashing of (seed, stream, index), so a seed gives the same arrays whatever the thread count.

Results are cached as .npy files under ``root`` (``$GNNSYS_HOME``, else ``~/.cache/gnnsys``),
keyed by name, seed and ``GENERATOR_VERSION``; written atomically, loaded memory-mapped.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from numba import njit, prange

from gnnsys.datasets import rmat as _rmat
from gnnsys.datasets.dataset import Dataset, graph_from_coo, make_temp_dir
from gnnsys.graph import Graph

if TYPE_CHECKING:
    from gnnsys.datasets.hetero import HeteroDataset
    from gnnsys.datasets.stream import TemporalLinkDataset

# Bump whenever the generated arrays for a (name, seed) change: it is part of the cache key.
GENERATOR_VERSION = "g2"

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class SyntheticSpec:
    """The recipe of one synthetic dataset.

    ``intra`` is the fraction of generated edges forced inside the source's class; ``noise`` the
    feature noise std (class centroids are standard normal); ``train``/``val`` the split
    fractions (the rest is test).
    """

    scale: int
    edge_factor: float
    feat_dim: int
    num_classes: int
    intra: float
    noise: float
    train: float
    val: float
    a: float = 0.57
    b: float = 0.19
    c: float = 0.19


SPECS: Dict[str, SyntheticSpec] = {
    # ~2.6k nodes, ~23k directed edges: for tests, generates in a fraction of a second.
    "tiny": SyntheticSpec(12, 4, 32, 8, 0.85, 4.0, 0.3, 0.2),
    # ~130k nodes, ~2M directed edges, products-like features and classes: the demo default.
    "mini": SyntheticSpec(18, 5, 100, 47, 0.85, 4.0, 0.08, 0.016),
    # ogbn-products sizes: ~2.5M nodes, ~120M directed edges, 100-d, 47 classes, 8/1.6/rest.
    "products": SyntheticSpec(22, 19, 100, 47, 0.85, 4.0, 0.08, 0.016),
    # The loader benchmark workload: plain RMAT scale 20, edge factor 12, 100-d features.
    "rmat20": SyntheticSpec(20, 12, 100, 47, 0.0, 4.0, 0.08, 0.016),
}
SYNTHETIC_NAMES = tuple(SPECS)

_ARRAYS = ("indptr", "indices", "x", "y", "train_idx", "val_idx", "test_idx")


def default_root() -> Path:
    """The cache root: ``$GNNSYS_HOME`` if set, else ``~/.cache/gnnsys``."""
    env = os.environ.get("GNNSYS_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gnnsys"


def synthetic(
    name: str = "mini",
    *,
    seed: int = 0,
    root: Optional[PathLike] = None,
    cache: bool = True,
) -> Union[Dataset, HeteroDataset, TemporalLinkDataset]:
    """Generate (or load from the cache) the synthetic dataset ``name``.

    Names: ``tiny`` (~2.5k nodes, tests), ``mini`` (~130k nodes, ~2M edges, the demo default),
    ``products`` (ogbn-products sizes), ``rmat20`` (the loader benchmark graph); and the
    heterogeneous ``tiny-mag``, ``mini-mag``, ``mag`` (ogbn-mag's shape), which return a
    ``HeteroDataset`` (see ``gnnsys.datasets.hetero``); and ``papers-tiny``, ``papers-mini``
    (1/10 of papers100M), ``papers`` (ogbn-papers100M's shape: 111M nodes, ~1.6B edges, 28 GB
    of float16 features), generated to disk in bounded memory and memory-mapped
    (``gnnsys.datasets.large``); and the temporal ``tiny-stream``, ``mini-stream`` (tgbl-wiki's
    sizes), ``stream`` (100x), user-item interaction streams that return a
    ``TemporalLinkDataset`` (``gnnsys.datasets.stream``). ``cache=False`` neither reads nor
    writes the cache.

    Example:
        >>> ds = gnnsys.datasets.synthetic("tiny", seed=0)
        >>> ds.num_classes, ds.x.dtype
        (8, torch.float32)
    """
    from gnnsys.datasets.hetero import HETERO_NAMES, synthetic_hetero
    from gnnsys.datasets.large import LARGE_NAMES, synthetic_large
    from gnnsys.datasets.stream import STREAM_NAMES, synthetic_stream

    if isinstance(name, str) and name in STREAM_NAMES:
        return synthetic_stream(name, seed=seed, root=root, cache=cache)
    if isinstance(name, str) and name in HETERO_NAMES:
        return synthetic_hetero(name, seed=seed, root=root, cache=cache)
    if isinstance(name, str) and name in LARGE_NAMES:
        if not cache:
            raise ValueError(
                f"{name} is generated to disk and read from there: it needs cache=True"
            )
        return synthetic_large(name, seed=seed, root=root)
    if not isinstance(name, str) or name not in SPECS:
        names = SYNTHETIC_NAMES + HETERO_NAMES + LARGE_NAMES + STREAM_NAMES
        raise ValueError(f"unknown synthetic dataset {name!r}; choose one of {names}")
    seed = _rmat.check_seed(seed)
    return _load_or_generate(name, SPECS[name], seed, root, cache)


def rmat_dataset(
    scale: int = 20,
    edge_factor: float = 12,
    feat_dim: int = 100,
    num_classes: int = 47,
    seed: int = 0,
    *,
    intra: float = 0.0,
    noise: float = 4.0,
    root: Optional[PathLike] = None,
    cache: bool = True,
) -> Dataset:
    """An RMAT benchmark graph: symmetrised, deduplicated, self loops and isolated nodes dropped.

    Graph500 parameters; ``intra`` > 0 plants class communities as ``synthetic`` does (0 gives
    plain RMAT). Features are class centroid + noise, split 8%/1.6%/rest. Cached like
    ``synthetic`` unless ``cache=False``.

    Example:
        >>> ds = rmat_dataset(scale=10, edge_factor=8, feat_dim=16, num_classes=4, cache=False)
        >>> ds.graph.num_edges > 0
        True
    """
    for arg, val, lo in (("feat_dim", feat_dim, 1), ("num_classes", num_classes, 1)):
        if not isinstance(val, (int, np.integer)) or isinstance(val, bool):
            raise TypeError(f"{arg} must be an int, got {type(val).__name__}")
        if val < lo:
            raise ValueError(f"{arg} must be >= {lo}, got {val}")
    for arg, val in (("intra", intra), ("noise", noise)):
        if isinstance(val, bool) or not isinstance(val, (int, float, np.number)):
            raise TypeError(f"{arg} must be a number, got {type(val).__name__}")
    if not 0.0 <= intra <= 1.0:
        raise ValueError(f"intra must be a fraction in [0, 1], got {intra}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    _rmat._check_params(scale, edge_factor, 0.57, 0.19, 0.19, seed)
    if num_classes > 2**scale:
        raise ValueError(f"num_classes={num_classes} exceeds the 2^scale={2**scale} node ids")
    spec = SyntheticSpec(
        int(scale), float(edge_factor), int(feat_dim), int(num_classes), float(intra),
        float(noise), 0.08, 0.016,
    )  # fmt: skip
    name = f"rmat-s{scale}-ef{edge_factor:g}-f{feat_dim}-c{num_classes}-h{intra:g}-n{noise:g}"
    return _load_or_generate(name, spec, int(seed), root, cache)


# ---------------------------------------------------------------------- cache
def _load_or_generate(
    name: str, spec: SyntheticSpec, seed: int, root: Optional[PathLike], cache: bool
) -> Dataset:
    if not cache:
        arrays, meta = generate_arrays(spec, seed)
        return _to_dataset(name, arrays, meta, spec)
    base = Path(root).expanduser() if root is not None else default_root()
    return cached_arrays(
        base / "synthetic" / f"{name}-seed{seed}-{GENERATOR_VERSION}",
        lambda: generate_arrays(spec, seed),
        {"name": name, "seed": seed, "version": GENERATOR_VERSION},
        _ARRAYS,
        lambda folder: _load_cached(name, folder, spec),
    )


def cached_arrays(
    final: Path,
    generate: Callable[[], Tuple[Dict[str, np.ndarray], Dict]],
    extra_meta: Dict[str, Any],
    keys: Sequence[str],
    load: Callable[[Path], Any],
) -> Any:
    """``load(final)`` of a cache folder, generating it first when it is missing or damaged.

    ``generate()`` returns (arrays, meta); the arrays named ``keys`` and ``meta.json`` (with
    ``extra_meta``) are written to a temporary folder that is renamed into place, so readers
    never see a half-written cache and concurrent writers do not clash. Shared by the
    homogeneous and heterogeneous generators.
    """
    if final.is_dir():
        try:
            return load(final)
        except (OSError, ValueError, KeyError) as err:
            warnings.warn(f"regenerating the damaged cache {final}: {err}", stacklevel=4)
            shutil.rmtree(final, ignore_errors=True)
    arrays, meta = generate()
    meta.update(extra_meta)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(final)
    try:
        for key in keys:
            np.save(tmp / f"{key}.npy", arrays[key])
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():  # not a concurrent writer that got there first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    del arrays
    return load(final)


def load_arrays(
    folder: Path, keys: Tuple[str, ...], version: str
) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """A cache folder's arrays (mapped copy-on-write) and meta.json, refused when it was made
    by another generator version (``cached_arrays`` then rebuilds it)."""
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("version") != version:
        raise ValueError(f"cache version {meta.get('version')!r} != {version!r}")
    return {k: np.load(folder / f"{k}.npy", mmap_mode="c") for k in keys}, meta


def _load_cached(name: str, folder: Path, spec: SyntheticSpec) -> Dataset:
    arrays, meta = load_arrays(folder, _ARRAYS, GENERATOR_VERSION)
    return _to_dataset(name, arrays, meta, spec, validate=True)


def _to_dataset(
    name: str,
    arrays: Dict[str, np.ndarray],
    meta: Dict[str, Any],
    spec: SyntheticSpec,
    validate: bool = False,
) -> Dataset:
    t = {k: torch.from_numpy(v) for k, v in arrays.items()}
    graph = Graph(t["indptr"], t["indices"], validate=validate)
    meta = dict(meta)
    meta.setdefault("spec", asdict(spec))
    return Dataset(
        name=name,
        graph=graph,
        x=t["x"],
        y=t["y"],
        train_idx=t["train_idx"],
        val_idx=t["val_idx"],
        test_idx=t["test_idx"],
        num_classes=spec.num_classes,
        meta=meta,
    )


# ---------------------------------------------------------------------- generation
def generate_arrays(spec: SyntheticSpec, seed: int) -> Tuple[Dict[str, np.ndarray], Dict]:
    """Run the generator: (arrays by name, meta with sizes and phase timings in seconds)."""
    t0 = time.perf_counter()
    num_edges = int(round(spec.edge_factor * (1 << spec.scale)))
    idt = np.int32 if spec.scale < 31 else np.int64
    src, dst = _rmat.generate(
        spec.scale,
        num_edges,
        a=spec.a,
        b=spec.b,
        c=spec.c,
        seed=seed,
        dtype=idt,
        both_directions=True,
        num_classes=spec.num_classes,
        intra=spec.intra,
    )
    t1 = time.perf_counter()
    present = np.zeros(1 << spec.scale, dtype=np.uint8)
    _mark_present(src, dst, present)
    kept, newid = _compact(present)
    del present
    _relabel(src, dst, newid)
    del newid
    n = kept.size
    if n == 0:
        raise ValueError(
            f"RMAT scale {spec.scale}, edge factor {spec.edge_factor} produced only self loops; "
            "increase scale or edge_factor"
        )
    graph = graph_from_coo(src, dst, n, dedupe=True, drop_loops=True)
    del src, dst
    t2 = time.perf_counter()
    y = _rmat.node_classes(kept, spec.num_classes, seed)
    del kept
    centroids = np.empty(spec.num_classes * spec.feat_dim, dtype=np.float64)
    _normals(_rmat.stream_key(seed, _rmat.STREAM_CENTROID), centroids)
    centroids = centroids.reshape(spec.num_classes, spec.feat_dim).astype(np.float32)
    x = np.empty((n, spec.feat_dim), dtype=np.float32)
    _features(y, centroids, np.float32(spec.noise), _rmat.stream_key(seed, _rmat.STREAM_NOISE), x)
    t3 = time.perf_counter()
    train, val, test = _split(n, spec.train, spec.val, seed)
    t4 = time.perf_counter()
    arrays = {
        "indptr": graph.indptr.numpy(),
        "indices": graph.indices.numpy(),
        "x": x,
        "y": y,
        "train_idx": train,
        "val_idx": val,
        "test_idx": test,
    }
    meta = {
        "num_nodes": int(n),
        "num_edges": int(graph.num_edges),
        "generated_edges": num_edges,
        "seconds": {
            "rmat": round(t1 - t0, 3),
            "csc": round(t2 - t1, 3),
            "features": round(t3 - t2, 3),
            "split": round(t4 - t3, 3),
        },
    }
    return arrays, meta


def _split(n: int, train: float, val: float, seed: int) -> Tuple[np.ndarray, ...]:
    keys = np.empty(n, dtype=np.uint64)
    _hashes(_rmat.stream_key(seed, _rmat.STREAM_SPLIT), keys)
    order = np.argsort(keys, kind="stable")
    n_train = int(round(train * n))
    n_val = int(round(val * n))
    parts = (order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])
    return tuple(np.sort(p).astype(np.int64) for p in parts)


@njit(nogil=True, parallel=True, cache=True)
def _mark_present(src, dst, present):
    # A node is kept when it has an edge other than a self loop. Racing writes store the same 1.
    for i in prange(src.shape[0]):
        if src[i] != dst[i]:
            present[src[i]] = 1
            present[dst[i]] = 1


@njit(nogil=True, cache=True)
def _compact(present):
    # kept: the present ids in increasing order; newid: their new ids (absent ids map to 0, they
    # only occur in self loops, which the CSC build drops).
    n = present.shape[0]
    newid = np.zeros(n, dtype=np.int64)
    count = 0
    for v in range(n):
        if present[v]:
            newid[v] = count
            count += 1
    kept = np.empty(count, dtype=np.int64)
    count = 0
    for v in range(n):
        if present[v]:
            kept[count] = v
            count += 1
    return kept, newid


@njit(nogil=True, parallel=True, cache=True)
def _relabel(src, dst, newid):
    for i in prange(src.shape[0]):
        src[i] = newid[src[i]]
        dst[i] = newid[dst[i]]


@njit(nogil=True, parallel=True, cache=True)
def _hashes(key, out):
    for i in prange(out.shape[0]):
        out[i] = _rmat.hash_at(key, i)


@njit(nogil=True, cache=True)
def _box_muller(r):
    # Two standard normals from one 64-bit hash; u1 in (0, 1] keeps the log finite.
    u1 = (np.float64(r >> np.uint64(32)) + 1.0) * 2.0**-32
    u2 = np.float64(r & np.uint64(0xFFFFFFFF)) * 2.0**-32
    rad = math.sqrt(-2.0 * math.log(u1))
    return rad * math.cos(2.0 * math.pi * u2), rad * math.sin(2.0 * math.pi * u2)


@njit(nogil=True, parallel=True, cache=True)
def _normals(key, out):
    half = (out.shape[0] + 1) // 2
    for j in prange(half):
        z0, z1 = _box_muller(_rmat.hash_at(key, j))
        out[2 * j] = z0
        if 2 * j + 1 < out.shape[0]:
            out[2 * j + 1] = z1


@njit(nogil=True, parallel=True, cache=True)
def _features(y, centroids, noise, key, out, first=0):
    # Row i of out is node first + i: its noise depends on the node id only, so a table written
    # in row chunks equals the one written at once.
    for i in prange(out.shape[0]):
        _feature_row(first + i, y[i], centroids, noise, key, out, i)


@njit(nogil=True, parallel=True, cache=True)
def _features_of(ids, y, centroids, noise, key, out):
    # Row i of out is node ids[i] (a renamed table: row i holds the features of original id
    # ids[i], the same numbers as row ids[i] of the table in the original order).
    for i in prange(out.shape[0]):
        _feature_row(ids[i], y[i], centroids, noise, key, out, i)


@njit(nogil=True, inline="always")
def _feature_row(node, c, centroids, noise, key, out, i):
    f = out.shape[1]
    half = (f + 1) // 2
    for j in range(half):
        z0, z1 = _box_muller(_rmat.hash_at(key, np.int64(node) * half + j))
        out[i, 2 * j] = centroids[c, 2 * j] + noise * np.float32(z0)
        if 2 * j + 1 < f:
            out[i, 2 * j + 1] = centroids[c, 2 * j + 1] + noise * np.float32(z1)
