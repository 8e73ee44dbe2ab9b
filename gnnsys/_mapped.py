"""File maps read at random, and reading them with many faults in flight.

A table mapped from a file bigger than the page cache is advised ``MADV_RANDOM``
(``graph_io.advise_random``), which registers its address range here. A thread that touches a
page of it not in memory waits for the disk, not for a CPU, so the row gathers read such a
table from ``IO_THREADS`` threads (default 16, ``GNNSYS_IO_THREADS``) rather than one per core:
that many page faults are then in flight at once, and the disk (or the host's cache behind a
VM's disk) serves them in parallel. Measured on this project's VM: random 4 KB reads from one
thread 46k/s, from 8 threads 186k/s.

A stale range (its map since closed) is harmless: memory that reuses the address is then
gathered by more threads than needed, with the same result.

The pages of such a map that a process has touched stay mapped into it, so its resident set
(``VmRSS``, what ``/usr/bin/time`` reports as the peak) grows toward the whole table although
those pages are page cache the kernel may reclaim at any time: a papers100M-sized epoch showed
22-24 GB resident on a 24 GiB machine, 2 GB of it the process's own. ``trim_resident`` bounds
it: when the process's file-backed resident memory (``RssFile``) is over
``RESIDENT_LIMIT`` (``GNNSYS_MAPPED_RSS_LIMIT``: ``auto``, the default, for three quarters of
the machine's memory, or of a memory cgroup's limit when lower: ``machine_memory``; a size
such as ``12G``; ``0`` for no limit; a trim starts on a background thread from seven eighths
of it, ``request_trim``), the registered maps' pages beyond their leading bytes are unmapped
from the process (``MADV_DONTNEED``). They stay in the page cache: touching one again is a
minor fault, not a disk read. Only maps bigger than half the memory available when they are
advised are registered (``graph_io.advise_random``), and no trim starts before the process's
file memory passes seven eighths of the limit, so graphs that fit in memory never pay for it
(beyond one read of ``/proc/self/status`` after a gather from a registered map).

On by default (since session 48): tools that report or enforce memory by RSS (``sacct``'s
MaxRSS, ``/usr/bin/time``, RSS-based kill policies of job schedulers) count the touched pages
of a process's maps as its own, so without a bound a 28 GB table reads as a process that
outgrew a 24 GiB machine. It is not free: each trimmed page the gathers touch again costs a minor
fault, and more of the table may be read from disk again (whether mapped or not, a page of
a ``MADV_RANDOM`` area is not kept for its use: Linux ignores such an area's accessed bits
when it evicts, ``vma_has_recency``). Measured on papers with
``auto``: a cold epoch's peak 22.4 -> 20.7 GB and 288 -> 318 s; warm loader rounds 0.002-0.006
-> 0.008-0.016 major faults per row, 25-30 -> 13-22 batches/s (a limit of half the memory,
keeping no leading bytes, made the epoch 521 s). Session 39, with trims in the background
(``request_trim``): loader 39-45 batches/s with ``auto`` vs 52-61 without, an epoch 206 vs
169 s; session 40, after a walk ``WALK_EVERY`` trims of a read-only map without one: 37.5-45.4
vs 24.1-43.4 batches/s before (no limit 48-64), and four pairs of warm epochs 0.97-1.10x the
time of no limit (peak 19.0-19.3 GiB against 20.9-22.6). Session 45, a second pass over papers'
training nodes (3,000 batches, the cache as the first pass left it): 43-64 batches/s with
``auto`` vs 63-81 without; over 10 s of it ~90k minor faults a second with ``auto`` against 240
without, and 0-7.4k major ones a second against 0: re-mapping the trimmed pages is the steady
cost (``cpu-2core-vm_papers_rss_limit_faults_s45.jsonl``; advising each trimmed chunk
``MADV_NORMAL`` for its ``MADV_DONTNEED``, so that the zap marks young pages accessed, brought
more major faults, not fewer). Only clean file pages are dropped: a map area
holding pages the process wrote (copy-on-write copies, ``Anonymous`` in ``/proc/self/smaps``)
or not backed by a file (a stale range reused by other memory) is left alone, so no data is
ever discarded.
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

MIN_SLICE_ROWS = 256  # rows per thread below which a thread is not worth waking


def _io_threads() -> int:
    raw = os.environ.get("GNNSYS_IO_THREADS", "16")
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"GNNSYS_IO_THREADS must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"GNNSYS_IO_THREADS must be a positive integer, got {raw!r}")
    return value


IO_THREADS = _io_threads()


def _resident_limit() -> int:
    raw = os.environ.get("GNNSYS_MAPPED_RSS_LIMIT", "auto")
    if raw == "auto":
        return _mem_total_bytes() * 3 // 4
    if raw.strip() == "0":
        return 0
    from gnnsys.datasets.outofcore import parse_bytes

    try:
        return parse_bytes(raw)
    except ValueError:
        raise ValueError(
            f"GNNSYS_MAPPED_RSS_LIMIT must be a size such as '12G', 'auto' or '0', got {raw!r}"
        ) from None


MEMINFO = "/proc/meminfo"
PROC_CGROUP = "/proc/self/cgroup"
CGROUP_ROOT = "/sys/fs/cgroup"
_UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a huge page-rounded number
# (limit, usage, memory.stat's inactive file cache) per cgroup version
_V2_FILES = ("memory.max", "memory.current", "inactive_file")
_V1_FILES = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")


def _mem_total_bytes() -> int:
    return machine_memory()[0]


def machine_memory() -> Tuple[int, int]:
    """(total, available) bytes this process may use: ``/proc/meminfo``'s MemTotal and
    MemAvailable, each capped by the memory cgroup's limit and what is left under it when the
    process runs in a limited one (a container, a Slurm job): there the host's figures would
    say a 28 GB table fits while the cgroup holds 16 GB. 0 where unknown."""
    total = proc_bytes(MEMINFO, "MemTotal:")
    available = proc_bytes(MEMINFO, "MemAvailable:")
    limit, headroom = cgroup_memory()
    if limit:
        total = min(total, limit) if total else limit
        available = min(available, headroom) if available else headroom
    return total, available


def cgroup_memory() -> Tuple[int, int]:
    """(limit, headroom) in bytes: the smallest memory limit on this process's cgroup and its
    ancestors (v2 ``memory.max``, v1 ``memory.limit_in_bytes``), and the smallest headroom
    under any of them: a limit minus its cgroup's usage that cannot be reclaimed (usage less
    the inactive file cache, as ``docker stats`` counts it). (0, 0): no limit, or no cgroup
    information."""
    limits, headrooms = [], []
    for folder, v2 in _cgroup_folders():
        names = _V2_FILES if v2 else _V1_FILES
        limit = _read_int(os.path.join(folder, names[0]))
        if limit is None or limit >= _UNLIMITED:
            continue
        usage = _read_int(os.path.join(folder, names[1])) or 0
        inactive = proc_bytes(os.path.join(folder, "memory.stat"), names[2] + " ", unit=1)
        limits.append(limit)
        headrooms.append(max(0, limit - max(0, usage - inactive)))
    return (min(limits), min(headrooms)) if limits else (0, 0)


def _cgroup_folders() -> List[Tuple[str, bool]]:
    """This process's memory cgroup folder and its ancestors' up to the hierarchy's root, each
    with whether it is cgroup v2; those not under ``CGROUP_ROOT`` are skipped (a container
    that sees its own cgroup as the root finds its limit there)."""
    try:
        with open(PROC_CGROUP) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            base, path, v2 = CGROUP_ROOT, parts[2], True
            if not os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
                continue  # the v2 hierarchy holds no controllers here (v1 memory is used)
        elif "memory" in parts[1].split(","):
            base, path, v2 = os.path.join(CGROUP_ROOT, "memory"), parts[2], False
        else:
            continue
        folders = []
        rel = path.strip("/")
        while True:
            folder = os.path.join(base, rel) if rel else base
            if os.path.isdir(folder):
                folders.append((folder, v2))
            if not rel:
                break
            rel = os.path.dirname(rel)
        return folders
    return []


def _read_int(path: str) -> Optional[int]:
    """The integer in a one-line cgroup file; None for "max", a missing or unreadable file."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def proc_bytes(path: str, key: str, unit: int = 1024) -> int:
    """The ``key`` line's value of a /proc or cgroup file, times ``unit`` (the default for
    /proc's kB lines; 1 for a cgroup ``memory.stat``'s bytes), in bytes (0 where unavailable)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * unit
    except (OSError, ValueError, IndexError):
        pass
    return 0


RESIDENT_LIMIT = _resident_limit()

_lock = threading.Lock()
_ranges: List[Tuple[int, int]] = []
_pool: Optional[ThreadPoolExecutor] = None


def _after_fork_in_child() -> None:
    # Threads do not survive fork. A parent's trim thread does not exist in the child: locks
    # it held at the fork would stay held for ever there. Nor do the pool's threads: the child
    # makes its own pool, not relying on how a given Python revives an inherited executor
    # (3.11 starts new threads on submit).
    global _lock, _trim_lock, _pool
    _lock = threading.Lock()
    _trim_lock = threading.Lock()
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_owners: Dict[Tuple[int, int], weakref.ref[Any]] = {}  # range -> what keeps its map open


def mark_random(ptr: int, nbytes: int, owner: Any = None) -> None:
    """Register [ptr, ptr + nbytes) as a file map read at random. ``owner``: the array or
    tensor whose life keeps the map open. A trim (which may run on a background thread) holds
    the owners of the ranges it unmaps pages of, and skips a range whose owner is gone: its
    address range may hold other memory by then, which ``MADV_DONTNEED`` would discard.
    Without an owner the caller keeps the map open while it may be trimmed."""
    key = (ptr, ptr + nbytes)
    with _lock:
        if key not in _ranges:
            _ranges.append(key)
        _walked.pop(key, None)  # (perhaps another map at the same addresses: walk it again)
        if owner is not None:
            _owners[key] = weakref.ref(owner)
        else:
            _owners.pop(key, None)


def _live_ranges() -> Tuple[List[Tuple[int, int]], List[Any]]:
    """The registered ranges whose maps are open, with their owners (held by the caller for
    as long as it touches the ranges); ranges whose owner is gone are forgotten."""
    live, held = [], []
    with _lock:
        for key in list(_ranges):
            ref = _owners.get(key)
            obj = ref() if ref is not None else None
            if ref is not None and obj is None:
                _ranges.remove(key)
                del _owners[key]
                _walked.pop(key, None)
                continue
            live.append(key)
            if obj is not None:
                held.append(obj)
    return live, held


def rss_file_bytes() -> int:
    """This process's resident file-backed memory (``RssFile``), in bytes."""
    return proc_bytes("/proc/self/status", "RssFile:")


