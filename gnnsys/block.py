"""Block: one layer of a sampled message-flow graph, with the API DGL models use.

A block is a bipartite graph from ``num_src_nodes()`` source (input) nodes to ``num_dst_nodes()``
destination (output) nodes. As in DGL, the destination nodes are the first ``num_dst_nodes()``
source nodes (per node type), so a layer can read its destinations' own features as
``h[:num_dst_nodes()]``. Edges are stored as a local CSC per edge type (grouped by
destination); the local edge id of an edge is its CSC position, which is the order
``edges()``, ``edata`` and ``adj_csc()`` share.

A block may carry several node and edge types (a heterograph block, as DGL's): one CSC per
canonical edge type ``(src_type, relation, dst_type)`` whose sources are ids within the
source type and destinations ids within the destination type. A homogeneous block is the
one-type case, under DGL's default names ``"_N"`` and ``("_N", "_E", "_N")``.

Node and edge data live in frames (one per type): dicts of tensors with one row per node or
edge, checked on assignment. ``srcdata`` / ``dstdata`` / ``edata`` are that frame when the
block has one type, else DGL's per-type view (``block.srcdata["feat"]`` is ``{ntype:
tensor}``; ``block.srcnodes[ntype].data`` is one type's frame). A frame may also see its
parent graph's data lazily, as DGL's sampled blocks do: ``block.srcdata["feat"]`` gathers the
parent's ``feat`` rows of the block's nodes on first access. ``dstdata`` reuses the first rows
of a column already gathered for ``srcdata`` instead of gathering again.
"""

from __future__ import annotations

