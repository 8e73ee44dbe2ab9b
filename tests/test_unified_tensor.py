"""UnifiedTensor on the CPU: numba gathers, indexing semantics, storage dtypes, memmap, cache,
staging ring and the host-side pieces of registration (the GPU parts are in test_unified_gpu.py).
"""

import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gnnsys
from gnnsys import _numba
from gnnsys.unified_tensor import (
    UnifiedTensor,
    aligned_empty,
    from_file,
    gather_cpu,
    pinning,
    unified,
)
from gnnsys.unified_tensor.cache import RowCache, cache_rows_for, hot_rows
from gnnsys.unified_tensor.pinning import PAGE_BYTES, chunk_ranges
from gnnsys.unified_tensor.staging import StagingRing

_DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
]


def _table(n, d, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, (n, d), generator=g).bool()
    if dtype.is_floating_point:
        return torch.randn(n, d, generator=g).to(dtype)
    return torch.randint(-100, 100, (n, d), generator=g).to(dtype)


# ---------------------------------------------------------------------------- public face


def test_public_names():
    assert gnnsys.unified is unified
    assert gnnsys.UnifiedTensor is UnifiedTensor
    assert gnnsys.unified.from_file is from_file


def test_writing_rows_is_refused_with_a_reason():
    x = unified(torch.zeros(4, 2))
    with pytest.raises(TypeError, match="read-only.*gnnsys.unified"):
        x[torch.tensor([1])] = torch.ones(1, 2)


# ---------------------------------------------------------------------------- CPU gather


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 50),
    d=st.integers(1, 40),
    m=st.integers(0, 80),
    dtype=st.sampled_from(_DTYPES),
    seed=st.integers(0, 2**16),
)
def test_gather_matches_index_select(n, d, m, dtype, seed):
    x = _table(n, d, dtype, seed)
    ids = torch.randint(0, n, (m,), generator=torch.Generator().manual_seed(seed))
    got = unified(x)[ids]
    assert got.dtype == dtype and got.shape == (m, d)
    assert torch.equal(got, torch.index_select(x, 0, ids))


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    m=st.integers(0, 20),
    seed=st.integers(0, 2**16),
)
def test_gather_any_rank(shape, m, seed):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    ids = torch.randint(0, shape[0], (m,), generator=torch.Generator().manual_seed(seed + 1))
    assert torch.equal(unified(x)[ids], x[ids])


def test_parallel_and_serial_kernels_agree():
    src = np.random.default_rng(0).random((3000, 70), dtype=np.float32)
    ids = np.random.default_rng(1).integers(0, 3000, 5000)
    a = gather_cpu.gather_rows(src, ids, np.empty((5000, 70), np.float32), parallel=True)
    b = gather_cpu.gather_rows(src, ids, np.empty((5000, 70), np.float32), parallel=False)
    assert np.array_equal(a, b) and np.array_equal(a, src[ids])


@pytest.mark.parametrize("row_bytes", [64, 128, 4096])
def test_prefetching_gathers_copy_the_same_rows(row_bytes):
    # Rows of >= 4 KB prefetch ahead in any table, rows of >= 128 B in a table of >= 64 MiB
    # when it is a map read at random; a prefetch is a hint only, so the rows copied are the
    # same, up to the last one.
    cols = row_bytes // 4
    rows = gather_cpu.PREFETCH_MIN_TABLE_BYTES // row_bytes
    src = np.zeros((rows, cols), np.float32)
    src[:, 0] = np.arange(rows)
    src[:, -1] = -np.arange(rows)
    ids = np.random.default_rng(2).integers(0, rows, 3000)
    ids[-1] = rows - 1
    for parallel in (True, False):
        out = gather_cpu.gather_rows(
            src, ids, np.empty((3000, cols), np.float32), parallel=parallel
        )
        assert np.array_equal(out, src[ids])
    # the kernel for maps read at random, which prefetches short rows too
    words = gather_cpu.word_view(src)
    out = np.empty((3000, cols), np.float32)
    gather_cpu._rows_ahead_serial(words, ids, out.view(words.dtype))
    assert np.array_equal(out, src[ids])
    short = row_bytes >= gather_cpu.PREFETCH_SHORT_ROW_BYTES
    long_ = row_bytes >= gather_cpu.PREFETCH_MIN_ROW_BYTES
    assert gather_cpu._prefetches(words, True) == (short or long_)
    assert gather_cpu._prefetches(words, False) == long_  # in memory: long rows only


def test_word_view_widths():
    assert gather_cpu.word_view(np.zeros((2, 4), np.float32)).dtype == np.uint64
    assert gather_cpu.word_view(np.zeros((2, 3), np.float32)).dtype == np.uint32
    assert gather_cpu.word_view(np.zeros((2, 3), np.int16)).dtype == np.uint16
    assert gather_cpu.word_view(np.zeros((2, 3), np.int8)).dtype == np.uint8


def test_gather_into_out_buffer():
    x = _table(100, 8, torch.float32)
    u = unified(x)
    out = torch.empty(3, 8)
    res = u.gather(torch.tensor([5, 6, 99]), out=out)
    assert res is out and torch.equal(out, x[[5, 6, 99]])
    with pytest.raises(ValueError, match="out must be"):
        u.gather(torch.tensor([1]), out=torch.empty(2, 8))
    with pytest.raises(ValueError, match="out must be"):
        u.gather(torch.tensor([1]), out=torch.empty(1, 8, dtype=torch.float64))


def test_int32_and_numpy_and_list_ids():
    x = _table(20, 3, torch.float32)
    u = unified(x)
    for ids in (torch.tensor([3, 4], dtype=torch.int32), np.array([3, 4]), [3, 4], range(3, 5)):
        assert torch.equal(u[ids], x[[3, 4]])


