"""A graph split over machines, and neighbour sampling across them with one machine's batches.

``DistGraph``: this rank's part (the in-edges of the nodes it owns, global ids) plus the
node -> part map. ``DistNeighborSampler`` samples hop by hop: the frontier is split by owner,
each owner draws its destinations' neighbours from its own CSC, keyed by the same (batch key,
hop, node, tree) counters as ``loaders._kernels.sample_hops``, and the requester relabels the
picks in frontier order. Hence a batch is bitwise the one ``NeighborSampler`` gives on the whole
graph for the same seeds and key, whatever the number of parts (tests check 1, 2 and 3).

One hop costs four all-to-alls (request counts, requests, reply counts, replies); the frontier
ids go out once and each owner answers with (source, edge id) pairs, int32 when the graph's ids
fit (DistDGL's remote sampling answers with int64 (source, destination, edge id) triples).
"""

from __future__ import annotations

import threading
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist

from gnnsys._checks import check_choice, check_ids
from gnnsys.distributed import _kernels as dk
from gnnsys.distributed.exchange import Exchange
from gnnsys.graph import DEFAULT_ETYPE, DEFAULT_NTYPE, EdgeType, Graph, type_layout
from gnnsys.loaders import _kernels
from gnnsys.loaders.base import KeyLike, SampledSubgraph, SampleKey, key_int
from gnnsys.loaders.neighbor import (
    _NO_TIME,
    SEMANTICS,
    _node_times,
    _PicklesWithoutMaps,
    _RelabelMaps,
    _time_array,
    check_seed_times,
    check_temporal_options,
    dense_map,
    fanout_matrix,
    time_sorted_runs,
    tree_times,
)

_NO_TREE = np.empty(0, np.int64)
_DENSE_LOCAL_MAX = 1 << 28  # nodes up to which a part keeps a dense global -> row map


