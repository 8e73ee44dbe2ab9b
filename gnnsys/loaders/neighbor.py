"""Neighbour samplers: ``NeighborSampler`` (uniform or weighted, with or without replacement,
per-edge-type fanouts on typed graphs) and ``FullNeighborSampler`` (every neighbour).

Both turn a batch of seed nodes into a ``SampledSubgraph`` through one numba kernel call per
batch (``_kernels.sample_hops``), the same kernel for homogeneous and typed graphs (a
homogeneous graph is the one-type case); they hold no features and know no devices.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from gnnsys import _hugepages
from gnnsys._checks import check_choice, check_data_device, check_ids, data_device
from gnnsys._malloc import tune_malloc
from gnnsys._tokens import tensors_token, token_matches
from gnnsys.graph import Graph
from gnnsys.loaders import _kernels
from gnnsys.loaders.base import KeyLike, SampledSubgraph, SampleKey, key_int

SEMANTICS = ("pyg", "dgl")
TEMPORAL_STRATEGIES = ("uniform", "last")
_NO_TIME = np.empty(0, np.int64)
BACKENDS = ("auto", "numba", "triton")
SUBGRAPH_TYPES = ("directional", "bidirectional", "induced")
# Graphs up to this many nodes relabel through a dense per-thread map (8 bytes a node);
# larger ones through a hash table sized by the batch.
DENSE_MAP_MAX_NODES = 1 << 26


@dataclass
class _Adjacency:
    """The arrays the kernels read, laid out for random access.

    ``adj`` packs ``edge_id << 32 | source`` into one int64 when both fit, so one cache miss
    yields both; arrays are fresh numpy allocations, which numpy backs with transparent huge
    pages where the OS allows (fewer TLB misses on random reads, measured ~2-5x faster here),
    or the graph's own tensors, which ``prepared_adjacency`` asks huge pages for
    (``gnnsys._hugepages``; torch does not).
    """

    indptr: np.ndarray
    adj: np.ndarray
    edge_ids: np.ndarray
    packed: bool
    token: Tuple[bool, Any]  # (pack, gnnsys._tokens token of the graph's tensors)
    # the typing, as Graph.type_layout() gives it (one type: empty type_per_edge)
    types: Tuple[np.ndarray, ...] = ()
    # _kernels.segment_index of a typed CSC (seg_ptr, seg_base); empty when untyped
    segments: Tuple[np.ndarray, np.ndarray] = (np.empty(0, np.int64), np.empty(0, np.int64))

    def __getstate__(self) -> Dict[str, Any]:
        # (a pickled sampler's copy: the token's weak references do not pickle, and the copy
        # belongs to no cached graph; an empty token matches none)
        state = self.__dict__.copy()
        state["token"] = (self.token[0], ())
        return state


# One prepared copy per Graph (several samplers and loaders over one graph share it).
_ADJ_CACHE: weakref.WeakKeyDictionary[Graph, _Adjacency] = weakref.WeakKeyDictionary()
_ADJ_LOCK = threading.Lock()


def prepared_adjacency(graph: Graph, pack: bool = True) -> _Adjacency:
    """The graph's CSC in the kernels' layout (cached per graph while its tensors are unchanged)."""
    tensors = graph.structure_tensors()
    with _ADJ_LOCK:
        hit = _ADJ_CACHE.get(graph)
        if hit is not None and hit.token[0] == pack and token_matches(hit.token[1], *tensors):
            return hit
    token = (pack, tensors_token(*tensors))
    from gnnsys.graph_io import file_backed

    if file_backed(graph) is not None:
        # A memory-mapped graph (Graph.load) is read in place: its arrays may be larger than
        # RAM, and processes that map the same files share them through the page cache.
        pack = False
        indptr = graph.indptr.numpy()
    else:
        indptr = np.array(graph.indptr.numpy(), dtype=np.int64)  # a copy, huge-page backed
    ix = graph.indices.numpy()
    n, e = graph.num_nodes, graph.num_edges
    eids = graph.edge_ids.numpy() if graph.edge_ids is not None else None
    fits = n < 2**32 and e < 2**31
    if pack and fits and eids is not None and eids.shape[0]:
        # ids are not always 0..E-1 (a subgraph's global ids, a loaded folder's edge_ids.npy):
        # packing needs every one in -1..2**31-1 (-1: no id; the unpacking shift keeps its
        # sign), else it would hand back wrapped ids. One serial pass, only where packing is
        # still possible (a mapped graph is never packed, nor read here).
        from gnnsys._ids import min_max

        lo, hi = min_max(eids)
        fits = bool(lo >= -1 and hi < 2**31)
    types = graph.type_layout()
    segments = _Adjacency.segments
    if types[0].shape[0] > 0:  # edge types: each (node, edge type) segment's start, once
        segments = _kernels.segment_index(indptr, types[0], types[1], types[4], types[5])
    if eids is not None and pack and fits:
        adj = np.empty(e, np.int64)
        _kernels.pack_adjacency(ix, eids, adj)
        prep = _Adjacency(indptr, adj, np.empty(0, np.int64), True, token, types, segments)
    else:
        adj = np.array(ix) if pack else ix
        ids = np.empty(0, np.int64) if eids is None else (np.array(eids) if pack else eids)
        prep = _Adjacency(indptr, adj, ids, False, token, types, segments)
    for a in (prep.indptr, prep.adj, prep.edge_ids):  # (file maps are left alone)
        _hugepages.advise_huge(a)
    with _ADJ_LOCK:
        _ADJ_CACHE[graph] = prep
    return prep


def edge_index_of(sub: SampledSubgraph) -> torch.Tensor:
    """``sub.edge_index()``: the [2, E] COO, shared with ``row``/``col`` when possible."""
    return sub.edge_index()


def check_fanouts(fanouts: Any, name: str = "fanouts", allow_empty: bool = False) -> np.ndarray:
    """Validate a fanout list (one int >= -1 per hop, -1 = every neighbour) -> int64 array.

    Example:
        >>> check_fanouts([15, 10]).tolist()
        [15, 10]
    """
    if isinstance(fanouts, torch.Tensor):
        if fanouts.dim() != 1 or fanouts.dtype.is_floating_point or fanouts.dtype == torch.bool:
            raise TypeError(
                f"{name} must be a 1-D integer tensor or a list of ints, got {fanouts!r}"
            )
        fanouts = fanouts.tolist()
    if isinstance(fanouts, (int, np.integer)) or not hasattr(fanouts, "__len__"):
        raise TypeError(f"{name} must be a list of ints (one per hop), got {fanouts!r}")
    if len(fanouts) == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: give one fanout per hop, e.g. [15, 10, 5]")
    return np.asarray([check_fanout(f"{name}[{i}]", f) for i, f in enumerate(fanouts)], np.int64)


MAX_FANOUT = 2**31 - 1  # per destination; keeps every kernel's slot count inside int64


def check_fanout(name: str, f: Any) -> int:
    """One fanout: an int from -1 (every neighbour) to ``MAX_FANOUT``.

    Example:
        >>> check_fanout("fanouts[0]", 5)
        5
    """
    if isinstance(f, bool) or not isinstance(f, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {f!r}")
    if f < -1:
        raise ValueError(f"{name} = {f}; fanouts must be >= -1 (-1 = all neighbours)")
    if f > MAX_FANOUT:
        raise ValueError(
            f"{name} = {f}; fanouts must be at most {MAX_FANOUT} (-1 = all neighbours)"
        )
    return int(f)


def _edge_type_key(graph: Graph, key: Any, name: str) -> int:
    # A (src, rel, dst) triple, a relation name, or PyG's "src__rel__dst" string.
    if isinstance(key, str) and key.count("__") == 2:
        key = tuple(key.split("__"))
    try:
        return graph.edge_type_id(key)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


def fanout_matrix(
    fanouts: Any, graph: Graph, *, default: Any = None, name: str = "fanouts",
    allow_empty: bool = False,
) -> np.ndarray:  # fmt: skip
    """Fanouts as an int64 [hops, edge types] matrix for ``graph``.

    Accepts a list of ints (every edge type alike); a dict ``{edge_type: [per hop]}`` (PyG:
    every edge type must be listed unless ``default`` gives the rest, and all lists have the
    same length); or a list with one entry per hop, each an int or a dict ``{edge_type: k}``
    naming every edge type (DGL's per-layer form; rows come in the list's order). Edge types are ``(src, rel, dst)``
    triples or unambiguous relation names.

    Example:
        >>> fanout_matrix({("a", "to", "b"): [5, 2], ("b", "back", "a"): [3, 0]}, h).tolist()
        [[5, 3], [2, 0]]
    """
    k = graph.num_edge_types
    if isinstance(fanouts, np.ndarray) and fanouts.ndim == 2:  # already a matrix
        if fanouts.shape[1] != k or fanouts.dtype.kind not in "iu":
            raise ValueError(f"{name} as a matrix must be integer [hops, {k}], got {fanouts.shape}")
        if fanouts.size and (fanouts.min() < -1 or fanouts.max() > MAX_FANOUT):
            raise ValueError(f"{name} must be in -1..{MAX_FANOUT} (-1 = all neighbours)")
        return fanouts.astype(np.int64)
    if isinstance(fanouts, Mapping):
        rows: Dict[int, np.ndarray] = {}
        for key, value in fanouts.items():
            e = _edge_type_key(graph, key, name)
            if e in rows:
                raise ValueError(f"{name} lists edge type {graph.edge_types[e]!r} twice")
            rows[e] = check_fanouts(value, f"{name}[{key!r}]", allow_empty)
        if default is not None:
            fill = check_fanouts(default, f"{name} default", allow_empty)
            for e in range(k):
                rows.setdefault(e, fill)
        missing = [graph.edge_types[e] for e in range(k) if e not in rows]
        if missing:
            raise ValueError(
                f"{name} gives no fanouts for edge type {missing[0]!r} (every edge type needs "
                "a list, as in PyG; use 0 to skip a type)"
            )
        hops = {r.shape[0] for r in rows.values()}
        if len(hops) > 1:
            raise ValueError(f"{name}: every edge type needs the same number of hops, got {hops}")
        return np.stack([rows[e] for e in range(k)], axis=1).astype(np.int64)
    if isinstance(fanouts, (list, tuple)) and any(isinstance(f, Mapping) for f in fanouts):
        out = np.empty((len(fanouts), k), np.int64)
        for h, layer in enumerate(fanouts):
            if not isinstance(layer, Mapping):  # an int: every edge type alike
                out[h] = check_fanout(f"{name}[{h}]", layer)
                continue
            if not layer:
                raise ValueError(f"{name}[{h}] is an empty dict: give a fanout per edge type")
            seen: Dict[int, Any] = {}
            for key, f in layer.items():
                e = _edge_type_key(graph, key, f"{name}[{h}]")
                if e in seen:
                    raise ValueError(
                        f"{name}[{h}] gives edge type {graph.edge_types[e]!r} twice "
                        f"({seen[e]!r} and {key!r})"
                    )
                seen[e] = key
                out[h, e] = check_fanout(f"{name}[{h}][{key!r}]", f)
            missing = [graph.edge_types[e] for e in range(k) if e not in seen]
            if missing:
                raise ValueError(
                    f"{name}[{h}] gives no fanout for edge type {missing[0]!r}: a dict of "
                    "fanouts must name every edge type (use 0 to skip one)"
                )
        return out
    flat = check_fanouts(fanouts, name, allow_empty)
    return np.repeat(flat[:, None], k, axis=1)


def _wants_triton(graph: Graph, backend: str, device: Any) -> bool:
    """Whether ``NeighborSampler`` samples with the Triton kernels (see its ``backend``)."""
    dev = data_device(device) if device is not None else None
    on_cuda = graph.indptr.device.type == "cuda"
    if backend == "numba":
        if on_cuda or (dev is not None and dev.type != "cpu"):
            where = graph.indptr.device if on_cuda else dev
            raise ValueError(
                f"backend='numba' samples on the CPU, but the graph or device is {where}; "
                "use backend='auto' or 'triton'"
            )
        return False
    if backend == "triton":
        return True
    if dev is not None:
        if dev.type == "cpu" and on_cuda:
            raise ValueError(
                f"device='cpu' but the graph's arrays are on {graph.indptr.device}; "
                "sample on the GPU (device=None) or build the graph on the CPU"
            )
        return dev.type == "cuda"
    return on_cuda or graph_is_pinned(graph)


def sampler_on(
    device: Optional[torch.device],
    graph: Graph,
    fanouts: Any,
    cls: Optional[type] = None,
    **kwargs: Any,
) -> NeighborSampler:
    """A ``NeighborSampler`` (or ``cls``, e.g. ``LaborSampler``) on ``device`` for the fronts:
    the Triton sampler there (a CUDA device; or the CPU under TRITON_INTERPRET=1), or, for a
    case the GPU sampler lacks (fanouts above 1024 without replacement, LABOR), the CPU
    sampler with a warning. ``device=None``: the CPU sampler.

    Example:
        >>> s = sampler_on(torch.device("cuda"), g, [10, 5], semantics="dgl")  # doctest: +SKIP
    """
    make = cls or NeighborSampler
    if device is None:
        return make(graph, fanouts, **kwargs)
    try:
        return make(graph, fanouts, backend="triton", device=device, **kwargs)
    except NotImplementedError as e:
        warnings.warn(f"sampling on the CPU instead of {device}: {e}", stacklevel=3)
        return make(graph, fanouts, **kwargs)


def graph_is_pinned(graph: Graph) -> bool:
    """True when the graph's CSC is page-locked host memory a GPU can read in place
    (``Graph.pin_memory_()``, or torch's pinned allocator). Creates no CUDA context: memory
    pinned through torch implies an initialised CUDA, and gnnsys's own registry needs none.

    Example:
        >>> graph_is_pinned(Graph.from_edge_index(torch.tensor([[0], [1]])))
        False
    """
    t = graph.indptr
    if t.device.type != "cpu" or t.numel() == 0 or not torch.cuda.is_available():
        return False
    from gnnsys.unified_tensor import pinning

    if pinning.is_registered(t.data_ptr(), t.numel() * t.element_size()):
        return True
    return torch.cuda.is_initialized() and bool(t.is_pinned())


class _PicklesWithoutMaps:
    """Samplers hold thread-local relabel maps (``_maps``): a pickled sampler (worker
    processes, DDP) leaves them behind and the copy starts with fresh ones."""

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_maps")
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._maps = _RelabelMaps()


class _RelabelMaps(threading.local):
    """Per-thread dense relabel map (global -> local id, stamped by batch)."""

    def __init__(self) -> None:
        self.mapv: Optional[np.ndarray] = None
        self.stamp = 0


def dense_map(maps: _RelabelMaps, num_nodes: int, disjoint: bool) -> Tuple[np.ndarray, int]:
    """The calling thread's dense relabel map over ``num_nodes`` nodes and a fresh batch stamp,
    or an empty map (the kernels then use a hash table) for disjoint sampling or more than
    ``DENSE_MAP_MAX_NODES`` nodes."""
    if disjoint or num_nodes > DENSE_MAP_MAX_NODES:
        return np.empty(0, np.int64), 1
    if maps.mapv is None or maps.mapv.shape[0] != num_nodes or maps.stamp >= 0x7FFFFFFF:
        maps.mapv = np.zeros(num_nodes, np.int64)
        maps.stamp = 0
    maps.stamp += 1
    return maps.mapv, maps.stamp


class NeighborSampler(_PicklesWithoutMaps):
    """Sample a fixed number of neighbours per node and hop around a batch of seeds.

    Args:
        graph: the ``Graph`` (CSC of incoming edges, typed or not) to sample from.
        fanouts: neighbours per node for each hop, first hop (nearest the seeds) first;
            -1 takes every neighbour. On a typed graph also a dict ``{edge_type: [per hop]}``
            or a list of per-hop dicts (see ``fanout_matrix``); a plain list applies to every
            edge type.
        replace: sample with replacement (exactly ``fanout`` draws per node with neighbours).
        weighted: draw proportionally to ``graph.edge_weight`` (zero-weight edges are never
            drawn); needs a graph with edge weights.
        semantics: ``"pyg"``: hop h expands only the nodes that were new in hop h-1 (PyG's
            NeighborLoader); ``"dgl"``: hop h samples for every node known before it, so hop h's
            destinations are a prefix of the nodes (DGL's blocks; ``layered=True``).
        subgraph_type: ``"directional"`` (the sampled edges), ``"bidirectional"`` (plus their
            reverses) or ``"induced"`` (every graph edge among the sampled nodes). Edges stay
            grouped by hop, so ``num_sampled_edges`` remains valid for ``trim_to_layer``.
        disjoint: give every seed its own tree (nodes are not shared between seeds);
            ``SampledSubgraph.batch`` holds each node's seed index. PyG semantics only.
        pack_adjacency: copy the CSC once (shared by every sampler of this graph) into a
            layout built for random reads: ``edge_id << 32 | source`` in one int64 and
            huge-page-backed arrays (8 bytes an edge; sampling ~1.5x faster here). False
            reads the Graph's own arrays in place, as a memory-mapped graph (``Graph.load``)
            always is (it may be larger than RAM, and processes share its page cache).
        backend: ``"auto"`` samples on the GPU (Triton, ``_sampler_triton``) when ``device``
            is CUDA, the graph's arrays are on CUDA, or the graph is pinned
            (``Graph.pin_memory_()``: the GPU reads the CSC from host memory, UVA), else on
            the CPU (numba); ``"numba"`` / ``"triton"`` force one (``"triton"`` on CPU tensors
            needs ``TRITON_INTERPRET=1``). Both give identical batches for a key.
        device: the GPU to sample on (Triton backend; default: the graph's, or the current
            one for a pinned graph). A CPU graph that is not pinned is copied there once.
            The subgraph's tensors are on this device. Directional subgraphs only.

    The result depends only on (seeds, SampleKey), never on the number of threads.

    Example:
        >>> g = Graph.from_edge_index(torch.tensor([[1, 2, 3], [0, 0, 1]]))
        >>> sub = NeighborSampler(g, [2, 1]).sample(torch.tensor([0]), SampleKey(seed=0))
        >>> sub.nodes.tolist(), sub.num_sampled_nodes
        ([0, 1, 2, 3], [1, 2, 1])
    """

    labor = False  # LaborSampler: LABOR-0 draws instead of independent ones
    labor_iters = 0  # LaborSampler(importance_sampling=i): LABOR-i
    layer_dependency = False
    temporal = False  # TemporalNeighborSampler: no edge newer than the seed's time

    def __init__(
        self,
        graph: Graph,
        fanouts: Sequence[int],
        *,
        replace: bool = False,
        weighted: bool = False,
        semantics: str = "pyg",
        subgraph_type: str = "directional",
        disjoint: bool = False,
        pack_adjacency: bool = True,
        backend: str = "auto",
        device: Any = None,
    ) -> None:
        if not isinstance(graph, Graph):
            raise TypeError(f"graph must be a gnnsys.Graph, got {type(graph).__name__}")
        check_choice("semantics", semantics, SEMANTICS)
        check_choice("subgraph_type", subgraph_type, SUBGRAPH_TYPES)
        check_choice("backend", backend, BACKENDS)
        self.graph = graph
        self.fanouts = fanout_matrix(fanouts, graph, allow_empty=True)
        if subgraph_type == "induced" and self.fanouts.shape[0] == 0:
            raise ValueError("subgraph_type='induced' needs at least one hop (num_neighbors=[])")
        self._reverse_plan: Tuple[Tuple[int, int, bool], ...] = ()
        if not graph.is_hetero and graph.num_edge_types > 1 and subgraph_type != "directional":
            raise NotImplementedError(
                f"subgraph_type={subgraph_type!r} needs edge type names on a typed graph"
            )
        if graph.is_hetero and subgraph_type == "bidirectional":
            self._reverse_plan = reverse_edge_plan(graph.edge_types)
        self.replace = bool(replace)
        self.weighted = bool(weighted)
        self.semantics = semantics
        self.subgraph_type = subgraph_type
        self.disjoint = bool(disjoint)
        if self.disjoint and semantics == "dgl":
            raise ValueError("disjoint=True needs semantics='pyg' (DGL blocks share nodes)")
        if self.disjoint and subgraph_type == "induced":
            raise ValueError("disjoint=True cannot be combined with subgraph_type='induced'")
        self.backend = "triton" if _wants_triton(graph, backend, device) else "numba"
        if (self.labor or self.temporal) and self.backend == "triton":
            what = "LABOR" if self.labor else "temporal sampling"
            raise NotImplementedError(
                f"{what} is not implemented on the GPU sampler; use backend='numba' (the CPU)"
            )
        self._node_time = self._edge_time = _NO_TIME
        self._temporal_mode = 0  # _kernels.TEMPORAL_LAST | TEMPORAL_SORTED bits
        self._device_sampler: Any = None
        self._maps = _RelabelMaps()
        if self.backend == "triton":
            if subgraph_type != "directional":
                raise NotImplementedError(
                    f"subgraph_type={subgraph_type!r} is not implemented on the GPU sampler; "
                    "use 'directional' or backend='numba'"
                )
            from gnnsys.loaders._sampler_triton import TritonSampler

            self._device_sampler = TritonSampler(
                graph, self.fanouts, replace=self.replace, weighted=self.weighted,
                layered=semantics == "dgl", disjoint=self.disjoint, device=device,
                dense_map_max_nodes=DENSE_MAP_MAX_NODES,
            )  # fmt: skip
            return
        tune_malloc()  # keep per-batch scratch in the heap (see gnnsys/_malloc.py)
        self._adj = prepared_adjacency(graph, pack=bool(pack_adjacency))
        self._indptr = self._adj.indptr
        self._weights = np.empty(0, np.float64)
        self._cumw = np.empty(0, np.float64)
        if self.weighted:
            self._prepare_weights(graph.edge_weight)
        self._maps = _RelabelMaps()

    def _prepare_weights(self, weight: Optional[torch.Tensor]) -> None:
        if weight is None:
            raise ValueError(
                "weighted=True needs a graph with edge_weight (Graph(edge_weight=...))"
            )
        w = weight.detach().cpu().double().numpy()
        if w.size and not np.isfinite(w).all():
            bad = int(np.flatnonzero(~np.isfinite(w))[0])
            raise ValueError(f"edge_weight must be finite; edge {bad} has weight {w[bad]}")
        if w.size and (w < 0).any():
            bad = int(np.flatnonzero(w < 0)[0])
            raise ValueError(f"edge_weight must be >= 0; edge {bad} has weight {w[bad]}")
        self._weights = np.ascontiguousarray(w)
        if self.replace:
            self._cumw = _kernels.column_cumsum(self._indptr, self._weights, self._adj.types[0])

    def __repr__(self) -> str:
        return (
            f"NeighborSampler(fanouts={self._fanouts_repr()}, replace={self.replace}, "
            f"weighted={self.weighted}, semantics={self.semantics!r}, "
            f"subgraph_type={self.subgraph_type!r}, disjoint={self.disjoint})"
        )

    def _fanouts_repr(self) -> Any:
        if self.fanouts.shape[1] == 1:
            return self.fanouts[:, 0].tolist()
        return {et: self.fanouts[:, e].tolist() for e, et in enumerate(self.graph.edge_types)}

    @property
    def num_hops(self) -> int:
        return int(self.fanouts.shape[0])

    @property
    def num_inputs(self) -> int:
        """Seeds are node ids below this (the Loader validates them once up front)."""
        return self.graph.num_nodes

    # ------------------------------------------------------------------ sampling
    def sample(self, seeds: torch.Tensor, generator: KeyLike = None) -> SampledSubgraph:
        """Sample around ``seeds`` (int64 node ids on the CPU; CUDA too on the Triton backend),
        randomness keyed by ``generator``.

        Example:
            >>> sub = sampler.sample(torch.tensor([0, 5]), SampleKey(seed=1, epoch=0, batch=3))
        """
        cuda_ok = self._device_sampler is not None
        seeds_t = check_ids(
            "seeds", seeds, self.graph.num_nodes, allow_empty=False, allow_cuda=cuda_ok
        )
        return self.sample_checked(seeds_t, key_int(generator))

    def sample_checked(
        self,
        seeds: torch.Tensor,
        key: int,
        seed_tree: Optional[torch.Tensor] = None,
        seed_time: Optional[np.ndarray] = None,
    ) -> SampledSubgraph:
        """``sample`` without validation: ``seeds`` must already be checked int64 CPU ids.

        ``seed_tree`` (disjoint only) assigns each seed its tree; default ``arange(len(seeds))``.
        ``seed_time`` (temporal samplers: checked, one per seed, the time dtype) bounds the
        edges of each seed's tree (seeds of one tree share a time).
        """
        if self._device_sampler is not None:
            return self._device_sampler.sample(seeds, key, seed_tree)
        seeds_np = seeds.numpy()
        if self.disjoint:
            tree = seed_tree if seed_tree is not None else torch.arange(seeds.numel())
            tree_np = tree.numpy()
        else:
            tree_np = np.empty(0, np.int64)
        mapv, stamp = self._map()
        key, key2, mix = self._kernel_keys(key)
        a = self._adj
        seed_times = self._tree_times(seeds_np, tree_np, seed_time)
        general = self.labor and (self.labor_iters != 0 or key2 >= 0 or self.weighted)
        tpe, offsets, etype_src, etype_dst, dst_ptr, dst_etypes = a.types
        kernel = _kernels.sample_hops_for(  # compiled for the modes these arguments use
            self._work(seeds.numel()),
            labor=self.labor and not general,
            labor_general=general,
            temporal=seed_times.shape[0] > 0,
            weighted=self.weighted,
            typed=tpe.shape[0] > 0 or offsets.shape[0] > 2,
            disjoint=self.disjoint,
            hashed=mapv.shape[0] == 0,
        )
        try:
            out = kernel(
                a.indptr,
                a.adj,
                a.edge_ids,
                a.packed,
                self._weights,
                self._cumw,
                tpe,
                offsets,
                etype_src,
                etype_dst,
                dst_ptr,
                dst_etypes,
                a.segments[0],
                a.segments[1],
                seeds_np,
                tree_np,
                self.fanouts,
                self.replace,
                self.weighted,
                self.semantics == "dgl",
                self.disjoint,
                key,
                mapv,
                stamp,
                self.labor,
                self.layer_dependency,
                self._node_time,
                self._edge_time,
                seed_times,
                self._temporal_mode,
                self.labor_iters,
                key2,
                mix,
            )
        except MemoryError as err:  # numba's own text names no cause
            raise MemoryError(self._too_big(seeds.numel(), err)) from err
        nodes, tree_out, edge_index, eid, type_counts, edge_ptr = out[:6]
        indptr_all, indptr_ptr, dst_start, hkeys, hvals, eprob, ewt = out[6:]
        num_hops = self.num_hops
        nsn = type_counts.sum(axis=1)
        typed = self.graph.is_hetero
        if num_hops:
            nse = (edge_ptr[1:] - edge_ptr[:-1]).reshape(-1, num_hops).sum(axis=0)
        else:
            nse = np.zeros(0, np.int64)
        csc = True
        no_ids: Tuple[int, ...] = ()
        induced_sg = self.subgraph_type == "induced"
        if induced_sg:
            induced = _kernels.choose(
                _kernels.induced_edges, _kernels.induced_edges_serial, int(nodes.shape[0]) * 16
            )
            edge_index, eid, edge_ptr = induced(
                a.indptr, a.adj, a.edge_ids, a.packed, tpe, offsets, self.fanouts.shape[1],
                nodes, type_counts, mapv, stamp, hkeys, hvals,
            )  # fmt: skip
            nse = (edge_ptr[1:] - edge_ptr[:-1]).reshape(-1, num_hops).sum(axis=0)
            csc = False
        elif self.subgraph_type == "bidirectional" and typed:
            if num_hops:
                edge_index, eid, edge_ptr, no_ids = typed_bidirectional(
                    edge_index, eid, edge_ptr, num_hops, self._reverse_plan
                )
                nse = (edge_ptr[1:] - edge_ptr[:-1]).reshape(-1, num_hops).sum(axis=0)
            induced_sg = True  # edge_ptr stays meaningful
            csc = False
        elif self.subgraph_type == "bidirectional":
            edge_index, eid, nse = _kernels.bidirectional_edges(
                edge_index, eid, nse, max(int(nodes.shape[0]), 1)
            )
            csc = False
        ei = torch.from_numpy(edge_index)  # row and col are views of one [2, E] array
        meta: Dict[str, Any] = {}
        if self.subgraph_type != "directional":
            meta["subgraph_type"] = self.subgraph_type
        if no_ids:
            meta["edge_types_without_ids"] = no_ids
        if self.labor and (self.labor_iters or self.weighted):
            # LABOR-i or weighted LABOR: DGL's edge_weights and the inclusion probabilities
            meta["edge_weights"] = torch.from_numpy(ewt.astype(np.float32))
            meta["edge_probs"] = torch.from_numpy(eprob.astype(np.float32))
        off = None
        if typed:
            off = torch.zeros(type_counts.shape[1] + 1, dtype=torch.int64)
            torch.cumsum(torch.from_numpy(type_counts.sum(axis=0)), 0, out=off[1:])
        return SampledSubgraph(
            nodes=torch.from_numpy(nodes),
            row=ei[0],
            col=ei[1],
            num_sampled_nodes=nsn.tolist(),
            num_sampled_edges=nse.tolist(),
            edge_ids=torch.from_numpy(eid),
            layered=self.semantics == "dgl",
            batch=torch.from_numpy(tree_out) if self.disjoint else None,
            metadata=meta,
            node_offsets=off,
            type_num_sampled_nodes=torch.from_numpy(type_counts) if typed else None,
            edge_ptr=torch.from_numpy(edge_ptr) if csc or induced_sg else None,
            hop_indptr=torch.from_numpy(indptr_all) if csc else None,
            hop_indptr_ptr=torch.from_numpy(indptr_ptr) if csc else None,
            hop_dst_start=torch.from_numpy(dst_start) if csc else None,
            node_types=self.graph.node_types if typed else None,
            edge_types=self.graph.edge_types if typed else None,
        )

    def _tree_times(
        self, seeds: np.ndarray, tree: np.ndarray, seed_time: Optional[np.ndarray]
    ) -> np.ndarray:
        """The time bound of each tree (empty: not temporal)."""
        if not self.temporal:
            return _NO_TIME
        return tree_times(seeds, tree, seed_time, self._node_time)

    def _kernel_keys(self, key: Any) -> Tuple[int, int, float]:
        """(key, second key, mix) for the kernel: one key here (LaborSampler: two with
        batch dependency)."""
        return int(key), -1, 0.0

    def _too_big(self, num_seeds: int, err: BaseException) -> str:
        """Why a batch ran out of memory, in the user's terms."""
        fanouts = self.fanouts.tolist() if self.graph.is_hetero else self.fanouts[:, 0].tolist()
        each = "exactly" if self.replace else "up to"
        return (
            f"sampling {num_seeds} seeds with fanouts {fanouts} (replace={self.replace}) needs "
            f"more memory than this machine gave ({err}): each hop draws {each} its fanout of "
            "in-edges per destination, and the next hop starts from their sources; lower the "
            "fanouts, the number of hops or the batch size"
        )

    def _work(self, num_seeds: int) -> int:
        """Rough edge count of one batch (fanout -1 counted as 32), to pick serial or parallel."""
        total, layer = 0, num_seeds
        for row in self.fanouts.tolist():
            layer *= sum(f if f >= 0 else 32 for f in row)
            total += layer
        return total

    def _map(self) -> Tuple[np.ndarray, int]:
        """This thread's dense relabel map and a fresh stamp (or an empty map: hash table)."""
        return dense_map(self._maps, self.graph.num_nodes, self.disjoint)


def reverse_edge_plan(
    edge_types: Sequence[Tuple[str, str, str]],
) -> Tuple[Tuple[int, int, bool], ...]:
    """Which edge type each edge type is made bidirectional with, by PyG 2.8's rule
    (``HeteroSamplerOutput.to_bidirectional``): for ``(s, r, d)`` (relations named ``rev_*``
    are skipped), its reverse ``(d, "rev_" + r, s)`` if the graph has it (both then hold the
    union, one the other's flip); else itself when ``s == d``; else the one edge type from
    ``d`` to ``s`` if there is exactly one; else it stays directional (with PyG's warning).

    Returns (edge type, partner, partner also rewritten) triples, in edge-type order.
    """
    index = {tuple(et): e for e, et in enumerate(edge_types)}
    plan = []
    for e, (src, rel, dst) in enumerate(edge_types):
        if rel.startswith("rev_"):
            continue
        rev = index.get((dst, f"rev_{rel}", src))
        if rev is not None:
            plan.append((e, rev, True))
        elif src == dst:
            plan.append((e, e, False))
        else:
            back = [k for k, et in enumerate(edge_types) if (et[0], et[2]) == (dst, src)]
            if len(back) == 1:
                plan.append((e, back[0], False))
            else:
                warnings.warn(
                    f"Cannot convert to bidirectional graph since the edge type "
                    f"{(src, rel, dst)} does not seem to have a reverse edge type",
                    stacklevel=3,
                )
    return tuple(plan)


def _coalesce_union(r: np.ndarray, c: np.ndarray, rr: np.ndarray, rc: np.ndarray):
    # (r, c) plus the flipped (rr, rc) = (rc, rr), deduplicated, sorted by destination then
    # source (PyG's coalesce with sort_by_row=False).
    row = np.concatenate([r, rc])
    col = np.concatenate([c, rr])
    if row.size == 0:
        return row, col
    width = int(row.max()) + 1
    key = np.unique(col * width + row)
    return key % width, key // width


def typed_bidirectional(
    edge_index: np.ndarray,
    eid: np.ndarray,
    edge_ptr: np.ndarray,
    num_hops: int,
    plan: Tuple[Tuple[int, int, bool], ...],
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Tuple[int, ...]]:
    """Rewrite a typed directional sample into PyG's bidirectional one (see
    ``reverse_edge_plan``). A rewritten edge type has no edge ids (PyG drops its ``e_id`` and
    edge attributes: -1 here) and keeps all its edges in its hop-1 segment.

    Returns (edge_index, eid, edge_ptr, the rewritten edge types).
    """
    num_etypes = (edge_ptr.shape[0] - 1) // num_hops
    spans = [
        (int(edge_ptr[e * num_hops]), int(edge_ptr[(e + 1) * num_hops])) for e in range(num_etypes)
    ]
    rows = [edge_index[0, lo:hi] for lo, hi in spans]
    cols = [edge_index[1, lo:hi] for lo, hi in spans]
    new: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
    for e, partner, both in plan:
        r, c = _coalesce_union(rows[e], cols[e], rows[partner], cols[partner])
        new[e] = (r, c)
        if both:
            new[partner] = (c, r)
    parts_r, parts_c, parts_e = [], [], []
    out_ptr = np.zeros_like(edge_ptr)
    at = 0
    for e in range(num_etypes):
        lo, hi = spans[e]
        if e in new:
            r, c = new[e]
            parts_r.append(r)
            parts_c.append(c)
            parts_e.append(np.full(r.shape[0], -1, np.int64))
            out_ptr[e * num_hops + 1 : (e + 1) * num_hops + 1] = at + r.shape[0]
            at += r.shape[0]
        else:
            parts_r.append(rows[e])
            parts_c.append(cols[e])
            parts_e.append(eid[lo:hi])
            out_ptr[e * num_hops + 1 : (e + 1) * num_hops + 1] = (
                edge_ptr[e * num_hops + 1 : (e + 1) * num_hops + 1] - lo + at
            )
            at += hi - lo
    out = np.empty((2, at), np.int64)
    if parts_r:
        np.concatenate(parts_r, out=out[0])
        np.concatenate(parts_c, out=out[1])
    eids = np.concatenate(parts_e) if parts_e else np.empty(0, np.int64)
    return out, eids, out_ptr, tuple(sorted(new))


def check_labor_options(importance_sampling: Any, batch_dependency: Any) -> Tuple[int, int]:
    """Validate LABOR's options (both fronts) -> (importance_sampling, batch_dependency).

    ``importance_sampling``: an int >= -1 (0: LABOR-0; i > 0: LABOR-i; -1: iterate to
    convergence). ``batch_dependency``: an int >= 1 (1: independent batches).

    Example:
        >>> check_labor_options(1, 4)
        (1, 4)
    """
    for name, value, low in (("importance_sampling", importance_sampling, -1),
                             ("batch_dependency", batch_dependency, 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if value < low:
            what = "0 = LABOR-0, i > 0 = LABOR-i, -1 = to convergence" if low < 0 else "1 = off"
            raise ValueError(f"{name} must be >= {low} ({what}), got {value}")
    return int(importance_sampling), int(batch_dependency)


# Salt of the batch-dependency window keys (keeps them apart from the batches' own keys).
_WINDOW_SALT = 0x4C41424F52


def labor_window_keys(key: SampleKey, batch_dependency: int) -> Tuple[int, int, float]:
    """The two keys and the mix of batch ``key.batch`` under ``batch_dependency`` = k (DGL's
    ``batch_dependency``): batches are grouped in windows of k; batch b of window w mixes the
    window keys K_w and K_{w+1} with weight (b mod k) / k, so its variates slide from the
    window's to the next one's and consecutive batches share most sampled sources. Windows
    restart each epoch.

    Example:
        >>> k1, k2, mix = labor_window_keys(SampleKey(seed=0, batch=5), 4)
        >>> mix, k1 == labor_window_keys(SampleKey(seed=0, batch=3), 4)[1]
        (0.25, True)
    """
    w, j = divmod(int(key.batch), batch_dependency)
    seed = int(key.seed) ^ _WINDOW_SALT
    first = SampleKey(seed, key.epoch, w).as_int()
    second = SampleKey(seed, key.epoch, w + 1).as_int()
    return first, second, j / batch_dependency


class LaborSampler(NeighborSampler):
    """Layer-neighbour sampling, LABOR-0 and LABOR-i (Balin and Catalyurek, NeurIPS 2023;
    DGL's ``LaborSampler``, GraphBolt's ``LayerNeighborSampler``) on the typed core.

    Each candidate source node draws one uniform variate per batch (and edge type, and hop
    unless ``layer_dependency``); an edge into a destination with d in-edges of its type is kept
    when its source's variate is below ``fanout / d`` (LABOR-0). Every destination keeps
    min(fanout, d) edges in expectation, as neighbour sampling, but destinations that share
    neighbours mostly keep the same ones, so a batch reaches fewer distinct nodes (fewer
    feature rows to gather). The Horvitz-Thompson mean ``sum(x_u / p_u) / d`` over the kept
    edges (p = fanout / d) is an unbiased estimate of the full-neighbourhood mean.

    LABOR-i (``importance_sampling=i``) replaces fanout / d by p_ts = min(1, c_s pi_t): i
    rounds of the paper's fixed-point iteration (``_kernels.labor_importance``) over the hop's
    candidate sources give each source an importance pi_t and each destination the c_s at which
    its estimator's variance equals uniform sampling's, which samples fewer distinct sources
    (a destination may keep slightly more than min(fanout, d) edges in expectation). The
    subgraph's ``metadata`` then carries ``"edge_probs"`` (p per sampled edge, for the unbiased
    ``sum(x_u / p) / d``) and ``"edge_weights"`` (DGL's: 1 / p scaled so that each
    destination's weights sum to its kept count, for a weighted mean).

    Args: as ``NeighborSampler`` (fanouts per hop, or per edge type), plus
        layer_dependency: use the same variates on every hop (GraphBolt's option).
        importance_sampling: 0 (LABOR-0), i > 0 (LABOR-i) or -1 (iterate to convergence, at
            most 100 rounds).
        batch_dependency: k >= 1; k > 1 slides the variates over windows of k consecutive
            batches (``labor_window_keys``), so consecutive batches share more sources (better
            cache hit rates). Needs ``SampleKey`` keys (the Loader's); an int key samples the
            batch on its own.
    ``weighted=True`` (the graph's ``edge_weight``, DGL's ``prob``) is DGL's weighted LABOR:
    p_e = min(1, c_s A_e) with c_s from the weighted variance condition (one round of
    ``labor_importance``; LABOR-i runs one more), ``edge_probs`` / ``edge_weights`` as above
    with A_e / p; a zero-weight edge is never sampled. ``replace`` and the GPU backend are not
    available; LABOR-i and weighted LABOR need ``subgraph_type="directional"``.

    Example:
        >>> sub = LaborSampler(g, [10, 10], importance_sampling=1).sample(seeds, SampleKey())
        >>> w = sub.metadata["edge_weights"]
    """

    labor = True

    def __init__(
        self,
        graph: Graph,
        fanouts: Any,
        *,
        layer_dependency: bool = False,
        importance_sampling: int = 0,
        batch_dependency: int = 1,
        **kwargs: Any,
    ) -> None:
        iters, window = check_labor_options(importance_sampling, batch_dependency)
        if kwargs.get("replace"):
            raise ValueError("LaborSampler does not take replace=True (LABOR keeps an edge once)")
        if (iters or kwargs.get("weighted")) and kwargs.get(
            "subgraph_type", "directional"
        ) != "directional":
            what = f"importance_sampling={iters}" if iters else "weighted=True"
            raise NotImplementedError(
                f"{what} needs subgraph_type='directional' (the edge weights belong to the "
                "sampled edges)"
            )
        self.layer_dependency = bool(layer_dependency)
        self.labor_iters = self.importance_sampling = iters
        self.batch_dependency = window
        super().__init__(graph, fanouts, **kwargs)

    def sample(self, seeds: torch.Tensor, generator: KeyLike = None) -> SampledSubgraph:
        """Sample around ``seeds``; a ``SampleKey`` also places the batch in its
        batch-dependency window.

        Example:
            >>> sub = sampler.sample(torch.tensor([0, 5]), SampleKey(seed=1, epoch=0, batch=3))
        """
        seeds_t = check_ids("seeds", seeds, self.graph.num_nodes, allow_empty=False)
        key = generator if isinstance(generator, SampleKey) else key_int(generator)
        return self.sample_checked(seeds_t, key)  # type: ignore[arg-type]

    def _kernel_keys(self, key: Any) -> Tuple[int, int, float]:
        """A SampleKey under batch dependency: its window's two keys and mix; else one key."""
        if isinstance(key, SampleKey):
            if self.batch_dependency > 1:
                return labor_window_keys(key, self.batch_dependency)
            key = key.as_int()
        return int(key), -1, 0.0

    def __repr__(self) -> str:
        return (
            f"LaborSampler(fanouts={self._fanouts_repr()}, "
            f"layer_dependency={self.layer_dependency}, "
            f"importance_sampling={self.importance_sampling}, "
            f"batch_dependency={self.batch_dependency}, semantics={self.semantics!r}, "
            f"subgraph_type={self.subgraph_type!r}, disjoint={self.disjoint})"
        )


def _time_array(name: str, value: Any, count: int) -> np.ndarray:
    """One time per item as a contiguous int64 or float64 array, checked."""
    if isinstance(value, torch.Tensor):
        check_data_device(name, value)
    try:
        t = torch.as_tensor(value).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as err:  # "abc", a list with 2**64
        kind = type(value).__name__
        raise TypeError(f"{name} must be an array of times, got {kind} ({err})") from None
    if t.dim() != 1 or t.numel() != count:
        raise ValueError(f"{name} must be 1-D with {count} entries, got shape {tuple(t.shape)}")
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must hold numbers (times), got {t.dtype}")
    if t.is_floating_point():
        a = t.double().numpy()
        if a.size and not np.isfinite(a).all():
            raise ValueError(
                f"{name} must be finite; entry {int(np.flatnonzero(~np.isfinite(a))[0])} is not"
            )
        return np.ascontiguousarray(a)
    if t.dtype == torch.uint64 and t.numel():  # .long() would wrap 2**63 and up to negatives
        top = int(t.numpy().max())
        if top > np.iinfo(np.int64).max:
            raise ValueError(f"{name} holds {top}, which does not fit in int64 (uint64 times)")
    return np.ascontiguousarray(t.long().numpy())


def tree_times(
    seeds: np.ndarray, tree: np.ndarray, seed_time: Optional[np.ndarray], node_time: np.ndarray
) -> np.ndarray:
    """The time bound of each tree of a temporal batch: its seeds' ``seed_time`` (None: their
    ``node_time``); ``tree`` empty or ``arange``: one tree per seed."""
    if seed_time is None:
        seed_time = node_time[seeds]
    if tree.shape[0] == 0 or (tree.shape[0] == seeds.shape[0] and
                               np.array_equal(tree, np.arange(tree.shape[0]))):  # fmt: skip
        return np.ascontiguousarray(seed_time)
    out = np.zeros(int(tree.max()) + 1, seed_time.dtype)
    out[tree] = seed_time
    return out


def check_temporal_options(
    node_time: Any, edge_time: Any, temporal_strategy: str, semantics: str, disjoint: Any
) -> None:
    """What every temporal sampler requires: one kind of times, a known strategy, PyG
    semantics, disjoint subgraphs (``disjoint`` None: not given)."""
    check_choice("temporal_strategy", temporal_strategy, TEMPORAL_STRATEGIES)
    if (node_time is None) == (edge_time is None):
        raise ValueError("give exactly one of node_time (node-level) or edge_time (edge-level)")
    if semantics != "pyg":
        raise ValueError("temporal sampling needs semantics='pyg' (a subgraph per seed)")
    if disjoint is False:
        raise ValueError("temporal sampling is disjoint (a subgraph per seed), as in PyG")


def check_seed_times(
    seed_time: Any, count: int, time_dtype: Any, node_level: bool
) -> Optional[np.ndarray]:
    """``count`` seed times as a temporal kernel takes them, in the graph's ``time_dtype``
    (None: the seeds' node times, which only node-level times have)."""
    if seed_time is None:
        if not node_level:
            raise ValueError("seed_time is required with edge-level times (edge_time)")
        return None
    t = _time_array("seed_time", seed_time, count)
    if t.dtype.kind == "f" and np.dtype(time_dtype).kind in "iu":
        # Integer times against float bounds: "time <= s" is "time <= floor(s)", and a bound
        # past the integer range admits everything (or nothing): exact, where a cast would
        # truncate -0.5 to 0 (a future node admitted) and wrap 1e30
        info = np.iinfo(time_dtype)
        f = np.floor(t)
        above, below = f >= float(info.max) + 1.0, f < float(info.min)  # (powers of two)
        out = np.where(above | below, 0.0, f).astype(time_dtype)
        out[above], out[below] = info.max, info.min
        return out
    return t.astype(time_dtype) if t.dtype != time_dtype else t


class TemporalNeighborSampler(NeighborSampler):
    """Neighbour sampling that never looks into the future (PyG's ``time_attr``, GraphBolt's
    ``TemporalNeighborSampler``): every seed gets its own subgraph (``disjoint``), and a node
    of seed s's subgraph may use only in-edges not newer than s's time.

    Args: as ``NeighborSampler`` (fanouts per hop or per edge type, ``replace``,
    ``subgraph_type``), plus exactly one of
        node_time: a time per node (a dict per node type on a typed graph); an edge's time is
            its source's (node-level, PyG's default).
        edge_time: a time per edge, by the graph's edge ids (a dict per edge type, by ids
            within the type, on a typed graph).
        temporal_strategy: ``"uniform"`` (a uniform draw among the allowed edges) or
            ``"last"`` (the most recent ones).
        time_sorted_copy: when the graph's in-edges are not in time order, hold a copy of
            the adjacency sorted by time (default; a binary search per destination) instead
            of scanning every in-edge of each destination (no extra memory, much slower).
            A graph mapped from disk (``Graph.load``) is never copied.
    Times are integers or floats. ``sample(seeds, key, seed_time=...)`` takes a time per
    seed; by default each seed's node time (required with ``edge_time``). With the ``Loader``,
    ``Loader(sampler, seeds, seed_time=...)``. Weighted sampling, DGL semantics and the GPU
    backend are not available.

    Example:
        >>> s = TemporalNeighborSampler(g, [10, 5], node_time=year)
        >>> sub = s.sample(seeds, SampleKey(seed=0), seed_time=year[seeds])
    """

    temporal = True

    def __init__(
        self,
        graph: Graph,
        fanouts: Any,
        *,
        node_time: Any = None,
        edge_time: Any = None,
        temporal_strategy: str = "uniform",
        time_sorted_copy: bool = True,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("weighted"):
            raise NotImplementedError("weighted temporal sampling is not implemented")
        check_temporal_options(node_time, edge_time, temporal_strategy,
                               kwargs.get("semantics", "pyg"), kwargs.get("disjoint"))  # fmt: skip
        kwargs["disjoint"] = True
        super().__init__(graph, fanouts, **kwargs)
        if node_time is not None:
            self._node_time = _node_times(graph, node_time)
        else:
            self._edge_time = _edge_times_csc(graph, edge_time)
        # Each (destination, edge type) run in time order, as PyG's sort_csc keeps it: the
        # kernel then finds a seed's admitted edges by binary search and "last" is a slice.
        # Runs already in order (interaction streams built in time order) are used as they
        # are; otherwise this sampler holds a time-sorted copy of the adjacency. Without a
        # copy (refused, or a graph mapped from disk) unsorted runs are scanned instead.
        from gnnsys.graph_io import file_backed

        copy = bool(time_sorted_copy) and file_backed(graph) is None
        ascending = False
        if copy or self._edge_time.shape[0] > 0:  # node-level without a copy: scan, no check
            self._adj, self._edge_time, ascending = time_sorted_adjacency(
                self._adj, self._node_time, self._edge_time, copy=copy
            )
            self._indptr = self._adj.indptr
        self._temporal_mode = (_kernels.TEMPORAL_LAST if temporal_strategy == "last" else 0) | (
            _kernels.TEMPORAL_SORTED if ascending else 0
        )
        self.temporal_strategy = temporal_strategy

    @property
    def time_dtype(self) -> np.dtype:
        t = self._node_time if self._node_time.shape[0] else self._edge_time
        return t.dtype

    def sample(
        self, seeds: torch.Tensor, generator: KeyLike = None, seed_time: Any = None
    ) -> SampledSubgraph:
        """Sample around ``seeds``, each bounded by its ``seed_time`` (default: its node time).

        Example:
            >>> sub = s.sample(torch.tensor([0, 5]), SampleKey(seed=1), seed_time=[2010, 2015])
        """
        seeds_t = check_ids("seeds", seeds, self.graph.num_nodes, allow_empty=False)
        return self.sample_checked(
            seeds_t, key_int(generator), None, self.check_seed_time(seed_time, seeds_t.numel())
        )

    def check_seed_time(self, seed_time: Any, count: int) -> Optional[np.ndarray]:
        """``seed_time`` as the kernel takes it (None: the seeds' node times)."""
        return check_seed_times(seed_time, count, self.time_dtype, self._node_time.shape[0] > 0)

    def __repr__(self) -> str:
        level = "node" if self._node_time.shape[0] else "edge"
        return (
            f"TemporalNeighborSampler(fanouts={self._fanouts_repr()}, time={level}, "
            f"temporal_strategy={self.temporal_strategy!r}, replace={self.replace}, "
            f"subgraph_type={self.subgraph_type!r})"
        )


def time_sorted_adjacency(
    adj: _Adjacency, node_time: np.ndarray, edge_time: np.ndarray, copy: bool = True
) -> Tuple[_Adjacency, np.ndarray, bool]:
    """(adjacency, edge times by its CSC position, whether every run ascends in time).

    The times are ``edge_time`` (edge-level, in ``adj``'s CSC order) or each edge's source's
    ``node_time`` (node-level). Runs of one (destination, edge type) that are not all in time
    order are reordered, stably (ties keep CSC order, so "last" prefers the later edge as the
    scan does), into a copy of ``adj`` whose edge ids stay the graph's; with ``copy=False``
    such an adjacency is returned as it is, with ascending False (the kernel scans).
    """
    if edge_time.shape[0] == 0:
        src = adj.adj & np.int64(0xFFFFFFFF) if adj.packed else adj.adj
        times = np.ascontiguousarray(node_time[src])
    else:
        times = edge_time
    tpe = adj.types[0] if adj.types else np.zeros(0, np.int8)
    perm, ascending = time_sorted_runs(adj.indptr, tpe, times, copy)
    if perm is None:
        return adj, times if ascending else edge_time, ascending
    if adj.packed:  # edge ids travel inside the packed entries
        ids = adj.edge_ids
    elif adj.edge_ids.shape[0]:
        ids = adj.edge_ids[perm]
    else:  # the id was the CSC position: now explicit
        ids = perm.astype(np.int64)
    sorted_adj = _Adjacency(
        adj.indptr, adj.adj[perm], ids, adj.packed, adj.token, adj.types, adj.segments
    )  # (the order within each (destination, edge type) segment changes, not the segments)
    return sorted_adj, np.ascontiguousarray(times[perm]), True


def time_sorted_runs(
    indptr: np.ndarray, tpe: np.ndarray, times: np.ndarray, copy: bool
) -> Tuple[Optional[np.ndarray], bool]:
    """(the stable permutation putting every (destination, edge type) run of a CSC in time
    order, None when the runs already are or ``copy`` is False; whether the runs ascend then).
    ``times`` per CSC position."""
    if _kernels.times_sorted(indptr, tpe, times):
        return None, True
    if not copy:
        return None, False
    return _time_order(indptr, tpe, times), True


def _time_order(indptr: np.ndarray, tpe: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The stable permutation of CSC positions by (destination, edge type, time). Integer
    times whose key fits in int64 sort as one combined key (a run-aware stable sort: the
    positions are already grouped by destination; 2.3 s instead of lexsort's 11 s for 31.5M
    edges here), other times by lexsort."""
    deg = np.diff(indptr)
    col = np.repeat(np.arange(deg.shape[0], dtype=np.int64), deg)
    if tpe.shape[0]:
        col = col * (int(tpe.max()) + 1) + tpe
    if times.dtype.kind in "iu" and times.shape[0]:
        lo = int(times.min())
        span = int(times.max()) - lo + 1
        if (int(col[-1]) + 1) * span < 2**62:
            return np.argsort(col * span + (times - lo), kind="stable")
    return np.lexsort((times, col))


def _node_times(graph: Graph, node_time: Any) -> np.ndarray:
    if isinstance(node_time, Mapping):
        parts = []
        off = graph.type_offsets()
        for t, name in enumerate(graph.node_types):
            if name not in node_time:
                raise ValueError(f"node_time has no times for node type {name!r}")
            parts.append(
                _time_array(f"node_time[{name!r}]", node_time[name], int(off[t + 1] - off[t]))
            )
        extra = set(node_time) - set(graph.node_types)
        if extra:
            raise ValueError(f"node_time names node type {sorted(extra)[0]!r}, not in the graph")
        if any(p.dtype.kind == "f" for p in parts):
            parts = [p.astype(np.float64) for p in parts]
        return np.ascontiguousarray(np.concatenate(parts))
    return _time_array("node_time", node_time, graph.num_nodes)


def _edge_times_csc(graph: Graph, edge_time: Any) -> np.ndarray:
    """Edge times in the graph's CSC order (the kernel reads them by CSC position); given by
    edge id (per edge type, by ids within the type, on a typed graph)."""
    eids = graph.edge_ids.numpy() if graph.edge_ids is not None else None
    if eids is not None and eids.size and int(eids.min()) < 0:
        raise ValueError("edge_time needs every edge to have an id (the graph has edge id -1)")
    if not isinstance(edge_time, Mapping):
        if graph.num_edge_types > 1:
            raise TypeError("edge_time on a typed graph is a dict {edge_type: times by edge id}")
        t = _time_array("edge_time", edge_time, graph.num_edges)
        if eids is not None and eids.size and int(eids.max()) >= t.shape[0]:
            raise ValueError(
                f"edge_time is indexed by edge id: the graph has edge id {int(eids.max())}, "
                f"edge_time holds {t.shape[0]} times (ids must be 0..{t.shape[0] - 1})"
            )
        return np.ascontiguousarray(t[eids]) if eids is not None else t
    tpe = graph.type_per_edge
    tpe = tpe.numpy().astype(np.int64) if tpe is not None else np.zeros(graph.num_edges, np.int64)
    counts = np.bincount(tpe, minlength=graph.num_edge_types)
    parts, offsets = [], [0]
    for e, et in enumerate(graph.edge_types):
        key = et if et in edge_time else et[1] if et[1] in edge_time else None
        if key is None:
            raise ValueError(f"edge_time has no times for edge type {et!r}")
        parts.append(_time_array(f"edge_time[{et!r}]", edge_time[key], int(counts[e])))
        offsets.append(offsets[-1] + int(counts[e]))
    if any(p.dtype.kind == "f" for p in parts):
        parts = [p.astype(np.float64) for p in parts]
    flat = np.concatenate(parts)
    local = eids if eids is not None else np.arange(graph.num_edges)
    past = local >= counts[tpe]
    if past.any():
        i = int(np.flatnonzero(past)[0])
        et = graph.edge_types[int(tpe[i])]
        raise ValueError(
            f"edge_time[{et!r}] is indexed by edge id within the type: the graph has id "
            f"{int(local[i])} there, for {int(counts[tpe[i]])} times"
        )
    return np.ascontiguousarray(flat[np.asarray(offsets[:-1], np.int64)[tpe] + local])


class FullNeighborSampler(NeighborSampler):
    """Every neighbour on each of ``num_hops`` hops (the exact k-hop in-neighbourhood).

    Example:
        >>> sub = FullNeighborSampler(g, 2).sample(torch.tensor([0]))
    """

    def __init__(self, graph: Graph, num_hops: int, **kwargs: Any) -> None:
        if isinstance(num_hops, bool) or not isinstance(num_hops, (int, np.integer)):
            raise TypeError(f"num_hops must be an int, got {num_hops!r}")
        if num_hops < 1:
            raise ValueError(f"num_hops must be >= 1, got {num_hops}")
        if kwargs.get("weighted"):
            raise ValueError("FullNeighborSampler takes every neighbour: weighted makes no sense")
        super().__init__(graph, [-1] * int(num_hops), **kwargs)
