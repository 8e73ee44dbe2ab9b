"""COO <-> CSC pointers in torch: the one place that expands column pointers into each edge's
destination, and the one that counts destinations into column pointers (no numba, so
importing it costs nothing)."""

from __future__ import annotations

from typing import Optional

import torch


def csc_destinations(
    indptr: torch.Tensor,
    *,
    start: int = 0,
    dtype: torch.dtype = torch.int64,
    num_edges: Optional[int] = None,
) -> torch.Tensor:
    """The destination of every edge of a CSC: column i's entries get ``start + i``, on
    ``indptr``'s device. ``num_edges`` (``indptr[-1] - indptr[0]``), when known, spares a GPU a
    device-to-host sync.

    Example:
        >>> csc_destinations(torch.tensor([0, 2, 2, 3])).tolist()
        [0, 0, 2]
    """
    n = indptr.numel() - 1
    ids = torch.arange(start, start + n, dtype=dtype, device=indptr.device)
    return torch.repeat_interleave(ids, indptr[1:] - indptr[:-1], output_size=num_edges)


def csc_indptr(dst: torch.Tensor, num_dst: int) -> torch.Tensor:
    """int64 [num_dst + 1] column pointers of edges whose destinations (0..num_dst-1) are
    ``dst``, on ``dst``'s device: the inverse of ``csc_destinations`` for edges grouped by
    destination (``dst`` need not be sorted: the pointers only count).

    Example:
        >>> csc_indptr(torch.tensor([0, 0, 2]), 3).tolist()
        [0, 2, 2, 3]
    """
    indptr = torch.zeros(num_dst + 1, dtype=torch.int64, device=dst.device)
    torch.cumsum(torch.bincount(dst, minlength=num_dst), 0, out=indptr[1:])
    return indptr
