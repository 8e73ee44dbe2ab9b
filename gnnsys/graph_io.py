"""A Graph on disk: plain .npy files that are memory-mapped back, so a graph bigger than RAM
samples straight from the page cache and every process that opens it shares one copy.

Layout of a graph folder (``save_graph`` writes it; the out-of-core build writes the same)::

    graph.json             {"format": "gnnsys-csc", "version", "num_nodes", "num_edges",
                            "arrays", "node_types", "edge_types"}
    indptr.npy             int64 [N+1]
    indices.npy            int32 [E] (int64 when N >= 2^31)
    edge_ids.npy           optional int64 [E]
    edge_weight.npy        optional float [E]
    node_type_offset.npy   optional int64 [T+1]
    type_per_edge.npy      optional int8/int32 [E]

The files are ordinary .npy arrays (a PyG or DGL user reads them with ``np.load``). Loading
checks every file's presence, header and size against ``graph.json`` before mapping it, so a
truncated or missing file is an error naming it, never a bus error in a kernel.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from gnnsys import _mapped

PathLike = Union[str, "os.PathLike[str]"]

FORMAT = "gnnsys-csc"
VERSION = 1
META_FILE = "graph.json"
ARRAYS = ("indptr", "indices", "edge_ids", "edge_weight", "node_type_offset", "type_per_edge")
_ID_ARRAYS = ("indptr", "indices", "edge_ids", "node_type_offset")  # int32 / int64 only
_REQUIRED = ("indptr", "indices")
_HEADER_BYTES = 128  # the fixed .npy header length of files written piecewise (npy_header)


def save_graph(graph: Any, path: PathLike, *, overwrite: bool = False) -> Path:
    """Write ``graph`` to the folder ``path`` (atomically: a temporary folder renamed into place).

    ``ndata``/``edata`` are not saved (a warning says so when they hold tensors): features
    belong in a dataset folder or a feature store. An existing ``path`` is an error unless
    ``overwrite=True``.

    Example:
        >>> g = Graph.from_edge_index(torch.tensor([[0, 1], [1, 2]]))
        >>> save_graph(g, "/tmp/g")
        PosixPath('/tmp/g')
    """
    from gnnsys.graph import Graph

    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a gnnsys.Graph, got {type(graph).__name__}")
    final = _check_path(path)
    check_replaceable(final, overwrite, (META_FILE,), "saved graph")
    if graph.ndata or graph.edata:
        warnings.warn("Graph.save() does not save ndata/edata", stacklevel=3)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_dir(final)
    try:
        write_graph_files(graph, tmp)
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def write_graph_files(graph: Any, folder: Path) -> None:
    """The graph's arrays and ``graph.json`` into an existing folder (no atomicity of its own:
    callers write into a temporary folder)."""
    arrays = []
    for name in ARRAYS:
        t = getattr(graph, name)
        if t is not None:
            np.save(folder / f"{name}.npy", t.detach().cpu().contiguous().numpy())
            arrays.append(name)
    write_meta(folder, graph.num_nodes, graph.num_edges, arrays, graph)


def write_meta(
    folder: Path, num_nodes: int, num_edges: int, arrays: list, graph: Any = None
) -> None:
    """Write ``graph.json`` (type names from ``graph`` when it is typed)."""
    meta: Dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "num_nodes": int(num_nodes),
        "num_edges": int(num_edges),
        "arrays": sorted(arrays, key=ARRAYS.index),
    }
    if graph is not None and graph.is_hetero:
        meta["node_types"] = list(graph.node_types)
        meta["edge_types"] = [list(et) for et in graph.edge_types]
    (folder / META_FILE).write_text(json.dumps(meta, indent=1))


def is_graph_folder(path: PathLike) -> bool:
    """True when ``path`` holds a saved graph (its ``graph.json``)."""
    return (Path(path) / META_FILE).is_file()


def load_graph(path: PathLike, *, mmap: bool = True, validate: bool = True) -> Any:
    """Read a graph folder back. With ``mmap`` the arrays are memory-mapped (copy-on-write: the
    files are never modified) and the samplers read them in place from the page cache.

    ``validate`` runs ``Graph``'s full checks (ids in range, indptr monotone), which reads
    every page once; the headers and file sizes are always checked. A memory-mapped graph
    pickles as its folder, so worker and DDP processes map the same files instead of copying.

    Example:
        >>> g = load_graph("/tmp/g")
        >>> g.num_edges
        2
    """
    from gnnsys.graph import Graph

    folder = _check_path(path)
    meta_path = folder / META_FILE
    if not folder.is_dir():
        raise FileNotFoundError(f"no graph folder at {str(folder)!r}")
    if not meta_path.is_file():
        raise FileNotFoundError(f"graph folder {str(folder)!r} lacks {META_FILE}")
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError as err:
        raise ValueError(f"{meta_path} is not valid JSON: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{meta_path} does not describe a {FORMAT} graph")
    if meta.get("version") != VERSION:
        raise ValueError(f"{meta_path}: format version {meta.get('version')!r}, expected {VERSION}")
    names = meta.get("arrays", [])
    unknown = [a for a in names if a not in ARRAYS]
    if unknown or any(r not in names for r in _REQUIRED):
        raise ValueError(f"{meta_path}: arrays {names!r} must include indptr and indices")
    counts = [meta.get(k) for k in ("num_nodes", "num_edges")]
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        raise ValueError(
            f"{meta_path}: num_nodes and num_edges must be integers >= 0, got {counts[0]!r} "
            f"and {counts[1]!r}"
        )
    n, e = counts
    expect = {
        "indptr": (n + 1,),
        "indices": (e,),
        "edge_ids": (e,),
        "edge_weight": (e,),
        "type_per_edge": (e,),
    }
    t: Dict[str, torch.Tensor] = {}
    for name in names:
        arr = open_npy(folder / f"{name}.npy", mmap=mmap)
        if name in _ID_ARRAYS and arr.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
            raise ValueError(
                f"{folder / (name + '.npy')} holds {arr.dtype.str}; {name} must be int32 or "
                "int64 in the machine's byte order"
            )
        if arr.ndim != 1 or (name in expect and arr.shape != expect[name]):
            want = expect.get(name, "1-D")
            raise ValueError(
                f"{folder / (name + '.npy')} has shape {arr.shape}, expected {want} "
                f"(graph.json: {n} nodes, {e} edges)"
            )
        t[name] = as_tensor(arr)
    et = meta.get("edge_types")
    graph = Graph(
        t["indptr"],
        t["indices"],
        edge_ids=t.get("edge_ids"),
        edge_weight=t.get("edge_weight"),
        node_type_offset=t.get("node_type_offset"),
        type_per_edge=t.get("type_per_edge"),
        node_types=meta.get("node_types"),
        edge_types=[tuple(x) for x in et] if et is not None else None,
        validate=validate,
    )
    if mmap:
        graph._source = (str(folder), graph.indptr.data_ptr(), graph.indices.data_ptr())
        for tensor in t.values():  # after validation, which reads them in order
            advise_random(tensor)
    return graph


def open_npy(path: Path, *, mmap: bool) -> np.ndarray:
    """``np.load`` of one .npy file whose size is checked against its header first.

    Raises ``FileNotFoundError`` / ``ValueError`` naming the file when it is missing, not an
    array, or truncated (a memory map of a short file would fault at the first read).
    """
    shape, dtype, _ = checked_layout(path)
    size = path.stat().st_size
    try:
        return np.load(path, mmap_mode="c" if mmap else None, allow_pickle=False)
    except OSError as err:
        if not (mmap and err.errno == errno.ENOMEM):
            raise ValueError(f"{path} is not a readable .npy array ({err})") from None
    except ValueError as err:
        raise ValueError(f"{path} is not a readable .npy array ({err})") from None
    # A private (copy-on-write) map counts against the kernel's commit limit, so one bigger than
    # RAM is refused: map the file read-only instead (shared pages, nothing committed).
    warnings.warn(
        f"{path} ({size / 2**30:.1f} GiB) is mapped read-only: a copy-on-write map that large "
        "is refused by the kernel. Reading is unaffected; writing into it would crash.",
        stacklevel=3,
    )
    return np.load(path, mmap_mode="r", allow_pickle=False)


def advise_random(a: Any, *, hot_first: bool = False) -> Optional[str]:
    """Tell the kernel how the memory map behind ``a`` (an array or tensor) will be read:
    samplers and feature gathers touch scattered pages. Returns the advice applied, or None.

    - A map that fits in half of the memory available now gets ``MADV_WILLNEED``: the kernel
      reads it in ahead, sequentially, so it is soon all in the page cache (faulting it in page
      by page at random costs a disk read each: minutes for 1 GB on this project's VM).
    - A bigger one gets ``MADV_RANDOM``, which turns off readahead: each fault of a file bigger
      than the page cache would otherwise read a whole window (8 MB a fault on this VM, whose
      disk has read_ahead_kb=8192: 467 GB read in 10 minutes for a few dozen batches of
      papers-sized features). With ``hot_first`` (rows numbered hot-first, as a folder built
      with ``order="degree"``), its leading half-of-available bytes also get
      ``MADV_WILLNEED``: the rows read most come in by one sequential read-ahead instead of a
      random fault each. Returns ``"MADV_RANDOM+WILLNEED"`` then. A map advised random is
      registered with ``gnnsys._mapped``: row gathers read it from many threads at once.
      The hot prefix is advised random too, although Linux then ignores its pages' accessed
      bits when it evicts (``vma_has_recency``): left to the default advice, each of its
      faults read up to a readahead window, and in a 14 GiB memory cgroup the papers loader
      fell from 6.3 to 2.0 batches/s (no change at full memory, with or without
      ``GNNSYS_MAPPED_RSS_LIMIT``; ``cpu-2core-vm_papers_prefix_advice_s45.jsonl``).

    ``GNNSYS_MMAP_ADVICE=normal`` leaves the kernel's default.
    """
    import mmap as _mmap

    if os.environ.get("GNNSYS_MMAP_ADVICE", "auto") == "normal" or not hasattr(
        _mmap, "MADV_RANDOM"
    ):
        return None
    nbytes = a.numel() * a.element_size() if isinstance(a, torch.Tensor) else a.nbytes
    if nbytes == 0:
        return None
    room = _available_bytes() // 2
    advice = "MADV_WILLNEED" if nbytes <= room else "MADV_RANDOM"
    if not madvise(a, advice):
        return None
    if advice == "MADV_RANDOM":  # gathers read it from many threads (gnnsys._mapped)
        ptr = a.data_ptr() if isinstance(a, torch.Tensor) else a.__array_interface__["data"][0]
        _mapped.mark_random(ptr, nbytes, owner=a)
    if advice == "MADV_RANDOM" and hot_first and room > 0:
        if madvise(a, "MADV_WILLNEED", nbytes=room):
            return "MADV_RANDOM+WILLNEED"
    return advice


def madvise(a: Any, advice: str, *, nbytes: Optional[int] = None) -> bool:
    """``madvise(advice)`` (a name such as ``"MADV_RANDOM"``) over the pages behind ``a``, an
    array or CPU tensor (its first ``nbytes`` only, when given); whether the kernel accepted
    it.

    ``MADV_WILLNEED`` is issued in ``_WILLNEED_CHUNK`` pieces: the kernel reads at most one
    readahead window per call (measured here: one call over 1 GiB of a cold file read 8 MiB,
    this disk's read_ahead_kb; 1024 calls of 1 MiB read all of it, in 0.13-0.2 s of calls, the
    reads themselves going on in the background)."""
    import mmap as _mmap

    if isinstance(a, torch.Tensor):
        ptr, size = a.data_ptr(), a.numel() * a.element_size()
    else:
        ptr, size = a.__array_interface__["data"][0], a.nbytes
    nbytes = size if nbytes is None else min(int(nbytes), size)
    start = ptr - ptr % _mmap.PAGESIZE
    flag = getattr(_mmap, advice)
    return all(
        _mapped.madvise_range(lo, length, flag)
        for lo, length in advice_ranges(start, ptr + nbytes, advice)
    )


_WILLNEED_CHUNK = 1 << 20  # bytes per MADV_WILLNEED call (see madvise); a multiple of pages


def advice_ranges(start: int, end: int, advice: str) -> List[Tuple[int, int]]:
    """The (address, length) pieces ``madvise`` advises [start, end) in: one, or pieces of
    ``_WILLNEED_CHUNK`` bytes for ``MADV_WILLNEED``."""
    if end <= start:
        return [(start, 0)]
    step = _WILLNEED_CHUNK if advice == "MADV_WILLNEED" else end - start
    return [(lo, min(step, end - lo)) for lo in range(start, end, step)]


def _available_bytes() -> int:
    """Memory available to this process (MemAvailable, capped by a memory cgroup's headroom:
    ``_mapped.machine_memory``); 0 when unknown: every map is then advised random."""
    return _mapped.machine_memory()[1]


def as_tensor(a: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` without torch's warning for a read-only map (``open_npy`` warned)."""
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)