import contextlib
from typing import (
    Any,
    Dict,
    Iterator,
    List,
    Mapping,
    MutableMapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np
import torch

from gnnsys._checks import as_device, check_choice, check_data_device, check_index
from gnnsys._coo import csc_destinations

NID = "_ID"
EID = "_ID"

DeviceLike = Union[str, torch.device]

# DGL's names for the single node and edge type of a homogeneous graph.
NTYPE = "_N"
ETYPE = "_E"
CANONICAL_ETYPE = (NTYPE, ETYPE, NTYPE)
# An edge type as DGL takes it: a name or a (src type, name, dst type) triple.
ETypeLike = Union[str, Tuple[str, str, str], None]
EdgeType = Tuple[str, str, str]


# ====================================================================== type names
def node_type_index(
    names: Sequence[str], ntype: Any, what: str = "node", prefix: Optional[str] = None
) -> int:
    """The position of node type ``ntype`` in ``names`` (None: the only one). ``prefix``
    ("SRC/" or "DST/") is stripped first, as DGL accepts on blocks. ValueError names the
    type and the types there are.

    Example:
        >>> node_type_index(["author", "paper"], "paper")
        1
    """
    if ntype is None:
        if len(names) != 1:
            raise ValueError(f"this graph has {what} types {list(names)}: name one (ntype=...)")
        return 0
    key = ntype
    if prefix is not None and isinstance(key, str) and key.startswith(prefix):
        key = key[len(prefix) :]
    if isinstance(key, str):
        for i, n in enumerate(names):
            if n == key:
                return i
    if len(names) == 1:
        raise ValueError(
            f"ntype={ntype!r} is not a {what} type here: its only {what} type is {names[0]!r} "
            "(pass None or omit ntype)"
        )
    raise ValueError(f"ntype={ntype!r} is not a {what} type here ({what} types: {list(names)})")


def edge_type_index(etypes: Sequence[EdgeType], etype: Any) -> int:
    """The position of ``etype`` (a canonical triple, or a relation name that names one edge
    type; None: the only one) in ``etypes``; ValueError names it and the types there are.

    Example:
        >>> edge_type_index([("a", "to", "b"), ("b", "back", "a")], "back")
        1
    """
    if etype is None:
        if len(etypes) != 1:
            raise ValueError(f"this graph has edge types {list(etypes)}: name one (etype=...)")
        return 0
    if isinstance(etype, str):
        hits = [i for i, e in enumerate(etypes) if e[1] == etype]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ValueError(
                f"etype={etype!r} is ambiguous: it names {[etypes[i] for i in hits]}; give a "
                "(src_type, relation, dst_type) triple"
            )
    elif isinstance(etype, (tuple, list)) and len(etype) == 3:
        key = tuple(etype)
        for i, e in enumerate(etypes):
            if e == key:
                return i
    if len(etypes) == 1:
        raise ValueError(
            f"etype={etype!r} is not an edge type here: its only edge type is "
            f"{etypes[0][1]!r} (canonical {etypes[0]}; pass None or omit etype)"
        )
    raise ValueError(f"etype={etype!r} is not an edge type here (edge types: {list(etypes)})")


def check_ntype(ntype: Any) -> None:
    """Accept None or DGL's homogeneous node type ``"_N"``; anything else is a ValueError."""
    node_type_index([NTYPE], ntype)


def check_etype(etype: Any) -> None:
    """Accept None, ``"_E"`` or ``("_N", "_E", "_N")`` (DGL's homogeneous edge type)."""
    edge_type_index([CANONICAL_ETYPE], etype)


# ====================================================================== frames
class _Frame(MutableMapping):
    """Columns of per-node or per-edge data, each with ``num_rows`` rows, on one device.

    ``parent`` (name -> tensor, rows indexed by ``parent_ids``) supplies lazy columns: a missing
    key that the parent has is gathered on first access and cached. ``prefix_of`` (the source
    frame of the same block and type) lets a destination frame reuse the first rows of a column
    the source frame already gathered from the parent.
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
        if parent is not None and not isinstance(parent, Mapping):
            kind = "edge_parent" if what == "edge" else "node_parent"
            raise TypeError(
                f"{kind} must map data names to tensors (a dict such as {{'feat': x}}), got "
                f"{type(parent).__name__}"
            )
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
            value = _gather_rows(self._parent[key], self._parent_ids, self.what, key)
            value = value.to(self.device)
            if value.dim() == 0 or value.shape[0] != self.num_rows:
                raise ValueError(
                    f"parent {self.what} data {key!r} gave {value.shape[0] if value.dim() else 0} "
                    f"rows for {self.num_rows} {self.what}s: the parent ids have the wrong length"
                )
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


class _TypedData(MutableMapping):
    """The data of several types at once, as DGL's heterograph views: ``view[name]`` is
    ``{type: tensor}`` over the types that have column ``name``; assign a dict
    ``{type: tensor}`` (types as names, edge types also as triples); ``del`` removes the column
    from every type. One type's frame is ``block.srcnodes[ntype].data``."""

    def __init__(self, frames: Sequence[_Frame], names: Sequence[Any], index: Any, what: str):
        self._frames = list(frames)
        self._names = list(names)
        self._index = index  # type name -> position in frames
        self._what = what

    def keys(self):  # type: ignore[override]
        out: Dict[str, None] = {}
        for f in self._frames:
            for k in f.keys():
                out[k] = None
        return list(out)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, key: object) -> bool:
        return any(key in f for f in self._frames)

    def __getitem__(self, key: str) -> Dict[Any, torch.Tensor]:
        out = {n: f[key] for n, f in zip(self._names, self._frames) if key in f}
        if not out:
            raise KeyError(
                f"no {self._what} data named {key!r} in any type; available: {self.keys()}"
            )
        return out

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(value, Mapping):
            raise TypeError(
                f"this graph has several {self._what} types {self._names}: assign "
                f"{self._what} data {key!r} as a dict {{type: tensor}}"
            )
        for t, v in value.items():
            self._frames[self._index(t)][key] = v

    def __delitem__(self, key: str) -> None:
        hit = False
        for f in self._frames:
            if key in f:
                del f[key]
                hit = True
        if not hit:
            raise KeyError(f"no {self._what} data named {key!r}; available: {self.keys()}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._what} types={self._names}, keys={self.keys()})"


@contextlib.contextmanager
def _scope(frames: Sequence[_Frame]) -> Iterator[None]:
    """Undo column assignments and deletions on ``frames`` at exit (a graph's local_scope)."""
    snaps = [f._snapshot() for f in frames]
    try:
        yield
    finally:
        for f, s in zip(frames, snaps):
            f._restore(s)


def _gather_rows(table: Any, ids: torch.Tensor, what: str, key: str) -> torch.Tensor:
    """Rows ``ids`` of a parent column, range-checked against the column first: torch would
    wrap a negative id to the last rows (silently) and name no column for one too large."""
    if isinstance(table, (list, tuple)):
        table = torch.as_tensor(table)
    shape = getattr(table, "shape", None)
    if shape is not None and len(shape) == 0:
        raise ValueError(f"parent {what} data {key!r} must have a row per {what}, got a scalar")
    try:
        n: Optional[int] = int(shape[0]) if shape is not None else len(table)
    except TypeError:  # an indexable without a length: its own indexing checks the ids
        n = None
    if n is not None:
        name = f"{what} ids (rows of parent data {key!r})"
        ids = check_index(name, ids, n, device=None, exc=IndexError, unit="rows")
    if isinstance(table, torch.Tensor):
        # index_select, not table[ids]: the same rows, 4-6x faster on CPU (torch 2.13, 50k ids
        # of 16 or 128 floats, one thread)
        return table.index_select(0, ids.to(table.device))
    return torch.as_tensor(table[ids.cpu().numpy()])


class _TypeData:
    """``space[ntype]`` / ``space[etype]`` of DGL: one type's ids and ``data`` frame."""

    def __init__(self, frame: _Frame, num: int, idtype: torch.dtype) -> None:
        self.data = frame
        self._num = num
        self._idtype = idtype

    def __len__(self) -> int:
        return self._num


class _NodeView:
    """``block.srcnodes`` / ``block.dstnodes``: call it for the local ids of a type, index it
    by node type for that type's ``.data`` frame (``.data`` alone: the frame of a one-type
    block, else the per-type view)."""

    def __init__(
        self,
        counts: Sequence[int],
        frames: Sequence[_Frame],
        names: Sequence[str],
        what: str,
        idtype: torch.dtype,
        prefix: Optional[str] = None,
    ) -> None:
        self._counts = list(counts)
        self._frames = list(frames)
        self._names = list(names)
        self._what = what
        self._idtype = idtype
        self._prefix = prefix

    def _index(self, ntype: Any) -> int:
        return node_type_index(self._names, ntype, self._what, self._prefix)

    def __call__(self, ntype: Optional[str] = None) -> torch.Tensor:
        i = self._index(ntype)
        return torch.arange(self._counts[i], dtype=self._idtype, device=self._frames[i].device)

    def __getitem__(self, ntype: str) -> _TypeData:
        i = self._index(ntype)
        return _TypeData(self._frames[i], self._counts[i], self._idtype)

    @property
    def data(self) -> Union[_Frame, _TypedData]:
        if len(self._frames) == 1:
            return self._frames[0]
        return _TypedData(self._frames, self._names, self._index, self._what)

    def __len__(self) -> int:
        return sum(self._counts)


class _EdgeView:
    """``block.edges``: call it as DGL's ``edges(form, order, etype)``; index it by edge type
    for that type's ``.data`` frame (``block.edges[etype].data``)."""

    def __init__(self, owner: Any) -> None:
        self._owner = owner

    def __call__(
        self, form: str = "uv", order: str = "eid", etype: ETypeLike = None
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        return self._owner._edges(form, order, etype)

    def __getitem__(self, etype: ETypeLike) -> _TypeData:
        o = self._owner
        e = o._etype_index(etype)
        return _TypeData(o._eframes[e], o._num_edges_of(e), o._idtype)

    @property
    def data(self) -> Union[_Frame, _TypedData]:
        return self._owner.edata


# ====================================================================== Block
class Block:
    """A bipartite message-flow graph (one GNN layer) with DGL's block API, typed or not.

    Args (the homogeneous constructor; ``Block.from_relations`` builds a typed block):
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
        idtype: dtype of the ids the block hands out (``"_ID"`` columns, ``edges()``,
            ``srcnodes()``): torch.int64 (default) or torch.int32, as a DGL graph's ``idtype``.
        validate: check shapes, dtypes and id ranges (off for trusted sampler output).

    Methods taking ``ntype`` / ``etype`` follow DGL: None is the only type (a ValueError
    naming the types when there are several; counts such as ``num_src_nodes()`` and
    ``num_edges()`` then sum over the types), a node type by name (``"SRC/"`` / ``"DST/"``
    prefixes accepted), an edge type as a canonical triple or a relation name that names one
    edge type. A homogeneous block's types are ``"_N"`` and ``("_N", "_E", "_N")``.

    Example:
        >>> b = Block(torch.tensor([0, 2, 3]), torch.tensor([1, 2, 0]), 3)
        >>> b.num_src_nodes(), b.num_dst_nodes(), b.num_edges()
        (3, 2, 3)
        >>> b.in_degrees().tolist()
        [2, 1]
        >>> h = Block.from_relations(
        ...     {("author", "writes", "paper"): (torch.tensor([0, 2]), torch.tensor([0, 1]))},
        ...     num_src_nodes={"author": 2, "paper": 1}, num_dst_nodes={"author": 0, "paper": 1})
        >>> h.num_src_nodes("author"), h["writes"].num_edges()
        (2, 2)
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
        idtype: Optional[torch.dtype] = None,
        validate: bool = True,
    ) -> None:
        if validate:
            _validate_relation(indptr, indices, num_src_nodes, None, "")
            _check_ids_shape("src_ids", src_ids, num_src_nodes)
            _check_ids_shape("edge_ids", edge_ids, indices.numel())
            _check_ids_shape("edge_parent_ids", edge_parent_ids, indices.numel())
            num_dst = indptr.numel() - 1
            if num_dst > num_src_nodes:
                raise ValueError(
                    f"a block's destination nodes are a prefix of its source nodes, so num_dst "
                    f"({num_dst}) must be <= num_src_nodes ({num_src_nodes})"
                )
        self._setup(
            [NTYPE],
            [NTYPE],
            [CANONICAL_ETYPE],
            [(indptr, indices)],
            [int(num_src_nodes)],
            [indptr.numel() - 1],
            src_ids=[src_ids],
            edge_ids=[edge_ids],
            node_parent=[node_parent],
            edge_parent=[edge_parent],
            edge_parent_ids=[edge_parent_ids],
            idtype=_check_idtype(idtype),
        )

    @classmethod
    def from_relations(
        cls,
        relations: Mapping[EdgeType, Tuple[torch.Tensor, torch.Tensor]],
        num_src_nodes: Mapping[str, int],
        num_dst_nodes: Mapping[str, int],
        *,
        src_ids: Optional[Mapping[str, torch.Tensor]] = None,
        edge_ids: Optional[Mapping[EdgeType, torch.Tensor]] = None,
        node_parent: Optional[Mapping[str, Mapping[str, torch.Tensor]]] = None,
        edge_parent: Optional[Mapping[EdgeType, Mapping[str, torch.Tensor]]] = None,
        edge_parent_ids: Optional[Mapping[EdgeType, torch.Tensor]] = None,
        idtype: Optional[torch.dtype] = None,
        validate: bool = True,
    ) -> Block:
        """A typed block: one local CSC ``(indptr, indices)`` per canonical edge type
        ``(src_type, relation, dst_type)`` (indptr over that destination type's nodes, indices
        ids within the source type), node counts per source and destination type (the
        destination nodes of a type are the first source nodes of that type, so every
        destination type is a source type with at least as many nodes), and the optional
        per-type ids and parent data of the homogeneous constructor (dicts keyed by node or
        edge type). Types keep the dicts' order.

        Example:
            >>> b = Block.from_relations(
            ...     {("user", "buys", "item"): (torch.tensor([0, 1]), torch.tensor([0]))},
            ...     {"user": 1, "item": 1}, {"user": 0, "item": 1})
            >>> b.canonical_etypes, b.num_dst_nodes("item")
            ([('user', 'buys', 'item')], 1)
        """
        if not isinstance(relations, Mapping) or not relations:
            raise ValueError(
                "relations must be a non-empty dict {(src, rel, dst): (indptr, indices)}"
            )
        for name, m in (("num_src_nodes", num_src_nodes), ("num_dst_nodes", num_dst_nodes)):
            if not isinstance(m, Mapping):
                raise TypeError(f"{name} must be a dict {{node type: count}}, got {m!r}")
        srctypes, dsttypes = list(num_src_nodes), list(num_dst_nodes)
        etypes: List[EdgeType] = []
        for et in relations:
            if not (isinstance(et, tuple) and len(et) == 3 and all(isinstance(p, str) for p in et)):
                raise ValueError(f"relations keys must be (src, rel, dst) triples, got {et!r}")
            etypes.append(et)
        ns = [_check_count(f"num_src_nodes[{t!r}]", num_src_nodes[t]) for t in srctypes]
        nd = [_check_count(f"num_dst_nodes[{t!r}]", num_dst_nodes[t]) for t in dsttypes]
        rels = []
        for et in etypes:
            pair = relations[et]
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"relations[{et!r}] must be an (indptr, indices) pair")
            rels.append((pair[0], pair[1]))
        if validate:
            for t, n in zip(dsttypes, nd):
                if t not in srctypes:
                    raise ValueError(
                        f"destination type {t!r} is not a source type: a block's destination "
                        "nodes are a prefix of its source nodes of the same type"
                    )
                if n > ns[srctypes.index(t)]:
                    raise ValueError(
                        f"a block's destination nodes are a prefix of its source nodes, so "
                        f"num_dst_nodes[{t!r}] ({n}) must be <= num_src_nodes[{t!r}] "
                        f"({ns[srctypes.index(t)]})"
                    )
            for et, (ip, ix) in zip(etypes, rels):
                for side, names in ((et[0], srctypes), (et[2], dsttypes)):
                    if side not in names:
                        raise ValueError(
                            f"relation {et!r} names node type {side!r}, which the node counts lack"
                        )
                _validate_relation(
                    ip, ix, ns[srctypes.index(et[0])], nd[dsttypes.index(et[2])], f"{et}: "
                )
            for t in srctypes:
                _check_ids_shape(f"src_ids[{t!r}]", (src_ids or {}).get(t), num_src_nodes[t])
            for et, (_, ix) in zip(etypes, rels):
                _check_ids_shape(f"edge_ids[{et!r}]", (edge_ids or {}).get(et), ix.numel())
                _check_ids_shape(
                    f"edge_parent_ids[{et!r}]", (edge_parent_ids or {}).get(et), ix.numel()
                )
            for name, m, keys in (
                ("src_ids", src_ids, srctypes),
                ("node_parent", node_parent, srctypes),
                ("edge_ids", edge_ids, etypes),
                ("edge_parent", edge_parent, etypes),
                ("edge_parent_ids", edge_parent_ids, etypes),
            ):
                extra = [k for k in (m or {}) if k not in keys]
                if extra:
                    raise ValueError(f"{name} names {extra[0]!r}, which is not a type of the block")
        out = object.__new__(cls)
        out._setup(
            srctypes,
            dsttypes,
            etypes,
            rels,
            ns,
            nd,
            src_ids=[(src_ids or {}).get(t) for t in srctypes],
            edge_ids=[(edge_ids or {}).get(e) for e in etypes],
            node_parent=[(node_parent or {}).get(t) for t in srctypes],
            edge_parent=[(edge_parent or {}).get(e) for e in etypes],
            edge_parent_ids=[(edge_parent_ids or {}).get(e) for e in etypes],
            idtype=_check_idtype(idtype),
        )
        return out

    def _setup(
        self,
        srctypes: List[str],
        dsttypes: List[str],
        etypes: List[EdgeType],
        rels: List[Tuple[torch.Tensor, torch.Tensor]],
        num_src: List[int],
        num_dst: List[int],
        *,
        src_ids: List[Optional[torch.Tensor]],
        edge_ids: List[Optional[torch.Tensor]],
        node_parent: List[Optional[Mapping[str, torch.Tensor]]],
        edge_parent: List[Optional[Mapping[str, torch.Tensor]]],
        edge_parent_ids: List[Optional[torch.Tensor]],
        idtype: torch.dtype,
    ) -> None:
        self._srctypes = srctypes
        self._dsttypes = dsttypes
        self._etypes = etypes
        self._rel_src = [srctypes.index(e[0]) for e in etypes]
        self._rel_dst = [dsttypes.index(e[2]) for e in etypes]
        self._indptr = [r[0] for r in rels]
        self._indices = [r[1] for r in rels]
        self._num_src = num_src
        self._num_dst = num_dst
        self._idtype = idtype
        dev = rels[0][0].device
        self._srcframes = [
            _Frame(
                num_src[i], dev, parent=node_parent[i], parent_ids=src_ids[i], what="source node"
            )  # fmt: skip
            for i in range(len(srctypes))
        ]
        self._dstframes = []
        for j, t in enumerate(dsttypes):
            i = srctypes.index(t) if t in srctypes else -1
            ids = src_ids[i] if i >= 0 else None
            self._dstframes.append(
                _Frame(
                    num_dst[j],
                    dev,
                    parent=node_parent[i] if i >= 0 else None,
                    parent_ids=ids[: num_dst[j]] if ids is not None else None,
                    prefix_of=self._srcframes[i] if i >= 0 else None,
                    what="destination node",
                )
            )
        self._eframes = []
        for e in range(len(etypes)):
            pids = edge_parent_ids[e] if edge_parent_ids[e] is not None else edge_ids[e]
            self._eframes.append(
                _Frame(
                    self._num_edges_of(e),
                    dev,
                    parent=edge_parent[e],
                    parent_ids=pids,
                    what="edge",
                )  # fmt: skip
            )
        for i, ids in enumerate(src_ids):
            if ids is not None:
                ids = ids.to(dev, idtype)
                self._srcframes[i]._set_inherited(NID, ids)
                t = srctypes[i]
                if t in dsttypes:
                    j = dsttypes.index(t)
                    self._dstframes[j]._set_inherited(NID, ids[: num_dst[j]])
        for e, ids in enumerate(edge_ids):
            if ids is not None:
                self._eframes[e]._set_inherited(EID, ids.to(dev, idtype))

    # ------------------------------------------------------------------ types
    @property
    def srctypes(self) -> List[str]:
        """Source node types (the parent graph's order)."""
        return list(self._srctypes)

    @property
    def dsttypes(self) -> List[str]:
        """Destination node types."""
        return list(self._dsttypes)

    @property
    def ntypes(self) -> List[str]:
        """Source then destination node types (DGL lists a block's node types so)."""
        return self._srctypes + self._dsttypes

    @property
    def etypes(self) -> List[str]:
        """Relation names of the edge types."""
        return [e[1] for e in self._etypes]

    @property
    def canonical_etypes(self) -> List[EdgeType]:
        """Edge types as ``(src_type, relation, dst_type)``."""
        return list(self._etypes)

    @property
    def idtype(self) -> torch.dtype:
        """dtype of the ids the block hands out (int64, or int32 for an int32 graph)."""
        return self._idtype

    def to_canonical_etype(self, etype: ETypeLike) -> EdgeType:
        """The ``(src, rel, dst)`` triple of ``etype`` (a relation name or a triple)."""
        return self._etypes[self._etype_index(etype)]

    def _src_index(self, ntype: Any) -> int:
        return node_type_index(self._srctypes, ntype, "source node", "SRC/")

    def _dst_index(self, ntype: Any) -> int:
        return node_type_index(self._dsttypes, ntype, "destination node", "DST/")

    def _etype_index(self, etype: Any) -> int:
        return edge_type_index(self._etypes, etype)

    def _num_edges_of(self, e: int) -> int:
        return int(self._indices[e].numel())

    # ------------------------------------------------------------------ sizes
    def num_src_nodes(self, ntype: Optional[str] = None) -> int:
        """Source (input) nodes of type ``ntype`` (None: of every type)."""
        if ntype is None:
            return sum(self._num_src)
        return self._num_src[self._src_index(ntype)]

    def num_dst_nodes(self, ntype: Optional[str] = None) -> int:
        """Destination (output) nodes of type ``ntype`` (None: of every type): the first
        ``num_dst_nodes(ntype)`` source nodes of that type."""
        if ntype is None:
            return sum(self._num_dst)
        return self._num_dst[self._dst_index(ntype)]

    def num_edges(self, etype: ETypeLike = None) -> int:
        """Edges of type ``etype`` (None: of every type)."""
        if etype is None:
            return sum(self._num_edges_of(e) for e in range(len(self._etypes)))
        return self._num_edges_of(self._etype_index(etype))

    def num_nodes(self, ntype: Optional[str] = None) -> int:
        """Source plus destination nodes, as DGL counts a block's nodes; with ``ntype`` the
        nodes of that type on the source side (``"DST/..."``: the destination side), as DGL's
        block lookup resolves a bare name."""
        if ntype is None:
            return sum(self._num_src) + sum(self._num_dst)
        if isinstance(ntype, str) and ntype.startswith("DST/"):
            return self.num_dst_nodes(ntype)
        return self.num_src_nodes(ntype)

    number_of_src_nodes = num_src_nodes
    number_of_dst_nodes = num_dst_nodes
    number_of_edges = num_edges
    number_of_nodes = num_nodes

    @property
    def device(self) -> torch.device:
        """The device of the structure and of every data column."""
        return self._indptr[0].device

    # ------------------------------------------------------------------ data
    @property
    def srcdata(self) -> Union[_Frame, _TypedData]:
        """Per-source-node data (``srcdata["_ID"]`` = ids within each type); with several
        source types a per-type view (``srcdata["feat"]`` = ``{ntype: tensor}``)."""
        return self.srcnodes.data

    @property
    def dstdata(self) -> Union[_Frame, _TypedData]:
        """Per-destination-node data (``dstdata["_ID"]`` = the first source ids of each type)."""
        return self.dstnodes.data

    @property
    def edata(self) -> Union[_Frame, _TypedData]:
        """Per-edge data in local edge id (CSC) order (``edata["_ID"]`` = the parent graph's
        edge ids); with several edge types a view keyed by canonical edge type."""
        if len(self._eframes) == 1:
            return self._eframes[0]
        return _TypedData(self._eframes, self._etypes, self._etype_index, "edge")

    @property
    def ndata(self) -> Union[_Frame, _TypedData]:
        """Source-node data, as ``block.ndata`` in DGL."""
        return self.srcdata

    @property
    def srcnodes(self) -> _NodeView:
        """``srcnodes(ntype)``: local source ids; ``srcnodes[ntype].data``: that type's frame."""
        return _NodeView(
            self._num_src, self._srcframes, self._srctypes, "source node", self._idtype, "SRC/"
        )

    @property
    def dstnodes(self) -> _NodeView:
        """``dstnodes(ntype)``: local destination ids; ``dstnodes[ntype].data``: its frame."""
        return _NodeView(
            self._num_dst, self._dstframes, self._dsttypes, "destination node", self._idtype,
            "DST/",
        )  # fmt: skip

    # ------------------------------------------------------------------ structure
    def __getitem__(self, etype: Any) -> Block:
        """The block of one relation (``block[etype]``, also ``block[src, rel, dst]``): its
        one source type, destination type and edge type, sharing this block's frames (data
        set on it is set here, as DGL's relation graphs share their parent's frames).

        Example:
            >>> rel = block[("author", "writes", "paper")]
            >>> rel.adj_csc()[2:]     # (number of authors, number of papers)
        """
        e = self._etype_index(etype)
        s, d = self._rel_src[e], self._rel_dst[e]
        out = object.__new__(type(self))
        out._srctypes = [self._srctypes[s]]
        out._dsttypes = [self._dsttypes[d]]
        out._etypes = [self._etypes[e]]
        out._rel_src = [0]
        out._rel_dst = [0]
        out._indptr = [self._indptr[e]]
        out._indices = [self._indices[e]]
        out._num_src = [self._num_src[s]]
        out._num_dst = [self._num_dst[d]]
        out._idtype = self._idtype
        out._srcframes = [self._srcframes[s]]
        out._dstframes = [self._dstframes[d]]
        out._eframes = [self._eframes[e]]
        return out

    def adj_csc(self, etype: ETypeLike = None) -> Tuple[torch.Tensor, torch.Tensor, int, int]:
        """(indptr, indices, num_src, num_dst) of edge type ``etype`` (None: the only one):
        the adjacency protocol gnnsys.nn layers read."""
        if etype is None and len(self._etypes) > 1:
            raise ValueError(
                f"this block has edge types {self._etypes}: use block[etype] (or "
                "adj_csc(etype)) for one relation, or a relational layer such as "
                "gnnsys.nn.HeteroRGCNConv"
            )
        e = self._etype_index(etype)
        return (
            self._indptr[e],
            self._indices[e],
            self._num_src[self._rel_src[e]],
            self._num_dst[self._rel_dst[e]],
        )

    def _dst_of_edges(self, e: int) -> torch.Tensor:
        return csc_destinations(self._indptr[e], num_edges=self._num_edges_of(e))

    @property
    def edges(self) -> _EdgeView:
        """DGL's ``edges``: ``block.edges(form="uv", order="eid", etype=None)`` gives the
        edges as local ids: ``form`` 'uv' -> (src, dst), 'eid' -> edge ids, 'all' -> (src, dst,
        eid); ``order`` 'eid' (by edge id) or 'srcdst' (by source, then destination).
        ``block.edges[etype].data`` is that edge type's frame.

        Example:
            >>> Block(torch.tensor([0, 1]), torch.tensor([1]), 2).edges()
            (tensor([1]), tensor([0]))
        """
        return _EdgeView(self)

    def _edges(
        self, form: str, order: str, etype: ETypeLike
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        e = self._etype_index(etype)
        it = self._idtype
        if form == "eid" and order == "eid":
            return torch.arange(self._num_edges_of(e), dtype=it, device=self.device)
        out = edge_view(
            self._indices[e].long(), self._dst_of_edges(e), form, order, dst_sorted=True
        )
        if it == torch.int64:
            return out
        if isinstance(out, tuple):
            return tuple(t.to(it) for t in out)
        return out.to(it)

    def all_edges(
        self, form: str = "uv", order: str = "eid", etype: ETypeLike = None
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        """Alias of ``edges(form, order, etype)``."""
        return self._edges(form, order, etype)

    def in_degrees(self, v: Any = None, etype: ETypeLike = None) -> Union[int, torch.Tensor]:
        """In-degree of destination nodes ``v`` (all when None) through edge type ``etype``;
        an int for an int ``v``."""
        e = self._etype_index(etype)
        indptr = self._indptr[e]
        deg = indptr[1:] - indptr[:-1]
        return _select(deg, v, "v", indptr.numel() - 1)

    def out_degrees(self, u: Any = None, etype: ETypeLike = None) -> Union[int, torch.Tensor]:
        """Out-degree of source nodes ``u`` (all when None) through edge type ``etype``; an
        int for an int ``u``."""
        e = self._etype_index(etype)
        n = self._num_src[self._rel_src[e]]
        deg = torch.bincount(self._indices[e].long(), minlength=n)
        return _select(deg, u, "u", n)

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

    def _frames(self) -> List[_Frame]:
        return self._srcframes + self._dstframes + self._eframes

    def to(self, device: DeviceLike, **kwargs: Any) -> Block:
        """A copy of the block with its structure and data on ``device`` (kwargs go to
        ``Tensor.to``, e.g. ``non_blocking=True``)."""
        dev = as_device(device)
        if dev == self.device:
            return self
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out._indptr = [t.to(dev, **kwargs) for t in self._indptr]
        out._indices = [t.to(dev, **kwargs) for t in self._indices]
        out._srcframes = [f._moved(dev, None, **kwargs) for f in self._srcframes]
        out._dstframes = []
        for f, t in zip(self._dstframes, self._dsttypes):
            src = out._srcframes[self._srctypes.index(t)] if t in self._srctypes else None
            out._dstframes.append(f._moved(dev, src, **kwargs))
        out._eframes = [f._moved(dev, None, **kwargs) for f in self._eframes]
        return out

    def cpu(self) -> Block:
        return self.to("cpu")

    def create_formats_(self) -> None:
        """No-op: the block keeps one format (CSC)."""

    def __repr__(self) -> str:
        if self._srctypes == [NTYPE] and self._etypes == [CANONICAL_ETYPE]:
            return (
                f"Block(num_src_nodes={self._num_src[0]}, num_dst_nodes={self._num_dst[0]}, "
                f"num_edges={self.num_edges()})"
            )
        src = dict(zip(self._srctypes, self._num_src))
        dst = dict(zip(self._dsttypes, self._num_dst))
        edges = {e: self._num_edges_of(i) for i, e in enumerate(self._etypes)}
        return f"Block(num_src_nodes={src}, num_dst_nodes={dst}, num_edges={edges})"


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
    if isinstance(ids, torch.Tensor):
        check_data_device(name, ids)
    if not isinstance(ids, (torch.Tensor, np.ndarray, np.integer, list, tuple, range)):
        raise TypeError(f"{name} must be an int or a tensor of node ids, got {type(ids).__name__}")
    t = torch.as_tensor(ids, device=values.device)
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer node ids, got dtype {t.dtype}")
    if t.numel():
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= num:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{name} holds id {bad}, out of range for {num} nodes")
    return values[t.long()]


def _check_idtype(idtype: Any) -> torch.dtype:
    if idtype is None:
        return torch.int64
    if idtype not in (torch.int32, torch.int64):
        raise ValueError(f"idtype must be torch.int32 or torch.int64, got {idtype!r}")
    return idtype


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return int(value)


def _check_ids_shape(name: str, ids: Optional[torch.Tensor], num: int) -> None:
    """Optional ids: a 1-D integer tensor of ``num`` entries holding data (not meta)."""
    if ids is None:
        return
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of ids, got {type(ids).__name__}")
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer ids, got dtype {ids.dtype}")
    if ids.dim() != 1 or ids.numel() != num:
        raise ValueError(f"{name} must have shape [{num}], got {tuple(ids.shape)}")
    check_data_device(name, ids)


def _validate_relation(
    indptr: Any, indices: Any, num_src: Any, num_dst: Optional[int], where: str
) -> None:
    """One CSC: integer 1-D tensors, int64 indptr from 0 to E, non-decreasing, with
    ``num_dst + 1`` entries (when given) and sources below ``num_src``. ``where`` prefixes the
    messages (the edge type of a typed block)."""
    for name, t in (("indptr", indptr), ("indices", indices)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{where}{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise ValueError(f"{where}{name} must be an integer tensor, got dtype {t.dtype}")
        if t.dim() != 1:
            raise ValueError(f"{where}{name} must be 1-D, got shape {tuple(t.shape)}")
        check_data_device(f"{where}{name}", t)
    if indptr.dtype != torch.int64:
        raise ValueError(f"{where}indptr must be int64, got {indptr.dtype}")
    if indices.device != indptr.device:
        raise ValueError(f"{where}indices is on {indices.device} but indptr is on {indptr.device}")
    if not isinstance(num_src, int) or isinstance(num_src, bool) or num_src < 0:
        raise ValueError(f"{where}num_src_nodes must be an int >= 0, got {num_src!r}")
    if indptr.numel() < 1 or int(indptr[0]) != 0:
        raise ValueError(f"{where}indptr must have num_dst+1 >= 1 entries and start at 0")
    if num_dst is not None and indptr.numel() != num_dst + 1:
        raise ValueError(
            f"{where}indptr has {indptr.numel()} entries; {num_dst} destination nodes need "
            f"{num_dst + 1}"
        )
    if bool((indptr[1:] < indptr[:-1]).any()):
        raise ValueError(f"{where}indptr must be non-decreasing")
    if int(indptr[-1]) != indices.numel():
        raise ValueError(
            f"{where}indptr ends at {int(indptr[-1])} but indices has {indices.numel()}"
        )
    if indices.numel():
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= num_src:
            bad = lo if lo < 0 else hi
            raise IndexError(
                f"{where}indices holds source id {bad}, out of range for {num_src} nodes"
            )
