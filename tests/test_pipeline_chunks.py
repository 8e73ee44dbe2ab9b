"""gnnsys.pipeline_parallel.chunks: chunk blocks (fresh/stale split), ChunkSampler, ExchangePlan."""

import pytest
import torch

from gnnsys.graph import Graph
from gnnsys.loaders import Loader, SampledSubgraph, SampleKey, Sampler
from gnnsys.pipeline_parallel.chunks import ChunkSampler, ExchangePlan, inner_order


def _graph(n=90, seed=0, weighted=True):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, 5 * n), generator=g)
    w = torch.rand(ei.shape[1], generator=g) if weighted else None
    return Graph.from_edge_index(ei, n, edge_weight=w)


def _check_block_edges(graph, block):
    # Every inner node's local column lists exactly its incoming edges (sources and weights).
    indptr, indices, num_src, num_dst = block.adj_csc()
    assert num_src == block.nodes.numel() and num_dst == block.num_inner
    for i in range(num_dst):
        v = int(block.nodes[i])
        lo, hi = int(graph.indptr[v]), int(graph.indptr[v + 1])
        want = list(zip(graph.indices[lo:hi].tolist(), graph.edge_weight[lo:hi].tolist()))
        cols = indices[indptr[i] : indptr[i + 1]].long()
        got = list(zip(block.nodes[cols].tolist(), block.edge_weight[indptr[i] : indptr[i + 1]]))
        assert sorted(want) == sorted((a, float(b)) for a, b in got)


def _check_hot_first(graph, inner, members):
    # The chunk's own nodes, each once, by in-degree descending, ties by id ascending.
    assert sorted(inner.tolist()) == members.tolist()
    deg = (graph.indptr[1:] - graph.indptr[:-1])[inner]
    keys = list(zip((-deg).tolist(), inner.tolist()))
    assert keys == sorted(keys)


def test_inner_order_puts_the_most_read_nodes_first():
    degree = torch.tensor([2, 5, 0, 5, 1])
    assert inner_order(torch.tensor([0, 1, 2, 3, 4]), degree).tolist() == [1, 3, 0, 4, 2]
    assert inner_order(torch.tensor([4, 2]), degree).tolist() == [4, 2]
    assert inner_order(torch.empty(0, dtype=torch.int64), degree).numel() == 0


def test_blocks_hold_all_incoming_edges_split_fresh_stale():
    graph = _graph()
    chunk_of = torch.arange(graph.num_nodes) % 3
    sampler = ChunkSampler(graph, chunk_of)
    ei = graph.to_edge_index()
    total_stale = 0
    for pos, c in enumerate([0, 1, 2]):
        block = sampler.block(c)
        assert block.position == pos
        _check_block_edges(graph, block)
        _check_hot_first(graph, block.inner_nodes, torch.nonzero(chunk_of == c).flatten())
        assert block.num_remote == 0
        assert bool((chunk_of[block.fresh_nodes] < c).all())
        assert bool((chunk_of[block.stale_nodes] > c).all())
        assert torch.unique(block.nodes).numel() == block.nodes.numel()
        total_stale += block.num_stale_edges
    # Stale reads per layer = edges from a later chunk into an earlier one.
    expect = int((chunk_of[ei[0]] > chunk_of[ei[1]]).sum())
    assert sampler.stale_edges() == total_stale == expect


