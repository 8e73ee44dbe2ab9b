"""File maps read at random are gathered from many threads, with the same rows."""

import numpy as np
import pytest
import torch

from gnnsys import _mapped, graph_io
from gnnsys.unified_tensor import gather_cpu


def test_run_sliced_covers_every_row_once_and_reraises():
    seen = np.zeros(10_000, dtype=np.int64)

    def fill(lo, hi):
        seen[lo:hi] += 1

    _mapped.run_sliced(fill, seen.size)
    assert (seen == 1).all()
    calls = []
    _mapped.run_sliced(lambda lo, hi: calls.append((lo, hi)), 100)  # too few rows to split
    assert calls == [(0, 100)]

    def boom(lo, hi):
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        _mapped.run_sliced(boom, 10_000)


def test_a_map_advised_random_is_gathered_sliced_with_the_same_rows(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    table = rng.standard_normal((5000, 16)).astype(np.float16)
    np.save(tmp_path / "x.npy", table)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="c")
    ids = rng.integers(0, 5000, 20_000)
    want = table[ids]
    monkeypatch.setattr(_mapped, "_ranges", [])  # none left by other tests' maps
    assert not _mapped.reads_at_random(mapped)
    monkeypatch.setattr(graph_io, "_available_bytes", lambda: 1000)  # "bigger than RAM"
    assert graph_io.advise_random(mapped) == "MADV_RANDOM"
    assert _mapped.reads_at_random(mapped) and _mapped.reads_at_random(mapped[10:])
    assert not _mapped.reads_at_random(table)
    slices = []
    real = _mapped.run_sliced
    monkeypatch.setattr(_mapped, "run_sliced", lambda fn, n: slices.append(n) or real(fn, n))
    out = gather_cpu.gather_rows(mapped, ids, np.empty((ids.size, 16), np.float16))
    assert np.array_equal(out, want)
    up = gather_cpu.gather_rows_upcast(
        mapped.view(np.uint16), ids, np.empty((ids.size, 16), np.float32), kind="float16"
    )
    assert np.array_equal(up, want.astype(np.float32))
    assert slices == [ids.size, ids.size]
    # through the loaders' entry point, from a mapped tensor
    from gnnsys.features import gather_rows

    got = gather_rows(torch.from_numpy(np.asarray(mapped)), torch.from_numpy(ids))
    assert torch.equal(got, torch.from_numpy(want)) and len(slices) == 3


def test_io_threads_must_be_a_positive_integer(monkeypatch):
    for bad in ("0", "many", "-3"):
        monkeypatch.setenv("GNNSYS_IO_THREADS", bad)
        with pytest.raises(ValueError, match="GNNSYS_IO_THREADS must be a positive integer"):
            _mapped._io_threads()
    monkeypatch.setenv("GNNSYS_IO_THREADS", "4")
    assert _mapped._io_threads() == 4


def test_a_forked_child_gathers_with_its_own_threads():
    import multiprocessing as mp

    _mapped.run_sliced(lambda lo, hi: None, 10_000)  # the parent's pool exists
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:  # the parent's pool threads are not in the child
        res = pool.apply_async(_sum_sliced, (10_000,))
        assert res.get(timeout=60) == sum(range(10_000))


def _sum_sliced(n):
    out = np.zeros(n, dtype=np.int64)

    def fill(lo, hi):
        out[lo:hi] = np.arange(lo, hi)

    _mapped.run_sliced(fill, n)
    return int(out.sum())
