"""Tests for gnnsys.Block: structure, DGL-style data frames, scopes, devices, validation; typed
blocks (several node and edge types: per-type sizes and frames, relation views, DGL's type
rules)."""

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
        assert (b.num_src_nodes(nt), b.num_dst_nodes(nt)) == (4, 2)
        assert b.srcnodes(nt).tolist() == [0, 1, 2, 3] and b.dstnodes(nt).tolist() == [0, 1]
    # DGL's block: num_nodes() counts both sides, a bare type name resolves to the source side
    assert (b.num_nodes(), b.num_nodes("_N"), b.num_nodes("DST/_N"), b.num_nodes("SRC/_N")) == (
        6,
        4,
        2,
        4,
    )
    for et in (None, "_E", ("_N", "_E", "_N")):
        assert b.num_edges(et) == 4 and b.edges(etype=et)[0].tolist() == [1, 2, 3, 0]
        assert b.in_degrees(etype=et).tolist() == [2, 2]
        assert b.out_degrees(etype=et).tolist() == [1, 1, 1, 1]
    assert (b.srctypes, b.dsttypes, b.etypes) == (["_N"], ["_N"], ["_E"])
    assert b.canonical_etypes == [("_N", "_E", "_N")]
    node_calls = [b.num_src_nodes, b.num_dst_nodes, b.num_nodes, b.srcnodes, b.dstnodes]
    for call in node_calls:
        with pytest.raises(ValueError, match="ntype='paper'.*only .*node type is '_N'"):
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


# ---------------------------------------------------------------------------- typed blocks
AB, BA, AA = ("a", "ab", "b"), ("b", "ba", "a"), ("a", "aa", "a")


def _typed(**kw):
    # sources: a0..a3, b0..b2; destinations: a0, a1 and b0 (prefixes of their types)
    rels = {
        AB: (torch.tensor([0, 3]), torch.tensor([1, 2, 3])),  # a1, a2, a3 -> b0
        BA: (torch.tensor([0, 1, 2]), torch.tensor([2, 0])),  # b2 -> a0, b0 -> a1
        AA: (torch.tensor([0, 0, 1]), torch.tensor([3])),  # a3 -> a1
    }
    return Block.from_relations(rels, {"a": 4, "b": 3}, {"a": 2, "b": 1}, **kw)


def test_typed_sizes_types_and_edges():
    b = _typed()
    assert b.srctypes == ["a", "b"] and b.dsttypes == ["a", "b"]
    assert b.ntypes == ["a", "b", "a", "b"] and b.etypes == ["ab", "ba", "aa"]
    assert b.canonical_etypes == [AB, BA, AA]
    assert (b.num_src_nodes("a"), b.num_src_nodes("b"), b.num_src_nodes()) == (4, 3, 7)
    assert (b.num_dst_nodes("a"), b.num_dst_nodes("b"), b.num_dst_nodes()) == (2, 1, 3)
    assert (b.num_edges("ab"), b.num_edges(BA), b.num_edges()) == (3, 2, 6)
    assert b.num_nodes() == 10 and b.num_nodes("b") == 3 and b.num_nodes("DST/b") == 1
    u, v = b.edges(etype="ba")
    assert u.tolist() == [2, 0] and v.tolist() == [0, 1]
    assert b.in_degrees(etype="ab").tolist() == [3]
    assert b.in_degrees(etype="aa").tolist() == [0, 1]
    assert b.out_degrees(etype="ab").tolist() == [0, 1, 1, 1]
    assert b.to_canonical_etype("aa") == AA
    assert b.srcnodes("b").tolist() == [0, 1, 2] and b.dstnodes("a").tolist() == [0, 1]
    assert repr(b).startswith("Block(num_src_nodes={'a': 4, 'b': 3}, num_dst_nodes={'a': 2,")
    # one relation's CSC, in the adjacency protocol of gnnsys.ops
    indptr, indices, ns, nd = b.adj_csc("ab")
    assert indptr.tolist() == [0, 3] and indices.tolist() == [1, 2, 3] and (ns, nd) == (4, 1)
    assert b[("b", "ba", "a")].adj_csc()[2:] == (3, 2)


