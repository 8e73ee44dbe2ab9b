"""gnnsys.ops.sparse: spmm / sddmm / edge_softmax / segment_reduce against dense and scatter
references, gradients (gradcheck in float64), NaN propagation, edge cases and validation; the
Triton kernels run through the same public ops under TRITON_INTERPRET=1 on CPU tensors (those
tests skip, each reported, when triton is not installed; the CPU tests run without it)."""

import gc
import importlib.util
import os
import subprocess
import sys

import numba
import pytest
import torch

from gnnsys import Graph
from gnnsys.ops import sparse
from gnnsys.ops.sparse import (
    adj_size,
    edge_softmax,
    in_degrees,
    out_degrees,
    sddmm,
    segment_reduce,
    spmm,
)

_SCATTER = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin"}
needs_triton = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None, reason="triton is not installed (the gpu extra)"
)
_TOL = {
    torch.float64: 1e-10,
    torch.float32: 1e-5,
    torch.float16: 1e-2,
    torch.bfloat16: 5e-2,
}


class CscAdj:
    """A minimal adjacency: anything with adj_csc() (bipartite allowed, any index dtype)."""

    def __init__(self, indptr, indices, num_src, num_dst):
        self.indptr, self.indices = indptr, indices
        self.num_src, self.num_dst = num_src, num_dst

    def adj_csc(self):
        return self.indptr, self.indices, self.num_src, self.num_dst


def make_edges(num_src=9, num_dst=7, num_edges=30, seed=0):
    """Random edges with duplicates, self loops (where ids overlap) and empty destinations."""
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_src, (num_edges,), generator=gen)
    dst = torch.randint(0, max(num_dst - 2, 1), (num_edges,), generator=gen)  # last 2 empty
    src[:3] = dst[:3]  # self loops
    src[3], dst[3] = src[4], dst[4]  # a duplicate edge
    return torch.stack([src, dst])


def csc_of(edge_index, num_src, num_dst, index_dtype=torch.int32):
    """(CscAdj, perm): CSC built independently of the library, perm = CSC pos -> edge pos."""
    perm = torch.argsort(edge_index[1], stable=True)
    indices = edge_index[0][perm].to(index_dtype)
    indptr = torch.zeros(num_dst + 1, dtype=torch.int64)
    indptr[1:] = torch.cumsum(torch.bincount(edge_index[1], minlength=num_dst), 0)
    return CscAdj(indptr, indices, num_src, num_dst), perm


def ref_spmm(edge_index, x, reduce, num_dst, w=None):
    src, dst = edge_index
    msg = x[src]
    if w is not None:
        msg = msg * w.view((-1,) + (1,) * (msg.dim() - 1))
    out = torch.zeros((num_dst,) + tuple(x.shape[1:]), dtype=x.dtype)
    idx = dst.view((-1,) + (1,) * (msg.dim() - 1)).expand_as(msg)
    return out.scatter_reduce(0, idx, msg, _SCATTER[reduce], include_self=False)


# ------------------------------------------------------------------------------ spmm forward
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_spmm_matches_scatter_reduce(reduce, dtype):
    ei = make_edges()
    adj, perm = csc_of(ei, 9, 7)
    x = torch.randn(9, 5, dtype=torch.float64).to(dtype)
    w = torch.rand(ei.shape[1], dtype=torch.float64).to(dtype) + 0.5
    tol = _TOL[dtype]
    want = ref_spmm(ei, x.double(), reduce, 7)
    for got in (spmm(adj, x, reduce), spmm((ei, (9, 7)), x, reduce)):
        assert got.dtype == dtype and got.shape == (7, 5)
        torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol)
    want_w = ref_spmm(ei, x.double(), reduce, 7, w.double())
    torch.testing.assert_close(
        spmm((ei, (9, 7)), x, reduce, edge_weight=w).double(), want_w, rtol=tol, atol=tol
    )
    torch.testing.assert_close(
        spmm(adj, x, reduce, edge_weight=w[perm]).double(), want_w, rtol=tol, atol=tol
    )


def test_spmm_sum_matches_dense_matmul_on_graph():
    ei = make_edges(9, 9, 40, seed=1)
    w = torch.rand(40, dtype=torch.float64)
    g = Graph.from_edge_index(ei, 9, edge_weight=w)
    dense = torch.zeros(9, 9, dtype=torch.float64)
    dense.index_put_((ei[1], ei[0]), w, accumulate=True)  # dense[dst, src]
    x = torch.randn(9, 6, dtype=torch.float64)
    torch.testing.assert_close(spmm(g, x, "sum", g.edge_weight), dense @ x)
    counts = torch.zeros(9, 9, dtype=torch.float64)
    counts.index_put_((ei[1], ei[0]), torch.ones(40, dtype=torch.float64), accumulate=True)
    torch.testing.assert_close(spmm(g, x), counts @ x)


def test_spmm_int64_indices_and_trailing_shapes():
    ei = make_edges()
    adj64, _ = csc_of(ei, 9, 7, torch.int64)
    x = torch.randn(9, 2, 3)
    for reduce in ("sum", "max"):
        torch.testing.assert_close(spmm(adj64, x, reduce), ref_spmm(ei, x, reduce, 7))
    x1 = torch.randn(9)
    torch.testing.assert_close(spmm(adj64, x1, "mean"), ref_spmm(ei, x1, "mean", 7))


def test_spmm_per_head_weights():
    ei = make_edges()
    adj, perm = csc_of(ei, 9, 7)
    x = torch.randn(9, 3, 4, dtype=torch.float64)
    w = torch.rand(ei.shape[1], 3, dtype=torch.float64)
    src, dst = ei
    want = torch.zeros(7, 3, 4, dtype=torch.float64).index_add_(0, dst, x[src] * w[:, :, None])
    torch.testing.assert_close(spmm((ei, (9, 7)), x, "sum", w), want)
    torch.testing.assert_close(spmm(adj, x, "sum", w[perm].unsqueeze(-1)), want)


