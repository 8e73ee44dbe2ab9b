"""PyG drop-ins for the whole-subgraph samplers: ``ClusterData`` / ``ClusterLoader``,
``GraphSAINTNodeSampler`` / ``GraphSAINTEdgeSampler`` / ``GraphSAINTRandomWalkSampler`` and
``ShaDowKHopSampler``, with PyG 2.8's signatures and batches, on the gnnsys ``Loader`` and the
samplers of ``loaders.subgraph`` (METIS through pymetis, no pyg-lib or torch-sparse needed).
Imported by ``loaders.pyg``, which exports them.

Homogeneous ``Data`` only (as PyG's own): ``HeteroData`` and ``(FeatureStore, GraphStore)``
raise NotImplementedError. A ``Data`` holding its edges as ``adj_t`` (torch-sparse, as
``T.ToSparseTensor`` leaves it) gives batches with ``adj_t`` (the batch's entries, their
values sliced) instead of ``edge_index``, as PyG's ``ShaDowKHopSampler`` does; PyG's
``ClusterData`` and GraphSAINT samplers refuse such data, ours follow the same rule.
Randomness is counter-based from ``seed`` (default: drawn from torch's RNG, so
``torch.manual_seed`` makes runs repeatable), never from torch's global state.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Tuple

import numpy as np
import torch

from gnnsys._coo import csc_indptr
from gnnsys.loaders.loader import Batch, Loader
from gnnsys.loaders.neighbor import check_fanout
from gnnsys.loaders.pyg import (
    _adj_t_edge_index,
    _batch_adj_t,
    _input_nodes,
    _loader_options,
    _LoaderFront,
    _PygDataView,
)
from gnnsys.loaders.subgraph import (
    ClusterSampler,
    SaintSampler,
    ShaDowSampler,
    check_positive_int,
    saint_norm,
)

SPARSE_FORMATS = ("csr", "csc")


def _homogeneous_view(data: Any, who: str) -> _PygDataView:
    """``data`` (a PyG ``Data``) as a view; anything typed is not implemented."""
    from torch_geometric.data import Data

    if isinstance(data, (tuple, list)) or not isinstance(data, Data):
        raise NotImplementedError(
            f"{who}: only a homogeneous torch_geometric Data is supported, got "
            f"{type(data).__name__} (HeteroData and (FeatureStore, GraphStore) are not)"
        )
    # Attributes are sliced along their first dimension only (an [2, E] *_index rides along
    # whole), as PyG's GraphSAINT and ShaDow samplers do (by size(0)); PyG's ClusterData
    # slices along __cat_dim__, as NeighborLoader, which is not matched here yet
    return _PygDataView(data, None, who, along_cat_dim=False)


def _log(on: bool, text: str) -> None:
    if on:
        print(text, file=sys.stderr)


def _set_structure(
    out: Any,
    view: _PygDataView,
    ei: torch.Tensor,
    e_id: Optional[torch.Tensor],
    size: Tuple[int, int],
) -> None:
    """Put a batch's edges ``ei`` (local ids; ``e_id`` the data's edge ids) on ``out`` as the
    data holds its own: ``edge_index``, or for a ``Data`` with ``adj_t`` (torch-sparse) an
    ``adj_t`` of ``size`` (targets x sources) with the entries' values, as PyG's ShaDow
    sampler and neighbour loaders give."""
    if view.adj_t is None:
        out.edge_index = ei
    else:
        out.adj_t = _batch_adj_t(view.adj_t, ei, e_id, size)


def _subgraph_data(
    view: _PygDataView,
    batch: Batch,
    num_nodes: bool,
    make: Optional[Callable[[], Any]] = None,
) -> Any:
    """A PyG ``Data`` of a whole subgraph: the node attributes of its nodes, ``edge_index``
    (or ``adj_t``: ``_set_structure``) in local ids, the edge attributes of its edges, every
    other attribute as it is; ``num_nodes`` set when asked
    (``data`` had it, or SAINT). ``make``: what builds the empty batch (default: the
    source's class, ``view.data_cls``)."""
    sub = batch.subgraph
    out = (make or view.data_cls)()
    for key, value in view.other.items():
        out[key] = value
    for key, name in view.node_keys[0]:
        out[name] = batch.node_data[key]
    n = int(sub.nodes.numel())
    _set_structure(out, view, sub.edge_index(), sub.edge_ids, (n, n))
    for key, name in view.edge_keys[0]:
        out[name] = batch.edge_data[key]
    if num_nodes or not view.node_keys[0]:
        out.num_nodes = int(sub.nodes.numel())
    return out


# ---------------------------------------------------------------------- Cluster-GCN
@dataclass
class ClusterPartition:
    """The partition as PyG's ``ClusterData.partition`` exposes it: part p holds the nodes
    ``node_perm[partptr[p]:partptr[p+1]]`` (ascending ids); ``part`` the part of each node.
    ``indptr`` / ``index`` are the graph in the part-major node order, compressed by source
    (``"csr"``: row pointers and column ids) or by destination (``"csc"``), each row's entries
    in ascending order; ``edge_perm[j]`` is the original position of the edge at entry j (PyG's
    ``Partition``; computed on first access)."""

    partptr: torch.Tensor
    node_perm: torch.Tensor
    part: torch.Tensor
    sparse_format: str
    edge_index: Optional[torch.Tensor] = field(default=None, repr=False)
    _compressed: Optional[Tuple[torch.Tensor, ...]] = field(default=None, init=False, repr=False)

    def rank(self) -> torch.Tensor:
        """int64 [N]: each node's position in the part-major order (the inverse of node_perm)."""
        rank = torch.empty_like(self.node_perm)
        rank[self.node_perm] = torch.arange(self.node_perm.numel())
        return rank

    def _compress(self) -> Tuple[torch.Tensor, ...]:
        if self._compressed is None:
            if self.edge_index is None:
                raise ValueError("this partition was made without the graph's edge_index")
            n = self.node_perm.numel()
            rank = self.rank()
            row, col = rank[self.edge_index[0]], rank[self.edge_index[1]]
            major, minor = (row, col) if self.sparse_format == "csr" else (col, row)
            order = torch.sort(major * n + minor, stable=True).indices
            self._compressed = (csc_indptr(major, n), minor[order], order)
        return self._compressed

    @property
    def indptr(self) -> torch.Tensor:
        return self._compress()[0]

    @property
    def index(self) -> torch.Tensor:
        return self._compress()[1]

    @property
    def edge_perm(self) -> torch.Tensor:
        return self._compress()[2]


def _edge_index(data: Any, view: _PygDataView) -> torch.Tensor:
    """``data``'s edges in its own order, on the CPU (an ``adj_t``'s in storage order)."""
    if view.adj_t is not None:
        return _adj_t_edge_index(view.adj_t)
    return data.edge_index.cpu()


_CACHE_NAME = "gnnsys_metis.pt"  # (PyG's ClusterData writes metis.pt, in another format)


def _load_parts(path: str, num_nodes: int, who: str) -> torch.Tensor:
    """The part of each node from a ``ClusterData`` cache file of ours, or a clear error."""
    try:
        saved = torch.load(path, weights_only=True)
        part = saved["part"]
    except Exception as err:  # PyG's file (a pickled object), or a damaged one
        raise ValueError(
            f"{who}: {path} is not a gnnsys ClusterData cache ({type(err).__name__}; PyG's "
            "ClusterData writes another format): delete it or give another save_dir / filename"
        ) from None
    if not isinstance(part, torch.Tensor) or part.dim() != 1 or part.numel() != num_nodes:
        raise ValueError(
            f"{who}: {path} holds parts for another graph (the data has {num_nodes} nodes): "
            "delete it or give another save_dir / filename"
        )
    return part


class ClusterData(torch.utils.data.Dataset):
    """PyG's ``ClusterData``: partition ``data``'s nodes into ``num_parts`` parts with METIS
    (``pymetis``, on the symmetrised graph; no pyg-lib or torch-sparse needed).

    ``len()`` is ``num_parts``; ``cluster_data[i]`` is part i as a ``Data`` (node attributes
    of its nodes, ``edge_index`` between them in local ids; with
    ``keep_inter_cluster_edges=True`` every edge leaving the part (``"csr"``; entering it for
    ``"csc"``), whose far end keeps its id in the part-major order, as PyG).
    ``partition`` holds ``partptr`` / ``node_perm``; ``data`` is ``data`` permuted part-major
    (PyG's, built on first access). ``save_dir`` caches the parts in
    ``save_dir/part_{num_parts}[_recursive]/{filename or 'gnnsys_metis.pt'}`` (PyG's folders;
    gnnsys's own file format, under its own default name, so a PyG cache in the same folder,
    ``metis.pt`` as PyG's examples keep in ``dataset.processed_dir``, and ours never overwrite
    or misread each other); a ``filename`` naming a file that is not ours is a clear error.
    ``recursive=True``: METIS recursive bisection instead of k-way, as PyG's. gnnsys extra:
    ``seed`` (METIS's seed; the same seed, the same parts).

    Example:
        >>> cluster_data = ClusterData(data, num_parts=100)
        >>> loader = ClusterLoader(cluster_data, batch_size=10, shuffle=True)
    """

    def __init__(
        self,
        data: Any,
        num_parts: int,
        recursive: bool = False,
        save_dir: Optional[str] = None,
        filename: Optional[str] = None,
        log: bool = True,
        keep_inter_cluster_edges: bool = False,
        sparse_format: str = "csr",
        *,
        seed: int = 0,
    ) -> None:
        who = "ClusterData"
        if sparse_format not in SPARSE_FORMATS:
            raise ValueError(f"{who}: sparse_format must be 'csr' or 'csc', got {sparse_format!r}")
        self.view = view = _homogeneous_view(data, who)
        check_positive_int("num_parts", num_parts)
        self.num_parts = int(num_parts)
        self.recursive = bool(recursive)
        self.keep_inter_cluster_edges = bool(keep_inter_cluster_edges)
        self.sparse_format = sparse_format
        self._source = data
        path = None
        if save_dir is not None:
            folder = f"part_{self.num_parts}{'_recursive' if self.recursive else ''}"  # (PyG's)
            path = os.path.join(save_dir, folder, filename or _CACHE_NAME)
        part = None
        if path is not None and os.path.exists(path):
            part = _load_parts(path, view.num_nodes, who)
        elif self.num_parts <= view.num_nodes:
            _log(log, "Computing METIS partitioning...")
        self.sampler = ClusterSampler(view.graph, self.num_parts, part=part, seed=seed,
                                      recursive=self.recursive,
                                      edge_order=sparse_format)  # fmt: skip
        if part is None:
            _log(log, "Done!")
            if path is not None:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                tmp = f"{path}.tmp{os.getpid()}"  # written whole, then renamed: never half a file
                torch.save({"part": self.sampler.part}, tmp)
                os.replace(tmp, path)
        s = self.sampler
        self.partition = ClusterPartition(
            torch.from_numpy(s.part_ptr), torch.from_numpy(s.part_nodes), s.part, sparse_format,
            edge_index=_edge_index(data, view),
        )  # fmt: skip
        self._permuted: Any = None
        self._engine = Loader(s, self.num_parts, features=view.node_store,
                              feature_names=view.node_table_keys, edge_features=view.edge_store,
                              prefetch=0)  # fmt: skip

    @property
    def data(self) -> Any:
        """``data`` with its node attributes permuted part-major, its edge attributes in the
        partition's edge order (``edge_perm``) and no ``edge_index`` (PyG's
        ``ClusterData.data``)."""
        if self._permuted is None:
            src, view = self._source, self.view
            out = view.data_cls()  # (a Batch source: its own class, as PyG's copy.copy)
            edge_names = {name for _, name in view.edge_keys[0]}
            for key, value in src.items():
                if key in ("edge_index", "adj_t"):  # the structure: the partition holds it
                    continue
                if key in view.node_tables:
                    value = value[self.partition.node_perm]
                elif key in edge_names:
                    value = value[self.partition.edge_perm]
                out[key] = value
            out.edge_index = None
            self._permuted = out
        return self._permuted

    def __len__(self) -> int:
        return self.num_parts

    def __getitem__(self, idx: int) -> Any:
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            raise TypeError(f"ClusterData index must be an int, got {idx!r}")
        if not -self.num_parts <= idx < self.num_parts:
            raise IndexError(f"part {idx} is out of range for {self.num_parts} parts")
        idx = int(idx) % self.num_parts
        batch = self._engine.make_batch(-1, 0, torch.tensor([idx]), torch.tensor([idx]))
        if self.keep_inter_cluster_edges:
            return self._with_inter_edges(batch, idx)
        return self.build(batch)

    def build(self, batch: Batch) -> Any:
        """The ``Data`` of a Loader batch of parts (what ``ClusterLoader`` yields)."""
        return _subgraph_data(self.view, batch, "num_nodes" in self._source)

    def _with_inter_edges(self, batch: Batch, idx: int) -> Any:
        """Part ``idx`` with every edge leaving it (csr; entering it for csc), the far end in
        part-major ids (PyG's ``keep_inter_cluster_edges``)."""
        out = _subgraph_data(self.view, batch, "num_nodes" in self._source)
        ei = self.partition.edge_index
        perm = self.partition.node_perm
        rank = self.partition.rank()
        start = int(self.partition.partptr[idx])
        near = 0 if self.sparse_format == "csr" else 1
        keep = torch.nonzero(self.partition.part[ei[near]] == idx).flatten()
        local = rank[ei[:, keep]]
        local[near] -= start
        key = local[near] * perm.numel() + local[1 - near]
        order = torch.sort(key, stable=True).indices
        n_part = int(self.partition.partptr[idx + 1]) - start
        # (the near end counts the part's nodes, the far end every node: adj_t is [dst x src])
        size = (perm.numel(), n_part) if near == 0 else (n_part, perm.numel())
        _set_structure(out, self.view, local[:, order], keep[order], size)
        for _, name in self.view.edge_keys[0]:
            out[name] = self._source[name][keep[order]]
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.num_parts})"