class DistGraph:
    """This rank's part of a partitioned graph, typed or not.

    Args:
        owned: int64 [n] global ids this part owns, ascending.
        indptr: int64 [n+1] CSC over ``owned`` (row k = node ``owned[k]``).
        indices: int64 [e] global source id of each in-edge.
        edge_ids: int64 [e] global edge id of each in-edge (the whole graph's id).
        node_part: [N] the part of every global node id.
        part: this part's number; it is served by rank ``part`` of the exchange's group.
        edge_weight: optional float [e] weights of the in-edges.
        exchange: the ``Exchange`` (its group has one rank per part), or a list of them over
            the same ranks: lanes, so that several batches can be in flight at once (batch b
            uses lane ``b % lanes``; the Loader runs one worker per lane, each in order).
        in_memory: copy the CSC into RAM in the sampler's layout (default); False samples the
            given (e.g. memory-mapped) arrays in place.
        node_types, edge_types, node_type_offset, type_per_edge: a typed graph's typing, as a
            typed ``Graph``'s (names, ``(src, rel, dst)`` triples, [T+1] type offsets of the
            global ids, each in-edge's edge type, ascending within a column); all None (the
            default): one node and one edge type.

    Example:
        >>> g = DistGraph.open("parts/", exchange=Exchange())
        >>> g.num_nodes, g.num_parts, g.owned.shape
    """

    def __init__(
        self,
        *,
        owned: Any,
        indptr: Any,
        indices: Any,
        edge_ids: Any,
        node_part: Any,
        part: int,
        exchange: Exchange,
        edge_weight: Any = None,
        num_edges: Optional[int] = None,
        in_memory: bool = True,
        node_types: Optional[Sequence[str]] = None,
        edge_types: Optional[Sequence[Sequence[str]]] = None,
        node_type_offset: Any = None,
        type_per_edge: Any = None,
    ) -> None:
        self.owned = np.ascontiguousarray(owned, np.int64)
        self.indptr = np.ascontiguousarray(indptr, np.int64)
        self.indices = np.ascontiguousarray(indices, np.int64)
        self.edge_ids = np.ascontiguousarray(edge_ids, np.int64)
        self.in_memory = bool(in_memory)
        self.node_part = np.asarray(node_part)
        self.part = int(part)
        lanes = list(exchange) if isinstance(exchange, (list, tuple)) else [exchange]
        if not lanes or any(not isinstance(e, Exchange) for e in lanes):
            raise TypeError("exchange must be an Exchange or a non-empty list of them")
        if len({(e.rank, e.size) for e in lanes}) != 1:
            raise ValueError("every lane's Exchange must span the same ranks")
        self._exchanges = lanes
        self._lane = threading.local()
        exchange = lanes[0]
        self.num_parts = exchange.size
        self.num_nodes = int(self.node_part.shape[0])
        self.num_edges = num_edges
        n = self.owned.shape[0]
        if self.indptr.shape != (n + 1,) or int(self.indptr[-1]) != self.indices.shape[0]:
            raise ValueError(
                f"part {part}: indptr must have {n + 1} entries ending at {self.indices.shape[0]}"
            )
        if self.edge_ids.shape != self.indices.shape:
            raise ValueError(f"part {part}: edge_ids and indices differ in length")
        if exchange.rank != self.part:
            raise ValueError(
                f"part {part} must be served by rank {part} of the exchange's group, but this "
                f"process is rank {exchange.rank} (one rank per part, in part order)"
            )
        if int(self.node_part.max(initial=0)) >= self.num_parts:
            raise ValueError(
                f"the node -> part map names part {int(self.node_part.max())} but the group has "
                f"{self.num_parts} ranks (one per part)"
            )
        # ids on the wire: int32 when every node and edge id of every part fits (half the
        # bytes); the largest edge id is agreed on by all ranks (one small all-reduce)
        top = torch.tensor([int(self.edge_ids.max(initial=0)), self.num_nodes - 1])
        dist.all_reduce(top, op=dist.ReduceOp.MAX, group=exchange.group)
        self.wire_dtype = np.int32 if int(top.max()) < 2**31 else np.int64
        # The sampler's layout: fresh (huge-page backed) arrays, source and edge id packed in
        # one int64 when both fit (one random read per pick), as the loaders' CSC; a part kept
        # mapped (in_memory=False, for parts beyond RAM) is read in place.
        self.packed = in_memory and int(top.max()) < 2**31
        if self.packed:
            self.adj = (self.edge_ids << 32) | self.indices
            self.indptr = np.array(self.indptr)
        elif in_memory:
            self.adj = np.array(self.indices)
            self.indptr = np.array(self.indptr)
        else:
            self.adj = self.indices
        # global -> owned row: a dense map (4 bytes a node) up to 2^28 nodes, else a binary
        # search in ``owned``
        self._local_of: Optional[np.ndarray] = None
        if self.num_nodes <= _DENSE_LOCAL_MAX:
            self._local_of = np.full(self.num_nodes, -1, np.int32)
            self._local_of[self.owned] = np.arange(n, dtype=np.int32)
        self._set_types(node_types, edge_types, node_type_offset, type_per_edge, in_memory)
        self._ndata: dict = {}
        # find_edges' index (this part's edge ids sorted, and each one's position), built on
        # first use, once: the lanes' workers may ask together
        self._eid_index: Optional[Tuple[np.ndarray, np.ndarray]] = None
        self._eid_index_lock = threading.Lock()
        self.edge_weight = None
        if edge_weight is not None:
            self.edge_weight = np.ascontiguousarray(edge_weight, np.float64)

    # One node and one edge type, named as a homogeneous Graph's, unless ``_set_types`` gives
    # the partition's typing (class-level, so the fronts' checks read a bare instance too).
    is_hetero = False
    node_types: List[str] = [DEFAULT_NTYPE]
    edge_types: List[EdgeType] = [DEFAULT_ETYPE]
    node_type_offset: Optional[np.ndarray] = None
    type_per_edge: Optional[np.ndarray] = None

    def _set_types(
        self, node_types: Any, edge_types: Any, offsets: Any, type_per_edge: Any, in_memory: bool
    ) -> None:
        """The typing, named and laid out as a ``Graph``'s, so the loaders' fronts read a
        DistGraph as they read a Graph (one node and one edge type when untyped)."""
        given = [v is not None for v in (node_types, edge_types, offsets, type_per_edge)]
        if any(given) and not all(given):
            raise ValueError(
                "a typed DistGraph needs node_types, edge_types, node_type_offset and "
                "type_per_edge together"
            )
        self.is_hetero = all(given)
        if not self.is_hetero:
            self.node_type_offset = np.asarray([0, self.num_nodes], np.int64)
            tpe = np.empty(0, np.int8)
        else:
            self.node_types = [str(t) for t in node_types]
            self.edge_types = [(str(a), str(r), str(b)) for a, r, b in edge_types]
            self.node_type_offset = np.ascontiguousarray(offsets, np.int64)
            off = self.node_type_offset
            rises = off.shape == (len(self.node_types) + 1,) and (np.diff(off) >= 0).all()
            if not rises or off[0] != 0 or off[-1] != self.num_nodes:
                raise ValueError(
                    f"node_type_offset must rise from 0 to {self.num_nodes} in "
                    f"{len(self.node_types) + 1} entries, got {off.tolist()}"
                )
            bad = [e for e in self.edge_types if e[0] not in self.node_types
                   or e[2] not in self.node_types]  # fmt: skip
            if bad:
                raise ValueError(f"edge type {bad[0]} names a node type not in {self.node_types}")
            tpe = np.asarray(type_per_edge)
            if tpe.shape != self.indices.shape:
                raise ValueError(f"part {self.part}: type_per_edge and indices differ in length")
            if tpe.size and int(tpe.max()) >= len(self.edge_types):
                raise ValueError(
                    f"part {self.part}: type_per_edge names edge type {int(tpe.max())}, but "
                    f"there are {len(self.edge_types)}"
                )
            tpe = np.array(tpe) if in_memory else tpe
            self.type_per_edge = tpe
        # what the kernels read, as Graph.type_layout gives it
        self.layout = type_layout(self.node_types, self.edge_types, tpe, self.node_type_offset)

    @property
    def num_node_types(self) -> int:
        return len(self.node_types)

    @property
    def num_edge_types(self) -> int:
        return len(self.edge_types)

    node_type_id = Graph.node_type_id
    edge_type_id = Graph.edge_type_id
    num_nodes_dict = Graph.num_nodes_dict

    def type_offsets(self) -> torch.Tensor:
        """int64 [T+1]: nodes of type t hold the global ids ``offsets[t]..offsets[t+1]-1`` (as
        ``Graph.type_offsets``; one type holding every id when untyped)."""
        if self.node_type_offset is None:
            return torch.tensor([0, self.num_nodes], dtype=torch.int64)
        return torch.from_numpy(self.node_type_offset.copy())

    def owned_range(self, ntype: int) -> Tuple[int, int]:
        """[lo, hi): the run of ``owned`` (rows of this part) holding node type ``ntype``."""
        lo, hi = np.searchsorted(self.owned, self.node_type_offset[ntype : ntype + 2])
        return int(lo), int(hi)

    @classmethod
    def open(
        cls, path: Any, *, exchange: Any, part: Optional[int] = None, in_memory: bool = True
    ) -> DistGraph:
        """Open part ``part`` (default: this rank) of the partition folder ``path``, reading only
        that part's files (``gnnsys partition`` writes the folder). ``in_memory``: copy the
        part's CSC into RAM in the sampler's layout (False: sample the mapped files in place)."""
        from gnnsys.distributed.partition import PartitionBook, load_part

        book = PartitionBook.open(path)
        first = exchange[0] if isinstance(exchange, (list, tuple)) and exchange else exchange
        size, rank = first.size, first.rank
        if book.num_parts != size:
            raise ValueError(
                f"{path} holds {book.num_parts} parts but the group has {size} ranks "
                "(one rank per part)"
            )
        p = rank if part is None else int(part)
        lp = load_part(path, p)
        typing: dict = {}
        if book.is_typed:
            typing = {
                "node_types": book.meta["node_types"],
                "edge_types": book.meta["edge_types"],
                "node_type_offset": book.meta["node_type_offset"],
                "type_per_edge": lp.type_per_edge,
            }
        g = cls(
            owned=lp.owned,
            indptr=lp.indptr,
            indices=lp.indices,
            edge_ids=lp.edge_ids,
            node_part=book.node_part,
            part=p,
            exchange=exchange,
            edge_weight=getattr(lp, "edge_weight", None),
            num_edges=book.meta.get("num_edges"),
            in_memory=in_memory,
            **typing,
        )
        g.local = lp
        g.book = book
        from gnnsys.distributed.features import DistTable

        # (every rank opens its part, so these collective constructions line up)
        if book.is_typed:
            g._ndata = {key: DistTable(g, rows, key[1], ntype=key[0])
                        for key, rows in lp.tables.items()}  # fmt: skip
        else:
            g._ndata = {k: DistTable(g, getattr(lp, k), k) for k in ("x", "y")}
        return g

    @property
    def exchange(self) -> Exchange:
        """The Exchange of this thread's current lane (``use_lane``; lane 0 by default)."""
        return self._exchanges[getattr(self._lane, "i", 0)]

    @property
    def lanes(self) -> int:
        """How many batches may be in flight at once (one Exchange each)."""
        return len(self._exchanges)

    def use_lane(self, lane: int) -> None:
        """Make this thread's exchanges go through lane ``lane`` (until it picks another)."""
        self._lane.i = int(lane)

    def bytes_sent(self) -> dict:
        """Bytes this rank sent, by kind, summed over its lanes."""
        total: dict = {}
        for e in self._exchanges:
            for k, v in e.bytes_sent.items():
                total[k] = total.get(k, 0) + v
        return total

    @property
    def ndata(self) -> dict:
        """Node data as DGL's ``DistGraph.ndata``: name -> ``DistTable`` (``open`` puts the
        part's ``x`` and ``y`` there; assign more, e.g. ``g.ndata["feat"] = g.ndata["x"]``). A
        typed graph's tables are keyed ``(node type, name)`` and indexed by ids within the type
        (the loaders' typed table keys)."""
        return self._ndata

    def find_edges(self, eids: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        """(source, destination) global ids of the global edge ids ``eids`` (DGL's
        ``find_edges``). An edge lives with the part owning its destination, which no rank can
        tell from the id alone, so every rank's ids go to every part and the holder answers
        (``edge_lookup`` bytes: ~4x the ids per part). Collective, through the current lane;
        IndexError for an id no part holds.

        Example:
            >>> src, dst = g.find_edges(torch.tensor([0, 17]))
        """
        ids = check_ids("eids", eids, self.num_edges, exc=IndexError).numpy()
        ex = self.exchange
        m = ids.shape[0]
        wire = self.wire_dtype
        asked, got_counts = ex.alltoallv(
            torch.from_numpy(np.tile(ids.astype(wire), ex.size)),
            np.full(ex.size, m, np.int64),
            "edge_lookup",
        )
        q = asked.numpy().astype(np.int64)
        eid_order, eid_sorted = self._edge_id_index()
        at = np.searchsorted(eid_sorted, q)
        at_c = np.minimum(at, max(eid_sorted.shape[0] - 1, 0))
        hit = at < eid_sorted.shape[0]
        if eid_sorted.shape[0]:
            hit &= eid_sorted[at_c] == q
        reply = np.full((q.shape[0], 2), -1, np.int64)
        if hit.any():
            pos = eid_order[at_c[hit]]
            row = np.searchsorted(self.indptr, pos, side="right") - 1
            reply[hit, 0] = self.indices[pos]
            reply[hit, 1] = self.owned[row]
        got, _ = ex.alltoallv(
            torch.from_numpy(reply.astype(wire)), got_counts, "edge_lookup",
            recv_counts=np.full(ex.size, m, np.int64),
        )  # fmt: skip
        pairs = got.numpy().astype(np.int64).reshape(ex.size, m, 2).max(axis=0)
        if m and int(pairs[:, 1].min()) < 0:
            bad = int(ids[np.flatnonzero(pairs[:, 1] < 0)[0]])
            raise IndexError(f"edge id {bad} is in no part of the graph")
        return torch.from_numpy(pairs[:, 0].copy()), torch.from_numpy(pairs[:, 1].copy())

    def _edge_id_index(self) -> Tuple[np.ndarray, np.ndarray]:
        """(positions sorting this part's edge ids, the sorted ids), built once. Built under a
        lock and published as one value: two lanes' first ``find_edges`` used to race, one
        seeing the order set but the sorted ids still empty, and answer that an edge it holds
        was in no part."""
        index = self._eid_index
        if index is None:
            with self._eid_index_lock:
                if self._eid_index is None:
                    order = np.argsort(self.edge_ids, kind="stable")
                    self._eid_index = (order, self.edge_ids[order])
                index = self._eid_index
        return index

    def owner(self, ids: np.ndarray) -> np.ndarray:
        """The part (= rank) owning each global id."""
        return self.node_part[ids].astype(np.int64, copy=False)

    def local_rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each owned global id in this part's arrays; an id it does not own is an error
        (a request from a rank with another partitioning)."""
        if self._local_of is not None:
            rows, first_bad = dk.local_rows_of(self._local_of, ids)
        else:
            rows = np.searchsorted(self.owned, ids)
            last = max(len(self.owned) - 1, 0)
            bad = (rows >= self.owned.shape[0]) | (self.owned[np.minimum(rows, last)] != ids)
            first_bad = int(np.flatnonzero(bad)[0]) if bad.any() else -1
        if first_bad >= 0:
            raise ValueError(
                f"part {self.part} was asked for node {int(ids[first_bad])}, which it does not "
                "own: the ranks hold parts of different partitionings"
            )
        return rows


class DistNeighborSampler(_PicklesWithoutMaps):
    """``NeighborSampler`` over a ``DistGraph``: the same batches, sampled across machines.

    Args mirror ``NeighborSampler`` (directional subgraphs): ``fanouts`` per hop (-1: all; on
    a typed graph also a dict ``{edge_type: [per hop]}`` or a list of per-hop dicts, as
    ``fanout_matrix`` reads them), ``replace``, ``weighted`` (the parts' edge weights),
    ``semantics`` ("pyg" or "dgl"), ``disjoint``; ``labor=True`` draws LABOR-0
    (``LaborSampler`` with ``layer_dependency``).

    ``sample`` is a collective: every rank of the graph's group must call it the same number of
    times in the same order, per lane (``collective = True``: the Loader runs one worker per
    lane, each taking its lane's batches in order). With lanes, keys must be ``SampleKey``s.

    Example:
        >>> s = DistNeighborSampler(DistGraph.open("parts/", exchange=ex), [15, 10])
        >>> sub = s.sample(torch.tensor([0, 7]), SampleKey(seed=0, epoch=0, batch=3))
    """

    collective = True
    temporal = False
    _temporal_mode = 0

    @property
    def lanes(self) -> int:
        """Batches the Loader may run at once (the graph's lanes), one worker each."""
        return self.graph.lanes

    def __init__(
        self,
        graph: DistGraph,
        fanouts: Any,
        *,
        replace: bool = False,
        weighted: bool = False,
        semantics: str = "pyg",
        disjoint: bool = False,
        labor: bool = False,
        layer_dependency: bool = False,
    ) -> None:
        if not isinstance(graph, DistGraph):
            raise TypeError(f"graph must be a DistGraph, got {type(graph).__name__}")
        check_choice("semantics", semantics, SEMANTICS)
        self.graph = graph
        self._maps = _RelabelMaps()  # per-thread dense relabel maps, as NeighborSampler's
        # [hops, edge types], as NeighborSampler's (a list applies to every edge type)
        self.fanouts = fanout_matrix(fanouts, graph, allow_empty=True)
        self.replace = bool(replace)
        self.weighted = bool(weighted)
        self.semantics = semantics
        self.disjoint = bool(disjoint)
        self.labor = bool(labor)
        self.layer_dependency = bool(layer_dependency)
        if self.disjoint and semantics == "dgl":
            raise ValueError("disjoint=True needs semantics='pyg' (DGL blocks share nodes)")
        if self.labor and (self.weighted or self.replace):
            raise ValueError("labor=True draws LABOR-0: weighted and replace do not apply")
        self._weights = np.empty(0, np.float64)
        self._cumw = np.empty(0, np.float64)
        if self.weighted:
            if graph.edge_weight is None:
                raise ValueError("weighted=True needs a partition with edge weights")
            self._weights = graph.edge_weight
            if self.replace:
                self._cumw = _kernels.column_cumsum(graph.indptr, self._weights, graph.layout[0])

    @property
    def num_hops(self) -> int:
        return int(self.fanouts.shape[0])

    @property
    def num_inputs(self) -> int:
        return self.graph.num_nodes

    def __repr__(self) -> str:
        g = self.graph
        fan: Any = self.fanouts[:, 0].tolist()
        if g.is_hetero:
            fan = {et: self.fanouts[:, e].tolist() for e, et in enumerate(g.edge_types)}
        return (
            f"DistNeighborSampler(fanouts={fan}, replace={self.replace}, "
            f"weighted={self.weighted}, semantics={self.semantics!r}, disjoint={self.disjoint}, "
            f"part={g.part}/{g.num_parts})"
        )

    def sample(self, seeds: torch.Tensor, generator: KeyLike = None) -> SampledSubgraph:
        """Sample around ``seeds`` (global ids; any rank may hold any seed), keyed by
        ``generator``. Collective: see the class docstring."""
        seeds_t = check_ids("seeds", seeds, self.graph.num_nodes, allow_empty=False)
        self.use_key_lane(generator)
        return self.sample_checked(seeds_t, key_int(generator))

    def use_key_lane(self, generator: KeyLike) -> None:
        """Send this thread's exchanges (sampling and feature fetches) through batch b's lane,
        ``b % lanes``; callers that sample through ``sample_checked`` (e.g. ``LinkSampler``)
        call it first with the batch's ``SampleKey``."""
        g = self.graph
        if g.lanes > 1:
            if not isinstance(generator, SampleKey):
                raise TypeError(
                    "a DistGraph with lanes needs SampleKey keys (lane = batch % lanes)"
                )
            g.use_lane(int(generator.batch) % g.lanes)

    def sample_checked(
        self,
        seeds: torch.Tensor,
        key: int,
        seed_tree: Optional[torch.Tensor] = None,
        seed_time: Optional[np.ndarray] = None,
    ) -> SampledSubgraph:
        """``sample`` without validation or lane choice, as ``NeighborSampler.sample_checked``:
        ``seeds`` checked int64 CPU ids; ``seed_tree`` (disjoint only) each seed's tree,
        default ``arange(len(seeds))``. Collective.

        Hop by hop as ``_kernels.sample_hops``: the frontier's (destination, edge type)
        segments in the kernel's output order (edge type, then destination id within its type),
        drawn by their owners, relabelled here in that order."""
        if seed_time is not None and not self.temporal:
            raise ValueError("seed_time needs a temporal sampler (DistTemporalNeighborSampler)")
        g = self.graph
        _, offsets, etype_src, etype_dst, _, _ = g.layout
        typed = offsets.shape[0] > 2
        seeds_np = seeds.numpy()
        tree = _NO_TREE
        if self.disjoint:
            tree = np.arange(seeds_np.shape[0], dtype=np.int64)
            if seed_tree is not None:
                tree = np.ascontiguousarray(seed_tree.numpy(), dtype=np.int64)
        mapv, stamp = dense_map(self._maps, g.num_nodes, self.disjoint)
        nodes, ntype, loc, trees, known, hkeys, hvals = dk.start_relabel(
            seeds_np, tree, self.disjoint, g.num_nodes, offsets, mapv, stamp
        )
        hops, k = self.fanouts.shape
        layered = self.semantics == "dgl"
        times = self._all_tree_times(seeds_np, tree, seed_time) if self.temporal else None
        type_counts = np.zeros((hops + 1, known.shape[0]), np.int64)
        type_counts[0] = known
        segs: List[Any] = [None] * (k * hops)  # (rows, edge ids, offsets) per (etype, hop)
        dst_start = np.zeros(k * hops, np.int64)
        n, prev_lo = seeds_np.shape[0], 0
        prev_known = np.zeros_like(known)
        for h in range(hops):
            flo = 0 if layered else prev_lo
            dst_lo = np.zeros_like(known) if layered else prev_known
            before, n_before = known.copy(), n
            fan = np.ascontiguousarray(self.fanouts[h])
            ekeys = _kernels._etype_keys(np.uint64(_kernels.hop_key(key, h)), k)
            lkeys = ekeys
            if self.layer_dependency:
                lkeys = _kernels._etype_keys(np.uint64(_kernels.hop_key(key, 0)), k)
            # each edge type's destinations: the frontier nodes of its destination type, in id
            # order within the type (= discovery order)
            ask = [e for e in range(k) if fan[e] != 0]  # a fanout 0 draws nothing: not asked
            if typed:
                per_e = [flo + np.flatnonzero(ntype[flo:n] == etype_dst[e]) for e in range(k)]
                at = np.concatenate([per_e[e] for e in ask]) if ask else _NO_TREE
                seg_e = np.repeat(np.asarray(ask, np.int64), [len(per_e[e]) for e in ask])
                dst, seg_tree = nodes[at], trees[at] if self.disjoint else _NO_TREE
            else:  # one edge type: the frontier itself, in place
                per_e = [range(flo, n)]
                seg_e = _NO_TREE
                dst = nodes[flo:n] if ask else _NO_TREE
                seg_tree = trees[flo:n] if self.disjoint and ask else _NO_TREE
            off, src, eid = self._hop(dst, seg_tree, seg_e if k > 1 else _NO_TREE, fan, ekeys,
                                      lkeys, times)  # fmt: skip
            nodes, ntype, loc, trees, n, hkeys, hvals, rows = dk.relabel_hop(
                nodes, ntype, loc, trees, n, known, hkeys, hvals, g.num_nodes, src, off,
                seg_tree, etype_src[seg_e] if typed else _NO_TREE, self.disjoint, mapv, stamp,
            )  # fmt: skip
            a = 0
            for e in range(k):
                m = len(per_e[e])
                sg = e * hops + h
                dst_start[sg] = dst_lo[etype_dst[e]]
                if fan[e] == 0:
                    segs[sg] = (_NO_TREE, _NO_TREE, np.zeros(m + 1, np.int64))
                    continue
                o = off[a : a + m + 1]
                lo, hi = int(o[0]), int(o[-1])
                segs[sg] = (rows[lo:hi], eid[lo:hi], o - lo)
                a += m
            type_counts[h + 1] = known - before
            prev_known, prev_lo = before, n_before
        if typed:  # nodes grouped by type, each type in discovery order
            start = np.concatenate(([0], np.cumsum(known)))
            where = start[ntype[:n]] + loc[:n]
            grouped = np.empty(n, np.int64)
            grouped[where] = nodes[:n]
            if self.disjoint:
                gtree = np.empty(n, np.int64)
                gtree[where] = trees[:n]
                trees = gtree
            nodes = grouped
        return _subgraph(g, nodes[:n], trees[:n] if self.disjoint else None, segs, dst_start,
                         type_counts, hops, layered)  # fmt: skip

    def _hop(
        self,
        dst: np.ndarray,
        dtree: np.ndarray,
        detype: np.ndarray,
        fan: np.ndarray,
        ekeys: np.ndarray,
        lkeys: np.ndarray,
        times: Optional[Tuple[np.ndarray, np.ndarray]] = None,
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One hop across the group: ask each owner for its (destination, edge type)
        segments' picks (``detype`` empty: one edge type), answer the others' requests, and
        return the picks in request order. ``times`` (temporal): every rank's tree times and
        where each rank's start (``_all_tree_times``)."""
        g = self.graph
        ex = g.exchange
        wire = g.wire_dtype
        typed = g.num_edge_types > 1  # (the same on every rank)
        cols = 1 + int(self.disjoint) + int(typed)
        req = np.empty((dst.shape[0], cols), wire)
        order, counts = dk.route_requests(
            dst, g.node_part, dtree if self.disjoint else _NO_TREE,
            detype if typed else _NO_TREE, ex.size, req,
        )  # fmt: skip
        got, got_counts = ex.alltoallv(torch.from_numpy(req), counts, "sample_request")
        asked = got.numpy()
        adst = asked[:, 0].astype(np.int64)
        atree = asked[:, 1].astype(np.int64) if self.disjoint else _NO_TREE
        aetype = asked[:, cols - 1].astype(np.int64) if typed else _NO_TREE
        adj, edge_ids, node_time, edge_time = g.adj, g.edge_ids, _NO_TIME, _NO_TIME
        bounds = _NO_TIME
        if times is not None:  # each request bounded by its tree's time on the asking rank
            all_times, starts = times
            asker = np.repeat(np.arange(ex.size, dtype=np.int64), got_counts)
            bounds = np.ascontiguousarray(all_times[starts[asker] + atree])
            adj, edge_ids = self._adj, self._edge_ids
            node_time, edge_time = self._node_time, self._edge_time
        off, src, eid = dk.draw_owned_for(self.weighted, self.labor, times is not None)(
            g.indptr, adj, edge_ids, g.packed, self._weights, self._cumw, g.layout[0],
            g.local_rows(adst), adst, atree, aetype, fan, self.replace, self.weighted, ekeys,
            self.labor, lkeys, node_time, edge_time, bounds, self._temporal_mode,
        )  # fmt: skip
        width = _padded_width(fan, self.labor)
        if width is not None:
            # One reply row per request (count, then up to ``width`` picks): the requester
            # knows the reply's size, so no counts exchange.
            reply = np.empty((adst.shape[0], 1 + 2 * width), wire)
            dk.pad_reply(off, src, eid, reply)
            got_reply, _ = ex.alltoallv(torch.from_numpy(reply), got_counts, "sample_reply",
                                        recv_counts=counts)  # fmt: skip
            return dk.unpad_regroup(order, got_reply.numpy())
        # Unbounded picks (fanout -1, LABOR): per request its pick count, then the picks.
        per_req = np.diff(off).astype(np.int32)  # a pick count fits: at most a degree
        reply_counts, _ = ex.alltoallv(
            torch.from_numpy(per_req), got_counts, "sample_reply", recv_counts=counts
        )
        ends = np.cumsum(got_counts)
        picks_per_rank = np.diff(off[np.concatenate(([0], ends))])
        mine = reply_counts.numpy().astype(np.int64)
        picks = np.stack([src.astype(wire), eid.astype(wire)], axis=1)
        got_picks, _ = ex.alltoallv(
            torch.from_numpy(picks),
            picks_per_rank,
            "sample_reply",
            recv_counts=_sums_per_rank(mine, counts),
        )
        gp = got_picks.numpy()
        return dk.regroup(order, mine, gp[:, 0].astype(np.int64), gp[:, 1].astype(np.int64))


class DistTemporalNeighborSampler(DistNeighborSampler):
    """``TemporalNeighborSampler`` over a ``DistGraph``: the same batches, sampled across
    machines (every seed its own subgraph; a node of seed s's subgraph uses only in-edges not
    newer than s's time).

    Args: ``fanouts``, ``replace`` as ``DistNeighborSampler`` (PyG semantics, disjoint), and
        exactly one of
        node_time: a time per global node id (a dict per node type on a typed graph), on
            every rank: an edge's time is its source's, which another part may own.
        edge_time: a time per edge by the graph's edge ids (a dict per edge type, ids within
            the type, when typed); every rank reads its part's edges' times from it.
        temporal_strategy: ``"uniform"`` or ``"last"``, as ``TemporalNeighborSampler``.
    Each part's in-edges are held in time order (a copy, as ``TemporalNeighborSampler``'s
    sorted copy, unless already in order; a part opened with ``in_memory=False`` is scanned
    instead, as one machine's mapped graph), so the draws are one machine's. A batch's tree
    times travel to every rank once (one small exchange), so owners bound each request by
    its tree's time. ``sample(seeds, key, seed_time=...)`` as ``TemporalNeighborSampler``.

    Example:
        >>> s = DistTemporalNeighborSampler(dist_graph, [10, 5], node_time=year)
        >>> sub = s.sample(seeds, SampleKey(seed=0, batch=3), seed_time=year[seeds])
    """

    temporal = True

    def __init__(
        self,
        graph: DistGraph,
        fanouts: Any,
        *,
        node_time: Any = None,
        edge_time: Any = None,
        temporal_strategy: str = "uniform",
        replace: bool = False,
        semantics: str = "pyg",
        disjoint: bool = True,
    ) -> None:
        check_temporal_options(node_time, edge_time, temporal_strategy, semantics, disjoint)
        super().__init__(graph, fanouts, replace=replace, disjoint=True)
        g = self.graph
        tpe = g.layout[0]
        # A part sampled in place from its files (``in_memory=False``: bigger than RAM) is not
        # copied, as one machine's mapped graph is not: unsorted runs are then scanned
        copy = g.in_memory
        self._node_time = _NO_TIME
        self._adj, self._edge_ids = g.adj, g.edge_ids
        ascending = False
        if node_time is not None:
            self._node_time = _node_times(g, node_time)
            self._edge_time = self._node_time[:0]  # (scan: the kernel reads sources' times)
            if copy:
                src = g.adj & np.int64(0xFFFFFFFF) if g.packed else g.adj
                self._edge_time = np.ascontiguousarray(self._node_time[src])
        else:
            self._edge_time = _part_edge_times(g, edge_time)
        if self._edge_time.shape[0]:
            perm, ascending = time_sorted_runs(g.indptr, tpe, self._edge_time, copy)
            if perm is not None:  # the runs in time order: a copy, as one machine's
                self._adj = np.ascontiguousarray(g.adj[perm])
                self._edge_ids = np.ascontiguousarray(g.edge_ids[perm])
                self._edge_time = np.ascontiguousarray(self._edge_time[perm])
        last = _kernels.TEMPORAL_LAST if temporal_strategy == "last" else 0
        self._temporal_mode = last | (_kernels.TEMPORAL_SORTED if ascending else 0)
        self.temporal_strategy = temporal_strategy

    @property
    def time_dtype(self) -> np.dtype:
        return (self._edge_time if self._edge_time.shape[0] else self._node_time).dtype

    def check_seed_time(self, seed_time: Any, count: int) -> Optional[np.ndarray]:
        """``seed_time`` as the sampler takes it (None: the seeds' node times)."""
        return check_seed_times(seed_time, count, self.time_dtype, self._node_time.shape[0] > 0)

    def sample(
        self, seeds: torch.Tensor, generator: KeyLike = None, seed_time: Any = None
    ) -> SampledSubgraph:
        """Sample around ``seeds``, each bounded by its ``seed_time`` (default: its node time).
        Collective."""
        seeds_t = check_ids("seeds", seeds, self.graph.num_nodes, allow_empty=False)
        self.use_key_lane(generator)
        times = self.check_seed_time(seed_time, seeds_t.numel())
        return self.sample_checked(seeds_t, key_int(generator), None, times)

    def _all_tree_times(
        self, seeds: np.ndarray, tree: np.ndarray, seed_time: Optional[np.ndarray]
    ) -> Tuple[np.ndarray, np.ndarray]:
        """(every rank's tree times, concatenated in rank order; where each rank's start):
        one exchange, so an owner can bound each request by its tree's time."""
        mine = tree_times(seeds, tree, seed_time, self._node_time).astype(self.time_dtype)
        ex = self.graph.exchange
        send = torch.from_numpy(np.tile(mine, ex.size))
        got, counts = ex.alltoallv(send, np.full(ex.size, mine.shape[0], np.int64), "seed_time")
        starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        return np.array(got.numpy()), starts  # (a copy: the exchange's buffer is pooled)

    def __repr__(self) -> str:
        level = "node" if self._node_time.shape[0] else "edge"
        return super().__repr__().replace(
            "DistNeighborSampler(", f"DistTemporalNeighborSampler(time={level}, "
            f"temporal_strategy={self.temporal_strategy!r}, ", 1
        )  # fmt: skip


def _part_edge_times(g: DistGraph, edge_time: Any) -> np.ndarray:
    """The times of this part's in-edges (its CSC order) from ``edge_time``: an array by the
    graph's edge ids, or a dict per edge type by ids within the type (typed)."""
    ids = g.edge_ids
    if not isinstance(edge_time, Mapping):
        if g.num_edge_types > 1:
            raise TypeError("edge_time on a typed graph is a dict {edge_type: times by edge id}")
        count = len(edge_time) if hasattr(edge_time, "__len__") else -1
        t = _time_array("edge_time", edge_time, count)
        if ids.size and int(ids.max()) >= t.shape[0]:
            raise ValueError(
                f"edge_time is indexed by edge id: part {g.part} has edge id {int(ids.max())}, "
                f"edge_time holds {t.shape[0]} times"
            )
        return np.ascontiguousarray(t[ids])
    tpe = g.layout[0].astype(np.int64) if g.layout[0].shape[0] else np.zeros(ids.shape[0], np.int64)
    given = []
    for et in g.edge_types:
        key = et if et in edge_time else et[1] if et[1] in edge_time else None
        if key is None:
            raise ValueError(f"edge_time has no times for edge type {et!r}")
        v = edge_time[key]
        given.append(_time_array(f"edge_time[{et!r}]", v, len(v) if hasattr(v, "__len__") else -1))
    dtype = np.float64 if any(a.dtype.kind == "f" for a in given) else np.int64
    out = np.empty(ids.shape[0], dtype)
    for e, arr in enumerate(given):
        sel = np.flatnonzero(tpe == e)
        if sel.size and int(ids[sel].max()) >= arr.shape[0]:
            raise ValueError(
                f"edge_time[{g.edge_types[e]!r}] is indexed by edge id within the type: part "
                f"{g.part} has id {int(ids[sel].max())} there, for {arr.shape[0]} times"
            )
        out[sel] = arr[ids[sel]]
    return out


# Widest fanout whose replies travel padded (one row per request, ``1 + 2 * fanout`` ids): a
# wider one would send more padding than the counts exchange it saves costs.
PADDED_REPLY_MAX_FANOUT = 32


def _padded_width(fan: np.ndarray, labor: bool) -> Optional[int]:
    """The padded reply width of a hop with fanouts ``fan`` (per edge type), or None when a
    destination's picks are not bounded by a small fanout (-1: all; LABOR keeps a random number
    up to the degree)."""
    asked = fan[fan != 0]
    if labor or asked.shape[0] == 0 or int(asked.min()) < 0:
        return None
    width = int(asked.max())
    return width if width <= PADDED_REPLY_MAX_FANOUT else None


def node_split(ids: Any, node_part: np.ndarray, num_parts: int, part: int) -> torch.Tensor:
    """Part ``part``'s share of ``ids`` (e.g. the training nodes), owned nodes first: every part
    gets ``len(ids) // num_parts`` ids, first its own (in ``ids`` order), then the surplus of
    the parts that own more than their share, dealt out in part order. Every part gets the
    same count (collective loaders need equal batch counts); the ``len(ids) % num_parts`` ids
    left over are dropped. DistDGL's ``node_split(force_even=True)`` plays this role.

    Example:
        >>> seeds = node_split(train_idx, book.node_part, book.num_parts, rank)
    """
    ids_np = torch.as_tensor(ids).numpy().astype(np.int64, copy=False)
    owner = np.asarray(node_part)[ids_np].astype(np.int64)
    return torch.from_numpy(ids_np[_even_share(owner, num_parts, part)])


def edge_split(
    edge_label_index: Any, node_part: np.ndarray, num_parts: int, part: int
) -> torch.Tensor:
    """Part ``part``'s share of the supervision edges ``edge_label_index`` ([2, M] global ids),
    as positions into it: ``M // num_parts`` each, first the edges whose destination the part
    owns (it holds their in-edge), then the others' surplus, as ``node_split``. DistDGL's
    ``edge_split(force_even=True)`` plays this role.

    Example:
        >>> pos = edge_split(eli, book.node_part, book.num_parts, rank)
        >>> loader = LinkNeighborLoader(stores, [10, 5], edge_label_index=eli[:, pos])
    """
    eli = torch.as_tensor(edge_label_index)
    if eli.dim() != 2 or eli.shape[0] != 2:
        raise ValueError(f"edge_label_index must have shape [2, M], got {tuple(eli.shape)}")
    dst = eli[1].numpy().astype(np.int64, copy=False)
    owner = np.asarray(node_part)[dst].astype(np.int64)
    return torch.from_numpy(_even_share(owner, num_parts, part))


def _even_share(owner: np.ndarray, num_parts: int, part: int) -> np.ndarray:
    """Positions of part ``part``'s ``len(owner) // num_parts`` items: its own (``owner ==
    part``, in order) up to its share, then the surplus of the others, dealt out in part
    order."""
    per = owner.shape[0] // num_parts
    positions = np.arange(owner.shape[0], dtype=np.int64)
    mine: List[np.ndarray] = []
    surplus: List[np.ndarray] = []
    for p in range(num_parts):
        own = positions[owner == p]
        mine.append(own[:per])
        surplus.append(own[per:])
    pool = np.concatenate(surplus) if surplus else np.empty(0, np.int64)
    start = sum(per - m.shape[0] for m in mine[:part])
    need = per - mine[part].shape[0]
    return np.concatenate([mine[part], pool[start : start + need]])


def _sums_per_rank(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum of ``values`` over each rank's run of ``counts`` entries."""
    ends = np.cumsum(counts)
    c = np.concatenate(([0], np.cumsum(values)))
    return c[ends] - c[np.concatenate(([0], ends[:-1]))]


def _subgraph(
    graph: DistGraph,
    nodes: np.ndarray,
    tree: Optional[np.ndarray],
    segs: List[Any],
    dst_start: np.ndarray,
    type_counts: np.ndarray,
    hops: int,
    layered: bool,
) -> SampledSubgraph:
    """The ``SampledSubgraph`` ``NeighborSampler`` builds from its kernel's output: ``segs``
    holds (rows, edge ids, CSC offsets) per (edge type, hop), edge type major."""
    rows = [s[0] for s in segs]
    offsets = [s[2] for s in segs]
    sizes = np.asarray([r.shape[0] for r in rows], np.int64)
    edge_ptr = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    iptr = np.concatenate(([0], np.cumsum([o.shape[0] for o in offsets]))).astype(np.int64)
    hop_indptr = np.concatenate(offsets).astype(np.int64) if segs else np.empty(0, np.int64)
    ei = torch.from_numpy(dk.coo_edges(rows, np.asarray(dst_start, np.int64), hop_indptr, iptr))
    nse = sizes.reshape(-1, hops).sum(axis=0) if hops else sizes
    typed = graph.is_hetero
    off = None
    if typed:
        off = torch.zeros(type_counts.shape[1] + 1, dtype=torch.int64)
        torch.cumsum(torch.from_numpy(type_counts.sum(axis=0)), 0, out=off[1:])
    return SampledSubgraph(
        nodes=torch.from_numpy(np.ascontiguousarray(nodes)),
        row=ei[0],
        col=ei[1],
        num_sampled_nodes=type_counts.sum(axis=1).tolist(),
        num_sampled_edges=nse.tolist(),
        edge_ids=torch.from_numpy(
            np.concatenate([s[1] for s in segs]) if segs else np.empty(0, np.int64)
        ),
        layered=layered,
        batch=torch.from_numpy(np.ascontiguousarray(tree)) if tree is not None else None,
        node_offsets=off,
        type_num_sampled_nodes=torch.from_numpy(type_counts) if typed else None,
        edge_ptr=torch.from_numpy(edge_ptr),
        hop_indptr=torch.from_numpy(hop_indptr),
        hop_indptr_ptr=torch.from_numpy(iptr),
        hop_dst_start=torch.from_numpy(np.asarray(dst_start, np.int64)),
        node_types=graph.node_types if typed else None,
        edge_types=graph.edge_types if typed else None,
    )