# ---------------------------------------------------------------------------- validation


def test_out_of_range_and_negative_ids_raise_index_error():
    u = unified(_table(10, 4, torch.float32))
    with pytest.raises(IndexError, match="id 10, out of range for 10"):
        u[torch.tensor([0, 10])]
    with pytest.raises(IndexError, match="negative id: -1"):
        u[torch.tensor([-1])]
    with pytest.raises(IndexError, match="negative"):
        u.index_select(0, torch.tensor([2, -3]))
    with pytest.raises(ValueError, match="integer node ids"):
        u[torch.tensor([1.0])]
    with pytest.raises(IndexError):
        unified(torch.empty(0, 3))[torch.tensor([0])]
    assert unified(torch.empty(0, 3))[torch.tensor([], dtype=torch.long)].shape == (0, 3)


def test_bad_arguments():
    x = _table(10, 4, torch.float32)
    with pytest.raises(TypeError, match="torch.Tensor or numpy"):
        unified([[1.0, 2.0]])
    with pytest.raises(ValueError, match="scalar"):
        unified(torch.tensor(1.0))
    with pytest.raises(
        ValueError,
        match=r"unified\(\)'s table must be on a cpu or cuda device, got a tensor on meta",
    ):
        unified(torch.ones(3, 2, device="meta"))
    with pytest.raises(ValueError, match="cache_device must be a cpu or cuda device"):
        unified(x, cache=0.5, cache_device="meta")
    with pytest.raises(TypeError, match="unsupported dtype"):
        unified(torch.zeros(3, 2, dtype=torch.complex64))
    with pytest.raises(ValueError, match="storage_dtype must be"):
        unified(x, storage_dtype=torch.int8)
    with pytest.raises(ValueError, match="widens to float32/float64"):
        unified(x.long(), storage_dtype=torch.float16)
    with pytest.raises(ValueError, match="backend must be"):
        unified(x).gather(torch.tensor([1]), backend="cupy")
    with pytest.raises(TypeError, match="bool"):
        unified(x)[True]
    with pytest.raises(TypeError):
        unified(x)[None]


# ---------------------------------------------------------------------------- indexing


def test_int_slice_mask_tuple_and_nd_indexing():
    x = _table(12, 5, torch.float32)
    u = unified(x)
    assert torch.equal(u[3], x[3]) and torch.equal(u[-1], x[-1])
    with pytest.raises(IndexError, match="out of range for 12 rows"):
        u[12]
    with pytest.raises(IndexError):
        u[-13]
    assert torch.equal(u[2:9:3], x[2:9:3]) and torch.equal(u[-4:], x[-4:])
    mask = torch.zeros(12, dtype=torch.bool)
    mask[[1, 7]] = True
    assert torch.equal(u[mask], x[mask])
    with pytest.raises(IndexError, match="boolean mask"):
        u[torch.ones(5, dtype=torch.bool)]
    ids = torch.tensor([[1, 2], [3, 11]])
    assert torch.equal(u[ids], x[ids])
    assert torch.equal(u[torch.tensor([4, 0]), 1:3], x[[4, 0], 1:3])
    assert torch.equal(u[4, 2], x[4, 2])


def test_tensor_protocol():
    x = _table(9, 4, torch.float32)
    u = unified(x)
    assert u.shape == x.shape and u.dtype == x.dtype and len(u) == 9 and u.ndim == 2
    assert u.size(1) == 4 and u.numel() == 36 and u.dim() == 2 and u.nbytes == 9 * 4 * 4
    ids = torch.tensor([8, 1, 1])
    assert torch.equal(torch.index_select(u, 0, ids), x[ids])
    assert torch.equal(u.index_select(0, ids), x[ids])
    assert torch.equal(torch.index_select(u, 1, torch.tensor([0, 3])), x[:, [0, 3]])
    emb = torch.nn.functional.embedding(torch.tensor([[1, 2], [0, 8]]), u)
    assert torch.equal(emb, torch.nn.functional.embedding(torch.tensor([[1, 2], [0, 8]]), x))
    with pytest.raises(ValueError, match="max_norm"):
        torch.nn.functional.embedding(torch.tensor([1]), u, max_norm=1.0)
    assert torch.equal(torch.sum(u), torch.sum(x))  # other functions see the whole table
    assert torch.equal(u.cpu(), x) and np.array_equal(u.numpy(), x.numpy())
    assert np.array_equal(np.asarray(u), x.numpy())
    assert u.to(torch.float64).dtype == torch.float64 and torch.equal(u.to("cpu"), x)
    assert u.tolist() == x.tolist()
    assert np.array_equal(np.from_dlpack(u), x.numpy())
    assert "UnifiedTensor(shape=(9, 4)" in repr(u)


def test_noncontiguous_input_warns_once_and_keeps_values():
    x = _table(6, 8, torch.float32).t()  # [8, 6], not contiguous
    with pytest.warns(UserWarning, match="not contiguous"):
        u = unified(x)
    assert torch.equal(u[torch.tensor([7, 0])], x[[7, 0]])


def test_input_storage_is_shared_not_copied():
    x = _table(10, 4, torch.float32)
    u = unified(x)
    x[3] = 42.0
    assert torch.equal(u[3], torch.full((4,), 42.0))
    a = np.zeros((5, 2), np.float32)
    v = unified(a)
    a[1] = 7
    assert v[1].tolist() == [7.0, 7.0]


def test_unified_of_unified_shares_storage():
    x = _table(10, 4, torch.float32)
    u = unified(x, storage_dtype=torch.bfloat16)
    w = unified(u)
    assert w.dtype == torch.float32 and w.storage_dtype == torch.bfloat16
    assert torch.equal(w[[1, 2]], u[[1, 2]])


