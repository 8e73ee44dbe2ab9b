"""Out-of-core CSC build: COO edge chunks on disk to a memory-mapped graph folder, within a
memory budget whatever the graph's size.

Method: a multi-scan counting sort by destination range. The first pass streams the chunks and
counts every node's in-degree (8 bytes per node: the only array sized by the graph). The
cumulative degrees cut the node ids into consecutive ranges whose edges fit the budget; each
further pass streams the chunks again, keeps the edges into its range, places them by a stable
counting sort (input order within a column, as ``graph_from_coo``), sorts and dedupes each
column when asked, and appends the range's columns to ``indices.npy`` and their offsets to
``indptr.npy``. Ranges come in node order, so the output is written once, sequentially, with
no temporary files: disk use is the input plus the output.

Why not an external distribution sort (bucket the edges to R files, then sort each bucket)?
It reads the input twice whatever the budget but writes a second copy of it (13 GB of int32
pairs at papers100M scale, on a disk that must also hold 28 GB of features), while with a
budget of a few GB the range count here is small (papers100M: 2-4 ranges at 8 GB), so
re-reading the input from the page cache or disk costs less than writing it again.

Hot-first order (``order="degree"``): the counting pass's degrees also rank the nodes, most
edges first, and every later pass renames the ids of each chunk it reads by that rank (no extra
pass). The new id's original is written to ``orig_ids.npy``. A node's row then sits near the
rows of nodes as hot as itself, so on a table bigger than RAM the hot rows share pages and the
page cache (or a row cache) holds a prefix of the files rather than scattered pages.

Memory: the degree array (8 B/node), two read buffers of ``chunk_edges`` pairs, and per range
the range's edges (id width, plus 1 B keep flag and a compacted copy when deduping) and three
int64 per node. ``build_csc`` plans the ranges from what is left of the budget after the
process's resident memory at the start; ``BuildReport.peak_rss_bytes`` says what the process
really reached.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from gnnsys import _csc
from gnnsys._ids import min_max
from gnnsys.graph_io import (
    META_FILE,
    check_replaceable,
    checked_layout,
    npy_header,
    replace_dir,
    write_meta,
)

PathLike = Union[str, "os.PathLike[str]"]
Log = Optional[Callable[[str], None]]

_SLACK = 32 << 20  # allocator and interpreter headroom kept out of every plan
_MIN_CHUNK = 1 << 12
_MAX_CHUNK = 1 << 23
NODE_ORDERS = ("given", "degree")  # build_csc's node numbering: the input's, or hot-first


def parse_bytes(value: Union[int, str]) -> int:
    """Bytes from an int or a size such as ``"8G"``, ``"512M"``, ``"1.5GiB"`` (powers of 1024).

    Example:
        >>> parse_bytes("2G"), parse_bytes(4096)
        (2147483648, 4096)
    """
    if isinstance(value, bool):
        raise TypeError("memory_budget must be a number of bytes or a size like '8G'")
    if isinstance(value, (int, np.integer)):
        out = int(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", value)
        if not m:
            raise ValueError(f"memory_budget {value!r} is not a size like '8G' or '512M'")
        out = int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))
    else:
        raise TypeError(f"memory_budget must be an int or a str, got {type(value).__name__}")
    if out <= 0:
        raise ValueError(f"memory_budget must be positive, got {value!r}")
    return out


def rss_bytes() -> int:
    """This process's resident set size now (Linux ``/proc``; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (``ru_maxrss``)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


