"""DGL drop-ins for the whole-subgraph samplers: ``ClusterGCNSampler``, ``SAINTSampler`` and
``ShaDowKHopSampler`` with DGL 2's signatures, driven by ``loaders.dgl.DataLoader`` (and
``as_edge_prediction_sampler`` for ShaDow) on the gnnsys ``Loader`` and the samplers of
``loaders.subgraph``. Imported by ``loaders.dgl``, which exports them.

What the DataLoader yields is DGL's: the subgraph itself for ``ClusterGCNSampler`` and
``SAINTSampler``, ``(input_nodes, output_nodes, subgraph)`` for ``ShaDowKHopSampler``. The
subgraph is a DGL graph when ``dgl`` imports (``ndata["_ID"]`` / ``edata["_ID"]`` the parent's
ids, every parent column readable lazily as DGL's ``g.subgraph``), else a homogeneous
``PairGraph`` with the same API (parent columns lazy too). Prefetched columns come from the
Loader's fetch stage. ``ShaDowKHopSampler`` also takes heterographs (fanouts per edge type, as
DGL's): the subgraph then has every node and edge type of the graph, ``ndata["_ID"]`` /
``edata["_ID"]`` per type. ``ClusterGCNSampler`` and ``SAINTSampler`` take homogeneous graphs
only (as DGL's). ``use_uva`` and ``gpu_cache`` are not implemented for these samplers; they
sample on the CPU.
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from gnnsys._checks import check_index
from gnnsys.block import EID, NID, _Frame
from gnnsys.loaders.base import SampledSubgraph, key_int
from gnnsys.loaders.dgl import (
    NamesLike,
    PairGraph,
    _assign,
    _check_layer,
    _check_names,
    _flat_node_seeds,
    _FlatSeeds,
    _LiveColumns,
    _pair_graph,
    _PrefetchedColumns,
    _prepare_view,
    _resolve_block_type,
    _resolve_names,
    _run_once,
)
from gnnsys.loaders.neighbor import fanout_matrix
from gnnsys.loaders.subgraph import (
    SAINT_MODES,
    ClusterSampler,
    SaintSampler,
    ShaDowSampler,
    check_positive_int,
)

_WHO = "ClusterGCNSampler, SAINTSampler and ShaDowKHopSampler"


class _NoDeviceTables(dict):
    """``device_tables`` of a whole-subgraph core: the DataLoader's ``use_uva`` / ``gpu_cache``
    would fill it; these samplers do not implement them."""

    def __setitem__(self, key: Any, value: Any) -> None:
        raise NotImplementedError(f"use_uva and gpu_cache are not implemented for {_WHO}")


class _SubgraphCore(_PrefetchedColumns):
    """The ``Sampler`` the Loader drives for a whole-subgraph sampler, and its collation into
    the DGL subgraph (the role ``_NodeCore`` plays for blocks)."""

    def __init__(self, view: Any, cfg: Any, block_type: str, make: Any, prob: Any = None):
        if view.typed and not cfg.typed_graphs:
            raise NotImplementedError(
                f"{type(cfg).__name__} samples homogeneous graphs only (the graph has node "
                f"types {view.node_types} and edge types {view.edge_types})"
            )
        self.view = view
        self.cfg = cfg
        self.graph, _, _ = view.sampling_graph(None, None)  # edge ids = CSC positions
        self.sampler = make(self.graph, view, prob)
        self.node_feats = _resolve_names(cfg.prefetch_node, cfg.node_arg, view, "node")
        self.edge_feats = _resolve_names(cfg.prefetch_edge, cfg.edge_arg, view, "edge")
        self.labels: List[Tuple[int, str]] = []
        self._node_columns = _LiveColumns(
            view, "node", [(t, n, cfg.node_arg) for t, n in self.node_feats]
        )
        self._edge_columns = _LiveColumns(
            view, "edge", [(e, n, cfg.edge_arg) for e, n in self.edge_feats]
        )
        self.device_tables = _NoDeviceTables()
        self.pin = False
        self.output_types: Optional[List[int]] = None
        self.dgl = _resolve_block_type(block_type)
        if self.dgl is not None:
            view.dgl_frames()  # build once here, not racing in worker threads

    def refresh(self) -> bool:
        """Follow replaced prefetched columns (``_LiveColumns``); no device tables here."""
        self._node_columns.refresh()
        self._edge_columns.refresh()
        return False

    @property
    def num_inputs(self) -> Optional[int]:
        return getattr(self.sampler, "num_inputs", None)

    def loader_tables(self) -> Dict[str, Any]:
        """The Loader's fetch-stage arguments (node and edge tables; no labels)."""
        return {
            "features": self.node_store,
            "feature_names": list(self.node_store.keys()),
            "edge_features": self.edge_store,
            "edge_feature_names": list(self.edge_store.keys()),
        }

    def sample(self, seeds: torch.Tensor, generator: Any = None) -> SampledSubgraph:
        return self.sample_excluding(seeds, generator, None)

    def sample_excluding(
        self, seeds: torch.Tensor, generator: Any, drop: Optional[torch.Tensor]
    ) -> SampledSubgraph:
        """``sample``; ``metadata['eid']`` the parent's edge ids, ``edge_ids`` the edge-data
        rows; then the edges whose id is in ``drop`` removed (edge prediction's exclusion)."""
        sub = self.sampler.sample(seeds, key_int(generator))
        view = self.view
        pos = sub.edge_ids
        eid = view.eid_of_pos(pos)
        sub.metadata["eid"] = eid
        sub.edge_ids = view.rows_of(pos, eid)
        if drop is not None and drop.numel() and eid.numel():
            keys = eid + view.key_base[view.etype_of_pos(pos)] if view.typed else eid
            keep = ~torch.isin(keys, drop)
            ei = sub.edge_index()[:, keep]
            sub.row, sub.col = ei[0], ei[1]
            sub.edge_ids = sub.edge_ids[keep]
            sub.metadata["eid"] = eid[keep]
            sub.num_sampled_edges = [int(keep.sum())]
            if sub.edge_ptr is not None:  # typed: each edge type's span of the kept edges
                kept = torch.zeros(keep.numel() + 1, dtype=torch.int64)
                torch.cumsum(keep.long(), 0, out=kept[1:])
                sub.edge_ptr = kept[sub.edge_ptr]
        return sub

    def subgraph(self, batch: Any) -> Any:
        """The batch's subgraph: a DGL graph (dgl imports) or a ``PairGraph``, with parent ids
        in ``"_ID"``, prefetched columns, and the parent's other columns lazily."""
        sub = batch.subgraph
        view = self.view
        if view.typed:
            return self._typed_subgraph(batch)
        it = view.idtype
        nodes, rows, eid = sub.nodes, sub.edge_ids, sub.metadata["eid"]
        n = int(nodes.numel())
        if self.dgl is not None:
            dgl = self.dgl
            g = dgl.graph((sub.row.to(it), sub.col.to(it)), num_nodes=n, idtype=it)
            frames = view.dgl_frames()
            if frames is not None:
                nf, ef = frames
                dgl.utils.set_new_frames(g, node_frames=[nf[0].subframe(nodes)],
                                         edge_frames=[ef[0].subframe(rows)])  # fmt: skip
            g.ndata[NID] = nodes.to(it)
            g.edata[EID] = eid.to(it)
        else:
            g = PairGraph(sub.row, sub.col, n, idtype=it)
            dev = g.device
            g._nframes = [_Frame(n, dev, what="node", parent=view.ndata_of(0), parent_ids=nodes)]
            g._eframes = [_Frame(int(rows.numel()), dev, what="edge", parent=view.edata_of(0),
                                 parent_ids=rows)]  # fmt: skip
            g._nframes[0]._set_inherited(NID, nodes.to(it))
            g._eframes[0]._set_inherited(EID, eid.to(it))
        for t, name in self.node_feats:
            _assign(g.ndata, name, batch.node_data[view.node_key(t, name)])
        for e, name in self.edge_feats:
            _assign(g.edata, name, batch.edge_data[view.edge_key(e, name)])
        return g

    def _typed_subgraph(self, batch: Any) -> Any:
        """``subgraph`` of a heterograph: every node and edge type of the graph (DGL's
        ``g.subgraph(nodes_dict)``), ids within their types."""
        sub = batch.subgraph
        view = self.view
        node_ids = self._ids_by_type(sub)
        counts = {nt: int(ids.numel()) for nt, ids in node_ids.items()}
        edges, eids, rows = {}, {}, {}
        eid = sub.metadata["eid"]
        for e, et in enumerate(view.edge_types):
            lo, hi = sub.type_edge_range(e)
            edges[et] = (sub.row[lo:hi], sub.col[lo:hi])
            eids[et] = eid[lo:hi]
            rows[et] = sub.edge_ids[lo:hi]
        g = _pair_graph(self.dgl, view, edges, counts, node_ids, eids, rows)
        for t, name in self.node_feats:
            _assign(g.nodes[view.node_types[t]].data, name, batch.node_data[view.node_key(t, name)])
        for e, name in self.edge_feats:
            _assign(g.edges[view.edge_types[e]].data, name, batch.edge_data[view.edge_key(e, name)])
        return g

    def _ids_by_type(self, sub: SampledSubgraph) -> Dict[str, torch.Tensor]:
        """The subgraph's nodes of each node type, as ids within the type."""
        view = self.view
        out = {}
        for t, nt in enumerate(view.node_types):
            ids = sub.type_nodes(t)
            out[nt] = ids - view.offset(t) if view.offset(t) else ids
        return out

    def seeds_by_type(self, sub: SampledSubgraph) -> Tuple[Any, Any]:
        """(every node by type, the seeds by type) of a typed whole subgraph, ids within their
        types in the graph's id type; the seeds only of the seed types (``output_types``) that
        the batch has, as DGL's dict batches."""
        view = self.view
        assert sub.type_num_sampled_nodes is not None
        seeds = sub.type_num_sampled_nodes[0].tolist()
        nodes = {nt: ids.to(view.idtype) for nt, ids in self._ids_by_type(sub).items()}
        types = self.output_types if self.output_types is not None else range(len(seeds))
        out = {view.node_types[t]: nodes[view.node_types[t]][: seeds[t]] for t in types
               if seeds[t]}  # fmt: skip
        return nodes, out

    def collate(self, batch: Any) -> Any:
        """What DGL's sampler returns for this batch (the sampler class decides)."""
        return self.cfg.output(self, batch)


