"""Layer-indexable GNN models for the trainer, built from PyG convolutions.

Each model exposes ``layer(i, x, edge_index, x0)`` so that evaluation can run layer by layer
over full neighbourhoods in batches (never one whole-graph forward that may not fit), as
PyG's and DGL's OGB examples do, and so that ``trim_to_layer`` can shrink the batch per layer.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


class LayeredGNN(nn.Module):
    """GraphSAGE, GCN, GAT or GCNII as a stack of PyG convolutions.

    Example:
        >>> model = LayeredGNN("sage", 100, 256, 47, num_layers=3)
        >>> logits = model(batch.x, batch.edge_index)[: batch.batch_size]
    """

    def __init__(
        self,
        kind: str,
        in_dim: int,
        hidden: int,
        out_dim: int,
        num_layers: int,
        dropout: float = 0.5,
        heads: int = 4,
        alpha: float = 0.1,
        theta: float = 0.5,
    ) -> None:
        super().__init__()
        from torch_geometric.nn import GATConv, GCN2Conv, GCNConv, SAGEConv

        self.kind, self.num_layers, self.dropout = kind, num_layers, dropout
        self.input_proj: Optional[nn.Module] = None
        self.output_proj: Optional[nn.Module] = None
        convs: List[nn.Module] = []
        if kind == "gcnii":
            self.input_proj = nn.Linear(in_dim, hidden)
            self.output_proj = nn.Linear(hidden, out_dim)
            for i in range(num_layers):
                convs.append(GCN2Conv(hidden, alpha, theta, layer=i + 1, normalize=True))
        else:
            dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
            for i in range(num_layers):
                last = i == num_layers - 1
                if kind == "sage":
                    convs.append(SAGEConv(dims[i], dims[i + 1]))
                elif kind == "gcn":
                    convs.append(GCNConv(dims[i], dims[i + 1]))
                elif kind == "gat":
                    d_in = dims[i] if i == 0 else hidden
                    if last:
                        convs.append(GATConv(d_in, out_dim, heads=1))
                    else:
                        convs.append(GATConv(d_in, hidden // heads, heads=heads))
                else:
                    raise ValueError(f"model must be sage, gcn, gat or gcnii, got {kind!r}")
        self.convs = nn.ModuleList(convs)

    def embed_input(self, x: torch.Tensor) -> torch.Tensor:
        """The per-node input of layer 0 (GCNII's projection; identity otherwise)."""
        x = x.float()
        if self.input_proj is None:
            return x
        return F.relu(self.input_proj(F.dropout(x, self.dropout, self.training)))

    def layer(
        self, i: int, x: torch.Tensor, edge_index: torch.Tensor, x0: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Apply layer ``i`` (with its activation and dropout; the last layer emits logits)."""
        last = i == self.num_layers - 1
        if self.kind == "gcnii":
            h = F.dropout(x, self.dropout, self.training)
            h = F.relu(self.convs[i](h, x0, edge_index))
            return self.output_proj(F.dropout(h, self.dropout, self.training)) if last else h
        h = self.convs[i](x, edge_index)
        if not last:
            h = F.dropout(F.relu(h), self.dropout, self.training)
        return h

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        num_sampled_nodes: Optional[List[int]] = None,
        num_sampled_edges: Optional[List[int]] = None,
    ) -> torch.Tensor:
        """Mini-batch or full-graph forward; with per-hop counts, trims each layer's input."""
        from torch_geometric.utils import trim_to_layer

        x = self.embed_input(x)
        x0 = x
        for i in range(self.num_layers):
            if num_sampled_nodes is not None and num_sampled_edges is not None:
                x, edge_index, _ = trim_to_layer(
                    i, num_sampled_nodes, num_sampled_edges, x, edge_index
                )
                x0 = x0[: x.shape[0]]
            x = self.layer(i, x, edge_index, x0)
        return x


class HeteroSAGE(nn.Module):
    """GraphSAGE on a heterogeneous graph: PyG's ``to_hetero`` of a SAGE stack, with per-type
    inputs (node types with features project them, featureless types learn an embedding per
    node, as R-GCN baselines on ogbn-mag do).

    ``forward(x_dict, edge_index_dict, n_id_dict)`` takes a ``HeteroData`` batch of the gnnsys
    (or PyG) ``NeighborLoader`` (``batch.x_dict``, ``batch.edge_index_dict``,
    ``batch.n_id_dict``) or the whole graph (``n_id_dict`` = every id), and returns logits per
    node type of ``out_types``.

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
    ) -> Dict[str, torch.Tensor]:
        h = {t: F.relu(lin(x_dict[t].float())) for t, lin in self.proj.items()}
        for t, emb in self.embed.items():
            h[t] = emb(n_id_dict[t])
        h = {t: F.dropout(v, self.dropout, self.training) for t, v in h.items()}
        return self.gnn(h, edge_index_dict)


class _SageStack(nn.Module):
    """The homogeneous SAGE stack ``HeteroSAGE`` hands to ``to_hetero`` (lazy input sizes)."""

    def __init__(self, hidden: int, out_dim: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        from torch_geometric.nn import SAGEConv

        dims = [hidden] * num_layers + [out_dim]
        self.convs = nn.ModuleList(SAGEConv((-1, -1), dims[i + 1]) for i in range(num_layers))
        self.dropout = dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if i < len(self.convs) - 1:
                x = F.dropout(F.relu(x), self.dropout, self.training)
        return x