_trimmed_at = 0  # RssFile right after the last trim
_trim_lock = threading.Lock()  # one trim at a time: the others would repeat its work


def _soft_level(limit: int) -> int:
    """RssFile past which a trim starts in the background: seven eighths of the limit, so that
    it has ended (its smaps walk takes ~0.3-0.6 s with papers mapped, and the gathers go on
    meanwhile) before the process maps the limit itself."""
    return limit - limit // 8


def _keep_level(limit: int) -> int:
    """File memory a trim leaves mapped: three quarters of the limit."""
    return limit - limit // 4


def _over(rss: int, level: int, limit: int) -> bool:
    """Whether ``rss`` (an ``RssFile`` reading) is over ``level`` and has grown by an eighth of
    ``limit`` since the last trim (so that file memory this module does not own, such as a
    graph's mapped CSC, cannot make every call trim)."""
    return rss > level and rss - _trimmed_at >= limit // 8


def request_trim() -> bool:
    """After a gather from a registered map, with ``RESIDENT_LIMIT`` set: past seven eighths of
    it, start ``trim_resident`` on a background thread (unless one runs) and return at once;
    past the limit itself, trim on this thread or wait for the running trim, so that the limit
    holds. True if a trim was started or waited for.

    A trim reads ``/proc/self/smaps`` (for read-only maps, ``WALK_EVERY`` trims go without
    after each walk), whose page-table walk took ~0.35 s with papers' 28 GB table mapped: run
    inline at the limit, it stalled every gather thread that crossed it together (4 in the
    papers loader, each trimming the same pages again). Papers loader with
    ``auto``, 4 rotated rounds: 30.6-41.5 batches/s before, 39.2-45.0 after (no limit
    51.5-61.4; ``benchmarks/results/cpu-2core-vm_papers_rss_limit_s39.jsonl``)."""
    limit = RESIDENT_LIMIT
    if limit <= 0 or not _ranges:
        return False
    rss = rss_file_bytes()  # (once: this runs after every gather from a registered map)
    if _over(rss, limit, limit):
        trim_resident(limit, wait=True)
        return True
    if _trim_lock.locked() or not _over(rss, _soft_level(limit), limit):
        return False
    threading.Thread(target=trim_resident, name="gnnsys-trim", daemon=True).start()
    return True


