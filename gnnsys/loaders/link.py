"""LinkSampler: seed edges plus negative samples, then neighbour sampling around all endpoints.

The Loader hands it positions into ``edge_label_index``; it draws negatives (PyG's "binary"
and "triplet" modes, counter-based so they do not depend on threads), merges every endpoint
into the seed set and samples their neighbourhood with a ``NeighborSampler``. The link labels
travel in ``SampledSubgraph.metadata`` under PyG's names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from gnnsys._checks import check_data_device, check_ids
from gnnsys.graph import Graph
from gnnsys.loaders import _kernels
from gnnsys.loaders.base import KeyLike, SampledSubgraph, key_int
from gnnsys.loaders.neighbor import NeighborSampler, TemporalNeighborSampler

NEG_MODES = ("binary", "triplet")
_SALT_SRC, _SALT_DST = 0x51C, 0xD57


@dataclass
class NegativeSampling:
    """How to draw negative links (PyG's ``NegativeSampling``).

    ``mode="binary"``: ``ceil(amount * B)`` random (src, dst) pairs labelled 0.
    ``mode="triplet"``: ``amount`` random destinations per positive (``amount`` an integer).
    ``src_weight`` / ``dst_weight``: optional per-node sampling weights (default uniform).

    Example:
        >>> NegativeSampling("binary", amount=2)
        NegativeSampling(mode='binary', amount=2, src_weight=None, dst_weight=None)
    """

    mode: str
    amount: float = 1
    src_weight: Optional[torch.Tensor] = None
    dst_weight: Optional[torch.Tensor] = None

    def __post_init__(self) -> None:
        if self.mode not in NEG_MODES:
            raise ValueError(f"neg_sampling mode must be one of {NEG_MODES}, got {self.mode!r}")
        if isinstance(self.amount, bool) or not isinstance(self.amount, (int, float, np.number)):
            raise TypeError(f"neg_sampling amount must be a number, got {self.amount!r}")
        if not (math.isfinite(self.amount) and self.amount > 0):
            raise ValueError(f"neg_sampling amount must be > 0, got {self.amount}")
        if self.mode == "triplet":
            if self.amount != math.ceil(self.amount):
                raise ValueError(
                    f"triplet negative sampling needs an integer amount, got {self.amount}"
                )
            self.amount = int(self.amount)

    @classmethod
    def cast(cls, value: Any) -> Optional[NegativeSampling]:
        """From None, a mode string, a dict, ours or PyG's ``NegativeSampling`` object."""
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, dict):
            return cls(**value)
        if hasattr(value, "mode") and hasattr(value, "amount"):  # torch_geometric's class
            mode = getattr(value.mode, "value", value.mode)
            return cls(
                str(mode),
                value.amount,
                getattr(value, "src_weight", None),
                getattr(value, "dst_weight", None),
            )
        raise TypeError(f"neg_sampling must be a mode string, dict or NegativeSampling: {value!r}")

    def num_negatives(self, num_pos: int) -> int:
        if self.mode == "binary":
            return math.ceil(num_pos * self.amount)
        return num_pos * int(self.amount)


