"""Dataset: one graph with node features, labels and a train/val/test split.

Every loader in ``gnnsys.datasets`` (synthetic generators, the folder format, OGB folders)
returns this record, so training code reads them all the same way.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch

from gnnsys._checks import check_index
from gnnsys.graph import Graph


@dataclass
class Dataset:
    """A node-classification dataset.

    Fields:
        name: the dataset's name (``"mini"``, ``"ogbn-arxiv"``, ...).
        graph: the ``Graph`` (CSC of incoming edges; symmetric graphs hold both directions).
        x: float [N, F] node features (float32 for the generators).
        y: int64 [N] labels in 0..num_classes-1; -1 marks an unlabelled node (papers100M).
        train_idx, val_idx, test_idx: int64 node ids of each split.
        num_classes: the number of classes.
        meta: how it was made (generator parameters, source files), for reports.

    Example:
        >>> ds = gnnsys.datasets.synthetic("tiny")
        >>> ds.x.shape[0] == ds.graph.num_nodes == ds.y.numel()
        True
    """

    name: str
    graph: Graph
    x: torch.Tensor
    y: torch.Tensor
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    test_idx: torch.Tensor
    num_classes: int
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.graph, Graph):
            raise TypeError(f"graph must be a gnnsys.Graph, got {type(self.graph).__name__}")
        n = self.graph.num_nodes
        if not isinstance(self.x, torch.Tensor) or self.x.dim() != 2:
            shape = tuple(self.x.shape) if isinstance(self.x, torch.Tensor) else type(self.x)
            raise ValueError(f"x must be a 2-D tensor [N, F], got {shape}")
        if not self.x.dtype.is_floating_point:
            raise ValueError(f"x must be a floating-point tensor, got dtype {self.x.dtype}")
        if self.x.shape[0] != n:
            raise ValueError(f"x has {self.x.shape[0]} rows but the graph has {n} nodes")
        if not isinstance(self.num_classes, (int, np.integer)) or isinstance(
            self.num_classes, bool
        ):
            raise TypeError(f"num_classes must be an int, got {type(self.num_classes).__name__}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        self.num_classes = int(self.num_classes)
        if not isinstance(self.y, torch.Tensor) or self.y.dtype != torch.int64:
            got = self.y.dtype if isinstance(self.y, torch.Tensor) else type(self.y).__name__
            raise ValueError(f"y must be an int64 tensor, got {got}")
        if self.y.shape != (n,):
            raise ValueError(f"y must have shape [{n}], got {tuple(self.y.shape)}")
        if n:
            lo, hi = int(self.y.min()), int(self.y.max())
            if lo < -1 or hi >= self.num_classes:
                bad = lo if lo < -1 else hi
                raise ValueError(
                    f"y holds label {bad}; labels must be in 0..{self.num_classes - 1} "
                    "(or -1 for unlabelled)"
                )
        for split in ("train_idx", "val_idx", "test_idx"):
            setattr(self, split, check_index(split, getattr(self, split), n))

    @property
    def num_nodes(self) -> int:
        return self.graph.num_nodes

    @property
    def num_edges(self) -> int:
        return self.graph.num_edges

    @property
    def num_features(self) -> int:
        return int(self.x.shape[1])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, num_nodes={self.num_nodes}, "
            f"num_edges={self.num_edges}, num_features={self.num_features}, "
            f"num_classes={self.num_classes}, train/val/test={self.train_idx.numel()}/"
            f"{self.val_idx.numel()}/{self.test_idx.numel()})"
        )

    def mask(self, split: str) -> torch.Tensor:
        """bool [N] mask of ``split`` ("train", "val" or "test").

        Example:
            >>> int(ds.mask("train").sum()) == ds.train_idx.numel()
            True
        """
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be one of ('train', 'val', 'test'), got {split!r}")
        m = torch.zeros(self.num_nodes, dtype=torch.bool)
        m[getattr(self, f"{split}_idx")] = True
        return m

    def to_pyg(self) -> Any:
        """A ``torch_geometric.data.Data`` with x, y, edge_index and train/val/test masks.

        ``edge_index`` row 0 is the source, row 1 the destination (PyG's ``source_to_target``).

        Example:
            >>> data = gnnsys.datasets.synthetic("tiny").to_pyg()
            >>> data.edge_index.shape[0], bool(data.train_mask.any())
            (2, True)
        """
        from torch_geometric.data import Data

        return Data(
            x=self.x,
            y=self.y,
            edge_index=self.graph.to_edge_index(),
            train_mask=self.mask("train"),
            val_mask=self.mask("val"),
            test_mask=self.mask("test"),
            num_nodes=self.num_nodes,
        )


def graph_from_coo(
    src: np.ndarray,
    dst: np.ndarray,
    num_nodes: int,
    *,
    symmetrise: bool = False,
    dedupe: bool = False,
    drop_loops: bool = False,
    src_name: str = "src",
    dst_name: str = "dst",
) -> Graph:
    """Build a ``Graph`` from COO arrays with the numba CSC kernels (no edge ids kept).

    Validates ids first (the kernels do no bounds checks). ``symmetrise`` adds every reverse
    edge, ``dedupe`` keeps one of parallel edges (and sorts each column by source),
    ``drop_loops`` removes self loops.

    Example:
        >>> graph_from_coo(np.array([0, 1]), np.array([1, 2]), 3, symmetrise=True).num_edges
        4
    """
    from gnnsys._csc import coo_to_csc, sort_and_filter

    src = _check_ids(src_name, src, num_nodes)
    dst = _check_ids(dst_name, dst, num_nodes)
    if src.shape != dst.shape:
        raise ValueError(
            f"{src_name} and {dst_name} must have the same length, got {src.size} and {dst.size}"
        )
    if symmetrise:
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
    np_idt = np.int32 if num_nodes < 2**31 else np.int64
    indptr, indices, perm = coo_to_csc(src, dst, int(num_nodes), np_idt)
    del src, dst
    if dedupe or drop_loops:
        indptr, indices, perm = sort_and_filter(
            indptr, indices, perm, dedupe=dedupe, drop_loops=drop_loops
        )
    del perm
    return Graph(torch.from_numpy(indptr), torch.from_numpy(indices), validate=False)


def _check_ids(name: str, ids: Any, num_nodes: int) -> np.ndarray:
    if isinstance(ids, torch.Tensor):
        ids = ids.numpy()
    if not isinstance(ids, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or tensor, got {type(ids).__name__}")
    if ids.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer node ids, got dtype {ids.dtype}")
    if ids.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {ids.shape}")
    if ids.size:
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0:
            raise ValueError(f"{name} holds a negative node id: {lo}")
        if hi >= num_nodes:
            raise ValueError(
                f"{name} holds node id {hi}, out of range for {num_nodes} nodes "
                f"(valid: 0..{num_nodes - 1})"
            )
    return np.ascontiguousarray(ids)


def make_temp_dir(final: Path) -> Path:
    """A fresh hidden folder next to ``final``, to be renamed onto it once complete.

    Made with ``os.mkdir`` (not ``mkdtemp``, which makes it 0700) so the renamed folder gets the
    mode a plain ``mkdir`` would.
    """
    tmp = final.parent / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    os.mkdir(tmp)
    return tmp
