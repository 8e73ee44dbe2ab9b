"""UnifiedTensor on a real GPU: registration in place, zero-copy gathers, the finalizer,
cache, staging for memmaps, interop, multi-process sharing. Skipped without CUDA."""

import gc
import warnings

import numpy as np
import pytest
import torch

from gnnsys.unified_tensor import from_file, pinning, unified

pytestmark = pytest.mark.gpu

DEV = torch.device("cuda")


def _table(n, d, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return torch.randn(n, d, generator=g).to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, (n, d), generator=g).bool()
    return torch.randint(-100, 100, (n, d), generator=g).to(dtype)


def test_registered_in_place_not_copied():
    x = _table(10_000, 64)
    u = unified(x)
    assert u.is_registered
    assert u._host.data_ptr() == x.data_ptr()  # the caller's memory, no pinned copy
    assert pinning.is_registered(x.data_ptr(), x.nbytes)
    assert torch.cuda.cudart() is not None


@pytest.mark.parametrize(
    "dtype,d",
    [
        (torch.float32, 1),
        (torch.float32, 3),
        (torch.float32, 100),
        (torch.float32, 128),
        (torch.float32, 1000),
        (torch.float16, 37),
        (torch.float64, 64),
        (torch.int64, 5),
    ],
)
def test_zero_copy_gather_matches(dtype, d):
    x = _table(5000, d, dtype)
    u = unified(x)
    ids = torch.randint(0, 5000, (3000,), device=DEV)
    want = x[ids.cpu()]
    for kw in ({}, {"sort": True}, {"aligned": False}, {"max_programs": 4}):
        got = u[ids] if not kw else u.gather(ids, **kw)
        assert got.device.type == "cuda" and got.dtype == dtype
        assert torch.equal(got.cpu(), want), kw


def test_zero_copy_gather_defaults_to_few_programs(monkeypatch):
    """PCIe bounds a zero-copy gather: by default it launches HOST_READ_PROGRAMS programs (the
    SMs left to training), a caller's max_programs wins, and the rows are the same."""
    from gnnsys.unified_tensor import gather_triton as gt

    seen = []
    real = gt.gather

    def spy(*args, **kwargs):
        seen.append(kwargs.get("max_programs"))
        return real(*args, **kwargs)

    monkeypatch.setattr(gt, "gather", spy)
    x = _table(5000, 100)
    u = unified(x)
    ids = torch.randint(0, 5000, (4096,), device=DEV)
    assert torch.equal(u[ids].cpu(), x[ids.cpu()])
    assert torch.equal(u.gather(ids, max_programs=1056).cpu(), x[ids.cpu()])
    assert seen == [gt.HOST_READ_PROGRAMS, 1056]


def test_cpu_ids_onto_the_gpu():
    x = _table(3000, 20)
    u = unified(x)
    ids = torch.randint(0, 3000, (777,))
    got = u.gather(ids, device="cuda")
    assert got.device.type == "cuda" and torch.equal(got.cpu(), x[ids])
    pending = u.gather_async(ids, device=DEV, sort=True)
    assert torch.equal(pending.wait().cpu(), x[ids])
    with pytest.raises(IndexError):
        u.gather(torch.tensor([3000]), device="cuda")


def test_reads_host_memory_live():
    x = _table(100, 16)
    u = unified(x)
    x[7] = 3.5  # written on the host after wrapping: the GPU must see it
    assert torch.equal(u[torch.tensor([7], device=DEV)].cpu(), torch.full((1, 16), 3.5))


@pytest.mark.parametrize("sdtype", [torch.bfloat16, torch.float16])
def test_half_storage_on_gpu(sdtype):
    x = _table(2000, 50)
    u = unified(x, storage_dtype=sdtype)
    ids = torch.randint(0, 2000, (999,), device=DEV)
    got = u[ids]
    assert got.dtype == torch.float32
    assert torch.equal(got.cpu(), x.to(sdtype).float()[ids.cpu()])


def test_bool_and_nd_tables():
    x = _table(300, 7, torch.bool)
    ids = torch.randint(0, 300, (50,), device=DEV)
    assert torch.equal(unified(x)[ids].cpu(), x[ids.cpu()])
    y = torch.randn(300, 3, 4)
    assert torch.equal(unified(y)[ids].cpu(), y[ids.cpu()])


