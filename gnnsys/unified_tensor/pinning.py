"""Register host memory with CUDA in place (page-locked and mapped), in chunks, refcounted.

Never ``Tensor.pin_memory()``: it copies the data into a new pinned buffer whose size is rounded
up to a power of two (up to twice the memory). ``cudaHostRegister`` page-locks the existing
pages instead; it is called in chunks well below the driver's per-call limits, with chunk
boundaries on page boundaries so that no page is registered twice. The range is registered
once per process however many UnifiedTensors share it (a registry keyed by address counts the
users), and the last user's finalizer synchronises the devices (no kernel may still be reading)
before unregistering. With the Portable flag one registration serves every GPU of the process;
a tensor in shared memory can be registered by several processes (one buffer for the node).

The CUDA runtime is reached through ctypes on the ``libcudart`` that torch already loaded (so
it is the same runtime instance), with ``torch.cuda.cudart()`` as the fallback for
register/unregister.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch

from gnnsys._checks import require_cuda

# cudaHostRegister flags.
HOST_REGISTER_PORTABLE = 1
HOST_REGISTER_MAPPED = 2
# cudaErrorHostMemoryAlreadyRegistered
_ERR_ALREADY_REGISTERED = 712

# Bytes per cudaHostRegister call: far below any driver limit, and large enough that a
# 100 GB table takes a few hundred calls.
CHUNK_BYTES = 256 << 20
PAGE_BYTES = mmap.PAGESIZE


class CudaError(RuntimeError):
    """A CUDA runtime call failed; the message names the call and the error code."""


_lib_lock = threading.Lock()
_cudart_lib: Optional[ctypes.CDLL] = None
_cudart_searched = False


def _loaded_cudart_paths() -> List[str]:
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.rstrip("\n").split(" ")[-1]
                if "libcudart" in os.path.basename(p) and p not in paths:
                    paths.append(p)
    except OSError:  # pragma: no cover - not Linux
        pass
    return paths


def _candidate_cudart_paths() -> List[str]:
    out = _loaded_cudart_paths()
    torch_lib = os.path.join(os.path.dirname(torch.__file__), "lib")
    site = os.path.dirname(os.path.dirname(torch.__file__))
    dirs = [torch_lib]
    for sub in ("cuda_runtime", "cu13", "cu12"):
        dirs.append(os.path.join(site, "nvidia", sub, "lib"))
    for d in dirs:
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                if name.startswith("libcudart.so"):
                    out.append(os.path.join(d, name))
    out += ["libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0"]
    return out


def cudart() -> Optional[ctypes.CDLL]:
    """The process's CUDA runtime library through ctypes, or None when it cannot be found.

    Example:
        >>> lib = cudart()  # None on a machine without CUDA
    """
    global _cudart_lib, _cudart_searched
    with _lib_lock:
        if _cudart_searched:
            return _cudart_lib
        _cudart_searched = True
        if torch.version.cuda is None:
            return None
        for path in _candidate_cudart_paths():
            try:
                lib = ctypes.CDLL(path)
                lib.cudaHostRegister.restype = ctypes.c_int
                lib.cudaHostRegister.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint]
                lib.cudaHostUnregister.restype = ctypes.c_int
                lib.cudaHostUnregister.argtypes = [ctypes.c_void_p]
                lib.cudaHostGetDevicePointer.restype = ctypes.c_int
                lib.cudaHostGetDevicePointer.argtypes = [
                    ctypes.POINTER(ctypes.c_void_p),
                    ctypes.c_void_p,
                    ctypes.c_uint,
                ]
                lib.cudaGetLastError.restype = ctypes.c_int
                lib.cudaGetErrorString.restype = ctypes.c_char_p
                lib.cudaGetErrorString.argtypes = [ctypes.c_int]
            except (OSError, AttributeError):
                continue
            _cudart_lib = lib
            break
        return _cudart_lib


def _error_string(code: int) -> str:
    lib = cudart()
    if lib is not None:
        try:
            return lib.cudaGetErrorString(int(code)).decode()
        except Exception:  # pragma: no cover - defensive
            pass
    return f"cudaError {code}"


def _host_register(ptr: int, size: int, flags: int) -> int:
    lib = cudart()
    if lib is not None:
        rc = int(lib.cudaHostRegister(ctypes.c_void_p(ptr), ctypes.c_size_t(size), flags))
        if rc != 0:
            lib.cudaGetLastError()  # clear it, or torch's next launch check reports it
        return rc
    return int(torch.cuda.cudart().cudaHostRegister(ptr, size, flags))


def _host_unregister(ptr: int) -> int:
    lib = cudart()
    if lib is not None:
        rc = int(lib.cudaHostUnregister(ctypes.c_void_p(ptr)))
        if rc != 0:
            lib.cudaGetLastError()
        return rc
    return int(torch.cuda.cudart().cudaHostUnregister(ptr))


def host_device_pointer(ptr: int) -> int:
    """Device address of registered host memory (cudaHostGetDevicePointer).

    On unified-addressing systems (every 64-bit Linux GPU since Fermi) this equals ``ptr``;
    without the ctypes runtime we rely on that.

    Example:
        >>> dev_ptr = host_device_pointer(host_ptr)  # doctest: +SKIP
    """
    lib = cudart()
    if lib is None:
        return int(ptr)
    out = ctypes.c_void_p()
    rc = int(lib.cudaHostGetDevicePointer(ctypes.byref(out), ctypes.c_void_p(ptr), 0))
    if rc != 0:
        lib.cudaGetLastError()
        raise CudaError(f"cudaHostGetDevicePointer(0x{ptr:x}) failed: {_error_string(rc)} ({rc})")
    return int(out.value or 0)


def chunk_ranges(ptr: int, nbytes: int, chunk_bytes: int = CHUNK_BYTES) -> List[Tuple[int, int]]:
    """Split [ptr, ptr + nbytes) at multiples of ``chunk_bytes`` (a multiple of the page size).

    Boundaries fall on absolute page-aligned addresses, so adjacent chunks never share a page.

    Example:
        >>> chunk_ranges(4096 * 3 + 10, 4096 * 2, chunk_bytes=4096)
        [(12298, 4086), (16384, 4096), (20480, 10)]
    """
    if chunk_bytes <= 0 or chunk_bytes % PAGE_BYTES:
        raise ValueError(
            f"chunk_bytes must be a positive multiple of {PAGE_BYTES}, got {chunk_bytes}"
        )
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes}")
    out = []
    pos, end = int(ptr), int(ptr) + int(nbytes)
    while pos < end:
        nxt = min(end, (pos // chunk_bytes + 1) * chunk_bytes)
        out.append((pos, nxt - pos))
        pos = nxt
    return out


@dataclass
class Registration:
    """One registered host range: its chunks, its device address, and what keeps it alive."""

    ptr: int
    nbytes: int
    chunks: List[Tuple[int, int]]
    device_ptr: int
    keepalive: Any = None
    users: int = 0


_registry: Dict[Tuple[int, int], Registration] = {}
# Reentrant: a finalizer (release) can run from garbage collection inside register().
_registry_lock = threading.RLock()


def register(
    ptr: int, nbytes: int, keepalive: Any = None, *, chunk_bytes: int = CHUNK_BYTES
) -> Registration:
    """Page-lock and map [ptr, ptr + nbytes) for every GPU of this process (refcounted).

    ``keepalive`` (e.g. the tensor's storage) is held until the last :func:`release`, so the
    memory cannot be freed while registered. Raises :class:`CudaError` when the driver refuses
    (after undoing the chunks already registered).

    Example:
        >>> t = torch.zeros(1 << 20)
        >>> reg = register(t.data_ptr(), t.nbytes, t)  # doctest: +SKIP
        >>> release(reg)  # doctest: +SKIP
    """
    require_cuda("pinning.register()")
    key = (int(ptr), int(nbytes))
    with _registry_lock:
        reg = _registry.get(key)
        if reg is not None:
            reg.users += 1
            return reg
        done: List[Tuple[int, int]] = []
        for p, n in chunk_ranges(ptr, nbytes, chunk_bytes):
            rc = _host_register(p, n, HOST_REGISTER_PORTABLE | HOST_REGISTER_MAPPED)
            if rc != 0:
                for q, _ in done:
                    _host_unregister(q)
                hint = (
                    " (part of the range is already registered, e.g. by pin_memory() or another"
                    " library)"
                    if rc == _ERR_ALREADY_REGISTERED
                    else ""
                )
                raise CudaError(
                    f"cudaHostRegister(0x{p:x}, {n}) failed: {_error_string(rc)} ({rc}){hint}"
                )
            done.append((p, n))
        dev_ptr = _contiguous_device_pointer(done) if done else int(ptr)
        reg = Registration(int(ptr), int(nbytes), done, dev_ptr, keepalive, users=1)
        _registry[key] = reg
        return reg


def _contiguous_device_pointer(chunks: List[Tuple[int, int]]) -> int:
    base_host = chunks[0][0]
    base_dev = host_device_pointer(base_host)
    for p, _ in chunks[1:]:
        if host_device_pointer(p) != base_dev + (p - base_host):
            for q, _ in chunks:
                _host_unregister(q)
            raise CudaError(
                "registered chunks are not contiguous in the device address space "
                "(no unified addressing): cannot serve one zero-copy view"
            )
    return base_dev


def _synchronize_all() -> None:
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return
    for d in range(torch.cuda.device_count()):
        try:
            torch.cuda.synchronize(d)
        except Exception:  # pragma: no cover - device lost / shutting down
            pass


def release(reg: Registration) -> None:
    """Drop one user of ``reg``; the last one synchronises every GPU, then unregisters.

    Example:
        >>> release(reg)  # doctest: +SKIP
    """
    with _registry_lock:
        reg.users -= 1
        if reg.users > 0:
            return
        _registry.pop((reg.ptr, reg.nbytes), None)
        _synchronize_all()  # kernels may still be reading these pages
        failed = []
        for p, _ in reg.chunks:
            try:
                rc = _host_unregister(p)
            except Exception:  # pragma: no cover - runtime torn down at exit
                rc = -1
            if rc != 0:
                failed.append((p, rc))
        reg.chunks = []
        reg.keepalive = None
    if failed:  # pragma: no cover - depends on the driver
        warnings.warn(
            f"cudaHostUnregister failed for {len(failed)} chunk(s): {failed[:3]}", stacklevel=2
        )


def is_registered(ptr: int, nbytes: int) -> bool:
    """True when exactly this range is registered through :func:`register` in this process."""
    with _registry_lock:
        return (int(ptr), int(nbytes)) in _registry
