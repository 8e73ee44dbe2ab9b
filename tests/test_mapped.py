"""File maps read at random are gathered from many threads, with the same rows."""

import numpy as np
import pytest
import torch

from gnnsys import _mapped, graph_io
from gnnsys.unified_tensor import gather_cpu


@pytest.fixture(autouse=True)
def _fresh_trim_state(monkeypatch):
    # what earlier trims learned (read-only ranges, other file memory) must not leak in
    monkeypatch.setattr(_mapped, "_walked", {})
    monkeypatch.setattr(_mapped, "_other_file", -1)
    monkeypatch.setattr(_mapped, "_trims_without_walk", 0)


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


def _mapped_file(tmp_path, name, rows=4096, cols=256):
    table = np.arange(rows * cols, dtype=np.float32).reshape(rows, cols)
    np.save(tmp_path / name, table)
    return table, np.load(tmp_path / name, mmap_mode="c")


def test_trim_resident_unmaps_clean_pages_and_keeps_the_rows(tmp_path, monkeypatch):
    table, mapped = _mapped_file(tmp_path, "x.npy")  # 4 MB
    monkeypatch.setattr(_mapped, "_ranges", [])
    monkeypatch.setattr(_mapped, "_trimmed_at", 0)
    ptr = mapped.__array_interface__["data"][0]
    _mapped.mark_random(ptr, mapped.nbytes)
    assert float(np.asarray(mapped).sum()) == float(table.sum())  # every page touched
    before = _mapped.rss_file_bytes()
    assert _mapped.trim_resident(limit=0) == 0  # 0: no limit
    assert _mapped.trim_resident(limit=1 << 60) == 0  # under the limit
    dropped = _mapped.trim_resident(limit=1)
    assert dropped >= mapped.nbytes - 2 * 4096  # the whole map but its partial end pages
    assert before - _mapped.rss_file_bytes() >= mapped.nbytes // 2
    assert np.array_equal(mapped, table)  # read back from the page cache, unchanged
    ids = np.random.default_rng(0).integers(0, table.shape[0], 3000)
    out = gather_cpu.gather_rows(mapped, ids, np.empty((ids.size, table.shape[1]), np.float32))
    assert np.array_equal(out, table[ids])  # the gather trims too, same rows


def test_trim_resident_never_drops_written_pages_or_anonymous_memory(tmp_path, monkeypatch):
    table, mapped = _mapped_file(tmp_path, "x.npy")
    mapped[7, 3] = -1.0  # a copy-on-write page: the area now holds the process's own data
    anon = np.ones(1 << 20, dtype=np.float32)  # ordinary memory at a registered address
    monkeypatch.setattr(_mapped, "_ranges", [])
    monkeypatch.setattr(_mapped, "_trimmed_at", 0)
    for a in (mapped, anon):
        _mapped.mark_random(a.__array_interface__["data"][0], a.nbytes)
    assert _mapped.clean_file_areas(list(_mapped._ranges)) == []
    assert _mapped.trim_resident(limit=1) == 0
    assert mapped[7, 3] == -1.0 and mapped[7, 4] == table[7, 4] and (anon == 1).all()
    _, clean = _mapped_file(tmp_path, "y.npy")
    lo = clean.__array_interface__["data"][0]
    areas = _mapped.clean_file_areas([(lo, lo + clean.nbytes)])
    assert len(areas) == 1 and areas[0][0] >= lo and areas[0][1] <= lo + clean.nbytes
    assert areas[0][2] == 0  # the area's resident bytes: none, not read yet
    np.asarray(clean).sum()
    (area,) = _mapped.clean_file_areas([(lo, lo + clean.nbytes)])
    assert area[2] >= clean.nbytes - 2 * 4096  # all of it but the partial end pages


def test_unwritten_file_map_tells_a_files_bytes_from_the_processs_own(tmp_path):
    _, mapped = _mapped_file(tmp_path, "x.npy")
    lo = mapped.__array_interface__["data"][0]
    assert _mapped.unwritten_file_map(lo, mapped.nbytes)
    assert not _mapped.unwritten_file_map(lo, mapped.nbytes + (1 << 30))  # beyond the map
    mapped[5, 0] = 7.0  # a copy-on-write copy: the area holds this process's data now
    assert not _mapped.unwritten_file_map(lo, mapped.nbytes)
    anon = np.ones(1 << 20, dtype=np.float32)
    assert not _mapped.unwritten_file_map(anon.__array_interface__["data"][0], anon.nbytes)
    assert not _mapped.unwritten_file_map(lo, 0)


