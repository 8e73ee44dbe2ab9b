"""Numba helpers shared by the CPU kernels: cache-line prefetch hints and serial twins.

* ``prefetch(arr, i)`` / ``prefetch2d(arr, r, j)``: ``llvm.prefetch`` of the element's cache
  line. A hint only: it never faults, but the kernels using it still validate their ids first
  (no numba kernel here bounds-checks).
* ``serial_twin(kernel, name)``: the same kernel source compiled without ``parallel``, for small
  work or a one-thread budget, where waking the thread pool costs more than the work.
"""

from __future__ import annotations

import types as _pytypes

from llvmlite import ir
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic

# llvm.prefetch locality: 3 = keep in every cache level (re-read soon), 0 = streaming (read once)
_KEEP, _STREAM = 3, 0


def _prefetch_codegen(locality: int):
    """Codegen of ``llvm.prefetch`` (read, data cache) of ``args[0][args[1:]]``."""

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        a = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, a, list(args[1:]), wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(locality), i32(1)])
        return context.get_dummy_value()

    return codegen


@intrinsic
def prefetch(typingctx, arr, idx):
    """Hint the CPU to load ``arr[idx]`` into every cache level (latency-bound index loops)."""
    return types.void(arr, idx), _prefetch_codegen(_KEEP)


@intrinsic
def prefetch2d(typingctx, arr, r, j):
    """Hint the CPU to fetch the line of ``arr[r, j]`` without keeping it (rows copied once)."""
    return types.void(arr, r, j), _prefetch_codegen(_STREAM)


def serial_twin(kernel, name: str):
    """The same kernel source compiled without ``parallel`` (``prange`` runs as ``range``).

    A parallel region costs a thread-pool wake-up and a barrier: milliseconds when other
    processes keep the cores busy, which dwarfs small batches. Callers pick the twin for small
    work or a one-thread budget; results are identical either way.

    Example:
        >>> copy_rows_serial = serial_twin(copy_rows_parallel, "copy_rows_serial")
    """
    py = kernel.py_func
    fn = _pytypes.FunctionType(py.__code__, py.__globals__, name, py.__defaults__, py.__closure__)
    fn.__qualname__ = name  # its own cache entry
    return njit(nogil=True, cache=True)(fn)
