"""Partition folders: a dataset split into parts on disk, one part per machine.

``partition`` assigns every node to a part (``gnnsys.pipeline_parallel.partition``: METIS via
pymetis, a BFS fallback, or seeded random) and writes, part by part, the in-edges, features,
labels and split of the nodes each part owns. A machine of a distributed run then maps only its
own part (``load_part``) plus the global node -> part map (``PartitionBook``); neighbours and
features it does not own come from their owners over torch.distributed.

Layout of a partition folder (version 1)::

    partition.json   {"format": "gnnsys-partition", "version": 1, "run_id", "num_parts",
                      "num_nodes", "num_edges", "method", "seed", "dataset", "num_classes",
                      "feature_dim", "feature_dtype", "has_edge_weight", "edge_cut",
                      "part_sizes", "halo_sizes"}
    node_part.npy    [N] the part of every global node id (int16, int32 beyond 32767 parts)
    part-0000/       one folder per part:
      part.json      {"format": "gnnsys-partition-part", "version": 1, "run_id", "part",
                      "num_parts", "num_owned", "num_edges"}
      owned.npy      int64 [n] the global ids the part owns, ascending (local id = position)
      indptr.npy     int64 [n+1] CSC of the owned nodes' in-edges, in owned order
      indices.npy    int64 [e] global source id of each in-edge (the full CSC's order)
      edge_ids.npy   int64 [e] global edge id: the graph's edge_ids, else the full CSC position
                     (what the samplers report as ``e_id``)
      edge_weight.npy float64 [e], only when the graph has edge weights
      x.npy          [n, F] features of the owned nodes (the dataset's dtype)
      y.npy          int64 [n] labels
      train.npy, val.npy, test.npy  int64 global ids of owned nodes in each split, in split order
      halo.npy       int64 sorted global ids of in-edge sources the part does not own

Typed graphs (a ``HeteroDataset``, or a ``Dataset`` whose graph has types) are written as
version 2: nodes are split by their global (fused) id, so a part owns nodes of every type, each
type's owned nodes a contiguous run of ``owned``. ``partition.json`` adds ``node_types``,
``edge_types``, ``node_type_offset``, ``target`` (the labelled type; None for a ``Dataset``),
``type_per_edge_dtype`` and ``tables`` ({name: {node type: {"shape": trailing dims, "dtype"}}},
in place of ``feature_dim`` / ``feature_dtype``); ``part.json`` adds ``type_counts`` (owned nodes
per type). A part holds, instead of ``x.npy`` / ``y.npy``::

      type_per_edge.npy [e] each in-edge's edge type (the graph's dtype)
      NAME.T.npy     rows of table NAME for the owned nodes of node type T (its index), in
                     ``owned`` order (a ``HeteroDataset``: ``x`` where it has features, ``y`` and
                     ``year`` on the target type)

and train / val / test hold global (fused) ids. Version 1 folders (homogeneous) read as before.

``run_id`` (new for every run) ties the parts to their ``partition.json``: a part copied in from
another run is refused. The folder is written into a temporary folder beside ``out`` and renamed
into place, so a crash never leaves half a partition under the final name.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from gnnsys.graph_io import PathLike, check_replaceable, checked_layout, open_npy, replace_dir

FORMAT = "gnnsys-partition"
PART_FORMAT = "gnnsys-partition-part"
VERSION = 1  # homogeneous partitions
TYPED_VERSION = 2  # typed partitions (the version 1 files plus the typing)
VERSIONS = (VERSION, TYPED_VERSION)
META_FILE = "partition.json"
NODE_PART_FILE = "node_part.npy"
PART_META_FILE = "part.json"
METHODS = ("auto", "metis", "random", "bfs")
SPLITS = ("train", "val", "test")
_FEATURE_DTYPES = ("float16", "float32", "float64")
_META_KEYS = (
    "run_id", "num_parts", "num_nodes", "num_edges", "method", "has_edge_weight", "part_sizes",
    "halo_sizes",
)  # fmt: skip
_VERSION_KEYS = {
    VERSION: ("feature_dim", "feature_dtype"),
    TYPED_VERSION: ("node_types", "edge_types", "node_type_offset", "target",
                    "type_per_edge_dtype", "tables"),
}  # fmt: skip
_TABLE_DTYPES = (*_FEATURE_DTYPES, "int64")


class PartitionError(ValueError):
    """A partition folder that is missing, malformed, inconsistent or mixed from two runs, or a
    request it cannot serve; the message names the file or folder."""


def part_dir_name(part: int) -> str:
    """The folder name of part ``part``: ``part-0003``."""
    return f"part-{part:04d}"


def node_part_dtype(num_parts: int) -> np.dtype:
    """int16 for up to 32767 parts, else int32: the dtype of ``node_part.npy``."""
    return np.dtype(np.int16 if num_parts <= np.iinfo(np.int16).max else np.int32)


# ---------------------------------------------------------------------- writing
def partition(
    dataset: Any,
    num_parts: int,
    out: PathLike,
    *,
    method: str = "auto",
    seed: int = 0,
    overwrite: bool = False,
) -> PartitionBook:
    """Split ``dataset`` (a ``gnnsys.datasets.Dataset`` or ``HeteroDataset``) into
    ``num_parts`` parts and write them to the folder ``out``; returns the folder's
    ``PartitionBook``.

    ``method``: "metis" (pymetis; an error when it is not installed), "random" (seeded,
    balanced), "bfs" (BFS order cut into balanced pieces) or "auto" (metis when pymetis imports,
    else bfs). ``partition.json`` records the method actually used ("trivial" for one part or
    at least one part per node). The same seed gives the same parts. A typed graph is split by
    global (fused) node id, metis and bfs on its homogenised edges; its parts keep each in-edge's
    edge type and the node tables per node type (format version 2, see the module docstring).

    Parts are written one at a time: beyond the graph, one part's arrays are in memory. A
    memory-mapped graph (``Graph.load(mmap=True)``) and features are read in place, a slice per
    part. "random" (and one part, or a part per node, with any method) never holds the whole graph (a node -> part map of 8 bytes a node, then one
    part at a time), so it partitions graphs bigger than RAM; "metis" and "bfs" work on an
    in-memory symmetrised copy of the edges. ``partition.json``'s ``edge_cut`` counts in-edges
    whose source another part owns (the edges sampling crosses machines for: twice the
    undirected cut on a symmetric graph).
    An ``out`` that exists and is not empty is an error unless ``overwrite=True``, which
    replaces only a folder that holds a partition.

    Example:
        >>> book = partition(gnnsys.datasets.synthetic("tiny"), 4, "/tmp/tiny-4", method="random")
        >>> book.num_parts, book.owner(np.array([0, 1])).shape
        (4, (2,))
    """
    from gnnsys._checks import check_choice
    from gnnsys.datasets.dataset import Dataset
    from gnnsys.datasets.hetero import HeteroDataset
    from gnnsys.graph_io import _check_path, _temp_dir
    from gnnsys.pipeline_parallel.config import check_int
    from gnnsys.pipeline_parallel.partition import _has_pymetis, assign_parts

    if not isinstance(dataset, (Dataset, HeteroDataset)):
        raise TypeError(
            "dataset must be a gnnsys.datasets.Dataset or HeteroDataset, got "
            f"{type(dataset).__name__}"
        )
    graph = dataset.graph
    check_int("num_parts", num_parts, 1)
    check_choice("method", method, METHODS)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if method == "metis" and not _has_pymetis():
        raise PartitionError(
            "method='metis' needs pymetis (pip install 'gnnsys[partition]'); "
            "use method='random' (or 'auto', which falls back to a BFS split)"
        )
    typed = isinstance(dataset, HeteroDataset) or graph.is_hetero
    source = _typed_source(dataset) if typed else _plain_source(dataset)
    final = _check_out(_check_path(out), overwrite)
    num_parts = int(num_parts)
    if num_parts > graph.num_nodes:
        raise PartitionError(
            f"num_parts={num_parts} exceeds the graph's {graph.num_nodes} nodes (each part "
            "needs a node)"
        )
    # (the map alone: no edge cut of the symmetrised graph, which "random" never builds)
    part, used, _ = assign_parts(graph, num_parts, method=method, seed=int(seed))
    node_part = part.numpy().astype(node_part_dtype(num_parts))
    run_id = uuid.uuid4().hex
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_dir(final)
    try:
        np.save(tmp / NODE_PART_FILE, node_part)
        sizes, halos, cut = [], [], 0
        for i in range(num_parts):
            folder = tmp / part_dir_name(i)
            folder.mkdir()
            n_i, h_i, c_i = _write_part(folder, source, node_part, i, num_parts, run_id)
            sizes.append(n_i)
            halos.append(h_i)
            cut += c_i
        meta = {
            "format": FORMAT,
            "version": source.version,
            "run_id": run_id,
            "num_parts": num_parts,
            "num_nodes": graph.num_nodes,
            "num_edges": graph.num_edges,
            "method": used,
            "seed": int(seed),
            "dataset": str(dataset.name),
            "num_classes": int(dataset.num_classes),
            **source.meta,
            "has_edge_weight": graph.edge_weight is not None,
            "edge_cut": cut,
            "part_sizes": sizes,
            "halo_sizes": halos,
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return PartitionBook.open(final)


@dataclass
class _Source:
    """The full dataset's arrays as numpy views (memory maps stay maps).

    ``tables``: name -> {node type index -> rows of that type} (typed: rows within the type;
    untyped: type 0, every node). ``meta``: the format-specific keys of ``partition.json``."""

    version: int
    indptr: np.ndarray
    indices: np.ndarray
    edge_ids: Optional[np.ndarray]
    edge_weight: Optional[np.ndarray]
    type_per_edge: Optional[np.ndarray]
    offsets: np.ndarray
    tables: Dict[str, Dict[int, np.ndarray]]
    splits: List[np.ndarray]
    meta: Dict[str, Any]


def _graph_arrays(graph: Any) -> Dict[str, Any]:
    return {
        "indptr": graph.indptr.numpy(),
        "indices": graph.indices.numpy(),
        "edge_ids": graph.edge_ids.numpy() if graph.edge_ids is not None else None,
        "edge_weight": graph.edge_weight.numpy() if graph.edge_weight is not None else None,
        "offsets": graph.type_offsets().numpy().astype(np.int64),
    }


def _table_array(name: str, value: Any) -> np.ndarray:
    """A node table as numpy, checked against the dtypes partition files hold."""
    arr = value.detach().cpu() if hasattr(value, "detach") else value
    dtype_name = str(arr.dtype).replace("torch.", "")
    if dtype_name not in _TABLE_DTYPES:
        raise PartitionError(
            f"{name} has dtype {dtype_name}; partition files hold {', '.join(_TABLE_DTYPES)} "
            f"(convert it first, e.g. .float())"
        )
    return arr.numpy() if hasattr(arr, "numpy") else np.asarray(arr)


def _plain_source(dataset: Any) -> _Source:
    """A homogeneous ``Dataset`` (format version 1)."""
    x = _table_array("dataset.x", dataset.x)
    if x.dtype.name not in _FEATURE_DTYPES:
        raise PartitionError(
            f"dataset.x has dtype {x.dtype.name}; partition files hold "
            f"{', '.join(_FEATURE_DTYPES)} (convert the features first, e.g. dataset.x.float())"
        )
    return _Source(
        version=VERSION,
        **_graph_arrays(dataset.graph),
        type_per_edge=None,
        tables={"x": {0: x}, "y": {0: dataset.y.detach().cpu().numpy()}},
        splits=[getattr(dataset, f"{s}_idx").cpu().numpy() for s in SPLITS],
        meta={"feature_dim": int(x.shape[1]), "feature_dtype": x.dtype.name},
    )


def _typed_source(dataset: Any) -> _Source:
    """A ``HeteroDataset``, or a ``Dataset`` over a typed graph (format version 2): tables per
    node type, splits as global ids."""
    from gnnsys.datasets.hetero import HeteroDataset

    graph = dataset.graph
    arrays = _graph_arrays(graph)
    off = arrays["offsets"]
    names = graph.node_types
    tables: Dict[str, Dict[int, np.ndarray]] = {}
    if isinstance(dataset, HeteroDataset):
        target: Optional[str] = dataset.target
        t0 = names.index(dataset.target)
        for ntype, x in dataset.x_dict.items():
            tables.setdefault("x", {})[names.index(ntype)] = _table_array(f"x_dict[{ntype!r}]", x)
        tables["y"] = {t0: _table_array("y", dataset.y)}
        if dataset.year is not None:
            tables["year"] = {t0: _table_array("year", dataset.year)}
        splits = [getattr(dataset, f"{s}_idx").cpu().numpy() + off[t0] for s in SPLITS]
    else:
        target = None
        for name in ("x", "y"):
            whole = _table_array(f"dataset.{name}", getattr(dataset, name))
            tables[name] = {t: whole[off[t] : off[t + 1]] for t in range(len(names))}
        splits = [getattr(dataset, f"{s}_idx").cpu().numpy() for s in SPLITS]
    tpe = graph.type_per_edge
    tpe_np = tpe.numpy() if tpe is not None else np.zeros(graph.num_edges, np.int8)
    meta = {
        "node_types": list(names),
        "edge_types": [list(e) for e in graph.edge_types],
        "node_type_offset": off.tolist(),
        "target": target,
        "type_per_edge_dtype": tpe_np.dtype.name,
        "tables": {
            name: {names[t]: {"shape": list(a.shape[1:]), "dtype": a.dtype.name}
                   for t, a in sorted(per.items())}
            for name, per in tables.items()
        },
    }  # fmt: skip
    return _Source(version=TYPED_VERSION, **arrays, type_per_edge=tpe_np, tables=tables,
                   splits=splits, meta=meta)  # fmt: skip


def _write_part(
    folder: Path, src: _Source, node_part: np.ndarray, i: int, num_parts: int, run_id: str
) -> Tuple[int, int, int]:
    """Write part ``i``'s files into ``folder``; returns (owned nodes, halo size, in-edges
    whose source another part owns)."""
    owned = np.flatnonzero(node_part == i).astype(np.int64)
    starts = np.asarray(src.indptr[owned], dtype=np.int64)
    deg = np.asarray(src.indptr[owned + 1], dtype=np.int64) - starts
    indptr = np.zeros(owned.size + 1, dtype=np.int64)
    np.cumsum(deg, out=indptr[1:])
    num_edges = int(indptr[-1])
    # CSC positions of the owned nodes' in-edges, segment after segment, in the full CSC order.
    pos = np.arange(num_edges, dtype=np.int64) + np.repeat(starts - indptr[:-1], deg)
    del starts, deg
    indices = np.asarray(src.indices[pos], dtype=np.int64)
    arrays: Dict[str, np.ndarray] = {"owned": owned, "indptr": indptr, "indices": indices}
    arrays["edge_ids"] = (
        np.asarray(src.edge_ids[pos], dtype=np.int64) if src.edge_ids is not None else pos
    )
    if src.edge_weight is not None:
        arrays["edge_weight"] = np.asarray(src.edge_weight[pos], dtype=np.float64)
    meta: Dict[str, Any] = {}
    if src.version == VERSION:
        arrays["x"] = np.ascontiguousarray(src.tables["x"][0][owned])
        arrays["y"] = np.asarray(src.tables["y"][0][owned], dtype=np.int64)
    else:
        arrays["type_per_edge"] = np.asarray(src.type_per_edge[pos])
        cuts = np.searchsorted(owned, src.offsets)  # each type's run of ``owned``
        for name, per_type in src.tables.items():
            for t, table in per_type.items():
                rows = owned[cuts[t] : cuts[t + 1]] - src.offsets[t]
                arrays[f"{name}.{t}"] = np.ascontiguousarray(table[rows])
        meta["type_counts"] = np.diff(cuts).tolist()
    for name, idx in zip(SPLITS, src.splits):
        arrays[name] = np.asarray(idx[node_part[idx] == i], dtype=np.int64)
    remote = node_part[indices] != i
    arrays["halo"] = np.unique(indices[remote])
    for name, arr in arrays.items():
        np.save(folder / f"{name}.npy", arr)
    meta = {
        "format": PART_FORMAT,
        "version": src.version,
        "run_id": run_id,
        "part": i,
        "num_parts": num_parts,
        "num_owned": int(owned.size),
        "num_edges": num_edges,
        **meta,
    }
    (folder / PART_META_FILE).write_text(json.dumps(meta, indent=1))
    return int(owned.size), int(arrays["halo"].size), int(remote.sum())


def _check_out(final: Path, overwrite: bool) -> Path:
    """``final`` if a partition may be written there (``graph_io.check_replaceable``'s rules;
    an empty folder needs no ``overwrite``)."""
    try:
        check_replaceable(final, overwrite, (META_FILE,), "partition", empty_ok=True)
    except FileExistsError as err:
        raise PartitionError(str(err)) from None
    return final


# ---------------------------------------------------------------------- reading
@dataclass
class PartitionBook:
    """The global view of a partition folder: its ``partition.json`` and the node -> part map.

    Attributes:
        path: the partition folder.
        meta: ``partition.json`` as a dict (num_parts, num_nodes, run_id, method, part_sizes,
            halo_sizes, feature_dim, ...).
        node_part: [N] the part of every global node id (memory-mapped by ``open``).

    Example:
        >>> book = PartitionBook.open("/tmp/tiny-4")
        >>> book.owner(np.array([0, 5, 9]))
        array([2, 0, 3])
    """

    path: Path
    meta: Dict[str, Any]
    node_part: np.ndarray

    @property
    def num_parts(self) -> int:
        return int(self.meta["num_parts"])

    @property
    def num_nodes(self) -> int:
        return int(self.meta["num_nodes"])

    @property
    def run_id(self) -> str:
        return str(self.meta["run_id"])

    @property
    def is_typed(self) -> bool:
        """Whether the folder holds a typed graph (format version 2)."""
        return self.meta["version"] == TYPED_VERSION

    def part_path(self, part: int) -> Path:
        """The folder of part ``part`` (``path / "part-0003"``)."""
        return self.path / part_dir_name(_check_part(part, self.num_parts, self.path))

    def owner(self, ids: Any) -> np.ndarray:
        """int64 part of each global node id in ``ids`` (numpy array, tensor or list).

        Example:
            >>> book.owner([0, 1]).tolist()
            [2, 0]
        """
        return np.asarray(self.node_part[_ids("ids", ids, self.num_nodes)], dtype=np.int64)

    @classmethod
    def open(cls, path: PathLike, *, mmap: bool = True) -> PartitionBook:
        """Read ``partition.json`` and ``node_part.npy`` of the folder ``path`` (checked: format,
        version, header and size of the map); opens no part folder.

        Example:
            >>> PartitionBook.open("/tmp/tiny-4").num_parts
            4
        """
        folder = Path(path).expanduser()
        meta = read_meta(folder)
        n, p = int(meta["num_nodes"]), int(meta["num_parts"])
        node_part = _open_array(
            folder / NODE_PART_FILE, (n,), node_part_dtype(p), mmap, f"{META_FILE}: {n} nodes"
        )
        return cls(path=folder, meta=meta, node_part=node_part)


def read_meta(path: PathLike) -> Dict[str, Any]:
    """``partition.json`` of the partition folder ``path``, checked (format, version, keys).

    Example:
        >>> read_meta("/tmp/tiny-4")["num_parts"]
        4
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise PartitionError(f"no partition folder at {str(folder)!r}")
    meta = _read_json(
        folder / META_FILE, FORMAT, "not a partition folder (gnnsys partition writes one)"
    )
    version = meta["version"]
    missing = [k for k in (*_META_KEYS, *_VERSION_KEYS[version]) if k not in meta]
    if missing:
        raise PartitionError(
            f"{folder / META_FILE} lacks {', '.join(missing)} (format version {version})"
        )
    p = meta["num_parts"]
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise PartitionError(f"{folder / META_FILE}: num_parts is {p!r}, expected an int >= 1")
    for key in ("part_sizes", "halo_sizes"):
        if not isinstance(meta[key], list) or len(meta[key]) != p:
            raise PartitionError(f"{folder / META_FILE}: {key} must list {p} numbers")
    if version == VERSION and meta["feature_dtype"] not in _FEATURE_DTYPES:
        raise PartitionError(
            f"{folder / META_FILE}: feature_dtype {meta['feature_dtype']!r} is not one of "
            f"{_FEATURE_DTYPES}"
        )
    if version == TYPED_VERSION:
        _check_typed_meta(meta, folder / META_FILE)
    return meta