@pytest.mark.parametrize("use_w", [False, True])
@pytest.mark.parametrize("use_perm", [False, True])
@pytest.mark.parametrize("mean", [False, True])
def test_flat_spmm_kernel_equals_the_per_head_kernel_bitwise(use_w, use_perm, mean):
    # The op runs one-row-per-node sums (any heads unweighted, one head weighted) on the flat
    # kernel and per-head weights on the 3-D one: same sums in the same order, same bits.
    import numpy as np

    from gnnsys.ops import _sparse_cpu as k

    g = torch.Generator().manual_seed(3)
    n_dst, n_src, e = 40, 60, 400
    dst = torch.randint(0, n_dst, (e,), generator=g).sort().values
    indptr = torch.zeros(n_dst + 1, dtype=torch.int64)
    indptr[1:] = torch.cumsum(torch.bincount(dst, minlength=n_dst), 0)
    indices = torch.randint(0, n_src, (e,), generator=g).numpy()
    eperm = torch.randperm(e, generator=g).numpy()
    heads = 1 if use_w else 3
    x = torch.randn(n_src, heads, 5, generator=g).numpy()
    w = torch.randn(e, heads, generator=g).numpy()
    ip = indptr.numpy()
    want = np.empty((n_dst, heads, 5), np.float32)
    unit = np.ones_like(w)  # the per-head kernel always weighs: 1.0 * x is x, bit for bit
    k.spmm_sum(0, n_dst, ip, indices, eperm, use_perm, x, w if use_w else unit, mean, want)
    got = np.empty((n_dst, heads * 5), np.float32)
    flat_w = w[:, 0] if use_w else np.empty(0, np.float32)
    x_flat = x.reshape(n_src, heads * 5)
    k.spmm_sum_flat(0, n_dst, ip, indices, eperm, use_perm, x_flat, flat_w, use_w, mean, got)
    assert np.array_equal(got, want.reshape(n_dst, -1))


def test_spmm_edge_cases_empty_graph_and_isolated_nodes():
    x = torch.randn(4, 3)
    empty = (torch.zeros(2, 0, dtype=torch.int64), 4)
    for reduce in ("sum", "mean", "max", "min"):
        assert torch.equal(spmm(empty, x, reduce), torch.zeros(4, 3))
    # no nodes at all
    none = (torch.zeros(2, 0, dtype=torch.int64), 0)
    assert spmm(none, torch.zeros(0, 3), "sum").shape == (0, 3)
    # one self loop on node 2 only: every other row is empty
    g = Graph.from_edge_index(torch.tensor([[2], [2]]), 4)
    out = spmm(g, x, "max")
    assert torch.equal(out[2], x[2]) and torch.equal(out[[0, 1, 3]], torch.zeros(3, 3))


# ------------------------------------------------------------------------------ spmm backward
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_spmm_gradcheck(reduce):
    ei = make_edges(6, 5, 16, seed=2)
    adj, perm = csc_of(ei, 6, 5)
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    w = (torch.rand(16, dtype=torch.float64) + 0.5).requires_grad_()
    if reduce in ("max", "min"):  # the duplicate edge ties; gradcheck needs distinct messages
        w = (torch.arange(16, dtype=torch.float64) / 16 + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w: spmm((ei, (6, 5)), x, reduce, w), (x, w))
    assert torch.autograd.gradcheck(lambda x: spmm(adj, x, reduce), (x,))
    xh = torch.randn(6, 2, 2, dtype=torch.float64, requires_grad=True)
    wh = (torch.rand(16, 2, dtype=torch.float64) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w: spmm(adj, x, reduce, w[perm]), (xh, wh))


@pytest.mark.parametrize("reduce", ["sum", "max"])
def test_spmm_backward_float32_matches_reference(reduce):
    ei = make_edges(50, 40, 300, seed=3)
    x = torch.randn(50, 8, requires_grad=True)
    w = (torch.rand(300) + 0.5).requires_grad_()
    gout = torch.randn(40, 8)
    got = torch.autograd.grad(spmm((ei, (50, 40)), x, reduce, w), (x, w), gout)
    want = torch.autograd.grad(ref_spmm(ei, x, reduce, 40, w), (x, w), gout)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("mean", [False, True])
def test_spmm_backward_leaves_constant_sources_at_zero(weighted, mean):
    # num_grad_src = 30: sources 30..49 are constants (a pipeline block's history rows); the
    # gradient of the others is bitwise the full backward's, theirs is 0.
    ei = make_edges(50, 40, 300, seed=5)
    adj, perm = csc_of(ei, 50, 40)
    cut = CscAdj(adj.indptr, adj.indices, 50, 40)
    cut.num_grad_src = 30
    x = torch.randn(50, 16, requires_grad=True)
    w = (torch.rand(300) + 0.5)[perm] if weighted else None
    gout = torch.randn(40, 16)
    reduce = "mean" if mean else "sum"
    (full,) = torch.autograd.grad(spmm(adj, x, reduce, w), x, gout)
    for _ in range(2):  # the second call reads the cached cut transpose
        (got,) = torch.autograd.grad(spmm(cut, x, reduce, w), x, gout)
        assert torch.equal(got[:30], full[:30])
        assert not got[30:].any()
    assert full[30:].any()  # (the cut rows do get a gradient without num_grad_src)


def test_spmm_num_grad_src_is_checked():
    ei = make_edges(9, 7, 30)
    adj, _ = csc_of(ei, 9, 7)
    adj.num_grad_src = 10
    with pytest.raises(ValueError, match="num_grad_src"):
        spmm(adj, torch.randn(9, 2), "sum")
    adj.num_grad_src = -1
    with pytest.raises(ValueError, match="num_grad_src"):
        spmm(adj, torch.randn(9, 2), "sum")


def test_spmm_max_tie_goes_to_first_edge():
    # two parallel edges 0 -> 1: equal messages, the gradient goes to the first (CSC order)
    ei = torch.tensor([[0, 0], [1, 1]])
    w = torch.tensor([1.0, 1.0], requires_grad=True)
    x = torch.tensor([[2.0], [0.0]], requires_grad=True)
    spmm((ei, 2), x, "max", w).sum().backward()
    assert w.grad.tolist() == [2.0, 0.0]
    assert x.grad.tolist() == [[1.0], [0.0]]


# ------------------------------------------------------------------------------ NaN inputs
NAN = float("nan")
# Edge orders tried: as written, reversed, three seeded shuffles (before the fix the result of
# a row holding a NaN depended on whether the NaN came first).
_ORDERS = [None, "reversed", 0, 1, 2]


