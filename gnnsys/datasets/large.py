"""Synthetic graphs bigger than memory (ogbn-papers100M's shape), generated to disk in chunks.

``generate_large("papers", folder)`` writes a dataset folder without ever holding all edges or
all features in memory:

1. RMAT edges (the ``synthetic`` generator's power law with planted communities) over 2^scale
   raw ids, streamed in chunks (``RmatStream``); node ids are the scrambled raw ids, and edges
   with an endpoint beyond ``num_nodes`` or a self loop are dropped, so the graph has exactly
   papers100M's node count (and isolated nodes, as papers100M has). Chunks go to a temporary
   COO folder as int32 pairs.
2. The out-of-core CSC build (``outofcore.build_csc_into``) symmetrises and dedupes them within
   ``memory_budget`` into ``indptr.npy``/``indices.npy``, by default renaming the nodes
   hot-first (``order="degree"``: most edges first, original ids in ``orig_ids.npy``), so that
   the rows a sampler touches most share pages of the feature and index files; the COO folder
   is then deleted.
3. Features (class centroid + Gaussian noise, float16 on disk), labels and the split, in row
   chunks. As papers100M, only the split nodes are labelled (y = -1 elsewhere); features of
   every node still carry its class, so neighbours help. Every value is a function of the
   node's original id, so the hot-first folder is the given-order folder renamed.

Every random number is counter-based (hash of seed, stream, edge or node id): the folder is the
same for a seed whatever the chunk sizes, the budget or the thread count.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

import numpy as np
from numba import njit, prange

from gnnsys.datasets import rmat as _rmat
from gnnsys.datasets.dataset import DATASET_MARKS, make_temp_dir
from gnnsys.datasets.outofcore import (
    NODE_ORDERS,
    EdgeChunkWriter,
    build_csc_into,
    parse_bytes,
    peak_rss_bytes,
)
from gnnsys.graph_io import check_replaceable, npy_header, replace_dir

PathLike = Union[str, "os.PathLike[str]"]

LARGE_VERSION = "p2"  # bump when the arrays generated for a (name, seed) change


@dataclass(frozen=True)
class LargeSpec:
    """The recipe of one on-disk synthetic dataset: exact node count, RMAT scale and generated
    (undirected) edge count, features, classes, split fractions (the rest is unlabelled)."""

    num_nodes: int
    scale: int
    gen_edges: int
    feat_dim: int
    num_classes: int
    intra: float
    noise: float
    train: float
    val: float
    test: float
    a: float = 0.57
    b: float = 0.19
    c: float = 0.19


# papers100M: 111,059,956 nodes; split 1,207,179 / 125,265 / 214,338 (1.09% / 0.11% / 0.19%).
# gen_edges is set so that about 1.6B directed edges remain after dropping out-of-range ids,
# loops and duplicates and symmetrising (measured: see the meta.json of a generated folder).
_SPLIT = dict(train=0.01087, val=0.001128, test=0.00193)
LARGE_SPECS: Dict[str, LargeSpec] = {
    "papers": LargeSpec(111_059_956, 27, 1_410_000_000, 128, 172, 0.85, 4.0, **_SPLIT),
    "papers-mini": LargeSpec(11_105_996, 24, 245_000_000, 128, 172, 0.85, 4.0, **_SPLIT),
    # A few thousand nodes with the same recipe, for tests.
    "papers-tiny": LargeSpec(3_000, 12, 40_000, 16, 8, 0.85, 4.0, 0.3, 0.1, 0.1),
}
LARGE_NAMES = tuple(LARGE_SPECS)


def generate_large(
    name: str,
    out: PathLike,
    *,
    seed: int = 0,
    memory_budget: Union[int, str] = "8G",
    chunk_edges: Optional[int] = None,
    chunk_rows: Optional[int] = None,
    order: str = "degree",
    overwrite: bool = False,
    log: Optional[Callable[[str], None]] = None,
) -> Path:
    """Write the on-disk dataset ``name`` (``papers``, ``papers-mini``, ``papers-tiny``) to the
    folder ``out`` (atomically), holding at most about ``memory_budget`` bytes.

    The folder is in the format ``load_folder`` reads (CSC form): ``indptr.npy``,
    ``indices.npy``, ``graph.json``, ``x.npy`` (float16), ``y.npy``, the split files and
    ``meta.json`` (sizes, phase timings, peak RSS). ``chunk_edges``/``chunk_rows`` (edges /
    feature rows per chunk) default to what the budget allows; they do not change the output.
    ``order="degree"`` (the default) numbers the nodes hot-first and writes ``orig_ids.npy``;
    ``order="given"`` keeps the generator's ids.

    Example:
        >>> generate_large("papers-tiny", "/tmp/pt")  # doctest: +SKIP
        PosixPath('/tmp/pt')
    """
    if not isinstance(name, str) or name not in LARGE_SPECS:
        raise ValueError(f"unknown on-disk synthetic dataset {name!r}; choose one of {LARGE_NAMES}")
    seed = _rmat.check_seed(seed)
    budget = parse_bytes(memory_budget)
    if order not in NODE_ORDERS:
        raise ValueError(f"order must be one of {NODE_ORDERS}, got {order!r}")
    spec = LARGE_SPECS[name]
    final = Path(out).expanduser()
    check_replaceable(final, overwrite, DATASET_MARKS, "dataset folder")
    for arg, val in (("chunk_edges", chunk_edges), ("chunk_rows", chunk_rows)):
        if val is not None and (isinstance(val, bool) or not isinstance(val, (int, np.integer))):
            raise TypeError(f"{arg} must be an int, got {type(val).__name__}")
        if val is not None and val < 1:
            raise ValueError(f"{arg} must be >= 1, got {val}")
    say = log or (lambda _msg: None)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(final)
    try:
        seconds: Dict[str, float] = {}
        t0 = time.perf_counter()
        coo = _write_edges(spec, seed, tmp / "coo.tmp", chunk_edges or (1 << 22), say)
        seconds["edges"] = round(time.perf_counter() - t0, 3)
        report = build_csc_into(
            coo, spec.num_nodes, tmp, memory_budget=budget, symmetrise=True, dedupe=True,
            drop_loops=True, order=order, log=say,
        )  # fmt: skip
        shutil.rmtree(tmp / "coo.tmp")
        seconds["csc"] = round(sum(report.seconds.values()), 3)
        t1 = time.perf_counter()
        rows = chunk_rows or int(np.clip(budget // 8 // (spec.feat_dim * 6 + 32), 1024, 1 << 20))
        orig = np.load(tmp / "orig_ids.npy", mmap_mode="r") if order == "degree" else None
        splits = _write_nodes(spec, seed, tmp, rows, say, orig)
        del orig
        seconds["features"] = round(time.perf_counter() - t1, 3)
        meta = {
            "format_version": 1,
            "name": name,
            "seed": seed,
            "version": LARGE_VERSION,
            "node_order": order,
            "num_classes": spec.num_classes,
            "num_nodes": spec.num_nodes,
            "num_edges": report.num_edges,
            "generated_edges": spec.gen_edges,
            "kept_edges": report.input_edges,
            "split_sizes": splits,
            "spec": asdict(spec),
            "csc_build": report.to_dict(),
            "seconds": seconds,
            "peak_rss_bytes": peak_rss_bytes(),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"{name}: wrote {final}")
    return final


def _write_edges(spec: LargeSpec, seed: int, folder: Path, chunk: int, say: Any) -> Any:
    stream = _rmat.RmatStream(
        spec.scale, a=spec.a, b=spec.b, c=spec.c, seed=seed,
        num_classes=spec.num_classes, intra=spec.intra,
    )  # fmt: skip
    writer = EdgeChunkWriter(folder)
    kept = 0
    for start in range(0, spec.gen_edges, chunk):
        count = min(chunk, spec.gen_edges - start)
        src, dst = stream.edges(start, count, dtype=np.int64)
        k = _keep_in_range(src, dst, spec.num_nodes)
        writer.write(src[:k].astype(np.int32), dst[:k].astype(np.int32))
        kept += k
        del src, dst
        if writer.count % 16 == 0:
            say(f"edges: {start + count}/{spec.gen_edges} generated, {kept} kept")
    return writer.chunks()


@njit(nogil=True, cache=True)
def _keep_in_range(src, dst, n):
    # Compact in place the edges with both ends below n and distinct ends; returns their count.
    k = 0
    for i in range(src.shape[0]):
        s = src[i]
        d = dst[i]
        if s < n and d < n and s != d:
            src[k] = s
            dst[k] = d
            k += 1
    return k


def _write_nodes(
    spec: LargeSpec, seed: int, folder: Path, rows: int, say: Any, orig: Optional[np.ndarray]
) -> Dict[str, int]:
    # Features, labels and split flags of nodes [lo, lo + rows), chunk by chunk; node v's values
    # are those of its original id orig[v] when renamed.
    from gnnsys.datasets.synthetic import _features_of, _normals

    n, f = spec.num_nodes, spec.feat_dim
    centroids = np.empty(spec.num_classes * f, dtype=np.float64)
    _normals(_rmat.stream_key(seed, _rmat.STREAM_CENTROID), centroids)
    centroids = centroids.reshape(spec.num_classes, f).astype(np.float32)
    key_class = _rmat.stream_key(seed, _rmat.STREAM_CLASS)
    key_noise = _rmat.stream_key(seed, _rmat.STREAM_NOISE)
    key_split = _rmat.stream_key(seed, _rmat.STREAM_SPLIT)
    cuts = np.array(
        [round(2**53 * spec.train), round(2**53 * (spec.train + spec.val)),
         round(2**53 * (spec.train + spec.val + spec.test))], dtype=np.uint64,
    )  # fmt: skip
    parts: Dict[str, list] = {"train_idx": [], "val_idx": [], "test_idx": []}
    with open(folder / "x.npy", "wb") as fx, open(folder / "y.npy", "wb") as fy:
        fx.write(npy_header(np.float16, (n, f)))
        fy.write(npy_header(np.int64, (n,)))
        for lo in range(0, n, rows):
            hi = min(n, lo + rows)
            ids = np.arange(lo, hi, dtype=np.int64)
            old = ids if orig is None else np.asarray(orig[lo:hi], dtype=np.int64)
            y = np.empty(hi - lo, dtype=np.int64)
            _rmat._classes_kernel(old, spec.num_classes, key_class, y)
            x = np.empty((hi - lo, f), dtype=np.float32)
            _features_of(old, y, centroids, np.float32(spec.noise), key_noise, x)
            x.astype(np.float16).tofile(fx)
            del x
            flag = np.empty(hi - lo, dtype=np.int8)
            _split_flags(key_split, old, cuts, flag)
            y[flag == 0] = -1
            y.tofile(fy)
            for k, part in enumerate(("train_idx", "val_idx", "test_idx")):
                parts[part].append(ids[flag == k + 1])
            if (lo // rows) % 16 == 15:
                say(f"features: {hi}/{n} rows")
    sizes = {}
    for part, chunks in parts.items():
        idx = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
        np.save(folder / f"{part}.npy", idx)
        sizes[part] = int(idx.size)
    return sizes


@njit(nogil=True, parallel=True, cache=True)
def _split_flags(key, ids, cuts, out):
    # 1 train, 2 val, 3 test, 0 unlabelled: a 53-bit hash of the (original) node id vs the cuts.
    for i in prange(out.shape[0]):
        u = _rmat.hash_at(key, ids[i]) >> np.uint64(11)
        out[i] = 1 if u < cuts[0] else (2 if u < cuts[1] else (3 if u < cuts[2] else 0))


def synthetic_large(
    name: str,
    *,
    seed: int = 0,
    root: Optional[PathLike] = None,
    memory_budget: Union[int, str] = "8G",
) -> Any:
    """The on-disk dataset ``name`` from the cache (``$GNNSYS_HOME/synthetic``), generated
    there first when missing (progress on stderr), memory-mapped: ``synthetic("papers")``.

    Example:
        >>> ds = synthetic_large("papers-tiny")
        >>> ds.x.dtype
        torch.float16
    """
    import sys

    from gnnsys.datasets.folder import load_folder
    from gnnsys.datasets.synthetic import default_root

    if not isinstance(name, str) or name not in LARGE_SPECS:
        raise ValueError(f"unknown on-disk synthetic dataset {name!r}; choose one of {LARGE_NAMES}")
    seed = _rmat.check_seed(seed)
    base = Path(root).expanduser() if root is not None else default_root()
    folder = base / "synthetic" / f"{name}-seed{seed}-{LARGE_VERSION}"
    if not (folder / "meta.json").is_file():
        generate_large(
            name, folder, seed=seed, memory_budget=memory_budget, overwrite=True,
            log=lambda m: print(f"gnnsys: {m}", file=sys.stderr, flush=True),
        )  # fmt: skip
    return load_folder(folder)
