"""PyG drop-ins: ``NeighborLoader`` and ``LinkNeighborLoader`` with PyG 2.8's signatures.

Switching is one import line::

    from gnnsys.loaders.pyg import NeighborLoader   # was: from torch_geometric.loader import ...

Both are thin: they turn ``data`` into a ``Graph`` and a ``FeatureStore`` once, drive the gnnsys
``Loader`` with a ``NeighborSampler`` / ``LinkSampler``, and build PyG ``Data`` batches in the
worker threads (``collate``), with PyG's fields: ``n_id`` (seeds first, then hop order),
``e_id``, local ``edge_index`` (row 0 = neighbour, row 1 = the node it is aggregated into),
``input_id``, ``batch_size``, ``num_sampled_nodes``, ``num_sampled_edges`` (so
``trim_to_layer`` works), node attributes sliced by ``n_id`` and edge attributes by ``e_id``.
No pyg-lib or torch-sparse is needed. Unsupported arguments raise NotImplementedError.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from gnnsys._checks import check_index
from gnnsys.features import FeatureStore
from gnnsys.graph import Graph
from gnnsys.loaders.base import SampledSubgraph
from gnnsys.loaders.link import LinkSampler, NegativeSampling
from gnnsys.loaders.loader import Batch, Loader
from gnnsys.loaders.neighbor import NeighborSampler, check_fanouts, edge_index_of
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
    "persistent_workers",  # threads restart each epoch; the batches are the same either way
    "generator",
    # gnnsys extensions
    "seed",
    "device",
    "num_threads",
)
_DROPPED_KWARGS = ("dataset", "collate_fn")


# ---------------------------------------------------------------------- data -> graph + stores
def _attr_kinds(data: Any, num_nodes: int) -> Callable[[str, Any], str]:
    """A classifier of ``data``'s attributes into "node", "edge" or "other" tables.

    PyG's own ``is_node_attr`` when every table is a tensor; with a ``UnifiedTensor`` among them
    (which PyG does not recognise, and whose presence makes PyG's ``num_nodes`` guess wrong) the
    same rule with the true node count: rows == num_nodes, unless it is also the edge count and
    the name says "edge".
    """
    unified = any(isinstance(v, UnifiedTensor) for _, v in data.items())
    num_edges = int(data.edge_index.shape[1])

    def kind(key: str, value: Any) -> str:
        if isinstance(value, UnifiedTensor):
            return "node" if len(value) == num_nodes else "other"
        if not isinstance(value, (torch.Tensor, np.ndarray)) or value.ndim == 0:
            return "other"
        if data.__cat_dim__(key, value) != 0:
            return "other"
        if not unified:
            if data.is_node_attr(key):
                return "node"
            return "edge" if data.is_edge_attr(key) else "other"
        rows = int(value.shape[0])
        if rows == num_nodes and (rows != num_edges or "edge" not in key):
            return "node"
        return "edge" if rows == num_edges else "other"

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


class _Source:
    """What a PyG ``data`` argument becomes: the Graph plus node / edge tables."""

    def __init__(self, data: Any, weight_attr: Optional[str], who: str) -> None:
        self.weight_attr = weight_attr
        if isinstance(data, (tuple, list)):
            self._from_stores(data, who)
        else:
            self._from_data(data, who)

    # -- torch_geometric.data.Data
    def _from_data(self, data: Any, who: str) -> None:
        from torch_geometric.data import Data, HeteroData

        if isinstance(data, HeteroData):
            raise NotImplementedError(f"{who}: HeteroData (heterogeneous graphs) is not supported")
        if not isinstance(data, Data):
            raise TypeError(
                f"{who}: data must be a torch_geometric Data or a (FeatureStore, GraphStore) "
                f"tuple, got {type(data).__name__}"
            )
        if "adj_t" in data:
            raise NotImplementedError(f"{who}: data.adj_t (SparseTensor input) is not supported")
        if "edge_index" not in data or data.edge_index is None:
            raise ValueError(f"{who}: data has no edge_index")
        self.data_cls = type(data)
        self.num_nodes = _num_nodes(data)
        self.graph = _cached_graph(data, self.num_nodes, self.weight_attr, who)
        self.node_keys: List[str] = []
        self.edge_keys: List[str] = []
        self.other: Dict[str, Any] = {}
        nodes: Dict[str, Any] = {}
        edges: Dict[str, Any] = {}
        kind_of = _attr_kinds(data, self.num_nodes)
        for key, value in data.items():
            if key in ("edge_index", "num_nodes"):
                continue
            kind = kind_of(key, value)
            if kind == "node":
                nodes[key] = value
            elif kind == "edge":
                edges[key] = value
            else:
                self.other[key] = value
        for key in (k for k in list(edges) + list(self.other) if _node_named(k)):
            _warn_not_per_node(data, key, key in edges, self.num_nodes, who)
        self.node_keys, self.edge_keys = list(nodes), list(edges)
        self.node_store = FeatureStore(nodes)
        self.edge_store = FeatureStore(edges)

    # -- (torch_geometric FeatureStore, GraphStore): PyG's remote backend, homogeneous only
    def _from_stores(self, data: Sequence[Any], who: str) -> None:
        from torch_geometric.data import Data

        if len(data) != 2:
            raise TypeError(f"{who}: data as a tuple must be (FeatureStore, GraphStore)")
        fstore, gstore = data
        attrs = list(gstore.get_all_edge_attrs())
        if len(attrs) != 1:
            raise NotImplementedError(
                f"{who}: the GraphStore holds {len(attrs)} edge types; only homogeneous graphs "
                "(one edge type) are supported"
            )
        edge_index = _store_edge_index(gstore, attrs[0])
        tensor_attrs = list(fstore.get_all_tensor_attrs())
        groups = {a.group_name for a in tensor_attrs}
        if len(groups) > 1:
            raise NotImplementedError(
                f"{who}: the FeatureStore holds node types {sorted(map(str, groups))}; only "
                "homogeneous graphs are supported"
            )
        size = getattr(attrs[0], "size", None)
        n = int(size[0]) if size else None
        tables: Dict[str, Any] = {}
        for a in tensor_attrs:
            tables[a.attr_name] = _StoreTable(fstore, a)
            n = n if n is not None else len(tables[a.attr_name])
        if n is None:
            n = int(edge_index.max()) + 1 if edge_index.numel() else 0
        self.data_cls = Data
        self.num_nodes = n
        weight = None
        if self.weight_attr is not None:
            raise NotImplementedError(f"{who}: weight_attr with a (FeatureStore, GraphStore)")
        self.graph = Graph.from_edge_index(edge_index, n, edge_weight=weight)
        self.node_keys, self.edge_keys, self.other = list(tables), [], {}
        self.node_store = FeatureStore(tables)
        self.edge_store = FeatureStore()

    # -- building the user's batch
    def build(self, batch: Batch, sub: SampledSubgraph, node_data: Dict[str, Any]) -> Any:
        data = self.data_cls()
        for key in self.node_keys:
            data[key] = node_data[key]
        data.edge_index = edge_index_of(sub)
        e_id = sub.edge_ids
        for key in self.edge_keys:
            data[key] = self.edge_store.fetch(key, e_id, device=e_id.device)
        for key, value in self.other.items():
            data[key] = value
        if not self.node_keys:
            data.num_nodes = int(sub.nodes.numel())
        data.n_id = sub.nodes
        if e_id is not None:
            data.e_id = e_id
        if sub.batch is not None:
            data.batch = sub.batch
        data.num_sampled_nodes = list(sub.num_sampled_nodes)
        data.num_sampled_edges = list(sub.num_sampled_edges)
        return data


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
# dropped when that tensor is collected.
_GRAPHS: Dict[int, Tuple[Any, tuple, Graph]] = {}
_GRAPHS_LOCK = threading.Lock()


def _cached_graph(data: Any, n: int, weight_attr: Optional[str], who: str) -> Graph:
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
    token = (ei._version, n, weight_attr, id(weight), getattr(weight, "_version", 0))
    with _GRAPHS_LOCK:
        hit = _GRAPHS.get(id(ei))
    if hit is not None and hit[0]() is ei and hit[1] == token:
        return hit[2]
    graph = Graph.from_edge_index(ei.cpu(), n, edge_weight=weight)
    with _GRAPHS_LOCK:
        if id(ei) not in _GRAPHS:
            weakref.finalize(ei, _GRAPHS.pop, id(ei), None)
        _GRAPHS[id(ei)] = (weakref.ref(ei), token, graph)
    return graph


# ---------------------------------------------------------------------- argument checks
def _fanouts(num_neighbors: Any, who: str) -> List[int]:
    """``num_neighbors`` as PyG takes it (a list or tuple of ints, one per hop, or a
    ``NumNeighbors``), or a 1-D integer tensor / array read as that list."""
    from torch_geometric.sampler import NumNeighbors

    values = num_neighbors.values if isinstance(num_neighbors, NumNeighbors) else num_neighbors
    if isinstance(values, dict):
        raise NotImplementedError(
            f"{who}: num_neighbors as a dict (per edge type, heterogeneous) is unsupported"
        )
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
    if len(values) == 0:
        raise ValueError(f"{who}: num_neighbors is empty: give one fanout per hop, e.g. [15, 10]")
    for i, f in enumerate(values):
        if isinstance(f, bool) or not isinstance(f, (int, np.integer)):
            raise TypeError(f"{who}: num_neighbors[{i}] must be an int, got {f!r}")
        if f < -1:
            raise ValueError(
                f"{who}: num_neighbors[{i}] = {f}; fanouts must be >= -1 (-1 = every neighbour)"
            )
    return check_fanouts(list(values)).tolist()


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
    if time_attr is not None:
        raise NotImplementedError(f"{who}: time_attr (temporal sampling) is not supported yet")
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
    unknown = [k for k in kwargs if k not in _LOADER_KWARGS]
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
    seed = kwargs.get("seed")
    if seed is None:  # as PyG: reproducible under torch.manual_seed (or the given generator)
        seed = int(torch.randint(0, 2**62, (1,), generator=kwargs.get("generator")))
    opts["seed"] = seed
    return opts


def _input_nodes(input_nodes: Any, n: int, who: str) -> Tuple[torch.Tensor, bool]:
    """(seed node ids, whether input_id should be the global ids instead of positions).

    As PyG: a bool tensor is a mask over the nodes, any integer tensor (uint8 too) holds node
    ids. A uint8 tensor of 0/1 with one entry per node is still read as ids, with a warning
    (it is most likely a mask: use ``.bool()``). An empty selection (no ids, or a mask with no
    True) raises ValueError: there would be no batches.
    """
    if input_nodes is None:
        return torch.arange(n), True
    if isinstance(input_nodes, (str, tuple)):
        raise NotImplementedError(f"{who}: input_nodes naming a node type (heterogeneous)")
    if isinstance(input_nodes, np.ndarray):
        input_nodes = torch.from_numpy(np.ascontiguousarray(input_nodes))
    if isinstance(input_nodes, (list, range)):
        input_nodes = torch.as_tensor(list(input_nodes))  # a list of bools is a mask
        if input_nodes.numel() == 0:
            input_nodes = input_nodes.long()
    if not isinstance(input_nodes, torch.Tensor):
        raise TypeError(f"{who}: input_nodes must be a tensor, got {type(input_nodes).__name__}")
    if input_nodes.dtype == torch.bool:
        if input_nodes.dim() != 1 or input_nodes.numel() != n:
            raise ValueError(
                f"{who}: input_nodes mask has shape {tuple(input_nodes.shape)}, expected [{n}] "
                "(one entry per node)"
            )
        seeds = torch.nonzero(input_nodes.cpu()).flatten()
        if seeds.numel() == 0:
            raise ValueError(
                f"{who}: input_nodes is empty: the mask selects no node, so there is nothing "
                "to batch"
            )
        return seeds, True
    if input_nodes.numel() == 0:
        raise ValueError(f"{who}: input_nodes is empty: no node ids, so there is nothing to batch")
    ids = check_index("input_nodes", input_nodes, n, device=None).cpu()
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
class _LoaderFront:
    """What both PyG front ends share: iteration, length and epochs go to their one ``Loader``."""

    loader: Loader
    num_neighbors: Any

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)

    def set_epoch(self, epoch: int) -> None:
        """Seed the next iteration's shuffle, negatives and samples with ``epoch``."""
        self.loader.set_epoch(epoch)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_neighbors={self.num_neighbors}, {self.loader!r})"


