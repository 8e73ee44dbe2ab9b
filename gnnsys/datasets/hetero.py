"""Heterogeneous node classification: ``HeteroDataset`` and the ogbn-mag-shaped generator.

``HeteroDataset`` is the typed counterpart of ``Dataset``: one typed ``Graph`` (a fused CSC, see
``Graph.from_hetero``), features per node type, labels, years and a split on one target node
type. ``synthetic("tiny-mag" | "mini-mag" | "mag")`` generates an ogbn-mag-shaped graph: papers,
authors, institutions and fields of study; cites, writes, affiliated_with and has_topic, plus
the reverse relations named as PyG's ``T.ToUndirected()`` names them (``rev_<relation>``; the
paper-paper ``cites`` is made symmetric in place).

Structure of the generator: every node has a class (a paper's class is its label; authors,
institutions and fields have a home class) and, per relation side, a power-law popularity
weight. An edge picks its source by weight and, with the relation's ``intra`` probability, a
destination of the source's class (else any destination), by weight. Every paper gets an author
and a field, every author a paper, every institution an author. Parallel edges and citation self
loops are dropped and more edges drawn until each relation has exactly its count. Paper features
are the class centroid plus large Gaussian noise, so an MLP on paper features does poorly while a
relational GNN, which averages same-class neighbours over several relations, does much better.
Everything is counter-based hashing of (seed, stream, counter): a seed gives the same arrays
whatever the thread count. Results are cached like ``synthetic`` (atomic write, memory-mapped
load), keyed by name, seed and ``GENERATOR_VERSION``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from numba import njit, prange

from gnnsys._checks import check_finite_rows, check_index, warn_split_problems
from gnnsys.datasets import rmat as _rmat
from gnnsys.datasets.dataset import _mask_to_index, random_split, random_split_name
from gnnsys.graph import EdgeType, Graph

PathLike = Union[str, "os.PathLike[str]"]

# Bump whenever the generated arrays for a (name, seed) change: it is part of the cache key.
GENERATOR_VERSION = "h1"

MAG_NODE_TYPES = ("paper", "author", "institution", "field_of_study")
# ogbn-mag's four relations, in OGB's (sorted) order.
MAG_EDGE_TYPES: Tuple[EdgeType, ...] = (
    ("author", "affiliated_with", "institution"),
    ("author", "writes", "paper"),
    ("paper", "cites", "paper"),
    ("paper", "has_topic", "field_of_study"),
)
MAG_NUM_NODES = {"paper": 736389, "author": 1134649, "institution": 8740, "field_of_study": 59965}
MAG_NUM_EDGES = {
    MAG_EDGE_TYPES[0]: 1043998,
    MAG_EDGE_TYPES[1]: 7145660,
    MAG_EDGE_TYPES[2]: 5416271,
    MAG_EDGE_TYPES[3]: 7505078,
}
# Paper years 2010..2019; ogbn-mag's time split: train < 2018 (85.5%), valid 2018 (8.8%),
# test 2019 (5.7%).
YEARS = np.arange(2010, 2020)
YEAR_PROBS = np.array([0.07, 0.08, 0.09, 0.10, 0.11, 0.12, 0.13, 0.155, 0.088, 0.057])
VAL_YEAR = 2018

# Random streams of the generator (disjoint from rmat's 1..8).
_S_CLASS = 100  # + node type index
_S_WEIGHT = 110  # + 2 * relation index + side
_S_EDGES = 130  # + relation index
_S_CENTROID = 140
_S_NOISE = 141
_S_YEAR = 142
_MAX_ROUNDS = 32


# ====================================================================== the dataset
@dataclass
class HeteroDataset:
    """A heterogeneous node-classification dataset (labels on one node type).

    Fields:
        name: the dataset's name (``"mini-mag"``, ``"ogbn-mag"``, ...).
        graph: the typed ``Graph`` (fused CSC of incoming edges, ``Graph.from_hetero``).
        x_dict: float features per node type; types without features are absent (as ogbn-mag,
            where only papers have features).
        y: int64 [N_target] labels in 0..num_classes-1 (-1: unlabelled).
        year: optional int64 [N_target], each target node's year.
        train_idx, val_idx, test_idx: int64 ids of the target type's nodes in each split.
        num_classes: the number of classes.
        target: the labelled node type (``"paper"``).
        meta: how it was made (generator parameters, source files, the split rule).

    Example:
        >>> ds = gnnsys.datasets.synthetic("tiny-mag")
        >>> ds.x_dict["paper"].shape[0] == ds.num_nodes_dict["paper"] == ds.y.numel()
        True
    """

    name: str
    graph: Graph
    x_dict: Dict[str, torch.Tensor]
    y: torch.Tensor
    year: Optional[torch.Tensor]
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    test_idx: torch.Tensor
    num_classes: int
    target: str = "paper"
    meta: Dict[str, Any] = field(default_factory=dict)
    _edge_index_dict: Optional[Dict[EdgeType, torch.Tensor]] = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.graph, Graph):
            raise TypeError(f"graph must be a gnnsys.Graph, got {type(self.graph).__name__}")
        counts = self.graph.num_nodes_dict
        if not isinstance(self.target, str) or self.target not in counts:
            raise ValueError(
                f"target must name a node type of the graph {list(counts)}, got {self.target!r}"
            )
        if not isinstance(self.x_dict, Mapping):
            raise TypeError(f"x_dict must be a dict {{node type: features}}, got "
                            f"{type(self.x_dict).__name__}")  # fmt: skip
        self.x_dict = dict(self.x_dict)
        for t, x in self.x_dict.items():
            if t not in counts:
                raise ValueError(f"x_dict names node type {t!r}, which the graph lacks "
                                 f"(node types: {list(counts)})")  # fmt: skip
            if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.dtype.is_floating_point:
                got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x)
                raise ValueError(f"x_dict[{t!r}] must be a float tensor [N, F], got {got}")
            if x.shape[0] != counts[t]:
                raise ValueError(
                    f"x_dict[{t!r}] has {x.shape[0]} rows but the graph has {counts[t]} {t!r} nodes"
                )
        if isinstance(self.num_classes, bool) or not isinstance(
            self.num_classes, (int, np.integer)
        ):
            raise TypeError(f"num_classes must be an int, got {type(self.num_classes).__name__}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        self.num_classes = int(self.num_classes)
        n = counts[self.target]
        if not isinstance(self.y, torch.Tensor) or self.y.dtype != torch.int64:
            got = self.y.dtype if isinstance(self.y, torch.Tensor) else type(self.y).__name__
            raise ValueError(f"y must be an int64 tensor, got {got}")
        if self.y.shape != (n,):
            raise ValueError(
                f"y must have shape [{n}] (one label per {self.target!r} node), "
                f"got {tuple(self.y.shape)}"
            )
        if n:
            lo, hi = int(self.y.min()), int(self.y.max())
            if lo < -1 or hi >= self.num_classes:
                raise ValueError(
                    f"y holds label {lo if lo < -1 else hi}; labels must be in "
                    f"0..{self.num_classes - 1} (or -1 for unlabelled)"
                )
        if self.year is not None:
            if not isinstance(self.year, torch.Tensor) or self.year.dtype != torch.int64:
                got = self.year.dtype if isinstance(self.year, torch.Tensor) else type(self.year)
                raise ValueError(f"year must be an int64 tensor or None, got {got}")
            if self.year.shape != (n,):
                raise ValueError(f"year must have shape [{n}], got {tuple(self.year.shape)}")
        for split in ("train_idx", "val_idx", "test_idx"):
            setattr(self, split, check_index(split, getattr(self, split), n))
        for t, x in self.x_dict.items():
            check_finite_rows(f"x_dict[{t!r}]", x)
        warn_split_problems(
            {k: getattr(self, k) for k in ("train_idx", "val_idx", "test_idx")},
            f"dataset {self.name!r} ({self.target!r} nodes)",
        )

    # ------------------------------------------------------------------ shape
    @property
    def node_types(self) -> List[str]:
        return self.graph.node_types

    @property
    def edge_types(self) -> List[EdgeType]:
        return self.graph.edge_types

    @property
    def num_nodes_dict(self) -> Dict[str, int]:
        return self.graph.num_nodes_dict

    @property
    def num_edges_dict(self) -> Dict[EdgeType, int]:
        """Edges per edge type."""
        ets = self.graph.edge_types
        tpe = self.graph.type_per_edge
        if tpe is None:
            return {ets[0]: self.graph.num_edges}
        counts = torch.bincount(tpe.long(), minlength=len(ets)).tolist()
        return dict(zip(ets, counts))

    @property
    def num_nodes(self) -> int:
        return self.graph.num_nodes

    @property
    def num_edges(self) -> int:
        return self.graph.num_edges

    @property
    def num_features(self) -> int:
        """Feature width of the target type (0 when it has none)."""
        x = self.x_dict.get(self.target)
        return int(x.shape[1]) if x is not None else 0

    @property
    def edge_index_dict(self) -> Dict[EdgeType, torch.Tensor]:
        """int64 [2, E_t] per edge type in per-type ids (from ``graph.to_hetero()``, cached)."""
        if self._edge_index_dict is None:
            self._edge_index_dict = self.graph.to_hetero()[0]
        return self._edge_index_dict

    def __repr__(self) -> str:
        return (
            f"HeteroDataset(name={self.name!r}, num_nodes={self.num_nodes_dict}, "
            f"num_edges={self.num_edges}, target={self.target!r}, "
            f"num_features={self.num_features}, num_classes={self.num_classes}, "
            f"train/val/test={self.train_idx.numel()}/{self.val_idx.numel()}/"
            f"{self.test_idx.numel()})"
        )

    def mask(self, split: str) -> torch.Tensor:
        """bool [N_target] mask of ``split`` ("train", "val" or "test")."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be one of ('train', 'val', 'test'), got {split!r}")
        m = torch.zeros(self.num_nodes_dict[self.target], dtype=torch.bool)
        m[getattr(self, f"{split}_idx")] = True
        return m

    # ------------------------------------------------------------------ PyG
    def to_pyg(self) -> Any:
        """A ``torch_geometric.data.HeteroData``: ``num_nodes`` on every node type, ``x`` where
        there are features, ``y``/``year``/``train_mask``/``val_mask``/``test_mask`` on the
        target type, ``edge_index`` (row 0 the source) on every edge type.

        Example:
            >>> data = gnnsys.datasets.synthetic("tiny-mag").to_pyg()
            >>> data["paper"].train_mask.dtype, data["paper", "cites", "paper"].edge_index.shape[0]
            (torch.bool, 2)
        """
        from torch_geometric.data import HeteroData

        data = HeteroData()
        for t, n in self.num_nodes_dict.items():
            data[t].num_nodes = n
            if t in self.x_dict:
                data[t].x = self.x_dict[t]
        store = data[self.target]
        store.y = self.y
        if self.year is not None:
            store.year = self.year
        for split in ("train", "val", "test"):
            store[f"{split}_mask"] = self.mask(split)
        for et, ei in self.edge_index_dict.items():
            data[et].edge_index = ei
        return data

    @classmethod
    def from_pyg(
        cls,
        data: Any,
        *,
        name: str = "pyg",
        target: Optional[str] = None,
        split_seed: Optional[int] = None,
    ) -> HeteroDataset:
        """A HeteroDataset from a PyG ``HeteroData``.

        ``target`` is the labelled node type (default: the one node type that has ``y``);
        ``y`` may be [N] or [N, 1], the class count is ``y.max() + 1``; ``year`` is kept when
        the target has one. The split comes from the target's ``train_mask``/``val_mask``/
        ``test_mask``; without masks ``split_seed`` gives a seeded 60/20/20 random split. Edges
        are kept as given (apply ``T.ToUndirected()`` first for reverse relations).

        Example:
            >>> ds = HeteroDataset.from_pyg(gnnsys.datasets.synthetic("tiny-mag").to_pyg())
            >>> ds.target
            'paper'
        """
        if not (hasattr(data, "node_types") and hasattr(data, "edge_types")):
            raise TypeError(f"expected a torch_geometric HeteroData, got {type(data).__name__}")
        node_types = list(data.node_types)
        if target is None:
            labelled = [t for t in node_types if "y" in data[t]]
            if len(labelled) != 1:
                raise ValueError(
                    f"cannot tell the target node type: node types with y are {labelled}; "
                    "pass target="
                )
            target = labelled[0]
        if target not in node_types:
            raise ValueError(f"target {target!r} is not a node type of the data ({node_types})")
        store = data[target]
        if not isinstance(store.get("y"), torch.Tensor):
            raise ValueError(f"the target node type {target!r} has no tensor y")
        y = store.y
        if y.dim() == 2 and y.shape[1] == 1:
            y = y.view(-1)
        if y.dim() != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
            raise ValueError(f"{target}.y must be integer class labels [N] or [N, 1], got "
                             f"{y.dtype} {tuple(store.y.shape)}")  # fmt: skip
        y = y.to(torch.int64)
        graph = Graph.from_pyg(data)
        n = graph.num_nodes_dict[target]
        x_dict = {t: data[t].x for t in node_types if isinstance(data[t].get("x"), torch.Tensor)}
        year = store.get("year")
        if isinstance(year, torch.Tensor):
            year = year.view(-1).to(torch.int64)
        else:
            year = None
        labelled_y = y[y >= 0]
        num_classes = int(labelled_y.max()) + 1 if labelled_y.numel() else 1
        masks = {k: store.get(f"{k}_mask") for k in ("train", "val", "test")}
        if masks["train"] is not None:
            idx = {k: _mask_to_index(f"{target}.{k}_mask", m, n) for k, m in masks.items()}
            split = "masks"
        elif any(m is not None for m in masks.values()):
            raise ValueError(f"the {target!r} nodes have val_mask or test_mask but no train_mask")
        elif split_seed is None:
            raise ValueError(
                f"the {target!r} nodes have no train_mask/val_mask/test_mask; pass split_seed "
                "for a seeded random split"
            )
        else:
            train, val, test = random_split(y, split_seed)
            idx = {"train": train, "val": val, "test": test}
            split = random_split_name(split_seed)
        return cls(
            name=name,
            graph=graph,
            x_dict=x_dict,
            y=y,
            year=year,
            train_idx=idx["train"],
            val_idx=idx["val"],
            test_idx=idx["test"],
            num_classes=num_classes,
            target=target,
            meta={"source": "pyg", "split": split},
        )