def _nan_case():
    """7 sources x 3 features into 4 destinations (the last one empty). Feature 0 has one NaN
    source, feature 1 two, feature 2 none but +-inf; edge 8 has a NaN weight."""
    x = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    x[1, 0] = x[2, 1] = x[4, 1] = NAN
    x[0, 2], x[3, 2] = torch.inf, -torch.inf
    src = torch.tensor([0, 1, 2, 3, 2, 4, 5, 0, 3, 5, 1, 6])
    dst = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 1])
    w = torch.linspace(0.5, 1.5, 12, dtype=torch.float64)
    w[8] = NAN
    return torch.stack([src, dst]), x, w


def _reorder(ei, w, order):
    if order is None:
        return ei, w
    perm = (
        torch.arange(ei.shape[1] - 1, -1, -1)
        if order == "reversed"
        else torch.randperm(ei.shape[1], generator=torch.Generator().manual_seed(order))
    )
    return ei[:, perm], w[perm]


def ref_first_arg(edge_index, x, reduce, num_dst, gout, w=None):
    """(out, dx, dw) of max/min by loops, spelling out what spmm documents: per destination and
    feature the winning edge is the first NaN message of the row in CSC order (edges sorted
    stably by destination), else the first extremum; the gradient goes to that edge alone.
    (Autograd through a dense reference cannot be used: its 0 * NaN for edges that lost gives
    NaN gradients.) Empty rows give 0."""
    src, dst = edge_index.tolist()
    ones = torch.ones(len(src), dtype=x.dtype)
    wl = (w if w is not None else ones).tolist()
    xl = x.tolist()
    order = sorted(range(len(src)), key=lambda k: dst[k])  # stable
    out = torch.zeros(num_dst, x.shape[1], dtype=x.dtype)
    dx, dw = torch.zeros_like(x), torch.zeros_like(ones)
    for v in range(num_dst):
        for f in range(x.shape[1]):
            win, best = None, None
            for k in (k for k in order if dst[k] == v):
                m = wl[k] * xl[src[k]][f]
                if win is None or (m != m and best == best):
                    win, best = k, m
                elif best == best and (m > best if reduce == "max" else m < best):
                    win, best = k, m
            if win is not None:
                out[v, f] = best
                dx[src[win], f] += gout[v, f] * wl[win]
                dw[win] += gout[v, f] * xl[src[win]][f]
    return out, dx, dw


def check_nan_spmm(reduce, device="cpu"):
    """spmm max/min with NaN messages: forward equal to torch.scatter_reduce (NaN propagates),
    gradients equal to ref_first_arg's, in every edge order; through the backend in force."""
    ei0, x0, w0 = _nan_case()
    want_nan = None
    for order in _ORDERS:
        ei, w = _reorder(ei0, w0, order)
        for weighted in (False, True):
            x = x0.clone().to(device).requires_grad_()
            wt = w.clone().to(device).requires_grad_() if weighted else None
            got = spmm((ei.to(device), (7, 4)), x, reduce, wt)
            want = ref_spmm(ei, x0, reduce, 4, w if weighted else None)
            torch.testing.assert_close(got.detach().cpu(), want, rtol=0, atol=0, equal_nan=True)
            if not weighted:  # the same NaN pattern whatever the order
                nan_at = torch.isnan(want)
                assert want_nan is None or torch.equal(nan_at, want_nan)
                want_nan = nan_at
            gout = torch.linspace(-1, 1, 12, dtype=torch.float64).view(4, 3)
            got_g = torch.autograd.grad(got, [x] + ([wt] if weighted else []), gout.to(device))
            ref, *want_g = ref_first_arg(ei, x0, reduce, 4, gout, w if weighted else None)
            torch.testing.assert_close(ref, want, rtol=0, atol=0, equal_nan=True)
            for a, b in zip(got_g, want_g):
                torch.testing.assert_close(a.cpu(), b, rtol=0, atol=0, equal_nan=True)
    # rows 0 and 1 of feature 0, rows 0-2 of feature 1 are NaN; feature 2 and row 3 are not
    assert want_nan.tolist() == [[True, True, False], [False, True, False],
                                 [True, False, False], [False, False, False]]  # fmt: skip


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_spmm_nan_propagates_in_any_edge_order(reduce):
    check_nan_spmm(reduce)


def test_segment_reduce_nan_propagates_in_any_position():
    for pos in range(3):
        src = torch.tensor([1.0, -torch.inf, 2.0], dtype=torch.float64)
        src[pos] = NAN
        src.requires_grad_()
        for reduce in ("max", "min"):
            out = segment_reduce(src, torch.tensor([0, 3, 3]), reduce)
            assert torch.isnan(out[0]) and out[1] == 0
            (g,) = torch.autograd.grad(out, src, torch.tensor([1.0, 1.0], dtype=torch.float64))
            assert g.tolist() == [float(i == pos) for i in range(3)]  # all to the NaN


def test_half_precision_gradients_flow():
    ei = make_edges()
    x = torch.randn(9, 4, dtype=torch.bfloat16, requires_grad=True)
    spmm((ei, (9, 7)), x, "mean").float().sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16


# ------------------------------------------------------------------------------ cache, determinism
@pytest.mark.parametrize("width", [1, 16, 40, 128, 1100])
def test_prefetching_kernels_keep_the_bits_at_every_row_width(width):
    # spmm_sum_flat prefetches the source rows 4-16 edges ahead (fewer for wider rows) until
    # the last edges; the per-head kernel (no prefetch) gives the reference bits.
    import numpy as np

    from gnnsys.ops import _sparse_cpu as k

    g = torch.Generator().manual_seed(5)
    n_dst, n_src, e = 30, 500, 700
    dst = torch.randint(0, n_dst, (e,), generator=g).sort().values
    ip = torch.zeros(n_dst + 1, dtype=torch.int64)
    ip[1:] = torch.cumsum(torch.bincount(dst, minlength=n_dst), 0)
    ip = ip.numpy()
    indices = torch.randint(0, n_src, (e,), generator=g).int().numpy()
    x = torch.randn(n_src, 1, width, generator=g).numpy()
    w = torch.randn(e, 1, generator=g).numpy()
    none = np.empty(0, np.int64)
    want = np.empty((n_dst, 1, width), np.float32)
    k.spmm_sum(0, n_dst, ip, indices, none, False, x, w, False, want)
    got = np.empty((n_dst, width), np.float32)
    k.spmm_sum_flat(0, n_dst, ip, indices, none, False, x[:, 0], w[:, 0], True, False, got)
    assert np.array_equal(got, want[:, 0])
    assert [k._prefetch_distance(b) for b in (4, 64, 256, 512, 4096)] == [16, 16, 16, 8, 4]
    # the SDDMMs prefetch the same way: per-edge sums and dots against numpy
    dst_of = np.repeat(np.arange(n_dst), np.diff(ip))
    y = torch.randn(n_dst, 1, width, generator=g).numpy()
    out = np.empty((e, 1, width), np.float32)
    k.sddmm_binary(0, n_dst, ip, indices, x, y, False, out)
    assert np.array_equal(out, x[indices] + y[dst_of])
    dots = np.empty((e, 1), np.float32)
    k.sddmm_dot(0, n_dst, ip, indices, x, y, dots)
    assert np.allclose(dots, (x[indices] * y[dst_of]).sum(-1), rtol=1e-4, atol=1e-4)