class LinkSampler:
    """Sample around seed edges (and negatives) for link prediction.

    Args:
        graph: the message-passing ``Graph``.
        fanouts: neighbours per hop, as ``NeighborSampler``.
        edge_label_index: int [2, M] (source, destination) global ids of the supervision edges;
            the Loader's seeds are positions 0..M-1 into it.
        edge_label: optional [M, ...] labels (binary mode: shifted by one when they start at 0,
            so 0 means "negative", as PyG does).
        neg_sampling: None, ``"binary"``, ``"triplet"``, a dict or a ``NegativeSampling``.
        edge_type: on a typed graph, the ``(src, rel, dst)`` type of the supervision edges:
            ``edge_label_index`` then holds ids within the source and destination node types,
            and negatives are drawn among nodes of those types.
        edge_label_time, node_time, edge_time, temporal_strategy: temporal link sampling
            (PyG's ``edge_label_time``): give the graph's times as ``TemporalNeighborSampler``
            takes them and one time per supervision edge; each endpoint's subgraph then holds
            nothing newer than its edge, and with node-level times negatives are drawn among
            nodes not newer than the edge too (redrawn up to 5 times, then the oldest node,
            as PyG's ``neg_sample``). Always disjoint.
        **kwargs: ``replace``, ``weighted``, ``semantics``, ``subgraph_type``, ``disjoint`` of
            ``NeighborSampler``.

    ``metadata`` of each SampledSubgraph: ``input_id`` (positions), ``num_pos``, and either
    ``edge_label_index`` [2, B'] local ids (+ ``edge_label``, + ``edge_label_time`` when
    temporal) or, for triplets, ``src_index``, ``dst_pos_index``, ``dst_neg_index`` (local ids;
    on a typed graph ids within the sampled nodes of the source / destination type; +
    ``seed_time`` when temporal).

    Example:
        >>> ls = LinkSampler(g, [10, 5], g.to_edge_index()[:, :100], neg_sampling="binary")
        >>> sub = ls.sample(torch.arange(32), SampleKey(seed=0))
        >>> sub.metadata["edge_label"].shape
        torch.Size([64])
    """

    def __init__(
        self,
        graph: Graph,
        fanouts: Sequence[int],
        edge_label_index: Any,
        edge_label: Optional[torch.Tensor] = None,
        *,
        neg_sampling: Any = None,
        edge_type: Any = None,
        edge_label_time: Any = None,
        node_time: Any = None,
        edge_time: Any = None,
        temporal_strategy: str = "uniform",
        **kwargs: Any,
    ) -> None:
        self.temporal = node_time is not None or edge_time is not None
        if self.temporal:
            self.node_sampler: NeighborSampler = TemporalNeighborSampler(
                graph, fanouts, node_time=node_time, edge_time=edge_time,
                temporal_strategy=temporal_strategy, **kwargs,
            )  # fmt: skip
        else:
            if edge_label_time is not None:
                raise ValueError("edge_label_time needs the graph's times (node_time or edge_time)")
            self.node_sampler = NeighborSampler(graph, fanouts, **kwargs)
        self._setup(graph, edge_label_index, edge_label, neg_sampling, edge_type, edge_label_time)

    @classmethod
    def over(
        cls,
        node_sampler: Any,
        edge_label_index: Any,
        edge_label: Optional[torch.Tensor] = None,
        *,
        neg_sampling: Any = None,
        edge_type: Any = None,
        edge_label_time: Any = None,
    ) -> LinkSampler:
        """A LinkSampler around a node sampler that is already built (its graph and settings):
        e.g. a ``gnnsys.distributed.DistNeighborSampler``, so that link batches are sampled
        across machines. Arguments as the constructor's; temporal when the node sampler is
        (a ``DistTemporalNeighborSampler``: then ``edge_label_time`` is required).

        Example:
            >>> ls = LinkSampler.over(DistNeighborSampler(dist_graph, [10, 5]), eli[:, pos])
        """
        self = cls.__new__(cls)
        self.temporal = bool(getattr(node_sampler, "temporal", False))
        if edge_label_time is not None and not self.temporal:
            raise ValueError("edge_label_time needs a temporal node sampler")
        self.node_sampler = node_sampler
        self._setup(node_sampler.graph, edge_label_index, edge_label, neg_sampling, edge_type,
                    edge_label_time)  # fmt: skip
        return self

    @property
    def collective(self) -> bool:
        """Whether sampling is a collective (a distributed node sampler): see the Loader."""
        return bool(getattr(self.node_sampler, "collective", False))

    @property
    def lanes(self) -> int:
        """Batches a collective sampler may have in flight (its node sampler's lanes)."""
        return int(getattr(self.node_sampler, "lanes", 1))

    def _setup(
        self,
        graph: Any,
        edge_label_index: Any,
        edge_label: Optional[torch.Tensor],
        neg_sampling: Any,
        edge_type: Any,
        edge_label_time: Any,
    ) -> None:
        self.graph = graph
        if graph.num_edge_types > 1 and edge_type is None:
            raise ValueError(
                f"edge_type is required on a graph with several edge types: {graph.edge_types}"
            )
        et = graph.edge_types[graph.edge_type_id(edge_type)]
        off = graph.type_offsets()
        s_t, d_t = graph.node_type_id(et[0]), graph.node_type_id(et[2])
        self._src_off, self._dst_off = int(off[s_t]), int(off[d_t])
        self._num_src = int(off[s_t + 1]) - self._src_off
        self._num_dst = int(off[d_t + 1]) - self._dst_off
        self._typed = graph.is_hetero
        eli = edge_label_index
        if isinstance(eli, np.ndarray):
            eli = torch.from_numpy(eli)
        if not isinstance(eli, torch.Tensor):
            raise TypeError(f"edge_label_index must be a [2, M] tensor, got {type(eli).__name__}")
        if eli.dim() != 2 or eli.shape[0] != 2:
            raise ValueError(f"edge_label_index must have shape [2, M], got {tuple(eli.shape)}")
        self.src = check_ids("edge_label_index[0]", eli[0], self._num_src).contiguous()
        self.dst = check_ids("edge_label_index[1]", eli[1], self._num_dst).contiguous()
        self.neg_sampling = NegativeSampling.cast(neg_sampling)
        neg = self.neg_sampling
        if edge_label is not None:
            if not isinstance(edge_label, torch.Tensor):
                edge_label = torch.as_tensor(edge_label)
            if edge_label.dim() == 0 or edge_label.shape[0] != self.src.numel():
                raise ValueError(
                    f"edge_label has {edge_label.shape[0] if edge_label.dim() else 0} rows "
                    f"for {self.src.numel()} edges in edge_label_index"
                )
            if neg is not None and neg.mode == "triplet":
                raise ValueError("edge_label must be None for triplet negative sampling")
            check_data_device("edge_label", edge_label)
            # (a tensor comparison, as PyG's: a NaN label is kept, not a failed int(NaN))
            if neg is not None and edge_label.numel() and bool(edge_label.min() == 0):
                edge_label = edge_label + 1  # 0 is reserved for negatives
        self.edge_label = edge_label
        self.edge_label_time: Optional[np.ndarray] = None
        if self.temporal:
            if edge_label_time is None:
                raise ValueError("temporal link sampling needs edge_label_time (one per edge)")
            self.edge_label_time = self.node_sampler.check_seed_time(  # type: ignore[attr-defined]
                edge_label_time, self.src.numel()
            )
        self._src_cum = self._dst_cum = None
        if neg is not None:
            self._src_cum = _node_cumweights("src_weight", neg.src_weight, self._num_src)
            self._dst_cum = _node_cumweights("dst_weight", neg.dst_weight, self._num_dst)

    @property
    def num_inputs(self) -> int:
        """Number of supervision edges: the Loader's seeds are positions below it."""
        return int(self.src.numel())

    def __repr__(self) -> str:
        return (
            f"LinkSampler(edges={self.num_inputs}, neg_sampling={self.neg_sampling}, "
            f"{self.node_sampler!r})"
        )

    def _negatives(
        self,
        count: int,
        key: int,
        salt: int,
        cum: Optional[np.ndarray],
        num: int,
        off: int = 0,
        times: Optional[np.ndarray] = None,
    ) -> torch.Tensor:
        """``count`` negatives; with node-level times, none newer than its edge (negative j
        belongs to edge j mod B, as PyG lays them out): redrawn up to 5 times, then the type's
        oldest node (PyG's ``neg_sample``)."""
        out = random_nodes(key, salt, count, num, cum)
        if times is None or count == 0:
            return out
        node_time = self.node_sampler._node_time
        if node_time.shape[0] == 0:
            return out
        ids = out.numpy().copy()
        bound = np.resize(times, count)
        bad = node_time[ids + off] > bound
        for attempt in range(1, 6):
            n_bad = int(bad.sum())
            if n_bad == 0:
                break
            redraw = random_nodes(key, salt + attempt, n_bad, num, cum).numpy()
            ids[bad] = redraw
            bad[bad] = node_time[redraw + off] > bound[bad]
        if bad.any():
            ids[bad] = int(np.argmin(node_time[off : off + num]))
        return torch.from_numpy(ids)

    def sample(self, seeds: torch.Tensor, generator: KeyLike = None) -> SampledSubgraph:
        """Sample the edges at positions ``seeds`` of ``edge_label_index`` (plus negatives).

        Example:
            >>> sub = link_sampler.sample(torch.tensor([0, 1, 2]), SampleKey(seed=0, batch=0))
        """
        pos = check_ids("seeds", seeds, self.num_inputs, allow_empty=False)
        if self.collective:  # this batch's exchanges go through its lane
            self.node_sampler.use_key_lane(generator)
        key = key_int(generator)
        src, dst = self.src[pos], self.dst[pos]
        num_pos = int(pos.numel())
        neg = self.neg_sampling
        meta: Dict[str, Any] = {"input_id": pos, "num_pos": num_pos}
        label = self.edge_label[pos] if self.edge_label is not None else None
        times = self.edge_label_time[pos.numpy()] if self.edge_label_time is not None else None
        seed_time = None
        if neg is None:
            endpoints = torch.cat([src + self._src_off, dst + self._dst_off])
            if times is not None:
                meta["edge_label_time"] = torch.from_numpy(times)
                seed_time = np.concatenate([times, times])
        elif neg.mode == "binary":
            k = neg.num_negatives(num_pos)
            src_neg = self._negatives(k, key, _SALT_SRC, self._src_cum, self._num_src,
                                      self._src_off, times)  # fmt: skip
            dst_neg = self._negatives(k, key, _SALT_DST, self._dst_cum, self._num_dst,
                                      self._dst_off, times)  # fmt: skip
            src, dst = torch.cat([src, src_neg]), torch.cat([dst, dst_neg])
            endpoints = torch.cat([src + self._src_off, dst + self._dst_off])
            if label is None:
                label = torch.ones(num_pos)
            label = torch.cat([label, label.new_zeros((k,) + tuple(label.shape[1:]))])
            if times is not None:  # negative j belongs to edge j mod B
                all_times = np.resize(times, num_pos + k)
                meta["edge_label_time"] = torch.from_numpy(all_times)
                seed_time = np.concatenate([all_times, all_times])
        else:
            k = neg.num_negatives(num_pos)
            dst_neg = self._negatives(k, key, _SALT_DST, self._dst_cum, self._num_dst,
                                      self._dst_off, times)  # fmt: skip
            endpoints = torch.cat(
                [src + self._src_off, dst + self._dst_off, dst_neg + self._dst_off]
            )
            if times is not None:
                meta["seed_time"] = torch.from_numpy(times)
                seed_time = np.concatenate([times, np.resize(times, num_pos + k)])
        disjoint = self.node_sampler.disjoint
        offsets = self.graph.type_offsets() if self._typed else None
        if disjoint:
            tree = torch.arange(endpoints.numel())
            sub = self.node_sampler.sample_checked(endpoints, key, tree, seed_time)
            sub.batch = sub.batch % num_pos
            local = seed_ids_within_type(endpoints, offsets)
        else:
            uniq, local = unique_seeds(endpoints, offsets)
            sub = self.node_sampler.sample_checked(uniq, key)
        if neg is None or neg.mode == "binary":
            meta["edge_label_index"] = local.view(2, -1)
            if label is not None:
                meta["edge_label"] = label
        else:
            meta["src_index"] = local[:num_pos]
            meta["dst_pos_index"] = local[num_pos : 2 * num_pos]
            neg_local = local[2 * num_pos :]
            if disjoint:  # PyG lays triplet negatives out negative-major in disjoint mode
                neg_local = neg_local.view(-1, num_pos).t()
            meta["dst_neg_index"] = neg_local.reshape(num_pos, -1).squeeze(-1)
        sub.metadata.update(meta)
        return sub


