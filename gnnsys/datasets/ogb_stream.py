"""ogbn-papers100M's raw files to a gnnsys CSC dataset folder, streamed: never the whole edge
list (26 GB as int64) or feature table (57 GB as float32) in memory.

OGB ships papers100M as ``raw/data.npz`` (``edge_index`` [2, E] int64, ``node_feat`` [N, 128],
``num_nodes_list``, ...) and ``raw/node-label.npz`` (``node_label`` [N, 1] float, NaN for the
unlabelled). ``np.load`` of an npz member reads all of it; here each member is read through
``zipfile`` in chunks (decompressing as it goes when the archive is compressed):

1. ``edge_index``'s two rows are copied in chunks to a temporary COO folder (row 0 and row 1
   are far apart in a C-ordered array, so a chunk of pairs cannot be read in one sweep);
2. the out-of-core CSC build (``outofcore.build_csc_into``) symmetrises and dedupes within
   ``memory_budget``, then the COO copy is deleted;
3. features are converted to float16 in row chunks, labels to int64 (NaN -> -1);
4. the split comes from ``split/<split>/`` as ``ogb()`` reads it.

The folder is the format ``load_folder`` memory-maps (see ``gnnsys.datasets.folder``).
"""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from gnnsys.datasets.dataset import make_temp_dir
from gnnsys.datasets.ogb import checked_labels
from gnnsys.datasets.outofcore import EdgeChunks, build_csc_into, parse_bytes, peak_rss_bytes
from gnnsys.graph_io import npy_header, replace_dir

_CHUNK_BYTES = 64 << 20  # bytes read from a member per step