def trim_resident(limit: Optional[int] = None, wait: bool = False) -> int:
    """Unmap registered maps' clean pages from this process (``MADV_DONTNEED``; the page cache
    keeps them) when its ``RssFile`` is over seven eighths of ``limit`` (default
    ``RESIDENT_LIMIT``; 0: never) and has grown by an eighth of it since the last trim. Each
    map's leading bytes stay mapped, as many as fit in three quarters of the limit beside the
    file memory the process holds otherwise: in a hot-first table those are the rows read most,
    whose pages would otherwise be faulted back in by the next batches. Returns the bytes
    unmapped (of address range). One trim runs at a time: while another runs, a call returns 0,
    or with ``wait`` waits for it and then trims if still needed. The gathers ask for trims
    through ``request_trim``."""
    limit = RESIDENT_LIMIT if limit is None else limit
    if limit <= 0 or not _ranges or not _over(rss_file_bytes(), _soft_level(limit), limit):
        return 0
    if not _trim_lock.acquire(blocking=wait):
        return 0  # another thread is trimming
    try:
        # (read again: a trim that ended while this one waited may have done the work)
        if not _over(rss_file_bytes(), _soft_level(limit), limit):
            return 0
        return _trim(limit)
    finally:
        _trim_lock.release()


# A trim reads /proc/self/smaps (a walk of every mapped page: ~9% of the papers loader's CPU
# with the limit on) only when it must: to learn which registered ranges lie in read-only file
# maps (no page of those can ever hold the process's own data, so they are always safe to drop)
# and how much file memory the process holds outside them. In between, up to WALK_EVERY trims
# use what the last walk learned: a range known read-only is trimmed without looking, and the
# other file memory is taken as the last walk measured it (more of it since makes a trim keep
# too much, so the next one comes sooner; the limit itself still holds). Not estimated from
# what a trim leaves resident: pages the gathers fault back in during the trim count there,
# and a probe run on papers saw the estimate climb 8.3 -> 12.2 GB in 6 trims (true: ~7 GB), the
# trims keeping less and less. Ranges that may be written (copy-on-write maps) are walked at
# every trim.
WALK_EVERY = 8
# range -> what the last walk found: (in read-only file maps, nothing of it resident)
_walked: Dict[Tuple[int, int], Tuple[bool, bool]] = {}
_other_file = -1  # file memory outside the registered ranges; -1: not yet learned
_IDLE = -2  # a range's resident bytes in a trim without a walk: none at the last walk
_trims_without_walk = 0


