"""Tests for gnnsys.Block: structure, DGL-style data frames, scopes, devices, validation."""

import pytest
import torch

from gnnsys.block import EID, NID, Block, edge_view


def _block(**kw):
    # 2 destination nodes (local 0, 1), 4 source nodes; edges 1->0, 2->0, 3->1, 0->1.
    indptr = torch.tensor([0, 2, 4])
    indices = torch.tensor([1, 2, 3, 0])
    return Block(indptr, indices, 4, **kw)


def test_sizes_and_degrees():
    b = _block()
    assert (b.num_src_nodes(), b.num_dst_nodes(), b.num_edges()) == (4, 2, 4)
    assert b.number_of_dst_nodes() == 2 and b.num_nodes() == 6
    assert b.in_degrees().tolist() == [2, 2]
    assert b.out_degrees().tolist() == [1, 1, 1, 1]
    assert b.in_degrees(1) == 2 and isinstance(b.in_degrees(1), int)
    assert b.in_degrees(torch.tensor([1, 0])).tolist() == [2, 2]
    assert b.is_block and b.device == torch.device("cpu")
    assert b.srcnodes().tolist() == [0, 1, 2, 3] and b.dstnodes().tolist() == [0, 1]
    assert repr(b) == "Block(num_src_nodes=4, num_dst_nodes=2, num_edges=4)"


def test_edges_forms_and_orders():
    b = _block()
    u, v = b.edges()
    assert u.tolist() == [1, 2, 3, 0] and v.tolist() == [0, 0, 1, 1]
    assert b.edges(form="eid").tolist() == [0, 1, 2, 3]
    u, v, e = b.edges(form="all", order="srcdst")
    assert u.tolist() == [0, 1, 2, 3] and v.tolist() == [1, 0, 0, 1] and e.tolist() == [3, 0, 1, 2]
    with pytest.raises(ValueError, match="form"):
        b.edges(form="coo")
    with pytest.raises(ValueError, match="order"):
        b.edges(order="random")


def test_adj_csc_protocol():
    b = _block()
    indptr, indices, ns, nd = b.adj_csc()
    assert indptr.tolist() == [0, 2, 4] and indices.tolist() == [1, 2, 3, 0] and (ns, nd) == (4, 2)


def test_ids_and_dst_prefix():
    src_ids = torch.tensor([10, 11, 12, 13])
    b = _block(src_ids=src_ids, edge_ids=torch.tensor([5, 6, 7, 8]))
    assert b.srcdata[NID].tolist() == [10, 11, 12, 13]
    assert b.dstdata[NID].tolist() == [10, 11]
    assert b.edata[EID].tolist() == [5, 6, 7, 8]
    assert b.srcnodes.data is b.srcdata and b.dstnodes.data is b.dstdata
    assert b.ndata is b.srcdata


def test_frame_assignment_checks():
    b = _block()
    b.srcdata["h"] = torch.ones(4, 3)
    assert "h" in b.srcdata and "h" not in b.dstdata  # as DGL: src and dst frames are separate
    with pytest.raises(ValueError, match="'bad' must have 2 rows"):
        b.dstdata["bad"] = torch.ones(3)
    with pytest.raises(TypeError, match="torch.Tensor"):
        b.edata["w"] = [1, 2, 3, 4]
    with pytest.raises(KeyError, match="nope"):
        b.srcdata["nope"]
    del b.srcdata["h"]
    assert "h" not in b.srcdata


def test_lazy_parent_columns_and_dst_view():
    feat = torch.arange(20, dtype=torch.float32).view(10, 2)
    label = torch.arange(10) * 3
    ew = torch.arange(50, dtype=torch.float32)
    b = _block(
        src_ids=torch.tensor([7, 3, 9, 0]),
        edge_ids=torch.tensor([1, 2, 3, 4]),
        node_parent={"feat": feat, "label": label},
        edge_parent={"w": ew},
        edge_parent_ids=torch.tensor([40, 41, 42, 43]),
    )
    assert set(b.srcdata.keys()) == {"feat", "label", NID}
    assert torch.equal(b.srcdata["feat"], feat[[7, 3, 9, 0]])
    # dst reuses the first rows of the gathered source column: same storage, no second gather
    assert torch.equal(b.dstdata["feat"], feat[[7, 3]])
    assert b.dstdata["feat"].data_ptr() == b.srcdata["feat"].data_ptr()
    assert b.dstdata["label"].tolist() == [21, 9]
    assert b.edata["w"].tolist() == [40.0, 41.0, 42.0, 43.0]
    # a user column overrides the parent; deleting hides the parent column
    b.srcdata["feat"] = torch.zeros(4, 2)
    assert float(b.srcdata["feat"].abs().sum()) == 0.0
    del b.srcdata["label"]
    assert "label" not in b.srcdata and "label" in b.dstdata


def test_local_scope_restores():
    b = _block(src_ids=torch.arange(4), node_parent={"x": torch.ones(4, 1)})
    b.srcdata["keep"] = torch.zeros(4)
    with b.local_scope() as g:
        assert g is b
        g.srcdata["tmp"] = torch.ones(4)
        g.srcdata["keep"] = torch.ones(4)
        g.edata["e"] = torch.ones(4)
        del g.srcdata["x"]
        assert "tmp" in g.srcdata and "x" not in g.srcdata
    assert "tmp" not in b.srcdata and "e" not in b.edata and "x" in b.srcdata
    assert float(b.srcdata["keep"].sum()) == 0.0


def test_to_same_device_and_copy():
    b = _block(src_ids=torch.arange(4))
    b.srcdata["h"] = torch.ones(4)
    assert b.to("cpu") is b
    c = b.cpu()
    assert c.srcdata["h"] is b.srcdata["h"]


