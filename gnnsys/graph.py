"""Graph: CSC adjacency of incoming edges, the structure every sampler and op reads.

``indptr[v]:indptr[v+1]`` slices ``indices`` to the sources of the edges pointing into ``v``
(messages flow source -> destination, as PyG's ``flow="source_to_target"`` and DGL's in-edges).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from gnnsys._checks import as_cpu_tensor, check_choice, check_index, index_dtype

_SELF_LOOPS = ("keep", "remove", "add")


class Graph:
    """A directed graph in CSC form (incoming edges grouped by destination).

    Attributes:
        indptr: int64 [N+1] column starts.
        indices: int32 [E] (int64 when N >= 2^31) source node of each edge.
        edge_ids: optional int64 [E], each edge's position in the caller's edge list
            (-1 for self loops added by ``self_loops="add"``).
        edge_weight: optional float [E].
        ndata, edata: dicts of per-node / per-edge tensors (edata in CSC order), used by the
            DGL adapter.

    Example:
        >>> g = Graph.from_edge_index(torch.tensor([[0, 1, 2], [1, 2, 0]]))
        >>> g.in_degrees().tolist()
        [1, 1, 1]
    """

    def __init__(
        self,
        indptr: torch.Tensor,
        indices: torch.Tensor,
        *,
        edge_ids: Optional[torch.Tensor] = None,
        edge_weight: Optional[torch.Tensor] = None,
        validate: bool = True,
    ) -> None:
        self.indptr = indptr
        self.indices = indices
        self.edge_ids = edge_ids
        self.edge_weight = edge_weight
        self.ndata: Dict[str, torch.Tensor] = {}
        self.edata: Dict[str, torch.Tensor] = {}
        if validate:
            self._validate()

    # ------------------------------------------------------------------ properties
    @property
    def num_nodes(self) -> int:
        return self.indptr.numel() - 1

    @property
    def num_edges(self) -> int:
        return self.indices.numel()

    def __repr__(self) -> str:
        extra = []
        if self.edge_ids is not None:
            extra.append("edge_ids")
        if self.edge_weight is not None:
            extra.append(f"edge_weight={self.edge_weight.dtype}")
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
    def from_pyg(cls, data: Any, **kwargs: Any) -> Graph:
        """Build from a ``torch_geometric.data.Data`` (``edge_index``, optional ``edge_weight``).

        Example:
            >>> Graph.from_pyg(Data(edge_index=torch.tensor([[0], [1]]), num_nodes=3)).num_nodes
            3
        """
        ei = getattr(data, "edge_index", None)
        if ei is None:
            raise ValueError("data has no edge_index")
        weight = getattr(data, "edge_weight", None)
        kwargs.setdefault("edge_weight", weight)
        return cls.from_edge_index(ei, data.num_nodes, **kwargs)

    @classmethod
    def from_dgl(cls, g: Any) -> Graph:
        """Build from a homogeneous DGL graph; copies ``ndata`` and ``edata`` (``edata`` in CSC order).

        Example:
            >>> Graph.from_dgl(dgl.graph(([0], [1]))).num_edges
            1
        """
        src, dst = g.edges()
        out = cls.from_edge_index(torch.stack([src.long(), dst.long()]), g.num_nodes())
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
        dst = torch.repeat_interleave(
            torch.arange(self.num_nodes, dtype=torch.int64), self.in_degrees()
        )
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
        """Move every tensor to shared memory (for worker or GPU processes); returns self."""
        for t in self._tensors():
            t.share_memory_()
        return self

    def _tensors(self) -> list:
        ts = [self.indptr, self.indices, self.edge_ids, self.edge_weight]
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


def _check_edge_index(edge_index: Any) -> torch.Tensor:
    ei = as_cpu_tensor("edge_index", edge_index)
    if ei.device.type != "cpu":
        raise ValueError(f"edge_index must be on the CPU, got a tensor on {ei.device}")
    if ei.dtype.is_floating_point or ei.dtype.is_complex or ei.dtype == torch.bool:
        raise ValueError(f"edge_index must hold integer node ids, got dtype {ei.dtype}")
    if ei.dim() != 2 or ei.shape[0] != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {tuple(ei.shape)}")
    ei = ei.long()
    if ei.numel():
        lo = int(ei.min())
        if lo < 0:
            raise ValueError(f"edge_index holds a negative node id: {lo}")
    return ei


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
    dst = torch.repeat_interleave(torch.arange(n, dtype=torch.int64), deg)
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
