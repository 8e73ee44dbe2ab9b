"""The numba sampling kernels directly: random streams, Floyd's algorithm, A-Res, the relabel
maps, the bidirectional and induced passes, the serial twins, and the small helpers."""

import numba
import numpy as np
import pytest
import torch
from scipy import stats

from gnnsys.graph import Graph
from gnnsys.loaders import LaborSampler, NeighborSampler, SampleKey, TemporalNeighborSampler
from gnnsys.loaders import _kernels as K


@numba.njit(cache=False)
def _floyd_many(d, k, trials, key):
    out = np.empty((trials, k), np.int64)
    pos = np.empty(k, np.int64)
    for t in range(trials):
        st = K._stream(K.hop_key(key, 0), t, 0)
        K._floyd(st, 100, d, k, pos, 0)
        out[t] = pos
    return out


# d <= 64: the bitmask membership test; k <= 32: the scan; above: the hash set
@pytest.mark.parametrize(
    "d,k", [(64, 1), (64, 5), (64, 32), (64, 60), (65, 5), (200, 32), (200, 33), (200, 60)]
)
def test_floyd_distinct_in_range_and_uniform(d, k):
    picks = _floyd_many(d, k, 2000, 12345)
    assert picks.min() >= 100 and picks.max() < 100 + d
    for row in picks[:200]:
        assert len(set(row.tolist())) == k
    counts = np.bincount((picks - 100).ravel(), minlength=d)
    assert stats.chisquare(counts).pvalue > 1e-3


@numba.njit(cache=False)
def _floyd_streams(trials, key):
    out = np.empty(trials, np.uint64)
    for t in range(trials):
        out[t] = K._stream(K.hop_key(key, 0), t, 0)
    return out


def _floyd_reference(st, lo, d, k):
    # Floyd's algorithm as written in the textbook, on the kernel's draws
    chosen = []
    for t in range(k):
        j = d - k + t
        r = K._below(st, t, j + 1)
        chosen.append(j if r in chosen else r)
    return [lo + r for r in chosen]


@pytest.mark.parametrize("d", [1, 10, 63, 64, 65, 100, 300])
def test_floyd_membership_tests_draw_the_same_positions(d):
    # the bitmask, scan and hash-set membership tests are one algorithm: same picks, same order
    for k in sorted({1, min(d, 5), min(d, 32), min(d, 33), d}):
        picks = _floyd_many(d, k, 50, 99)
        for t, st in enumerate(_floyd_streams(50, 99)):
            assert picks[t].tolist() == _floyd_reference(st, 100, d, k), (d, k, t)


def test_segment_index_matches_the_typed_columns():
    rng = np.random.default_rng(3)
    sizes = {"a": 40, "b": 25, "c": 7}
    rels = [
        ("a", "r1", "b"),
        ("b", "r2", "a"),
        ("a", "r3", "a"),
        ("c", "r4", "b"),
        ("b", "r5", "b"),
    ]
    edges = {r: torch.stack([torch.from_numpy(rng.integers(0, sizes[r[0]], 300)),
                             torch.from_numpy(rng.integers(0, sizes[r[2]], 300))]) for r in rels}  # fmt: skip
    g = Graph.from_hetero(edges, sizes)
    tpe, off, _src, _dst, ptr, dets = g.type_layout()
    indptr = g.indptr.numpy().astype(np.int64)
    seg_ptr, seg_base = K.segment_index(indptr, tpe, off, ptr, dets)
    assert seg_ptr[-1] == g.num_edges
    for t in range(len(sizes)):
        for v in range(off[t], off[t + 1]):
            col = tpe[indptr[v] : indptr[v + 1]].astype(np.int64)
            for q in range(ptr[t], ptr[t + 1]):
                slot = K._segment_slot(seg_base, off, ptr, v, t) + q
                lo, hi = seg_ptr[slot], seg_ptr[slot + 1]
                assert (lo, hi) == K._segment(indptr, tpe, v, dets[q])
                assert np.all(col[lo - indptr[v] : hi - indptr[v]] == dets[q])


@numba.njit(cache=False)
def _ares_many(weights, k, trials):
    out = np.empty((trials, k), np.int64)
    pos = np.empty(k, np.int64)
    keys = np.empty(k, np.float64)
    for t in range(trials):
        K._weighted_without(K._stream(np.uint64(7), t, 0), weights, 0, weights.shape[0], k, pos,
                            keys, 0)  # fmt: skip
        out[t] = pos
    return out


