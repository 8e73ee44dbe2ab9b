"""Node tables split over machines: each rank holds its owned rows and fetches the rest.

``DistTable`` looks like one [N, ...] table to a ``FeatureStore`` (it has ``shape`` and is
indexed by global ids), so the one Loader's fetch stage gathers from it unchanged. A fetch is
one request / reply round, for all the tables of a batch at once (``fetch_tables``, which the
Loader reaches through ``FeatureStore.fetch_many``): the ids go to their owners, which gather
their rows locally and send them back (``Exchange``, bytes counted under ``feature_request``
and ``features``). Like the sampler it is a collective: every rank fetches the same tables in
the same order, once per batch.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist

from gnnsys.distributed._kernels import move_rows, move_rows_serial, split_fetch
from gnnsys.distributed.graph import DistGraph
from gnnsys.features import BufferPool, FeatureStore, _as_words, gather_rows
from gnnsys.unified_tensor import gather_cpu


class DistTable:
    """A node table of the whole graph, of which this rank holds the rows it owns.

    Args:
        graph: the ``DistGraph`` (its owner map, local rows and exchange).
        rows: this part's rows, in ``graph.owned`` order (numpy, memmap or tensor).
        name: used in byte counts and messages.
        ntype: on a typed graph, the node type whose table this is: ``rows`` are this part's
            owned nodes of that type (in ``owned`` order) and ids are ids within the type, as
            the loaders' typed tables (``(node type, name)`` keys) are read. None: every node,
            by global id.
        cache_rows: also keep this many other parts' rows here: the sources this part's
            in-edges name most often (its hottest halo), fetched once at construction. Their
            values are the owners', so batches are unchanged; fewer rows travel per batch.
            Collective: every rank caches (any number of rows) or none does (checked).

    Example:
        >>> x = DistTable(dist_graph, part.x, "x", cache_rows=20_000)
        >>> x[torch.tensor([0, 5])].shape  # collective: every rank fetches at once
    """

    def __init__(
        self,
        graph: DistGraph,
        rows: Any,
        name: str = "x",
        *,
        cache_rows: int = 0,
        ntype: Optional[str] = None,
    ) -> None:
        if not isinstance(graph, DistGraph):
            raise TypeError(f"graph must be a DistGraph, got {type(graph).__name__}")
        # this table's nodes: global ids offset..offset+count-1, rows owned[lo:hi] of the part
        self.ntype = ntype
        t = graph.node_type_id(ntype) if ntype is not None else None
        self.offset = int(graph.node_type_offset[t]) if t is not None else 0
        count = int(graph.node_type_offset[t + 1]) - self.offset if t is not None else None
        self.row_lo, hi = graph.owned_range(t) if t is not None else (0, graph.owned.shape[0])
        if rows.shape[0] != hi - self.row_lo:
            what = f"owned {ntype!r} nodes" if ntype is not None else "owned nodes"
            raise ValueError(
                f"table {name!r} of part {graph.part} has {rows.shape[0]} rows for "
                f"{hi - self.row_lo} {what}"
            )
        if isinstance(cache_rows, bool) or not isinstance(cache_rows, (int, np.integer)):
            raise TypeError(f"cache_rows must be an int, got {cache_rows!r}")
        if cache_rows < 0:
            raise ValueError(f"cache_rows must be >= 0, got {cache_rows}")
        self.graph = graph
        if graph.in_memory and isinstance(rows, np.memmap):  # this machine's rows, in RAM
            rows = np.array(rows)
        self.rows = rows if isinstance(rows, torch.Tensor) else torch.from_numpy(np.asarray(rows))
        self.name = name
        n = graph.num_nodes if count is None else count
        self.shape: Tuple[int, ...] = (n,) + tuple(self.rows.shape[1:])
        self.dtype = self.rows.dtype
        self.cache_ids = np.empty(0, np.int64)
        # Batch outputs: reused once the caller drops a batch (a fresh one faults in every
        # page). A Loader with 8 lanes holds up to ~19 batches (8 being built, its prefetch
        # window of workers + 2 ready, the consumer's); the pool never holds more buffers
        # than were alive at once.
        self._pool = BufferPool(max_buffers=32)
        self._cache: Optional[torch.Tensor] = None
        self._cache_of: Optional[np.ndarray] = None
        self._fill_cache(int(cache_rows))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return (
            f"DistTable({self.name!r}, shape={self.shape}, owned={self.rows.shape[0]}, "
            f"cached={self.cache_ids.shape[0]})"
        )

    def _fill_cache(self, cache_rows: int) -> None:
        g = self.graph
        if g.exchange.size == 1:
            return
        on = int(cache_rows > 0)
        agree = torch.tensor([on, -on])
        dist.all_reduce(agree, op=dist.ReduceOp.MAX, group=g.exchange.group)
        if int(agree[0]) != -int(agree[1]):  # the fill is a collective: all ranks or none
            raise ValueError(
                f"table {self.name!r}: some ranks cache other parts' rows and some do not "
                "(cache_rows 0 on some); give every rank a cache or none"
            )
        if cache_rows == 0:
            return
        src = np.asarray(g.indices)
        if self.ntype is not None:  # sources of this table's type
            src = src[(src >= self.offset) & (src < self.offset + self.shape[0])]
        away = src[g.owner(src) != g.part]
        ids, refs = np.unique(away, return_counts=True)
        hot = np.sort(ids[np.argsort(-refs, kind="stable")[:cache_rows]])
        rows = self[torch.from_numpy(hot - self.offset)]  # one fetch, before the cache is live
        self.cache_ids, self._cache = hot, rows
        self._cache_of = np.full(g.num_nodes, -1, np.int32)
        self._cache_of[hot] = np.arange(hot.shape[0], dtype=np.int32)

    def __getitem__(self, ids: Any) -> torch.Tensor:
        """Rows of ``ids`` (global ids; ids within the type for a typed table; validated by the
        ``FeatureStore``), in ``ids`` order. This rank's own rows and its cached ones are copied
        in place; only the others travel. Collective (``fetch_tables`` of this table alone)."""
        return fetch_tables([self], [ids])[0]

    # ``FeatureStore.fetch_many`` fetches the tables of one group together
    # (``fetch_together``): those of one graph share its exchanges.
    @property
    def fetch_group(self) -> Any:
        return id(self.graph)

    @staticmethod
    def fetch_together(tables: Sequence[DistTable], ids: Sequence[Any]) -> List[torch.Tensor]:
        return fetch_tables(tables, ids)

    def _local_part(self, ids: Any) -> Tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
        """The rows of ``ids`` this rank has (owned, cached) copied into a new output; returns
        (output, the positions still missing, grouped by owner, their global ids, how many of
        them each rank owns)."""
        g = self.graph
        ex = g.exchange
        ids_np = torch.as_tensor(ids).numpy().astype(np.int64, copy=False)
        if self.offset:
            ids_np = ids_np + self.offset
        out = self._pool.take(ids_np.shape[0], tuple(self.rows.shape[1:]), self.rows.dtype)
        cache_of = self._cache_of if self._cache_of is not None else _NO_SLOTS  # (none alone)
        own, hit, slot, away, away_ids, send = split_fetch(
            ids_np, g.node_part, ex.rank, ex.size, cache_of
        )
        _move(self.rows, self._rows_of(ids_np[own]), own, out)
        if hit.shape[0]:
            _move(self._cache, slot, hit, out)
        return out, away, away_ids, send

    def _row_bytes(self) -> int:
        return self.rows.element_size() * int(np.prod(self.rows.shape[1:], dtype=np.int64))

    def _rows_of(self, global_ids: np.ndarray) -> np.ndarray:
        """This part's row in ``rows`` of each owned global id."""
        rows = self.graph.local_rows(global_ids)
        return rows - self.row_lo if self.row_lo else rows


