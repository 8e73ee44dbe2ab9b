"""LinkSampler and NegativeSampling: positives present, negative counts, labels, triplets,
disjoint trees, weighted negatives, determinism and validation."""

import pytest
import torch

from gnnsys.graph import Graph
from gnnsys.loaders import LinkSampler, Loader, NegativeSampling, SampleKey


@pytest.fixture(scope="module")
def graph():
    g = torch.Generator().manual_seed(1)
    n, e = 300, 2400
    ei = torch.stack(
        [torch.randint(0, n, (e,), generator=g), torch.randint(0, n, (e,), generator=g)]
    )
    return ei, Graph.from_edge_index(ei, n)


def global_pairs(sub, local_index):
    return sub.nodes[local_index]


def test_no_negatives_positives_present(graph):
    ei, g = graph
    s = LinkSampler(g, [3, 2], ei)
    pos = torch.tensor([5, 17, 400, 3])
    sub = s.sample(pos, SampleKey(seed=1))
    eli = sub.metadata["edge_label_index"]
    assert eli.shape == (2, 4)
    assert torch.equal(global_pairs(sub, eli), ei[:, pos])
    assert torch.equal(sub.metadata["input_id"], pos)
    assert "edge_label" not in sub.metadata
    # Seeds are the distinct endpoints in first-occurrence order.
    ends = torch.cat([ei[0, pos], ei[1, pos]]).tolist()
    assert sub.nodes[: sub.num_seeds].tolist() == list(dict.fromkeys(ends))


@pytest.mark.parametrize("amount", [1, 2, 0.5])
def test_binary_negatives(graph, amount):
    ei, g = graph
    s = LinkSampler(g, [2], ei, neg_sampling=NegativeSampling("binary", amount))
    pos = torch.arange(10, 30)
    sub = s.sample(pos, SampleKey(seed=2))
    k = int(torch.tensor(20 * amount).ceil())
    eli, lab = sub.metadata["edge_label_index"], sub.metadata["edge_label"]
    assert eli.shape == (2, 20 + k) and lab.shape == (20 + k,)
    assert torch.equal(lab, torch.cat([torch.ones(20), torch.zeros(k)]))
    assert torch.equal(global_pairs(sub, eli[:, :20]), ei[:, pos])  # positives first
    assert int(eli.max()) < sub.num_seeds  # every endpoint is a seed of the node sample


def test_binary_labels_are_shifted(graph):
    ei, g = graph
    labels = torch.randint(0, 3, (ei.shape[1],), generator=torch.Generator().manual_seed(0))
    labels[0] = 0
    s = LinkSampler(g, [2], ei, labels, neg_sampling="binary")
    sub = s.sample(torch.arange(8), SampleKey())
    lab = sub.metadata["edge_label"]
    assert torch.equal(lab[:8], labels[:8] + 1) and torch.equal(lab[8:], torch.zeros(8).long())
    # Without negative sampling, labels pass through untouched.
    s2 = LinkSampler(g, [2], ei, labels)
    assert torch.equal(s2.sample(torch.arange(8), SampleKey()).metadata["edge_label"], labels[:8])


@pytest.mark.parametrize("amount", [1, 3])
def test_triplet(graph, amount):
    ei, g = graph
    s = LinkSampler(g, [2, 2], ei, neg_sampling={"mode": "triplet", "amount": amount})
    pos = torch.arange(50, 62)
    sub = s.sample(pos, SampleKey(seed=3))
    m = sub.metadata
    assert torch.equal(sub.nodes[m["src_index"]], ei[0, pos])
    assert torch.equal(sub.nodes[m["dst_pos_index"]], ei[1, pos])
    want = (12,) if amount == 1 else (12, amount)
    assert tuple(m["dst_neg_index"].shape) == want
    assert int(m["dst_neg_index"].max()) < sub.num_seeds


def test_disjoint_link_trees(graph):
    ei, g = graph
    s = LinkSampler(g, [2], ei, neg_sampling="binary", disjoint=True)
    sub = s.sample(torch.arange(6), SampleKey(seed=4))
    eli = sub.metadata["edge_label_index"]
    assert torch.equal(eli, torch.arange(24).view(2, -1))  # every endpoint its own seed slot
    assert torch.equal(sub.nodes[eli[:, :6]], ei[:, :6])
    assert sub.batch is not None and int(sub.batch.max()) < 6
    assert torch.equal(sub.batch[sub.row], sub.batch[sub.col])


def test_negatives_are_uniform_and_weighted(graph):
    ei, g = graph
    s = LinkSampler(g, [1], ei, neg_sampling=NegativeSampling("binary", 50))
    sub = s.sample(torch.arange(40), SampleKey(seed=5))
    neg = sub.nodes[sub.metadata["edge_label_index"][:, 40:]]
    assert neg.numel() == 2 * 2000 and int(neg.max()) < 300
    # Weighted destinations: only nodes with weight > 0 are drawn.
    w = torch.zeros(300)
    w[[7, 9]] = 1.0
    s = LinkSampler(g, [1], ei, neg_sampling=NegativeSampling("triplet", 4, dst_weight=w))
    sub = s.sample(torch.arange(10), SampleKey(seed=6))
    assert set(sub.nodes[sub.metadata["dst_neg_index"]].flatten().tolist()) <= {7, 9}


def test_deterministic_and_keyed(graph):
    ei, g = graph
    s = LinkSampler(g, [3], ei, neg_sampling="binary")
    a = s.sample(torch.arange(20), SampleKey(seed=1, batch=0))
    b = s.sample(torch.arange(20), SampleKey(seed=1, batch=0))
    c = s.sample(torch.arange(20), SampleKey(seed=1, batch=1))
    assert torch.equal(a.nodes, b.nodes)
    assert not torch.equal(a.metadata["edge_label_index"], c.metadata["edge_label_index"])