def _check_typed_meta(meta: Dict[str, Any], where: Path) -> None:
    """The typing of a version 2 ``partition.json``: names, offsets and table layouts."""
    names, ets, off = meta["node_types"], meta["edge_types"], meta["node_type_offset"]
    if not isinstance(names, list) or not names or not all(isinstance(t, str) for t in names):
        raise PartitionError(f"{where}: node_types must list node type names")
    if (
        not isinstance(ets, list)
        or not ets
        or not all(
            isinstance(e, list) and len(e) == 3 and e[0] in names and e[2] in names for e in ets
        )
    ):
        raise PartitionError(
            f"{where}: edge_types must list [src, relation, dst] triples of its node types"
        )
    if (
        not isinstance(off, list)
        or len(off) != len(names) + 1
        or off[0] != 0
        or off[-1] != meta["num_nodes"]
        or any(b < a for a, b in zip(off, off[1:]))
    ):
        raise PartitionError(
            f"{where}: node_type_offset must rise from 0 to num_nodes with one entry per node "
            "type plus one"
        )
    if meta["type_per_edge_dtype"] not in ("int8", "int16", "int32", "int64"):
        raise PartitionError(f"{where}: type_per_edge_dtype {meta['type_per_edge_dtype']!r}")
    tables = meta["tables"]
    for name, per in tables.items() if isinstance(tables, dict) else [(None, None)]:
        if not isinstance(per, dict) or any(
            t not in names or not isinstance(v, dict) or v.get("dtype") not in _TABLE_DTYPES
            or not isinstance(v.get("shape"), list)
            for t, v in per.items()
        ):  # fmt: skip
            raise PartitionError(
                f"{where}: tables must map a name to {{node type: {{shape, dtype}}}} "
                f"(dtypes {_TABLE_DTYPES}); {name!r} does not"
            )