def test_weighted_backward_reads_weights_in_the_transposed_order_cached():
    # dX = A^T G reads the edge weights permuted into the transposed CSC's order (in sequence,
    # not through eperm): the same bits as the eperm read, one cached copy per adjacency and
    # dtype while the weights are the same tensor, rebuilt when they change.
    g = Graph.from_edge_index(make_edges(30, 30, 300, seed=6), 30)
    w = torch.rand(g.num_edges)
    x = torch.randn(30, 8, requires_grad=True)
    grad = torch.randn(30, 8)
    spmm(g, x, "sum", w).backward(grad)
    a = sparse._resolve(g, torch.device("cpu"))
    t = a.transposed()
    want = sparse._NumbaBackend.spmm_sum(t, grad.view(30, 1, 8), w.view(-1, 1), False)
    assert t.eperm is not None and torch.equal(x.grad, want.view(30, 8))
    entry = sparse._CACHE[id(g.indices)]
    slots = [k for k in entry.per_device if isinstance(k[1], tuple) and k[1][0] == "tw"]
    assert len(slots) == 1
    held = entry.per_device[slots[0]][0]
    x.grad = None
    spmm(g, x, "sum", w).backward(grad)
    assert entry.per_device[slots[0]][0] is held  # the same weights: the copy is reused
    w.mul_(2.0)  # in place: the version bump rebuilds the copy
    x.grad = None
    spmm(g, x, "sum", w).backward(grad)
    assert torch.allclose(x.grad, 2 * want.view(30, 8))
    for _ in range(3):  # new weights every call (attention): one slot, replaced
        x.grad = None
        w2 = torch.rand(g.num_edges)
        spmm(g, x, "sum", w2).backward(grad)
        ref = sparse._NumbaBackend.spmm_sum(t, grad.view(30, 1, 8), w2.view(-1, 1), False)
        assert torch.equal(x.grad, ref.view(30, 8))
    assert [k for k in entry.per_device if isinstance(k[1], tuple) and k[1][0] == "tw"] == slots


def test_transpose_is_cached_and_released_with_the_graph():
    g = Graph.from_edge_index(make_edges(9, 9, 30, seed=4), 9)
    x = torch.randn(9, 3, requires_grad=True)
    spmm(g, x).sum().backward()
    entry = sparse._CACHE[id(g.indices)]
    t_rows = entry.per_device[("cpu", "t")]
    spmm(g, x).sum().backward()
    assert sparse._CACHE[id(g.indices)] is entry
    assert entry.per_device[("cpu", "t")] is t_rows  # built once
    key = id(g.indices)
    del g, entry, t_rows
    gc.collect()
    assert key not in sparse._CACHE


def test_cache_notices_in_place_changes():
    ei = torch.tensor([[0, 1], [1, 0]])
    x = torch.tensor([[1.0], [10.0]])
    assert spmm((ei, 2), x).flatten().tolist() == [10.0, 1.0]
    ei[0, 0] = 1  # edge 0 becomes 1 -> 1: the version bump makes the cached CSC rebuild
    assert spmm((ei, 2), x).flatten().tolist() == [10.0, 10.0]


def test_results_do_not_depend_on_thread_count():
    ei = make_edges(3000, 2000, 80000, seed=5)  # above the single-thread cut-off
    x = torch.randn(3000, 4, requires_grad=True)
    w = torch.rand(80000, requires_grad=True)
    runs = []
    prev = numba.get_num_threads()
    try:
        for threads in (1, prev):
            numba.set_num_threads(threads)
            sparse.clear_cache()
            x.grad = w.grad = None
            out = spmm((ei, (3000, 2000)), x, "sum", w)
            out.pow(2).sum().backward()
            runs.append((out.detach().clone(), x.grad.clone(), w.grad.clone()))
    finally:
        numba.set_num_threads(prev)
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_set_deterministic_flag():
    assert sparse.is_deterministic()
    sparse.set_deterministic(False)
    try:
        assert not sparse.is_deterministic()
    finally:
        sparse.set_deterministic(True)
    with pytest.raises(TypeError, match="flag"):
        sparse.set_deterministic(1)


