"""DGL drop-in: swap ``dgl.dataloading`` for ``gnnsys.loaders.dgl`` and keep the training script.

``DataLoader(graph, indices, graph_sampler, ...)`` yields ``(input_nodes, output_nodes, blocks)``
(``(input_nodes, pair_graph, neg_pair_graph, blocks)`` for edge prediction) with DGL's
signatures and conventions: fanouts list the input layer first, ``blocks[0]`` is the input
layer, each block's destination nodes are the first of its source nodes (per node type),
prefetched features land in ``blocks[0].srcdata``, labels in ``blocks[-1].dstdata``, and
``"_ID"`` columns hold the parent graph's ids (ids within their type on a heterograph). The
sampling, batching, threading, feature fetch and device copies are the one gnnsys ``Loader``
engine (numba kernels on threads, no worker processes); this module only translates.

Homogeneous graphs and heterographs take one path: a homogeneous graph is the one-type case
(DGL's ``"_N"`` and ``("_N", "_E", "_N")``). On a heterograph ``indices`` is a dict
``{node type: ids}`` (``{edge type: edge ids}`` for edge prediction), fanouts may be a dict
``{edge type: k}`` per layer (naming every edge type, as DGL requires), ``input_nodes`` /
``output_nodes`` are dicts per node type, and blocks carry several node and edge types
(``block.srcdata["feat"]`` is ``{ntype: tensor}``, ``block[etype]`` one relation).

``graph`` is a DGL graph or heterograph (when ``dgl`` imports) or a ``gnnsys.Graph`` whose
data sit in ``graph.ndata`` / ``graph.edata``: on an untyped Graph keyed by name (``edata`` in
the Graph's CSC order, as ``Graph.from_dgl`` stores it); on a typed Graph keyed
``(node_type, name)`` and ``(edge_type, name)`` (edge type as a triple or a unique relation
name; rows are ids within the type: the edge ids ``Graph.from_hetero`` assigns, i.e. positions
in each type's ``edge_index``). Blocks are real DGL blocks when ``dgl`` imports, else
``gnnsys.Block`` with the same API. The id dtype of a DGL graph is kept (``g.int()`` gives int32
ids and blocks); a ``gnnsys.Graph`` gives int64 unless ``DataLoader(..., idtype=torch.int32)``.

Example:
    >>> from gnnsys.loaders import dgl as dgl_loading        # was: dgl.dataloading
    >>> sampler = dgl_loading.NeighborSampler([5, 10, 15], prefetch_node_feats=["feat"],
    ...                                       prefetch_labels=["label"])
    >>> loader = dgl_loading.DataLoader(g, train_nids, sampler, batch_size=1024, shuffle=True)
    >>> for input_nodes, output_nodes, blocks in loader:
    ...     logits = model(blocks, blocks[0].srcdata["feat"])
    ...     loss = F.cross_entropy(logits, blocks[-1].dstdata["label"])
    >>> # a heterograph: seeds per node type, fanouts per edge type and layer
    >>> sampler = dgl_loading.NeighborSampler([{"cites": 5, "writes": 3}] * 2,
    ...                                       prefetch_node_feats={"paper": ["feat"]})
    >>> loader = dgl_loading.DataLoader(hg, {"paper": train_nids}, sampler, batch_size=512)
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import types
import warnings
from dataclasses import replace
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

import numpy as np
import torch

from gnnsys._checks import check_choice, check_cores, check_index, data_device
from gnnsys._tokens import tensors_token, token_matches
from gnnsys.block import (
    EID,
    NID,
    Block,
    EdgeType,
    ETypeLike,
    _EdgeView,
    _Frame,
    _NodeView,
    _scope,
    _select,
    _TypedData,
    edge_type_index,
    edge_view,
    node_type_index,
)
from gnnsys.features import FeatureStore
from gnnsys.graph import Graph, dgl_edge_index
from gnnsys.loaders._dgl_blocks import csc_block
from gnnsys.loaders._kernels import has_edges
from gnnsys.loaders._workers import WorkerPool, kept_for
from gnnsys.loaders.base import SampledSubgraph, SampleKey, key_int
from gnnsys.loaders.link import random_nodes, unique_seeds
from gnnsys.loaders.neighbor import LaborSampler as LaborCore
from gnnsys.loaders.neighbor import (
    check_fanout,
    check_labor_options,
    fanout_matrix,
    graph_is_pinned,
    sampler_on,
)

__all__ = [
    "DataLoader",
    "NodeDataLoader",
    "NeighborSampler",
    "MultiLayerNeighborSampler",
    "MultiLayerFullNeighborSampler",
    "LaborSampler",
    "EdgePredictionSampler",
    "as_edge_prediction_sampler",
    "negative_sampler",
    "PairGraph",
    "NID",
    "EID",
]

_BLOCK_TYPES = ("auto", "dgl", "gnnsys")
# torch.utils.data.DataLoader keywords DGL passes through; we use threads, not processes.
_TORCH_KWARGS = (
    "num_workers",
    "persistent_workers",
    "pin_memory",
    "prefetch_factor",
    "worker_init_fn",
    "timeout",
    "generator",
    "multiprocessing_context",
    "pin_memory_device",
)
# DGL's sampler classes this module reproduces, by exact class name (LaborSampler too, read by
# _from_dgl_sampler; ClusterGCNSampler, SAINTSampler and ShaDowKHopSampler map to
# loaders/dgl_subgraph.py's, EdgePredictionSampler to ours around the twin of its sampler;
# anything else from dgl samples differently and is refused).
_DGL_SAMPLERS = ("NeighborSampler", "MultiLayerNeighborSampler", "MultiLayerFullNeighborSampler")


# ====================================================================== optional dgl
_DGL_MODULE: Any = None


def _dgl() -> Any:
    """The ``dgl`` module when it imports beside this torch, else None (checked once)."""
    global _DGL_MODULE
    if _DGL_MODULE is None:
        try:
            import dgl  # optional; often fails to load against a newer torch

            _DGL_MODULE = dgl
        except Exception:  # ImportError, or OSError / RuntimeError from its C library
            _DGL_MODULE = False
    return _DGL_MODULE or None


def _is_dgl_graph(g: Any) -> bool:
    return type(g).__module__.split(".")[0] == "dgl" and hasattr(g, "ndata")


# ====================================================================== graph samplers
NamesLike = Union[None, Sequence[str], Mapping[Any, Sequence[str]]]


def _check_names(name: str, value: Any) -> Union[List[str], Dict[Any, List[str]]]:
    """A list of data names, or (per type, as DGL takes it) a dict {type: [names]}."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return {k: _check_name_list(f"{name}[{k!r}]", v) for k, v in value.items()}
    return _check_name_list(name, value)


