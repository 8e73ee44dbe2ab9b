"""DGL drop-in: swap ``dgl.dataloading`` for ``gnnsys.loaders.dgl`` and keep the training script.

``DataLoader(graph, indices, graph_sampler, ...)`` yields ``(input_nodes, output_nodes, blocks)``
(``(input_nodes, pair_graph, neg_pair_graph, blocks)`` for edge prediction) with DGL's
signatures and conventions: fanouts list the input layer first, ``blocks[0]`` is the input
layer, each block's destination nodes are the first of its source nodes, prefetched features
land in ``blocks[0].srcdata``, labels in ``blocks[-1].dstdata``, and ``"_ID"`` columns hold
global ids. The sampling, batching, threading and device copies are the one gnnsys ``Loader``
engine (numba kernels on threads, no worker processes); this module only translates.

``graph`` is a DGL graph (when ``dgl`` imports) or a ``gnnsys.Graph`` carrying ``ndata`` /
``edata`` dicts (``edata`` in the Graph's CSC order, as ``Graph.from_dgl`` stores it). Blocks
are real DGL blocks when ``dgl`` imports, else ``gnnsys.Block`` with the same API.

Example:
    >>> from gnnsys.loaders import dgl as dgl_loading        # was: dgl.dataloading
    >>> sampler = dgl_loading.NeighborSampler([5, 10, 15], prefetch_node_feats=["feat"],
    ...                                       prefetch_labels=["label"])
    >>> loader = dgl_loading.DataLoader(g, train_nids, sampler, batch_size=1024, shuffle=True)
    >>> for input_nodes, output_nodes, blocks in loader:
    ...     logits = model(blocks, blocks[0].srcdata["feat"])
    ...     loss = F.cross_entropy(logits, blocks[-1].dstdata["label"])
"""

from __future__ import annotations

import contextlib
import math
import types
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from gnnsys._checks import check_choice, check_index
from gnnsys.block import (
    EID,
    NID,
    Block,
    ETypeLike,
    _Frame,
    _scope,
    _select,
    check_etype,
    check_ntype,
    edge_view,
)
from gnnsys.features import FeatureStore
from gnnsys.graph import Graph
from gnnsys.loaders.base import SampledSubgraph, SampleKey