def test_ares_first_pick_probabilities():
    w = np.array([1.0, 0.0, 2.0, 5.0, 2.0])
    picks = _ares_many(w, 1, 6000)[:, 0]
    counts = np.bincount(picks, minlength=5)
    assert counts[1] == 0
    expected = 6000 * w[[0, 2, 3, 4]] / w.sum()
    assert stats.chisquare(counts[[0, 2, 3, 4]], expected).pvalue > 1e-3
    two = _ares_many(w, 2, 500)
    assert all(len(set(r)) == 2 and 1 not in r for r in two.tolist())


def test_random_nodes_uniform_and_weighted():
    a = K.random_nodes(5, 1, 20000, 10)
    assert a.min() >= 0 and a.max() < 10
    assert stats.chisquare(np.bincount(a, minlength=10)).pvalue > 1e-3
    assert not np.array_equal(a, K.random_nodes(5, 2, 20000, 10))  # salts are separate streams
    assert np.array_equal(a, K.random_nodes(5, 1, 20000, 10))
    cum = np.concatenate([[0.0], np.cumsum([0.0, 1.0, 0.0, 3.0])])
    b = K.random_weighted_nodes(9, 1, 8000, cum)
    counts = np.bincount(b, minlength=4)
    assert counts[0] == counts[2] == 0
    assert stats.chisquare(counts[[1, 3]], [2000, 6000]).pvalue > 1e-3


def test_first_occurrence_unique_and_min_max():
    v = np.array([5, 3, 5, 9, 3, 0], np.int64)
    uniq, inv = K.first_occurrence_unique(v)
    assert uniq.tolist() == [5, 3, 9, 0] and np.array_equal(uniq[inv], v)
    from gnnsys._ids import min_max

    assert min_max(v) == (0, 9)


def test_bidirectional_dedupes_and_keeps_earliest_hop():
    row = np.array([1, 0, 2, 1], np.int64)
    col = np.array([0, 1, 1, 0], np.int64)  # (0,1) in hop 1 duplicates reverse of (1,0) hop 1
    eid = np.array([10, 11, 12, 13], np.int64)
    ei, e, per_hop = K.bidirectional_edges(np.stack([row, col]), eid, np.array([2, 2]), 3)
    r, c = ei
    pairs = list(zip(r.tolist(), c.tolist()))
    assert len(set(pairs)) == len(pairs) == 4  # (1,0) (0,1) (2,1) (1,2)
    assert per_hop.tolist() == [2, 2]
    assert dict(zip(pairs, e.tolist()))[(0, 1)] == 10  # the earliest edge keeps the pair


def test_pack_and_column_cumsum():
    idx = np.array([3, 1, 2], np.int32)
    ids = np.array([7, -1, 2**31 - 1], np.int64)
    out = np.empty(3, np.int64)
    K.pack_adjacency(idx, ids, out)
    assert (out & 0xFFFFFFFF).tolist() == [3, 1, 2] and (out >> 32).tolist() == [7, -1, 2**31 - 1]
    untyped = np.empty(0, np.int8)
    cum = K.column_cumsum(np.array([0, 2, 3], np.int64), np.array([1.0, 2.0, 4.0]), untyped)
    assert cum.tolist() == [1.0, 3.0, 4.0]
    # typed: the sums restart where the edge type changes within a column
    w = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    cum = K.column_cumsum(np.array([0, 4, 5], np.int64), w, np.array([0, 0, 1, 1, 1], np.int8))
    assert cum.tolist() == [1.0, 3.0, 4.0, 12.0, 16.0]


def test_serial_twin_and_choose(monkeypatch):
    assert K.sample_hops_serial.py_func.__qualname__ == "sample_hops_serial"
    assert K.choose(K.sample_hops, K.sample_hops_serial, 10) is K.sample_hops_serial
    monkeypatch.setattr(K, "PARALLEL_MIN_WORK", 0)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert K.choose(K.sample_hops, K.sample_hops_serial, 10**9) is K.sample_hops_serial
        if numba.config.NUMBA_NUM_THREADS > 1:
            numba.set_num_threads(2)
            assert K.choose(K.sample_hops, K.sample_hops_serial, 10**9) is K.sample_hops
    finally:
        numba.set_num_threads(old)


MODES = ["uniform", "weighted", "weighted_replace", "labor", "labor_general", "temporal"]


def _mode_graph(typed):
    # A small weighted graph: homogeneous, or two node types and three edge types.
    gen = torch.Generator().manual_seed(5)

    def edges(ns, nd, k):
        ei = torch.stack([torch.randint(0, ns, (k,), generator=gen),
                          torch.randint(0, nd, (k,), generator=gen)])  # fmt: skip
        w = torch.rand(k, generator=gen) * (torch.rand(k, generator=gen) > 0.2)
        return ei, w

    if not typed:
        ei, w = edges(300, 300, 3000)
        return Graph.from_edge_index(ei, 300, edge_weight=w)
    ab, w_ab = edges(120, 180, 1000)
    bb, w_bb = edges(180, 180, 1500)
    ba, w_ba = edges(180, 120, 700)
    ed = {("a", "to", "b"): ab, ("b", "links", "b"): bb, ("b", "rev_to", "a"): ba}
    w = dict(zip(ed, (w_ab, w_bb, w_ba)))
    return Graph.from_hetero(ed, {"a": 120, "b": 180}, edge_weight_dict=w)


