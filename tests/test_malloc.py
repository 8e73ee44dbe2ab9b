"""tune_malloc: idempotent, and it can be turned off."""

import sys

import pytest

from gnnsys import _malloc


def test_tune_malloc_is_idempotent():
    first = _malloc.tune_malloc()
    assert _malloc.tune_malloc() == first
    if sys.platform.startswith("linux"):
        assert first  # glibc on the CI images


def test_opt_out(monkeypatch):
    monkeypatch.setattr(_malloc, "_done", False)
    monkeypatch.setenv("GNNSYS_MALLOC_TUNING", "0")
    assert _malloc.tune_malloc() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_thresholds_took_effect():
    import ctypes

    assert _malloc.tune_malloc()
    # A block between the default (128 KiB) and raised thresholds now comes from the heap: it
    # is not page aligned + 16 as an mmap'd chunk would be.
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    ptrs = [libc.malloc(4 << 20) for _ in range(4)]
    try:
        assert not all(p % 4096 == 16 for p in ptrs)
    finally:
        for p in ptrs:
            libc.free(p)