class ClusterLoader(_LoaderFront):
    """PyG's ``ClusterLoader``: each batch is the subgraph induced by ``batch_size`` parts of
    a ``ClusterData`` (their nodes part after part, the edges between all of them), a ``Data``
    with the node attributes sliced, local ``edge_index`` (sorted as ``sparse_format``) and
    the edge attributes sliced; no ``n_id`` (as PyG; ``cluster_data.partition`` maps
    positions to node ids). torch DataLoader keywords as PyG; ``num_workers`` sets loader
    threads; gnnsys extras ``seed``, ``device``, ``num_threads``.

    Example:
        >>> loader = ClusterLoader(ClusterData(data, 50), batch_size=5, shuffle=True)
        >>> for batch in loader:
        ...     out = model(batch.x, batch.edge_index)
    """

    def __init__(self, cluster_data: ClusterData, **kwargs: Any) -> None:
        who = "ClusterLoader"
        if not isinstance(cluster_data, ClusterData):
            raise TypeError(
                f"{who}: cluster_data must be a gnnsys ClusterData, got "
                f"{type(cluster_data).__name__}"
            )
        opts = _loader_options(dict(kwargs), who)
        self.cluster_data = cluster_data
        self.view = cluster_data.view
        self.transform = None
        view = self.view
        self.loader = Loader(cluster_data.sampler, cluster_data.num_parts,
                             features=view.node_store, feature_names=view.node_table_keys,
                             edge_features=view.edge_store, collate=cluster_data.build,
                             **opts)  # fmt: skip
        self._init_dataloader(cluster_data.num_parts, kwargs)

    def _collate(self, batch: Batch) -> Any:
        return self.cluster_data.build(batch)

    def describe(self) -> str:
        return f"{type(self).__name__}(num_parts={self.cluster_data.num_parts}, {self.loader!r})"