# ---------------------------------------------------------------------------- 128-byte alignment


@pytest.mark.parametrize("dtype", _DTYPES)
def test_aligned_empty_behaves_as_torch_empty(dtype):
    for shape in [(0,), (1,), (5,), (1000, 37), (64, 3, 5), (0, 4), (3, 0)]:
        t = aligned_empty(shape, dtype)
        ref = torch.empty(shape, dtype=dtype)
        assert t.data_ptr() % 128 == 0, (shape, dtype)
        assert (t.shape, t.dtype, t.stride(), t.device) == (
            ref.shape,
            ref.dtype,
            ref.stride(),
            ref.device,
        )
        assert t.is_contiguous() and t.storage_offset() * t.element_size() < 128 + 64
    assert aligned_empty(7, torch.int64).shape == (7,)
    assert aligned_empty((4, 4), torch.float32, align=4096).data_ptr() % 4096 == 0
    with pytest.raises(ValueError, match="align must be a power of two"):
        aligned_empty((4,), torch.float32, align=96)
    with pytest.raises(ValueError, match="shape must hold sizes >= 0"):
        aligned_empty((-1, 4), torch.float32)


def _misaligned(x, by=64):
    """A contiguous copy of x whose first byte is ``by`` bytes past a 128-byte boundary."""
    nbytes = x.numel() * x.element_size()
    buf = aligned_empty(nbytes + by, torch.uint8)[by:]
    t = buf[:nbytes].view(x.dtype).view(x.shape)
    t.copy_(x)
    assert t.data_ptr() % 128 == by
    return t


@pytest.mark.parametrize("dtype", _DTYPES)
def test_tables_unified_copies_are_aligned_and_gather_as_x_idx(dtype):
    x = _table(500, 37, dtype, seed=3)
    idx = torch.randint(0, 500, (321,), generator=torch.Generator().manual_seed(4))
    inputs = {
        "non-contiguous": _misaligned(x.t().contiguous()).t(),
        "non-contiguous numpy": _misaligned(x.t().contiguous()).t().numpy()
        if dtype != torch.bfloat16
        else None,
        "3-d non-contiguous": _misaligned(torch.stack([x, x], 0)).permute(1, 0, 2),
    }
    for name, inp in inputs.items():
        if inp is None:
            continue
        with pytest.warns(UserWarning, match="not contiguous"):
            u = unified(inp)
        assert u._host.data_ptr() % 128 == 0, name
        want = torch.as_tensor(inp)[idx]
        got = u[idx]
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert got.stride() == want.stride() and torch.equal(got, want), name
        assert torch.equal(u.cpu(), torch.as_tensor(inp)), name


@pytest.mark.parametrize("sdtype", [torch.bfloat16, torch.float16])
def test_narrowed_storage_is_an_aligned_copy(sdtype):
    # 128-byte rows, base + 64; large enough (> 128 KiB) that torch.empty would start at +64
    x = _misaligned(_table(3000, 32, torch.float32, seed=5))
    u = unified(x, storage_dtype=sdtype)
    assert u._host.data_ptr() % 128 == 0 and u._host.dtype == sdtype
    idx = torch.tensor([2999, 0, 7, 7])
    assert torch.equal(u[idx], x.to(sdtype).float()[idx]) and u[idx].stride() == (32, 1)


def test_contiguous_tables_are_used_in_place_whatever_their_alignment():
    x = _misaligned(_table(100, 32, torch.float32))
    u = unified(x)
    assert u._host.data_ptr() == x.data_ptr() and u._host.data_ptr() % 128 == 64


# ---------------------------------------------------------------------------- half storage