# ---------------------------------------------------------------------- input
class EdgeChunks:
    """COO edges on disk, read in bounded chunks: one or more pairs of 1-D integer .npy files
    (sources, destinations). Reads go into fresh buffers of at most ``max_edges`` pairs, never
    a memory map of the whole file, so they count against the budget and nothing else does.

    Every file's header and size are checked up front: a missing, truncated or non-integer
    file is an error naming it.

    Example:
        >>> chunks = EdgeChunks([("e/src_00000.npy", "e/dst_00000.npy")])  # doctest: +SKIP
        >>> chunks.num_edges  # doctest: +SKIP
        1000
    """

    def __init__(self, parts: Sequence[Tuple[PathLike, PathLike]]) -> None:
        if isinstance(parts, (str, os.PathLike)) or not isinstance(parts, Sequence):
            raise TypeError("parts must be a sequence of (src.npy, dst.npy) path pairs")
        self.parts: List[Tuple[Path, Path, int, np.dtype, np.dtype, int, int]] = []
        for pair in parts:
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise TypeError(f"each part must be a (src, dst) pair of paths, got {pair!r}")
            src, dst = (Path(p).expanduser() for p in pair)
            ns, ts, os_ = _edge_file(src)
            nd, td, od = _edge_file(dst)
            if ns != nd:
                raise ValueError(f"{src} holds {ns} ids but {dst} holds {nd}")
            self.parts.append((src, dst, ns, ts, td, os_, od))

    @classmethod
    def from_folder(cls, folder: PathLike) -> EdgeChunks:
        """The pairs ``src_*.npy``/``dst_*.npy`` of ``folder`` in name order (as
        ``EdgeChunkWriter`` writes them), or its single ``src.npy``/``dst.npy``."""
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"no edge folder at {str(folder)!r}")
        srcs = sorted(folder.glob("src_*.npy"))
        if not srcs and (folder / "src.npy").is_file():
            return cls([(folder / "src.npy", folder / "dst.npy")])
        if not srcs:
            raise FileNotFoundError(f"{folder} holds no src_*.npy / dst_*.npy edge files")
        return cls([(s, s.with_name("dst_" + s.name[4:])) for s in srcs])

    @property
    def num_edges(self) -> int:
        return sum(p[2] for p in self.parts)

    @property
    def pair_bytes(self) -> int:
        """Bytes one edge takes in a read buffer (source plus destination id)."""
        return max((p[3].itemsize + p[4].itemsize for p in self.parts), default=16)

    def read(self, max_edges: int) -> Iterator[Tuple[np.ndarray, np.ndarray, str]]:
        """Yield (src, dst, where) chunks of at most ``max_edges`` edges in file order;
        ``where`` names the file and edge range for error messages."""
        for src, dst, n, ts, td, os_, od in self.parts:
            with open(src, "rb") as fs, open(dst, "rb") as fd:
                for lo in range(0, n, max_edges):
                    k = min(max_edges, n - lo)
                    fs.seek(os_ + lo * ts.itemsize)
                    fd.seek(od + lo * td.itemsize)
                    s = np.fromfile(fs, dtype=ts, count=k)
                    d = np.fromfile(fd, dtype=td, count=k)
                    if s.size != k or d.size != k:
                        raise ValueError(f"{src} / {dst} ended early at edge {lo + s.size}")
                    yield s, d, f"{src.name}/{dst.name} edges {lo}..{lo + k - 1}"


def _edge_file(path: Path) -> Tuple[int, np.dtype, int]:
    shape, dtype, offset = checked_layout(path)
    if len(shape) != 1 or dtype.kind not in "iu" or dtype.itemsize not in (4, 8):
        raise ValueError(f"{path} must be a 1-D int32/int64 array, got {dtype} {shape}")
    return int(shape[0]), dtype.newbyteorder("="), offset


class EdgeChunkWriter:
    """Writes COO chunks as ``src_00000.npy``/``dst_00000.npy``, ... into ``folder``.

    Example:
        >>> w = EdgeChunkWriter("/tmp/e")  # doctest: +SKIP
        >>> w.write(np.array([0, 1]), np.array([1, 2])); w.chunks().num_edges  # doctest: +SKIP
        2
    """

    def __init__(self, folder: PathLike) -> None:
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def write(self, src: np.ndarray, dst: np.ndarray) -> None:
        if src.shape != dst.shape or src.ndim != 1:
            raise ValueError(f"src and dst must be 1-D of one length, got {src.shape}, {dst.shape}")
        np.save(self.folder / f"src_{self.count:05d}.npy", src)
        np.save(self.folder / f"dst_{self.count:05d}.npy", dst)
        self.count += 1

    def chunks(self) -> EdgeChunks:
        return EdgeChunks.from_folder(self.folder)