# ---------------------------------------------------------------------- GraphSAINT
class GraphSAINTSampler(_LoaderFront):
    """PyG's ``GraphSAINTSampler`` base: ``num_steps`` batches per epoch, each one GraphSAINT
    subgraph (a ``Data``: ``num_nodes``, local ``edge_index``, node attributes of its nodes,
    edge attributes of its edges, the rest as is) drawn by the subclass's rule with
    ``batch_size`` draws. ``sample_coverage`` > 0 pre-samples and adds ``node_norm`` and
    ``edge_norm`` as PyG 2.8 defines them (``subgraph.saint_norm``; ``save_dir`` caches them
    as PyG names the file). gnnsys extras ``seed``, ``device``, ``num_threads``.
    """

    _mode = "node"

    def __init__(
        self,
        data: Any,
        batch_size: int,
        num_steps: int = 1,
        sample_coverage: int = 0,
        save_dir: Optional[str] = None,
        log: bool = True,
        **kwargs: Any,
    ) -> None:
        who = type(self).__name__
        kwargs.pop("dataset", None)
        kwargs.pop("collate_fn", None)
        self.view = view = _homogeneous_view(data, who)
        for name in ("node_norm", "edge_norm"):
            if name in data:
                raise ValueError(f"{who}: data already has {name!r}, which the sampler sets")
        on_gpu = view.adj_t.is_cuda() if view.adj_t is not None else data.edge_index.is_cuda
        if on_gpu:
            raise ValueError(
                f"{who}: data.{'adj_t' if view.adj_t is not None else 'edge_index'} must be on "
                "the CPU (as PyG requires)"
            )
        self._batch_size = check_positive_int("batch_size", batch_size)
        self.num_steps = check_positive_int("num_steps", num_steps)
        self.sample_coverage = check_positive_int("sample_coverage", sample_coverage, 0)
        self.save_dir, self.log = save_dir, log
        self.data = data
        self.N, self.E = view.num_nodes, int(data.num_edges)
        self.transform = None
        self.saint = self._make_sampler(view)
        opts = _loader_options({**kwargs, "batch_size": 1}, who)
        self.node_norm = self.edge_norm = None
        if self.sample_coverage > 0:
            self.node_norm, self.edge_norm = self._norms(opts["seed"])
        self.loader = Loader(self.saint, self.num_steps, features=view.node_store,
                             feature_names=view.node_table_keys, edge_features=view.edge_store,
                             collate=self._collate, **opts)  # fmt: skip
        self._init_dataloader(self.num_steps, {**kwargs, "batch_size": 1})

    def _make_sampler(self, view: _PygDataView) -> SaintSampler:
        return SaintSampler(view.graph, self._mode, self._batch_size)

    @property
    def _filename(self) -> str:
        return f"{type(self).__name__.lower()}_{self.sample_coverage}.pt"

    def _norms(self, seed: int) -> Any:
        path = os.path.join(self.save_dir or "", self._filename)
        if self.save_dir is not None and os.path.exists(path):
            return torch.load(path, weights_only=True)
        _log(self.log, "Compute GraphSAINT normalization")
        norms = saint_norm(self.saint, self.num_steps, self.sample_coverage, seed=seed,
                           src_of_edge=_edge_index(self.data, self.view)[0])  # fmt: skip
        if self.save_dir is not None:
            torch.save(norms, path)
        return norms

    def _collate(self, batch: Batch) -> Any:
        # PyG's GraphSAINT calls the source's class plainly: over a PyG Batch (``DataBatch``)
        # that derives one more class, ``DataDataBatch``, which is what its batches are
        out = _subgraph_data(self.view, batch, True, make=type(self.data))
        if self.node_norm is not None:
            sub = batch.subgraph
            out.node_norm = self.node_norm[sub.nodes.cpu()].to(sub.nodes.device)
            out.edge_norm = self.edge_norm[sub.edge_ids.cpu()].to(sub.nodes.device)
        return out

    def describe(self) -> str:
        return f"{type(self).__name__}({self.saint!r}, {self.loader!r})"