# ------------------------------------------------------------------------------ validation
def test_spmm_validation_errors():
    ei = make_edges()
    adj, _ = csc_of(ei, 9, 7)
    x = torch.randn(9, 3)
    with pytest.raises(ValueError, match="reduce"):
        spmm(adj, x, "prod")
    with pytest.raises(ValueError, match="x has 8 rows.*num_src=9"):
        spmm(adj, torch.randn(8, 3))
    with pytest.raises(TypeError, match="x must be float"):
        spmm(adj, torch.ones(9, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="edge_weight must have 30 rows"):
        spmm(adj, x, edge_weight=torch.ones(29))
    with pytest.raises(ValueError, match="heads"):
        spmm(adj, torch.randn(9, 4, 2), edge_weight=torch.ones(30, 3))
    with pytest.raises(TypeError, match="adj must be"):
        spmm(torch.zeros(3, 3), x)
    with pytest.raises(IndexError, match="source id 9, out of range for num_src=9"):
        spmm(CscAdj(adj.indptr, adj.indices + 1, 9, 7), x)
    with pytest.raises(IndexError, match="negative"):
        spmm(CscAdj(adj.indptr, adj.indices - 1, 9, 7), x)
    with pytest.raises(ValueError, match="indptr has 7 entries; num_dst=7 needs 8"):
        spmm(CscAdj(adj.indptr[:-1], adj.indices, 9, 7), x)
    bad = adj.indptr.clone()
    bad[2] = bad[3] + 1
    with pytest.raises(ValueError, match="non-decreasing"):
        spmm(CscAdj(bad, adj.indices, 9, 7), x)
    with pytest.raises(TypeError, match="int32 or int64"):
        spmm(CscAdj(adj.indptr, adj.indices.float(), 9, 7), x)
    with pytest.raises(IndexError, match=r"destination \(row 1\) holds id 7"):
        spmm((torch.tensor([[0], [7]]), (9, 7)), x)
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        spmm((torch.zeros(3, 2, dtype=torch.int64), 9), x)
    with pytest.raises(TypeError, match="size must be an int"):
        spmm((ei, 9.0), x)


# ------------------------------------------------------------------------------ sddmm
@pytest.mark.parametrize("op", ["dot", "add", "mul"])
def test_sddmm_matches_reference_and_gradcheck(op):
    ei = make_edges(6, 5, 16, seed=6)
    adj, perm = csc_of(ei, 6, 5)
    x = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    xs, yd = x[ei[0]], y[ei[1]]
    want = {"dot": (xs * yd).sum(-1), "add": xs + yd, "mul": xs * yd}[op]
    torch.testing.assert_close(sddmm((ei, (6, 5)), x, y, op), want)
    torch.testing.assert_close(sddmm(adj, x, y, op), want[perm])
    assert torch.autograd.gradcheck(lambda x, y: sddmm((ei, (6, 5)), x, y, op), (x, y))
    assert torch.autograd.gradcheck(lambda x, y: sddmm(adj, x, y, op), (x, y))


def test_sddmm_validation_and_2d_dot():
    ei = make_edges()
    x, y = torch.randn(9, 4), torch.randn(7, 4)
    assert sddmm((ei, (9, 7)), x, y).shape == (30,)
    with pytest.raises(ValueError, match="op"):
        sddmm((ei, (9, 7)), x, y, "sub")
    with pytest.raises(ValueError, match="y has 9 rows"):
        sddmm((ei, (9, 7)), x, torch.randn(9, 4))
    with pytest.raises(ValueError, match="trailing shape"):
        sddmm((ei, (9, 7)), x, torch.randn(7, 5))
    with pytest.raises(TypeError, match="dtype"):
        sddmm((ei, (9, 7)), x, y.double())


# ------------------------------------------------------------------------------ edge softmax
def ref_edge_softmax(ei, s, num_dst):
    dst = ei[1].view((-1,) + (1,) * (s.dim() - 1)).expand_as(s)
    m = torch.full((num_dst,) + tuple(s.shape[1:]), -torch.inf, dtype=s.dtype)
    m = m.scatter_reduce(0, dst, s, "amax")
    ex = (s - m.gather(0, dst)).exp()
    den = torch.zeros_like(m).scatter_add(0, dst, ex)
    return ex / den.gather(0, dst)


def test_edge_softmax_matches_reference_and_gradcheck():
    ei = make_edges(6, 5, 16, seed=7)
    adj, perm = csc_of(ei, 6, 5)
    s = torch.randn(16, 3, 1, dtype=torch.float64, requires_grad=True)
    want = ref_edge_softmax(ei, s, 5)
    torch.testing.assert_close(edge_softmax((ei, (6, 5)), s), want)
    torch.testing.assert_close(edge_softmax(adj, s[perm]), want[perm])
    assert torch.autograd.gradcheck(lambda s: edge_softmax((ei, (6, 5)), s), (s,))
    big = torch.tensor([1000.0, 1000.0, -5.0])  # no overflow: max-shifted
    out = edge_softmax((torch.tensor([[0, 1, 2], [0, 0, 1]]), 3), big)
    torch.testing.assert_close(out, torch.tensor([0.5, 0.5, 1.0]))
    with pytest.raises(ValueError, match="scores must have 16 rows"):
        edge_softmax((ei, (6, 5)), torch.randn(15))


# ------------------------------------------------------------------------------ segment reduce
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_segment_reduce(reduce):
    indptr = torch.tensor([0, 3, 3, 7, 8])
    src = torch.randn(8, 2, dtype=torch.float64, requires_grad=True)
    seg = torch.repeat_interleave(torch.arange(4), indptr.diff())
    want = torch.zeros(4, 2, dtype=torch.float64).scatter_reduce(
        0, seg.view(-1, 1).expand(-1, 2), src, _SCATTER[reduce], include_self=False
    )
    torch.testing.assert_close(segment_reduce(src, indptr, reduce), want)
    assert torch.autograd.gradcheck(lambda s: segment_reduce(s, indptr, reduce), (src,))


def test_segment_reduce_validation():
    src = torch.randn(5)
    with pytest.raises(ValueError, match="ends at 4 but src has 5 rows"):
        segment_reduce(src, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="start at 0"):
        segment_reduce(src, torch.tensor([1, 5]))
    with pytest.raises(ValueError, match="non-decreasing"):
        segment_reduce(src, torch.tensor([0, 3, 2, 5]))
    with pytest.raises(ValueError, match="reduce"):
        segment_reduce(src, torch.tensor([0, 5]), "prod")


_META_CALLS = {
    "csc indptr+indices": lambda m: spmm(
        CscAdj(torch.tensor([0, 1, 3], device=m), torch.tensor([0, 1, 0], device=m), 2, 2),
        torch.ones(2, 3),
    ),
    "edge_index": lambda m: spmm((torch.tensor([[0, 1], [1, 1]], device=m), 2), torch.ones(2, 3)),
    "x": lambda m: spmm((torch.tensor([[0, 1], [1, 1]]), 2), torch.ones(2, 3, device=m)),
    "scores": lambda m: edge_softmax((torch.tensor([[0, 1], [1, 1]]), 2), torch.ones(2, device=m)),
    "src": lambda m: segment_reduce(torch.ones(3, device=m), torch.tensor([0, 2, 3])),
    "indptr": lambda m: segment_reduce(torch.ones(3), torch.tensor([0, 2, 3], device=m)),
}


@pytest.mark.parametrize("what", list(_META_CALLS))
def test_meta_tensors_are_rejected_by_name(what):
    # Before: torch's "Tensor.item() cannot be called on meta tensors" (or, for x, a message
    # about the Triton backend needing CUDA); now a ValueError naming the argument.
    name = what.split()[-1].split("+")[0]
    with pytest.raises(ValueError, match=rf"{name} must be on a cpu or cuda device.*meta"):
        _META_CALLS[what]("meta")


# ------------------------------------------------------------------------------ degrees
def test_degrees_and_size():
    ei = make_edges()
    w = torch.rand(30, dtype=torch.float64, requires_grad=True)
    assert adj_size((ei, (9, 7))) == (9, 7, 30)
    assert torch.equal(in_degrees((ei, (9, 7))), torch.bincount(ei[1], minlength=7))
    assert torch.equal(out_degrees((ei, (9, 7))), torch.bincount(ei[0], minlength=9))
    torch.testing.assert_close(
        out_degrees((ei, (9, 7)), w), torch.zeros(9, dtype=torch.float64).index_add(0, ei[0], w)
    )
    torch.testing.assert_close(
        in_degrees((ei, (9, 7)), w), torch.zeros(7, dtype=torch.float64).index_add(0, ei[1], w)
    )
    assert torch.autograd.gradcheck(lambda w: out_degrees((ei, (9, 7)), w), (w,))


def test_degree_norm_and_zero_in_degrees_are_cached_with_the_adjacency():
    ei = make_edges()
    g = Graph.from_edge_index(ei, 9)
    deg_in = torch.bincount(ei[1], minlength=9).to(torch.float32).clamp(min=1)
    deg_out = torch.bincount(ei[0], minlength=9).to(torch.float64).clamp(min=1)
    a = sparse.degree_norm(g, "in", "sqrt", torch.float32)
    assert torch.equal(a, deg_in.pow(-0.5))  # the same ops: the same bits
    assert torch.equal(sparse.degree_norm(g, "out", "inv", torch.float64), 1.0 / deg_out)
    assert sparse.degree_norm(g, "in", "sqrt", torch.float32) is a  # computed once
    assert sparse.degree_norm(g, "in", "sqrt", torch.float64).dtype == torch.float64
    count, first = sparse.zero_in_degrees(g)
    zero = torch.bincount(ei[1], minlength=9) == 0
    assert count == int(zero.sum()) and first == (int(torch.nonzero(zero)[0]) if count else -1)
    assert sparse.zero_in_degrees((torch.tensor([[0], [1]]), 3)) == (2, 0)
    assert sparse.zero_in_degrees((torch.tensor([[0, 1, 2], [0, 1, 2]]), 3)) == (0, -1)
    # An adjacency changed in place is a new one: its cache is rebuilt.
    ei2 = ei.clone()
    before = sparse.degree_norm((ei2, 9), "in", "inv", torch.float32)
    ei2[1] = 0
    after = sparse.degree_norm((ei2, 9), "in", "inv", torch.float32)
    assert after[0] == 1.0 / ei.shape[1] and not torch.equal(before, after)
    with pytest.raises(ValueError, match="side"):
        sparse.degree_norm(g, "both", "sqrt", torch.float32)
    with pytest.raises(ValueError, match="kind"):
        sparse.degree_norm(g, "in", "mean", torch.float32)
    with pytest.raises(TypeError, match="floating torch.dtype"):
        sparse.degree_norm(g, "in", "sqrt", torch.int64)


# ------------------------------------------------------------------------------ Triton backend
# The Triton kernels run through the public ops: on CUDA when present, else on CPU tensors under
# TRITON_INTERPRET=1 (set by conftest). Each is compared with the numba backend on CPU copies.
# Every test here carries ``needs_triton``: without triton they skip one by one (reported).


def _both(fn, device, *tensors):
    """Run fn(*tensors) with forward + backward on numba/CPU and on Triton/device."""
    results = []
    for backend, dev in (("numba", torch.device("cpu")), ("triton", device)):
        ts = [t.detach().to(dev).requires_grad_(t.is_floating_point()) for t in tensors]
        name = backend if dev.type == "cpu" else None
        with sparse._force_backend(name):
            out = fn(*ts)
            out.backward(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out).to(dev))
        grads = [t.grad.cpu() for t in ts if t.is_floating_point()]
        results.append([out.detach().cpu()] + grads)
    return results


