"""gnnsys.nn: layers against dense reference implementations, gradients, DGL's block rule, the
zero-in-degree check, and the models (full graph, blocks, per-layer composition, training)."""

import math

import pytest
import torch
from torch.nn import functional as F

from gnnsys import Graph
from gnnsys.nn import GAT, GCN, GCNII, GATConv, GCN2Conv, GraphConv, GraphSAGE, SAGEConv


@pytest.fixture(autouse=True)
def _float64():
    # float64 so that dense references and gradcheck compare tightly; restored afterwards.
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


class Block:
    """A bipartite block: destinations are the first num_dst sources (DGL's rule)."""

    def __init__(self, edge_index, num_src, num_dst):
        perm = torch.argsort(edge_index[1], stable=True)
        self.indices = edge_index[0][perm].to(torch.int32)
        self.indptr = torch.zeros(num_dst + 1, dtype=torch.int64)
        self.indptr[1:] = torch.cumsum(torch.bincount(edge_index[1], minlength=num_dst), 0)
        self.num_src, self.num_dst = num_src, num_dst
        self.edge_index = edge_index[:, perm]

    def adj_csc(self):
        return self.indptr, self.indices, self.num_src, self.num_dst


def graph(n=8, e=24, seed=0, self_loops="add"):
    gen = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=gen)
    return Graph.from_edge_index(ei, n, dedupe=True, self_loops=self_loops)


def dense(adj):
    """A[dst, src] with edge multiplicities, and the edge list in the adjacency's order."""
    indptr, indices, ns, nd = adj.adj_csc()
    dst = torch.repeat_interleave(torch.arange(nd), indptr.diff())
    a = torch.zeros(nd, ns)
    a.index_put_((dst, indices.long()), torch.ones(dst.numel()), accumulate=True)
    return a


def block(seed=1, num_src=10, num_dst=6, e=30):
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_src, (e,), generator=gen)
    dst = torch.randint(0, num_dst, (e,), generator=gen)
    dst[:num_dst] = torch.arange(num_dst)  # every destination has an edge
    return Block(torch.stack([src, dst]), num_src, num_dst)


# ------------------------------------------------------------------------------ SAGEConv
@pytest.mark.parametrize("agg", ["mean", "gcn", "pool"])
@pytest.mark.parametrize("in_feats,out_feats", [(5, 3), (3, 5)])  # both projection orders
def test_sageconv_matches_dense(agg, in_feats, out_feats):
    torch.manual_seed(0)
    g = graph(self_loops="keep")
    x = torch.randn(g.num_nodes, in_feats)
    conv = SAGEConv(in_feats, out_feats, agg)
    with torch.no_grad():
        conv.bias.normal_()
    a = dense(g)
    deg = a.sum(1, keepdim=True)
    if agg == "mean":
        want = conv.fc_self(x) + conv.fc_neigh(a @ x / deg.clamp(min=1))
    elif agg == "gcn":
        want = conv.fc_neigh((a @ x + x) / (deg + 1))
    else:
        p = F.relu(conv.fc_pool(x))
        m = torch.where(a[:, :, None] > 0, p[None], torch.tensor(-math.inf)).amax(1)
        m = torch.where(deg > 0, m, torch.zeros_like(m))
        want = conv.fc_self(x) + conv.fc_neigh(m)
    torch.testing.assert_close(conv(g, x), want + conv.bias)


def test_sageconv_options_and_lstm():
    with pytest.raises(NotImplementedError, match="lstm"):
        SAGEConv(4, 4, "lstm")
    with pytest.raises(ValueError, match="aggregator_type"):
        SAGEConv(4, 4, "sum")
    g = graph()
    x = torch.randn(g.num_nodes, 4)
    conv = SAGEConv(4, 3, activation=torch.relu, norm=lambda t: t * 2, bias=False)
    base = SAGEConv(4, 3, bias=False)
    base.load_state_dict(conv.state_dict())
    torch.testing.assert_close(conv(g, x), 2 * torch.relu(base(g, x)))
    w = torch.rand(g.num_edges)
    a = torch.zeros(g.num_nodes, g.num_nodes)
    dst = torch.repeat_interleave(torch.arange(g.num_nodes), g.in_degrees())
    a.index_put_((dst, g.indices.long()), w, accumulate=True)
    want = base.fc_self(x) + base.fc_neigh(a @ x / g.in_degrees().clamp(min=1)[:, None])
    torch.testing.assert_close(base(g, x, edge_weight=w), want)


