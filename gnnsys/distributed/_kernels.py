"""Numba kernels of the distributed sampler: the owner's draws and the requester's relabel.

One hop of ``loaders._kernels.sample_hops`` split at the machine boundary. The owner of a
destination draws its in-edges of each edge type (pass 2 and 3 there) from its part's CSC, keyed
by exactly the counters the single-machine kernel uses (the hop's edge-type key, global node id,
tree), so the picks are the same; the requester then relabels the picks in frontier order (pass 4 there), so node ids come
out in the same order. Together they reproduce the single-machine batch bitwise.

Like every kernel here, these do no bounds checks: ``graph.py`` validates first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from gnnsys._numba import (
    PRANGE_ONLY,
    mode_tag,
    prefetch,
    prefetch_row,
    prefetch_row_write,
    serial_twin,
    variant,
)
from gnnsys.loaders._kernels import (
    _AHEAD,
    _LOW32,
    _below,
    _edge_at,
    _floyd,
    _grow,
    _hash_grow,
    _hash_home,
    _hash_slot,
    _keep_count,
    _labor_fill_marked,
    _labor_mark,
    _segment,
    _stream,
    _temporal_count,
    _temporal_fill,
    _temporal_keep,
    _weighted_with,
    _weighted_without,
    labor_mark_words,
    node_type_of,
)

# Compile-time switches of ``draw_owned``: ``draw_owned_for`` compiles a variant with the modes a
# sampler does not use set False, so their branches (and callees) are never compiled: less to
# compile on a cold start, and uniform draws 4-9% faster than the generic kernel's (mini, a
# batch's 159k picks, one thread, 4 interleaved pairs: 1.74-1.89 vs 1.85-1.94 ms).
_WITH_WEIGHTED = True
_WITH_LABOR = True
_WITH_TEMPORAL = True


@njit(nogil=True, parallel=PRANGE_ONLY, cache=True)
def draw_owned(indptr, adj, edge_ids, packed, weights, cumw, type_per_edge, local, dst, tree,
               etype, fanouts, replace, weighted, ekeys, labor, lkeys, node_time, edge_time,
               bounds, temporal_mode):  # fmt: skip
    """Draw the in-edges of each requested (destination, edge type) segment from a part's CSC.

    ``local[i]`` is request i's destination row in the part's CSC, ``dst[i]`` its global id,
    ``tree[i]`` its tree (empty: tree 0) and ``etype[i]`` its edge type (empty: type 0; the
    segment is the column's run of that type in ``type_per_edge``, empty: the whole column).
    ``fanouts[e]``: the hop's fanout of edge type e; ``ekeys[e]`` / ``lkeys[e]``: its stream key
    and LABOR-0 variate key (``_etype_keys`` of the hop key). ``adj`` holds global source ids
    and ``edge_ids`` the global edge ids, or (``packed``) ``edge_id << 32 | source`` in one int64
    (as the loaders'). Temporal (``bounds`` non-empty): request i uses only the edges whose
    time (``edge_time`` by the part's CSC position, else the source's ``node_time`` by global
    id) is at most ``bounds[i]``, its tree's seed time, drawn as ``temporal_mode`` says
    (``loaders._kernels.TEMPORAL_*``). Returns (offsets [m+1],
    sources, edge ids), request after request, each in the single-machine kernel's draw order.
    """
    m = local.shape[0]
    typed = etype.shape[0] > 0
    temporal = bounds.shape[0] > 0
    admitted = np.zeros(m if (_WITH_TEMPORAL and temporal) else 0, np.int64)
    counts = np.zeros(m + 1, np.int64)
    seg_lo = np.empty(m, np.int64)
    seg_hi = np.empty(m, np.int64)
    wptr = labor_mark_words(indptr, local, 0, m) if _WITH_LABOR and labor else np.zeros(1, np.int64)
    bits = np.zeros(wptr[-1], np.uint64)  # LABOR-0's kept edges, marked by the count pass
    for i in prange(m):
        if i + _AHEAD < m:  # the columns' bounds are random reads: start them early
            prefetch(indptr, local[i + _AHEAD])
        k = local[i]
        e = etype[i] if typed else 0
        lo, hi = _segment(indptr, type_per_edge, k, e)
        seg_lo[i] = lo
        seg_hi[i] = hi
        tr = tree[i] if tree.shape[0] > 0 else 0
        if _WITH_LABOR and labor:
            counts[i + 1] = _labor_mark(
                adj, edge_ids, packed, lo, hi, fanouts[e], lkeys[e], tr, bits, wptr[i], indptr[k]
            )
        elif _WITH_TEMPORAL and temporal:
            c = _temporal_count(adj, edge_ids, packed, node_time, edge_time, lo, hi, bounds[i],
                                temporal_mode)  # fmt: skip
            admitted[i] = c
            counts[i + 1] = _temporal_keep(c, fanouts[e], replace)
        else:
            counts[i + 1] = _keep_count(
                weights, cumw, lo, hi, fanouts[e], replace, _WITH_WEIGHTED and weighted
            )
    for i in range(m):
        counts[i + 1] += counts[i]
    total = counts[m]
    pos = np.empty(total, np.int64)
    keys = np.empty(total if (_WITH_WEIGHTED and weighted and not replace) else 0, np.float64)
    for i in prange(m):
        o = counts[i]
        k = counts[i + 1] - o
        if k == 0:
            continue
        e = etype[i] if typed else 0
        f = fanouts[e]
        lo, hi = seg_lo[i], seg_hi[i]
        d = hi - lo
        tr = tree[i] if tree.shape[0] > 0 else 0
        st = _stream(ekeys[e], dst[i], tr)
        if _WITH_LABOR and labor:
            _labor_fill_marked(bits, wptr[i], indptr[local[i]], lo, hi, f, pos, o)
        elif _WITH_TEMPORAL and temporal:
            _temporal_fill(adj, edge_ids, packed, node_time, edge_time, lo, hi, bounds[i],
                           admitted[i], st, f, k, replace, temporal_mode, pos, o)  # fmt: skip
        elif _WITH_WEIGHTED and weighted and f >= 0:
            if replace:
                _weighted_with(st, cumw, lo, hi, k, pos, o)
            else:
                _weighted_without(st, weights, lo, hi, k, pos, keys, o)
        elif _WITH_WEIGHTED and weighted:  # fanout -1: every positive-weight neighbour
            j = o
            for p in range(lo, hi):
                if weights[p] > 0.0:
                    pos[j] = p
                    j += 1
        elif f < 0 or (k == d and not replace):
            for j in range(k):
                pos[o + j] = lo + j
        elif replace:
            for j in range(k):
                pos[o + j] = lo + _below(st, j, d)
        else:
            _floyd(st, lo, d, k, pos, o)
    src = np.empty(total, np.int64)
    eid = np.empty(total, np.int64)
    for j in prange(total):
        if j + _AHEAD < total:  # so are the picked positions
            prefetch(adj, pos[j + _AHEAD])
            if edge_ids.shape[0] > 0:
                prefetch(edge_ids, pos[j + _AHEAD])
        src[j], eid[j] = _edge_at(adj, edge_ids, packed, pos[j])
    return counts, src, eid


def draw_owned_for(weighted: bool, labor: bool, temporal: bool = False) -> Any:
    """``draw_owned`` compiled for these modes only (the others' branches compiled out, as
    ``loaders._kernels.sample_hops_for``); called with the same flags it gives the same draws.

    Example:
        >>> off, src, eid = draw_owned_for(False, False)(*args)  # uniform draws
    """
    modes = (bool(weighted), bool(labor), bool(temporal))
    tag = mode_tag(("weighted", "labor", "temporal"), modes)
    return variant(draw_owned, f"draw_owned__{tag}", True, _WITH_WEIGHTED=modes[0],
                   _WITH_LABOR=modes[1], _WITH_TEMPORAL=modes[2])  # fmt: skip


@njit(nogil=True, cache=True)
def start_relabel(seeds, seed_tree, disjoint, num_nodes, node_offsets, mapv, stamp):
    """The requester's state after hop 0: the seeds verbatim (duplicates kept), each
    (tree, node) mapped to its first occurrence's id within its node type: in ``mapv`` (a
    dense [N] map whose entries of this batch carry ``stamp`` in their upper 32 bits, as the
    single-machine kernel's; one tree only) or, when ``mapv`` is empty, a hash table.

    Returns (nodes, ntype, loc, tree, known, hkeys, hvals): ``ntype`` / ``loc`` each node's type
    and id within it (empty for one node type, where the id is the position), ``known`` the
    nodes of each type so far."""
    b = seeds.shape[0]
    typed = node_offsets.shape[0] > 2
    dense = mapv.shape[0] > 0
    stamp_hi = np.int64(stamp) << 32
    nodes = np.empty(max(16, 2 * b), np.int64)
    ntype = np.zeros(nodes.shape[0] if typed else 0, np.int64)
    loc = np.zeros(ntype.shape[0], np.int64)
    tree = np.zeros(nodes.shape[0] if disjoint else 0, np.int64)
    known = np.zeros(node_offsets.shape[0] - 1, np.int64)
    hkeys = np.full(16, -1, np.int64)
    hvals = np.empty(16, np.int64)
    if not dense:
        hkeys, hvals = _hash_grow(hkeys, hvals, b)
    for i in range(b):
        v = seeds[i]
        nodes[i] = v
        t = node_type_of(node_offsets, v) if typed else 0
        local = known[t]
        known[t] += 1
        if typed:
            ntype[i] = t
            loc[i] = local
        if dense:
            if (mapv[v] & ~_LOW32) != stamp_hi:
                mapv[v] = stamp_hi | local
            continue
        tr = seed_tree[i] if disjoint else 0
        if disjoint:
            tree[i] = tr
        kk = tr * num_nodes + v
        s = _hash_slot(hkeys, kk)
        if hkeys[s] == -1:
            hkeys[s] = kk
            hvals[s] = local
    return nodes, ntype, loc, tree, known, hkeys, hvals


@njit(nogil=True, cache=True)
def relabel_hop(nodes, ntype, loc, tree, n, known, hkeys, hvals, num_nodes, src, offsets,
                seg_tree, seg_type, disjoint, mapv, stamp):  # fmt: skip
    """Relabel one hop's sources in output order (``offsets``: per requested segment; segment
    j's picks are in tree ``seg_tree[j]`` (disjoint) and of node type ``seg_type[j]`` (empty:
    one type)): a (tree, node) not seen yet gets the next id of its type (``known``, updated).
    Through the dense map ``mapv`` of ``start_relabel`` when it is not empty.

    Returns (nodes, ntype, loc, tree, n, hkeys, hvals, rows): the grown state and each edge's
    source id within its type."""
    e = src.shape[0]
    typed = seg_type.shape[0] > 0
    dense = mapv.shape[0] > 0
    stamp_hi = np.int64(stamp) << 32
    nodes = _grow(nodes, n + e)
    if typed:
        ntype = _grow(ntype, n + e)
        loc = _grow(loc, n + e)
    if disjoint:
        tree = _grow(tree, n + e)
    if not dense:
        hkeys, hvals = _hash_grow(hkeys, hvals, n + e)
    rows = np.empty(e, np.int64)
    ja = 0  # (the segment of edge p + _AHEAD: the tree of the hash slot prefetched)
    for j in range(offsets.shape[0] - 1):
        tr = seg_tree[j] if disjoint else 0
        t = seg_type[j] if typed else 0
        for p in range(offsets[j], offsets[j + 1]):
            u = src[p]
            if not dense and p + _AHEAD < e:  # the table's slots are random reads too
                while offsets[ja + 1] <= p + _AHEAD:
                    ja += 1
                ka = (seg_tree[ja] if disjoint else 0) * num_nodes + src[p + _AHEAD]
                ha = _hash_home(ka, hkeys.shape[0])
                prefetch(hkeys, ha)
                prefetch(hvals, ha)
            if dense:
                if p + _AHEAD < e:  # the map's entries are random reads
                    prefetch(mapv, src[p + _AHEAD])
                # the single-machine kernel's dense step, written out as there (an inlined
                # shared function made the typed kernel 3x slower)
                entry = mapv[u]
                if (entry & ~_LOW32) == stamp_hi:
                    rows[p] = entry & _LOW32
                    continue
                local = known[t]
                mapv[u] = stamp_hi | local
                rows[p] = local
                nodes[n] = u
                if typed:
                    ntype[n] = t
                    loc[n] = local
                known[t] += 1
                n += 1
                continue
            # the hash step, written out too (inlined as a shared function, each of its array
            # arguments cost an atomic reference count increment and decrement per edge)
            kk = tr * num_nodes + u
            s = _hash_slot(hkeys, kk)
            if hkeys[s] == -1:
                local = known[t]
                hkeys[s] = kk
                hvals[s] = local
                nodes[n] = u
                if disjoint:
                    tree[n] = tr
                if typed:
                    ntype[n] = t
                    loc[n] = local
                known[t] += 1
                n += 1
            rows[p] = hvals[s]
    return nodes, ntype, loc, tree, n, hkeys, hvals, rows


@njit(nogil=True, cache=True)
def regroup(order, counts_sorted, src_sorted, eid_sorted):
    """Put the owners' answers (destinations sorted by owner, ``order`` the frontier positions
    in that sorted order) back in frontier order. Returns (offsets [m+1], sources, edge ids)."""
    m = order.shape[0]
    at = np.zeros(m + 1, np.int64)  # where each sorted destination's picks start
    for i in range(m):
        at[i + 1] = at[i] + counts_sorted[i]
    per = np.empty(m, np.int64)
    for i in range(m):
        per[order[i]] = i
    offsets = np.zeros(m + 1, np.int64)
    for i in range(m):
        offsets[i + 1] = offsets[i] + counts_sorted[per[i]]
    src = np.empty(offsets[m], np.int64)
    eid = np.empty(offsets[m], np.int64)
    for i in range(m):
        a = at[per[i]]
        o = offsets[i]
        for j in range(offsets[i + 1] - o):
            src[o + j] = src_sorted[a + j]
            eid[o + j] = eid_sorted[a + j]
    return offsets, src, eid


_MOVE_AHEAD = 8  # rows ahead whose source and destination lines move_rows prefetches


@njit(nogil=True, parallel=PRANGE_ONLY, cache=True)
def move_rows(src, src_idx, dst_idx, out):
    """``out[dst_idx[i]] = src[src_idx[i]]`` (``src_idx`` empty: ``src[i]``) for 2-D word views
    of rows: a fetch's rows land in request order without an intermediate copy."""
    d = src.shape[1]
    n = dst_idx.shape[0]
    gathered = src_idx.shape[0] > 0
    for i in prange(n):
        k = i + _MOVE_AHEAD
        if k < n:
            # The rows land (and, from a table, come) at random: ask for them now so that
            # their misses overlap this row's copy (40k rows of 400 B: 0.82-0.91x the time).
            prefetch_row_write(out, dst_idx[k])
            if gathered:
                prefetch_row(src, src_idx[k])
        r = np.int64(i)
        if gathered:
            r = np.int64(src_idx[i])
        o = np.int64(dst_idx[i])
        for j in range(d):
            out[o, j] = src[r, j]


