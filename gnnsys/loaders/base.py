"""The contract between samplers and the Loader: the ``Sampler`` protocol and ``SampledSubgraph``.

Samplers know nothing of features or devices (as PyG's ``torch_geometric/sampler``): they turn a
batch of seeds into a ``SampledSubgraph`` of local ids; the Loader joins features and labels and
the adapters (``loaders.pyg``, ``loaders.dgl``) build the user's object from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Dict, List, Optional, Protocol, Tuple, Union, runtime_checkable

import torch

from gnnsys._coo import csc_destinations, csc_indptr
from gnnsys._hash import splitmix64_py


@dataclass
class HopBlock:
    """The edges one hop sampled through one edge type, in CSC form (straight from the kernel).

    Fields:
        indptr: int64 [num_dst + 1] offsets of each destination's edges (relative: starts at 0).
        indices: int64 [E] each edge's source: its position in ``SampledSubgraph.nodes`` (one
            node type) or its id within the source node type (typed).
        edge_ids: int64 [E] global edge ids (per edge type when typed), or None.
        dst_start: id of the first destination (position / id within the destination type);
            destination i is ``dst_start + i``.
        etype: the edge type's id (0 for an untyped graph).

    Example:
        >>> blk = sub.block(1)
        >>> deg = blk.indptr[1:] - blk.indptr[:-1]     # sampled in-degree of each destination
    """

    indptr: torch.Tensor
    indices: torch.Tensor
    edge_ids: Optional[torch.Tensor]
    dst_start: int
    etype: int = 0

    @property
    def num_dst(self) -> int:
        return int(self.indptr.numel()) - 1

    @property
    def num_edges(self) -> int:
        return int(self.indices.numel())

    def dst(self) -> torch.Tensor:
        """int64 [E]: each edge's destination id (expanded from ``indptr``)."""
        return csc_destinations(self.indptr, start=self.dst_start, num_edges=self.num_edges)


