"""Numba helpers shared by the CPU kernels: prefetch hints, serial twins, a pool for serial kernels.

* ``prefetch(arr, i)`` / ``prefetch2d(arr, r, j)``: ``llvm.prefetch`` of the element's cache
  line. A hint only: it never faults, but the kernels using it still validate their ids first
  (no numba kernel here bounds-checks).
* ``int32_bits_as_float32(bits)``: a 32-bit integer's bits read as a float32 (float16
  widening without a table).
* ``serial_twin(kernel, name)``: the same kernel source compiled without ``parallel``, for small
  work or a one-thread budget, where waking the thread pool costs more than the work.
* ``variant(kernel, name, parallel, **constants)``: the same kernel source with module flags
  set to constants, so numba prunes (and never compiles) the modes a caller does not use.
* ``PRANGE_ONLY``: numba parallel options that run only the explicit ``prange`` loops in
  parallel (``parallel=PRANGE_ONLY``), for kernels whose parallelism is all written out.
* ``run_items(kernel, items, *args, threads=...)``: a serial kernel over ranges of independent
  items on a small thread pool, instead of ``parallel=True``: a parallel kernel takes several
  times longer to compile (the first call of a fresh install), and on a busy machine its
  barriers wait for threads that are not running.
"""

from __future__ import annotations

import itertools
import threading
import types as _pytypes
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numba
from llvmlite import ir
from numba import njit
from numba.core import cgutils, types
from numba.core.cpu_options import ParallelOptions
from numba.extending import intrinsic


def start_pool_keeping_torch_threads() -> None:
    """Start numba's thread pool (once a process) and leave torch's intra-op thread count as it
    was.

    Started inside a first parallel kernel call, numba's OpenMP threading layer left the
    OpenMP thread count that torch reads its own from at NUMBA_NUM_THREADS: a
    ``torch.set_num_threads(1)``, or ``OMP_NUM_THREADS=1`` (what torchrun sets for several
    processes a machine), was undone by gnnsys's first parallel kernel, and processes sharing
    the cores then each ran torch at one thread per core. Started here, before any kernel
    runs, it does not (and should it, the count is put back). Measured: the same model test in
    two processes on 2 cores, 218 s each at 2 torch threads, 42 s at 1. Called when this
    module is imported (every module with numba kernels imports it).
    """
    import torch

    before = torch.get_num_threads()
    try:
        numba.get_num_threads()  # numba starts its pool on first use
    except (ValueError, RuntimeError, ImportError, OSError):
        return  # no threading layer loads (NUMBA_THREADING_LAYER): numba says so when used
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)


start_pool_keeping_torch_threads()

# ``parallel=True`` also turns every array expression and ``np.zeros``/``np.full``/``copy`` into
# a parallel loop: a parallel region (thread wake-up and barrier) per small allocation, 19 of
# them in the homogeneous sampling kernel, most over a handful of elements, and a quarter of
# its compile time (benchmarks/parallel_kernels.py, session 30: 11.7 -> 8.6 s, typed 12.9 ->
# 9.8 s). Kernels that write their parallelism out as ``prange`` loops take these options
# instead: prange loops (and their reductions) only. A ParallelOptions object, not a dict:
# numba pops a dict's keys while reading it, so a dispatcher's second signature would compile
# with every option back on.
PRANGE_ONLY = ParallelOptions(
    dict(prange=True, reduction=True, comprehension=False, inplace_binop=False, setitem=False,
         numpy=False, stencil=False, fusion=False)
)  # fmt: skip

# llvm.prefetch locality: 3 = keep in every cache level (re-read soon), 0 = streaming (read once)
_KEEP, _STREAM = 3, 0


def _emit_prefetch(builder, ptr, write: int, locality: int) -> None:
    """Emit ``llvm.prefetch`` (data cache) of ``ptr``; ``write`` 0 read / 1 write."""
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
    builder.call(fn, [builder.bitcast(ptr, i8p), i32(write), i32(locality), i32(1)])


def _prefetch_codegen(locality: int):
    """Codegen of ``llvm.prefetch`` (read, data cache) of ``args[0][args[1:]]``."""

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        a = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, a, list(args[1:]), wraparound=False)
        _emit_prefetch(builder, ptr, 0, locality)
        return context.get_dummy_value()

    return codegen


@intrinsic
def prefetch(typingctx, arr, idx):
    """Hint the CPU to load ``arr[idx]`` into every cache level (latency-bound index loops)."""
    return types.void(arr, idx), _prefetch_codegen(_KEEP)


def _row_prefetch_codegen(write: int):
    """Codegen of ``llvm.prefetch`` (``write``: 0 read, 1 write; every cache level) of the first
    line of row ``args[1]`` of the array ``args[0]`` (any dimensions, any integer row)."""

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        a = context.make_array(aryty)(context, builder, args[0])
        row = context.cast(builder, args[1], signature.args[1], types.intp)
        zero = context.get_constant(types.intp, 0)
        idx = [row] + [zero] * (aryty.ndim - 1)
        ptr = cgutils.get_item_pointer(context, builder, aryty, a, idx, wraparound=False)
        _emit_prefetch(builder, ptr, write, _KEEP)
        return context.get_dummy_value()

    return codegen


