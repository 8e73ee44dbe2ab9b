"""Row-gather bandwidth of gnnsys.unified against its peers, measured in the same run.

CPU (``--device cpu``): the numba gather (gnnsys.unified, CPU ids) vs numpy fancy indexing,
``np.take(out=)``, ``torch.index_select`` and plain memcpy bandwidth of the same output size;
and float32 rows stored at half width (``storage_dtype`` float16 / bfloat16, widened on
gather) vs torch's way to the same result (``index_select`` on the half table, then
``.float()``); GB/s counts float32 output bytes for both.

GPU (``--device cuda``): the aligned Triton gather from registered host memory (zero-copy) vs the
same kernel unaligned, vs ``torch.index_select`` on a UVA view of the same host memory, vs CPU
gather into pinned memory + H2D copy (the classic path), vs the pinned ``cudaMemcpy`` H2D
bandwidth (the ceiling), plus sorted ids, a capped grid (for overlap) and bfloat16 storage.
Each case runs on a table whose base is 128-byte aligned (``--layouts aligned``: what
``gnnsys.unified`` allocates when it copies, ``aligned_empty``) and on one 64 bytes past a
boundary (``unaligned``: where torch's large tensors start), so the kernel's two modes and the
two layouts are measured for real. Every method is timed and checked against the CPU gather on
its own: a method that fails records an error line and the others go on.

One JSON object per line on stdout (and appended to ``--out`` if given). GB/s counts output bytes
(rows x row bytes in the output dtype). Timings are medians over ``--repeats``.

Example:
    python benchmarks/gather_bandwidth.py --quick
    python benchmarks/gather_bandwidth.py --device cuda --table-gb 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback
from typing import Optional

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from gnnsys.unified_tensor import UnifiedTensor, aligned_empty, gather_cpu, unified  # noqa: E402

_OUT = None


def emit(rec: dict) -> None:
    rec = {"bench": "gather_bandwidth", **rec}
    line = json.dumps(rec, sort_keys=False)
    print(line, flush=True)
    if _OUT:
        with open(_OUT, "a") as f:
            f.write(line + "\n")


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    return median_times(fn, repeats, warmup)[0]


def median_times(fn, repeats: int, warmup: int = 1):
    """(median wall seconds, median process CPU seconds): CPU time is robust to a busy machine."""
    for _ in range(warmup):
        fn()
    ts, cs = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    return statistics.median(ts), statistics.median(cs)


def interleaved_times(methods: dict, repeats: int) -> dict:
    """name -> (median wall s, median CPU s), or the exception it raised. Each round times every
    method once, in turn, so a noisy neighbour on a shared machine slows them all alike."""
    times: dict = {}
    for name, fn in methods.items():
        try:
            fn()  # warm-up (and compile)
            times[name] = ([], [])
        except Exception as e:
            times[name] = e
    for _ in range(repeats):
        for name, fn in methods.items():
            if isinstance(times[name], Exception):
                continue
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[name][0].append(time.perf_counter() - t0)
            times[name][1].append(time.process_time() - c0)
    return {
        k: v if isinstance(v, Exception) else (statistics.median(v[0]), statistics.median(v[1]))
        for k, v in times.items()
    }


def cuda_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        ts.append(start.elapsed_time(end) / 1e3)
    return statistics.median(ts)


# Table layouts: bytes the table's base sits past a 128-byte boundary.
LAYOUTS = {"aligned": 0, "unaligned": 64}


def make_table(rows: int, d: int, dtype=torch.float32, misalign: int = 0) -> torch.Tensor:
    """A [rows, d] table whose base sits ``misalign`` bytes past a 128-byte boundary.

    Over-allocated and sliced (``aligned_empty``), then a cheap fill: fast even for many GB,
    and every page is touched."""
    esize = torch.empty((), dtype=dtype).element_size()
    nbytes = rows * d * esize
    buf = aligned_empty(nbytes + misalign, torch.uint8)
    t = buf[misalign : misalign + nbytes].view(dtype).view(rows, d)
    t.view(-1)[:: max(1, 4096 // esize)] = 1
    return t


def make_ids(rows: int, n: int, sorted_ids: bool, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, rows, (n,), generator=g)
    return torch.sort(ids).values if sorted_ids else ids


# ---------------------------------------------------------------------------- CPU


def bench_cpu(args) -> None:
    for rb in args.row_bytes:
        try:  # one width failing is data; go on
            _bench_cpu_width(args, rb)
        except Exception as e:
            emit({"device": "cpu", "row_bytes": rb, "error": repr(e)[:500],
                  "traceback": traceback.format_exc()[-1500:]})  # fmt: skip


def _bench_cpu_width(args, rb: int) -> None:
    d = max(1, rb // 4)
    rows = max(1024, int(args.table_gb * 2**30) // (d * 4))
    n = max(256, int(args.batch_mb * 2**20) // (d * 4))
    x = make_table(rows, d)
    x.normal_()  # real values for the equality check
    out = torch.empty(n, d)
    contig = x[:n].clone()
    nbytes = n * d * 4
    mem_gbps = nbytes / median_time(lambda: out.copy_(contig), args.repeats) / 1e9
    emit(
        {
            "device": "cpu",
            "method": "memcpy",
            "row_bytes": d * 4,
            "rows": n,
            "gbps": round(mem_gbps, 3),
            "threads": __import__("numba").config.NUMBA_NUM_THREADS,
        }
    )
    for order in ("random", "sorted"):
        ids = make_ids(rows, n, order == "sorted", seed=rb)
        _bench_cpu_ids(args, x, ids, out, mem_gbps, order)


def _bench_cpu_ids(args, x, ids, out, mem_gbps, order) -> None:
    n, d = out.shape
    u = unified(x)
    src_np, ids_np, out_np = x.numpy(), ids.numpy(), out.numpy()
    words = gather_cpu.word_view(src_np)
    methods = {
        "numpy_fancy": lambda: src_np[ids_np],
        "gnnsys_numba": lambda: u.gather(ids, out=out),
        "gnnsys_numba_1thread": lambda: gather_cpu.gather_rows(
            words, ids_np, out_np, parallel=False
        ),
        "numpy_take_out": lambda: np.take(src_np, ids_np, axis=0, out=out_np),
        "torch_index_select": lambda: torch.index_select(x, 0, ids, out=out),
    }
    half = {}
    if not args.no_half:  # half-width storage widened on gather, and torch's way to the same
        half = {
            dt: (unified(x, storage_dtype=dt), x.to(dt)) for dt in (torch.float16, torch.bfloat16)
        }
        for dt, (uh, xh) in half.items():
            tag = str(dt).split(".")[1]
            methods[f"gnnsys_{tag}_storage"] = lambda uh=uh: uh.gather(ids, out=out)
            methods[f"torch_{tag}_index_select_float"] = lambda xh=xh: torch.index_select(
                xh, 0, ids
            ).float()
    base = None
    for name, t_cpu in interleaved_times(methods, args.repeats).items():
        if isinstance(t_cpu, Exception):  # a peer failing is data
            emit({"device": "cpu", "method": name, "row_bytes": d * 4, "error": repr(t_cpu)})
            continue
        t, cpu = t_cpu
        gbps = n * d * 4 / t / 1e9
        if name == "numpy_fancy":
            base = gbps
        rec = {
            "device": "cpu",
            "method": name,
            "ids": order,
            "row_bytes": d * 4,
            "rows": n,
            "table_rows": x.shape[0],
            "seconds": round(t, 6),
            "gbps": round(gbps, 3),
            "vs_memcpy": round(gbps / mem_gbps, 3),
            "gb_per_cpu_second": round(n * d * 4 / max(cpu, 1e-9) / 1e9, 3),
        }
        if base and name != "numpy_fancy":
            rec["vs_numpy"] = round(gbps / base, 3)
        emit(rec)
    try:  # correctness of what was timed: a line, never an abort
        u.gather(ids, out=out)
        ok = bool(torch.equal(out, x[ids]))
        for uh, xh in half.values():  # the widened rows, bit for bit (no NaN in x)
            uh.gather(ids, out=out)
            ok = ok and bool(torch.equal(out, xh[ids].float()))
        emit({"device": "cpu", "method": "check", "ids": order, "row_bytes": d * 4, "correct": ok})
    except Exception as e:
        emit({"device": "cpu", "method": "check", "row_bytes": d * 4, "error": repr(e)[:500]})


# ---------------------------------------------------------------------------- GPU


def bench_cuda(args) -> None:
    from gnnsys.unified_tensor import gather_triton as gt

    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    emit(
        {
            "device": "cuda",
            "method": "info",
            "gpu": props.name,
            "sms": props.multi_processor_count,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
        }
    )
    for rb in args.row_bytes:
        for variant in args.variants:
            best = {}
            for layout in args.layouts:
                common = {"device": "cuda", "row_bytes": rb, "dtype": variant[0], "layout": layout}
                try:  # one case failing (allocation, registration...) is data; go on
                    best[layout] = _bench_cuda_case(args, gt, dev, rb, layout, *variant)
                except Exception as e:
                    emit({**common, "method": "case", "error": repr(e)[:500],
                          "traceback": traceback.format_exc()[-1500:]})  # fmt: skip
                torch.cuda.empty_cache()
            if best.get("aligned") and best.get("unaligned"):
                emit(
                    {
                        "device": "cuda",
                        "row_bytes": rb,
                        "dtype": variant[0],
                        "method": "layout_summary",
                        "aligned_base_vs_unaligned_base": round(
                            best["aligned"] / best["unaligned"], 3
                        ),
                    }
                )


def _bench_cuda_case(args, gt, dev, rb, layout, dt_name, dtype, sdtype) -> Optional[float]:
    """Time every method on one table; return the zero-copy kernel's GB/s (None if it failed)."""
    stored = sdtype or dtype
    esize = torch.empty((), dtype=dtype).element_size()
    s_esize = torch.empty((), dtype=stored).element_size()
    d = max(1, rb // s_esize)
    rows = max(1024, int(args.table_gb * 2**30) // (d * s_esize))
    n = max(256, int(args.batch_mb * 2**20) // (d * esize))
    x = make_table(rows, d, stored, LAYOUTS[layout])
    # Stored rows used in place (never copied, so the layout holds); bf16 widens on gather.
    u = UnifiedTensor(x, out_dtype=dtype if sdtype is not None else None)
    # The ceiling: a pinned host -> device copy of the batch's size.
    pinned = torch.empty(n, d, dtype=dtype, pin_memory=True)
    dst = torch.empty(n, d, dtype=dtype, device=dev)
    h2d = n * d * esize / cuda_time(lambda: dst.copy_(pinned, non_blocking=True), args.repeats)
    h2d /= 1e9
    common = {
        "device": "cuda",
        "row_bytes": d * s_esize,
        "dtype": dt_name,
        "layout": layout,
        "base_mod_128": x.data_ptr() % 128,
        "registered": u.is_registered,
        "rows": n,
    }
    emit({**common, "method": "h2d_pinned_memcpy", "gbps": round(h2d, 3)})
    try:
        uva = u.uva_view(dev)
    except Exception as e:  # depends on the torch build
        uva = None
        emit({**common, "method": "torch_index_select_uva", "error": repr(e)[:500]})
    best = None
    for order in ("random", "sorted"):
        ids_cpu = make_ids(rows, n, order == "sorted", seed=rb)
        ids = ids_cpu.to(dev)
        methods = gather_methods(
            u, ids, ids_cpu, gt=gt, dev=dev, uva=uva, overlap_programs=args.overlap_programs
        )
        if layout != "aligned" or order == "sorted":  # the variations once, on the main case
            for k in [k for k in methods if k.startswith("triton_aligned_")]:
                del methods[k]
        res = run_methods(
            methods,
            lambda fn: cuda_time(fn, args.repeats),
            u.gather(ids_cpu),
            {**common, "ids": order, "storage_dtype": str(u.storage_dtype).replace("torch.", "")},
            h2d,
        )
        if order == "random":
            best = res.get("triton_aligned")
    return best


def triton_source(u, gt, dev: torch.device):
    """(src, src_ptr, n_src) through which the Triton kernel reads ``u``'s stored rows.

    A ``HostPointer`` to the registered host memory (the zero-copy path) when ``u`` is
    registered; under ``TRITON_INTERPRET=1`` on the CPU, the host tensor itself; else None.
    ``n_src`` (the rows) must be passed: a HostPointer has no shape."""
    host = u._host
    if host is None:
        return None
    bits = host.view(torch.uint8) if host.dtype == torch.bool else host
    if u.is_registered:
        ptr = u._reg.device_ptr + (host.data_ptr() - u._reg.ptr)
        return gt.HostPointer(ptr, bits.dtype, dev, keepalive=u), ptr, int(u.shape[0])
    if gt.INTERPRETED and dev.type == "cpu":
        return bits, bits.data_ptr(), int(u.shape[0])
    return None


def gather_methods(u, ids, ids_cpu, *, gt, dev, uva=None, overlap_programs: int = 16) -> dict:
    """name -> a call gathering rows ``ids`` of ``u`` and returning them ([n, d] tensor)."""
    n, d = ids.numel(), int(u.shape[1])
    cuda = dev.type == "cuda"
    out = torch.empty(n, d, dtype=u.dtype, device=dev)
    out_pinned = torch.empty(n, d, dtype=u.dtype, pin_memory=cuda)
    methods = {}
    source = triton_source(u, gt, dev)
    if source is not None:
        src, ptr, n_src = source

        def kernel(aligned=True, programs=None, sort=False):
            pos, ids_k = None, ids
            if sort:
                ids_k, pos = torch.sort(ids)
            gt.gather(src, ptr, d=d, stride=d, ids=ids_k, out=out, pos=pos, aligned=aligned,
                      max_programs=programs, n_src=n_src)  # fmt: skip
            return out

        methods["triton_aligned"] = lambda: kernel(True)
        methods["triton_unaligned"] = lambda: kernel(False)
        methods["triton_aligned_with_sort"] = lambda: kernel(True, sort=True)
        methods[f"triton_aligned_{overlap_programs}_programs"] = lambda: kernel(
            True, programs=overlap_programs
        )
    if cuda:
        methods["unified_getitem_end_to_end"] = lambda: u[ids]

    def cpu_then_copy():
        u.gather(ids_cpu, out=out_pinned)
        out.copy_(out_pinned, non_blocking=cuda)
        return out

    methods["cpu_gather_pinned_plus_h2d"] = cpu_then_copy
    if uva is not None:
        methods["torch_index_select_uva"] = lambda: torch.index_select(uva, 0, ids)
    return methods


def run_methods(methods: dict, timer, want: torch.Tensor, common: dict, h2d: float) -> dict:
    """Time each method (``timer(fn) -> seconds``) and check what it returns against ``want``,
    each inside its own try: a failure is an error line and the others go on. Returns
    name -> GB/s of the methods that ran."""
    nbytes = want.numel() * want.element_size()
    res = {}
    for name, fn in methods.items():
        try:
            t = timer(fn)
            got = fn()
            if got.is_cuda:
                torch.cuda.synchronize()
            correct = bool(torch.equal(got.cpu().to(want.dtype).view(want.shape), want))
        except Exception as e:
            emit({**common, "method": name, "error": repr(e)[:500]})
            continue
        res[name] = gbps = nbytes / t / 1e9
        rec = {**common, "method": name, "seconds": round(t, 6), "gbps": round(gbps, 3)}
        rec.update(vs_h2d=round(gbps / h2d, 3) if h2d else None, correct=correct)
        emit(rec)
    summary = {**common, "method": "summary"}
    if "triton_aligned" in res:
        a = res["triton_aligned"]
        summary["aligned_vs_h2d"] = round(a / h2d, 3) if h2d else None
        for peer in ("cpu_gather_pinned_plus_h2d", "triton_unaligned", "torch_index_select_uva"):
            if peer in res:
                summary[f"aligned_vs_{peer}"] = round(a / res[peer], 3)
    emit(summary)
    return res


def main(argv=None) -> int:
    global _OUT
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--row-bytes",
        type=int,
        nargs="+",
        default=None,
        help="row widths in bytes (default CPU: 128 512 4096; CUDA: 128 256 400 512 1024 2048 4096)",
    )
    p.add_argument("--table-gb", type=float, default=None, help="host table size (GiB)")
    p.add_argument("--batch-mb", type=float, default=None, help="output bytes per gather (MiB)")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--overlap-programs", type=int, default=16)
    p.add_argument("--no-bf16", action="store_true", help="skip the bfloat16-storage variant")
    p.add_argument("--no-half", action="store_true",
                   help="CPU: skip the float16 / bfloat16 storage methods")  # fmt: skip
    p.add_argument(
        "--layouts",
        nargs="+",
        choices=tuple(LAYOUTS),
        default=list(LAYOUTS),
        help="table bases measured (CUDA): 128-byte aligned and/or 64 bytes past",
    )
    p.add_argument("--quick", action="store_true", help="small table and few repeats")
    p.add_argument("--out", default=None, help="also append the JSON lines to this file")
    args = p.parse_args(argv)
    _OUT = args.out
    cuda = args.device == "cuda"
    if args.row_bytes is None:
        args.row_bytes = [128, 256, 400, 512, 1024, 2048, 4096] if cuda else [128, 512, 4096]
        if args.quick:
            args.row_bytes = [128, 512, 4096]
    if args.table_gb is None:
        args.table_gb = (1.0 if args.quick else 4.0) if cuda else (0.25 if args.quick else 1.0)
    if args.batch_mb is None:
        args.batch_mb = 64.0 if cuda else (16.0 if args.quick else 32.0)
    if args.repeats is None:
        args.repeats = 5 if args.quick else 11
    args.variants = [("float32", torch.float32, None)]
    if cuda and not args.no_bf16:
        args.variants.append(("float32_bf16_storage", torch.float32, torch.bfloat16))
    emit(
        {
            "method": "config",
            "device": args.device,
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "numba_threads": __import__("numba").config.NUMBA_NUM_THREADS,
            "table_gb": args.table_gb,
            "batch_mb": args.batch_mb,
            "repeats": args.repeats,
            "row_bytes": args.row_bytes,
            "parallel_min_bytes": gather_cpu.PARALLEL_MIN_BYTES,
        }
    )
    if cuda and not torch.cuda.is_available():
        emit({"device": "cuda", "error": "CUDA is not available"})
        return 2
    try:
        bench_cuda(args) if cuda else bench_cpu(args)
    except Exception as e:
        emit({"device": args.device, "error": repr(e), "traceback": traceback.format_exc()[-2000:]})
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