move_rows_serial = serial_twin(move_rows, "move_rows_serial")


# ---------------------------------------------------------------------- one hop's wire format
# Requests travel as rows (destination[, tree][, edge type]) in the wire dtype, sorted by owner;
# replies as one padded row per request: its pick count, then ``width`` (source, edge id)
# pairs. A fixed row width lets the requester size the reply buffer itself, so a hop is two
# exchanges (request counts, requests) plus one (replies) instead of four.
@njit(nogil=True, cache=True)
def route_requests(dst, node_part, tree, etype, size, req):
    """Fill ``req`` (rows of the wire dtype, 1 + [tree] + [etype] columns) with the frontier's
    requests grouped by owner (stable: each owner's in frontier order). Returns (order, counts):
    the frontier position of each request row, and how many rows each of ``size`` owners gets
    (a counting sort: one pass, no argsort)."""
    m = dst.shape[0]
    counts = np.zeros(size, np.int64)
    for i in range(m):
        counts[node_part[dst[i]]] += 1
    at = np.zeros(size, np.int64)
    for r in range(1, size):
        at[r] = at[r - 1] + counts[r - 1]
    order = np.empty(m, np.int64)
    cols = req.shape[1]
    for i in range(m):
        o = node_part[dst[i]]
        p = at[o]
        at[o] = p + 1
        order[p] = i
        req[p, 0] = dst[i]
        if tree.shape[0] > 0:
            req[p, 1] = tree[i]
        if etype.shape[0] > 0:
            req[p, cols - 1] = etype[i]
    return order, counts


