"""gnnsys._hugepages: huge pages for big anonymous tables, never for file maps."""

import os
import platform
import re

import numpy as np
import pytest
import torch

from gnnsys import _hugepages
from gnnsys.graph import Graph
from gnnsys.loaders import Loader, NeighborSampler
from gnnsys.unified_tensor import unified

linux = pytest.mark.skipif(not _hugepages.enabled(), reason="huge-page advice is Linux only")


def _anon_huge_kb(lo: int, hi: int) -> int:
    """AnonHugePages of the mappings overlapping [lo, hi), in kB."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
            if m:
                inside = int(m.group(1), 16) < hi and int(m.group(2), 16) > lo
            elif inside and line.startswith("AnonHugePages:"):
                total += int(line.split()[1])
    return total


def _collapse_supported() -> bool:
    """MADV_COLLAPSE exists from Linux 6.1; THP must not be off."""
    try:
        major, minor = (int(x) for x in platform.release().split(".")[:2])
        mode = open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except (OSError, ValueError):
        return False
    return (major, minor) >= (6, 1) and "[never]" not in mode


def test_host_span_of_arrays_tensors_and_unified_tables():
    a = np.zeros((100, 8), np.float32)
    assert _hugepages.host_span(a) == (a.ctypes.data, a.nbytes)
    t = torch.zeros(100, 8)
    assert _hugepages.host_span(t) == (t.data_ptr(), 3200)
    assert _hugepages.host_span(t.t()) is None  # not contiguous
    assert _hugepages.host_span(t.to_sparse()) is None
    assert _hugepages.host_span([1, 2]) is None
    u = unified(t)
    assert _hugepages.host_span(u)[1] == 3200


def test_aligned_interior_is_the_whole_huge_pages_inside():
    huge = _hugepages.HUGE
    assert _hugepages.aligned_interior(huge - 1, 3 * huge) == (huge, 3 * huge)
    assert _hugepages.aligned_interior(1, huge) == (huge, huge)  # none inside


@linux
def test_a_big_torch_table_is_collapsed_once_and_keeps_its_values(monkeypatch):
    monkeypatch.setenv("GNNSYS_HUGEPAGES", "1")
    t = torch.randn(40 << 20 >> 2)  # 40 MB from torch: 4 KiB pages
    before = t.clone()
    assert _hugepages.advise_huge(t, wait=True)
    assert not _hugepages.advise_huge(t, wait=True)  # advised once
    assert torch.equal(t, before)
    if _collapse_supported():
        lo, hi = _hugepages.aligned_interior(*_hugepages.host_span(t))
        assert _anon_huge_kb(lo, hi) > 0  # (the kernel may not find room for every page)


@linux
def test_small_tables_file_maps_and_the_switch_are_left_alone(monkeypatch, tmp_path):
    assert not _hugepages.advise_huge(torch.zeros(1000), wait=True)  # under MIN_BYTES
    path = tmp_path / "x.npy"
    np.save(path, np.zeros(40 << 20 >> 3))
    mapped = np.load(path, mmap_mode="r")
    assert not _hugepages.advise_huge(mapped, wait=True)  # a file's pages: the page cache's
    monkeypatch.setenv("GNNSYS_HUGEPAGES", "0")
    assert not _hugepages.advise_huge(torch.zeros(40 << 20 >> 2), wait=True)


@linux
def test_the_loader_advises_its_feature_tables(monkeypatch):
    monkeypatch.setattr(_hugepages, "MIN_BYTES", 1 << 20)
    monkeypatch.setenv("GNNSYS_HUGEPAGES", "1")
    n = 3000
    g = Graph.from_edge_index(
        torch.randint(0, n, (2, 20000), generator=torch.Generator().manual_seed(0)), n
    )
    x = torch.randn(n, 1024)  # 12 MB: whole 2 MiB pages inside wherever it starts
    Loader(NeighborSampler(g, [3]), torch.arange(100), batch_size=50, features={"x": x})
    lo, hi = _hugepages.aligned_interior(*_hugepages.host_span(x))
    ref = _hugepages._advised.get((lo, hi))
    assert ref is not None and ref() is x


def test_enabled_follows_the_platform_and_the_switch(monkeypatch):
    monkeypatch.setenv("GNNSYS_HUGEPAGES", "0")
    assert not _hugepages.enabled()
    monkeypatch.delenv("GNNSYS_HUGEPAGES")
    assert _hugepages.enabled() == (os.uname().sysname == "Linux")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_while_the_lock_is_held_can_still_advise():
    with _hugepages._lock:  # (as if another thread were advising at the fork)
        pid = os.fork()
        if pid == 0:  # the child: its lock is a fresh one
            ok = _hugepages._lock.acquire(timeout=5)
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