# ------------------------------------------------------------------------------ GraphConv
@pytest.mark.parametrize("norm", ["both", "right", "left", "none"])
def test_graphconv_matches_dense(norm):
    torch.manual_seed(1)
    g = graph()
    x = torch.randn(g.num_nodes, 6)
    conv = GraphConv(6, 4, norm=norm)
    a = dense(g)
    d_in, d_out = a.sum(1).clamp(min=1), a.sum(0).clamp(min=1)
    left = {"both": d_out.rsqrt(), "left": 1 / d_out}.get(norm, torch.ones_like(d_out))
    right = {"both": d_in.rsqrt(), "right": 1 / d_in}.get(norm, torch.ones_like(d_in))
    want = right[:, None] * (a @ (left[:, None] * x)) @ conv.weight + conv.bias
    torch.testing.assert_close(conv(g, x), want)


def test_graphconv_external_weight_and_zero_in_degree():
    g = Graph.from_edge_index(torch.tensor([[0, 1, 2], [1, 2, 0]]), 5)  # 3, 4: no in-edges
    x = torch.randn(g.num_nodes, 3)
    with pytest.raises(ValueError, match="0-in-degree"):
        GraphConv(3, 2)(g, x)
    conv = GraphConv(3, 2, weight=False, allow_zero_in_degree=True)
    w = torch.randn(3, 2)
    ref = GraphConv(3, 2, allow_zero_in_degree=True)
    with torch.no_grad():
        ref.weight.copy_(w)
    torch.testing.assert_close(conv(g, x, weight=w), ref(g, x))
    with pytest.raises(ValueError, match="external weight"):
        ref(g, x, weight=w)


# ------------------------------------------------------------------------------ GATConv
def dense_gat(conv, a, x_src, x_dst, heads, out):
    fs = conv.fc(x_src).view(-1, heads, out)
    fd = conv.fc(x_dst).view(-1, heads, out)
    el = (fs * conv.attn_l).sum(-1)  # [Ns, H]
    er = (fd * conv.attn_r).sum(-1)  # [Nd, H]
    e = F.leaky_relu(er[:, None, :] + el[None, :, :], 0.2)  # [Nd, Ns, H]
    e = torch.where(a[:, :, None] > 0, e, torch.tensor(-math.inf))
    att = torch.softmax(e, dim=1)
    return torch.einsum("vuh,uhd->vhd", att, fs) + conv.bias.view(1, heads, out)


def test_gatconv_matches_dense_and_returns_attention():
    torch.manual_seed(2)
    g = graph()  # dedupe + self loops: dense softmax has one entry per edge
    x = torch.randn(g.num_nodes, 5)
    conv = GATConv(5, 3, num_heads=2)
    with torch.no_grad():
        conv.bias.normal_()
    want = dense_gat(conv, dense(g), x, x, 2, 3)
    torch.testing.assert_close(conv(g, x), want)
    rst, att = conv(g, x, get_attention=True)
    assert att.shape == (g.num_edges, 2, 1)
    dst = torch.repeat_interleave(torch.arange(g.num_nodes), g.in_degrees())
    sums = torch.zeros(g.num_nodes, 2).index_add_(0, dst, att[:, :, 0])
    torch.testing.assert_close(sums, torch.ones(g.num_nodes, 2))


def test_gatconv_residual_and_zero_in_degree():
    g = graph()
    x = torch.randn(g.num_nodes, 6)
    conv = GATConv(6, 3, num_heads=2, residual=True, bias=False)
    assert isinstance(conv.res_fc, torch.nn.Identity)
    plain = GATConv(6, 3, num_heads=2, bias=False)
    plain.load_state_dict(conv.state_dict(), strict=False)
    torch.testing.assert_close(conv(g, x), plain(g, x) + x.view(-1, 2, 3))
    g0 = Graph.from_edge_index(torch.tensor([[0, 1], [1, 0]]), g.num_nodes)
    with pytest.raises(ValueError, match="0-in-degree"):
        GATConv(6, 3, 2)(g0, x)
    assert GATConv(6, 3, 2, allow_zero_in_degree=True)(g0, x).shape == (g.num_nodes, 2, 3)


# ------------------------------------------------------------------------------ GCN2Conv
@pytest.mark.parametrize("project", [True, False])
def test_gcn2conv_matches_dense(project):
    torch.manual_seed(3)
    g = graph()
    h, h0 = torch.randn(g.num_nodes, 4), torch.randn(g.num_nodes, 4)
    conv = GCN2Conv(4, layer=3, alpha=0.2, lambda_=0.5, project_initial_features=project)
    with torch.no_grad():
        conv.bias.normal_()
    beta = math.log(0.5 / 3 + 1)
    assert conv.beta == pytest.approx(beta)
    a = dense(g)
    p = a.sum(1).clamp(min=1).rsqrt()[:, None] * a * a.sum(0).clamp(min=1).rsqrt()[None, :]
    eye = torch.eye(4)
    sm, init = 0.8 * (p @ h), 0.2 * h0
    if project:
        want = (sm + init) @ ((1 - beta) * eye + beta * conv.weight1)
    else:
        want = sm @ ((1 - beta) * eye + beta * conv.weight1)
        want = want + init @ ((1 - beta) * eye + beta * conv.weight2)
    torch.testing.assert_close(conv(g, h, h0), want + conv.bias)