def check_parts(path: PathLike, expected_parts: int) -> Dict[str, Any]:
    """Check that the partition folder ``path`` holds ``expected_parts`` parts (a launcher's
    ``--parts`` against the folder); returns its ``partition.json``.

    Example:
        >>> check_parts("/tmp/tiny-4", 4)["run_id"]
        '3f2c...'
    """
    meta = read_meta(path)
    if int(meta["num_parts"]) != int(expected_parts):
        raise PartitionError(
            f"--parts {expected_parts} does not match the partition folder {path}: it holds "
            f"{meta['num_parts']} parts (its {META_FILE}); pass --parts {meta['num_parts']} or "
            f"partition again with --parts {expected_parts}"
        )
    return meta


@dataclass
class LocalPart:
    """One part of a partition folder, as ``load_part`` reads it (numpy arrays, memory-mapped
    unless ``mmap=False``). Local node k is global node ``owned[k]``.

    Attributes:
        book: the folder's ``PartitionBook`` (partition.json and the node -> part map).
        part: this part's number; path: its folder; part_meta: its ``part.json``.
        owned, indptr, indices, edge_ids, edge_weight (None without weights), x, y, train,
            val, test, halo: the part's arrays (see the module docstring; a typed part has
            no ``x`` / ``y`` (None) and its splits hold global ids).
        type_per_edge: a typed part's edge type of each in-edge (None when untyped).
        tables: a typed part's node tables, ``(node type, name) -> rows`` of its owned nodes
            of that type (in ``owned`` order); empty when untyped.

    Example:
        >>> lp = load_part("/tmp/tiny-4", 1)
        >>> lp.x[lp.local_index(lp.train[:2])].shape
        (2, 32)
    """

    book: PartitionBook
    part: int
    path: Path
    part_meta: Dict[str, Any]
    owned: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    edge_ids: np.ndarray
    edge_weight: Optional[np.ndarray]
    x: Optional[np.ndarray]
    y: Optional[np.ndarray]
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    halo: np.ndarray
    type_per_edge: Optional[np.ndarray] = None
    tables: Dict[Tuple[str, str], np.ndarray] = field(default_factory=dict)

    @property
    def type_counts(self) -> List[int]:
        """Owned nodes per node type (one entry, every owned node, when untyped)."""
        return list(self.part_meta.get("type_counts", [self.num_owned]))

    @property
    def meta(self) -> Dict[str, Any]:
        """``partition.json`` of the folder."""
        return self.book.meta

    @property
    def num_parts(self) -> int:
        return self.book.num_parts

    @property
    def num_owned(self) -> int:
        return int(self.owned.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.indices.shape[0])

    def owns(self, global_ids: Any) -> np.ndarray:
        """bool mask: which of ``global_ids`` this part owns.

        Example:
            >>> lp.owns(lp.owned[:3]).all()
            True
        """
        ids = _ids("global_ids", global_ids, self.book.num_nodes)
        return np.asarray(self.book.node_part[ids]) == self.part

    def local_index(self, global_ids: Any) -> np.ndarray:
        """int64 local index (position in ``owned``) of each global id; a PartitionError naming
        the ids this part does not own.

        Example:
            >>> lp.local_index(lp.owned[[4, 2]]).tolist()
            [4, 2]
        """
        ids = np.asarray(
            global_ids.cpu().numpy() if hasattr(global_ids, "cpu") else global_ids, np.int64
        ).reshape(-1)
        pos = np.searchsorted(self.owned, ids)
        hit = np.zeros(ids.shape, dtype=bool)
        inside = pos < self.owned.shape[0]
        hit[inside] = self.owned[pos[inside]] == ids[inside]
        if not hit.all():
            bad = ids[~hit]
            shown = ", ".join(str(int(v)) for v in bad[:10])
            more = f" and {bad.size - 10} more" if bad.size > 10 else ""
            raise PartitionError(
                f"part {self.part} ({self.path}) does not own global id(s) {shown}{more}"
            )
        return pos.astype(np.int64, copy=False)


