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

Node order. ``node_order="degree"`` (the default) numbers the nodes hot-first, as the synthetic
papers generator does: the CSC build renames them by edge count (most first) and writes
``orig_ids.npy`` (each new id's original id); features and labels are then permuted to follow
(new row i = raw row ``orig_ids[i]``), the split files hold the new ids (in OGB's order) and
meta says ``"node_order": "degree"``, so that ``load_folder`` reads the hot prefix of the
feature map ahead: on a table bigger than RAM the sampler's reads then hit mostly cached,
contiguous rows. ``node_order="given"`` keeps OGB's numbering.

The feature member may be compressed, so it can only be read front to back: it is first
converted to a temporary float16 file in OGB's order, which ``take_rows`` then permutes into
``x.npy`` (disk: twice the float16 table at the peak; labels go the same way). ``take_rows``
is a sorted gather by destination range: the destination rows are cut into ranges that fit the
budget; for each range the source ids it needs are sorted and read in ascending order, in
sequential windows that skip the stretches holding none of them; the range is then written
once, in order. Memory: ``k * (8 + 2 * w + row) + W * (2 * row + 8)`` bytes for ``k`` rows per
range, ``W`` rows per read window, ``w``-byte ids and ``row``-byte rows. It reads the source
about once per range, writes the output once and needs no disk beyond source and output. Why
not a bucket pass (distribute the source rows to one file per destination range, then permute
each bucket in memory)? That reads and writes the table twice whatever the range count, and
needs a third copy on disk (28 GB at papers100M); with R ranges the sorted gather reads it R
times and writes it once, so it costs no more up to R = 3 and not much more at 4, while at
papers100M's 128 float16 features (272 bytes a row of a range) a budget of 8 GB gives R = 4.
Reading only the needed pages would not help either: a 4 KiB page holds 16 such rows, so a
range of more than 1/16 of the rows touches nearly every page. A bucket pass pays off only at
budgets below about a quarter of the table (the log says R).

The folder is the format ``load_folder`` memory-maps (see ``gnnsys.datasets.folder``).
"""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from gnnsys.datasets.dataset import make_temp_dir
from gnnsys.datasets.ogb import checked_labels
from gnnsys.datasets.outofcore import (
    NODE_ORDERS,
    EdgeChunks,
    build_csc_into,
    parse_bytes,
    peak_rss_bytes,
    rss_bytes,
)
from gnnsys.graph_io import checked_layout, npy_header, replace_dir

_CHUNK_BYTES = 64 << 20  # bytes read from a member (or a take_rows window) per step
_HEADROOM = 32 << 20  # allocator and interpreter headroom kept out of the permutation's plan
_MIN_ROOM = 64 << 20  # the permutation's budget when the process already holds the whole budget


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
    node_order: str = "degree",
    log: Optional[Callable[[str], None]] = None,
) -> Path:
    """Convert the OGB folder ``folder`` (holding ``raw/data.npz``, ``raw/node-label.npz`` and
    ``split/<split>/``) to the dataset folder ``out`` (atomically). ``gnnsys.datasets.ogb``
    calls this once and memory-maps the result afterwards.

    ``node_order="degree"`` (the default) renames the nodes hot-first (most edges first) and
    permutes features, labels and split ids to match, out of core within ``memory_budget``; the
    folder keeps ``orig_ids.npy`` (each node's OGB id) and meta ``"node_order": "degree"``, which
    makes mini-batch feature reads from a table bigger than RAM far faster. ``"given"`` keeps
    OGB's ids (no permutation pass)."""
    from gnnsys.datasets.ogb import _load_split

    if node_order not in NODE_ORDERS:
        raise ValueError(f"node_order must be one of {NODE_ORDERS}, got {node_order!r}")
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
            drop_loops=False, order=node_order, log=say,
        )  # fmt: skip
        shutil.rmtree(tmp / "coo.tmp")
        t1 = time.perf_counter()
        hot = node_order == "degree"
        x_path, y_path = tmp / "x.npy", tmp / "y.npy"
        if hot:  # in OGB's order first, permuted below
            x_path, y_path = tmp / "x.given.npy", tmp / "y.given.npy"
        feat_dim = _copy_features(data, x_path, n)
        _copy_labels(labels, y_path, n, 172)
        train, val, test = _load_split("ogbn-papers100M", folder, split, n)
        t2 = time.perf_counter()
        permute: Dict[str, Any] = {}
        if hot:  # new row i is raw row orig_ids[i]; split ids become new ids
            orig = tmp / "orig_ids.npy"
            room = _permute_room(budget)
            permute = take_rows(x_path, orig, tmp / "x.npy", memory_budget=room, log=say)
            x_path.unlink()
            take_rows(y_path, orig, tmp / "y.npy", memory_budget=room)
            y_path.unlink()
            train, val, test = renamed_ids(orig, (train, val, test), memory_budget=room)
        t3 = time.perf_counter()
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
            "node_order": node_order,
            "csc_build": report.to_dict(),
            "seconds": {
                "edges_and_csc": round(t1 - t0, 3),
                "features": round(t2 - t1, 3),
                "permute": round(t3 - t2, 3),
            },  # fmt: skip
            "peak_rss_bytes": peak_rss_bytes(),
        }
        if permute:
            meta["permute"] = permute
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


# ---------------------------------------------------------------------- hot-first permutation
def _permute_room(budget: int) -> int:
    # What the permutation may hold: the budget less what the process holds now (never less
    # than _MIN_ROOM, so a conversion whose CSC build fitted is not failed at its last step).
    return max(budget - rss_bytes() - _HEADROOM, _MIN_ROOM)


def take_rows(
    src: Path,
    order: Path,
    dst: Path,
    *,
    memory_budget: Union[int, str],
    log: Optional[Callable[[str], None]] = None,
) -> Dict[str, int]:
    """Write the .npy ``dst`` whose row i is row ``order[i]`` of the .npy ``src`` (C-ordered,
    any dtype and row shape; ``order`` a 1-D integer .npy, usually a permutation), holding at
    most about ``memory_budget`` bytes however big the files are.

    A sorted gather by destination range (see the module docstring for why): ranges of ``k``
    destination rows, each one's source ids sorted and read in ascending order in sequential
    windows of at most ``W`` rows that skip the stretches holding none of them, the range then
    written in order. Peak memory ``k * (8 + 2 * w + row) + W * (2 * row + 8)`` bytes (``w``:
    the id width, ``row``: bytes per row), planned within the budget; the source is read about
    once per range. Returns the plan: ``ranges``, ``range_rows``, ``window_rows``, ``reads``
    (window reads) and ``read_bytes``.

    Example:
        >>> take_rows(Path("x.given.npy"), Path("orig_ids.npy"), Path("x.npy"),
        ...           memory_budget="4G")  # doctest: +SKIP
        {'ranges': 1, ...}
    """
    budget = parse_bytes(memory_budget)
    say = log or (lambda _msg: None)
    shape, dtype, offset = checked_layout(src)
    oshape, odt, ooff = checked_layout(order)
    if len(shape) < 1:
        raise ValueError(f"{src} must be an array of rows, got shape {shape}")
    if len(oshape) != 1 or odt.kind not in "iu":
        raise ValueError(f"{order} must be a 1-D integer array, got {odt} {oshape}")
    n_src, m, tail = int(shape[0]), int(oshape[0]), tuple(shape[1:])
    row = dtype.itemsize * int(np.prod(tail, dtype=np.int64))
    w = odt.itemsize
    per_range, per_window = 8 + 2 * w + row, 2 * row + 8
    if budget < per_range + per_window:
        raise ValueError(
            f"memory_budget {budget} bytes is too small to take rows of {row} bytes: give at "
            f"least {per_range + per_window}"
        )
    window = int(max(1, min(_CHUNK_BYTES // max(row, 1), budget // 4 // per_window)))
    window = min(window, max(n_src, 1))
    k = int(min(max(1, (budget - window * per_window) // per_range), max(m, 1)))
    ranges = -(-m // k)
    say(f"permute {src.name}: {ranges} range(s) of {k} rows, windows of {window} rows")
    buf = np.empty((window, *tail), dtype=dtype)
    raw = memoryview(buf.reshape(-1).view(np.uint8))
    reads = read_bytes = 0
    with open(src, "rb") as fs, open(order, "rb") as fo, open(dst, "wb") as fd:
        fd.write(npy_header(dtype, (m, *tail)))
        for lo in range(0, m, k):
            hi = min(m, lo + k)
            fo.seek(ooff + lo * w)
            ids = np.fromfile(fo, dtype=odt, count=hi - lo)
            if ids.size != hi - lo:
                raise ValueError(f"{order} ended early at row {lo + ids.size}")
            perm = np.argsort(ids)
            ids = ids[perm]
            if ids[0] < 0 or ids[-1] >= n_src:
                bad = int(ids[0]) if ids[0] < 0 else int(ids[-1])
                raise ValueError(f"{order} holds row id {bad}, out of range for {n_src} rows")
            out = np.empty((hi - lo, *tail), dtype=dtype)
            last, i = int(ids[-1]), 0
            while i < ids.size:
                s = int(ids[i])
                e = min(s + window, last + 1)
                j = i + int(np.searchsorted(ids[i:], e))
                nbytes = (e - s) * row
                fs.seek(offset + s * row)
                if fs.readinto(raw[:nbytes]) != nbytes:
                    raise ValueError(f"{src} ended early at row {s}")
                out[perm[i:j]] = buf[ids[i:j] - s]
                reads, read_bytes, i = reads + 1, read_bytes + nbytes, j
            del ids, perm
            out.tofile(fd)
            del out
    return {
        "ranges": ranges,
        "range_rows": k,
        "window_rows": window,
        "reads": reads,
        "read_bytes": read_bytes,
    }


def renamed_ids(
    order: Path, parts: Sequence[np.ndarray], *, memory_budget: Union[int, str]
) -> List[np.ndarray]:
    """``rank[ids]`` for each id array of ``parts`` (rank: the inverse of the permutation in the
    .npy ``order``, e.g. ``orig_ids.npy``), keeping each array's order, without building the
    rank (as big as ``order``): ``order`` is streamed in chunks and matched against the sorted
    distinct ids. Memory: the parts' ids a few times over plus ``memory_budget`` for a chunk."""
    budget = parse_bytes(memory_budget)
    oshape, odt, ooff = checked_layout(order)
    if len(oshape) != 1 or odt.kind not in "iu":
        raise ValueError(f"{order} must be a 1-D integer array, got {odt} {oshape}")
    m = int(oshape[0])
    if not parts:
        return []
    every = [np.asarray(p, dtype=np.int64).reshape(-1) for p in parts]
    uniq, inverse = np.unique(np.concatenate(every), return_inverse=True)
    new = np.full(uniq.size, -1, dtype=np.int64)
    rows = int(max(1, budget // (odt.itemsize + 33)))  # chunk, positions, match, hits
    if uniq.size:
        with open(order, "rb") as fo:
            fo.seek(ooff)
            for lo in range(0, m, rows):
                chunk = np.fromfile(fo, dtype=odt, count=min(rows, m - lo))
                if chunk.size != min(rows, m - lo):
                    raise ValueError(f"{order} ended early at row {lo + chunk.size}")
                pos = np.searchsorted(uniq, chunk)
                np.minimum(pos, uniq.size - 1, out=pos)
                hit = uniq[pos] == chunk
                new[pos[hit]] = lo + np.flatnonzero(hit)
    if (new < 0).any():
        bad = int(uniq[np.flatnonzero(new < 0)[0]])
        raise ValueError(f"{order} does not hold node id {bad}: not a permutation of the ids")
    mapped = new[inverse.reshape(-1)]
    return list(np.split(mapped, np.cumsum([a.size for a in every])[:-1]))