def checked_layout(path: Path) -> Tuple[Tuple[int, ...], np.dtype, int]:
    """``npy_layout`` of a file that exists and holds every byte its header promises; else a
    ``FileNotFoundError`` / ``ValueError`` naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    shape, dtype, offset = npy_layout(path)
    need = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size < need:
        raise ValueError(f"{path} is truncated: {size} bytes, its header needs {need}")
    return shape, dtype, offset


def npy_layout(path: Path) -> Tuple[Tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) from a .npy header, or a ValueError naming the file."""
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        except (ValueError, EOFError, OSError) as err:
            raise ValueError(f"{path} is not a .npy array ({err})") from None
        if fortran and len(shape) > 1:
            raise ValueError(f"{path} is Fortran-ordered; write it C-ordered")
        if dtype.hasobject:
            raise ValueError(f"{path} holds Python objects, not numbers")
        return tuple(shape), dtype, f.tell()


def npy_header(dtype: Any, shape: Tuple[int, ...]) -> bytes:
    """A .npy (version 1.0) header of exactly 128 bytes, for files written piece by piece:
    write it with a provisional shape, append the data, rewrite it with the final shape."""
    d = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False}
    d["shape"] = tuple(int(s) for s in shape)
    text = repr(d).encode("latin1")
    body = _HEADER_BYTES - 10
    if len(text) + 1 > body:
        raise ValueError(f"shape {shape} does not fit a {_HEADER_BYTES}-byte .npy header")
    text = text + b" " * (body - len(text) - 1) + b"\n"
    return b"\x93NUMPY\x01\x00" + body.to_bytes(2, "little") + text


