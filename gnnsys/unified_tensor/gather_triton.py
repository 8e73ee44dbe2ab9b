"""GPU row gather in Triton, reading rows straight from registered host memory (zero-copy).

Imported lazily (it imports triton): Triton decides between compiling and interpreting when a
kernel is decorated, so under ``TRITON_INTERPRET=1`` the same kernel runs on CPU tensors.

The kernel (after PyTorch-Direct, Min et al., VLDB'21):

- each row's start is moved back to a 128-byte boundary and the window is loaded with the row's
  edges masked, so a warp's read is whole 128-byte PCIe packets rather than two partial ones;
- all offsets are counted in vectors of ``VEC`` elements (the widest load, up to 16 bytes, that
  the row width, row stride and base pointers allow), which tells Triton's alignment analysis
  that masks and addresses are constant/aligned over each vector, so it emits vector loads;
- optionally the ids are sorted (host pages read in order) and each row is written back to its
  original position, so the output order is preserved;
- programs loop over blocks of rows (persistent style), so the grid can be capped at a few SMs
  and the gather overlaps with training kernels on other streams;
- a row -> cache-slot table lets one launch serve hits from a device cache and misses from host;
- row ids, row offsets and output offsets are int64 throughout (tables over 4 GB).
"""

# No ``from __future__ import annotations`` here: Triton 2.x compares the ``tl.constexpr``
# annotations as objects, not strings.

from dataclasses import dataclass, replace
from typing import Any, Optional

import torch
import triton
import triton.language as tl

# One 128-byte PCIe packet / L2 line.
PACKET_BYTES = 128
# Widest load per thread (ld.global.v4.b32).
MAX_VEC_BYTES = 16
# A program's window along a row is at most this many bytes per loop step ...
MAX_CHUNK_BYTES = 4096
# ... and a program handles about this many bytes per step (rows x chunk).
TILE_BYTES = 8192
MAX_ROWS = 64
# Launches cover at most this many ids (row indices inside a launch are int32).
MAX_IDS_PER_LAUNCH = 1 << 30


@triton.jit
def _row_offsets(
    ids, stride_v, base_v, ALIGN_V: tl.constexpr, VEC: tl.constexpr, ALIGNED: tl.constexpr
):
    """(element offset of each row's load window from the base pointer, shift of the row start
    inside that window), both multiples of VEC; int64 offsets for any table size."""
    ids = ids.to(tl.int64)
    if ALIGNED:
        start_v = ids * stride_v + base_v  # vectors from the 128-byte boundary below the base
        shift_v = start_v % ALIGN_V
        row_off = (ids * stride_v - shift_v) * VEC
        shift = (shift_v * VEC).to(tl.int32)
    else:
        row_off = ids * stride_v * VEC
        shift = tl.zeros(ids.shape, dtype=tl.int32)
    return row_off, shift


