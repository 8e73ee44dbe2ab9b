"""Register host memory with CUDA in place (page-locked and mapped), in chunks, refcounted.

Never ``Tensor.pin_memory()``: it copies the data into a new pinned buffer whose size is rounded
up to a power of two (up to twice the memory). ``cudaHostRegister`` page-locks the existing
pages instead; it is called in chunks well below the driver's per-call limits, with chunk
boundaries on page boundaries so that no page is registered twice. The range is registered
once per process however many UnifiedTensors share it (a registry keyed by address counts the
users), and the last user's finalizer synchronises the devices that read it (no kernel may still
be reading; only those devices, so no context is created on the others) before unregistering.
With the Portable flag one registration serves every GPU of the process; a tensor in shared
memory can be registered by several processes (one buffer for the node).

Memory the process may not write (a read-only file mapping, ``np.load(mmap_mode="r")``) can only
be registered with ``cudaHostRegisterReadOnly``, and a copy-on-write file mapping
(``mmap_mode="c"``, how datasets are loaded) registered for writing would have every page copied
into anonymous memory: both are registered read-only (found from ``/proc/self/maps``), and any
other range is retried read-only when the writable registration fails. The GPU only reads
feature tables, so read-only costs nothing; after a read-only registration of a copy-on-write
mapping, rows the CPU writes later are copied privately and the GPU keeps seeing the file's.

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
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

import torch

from gnnsys._checks import require_cuda

# cudaHostRegister flags.
HOST_REGISTER_PORTABLE = 1
HOST_REGISTER_MAPPED = 2
HOST_REGISTER_READ_ONLY = 8  # cudaHostRegisterReadOnly
_FLAGS_RW = HOST_REGISTER_PORTABLE | HOST_REGISTER_MAPPED
_FLAGS_RO = _FLAGS_RW | HOST_REGISTER_READ_ONLY
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


def _proc_maps() -> List[Tuple[int, int, str, int]]:
    """(start, end, permissions, inode) of every mapping of this process (Linux)."""
    out = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 5:
                    continue
                lo, hi = parts[0].split("-")
                out.append((int(lo, 16), int(hi, 16), parts[1], int(parts[4])))
    except (OSError, ValueError):  # pragma: no cover - not Linux
        pass
    return out


def read_only_reason(ptr: int, nbytes: int) -> Optional[str]:
    """Why [ptr, ptr + nbytes) must be registered read-only, or None.

    "read-only mapping" when a page of it may not be written; "copy-on-write file mapping" for
    a private file mapping (``np.load(mmap_mode="c")``): registering it for writing would copy
    every page.

    Example:
        >>> read_only_reason(torch.zeros(4).data_ptr(), 16) is None
        True
    """
    lo, hi = int(ptr), int(ptr) + max(int(nbytes), 1)
    for start, end, perms, inode in _proc_maps():
        if end <= lo or start >= hi:
            continue
        if perms[1:2] != "w":
            return "read-only mapping"
        if perms[3:4] == "p" and inode != 0:
            return "copy-on-write file mapping"
    return None


@dataclass
class Registration:
    """One registered host range: its chunks, its device address, and what keeps it alive.

    ``read_only``: registered with ``cudaHostRegisterReadOnly`` (devices may only read it).
    ``devices``: indices of the GPUs that read it (:meth:`used_on`), synchronised on release.
    """

    ptr: int
    nbytes: int
    chunks: List[Tuple[int, int]]
    device_ptr: int
    keepalive: Any = None
    users: int = 0
    read_only: bool = False
    devices: Set[int] = field(default_factory=set)

    def used_on(self, device: Any) -> None:
        """Record that kernels on ``device`` (a CUDA device or index) read this memory."""
        d = torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
        idx = d.index if d.index is not None else torch.cuda.current_device()
        self.devices.add(int(idx))


_registry: Dict[Tuple[int, int], Registration] = {}
# Reentrant: a finalizer (release) can run from garbage collection inside register().
_registry_lock = threading.RLock()


def register(
    ptr: int,
    nbytes: int,
    keepalive: Any = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    read_only: Optional[bool] = None,
) -> Registration:
    """Page-lock and map [ptr, ptr + nbytes) for every GPU of this process (refcounted).

    ``keepalive`` (e.g. the tensor's storage) is held until the last :func:`release`, so the
    memory cannot be freed while registered. ``read_only=None`` registers read-only where the
    range needs it (:func:`read_only_reason`) and retries a chunk read-only when the writable
    registration fails; True / False force the choice. Raises :class:`CudaError` when the
    driver refuses (after undoing the chunks already registered).

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
        if read_only is None:
            flags = _FLAGS_RO if read_only_reason(ptr, nbytes) is not None else _FLAGS_RW
        else:
            flags = _FLAGS_RO if read_only else _FLAGS_RW
        done: List[Tuple[int, int]] = []
        any_ro = False
        for p, n in chunk_ranges(ptr, nbytes, chunk_bytes):
            rc = _host_register(p, n, flags)
            tried = [(flags, rc)]
            if rc not in (0, _ERR_ALREADY_REGISTERED) and read_only is None and flags == _FLAGS_RW:
                rc = _host_register(p, n, _FLAGS_RO)  # e.g. a read-only page we did not spot
                tried.append((_FLAGS_RO, rc))
                if rc == 0:
                    flags = _FLAGS_RO  # the rest of the range is likely the same kind
            if rc != 0:
                for q, _ in done:
                    _host_unregister(q)
                hint = (
                    " (part of the range is already registered, e.g. by pin_memory() or another"
                    " library)"
                    if rc == _ERR_ALREADY_REGISTERED
                    else ""
                )
                how = "; ".join(f"flags {f:#x}: {_error_string(r)} ({r})" for f, r in tried)
                raise CudaError(f"cudaHostRegister(0x{p:x}, {n}) failed: {how}{hint}")
            any_ro = any_ro or flags == _FLAGS_RO
            done.append((p, n))
        dev_ptr = _contiguous_device_pointer(done) if done else int(ptr)
        reg = Registration(
            int(ptr), int(nbytes), done, dev_ptr, keepalive, users=1, read_only=any_ro
        )
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


def _synchronize(devices: Set[int]) -> None:
    """Synchronise the given GPUs (those that read a registration), and no other."""
    if not devices or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return
    for d in sorted(devices):
        try:
            torch.cuda.synchronize(d)
        except Exception:  # pragma: no cover - device lost / shutting down
            pass


def release(reg: Registration) -> None:
    """Drop one user of ``reg``; the last one synchronises the GPUs that read it, then
    unregisters.

    Example:
        >>> release(reg)  # doctest: +SKIP
    """
    with _registry_lock:
        reg.users -= 1
        if reg.users > 0:
            return
        _registry.pop((reg.ptr, reg.nbytes), None)
        _synchronize(reg.devices)  # kernels may still be reading these pages
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
