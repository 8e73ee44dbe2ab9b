"""PyG's HGTLoader drop-in: the batch's fields and their meaning, input forms, a to_hetero model
on its batches, determinism, errors, and the same batches as PyG's own where nothing is random
(run beside PyG's when torch-sparse is installed)."""

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data, HeteroData

from gnnsys.loaders.pyg import HGTLoader


def make_hetero(seed=0, papers=120, authors=80, cites=600, writes=400):
    g = torch.Generator().manual_seed(seed)
    data = HeteroData()
    data["paper"].x = torch.randn(papers, 6, generator=g)
    data["paper"].y = torch.randint(0, 3, (papers,), generator=g)
    data["paper"].train_mask = torch.rand(papers, generator=g) < 0.5
    data["author"].x = torch.randn(authors, 4, generator=g)
    data["venue"].num_nodes = 4
    data["paper", "cites", "paper"].edge_index = torch.randint(0, papers, (2, cites), generator=g)
    data["paper", "cites", "paper"].edge_attr = torch.randn(cites, 2, generator=g)
    writes_ei = torch.stack([torch.randint(0, authors, (writes,), generator=g),
                             torch.randint(0, papers, (writes,), generator=g)])  # fmt: skip
    data["author", "writes", "paper"].edge_index = writes_ei
    data["paper", "rev_writes", "author"].edge_index = writes_ei.flip(0)
    data["venue", "hosts", "paper"].edge_index = torch.stack(
        [torch.arange(papers) % 4, torch.arange(papers)]
    )
    data.name = "toy-hetero"
    return data


def check_batch(b, data):
    assert isinstance(b, HeteroData) and b.name == "toy-hetero"
    for ntype in data.node_types:
        n_id = b[ntype].n_id
        assert n_id.unique().numel() == n_id.numel()
        assert "num_sampled_nodes" not in b[ntype]  # as PyG's HGT batch
        if "x" in data[ntype]:
            assert torch.equal(b[ntype].x, data[ntype].x[n_id])
    assert torch.equal(b["paper"].y, data["paper"].y[b["paper"].n_id])
    for et in data.edge_types:
        src, _, dst = et
        ei, e_id = b[et].edge_index, b[et].e_id
        assert "num_sampled_edges" not in b[et]
        assert torch.equal(b[src].n_id[ei[0]], data[et].edge_index[0, e_id])
        assert torch.equal(b[dst].n_id[ei[1]], data[et].edge_index[1, e_id])
        if "edge_attr" in data[et]:
            assert torch.equal(b[et].edge_attr, data[et].edge_attr[e_id])


def test_batch_fields_and_their_meaning():
    data = make_hetero()
    mask = data["paper"].train_mask
    loader = HGTLoader(data, num_samples=[8, 4], input_nodes=("paper", mask), batch_size=16)
    seen = []
    for b in loader:
        check_batch(b, data)
        bs = b["paper"].batch_size
        # a mask's input_id: the seeds' ids (PyG's rule, as in NeighborLoader)
        assert torch.equal(b["paper"].n_id[:bs], b["paper"].input_id)
        # each type draws at most its counts; venue's store has num_nodes, as PyG's
        assert b["author"].n_id.numel() <= 12 and b["venue"].num_nodes <= 12
        seen.append(b["paper"].n_id[:bs])
    assert torch.equal(torch.cat(seen), mask.nonzero().view(-1))
    assert len(loader) == (int(mask.sum()) + 15) // 16


def test_input_node_forms_give_the_same_seeds():
    data = make_hetero(1)
    ids = torch.tensor([5, 1, 7, 30])
    mask = torch.zeros(120, dtype=torch.bool)
    mask[ids] = True
    by_ids = HGTLoader(data, [4], input_nodes=("paper", ids), batch_size=4)
    by_mask = HGTLoader(data, [4], input_nodes=("paper", mask), batch_size=4)
    every = HGTLoader(data, [4], input_nodes="paper", batch_size=200)
    every_none = HGTLoader(data, [4], input_nodes=("paper", None), batch_size=200)
    assert next(iter(by_ids))["paper"].n_id[:4].tolist() == [5, 1, 7, 30]
    assert sorted(next(iter(by_mask))["paper"].n_id[:4].tolist()) == [1, 5, 7, 30]
    assert next(iter(every))["paper"].batch_size == 120
    assert torch.equal(next(iter(every))["paper"].n_id, next(iter(every_none))["paper"].n_id)
    author = HGTLoader(data, [4], input_nodes="author", batch_size=10)
    b = next(iter(author))
    assert b["author"].batch_size == 10 and b["author"].n_id[:10].tolist() == list(range(10))
    check_batch(b, data)