@triton.jit(do_not_specialize=["n", "num_iters"])  # per-call sizes: one compile for all
def _gather_kernel(
    src_ptr,
    ids_ptr,
    pos_ptr,
    out_ptr,
    slot_ptr,
    cache_ptr,
    n,
    n_src,
    d_v,
    stride_v,
    base_v,
    num_iters,
    n_chunks,
    ROWS: tl.constexpr,
    CHUNK: tl.constexpr,
    ALIGN_V: tl.constexpr,
    VEC: tl.constexpr,
    ALIGNED: tl.constexpr,
    HAS_POS: tl.constexpr,
    HAS_CACHE: tl.constexpr,
):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    D = d_v * VEC  # row width in elements, known to be a multiple of VEC
    r_ar = tl.arange(0, ROWS)
    k_ar = tl.arange(0, CHUNK)
    for it in range(0, num_iters):
        rows = (pid + it * nprog) * ROWS + r_ar
        rmask = rows < n
        ids = tl.load(ids_ptr + rows, mask=rmask, other=0).to(tl.int64)
        # Callers validate ids (on the device for CUDA ids, reported lazily): a bad id reads
        # nothing (never foreign memory) and its output row is written as zeros.
        valid = rmask & (ids >= 0) & (ids < n_src)
        ids = tl.where(valid, ids, 0)  # a bad id's window is laid out as row 0's (not read)
        if HAS_POS:
            orow = tl.load(pos_ptr + rows, mask=rmask, other=0).to(tl.int64)
        else:
            orow = rows.to(tl.int64)
        out_row = orow * D
        row_off, shift = _row_offsets(ids, stride_v, base_v, ALIGN_V, VEC, ALIGNED)
        if HAS_CACHE:
            slot = tl.load(slot_ptr + ids, mask=valid, other=-1).to(tl.int64)
            hit = slot >= 0
            miss = slot < 0
            cache_row = slot * D
        for c in range(0, n_chunks):
            k = c * CHUNK + k_ar
            kk = k[None, :] - shift[:, None]  # position inside the row
            m = rmask[:, None] & (kk >= 0) & (kk < D)
            mr = m & valid[:, None]
            src = src_ptr + (row_off[:, None] + k[None, :])
            if HAS_CACHE:
                v_host = tl.load(src, mask=mr & miss[:, None], other=0)
                v_dev = tl.load(cache_ptr + (cache_row[:, None] + kk), mask=mr & hit[:, None])
                v = tl.where(hit[:, None], v_dev, v_host)
            else:
                v = tl.load(src, mask=mr, other=0)
            tl.store(out_ptr + (out_row[:, None] + kk), v.to(out_ptr.dtype.element_ty), mask=m)