def load_part(path: PathLike, part: int, *, mmap: bool = True) -> LocalPart:
    """Read part ``part`` of the partition folder ``path``: its ``part-XXXX/`` files plus
    ``partition.json`` and ``node_part.npy``, and no other part's files.

    Every file is checked before it is mapped: part.json's format, version and run_id (a part
    from another partitioning run is refused), each array's header, size, dtype and length
    against part.json / partition.json.

    Example:
        >>> lp = load_part("/tmp/tiny-4", 1)
        >>> lp.num_owned == lp.book.meta["part_sizes"][1]
        True
    """
    book = PartitionBook.open(path, mmap=mmap)
    meta_path = book.path / META_FILE
    part = _check_part(part, book.num_parts, book.path)
    folder = book.path / part_dir_name(part)
    if not folder.is_dir():
        raise PartitionError(
            f"{folder} is missing: the partition at {book.path} has {book.num_parts} parts "
            f"(part-0000..{part_dir_name(book.num_parts - 1)})"
        )
    pmeta = _read_json(folder / PART_META_FILE, PART_FORMAT, "not a partition part folder")
    if pmeta.get("run_id") != book.run_id:
        raise PartitionError(
            f"{folder} comes from another partitioning run: its {PART_META_FILE} has run_id "
            f"{pmeta.get('run_id')!r}, {meta_path} has {book.run_id!r}; copy the whole "
            "partition folder from one run"
        )
    for key, want in (("part", part), ("num_parts", book.num_parts),
                      ("version", book.meta["version"])):  # fmt: skip
        if pmeta.get(key) != want:
            raise PartitionError(
                f"{folder / PART_META_FILE}: {key} is {pmeta.get(key)!r}, expected {want}"
            )
    n, e = pmeta.get("num_owned"), pmeta.get("num_edges")
    if not all(isinstance(v, int) and v >= 0 for v in (n, e)):
        raise PartitionError(f"{folder / PART_META_FILE}: num_owned / num_edges must be ints >= 0")
    if n != book.meta["part_sizes"][part]:
        raise PartitionError(
            f"{folder / PART_META_FILE}: num_owned {n} differs from part_sizes[{part}] = "
            f"{book.meta['part_sizes'][part]} in {meta_path}"
        )
    why = f"{PART_META_FILE}: {n} owned nodes, {e} edges"
    i64 = np.dtype(np.int64)
    arr: Dict[str, Any] = {}
    for name, shape in (
        ("owned", (n,)), ("indptr", (n + 1,)), ("indices", (e,)), ("edge_ids", (e,)),
    ):  # fmt: skip
        arr[name] = _open_array(folder / f"{name}.npy", shape, i64, mmap, why)
    arr["edge_weight"] = None
    if book.meta["has_edge_weight"]:
        arr["edge_weight"] = _open_array(
            folder / "edge_weight.npy", (e,), np.dtype(np.float64), mmap, why
        )
    if book.is_typed:
        arr.update(_open_typed(folder, book, pmeta, arr["owned"], mmap, why))
    else:
        arr["y"] = _open_array(folder / "y.npy", (n,), i64, mmap, why)
        f, fdt = int(book.meta["feature_dim"]), np.dtype(book.meta["feature_dtype"])
        arr["x"] = _open_array(
            folder / "x.npy", (n, f), fdt, mmap, f"{why}; {META_FILE}: {f} features"
        )
    for name in (*SPLITS, "halo"):
        arr[name] = _open_array(folder / f"{name}.npy", None, i64, mmap, why)
    h = book.meta["halo_sizes"][part]
    if arr["halo"].shape[0] != h:
        raise PartitionError(
            f"{folder / 'halo.npy'} has {arr['halo'].shape[0]} ids, {meta_path} says "
            f"halo_sizes[{part}] = {h}"
        )
    if int(arr["indptr"][0]) != 0 or int(arr["indptr"][-1]) != e:
        raise PartitionError(
            f"{folder / 'indptr.npy'} runs {int(arr['indptr'][0])}..{int(arr['indptr'][-1])}, "
            f"expected 0..{e} ({PART_META_FILE})"
        )
    lp = LocalPart(book=book, part=part, path=folder, part_meta=pmeta, **arr)
    _check_split_files(lp)
    return lp


