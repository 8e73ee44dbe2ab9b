"""The folder format: plain .npy files any library can read, so peers get the very same graph.

Layout (``save_folder`` writes it, ``load_folder`` reads it back)::

    src.npy        int64 [E]     edge sources (both directions for symmetric graphs)
    dst.npy        int64 [E]     edge destinations
    x.npy          float [N, F]  node features (float32 from the generators)
    y.npy          int64 [N]     labels (-1 = unlabelled)
    train_idx.npy  int64         training nodes (optional with ``split_seed``: see below)
    val_idx.npy    int64         optional; empty when absent
    test_idx.npy   int64         optional; when absent, every node in neither train nor val
    meta.json      optional      {"name", "num_classes", "num_nodes", ...}

Or, instead of src/dst, the graph in CSC form (``graph.json``, ``indptr.npy``, ``indices.npy``:
a ``Graph.save`` folder, as the out-of-core generators write it), which is memory-mapped and
sampled in place; ``x.npy`` may then be float16 (half the disk and page cache; the trainer
upcasts each batch). A folder whose nodes were renamed hot-first (``meta.json``'s
``"node_order": "degree"``, as ``synthetic("papers")`` writes it) also holds ``orig_ids.npy``
(each node's original id); its feature map's leading rows are then read ahead on load.

A folder with no split files at all can be read with ``load_folder(..., split_seed=S)``: it
then gets a seeded random 60/20/20 split of the labelled nodes, and ``meta["split"]`` says so.

A PyG peer reads it as ``edge_index = stack([src, dst])``, a DGL peer as ``dgl.graph((src, dst))``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from gnnsys.datasets.dataset import (
    DATASET_MARKS,
    Dataset,
    graph_from_coo,
    make_temp_dir,
    random_split,
    random_split_name,
)
from gnnsys.graph_io import (
    advise_random,
    as_tensor,
    check_replaceable,
    is_graph_folder,
    load_graph,
    open_npy,
    remember_mapped,
    replace_dir,
    write_graph_files,
)

PathLike = Union[str, "os.PathLike[str]"]

REQUIRED_FILES = ("src.npy", "dst.npy", "x.npy", "y.npy", "train_idx.npy")
OPTIONAL_FILES = ("val_idx.npy", "test_idx.npy", "meta.json")
SPLIT_FILES = ("train_idx.npy", "val_idx.npy", "test_idx.npy")
FORMAT_VERSION = 1


def save_folder(
    dataset: Dataset,
    path: PathLike,
    *,
    overwrite: bool = False,
    layout: str = "coo",
    x_dtype: Optional[torch.dtype] = None,
) -> Path:
    """Write ``dataset`` to ``path`` in the folder format (atomically: temp dir + rename).

    ``layout="coo"`` writes src/dst in the graph's CSC order (what the peers' scripts read),
    so ``load_folder`` rebuilds the same ``Graph``; ``layout="csc"`` writes the graph as
    ``Graph.save`` does (indptr/indices, memory-mapped back without a build). ``x_dtype``
    (e.g. ``torch.float16``) converts the features on the way. An existing ``path`` is an
    error unless ``overwrite=True``.

    Example:
        >>> save_folder(gnnsys.datasets.synthetic("tiny"), "/tmp/tiny")
        PosixPath('/tmp/tiny')
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a gnnsys Dataset, got {type(dataset).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    final = Path(path).expanduser()
    check_replaceable(final, overwrite, DATASET_MARKS, "dataset folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    if layout not in ("coo", "csc"):
        raise ValueError(f"layout must be 'coo' or 'csc', got {layout!r}")
    if x_dtype is not None and not (isinstance(x_dtype, torch.dtype) and x_dtype.is_floating_point):
        raise TypeError(f"x_dtype must be a floating torch.dtype or None, got {x_dtype!r}")
    g = dataset.graph
    tmp = make_temp_dir(final)
    try:
        if layout == "csc":
            write_graph_files(g, tmp)
        else:
            np.save(tmp / "src.npy", g.indices.numpy().astype(np.int64))
            deg = (g.indptr[1:] - g.indptr[:-1]).numpy()
            np.save(tmp / "dst.npy", np.repeat(np.arange(g.num_nodes, dtype=np.int64), deg))
        x = dataset.x.detach().cpu()
        np.save(tmp / "x.npy", (x.to(x_dtype) if x_dtype is not None else x).numpy())
        np.save(tmp / "y.npy", dataset.y.numpy().astype(np.int64))
        for split in ("train_idx", "val_idx", "test_idx"):
            np.save(tmp / f"{split}.npy", getattr(dataset, split).numpy().astype(np.int64))
        meta = {
            "format_version": FORMAT_VERSION,
            "name": dataset.name,
            "num_classes": dataset.num_classes,
            "num_nodes": dataset.num_nodes,
            "num_edges": dataset.num_edges,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def load_folder(
    path: PathLike,
    *,
    name: Optional[str] = None,
    mmap: bool = True,
    split_seed: Optional[int] = None,
) -> Dataset:
    """Read a folder written by ``save_folder`` (or by hand in that layout) into a ``Dataset``.

    Checks every file (presence, dtype, shape, ids in range) before building the graph. With
    ``mmap`` the features are memory-mapped copy-on-write (the file is never modified). The
    class count is ``meta.json``'s ``num_classes``, else the largest label + 1. A folder with
    no split files needs ``split_seed``: it then gets a seeded random 60/20/20 split of the
    labelled nodes (``meta["split"]`` says which split was used).

    Example:
        >>> ds = load_folder("/tmp/tiny")
        >>> ds.graph.num_edges == np.load("/tmp/tiny/src.npy").size
        True
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    folder = Path(path).expanduser()
    expected = ", ".join(REQUIRED_FILES) + " (optional: " + ", ".join(OPTIONAL_FILES) + ")"
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder at {str(folder)!r}; a dataset folder holds {expected}")
    if split_seed is not None and (
        isinstance(split_seed, bool) or not isinstance(split_seed, (int, np.integer))
    ):
        raise TypeError(f"split_seed must be an int or None, got {type(split_seed).__name__}")
    has_split = [f for f in SPLIT_FILES if (folder / f).is_file()]
    csc = is_graph_folder(folder)
    required = REQUIRED_FILES
    if csc:  # the graph is graph.json + indptr/indices (checked by load_graph)
        required = tuple(f for f in REQUIRED_FILES if f not in ("src.npy", "dst.npy"))
    if split_seed is not None and not has_split:
        required = tuple(f for f in required if f != "train_idx.npy")
    not_files = [f for f in (*REQUIRED_FILES, *OPTIONAL_FILES) if (folder / f).is_dir()]
    if not_files:
        raise ValueError(f"{folder / not_files[0]} is a folder; a dataset folder's files are files")
    missing = [f for f in required if not (folder / f).is_file()]
    if missing:
        hint = ""
        if missing == ["train_idx.npy"] and not has_split:
            hint = " (or pass split_seed for a seeded random split)"
        elif "train_idx.npy" in missing and has_split:
            hint = f" (it has {', '.join(has_split)} but no train_idx.npy)"
        raise FileNotFoundError(
            f"dataset folder {str(folder)!r} lacks {', '.join(missing)}{hint}; expected {expected}"
        )
    meta = {}
    if (folder / "meta.json").is_file():
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except ValueError as err:
            raise ValueError(f"{folder / 'meta.json'} is not valid JSON: {err}") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{folder / 'meta.json'} must hold a JSON object")
        for key, lo in (("num_classes", 1), ("num_nodes", 0), ("num_edges", 0)):
            k = meta.get(key)
            if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < lo):
                raise ValueError(f"{folder / 'meta.json'}: {key} must be an int >= {lo}, got {k!r}")
        version = meta.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise ValueError(
                f"{folder / 'meta.json'}: format_version {version!r} is not one this gnnsys "
                f"reads ({FORMAT_VERSION})"
            )

    def load(fname: str, big: bool = False) -> np.ndarray:
        try:
            if mmap and big:  # checked against its header; read-only when too big to map c-o-w
                return open_npy(folder / fname, mmap=True)
            return np.load(folder / fname)
        except (ValueError, EOFError, OSError) as err:  # pickled objects, empty/truncated files
            detail = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            raise ValueError(f"{folder / fname} is not a readable .npy array ({detail})") from None

    x = load("x.npy", big=True)
    if x.ndim != 2 or x.dtype.kind != "f":
        raise ValueError(f"x.npy must be a float array [N, F], got {x.dtype} {x.shape}")
    if not x.dtype.isnative:  # torch reads native byte order only
        raise ValueError(
            f"{folder / 'x.npy'} is stored {'big' if x.dtype.byteorder == '>' else 'little'}-"
            "endian, not in this machine's byte order: save it again as "
            "np.save(path, x.astype(x.dtype.newbyteorder('=')))"
        )
    n = x.shape[0]
    if "num_nodes" in meta and meta["num_nodes"] != n:
        raise ValueError(f"meta.json says num_nodes={meta['num_nodes']} but x.npy has {n} rows")
    y = _int_vector(load("y.npy"), "y.npy")
    if y.shape[0] != n:
        raise ValueError(f"y.npy has {y.shape[0]} labels but x.npy has {n} rows")
    if csc:
        graph = load_graph(folder, mmap=mmap)
        if graph.num_nodes != n:
            raise ValueError(f"{folder / 'graph.json'} has {graph.num_nodes} nodes, x.npy {n} rows")
    else:
        src = _int_vector(load("src.npy", big=True), "src.npy")
        dst = _int_vector(load("dst.npy", big=True), "dst.npy")
        graph = graph_from_coo(src, dst, n, src_name="src.npy", dst_name="dst.npy")
        del src, dst
    if "num_edges" in meta and meta["num_edges"] != graph.num_edges:
        where = "graph.json" if csc else "src.npy / dst.npy"
        raise ValueError(
            f"meta.json says num_edges={meta['num_edges']} but {where} hold {graph.num_edges}"
        )
    split = "files"
    if not has_split and split_seed is not None:
        train_t, val_t, test_t = random_split(torch.from_numpy(y), int(split_seed))
        train, val, test = train_t.numpy(), val_t.numpy(), test_t.numpy()
        split = random_split_name(int(split_seed))
    else:
        train = _int_vector(load("train_idx.npy"), "train_idx.npy")
        val = (
            _int_vector(load("val_idx.npy"), "val_idx.npy")
            if (folder / "val_idx.npy").is_file()
            else np.zeros(0, dtype=np.int64)
        )
        for fname, idx in (("train_idx.npy", train), ("val_idx.npy", val)):
            _check_range(fname, idx, n)
        if (folder / "test_idx.npy").is_file():
            test = _int_vector(load("test_idx.npy"), "test_idx.npy")
            _check_range("test_idx.npy", test, n)
        else:
            rest = np.ones(n, dtype=bool)
            rest[train] = False
            rest[val] = False
            test = np.flatnonzero(rest).astype(np.int64)
    extra = {}
    x_t = as_tensor(x)
    if mmap:
        # rows are gathered at random: no readahead, but the hot prefix of a hot-first folder
        # is read ahead (see advise_random)
        hot_first = meta.get("node_order") == "degree"
        advise_random(x, hot_first=hot_first)
        extra["x_file"] = str(folder / "x.npy")  # for gnnsys.unified.from_file
        remember_mapped(x_t, folder / "x.npy", hot_first=hot_first)  # pickled as the file
    num_classes = meta.get("num_classes")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size and y.max() >= 0 else 1
    try:
        return Dataset(
            name=name or meta.get("name") or folder.name,
            graph=graph,
            x=x_t,
            y=torch.from_numpy(y),
            train_idx=torch.from_numpy(train),
            val_idx=torch.from_numpy(val),
            test_idx=torch.from_numpy(test),
            num_classes=num_classes,
            meta={"source": str(folder), **meta, "split": split, **extra},
        )
    except (ValueError, TypeError, IndexError) as err:  # say which folder
        raise type(err)(f"dataset folder {str(folder)!r}: {err}") from None


def _int_vector(a: np.ndarray, fname: str) -> np.ndarray:
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise ValueError(f"{fname} must be a 1-D integer array, got {a.dtype} {a.shape}")
    if a.dtype.kind == "u" and a.dtype.itemsize == 8 and a.size:
        top = int(a.max())  # would wrap to a negative int64
        if top > np.iinfo(np.int64).max:
            raise ValueError(f"{fname} holds {top}, beyond int64 (a uint64 array)")
    return a if a.dtype == np.int64 else a.astype(np.int64)


def _check_range(fname: str, idx: np.ndarray, n: int) -> None:
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
        raise IndexError(f"{fname} holds node id {bad}, out of range for {n} nodes")