@njit(nogil=True, cache=True)
def pad_reply(offsets, src, eid, reply):
    """Request i's picks ``src/eid[offsets[i]:offsets[i+1]]`` into reply row i: the count in
    column 0, then (source, edge id) pairs, then zeros (no stale memory goes on the wire)."""
    for i in range(offsets.shape[0] - 1):
        o = offsets[i]
        k = offsets[i + 1] - o
        reply[i, 0] = k
        for j in range(k):
            reply[i, 1 + 2 * j] = src[o + j]
            reply[i, 2 + 2 * j] = eid[o + j]
        for c in range(1 + 2 * k, reply.shape[1]):
            reply[i, c] = 0


@njit(nogil=True, cache=True)
def unpad_regroup(order, reply):
    """The padded replies (row i answers the frontier position ``order[i]``) back in frontier
    order. Returns (offsets [m+1], sources, edge ids) as int64."""
    m = order.shape[0]
    row_of = np.empty(m, np.int64)
    for i in range(m):
        row_of[order[i]] = i
    offsets = np.zeros(m + 1, np.int64)
    for q in range(m):
        offsets[q + 1] = offsets[q] + np.int64(reply[row_of[q], 0])
    src = np.empty(offsets[m], np.int64)
    eid = np.empty(offsets[m], np.int64)
    for q in range(m):
        r = row_of[q]
        o = offsets[q]
        for j in range(offsets[q + 1] - o):
            src[o + j] = np.int64(reply[r, 1 + 2 * j])
            eid[o + j] = np.int64(reply[r, 2 + 2 * j])
    return offsets, src, eid


