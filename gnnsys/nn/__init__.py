"""gnnsys.nn: GNN layers with DGL's signatures and the model stack, on ``gnnsys.ops.sparse``.

``GNNStack`` is the one layer-indexable model (GraphSAGE, GCN, GCNII, GAT) that ``gnnsys
train``, the pipeline modes and users share; ``GraphSAGE``, ``GCN``, ``GCNII`` and ``GAT``
build it with DGL-style signatures; ``layer_adjacencies`` turns a DGL-semantics sampled
subgraph into the adjacency of every layer.

Example:
    >>> from gnnsys.nn import SAGEConv, GraphSAGE
    >>> model = GraphSAGE(100, 256, 47, num_layers=3)
    >>> rgcn = HeteroRGCNConv(64, 64, hetero_block.canonical_etypes, num_bases=4)
"""

from gnnsys.nn.conv import GATConv, GCN2Conv, GraphConv, HeteroRGCNConv, SAGEConv
from gnnsys.nn.models import (
    GAT,
    GCN,
    GCNII,
    Adjacency,
    GNNStack,
    GraphSAGE,
    layer_adjacencies,
)

__all__ = [
    "SAGEConv",
    "GraphConv",
    "GATConv",
    "GCN2Conv",
    "HeteroRGCNConv",
    "GNNStack",
    "GraphSAGE",
    "GCN",
    "GCNII",
    "GAT",
    "Adjacency",
    "layer_adjacencies",
]