@triton.jit
def _offsets_kernel(
    ids_ptr,
    row_off_ptr,
    shift_ptr,
    n,
    stride_v,
    base_v,
    ALIGN_V: tl.constexpr,
    VEC: tl.constexpr,
    ALIGNED: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Test hook: the kernel's own offset arithmetic, written out for checking on the host."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = i < n
    ids = tl.load(ids_ptr + i, mask=m, other=0)
    row_off, shift = _row_offsets(ids, stride_v, base_v, ALIGN_V, VEC, ALIGNED)
    tl.store(row_off_ptr + i, row_off, mask=m)
    tl.store(shift_ptr + i, shift, mask=m)


# True when TRITON_INTERPRET=1 was set as the kernels were defined: they then run on CPU
# tensors; compiled, they need CUDA ones (checked before each launch: ``_check_device``).
INTERPRETED = not isinstance(_gather_kernel, triton.runtime.jit.JITFunction)


def _check_device(ids: torch.Tensor) -> None:
    if ids.device.type == "cuda" or INTERPRETED:
        return
    from gnnsys._checks import require_cuda

    require_cuda("the Triton gather kernel")
    raise ValueError(
        f"the Triton gather kernel runs on CUDA tensors, got ids on {ids.device} (set "
        "TRITON_INTERPRET=1 before importing gnnsys to interpret it on CPU tensors)"
    )


class HostPointer:
    """A pointer argument Triton accepts: ``data_ptr()``, ``dtype`` and ``device``.

    Wraps the device-visible address of registered host memory so that a kernel launched on
    ``device`` reads host rows in place.

    Example:
        >>> p = HostPointer(0x7F0000000000, torch.float32, torch.device("cuda", 0))
        >>> p.data_ptr() == 0x7F0000000000
        True
    """

    def __init__(self, ptr: int, dtype: torch.dtype, device: torch.device, keepalive: Any = None):
        self._ptr = int(ptr)
        self.dtype = dtype
        self.device = device
        self._keepalive = keepalive

    def data_ptr(self) -> int:
        return self._ptr

    def is_pinned(self) -> bool:  # Triton 2.x inspects this for host-resident pointers
        return True

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def __repr__(self) -> str:
        return f"HostPointer(0x{self._ptr:x}, {self.dtype}, {self.device})"


@dataclass(frozen=True)
class LaunchPlan:
    """Constexpr choices and scalar arguments for one gather (computed on the host)."""

    vec: int
    align_v: int
    base_v: int
    d_v: int
    stride_v: int
    chunk: int
    rows: int
    n_chunks: int


def _next_pow2(x: int) -> int:
    return 1 << max(0, int(x) - 1).bit_length()


def plan(*, esize: int, d: int, stride: int, src_ptr: int, aligned: bool = True) -> LaunchPlan:
    """Pick the vector width, the 128-byte alignment unit and the tile shape for a gather.

    ``VEC`` is the widest load (<= 16 bytes) dividing the row width, the row stride and the
    source pointer; the window is the row plus the largest shift any row start can need.

    Example:
        >>> plan(esize=4, d=128, stride=128, src_ptr=4096).vec
        4
    """
    vec_bytes = MAX_VEC_BYTES
    while vec_bytes > esize:
        ok = (d * esize) % vec_bytes == 0 and (stride * esize) % vec_bytes == 0
        ok = ok and int(src_ptr) % vec_bytes == 0
        if ok:
            break
        vec_bytes //= 2
    vec = max(1, vec_bytes // esize)
    align_elems = max(1, PACKET_BYTES // esize)
    align_v = max(1, align_elems // vec)
    base_mis = (int(src_ptr) % PACKET_BYTES) // esize
    base_v = base_mis // vec
    d_v = d // vec
    stride_v = stride // vec
    if aligned:
        # Reachable row starts (in vectors, mod align_v) are base_v + multiples of g.
        from math import gcd

        g = gcd(stride_v, align_v) if stride_v else align_v
        max_shift = (align_v - g + base_v % g) * vec if stride_v else (base_v % align_v) * vec
    else:
        max_shift = 0
    window = d + max_shift
    chunk = min(_next_pow2(max(window, 1)), max(1, MAX_CHUNK_BYTES // esize))
    chunk = max(chunk, vec)
    rows = max(1, min(MAX_ROWS, TILE_BYTES // (chunk * esize)))
    rows = _next_pow2(rows) if rows & (rows - 1) else rows
    n_chunks = -(-window // chunk)
    return LaunchPlan(vec, align_v, base_v, d_v, stride_v, chunk, rows, n_chunks)


# Programs for a gather that reads host memory over PCIe (zero-copy). PCIe, not the SMs, bounds
# it: on an H200, 16 programs read at 0.86-1.07x the bandwidth of 8 per SM (1056) in
# gather_bandwidth.py (sessions 21 and 24), and a GraphSAGE epoch on products with the gather
# beside training took 1.05x the all-in-GPU time with 16, 1.10x with 32, 1.13x with 64 and 1.16x
# with 1056 (session 24; a second run: 1.04x with 8, 1.05x with 16, 1.09x with 32, 1.16x with
# 1056): every program parked on a PCIe read holds an SM slot training needs. 8 programs gather
# alone at half the speed of 16 (fetch-only 92 vs 52 ms an epoch), so 16.
HOST_READ_PROGRAMS = 16


def default_programs(device: torch.device) -> int:
    """Default cap on programs: 8 per SM on CUDA; 2 on CPU (exercises the persistent loop)."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return 8 * int(props.multi_processor_count)
    return 2


def element_size(dtype: torch.dtype) -> int:
    """Bytes per element of ``dtype`` (``dtype.itemsize`` is newer than torch 2.2's minimum)."""
    return torch.empty((), dtype=dtype).element_size()


def gather(
    src: Any,
    src_ptr: int,
    *,
    d: int,
    stride: int,
    ids: torch.Tensor,
    out: torch.Tensor,
    pos: Optional[torch.Tensor] = None,
    slot: Optional[torch.Tensor] = None,
    cache_rows: Optional[torch.Tensor] = None,
    aligned: bool = True,
    max_programs: Optional[int] = None,
    tile_rows: Optional[int] = None,
    num_warps: int = 4,
    n_src: Optional[int] = None,
) -> torch.Tensor:
    """Launch the gather: ``out[pos[i]] = src[ids[i]]`` (``pos`` defaults to ``i``).

    ``src`` is a tensor or a :class:`HostPointer` to row 0 (``src_ptr`` its address), with rows
    of ``d`` elements ``stride`` elements apart; ``out`` is C-contiguous [n, d]. With ``slot``
    (int32 [N], -1 = not cached) and ``cache_rows`` ([C, d] on the output's device), cached rows
    are read from ``cache_rows``. ``tile_rows`` (a power of two) overrides the rows a program
    handles per step; ``max_programs`` caps the grid. ``n_src`` (rows in the source; default:
    ``src.shape[0]``; required for a :class:`HostPointer` source) bounds ids inside the kernel:
    a row whose id is outside ``0..n_src-1`` reads nothing and is written as zeros. No other
    validation here: the caller checks ids.

    Example:
        >>> src = torch.arange(12.0).view(4, 3)
        >>> out = torch.empty(2, 3)
        >>> gather(src, src.data_ptr(), d=3, stride=3, ids=torch.tensor([2, 0]), out=out)[0]
        tensor([6., 7., 8.])
    """
    n = ids.numel()
    if n == 0 or d == 0:
        return out
    if n_src is None:  # an argument error first: it holds on every device
        if not hasattr(src, "shape"):
            raise ValueError(
                f"n_src (rows in the source) is required when src is a {type(src).__name__}"
            )
        n_src = int(src.shape[0])
    _check_device(ids)
    # Only the source's alignment enters the arithmetic (the 128-byte shift); the other pointers
    # are offset by multiples of VEC elements, which holds whatever their alignment.
    p = plan(esize=element_size(src.dtype), d=d, stride=stride, src_ptr=src_ptr, aligned=aligned)
    if tile_rows is not None:
        if tile_rows < 1 or tile_rows & (tile_rows - 1):
            raise ValueError(f"tile_rows must be a power of two >= 1, got {tile_rows}")
        p = replace(p, rows=int(tile_rows))
    has_cache = slot is not None and cache_rows is not None
    dummy = ids
    cap = max_programs if max_programs else default_programs(ids.device)
    for lo in range(0, n, MAX_IDS_PER_LAUNCH):
        hi = min(n, lo + MAX_IDS_PER_LAUNCH)
        ids_l = ids[lo:hi]
        if pos is not None:
            pos_l = pos[lo:hi]
            out_l = out
        else:
            pos_l = dummy
            out_l = out[lo:hi]
        m = hi - lo
        blocks = -(-m // p.rows)
        grid = max(1, min(blocks, int(cap)))
        num_iters = -(-blocks // grid)
        _gather_kernel[(grid,)](
            src,
            ids_l,
            pos_l,
            out_l,
            slot if has_cache else dummy,
            cache_rows if has_cache else out_l,
            m,
            n_src,
            p.d_v,
            p.stride_v,
            p.base_v,
            num_iters,
            p.n_chunks,
            ROWS=p.rows,
            CHUNK=p.chunk,
            ALIGN_V=p.align_v,
            VEC=p.vec,
            ALIGNED=aligned,
            HAS_POS=pos is not None,
            HAS_CACHE=has_cache,
            num_warps=num_warps,
        )
    return out


def row_offsets(
    ids: torch.Tensor, *, esize: int, stride: int, src_ptr: int, d: int, aligned: bool = True
) -> tuple:
    """The kernel's (row window offset, shift) for each id, computed by the kernel's own code.

    Lets tests check the int64 offset arithmetic for tables far beyond 2^31 elements without
    allocating them.

    Example:
        >>> row_offsets(torch.tensor([1]), esize=4, stride=3, src_ptr=0, d=3)[1].tolist()
        [3]
    """
    _check_device(ids)
    p = plan(esize=esize, d=d, stride=stride, src_ptr=src_ptr, aligned=aligned)
    n = ids.numel()
    row_off = torch.empty(n, dtype=torch.int64, device=ids.device)
    shift = torch.empty(n, dtype=torch.int32, device=ids.device)
    block = 128
    _offsets_kernel[(max(1, -(-n // block)),)](
        ids,
        row_off,
        shift,
        n,
        p.stride_v,
        p.base_v,
        ALIGN_V=p.align_v,
        VEC=p.vec,
        ALIGNED=aligned,
        BLOCK=block,
    )
    return row_off, shift
