"""GNN layers with DGL's signatures, built on the fused ops of ``gnnsys.ops.sparse``.

``forward(graph, feat, ...)``: ``graph`` is any adjacency the ops accept (a ``Graph``, a Block or
anything with ``adj_csc()``, or ``(edge_index, size)``), bipartite allowed. ``feat`` is a tensor
or a ``(src_feat, dst_feat)`` pair. For a single tensor on a block (num_dst < num_src) the
destination features are its first num_dst rows: DGL's block rule (destinations are a prefix of
the sources). Edge weights, where accepted, are in the adjacency's edge order.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gnnsys._coo import csc_destinations
from gnnsys.ops.sparse import (
    adj_size,
    degree_norm,
    edge_softmax,
    in_degrees,
    out_degrees,
    sddmm,
    spmm,
    zero_in_degrees,
)

Feat = Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]

__all__ = ["SAGEConv", "GraphConv", "GATConv", "GCN2Conv", "HeteroRGCNConv"]

_ZERO_IN_DEGREE = (
    "There are 0-in-degree nodes in the graph ({count} of {total}, e.g. node {first}); output "
    "for those nodes will be invalid. This is harmful for some applications, causing silent "
    "performance regression. Adding self-loops to the input graph (e.g. "
    "Graph.from_edge_index(..., self_loops='add')) will resolve the issue. Setting "
    "allow_zero_in_degree=True when constructing this module will suppress the check and let "
    "the code run."
)


def split_feat(graph: Any, feat: Feat) -> Tuple[torch.Tensor, torch.Tensor, int, int]:
    """(src_feat, dst_feat, num_src, num_dst) for ``feat`` on ``graph`` (DGL's block rule).

    Example:
        >>> src, dst, ns, nd = split_feat(block, h)  # dst is h[:nd] for a single tensor
    """
    num_src, num_dst, _ = adj_size(graph)
    if isinstance(feat, (tuple, list)):
        if len(feat) != 2:
            raise ValueError(f"feat must be a tensor or a (src, dst) pair, got {len(feat)} items")
        src, dst = feat
        if not isinstance(src, torch.Tensor) or not isinstance(dst, torch.Tensor):
            raise TypeError("feat pair must hold two tensors")
        if src.shape[0] != num_src:
            raise ValueError(f"source feat has {src.shape[0]} rows, graph has {num_src} sources")
        if dst.shape[0] != num_dst:
            raise ValueError(
                f"destination feat has {dst.shape[0]} rows, graph has {num_dst} destinations"
            )
        return src, dst, num_src, num_dst
    if not isinstance(feat, torch.Tensor):
        raise TypeError(f"feat must be a tensor or a (src, dst) pair, got {type(feat).__name__}")
    if feat.shape[0] != num_src:
        raise ValueError(f"feat has {feat.shape[0]} rows but the graph has {num_src} source nodes")
    if num_dst > num_src:
        raise ValueError(
            f"a single feat needs num_dst <= num_src (destinations are a prefix of the sources); "
            f"got num_src={num_src}, num_dst={num_dst}: pass a (src_feat, dst_feat) pair"
        )
    return feat, feat[:num_dst], num_src, num_dst


def check_zero_in_degree(graph: Any, device: Optional[torch.device] = None) -> None:
    """Raise ValueError, as DGL does, when some destination has no incoming edge."""
    count, first = zero_in_degrees(graph, device=device)  # cached with the adjacency
    if count:
        total = adj_size(graph)[1]
        raise ValueError(_ZERO_IN_DEGREE.format(count=count, total=total, first=first))


def _pair(in_feats: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    """(source, destination) input sizes, each a positive int (DGL's ``in_feats``)."""
    if isinstance(in_feats, (tuple, list)):
        if len(in_feats) != 2:
            raise ValueError(f"in_feats must be an int or (src, dst) pair, got {in_feats!r}")
        for v in in_feats:
            _check_positive("in_feats", v)
        return int(in_feats[0]), int(in_feats[1])
    _check_positive("in_feats", in_feats)
    return int(in_feats), int(in_feats)


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


class SAGEConv(nn.Module):
    """GraphSAGE layer (Hamilton et al. 2017), DGL's ``SAGEConv`` signature.

    ``mean``: fc_self(h_v) + fc_neigh(mean_u h_u); ``gcn``: fc_neigh((sum_u h_u + h_v) /
    (deg + 1)); ``pool``: fc_self(h_v) + fc_neigh(max_u relu(fc_pool(h_u))); ``lstm`` is not
    implemented. The projection runs before aggregation when it shrinks the features.

    Example:
        >>> conv = SAGEConv(16, 8, "mean")
        >>> conv(graph, torch.randn(graph.num_nodes, 16)).shape
        torch.Size([N, 8])
    """

    def __init__(
        self,
        in_feats: Union[int, Tuple[int, int]],
        out_feats: int,
        aggregator_type: str = "mean",
        feat_drop: float = 0.0,
        bias: bool = True,
        norm: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        activation: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    ) -> None:
        super().__init__()
        if aggregator_type == "lstm":
            raise NotImplementedError("SAGEConv aggregator_type='lstm' is not implemented")
        if aggregator_type not in ("mean", "gcn", "pool"):
            raise ValueError(
                f"aggregator_type must be one of ('mean', 'gcn', 'pool', 'lstm'), "
                f"got {aggregator_type!r}"
            )
        self._in_src_feats, self._in_dst_feats = _pair(in_feats)
        _check_positive("out_feats", out_feats)
        self._out_feats = out_feats
        self._aggre_type = aggregator_type
        self.norm = norm
        self.activation = activation
        self.feat_drop = nn.Dropout(feat_drop)
        if aggregator_type == "pool":
            self.fc_pool = nn.Linear(self._in_src_feats, self._in_src_feats)
        if aggregator_type != "gcn":
            self.fc_self = nn.Linear(self._in_dst_feats, out_feats, bias=False)
        self.fc_neigh = nn.Linear(self._in_src_feats, out_feats, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_feats)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights (gain for relu), zero bias, as DGL."""
        gain = nn.init.calculate_gain("relu")
        if self._aggre_type == "pool":
            nn.init.xavier_uniform_(self.fc_pool.weight, gain=gain)
            nn.init.zeros_(self.fc_pool.bias)
        if self._aggre_type != "gcn":
            nn.init.xavier_uniform_(self.fc_self.weight, gain=gain)
        nn.init.xavier_uniform_(self.fc_neigh.weight, gain=gain)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self, graph: Any, feat: Feat, edge_weight: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        if isinstance(feat, (tuple, list)):
            src, dst, _, _ = split_feat(graph, feat)
            h_src, h_dst = self.feat_drop(src), self.feat_drop(dst)
        else:
            _, _, _, num_dst = split_feat(graph, feat)
            h_src = self.feat_drop(feat)
            h_dst = h_src[:num_dst]
        lin_first = self._in_src_feats > self._out_feats
        if self._aggre_type == "mean":
            m = self.fc_neigh(h_src) if lin_first else h_src
            h_neigh = spmm(graph, m, "mean", edge_weight)
            if not lin_first:
                h_neigh = self.fc_neigh(h_neigh)
        elif self._aggre_type == "gcn":
            if self._in_src_feats != self._in_dst_feats:
                raise ValueError("aggregator_type='gcn' needs equal source and destination sizes")
            m = self.fc_neigh(h_src) if lin_first else h_src
            md = self.fc_neigh(h_dst) if lin_first else h_dst
            deg = in_degrees(graph, device=m.device).to(m.dtype).unsqueeze(-1)
            h_neigh = (spmm(graph, m, "sum", edge_weight) + md) / (deg + 1)
            if not lin_first:
                h_neigh = self.fc_neigh(h_neigh)
        else:
            pooled = F.relu(self.fc_pool(h_src))
            h_neigh = self.fc_neigh(spmm(graph, pooled, "max", edge_weight))
        rst = h_neigh if self._aggre_type == "gcn" else self.fc_self(h_dst) + h_neigh
        if self.bias is not None:
            rst = rst + self.bias
        if self.activation is not None:
            rst = self.activation(rst)
        if self.norm is not None:
            rst = self.norm(rst)
        return rst


class GraphConv(nn.Module):
    """GCN layer (Kipf & Welling 2017), DGL's ``GraphConv`` signature.

    ``norm='both'``: D_out^-1/2 on sources, sum, D_in^-1/2 on destinations (degrees clamped to
    1); ``'right'``: divide by in-degree; ``'left'``: by out-degree; ``'none'``. Raises on
    destinations without incoming edges unless ``allow_zero_in_degree``.

    Example:
        >>> GraphConv(16, 8)(graph_with_self_loops, torch.randn(N, 16)).shape
        torch.Size([N, 8])
    """

    def __init__(
        self,
        in_feats: int,
        out_feats: int,
        norm: str = "both",
        weight: bool = True,
        bias: bool = True,
        activation: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        allow_zero_in_degree: bool = False,
    ) -> None:
        super().__init__()
        if norm not in ("none", "both", "right", "left"):
            raise ValueError(f"norm must be one of ('none', 'both', 'right', 'left'), got {norm!r}")
        _check_positive("in_feats", in_feats)
        _check_positive("out_feats", out_feats)
        self._in_feats, self._out_feats = in_feats, out_feats
        self._norm = norm
        self._allow_zero_in_degree = allow_zero_in_degree
        self.weight = nn.Parameter(torch.empty(in_feats, out_feats)) if weight else None
        self.bias = nn.Parameter(torch.zeros(out_feats)) if bias else None
        self.activation = activation
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weight, zero bias, as DGL."""
        if self.weight is not None:
            nn.init.xavier_uniform_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self,
        graph: Any,
        feat: Feat,
        weight: Optional[torch.Tensor] = None,
        edge_weight: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        feat_src, _, _, _ = split_feat(graph, feat)
        dev, dt = feat_src.device, feat_src.dtype
        if not self._allow_zero_in_degree:
            check_zero_in_degree(graph, dev)
        kind = "sqrt" if self._norm == "both" else "inv"  # (cached with the adjacency)
        if self._norm in ("left", "both"):
            scale = degree_norm(graph, "out", kind, dt, dev)
            feat_src = feat_src * scale.view((-1,) + (1,) * (feat_src.dim() - 1))
        if weight is not None:
            if self.weight is not None:
                raise ValueError(
                    "external weight is given while the module has its own weight parameter; "
                    "construct the module with weight=False"
                )
        else:
            weight = self.weight
        if weight is not None and self._in_feats > self._out_feats:
            rst = spmm(graph, torch.matmul(feat_src, weight), "sum", edge_weight)
        else:
            rst = spmm(graph, feat_src, "sum", edge_weight)
            if weight is not None:
                rst = torch.matmul(rst, weight)
        if self._norm in ("right", "both"):
            scale = degree_norm(graph, "in", kind, dt, dev)
            rst = rst * scale.view((-1,) + (1,) * (rst.dim() - 1))
        if self.bias is not None:
            rst = rst + self.bias
        if self.activation is not None:
            rst = self.activation(rst)
        return rst


class GATConv(nn.Module):
    """Graph attention layer (Velickovic et al. 2018), DGL's ``GATConv`` signature.

    e_uv = leaky_relu(a_l . W h_u + a_r . W h_v) per head, softmax over v's incoming edges,
    out_v = sum_u a_uv W h_u: fused (``sddmm`` add for the scores, ``edge_softmax``, per-head
    weighted ``spmm``). Output [num_dst, num_heads, out_feats].

    Example:
        >>> GATConv(16, 8, num_heads=4)(graph_with_self_loops, torch.randn(N, 16)).shape
        torch.Size([N, 4, 8])
    """

    def __init__(
        self,
        in_feats: Union[int, Tuple[int, int]],
        out_feats: int,
        num_heads: int,
        feat_drop: float = 0.0,
        attn_drop: float = 0.0,
        negative_slope: float = 0.2,
        residual: bool = False,
        activation: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        allow_zero_in_degree: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        _check_positive("out_feats", out_feats)
        _check_positive("num_heads", num_heads)
        self._num_heads = num_heads
        self._in_src_feats, self._in_dst_feats = _pair(in_feats)
        self._out_feats = out_feats
        self._allow_zero_in_degree = allow_zero_in_degree
        if isinstance(in_feats, (tuple, list)):
            self.fc_src = nn.Linear(self._in_src_feats, out_feats * num_heads, bias=False)
            self.fc_dst = nn.Linear(self._in_dst_feats, out_feats * num_heads, bias=False)
        else:
            self.fc = nn.Linear(self._in_src_feats, out_feats * num_heads, bias=False)
        self.attn_l = nn.Parameter(torch.empty(1, num_heads, out_feats))
        self.attn_r = nn.Parameter(torch.empty(1, num_heads, out_feats))
        self.feat_drop = nn.Dropout(feat_drop)
        self.attn_drop = nn.Dropout(attn_drop)
        self.leaky_relu = nn.LeakyReLU(negative_slope)
        self.res_fc: Optional[nn.Module] = None
        if residual:
            if self._in_dst_feats != out_feats * num_heads:
                self.res_fc = nn.Linear(self._in_dst_feats, num_heads * out_feats, bias=False)
            else:
                self.res_fc = nn.Identity()
        self.bias = nn.Parameter(torch.zeros(num_heads * out_feats)) if bias else None
        self.activation = activation
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal weights and attention vectors (gain for relu), zero bias, as DGL."""
        gain = nn.init.calculate_gain("relu")
        if hasattr(self, "fc"):
            nn.init.xavier_normal_(self.fc.weight, gain=gain)
        else:
            nn.init.xavier_normal_(self.fc_src.weight, gain=gain)
            nn.init.xavier_normal_(self.fc_dst.weight, gain=gain)
        nn.init.xavier_normal_(self.attn_l, gain=gain)
        nn.init.xavier_normal_(self.attn_r, gain=gain)
        if isinstance(self.res_fc, nn.Linear):
            nn.init.xavier_normal_(self.res_fc.weight, gain=gain)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self,
        graph: Any,
        feat: Feat,
        edge_weight: Optional[torch.Tensor] = None,
        get_attention: bool = False,
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        heads, out = self._num_heads, self._out_feats
        if isinstance(feat, (tuple, list)):
            src, dst, _, _ = split_feat(graph, feat)
            h_src, h_dst = self.feat_drop(src), self.feat_drop(dst)
            fc_src = self.fc_src if hasattr(self, "fc_src") else self.fc
            fc_dst = self.fc_dst if hasattr(self, "fc_dst") else self.fc
            feat_src = fc_src(h_src).view(-1, heads, out)
            feat_dst = fc_dst(h_dst).view(-1, heads, out)
        else:
            _, _, _, num_dst = split_feat(graph, feat)
            h_src = self.feat_drop(feat)
            h_dst = h_src[:num_dst]
            feat_src = self.fc(h_src).view(-1, heads, out)
            feat_dst = feat_src[:num_dst]
        if not self._allow_zero_in_degree:
            check_zero_in_degree(graph, feat_src.device)
        el = (feat_src * self.attn_l).sum(dim=-1, keepdim=True)  # [Ns, H, 1]
        er = (feat_dst * self.attn_r).sum(dim=-1, keepdim=True)  # [Nd, H, 1]
        e = self.leaky_relu(sddmm(graph, el, er, "add"))  # [E, H, 1]
        a = self.attn_drop(edge_softmax(graph, e))
        if edge_weight is not None:
            a = a * edge_weight.view(-1, 1, 1).to(a.dtype)
        rst = spmm(graph, feat_src, "sum", a)  # [Nd, H, out]
        if self.res_fc is not None:
            rst = rst + self.res_fc(h_dst).view(h_dst.shape[0], heads, out)
        if self.bias is not None:
            rst = rst + self.bias.view(1, heads, out)
        if self.activation is not None:
            rst = self.activation(rst)
        if get_attention:
            return rst, a
        return rst


class GCN2Conv(nn.Module):
    """GCNII layer (Chen et al. 2020), DGL's ``GCN2Conv`` signature plus a ``norm`` option.

    out = ((1 - alpha) P h + alpha h0) ((1 - beta) I + beta W), beta = log(lambda_ / layer + 1):
    the initial residual h0 and the identity mapping keep deep stacks trainable. ``feat_0`` may
    have more rows than the destinations (a block's input): its first num_dst rows are used.
    With ``project_initial_features=False``, h0 gets its own weight.

    ``norm`` says what P is. ``"both"`` (default, DGL's behaviour): P = D^-1/2 A D^-1/2 from the
    degrees of ``graph`` (pass a graph with self-loops, as the paper's A + I), or, when
    ``edge_weight`` is given, the symmetric normalisation of those weights. ``"none"``: P is
    ``edge_weight`` as given (plain sum without it), e.g. weights normalised once on the whole
    graph (PyG's ``normalize=False`` with ``gcn_norm`` weights). Use it when the layer runs on a
    block or partition of a larger graph, where block degrees are not graph degrees.

    Example:
        >>> conv = GCN2Conv(64, layer=1, alpha=0.1, lambda_=0.5)
        >>> conv(graph, h, h0).shape
        torch.Size([N, 64])
        >>> GCN2Conv(64, layer=1, norm="none")(block, h, h0, edge_weight=global_gcn_weights)
    """

    def __init__(
        self,
        in_feats: int,
        layer: int,
        alpha: float = 0.1,
        lambda_: float = 1,
        project_initial_features: bool = True,
        allow_zero_in_degree: bool = False,
        bias: bool = True,
        activation: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        norm: str = "both",
    ) -> None:
        super().__init__()
        _check_positive("in_feats", in_feats)
        _check_positive("layer", layer)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if lambda_ <= 0:
            raise ValueError(f"lambda_ must be > 0, got {lambda_}")
        if norm not in ("both", "none"):
            raise ValueError(f"norm must be 'both' or 'none', got {norm!r}")
        self._in_feats = in_feats
        self._project_initial_features = project_initial_features
        self._norm = norm
        self.alpha = float(alpha)
        self.beta = math.log(lambda_ / layer + 1)
        self._allow_zero_in_degree = allow_zero_in_degree
        self.weight1 = nn.Parameter(torch.empty(in_feats, in_feats))
        self.weight2 = (
            None if project_initial_features else nn.Parameter(torch.empty(in_feats, in_feats))
        )
        self.bias = nn.Parameter(torch.zeros(in_feats)) if bias else None
        self.activation = activation
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal init with std 1/sqrt(in_feats) (as DGL), zero bias."""
        std = 1.0 / math.sqrt(self._in_feats)
        nn.init.normal_(self.weight1, std=std)
        if self.weight2 is not None:
            nn.init.normal_(self.weight2, std=std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self,
        graph: Any,
        feat: torch.Tensor,
        feat_0: torch.Tensor,
        edge_weight: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        feat_src, _, _, num_dst = split_feat(graph, feat)
        dev, dt = feat_src.device, feat_src.dtype
        if not self._allow_zero_in_degree:
            check_zero_in_degree(graph, dev)
        if feat_0.shape[0] < num_dst:
            raise ValueError(f"feat_0 has {feat_0.shape[0]} rows, fewer than num_dst={num_dst}")
        if self._norm == "none":
            h = spmm(graph, feat_src, "sum", edge_weight)
        elif edge_weight is None:
            d_out = degree_norm(graph, "out", "sqrt", dt, dev)  # (cached with the adjacency)
            d_in = degree_norm(graph, "in", "sqrt", dt, dev)
            h = spmm(graph, feat_src * d_out.unsqueeze(-1), "sum") * d_in.unsqueeze(-1)
        else:
            h = spmm(graph, feat_src, "sum", normalize_edge_weight(graph, edge_weight))
        h0 = feat_0[:num_dst]
        # (1 - beta) I + beta W folded into one small matrix: one matmul (bias fused) per
        # layer instead of a matmul plus elementwise passes over [num_dst, d].
        mix1 = self._mix(self.weight1)
        if self.weight2 is None:
            rst = torch.lerp(h, h0, self.alpha)  # (1 - alpha) h + alpha h0 in one pass
            rst = rst @ mix1 if self.bias is None else torch.addmm(self.bias, rst, mix1)
        else:
            rst = torch.mm(h, mix1 * (1 - self.alpha))
            rst = torch.addmm(rst, h0, self._mix(self.weight2) * self.alpha)
            if self.bias is not None:
                rst = rst + self.bias
        if self.activation is not None:
            rst = self.activation(rst)
        return rst

    def _mix(self, weight: torch.Tensor) -> torch.Tensor:
        # (1 - beta) I + beta W
        eye = torch.eye(weight.shape[0], dtype=weight.dtype, device=weight.device)
        return torch.add(eye.mul_(1 - self.beta), weight, alpha=self.beta)


def normalize_edge_weight(graph: Any, edge_weight: torch.Tensor) -> torch.Tensor:
    """Symmetric weight normalisation: w_uv / sqrt(sum of u's out-weights * v's in-weights).

    Zero sums are treated as 1 (DGL's ``EdgeWeightNorm('both')`` up to that guard).

    Example:
        >>> normalize_edge_weight(graph, torch.ones(graph.num_edges))
    """
    src_ids, dst_ids = _edge_endpoints(graph, edge_weight.device)
    w_out = out_degrees(graph, edge_weight)
    w_in = in_degrees(graph, edge_weight)
    w_out = torch.where(w_out > 0, w_out, torch.ones_like(w_out))
    w_in = torch.where(w_in > 0, w_in, torch.ones_like(w_in))
    return edge_weight * (w_out[src_ids] * w_in[dst_ids]).rsqrt()


def _edge_endpoints(graph: Any, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    # (source, destination) id of every edge, in the adjacency's edge order.
    if hasattr(graph, "adj_csc"):
        indptr, indices, _, num_dst = graph.adj_csc()
        dst = csc_destinations(indptr, num_edges=indices.numel())
        return indices.long().to(device), dst.to(device)
    edge_index = graph[0]
    return edge_index[0].long().to(device), edge_index[1].long().to(device)


# ====================================================================== relational layers
RelName = Union[str, Tuple[str, str, str]]
TypedFeat = Union[torch.Tensor, Mapping[str, torch.Tensor]]


class _CSC:
    """An adjacency in the ``adj_csc()`` protocol the ops read."""

    def __init__(self, indptr: torch.Tensor, indices: torch.Tensor, num_src: int, num_dst: int):
        self._csc = (indptr, indices, num_src, num_dst)

    def adj_csc(self) -> Tuple[torch.Tensor, torch.Tensor, int, int]:
        return self._csc


def relation_adjacency(graph: Any, etype: Tuple[str, str, str]) -> Any:
    """The adjacency of one relation of a typed block, for ``gnnsys.ops``: a gnnsys Block's
    relation view (``block[etype]``), or a DGL block's relation CSC (``adj_tensors("csc")``).

    Example:
        >>> spmm(relation_adjacency(block, ("author", "writes", "paper")), h_author, "mean")
    """
    rel = graph[etype]
    if hasattr(rel, "adj_csc"):
        return rel
    if hasattr(rel, "adj_tensors"):  # a DGL graph
        indptr, indices, _ = rel.adj_tensors("csc")
        return _CSC(indptr.long(), indices, int(rel.num_src_nodes()), int(rel.num_dst_nodes()))
    raise TypeError(
        f"graph[{etype!r}] has neither adj_csc() nor adj_tensors(): {type(rel).__name__}"
    )


class HeteroRGCNConv(nn.Module):
    """Relational graph convolution (R-GCN, Schlichtkrull et al. 2018) on a typed block.

    For every destination node v of type t: ``h'_v = W_0 h_v + sum_r mean_{u in N_r(v)} W_r
    h_u + b``, the sum over the relations r into t (a relation without neighbours of v adds
    nothing), ``W_0`` the self-loop weight (one for all node types) and ``W_r`` one weight per
    relation, optionally basis-decomposed: ``W_r = sum_b a_rb V_b`` with ``num_bases`` shared
    bases. Then ``activation`` and ``dropout``, as DGL's ``RelGraphConv``.

    Args:
        in_feats: input feature size (of every node type).
        out_feats: output feature size.
        rel_names: the relations, as canonical triples ``(src, rel, dst)`` or relation names;
            a block's edge type takes the weight of its triple, else of its relation name.
        num_bases: number of bases (None: a full weight per relation).
        self_loop: add ``W_0 h_v`` (needs the destinations' own features).
        bias: add a learnable bias.
        activation: applied to the output of every type.
        dropout: on the output.

    ``forward(graph, feat)``: ``graph`` is a typed ``gnnsys.Block`` or a DGL heterograph
    block (a homogeneous block is the one-relation case); ``feat`` is ``{node type: [num_src_nodes(type),
    in_feats]}`` (destinations are the first rows of their type, DGL's block rule), a
    ``(src_feats, dst_feats)`` pair of dicts, or a tensor for a block with one node type.
    Returns ``{destination type: [num_dst_nodes(type), out_feats]}`` for every destination type
    that receives something (a tensor when ``feat`` was one).

    Example:
        >>> conv = HeteroRGCNConv(16, 8, [("author", "writes", "paper"), ("paper", "cites", "paper")],
        ...                       num_bases=2)
        >>> out = conv(block, {"author": h_author, "paper": h_paper})
        >>> out["paper"].shape
        torch.Size([num_dst_papers, 8])
    """

    def __init__(
        self,
        in_feats: int,
        out_feats: int,
        rel_names: Sequence[RelName],
        num_bases: Optional[int] = None,
        self_loop: bool = True,
        bias: bool = True,
        activation: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_positive("in_feats", in_feats)
        _check_positive("out_feats", out_feats)
        if (
            isinstance(rel_names, (str, bytes))
            or not isinstance(rel_names, Sequence)
            or not rel_names
        ):
            raise ValueError(f"rel_names must be a non-empty list of relations, got {rel_names!r}")
        names: List[RelName] = []
        for r in rel_names:
            if isinstance(r, (tuple, list)) and len(r) == 3 and all(isinstance(p, str) for p in r):
                r = tuple(r)
            elif not isinstance(r, str):
                raise ValueError(
                    f"rel_names entries must be names or (src, rel, dst) triples, got {r!r}"
                )
            if r in names:
                raise ValueError(f"rel_names lists {r!r} twice")
            names.append(r)
        if num_bases is not None:
            _check_positive("num_bases", num_bases)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_feats, self.out_feats = in_feats, out_feats
        self.rel_names = names
        self.num_bases = num_bases
        num_rels = len(names)
        if num_bases is None or num_bases >= num_rels:
            self.num_bases = None
            self.weight = nn.Parameter(torch.empty(num_rels, in_feats, out_feats))
            self.coeff: Optional[nn.Parameter] = None
        else:
            self.weight = nn.Parameter(torch.empty(num_bases, in_feats, out_feats))
            self.coeff = nn.Parameter(torch.empty(num_rels, num_bases))
        self.loop_weight = nn.Parameter(torch.empty(in_feats, out_feats)) if self_loop else None
        self.bias = nn.Parameter(torch.zeros(out_feats)) if bias else None
        self.activation = activation
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights (gain for relu), zero bias, as DGL's RelGraphConv."""
        gain = nn.init.calculate_gain("relu")
        nn.init.xavier_uniform_(self.weight, gain=gain)
        if self.coeff is not None:
            nn.init.xavier_uniform_(self.coeff, gain=gain)
        if self.loop_weight is not None:
            nn.init.xavier_uniform_(self.loop_weight, gain=gain)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def relation_weights(self) -> torch.Tensor:
        """[num_rels, in_feats, out_feats]: each relation's weight (bases combined)."""
        if self.coeff is None:
            return self.weight
        return torch.einsum("rb,bio->rio", self.coeff, self.weight)

    def _rel_index(self, etype: Tuple[str, str, str]) -> int:
        key = tuple(etype)
        if key in self.rel_names:
            return self.rel_names.index(key)
        if key[1] in self.rel_names:
            return self.rel_names.index(key[1])
        raise ValueError(
            f"the graph has edge type {key!r}, which rel_names ({self.rel_names}) does not name"
        )

    def forward(self, graph: Any, feat: Union[TypedFeat, Tuple[TypedFeat, TypedFeat]]) -> TypedFeat:
        single = isinstance(feat, torch.Tensor) or (
            isinstance(feat, (tuple, list)) and feat and isinstance(feat[0], torch.Tensor)
        )
        srctypes, dsttypes = list(graph.srctypes), list(graph.dsttypes)
        if single and len(srctypes) != 1:
            raise ValueError(
                f"feat is a tensor but the graph has source node types {srctypes}: give a dict "
                "{node type: features}"
            )
        if isinstance(feat, (tuple, list)):
            if len(feat) != 2:
                raise ValueError(f"feat must be a dict or a (src, dst) pair, got {len(feat)} items")
            src_feat, dst_feat = feat
            if single:
                src_feat, dst_feat = {srctypes[0]: src_feat}, {dsttypes[0]: dst_feat}
        else:
            src_feat = {srctypes[0]: feat} if single else feat
            dst_feat = None
        if not isinstance(src_feat, Mapping):
            raise TypeError(
                f"feat must be a dict {{node type: tensor}}, got {type(src_feat).__name__}"
            )
        for t, x in src_feat.items():
            if t not in srctypes:
                raise ValueError(
                    f"feat names node type {t!r}, not a source type of the graph ({srctypes})"
                )
            self._check_feat(f"feat[{t!r}]", x, graph.num_src_nodes(t))
        if dst_feat is None:
            dst_feat = {t: src_feat[t][: graph.num_dst_nodes(t)] for t in dsttypes if t in src_feat}
        else:
            for t, x in dst_feat.items():
                if t not in dsttypes:
                    raise ValueError(
                        f"dst feat names node type {t!r}, not a destination type ({dsttypes})"
                    )
                self._check_feat(f"dst feat[{t!r}]", x, graph.num_dst_nodes(t))
        weights = self.relation_weights()
        out: Dict[str, torch.Tensor] = {}
        for et in graph.canonical_etypes:
            s, _, d = et
            if s not in src_feat:
                continue
            w = weights[self._rel_index(et)]
            x = src_feat[s]
            adj = relation_adjacency(graph, et)
            if self.in_feats > self.out_feats:
                h = spmm(adj, x @ w, "mean")
            else:
                h = spmm(adj, x, "mean") @ w
            out[d] = out[d] + h if d in out else h
        if self.loop_weight is not None:
            for t, x in dst_feat.items():
                h = x @ self.loop_weight
                out[t] = out[t] + h if t in out else h
        for t in list(out):
            h = out[t]
            if self.bias is not None:
                h = h + self.bias
            if self.activation is not None:
                h = self.activation(h)
            out[t] = self.dropout(h)
        if single:
            t = dsttypes[0]
            return out[t] if t in out else weights.new_zeros(graph.num_dst_nodes(t), self.out_feats)
        return out

    def _check_feat(self, name: str, x: Any, rows: int) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.in_feats:
            raise ValueError(f"{name} must have shape [N, {self.in_feats}], got {tuple(x.shape)}")
        if x.shape[0] != rows:
            raise ValueError(
                f"{name} has {x.shape[0]} rows, the graph has {rows} nodes of that type"
            )

    def extra_repr(self) -> str:
        return (
            f"{self.in_feats}, {self.out_feats}, num_rels={len(self.rel_names)}, "
            f"num_bases={self.num_bases}, self_loop={self.loop_weight is not None}"
        )