def add_reverse_edges(
    edge_index_dict: Mapping[EdgeType, Any], num_nodes_dict: Mapping[str, int]
) -> Dict[EdgeType, torch.Tensor]:
    """Every relation plus its reverse, as PyG's ``T.ToUndirected()`` makes them.

    A relation between two node types gets a reverse type ``(dst, "rev_" + rel, src)`` (the
    edges flipped, in the same order); a relation within one node type (``cites``) is made
    symmetric in place and coalesced: duplicates dropped, sorted by (source, destination).
    Reverse types come after the originals.

    Example:
        >>> out = add_reverse_edges({("a", "r", "b"): torch.tensor([[0], [1]])}, {"a": 1, "b": 2})
        >>> list(out)
        [('a', 'r', 'b'), ('b', 'rev_r', 'a')]
    """
    out: Dict[EdgeType, torch.Tensor] = {}
    rev: Dict[EdgeType, torch.Tensor] = {}
    for et, ei in edge_index_dict.items():
        if not (isinstance(et, tuple) and len(et) == 3 and all(isinstance(p, str) for p in et)):
            raise ValueError(f"edge types must be (src_type, relation, dst_type), got {et!r}")
        src_t, rel, dst_t = et
        ei = torch.as_tensor(ei)
        if ei.dim() != 2 or ei.shape[0] != 2:
            raise ValueError(f"edge_index_dict[{et!r}] must have shape [2, E], got "
                             f"{tuple(ei.shape)}")  # fmt: skip
        if src_t == dst_t:
            if src_t not in num_nodes_dict:
                raise ValueError(f"num_nodes_dict lacks node type {src_t!r} of {et!r}")
            out[et] = _coalesce_symmetric(ei.long(), int(num_nodes_dict[src_t]), et)
        else:
            out[et] = ei
            rev_et = (dst_t, f"rev_{rel}", src_t)
            if rev_et in edge_index_dict:
                raise ValueError(f"edge type {rev_et!r} exists already; cannot add it as reverse")
            rev[rev_et] = ei.flip(0).contiguous()
    out.update(rev)
    return out