def test_gcn2conv_edge_weight_normalisation():
    g = graph()
    h = torch.randn(g.num_nodes, 3)
    conv = GCN2Conv(3, layer=1)
    # all-ones weights normalise exactly as the degrees do
    torch.testing.assert_close(conv(g, h, h, edge_weight=torch.ones(g.num_edges)), conv(g, h, h))


def test_gcn2conv_norm_none_reads_edge_weight_as_given():
    torch.manual_seed(9)
    g = graph(10, 30)
    h, h0 = torch.randn(g.num_nodes, 4), torch.randn(g.num_nodes, 4)
    conv = GCN2Conv(4, layer=2, alpha=0.3, lambda_=0.7)
    same = GCN2Conv(4, layer=2, alpha=0.3, lambda_=0.7, norm="none")
    same.load_state_dict(conv.state_dict())
    # GCN weights computed once from the degrees: "none" on them equals the default "both"
    a = dense(g)
    indptr, indices, _, _ = g.adj_csc()
    dst = torch.repeat_interleave(torch.arange(g.num_nodes), indptr.diff())
    w = a.sum(1).rsqrt()[dst] * a.sum(0).rsqrt()[indices.long()]
    torch.testing.assert_close(same(g, h, h0, edge_weight=w), conv(g, h, h0))
    # arbitrary weights are used as they are (no renormalisation); no weights: a plain sum
    w2 = torch.rand(g.num_edges)
    p = torch.zeros(g.num_nodes, g.num_nodes)
    p.index_put_((dst, indices.long()), w2, accumulate=True)
    beta = math.log(0.7 / 2 + 1)
    mix = (1 - beta) * torch.eye(4) + beta * same.weight1
    want = (0.7 * (p @ h) + 0.3 * h0) @ mix + same.bias
    torch.testing.assert_close(same(g, h, h0, edge_weight=w2), want)
    want = (0.7 * (a @ h) + 0.3 * h0) @ mix + same.bias
    torch.testing.assert_close(same(g, h, h0), want)
    with pytest.raises(ValueError, match="norm must be 'both' or 'none', got 'left'"):
        GCN2Conv(4, layer=1, norm="left")


def test_gcn2conv_norm_none_on_a_block_equals_full_graph_rows():
    # A block of a larger graph: its degrees are not the graph's, global weights keep it exact.
    torch.manual_seed(10)
    g = graph(12, 40)
    a = dense(g)
    indptr, indices, n, _ = g.adj_csc()
    dst = torch.repeat_interleave(torch.arange(n), indptr.diff())
    w = a.sum(1).rsqrt()[dst] * a.sum(0).rsqrt()[indices.long()]
    conv = GCN2Conv(3, layer=1, alpha=0.1, norm="none", allow_zero_in_degree=True)
    h = torch.randn(n, 3)
    full = conv(g, h, h, edge_weight=w)
    keep = torch.arange(5)  # destinations 0..4 with all their in-edges; sources re-labelled
    e = (dst < 5).nonzero().flatten()
    src = indices.long()[e]
    others = torch.unique(src[src >= 5])
    order = torch.cat([keep, others])
    local = torch.empty(n, dtype=torch.long)
    local[order] = torch.arange(order.numel())
    b = Block(torch.stack([local[src], dst[e]]), order.numel(), 5)
    perm = torch.argsort(dst[e], stable=True)
    out = conv(b, h[order], h[keep], edge_weight=w[e][perm])
    torch.testing.assert_close(out, full[keep])


@pytest.mark.parametrize("project", [True, False])
def test_gcn2conv_norm_none_gradcheck(project):
    torch.manual_seed(11)
    g = graph(6, 14)
    conv = GCN2Conv(3, layer=2, norm="none", project_initial_features=project)
    w = torch.rand(g.num_edges)
    x = torch.randn(g.num_nodes, 3, requires_grad=True)
    x0 = torch.randn(g.num_nodes, 3, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, x0: conv(g, x, x0, edge_weight=w), (x, x0))