def _trim(limit: int) -> int:
    global _trimmed_at, _other_file, _trims_without_walk
    import mmap

    ranges, held = _live_ranges()  # (``held``: no map of these closes during the trim)
    page = mmap.PAGESIZE
    if (
        _other_file >= 0
        and _trims_without_walk < WALK_EVERY
        and all(_walked.get(r, (False, False))[0] for r in ranges)
    ):
        _trims_without_walk += 1
        areas = []
        for r in ranges:
            lo, hi = _pages_within(*r)
            if lo < hi:  # (resident bytes not known: -1; _IDLE: none at the last walk)
                areas.append((lo, hi, _IDLE if _walked[r][1] else -1))
        other = _other_file
    else:
        _trims_without_walk = 0
        found = _smaps_areas() or []
        areas = clean_file_areas(ranges, found)
        for r in ranges:
            # (a read-only map cannot hold pages the process wrote: safe to drop unlooked)
            read_only = _file_pages_only(r[0], r[1] - r[0], found, read_only=True)
            _walked[r] = (read_only, not any(a for lo, _, a in areas if r[0] <= lo < r[1]))
        rss = rss_file_bytes()  # (after the walk: what grew during it counts as other memory)
        other = rss - sum(resident for _, _, resident in areas)
    keep = max(0, _keep_level(limit) - other)
    done = 0
    for lo, hi, resident in areas:  # in the order the maps were registered
        if resident == 0:  # nothing mapped (e.g. a second map of a file, not read from)
            continue
        # (a map idle at the last walk keeps nothing: if it is read from since, its pages go
        # rather than take the room of the maps that were in use)
        room = 0 if resident == _IDLE else keep
        cut = min(hi, lo + room - room % page)
        keep -= cut - lo
        if cut < hi and madvise_range(cut, hi - cut, mmap.MADV_DONTNEED):
            done += hi - cut
    _trimmed_at = rss_file_bytes()
    _other_file = other
    del held
    return done


def _pages_within(lo: int, hi: int, page: int = 0) -> Tuple[int, int]:
    """The whole pages of ``page`` bytes (0: the system's page size) inside [lo, hi) (lo
    rounded up, hi down)."""
    import mmap

    page = page or mmap.PAGESIZE
    return lo + (-lo % page), hi - hi % page


def madvise_range(addr: int, length: int, flag: int) -> bool:
    """``madvise(addr, length, flag)`` (``flag`` an ``mmap.MADV_*`` value; ``addr`` page
    aligned); whether the kernel accepted it."""
    import ctypes

    return _libc().madvise(ctypes.c_void_p(addr), ctypes.c_size_t(length), flag) == 0