__all__ = [
    "DataLoader",
    "NodeDataLoader",
    "NeighborSampler",
    "MultiLayerFullNeighborSampler",
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
def _check_names(name: str, value: Any) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of feature names, got {value!r}")
    for v in value:
        if not isinstance(v, str):
            raise TypeError(f"{name} must hold str feature names, got {v!r}")
    return list(value)


class NeighborSampler:
    """DGL's ``NeighborSampler``: sample ``fanouts[l]`` in-neighbours per node for layer l.

    Args:
        fanouts: one int per layer, **input layer first** (DGL's order); -1 takes every
            neighbour. ``[5, 10]`` samples 10 neighbours of each seed, then 5 of every node.
        edge_dir: ``"in"`` (messages flow along edges, as DGL's default). ``"out"`` is not
            implemented (NotImplementedError).
        prob: name of a non-negative edge-data column to sample proportionally to (a bool
            column acts as ``mask``); zero-probability edges are never drawn.
        mask: name of a bool edge-data column; only edges where it is True are sampled.
        replace: sample with replacement.
        prefetch_node_feats: node-data names gathered into ``blocks[0].srcdata``.
        prefetch_labels: node-data names gathered into ``blocks[-1].dstdata``.
        prefetch_edge_feats: edge-data names gathered into every ``block.edata``.
        output_device: where blocks go when the DataLoader's ``device`` is not given.

    Example:
        >>> sampler = NeighborSampler([10, 15], prefetch_node_feats=["feat"])
    """

    def __init__(
        self,
        fanouts: Sequence[int],
        edge_dir: str = "in",
        prob: Optional[str] = None,
        mask: Optional[str] = None,
        replace: bool = False,
        prefetch_node_feats: Optional[Sequence[str]] = None,
        prefetch_labels: Optional[Sequence[str]] = None,
        prefetch_edge_feats: Optional[Sequence[str]] = None,
        output_device: Any = None,
    ) -> None:
        if isinstance(fanouts, Mapping):
            raise NotImplementedError(
                "per-edge-type fanouts (a dict) are for heterographs, which gnnsys does not "
                "support; give one int per layer"
            )
        if isinstance(fanouts, torch.Tensor):
            fanouts = fanouts.tolist()
        if not isinstance(fanouts, (list, tuple)):
            raise TypeError(f"fanouts must be a list of ints (one per layer), got {fanouts!r}")
        if len(fanouts) == 0:
            raise ValueError("fanouts is empty: give one fanout per layer, e.g. [15, 10, 5]")
        for i, f in enumerate(fanouts):
            if isinstance(f, bool) or not isinstance(f, (int, np.integer)):
                raise TypeError(f"fanouts[{i}] must be an int, got {f!r}")
            if f < -1:
                raise ValueError(f"fanouts[{i}] = {f}; fanouts must be >= -1 (-1 = all)")
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
        self.fanouts = [int(f) for f in fanouts]
        self.edge_dir = edge_dir
        self.prob = prob
        self.mask = mask
        self.replace = bool(replace)
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

    def sample(
        self, g: Any, seed_nodes: Any, exclude_eids: Any = None, *, seed: int = 0
    ) -> Tuple[torch.Tensor, torch.Tensor, list]:
        """Sample one batch outside a DataLoader: ``(input_nodes, output_nodes, blocks)``.

        Example:
            >>> input_nodes, output_nodes, blocks = sampler.sample(g, torch.tensor([0, 5]))
        """
        src = _prepare_source(g)
        core = _NodeCore(src, self, block_type="auto")
        seeds = check_index("seed_nodes", seed_nodes, src.num_nodes, device=None, exc=IndexError)
        sub = core.sample(seeds.cpu(), SampleKey(seed=seed))
        if exclude_eids is not None:
            sub = _drop_edges(sub, _as_id_set(exclude_eids, "exclude_eids"))
        return core.collate(sub)

    sample_blocks = sample


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


class Uniform:
    """Negative sampler: ``k`` corrupted pairs ``(u, v')`` per edge ``(u, v)``, ``v'`` uniform
    over all nodes (DGL's ``negative_sampler.Uniform`` / ``PerSourceUniform``).

    Example:
        >>> neg = negative_sampler.Uniform(5)
    """

    def __init__(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        self.k = int(k)

    def __call__(self, g: Any, eids: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        """DGL's call form: negatives for edge ids ``eids`` of ``g`` (torch's global RNG)."""
        src_graph = _prepare_source(g)
        ids = check_index("eids", eids, src_graph.edge_id_bound, device=None, exc=IndexError)
        u, _ = src_graph.find_edges(ids.cpu())
        return self.generate(u, src_graph.num_nodes, None)

    def generate(
        self, src: torch.Tensor, num_nodes: int, generator: Optional[torch.Generator]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(src repeated k times, uniform destinations) for the given positive sources."""
        neg_src = src.repeat_interleave(self.k)
        neg_dst = torch.randint(0, max(num_nodes, 1), (neg_src.numel(),), generator=generator)
        return neg_src, neg_dst


negative_sampler = types.SimpleNamespace(Uniform=Uniform, PerSourceUniform=Uniform)
negative_sampler.__doc__ = "Negative samplers for link prediction (DGL's module of that name)."

_EXCLUDE = (None, "self", "reverse_id")


class EdgePredictionSampler:
    """Edge-wise wrapper of a node sampler (build it with ``as_edge_prediction_sampler``)."""

    def __init__(
        self,
        sampler: NeighborSampler,
        exclude: Union[None, str, Callable] = None,
        reverse_eids: Any = None,
        reverse_etypes: Any = None,
        negative_sampler: Any = None,
        prefetch_labels: Optional[Sequence[str]] = None,
    ) -> None:
        if not isinstance(sampler, NeighborSampler):
            raise TypeError(
                f"sampler must be a gnnsys.loaders.dgl.NeighborSampler, got {type(sampler).__name__}"
            )
        if exclude == "reverse_types" or reverse_etypes is not None:
            raise NotImplementedError("exclude='reverse_types' needs heterographs (unsupported)")
        if not callable(exclude) and exclude not in _EXCLUDE:
            raise ValueError(
                f"exclude must be None, 'self', 'reverse_id' or a callable, got {exclude!r}"
            )
        if exclude == "reverse_id" and reverse_eids is None:
            raise ValueError("exclude='reverse_id' needs reverse_eids (edge id -> reverse id)")
        if negative_sampler is not None and not callable(negative_sampler):
            raise TypeError(f"negative_sampler must be callable, got {negative_sampler!r}")
        self.sampler = sampler
        self.exclude = exclude
        self.reverse_eids = (
            check_index("reverse_eids", reverse_eids, None, device=None).cpu()
            if reverse_eids is not None
            else None
        )
        self.negative_sampler = negative_sampler
        self.prefetch_labels = _check_names("prefetch_labels", prefetch_labels)
        self.output_device = sampler.output_device

    def __repr__(self) -> str:
        return (
            f"EdgePredictionSampler({self.sampler!r}, exclude={self.exclude!r}, "
            f"negative_sampler={self.negative_sampler!r})"
        )


def as_edge_prediction_sampler(
    sampler: NeighborSampler,
    exclude: Union[None, str, Callable] = None,
    reverse_eids: Any = None,
    reverse_etypes: Any = None,
    negative_sampler: Any = None,
    prefetch_labels: Optional[Sequence[str]] = None,
) -> EdgePredictionSampler:
    """Turn a node sampler into an edge sampler for link prediction (DGL's function).

    Each batch of edge ids yields ``(input_nodes, pair_graph, neg_pair_graph, blocks)``
    (without ``negative_sampler``: ``(input_nodes, pair_graph, blocks)``); the pair graphs
    share one compacted node set whose ids are ``pair_graph.ndata["_ID"]``, which are the
    seeds of the blocks. ``exclude``: None, ``"self"`` (drop the batch's edges from the
    sampled neighbourhoods), ``"reverse_id"`` (also their reverses ``reverse_eids[e]``) or a
    callable ``eids -> eids to drop``. Excluded edges are removed after sampling, so with a
    finite fanout a node touching one may keep fewer than ``fanout`` neighbours (DGL draws
    among the others); with fanout -1 the result is DGL's.

    Example:
        >>> sampler = as_edge_prediction_sampler(NeighborSampler([10, 10]), exclude="self",
        ...                                      negative_sampler=negative_sampler.Uniform(5))
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
class _Source:
    """The user's graph as the samplers need it: CSC structure plus its node and edge data.

    ``graph.edge_ids`` (or the CSC position when None) is the user's edge id; ``edata`` rows
    are indexed by edge id for a DGL graph and by CSC position for a ``gnnsys.Graph``.
    """

    def __init__(self, user_graph: Any, graph: Graph, ndata: Any, edata: Any, by_eid: bool):
        self.user_graph = user_graph
        self.graph = graph
        self.ndata = ndata
        self.edata = edata
        self.edata_by_eid = by_eid
        self.dgl_graph = user_graph if _is_dgl_graph(user_graph) else None
        self.num_nodes = graph.num_nodes
        self.num_edges = graph.num_edges
        self._cache: Dict[Any, Any] = {}
        self._pos_of_eid: Optional[torch.Tensor] = None

    @property
    def device(self) -> torch.device:
        return _graph_device(self.user_graph)

    def dgl_frames(self) -> Optional[Tuple[Any, Any]]:
        """DGL ``Frame``s of the node and edge data (for lazy block columns), or None."""
        if "dgl_frames" not in self._cache:
            frames = None
            try:
                if self.dgl_graph is not None:
                    frames = (self.dgl_graph._node_frames[0], self.dgl_graph._edge_frames[0])
                else:
                    from dgl.frame import Frame

                    num_e = self.edge_id_bound if self.edata_by_eid else self.num_edges
                    frames = (
                        Frame(dict(self.ndata), num_rows=self.num_nodes),
                        Frame(dict(self.edata), num_rows=num_e),
                    )
            except (ImportError, AttributeError, TypeError):
                frames = None  # a dgl without these internals: only prefetched columns
            self._cache["dgl_frames"] = frames
        return self._cache["dgl_frames"]

    @property
    def edge_id_bound(self) -> int:
        """Edge ids are ``0..edge_id_bound-1``."""
        eids = self.graph.edge_ids
        if eids is None:
            return self.num_edges
        return int(eids.max()) + 1 if eids.numel() else 0

    def eid_of_pos(self, pos: torch.Tensor) -> torch.Tensor:
        eids = self.graph.edge_ids
        return eids[pos] if eids is not None else pos

    def edata_rows(self, pos: torch.Tensor) -> torch.Tensor:
        return self.eid_of_pos(pos) if self.edata_by_eid else pos

    def column_in_csc(self, name: str) -> torch.Tensor:
        """Edge-data column ``name`` as a CPU tensor in CSC order."""
        if name not in self.edata:
            raise ValueError(
                f"edge data {name!r} not found; the graph's edata has {list(self.edata.keys())}"
            )
        col = torch.as_tensor(self.edata[name]).cpu()
        if col.dim() != 1 or col.shape[0] != (
            self.edge_id_bound if self.edata_by_eid else self.num_edges
        ):
            raise ValueError(f"edge data {name!r} must be 1-D with one entry per edge")
        if self.edata_by_eid and self.graph.edge_ids is not None:
            col = col[self.graph.edge_ids]
        return col

    def pos_of_eid(self, eids: torch.Tensor) -> torch.Tensor:
        """CSC position of each edge id (the first, when ids repeat); IndexError if absent."""
        if self.graph.edge_ids is None:
            return eids
        if self._pos_of_eid is None:
            table = torch.full((self.edge_id_bound,), -1, dtype=torch.int64)
            ids = self.graph.edge_ids
            ok = ids >= 0
            pos = torch.arange(ids.numel(), dtype=torch.int64)
            table.scatter_reduce_(0, ids[ok], pos[ok], reduce="amin", include_self=False)
            self._pos_of_eid = table
        pos = self._pos_of_eid[eids]
        if pos.numel() and int(pos.min()) < 0:
            bad = int(eids[pos < 0][0])
            raise IndexError(f"edge id {bad} does not exist in the graph")
        return pos

    def find_edges(self, eids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(src, dst) global node ids of edge ids ``eids``."""
        pos = self.pos_of_eid(eids)
        src = self.graph.indices[pos].long()
        dst = torch.searchsorted(self.graph.indptr, pos, right=True) - 1
        return src, dst

    def sampling_graph(self, prob: Optional[str], mask: Optional[str]):
        """(Graph to sample from, its CSC position -> our CSC position map or None, weighted)."""
        key = (prob, mask)
        if key not in self._cache:
            self._cache[key] = self._build_sampling_graph(prob, mask)
        return self._cache[key]

    def _build_sampling_graph(self, prob: Optional[str], mask: Optional[str]):
        g = self.graph
        keep: Optional[torch.Tensor] = None
        weight: Optional[torch.Tensor] = None
        if mask is not None:
            keep = self.column_in_csc(mask)
            if keep.dtype != torch.bool:
                raise ValueError(f"mask {mask!r} must be a bool edge column, got {keep.dtype}")
        if prob is not None:
            p = self.column_in_csc(prob)
            if p.dtype == torch.bool:
                keep = p
            else:
                if not p.dtype.is_floating_point:
                    p = p.double()
                if p.numel() and (not bool(torch.isfinite(p).all()) or float(p.min()) < 0):
                    raise ValueError(f"prob {prob!r} must hold finite values >= 0")
                weight = p
        indptr, indices, pos_map = g.indptr, g.indices, None
        if keep is not None:
            pos_map = torch.nonzero(keep).flatten()
            cum = torch.zeros(keep.numel() + 1, dtype=torch.int64)
            torch.cumsum(keep.long(), 0, out=cum[1:])
            indptr = cum[g.indptr]
            indices = indices[keep]
        sg = Graph(indptr, indices, edge_ids=None, edge_weight=weight, validate=False)
        return sg, pos_map, weight is not None


_SOURCE_ATTR = "_gnnsys_dgl_source"


def _prepare_source(g: Any) -> _Source:
    """Wrap the user's graph (a DGL graph is converted to CSC once and the result kept on it)."""
    if isinstance(g, _Source):
        return g
    if isinstance(g, Graph):
        if g.indptr.device.type != "cpu":
            cpu = Graph(g.indptr.cpu(), g.indices.cpu(), edge_ids=_cpu(g.edge_ids), validate=False)
        else:
            cpu = g
        return _Source(g, cpu, g.ndata, g.edata, by_eid=False)
    if not _is_dgl_graph(g):
        raise TypeError(f"graph must be a gnnsys.Graph or a DGL graph, got {type(g).__name__}")
    if len(g.ntypes) != 1 or len(g.canonical_etypes) != 1:
        raise NotImplementedError(
            f"heterographs are not supported (node types {g.ntypes}, edge types {g.etypes})"
        )
    cached = getattr(g, _SOURCE_ATTR, None)
    if cached is not None and (cached.num_nodes, cached.num_edges) == (
        g.num_nodes(),
        g.num_edges(),
    ):
        return cached
    u, v = g.edges(order="eid")
    ei = torch.stack([u.long().cpu(), v.long().cpu()])
    src = _Source(g, Graph.from_edge_index(ei, g.num_nodes()), g.ndata, g.edata, by_eid=True)
    with contextlib.suppress(AttributeError, TypeError):
        setattr(g, _SOURCE_ATTR, src)  # a reference cycle the garbage collector frees
    return src


def _graph_device(g: Any) -> torch.device:
    if isinstance(g, Graph):
        return g.indptr.device
    if _is_dgl_graph(g):
        return torch.device(g.device)
    raise TypeError(f"graph must be a gnnsys.Graph or a DGL graph, got {type(g).__name__}")


def _cpu(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return t.cpu() if t is not None else None


# ====================================================================== pair graphs
class PairGraph:
    """The graph of a batch's positive (or negative) edges over one compacted node set, as
    DGL's ``pair_graph``: ``ndata["_ID"]`` global node ids, ``edata["_ID"]`` (positives) the
    seed edge ids, edges in batch order. Homogeneous, as ``gnnsys.Block``: ``ntype`` /
    ``etype`` arguments accept None or ``"_N"`` / ``"_E"`` and raise ValueError otherwise.

    Example:
        >>> pg = PairGraph(torch.tensor([0, 1]), torch.tensor([2, 3]), 4)
        >>> pg.edges()
        (tensor([0, 1]), tensor([2, 3]))
    """

    is_block = False
    ntypes = ["_N"]
    etypes = ["_E"]
    canonical_etypes = [("_N", "_E", "_N")]
    idtype = torch.int64

    def __init__(
        self,
        src: torch.Tensor,
        dst: torch.Tensor,
        num_nodes: int,
        *,
        node_ids: Optional[torch.Tensor] = None,
        edge_ids: Optional[torch.Tensor] = None,
    ) -> None:
        self._src = src
        self._dst = dst
        self._num_nodes = int(num_nodes)
        self._nframe = _Frame(self._num_nodes, src.device, what="node")
        self._eframe = _Frame(src.numel(), src.device, what="edge")
        if node_ids is not None:
            self._nframe._set_inherited(NID, node_ids.to(src.device))
        if edge_ids is not None:
            self._eframe._set_inherited(EID, edge_ids.to(src.device))

    @property
    def device(self) -> torch.device:
        return self._src.device

    def num_nodes(self, ntype: Optional[str] = None) -> int:
        check_ntype(ntype)
        return self._num_nodes

    num_src_nodes = num_dst_nodes = number_of_nodes = num_nodes

    def num_edges(self, etype: ETypeLike = None) -> int:
        check_etype(etype)
        return self._src.numel()

    number_of_edges = num_edges

    @property
    def ndata(self) -> _Frame:
        return self._nframe

    srcdata = dstdata = ndata

    @property
    def edata(self) -> _Frame:
        return self._eframe

    def nodes(self, ntype: Optional[str] = None) -> torch.Tensor:
        check_ntype(ntype)
        return torch.arange(self._num_nodes, dtype=torch.int64, device=self.device)

    def edges(self, form: str = "uv", order: str = "eid", etype: ETypeLike = None) -> Any:
        """Edges as compacted node ids: 'uv' -> (src, dst), 'eid', or 'all' -> (src, dst, eid)."""
        check_etype(etype)
        return edge_view(self._src, self._dst, form, order)

    all_edges = edges

    def in_degrees(self, v: Any = None, etype: ETypeLike = None) -> Any:
        """In-degree of nodes ``v`` (all when None); an int for an int ``v``."""
        check_etype(etype)
        deg = torch.bincount(self._dst, minlength=self._num_nodes)
        return _select(deg, v, "v", self._num_nodes)

    def out_degrees(self, u: Any = None, etype: ETypeLike = None) -> Any:
        """Out-degree of nodes ``u`` (all when None); an int for an int ``u``."""
        check_etype(etype)
        deg = torch.bincount(self._src, minlength=self._num_nodes)
        return _select(deg, u, "u", self._num_nodes)

    @contextlib.contextmanager
    def local_scope(self) -> Iterator[PairGraph]:
        """Undo data assigned or deleted inside the with-block (as DGL's local_scope)."""
        with _scope(self._frames()):
            yield self

    def _frames(self) -> Tuple[_Frame, ...]:
        return (self._nframe, self._eframe)

    def to(self, device: Any, **kwargs: Any) -> PairGraph:
        dev = torch.device(device)
        if dev == self.device:
            return self
        out = object.__new__(PairGraph)
        out._src = self._src.to(dev, **kwargs)
        out._dst = self._dst.to(dev, **kwargs)
        out._num_nodes = self._num_nodes
        out._nframe = self._nframe._moved(dev, None, **kwargs)
        out._eframe = self._eframe._moved(dev, None, **kwargs)
        return out

    def __repr__(self) -> str:
        return f"PairGraph(num_nodes={self._num_nodes}, num_edges={self.num_edges()})"


# ====================================================================== sampling cores
def _key_int(generator: Any) -> int:
    if isinstance(generator, SampleKey):
        return generator.as_int()
    if generator is None:
        return SampleKey().as_int()
    return int(generator) & 0x7FFFFFFFFFFFFFFF


def _torch_generator(key: int, salt: int) -> torch.Generator:
    gen = torch.Generator()
    gen.manual_seed((key ^ (salt * 0x9E3779B97F4A7C15)) & 0x7FFFFFFFFFFFFFFF)
    return gen


def _as_id_set(ids: Any, name: str) -> torch.Tensor:
    return check_index(name, ids, None, device=None).cpu()


def _drop_edges(sub: SampledSubgraph, drop_eids: torch.Tensor) -> SampledSubgraph:
    """Remove sampled edges whose global edge id (``metadata['eid']``) is in ``drop_eids``."""
    if drop_eids.numel() == 0 or sub.row.numel() == 0:
        return sub
    keep = ~torch.isin(sub.metadata["eid"], drop_eids)
    if bool(keep.all()):
        return sub
    counts = []
    lo = 0
    for n in sub.num_sampled_edges:
        counts.append(int(keep[lo : lo + n].sum()))
        lo += n
    meta = dict(sub.metadata)
    meta["eid"] = meta["eid"][keep]
    return SampledSubgraph(
        nodes=sub.nodes,
        row=sub.row[keep],
        col=sub.col[keep],
        num_sampled_nodes=list(sub.num_sampled_nodes),
        num_sampled_edges=counts,
        edge_ids=sub.edge_ids[keep] if sub.edge_ids is not None else None,
        layered=sub.layered,
        batch=sub.batch,
        metadata=meta,
    )


class _NodeCore:
    """Node-wise sampling (the ``Sampler`` protocol, for the Loader) and DGL collation."""

    def __init__(self, src: _Source, cfg: NeighborSampler, block_type: str) -> None:
        from gnnsys.loaders.neighbor import NeighborSampler as _Sampler

        self.src = src
        self.cfg = cfg
        sg, self.pos_map, weighted = src.sampling_graph(cfg.prob, cfg.mask)
        self.sampler = _Sampler(
            sg, cfg.fanouts[::-1], replace=cfg.replace, weighted=weighted, semantics="dgl"
        )
        names = list(dict.fromkeys(cfg.prefetch_node_feats + cfg.prefetch_labels))
        self.node_store = FeatureStore({k: _node_column(src, k, _arg_of(k, cfg)) for k in names})
        self.edge_store = FeatureStore(
            {k: _edge_column(src, k, "prefetch_edge_feats") for k in cfg.prefetch_edge_feats}
        )
        self.device_tables: Dict[str, Any] = {}  # gathered on the output device (use_uva)
        self.pin = False
        self.dgl = _resolve_block_type(block_type)
        if self.dgl is not None:
            src.dgl_frames()  # build once here, not racing in worker threads

    # ------------------------------------------------------------------ Sampler protocol
    def sample(self, seeds: torch.Tensor, generator: Any = None) -> SampledSubgraph:
        """Sample around node ids ``seeds``; ``metadata['eid']`` holds global edge ids."""
        sub = self.sampler.sample(seeds, _key_int(generator))
        return self._finish(sub)

    def _finish(self, sub: SampledSubgraph) -> SampledSubgraph:
        pos = sub.edge_ids
        if self.pos_map is not None:
            pos = self.pos_map[pos]
        sub.edge_ids = pos  # CSC positions in the user's graph
        sub.metadata["eid"] = self.src.eid_of_pos(pos)
        return sub

    # ------------------------------------------------------------------ collation
    def collate(self, sub: SampledSubgraph) -> Tuple[torch.Tensor, torch.Tensor, list]:
        """SampledSubgraph -> (input_nodes, output_nodes, blocks) on the CPU, with the
        prefetched columns gathered (into pinned buffers when ``self.pin``)."""
        blocks = self.blocks(sub)
        nodes = sub.nodes
        seeds = nodes[: sub.num_sampled_nodes[0]]
        for k in self.cfg.prefetch_node_feats:
            if k not in self.device_tables:
                _assign(blocks[0].srcdata, k, self.node_store.fetch(k, nodes, pin_memory=self.pin))
        for k in self.cfg.prefetch_labels:
            if k not in self.device_tables:
                _assign(blocks[-1].dstdata, k, self.node_store.fetch(k, seeds, pin_memory=self.pin))
        if len(self.edge_store):
            for i, (lo, hi) in enumerate(_hop_spans(sub)[::-1]):
                rows = self.src.edata_rows(sub.edge_ids[lo:hi])
                for k in self.edge_store.keys():
                    _assign(blocks[i].edata, k, self.edge_store.fetch(k, rows, pin_memory=self.pin))
        return nodes, seeds, blocks

    def gather_on_device(self, input_nodes: torch.Tensor, seeds: torch.Tensor, blocks: list):
        """Gather the device tables (``use_uva``: host memory read by the GPU) into blocks."""
        for k, table in self.device_tables.items():
            if k in self.cfg.prefetch_node_feats:
                _assign(blocks[0].srcdata, k, _device_rows(table, input_nodes))
            if k in self.cfg.prefetch_labels:
                _assign(blocks[-1].dstdata, k, _device_rows(table, seeds))

    def blocks(self, sub: SampledSubgraph) -> list:
        """The per-layer blocks of a layered SampledSubgraph, input layer first."""
        if not sub.layered:
            raise ValueError("DGL blocks need a layered (semantics='dgl') SampledSubgraph")
        nodes = sub.nodes
        prefix = np.cumsum([0] + list(sub.num_sampled_nodes)).tolist()
        eids = sub.metadata["eid"]
        rows = self.src.edata_rows(sub.edge_ids) if self.src.edata else None
        out = []
        for h, (lo, hi) in enumerate(_hop_spans(sub)):
            num_dst, num_src = prefix[h + 1], prefix[h + 2]
            row, col = sub.row[lo:hi], sub.col[lo:hi]
            eid = eids[lo:hi]
            erow = rows[lo:hi] if rows is not None else None
            if col.numel() > 1 and not bool((col[1:] >= col[:-1]).all()):
                order = torch.sort(col, stable=True).indices
                row, col, eid = row[order], col[order], eid[order]
                erow = erow[order] if erow is not None else None
            indptr = torch.zeros(num_dst + 1, dtype=torch.int64)
            torch.cumsum(torch.bincount(col, minlength=num_dst), 0, out=indptr[1:])
            if self.dgl is not None:
                out.append(self._dgl_block(indptr, row, nodes, num_src, num_dst, eid, erow))
            else:
                out.append(
                    Block(
                        indptr,
                        row,
                        num_src,
                        src_ids=nodes[:num_src],
                        edge_ids=eid,
                        node_parent=self.src.ndata,
                        edge_parent=self.src.edata,
                        edge_parent_ids=erow,
                        validate=False,
                    )
                )
        return out[::-1]

    def _dgl_block(self, indptr, row, nodes, num_src, num_dst, eid, erow) -> Any:
        dgl = self.dgl
        empty = torch.zeros(0, dtype=torch.int64)
        b = dgl.create_block(
            ("csc", (indptr, row, empty)), num_src_nodes=num_src, num_dst_nodes=num_dst
        )
        src_ids, dst_ids = nodes[:num_src], nodes[:num_dst]
        frames = self.src.dgl_frames()
        if frames is not None:
            # DGL's own samplers give blocks lazy views of every parent column; do the same.
            nf, ef = frames
            node_frames = [nf.subframe(src_ids), nf.subframe(dst_ids)]
            edge_frames = [ef.subframe(erow if erow is not None else eid)]
            dgl.utils.set_new_frames(b, node_frames=node_frames, edge_frames=edge_frames)
        b.srcdata[NID] = src_ids
        b.dstdata[NID] = dst_ids
        b.edata[EID] = eid
        return b


def _hop_spans(sub: SampledSubgraph) -> List[Tuple[int, int]]:
    spans, lo = [], 0
    for n in sub.num_sampled_edges:
        spans.append((lo, lo + n))
        lo += n
    return spans


def _assign(frame: Any, key: str, value: torch.Tensor) -> None:
    if isinstance(frame, _Frame):
        frame._set_inherited(key, value)
    else:
        frame[key] = value


def _node_column(src: _Source, name: str, arg: str) -> Any:
    if name not in src.ndata:
        raise ValueError(
            f"{arg} names {name!r}, which is not node data of the graph "
            f"(ndata has {list(src.ndata.keys())})"
        )
    return src.ndata[name]


def _edge_column(src: _Source, name: str, arg: str) -> Any:
    if name not in src.edata:
        raise ValueError(
            f"{arg} names {name!r}, which is not edge data of the graph "
            f"(edata has {list(src.edata.keys())})"
        )
    return src.edata[name]


def _device_rows(table: Any, ids: torch.Tensor) -> torch.Tensor:
    """Rows ``ids`` of a table, gathered where ``ids`` live (a UnifiedTensor reads host memory
    from the GPU; a plain CPU tensor is gathered on the CPU and copied)."""
    if isinstance(table, torch.Tensor) and table.device != ids.device:
        return table[ids.to(table.device)].to(ids.device, non_blocking=True)
    rows = table[ids]
    return rows if isinstance(rows, torch.Tensor) else torch.as_tensor(np.asarray(rows))


def _arg_of(name: str, cfg: NeighborSampler) -> str:
    return "prefetch_node_feats" if name in cfg.prefetch_node_feats else "prefetch_labels"


def _resolve_block_type(block_type: str) -> Any:
    check_choice("block_type", block_type, _BLOCK_TYPES)
    if block_type == "gnnsys":
        return None
    dgl = _dgl()
    if block_type == "dgl" and dgl is None:
        raise ImportError("block_type='dgl' needs the dgl package, which does not import here")
    return dgl


class _EdgeCore:
    """Edge-wise sampling for link prediction: pairs, negatives, then the node sampler."""

    def __init__(self, src: _Source, cfg: EdgePredictionSampler, block_type: str) -> None:
        self.src = src
        self.cfg = cfg
        self.node = _NodeCore(src, cfg.sampler, block_type)
        self.label_store = FeatureStore(
            {k: _edge_column(src, k, "prefetch_labels") for k in cfg.prefetch_labels}
        )
        if cfg.reverse_eids is not None and cfg.reverse_eids.numel() < src.edge_id_bound:
            raise ValueError(
                f"reverse_eids has {cfg.reverse_eids.numel()} entries; the graph has "
                f"{src.edge_id_bound} edge ids"
            )

    def sample(self, seeds: torch.Tensor, generator: Any = None) -> SampledSubgraph:
        """Sample for the seed edge ids ``seeds``; the pairs go in ``metadata``."""
        key = _key_int(generator)
        eids = seeds.long()
        u, v = self.src.find_edges(eids)
        parts = [u, v]
        neg = self.cfg.negative_sampler
        if neg is not None:
            if isinstance(neg, Uniform):
                nu, nv = neg.generate(u, self.src.num_nodes, _torch_generator(key, 1))
            else:
                nu, nv = neg(self.src.user_graph, eids)
                nu = check_index("negative sources", nu, self.src.num_nodes, device=None).cpu()
                nv = check_index("negative destinations", nv, self.src.num_nodes, device=None)
                nv = nv.cpu()
            parts += [nu, nv]
        from gnnsys.loaders._kernels import first_occurrence_unique

        uniq, inv = first_occurrence_unique(torch.cat(parts).numpy())
        uniq_t, inv_t = torch.from_numpy(uniq), torch.from_numpy(inv)
        sub = self.node.sample(uniq_t, key)
        drop = self._excluded(eids)
        if drop is not None:
            sub = _drop_edges(sub, drop)
        b = eids.numel()
        sub.metadata["pair"] = (inv_t[:b], inv_t[b : 2 * b], eids)
        if neg is not None:
            k = parts[2].numel()
            sub.metadata["neg"] = (inv_t[2 * b : 2 * b + k], inv_t[2 * b + k :])
        return sub

    def _excluded(self, eids: torch.Tensor) -> Optional[torch.Tensor]:
        ex = self.cfg.exclude
        if ex is None:
            return None
        if ex == "self":
            return eids
        if ex == "reverse_id":
            return torch.cat([eids, self.cfg.reverse_eids[eids]])
        return _as_id_set(ex(eids), "exclude(eids)")

    def collate(self, sub: SampledSubgraph) -> tuple:
        """-> (input_nodes, pair_graph, neg_pair_graph, blocks) on the CPU (no negatives:
        (input_nodes, pair_graph, blocks))."""
        input_nodes, seeds, blocks = self.node.collate(sub)
        n = sub.num_sampled_nodes[0]
        ps, pd, eids = sub.metadata["pair"]
        pair = _pair_graph(self.node.dgl, ps, pd, n, seeds, eids)
        if len(self.label_store):
            rows = self.src.edata_rows(self.src.pos_of_eid(eids))
            for k in self.label_store.keys():
                _assign(pair.edata, k, self.label_store.fetch(k, rows, pin_memory=self.node.pin))
        if "neg" not in sub.metadata:
            return input_nodes, pair, blocks
        ns, nd = sub.metadata["neg"]
        neg = _pair_graph(self.node.dgl, ns, nd, n, seeds, None)
        return input_nodes, pair, neg, blocks


def _pair_graph(dgl: Any, src, dst, num_nodes, node_ids, edge_ids) -> Any:
    if dgl is None:
        return PairGraph(src, dst, num_nodes, node_ids=node_ids, edge_ids=edge_ids)
    g = dgl.graph((src, dst), num_nodes=num_nodes)
    g.ndata[NID] = node_ids
    if edge_ids is not None:
        g.edata[EID] = edge_ids
    return g


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


class DataLoader:
    """DGL's ``dgl.dataloading.DataLoader`` on the gnnsys engine.

    Yields ``(input_nodes, output_nodes, blocks)`` for node samplers and
    ``(input_nodes, pair_graph, neg_pair_graph, blocks)`` for ``as_edge_prediction_sampler``
    (then ``indices`` are edge ids). Arguments are DGL's: ``use_ddp`` gives this rank a
    contiguous shard of ``indices`` (padded like DGL unless ``drop_last``); ``device`` is where
    batches go (default: the graph's); ``use_uva=True`` keeps structure and features in host
    memory and gathers them for a CUDA ``device`` (DGL's rules: a CPU graph, ``num_workers=0``).
    torch DataLoader keywords are accepted; ``num_workers`` sets the number of sampling
    threads (gnnsys samples on threads, not processes). gnnsys extras: ``seed`` (default: drawn
    from torch's global RNG, so ``torch.manual_seed`` makes runs repeatable) and
    ``block_type`` ("auto": DGL blocks when dgl imports, else ``gnnsys.Block``).

    ``indices`` are integer node ids (edge ids for edge prediction); an empty ``indices``
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

    Example:
        >>> sampler = NeighborSampler([5, 10], prefetch_node_feats=["feat"])
        >>> loader = DataLoader(g, train_nids, sampler, batch_size=1024, shuffle=True)
        >>> input_nodes, output_nodes, blocks = next(iter(loader))
    """

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
        unknown = sorted(set(kwargs) - set(_TORCH_KWARGS))
        if unknown:
            raise TypeError(f"DataLoader got unexpected keyword argument(s) {unknown}")
        num_workers = kwargs.get("num_workers", 0)
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if isinstance(indices, Mapping):
            raise NotImplementedError("indices as a dict (per node/edge type) needs heterographs")
        if not isinstance(graph_sampler, (NeighborSampler, EdgePredictionSampler)):
            graph_sampler = _from_dgl_sampler(graph_sampler)

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
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available")
        if use_uva and self.device.type != "cuda":
            raise ValueError(f"use_uva=True needs a CUDA device, got device={self.device}")
        self._src = src = _prepare_source(graph)
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
        if gpu_cache is not None:
            if not isinstance(gpu_cache, dict):
                raise TypeError(f"gpu_cache must be a dict, got {type(gpu_cache).__name__}")
            if self.device.type != "cuda":
                raise ValueError("gpu_cache needs a CUDA device")
            if gpu_cache.get("edge"):
                raise NotImplementedError("gpu_cache for edge data is not implemented")

        is_edge = isinstance(graph_sampler, EdgePredictionSampler)
        bound = src.edge_id_bound if is_edge else src.num_nodes
        what = "edge" if is_edge else "node"
        ids = check_index("indices", indices, None, device=None, exc=IndexError)
        if ids.numel():
            hi = int(ids.max())
            if hi >= bound:
                raise IndexError(
                    f"indices holds {what} id {hi}, out of range for {bound} {what}s "
                    f"(valid: 0..{bound - 1})"
                )
        ids = ids.cpu()
        if ids.numel() == 0:
            raise ValueError(f"indices is empty: no {what} ids, so there is nothing to batch")
        if is_edge:
            src.pos_of_eid(ids)  # every seed edge must exist
        self.indices = ids
        self._core = (
            _EdgeCore(src, graph_sampler, block_type)
            if is_edge
            else _NodeCore(src, graph_sampler, block_type)
        )
        if use_uva or gpu_cache:
            self._device_tables(gpu_cache.get("node", {}) if gpu_cache else {})
        node_core = self._core.node if is_edge else self._core
        node_core.pin = self.pin_prefetcher and torch.cuda.is_available()
        prefetch = kwargs.get("prefetch_factor")
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

    def _device_tables(self, cache_rows: Dict[str, int]) -> None:
        """Prefetched node tables read from host memory by the GPU (``use_uva``), with a GPU
        cache of the hottest rows (highest in-degree) where ``gpu_cache`` asks for one."""
        core = self._core.node if isinstance(self._core, _EdgeCore) else self._core
        unknown = sorted(set(cache_rows) - set(core.node_store.keys()))
        if unknown:
            raise ValueError(f"gpu_cache names {unknown}, which are not prefetched node data")
        try:
            from gnnsys.unified_tensor import unified
        except ImportError:  # pragma: no cover - part of the package
            unified = None
        n = self._src.num_nodes
        for k in core.node_store.keys():
            table = core.node_store[k]
            rows = cache_rows.get(k, 0)
            if unified is not None and isinstance(table, torch.Tensor) and table.is_cpu:
                frac = min(1.0, rows / max(n, 1)) if rows else None
                order = self._src.graph.in_degrees() if rows else None
                table = unified(table, cache=frac, cache_order=order)
            core.device_tables[k] = table

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
        engine = Loader(
            self._core,
            self._epoch_order(epoch),
            batch_size=self.batch_size,
            drop_last=self.drop_last,
            seed=self.seed,
            num_threads=self._threads,
            prefetch=self._prefetch,
            collate=lambda batch: self._core.collate(batch.subgraph),
        )
        engine.set_epoch(epoch)
        return self._finish_all(iter(engine))

    def _finish_all(self, batches: Iterator[tuple]) -> Iterator[tuple]:
        dev = self.device
        node_core = self._core.node if isinstance(self._core, _EdgeCore) else self._core
        for out in batches:
            if dev.type != "cpu":
                out = tuple(
                    [b.to(dev, non_blocking=True) for b in x]
                    if isinstance(x, list)
                    else x.to(dev, non_blocking=True)
                    for x in out
                )
            if node_core.device_tables:
                blocks = out[-1]
                node_core.gather_on_device(out[0], blocks[-1].dstdata[NID], blocks)
            yield out

    def __repr__(self) -> str:
        return (
            f"DataLoader(num_indices={self.indices.numel()}, batch_size={self.batch_size}, "
            f"sampler={self.graph_sampler!r}, device={self.device})"
        )


NodeDataLoader = DataLoader


def _from_dgl_sampler(s: Any) -> NeighborSampler:
    """Accept DGL's own NeighborSampler / MultiLayerFullNeighborSampler by its settings."""
    if type(s).__module__.split(".")[0] == "dgl" and hasattr(s, "fanouts"):
        fanouts = [int(f) for f in s.fanouts]
        return NeighborSampler(
            fanouts,
            edge_dir=getattr(s, "edge_dir", "in"),
            prob=getattr(s, "prob", None),
            replace=getattr(s, "replace", False),
            prefetch_node_feats=list(getattr(s, "prefetch_node_feats", []) or []),
            prefetch_labels=list(getattr(s, "prefetch_labels", []) or []),
            prefetch_edge_feats=list(getattr(s, "prefetch_edge_feats", []) or []),
            output_device=getattr(s, "output_device", None),
        )
    raise TypeError(
        "graph_sampler must be a gnnsys.loaders.dgl NeighborSampler, "
        f"MultiLayerFullNeighborSampler or as_edge_prediction_sampler(...), got {type(s).__name__}"
    )