@needs_triton
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_triton_spmm_matches_numba(reduce, device):
    ei = make_edges(6, 5, 14, seed=8)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    w = torch.rand(14, 2, dtype=torch.float64) + 0.5
    want, got = _both(
        lambda ei, x, w: spmm((ei, (6, 5)), x, reduce, w), device, ei.to(device), x, w
    )
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


@needs_triton
@pytest.mark.parametrize("weighted", [False, True])
def test_triton_spmm_backward_leaves_constant_sources_at_zero(weighted, device):
    ei = make_edges(6, 5, 14, seed=8)
    adj, perm = csc_of(ei, 6, 5)
    x = torch.randn(6, 3, dtype=torch.float64)
    w = (torch.rand(14, dtype=torch.float64) + 0.5)[perm] if weighted else None

    def run(indptr, indices, x, *w):
        cut = CscAdj(indptr, indices, 6, 5)
        cut.num_grad_src = 4
        return spmm(cut, x, "sum", w[0] if w else None)

    want, got = _both(run, device, adj.indptr, adj.indices, x, *([w] if weighted else []))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    assert not want[1][4:].any() and want[1][:4].any()


@needs_triton
def test_triton_sddmm_softmax_segment_match_numba(device):
    ei = make_edges(6, 5, 14, seed=9)
    x, y = torch.randn(6, 2, 3, dtype=torch.float64), torch.randn(5, 2, 3, dtype=torch.float64)
    for op in ("dot", "add", "mul"):
        want, got = _both(lambda ei, x, y, op=op: sddmm((ei, (6, 5)), x, y, op), device, ei, x, y)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)
    s = torch.randn(14, 2, dtype=torch.float64)
    want, got = _both(lambda ei, s: edge_softmax((ei, (6, 5)), s), device, ei, s)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    indptr = torch.tensor([0, 2, 2, 5])
    src = torch.randn(5, 3, dtype=torch.float64)
    want, got = _both(lambda ip, s: segment_reduce(s, ip, "max"), device, indptr, src)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


@needs_triton
@pytest.mark.parametrize("reduce", ["max", "min"])
def test_triton_spmm_nan_propagates_in_any_edge_order(reduce, device):
    with sparse._force_backend("triton" if device.type == "cpu" else None):
        check_nan_spmm(reduce, device)


