"""The Triton neighbour sampler (loaders/_sampler_triton.py) against the numba kernel: the same
batch, bit for bit, for a key (nodes in order, row/col, edge ids, per-hop counts, CSC offsets),
across semantics, replacement, weights, fanout -1 and 0, isolated nodes, duplicate seeds, typed
graphs and both relabel regimes. Kernels run interpreted on CPU tensors (TRITON_INTERPRET=1,
set by conftest.py without CUDA); the gpu-marked test repeats the comparison on a CUDA graph
and on a pinned host graph read in place (UVA)."""

import os

import numpy as np
import pytest
import torch
import torch.utils._python_dispatch

import gnnsys.loaders.neighbor as nb
from gnnsys.graph import Graph
from gnnsys.loaders import NeighborSampler, SampleKey, _kernels
from gnnsys.loaders import _sampler_triton as st

pytestmark = pytest.mark.triton_interpreter

HERE = os.path.dirname(os.path.abspath(__file__))
FIELDS = (
    "nodes",
    "row",
    "col",
    "edge_ids",
    "batch",
    "node_offsets",
    "type_num_sampled_nodes",
    "edge_ptr",
    "hop_indptr",
    "hop_indptr_ptr",
    "hop_dst_start",
)


def assert_same(a, b):
    """Every tensor and count of two SampledSubgraphs is identical (b may be on a GPU)."""
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        if x is None or y is None:
            assert x is None and y is None, f
            continue
        assert x.dtype == y.dtype, f
        assert torch.equal(x, y.cpu()), f
    assert a.num_sampled_nodes == b.num_sampled_nodes
    assert a.num_sampled_edges == b.num_sampled_edges
    assert (a.layered, a.node_types, a.edge_types) == (b.layered, b.node_types, b.edge_types)


