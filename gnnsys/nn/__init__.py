"""gnnsys.nn: GNN layers with DGL's signatures and cuttable models, on ``gnnsys.ops.sparse``.

Example:
    >>> from gnnsys.nn import SAGEConv, GraphSAGE
    >>> model = GraphSAGE(100, 256, 47, num_layers=3)
    >>> rgcn = HeteroRGCNConv(64, 64, hetero_block.canonical_etypes, num_bases=4)
"""

from gnnsys.nn.conv import GATConv, GCN2Conv, GraphConv, HeteroRGCNConv, SAGEConv
from gnnsys.nn.models import GAT, GCN, GCNII, GNNStack, GraphSAGE

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
]
