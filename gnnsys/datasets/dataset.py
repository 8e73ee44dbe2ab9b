"""Dataset: one graph with node features, labels and a train/val/test split.

Every loader in ``gnnsys.datasets`` (synthetic generators, the folder format, OGB folders)
returns this record, so training code reads them all the same way.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from gnnsys._checks import check_finite_rows, check_index, warn_split_problems
from gnnsys._lifetime import process_alive
from gnnsys.graph import Graph

# A class count above both the node count and this is refused as a stray label or a wrong
# meta.json (1e9 classes asked the model for a 512 GB output layer); below it, a small
# subgraph of a many-class dataset (172 classes, 100 nodes) still loads.
MAX_CLASSES_BEYOND_NODES = 1 << 16


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
        if n == 0:
            raise ValueError("the dataset has no nodes: there is nothing to train on")
        if self.x.shape[1] == 0:
            raise ValueError("x has 0 feature columns: a model needs at least one input feature")
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
        lo, hi = int(self.y.min()), int(self.y.max())
        if lo < -1 or hi >= self.num_classes:
            bad = lo if lo < -1 else hi
            raise ValueError(
                f"y holds label {bad}; labels must be in 0..{self.num_classes - 1} "
                "(or -1 for unlabelled)"
            )
        if self.num_classes > max(n, MAX_CLASSES_BEYOND_NODES):
            raise ValueError(
                f"num_classes={self.num_classes} (largest label {hi}) is more than the {n} "
                f"nodes and more than {MAX_CLASSES_BEYOND_NODES}: a stray label or a wrong "
                "class count (the model's output layer would need a row per class)"
            )
        for split in ("train_idx", "val_idx", "test_idx"):
            setattr(self, split, check_index(split, getattr(self, split), n))
        check_finite_rows("x", self.x)
        warn_split_problems(
            {k: getattr(self, k) for k in ("train_idx", "val_idx", "test_idx")},
            f"dataset {self.name!r}",
        )

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

    @classmethod
    def from_pyg(cls, data: Any, *, name: str = "pyg", split_seed: Optional[int] = None) -> Dataset:
        """A Dataset from a PyG ``Data`` (or a dict of its fields): x, y, edge_index, and the
        split from ``train_mask``/``val_mask``/``test_mask`` when present.

        Without masks, ``split_seed`` gives a seeded random split (``random_split``) and
        ``meta["split"]`` says so; without either it is an error. ``y`` may be [N] or [N, 1];
        the class count is ``y.max() + 1``. Edges are kept as given (row 0 the source).

        Example:
            >>> ds = Dataset.from_pyg(gnnsys.datasets.synthetic("tiny").to_pyg())
            >>> ds.num_classes
            8
        """
        fields = _pyg_fields(data)
        for key in ("x", "y", "edge_index"):
            if not isinstance(fields.get(key), torch.Tensor):
                got = type(fields.get(key)).__name__ if key in fields else "missing"
                raise ValueError(f"the PyG data needs a tensor {key!r}, got {got}")
        x, y, ei = fields["x"], fields["y"], fields["edge_index"]
        if x.dim() != 2 or not x.dtype.is_floating_point:
            raise ValueError(f"x must be a float tensor [N, F], got {x.dtype} {tuple(x.shape)}")
        n = x.shape[0]
        num_nodes = fields.get("num_nodes")
        if num_nodes is not None and int(num_nodes) != n:
            raise ValueError(f"num_nodes is {int(num_nodes)} but x has {n} rows")
        if y.dim() == 2 and y.shape[1] == 1:
            y = y.view(-1)
        if y.dim() != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
            raise ValueError(
                f"y must be an integer tensor [N] or [N, 1] of class labels, got {y.dtype} "
                f"{tuple(fields['y'].shape)}"
            )
        if y.numel() != n:
            raise ValueError(f"y has {y.numel()} labels but x has {n} rows")
        y = y.to(torch.int64)
        if ei.dim() != 2 or ei.shape[0] != 2:
            raise ValueError(f"edge_index must be [2, E], got shape {tuple(ei.shape)}")
        graph = graph_from_coo(
            ei[0].contiguous(), ei[1].contiguous(), n, src_name="edge_index[0]",
            dst_name="edge_index[1]",
        )  # fmt: skip
        labelled = y[y >= 0]
        num_classes = int(labelled.max()) + 1 if labelled.numel() else 1
        masks = {k: fields.get(f"{k}_mask") for k in ("train", "val", "test")}
        if masks["train"] is not None:
            idx = {k: _mask_to_index(f"{k}_mask", m, n) for k, m in masks.items()}
            split = "masks"
        elif any(m is not None for m in masks.values()):
            raise ValueError("the PyG data has val_mask or test_mask but no train_mask")
        elif split_seed is None:
            raise ValueError(
                "the PyG data has no train_mask/val_mask/test_mask; pass split_seed for a "
                "seeded random split"
            )
        else:
            train, val, test = random_split(y, split_seed)
            idx = {"train": train, "val": val, "test": test}
            split = random_split_name(split_seed)
        return cls(
            name=name,
            graph=graph,
            x=x,
            y=y,
            train_idx=idx["train"],
            val_idx=idx["val"],
            test_idx=idx["test"],
            num_classes=num_classes,
            meta={"source": "pyg", "split": split},
        )


SPLIT_FRACTIONS = (0.6, 0.2, 0.2)


def random_split_name(seed: int) -> str:
    """How ``random_split`` is described in ``meta["split"]`` and in ``gnnsys train``'s output."""
    return "random {:.0f}/{:.0f}/{:.0f} of the labelled nodes, seed {}".format(
        *(100 * f for f in SPLIT_FRACTIONS), seed
    )


