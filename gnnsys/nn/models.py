"""The GNN stack (GraphSAGE, GCN, GCNII, GAT) that the trainer, the pipeline modes and users share.

One model, indexable by layer, in one vocabulary:

* ``embed(x) -> h``: the per-node input (the input projection when the model has one,
  ``input_proj``; ``x`` itself otherwise);
* ``layer(i, adj, h, h0) -> h``: graph layer ``i`` (``layers[i]``) reading the source rows ``h``
  of adjacency ``adj`` and writing its destination rows, with the ReLU and dropout that follow it
  (none after a last layer that emits the logits); ``h0`` is the destinations' (or the
  sources', a prefix) rows of ``embed(x)``, read by GCNII's initial residual only;
* ``head(h) -> logits``: the output projection (``output_proj``) when the model has one.

``forward(graph, x)`` is exactly ``head(layer(L-1, ..., layer(0, g, embed(x), h0)))`` with
``h0 = embed(x)``. ``graph`` is one adjacency (full graph: every layer reads it) or a list of
``num_layers`` blocks (mini-batch: layer i reads block i; destinations are a prefix of the
sources, DGL's rule). An adjacency is anything with ``adj_csc()``: a ``gnnsys.Graph``, a
pipeline ``ChunkBlock``, a gnnsys ``Block``, an ``Adjacency`` (below; what
``layer_adjacencies`` builds from a sampled subgraph's per-hop CSC), or ``(edge_index, size)``.

Two shapes: ``project=False`` (GraphSAGE, GCN, GAT as in the DGL/PyG examples: the first layer
reads the features, the last emits the logits) and ``project=True`` (an input projection, every
layer ``hidden -> hidden``, a head: every layer boundary carries ``hidden`` floats per node, so
the pipeline can cut the stack anywhere). GCNII always has both projections.

GCN and GCNII either normalise per adjacency (``norm="both"``: degrees of the graph or block they
are given) or read weights normalised once on the whole graph (``norm="none"``: the
``edge_weight`` of the adjacency, as ``prepare_graph`` computes it), which is what keeps chunk
blocks, partitions and layer-wise inference exact.

Example:
    >>> model = GNNStack("sage", 100, 256, 47, num_layers=3)
    >>> logits = model(graph, x)                                   # full graph
    >>> logits = model(layer_adjacencies(batch.subgraph), batch.x)  # a DGL-semantics batch
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import torch
from torch import nn

from gnnsys._coo import csc_destinations
from gnnsys.nn.conv import GATConv, GCN2Conv, GraphConv, SAGEConv
from gnnsys.nn.dropout import relu_dropout

__all__ = [
    "KINDS",
    "Adjacency",
    "GNNStack",
    "GraphSAGE",
    "GCN",
    "GCNII",
    "GAT",
    "layer_adjacencies",
]

KINDS = ("sage", "gcn", "gcnii", "gat")
NORMS = ("both", "none")
INITS = ("dgl", "pyg")


class Adjacency:
    """A CSC adjacency in the ``adj_csc()`` protocol the layers read, with optional weights.

    Attributes:
        indptr: int64 [num_dst + 1] column starts; indices: [E] source ids (< num_src).
        num_src, num_dst: node counts (destinations are a prefix of the sources in blocks).
        edge_weight: optional [E] weights in the CSC's edge order (GCN/GCNII with
            ``norm="none"`` read them).

    Example:
        >>> adj = Adjacency(torch.tensor([0, 2, 3]), torch.tensor([1, 2, 0]), 3, 2)
        >>> adj.adj_csc()[2:]
        (3, 2)
    """

    __slots__ = ("indptr", "indices", "num_src", "num_dst", "edge_weight")

    def __init__(
        self,
        indptr: torch.Tensor,
        indices: torch.Tensor,
        num_src: int,
        num_dst: int,
        edge_weight: Optional[torch.Tensor] = None,
    ) -> None:
        self.indptr, self.indices = indptr, indices
        self.num_src, self.num_dst = int(num_src), int(num_dst)
        self.edge_weight = edge_weight

    def adj_csc(self) -> Tuple[torch.Tensor, torch.Tensor, int, int]:
        """(indptr, indices, num_src, num_dst)."""
        return self.indptr, self.indices, self.num_src, self.num_dst

    @property
    def num_edges(self) -> int:
        return int(self.indices.numel())

    def __repr__(self) -> str:
        return (
            f"Adjacency(num_src={self.num_src}, num_dst={self.num_dst}, "
            f"num_edges={self.num_edges}, weighted={self.edge_weight is not None})"
        )


def layer_adjacencies(
    sub: Any,
    num_layers: Optional[int] = None,
    *,
    edge_weight: Optional[torch.Tensor] = None,
    degrees: Optional[torch.Tensor] = None,
) -> List[Adjacency]:
    """The adjacency of every layer of a model over a DGL-semantics sampled subgraph.

    Layer ``i`` reads hop ``L - i`` (the outermost hop first), straight from the kernel's
    per-hop CSC (``sub.block(hop)``): no re-sort. ``sub`` must be layered
    (``NeighborSampler(..., semantics="dgl")``), so each hop's destinations are a prefix of its
    sources and of the previous layer's output rows.

    ``edge_weight`` (a per-edge table indexed by the sampler's edge ids, e.g. the
    ``edge_weight`` of the graph ``prepare_graph`` returned) gives each block its weights;
    with ``degrees`` (the graph's in-degree of every node) each destination's weights are
    scaled by ``degree / sampled edges`` so that a sampled weighted sum estimates the full one
    without bias (exact when every neighbour was taken).

    Example:
        >>> sampler = NeighborSampler(graph, [10, 5], semantics="dgl")
        >>> for batch in Loader(sampler, train_idx, batch_size=1024, features=x, labels=y):
        ...     logits = model(layer_adjacencies(batch.subgraph), batch.x)
    """
    if not getattr(sub, "layered", False):
        raise ValueError(
            "layer_adjacencies needs a layered subgraph (NeighborSampler(..., semantics='dgl')), "
            "whose hop destinations are a prefix of the sources"
        )
    hops = sub.num_hops
    num_layers = hops if num_layers is None else int(num_layers)
    if num_layers != hops:
        raise ValueError(f"the subgraph has {hops} hops for a model with {num_layers} layers")
    if degrees is not None and edge_weight is None:
        raise ValueError("degrees rescales edge weights: give edge_weight too")
    prefix = [0]
    for count in sub.num_sampled_nodes:
        prefix.append(prefix[-1] + int(count))
    out = []
    for i in range(num_layers):
        hop = num_layers - i
        blk = sub.block(hop)
        w = None
        if edge_weight is not None:
            if blk.edge_ids is None:
                raise ValueError("edge_weight needs the subgraph's edge ids (sub.edge_ids)")
            w = edge_weight[blk.edge_ids]
            if degrees is not None:
                sampled = blk.indptr[1:] - blk.indptr[:-1]
                full = degrees[sub.nodes[: blk.num_dst]].to(w.dtype)
                scale = full / sampled.clamp(min=1).to(w.dtype)
                w = w * torch.repeat_interleave(scale, sampled, output_size=blk.num_edges)
        out.append(Adjacency(blk.indptr, blk.indices, prefix[hop + 1], blk.num_dst, w))
    return out


def _check_size(name: str, value: Any, lo: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {value!r}")
    return value


def _is_adjacency_pair(graph: Any) -> bool:
    return (
        isinstance(graph, (tuple, list)) and len(graph) == 2 and isinstance(graph[0], torch.Tensor)
    )


class GNNStack(nn.Module):
    """GraphSAGE, GCN, GCNII or GAT as ``embed`` -> ``layers`` -> ``head``, indexable by layer.

    Args:
        kind: "sage", "gcn", "gcnii" or "gat".
        in_feats, hidden_feats, out_feats: input width, width between layers (GAT: the heads'
            outputs concatenated, ``hidden_feats // heads`` each), number of outputs.
        num_layers: graph layers.
        dropout: after every hidden layer (and on the input and its projection when the model
            has one); fused with the ReLU (``relu_dropout``).
        project: an input projection and a head around ``hidden -> hidden`` layers (the
            pipeline's shape); GCNII always has them.
        norm: GCN/GCNII: "both" (normalise by the degrees of each adjacency) or "none" (read
            ``adj.edge_weight``, weights normalised once on the whole graph: ``prepare_graph``).
        heads, out_heads, attn_drop: GAT's heads per hidden layer, heads of a last layer that
            emits the logits (averaged), attention dropout.
        alpha, theta: GCNII's initial-residual weight and identity-mapping strength (lambda).
        aggregator_type: GraphSAGE's aggregator ("mean", "gcn", "pool").
        init: "dgl" (the layers' own initialisation, DGL's: Xavier with ReLU gain for SAGE
            and GAT, normal for GCNII) or "pyg" (what PyG's layer of the same kind draws:
            ``kaiming_uniform(a=sqrt(5))`` for SAGE, Glorot for GCN, GAT and GCNII). On
            features that are not normalised DGL's larger SAGE weights start with far larger
            logits (``gnnsys train`` on ``synthetic:mini``: first-epoch loss 17 vs 2.9) and
            lost about 1 point of test accuracy after 4 epochs, so the trainer uses "pyg".

    Example:
        >>> model = GNNStack("gcnii", 100, 64, 47, num_layers=16, norm="none")
        >>> adj = model.prepare_graph(graph)
        >>> h = h0 = model.embed(x)
        >>> for i in range(model.num_layers):
        ...     h = model.layer(i, adj, h, h0)
        >>> torch.equal(model.head(h), model(adj, x))   # in eval mode
        True
    """

    def __init__(
        self,
        kind: str,
        in_feats: int,
        hidden_feats: int,
        out_feats: int,
        num_layers: int = 2,
        *,
        dropout: float = 0.5,
        project: bool = False,
        norm: str = "both",
        heads: int = 4,
        out_heads: int = 1,
        attn_drop: float = 0.0,
        alpha: float = 0.1,
        theta: float = 0.5,
        aggregator_type: str = "mean",
        init: str = "dgl",
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        for name, value in (("in_feats", in_feats), ("hidden_feats", hidden_feats),
                            ("out_feats", out_feats), ("num_layers", num_layers),
                            ("heads", heads), ("out_heads", out_heads)):  # fmt: skip
            _check_size(name, value)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if kind == "gat" and hidden_feats % heads:
            raise ValueError(
                f"hidden_feats ({hidden_feats}) must be divisible by heads ({heads}): GAT "
                "concatenates heads of hidden_feats // heads"
            )
        self.kind, self.norm = kind, norm
        self.in_feats, self.hidden_feats, self.out_feats = in_feats, hidden_feats, out_feats
        self.dropout = float(dropout)
        project = bool(project) or kind == "gcnii"
        self.input_proj: Optional[nn.Linear] = (
            nn.Linear(in_feats, hidden_feats) if project else None
        )
        d = hidden_feats
        widths = [d] * (num_layers + 1) if project else [in_feats] + [d] * (num_layers - 1)
        layers: List[nn.Module] = []
        for i in range(num_layers):
            last = i == num_layers - 1 and not project
            d_in, d_out = widths[i], out_feats if last else d
            if kind == "sage":
                layers.append(SAGEConv(d_in, d_out, aggregator_type))
            elif kind == "gcn":
                layers.append(GraphConv(d_in, d_out, norm=norm, allow_zero_in_degree=True))
            elif kind == "gcnii":
                layers.append(
                    GCN2Conv(d, layer=i + 1, alpha=alpha, lambda_=theta,
                             allow_zero_in_degree=True, norm=norm)
                )  # fmt: skip
            elif last:
                layers.append(
                    GATConv(d_in, out_feats, out_heads, attn_drop=attn_drop,
                            allow_zero_in_degree=True)
                )  # fmt: skip
            else:
                layers.append(
                    GATConv(d_in, d // heads, heads, attn_drop=attn_drop, allow_zero_in_degree=True)
                )
        if init == "pyg":
            for conv in layers:
                _pyg_init(conv)
        self.layers = nn.ModuleList(layers)
        self.output_proj: Optional[nn.Linear] = nn.Linear(d, out_feats) if project else None

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def uses_h0(self) -> bool:
        """GCNII layers read the initial embedding ``h0`` of their destination nodes."""
        return self.kind == "gcnii"

    @property
    def boundary_dim(self) -> int:
        """Floats per node between two layers: ``hidden_feats`` (h0 is recomputed, not sent)."""
        return self.hidden_feats

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, norm={self.norm!r}, dropout={self.dropout}"

    # ------------------------------------------------------------------ graph
    def prepare_graph(self, graph: Any) -> Any:
        """The graph the layers read: GCN/GCNII get self loops (A + I) and, with
        ``norm="none"``, symmetric-normalised weights ``D^-1/2 (A+I) D^-1/2`` computed once on the
        whole graph; GAT gets self loops; GraphSAGE reads the graph as given.

        A new graph has no ``edge_ids``: a sampler's edge ids are then CSC positions, which
        index its ``edge_weight`` (``layer_adjacencies(..., edge_weight=adj.edge_weight)``).

        Example:
            >>> adj = model.prepare_graph(graph)
        """
        from gnnsys.graph import Graph

        if not isinstance(graph, Graph):
            raise TypeError(f"graph must be a gnnsys.Graph, got {type(graph).__name__}")
        if self.kind == "sage":
            return graph
        g = Graph.from_edge_index(graph.to_edge_index(), graph.num_nodes, self_loops="add")
        g.edge_ids = None
        if self.kind == "gat" or self.norm == "both":
            return g
        deg = g.in_degrees().to(torch.float32)
        inv = deg.pow(-0.5).masked_fill(deg == 0, 0.0)
        dst = csc_destinations(g.indptr, num_edges=g.num_edges)
        g.edge_weight = inv[g.indices.long()] * inv[dst]
        return g

    def graphs_for(self, graph: Any) -> List[Any]:
        """The adjacency each layer reads: one graph repeated, or the given list of blocks."""
        if isinstance(graph, (list, tuple)) and not _is_adjacency_pair(graph):
            if len(graph) != self.num_layers:
                raise ValueError(
                    f"got {len(graph)} blocks for a model with {self.num_layers} layers"
                )
            return list(graph)
        return [graph] * self.num_layers

    # ------------------------------------------------------------------ pieces
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Per-node input: dropout -> input projection -> ReLU -> dropout, or ``x`` itself.

        Its dropout masks come from torch's generator (``relu_dropout``); a pipeline stage
        recomputing GCNII's h0 seeds it as the first stage did, so both get the same values.
        """
        if self.input_proj is None:
            return x
        p, training = self.dropout, self.training
        return relu_dropout(self.input_proj(relu_dropout(x, p, training, relu=False)), p, training)

    def layer(
        self, i: int, adj: Any, h: torch.Tensor, h0: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Graph layer ``i``: source rows ``h`` of ``adj`` -> destination rows, then ReLU and
        dropout (a last layer that emits the logits has neither; GAT's averages its heads).

        ``h0``: rows of ``embed(x)`` for the destinations (or more rows, the destinations a
        prefix), GCNII only.
        """
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self.num_layers:
            raise ValueError(f"layer index must be in 0..{self.num_layers - 1}, got {i!r}")
        conv = self.layers[i]
        logits = i == self.num_layers - 1 and self.output_proj is None
        if self.kind == "gcnii":
            if h0 is None:
                raise ValueError("GCNII layers need h0 (the initial embedding of the destinations)")
            out = conv(adj, h, h0, edge_weight=self._weights(adj))
        elif self.kind == "gcn":
            out = conv(adj, h, edge_weight=self._weights(adj))
        elif self.kind == "gat":
            out = conv(adj, h)
            out = out.mean(1) if logits else out.flatten(1)
        else:
            out = conv(adj, h)
        if logits:
            return out
        return relu_dropout(out, self.dropout, self.training)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Per-node output: logits [n, out_feats] (the output projection, or ``h`` itself)."""
        return h if self.output_proj is None else self.output_proj(h)

    def forward(self, graph: Any, x: torch.Tensor) -> torch.Tensor:
        """Logits of the destinations of the last adjacency (every node of a full graph)."""
        graphs = self.graphs_for(graph)
        h = self.embed(x)
        h0 = h
        for i, g in enumerate(graphs):
            h = self.layer(i, g, h, h0)
        return self.head(h)

    def _weights(self, adj: Any) -> Optional[torch.Tensor]:
        if self.norm == "both":
            return None
        w = getattr(adj, "edge_weight", None)
        if w is None:
            raise ValueError(
                f"{self.kind} with norm='none' reads normalised weights from adj.edge_weight, and "
                f"this {type(adj).__name__} has none: use model.prepare_graph(graph) (or "
                "layer_adjacencies(..., edge_weight=...)), or norm='both'"
            )
        return w


def _glorot(t: torch.Tensor) -> None:
    # PyG's glorot: U(+-sqrt(6 / (size(-2) + size(-1)))), whatever the leading dimensions.
    bound = (6.0 / (t.size(-2) + t.size(-1))) ** 0.5
    with torch.no_grad():
        t.uniform_(-bound, bound)


@torch.no_grad()
def _pyg_init(conv: nn.Module) -> None:
    """Initialise ``conv`` as PyG's layer of the same kind: SAGEConv's linears as PyG's
    ``Linear`` (``kaiming_uniform(a=sqrt(5))``, bias ``U(+-1/sqrt(fan_in))``), Glorot weights
    and zero bias for GraphConv, GATConv (attention vectors too) and GCN2Conv."""
    if isinstance(conv, SAGEConv):
        for name in ("fc_pool", "fc_self", "fc_neigh"):
            lin = getattr(conv, name, None)
            if lin is not None:
                lin.reset_parameters()
        if conv.bias is not None:
            bound = 1.0 / conv.fc_neigh.in_features**0.5
            conv.bias.uniform_(-bound, bound)
        return
    if isinstance(conv, GATConv):
        for name in ("fc", "fc_src", "fc_dst"):
            lin = getattr(conv, name, None)
            if lin is not None:
                _glorot(lin.weight)
        _glorot(conv.attn_l)
        _glorot(conv.attn_r)
    elif isinstance(conv, GraphConv):
        if conv.weight is not None:
            _glorot(conv.weight)
    elif isinstance(conv, GCN2Conv):
        _glorot(conv.weight1)
        if conv.weight2 is not None:
            _glorot(conv.weight2)
    if getattr(conv, "bias", None) is not None:
        conv.bias.zero_()


# ---------------------------------------------------------------------- named constructors
class GraphSAGE(GNNStack):
    """GraphSAGE: ``num_layers`` SAGEConv layers, ReLU + dropout between them.

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
        super().__init__("sage", in_feats, hidden_feats, out_feats, num_layers, dropout=dropout,
                         aggregator_type=aggregator_type)  # fmt: skip


class GCN(GNNStack):
    """GCN: ``num_layers`` GraphConv layers, ReLU + dropout between them.

    ``norm="both"`` normalises by the degrees of the adjacency given (pass a graph with self
    loops, ``model.prepare_graph(graph)``); ``"none"`` reads ``adj.edge_weight``.

    Example:
        >>> model = GCN(100, 256, 47, num_layers=2)
        >>> model(model.prepare_graph(graph), x).shape
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
    ) -> None:
        super().__init__("gcn", in_feats, hidden_feats, out_feats, num_layers, dropout=dropout,
                         norm=norm)  # fmt: skip


class GCNII(GNNStack):
    """GCNII (Chen et al. 2020): input projection, ``num_layers`` GCN2Conv layers, a head.

    ``theta`` is the paper's lambda (beta_l = log(theta / l + 1)); ``alpha`` the
    initial-residual weight.

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
        norm: str = "both",
    ) -> None:
        super().__init__("gcnii", in_feats, hidden_feats, out_feats, num_layers, dropout=dropout,
                         alpha=alpha, theta=theta, norm=norm)  # fmt: skip


class GAT(GNNStack):
    """GAT: GATConv layers of ``num_heads`` heads of ``hidden_feats`` (concatenated) and an
    output layer of ``out_heads`` heads (averaged).

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
    ) -> None:
        _check_size("hidden_feats", hidden_feats)
        _check_size("num_heads", num_heads)
        super().__init__("gat", in_feats, hidden_feats * num_heads, out_feats, num_layers,
                         dropout=dropout, heads=num_heads, out_heads=out_heads,
                         attn_drop=attn_drop)  # fmt: skip