_NO_ROWS = np.empty(0, np.int64)
_NO_SLOTS = np.empty(0, np.int32)


def fetch_tables(tables: Sequence[DistTable], ids: Sequence[Any]) -> List[torch.Tensor]:
    """Rows ``ids[t]`` of each table ``tables[t]`` (all of one ``DistGraph``), in one request /
    reply round for all of them: the request counts (per rank and table), the ids, then every
    table's rows as bytes (each table's block 8-byte aligned). Collective: every rank passes
    the same tables in the same order.

    Example:
        >>> x, y = fetch_tables([g.ndata["x"], g.ndata["y"]], [input_nodes, seeds])
    """
    g = tables[0].graph
    if any(t.graph is not g for t in tables):
        raise ValueError("fetch_tables takes tables of one DistGraph")
    ex = g.exchange
    parts = [t._local_part(i) for t, i in zip(tables, ids)]
    outs = [p[0] for p in parts]
    if ex.size == 1:
        return outs
    size, nt = ex.size, len(tables)
    asks = np.stack([p[3] for p in parts], axis=1)  # [rank, table]: rows asked of each owner
    # 1. counts, 2. ids (per owner, table after table)
    got_asks, _ = ex.alltoallv(torch.from_numpy(asks.reshape(-1)), np.full(size, nt),
                               "feature_request", recv_counts=np.full(size, nt))  # fmt: skip
    asked_of_me = got_asks.numpy().reshape(size, nt)  # [requester, table]
    starts = [np.concatenate(([0], np.cumsum(p[3]))) for p in parts]
    req = np.concatenate(
        [parts[t][2][starts[t][r] : starts[t][r + 1]] for r in range(size) for t in range(nt)]
    ).astype(g.wire_dtype)  # fmt: skip
    got_ids, _ = ex.alltoallv(torch.from_numpy(req), asks.sum(axis=1), "feature_request",
                              recv_counts=asked_of_me.sum(axis=1))  # fmt: skip
    asked_ids = got_ids.numpy().astype(np.int64)
    # 3. rows: each requester's block holds table after table, each padded to 8 bytes
    widths = np.asarray([t._row_bytes() for t in tables], np.int64)
    reply_layout = _byte_layout(asked_of_me, widths)
    reply = ex.pool.take(int(reply_layout[-1, -1]), (), torch.uint8)
    at = 0
    for r in range(size):
        for t, table in enumerate(tables):
            n = int(asked_of_me[r, t])
            if n:
                local = torch.from_numpy(table._rows_of(asked_ids[at : at + n]))
                gather_rows(table.rows, local, out=_rows_view(reply, reply_layout[r, t], n, table))
            at += n
    recv_layout = _byte_layout(asks, widths)
    got, _ = ex.alltoallv(reply, np.diff(reply_layout[:, [0, -1]], axis=1)[:, 0], "features",
                          recv_counts=np.diff(recv_layout[:, [0, -1]], axis=1)[:, 0])  # fmt: skip
    for t, table in enumerate(tables):
        away = parts[t][1]
        for r in range(size):
            n = int(asks[r, t])
            if n:
                lo = starts[t][r]
                rows = _rows_view(got, recv_layout[r, t], n, table)
                _move(rows, _NO_ROWS, away[lo : lo + n], outs[t])
    return outs


