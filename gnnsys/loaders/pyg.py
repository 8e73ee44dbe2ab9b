"""PyG drop-ins: ``NeighborLoader`` and ``LinkNeighborLoader`` with PyG 2.8's signatures, and
``LaborLoader`` (NeighborLoader with LABOR-0 / LABOR-i sampling, which PyG does not have).

Switching is one import line::

    from gnnsys.loaders.pyg import NeighborLoader   # was: from torch_geometric.loader import ...

Both are thin: they turn ``data`` into a ``Graph`` and a ``FeatureStore`` once, drive the gnnsys
``Loader`` with a ``NeighborSampler`` / ``LinkSampler``, and build PyG ``Data`` batches in the
worker threads (``collate``), with PyG's fields: ``n_id`` (seeds first, then hop order),
``e_id``, local ``edge_index`` (row 0 = neighbour, row 1 = the node it is aggregated into),
``input_id``, ``batch_size``, ``num_sampled_nodes``, ``num_sampled_edges`` (so
``trim_to_layer`` works), node attributes sliced by ``n_id`` and edge attributes by ``e_id``
(along PyG's ``__cat_dim__``: an [2, E] ``edge_label_index`` by columns).
No pyg-lib or torch-sparse is needed. A ``Data`` with ``adj_t`` (a torch-sparse
``SparseTensor``, from ``T.ToSparseTensor()``) instead of ``edge_index`` gives batches with
``adj_t``, as PyG's, where torch-sparse is installed. Unsupported arguments raise
NotImplementedError. PyG's other loader names (``DataLoader``, ``ImbalancedSampler``,
``PrefetchLoader``, ``RandomNodeLoader``, ...) resolve to PyG's own classes, so a script
that imports several of them switches with its import line alone.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import warnings
import weakref
from dataclasses import replace
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from gnnsys._checks import check_cores, check_data_device, check_index
from gnnsys._tokens import tensors_token, token_matches
from gnnsys.features import FeatureStore
from gnnsys.graph import Graph, hetero_node_counts
from gnnsys.loaders.base import SampledSubgraph
from gnnsys.loaders.link import LinkSampler, NegativeSampling
from gnnsys.loaders.loader import Batch, Loader
from gnnsys.loaders.neighbor import TemporalNeighborSampler, fanout_matrix, sampler_on
from gnnsys.unified_tensor import UnifiedTensor

TEMPORAL_STRATEGIES = ("uniform", "last")
# torch DataLoader keywords we honour; PyG itself drops "dataset" and "collate_fn".
_LOADER_KWARGS = (
    "batch_size",
    "shuffle",
    "drop_last",
    "num_workers",
    "pin_memory",
    "prefetch_factor",
    "persistent_workers",  # our threads persist across epochs either way (same batches)
    "generator",
    "sampler",  # positions into the inputs per epoch (e.g. ImbalancedSampler)
    # gnnsys extensions
    "seed",
    "device",
    "num_threads",
)
_DROPPED_KWARGS = ("dataset", "collate_fn")


# ---------------------------------------------------------------------- data -> graph + stores
def _cat_dim(data: Any, key: str, value: Any, store: Any = None) -> Optional[int]:
    """The dimension PyG slices ``value`` (attribute ``key`` of ``data``, in ``store`` for a
    ``HeteroData``) along in a batch: ``data.__cat_dim__`` counted from 0 (``edge_label_index``
    [2, E], any key with "index" or "face" in a ``Data``: the last). None when it names no one
    dimension of ``value`` (a sparse adjacency's ``(0, 1)``): such attributes ride along whole,
    as PyG's ``is_node_attr`` / ``is_edge_attr`` leave them."""
    dim = data.__cat_dim__(key, value, store)
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
        return None
    ndim = int(value.ndim)
    return int(dim) % ndim if -ndim <= int(dim) < ndim else None


def _rows_first(value: Any, dim: int) -> Any:
    """``value`` with dimension ``dim`` (the one PyG slices along) moved first, as a view, so
    that the fetch stage gathers its slices as rows; ``_PygDataView.restore`` moves it back."""
    if dim == 0:
        return value
    if isinstance(value, np.ndarray):  # a strided view, no copy (torch reads it in place)
        with warnings.catch_warnings():  # a read-only memmap: we only read it
            warnings.simplefilter("ignore", UserWarning)
            value = torch.from_numpy(value)
    return value.movedim(dim, 0)


def _attr_kinds(
    data: Any, num_nodes: int, along_cat_dim: bool = True
) -> Callable[[str, Any], Tuple[str, int]]:
    """A classifier of ``data``'s attributes into ("node" | "edge" | "other", the dimension
    to slice along).

    PyG's own ``is_node_attr`` / ``is_edge_attr`` when every table is a tensor, each sliced
    along its ``__cat_dim__`` (``_cat_dim``: the last for keys with "index" or "face"); with a
    ``UnifiedTensor`` among them (which PyG does not recognise, and whose presence makes PyG's
    ``num_nodes`` guess wrong) the same rule with the true node count: size == num_nodes,
    unless it is also the edge count and the name says "edge". ``along_cat_dim=False`` (the
    whole-subgraph loaders, which keep to the first dimension: see pyg_subgraph) leaves an
    attribute with another cat dim whole.
    """
    unified = any(isinstance(v, UnifiedTensor) for _, v in data.items())
    num_edges = int(data.num_edges)  # edge_index's columns or adj_t's entries

    def kind(key: str, value: Any) -> Tuple[str, int]:
        if isinstance(value, UnifiedTensor):
            return ("node" if len(value) == num_nodes else "other"), 0
        if not isinstance(value, (torch.Tensor, np.ndarray)) or value.ndim == 0:
            return "other", 0
        dim = _cat_dim(data, key, value)
        if dim is None or (dim != 0 and not along_cat_dim):
            return "other", 0
        if not unified:
            if data.is_node_attr(key):
                return "node", dim
            return ("edge" if data.is_edge_attr(key) else "other"), dim
        rows = int(value.shape[dim])
        if rows == num_nodes and (rows != num_edges or "edge" not in key):
            return "node", dim
        return ("edge" if rows == num_edges else "other"), dim

    return kind


# Names that mark an attribute as per-node: PyG's own node keys (``N_KEYS``, which PyG reads
# num_nodes from), labels, masks, and any name containing "node" (PyG's second num_nodes rule).
_NODE_NAMES = ("x", "y", "feat", "pos", "batch", "node_type", "n_id", "tf")


def _node_named(key: str) -> bool:
    return key in _NODE_NAMES or key.endswith("_mask") or "node" in key


def _warn_not_per_node(data: Any, key: str, as_edge: bool, num_nodes: int, who: str) -> None:
    """Warn about a node-named tensor attribute that PyG's rule does not treat as a node table.

    PyG (``data.is_node_attr``) slices an attribute per node only when its first dimension is
    ``num_nodes``; anything else rides along whole in every batch (or is sliced per edge when
    its rows match ``num_edges``). For an attribute named like node data that is almost always
    a mistake, e.g. ``Data(x=<50 rows>, num_nodes=100)``, so we say so. Not warned: attributes
    with other names (graph-level data such as class weights), a one-row ``y`` (a graph label),
    scalars, and attributes PyG concatenates along another dimension (``*index``).
    """
    value = data[key]
    if isinstance(value, UnifiedTensor):
        rows = len(value)
    elif isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim >= 1:
        if data.__cat_dim__(key, value) != 0:
            return
        rows = int(value.shape[0])
    else:
        return
    if rows == num_nodes or (key == "y" and rows == 1):
        return
    fate = (
        f"it is sliced per edge instead (its rows match num_edges={rows})"
        if as_edge
        else f"every batch carries all {rows} rows unsliced"
    )
    warnings.warn(
        f"{who}: data.{key} has {rows} rows but num_nodes={num_nodes}, so it is not treated "
        f"as a node attribute (as in PyG): {fate}. Give it one row per node, or rename it "
        "if it is not per-node data.",
        UserWarning,
        stacklevel=5,
    )


def _num_nodes(data: Any) -> int:
    """``data.num_nodes``; PyG cannot infer it from a ``UnifiedTensor`` (not a torch.Tensor), so a
    unified node table's length is taken first when ``num_nodes`` is not set explicitly."""
    if "num_nodes" not in data:
        for _, value in data.items():
            if isinstance(value, UnifiedTensor):
                return len(value)
    return int(data.num_nodes)


class _PygDataView:
    """The user's PyG ``data`` as gnnsys sees it: one (typed) ``Graph`` plus the node and edge
    tables to fetch per batch and the attributes every batch carries whole.

    ``Data`` is the one-type case of ``HeteroData``: tables are keyed by name for ``Data`` and
    by ``(node_type, name)`` / ``(edge_type, name)`` for ``HeteroData``, and ``build`` fills
    one store per node type and one per edge type (for ``Data`` both are the ``Data`` itself).
    """

    def __init__(
        self, data: Any, weight_attr: Optional[str], who: str, *, along_cat_dim: bool = True
    ) -> None:
        self.weight_attr = weight_attr
        self.node_tables: Dict[Any, Any] = {}
        self.edge_tables: Dict[Any, Any] = {}
        # table key -> the dimension PyG slices the attribute along, where it is not the first
        # (its table is the rows-first view, _rows_first; build moves the dimension back)
        self.cat_dims: Dict[Any, int] = {}
        # per node / edge type id: [(table key, attribute name)] and {name: carried value}
        self.node_keys: List[List[Tuple[Any, str]]] = []
        self.edge_keys: List[List[Tuple[Any, str]]] = []
        self.node_other: List[Dict[str, Any]] = []
        self.edge_other: List[Dict[str, Any]] = []
        self.other: Dict[str, Any] = {}
        # per node type id: whether the data's store sets num_nodes (PyG's batch then does)
        self.node_num_nodes: List[bool] = []
        # table key -> (data store, attribute name, the value read), and the attributes carried
        # whole as (dict, name, data store): what refresh follows
        self._origins: Dict[Any, Tuple[Any, str, Any]] = {}
        self._carried: List[Tuple[Dict[str, Any], str, Any]] = []
        # edge type id -> the data's adj_t (a torch_sparse SparseTensor) for the edge types
        # given that way instead of by edge_index (Data: id 0)
        self.adj_t_of: Dict[int, Any] = {}
        if isinstance(data, (tuple, list)):
            self._from_stores(data, who)
        else:
            self._from_data(data, who, along_cat_dim)
        self.node_store = FeatureStore(self.node_tables)
        self.edge_store = FeatureStore(self.edge_tables)

    @property
    def hetero(self) -> bool:
        return self.graph.is_hetero

    @property
    def adj_t(self) -> Any:
        """A ``Data``'s ``adj_t`` (None when it has edge_index, and for ``HeteroData``)."""
        return None if self.hetero else self.adj_t_of.get(0)

    def add_table(
        self, tables: Dict[Any, Any], key: Any, value: Any, dim: int, source: Any = None
    ) -> None:
        """Put ``value`` in ``tables`` under ``key`` as rows along ``dim`` (PyG's cat dim);
        ``source``: the data store it is attribute ``key``'s name of (followed by ``refresh``)."""
        tables[key] = _rows_first(value, dim)
        if dim != 0:
            self.cat_dims[key] = dim
        if source is not None:
            name = key[1] if isinstance(key, tuple) else key
            self._origins[key] = (source, name, value)

    def carry(self, other: Dict[str, Any], name: str, value: Any, source: Any) -> None:
        """Carry attribute ``name`` of ``source`` whole into every batch (followed by
        ``refresh``)."""
        other[name] = value
        self._carried.append((other, name, source))

    def refresh(self) -> List[Any]:
        """Follow the data's attributes replaced or removed since the loader was built, as PyG
        does, which slices the data's current attributes at every batch (``data.x = new``
        between two passes of one loader, as layer-wise inference does; ``del
        loader.data.x``, as PyG's ``reddit.py`` does before inference): each table is
        re-pointed at the new value (which must keep the rows of the old one), a removed one
        leaves the batches, and each whole-carried attribute is re-read. An attribute added
        since is not seen (a new loader sees it). Returns the table keys removed (the caller
        stops fetching them)."""
        removed = []
        for key, (source, name, value) in list(self._origins.items()):
            current = source[name] if name in source else None
            if current is value:
                continue
            dim = self.cat_dims.get(key, 0)
            node = key in self.node_tables
            store = self.node_store if node else self.edge_store
            tables = self.node_tables if node else self.edge_tables
            if current is None:
                removed.append(key)
                del self._origins[key], store[key], tables[key]
                self.cat_dims.pop(key, None)
                for keys in self.node_keys + self.edge_keys:
                    keys[:] = [(k, n) for k, n in keys if k != key]
                continue
            shape = getattr(current, "shape", None)
            old = tuple(value.shape)
            if shape is None or len(shape) != len(old) or int(shape[dim]) != old[dim]:
                raise ValueError(
                    f"attribute {name!r} was replaced by one of shape "
                    f"{tuple(shape) if shape is not None else type(current).__name__}; the "
                    f"loader's data has {old[dim]} along dimension {dim} (shape {old})"
                )
            # (the tables dict too: it would otherwise keep the replaced tensor alive)
            tables[key] = store[key] = _rows_first(current, dim)
            self._origins[key] = (source, name, current)
        for other, name, source in self._carried:
            if name in source:
                other[name] = source[name]
            else:
                other.pop(name, None)
        return removed

    def restore(self, key: Any, rows: torch.Tensor) -> torch.Tensor:
        """A fetched table's rows as the batch's attribute: the sliced dimension back in its
        place (a contiguous tensor, as PyG's ``index_select`` along that dimension gives)."""
        dim = self.cat_dims.get(key, 0)
        return rows if dim == 0 else rows.movedim(0, dim).contiguous()

    @property
    def node_table_keys(self) -> List[Any]:
        return [k for keys in self.node_keys for k, _ in keys]

    @property
    def edge_table_keys(self) -> List[Any]:
        return [k for keys in self.edge_keys for k, _ in keys]

    def times(self, time_attr: str, who: str) -> Dict[str, Any]:
        """The temporal sampler's times from the ``time_attr`` tables (PyG's rule): node-level
        when nodes carry it, else edge-level (a ``HeteroData`` may not mix both). Node or edge
        types without it get the earliest time, so they are always allowed (as pyg-lib)."""
        g = self.graph
        if not isinstance(time_attr, str):
            raise TypeError(f"{who}: time_attr must be an attribute name, got {time_attr!r}")
        if not self.hetero:
            for level, tables in (("node_time", self.node_tables), ("edge_time", self.edge_tables)):
                if time_attr in tables:
                    return {level: _as_times(tables[time_attr], repr(time_attr))}
            raise ValueError(
                f"{who}: the time attribute {time_attr!r} is neither a node nor an edge attribute"
            )
        node = {t: self.node_tables[(t, time_attr)] for t in g.node_types
                if (t, time_attr) in self.node_tables}  # fmt: skip
        edge = {e: self.edge_tables[(e, time_attr)] for e in g.edge_types
                if (e, time_attr) in self.edge_tables}  # fmt: skip
        if node and edge:
            raise ValueError(
                f"{who}: the time attribute {time_attr!r} holds both node-level and edge-level "
                "times (PyG refuses this too)"
            )
        if not node and not edge:
            raise ValueError(
                f"{who}: the time attribute {time_attr!r} is neither a node nor an edge attribute"
            )
        if node:
            counts = g.num_nodes_dict
            given = {k: _as_times(v, f"{time_attr!r} of {k!r}") for k, v in node.items()}
            return {"node_time": _fill_times(given, g.node_types, counts)}
        tpe = g.type_per_edge
        n_e = torch.bincount(tpe.long(), minlength=len(g.edge_types)) if tpe is not None else None
        counts = {et: int(n_e[e]) if n_e is not None else g.num_edges
                  for e, et in enumerate(g.edge_types)}  # fmt: skip
        given = {k: _as_times(v, f"{time_attr!r} of {k!r}") for k, v in edge.items()}
        return {"edge_time": _fill_times(given, g.edge_types, counts)}

    # -- torch_geometric.data.Data / HeteroData
    def _from_data(self, data: Any, who: str, along_cat_dim: bool = True) -> None:
        from torch_geometric.data import Data, HeteroData

        if isinstance(data, HeteroData):
            return self._from_hetero_data(data, who)
        if not isinstance(data, Data):
            raise TypeError(
                f"{who}: data must be a torch_geometric Data or HeteroData, or a "
                f"(FeatureStore, GraphStore) tuple, got {type(data).__name__}"
            )
        self.data_cls = _data_factory(data)
        self.num_nodes = _num_nodes(data)
        if data.get("adj_t") is not None:
            if data.get("edge_index") is not None:
                raise ValueError(f"{who}: data has both edge_index and adj_t; keep one")
            if self.weight_attr is not None:
                raise NotImplementedError(
                    f"{who}: weight_attr with data.adj_t: give edge_index and the weights as "
                    "an edge attribute"
                )
            _check_adj_t(data.adj_t, (self.num_nodes, self.num_nodes), who, "data.adj_t")
            self.adj_t_of[0] = data.adj_t
            self.graph = _cached_graph(data, self.num_nodes, None, who, adj_t=data.adj_t)
        elif data.get("edge_index") is None:
            raise ValueError(f"{who}: data has no edge_index")
        else:
            self.graph = _cached_graph(data, self.num_nodes, self.weight_attr, who)
        nodes: List[Tuple[Any, str]] = []
        edges: List[Tuple[Any, str]] = []
        kind_of = _attr_kinds(data, self.num_nodes, along_cat_dim)
        for key, value in data.items():
            if key in ("edge_index", "adj_t", "num_nodes"):
                continue
            kind, dim = kind_of(key, value)
            if kind == "node":
                self.add_table(self.node_tables, key, value, dim, data)
                nodes.append((key, key))
            elif kind == "edge":
                self.add_table(self.edge_tables, key, value, dim, data)
                edges.append((key, key))
            else:
                self.carry(self.other, key, value, data)
        for key in (k for k in [n for _, n in edges] + list(self.other) if _node_named(k)):
            _warn_not_per_node(data, key, key in self.edge_tables, self.num_nodes, who)
        self.node_keys, self.edge_keys = [nodes], [edges]
        self.node_other, self.edge_other = [{}], [{}]
        self.node_num_nodes = ["num_nodes" in data]

    def _from_hetero_data(self, data: Any, who: str) -> None:
        self.data_cls = type(data)
        # graph-level attributes (read back from the global store: ``data[name]`` of a name
        # that is not one would make a node type of it)
        for key, value in data.items():
            self.carry(self.other, key, value, data._global_store)
        self.graph, self.adj_t_of = _cached_hetero_graph(data, self.weight_attr, who)
        self.num_nodes = self.graph.num_nodes
        counts = self.graph.num_nodes_dict
        for ntype in self.graph.node_types:
            store = data[ntype]
            keys, other = [], {}
            for name, value in store.items():
                if name == "num_nodes":
                    continue
                dim = _node_table_dim(data, store, name, value, counts[ntype])
                if dim is not None:
                    self.add_table(self.node_tables, (ntype, name), value, dim, store)
                    keys.append(((ntype, name), name))
                else:
                    self.carry(other, name, value, store)
            self.node_keys.append(keys)
            self.node_other.append(other)
            self.node_num_nodes.append("num_nodes" in store)
        for etype in self.graph.edge_types:
            store = data[etype]
            keys, other = [], {}
            for name, value in store.items():
                if name in ("edge_index", "adj_t"):
                    continue
                # sliced by e_id along its cat dim: edge_attr [E, F] by rows, an
                # edge_label_index [2, E] by columns (PyG's filter_edge_store_)
                dim = (
                    _cat_dim(data, name, value, store) if isinstance(value, torch.Tensor) else None
                )
                if dim is not None and store.is_edge_attr(name):
                    self.add_table(self.edge_tables, (etype, name), value, dim, store)
                    keys.append(((etype, name), name))
                else:
                    self.carry(other, name, value, store)
            self.edge_keys.append(keys)
            self.edge_other.append(other)

    # -- (torch_geometric FeatureStore, GraphStore): PyG's remote backend
    def _from_stores(self, data: Sequence[Any], who: str) -> None:
        from torch_geometric.data import Data, HeteroData

        if len(data) != 2:
            raise TypeError(f"{who}: data as a tuple must be (FeatureStore, GraphStore)")
        fstore, gstore = data
        if self.weight_attr is not None:
            raise NotImplementedError(f"{who}: weight_attr with a (FeatureStore, GraphStore)")
        if getattr(gstore, "dist_graph", None) is not None:
            return self._from_partition(fstore, gstore, who)
        attrs = list(gstore.get_all_edge_attrs())
        tensor_attrs = list(fstore.get_all_tensor_attrs())
        if not attrs:
            raise ValueError(f"{who}: the GraphStore holds no edges")
        typed = any(a.edge_type is not None for a in attrs) and (
            len(attrs) > 1 or len({a.group_name for a in tensor_attrs}) > 1
        )
        if not typed:
            edge_index = _store_edge_index(gstore, attrs[0])
            size = getattr(attrs[0], "size", None)
            n = int(size[0]) if size else None
            keys = []
            for a in tensor_attrs:
                table = _StoreTable(fstore, a)
                self.node_tables[a.attr_name] = table
                keys.append((a.attr_name, a.attr_name))
                n = n if n is not None else len(table)
            if n is None:
                n = int(edge_index.max()) + 1 if edge_index.numel() else 0
            self.data_cls = Data
            self.num_nodes = n
            self.graph = Graph.from_edge_index(edge_index, n)
            self.node_keys, self.edge_keys = [keys], [[]]
            self.node_other, self.edge_other = [{}], [{}]
            self.node_num_nodes = [True]  # PyG's filter_custom_store sets it
            return
        counts: Dict[str, int] = {}
        for a in attrs:
            size = getattr(a, "size", None)
            if size:
                counts.setdefault(a.edge_type[0], int(size[0]))
                counts.setdefault(a.edge_type[2], int(size[1]))
        by_type: Dict[str, List[Tuple[Any, str]]] = {}
        for a in tensor_attrs:
            table = _StoreTable(fstore, a)
            counts.setdefault(a.group_name, len(table))
            self.node_tables[(a.group_name, a.attr_name)] = table
            by_type.setdefault(a.group_name, []).append(((a.group_name, a.attr_name), a.attr_name))
        edges = {tuple(a.edge_type): _store_edge_index(gstore, a) for a in attrs}
        for et, ei in edges.items():
            for side, row in ((et[0], 0), (et[2], 1)):
                if side not in counts:
                    counts[side] = int(ei[row].max()) + 1 if ei.numel() else 0
        self.data_cls = HeteroData
        self.graph = Graph.from_hetero(edges, counts)
        self.num_nodes = self.graph.num_nodes
        self.node_keys = [by_type.get(t, []) for t in self.graph.node_types]
        self.node_num_nodes = [True] * len(self.node_keys)  # as filter_custom_hetero_store
        self.edge_keys = [[] for _ in self.graph.edge_types]
        self.node_other = [{} for _ in self.graph.node_types]
        self.edge_other = [{} for _ in self.graph.edge_types]

    def _from_partition(self, fstore: Any, gstore: Any, who: str) -> None:
        """``gnnsys.distributed.pyg_stores``: this machine's part; sampled across machines."""
        tables = getattr(fstore, "tables", None)
        if tables is None:
            raise TypeError(
                f"{who}: a gnnsys DistGraphStore pairs with its DistFeatureStore "
                "(gnnsys.distributed.pyg.pyg_stores), got {type(fstore).__name__}"
            )
        from torch_geometric.data import Data, HeteroData

        self.graph = gstore.dist_graph
        self.num_nodes = self.graph.num_nodes
        self.node_tables.update(tables)
        if self.graph.is_hetero:  # tables keyed (node type, name): HeteroData batches
            self.data_cls = HeteroData
            types = self.graph.node_types
            self.node_keys = [[(k, k[1]) for k in tables if k[0] == t] for t in types]
            self.edge_keys = [[] for _ in self.graph.edge_types]
            self.node_other = [{} for _ in types]
            self.edge_other = [{} for _ in self.graph.edge_types]
            self.node_num_nodes = [False] * len(types)
            return
        self.data_cls = Data
        self.node_keys, self.edge_keys = [[(k, k) for k in tables]], [[]]
        self.node_other, self.edge_other = [{}], [{}]
        self.node_num_nodes = [False]

    # -- input nodes
    def input_nodes(self, input_nodes: Any, who: str) -> Tuple[Optional[int], torch.Tensor, bool]:
        """(input node type id or None, seed ids within that type, whether ``input_id`` is the
        seeds' ids rather than their positions), as PyG's ``get_input_nodes`` reads them."""
        if not self.hetero:
            if isinstance(input_nodes, (str, tuple)):
                raise ValueError(
                    f"{who}: input_nodes names a node type, but data is homogeneous; give node "
                    "ids or a mask"
                )
            seeds, by_id = _input_nodes(input_nodes, self.num_nodes, who)
            return None, seeds, by_id
        if input_nodes is None:
            raise ValueError(
                f"{who}: input_nodes is required for heterogeneous data: a node type, or "
                f"(node type, ids or mask); node types: {self.graph.node_types}"
            )
        if isinstance(input_nodes, str):
            ntype, ids = input_nodes, None
        elif isinstance(input_nodes, (tuple, list)) and len(input_nodes) == 2:
            ntype, ids = input_nodes
        else:
            raise TypeError(
                f"{who}: input_nodes for heterogeneous data must be a node type or a "
                f"(node type, ids or mask) pair, got {type(input_nodes).__name__}"
            )
        try:
            t = self.graph.node_type_id(ntype)
        except ValueError as err:
            raise ValueError(f"{who}: input_nodes: {err}") from None
        count = self.graph.num_nodes_dict[self.graph.node_types[t]]
        seeds, by_id = _input_nodes(ids, count, who, f"input_nodes[{ntype!r}]")
        return t, seeds, by_id

    # -- building the user's batch
    def types_without_ids(self, sub: SampledSubgraph) -> Tuple[int, ...]:
        """The edge types of a typed batch whose edges have no ids: merged with their reverse
        (``subgraph_type="bidirectional"``, as PyG drops them)."""
        return tuple(sub.metadata.get("edge_types_without_ids", ())) if self.hetero else ()

    def has_hop_counts(self, sub: SampledSubgraph) -> bool:
        """Whether a typed batch's per-hop counts hold: not where they no longer do
        (bidirectional, as PyG drops them) or never did (HGT's iterations are not hops; PyG's
        HGT batch has none)."""
        meta = sub.metadata
        if self.hetero and (
            "edge_types_without_ids" in meta or meta.get("subgraph_type") == "bidirectional"
        ):
            return False
        return bool(meta.get("per_hop_counts", True))

    def build(self, batch: Batch, sub: SampledSubgraph) -> Any:
        """The PyG batch: per node type ``n_id``, ``num_sampled_nodes`` and the node tables;
        per edge type ``edge_index`` (a view of the sampled edges), ``e_id``,
        ``num_sampled_edges`` and the edge tables; ``batch`` when disjoint."""
        out = self.data_cls()
        for key, value in self.other.items():
            out[key] = value
        hetero = self.hetero
        off = self.graph.type_offsets()
        no_ids = self.types_without_ids(sub)
        hop_counts = self.has_hop_counts(sub)
        for t, ntype in enumerate(self.graph.node_types):
            store = out[ntype] if hetero else out
            for key, name in self.node_keys[t]:
                store[name] = self.restore(key, batch.node_data[key])
            for name, value in self.node_other[t].items():
                store[name] = value
            nodes = sub.type_nodes(t) if hetero else sub.nodes
            # PyG: a store that sets num_nodes gets the batch's count; we also set it where no
            # node table would tell it
            if not self.node_keys[t] or self.node_num_nodes[t]:
                store.num_nodes = int(nodes.numel())
            store.n_id = nodes - off[t] if hetero and int(off[t]) else nodes
            if not hetero:
                store.num_sampled_nodes = list(sub.num_sampled_nodes)
            elif hop_counts:
                store.num_sampled_nodes = sub.type_num_sampled_nodes[:, t].tolist()
            if sub.batch is not None:
                lo = int(sub.node_offsets[t]) if hetero else 0
                store.batch = sub.batch[lo : lo + nodes.numel()]
            elif not hetero and "batch" in store:
                # PyG sets a Data batch's ``batch`` to the sampler's (None unless disjoint),
                # which drops the data's own (a Batch source's graph ids) from the batch
                del store.batch
        ei = sub.edge_index()
        for e in range(len(self.graph.edge_types)):
            store = out[self.graph.edge_types[e]] if hetero else out
            if hetero:
                lo, hi = sub.type_edge_range(e)
                # a type merged with its reverse (bidirectional) keeps no ids
                ids = None if e in no_ids else sub.edge_ids[lo:hi]
                adj_t = self.adj_t_of.get(e)
                if adj_t is None:
                    store.edge_index = ei[:, lo:hi]
                else:  # PyG's rule: the batch's edges of this type as adj_t, [dst x src]
                    src_t, _, dst_t = self.graph.edge_types[e]
                    size = (len(out[dst_t].n_id), len(out[src_t].n_id))
                    # (ids None: an adj_t with values is refused at construction)
                    store.adj_t = _batch_adj_t(adj_t, ei[:, lo:hi], ids, size)
                if ids is not None:
                    store.e_id = ids
                if hop_counts:
                    store.num_sampled_edges = sub.type_edge_counts(e)
            elif self.adj_t is not None:  # PyG's rule: the batch's edges as adj_t
                n = sub.nodes.numel()
                store.adj_t = _batch_adj_t(self.adj_t, ei, sub.edge_ids, (n, n))
                store.e_id = sub.edge_ids
                store.num_sampled_edges = list(sub.num_sampled_edges)
            else:
                store.edge_index = ei
                if sub.edge_ids is not None:
                    store.e_id = sub.edge_ids
                store.num_sampled_edges = list(sub.num_sampled_edges)
            for key, name in self.edge_keys[e]:
                if key in batch.edge_data:  # absent for a type made bidirectional
                    store[name] = self.restore(key, batch.edge_data[key])
            for name, value in self.edge_other[e].items():
                store[name] = value
            weights = sub.metadata.get("edge_weights")  # LaborLoader: LABOR-i or weighted
            if weights is not None:
                lo, hi = sub.type_edge_range(e)
                store.edge_weight = weights[lo:hi] if hetero else weights
        return out


def _data_factory(data: Any) -> Callable[[], Any]:
    """What makes an empty batch of ``data``'s class: the class itself, or for a PyG ``Batch``
    (a class PyG makes on the fly, e.g. ``DataBatch``) that class again (calling it plainly
    would derive yet another one, ``DataDataBatch``), as PyG's ``copy.copy`` keeps it."""
    from torch_geometric.data import Batch

    cls = type(data)
    if isinstance(data, Batch):
        return functools.partial(cls, _base_cls=cls)
    return cls


def _node_table_dim(data: Any, store: Any, name: str, value: Any, count: int) -> Optional[int]:
    """The dimension to slice a per-node attribute of a HeteroData node store along (PyG's
    rule: ``is_node_attr``, along ``__cat_dim__``; a UnifiedTensor by its length, which PyG
    cannot read), or None when ``name`` is not per-node."""
    if isinstance(value, UnifiedTensor):
        return 0 if len(value) == count else None
    if not isinstance(value, (torch.Tensor, np.ndarray)) or value.ndim == 0:
        return None
    dim = _cat_dim(data, name, value, store)
    if dim is None or not store.is_node_attr(name) or int(value.shape[dim]) != count:
        return None
    return dim


class _StoreTable:
    """One tensor of a PyG FeatureStore, indexable by row ids (read through ``get_tensor``)."""

    def __init__(self, store: Any, attr: Any) -> None:
        self.store, self.attr = store, attr
        self.shape = tuple(store.get_tensor_size(attr))

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, ids: torch.Tensor) -> torch.Tensor:
        return self.store.get_tensor(group_name=self.attr.group_name, attr_name=self.attr.attr_name,
                                     index=ids)  # fmt: skip

    def whole(self) -> torch.Tensor:
        """Every row (e.g. node times, read once when the loader is built)."""
        return self.store.get_tensor(group_name=self.attr.group_name, attr_name=self.attr.attr_name,
                                     index=None)  # fmt: skip