def random_nodes(
    key: int, salt: int, count: int, num: int, cumweights: Optional[np.ndarray] = None
) -> torch.Tensor:
    """``count`` node ids below ``num`` drawn from the counter-based stream (key, salt):
    uniform, or proportional to ``diff(cumweights)``. The negative sampler of both fronts.

    Example:
        >>> random_nodes(key_int(SampleKey(seed=0)), 1, 4, 100).shape
        torch.Size([4])
    """
    if count == 0:
        return torch.empty(0, dtype=torch.int64)
    if cumweights is None:
        return torch.from_numpy(_kernels.random_nodes(key, salt, count, max(num, 1)))
    return torch.from_numpy(_kernels.random_weighted_nodes(key, salt, count, cumweights))


def seed_ids_within_type(seeds: torch.Tensor, offsets: Optional[torch.Tensor]) -> torch.Tensor:
    """Each seed's id among the sampled nodes of its type: the sampler numbers the seeds of
    each type first, in seed order (``offsets`` None, one type: the seed's position).

    Example:
        >>> seed_ids_within_type(torch.tensor([5, 0, 7]), torch.tensor([0, 4, 10])).tolist()
        [0, 0, 1]
    """
    if offsets is None or offsets.numel() <= 2:
        return torch.arange(seeds.numel())
    kind = torch.searchsorted(offsets, seeds, right=True) - 1
    out = torch.empty_like(seeds)
    for t in kind.unique().tolist():
        mask = kind == t
        out[mask] = torch.arange(int(mask.sum()))
    return out


def unique_seeds(
    endpoints: torch.Tensor, offsets: Optional[torch.Tensor]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """(the distinct endpoints in first-occurrence order, each endpoint's id among the sampled
    nodes of its type once those are the seeds): how both link fronts assemble a batch.

    Example:
        >>> unique_seeds(torch.tensor([3, 1, 3]), None)
        (tensor([3, 1]), tensor([0, 1, 0]))
    """
    uniq, inv = _kernels.first_occurrence_unique(endpoints.contiguous().numpy())
    uniq_t = torch.from_numpy(uniq)
    return uniq_t, seed_ids_within_type(uniq_t, offsets)[torch.from_numpy(inv)]


def _node_cumweights(name: str, weight: Any, n: int) -> Optional[np.ndarray]:
    if weight is None:
        return None
    w = torch.as_tensor(weight).detach().cpu().double()
    if w.dim() != 1 or w.numel() != n:
        raise ValueError(f"{name} must have one weight per node ({n}), got shape {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError(f"{name} must hold finite weights >= 0")
    if float(w.sum()) <= 0:
        raise ValueError(f"{name} sums to 0: no node can be drawn")
    cum = np.zeros(n + 1, np.float64)
    np.cumsum(w.numpy(), out=cum[1:])
    return cum
