"""gnnsys.pipeline_parallel.partition: vertex partitioning, edge cut and halo accounting."""

import pytest
import torch

from gnnsys.graph import Graph
from gnnsys.pipeline_parallel.partition import (
    _has_pymetis,
    assign_parts,
    balance_classes,
    describe,
    halo_sizes,
    induced_subgraph,
    nested_partition,
    partition,
    symmetrize,
)


def _communities(n=200, k=4, seed=0):
    # k dense blocks of consecutive ids with a few random cross edges, directed one way only.
    g = torch.Generator().manual_seed(seed)
    block = torch.arange(n) * k // n
    src = torch.randint(0, n, (6 * n,), generator=g)
    off = torch.randint(-8, 9, (6 * n,), generator=g)
    dst = (src + off).clamp(0, n - 1)
    keep = block[src] == block[dst]
    cross_s = torch.randint(0, n, (n // 10,), generator=g)
    cross_d = torch.randint(0, n, (n // 10,), generator=g)
    ei = torch.stack([torch.cat([src[keep], cross_s]), torch.cat([dst[keep], cross_d])])
    return Graph.from_edge_index(ei, n), block


def _brute(graph, part, k):
    ei = graph.to_edge_index()
    und = set()
    for s, d in ei.t().tolist():
        if s != d:
            und.add((min(s, d), max(s, d)))
    cut = sum(1 for a, b in und if part[a] != part[b])
    halo = [set() for _ in range(k)]
    for s, d in ei.t().tolist():
        if part[s] != part[d]:
            halo[int(part[d])].add(s)
    return cut, [len(h) for h in halo]


METHODS = ["bfs", "random"] + (["metis"] if _has_pymetis() else [])


@pytest.mark.parametrize("method", METHODS)
def test_parts_balanced_and_numbers_exact(method):
    graph, _ = _communities()
    p = partition(graph, 4, method=method, seed=3)
    assert p.method == method
    assert p.part.dtype == torch.int64 and p.part.shape == (graph.num_nodes,)
    assert sorted(torch.unique(p.part).tolist()) == [0, 1, 2, 3]
    assert sum(p.part_sizes) == graph.num_nodes
    if method != "metis":
        assert max(p.part_sizes) - min(p.part_sizes) <= 1
    cut, halo = _brute(graph, p.part, 4)
    assert p.edge_cut == cut
    assert p.halo_sizes == halo
    assert p.total_halo == sum(halo)
    assert p.summary()["total_halo"] == sum(halo)


@pytest.mark.parametrize("method", METHODS)
def test_deterministic_with_seed(method):
    graph, _ = _communities()
    a = partition(graph, 3, method=method, seed=7)
    b = partition(graph, 3, method=method, seed=7)
    assert torch.equal(a.part, b.part)


def test_locality_beats_random():
    graph, _ = _communities(n=400)
    bfs = partition(graph, 4, method="bfs", seed=0)
    rnd = partition(graph, 4, method="random", seed=0)
    assert bfs.edge_cut < rnd.edge_cut / 2
    if _has_pymetis():
        assert partition(graph, 4, method="metis").edge_cut < rnd.edge_cut / 2


def test_auto_names_the_method_used():
    graph, _ = _communities()
    assert partition(graph, 2).method == ("metis" if _has_pymetis() else "bfs")


def test_one_part_and_more_parts_than_nodes():
    graph, _ = _communities(n=10, k=2)
    one = partition(graph, 1)
    assert one.part.tolist() == [0] * 10 and one.edge_cut == 0 and one.halo_sizes == [0]
    many = partition(graph, 13)
    assert many.part.tolist() == list(range(10))
    assert many.part_sizes == [1] * 10 + [0] * 3
    assert len(many.halo_sizes) == 13


@pytest.mark.parametrize("method", ["random", "bfs"])
@pytest.mark.parametrize("k", [1, 3, 500])
def test_assign_parts_is_partitions_map(method, k, monkeypatch):
    # the map partition() describes; only bfs/metis (with 2 <= k < n) build the symmetrised copy
    from gnnsys.pipeline_parallel import partition as mod

    g, _ = _communities()
    want = partition(g, k, method=method, seed=3)
    copies = []
    real = mod.symmetrize
    monkeypatch.setattr(mod, "symmetrize", lambda graph: copies.append(1) or real(graph))
    part, used, sym = assign_parts(g, k, method=method, seed=3)
    assert torch.equal(part, want.part) and used == want.method
    copied = method == "bfs" and 1 < k < g.num_nodes
    assert (sym is not None) == copied and len(copies) == int(copied)


def test_symmetrise_and_dedupe_first():
    # Duplicated and one-way edges plus a self loop: the cut counts each undirected edge once.
    ei = torch.tensor([[0, 0, 1, 2, 2, 3], [1, 1, 2, 3, 2, 0]])
    graph = Graph.from_edge_index(ei, 4)
    sym = symmetrize(graph)
    assert sym.num_edges == 8  # 4 undirected edges, both directions, loop dropped
    p = describe(graph, torch.tensor([0, 0, 1, 1]), 2)
    assert p.edge_cut == 2
    # halo counts directed in-edges: part 1 reads node 1 (1->2); part 0 reads node 3 (3->0)
    assert p.halo_sizes == [1, 1]
    assert halo_sizes(graph, torch.tensor([0, 0, 1, 1]), 2).tolist() == [1, 1]


def test_nested_partition_chunks_inside_groups():
    graph, _ = _communities(n=240)
    chunk_of, owner, groups = nested_partition(graph, 2, 3, method="bfs", seed=1)
    assert groups.num_parts == 2
    for g in range(2):
        inside = chunk_of[owner == g]
        assert sorted(torch.unique(inside).tolist()) == [0, 1, 2]
    assert torch.equal(owner, groups.part)


def test_induced_subgraph():
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    sub = induced_subgraph(Graph.from_edge_index(ei, 4), torch.tensor([1, 2, 3]))
    assert sub.num_nodes == 3
    assert sorted(map(tuple, sub.to_edge_index().t().tolist())) == [(0, 1), (1, 2)]


def test_errors_name_the_argument():
    graph, _ = _communities(n=20)
    with pytest.raises(ValueError, match="num_parts must be >= 1, got 0"):
        partition(graph, 0)
    with pytest.raises(TypeError, match="num_parts must be an int"):
        partition(graph, 2.0)
    with pytest.raises(ValueError, match="method must be one of"):
        partition(graph, 2, method="spectral")
    with pytest.raises(TypeError, match="graph must be a gnnsys.Graph"):
        partition(graph.to_edge_index(), 2)
    with pytest.raises(ValueError, match="part holds id 5"):
        describe(graph, torch.full((20,), 5), 2)
    with pytest.raises(ValueError, match="part has 3 entries for 20 vertices"):
        describe(graph, torch.zeros(3, dtype=torch.long), 2)
    with pytest.raises(TypeError, match="vertex_weights must hold integers"):
        partition(graph, 2, vertex_weights=torch.ones(20))
    with pytest.raises(ValueError, match=r"vertex_weights must be \[20\]"):
        partition(graph, 2, vertex_weights=torch.ones(19, dtype=torch.long))
    with pytest.raises(ValueError, match="vertex_weights must be >= 0"):
        partition(graph, 2, vertex_weights=-torch.ones(20, dtype=torch.long))
    with pytest.raises(TypeError, match="balance_types must hold integers or bools"):
        partition(graph, 2, balance_types=torch.ones(20))
    with pytest.raises(ValueError, match=r"balance_types must be \[20\]"):
        partition(graph, 2, balance_types=torch.ones(19, dtype=torch.long))
    with pytest.raises(ValueError, match="part holds id 2"):
        balance_classes(None, torch.full((20,), 2), 2, torch.zeros(20, dtype=torch.long))
    with pytest.raises(ValueError, match="part has 19 entries for the graph's 20 vertices"):
        balance_classes(symmetrize(graph), torch.zeros(19).long(), 2, torch.zeros(19).long())


@pytest.mark.skipif(not _has_pymetis(), reason="METIS options need pymetis")
def test_metis_recursive_bisection_and_vertex_weights():
    graph, block = _communities(n=400, k=8)
    kway = partition(graph, 8, method="metis", seed=3, recursive=False)
    rec = partition(graph, 8, method="metis", seed=3, recursive=True)
    assert torch.equal(partition(graph, 8, method="metis", seed=3).part, rec.part)  # pymetis's
    # default up to 8 parts (and k-way above):
    assert torch.equal(
        partition(graph, 9, method="metis", seed=3).part,
        partition(graph, 9, method="metis", seed=3, recursive=False).part,
    )
    again = partition(graph, 8, method="metis", seed=3, recursive=True)
    assert torch.equal(rec.part, again.part)  # deterministic given the seed
    assert not torch.equal(rec.part, kway.part)  # another algorithm
    assert sorted(rec.part.unique().tolist()) == list(range(8))
    assert rec.edge_cut < partition(graph, 8, method="random").edge_cut / 2
    # weights: every vertex of the first 100 weighs 10, the rest 1, so a part balancing the
    # weight sums holds far fewer of the heavy vertices than a count-balanced part would
    heavy = (torch.arange(400) < 100).long() * 9 + 1

    def weight_sums(p):
        return torch.zeros(4, dtype=torch.long).index_add_(0, p.part, heavy)

    sums = weight_sums(partition(graph, 4, method="metis", seed=3, vertex_weights=heavy))
    assert int(sums.max()) <= 1.1 * int(heavy.sum()) / 4
    assert int(sums.max()) < int(weight_sums(partition(graph, 4, method="metis", seed=3)).max())


def _share_cap(count, k):
    return max(-(-count // k), int(1.03 * count / k))


def _class_counts(part, classes, k):
    return torch.stack([torch.bincount(part[classes == c], minlength=k) for c in classes.unique()])


@pytest.mark.parametrize("method", METHODS)
def test_balance_types_spreads_every_class_moving_only_the_surplus(method):
    # the first community is all "training" nodes (a mask clustered in one region, as in real
    # graphs): a partition that follows the communities piles it into one part
    graph, block = _communities(n=400, k=4)
    mask = block == 0
    classes = mask.long() + 2 * (torch.arange(400) % 3 == 0).long()  # 4 classes, 2 clustered
    plain = partition(graph, 4, method=method, seed=1)
    bal = partition(graph, 4, method=method, seed=1, balance_types=classes)
    assert bal.method == method
    before, after = _class_counts(plain.part, classes, 4), _class_counts(bal.part, classes, 4)
    caps = torch.tensor([_share_cap(int((classes == c).sum()), 4) for c in classes.unique()])
    assert bool((after.max(1).values <= caps).all())
    # only the surplus moves: one vertex per count above its class's cap
    surplus = int((before - caps[:, None]).clamp(min=0).sum())
    assert int((plain.part != bal.part).sum()) == surplus
    if method != "random":
        assert surplus > 0  # the constraint binds
        # a surplus vertex goes where its neighbours are: a smaller cut than moving the same
        # surplus to the emptiest parts with no regard for neighbours
        blind = balance_classes(None, plain.part, 4, classes.unique(return_inverse=True)[1])
        assert bal.edge_cut < describe(graph, blind, 4).edge_cut
        assert bal.edge_cut < partition(graph, 4, method="random").edge_cut / 2
    again = partition(graph, 4, method=method, seed=1, balance_types=classes)
    assert torch.equal(again.part, bal.part)  # deterministic
    # a bool mask is two classes; an already balanced partition is left as it is
    assert torch.equal(
        partition(graph, 4, method=method, seed=1, balance_types=mask).part,
        partition(graph, 4, method=method, seed=1, balance_types=mask.long() * 7).part,
    )
    even = torch.arange(400) % 2
    assert torch.equal(balance_classes(symmetrize(graph), block, 4, even), block)
    # as many classes as vertices (ids passed by mistake): nothing to move, in O(N + k) memory
    assert torch.equal(balance_classes(symmetrize(graph), block, 4, torch.arange(400)), block)


def test_balance_types_with_vertex_weights_keeps_the_weight_sums():
    # moves also respect the weight sums (within 3% of the mean) where a part has room
    graph, block = _communities(n=400, k=4)
    weights = (torch.arange(400) % 5 + 1).long()
    classes = (block == 1).long()
    part = balance_classes(symmetrize(graph), block, 4, classes, vertex_weights=weights)
    counts = _class_counts(part, classes, 4)
    assert int(counts[1].max()) <= _share_cap(100, 4)
    sums = torch.zeros(4, dtype=torch.long).index_add_(0, part, weights)
    assert int(sums.max()) <= max(-(-int(weights.sum()) // 4), int(1.03 * int(weights.sum()) / 4))