def _store_edge_index(gstore: Any, attr: Any) -> torch.Tensor:
    layout = str(getattr(attr.layout, "value", attr.layout))
    a, b = gstore.get_edge_index(attr)
    if layout == "coo":
        return torch.stack([a.long(), b.long()])
    ptr = a.long()
    expanded = torch.repeat_interleave(torch.arange(ptr.numel() - 1), ptr[1:] - ptr[:-1])
    if layout == "csr":  # (rowptr, col)
        return torch.stack([expanded, b.long()])
    return torch.stack([b.long(), expanded])  # csc: (colptr, row)


# One Graph per edge_index tensor (and weights): trainers build loaders per epoch, and fresh
# Data objects around the same edge_index, so entries are keyed by the tensor's id() and
# dropped when that tensor is collected; an entry is used only while its token (weak
# references, gnnsys._tokens) matches the very tensors it was built from.
_GRAPHS: Dict[int, Tuple[Any, tuple, Graph]] = {}
_GRAPHS_LOCK = threading.Lock()


def _sampling_device(data: Any) -> Optional[torch.device]:
    """The GPU a ``NeighborLoader`` samples on (a gnnsys extension: PyG samples on the CPU):
    the device of the data's ``edge_index`` when it is on CUDA; None (the CPU) otherwise."""
    from torch_geometric.data import HeteroData

    if isinstance(data, (tuple, list)):
        return None
    if isinstance(data, HeteroData):
        eis = [data[et].get("edge_index") for et in data.edge_types]
    else:
        eis = [getattr(data, "edge_index", None)]
    devices = {ei.device for ei in eis if isinstance(ei, torch.Tensor)}
    if len(devices) == 1:
        (dev,) = devices
        return dev if dev.type == "cuda" else None
    return None