def _check_split_files(lp: LocalPart) -> None:
    """Each split file holds ids this part owns (of the target type when typed) whose labels
    are in -1..num_classes-1, and no training node is unlabelled: a damaged file would
    otherwise fail mid-epoch or score val/test against garbage."""
    meta = lp.book.meta
    num_classes = meta.get("num_classes")
    labels, first, label_file = lp.y, 0, "y.npy"
    if lp.book.is_typed:
        target = meta.get("target")
        labels = lp.tables.get((target, "y")) if target is not None else None
        if target is not None:
            t = meta["node_types"].index(target)
            off = np.asarray(meta["node_type_offset"], np.int64)
            first = int(np.searchsorted(lp.owned, off[t]))
            last = int(np.searchsorted(lp.owned, off[t + 1]))
            label_file = f"y.{t}.npy"
    for name in SPLITS:
        ids = np.asarray(getattr(lp, name))
        file = lp.path / f"{name}.npy"
        if ids.size == 0:
            continue
        try:
            local = lp.local_index(ids)
        except PartitionError as err:
            raise PartitionError(f"{file}: {err}") from None
        if (
            lp.book.is_typed
            and meta.get("target") is not None
            and (int(local.min()) < first or int(local.max()) >= last)
        ):
            raise PartitionError(f"{file} holds ids that are not {meta['target']!r} nodes")
        if labels is None or not isinstance(num_classes, int):
            continue
        y = np.asarray(labels[local - first]).reshape(-1)
        lo, hi = int(y.min()), int(y.max())
        if lo < -1 or hi >= num_classes:
            raise PartitionError(
                f"{lp.path / label_file} holds label {lo if lo < -1 else hi} for a node of "
                f"{file.name}; labels must be in 0..{num_classes - 1} (or -1 for unlabelled)"
            )
        if name == "train" and lo < 0:
            raise PartitionError(
                f"{file} holds {int((y < 0).sum())} unlabelled node(s) (y = -1): drop them "
                "from the training split"
            )