class GraphSAINTNodeSampler(GraphSAINTSampler):
    """PyG's GraphSAINT node sampler: ``batch_size`` nodes drawn with replacement, each the
    source of a uniformly drawn edge (probability proportional to the out-degree).

    Example:
        >>> loader = GraphSAINTNodeSampler(data, batch_size=6000, num_steps=5,
        ...                                sample_coverage=100)
    """

    _mode = "node"


class GraphSAINTEdgeSampler(GraphSAINTSampler):
    """PyG's GraphSAINT edge sampler: ``batch_size`` edges drawn with replacement with
    probability proportional to ``in_deg(src) + out_deg(dst)`` (PyG 2.8's weight), both ends
    of each joining the subgraph."""

    _mode = "edge"


class GraphSAINTRandomWalkSampler(GraphSAINTSampler):
    """PyG's GraphSAINT random-walk sampler: ``batch_size`` uniform roots, each a walk of
    ``walk_length`` steps along out-edges (a node without out-edges stays put)."""

    _mode = "walk"

    def __init__(
        self,
        data: Any,
        batch_size: int,
        walk_length: int,
        num_steps: int = 1,
        sample_coverage: int = 0,
        save_dir: Optional[str] = None,
        log: bool = True,
        **kwargs: Any,
    ) -> None:
        self.walk_length = check_positive_int("walk_length", walk_length)
        super().__init__(data, batch_size, num_steps, sample_coverage, save_dir, log, **kwargs)

    def _make_sampler(self, view: _PygDataView) -> SaintSampler:
        return SaintSampler(view.graph, "walk", self._batch_size, walk_length=self.walk_length)

    @property
    def _filename(self) -> str:
        return f"{type(self).__name__.lower()}_{self.walk_length}_{self.sample_coverage}.pt"


