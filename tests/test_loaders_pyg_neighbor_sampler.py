"""PyG's legacy NeighborSampler drop-in: the (batch_size, n_id, adjs) contract against brute
force, its arguments and errors, determinism, a GraphSAGE written for it training, and the same
batches as PyG's own where nothing is random (run beside PyG's when torch-sparse is installed)."""

import pytest
import torch
import torch.nn.functional as F

from gnnsys.loaders.pyg import NeighborSampler


def make_graph(n=120, e=900, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (2, e), generator=g), n


def in_neighbours(edge_index, nodes):
    nodes = set(nodes)
    return {s for s, d in edge_index.t().tolist() if d in nodes}


def global_edges(n_id, adj):
    ei = adj.edge_index
    return sorted(zip(n_id[ei[0]].tolist(), n_id[ei[1]].tolist(), adj.e_id.tolist()))


def test_full_layers_are_the_in_neighbourhoods_outermost_first():
    edge_index, n = make_graph()
    loader = NeighborSampler(edge_index, sizes=[-1, -1], node_idx=torch.arange(10, 30),
                             batch_size=8)  # fmt: skip
    assert len(loader) == 3 and repr(loader) == "NeighborSampler(sizes=[-1, -1])"
    for batch_size, n_id, adjs in loader:
        seeds = n_id[:batch_size].tolist()
        hop1 = set(seeds) | in_neighbours(edge_index, seeds)
        hop2 = hop1 | in_neighbours(edge_index, hop1)
        outer, inner = adjs  # outermost layer first
        assert inner.size == (len(hop1), batch_size) and outer.size == (len(hop2), len(hop1))
        assert set(n_id[: inner.size[0]].tolist()) == hop1 and set(n_id.tolist()) == hop2
        for adj in adjs:  # every edge into a target, exactly the graph's edges
            targets = set(n_id[: adj.size[1]].tolist())
            want = sorted((s, d, j) for j, (s, d) in enumerate(edge_index.t().tolist())
                          if d in targets)  # fmt: skip
            assert global_edges(n_id, adj) == want
            assert int(adj.edge_index[0].max()) < adj.size[0]
            assert int(adj.edge_index[1].max()) < adj.size[1]


def test_sampled_layers_keep_their_contract():
    edge_index, n = make_graph(seed=1)
    loader = NeighborSampler(edge_index, sizes=[4, 2], batch_size=16, shuffle=True, seed=3)
    for batch_size, n_id, (outer, inner) in loader:
        assert n_id.unique().numel() == n_id.numel()
        assert inner.size[1] == batch_size and outer.size[1] == inner.size[0]
        for adj, k in ((inner, 4), (outer, 2)):
            src, dst = n_id[adj.edge_index[0]], n_id[adj.edge_index[1]]
            assert torch.equal(src, edge_index[0, adj.e_id]) and torch.equal(
                dst, edge_index[1, adj.e_id]
            )
            assert int(torch.bincount(adj.edge_index[1]).max()) <= k
    single = NeighborSampler(edge_index, sizes=[3], batch_size=5)
    batch_size, n_id, adj = next(iter(single))  # one layer: not wrapped in a list
    assert adj.size[1] == batch_size == 5 and n_id[:5].tolist() == [0, 1, 2, 3, 4]
    plain = NeighborSampler(edge_index, sizes=[3], batch_size=5, return_e_id=False)
    assert next(iter(plain))[2].e_id is None


def test_node_idx_forms_num_nodes_sample_and_transform():
    edge_index, n = make_graph(seed=2)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[[3, 9, 50]] = True
    by_mask = NeighborSampler(edge_index, [2], node_idx=mask, batch_size=10)
    assert by_mask.num_nodes == n and next(iter(by_mask))[1][:3].tolist() == [3, 9, 50]
    assert by_mask.dataset == [3, 9, 50]
    wider = NeighborSampler(edge_index, [2], node_idx=torch.tensor([n + 5]), batch_size=1)
    assert wider.num_nodes == n + 6  # PyG: the largest id in edge_index or node_idx, plus one
    batch_size, n_id, adj = by_mask.sample(torch.tensor([7, 8]))
    assert batch_size == 2 and n_id[:2].tolist() == [7, 8]
    assert by_mask.sample([7, 8])[1].tolist() == n_id.tolist()  # the same key every call
    seen = []
    t = NeighborSampler(edge_index, [2], batch_size=4,
                        transform=lambda b, n_id, adj: seen.append(b) or (b, n_id))  # fmt: skip
    assert len(next(iter(t))) == 2 and seen[0] == 4  # (later batches may be built ahead)


def test_deterministic_for_a_seed_whatever_the_threads():
    edge_index, n = make_graph(seed=3)

    def run(workers, seed):
        loader = NeighborSampler(edge_index, [5, 5], batch_size=16, shuffle=True,
                                 num_workers=workers, seed=seed)  # fmt: skip
        return [(n_id, adjs[0].e_id) for _, n_id, adjs in loader]

    one, two = run(0, 7), run(2, 7)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(one, two))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(one, run(0, 8)))


