"""ogbn-mag from the raw files a user already has: no download, no prompt.

Two layouts are read (``<root>`` may also be the dataset folder itself):

- OGB's (``NodePropPredDataset``): ``<root>/ogbn_mag/raw/`` and ``<root>/ogbn_mag/split/``;
- PyG's (``torch_geometric.datasets.OGB_MAG``): ``<root>/mag/raw/``, with ``split/`` inside
  ``raw/``.

Files, as OGB's ``read_csv_heterograph_raw`` and PyG's ``OGB_MAG.process`` read them:

- ``raw/num-node-dict.csv.gz``: a header line of node types, then one row of counts;
- ``raw/triplet-type-list.csv.gz`` (optional; else ogbn-mag's four relations): one
  ``head,relation,tail`` per line;
- ``raw/relations/<head>___<relation>___<tail>/edge.csv.gz``: ``src,dst`` per line, in per-type
  ids, plus ``num-edge-list.csv.gz`` (optional; checked when present);
- ``raw/node-feat/paper/node-feat.csv.gz`` (128 floats per paper) and
  ``raw/node-feat/paper/node_year.csv.gz`` (one year per paper);
- ``raw/node-label/paper/node-label.csv.gz`` (one venue per paper, 349 classes);
- ``split/time/paper/{train,valid,test}.csv.gz`` (paper ids).

CSV files are parsed by ``ogb.read_csv_gz`` (parallel numba, not pandas).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from gnnsys.datasets.hetero import MAG_EDGE_TYPES, MAG_NODE_TYPES, HeteroDataset, add_reverse_edges
from gnnsys.datasets.ogb import _labels, read_csv_gz
from gnnsys.graph import EdgeType, Graph

PathLike = Union[str, "os.PathLike[str]"]

NAME = "ogbn-mag"
NUM_CLASSES = 349
TARGET = "paper"
DEFAULT_SPLIT = "time"
_SPLIT_FILES = ("train.csv.gz", "valid.csv.gz", "test.csv.gz")


def ogbn_mag(
    root: PathLike, *, undirected: bool = True, split: Optional[str] = None
) -> HeteroDataset:
    """Load ogbn-mag from OGB's or PyG's raw layout under ``root``, offline.

    ``undirected`` (default) adds the reverse relations as PyG's ``T.ToUndirected()`` does
    (``rev_writes``, ``rev_affiliated_with``, ``rev_has_topic``; ``cites`` made symmetric and
    deduplicated); ``False`` keeps the four relations as the files list them. ``split``
    overrides the split folder (``time``). A missing or malformed file raises an error naming
    it. ``gnnsys.datasets.ogb("ogbn-mag", root)`` calls this.

    Example:
        >>> ds = gnnsys.datasets.ogb("ogbn-mag", root="~/data/ogb")
        >>> ds.num_nodes_dict["paper"], ds.num_classes
        (736389, 349)
    """
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a str or os.PathLike, got {type(root).__name__}")
    if not isinstance(undirected, bool):
        raise TypeError(f"undirected must be a bool, got {type(undirected).__name__}")
    split = DEFAULT_SPLIT if split is None else split
    if not isinstance(split, str) or not split or "/" in split or split in (".", ".."):
        raise ValueError(f"split must be the name of a split folder, got {split!r}")
    folder, raw, split_root = _find_folder(Path(root).expanduser())
    counts = _read_node_counts(raw / "num-node-dict.csv.gz")
    if TARGET not in counts:
        raise ValueError(
            f"{raw / 'num-node-dict.csv.gz'} has no {TARGET!r} column (node types: {list(counts)})"
        )
    edge_types = _read_triplets(raw)
    edges: Dict[EdgeType, torch.Tensor] = {}
    for et in edge_types:
        for side in (et[0], et[2]):
            if side not in counts:
                raise ValueError(
                    f"relation {et!r} names node type {side!r}, which "
                    f"{raw / 'num-node-dict.csv.gz'} lacks (node types: {list(counts)})"
                )
        edges[et] = _read_edges(raw / "relations" / "___".join(et), et, counts)
    n = counts[TARGET]
    feat_dir = raw / "node-feat" / TARGET
    x = read_csv_gz(feat_dir / "node-feat.csv.gz", integer=False, rows=n, dtype=np.float32)
    year = read_csv_gz(feat_dir / "node_year.csv.gz", integer=True, rows=n, cols=1).reshape(-1)
    label_path = raw / "node-label" / TARGET / "node-label.csv.gz"
    y = read_csv_gz(label_path, integer=False, rows=n, cols=1)
    y = _labels(y, n, NUM_CLASSES, label_path)
    train, val, test = _read_split(split_root / split / TARGET, n)
    if undirected:
        edges = add_reverse_edges(edges, counts)
    graph = Graph.from_hetero(edges, counts)
    del edges
    return HeteroDataset(
        name=NAME,
        graph=graph,
        x_dict={TARGET: torch.from_numpy(x)},
        y=torch.from_numpy(y),
        year=torch.from_numpy(year),
        train_idx=torch.from_numpy(train),
        val_idx=torch.from_numpy(val),
        test_idx=torch.from_numpy(test),
        num_classes=NUM_CLASSES,
        target=TARGET,
        meta={"source": f"{folder} (raw)", "split": split, "undirected": undirected},
    )


# ---------------------------------------------------------------------- layout
def expected_files(folder: Path) -> str:
    """The files ogbn-mag needs, for error messages."""
    rels = ", ".join("___".join(et) for et in MAG_EDGE_TYPES)
    return (
        f"expected in {folder}: raw/num-node-dict.csv.gz, raw/relations/{{{rels}}}/edge.csv.gz, "
        "raw/node-feat/paper/{node-feat, node_year}.csv.gz, "
        "raw/node-label/paper/node-label.csv.gz, and split/time/paper/{train,valid,test}.csv.gz "
        "(OGB's ogbn_mag/ layout; PyG's mag/ layout keeps split/ inside raw/)"
    )


def _find_folder(root: Path) -> Tuple[Path, Path, Path]:
    """(dataset folder, raw folder, folder holding the split folders)."""
    names = ("ogbn_mag", "ogbn_mag_pyg", "mag")
    candidates = [root / b for b in names]
    if root.name in names or (root / "raw").is_dir():
        candidates.insert(0, root)
    for c in candidates:
        raw = c / "raw"
        if raw.is_dir():
            split_root = c / "split" if (c / "split").is_dir() else raw / "split"
            return c, raw, split_root
    raise FileNotFoundError(
        f"no {NAME} folder under {str(root)!r}: looked for "
        f"{', '.join(str(c / 'raw') for c in candidates)}; " + expected_files(root / "ogbn_mag")
    )


def _read_text(path: Path) -> List[List[str]]:
    # Small header/name files: rows of stripped fields, blank lines skipped.
    if not path.is_file():
        raise FileNotFoundError(f"missing file {path}")
    try:
        with gzip.open(path, "rb") as fh:
            text = fh.read().decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a readable gzip text file: {err}") from None
    rows = [[f.strip() for f in row] for row in csv.reader(io.StringIO(text))]
    return [r for r in rows if any(r)]


def _read_node_counts(path: Path) -> Dict[str, int]:
    rows = _read_text(path)
    if len(rows) != 2 or len(rows[0]) != len(rows[1]) or not rows[0]:
        raise ValueError(
            f"{path} must hold a header of node types and one row of counts, got {len(rows)} "
            "lines" + (f" of {len(rows[0])} and {len(rows[1])} fields" if len(rows) == 2 else "")
        )
    counts: Dict[str, int] = {}
    for t, v in zip(*rows):
        if not t or t in counts:
            raise ValueError(f"{path}: node type names must be distinct and non-empty, got {t!r}")
        try:
            c = int(v)
        except ValueError:
            raise ValueError(f"{path}: the count of {t!r} must be an integer, got {v!r}") from None
        if c < 0:
            raise ValueError(f"{path}: the count of {t!r} must be >= 0, got {c}")
        counts[t] = c
    # PyG's order (paper, author, institution, field_of_study; as the synthetic mag), then any
    # other type in the file's order.
    ordered = {t: counts[t] for t in MAG_NODE_TYPES if t in counts}
    ordered.update((t, c) for t, c in counts.items() if t not in ordered)
    return ordered


def _read_triplets(raw: Path) -> List[EdgeType]:
    path = raw / "triplet-type-list.csv.gz"
    if not path.is_file():
        return list(MAG_EDGE_TYPES)
    out: List[EdgeType] = []
    for row in _read_text(path):
        if len(row) != 3 or not all(row):
            raise ValueError(f"{path}: each line must be head,relation,tail; got {row}")
        out.append((row[0], row[1], row[2]))
    if not out or len(set(out)) != len(out):
        raise ValueError(f"{path} must list distinct relations, got {out}")
    return sorted(out)  # OGB sorts the triplets too


def _read_edges(folder: Path, et: EdgeType, counts: Dict[str, int]) -> torch.Tensor:
    path = folder / "edge.csv.gz"
    if not folder.is_dir() or not path.is_file():
        raise FileNotFoundError(f"missing file {path} (the {et!r} edges); " + expected_files(
            folder.parents[2]))  # fmt: skip
    rows = None
    count_path = folder / "num-edge-list.csv.gz"
    if count_path.is_file():
        v = read_csv_gz(count_path, integer=True)
        if v.shape != (1, 1) or v[0, 0] < 0:
            raise ValueError(f"{count_path} must hold one non-negative count, got shape {v.shape}")
        rows = int(v[0, 0])
    e = read_csv_gz(path, integer=True, rows=rows, cols=2)
    for col, t, side in ((0, et[0], "source"), (1, et[2], "destination")):
        if e.shape[0]:
            lo, hi = int(e[:, col].min()), int(e[:, col].max())
            if lo < 0 or hi >= counts[t]:
                bad = lo if lo < 0 else hi
                raise ValueError(
                    f"{path}: {side} id {bad} is out of range for {counts[t]} {t!r} nodes"
                )
    return torch.from_numpy(np.ascontiguousarray(e.T))


def _read_split(folder: Path, n: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = [f for f in _SPLIT_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"split folder {str(folder)!r} lacks {', '.join(missing)}")
    out = []
    for f in _SPLIT_FILES:
        p = read_csv_gz(folder / f, integer=True, cols=1).reshape(-1)
        if p.size and (p.min() < 0 or p.max() >= n):
            bad = int(p.min()) if p.min() < 0 else int(p.max())
            raise IndexError(f"{folder / f} holds paper id {bad}, out of range for {n} papers")
        out.append(p.astype(np.int64))
    return out[0], out[1], out[2]