def graph(n=60, e=400, seed=0, isolated=2, edge_ids=True):
    """Skewed in-degrees (node 0 has ~50 in-edges), every 5th edge weight 0, ``isolated`` nodes
    without edges at the end."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (e,), generator=g)
    dst = (torch.rand(e, generator=g) ** 2 * n).long().clamp_max(n - 1)
    w = torch.rand(e, generator=g)
    w[::5] = 0.0
    gr = Graph.from_edge_index(torch.stack([src, dst]), n + isolated, edge_weight=w)
    if not edge_ids:
        gr = Graph.from_csc(gr.indptr, gr.indices, edge_weight=gr.edge_weight)
    return gr


@pytest.fixture(scope="module")
def g():
    return graph()


SEEDS = torch.tensor([3, 0, 7, 3, 61, 0, 59])  # duplicates, an isolated node (61), a hub (0)


@pytest.fixture(params=["torch", "kernels"])
def relabel(request, monkeypatch):
    """Both ways the dense map finds first occurrences (``_sampler_triton.RELABEL``): samplers
    built inside the test use it."""
    monkeypatch.setattr(st, "RELABEL", request.param)
    return request.param


def both(gr, fanouts, seeds, key, **kw):
    a = NeighborSampler(gr, fanouts, backend="numba", **kw).sample(seeds, key)
    b = NeighborSampler(gr, fanouts, backend="triton", **kw).sample(seeds, key)
    return a, b


# ---------------------------------------------------------------------- randomness
def test_rng_matches_numba_bitwise():
    """mix, stream, uniform and below against the numba functions, on uint64 edge values."""
    edge = [0, 1, 2, 3, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53, 2**63 - 1, 2**63, 2**64 - 1]
    edge += [0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD1B54A32D192ED03]
    rng = np.random.default_rng(0)
    vals = np.concatenate([np.array(edge, np.uint64), rng.integers(0, 2**64, 200, np.uint64)])
    size = vals.size
    key = rng.integers(0, 2**64, size, np.uint64)
    node = rng.integers(0, 2**40, size).astype(np.int64)
    node[:4] = [0, 1, 2**31, 2**62]
    tree = rng.integers(0, 1000, size).astype(np.int64)
    t = rng.integers(0, 1 << 20, size).astype(np.int64)
    t[:3] = [0, 1, 2**40]
    n = rng.integers(1, 2**53, size).astype(np.int64)
    n[:5] = [1, 2, 3, 2**31, 2**53]

    def tt(a):
        return torch.from_numpy(np.ascontiguousarray(a).view(np.int64))

    mix, stream, uni, below = st.rng_values(tt(vals), tt(key), tt(node), tt(tree), tt(t), tt(n))
    want_mix = np.array([_kernels._mix(v) for v in vals], np.uint64)
    want_stream = np.array(
        [_kernels._stream(k, v, r) for k, v, r in zip(key, node, tree)], np.uint64
    )
    want_uni = np.array([_kernels._uniform(s, i) for s, i in zip(vals, t)], np.float64)
    want_below = np.array([_kernels._below(s, i, m) for s, i, m in zip(vals, t, n)], np.int64)
    assert np.array_equal(mix.numpy().view(np.uint64), want_mix)
    assert np.array_equal(stream.numpy().view(np.uint64), want_stream)
    assert np.array_equal(uni.numpy().view(np.uint64), want_uni.view(np.uint64))
    assert np.array_equal(below.numpy(), want_below)
    assert want_mix[0] == 0 and len(set(want_mix.tolist())) == size  # a bijection: no ties


# ---------------------------------------------------------------------- homogeneous
@pytest.mark.parametrize(
    "replace, weighted",
    [(False, False), (True, False), (False, True), (True, True)],
    ids=["uniform", "replace", "weighted", "weighted-replace"],
)
@pytest.mark.parametrize("semantics", ["pyg", "dgl"])
def test_homogeneous_matches_numba(g, replace, weighted, semantics, relabel):
    """Fanouts with -1 and 0, duplicate seeds, an isolated seed and a hub, two keys."""
    for fanouts in ([3, 2], [-1, 2], [0, 4], [5, 0, 2]):
        for key in (SampleKey(seed=1), SampleKey(seed=2, epoch=3, batch=5)):
            kw = dict(replace=replace, weighted=weighted, semantics=semantics)
            a, b = both(g, fanouts, SEEDS, key, **kw)
            assert_same(a, b)
    assert a.row.numel() > 0 and b.nodes.numel() > SEEDS.numel()


def test_large_fanouts_on_hubs(g):
    """Fanout 40 on a hub of ~50 in-edges: the CPU's hashed Floyd (k > 32), an A-Res heap of 40
    with many replacements, and 40 draws with replacement."""
    deg = g.in_degrees()
    assert 40 < int(deg[0]) < 80  # the hub really has more edges than the fanout
    for replace in (False, True):
        for weighted in (False, True):
            a, b = both(g, [40, 3], torch.tensor([0, 1]), SampleKey(seed=4),
                        replace=replace, weighted=weighted)  # fmt: skip
            assert_same(a, b)
            assert int(b.block(1).indptr[1]) == (40 if replace else min(40, int(deg[0])))


def test_disjoint_matches_numba(g):
    for weighted in (False, True):
        for fanouts in ([3, 2], [-1, 1]):
            a, b = both(g, fanouts, SEEDS, SampleKey(seed=5), disjoint=True, weighted=weighted)
            assert_same(a, b)
    tree = torch.tensor([0, 0, 1, 1, 2, 2, 3])  # several seeds per tree (as link sampling does)
    s_cpu = NeighborSampler(g, [3, 2], backend="numba", disjoint=True)
    s_gpu = NeighborSampler(g, [3, 2], backend="triton", disjoint=True)
    assert_same(s_cpu.sample_checked(SEEDS, 7, tree), s_gpu.sample_checked(SEEDS, 7, tree))


def test_both_relabel_regimes(g, monkeypatch, relabel):
    """The CPU's dense map and hash table, the Triton dense map and sorted unique: one batch."""
    kw = dict(semantics="pyg")
    ref = NeighborSampler(g, [4, 3], backend="numba", **kw).sample(SEEDS, SampleKey(seed=6))
    dense = NeighborSampler(g, [4, 3], backend="triton", **kw)
    assert dense._device_sampler.dense and dense._device_sampler.relabel == relabel
    monkeypatch.setattr(nb, "DENSE_MAP_MAX_NODES", 10)
    hashed = NeighborSampler(g, [4, 3], backend="numba", **kw).sample(SEEDS, SampleKey(seed=6))
    sorted_ = NeighborSampler(g, [4, 3], backend="triton", **kw)
    assert not sorted_._device_sampler.dense
    for sub in (
        hashed,
        dense.sample(SEEDS, SampleKey(seed=6)),
        sorted_.sample(SEEDS, SampleKey(seed=6)),
    ):
        assert_same(ref, sub)
    # A second batch on the same dense map (a new stamp) is still right.
    assert_same(
        NeighborSampler(g, [4, 3], backend="numba").sample(SEEDS, SampleKey(seed=8)),
        dense.sample(SEEDS, SampleKey(seed=8)),
    )