# ---------------------------------------------------------------------- the build
@dataclass
class BuildReport:
    """What one out-of-core build did: sizes, passes over the input, time, memory.

    ``peak_rss_bytes`` is the process's lifetime peak (``ru_maxrss``, which includes whatever
    ran before the build); ``sampled_peak_rss_bytes`` the largest RSS read during the build,
    at every chunk and at each range's largest allocation.
    """

    num_nodes: int
    input_edges: int
    num_edges: int
    ranges: int
    passes: int
    chunk_edges: int
    order: str
    memory_budget: int
    start_rss_bytes: int
    peak_rss_bytes: int
    sampled_peak_rss_bytes: int
    seconds: Dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def build_csc(
    edges: EdgeChunks,
    num_nodes: int,
    out: PathLike,
    *,
    memory_budget: Union[int, str] = "4G",
    symmetrise: bool = False,
    dedupe: bool = False,
    drop_loops: bool = False,
    chunk_edges: Optional[int] = None,
    range_edges: Optional[int] = None,
    order: str = "given",
    overwrite: bool = False,
    log: Log = None,
) -> BuildReport:
    """Build the CSC of ``edges`` (in-edges grouped by destination) into the graph folder
    ``out`` (atomically), holding at most about ``memory_budget`` bytes resident.

    ``symmetrise`` adds every reverse edge, ``dedupe`` keeps one of parallel edges and sorts
    each column by source, ``drop_loops`` removes self loops: the same graph, bitwise, as
    ``graph_from_coo`` on the concatenated chunks. Load the result with ``Graph.load(out)``.
    A budget too small for the degree array, or for the biggest column, is an error saying
    how much is needed. ``chunk_edges`` (edges per read) and ``range_edges`` (at most this
    many edges gathered per pass) default to what the budget allows; smaller values trade
    passes for memory. ``order="degree"`` renames the nodes hot-first (by their edge count in
    the input, in-edges plus out-edges when symmetrising, counted before deduplication; ties by
    id): the graph is ``graph_from_coo(rank[src], rank[dst])`` and ``orig_ids.npy`` holds each
    new id's original id.

    Example:
        >>> rep = build_csc(EdgeChunks.from_folder("e"), 1000, "g", memory_budget="256M")
        ... # doctest: +SKIP
        >>> Graph.load("g").num_edges == rep.num_edges  # doctest: +SKIP
        True
    """
    final = Path(out).expanduser()
    check_replaceable(final, overwrite, (META_FILE,), "saved graph")
    from gnnsys.datasets.dataset import make_temp_dir

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(final)
    try:
        report = build_csc_into(
            edges, num_nodes, tmp, memory_budget=memory_budget, symmetrise=symmetrise,
            dedupe=dedupe, drop_loops=drop_loops, chunk_edges=chunk_edges,
            range_edges=range_edges, order=order, log=log,
        )  # fmt: skip
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def build_csc_into(
    edges: EdgeChunks,
    num_nodes: int,
    folder: Path,
    *,
    memory_budget: Union[int, str],
    symmetrise: bool,
    dedupe: bool,
    drop_loops: bool,
    chunk_edges: Optional[int] = None,
    range_edges: Optional[int] = None,
    order: str = "given",
    log: Log = None,
) -> BuildReport:
    """``build_csc`` writing straight into an existing folder (a dataset under construction)."""
    if order not in NODE_ORDERS:
        raise ValueError(f"order must be one of {NODE_ORDERS}, got {order!r}")
    if not isinstance(edges, EdgeChunks):
        raise TypeError(f"edges must be an EdgeChunks, got {type(edges).__name__}")
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)):
        raise TypeError(f"num_nodes must be an int, got {type(num_nodes).__name__}")
    if num_nodes < 0:
        raise ValueError(f"num_nodes must be >= 0, got {num_nodes}")
    n = int(num_nodes)
    budget = parse_bytes(memory_budget)
    say = log or (lambda _msg: None)
    t0 = time.perf_counter()
    idt = np.dtype(np.int32 if n < 2**31 else np.int64)
    _load_kernels(edges, idt)
    start_rss = rss_bytes()  # with the kernels loaded: compiled code is resident memory too
    hot_first = order == "degree"
    # the degrees, and the rank when renaming; between the counting pass and the ranges,
    # renaming also holds for a moment the rank's histogram or the renamed degrees (8 B/node),
    # then the original ids and their arange
    fixed = 8 * (n + 1) + (idt.itemsize * n if hot_first else 0) + _SLACK
    transient = max(8 * (n + 2), 2 * idt.itemsize * n) if hot_first else 0
    buffers = 3 if hot_first else 2  # two read buffers (+ the renamed copy)
    if chunk_edges is None:
        room = budget - start_rss - fixed
        chunk_edges = int(
            np.clip(room // 8 // (buffers * edges.pair_bytes), _MIN_CHUNK, _MAX_CHUNK)
        )
    if isinstance(chunk_edges, bool) or not isinstance(chunk_edges, (int, np.integer)):
        raise TypeError(f"chunk_edges must be an int, got {type(chunk_edges).__name__}")
    if chunk_edges < 1:
        raise ValueError(f"chunk_edges must be >= 1, got {chunk_edges}")
    chunk_edges = int(chunk_edges)
    reads = chunk_edges * edges.pair_bytes
    available = budget - start_rss - fixed - buffers * reads
    if available <= 0 or budget - start_rss - fixed - 2 * reads < transient:
        need = start_rss + fixed + max(buffers * reads, 2 * reads + transient)
        raise ValueError(
            f"memory_budget {budget} bytes is too small: this process already holds "
            f"{start_rss} bytes and the build of {n} nodes needs {need - start_rss} more; give "
            f"at least {need + (64 << 20)}"
        )

    peak = [start_rss]

    def sample() -> None:
        peak[0] = max(peak[0], rss_bytes())

    # Pass 1: in-degrees (both directions when symmetrising), ids checked chunk by chunk.
    deg = np.zeros(n + 1, dtype=np.int64)
    for src, dst, where in edges.read(chunk_edges):
        _check_chunk(src, dst, n, where)
        _csc.count_in_degrees(src, dst, deg, symmetrise, drop_loops)
        sample()
    rank = None
    if hot_first:
        rank = np.empty(n, dtype=idt)
        _csc.degree_rank(deg[1:], rank)
        renamed = np.zeros(n + 1, dtype=np.int64)
        renamed[1:][rank] = deg[1:]
        deg = renamed
        del renamed
        orig = np.empty(n, dtype=idt)
        orig[rank] = np.arange(n, dtype=idt)
        np.save(folder / "orig_ids.npy", orig)
        del orig
        sample()
    np.cumsum(deg, out=deg)
    raw = int(deg[-1])
    t1 = time.perf_counter()
    say(f"csc: counted {raw} edges into {n} nodes in {t1 - t0:.1f} s")

    per_edge = idt.itemsize * (2 if dedupe else 1) + (1 if dedupe else 0)
    max_deg = int(_csc.max_column(deg))
    room = available - 12 * max_deg  # the sort's scratch for the biggest column
    if range_edges is not None:
        if isinstance(range_edges, bool) or not isinstance(range_edges, (int, np.integer)):
            raise TypeError(f"range_edges must be an int, got {type(range_edges).__name__}")
        if range_edges < 1:
            raise ValueError(f"range_edges must be >= 1, got {range_edges}")
    cap = int(range_edges) if range_edges is not None else 2**62
    cuts = _csc.plan_ranges(deg, per_edge, 24, max(room, 0), cap)
    if n and cuts[0] == -1:
        v = int(cuts[1])
        d = int(deg[v + 1] - deg[v])
        raise ValueError(
            f"memory_budget {budget} bytes is too small: node {v} alone has {d} in-edges "
            f"({d * (per_edge + 12)} bytes to sort); give at least "
            f"{budget - room + d * (per_edge + 12) + (64 << 20)}"
            + (" (or a larger range_edges)" if range_edges is not None else "")
        )
    ranges = len(cuts) - 1
    sweeps = 2 if (symmetrise and not dedupe) else 1
    say(f"csc: {ranges} destination range(s), {ranges * sweeps} more pass(es) over the input")

    total = 0
    ip_path, ix_path = folder / "indptr.npy", folder / "indices.npy"
    with open(ip_path, "wb") as fip, open(ix_path, "wb") as fix:
        fip.write(npy_header(np.int64, (n + 1,)))
        fix.write(npy_header(idt, (raw,)))
        np.zeros(1, dtype=np.int64).tofile(fip)
        for r in range(ranges):
            lo, hi = int(cuts[r]), int(cuts[r + 1])
            local = deg[lo : hi + 1] - deg[lo]
            fill = local[:-1].copy()
            cols = np.empty(int(local[-1]), dtype=idt)
            for sweep in range(sweeps):
                for src, dst, _ in edges.read(chunk_edges):
                    if rank is not None:
                        src, dst = rank[src], rank[dst]
                    if sweeps == 2:  # graph_from_coo order: every forward edge, then reverses
                        a, b = (src, dst) if sweep == 0 else (dst, src)
                        _csc.scatter_range(a, b, lo, hi, fill, cols, drop_loops)
                        continue
                    _csc.scatter_range(src, dst, lo, hi, fill, cols, drop_loops)
                    if symmetrise:
                        _csc.scatter_range(dst, src, lo, hi, fill, cols, drop_loops)
                    sample()
            if not np.array_equal(fill, local[1:]):
                raise ValueError("the edge files changed between passes of the build")
            del fill
            if dedupe:
                res = _csc.sort_and_filter(local, cols, None, dedupe=True, drop_loops=False)
                sample()  # the range's edges twice over (sorted and compacted): its peak
                local, cols, _ = res
                del res
            cols.tofile(fix)
            (local[1:] + total).tofile(fip)
            total += int(local[-1])
            del cols, local
            say(f"csc: range {r + 1}/{ranges} (nodes {lo}..{hi - 1}) done, {total} edges")
        fix.seek(0)
        fix.write(npy_header(idt, (total,)))
        fix.truncate(len(npy_header(idt, (total,))) + total * idt.itemsize)
    write_meta(folder, n, total, ["indptr", "indices"])
    t2 = time.perf_counter()
    return BuildReport(
        num_nodes=n,
        input_edges=edges.num_edges,
        num_edges=total,
        ranges=ranges,
        passes=1 + ranges * sweeps,
        chunk_edges=chunk_edges,
        order=order,
        memory_budget=budget,
        start_rss_bytes=start_rss,
        peak_rss_bytes=peak_rss_bytes(),
        sampled_peak_rss_bytes=peak[0],
        seconds={"count": round(t1 - t0, 3), "ranges": round(t2 - t1, 3)},
    )


def _load_kernels(edges: EdgeChunks, idt: Any) -> None:
    # Run every kernel once on two edges of the input's dtypes, so that their compiled code
    # (tens of MB resident) is counted in the start RSS the ranges are planned from.
    ptr = np.array([0, 2, 2], dtype=np.int64)
    _csc.plan_ranges(ptr, 4, 24, 1 << 20, 10)
    _csc.max_column(ptr)
    _csc.degree_rank(ptr, np.empty(3, dtype=idt))
    r = np.ones(2, dtype=idt)
    _csc.scatter_range(r, r, 0, 2, np.zeros(2, np.int64), np.zeros(2, idt), True)
    _csc.sort_and_filter(ptr, np.array([1, 1], dtype=idt), None, dedupe=True, drop_loops=False)
    for _, _, _, ts, td, _, _ in edges.parts[:1]:
        s, d = np.zeros(2, dtype=ts), np.ones(2, dtype=td)
        _csc.count_in_degrees(s, d, np.zeros(3, dtype=np.int64), True, True)
        _csc.scatter_range(s, d, 0, 2, np.zeros(2, np.int64), np.zeros(2, idt), True)
        _csc.scatter_range(d, s, 0, 2, np.zeros(2, np.int64), np.zeros(2, idt), True)
        min_max(s), min_max(d)


def _check_chunk(src: np.ndarray, dst: np.ndarray, n: int, where: str) -> None:
    # The kernels index by these ids without bounds checks: validate every chunk first.
    for name, ids in (("source", src), ("destination", dst)):
        if ids.size == 0:
            continue
        lo, hi = min_max(ids)
        if lo < 0 or hi >= n:
            bad = int(lo) if lo < 0 else int(hi)
            raise ValueError(f"{where}: {name} id {bad} is out of range for {n} nodes")
