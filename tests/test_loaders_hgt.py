"""HGTSampler: the batch against brute force (edges among the sampled nodes, node sets when every
budget is taken), the squared-budget draw law, the 50-neighbour cap, determinism, bad input."""

import numpy as np
import pytest
import torch

from gnnsys.graph import Graph
from gnnsys.loaders.base import SampleKey
from gnnsys.loaders.hgt import MAX_NEIGHBORS, HGTSampler, num_samples_matrix


def random_hetero(seed=0, papers=60, authors=40, venues=5, cites=300, writes=200):
    g = torch.Generator().manual_seed(seed)
    ei = {
        ("paper", "cites", "paper"): torch.randint(0, papers, (2, cites), generator=g),
        ("author", "writes", "paper"): torch.stack(
            [
                torch.randint(0, authors, (writes,), generator=g),
                torch.randint(0, papers, (writes,), generator=g),
            ]
        ),
        ("venue", "hosts", "paper"): torch.stack(
            [torch.randint(0, venues, (papers,), generator=g), torch.arange(papers)]
        ),
    }
    ei[("paper", "rev_writes", "author")] = ei[("author", "writes", "paper")].flip(0)
    return Graph.from_hetero(ei, {"paper": papers, "author": authors, "venue": venues}), ei


def typed_edges(sub, graph, ei):
    """{edge type: list of (src id, dst id, edge id)} of the batch, ids within their types."""
    out = {}
    for e, et in enumerate(graph.edge_types):
        ts, td = graph.node_type_id(et[0]), graph.node_type_id(et[2])
        off = graph.type_offsets()
        lo, hi = sub.edge_span(1, e)
        src = sub.type_nodes(ts)[sub.row[lo:hi]] - off[ts]
        dst = sub.type_nodes(td)[sub.col[lo:hi]] - off[td]
        eid = sub.edge_ids[lo:hi]
        # every edge is the graph's edge of its id
        assert torch.equal(ei[et][0, eid], src) and torch.equal(ei[et][1, eid], dst)
        out[et] = list(zip(src.tolist(), dst.tolist(), eid.tolist()))
    return out


def test_edges_are_exactly_the_graphs_edges_among_the_sampled_nodes():
    graph, ei = random_hetero()
    sampler = HGTSampler(graph, [6, 4])
    for batch in range(5):
        seeds = torch.arange(batch * 7, batch * 7 + 7)
        sub = sampler.sample(seeds, SampleKey(seed=3, batch=batch))
        got = typed_edges(sub, graph, ei)
        for et in graph.edge_types:
            ts, td = graph.node_type_id(et[0]), graph.node_type_id(et[2])
            off = graph.type_offsets()
            src_set = set((sub.type_nodes(ts) - off[ts]).tolist())
            dst_pos = {v: i for i, v in enumerate((sub.type_nodes(td) - off[td]).tolist())}
            # brute force, by destination (batch order), then edge id (CSC order within a column)
            want = sorted(
                ((int(s), int(d), j) for j, (s, d) in enumerate(ei[et].t().tolist())
                 if s in src_set and d in dst_pos),
                key=lambda x: (dst_pos[x[1]], x[2]),
            )  # fmt: skip
            assert got[et] == want


def test_nodes_seeds_first_then_per_iteration_at_most_num_samples_of_budget_nodes():
    graph, ei = random_hetero(1)
    counts = {"paper": [5, 3], "author": [4, 2], "venue": [1, 1]}
    sub = HGTSampler(graph, counts).sample(torch.tensor([4, 9, 2]), SampleKey(seed=0))
    paper = graph.node_type_id("paper")
    assert sub.type_nodes(paper)[:3].tolist() == [4, 9, 2]
    tc = sub.type_num_sampled_nodes
    assert tc[0].tolist() == [3, 0, 0]
    assert sub.num_sampled_nodes == [3, int(tc[1].sum())] and sub.num_sampled_edges == [
        sub.row.numel()
    ]
    for t, name in enumerate(graph.node_types):
        assert int(tc[1, t]) <= sum(counts[name])
        nodes = sub.type_nodes(t)
        assert nodes.unique().numel() == nodes.numel()
    # every drawn node is an in-neighbour of a sampled node
    ix, ptr = graph.indices.tolist(), graph.indptr.tolist()
    sources = {ix[p] for w in sub.nodes.tolist() for p in range(ptr[w], ptr[w + 1])}
    for t in range(graph.num_node_types):
        assert set(sub.type_nodes(t)[int(tc[0, t]) :].tolist()) <= sources


def test_taking_every_budget_gives_the_in_neighbourhood_levels():
    # with counts above every budget nothing is random: iteration l adds every not yet sampled
    # in-neighbour of the nodes iteration l-1 added (degrees stay below the 50 cap)
    graph, _ = random_hetero(2)
    assert int((graph.indptr[1:] - graph.indptr[:-1]).max()) <= MAX_NEIGHBORS
    seeds = [0, 1, 2]
    sub = HGTSampler(graph, [1000, 1000]).sample(torch.tensor(seeds), SampleKey(seed=5))
    level, seen = set(seeds), set(seeds)
    for _ in range(2):
        nxt = set()
        for w in level:
            nxt.update(graph.indices[graph.indptr[w] : graph.indptr[w + 1]].tolist())
        level = nxt - seen
        seen |= level
    assert set(sub.nodes.tolist()) == seen
    again = HGTSampler(graph, [1000, 1000]).sample(torch.tensor(seeds), SampleKey(seed=9))
    assert torch.equal(sub.nodes, again.nodes) and torch.equal(sub.row, again.row)


