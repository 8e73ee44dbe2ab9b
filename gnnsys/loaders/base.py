"""The contract between samplers and the Loader: the ``Sampler`` protocol and ``SampledSubgraph``.

Samplers know nothing of features or devices (as PyG's ``torch_geometric/sampler``): they turn a
batch of seeds into a ``SampledSubgraph`` of local ids; the Loader joins features and labels and
the adapters (``loaders.pyg``, ``loaders.dgl``) build the user's object from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Protocol, Tuple, runtime_checkable

import torch


@dataclass
class SampledSubgraph:
    """A sampled neighbourhood in local ids.

    Fields:
        nodes: int64 [n] global ids: the seeds first, in batch order, then each hop's new nodes.
        row: int64 [E] local id (into ``nodes``) of each edge's neighbour (message source).
        col: int64 [E] local id of the node the edge is aggregated into (message destination).
            Edges are in hop order (hop 1 = edges into the seeds first) and, within a hop,
            grouped by destination.
        num_sampled_nodes: nodes added per hop, hop 0 = the seeds; sums to ``len(nodes)``.
        num_sampled_edges: edges per hop 1..L; sums to ``E``.
        edge_ids: optional int64 [E] global edge ids (the Graph's ``edge_ids`` when it has them,
            else CSC positions).
        layered: True for DGL semantics (hop h samples for every node known before it, so its
            destinations are the prefix ``nodes[:sum(num_sampled_nodes[:h])]``); False for PyG
            semantics (hop h samples only for the nodes new in hop h-1).
        batch: optional int64 [n] seed index of each node (``disjoint=True``).
        metadata: sampler-specific extras (link labels, chunk info), named, never positional.
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

    @property
    def num_seeds(self) -> int:
        return self.num_sampled_nodes[0]

    @property
    def num_hops(self) -> int:
        return len(self.num_sampled_edges)

    def hop_edges(self, hop: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """(row, col) of the edges sampled in ``hop`` (1-based)."""
        if not 1 <= hop <= self.num_hops:
            raise ValueError(f"hop must be in 1..{self.num_hops}, got {hop}")
        lo = sum(self.num_sampled_edges[: hop - 1])
        hi = lo + self.num_sampled_edges[hop - 1]
        return self.row[lo:hi], self.col[lo:hi]


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
            x = _splitmix64(x ^ (int(v) & 0xFFFFFFFFFFFFFFFF))
        return x & 0x7FFFFFFFFFFFFFFF


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)