def _byte_layout(counts: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """[rank, table + 1] byte offsets of a reply buffer holding, rank after rank, ``counts[r,
    t]`` rows of ``widths[t]`` bytes for each table, every block starting 8-byte aligned;
    entry [r, -1] is where rank r's blocks end (``[r + 1, 0]``)."""
    size, nt = counts.shape
    lay = np.zeros((size, nt + 1), np.int64)
    at = 0
    for r in range(size):
        for t in range(nt):
            lay[r, t] = at
            at += -(-int(counts[r, t]) * int(widths[t]) // 8) * 8
        lay[r, nt] = at
    return lay


def _rows_view(buf: torch.Tensor, offset: int, n: int, table: DistTable) -> torch.Tensor:
    """``n`` rows of ``table``'s dtype and row shape, in the byte buffer ``buf`` at ``offset``."""
    nbytes = n * table._row_bytes()
    return (
        buf[int(offset) : int(offset) + nbytes]
        .view(table.rows.dtype)
        .view((n,) + tuple(table.rows.shape[1:]))
    )


def _move(src: torch.Tensor, src_idx: np.ndarray, dst_idx: np.ndarray, out: torch.Tensor) -> None:
    """``out[dst_idx] = src[src_idx]`` (``src_idx`` empty: all of ``src`` in order), by the
    row kernel when the rows have a word view (parallel when it pays, as the gathers decide),
    else by torch."""
    if dst_idx.shape[0] == 0:
        return
    s, o = _as_words(src), _as_words(out)
    if s is not None and o is not None and s.dtype == o.dtype:
        nbytes = dst_idx.shape[0] * o.shape[1] * o.itemsize
        move = move_rows if gather_cpu.use_parallel(nbytes) else move_rows_serial
        move(s, src_idx, dst_idx, o)
        return
    rows = src[torch.from_numpy(src_idx)] if src_idx.shape[0] else src
    out.index_copy_(0, torch.from_numpy(dst_idx), rows)


def dist_feature_store(graph: DistGraph, *, cache: Optional[dict] = None, **tables: Any):
    """A ``FeatureStore`` of ``DistTable``s, one per keyword: this part's rows, or a
    ``DistTable`` (``graph.ndata``'s) whose rows are shared; ``cache`` maps a table name to its
    ``cache_rows``. Collective (every rank builds the same store). A typed graph's tables are
    keyed ``(node type, name)``: ``FeatureStore(g.ndata)`` holds them all.

    Example:
        >>> store = dist_feature_store(g, x=g.ndata["x"], y=g.ndata["y"], cache={"x": 20_000})
    """
    cache = cache or {}
    unknown = set(cache) - set(tables)
    if unknown:
        raise ValueError(f"cache names {sorted(unknown)}, which are not tables here")
    out = {}
    for k, v in tables.items():
        c = cache.get(k, 0)
        if isinstance(v, DistTable):  # e.g. graph.ndata's: share its rows, no copy
            out[k] = v if not c else DistTable(graph, v.rows, k, cache_rows=c, ntype=v.ntype)
        else:
            out[k] = DistTable(graph, v, k, cache_rows=c)
    return FeatureStore(out)