def test_out_of_range_cuda_ids():
    x = _table(10, 4)
    u = unified(x)
    bad = torch.tensor([1, 10], device=DEV)
    with pytest.raises(IndexError, match="id 10"):
        u.gather(bad, validate="sync")  # checked before returning
    got = u[bad]  # checked on the device, reported lazily: the bad row reads as zeros
    assert torch.equal(got.cpu(), torch.stack([x[1], torch.zeros(4)]))
    with pytest.raises(IndexError, match="id 10"):
        u.check()
    u[torch.tensor([-1], device=DEV)]
    torch.cuda.synchronize()
    with pytest.raises(IndexError, match="negative"):
        u[torch.tensor([0], device=DEV)]  # the next gather reports the finished check
    assert torch.equal(u.gather(bad, validate=False).cpu()[1], torch.zeros(4))
    u.check()  # validate=False queued no check


def test_cuda_ids_gather_never_synchronises():
    # torch raises on any synchronising call in "error" mode (a .item(), a blocking copy...).
    x = _table(5000, 64)
    u = unified(x, cache=0.1)
    ids = torch.randint(0, 5000, (3000,), device=DEV)
    want = x[ids.cpu()]
    torch.cuda.set_sync_debug_mode("error")
    try:
        a = u[ids]
        b = u.gather(ids, sort=True, max_programs=4)
        c = u.gather_async(ids).wait()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for got in (a, b, c):
        assert torch.equal(got.cpu(), want)
    u.check()


def test_gpu_cache_hits_and_misses():
    x = _table(1000, 24)
    u = unified(x, cache=0.2, cache_order=torch.arange(1000))  # highest ids are hottest
    c = u.cache
    assert c is not None and c.device.type == "cuda" and c.num_rows == 200
    assert c.ids[:3].tolist() == [999, 998, 997]
    ids = torch.randint(0, 1000, (5000,), device=DEV)
    assert torch.equal(u[ids].cpu(), x[ids.cpu()])
    c.rows += 100.0
    hit = ids.cpu() >= 800
    got = u[ids].cpu()
    assert torch.equal(got[hit], x[ids.cpu()][hit] + 100.0)
    assert torch.equal(got[~hit], x[ids.cpu()][~hit])


def test_byte_budget_cache():
    x = _table(1000, 32)
    u = unified(x, cache=4 * 1000 + 100 * 32 * 4)
    assert u.cache.num_rows == 100


def test_finalizer_unregisters_after_last_user():
    x = _table(4096, 256)
    ptr, nbytes = x.data_ptr(), x.nbytes
    u = unified(x)
    v = unified(x)  # same range: one registration, two users
    _ = u[torch.arange(10, device=DEV)]
    del u
    gc.collect()
    assert pinning.is_registered(ptr, nbytes)
    del v
    gc.collect()
    assert not pinning.is_registered(ptr, nbytes)
    w = unified(x)  # registering again works
    assert w.is_registered


def test_keeps_host_storage_alive():
    x = _table(1000, 64)
    want = x[[5, 999]].clone()
    u = unified(x)
    del x
    gc.collect()
    assert torch.equal(u[torch.tensor([5, 999], device=DEV)].cpu(), want)


def test_already_pinned_memory_falls_back_to_staging():
    x = torch.randn(1000, 8).pin_memory()  # cudaHostAlloc'd: registering it again fails
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        u = unified(x)
    ids = torch.randint(0, 1000, (100,), device=DEV)
    assert torch.equal(u[ids].cpu(), x[ids.cpu()])
    torch.cuda.synchronize()
    torch.ones(4, device=DEV).sum().item()  # no stale CUDA error left behind


def test_gather_async_overlaps_and_waits():
    x = _table(20000, 128)
    u = unified(x)
    ids = torch.randint(0, 20000, (8192,), device=DEV)
    pending = u.gather_async(ids, max_programs=8)
    a = torch.randn(1024, 1024, device=DEV)
    _ = a @ a  # training work on the current stream meanwhile
    got = pending.wait()
    assert torch.equal(got.cpu(), x[ids.cpu()])


