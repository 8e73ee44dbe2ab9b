"""Block: one layer of a sampled message-flow graph, with the API DGL models use.

A block is a bipartite graph from ``num_src_nodes()`` source (input) nodes to ``num_dst_nodes()``
destination (output) nodes. As in DGL, the destination nodes are the first ``num_dst_nodes()``
source nodes, so a layer can read its destinations' own features as ``h[:num_dst_nodes()]``.
Edges are stored as a local CSC (grouped by destination); the local edge id of an edge is its
CSC position, which is the order ``edges()``, ``edata`` and ``adj_csc()`` share.

Node and edge data live in frames (``srcdata``, ``dstdata``, ``edata``): dicts of tensors with
one row per node or edge, checked on assignment. A frame may also see its parent graph's data
lazily, as DGL's sampled blocks do: ``block.srcdata["feat"]`` gathers the parent's ``feat`` rows
of the block's nodes on first access. ``dstdata`` reuses the first rows of a column already
gathered for ``srcdata`` instead of gathering again.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List, Mapping, MutableMapping, Optional, Tuple, Union

import torch

from gnnsys._checks import check_choice

NID = "_ID"
EID = "_ID"

DeviceLike = Union[str, torch.device]

# DGL's names for the single node and edge type of a homogeneous graph.
NTYPE = "_N"
ETYPE = "_E"
CANONICAL_ETYPE = (NTYPE, ETYPE, NTYPE)
# An edge type as DGL takes it: a name or a (src type, name, dst type) triple.
ETypeLike = Union[str, Tuple[str, str, str], None]


def check_ntype(ntype: Any) -> None:
    """Accept None or DGL's homogeneous node type ``"_N"``; anything else is a ValueError.

    gnnsys graphs have one node type, so a typed query (``num_src_nodes("paper")``) would
    otherwise count nodes of a type that does not exist.
    """
    if ntype is not None and ntype != NTYPE:
        raise ValueError(
            f"ntype={ntype!r}: this graph is homogeneous; its only node type is {NTYPE!r} "
            "(pass None or omit ntype)"
        )


def check_etype(etype: Any) -> None:
    """Accept None, ``"_E"`` or ``("_N", "_E", "_N")`` (DGL's homogeneous edge type)."""
    if etype is None or etype == ETYPE:
        return
    if isinstance(etype, (tuple, list)) and tuple(etype) == CANONICAL_ETYPE:
        return
    raise ValueError(
        f"etype={etype!r}: this graph is homogeneous; its only edge type is {ETYPE!r} "
        f"(canonical {CANONICAL_ETYPE}; pass None or omit etype)"
    )


class _Frame(MutableMapping):
    """Columns of per-node or per-edge data, each with ``num_rows`` rows, on one device.

    ``parent`` (name -> tensor, rows indexed by ``parent_ids``) supplies lazy columns: a missing
    key that the parent has is gathered on first access and cached. ``prefix_of`` (the source
    frame of the same block) lets a destination frame reuse the first rows of a column the
    source frame already gathered from the parent.
    """

    def __init__(
        self,
        num_rows: int,
        device: torch.device,
        *,
        what: str = "node",
        parent: Optional[Mapping[str, torch.Tensor]] = None,
        parent_ids: Optional[torch.Tensor] = None,
        prefix_of: Optional[_Frame] = None,
    ) -> None:
        self.num_rows = int(num_rows)
        self.device = device
        self.what = what
        self._store: Dict[str, torch.Tensor] = {}
        self._inherited: set = set()  # keys whose values come from the parent graph
        self._hidden: set = set()  # parent keys the user deleted
        self._parent = parent if parent is not None and parent_ids is not None else None
        self._parent_ids = parent_ids
        self._prefix_of = prefix_of

    # -------------------------------------------------------------- mapping protocol
    def _visible_parent_keys(self) -> List[str]:
        if self._parent is None:
            return []
        return [k for k in self._parent if k not in self._store and k not in self._hidden]

    def keys(self):  # type: ignore[override]
        return list(self._store) + self._visible_parent_keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, key: object) -> bool:
        if key in self._store:
            return True
        return self._parent is not None and key in self._parent and key not in self._hidden

    def __getitem__(self, key: str) -> torch.Tensor:
        value = self._store.get(key)
        if value is not None:
            return value
        if key in self._hidden or self._parent is None or key not in self._parent:
            raise KeyError(f"no {self.what} data named {key!r}; available: {self.keys()}")
        src = self._prefix_of
        if src is not None and key in src._inherited and key in src._store:
            value = src._store[key][: self.num_rows]
        else:
            value = _gather_rows(self._parent[key], self._parent_ids).to(self.device)
        self._store[key] = value
        self._inherited.add(key)
        return value

    def __setitem__(self, key: str, value: torch.Tensor) -> None:
        self._check_value(key, value)
        self._store[key] = value
        self._inherited.discard(key)
        self._hidden.discard(key)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(f"no {self.what} data named {key!r}; available: {self.keys()}")
        self._store.pop(key, None)
        self._inherited.discard(key)
        if self._parent is not None and key in self._parent:
            self._hidden.add(key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.what}s={self.num_rows}, keys={self.keys()})"

    # -------------------------------------------------------------- internals
    def _check_value(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"{self.what} data keys must be str, got {type(key).__name__}")
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{self.what} data {key!r} must be a torch.Tensor, got {type(value).__name__}"
            )
        if value.dim() == 0 or value.shape[0] != self.num_rows:
            got = value.shape[0] if value.dim() else "a scalar"
            raise ValueError(
                f"{self.what} data {key!r} must have {self.num_rows} rows "
                f"(one per {self.what}), got {got}"
            )
        if value.device.type != self.device.type:
            raise ValueError(
                f"{self.what} data {key!r} is on {value.device} but the graph is on {self.device}"
            )

    def _set_inherited(self, key: str, value: torch.Tensor) -> None:
        """Store a column that came from the parent graph (prefetched features, labels, ids)."""
        self._check_value(key, value)
        self._store[key] = value
        self._inherited.add(key)
        self._hidden.discard(key)

    def _snapshot(self) -> Tuple[dict, set, set]:
        return dict(self._store), set(self._inherited), set(self._hidden)

    def _restore(self, snap: Tuple[dict, set, set]) -> None:
        self._store, self._inherited, self._hidden = dict(snap[0]), set(snap[1]), set(snap[2])

    def _moved(self, device: torch.device, prefix_of: Optional[_Frame], **kw: Any) -> _Frame:
        out = _Frame(
            self.num_rows,
            device,
            what=self.what,
            parent=self._parent,
            parent_ids=self._parent_ids,
            prefix_of=prefix_of,
        )
        out._store = {k: v.to(device, **kw) for k, v in self._store.items()}
        out._inherited = set(self._inherited)
        out._hidden = set(self._hidden)
        return out