def test_kernel_relabel_claims_survive_their_stamps_running_out(g, monkeypatch):
    """The claim kernel's stamps count down per call; at the bottom the claims are refilled
    and counting starts over, batches unchanged (a refill mid-batch included)."""
    monkeypatch.setattr(st, "RELABEL", "kernels")
    s = NeighborSampler(g, [4, 3], backend="triton")
    ref = NeighborSampler(g, [4, 3], backend="numba")
    assert_same(ref.sample(SEEDS, SampleKey(seed=1)), s.sample(SEEDS, SampleKey(seed=1)))
    sc = s._device_sampler._scratch
    for left in (3, 2, 1):  # the refill at the seeds, at hop 1, at hop 2
        sc.cstamp = left
        key = SampleKey(seed=2, batch=left)
        assert_same(ref.sample(SEEDS, key), s.sample(SEEDS, key))
        assert sc.cstamp > st.CLAIM_STAMPS - 3


def test_graph_without_edge_ids_reports_csc_positions():
    gr = graph(edge_ids=False)
    assert gr.edge_ids is None
    a, b = both(gr, [3, 2], SEEDS, SampleKey(seed=9), weighted=True)
    assert_same(a, b)


def test_added_self_loops_keep_edge_id_minus_one():
    ei = torch.tensor([[1, 2, 3, 0], [0, 0, 1, 2]])
    gr = Graph.from_edge_index(ei, 5, self_loops="add")
    a, b = both(gr, [-1, 2], torch.tensor([0, 4]), SampleKey(seed=2))
    assert_same(a, b)
    assert (b.edge_ids == -1).any()


def test_zero_hops_give_the_seeds_alone(g, relabel):
    a, b = both(g, [], SEEDS, SampleKey(seed=1))
    assert_same(a, b)
    assert torch.equal(b.nodes, SEEDS) and b.row.numel() == 0


class _Waits(torch.utils._python_dispatch.TorchDispatchMode):
    """Counts the operators that make the host wait for a GPU: reading a value
    (``_local_scalar_dense``: ``int(t)``, ``t.item()``), ``nonzero``, boolean-mask indexing,
    ``bincount`` (its output size is the input's max) and unique; ``tolist`` is not an
    operator, so the sampler's per-hop ``tolist`` reads do not show here."""

    SYNCING = ("aten.nonzero", "aten.bincount", "aten._unique2", "aten.unique_dim",
               "aten.masked_select", "aten._local_scalar_dense")  # fmt: skip

    def __init__(self):
        super().__init__()
        self.waits = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket)
        if name in self.SYNCING:
            self.waits.append(name)
        elif name in ("aten.index", "aten.index_put_", "aten.index_put"):
            idx = args[1] if len(args) > 1 else ()
            if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in idx or ()):
                self.waits.append(name + "[bool]")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("typed", [False, True], ids=["homogeneous", "typed"])
def test_a_batch_reads_the_device_once_per_hop(g, hg, typed, relabel):
    """On a GPU every read of a device value stalls the host until the queue drains: a batch
    reads two values a hop, the hop's edge count and its new-node count (typed: the per-edge-type
    bounds and the per-type counts, by ``tolist``, which is not an operator and so not counted
    here). No boolean masks, no ``nonzero``, no ``bincount``: their sizes are known on the host
    already."""
    gr, seeds, fan = (hg, typed_seeds(hg), FANOUTS) if typed else (g, SEEDS, [3, 2, 2])
    for sem in ("pyg", "dgl"):
        s = NeighborSampler(gr, fan, backend="triton", semantics=sem)
        s.sample(seeds, SampleKey(seed=1))
        with _Waits() as w:
            s.sample(seeds, SampleKey(seed=2))
        hops = 2 if typed else 3
        assert w.waits == ([] if typed else ["aten._local_scalar_dense"] * (2 * hops)), w.waits


