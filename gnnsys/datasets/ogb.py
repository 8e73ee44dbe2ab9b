"""OGB node-property datasets from a folder the user already has: no download, no prompt.

Reads, in this order, whichever the folder ``<root>/<name with _>/`` (or ``..._pyg``) holds:

1. ``processed/geometric_data_processed.pt`` (what ``PygNodePropPredDataset`` writes),
2. ``processed/data_processed`` (what ``NodePropPredDataset`` writes),
3. the raw files as downloaded: ``raw/{edge, node-feat, node-label, num-node-list,
   num-edge-list}.csv.gz`` (arxiv, products) or ``raw/data.npz`` + ``raw/node-label.npz``
   (papers100M),

plus the split ``split/<split>/{train,valid,test}.csv.gz`` (or ``split_dict.pt``). Processed
files are torch pickles, loaded with ``weights_only=False`` (ogb 1.3.6's own loader breaks on
torch >= 2.6): only point this at folders you trust. CSV files are parsed by a parallel numba
reader, not pandas.
"""

from __future__ import annotations

import gzip
import os
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numba
import numpy as np
import torch
from numba import njit, prange
from numba.core import types
from numba.extending import overload

from gnnsys.checkpoint import TORCH_LOAD_ERRORS, load_error_text
from gnnsys.datasets.dataset import Dataset, graph_from_coo
from gnnsys.datasets.outofcore import NODE_ORDERS as _NODE_ORDERS

PathLike = Union[str, "os.PathLike[str]"]

OGB_NAMES = ("ogbn-arxiv", "ogbn-products", "ogbn-papers100M")

# name -> (num_classes, default split, edge list stores each undirected edge once, binary raw)
_INFO = {
    "ogbn-arxiv": (40, "time", False, False),
    "ogbn-products": (47, "sales_ranking", True, False),
    "ogbn-papers100M": (172, "time", False, True),
}
_RAW_CSV = (
    "edge.csv.gz",
    "node-feat.csv.gz",
    "node-label.csv.gz",
    "num-node-list.csv.gz",
    "num-edge-list.csv.gz",
)
_RAW_NPZ = ("data.npz", "node-label.npz")
_PYG_FILE = "geometric_data_processed.pt"
_AGNOSTIC_FILE = "data_processed"
_SPLIT_FILES = ("train.csv.gz", "valid.csv.gz", "test.csv.gz")


