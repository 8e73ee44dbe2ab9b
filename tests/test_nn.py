"""gnnsys.nn: layers against dense reference implementations, gradients, DGL's block rule, the
zero-in-degree check, the models (full graph, blocks, per-layer composition, training), and the
relational layer on typed blocks (against a per-relation index_add reference; training on
DataLoader blocks of a heterograph)."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from gnnsys import Graph
from gnnsys.block import Block as TypedBlock
from gnnsys.nn import (
    GAT,
    GCN,
    GCNII,
    Adjacency,
    GATConv,
    GCN2Conv,
    GNNStack,
    GraphConv,
    GraphSAGE,
    HeteroRGCNConv,
    SAGEConv,
    layer_adjacencies,
)


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
    # the pipeline's shape: input projection, hidden -> hidden layers, a head
    lambda: GNNStack("sage", 5, 8, 3, num_layers=3, project=True, dropout=0.0),
    lambda: GNNStack("gat", 5, 8, 3, num_layers=2, project=True, heads=2, dropout=0.0),
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
    h = model.embed(x)
    h0 = h
    for i in range(model.num_layers):
        h = model.layer(i, g, h, h0)
    torch.testing.assert_close(model.head(h), out)
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


def _float32_graph_and_features(n=40, e=160, seed=3):
    torch.set_default_dtype(torch.float32)  # the autouse fixture restores float64
    g = graph(n, e, seed=seed, self_loops="keep")
    return g, torch.randn(n, 5, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("project", [False, True])
@pytest.mark.parametrize("kind", ["sage", "gcn", "gcnii", "gat"])
def test_full_neighbour_batch_equals_full_graph_rows(kind, project):
    # A DGL-semantics batch sampled with every neighbour, each layer's adjacency taken from the
    # kernel's per-hop CSC, gives the seeds exactly the rows of the full-graph forward: the
    # blocks carry every in-edge and (GCN, GCNII) the globally normalised weights.
    from gnnsys.loaders import NeighborSampler, SampleKey

    g, x = _float32_graph_and_features()
    torch.manual_seed(0)
    norm = "none" if kind in ("gcn", "gcnii") else "both"
    model = GNNStack(kind, 5, 8, 3, num_layers=2, project=project, norm=norm, heads=2).eval()
    adj = model.prepare_graph(g)
    full = model(adj, x)
    seeds = torch.tensor([3, 17, 0, 29])
    sub = NeighborSampler(adj, [-1, -1], semantics="dgl").sample(seeds, SampleKey(0))
    w = adj.edge_weight
    blocks = layer_adjacencies(
        sub, 2, edge_weight=w, degrees=adj.in_degrees() if w is not None else None
    )
    assert [b.num_dst for b in blocks] == [sub.num_sampled_nodes[0] + sub.num_sampled_nodes[1],
                                           seeds.numel()]  # fmt: skip
    assert blocks[0].num_src == sub.nodes.numel()
    torch.testing.assert_close(model(blocks, x[sub.nodes]), full[seeds], atol=1e-5, rtol=1e-5)


def test_sampled_weights_are_scaled_by_degree_over_sampled():
    # Fanout 3: a destination with more in-edges keeps 3, each weight scaled by deg / 3 (the
    # sampled sum then estimates the full sum without bias); one with <= 3 keeps its weights.
    from gnnsys.loaders import NeighborSampler, SampleKey

    g, _ = _float32_graph_and_features()
    model = GNNStack("gcn", 5, 8, 3, num_layers=1, norm="none")
    adj = model.prepare_graph(g)
    deg = adj.in_degrees()
    seeds = torch.arange(adj.num_nodes)
    assert bool((deg > 3).any()) and bool((deg <= 3).any())
    sub = NeighborSampler(adj, [3], semantics="dgl").sample(seeds, SampleKey(1))
    (blk,) = layer_adjacencies(sub, edge_weight=adj.edge_weight, degrees=deg)
    raw = sub.block(1)
    sampled = raw.indptr.diff()
    assert torch.equal(sampled, deg.clamp(max=3))
    dst = torch.repeat_interleave(seeds, sampled)
    scale = torch.where(deg[dst] > 3, deg[dst] / 3.0, torch.ones(()))
    torch.testing.assert_close(blk.edge_weight, adj.edge_weight[raw.edge_ids] * scale)
    (plain,) = layer_adjacencies(sub, edge_weight=adj.edge_weight)  # no degrees: no scaling
    assert torch.equal(plain.edge_weight, adj.edge_weight[raw.edge_ids])


def test_prepare_graph_per_kind():
    g, _ = _float32_graph_and_features()
    sage = GNNStack("sage", 5, 8, 3)
    assert sage.prepare_graph(g) is g
    gat = GNNStack("gat", 5, 8, 3, heads=2).prepare_graph(g)
    assert gat.edge_weight is None and gat.edge_ids is None
    loops = gat.to_edge_index()
    assert set(loops[0][loops[0] == loops[1]].tolist()) == set(range(g.num_nodes))
    both = GNNStack("gcn", 5, 8, 3).prepare_graph(g)  # norm "both": degrees per adjacency
    assert both.edge_weight is None and both.num_edges == gat.num_edges
    gcn = GNNStack("gcn", 5, 8, 3, norm="none").prepare_graph(g)
    a = torch.tensor(gcn.to_scipy().toarray() != 0, dtype=torch.float32)
    d = a.sum(0).pow(-0.5)  # to_scipy is A[src, dst]: in-degrees are column sums
    want = d[:, None] * a * d[None, :]  # D^-1/2 (A + I) D^-1/2, in-degrees both sides (PyG)
    torch.testing.assert_close(torch.tensor(gcn.to_scipy().toarray()), want)


@pytest.mark.parametrize("in_feats", [-1, 0, 2.5, (4, 0), "8"])
def test_layer_input_sizes_must_be_positive_ints(in_feats):
    # a raw torch "negative dimension" error, or 2.5 silently truncated to 2, before
    for make in (lambda: SAGEConv(in_feats, 4), lambda: GATConv(in_feats, 4, num_heads=2)):
        with pytest.raises(ValueError, match="in_feats must be a positive int"):
            make()
    assert SAGEConv(np.int64(8), 4).fc_neigh.in_features == 8  # numpy ints are ints


def test_stack_errors():
    g, x = _float32_graph_and_features()
    with pytest.raises(ValueError, match="kind must be one of"):
        GNNStack("gin", 5, 8, 3)
    with pytest.raises(ValueError, match=r"hidden_feats \(10\) must be divisible by heads \(4\)"):
        GNNStack("gat", 5, 10, 3)
    with pytest.raises(ValueError, match="norm must be one of"):
        GNNStack("gcn", 5, 8, 3, norm="left")
    with pytest.raises(ValueError, match="in_feats must be an int >= 1"):
        GNNStack("sage", 0, 8, 3)
    with pytest.raises(TypeError, match="graph must be a gnnsys.Graph"):
        GNNStack("gcn", 5, 8, 3).prepare_graph(torch.zeros(2, 3))
    model = GNNStack("gcn", 5, 8, 3, norm="none")
    with pytest.raises(ValueError, match=r"reads normalised weights from adj.edge_weight.*Graph"):
        model(g, x)  # a graph without weights: prepare_graph first
    with pytest.raises(ValueError, match="layer index must be in 0..1"):
        model.layer(2, g, x)
    gcnii = GNNStack("gcnii", 5, 8, 3, num_layers=1)
    with pytest.raises(ValueError, match="GCNII layers need h0"):
        gcnii.layer(0, g, gcnii.embed(x))
    from gnnsys.loaders import NeighborSampler, SampleKey

    pyg = NeighborSampler(g, [2, 2]).sample(torch.tensor([0, 1]), SampleKey(0))
    with pytest.raises(ValueError, match="needs a layered subgraph"):
        layer_adjacencies(pyg)
    dgl = NeighborSampler(g, [2, 2], semantics="dgl").sample(torch.tensor([0, 1]), SampleKey(0))
    with pytest.raises(ValueError, match="the subgraph has 2 hops for a model with 3 layers"):
        layer_adjacencies(dgl, 3)
    with pytest.raises(ValueError, match="give edge_weight too"):
        layer_adjacencies(dgl, degrees=g.in_degrees())


def _amax(w):
    return float(w.detach().abs().max())


def test_pyg_init_draws_at_pyg_scale():
    # init="pyg" draws what PyG's layer of the kind draws; "dgl" keeps the layers' own (DGL's)
    # Xavier with ReLU gain, ~2.3x wider for SAGE (the cause of the trainer's slower start).
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    sage = GNNStack("sage", 100, 128, 47, init="pyg").layers[0]
    bound = 100**-0.5  # PyG Linear: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in))
    for w in (sage.fc_neigh.weight, sage.fc_self.weight, sage.bias):
        assert 0.95 * bound < _amax(w) <= bound
    dgl = GNNStack("sage", 100, 128, 47).layers[0]
    assert _amax(dgl.fc_neigh.weight) > 2 * bound and _amax(dgl.bias) == 0
    gat = GNNStack("gat", 100, 128, 47, heads=4, init="pyg").layers[0]
    for w, b in ((gat.attn_l, (6 / (4 + 32)) ** 0.5), (gat.fc.weight, (6 / (100 + 128)) ** 0.5)):
        assert 0.95 * b < _amax(w) <= b
    gcnii = GNNStack("gcnii", 100, 64, 47, num_layers=2, init="pyg").layers[1]
    b = (6 / 128) ** 0.5
    assert 0.95 * b < _amax(gcnii.weight1) <= b
    assert _amax(GNNStack("gcnii", 100, 64, 47, num_layers=2).layers[1].weight1) > b
    gcn = GNNStack("gcn", 100, 64, 47, init="pyg").layers[0]
    assert _amax(gcn.bias) == 0 and _amax(gcn.weight) <= (6 / 164) ** 0.5
    with pytest.raises(ValueError, match="init must be one of"):
        GNNStack("sage", 5, 8, 3, init="torch")


def test_adjacency_is_what_the_layers_read():
    torch.set_default_dtype(torch.float32)
    adj = Adjacency(torch.tensor([0, 2, 3]), torch.tensor([1, 2, 0]), 3, 2)
    assert adj.adj_csc()[2:] == (3, 2) and adj.num_edges == 3
    out = SAGEConv(4, 2)(adj, torch.randn(3, 4))
    assert out.shape == (2, 2)


def test_training_dropout_is_seeded():
    # The fused ReLU + dropout draws its mask from torch's generator: same seed, same output.
    g, x = _float32_graph_and_features()
    model = GNNStack("sage", 5, 8, 3, num_layers=2, dropout=0.5).train()
    outs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        outs.append(model(g, x))
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])


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


# ---------------------------------------------------------------------------- R-GCN
RELS = [("a", "ab", "b"), ("b", "ba", "a"), ("a", "aa", "a"), ("b", "bb", "b")]


def typed_block(seed=0, ns=None, nd=None, e=40):
    """A random typed gnnsys Block and its edge lists {etype: (src, dst)} (local ids)."""
    ns = ns or {"a": 9, "b": 7}
    nd = nd or {"a": 4, "b": 3}
    gen = torch.Generator().manual_seed(seed)
    rels, edges = {}, {}
    for k, (s, r, d) in enumerate(RELS):
        n = e + 5 * k
        src = torch.randint(0, ns[s], (n,), generator=gen)
        dst = torch.randint(0, nd[d], (n,), generator=gen) if nd[d] else src[:0]
        src = src[: dst.numel()]
        perm = torch.argsort(dst, stable=True)
        src, dst = src[perm], dst[perm]
        indptr = torch.zeros(nd[d] + 1, dtype=torch.int64)
        indptr[1:] = torch.cumsum(torch.bincount(dst, minlength=nd[d]), 0)
        rels[(s, r, d)] = (indptr, src)
        edges[(s, r, d)] = (src, dst)
    return TypedBlock.from_relations(rels, ns, nd), edges


def rgcn_reference(conv, edges, feat, nd):
    """R-GCN with a loop over relations and index_add (the layer fuses it into spmm)."""
    if conv.coeff is None:
        weights = conv.weight
    else:  # W_r = sum_b a_rb V_b, written out
        weights = torch.stack(
            [sum(conv.coeff[r, b] * conv.weight[b] for b in range(conv.weight.shape[0]))
             for r in range(conv.coeff.shape[0])]
        )  # fmt: skip
    out = {t: torch.zeros(n, conv.out_feats) for t, n in nd.items()}
    for (s, r, d), (src, dst) in edges.items():
        msg = feat[s][src] @ weights[RELS.index((s, r, d))]
        total = torch.zeros(nd[d], conv.out_feats).index_add_(0, dst, msg)
        count = torch.zeros(nd[d]).index_add_(0, dst, torch.ones(dst.numel()))
        out[d] = out[d] + total / count.clamp(min=1).unsqueeze(-1)
    for t in out:
        if conv.loop_weight is not None:
            out[t] = out[t] + feat[t][: nd[t]] @ conv.loop_weight
        if conv.bias is not None:
            out[t] = out[t] + conv.bias
    return out


@pytest.mark.parametrize("num_bases", [None, 2])
@pytest.mark.parametrize("in_feats, out_feats", [(5, 3), (3, 6)])
def test_hetero_rgcn_matches_index_add_reference(num_bases, in_feats, out_feats):
    block, edges = typed_block()
    gen = torch.Generator().manual_seed(1)
    feat = {t: torch.randn(block.num_src_nodes(t), in_feats, generator=gen) for t in ("a", "b")}
    feat = {t: x.requires_grad_() for t, x in feat.items()}
    torch.manual_seed(0)
    conv = HeteroRGCNConv(in_feats, out_feats, RELS, num_bases=num_bases)
    with torch.no_grad():
        conv.bias.add_(torch.randn(out_feats))  # a non-zero bias, so it is tested too
    nd = {"a": 4, "b": 3}
    out = conv(block, feat)
    ref = rgcn_reference(conv, edges, feat, nd)
    assert set(out) == {"a", "b"}
    grads_out = {t: torch.randn(nd[t], out_feats, generator=gen) for t in nd}
    params = [feat["a"], feat["b"]] + list(conv.parameters())
    g1 = torch.autograd.grad(sum((out[t] * grads_out[t]).sum() for t in nd), params)
    g2 = torch.autograd.grad(sum((ref[t] * grads_out[t]).sum() for t in nd), params)
    for t in nd:
        assert out[t].shape == (nd[t], out_feats)
        torch.testing.assert_close(out[t], ref[t], atol=1e-5, rtol=1e-5)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # the first destination has messages from every relation into its type: the test sees them
    assert all(block.in_degrees(etype=et).sum() > 0 for et in RELS)


def test_hetero_rgcn_options_pairs_and_one_type():
    block, edges = typed_block(seed=3)
    nd = {"a": 4, "b": 3}
    feat = {t: torch.randn(block.num_src_nodes(t), 4) for t in ("a", "b")}
    # relation names instead of triples; no self loop, no bias; a (src, dst) pair of dicts
    conv = HeteroRGCNConv(4, 2, [r for _, r, _ in RELS], self_loop=False, bias=False)
    assert conv.loop_weight is None and conv.bias is None
    dst = {t: feat[t][: nd[t]] for t in nd}
    torch.testing.assert_close(conv(block, (feat, dst)), conv(block, feat))
    torch.testing.assert_close(conv(block, feat)["a"], rgcn_reference(conv, edges, feat, nd)["a"])
    # only the types given take part (as HeteroGraphConv): b's relations drop out
    only_a = conv(block, {"a": feat["a"]})
    want = rgcn_reference(conv, {k: v for k, v in edges.items() if k[0] == "a"}, feat, nd)
    assert set(only_a) == {"a", "b"}
    torch.testing.assert_close(only_a["b"], want["b"])
    # a homogeneous block is the one-relation case: tensors in, tensor out
    hb = TypedBlock(torch.tensor([0, 2, 3]), torch.tensor([1, 2, 0]), 3)
    conv1 = HeteroRGCNConv(4, 2, [("_N", "_E", "_N")])
    x = torch.randn(3, 4)
    out = conv1(hb, x)
    mean0 = (x[1] + x[2]) / 2
    want0 = mean0 @ conv1.weight[0] + x[0] @ conv1.loop_weight + conv1.bias
    assert out.shape == (2, 2)
    torch.testing.assert_close(out[0], want0)
    assert "num_rels=1" in repr(conv1)


def test_hetero_rgcn_bad_input():
    block, _ = typed_block()
    conv = HeteroRGCNConv(4, 2, RELS[:3])
    feat = {t: torch.randn(block.num_src_nodes(t), 4) for t in ("a", "b")}
    with pytest.raises(ValueError, match=r"edge type \('b', 'bb', 'b'\), which rel_names"):
        conv(block, feat)
    conv = HeteroRGCNConv(4, 2, RELS)
    with pytest.raises(ValueError, match=r"feat\['a'\] has 8 rows, the graph has 9"):
        conv(block, {"a": torch.randn(8, 4), "b": feat["b"]})
    with pytest.raises(ValueError, match=r"feat\['b'\] must have shape \[N, 4\]"):
        conv(block, {"a": feat["a"], "b": torch.randn(7, 3)})
    with pytest.raises(ValueError, match="node type 'c'"):
        conv(block, {"c": torch.randn(2, 4)})
    with pytest.raises(ValueError, match="feat is a tensor but the graph has source node types"):
        conv(block, torch.randn(9, 4))
    with pytest.raises(ValueError, match="rel_names lists"):
        HeteroRGCNConv(4, 2, [RELS[0], RELS[0]])
    with pytest.raises(ValueError, match="rel_names must be a non-empty list"):
        HeteroRGCNConv(4, 2, "ab")
    with pytest.raises(ValueError, match="num_bases must be a positive int"):
        HeteroRGCNConv(4, 2, RELS, num_bases=0)


@pytest.mark.parametrize(
    "block_type",
    [
        "gnnsys",
        pytest.param(
            "dgl",
            marks=pytest.mark.skipif(
                __import__("gnnsys.loaders.dgl", fromlist=["_dgl"])._dgl() is None,
                reason="dgl does not import beside this torch",
            ),
        ),
    ],
)
def test_hetero_rgcn_trains_on_dataloader_blocks(block_type):
    """Items take the class of the tags they have; tags carry it in their features, items and
    users carry noise: a 2-layer R-GCN on the DataLoader's typed blocks learns it."""
    from gnnsys.loaders import dgl as dl

    torch.set_default_dtype(torch.float32)
    gen = torch.Generator().manual_seed(0)
    num = {"item": 240, "tag": 16, "user": 60}
    cls = torch.arange(240) % 4
    tag_of = torch.stack([cls + 4 * torch.randint(0, 4, (240,), generator=gen) for _ in range(2)])
    has = torch.stack([torch.arange(240).repeat(2), tag_of.flatten()])
    buys = torch.stack(
        [torch.randint(0, 60, (500,), generator=gen), torch.randint(0, 240, (500,), generator=gen)]
    )
    g = Graph.from_hetero(
        {("item", "has", "tag"): has, ("tag", "tags", "item"): has.flip(0),
         ("user", "buys", "item"): buys, ("item", "bought-by", "user"): buys.flip(0)},
        num,
    )  # fmt: skip
    tag_feat = torch.randn(16, 8, generator=gen) * 0.1
    tag_feat[torch.arange(16), torch.arange(16) % 4] += 1.0
    g.ndata[("tag", "feat")] = tag_feat
    g.ndata[("item", "feat")] = torch.randn(240, 8, generator=gen) * 0.1
    g.ndata[("user", "feat")] = torch.randn(60, 8, generator=gen) * 0.1
    g.ndata[("item", "label")] = cls
    sampler = dl.NeighborSampler(
        [{"has": 2, "tags": 4, "buys": 3, "bought-by": 3}, 4],
        prefetch_node_feats=["feat"], prefetch_labels={"item": ["label"]},
    )  # fmt: skip
    loader = dl.DataLoader(
        g, {"item": torch.arange(240)}, sampler, batch_size=60, shuffle=True, seed=0,
        block_type=block_type,
    )  # fmt: skip
    torch.manual_seed(0)
    rels = g.edge_types
    layers = torch.nn.ModuleList(
        [HeteroRGCNConv(8, 16, rels, num_bases=2, activation=F.relu), HeteroRGCNConv(16, 4, rels)]
    )
    opt = torch.optim.Adam(layers.parameters(), lr=0.03)
    epoch_loss, correct = [], 0
    for _ in range(5):
        total, correct = 0.0, 0
        for _, _, blocks in loader:
            h = blocks[0].srcdata["feat"]
            for layer, block in zip(layers, blocks):
                h = layer(block, h)
            y = blocks[-1].dstdata["label"]["item"]
            loss = F.cross_entropy(h["item"], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * y.numel()
            correct += int((h["item"].argmax(1) == y).sum())
        epoch_loss.append(total / 240)
    assert epoch_loss[-1] < 0.3 * epoch_loss[0], epoch_loss
    assert correct / 240 > 0.9, correct