@contextmanager
def npz_member(path: Path, key: str) -> Iterator[Tuple[Any, Tuple[int, ...], np.dtype, bool]]:
    """(stream positioned at the data, shape, dtype, fortran_order) of ``key`` in the npz
    ``path``, without reading the data; errors name the file and the member."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable npz archive ({err})") from None
    with archive:
        name = key + ".npy"
        if name not in archive.namelist():
            raise ValueError(f"{path} lacks the array {key!r}")
        with archive.open(name) as fp:
            try:
                version = np.lib.format.read_magic(fp)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read(fp)
            except (ValueError, EOFError) as err:
                raise ValueError(f"{path}:{key} is not a .npy array ({err})") from None
            if dtype.hasobject:
                raise ValueError(f"{path}:{key} holds Python objects")
            yield fp, tuple(shape), dtype, bool(fortran)


def read_exact(fp: Any, count: int, dtype: np.dtype, where: str) -> np.ndarray:
    """``count`` items of ``dtype`` from the stream, or a ValueError naming ``where``."""
    data = fp.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise ValueError(f"{where} is truncated")
    return np.frombuffer(data, dtype=dtype)


def papers100m_to_folder(
    folder: Path,
    out: Path,
    *,
    undirected: bool,
    split: str,
    memory_budget: Union[int, str] = "8G",
    log: Optional[Callable[[str], None]] = None,
) -> Path:
    """Convert the OGB folder ``folder`` (holding ``raw/data.npz``, ``raw/node-label.npz`` and
    ``split/<split>/``) to the dataset folder ``out`` (atomically). ``gnnsys.datasets.ogb``
    calls this once and memory-maps the result afterwards."""
    from gnnsys.datasets.ogb import _load_split

    say = log or (lambda _msg: None)
    budget = parse_bytes(memory_budget)
    raw = folder / "raw"
    data, labels = raw / "data.npz", raw / "node-label.npz"
    with npz_member(data, "num_nodes_list") as (fp, shape, dtype, _):
        counts = read_exact(fp, int(np.prod(shape)), dtype, f"{data}:num_nodes_list")
    if counts.size != 1 or dtype.kind not in "iu" or counts[0] < 0:
        raise ValueError(f"{data}:num_nodes_list must hold one node count, got {counts!r}")
    n = int(counts[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out)
    try:
        t0 = time.perf_counter()
        coo = _copy_edges(data, tmp / "coo.tmp", n)
        say(f"ogbn-papers100M: {coo.num_edges} edges copied out of {data.name}")
        report = build_csc_into(
            coo, n, tmp, memory_budget=budget, symmetrise=undirected, dedupe=undirected,
            drop_loops=False, log=say,
        )  # fmt: skip
        shutil.rmtree(tmp / "coo.tmp")
        t1 = time.perf_counter()
        feat_dim = _copy_features(data, tmp / "x.npy", n)
        _copy_labels(labels, tmp / "y.npy", n, 172)
        train, val, test = _load_split("ogbn-papers100M", folder, split, n)
        for part, idx in (("train_idx", train), ("val_idx", val), ("test_idx", test)):
            np.save(tmp / f"{part}.npy", idx)
        meta: Dict[str, Any] = {
            "format_version": 1,
            "name": "ogbn-papers100M",
            "num_classes": 172,
            "num_nodes": n,
            "num_edges": report.num_edges,
            "num_features": feat_dim,
            "source": f"{folder} (raw, streamed)",
            "split": split,
            "undirected": undirected,
            "csc_build": report.to_dict(),
            "seconds": {
                "edges_and_csc": round(t1 - t0, 3),
                "features": round(time.perf_counter() - t1, 3),
            },  # fmt: skip
            "peak_rss_bytes": peak_rss_bytes(),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _copy_edges(data: Path, folder: Path, n: int) -> EdgeChunks:
    folder.mkdir()
    where = f"{data}:edge_index"
    with npz_member(data, "edge_index") as (fp, shape, dtype, fortran):
        if len(shape) != 2 or shape[0] != 2 or dtype.kind not in "iu":
            raise ValueError(f"{where} must be an integer array [2, E], got {dtype} {shape}")
        e = shape[1]
        idt = np.int32 if n < 2**31 else np.int64
        step = max(1, _CHUNK_BYTES // dtype.itemsize // 2)
        src_path, dst_path = folder / "src.npy", folder / "dst.npy"
        with open(src_path, "wb") as fs, open(dst_path, "wb") as fd:
            fs.write(npy_header(idt, (e,)))
            fd.write(npy_header(idt, (e,)))
            if fortran:  # column-major: (src, dst) pairs interleaved
                for lo in range(0, e, step):
                    k = min(step, e - lo)
                    pairs = read_exact(fp, 2 * k, dtype, where).reshape(k, 2)
                    _check_ids(pairs, n, where)
                    pairs[:, 0].astype(idt).tofile(fs)
                    pairs[:, 1].astype(idt).tofile(fd)
            else:  # row 0 (sources), then row 1 (destinations)
                for target in (fs, fd):
                    for lo in range(0, e, 2 * step):
                        k = min(2 * step, e - lo)
                        ids = read_exact(fp, k, dtype, where)
                        _check_ids(ids, n, where)
                        ids.astype(idt).tofile(target)
    return EdgeChunks([(src_path, dst_path)])


def _check_ids(ids: np.ndarray, n: int, where: str) -> None:
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        bad = int(ids.min()) if ids.min() < 0 else int(ids.max())
        raise ValueError(f"{where} holds node id {bad}, out of range for {n} nodes")


def _copy_features(data: Path, path: Path, n: int) -> int:
    where = f"{data}:node_feat"
    with npz_member(data, "node_feat") as (fp, shape, dtype, fortran):
        if len(shape) != 2 or shape[0] != n or dtype.kind != "f" or fortran:
            raise ValueError(f"{where} must be a C-ordered float array [{n}, F], got "
                             f"{dtype} {shape}{' (Fortran order)' if fortran else ''}")  # fmt: skip
        f = shape[1]
        rows = max(1, _CHUNK_BYTES // max(1, f * dtype.itemsize))
        with open(path, "wb") as out:
            out.write(npy_header(np.float16, (n, f)))
            for lo in range(0, n, rows):
                k = min(rows, n - lo)
                read_exact(fp, k * f, dtype, where).astype(np.float16).tofile(out)
        return int(f)


def _copy_labels(labels: Path, path: Path, n: int, num_classes: int) -> None:
    where = f"{labels}:node_label"
    with npz_member(labels, "node_label") as (fp, shape, dtype, _):
        if int(np.prod(shape)) != n or len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise ValueError(f"{where} must have shape [{n}] or [{n}, 1], got {shape}")
        rows = max(1, _CHUNK_BYTES // dtype.itemsize)
        with open(path, "wb") as out:
            out.write(npy_header(np.int64, (n,)))
            for lo in range(0, n, rows):
                y = read_exact(fp, min(rows, n - lo), dtype, where)
                checked_labels(y, num_classes, f"labels in {where}").tofile(out)