def test_typed_type_arguments_name_the_types():
    b = _typed()
    with pytest.raises(ValueError, match=r"edge types \[\('a', 'ab', 'b'\).*name one"):
        b.edges()
    with pytest.raises(ValueError, match="name one"):
        b.in_degrees()
    with pytest.raises(ValueError, match="use block\\[etype\\]"):
        b.adj_csc()
    with pytest.raises(ValueError, match=r"etype='nope' is not an edge type here \(edge types"):
        b.num_edges("nope")
    with pytest.raises(ValueError, match="ntype='c' is not a source node type"):
        b.num_src_nodes("c")
    with pytest.raises(ValueError, match="ntype='c' is not a destination node type"):
        b.dstnodes["c"]
    with pytest.raises(ValueError, match="source node types \\['a', 'b'\\]: name one"):
        b.srcnodes()
    # a relation name shared by two edge types is ambiguous; the triple is not
    twice = Block.from_relations(
        {("a", "r", "a"): (torch.tensor([0, 0]), torch.tensor([], dtype=torch.int64)),
         ("a", "r", "b"): (torch.tensor([0, 0]), torch.tensor([], dtype=torch.int64))},
        {"a": 1, "b": 1}, {"a": 1, "b": 1},
    )  # fmt: skip
    with pytest.raises(ValueError, match="ambiguous"):
        twice.num_edges("r")
    assert twice.num_edges(("a", "r", "b")) == 0


def test_typed_frames_per_type_and_relation_views_share_them():
    feat_a = torch.arange(40.0).view(20, 2)
    b = _typed(
        src_ids={"a": torch.tensor([5, 6, 7, 8]), "b": torch.tensor([0, 1, 2])},
        edge_ids={AB: torch.tensor([10, 11, 12])},
        node_parent={"a": {"feat": feat_a}},
    )
    # srcdata of a block with several source types is DGL's per-type view
    ids = b.srcdata["_ID"]
    assert ids["a"].tolist() == [5, 6, 7, 8] and ids["b"].tolist() == [0, 1, 2]
    assert b.dstdata["_ID"]["a"].tolist() == [5, 6] and b.dstdata["_ID"]["b"].tolist() == [0]
    assert set(b.srcdata["feat"]) == {"a"}  # only type a's parent has feat
    assert torch.equal(b.srcnodes["a"].data["feat"], feat_a[[5, 6, 7, 8]])
    assert torch.equal(b.dstnodes["a"].data["feat"], feat_a[[5, 6]])
    assert b.edata["_ID"] == {AB: b.edges[AB].data["_ID"]}
    assert b.edges["ab"].data["_ID"].tolist() == [10, 11, 12]
    b.srcdata["h"] = {"a": torch.ones(4, 3), "b": torch.zeros(3, 3)}
    assert b.srcnodes["b"].data["h"].shape == (3, 3)
    with pytest.raises(TypeError, match=r"several source node types \['a', 'b'\].*dict"):
        b.srcdata["h"] = torch.ones(7, 3)
    with pytest.raises(ValueError, match="'h' must have 3 rows"):
        b.srcdata["h"] = {"b": torch.ones(4, 3)}
    with pytest.raises(ValueError, match="ntype='c'"):
        b.srcdata["h"] = {"c": torch.ones(4, 3)}
    with pytest.raises(KeyError, match="no source node data named 'nope' in any type"):
        b.srcdata["nope"]
    # a relation's block shares its types' frames (as DGL's relation graphs do)
    rel = b[AB]
    assert rel.srctypes == ["a"] and rel.dsttypes == ["b"] and rel.canonical_etypes == [AB]
    assert torch.equal(rel.srcdata["h"], b.srcnodes["a"].data["h"])  # one type: a tensor
    rel.dstdata["y"] = torch.full((1,), 7.0)
    assert b.dstnodes["b"].data["y"].tolist() == [7.0]
    with b.local_scope():
        b.srcdata["tmp"] = {"a": torch.ones(4)}
        del b.srcdata["h"]
        assert "h" not in b.srcnodes["b"].data
    assert "tmp" not in b.srcdata and "h" in b.srcnodes["a"].data and "h" in b.srcnodes["b"].data
    assert b.to("cpu") is b


