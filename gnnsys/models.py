"""Heterogeneous models built from PyG convolutions: ``HeteroSAGE`` (``to_hetero`` GraphSAGE).

The homogeneous models (GraphSAGE, GCN, GCNII, GAT) are one stack, ``gnnsys.nn.GNNStack``,
shared by the trainer, the pipeline modes and users.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


class HeteroSAGE(nn.Module):
    """GraphSAGE on a heterogeneous graph: PyG's ``to_hetero`` of a SAGE stack, with per-type
    inputs (node types with features project them, featureless types learn an embedding per
    node, as R-GCN baselines on ogbn-mag do).

    ``forward(x_dict, edge_index_dict, n_id_dict)`` takes a ``HeteroData`` batch of the gnnsys
    (or PyG) ``NeighborLoader`` (``batch.x_dict``, ``batch.edge_index_dict``,
    ``batch.n_id_dict``) or the whole graph (``n_id_dict`` = every id), and returns logits per
    node type, or of ``out_type`` alone (so that DDP, which looks for parameters unused by the
    outputs, sees the other types' output layers as unused).

    Example:
        >>> model = HeteroSAGE(data.metadata(), ds.num_nodes_dict, {"paper": 128}, 64, 349)
        >>> logits = model(b.x_dict, b.edge_index_dict, b.n_id_dict)["paper"]
    """

    def __init__(
        self,
        metadata: Tuple[List[str], List[Tuple[str, str, str]]],
        num_nodes_dict: Dict[str, int],
        in_dims: Dict[str, int],
        hidden: int,
        out_dim: int,
        num_layers: int = 2,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        from torch_geometric.nn import to_hetero

        node_types, _ = metadata
        self.dropout = dropout
        self.proj = nn.ModuleDict({t: nn.Linear(d, hidden) for t, d in in_dims.items()})
        self.embed = nn.ModuleDict(
            {t: nn.Embedding(num_nodes_dict[t], hidden) for t in node_types if t not in in_dims}
        )
        self.gnn = to_hetero(_SageStack(hidden, out_dim, num_layers, dropout), metadata, "sum")

    def forward(
        self,
        x_dict: Dict[str, torch.Tensor],
        edge_index_dict: Dict[Tuple[str, str, str], torch.Tensor],
        n_id_dict: Dict[str, torch.Tensor],
        out_type: Optional[str] = None,
    ) -> Dict[str, torch.Tensor]:
        h = {t: F.relu(lin(x_dict[t].float())) for t, lin in self.proj.items()}
        for t, emb in self.embed.items():
            h[t] = emb(n_id_dict[t])
        h = {t: F.dropout(v, self.dropout, self.training) for t, v in h.items()}
        out = self.gnn(h, edge_index_dict)
        return out if out_type is None else {out_type: out[out_type]}


class _SageStack(nn.Module):
    """The homogeneous SAGE stack ``HeteroSAGE`` hands to ``to_hetero``: every input is
    ``hidden`` wide (projected or embedded), so no lazy sizes and nothing to materialise.
    Dropout is a module: ``to_hetero`` traces ``forward``, which would bake a functional
    dropout's ``training`` flag in as a constant (dropout in eval mode too)."""

    def __init__(self, hidden: int, out_dim: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        from torch_geometric.nn import SAGEConv

        dims = [hidden] * num_layers + [out_dim]
        self.convs = nn.ModuleList(
            SAGEConv((dims[i], dims[i]), dims[i + 1]) for i in range(num_layers)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if i < len(self.convs) - 1:
                x = self.drop(F.relu(x))
        return x