def check_replaceable(
    final: Path, overwrite: bool, marks: Sequence[str], what: str, empty_ok: bool = False
) -> None:
    """Raise ``FileExistsError`` unless the folder ``final`` may be written: it does not exist,
    or ``overwrite`` is set and it is an empty folder or one holding a file of ``marks`` (what
    an earlier write left: a ``what``); with ``empty_ok``, an empty folder needs no
    ``overwrite``. A folder that is not a ``what`` is never replaced, nor one that holds the
    working directory: ``overwrite`` deletes the old folder, and a typo in the path (``~`` for
    ``~/data/tiny``) must not cost a user their files. Each message starts with the path, so
    callers (the CLI, ``partition``) can show it as it is."""
    if not final.exists():
        return
    if not final.is_dir():
        raise FileExistsError(f"{final} exists and is not a folder")
    empty = not any(final.iterdir())
    if not overwrite and not (empty_ok and empty):
        tail = " and is not empty" if empty_ok else ""
        raise FileExistsError(
            f"{final} already exists{tail}; pass overwrite=True (--overwrite) to replace it"
        )
    here, there = Path.cwd().resolve(), final.resolve()
    if here == there or there in here.parents:
        raise FileExistsError(f"{final} holds the working directory: refusing to replace it")
    if not empty and not any((final / m).exists() for m in marks):
        raise FileExistsError(
            f"{final} is not empty and holds no {' or '.join(marks)}: refusing to "
            f"replace a folder that is not a {what}"
        )