def _as_times(value: Any, name: str = "time_attr") -> torch.Tensor:
    """One time per node or edge: a 1-D attribute, or [n, 1]; a wider one is an error naming
    ``name`` (it was flattened, and its length reported against the node count)."""
    if isinstance(value, _StoreTable):  # a FeatureStore's tensor, read whole
        value = value.whole()
    elif hasattr(value, "fetch_group"):  # a partition's DistTable: every row (collective)
        value = value[torch.arange(len(value))]
    t = (
        value.detach().cpu()
        if isinstance(value, torch.Tensor)
        else torch.as_tensor(np.asarray(value))
    )
    if t.dim() > 1 and not (t.dim() == 2 and t.shape[1] == 1):
        raise ValueError(f"the time attribute {name} has shape {tuple(t.shape)}: one time per "
                         "node or edge needs shape [n] (or [n, 1])")  # fmt: skip
    return t.reshape(-1)


def _fill_times(given: Dict[Any, torch.Tensor], types: Sequence[Any], counts: Dict[Any, int]):
    """Times per type; a type without them gets the earliest representable time."""
    floating = any(t.is_floating_point() for t in given.values())
    dtype = torch.float64 if floating else torch.int64
    earliest = torch.finfo(dtype).min if floating else torch.iinfo(dtype).min
    return {
        t: given[t].to(dtype) if t in given else torch.full((counts[t],), earliest, dtype=dtype)
        for t in types
    }


def _seed_times(sampler: Any, seeds: torch.Tensor, input_time: Any, who: str) -> np.ndarray:
    """Each input's time: ``input_time``, else its node time (PyG's default)."""
    if input_time is None:
        if sampler._node_time.shape[0] == 0:
            raise ValueError(f"{who}: input_time is required with an edge-level time_attr")
        return sampler._node_time[seeds.numpy()]
    try:
        return sampler.check_seed_time(input_time, int(seeds.numel()))
    except (TypeError, ValueError) as err:
        raise type(err)(f"{who}: input_time: {err}") from None


def _check_adj_t(adj_t: Any, size: Tuple[int, int], who: str, what: str) -> None:
    """Check that ``adj_t`` (named ``what`` in errors) is a torch_sparse ``SparseTensor`` of
    ``size`` (targets x sources) with (if any) one value row per entry."""
    try:
        from torch_sparse import SparseTensor
    except ImportError:  # pragma: no cover - only where torch_sparse is not installed
        SparseTensor = None
    if SparseTensor is None or not isinstance(adj_t, SparseTensor):
        raise NotImplementedError(
            f"{who}: {what} must be a torch_sparse SparseTensor (what T.ToSparseTensor() "
            f"makes), got {type(adj_t).__name__}; or give edge_index"
        )
    rows, cols = adj_t.sparse_sizes()
    if (rows, cols) != tuple(size):
        raise ValueError(
            f"{who}: {what} is {rows} x {cols}, but the data's node counts make it "
            f"{size[0]} x {size[1]} (targets x sources)"
        )
    value = adj_t.storage.value()
    if value is not None and (value.dim() == 0 or value.shape[0] != adj_t.nnz()):
        raise ValueError(f"{who}: {what}'s values must have one row per entry")