class NeighborLoader(_LoaderFront):
    """PyG's ``NeighborLoader`` on gnnsys kernels: same arguments, same batches' fields.

    ``num_workers`` > 0 sets the number of loader threads (not processes); extra keywords
    ``seed``, ``device`` and ``num_threads`` are gnnsys extensions. Temporal sampling
    (``time_attr``) and heterogeneous graphs raise NotImplementedError.

    Arguments read as PyG reads them, with clear errors where PyG fails later or not at all:

    * ``num_neighbors``: a list (or tuple, or ``NumNeighbors``) with one int per hop; a 1-D
      integer tensor is read as that list. An int, a 2-D or float tensor raise.
    * ``input_nodes``: None (every node), a bool mask with one entry per node, or node ids of
      any integer dtype (a uint8 tensor holds ids, as in PyG; one of 0/1 with one entry per
      node warns that it is not read as a mask). An empty selection (no ids, or a mask with
      no True) raises ValueError instead of giving zero batches.
    * Node attributes: PyG's rule (``data.is_node_attr``) decides which attributes are sliced
      by ``n_id`` (first dimension == ``num_nodes``); the others ride along whole in every
      batch. An attribute named like node data (``x``, ``y``, ``feat``, ``pos``,
      ``node_type``, ``*_mask``, or containing ``node``) whose first dimension is not
      ``num_nodes`` warns (UserWarning naming it, its rows and ``num_nodes``), e.g.
      ``Data(x=<50 rows>, num_nodes=100)``. Other names (graph-level data) and a one-row ``y``
      (a graph label) do not warn.
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
        fanouts = _fanouts(num_neighbors, who)
        _check_flags(is_sorted, filter_per_worker, who)
        sg_type = _subgraph_type(subgraph_type, directed, who)
        opts = _loader_options(dict(kwargs), who)
        self.data = data
        self.source = _Source(data, weight_attr, who)
        self.num_neighbors = fanouts
        self.transform = transform
        self.transform_sampler_output = transform_sampler_output
        self.is_sorted, self.filter_per_worker = is_sorted, filter_per_worker
        seeds, self._global_input_id = _input_nodes(input_nodes, self.source.num_nodes, who)
        self.input_nodes = seeds
        self.node_sampler = NeighborSampler(
            self.source.graph,
            fanouts,
            replace=replace,
            weighted=weight_attr is not None,
            subgraph_type=sg_type,
            disjoint=disjoint,
        )
        self.loader = Loader(
            self.node_sampler,
            seeds,
            features=self.source.node_store,
            feature_names=self.source.node_keys,
            collate=self._collate,
            **opts,
        )
        self.batch_size = self.loader.batch_size

    def _collate(self, batch: Batch) -> Any:
        sub, node_data = _apply_sampler_transform(self, batch)
        data = self.source.build(batch, sub, node_data)
        data.input_id = batch.seeds if self._global_input_id else batch.input_id
        data.batch_size = batch.batch_size
        return self.transform(data) if self.transform is not None else data


# ---------------------------------------------------------------------- LinkNeighborLoader
class LinkNeighborLoader(_LoaderFront):
    """PyG's ``LinkNeighborLoader`` on gnnsys kernels (binary and triplet negative sampling).

    Batches carry ``edge_label_index`` / ``edge_label`` (binary or no negative sampling) or
    ``src_index`` / ``dst_pos_index`` / ``dst_neg_index`` (triplet), in local ids, plus
    ``input_id`` (positions into ``edge_label_index``) and the node-batch fields.
    ``num_neighbors``, node attributes, ``is_sorted`` and ``filter_per_worker`` follow
    ``NeighborLoader``'s rules (see there).

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
        fanouts = _fanouts(num_neighbors, who)
        _check_flags(is_sorted, filter_per_worker, who)
        sg_type = _subgraph_type(subgraph_type, directed, who)
        opts = _loader_options(dict(kwargs), who)
        if neg_sampling_ratio is not None and neg_sampling_ratio != 0.0:
            neg_sampling = NegativeSampling("binary", neg_sampling_ratio)
        self.data = data
        self.source = _Source(data, weight_attr, who)
        if edge_label_index is None:
            if isinstance(data, (tuple, list)):
                edge_label_index = self.source.graph.to_edge_index()
            else:
                edge_label_index = data.edge_index
        if isinstance(edge_label_index, (str, tuple)):
            raise NotImplementedError(f"{who}: edge_label_index naming an edge type")
        self.num_neighbors = fanouts
        self.transform = transform
        self.transform_sampler_output = transform_sampler_output
        self.is_sorted, self.filter_per_worker = is_sorted, filter_per_worker
        self.link_sampler = LinkSampler(
            self.source.graph,
            fanouts,
            edge_label_index,
            edge_label,
            neg_sampling=neg_sampling,
            replace=replace,
            weighted=weight_attr is not None,
            subgraph_type=sg_type,
            disjoint=disjoint,
        )
        self.neg_sampling = self.link_sampler.neg_sampling
        self.edge_label_index = edge_label_index
        self.loader = Loader(
            self.link_sampler,
            self.link_sampler.num_inputs,
            features=self.source.node_store,
            feature_names=self.source.node_keys,
            collate=self._collate,
            **opts,
        )
        self.batch_size = self.loader.batch_size

    def _collate(self, batch: Batch) -> Any:
        sub, node_data = _apply_sampler_transform(self, batch)
        data = self.source.build(batch, sub, node_data)
        meta = sub.metadata
        data.input_id = meta["input_id"]
        if self.neg_sampling is None or self.neg_sampling.mode == "binary":
            data.edge_label_index = meta["edge_label_index"]
            if "edge_label" in meta:
                data.edge_label = meta["edge_label"]
        else:
            data.src_index = meta["src_index"]
            data.dst_pos_index = meta["dst_pos_index"]
            data.dst_neg_index = meta["dst_neg_index"]
        return self.transform(data) if self.transform is not None else data


