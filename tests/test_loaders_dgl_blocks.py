"""gnnsys.loaders._dgl_blocks: DGL blocks from a batch's CSC equal ``dgl.create_block``'s (where
dgl imports: the torch 2.2 peer env), and the fallback to ``create_block`` where DGL lacks the
index constructors."""

import types

import pytest
import torch

from gnnsys.loaders import _dgl_blocks
from gnnsys.loaders import dgl as dl

needs_dgl = pytest.mark.skipif(dl._dgl() is None, reason="dgl does not import beside this torch")


def _csc(num_src: int, num_dst: int, degrees, seed: int):
    gen = torch.Generator().manual_seed(seed)
    deg = torch.tensor(degrees, dtype=torch.int64)
    assert deg.numel() == num_dst
    indptr = torch.cat([torch.zeros(1, dtype=torch.int64), deg.cumsum(0)])
    indices = torch.randint(0, max(num_src, 1), (int(deg.sum()),), generator=gen)
    return indptr, indices


def _untyped():
    # a source that no edge reaches past the last index (the count, not the max, sets it)
    return {("_N", "_E", "_N"): _csc(9, 4, [3, 0, 5, 2], 0)}, {"_N": 9}, {"_N": 4}


def _typed():
    # given out of DGL's sorted order: the block sorts types and relations as create_block
    rels = {
        ("topic", "of", "author"): _csc(0, 2, [0, 0], 4),  # no sources: an empty relation
        ("paper", "cites", "paper"): _csc(7, 3, [1, 3, 0], 2),
        ("author", "writes", "paper"): _csc(6, 3, [2, 0, 4], 1),
        ("paper", "has", "topic"): _csc(7, 0, [], 3),  # no destinations of this type
    }
    return rels, {"paper": 7, "author": 6, "topic": 0}, {"topic": 0, "paper": 3, "author": 2}


def _reference(dgl, rels, num_src, num_dst, idtype):
    data = {
        r: ("csc", (ip.to(idtype), ix.to(idtype), torch.arange(ix.numel(), dtype=idtype)))
        for r, (ip, ix) in rels.items()
    }
    return dgl.create_block(data, num_src_nodes=num_src, num_dst_nodes=num_dst, idtype=idtype)


def _assert_same_block(got, want):
    assert type(got) is type(want)
    assert got.idtype == want.idtype
    assert got.srctypes == want.srctypes and got.dsttypes == want.dsttypes
    assert got.canonical_etypes == want.canonical_etypes
    for nt in want.srctypes:
        assert got.num_src_nodes(nt) == want.num_src_nodes(nt)
    for nt in want.dsttypes:
        assert got.num_dst_nodes(nt) == want.num_dst_nodes(nt)
    for et in want.canonical_etypes:
        for g, w in zip(got.edges(form="all", etype=et, order="eid"),
                        want.edges(form="all", etype=et, order="eid")):  # fmt: skip
            assert torch.equal(g, w)
        for g, w in zip(got.adj_tensors("csc", et), want.adj_tensors("csc", et)):
            assert torch.equal(g, w)
        assert got.formats() == want.formats()


@needs_dgl
@pytest.mark.parametrize("idtype", [torch.int64, torch.int32])
@pytest.mark.parametrize("case", [_untyped, _typed])
def test_blocks_equal_create_blocks(case, idtype):
    dgl = dl._dgl()
    assert _dgl_blocks.constructors(dgl) is not None  # the fast path is what runs here
    rels, num_src, num_dst = case()
    got = _dgl_blocks.csc_block(dgl, rels, num_src, num_dst, idtype)
    _assert_same_block(got, _reference(dgl, rels, num_src, num_dst, idtype))


@needs_dgl
def test_a_block_runs_a_dgl_layer_and_an_edge_message():
    import dgl.function as fn

    dgl = dl._dgl()
    rels, num_src, num_dst = _untyped()
    got = _dgl_blocks.csc_block(dgl, rels, num_src, num_dst, torch.int64)
    want = _reference(dgl, rels, num_src, num_dst, torch.int64)
    h = torch.arange(9, dtype=torch.float32).unsqueeze(1)
    for b in (got, want):
        b.srcdata["h"] = h
        b.edata["w"] = torch.arange(b.num_edges(), dtype=torch.float32).unsqueeze(1)
        b.update_all(fn.u_mul_e("h", "w", "m"), fn.sum("m", "out"))  # needs the edge ids
    assert torch.equal(got.dstdata["out"], want.dstdata["out"])


def test_without_the_constructors_create_block_builds_it():
    calls = []

    def create_block(data, num_src_nodes, num_dst_nodes, idtype):
        calls.append((data, num_src_nodes, num_dst_nodes, idtype))
        return "block"

    fake = types.ModuleType("not_a_dgl_package")
    fake.create_block = create_block
    assert _dgl_blocks.constructors(fake) is None
    rels, num_src, num_dst = _untyped()
    assert _dgl_blocks.csc_block(fake, rels, num_src, num_dst, torch.int32) == "block"
    ((data, src, dst, idtype),) = calls
    assert (src, dst, idtype) == (num_src, num_dst, torch.int32)
    fmt, (ip, ix, eids) = data[("_N", "_E", "_N")]
    assert fmt == "csc" and ip.dtype == ix.dtype == eids.dtype == torch.int32
    assert torch.equal(ix, rels[("_N", "_E", "_N")][1].int())
    assert torch.equal(eids, torch.arange(ix.numel(), dtype=torch.int32))