@dataclass
class SampledSubgraph:
    """A sampled neighbourhood in local ids, typed or not.

    Fields:
        nodes: int64 [n] global ids. One node type: the seeds first, in batch order, then each
            hop's new nodes. Typed: grouped by node type (``node_offsets``), each type in that
            same discovery order.
        row: int64 [E] each edge's neighbour (message source), col: int64 [E] the node it is
            aggregated into (message destination): positions in ``nodes`` for one node type,
            ids within the node's type when typed. Edges are ordered by edge type, then hop
            (hop 1 = edges into the seeds), then destination.
        num_sampled_nodes: nodes added per hop, hop 0 = the seeds (all types); sums to n.
        num_sampled_edges: edges per hop 1..L (all edge types); sums to E.
        edge_ids: optional int64 [E] global edge ids (the Graph's ``edge_ids`` when it has them,
            else CSC positions).
        layered: True for DGL semantics (hop h samples for every node known before it, so its
            destinations are the prefix ``nodes[:sum(num_sampled_nodes[:h])]``, per type when
            typed); False for PyG semantics (hop h samples only for the nodes new in hop h-1).
        batch: optional int64 [n] seed index of each node (``disjoint=True``).
        metadata: sampler-specific extras (link labels, chunk info), named, never positional.
        node_offsets: optional int64 [T+1]: type t's nodes are ``nodes[off[t]:off[t+1]]``.
        type_num_sampled_nodes: optional int64 [L+1, T]: nodes of each type added per hop.
        edge_ptr: optional int64 [K*L+1]: the edges of type e sampled in hop h (1-based) are
            ``edge_ptr[e*L + h-1] .. edge_ptr[e*L + h]`` (K edge types, L hops).
        hop_indptr, hop_indptr_ptr, hop_dst_start: the kernel's per-(edge type, hop) CSC offsets
            (``hop_indptr[hop_indptr_ptr[s]:hop_indptr_ptr[s+1]]`` for segment s = e*L + h-1)
            and first destination ids; ``block(hop, etype)`` reads them. None: derived from
            ``col`` on demand (a subgraph built from COO, e.g. by a user transform).
        node_types, edge_types: the graph's type names when typed.
    """

    nodes: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    num_sampled_nodes: List[int]
    num_sampled_edges: List[int]
    edge_ids: Optional[torch.Tensor] = None
    layered: bool = False
    batch: Optional[torch.Tensor] = None
    metadata: Dict[str, Any] = field(default_factory=dict)
    node_offsets: Optional[torch.Tensor] = None
    type_num_sampled_nodes: Optional[torch.Tensor] = None
    edge_ptr: Optional[torch.Tensor] = None
    hop_indptr: Optional[torch.Tensor] = None
    hop_indptr_ptr: Optional[torch.Tensor] = None
    hop_dst_start: Optional[torch.Tensor] = None
    node_types: Optional[List[str]] = None
    edge_types: Optional[List[Tuple[str, str, str]]] = None
    _lists: Dict[str, Tuple[torch.Tensor, List[int]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def num_seeds(self) -> int:
        return self.num_sampled_nodes[0]

    @property
    def num_hops(self) -> int:
        return len(self.num_sampled_edges)

    @property
    def num_edge_types(self) -> int:
        return 1 if self.edge_ptr is None else (self.edge_ptr.numel() - 1) // max(self.num_hops, 1)

    @property
    def is_typed(self) -> bool:
        return self.node_types is not None

    def _check_hop(self, hop: int) -> None:
        if not 1 <= hop <= self.num_hops:
            raise ValueError(f"hop must be in 1..{self.num_hops}, got {hop}")

    def edge_span(self, hop: int, etype: int = 0) -> Tuple[int, int]:
        """[lo, hi) of the edges sampled in ``hop`` (1-based) through edge type ``etype``."""
        self._check_hop(hop)
        if self.edge_ptr is None:
            if etype != 0:
                raise ValueError(f"etype must be 0 for an untyped subgraph, got {etype}")
            lo = sum(self.num_sampled_edges[: hop - 1])
            return lo, lo + self.num_sampled_edges[hop - 1]
        if not 0 <= etype < self.num_edge_types:
            raise ValueError(f"etype must be in 0..{self.num_edge_types - 1}, got {etype}")
        s = etype * self.num_hops + hop - 1
        ptr = self._offsets("edge_ptr")
        return ptr[s], ptr[s + 1]

    def type_edge_range(self, etype: int = 0) -> Tuple[int, int]:
        """[lo, hi) of every edge sampled through edge type ``etype``, all hops (an edge type's
        hops are adjacent: edges are ordered by edge type, then hop); (0, 0) without hops."""
        if not self.num_hops:
            return 0, 0
        return self.edge_span(1, etype)[0], self.edge_span(self.num_hops, etype)[1]

    def type_edge_counts(self, etype: int = 0) -> List[int]:
        """Edges sampled through edge type ``etype`` in each hop 1..L."""
        spans = (self.edge_span(h, etype) for h in range(1, self.num_hops + 1))
        return [hi - lo for lo, hi in spans]

    def _offsets(self, name: str) -> List[int]:
        """The offsets tensor field ``name`` as a list, remembered while the field holds the
        same tensor: a batch's builders ask for its spans dozens of times, and reading one
        tensor element costs about a microsecond (2-3% of the PyG hetero loader's time, py-spy).
        Offsets are never written in place."""
        tensor = getattr(self, name)
        hit = self._lists.get(name)
        if hit is None or hit[0] is not tensor:
            hit = self._lists[name] = (tensor, tensor.tolist())
        return hit[1]

    def hop_edges(self, hop: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """(row, col) of the edges sampled in ``hop`` (1-based); one edge type only."""
        if self.num_edge_types != 1:
            raise ValueError("hop_edges needs one edge type; use block(hop, etype)")
        lo, hi = self.edge_span(hop)
        return self.row[lo:hi], self.col[lo:hi]

    def block(self, hop: int, etype: int = 0) -> HopBlock:
        """The edges of ``hop`` (1-based) through edge type ``etype`` in CSC form.

        Example:
            >>> blk = sub.block(1)   # the seeds' sampled in-edges
        """
        lo, hi = self.edge_span(hop, etype)
        eid = self.edge_ids[lo:hi] if self.edge_ids is not None else None
        if self.hop_indptr is not None:
            s = etype * self.num_hops + hop - 1
            ptr = self.hop_indptr[int(self.hop_indptr_ptr[s]) : int(self.hop_indptr_ptr[s + 1])]
            start = int(self.hop_dst_start[s])
            return HopBlock(ptr, self.row[lo:hi], eid, start, etype)
        return self._derived_block(hop, lo, hi, eid)

    def _derived_block(self, hop: int, lo: int, hi: int, eid: Optional[torch.Tensor]) -> HopBlock:
        # A subgraph built from COO: destinations are the hop's frontier (a prefix for layered
        # subgraphs); edges are grouped by destination with a stable sort if they are not.
        if self.is_typed:
            raise ValueError(
                "block() of a typed subgraph needs the sampler's per-hop CSC, which only "
                "subgraph_type='directional' produces; use row/col and edge_span() instead"
            )
        prefix = [0]
        for c in self.num_sampled_nodes:
            prefix.append(prefix[-1] + c)
        start = 0 if self.layered else prefix[hop - 1]
        num_dst = prefix[hop] - start
        row, col = self.row[lo:hi], self.col[lo:hi]
        if col.numel() > 1 and not bool((col[1:] >= col[:-1]).all()):
            order = torch.sort(col, stable=True).indices
            row, col = row[order], col[order]
            eid = eid[order] if eid is not None else None
        if col.numel() and (int(col.min()) < start or int(col.max()) >= start + num_dst):
            raise ValueError(f"hop {hop} has destinations outside its frontier")
        return HopBlock(csc_indptr(col - start, num_dst), row, eid, start)

    def edge_index(self) -> torch.Tensor:
        """``stack([row, col])``, without a copy when both are rows of one [2, E] tensor (as
        the samplers here produce them).

        Example:
            >>> sub.edge_index().shape
            torch.Size([2, 1234])
        """
        row, col = self.row, self.col
        base = row._base
        if (
            base is not None
            and col._base is base
            and base.dim() == 2
            and base.shape[0] == 2
            and base.is_contiguous()
            and row.numel() == col.numel() == base.shape[1]
            and row.stride() == col.stride() == (1,)
            and row.data_ptr() == base.data_ptr()
            and col.data_ptr() == base.data_ptr() + base.shape[1] * base.element_size()
        ):
            return base
        return torch.stack([row, col])

    def to(self, device: Union[str, torch.device], non_blocking: bool = False) -> SampledSubgraph:
        """A copy with every tensor (metadata tensors too) on ``device``; ``row`` and ``col``
        stay views of one [2, E] tensor.

        Example:
            >>> sub = sub.to("cuda", non_blocking=True)
        """

        def mv(t: Any) -> Any:
            return t.to(device, non_blocking=non_blocking) if isinstance(t, torch.Tensor) else t

        ei = mv(self.edge_index())
        moved = {
            f.name: mv(getattr(self, f.name))
            for f in fields(self)
            if f.init and f.name not in ("row", "col")
        }
        moved["metadata"] = {k: mv(v) for k, v in self.metadata.items()}
        return replace(self, row=ei[0], col=ei[1], **moved)

    def type_nodes(self, ntype: int) -> torch.Tensor:
        """Global ids of the sampled nodes of node type ``ntype`` (all nodes when untyped)."""
        if self.node_offsets is None:
            if ntype != 0:
                raise ValueError(f"ntype must be 0 for an untyped subgraph, got {ntype}")
            return self.nodes
        off = self._offsets("node_offsets")
        return self.nodes[off[ntype] : off[ntype + 1]]


@runtime_checkable
class Sampler(Protocol):
    """Anything that turns a batch of seeds into a ``SampledSubgraph``.

    ``generator`` carries the counter-based randomness key (seed, epoch, batch) so that a given
    seed yields identical batches whatever the number of threads.
    """

    def sample(self, seeds: torch.Tensor, generator: SampleKey) -> SampledSubgraph: ...


@dataclass(frozen=True)
class SampleKey:
    """The counter-based randomness key of one batch: (seed, epoch, batch).

    Kernels hash (seed, epoch, batch, node, draw) into their random numbers, so results do not
    depend on how work is split among threads.
    """

    seed: int = 0
    epoch: int = 0
    batch: int = 0

    def as_int(self) -> int:
        """One 63-bit integer mixing the three counters (splitmix64 steps)."""
        x = 0
        for v in (self.seed, self.epoch, self.batch):
            x = splitmix64_py(x ^ (int(v) & 0xFFFFFFFFFFFFFFFF))
        return x & 0x7FFFFFFFFFFFFFFF


KeyLike = Union[SampleKey, int, None]


def key_int(generator: KeyLike) -> int:
    """The 63-bit integer a kernel hashes its draws from (SampleKey, int, or None = key 0).

    Example:
        >>> key_int(SampleKey(seed=1)) == SampleKey(seed=1).as_int()
        True
    """
    if generator is None:
        return SampleKey().as_int()
    if isinstance(generator, SampleKey):
        return generator.as_int()
    if isinstance(generator, int) and not isinstance(generator, bool):
        return int(generator) & 0x7FFFFFFFFFFFFFFF
    try:
        import numpy as np

        if isinstance(generator, np.integer):
            return int(generator) & 0x7FFFFFFFFFFFFFFF
    except ImportError:  # pragma: no cover - numpy ships with torch
        pass
    raise TypeError(f"generator must be a SampleKey or an int, got {type(generator).__name__}")