def _adj_t_edge_index(adj_t: Any) -> torch.Tensor:
    """``adj_t``'s entries as an edge_index (row 0 the source: adj_t's column), in its storage
    order, so an edge id is the position of its entry, as PyG's ``e_id``."""
    return torch.stack([adj_t.storage.col(), adj_t.storage.row()]).cpu()


def _batch_adj_t(
    adj_t: Any, edge_index: torch.Tensor, e_id: Optional[torch.Tensor], size: Tuple[int, int]
) -> Any:
    """The batch's ``adj_t`` (``size``: targets x sources, row = target) on the device of the
    data's ``adj_t``, its values the sampled entries' values (as PyG's ``filter_edge_store_``;
    ``e_id`` None only for an adj_t without values)."""
    from torch_sparse import SparseTensor

    dev = adj_t.device()
    value = adj_t.storage.value()
    v = None if value is None else value.index_select(0, e_id.to(value.device))
    return SparseTensor(row=edge_index[1].to(dev), col=edge_index[0].to(dev), value=v,
                        sparse_sizes=tuple(size), is_sorted=False, trust_data=True)  # fmt: skip


def _cached_graph(
    data: Any, n: int, weight_attr: Optional[str], who: str, adj_t: Any = None
) -> Graph:
    """``Graph.from_edge_index`` of ``data.edge_index`` (or of ``adj_t``'s entries), cached by
    that tensor (``adj_t``: its column tensor) while it lives unchanged."""
    if adj_t is not None:
        ei = adj_t.storage.col()
    else:
        ei = data.edge_index
    if not isinstance(ei, torch.Tensor):
        raise TypeError(f"{who}: data.edge_index must be a tensor, got {type(ei).__name__}")
    weight = None
    if weight_attr is not None:
        if weight_attr not in data:
            raise ValueError(f"{who}: weight_attr={weight_attr!r} is not an attribute of data")
        weight = data[weight_attr]
        if not isinstance(weight, torch.Tensor) or weight.dim() != 1:
            raise ValueError(f"{who}: data.{weight_attr} must be a 1-D tensor of edge weights")
    with _GRAPHS_LOCK:
        hit = _GRAPHS.get(id(ei))
    if hit is not None and hit[1] == (n, weight_attr) and token_matches(hit[0], ei, weight):
        return hit[2]
    edges = _adj_t_edge_index(adj_t) if adj_t is not None else ei.cpu()
    graph = Graph.from_edge_index(edges, n, edge_weight=weight)
    _cache_graph(ei, (tensors_token(ei, weight), (n, weight_attr), graph))
    return graph


def _cache_graph(anchor: torch.Tensor, entry: Tuple[Any, tuple, Graph]) -> None:
    """Keep ``entry`` (tensors token, other inputs, graph) under ``anchor`` until that tensor
    is collected (the token then no longer matches anything: it holds weak references)."""
    with _GRAPHS_LOCK:
        if id(anchor) not in _GRAPHS:
            weakref.finalize(anchor, _GRAPHS.pop, id(anchor), None)
        _GRAPHS[id(anchor)] = entry


def _cached_hetero_graph(
    data: Any, weight_attr: Optional[str], who: str
) -> Tuple[Graph, Dict[int, Any]]:
    """The typed Graph of a ``HeteroData`` and {edge type id: adj_t} for the edge types given
    by ``adj_t`` (a torch_sparse ``SparseTensor``, targets x sources, as
    ``T.ToSparseTensor()`` makes) instead of ``edge_index``; an adj_t's entries are its edges
    in storage order (edge id = entry position, as PyG's ``e_id``). Cached like
    ``_cached_graph`` by the first edge type's tensor (edge_index, or adj_t's column tensor);
    the token covers every edge type's tensors and the node counts."""
    if not data.edge_types:
        raise ValueError(f"{who}: the HeteroData has no edge types")
    try:
        counts = hetero_node_counts(data)
    except ValueError as err:
        raise ValueError(f"{who}: {err}") from None
    tensors, adj_t_of = [], {}
    for e, et in enumerate(data.edge_types):
        store = data[et]
        ei, adj_t = store.get("edge_index"), store.get("adj_t")
        if adj_t is not None:
            what = f"data[{et!r}].adj_t"
            if ei is not None:
                raise ValueError(f"{who}: edge type {et!r} has both edge_index and adj_t; keep one")
            if weight_attr is not None:
                raise NotImplementedError(
                    f"{who}: weight_attr with {what}: give edge_index and the weights as an "
                    "edge attribute"
                )
            _check_adj_t(adj_t, (counts[et[2]], counts[et[0]]), who, what)
            adj_t_of[e] = adj_t
            ei = adj_t.storage.col()
        elif not isinstance(ei, torch.Tensor):
            raise ValueError(f"{who}: edge type {et!r} has no edge_index tensor")
        tensors.append(ei)
        if weight_attr is not None:  # (Graph.from_pyg reads, and checks, each type's weights)
            tensors.append(store.get(weight_attr))
    inputs = (tuple(counts.items()), weight_attr)
    anchor = tensors[0]
    with _GRAPHS_LOCK:
        hit = _GRAPHS.get(id(anchor))
    if hit is not None and hit[1] == inputs and token_matches(hit[0], *tensors):
        return hit[2], adj_t_of
    try:
        if adj_t_of:  # (weights are refused with adj_t above)
            edges = {et: _adj_t_edge_index(adj_t_of[e]) if e in adj_t_of else data[et].edge_index
                     for e, et in enumerate(data.edge_types)}  # fmt: skip
            graph = Graph.from_hetero(edges, counts)
        else:
            graph = Graph.from_pyg(data, weight_attr=weight_attr)
    except ValueError as err:
        raise ValueError(f"{who}: {err}") from None
    _cache_graph(anchor, (tensors_token(*tensors), inputs, graph))
    return graph, adj_t_of


# ---------------------------------------------------------------------- argument checks
def _fanouts(num_neighbors: Any, graph: Graph, who: str) -> np.ndarray:
    """``num_neighbors`` as PyG takes it, as an [hops, edge types] matrix: a list or tuple of
    ints (one per hop, every edge type alike), a dict ``{edge_type: [per hop]}`` (heterogeneous
    data; every edge type listed, as PyG requires, unless a ``NumNeighbors(default=...)`` fills
    the rest), a ``NumNeighbors``, or a 1-D integer tensor / array read as a list. ``[]`` samples
    no hop: the batch is the seeds alone."""
    from torch_geometric.sampler import NumNeighbors

    default = None
    values = num_neighbors
    if isinstance(num_neighbors, NumNeighbors):
        values, default = num_neighbors.values, num_neighbors.default
    if isinstance(values, dict):
        if not graph.is_hetero:
            raise ValueError(
                f"{who}: num_neighbors as a dict (per edge type) needs heterogeneous data; "
                "give a list with one int per hop"
            )
        values = _num_neighbors_keys(values, graph, who)
        try:
            return fanout_matrix(values, graph, default=default, name="num_neighbors",
                                 allow_empty=True)  # fmt: skip
        except (TypeError, ValueError) as err:
            raise type(err)(f"{who}: {err}") from None
    if isinstance(values, (torch.Tensor, np.ndarray)):
        t = torch.as_tensor(values)
        if t.dim() != 1 or t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise ValueError(
                f"{who}: num_neighbors as a tensor must be 1-D with integer entries (one fanout "
                f"per hop), got shape {tuple(t.shape)} and dtype {t.dtype}"
            )
        values = t.tolist()
    if not isinstance(values, (list, tuple)):
        hint = f" (one hop: [{values}])" if isinstance(values, (int, np.integer)) else ""
        raise TypeError(
            f"{who}: num_neighbors must be a list with one int per hop, e.g. [15, 10]{hint}; "
            f"got {type(values).__name__} {values!r}"
        )
    try:
        return fanout_matrix(list(values), graph, name="num_neighbors", allow_empty=True)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{who}: {err}") from None


def _partition_sampler(graph: Any, fanouts: np.ndarray, cls: Any, options: Dict[str, Any],
                       replace: bool, subgraph_type: str, disjoint: bool, who: str) -> Any:  # fmt: skip
    """The ``DistNeighborSampler`` of a partition's stores (PyG semantics; temporal:
    ``DistTemporalNeighborSampler``), or a clear refusal of what it does not sample."""
    from gnnsys.distributed.graph import DistNeighborSampler, DistTemporalNeighborSampler
    from gnnsys.loaders.neighbor import LaborSampler

    if subgraph_type != "directional":
        raise NotImplementedError(
            f"{who}: subgraph_type={subgraph_type!r} over a partition (directional only)"
        )
    if cls is TemporalNeighborSampler:
        return DistTemporalNeighborSampler(graph, fanouts, replace=replace, **options)
    labor = cls is LaborSampler
    if cls is not None and not labor:
        raise NotImplementedError(f"{who}: {cls.__name__} over a partition")
    if labor and (options.get("importance_sampling", 0) or options.get("batch_dependency", 1) > 1):
        raise NotImplementedError(f"{who}: LABOR-i or batch_dependency over a partition")
    return DistNeighborSampler(graph, fanouts, replace=replace, disjoint=disjoint, labor=labor,
                               layer_dependency=bool(options.get("layer_dependency", False)))  # fmt: skip


def _subgraph_type(subgraph_type: Any, directed: bool, who: str) -> str:
    value = str(getattr(subgraph_type, "value", subgraph_type))
    if not directed:
        warnings.warn(
            f"{who}: directed=False is deprecated (as in PyG); use subgraph_type='induced'",
            DeprecationWarning,
            stacklevel=3,
        )
        value = "induced"
    if value not in ("directional", "bidirectional", "induced"):
        raise ValueError(
            f"{who}: subgraph_type must be 'directional', 'bidirectional' or 'induced', "
            f"got {subgraph_type!r}"
        )
    return value


def _check_adj_t_subgraph(view: _PygDataView, subgraph_type: str, who: str) -> None:
    """Refuse a typed bidirectional subgraph over adj_t with values: the edge types it merges
    with their reverse keep no edge ids (as PyG's), so their values could not be sliced."""
    valued = [view.graph.edge_types[e] for e, a in view.adj_t_of.items()
              if a.storage.value() is not None]  # fmt: skip
    if view.hetero and subgraph_type == "bidirectional" and valued:
        raise NotImplementedError(
            f"{who}: subgraph_type='bidirectional' on a HeteroData whose adj_t has values "
            f"(edge types {valued}): the merged edges keep no ids to slice the values by; use "
            "edge_index with edge attributes, or 'directional'"
        )


def _check_flags(is_sorted: Any, filter_per_worker: Any, who: str) -> None:
    """``is_sorted`` and ``filter_per_worker`` have no effect in gnnsys (see NeighborLoader), but
    a value PyG would not take is still an error."""
    if not isinstance(is_sorted, (bool, np.bool_)):
        raise TypeError(f"{who}: is_sorted must be a bool, got {is_sorted!r}")
    if filter_per_worker is not None and not isinstance(filter_per_worker, (bool, np.bool_)):
        raise TypeError(
            f"{who}: filter_per_worker must be None or a bool, got {filter_per_worker!r}"
        )


def _check_common(
    who: str,
    temporal_strategy: str,
    time_attr: Optional[str],
    neighbor_sampler: Any,
    transform: Any,
    transform_sampler_output: Any,
) -> None:
    if temporal_strategy not in TEMPORAL_STRATEGIES:
        raise ValueError(
            f"{who}: temporal_strategy must be one of {TEMPORAL_STRATEGIES}, "
            f"got {temporal_strategy!r}"
        )
    if neighbor_sampler is not None:
        raise NotImplementedError(
            f"{who}: neighbor_sampler (a PyG sampler object) is not supported; gnnsys samples "
            "with its own kernels"
        )
    for name, fn in (
        ("transform", transform),
        ("transform_sampler_output", transform_sampler_output),
    ):
        if fn is not None and not callable(fn):
            raise TypeError(f"{who}: {name} must be callable, got {type(fn).__name__}")


