"""The PyG drop-ins: batch fields and their meaning, input_id rules, subgraph types, disjoint,
link batches, the remote-backend tuple, transforms, PyG models on our batches, and the
arguments we refuse (NotImplementedError) or reject (ValueError)."""

import gc
import logging
import os
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data, HeteroData

from gnnsys.loaders import pyg
from gnnsys.loaders.pyg import LinkNeighborLoader, NeighborLoader


def make_data(n=300, e=3000, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.stack(
        [torch.randint(0, n, (e,), generator=g), torch.randint(0, n, (e,), generator=g)]
    )
    return Data(
        x=torch.randn(n, 8, generator=g),
        y=torch.randint(0, 4, (n,), generator=g),
        edge_index=ei,
        edge_attr=torch.randn(e, 3, generator=g),
        edge_weight=torch.rand(e, generator=g) + 0.01,
        train_mask=torch.rand(n, generator=g) < 0.5,
        name="toy",
    )


@pytest.fixture(scope="module")
def data():
    return make_data()


def check_batch(batch, data, fanouts=None, reversed_ok=False):
    n_id, e_id = batch.n_id, batch.e_id
    # Local edge_index: row 0 = neighbour, row 1 = the node aggregating it; e_id names the edge.
    got, want = n_id[batch.edge_index], data.edge_index[:, e_id]
    if reversed_ok:  # bidirectional: a reverse edge carries its original's id
        assert bool(((got == want).all(0) | (got == want.flip(0)).all(0)).all())
    else:
        assert torch.equal(got, want)
    assert torch.equal(batch.x, data.x[n_id]) and torch.equal(batch.y, data.y[n_id])
    assert torch.equal(batch.train_mask, data.train_mask[n_id])
    assert torch.equal(batch.edge_attr, data.edge_attr[e_id])
    assert torch.equal(batch.edge_weight, data.edge_weight[e_id])
    assert batch.name == "toy"
    assert sum(batch.num_sampled_nodes) == n_id.numel() == batch.num_nodes
    assert sum(batch.num_sampled_edges) == e_id.numel()
    assert batch.num_sampled_nodes[0] == batch.batch_size
    if fanouts is not None:
        assert len(batch.num_sampled_edges) == len(fanouts)


def test_index_input_nodes(data):
    seeds = torch.tensor([7, 250, 3, 3, 120, 64, 5])
    loader = NeighborLoader(data, [4, 3], input_nodes=seeds, batch_size=3, shuffle=True, seed=1)
    assert len(loader) == 3
    seen = []
    for b in loader:
        check_batch(b, data, [4, 3])
        assert torch.equal(b.n_id[: b.batch_size], seeds[b.input_id])  # positions into seeds
        seen += b.input_id.tolist()
    assert sorted(seen) == list(range(7))


def test_mask_and_none_input_nodes_give_global_input_id(data):
    loader = NeighborLoader(data, [2], input_nodes=data.train_mask, batch_size=50)
    ids = torch.cat([b.input_id for b in loader])
    assert torch.equal(ids, data.train_mask.nonzero().flatten())
    b = next(iter(NeighborLoader(data, [2], batch_size=10)))
    assert torch.equal(b.input_id, torch.arange(10)) and torch.equal(b.n_id[:10], torch.arange(10))


def test_fanout_minus_one_and_replace(data):
    b = next(iter(NeighborLoader(data, [-1], input_nodes=torch.tensor([0, 1]), batch_size=2)))
    assert b.e_id.numel() == int((data.edge_index[1] < 2).sum())
    b = next(iter(NeighborLoader(data, [5], replace=True, batch_size=4)))
    check_batch(b, data)


@pytest.mark.parametrize("subgraph_type", ["bidirectional", "induced"])
def test_subgraph_types(data, subgraph_type):
    b = next(iter(NeighborLoader(data, [3, 2], batch_size=8, subgraph_type=subgraph_type)))
    check_batch(b, data, reversed_ok=subgraph_type == "bidirectional")
    ei = b.edge_index
    if subgraph_type == "bidirectional":
        pairs = set(map(tuple, ei.t().tolist()))
        assert all((c, r) in pairs for r, c in pairs)
    else:
        nodes = set(b.n_id.tolist())
        inside = [(s in nodes and d in nodes) for s, d in data.edge_index.t().tolist()]
        assert b.e_id.numel() == sum(inside)


def test_directed_false_means_induced(data):
    with pytest.warns(DeprecationWarning, match="induced"):
        loader = NeighborLoader(data, [2], batch_size=8, directed=False)
    assert loader.node_sampler.subgraph_type == "induced"


def test_disjoint_batch_vector(data):
    b = next(iter(NeighborLoader(data, [3, 2], batch_size=6, disjoint=True)))
    assert b.batch.shape == b.n_id.shape and torch.equal(b.batch[:6], torch.arange(6))
    assert torch.equal(b.batch[b.edge_index[0]], b.batch[b.edge_index[1]])


def test_weight_attr_samples_only_positive_edges():
    d = make_data()
    d.edge_weight[d.edge_index[1] == 0] = 0.0
    d.edge_weight[(d.edge_index[1] == 0).nonzero()[0]] = 1.0  # one positive edge into node 0
    b = next(iter(NeighborLoader(d, [5], input_nodes=torch.tensor([0]), weight_attr="edge_weight")))
    assert b.e_id.numel() == 1 and float(d.edge_weight[b.e_id]) == 1.0


def test_new_edge_weights_over_the_same_edge_index_are_used():
    # The Graph is cached per edge_index tensor; new weights (a new tensor, often at the
    # collected old one's address, so with its id()) must rebuild it, not reuse the old one.
    ei = make_data().edge_index
    n = int(ei.max()) + 1
    even = torch.arange(ei.shape[1]) % 2 == 0
    patterns = (even, ~even)
    seen_reuse = False
    last_id = None
    for r in range(48):  # until a round reused the id (allocator and thread timing decide)
        if seen_reuse and r >= 6:
            break
        keep = patterns[r % 2]
        w = keep.float()  # the first allocation after the old weights were freed: often their id
        seen_reuse |= id(w) == last_id
        last_id = id(w)
        d = Data(edge_index=ei, edge_weight=w, num_nodes=n)
        for b in NeighborLoader(d, [3], batch_size=64, weight_attr="edge_weight"):
            assert bool(keep[b.e_id].all()), f"round {r}: an edge of weight 0 was sampled"
        del d, b
        gc.collect()
        del w  # freed last, so that its memory is the next one handed out
    assert seen_reuse, "no weight tensor reused an id: the case this guards was not run"


def test_transforms(data):
    def add_flag(batch):
        batch.flag = torch.ones(1)
        return batch

    def drop_edges(out):
        out.row, out.col, out.edge = out.row[:2], out.col[:2], out.edge[:2]
        return out

    loader = NeighborLoader(data, [3], batch_size=5, transform=add_flag,
                            transform_sampler_output=drop_edges)  # fmt: skip
    b = next(iter(loader))
    assert b.flag.item() == 1 and b.edge_index.shape == (2, 2)
    assert torch.equal(b.n_id[b.edge_index], data.edge_index[:, b.e_id])


def test_feature_store_graph_store_tuple(data):
    from torch_geometric.testing import MyFeatureStore, MyGraphStore

    fs, gs = MyFeatureStore(), MyGraphStore()
    fs.put_tensor(data.x, group_name=None, attr_name="x", index=None)
    fs.put_tensor(data.y, group_name=None, attr_name="y", index=None)
    gs.put_edge_index(data.edge_index, edge_type=None, layout="coo", size=(300, 300))
    loader = NeighborLoader((fs, gs), [3, 2], input_nodes=torch.arange(10), batch_size=5)
    b = next(iter(loader))
    assert torch.equal(b.x, data.x[b.n_id]) and torch.equal(b.y, data.y[b.n_id])
    assert torch.equal(b.n_id[b.edge_index], data.edge_index[:, b.e_id])


def test_trains_a_pyg_model_with_and_without_trim(data):
    from torch_geometric.nn import GraphSAGE

    for trim in (False, True):
        torch.manual_seed(0)
        model = GraphSAGE(8, 16, num_layers=2, out_channels=4)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        loader = NeighborLoader(data, [5, 5], batch_size=64, shuffle=True, seed=0)
        losses = []
        for _ in range(3):
            for b in loader:
                kw = {}
                if trim:
                    kw = dict(num_sampled_nodes_per_hop=b.num_sampled_nodes,
                              num_sampled_edges_per_hop=b.num_sampled_edges)  # fmt: skip
                out = model(b.x, b.edge_index, **kw)[: b.batch_size]
                loss = F.cross_entropy(out, b.y[: b.batch_size])
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
        assert all(torch.isfinite(torch.tensor(losses)))
    # trim_to_layer needs hop-ordered counts: the seeds' outputs agree with and without it.
    model.eval()
    b = next(iter(NeighborLoader(data, [5, 5], batch_size=32)))
    full = model(b.x, b.edge_index)[:32]
    trimmed = model(b.x, b.edge_index, num_sampled_nodes_per_hop=b.num_sampled_nodes,
                    num_sampled_edges_per_hop=b.num_sampled_edges)[:32]  # fmt: skip
    assert torch.allclose(full, trimmed, atol=1e-5)


def test_len_set_epoch_and_seed_reproducibility(data):
    a = NeighborLoader(data, [3], batch_size=40, shuffle=True, seed=3)
    b = NeighborLoader(data, [3], batch_size=40, shuffle=True, seed=3)
    assert len(a) == 8
    assert [x.n_id.tolist() for x in a] == [x.n_id.tolist() for x in b]
    torch.manual_seed(5)
    c = NeighborLoader(data, [3], batch_size=40, shuffle=True)
    torch.manual_seed(5)
    d = NeighborLoader(data, [3], batch_size=40, shuffle=True)
    assert next(iter(c)).n_id.tolist() == next(iter(d)).n_id.tolist()
    c.set_epoch(0)
    d.set_epoch(1)
    assert next(iter(c)).n_id.tolist() != next(iter(d)).n_id.tolist()


# ---------------------------------------------------------------------- link loader
def test_link_binary(data):
    loader = LinkNeighborLoader(data, [3, 2], batch_size=16, shuffle=True,
                                neg_sampling="binary", seed=0)  # fmt: skip
    assert len(loader) == (3000 + 15) // 16
    b = next(iter(loader))
    assert b.edge_label_index.shape == (2, 32)
    assert torch.equal(b.edge_label, torch.cat([torch.ones(16), torch.zeros(16)]))
    assert torch.equal(b.n_id[b.edge_label_index[:, :16]], data.edge_index[:, b.input_id])
    assert torch.equal(b.x, data.x[b.n_id])
    assert torch.equal(b.n_id[b.edge_index], data.edge_index[:, b.e_id])


def test_link_ratio_and_labels(data):
    label = torch.randint(0, 2, (100,))
    eli = data.edge_index[:, :100]
    loader = LinkNeighborLoader(data, [2], edge_label_index=eli, edge_label=label,
                                neg_sampling_ratio=2.0, batch_size=10)  # fmt: skip
    b = next(iter(loader))
    assert b.edge_label.shape == (30,)
    assert torch.equal(b.edge_label[:10], label[:10] + 1)


def test_link_triplet(data):
    loader = LinkNeighborLoader(
        data, [2], batch_size=8, neg_sampling=dict(mode="triplet", amount=3)
    )
    b = next(iter(loader))
    assert torch.equal(b.n_id[b.src_index], data.edge_index[0, b.input_id])
    assert torch.equal(b.n_id[b.dst_pos_index], data.edge_index[1, b.input_id])
    assert b.dst_neg_index.shape == (8, 3)
    assert "edge_label_index" not in b


def test_link_no_negatives(data):
    b = next(iter(LinkNeighborLoader(data, [2], batch_size=5)))
    assert torch.equal(b.n_id[b.edge_label_index], data.edge_index[:, :5])
    assert "edge_label" not in b


# ---------------------------------------------------------------------- refusals
def test_a_torch_sampler_picks_the_inputs_as_in_a_dataloader(data):
    from torch.utils.data import WeightedRandomSampler
    from torch_geometric.loader import ImbalancedSampler

    mask = data.train_mask
    n = int(mask.sum())
    weights = torch.linspace(0.1, 1.0, n)
    order = list(WeightedRandomSampler(weights, 70, generator=torch.Generator().manual_seed(5)))
    sampler = WeightedRandomSampler(weights, 70, generator=torch.Generator().manual_seed(5))
    loader = NeighborLoader(data, [2, 2], input_nodes=mask, batch_size=32, sampler=sampler)
    assert len(loader) == 3
    batches = list(loader)
    assert [b.batch_size for b in batches] == [32, 32, 6]
    seeds = torch.nonzero(mask).flatten()
    got = torch.cat([b.input_id for b in batches])  # a mask: input_id holds node ids
    assert torch.equal(got, seeds[torch.tensor(order)])  # the sampler's draws, in its order
    for b in batches:
        check_batch(b, data, [2, 2])
    dropped = NeighborLoader(data, [2], input_nodes=mask, batch_size=32, drop_last=True,
                             sampler=WeightedRandomSampler(weights, 70))  # fmt: skip
    assert len(dropped) == 2 and [b.batch_size for b in dropped] == [32, 32]
    torch.manual_seed(0)  # PyG's ImbalancedSampler draws from the global generator
    imb = NeighborLoader(data, [2], input_nodes=mask, batch_size=64,
                         sampler=ImbalancedSampler(data, input_nodes=mask))  # fmt: skip
    assert sum(b.batch_size for b in imb) == n
    link = LinkNeighborLoader(data, [2], edge_label_index=data.edge_index[:, :50], batch_size=8,
                              sampler=list(range(49, -1, -1)))  # fmt: skip
    assert next(iter(link)).input_id.tolist() == list(range(49, 41, -1))
    with pytest.raises(ValueError, match="excludes shuffle=True"):
        NeighborLoader(data, [2], input_nodes=mask, shuffle=True, sampler=sampler)
    bad = NeighborLoader(data, [2], input_nodes=mask, sampler=[0, n])
    with pytest.raises(ValueError, match=f"input_sampler's positions holds id {n}"):
        next(iter(bad))


def test_unsupported_arguments_raise_not_implemented(data):
    with pytest.raises(ValueError, match="'t' is neither a node nor an edge attribute"):
        NeighborLoader(data, [2], time_attr="t")  # temporal: tests/test_loaders_temporal.py
    with pytest.raises(NotImplementedError, match="neighbor_sampler"):
        NeighborLoader(data, [2], neighbor_sampler=object())
    with pytest.raises(NotImplementedError, match="'frobnicate'"):
        NeighborLoader(data, [2], frobnicate=True)
    with pytest.raises(ValueError, match="'t' is neither a node nor an edge attribute"):
        LinkNeighborLoader(data, [2], time_attr="t", edge_label_time=torch.zeros(3000))


def test_bad_arguments_raise_value_error(data):
    with pytest.raises(ValueError, match="input_time needs time_attr"):
        NeighborLoader(data, [2], input_time=torch.zeros(300))
    with pytest.raises(ValueError, match="edge_label_time needs time_attr"):
        LinkNeighborLoader(data, [2], edge_label_time=torch.zeros(3000))
    with pytest.raises(ValueError, match="mask has shape"):
        NeighborLoader(data, [2], input_nodes=torch.ones(10, dtype=torch.bool))
    with pytest.raises(ValueError, match="out of range"):
        NeighborLoader(data, [2], input_nodes=torch.tensor([300]))
    with pytest.raises(ValueError, match="integer"):
        NeighborLoader(data, [2], input_nodes=torch.tensor([1.0]))
    with pytest.raises(ValueError, match="empty"):
        NeighborLoader(data, [2], input_nodes=torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="has no edge types"):
        NeighborLoader(HeteroData(), [2])
    with pytest.raises(ValueError, match="needs heterogeneous data"):
        NeighborLoader(data, {("a", "b", "c"): [2]})
    with pytest.raises(ValueError, match="names a node type, but data is homogeneous"):
        NeighborLoader(data, [2], input_nodes=("paper", None))
    with pytest.raises(ValueError, match=">= -1"):
        NeighborLoader(data, [3, -4])
    with pytest.raises(ValueError, match="subgraph_type"):
        NeighborLoader(data, [2], subgraph_type="all")
    with pytest.raises(ValueError, match="temporal_strategy"):
        NeighborLoader(data, [2], temporal_strategy="first")
    with pytest.raises(ValueError, match="weight_attr"):
        NeighborLoader(data, [2], weight_attr="w")
    with pytest.raises(ValueError, match="num_workers"):
        NeighborLoader(data, [2], num_workers=-1)
    with pytest.raises(TypeError, match="Data"):
        NeighborLoader({"x": 1}, [2])


# ---------------------------------------------------------------------- argument forms
def _same_batches(a, b):
    a, b = list(a), list(b)
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert torch.equal(x.n_id, y.n_id) and torch.equal(x.e_id, y.e_id)
        assert torch.equal(x.edge_index, y.edge_index) and torch.equal(x.x, y.x)
        assert torch.equal(x.input_id, y.input_id)


def test_num_neighbors_forms(data):
    from torch_geometric.sampler import NumNeighbors

    kw = dict(input_nodes=torch.arange(40), batch_size=16, seed=5)
    want = list(NeighborLoader(data, [4, 3], **kw))  # a loader's next pass is a new epoch
    for form in (torch.tensor([4, 3]), (4, 3), NumNeighbors([4, 3])):
        got = NeighborLoader(data, form, **kw)
        assert got.num_neighbors == [4, 3]
        _same_batches(got, want)
    link = LinkNeighborLoader(data, torch.tensor([2]), batch_size=8, seed=1)
    _same_batches(link, LinkNeighborLoader(data, [2], batch_size=8, seed=1))
    with pytest.raises(
        TypeError, match=r"num_neighbors must be a list with one int per hop.*\[5\]"
    ):
        NeighborLoader(data, 5)
    with pytest.raises(TypeError, match="num_neighbors must be a list"):
        LinkNeighborLoader(data, "10,5")
    with pytest.raises(ValueError, match=r"num_neighbors as a tensor must be 1-D.*\(2, 1\)"):
        NeighborLoader(data, torch.tensor([[5], [3]]))
    with pytest.raises(ValueError, match="num_neighbors as a tensor.*torch.float32"):
        NeighborLoader(data, torch.tensor([5.0, 3.0]))
    with pytest.raises(TypeError, match=r"num_neighbors\[1\] must be an int, got 2.5"):
        NeighborLoader(data, [5, 2.5])
    with pytest.raises(ValueError, match=r"num_neighbors\[1\] = -4"):
        NeighborLoader(data, [3, -4])


def test_empty_input_nodes_raise_the_same_error(data):
    for empty in (torch.zeros(300, dtype=torch.bool), torch.tensor([], dtype=torch.long), []):
        with pytest.raises(ValueError, match="NeighborLoader: input_nodes is empty"):
            NeighborLoader(data, [2], input_nodes=empty)


def test_input_nodes_on_meta_hold_nothing_and_are_refused(data):
    # a meta mask reached torch's "Cannot copy out of meta tensor"
    mask = torch.zeros(300, dtype=torch.bool, device="meta")
    for meta in (mask, torch.zeros(3, dtype=torch.long, device="meta")):
        with pytest.raises(
            ValueError,
            match="NeighborLoader: input_nodes must be on a cpu or cuda device, got a tensor on meta",
        ):
            NeighborLoader(data, [2], input_nodes=meta)


def test_empty_edge_label_index_is_an_error_too(data):
    # it gave a loader of zero batches, silently
    empty = torch.empty(2, 0, dtype=torch.long)
    with pytest.raises(ValueError, match="LinkNeighborLoader: edge_label_index is empty"):
        LinkNeighborLoader(data, [2], edge_label_index=empty)


def test_uint8_input_nodes_are_ids_as_in_pyg(data):
    ids = torch.tensor([7, 250, 3, 120])
    kw = dict(batch_size=2, seed=2)
    _same_batches(
        NeighborLoader(data, [3], input_nodes=ids.to(torch.uint8), **kw),
        NeighborLoader(data, [3], input_nodes=ids, **kw),
    )
    # a 0/1 uint8 tensor with one entry per node is read as ids too, but warned about
    mask = data.train_mask.to(torch.uint8)
    with pytest.warns(UserWarning, match="uint8 tensor of 0/1.*not as a mask.*bool"):
        loader = NeighborLoader(data, [3], input_nodes=mask, batch_size=300)
    assert torch.equal(loader.input_nodes, mask.long())
    # a bool mask (a list of bools too) selects the nodes it marks
    as_list = NeighborLoader(data, [3], input_nodes=data.train_mask.tolist(), batch_size=300)
    assert torch.equal(as_list.input_nodes, torch.nonzero(data.train_mask).flatten())
    with pytest.raises(ValueError, match="input_nodes holds id 300, out of range for 300 nodes"):
        NeighborLoader(data, [2], input_nodes=torch.tensor([300]))


def test_node_named_attribute_with_wrong_rows_warns():
    n = 100
    ei = torch.randint(0, n, (2, 400), generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match="data.x has 50 rows but num_nodes=100.*all 50 rows"):
        loader = NeighborLoader(Data(x=torch.randn(50, 4), edge_index=ei, num_nodes=n), [2],
                                batch_size=10)  # fmt: skip
    assert next(iter(loader)).x.shape == (50, 4)  # passed whole, as PyG does
    short_mask = torch.ones(n - 1, dtype=torch.bool)
    with pytest.warns(UserWarning, match="data.train_mask has 99 rows but num_nodes=100"):
        NeighborLoader(Data(x=torch.randn(n, 4), train_mask=short_mask, edge_index=ei), [2])
    with pytest.warns(UserWarning, match="data.x has 400 rows.*sliced per edge"):
        NeighborLoader(Data(x=torch.randn(400, 4), edge_index=ei, num_nodes=n), [2])
    with pytest.warns(UserWarning, match="LinkNeighborLoader: data.y has 7 rows"):
        LinkNeighborLoader(Data(x=torch.randn(n, 4), y=torch.ones(7), edge_index=ei), [2])


def test_graph_level_attributes_do_not_warn(data):
    import warnings

    n = 100
    ei = torch.randint(0, n, (2, 400), generator=torch.Generator().manual_seed(0))
    graph_level = Data(x=torch.randn(n, 4), y=torch.tensor([3]), class_weight=torch.ones(7),
                       node_count=torch.tensor(n), edge_index=ei, num_nodes=n)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        b = next(iter(NeighborLoader(graph_level, [2], batch_size=10)))
        next(iter(NeighborLoader(data, [2], batch_size=10)))
    assert b.y.tolist() == [3] and b.class_weight.shape == (7,)


def test_is_sorted_and_filter_per_worker_do_not_change_batches(data):
    # data.edge_index is random (not sorted by column): is_sorted=True must not matter either
    kw = dict(input_nodes=torch.arange(64), batch_size=16, shuffle=True, seed=4)
    want = list(NeighborLoader(data, [3, 2], **kw))
    for flags in ({"is_sorted": True}, {"filter_per_worker": True}, {"filter_per_worker": False}):
        _same_batches(NeighborLoader(data, [3, 2], **flags, **kw), want)
    lkw = dict(batch_size=32, neg_sampling="binary", seed=4)
    _same_batches(
        LinkNeighborLoader(data, [2], is_sorted=True, filter_per_worker=False, **lkw),
        LinkNeighborLoader(data, [2], **lkw),
    )
    with pytest.raises(TypeError, match="is_sorted must be a bool, got 'yes'"):
        NeighborLoader(data, [2], is_sorted="yes")
    with pytest.raises(TypeError, match="filter_per_worker must be None or a bool, got 1"):
        LinkNeighborLoader(data, [2], filter_per_worker=1)


# ---------------------------------------------------------------------- accuracy (slow)
@pytest.mark.slow
def test_graphsage_on_our_batches_matches_full_batch_accuracy():
    """GraphSAGE trained on gnnsys mini-batches (with and without trim_to_layer) reaches
    full-batch test accuracy within 2 points on synthetic ``mini``. ~7 min on 2 busy cores."""
    from torch_geometric.nn import GraphSAGE

    from gnnsys.datasets import synthetic

    data = synthetic("mini", seed=0).to_pyg()
    num_classes = int(data.y.max()) + 1

    def test_acc(model):
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(-1)
        return float((pred[data.test_mask] == data.y[data.test_mask]).float().mean())

    def fresh():
        torch.manual_seed(0)
        model = GraphSAGE(data.num_features, 64, num_layers=2, out_channels=num_classes)
        return model, torch.optim.Adam(model.parameters(), lr=0.01)

    model, opt = fresh()
    for _ in range(20):  # full batch
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
    full_acc = test_acc(model)

    for trim in (False, True):
        model, opt = fresh()
        loader = NeighborLoader(data, [10, 10], input_nodes=data.train_mask, batch_size=512,
                                shuffle=True, seed=0)  # fmt: skip
        for _ in range(2):
            model.train()
            for b in loader:
                kw = {}
                if trim:
                    kw = dict(num_sampled_nodes_per_hop=b.num_sampled_nodes,
                              num_sampled_edges_per_hop=b.num_sampled_edges)  # fmt: skip
                opt.zero_grad()
                out = model(b.x, b.edge_index, **kw)[: b.batch_size]
                F.cross_entropy(out, b.y[: b.batch_size]).backward()
                opt.step()
        acc = test_acc(model)
        assert acc >= full_acc - 0.02, (trim, acc, full_acc)


def test_graph_is_built_once_per_edge_index(data):
    from gnnsys.loaders import pyg

    a = NeighborLoader(data, [2], batch_size=4)
    b = NeighborLoader(Data(edge_index=data.edge_index, num_nodes=data.num_nodes), [2])
    assert a.source.graph is b.source.graph
    other = data.clone()
    other.edge_index = data.edge_index.flip(0)
    c = NeighborLoader(other, [2])
    assert c.source.graph is not a.source.graph
    assert id(data.edge_index) in pyg._GRAPHS


def test_unified_x_gives_the_same_batches_without_warnings(data):
    # The two-line change: data.x = gnnsys.unified(data.x). Its rows are gathered per batch (not
    # the whole table passed through), node/edge attributes still recognised, and PyG's
    # num_nodes guess (which cannot see a UnifiedTensor) is not consulted.
    import warnings

    import gnnsys

    n = data.num_nodes
    udata = Data(
        x=gnnsys.unified(data.x), edge_index=data.edge_index, y=data.y, edge_attr=data.edge_attr
    )
    kw = dict(num_neighbors=[4, 3], batch_size=32, input_nodes=torch.arange(n - 40, n), seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        got = list(NeighborLoader(udata, **kw))
    want = list(NeighborLoader(data, **kw))
    assert len(got) == len(want) == 2
    for a, b in zip(got, want):
        assert type(a.x) is torch.Tensor
        assert torch.equal(a.n_id, b.n_id) and torch.equal(a.x, b.x)
        assert torch.equal(a.y, b.y) and torch.equal(a.edge_attr, b.edge_attr)


# ---------------------------------------------------------------------- heterogeneous data
def make_hetero(seed=0, papers=120, authors=80):
    g = torch.Generator().manual_seed(seed)
    data = HeteroData()
    data["paper"].x = torch.randn(papers, 6, generator=g)
    data["paper"].y = torch.randint(0, 3, (papers,), generator=g)
    data["paper"].train_mask = torch.rand(papers, generator=g) < 0.5
    data["author"].x = torch.randn(authors, 4, generator=g)
    cites = torch.randint(0, papers, (2, 600), generator=g)
    writes = torch.stack([torch.randint(0, authors, (400,), generator=g),
                          torch.randint(0, papers, (400,), generator=g)])  # fmt: skip
    data["paper", "cites", "paper"].edge_index = cites
    data["paper", "cites", "paper"].edge_attr = torch.randn(600, 2, generator=g)
    data["author", "writes", "paper"].edge_index = writes
    data["paper", "rev_writes", "author"].edge_index = writes.flip(0)
    data.name = "toy-hetero"
    return data


def test_hetero_new_edge_weights_are_used():
    # A HeteroData's Graph is cached by its first edge type's tensor: replacing another type's
    # weights (or edge_index) must rebuild it.
    data = make_hetero()
    et = ("author", "writes", "paper")
    even = torch.arange(400) % 2 == 0
    for etype in data.edge_types:
        data[etype].w = torch.ones(data[etype].edge_index.shape[1])
    for keep in (even, ~even, even):
        data[et].w = keep.float()
        loader = NeighborLoader(data, [3, 2], input_nodes="paper", batch_size=40,
                                weight_attr="w")  # fmt: skip
        for b in loader:
            assert bool(keep[b[et].e_id].all())


HETERO_FANOUTS = {
    ("paper", "cites", "paper"): [4, 2],
    ("author", "writes", "paper"): [3, 2],
    ("paper", "rev_writes", "author"): [2, 2],
}


def check_hetero_batch(b, data, hops):
    assert isinstance(b, HeteroData) and b.name == "toy-hetero"
    for ntype in data.node_types:
        n_id = b[ntype].n_id
        assert n_id.numel() == 0 or int(n_id.max()) < data[ntype].num_nodes
        assert torch.equal(b[ntype].x, data[ntype].x[n_id])
        assert sum(b[ntype].num_sampled_nodes) == n_id.numel()
        assert len(b[ntype].num_sampled_nodes) == hops + 1
    assert torch.equal(b["paper"].y, data["paper"].y[b["paper"].n_id])
    for et in data.edge_types:
        ei, e_id = b[et].edge_index, b[et].e_id
        src, dst = b[et[0]].n_id[ei[0]], b[et[2]].n_id[ei[1]]
        assert torch.equal(torch.stack([src, dst]), data[et].edge_index[:, e_id]), et
        assert sum(b[et].num_sampled_edges) == e_id.numel()
        assert len(b[et].num_sampled_edges) == hops
    assert torch.equal(
        b["paper", "cites", "paper"].edge_attr,
        data["paper", "cites", "paper"].edge_attr[b["paper", "cites", "paper"].e_id],
    )


def test_hetero_neighbor_loader_batches():
    data = make_hetero()
    mask = data["paper"].train_mask
    loader = NeighborLoader(
        data, HETERO_FANOUTS, input_nodes=("paper", mask), batch_size=16, shuffle=True, seed=3
    )
    seen = []
    for b in loader:
        check_hetero_batch(b, data, 2)
        bs = b["paper"].batch_size
        assert torch.equal(b["paper"].n_id[:bs], b["paper"].input_id)  # a mask: global ids
        assert b["paper"].num_sampled_nodes[0] == bs and b["author"].num_sampled_nodes[0] == 0
        seen += b["paper"].input_id.tolist()
    assert sorted(seen) == torch.nonzero(mask).flatten().tolist()
    # per-type fanouts hold: each seed keeps at most 4 cites edges in hop 1
    b = next(iter(loader))
    hop1 = b["paper", "cites", "paper"].edge_index[
        :, : b["paper", "cites", "paper"].num_sampled_edges[0]
    ]
    assert int(torch.bincount(hop1[1]).max()) <= 4


def test_hetero_induced_batch_holds_every_edge_of_each_type_among_its_nodes():
    data = make_hetero(2)
    loader = NeighborLoader(
        data, HETERO_FANOUTS, input_nodes=("paper", torch.arange(10)), batch_size=10,
        subgraph_type="induced",
    )  # fmt: skip
    b = next(iter(loader))
    check_hetero_batch(b, data, 2)  # edges exist with their type, tables sliced by e_id
    for et in data.edge_types:
        ei = data[et].edge_index
        inside = torch.isin(ei[0], b[et[0]].n_id) & torch.isin(ei[1], b[et[2]].n_id)
        assert sorted(b[et].e_id.tolist()) == torch.nonzero(inside).flatten().tolist(), et


def test_hetero_bidirectional_batch_follows_pyg():
    # PyG's rule: a type and its rev_ type both hold the union of the two, as each other's
    # flip, without e_id, edge attributes or per-hop counts; cites (no rev_cites) is closed
    # under reversal; rev_* types are never the key of a rewrite.
    data = make_hetero(3)
    loader = NeighborLoader(
        data, HETERO_FANOUTS, input_nodes=("paper", torch.arange(12)), batch_size=12,
        subgraph_type="bidirectional",
    )  # fmt: skip
    b = next(iter(loader))
    cites, writes, rev = (
        b["paper", "cites", "paper"],
        b["author", "writes", "paper"],
        b["paper", "rev_writes", "author"],
    )
    assert torch.equal(writes.edge_index, rev.edge_index.flip(0))
    pairs = set(map(tuple, cites.edge_index.t().tolist()))
    assert pairs and all((c, r) in pairs for r, c in pairs)
    for et in data.edge_types:
        store = b[et]
        assert "e_id" not in store and "edge_attr" not in store
        assert "num_sampled_edges" not in store
        src, dst = b[et[0]].n_id[store.edge_index[0]], b[et[2]].n_id[store.edge_index[1]]
        fwd = set(zip(data[et].edge_index[0].tolist(), data[et].edge_index[1].tolist()))
        other = ("paper", "rev_writes", "author") if et[1] == "writes" else (
            ("author", "writes", "paper") if et[1] == "rev_writes" else et
        )  # fmt: skip
        back = set(zip(data[other].edge_index[1].tolist(), data[other].edge_index[0].tolist()))
        assert all(p in fwd or p in back for p in zip(src.tolist(), dst.tolist())), et
    assert "num_sampled_nodes" not in b["paper"]


def test_hetero_input_forms_and_zero_hops():
    data = make_hetero(1)
    by_type = NeighborLoader(data, [2], input_nodes="author", batch_size=50)
    assert len(by_type) == 2
    b = next(iter(by_type))
    assert b["author"].batch_size == 50 and torch.equal(b["author"].input_id, torch.arange(50))
    ids = torch.tensor([5, 1, 5, 70])
    b = next(iter(NeighborLoader(data, [2, 1], input_nodes=("paper", ids), batch_size=4)))
    assert torch.equal(b["paper"].n_id[:4], ids) and torch.equal(
        b["paper"].input_id, torch.arange(4)
    )
    check_hetero_batch(b, data, 2)
    alone = next(iter(NeighborLoader(data, [], input_nodes=("paper", ids), batch_size=4)))
    assert torch.equal(alone["paper"].n_id, ids) and alone["author"].n_id.numel() == 0
    assert alone["paper", "cites", "paper"].edge_index.shape == (2, 0)


def test_hetero_bad_input_names_the_type():
    data = make_hetero()
    with pytest.raises(ValueError, match="Missing|no fanouts for edge type"):
        NeighborLoader(data, {("paper", "cites", "paper"): [2]}, input_nodes="paper")
    with pytest.raises(ValueError, match="not in the graph"):
        NeighborLoader(
            data, {**HETERO_FANOUTS, ("paper", "x", "venue"): [1, 1]}, input_nodes="paper"
        )
    with pytest.raises(ValueError, match="node type 'venue' is not in the graph"):
        NeighborLoader(data, [2], input_nodes=("venue", None))
    with pytest.raises(ValueError, match=r"input_nodes\['author'\] holds id 80, out of range"):
        NeighborLoader(data, [2], input_nodes=("author", torch.tensor([80])))
    with pytest.raises(ValueError, match="input_nodes is required"):
        NeighborLoader(data, [2])
    from torch_geometric.sampler import NumNeighbors

    filled = NeighborLoader(
        data, NumNeighbors({("paper", "cites", "paper"): [3]}, default=[0]), input_nodes="paper",
        batch_size=8,
    )  # fmt: skip
    b = next(iter(filled))
    assert b["author"].n_id.numel() == 0 and b["paper", "cites", "paper"].e_id.numel() > 0


def test_hetero_batches_train_a_to_hetero_model_with_trim_to_layer():
    from torch_geometric.nn import SAGEConv, to_hetero
    from torch_geometric.utils import trim_to_layer

    data = make_hetero()

    class GNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.ModuleList([SAGEConv((-1, -1), 16), SAGEConv((-1, -1), 3)])

        def forward(self, x, edge_index):
            for i, conv in enumerate(self.convs):
                x = conv(x, edge_index)
                x = x.relu() if i == 0 else x
            return x

    model = to_hetero(GNN(), data.metadata(), aggr="sum")
    loader = NeighborLoader(data, [3, 2], input_nodes="paper", batch_size=32, shuffle=True, seed=1)
    b = next(iter(loader))
    out = model(b.x_dict, b.edge_index_dict)["paper"][: b["paper"].batch_size]
    loss = F.cross_entropy(out, b["paper"].y[: b["paper"].batch_size])
    loss.backward()
    assert torch.isfinite(loss)
    # trim_to_layer on the hop counts keeps exactly the nodes/edges layer 1 needs
    x, ei, _ = trim_to_layer(1, b.num_sampled_nodes_dict, b.num_sampled_edges_dict,
                             b.x_dict, b.edge_index_dict)  # fmt: skip
    for ntype in data.node_types:
        assert x[ntype].shape[0] == sum(b[ntype].num_sampled_nodes[:2])
    for et in data.edge_types:
        assert ei[et].shape[1] == b[et].num_sampled_edges[0]


def test_hetero_remote_backend_pair_matches_heterodata():
    data = make_hetero(2)
    del data["paper"].train_mask
    del data["paper", "cites", "paper"].edge_attr
    a = NeighborLoader(data, [2, 2], input_nodes="paper", batch_size=20, seed=4)
    b = NeighborLoader((data, data), [2, 2], input_nodes="paper", batch_size=20, seed=4)
    for x, y in zip(a, b):
        for ntype in data.node_types:
            assert torch.equal(x[ntype].n_id, y[ntype].n_id)
            assert torch.equal(x[ntype].x, y[ntype].x)
        for et in data.edge_types:
            assert torch.equal(x[et].edge_index, y[et].edge_index)


def test_hetero_link_loader_binary_and_triplet():
    data = make_hetero(3)
    et = ("author", "writes", "paper")
    label_index = data[et].edge_index[:, :100]
    loader = LinkNeighborLoader(data, [2, 2], edge_label_index=(et, label_index),
                                neg_sampling="binary", batch_size=25, shuffle=True, seed=2)  # fmt: skip
    for b in loader:
        eli = b[et].edge_label_index
        src, dst = b["author"].n_id[eli[0]], b["paper"].n_id[eli[1]]
        pos = b[et].edge_label == 1
        assert torch.equal(torch.stack([src, dst])[:, pos], label_index[:, b[et].input_id])
        assert int(src.max()) < 80 and int(dst.max()) < 120
        check_hetero_batch(b, data, 2)
    trip = LinkNeighborLoader(data, [2], edge_label_index=et, neg_sampling=("triplet"),
                              batch_size=40, seed=1)  # fmt: skip
    b = next(iter(trip))
    assert torch.equal(
        b["author"].n_id[b["author"].src_index], data[et].edge_index[0, b[et].input_id]
    )
    assert torch.equal(
        b["paper"].n_id[b["paper"].dst_pos_index], data[et].edge_index[1, b[et].input_id]
    )
    assert int(b["paper"].n_id[b["paper"].dst_neg_index].max()) < 120
    with pytest.raises(ValueError, match="edge_label_index is required"):
        LinkNeighborLoader(data, [2])
    # ids without their edge type: a clear error naming the types, not the tensor
    with pytest.raises(ValueError, match="has ids but no edge type.*edge types: "):
        LinkNeighborLoader(data, [2], edge_label_index=data[et].edge_index)


def test_pyg_loaders_are_torch_dataloaders():
    data = make_data()
    loader = NeighborLoader(data, [3], batch_size=32, num_workers=0)
    assert isinstance(loader, torch.utils.data.DataLoader)
    assert len(loader.dataset) == data.num_nodes and loader.batch_size == 32
    assert loader.num_workers == 0 and callable(loader.collate_fn)
    assert repr(loader) == "NeighborLoader()"
    b = loader(torch.tensor([4, 9, 2]))
    assert torch.equal(b.n_id[:3], torch.tensor([4, 9, 2])) and b.batch_size == 3
    check_batch(b, data, [3])
    assert torch.equal(loader(torch.tensor([4, 9, 2])).n_id, b.n_id)  # deterministic
    link = LinkNeighborLoader(data, [2], batch_size=10, neg_sampling="binary")
    assert isinstance(link, torch.utils.data.DataLoader) and len(link.dataset) == 3000


def test_pyg_loaders_have_every_public_attribute_of_pygs():
    # PyG's NodeLoader / LinkLoader mixins included (enable_cpu_affinity, enable_multithreading,
    # enable_memory_log): a script calling them must not stop at an AttributeError
    import torch_geometric.loader as pyg_loader

    import gnnsys.loaders.pyg as ours

    for name in ("NeighborLoader", "LinkNeighborLoader", "HGTLoader"):
        theirs = {a for a in dir(getattr(pyg_loader, name)) if not a.startswith("_")}
        mine = {a for a in dir(getattr(ours, name)) if not a.startswith("_")}
        assert theirs <= mine, (name, sorted(theirs - mine))


def _worker_cpus(loader):
    """The CPU set of the thread that built each batch of one pass (collate runs there)."""
    seen = []
    loader.transform = lambda b: seen.append(os.sched_getaffinity(0)) or b
    n = sum(1 for _ in loader)
    loader.transform = None
    assert len(seen) == n
    return seen


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_enable_cpu_affinity_pins_the_worker_threads_alone(data):
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs 2 CPUs to tell a pinned worker from an unpinned one")
    loader = NeighborLoader(data, [3, 2], batch_size=40, num_workers=1, seed=0, shuffle=True)
    loader.set_epoch(0)
    want = [b.n_id for b in loader]
    with loader.enable_cpu_affinity(loader_cores=[cpus[-1]]):
        assert _worker_cpus(loader) == [{cpus[-1]}] * len(want)
        assert os.sched_getaffinity(0) == set(cpus)  # the training thread is left alone
        loader.set_epoch(0)
        assert all(torch.equal(a.n_id, b) for a, b in zip(loader, want))  # same batches
    assert all(got == set(cpus) for got in _worker_cpus(loader))  # unpinned after the context
    with loader.enable_cpu_affinity():  # default: the first CPUs this process may use
        assert _worker_cpus(loader)[0] == {cpus[0]}
    with loader.enable_cpu_affinity(loader_cores=[[cpus[0], cpus[-1]]]):  # a list per worker
        assert _worker_cpus(loader)[0] == {cpus[0], cpus[-1]}


def test_enable_cpu_affinity_refuses_what_pyg_refuses(data):
    none = NeighborLoader(data, [3], batch_size=40, num_workers=0)
    with pytest.raises(ValueError, match="at least one worker"):
        with none.enable_cpu_affinity():
            pass
    two = NeighborLoader(data, [3], batch_size=40, num_workers=2)
    with pytest.raises(ValueError, match="number of loader cores .got 1.*workers .got 2"):
        with two.enable_cpu_affinity(loader_cores=[0]):
            pass
    one = NeighborLoader(data, [3], batch_size=40, num_workers=1)
    with pytest.raises(ValueError, match="CPUs .100000. that this process may not use"):
        with one.enable_cpu_affinity(loader_cores=[100000]):
            pass
    with pytest.raises(TypeError, match="CPU numbers"):
        with one.enable_cpu_affinity(loader_cores=["0"]):
            pass


def test_enable_multithreading_sets_each_workers_kernel_threads(data):
    import numba

    from gnnsys.loaders.loader import _threading_layer

    if _threading_layer() == "workqueue":
        pytest.skip("numba's workqueue layer runs one worker (it is not thread-safe)")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 numba threads to tell 2 kernel threads from 1")

    loader = NeighborLoader(data, [3, 2], batch_size=40, num_workers=1, seed=0, shuffle=True)
    loader.set_epoch(0)
    want = [b.n_id for b in loader]
    old_threads = torch.get_num_threads()
    torch.set_num_threads(2)  # (a test worker may run torch at 1: PyG's bound is torch's count)
    try:
        with loader.enable_multithreading(2):
            assert loader.loader._threads_per_batch(10) == (1, 2)
            loader.set_epoch(0)
            assert all(torch.equal(a.n_id, b) for a, b in zip(loader, want))  # same batches
        assert loader.loader._threads_per_batch(10) == (1, 1)
        two = NeighborLoader(data, [3], batch_size=40, num_workers=2)
        with two.enable_multithreading():  # PyG's default: torch's threads over the workers
            assert two.loader.worker_threads == 1
        with loader.enable_multithreading():
            assert loader.loader.worker_threads == 2
        with pytest.raises(ValueError, match="smaller than the total available number of threads"):
            with loader.enable_multithreading(3):
                pass
    finally:
        torch.set_num_threads(old_threads)
    with pytest.raises(ValueError, match="at least one worker"):
        with NeighborLoader(data, [3], batch_size=40).enable_multithreading(1):
            pass


def test_enable_memory_log_logs_each_worker_at_debug_level(data, caplog):
    loader = NeighborLoader(data, [3], batch_size=40, num_workers=2)
    with caplog.at_level(logging.DEBUG):
        with loader.enable_memory_log():
            list(loader)
        logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Worker")]
        assert sorted(m.split(" @")[0] for m in logged) == ["Worker 0", "Worker 1"]
        assert all(f"@ PID {os.getpid()}: " in m and m.endswith(" MB") for m in logged)
        caplog.clear()
        list(loader)  # after the context: nothing
        assert not [r for r in caplog.records if r.getMessage().startswith("Worker")]


# ------------------------------------------- PyG's slicing rules: cat dims, num_nodes, edge types
def _index_attr_data():
    """A Data whose attributes PyG slices along their last dimension (``__cat_dim__`` -1 for a
    key containing "index"): an [2, E] edge attribute (torch and numpy), an [2, N] node
    attribute, and an [2, 7] one that is neither (rides along whole)."""
    g = torch.Generator().manual_seed(5)
    n, e = 40, 160
    ei = torch.randint(0, n, (2, e), generator=g)
    return Data(
        x=torch.randn(n, 3, generator=g),
        edge_index=ei,
        edge_label=torch.arange(e) % 3,
        edge_label_index=torch.stack([torch.arange(e), 1000 + torch.arange(e)]),
        np_index=np.stack([np.arange(e), -np.arange(e)]),
        pair_index=torch.stack([torch.arange(n), 500 + torch.arange(n)]),
        other_index=torch.arange(14).view(2, 7),
        num_nodes=n,
    )


def test_index_attributes_are_sliced_along_their_last_dim():
    data = _index_attr_data()
    for b in NeighborLoader(data, [3, 2], batch_size=8, seed=1):
        e_id, n_id = b.e_id, b.n_id
        assert torch.equal(b.edge_label_index, data.edge_label_index[:, e_id])
        assert b.edge_label_index.is_contiguous()
        assert torch.equal(b.np_index, torch.from_numpy(data.np_index[:, e_id.numpy()]))
        assert torch.equal(b.pair_index, data.pair_index[:, n_id])
        assert torch.equal(b.edge_label, data.edge_label[e_id])
        assert b.other_index is data.other_index
        assert torch.equal(b.n_id[b.edge_index], data.edge_index[:, e_id])


def test_index_attributes_follow_a_transformed_sample():
    # transform_sampler_output that gives new edge ids: the edge tables are fetched again
    data = _index_attr_data()

    def keep_half(out):
        keep = torch.arange(0, out.row.numel(), 2)
        out.row, out.col, out.edge = out.row[keep], out.col[keep], out.edge[keep]
        out.num_sampled_edges = None
        return out

    b = next(iter(NeighborLoader(data, [4, 3], batch_size=8, transform_sampler_output=keep_half)))
    assert torch.equal(b.edge_label_index, data.edge_label_index[:, b.e_id])
    assert torch.equal(b.n_id[b.edge_index], data.edge_index[:, b.e_id])


def _hetero_with_edge_labels(label: bool = True):
    """What T.RandomLinkSplit(add_negative_train_samples=False) leaves on train_data: an
    [2, E] edge_label_index (and [E] edge_label) beside edge_index."""
    data = make_hetero(4)
    et = ("author", "writes", "paper")
    e = data[et].edge_index.shape[1]
    data[et].edge_label_index = data[et].edge_index.flip(1).clone()
    if label:
        data[et].edge_label = torch.arange(e) % 2
    return data, et


@pytest.mark.parametrize("label", [True, False])
def test_hetero_edge_label_index_is_sliced_by_e_id(label):
    data, et = _hetero_with_edge_labels(label)
    loader = NeighborLoader(data, [3, 2], input_nodes="paper", batch_size=30, seed=2)
    for b in loader:
        e_id = b[et].e_id
        assert torch.equal(b[et].edge_label_index, data[et].edge_label_index[:, e_id])
        if label:
            assert torch.equal(b[et].edge_label, data[et].edge_label[e_id])
        check_hetero_batch(b, data, 2)


def test_hetero_link_loader_over_an_edge_label_index_attribute():
    data, et = _hetero_with_edge_labels()
    loader = LinkNeighborLoader(data, [3, 2], edge_label_index=(et, data[et].edge_label_index),
                                edge_label=data[et].edge_label, neg_sampling="binary",
                                batch_size=16, seed=3)  # fmt: skip
    for b in loader:  # the link fields replace the data's attributes of the same names
        n = b[et].input_id.numel()
        eli = b[et].edge_label_index
        assert eli.shape == (2, 2 * n) and b[et].edge_label.shape == (2 * n,)
        got = torch.stack([b["author"].n_id[eli[0, :n]], b["paper"].n_id[eli[1, :n]]])
        assert torch.equal(got, data[et].edge_label_index[:, b[et].input_id])
        assert torch.equal(b[et].edge_label[:n], data[et].edge_label[b[et].input_id] + 1)
        check_hetero_batch(b, data, 2)


def test_link_fields_replace_or_remove_the_datas_attributes_as_pyg():
    # PyG sets edge_label / edge_label_time to the sample's (None removes them) and removes
    # edge_label_index / edge_label_time in triplet mode, sliced edge attributes or not
    data = _index_attr_data()
    b = next(iter(LinkNeighborLoader(data, [2], batch_size=8, seed=0)))
    assert "edge_label" not in b and b.edge_label_index.shape == (2, 8)
    b = next(iter(LinkNeighborLoader(data, [2], batch_size=8, neg_sampling="triplet")))
    assert "edge_label_index" not in b and torch.equal(b.edge_label, data.edge_label[b.e_id])
    hetero, et = _hetero_with_edge_labels()
    b = next(iter(LinkNeighborLoader(hetero, [2], edge_label_index=et, batch_size=8)))
    assert "edge_label" not in b[et] and b[et].edge_label_index.shape == (2, 8)
    b = next(iter(LinkNeighborLoader(hetero, [2], edge_label_index=et, batch_size=8,
                                     neg_sampling="triplet")))  # fmt: skip
    assert "edge_label_index" not in b[et] and "edge_label" in b[et]


def test_subgraph_loaders_keep_index_attributes_whole():
    # PyG's GraphSAINT / ShaDow slice by size(0): an [2, E] *_index rides along whole
    data = _index_attr_data()
    b = next(iter(pyg.GraphSAINTNodeSampler(data, batch_size=10)))
    assert b.edge_label_index is data.edge_label_index


def test_num_nodes_attribute_is_kept_with_the_batch_count():
    data = _index_attr_data()  # num_nodes=40 set, and an x
    b = next(iter(NeighborLoader(data, [2, 2], batch_size=4, seed=0)))
    assert "num_nodes" in b.keys() and b.num_nodes == b.n_id.numel()
    del data.num_nodes
    b = next(iter(NeighborLoader(data, [2, 2], batch_size=4, seed=0)))
    assert "num_nodes" not in b.keys() and b.num_nodes == b.n_id.numel()  # (PyG infers it)
    hetero = make_hetero(5)
    hetero["author"].num_nodes = 80
    b = next(iter(NeighborLoader(hetero, [2, 2], input_nodes="paper", batch_size=4, seed=0)))
    assert "num_nodes" in b["author"].keys() and "num_nodes" not in b["paper"].keys()
    assert b["author"].num_nodes == b["author"].n_id.numel()


def test_remote_backend_batches_carry_num_nodes(data):
    from torch_geometric.testing import MyFeatureStore, MyGraphStore

    fs, gs = MyFeatureStore(), MyGraphStore()  # PyG's filter_custom_store sets num_nodes
    fs.put_tensor(data.x, group_name=None, attr_name="x", index=None)
    gs.put_edge_index(data.edge_index, edge_type=None, layout="coo", size=(300, 300))
    b = next(iter(NeighborLoader((fs, gs), [3, 2], input_nodes=torch.arange(10), batch_size=5)))
    assert "num_nodes" in b.keys() and b.num_nodes == b.n_id.numel()


def _movies(extra=()):
    data = HeteroData()
    data["user"].x = torch.randn(20, 4)
    data["movie"].x = torch.randn(30, 4)
    ei = torch.stack([torch.arange(60) % 20, torch.arange(60) % 30])
    for et in (("user", "rates", "movie"), ("movie", "rev_rates", "user")) + tuple(extra):
        data[et].edge_index = ei if et[0] == "user" else ei.flip(0)
    return data


def test_a_src_dst_pair_names_the_one_edge_type_between_them():
    data = _movies()
    et = ("user", "rates", "movie")
    ids = data[et].edge_index[:, :10]
    kw = dict(num_neighbors=[2, 2], batch_size=4, seed=7, neg_sampling="binary")
    want = list(LinkNeighborLoader(data, edge_label_index=(et, ids), **kw))
    for form in [(("user", "movie"), ids), (["user", "movie"], ids), ("user__rates__movie", ids)]:
        got = list(LinkNeighborLoader(data, edge_label_index=form, **kw))
        assert len(got) == len(want) == 3
        for a, b in zip(got, want):
            assert torch.equal(a[et].edge_label_index, b[et].edge_label_index)
            assert torch.equal(a["user"].n_id, b["user"].n_id)
    # a pair of names alone is an edge type (all its edges), as in PyG, not (type, ids)
    for form in [("user", "movie"), ["user", "movie"], ("user", "rates", "movie")]:
        loader = LinkNeighborLoader(data, [2], edge_label_index=form, batch_size=8)
        b = next(iter(loader))
        assert len(loader) == 60 // 8 + 1
        assert torch.equal(b["user"].n_id[b[et].edge_label_index[0]], data[et].edge_index[0, :8])
    loader = LinkNeighborLoader(data, [2], edge_label_index=(("movie", "user"), None))
    assert loader.edge_type == 1


def test_bad_short_edge_types_raise_clear_errors():
    data = _movies(extra=[("user", "likes", "movie")])
    with pytest.raises(ValueError, match=r"\('user', 'movie'\) is ambiguous: it matches "
                                         r"\[\('user', 'rates', 'movie'\), \('user', 'likes'"):  # fmt: skip
        LinkNeighborLoader(data, [2], edge_label_index=("user", "movie"))
    with pytest.raises(ValueError, match=r"\('user', 'user'\) matches no edge type; give the"):
        LinkNeighborLoader(data, [2], edge_label_index=(("user", "user"), None))
    with pytest.raises(ValueError, match="not in the graph"):
        LinkNeighborLoader(data, [2], edge_label_index=("user", "hates", "movie"))
    with pytest.raises(TypeError, match="an edge type is .* all names; got \\('user', 3\\)"):
        LinkNeighborLoader(data, [2], edge_label_index=(("user", 3), None))


def test_num_neighbors_reads_a_src_dst_key_as_pyg():
    # PyG (EdgeTypeStr) reads a (src, dst) key as (src, "to", dst), not as edge_label_index's
    # one edge type between them
    data = _movies(extra=[("user", "to", "movie")])
    full = {("user", "rates", "movie"): [0, 0], ("movie", "rev_rates", "user"): [0, 0],
            ("user", "to", "movie"): [2, 1]}  # fmt: skip
    short = dict(full)
    short[("user", "movie")] = short.pop(("user", "to", "movie"))
    kw = dict(input_nodes="movie", batch_size=5, seed=4)
    for a, b in zip(NeighborLoader(data, short, **kw), NeighborLoader(data, full, **kw)):
        for et in data.edge_types:
            assert torch.equal(a[et].e_id, b[et].e_id)
        assert a["user", "rates", "movie"].e_id.numel() == 0
    loader = NeighborLoader(data, short, **kw)
    assert loader.num_neighbors[("user", "to", "movie")] == [2, 1]
    with pytest.raises(ValueError, match="lists edge type .*'to'.* twice"):
        NeighborLoader(data, {**full, ("user", "movie"): [1, 1]}, **kw)
    plain = _movies()
    with pytest.raises(ValueError, match=r"key \('user', 'movie'\) means the edge type \('user', "
                                         r"'to', 'movie'\).*from 'user' to 'movie': \[\('user', "
                                         r"'rates', 'movie'\)\]"):  # fmt: skip
        NeighborLoader(plain, {("user", "movie"): [2], ("movie", "rev_rates", "user"): [2]},
                       input_nodes="user")  # fmt: skip


# ---------------------------------------------------------------------- GPU sampling
def test_sampling_device_is_the_cuda_edge_index_device():
    data = make_hetero()
    assert pyg._sampling_device(data) is None  # CPU data: the CPU sampler
    assert pyg._sampling_device(Data(edge_index=torch.zeros(2, 1, dtype=torch.long))) is None
    assert pyg._sampling_device((object(), object())) is None  # remote backends: the CPU


@pytest.mark.triton_interpreter
def test_gpu_sampling_path_gives_the_cpu_batches(monkeypatch):
    # The NeighborLoader's GPU path (Triton sampler, interpreted on CPU tensors here), forced
    # by pretending the data is on a GPU: the same batches as the numba path for a seed.
    def batches(data, **kw):
        loader = NeighborLoader(data, batch_size=8, seed=4, num_workers=1, **kw)  # one thread
        return loader, list(loader)

    hetero = make_hetero(4)
    homo = Data(edge_index=hetero["paper", "cites", "paper"].edge_index, num_nodes=120)
    homo.x = hetero["paper"].x
    cases = [
        (homo, {"num_neighbors": [3, 2], "input_nodes": torch.arange(20)}),
        (hetero, {"num_neighbors": HETERO_FANOUTS, "input_nodes": ("paper", torch.arange(20))}),
    ]
    for data, kw in cases:
        _, want = batches(data, **kw)
        monkeypatch.setattr(pyg, "_sampling_device", lambda d: torch.device("cpu"))
        loader, got = batches(data, **kw)
        monkeypatch.undo()
        assert loader.node_sampler.backend == "triton" and len(got) == len(want)
        for a, b in zip(got, want):
            for store_a, store_b in zip(a.stores, b.stores):
                for key in ("n_id", "e_id", "edge_index", "x"):
                    if key in store_b:
                        assert torch.equal(store_a[key], store_b[key]), key


@pytest.mark.gpu
def test_cuda_data_is_sampled_on_its_gpu():
    hetero = make_hetero(5)
    homo = Data(edge_index=hetero["paper", "cites", "paper"].edge_index, num_nodes=120)
    homo.x = hetero["paper"].x
    kw = {"num_neighbors": [3, 2], "input_nodes": torch.arange(20), "batch_size": 8, "seed": 2}
    want = list(NeighborLoader(homo, **kw))
    loader = NeighborLoader(homo.cuda(), **kw)
    assert loader.node_sampler.backend == "triton"
    got = list(loader)
    for a, b in zip(got, want):
        assert a.edge_index.is_cuda and a.x.is_cuda
        for key in ("n_id", "e_id", "edge_index", "x"):
            assert torch.equal(a[key].cpu(), b[key]), key


# ---------------------------------------------------------------------- LABOR
def test_labor_loader_batches_and_fewer_nodes(data):
    from gnnsys.loaders.pyg import LaborLoader

    kw = {"input_nodes": torch.arange(64), "batch_size": 32, "seed": 1}
    labor = LaborLoader(data, [4, 4], **kw)
    assert isinstance(labor, NeighborLoader) and labor.node_sampler.labor
    nodes_labor = nodes_nbr = 0
    first = []
    for b, c in zip(labor, NeighborLoader(data, [4, 4], **kw)):
        first.append(b.n_id)
        check_batch(b, data)
        assert b.num_sampled_nodes[0] == b.batch_size == 32
        nodes_labor += b.n_id.numel()
        nodes_nbr += c.n_id.numel()
    assert nodes_labor < nodes_nbr
    again = [b.n_id for b in LaborLoader(data, [4, 4], **kw)]  # a new loader, same seed
    assert len(again) == len(first) and all(torch.equal(a, b) for a, b in zip(again, first))
    hetero = make_hetero(6)
    b = next(iter(LaborLoader(hetero, HETERO_FANOUTS, input_nodes="paper", batch_size=16,
                              layer_dependency=True)))  # fmt: skip
    check_hetero_batch(b, hetero, 2)
    with pytest.raises(ValueError, match="replace is not available"):
        LaborLoader(data, [2], replace=True)


# ------------------------------------------------------- side by side with PyG's own loaders
# PyG's NeighborLoader samples through pyg-lib or torch-sparse, neither on PyPI, so these run
# only where one is installed (the PyG peer env: ../shared/peers/setup.sh pyg, then
# `pip install numba` into it and `PYTHONPATH=. python -m pytest tests/test_loaders_pyg.py`).
# With every neighbour taken (fanout -1) a batch has no randomness: both loaders must then
# give the same batch up to the order of nodes and edges within a hop, with the same fields,
# dtypes and trailing shapes.
def _pyg_has_a_sampler() -> bool:
    import torch_geometric.typing as tgt

    return bool(getattr(tgt, "WITH_PYG_LIB", False) or getattr(tgt, "WITH_TORCH_SPARSE", False))


needs_pyg_sampler = pytest.mark.skipif(
    not _pyg_has_a_sampler(),
    reason="PyG's own loaders need pyg-lib or torch-sparse (../shared/peers/setup.sh pyg)",
)
# Fields PyG's pyg-lib backend writes and its torch-sparse backend does not: ours always has them.
_BACKEND_ONLY = {"num_sampled_nodes", "num_sampled_edges"}


def _kind(k, v):
    if isinstance(v, torch.Tensor):  # an [2, E] index: its rows; else a row's shape
        shape = tuple(v.shape[:1]) if k.endswith("_index") else tuple(v.shape[1:])
        return ("tensor", v.dtype, v.dim(), shape)
    if isinstance(v, (list, tuple)):
        return ("list", len(v))
    return (type(v).__name__,)


def _layouts(batch):
    """{store: {field: kind}} of a Data (one store, None) or HeteroData (global and per type)."""
    if isinstance(batch, HeteroData):
        out = {None: {k: _kind(k, v) for k, v in batch._global_store.to_dict().items()}}
        for t, store in list(batch.node_items()) + list(batch.edge_items()):
            out[t] = {k: _kind(k, v) for k, v in store.to_dict().items()}
        return out
    return {None: {k: _kind(k, v) for k, v in batch.to_dict().items()}}


def _same_layout(ours, theirs):
    a, b = _layouts(ours), _layouts(theirs)
    assert a.keys() == b.keys()
    for store in a:
        mine, pyg_ = a[store], b[store]
        extra = set(mine) - set(pyg_) - _BACKEND_ONLY
        missing = set(pyg_) - set(mine)
        assert not extra and not missing, (store, sorted(extra), sorted(missing))
        for k in pyg_:
            assert mine[k] == pyg_[k], (store, k, mine[k], pyg_[k])


def _edge_set(src_ids, dst_ids, ei, e_id):
    return sorted(zip(src_ids[ei[0]].tolist(), dst_ids[ei[1]].tolist(), e_id.tolist()))


def _pyg_or_skip(make):
    """PyG's loader, or a skip when its installed backend cannot do the configuration."""
    try:
        return make()
    except (ImportError, ValueError, NotImplementedError) as e:
        if "pyg-lib" in str(e) or "pyg_lib" in str(e):
            pytest.skip(f"PyG's backend here cannot: {e}")
        raise


def _side_by_side(pyg_cls, our_cls, data, kw, batches=None):
    """(ours, PyG's) batch pairs of the two loaders on the same arguments, after checking that
    they give as many batches (``batches`` when given) with the same layout."""
    theirs = list(_pyg_or_skip(lambda: pyg_cls(data, **kw)))
    ours = list(our_cls(data, **kw))
    assert len(ours) == len(theirs) and batches in (None, len(ours))
    for a, b in zip(ours, theirs):
        _same_layout(a, b)
    return list(zip(ours, theirs))


@needs_pyg_sampler
@pytest.mark.parametrize("subgraph_type", ["directional", "bidirectional", "induced"])
def test_same_batch_as_pygs_neighbor_loader(data, subgraph_type):
    from torch_geometric.loader import NeighborLoader as PygNeighborLoader

    kw = dict(num_neighbors=[-1, -1], input_nodes=torch.arange(40, 50), batch_size=5,
              subgraph_type=subgraph_type)  # fmt: skip
    for a, b in _side_by_side(PygNeighborLoader, NeighborLoader, data, kw, 2):
        assert a.batch_size == b.batch_size and torch.equal(a.input_id, b.input_id)
        assert torch.equal(a.n_id[: a.batch_size], b.n_id[: b.batch_size])
        assert sorted(a.n_id.tolist()) == sorted(b.n_id.tolist())
        got = _edge_set(a.n_id, a.n_id, a.edge_index, a.e_id)
        want = _edge_set(b.n_id, b.n_id, b.edge_index, b.e_id)
        if subgraph_type == "bidirectional":
            # PyG coalesces an edge and its reverse (reduce="any"): one of their ids, either
            # direction's, names the pair; check_batch checks ours names an edge of the pair
            got, want = [sorted(e[:2] for e in x) for x in (got, want)]
            check_batch(a, data, reversed_ok=True)
        assert got == want
        for k in ("x", "y", "train_mask"):  # rows follow n_id
            assert torch.equal(getattr(a, k), data[k][a.n_id])
            assert torch.equal(getattr(b, k), data[k][b.n_id])


_N = 300
_ODD_ATTRS = {  # node and edge attributes of every dtype and shape PyG slices (E = 3000 edges)
    "bool": lambda g: {"x": torch.rand(_N, 5, generator=g) > 0.5},
    "uint8": lambda g: {"x": torch.randint(0, 255, (_N, 5), generator=g, dtype=torch.uint8)},
    "bf16": lambda g: {"x": torch.randn(_N, 5, generator=g).bfloat16()},
    "f16": lambda g: {"x": torch.randn(_N, 5, generator=g).half()},
    "f64": lambda g: {"x": torch.randn(_N, 5, generator=g).double()},
    "complex": lambda g: {"x": torch.randn(_N, 5, generator=g, dtype=torch.complex64)},
    "1d": lambda g: {"x": torch.randn(_N, generator=g)},
    "3d": lambda g: {"x": torch.randn(_N, 2, 3, generator=g)},
    "transposed": lambda g: {"x": torch.randn(5, _N, generator=g).t()},
    "sparse": lambda g: {"x": torch.randn(_N, 5, generator=g).relu().to_sparse()},
    "multilabel": lambda g: {"y": torch.rand(_N, 7, generator=g) > 0.5},
    "edge_3d": lambda g: {"edge_attr": torch.randn(3000, 2, 3, generator=g)},
    "none": lambda g: {},
}


@needs_pyg_sampler
@pytest.mark.parametrize("kind", sorted(_ODD_ATTRS))
def test_attributes_of_every_dtype_and_shape_sliced_as_pygs(data, kind):
    # every neighbour taken: the same rows as PyG's batch, field by field
    from torch_geometric.loader import NeighborLoader as PygNeighborLoader

    attrs = _ODD_ATTRS[kind](torch.Generator().manual_seed(3))
    odd = Data(edge_index=data.edge_index, num_nodes=_N, **attrs)
    kw = dict(num_neighbors=[-1], input_nodes=torch.arange(20), batch_size=10)
    for a, b in _side_by_side(PygNeighborLoader, NeighborLoader, odd, kw, 2):
        assert sorted(a.n_id.tolist()) == sorted(b.n_id.tolist())
        for k, v in attrs.items():
            got, want = getattr(a, k), getattr(b, k)
            if v.is_sparse:
                got, want, v = got.to_dense(), want.to_dense(), v.to_dense()
            ids = a.e_id if k.startswith("edge") else a.n_id
            assert got.dtype == want.dtype and torch.equal(got, v[ids]), k


@needs_pyg_sampler
@pytest.mark.parametrize("subgraph_type", ["directional", "bidirectional", "induced"])
def test_same_hetero_batch_as_pygs_neighbor_loader(subgraph_type):
    from torch_geometric.loader import NeighborLoader as PygNeighborLoader

    data = make_hetero()
    kw = dict(num_neighbors={et: [-1, -1] for et in data.edge_types},
              input_nodes=("paper", torch.arange(10, 22)), batch_size=6,
              subgraph_type=subgraph_type)  # fmt: skip
    for a, b in _side_by_side(PygNeighborLoader, NeighborLoader, data, kw, 2):
        assert a["paper"].batch_size == b["paper"].batch_size
        assert torch.equal(a["paper"].input_id, b["paper"].input_id)
        for t in data.node_types:
            assert sorted(a[t].n_id.tolist()) == sorted(b[t].n_id.tolist()), t
        for et in data.edge_types:
            s, _, d = et
            if subgraph_type == "bidirectional":
                # PyG drops the ids (and edge attributes) of a typed bidirectional batch, and
                # so do we (the layouts matched): compare the node pairs
                assert "e_id" not in a[et] and "e_id" not in b[et]
                got, want = [_edge_set(x[s].n_id, x[d].n_id, x[et].edge_index,
                                       torch.zeros(x[et].num_edges, dtype=torch.long))
                             for x in (a, b)]  # fmt: skip
            else:
                got = _edge_set(a[s].n_id, a[d].n_id, a[et].edge_index, a[et].e_id)
                want = _edge_set(b[s].n_id, b[d].n_id, b[et].edge_index, b[et].e_id)
            assert got == want, et


@needs_pyg_sampler
@pytest.mark.parametrize("neg", [None, "binary", "triplet"])
def test_link_batches_have_pygs_fields(data, neg):
    from torch_geometric.loader import LinkNeighborLoader as PygLinkNeighborLoader

    kw = dict(num_neighbors=[3, 2], edge_label_index=data.edge_index[:, :12], batch_size=4)
    if neg is None:
        kw["edge_label"] = torch.arange(12) % 3
    else:
        kw["neg_sampling"] = neg
    for a, b in _side_by_side(PygLinkNeighborLoader, LinkNeighborLoader, data, kw, 3):
        for k in ("edge_label_index", "edge_label", "src_index", "dst_pos_index", "dst_neg_index"):
            if k in b:
                assert a[k].shape == b[k].shape, k
        assert torch.equal(a.input_id, b.input_id)


@needs_pyg_sampler
@pytest.mark.parametrize("neg", [None, "binary", "triplet"])
def test_hetero_link_batches_have_pygs_fields(neg):
    from torch_geometric.loader import LinkNeighborLoader as PygLinkNeighborLoader

    data = make_hetero()
    et = ("author", "writes", "paper")
    kw = dict(num_neighbors={t: [3, 2] for t in data.edge_types},
              edge_label_index=(et, data[et].edge_index[:, :10]), batch_size=5)  # fmt: skip
    if neg is None:
        kw["edge_label"] = torch.arange(10) % 2
    else:
        kw["neg_sampling"] = dict(mode=neg, amount=2)
    for a, b in _side_by_side(PygLinkNeighborLoader, LinkNeighborLoader, data, kw, 2):
        for k in ("edge_label_index", "edge_label"):
            if k in b[et]:
                assert a[et][k].shape == b[et][k].shape, k
        for t, k in (("author", "src_index"), ("paper", "dst_pos_index"),
                     ("paper", "dst_neg_index")):  # fmt: skip
            if k in b[t]:
                assert a[t][k].shape == b[t][k].shape, k
        assert torch.equal(a[et].input_id, b[et].input_id)


@needs_pyg_sampler
@pytest.mark.parametrize("input_nodes", [None, "mask"])
@pytest.mark.parametrize("replace", [False, True])
def test_sampled_batches_have_pygs_fields(data, input_nodes, replace):
    from torch_geometric.loader import NeighborLoader as PygNeighborLoader

    nodes = data.train_mask if input_nodes == "mask" else None
    kw = dict(num_neighbors=[4, 3], input_nodes=nodes, batch_size=64, replace=replace)
    for a, b in _side_by_side(PygNeighborLoader, NeighborLoader, data, kw):
        bs = a.batch_size
        assert torch.equal(a.input_id, b.input_id) and torch.equal(a.n_id[:bs], b.n_id[:bs])


_LAYOUT_CASES = {  # name: (hetero?, link?, keywords)
    "typed, input type only": (True, False, dict(num_neighbors=HETERO_FANOUTS, input_nodes="paper")),
    "typed, list fanout, mask": (True, False, dict(num_neighbors=[3, 2],
                                                   input_nodes=("paper", "train_mask"))),
    "typed, replace": (True, False, dict(num_neighbors=[3, 2], input_nodes="paper", replace=True)),
    "typed, other input type": (True, False, dict(num_neighbors=[3, 2],
                                                  input_nodes=("author", torch.arange(5)))),
    "transform": (False, False, dict(num_neighbors=[2], transform=lambda b: b)),
    "filter_per_worker": (False, False, dict(num_neighbors=[2], filter_per_worker=True)),
    "fanout 0": (False, False, dict(num_neighbors=[0])),
    "no hops": (False, False, dict(num_neighbors=[])),
    "directed=False": (False, False, dict(num_neighbors=[2, 2], directed=False)),
    "typed link, no negatives": (True, True, dict(num_neighbors=[2, 2],
                                                  edge_label_index=("author", "writes", "paper"))),
    "typed link, ratio": (True, True, dict(num_neighbors=[2, 2], neg_sampling_ratio=2.0,
                                           edge_label_index=(("author", "writes", "paper"), None))),
    "link, ratio": (False, True, dict(num_neighbors=[2, 2], neg_sampling_ratio=1.0)),
    "transform_sampler_output": (False, False, dict(num_neighbors=[2],
                                                    transform_sampler_output=lambda o: o)),
    "typed, transform_sampler_output": (True, False, dict(
        num_neighbors=[3, 2], input_nodes="paper", transform_sampler_output=lambda o: o)),
    "typed link, transform_sampler_output": (True, True, dict(
        num_neighbors=[2], neg_sampling="binary", transform_sampler_output=lambda o: o,
        edge_label_index=("author", "writes", "paper"))),
}  # fmt: skip


def _sampler_output_shape(out):
    """What a transform sees of a sampler output, without the random parts: its class, the
    keys of its dicts, which fields are None, its metadata's length and entry types."""
    shape = {"class": type(out).__name__, "meta": [type(m).__name__ for m in out.metadata]}
    for name in ("node", "row", "col", "edge", "batch", "num_sampled_nodes", "num_sampled_edges"):
        value = getattr(out, name)
        shape[name] = sorted(value) if isinstance(value, dict) else type(value).__name__
    return shape


@needs_pyg_sampler
@pytest.mark.parametrize("hetero", [False, True])
@pytest.mark.parametrize("link", [False, True])
def test_transform_sampler_output_sees_what_pygs_loaders_pass(data, hetero, link):
    from torch_geometric.loader import LinkNeighborLoader as PygLink
    from torch_geometric.loader import NeighborLoader as PygNeighbor

    d = make_hetero() if hetero else data
    kw = dict(num_neighbors=[2, 2], batch_size=8)
    if hetero and link:
        kw["edge_label_index"] = ("author", "writes", "paper")
    elif hetero:
        kw["input_nodes"] = "paper"
    if link:
        kw.update(neg_sampling="binary")
    seen = {}

    def record(who):
        def fn(out):
            seen[who] = _sampler_output_shape(out)
            return out

        return fn

    pyg_cls, our_cls = (PygLink, LinkNeighborLoader) if link else (PygNeighbor, NeighborLoader)
    next(iter(_pyg_or_skip(lambda: pyg_cls(d, transform_sampler_output=record("pyg"), **kw))))
    next(iter(our_cls(d, transform_sampler_output=record("ours"), **kw)))
    for name in ("num_sampled_nodes", "num_sampled_edges"):
        if seen["pyg"][name] == "NoneType":  # PyG on torch-sparse counts no hops (pyg-lib does)
            seen["ours"].pop(name), seen["pyg"].pop(name)
    assert seen["ours"] == seen["pyg"]


@needs_pyg_sampler
@pytest.mark.parametrize("case", list(_LAYOUT_CASES))
def test_more_batches_have_pygs_fields(data, case):
    from torch_geometric.loader import LinkNeighborLoader as PygLink
    from torch_geometric.loader import NeighborLoader as PygNeighbor

    hetero, link, kw = _LAYOUT_CASES[case]
    d = make_hetero() if hetero else data
    kw = dict(kw, batch_size=8)
    if isinstance(kw.get("input_nodes"), tuple) and kw["input_nodes"][1] == "train_mask":
        kw["input_nodes"] = ("paper", d["paper"].train_mask)
    theirs = next(iter(_pyg_or_skip(lambda: (PygLink if link else PygNeighbor)(d, **kw))))
    ours = next(iter((LinkNeighborLoader if link else NeighborLoader)(d, **kw)))
    _same_layout(ours, theirs)


@needs_pyg_sampler
def test_adj_t_input_gives_pygs_adj_t_batches(data):
    torch_sparse = pytest.importorskip("torch_sparse")
    import torch_geometric.transforms as T
    from torch_geometric.loader import NeighborLoader as PygNeighborLoader

    sparse = T.ToSparseTensor(attr="edge_weight")(data.clone())  # values: the edge weights
    kw = dict(num_neighbors=[-1, -1], input_nodes=torch.arange(40, 50), batch_size=5)
    row, col, value = sparse.adj_t.coo()
    for a, b in _side_by_side(PygNeighborLoader, NeighborLoader, sparse, kw, 2):
        assert isinstance(a.adj_t, torch_sparse.SparseTensor) and "edge_index" not in a
        assert a.adj_t.sparse_sizes() == (a.num_nodes, a.num_nodes)
        assert sorted(a.n_id.tolist()) == sorted(b.n_id.tolist())
        sets = []
        for x in (a, b):
            # row: target, column: source; the SparseTensor sorts its entries, e_id keeps the
            # sampled order (PyG's too): compare as sets of (source, target, value)
            r, c, v = x.adj_t.coo()
            got = sorted(zip(x.n_id[c].tolist(), x.n_id[r].tolist(), v.tolist()))
            named = zip(col[x.e_id].tolist(), row[x.e_id].tolist(), value[x.e_id].tolist())
            assert got == sorted(named)
            assert torch.equal(x.edge_attr, sparse.edge_attr[x.e_id])
            sets.append(got)
        assert sets[0] == sets[1]
        from torch_geometric.nn import SAGEConv

        conv = SAGEConv(8, 4)  # a model written for adj_t runs on our batch, same result
        assert conv(a.x, a.adj_t).shape == (a.num_nodes, 4)
        out_a = conv(a.x, a.adj_t)[a.n_id.argsort()]
        out_b = conv(b.x, b.adj_t)[b.n_id.argsort()]
        assert torch.allclose(out_a, out_b, atol=1e-5)
    with pytest.raises(ValueError, match="both edge_index and adj_t"):
        NeighborLoader(Data(edge_index=data.edge_index, adj_t=sparse.adj_t, num_nodes=300), [2])
    with pytest.raises(NotImplementedError, match="weight_attr with data.adj_t"):
        NeighborLoader(sparse, [2], weight_attr="edge_attr")
    link = LinkNeighborLoader(sparse, [2, 2], batch_size=100, neg_sampling="binary")
    b = next(iter(link))
    assert "adj_t" in b and b.edge_label_index.shape == (2, 200)
    assert len(link) == -(-sparse.num_edges // 100)


@needs_pyg_sampler
def test_hetero_adj_t_input_gives_pygs_adj_t_batches():
    torch_sparse = pytest.importorskip("torch_sparse")
    import torch_geometric.transforms as T
    from torch_geometric.loader import NeighborLoader as PygNeighborLoader

    hetero = make_hetero()
    sparse = T.ToSparseTensor(attr="edge_attr")(hetero.clone())  # cites: valued by edge_attr
    kw = dict(num_neighbors=[-1, -1], input_nodes=("paper", torch.arange(40, 50)), batch_size=5)
    for a, b in _side_by_side(PygNeighborLoader, NeighborLoader, sparse, kw, 2):
        assert a["paper"].batch_size == b["paper"].batch_size
        for t in hetero.node_types:
            assert sorted(a[t].n_id.tolist()) == sorted(b[t].n_id.tolist())
        sets = []
        for x in (a, b):
            got = {}
            for et in hetero.edge_types:
                src, _, dst = et
                adj = x[et].adj_t
                assert isinstance(adj, torch_sparse.SparseTensor) and "edge_index" not in x[et]
                assert adj.sparse_sizes() == (x[dst].num_nodes, x[src].num_nodes)
                r, c, v = adj.coo()
                rows, cols, vals = sparse[et].adj_t.coo()
                if v is None:
                    pairs = zip(x[src].n_id[c].tolist(), x[dst].n_id[r].tolist())
                    named = zip(cols[x[et].e_id].tolist(), rows[x[et].e_id].tolist())
                else:  # values: the sampled entries' edge_attr rows, by e_id
                    pairs = zip(x[src].n_id[c].tolist(), x[dst].n_id[r].tolist(), v.tolist())
                    named = zip(cols[x[et].e_id].tolist(), rows[x[et].e_id].tolist(),
                                vals[x[et].e_id].tolist())  # fmt: skip
                got[et] = sorted(pairs)
                assert got[et] == sorted(named)
            sets.append(got)
        assert sets[0] == sets[1]
    # a to_hetero model written for adj_t trains on our batch as on PyG's
    from torch_geometric.nn import SAGEConv, to_hetero

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = SAGEConv((-1, -1), 4)

        def forward(self, x, adj_t):
            return self.conv(x, adj_t)

    plain = T.ToSparseTensor()(make_hetero().clone())  # SAGEConv takes adj_t without values
    torch.manual_seed(0)
    model = to_hetero(Net(), plain.metadata(), aggr="sum")
    a, b = _side_by_side(PygNeighborLoader, NeighborLoader, plain, kw, 2)[0]
    out_a = model(a.x_dict, a.adj_t_dict)["paper"][a["paper"].n_id.argsort()]
    out_b = model(b.x_dict, b.adj_t_dict)["paper"][b["paper"].n_id.argsort()]
    assert torch.allclose(out_a, out_b, atol=1e-5)
    # bad input, named by edge type
    cites = ("paper", "cites", "paper")
    both = sparse.clone()
    both[cites].edge_index = hetero[cites].edge_index
    with pytest.raises(ValueError, match="cites.*both edge_index and adj_t"):
        NeighborLoader(both, [2], input_nodes="paper")
    with pytest.raises(NotImplementedError, match="weight_attr with data.*cites.*adj_t"):
        NeighborLoader(sparse, [2], input_nodes="paper", weight_attr="edge_attr")
    with pytest.raises(NotImplementedError, match="bidirectional.*adj_t has values"):
        NeighborLoader(sparse, [2], input_nodes="paper", subgraph_type="bidirectional")
    wrong = sparse.clone()
    wrong[cites].adj_t = sparse[cites].adj_t.sparse_resize((200, 200))
    with pytest.raises(ValueError, match="cites.*is 200 x 200.*120 x 120"):
        NeighborLoader(wrong, [2], input_nodes="paper")
    # without values, bidirectional works; a typed link loader takes adj_t too
    bidi = NeighborLoader(plain, [2, 2], input_nodes="paper", subgraph_type="bidirectional",
                          batch_size=16)  # fmt: skip
    assert all("adj_t" in bb[cites] for bb in bidi)
    link = LinkNeighborLoader(plain, [2, 2], edge_label_index=cites, batch_size=100)
    lb = next(iter(link))
    assert "adj_t" in lb[cites] and lb[cites].edge_label_index.shape == (2, 100)


def test_adj_t_that_is_not_a_sparse_tensor_is_refused(data):
    dense = Data(x=data.x, adj_t=torch.zeros(300, 300).to_sparse_csr(), num_nodes=300)
    with pytest.raises(NotImplementedError, match="adj_t must be a torch_sparse SparseTensor"):
        NeighborLoader(dense, [2])


@needs_pyg_sampler
@pytest.mark.parametrize(
    "cls, kw",
    [
        ("GraphSAINTNodeSampler", dict(batch_size=50, num_steps=2, sample_coverage=5)),
        ("GraphSAINTEdgeSampler", dict(batch_size=50, num_steps=2, sample_coverage=5)),
        ("GraphSAINTRandomWalkSampler",
         dict(batch_size=20, walk_length=3, num_steps=2, sample_coverage=5)),
        ("ShaDowKHopSampler", dict(depth=2, num_neighbors=3, batch_size=8)),
    ],
)  # fmt: skip
def test_subgraph_loaders_have_pygs_fields(data, cls, kw):
    import torch_geometric.loader as pyg_loader

    theirs = next(iter(_pyg_or_skip(lambda: getattr(pyg_loader, cls)(data, **kw))))
    ours = next(iter(getattr(pyg, cls)(data, **kw)))
    _same_layout(ours, theirs)


def _by_id(ids, table):
    """{id: its slice} of a batch's attribute sliced along its last dimension by ``ids``."""
    return sorted(zip(ids.tolist(), table.reshape(-1, table.shape[-1]).t().tolist()))


@needs_pyg_sampler
def test_index_attributes_are_sliced_as_pygs():
    from torch_geometric.loader import NeighborLoader as PygNeighborLoader

    data = _index_attr_data()  # also sets num_nodes: both batches keep it
    kw = dict(num_neighbors=[-1, -1], input_nodes=torch.arange(10), batch_size=5)
    for a, b in _side_by_side(PygNeighborLoader, NeighborLoader, data, kw, 2):
        assert a.num_nodes == b.num_nodes
        for k in ("edge_label_index", "np_index", "edge_label"):
            assert _by_id(a.e_id, a[k]) == _by_id(b.e_id, b[k]), k
        assert _by_id(a.n_id, a.pair_index) == _by_id(b.n_id, b.pair_index)
        assert torch.equal(a.other_index, b.other_index)


@needs_pyg_sampler
@pytest.mark.parametrize("label", [True, False])
def test_hetero_edge_label_index_is_sliced_as_pygs(label):
    from torch_geometric.loader import NeighborLoader as PygNeighborLoader

    data, et = _hetero_with_edge_labels(label)
    data["author"].num_nodes = 80  # kept, with the batch's count
    kw = dict(num_neighbors={t: [-1, -1] for t in data.edge_types},
              input_nodes=("paper", torch.arange(6)), batch_size=3)  # fmt: skip
    for a, b in _side_by_side(PygNeighborLoader, NeighborLoader, data, kw, 2):
        assert a["author"].num_nodes == b["author"].num_nodes
        assert _by_id(a[et].e_id, a[et].edge_label_index) == _by_id(
            b[et].e_id, b[et].edge_label_index
        )


@needs_pyg_sampler
@pytest.mark.parametrize("neg", [None, "binary", "triplet"])
@pytest.mark.parametrize("hetero", [False, True])
def test_link_batches_over_label_attributes_have_pygs_fields(neg, hetero):
    from torch_geometric.loader import LinkNeighborLoader as PygLinkNeighborLoader

    if hetero:
        data, et = _hetero_with_edge_labels()
        kw = dict(num_neighbors=[2, 2], edge_label_index=(et, data[et].edge_index[:, :12]))
    else:
        data = _index_attr_data()
        kw = dict(num_neighbors=[2, 2], edge_label_index=data.edge_index[:, :12])
    kw.update(batch_size=4, neg_sampling=neg)
    for a, b in _side_by_side(PygLinkNeighborLoader, LinkNeighborLoader, data, kw, 3):
        link_a, link_b = (a[et], b[et]) if hetero else (a, b)
        assert torch.equal(link_a.input_id, link_b.input_id)


@needs_pyg_sampler
@pytest.mark.parametrize(
    "form", [("author", "paper"), (("author", "paper"), "ids"), ["author", "writes", "paper"]]
)
def test_short_edge_types_read_as_pygs(form):
    from torch_geometric.loader import LinkNeighborLoader as PygLinkNeighborLoader

    data = make_hetero()
    et = ("author", "writes", "paper")
    if isinstance(form, tuple) and form[1] == "ids":
        form = (form[0], data[et].edge_index[:, :10])
    kw = dict(num_neighbors=[2], edge_label_index=form, batch_size=200, neg_sampling="binary")
    for a, b in _side_by_side(PygLinkNeighborLoader, LinkNeighborLoader, data, kw):
        assert torch.equal(a[et].input_id, b[et].input_id)


# ------------------------------------------------- the data's attributes as they are now
def test_a_loader_follows_replaced_attributes():
    # PyG slices the data's current attributes at every batch: one loader iterated again
    # after data.x = new (layer-wise inference) must give the new values
    gen = torch.Generator().manual_seed(3)
    ei = torch.randint(0, 100, (2, 600), generator=gen)
    d = Data(x=torch.zeros(100, 2), edge_index=ei, edge_attr=torch.zeros(600), tag=torch.ones(1))
    loader = NeighborLoader(d, [3], batch_size=50)
    assert all(float(b.x.abs().sum()) == 0 for b in loader)
    old_x = weakref.ref(d.x)
    d.x = torch.arange(100, dtype=torch.float32)[:, None].repeat(1, 2)
    d.edge_attr = torch.arange(600, dtype=torch.float32)
    d.tag = torch.full((1,), 7.0)
    for b in [*loader, loader([0, 1, 2])]:
        assert torch.equal(b.x[:, 0], b.n_id.float())
        assert torch.equal(b.edge_attr, b.e_id.float())
        assert float(b.tag) == 7.0
    del b
    gc.collect()
    assert old_x() is None  # the loader keeps no reference to the replaced tensor
    d.x = torch.zeros(99, 2)
    with pytest.raises(ValueError, match="'x' was replaced by one of shape \\(99, 2\\)"):
        iter(loader)
    # PyG's reddit.py deletes x and y from its inference loader's data: batches go without
    del loader.data.x, loader.data.edge_attr
    for b in [*loader, loader([0, 1])]:
        assert "x" not in b and "edge_attr" not in b and float(b.tag) == 7.0
        assert b.n_id.numel() == b.num_nodes


def test_a_hetero_loader_follows_replaced_attributes():
    h = HeteroData()
    h["a"].x = torch.zeros(30, 2)
    h["b"].x = torch.zeros(20, 2)
    h["a", "r", "b"].edge_index = torch.stack([torch.arange(40) % 30, torch.arange(40) % 20])
    h["b", "s", "a"].edge_index = torch.stack([torch.arange(40) % 20, torch.arange(40) % 30])
    h["b", "s", "a"].w = torch.zeros(40)
    loader = NeighborLoader(h, [2, 2], input_nodes="a", batch_size=30)
    next(iter(loader))
    h["a"].x = torch.ones(30, 2)
    h["b", "s", "a"].w = torch.arange(40, dtype=torch.float32)
    b = next(iter(loader))
    assert float(b["a"].x.sum()) == 2 * b["a"].num_nodes and float(b["b"].x.sum()) == 0
    assert torch.equal(b["b", "s", "a"].w, b["b", "s", "a"].e_id.float())


def test_input_data_as_pygs():
    from torch_geometric.sampler import EdgeSamplerInput, NodeSamplerInput

    d = make_data(n=60, e=300)
    loader = NeighborLoader(d, [2], input_nodes=torch.arange(10, 20), batch_size=5)
    inp = loader.input_data
    assert isinstance(inp, NodeSamplerInput) and torch.equal(inp.node, torch.arange(10, 20))
    assert inp.input_type is None and inp.time is None
    pairs = d.edge_index[:, :8]
    link = LinkNeighborLoader(d, [2], edge_label_index=pairs, edge_label=torch.ones(8))
    inp = link.input_data
    assert isinstance(inp, EdgeSamplerInput)
    assert torch.equal(inp.row, pairs[0]) and torch.equal(inp.col, pairs[1])
    assert torch.equal(inp.label, torch.ones(8))


def test_a_batch_of_graphs_as_data_gives_batches_of_its_class_without_its_batch_vector():
    # PyG sets a Data batch's ``batch`` to the sampler's (None unless disjoint), which drops a
    # Batch source's graph ids; its class stays the source's (DataBatch, not DataDataBatch)
    from torch_geometric.data import Batch

    g = torch.Generator().manual_seed(0)
    graphs = [Data(x=torch.randn(10, 3, generator=g), y=torch.arange(10),
                   edge_index=torch.randint(0, 10, (2, 30), generator=g)) for _ in range(3)]  # fmt: skip
    source = Batch.from_data_list(graphs)
    for loader in (
        NeighborLoader(source, [-1], batch_size=8),
        LinkNeighborLoader(source, [-1], batch_size=8),
    ):
        b = next(iter(loader))
        assert type(b) is type(source) and "batch" not in b
        assert torch.equal(b.ptr, source.ptr)  # carried whole, as PyG
    b = next(iter(NeighborLoader(source, [2], batch_size=8, disjoint=True)))
    assert type(b) is type(source) and b.batch.numel() == b.n_id.numel()  # the sampler's
    assert int(b.batch.max()) < 8
    # the whole-subgraph loaders follow PyG's own: ShaDow keeps the source's class; GraphSAINT
    # calls it plainly (PyG's ``self.data.__class__()``), which derives DataDataBatch; both
    # slice the node-level ``batch`` and carry ``ptr`` whole
    b = next(iter(pyg.ShaDowKHopSampler(source, depth=2, num_neighbors=2, batch_size=4)))
    assert type(b) is type(source)
    saint = next(iter(pyg.GraphSAINTNodeSampler(source, batch_size=6, sample_coverage=0)))
    assert type(saint).__name__ == "DataDataBatch" and isinstance(saint, type(source))
    assert torch.equal(saint.batch, source.batch[_saint_nodes(source, saint)])
    assert torch.equal(saint.ptr, source.ptr)
    if _has_torch_sparse():
        from torch_geometric.loader import GraphSAINTNodeSampler as Theirs

        theirs = next(iter(Theirs(source, batch_size=6, num_steps=1, sample_coverage=0)))
        assert type(theirs).__name__ == type(saint).__name__
        assert sorted(theirs.keys()) == sorted(saint.keys())


def _saint_nodes(source, saint):
    """The source rows of a GraphSAINT batch's nodes, found by their (unique) features."""
    return torch.cat([torch.nonzero((source.x == row).all(1)).flatten() for row in saint.x])


def _has_torch_sparse():
    try:
        import torch_sparse  # noqa: F401
    except ImportError:
        return False
    return True


def test_pygs_zip_loader_drives_our_loaders():
    # ZipLoader calls each loader's collate_fn(index) and filter_fn(out) (PyG's two stages)
    from torch_geometric.loader import ZipLoader

    data = make_data()
    a = NeighborLoader(data, [3], input_nodes=torch.arange(0, 40), batch_size=10, seed=1)
    b = LinkNeighborLoader(data, [3], batch_size=10, seed=2)
    zipped = ZipLoader([a, b], batch_size=10)
    assert len(zipped) == 4  # the shorter loader's 40 inputs
    x, y = next(iter(zipped))
    assert torch.equal(x.n_id, a(torch.arange(10)).n_id) and x.batch_size == 10
    assert torch.equal(y.edge_label_index, b(torch.arange(10)).edge_label_index)


# ---------------------------------------------------------------------- transform_sampler_output
def _same_data(a, b):
    """Two PyG batches hold the same stores, keys and values."""
    assert type(a) is type(b)
    stores_a = {getattr(s, "_key", None): s for s in a.stores}
    stores_b = {getattr(s, "_key", None): s for s in b.stores}
    assert stores_a.keys() == stores_b.keys()
    for k, sa in stores_a.items():
        sb = stores_b[k]
        assert set(sa.keys()) == set(sb.keys()), k
        for name in sa.keys():
            va, vb = sa[name], sb[name]
            if isinstance(va, torch.Tensor):
                assert torch.equal(va, vb), (k, name)
            else:
                assert va == vb, (k, name)


def test_transform_sampler_output_gets_pygs_metadata_and_sets_the_seed_fields(data):
    # PyG's node samplers set metadata = (input_id, seed_time); filter_fn reads input_id and
    # batch_size from what the transform returns
    seen = []

    def first_half(out):
        assert isinstance(out.metadata, tuple) and len(out.metadata) == 2
        seen.append(out.metadata[0].clone())
        assert out.metadata[1] is None  # not temporal
        out.metadata = (out.metadata[0][:4], out.metadata[1])
        return out

    loader = NeighborLoader(data, [3], batch_size=8, transform_sampler_output=first_half, seed=1)
    b = next(iter(loader))
    plain = next(iter(NeighborLoader(data, [3], batch_size=8, seed=1)))
    assert any(torch.equal(s, plain.input_id) for s in seen)
    assert torch.equal(b.input_id, plain.input_id[:4]) and b.batch_size == 4
    assert torch.equal(b.n_id, plain.n_id) and torch.equal(b.x, plain.x)
    with pytest.raises(TypeError, match="SamplerOutput"):
        next(iter(NeighborLoader(data, [3], batch_size=8, transform_sampler_output=lambda o: 1)))


def test_link_transform_sampler_output_gets_pygs_link_metadata(data):
    got = {}  # (workers collate batches ahead: keyed by their input ids)

    def look(out):
        got[tuple(out.metadata[0].tolist())] = out.metadata
        return out

    loader = LinkNeighborLoader(data, [2], neg_sampling="binary", batch_size=10, seed=4,
                                transform_sampler_output=look)  # fmt: skip
    b = next(iter(loader))
    input_id, eli, label, time = got[tuple(b.input_id.tolist())]
    assert torch.equal(b.input_id, input_id) and torch.equal(b.edge_label_index, eli)
    assert torch.equal(b.edge_label, label) and time is None
    plain = next(iter(LinkNeighborLoader(data, [2], neg_sampling="binary", batch_size=10, seed=4)))
    _same_data(b, plain)
    trip = LinkNeighborLoader(data, [2], neg_sampling="triplet", batch_size=10, seed=4,
                              transform_sampler_output=look)  # fmt: skip
    b = next(iter(trip))
    input_id, src_index, dst_pos, dst_neg, seed_time = got[tuple(b.input_id.tolist())]
    assert torch.equal(b.src_index, src_index) and torch.equal(b.dst_neg_index, dst_neg)
    assert seed_time is None


def test_hetero_identity_transform_sampler_output_changes_nothing():
    data = make_hetero(5)
    seen = {}  # (workers collate batches ahead: keyed by their input ids)

    def identity(out):
        seen[tuple(out.metadata[0].tolist())] = out
        return out

    kw = dict(input_nodes=("paper", data["paper"].train_mask), batch_size=16, seed=3)
    a = list(NeighborLoader(data, HETERO_FANOUTS, transform_sampler_output=identity, **kw))
    b = list(NeighborLoader(data, HETERO_FANOUTS, **kw))
    for x, y in zip(a, b):
        _same_data(x, y)
    out = seen[tuple(b[0]["paper"].input_id.tolist())]
    from torch_geometric.sampler import HeteroSamplerOutput

    assert isinstance(out, HeteroSamplerOutput)
    assert set(out.node) == set(data.node_types) and set(out.row) == set(data.edge_types)
    assert torch.equal(out.node["paper"], b[0]["paper"].n_id)
    assert out.num_sampled_nodes["paper"] == b[0]["paper"].num_sampled_nodes
    assert torch.equal(out.metadata[0], b[0]["paper"].input_id)
    link = ("author", "writes", "paper")
    lkw = dict(edge_label_index=(link, data[link].edge_index[:, :60]), neg_sampling="binary",
               batch_size=20, seed=2)  # fmt: skip
    la = next(iter(LinkNeighborLoader(data, [2, 2], transform_sampler_output=identity, **lkw)))
    lb = next(iter(LinkNeighborLoader(data, [2, 2], **lkw)))
    _same_data(la, lb)
    assert torch.equal(
        seen[tuple(lb[link].input_id.tolist())].metadata[1], lb[link].edge_label_index
    )


def test_hetero_transform_sampler_output_that_replaces_nodes_and_edges():
    # a transform that keeps every other author and the cites edges among the first half of
    # the edges: tables are fetched again for what it returns, counts come from its dicts
    data = make_hetero(6)
    cites = ("paper", "cites", "paper")

    def prune(out):
        out.node["author"] = out.node["author"][::2]
        for et in list(out.row):
            if "author" in (et[0], et[2]):  # edges touching authors: none left
                out.row[et] = out.row[et][:0]
                out.col[et] = out.col[et][:0]
                out.edge[et] = out.edge[et][:0]
        half = out.row[cites].numel() // 2
        out.row[cites], out.col[cites] = out.row[cites][:half], out.col[cites][:half]
        out.edge[cites] = out.edge[cites][:half]
        out.num_sampled_nodes = None
        out.num_sampled_edges = {cites: [half]}
        return out

    loader = NeighborLoader(data, HETERO_FANOUTS, input_nodes="paper", batch_size=20, seed=7,
                            transform_sampler_output=prune)  # fmt: skip
    plain = NeighborLoader(data, HETERO_FANOUTS, input_nodes="paper", batch_size=20, seed=7)
    for b, p in zip(loader, plain):
        assert torch.equal(b["author"].n_id, p["author"].n_id[::2])
        assert torch.equal(b["author"].x, data["author"].x[b["author"].n_id])
        assert torch.equal(b["paper"].x, p["paper"].x)
        half = p[cites].e_id.numel() // 2
        assert torch.equal(b[cites].e_id, p[cites].e_id[:half])
        assert torch.equal(b[cites].edge_attr, data[cites].edge_attr[b[cites].e_id])
        ei = b[cites].edge_index
        assert torch.equal(
            torch.stack([b["paper"].n_id[ei[0]], b["paper"].n_id[ei[1]]]),
            data[cites].edge_index[:, b[cites].e_id],
        )
        assert b[cites].num_sampled_edges == [half]
        assert "num_sampled_nodes" not in b["paper"]
        assert b["author", "writes", "paper"].edge_index.shape == (2, 0)
        assert b["paper"].batch_size == p["paper"].batch_size

    def homogeneous(out):
        from torch_geometric.sampler import SamplerOutput

        return SamplerOutput(
            node=out.node["paper"], row=out.row[cites], col=out.col[cites], edge=None
        )

    with pytest.raises(TypeError, match="HeteroSamplerOutput"):
        next(iter(NeighborLoader(data, HETERO_FANOUTS, input_nodes="paper", batch_size=20,
                                 transform_sampler_output=homogeneous)))  # fmt: skip


def test_pygs_other_loaders_import_from_here_and_wrap_ours(data):
    # A script importing several names from torch_geometric.loader switches with its import
    # line: the loaders gnnsys does not reimplement are PyG's own under their names, and the
    # wrappers among them drive our loaders.
    import torch_geometric.loader as pyg_loader

    from gnnsys.loaders.pyg import (
        CachedLoader,
        DataLoader,
        ImbalancedSampler,
        PrefetchLoader,
        RandomNodeLoader,
    )

    assert DataLoader is pyg_loader.DataLoader and RandomNodeLoader is pyg_loader.RandomNodeLoader
    assert pyg.NeighborLoader is not pyg_loader.NeighborLoader  # ours stay ours
    graphs = DataLoader([data, data], batch_size=2)
    assert next(iter(graphs)).num_graphs == 2

    def loader():  # (each epoch of one loader draws anew: a fresh loader per comparison)
        return NeighborLoader(data, [3, 2], batch_size=50, seed=1)

    def same(xs, ys):
        return len(xs) == len(ys) == 6 and all(torch.equal(a, b) for a, b in zip(xs, ys))

    want = [b.n_id for b in loader()]
    assert same([b.n_id for b in PrefetchLoader(loader(), device="cpu")], want)
    cached = CachedLoader(loader(), device="cpu")
    assert same([b.n_id for b in cached], want)
    assert same([b.n_id for b in cached], want)  # the second pass replays the cache
    mask = data.train_mask
    torch.manual_seed(0)  # PyG's ImbalancedSampler draws from the global generator
    order = list(ImbalancedSampler(data, input_nodes=mask))
    torch.manual_seed(0)
    balanced = NeighborLoader(data, [2], input_nodes=mask, batch_size=20, seed=1,
                              sampler=ImbalancedSampler(data, input_nodes=mask))  # fmt: skip
    got = torch.cat([b.input_id for b in balanced])  # a mask: input_id holds node ids
    assert torch.equal(got, torch.nonzero(mask).flatten()[torch.tensor(order)])
    for name in ("Foo", "_private", "AffinityMixinX"):
        with pytest.raises(AttributeError, match="has no attribute"):
            getattr(pyg, name)


def test_sparse_coo_node_features_are_sliced_as_pygs(data):
    # x kept as a sparse COO tensor (bag-of-words): batches carry its rows, sparse, as PyG's
    # index_select gives them (the dense row gather raised NotImplementedError from torch)
    dense = data.x.relu()
    sparse = Data(x=dense.to_sparse(), y=data.y, edge_index=data.edge_index)
    for b in NeighborLoader(sparse, [3, 2], batch_size=64, seed=1, num_workers=2):
        assert b.x.layout == torch.sparse_coo and torch.equal(b.x.to_dense(), dense[b.n_id])
    b = next(iter(LinkNeighborLoader(sparse, [3], batch_size=16, neg_sampling="binary", seed=1)))
    assert torch.equal(b.x.to_dense(), dense[b.n_id])
