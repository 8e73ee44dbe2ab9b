"""The out-of-core CSC build: equal to the in-memory build bitwise, whatever the chunking."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from gnnsys import Graph
from gnnsys.datasets import rmat_edges
from gnnsys.datasets.dataset import graph_from_coo
from gnnsys.datasets.outofcore import EdgeChunks, EdgeChunkWriter, build_csc, parse_bytes

N = 1 << 11
FLAGS = [
    (False, False, False),
    (True, False, False),
    (False, True, False),
    (False, False, True),
    (True, False, True),
    (True, True, True),
]


@pytest.fixture(scope="module")
def coo(tmp_path_factory):
    src, dst = rmat_edges(11, 8, seed=5)  # with duplicates and self loops
    folder = tmp_path_factory.mktemp("coo")
    w = EdgeChunkWriter(folder)
    for k, lo in enumerate(range(0, src.size, 3001)):  # uneven parts, int32 and int64
        dt = np.int32 if k % 2 else np.int64
        w.write(src[lo : lo + 3001].astype(dt), dst[lo : lo + 3001])
    return src, dst, w.chunks()


@pytest.mark.parametrize("symmetrise,dedupe,drop_loops", FLAGS)
def test_equals_the_in_memory_build_over_many_ranges(
    coo, tmp_path, symmetrise, dedupe, drop_loops, budget_above_rss
):
    src, dst, chunks = coo
    ref = graph_from_coo(src, dst, N, symmetrise=symmetrise, dedupe=dedupe, drop_loops=drop_loops)
    rep = build_csc(
        chunks, N, tmp_path / "g", memory_budget=budget_above_rss("1G"), symmetrise=symmetrise,
        dedupe=dedupe, drop_loops=drop_loops, chunk_edges=1000, range_edges=2500,
    )  # fmt: skip
    g = Graph.load(tmp_path / "g")
    assert g.indices.dtype == ref.indices.dtype == torch.int32
    assert torch.equal(g.indptr, ref.indptr) and torch.equal(g.indices, ref.indices)
    assert rep.num_edges == ref.num_edges and rep.input_edges == src.size
    sweeps = 2 if symmetrise and not dedupe else 1
    assert rep.ranges > 3 and rep.passes == 1 + rep.ranges * sweeps


def test_edges_equal_to_from_edge_index(coo, tmp_path):
    src, dst, chunks = coo
    build_csc(chunks, N, tmp_path / "g", chunk_edges=777, range_edges=4000)
    ref = Graph.from_edge_index(torch.stack([torch.from_numpy(src), torch.from_numpy(dst)]), N)
    g = Graph.load(tmp_path / "g")
    assert torch.equal(g.indptr, ref.indptr) and torch.equal(g.indices, ref.indices)


@pytest.mark.parametrize("symmetrise,dedupe,drop_loops", FLAGS)
def test_hot_first_order_renames_by_degree(
    coo, tmp_path, symmetrise, dedupe, drop_loops, budget_above_rss
):
    src, dst, chunks = coo
    rep = build_csc(
        chunks, N, tmp_path / "g", memory_budget=budget_above_rss("1G"), symmetrise=symmetrise,
        dedupe=dedupe, drop_loops=drop_loops, chunk_edges=1000, range_edges=2500, order="degree",
    )  # fmt: skip
    orig = np.load(tmp_path / "g" / "orig_ids.npy")
    assert orig.dtype == np.int32 and np.array_equal(np.sort(orig), np.arange(N))
    # the reference order, from scratch: input edge ends per node, most first, ties by id
    keep = src != dst if drop_loops else np.ones(src.size, bool)
    count = np.bincount(dst[keep], minlength=N)
    if symmetrise:
        count += np.bincount(src[keep], minlength=N)
    assert np.array_equal(orig, np.lexsort((np.arange(N), -count)))
    rank = np.empty(N, dtype=np.int64)
    rank[orig] = np.arange(N)
    ref = graph_from_coo(rank[src], rank[dst], N, symmetrise=symmetrise, dedupe=dedupe,
                         drop_loops=drop_loops)  # fmt: skip
    g = Graph.load(tmp_path / "g")
    assert torch.equal(g.indptr, ref.indptr) and torch.equal(g.indices, ref.indices)
    assert rep.order == "degree" and rep.ranges > 3
    with pytest.raises(ValueError, match="order must be one of"):
        build_csc(chunks, N, tmp_path / "h", order="hot")


def test_single_files_and_empty_graphs(tmp_path):
    np.save(tmp_path / "src.npy", np.array([2, 0], dtype=np.int64))
    np.save(tmp_path / "dst.npy", np.array([1, 1], dtype=np.int64))
    build_csc(EdgeChunks.from_folder(tmp_path), 3, tmp_path / "g")
    g = Graph.load(tmp_path / "g")
    assert g.indptr.tolist() == [0, 0, 2, 2] and g.indices.tolist() == [2, 0]
    e = tmp_path / "empty"
    EdgeChunkWriter(e).write(np.zeros(0, np.int32), np.zeros(0, np.int32))
    rep = build_csc(EdgeChunks.from_folder(e), 4, tmp_path / "g0", dedupe=True)
    assert rep.num_edges == 0 and Graph.load(tmp_path / "g0").indptr.tolist() == [0] * 5


def test_bad_ids_and_damaged_files_are_named(tmp_path):
    w = EdgeChunkWriter(tmp_path / "e")
    w.write(np.array([0, 1], np.int32), np.array([1, 2], np.int32))
    w.write(np.array([0, 9], np.int32), np.array([1, 2], np.int32))
    with pytest.raises(ValueError, match=r"src_00001.npy/dst_00001.npy edges 0..1: source id 9"):
        build_csc(w.chunks(), 5, tmp_path / "g")
    w.write(np.array([-1], np.int32), np.array([0], np.int32))
    with pytest.raises(ValueError, match="source id -1"):
        build_csc(w.chunks(), 10, tmp_path / "g")
    assert not (tmp_path / "g").exists()  # nothing half-written left behind
    d = tmp_path / "e" / "dst_00000.npy"
    d.write_bytes(d.read_bytes()[:-3])
    with pytest.raises(ValueError, match="dst_00000.npy is truncated"):
        w.chunks()
    d.unlink()
    with pytest.raises(FileNotFoundError, match="dst_00000.npy is missing"):
        w.chunks()
    np.save(tmp_path / "f.npy", np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="int32/int64"):
        EdgeChunks([(tmp_path / "f.npy", tmp_path / "f.npy")])
    with pytest.raises(FileNotFoundError, match="no src_"):
        EdgeChunks.from_folder(tmp_path)  # a folder without src_*.npy chunk files


def test_budget_errors_say_what_is_needed(coo, tmp_path):
    _, _, chunks = coo
    with pytest.raises(ValueError, match="too small.*give at least"):
        build_csc(chunks, N, tmp_path / "g", memory_budget="1M")
    with pytest.raises(ValueError, match="alone has .* in-edges"):
        build_csc(chunks, N, tmp_path / "g", range_edges=2)
    with pytest.raises(FileExistsError):
        (tmp_path / "x").mkdir()
        build_csc(chunks, N, tmp_path / "x")


def test_parse_bytes():
    assert parse_bytes("8G") == 8 << 30 and parse_bytes("512M") == 512 << 20
    assert parse_bytes("1.5GiB") == 3 << 29 and parse_bytes(4096) == 4096
    for bad in ("lots", "-1G", "0"):
        with pytest.raises(ValueError):
            parse_bytes(bad)
    with pytest.raises(TypeError):
        parse_bytes(True)


@pytest.mark.parametrize("order", ["given", "degree"])
def test_peak_rss_stays_within_the_budget(tmp_path, order):
    # In a fresh process: the budget is what it holds once the kernels are loaded (a small build
    # first) plus 96 MB, while the edges alone are 128 MB on disk and an in-memory build of them
    # needs several times that. The RSS sampled during the build must stay within it (the
    # lifetime ru_maxrss would include a compilation of the kernels, if the cache missed).
    code = textwrap.dedent(
        f"""
        import numpy as np
        from gnnsys.datasets.outofcore import (EdgeChunkWriter, build_csc, rss_bytes,
                                               peak_rss_bytes)
        w = EdgeChunkWriter({str(tmp_path / "e")!r})
        rng = np.random.default_rng(0)
        for _ in range(8):
            w.write(rng.integers(0, 1 << 16, 1 << 21, dtype=np.int32),
                    rng.integers(0, 1 << 16, 1 << 21, dtype=np.int32))
        build_csc(w.chunks(), 1 << 16, {str(tmp_path / "warm")!r}, symmetrise=True,
                  dedupe=True, range_edges=1 << 20)
        budget = rss_bytes() + (96 << 20)
        rep = build_csc(w.chunks(), 1 << 16, {str(tmp_path / "g")!r}, memory_budget=budget,
                        symmetrise=True, dedupe=True, order={order!r})
        print(rep.ranges, rep.peak_rss_bytes, budget)
        assert rep.ranges > 1 and rep.sampled_peak_rss_bytes <= budget, (rep, budget)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]


def test_degree_rank_caps_counts_at_the_node_count():
    from gnnsys import _csc

    rank = np.empty(5, dtype=np.int64)
    _csc.degree_rank(np.array([5, 100, 2, 0, 7], dtype=np.int64), rank)
    # 5, 100 and 7 all count as 5 (N): they tie, in id order, ahead of 2 and 0
    assert rank.tolist() == [0, 1, 3, 4, 2]
    _csc.degree_rank(np.zeros(0, dtype=np.int64), rank[:0])