@pytest.mark.gpu
def test_to_cuda():
    b = _block(src_ids=torch.arange(4), node_parent={"x": torch.arange(4.0)})
    b.srcdata["h"] = torch.ones(4)
    c = b.to("cuda")
    assert c.device.type == "cuda" and c.srcdata["h"].is_cuda and c.dstdata[NID].is_cuda
    assert c.srcdata["x"].is_cuda and c.adj_csc()[0].is_cuda
    assert b.device.type == "cpu" and not b.srcdata["h"].is_cuda
    with pytest.raises(ValueError, match="on cpu but the graph is on cuda"):
        c.srcdata["y"] = torch.ones(4)


def test_validation_errors():
    with pytest.raises(ValueError, match="prefix"):
        Block(torch.tensor([0, 0, 0, 0]), torch.tensor([], dtype=torch.int64), 2)
    with pytest.raises(IndexError, match="source id 5"):
        Block(torch.tensor([0, 1]), torch.tensor([5]), 2)
    with pytest.raises(IndexError, match="source id -1"):
        Block(torch.tensor([0, 1]), torch.tensor([-1]), 2)
    with pytest.raises(ValueError, match="indptr must be int64"):
        Block(torch.tensor([0, 1], dtype=torch.int32), torch.tensor([0]), 2)
    with pytest.raises(ValueError, match="integer tensor"):
        Block(torch.tensor([0, 1]), torch.tensor([0.0]), 2)
    with pytest.raises(ValueError, match="non-decreasing"):
        Block(torch.tensor([0, 2, 1]), torch.tensor([0]), 2)
    with pytest.raises(ValueError, match="ends at"):
        Block(torch.tensor([0, 2]), torch.tensor([0]), 2)
    with pytest.raises(ValueError, match="src_ids must have shape"):
        Block(torch.tensor([0, 1]), torch.tensor([0]), 2, src_ids=torch.arange(3))
    with pytest.raises(ValueError, match="num_src_nodes"):
        Block(torch.tensor([0, 1]), torch.tensor([0]), 2.0)
    b = _block()
    with pytest.raises(IndexError, match="v=5"):
        b.in_degrees(5)
    with pytest.raises(IndexError, match="u holds id 9"):
        b.out_degrees(torch.tensor([0, 9]))
    with pytest.raises(ValueError, match="integer node ids"):
        b.in_degrees(torch.tensor([0.0]))


def test_type_arguments_accept_only_the_homogeneous_names():
    b = _block()
    # None, or DGL's default names for the one node / edge type, answer as untyped calls
    for nt in (None, "_N"):
        assert (b.num_src_nodes(nt), b.num_dst_nodes(nt), b.num_nodes(nt)) == (4, 2, 6)
        assert b.srcnodes(nt).tolist() == [0, 1, 2, 3] and b.dstnodes(nt).tolist() == [0, 1]
    for et in (None, "_E", ("_N", "_E", "_N")):
        assert b.num_edges(et) == 4 and b.edges(etype=et)[0].tolist() == [1, 2, 3, 0]
        assert b.in_degrees(etype=et).tolist() == [2, 2]
        assert b.out_degrees(etype=et).tolist() == [1, 1, 1, 1]
    assert (b.srctypes, b.dsttypes, b.etypes) == (["_N"], ["_N"], ["_E"])
    assert b.canonical_etypes == [("_N", "_E", "_N")]
    node_calls = [b.num_src_nodes, b.num_dst_nodes, b.num_nodes, b.srcnodes, b.dstnodes]
    for call in node_calls:
        with pytest.raises(ValueError, match="ntype='paper'.*only node type is '_N'"):
            call("paper")
    edge_calls = [
        b.num_edges,
        lambda et: b.edges(etype=et),
        lambda et: b.in_degrees(etype=et),
        lambda et: b.out_degrees(etype=et),
    ]
    for call in edge_calls:
        with pytest.raises(ValueError, match="etype='cites'.*only edge type is '_E'"):
            call("cites")
        with pytest.raises(ValueError, match="etype=.*only edge type"):
            call(("_N", "cites", "_N"))


def test_empty_block():
    b = Block(torch.zeros(1, dtype=torch.int64), torch.zeros(0, dtype=torch.int64), 0)
    assert b.num_edges() == 0 and b.in_degrees().numel() == 0
    u, v = b.edges()
    assert u.numel() == 0 and v.numel() == 0


@pytest.mark.parametrize("dst_sorted", [False, True])
def test_edge_view_orders_and_forms(dst_sorted):
    g = torch.Generator().manual_seed(0)
    src = torch.randint(0, 7, (60,), generator=g)
    dst = torch.randint(0, 5, (60,), generator=g)
    if dst_sorted:
        dst = torch.sort(dst).values
    s, d, e = edge_view(src, dst, "all", "srcdst", dst_sorted=dst_sorted)
    key = s * 10 + d
    assert bool((key[1:] >= key[:-1]).all())
    assert torch.equal(src[e], s) and torch.equal(dst[e], d)
    assert sorted(e.tolist()) == list(range(60))
    # equal (src, dst) pairs keep edge-id order (stable)
    same = key[1:] == key[:-1]
    assert bool((e[1:][same] > e[:-1][same]).all())
    assert torch.equal(edge_view(src, dst, "eid", "eid"), torch.arange(60))
    u, v = edge_view(src, dst, "uv", "eid")
    assert torch.equal(u, src) and torch.equal(v, dst)
    with pytest.raises(ValueError, match="form must be one of"):
        edge_view(src, dst, "xy", "eid")
    with pytest.raises(ValueError, match="order must be one of"):
        edge_view(src, dst, "uv", "dst")