def test_cuda_array_interface_and_uva_view():
    x = _table(500, 10)
    u = unified(x)
    cai = u.__cuda_array_interface__
    assert cai["shape"] == (500, 10) and cai["typestr"] == "<f4" and cai["version"] == 3
    view = u.uva_view()
    assert view.device.type == "cuda" and torch.equal(view.cpu(), x)
    ids = torch.randint(0, 500, (64,), device=DEV)
    assert torch.equal(torch.index_select(view, 0, ids).cpu(), x[ids.cpu()])
    cupy = pytest.importorskip("cupy")
    arr = cupy.asarray(u)
    assert np.array_equal(cupy.asnumpy(arr), x.numpy())


def test_memmap_gpu_gather_through_staging(tmp_path):
    x = _table(3000, 40).numpy()
    np.save(tmp_path / "f.npy", x)
    u = from_file(tmp_path / "f.npy")
    assert not u.is_registered
    ids = torch.randint(0, 3000, (2500,), device=DEV)
    assert np.array_equal(u[ids].cpu().numpy(), x[ids.cpu().numpy()])
    v = from_file(tmp_path / "f.npy", cache=0.1, cache_order=torch.arange(3000))
    assert v.cache.device.type == "cuda"
    assert np.array_equal(v[ids].cpu().numpy(), x[ids.cpu().numpy()])


def test_table_over_4gb_offsets():
    n, d = (1 << 32) // 256 + 1024, 256  # > 2^32 bytes and > 2^31 elements of uint8
    x = torch.empty(n, d, dtype=torch.uint8)
    x[-4:] = torch.arange(4 * d, dtype=torch.int64).view(4, d).to(torch.uint8)
    x[:4] = 9
    u = unified(x)
    ids = torch.tensor([n - 1, 0, n - 4, n - 2], device=DEV)
    assert torch.equal(u[ids].cpu(), x[ids.cpu()])


def _child(x, q):
    import torch

    from gnnsys.unified_tensor import unified

    u = unified(x)
    ids = torch.arange(0, x.shape[0], 7, device="cuda")
    q.put((u.is_registered, float(u[ids].double().sum().item())))


def test_shared_memory_registered_by_several_processes():
    x = _table(4000, 32).share_memory_()
    parent = unified(x)  # registered here too, at the same time
    want = float(x[torch.arange(0, 4000, 7)].double().sum())
    ctx = torch.multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(x, q)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for registered, s in results:
        assert registered and abs(s - want) < 1e-6 * max(1.0, abs(want))
    assert parent.is_registered


def test_pyg_loader_gathers_unified_x_on_the_gpu(monkeypatch):
    # data.x = gnnsys.unified(data.x) + device="cuda": features read from host memory by the
    # GPU kernel (the CPU row gather is never called), equal to the plain loader's batches.
    from torch_geometric.data import Data

    from gnnsys.loaders.pyg import NeighborLoader
    from gnnsys.unified_tensor import UnifiedTensor

    n = 2000
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, n, (2, 20000), generator=g)
    x = torch.randn(n, 100, generator=g)
    y = torch.randint(0, 5, (n,), generator=g)
    kw = dict(num_neighbors=[5, 5], batch_size=128, seed=1, input_nodes=torch.arange(600))
    want = [b for b in NeighborLoader(Data(x=x, edge_index=ei, y=y), **kw)]

    def no_cpu_gather(*a, **k):
        raise AssertionError("CPU gather of a unified table headed for the GPU")

    # Only the unified table's CPU routes are blocked (its numba gather, its staging copy):
    # the labels y are an ordinary table, gathered on the CPU by gather_cpu.gather_rows.
    for route in ("_gather_cpu", "_fill", "_fill_storage", "_gather_staged"):
        monkeypatch.setattr(UnifiedTensor, route, no_cpu_gather)
    launches = []
    launch = UnifiedTensor._launch
    monkeypatch.setattr(
        UnifiedTensor, "_launch", lambda self, *a: launches.append(a[0]) or launch(self, *a)
    )
    data = Data(x=unified(x), edge_index=ei, y=y)
    got = list(NeighborLoader(data, device="cuda", **kw))
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.x.device.type == "cuda"
        assert torch.equal(a.x.cpu(), b.x) and torch.equal(a.n_id.cpu(), b.n_id)
        assert torch.equal(a.y.cpu(), b.y)
    # one zero-copy kernel launch per batch, reading host memory through a HostPointer
    assert len(launches) == len(want) and all(type(s).__name__ == "HostPointer" for s in launches)