@pytest.mark.parametrize("sdtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_half_storage_upcasts_on_gather(sdtype, dtype):
    x = (torch.randn(300, 17, generator=torch.Generator().manual_seed(1)) * 50).to(dtype)
    x[0, :4] = torch.tensor([float("inf"), float("-inf"), float("nan"), 1e-7], dtype=dtype)
    u = unified(x, storage_dtype=sdtype)
    assert u.dtype == dtype and u.storage_dtype == sdtype and u.nbytes == 300 * 17 * 2
    ids = torch.randint(0, 300, (4000,), generator=torch.Generator().manual_seed(2))
    ids[0] = 0
    want = x.to(sdtype).to(dtype)[ids]
    got = u[ids]
    assert got.dtype == dtype
    assert torch.equal(torch.nan_to_num(got, nan=123.0), torch.nan_to_num(want, nan=123.0))
    assert torch.equal(u[5:9], x.to(sdtype).to(dtype)[5:9])


@pytest.mark.parametrize("kernel", ["_rows_parallel", "_rows_serial"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float16_widening_is_exact_for_every_bit_pattern(kernel, dtype):
    # half_to_float's integer steps against numpy's astype, bit for bit: every normal, subnormal,
    # signed zero, infinity and NaN payload, through both row kernels and both output widths
    # (float64: the float32 value widened, as the CPU widens it: a signalling NaN comes out quiet).
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    want = bits.view(np.float16).astype(np.float32).astype(dtype).reshape(256, 256)[::-1]
    out = np.empty((256, 256), dtype)
    getattr(gather_cpu, kernel)(bits.reshape(256, 256), np.arange(256)[::-1].copy(), out)
    word = np.uint32 if dtype == np.float32 else np.uint64
    assert np.array_equal(out.view(word), want.view(word))


def test_gather_rows_upcast_widens_both_half_formats():
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    want = bits.view(np.float16).astype(np.float32)
    src = bits.reshape(256, 256)
    out = gather_cpu.gather_rows_upcast(
        src, np.arange(256)[::-1].copy(), np.empty((256, 256), np.float32), kind="float16"
    )
    assert np.array_equal(out.view(np.uint32), want.reshape(256, 256)[::-1].view(np.uint32))
    out_bf = gather_cpu.gather_rows_upcast(
        src, np.arange(256), np.empty((256, 256), np.float32), kind="bfloat16"
    )
    assert np.array_equal(out_bf.view(np.uint32), (bits.astype(np.uint32) << 16).reshape(256, 256))


# ---------------------------------------------------------------------------- memmap


def test_memmap_and_from_file(tmp_path):
    x = _table(500, 12, torch.float32).numpy()
    path = tmp_path / "feat.npy"
    np.save(path, x)
    u = from_file(path)
    assert u.is_memmap and not u.is_registered and u.shape == (500, 12)
    ids = torch.randint(0, 500, (1000,), generator=torch.Generator().manual_seed(0))
    assert np.array_equal(u[ids].numpy(), x[ids.numpy()])
    assert np.array_equal(u[10:20].numpy(), x[10:20]) and np.array_equal(u[7].numpy(), x[7])
    mm = np.memmap(tmp_path / "raw.bin", dtype=np.float32, mode="w+", shape=(40, 3))
    mm[:] = np.arange(120, dtype=np.float32).reshape(40, 3)
    v = unified(mm)
    assert v.is_memmap and v[[39]].tolist() == [[117.0, 118.0, 119.0]]
    w = pickle.loads(pickle.dumps(u))
    assert w.is_memmap and np.array_equal(w[ids].numpy(), x[ids.numpy()])
    with pytest.raises(ValueError, match=".npy"):
        from_file(tmp_path / "raw.bin")
    with pytest.raises(ValueError, match="storage dtype of a memory-mapped"):
        unified(mm, storage_dtype=torch.float16)


def test_memmap_larger_than_ram_reads_only_touched_pages(tmp_path):
    """A 32 GiB sparse .npy (more than this machine's 24 GiB of RAM) is gathered in place."""
    path = tmp_path / "big.npy"
    d = 64
    n = (32 << 30) // (d * 4)
    try:
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    except OSError as e:  # pragma: no cover - filesystem without sparse files
        pytest.skip(f"no sparse file: {e}")
    mm[n - 1] = 1.5
    mm[n // 2] = 2.5
    mm.flush()
    del mm
    u = from_file(path)
    assert u.shape == (n, d) and u.nbytes == 32 << 30
    got = u[torch.tensor([n - 1, 0, n // 2])]
    assert got[0].eq(1.5).all() and got[1].eq(0).all() and got[2].eq(2.5).all()
    assert path.stat().st_blocks * 512 < (64 << 20)  # still sparse: the table was never copied


def test_memmap_half_file_widens(tmp_path):
    x = np.random.default_rng(0).standard_normal((64, 6)).astype(np.float16)
    np.save(tmp_path / "h.npy", x)
    u = from_file(tmp_path / "h.npy", out_dtype=torch.float32)
    assert u.dtype == torch.float32 and u.storage_dtype == torch.float16
    assert np.array_equal(u[[3, 2]].numpy(), x[[3, 2]].astype(np.float32))
    with pytest.raises(ValueError, match="out_dtype widens"):
        from_file(tmp_path / "h.npy", out_dtype=torch.int32)


def test_memmap_cpu_cache_serves_hits_and_misses(tmp_path):
    x = _table(200, 5, torch.float32).numpy()
    np.save(tmp_path / "c.npy", x)
    score = torch.arange(200).flip(0)  # rows 0.. are hottest
    u = from_file(tmp_path / "c.npy", cache=0.25, cache_order=score, cache_device="cpu")
    c = u.cache
    assert c.num_rows == 50 and c.ids.tolist() == list(range(50))
    ids = torch.tensor([0, 199, 49, 50, 3, 3, 120])
    assert np.array_equal(u[ids].numpy(), x[ids.numpy()])
    c.rows += 1000  # prove hits come from the cache
    got = u[ids].numpy()
    hit = ids.numpy() < 50
    assert np.array_equal(got[hit], x[ids.numpy()[hit]] + 1000)
    assert np.array_equal(got[~hit], x[ids.numpy()[~hit]])


# ---------------------------------------------------------------------------- cache choice


def test_cache_sizes_and_validation():
    assert cache_rows_for(None, 100, 8) == 0
    assert cache_rows_for(1.0, 100, 8) == 100 and cache_rows_for(0.011, 100, 8) == 2
    assert cache_rows_for(400 + 8 * 7 + 3, 100, 8) == 7  # slot table (4 B/row) paid first
    assert cache_rows_for(10, 100, 8) == 0
    for bad in (0.0, 1.5, float("nan"), -0.2):
        with pytest.raises(ValueError, match="fraction"):
            cache_rows_for(bad, 100, 8)
    with pytest.raises(ValueError, match="byte budget"):
        cache_rows_for(-1, 100, 8)
    with pytest.raises(TypeError, match="fraction"):
        cache_rows_for(True, 100, 8)
    with pytest.raises(TypeError, match="fraction"):
        cache_rows_for("10%", 100, 8)


def test_hot_rows_orders():
    assert hot_rows(None, 10, 3).tolist() == [0, 1, 2]
    assert hot_rows(torch.tensor([1.0, 3.0, 3.0, 2.0]), 4, 3).tolist() == [1, 2, 3]
    g = gnnsys.Graph.from_edge_index(torch.tensor([[2, 2, 2, 1, 1, 0], [0, 1, 3, 0, 3, 2]]))
    assert hot_rows(g, 4, 2).tolist() == [2, 1]  # how often each node is a neighbour
    with pytest.raises(ValueError, match="score per row"):
        hot_rows(torch.ones(3), 4, 1)
    with pytest.raises(TypeError, match="numeric"):
        hot_rows(torch.ones(4, dtype=torch.bool), 4, 1)
    with pytest.raises(ValueError, match="NaN"):
        hot_rows(torch.tensor([1.0, float("nan"), 0.0, 0.0]), 4, 1)
    with pytest.raises(ValueError, match="graph of 4 nodes"):
        hot_rows(g, 5, 1)


def test_row_cache_build():
    table = torch.arange(20.0).view(10, 2)
    c = RowCache.build(10, 2, lambda i: table[i], k=3, order=torch.arange(10), device="cpu")
    assert c.ids.tolist() == [9, 8, 7]
    assert c.slot.tolist() == [-1] * 7 + [2, 1, 0]
    assert torch.equal(c.rows, table[[9, 8, 7]]) and c.nbytes == 3 * 2 * 4 + 10 * 4


def test_cache_without_cuda_is_a_noop_with_a_note():
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the cache is built on the GPU")
    with pytest.warns(UserWarning, match="cache= is ignored"):
        u = unified(_table(10, 2, torch.float32), cache=0.5)
    assert u.cache is None
    with pytest.raises(ValueError, match=r"cache_device='cuda'\) needs a CUDA device"):
        unified(_table(10, 2, torch.float32), cache=0.5, cache_device="cuda")


_ASK_FOR_CUDA = {
    "UnifiedTensor.gather(device='cuda')": lambda u: u.gather(torch.tensor([1]), device="cuda"),
    "UnifiedTensor.gather(device='cuda:0')": lambda u: u.gather_async(
        torch.tensor([1]), device=torch.device("cuda", 0)
    ),
    "UnifiedTensor.cuda()": lambda u: u.cuda(),
    "UnifiedTensor.to('cuda')": lambda u: u.to("cuda"),
    "UnifiedTensor.to('cuda:0')": lambda u: u.to(device="cuda:0", dtype=torch.float64),
    "UnifiedTensor.uva_view()": lambda u: u.uva_view(),
    "unified(cache_device='cuda')": lambda u: unified(u.cpu(), cache=2, cache_device="cuda"),
    "RowCache.build(device='cuda')": lambda u: RowCache.build(4, 2, u.gather, k=2),
    "StagingRing.stage(device='cuda')": lambda u: StagingRing().stage(
        np.array([0]), u._fill_storage, 2, torch.float32, torch.device("cuda")
    ),
    "pinning.register()": lambda u: pinning.register(u.cpu().data_ptr(), 32),
}


@pytest.mark.parametrize("what", list(_ASK_FOR_CUDA))
def test_asking_for_cuda_without_a_gpu_is_a_clear_error(monkeypatch, what):
    # Checked before anything touches CUDA (not torch's "Torch not compiled with CUDA enabled").
    # is_available is patched so that this runs (and means the same) on a GPU machine too.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    u = unified(torch.arange(8.0).view(4, 2))
    msg = re.escape(f"{what} needs a CUDA device; none is available ")
    with pytest.raises(ValueError, match=msg + r"\(torch.cuda.is_available\(\) is False\)"):
        _ASK_FOR_CUDA[what](u)
    # what does not need CUDA still works
    assert u.to(torch.float64).dtype == torch.float64 and u.to("cpu").shape == (4, 2)
    assert u.gather(torch.tensor([3]), device="cpu").tolist() == [[6.0, 7.0]]


def test_cache_budget_too_small_warns():
    with pytest.warns(UserWarning, match="buys no rows"):
        u = unified(_table(10, 2, torch.float32), cache=8, cache_device="cpu")
    assert u.cache is None


# ---------------------------------------------------------------------------- staging ring


def test_staging_ring_chunks_round_robin():
    src = np.arange(3000, dtype=np.float32).reshape(1000, 3)
    calls = []

    def fill(ids, out):
        calls.append(len(ids))
        out[...] = src[ids]

    ring = StagingRing(slots=2, slot_bytes=3 * 4 * 64, device="cpu")
    ids = np.random.default_rng(0).integers(0, 1000, 300)
    got = ring.stage(ids, fill, 3, torch.float32, torch.device("cpu"))
    assert np.array_equal(got.numpy(), src[ids])
    assert calls == [64, 64, 64, 64, 44]
    with pytest.raises(ValueError, match="slots"):
        StagingRing(slots=0)


# ---------------------------------------------------------------------------- pinning pieces


def test_chunk_ranges_are_page_aligned_and_cover():
    ptr, n = PAGE_BYTES * 5 + 123, PAGE_BYTES * 9 + 7
    chunks = chunk_ranges(ptr, n, chunk_bytes=PAGE_BYTES * 2)
    assert chunks[0][0] == ptr and sum(c[1] for c in chunks) == n
    for (a, la), (b, _) in zip(chunks, chunks[1:]):
        assert a + la == b and b % (PAGE_BYTES * 2) == 0
    assert chunk_ranges(ptr, 0) == []
    with pytest.raises(ValueError, match="multiple of"):
        chunk_ranges(ptr, n, chunk_bytes=1000)


def test_no_cuda_interface_without_registration():
    u = unified(_table(4, 2, torch.float32))
    if u.is_registered:
        pytest.skip("registered on this machine")
    assert not hasattr(u, "__cuda_array_interface__")
    # without a GPU the missing device is named first; with one, the missing registration
    why = "registered" if torch.cuda.is_available() else "needs a CUDA device"
    with pytest.raises(ValueError, match=why):
        u.uva_view()


def test_pickle_roundtrip_keeps_dtype():
    x = _table(30, 4, torch.float32)
    u = unified(x, storage_dtype=torch.float16)
    w = pickle.loads(pickle.dumps(u))
    assert w.dtype == torch.float32 and w.storage_dtype == torch.float16
    assert torch.equal(w[[1, 29]], u[[1, 29]])


def test_thread_safety_and_determinism():
    from concurrent.futures import ThreadPoolExecutor

    x = _table(5000, 33, torch.float32)
    u = unified(x)
    batches = [
        torch.randint(0, 5000, (3000,), generator=torch.Generator().manual_seed(s))
        for s in range(8)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ThreadPoolExecutor(4) as ex:
            outs = list(ex.map(u.__getitem__, batches))
    for b, o in zip(batches, outs):
        assert torch.equal(o, x[b])


# ---------------------------------------------------------------------------- registration flags
# The CUDA runtime is reached through pinning.cudart() (ctypes): a fake library stands in for it,
# recording every cudaHostRegister call and its flags, so the choices run on any machine.


class _FakeCudart:
    """cudaHostRegister & co. as pinning calls them; ``refuse(flags) -> rc`` decides failures."""

    def __init__(self, refuse=lambda flags: 0):
        self.refuse = refuse
        self.registered = []  # (ptr, size, flags)
        self.unregistered = []

    def cudaHostRegister(self, ptr, size, flags):
        rc = self.refuse(flags)
        if rc == 0:
            self.registered.append((ptr.value, size.value, flags))
        return rc

    def cudaHostUnregister(self, ptr):
        self.unregistered.append(ptr.value)
        return 0

    def cudaHostGetDevicePointer(self, out, ptr, flags):
        out._obj.value = ptr.value  # unified addressing: device pointer == host pointer
        return 0

    def cudaGetLastError(self):
        return 0

    def cudaGetErrorString(self, code):
        return b"invalid argument" if code == 1 else b"some error"


@pytest.fixture
def fake_cuda(monkeypatch):
    """A CUDA machine as far as pinning and UnifiedTensor ask, with a fake runtime."""
    lib = _FakeCudart()
    monkeypatch.setattr(pinning, "cudart", lambda: lib)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    synced = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: synced.append(d))
    lib.synced = synced
    yield lib
    pinning._registry.clear()


RW = pinning.HOST_REGISTER_PORTABLE | pinning.HOST_REGISTER_MAPPED
RO = RW | pinning.HOST_REGISTER_READ_ONLY


def test_read_only_flag_value_is_the_runtimes():
    assert pinning.HOST_REGISTER_READ_ONLY == 0x08  # cudaHostRegisterReadOnly


def test_anonymous_memory_registers_writable(fake_cuda):
    x = torch.zeros(3000, 64)
    assert pinning.read_only_reason(x.data_ptr(), x.nbytes) is None
    reg = pinning.register(x.data_ptr(), x.nbytes, x, chunk_bytes=PAGE_BYTES * 16)
    assert {f for _, _, f in fake_cuda.registered} == {RW} and not reg.read_only
    assert sum(n for _, n, _ in fake_cuda.registered) == x.nbytes
    pinning.release(reg)
    assert sorted(fake_cuda.unregistered) == sorted(p for p, _, _ in fake_cuda.registered)


@pytest.mark.parametrize(
    "mode,why", [("c", "copy-on-write file mapping"), ("r", "read-only mapping")]
)
def test_file_mappings_register_read_only_from_the_start(fake_cuda, tmp_path, mode, why):
    np.save(tmp_path / "x.npy", np.arange(50_000, dtype=np.float32).reshape(500, 100))
    a = np.load(tmp_path / "x.npy", mmap_mode=mode)
    ptr, nbytes = a.__array_interface__["data"][0], a.nbytes
    assert pinning.read_only_reason(ptr, nbytes) == why
    reg = pinning.register(ptr, nbytes, a)
    assert [f for _, _, f in fake_cuda.registered] == [RO] and reg.read_only
    pinning.release(reg)


def test_a_datasets_cow_table_is_registered_zero_copy(fake_cuda, tmp_path):
    # Datasets load features with np.load(mmap_mode="c") and wrap them with torch.from_numpy:
    # unified() registers that mapping read-only, in place (not the staged fallback).
    want = np.random.default_rng(0).standard_normal((400, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", want)
    x = torch.from_numpy(np.load(tmp_path / "x.npy", mmap_mode="c"))
    u = unified(x)
    assert u.is_registered and u._reg.read_only and u._host.data_ptr() == x.data_ptr()
    assert [f for _, _, f in fake_cuda.registered] == [RO]
    assert np.array_equal(u[torch.tensor([399, 0])].numpy(), want[[399, 0]])
    u._finalizer()  # released while the fake runtime is in place
    assert fake_cuda.unregistered == [x.data_ptr()]


def test_writable_registration_failing_is_retried_read_only(fake_cuda):
    fake_cuda.refuse = lambda flags: 0 if flags & pinning.HOST_REGISTER_READ_ONLY else 1
    x = torch.zeros(2000, 64)
    reg = pinning.register(x.data_ptr(), x.nbytes, x, chunk_bytes=PAGE_BYTES * 16)
    assert reg.read_only and {f for _, _, f in fake_cuda.registered} == {RO}
    assert sum(n for _, n, _ in fake_cuda.registered) == x.nbytes
    pinning.release(reg)


def test_both_refusals_are_reported_and_undone(fake_cuda):
    calls = []

    def refuse(flags):  # the first chunk registers, the second is refused both ways
        calls.append(flags)
        return 0 if len(calls) == 1 else 1

    fake_cuda.refuse = refuse
    x = torch.zeros(4096, 16)
    with pytest.raises(pinning.CudaError, match=r"flags 0x3: invalid argument \(1\); flags 0xb"):
        pinning.register(x.data_ptr(), x.nbytes, x, chunk_bytes=PAGE_BYTES * 4)
    assert calls == [RW, RW, RO]
    assert fake_cuda.unregistered == [fake_cuda.registered[0][0]]  # the done chunk, undone
    assert not pinning.is_registered(x.data_ptr(), x.nbytes)


def test_already_registered_is_not_retried_read_only(fake_cuda):
    calls = []
    fake_cuda.refuse = lambda flags: calls.append(flags) or 712
    x = torch.zeros(100, 16)
    with pytest.raises(pinning.CudaError, match="already registered"):
        pinning.register(x.data_ptr(), x.nbytes, x)
    assert calls == [RW]
    with pytest.raises(pinning.CudaError):
        pinning.register(x.data_ptr(), x.nbytes, x, read_only=True)
    assert calls == [RW, RO]


def test_release_synchronises_only_the_devices_that_read(fake_cuda, monkeypatch):
    def no_sweep():
        raise AssertionError("release() walked every visible device")

    monkeypatch.setattr(torch.cuda, "device_count", no_sweep)
    x = torch.zeros(1000, 8)
    a = pinning.register(x.data_ptr(), x.nbytes, x)
    b = pinning.register(x.data_ptr(), x.nbytes, x)  # the same range: one registration, 2 users
    assert a is b and a.users == 2
    a.used_on(torch.device("cuda", 2))
    b.used_on(0)
    b.used_on(torch.device("cuda", 2))
    pinning.release(a)
    assert fake_cuda.synced == [] and fake_cuda.unregistered == []  # one user left
    pinning.release(b)
    assert fake_cuda.synced == [0, 2]  # never a device nobody used
    c = pinning.register(x.data_ptr(), x.nbytes, x)
    pinning.release(c)
    assert fake_cuda.synced == [0, 2]  # never used: nothing to wait for


# ---------------------------------------------------------------------------- CUDA ids: no sync
# Meta tensors stand in for ids on a GPU: they have no values, so any host read (.item(),
# .tolist(), int(), bool(), .cpu()) raises; validation that passes on them never synchronises.


def test_ids_on_a_device_are_validated_without_reading_them():
    from gnnsys.unified_tensor.tensor import _device_minmax, _validate_ids

    ids = torch.empty(1000, dtype=torch.int64, device="meta")
    assert _validate_ids(ids, 10) is ids
    small = _validate_ids(torch.empty(5, dtype=torch.int16, device="meta"), 10)
    assert small.dtype == torch.int64 and small.device.type == "meta"
    mm = _device_minmax(ids)  # the range check queued on the device
    assert mm.shape == (2,) and mm.device.type == "meta" and mm.dtype == torch.int64
    with pytest.raises(ValueError, match="integer node ids"):
        _validate_ids(torch.empty(3, device="meta"), 10)
    with pytest.raises(ValueError, match="1-dimensional"):
        _validate_ids(torch.empty(2, 2, dtype=torch.int64, device="meta"), 10)


class _Event:
    """A CUDA event as _poll uses it: query() without waiting, synchronize() waits."""

    def __init__(self, done):
        self.done, self.waited = done, False

    def query(self):
        return self.done

    def synchronize(self):
        self.waited = self.done = True


def test_device_range_errors_are_raised_lazily_without_waiting():
    u = unified(torch.arange(40.0).view(10, 4))
    ev = _Event(done=False)
    u._pending.append((ev, torch.tensor([0, 12])))  # a gather whose check is still running
    assert u[torch.tensor([1])].tolist() == [[4.0, 5.0, 6.0, 7.0]]
    assert not ev.waited and len(u._pending) == 1  # polled, not waited for
    ev.done = True
    msg = r"index \(of an earlier gather with CUDA ids\) holds id 12, out of range for 10 nodes"
    with pytest.raises(IndexError, match=msg):
        u[torch.tensor([1])]
    assert not u._pending
    assert u[torch.tensor([2])].tolist() == [[8.0, 9.0, 10.0, 11.0]]  # reported once
    ok, bad = _Event(done=False), _Event(done=False)
    u._pending.extend([(ok, torch.tensor([0, 9])), (bad, torch.tensor([-3, 5]))])
    with pytest.raises(IndexError, match="holds a negative id: -3"):
        u.check()  # waits for both
    assert ok.waited and bad.waited and not u._pending
    u._pending.append((_Event(done=False), torch.tensor([0, 9], dtype=torch.int32)))
    u.check()  # in range: nothing raised
    with pytest.raises(ValueError, match="validate must be True, False or 'sync'"):
        u.gather(torch.tensor([1]), validate="maybe")


def test_file_backed_cache_is_filled_by_one_sequential_pass(tmp_path, monkeypatch):
    from gnnsys.unified_tensor import tensor as T

    x = np.random.default_rng(3).standard_normal((5000, 12)).astype(np.float16)
    np.save(tmp_path / "x.npy", x)
    # Small read chunks, so the pass crosses many chunk boundaries.
    monkeypatch.setattr(T, "SEQUENTIAL_CHUNK_BYTES", 1000)
    order = torch.from_numpy(np.random.default_rng(4).integers(0, 50, 5000))
    u = from_file(tmp_path / "x.npy", cache=0.37, cache_order=order, cache_device="cpu",
                  out_dtype=torch.float32)  # fmt: skip
    c = u.cache
    assert c.num_rows == 1850 and torch.equal(c.rows, torch.from_numpy(x)[c.ids])
    ids = torch.from_numpy(np.random.default_rng(5).integers(0, 5000, 3000))
    assert torch.equal(u[ids], torch.from_numpy(x)[ids].float())
    fetched = u._fetch_storage_sequential(torch.tensor([4999, 0, 2500, 4999]))
    assert torch.equal(fetched, torch.from_numpy(x)[[4999, 0, 2500, 4999]])


def test_neighbour_counts_match_bincount():
    from gnnsys.unified_tensor.cache import hot_rows, neighbour_counts

    g = gnnsys.datasets.synthetic("tiny").graph
    ref = torch.bincount(g.indices.long(), minlength=g.num_nodes)
    assert torch.equal(torch.from_numpy(neighbour_counts(g.indices.numpy(), g.num_nodes)), ref)
    top = hot_rows(g, g.num_nodes, 10)
    assert torch.equal(top, torch.sort(ref, descending=True, stable=True).indices[:10])


def test_use_parallel_needs_size_and_a_second_thread(monkeypatch):
    big = gather_cpu.PARALLEL_MIN_BYTES
    monkeypatch.setattr(_numba.numba, "get_num_threads", lambda: 2)
    assert gather_cpu.use_parallel(big) and not gather_cpu.use_parallel(big - 1)
    monkeypatch.setattr(_numba.numba, "get_num_threads", lambda: 1)
    assert not gather_cpu.use_parallel(big)


# ---------------------------------------------------------------- bad input (sweep)
def test_list_index_reads_bools_as_a_mask_and_refuses_floats():
    t = torch.arange(20.0).view(5, 4)
    x = unified(t)
    mask = [True, False, True, False, True]
    assert torch.equal(x[mask], t[mask])  # was ids [1, 0, 1, 0, 1]: 5 rows, not 3
    with pytest.raises(IndexError, match="boolean mask"):
        x[[True, False]]
    with pytest.raises(ValueError, match="integer node ids"):
        x[[1.5]]  # was row 1, silently
    with pytest.raises(ValueError, match="integer node ids"):
        x[[1, 2.5]]
    with pytest.raises(IndexError, match="cannot read the list"):
        x[[2**70]]
    assert torch.equal(x[[4, 0]], t[[4, 0]]) and x[[]].shape == (0, 4)


def test_uint8_tensor_index_is_refused_not_read_as_ids():
    x = unified(torch.arange(20.0).view(5, 4))
    with pytest.raises(IndexError, match="uint8 index tensor is ambiguous"):
        x[torch.tensor([1, 0, 1, 0, 1], dtype=torch.uint8)]  # torch: a mask
    assert x.gather(torch.tensor([1, 2], dtype=torch.uint8)).shape == (2, 4)  # ids, as documented


def test_gather_out_and_device_arguments_are_checked():
    t = torch.arange(40.0).view(10, 4)
    x = unified(t)
    ids = torch.tensor([1, 0])
    with pytest.raises(ValueError, match="out must not require grad"):
        x.gather(ids, out=torch.empty(2, 4, requires_grad=True))
    with pytest.raises(ValueError, match="out overlaps the table"):
        x.gather(ids, out=t[:2])  # would have read row 0 after overwriting it
    with pytest.raises(ValueError, match="device='gpu' is not a valid device"):
        x.gather(ids, device="gpu")
    with pytest.raises(ValueError, match="index must be on cpu or cuda, got a tensor on meta"):
        x[torch.tensor([1], device="meta")]


def test_embedding_takes_a_list_of_ids():
    t = torch.arange(40.0).view(10, 4)
    assert torch.equal(unified(t).embedding([3, 1]), t[[3, 1]])
    with pytest.raises(ValueError, match="integer node ids"):
        unified(t).embedding([1.5])


def test_big_endian_tables():
    a = np.arange(12, dtype=">f4").reshape(4, 3)
    with pytest.warns(UserWarning, match="byte order"):
        x = unified(a)
    assert torch.equal(x[torch.tensor([3, 0])], torch.tensor(a.astype("<f4"))[[3, 0]])
    ro = a.copy()
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="byte order is not the machine's"):
        unified(ro)


@pytest.mark.parametrize(
    "kind, match",
    [
        ("empty", "is not a .npy file"),
        ("garbage", "is not a .npy file"),
        ("truncated", "truncated"),
        ("data_cut", "truncated"),
        ("objects", "Python objects"),
        ("big_endian", "byte order"),
        ("fortran", "Fortran"),
    ],
)
def test_from_file_bad_files_name_the_file(tmp_path, kind, match):
    a = np.arange(40, dtype=np.float32).reshape(10, 4)
    p = tmp_path / f"{kind}.npy"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "garbage":
        p.write_bytes(b"hello world" * 20)
    elif kind in ("truncated", "data_cut"):
        np.save(p, a)
        with open(p, "r+b") as f:
            f.truncate(100 if kind == "truncated" else 128)
    elif kind == "objects":
        np.save(p, np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    elif kind == "big_endian":
        np.save(p, a.astype(">f4"))
    else:
        np.save(p, np.asfortranarray(a))
    with pytest.raises(ValueError, match=match) as e:
        from_file(p)
    assert str(p) in str(e.value)


def test_from_file_path_types(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.zeros((2, 2), np.float32))
    assert from_file(str(p).encode()).shape == (2, 2)
    with pytest.raises(TypeError, match="path must be a str"):
        from_file(None)


def test_cache_numpy_scalars_and_meta_order():
    assert cache_rows_for(np.float32(0.5), 10, 16) == 5
    assert cache_rows_for(np.int64(4 * 10 + 3 * 16), 10, 16) == 3
    with pytest.raises(
        ValueError, match="cache_order must be on a cpu or cuda device, got a tensor on meta"
    ):
        hot_rows(torch.empty(10, device="meta"), 10, 2)