def _loader_options(kwargs: Dict[str, Any], who: str) -> Dict[str, Any]:
    for name in _DROPPED_KWARGS:
        kwargs.pop(name, None)
    unknown = [k for k in kwargs if k not in _LOADER_KWARGS + _TORCH_ONLY]
    if unknown:
        raise NotImplementedError(f"{who}: argument {unknown[0]!r} is not supported by gnnsys")
    opts: Dict[str, Any] = {
        "batch_size": kwargs.get("batch_size", 1),
        "shuffle": kwargs.get("shuffle", False),
        "drop_last": kwargs.get("drop_last", False),
    }
    workers = kwargs.get("num_workers", 0)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"{who}: num_workers must be an int >= 0, got {workers!r}")
    threads = kwargs.get("num_threads")
    opts["num_threads"] = threads if threads is not None else (workers or None)
    if kwargs.get("prefetch_factor") is not None:
        opts["prefetch"] = kwargs["prefetch_factor"]
    if kwargs.get("pin_memory"):
        opts["pin_memory"] = True
    if kwargs.get("device") is not None:
        opts["device"] = kwargs["device"]
    if kwargs.get("sampler") is not None:
        opts["input_sampler"] = kwargs["sampler"]
    seed = kwargs.get("seed")
    if seed is None:  # as PyG: reproducible under torch.manual_seed (or the given generator)
        seed = int(torch.randint(0, 2**62, (1,), generator=kwargs.get("generator")))
    opts["seed"] = seed
    return opts


def _input_nodes(
    input_nodes: Any, n: int, who: str, name: str = "input_nodes"
) -> Tuple[torch.Tensor, bool]:
    """(seed node ids, whether input_id should be the global ids instead of positions).

    As PyG: a bool tensor is a mask over the nodes, any integer tensor (uint8 too) holds node
    ids. A uint8 tensor of 0/1 with one entry per node is still read as ids, with a warning
    (it is most likely a mask: use ``.bool()``). An empty selection (no ids, or a mask with no
    True) raises ValueError: there would be no batches.
    """
    if input_nodes is None:
        return torch.arange(n), True
    if isinstance(input_nodes, np.ndarray):
        input_nodes = torch.from_numpy(np.ascontiguousarray(input_nodes))
    if isinstance(input_nodes, (list, range)):
        input_nodes = torch.as_tensor(list(input_nodes))  # a list of bools is a mask
        if input_nodes.numel() == 0:
            input_nodes = input_nodes.long()
    if not isinstance(input_nodes, torch.Tensor):
        raise TypeError(f"{who}: {name} must be a tensor, got {type(input_nodes).__name__}")
    check_data_device(f"{who}: {name}", input_nodes)
    if input_nodes.dtype == torch.bool:
        if input_nodes.dim() != 1 or input_nodes.numel() != n:
            raise ValueError(
                f"{who}: {name} mask has shape {tuple(input_nodes.shape)}, expected [{n}] "
                "(one entry per node)"
            )
        seeds = torch.nonzero(input_nodes.cpu()).flatten()
        if seeds.numel() == 0:
            raise ValueError(
                f"{who}: {name} is empty: the mask selects no node, so there is nothing to batch"
            )
        return seeds, True
    if input_nodes.numel() == 0:
        raise ValueError(f"{who}: {name} is empty: no node ids, so there is nothing to batch")
    ids = check_index(name, input_nodes, n, device=None).cpu()
    if input_nodes.dtype == torch.uint8 and ids.numel() == n > 2 and int(ids.max()) <= 1:
        warnings.warn(
            f"{who}: input_nodes is a torch.uint8 tensor of 0/1 with one entry per node; as in "
            "PyG it is read as node ids (seeds 0 and 1 over and over), not as a mask. Pass "
            "input_nodes.bool() to select the nodes it marks.",
            UserWarning,
            stacklevel=3,
        )
    return ids, False


# ---------------------------------------------------------------------- NeighborLoader
# torch DataLoader keywords PyG passes through; recorded on the DataLoader, no effect on the
# engine (it uses threads, not worker processes).
_TORCH_ONLY = ("timeout", "worker_init_fn", "multiprocessing_context", "pin_memory_device",
               "in_order")  # fmt: skip