def _mode_sampler(mode, typed=False, disjoint=False):
    # A sampler of each mode sample_hops_for tells apart, on a small weighted, timed graph.
    g = _mode_graph(typed)
    node_time = torch.randint(0, 50, (300,), generator=torch.Generator().manual_seed(6))
    kw = {"disjoint": True} if disjoint else {}
    make = {
        "uniform": lambda: NeighborSampler(g, [4, 3], **kw),
        "weighted": lambda: NeighborSampler(g, [4, -1], weighted=True, **kw),
        "weighted_replace": lambda: NeighborSampler(g, [4, 3], weighted=True, replace=True, **kw),
        "labor": lambda: LaborSampler(g, [4, 3], layer_dependency=True, **kw),
        "labor_general": lambda: LaborSampler(g, [4, 3], importance_sampling=2, **kw),
        "temporal": lambda: TemporalNeighborSampler(g, [4, 3], node_time=node_time),
    }
    return make[mode]()


# relabel map: "dense" (stamped [N] map), "hash" (a graph over DENSE_MAP_MAX_NODES), or
# "disjoint" (one tree per seed: always the hash table). Temporal sampling is always disjoint.
RELABELS = ["dense", "hash", "disjoint"]
ALL_CASES = [
    (mode, relabel, typed)
    for mode in MODES
    for relabel in RELABELS
    for typed in (False, True)
    if mode != "temporal" or relabel == "disjoint"
]
# Each case compiles its own variant (~8-12 s cold here), so the fast step runs a covering set:
# every mode once and every (relabel map, typed) pair once; the slow step runs the other 26.
COVERING = [
    ("uniform", "dense", False),
    ("weighted", "hash", True),
    ("weighted_replace", "disjoint", False),
    ("labor", "dense", True),
    ("labor_general", "hash", False),
    ("temporal", "disjoint", True),
]
REST = [c for c in ALL_CASES if c not in COVERING]


def _case_id(case):
    mode, relabel, typed = case
    return f"{mode}-{relabel}-{'typed' if typed else 'untyped'}"


def test_covering_set_covers_every_mode_and_map():
    assert {c[0] for c in COVERING} == set(MODES)
    assert {(c[1], c[2]) for c in COVERING} == {(r, t) for r in RELABELS for t in (False, True)}
    assert len(ALL_CASES) == len(COVERING) + len(REST) == 32


@pytest.mark.parametrize(
    "case",
    [*COVERING, *(pytest.param(c, marks=pytest.mark.slow) for c in REST)],
    ids=_case_id,
)
def test_mode_variants_equal_the_generic_kernel(monkeypatch, case):
    # sample_hops_for compiles a variant per set of modes, the others' branches pruned; its
    # batches are those of the kernel with every mode compiled in, bitwise.
    mode, relabel, typed = case
    from gnnsys.loaders import neighbor as nb

    if relabel == "hash":
        monkeypatch.setattr(nb, "DENSE_MAP_MAX_NODES", 10)
    s = _mode_sampler(mode, typed, disjoint=relabel == "disjoint")
    seeds, key = torch.tensor([0, 7, 7, 42, 130, 299]), SampleKey(seed=3, batch=2)
    picked = []
    pick = K.sample_hops_for

    def spy(*args, **kw):
        picked.append(pick(*args, **kw))
        return picked[-1]

    monkeypatch.setattr(K, "sample_hops_for", spy)
    got = s.sample(seeds, key)
    tag = mode.replace("_replace", "")
    on = {tag, "typed"} if typed else {tag}
    on |= {"hashed"} if relabel != "dense" else set()
    on |= {"disjoint"} if relabel == "disjoint" else set()
    name = "_".join(m for m in K._MODES if m in on and m != "uniform") or "uniform"
    assert picked[0].py_func.__qualname__ == f"sample_hops_serial__{name}"
    assert picked[0] is pick(10, **{m: m in on for m in K._MODES})  # made once, then reused
    monkeypatch.setattr(K, "sample_hops_for", lambda *a, **kw: K.sample_hops_serial)
    want = s.sample(seeds, key)
    assert got.num_sampled_nodes == want.num_sampled_nodes
    assert got.num_sampled_edges == want.num_sampled_edges
    fields = ("nodes", "row", "col", "edge_ids", "batch", "node_offsets", "edge_ptr")
    for name in fields + ("type_num_sampled_nodes", "hop_indptr", "hop_dst_start"):
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None and b is None) or torch.equal(a, b), name
    assert got.metadata.keys() == want.metadata.keys()
    for k, v in got.metadata.items():
        assert torch.equal(v, want.metadata[k]) if torch.is_tensor(v) else v == want.metadata[k]