def test_a_dict_of_counts_per_node_type():
    data = make_hetero(2)
    loader = HGTLoader(data, {"paper": [3, 3], "author": [5, 0]}, input_nodes="paper",
                       batch_size=10)  # fmt: skip
    assert loader.num_samples == {"paper": [3, 3], "author": [5, 0], "venue": [0, 0]}
    for b in loader:
        assert b["paper"].n_id.numel() <= 10 + 6
        assert b["author"].n_id.numel() <= 5 and b["venue"].n_id.numel() == 0
        check_batch(b, data)


def test_a_to_hetero_model_trains_on_the_batches():
    from torch_geometric.nn import SAGEConv, to_hetero

    data = make_hetero(3)
    # every node type needs features and in-edges for to_hetero's message passing
    data["venue"].x = torch.randn(4, 3)
    hosts = data["venue", "hosts", "paper"].edge_index
    data["paper", "hosted_by", "venue"].edge_index = hosts.flip(0)

    class GNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = SAGEConv((-1, -1), 16), SAGEConv((-1, -1), 3)

        def forward(self, x, edge_index):
            return self.conv2(self.conv1(x, edge_index).relu(), edge_index)

    model = to_hetero(GNN(), data.metadata(), aggr="sum")
    loader = HGTLoader(data, [16, 16], input_nodes="paper", batch_size=32, shuffle=True, seed=0)
    with torch.no_grad():  # lazy shapes
        b = next(iter(loader))
        model(b.x_dict, b.edge_index_dict)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(15):
        total = 0.0
        for b in loader:
            bs = b["paper"].batch_size
            out = model(b.x_dict, b.edge_index_dict)["paper"][:bs]
            loss = F.cross_entropy(out, b["paper"].y[:bs])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss)
        losses.append(total)
    assert losses[-1] < 0.8 * losses[0], losses


def test_deterministic_for_a_seed_whatever_the_threads():
    data = make_hetero(4)

    def run(workers, seed):
        loader = HGTLoader(data, [6, 6], input_nodes="paper", batch_size=16, shuffle=True,
                           num_workers=workers, seed=seed)  # fmt: skip
        return [(b["author"].n_id, b["paper", "cites", "paper"].e_id) for b in loader]

    one, two = run(0, 7), run(2, 7)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(one, two))
    other = run(0, 8)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(one, other))


def test_dataloader_surface_and_call_by_index():
    data = make_hetero(5)
    loader = HGTLoader(data, [4], input_nodes="paper", batch_size=25)
    assert isinstance(loader, torch.utils.data.DataLoader)
    assert repr(loader) == "HGTLoader()" and "num_samples" in loader.describe()
    assert len(loader.dataset) == 120 and loader.batch_size == 25
    b = loader([3, 9])
    assert b["paper"].n_id[:2].tolist() == [3, 9] and b["paper"].batch_size == 2
    check_batch(b, data)
    assert loader.input_data.input_type == "paper"


def test_feature_and_graph_store_pair_matches_heterodata():
    data = make_hetero(6)
    del data["paper"].train_mask
    del data["paper", "cites", "paper"].edge_attr
    a = HGTLoader(data, [5, 5], input_nodes="paper", batch_size=20, seed=3)
    b = HGTLoader((data, data), [5, 5], input_nodes="paper", batch_size=20, seed=3)
    for x, y in zip(a, b):
        for ntype in data.node_types:
            assert torch.equal(x[ntype].n_id, y[ntype].n_id)
        for et in data.edge_types:
            assert torch.equal(x[et].edge_index, y[et].edge_index)