def test_draw_probability_is_proportional_to_the_squared_budget():
    # paper 0 has one author in-neighbour (x: budget 1), paper 1 four (y, z1..z3: 1/4 each):
    # drawing one author picks x with probability 1 / (1 + 4/16) = 0.8
    writes = torch.tensor([[0, 1, 2, 3, 4], [0, 1, 1, 1, 1]])
    graph = Graph.from_hetero({("author", "writes", "paper"): writes}, {"paper": 2, "author": 5})
    sampler = HGTSampler(graph, {"author": [1]})
    author0 = int(graph.type_offsets()[graph.node_type_id("author")])
    trials = 3000
    hits = 0
    for b in range(trials):
        sub = sampler.sample(torch.tensor([0, 1]), SampleKey(seed=11, batch=b))
        drawn = sub.type_nodes(graph.node_type_id("author")) - author0
        assert drawn.numel() == 1
        hits += int(drawn[0]) == 0
    sd = (trials * 0.8 * 0.2) ** 0.5
    assert abs(hits - 0.8 * trials) < 5 * sd, hits


def test_a_hub_adds_fifty_neighbours_to_the_budget_and_keeps_true_edge_ids():
    n = 300
    to_b = torch.stack([torch.arange(n), torch.zeros(n, dtype=torch.long)])
    ei = {("a", "to", "b"): to_b, ("b", "rev", "a"): to_b.flip(0)}
    graph = Graph.from_hetero(ei, {"a": n, "b": 1})
    seed = torch.tensor([int(graph.type_offsets()[graph.node_type_id("b")])])
    sub = HGTSampler(graph, {"a": [n], "b": [0]}).sample(seed, SampleKey(seed=2))
    a = graph.node_type_id("a")
    assert int(sub.type_num_sampled_nodes[1, a]) == MAX_NEIGHBORS  # the budget held 50
    got = typed_edges(sub, graph, ei)  # asserts each e_id names its edge
    # the hub's in-edges come from 50 of its 300 in-edges: those whose source was sampled
    assert 0 < len(got[("a", "to", "b")]) <= MAX_NEIGHBORS
    assert len(got[("b", "rev", "a")]) == MAX_NEIGHBORS  # each sampled a has the hub as source


def test_deterministic_for_a_key_and_different_across_keys():
    graph, _ = random_hetero(3)
    sampler = HGTSampler(graph, [4, 4])
    seeds = torch.arange(10)
    a = sampler.sample(seeds, SampleKey(seed=1, epoch=2, batch=3))
    b = HGTSampler(graph, [4, 4]).sample(seeds, SampleKey(seed=1, epoch=2, batch=3))
    c = sampler.sample(seeds, SampleKey(seed=1, epoch=2, batch=4))
    assert torch.equal(a.nodes, b.nodes) and torch.equal(a.edge_index(), b.edge_index())
    assert torch.equal(a.edge_ids, b.edge_ids)
    assert not torch.equal(a.nodes, c.nodes)


def test_homogeneous_graph_and_zero_iterations():
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, 50, (2, 300), generator=g)
    graph = Graph.from_edge_index(ei, num_nodes=50)
    sub = HGTSampler(graph, [5, 5]).sample(torch.tensor([3, 7]), SampleKey(seed=0))
    assert sub.nodes[:2].tolist() == [3, 7] and not sub.is_typed
    assert sub.num_sampled_nodes[0] == 2 and sub.num_sampled_nodes[1] <= 10
    assert sub.row.numel() > 0
    assert torch.equal(sub.nodes[sub.row], ei[0, sub.edge_ids])
    assert torch.equal(sub.nodes[sub.col], ei[1, sub.edge_ids])
    alone = HGTSampler(graph, []).sample(torch.tensor([3, 7]), SampleKey(seed=0))
    assert alone.nodes.tolist() == [3, 7]


def test_num_samples_forms_and_errors():
    types = ["a", "b"]
    assert num_samples_matrix([3, 1], types, "w").tolist() == [[3, 3], [1, 1]]
    assert num_samples_matrix(torch.tensor([2]), types, "w").tolist() == [[2, 2]]
    assert num_samples_matrix({"b": [2, 2]}, types, "w").tolist() == [[0, 2], [0, 2]]
    assert num_samples_matrix([], types, "w").shape == (0, 2)
    with pytest.raises(ValueError, match="not in the graph: \\['c'\\]"):
        num_samples_matrix({"c": [1]}, types, "w")
    with pytest.raises(ValueError, match="one length"):
        num_samples_matrix({"a": [1, 2], "b": [1]}, types, "w")
    with pytest.raises(ValueError, match=">= 0"):
        num_samples_matrix([-1], types, "w")
    with pytest.raises(TypeError, match="hold ints"):
        num_samples_matrix([1.5], types, "w")
    with pytest.raises(TypeError, match="a list with one count"):
        num_samples_matrix(4, types, "w")


def test_bad_seeds_raise():
    graph, _ = random_hetero()
    sampler = HGTSampler(graph, [2])
    for bad, match in (
        (torch.tensor([graph.num_nodes]), "seeds"),
        (torch.tensor([-1]), "seeds"),
        (torch.tensor([], dtype=torch.long), "seeds"),
        (torch.tensor([0.0]), "integer ids"),
    ):
        with pytest.raises(ValueError, match=match):
            sampler.sample(bad, SampleKey())
    with pytest.raises(TypeError, match="gnnsys.Graph"):
        HGTSampler(np.zeros(3), [1])