class _SubgraphSampler:
    """What the three DGL samplers share: the DataLoader hooks (``make_core``,
    ``flat_indices``) and ``sample(g, indices)`` outside a DataLoader."""

    edge_prediction = False  # as_edge_prediction_sampler takes ShaDowKHopSampler only
    typed_graphs = False  # heterographs: ShaDowKHopSampler only (as DGL)
    node_arg, edge_arg = "prefetch_ndata", "prefetch_edata"
    prefetch_node: Any = []
    prefetch_edge: Any = []
    output_device: Any = None

    def make_core(
        self, view: Any, block_type: str = "auto", sample_device: Any = None, uva: bool = False
    ) -> _SubgraphCore:
        """The Loader-facing core for ``view`` (``sample_device``: these sample on the CPU)."""
        if uva:
            raise NotImplementedError(f"use_uva is not implemented for {_WHO}")
        return _SubgraphCore(view, self, block_type, self._native, getattr(self, "prob", None))

    def flat_indices(self, view: Any, indices: Any, name: str) -> _FlatSeeds:
        return _flat_node_seeds(view, indices, name)

    def _native(self, graph: Any, view: Any, prob: Any) -> Any:
        raise NotImplementedError

    def output(self, core: _SubgraphCore, batch: Any) -> Any:
        return core.subgraph(batch)

    def sample(self, g: Any, indices: Any, exclude_eids: Any = None, *, seed: int = 0) -> Any:
        """One batch outside a DataLoader, as DGL's ``sampler.sample(g, indices)``.

        Example:
            >>> subg = ClusterGCNSampler(g, 8, cache_path=None).sample(g, torch.tensor([0, 3]))
        """
        if exclude_eids is not None:
            raise NotImplementedError("exclude_eids: use as_edge_prediction_sampler(exclude=...)")
        view = _prepare_view(g)
        core = self.make_core(view)
        flat = self.flat_indices(view, indices, "indices")
        core.output_types = flat.dict_keys
        return _run_once(core, flat.ids, seed, core.sample)