@njit(nogil=True, cache=True)
def _coo_fill(ei, p, rows, d0, offsets, lo, hi):
    # One segment's edges at ei[:, p:]: sources ``rows``, destination d0 + its column.
    for j in range(lo, hi - 1):
        for q in range(offsets[j] - offsets[lo], offsets[j + 1] - offsets[lo]):
            ei[0, p + q] = rows[q]
            ei[1, p + q] = d0 + (j - lo)
    return p + offsets[hi - 1] - offsets[lo]


def coo_edges(rows, dst_start, offsets, iptr):
    """A batch's edges as one [2, E] int64 array (sources, destinations): segment s has the
    sources ``rows[s]`` and the CSC offsets ``offsets[iptr[s]:iptr[s+1]]``, so its j-th
    column's edges go to destination ``dst_start[s] + j``; segments follow each other."""
    total = sum(r.shape[0] for r in rows)
    ei = np.empty((2, total), np.int64)
    p = 0
    for s, r in enumerate(rows):
        p = _coo_fill(ei, p, r, dst_start[s], offsets, iptr[s], iptr[s + 1])
    return ei


@njit(nogil=True, cache=True)
def local_rows_of(local_of, ids):
    """``local_of[ids]`` as int64 and the position of the first id this part does not own
    (``local_of`` -1), or -1 when it owns them all."""
    rows = np.empty(ids.shape[0], np.int64)
    bad = -1
    m = ids.shape[0]
    for i in range(m):
        if i + _AHEAD < m:
            prefetch(local_of, ids[i + _AHEAD])
        r = np.int64(local_of[ids[i]])
        rows[i] = r
        if r < 0 and bad < 0:
            bad = i
    return rows, bad


