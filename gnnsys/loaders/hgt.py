"""HGT sampling (Hu et al., WWW 2020, "Heterogeneous Graph Transformer", Algorithm 1): a
layer-wise sampler that keeps a similar number of nodes of every type in a batch.

Each node type keeps a *budget*: every not-yet-sampled node that is an in-neighbour of a sampled
node, weighted by the sum over its sampled out-neighbours w of ``1 / deg_e(w)`` (``deg_e``: w's
in-degree through that edge type; a w with more than ``MAX_NEIGHBORS`` such in-edges adds
``MAX_NEIGHBORS`` of them, drawn without replacement, at ``1 / MAX_NEIGHBORS`` each). In
iteration ``l`` each node type t draws ``num_samples[t][l]`` nodes of its budget without
replacement with probability proportional to the squared weight (all of them when the budget is
that small), adds them to the batch and their in-neighbours to the budgets. The batch's edges are
the graph's edges among the sampled nodes (a destination with more than ``MAX_NEIGHBORS``
in-edges of one type contributes those among ``MAX_NEIGHBORS`` of them, drawn at random).

These are the semantics of PyG's ``HGTLoader`` (``torch_sparse.hgt_sample``), with two
differences: randomness is counter-based from the batch's ``SampleKey`` (the same batches for a
seed whatever the thread count; PyG draws from torch's global RNG), and every ``e_id`` names the
edge of its ``edge_index`` column (torch-sparse's gives, for a destination with more than 50
in-edges, the position in the draw instead of the edge's).

The kernel runs one batch in one thread (the Loader runs batches in parallel); it does no
bounds checks: ``HGTSampler.sample`` validates the seeds first.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence, Union

import numpy as np
import torch
from numba import njit

from gnnsys._checks import check_ids
from gnnsys._numba import prefetch
from gnnsys.graph import Graph
from gnnsys.loaders._kernels import (
    _edge_at,
    _floyd,
    _grow,
    _hash_grow,
    _hash_home,
    _hash_slot,
    _segment_slot,
    _stream,
    _uniform,
    hop_key,
    node_type_of,
)
from gnnsys.loaders.base import KeyLike, SampledSubgraph, key_int
from gnnsys.loaders.neighbor import prepared_adjacency

# A destination adds at most this many in-neighbours per edge type to a budget, and its edges in
# the batch come from at most this many of its in-edges per edge type (torch-sparse's cap).
MAX_NEIGHBORS = 50
_SLOT_AHEAD = 16  # nodes ahead whose segment slot is prefetched
_COLUMN_AHEAD = 4  # nodes ahead whose column start is prefetched


# ---------------------------------------------------------------------- kernel
@njit(nogil=True, cache=True, inline="always")
def _capped_positions(seg_ptr, slot, q, cap, state, pos):
    # The CSC positions one (node, edge type) segment contributes, into pos[:k]: all of them,
    # or ``cap`` drawn without replacement (Floyd) from a longer one. Returns k.
    lo = seg_ptr[slot + q]
    d = seg_ptr[slot + q + 1] - lo
    if d > cap:
        _floyd(state, lo, d, cap, pos, 0)
        return cap
    for j in range(d):
        pos[j] = lo + j
    return d


@njit(nogil=True, cache=True)
def _add_to_budgets(
    adj, edge_ids, packed, node_off, etype_src, dst_ptr, dst_etypes, seg_ptr, seg_base, new, key,
    cap, hkeys, hvals, bnode, btype, bweight, bcount, nseed,
):  # fmt: skip
    # The budget update (Algorithm 1, lines 3-5 and 14): the in-neighbours of the nodes in
    # ``new`` that are not sampled yet, each weighted 1/deg per edge type. The budget is a list
    # in first-touch order (bnode, btype, bweight; -1 weight: sampled since) indexed by a hash
    # table holding -(position + 2) for budget entries and >= 0 local ids for sampled nodes (the
    # ``nseed`` seeds and the budget entries drawn since). Random reads are prefetched: a later
    # node's segment slot and column start, and each segment's hash slots before the probes.
    pos = np.empty(cap, np.int64)
    vbuf = np.empty(cap, np.int64)
    m = new.shape[0]
    for i in range(m):
        _prefetch_column(seg_ptr, seg_base, node_off, dst_ptr, adj, new, i, m)
        w = new[i]
        t = node_type_of(node_off, w)
        slot = _segment_slot(seg_base, node_off, dst_ptr, w, t)
        for q in range(dst_ptr[t], dst_ptr[t + 1]):
            k = _capped_positions(seg_ptr, slot, q, cap, _stream(key, w, dst_etypes[q]), pos)
            if k == 0:
                continue
            ts = etype_src[dst_etypes[q]]
            hkeys, hvals = _hash_grow(hkeys, hvals, nseed + bcount + k)
            for j in range(k):
                v, _ = _edge_at(adj, edge_ids, packed, pos[j])
                vbuf[j] = v
                prefetch(hkeys, _hash_home(v, hkeys.shape[0]))
            inc = 1.0 / k
            for j in range(k):
                v = vbuf[j]
                s = _hash_slot(hkeys, v)
                if hkeys[s] == -1:  # first touch: a new budget entry
                    if bcount == bnode.shape[0]:
                        bnode = _grow(bnode, bcount + 1)
                        btype = _grow(btype, bcount + 1)
                        bweight = _grow(bweight, bcount + 1)
                    hkeys[s] = v
                    hvals[s] = -(bcount + 2)
                    bnode[bcount] = v
                    btype[bcount] = ts
                    bweight[bcount] = inc
                    bcount += 1
                elif hvals[s] <= -2:  # in the budget
                    bweight[-hvals[s] - 2] += inc
                # else sampled already: not a candidate
    return hkeys, hvals, bnode, btype, bweight, bcount


@njit(nogil=True, cache=True, inline="always")
def _prefetch_column(seg_ptr, seg_base, node_off, dst_ptr, adj, nodes, i, m):
    # While node i is processed: the segment slot of node i + _SLOT_AHEAD (a cache miss each:
    # nodes come in random order) and the column start of node i + _COLUMN_AHEAD, whose slot
    # was prefetched earlier.
    if i + _SLOT_AHEAD < m:
        w = nodes[i + _SLOT_AHEAD]
        prefetch(seg_ptr, _segment_slot(seg_base, node_off, dst_ptr, w, node_type_of(node_off, w)))
    if i + _COLUMN_AHEAD < m:
        w = nodes[i + _COLUMN_AHEAD]
        t = node_type_of(node_off, w)
        if dst_ptr[t + 1] > dst_ptr[t]:
            slot = _segment_slot(seg_base, node_off, dst_ptr, w, t)
            prefetch(adj, seg_ptr[slot + dst_ptr[t]])


@njit(nogil=True, cache=True)
def _draw(bnode, bweight, cand, k, hk, t):
    # Positions in ``cand`` (budget entries of type t) of k draws without replacement with
    # probability ~ weight^2, in draw order: the k smallest exponential keys E / weight^2
    # (Efraimidis-Spirakis), each node's E from its own counter-based stream. A partition finds
    # the k-th key; only the k drawn are sorted.
    m = cand.shape[0]
    rank = np.empty(m, np.float64)
    for j in range(m):
        b = cand[j]
        u = _uniform(_stream(hk, bnode[b], t), 0)
        w2 = bweight[b] * bweight[b]
        rank[j] = -np.log(1.0 - u) / w2 if w2 > 0.0 else np.inf
    thr = np.partition(rank, k - 1)[k - 1]
    sel = np.empty(k, np.int64)
    c = 0
    for j in range(m):
        if rank[j] < thr:
            sel[c] = j
            c += 1
    for j in range(m):
        if c == k:
            break
        if rank[j] == thr:
            sel[c] = j
            c += 1
    return sel[np.argsort(rank[sel], kind="mergesort")]


@njit(nogil=True, cache=True)
def hgt_sample(
    adj, edge_ids, packed, node_off, etype_src, etype_dst, dst_ptr, dst_etypes, seg_ptr,
    seg_base, seeds, num_samples, key, cap,
):  # fmt: skip
    """One HGT batch: (nodes grouped by type, type counts [2, T] (seeds, the rest), edges [2, E]
    in ids within their types, grouped by edge type, then destination, edge ids, edge_ptr
    [K+1]). ``num_samples``: int64 [L, T]; ``cap``: MAX_NEIGHBORS."""
    nt = node_off.shape[0] - 1
    ne = etype_src.shape[0]
    num_hops = num_samples.shape[0]
    cap0 = 16  # room for every seed at half load (the budget updates grow it)
    while cap0 < 4 * seeds.shape[0]:
        cap0 <<= 1
    hkeys = np.full(cap0, -1, np.int64)
    hvals = np.empty(cap0, np.int64)
    order = np.empty(seeds.shape[0], np.int64)  # sampled nodes, in sampling order
    otype = np.empty(seeds.shape[0], np.int64)
    count = np.zeros(nt, np.int64)
    first = np.zeros(nt, np.int64)
    n = 0
    for i in range(seeds.shape[0]):  # the seeds (line 1): local ids in batch order
        v = seeds[i]
        t = node_type_of(node_off, v)
        s = _hash_slot(hkeys, v)
        if hkeys[s] == -1:  # a repeated seed keeps its first local id
            hkeys[s] = v
            hvals[s] = count[t]
        order[n] = v
        otype[n] = t
        count[t] += 1
        n += 1
    for t in range(nt):
        first[t] = count[t]
    bnode = np.empty(64, np.int64)
    btype = np.empty(64, np.int64)
    bweight = np.empty(64, np.float64)
    bcount = 0
    hkeys, hvals, bnode, btype, bweight, bcount = _add_to_budgets(
        adj, edge_ids, packed, node_off, etype_src, dst_ptr, dst_etypes, seg_ptr,
        seg_base, seeds, hop_key(key, 0), cap, hkeys, hvals, bnode, btype, bweight, bcount,
        seeds.shape[0],
    )  # fmt: skip
    for ell in range(num_hops):
        hk = hop_key(key, num_hops + 1 + ell)
        start = n
        # the budget's live entries grouped by type, first-touch order within a type
        tptr = np.zeros(nt + 1, np.int64)
        for b in range(bcount):
            if bweight[b] >= 0.0:
                tptr[btype[b] + 1] += 1
        for t in range(nt):
            tptr[t + 1] += tptr[t]
        cand = np.empty(tptr[nt], np.int64)
        fill = tptr[:-1].copy()
        for b in range(bcount):
            if bweight[b] >= 0.0:
                cand[fill[btype[b]]] = b
                fill[btype[b]] += 1
        for t in range(nt):  # lines 9-13: draw from each type's budget
            want = num_samples[ell, t]
            take = cand[tptr[t] : tptr[t + 1]]
            if want <= 0 or take.shape[0] == 0:
                continue
            if take.shape[0] > want:
                take = take[_draw(bnode, bweight, take, want, hk, t)]
            for j in range(take.shape[0]):
                b = take[j]
                v = bnode[b]
                s = _hash_slot(hkeys, v)
                hvals[s] = count[t]
                bweight[b] = -1.0
                if n == order.shape[0]:
                    order = _grow(order, n + 1)
                    otype = _grow(otype, n + 1)
                order[n] = v
                otype[n] = t
                count[t] += 1
                n += 1
        if ell < num_hops - 1 and n > start:  # line 14: their in-neighbours join the budgets
            hkeys, hvals, bnode, btype, bweight, bcount = _add_to_budgets(
                adj, edge_ids, packed, node_off, etype_src, dst_ptr, dst_etypes,
                seg_ptr, seg_base, order[start:n], hop_key(key, 1 + ell), cap, hkeys, hvals,
                bnode, btype, bweight, bcount, seeds.shape[0],
            )  # fmt: skip
    # nodes grouped by type, each type in sampling order
    off = np.zeros(nt + 1, np.int64)
    for t in range(nt):
        off[t + 1] = off[t] + count[t]
    nodes = np.empty(n, np.int64)
    fill = off[:-1].copy()
    for i in range(n):
        nodes[fill[otype[i]]] = order[i]
        fill[otype[i]] += 1
    counts = np.empty((2, nt), np.int64)
    for t in range(nt):
        counts[0, t] = first[t]
        counts[1, t] = count[t] - first[t]
    # line 19: the edges among the sampled nodes, per edge type, by destination. The probes go
    # to a table of the sampled nodes alone (a few hundred KB: it stays in cache).
    cap2 = 16
    while cap2 < 2 * n:
        cap2 <<= 1
    sk = np.full(cap2, -1, np.int64)
    sv = np.empty(cap2, np.int64)
    for i in range(n):
        v = order[i]
        s = _hash_slot(sk, v)
        if sk[s] == -1:
            sk[s] = v
            sv[s] = hvals[_hash_slot(hkeys, v)]
    hk = hop_key(key, 2 * num_hops + 1)
    pos = np.empty(cap, np.int64)
    rows = np.empty(64, np.int64)
    cols = np.empty(64, np.int64)
    eids = np.empty(64, np.int64)
    edge_ptr = np.zeros(ne + 1, np.int64)
    m = 0
    for e in range(ne):
        td = etype_dst[e]
        q = dst_ptr[td]
        while dst_etypes[q] != e:
            q += 1
        dst = nodes[off[td] : off[td + 1]]
        for i in range(dst.shape[0]):
            _prefetch_column(seg_ptr, seg_base, node_off, dst_ptr, adj, dst, i, dst.shape[0])
            w = dst[i]
            slot = _segment_slot(seg_base, node_off, dst_ptr, w, td)
            k = _capped_positions(seg_ptr, slot, q, cap, _stream(hk, w, e), pos)
            if k == cap:
                pos[:k].sort()  # (drawn: back in column order)
            for j in range(k):
                v, eid = _edge_at(adj, edge_ids, packed, pos[j])
                s = _hash_slot(sk, v)
                if sk[s] == -1:
                    continue
                if m == rows.shape[0]:
                    rows = _grow(rows, m + 1)
                    cols = _grow(cols, m + 1)
                    eids = _grow(eids, m + 1)
                rows[m] = sv[s]
                cols[m] = i
                eids[m] = eid
                m += 1
        edge_ptr[e + 1] = m
    ei = np.empty((2, m), np.int64)
    ei[0] = rows[:m]
    ei[1] = cols[:m]
    return nodes, counts, ei, eids[:m].copy(), edge_ptr


# ---------------------------------------------------------------------- sampler
def num_samples_matrix(num_samples: Any, node_types: Sequence[str], who: str) -> np.ndarray:
    """int64 [L, T]: nodes drawn per iteration and node type, from PyG's ``num_samples`` (a list
    for every type, or a dict per node type; a type it leaves out is never drawn, where PyG
    fails with ``unordered_map::at``). Lists of different lengths, negative or non-int
    counts and unknown node types raise.

    Example:
        >>> num_samples_matrix({"a": [4, 2]}, ["a", "b"], "HGTLoader").tolist()
        [[4, 0], [2, 0]]
    """
    if isinstance(num_samples, torch.Tensor):
        num_samples = num_samples.tolist()
    if isinstance(num_samples, dict):
        unknown = [k for k in num_samples if k not in node_types]
        if unknown:
            raise ValueError(
                f"{who}: num_samples names node types not in the graph: {unknown} (node types: "
                f"{list(node_types)})"
            )
        per_type = {k: _counts(v, f"num_samples[{k!r}]", who) for k, v in num_samples.items()}
    elif isinstance(num_samples, (list, tuple)):
        counts = _counts(num_samples, "num_samples", who)
        per_type = {k: counts for k in node_types}
    else:
        raise TypeError(
            f"{who}: num_samples must be a list with one count per iteration or a dict of such "
            f"lists per node type, got {type(num_samples).__name__}"
        )
    lengths = {len(v) for v in per_type.values()}
    if len(lengths) > 1:
        raise ValueError(
            f"{who}: num_samples lists must have one length (the number of iterations), got "
            f"{ {k: len(v) for k, v in per_type.items()} }"
        )
    hops = lengths.pop() if lengths else 0
    out = np.zeros((hops, len(node_types)), np.int64)
    for t, name in enumerate(node_types):
        if name in per_type:
            out[:, t] = per_type[name]
    return out


def _counts(values: Any, name: str, who: str) -> list:
    if isinstance(values, torch.Tensor):
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{who}: {name} must be a list of ints, got {type(values).__name__}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{who}: {name} must hold ints, got {v!r}")
        if v < 0:
            raise ValueError(f"{who}: {name} must hold counts >= 0, got {v}")
    return [int(v) for v in values]


class HGTSampler:
    """HGT's budget sampler (module docstring) on a gnnsys ``Graph``, typed or not.

    Args:
        graph: the graph; messages flow along its edges (a node's budget grows from its
            in-neighbours).
        num_samples: nodes drawn per iteration: a list (every node type) or a dict
            ``{node_type: [per iteration]}``; a type left out is never drawn.

    The subgraph: nodes grouped by type, each type's seeds first (hop 0, in batch order), then
    the drawn nodes in draw order; ``row``/``col`` ids within their node types; edges grouped
    by edge type (``edge_ptr``), then by destination; ``edge_ids`` the graph's ids of them.
    Its per-hop counts are (seeds, the rest) and one hop of edges: HGT's iterations are not
    message-passing hops (PyG's batch carries no ``num_sampled_nodes``).

    Example:
        >>> s = HGTSampler(g, {"paper": [64, 64], "author": [64, 64]})
        >>> sub = s.sample(torch.tensor([0, 1]), SampleKey(seed=0))
    """

    def __init__(
        self, graph: Graph, num_samples: Union[Sequence[int], Dict[str, Sequence[int]]]
    ) -> None:
        if not isinstance(graph, Graph):
            raise TypeError(f"HGTSampler: graph must be a gnnsys.Graph, got {type(graph).__name__}")
        if graph.indptr.device.type != "cpu":
            raise ValueError(
                f"HGTSampler samples on the CPU; the graph is on {graph.indptr.device}"
            )
        self.graph = graph
        self.num_samples = num_samples_matrix(num_samples, graph.node_types, "HGTSampler")
        self._adj = prepared_adjacency(graph)

    @property
    def num_hops(self) -> int:
        """The number of sampling iterations."""
        return int(self.num_samples.shape[0])

    def sample(self, seeds: torch.Tensor, generator: KeyLike = None) -> SampledSubgraph:
        """The HGT subgraph of ``seeds`` (global node ids), keyed by ``generator``.

        Example:
            >>> sub = sampler.sample(torch.tensor([3, 5]), SampleKey(seed=1, batch=2))
        """
        seeds_t = check_ids("seeds", seeds, self.graph.num_nodes, allow_empty=False)
        a = self._adj
        tpe, node_off, etype_src, etype_dst, dst_ptr, dst_etypes = a.types
        seg_ptr, seg_base = a.segments
        if tpe.shape[0] == 0:  # one edge type: a node's segment is its column (slot = its id)
            seg_ptr, seg_base = a.indptr, node_off
        nodes, counts, ei, eid, edge_ptr = hgt_sample(
            a.adj, a.edge_ids, a.packed, node_off, etype_src, etype_dst, dst_ptr,
            dst_etypes, seg_ptr, seg_base, seeds_t.numpy(), self.num_samples,
            key_int(generator), MAX_NEIGHBORS,
        )  # fmt: skip
        typed = self.graph.is_hetero
        off = torch.zeros(counts.shape[1] + 1, dtype=torch.int64)
        torch.cumsum(torch.from_numpy(counts.sum(axis=0)), 0, out=off[1:])
        t = torch.from_numpy(ei)
        return SampledSubgraph(
            nodes=torch.from_numpy(nodes),
            row=t[0],
            col=t[1],
            num_sampled_nodes=counts.sum(axis=1).tolist(),
            num_sampled_edges=[int(ei.shape[1])],
            edge_ids=torch.from_numpy(eid),
            metadata={"subgraph_type": "induced", "per_hop_counts": False},
            node_offsets=off if typed else None,
            type_num_sampled_nodes=torch.from_numpy(counts) if typed else None,
            edge_ptr=torch.from_numpy(edge_ptr) if typed else None,
            node_types=self.graph.node_types if typed else None,
            edge_types=self.graph.edge_types if typed else None,
        )

    def __repr__(self) -> str:
        return f"HGTSampler(num_samples={self.num_samples.T.tolist()})"