@pytest.mark.parametrize("groups", [1, 2])
def test_history_rows_are_the_inner_nodes_other_blocks_read(groups):
    # Only these rows are written to the histories: every node any block of the group reads
    # as fresh or stale is among them, and no other node.
    graph = _graph()
    n = graph.num_nodes
    chunk_of = torch.arange(n) % 3
    owner = (torch.arange(n) // 7) % groups
    sampler = ChunkSampler(graph, chunk_of, owner=owner, group=0, num_groups=groups)
    blocks = [sampler.block(c) for c in range(3)]
    read = set()
    for b in blocks:
        read |= set(b.fresh_nodes.tolist()) | set(b.stale_nodes.tolist())
    kept = set()
    for b in blocks:
        inner = b.inner_nodes
        assert torch.equal(b.history_nodes, inner[b.history_rows])
        assert b.history_rows.tolist() == sorted(b.history_rows.tolist())
        assert set(b.history_nodes.tolist()) == read & set(inner.tolist())
        kept |= set(b.history_nodes.tolist())
    mine = set(torch.nonzero(owner == 0).flatten().tolist())
    assert kept == read & mine and 0 < len(kept) < len(mine)
    # A one-chunk block (the trainers' exact passes) takes the rows the chunks read.
    whole = ChunkSampler(graph, torch.zeros(n, dtype=torch.int64), 1, owner=owner, group=0,
                         num_groups=groups).block(0)  # fmt: skip
    assert whole.history_rows.numel() == 0  # one chunk reads nothing from a history
    exact = sampler.with_history_rows(whole)
    assert set(exact.history_nodes.tolist()) == kept
    assert torch.equal(exact.history_nodes, exact.inner_nodes[exact.history_rows])


def test_order_changes_fresh_and_stale():
    graph = _graph()
    chunk_of = torch.arange(graph.num_nodes) % 3
    sampler = ChunkSampler(graph, chunk_of, order=[2, 0, 1])
    first = sampler.block(2)
    assert first.position == 0 and first.num_fresh == 0
    _check_block_edges(graph, first)
    last = sampler.block(1)
    assert last.num_stale == 0 and last.num_stale_edges == 0
    ei = graph.to_edge_index()
    pos = torch.tensor([1, 2, 0])
    assert sampler.stale_edges() == int((pos[chunk_of[ei[0]]] > pos[chunk_of[ei[1]]]).sum())


def test_block_structure_is_the_same_tensors_in_every_order():
    # Only which history rows are fresh changes with the order: the sparse ops' caches (checks,
    # transposed CSC) keyed on the block's tensors then serve every epoch.
    graph = _graph()
    chunk_of = torch.arange(graph.num_nodes) % 3
    sampler = ChunkSampler(graph, chunk_of)
    before = sampler.block(1)
    sampler.set_order([2, 1, 0])
    after = sampler.block(1)
    for name in ("nodes", "indptr", "indices", "history_rows", "history_nodes"):
        assert getattr(after, name) is getattr(before, name), name
    assert before.indices.dtype == graph.indices.dtype
    run = after.history_run
    for b in (before, after):
        both = torch.cat([b.fresh_pos, b.stale_pos]).sort().values
        assert torch.equal(both, torch.arange(run.numel()))
        assert torch.equal(b.fresh_nodes, run[b.fresh_pos])
        assert torch.equal(b.stale_nodes, run[b.stale_pos])
        src = b.indices.long()
        stale_rows = b.num_inner + b.num_remote + b.stale_pos
        assert b.num_stale_edges == int(torch.isin(src, stale_rows).sum())
    # chunk 1 after chunk 0: chunk 0's rows fresh; after chunk 2: chunk 2's rows fresh
    assert bool((chunk_of[before.fresh_nodes] == 0).all())
    assert bool((chunk_of[after.fresh_nodes] == 2).all())


def test_sampler_protocol_and_loader():
    graph = _graph()
    chunk_of = torch.arange(graph.num_nodes) % 4
    sampler = ChunkSampler(graph, chunk_of)
    assert isinstance(sampler, Sampler)
    sub = sampler.sample(torch.tensor([2]), SampleKey(seed=1))
    assert isinstance(sub, SampledSubgraph)
    block = sub.metadata["block"]
    assert sub.layered and sub.num_seeds == block.num_inner
    assert sub.num_sampled_edges == [block.num_edges]
    assert torch.equal(sub.row, block.indices.long())
    ip = block.indptr
    assert torch.equal(sub.col, torch.repeat_interleave(torch.arange(block.num_inner), ip.diff()))
    sampler.set_order([2, 0, 1, 3])  # another order: the same structure, built once
    again = sampler.sample(torch.tensor([2]), SampleKey(seed=1))
    assert again.row is sub.row and again.col is sub.col
    assert again.metadata["block"].position == 0 and block.position == 2
    loader = Loader(sampler, torch.tensor([3, 1, 0, 2]), batch_size=1, prefetch=0)
    seen = [b.subgraph.metadata["chunk"] for b in loader]
    assert seen == [3, 1, 0, 2]


def test_groups_remote_run_matches_exchange_plan():
    graph = _graph(n=120)
    n = graph.num_nodes
    owner = (torch.arange(n) * 3) // n
    chunk_of = torch.arange(n) % 2
    plan = ExchangePlan(graph, chunk_of, owner, 2, 3)
    ei = graph.to_edge_index()
    for g in range(3):
        sampler = ChunkSampler(graph, chunk_of, 2, owner=owner, group=g, num_groups=3)
        for c in range(2):
            block = sampler.block(c)
            _check_block_edges(graph, block)
            assert bool((owner[block.inner_nodes] == g).all())
            assert bool((chunk_of[block.remote_nodes] == c).all())
            assert bool((owner[block.remote_nodes] != g).all())
            parts = [plan.sends(c, q, g)[0] for q in range(3) if q != g]
            assert torch.equal(torch.cat(parts), block.remote_nodes)
            assert block.remote_counts == [
                0 if q == g else plan.sends(c, q, g)[0].numel() for q in range(3)
            ]
    # Every node read across groups is sent exactly once per reading group; live iff read
    # by a node of the same chunk.
    rows = 0
    for a in range(3):
        for b in range(3):
            if a == b:
                continue
            need = set()
            live = set()
            for s, d in ei.t().tolist():
                if owner[s] == a and owner[d] == b:
                    need.add(s)
                    if chunk_of[s] == chunk_of[d]:
                        live.add(s)
            got_live = set()
            got_all = set()
            for c in range(2):
                lv, hs = plan.sends(c, a, b)
                got_live |= set(lv.tolist())
                got_all |= set(lv.tolist()) | set(hs.tolist())
                assert not set(lv.tolist()) & set(hs.tolist())
            assert got_all == need and got_live == live
            rows += len(need)
    assert plan.total_rows() == rows


def test_errors():
    graph = _graph(n=10)
    with pytest.raises(ValueError, match="chunk_of must have one entry per node"):
        ChunkSampler(graph, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="chunk_of holds id 5"):
        ChunkSampler(graph, torch.full((10,), 5), 2)
    with pytest.raises(ValueError, match="chunk_of must hold integer"):
        ChunkSampler(graph, torch.zeros(10))
    sampler = ChunkSampler(graph, torch.arange(10) % 2)
    with pytest.raises(ValueError, match="order must be a permutation"):
        sampler.set_order([0, 0])
    with pytest.raises(ValueError, match="seeds holds id 7"):
        sampler.sample(torch.tensor([7]))
    with pytest.raises(ValueError, match="exactly one chunk id"):
        sampler.sample(torch.tensor([0, 1]))
    with pytest.raises(IndexError, match="chunk must be in 0..1, got 2"):
        sampler.block(2)
    with pytest.raises(ValueError, match="group must be in 0..0"):
        ChunkSampler(graph, torch.arange(10) % 2, group=1)