def random_split(y: torch.Tensor, seed: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded random 60/20/20 train/val/test split of the labelled nodes (``y >= 0``).

    The same ``y`` and ``seed`` give the same split on every machine (torch's CPU generator);
    each part is sorted.

    Example:
        >>> train, val, test = random_split(torch.tensor([0, 1, 1, 0, -1]), seed=0)
        >>> sorted(torch.cat([train, val, test]).tolist())
        [0, 1, 2, 3]
    """
    if not isinstance(y, torch.Tensor) or y.dim() != 1:
        raise ValueError("y must be a 1-D tensor of labels")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    labelled = torch.nonzero(y >= 0).view(-1)
    m = labelled.numel()
    if m == 0:
        raise ValueError("no labelled node (every label is -1): cannot make a split")
    g = torch.Generator().manual_seed(int(seed))
    perm = labelled[torch.randperm(m, generator=g)]
    n_train = max(1, round(SPLIT_FRACTIONS[0] * m))
    n_val = round(SPLIT_FRACTIONS[1] * m)
    parts = perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :]
    return tuple(p.sort().values for p in parts)  # type: ignore[return-value]


def _pyg_fields(data: Any) -> Dict[str, Any]:
    # A PyG Data (attributes in its store), a dict of fields; HeteroData has no single x/y.
    if isinstance(data, dict):
        return data
    if type(data).__name__ == "HeteroData":
        raise ValueError("a HeteroData has several node types; save one homogeneous Data")
    to_dict = getattr(data, "to_dict", None)
    if callable(to_dict):
        fields = dict(to_dict())
        if "num_nodes" not in fields and getattr(data, "_store", None) is not None:
            n = data._store.get("num_nodes")
            if n is not None:
                fields["num_nodes"] = n
        return fields
    raise TypeError(
        f"expected a torch_geometric Data or a dict of its fields, got {type(data).__name__}"
    )


def _mask_to_index(name: str, mask: Any, n: int) -> torch.Tensor:
    if mask is None:
        return torch.zeros(0, dtype=torch.int64)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{name} must be a bool tensor [{n}], got {got}")
    if mask.dim() != 1 or mask.numel() != n:
        hint = " (several splits: keep one column, e.g. mask[:, 0])" if mask.dim() == 2 else ""
        raise ValueError(f"{name} must have shape [{n}], got {tuple(mask.shape)}{hint}")
    return torch.nonzero(mask).view(-1)


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


# Files of which one marks a folder as a dataset folder (written by gnnsys or laid out by
# hand): what ``overwrite=True`` may replace (``graph_io.check_replaceable``).
DATASET_MARKS = ("meta.json", "graph.json", "x.npy", "src.npy")


def make_temp_dir(final: Path) -> Path:
    """A fresh hidden folder next to ``final``, to be renamed onto it once complete.

    Made with ``os.mkdir`` (not ``mkdtemp``, which makes it 0700) so the renamed folder gets the
    mode a plain ``mkdir`` would. Its name carries this host and process
    (``.NAME.HOST.PID.RANDOM.tmp``), so that the leftovers of a run killed before it finished
    (SIGKILL, the OOM killer: no cleanup code runs) are removed by the next run for ``final``
    (``remove_dead_temp_dirs``) instead of filling the disk: a killed papers build leaves tens
    of GB.
    """
    remove_dead_temp_dirs(final)
    tmp = final.parent / f".{final.name}.{_host_tag()}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    os.mkdir(tmp)
    return tmp


def remove_dead_temp_dirs(final: Path) -> list:
    """Remove the temporary folders for ``final`` that processes of this host left behind and
    that are no longer running; returns the removed paths (a warning names each). Folders of
    live processes, of other hosts (a shared filesystem) and of unknown format are kept."""
    import shutil
    import warnings

    removed = []
    prefix, host = f".{final.name}.", _host_tag()
    try:
        entries = list(final.parent.iterdir())
    except OSError:
        return removed
    for path in entries:
        name = path.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        parts = name[len(prefix) : -len(".tmp")].split(".")
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid() or process_alive(pid):
            continue
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
        warnings.warn(
            f"removed {path} ({size / 2**30:.2f} GiB), the temporary folder of an earlier run "
            f"for {final} (process {pid}, no longer running) that did not finish",
            stacklevel=3,
        )
    return removed


def _host_tag() -> str:
    """8 hex digits naming this host and PID namespace: process ids are only checked where
    they mean the same process (never another machine's, or another container's that shares
    the host name and the filesystem)."""
    import hashlib
    import socket

    try:
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # not Linux
        ns = 0
    return hashlib.sha1(f"{socket.gethostname()}/{ns}".encode()).hexdigest()[:8]