def test_mode_variants_imply_the_hash_map_when_disjoint():
    # disjoint sampling always relabels through the hash table, whatever hashed= says
    modes = dict(labor=False, labor_general=False, temporal=False, weighted=False, typed=False)
    assert K.sample_hops_for(10, **modes, disjoint=True, hashed=False) is K.sample_hops_for(
        10, **modes, disjoint=True, hashed=True
    )
    generic = K.sample_hops_for(10, False, False, False, False)  # defaults: the generic paths
    assert generic.py_func.__qualname__ == "sample_hops_serial__typed_disjoint_hashed"


def test_stamped_map_needs_no_reset():
    # Two batches on one map: the second stamp ignores the first batch's entries.
    indptr = np.array([0, 1, 2, 2], np.int64)
    adj = np.array([1, 2], np.int32)
    mapv = np.zeros(3, np.int64)
    # one node type and one edge type: no type_per_edge, offsets [0, N], edge type 0 -> type 0,
    # no segment index
    typing = (np.empty(0, np.int8), np.array([0, 3], np.int64), np.zeros(1, np.int64),
              np.zeros(1, np.int64), np.array([0, 1], np.int64), np.zeros(1, np.int64),
              np.empty(0, np.int64), np.empty(0, np.int64))  # fmt: skip
    args = (indptr, adj, np.empty(0, np.int64), False, np.empty(0), np.empty(0), *typing)
    fanouts = np.array([[2], [2]], np.int64)
    tail = (np.empty(0, np.int64), fanouts, False, False, False, False, 1, mapv)
    none = np.empty(0, np.int64)
    modes = (False, False, none, none, none, False)  # not LABOR, not temporal
    first = K.sample_hops_serial(*args, np.array([0], np.int64), *tail, 1, *modes)
    second = K.sample_hops_serial(*args, np.array([1], np.int64), *tail, 2, *modes)
    assert first[0].tolist() == [0, 1, 2] and second[0].tolist() == [1, 2]


_CACHE_PROBE = """
import warnings
import torch
from gnnsys.graph import Graph
from gnnsys.loaders import NeighborSampler, SampleKey
from gnnsys.loaders import _kernels as K

warnings.filterwarnings("error", message=".*Cannot cache.*")
g = Graph.from_edge_index(torch.randint(0, 5000, (2, 200000), generator=torch.Generator().manual_seed(0)), 5000)
assert K.use_parallel(1 << 20)
NeighborSampler(g, [15, 10]).sample(torch.arange(4096), SampleKey(seed=1))
print("CACHED")
"""


@pytest.mark.slow  # compiles the parallel kernel from scratch (~10 s here)
def test_parallel_kernel_is_cacheable(tmp_path):
    """The parallel sampling kernel caches on disk: session 20's numba.get_num_threads() inside
    it (a call through a runtime pointer) made numba refuse, and every process compiled it
    again (~9 s here, more on a GPU machine's first batch)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), NUMBA_NUM_THREADS="2")
    res = subprocess.run([sys.executable, "-c", _CACHE_PROBE], capture_output=True, text=True,
                         env=env, timeout=600)  # fmt: skip
    assert res.returncode == 0 and "CACHED" in res.stdout, res.stderr[-3000:]
    assert any(p.name.startswith("_kernels.sample_hops__") for p in tmp_path.rglob("*.nbi"))


@pytest.mark.parametrize("n, e", [(13, 400), (500, 3000), (7, 0), (3, 1)])
def test_lex_order_is_lexsort(n, e):
    # PyG's ClusterLoader edge order (sort_edge_index) by two counting passes: the same
    # permutation as np.lexsort, ties (repeated edges) in their original order.
    rng = np.random.default_rng(n + e)
    col = np.sort(rng.integers(0, n, e))
    row = rng.integers(0, n, e)
    for first, second in ((row, col), (col, row)):
        order, in_order = K.lex_order(first, second, n)
        want = np.lexsort((second, first))
        assert order.tolist() == want.tolist()
        assert in_order == (want.tolist() == list(range(e)))
    order, in_order = K.lex_order(np.arange(5), np.zeros(5, np.int64), 5)
    assert in_order and order.tolist() == [0, 1, 2, 3, 4]