# ---------------------------------------------------------------------- Cluster-GCN
class ClusterGCNSampler(_SubgraphSampler):
    """DGL's ``ClusterGCNSampler``: METIS-partition ``g`` into ``k`` parts (pymetis, k-way),
    then each batch of part ids gives the subgraph induced by those parts' nodes.

    ``DataLoader(g, torch.arange(k), sampler, batch_size=..., shuffle=True)`` yields the
    subgraphs. ``cache_path`` stores the partition as DGL does (a pickle of
    ``(partition_offset, partition_node_ids)``, read back when present and checked against
    ``k`` and the node count; gnnsys also takes None: no file). ``mode="recursive"``
    (recursive bisection), ``balance_edges=True`` (parts balance in-edges: the in-degrees
    as METIS vertex weights, as DGL's ``metis_partition_assignment``) and ``balance_ntypes``
    (an [N] tensor of classes, e.g. a training mask: each class spread evenly over the
    parts) as DGL's. DGL hands ``balance_ntypes`` to METIS as one weight constraint per class;
    pymetis has a single constraint, so gnnsys partitions first and then moves each class's
    surplus to the parts with room where most of a node's neighbours are
    (``pipeline_parallel.partition.balance_classes``: at most 3% over the even share, METIS's
    default tolerance). gnnsys extra: ``seed`` (METIS's seed).

    Example:
        >>> sampler = ClusterGCNSampler(g, 100, prefetch_ndata=["feat", "label"])
        >>> for subg in DataLoader(g, torch.arange(100), sampler, batch_size=10):
        ...     logits = model(subg, subg.ndata["feat"])
    """

    def __init__(
        self,
        g: Any,
        k: int,
        cache_path: Optional[str] = "cluster_gcn.pkl",
        balance_ntypes: Any = None,
        balance_edges: bool = False,
        mode: str = "k-way",
        prefetch_ndata: NamesLike = None,
        prefetch_edata: NamesLike = None,
        output_device: Any = None,
        *,
        seed: int = 0,
    ) -> None:
        if mode not in ("k-way", "recursive"):
            raise ValueError(f"mode must be 'k-way' or 'recursive', got {mode!r}")
        self.k = check_positive_int("k", k)
        self.prefetch_node = _check_names("prefetch_ndata", prefetch_ndata)
        self.prefetch_edge = _check_names("prefetch_edata", prefetch_edata)
        self.output_device = output_device
        view = _prepare_view(g)
        n = view.num_nodes
        if cache_path is not None and os.path.exists(cache_path):
            offset, node_ids = _read_cache(cache_path, self.k, n)
        else:
            graph = _homogeneous(view, self)
            # balance_edges: the in-degrees as METIS vertex weights, as DGL's
            # metis_partition_assignment builds them
            weights = graph.in_degrees() if balance_edges else None
            s = ClusterSampler(graph, self.k, seed=seed, recursive=mode == "recursive",
                               vertex_weights=weights,
                               balance_types=balance_ntypes)  # fmt: skip
            offset, node_ids = torch.from_numpy(s.part_ptr), torch.from_numpy(s.part_nodes)
            if cache_path is not None:
                with open(cache_path, "wb") as f:
                    pickle.dump((offset, node_ids), f)
        self.partition_offset, self.partition_node_ids = offset, node_ids

    @classmethod
    def from_partition(cls, offset: Any, node_ids: Any, **kwargs: Any) -> ClusterGCNSampler:
        """A sampler over a given partition (part p: ``node_ids[offset[p]:offset[p+1]]``),
        e.g. a real DGL sampler's."""
        out = object.__new__(cls)
        out.partition_offset = torch.as_tensor(offset).long()
        out.partition_node_ids = torch.as_tensor(node_ids).long()
        out.k = int(out.partition_offset.numel()) - 1
        out.prefetch_node = _check_names("prefetch_ndata", kwargs.get("prefetch_ndata"))
        out.prefetch_edge = _check_names("prefetch_edata", kwargs.get("prefetch_edata"))
        out.output_device = kwargs.get("output_device")
        return out

    def _part(self, n: int) -> torch.Tensor:
        if self.partition_node_ids.numel() != n:
            raise ValueError(
                f"the partition covers {self.partition_node_ids.numel()} nodes, the graph has {n}"
            )
        part = torch.empty(n, dtype=torch.int64)
        sizes = self.partition_offset[1:] - self.partition_offset[:-1]
        part[self.partition_node_ids] = torch.repeat_interleave(torch.arange(self.k), sizes)
        return part

    def _native(self, graph: Any, view: Any, prob: Any) -> ClusterSampler:
        return ClusterSampler(graph, self.k, part=self._part(graph.num_nodes))

    def flat_indices(self, view: Any, indices: Any, name: str) -> _FlatSeeds:
        return _FlatSeeds(check_index(name, indices, self.k, device=None, exc=IndexError,
                                      unit="partitions").cpu(), None)  # fmt: skip

    def __repr__(self) -> str:
        return f"ClusterGCNSampler(k={self.k})"