def ogb(
    name: str,
    root: PathLike,
    *,
    undirected: bool = True,
    split: Optional[str] = None,
    memory_budget: Union[int, str] = "8G",
    node_order: Optional[str] = None,
) -> Dataset:
    """Load ``ogbn-arxiv``, ``ogbn-products`` or ``ogbn-papers100M`` from ``root``, offline.

    papers100M's raw npz files are converted once, streamed within ``memory_budget``, to a
    memory-mapped CSC folder in ``processed/`` beside them (or under ``$GNNSYS_HOME/ogb``
    when that is not writable), and read from there afterwards: the edge list (26 GB) and
    features (57 GB) are never in memory at once; features become float16 (see
    ``gnnsys.datasets.ogb_stream``).

    ``node_order`` numbers papers100M's converted nodes: ``"degree"`` (the default for the raw
    files) hot-first, most edges first, with features, labels and split ids permuted to match
    and each node's OGB id in ``orig_ids.npy`` beside them, so that mini-batch feature reads
    from a table bigger than RAM mostly hit a cached prefix (much faster training); ``"given"``
    keeps OGB's ids. Each order is converted to (and cached in) its own folder. Only
    papers100M's raw files can be renamed: any other source keeps the given order, and asking
    it for ``"degree"`` is an error.

    ``undirected`` symmetrises the directed citation graphs (arxiv, papers100M) and drops the
    duplicate edges that creates, as the OGB examples do before training; ``False`` keeps the
    edges as the files list them (citing -> cited). products is symmetric either way. Features
    keep their stored float dtype. ``split`` overrides the default split folder. Unlabelled
    nodes (papers100M) get label -1. A missing or malformed folder raises an error that lists
    the expected files.

    Example:
        >>> ds = gnnsys.datasets.ogb("ogbn-arxiv", root="~/data/ogb")
        >>> ds.num_classes
        40
    """
    if node_order not in (None, *_NODE_ORDERS):
        raise ValueError(f"node_order must be one of {_NODE_ORDERS}, got {node_order!r}")
    if name == "ogbn-mag":  # heterogeneous: a HeteroDataset (see gnnsys.datasets.ogb_mag)
        from gnnsys.datasets.ogb_mag import ogbn_mag

        if node_order == "degree":
            raise ValueError("node_order='degree' is for ogbn-papers100M's raw files only")

        return ogbn_mag(root, undirected=undirected, split=split)  # type: ignore[return-value]
    if name not in _INFO:
        raise ValueError(f"unknown OGB dataset {name!r}; choose one of {OGB_NAMES}")
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a str or os.PathLike, got {type(root).__name__}")
    if not isinstance(undirected, bool):
        raise TypeError(f"undirected must be a bool, got {type(undirected).__name__}")
    num_classes, default_split, inverse, binary = _INFO[name]
    split = default_split if split is None else split
    folder = _find_folder(name, Path(root).expanduser())
    if binary and all((folder / "raw" / f).is_file() for f in _RAW_NPZ):
        order = "degree" if node_order is None else node_order
        return _papers_streamed(folder, undirected, split, memory_budget, order)
    if node_order == "degree":
        raise ValueError(
            f"node_order='degree' is for ogbn-papers100M's raw files only (raw/{_RAW_NPZ[0]}, "
            f"raw/{_RAW_NPZ[1]}); {name} in {str(folder)!r} is read in its given order"
        )
    src, dst, x, y, n, source = _load_graph(name, folder, inverse, binary)
    train, val, test = _load_split(name, folder, split, n)
    y = _labels(y, n, num_classes, folder)
    if x.ndim != 2 or x.shape[0] != n:
        raise ValueError(f"node features in {folder} have shape {x.shape}, expected [{n}, F]")
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    symmetric = name == "ogbn-products"
    if symmetric and inverse and source == "raw":
        graph = graph_from_coo(src, dst, n, symmetrise=True)
    elif undirected and not symmetric:
        graph = graph_from_coo(src, dst, n, symmetrise=True, dedupe=True)
    else:
        graph = graph_from_coo(src, dst, n)
    del src, dst
    return Dataset(
        name=name,
        graph=graph,
        x=torch.from_numpy(x),
        y=torch.from_numpy(y),
        train_idx=torch.from_numpy(train),
        val_idx=torch.from_numpy(val),
        test_idx=torch.from_numpy(test),
        num_classes=num_classes,
        meta={"source": f"{folder} ({source})", "split": split, "undirected": undirected},
    )


def _papers_streamed(
    folder: Path, undirected: bool, split: str, memory_budget: Union[int, str], node_order: str
) -> Dataset:
    import hashlib
    import json
    import sys

    from gnnsys.datasets.folder import load_folder
    from gnnsys.datasets.ogb_stream import papers100m_to_folder
    from gnnsys.datasets.synthetic import default_root

    # The converted folder is keyed by the raw files' sizes and times: new raw files, new folder;
    # and by the node order (each order its own folder; meta's order is checked as well).
    stamp = [(folder / "raw" / f).stat() for f in _RAW_NPZ]
    key = hashlib.sha1(repr([(s.st_size, s.st_mtime_ns) for s in stamp]).encode()).hexdigest()
    kind = "undirected" if undirected else "directed"
    name = f"gnnsys_csc_{kind}_{node_order}_{split}_{key[:10]}"

    def converted(path: Path) -> bool:  # a finished folder of this order (older: "given")
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError):
            return False
        return isinstance(meta, dict) and meta.get("node_order", "given") == node_order

    out = folder / "processed" / name
    if not converted(out):
        try:
            (folder / "processed").mkdir(exist_ok=True)
            probe = folder / "processed" / f".probe{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError:  # a read-only dataset folder: convert into the gnnsys cache
            where = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]
            out = default_root() / "ogb" / f"ogbn-papers100M-{where}" / name
    if not converted(out):
        papers100m_to_folder(
            folder, out, undirected=undirected, split=split, memory_budget=memory_budget,
            node_order=node_order, log=lambda m: print(f"gnnsys: {m}", file=sys.stderr, flush=True),
        )  # fmt: skip
    ds = load_folder(out)
    meta = json.loads((out / "meta.json").read_text())
    ds.meta.update({"source": meta["source"], "split": split, "undirected": undirected})
    return ds


