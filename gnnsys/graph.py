"""Graph: CSC adjacency of incoming edges, the structure every sampler and op reads.

``indptr[v]:indptr[v+1]`` slices ``indices`` to the sources of the edges pointing into ``v``
(messages flow source -> destination, as PyG's ``flow="source_to_target"`` and DGL's in-edges).

One fused CSC serves homogeneous and heterogeneous graphs alike (as GraphBolt's
``FusedCSCSamplingGraph``): nodes of one type hold consecutive global ids
(``node_type_offset``), the edges into a node are grouped by edge type (``type_per_edge``), and
the type names are kept (``(src_type, relation, dst_type)`` triples, as PyG and DGL write
them). A homogeneous graph is the one-type case, with no extra arrays.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from gnnsys._checks import as_cpu_tensor, check_choice, check_index, index_dtype
from gnnsys._coo import csc_destinations

_SELF_LOOPS = ("keep", "remove", "add")
# DGL's names for the one node and edge type of a homogeneous graph.
DEFAULT_NTYPE = "_N"
DEFAULT_ETYPE = (DEFAULT_NTYPE, "_E", DEFAULT_NTYPE)

EdgeType = Tuple[str, str, str]


class Graph:
    """A directed graph in CSC form (incoming edges grouped by destination), optionally typed.

    Attributes:
        indptr: int64 [N+1] column starts.
        indices: int32 [E] (int64 when N >= 2^31) source node of each edge.
        edge_ids: optional int64 [E], each edge's position in the caller's edge list (for a
            typed graph: in its own edge type's list; -1 for self loops added by
            ``self_loops="add"``).
        edge_weight: optional float [E].
        node_type_offset: optional int64 [T+1]: nodes of type t are the ids
            ``node_type_offset[t]..node_offset[t+1]-1`` (None: one type).
        type_per_edge: optional int8/int32 [E], each edge's type; within a column edges are
            sorted by type (None: one edge type).
        node_types, edge_types: the type names (defaults ``["_N"]`` and
            ``[("_N", "_E", "_N")]``, DGL's names for a homogeneous graph).
        ndata, edata: dicts of per-node / per-edge tensors, used by the DGL adapter. Untyped:
            keyed by name, ``edata`` rows in CSC order. Typed: keyed ``(node_type, name)`` /
            ``(edge_type, name)``, rows = ids within the type (edge ids as ``from_hetero``
            assigns them).

    Example:
        >>> g = Graph.from_edge_index(torch.tensor([[0, 1, 2], [1, 2, 0]]))
        >>> g.in_degrees().tolist()
        [1, 1, 1]
        >>> h = Graph.from_hetero({("a", "to", "b"): torch.tensor([[0, 1], [0, 0]])},
        ...                       {"a": 2, "b": 1})
        >>> h.node_types, h.num_nodes
        (['a', 'b'], 3)
    """

    def __init__(
        self,
        indptr: torch.Tensor,
        indices: torch.Tensor,
        *,
        edge_ids: Optional[torch.Tensor] = None,
        edge_weight: Optional[torch.Tensor] = None,
        node_type_offset: Optional[torch.Tensor] = None,
        type_per_edge: Optional[torch.Tensor] = None,
        node_types: Optional[Sequence[str]] = None,
        edge_types: Optional[Sequence[EdgeType]] = None,
        validate: bool = True,
    ) -> None:
        self.indptr = indptr
        self.indices = indices
        self.edge_ids = edge_ids
        self.edge_weight = edge_weight
        self.node_type_offset = node_type_offset
        self.type_per_edge = type_per_edge
        self._node_types = list(node_types) if node_types is not None else None
        self._edge_types = [tuple(e) for e in edge_types] if edge_types is not None else None
        self.ndata: Dict[str, torch.Tensor] = {}
        self.edata: Dict[str, torch.Tensor] = {}
        self._source: Optional[Tuple[str, int, int]] = None  # set by load(mmap=True)
        if validate:
            self._validate()
        self._check_types(full=validate)

    # ------------------------------------------------------------------ properties
    @property
    def num_nodes(self) -> int:
        return self.indptr.numel() - 1

    @property
    def num_edges(self) -> int:
        return self.indices.numel()

    @property
    def is_hetero(self) -> bool:
        """True when the graph was built with type names (even a single named type)."""
        return self._node_types is not None

    @property
    def node_types(self) -> List[str]:
        """Node type names, in id order (``["_N"]`` for a homogeneous graph)."""
        return list(self._node_types) if self._node_types is not None else [DEFAULT_NTYPE]

    @property
    def edge_types(self) -> List[EdgeType]:
        """Edge types as ``(src_type, relation, dst_type)``, in type-id order."""
        return list(self._edge_types) if self._edge_types is not None else [DEFAULT_ETYPE]

    @property
    def num_node_types(self) -> int:
        return len(self._node_types) if self._node_types is not None else 1

    @property
    def num_edge_types(self) -> int:
        return len(self._edge_types) if self._edge_types is not None else 1

    def type_offsets(self) -> torch.Tensor:
        """int64 [T+1]: nodes of type t are ids ``offsets[t]..offsets[t+1]-1``."""
        if self.node_type_offset is not None:
            return self.node_type_offset
        return torch.tensor([0, self.num_nodes], dtype=torch.int64)

    @property
    def num_nodes_dict(self) -> Dict[str, int]:
        """Nodes per node type."""
        off = self.type_offsets().tolist()
        return {t: off[i + 1] - off[i] for i, t in enumerate(self.node_types)}

    def node_type_id(self, ntype: Optional[str]) -> int:
        """The id of node type ``ntype`` (None: the only type of a one-type graph).

        Example:
            >>> h.node_type_id("b")
            1
        """
        names = self.node_types
        if ntype is None:
            if len(names) != 1:
                raise ValueError(f"the graph has node types {names}: name one")
            return 0
        if ntype not in names:
            raise ValueError(f"node type {ntype!r} is not in the graph (node types: {names})")
        return names.index(ntype)

    def edge_type_id(self, etype: Union[None, str, Sequence[str]]) -> int:
        """The id of an edge type given as a ``(src, relation, dst)`` triple or, when it is
        unambiguous, by its relation name alone (as DGL allows); None for a one-type graph.

        Example:
            >>> h.edge_type_id(("a", "to", "b")), h.edge_type_id("to")
            (0, 0)
        """
        names = self.edge_types
        if etype is None:
            if len(names) != 1:
                raise ValueError(f"the graph has edge types {names}: name one")
            return 0
        if isinstance(etype, str):
            hits = [i for i, e in enumerate(names) if e[1] == etype]
            if len(hits) != 1:
                what = "no" if not hits else "several"
                raise ValueError(
                    f"edge type {etype!r} matches {what} edge types of the graph ({names}); "
                    "give a (src_type, relation, dst_type) triple"
                )
            return hits[0]
        if not isinstance(etype, (tuple, list)):
            raise TypeError(
                f"an edge type is a relation name or a (src_type, relation, dst_type) triple, "
                f"got {etype!r}"
            )
        key = tuple(etype)
        if key not in names:
            raise ValueError(f"edge type {key!r} is not in the graph (edge types: {names})")
        return names.index(key)

    def type_layout(self) -> Tuple[np.ndarray, ...]:
        """What the sampling kernels read of the typing, as numpy arrays:
        (type_per_edge or empty, node_type_offset [T+1], etype_src [K], etype_dst [K],
        dst_etype_ptr [T+1], dst_etypes [K]: the edge types into each node type)."""
        tpe = self.type_per_edge.numpy() if self.type_per_edge is not None else np.empty(0, np.int8)
        off = self.type_offsets().numpy().astype(np.int64, copy=False)
        return type_layout(self.node_types, self.edge_types, tpe, off)

    def __repr__(self) -> str:
        extra = []
        if self.edge_ids is not None:
            extra.append("edge_ids")
        if self.edge_weight is not None:
            extra.append(f"edge_weight={self.edge_weight.dtype}")
        if self.is_hetero:
            extra.append(f"node_types={self.node_types}, edge_types={self.edge_types}")
        more = f", {', '.join(extra)}" if extra else ""
        return (
            f"Graph(num_nodes={self.num_nodes}, num_edges={self.num_edges}, "
            f"indices={self.indices.dtype}{more})"
        )

    def adj_csc(self) -> Tuple[torch.Tensor, torch.Tensor, int, int]:
        """(indptr, indices, num_src, num_dst): the adjacency protocol the ops and layers read."""
        return self.indptr, self.indices, self.num_nodes, self.num_nodes

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_edge_index(
        cls,
        edge_index: Any,
        num_nodes: Optional[int] = None,
        *,
        edge_weight: Any = None,
        undirected: bool = False,
        dedupe: bool = False,
        self_loops: str = "keep",
    ) -> Graph:
        """Build from a COO ``edge_index`` [2, E] (row 0 = source, row 1 = destination).

        ``undirected`` adds every reverse edge (keeping the original edge id), ``dedupe`` keeps the
        first of parallel edges and sorts each column by source; ``self_loops`` keeps them, removes
        them, or adds one to every node lacking one (edge id -1, weight 1), as PyG's
        ``add_remaining_self_loops``.

        Example:
            >>> Graph.from_edge_index(torch.tensor([[0, 0], [1, 1]]), dedupe=True).num_edges
            1
        """
        from gnnsys._csc import coo_to_csc, sort_and_filter

        check_choice("self_loops", self_loops, _SELF_LOOPS)
        ei = _check_edge_index(edge_index)
        src, dst = ei[0], ei[1]
        n = _infer_num_nodes(ei, num_nodes)
        weight = _check_edge_weight(edge_weight, ei.shape[1])
        if undirected:
            src, dst = torch.cat([src, dst]), torch.cat([dst, src])
            weight = torch.cat([weight, weight]) if weight is not None else None
        idt = index_dtype(n)
        np_idt = np.int32 if idt == torch.int32 else np.int64
        src_np = src.numpy().astype(np_idt, copy=False)
        dst_np = dst.numpy().astype(np_idt, copy=False)
        indptr, indices, perm = coo_to_csc(src_np, dst_np, n, np_idt)
        indptr, indices, perm = sort_and_filter(
            indptr,
            indices,
            perm,
            dedupe=dedupe,
            drop_loops=self_loops == "remove",
        )
        perm_t = torch.from_numpy(perm)
        # Edge ids are input positions (both copies of an undirected edge share one): no gather.
        e = ei.shape[1]
        edge_ids = torch.where(perm_t >= e, perm_t - e, perm_t) if undirected else perm_t
        weight = weight[perm_t] if weight is not None else None
        indptr_t, indices_t = torch.from_numpy(indptr), torch.from_numpy(indices)
        if self_loops == "add":
            indptr_t, indices_t, edge_ids, weight = _add_self_loops(
                indptr_t, indices_t, edge_ids, weight
            )
        return cls(indptr_t, indices_t, edge_ids=edge_ids, edge_weight=weight, validate=False)

    @classmethod
    def from_csc(
        cls,
        indptr: Any,
        indices: Any,
        *,
        edge_ids: Any = None,
        edge_weight: Any = None,
        num_nodes: Optional[int] = None,
    ) -> Graph:
        """Wrap existing CSC arrays after validating them.

        ``indptr`` (1-D integer, non-decreasing, from 0 to E) and ``indices`` (1-D integer node
        ids in ``0..N-1``) are checked before ``indices`` is narrowed to int32, so an int64 id
        that does not fit is an error, not a wrapped value. ``edge_ids`` (1-D integer, one per
        edge, >= 0; -1 marks an edge with no id, as ``self_loops="add"`` writes) and
        ``edge_weight`` (1-D real numbers, one per edge) are checked too.

        Example:
            >>> Graph.from_csc(torch.tensor([0, 1, 1]), torch.tensor([1])).num_edges
            1
        """
        ip = as_cpu_tensor("indptr", indptr)
        if not _is_integer(ip):
            raise ValueError(f"indptr must be an integer tensor, got dtype {ip.dtype}")
        if ip.dim() != 1 or ip.numel() < 1:
            raise ValueError(
                f"indptr must be 1-D with N+1 >= 1 entries, got shape {tuple(ip.shape)}"
            )
        n = ip.numel() - 1
        if num_nodes is not None:
            _check_num_nodes(num_nodes)
            if n != num_nodes:
                raise ValueError(
                    f"indptr has {ip.numel()} entries; num_nodes={num_nodes} needs {num_nodes + 1}"
                )
        # Range first, then narrow: int64 ids cast to int32 first would wrap into range.
        ix = check_index("indices", indices, n, device=None)
        if ix.device != ip.device:
            raise ValueError(f"indices is on {ix.device} but indptr is on {ip.device}")
        ix = ix.to(index_dtype(n))
        eids = _check_edge_ids(edge_ids, ix.numel())
        w = _check_edge_weight(edge_weight, ix.numel())
        return cls(ip.long(), ix, edge_ids=eids, edge_weight=w)

    @classmethod
    def from_hetero(
        cls,
        edge_index_dict: Mapping[EdgeType, Any],
        num_nodes_dict: Mapping[str, int],
        *,
        edge_weight_dict: Optional[Mapping[EdgeType, Any]] = None,
    ) -> Graph:
        """Build a typed graph from per-edge-type COO ``edge_index`` [2, E_t] in per-type ids.

        Node types take ids in ``num_nodes_dict``'s order, edge types in ``edge_index_dict``'s;
        ``edge_ids`` are each edge's position in its own type's ``edge_index``. Optional
        ``edge_weight_dict`` gives weights per edge type (all types or none).

        Example:
            >>> g = Graph.from_hetero(
            ...     {("author", "writes", "paper"): torch.tensor([[0, 1], [0, 0]])},
            ...     {"author": 2, "paper": 1})
            >>> g.num_nodes_dict, g.num_edges
            ({'author': 2, 'paper': 1}, 2)
        """
        from gnnsys._csc import coo_to_csc

        node_types, offsets = _check_node_counts(num_nodes_dict)
        if not isinstance(edge_index_dict, Mapping) or not edge_index_dict:
            raise ValueError("edge_index_dict must be a non-empty dict {edge type: edge_index}")
        edge_types = [_check_edge_type(et, node_types) for et in edge_index_dict]
        if len(set(edge_types)) != len(edge_types):
            raise ValueError(f"edge_index_dict names an edge type twice: {edge_types}")
        if edge_weight_dict is not None and set(map(tuple, edge_weight_dict)) != set(edge_types):
            raise ValueError("edge_weight_dict must give weights for every edge type or none")
        n = int(offsets[-1])
        idt = index_dtype(n)
        np_idt = np.int32 if idt == torch.int32 else np.int64
        srcs, dsts, kinds, local_ids, weights = [], [], [], [], []
        for k, (et, ei) in enumerate(zip(edge_types, edge_index_dict.values())):
            ei = _check_edge_index(ei, name=f"edge_index_dict[{et!r}]")
            s_t, d_t = node_types.index(et[0]), node_types.index(et[2])
            for row, t, side in ((0, s_t, "source"), (1, d_t, "destination")):
                size = int(offsets[t + 1] - offsets[t])
                if ei.shape[1] and int(ei[row].max()) >= size:
                    raise ValueError(
                        f"edge_index_dict[{et!r}] holds {side} id {int(ei[row].max())}, out of "
                        f"range for {size} {et[2 * row]!r} nodes"
                    )
            srcs.append((ei[0] + int(offsets[s_t])).numpy().astype(np_idt))
            dsts.append((ei[1] + int(offsets[d_t])).numpy().astype(np_idt))
            kinds.append(np.full(ei.shape[1], k, np.int32))
            local_ids.append(np.arange(ei.shape[1], dtype=np.int64))
            if edge_weight_dict is not None:
                w = edge_weight_dict[et] if et in edge_weight_dict else edge_weight_dict[list(et)]
                weights.append(_check_edge_weight(w, ei.shape[1]))
        # Concatenated in edge-type order; the stable counting sort by destination keeps that
        # order inside every column, so each column comes out grouped by edge type.
        src = np.concatenate(srcs)
        dst = np.concatenate(dsts)
        indptr, indices, perm = coo_to_csc(src, dst, n, np_idt)
        kind_dtype = np.int8 if len(edge_types) < 128 else np.int32
        type_per_edge = np.concatenate(kinds)[perm].astype(kind_dtype)
        edge_ids = np.concatenate(local_ids)[perm]
        weight = torch.cat(weights)[torch.from_numpy(perm)] if weights else None
        return cls(
            torch.from_numpy(indptr),
            torch.from_numpy(indices),
            edge_ids=torch.from_numpy(edge_ids),
            edge_weight=weight,
            node_type_offset=torch.from_numpy(offsets),
            type_per_edge=torch.from_numpy(type_per_edge),
            node_types=node_types,
            edge_types=edge_types,
            validate=False,
        )

    def to_hetero(self) -> Tuple[Dict[EdgeType, torch.Tensor], Dict[str, int]]:
        """(edge_index_dict in per-type ids, num_nodes_dict): the inverse of ``from_hetero``.

        Each edge type's edges come in edge-id order when the graph has edge ids.

        Example:
            >>> ei_dict, counts = g.to_hetero()
        """
        off = self.type_offsets()
        names = self.node_types
        dst = csc_destinations(self.indptr, num_edges=self.num_edges)
        src = self.indices.long()
        kinds = self.type_per_edge.long() if self.type_per_edge is not None else None
        out: Dict[EdgeType, torch.Tensor] = {}
        for k, et in enumerate(self.edge_types):
            mask = kinds == k if kinds is not None else torch.ones_like(src, dtype=torch.bool)
            s = src[mask] - off[names.index(et[0])]
            d = dst[mask] - off[names.index(et[2])]
            if self.edge_ids is not None:
                order = torch.argsort(self.edge_ids[mask], stable=True)
                s, d = s[order], d[order]
            out[et] = torch.stack([s, d])
        return out, self.num_nodes_dict

    @classmethod
    def from_pyg(cls, data: Any, **kwargs: Any) -> Graph:
        """Build from a ``torch_geometric.data.Data`` (``edge_index``, optional ``edge_weight``)
        or a ``HeteroData`` (every edge type's ``edge_index``; ``weight_attr`` names an edge
        attribute to use as weights).

        Example:
            >>> Graph.from_pyg(Data(edge_index=torch.tensor([[0], [1]]), num_nodes=3)).num_nodes
            3
        """
        # (not hasattr(data, "edge_index_dict"): HeteroData raises KeyError, not
        # AttributeError, when no edge type has an edge_index)
        if hasattr(data, "node_types") and hasattr(data, "edge_types"):
            return _from_hetero_data(cls, data, **kwargs)
        ei = getattr(data, "edge_index", None)
        if ei is None:
            raise ValueError("data has no edge_index")
        weight = getattr(data, "edge_weight", None)
        kwargs.setdefault("edge_weight", weight)
        return cls.from_edge_index(ei, data.num_nodes, **kwargs)

    @classmethod
    def from_dgl(cls, g: Any) -> Graph:
        """Build from a DGL graph; copies ``ndata`` and ``edata`` (``edata`` in CSC order).

        A heterograph becomes a typed graph (node and canonical edge types in DGL's order,
        edge ids per type); its data is not copied (read it per type from the DGL graph).

        Example:
            >>> Graph.from_dgl(dgl.graph(([0], [1]))).num_edges
            1
        """
        if len(g.ntypes) > 1 or len(g.canonical_etypes) > 1:
            edges = {tuple(et): dgl_edge_index(g, et) for et in g.canonical_etypes}
            return cls.from_hetero(edges, {t: int(g.num_nodes(t)) for t in g.ntypes})
        out = cls.from_edge_index(dgl_edge_index(g), g.num_nodes())
        for k, v in g.ndata.items():
            out.ndata[k] = v
        for k, v in g.edata.items():
            out.edata[k] = v[out.edge_ids]
        return out

    @classmethod
    def from_scipy(cls, matrix: Any, **kwargs: Any) -> Graph:
        """Build from a square scipy sparse matrix, ``A[i, j] != 0`` meaning an edge i -> j.

        Stored values become ``edge_weight``. Example:
            >>> Graph.from_scipy(scipy.sparse.eye(3, format="coo")).num_edges
            3
        """
        import scipy.sparse as sp

        if not sp.issparse(matrix):
            raise TypeError(f"matrix must be a scipy sparse matrix, got {type(matrix).__name__}")
        if matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"matrix must be square, got shape {matrix.shape}")
        coo = matrix.tocoo()
        ei = torch.from_numpy(np.stack([coo.row.astype(np.int64), coo.col.astype(np.int64)]))
        kwargs.setdefault("edge_weight", torch.from_numpy(np.asarray(coo.data)))
        return cls.from_edge_index(ei, matrix.shape[0], **kwargs)

    # ------------------------------------------------------------------ views
    def to_edge_index(self) -> torch.Tensor:
        """COO int64 [2, E] in CSC order (row 0 = source, row 1 = destination).

        Example:
            >>> Graph.from_edge_index(torch.tensor([[2], [0]])).to_edge_index().tolist()
            [[2], [0]]
        """
        dst = csc_destinations(self.indptr, num_edges=self.num_edges)
        return torch.stack([self.indices.long(), dst])

    def to_scipy(self) -> Any:
        """scipy CSC matrix with ``A[src, dst]`` = weight (1 without weights)."""
        import scipy.sparse as sp

        w = self.edge_weight.numpy() if self.edge_weight is not None else np.ones(self.num_edges)
        return sp.csc_matrix(
            (w, self.indices.numpy(), self.indptr.numpy()), shape=(self.num_nodes, self.num_nodes)
        )

    def in_degrees(self) -> torch.Tensor:
        """int64 [N]: the number of edges into each node."""
        return self.indptr[1:] - self.indptr[:-1]

    def out_degrees(self) -> torch.Tensor:
        """int64 [N]: the number of edges out of each node."""
        return torch.bincount(self.indices.long(), minlength=self.num_nodes)

    def share_memory_(self) -> Graph:
        """Move every tensor to shared memory (for worker or GPU processes); returns self.

        A graph memory-mapped by ``Graph.load`` stays as it is: processes share its files
        through the page cache, and it pickles as its folder (each process maps the same
        files), so nothing is copied.
        """
        from gnnsys.graph_io import file_backed

        if file_backed(self) is not None:
            return self
        for t in self._tensors():
            t.share_memory_()
        return self

    def __reduce_ex__(self, protocol: Any) -> Any:
        from gnnsys.graph_io import file_backed, reopen

        folder = file_backed(self)
        if folder is not None and not (self.ndata or self.edata):
            return (reopen, (folder,))
        return super().__reduce_ex__(protocol)

    def save(self, path: Any, *, overwrite: bool = False) -> Any:
        """Write the CSC arrays to the folder ``path`` as .npy files (atomically), to be
        memory-mapped back by ``Graph.load``; see ``gnnsys.graph_io`` for the layout.

        Example:
            >>> g.save("/tmp/g")  # doctest: +SKIP
            PosixPath('/tmp/g')
        """
        from gnnsys.graph_io import save_graph

        return save_graph(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: Any, *, mmap: bool = True, validate: bool = True) -> Graph:
        """Read a graph folder written by ``save`` or by the out-of-core build. With ``mmap``
        the arrays are memory-mapped: samplers read them in place (page cache, no copy), so a
        graph larger than RAM samples, and processes that load it share one copy.

        Example:
            >>> Graph.load("/tmp/g").num_nodes  # doctest: +SKIP
            3
        """
        from gnnsys.graph_io import load_graph

        return load_graph(path, mmap=mmap, validate=validate)

    def pin_memory_(self) -> Graph:
        """Page-lock the CSC arrays (indptr, indices, edge_ids, edge_weight, type_per_edge) and
        map them for every GPU, so that a GPU sampler reads the structure from host memory in
        place (UVA) instead of a device copy; ``NeighborSampler`` then samples on the GPU.

        Registered in place with ``gnnsys.unified_tensor.pinning`` (refcounted; undone when the
        graph is freed). An array sharing a page with memory registered elsewhere is first
        copied into page-aligned memory of its own. Needs CUDA. Returns self.

        Example:
            >>> g.pin_memory_()  # doctest: +SKIP
            >>> NeighborSampler(g, [10, 5]).sample(seeds).nodes.device  # doctest: +SKIP
            device(type='cuda', index=0)
        """
        import weakref

        from gnnsys._checks import require_cuda

        require_cuda("Graph.pin_memory_()")
        from gnnsys.unified_tensor import pinning

        for name in ("indptr", "indices", "edge_ids", "edge_weight", "type_per_edge"):
            t = getattr(self, name)
            if t is None or t.numel() == 0:
                continue
            if t.device.type != "cpu":
                raise ValueError(
                    f"Graph.pin_memory_(): {name} is on {t.device}, not in host memory"
                )
            t = t.contiguous()
            nbytes = t.numel() * t.element_size()
            if t.is_pinned() and not pinning.is_registered(t.data_ptr(), nbytes):
                continue  # page-locked already (torch's pinned allocator)
            try:
                reg = pinning.register(t.data_ptr(), nbytes, t)
            except pinning.CudaError:  # e.g. a page shared with another registration
                page = pinning.PAGE_BYTES
                buf = torch.empty(-(-nbytes // page) * page + page, dtype=torch.uint8)
                skip = (-buf.data_ptr()) % page
                t = buf[skip : skip + nbytes].view(t.dtype).copy_(t)
                reg = pinning.register(t.data_ptr(), nbytes, buf)
            setattr(self, name, t)
            weakref.finalize(self, pinning.release, reg)
        return self

    def structure_tensors(self) -> Tuple[Optional[torch.Tensor], ...]:
        """(indptr, indices, edge_ids, type_per_edge, node_type_offset): the arrays that define
        what a sampler reads (None where absent); caches of layouts derived from the graph are
        keyed on them (``gnnsys._tokens``)."""
        return (self.indptr, self.indices, self.edge_ids, self.type_per_edge,
                self.node_type_offset)  # fmt: skip

    def _tensors(self) -> list:
        ts = [self.indptr, self.indices, self.edge_ids, self.edge_weight]
        ts += [self.node_type_offset, self.type_per_edge]
        ts += list(self.ndata.values()) + list(self.edata.values())
        return [t for t in ts if t is not None]

    # ------------------------------------------------------------------ checks
    def _validate(self) -> None:
        ip, ix = self.indptr, self.indices
        if ip.dim() != 1 or ip.numel() < 1:
            raise ValueError(
                f"indptr must be 1-D with N+1 >= 1 entries, got shape {tuple(ip.shape)}"
            )
        if not _is_integer(ip):
            raise ValueError(f"indptr must be an integer tensor, got dtype {ip.dtype}")
        if ix.dim() != 1:
            raise ValueError(f"indices must be 1-D, got shape {tuple(ix.shape)}")
        if not _is_integer(ix):
            raise ValueError(f"indices must hold integer node ids, got dtype {ix.dtype}")
        if int(ip[0]) != 0:
            raise ValueError(f"indptr must start at 0, got {int(ip[0])}")
        if ip.numel() > 1 and bool((ip[1:] < ip[:-1]).any()):
            bad = int(torch.nonzero(ip[1:] < ip[:-1])[0])
            raise ValueError(f"indptr must be non-decreasing; it drops after position {bad}")
        if int(ip[-1]) != ix.numel():
            raise ValueError(f"indptr ends at {int(ip[-1])} but indices has {ix.numel()} entries")
        if ix.numel():
            lo, hi = int(ix.min()), int(ix.max())
            if lo < 0:
                raise ValueError(f"indices holds a negative node id: {lo}")
            if hi >= self.num_nodes:
                raise ValueError(
                    f"indices holds node id {hi}, out of range for {self.num_nodes} nodes"
                )
        for name in ("edge_ids", "edge_weight"):
            t = getattr(self, name)
            if t is not None and (t.dim() != 1 or t.numel() != ix.numel()):
                raise ValueError(
                    f"{name} must have shape [{ix.numel()}] (one entry per edge), "
                    f"got {tuple(t.shape)}"
                )
        if self.edge_ids is not None:
            _check_edge_ids(self.edge_ids, ix.numel())

    def _check_types(self, full: bool) -> None:
        _check_type_arrays(self, full)


def type_layout(
    node_types: Sequence[str],
    edge_types: Sequence[EdgeType],
    type_per_edge: np.ndarray,
    node_type_offset: np.ndarray,
) -> Tuple[np.ndarray, ...]:
    """``Graph.type_layout`` from the names and arrays (a partition's ``DistGraph`` too):
    (type_per_edge, node_type_offset, etype_src, etype_dst, dst_etype_ptr, dst_etypes).

    Example:
        >>> type_layout(["a", "b"], [("a", "to", "b")], np.empty(0, np.int8), np.array([0, 2, 3]))[2]
        array([0])
    """
    names = list(node_types)
    src = np.asarray([names.index(e[0]) for e in edge_types], np.int64)
    dst = np.asarray([names.index(e[2]) for e in edge_types], np.int64)
    order = np.argsort(dst, kind="stable")
    ptr = np.zeros(len(names) + 1, np.int64)
    np.cumsum(np.bincount(dst, minlength=len(names)), out=ptr[1:])
    return type_per_edge, node_type_offset, src, dst, ptr, order.astype(np.int64)


def _check_type_arrays(g: Graph, full: bool) -> None:
    """The typing of ``g`` is consistent (names, offsets; with ``full``, every edge's type,
    endpoints and order too)."""
    nt, et = g._node_types, g._edge_types
    if (g.node_type_offset is not None or g.type_per_edge is not None) and nt is None:
        raise ValueError("node_type_offset / type_per_edge need node_types and edge_types")
    if nt is None:
        if et is not None:
            raise ValueError("edge_types given without node_types")
        return
    if et is None or not et:
        raise ValueError("node_types given without edge_types")
    if len(set(nt)) != len(nt):
        raise ValueError(f"node_types repeats a name: {nt}")
    if len(set(et)) != len(et):
        raise ValueError(f"edge_types repeats a type: {et}")
    for e in et:
        _check_edge_type(e, nt)
    off = g.node_type_offset
    if off is None:
        if len(nt) != 1:
            raise ValueError(f"{len(nt)} node types need node_type_offset")
        off = g.type_offsets()
    if off.dim() != 1 or off.numel() != len(nt) + 1:
        raise ValueError(f"node_type_offset must have {len(nt) + 1} entries, got {off.numel()}")
    if int(off[0]) != 0 or int(off[-1]) != g.num_nodes or bool((off[1:] < off[:-1]).any()):
        raise ValueError(
            f"node_type_offset must rise from 0 to num_nodes={g.num_nodes}, got {off.tolist()}"
        )
    tpe = g.type_per_edge
    if tpe is None:
        if len(et) != 1:
            raise ValueError(f"{len(et)} edge types need type_per_edge")
        return
    if tpe.dim() != 1 or tpe.numel() != g.num_edges:
        raise ValueError(f"type_per_edge must have one entry per edge ({g.num_edges})")
    if tpe.dtype not in (torch.int8, torch.int16, torch.int32):
        raise ValueError(f"type_per_edge must be int8, int16 or int32, got {tpe.dtype}")
    if not full or tpe.numel() == 0:
        return
    lo, hi = int(tpe.min()), int(tpe.max())
    if lo < 0 or hi >= len(et):
        raise ValueError(
            f"type_per_edge holds type {lo if lo < 0 else hi}; valid: 0..{len(et) - 1}"
        )
    kinds = tpe.long()
    dst = csc_destinations(g.indptr, num_edges=g.num_edges)
    same_col = dst[1:] == dst[:-1]
    if bool((same_col & (kinds[1:] < kinds[:-1])).any()):
        raise ValueError("type_per_edge must be sorted within every destination's edges")
    src_t = torch.tensor([nt.index(e[0]) for e in et])[kinds]
    dst_t = torch.tensor([nt.index(e[2]) for e in et])[kinds]
    node_t = torch.searchsorted(off, torch.arange(g.num_nodes), right=True) - 1
    if bool((node_t[g.indices.long()] != src_t).any()):
        raise ValueError("an edge's source is not of its edge type's source node type")
    if bool((node_t[dst] != dst_t).any()):
        raise ValueError("an edge's destination is not of its edge type's destination node type")


def _check_edge_index(edge_index: Any, name: str = "edge_index") -> torch.Tensor:
    ei = as_cpu_tensor(name, edge_index)
    if ei.device.type != "cpu":
        raise ValueError(f"{name} must be on the CPU, got a tensor on {ei.device}")
    if ei.dtype.is_floating_point or ei.dtype.is_complex or ei.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer node ids, got dtype {ei.dtype}")
    if ei.dim() != 2 or ei.shape[0] != 2:
        raise ValueError(f"{name} must have shape [2, E], got {tuple(ei.shape)}")
    ei = ei.long()
    if ei.numel():
        lo = int(ei.min())
        if lo < 0:
            raise ValueError(f"{name} holds a negative node id: {lo}")
    return ei


def _check_node_counts(num_nodes_dict: Any) -> Tuple[List[str], np.ndarray]:
    """(node type names, int64 offsets [T+1]) from ``{node type: count}``."""
    if not isinstance(num_nodes_dict, Mapping) or not num_nodes_dict:
        raise ValueError("num_nodes_dict must be a non-empty dict {node type: number of nodes}")
    names = list(num_nodes_dict)
    offsets = np.zeros(len(names) + 1, np.int64)
    for i, t in enumerate(names):
        if not isinstance(t, str):
            raise ValueError(f"node type names must be str, got {t!r}")
        c = num_nodes_dict[t]
        if isinstance(c, torch.Tensor) and c.numel() == 1:
            c = int(c)
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 0:
            raise ValueError(f"num_nodes_dict[{t!r}] must be an int >= 0, got {c!r}")
        offsets[i + 1] = offsets[i] + int(c)
    return names, offsets


def _check_edge_type(et: Any, node_types: List[str]) -> EdgeType:
    if not (isinstance(et, (tuple, list)) and len(et) == 3 and all(isinstance(p, str) for p in et)):
        raise ValueError(f"edge types must be (src_type, relation, dst_type) triples, got {et!r}")
    for side in (et[0], et[2]):
        if side not in node_types:
            raise ValueError(
                f"edge type {tuple(et)!r} names node type {side!r}, which num_nodes_dict lacks "
                f"(node types: {node_types})"
            )
    return (et[0], et[1], et[2])


def hetero_node_counts(data: Any) -> Dict[str, int]:
    """{node type: count} of a PyG ``HeteroData``; a ValueError names a type whose count PyG
    cannot tell."""
    counts = {}
    for t in data.node_types:
        c = data[t].num_nodes
        if c is None:
            raise ValueError(f"HeteroData: the number of {t!r} nodes is unknown; set num_nodes")
        counts[t] = int(c)
    return counts


def _from_hetero_data(cls: Any, data: Any, weight_attr: Optional[str] = None) -> Graph:
    """``Graph.from_pyg`` for a PyG ``HeteroData``."""
    counts = hetero_node_counts(data)
    edges, weights = {}, {}
    for et in data.edge_types:
        store = data[et]
        if "edge_index" not in store:
            raise ValueError(f"HeteroData: edge type {et!r} has no edge_index")
        edges[et] = store.edge_index
        if weight_attr is not None:
            if weight_attr not in store:
                raise ValueError(f"HeteroData: edge type {et!r} has no attribute {weight_attr!r}")
            weights[et] = store[weight_attr]
    return cls.from_hetero(edges, counts, edge_weight_dict=weights if weight_attr else None)


def _infer_num_nodes(ei: torch.Tensor, num_nodes: Optional[int]) -> int:
    hi = int(ei.max()) if ei.numel() else -1
    if num_nodes is None:
        return hi + 1
    _check_num_nodes(num_nodes)
    if hi >= num_nodes:
        raise ValueError(
            f"edge_index holds node id {hi} but num_nodes={num_nodes} (ids must be < num_nodes)"
        )
    return int(num_nodes)


def _check_num_nodes(num_nodes: Any) -> None:
    if not isinstance(num_nodes, (int, np.integer)) or isinstance(num_nodes, bool):
        raise ValueError(f"num_nodes must be an int, got {num_nodes!r}")
    if num_nodes < 0:
        raise ValueError(f"num_nodes must be >= 0, got {num_nodes}")


def _is_integer(t: torch.Tensor) -> bool:
    return not (t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool)


def _check_edge_weight(edge_weight: Any, num_edges: int) -> Optional[torch.Tensor]:
    """A 1-D real weight per edge (integers and bools become float32; complex is refused)."""
    if edge_weight is None:
        return None
    w = as_cpu_tensor("edge_weight", edge_weight)
    if w.dim() != 1 or w.numel() != num_edges:
        raise ValueError(f"edge_weight must have shape [{num_edges}], got {tuple(w.shape)}")
    if w.dtype.is_complex:
        raise ValueError(f"edge_weight must hold real numbers, got dtype {w.dtype}")
    if not w.dtype.is_floating_point:
        w = w.float()
    return w


def _check_edge_ids(edge_ids: Any, num_edges: int) -> Optional[torch.Tensor]:
    """A 1-D int64 id per edge, each >= 0 or the -1 that marks an edge without one."""
    if edge_ids is None:
        return None
    t = as_cpu_tensor("edge_ids", edge_ids)
    if not _is_integer(t):
        raise ValueError(f"edge_ids must hold integer edge ids, got dtype {t.dtype}")
    if t.dim() != 1 or t.numel() != num_edges:
        raise ValueError(
            f"edge_ids must have shape [{num_edges}] (one id per edge), got {tuple(t.shape)}"
        )
    t = t.long()
    if t.numel():
        lo = int(t.min())
        if lo < -1:
            raise ValueError(
                f"edge_ids holds {lo}; edge ids must be >= 0 (-1 marks an edge without an id, "
                "as a self loop added by self_loops='add')"
            )
    return t


def _add_self_loops(indptr, indices, edge_ids, weight):
    # Append one self loop at the end of the column of every node that has none.
    n = indptr.numel() - 1
    deg = indptr[1:] - indptr[:-1]
    dst = csc_destinations(indptr, num_edges=indices.numel())
    has_loop = torch.zeros(n, dtype=torch.bool)
    has_loop[dst[indices.long() == dst]] = True
    add = (~has_loop).long()
    new_indptr = torch.zeros(n + 1, dtype=torch.int64)
    torch.cumsum(deg + add, 0, out=new_indptr[1:])
    total = int(new_indptr[-1])
    loop_nodes = torch.nonzero(~has_loop).flatten()
    loop_pos = new_indptr[1:][loop_nodes] - 1
    is_old = torch.ones(total, dtype=torch.bool)
    is_old[loop_pos] = False
    new_indices = torch.empty(total, dtype=indices.dtype)
    new_indices[is_old] = indices
    new_indices[loop_pos] = loop_nodes.to(indices.dtype)
    new_ids = torch.full((total,), -1, dtype=torch.int64)
    new_ids[is_old] = edge_ids
    new_w = None
    if weight is not None:
        new_w = torch.ones(total, dtype=weight.dtype)
        new_w[is_old] = weight
    return new_indptr, new_indices, new_ids, new_w


def dgl_edge_index(g: Any, etype: Any = None) -> torch.Tensor:
    """[2, E] int64 (source, destination) of a DGL graph's edges (of ``etype``) in edge-id
    order, on the CPU. A graph restricted to CSC (``g.formats(["csc"])``, as DGL's LABOR
    example makes) cannot list its edges by id (``g.edges(order="eid")`` needs COO or CSR):
    its CSC, whose third array maps positions to edge ids, gives them instead."""
    formats = g.formats()
    allowed = set(formats["created"]) | set(formats["not created"])
    if allowed & {"coo", "csr"}:
        u, v = g.edges(etype=etype, order="eid")
        return torch.stack([u.long().cpu(), v.long().cpu()])
    indptr, indices, eids = (t.long().cpu() for t in g.adj_tensors("csc", etype=etype))
    dst = csc_destinations(indptr, num_edges=indices.numel())
    out = torch.empty(2, indices.numel(), dtype=torch.int64)
    if eids.numel() == 0:  # (DGL leaves it empty when the ids are the CSC positions)
        eids = torch.arange(indices.numel())
    out[0, eids] = indices
    out[1, eids] = dst
    return out