def _open_typed(
    folder: Path, book: PartitionBook, pmeta: Dict[str, Any], owned: np.ndarray, mmap: bool,
    why: str,
) -> Dict[str, Any]:  # fmt: skip
    """A typed part's extra arrays: type_per_edge and the per-type tables, checked against
    part.json's ``type_counts`` (which must match ``owned``) and partition.json's layouts."""
    meta = book.meta
    names = meta["node_types"]
    counts = pmeta.get("type_counts")
    off = np.asarray(meta["node_type_offset"], np.int64)
    if not isinstance(counts, list) or len(counts) != len(names):
        raise PartitionError(f"{folder / PART_META_FILE}: type_counts must list {len(names)} ints")
    if np.diff(np.searchsorted(owned, off)).tolist() != counts:
        raise PartitionError(
            f"{folder / PART_META_FILE}: type_counts {counts} do not match owned.npy's ids "
            f"(node_type_offset {off.tolist()} in {META_FILE})"
        )
    e = int(pmeta["num_edges"])
    out: Dict[str, Any] = {"x": None, "y": None, "tables": {}}
    out["type_per_edge"] = _open_array(
        folder / "type_per_edge.npy", (e,), np.dtype(meta["type_per_edge_dtype"]), mmap, why
    )
    for name, per in meta["tables"].items():
        for ntype, layout in per.items():
            t = names.index(ntype)
            shape = (counts[t], *layout["shape"])
            out["tables"][(ntype, name)] = _open_array(
                folder / f"{name}.{t}.npy", shape, np.dtype(layout["dtype"]), mmap,
                f"{why}; {counts[t]} owned {ntype!r} nodes",
            )  # fmt: skip
    return out