def _coalesce_symmetric(ei: torch.Tensor, n: int, et: EdgeType) -> torch.Tensor:
    if ei.numel() == 0:
        return ei.reshape(2, 0)
    s, d = ei[0].numpy(), ei[1].numpy()
    lo, hi = int(min(s.min(), d.min())), int(max(s.max(), d.max()))
    if lo < 0 or hi >= n:
        raise ValueError(f"edge_index_dict[{et!r}] holds node id {lo if lo < 0 else hi}, out "
                         f"of range for {n} {et[0]!r} nodes")  # fmt: skip
    keys = np.concatenate([s * n + d, d * n + s])
    keys = np.unique(keys)
    return torch.from_numpy(np.stack([keys // n, keys % n]))


# ====================================================================== generator recipes
@dataclass(frozen=True)
class HeteroSpec:
    """The recipe of one ogbn-mag-shaped dataset.

    ``num_nodes`` in ``MAG_NODE_TYPES`` order, ``num_edges`` and ``intra`` (the probability
    that an edge's destination is drawn from its source's class) in ``MAG_EDGE_TYPES`` order;
    ``noise`` the paper feature noise std (class centroids are standard normal); ``alpha`` the
    power-law exponent of the popularity weights; ``class_skew`` s in p(class c) ~ (c+1)^-s.
    """

    num_nodes: Tuple[int, int, int, int]
    num_edges: Tuple[int, int, int, int]
    num_classes: int
    intra: Tuple[float, float, float, float]
    noise: float
    feat_dim: int = 128
    alpha: float = 2.2
    class_skew: float = 0.5


def _scaled_spec(
    div: int, num_classes: int, noise: float, intra: Tuple[float, float, float, float]
) -> HeteroSpec:
    nodes = tuple(int(round(MAG_NUM_NODES[t] / div)) for t in MAG_NODE_TYPES)
    edges = tuple(int(round(MAG_NUM_EDGES[e] / div)) for e in MAG_EDGE_TYPES)
    return HeteroSpec(nodes, edges, num_classes, intra, noise)  # type: ignore[arg-type]


# Tuned on mini-mag (benchmarks/hetero_acceptance.py, 2-layer R-GCN vs 2-layer MLP, 60 epochs):
# intra (affiliated_with, writes, cites, has_topic) = (0.5, 0.8, 0.7, 0.6) made R-GCN 99% vs MLP
# 25% (too easy to tell samplers or models apart); (0.15, 0.2, 0.15, 0.15) gave 42% vs 25%,
# close to real ogbn-mag (R-GCN ~47%, MLP ~27%) but with little margin; (0.3, 0.4, 0.3, 0.3)
# 83%. With 8 classes (tiny-mag) a random edge is same-class far more often, so tiny keeps
# weaker planted structure for a similar difficulty. The noise grows as the classes get fewer,
# so paper features alone stay weak at every size (an ideal classifier that knows the
# centroids gets roughly 35-45% right; the MLP gets ~25-35%).
HETERO_SPECS: Dict[str, HeteroSpec] = {
    # ~7.6k nodes, ~165k edges with the reverse relations: for tests.
    "tiny-mag": _scaled_spec(256, 8, 10.0, (0.3, 0.4, 0.3, 0.3)),
    # 1/20 of ogbn-mag: ~97k nodes, ~2.1M edges with the reverse relations.
    "mini-mag": _scaled_spec(20, 64, 6.0, (0.2, 0.3, 0.2, 0.2)),
    # ogbn-mag's sizes: 1.94M nodes, ~42M edges with the reverse relations, 349 classes.
    "mag": _scaled_spec(1, 349, 4.5, (0.2, 0.3, 0.2, 0.2)),
}
HETERO_NAMES = tuple(HETERO_SPECS)


def synthetic_hetero(
    name: str = "mini-mag",
    *,
    seed: int = 0,
    root: Optional[PathLike] = None,
    cache: bool = True,
) -> HeteroDataset:
    """Generate (or load from the cache) the ogbn-mag-shaped dataset ``name``.

    Names: ``tiny-mag`` (~7.6k nodes, tests), ``mini-mag`` (1/20 of ogbn-mag), ``mag``
    (ogbn-mag's sizes). The split follows ogbn-mag's time split: train = papers before 2018,
    val = 2018, test = 2019. ``gnnsys.datasets.synthetic(name)`` calls this.

    Example:
        >>> ds = synthetic_hetero("tiny-mag", cache=False)
        >>> ds.num_classes, ds.x_dict["paper"].shape[1]
        (8, 128)
    """
    if not isinstance(name, str) or name not in HETERO_SPECS:
        raise ValueError(f"unknown heterogeneous synthetic dataset {name!r}; choose one of "
                         f"{HETERO_NAMES}")  # fmt: skip
    seed = _rmat.check_seed(seed)
    if not isinstance(cache, bool):
        raise TypeError(f"cache must be a bool, got {type(cache).__name__}")
    spec = HETERO_SPECS[name]
    if not cache:
        arrays, meta = generate_hetero_arrays(spec, seed)
        return _to_dataset(name, arrays, meta, validate=False)
    from gnnsys.datasets.synthetic import cached_arrays, default_root

    base = Path(root).expanduser() if root is not None else default_root()
    return cached_arrays(
        base / "synthetic" / f"{name}-seed{seed}-{GENERATOR_VERSION}",
        lambda: generate_hetero_arrays(spec, seed),
        {"name": name, "seed": seed, "version": GENERATOR_VERSION},
        _ARRAYS,
        lambda folder: _load_cached(name, folder),
    )


_ARRAYS = (
    "indptr",
    "indices",
    "edge_ids",
    "type_per_edge",
    "node_type_offset",
    "x_paper",
    "y",
    "year",
    "train_idx",
    "val_idx",
    "test_idx",
)


def _load_cached(name: str, folder: Path) -> HeteroDataset:
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("version") != GENERATOR_VERSION:
        raise ValueError(f"cache version {meta.get('version')!r} != {GENERATOR_VERSION!r}")
    arrays = {k: np.load(folder / f"{k}.npy", mmap_mode="c") for k in _ARRAYS}
    return _to_dataset(name, arrays, meta, validate=True)


def _to_dataset(
    name: str, arrays: Dict[str, np.ndarray], meta: Dict[str, Any], validate: bool
) -> HeteroDataset:
    t = {k: torch.from_numpy(v) for k, v in arrays.items()}
    graph = Graph(
        t["indptr"],
        t["indices"],
        edge_ids=t["edge_ids"],
        node_type_offset=t["node_type_offset"],
        type_per_edge=t["type_per_edge"],
        node_types=meta["node_types"],
        edge_types=[tuple(e) for e in meta["edge_types"]],
        validate=validate,
    )
    return HeteroDataset(
        name=name,
        graph=graph,
        x_dict={"paper": t["x_paper"]},
        y=t["y"],
        year=t["year"],
        train_idx=t["train_idx"],
        val_idx=t["val_idx"],
        test_idx=t["test_idx"],
        num_classes=int(meta["spec"]["num_classes"]),
        target="paper",
        meta=meta,
    )


# ====================================================================== generation
def generate_hetero_arrays(spec: HeteroSpec, seed: int) -> Tuple[Dict[str, np.ndarray], Dict]:
    """Run the generator: (arrays by name, meta with sizes and phase timings in seconds)."""
    from gnnsys.datasets.synthetic import _features, _normals

    t0 = time.perf_counter()
    nodes = dict(zip(MAG_NODE_TYPES, spec.num_nodes))
    c = spec.num_classes
    probs = (np.arange(1, c + 1, dtype=np.float64)) ** -float(spec.class_skew)
    cum = np.cumsum(probs / probs.sum())
    cum[-1] = 1.0
    classes = {}
    layouts = {}
    for k, t in enumerate(MAG_NODE_TYPES):
        cls = np.empty(nodes[t], dtype=np.int64)
        _categorical(_rmat.stream_key(seed, _S_CLASS + k), cum, cls)
        classes[t] = cls
        order = np.argsort(cls, kind="stable")
        ptr = np.searchsorted(cls[order], np.arange(c + 1)).astype(np.int64)
        layouts[t] = (order, ptr)
    expo = 1.0 / (float(spec.alpha) - 1.0)
    base: Dict[EdgeType, torch.Tensor] = {}
    counts: Dict[str, int] = {}
    t1 = time.perf_counter()
    for r, et in enumerate(MAG_EDGE_TYPES):
        src_t, rel, dst_t = et
        sides = []
        for side, t in enumerate((src_t, dst_t)):
            order, ptr = layouts[t]
            w = np.empty(nodes[t], dtype=np.float64)
            _pareto(_rmat.stream_key(seed, _S_WEIGHT + 2 * r + side), expo, w)
            cw = np.zeros(nodes[t] + 1, dtype=np.float64)
            np.cumsum(w[order], out=cw[1:])
            sides.append((classes[t], order, ptr, cw))
            del w
        cover_src = nodes[src_t] if rel in ("writes", "has_topic") else 0
        cover_dst = nodes[dst_t] if rel in ("writes", "affiliated_with") else 0
        keys = _relation_keys(
            spec.num_edges[r], nodes[dst_t], cover_src, cover_dst, sides,
            float(spec.intra[r]), _rmat.stream_key(seed, _S_EDGES + r), src_t == dst_t, et,
        )  # fmt: skip
        n_dst = np.int64(nodes[dst_t])
        base[et] = torch.from_numpy(np.stack([keys // n_dst, keys % n_dst]))
        counts[rel] = int(keys.size)
        del keys, sides
    t2 = time.perf_counter()
    edge_index_dict = add_reverse_edges(base, nodes)
    del base
    graph = Graph.from_hetero(edge_index_dict, nodes)
    num_edges_dict = {
        "__".join(et): int(ei.shape[1]) for et, ei in edge_index_dict.items()
    }  # fmt: skip
    del edge_index_dict
    t3 = time.perf_counter()
    y = classes["paper"]
    centroids = np.empty(c * spec.feat_dim, dtype=np.float64)
    _normals(_rmat.stream_key(seed, _S_CENTROID), centroids)
    centroids = centroids.reshape(c, spec.feat_dim).astype(np.float32)
    x = np.empty((nodes["paper"], spec.feat_dim), dtype=np.float32)
    _features(y, centroids, np.float32(spec.noise), _rmat.stream_key(seed, _S_NOISE), x)
    year_cum = np.cumsum(YEAR_PROBS / YEAR_PROBS.sum())
    year_cum[-1] = 1.0
    year = np.empty(nodes["paper"], dtype=np.int64)
    _categorical(_rmat.stream_key(seed, _S_YEAR), year_cum, year)
    year += int(YEARS[0])
    ids = np.arange(nodes["paper"], dtype=np.int64)
    train, val, test = ids[year < VAL_YEAR], ids[year == VAL_YEAR], ids[year > VAL_YEAR]
    t4 = time.perf_counter()
    arrays = {
        "indptr": graph.indptr.numpy(),
        "indices": graph.indices.numpy(),
        "edge_ids": graph.edge_ids.numpy(),
        "type_per_edge": graph.type_per_edge.numpy(),
        "node_type_offset": graph.node_type_offset.numpy(),
        "x_paper": x,
        "y": y,
        "year": year,
        "train_idx": train,
        "val_idx": val,
        "test_idx": test,
    }
    meta = {
        "node_types": list(graph.node_types),
        "edge_types": [list(e) for e in graph.edge_types],
        "num_nodes": int(graph.num_nodes),
        "num_edges": int(graph.num_edges),
        "num_edges_dict": num_edges_dict,
        "split": f"time: train year < {VAL_YEAR}, val {VAL_YEAR}, test > {VAL_YEAR}",
        "spec": asdict(spec),
        "seconds": {
            "classes": round(t1 - t0, 3),
            "relations": round(t2 - t1, 3),
            "csc": round(t3 - t2, 3),
            "features": round(t4 - t3, 3),
        },
    }
    return arrays, meta


def _relation_keys(
    target: int,
    n_dst: int,
    cover_src: int,
    cover_dst: int,
    sides: list,
    intra: float,
    key: np.uint64,
    same_type: bool,
    et: EdgeType,
) -> np.ndarray:
    """Exactly ``target`` distinct edges, as sorted keys ``src * n_dst + dst``.

    Candidates are drawn in counter order, in rounds until enough distinct ones exist (citation
    self loops dropped); the first ``target`` distinct candidates by counter are kept.
    """
    (s_cls, s_order, s_ptr, s_cw), (d_cls, d_order, d_ptr, d_cw) = sides
    threshold = np.uint64(min(int(round(intra * 2**32)), 2**32))
    parts: List[np.ndarray] = []
    start = 0
    need = int(math.ceil(target * 1.1)) + 64
    need = max(need, cover_src + cover_dst)
    for _ in range(_MAX_ROUNDS):
        out = np.empty(need, dtype=np.int64)
        _edge_kernel(
            start, cover_src, cover_dst, np.int64(n_dst), s_cls, s_order, s_ptr, s_cw,
            d_cls, d_order, d_ptr, d_cw, threshold, key, out,
        )  # fmt: skip
        start += need
        if same_type:
            out = out[out // n_dst != out % n_dst]
        parts.append(out)
        cand = np.concatenate(parts) if len(parts) > 1 else parts[0]
        uniq, first = np.unique(cand, return_index=True)
        if uniq.size >= target:
            keep = np.sort(first)[:target]
            return np.sort(cand[keep])
        parts = [cand]
        need = int(math.ceil((target - uniq.size) * 1.5)) + 1024
    raise ValueError(
        f"could not draw {target} distinct {et!r} edges in {_MAX_ROUNDS} rounds: the relation is "
        "too dense for its node counts"
    )


@njit(nogil=True, parallel=True, cache=True)
def _categorical(key, cum, out):
    # out[i] = the category whose cumulative probability interval holds a uniform draw.
    last = cum.shape[0] - 1
    for i in prange(out.shape[0]):
        u = np.float64(_rmat.hash_at(key, i) >> np.uint64(11)) * 2.0**-53
        out[i] = min(np.searchsorted(cum, u, side="right"), last)


@njit(nogil=True, parallel=True, cache=True)
def _pareto(key, expo, out):
    # Power-law weights u^-expo, u uniform in [1/n, 1]: the tail is cut at its expected maximum
    # so one unlucky draw cannot take most of a relation's edges.
    n = out.shape[0]
    lo = 1.0 / max(n, 1)
    for i in prange(n):
        u = (np.float64(_rmat.hash_at(key, i) >> np.uint64(11)) + 1.0) * 2.0**-53
        out[i] = max(u, lo) ** -expo


@njit(nogil=True, cache=True)
def _pick(cw, order, lo, hi, u):
    # The node at the position j in [lo, hi) with cw[j] <= t < cw[j+1], t = cw[lo] + u * span:
    # a draw proportional to weight among order[lo:hi].
    t = cw[lo] + u * (cw[hi] - cw[lo])
    a = lo
    b = hi - 1
    while a < b:
        m = (a + b + 1) >> 1
        if cw[m] <= t:
            a = m
        else:
            b = m - 1
    return order[a]


@njit(nogil=True, cache=True)
def _pick_in_class(cw, order, ptr, c, u, intra):
    # Within class c when `intra` and the class has nodes of this type, else among all.
    if intra:
        lo = ptr[c]
        hi = ptr[c + 1]
        if hi > lo:
            return _pick(cw, order, lo, hi, u)
    return _pick(cw, order, 0, order.shape[0], u)


@njit(nogil=True, parallel=True, cache=True)
def _edge_kernel(
    start, cover_src, cover_dst, n_dst, s_cls, s_order, s_ptr, s_cw,
    d_cls, d_order, d_ptr, d_cw, threshold, key, out,
):  # fmt: skip
    # Candidate `start + j`: the first `cover_src` candidates give source i an edge, the next
    # `cover_dst` give destination i one; the other endpoint (or both, afterwards) is drawn by
    # weight, from the fixed endpoint's class with probability intra.
    low32 = np.uint64(0xFFFFFFFF)
    for j in prange(out.shape[0]):
        i = start + j
        h1 = _rmat.hash_at(key, 2 * i)
        h2 = _rmat.hash_at(key, 2 * i + 1)
        intra = (h1 >> np.uint64(32)) < threshold
        u1 = (np.float64(h1 & low32) + 0.5) * 2.0**-32
        u2 = np.float64(h2 >> np.uint64(11)) * 2.0**-53
        if i < cover_src:
            s = i
            d = _pick_in_class(d_cw, d_order, d_ptr, s_cls[s], u2, intra)
        elif i < cover_src + cover_dst:
            d = i - cover_src
            s = _pick_in_class(s_cw, s_order, s_ptr, d_cls[d], u2, intra)
        else:
            s = _pick(s_cw, s_order, 0, s_order.shape[0], u1)
            d = _pick_in_class(d_cw, d_order, d_ptr, s_cls[s], u2, intra)
        out[j] = np.int64(s) * n_dst + np.int64(d)