def _apply_sampler_transform(
    owner: Any, batch: Batch
) -> Tuple[SampledSubgraph, Dict[str, torch.Tensor]]:
    """Run ``transform_sampler_output`` on a PyG ``SamplerOutput`` view of the sample.

    Features were gathered for the sampled nodes; if the transform changes the nodes, they are
    fetched again for the new ones.
    """
    sub = batch.subgraph
    fn = owner.transform_sampler_output
    if fn is None:
        return sub, batch.node_data
    from torch_geometric.sampler import SamplerOutput

    out = SamplerOutput(
        node=sub.nodes,
        row=sub.row,
        col=sub.col,
        edge=sub.edge_ids,
        batch=sub.batch,
        num_sampled_nodes=list(sub.num_sampled_nodes),
        num_sampled_edges=list(sub.num_sampled_edges),
        metadata=dict(sub.metadata),
    )
    out = fn(out)
    new = SampledSubgraph(
        nodes=out.node,
        row=out.row,
        col=out.col,
        num_sampled_nodes=list(out.num_sampled_nodes or [int(out.node.numel())]),
        num_sampled_edges=list(out.num_sampled_edges or [int(out.row.numel())]),
        edge_ids=out.edge,
        layered=sub.layered,
        batch=out.batch,
        metadata=out.metadata if isinstance(out.metadata, dict) else sub.metadata,
    )
    node_data = batch.node_data
    if out.node is not sub.nodes:
        store = owner.source.node_store
        node_data = {k: store.fetch(k, out.node) for k in owner.source.node_keys}
    return new, node_data