# ------------------------------------------------------------------------------ block rule
@pytest.mark.parametrize(
    "make",
    [
        lambda: SAGEConv(4, 3),
        lambda: SAGEConv(4, 3, "gcn"),
        lambda: SAGEConv(4, 3, "pool"),
        lambda: GraphConv(4, 3),
        lambda: GATConv(4, 3, 2),
    ],
)
def test_block_rule_single_tensor_equals_pair(make):
    torch.manual_seed(4)
    b = block()
    conv = make()
    x = torch.randn(b.num_src, 4)
    out = conv(b, x)
    assert out.shape[0] == b.num_dst
    torch.testing.assert_close(out, conv(b, (x, x[: b.num_dst])))
    # the same block as (edge_index, (num_src, num_dst)) gives the same result
    torch.testing.assert_close(out, conv((b.edge_index, (b.num_src, b.num_dst)), x))


def test_bipartite_pair_with_different_sizes():
    b = block()
    conv = SAGEConv((4, 2), 3)
    out = conv(b, (torch.randn(b.num_src, 4), torch.randn(b.num_dst, 2)))
    assert out.shape == (b.num_dst, 3)
    with pytest.raises(ValueError, match="destination feat has 5 rows"):
        conv(b, (torch.randn(b.num_src, 4), torch.randn(5, 2)))
    with pytest.raises(ValueError, match="feat has 9 rows"):
        SAGEConv(4, 3)(b, torch.randn(9, 4))


# ------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize(
    "make,call",
    [
        (lambda: SAGEConv(3, 2, "pool"), lambda m, g, x: m(g, x)),
        (lambda: GraphConv(3, 2), lambda m, g, x: m(g, x)),
        (lambda: GATConv(3, 2, 2), lambda m, g, x: m(g, x)),
        (lambda: GCN2Conv(3, 2), lambda m, g, x: m(g, x, x)),
    ],
)
def test_layer_gradcheck(make, call):
    torch.manual_seed(5)
    g = graph(6, 14)
    m = make()
    x = torch.randn(g.num_nodes, 3, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: call(m, g, x), (x,))
    call(m, g, x).sum().backward()
    assert all(p.grad is not None for p in m.parameters())


# ------------------------------------------------------------------------------ models
MODELS = [
    lambda: GraphSAGE(5, 8, 3, num_layers=2, dropout=0.0),
    lambda: GCN(5, 8, 3, num_layers=2, dropout=0.0),
    lambda: GCNII(5, 8, 3, num_layers=4, alpha=0.1, theta=0.5, dropout=0.0),
    lambda: GAT(5, 4, 3, num_layers=2, num_heads=2, dropout=0.0),
]


@pytest.mark.parametrize("make", MODELS)
def test_model_full_graph_blocks_and_layerwise(make):
    torch.manual_seed(6)
    model = make()
    g = graph(12, 40)
    x = torch.randn(g.num_nodes, 5)
    out = model(g, x)
    assert out.shape == (g.num_nodes, 3)
    # per-layer composition (what a pipeline trainer runs) equals forward
    h = model.encode(x)
    h0 = h
    for i in range(model.num_layers):
        h = model.layer_forward(i, g, h, h0)
    torch.testing.assert_close(model.decode(h), out)
    assert len(model.layers) == model.num_layers
    # mini-batch: a list of blocks, each block's destinations a prefix of its sources
    blocks = _blocks([12] + [9] * (model.num_layers - 1) + [4])
    assert model(blocks, torch.randn(12, 5)).shape == (4, 3)
    with pytest.raises(ValueError, match="blocks"):
        model(blocks[:-1], torch.randn(12, 5))


def _blocks(sizes):
    out = []
    for i in range(len(sizes) - 1):
        gen = torch.Generator().manual_seed(i)
        ns, nd = sizes[i], sizes[i + 1]
        src = torch.randint(0, ns, (3 * nd,), generator=gen)
        dst = torch.arange(3 * nd) % nd
        out.append(Block(torch.stack([src, dst]), ns, nd))
    return out


def test_full_graph_equals_blocks_of_the_whole_graph():
    torch.manual_seed(7)
    model = GraphSAGE(5, 8, 3, num_layers=2, dropout=0.0)
    g = graph(10, 30)
    x = torch.randn(10, 5)
    torch.testing.assert_close(model([g, g], x), model(g, x))


@pytest.mark.parametrize("make", MODELS)
def test_models_train(make):
    torch.manual_seed(8)
    model = make()
    g = graph(16, 60)
    x = torch.randn(16, 5)
    y = x[:, :3].argmax(1)  # learnable from the features
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(model(g, x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0]


def test_deep_gcnii_and_validation():
    model = GCNII(5, 8, 3, num_layers=16, dropout=0.1)
    g = graph(10, 30)
    out = model(g, torch.randn(10, 5))
    assert torch.isfinite(out).all() and len(model.layers) == 16
    assert isinstance(model.input_proj, torch.nn.Linear)
    with pytest.raises(ValueError, match="num_layers"):
        GCN(5, 8, 3, num_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        GraphSAGE(5, 8, 3, dropout=1.5)
