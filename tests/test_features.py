"""FeatureStore: tables of every kind, the numba row gather, validation, pinned/device paths."""

import importlib.util

import numpy as np
import pytest
import torch

from gnnsys import _numba
from gnnsys.features import FeatureStore, gather_rows
from gnnsys.unified_tensor import UnifiedTensor, gather_cpu


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
              torch.int32, torch.uint8, torch.bool]
)  # fmt: skip
def test_gather_matches_index_select_for_every_dtype(dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(50, 7, generator=g) * 10).to(dtype)
    ids = torch.randint(0, 50, (33,), generator=g)
    assert torch.equal(gather_rows(x, ids), x[ids])


@pytest.mark.parametrize("shape", [(40,), (40, 3), (40, 2, 5), (40, 100)])
def test_gather_shapes(shape):
    x = torch.arange(int(np.prod(shape)), dtype=torch.float32).view(shape)
    ids = torch.tensor([39, 0, 5, 5])
    assert torch.equal(gather_rows(x, ids), x[ids])


def _count_kernels(monkeypatch):
    """Wrap gather_cpu's parallel and serial row kernels to count which one runs."""
    calls = {"parallel": 0, "serial": 0}
    for name, attr in (("parallel", "_rows_parallel"), ("serial", "_rows_serial")):
        kernel = getattr(gather_cpu, attr)

        def counted(*a, _k=kernel, _n=name):
            calls[_n] += 1
            return _k(*a)

        monkeypatch.setattr(gather_cpu, attr, counted)
    return calls


@pytest.mark.parametrize("threshold, path", [(0, "parallel"), (1 << 40, "serial")])
def test_gather_parallel_threshold_picks_the_kernel(monkeypatch, threshold, path):
    # gather_cpu.use_parallel: PARALLEL_MIN_BYTES (output bytes) and > 1 numba thread.
    monkeypatch.setattr(gather_cpu, "PARALLEL_MIN_BYTES", threshold)
    monkeypatch.setattr(_numba.numba, "get_num_threads", lambda: 2)
    calls = _count_kernels(monkeypatch)
    x = torch.randn(300, 24)
    ids = torch.randint(0, 300, (500,), generator=torch.Generator().manual_seed(1))
    assert torch.equal(gather_rows(x, ids), x[ids])
    assert calls == {"parallel": int(path == "parallel"), "serial": int(path == "serial")}