def test_bad_arguments_raise_clear_errors():
    data = make_hetero()
    with pytest.raises(NotImplementedError, match="heterogeneous"):
        HGTLoader(Data(x=torch.randn(4, 2), edge_index=torch.tensor([[0, 1], [1, 2]])), [2],
                  input_nodes=None)  # fmt: skip
    with pytest.raises(ValueError, match="input_nodes is required"):
        HGTLoader(data, [2], input_nodes=None)
    with pytest.raises(ValueError, match="'journal'"):
        HGTLoader(data, [2], input_nodes="journal")
    with pytest.raises(ValueError, match="node types not in the graph"):
        HGTLoader(data, {"journal": [2]}, input_nodes="paper")
    with pytest.raises(ValueError, match="one length"):
        HGTLoader(data, {"paper": [2, 2], "author": [2]}, input_nodes="paper")
    with pytest.raises(ValueError, match=">= 0"):
        HGTLoader(data, [-2], input_nodes="paper")
    with pytest.raises(ValueError):
        HGTLoader(data, [2], input_nodes=("paper", torch.tensor([500])))
    with pytest.raises(TypeError, match="is_sorted"):
        HGTLoader(data, [2], input_nodes="paper", is_sorted="yes")


# ---------------------------------------------------------------------- beside PyG's own
def test_same_batches_as_pygs_hgt_loader_where_nothing_is_random():
    # counts above every budget and degrees below 50: both take every budget, so the node sets
    # and the edges among them are fixed (the order of drawn nodes is not: PyG's follows a hash
    # map)
    pytest.importorskip("torch_sparse", reason="PyG's HGTLoader needs torch-sparse")
    from torch_geometric.loader import HGTLoader as PygHGTLoader

    data = make_hetero(7)
    kw = dict(num_samples=[500, 500], input_nodes=("paper", torch.arange(30)), batch_size=10)
    ours, theirs = HGTLoader(data, **kw), PygHGTLoader(data, **kw)
    for a, b in zip(ours, theirs):
        assert set(a.node_types) == set(b.node_types)
        assert torch.equal(a["paper"].n_id[:10], b["paper"].n_id[:10])  # the seeds
        for ntype in data.node_types:
            assert set(a[ntype].keys()) == set(b[ntype].keys())
            assert sorted(a[ntype].n_id.tolist()) == sorted(b[ntype].n_id.tolist())
        for et in data.edge_types:
            assert set(a[et].keys()) == set(b[et].keys())
            assert _global_edges(a, et) == _global_edges(b, et)


def _global_edges(batch, et):
    """The batch's edges of type ``et`` as sorted (source id, destination id, edge id)."""
    src, _, dst = et
    ei = batch[et].edge_index
    return sorted(zip(batch[src].n_id[ei[0]].tolist(), batch[dst].n_id[ei[1]].tolist(),
                      batch[et].e_id.tolist()))  # fmt: skip


def test_transform_sampler_output_sees_pygs_hetero_output_without_hop_counts():
    # as PyG's HGTLoader: a HeteroSamplerOutput with no num_sampled_* (HGT has no hops);
    # the identity gives the same batches, a transform that drops a type's nodes is followed
    from torch_geometric.sampler import HeteroSamplerOutput

    data = make_hetero(2)
    seen = {}

    def identity(out):
        assert isinstance(out, HeteroSamplerOutput)
        assert out.num_sampled_nodes is None and out.num_sampled_edges is None
        seen[tuple(out.metadata[0].tolist())] = out
        return out

    kw = dict(input_nodes="paper", batch_size=16, seed=5)
    a = list(HGTLoader(data, [8, 8], transform_sampler_output=identity, **kw))
    b = list(HGTLoader(data, [8, 8], **kw))
    for x, y in zip(a, b):
        for t in data.node_types:
            assert torch.equal(x[t].n_id, y[t].n_id)
            assert torch.equal(seen[tuple(y["paper"].input_id.tolist())].node[t], y[t].n_id)
        for et in data.edge_types:
            assert torch.equal(x[et].edge_index, y[et].edge_index)
        assert torch.equal(x["paper"].x, y["paper"].x)

    def no_authors(out):
        out.node["author"] = out.node["author"][:0]
        for et in out.row:
            if "author" in (et[0], et[2]):
                out.row[et], out.col[et], out.edge[et] = (
                    v[et][:0] for v in (out.row, out.col, out.edge)
                )
        return out

    c = next(iter(HGTLoader(data, [8, 8], transform_sampler_output=no_authors, **kw)))
    assert c["author"].n_id.numel() == 0 and c["author"].x.shape == (0, 4)
    assert torch.equal(c["paper"].x, b[0]["paper"].x)