def _check_name_list(name: str, value: Any) -> List[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of feature names, got {value!r}")
    for v in value:
        if not isinstance(v, str):
            raise TypeError(f"{name} must hold str feature names, got {v!r}")
    return list(value)


def _check_layer(i: int, f: Any) -> Union[int, Dict[Any, int]]:
    """One DGL fanout entry, checked before any graph is known: an int or a dict of ints."""
    if isinstance(f, Mapping):
        if not f:
            raise ValueError(f"fanouts[{i}] is an empty dict: give a fanout per edge type")
        return {k: check_fanout(f"fanouts[{i}][{k!r}]", v) for k, v in f.items()}
    return check_fanout(f"fanouts[{i}]", f)


class NeighborSampler:
    """DGL's ``NeighborSampler``: sample ``fanouts[l]`` in-neighbours per node for layer l.

    Args:
        fanouts: one entry per layer, **input layer first** (DGL's order); -1 takes every
            neighbour. ``[5, 10]`` samples 10 neighbours of each seed, then 5 of every node.
            An entry may be a dict ``{edge type: k}`` (relation name or triple) that must name
            every edge type of the graph, as DGL requires; an int applies to every edge type.
        edge_dir: ``"in"`` (messages flow along edges, as DGL's default). ``"out"`` is not
            implemented (NotImplementedError).
        prob: name of a non-negative edge-data column to sample proportionally to (a bool
            column acts as ``mask``); zero-probability edges are never drawn. On a heterograph
            the edge types without that column are sampled uniformly (as DGL does); at least
            one type must have it.
        mask: name of a bool edge-data column; only edges where it is True are sampled (edge
            types without the column: every edge).
        replace: sample with replacement.
        prefetch_node_feats: node-data names gathered into ``blocks[0].srcdata``: a list (on
            a heterograph, for every node type that has the column) or a dict
            ``{node type: [names]}``.
        prefetch_labels: node-data names gathered into ``blocks[-1].dstdata`` (list or dict).
        prefetch_edge_feats: edge-data names gathered into every ``block.edata`` (list or
            dict per edge type).
        output_device: where blocks go when the DataLoader's ``device`` is not given.
        fused: accepted for DGL compatibility; no effect (one kernel samples every layer).

    ``MultiLayerNeighborSampler`` is the same class (DGL's alias).

    Example:
        >>> sampler = NeighborSampler([10, 15], prefetch_node_feats=["feat"])
        >>> hetero = NeighborSampler([{"cites": 5, "writes": 2}, {"cites": 10, "writes": 4}])
    """

    labor = False  # LaborSampler: LABOR-0 instead of independent draws
    layer_dependency = False

    def __init__(
        self,
        fanouts: Sequence[Union[int, Mapping[Any, int]]],
        edge_dir: str = "in",
        prob: Optional[str] = None,
        mask: Optional[str] = None,
        replace: bool = False,
        prefetch_node_feats: NamesLike = None,
        prefetch_labels: NamesLike = None,
        prefetch_edge_feats: NamesLike = None,
        output_device: Any = None,
        fused: bool = True,
    ) -> None:
        if isinstance(fanouts, Mapping):
            raise TypeError(
                "fanouts must be a list with one entry per layer; for per-edge-type fanouts "
                "give a list of dicts, e.g. [{'cites': 5, 'writes': 3}] * 2"
            )
        if isinstance(fanouts, torch.Tensor):
            fanouts = fanouts.tolist()
        if not isinstance(fanouts, (list, tuple)):
            raise TypeError(f"fanouts must be a list of ints (one per layer), got {fanouts!r}")
        if len(fanouts) == 0:
            raise ValueError("fanouts is empty: give one fanout per layer, e.g. [15, 10, 5]")
        layers = [_check_layer(i, f) for i, f in enumerate(fanouts)]
        if edge_dir == "out":
            raise NotImplementedError(
                "edge_dir='out' is not implemented: gnnsys samples in-edges (edge_dir='in'); "
                "reverse the graph's edges instead"
            )
        check_choice("edge_dir", edge_dir, ("in", "out"))
        if prob is not None and mask is not None:
            raise ValueError("prob and mask are mutually exclusive; give one of them")
        for name, value in (("prob", prob), ("mask", mask)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be the name of an edge-data column, got {value!r}")
        if not isinstance(fused, (bool, np.bool_)):
            raise TypeError(f"fused must be a bool, got {fused!r}")
        self.fanouts = layers
        self.edge_dir = edge_dir
        self.prob = prob
        self.mask = mask
        self.replace = bool(replace)
        self.fused = bool(fused)
        self.prefetch_node_feats = _check_names("prefetch_node_feats", prefetch_node_feats)
        self.prefetch_labels = _check_names("prefetch_labels", prefetch_labels)
        self.prefetch_edge_feats = _check_names("prefetch_edge_feats", prefetch_edge_feats)
        self.output_device = output_device

    @property
    def num_layers(self) -> int:
        return len(self.fanouts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(fanouts={self.fanouts}, replace={self.replace}, "
            f"prob={self.prob!r}, mask={self.mask!r})"
        )

    def fanout_matrix(self, graph: Graph) -> np.ndarray:
        """The fanouts as an int64 [layers, edge types] matrix in hop order (nearest the seeds
        first: DGL's list reversed), checked against ``graph``'s edge types.

        Example:
            >>> NeighborSampler([2, {"cites": 5, "writes": 1}]).fanout_matrix(g).tolist()
            [[5, 1], [2, 2]]
        """
        return fanout_matrix(self.fanouts, graph, name="fanouts")[::-1].copy()

    def sample(
        self, g: Any, seed_nodes: Any, exclude_eids: Any = None, *, seed: int = 0
    ) -> Tuple[Any, Any, list]:
        """Sample one batch outside a DataLoader: ``(input_nodes, output_nodes, blocks)``.
        ``seed_nodes`` and ``exclude_eids`` are tensors, or dicts per node / edge type.

        Example:
            >>> input_nodes, output_nodes, blocks = sampler.sample(g, torch.tensor([0, 5]))
        """
        view, core = _standalone_core(_NodeCore, g, self)
        flat = _flat_node_seeds(view, seed_nodes, "seed_nodes")
        core.output_types = flat.dict_keys
        drop = None
        if exclude_eids is not None:
            drop = _exclusion_keys(view, exclude_eids, "exclude_eids")
        return _run_once(core, flat.ids, seed, lambda s, k: core.sample_excluding(s, k, drop))

    sample_blocks = sample


MultiLayerNeighborSampler = NeighborSampler


class LaborSampler(NeighborSampler):
    """DGL's ``dgl.dataloading.LaborSampler``: layer-neighbour sampling, LABOR-0 and LABOR-i
    (``gnnsys.loaders.LaborSampler`` on the typed core), same arguments.

    Each layer keeps about ``fanout`` in-edges per destination, as ``NeighborSampler``, but
    destinations share their sources' random variates, so blocks reach fewer distinct nodes.
    ``importance_sampling`` i != 0 (LABOR-i; -1: to convergence) puts DGL's
    ``block.edata["edge_weights"]`` on every block (use them in a weighted mean);
    ``batch_dependency`` k > 1 slides the variates over k consecutive batches of a DataLoader
    epoch (windows restart each epoch). ``prob`` (an edge-data column of weights >= 0; a bool
    one is a mask, as DGL) is DGL's weighted LABOR: keep probabilities min(1, c_s A_e) from
    the weights, ``edge_weights`` on every block as with importance sampling; an edge of
    weight 0 is never sampled.

    Example:
        >>> sampler = LaborSampler([10, 10], importance_sampling=1, prefetch_node_feats=["feat"])
    """

    labor = True

    def __init__(
        self,
        fanouts: Sequence[Union[int, Mapping[Any, int]]],
        edge_dir: str = "in",
        prob: Optional[str] = None,
        importance_sampling: int = 0,
        layer_dependency: bool = False,
        batch_dependency: int = 1,
        prefetch_node_feats: NamesLike = None,
        prefetch_labels: NamesLike = None,
        prefetch_edge_feats: NamesLike = None,
        output_device: Any = None,
    ) -> None:
        iters, window = check_labor_options(importance_sampling, batch_dependency)
        super().__init__(
            fanouts,
            edge_dir=edge_dir,
            prob=prob,
            prefetch_node_feats=prefetch_node_feats,
            prefetch_labels=prefetch_labels,
            prefetch_edge_feats=prefetch_edge_feats,
            output_device=output_device,
        )
        self.importance_sampling = iters
        self.batch_dependency = window
        self.layer_dependency = bool(layer_dependency)

    def __repr__(self) -> str:
        return (
            f"LaborSampler(fanouts={self.fanouts}, layer_dependency={self.layer_dependency}, "
            f"importance_sampling={self.importance_sampling}, "
            f"batch_dependency={self.batch_dependency})"
        )


class MultiLayerFullNeighborSampler(NeighborSampler):
    """Every in-neighbour on each of ``num_layers`` layers (DGL's class of the same name).

    Example:
        >>> sampler = MultiLayerFullNeighborSampler(2)
    """

    def __init__(self, num_layers: int, **kwargs: Any) -> None:
        if isinstance(num_layers, bool) or not isinstance(num_layers, (int, np.integer)):
            raise TypeError(f"num_layers must be an int, got {num_layers!r}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        super().__init__([-1] * int(num_layers), **kwargs)


class _NegativeSampler:
    """What DGL's negative samplers share: ``k`` negatives per edge, and DGL's call form."""

    def __init__(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        self.k = int(k)

    def __call__(self, g: Any, eids: Any) -> Any:
        """DGL's call form: negatives for edge ids ``eids`` of ``g`` (a tensor, or a dict
        ``{edge type: ids}`` giving a dict of pairs), drawn from torch's global RNG; node ids
        within their types."""
        view = _prepare_view(g)
        if isinstance(eids, Mapping):
            out = {}
            for key, ids in eids.items():
                e = _edge_type_of(view, key, "eids")
                ids = _check_seed_ids(f"eids[{key!r}]", ids, view.eid_bound(e), "edge")
                out[view.edge_types[e]] = self._for_edges(view, e, ids)
            return out
        e = _only_edge_type(view, "eids")
        return self._for_edges(view, e, _check_seed_ids("eids", eids, view.eid_bound(e), "edge"))

    def _for_edges(
        self, view: _DglGraphView, e: int, eids: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def in_batch(
        self, view: _DglGraphView, e: int, src: torch.Tensor, stream: Tuple[int, int]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Negatives of edge type ``e`` inside a DataLoader batch whose seed edges of that type
        have sources ``src`` (global ids), from the counter-based ``stream``; global ids."""
        raise NotImplementedError


class Uniform(_NegativeSampler):
    """Negative sampler: ``k`` corrupted pairs ``(u, v')`` per edge ``(u, v)``, ``v'`` uniform
    over the nodes of the edge's destination type (DGL's ``negative_sampler.Uniform`` /
    ``PerSourceUniform``). The negatives of an edge type are edges of that type.

    Example:
        >>> neg = negative_sampler.Uniform(5)
    """

    def _for_edges(
        self, view: _DglGraphView, e: int, eids: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        u, _ = view.find_edges(view.pos_of_eid(e, eids))
        et = view.edge_types[e]
        t_src, t_dst = view.node_type_id(et[0]), view.node_type_id(et[2])
        return self.generate(u - view.offset(t_src), view.num_nodes_of(t_dst), None)

    def in_batch(
        self, view: _DglGraphView, e: int, src: torch.Tensor, stream: Tuple[int, int]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        t_dst = view.node_type_id(view.edge_types[e][2])
        nu, nv = self.generate(src, view.num_nodes_of(t_dst), stream)
        return nu, nv + view.offset(t_dst) if view.offset(t_dst) else nv

    def generate(
        self, src: torch.Tensor, num_nodes: int, stream: Optional[Tuple[int, int]] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(src repeated k times, uniform destinations below ``num_nodes``): from the
        counter-based stream ``(key, salt)`` inside a DataLoader (the negative sampler the PyG
        front uses), from torch's global RNG when called as DGL's ``neg(g, eids)``."""
        neg_src = src.repeat_interleave(self.k)
        if stream is None:
            neg_dst = torch.randint(0, max(num_nodes, 1), (neg_src.numel(),))
        else:
            neg_dst = random_nodes(stream[0], stream[1], neg_src.numel(), num_nodes)
        return neg_src, neg_dst


class GlobalUniform(_NegativeSampler):
    """Negative sampler: ``k`` node pairs per seed edge drawn uniformly over the whole graph
    (source and destination node types of the edge's type), keeping only pairs that are not
    edges of that type, nor self loops when ``exclude_self_loops`` (on a relation between
    nodes of one type), nor (``replace=False``) repeated: DGL's ``negative_sampler.GlobalUniform``.
    As DGL's, it may return fewer pairs than asked: ``redundancy`` (default 1.0) more
    candidates than needed are drawn, and a very dense graph can reject more than that.

    Example:
        >>> neg = negative_sampler.GlobalUniform(5)
    """

    def __init__(
        self,
        k: int,
        exclude_self_loops: bool = True,
        replace: bool = False,
        redundancy: Optional[float] = None,
    ) -> None:
        super().__init__(k)
        r = 1.0 if redundancy is None else redundancy
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not r >= 0:
            raise ValueError(f"redundancy must be a number >= 0, got {redundancy!r}")
        self.exclude_self_loops = bool(exclude_self_loops)
        self.replace = bool(replace)
        self.redundancy = float(r)

    def _for_edges(
        self, view: _DglGraphView, e: int, eids: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.draw(view, e, eids.numel(), None)

    def in_batch(
        self, view: _DglGraphView, e: int, src: torch.Tensor, stream: Tuple[int, int]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        et = view.edge_types[e]
        o_src, o_dst = view.offset(view.node_type_id(et[0])), view.offset(view.node_type_id(et[2]))
        nu, nv = self.draw(view, e, src.numel(), stream)
        return nu + o_src if o_src else nu, nv + o_dst if o_dst else nv

    def draw(
        self, view: _DglGraphView, e: int, num_edges: int, stream: Optional[Tuple[int, int]]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Up to ``k * num_edges`` negative (source, destination) pairs of edge type ``e``, as
        ids within their node types: from the counter-based stream ``(key, salt)`` inside a
        DataLoader, from torch's global RNG when called as DGL's ``neg(g, eids)``."""
        if isinstance(view, _DistDglView):
            raise NotImplementedError("GlobalUniform over a partition (DistGraph): use Uniform")
        et = view.edge_types[e]
        t_src, t_dst = view.node_type_id(et[0]), view.node_type_id(et[2])
        n_src, n_dst = view.num_nodes_of(t_src), view.num_nodes_of(t_dst)
        want = self.k * num_edges
        empty = torch.zeros(0, dtype=torch.int64)
        if want == 0 or n_src == 0 or n_dst == 0:
            return empty, empty
        draws = int(math.ceil(want * (1.0 + self.redundancy)))
        if stream is None:
            s = torch.randint(0, n_src, (draws,))
            d = torch.randint(0, n_dst, (draws,))
        else:
            s = random_nodes(stream[0], stream[1], draws, n_src)
            d = random_nodes(stream[0], stream[1] + _SALT_GLOBAL_DST, draws, n_dst)
        keep = torch.ones(draws, dtype=torch.bool)
        if self.exclude_self_loops and t_src == t_dst:
            keep &= s != d
        g = view.graph
        tpe = g.type_per_edge
        found = has_edges(
            g.indptr.numpy(),
            g.indices.numpy(),
            tpe.numpy() if tpe is not None else np.zeros(0, np.int64),
            (s + view.offset(t_src)).numpy(),
            (d + view.offset(t_dst)).numpy(),
            e,
        )
        keep &= ~torch.from_numpy(found)
        s, d = s[keep], d[keep]
        if not self.replace and s.numel():  # the first draw of each pair, in draw order
            pair = s * n_dst + d
            uniq, inverse = torch.unique(pair, return_inverse=True)
            first = torch.full((uniq.numel(),), pair.numel(), dtype=torch.int64)
            first.scatter_reduce_(0, inverse, torch.arange(pair.numel()), "amin")
            order = torch.sort(first).values
            s, d = s[order], d[order]
        return s[:want], d[:want]


negative_sampler = types.SimpleNamespace(
    Uniform=Uniform, PerSourceUniform=Uniform, GlobalUniform=GlobalUniform
)
negative_sampler.__doc__ = "Negative samplers for link prediction (DGL's module of that name)."

_EXCLUDE = (None, "self", "reverse_id", "reverse_types")
_SALT_NEG = 0xD61  # negatives of edge type e use the stream (batch key, _SALT_NEG + e)
_SALT_GLOBAL_DST = 0x10000  # GlobalUniform's destinations: salt _SALT_NEG + e + this


class EdgePredictionSampler:
    """Edge-wise wrapper of a node sampler (build it with ``as_edge_prediction_sampler``)."""

    def __init__(
        self,
        sampler: NeighborSampler,
        exclude: Union[None, str, Callable] = None,
        reverse_eids: Any = None,
        reverse_etypes: Optional[Mapping[Any, Any]] = None,
        negative_sampler: Any = None,
        prefetch_labels: NamesLike = None,
    ) -> None:
        if not isinstance(sampler, NeighborSampler) and not hasattr(sampler, "make_core"):
            sampler = _from_dgl_sampler(sampler, "sampler")
        if getattr(sampler, "edge_prediction", True) is False:  # loaders/dgl_subgraph.py
            raise TypeError(
                f"as_edge_prediction_sampler takes a neighbour sampler or ShaDowKHopSampler, "
                f"not {type(sampler).__name__} (its batches are not built around seed nodes)"
            )
        if not callable(exclude) and exclude not in _EXCLUDE:
            raise ValueError(
                "exclude must be None, 'self', 'reverse_id', 'reverse_types' or a callable, "
                f"got {exclude!r}"
            )
        if exclude == "reverse_id" and reverse_eids is None:
            raise ValueError("exclude='reverse_id' needs reverse_eids (edge id -> reverse id)")
        if exclude == "reverse_types" and reverse_etypes is None:
            raise ValueError(
                "exclude='reverse_types' needs reverse_etypes ({edge type: its reverse type})"
            )
        if reverse_etypes is not None and not isinstance(reverse_etypes, Mapping):
            raise TypeError(
                f"reverse_etypes must be a dict {{edge type: reverse edge type}}, got "
                f"{type(reverse_etypes).__name__}"
            )
        if negative_sampler is not None and not callable(negative_sampler):
            raise TypeError(f"negative_sampler must be callable, got {negative_sampler!r}")
        self.sampler = sampler
        self.exclude = exclude
        if isinstance(reverse_eids, Mapping):
            self.reverse_eids: Any = {
                k: check_index(f"reverse_eids[{k!r}]", v, None, device=None).cpu()
                for k, v in reverse_eids.items()
            }
        elif reverse_eids is not None:
            self.reverse_eids = check_index("reverse_eids", reverse_eids, None, device=None).cpu()
        else:
            self.reverse_eids = None
        self.reverse_etypes = dict(reverse_etypes) if reverse_etypes is not None else None
        self.negative_sampler = negative_sampler
        self.prefetch_labels = _check_names("prefetch_labels", prefetch_labels)
        self.output_device = sampler.output_device

    def sample(self, g: Any, seed_edges: Any, *, seed: int = 0) -> tuple:
        """Sample one batch outside a DataLoader, as DGL's ``EdgePredictionSampler.sample``:
        ``(input_nodes, pair_graph, neg_pair_graph, blocks)`` with a negative sampler, else
        ``(input_nodes, pair_graph, blocks)``. ``seed_edges`` are edge ids (a tensor, or a
        dict per edge type); ``seed`` keys the draws (the same batch for the same seed).

        Example:
            >>> input_nodes, pair_graph, blocks = sampler.sample(g, torch.tensor([0, 7]))
        """
        view, core = _standalone_core(_EdgeCore, g, self)
        flat = _flat_edge_seeds(view, seed_edges, "seed_edges")
        return _run_once(core, flat.ids, seed, core.sample, "seed_edges")

    def __repr__(self) -> str:
        return (
            f"EdgePredictionSampler({self.sampler!r}, exclude={self.exclude!r}, "
            f"negative_sampler={self.negative_sampler!r})"
        )


def as_edge_prediction_sampler(
    sampler: NeighborSampler,
    exclude: Union[None, str, Callable] = None,
    reverse_eids: Any = None,
    reverse_etypes: Optional[Mapping[Any, Any]] = None,
    negative_sampler: Any = None,
    prefetch_labels: NamesLike = None,
) -> EdgePredictionSampler:
    """Turn a node sampler into an edge sampler for link prediction (DGL's function).

    Each batch of edge ids yields ``(input_nodes, pair_graph, neg_pair_graph, blocks)``
    (without ``negative_sampler``: ``(input_nodes, pair_graph, blocks)``); the pair graphs
    share one compacted node set per node type whose ids are ``pair_graph.ndata["_ID"]``,
    which are the seeds of the blocks. On a heterograph the DataLoader's ``indices`` is a dict
    ``{edge type: edge ids}`` and the pair graphs carry every node and edge type. ``exclude``:
    None, ``"self"`` (drop the batch's edges from the sampled neighbourhoods),
    ``"reverse_id"`` (also their reverses ``reverse_eids[e]``; a dict per edge type on a
    heterograph), ``"reverse_types"`` (also the edges with the same ids in the reverse type,
    ``reverse_etypes = {etype: reverse etype}``) or a callable ``eids -> eids to drop`` (dicts
    per edge type on a heterograph). Excluded edges are removed after sampling, so with a
    finite fanout a node touching one may keep fewer than ``fanout`` neighbours (DGL draws
    among the others); with fanout -1 the result is DGL's.

    Example:
        >>> sampler = as_edge_prediction_sampler(NeighborSampler([10, 10]), exclude="self",
        ...                                      negative_sampler=negative_sampler.Uniform(5))
        >>> hetero = as_edge_prediction_sampler(
        ...     NeighborSampler([5, 5]), exclude="reverse_types",
        ...     reverse_etypes={"clicks": "clicked-by", "clicked-by": "clicks"})
    """
    return EdgePredictionSampler(
        sampler,
        exclude=exclude,
        reverse_eids=reverse_eids,
        reverse_etypes=reverse_etypes,
        negative_sampler=negative_sampler,
        prefetch_labels=prefetch_labels,
    )


# ====================================================================== the prepared graph
class _TypeColumns(Mapping):
    """One type's columns of a typed gnnsys Graph's ``ndata`` / ``edata``: the entries keyed
    ``(type, name)`` whose type resolves to ``index`` (plain-name keys too when the graph has
    one type of that kind). A live view: columns added to the dict later show up."""

    def __init__(
        self, data: Dict[Any, Any], index: int, resolve: Callable[[Any], int], single: bool
    ):
        self._data = data
        self._index = index
        self._resolve = resolve
        self._single = single

    def _key_of(self, name: str) -> Any:
        for k in self._data:
            if isinstance(k, tuple) and len(k) == 2 and k[1] == name:
                with contextlib.suppress(ValueError):
                    if self._resolve(k[0]) == self._index:
                        return k
        if self._single and name in self._data:
            return name
        return None

    def __getitem__(self, name: str) -> Any:
        k = self._key_of(name)
        if k is None:
            raise KeyError(name)
        return self._data[k]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key_of(name) is not None

    def __iter__(self) -> Iterator[str]:
        seen: Dict[str, None] = {}
        for k in self._data:
            if isinstance(k, tuple) and len(k) == 2:
                with contextlib.suppress(ValueError):
                    if self._resolve(k[0]) == self._index:
                        seen[k[1]] = None
            elif self._single and isinstance(k, str):
                seen[k] = None
        return iter(list(seen))

    def __len__(self) -> int:
        return len(list(iter(self)))


class _DglGraphView:
    """The user's graph (a DGL graph or heterograph, or a gnnsys ``Graph``) as the samplers
    need it: one (typed) CSC plus the node data of each node type and the edge data of each
    edge type.

    Edge ids are per edge type (a DGL graph's eids; a typed Graph's ``edge_ids``; an untyped
    Graph's ``edge_ids``). Edge data rows are those ids, except on an untyped gnnsys Graph,
    whose ``edata`` is in CSC order (``edata_by_eid`` False). Node ids handed to the user are
    ids within their type; the sampler works in the Graph's global ids (type offset + id).
    """

    lazy_columns = True  # blocks read the parent's columns on demand (DGL's lazy features)

    def __init__(self, user_graph: Any, graph: Graph, by_eid: bool, idtype: torch.dtype) -> None:
        self.user_graph = user_graph
        self.graph = graph
        self.dgl_graph = user_graph if _is_dgl_graph(user_graph) else None
        self.edata_by_eid = by_eid
        self.idtype = idtype
        self.typed = graph.is_hetero
        self.node_types = graph.node_types
        self.edge_types = graph.edge_types
        self.offsets = graph.type_offsets()
        self.num_nodes = graph.num_nodes
        self.num_edges = graph.num_edges
        self._cache: Dict[Any, Any] = {}
        self._lock = threading.Lock()
        tpe = graph.type_per_edge
        self.etype_of_csc = tpe.long() if tpe is not None else None
        eids = graph.edge_ids
        if eids is None and self.etype_of_csc is not None:  # rank of each edge in its type
            eids = torch.empty(graph.num_edges, dtype=torch.int64)
            for e in range(len(self.edge_types)):
                mask = self.etype_of_csc == e
                eids[mask] = torch.arange(int(mask.sum()))
        self._eids = eids
        bounds = []
        for e in range(len(self.edge_types)):
            ids = self._eids_of_type(e)
            bounds.append(int(ids.max()) + 1 if ids.numel() else 0)
        self._eid_bounds = bounds
        base = np.zeros(len(bounds) + 1, np.int64)
        np.cumsum(bounds, out=base[1:])
        self.key_base = torch.from_numpy(base)  # exclusion key of (e, eid): base[e] + eid
        self._pos_tables: Dict[int, torch.Tensor] = {}

    # ------------------------------------------------------------------ types
    def node_type_id(self, ntype: str) -> int:
        return self.graph.node_type_id(ntype)

    def offset(self, t: int) -> int:
        return int(self.offsets[t])

    def num_nodes_of(self, t: int) -> int:
        return int(self.offsets[t + 1] - self.offsets[t])

    def eid_bound(self, e: int) -> int:
        """Edge ids of type ``e`` are ``0..eid_bound(e)-1``."""
        return self._eid_bounds[e]

    def num_rows(self, kind: str, t: int) -> int:
        """Rows a data table of node type (``kind="node"``) or edge type ``t`` must have: one per
        node of the type, one per edge id of the type (or per CSC position on an untyped gnnsys
        Graph, whose ``edata`` is in CSC order)."""
        if kind == "node":
            return self.num_nodes_of(t)
        return self.eid_bound(t) if self.edata_by_eid else self.num_edges

    @property
    def device(self) -> torch.device:
        return _graph_device(self.user_graph)

    # ------------------------------------------------------------------ data
    def ndata_of(self, t: int) -> Mapping[str, Any]:
        """Node data of node type ``t`` (rows = ids within the type)."""
        g = self.user_graph
        if self.dgl_graph is not None:
            return g.nodes[self.node_types[t]].data if self.typed else g.ndata
        if not self.typed:
            return g.ndata
        return _TypeColumns(g.ndata, t, self.graph.node_type_id, len(self.node_types) == 1)

    def edata_of(self, e: int) -> Mapping[str, Any]:
        """Edge data of edge type ``e`` (rows = edge ids, or CSC positions on an untyped
        gnnsys Graph)."""
        g = self.user_graph
        if self.dgl_graph is not None:
            return g.edges[self.edge_types[e]].data if self.typed else g.edata
        if not self.typed:
            return g.edata
        return _TypeColumns(g.edata, e, self.graph.edge_type_id, len(self.edge_types) == 1)

    def node_key(self, t: int, name: str) -> Any:
        """The Loader's table key of node data ``name`` of type ``t``."""
        return (self.node_types[t], name) if self.typed else name

    def edge_key(self, e: int, name: str) -> Any:
        return (self.edge_types[e], name) if self.typed else name

    def data_summary(self, kind: str) -> Any:
        """The data names there are (per type on a heterograph), for error messages."""
        if kind == "node":
            per = {t: list(self.ndata_of(i).keys()) for i, t in enumerate(self.node_types)}
        else:
            per = {t: list(self.edata_of(i).keys()) for i, t in enumerate(self.edge_types)}
        return next(iter(per.values())) if len(per) == 1 else per

    def dgl_frames(self) -> Optional[Tuple[List[Any], List[Any]]]:
        """DGL ``Frame``s of each node type's and edge type's data (for lazy block columns),
        or None."""
        with self._lock:
            if "dgl_frames" not in self._cache:
                self._cache["dgl_frames"] = self._build_dgl_frames()
            return self._cache["dgl_frames"]

    def _build_dgl_frames(self) -> Optional[Tuple[List[Any], List[Any]]]:
        try:
            if self.dgl_graph is not None:
                return list(self.dgl_graph._node_frames), list(self.dgl_graph._edge_frames)
            from dgl.frame import Frame

            nf = [
                Frame(dict(self.ndata_of(t)), num_rows=self.num_rows("node", t))
                for t in range(len(self.node_types))
            ]
            ef = [
                Frame(dict(self.edata_of(e)), num_rows=self.num_rows("edge", e))
                for e in range(len(self.edge_types))
            ]
            return nf, ef
        except (ImportError, AttributeError, TypeError):
            return None  # a dgl without these internals: only prefetched columns

    # ------------------------------------------------------------------ edges
    def _eids_of_type(self, e: int) -> torch.Tensor:
        ids = self._eids if self._eids is not None else torch.arange(self.num_edges)
        if self.etype_of_csc is None:
            return ids[ids >= 0]
        return ids[self.etype_of_csc == e]

    def eid_of_pos(self, pos: torch.Tensor) -> torch.Tensor:
        """The edge id (within its type) of each CSC position."""
        return self._eids[pos] if self._eids is not None else pos

    def etype_of_pos(self, pos: torch.Tensor) -> torch.Tensor:
        if self.etype_of_csc is None:
            return torch.zeros(pos.numel(), dtype=torch.int64)
        return self.etype_of_csc[pos]

    def rows_of(self, pos: torch.Tensor, eid: torch.Tensor) -> torch.Tensor:
        """Edge-data rows of edges at CSC positions ``pos`` with ids ``eid``."""
        return eid if self.edata_by_eid else pos

    def pos_of_eid(self, e: int, eids: torch.Tensor) -> torch.Tensor:
        """CSC position of each id of edge type ``e`` (the first, when ids repeat);
        IndexError naming the type if one does not exist."""
        if self._eids is None:
            return eids
        with self._lock:
            table = self._pos_tables.get(e)
            if table is None:
                table = torch.full((self.eid_bound(e),), -1, dtype=torch.int64)
                pos = torch.arange(self.num_edges, dtype=torch.int64)
                ok = self._eids >= 0
                if self.etype_of_csc is not None:
                    ok &= self.etype_of_csc == e
                table.scatter_reduce_(0, self._eids[ok], pos[ok], reduce="amin", include_self=False)
                self._pos_tables[e] = table
        pos = table[eids]
        if pos.numel() and int(pos.min()) < 0:
            bad = int(eids[pos < 0][0])
            where = f" of type {self.edge_types[e]!r}" if self.typed else ""
            raise IndexError(f"edge id {bad}{where} does not exist in the graph")
        return pos

    def find_edges(self, pos: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(src, dst) global node ids of the edges at CSC positions ``pos``."""
        src = self.graph.indices[pos].long()
        dst = torch.searchsorted(self.graph.indptr, pos, right=True) - 1
        return src, dst

    def sampling_graph(self, prob: Optional[str], mask: Optional[str]) -> Tuple[Graph, Any, bool]:
        """(Graph to sample from, its CSC position -> our CSC position map or None, weighted).
        The Graph's ``edge_ids`` are None, so the kernel reports CSC positions."""
        key = ("sampling", prob, mask)
        columns = self._columns(prob) + self._columns(mask)
        with self._lock:
            hit = self._cache.get(key)
            if hit is None or not token_matches(hit[0], *columns):
                hit = (tensors_token(*columns), self._build_sampling_graph(prob, mask))
                self._cache[key] = hit
            return hit[1]

    def id_sampling_graph(self) -> Optional[Graph]:
        """The graph itself where its sampling kernel can report each edge's id, which is also
        its edge-data row (an untyped DGL graph): no per-batch CSC position -> id gather
        (4.7 ms of a rmat20 batch's 250k edges on one thread). None otherwise: typed graphs
        and gnnsys Graphs, whose edge data rows are CSC positions, sample by position."""
        if self.typed or not self.edata_by_eid or self._eids is None:
            return None
        return self.graph

    def _columns(self, name: Optional[str]) -> Tuple[Any, ...]:
        """Edge column ``name`` of every type (None where a type lacks it): a column replaced
        or changed in place gives a new sampling graph (``sampling_graph``'s token)."""
        if name is None:
            return ()
        return tuple(
            data[name] if name in data else None
            for data in (self.edata_of(e) for e in range(len(self.edge_types)))
        )

    def _column_in_csc(self, name: str) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
        """(edge column ``name`` in CSC order, bool [E]: which edges have it); edge types
        without the column are filled with zeros and marked False."""
        col: Optional[torch.Tensor] = None
        has = torch.zeros(self.num_edges, dtype=torch.bool)
        found = False
        for e in range(len(self.edge_types)):
            data = self.edata_of(e)
            if name not in data:
                continue
            found = True
            values = torch.as_tensor(data[name]).cpu()
            pos = (
                torch.nonzero(self.etype_of_csc == e).flatten()
                if self.etype_of_csc is not None
                else torch.arange(self.num_edges)
            )
            rows = self.rows_of(pos, self.eid_of_pos(pos))
            bound = self.num_rows("edge", e)
            where = f" of edge type {self.edge_types[e]!r}" if self.typed else ""
            if values.dim() != 1 or values.shape[0] != bound:
                raise ValueError(f"edge data {name!r}{where} must be 1-D with one entry per edge")
            if col is None:
                col = torch.zeros(self.num_edges, dtype=values.dtype)
            col[pos] = values[rows].to(col.dtype)
            has[pos] = True
        if not found:
            raise ValueError(
                f"edge data {name!r} not found; the graph's edata has {self.data_summary('edge')}"
            )
        assert col is not None
        return col, has

    def _build_sampling_graph(self, prob: Optional[str], mask: Optional[str]):
        g = self.graph
        keep: Optional[torch.Tensor] = None
        weight: Optional[torch.Tensor] = None
        if mask is not None:
            m, has = self._column_in_csc(mask)
            if m.dtype != torch.bool:
                raise ValueError(f"mask {mask!r} must be a bool edge column, got {m.dtype}")
            keep = m | ~has
        if prob is not None:
            p, has = self._column_in_csc(prob)
            if p.dtype == torch.bool:
                keep = p | ~has
            else:
                if not p.dtype.is_floating_point:
                    p = p.double()
                if p.numel() and (not bool(torch.isfinite(p).all()) or float(p.min()) < 0):
                    raise ValueError(f"prob {prob!r} must hold finite values >= 0")
                weight = torch.where(has, p, torch.ones((), dtype=p.dtype))
        indptr, indices, tpe, pos_map = g.indptr, g.indices, g.type_per_edge, None
        if keep is not None:
            pos_map = torch.nonzero(keep).flatten()
            cum = torch.zeros(keep.numel() + 1, dtype=torch.int64)
            torch.cumsum(keep.long(), 0, out=cum[1:])
            indptr = cum[g.indptr]
            indices = indices[keep]
            tpe = tpe[keep] if tpe is not None else None
            weight = weight[keep] if weight is not None else None
        sg = Graph(
            indptr,
            indices,
            edge_ids=None,
            edge_weight=weight,
            node_type_offset=g.node_type_offset,
            type_per_edge=tpe,
            node_types=g.node_types if g.is_hetero else None,
            edge_types=g.edge_types if g.is_hetero else None,
            validate=False,
        )
        return sg, pos_map, weight is not None


class _DistDglView(_DglGraphView):
    """A ``gnnsys.distributed.DistGraph`` (this machine's part) as the DGL front sees it: node
    data in ``graph.ndata`` (``DistTable``s; per node type when typed), edge ids global and
    edge data absent. Blocks get no lazy parent columns: reading a column every rank did not
    prefetch would start an exchange on one rank only (prefetch them instead)."""

    lazy_columns = False

    def __init__(self, dist_graph: Any, idtype: torch.dtype) -> None:
        self.user_graph = dist_graph
        self.graph = dist_graph
        self.dgl_graph = None
        self.edata_by_eid = True
        self.idtype = idtype
        self.typed = False
        self.node_types = dist_graph.node_types
        self.edge_types = dist_graph.edge_types
        self.offsets = dist_graph.type_offsets()
        self.num_nodes = dist_graph.num_nodes
        self.num_edges = dist_graph.num_edges
        self._cache = {}
        self._lock = threading.Lock()
        self.etype_of_csc = None
        self.key_base = torch.tensor([0, int(self.num_edges or 0)])  # one edge type

    def ndata_of(self, t: int) -> Mapping[str, Any]:
        ndata = self.graph.ndata
        if not self.graph.is_hetero:
            return ndata
        name = self.node_types[t]  # a typed part's tables are keyed (node type, name)
        return {k[1]: v for k, v in ndata.items() if k[0] == name}

    def node_key(self, t: int, name: str) -> Any:
        return (self.node_types[t], name) if self.graph.is_hetero else name

    def edata_of(self, e: int) -> Mapping[str, Any]:
        return {}

    def dgl_frames(self) -> None:
        return None

    def eid_of_pos(self, pos: torch.Tensor) -> torch.Tensor:
        return pos  # the distributed sampler reports global edge ids

    def eid_bound(self, e: int) -> int:
        return int(self.num_edges or 0)

    def sampling_graph(self, prob: Optional[str], mask: Optional[str]) -> Tuple[Any, Any, bool]:
        if prob is not None or mask is not None:
            raise NotImplementedError("prob / mask sampling over a partition (DistGraph)")
        return self.graph, None, False

    def pos_of_eid(self, e: int, eids: torch.Tensor) -> torch.Tensor:
        return eids  # seeds stay global edge ids; find_edges asks the parts for their ends

    def find_edges(self, pos: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(src, dst) of global edge ids: a collective lookup (``DistGraph.find_edges``)."""
        return self.graph.find_edges(pos)


_VIEW_ATTR = "_gnnsys_dgl_view"


class _ViewSlot:
    """Holds the view ``_prepare_view`` caches on the user's graph object. It pickles and
    deep-copies as empty: a view holds locks (a graph carrying one would not pickle, e.g. for
    ``mp.spawn``), and a copy of the graph makes its own."""

    __slots__ = ("entry",)

    def __init__(self, entry: Optional[tuple] = None) -> None:
        self.entry = entry

    def __reduce__(self) -> Tuple[Any, tuple]:
        return (_ViewSlot, ())


def _prepare_view(g: Any, idtype: Optional[torch.dtype] = None) -> _DglGraphView:
    """Wrap the user's graph: its CSC is built once and the view kept on the graph object
    (a reference cycle the garbage collector frees), so loaders built per epoch share it."""
    if isinstance(g, _DglGraphView):
        return g
    if _is_dist_graph(g):
        if idtype not in (None, torch.int64):
            raise ValueError("a DistGraph's ids are int64 (idtype=torch.int64)")
        return _DistDglView(g, torch.int64)
    tensors: Tuple[Any, ...] = ()  # (the graph's tensors: compared by gnnsys._tokens)
    if isinstance(g, Graph):
        it = torch.int64 if idtype is None else idtype
        token: tuple = (it,)
        tensors = g.structure_tensors()
    elif _is_dgl_graph(g):
        if idtype is not None and idtype != g.idtype:
            raise ValueError(
                f"idtype={idtype} but the DGL graph's idtype is {g.idtype}; convert the graph "
                "(g.int() / g.long()) instead"
            )
        it = g.idtype
        token = (
            tuple(int(g.num_nodes(t)) for t in g.ntypes),
            tuple(int(g.num_edges(e)) for e in g.canonical_etypes),
        )
    else:
        raise TypeError(f"graph must be a gnnsys.Graph or a DGL graph, got {type(g).__name__}")
    slot = getattr(g, _VIEW_ATTR, None)
    cached = slot.entry if isinstance(slot, _ViewSlot) else None
    # DGL's int() / long() / to() copy the Python attributes: the view must be this graph's
    if (
        cached is not None
        and cached[0] == token
        and token_matches(cached[2], *tensors)
        and cached[1].user_graph is g
    ):
        return cached[1]
    if isinstance(g, Graph):
        cpu = g
        if g.indptr.device.type != "cpu":
            cpu = Graph(
                g.indptr.cpu(),
                g.indices.cpu(),
                edge_ids=_cpu(g.edge_ids),
                node_type_offset=_cpu(g.node_type_offset),
                type_per_edge=_cpu(g.type_per_edge),
                node_types=g.node_types if g.is_hetero else None,
                edge_types=g.edge_types if g.is_hetero else None,
                validate=False,
            )
        view = _DglGraphView(g, cpu, by_eid=g.is_hetero, idtype=it)
    elif len(g.ntypes) == 1 and len(g.canonical_etypes) == 1:
        ei = dgl_edge_index(g)
        view = _DglGraphView(g, Graph.from_edge_index(ei, g.num_nodes()), by_eid=True, idtype=it)
    else:
        view = _DglGraphView(g, Graph.from_dgl(g), by_eid=True, idtype=it)
    with contextlib.suppress(AttributeError, TypeError):
        setattr(g, _VIEW_ATTR, _ViewSlot((token, view, tensors_token(*tensors))))
    return view


def _sampling_device(
    graph_device: torch.device, use_uva: bool, device: torch.device
) -> Optional[torch.device]:
    """Where the DGL front samples, as DGL does: on the GPU when the graph is on CUDA (its
    device) or ``use_uva`` (the output device, reading the pinned graph in place); None: on
    the CPU (numba)."""
    if graph_device.type == "cuda":
        return graph_device
    if use_uva:
        return device
    return None


def _is_dist_graph(g: Any) -> bool:
    """A ``gnnsys.distributed.DistGraph`` (without importing torch.distributed's users)."""
    return type(g).__name__ == "DistGraph" and hasattr(g, "exchange")


def _graph_device(g: Any) -> torch.device:
    if _is_dist_graph(g):
        return torch.device("cpu")
    if isinstance(g, Graph):
        return g.indptr.device
    if _is_dgl_graph(g):
        return torch.device(g.device)
    raise TypeError(f"graph must be a gnnsys.Graph or a DGL graph, got {type(g).__name__}")


def _cpu(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return t.cpu() if t is not None else None


# ====================================================================== seeds
class _FlatSeeds:
    """Seeds as the Loader takes them (one int64 tensor) plus how the user gave them:
    ``dict_keys`` the type ids of a dict's keys in its order (None for a tensor)."""

    def __init__(self, ids: torch.Tensor, dict_keys: Optional[List[int]]) -> None:
        self.ids = ids
        self.dict_keys = dict_keys


def _check_seed_ids(name: str, value: Any, bound: int, what: str, tname: str = "") -> torch.Tensor:
    ids = check_index(name, value, None, device=None, exc=IndexError).cpu()
    if ids.numel():
        hi = int(ids.max())
        if hi >= bound:
            of = f" of type {tname!r}" if tname else ""
            raise IndexError(
                f"{name} holds {what} id {hi}, out of range for {bound} {what}s{of} "
                f"(valid: 0..{bound - 1})"
            )
    return ids


def _node_type_of(view: _DglGraphView, key: Any, name: str) -> int:
    try:
        return view.node_type_id(key)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


def _edge_type_of(view: _DglGraphView, key: Any, name: str) -> int:
    try:
        return view.graph.edge_type_id(key)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


def _only_edge_type(view: _DglGraphView, name: str) -> int:
    if len(view.edge_types) != 1:
        raise ValueError(
            f"{name} must be a dict {{edge type: edge ids}}: the graph has edge types "
            f"{view.edge_types}"
        )
    return 0


def _flat_node_seeds(view: _DglGraphView, indices: Any, name: str) -> _FlatSeeds:
    """Node ids (a tensor, or a dict per node type) as global ids in the dict's order."""
    if isinstance(indices, Mapping):
        parts, keys = [], []
        for k, v in indices.items():
            t = _node_type_of(view, k, name)
            if t in keys:
                raise ValueError(f"{name} names node type {view.node_types[t]!r} twice")
            ids = _check_seed_ids(
                f"{name}[{k!r}]", v, view.num_nodes_of(t), "node", view.node_types[t]
            )
            parts.append(ids + view.offset(t) if view.offset(t) else ids)
            keys.append(t)
        flat = torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64)
        return _FlatSeeds(flat, keys)
    if len(view.node_types) != 1:
        raise ValueError(
            f"{name} must be a dict {{node type: ids}}: the graph has node types {view.node_types}"
        )
    return _FlatSeeds(_check_seed_ids(name, indices, view.num_nodes, "node"), None)


def _flat_edge_seeds(view: _DglGraphView, indices: Any, name: str) -> _FlatSeeds:
    """Edge ids (a tensor, or a dict per edge type) as CSC positions in the dict's order."""
    if isinstance(indices, Mapping):
        parts, keys = [], []
        for k, v in indices.items():
            e = _edge_type_of(view, k, name)
            if e in keys:
                raise ValueError(f"{name} names edge type {view.edge_types[e]!r} twice")
            tname = str(view.edge_types[e])
            ids = _check_seed_ids(f"{name}[{k!r}]", v, view.eid_bound(e), "edge", tname)
            parts.append(view.pos_of_eid(e, ids))
            keys.append(e)
        flat = torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64)
        return _FlatSeeds(flat, keys)
    e = _only_edge_type(view, name)
    ids = _check_seed_ids(name, indices, view.eid_bound(e), "edge")
    return _FlatSeeds(view.pos_of_eid(e, ids), None)


def _exclusion_keys(view: _DglGraphView, eids: Any, name: str) -> torch.Tensor:
    """Edge ids to exclude (a tensor, or a dict per edge type) as exclusion keys
    ``key_base[e] + eid`` (ids out of range are dropped: they match no edge)."""
    if isinstance(eids, Mapping):
        parts = []
        for k, v in eids.items():
            e = _edge_type_of(view, k, name)
            ids = check_index(f"{name}[{k!r}]", v, None, device=None).cpu()
            ids = ids[ids < view.eid_bound(e)]
            parts.append(ids + view.key_base[e])
        return torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64)
    _only_edge_type(view, name)
    return check_index(name, eids, None, device=None).cpu()


# ====================================================================== pair graphs
class PairGraph:
    """The graph of a batch's positive (or negative) edges over one compacted node set per
    node type, as DGL's ``pair_graph``: ``ndata["_ID"]`` the parent's node ids (within their
    type), ``edata["_ID"]`` (positives) the seed edge ids, edges of each type in batch order.
    ``PairGraph(src, dst, num_nodes)`` is homogeneous (types ``"_N"`` / ``"_E"``);
    ``PairGraph.hetero(edges, num_nodes)`` has several node and edge types (``ndata["_ID"]``
    is then ``{ntype: ids}``, ``edges(etype=...)`` one type's edges).

    Example:
        >>> pg = PairGraph(torch.tensor([0, 1]), torch.tensor([2, 3]), 4)
        >>> pg.edges()
        (tensor([0, 1]), tensor([2, 3]))
        >>> hg = PairGraph.hetero({("user", "buys", "item"): (torch.tensor([0]), torch.tensor([1]))},
        ...                       {"user": 1, "item": 2})
        >>> hg.num_nodes("item"), hg.num_edges("buys")
        (2, 1)
    """

    is_block = False

    def __init__(
        self,
        src: torch.Tensor,
        dst: torch.Tensor,
        num_nodes: int,
        *,
        node_ids: Optional[torch.Tensor] = None,
        edge_ids: Optional[torch.Tensor] = None,
        idtype: Optional[torch.dtype] = None,
    ) -> None:
        et = ("_N", "_E", "_N")
        self._setup(
            {et: (src, dst)},
            {"_N": int(num_nodes)},
            {"_N": node_ids} if node_ids is not None else None,
            {et: edge_ids} if edge_ids is not None else None,
            idtype or torch.int64,
        )

    @classmethod
    def hetero(
        cls,
        edges: Mapping[EdgeType, Tuple[torch.Tensor, torch.Tensor]],
        num_nodes: Mapping[str, int],
        *,
        node_ids: Optional[Mapping[str, torch.Tensor]] = None,
        edge_ids: Optional[Mapping[EdgeType, torch.Tensor]] = None,
        idtype: Optional[torch.dtype] = None,
        node_parent: Optional[Mapping[str, Mapping[str, Any]]] = None,
        edge_parent: Optional[Mapping[EdgeType, Tuple[Mapping[str, Any], torch.Tensor]]] = None,
    ) -> PairGraph:
        """A pair graph with node types ``num_nodes`` (in order) and edges per canonical edge
        type (ids within the node types). ``node_parent[ntype]``: the parent's columns of that
        type, read lazily at rows ``node_ids[ntype]``; ``edge_parent[etype]``: (the parent's
        columns of that type, the rows of this graph's edges in them)."""
        out = object.__new__(cls)
        out._setup(
            edges, num_nodes, node_ids, edge_ids, idtype or torch.int64, node_parent, edge_parent
        )
        return out

    def _setup(
        self, edges, num_nodes, node_ids, edge_ids, idtype, node_parent=None, edge_parent=None
    ) -> None:
        self._ntypes = list(num_nodes)
        self._counts = [int(num_nodes[t]) for t in self._ntypes]
        self._etypes = [tuple(e) for e in edges]
        for et in self._etypes:
            for side in (et[0], et[2]):
                if side not in self._ntypes:
                    raise ValueError(f"edge type {et!r} names node type {side!r}, not in num_nodes")
        self._src = [edges[e][0] for e in edges]
        self._dst = [edges[e][1] for e in edges]
        self._idtype = idtype
        dev = self._src[0].device
        node_parent, edge_parent = node_parent or {}, edge_parent or {}
        self._nframes = [
            _Frame(c, dev, what="node", parent=node_parent.get(t), parent_ids=(
                node_ids[t].long() if t in node_parent else None))
            for t, c in zip(self._ntypes, self._counts)
        ]  # fmt: skip
        self._eframes = []
        for et, src in zip(self._etypes, self._src):
            columns, rows = edge_parent.get(et, (None, None))
            self._eframes.append(
                _Frame(src.numel(), dev, what="edge", parent=columns, parent_ids=rows)
            )
        for t, ids in (node_ids or {}).items():
            i = self._ntypes.index(t)
            self._nframes[i]._set_inherited(NID, ids.to(dev, idtype))
        for e, ids in (edge_ids or {}).items():
            i = self._etypes.index(tuple(e))
            self._eframes[i]._set_inherited(EID, ids.to(dev, idtype))

    # ------------------------------------------------------------------ types and sizes
    @property
    def ntypes(self) -> List[str]:
        return list(self._ntypes)

    srctypes = dsttypes = ntypes

    @property
    def etypes(self) -> List[str]:
        return [e[1] for e in self._etypes]

    @property
    def canonical_etypes(self) -> List[EdgeType]:
        return list(self._etypes)

    @property
    def idtype(self) -> torch.dtype:
        return self._idtype

    @property
    def device(self) -> torch.device:
        return self._src[0].device

    def _ntype_index(self, ntype: Any) -> int:
        return node_type_index(self._ntypes, ntype)

    def _etype_index(self, etype: Any) -> int:
        return edge_type_index(self._etypes, etype)

    def _num_edges_of(self, e: int) -> int:
        return int(self._src[e].numel())

    def to_canonical_etype(self, etype: ETypeLike) -> EdgeType:
        return self._etypes[self._etype_index(etype)]

    def num_nodes(self, ntype: Optional[str] = None) -> int:
        """Nodes of type ``ntype`` (None: of every type)."""
        if ntype is None:
            return sum(self._counts)
        return self._counts[self._ntype_index(ntype)]

    num_src_nodes = num_dst_nodes = number_of_nodes = num_nodes

    def num_edges(self, etype: ETypeLike = None) -> int:
        """Edges of type ``etype`` (None: of every type)."""
        if etype is None:
            return sum(self._num_edges_of(e) for e in range(len(self._etypes)))
        return self._num_edges_of(self._etype_index(etype))

    number_of_edges = num_edges

    # ------------------------------------------------------------------ data
    @property
    def nodes(self) -> _NodeView:
        """``nodes(ntype)``: the node ids of a type; ``nodes[ntype].data``: its frame."""
        return _NodeView(self._counts, self._nframes, self._ntypes, "node", self._idtype)

    @property
    def ndata(self) -> Union[_Frame, _TypedData]:
        return self.nodes.data

    srcdata = dstdata = ndata
    srcnodes = dstnodes = nodes

    @property
    def edata(self) -> Union[_Frame, _TypedData]:
        if len(self._eframes) == 1:
            return self._eframes[0]
        return _TypedData(self._eframes, self._etypes, self._etype_index, "edge")

    @property
    def edges(self) -> _EdgeView:
        """``edges(form, order, etype)`` as compacted ids: 'uv' -> (src, dst), 'eid', or 'all'
        -> (src, dst, eid); ``edges[etype].data`` one type's frame."""
        return _EdgeView(self)

    def _edges(self, form: str, order: str, etype: ETypeLike) -> Any:
        e = self._etype_index(etype)
        out = edge_view(self._src[e], self._dst[e], form, order)
        if isinstance(out, tuple):
            return tuple(t.to(self._idtype) for t in out)
        return out.to(self._idtype)

    def all_edges(self, form: str = "uv", order: str = "eid", etype: ETypeLike = None) -> Any:
        return self._edges(form, order, etype)

    def in_degrees(self, v: Any = None, etype: ETypeLike = None) -> Any:
        """In-degree of nodes ``v`` (all when None) through ``etype``; an int for an int ``v``."""
        e = self._etype_index(etype)
        n = self._counts[self._ntypes.index(self._etypes[e][2])]
        deg = torch.bincount(self._dst[e].long(), minlength=n)
        return _select(deg, v, "v", n)

    def out_degrees(self, u: Any = None, etype: ETypeLike = None) -> Any:
        """Out-degree of nodes ``u`` (all when None) through ``etype``; an int for an int ``u``."""
        e = self._etype_index(etype)
        n = self._counts[self._ntypes.index(self._etypes[e][0])]
        deg = torch.bincount(self._src[e].long(), minlength=n)
        return _select(deg, u, "u", n)

    @contextlib.contextmanager
    def local_scope(self) -> Iterator[PairGraph]:
        """Undo data assigned or deleted inside the with-block (as DGL's local_scope)."""
        with _scope(self._frames()):
            yield self

    def _frames(self) -> List[_Frame]:
        return self._nframes + self._eframes

    def to(self, device: Any, **kwargs: Any) -> PairGraph:
        dev = torch.device(device)
        if dev == self.device:
            return self
        out = object.__new__(PairGraph)
        out.__dict__.update(self.__dict__)
        out._src = [t.to(dev, **kwargs) for t in self._src]
        out._dst = [t.to(dev, **kwargs) for t in self._dst]
        out._nframes = [f._moved(dev, None, **kwargs) for f in self._nframes]
        out._eframes = [f._moved(dev, None, **kwargs) for f in self._eframes]
        return out

    def __repr__(self) -> str:
        if self._ntypes == ["_N"] and self._etypes == [("_N", "_E", "_N")]:
            return f"PairGraph(num_nodes={self._counts[0]}, num_edges={self.num_edges()})"
        nodes = dict(zip(self._ntypes, self._counts))
        edges = {e: self._num_edges_of(i) for i, e in enumerate(self._etypes)}
        return f"PairGraph(num_nodes={nodes}, num_edges={edges})"


# ====================================================================== sampling cores
def _torch_generator(key: int, salt: int) -> torch.Generator:
    gen = torch.Generator()
    gen.manual_seed((key ^ (salt * 0x9E3779B97F4A7C15)) & 0x7FFFFFFFFFFFFFFF)
    return gen


def _drop_edges(sub: SampledSubgraph, keys: torch.Tensor, drop: torch.Tensor) -> SampledSubgraph:
    """Remove the sampled edges whose exclusion key (``keys``, one per edge) is in ``drop``,
    keeping the per-(edge type, hop) CSC: each segment's ``indptr`` is recounted from a running
    count of kept edges (no sort)."""
    if drop.numel() == 0 or keys.numel() == 0:
        return sub
    keep = ~torch.isin(keys, drop)
    if bool(keep.all()):
        return sub
    csum = torch.zeros(keep.numel() + 1, dtype=torch.int64)
    torch.cumsum(keep.long(), 0, out=csum[1:])
    ptr = sub.edge_ptr
    assert ptr is not None and sub.hop_indptr is not None and sub.hop_indptr_ptr is not None
    new_ptr = csum[ptr]
    seg_len = sub.hop_indptr_ptr[1:] - sub.hop_indptr_ptr[:-1]
    base = torch.repeat_interleave(ptr[:-1], seg_len)
    new_base = torch.repeat_interleave(new_ptr[:-1], seg_len)
    new_indptr = csum[sub.hop_indptr + base] - new_base
    hops = sub.num_hops
    per_seg = new_ptr[1:] - new_ptr[:-1]
    nse = per_seg.reshape(-1, hops).sum(0) if hops else per_seg[:0]
    ei = sub.edge_index()[:, keep]
    meta = dict(sub.metadata)
    for name in ("eid", "edge_weights", "edge_probs"):  # per-edge entries (LABOR-i's weights)
        if name in meta:
            meta[name] = meta[name][keep]
    return replace(
        sub,
        row=ei[0],
        col=ei[1],
        num_sampled_edges=nse.tolist(),
        edge_ids=sub.edge_ids[keep] if sub.edge_ids is not None else None,
        edge_ptr=new_ptr,
        hop_indptr=new_indptr,
        metadata=meta,
    )


def _resolve_names(spec: Any, arg: str, view: _DglGraphView, kind: str) -> List[Tuple[int, str]]:
    """(type id, name) of every table a prefetch argument asks for: a list names data of every
    type that has it (at least one must); a dict ``{type: [names]}`` names data of that type."""
    types_ = view.node_types if kind == "node" else view.edge_types
    data_of = view.ndata_of if kind == "node" else view.edata_of
    what = "ndata" if kind == "node" else "edata"
    out: List[Tuple[int, str]] = []
    if isinstance(spec, Mapping):
        for tkey, names in spec.items():
            t = (_node_type_of if kind == "node" else _edge_type_of)(view, tkey, arg)
            for n in names:
                if n not in data_of(t):
                    raise ValueError(
                        f"{arg} names {n!r} for {kind} type {types_[t]!r}, which has no such "
                        f"data ({kind} data of that type: {list(data_of(t).keys())})"
                    )
                out.append((t, n))
    else:
        for n in spec:
            hits = [t for t in range(len(types_)) if n in data_of(t)]
            if not hits:
                hint = ""
                if view.typed and view.dgl_graph is None and n in getattr(view.user_graph, what):
                    hint = f"; a typed Graph keys its data by type: g.{what}[({kind}_type, {n!r})]"
                raise ValueError(
                    f"{arg} names {n!r}, which is not {kind} data of the graph "
                    f"({what} has {view.data_summary(kind)}){hint}"
                )
            out += [(t, n) for t in hits]
    for t, n in out:
        _check_rows(view, kind, t, n, data_of(t)[n], arg)
    return out


class _LiveColumns:
    """The graph's columns a loader fetches, as a ``FeatureStore`` that follows them: DGL reads
    ``g.ndata`` / ``g.edata`` at every batch, so a loader iterated again after
    ``g.ndata[name] = new`` (layer-wise inference writes each layer's output so) must fetch
    ``new``. ``refresh`` re-reads the columns and re-points the store at replaced ones
    (a column changed in place needs nothing: the store reads the same tensor)."""

    def __init__(self, view: Any, kind: str, names: List[Tuple[int, str, str]]) -> None:
        self.view = view
        self.kind = kind
        self.names = names  # (type, name, the argument that asked for it)
        self.sources = self._read()
        self.store = FeatureStore(
            {self._key(t, n): table for (t, n, _), table in zip(names, self.sources)}
        )

    def _key(self, t: int, name: str) -> Any:
        return (self.view.node_key if self.kind == "node" else self.view.edge_key)(t, name)

    def _read(self) -> List[Any]:
        data_of = self.view.ndata_of if self.kind == "node" else self.view.edata_of
        out = []
        for t, name, arg in self.names:
            data = data_of(t)
            if name not in data:
                types_ = self.view.node_types if self.kind == "node" else self.view.edge_types
                of = f" of {self.kind} type {types_[t]!r}" if self.view.typed else ""
                raise ValueError(
                    f"{arg} names {name!r}, which is no longer {self.kind} data{of} of the "
                    f"graph ({self.view.data_summary(self.kind)})"
                )
            out.append(data[name])
        return out

    def refresh(self) -> bool:
        """Re-point the store at the columns replaced since; True when one was."""
        current = self._read()
        changed = False
        for (t, name, arg), old, new in zip(self.names, self.sources, current):
            if new is not old:
                _check_rows(self.view, self.kind, t, name, new, arg)
                self.store[self._key(t, name)] = new
                changed = True
        self.sources = current
        return changed


def _check_rows(view: _DglGraphView, kind: str, t: int, name: str, table: Any, arg: str) -> None:
    """A table must have a row per node (edge) of its type: DGL refuses a mismatch when the data
    is set; a gnnsys Graph's ``ndata``/``edata`` are plain dicts, so it is checked here, before
    a gather reads past the table's end."""
    shape = getattr(table, "shape", None)
    if not shape:
        return
    want = view.num_rows(kind, t)
    if int(shape[0]) != want:
        what = "ndata" if kind == "node" else "edata"
        types_ = view.node_types if kind == "node" else view.edge_types
        of = f" of type {types_[t]!r}" if view.typed else ""
        key = view.node_key(t, name) if kind == "node" else view.edge_key(t, name)
        raise ValueError(
            f"{arg} names {name!r}, but {what}[{key!r}] has {int(shape[0])} rows and the graph "
            f"has {want} {kind}s{of}: one row per {kind}"
        )


def _dist_sampler(graph: Any, fanouts: np.ndarray, cfg: Any, labor: Dict[str, Any]) -> Any:
    """The ``DistNeighborSampler`` of a DistGraph (DGL semantics), or a clear refusal."""
    from gnnsys.distributed.graph import DistNeighborSampler

    if labor and (labor["importance_sampling"] or labor["batch_dependency"] > 1):
        raise NotImplementedError("LABOR-i or batch_dependency over a partition (DistGraph)")
    return DistNeighborSampler(graph, fanouts, replace=cfg.replace, semantics="dgl",
                               labor=bool(labor),
                               layer_dependency=bool(labor.get("layer_dependency", False)))  # fmt: skip


def _prefix_counts(sub: SampledSubgraph, num_types: int) -> torch.Tensor:
    """int64 [hops+2, T]: nodes of each type known after each hop (row h = before hop h+1)."""
    counts = sub.type_num_sampled_nodes
    if counts is None:
        counts = torch.tensor(sub.num_sampled_nodes, dtype=torch.int64).view(-1, 1)
    out = torch.zeros(counts.shape[0] + 1, num_types, dtype=torch.int64)
    torch.cumsum(counts, 0, out=out[1:])
    return out


class _PrefetchedColumns:
    """``node_store`` / ``edge_store`` of a core whose prefetched columns are
    ``_LiveColumns`` (``_node_columns``, ``_edge_columns``)."""

    _node_columns: _LiveColumns
    _edge_columns: _LiveColumns

    @property
    def node_store(self) -> FeatureStore:
        return self._node_columns.store

    @property
    def edge_store(self) -> FeatureStore:
        return self._edge_columns.store


class _NodeCore(_PrefetchedColumns):
    """Node-wise sampling (the ``Sampler`` protocol the Loader drives) and DGL collation."""

    def __init__(
        self,
        view: _DglGraphView,
        cfg: NeighborSampler,
        block_type: str,
        sample_device: Optional[torch.device] = None,
        uva: bool = False,
    ) -> None:
        self.view = view
        self.cfg = cfg
        self._fanouts = cfg.fanout_matrix(view.graph)
        self._sample_device = sample_device
        self._uva = uva
        self._labor = {}
        if cfg.labor:
            self._labor = {
                "layer_dependency": cfg.layer_dependency,
                "importance_sampling": getattr(cfg, "importance_sampling", 0),
                "batch_dependency": getattr(cfg, "batch_dependency", 1),
            }
        # a distributed sampler's batches are exchanges: the Loader runs them one at a time
        self.collective = isinstance(view, _DistDglView)
        self.lanes = 1
        # edge ids straight from the kernel where the graph allows (id_sampling_graph)
        plain = cfg.prob is None and cfg.mask is None and sample_device is None
        direct = view.id_sampling_graph() if plain and not self.collective else None
        self.reports_eids = direct is not None
        if direct is not None:
            self._use_sampling_graph(direct, None, False)
        else:
            self._use_sampling_graph(*view.sampling_graph(cfg.prob, cfg.mask))
        self.node_feats = _resolve_names(
            cfg.prefetch_node_feats, "prefetch_node_feats", view, "node"
        )
        self.labels = _resolve_names(cfg.prefetch_labels, "prefetch_labels", view, "node")
        self.edge_feats = _resolve_names(
            cfg.prefetch_edge_feats, "prefetch_edge_feats", view, "edge"
        )
        self._node_columns = _LiveColumns(
            view,
            "node",
            [(t, n, "prefetch_node_feats") for t, n in self.node_feats]
            + [(t, n, "prefetch_labels") for t, n in self.labels],
        )
        self._edge_columns = _LiveColumns(
            view, "edge", [(e, n, "prefetch_edge_feats") for e, n in self.edge_feats]
        )
        self.device_tables: Dict[Any, Any] = {}  # gathered on the output device (use_uva)
        self.pin = False
        self.output_types: Optional[List[int]] = None  # node types of dict seeds, in order
        self.dgl = _resolve_block_type(block_type)
        if self.dgl is not None:
            view.dgl_frames()  # build once here, not racing in worker threads

    def _use_sampling_graph(self, sg: Any, pos_map: Any, weighted: bool) -> None:
        """Sample from ``sg`` (the graph's CSC with its prob / mask applied)."""
        self.graph = sg  # the Loader resolves typed table keys against it
        self.pos_map = pos_map
        if self._sample_device is not None and self._uva and not graph_is_pinned(sg):
            sg.pin_memory_()  # the GPU sampler reads the structure in place (UVA)
        if self.collective:
            self.sampler = _dist_sampler(sg, self._fanouts, self.cfg, self._labor)
            self.lanes = self.sampler.lanes
        else:
            self.sampler = sampler_on(
                self._sample_device,
                sg,
                self._fanouts,
                cls=LaborCore if self.cfg.labor else None,
                replace=self.cfg.replace,
                weighted=weighted,
                semantics="dgl",
                **self._labor,
            )

    def refresh(self) -> bool:
        """Follow the graph's columns as DGL does, which reads them at every batch: a replaced
        prefetched column (``g.ndata[name] = new``) is fetched from then on, and a changed
        ``prob`` / ``mask`` column gives a new sampling graph. Called as each ``DataLoader``
        iteration starts; True when a node table was replaced (device tables are stale)."""
        cfg = self.cfg
        if not self.collective and (cfg.prob is not None or cfg.mask is not None):
            sg, pos_map, weighted = self.view.sampling_graph(cfg.prob, cfg.mask)
            if sg is not self.graph:
                self._use_sampling_graph(sg, pos_map, weighted)
        self._edge_columns.refresh()
        return self._node_columns.refresh()

    @property
    def num_inputs(self) -> int:
        """Seeds are global node ids below this (the Loader checks them once)."""
        return self.view.num_nodes

    def loader_tables(self) -> Dict[str, Any]:
        """The Loader's fetch-stage arguments: node feature tables (not the device ones) and
        edge tables."""
        names = [self.view.node_key(t, n) for t, n in self.node_feats]
        names = [k for k in dict.fromkeys(names) if k not in self.device_tables]
        labels = [self.view.node_key(t, n) for t, n in self.labels]
        return {
            "features": self.node_store,
            "feature_names": names,
            "labels": [k for k in dict.fromkeys(labels) if k not in self.device_tables],
            "edge_features": self.edge_store,
            "edge_feature_names": list(self.edge_store.keys()),
        }

    # ------------------------------------------------------------------ Sampler protocol
    def sample(self, seeds: torch.Tensor, generator: Any = None) -> SampledSubgraph:
        """Sample around global node ids ``seeds``; ``edge_ids`` become edge-data rows,
        ``metadata['eid']`` the edge ids (within their type)."""
        return self.sample_excluding(seeds, generator, None)

    def sample_excluding(
        self, seeds: torch.Tensor, generator: Any, drop: Optional[torch.Tensor]
    ) -> SampledSubgraph:
        """``sample``, then drop the edges whose exclusion key is in ``drop``."""
        # a SampleKey as is: LaborSampler's batch dependency reads its batch index
        key = generator if isinstance(generator, SampleKey) else key_int(generator)
        sub = self.sampler.sample(seeds, key)
        if sub.nodes.device.type != "cpu":
            # Sampled on the GPU; ids are mapped and blocks assembled on the CPU (one copy of
            # the batch's ids), then blocks go to the output device as CPU-sampled ones do.
            sub = sub.to("cpu")
        pos = sub.edge_ids
        if self.reports_eids:  # the kernel's edge ids are the DGL ids (and data rows)
            eid = pos
        else:
            if self.pos_map is not None:
                pos = self.pos_map[pos]
            eid = self.view.eid_of_pos(pos)
        sub.metadata["eid"] = eid
        sub.edge_ids = self.view.rows_of(pos, eid)
        if drop is not None and drop.numel():
            keys = eid + self.view.key_base[self.view.etype_of_pos(pos)] if self.view.typed else eid
            sub = _drop_edges(sub, keys, drop)
        return sub

    # ------------------------------------------------------------------ collation
    def collate(self, batch: Any) -> Tuple[Any, Any, list]:
        """A Loader batch -> (input_nodes, output_nodes, blocks) on the CPU, with the
        prefetched columns (node and edge features and the seeds' labels, all fetched by the
        Loader's fetch stage)."""
        sub = batch.subgraph
        view = self.view
        blocks = self.blocks(sub, batch.node_data, batch.edge_data)
        prefix = _prefix_counts(sub, len(view.node_types))
        seeds_of: Dict[int, torch.Tensor] = {}
        nodes_of: Dict[int, torch.Tensor] = {}
        for t in range(len(view.node_types)):
            nodes = sub.type_nodes(t)
            if view.offset(t):
                nodes = nodes - view.offset(t)
            nodes_of[t] = nodes
            seeds_of[t] = nodes[: int(prefix[1, t])]
        last = blocks[-1]
        for t, name in self.labels:  # fetched by the Loader for the seeds of each type
            key = view.node_key(t, name)
            if key not in self.device_tables:
                _assign(last.dstnodes[view.node_types[t]].data, name, batch.y[key])
        it = view.idtype
        if len(view.node_types) == 1:
            input_nodes: Any = nodes_of[0].to(it)
        else:
            input_nodes = {view.node_types[t]: nodes_of[t].to(it) for t in nodes_of}
        if self.output_types is None:
            output_nodes: Any = seeds_of[0].to(it)
        else:
            output_nodes = {
                view.node_types[t]: seeds_of[t].to(it)
                for t in self.output_types
                if seeds_of[t].numel()
            }
        return input_nodes, output_nodes, blocks

    def gather_on_device(self, input_nodes: Any, output_nodes: Any, blocks: list) -> None:
        """Gather the device tables (``use_uva``: host memory read by the GPU) into blocks."""
        view = self.view
        for t, name in self.node_feats + self.labels:
            key = view.node_key(t, name)
            if key not in self.device_tables:
                continue
            nt = view.node_types[t]
            if (t, name) in self.node_feats:
                ids = blocks[0].srcnodes[nt].data[NID]
                _assign(
                    blocks[0].srcnodes[nt].data, name, _device_rows(self.device_tables[key], ids)
                )
            if (t, name) in self.labels:
                ids = blocks[-1].dstnodes[nt].data[NID]
                _assign(
                    blocks[-1].dstnodes[nt].data, name, _device_rows(self.device_tables[key], ids)
                )

    def blocks(
        self,
        sub: SampledSubgraph,
        node_data: Mapping[Any, torch.Tensor],
        edge_data: Mapping[Any, torch.Tensor],
    ) -> list:
        """The per-layer blocks of a layered SampledSubgraph, input layer first, each built
        straight from the sampler's per-(edge type, hop) CSC (no sort, no recount)."""
        if not sub.layered:
            raise ValueError("DGL blocks need a layered (semantics='dgl') SampledSubgraph")
        view = self.view
        ntypes, etypes = view.node_types, view.edge_types
        prefix = _prefix_counts(sub, len(ntypes)).tolist()
        type_nodes = []
        for t in range(len(ntypes)):
            nodes = sub.type_nodes(t)
            type_nodes.append(nodes - view.offset(t) if view.offset(t) else nodes)
        eids = sub.metadata["eid"]
        rows = sub.edge_ids
        hops = sub.num_hops
        first = [sub.edge_span(1, e)[0] if hops else 0 for e in range(len(etypes))]
        out = []
        for h in range(hops, 0, -1):
            rels, edge_ids, parent_rows, spans = {}, {}, {}, []
            for e, et in enumerate(etypes):
                blk = sub.block(h, e)
                lo, hi = sub.edge_span(h, e)
                rels[et] = (blk.indptr, blk.indices)
                edge_ids[et] = eids[lo:hi]
                parent_rows[et] = rows[lo:hi]
                spans.append((lo, hi))
            num_src = {nt: prefix[h + 1][t] for t, nt in enumerate(ntypes)}
            num_dst = {nt: prefix[h][t] for t, nt in enumerate(ntypes)}
            src_ids = {nt: type_nodes[t][: num_src[nt]] for t, nt in enumerate(ntypes)}
            if self.dgl is not None:
                b = self._dgl_block(rels, num_src, num_dst, src_ids, edge_ids, parent_rows)
            else:
                b = Block.from_relations(
                    rels,
                    num_src,
                    num_dst,
                    src_ids=src_ids,
                    edge_ids=edge_ids,
                    node_parent={nt: view.ndata_of(t) for t, nt in enumerate(ntypes)}
                    if view.lazy_columns
                    else None,
                    edge_parent={et: view.edata_of(e) for e, et in enumerate(etypes)}
                    if view.lazy_columns
                    else None,
                    edge_parent_ids=parent_rows,
                    idtype=view.idtype,
                    validate=False,
                )
            for e, name in self.edge_feats:
                key = view.edge_key(e, name)
                lo, hi = spans[e]
                base = first[e] if view.typed else 0
                _assign(b.edges[etypes[e]].data, name, edge_data[key][lo - base : hi - base])
            weights = sub.metadata.get("edge_weights")  # LABOR-i: DGL's block edata
            if weights is not None:
                for e, (lo, hi) in enumerate(spans):
                    _assign(b.edges[etypes[e]].data, "edge_weights", weights[lo:hi])
            out.append(b)
        if not out:
            raise ValueError("DGL blocks need at least one layer")
        b0 = out[0]  # the input layer (hop L)
        for t, name in self.node_feats:
            key = view.node_key(t, name)
            if key in node_data:
                _assign(b0.srcnodes[ntypes[t]].data, name, node_data[key])
        return out

    def _dgl_block(self, rels, num_src, num_dst, src_ids, edge_ids, parent_rows) -> Any:
        dgl = self.dgl
        it = self.view.idtype
        b = csc_block(dgl, rels, num_src, num_dst, it)
        frames = self.view.dgl_frames()
        view = self.view
        if frames is not None:
            # DGL's own samplers give blocks lazy views of every parent column; do the same.
            nf, ef = frames
            tidx = {nt: t for t, nt in enumerate(view.node_types)}
            eidx = {et: e for e, et in enumerate(view.edge_types)}
            node_frames = [nf[tidx[nt]].subframe(src_ids[nt]) for nt in b.srctypes]
            node_frames += [nf[tidx[nt]].subframe(src_ids[nt][: num_dst[nt]]) for nt in b.dsttypes]
            edge_frames = [
                ef[eidx[tuple(et)]].subframe(parent_rows[tuple(et)]) for et in b.canonical_etypes
            ]
            dgl.utils.set_new_frames(b, node_frames=node_frames, edge_frames=edge_frames)
        for nt, ids in src_ids.items():
            b.srcnodes[nt].data[NID] = ids.to(it)
            b.dstnodes[nt].data[NID] = ids[: num_dst[nt]].to(it)
        for et, ids in edge_ids.items():
            b.edges[et].data[EID] = ids.to(it)
        return b


def _assign(frame: Any, key: str, value: torch.Tensor) -> None:
    if isinstance(frame, _Frame):
        frame._set_inherited(key, value)
    else:
        frame[key] = value


def _device_rows(table: Any, ids: torch.Tensor) -> torch.Tensor:
    """Rows ``ids`` of a table, gathered where ``ids`` live (a UnifiedTensor reads host memory
    from the GPU; a plain CPU tensor is gathered on the CPU and copied)."""
    ids = ids.long()
    if isinstance(table, torch.Tensor) and table.device != ids.device:
        return table[ids.to(table.device)].to(ids.device, non_blocking=True)
    rows = table[ids]
    return rows if isinstance(rows, torch.Tensor) else torch.as_tensor(np.asarray(rows))


def _cache_sizes(gpu_cache: Any, device: torch.device) -> Dict[Any, int]:
    """``gpu_cache``'s node entries with rows to cache. As DGL's, a size of 0 caches nothing
    (so a script passing ``{"node": {"feat": 0}}`` runs on a CPU device too); a cache of rows
    needs a CUDA device."""
    if gpu_cache is None:
        return {}
    if not isinstance(gpu_cache, dict):
        raise TypeError(f"gpu_cache must be a dict, got {type(gpu_cache).__name__}")
    unknown = sorted(map(str, set(gpu_cache) - {"node", "edge"}))
    if unknown:
        raise ValueError(f"gpu_cache keys are 'node' and 'edge', got {unknown}")
    sizes = {}
    for kind in ("node", "edge"):
        entries = gpu_cache.get(kind) or {}
        if not isinstance(entries, dict):
            raise TypeError(f"gpu_cache[{kind!r}] must be a dict of sizes, got {entries!r}")
        for name, rows in entries.items():
            if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 0:
                raise ValueError(f"gpu_cache[{kind!r}][{name!r}] must be an int >= 0, got {rows!r}")
            if rows > 0:
                sizes[(kind, name)] = int(rows)
    if any(kind == "edge" for kind, _ in sizes):
        raise NotImplementedError("gpu_cache for edge data is not implemented")
    if sizes and device.type != "cuda":
        raise ValueError(f"gpu_cache caches rows on a GPU: it needs a CUDA device, got {device}")
    return {name: rows for (_, name), rows in sizes.items()}


def _resolve_block_type(block_type: str) -> Any:
    check_choice("block_type", block_type, _BLOCK_TYPES)
    if block_type == "gnnsys":
        return None
    dgl = _dgl()
    if block_type == "dgl" and dgl is None:
        raise ImportError("block_type='dgl' needs the dgl package, which does not import here")
    return dgl


class _EdgeCore:
    """Edge-wise sampling for link prediction: pairs, negatives, then the node sampler.
    Seeds are CSC positions of the seed edges (unique across edge types)."""

    def __init__(
        self,
        view: _DglGraphView,
        cfg: EdgePredictionSampler,
        block_type: str,
        sample_device: Optional[torch.device] = None,
        uva: bool = False,
    ) -> None:
        self.view = view
        self.cfg = cfg
        make = getattr(cfg.sampler, "make_core", None)  # a whole-subgraph sampler (ShaDow)
        self.node = (
            make(view, block_type, sample_device, uva)
            if make is not None
            else _NodeCore(view, cfg.sampler, block_type, sample_device, uva)
        )
        self.labels = _resolve_names(cfg.prefetch_labels, "prefetch_labels", view, "edge")
        self._label_columns = _LiveColumns(
            view, "edge", [(e, n, "prefetch_labels") for e, n in self.labels]
        )
        k = len(view.edge_types)
        self.reverse_ids: List[Optional[torch.Tensor]] = [None] * k
        rev = cfg.reverse_eids
        if isinstance(rev, Mapping):
            for key, ids in rev.items():
                self.reverse_ids[_edge_type_of(view, key, "reverse_eids")] = ids
        elif rev is not None:
            self.reverse_ids[_only_edge_type(view, "reverse_eids")] = rev
        for e, ids in enumerate(self.reverse_ids):
            if ids is not None and ids.numel() < view.eid_bound(e):
                where = f" of edge type {view.edge_types[e]!r}" if view.typed else ""
                raise ValueError(
                    f"reverse_eids{where} has {ids.numel()} entries; the graph has "
                    f"{view.eid_bound(e)} edge ids{where}"
                )
        self.reverse_types: List[Optional[int]] = [None] * k
        for key, value in (cfg.reverse_etypes or {}).items():
            a = _edge_type_of(view, key, "reverse_etypes")
            b = _edge_type_of(view, value, f"reverse_etypes[{key!r}]")
            self.reverse_types[a] = b

    @property
    def graph(self) -> Any:
        return self.node.graph

    @property
    def label_store(self) -> FeatureStore:
        return self._label_columns.store

    def refresh(self) -> bool:
        """``_NodeCore.refresh``, and the pair graphs' prefetched labels."""
        self._label_columns.refresh()
        return self.node.refresh()

    @property
    def num_inputs(self) -> int:
        return self.view.num_edges

    @property
    def collective(self) -> bool:
        """Whether a batch is a collective (over a DistGraph): see ``_NodeCore``."""
        return bool(getattr(self.node, "collective", False))

    @property
    def lanes(self) -> int:
        return int(getattr(self.node, "lanes", 1))

    def loader_tables(self) -> Dict[str, Any]:
        return self.node.loader_tables()

    def sample(self, seeds: torch.Tensor, generator: Any = None) -> SampledSubgraph:
        """Sample for the seed edges at CSC positions ``seeds``; pairs go in ``metadata``."""
        view = self.view
        if self.collective:  # the edge lookup and the sampling go through the batch's lane
            self.node.sampler.use_key_lane(generator)
        key = key_int(generator)
        pos = seeds.long()
        etype = view.etype_of_pos(pos)
        eid = view.eid_of_pos(pos)
        u, v = view.find_edges(pos)
        k = len(view.edge_types)
        by_type = [torch.nonzero(etype == e).flatten() for e in range(k)] if k > 1 else [None]
        neg = self.cfg.negative_sampler
        nus: List[torch.Tensor] = []
        nvs: List[torch.Tensor] = []
        if neg is not None:
            ours = isinstance(neg, _NegativeSampler)
            user = None if ours else neg(view.user_graph, self._user_ids(eid, by_type))
            for e, et in enumerate(view.edge_types):
                if ours:
                    src = u if by_type[e] is None else u[by_type[e]]
                    nu, nv = neg.in_batch(view, e, src, (key, _SALT_NEG + e))
                else:
                    t_src, t_dst = view.node_type_id(et[0]), view.node_type_id(et[2])
                    nu, nv = self._user_negatives(user, e, t_src, t_dst)
                nus.append(nu)
                nvs.append(nv)
        parts = [u, v] + ([torch.cat(nus), torch.cat(nvs)] if neg is not None else [])
        uniq_t, local = unique_seeds(torch.cat(parts), view.offsets if view.typed else None)
        # (a distributed sampler picks the batch's lane from its SampleKey)
        node_key = generator if self.collective else key
        sub = self.node.sample_excluding(uniq_t, node_key, self._excluded(eid, etype))
        b = pos.numel()
        pairs = []
        for e in range(k):
            sel = by_type[e]
            s, d = local[:b], local[b : 2 * b]
            pairs.append((s, d, eid) if sel is None else (s[sel], d[sel], eid[sel]))
        sub.metadata["pair"] = pairs
        sub.metadata["pair_nodes"] = uniq_t
        if neg is not None:
            nl = local[2 * b :]
            half = nl.numel() // 2
            ns, nd = nl[:half], nl[half:]
            negs, lo = [], 0
            for e in range(k):
                c = nus[e].numel()
                negs.append((ns[lo : lo + c], nd[lo : lo + c]))
                lo += c
            sub.metadata["neg"] = negs
        return sub

    def _user_ids(self, eid: torch.Tensor, by_type: List[Optional[torch.Tensor]]) -> Any:
        """The batch's edge ids as DGL hands them to callbacks (a dict on a heterograph)."""
        if not self.view.typed:
            return eid
        return {
            et: eid[by_type[e]] if by_type[e] is not None else eid
            for e, et in enumerate(self.view.edge_types)
            if by_type[e] is None or by_type[e].numel()
        }

    def _user_negatives(self, user: Any, e: int, t_src: int, t_dst: int):
        view = self.view
        et = view.edge_types[e]
        if view.typed:
            if not isinstance(user, Mapping):
                raise TypeError(
                    "negative_sampler must return a dict {edge type: (src, dst)} on a graph "
                    "with edge types"
                )
            got = None
            for kk, pair in user.items():
                if _edge_type_of(view, kk, "negative_sampler result") == e:
                    got = pair
            if got is None:
                empty = torch.zeros(0, dtype=torch.int64)
                return empty, empty
        else:
            got = user
        nu = _check_seed_ids(f"negative sources of {et}", got[0], view.num_nodes_of(t_src), "node")
        nv = _check_seed_ids(
            f"negative destinations of {et}", got[1], view.num_nodes_of(t_dst), "node"
        )
        if nu.numel() != nv.numel():
            raise ValueError(
                f"negative_sampler returned {nu.numel()} sources and {nv.numel()} destinations"
            )
        return nu + view.offset(t_src), nv + view.offset(t_dst)

    def _excluded(self, eid: torch.Tensor, etype: torch.Tensor) -> Optional[torch.Tensor]:
        """Exclusion keys of the edges to drop from the sampled neighbourhoods."""
        ex = self.cfg.exclude
        view = self.view
        if ex is None:
            return None
        base = view.key_base
        keys = eid + base[etype] if view.typed else eid
        if callable(ex):
            by_type = [torch.nonzero(etype == e).flatten() for e in range(len(view.edge_types))]
            return _exclusion_keys(
                view, ex(self._user_ids(eid, by_type if view.typed else [None])), "exclude(eids)"
            )
        parts = [keys]
        if ex == "reverse_id":
            for e, rev in enumerate(self.reverse_ids):
                sel = etype == e
                if rev is None or not bool(sel.any()):
                    continue
                r = rev[eid[sel]]
                if view.typed:  # an id past its type's range must not name another type's edge
                    r = r[r < view.eid_bound(e)] + base[e]
                parts.append(r)
        elif ex == "reverse_types":
            for e, r in enumerate(self.reverse_types):
                sel = etype == e
                if r is not None and bool(sel.any()):
                    parts.append(eid[sel] + base[r])
        return torch.cat(parts)

    def collate(self, batch: Any) -> tuple:
        """-> (input_nodes, pair_graph, neg_pair_graph, blocks) on the CPU (no negatives:
        (input_nodes, pair_graph, blocks))."""
        sub = batch.subgraph
        view = self.view
        input_nodes, _, blocks = self.node.collate(batch)
        uniq = sub.metadata["pair_nodes"]
        counts, node_ids = _pair_nodes(uniq, view)
        pairs = sub.metadata["pair"]
        rows = {}  # each edge type's parent data rows of the seed edges
        for e, et in enumerate(view.edge_types):
            rows[et] = view.rows_of(view.pos_of_eid(e, pairs[e][2]), pairs[e][2])
        pair = _pair_graph(
            self.node.dgl,
            view,
            {et: (pairs[e][0], pairs[e][1]) for e, et in enumerate(view.edge_types)},
            counts,
            node_ids,
            {et: pairs[e][2] for e, et in enumerate(view.edge_types)},
            rows,
        )
        for e, name in self.labels:
            key = view.edge_key(e, name)
            values = self.label_store.fetch(key, rows[view.edge_types[e]], pin_memory=self.node.pin)
            _assign(pair.edges[view.edge_types[e]].data, name, values)
        if "neg" not in sub.metadata:
            return input_nodes, pair, blocks
        negs = sub.metadata["neg"]
        neg = _pair_graph(
            self.node.dgl,
            view,
            {et: negs[e] for e, et in enumerate(view.edge_types)},
            counts,
            node_ids,
            None,
        )
        return input_nodes, pair, neg, blocks


def _pair_nodes(
    uniq: torch.Tensor, view: _DglGraphView
) -> Tuple[Dict[str, int], Dict[str, torch.Tensor]]:
    """(count, ids within type) of the pair graphs' nodes of each node type."""
    counts, ids = {}, {}
    if len(view.node_types) == 1:
        kind = torch.zeros(uniq.numel(), dtype=torch.int64)
    else:
        kind = torch.searchsorted(view.offsets, uniq, right=True) - 1
    for t, nt in enumerate(view.node_types):
        sel = uniq[kind == t]
        ids[nt] = sel - view.offset(t) if view.offset(t) else sel
        counts[nt] = int(sel.numel())
    return counts, ids


def _pair_graph(
    dgl: Any, view: _DglGraphView, edges, counts, node_ids, edge_ids, edge_rows=None
) -> Any:
    """The pair graph of a batch's positive (``edge_rows``: each edge type's parent data rows)
    or negative edges. As DGL's (a compacted edge subgraph), the positive one reads every
    parent column lazily: ``pair_graph.ndata`` of its nodes, ``edata`` of its edges."""
    it = view.idtype
    lazy = edge_rows is not None and view.lazy_columns
    if dgl is None:
        return PairGraph.hetero(
            edges,
            counts,
            node_ids=node_ids,
            edge_ids=edge_ids,
            idtype=it,
            node_parent={nt: view.ndata_of(t) for t, nt in enumerate(view.node_types)}
            if lazy
            else None,
            edge_parent={
                et: (view.edata_of(e), edge_rows[et]) for e, et in enumerate(view.edge_types)
            }
            if lazy
            else None,
        )
    data = {et: (s.to(it), d.to(it)) for et, (s, d) in edges.items()}
    g = dgl.heterograph(data, num_nodes_dict=counts, idtype=it)
    frames = view.dgl_frames() if lazy else None
    if frames is not None:
        nf, ef = frames
        dgl.utils.set_new_frames(
            g,
            node_frames=[nf[view.node_type_id(nt)].subframe(node_ids[nt]) for nt in g.ntypes],
            edge_frames=[
                ef[view.edge_types.index(tuple(et))].subframe(edge_rows[tuple(et)])
                for et in g.canonical_etypes
            ],
        )
    for nt, ids in node_ids.items():
        g.nodes[nt].data[NID] = ids.to(it)
    if edge_ids is not None:
        for et, ids in edge_ids.items():
            g.edges[et].data[EID] = ids.to(it)
    return g


def _standalone_core(core_class: Any, g: Any, cfg: Any) -> Tuple[Any, Any]:
    """(``g``'s view, a ``_NodeCore`` / ``_EdgeCore`` of ``cfg`` over it) for a batch outside
    a DataLoader (a sampler's ``sample``), sampling on ``g``'s GPU when it is on one."""
    view = _prepare_view(g)
    dev = _graph_device(g)
    return view, core_class(view, cfg, "auto", dev if dev.type == "cuda" else None)


def _run_once(
    core: Any, seeds: torch.Tensor, seed: int, sample: Callable, name: str = "seed_nodes"
) -> Any:
    """One batch of ``seeds`` through the Loader's sample and fetch stages, collated."""
    from gnnsys.loaders.loader import Loader

    class _Once:
        graph = core.graph
        num_inputs = core.num_inputs

        def sample(self, s: torch.Tensor, key: Any) -> SampledSubgraph:
            return sample(s, key)

    if seeds.numel() == 0:
        what = "edge" if name == "seed_edges" else "node"
        raise ValueError(f"{name} is empty: no {what} ids to sample around")
    loader = Loader(_Once(), seeds, batch_size=max(seeds.numel(), 1), seed=seed, prefetch=0,
                    **core.loader_tables())  # fmt: skip
    batch = loader.make_batch(0, 0, seeds, torch.arange(seeds.numel()))
    return core.collate(batch)


# ====================================================================== the DataLoader
def _ddp_shard(
    indices: torch.Tensor, world: int, rank: int, drop_last: bool
) -> Tuple[torch.Tensor, int]:
    """(this rank's contiguous slice of ``indices``, its padded length), as DGL's DDP dataset:
    ``floor(n/world)`` ids per rank with ``drop_last`` else ``ceil(n/world)``, the last ranks
    padding with their own first ids (re-drawn each epoch after shuffling)."""
    n = indices.numel()
    per_rank = n // world if drop_last else math.ceil(n / world)
    lo = min(rank * per_rank, n)
    hi = min(lo + per_rank, n)
    return indices[lo:hi], per_rank


def _pad(local: torch.Tensor, size: int, fallback: torch.Tensor) -> torch.Tensor:
    if local.numel() >= size:
        return local[:size]
    pool = local if local.numel() else fallback
    if pool.numel() == 0:
        return local
    reps = math.ceil((size - local.numel()) / pool.numel())
    return torch.cat([local, pool.repeat(reps)[: size - local.numel()]])


def _move(x: Any, dev: torch.device) -> Any:
    if isinstance(x, list):
        return [_move(b, dev) for b in x]
    if isinstance(x, dict):
        return {k: v.to(dev, non_blocking=True) for k, v in x.items()}
    return x.to(dev, non_blocking=True)


class DataLoader:
    """DGL's ``dgl.dataloading.DataLoader`` on the gnnsys engine.

    Yields ``(input_nodes, output_nodes, blocks)`` for node samplers and
    ``(input_nodes, pair_graph, neg_pair_graph, blocks)`` for ``as_edge_prediction_sampler``
    (then ``indices`` are edge ids). Arguments are DGL's: ``use_ddp`` gives this rank a
    contiguous shard of ``indices`` (padded like DGL unless ``drop_last``); ``device`` is where
    batches go (default: the graph's); ``use_uva=True`` keeps structure and features in host
    memory (pinned in place) and samples and gathers on the CUDA ``device`` (DGL's rules: a CPU
    graph, ``num_workers=0``). A graph on CUDA is sampled on its GPU (the Triton sampler, the
    same batches as the CPU one for a seed); ids are then mapped and blocks assembled on the
    CPU. A case the GPU sampler lacks (fanouts above 1024 without replacement) samples on the
    CPU with a warning.
    torch DataLoader keywords are accepted; ``num_workers`` sets the number of sampling
    threads (gnnsys samples on threads, not processes). gnnsys extras: ``seed`` (default: drawn
    from torch's global RNG, so ``torch.manual_seed`` makes runs repeatable), ``block_type``
    ("auto": DGL blocks when dgl imports, else ``gnnsys.Block``) and ``idtype`` (ids of a
    ``gnnsys.Graph``: torch.int64 by default, or torch.int32; a DGL graph keeps its own).

    ``indices`` are integer node ids (edge ids for edge prediction). On a graph with several
    node types (edge types) it is a dict ``{type: ids}``; as DGL does, the dict's ids are
    concatenated in its order, shuffled together and cut into batches that may mix types,
    and ``output_nodes`` is then a dict holding the types present in the batch. Unknown
    types and ids out of range for their type raise, naming the type; an empty ``indices``
    raises ValueError instead of giving zero batches.

    How DGL's transfer options map onto gnnsys (whose loader threads sample and gather whole
    batches ahead of the caller, ``prefetch_factor`` batches deep, default 2; the copy to
    ``device`` is issued by the caller as it takes each batch, ``non_blocking`` from pinned
    buffers):

    * ``use_prefetch_thread``: True is only allowed for CPU sampling to a CUDA ``device`` (as
      DGL) and changes nothing there: the threads already fetch features ahead. False with
      ``num_workers=0`` runs no thread at all: each batch is sampled, gathered and collated in
      the caller when it asks for it (DGL's behaviour without workers or a prefetch thread;
      same batches, no overlap). With ``num_workers`` > 0 the worker threads still run ahead,
      as DGL's worker processes do whatever this flag says.
    * ``use_alternate_streams`` (None or bool): accepted, no effect. gnnsys issues the copy to
      the device on the caller's current stream; it never uses an alternate stream in this
      front end, so None, True and False give identical batches. (On CPU devices, DGL ignores
      the flag too.)

    A sampler of the user's own (a subclass of DGL's ``Sampler`` / ``BlockSampler``, e.g. a
    LADIES or PinSAGE sampler) is not one gnnsys reproduces: with ``dgl`` importable the call
    returns DGL's own ``dgl.dataloading.DataLoader`` over it, with a warning (the script runs
    as before, at DGL's speed); without ``dgl`` it is a clear TypeError.

    Example:
        >>> sampler = NeighborSampler([5, 10], prefetch_node_feats=["feat"])
        >>> loader = DataLoader(g, train_nids, sampler, batch_size=1024, shuffle=True)
        >>> input_nodes, output_nodes, blocks = next(iter(loader))
        >>> hetero = DataLoader(hg, {"paper": train_nids}, sampler, batch_size=1024)
    """

    def __new__(
        cls,
        graph: Any = None,
        indices: Any = None,
        graph_sampler: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if _is_custom_dgl_sampler(graph_sampler):
            dgl = _dgl()
            name = f"{type(graph_sampler).__module__}.{type(graph_sampler).__qualname__}"
            warnings.warn(
                f"graph_sampler {name} is a sampler of your own, which gnnsys does not "
                "reproduce: this loader is DGL's own dgl.dataloading.DataLoader over it",
                UserWarning,
                stacklevel=2,
            )
            for extra in ("seed", "block_type", "idtype"):  # gnnsys's own keywords
                kwargs.pop(extra, None)
            return dgl.dataloading.DataLoader(graph, indices, graph_sampler, *args, **kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        graph: Any,
        indices: Any,
        graph_sampler: Union[NeighborSampler, EdgePredictionSampler],
        device: Any = None,
        use_ddp: bool = False,
        ddp_seed: int = 0,
        batch_size: int = 1,
        drop_last: bool = False,
        shuffle: bool = False,
        use_prefetch_thread: Optional[bool] = None,
        use_alternate_streams: Optional[bool] = None,
        pin_prefetcher: Optional[bool] = None,
        use_uva: bool = False,
        gpu_cache: Optional[dict] = None,
        **kwargs: Any,
    ) -> None:
        seed = kwargs.pop("seed", None)
        block_type = kwargs.pop("block_type", "auto")
        idtype = kwargs.pop("idtype", None)
        unknown = sorted(set(kwargs) - set(_TORCH_KWARGS))
        if unknown:
            raise TypeError(f"DataLoader got unexpected keyword argument(s) {unknown}")
        num_workers = kwargs.get("num_workers", 0)
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if idtype is not None and idtype not in (torch.int32, torch.int64):
            raise ValueError(f"idtype must be torch.int32 or torch.int64, got {idtype!r}")
        if not isinstance(graph_sampler, (NeighborSampler, EdgePredictionSampler)) and not (
            hasattr(graph_sampler, "make_core")  # loaders/dgl_subgraph.py
        ):
            graph_sampler = _from_dgl_sampler(graph_sampler, "graph_sampler")

        self.graph = graph
        self.graph_sampler = graph_sampler
        self.batch_size = batch_size
        self.drop_last = bool(drop_last)
        self.shuffle = bool(shuffle)
        self.use_ddp = bool(use_ddp)
        self.ddp_seed = ddp_seed
        self.use_uva = bool(use_uva)
        self.num_workers = num_workers
        graph_device = _graph_device(graph)
        if use_uva:
            if graph_device.type != "cpu":
                raise ValueError("Graph must be on CPU if UVA sampling is enabled.")
            if num_workers > 0:
                raise ValueError("num_workers must be 0 if UVA sampling is enabled.")
        elif graph_device.type == "cuda" and num_workers > 0:
            raise ValueError("num_workers must be 0 if graph and indices are on CUDA.")
        if device is None:
            device = graph_sampler.output_device
        if device is None:
            device = "cuda" if use_uva else graph_device
        self.device = data_device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            why = (
                "use_uva=True (GPU sampling from host memory)" if use_uva else f"device={device!r}"
            )
            raise ValueError(f"{why} needs CUDA, which is not available here")
        if use_uva and self.device.type != "cuda":
            raise ValueError(f"use_uva=True needs a CUDA device, got device={self.device}")
        self._view = view = _prepare_view(graph, idtype)
        cpu_sampling_to_gpu = self.device.type == "cuda" and graph_device.type == "cpu"
        for name, flag in (
            ("pin_prefetcher", pin_prefetcher),
            ("use_prefetch_thread", use_prefetch_thread),
            ("use_alternate_streams", use_alternate_streams),
        ):
            if flag is not None and not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be None or a bool, got {flag!r}")
        for name, flag in (
            ("pin_prefetcher", pin_prefetcher),
            ("use_prefetch_thread", use_prefetch_thread),
        ):
            if flag and not cpu_sampling_to_gpu:
                raise ValueError(
                    f"{name}=True is only effective when device=cuda and sampling is "
                    "performed on CPU."
                )
        self.pin_prefetcher = bool(
            cpu_sampling_to_gpu and not use_uva if pin_prefetcher is None else pin_prefetcher
        )
        self.use_prefetch_thread = use_prefetch_thread
        self.use_alternate_streams = use_alternate_streams
        node_cache = _cache_sizes(gpu_cache, self.device)

        is_edge = isinstance(graph_sampler, EdgePredictionSampler)
        what = "edge" if is_edge else "node"
        whole = getattr(graph_sampler, "make_core", None)  # Cluster-GCN, SAINT, ShaDow
        if isinstance(view, _DistDglView) and whole is not None:
            raise NotImplementedError(
                f"{type(graph_sampler).__name__} over a partition (DistGraph): "
                "NeighborSampler / LaborSampler (node-wise or in as_edge_prediction_sampler) only"
            )
        flat_of = getattr(graph_sampler, "flat_indices", None) if whole else None
        flat = (flat_of or (_flat_edge_seeds if is_edge else _flat_node_seeds))(
            view, indices, "indices"
        )
        if flat.ids.numel() == 0:
            raise ValueError(f"indices is empty: no {what} ids, so there is nothing to batch")
        self.indices = flat.ids  # global node ids / CSC positions of the seed edges
        on = _sampling_device(graph_device, self.use_uva, self.device)
        if is_edge:
            self._core: Union[_NodeCore, _EdgeCore] = _EdgeCore(
                view, graph_sampler, block_type, on, self.use_uva
            )
        elif whole is not None:
            self._core = whole(view, block_type, on, self.use_uva)
        else:
            self._core = _NodeCore(view, graph_sampler, block_type, on, self.use_uva)
            self._core.output_types = flat.dict_keys
        self._cache_rows = node_cache
        if use_uva or node_cache:
            self._device_tables(self._cache_rows)
        node_core = self._node_core
        node_core.pin = self.pin_prefetcher and torch.cuda.is_available()
        prefetch = kwargs.get("prefetch_factor")
        if prefetch is not None and (
            isinstance(prefetch, bool) or not isinstance(prefetch, (int, np.integer))
            or prefetch < 0
        ):  # fmt: skip
            raise ValueError(f"prefetch_factor must be an int >= 0, got {prefetch!r}")
        self._prefetch = 2 if prefetch is None else int(prefetch)
        if use_prefetch_thread is False and num_workers == 0:
            self._prefetch = 0  # no thread at all: every batch is built in the caller
        self._threads = num_workers if num_workers > 0 else None

        if seed is None:
            gen = kwargs.get("generator")
            seed = (
                gen.initial_seed()
                if isinstance(gen, torch.Generator)
                else int(torch.randint(0, 2**62, (1,)).item())
            )
        self.seed = int(seed)
        self._epoch = 0
        self._workers: Optional[WorkerPool] = None  # threads kept across epochs (first iter)
        self._worker_cores: Optional[List[Set[int]]] = None  # (enable_cpu_affinity)
        ids = flat.ids
        if self.use_ddp:
            import torch.distributed as dist

            if not (dist.is_available() and dist.is_initialized()):
                raise RuntimeError(
                    "use_ddp=True needs torch.distributed to be initialized "
                    "(torch.distributed.init_process_group) before building the DataLoader"
                )
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
            self._local, self._local_size = _ddp_shard(
                ids, self.world_size, self.rank, self.drop_last
            )
        else:
            self.rank, self.world_size = 0, 1
            self._local, self._local_size = ids, ids.numel()

    @property
    def _node_core(self) -> _NodeCore:
        core = self._core
        return core.node if isinstance(core, _EdgeCore) else core

    def _device_tables(self, cache_rows: Dict[Any, int]) -> None:
        """Prefetched node tables read from host memory by the GPU (``use_uva``), with a GPU
        cache of the hottest rows (highest in-degree) where ``gpu_cache`` asks for one
        (``gpu_cache={"node": {name: rows}}``, names or typed keys ``(ntype, name)``)."""
        core = self._node_core
        view = self._view
        unknown = sorted(set(map(str, cache_rows)) - set(map(str, core.node_store.keys())))
        if unknown:
            raise ValueError(f"gpu_cache names {unknown}, which are not prefetched node data")
        try:
            from gnnsys.unified_tensor import unified
        except ImportError:  # pragma: no cover - part of the package
            unified = None
        deg = view.graph.in_degrees()
        for t, name in core.node_feats + core.labels:
            k = view.node_key(t, name)
            table = core.node_store[k]
            rows = cache_rows.get(k, 0)
            if unified is not None and isinstance(table, torch.Tensor) and table.is_cpu:
                n = view.num_nodes_of(t)
                frac = min(1.0, rows / max(n, 1)) if rows else None
                order = deg[view.offset(t) : view.offset(t) + n] if rows else None
                table = unified(table, cache=frac, cache_order=order)
            core.device_tables[k] = table

    @property
    def dataset(self) -> torch.Tensor:
        """The ids this loader batches (this rank's share under ``use_ddp``), as DGL's
        ``DataLoader.dataset`` holds them: ``len(loader.dataset)`` is the number of seeds.
        Global ids: on a graph with several node types, type offset + id within the type."""
        return self._local

    # ------------------------------------------------------------------ iteration
    def __len__(self) -> int:
        n = self._local_size
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch number, which (with the seed) fixes the shuffle and the samples."""
        self._epoch = int(epoch)

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        local = self._local
        if self.shuffle:
            gen = _torch_generator(SampleKey(self.seed, epoch, self.rank).as_int(), 2)
            local = local[torch.randperm(local.numel(), generator=gen)]
        if self.use_ddp and not self.drop_last:
            local = _pad(local, self._local_size, self.indices)
        return local

    def __iter__(self) -> Iterator[tuple]:
        from gnnsys.loaders.loader import Loader

        epoch = self._epoch
        self._epoch += 1
        core = self._core
        if core.refresh() and self._node_core.device_tables:  # a node column was replaced
            self._device_tables(self._cache_rows)
        engine = Loader(
            core,
            self._epoch_order(epoch),
            batch_size=self.batch_size,
            drop_last=self.drop_last,
            seed=self.seed,
            num_threads=self._threads,
            prefetch=self._prefetch,
            collate=core.collate,
            pin_memory=self._node_core.pin,
            **core.loader_tables(),
        )
        self._workers = kept_for(self, self._workers)  # the epochs' engines share them
        engine.worker_cores = self._worker_cores
        engine.run_on(self._workers)
        engine.set_epoch(epoch)
        return self._finish_all(iter(engine))

    @contextlib.contextmanager
    def enable_cpu_affinity(
        self,
        loader_cores: Optional[Sequence[int]] = None,
        compute_cores: Optional[Sequence[int]] = None,
        verbose: bool = True,
    ) -> Iterator[None]:
        """DGL's CPU affinity helper, as a context manager around the training loop: inside
        it the calling thread (and torch's threads, ``len(compute_cores)`` of them) runs on
        ``compute_cores`` and worker thread i of this loader on ``loader_cores[i]``. Defaults
        as DGL's: the first ``num_workers`` CPUs this process may use for the workers, the
        rest for compute. The workers here are threads of this process (DGL's are processes),
        pinned as each iteration starts; on leaving, the old affinity and thread count come
        back. On a non-CPU device it does nothing, as DGL's.

        Example:
            >>> loader = DataLoader(g, train_nids, sampler, batch_size=1024, num_workers=1)
            >>> with loader.enable_cpu_affinity():
            ...     for input_nodes, output_nodes, blocks in loader: ...
        """
        if self.device.type != "cpu":
            yield
            return
        if self.num_workers < 1:
            raise ValueError(
                "enable_cpu_affinity needs at least one DataLoader worker (num_workers > 0)"
            )
        available = sorted(os.sched_getaffinity(0))
        loaders = check_cores("loader_cores", loader_cores, available)
        compute = check_cores("compute_cores", compute_cores, available)
        if loaders and len(loaders) != self.num_workers:
            raise ValueError(
                f"loader_cores has {len(loaders)} CPUs for num_workers={self.num_workers}: "
                "one per worker"
            )
        if not loaders or not compute:
            if len(available) < self.num_workers:
                raise ValueError(
                    f"num_workers={self.num_workers} but this process may use only "
                    f"{len(available)} CPUs ({available})"
                )
            loaders = loaders or available[: self.num_workers]
            compute = [c for c in available if c not in loaders]
        compute = compute or available  # every CPU went to the workers: share them all
        old_mask, old_threads = os.sched_getaffinity(0), torch.get_num_threads()
        try:
            os.sched_setaffinity(0, compute)
            torch.set_num_threads(len(compute))
            self._worker_cores = [{c} for c in loaders]
            if verbose:
                print(
                    f"{self.num_workers} DL workers are assigned to cpus {loaders}, main "
                    f"process will use cpus {compute}"
                )
            yield
        finally:
            os.sched_setaffinity(0, old_mask)
            torch.set_num_threads(old_threads)
            self._worker_cores = [set(old_mask)]  # the kept workers' next pass: unpinned

    def _finish_all(self, batches: Iterator[tuple]) -> Iterator[tuple]:
        dev = self.device
        node_core = self._node_core
        for out in batches:
            if dev.type != "cpu":
                single = not isinstance(out, tuple)  # a ClusterGCN / SAINT subgraph
                out = _move(out, dev) if single else tuple(_move(x, dev) for x in out)
            if node_core.device_tables:
                node_core.gather_on_device(out[0], out[1], out[-1])
            yield out

    def __repr__(self) -> str:
        return (
            f"DataLoader(num_indices={self.indices.numel()}, batch_size={self.batch_size}, "
            f"sampler={self.graph_sampler!r}, device={self.device})"
        )


NodeDataLoader = DataLoader


def _is_custom_dgl_sampler(s: Any) -> bool:
    """Whether ``s`` is a DGL ``Sampler`` that gnnsys does not reproduce (a user's subclass,
    or a DGL class without a gnnsys counterpart), with ``dgl`` importable."""
    if s is None or isinstance(s, (NeighborSampler, EdgePredictionSampler)):
        return False
    if hasattr(s, "make_core"):  # loaders/dgl_subgraph.py's
        return False
    dgl = _dgl()
    if dgl is None or not isinstance(s, dgl.dataloading.Sampler):
        return False
    try:  # DGL's own samplers that gnnsys reads by their settings (a cheap attribute read)
        _from_dgl_sampler(s, "graph_sampler")
    except TypeError:
        return True
    return False


def _from_dgl_sampler(s: Any, arg: str) -> Any:
    """DGL's own NeighborSampler / MultiLayerNeighborSampler / MultiLayerFullNeighborSampler,
    and LaborSampler (LABOR-0 / LABOR-i), read by their settings; any other sampler is refused, naming
    its class (a subclass with its own sample_blocks...: they sample differently, and training
    on uniform neighbour samples instead would change the results unannounced). DGL's
    ClusterGCNSampler, SAINTSampler and ShaDowKHopSampler map to loaders/dgl_subgraph.py's,
    and DGL's EdgePredictionSampler (``as_edge_prediction_sampler``) of any of these to ours,
    its Uniform / GlobalUniform negative samplers too."""
    from gnnsys.loaders.dgl_subgraph import from_dgl_sampler

    whole = from_dgl_sampler(s)  # ClusterGCNSampler, SAINTSampler, ShaDowKHopSampler
    if whole is not None:
        return whole
    cls = type(s)
    from_dgl = cls.__module__.split(".")[0] == "dgl"
    if from_dgl and cls.__name__ == "EdgePredictionSampler" and hasattr(s, "sampler"):
        # DGL's as_edge_prediction_sampler(...): the same wrapper around our twin of its
        # sampler (a sampler we do not reproduce raises TypeError here, as unwrapped)
        return EdgePredictionSampler(
            _from_dgl_sampler(s.sampler, f"{arg}.sampler"),
            exclude=s.exclude,
            reverse_eids=s.reverse_eids,
            reverse_etypes=s.reverse_etypes,
            negative_sampler=_from_dgl_negative_sampler(s.negative_sampler),
            prefetch_labels=s.prefetch_labels or None,
        )
    if from_dgl and cls.__name__ == "LaborSampler":
        cnt = getattr(s, "cnt", None)
        return LaborSampler(
            list(s.fanouts),
            edge_dir=getattr(s, "edge_dir", "in"),
            prob=getattr(s, "prob", None),
            importance_sampling=getattr(s, "importance_sampling", 0),
            layer_dependency=getattr(s, "layer_dependency", False),
            batch_dependency=int(cnt[1]) if cnt is not None else 1,
            prefetch_node_feats=getattr(s, "prefetch_node_feats", None) or None,
            prefetch_labels=getattr(s, "prefetch_labels", None) or None,
            prefetch_edge_feats=getattr(s, "prefetch_edge_feats", None) or None,
            output_device=getattr(s, "output_device", None),
        )
    if from_dgl and cls.__name__ in _DGL_SAMPLERS:
        return NeighborSampler(
            list(s.fanouts),
            edge_dir=getattr(s, "edge_dir", "in"),
            prob=getattr(s, "prob", None),
            replace=getattr(s, "replace", False),
            prefetch_node_feats=getattr(s, "prefetch_node_feats", None) or None,
            prefetch_labels=getattr(s, "prefetch_labels", None) or None,
            prefetch_edge_feats=getattr(s, "prefetch_edge_feats", None) or None,
            output_device=getattr(s, "output_device", None),
        )
    name = f"{cls.__module__}.{cls.__qualname__}"
    hint = (
        "; gnnsys reproduces only DGL's NeighborSampler, MultiLayerNeighborSampler and "
        "MultiLayerFullNeighborSampler (use gnnsys.loaders.dgl.as_edge_prediction_sampler for "
        "edge prediction)"
        if from_dgl
        else ""
    )
    raise TypeError(
        f"{arg} must be one of gnnsys.loaders.dgl's samplers (NeighborSampler, "
        "MultiLayerFullNeighborSampler, LaborSampler, ClusterGCNSampler, SAINTSampler, "
        "ShaDowKHopSampler, or as_edge_prediction_sampler(...) of one), got "
        f"{name}, which gnnsys does not implement{hint}; a sampler of your own runs on DGL's "
        "dgl.dataloading.DataLoader (gnnsys's DataLoader hands it there when dgl imports)"
    )


def _from_dgl_negative_sampler(neg: Any) -> Any:
    """DGL's ``PerSourceUniform`` (``Uniform``) and ``GlobalUniform`` as ours (drawn from the
    DataLoader's counter-based streams); anything else is kept and called as DGL calls it."""
    cls = type(neg)
    if neg is None or cls.__module__.split(".")[0] != "dgl":
        return neg
    if cls.__name__ in ("PerSourceUniform", "Uniform"):
        return Uniform(neg.k)
    if cls.__name__ == "GlobalUniform":
        return GlobalUniform(neg.k, neg.exclude_self_loops, neg.replace)
    return neg


# The whole-subgraph samplers (Cluster-GCN, GraphSAINT, ShaDow-KHop) live in their own module,
# which builds on the helpers above; exported here beside NeighborSampler.
from gnnsys.loaders.dgl_subgraph import (  # noqa: E402, F401
    ClusterGCNSampler,
    SAINTSampler,
    ShaDowKHopSampler,
)

__all__ += ["ClusterGCNSampler", "SAINTSampler", "ShaDowKHopSampler"]

# DGL's own classes and helpers under their DGL names, for scripts that subclass them or
# write their own sampler (Sampler, BlockSampler, the set_*_lazy_features helpers and
# LazyFeature: DataLoader hands such a sampler to DGL's DataLoader), batch whole graphs
# (GraphDataLoader, the collators) or run DGL's distributed loaders: resolved on first use,
# as importing dgl is slow.
_DGL_OWN = (
    "Sampler",
    "BlockSampler",
    "GraphDataLoader",
    "LazyFeature",
    "set_node_lazy_features",
    "set_edge_lazy_features",
    "set_src_lazy_features",
    "set_dst_lazy_features",
    "SpotTarget",
    "NodeCollator",
    "EdgeCollator",
    "GraphCollator",
    "DistDataLoader",
    "DistNodeDataLoader",
    "DistEdgeDataLoader",
)


def __getattr__(name: str) -> Any:
    if name in _DGL_OWN:
        dgl = _dgl()
        if dgl is None:
            raise AttributeError(
                f"gnnsys.loaders.dgl.{name} is DGL's own dgl.dataloading.{name}, and dgl does "
                "not import here"
            )
        return getattr(dgl.dataloading, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