def test_trim_resident_keeps_the_leading_bytes_that_fit(tmp_path, monkeypatch):
    table, mapped = _mapped_file(tmp_path, "x.npy", rows=8192)  # 8 MB
    idle = np.load(tmp_path / "x.npy", mmap_mode="r")  # a second map of it, never read
    monkeypatch.setattr(_mapped, "_ranges", [])
    monkeypatch.setattr(_mapped, "_trimmed_at", 0)
    for a in (idle, mapped):  # registered first, it must not take the room to keep
        _mapped.mark_random(a.__array_interface__["data"][0], a.nbytes)
    np.asarray(mapped).sum()  # all resident
    (_, _, none), (a_lo, a_hi, mine) = _mapped.clean_file_areas(list(_mapped._ranges))
    assert none == 0
    # as if the process held 1 MB of other file memory (it holds its libraries' too)
    monkeypatch.setattr(_mapped, "rss_file_bytes", lambda: mine + (1 << 20))
    limit = (4 << 20) * 4 // 3  # three quarters: 3 MB of the map beside the other 1 MB
    dropped = _mapped.trim_resident(limit=limit)
    kept = (a_hi - a_lo) - dropped
    assert 2 << 20 <= kept <= 4 << 20, kept
    resident = _mapped.clean_file_areas(list(_mapped._ranges))[1][2]
    assert resident <= kept + (1 << 20)  # the tail is gone, the head stays
    assert np.array_equal(mapped, table)


def test_resident_limit_from_the_environment(monkeypatch):
    monkeypatch.setenv("GNNSYS_MAPPED_RSS_LIMIT", "12G")
    assert _mapped._resident_limit() == 12 << 30
    monkeypatch.setenv("GNNSYS_MAPPED_RSS_LIMIT", "0")
    assert _mapped._resident_limit() == 0
    monkeypatch.setenv("GNNSYS_MAPPED_RSS_LIMIT", "auto")
    auto = _mapped._mem_total_bytes() * 3 // 4
    assert _mapped._resident_limit() == auto > 0
    monkeypatch.delenv("GNNSYS_MAPPED_RSS_LIMIT")
    assert _mapped._resident_limit() == auto  # on unless turned off
    monkeypatch.setenv("GNNSYS_MAPPED_RSS_LIMIT", "lots")
    with pytest.raises(ValueError, match="GNNSYS_MAPPED_RSS_LIMIT must be a size"):
        _mapped._resident_limit()


# ---------------------------------------------------------------- memory under a cgroup limit
GiB = 1 << 30