@njit(nogil=True, cache=True)
def split_fetch(ids, node_part, rank, size, cache_of):
    """Sort a fetch's global ``ids`` by where their rows are: this rank's own (``node_part``
    == ``rank``), its cache (``cache_of[id]`` >= 0; empty: no cache), or another rank.

    Returns (own positions, cache-hit positions, their cache slots, the other positions grouped
    by owner (stable), their ids, how many each of ``size`` ranks is asked for)."""
    n = ids.shape[0]
    cached = cache_of.shape[0] > 0
    counts = np.zeros(size, np.int64)
    n_own = 0
    n_hit = 0
    for i in range(n):
        o = node_part[ids[i]]
        if o == rank:
            n_own += 1
        elif cached and cache_of[ids[i]] >= 0:
            n_hit += 1
        else:
            counts[o] += 1
    own = np.empty(n_own, np.int64)
    hit = np.empty(n_hit, np.int64)
    slot = np.empty(n_hit, np.int64)
    at = np.zeros(size, np.int64)
    for r in range(1, size):
        at[r] = at[r - 1] + counts[r - 1]
    away = np.empty(n - n_own - n_hit, np.int64)
    away_ids = np.empty(away.shape[0], np.int64)
    a = 0
    h = 0
    for i in range(n):
        v = ids[i]
        o = node_part[v]
        if o == rank:
            own[a] = i
            a += 1
        elif cached and cache_of[v] >= 0:
            hit[h] = i
            slot[h] = cache_of[v]
            h += 1
        else:
            p = at[o]
            at[o] = p + 1
            away[p] = i
            away_ids[p] = v
    return own, hit, slot, away, away_ids, counts