# ---------------------------------------------------------------------- typed
NN = {"paper": 60, "author": 40, "field": 6}
FANOUTS = {
    ("paper", "cites", "paper"): [4, 2],
    ("author", "writes", "paper"): [2, 3],
    ("paper", "rev_writes", "author"): [3, 0],
    ("field", "rev_has_topic", "paper"): [1, -1],
}


def hetero_graph(seed=0, weights=False):
    g = torch.Generator().manual_seed(seed)

    def rand(ns, nd, k):
        return torch.stack(
            [torch.randint(0, ns, (k,), generator=g), torch.randint(0, nd, (k,), generator=g)]
        )

    writes = rand(40, 60, 150)
    ed = {
        ("paper", "cites", "paper"): rand(60, 60, 300),
        ("author", "writes", "paper"): writes,
        ("paper", "rev_writes", "author"): writes.flip(0),
        ("field", "rev_has_topic", "paper"): rand(6, 60, 80),
    }
    w = None
    if weights:
        w = {et: torch.rand(ei.shape[1], generator=g) for et, ei in ed.items()}
        for x in w.values():
            x[::4] = 0.0
    return Graph.from_hetero(ed, NN, edge_weight_dict=w)


@pytest.fixture(scope="module")
def hg():
    return hetero_graph()


def typed_seeds(gr):
    off = gr.type_offsets()
    papers = torch.tensor([0, 5, 59, 7, 5]) + off[0]
    return torch.cat([papers, torch.tensor([3, 39]) + off[1], torch.tensor([2]) + off[2]])


@pytest.mark.parametrize(
    "kw",
    [dict(), dict(semantics="dgl"), dict(disjoint=True), dict(replace=True)],
    ids=["pyg", "dgl", "disjoint", "replace"],
)
def test_typed_matches_numba(hg, kw, relabel):
    """Per-edge-type fanouts (0 and -1 among them), seeds of three types with a duplicate."""
    for key in (SampleKey(seed=3), SampleKey(seed=4, batch=1)):
        a, b = both(hg, FANOUTS, typed_seeds(hg), key, **kw)
        assert_same(a, b)
    assert b.node_offsets is not None and b.row.numel() > 0


def test_typed_weighted_matches_numba():
    hw = hetero_graph(1, weights=True)
    for replace in (False, True):
        for sem in ("pyg", "dgl"):
            a, b = both(hw, FANOUTS, typed_seeds(hw), SampleKey(seed=2), weighted=True,
                        replace=replace, semantics=sem)  # fmt: skip
            assert_same(a, b)


# ---------------------------------------------------------------------- routing and checks
def test_backend_choice(g):
    assert NeighborSampler(g, [2]).backend == "numba"  # a CPU graph, no device: numba
    s = NeighborSampler(g, [2], backend="triton")
    assert s.backend == "triton" and s._device_sampler.device == torch.device("cpu")
    with pytest.raises(ValueError, match="backend must be one of"):
        NeighborSampler(g, [2], backend="cuda")
    with pytest.raises(NotImplementedError, match="not implemented on the GPU sampler"):
        NeighborSampler(g, [2], backend="triton", subgraph_type="induced")
    with pytest.raises(ValueError, match="backend='numba' samples on the CPU"):
        NeighborSampler(g, [2], backend="numba", device="cuda")
    with pytest.raises(NotImplementedError, match="fanouts above 1024 without replacement"):
        NeighborSampler(g, [1025], backend="triton")
    NeighborSampler(g, [1025], backend="triton", replace=True)  # independent draws: no tile


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_cuda_device_without_gpu_is_a_clear_error(g):
    with pytest.raises(ValueError, match="needs a CUDA device"):
        NeighborSampler(g, [2], device="cuda")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        g.pin_memory_()