# ---------------------------------------------------------------------- helpers
def _read_json(path: Path, fmt: str, what: str) -> Dict[str, Any]:
    if not path.is_file():
        raise PartitionError(f"{path} is missing: {path.parent} is {what}")
    try:
        meta = json.loads(path.read_text())
    except ValueError as err:
        raise PartitionError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise PartitionError(f"{path} has format {got!r}, expected {fmt!r}")
    if meta.get("version") not in VERSIONS:
        raise PartitionError(
            f"{path} has format version {meta.get('version')!r}; this gnnsys reads versions "
            f"{', '.join(map(str, VERSIONS))}"
        )
    return meta


def _open_array(
    path: Path,
    shape: Optional[Tuple[int, ...]],
    dtype: np.dtype,
    mmap: bool,
    why: str,
) -> np.ndarray:
    """``open_npy`` after checking the header's shape (None: any 1-D) and dtype."""
    try:
        got, got_dtype, _ = checked_layout(path)
    except FileNotFoundError:
        raise PartitionError(f"{path} is missing") from None
    except ValueError as err:
        raise PartitionError(str(err)) from None
    if got_dtype != dtype:
        raise PartitionError(f"{path} has dtype {got_dtype}, expected {dtype}")
    if (shape is None and len(got) != 1) or (shape is not None and got != tuple(shape)):
        want = "1-D" if shape is None else shape
        raise PartitionError(f"{path} has shape {got}, expected {want} ({why})")
    try:
        return open_npy(path, mmap=mmap)
    except (OSError, ValueError) as err:
        raise PartitionError(str(err)) from None


def _check_part(part: Any, num_parts: int, path: Path) -> int:
    if isinstance(part, bool) or not isinstance(part, (int, np.integer)):
        raise TypeError(f"part must be an int, got {part!r}")
    if not 0 <= part < num_parts:
        raise PartitionError(
            f"part {part} is out of range: the partition at {path} has {num_parts} parts "
            f"(0..{num_parts - 1})"
        )
    return int(part)


def _ids(name: str, ids: Union[np.ndarray, Sequence[int], Any], num: int) -> np.ndarray:
    from gnnsys._checks import check_index

    return check_index(name, ids, num, exc=IndexError).numpy()