def _torch_kwargs(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """The keywords a front passes to its ``torch.utils.data.DataLoader`` base: the DataLoader's
    own, less gnnsys's extras and the ``dataset`` / ``collate_fn`` the front sets itself."""
    out = {k: v for k, v in kwargs.items() if k in _LOADER_KWARGS + _TORCH_ONLY}
    for k in ("seed", "device", "num_threads", "dataset", "collate_fn"):
        out.pop(k, None)
    return out


class _LoaderFront(torch.utils.data.DataLoader):
    """What both PyG front ends share: a ``torch.utils.data.DataLoader`` over the input
    positions (as PyG's loaders are), whose iteration, length and epochs go to the one
    gnnsys ``Loader``."""

    loader: Loader
    view: _PygDataView

    def _init_dataloader(self, num_inputs: int, kwargs: Dict[str, Any]) -> None:
        super().__init__(range(num_inputs), collate_fn=self.collate_fn, **_torch_kwargs(kwargs))

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        self._follow_data()
        return iter(self.loader)

    def _follow_data(self) -> None:
        """The data's attributes as they are now (PyG reads them at every batch)."""
        removed = self.view.refresh()
        if removed:
            self.loader.drop_tables(removed)

    def __call__(self, index: Any) -> Any:
        """The batch for the input positions ``index`` (PyG's ``loader(index)``), sampled with
        this epoch's key for batch -1 (the same every call)."""
        return self.collate_fn(index)

    def collate_fn(self, index: Any) -> Any:
        """Sample, fetch and build the batch of input positions ``index``."""
        self._follow_data()
        pos = check_index("index", torch.as_tensor(index), len(self.loader.seeds))
        seeds = self.loader.seeds[pos]
        batch = self.loader.make_batch(-1, self.loader.epoch, seeds, pos)
        if self.loader.device is not None:
            batch = batch.to(self.loader.device)
        return self._collate(batch)

    def filter_fn(self, out: Any) -> Any:
        """PyG's second stage (``NodeLoader.filter_fn``) is part of ``collate_fn`` here, which
        returns the finished batch: ``out`` as it is (what PyG's ``ZipLoader`` calls)."""
        return out

    def set_epoch(self, epoch: int) -> None:
        """Seed the next iteration's shuffle, negatives and samples with ``epoch``."""
        self.loader.set_epoch(epoch)

    # PyG's loader mixins (AffinityMixin, MultithreadingMixin, LogMemoryMixin). PyG's hooks run
    # in its worker processes; the workers here are threads of this process (num_workers of
    # them), so each hook acts on its worker thread alone, as each worker starts a pass.
    @contextlib.contextmanager
    def enable_cpu_affinity(self, loader_cores: Optional[Sequence[Any]] = None) -> Iterator[None]:
        """PyG's ``enable_cpu_affinity``: inside the context, worker ``i`` runs on
        ``loader_cores[i]`` (a CPU, or a list of CPUs). Default: one CPU per worker, the first
        ``num_workers`` this process may use (PyG: the first cores of NUMA node 0). As PyG's,
        it pins the workers only; the training thread stays where it is. PyG's errors: no
        workers, or not one entry per worker; CPUs this process may not use are refused.

        Example:
            >>> loader = NeighborLoader(data, [15, 10], batch_size=1024, num_workers=1)
            >>> with loader.enable_cpu_affinity(loader_cores=[0]):
            ...     for batch in loader: ...
        """
        if not hasattr(os, "sched_setaffinity"):
            raise NotImplementedError("enable_cpu_affinity needs Linux (os.sched_setaffinity)")
        if not self.num_workers > 0:
            raise ValueError(
                f"'enable_cpu_affinity' should be used with at least one worker "
                f"(got {self.num_workers})"
            )
        if loader_cores and len(loader_cores) != self.num_workers:
            raise ValueError(
                f"The number of loader cores (got {len(loader_cores)}) in 'enable_cpu_affinity' "
                f"should match with the number of workers (got {self.num_workers})"
            )
        available = sorted(os.sched_getaffinity(0))
        if loader_cores:
            cores = [
                check_cores(
                    f"loader_cores[{i}]", c if isinstance(c, (list, tuple)) else [c], available
                )  # fmt: skip
                for i, c in enumerate(loader_cores)
            ]
            if any(not c for c in cores):
                raise ValueError(f"loader_cores gives a worker no CPU: {list(loader_cores)}")
        elif len(available) < self.num_workers:
            raise ValueError(
                f"More workers (got {self.num_workers}) than available cores (got {len(available)})"
            )
        else:
            cores = [[c] for c in available[: self.num_workers]]
        old = self.loader.worker_cores
        self.loader.worker_cores = [set(c) for c in cores]
        try:
            yield
        finally:  # kept worker threads get the whole mask back on their next pass
            self.loader.worker_cores = old if old is not None else [set(available)]

    @contextlib.contextmanager
    def enable_multithreading(self, worker_threads: Optional[int] = None) -> Iterator[None]:
        """PyG's ``enable_multithreading``: inside the context, each worker runs its sampling
        and gather kernels on ``worker_threads`` threads (default, as PyG:
        ``torch.get_num_threads() // num_workers``, at least 1). PyG's errors: no workers,
        more threads than torch has. PyG also needs the ``spawn`` start method for its worker
        processes; the workers here are threads, so any start method works.

        Example:
            >>> with loader.enable_multithreading(2):
            ...     for batch in loader: ...
        """
        if not self.num_workers > 0:
            raise ValueError(
                f"'enable_multithreading' needs to be performed with at least one worker "
                f"(got {self.num_workers})"
            )
        if worker_threads is None:
            worker_threads = max(1, torch.get_num_threads() // self.num_workers)
        if isinstance(worker_threads, bool) or not isinstance(worker_threads, int):
            raise TypeError(f"worker_threads must be an int, got {worker_threads!r}")
        if worker_threads < 1:
            raise ValueError(f"worker_threads must be at least 1, got {worker_threads}")
        if worker_threads > torch.get_num_threads():
            raise ValueError(
                f"'worker_threads' should be smaller than the total available number of "
                f"threads {torch.get_num_threads()} (got {worker_threads})"
            )
        old = self.loader.worker_threads
        self.loader.worker_threads = worker_threads
        try:
            yield
        finally:
            self.loader.worker_threads = old

    @contextlib.contextmanager
    def enable_memory_log(self) -> Iterator[None]:
        """PyG's ``enable_memory_log``: inside the context, as each worker starts a pass,
        ``logging.debug`` its resident memory, in PyG's words (``Worker 0 @ PID 123: 812.50
        MB``; the workers share this process, so each reports the process's)."""
        from gnnsys.datasets.outofcore import rss_bytes

        old = self.loader.worker_start

        def log(worker: int) -> None:
            mb = rss_bytes() / (1024 * 1024)
            logging.debug(f"Worker {worker} @ PID {os.getpid()}: {mb:.2f} MB")
            if old is not None:
                old(worker)

        self.loader.worker_start = log
        try:
            yield
        finally:
            self.loader.worker_start = old

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"  # as PyG prints it

    def describe(self) -> str:
        """What this loader runs: its sampler, fanouts and engine settings."""
        return f"{type(self).__name__}(num_neighbors={self.num_neighbors}, {self.loader!r})"

    @property
    def source(self) -> _PygDataView:
        return self.view

    def _finish(self, data: Any) -> Any:
        return self.transform(data) if self.transform is not None else data


def _num_neighbors_repr(fanouts: np.ndarray, graph: Graph) -> Any:
    if not graph.is_hetero:
        return fanouts[:, 0].tolist()
    return {et: fanouts[:, e].tolist() for e, et in enumerate(graph.edge_types)}


class _NodeFront(_LoaderFront):
    """What PyG's node loaders share (PyG's ``NodeLoader``: ``NeighborLoader``, ``HGTLoader``):
    seeds of one node type, ``input_data``, and the batch's ``input_id`` / ``batch_size`` (and
    ``seed_time``) on the input type's store."""

    view: _PygDataView
    input_type: Optional[int]
    input_nodes: torch.Tensor
    _seed_time: Optional[np.ndarray] = None
    _global_input_id: bool = False
    _input_offset: int = 0

    def _read_inputs(self, input_nodes: Any, who: str) -> torch.Tensor:
        """Read ``input_nodes`` as PyG does (``input_type``, ``input_nodes``: ids within the
        type, and whether ``input_id`` is the ids); the seeds as global ids."""
        view = self.view
        self.input_type, seeds, self._global_input_id = view.input_nodes(input_nodes, who)
        self.input_nodes = seeds
        self._input_offset = int(view.graph.type_offsets()[self.input_type]) if view.hetero else 0
        return seeds + self._input_offset if self._input_offset else seeds

    def _start(self, sampler: Any, seeds: torch.Tensor, opts: Dict[str, Any],
               kwargs: Dict[str, Any]) -> None:  # fmt: skip
        """The gnnsys ``Loader`` of ``sampler`` over ``seeds`` (global ids), fetching the
        view's tables, and the DataLoader base over the input positions."""
        view = self.view
        self.loader = Loader(sampler, seeds, features=view.node_store,
                             feature_names=view.node_table_keys, edge_features=view.edge_store,
                             collate=self._collate, **opts)  # fmt: skip
        self._init_dataloader(int(seeds.numel()), kwargs)

    @property
    def input_data(self) -> Any:
        """PyG's ``NodeSamplerInput`` of this loader (PyG's ``NodeLoader.input_data``): the
        seeds (ids within their node type), their times (temporal) and node type."""
        from torch_geometric.sampler import NodeSamplerInput

        time = torch.from_numpy(self._seed_time) if self._seed_time is not None else None
        ntype = self.view.graph.node_types[self.input_type] if self.view.hetero else None
        return NodeSamplerInput(input_id=None, node=self.input_nodes, time=time, input_type=ntype)

    def _collate(self, batch: Batch) -> Any:
        seeds = batch.seeds - self._input_offset if self._input_offset else batch.seeds
        input_id = seeds if self._global_input_id else batch.input_id
        seed_time = None
        if self._seed_time is not None:  # PyG's seed_time: each seed's time bound
            seed_time = torch.from_numpy(self._seed_time[batch.input_id.cpu().numpy()])
        # PyG's node sampler output metadata: (input_id, seed_time)
        batch, (input_id, seed_time), counts = _apply_sampler_transform(
            self, batch, (input_id, seed_time)
        )
        data = self.view.build(batch, batch.subgraph)
        _set_sampled_counts(data, counts)
        store = data[self.view.graph.node_types[self.input_type]] if self.view.hetero else data
        store.input_id = input_id
        store.batch_size = int(input_id.size(0))
        if seed_time is not None:
            store.seed_time = seed_time
        return self._finish(data)


class NeighborLoader(_NodeFront):
    """PyG's ``NeighborLoader`` on gnnsys kernels: same arguments, same batches' fields.

    ``data`` is a ``Data``, a ``HeteroData`` or a ``(FeatureStore, GraphStore)`` pair (typed
    attributes too). ``num_workers`` > 0 sets the number of loader threads (not processes);
    extra keywords ``seed``, ``device`` and ``num_threads`` are gnnsys extensions. Temporal
    sampling (``time_attr``: a node attribute for node-level times, else an edge attribute;
    ``input_time``, ``temporal_strategy``) follows PyG 2.8: a subgraph per seed (``batch``),
    nothing newer than the seed's time, ``seed_time`` on the batch; it needs no pyg-lib.
    ``(FeatureStore, GraphStore)`` pairs do not take ``time_attr`` yet.

    As PyG's loaders, it is a ``torch.utils.data.DataLoader`` over the input positions
    (``dataset``, ``batch_size``, ``num_workers``, ``collate_fn``, ``sampler`` ... behave as
    there; ``loader(index)`` returns the batch of the given input positions), but iteration
    runs the gnnsys engine: threads instead of worker processes, deterministic for a seed.
    Heterogeneous batches are ``HeteroData`` with, per node type, ``n_id`` (ids within the
    type), ``num_sampled_nodes`` and the node attributes, plus ``batch_size`` and
    ``input_id`` on the input type; per edge type ``edge_index``, ``e_id`` and
    ``num_sampled_edges`` and the edge attributes, so ``to_hetero`` models and
    ``trim_to_layer`` work on them.

    Arguments read as PyG reads them, with clear errors where PyG fails later or not at all:

    * ``num_neighbors``: a list (or tuple, or ``NumNeighbors``) with one int per hop; a 1-D
      integer tensor is read as that list; ``[]`` gives the seeds alone. For ``HeteroData``
      also a dict ``{edge_type: [per hop]}`` naming every edge type (PyG's rule; a
      ``NumNeighbors(values, default=...)`` fills the rest); a ``(src, dst)`` key means
      ``(src, "to", dst)``, as PyG reads it. An int, a 2-D or float tensor, an unknown or
      missing edge type raise.
    * ``input_nodes``: None (every node), a bool mask with one entry per node, or node ids of
      any integer dtype; for ``HeteroData`` a node type or ``(node_type, ids | mask | None)`` (a uint8 tensor holds ids, as in PyG; one of 0/1 with one entry per
      node warns that it is not read as a mask). An empty selection (no ids, or a mask with
      no True) raises ValueError instead of giving zero batches.
    * Node attributes: PyG's rule (``data.is_node_attr``) decides which attributes are sliced
      by ``n_id`` (first dimension == ``num_nodes``); the others ride along whole in every
      batch. An attribute named like node data (``x``, ``y``, ``feat``, ``pos``,
      ``node_type``, ``*_mask``, or containing ``node``) whose first dimension is not
      ``num_nodes`` warns (UserWarning naming it, its rows and ``num_nodes``), e.g.
      ``Data(x=<50 rows>, num_nodes=100)``. Other names (graph-level data) and a one-row ``y``
      (a graph label) do not warn.
    * Node and edge attributes are sliced along PyG's ``__cat_dim__`` (``is_node_attr`` /
      ``is_edge_attr`` along it, as ``filter_data``): the first dimension, or the last for a
      key with "index" (``Data``: or "face"), so an [2, E] ``edge_label_index`` beside
      ``edge_index`` (what ``T.RandomLinkSplit`` leaves on ``train_data``) comes sliced by
      ``e_id``. A store that sets ``num_nodes`` gets the batch's node count, as in PyG.
    * ``is_sorted`` (bool): accepted, no effect. PyG skips its own sort of ``edge_index`` by
      column when True; gnnsys always builds its own CSC from ``edge_index`` (a counting sort
      by destination), so batches are identical for True and False, and an unsorted
      ``edge_index`` with ``is_sorted=True`` is still sampled correctly.
    * ``filter_per_worker`` (None or bool): accepted, no effect. PyG chooses whether batches
      are filtered in worker processes or in the main process; gnnsys always builds batches in
      its loader threads (``collate``), so None, True and False give identical batches.

    Example:
        >>> from gnnsys.loaders.pyg import NeighborLoader
        >>> loader = NeighborLoader(data, num_neighbors=[15, 10], input_nodes=data.train_mask,
        ...                         batch_size=1024, shuffle=True)
        >>> batch = next(iter(loader))
        >>> out = model(batch.x, batch.edge_index)[: batch.batch_size]
    """

    _sampler_cls: Any = None  # LaborLoader: LaborSampler
    _sampler_options: Dict[str, Any] = {}

    def __init__(
        self,
        data: Any,
        num_neighbors: Any,
        input_nodes: Any = None,
        input_time: Optional[torch.Tensor] = None,
        replace: bool = False,
        subgraph_type: Any = "directional",
        disjoint: bool = False,
        temporal_strategy: str = "uniform",
        time_attr: Optional[str] = None,
        weight_attr: Optional[str] = None,
        transform: Optional[Callable] = None,
        transform_sampler_output: Optional[Callable] = None,
        is_sorted: bool = False,
        filter_per_worker: Optional[bool] = None,
        neighbor_sampler: Any = None,
        directed: bool = True,
        **kwargs: Any,
    ) -> None:
        who = "NeighborLoader"
        if input_time is not None and time_attr is None:
            raise ValueError(f"{who}: input_time needs time_attr (the node time attribute)")
        _check_common(who, temporal_strategy, time_attr, neighbor_sampler, transform,
                      transform_sampler_output)  # fmt: skip
        _check_flags(is_sorted, filter_per_worker, who)
        sg_type = _subgraph_type(subgraph_type, directed, who)
        opts = _loader_options(dict(kwargs), who)
        self.view = view = _PygDataView(data, weight_attr, who)
        _check_adj_t_subgraph(view, sg_type, who)
        fanouts = _fanouts(num_neighbors, view.graph, who)
        self.data = data
        self.num_neighbors = _num_neighbors_repr(fanouts, view.graph)
        self.transform = transform
        self.transform_sampler_output = transform_sampler_output
        self.is_sorted, self.filter_per_worker = is_sorted, filter_per_worker
        seeds = self._read_inputs(input_nodes, who)
        on = _sampling_device(data)
        if on is not None:  # batches stay on the data's GPU, as PyG's slices of CUDA data
            opts.setdefault("device", on)
        cls, options = self._sampler_cls, dict(self._sampler_options)
        self._seed_time: Optional[np.ndarray] = None
        if time_attr is not None:
            if cls is not None or weight_attr is not None:
                raise NotImplementedError(f"{who}: time_attr with LABOR or weight_attr")
            cls = TemporalNeighborSampler
            options.update(view.times(time_attr, who), temporal_strategy=temporal_strategy)
            disjoint = True  # as PyG: temporal sampling is disjoint
        if getattr(view.graph, "exchange", None) is not None:  # gnnsys.distributed stores
            self.node_sampler = _partition_sampler(view.graph, fanouts, cls, options, replace,
                                                   sg_type, disjoint, who)  # fmt: skip
        else:
            self.node_sampler = sampler_on(
                on,
                view.graph,
                fanouts,
                cls,
                **options,
                replace=replace,
                weighted=weight_attr is not None,
                subgraph_type=sg_type,
                disjoint=disjoint,
            )
        if time_attr is not None:
            self._seed_time = _seed_times(self.node_sampler, seeds, input_time, who)
            opts["seed_time"] = self._seed_time
        self._start(self.node_sampler, seeds, opts, kwargs)


# ---------------------------------------------------------------------- LinkNeighborLoader
class LaborLoader(NeighborLoader):
    """``NeighborLoader`` with layer-neighbour sampling (``gnnsys.loaders.LaborSampler``; PyG
    has no LABOR): the same arguments and batches' fields, plus DGL's LABOR options:
    ``layer_dependency`` (the same random variates on every hop), ``importance_sampling``
    (0: LABOR-0; i > 0: LABOR-i; -1: to convergence) and ``batch_dependency`` (k > 1: variates
    slide over k consecutive batches). Each destination keeps about ``num_neighbors`` in-edges
    in expectation, but destinations share their sources' variates, so a batch reaches fewer
    distinct nodes and gathers fewer feature rows. With LABOR-i each edge store carries
    ``edge_weight`` (DGL's ``edge_weights``: for a weighted mean, e.g.
    ``GraphConv(aggr="mean")``). ``weight_attr`` (a non-negative edge attribute) is DGL's
    weighted LABOR (``LaborSampler(prob=...)``): edges kept with probability min(1, c_s w_e),
    an edge of weight 0 never, and ``edge_weight`` on every edge store (for LABOR-0 too, as
    DGL's ``edge_weights``); the attribute itself is sliced as any edge attribute.
    ``replace`` is not available.

    Example:
        >>> from gnnsys.loaders.pyg import LaborLoader
        >>> loader = LaborLoader(data, num_neighbors=[15, 10], input_nodes=data.train_mask,
        ...                      batch_size=1024, shuffle=True, importance_sampling=1)
    """

    def __init__(self, data: Any, num_neighbors: Any, *, layer_dependency: bool = False,
                 importance_sampling: int = 0, batch_dependency: int = 1,
                 **kwargs: Any) -> None:  # fmt: skip
        if kwargs.get("replace"):
            raise ValueError("LaborLoader: replace is not available with LABOR")
        from gnnsys.loaders.neighbor import LaborSampler, check_labor_options

        iters, window = check_labor_options(importance_sampling, batch_dependency)
        self._sampler_cls = LaborSampler
        self._sampler_options = {"layer_dependency": bool(layer_dependency),
                                 "importance_sampling": iters, "batch_dependency": window}  # fmt: skip
        super().__init__(data, num_neighbors, **kwargs)
        view = self.view
        names = {n for keys in view.edge_keys for _, n in keys}
        names.update(n for other in view.edge_other for n in other)
        weighted = kwargs.get("weight_attr") is not None
        if (iters or weighted) and "edge_weight" in names:
            what = "weighted LABOR's" if weighted else "LABOR-i's"
            raise ValueError(
                f"LaborLoader: the data has an edge attribute 'edge_weight', which {what} "
                "edge weights would overwrite; rename it (and pass the new name as weight_attr "
                "if it holds the sampling weights)"
            )


class LinkNeighborLoader(_LoaderFront):
    """PyG's ``LinkNeighborLoader`` on gnnsys kernels (binary and triplet negative sampling).

    Batches carry ``edge_label_index`` / ``edge_label`` (binary or no negative sampling) or
    ``src_index`` / ``dst_pos_index`` / ``dst_neg_index`` (triplet), in local ids, plus
    ``input_id`` (positions into ``edge_label_index``) and the node-batch fields.
    ``num_neighbors``, node attributes, ``is_sorted`` and ``filter_per_worker`` follow
    ``NeighborLoader``'s rules (see there). For ``HeteroData``, ``edge_label_index`` is an edge
    type (all its edges) or ``(edge_type, [2, M] ids)``; an edge type is ``(src, relation,
    dst)`` or, as PyG reads it, ``(src, dst)`` naming the one edge type between them (a pair of
    names alone is an edge type, not (type, ids)). The link fields go on that edge type's
    store (triplets: ``src_index`` on the source type, ``dst_pos_index`` / ``dst_neg_index`` on
    the destination type), and negatives are drawn among nodes of the right types. As in PyG
    they replace the data's attributes of the same names, and remove those the batch has no
    value for (``edge_label`` without labels or negatives; ``edge_label_index`` and
    ``edge_label_time`` in triplet mode).
    Temporal: ``time_attr`` (as ``NeighborLoader``) with ``edge_label_time`` bounds each
    endpoint's subgraph by its edge's time; with node-level times negatives are never newer
    than their edge (PyG's ``neg_sample``); batches carry ``edge_label_time`` (binary) or
    ``seed_time`` (triplet).

    Example:
        >>> from gnnsys.loaders.pyg import LinkNeighborLoader
        >>> loader = LinkNeighborLoader(data, [10, 5], edge_label_index=data.edge_index,
        ...                             neg_sampling="binary", batch_size=256, shuffle=True)
    """

    def __init__(
        self,
        data: Any,
        num_neighbors: Any,
        edge_label_index: Any = None,
        edge_label: Optional[torch.Tensor] = None,
        edge_label_time: Optional[torch.Tensor] = None,
        replace: bool = False,
        subgraph_type: Any = "directional",
        disjoint: bool = False,
        temporal_strategy: str = "uniform",
        neg_sampling: Any = None,
        neg_sampling_ratio: Optional[float] = None,
        time_attr: Optional[str] = None,
        weight_attr: Optional[str] = None,
        transform: Optional[Callable] = None,
        transform_sampler_output: Optional[Callable] = None,
        is_sorted: bool = False,
        filter_per_worker: Optional[bool] = None,
        neighbor_sampler: Any = None,
        directed: bool = True,
        **kwargs: Any,
    ) -> None:
        who = "LinkNeighborLoader"
        if edge_label_time is not None and time_attr is None:
            raise ValueError(f"{who}: edge_label_time needs time_attr (the node time attribute)")
        _check_common(who, temporal_strategy, time_attr, neighbor_sampler, transform,
                      transform_sampler_output)  # fmt: skip
        _check_flags(is_sorted, filter_per_worker, who)
        sg_type = _subgraph_type(subgraph_type, directed, who)
        opts = _loader_options(dict(kwargs), who)
        if neg_sampling_ratio is not None and neg_sampling_ratio != 0.0:
            neg_sampling = NegativeSampling("binary", neg_sampling_ratio)
        self.view = view = _PygDataView(data, weight_attr, who)
        _check_adj_t_subgraph(view, sg_type, who)
        fanouts = _fanouts(num_neighbors, view.graph, who)
        self.edge_type, edge_label_index = _edge_label_input(view, data, edge_label_index, who)
        self.data = data
        self.num_neighbors = _num_neighbors_repr(fanouts, view.graph)
        self.transform = transform
        self.transform_sampler_output = transform_sampler_output
        self.is_sorted, self.filter_per_worker = is_sorted, filter_per_worker
        temporal: Dict[str, Any] = {}
        if time_attr is not None:
            if weight_attr is not None:
                raise NotImplementedError(f"{who}: time_attr with weight_attr")
            if edge_label_time is None:
                raise ValueError(f"{who}: time_attr needs edge_label_time (one time per edge)")
            temporal = dict(view.times(time_attr, who), temporal_strategy=temporal_strategy,
                            edge_label_time=edge_label_time)  # fmt: skip
            disjoint = True  # as PyG: temporal sampling is disjoint
        if getattr(view.graph, "exchange", None) is not None:  # gnnsys.distributed stores
            cls = TemporalNeighborSampler if temporal else None
            options = {k: v for k, v in temporal.items() if k != "edge_label_time"}
            self.link_sampler = LinkSampler.over(
                _partition_sampler(
                    view.graph, fanouts, cls, options, replace, sg_type, disjoint, who
                ),  # fmt: skip
                edge_label_index,
                edge_label,
                neg_sampling=neg_sampling,
                edge_type=view.graph.edge_types[self.edge_type] if view.hetero else None,
                edge_label_time=edge_label_time if temporal else None,
            )
        else:
            self.link_sampler = LinkSampler(
                view.graph,
                fanouts,
                edge_label_index,
                edge_label,
                **temporal,
                neg_sampling=neg_sampling,
                edge_type=view.graph.edge_types[self.edge_type] if view.hetero else None,
                replace=replace,
                weighted=weight_attr is not None,
                subgraph_type=sg_type,
                disjoint=disjoint,
            )
        if self.link_sampler.num_inputs == 0:  # as NeighborLoader's empty input_nodes
            raise ValueError(f"{who}: edge_label_index is empty: no edges, so there is nothing "
                             "to batch")  # fmt: skip
        self.neg_sampling = self.link_sampler.neg_sampling
        self.edge_label_index = edge_label_index
        self._edge_label, self._edge_label_time = edge_label, edge_label_time
        self.loader = Loader(
            self.link_sampler,
            self.link_sampler.num_inputs,
            features=view.node_store,
            feature_names=view.node_table_keys,
            edge_features=view.edge_store,
            collate=self._collate,
            **opts,
        )
        self._init_dataloader(self.link_sampler.num_inputs, kwargs)

    @property
    def input_data(self) -> Any:
        """PyG's ``EdgeSamplerInput`` of this loader (PyG's ``LinkLoader.input_data``): the
        seed edges' endpoints (ids within their node types), labels, times and edge type."""
        from torch_geometric.sampler import EdgeSamplerInput

        et = self.view.graph.edge_types[self.edge_type] if self.view.hetero else None
        index = torch.as_tensor(self.edge_label_index)
        return EdgeSamplerInput(
            input_id=None,
            row=index[0],
            col=index[1],
            label=self._edge_label,
            time=self._edge_label_time,
            input_type=et,
        )

    def _collate(self, batch: Batch) -> Any:
        meta = dict(batch.subgraph.metadata)
        # PyG's link sampler output metadata: binary (input_id, edge_label_index, edge_label,
        # edge_label_time), triplet (input_id, src_index, dst_pos_index, dst_neg_index,
        # seed_time)
        names = _LINK_META_BINARY
        if not (self.neg_sampling is None or self.neg_sampling.mode == "binary"):
            names = _LINK_META_TRIPLET
        batch, fields, counts = _apply_sampler_transform(
            self, batch, tuple(meta.get(k) for k in names)
        )
        meta.update(zip(names, fields))
        sub = batch.subgraph
        data = self.view.build(batch, sub)
        _set_sampled_counts(data, counts)
        graph = self.view.graph
        if self.view.hetero:
            et = graph.edge_types[self.edge_type]
            link, src_store, dst_store = data[et], data[et[0]], data[et[2]]
        else:
            link = src_store = dst_store = data
        link.input_id = meta["input_id"]
        # As PyG, these replace the data's attributes of the same names (sliced by e_id when
        # they are edge attributes), and None removes them: no labels (no edge_label given, no
        # negatives), no times, and in triplet mode no edge_label_index / edge_label_time
        if self.neg_sampling is None or self.neg_sampling.mode == "binary":
            link.edge_label_index = meta["edge_label_index"]
            link.edge_label = meta.get("edge_label")
            link.edge_label_time = meta.get("edge_label_time")
        else:
            src_store.src_index = meta["src_index"]
            dst_store.dst_pos_index = meta["dst_pos_index"]
            dst_store.dst_neg_index = meta["dst_neg_index"]
            if meta.get("seed_time") is not None:  # PyG: on the source and destination store
                src_store.seed_time = dst_store.seed_time = meta["seed_time"]
            link.edge_label_index = link.edge_label_time = None
        return self._finish(data)


def _edge_label_input(
    view: _PygDataView, data: Any, edge_label_index: Any, who: str
) -> Tuple[Optional[int], torch.Tensor]:
    """(edge type id or None, [2, M] supervision edges in ids within their node types)."""
    if not view.hetero:
        if isinstance(edge_label_index, (str, tuple)):
            raise ValueError(f"{who}: edge_label_index names an edge type but data is homogeneous")
        if edge_label_index is None:
            if getattr(view.graph, "exchange", None) is not None:
                raise ValueError(
                    f"{who}: over a partition, give each machine its edge_label_index (an equal "
                    "count each: gnnsys.distributed.edge_split)"
                )
            if isinstance(data, (tuple, list)):
                return None, view.graph.to_edge_index()
            if view.adj_t is not None:
                return None, _adj_t_edge_index(view.adj_t)
            return None, data.edge_index
        return None, edge_label_index
    ids = None
    et = edge_label_index
    # As PyG: a sequence of names is an edge type ((src, rel, dst), or (src, dst)); another
    # pair is (edge type, ids)
    names = isinstance(et, (tuple, list)) and all(isinstance(p, str) for p in et)
    if isinstance(edge_label_index, (tuple, list)) and len(edge_label_index) == 2 and not names:
        et, ids = edge_label_index
    if et is None or isinstance(et, torch.Tensor):
        what = "is required" if et is None else "has ids but no edge type"
        raise ValueError(
            f"{who}: edge_label_index {what}: for heterogeneous data it is an edge type or "
            f"(edge type, [2, M] ids); edge types: {view.graph.edge_types}"
        )
    e = _edge_type_id(view.graph, et, f"{who}: edge_label_index")
    if ids is None:
        ids = view.graph.to_hetero()[0][view.graph.edge_types[e]]
    return e, ids


def _edge_type_id(graph: Graph, edge_type: Any, what: str = "edge type") -> int:
    """The id in ``graph`` of an edge type named as PyG's ``HeteroData`` reads one
    (``_to_canonical``): a ``(src, relation, dst)`` triple, or a ``(src, dst)`` pair naming
    the one edge type from ``src`` to ``dst``; also a relation name naming one edge type, or
    PyG's ``"src__relation__dst"`` string. ``what`` starts the error messages: ValueError for
    an unknown or ambiguous name, TypeError for something that is not a name.

    Example:
        >>> _edge_type_id(graph, ("user", "movie"))  # the id of ("user", "rates", "movie")
        0
    """
    types = graph.edge_types
    if isinstance(edge_type, str) and edge_type.count("__") == 2:
        edge_type = tuple(edge_type.split("__"))
    if isinstance(edge_type, (tuple, list)):
        if not all(isinstance(p, str) for p in edge_type):
            raise TypeError(
                f"{what}: an edge type is (src_type, relation, dst_type) or (src_type, "
                f"dst_type), all names; got {edge_type!r}"
            )
        edge_type = tuple(edge_type)
        if len(edge_type) == 2:
            hits = [i for i, (s, _, d) in enumerate(types) if (s, d) == edge_type]
            if len(hits) == 1:
                return hits[0]
            found = "matches no edge type"
            if hits:
                found = f"is ambiguous: it matches {[types[i] for i in hits]}"
            raise ValueError(
                f"{what}: {edge_type!r} {found}; give the (src_type, relation, dst_type) "
                f"triple (edge types: {types})"
            )
    try:
        return graph.edge_type_id(edge_type)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{what}: {err}") from None


def _num_neighbors_keys(values: Dict[Any, Any], graph: Graph, who: str) -> Dict[Any, Any]:
    """``num_neighbors``'s dict with PyG's reading of a ``(src, dst)`` key: the edge type
    ``(src, "to", dst)`` (``EdgeTypeStr``; not the one edge type from src to dst, as
    ``edge_label_index`` reads a pair), with a clear error when the graph has no such type.
    Other keys are left to ``fanout_matrix``."""
    out: Dict[Any, Any] = {}
    for key, value in values.items():
        if isinstance(key, tuple) and len(key) == 2 and all(isinstance(p, str) for p in key):
            full = (key[0], "to", key[1])
            if full not in graph.edge_types:
                near = [t for t in graph.edge_types if t[0] == key[0] and t[2] == key[1]]
                hint = f"; the edge types from {key[0]!r} to {key[1]!r}: {near}" if near else ""
                raise ValueError(
                    f"{who}: num_neighbors key {tuple(key)!r} means the edge type {full!r} (PyG's "
                    f"reading of a (src, dst) key), which the graph does not have{hint}; give "
                    f"the (src_type, relation, dst_type) triple (edge types: {graph.edge_types})"
                )
            key = full
        if key in out:
            raise ValueError(f"{who}: num_neighbors lists edge type {key!r} twice")
        out[key] = value
    return out


_LINK_META_BINARY = ("input_id", "edge_label_index", "edge_label", "edge_label_time")
_LINK_META_TRIPLET = ("input_id", "src_index", "dst_pos_index", "dst_neg_index", "seed_time")


def _apply_sampler_transform(
    owner: Any, batch: Batch, metadata: Tuple[Any, ...]
) -> Tuple[Batch, Tuple[Any, ...], Optional[Tuple[Any, Any]]]:
    """Run ``transform_sampler_output`` where PyG's loaders do, before the batch is built.

    The transform gets PyG's ``SamplerOutput`` (``HeteroSamplerOutput`` for typed data: dicts
    keyed by node and edge type, ids within each type) with ``metadata`` as PyG's samplers set
    it (node loaders ``(input_id, seed_time)``; link loaders as ``_LINK_META_*``). Returns the
    batch of what it returned, its metadata (the batch's ``input_id`` and the other seed
    fields, as PyG's ``filter_fn`` reads them) and, typed, the ``num_sampled_nodes`` /
    ``num_sampled_edges`` dicts it returned (``_set_sampled_counts``). Tables were fetched for
    the sampled nodes and edges; those of node (edge) sets the transform replaced are fetched
    again for the new ones. Without a transform: the batch and metadata unchanged.
    """
    fn = owner.transform_sampler_output
    if fn is None:
        return batch, metadata, None
    if owner.view.hetero:
        return _apply_hetero_sampler_transform(owner, batch, metadata)
    from torch_geometric.sampler import SamplerOutput

    sub = batch.subgraph
    out = SamplerOutput(
        node=sub.nodes,
        row=sub.row,
        col=sub.col,
        edge=sub.edge_ids,
        batch=sub.batch,
        num_sampled_nodes=list(sub.num_sampled_nodes),
        num_sampled_edges=list(sub.num_sampled_edges),
        metadata=metadata,
    )
    out = fn(out)
    if not isinstance(out, SamplerOutput):
        raise TypeError(
            f"transform_sampler_output must return a SamplerOutput, got {type(out).__name__}"
        )
    new = SampledSubgraph(
        nodes=out.node,
        row=out.row,
        col=out.col,
        num_sampled_nodes=list(out.num_sampled_nodes or [int(out.node.numel())]),
        num_sampled_edges=list(out.num_sampled_edges or [int(out.row.numel())]),
        edge_ids=out.edge,
        layered=sub.layered,
        batch=out.batch,
        metadata=sub.metadata,
    )
    view = owner.view
    node_data, edge_data = batch.node_data, batch.edge_data
    if out.node is not sub.nodes:
        node_data = {k: _refetch(view.node_store, k, out.node) for k in view.node_table_keys}
    if out.edge is not sub.edge_ids and view.edge_table_keys:
        if out.edge is None:
            raise ValueError("transform_sampler_output dropped the edge ids the edge tables need")
        edge_data = {k: _refetch(view.edge_store, k, out.edge) for k in view.edge_table_keys}
    return replace(batch, subgraph=new, node_data=node_data, edge_data=edge_data), _meta(out), None


def _apply_hetero_sampler_transform(
    owner: Any, batch: Batch, metadata: Tuple[Any, ...]
) -> Tuple[Batch, Tuple[Any, ...], Optional[Tuple[Any, Any]]]:
    """``_apply_sampler_transform`` for typed data: a ``HeteroSamplerOutput`` view of the
    typed sample in, a typed ``SampledSubgraph`` of what comes back out (its edges as one hop,
    edge type by edge type: the counts per hop are the returned dicts')."""
    from torch_geometric.sampler import HeteroSamplerOutput

    view, sub = owner.view, batch.subgraph
    graph = view.graph
    ntypes, etypes = graph.node_types, graph.edge_types
    off = graph.type_offsets()
    no_ids = view.types_without_ids(sub)
    hop_counts = view.has_hop_counts(sub)
    node = {nt: sub.type_nodes(t) - off[t] for t, nt in enumerate(ntypes)}
    row, col, edge = {}, {}, {}
    for e, et in enumerate(etypes):
        lo, hi = sub.type_edge_range(e)
        row[et], col[et] = sub.row[lo:hi], sub.col[lo:hi]
        edge[et] = None if e in no_ids else sub.edge_ids[lo:hi]
    nodes_counts = edges_counts = batch_of = None
    if hop_counts:
        nodes_counts = {
            nt: sub.type_num_sampled_nodes[:, t].tolist() for t, nt in enumerate(ntypes)
        }
        edges_counts = {et: sub.type_edge_counts(e) for e, et in enumerate(etypes)}
    if sub.batch is not None:
        noff = sub._offsets("node_offsets")
        batch_of = {nt: sub.batch[noff[t] : noff[t + 1]] for t, nt in enumerate(ntypes)}
    out = owner.transform_sampler_output(
        HeteroSamplerOutput(
            node=dict(node),  # (copies: a transform that edits a dict must not edit ours)
            row=dict(row),
            col=dict(col),
            edge=dict(edge),
            batch=batch_of,
            num_sampled_nodes=nodes_counts,
            num_sampled_edges=edges_counts,
            metadata=metadata,
        )
    )
    if not isinstance(out, HeteroSamplerOutput):
        raise TypeError(
            "transform_sampler_output must return a HeteroSamplerOutput for heterogeneous data, "
            f"got {type(out).__name__}"
        )
    # the typed subgraph of the returned dicts (a type they leave out: no nodes, no edges)
    like = sub.nodes
    empty = like.new_empty(0)
    new_nodes = [out.node.get(nt, empty).to(like.device) for nt in ntypes]
    counts = [int(n.numel()) for n in new_nodes]
    node_offsets = torch.tensor([0] + counts, dtype=torch.int64).cumsum(0)
    out_edge = out.edge or {}
    new_rows = [out.row.get(et, empty) for et in etypes]
    new_cols = [out.col.get(et, empty) for et in etypes]
    lost = tuple(e for e, et in enumerate(etypes) if out_edge.get(et) is None)
    new_eids = [
        out_edge[et] if e not in lost else torch.full_like(new_rows[e], -1)
        for e, et in enumerate(etypes)
    ]
    sizes = [int(r.numel()) for r in new_rows]
    edge_ptr = torch.tensor([0] + sizes, dtype=torch.int64).cumsum(0)
    meta = {k: v for k, v in sub.metadata.items() if k != "edge_types_without_ids"}
    meta["per_hop_counts"] = False  # (the returned dicts' counts are set after the build)
    if lost:
        meta["edge_types_without_ids"] = lost
    total = sum(counts)
    new_batch = None
    if out.batch is not None:
        new_batch = torch.cat([out.batch.get(nt, empty) for nt in ntypes])
    new = replace(
        sub,
        nodes=torch.cat([n + int(off[t]) for t, n in enumerate(new_nodes)]),
        row=torch.cat(new_rows) if new_rows else empty,
        col=torch.cat(new_cols) if new_cols else empty,
        num_sampled_nodes=[total],
        num_sampled_edges=[sum(sizes)],
        edge_ids=torch.cat(new_eids) if new_eids else empty,
        batch=new_batch,
        metadata=meta,
        edge_ptr=edge_ptr,
        node_offsets=node_offsets,
        type_num_sampled_nodes=torch.tensor([counts], dtype=torch.int64),
        hop_indptr=None,
        hop_indptr_ptr=None,
        hop_dst_start=None,
    )
    node_data, edge_data = dict(batch.node_data), dict(batch.edge_data)
    for t, nt in enumerate(ntypes):
        if out.node.get(nt) is not node[nt]:
            for k, _ in view.node_keys[t]:
                node_data[k] = _refetch(view.node_store, k, new_nodes[t])
    for e, et in enumerate(etypes):
        if out_edge.get(et) is not edge[et] and view.edge_keys[e]:
            if e in lost:
                raise ValueError(
                    f"transform_sampler_output dropped the edge ids of {et} that its edge "
                    "tables need"
                )
            for k, _ in view.edge_keys[e]:
                edge_data[k] = _refetch(view.edge_store, k, new_eids[e])
    batch = replace(batch, subgraph=new, node_data=node_data, edge_data=edge_data)
    return batch, _meta(out), (out.num_sampled_nodes, out.num_sampled_edges)


def _meta(out: Any) -> Tuple[Any, ...]:
    meta = out.metadata
    if not isinstance(meta, tuple):
        raise TypeError(
            "transform_sampler_output must keep PyG's metadata tuple (input_id first), got "
            f"{type(meta).__name__}"
        )
    return meta


def _refetch(store: FeatureStore, key: Any, ids: torch.Tensor) -> torch.Tensor:
    """Rows of ``key`` for ids a transform chose, on the ids' device."""
    return store.fetch(key, ids.cpu()).to(ids.device)


def _set_sampled_counts(data: Any, counts: Optional[Tuple[Any, Any]]) -> None:
    """PyG's ``set_value_dict`` of a transformed typed sample's ``num_sampled_nodes`` and
    ``num_sampled_edges`` dicts (None: nothing set)."""
    if counts is None:
        return
    for name, by_type in zip(("num_sampled_nodes", "num_sampled_edges"), counts):
        if by_type is not None:
            data.set_value_dict(name, by_type)


# The whole-subgraph loaders (Cluster-GCN, GraphSAINT, ShaDow-KHop), HGT and the legacy
# NeighborSampler live in their own modules, which build on the helpers above; exported here.
from gnnsys.loaders.pyg_hgt import HGTLoader  # noqa: E402, F401
from gnnsys.loaders.pyg_neighbor_sampler import NeighborSampler  # noqa: E402, F401
from gnnsys.loaders.pyg_subgraph import (  # noqa: E402, F401
    ClusterData,
    ClusterLoader,
    GraphSAINTEdgeSampler,
    GraphSAINTNodeSampler,
    GraphSAINTRandomWalkSampler,
    GraphSAINTSampler,
    ShaDowKHopSampler,
)


# PyG's other loaders, under their PyG names, so that a script importing several names from
# torch_geometric.loader switches with its import line alone: graph-level batching
# (DataLoader, DataListLoader, DenseDataLoader, DynamicBatchSampler), wrappers that take any
# loader (PrefetchLoader, CachedLoader, ZipLoader), ImbalancedSampler (our loaders take it as
# ``sampler``), and loaders gnnsys does not reimplement (RandomNodeLoader, TemporalDataLoader,
# the IBMB loaders, the NodeLoader / LinkLoader bases, which take PyG sampler objects).
# They are PyG's own classes, resolved on first use.
def __getattr__(name: str) -> Any:
    if not name.startswith("_"):
        import torch_geometric.loader as pyg_loader

        if name in getattr(pyg_loader, "__all__", ()) and hasattr(pyg_loader, name):
            return getattr(pyg_loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
