"""SampledSubgraph's span and per-type accessors (gnnsys/loaders/base.py)."""

from dataclasses import replace

import pytest
import torch

from gnnsys.loaders.base import SampledSubgraph


def _typed() -> SampledSubgraph:
    # 2 node types (3 + 2 nodes), 2 edge types, 2 hops: edge_ptr [K*L+1] = [0, 2, 3, 3, 5]
    nodes = torch.tensor([0, 1, 2, 10, 11])
    row = torch.tensor([1, 2, 0, 0, 1])
    col = torch.tensor([0, 0, 1, 0, 0])
    return SampledSubgraph(
        nodes, row, col, [2, 2, 1], [3, 2],
        node_offsets=torch.tensor([0, 3, 5]),
        type_num_sampled_nodes=torch.tensor([[1, 1], [1, 1], [1, 0]]),
        edge_ptr=torch.tensor([0, 2, 3, 3, 5]),
        node_types=["a", "b"], edge_types=[("a", "r", "a"), ("b", "s", "a")],
    )  # fmt: skip


def test_edge_span_and_type_nodes_read_the_offsets():
    sub = _typed()
    assert [sub.edge_span(h, e) for e in range(2) for h in (1, 2)] == [(0, 2), (2, 3), (3, 3),
                                                                         (3, 5)]  # fmt: skip
    assert all(isinstance(x, int) for x in sub.edge_span(2, 1))
    assert sub.type_nodes(0).tolist() == [0, 1, 2]
    assert sub.type_nodes(1).tolist() == [10, 11]


def test_type_edge_range_and_counts_cover_every_hop_of_a_type():
    sub = _typed()
    assert sub.type_edge_range(0) == (0, 3) and sub.type_edge_range(1) == (3, 5)
    assert sub.type_edge_counts(0) == [2, 1] and sub.type_edge_counts(1) == [0, 2]
    seeds_only = SampledSubgraph(torch.arange(2), torch.zeros(0, dtype=torch.long),
                                 torch.zeros(0, dtype=torch.long), [2], [])  # fmt: skip
    assert seeds_only.type_edge_range() == (0, 0) and seeds_only.type_edge_counts() == []


def test_spans_follow_a_reassigned_offsets_tensor():
    # the spans are remembered as a list per offsets tensor: a new tensor in the field (or a
    # replace() copy holding another one) must be read afresh, never the old list
    sub = _typed()
    assert sub.edge_span(1, 0) == (0, 2)
    sub.edge_ptr = torch.tensor([0, 1, 3, 4, 5])
    assert sub.edge_span(1, 0) == (0, 1)
    assert sub.type_nodes(1).tolist() == [10, 11]
    other = replace(sub, node_offsets=torch.tensor([0, 4, 5]))
    assert other.type_nodes(1).tolist() == [11]
    assert sub.type_nodes(1).tolist() == [10, 11]
    assert other.edge_span(2, 1) == (4, 5)


def test_span_arguments_are_checked():
    sub = _typed()
    with pytest.raises(ValueError, match="hop must be in 1..2"):
        sub.edge_span(3, 0)
    with pytest.raises(ValueError, match="etype must be in 0..1"):
        sub.edge_span(1, 2)
    untyped = SampledSubgraph(torch.arange(3), torch.tensor([1]), torch.tensor([0]), [1, 2], [1])
    assert untyped.edge_span(1) == (0, 1)
    with pytest.raises(ValueError, match="etype must be 0"):
        untyped.edge_span(1, 1)
    with pytest.raises(ValueError, match="ntype must be 0"):
        untyped.type_nodes(1)


def test_to_copies_every_field_and_reads_spans_afresh():
    sub = _typed()
    assert sub.edge_span(2, 1) == (3, 5)  # (remembered on sub)
    moved = sub.to("cpu")
    assert moved is not sub and moved.edge_span(2, 1) == (3, 5)
    assert torch.equal(moved.edge_index(), sub.edge_index())
    assert moved.type_nodes(1).tolist() == [10, 11]