def test_typed_validation_names_the_relation_and_type():
    ok = {AB: (torch.tensor([0, 1]), torch.tensor([0]))}
    with pytest.raises(ValueError, match=r"num_dst_nodes\['a'\] \(3\) must be <= num_src_nodes"):
        Block.from_relations(ok, {"a": 2, "b": 1}, {"a": 3, "b": 1})
    with pytest.raises(ValueError, match="destination type 'c' is not a source type"):
        Block.from_relations(ok, {"a": 2, "b": 1}, {"a": 1, "b": 1, "c": 0})
    with pytest.raises(IndexError, match=r"\('a', 'ab', 'b'\): indices holds source id 2"):
        Block.from_relations(
            {AB: (torch.tensor([0, 1]), torch.tensor([2]))}, {"a": 2, "b": 1}, {"a": 0, "b": 1}
        )
    with pytest.raises(ValueError, match=r"\('a', 'ab', 'b'\): indptr has 2 entries; 2 dest"):
        Block.from_relations(ok, {"a": 2, "b": 2}, {"a": 0, "b": 2})
    with pytest.raises(ValueError, match="names node type 'x'"):
        Block.from_relations({("x", "r", "b"): ok[AB]}, {"a": 2, "b": 1}, {"a": 0, "b": 1})
    with pytest.raises(ValueError, match=r"src_ids\['a'\] must have shape \[2\]"):
        Block.from_relations(ok, {"a": 2, "b": 1}, {"a": 0, "b": 1}, src_ids={"a": torch.arange(3)})
    with pytest.raises(ValueError, match="node_parent names 'c'"):
        Block.from_relations(ok, {"a": 2, "b": 1}, {"a": 0, "b": 1}, node_parent={"c": {}})
    with pytest.raises(ValueError, match="idtype must be torch.int32 or torch.int64"):
        Block.from_relations(ok, {"a": 2, "b": 1}, {"a": 0, "b": 1}, idtype=torch.int16)


def test_idtype_int32_ids():
    b = _block(src_ids=torch.tensor([7, 3, 9, 0]), edge_ids=torch.arange(4), idtype=torch.int32)
    assert b.idtype == torch.int32
    assert b.srcdata[NID].dtype == torch.int32 and b.dstdata[NID].dtype == torch.int32
    assert b.edata[EID].dtype == torch.int32
    u, v, e = b.edges(form="all")
    assert u.dtype == v.dtype == e.dtype == torch.int32 and u.tolist() == [1, 2, 3, 0]
    assert b.srcnodes().dtype == torch.int32 and b.edges(form="eid").dtype == torch.int32
    t = _typed(idtype=torch.int32, src_ids={"a": torch.arange(4), "b": torch.arange(3)})
    assert t.srcdata[NID]["b"].dtype == torch.int32 and t.edges(etype="ab")[0].dtype == torch.int32


# ---------------------------------------------------------------- bad input (sweep)
_IP, _IX = torch.tensor([0, 2, 3]), torch.tensor([1, 2, 0])


