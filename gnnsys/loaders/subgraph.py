"""Whole-subgraph samplers: Cluster-GCN, GraphSAINT (node, edge, random walk) and ShaDow-KHop.

Each turns a batch of seeds into the induced subgraph of a node set, a ``SampledSubgraph`` the
one ``Loader`` drives (same fetch stage, device copy and collate as the neighbour samplers):

* ``ClusterSampler``: seeds are part ids of a METIS partition (``pipeline_parallel.partition``);
  the nodes are the union of the chosen parts, each part's nodes in ascending id order.
* ``SaintSampler``: seeds are not read (one subgraph per batch); nodes are drawn by node, by
  edge or by random walks, counter-based from the batch's ``SampleKey``, then sorted.
  ``saint_norm`` gives PyG's ``node_norm`` / ``edge_norm`` from pre-sampling.
* ``ShaDowSampler``: the sampled k-hop in-neighbourhood of the seeds (``NeighborSampler``), then
  its induced subgraph: one per seed (``disjoint``, PyG: nodes grouped by seed, root first) or
  one of the union (DGL: the seeds first).

Induced edges come from ``_kernels.induced_edges`` (the kernel of ``NeighborSampler``'s
``subgraph_type="induced"``); the per-seed variant and the random walks are the two numba
kernels here. Results depend only on (seeds, SampleKey), never on the number of threads.
Homogeneous graphs only, but for ``ShaDowSampler(disjoint=False)`` (DGL's ShaDow), which
also samples typed graphs (per-type nodes, per-edge-type induced edges); the others raise
NotImplementedError on a typed graph.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from numba import njit, prange

from gnnsys._checks import check_choice, check_ids, check_index
from gnnsys._numba import PRANGE_ONLY, serial_twin
from gnnsys._tokens import tensors_token, token_matches
from gnnsys.graph import Graph
from gnnsys.loaders import _kernels
from gnnsys.loaders._kernels import (
    _GOLDEN,
    _below,
    _bit,
    _edge_at,
    _hash_slot,
    _lookup,
    _outside,
    _stream,
    hop_key,
    lowest_position,
    mark_position,
    position_words,
)
from gnnsys.loaders.base import KeyLike, SampledSubgraph, SampleKey, key_int
from gnnsys.loaders.neighbor import (
    DENSE_MAP_MAX_NODES,
    NeighborSampler,
    _PicklesWithoutMaps,
    _RelabelMaps,
    prepared_adjacency,
)
from gnnsys.ops._sparse_cpu import transpose

SAINT_MODES = ("node", "edge", "walk")
ROW_ORDER_MIN_EDGES = 1 << 20  # ClusterSampler(edge_order="csr"): see _edges_in_order
_SALT_NODE, _SALT_EDGE, _SALT_WALK = 0x5A1, 0x5A2, 0x5A3  # streams of SaintSampler's draws
_NO_HASH = np.full(1, -1, np.int64)


# ---------------------------------------------------------------------- kernels
@njit(nogil=True, cache=True)
def hash_map(keys, values):
    """An open-addressing table ``keys[i] -> values[i]`` (keys unique and >= 0), in the layout
    ``_kernels._lookup`` reads."""
    cap = 16
    while cap < 2 * max(keys.shape[0], 1):
        cap <<= 1
    hkeys = np.full(cap, -1, np.int64)
    hvals = np.empty(cap, np.int64)
    for i in range(keys.shape[0]):
        s = _hash_slot(hkeys, keys[i])
        hkeys[s] = keys[i]
        hvals[s] = values[i]
    return hkeys, hvals


@njit(nogil=True, parallel=PRANGE_ONLY, cache=True)
def disjoint_induced_edges(indptr, adj, edge_ids, packed, nodes, tree, num_nodes):
    """Per tree, every graph edge between two nodes of that tree (a node may sit in several
    trees). ``nodes`` grouped by tree (``tree`` non-decreasing). Returns (edge_index [2, E] of
    positions in ``nodes``, edge ids [E]), edges ordered by destination position, then CSC
    order.

    A tree is small (PyG's ShaDow: 1 + k + k^2 nodes) and its nodes' in-lists long, so nearly
    every scanned edge is rejected: each tree gets a Bloom-style bitmap of its nodes (64 bits a
    node, L1-resident) that rejects them without touching the (tree, node) hash table; a
    bitmap hit is checked in the table, and kept positions are marked for one second visit.
    """
    n = nodes.shape[0]
    keys = np.empty(n, np.int64)  # (loops, not array expressions: see _kernels.sample_hops)
    active = np.empty(n, np.bool_)
    for i in range(n):
        keys[i] = tree[i] * num_nodes + nodes[i]
        active[i] = True
    hkeys, hvals = hash_map(keys, np.arange(n, dtype=np.int64))
    runs = np.zeros(n + 1, np.int64)
    num_trees = 0
    for i in range(n):
        if i == 0 or tree[i] != tree[i - 1]:
            runs[num_trees] = i
            num_trees += 1
    runs[num_trees] = n
    words = position_words(indptr, nodes, active)
    kept = np.zeros(words[n], np.uint64)
    counts = np.zeros(n + 1, np.int64)
    for t in prange(num_trees):
        lo, hi = runs[t], runs[t + 1]
        lg = 12
        while (1 << lg) < 64 * (hi - lo):
            lg += 1
        shift = np.uint64(64 - lg)
        member = np.zeros(1 << (lg - 6), np.uint64)
        for i in range(lo, hi):
            mark_position(member, 0, np.int64((np.uint64(nodes[i]) * _GOLDEN) >> shift))
        base = tree[lo] * num_nodes
        for i in range(lo, hi):
            first = indptr[nodes[i]]
            for e in range(first, indptr[nodes[i] + 1]):
                src, _ = _edge_at(adj, edge_ids, packed, e)
                if _outside(member, np.int64((np.uint64(src) * _GOLDEN) >> shift)):
                    continue
                if hkeys[_hash_slot(hkeys, base + src)] != base + src:
                    continue
                counts[i + 1] += 1
                mark_position(kept, words[i], e - first)
    for i in range(n):
        counts[i + 1] += counts[i]
    out = np.empty((2, counts[n]), np.int64)
    eid = np.empty(counts[n], np.int64)
    for i in prange(n):
        base = tree[i] * num_nodes
        first = indptr[nodes[i]]
        j = counts[i]
        for w in range(words[i], words[i + 1]):
            x = kept[w]
            while x != 0:
                src, ei = _edge_at(adj, edge_ids, packed, lowest_position(first, w, words[i], x))
                x &= x - np.uint64(1)
                out[0, j] = hvals[_hash_slot(hkeys, base + src)]
                out[1, j] = i
                eid[j] = ei
                j += 1
    return out, eid


disjoint_induced_edges_serial = serial_twin(disjoint_induced_edges, "disjoint_induced_edges_serial")


@njit(nogil=True, cache=True, inline="always")
def _sort_segment(keys, vals, lo, hi):
    # Stable sort of keys[lo:hi] (vals moved with them): insertion for the short rows most are,
    # a merge sort for hubs.
    if hi - lo <= 32:
        for a in range(lo + 1, hi):
            k, v = keys[a], vals[a]
            b = a - 1
            while b >= lo and keys[b] > k:
                keys[b + 1] = keys[b]
                vals[b + 1] = vals[b]
                b -= 1
            keys[b + 1] = k
            vals[b + 1] = v
        return
    order = np.argsort(keys[lo:hi], kind="mergesort")
    ks, vs = keys[lo:hi][order], vals[lo:hi][order]
    keys[lo:hi] = ks
    vals[lo:hi] = vs


@njit(nogil=True, parallel=PRANGE_ONLY, cache=True)
def induced_edges_by_row(
    out_indptr, out_dst, out_pos, adj, edge_ids, packed, nodes, mapv, stamp, hkeys, hvals
):
    """Every graph edge between two nodes of ``nodes`` (distinct), found from their sources'
    out-edges (``out_adjacency``): (edge_index [2, E] of positions in ``nodes``, edge ids [E])
    sorted by source position, then destination position, ties (repeated edges) in CSC order:
    PyG's ``sort_edge_index`` order for csr, with no sort of the whole batch afterwards."""
    n = nodes.shape[0]
    stamp_hi = np.int64(stamp) << 32
    with_bits = mapv.shape[0] > 0
    bits = np.zeros((out_indptr.shape[0] + 63) >> 6 if with_bits else 0, np.uint64)
    for i in range(n):
        if with_bits:
            mark_position(bits, 0, nodes[i])
    counts = np.zeros(n + 1, np.int64)
    for i in prange(n):
        v = nodes[i]
        c = 0
        for p in range(out_indptr[v], out_indptr[v + 1]):
            t = np.int64(out_dst[p])
            if with_bits:
                c += np.int64(_bit(bits, t))
            else:
                c += _lookup(mapv, stamp_hi, hkeys, hvals, t) >= 0
        counts[i + 1] = c
    for i in range(n):
        counts[i + 1] += counts[i]
    out = np.empty((2, counts[n]), np.int64)
    eid = np.empty(counts[n], np.int64)
    for i in prange(n):
        v = nodes[i]
        j = counts[i]
        for p in range(out_indptr[v], out_indptr[v + 1]):
            t = np.int64(out_dst[p])
            if with_bits and _outside(bits, t):
                continue
            u = _lookup(mapv, stamp_hi, hkeys, hvals, t)
            if u < 0:
                continue
            out[0, j] = i
            out[1, j] = u
            _, eid[j] = _edge_at(adj, edge_ids, packed, np.int64(out_pos[p]))
            j += 1
        _sort_segment(out[1], eid, counts[i], j)
    return out, eid


induced_edges_by_row_serial = serial_twin(induced_edges_by_row, "induced_edges_by_row_serial")


@njit(nogil=True, cache=True)
def random_walks(indptr, indices, roots, length, key):
    """int64 [R, length + 1]: a uniform random walk from each root along a CSR's edges (out-
    edges); a node without out-edges stays where it is (PyG's ``random_walk``). Walk r draws
    from its own counter-based stream (key, r), so walks do not depend on each other."""
    hk = hop_key(key, 0)
    out = np.empty((roots.shape[0], length + 1), np.int64)
    for r in range(roots.shape[0]):
        v = roots[r]
        out[r, 0] = v
        state = _stream(hk, r, 0)
        for t in range(length):
            lo = indptr[v]
            d = indptr[v + 1] - lo
            if d > 0:
                v = np.int64(indices[lo + _below(state, t, d)])
            out[r, t + 1] = v
    return out


# ---------------------------------------------------------------------- checks
def check_positive_int(name: str, value: Any, lo: int = 1) -> int:
    """An int >= ``lo`` (bools refused), else TypeError / ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    return int(value)


def check_homogeneous(graph: Any, who: str) -> Graph:
    """``graph`` as a homogeneous gnnsys Graph (typed graphs are not implemented here)."""
    if not isinstance(graph, Graph):
        raise TypeError(f"{who}: graph must be a gnnsys.Graph, got {type(graph).__name__}")
    if graph.is_hetero or graph.num_edge_types > 1:
        raise NotImplementedError(
            f"{who} samples homogeneous graphs only; of the whole-subgraph samplers only "
            "ShaDowSampler(disjoint=False) (DGL's ShaDow) takes typed graphs"
        )
    return graph


def _whole(
    nodes: np.ndarray, ei: np.ndarray, eid: np.ndarray, num_seeds: int, meta: Dict[str, Any]
) -> SampledSubgraph:
    """A SampledSubgraph of a whole subgraph: ``num_seeds`` leading nodes count as hop 0 (the
    rest as hop 1) and every edge as hop 1's."""
    n = int(nodes.shape[0])
    t = torch.from_numpy(np.ascontiguousarray(ei))
    counts = [n] if num_seeds >= n else [num_seeds, n - num_seeds]
    return SampledSubgraph(
        nodes=torch.from_numpy(nodes),
        row=t[0],
        col=t[1],
        num_sampled_nodes=counts,
        num_sampled_edges=[int(t.shape[1])],
        edge_ids=torch.from_numpy(eid),
        metadata={"subgraph_type": "induced", **meta},
    )


# ---------------------------------------------------------------------- out-edges
# One out-edge CSR per Graph (GraphSAINT's walks: every DataLoader over a graph shares it).
_OUT_CACHE: weakref.WeakKeyDictionary[Graph, tuple] = weakref.WeakKeyDictionary()
_OUT_LOCK = threading.Lock()


def out_adjacency(graph: Graph) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr [N + 1], destinations [E], CSC positions [E]) of ``graph``'s out-edges, each
    source's edges in CSC order: a stable counting sort (``ops._sparse_cpu.transpose``, O(E),
    threaded), cached per graph while its tensors are unchanged. (An argsort of the sources
    took 136 ms on mini and ran again for every DataLoader.)"""
    tensors = graph.structure_tensors()
    with _OUT_LOCK:
        hit = _OUT_CACHE.get(graph)
        if hit is not None and token_matches(hit[0], *tensors):
            return hit[1]
    token = tensors_token(*tensors)
    out = transpose(graph.indptr.numpy(), graph.indices.numpy(), graph.num_nodes)
    with _OUT_LOCK:
        _OUT_CACHE[graph] = (token, out)
    return out


# ---------------------------------------------------------------------- induced subgraphs
class InducedSubgraph(_PicklesWithoutMaps):
    """Every edge of ``graph`` between two nodes of a node set (through
    ``_kernels.induced_edges``, with a dense per-thread relabel map, or a hash table on graphs
    above ``DENSE_MAP_MAX_NODES`` nodes).

    Example:
        >>> ei, eid = InducedSubgraph(g).edges(np.array([3, 0, 7]))
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._adj = prepared_adjacency(graph)
        self._maps = _RelabelMaps()

    def edges(self, nodes: Any) -> Tuple[np.ndarray, np.ndarray]:
        """(edge_index [2, E] as positions in ``nodes``, edge ids [E]) of the subgraph induced
        by ``nodes`` (distinct node ids: a 1-D integer array or tensor), ordered by
        destination position. Ids out of range, negative or repeated raise ValueError."""
        ids = check_index("nodes", nodes, self.graph.num_nodes).numpy()
        if np.unique(ids).shape[0] != ids.shape[0]:
            raise ValueError("nodes must be distinct: an id appears twice")
        return self.edges_checked(ids)

    def edges_checked(self, nodes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``edges`` without validation: ``nodes`` must be distinct, in-range int64 ids (the
        samplers' own node sets)."""
        ei, eid, _ = self.typed_edges_checked(nodes, np.array([nodes.shape[0]], np.int64))
        return ei, eid

    def typed_edges_checked(
        self, nodes: np.ndarray, type_counts: np.ndarray
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``edges_checked`` on a typed graph (a homogeneous one: one type, ``[len(nodes)]``):
        ``nodes`` grouped by node type (``type_counts[t]`` of type t, in type order). Returns (edge_index [2, E] as ids within each end's type
        block, edge ids [E], edge_ptr [K + 1]: the edges of edge type e are
        ``edge_ptr[e]:edge_ptr[e + 1]``, ordered by destination, then CSC order)."""
        n = int(nodes.shape[0])
        a = self._adj
        counts = np.asarray(type_counts, np.int64)
        start = np.zeros(counts.shape[0] + 1, np.int64)
        np.cumsum(counts, out=start[1:])
        local = np.arange(n, dtype=np.int64) - np.repeat(start[:-1], counts)
        mapv, stamp, hkeys, hvals = self._relabel(nodes, local)
        kernel = _kernels.choose(_kernels.induced_edges, _kernels.induced_edges_serial, 16 * n)
        hops = np.zeros((2, counts.shape[0]), np.int64)  # every node in "hop 0": one segment
        hops[0] = counts
        return kernel(a.indptr, a.adj, a.edge_ids, a.packed, a.types[0], a.types[1],
                      self.graph.num_edge_types, nodes, hops, mapv, stamp, hkeys,
                      hvals)  # fmt: skip

    def _relabel(
        self, nodes: np.ndarray, local: Optional[np.ndarray] = None
    ) -> Tuple[np.ndarray, int, np.ndarray, np.ndarray]:
        """A map node id -> ``local[i]`` (default: its position in ``nodes``)."""
        n = self.graph.num_nodes
        if local is None:
            local = np.arange(nodes.shape[0], dtype=np.int64)
        if n > DENSE_MAP_MAX_NODES:
            hkeys, hvals = hash_map(nodes, local)
            return np.empty(0, np.int64), 1, hkeys, hvals
        m = self._maps
        if m.mapv is None or m.mapv.shape[0] != n or m.stamp >= 0x7FFFFFFF:
            m.mapv = np.zeros(n, np.int64)
            m.stamp = 0
        m.stamp += 1
        m.mapv[nodes] = (np.int64(m.stamp) << 32) | local
        return m.mapv, m.stamp, _NO_HASH, _NO_HASH


# ---------------------------------------------------------------------- Cluster-GCN
def cluster_parts(
    graph: Graph,
    num_parts: int,
    *,
    seed: int = 0,
    recursive: bool = False,
    vertex_weights: Optional[torch.Tensor] = None,
    balance_types: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """int64 [N]: the part of each node, from ``pipeline_parallel.partition`` (METIS through
    pymetis on the symmetrised graph; a BFS partition, with a warning, without pymetis: it
    cuts far more edges, one part of a 20-part split keeping 6% of its edges against METIS's
    32% in a DGL Cluster-GCN example). DGL's METIS (``dgl.metis_partition_assignment``) is
    not a fallback: it takes no seed and gave another partition on the fourth of four calls
    on one graph (session 46), and parts must be deterministic given the seed.
    ``recursive``, ``vertex_weights`` and ``balance_types``: METIS's recursive bisection and
    vertex weights, and classes of nodes spread evenly over the parts
    (``pipeline_parallel.partition.partition``).

    Example:
        >>> cluster_parts(g, 4).unique().tolist()
        [0, 1, 2, 3]
    """
    from gnnsys.pipeline_parallel.partition import partition

    p = partition(graph, num_parts, method="auto", seed=seed, recursive=recursive,
                  vertex_weights=vertex_weights, balance_types=balance_types)  # fmt: skip
    if p.method == "bfs":
        warnings.warn(
            "pymetis is not installed: Cluster-GCN parts come from a BFS partition instead of "
            "METIS (pip install 'gnnsys[partition]')",
            stacklevel=3,
        )
    return p.part


class ClusterSampler:
    """Cluster-GCN (Chiang et al., KDD 2019): a batch of part ids gives the subgraph induced by
    the union of those parts' nodes (edges between the chosen parts kept, as PyG's
    ``ClusterLoader`` and DGL's ``ClusterGCNSampler``).

    Args:
        graph: a homogeneous ``Graph``.
        num_parts: number of parts, 1..num_nodes.
        part: optional int64 [N] part of each node (skips partitioning; e.g. a cached one).
        seed: METIS's seed; the same seed gives the same parts.
        recursive: METIS recursive bisection instead of k-way.
        vertex_weights: optional integer [N] METIS vertex weights (balanced across parts).
        balance_types: optional integer or bool [N] class of each node (a type, a training
            mask): each class spread evenly over the parts, as DGL's ``balance_ntypes``.
        edge_order: PyG's ``sort_edge_index`` order of a batch's edges: ``"csr"`` by source
            position, then destination position; ``"csc"`` by destination, then source;
            default: by destination position, then CSC order (as the other samplers).

    Seeds are part ids (``num_inputs`` = ``num_parts``), distinct within a batch. Nodes come
    part after part in batch order, each part's nodes in ascending id order; ``metadata``
    holds ``parts`` and ``part_sizes``.

    Example:
        >>> s = ClusterSampler(g, 16)
        >>> sub = s.sample(torch.tensor([3, 7]), SampleKey(seed=0))
    """

    def __init__(
        self,
        graph: Graph,
        num_parts: int,
        *,
        part: Any = None,
        seed: int = 0,
        recursive: bool = False,
        vertex_weights: Optional[torch.Tensor] = None,
        balance_types: Optional[torch.Tensor] = None,
        edge_order: Optional[str] = None,
    ) -> None:
        self.graph = check_homogeneous(graph, "ClusterSampler")
        if edge_order not in (None, "csr", "csc"):
            raise ValueError(f"edge_order must be None, 'csr' or 'csc', got {edge_order!r}")
        self.edge_order = edge_order
        n = graph.num_nodes
        self.num_parts = check_positive_int("num_parts", num_parts)
        if self.num_parts > n:
            raise ValueError(
                f"num_parts={num_parts} exceeds the graph's {n} nodes (each part needs a node)"
            )
        if part is None:
            part = cluster_parts(graph, self.num_parts, seed=seed, recursive=recursive,
                                 vertex_weights=vertex_weights,
                                 balance_types=balance_types)  # fmt: skip
        part = check_index("part", part, self.num_parts)
        if part.numel() != n:
            raise ValueError(f"part has {part.numel()} entries for {n} nodes")
        self.part = part
        p = part.numpy()
        self.part_nodes = np.argsort(p, kind="stable").astype(np.int64)
        self.part_ptr = np.zeros(self.num_parts + 1, np.int64)
        np.cumsum(np.bincount(p, minlength=self.num_parts), out=self.part_ptr[1:])
        self._induced = InducedSubgraph(graph)

    @property
    def num_inputs(self) -> int:
        """Seeds are part ids below this."""
        return self.num_parts

    def nodes_of(self, parts: np.ndarray) -> np.ndarray:
        """The nodes of ``parts`` (checked ids), part after part, ascending within a part."""
        ptr = self.part_ptr
        return np.concatenate([self.part_nodes[ptr[q] : ptr[q + 1]] for q in parts.tolist()])

    def sample(self, seeds: torch.Tensor, generator: KeyLike = None) -> SampledSubgraph:
        """The subgraph induced by the parts ``seeds`` (``generator`` is not used: no draws).

        Example:
            >>> sub = sampler.sample(torch.tensor([0, 2]))
        """
        parts = check_ids("seeds", seeds, self.num_parts, allow_empty=False).numpy()
        if np.unique(parts).shape[0] != parts.shape[0]:
            raise ValueError("seeds (part ids) must be distinct within a batch")
        nodes = self.nodes_of(parts)
        ei, eid = self._edges_in_order(nodes)
        sizes = self.part_ptr[parts + 1] - self.part_ptr[parts]
        meta = {"parts": torch.from_numpy(parts.copy()), "part_sizes": torch.from_numpy(sizes)}
        if self.edge_order is not None:
            meta["edge_order"] = self.edge_order
        return _whole(nodes, ei, eid, nodes.shape[0], meta)

    def _edges_in_order(self, nodes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The induced edges in ``edge_order``. Sorted ones: the usual kernel, then two
        counting passes (``lex_order``) and a gather, all cache-resident on batches whose nodes
        have fewer than ``ROW_ORDER_MIN_EDGES`` in-edges. A bigger "csr" batch is found from
        the sources' out-edges already in its order (``induced_edges_by_row``), as a
        permutation of millions of edges misses every cache (products, 10 of 100 parts, 5.8M
        edges: 2.11-2.13 -> 3.01-3.07 batches/s; mini, 104k edges: 4.3 ms a batch by sorting,
        6.2 by rows, one thread)."""
        a = self._induced._adj
        if self.edge_order != "csr" or (
            int((a.indptr[nodes + 1] - a.indptr[nodes]).sum()) < ROW_ORDER_MIN_EDGES
        ):
            ei, eid = self._induced.edges_checked(nodes)
            if self.edge_order is None:
                return ei, eid
            first, second = (ei[0], ei[1]) if self.edge_order == "csr" else (ei[1], ei[0])
            order, in_order = _kernels.lex_order(first, second, int(nodes.shape[0]))
            return (ei, eid) if in_order else (ei[:, order], eid[order])
        out_indptr, out_dst, out_pos = out_adjacency(self.graph)
        mapv, stamp, hkeys, hvals = self._induced._relabel(nodes)
        kernel = _kernels.choose(induced_edges_by_row, induced_edges_by_row_serial,
                                 16 * int(nodes.shape[0]))  # fmt: skip
        return kernel(out_indptr, out_dst, out_pos, a.adj, a.edge_ids, a.packed, nodes, mapv,
                      stamp, hkeys, hvals)  # fmt: skip

    def __repr__(self) -> str:
        return f"ClusterSampler(num_parts={self.num_parts})"


# ---------------------------------------------------------------------- GraphSAINT
def _cumulative(name: str, weights: Any, count: int) -> np.ndarray:
    """float64 [count + 1] cumulative weights (cum[0] = 0), checked: finite, >= 0, sum > 0."""
    w = torch.as_tensor(weights).detach().cpu().double().reshape(-1).numpy()
    if w.shape[0] != count:
        raise ValueError(f"{name} must have {count} entries, got {w.shape[0]}")
    if w.size and (not np.isfinite(w).all() or (w < 0).any()):
        raise ValueError(f"{name} must hold finite weights >= 0")
    cum = np.zeros(count + 1, np.float64)
    np.cumsum(w, out=cum[1:])
    if not cum[-1] > 0:
        raise ValueError(f"{name} sums to 0: there is nothing to draw")
    return cum


class SaintSampler:
    """GraphSAINT (Zeng et al., ICLR 2020) subgraphs: draw a node set, take its induced
    subgraph. One subgraph per batch; the seeds are not read.

    Args:
        graph: a homogeneous ``Graph``.
        mode: ``"node"`` (``budget`` node draws with replacement, by ``node_weight``; default
            the out-degree, PyG's: the source of a uniform random edge), ``"edge"``
            (``budget`` edge draws with replacement, by ``edge_weight`` per CSC position;
            default PyG 2.8's ``in_deg(src) + out_deg(dst)``; both ends join) or ``"walk"``
            (``budget`` uniform roots, each a random walk of ``walk_length`` steps along
            out-edges).
        budget: the number of draws (nodes, edges or roots), >= 1.
        walk_length: steps per walk (``"walk"``), >= 1.

    Nodes are the distinct drawn ones in ascending id order (as ``unique`` gives them).

    Example:
        >>> s = SaintSampler(g, "walk", 100, walk_length=3)
        >>> sub = s.sample(torch.tensor([0]), SampleKey(seed=0, batch=5))
    """

    def __init__(
        self,
        graph: Graph,
        mode: str,
        budget: int,
        *,
        walk_length: int = 1,
        node_weight: Any = None,
        edge_weight: Any = None,
    ) -> None:
        self.graph = check_homogeneous(graph, "SaintSampler")
        check_choice("mode", mode, SAINT_MODES)
        self.mode = mode
        self.budget = check_positive_int("budget", budget)
        self.walk_length = check_positive_int("walk_length", walk_length)
        n, e = graph.num_nodes, graph.num_edges
        if n == 0:
            raise ValueError("SaintSampler needs a graph with nodes")
        self._indices = graph.indices.numpy()
        self._induced = InducedSubgraph(graph)
        if mode == "node":
            if node_weight is None:
                node_weight = graph.out_degrees()
            self._cum = _cumulative("node_weight", node_weight, n)
        elif mode == "edge":
            in_deg = graph.in_degrees().numpy()
            self._dst = np.repeat(np.arange(n, dtype=np.int64), in_deg)
            if edge_weight is None:
                out_deg = graph.out_degrees().numpy()
                edge_weight = in_deg[self._indices] + out_deg[self._dst] + 1e-10
            self._cum = _cumulative("edge_weight", edge_weight, e)
        else:
            self._out_indptr, self._out_indices, _ = out_adjacency(graph)

    def draw_nodes(self, key: int) -> np.ndarray:
        """The sorted distinct nodes of the draw keyed by ``key`` (an int from ``key_int``)."""
        if self.mode == "node":
            nodes = _kernels.random_weighted_nodes(key, _SALT_NODE, self.budget, self._cum)
        elif self.mode == "edge":
            pos = _kernels.random_weighted_nodes(key, _SALT_EDGE, self.budget, self._cum)
            nodes = np.concatenate([self._indices[pos].astype(np.int64), self._dst[pos]])
        else:
            n = self.graph.num_nodes
            roots = _kernels.random_nodes(key, _SALT_WALK, self.budget, n)
            nodes = random_walks(self._out_indptr, self._out_indices, roots, self.walk_length,
                                 key).reshape(-1)  # fmt: skip
        return np.unique(nodes)

    def sample(self, seeds: Any = None, generator: KeyLike = None) -> SampledSubgraph:
        """One GraphSAINT subgraph drawn with the key ``generator`` (``seeds`` not read).

        Example:
            >>> sub = sampler.sample(None, SampleKey(seed=0, epoch=1, batch=2))
        """
        nodes = self.draw_nodes(key_int(generator))
        ei, eid = self._induced.edges_checked(nodes)
        return _whole(nodes, ei, eid, nodes.shape[0], {"saint_mode": self.mode})

    def __repr__(self) -> str:
        walk = f", walk_length={self.walk_length}" if self.mode == "walk" else ""
        return f"SaintSampler(mode={self.mode!r}, budget={self.budget}{walk})"


def saint_norm(
    sampler: SaintSampler,
    num_steps: int,
    sample_coverage: int,
    *,
    seed: int = 0,
    src_of_edge: Optional[torch.Tensor] = None,
    num_edges: Optional[int] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """PyG's GraphSAINT normalisation ``(node_norm [N], edge_norm [E])`` (float32).

    Pre-samples passes of ``num_steps`` subgraphs until the sampled nodes total at least
    ``N * sample_coverage``; with ``C_v`` the subgraphs holding node v, ``C_e`` those holding
    edge e (by edge id), S the number of subgraphs: ``edge_norm[e] = C_src(e) / C_e`` clamped
    to [0, 1e4] (0/0 -> 0.1), ``node_norm[v] = S / C_v / N`` (C_v = 0 counted as 0.1), as PyG
    2.8 defines them. The draws use the keys ``SampleKey(seed, -1 - pass, step)``, apart from
    any training batch's. ``src_of_edge`` (source of each edge id) defaults to the graph's.

    Example:
        >>> node_norm, edge_norm = saint_norm(SaintSampler(g, "node", 50), 10, 20)
    """
    check_positive_int("num_steps", num_steps)
    check_positive_int("sample_coverage", sample_coverage)
    g = sampler.graph
    n = g.num_nodes
    if src_of_edge is None:
        eids = g.edge_ids.numpy() if g.edge_ids is not None else np.arange(g.num_edges)
        num_edges = int(eids.max()) + 1 if eids.size else 0
        src = np.zeros(num_edges, np.int64)
        src[eids] = g.indices.numpy()
    else:
        src = src_of_edge.numpy().astype(np.int64)
        num_edges = int(src.shape[0]) if num_edges is None else num_edges
    node_count = np.zeros(n, np.float32)
    edge_count = np.zeros(num_edges, np.float32)
    num_samples = total = passes = 0
    while total < n * sample_coverage:
        for step in range(num_steps):
            sub = sampler.sample(None, SampleKey(seed, -1 - passes, step))
            node_count[sub.nodes.numpy()] += 1  # nodes and edge ids are distinct
            edge_count[sub.edge_ids.numpy()] += 1
            total += int(sub.nodes.numel())
        num_samples += num_steps
        passes += 1
    nc = torch.from_numpy(node_count)
    ec = torch.from_numpy(edge_count)
    edge_norm = (nc[torch.from_numpy(src)] / ec).clamp_(0, 1e4)
    edge_norm[torch.isnan(edge_norm)] = 0.1
    nc[nc == 0] = 0.1
    return num_samples / nc / n, edge_norm


# ---------------------------------------------------------------------- ShaDow-KHop
class ShaDowSampler:
    """ShaDow-KHop (Zeng et al., NeurIPS 2021): sample each seed's k-hop in-neighbourhood
    (``fanouts[h]`` neighbours per node on hop h+1, -1 = all), then take the induced subgraph.

    Args:
        graph: a ``Graph``; the induced edges are all of its edges. A typed graph (node and
            edge types) needs ``disjoint=False`` (DGL's heterograph ShaDow).
        fanouts: one int per hop, nearest the seeds first ([] = the seeds alone, disjoint only);
            on a typed graph also per edge type (``NeighborSampler``'s forms: a dict
            ``{edge_type: [per hop]}`` or an int64 [hops, edge types] matrix).
        replace: sample neighbours with replacement.
        disjoint: True (PyG): one subgraph per seed, nodes grouped by seed (the seed first, then
            its hops), ``batch`` the seed of each node, ``metadata["ptr"]`` the groups'
            offsets and ``metadata["root"]`` each seed's position. False (DGL): the subgraph
            induced by the union of the neighbourhoods, the seeds first (hop 0); on a typed
            graph the nodes are grouped by node type (the seeds first within each type,
            ``type_num_sampled_nodes`` [2, T]: seeds, then the rest) and the edges by edge
            type (``edge_ptr``), as ids within their node types.
        sampling_graph: the graph the neighbourhoods are drawn from when it differs from
            ``graph`` (the same nodes and types; DGL's ``prob``: edge weights or a mask), with
            ``weighted``.

    Example:
        >>> sub = ShaDowSampler(g, [5, 5]).sample(torch.tensor([0, 9]), SampleKey(seed=0))
        >>> sub.metadata["root"].tolist()
        [0, 7]
    """

    def __init__(
        self,
        graph: Graph,
        fanouts: Any,
        *,
        replace: bool = False,
        disjoint: bool = True,
        sampling_graph: Optional[Graph] = None,
        weighted: bool = False,
    ) -> None:
        self.disjoint = bool(disjoint)
        typed = isinstance(graph, Graph) and graph.is_hetero and not self.disjoint
        who = "ShaDowSampler(disjoint=True)" if self.disjoint else "ShaDowSampler"
        self.graph = graph if typed else check_homogeneous(graph, who)
        sg = sampling_graph if sampling_graph is not None else graph
        if not isinstance(sg, Graph):
            raise TypeError(f"sampling_graph must be a gnnsys Graph, got {type(sg).__name__}")
        if sg.num_nodes != graph.num_nodes or sg.num_edge_types != graph.num_edge_types:
            raise ValueError("sampling_graph must have the graph's nodes and edge types")
        semantics = "pyg" if self.disjoint else "dgl"
        self._hops = NeighborSampler(sg, fanouts, replace=replace, weighted=weighted,
                                     semantics=semantics, disjoint=self.disjoint)  # fmt: skip
        if not self.disjoint and self._hops.fanouts.shape[0] == 0:
            raise ValueError("fanouts is empty: give one fanout per hop, e.g. [10, 5]")
        self.typed = typed
        fan = self._hops.fanouts
        self.fanouts = fan.tolist() if self.typed else fan[:, 0].tolist()
        self.replace = bool(replace)
        self._induced = InducedSubgraph(graph)
        self._adj = self._induced._adj

    @property
    def num_inputs(self) -> int:
        """Seeds are node ids below this."""
        return self.graph.num_nodes

    def sample(self, seeds: torch.Tensor, generator: KeyLike = None) -> SampledSubgraph:
        """The induced subgraph(s) of the seeds' sampled neighbourhoods, keyed by ``generator``.

        Example:
            >>> sub = sampler.sample(torch.tensor([0, 5]), SampleKey(seed=1, batch=3))
        """
        seeds_t = check_ids("seeds", seeds, self.graph.num_nodes, allow_empty=False)
        hop = self._hops.sample_checked(seeds_t, key_int(generator))
        nodes = hop.nodes.numpy()
        b = int(seeds_t.numel())
        if self.typed:
            return self._typed(hop)
        if not self.disjoint:
            ei, eid = self._induced.edges_checked(nodes)
            return _whole(nodes, ei, eid, b, {})
        order = np.argsort(hop.batch.numpy(), kind="stable")  # group by seed, root first
        nodes = np.ascontiguousarray(nodes[order])
        tree = np.ascontiguousarray(hop.batch.numpy()[order])
        a = self._adj
        work = 16 * int(nodes.shape[0])
        kernel = _kernels.choose(disjoint_induced_edges, disjoint_induced_edges_serial, work)
        ei, eid = kernel(a.indptr, a.adj, a.edge_ids, a.packed, nodes, tree,
                         self.graph.num_nodes)  # fmt: skip
        ptr = np.zeros(b + 1, np.int64)
        np.cumsum(np.bincount(tree, minlength=b), out=ptr[1:])
        ptr_t = torch.from_numpy(ptr)
        sub = _whole(nodes, ei, eid, nodes.shape[0], {"ptr": ptr_t, "root": ptr_t[:-1]})
        sub.batch = torch.from_numpy(tree)
        return sub

    def _typed(self, hop: SampledSubgraph) -> SampledSubgraph:
        """The union's induced subgraph on a typed graph, nodes as ``hop`` grouped them."""
        assert hop.type_num_sampled_nodes is not None
        per_hop = hop.type_num_sampled_nodes.numpy()  # [H + 1, T]
        per_type = per_hop.sum(axis=0)
        ei, eid, edge_ptr = self._induced.typed_edges_checked(hop.nodes.numpy(), per_type)
        t = torch.from_numpy(ei)
        seeds = int(per_hop[0].sum())
        n = int(hop.nodes.numel())
        return SampledSubgraph(
            nodes=hop.nodes,
            row=t[0],
            col=t[1],
            num_sampled_nodes=[seeds, n - seeds],
            num_sampled_edges=[int(t.shape[1])],
            edge_ids=torch.from_numpy(eid),
            metadata={"subgraph_type": "induced"},
            node_offsets=hop.node_offsets,
            type_num_sampled_nodes=torch.from_numpy(np.stack([per_hop[0], per_type - per_hop[0]])),
            edge_ptr=torch.from_numpy(edge_ptr),
            node_types=self.graph.node_types,
            edge_types=self.graph.edge_types,
        )

    def __repr__(self) -> str:
        return (
            f"ShaDowSampler(fanouts={self.fanouts}, replace={self.replace}, "
            f"disjoint={self.disjoint})"
        )