_NO_GPU = """
import torch
from gnnsys.ops import sparse
try:
    with sparse._force_backend("triton"):
        sparse.spmm((torch.tensor([[0, 1], [1, 0]]), 2), torch.ones(2, 3))
except RuntimeError as e:
    print("ERROR:", e)
"""


@needs_triton
def test_triton_backend_without_gpu_or_interpreter_says_so():
    """Without TRITON_INTERPRET and with no GPU visible (a child process), forcing the Triton
    backend is a clear error before any launch, not Triton's "0 active drivers"."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run([sys.executable, "-c", _NO_GPU], env=env, cwd=root,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    want = (
        "ERROR: the Triton backend of the sparse ops needs a CUDA device; none is available "
        "(torch.cuda.is_available() is False)"
    )
    assert want in res.stdout, res.stdout + res.stderr[-3000:]


@needs_triton
def test_triton_backend_on_cpu_tensors_with_a_gpu_says_so(monkeypatch):
    """Compiled kernels (no interpreter) and CPU tensors on a machine with a GPU: told to move
    the tensors; nothing launches (the check is in front of every kernel)."""
    from gnnsys.ops import _sparse_triton

    monkeypatch.setattr(_sparse_triton, "INTERPRETED", False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    launched = []
    monkeypatch.setattr(_sparse_triton, "spmm_sum", lambda *a: launched.append(a))
    with sparse._force_backend("triton"):
        with pytest.raises(RuntimeError, match="runs on CUDA tensors, got tensors on cpu"):
            spmm((torch.tensor([[0, 1], [1, 0]]), 2), torch.ones(2, 3))
    assert launched == []


@needs_triton
def test_triton_atomic_backward_and_half_precision(device):
    ei = make_edges(6, 5, 14, seed=10)
    x = torch.randn(6, 4, dtype=torch.float64)
    w = torch.rand(14, dtype=torch.float64)
    want = _both(lambda ei, x, w: spmm((ei, (6, 5)), x, "mean", w), device, ei, x, w)[0]
    sparse.set_deterministic(False)  # CUDA backward scatters with atomics, no transpose
    try:
        got = _both(lambda ei, x, w: spmm((ei, (6, 5)), x, "mean", w), device, ei, x, w)[1]
    finally:
        sparse.set_deterministic(True)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    xh = torch.randn(6, 4).half()
    want, got = _both(lambda ei, x: spmm((ei, (6, 5)), x, "sum"), device, ei, xh)
    torch.testing.assert_close(got[0], want[0], rtol=1e-2, atol=1e-2)


# ------------------------------------------------------------------------------ Triton: blocked
# edges and split rows. Programs walk MAX_BLOCK_E edges per step; rows of more than SEG_EDGES
# edges are cut into segments (one program each) whose partials a second kernel combines.


@pytest.fixture
def small_segments(monkeypatch):
    """Rows of more than 3 edges split, 2 edges per step: every split, partial and masked path
    of the kernels runs on graphs of a few dozen edges."""
    from gnnsys.ops import _sparse_triton

    monkeypatch.setattr(_sparse_triton, "SEG_EDGES", 3)
    monkeypatch.setattr(_sparse_triton, "MAX_BLOCK_E", 2)
    return _sparse_triton


@needs_triton
def test_segment_plan():
    from gnnsys.ops._sparse_triton import build_plan

    # rows of 5, 0, 1 and 4 edges in segments of at most 2 edges
    p = build_plan(torch.tensor([0, 5, 5, 6, 10]), 2)
    assert p.segmented and p.num_programs == 7 and (p.n_split, p.n_part) == (2, 5)
    assert p.seg_row.tolist() == [0, 0, 0, 1, 2, 3, 3]
    assert p.seg_lo.tolist() == [0, 2, 4, 5, 5, 6, 8]
    assert p.seg_hi.tolist() == [2, 4, 5, 5, 6, 8, 10]
    assert p.seg_part.tolist() == [0, 1, 2, -1, -1, 3, 4]
    assert p.split_rows.tolist() == [0, 3] and p.split_ptr.tolist() == [0, 3, 5]
    assert p.part_seg.tolist() == [0, 1, 2, 5, 6]
    q = build_plan(torch.tensor([0, 2, 2, 3]), 2)  # no row over 2 edges: a program per row
    assert not q.segmented and q.num_programs == 3 and q.seg_row is None
    assert build_plan(torch.tensor([0]), 2).num_programs == 0
    with pytest.raises(ValueError, match="seg_edges must be >= 1"):
        build_plan(torch.tensor([0, 1]), 0)


@needs_triton
def test_plan_is_cached_with_its_indptr(small_segments):
    from gnnsys.ops.sparse import _Rows

    ip = torch.tensor([0, 5, 6])
    rows = _Rows(ip, torch.zeros(6, dtype=torch.int32), None, 2, 1)
    a = small_segments.plan_of(rows)
    assert a.segmented and small_segments.plan_of(rows) is a
    ip[1] = 3  # modified in place (rows of 3 and 3 edges): rebuilt
    b = small_segments.plan_of(rows)
    assert b is not a and not b.segmented
    key = id(ip)
    del rows, ip
    gc.collect()
    assert key not in small_segments._PLANS  # goes with the tensor


def _split_csc(ei, num_src, num_dst, seg):
    from gnnsys.ops._sparse_triton import build_plan

    adj = csc_of(ei, num_src, num_dst)[0]
    return build_plan(adj.indptr, seg)


@needs_triton
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_triton_split_rows_match_numba(reduce, device, small_segments):
    ei = make_edges(6, 5, 30, seed=12)
    assert _split_csc(ei, 6, 5, 3).n_split >= 3  # several rows cut into segments
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    w = torch.rand(30, 2, dtype=torch.float64) + 0.5
    x[:, 0, 0] = 1.0  # ties across blocks and segments: the first edge must win
    for args in ((x, w), (x,)):
        fn = (
            (lambda ei, x, w: spmm((ei, (6, 5)), x, reduce, w))
            if len(args) == 2
            else (lambda ei, x: spmm((ei, (6, 5)), x, reduce))
        )
        want, got = _both(fn, device, ei, *args)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)


@needs_triton
def test_triton_split_rows_sddmm_softmax_segment(device, small_segments):
    ei = make_edges(6, 5, 30, seed=13)
    x, y = torch.randn(6, 2, 3, dtype=torch.float64), torch.randn(5, 2, 3, dtype=torch.float64)
    for op in ("dot", "add", "mul"):
        want, got = _both(lambda ei, x, y, op=op: sddmm((ei, (6, 5)), x, y, op), device, ei, x, y)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)
    s = torch.randn(30, 3, dtype=torch.float64) * 4
    s[:4, 0] = -torch.inf  # a row whose first segment is all -inf still normalises
    want, got = _both(lambda ei, s: edge_softmax((ei, (6, 5)), s), device, ei, s)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    indptr = torch.tensor([0, 7, 7, 8, 15])
    src = torch.randn(15, 3, dtype=torch.float64)
    for reduce in ("sum", "mean", "max", "min"):
        want, got = _both(lambda ip, s, r=reduce: segment_reduce(s, ip, r), device, indptr, src)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)


@needs_triton
@pytest.mark.parametrize("reduce", ["max", "min"])
def test_triton_split_rows_nan_propagates_in_any_edge_order(reduce, device, small_segments):
    with sparse._force_backend("triton" if device.type == "cpu" else None):
        check_nan_spmm(reduce, device)


@needs_triton
def test_triton_split_rows_atomic_backward(device, small_segments):
    ei = make_edges(6, 5, 30, seed=14)
    x = torch.randn(6, 4, dtype=torch.float64)
    w = torch.rand(30, dtype=torch.float64)
    want = _both(lambda ei, x, w: spmm((ei, (6, 5)), x, "mean", w), device, ei, x, w)[0]
    sparse.set_deterministic(False)
    try:
        got = _both(lambda ei, x, w: spmm((ei, (6, 5)), x, "mean", w), device, ei, x, w)[1]
    finally:
        sparse.set_deterministic(True)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def _heavy_row_graph():
    """3 destinations with 0, 1 and 60,000 incoming edges, from 50 sources (so the transposed
    rows that backward walks are ~1,200 edges: few programs under the interpreter)."""
    g = torch.Generator().manual_seed(21)
    src = torch.cat([torch.tensor([7]), torch.randint(0, 50, (60_000,), generator=g)])
    dst = torch.cat([torch.tensor([1]), torch.full((60_000,), 2)])
    perm = torch.randperm(60_001, generator=g)
    return torch.stack([src, dst])[:, perm], g


@needs_triton
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_triton_spmm_rows_of_0_1_and_60000_edges(reduce, device, monkeypatch):
    """The default segments (SEG_EDGES) walked in blocks of 512 edges (the interpreter's cost
    is per step: 4x the default block keeps this fast; on a GPU the default runs): forward
    equal to scatter_reduce, forward and gradients equal to the numba kernels, with weights
    (and without, for max/min: each source's message then ties ~1,200 times and the first
    edge must win). Features are [50, 2]: a small width."""
    from gnnsys.ops import _sparse_triton

    if device.type == "cpu":
        monkeypatch.setattr(_sparse_triton, "MAX_BLOCK_E", 512)
    ei, g = _heavy_row_graph()
    assert _split_csc(ei, 50, 3, _sparse_triton.SEG_EDGES).n_split == 1
    x = torch.randn(50, 2, generator=g, dtype=torch.float64)
    w = torch.rand(60_001, generator=g, dtype=torch.float64) + 0.5
    for weighted in (True, False) if reduce in ("max", "min") else (True,):
        args = (x, w) if weighted else (x,)
        want, got = _both(lambda ei, x, *w: spmm((ei, (50, 3)), x, reduce, *w), device, ei, *args)
        ref = ref_spmm(ei, x, reduce, 3, w if weighted else None)
        torch.testing.assert_close(got[0], ref)
        assert torch.equal(got[0][0], torch.zeros(2))  # the empty row
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)


_AOT = r"""
import json, sys
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from gnnsys.ops import _sparse_triton as st