@functools.cache
def _libc() -> Any:
    # opened once: graph_io.madvise calls madvise_range per MiB (a GiB is 1024 calls)
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def clean_file_areas(
    ranges: List[Tuple[int, int]],
    found: Optional[List[Tuple[int, int, int, bool, int, bool]]] = None,
) -> List[Tuple[int, int, int]]:
    """The parts of ``ranges`` (address intervals) that lie in file-backed map areas holding
    no page this process wrote (``/proc/self/smaps``: a file path and ``Anonymous: 0 kB``),
    page-aligned, each with its area's resident bytes (``Rss``): the areas ``MADV_DONTNEED``
    can drop without losing data. ``found``: ``_smaps_areas()`` already read."""
    found = _smaps_areas() if found is None else found
    if not found:
        return []
    areas = [(lo, hi, rss) for lo, hi, rss, is_file, anon, _ in found if is_file and anon == 0]
    out = []
    for r_lo, r_hi in ranges:
        for a_lo, a_hi, a_rss in areas:
            lo, hi = _pages_within(max(r_lo, a_lo), min(r_hi, a_hi))
            if lo < hi:
                out.append((lo, hi, a_rss))
    return out


def _smaps_areas() -> Optional[List[Tuple[int, int, int, bool, int, bool]]]:
    """This process's map areas from ``/proc/self/smaps``: (start, end, resident bytes,
    file-backed, bytes written by this process (``Anonymous``), writable); None if
    unreadable."""
    areas: List[Tuple[int, int, int, bool, int, bool]] = []
    try:
        with open("/proc/self/smaps") as f:
            lo = hi = resident = -1
            is_file = writable = False
            for line in f:
                head = line.split(None, 5)
                if "-" in head[0] and len(head) >= 5:  # "start-end perms offset dev inode path"
                    a, b = head[0].split("-")
                    lo, hi = int(a, 16), int(b, 16)
                    is_file = len(head) == 6 and head[5].startswith("/") and head[4] != "0"
                    writable = head[1][1:2] == "w"
                elif head[0] == "Rss:":
                    resident = int(head[1]) * 1024
                elif head[0] == "Anonymous:":
                    areas.append((lo, hi, resident, is_file, int(head[1]) * 1024, writable))
    except (OSError, ValueError, IndexError):
        return None
    return areas


def unwritten_file_map(ptr: int, nbytes: int) -> bool:
    """Whether [ptr, ptr + nbytes) lies wholly in file-backed map areas in which this process
    has written no page: its bytes are then the file's (a copy-on-write map that was written
    to, or memory that is not a file map at all, gives False)."""
    return _file_pages_only(ptr, nbytes, _smaps_areas(), read_only=False)


def _file_pages_only(ptr: int, nbytes: int, found: Optional[List[Any]], read_only: bool) -> bool:
    # every byte in a file-backed area of ``found`` (``_smaps_areas()``) holding no written
    # page; with ``read_only`` also one the process cannot write (no ``w`` permission), whose
    # pages are then the file's for as long as the map is open
    if not found or nbytes <= 0:
        return False
    covered = 0
    for lo, hi, _, is_file, anon, writable in found:
        a, b = max(lo, ptr), min(hi, ptr + nbytes)
        if a < b:
            if not is_file or anon or (read_only and writable):
                return False
            covered += b - a
    return covered == nbytes


def reads_at_random(a: Any) -> bool:
    """Whether ``a``'s first byte lies in a registered map (``a`` a numpy array or a CPU
    tensor; anything else, a GPU tensor included, is not)."""
    if not _ranges:
        return False
    if isinstance(a, np.ndarray):
        ptr = a.__array_interface__["data"][0]
    elif callable(getattr(a, "data_ptr", None)) and not getattr(a, "is_cuda", True):
        ptr = a.data_ptr()
    else:
        return False
    return any(lo <= ptr < hi for lo, hi in _ranges)


def run_sliced(fn: Callable[[int, int], Any], n: int) -> None:
    """``fn(lo, hi)`` over consecutive slices of [0, n), on up to ``IO_THREADS`` threads at
    once; returns when all are done (re-raising the first error). ``fn`` must release the GIL
    (a nogil numba kernel) and write disjoint outputs per slice."""
    global _pool
    parts = max(1, min(IO_THREADS, n // MIN_SLICE_ROWS))
    if parts == 1:
        fn(0, n)
        return
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="gnnsys-io")
        pool = _pool
    cuts = np.linspace(0, n, parts + 1).astype(np.int64)
    futures = [pool.submit(fn, int(cuts[k]), int(cuts[k + 1])) for k in range(parts)]
    for f in futures:
        f.result()