def test_bad_weights_are_rejected_before_any_launch():
    for bad, msg in ((float("nan"), "must be finite; edge 1"), (-1.0, "must be >= 0; edge 1")):
        w = torch.tensor([1.0, bad, 2.0])
        gr = Graph.from_csc(torch.tensor([0, 2, 3]), torch.tensor([1, 0, 0]))
        gr.edge_weight = w
        with pytest.raises(ValueError, match=msg):
            NeighborSampler(gr, [1], weighted=True, backend="triton")
    gr = Graph.from_csc(torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(ValueError, match="needs a graph with edge_weight"):
        NeighborSampler(gr, [1], weighted=True, backend="triton")


def test_pickle_roundtrip(g):
    import pickle

    s = NeighborSampler(g, [3, 2], backend="triton", weighted=True, replace=True)
    s2 = pickle.loads(pickle.dumps(s))
    assert s2.backend == "triton" and s2._device_sampler is not s._device_sampler
    assert_same(s.sample(SEEDS, SampleKey(seed=1)), s2.sample(SEEDS, SampleKey(seed=1)))


def test_seeds_are_checked_on_the_triton_path(g):
    s = NeighborSampler(g, [2], backend="triton")
    with pytest.raises(ValueError, match="out of range"):
        s.sample(torch.tensor([0, 62]), SampleKey())


_COMPILE = """
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from gnnsys.loaders import _sampler_triton as st
target = GPUTarget("cuda", 90, 32)
cnt = dict(task_node_ptr="*i64", task_etype_ptr="*i64", fan_ptr="*i64", indptr_ptr="*i64",
           tpe_ptr="*i8", w_ptr="*fp32", cumw_ptr="*fp64", counts_ptr="*i64", n_tasks="i32",
           iters="i32", BLOCK="constexpr", SEGMENTED="constexpr", WEIGHTED="constexpr",
           REPLACE="constexpr")
drw = dict(task_node_ptr="*i64", task_etype_ptr="*i64", task_tree_ptr="*i64",
           task_loc_ptr="*i64", fan_ptr="*i64",
           ekey_ptr="*i64", indptr_ptr="*i64", tpe_ptr="*i8", w_ptr="*fp32", cumw_ptr="*fp64",
           indices_ptr="*i32", eids_ptr="*i64", offs_ptr="*i64", src_ptr="*i64",
           eid_out_ptr="*i64", col_ptr="*i64", n_tasks="i32", iters="i32", BLOCK="constexpr", KMAX="constexpr",
           LOGK="constexpr", SEGMENTED="constexpr", WEIGHTED="constexpr", REPLACE="constexpr",
           DISJOINT="constexpr", HAS_EIDS="constexpr")
def draw(weighted, replace, kmax, typed=True):
    block = max(st.MIN_BLOCK, min(st.MAX_BLOCK, st.TILE_ELEMS // kmax))
    c = dict(BLOCK=block, KMAX=kmax, LOGK=kmax.bit_length() - 1, SEGMENTED=typed,
             WEIGHTED=weighted, REPLACE=replace, DISJOINT=typed, HAS_EIDS=typed)
    k = triton.compile(ASTSource(fn=st._draw_kernel, signature=drw, constexprs=c), target=target)
    assert "ptx" in k.asm
for weighted in (False, True):
    for replace in (False, True):
        c = dict(BLOCK=st.MAX_BLOCK, SEGMENTED=True, WEIGHTED=weighted, REPLACE=replace)
        k = triton.compile(ASTSource(fn=st._count_kernel, signature=cnt, constexprs=c), target=target)
        assert "ptx" in k.asm
        if replace:
            draw(weighted, replace, 1)
        else:  # the smallest and the largest register tile
            draw(weighted, replace, 16)
            draw(weighted, replace, st.MAX_TILE_FANOUT)
draw(False, False, 16, typed=False)
# the dense relabel's kernels (RELABEL = "kernels"), with their scalars as i32 and as i64
blk = dict(BLOCK=st.RELABEL_BLOCK)
for it in ("i32", "i64"):
    sig = dict(u_ptr="*i64", mapv_ptr="*i64", claim_ptr="*i64", old_ptr="*i64", e=it, stamp=it,
               cstamp=it, BLOCK="constexpr")
    k = triton.compile(ASTSource(fn=st._claim_kernel, signature=sig, constexprs=blk), target=target)
    assert "atom" in k.asm["ptx"]
    sig = dict(u_ptr="*i64", claim_ptr="*i64", old_ptr="*i64", fpos_ptr="*i64", isf_ptr="*i8",
               e=it, BLOCK="constexpr")
    triton.compile(ASTSource(fn=st._first_kernel, signature=sig, constexprs=blk), target=target)
    sig = dict(u_ptr="*i64", old_ptr="*i64", fpos_ptr="*i64", csum_ptr="*i64", mapv_ptr="*i64",
               rows_ptr="*i64", new_ptr="*i64", e=it, n=it, stamp=it, BLOCK="constexpr")
    triton.compile(ASTSource(fn=st._place_kernel, signature=sig, constexprs=blk), target=target)
print("COMPILED")
"""


@pytest.mark.slow
def test_kernels_compile_for_cuda(compiles_for_cuda):
    """Compile every kernel variant for sm_90 (no GPU needed; outside the interpreter, so in a
    child process): catches code the interpreter accepts but the Triton compiler rejects (loop
    variables changing type, unsigned constants). Skips only when Triton lacks its CUDA
    backend or ahead-of-time API, or ptxas is missing."""
    pytest.importorskip("triton.backends.nvidia", reason="Triton without its CUDA backend")
    pytest.importorskip("triton.backends.compiler", reason="Triton < 3: no ahead-of-time API")
    compiles_for_cuda(_COMPILE, timeout=900)


# ---------------------------------------------------------------------- on a GPU
def _cuda_copy(gr):
    """The same graph with every array on the GPU."""

    def mv(t):
        return t.cuda() if t is not None else None

    return Graph(
        mv(gr.indptr), mv(gr.indices), edge_ids=mv(gr.edge_ids), edge_weight=mv(gr.edge_weight),
        node_type_offset=mv(gr.node_type_offset), type_per_edge=mv(gr.type_per_edge),
        node_types=gr.node_types if gr.is_hetero else None,
        edge_types=gr.edge_types if gr.is_hetero else None, validate=False,
    )  # fmt: skip


def _pinned_copy(gr):
    """The same graph with its CSC page-locked in host memory (read in place by the GPU)."""
    out = Graph(
        gr.indptr.clone(), gr.indices.clone(),
        edge_ids=gr.edge_ids.clone() if gr.edge_ids is not None else None,
        edge_weight=gr.edge_weight.clone() if gr.edge_weight is not None else None,
        node_type_offset=gr.node_type_offset, type_per_edge=gr.type_per_edge,
        node_types=gr.node_types if gr.is_hetero else None,
        edge_types=gr.edge_types if gr.is_hetero else None, validate=False,
    )  # fmt: skip
    return out.pin_memory_()


@pytest.mark.gpu
def test_cuda_and_uva_match_cpu(relabel):
    """On a GPU: a CUDA graph and a pinned host graph (UVA) give the CPU's batches."""
    homo = graph(n=3000, e=60000, seed=3)
    typed = hetero_graph(2, weights=True)
    seeds = torch.randint(0, 3000, (512,), generator=torch.Generator().manual_seed(0))
    cases = [
        (homo, [10, 5], seeds, {}),
        (homo, [15, -1], seeds[:64], dict(semantics="dgl")),
        (homo, [40, 5], seeds, dict(weighted=True)),
        (homo, [10, 5], seeds, dict(weighted=True, replace=True)),
        (homo, [10, 5], seeds, dict(replace=True)),
        (homo, [10, 5], seeds[:128], dict(disjoint=True)),
        (typed, FANOUTS, typed_seeds(typed), dict(weighted=True)),
        (typed, FANOUTS, typed_seeds(typed), dict(semantics="dgl")),
    ]
    for gr, fanouts, sd, kw in cases:
        ref = NeighborSampler(gr, fanouts, backend="numba", **kw).sample(sd, SampleKey(seed=11))
        for other in (_cuda_copy(gr), _pinned_copy(gr)):
            s = NeighborSampler(other, fanouts, **kw)
            assert s.backend == "triton" and s._device_sampler.device.type == "cuda"
            sub = s.sample(sd, SampleKey(seed=11))
            assert sub.nodes.is_cuda
            assert_same(ref, sub)
        s = NeighborSampler(gr, fanouts, device="cuda", **kw)  # a CPU graph copied once
        assert_same(ref, s.sample(sd.cuda(), SampleKey(seed=11)))