# ---------------------------------------------------------------------- ShaDow-KHop
class ShaDowKHopSampler(_LoaderFront):
    """PyG's ``ShaDowKHopSampler``: for each seed of a batch, its ``depth``-hop in-
    neighbourhood sampled with ``num_neighbors`` per node and hop (-1: all), then the
    subgraph it induces; a batch is these subgraphs side by side, a PyG ``Batch`` with
    ``batch`` / ``ptr`` (the subgraph of each node), ``root_n_id`` (each seed's position),
    local ``edge_index``, node attributes sliced (``y`` for the roots only), edge attributes
    sliced. Within a subgraph the root comes first, then its hops (PyG: ascending ids). No
    torch-sparse needed. ``node_idx``: the seeds (ids or a bool mask; default all nodes).

    Example:
        >>> loader = ShaDowKHopSampler(data, depth=2, num_neighbors=5,
        ...                            node_idx=data.train_mask, batch_size=64)
        >>> for b in loader:
        ...     out = model(b.x, b.edge_index, b.batch, b.root_n_id)
    """

    def __init__(
        self,
        data: Any,
        depth: int,
        num_neighbors: int,
        node_idx: Optional[torch.Tensor] = None,
        replace: bool = False,
        **kwargs: Any,
    ) -> None:
        who = "ShaDowKHopSampler"
        self.view = view = _homogeneous_view(data, who)
        self.depth = check_positive_int("depth", depth, 0)
        self.num_neighbors = check_fanout("num_neighbors", num_neighbors)
        self.replace = bool(replace)
        self.data = data
        self.is_sparse_tensor = view.adj_t is not None  # (PyG's: batches carry adj_t then)
        self.transform = None
        seeds, _ = _input_nodes(node_idx, view.num_nodes, who, "node_idx")
        self.node_idx = seeds
        self.shadow = ShaDowSampler(view.graph, [self.num_neighbors] * self.depth,
                                    replace=self.replace, disjoint=True)  # fmt: skip
        opts = _loader_options(dict(kwargs), who)
        self.loader = Loader(self.shadow, seeds, features=view.node_store,
                             feature_names=view.node_table_keys, edge_features=view.edge_store,
                             collate=self._collate, **opts)  # fmt: skip
        self._init_dataloader(int(seeds.numel()), kwargs)

    def _collate(self, batch: Batch) -> Any:
        from torch_geometric.data import Batch as PygBatch

        sub = batch.subgraph
        root = sub.metadata["root"]
        out = PygBatch(batch=sub.batch, ptr=sub.metadata["ptr"])
        out.root_n_id = root
        n = int(sub.nodes.numel())
        _set_structure(out, self.view, sub.edge_index(), sub.edge_ids, (n, n))
        skip = ("batch", "ptr", "num_nodes", "adj_t")
        for key, name in self.view.node_keys[0]:
            if name not in skip:
                value = batch.node_data[key]
                out[name] = value[root] if name == "y" else value
        for key, name in self.view.edge_keys[0]:
            out[name] = batch.edge_data[key]
        for name, value in self.view.other.items():
            if name not in skip:
                out[name] = value
        return out

    def describe(self) -> str:
        return f"{type(self).__name__}({self.shadow!r}, {self.loader!r})"


__all__ = [
    "ClusterData",
    "ClusterLoader",
    "GraphSAINTSampler",
    "GraphSAINTNodeSampler",
    "GraphSAINTEdgeSampler",
    "GraphSAINTRandomWalkSampler",
    "ShaDowKHopSampler",
]