def _fake_system(monkeypatch, tmp_path, cgroup_lines, files, total=64 * GiB, available=60 * GiB):
    """A /proc/meminfo, /proc/self/cgroup and cgroup folder tree under tmp_path."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal: {total // 1024} kB\nMemAvailable: {available // 1024} kB\n")
    cgroup = tmp_path / "cgroup"
    cgroup.write_text("\n".join(cgroup_lines) + "\n")
    root = tmp_path / "sys_fs_cgroup"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root.mkdir(exist_ok=True)
    monkeypatch.setattr(_mapped, "MEMINFO", str(meminfo))
    monkeypatch.setattr(_mapped, "PROC_CGROUP", str(cgroup))
    monkeypatch.setattr(_mapped, "CGROUP_ROOT", str(root))


def test_machine_memory_without_a_cgroup_limit_is_meminfo(monkeypatch, tmp_path):
    _fake_system(monkeypatch, tmp_path, ["0::/job"], {
        "cgroup.controllers": "memory\n",
        "job/memory.max": "max\n",
        "job/memory.current": f"{GiB}\n",
    })  # fmt: skip
    assert _mapped.cgroup_memory() == (0, 0)
    assert _mapped.machine_memory() == (64 * GiB, 60 * GiB)


def test_machine_memory_is_capped_by_a_v2_limit_on_an_ancestor(monkeypatch, tmp_path):
    # the job's own folder is unlimited, its parent holds 16 GiB; 10 GiB in use of which 3 GiB
    # is inactive file cache (reclaimable): 9 GiB of headroom
    _fake_system(monkeypatch, tmp_path, ["0::/slurm/job_7"], {
        "cgroup.controllers": "cpu memory\n",
        "slurm/memory.max": f"{16 * GiB}\n",
        "slurm/memory.current": f"{10 * GiB}\n",
        "slurm/memory.stat": f"anon {7 * GiB}\ninactive_file {3 * GiB}\nactive_file 0\n",
        "slurm/job_7/memory.max": "max\n",
        "slurm/job_7/memory.current": f"{10 * GiB}\n",
    })  # fmt: skip
    assert _mapped.cgroup_memory() == (16 * GiB, 9 * GiB)
    assert _mapped.machine_memory() == (16 * GiB, 9 * GiB)
    monkeypatch.setenv("GNNSYS_MAPPED_RSS_LIMIT", "auto")
    assert _mapped._resident_limit() == 12 * GiB  # three quarters of the job's memory


def test_machine_memory_v1_limit_and_the_tightest_level_wins(monkeypatch, tmp_path):
    _fake_system(monkeypatch, tmp_path, ["4:memory:/docker/abc", "0::/"], {
        # no cgroup.controllers at the root: the v2 hierarchy has no controllers, v1 is used
        "memory/memory.limit_in_bytes": "9223372036854771712\n",  # v1's "unlimited"
        "memory/docker/memory.limit_in_bytes": f"{32 * GiB}\n",
        "memory/docker/memory.usage_in_bytes": f"{2 * GiB}\n",
        "memory/docker/abc/memory.limit_in_bytes": f"{8 * GiB}\n",
        "memory/docker/abc/memory.usage_in_bytes": f"{6 * GiB}\n",
        "memory/docker/abc/memory.stat": f"cache {5 * GiB}\ntotal_inactive_file {4 * GiB}\n",
    })  # fmt: skip
    assert _mapped.cgroup_memory() == (8 * GiB, 6 * GiB)  # 8 - (6 - 4)
    assert _mapped.machine_memory() == (8 * GiB, 6 * GiB)


def test_machine_memory_takes_the_smallest_limit_and_the_smallest_headroom(monkeypatch, tmp_path):
    # the job may hold 12 GiB (2 in use), but its parent's 16 GiB are 10 GiB used (a sibling
    # holds 8): 12 GiB total, 6 GiB available
    _fake_system(monkeypatch, tmp_path, ["0::/user/job"], {
        "cgroup.controllers": "memory\n",
        "user/memory.max": f"{16 * GiB}\n",
        "user/memory.current": f"{10 * GiB}\n",
        "user/job/memory.max": f"{12 * GiB}\n",
        "user/job/memory.current": f"{2 * GiB}\n",
    })  # fmt: skip
    assert _mapped.machine_memory() == (12 * GiB, 6 * GiB)


def test_machine_memory_in_a_container_that_sees_its_cgroup_as_the_root(monkeypatch, tmp_path):
    # /proc/self/cgroup names a host path the container cannot see; its limit is at the root
    _fake_system(monkeypatch, tmp_path, ["0::/kubepods/pod1/ctr"], {
        "cgroup.controllers": "memory\n",
        "memory.max": f"{4 * GiB}\n",
        "memory.current": f"{GiB}\n",
    })  # fmt: skip
    assert _mapped.machine_memory() == (4 * GiB, 3 * GiB)


def test_machine_memory_ignores_unreadable_cgroup_information(monkeypatch, tmp_path):
    _fake_system(monkeypatch, tmp_path, ["garbage", "0::/x"], {
        "cgroup.controllers": "memory\n",
        "x/memory.max": "lots\n",
        "x/memory.stat": "inactive_file many\n",
    })  # fmt: skip
    assert _mapped.machine_memory() == (64 * GiB, 60 * GiB)
    monkeypatch.setattr(_mapped, "PROC_CGROUP", str(tmp_path / "missing"))
    assert _mapped.machine_memory() == (64 * GiB, 60 * GiB)


def _registered_resident_map(tmp_path, monkeypatch):
    table, mapped = _mapped_file(tmp_path, "x.npy")  # 4 MB, every page touched
    monkeypatch.setattr(_mapped, "_ranges", [])
    monkeypatch.setattr(_mapped, "_trimmed_at", 0)
    _mapped.mark_random(mapped.__array_interface__["data"][0], mapped.nbytes)
    np.asarray(mapped).sum()
    return table, mapped


def _map_resident(mapped):
    lo = mapped.__array_interface__["data"][0]
    return _mapped.clean_file_areas([(lo, lo + mapped.nbytes)])[0][2]


def test_one_trim_at_a_time_and_a_waiting_caller_trims_after(tmp_path, monkeypatch):
    import threading

    table, mapped = _registered_resident_map(tmp_path, monkeypatch)
    with _mapped._trim_lock:  # another thread is trimming
        assert _mapped.trim_resident(limit=1) == 0
        assert _map_resident(mapped) > 0
        got = []
        waiter = threading.Thread(target=lambda: got.append(_mapped.trim_resident(1, wait=True)))
        waiter.start()
        waiter.join(0.2)
        assert waiter.is_alive() and not got  # waits for the running trim
    waiter.join(30)
    assert got and got[0] > 0  # and then trims: still over the limit
    assert _map_resident(mapped) <= 2 * 4096 and np.array_equal(mapped, table)


def test_request_trim_starts_in_the_background_and_holds_the_limit(tmp_path, monkeypatch):
    import threading
    import time

    table, mapped = _registered_resident_map(tmp_path, monkeypatch)
    rss = {"now": 0}
    monkeypatch.setattr(_mapped, "rss_file_bytes", lambda: rss["now"])
    limit = 80 << 20
    monkeypatch.setattr(_mapped, "RESIDENT_LIMIT", limit)
    started = []
    real_thread = threading.Thread

    def thread(*args, **kwargs):
        t = real_thread(*args, **kwargs)
        started.append(t)
        return t

    monkeypatch.setattr(_mapped.threading, "Thread", thread)
    rss["now"] = limit * 7 // 8 - 1  # under seven eighths: nothing to do
    assert not _mapped.request_trim() and not started
    rss["now"] = limit * 15 // 16  # past seven eighths: a trim starts on its own thread
    assert _mapped.request_trim() and len(started) == 1
    started[0].join(30)
    assert _map_resident(mapped) <= 2 * 4096  # (all but the partial end pages: the fake RSS
    # stays over the keep level)
    assert np.array_equal(mapped, table)
    np.asarray(mapped).sum()
    monkeypatch.setattr(_mapped, "_trimmed_at", 0)
    with _mapped._trim_lock:  # a running trim: no second one
        assert not _mapped.request_trim() and len(started) == 1
    rss["now"] = limit + 1  # past the limit: trimmed on the caller's thread before it returns
    t0 = time.perf_counter()
    assert _mapped.request_trim() and len(started) == 1
    assert _map_resident(mapped) <= 2 * 4096 and time.perf_counter() - t0 < 30
    monkeypatch.setattr(_mapped, "RESIDENT_LIMIT", 0)  # no limit: never
    assert not _mapped.request_trim()


def test_a_forked_child_is_not_blocked_by_a_parents_trim():
    import multiprocessing as mp

    with _mapped._trim_lock, _mapped._lock:  # a parent's trim in progress when it forks
        ctx = mp.get_context("fork")
        with ctx.Pool(1) as pool:
            assert pool.apply_async(_trim_locks_free).get(timeout=60)


def _trim_locks_free():
    return not _mapped._trim_lock.locked() and not _mapped._lock.locked()


def test_a_range_whose_map_is_gone_is_never_trimmed(tmp_path, monkeypatch):
    import gc
    import weakref

    monkeypatch.setattr(_mapped, "_ranges", [])
    monkeypatch.setattr(_mapped, "_owners", {})
    monkeypatch.setattr(_mapped, "_trimmed_at", 0)
    _, mapped = _mapped_file(tmp_path, "x.npy")
    key = (mapped.__array_interface__["data"][0], mapped.__array_interface__["data"][0] + 4)
    _mapped.mark_random(key[0], 4, owner=mapped)
    alive = weakref.ref(mapped)
    seen = []
    real = _mapped.clean_file_areas

    def areas(ranges, *found):  # the trim holds the owners while it works on their ranges
        nonlocal mapped
        mapped = None
        gc.collect()
        seen.append(alive() is not None)
        return real(ranges, *found)

    monkeypatch.setattr(_mapped, "clean_file_areas", areas)
    _mapped.trim_resident(limit=1)
    assert seen == [True]
    gc.collect()
    assert alive() is None  # released after the trim
    # the map is closed now: its range may hold other memory, so it is forgotten, not trimmed
    assert _mapped._live_ranges() == ([], []) and _mapped._ranges == []
    assert _mapped.trim_resident(limit=1) == 0


def _range_of(a):
    lo = a.__array_interface__["data"][0]
    return lo, lo + a.nbytes


def _resident_bytes(ptr, nbytes):
    """Bytes of [ptr, ptr + nbytes) mapped into this process (``/proc/self/pagemap``)."""
    import struct

    first, last = ptr // 4096, (ptr + nbytes - 1) // 4096
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(first * 8)
        raw = f.read((last - first + 1) * 8)
    words = struct.unpack(f"{len(raw) // 8}Q", raw)
    return 4096 * sum(w >> 63 for w in words)


def _counted_walks(monkeypatch, maps, other):
    """Count the trims' smaps walks; fake RssFile as ``other["bytes"]`` plus the maps' real
    resident bytes (read without being counted)."""
    real = _mapped._smaps_areas
    walks = []
    monkeypatch.setattr(_mapped, "_smaps_areas", lambda: walks.append(1) or real())
    starts = [a.__array_interface__["data"][0] for a in maps]
    ranges = [(lo, lo + a.nbytes) for lo, a in zip(starts, maps)]

    def rss():
        return other["bytes"] + sum(r for _, _, r in _mapped.clean_file_areas(ranges, real()))

    monkeypatch.setattr(_mapped, "rss_file_bytes", rss)
    return walks, rss


def test_a_read_only_map_is_trimmed_without_walking_smaps_each_time(tmp_path, monkeypatch):
    mib = 1 << 20
    table = np.arange(8192 * 1024, dtype=np.float32).reshape(8192, 1024)  # 32 MB
    np.save(tmp_path / "x.npy", table)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    idle = np.load(tmp_path / "x.npy", mmap_mode="r")  # a second map of it, not read at first
    monkeypatch.setattr(_mapped, "_ranges", [])
    monkeypatch.setattr(_mapped, "_owners", {})
    monkeypatch.setattr(_mapped, "_trimmed_at", 0)
    for a in (idle, mapped):  # registered first, it must not take the room to keep
        _mapped.mark_random(a.__array_interface__["data"][0], a.nbytes, owner=a)
    key, idle_key = (_range_of(a) for a in (mapped, idle))
    other = {"bytes": 4 * mib}  # file memory outside the map
    walks, rss = _counted_walks(monkeypatch, [idle, mapped], other)
    limit = 16 * mib * 4 // 3  # keep level 16 MB: 12 MB of the map beside the other 4 MB
    # (the kernel may map the page cache's large folios whole, 2 MB at a time: the trim that
    # cuts into one unmaps all of it, so up to 2 MB less than the cut stays)

    def touch_and_trim():
        np.asarray(mapped).sum()
        assert rss() >= other["bytes"] + 32 * mib - 2 * 4096
        dropped = _mapped.trim_resident(limit=limit)
        assert dropped >= 32 * mib - (16 * mib - other["bytes"]) - 4096
        return rss() - other["bytes"]  # the maps' resident bytes

    assert 10 * mib - 4096 <= touch_and_trim() <= 12 * mib + 4096
    assert len(walks) == 1 and _mapped._walked[key] == (True, False)  # read-only, in use
    assert _mapped._walked[idle_key] == (True, True)  # read-only, nothing resident
    assert 4 * mib <= _mapped._other_file <= 4 * mib + 4096  # (+ the header page)
    for _ in range(2):  # later trims drop the same tail without walking
        assert 10 * mib - 4096 <= touch_and_trim() <= 12 * mib + 4096
        assert len(walks) == 1
    idle_lo = idle.__array_interface__["data"][0]
    np.asarray(idle[:1024]).sum()  # the idle map is read from (4 MB), unknown to the trims
    assert _resident_bytes(idle_lo, 4 * mib) >= 4 * mib - 4096
    touch_and_trim()
    assert _resident_bytes(idle_lo, idle.nbytes) <= 2 * 4096 and len(walks) == 1  # dropped
    other["bytes"] = 8 * mib  # more file memory elsewhere than the last walk saw
    trims = 0
    while len(walks) == 1:  # trims go on by the last walk's figure, WALK_EVERY of them
        np.asarray(mapped).sum()
        _mapped.trim_resident(limit=limit)
        trims += 1
    assert trims == _mapped.WALK_EVERY - 3 + 1  # (three were done above; then the walk)
    assert 8 * mib <= _mapped._other_file <= 8 * mib + 4096  # the walk learned it
    assert rss() <= 16 * mib + 4096  # and kept 8 MB of the map, not 12
    assert np.array_equal(mapped, table)


def test_a_copy_on_write_map_is_walked_at_every_trim(tmp_path, monkeypatch):
    table, mapped = _registered_resident_map(tmp_path, monkeypatch)
    walks, _ = _counted_walks(monkeypatch, [mapped], {"bytes": 0})
    for k in (1, 2, 3):
        np.asarray(mapped).sum()
        assert _mapped.trim_resident(limit=1) > 0 and len(walks) == k  # it may be written
    assert _mapped._walked and not any(ro for ro, _ in _mapped._walked.values())
    mapped[0, 0] = -5.0  # a written page: its area is never dropped
    assert _mapped.trim_resident(limit=1) == 0 and mapped[0, 0] == -5.0
    assert np.array_equal(mapped[1:], table[1:])