def test_gather_one_thread_stays_serial(monkeypatch):
    monkeypatch.setattr(gather_cpu, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(_numba.numba, "get_num_threads", lambda: 1)
    calls = _count_kernels(monkeypatch)
    x = torch.randn(50, 4)
    assert torch.equal(gather_rows(x, torch.tensor([3, 1])), x[[3, 1]])
    assert calls == {"parallel": 0, "serial": 1}


def test_gather_non_contiguous_falls_back():
    x = torch.randn(20, 6).t()  # [6, 20], not contiguous
    ids = torch.tensor([5, 1])
    assert torch.equal(gather_rows(x, ids), x[ids])


def test_gather_into_out_and_empty():
    x = torch.randn(10, 4)
    out = torch.empty(3, 4)
    res = gather_rows(x, torch.tensor([1, 2, 3]), out)
    assert res is out and torch.equal(out, x[1:4])
    assert gather_rows(x, torch.empty(0, dtype=torch.long)).shape == (0, 4)


def test_store_tensor_numpy_memmap_and_indexable(tmp_path):
    x = np.random.default_rng(0).standard_normal((30, 5)).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")

    class Rows:  # anything indexable by a LongTensor with a length
        def __len__(self):
            return 30

        def __getitem__(self, ids):
            return torch.from_numpy(x)[ids] * 2

    store = FeatureStore({"t": torch.from_numpy(x)}, mm=mm, obj=Rows())
    ids = torch.tensor([29, 3, 3])
    want = torch.from_numpy(x)[ids]
    assert torch.equal(store.fetch("t", ids), want)
    assert torch.equal(store.fetch("mm", ids), want)
    assert torch.equal(store.fetch("obj", ids), want * 2)
    assert store.num_rows("mm") == 30 and set(store) == {"t", "mm", "obj"} and len(store) == 3
    assert "mm" in store and "nope" not in store
    assert "FeatureStore(" in repr(store)


def test_fetch_out_argument_and_checks():
    store = FeatureStore(x=torch.randn(10, 3))
    out = torch.empty(2, 3)
    assert store.fetch("x", torch.tensor([4, 5]), out=out) is out
    with pytest.raises(ValueError, match="shape"):
        store.fetch("x", torch.tensor([4, 5]), out=torch.empty(3, 3))
    with pytest.raises(ValueError, match="dtype"):
        store.fetch("x", torch.tensor([4, 5]), out=torch.empty(2, 3, dtype=torch.float64))


@pytest.mark.parametrize(
    "ids, exc, msg",
    [
        (torch.tensor([0, 10]), IndexError, "out of range"),
        (torch.tensor([-1]), IndexError, "negative"),
        (torch.tensor([0.5]), ValueError, "integer"),
        (torch.tensor([[1]]), ValueError, "1-dimensional"),
        ([1, 2], None, None),
    ],
)
def test_fetch_validates_ids(ids, exc, msg):
    store = FeatureStore(x=torch.randn(10, 3))
    if exc is None:
        assert store.fetch("x", ids).shape == (2, 3)
        return
    with pytest.raises(exc, match=msg):
        store.fetch("x", ids)


def test_bad_tables_and_names():
    with pytest.raises(ValueError, match="row dimension"):
        FeatureStore(x=torch.tensor(3.0))
    with pytest.raises(TypeError, match="indexable"):
        FeatureStore(x=3)
    with pytest.raises(TypeError, match="names"):
        FeatureStore({1: torch.zeros(2)})
    with pytest.raises(KeyError, match="no table named 'y'"):
        FeatureStore(x=torch.zeros(2, 2)).fetch("y", torch.tensor([0]))


def test_fetch_to_device_and_pinning_without_gpu():
    store = FeatureStore(x=torch.randn(10, 3))
    # pin_memory is ignored without CUDA (pinning needs a driver); the rows still arrive.
    rows = store.fetch("x", torch.tensor([1]), device="cpu", pin_memory=True)
    assert rows.shape == (1, 3) and not rows.is_pinned()


@pytest.mark.gpu
def test_fetch_to_gpu_through_pinned_buffer():
    x = torch.randn(100, 8)
    store = FeatureStore(x=x, g=x.cuda())
    ids = torch.tensor([5, 7, 99])
    assert torch.equal(store.fetch("x", ids, device="cuda").cpu(), x[ids])
    assert store.fetch("x", ids, pin_memory=True).is_pinned()
    assert torch.equal(store.fetch("g", ids.cuda()).cpu(), x[ids])


def test_buffer_pool_reuses_only_released_buffers():
    import gc

    from gnnsys.features import BufferPool

    pool = BufferPool(max_buffers=2)
    a = pool.take(10, (4,), torch.float32)
    first = a.data_ptr()
    b = pool.take(10, (4,), torch.float32)
    assert b.data_ptr() != first
    del a
    gc.collect()
    c = pool.take(8, (4,), torch.float32)
    assert c.data_ptr() == first  # released: reused
    view = c[2:]
    del c
    d = pool.take(8, (4,), torch.float32)
    assert d.data_ptr() != first  # a view still holds it
    assert view.shape == (6, 4)
    e = pool.take(5, (3,), torch.bfloat16)
    assert e.shape == (5, 3) and e.dtype == torch.bfloat16
    assert pool.take(0, (4,), torch.float32).shape == (0, 4)


def test_buffer_pool_leaves_requests_under_min_bytes_to_torch():
    from gnnsys.features import BufferPool

    pool = BufferPool(min_bytes=4096)
    small = pool.take(255, (4,), torch.float32)  # 4080 bytes: a plain tensor, nothing pooled
    assert small.shape == (255, 4) and not pool._free
    half = pool.take(256, (4,), torch.float16)  # 2048 bytes of float16: still under
    assert half.dtype == torch.float16 and not pool._free
    assert pool.take(256, (4,), torch.float32).shape == (256, 4) and len(pool._free[16]) == 1


def test_fetch_results_survive_later_fetches():
    # Pooled buffers must never be overwritten while a caller still holds the result.
    x = torch.arange(4000, dtype=torch.float32).view(1000, 4)
    store = FeatureStore(x=x)
    held = []
    for i in range(12):
        ids = torch.arange(i, 1000, 7)
        held.append((ids, store.fetch("x", ids)))
    for ids, rows in held:
        assert torch.equal(rows, x[ids])


def test_unified_tensor_table():
    import gnnsys

    x = torch.randn(100, 8)
    store = FeatureStore(x=gnnsys.unified(x))
    ids = torch.tensor([5, 99, 0])
    assert torch.equal(store.fetch("x", ids), x[ids])
    assert store.num_rows("x") == 100


def test_unified_table_cpu_fetch_uses_out_and_pool():
    import gnnsys

    x = torch.randn(300, 5, dtype=torch.float64)
    store = FeatureStore(x=gnnsys.unified(x))
    ids = torch.tensor([7, 0, 299, 7])
    out = torch.empty(4, 5, dtype=torch.float64)
    assert store.fetch("x", ids, out=out) is out
    assert torch.equal(out, x[ids])
    with pytest.raises(IndexError, match="300"):
        store.fetch("x", torch.tensor([300]))
    with pytest.raises(ValueError, match="shape"):
        store.fetch("x", ids, out=torch.empty(3, 5, dtype=torch.float64))


@pytest.mark.skipif(
    importlib.util.find_spec("triton") is None, reason="triton is not installed (the gpu extra)"
)
@pytest.mark.parametrize("cache", [None, 0.3])
def test_unified_table_headed_for_cuda_is_gathered_by_the_triton_kernel(monkeypatch, cache):
    """The zero-copy route: FeatureStore.fetch(device="cuda") hands a UnifiedTensor the ids and
    the device, and UnifiedTensor.gather runs the Triton gather kernel on its host rows (with
    a cache: hits from the cached rows in the same launch), never the CPU gather. With a GPU
    all of it runs for real. Without one, only the device UnifiedTensor.gather receives is
    redirected to the CPU with backend="triton": the same kernel, interpreted, on the same
    host rows. What stays untested there (needs a GPU, see test_unified_gpu.py): the side
    stream, the host registration and the HostPointer handed to the compiled kernel."""
    import gnnsys
    from gnnsys.unified_tensor import gather_triton

    gpu = torch.cuda.is_available()
    base = torch.randn(200, 6, generator=torch.Generator().manual_seed(0))
    x = gnnsys.unified(base, cache=cache, cache_device=None if gpu else "cpu")
    ids = torch.tensor([199, 3, 3, 0, 57, 120, 8, 150])
    plain = FeatureStore(x=base).fetch("x", ids)  # the numba CPU gather of the same rows

    asked, launched = [], []
    real_gather, real_launch = UnifiedTensor.gather, gather_triton.gather

    def gather(self, index, *, device=None, **kw):
        asked.append(device)
        if not gpu:
            device, kw = torch.device("cpu"), {**kw, "backend": "triton"}
        return real_gather(self, index, device=device, **kw)

    def launch(*a, **kw):
        launched.append((kw["ids"].numel(), kw["slot"] is not None))
        return real_launch(*a, **kw)

    def no_cpu_gather(*a, **k):
        raise AssertionError("CPU gather on the zero-copy path")

    monkeypatch.setattr(UnifiedTensor, "gather", gather)
    monkeypatch.setattr(gather_triton, "gather", launch)
    monkeypatch.setattr(gather_cpu, "gather_rows", no_cpu_gather)
    got = FeatureStore(x=x).fetch("x", ids, device="cuda")
    assert asked == [torch.device("cuda")]
    assert launched == [(ids.numel(), cache is not None)]
    assert got.device.type == ("cuda" if gpu else "cpu")
    assert torch.equal(got.cpu(), plain) and torch.equal(plain, base[ids])
    if cache is not None:  # the batch mixes cache hits and misses
        hit = x.cache.slot.cpu()[ids] >= 0
        assert bool(hit.any()) and not bool(hit.all())


def test_fetch_to_cuda_without_a_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    store = FeatureStore(x=torch.randn(4, 2))
    with pytest.raises(ValueError, match="needs a CUDA device; none is available"):
        store.fetch("x", torch.tensor([1]), device="cuda")


@pytest.mark.gpu
def test_unified_fetch_with_cuda_ids_does_not_synchronise():
    import gnnsys

    x = gnnsys.unified(torch.randn(1000, 8))
    ids = torch.randint(0, 1000, (256,), device="cuda")
    store = FeatureStore(x=x)
    store.fetch("x", ids, device="cuda")  # warm-up (kernel compile, registration)
    torch.cuda.set_sync_debug_mode("error")
    try:
        rows = store.fetch("x", ids, device="cuda")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.equal(rows.cpu(), x[ids.cpu()])


class _Grouped:
    """A table read together with the others of its group (as a DistTable is with its graph's):
    records each ``fetch_together`` call."""

    calls: list = []

    def __init__(self, rows: torch.Tensor, group: int) -> None:
        self.rows, self.fetch_group, self.shape = rows, group, tuple(rows.shape)

    def __getitem__(self, ids):
        return self.rows[ids]

    @staticmethod
    def fetch_together(tables, ids):
        _Grouped.calls.append([t.fetch_group for t in tables])
        return [t.rows[i] for t, i in zip(tables, ids)]


def test_fetch_many_reads_each_group_together():
    _Grouped.calls.clear()
    x, y, z = torch.randn(9, 3), torch.arange(9), torch.randn(9, 2)
    store = FeatureStore(x=_Grouped(x, 1), y=_Grouped(y, 1), z=_Grouped(z, 2), w=x)
    ids = [torch.tensor([8, 0]), torch.tensor([1]), torch.tensor([4, 4, 2]), torch.tensor([3])]
    got = store.fetch_many(list(zip(["x", "w", "y", "z"], ids)))
    assert [g.tolist() for g in got] == [x[ids[0]].tolist(), x[ids[1]].tolist(),
                                         y[ids[2]].tolist(), z[ids[3]].tolist()]  # fmt: skip
    assert _Grouped.calls == [[1, 1], [2]]  # x and y in one call; the plain tensor alone
    # every group's ids are checked before any group is read
    with pytest.raises(IndexError, match="9"):
        store.fetch_many([("x", torch.tensor([0])), ("z", torch.tensor([9]))])
    assert _Grouped.calls == [[1, 1], [2]]
    with pytest.raises(KeyError, match="no table named 'v'"):
        store.fetch_many([("v", torch.tensor([0]))])


# ---------------------------------------------------------------- bad input (sweep)
def test_tables_of_one_type_must_agree_on_rows():
    with pytest.raises(ValueError, match=r"table \('paper', 'y'\) has 7 rows .* has 10"):
        FeatureStore({("paper", "x"): torch.zeros(10, 2), ("paper", "y"): torch.zeros(7)})
    s = FeatureStore({("paper", "x"): torch.zeros(10, 2), ("author", "x"): torch.zeros(7, 2)})
    s[("paper", "y")] = torch.zeros(10)
    FeatureStore(x=torch.zeros(10, 2), edge_w=torch.zeros(7))  # untyped: edge tables differ


@pytest.mark.parametrize(
    "value, match",
    [
        ("abc", "got str"),
        ({"a": 1}, "got dict"),
        (torch.zeros(3, 2, device="meta"), "must be on a cpu or cuda device, got a tensor on meta"),
        ([[1, 2], [3]], "rectangular"),
    ],
)
def test_bad_table_values(value, match):
    with pytest.raises((TypeError, ValueError), match=match):
        FeatureStore(x=value)


def test_bad_keys_and_requests():
    with pytest.raises(TypeError, match="table names"):
        FeatureStore({(("", "", ""), "x"): torch.zeros(2)})
    s = FeatureStore(x=torch.arange(8.0).view(4, 2))
    assert ["x"] not in s
    with pytest.raises(KeyError, match=r"no table named \['x'\]"):
        s.fetch(["x"], torch.tensor([0]))
    with pytest.raises(TypeError, match="requests must be a list"):
        s.fetch_many(None)
    with pytest.raises(ValueError, match=r"requests\[0\] must be a \(name, ids\) pair"):
        s.fetch_many(["x"])


def test_fetch_device_is_checked():
    s = FeatureStore(x=torch.arange(8.0).view(4, 2))
    with pytest.raises(ValueError, match="device must be cpu or cuda, got 'meta'"):
        s.fetch("x", torch.tensor([0]), device="meta")  # was a meta tensor: no data
    with pytest.raises(ValueError, match="device='gpu' is not a valid device"):
        s.fetch("x", torch.tensor([0]), device="gpu")


def test_sparse_coo_tables_give_sparse_rows_and_other_layouts_a_clear_error():
    # bag-of-words features kept sparse: rows come back sparse COO (as PyG slices them), or
    # dense into a given ``out``; a CSR table (no row gather in torch) is a clear TypeError
    dense = torch.randn(40, 6).relu()
    store = FeatureStore(x=dense.to_sparse())
    ids = torch.tensor([5, 0, 5, 39])
    rows = store.fetch("x", ids)
    assert rows.layout == torch.sparse_coo and torch.equal(rows.to_dense(), dense[ids])
    out = torch.empty(4, 6)
    assert store.fetch("x", ids, out=out) is out and torch.equal(out, dense[ids])
    with pytest.raises(IndexError):
        store.fetch("x", torch.tensor([40]))
    with pytest.raises(TypeError, match="sparse COO tables only"):
        FeatureStore(x=dense.to_sparse_csr()).fetch("x", ids)