def test_a_graphsage_written_for_it_trains():
    # the model loop of PyG's legacy examples: x[n_id], then per layer x_target = x[:size[1]]
    from torch_geometric.nn import SAGEConv

    edge_index, n = make_graph(n=200, e=2000, seed=4)
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (n,), generator=g)
    x = F.one_hot(y, 3).float() + 0.5 * torch.randn(n, 3, generator=g)
    convs = torch.nn.ModuleList([SAGEConv(3, 16), SAGEConv(16, 3)])
    opt = torch.optim.Adam(convs.parameters(), lr=0.02)
    loader = NeighborSampler(edge_index, [5, 5], batch_size=50, shuffle=True, seed=0)
    losses = []
    for _ in range(10):
        total = 0.0
        for batch_size, n_id, adjs in loader:
            h = x[n_id]
            for i, (ei, _, size) in enumerate(adjs):
                h = convs[i]((h, h[: size[1]]), ei)
                h = h.relu() if i == 0 else h
            loss = F.cross_entropy(h, y[n_id[:batch_size]])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss)
        losses.append(total)
    assert losses[-1] < 0.7 * losses[0], losses


def test_bad_arguments_raise_clear_errors():
    edge_index, n = make_graph()
    with pytest.raises(NotImplementedError, match="SparseTensor"):
        NeighborSampler(edge_index.tolist(), [2])
    with pytest.raises(ValueError, match="sizes"):
        NeighborSampler(edge_index, [-3])
    with pytest.raises(ValueError, match="node_idx"):
        NeighborSampler(edge_index, [2], node_idx=torch.tensor([n + 1]), num_nodes=n)
    with pytest.raises(ValueError, match="one entry per node"):
        NeighborSampler(edge_index, [2], node_idx=torch.ones(n + 3, dtype=torch.bool),
                        num_nodes=n)  # fmt: skip
    with pytest.raises(ValueError, match="num_nodes"):
        NeighborSampler(edge_index, [2], num_nodes=0)
    with pytest.raises(ValueError):
        NeighborSampler(torch.tensor([[0, -1], [1, 2]]), [2])
    with pytest.raises(ValueError, match="batch"):
        NeighborSampler(edge_index, [2]).sample(torch.tensor([n]))
    with pytest.raises(TypeError, match="transform"):
        NeighborSampler(edge_index, [2], transform=3)


def test_same_batches_as_pygs_where_nothing_is_random():
    pytest.importorskip("torch_sparse", reason="PyG's NeighborSampler needs torch-sparse")
    from torch_geometric.loader import NeighborSampler as PygNeighborSampler

    edge_index, n = make_graph(seed=5)
    kw = dict(sizes=[-1, -1], node_idx=torch.arange(40), batch_size=16)
    for (b1, n1, a1), (b2, n2, a2) in zip(NeighborSampler(edge_index, **kw),
                                          PygNeighborSampler(edge_index, **kw)):  # fmt: skip
        assert b1 == b2 and torch.equal(n1[:b1], n2[:b2])
        for x, y in zip(a1, a2):
            assert x.size == y.size and type(x) is type(y)
            assert sorted(n1[: x.size[0]].tolist()) == sorted(n2[: y.size[0]].tolist())
            assert global_edges(n1, x) == global_edges(n2, y)


def test_a_sparse_tensor_input_gives_adj_layers_as_pygs():
    # a transposed SparseTensor (targets x sources): Adj(adj_t, e_id, size) layers whose
    # adj_t carries the input's values (without values: the edge ids), as PyG's
    torch_sparse = pytest.importorskip("torch_sparse")
    from torch_geometric.loader import NeighborSampler as PygNeighborSampler

    edge_index, n = make_graph(seed=6)
    edge_index = torch.unique(edge_index, dim=1)  # (a SparseTensor would merge duplicates)
    value = torch.rand(edge_index.shape[1])
    for val in (value, None):
        adj_t = torch_sparse.SparseTensor(row=edge_index[1], col=edge_index[0], value=val,
                                          sparse_sizes=(n, n))  # fmt: skip
        kw = dict(sizes=[-1, -1], node_idx=torch.arange(30), batch_size=10)
        ours, theirs = NeighborSampler(adj_t, **kw), PygNeighborSampler(adj_t, **kw)
        assert ours.is_sparse_tensor
        for (b1, n1, a1), (b2, n2, a2) in zip(ours, theirs):
            assert b1 == b2 and torch.equal(n1[:b1], n2[:b2])
            for x, y in zip(a1, a2):
                assert type(x) is type(y) and x.size == y.size
                rx, cx, vx = x.adj_t.coo()
                ry, cy, vy = y.adj_t.coo()
                got = sorted(zip(n1[cx].tolist(), n1[rx].tolist(), vx.tolist()))
                want = sorted(zip(n2[cy].tolist(), n2[ry].tolist(), vy.tolist()))
                assert got == want
                assert sorted(x.e_id.tolist()) == sorted(y.e_id.tolist())
