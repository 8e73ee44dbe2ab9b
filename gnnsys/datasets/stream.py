"""Temporal link prediction: ``TemporalLinkDataset`` and a user-item interaction stream generator.

``synthetic("tiny-stream" | "mini-stream" | "stream")`` generates a bipartite stream shaped like
TGB's tgbl-wiki (``mini-stream``: 8,227 users, 1,000 items, 157,474 timestamped interactions;
``stream`` is 100x that; ``tiny-stream`` ~1k nodes and 10k edges for tests).

Structure of the generator (numpy, vectorised, deterministic for a seed):

- times: a Poisson process over ``span`` seconds (exponential gaps, cumulated), so the edges
  come out sorted by time, with ties where the rate is high;
- users: Zipf activity over a random ranking (heavy-tailed degrees); every user interacts at
  least once;
- items: every user and item has a taste cluster (items hold contiguous id ranges per
  cluster); an item's popularity is a Zipf base weight times a bell-shaped life cycle (a peak
  time and a width per item), evaluated on ``phases`` time slices, so what is popular drifts;
- an interaction is a repeat of one of the user's few favourite items (``p_favourite``), else
  a draw by the current popularity inside the user's cluster (``p_cluster``), else a draw by
  the current popularity among all items;
- features: node features (16-d) are the cluster centroid plus noise; optional edge features
  (16-d) are the item cluster's centroid, halved, plus noise.

The split is chronological, TGB style: train = the first 70% of edges by time, val the next
15%, test the rest; the cut points move forward past ties, so every val time is strictly
later than every train time, and every test time strictly later than every val time.
Results are cached like ``synthetic`` (atomic write, memory-mapped load), keyed by name, seed
and ``GENERATOR_VERSION``.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch

from gnnsys.datasets import rmat as _rmat
from gnnsys.graph import Graph

PathLike = Union[str, "os.PathLike[str]"]

# Bump whenever the generated arrays for a (name, seed) change: it is part of the cache key.
GENERATOR_VERSION = "s1"

# Random streams of the generator (numpy generators seeded with [seed, stream]).
_S_TIME, _S_USER, _S_FORCE, _S_CLUSTER, _S_ITEM, _S_KIND, _S_DRAW, _S_FAV = range(200, 208)
_S_CENTROID, _S_NOISE, _S_EDGE = 210, 211, 212


@dataclass(frozen=True)
class StreamSpec:
    """The recipe of one interaction stream.

    ``span``: seconds covered by the timestamps; ``user_zipf`` / ``item_zipf``: Zipf exponents
    of user activity and item base popularity; ``clusters``: taste clusters; ``phases``: time
    slices on which item popularity is evaluated; ``favourites``: favourite items per user;
    ``p_favourite`` / ``p_cluster``: the chance of a repeat, and of an in-cluster draw
    otherwise; ``feat_dim`` / ``edge_dim``: node and edge feature widths (0: no edge features).
    """

    num_users: int
    num_items: int
    num_edges: int
    span: int
    feat_dim: int = 16
    edge_dim: int = 16
    user_zipf: float = 0.85
    item_zipf: float = 0.9
    clusters: int = 16
    phases: int = 20
    favourites: int = 4
    p_favourite: float = 0.4
    p_cluster: float = 0.7
    noise: float = 1.0
    train: float = 0.70
    val: float = 0.15


_DAY = 86_400
STREAM_SPECS: Dict[str, StreamSpec] = {
    # ~1k nodes, 10k interactions over a week: tests.
    "tiny-stream": StreamSpec(900, 100, 10_000, 7 * _DAY, clusters=8),
    # tgbl-wiki's sizes: 8,227 users + 1,000 items, 157,474 interactions over about a month.
    "mini-stream": StreamSpec(8_227, 1_000, 157_474, 31 * _DAY),
    # 100x tgbl-wiki over a year. No edge features: 16-d would be 1 GB, 2 GB as both directions.
    "stream": StreamSpec(822_700, 100_000, 15_747_400, 365 * _DAY, edge_dim=0, clusters=64),
}
STREAM_NAMES = tuple(STREAM_SPECS)


# ====================================================================== the dataset
@dataclass
class TemporalLinkDataset:
    """A temporal link-prediction dataset: timestamped interactions, chronologically split.

    Fields:
        name: the dataset's name (``"mini-stream"``, ...).
        graph: the message-passing ``Graph`` of every interaction in both directions: edge id
            ``k < E`` is interaction k (user -> item), ``E + k`` its reverse (item -> user);
            ``graph.edge_ids`` maps CSC positions to these ids.
        src: int64 [E] user ids (0..num_users-1), in time order.
        dst: int64 [E] item ids as global node ids (num_users..num_nodes-1).
        t: int64 [E] timestamps in seconds, non-decreasing.
        x: float32 [N, F] node features (users first, then items).
        edge_attr: optional float32 [E, F_e] interaction features.
        num_users, num_items: the two sides' sizes.
        train_idx, val_idx, test_idx: int64 positions into ``src``/``dst``/``t`` (ranges, as
            the split is by time).
        meta: how it was made (the generator spec, sizes, timings).

    Example:
        >>> ds = gnnsys.datasets.synthetic("tiny-stream")
        >>> data = ds.to_pyg()                       # Data(x, edge_index, time, edge_attr)
        >>> index, time = ds.split("val")            # supervision edges and their times
    """

    name: str
    graph: Graph
    src: torch.Tensor
    dst: torch.Tensor
    t: torch.Tensor
    x: torch.Tensor
    edge_attr: Optional[torch.Tensor]
    num_users: int
    num_items: int
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    test_idx: torch.Tensor
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.graph, Graph):
            raise TypeError(f"graph must be a gnnsys.Graph, got {type(self.graph).__name__}")
        e = int(self.src.numel())
        for key in ("src", "dst", "t"):
            val = getattr(self, key)
            if not isinstance(val, torch.Tensor) or val.dtype != torch.int64 or val.dim() != 1:
                raise ValueError(f"{key} must be a 1-D int64 tensor")
            if val.numel() != e:
                raise ValueError(f"{key} has {val.numel()} entries, src has {e}")
        if self.graph.num_edges != 2 * e:
            raise ValueError(f"graph has {self.graph.num_edges} edges, expected 2 * {e}")
        if self.num_users + self.num_items != self.graph.num_nodes:
            raise ValueError("num_users + num_items must equal the graph's node count")
        if self.x.shape[0] != self.graph.num_nodes:
            raise ValueError(f"x has {self.x.shape[0]} rows for {self.graph.num_nodes} nodes")
        if self.edge_attr is not None and self.edge_attr.shape[0] != e:
            raise ValueError(f"edge_attr has {self.edge_attr.shape[0]} rows for {e} edges")

    @property
    def num_nodes(self) -> int:
        return self.graph.num_nodes

    @property
    def num_edges(self) -> int:
        """The number of interactions E (the graph holds 2E edges: both directions)."""
        return int(self.src.numel())

    def __repr__(self) -> str:
        return (
            f"TemporalLinkDataset(name={self.name!r}, users={self.num_users}, "
            f"items={self.num_items}, interactions={self.num_edges}, "
            f"train/val/test={self.train_idx.numel()}/{self.val_idx.numel()}/"
            f"{self.test_idx.numel()})"
        )

    @property
    def edge_index(self) -> torch.Tensor:
        """int64 [2, 2E]: the interactions (user -> item), then their reverses."""
        return torch.stack([torch.cat([self.src, self.dst]), torch.cat([self.dst, self.src])])

    @property
    def edge_time(self) -> torch.Tensor:
        """int64 [2E]: each graph edge's time, by edge id (an interaction's time, twice)."""
        return torch.cat([self.t, self.t])

    @property
    def item_mask(self) -> torch.Tensor:
        """bool [N]: True on item nodes (e.g. ``NegativeSampling(dst_weight=...)``)."""
        mask = torch.zeros(self.num_nodes, dtype=torch.bool)
        mask[self.num_users :] = True
        return mask

    def split(self, name: str) -> Tuple[torch.Tensor, torch.Tensor]:
        """(edge_label_index [2, M], edge_label_time [M]) of the interactions of split ``name``
        ("train", "val" or "test"), in time order.

        Example:
            >>> index, time = ds.split("train")
        """
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be one of ('train', 'val', 'test'), got {name!r}")
        idx = getattr(self, f"{name}_idx")
        return torch.stack([self.src[idx], self.dst[idx]]), self.t[idx]

    def to_pyg(self) -> Any:
        """A ``torch_geometric.data.Data(x, edge_index, time, edge_attr)`` of the message-passing
        graph: ``edge_index`` [2, 2E] as ``edge_index`` above, ``time`` [2E] its edge times
        (edge-level, for ``time_attr="time"``), ``edge_attr`` [2E, F_e] when present.

        Example:
            >>> data = ds.to_pyg()
            >>> data.time.shape[0] == data.edge_index.shape[1]
            True
        """
        from torch_geometric.data import Data

        data = Data(x=self.x, edge_index=self.edge_index, time=self.edge_time,
                    num_nodes=self.num_nodes)  # fmt: skip
        if self.edge_attr is not None:
            data.edge_attr = torch.cat([self.edge_attr, self.edge_attr])
        return data


# ====================================================================== entry point
def synthetic_stream(
    name: str = "mini-stream",
    *,
    seed: int = 0,
    root: Optional[PathLike] = None,
    cache: bool = True,
) -> TemporalLinkDataset:
    """Generate (or load from the cache) the interaction stream ``name``.

    Names: ``tiny-stream`` (tests), ``mini-stream`` (tgbl-wiki's sizes), ``stream`` (100x).
    ``gnnsys.datasets.synthetic(name)`` calls this.

    Example:
        >>> ds = synthetic_stream("tiny-stream", cache=False)
        >>> bool((ds.t[1:] >= ds.t[:-1]).all())
        True
    """
    if not isinstance(name, str) or name not in STREAM_SPECS:
        raise ValueError(f"unknown stream dataset {name!r}; choose one of {STREAM_NAMES}")
    seed = _rmat.check_seed(seed)
    if not isinstance(cache, bool):
        raise TypeError(f"cache must be a bool, got {type(cache).__name__}")
    spec = STREAM_SPECS[name]
    if not cache:
        arrays, meta = generate_stream_arrays(spec, seed)
        return _to_dataset(name, arrays, meta, spec)
    from gnnsys.datasets.synthetic import cached_arrays, default_root

    base = Path(root).expanduser() if root is not None else default_root()
    keys = _ARRAYS + (("edge_attr",) if spec.edge_dim else ())
    return cached_arrays(
        base / "synthetic" / f"{name}-seed{seed}-{GENERATOR_VERSION}",
        lambda: generate_stream_arrays(spec, seed),
        {"name": name, "seed": seed, "version": GENERATOR_VERSION},
        keys,
        lambda folder: _load_cached(name, folder, spec, keys),
    )


_ARRAYS = ("src", "dst", "t", "x", "indptr", "indices", "edge_ids")


def _load_cached(name: str, folder: Path, spec: StreamSpec, keys: Tuple[str, ...]):
    from gnnsys.datasets.synthetic import load_arrays

    arrays, meta = load_arrays(folder, keys, GENERATOR_VERSION)
    return _to_dataset(name, arrays, meta, spec, validate=True)


def _to_dataset(
    name: str,
    arrays: Dict[str, np.ndarray],
    meta: Dict[str, Any],
    spec: StreamSpec,
    validate: bool = False,
) -> TemporalLinkDataset:
    t = {k: torch.from_numpy(v) for k, v in arrays.items()}
    graph = Graph(t["indptr"], t["indices"], edge_ids=t["edge_ids"], validate=validate)
    n_train, n_val = int(meta["split"][0]), int(meta["split"][1])
    e = int(t["src"].numel())
    meta = dict(meta)
    meta.setdefault("spec", asdict(spec))
    return TemporalLinkDataset(
        name=name,
        graph=graph,
        src=t["src"],
        dst=t["dst"],
        t=t["t"],
        x=t["x"],
        edge_attr=t.get("edge_attr"),
        num_users=spec.num_users,
        num_items=spec.num_items,
        train_idx=torch.arange(0, n_train),
        val_idx=torch.arange(n_train, n_train + n_val),
        test_idx=torch.arange(n_train + n_val, e),
        meta=meta,
    )


# ====================================================================== generation
def generate_stream_arrays(spec: StreamSpec, seed: int) -> Tuple[Dict[str, np.ndarray], Dict]:
    """Run the generator: (arrays by name, meta with sizes, split and phase timings)."""
    from gnnsys._csc import coo_to_csc

    t0 = time.perf_counter()
    times = _times(spec, seed)
    users = _users(spec, seed)
    t1 = time.perf_counter()
    user_cluster = _rng(seed, _S_CLUSTER).integers(0, spec.clusters, spec.num_users)
    items = _items(spec, seed, times, users, user_cluster)
    t2 = time.perf_counter()
    x, edge_attr = _features(spec, seed, user_cluster, items)
    t3 = time.perf_counter()
    n = spec.num_users + spec.num_items
    src = users.astype(np.int64)
    dst = items.astype(np.int64) + spec.num_users
    idt = np.int32 if n < 2**31 else np.int64
    both_src = np.concatenate([src, dst]).astype(idt)
    both_dst = np.concatenate([dst, src]).astype(idt)
    indptr, indices, perm = coo_to_csc(both_src, both_dst, n, idt)
    del both_src, both_dst
    t4 = time.perf_counter()
    arrays = {"src": src, "dst": dst, "t": times, "x": x, "indptr": indptr,
              "indices": indices, "edge_ids": perm}  # fmt: skip
    if edge_attr is not None:
        arrays["edge_attr"] = edge_attr
    meta = {
        "num_nodes": n,
        "num_edges": int(src.size),
        "split": list(_split(times, spec.train, spec.val)),
        "isolated_items": int(spec.num_items - np.unique(items).size),
        "seconds": {"events": round(t1 - t0, 3), "items": round(t2 - t1, 3),
                    "features": round(t3 - t2, 3), "csc": round(t4 - t3, 3)},
    }  # fmt: skip
    return arrays, meta


def _rng(seed: int, stream: int) -> np.random.Generator:
    """The numpy generator of one random stream of ``seed`` (independent per purpose)."""
    return np.random.default_rng([seed, stream])


def _times(spec: StreamSpec, seed: int) -> np.ndarray:
    """int64 [E] sorted timestamps: a Poisson process scaled to [0, span)."""
    gaps = _rng(seed, _S_TIME).exponential(1.0, spec.num_edges)
    cum = np.cumsum(gaps, out=gaps)
    cum *= (spec.span - 1) / cum[-1]
    return np.floor(cum).astype(np.int64)


def _zipf_weights(count: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Zipf weights ``(rank + 1) ** -exponent`` over a random ranking of ``count`` ids."""
    rank = rng.permutation(count)
    return (rank + 1.0) ** -exponent


def _users(spec: StreamSpec, seed: int) -> np.ndarray:
    """int32 [E] the user of each interaction: Zipf activity, every user at least once."""
    rng = _rng(seed, _S_USER)
    cum = np.cumsum(_zipf_weights(spec.num_users, spec.user_zipf, rng))
    draw = rng.random(spec.num_edges) * cum[-1]
    users = np.minimum(np.searchsorted(cum, draw, side="right"), spec.num_users - 1)
    users = users.astype(np.int32)
    force = _rng(seed, _S_FORCE).choice(spec.num_edges, spec.num_users, replace=False)
    users[force] = np.arange(spec.num_users, dtype=np.int32)
    return users


def _popularity(spec: StreamSpec, seed: int) -> np.ndarray:
    """float64 [phases, I + 1]: cumulative item weights per time slice (leading 0), a Zipf base
    weight times each item's bell-shaped life cycle: the drift."""
    rng = _rng(seed, _S_ITEM)
    base = _zipf_weights(spec.num_items, spec.item_zipf, rng)
    peak = rng.uniform(-0.25, 1.25, spec.num_items)
    width = rng.uniform(0.1, 0.4, spec.num_items)
    tau = (np.arange(spec.phases) + 0.5) / spec.phases
    life = np.exp(-0.5 * ((tau[:, None] - peak[None, :]) / width[None, :]) ** 2) + 0.02
    cum = np.zeros((spec.phases, spec.num_items + 1))
    np.cumsum(base[None, :] * life, axis=1, out=cum[:, 1:])
    return cum


def _cluster_bounds(spec: StreamSpec) -> np.ndarray:
    """int64 [C + 1]: cluster c holds the items bounds[c]..bounds[c+1]-1."""
    return (np.arange(spec.clusters + 1) * spec.num_items) // spec.clusters


def _pick(cum: np.ndarray, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Items drawn by weight within [lo, hi) of the cumulative weights ``cum`` (inverse CDF)."""
    target = cum[lo] + u * (cum[hi] - cum[lo])
    out = np.searchsorted(cum, target, side="right") - 1
    return np.clip(out, lo, hi - 1)


def _items(
    spec: StreamSpec, seed: int, times: np.ndarray, users: np.ndarray, user_cluster: np.ndarray
) -> np.ndarray:
    """int32 [E] the item of each interaction (ids within the items): favourites, in-cluster
    draws or global draws by the popularity of the interaction's time slice."""
    cum = _popularity(spec, seed)
    bounds = _cluster_bounds(spec)
    fav = _favourites(spec, seed, cum.mean(axis=0), bounds, user_cluster)
    kind_u = _rng(seed, _S_KIND).random(spec.num_edges)
    draw = _rng(seed, _S_DRAW)
    items = np.empty(spec.num_edges, dtype=np.int32)
    is_fav = kind_u < spec.p_favourite
    slot = draw.integers(0, spec.favourites, spec.num_edges)
    items[is_fav] = fav[users[is_fav], slot[is_fav]]
    p_in = spec.p_favourite + (1.0 - spec.p_favourite) * spec.p_cluster
    in_cluster = ~is_fav & (kind_u < p_in)
    u = draw.random(spec.num_edges)
    edges_per_phase = np.searchsorted(
        times, (np.arange(1, spec.phases) * spec.span) // spec.phases, side="left"
    )
    cuts = np.concatenate([[0], edges_per_phase, [spec.num_edges]])
    for b in range(spec.phases):
        a, z = int(cuts[b]), int(cuts[b + 1])
        sel = np.flatnonzero(~is_fav[a:z]) + a
        inside = in_cluster[sel]
        c = user_cluster[users[sel]]
        lo = np.where(inside, bounds[c], 0)
        hi = np.where(inside, bounds[c + 1], spec.num_items)
        items[sel] = _pick(cum[b], lo, hi, u[sel])
    return items


def _favourites(
    spec: StreamSpec, seed: int, cum: np.ndarray, bounds: np.ndarray, user_cluster: np.ndarray
) -> np.ndarray:
    """int32 [U, K]: each user's favourite items, by average popularity within its cluster."""
    u = _rng(seed, _S_FAV).random((spec.num_users, spec.favourites))
    lo = np.repeat(bounds[user_cluster], spec.favourites)
    hi = np.repeat(bounds[user_cluster + 1], spec.favourites)
    return _pick(cum, lo, hi, u.ravel()).reshape(u.shape).astype(np.int32)


def _features(
    spec: StreamSpec, seed: int, user_cluster: np.ndarray, items: np.ndarray
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Node features (cluster centroid + noise) and optional edge features (the item cluster's
    centroid, halved, + noise), float32."""
    dim = max(spec.feat_dim, spec.edge_dim)
    centroid = _rng(seed, _S_CENTROID).standard_normal((spec.clusters, dim)).astype(np.float32)
    item_cluster = np.searchsorted(_cluster_bounds(spec), np.arange(spec.num_items), "right") - 1
    cluster = np.concatenate([user_cluster, item_cluster])
    noise = _rng(seed, _S_NOISE).standard_normal((cluster.size, spec.feat_dim), np.float32)
    x = centroid[cluster, : spec.feat_dim] + np.float32(spec.noise) * noise
    if not spec.edge_dim:
        return x, None
    rng = _rng(seed, _S_EDGE)
    edge_attr = rng.standard_normal((items.size, spec.edge_dim), np.float32)
    edge_attr += np.float32(0.5) * centroid[item_cluster[items], : spec.edge_dim]
    return x, edge_attr


def _split(times: np.ndarray, train: float, val: float) -> Tuple[int, int]:
    """(n_train, n_val) of a chronological split whose cuts move forward past ties, so each
    split's times are strictly later than the previous split's."""
    e = times.size
    n_train = int(np.searchsorted(times, times[min(int(round(train * e)), e - 1)], "right"))
    cut = min(int(round((train + val) * e)), e - 1)
    n_trval = max(int(np.searchsorted(times, times[cut], "right")), n_train)
    return n_train, n_trval - n_train