# ---------------------------------------------------------------------- layout
def _expected(name: str, folder: Path) -> str:
    _, split, _, binary = _INFO[name]
    raw = _RAW_NPZ if binary else _RAW_CSV
    return (
        f"expected in {folder}: processed/{_PYG_FILE}, or processed/{_AGNOSTIC_FILE}, or "
        f"raw/{{{', '.join(raw)}}}; and split/{split}/{{{', '.join(_SPLIT_FILES)}}} "
        "(or split/<split>/split_dict.pt)"
    )


def _find_folder(name: str, root: Path) -> Path:
    base = name.replace("-", "_")
    candidates = [root / base, root / f"{base}_pyg"]
    if root.name in (base, f"{base}_pyg"):
        candidates.insert(0, root)
    for c in candidates:
        if c.is_dir() and ((c / "raw").is_dir() or (c / "processed").is_dir()):
            return c
    raise FileNotFoundError(
        f"no {name} folder under {str(root)!r}: looked for {', '.join(map(str, candidates))}; "
        + _expected(name, root / base)
    )


def _load_graph(
    name: str, folder: Path, inverse: bool, binary: bool
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, str]:
    """(src, dst, x, y, num_nodes, source) from the first readable source."""
    problems: List[str] = []
    pyg = folder / "processed" / _PYG_FILE
    agnostic = folder / "processed" / _AGNOSTIC_FILE
    for path, reader in ((pyg, _read_pyg), (agnostic, _read_agnostic)):
        if path.is_file():
            try:
                return (*reader(path), "processed")
            except (OSError, *TORCH_LOAD_ERRORS) as err:  # a damaged cache: read raw/
                problems.append(f"{path}: {load_error_text(err, first_sentence=False)}")
    raw = folder / "raw"
    needed = _RAW_NPZ if binary else _RAW_CSV
    missing = [f for f in needed if not (raw / f).is_file()]
    if not missing:
        if problems:
            warnings.warn(f"reading raw files; {'; '.join(problems)}", stacklevel=3)
        return (*(_read_raw_npz(raw) if binary else _read_raw_csv(raw)), "raw")
    problems.append(f"raw/ lacks {', '.join(missing)}")
    raise FileNotFoundError(
        f"cannot load {name} from {str(folder)!r} ({'; '.join(problems)}); "
        + _expected(name, folder)
    )


def _torch_load(path: Path) -> Any:
    # weights_only exists since torch 1.13; it must be False for pickled numpy / PyG objects.
    return torch.load(path, map_location="cpu", weights_only=False)


def _fields(obj: Any) -> Dict[str, Any]:
    # A PyG Data of any version (attributes in `_store`, or the pre-2.0 `__dict__`), or a dict.
    if isinstance(obj, dict):
        return obj
    d = getattr(obj, "__dict__", None)
    if not isinstance(d, dict):
        raise TypeError(f"expected a PyG Data object, got {type(obj).__name__}")
    store = d.get("_store")
    if store is not None:
        return dict(store.items())
    return d


def _read_pyg(path: Path) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    obj = _torch_load(path)
    data = obj[0] if isinstance(obj, (tuple, list)) else obj
    f = _fields(data)
    ei, x, y = (_np(f.get(k), f"{path.name}: {k}") for k in ("edge_index", "x", "y"))
    n = f.get("num_nodes", f.get("__num_nodes__"))
    n = x.shape[0] if n is None else n
    return (*_split_edge_index(ei, path.name), x, y, int(n))


