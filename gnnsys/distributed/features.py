"""Node tables split over machines: each rank holds its owned rows and fetches the rest.

``DistTable`` looks like one [N, ...] table to a ``FeatureStore`` (it has ``shape`` and is
indexed by global ids), so the one Loader's fetch stage gathers from it unchanged. A fetch is
one request / reply round: the ids go to their owners, which gather their rows locally and send
them back (``Exchange``, bytes counted under ``features``). Like the sampler it is a collective:
every rank fetches the same tables in the same order, once per batch.
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np
import torch

from gnnsys.distributed.exchange import split_by_owner
from gnnsys.distributed.graph import DistGraph
from gnnsys.features import FeatureStore, gather_rows


class DistTable:
    """A node table of the whole graph, of which this rank holds the rows it owns.

    Args:
        graph: the ``DistGraph`` (its owner map, local rows and exchange).
        rows: this part's rows, in ``graph.owned`` order (numpy, memmap or tensor).
        name: used in byte counts and messages.

    Example:
        >>> x = DistTable(dist_graph, part.x, "x")
        >>> x[torch.tensor([0, 5])].shape  # collective: every rank fetches at once
    """

    def __init__(self, graph: DistGraph, rows: Any, name: str = "x") -> None:
        if not isinstance(graph, DistGraph):
            raise TypeError(f"graph must be a DistGraph, got {type(graph).__name__}")
        if rows.shape[0] != graph.owned.shape[0]:
            raise ValueError(
                f"table {name!r} of part {graph.part} has {rows.shape[0]} rows for "
                f"{graph.owned.shape[0]} owned nodes"
            )
        self.graph = graph
        self.rows = rows if isinstance(rows, torch.Tensor) else torch.from_numpy(np.asarray(rows))
        self.name = name
        self.shape: Tuple[int, ...] = (graph.num_nodes,) + tuple(self.rows.shape[1:])
        self.dtype = self.rows.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"DistTable({self.name!r}, shape={self.shape}, owned={self.rows.shape[0]})"

    def __getitem__(self, ids: Any) -> torch.Tensor:
        """Rows of global ids ``ids`` (validated by the ``FeatureStore``), in ``ids`` order."""
        g = self.graph
        ex = g.exchange
        ids_np = torch.as_tensor(ids).numpy()
        order, counts = split_by_owner(g.owner(ids_np), ex.size)
        asked, asked_counts = ex.alltoallv(
            torch.from_numpy(ids_np[order].astype(g.wire_dtype)), counts, "feature_request"
        )
        local = torch.from_numpy(g.local_rows(asked.numpy().astype(np.int64)))
        mine = gather_rows(self.rows, local)
        got, _ = ex.alltoallv(mine, asked_counts, "features", recv_counts=counts)
        out = torch.empty_like(got)
        out[torch.from_numpy(order)] = got
        return out


def dist_feature_store(graph: DistGraph, **tables: Any) -> FeatureStore:
    """A ``FeatureStore`` of ``DistTable``s from this part's rows, one per keyword.

    Example:
        >>> store = dist_feature_store(g, x=part.x, y=part.y)
    """
    return FeatureStore({k: DistTable(graph, v, k) for k, v in tables.items()})