def _homogeneous(view: Any, cfg: Any) -> Any:
    if view.typed:
        raise NotImplementedError(f"{type(cfg).__name__} samples homogeneous graphs only")
    return view.sampling_graph(None, None)[0]


def _read_cache(path: str, k: int, n: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """DGL's cache file: ``(partition_offset, partition_node_ids)``, checked as DGL does."""
    try:
        with open(path, "rb") as f:
            offset, node_ids = pickle.load(f)
    except (EOFError, TypeError, ValueError, pickle.UnpicklingError) as err:
        raise ValueError(
            f"the cache file {path} is invalid ({err}); remove it or give another cache_path"
        ) from None
    offset, node_ids = torch.as_tensor(offset).long(), torch.as_tensor(node_ids).long()
    if offset.numel() != k + 1:
        raise ValueError(
            f"the cache file {path} holds {offset.numel() - 1} partitions, not k={k}; remove "
            "it or give another cache_path"
        )
    if node_ids.numel() != n:
        raise ValueError(
            f"the cache file {path} covers {node_ids.numel()} nodes, the graph has {n}; "
            "remove it or give another cache_path"
        )
    return offset, node_ids


# ---------------------------------------------------------------------- GraphSAINT
class SAINTSampler(_SubgraphSampler):
    """DGL's ``SAINTSampler``: each batch one GraphSAINT subgraph, whatever the indices
    (``DataLoader(g, torch.arange(num_iters), sampler)``: ``num_iters`` subgraphs per epoch
    at ``batch_size=1``).

    Args:
        mode: ``"node"`` (``budget`` nodes drawn with replacement by out-degree, at least 1),
            ``"edge"`` (``budget`` edges drawn with replacement by ``1/in_deg(dst) +
            1/out_deg(src)``, both ends kept) or ``"walk"`` (``budget = (num_roots,
            walk_length)``: uniform roots, random walks along out-edges).
        cache: accepted; the probabilities are computed once per DataLoader either way.
        prefetch_ndata, prefetch_edata, output_device: as DGL (default device "cpu").
    Draws are counter-based from the DataLoader's seed, epoch and batch (not torch's RNG).

    Example:
        >>> sampler = SAINTSampler("walk", (1000, 3), prefetch_ndata=["feat"])
        >>> for subg in DataLoader(g, torch.arange(50), sampler):
        ...     logits = model(subg, subg.ndata["feat"])
    """

    def __init__(
        self,
        mode: str,
        budget: Any,
        cache: bool = True,
        prefetch_ndata: NamesLike = None,
        prefetch_edata: NamesLike = None,
        output_device: Any = "cpu",
    ) -> None:
        if mode not in SAINT_MODES:
            raise ValueError(f"mode must be 'node', 'edge' or 'walk', got {mode!r}")
        self.mode = mode
        if mode == "walk":
            if not isinstance(budget, (tuple, list)) or len(budget) != 2:
                raise TypeError(
                    f"budget for mode='walk' must be (num_roots, walk_length), got {budget!r}"
                )
            self.budget = (check_positive_int("budget[0] (num_roots)", budget[0]),
                           check_positive_int("budget[1] (walk_length)", budget[1]))  # fmt: skip
        else:
            self.budget = check_positive_int("budget", budget)
        self.cache = bool(cache)
        self.prefetch_node = _check_names("prefetch_ndata", prefetch_ndata)
        self.prefetch_edge = _check_names("prefetch_edata", prefetch_edata)
        self.output_device = output_device

    def _native(self, graph: Any, view: Any, prob: Any) -> SaintSampler:
        in_deg = graph.in_degrees().double()
        out_deg = graph.out_degrees().double()
        if self.mode == "walk":
            roots, length = self.budget
            return SaintSampler(graph, "walk", roots, walk_length=length)
        if self.mode == "node":
            return SaintSampler(graph, "node", self.budget, node_weight=out_deg.clamp(min=1))
        dst = torch.repeat_interleave(torch.arange(graph.num_nodes), in_deg.long())
        src = graph.indices.long()
        weight = 1.0 / in_deg[dst].clamp(min=1) + 1.0 / out_deg[src].clamp(min=1)
        return SaintSampler(graph, "edge", self.budget, edge_weight=weight)

    def flat_indices(self, view: Any, indices: Any, name: str) -> _FlatSeeds:
        return _FlatSeeds(check_index(name, indices, None, device=None).cpu(), None)

    def __repr__(self) -> str:
        return f"SAINTSampler(mode={self.mode!r}, budget={self.budget})"


# ---------------------------------------------------------------------- ShaDow-KHop
class ShaDowKHopSampler(_SubgraphSampler):
    """DGL's ``ShaDowKHopSampler``: sample ``fanouts`` neighbours per node and layer (input
    layer first, as DGL; -1: all) around the seeds, then return the subgraph induced by all
    the nodes reached: ``(input_nodes, output_nodes, subgraph)``, the seeds first in the
    subgraph. ``prob``: an edge-data column to sample by (a bool column as a mask); the
    induced edges are all of the graph's. Also inside ``as_edge_prediction_sampler`` (then
    ``(input_nodes, pair_graph, neg_pair_graph, subgraph)``); excluded edges are dropped
    from the subgraph after sampling (DGL also skips them while expanding, so with finite
    fanouts a node may keep fewer neighbours here).

    On a heterograph a layer's fanout may be a dict ``{edge type: k}`` naming every edge type
    (an int applies to all, as ``NeighborSampler``); ``input_nodes`` is then a dict over every
    node type (the seeds first within their type), ``output_nodes`` the batch's seeds per
    type, and the subgraph holds every node and edge type of the graph (DGL's
    ``g.subgraph(input_nodes)``).

    Example:
        >>> sampler = ShaDowKHopSampler([10, 5], prefetch_node_feats=["feat"])
        >>> for input_nodes, output_nodes, subg in DataLoader(g, train_nids, sampler,
        ...                                                    batch_size=256):
        ...     logits = model(subg, subg.ndata["feat"])
        >>> hetero = ShaDowKHopSampler([{"cites": 5, "writes": 2}] * 2)
    """

    edge_prediction = True
    typed_graphs = True
    node_arg, edge_arg = "prefetch_node_feats", "prefetch_edge_feats"

    def __init__(
        self,
        fanouts: Sequence[Any],
        replace: bool = False,
        prob: Optional[str] = None,
        prefetch_node_feats: NamesLike = None,
        prefetch_edge_feats: NamesLike = None,
        output_device: Any = None,
    ) -> None:
        if isinstance(fanouts, torch.Tensor):
            fanouts = fanouts.tolist()
        if not isinstance(fanouts, (list, tuple)):
            raise TypeError(f"fanouts must be a list of ints (one per layer), got {fanouts!r}")
        if len(fanouts) == 0:
            raise ValueError("fanouts is empty: give one fanout per layer, e.g. [10, 5]")
        layers = [_check_layer(i, f) for i, f in enumerate(fanouts)]
        if prob is not None and not isinstance(prob, str):
            raise TypeError(f"prob must be the name of an edge-data column, got {prob!r}")
        self.fanouts = layers
        self.replace = bool(replace)
        self.prob = prob
        self.prefetch_node = _check_names("prefetch_node_feats", prefetch_node_feats)
        self.prefetch_edge = _check_names("prefetch_edge_feats", prefetch_edge_feats)
        self.output_device = output_device

    def _native(self, graph: Any, view: Any, prob: Any) -> ShaDowSampler:
        sg, _, weighted = view.sampling_graph(prob, None)
        # hop order (nearest the seeds first): DGL's list reversed
        fanouts = fanout_matrix(self.fanouts, graph, name="fanouts")[::-1].copy()
        return ShaDowSampler(graph, fanouts, replace=self.replace, disjoint=False,
                             sampling_graph=sg, weighted=weighted)  # fmt: skip

    def output(self, core: _SubgraphCore, batch: Any) -> Any:
        g = core.subgraph(batch)
        sub = batch.subgraph
        if core.view.typed:
            return (*core.seeds_by_type(sub), g)
        it = core.view.idtype
        return sub.nodes.to(it), sub.nodes[: sub.num_seeds].to(it), g

    def __repr__(self) -> str:
        return f"ShaDowKHopSampler(fanouts={self.fanouts}, replace={self.replace})"


def from_dgl_sampler(s: Any) -> Optional[_SubgraphSampler]:
    """The gnnsys twin of a real DGL ClusterGCNSampler / SAINTSampler / ShaDowKHopSampler,
    read by its settings; None for any other object."""
    try:
        return _twin(s)
    except AttributeError:  # not the DGL class we know: refused by the caller
        return None


def _twin(s: Any) -> Optional[_SubgraphSampler]:
    cls = type(s)
    if cls.__module__.split(".")[0] != "dgl":
        return None
    name = cls.__name__
    if name == "ClusterGCNSampler":
        return ClusterGCNSampler.from_partition(
            s.partition_offset, s.partition_node_ids, prefetch_ndata=s.prefetch_ndata or None,
            prefetch_edata=s.prefetch_edata or None, output_device=s.output_device,
        )  # fmt: skip
    if name == "SAINTSampler":
        mode = s.sampler.__name__.split("_")[0]
        return SAINTSampler(mode, s.budget, s.cache, s.prefetch_ndata or None,
                            s.prefetch_edata or None, s.output_device)  # fmt: skip
    if name == "ShaDowKHopSampler":
        return ShaDowKHopSampler(list(s.fanouts), s.replace, s.prob,
                                 s.prefetch_node_feats or None, s.prefetch_edge_feats or None,
                                 s.output_device)  # fmt: skip
    return None


__all__ = ["ClusterGCNSampler", "SAINTSampler", "ShaDowKHopSampler"]