def _read_agnostic(path: Path) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    obj = _torch_load(path)
    if not isinstance(obj, dict) or "graph" not in obj or "labels" not in obj:
        raise ValueError("expected a dict with 'graph' and 'labels'")
    g = obj["graph"]
    ei, x = _np(g.get("edge_index"), "edge_index"), _np(g.get("node_feat"), "node_feat")
    y = _np(obj["labels"], "labels")
    n = g.get("num_nodes", x.shape[0])
    return (*_split_edge_index(ei, path.name), x, y, int(n))


def _np(v: Any, what: str) -> np.ndarray:
    if v is None:
        raise KeyError(f"{what} is missing")
    if isinstance(v, torch.Tensor):
        return v.numpy()
    if isinstance(v, np.ndarray):
        return v
    raise TypeError(f"{what} must be a tensor or numpy array, got {type(v).__name__}")


def _split_edge_index(ei: np.ndarray, what: str) -> Tuple[np.ndarray, np.ndarray]:
    if ei.ndim != 2 or ei.shape[0] != 2 or ei.dtype.kind not in "iu":
        raise ValueError(f"{what}: edge_index must be an integer array [2, E], got {ei.shape}")
    return ei[0], ei[1]


def _read_raw_csv(raw: Path) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    n = _single_count(raw / "num-node-list.csv.gz")
    e = _single_count(raw / "num-edge-list.csv.gz")
    edges = read_csv_gz(raw / "edge.csv.gz", integer=True, rows=e, cols=2)
    x = read_csv_gz(raw / "node-feat.csv.gz", integer=False, rows=n, dtype=np.float32)
    y = read_csv_gz(raw / "node-label.csv.gz", integer=False, rows=n, cols=1)
    return edges[:, 0].copy(), edges[:, 1].copy(), x, y, n


def _read_raw_npz(raw: Path) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    try:
        with np.load(raw / "data.npz") as d:
            missing = [k for k in ("edge_index", "node_feat", "num_nodes_list") if k not in d]
            if missing:
                raise ValueError(f"{raw / 'data.npz'} lacks the arrays {missing}")
            ei, x = d["edge_index"], d["node_feat"]
            nl = d["num_nodes_list"]
        with np.load(raw / "node-label.npz") as d:
            if "node_label" not in d:
                raise ValueError(f"{raw / 'node-label.npz'} lacks the array 'node_label'")
            y = d["node_label"]
    except (OSError, EOFError) as err:
        raise ValueError(f"unreadable npz file in {raw}: {err}") from None
    if nl.size != 1:
        raise ValueError(f"num_nodes_list must hold one graph, got {nl.size}")
    src, dst = _split_edge_index(ei, "data.npz")
    return src, dst, x, y, int(nl[0])


def _single_count(path: Path) -> int:
    v = read_csv_gz(path, integer=True)
    if v.shape != (1, 1) or v[0, 0] < 0:
        got = f"{int(v[0, 0])}" if v.shape == (1, 1) else f"shape {v.shape}"
        raise ValueError(f"{path} must hold one non-negative count, got {got}")
    return int(v[0, 0])


def _labels(y: np.ndarray, n: int, num_classes: int, folder: Path) -> np.ndarray:
    y = np.asarray(y).reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"labels in {folder} have shape {y.shape}, expected [{n}] or [{n}, 1]")
    return checked_labels(y, num_classes, f"labels in {folder}")


def checked_labels(y: np.ndarray, num_classes: int, where: str) -> np.ndarray:
    """OGB's labels as int64 class ids, -1 where unlabelled (float NaN); non-integer values or
    ids outside -1..num_classes-1 are errors naming ``where``. Works on any chunk of them
    (``ogb_stream`` copies papers100M's labels chunk by chunk)."""
    if y.dtype.kind == "f":
        y = np.where(np.isnan(y), -1.0, y)
        if np.any(y != np.floor(y)):
            raise ValueError(f"{where} hold non-integer values")
    y = y.astype(np.int64)
    if y.size and (y.min() < -1 or y.max() >= num_classes):
        bad = int(y.min()) if y.min() < -1 else int(y.max())
        raise ValueError(f"{where} hold {bad}, outside 0..{num_classes - 1}")
    return y