@contextlib.contextmanager
def _scope(frames: Tuple[_Frame, ...]) -> Iterator[None]:
    """Undo column assignments and deletions on ``frames`` at exit (a graph's local_scope)."""
    snaps = [f._snapshot() for f in frames]
    try:
        yield
    finally:
        for f, s in zip(frames, snaps):
            f._restore(s)


def _gather_rows(table: Any, ids: torch.Tensor) -> torch.Tensor:
    if isinstance(table, torch.Tensor):
        return table[ids.to(table.device)]
    return torch.as_tensor(table[ids.cpu().numpy()])


class _NodeView:
    """``block.srcnodes`` / ``block.dstnodes``: call it for the local ids, ``.data`` for the frame."""

    def __init__(self, num: int, frame: _Frame) -> None:
        self._num = num
        self._frame = frame

    def __call__(self, ntype: Optional[str] = None) -> torch.Tensor:
        check_ntype(ntype)
        return torch.arange(self._num, dtype=torch.int64, device=self._frame.device)

    @property
    def data(self) -> _Frame:
        return self._frame

    def __len__(self) -> int:
        return self._num


class Block:
    """A bipartite message-flow graph (one GNN layer) with DGL's block API.

    Args:
        indptr: int64 [num_dst+1] local CSC column starts (edges into destination ``v`` are
            ``indptr[v]:indptr[v+1]``).
        indices: integer [E] local source id of each edge, in ``0..num_src_nodes-1``.
        num_src_nodes: number of source nodes; the first ``num_dst`` of them are the
            destination nodes.
        src_ids: optional int64 [num_src_nodes] global ids of the source nodes, stored as
            ``srcdata["_ID"]`` (and its first rows as ``dstdata["_ID"]``).
        edge_ids: optional int64 [E] global edge ids, stored as ``edata["_ID"]``.
        node_parent: optional name -> tensor of the parent graph's node data, indexed by
            ``src_ids``; its columns appear lazily in ``srcdata`` and ``dstdata``.
        edge_parent: optional name -> tensor of the parent graph's edge data, with
            ``edge_parent_ids`` (default ``edge_ids``) the rows of this block's edges.
        validate: check shapes, dtypes and id ranges (off for trusted sampler output).

    A block is homogeneous: one node type ``"_N"`` and one edge type ``"_E"`` (DGL's default
    names). Methods taking ``ntype`` / ``etype`` accept None or those names (an edge type also
    as ``("_N", "_E", "_N")``) and raise ValueError for any other type.

    Example:
        >>> b = Block(torch.tensor([0, 2, 3]), torch.tensor([1, 2, 0]), 3)
        >>> b.num_src_nodes(), b.num_dst_nodes(), b.num_edges()
        (3, 2, 3)
        >>> b.in_degrees().tolist()
        [2, 1]
    """

    is_block = True

    def __init__(
        self,
        indptr: torch.Tensor,
        indices: torch.Tensor,
        num_src_nodes: int,
        *,
        src_ids: Optional[torch.Tensor] = None,
        edge_ids: Optional[torch.Tensor] = None,
        node_parent: Optional[Mapping[str, torch.Tensor]] = None,
        edge_parent: Optional[Mapping[str, torch.Tensor]] = None,
        edge_parent_ids: Optional[torch.Tensor] = None,
        validate: bool = True,
    ) -> None:
        if validate:
            _validate_block(indptr, indices, num_src_nodes, src_ids, edge_ids)
        self._indptr = indptr
        self._indices = indices
        self._num_src = int(num_src_nodes)
        self._num_dst = indptr.numel() - 1
        dev = indptr.device
        if edge_parent_ids is None:
            edge_parent_ids = edge_ids
        self._srcframe = _Frame(
            self._num_src, dev, parent=node_parent, parent_ids=src_ids, what="source node"
        )
        self._dstframe = _Frame(
            self._num_dst,
            dev,
            parent=node_parent,
            parent_ids=src_ids[: self._num_dst] if src_ids is not None else None,
            prefix_of=self._srcframe,
            what="destination node",
        )
        self._eframe = _Frame(
            self.num_edges(), dev, parent=edge_parent, parent_ids=edge_parent_ids, what="edge"
        )
        if src_ids is not None:
            ids = src_ids.to(dev)
            self._srcframe._set_inherited(NID, ids)
            self._dstframe._set_inherited(NID, ids[: self._num_dst])
        if edge_ids is not None:
            self._eframe._set_inherited(EID, edge_ids.to(dev))

    # ------------------------------------------------------------------ sizes
    def num_src_nodes(self, ntype: Optional[str] = None) -> int:
        """Number of source (input) nodes."""
        check_ntype(ntype)
        return self._num_src

    def num_dst_nodes(self, ntype: Optional[str] = None) -> int:
        """Number of destination (output) nodes: the first ``num_dst_nodes()`` source nodes."""
        check_ntype(ntype)
        return self._num_dst

    def num_edges(self, etype: ETypeLike = None) -> int:
        """Number of edges."""
        check_etype(etype)
        return self._indices.numel()

    def num_nodes(self, ntype: Optional[str] = None) -> int:
        """Source plus destination nodes, as DGL counts a block's nodes."""
        check_ntype(ntype)
        return self._num_src + self._num_dst

    number_of_src_nodes = num_src_nodes
    number_of_dst_nodes = num_dst_nodes
    number_of_edges = num_edges
    number_of_nodes = num_nodes

    # ------------------------------------------------------------------ type metadata (homogeneous)
    # One node type and one edge type, under DGL's default names; every method taking ``ntype``
    # or ``etype`` accepts None or these names and refuses others (``check_ntype``).
    ntypes = [NTYPE, NTYPE]
    srctypes = [NTYPE]
    dsttypes = [NTYPE]
    etypes = [ETYPE]
    canonical_etypes = [CANONICAL_ETYPE]
    idtype = torch.int64

    @property
    def device(self) -> torch.device:
        """The device of the structure and of every data column."""
        return self._indptr.device

    # ------------------------------------------------------------------ data
    @property
    def srcdata(self) -> _Frame:
        """Per-source-node data (``srcdata["_ID"]`` = global node ids)."""
        return self._srcframe

    @property
    def dstdata(self) -> _Frame:
        """Per-destination-node data (``dstdata["_ID"]`` = the first source ids)."""
        return self._dstframe

    @property
    def edata(self) -> _Frame:
        """Per-edge data in local edge id (CSC) order (``edata["_ID"]`` = global edge ids)."""
        return self._eframe

    @property
    def ndata(self) -> _Frame:
        """Source-node data, as ``block.ndata`` in DGL."""
        return self._srcframe

    @property
    def srcnodes(self) -> _NodeView:
        return _NodeView(self._num_src, self._srcframe)

    @property
    def dstnodes(self) -> _NodeView:
        return _NodeView(self._num_dst, self._dstframe)

    # ------------------------------------------------------------------ structure
    def adj_csc(self) -> Tuple[torch.Tensor, torch.Tensor, int, int]:
        """(indptr, indices, num_src, num_dst): the adjacency protocol gnnsys.nn layers read."""
        return self._indptr, self._indices, self._num_src, self._num_dst

    def _dst_of_edges(self) -> torch.Tensor:
        deg = self._indptr[1:] - self._indptr[:-1]
        return torch.repeat_interleave(
            torch.arange(self._num_dst, dtype=torch.int64, device=self.device),
            deg,
            output_size=self.num_edges(),
        )

    def edges(
        self, form: str = "uv", order: str = "eid", etype: ETypeLike = None
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        """Edges as local ids: ``form`` 'uv' -> (src, dst), 'eid' -> edge ids, 'all' -> (src,
        dst, eid); ``order`` 'eid' (by edge id) or 'srcdst' (by source, then destination).

        Example:
            >>> Block(torch.tensor([0, 1]), torch.tensor([1]), 2).edges()
            (tensor([1]), tensor([0]))
        """
        check_etype(etype)
        if form == "eid" and order == "eid":
            return torch.arange(self.num_edges(), dtype=torch.int64, device=self.device)
        return edge_view(self._indices.long(), self._dst_of_edges(), form, order, dst_sorted=True)

    all_edges = edges

    def in_degrees(self, v: Any = None, etype: ETypeLike = None) -> Union[int, torch.Tensor]:
        """In-degree of destination nodes ``v`` (all when None); an int for an int ``v``."""
        check_etype(etype)
        deg = self._indptr[1:] - self._indptr[:-1]
        return _select(deg, v, "v", self._num_dst)

    def out_degrees(self, u: Any = None, etype: ETypeLike = None) -> Union[int, torch.Tensor]:
        """Out-degree of source nodes ``u`` (all when None); an int for an int ``u``."""
        check_etype(etype)
        deg = torch.bincount(self._indices.long(), minlength=self._num_src)
        return _select(deg, u, "u", self._num_src)

    # ------------------------------------------------------------------ scopes and devices
    @contextlib.contextmanager
    def local_scope(self) -> Iterator[Block]:
        """Within the block, data assigned or deleted is undone on exit (as DGL's local_scope).

        In-place changes to existing tensors are not undone. Example:
            >>> with block.local_scope():
            ...     block.srcdata["h"] = h      # gone after the with-block
        """
        with _scope(self._frames()):
            yield self

    def _frames(self) -> Tuple[_Frame, ...]:
        return (self._srcframe, self._dstframe, self._eframe)

    def to(self, device: DeviceLike, **kwargs: Any) -> Block:
        """A copy of the block with its structure and data on ``device`` (kwargs go to
        ``Tensor.to``, e.g. ``non_blocking=True``)."""
        dev = torch.device(device)
        if dev == self.device:
            return self
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out._indptr = self._indptr.to(dev, **kwargs)
        out._indices = self._indices.to(dev, **kwargs)
        out._srcframe = self._srcframe._moved(dev, None, **kwargs)
        out._dstframe = self._dstframe._moved(dev, out._srcframe, **kwargs)
        out._eframe = self._eframe._moved(dev, None, **kwargs)
        return out

    def cpu(self) -> Block:
        return self.to("cpu")

    def create_formats_(self) -> None:
        """No-op: the block keeps one format (CSC)."""

    def __repr__(self) -> str:
        return (
            f"Block(num_src_nodes={self._num_src}, num_dst_nodes={self._num_dst}, "
            f"num_edges={self.num_edges()})"
        )


def edge_view(
    src: torch.Tensor, dst: torch.Tensor, form: str, order: str, *, dst_sorted: bool = False
) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
    """DGL's ``edges(form, order)`` over edge lists ``src``/``dst`` (edge id = position):
    ``form`` 'uv' -> (src, dst), 'eid' -> edge ids, 'all' -> (src, dst, eid); ``order`` 'eid'
    or 'srcdst' (by source, then destination). ``dst_sorted``: the edges are already ordered by
    destination (CSC), so one stable sort by source gives (src, dst) order.

    Example:
        >>> edge_view(torch.tensor([1, 0]), torch.tensor([0, 1]), "all", "srcdst")
        (tensor([0, 1]), tensor([1, 0]), tensor([1, 0]))
    """
    check_choice("form", form, ("uv", "eid", "all"))
    check_choice("order", order, ("eid", "srcdst"))
    eid = torch.arange(src.numel(), dtype=torch.int64, device=src.device)
    if order == "srcdst":
        perm = None if dst_sorted else torch.sort(dst, stable=True).indices
        by_dst = src if perm is None else src[perm]
        by_src = torch.sort(by_dst, stable=True).indices
        perm = by_src if perm is None else perm[by_src]
        src, dst, eid = src[perm], dst[perm], eid[perm]
    if form == "uv":
        return src, dst
    if form == "eid":
        return eid
    return src, dst, eid


def _select(values: torch.Tensor, ids: Any, name: str, num: int) -> Union[int, torch.Tensor]:
    if ids is None:
        return values
    if isinstance(ids, bool):
        raise TypeError(f"{name} must be an int or a tensor of node ids, got a bool")
    if isinstance(ids, int):
        if not 0 <= ids < num:
            raise IndexError(f"{name}={ids} is out of range for {num} nodes")
        return int(values[ids])
    t = torch.as_tensor(ids, device=values.device)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer node ids, got dtype {t.dtype}")
    if t.numel():
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= num:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{name} holds id {bad}, out of range for {num} nodes")
    return values[t.long()]


def _validate_block(
    indptr: Any,
    indices: Any,
    num_src: Any,
    src_ids: Optional[torch.Tensor],
    edge_ids: Optional[torch.Tensor],
) -> None:
    for name, t in (("indptr", indptr), ("indices", indices)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise ValueError(f"{name} must be an integer tensor, got dtype {t.dtype}")
        if t.dim() != 1:
            raise ValueError(f"{name} must be 1-D, got shape {tuple(t.shape)}")
    if indptr.dtype != torch.int64:
        raise ValueError(f"indptr must be int64, got {indptr.dtype}")
    if indices.device != indptr.device:
        raise ValueError(f"indices is on {indices.device} but indptr is on {indptr.device}")
    if not isinstance(num_src, int) or isinstance(num_src, bool) or num_src < 0:
        raise ValueError(f"num_src_nodes must be an int >= 0, got {num_src!r}")
    if indptr.numel() < 1 or int(indptr[0]) != 0:
        raise ValueError("indptr must have num_dst+1 >= 1 entries and start at 0")
    if bool((indptr[1:] < indptr[:-1]).any()):
        raise ValueError("indptr must be non-decreasing")
    if int(indptr[-1]) != indices.numel():
        raise ValueError(f"indptr ends at {int(indptr[-1])} but indices has {indices.numel()}")
    num_dst = indptr.numel() - 1
    if num_dst > num_src:
        raise ValueError(
            f"a block's destination nodes are a prefix of its source nodes, so num_dst "
            f"({num_dst}) must be <= num_src_nodes ({num_src})"
        )
    if indices.numel():
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= num_src:
            bad = lo if lo < 0 else hi
            raise IndexError(f"indices holds source id {bad}, out of range for {num_src} nodes")
    if src_ids is not None and (src_ids.dim() != 1 or src_ids.numel() != num_src):
        raise ValueError(f"src_ids must have shape [{num_src}], got {tuple(src_ids.shape)}")
    if edge_ids is not None and (edge_ids.dim() != 1 or edge_ids.numel() != indices.numel()):
        raise ValueError(
            f"edge_ids must have shape [{indices.numel()}], got {tuple(edge_ids.shape)}"
        )