def replace_dir(tmp: Path, final: Path) -> None:
    """Rename the finished folder ``tmp`` onto ``final`` (moving an old ``final`` away first)."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=final.parent))
        os.rename(final, old / "d")
    os.rename(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _temp_dir(final: Path) -> Path:
    from gnnsys.datasets.dataset import make_temp_dir

    return make_temp_dir(final)


def _check_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return Path(path).expanduser()


def reopen(folder: str) -> Any:
    """Unpickle a memory-mapped graph: map its folder again (``Graph.__reduce__``). The sender
    validated the files already; headers and sizes are checked again."""
    return load_graph(folder, mmap=True, validate=False)


def _file_identity(path: str) -> Tuple[int, ...]:
    """What tells a file from its replacement: device, inode, size, modification time."""
    try:
        st = os.stat(path)
    except OSError:
        return ()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def remember_mapped(t: torch.Tensor, path: Any, *, hot_first: bool = False) -> None:
    """Note on ``t`` that it maps the .npy file ``path`` (its rows, as ``open_npy`` mapped
    them), as a mapped graph keeps its ``_source``, so that a dataset pickled for other
    processes (the pipeline launcher's ranks) can send the file's name instead of the rows: the
    ranks then map the same file, sharing its page cache, where a pickled tensor would be
    copied into shared memory (28 GB for papers' features)."""
    t._npy_source = (str(path), t.data_ptr(), t.numel() * t.element_size(), bool(hot_first),
                     _file_identity(str(path)))  # fmt: skip


def mapped_npy(t: Any) -> Optional[Tuple[str, bool]]:
    """(path, hot_first) of the .npy file that ``t`` maps (``remember_mapped``) while ``t`` is
    still that map, unchanged: the same memory, no page of it written by this process (a
    copy-on-write map keeps written pages to itself, so the file would not hold them), and the
    same file at that path (not one saved over it since). Else None: ``t`` must then travel by
    value."""
    entry = getattr(t, "_npy_source", None) if isinstance(t, torch.Tensor) else None
    if entry is None:
        return None
    path, ptr, nbytes, hot_first, identity = entry
    if t.data_ptr() != ptr or not identity or _file_identity(path) != identity:
        return None
    if not _mapped.unwritten_file_map(ptr, nbytes):
        return None
    return path, hot_first


def reopen_npy(path: str, hot_first: bool) -> torch.Tensor:
    """Map the .npy file ``path`` again in this process (the receiving end of ``mapped_npy``),
    advised as ``load_folder`` advises features, and remembered as a map in turn."""
    a = open_npy(Path(path), mmap=True)
    advise_random(a, hot_first=hot_first)
    t = as_tensor(a)
    remember_mapped(t, path, hot_first=hot_first)
    return t


def file_backed(graph: Any) -> Optional[str]:
    """The folder ``graph`` is mapped from, while its CSC arrays are still the mapped ones."""
    source = getattr(graph, "_source", None)
    if source is None:
        return None
    folder, indptr_ptr, indices_ptr = source
    same = graph.indptr.data_ptr() == indptr_ptr and graph.indices.data_ptr() == indices_ptr
    return folder if same else None
