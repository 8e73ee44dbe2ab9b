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
from gnnsys.unified_tensor import UnifiedTensor, from_file, gather_cpu, pinning, unified
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


def test_f16_table_is_exact_for_every_bit_pattern():
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    want = bits.view(np.float16).astype(np.float32)
    got = gather_cpu.f16_table()
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
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