def test_parent_data_ids_are_range_checked():
    parent = {"feat": torch.arange(10.0).view(10, 1)}
    b = Block(_IP, _IX, 3, src_ids=torch.tensor([0, -1, 2]), node_parent=parent)
    with pytest.raises(IndexError, match=r"rows of parent data 'feat'\) holds a negative id: -1"):
        b.srcdata["feat"]  # was row 9, silently
    b = Block(_IP, _IX, 3, src_ids=torch.tensor([0, 1, 10]), node_parent=parent)
    with pytest.raises(IndexError, match="holds id 10, out of range for 10 rows"):
        b.srcdata["feat"]
    e = Block(_IP, _IX, 3, edge_ids=torch.tensor([0, 1, -1]), edge_parent={"w": torch.arange(4.0)})
    with pytest.raises(IndexError, match="negative id"):
        e.edata["w"]
    ok = Block(_IP, _IX, 3, src_ids=torch.tensor([4, 0, 9]), node_parent=parent)
    assert ok.srcdata["feat"].view(-1).tolist() == [4.0, 0.0, 9.0]


def test_parent_data_must_be_a_mapping():
    ids = torch.tensor([0, 1, 2])
    with pytest.raises(TypeError, match="node_parent must map data names to tensors.*got Tensor"):
        Block(_IP, _IX, 3, src_ids=ids, node_parent=torch.zeros(3))  # was a torch error on access
    with pytest.raises(TypeError, match="node_parent must map data names.*got list"):
        Block(_IP, _IX, 3, src_ids=ids, node_parent=[1, 2])  # was columns named 1 and 2
    with pytest.raises(TypeError, match="edge_parent must map data names.*got tuple"):
        Block(_IP, _IX, 3, edge_ids=ids, edge_parent=(torch.zeros(3),))
    rel = {("a", "r", "b"): (torch.tensor([0, 2]), torch.tensor([0, 1]))}
    with pytest.raises(TypeError, match="node_parent must map data names.*got Tensor"):
        Block.from_relations(rel, {"a": 2, "b": 1}, {"b": 1}, src_ids={"a": torch.tensor([0, 1])},
                             node_parent={"a": torch.zeros(2)})  # fmt: skip


def test_parent_ids_shape_dtype_and_device():
    with pytest.raises(ValueError, match=r"edge_parent_ids must have shape \[3\]"):
        Block(_IP, _IX, 3, edge_parent_ids=torch.tensor([0]), edge_parent={"w": torch.zeros(4)})
    with pytest.raises(ValueError, match="src_ids must hold integer ids"):
        Block(_IP, _IX, 3, src_ids=torch.tensor([0.5, 1.0, 2.0]))
    with pytest.raises(TypeError, match="src_ids must be a torch.Tensor"):
        Block(_IP, _IX, 3, src_ids=[0, 1, 2])
    with pytest.raises(
        ValueError, match="src_ids must be on a cpu or cuda device, got a tensor on meta"
    ):
        Block(_IP, _IX, 3, src_ids=torch.arange(3, device="meta"))
    with pytest.raises(
        ValueError, match="indptr must be on a cpu or cuda device, got a tensor on meta"
    ):
        Block(_IP.to("meta"), _IX.to("meta"), 3)
    rel = {("a", "r", "b"): (torch.tensor([0, 2]), torch.tensor([0, 1]))}
    with pytest.raises(ValueError, match=r"edge_parent_ids\[\('a', 'r', 'b'\)\] must have shape"):
        Block.from_relations(
            rel, {"a": 2, "b": 1}, {"b": 1}, edge_parent_ids={("a", "r", "b"): torch.tensor([0])}
        )


def test_degree_ids_of_the_wrong_kind():
    b = Block(_IP, _IX, 3)
    with pytest.raises(TypeError, match="v must be an int or a tensor of node ids, got str"):
        b.in_degrees("a")
    with pytest.raises(ValueError, match="u must be on a cpu or cuda device, got a tensor on meta"):
        b.out_degrees(torch.tensor([1], device="meta"))


def test_to_an_unknown_device_names_it():
    b = Block(_IP, _IX, 3)
    with pytest.raises(ValueError, match="device='gpu' is not a valid device"):
        b.to("gpu")
    assert b.to("cpu") is b