def test_through_the_loader(graph):
    ei, g = graph
    s = LinkSampler(g, [2], ei, neg_sampling="binary")
    loader = Loader(s, s.num_inputs, batch_size=500, shuffle=True)
    seen = torch.cat([b.subgraph.metadata["input_id"] for b in loader])
    assert sorted(seen.tolist()) == list(range(ei.shape[1]))


def test_validation(graph):
    ei, g = graph
    with pytest.raises(ValueError, match=r"\[2, M\]"):
        LinkSampler(g, [2], ei[0])
    with pytest.raises(ValueError, match="out of range"):
        LinkSampler(g, [2], torch.tensor([[0], [300]]))
    with pytest.raises(ValueError, match="edge_label has"):
        LinkSampler(g, [2], ei, torch.zeros(3))
    with pytest.raises(ValueError, match="triplet"):
        LinkSampler(g, [2], ei, torch.zeros(ei.shape[1]), neg_sampling="triplet")
    with pytest.raises(ValueError, match="integer amount"):
        NegativeSampling("triplet", 1.5)
    with pytest.raises(ValueError, match="> 0"):
        NegativeSampling("binary", 0)
    with pytest.raises(ValueError, match="mode"):
        NegativeSampling("random")
    with pytest.raises(ValueError, match="one weight per node"):
        LinkSampler(g, [2], ei, neg_sampling=NegativeSampling("binary", src_weight=torch.ones(3)))
    with pytest.raises(ValueError, match="sums to 0"):
        LinkSampler(
            g, [2], ei, neg_sampling=NegativeSampling("binary", dst_weight=torch.zeros(300))
        )
    s = LinkSampler(g, [2], ei)
    with pytest.raises(ValueError, match="out of range"):
        s.sample(torch.tensor([ei.shape[1]]), SampleKey())
    with pytest.raises(ValueError, match="empty"):
        s.sample(torch.tensor([], dtype=torch.long), SampleKey())


def test_pyg_negative_sampling_object_is_accepted(graph):
    from torch_geometric.sampler import NegativeSampling as PygNeg

    ei, g = graph
    s = LinkSampler(g, [2], ei, neg_sampling=PygNeg("triplet", 2))
    assert s.neg_sampling == NegativeSampling("triplet", 2)


def test_shared_link_helpers():
    from gnnsys.loaders.base import SampleKey, key_int
    from gnnsys.loaders.link import random_nodes, seed_ids_within_type, unique_seeds

    off = torch.tensor([0, 4, 10])
    assert seed_ids_within_type(torch.tensor([5, 0, 7, 1, 5]), off).tolist() == [0, 0, 1, 1, 2]
    assert seed_ids_within_type(torch.tensor([5, 0]), None).tolist() == [0, 1]
    uniq, local = unique_seeds(torch.tensor([5, 0, 5, 7, 0]), off)
    assert uniq.tolist() == [5, 0, 7] and local.tolist() == [0, 0, 0, 1, 0]
    key = key_int(SampleKey(seed=3))
    a, b = random_nodes(key, 7, 500, 13), random_nodes(key, 7, 500, 13)
    assert torch.equal(a, b) and int(a.min()) >= 0 and int(a.max()) == 12
    assert not torch.equal(a, random_nodes(key, 8, 500, 13))  # the salt picks the stream
    cum = torch.tensor([0.0, 0.0, 1.0, 1.0]).numpy()  # only node 1 has weight
    assert set(random_nodes(key, 1, 50, 3, cum).tolist()) == {1}
    assert random_nodes(key, 1, 0, 3).numel() == 0


@pytest.mark.parametrize("neg", [None, "binary", "triplet"])
def test_over_a_built_node_sampler_is_the_same_sampler(graph, neg):
    # LinkSampler.over(sampler) (how a distributed node sampler is plugged in) samples what
    # the constructor with the same settings samples
    from gnnsys.loaders import NeighborSampler

    ei, g = graph
    made = LinkSampler(g, [3, 2], ei, neg_sampling=neg, disjoint=True)
    over = LinkSampler.over(NeighborSampler(g, [3, 2], disjoint=True), ei, neg_sampling=neg)
    assert not over.collective and over.lanes == 1
    pos, key = torch.tensor([5, 17, 400, 3]), SampleKey(seed=2, batch=1)
    a, b = made.sample(pos, key), over.sample(pos, key)
    assert torch.equal(a.nodes, b.nodes) and torch.equal(a.row, b.row)
    assert torch.equal(a.batch, b.batch)
    assert a.metadata.keys() == b.metadata.keys()
    for k, v in a.metadata.items():
        assert torch.equal(v, b.metadata[k]) if torch.is_tensor(v) else v == b.metadata[k]


def test_edge_label_nan_kept_as_pyg_and_meta_refused(graph):
    # int(NaN) failed ("cannot convert float NaN to integer"); PyG compares as a tensor
    _, g = graph
    eli = torch.tensor([[0, 1], [1, 2]])
    label = torch.tensor([float("nan"), 0.0])
    s = LinkSampler(g, [2], eli, edge_label=label, neg_sampling="binary")
    assert torch.isnan(s.edge_label[0]) and s.edge_label[1] == 0  # min is NaN: no shift, as PyG
    with pytest.raises(
        ValueError, match="edge_label must be on a cpu or cuda device, got a tensor on meta"
    ):
        LinkSampler(g, [2], eli, edge_label=torch.ones(2, device="meta"), neg_sampling="binary")