@intrinsic
def prefetch_row(typingctx, arr, r):
    """Hint the CPU to load the first line of row ``r`` of ``arr`` (any dimensions, any integer
    ``r``) into every cache level: rows gathered at random and read again (sparse ops)."""
    return types.void(arr, r), _row_prefetch_codegen(0)


@intrinsic
def prefetch_row_write(typingctx, arr, r):
    """``prefetch_row`` for a row about to be written (the line arrives writable, so the store
    that follows does not wait on its read-for-ownership)."""
    return types.void(arr, r), _row_prefetch_codegen(1)


@intrinsic
def prefetch2d(typingctx, arr, r, j):
    """Hint the CPU to fetch the line of ``arr[r, j]`` without keeping it (rows copied once)."""
    return types.void(arr, r, j), _prefetch_codegen(_STREAM)


@intrinsic
def int32_bits_as_float32(typingctx, bits):
    """The float32 whose bit pattern is the 32-bit integer ``bits`` (a register bitcast, which
    LLVM vectorises; numba has no scalar reinterpretation of its own)."""
    if not isinstance(bits, types.Integer) or bits.bitwidth != 32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(bits), codegen


def parallel_pays(work: int, minimum: int) -> bool:
    """Whether ``work`` (in the caller's unit: edges, bytes) is worth a parallel region: at
    least ``minimum`` of it, and more than one numba thread in this thread's budget (with one,
    the serial twin skips the region's dispatch)."""
    return work >= minimum and numba.get_num_threads() > 1


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


_VARIANTS: Dict[Tuple[Any, ...], Any] = {}
_VARIANTS_LOCK = threading.Lock()


def mode_tag(names: Sequence[str], flags: Sequence[bool]) -> str:
    """The part of a variant's cache name that says which modes it keeps: the names of those
    switched on, joined by "_", or "uniform" for none.

    Example:
        >>> mode_tag(("weighted", "labor"), (True, False))
        'weighted'
    """
    return "_".join(m for m, on in zip(names, flags) if on) or "uniform"


def variant(kernel, name: str, parallel: bool, **constants: Any):
    """The kernel's source compiled with some of its module globals set to ``constants``.

    numba reads globals as compile-time constants and prunes an ``if FLAG and ...:`` branch on
    a False one before typing, so the callees of that branch are never compiled: a kernel with
    rarely used modes keeps one source while each caller compiles (lazily, on its first call)
    only the modes it uses. ``name`` must be unique per set of constants: it names the on-disk
    cache entry (numba's cache key does not see globals). The same arguments give the same
    dispatcher (made once, thread-safe), so callers may ask for a variant on every call.
    ``parallel``: compiled with ``PRANGE_ONLY`` (the kernel's prange loops run in parallel).

    Example:
        >>> uniform = variant(sample_hops, "sample_hops_uniform", True, _WITH_LABOR=False)
    """
    py = kernel.py_func
    key = (py, name, bool(parallel), tuple(sorted(constants.items())))
    with _VARIANTS_LOCK:
        made = _VARIANTS.get(key)
        if made is not None:
            return made
        unknown = [k for k in constants if k not in py.__globals__]
        if unknown:
            raise KeyError(f"{py.__name__} has no module globals {unknown}")
        glb = dict(py.__globals__)  # a snapshot: the module is fully loaded by now
        glb.update(constants)
        fn = _pytypes.FunctionType(py.__code__, glb, name, py.__defaults__, py.__closure__)
        fn.__qualname__ = name
        options = PRANGE_ONLY if parallel else False
        made = _VARIANTS[key] = njit(nogil=True, cache=True, parallel=options)(fn)
        return made


_POOL: Optional[ThreadPoolExecutor] = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(
                max_workers=numba.config.NUMBA_NUM_THREADS, thread_name_prefix="gnnsys-numba"
            )
        return _POOL


def run_items(
    kernel: Callable[..., Any], items: int, *args: Any, threads: int, per_thread: int = 4
) -> None:
    """Run ``kernel(*args, p0, p1)`` over the items ``0..items-1`` in contiguous ranges.

    ``kernel`` is a serial (``nogil``) numba kernel whose items are independent and of about
    equal cost. With ``threads`` > 1 the range is cut into ``threads * per_thread`` pieces that
    up to ``threads`` threads (the caller included) take in turn from a shared counter, so a
    thread the machine does not run holds nobody up. Which thread runs a piece never changes
    its result.

    Example:
        >>> run_items(_scale_rows, x.shape[0], x, 2.0, threads=numba.get_num_threads())
    """
    if items <= 0:
        return
    threads = max(1, min(threads, items))
    if threads == 1:
        kernel(*args, 0, items)
        return
    pieces = min(items, threads * per_thread)
    bounds = [items * i // pieces for i in range(pieces + 1)]
    counter = itertools.count()

    def worker() -> None:
        while True:
            i = next(counter)  # atomic under the GIL
            if i >= pieces:
                return
            kernel(*args, bounds[i], bounds[i + 1])

    futures = [_pool().submit(worker) for _ in range(threads - 1)]
    try:
        worker()
    finally:  # no piece may still run on return, even when one failed
        for f in futures:
            f.cancel()  # a helper that never started is not needed any more
        wait(futures)
    for f in futures:
        if not f.cancelled():
            f.result()  # raises what that helper's piece raised