def _load_split(
    name: str, folder: Path, split: str, n: int
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = folder / "split" / split
    if (d / "split_dict.pt").is_file():
        try:
            obj = _torch_load(d / "split_dict.pt")
        except TORCH_LOAD_ERRORS as err:
            raise ValueError(
                f"{d / 'split_dict.pt'} cannot be read "
                f"({load_error_text(err, first_sentence=False)}); "
                "replace it with OGB's, or delete it to read the split's CSV files"
            ) from None
        if not isinstance(obj, dict) or any(k not in obj for k in ("train", "valid", "test")):
            raise ValueError(f"{d / 'split_dict.pt'} must be a dict with train, valid, test")
        parts = [np.asarray(obj[k]) for k in ("train", "valid", "test")]
    else:
        missing = [f for f in _SPLIT_FILES if not (d / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"split folder {str(d)!r} lacks {', '.join(missing)}; " + _expected(name, folder)
            )
        parts = [read_csv_gz(d / f, integer=True).reshape(-1) for f in _SPLIT_FILES]
    out = []
    for k, p in zip(("train", "valid", "test"), parts):
        p = np.asarray(p).reshape(-1)
        if p.dtype.kind not in "iu":
            raise ValueError(f"split {split}/{k} must hold integer node ids, got {p.dtype}")
        if p.size and (p.min() < 0 or p.max() >= n):
            bad = int(p.min()) if p.min() < 0 else int(p.max())
            raise IndexError(f"split {split}/{k} holds node id {bad}, out of range for {n} nodes")
        out.append(p.astype(np.int64))
    return out[0], out[1], out[2]


# ---------------------------------------------------------------------- CSV reader
_BLOCK = 1 << 26  # decompressed bytes per parse step
_MIN_CHUNK = 1 << 20  # bytes per parallel parse chunk, at least
_POW10 = np.array([10.0**k for k in range(23)])
_MAX_DEFLATE_RATIO = 1032  # deflate expands a byte to at most about 1032 bytes


def read_csv_gz(
    path: PathLike,
    *,
    integer: bool,
    rows: Optional[int] = None,
    cols: Optional[int] = None,
    dtype: Any = None,
) -> np.ndarray:
    """Parse a gzip CSV of numbers into a [rows, cols] array (int64, or float64 / ``dtype``).

    Streams the file in blocks and parses each block in parallel. ``rows``/``cols`` given are
    checked; a bad token or a short row raises ValueError naming the file and line. Floats
    accept ``nan``/``inf``.

    Example:
        >>> read_csv_gz("raw/edge.csv.gz", integer=True, cols=2).shape[1]
        2
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing file {path}")
    out_dtype = np.int64 if integer else np.dtype(dtype or np.float64)
    if not integer and out_dtype.kind != "f":
        raise ValueError(f"integer=False parses numbers into a float dtype, got dtype {dtype}")
    size = path.stat().st_size
    most = size * _MAX_DEFLATE_RATIO // 2  # a row is 2 bytes at least ("0\n")
    if rows is not None and rows > most:
        raise ValueError(
            f"{path} is expected to hold {rows} rows, more than its {size} "
            f"compressed bytes can (at most {most}): the row count beside it is wrong"
        )
    blocks: List[np.ndarray] = []
    filled = 0
    line = 1
    out = np.empty((rows, cols or 1), dtype=out_dtype) if rows is not None and cols else None
    carry = b""
    try:
        with gzip.open(path, "rb") as fh:
            while True:
                chunk = fh.read(_BLOCK)
                eof = not chunk
                data = carry + chunk
                if not eof:
                    cut = data.rfind(b"\n") + 1
                    if cut == 0:
                        carry = data
                        continue
                    data, carry = data[:cut], data[cut:]
                else:
                    carry = b""
                if data:
                    buf = np.frombuffer(data, dtype=np.uint8)
                    if cols is None:
                        cols = _count_cols(buf)
                        if cols and rows is not None:
                            out = np.empty((rows, cols), dtype=out_dtype)
                    if cols:
                        part = _parse_block(buf, cols, integer, out_dtype, path, line)
                        k = part.shape[0]
                        if out is not None:
                            if filled + k > rows:
                                raise ValueError(f"{path} has more than the expected {rows} rows")
                            out[filled : filled + k] = part
                        else:
                            blocks.append(part)
                        filled += k
                        line += int(np.count_nonzero(buf == 10))
                if eof:
                    break
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ValueError(f"{path} is not a readable gzip file: {err}") from None
    if out is None:
        out = np.concatenate(blocks) if blocks else np.empty((0, cols or 0), dtype=out_dtype)
    if rows is not None and filled != rows:
        raise ValueError(f"{path} has {filled} rows, expected {rows}")
    return out


def _count_cols(buf: np.ndarray) -> int:
    # Fields in the first non-blank line (0 when every line is blank).
    data = memoryview(buf)
    pos = 0
    while pos < len(data):
        end = bytes(data[pos : pos + (1 << 16)]).find(b"\n")
        nxt = pos + end if end >= 0 else len(data)
        s = bytes(data[pos:nxt]).strip()
        if s:
            return s.count(b",") + 1
        pos = nxt + 1
    return 0


def _parse_block(
    buf: np.ndarray, cols: int, integer: bool, dtype: Any, path: Path, line0: int
) -> np.ndarray:
    chunks = max(1, min(4 * numba.get_num_threads(), buf.size // _MIN_CHUNK))
    bounds = _chunk_bounds(buf, chunks)
    counts = _count_rows(buf, bounds)
    starts = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    out = np.empty((int(starts[-1]), cols), dtype=dtype)
    err = np.full(counts.size, -1, dtype=np.int64)
    _parse_rows(buf, bounds, starts, out, err)
    bad = err[err >= 0]
    if bad.size:
        pos = int(bad.min())
        lineno = line0 + int(np.count_nonzero(buf[:pos] == 10))
        lo = pos
        while lo > 0 and buf[lo - 1] != 10:
            lo -= 1
        hi = pos
        while hi < buf.size and buf[hi] != 10:
            hi += 1
        text = buf[lo:hi].tobytes()[:80].decode("ascii", "replace")
        kind = "integers" if integer else "numbers"
        raise ValueError(
            f"{path}: line {lineno}: expected {cols} comma-separated {kind}, got {text!r}"
        )
    return out


@njit(nogil=True, cache=True)
def _chunk_bounds(buf, chunks):
    n = buf.shape[0]
    bounds = np.empty(chunks + 1, dtype=np.int64)
    bounds[0] = 0
    for k in range(1, chunks):
        p = max(bounds[k - 1], (n * k) // chunks)
        while p < n and (p == 0 or buf[p - 1] != 10):
            p += 1
        bounds[k] = p
    bounds[chunks] = n
    return bounds


@njit(nogil=True, cache=True)
def _blank(c):
    return c == 32 or c == 9 or c == 13


@njit(nogil=True, parallel=True, cache=True)
def _count_rows(buf, bounds):
    # Rows = lines holding something other than blanks.
    chunks = bounds.shape[0] - 1
    counts = np.zeros(chunks, dtype=np.int64)
    for k in prange(chunks):
        rows = 0
        content = False
        for i in range(bounds[k], bounds[k + 1]):
            c = buf[i]
            if c == 10:
                if content:
                    rows += 1
                content = False
            elif not _blank(c):
                content = True
        if content:
            rows += 1
        counts[k] = rows
    return counts


@njit(nogil=True, cache=True)
def _skip_blank(buf, i, end):
    while i < end and _blank(buf[i]):
        i += 1
    return i


@njit(nogil=True, cache=True)
def _parse_int(buf, i, end):
    # Returns (value, next position, ok).
    neg = False
    if i < end and (buf[i] == 45 or buf[i] == 43):
        neg = buf[i] == 45
        i += 1
    v = np.int64(0)
    digits = 0
    while i < end and 48 <= buf[i] <= 57:
        if digits >= 18:
            return v, i, False
        v = v * 10 + (buf[i] - 48)
        digits += 1
        i += 1
    return (-v if neg else v), i, digits > 0


@njit(nogil=True, cache=True)
def _lower(c):
    return c + 32 if 65 <= c <= 90 else c


@njit(nogil=True, cache=True)
def _parse_float(buf, i, end):
    # Decimal mantissa (18 significant digits) times a power of ten; exact powers up to 1e22.
    neg = False
    if i < end and (buf[i] == 45 or buf[i] == 43):
        neg = buf[i] == 45
        i += 1
    if i < end and (_lower(buf[i]) == 110 or _lower(buf[i]) == 105):  # nan, inf
        if i + 2 < end:
            w = (_lower(buf[i]), _lower(buf[i + 1]), _lower(buf[i + 2]))
            if w[0] == 110 and w[1] == 97 and w[2] == 110:
                return np.nan, i + 3, True
            if w[0] == 105 and w[1] == 110 and w[2] == 102:
                return (-np.inf if neg else np.inf), i + 3, True
        return 0.0, i, False
    mant = np.int64(0)
    sig = 0
    exp10 = 0
    digits = 0
    while i < end and 48 <= buf[i] <= 57:
        if sig < 18:
            mant = mant * 10 + (buf[i] - 48)
            if mant > 0:
                sig += 1
        else:
            exp10 += 1
        digits += 1
        i += 1
    if i < end and buf[i] == 46:
        i += 1
        while i < end and 48 <= buf[i] <= 57:
            if sig < 18:
                mant = mant * 10 + (buf[i] - 48)
                exp10 -= 1
                if mant > 0:
                    sig += 1
            digits += 1
            i += 1
    if digits == 0:
        return 0.0, i, False
    if i < end and (buf[i] == 101 or buf[i] == 69):
        e, i, ok = _parse_int(buf, i + 1, end)
        if not ok:
            return 0.0, i, False
        exp10 += max(min(e, 100000), -100000)
    v = np.float64(mant)
    if 0 <= exp10 <= 22:
        v *= _POW10[exp10]
    elif -22 <= exp10 < 0:
        v /= _POW10[-exp10]
    elif mant != 0:
        v *= 10.0**exp10
    return (-v if neg else v), i, True


@njit(nogil=True, cache=True)
def _next_field(buf, i, end, col, cols):
    # After a value: blanks, then "," before the last column or end of line after it.
    i = _skip_blank(buf, i, end)
    if col < cols - 1:
        if i < end and buf[i] == 44:
            return i + 1, True
        return i, False
    if i >= end or buf[i] == 10:
        return i, True
    return i, False


@njit(nogil=True, cache=True)
def _next_row(buf, i, end):
    # Skip blank lines; returns the start of the next row's content (or end).
    while i < end and (buf[i] == 10 or _blank(buf[i])):
        i += 1
    return i


def _parse_cell(buf, i, end, out):  # pragma: no cover - typed by the overload below
    raise NotImplementedError


@overload(_parse_cell, jit_options={"nogil": True, "cache": True})
def _parse_cell_typed(buf, i, end, out):
    # The parser follows the output's dtype at compile time: integers stay exact int64 (no
    # float round trip), everything else parses as a float.
    if isinstance(out.dtype, types.Integer):
        return lambda buf, i, end, out: _parse_int(buf, i, end)
    return lambda buf, i, end, out: _parse_float(buf, i, end)


@njit(nogil=True, parallel=True, cache=True)
def _parse_rows(buf, bounds, starts, out, err):
    cols = out.shape[1]
    for k in prange(bounds.shape[0] - 1):
        end = bounds[k + 1]
        i = _next_row(buf, bounds[k], end)
        r = starts[k]
        while i < end:
            for c in range(cols):
                i = _skip_blank(buf, i, end)
                v, i, ok = _parse_cell(buf, i, end, out)
                if ok:
                    i, ok = _next_field(buf, i, end, c, cols)
                if not ok:
                    err[k] = i
                    break
                out[r, c] = v
            if err[k] >= 0:
                break
            r += 1
            i = _next_row(buf, i, end)
