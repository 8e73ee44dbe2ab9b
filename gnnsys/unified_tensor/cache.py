"""A device cache of the hottest rows of a host table, and the row -> slot table that finds them.

One gather serves hits from the cache (device memory) and misses from host memory: the kernel
reads ``slot[id]`` (int32, -1 = not cached) and picks the source per row.

Which rows are hot is given by ``cache_order``: a **score per row** (higher = hotter; ties go to
the lower id), for example node degrees, or a :class:`gnnsys.Graph`, whose score is how often a
node is a neighbour (``bincount(graph.indices)``, the rate at which neighbour sampling fetches
it). ``None`` means the rows are already ordered hottest first (e.g. after a degree reordering),
so the first rows are cached. To cache by a permutation ``perm`` (hottest first), pass the
scores ``s`` with ``s[perm] = -arange(N)``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Union

import numpy as np
import torch

from gnnsys._checks import as_cpu_tensor, check_data_device, data_device, require_cuda


def cache_rows_for(cache: Union[float, int, None], n_rows: int, row_bytes: int) -> int:
    """Rows a ``cache`` setting buys: a fraction 0 < f <= 1 of the rows, or a byte budget (int).

    A byte budget also pays for the 4-byte-per-row slot table; what remains buys whole rows.

    Example:
        >>> cache_rows_for(0.25, 100, 512), cache_rows_for(4 * 100 + 3 * 512, 100, 512)
        (25, 3)
    """
    if cache is None:
        return 0
    if isinstance(cache, np.integer):  # a numpy scalar (e.g. from a config array) is a number
        cache = int(cache)
    elif isinstance(cache, np.floating):
        cache = float(cache)
    if isinstance(cache, bool) or not isinstance(cache, (int, float)):
        raise TypeError(
            f"cache must be a fraction (float in (0, 1]) or a byte budget (int), got {cache!r}"
        )
    if isinstance(cache, float):
        if not (0.0 < cache <= 1.0) or math.isnan(cache):
            raise ValueError(f"cache as a fraction must be in (0, 1], got {cache}")
        return min(n_rows, int(math.ceil(cache * n_rows)))
    if cache < 0:
        raise ValueError(f"cache as a byte budget must be >= 0, got {cache}")
    if row_bytes <= 0:
        return 0
    return int(max(0, min(n_rows, (int(cache) - 4 * n_rows) // row_bytes)))


def neighbour_counts(indices: np.ndarray, n: int) -> np.ndarray:
    """int64 [n]: how often each node appears in ``indices`` (a CSC's sources), counted in
    place: ``torch.bincount`` would first widen 1.6B int32 ids to a 13 GB int64 copy."""
    from gnnsys._csc import count_ids

    out = np.zeros(n, dtype=np.int64)
    count_ids(indices, out)
    return out


def hot_rows(order: Any, n_rows: int, k: int) -> torch.Tensor:
    """The ``k`` hottest row ids by ``order`` (see the module docstring), hottest first.

    Example:
        >>> hot_rows(torch.tensor([1, 5, 5, 0]), 4, 2).tolist()
        [1, 2]
    """
    if k <= 0:
        return torch.empty(0, dtype=torch.int64)
    if order is None:
        return torch.arange(k, dtype=torch.int64)
    from gnnsys.graph import Graph

    if isinstance(order, Graph):
        if order.num_nodes != n_rows:
            raise ValueError(
                f"cache_order is a graph of {order.num_nodes} nodes but the table has {n_rows} rows"
            )
        scores = torch.from_numpy(neighbour_counts(order.indices.numpy(), n_rows))
    else:
        scores = as_cpu_tensor("cache_order", order)
        check_data_device("cache_order", scores)
        if scores.dtype == torch.bool or scores.is_complex():
            raise TypeError(f"cache_order must hold numeric scores, got dtype {scores.dtype}")
        if scores.dim() != 1 or scores.numel() != n_rows:
            raise ValueError(
                f"cache_order must be a 1-D score per row ({n_rows}), got shape {tuple(scores.shape)}"
            )
        scores = scores.cpu()
        if scores.is_floating_point() and bool(torch.isnan(scores).any()):
            raise ValueError("cache_order holds NaN scores")
    # Stable descending sort: equal scores keep id order, so the choice is deterministic.
    perm = torch.sort(scores, descending=True, stable=True).indices
    return perm[:k].to(torch.int64)


class RowCache:
    """Hot rows of a table on one device plus the row -> slot table.

    Attributes:
        ids: int64 [k] cached row ids (CPU), hottest first; row ``ids[s]`` sits in slot ``s``.
        rows: [k, D] cached rows on ``device``, in the table's storage dtype.
        slot: int32 [N] on ``device``: slot of each row, -1 when not cached.

    Example:
        >>> table = torch.arange(12.0).view(6, 2)
        >>> c = RowCache.build(table.shape[0], 2, lambda ids: table[ids], k=2,
        ...                    order=torch.tensor([0, 9, 0, 7, 0, 0]), device="cpu")
        >>> c.slot.tolist()
        [-1, 0, -1, 1, -1, -1]
    """

    def __init__(self, ids: torch.Tensor, rows: torch.Tensor, slot: torch.Tensor) -> None:
        self.ids = ids
        self.rows = rows
        self.slot = slot
        self._slot_np: Optional[np.ndarray] = None

    @classmethod
    def build(
        cls,
        n_rows: int,
        d: int,
        fetch: Callable[[torch.Tensor], torch.Tensor],
        *,
        k: int,
        order: Any = None,
        device: Union[str, torch.device] = "cuda",
    ) -> RowCache:
        """Choose the ``k`` hottest rows, read them with ``fetch(ids) -> [k, d]`` and place them."""
        device = data_device(device)
        if device.type == "cuda":
            require_cuda(f"RowCache.build(device={str(device)!r})")
        ids = hot_rows(order, n_rows, k)
        rows = fetch(ids).reshape(len(ids), d).to(device)
        slot = torch.full((n_rows,), -1, dtype=torch.int32)
        slot[ids] = torch.arange(len(ids), dtype=torch.int32)
        return cls(ids, rows, slot.to(device))

    @property
    def device(self) -> torch.device:
        return self.rows.device

    @property
    def num_rows(self) -> int:
        return int(self.ids.numel())

    @property
    def nbytes(self) -> int:
        """Device bytes held: cached rows plus the slot table."""
        return self.rows.numel() * self.rows.element_size() + self.slot.numel() * 4

    def slot_numpy(self) -> np.ndarray:
        """The slot table as a host int32 array (built once, for host-side hit/miss splits)."""
        if self._slot_np is None:
            self._slot_np = self.slot.cpu().numpy()
        return self._slot_np

    def __repr__(self) -> str:
        return (
            f"RowCache(rows={self.num_rows}, device={self.device}, "
            f"bytes={self.nbytes}, dtype={self.rows.dtype})"
        )
