"""GNN models (GraphSAGE, GCN, GCNII, GAT) for full-graph and mini-batch training.

Every model is a stack the pipeline-parallel trainer can cut between layers:

* ``model.input_proj`` (``nn.Identity`` where the model has none), ``model.layers`` (an
  ``nn.ModuleList`` of the graph layers) and ``model.output_proj``;
* ``encode(x) -> h``, ``layer_forward(i, graph, h, h0) -> h`` (layer i with the activation and
  dropout that follow it) and ``decode(h) -> out``; ``forward`` is exactly
  ``decode(layer_forward(L-1, ..., layer_forward(0, g, encode(x), h0)))`` with
  ``h0 = encode(x)`` (only GCNII reads it: its initial residual).

``graph`` is one adjacency (full graph: every layer uses it) or a list of ``num_layers`` blocks
(mini-batch: layer i uses block i; destinations are a prefix of the sources).
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from gnnsys.nn.conv import GATConv, GCN2Conv, GraphConv, SAGEConv

__all__ = ["GNNStack", "GraphSAGE", "GCN", "GCNII", "GAT"]


def _check_sizes(num_layers: int, dropout: float) -> None:
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def _is_adjacency_pair(graph: Any) -> bool:
    return (
        isinstance(graph, (tuple, list)) and len(graph) == 2 and isinstance(graph[0], torch.Tensor)
    )


class GNNStack(nn.Module):
    """Base of the models: ``input_proj`` -> ``layers`` -> ``output_proj``, cuttable per layer."""

    layers: nn.ModuleList

    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.dropout = float(dropout)
        self.input_proj: nn.Module = nn.Identity()
        self.output_proj: nn.Module = nn.Identity()

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def graphs_for(self, graph: Any) -> List[Any]:
        """The adjacency each layer uses: one graph repeated, or the given list of blocks."""
        if isinstance(graph, (list, tuple)) and not _is_adjacency_pair(graph):
            if len(graph) != self.num_layers:
                raise ValueError(
                    f"got {len(graph)} blocks for a model with {self.num_layers} layers"
                )
            return list(graph)
        return [graph] * self.num_layers

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Input projection (identity unless the model has one)."""
        return self.input_proj(x)

    def layer_forward(
        self, i: int, graph: Any, h: torch.Tensor, h0: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Layer ``i`` and what follows it (activation, dropout) on its adjacency."""
        raise NotImplementedError

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Output projection (identity unless the model has one)."""
        return self.output_proj(h)

    def forward(self, graph: Any, x: torch.Tensor) -> torch.Tensor:
        graphs = self.graphs_for(graph)
        h = self.encode(x)
        h0 = h
        for i, g in enumerate(graphs):
            h = self.layer_forward(i, g, h, h0)
        return self.decode(h)

    def _hidden(self, i: int, h: torch.Tensor) -> torch.Tensor:
        if i == self.num_layers - 1:
            return h
        return F.dropout(F.relu(h), self.dropout, self.training)


def _widths(in_feats: int, hidden_feats: int, out_feats: int, num_layers: int) -> Sequence[int]:
    return [in_feats] + [hidden_feats] * (num_layers - 1) + [out_feats]


class GraphSAGE(GNNStack):
    """GraphSAGE: ``num_layers`` SAGEConv layers, relu + dropout between them.

    Example:
        >>> model = GraphSAGE(100, 256, 47, num_layers=3, dropout=0.5)
        >>> logits = model(blocks, x)  # or model(graph, x) full-graph
    """

    def __init__(
        self,
        in_feats: int,
        hidden_feats: int,
        out_feats: int,
        num_layers: int = 2,
        dropout: float = 0.5,
        aggregator_type: str = "mean",
    ) -> None:
        _check_sizes(num_layers, dropout)
        super().__init__(dropout)
        w = _widths(in_feats, hidden_feats, out_feats, num_layers)
        self.layers = nn.ModuleList(
            SAGEConv(w[i], w[i + 1], aggregator_type) for i in range(num_layers)
        )

    def layer_forward(self, i, graph, h, h0=None):
        return self._hidden(i, self.layers[i](graph, h))


class GCN(GNNStack):
    """GCN: ``num_layers`` GraphConv layers (symmetric norm), relu + dropout between them.

    ``allow_zero_in_degree`` defaults to True here: sampled blocks may hold seeds without
    neighbours (their output is the bias).

    Example:
        >>> GCN(100, 256, 47, num_layers=2)(graph, x).shape
        torch.Size([N, 47])
    """

    def __init__(
        self,
        in_feats: int,
        hidden_feats: int,
        out_feats: int,
        num_layers: int = 2,
        dropout: float = 0.5,
        norm: str = "both",
        allow_zero_in_degree: bool = True,
    ) -> None:
        _check_sizes(num_layers, dropout)
        super().__init__(dropout)
        w = _widths(in_feats, hidden_feats, out_feats, num_layers)
        self.layers = nn.ModuleList(
            GraphConv(w[i], w[i + 1], norm=norm, allow_zero_in_degree=allow_zero_in_degree)
            for i in range(num_layers)
        )

    def layer_forward(self, i, graph, h, h0=None):
        return self._hidden(i, self.layers[i](graph, h))


class GCNII(GNNStack):
    """GCNII (Chen et al. 2020): linear in, ``num_layers`` GCN2Conv layers, linear out.

    ``theta`` is the paper's lambda (beta_l = log(theta / l + 1)); ``alpha`` the initial-residual
    weight. Dropout precedes every layer, relu follows it.

    Example:
        >>> GCNII(100, 64, 47, num_layers=16, alpha=0.1, theta=0.5)(graph, x).shape
        torch.Size([N, 47])
    """

    def __init__(
        self,
        in_feats: int,
        hidden_feats: int,
        out_feats: int,
        num_layers: int = 8,
        alpha: float = 0.1,
        theta: float = 0.5,
        dropout: float = 0.5,
        allow_zero_in_degree: bool = True,
    ) -> None:
        _check_sizes(num_layers, dropout)
        super().__init__(dropout)
        self.input_proj = nn.Linear(in_feats, hidden_feats)
        self.layers = nn.ModuleList(
            GCN2Conv(
                hidden_feats,
                layer=i + 1,
                alpha=alpha,
                lambda_=theta,
                allow_zero_in_degree=allow_zero_in_degree,
            )
            for i in range(num_layers)
        )
        self.output_proj = nn.Linear(hidden_feats, out_feats)

    def encode(self, x):
        return F.relu(self.input_proj(F.dropout(x, self.dropout, self.training)))

    def layer_forward(self, i, graph, h, h0=None):
        if h0 is None:
            raise ValueError("GCNII.layer_forward needs h0 (the output of encode)")
        h = F.dropout(h, self.dropout, self.training)
        return F.relu(self.layers[i](graph, h, h0))

    def decode(self, h):
        return self.output_proj(F.dropout(h, self.dropout, self.training))


class GAT(GNNStack):
    """GAT: GATConv layers with ``num_heads`` heads (concatenated) and one averaged output layer.

    Example:
        >>> GAT(100, 32, 47, num_layers=2, num_heads=4)(graph_with_self_loops, x).shape
        torch.Size([N, 47])
    """

    def __init__(
        self,
        in_feats: int,
        hidden_feats: int,
        out_feats: int,
        num_layers: int = 2,
        num_heads: int = 4,
        dropout: float = 0.5,
        attn_drop: float = 0.0,
        out_heads: int = 1,
        allow_zero_in_degree: bool = True,
    ) -> None:
        _check_sizes(num_layers, dropout)
        super().__init__(dropout)
        layers = []
        width = in_feats
        for i in range(num_layers):
            last = i == num_layers - 1
            layers.append(
                GATConv(
                    width,
                    out_feats if last else hidden_feats,
                    out_heads if last else num_heads,
                    attn_drop=attn_drop,
                    allow_zero_in_degree=allow_zero_in_degree,
                )
            )
            width = hidden_feats * num_heads
        self.layers = nn.ModuleList(layers)

    def layer_forward(self, i, graph, h, h0=None):
        h = self.layers[i](graph, h)  # [N, H, D]
        if i == self.num_layers - 1:
            return h.mean(dim=1)
        return self._hidden(i, h.flatten(1))
