"""Graph construction, round trips, options and validation."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnsys import Graph


def _edge_set(ei: torch.Tensor) -> list:
    return sorted(map(tuple, ei.t().tolist()))


def _random_edges(n: int, e: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (2, e), generator=g)


def test_csc_groups_incoming_edges():
    ei = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])
    g = Graph.from_edge_index(ei)
    assert g.num_nodes == 3 and g.num_edges == 4
    assert g.indptr.dtype == torch.int64 and g.indices.dtype == torch.int32
    assert g.indptr.tolist() == [0, 1, 3, 4]
    # column 1 holds the sources of edges into node 1, in input order
    assert g.indices[1:3].tolist() == [0, 2]
    assert g.edge_ids.tolist() == [2, 0, 3, 1]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), e=st.integers(0, 200), seed=st.integers(0, 10**6))
def test_round_trip_edge_index(n, e, seed):
    ei = _random_edges(n, e, seed)
    g = Graph.from_edge_index(ei, n)
    back = g.to_edge_index()
    assert _edge_set(back) == _edge_set(ei)
    # edge_ids point back at the caller's edges
    assert torch.equal(ei[:, g.edge_ids], back)


def test_build_is_stable_and_thread_count_independent():
    import numba

    ei = _random_edges(500, 20000, 1)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = Graph.from_edge_index(ei, 500)
        numba.set_num_threads(old)
        b = Graph.from_edge_index(ei, 500)
    finally:
        numba.set_num_threads(old)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.edge_ids, b.edge_ids)
    # stable: within a column, edge ids increase
    for v in range(0, 500, 37):
        ids = a.edge_ids[a.indptr[v] : a.indptr[v + 1]]
        assert bool((ids[1:] > ids[:-1]).all())


def test_degrees():
    ei = torch.tensor([[0, 0, 1, 3], [1, 2, 2, 2]])
    g = Graph.from_edge_index(ei, 5)
    assert g.in_degrees().tolist() == [0, 1, 3, 0, 0]
    assert g.out_degrees().tolist() == [2, 1, 0, 1, 0]


def test_dedupe_keeps_first_and_sorts_columns():
    ei = torch.tensor([[3, 1, 3, 0, 1], [2, 2, 2, 2, 2]])
    w = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    g = Graph.from_edge_index(ei, 4, edge_weight=w, dedupe=True)
    assert g.indices.tolist() == [0, 1, 3]
    assert g.edge_ids.tolist() == [3, 1, 0]
    assert g.edge_weight.tolist() == [4.0, 2.0, 1.0]


@pytest.mark.parametrize("length", [2, 24, 25, 300, 1 << 16])  # insertion, merge, hub sorts
def test_dedupe_every_column_length_keeps_first_occurrence(length):
    # Columns of each sort path: sorted sources, the first of each duplicate run kept (smallest
    # edge id), self loops removed; compared with a plain Python reference.
    g = torch.Generator().manual_seed(length)
    src = torch.randint(0, max(2, length // 3), (length,), generator=g)
    ei = torch.stack([src, torch.full((length,), 1)])
    graph = Graph.from_edge_index(ei, int(src.max()) + 2, dedupe=True, self_loops="remove")
    first = {}
    for i, s in enumerate(src.tolist()):
        if s != 1:
            first.setdefault(s, i)
    want = sorted(first.items())
    lo, hi = graph.indptr[1].item(), graph.indptr[2].item()
    assert graph.indices[lo:hi].tolist() == [s for s, _ in want]
    assert graph.edge_ids[lo:hi].tolist() == [i for _, i in want]


def test_undirected_adds_reverse_edges_with_same_ids():
    ei = torch.tensor([[0, 1], [1, 2]])
    g = Graph.from_edge_index(ei, undirected=True, dedupe=True)
    assert _edge_set(g.to_edge_index()) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    assert sorted(g.edge_ids.tolist()) == [0, 0, 1, 1]


def test_self_loop_options():
    ei = torch.tensor([[0, 1, 1], [0, 1, 2]])
    removed = Graph.from_edge_index(ei, 4, self_loops="remove")
    assert _edge_set(removed.to_edge_index()) == [(1, 2)]
    added = Graph.from_edge_index(ei, 4, self_loops="add", edge_weight=torch.tensor([5.0, 6, 7]))
    assert _edge_set(added.to_edge_index()) == [(0, 0), (1, 1), (1, 2), (2, 2), (3, 3)]
    # existing loops keep their id and weight; added ones get id -1 and weight 1
    loops = {
        (int(s), int(d)): (int(i), float(w))
        for s, d, i, w in zip(*added.to_edge_index(), added.edge_ids, added.edge_weight)
        if s == d
    }
    assert loops == {(0, 0): (0, 5.0), (1, 1): (1, 6.0), (2, 2): (-1, 1.0), (3, 3): (-1, 1.0)}
    with pytest.raises(ValueError, match="self_loops"):
        Graph.from_edge_index(ei, self_loops="drop")


def test_empty_and_isolated_nodes_are_valid():
    g = Graph.from_edge_index(torch.empty(2, 0, dtype=torch.long))
    assert g.num_nodes == 0 and g.num_edges == 0
    g = Graph.from_edge_index(torch.empty(2, 0, dtype=torch.long), 7)
    assert g.in_degrees().tolist() == [0] * 7
    g = Graph.from_edge_index(torch.tensor([[0], [1]]), 10)
    assert g.num_nodes == 10 and g.out_degrees().sum() == 1


def test_pyg_round_trip():
    from torch_geometric.data import Data

    ei = _random_edges(30, 100, 3)
    data = Data(edge_index=ei, num_nodes=30, edge_weight=torch.rand(100))
    g = Graph.from_pyg(data)
    assert g.num_nodes == 30
    assert _edge_set(g.to_edge_index()) == _edge_set(ei)
    assert torch.equal(g.edge_weight, data.edge_weight[g.edge_ids])


def test_scipy_round_trip():
    m = sp.random(25, 25, density=0.2, format="coo", random_state=0)
    g = Graph.from_scipy(m)
    back = g.to_scipy()
    assert abs(back - m.tocsc()).max() == 0
    with pytest.raises(ValueError, match="square"):
        Graph.from_scipy(sp.random(3, 4, density=0.5))
    with pytest.raises(TypeError, match="scipy sparse"):
        Graph.from_scipy(np.eye(3))


def test_from_csc_validates():
    g = Graph.from_csc(torch.tensor([0, 1, 1, 3]), torch.tensor([2, 0, 1]))
    assert g.num_nodes == 3
    with pytest.raises(ValueError, match="non-decreasing"):
        Graph.from_csc(torch.tensor([0, 2, 1, 3]), torch.tensor([2, 0, 1]))
    with pytest.raises(ValueError, match="indices holds id 5, out of range for 1 nodes"):
        Graph.from_csc(torch.tensor([0, 1]), torch.tensor([5]))
    with pytest.raises(ValueError, match="indptr ends at"):
        Graph.from_csc(torch.tensor([0, 2]), torch.tensor([0]))
    with pytest.raises(ValueError, match="indices must hold integer"):
        Graph.from_csc(torch.tensor([0, 1]), torch.tensor([0.0]))


_IP = torch.tensor([0, 1, 2])  # two nodes, one in-edge each


@pytest.mark.parametrize(
    "indptr, indices, kw, match",
    [
        # int64 ids that int32 would wrap into range (2**32 + 1 -> 1, -2**32 -> 0)
        (_IP, torch.tensor([2**32 + 1, 0]), {}, r"indices holds id 4294967297, out of range"),
        (_IP, torch.tensor([-(2**32), 0]), {}, "indices holds a negative id: -4294967296"),
        (_IP, torch.tensor([[1], [0]]), {}, r"indices must be 1-dimensional, got shape \(2, 1\)"),
        (torch.tensor([[0, 1, 2]]), torch.tensor([1, 0]), {}, "indptr must be 1-D"),
        (torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1, 0]), {}, "indptr must be an integer"),
        (_IP, torch.tensor([True, False]), {}, "indices must hold integer node ids"),
        (_IP, torch.tensor([1, 0]), {"edge_ids": torch.tensor([0.0, 1.9])}, "edge_ids must hold integer"),
        (_IP, torch.tensor([1, 0]), {"edge_ids": torch.tensor([0, -2])}, "edge_ids holds -2"),
        (_IP, torch.tensor([1, 0]), {"edge_ids": torch.tensor([0])}, r"edge_ids must have shape \[2\]"),
        (_IP, torch.tensor([1, 0]), {"edge_ids": torch.zeros(2, 1, dtype=torch.long)}, r"edge_ids must have shape \[2\]"),
        (_IP, torch.tensor([1, 0]), {"edge_weight": torch.ones(3)}, r"edge_weight must have shape \[2\]"),
        (_IP, torch.tensor([1, 0]), {"edge_weight": torch.ones(2, 1)}, r"edge_weight must have shape \[2\]"),
        (_IP, torch.tensor([1, 0]), {"edge_weight": torch.ones(2, dtype=torch.complex64)}, "edge_weight must hold real"),
        (_IP, torch.tensor([1, 0]), {"num_nodes": 3}, "num_nodes=3 needs 4"),
        (_IP, torch.tensor([1, 0]), {"num_nodes": 2.0}, "num_nodes must be an int"),
    ],
)  # fmt: skip
def test_from_csc_refuses_bad_arrays(indptr, indices, kw, match):
    with pytest.raises(ValueError, match=match):
        Graph.from_csc(indptr, indices, **kw)


def test_from_csc_keeps_valid_ids_and_weights():
    g = Graph.from_csc(_IP, torch.tensor([1, 0]), edge_ids=torch.tensor([1, 0], dtype=torch.int32),
                       edge_weight=torch.tensor([2, 3]))  # fmt: skip
    assert g.indices.dtype == torch.int32 and g.indices.tolist() == [1, 0]
    assert g.edge_ids.dtype == torch.int64 and g.edge_ids.tolist() == [1, 0]
    assert g.edge_weight.dtype == torch.float32 and g.edge_weight.tolist() == [2.0, 3.0]
    # a graph with added self loops (edge id -1) round-trips through from_csc
    looped = Graph.from_edge_index(torch.tensor([[0], [1]]), 3, self_loops="add")
    back = Graph.from_csc(looped.indptr, looped.indices, edge_ids=looped.edge_ids)
    assert torch.equal(back.edge_ids, looped.edge_ids) and int(back.edge_ids.min()) == -1


def test_constructor_refuses_non_1d_indices():
    with pytest.raises(ValueError, match=r"indices must be 1-D, got shape \(2, 1\)"):
        Graph(_IP, torch.tensor([[1], [0]]))
    with pytest.raises(ValueError, match="indices must hold integer node ids"):
        Graph(_IP, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"edge_ids must have shape \[2\]"):
        Graph(_IP, torch.tensor([1, 0]), edge_ids=torch.zeros(2, 1, dtype=torch.long))


@pytest.mark.parametrize(
    "edge_index, num_nodes, match",
    [
        (torch.tensor([[0, -1], [1, 1]]), None, "negative node id: -1"),
        (torch.tensor([[0, 5], [1, 1]]), 3, "node id 5 but num_nodes=3"),
        (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), None, "integer node ids.*float"),
        (torch.tensor([0, 1, 2]), None, r"shape \[2, E\]"),
        (torch.zeros(3, 2, dtype=torch.long), None, r"shape \[2, E\]"),
        (torch.tensor([[0], [1]]), -1, "num_nodes must be >= 0"),
    ],
)
def test_bad_edge_index(edge_index, num_nodes, match):
    with pytest.raises(ValueError, match=match):
        Graph.from_edge_index(edge_index, num_nodes)


def test_bad_edge_weight_and_types():
    with pytest.raises(ValueError, match="edge_weight must have shape"):
        Graph.from_edge_index(torch.tensor([[0], [1]]), edge_weight=torch.ones(2))
    with pytest.raises(TypeError, match="edge_index must be"):
        Graph.from_edge_index("0 1")


def test_numpy_input_and_repr_and_share_memory():
    g = Graph.from_edge_index(np.array([[0, 1], [1, 0]]), edge_weight=np.ones(2))
    assert "num_nodes=2" in repr(g) and "num_edges=2" in repr(g)
    g.share_memory_()
    assert g.indptr.is_shared() and g.indices.is_shared()


# ---------------------------------------------------------------------- typed graphs
def _hetero_dict(seed=0):
    g = torch.Generator().manual_seed(seed)
    counts = {"paper": 30, "author": 20, "venue": 3}
    ed = {
        ("author", "writes", "paper"): torch.stack(
            [torch.randint(0, 20, (50,), generator=g), torch.randint(0, 30, (50,), generator=g)]
        ),
        ("paper", "cites", "paper"): torch.randint(0, 30, (2, 70), generator=g),
        ("paper", "in", "venue"): torch.stack(
            [torch.arange(30), torch.randint(0, 3, (30,), generator=g)]
        ),
    }
    ed[("paper", "rev_writes", "author")] = ed[("author", "writes", "paper")].flip(0)
    return ed, counts


def test_from_hetero_layout_and_round_trip():
    ed, counts = _hetero_dict()
    g = Graph.from_hetero(ed, counts)
    assert g.is_hetero and g.node_types == ["paper", "author", "venue"]
    assert g.edge_types == list(ed)
    assert g.type_offsets().tolist() == [0, 30, 50, 53] and g.num_nodes_dict == counts
    assert g.num_edges == sum(v.shape[1] for v in ed.values())
    # within every column edges are grouped by type, then in input order
    dst = torch.repeat_interleave(torch.arange(g.num_nodes), g.in_degrees())
    key = dst * 10 + g.type_per_edge.long()
    assert bool((key[1:] >= key[:-1]).all())
    back, back_counts = g.to_hetero()
    assert back_counts == counts
    for et, ei in ed.items():
        assert torch.equal(back[et], ei), et
    # and the fused COO agrees with the per-type lists
    fused = g.to_edge_index()
    off = g.type_offsets()
    for k, et in enumerate(g.edge_types):
        mine = fused[:, g.type_per_edge == k]
        s_t, d_t = g.node_type_id(et[0]), g.node_type_id(et[2])
        ref = ed[et][:, g.edge_ids[g.type_per_edge == k]]
        assert torch.equal(mine[0] - off[s_t], ref[0]) and torch.equal(mine[1] - off[d_t], ref[1])


def test_from_pyg_heterodata_and_dgl_style_names():
    from torch_geometric.data import HeteroData

    ed, counts = _hetero_dict(1)
    data = HeteroData()
    for t, c in counts.items():
        data[t].num_nodes = c
    for et, ei in ed.items():
        data[et].edge_index = ei
        data[et].w = torch.rand(ei.shape[1])
    g = Graph.from_pyg(data)
    assert g.num_nodes_dict == counts and set(g.edge_types) == set(ed)
    gw = Graph.from_pyg(data, weight_attr="w")
    k = gw.edge_type_id(("paper", "cites", "paper"))
    mask = gw.type_per_edge == k
    assert torch.equal(gw.edge_weight[mask], data["paper", "cites", "paper"].w[gw.edge_ids[mask]])
    assert g.edge_type_id("cites") == g.edge_type_id(("paper", "cites", "paper"))
    with pytest.raises(ValueError, match="not in the graph"):
        g.edge_type_id(("paper", "cites", "author"))
    with pytest.raises(ValueError, match="no edge types"):
        g.edge_type_id("likes")
    with pytest.raises(TypeError, match="a relation name or a .src_type, relation, dst_type"):
        g.edge_type_id(0)  # was "'int' object is not iterable"
    bare = HeteroData()
    bare["paper"].num_nodes = 3
    bare["paper", "cites", "paper"].w = torch.ones(2)
    with pytest.raises(ValueError, match="edge type .* has no edge_index"):  # was PyG's KeyError
        Graph.from_pyg(bare)
    with pytest.raises(ValueError, match="node type 'journal' is not in the graph"):
        g.node_type_id("journal")
    with pytest.raises(ValueError, match="name one"):
        g.node_type_id(None)


def test_homogeneous_graph_is_the_one_type_case():
    g = Graph.from_edge_index(torch.tensor([[0, 1], [1, 2]]))
    assert not g.is_hetero and g.node_types == ["_N"] and g.edge_types == [("_N", "_E", "_N")]
    assert g.type_per_edge is None and g.node_type_offset is None
    assert g.type_offsets().tolist() == [0, 3] and g.node_type_id(None) == 0
    ed, counts = g.to_hetero()
    assert torch.equal(ed[("_N", "_E", "_N")], torch.tensor([[0, 1], [1, 2]])) and counts == {
        "_N": 3
    }


@pytest.mark.parametrize(
    "edges, counts, match",
    [({("a", "r", "b"): torch.tensor([[0], [5]])}, {"a": 1, "b": 2}, "destination id 5"),
     ({("a", "r", "c"): torch.tensor([[0], [0]])}, {"a": 1, "b": 2}, "node type 'c'"),
     ({("a", "r"): torch.tensor([[0], [0]])}, {"a": 1}, "triples"),
     ({("a", "r", "a"): torch.tensor([[0], [-1]])}, {"a": 1}, "negative"),
     ({("a", "r", "a"): torch.tensor([[0.5], [0]])}, {"a": 1}, "integer"),
     ({("a", "r", "a"): torch.tensor([[0], [0]])}, {"a": -1}, ">= 0"),
     ({}, {"a": 1}, "non-empty")],
)  # fmt: skip
def test_from_hetero_bad_input(edges, counts, match):
    with pytest.raises(ValueError, match=match):
        Graph.from_hetero(edges, counts)


def test_typed_constructor_validates_the_typing():
    ed, counts = _hetero_dict()
    g = Graph.from_hetero(ed, counts)
    kw = dict(edge_ids=g.edge_ids, node_type_offset=g.node_type_offset,
              node_types=g.node_types, edge_types=g.edge_types)  # fmt: skip
    Graph(g.indptr, g.indices, type_per_edge=g.type_per_edge, **kw)  # consistent: accepted
    shuffled = g.type_per_edge.flip(0)
    with pytest.raises(ValueError, match="sorted within every destination|source is not"):
        Graph(g.indptr, g.indices, type_per_edge=shuffled, **kw)
    bad = g.type_per_edge.clone()
    bad[0] = 9
    with pytest.raises(ValueError, match="type_per_edge holds type 9"):
        Graph(g.indptr, g.indices, type_per_edge=bad, **kw)
    with pytest.raises(ValueError, match="need type_per_edge"):
        Graph(g.indptr, g.indices, **kw)
    with pytest.raises(ValueError, match="rise from 0"):
        Graph(g.indptr, g.indices, type_per_edge=g.type_per_edge,
              **{**kw, "node_type_offset": torch.tensor([0, 40, 30, 53])})  # fmt: skip


def test_structure_tensors_are_the_sampled_arrays():
    g = Graph.from_hetero({("a", "r", "b"): torch.tensor([[0, 1], [1, 0]])}, {"a": 2, "b": 2})
    ip, ix, eids, tpe, off = g.structure_tensors()
    assert ip is g.indptr and ix is g.indices and eids is g.edge_ids
    assert tpe is g.type_per_edge and off is g.node_type_offset
    assert Graph.from_edge_index(torch.tensor([[0], [1]]), 2).structure_tensors()[3:] == (
        None,
        None,
    )