I64 = {"indptr", "seg_row", "seg_lo", "seg_hi", "seg_part", "split_rows", "split_ptr",
       "part_seg", "eperm", "t_perm", "part_k"}
I32 = {"indices", "t_indices", "arg"}
PART = {"part", "part_v", "part_m", "part_d"}
FLAG = dict(HAS_W=True, HAS_PERM=True, MEAN=True, SEGMENTED=True, IS_MAX=True, IS_MUL=True,
            BACKWARD=False, PHASE=0, BE=16, BF=128, BH=4, BD=32)
out = {}
for name, fp in json.loads(sys.argv[1]):
    kernel = getattr(st, name)
    acc_fp = "fp64" if fp == "fp64" else "fp32"
    const = {a: FLAG[a] for a in kernel.arg_names if a in FLAG}
    if "ACC" in kernel.arg_names:
        const["ACC"] = tl.float64 if fp == "fp64" else tl.float32
    sig = {}
    for a in kernel.arg_names:
        sig[a] = ("constexpr" if a in const else "i32" if a in ("F", "D", "H") else "*i64"
                  if a in I64 else "*i32" if a in I32 else "*" + (acc_fp if a in PART else fp))
    src = ASTSource(fn=kernel, signature=sig, constexprs=const)
    ptx = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})
    out[name] = len(ptx.asm["ptx"]) > 0
print(json.dumps(out))
"""


@needs_triton
def test_triton_kernels_compile_for_cuda():
    """Every sparse kernel compiles ahead of time for sm_90 with its heavy-row (segmented)
    paths on (no GPU needed: a subprocess without the interpreter), so a GPU run does not
    meet a compile error first."""
    import json

    triton = pytest.importorskip("triton")
    if int(triton.__version__.split(".")[0]) < 3:
        pytest.skip("ahead-of-time compile API of Triton 3")
    pytest.importorskip("triton.backends.nvidia")
    from gnnsys.ops import _sparse_triton

    names = sorted(n for n in dir(_sparse_triton) if n.endswith("_kernel"))
    cases = [(n, "fp32") for n in names] + [
        ("_spmm_arg_kernel", "fp64"),
        ("_spmm_sum_kernel", "bf16"),
    ]
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", _AOT, json.dumps(cases)], capture_output=True,
                          text=True, env=env, cwd=root, timeout=600)  # fmt: skip
    if proc.returncode != 0:
        err = proc.stderr[-3000:]
        if "ptxas" in err and "No such file" in err:  # pragma: no cover - toolchain missing
            pytest.skip(f"CUDA toolchain unavailable: {err[-300:]}")
        raise AssertionError(err)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(got) == names and all(got.values()) and len(names) == 12
