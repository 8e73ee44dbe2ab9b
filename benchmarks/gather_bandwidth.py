"""Row-gather bandwidth of gnnsys.unified against its peers, measured in the same run.

CPU (``--device cpu``): the numba gather (gnnsys.unified, CPU ids) vs numpy fancy indexing,
``np.take(out=)``, ``torch.index_select`` and plain memcpy bandwidth of the same output size.

GPU (``--device cuda``): the aligned Triton gather from registered host memory (zero-copy) vs the
same kernel unaligned, vs ``torch.index_select`` on a UVA view of the same host memory, vs CPU
gather into pinned memory + H2D copy (the classic path), vs the pinned ``cudaMemcpy`` H2D
bandwidth (the ceiling), plus sorted ids, a capped grid (for overlap) and bfloat16 storage.

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

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from gnnsys.unified_tensor import gather_cpu, unified  # noqa: E402

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


def make_table(rows: int, d: int, dtype=torch.float32) -> torch.Tensor:
    # torch.empty + a cheap fill: fast even for many GB, and every page is touched.
    t = torch.empty(rows, d, dtype=dtype)
    t.view(-1)[:: max(1, 4096 // t.element_size())] = 1
    return t


def make_ids(rows: int, n: int, sorted_ids: bool, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, rows, (n,), generator=g)
    return torch.sort(ids).values if sorted_ids else ids


# ---------------------------------------------------------------------------- CPU


def bench_cpu(args) -> None:
    for rb in args.row_bytes:
        _bench_cpu_width(args, rb)


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
    u.gather(ids, out=out)  # correctness of what was timed
    assert torch.equal(out, x[ids]), "numba gather mismatch"


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
            _bench_cuda_case(args, gt, dev, rb, *variant)
            torch.cuda.empty_cache()


def _bench_cuda_case(args, gt, dev, rb, dt_name, dtype, sdtype) -> None:
    esize = torch.empty((), dtype=dtype).element_size()
    d = max(1, rb // esize)
    rows = max(1024, int(args.table_gb * 2**30) // (d * esize))
    n = max(256, int(args.batch_mb * 2**20) // (d * esize))
    x = make_table(rows, d, dtype)
    u = unified(x, storage_dtype=sdtype)
    # The ceiling: a pinned host -> device copy of the batch's size.
    pinned = torch.empty(n, d, dtype=dtype, pin_memory=True)
    dst = torch.empty(n, d, dtype=dtype, device=dev)
    h2d = n * d * esize / cuda_time(lambda: dst.copy_(pinned, non_blocking=True), args.repeats)
    h2d /= 1e9
    common = {"device": "cuda", "row_bytes": d * esize, "dtype": dt_name, "rows": n}
    emit({**common, "method": "h2d_pinned_memcpy", "gbps": round(h2d, 3)})
    try:
        uva = u.uva_view(dev)
    except Exception as e:  # depends on the torch build
        uva = None
        emit({**common, "method": "torch_index_select_uva", "error": repr(e)})
    for order in ("random", "sorted"):
        ids_cpu = make_ids(rows, n, order == "sorted", seed=rb)
        _bench_cuda_ids(args, gt, u, uva, ids_cpu, dtype, h2d, {**common, "ids": order})


def _bench_cuda_ids(args, gt, u, uva, ids_cpu, dtype, h2d, common) -> None:
    dev = torch.device("cuda")
    n, d = ids_cpu.numel(), u.shape[1]
    nbytes = n * d * torch.empty((), dtype=dtype).element_size()
    ids = ids_cpu.to(dev)
    out = torch.empty(n, d, dtype=dtype, device=dev)
    out_pinned = torch.empty(n, d, dtype=dtype, pin_memory=True)
    host_ptr = u._reg.device_ptr if u.is_registered else None
    src = gt.HostPointer(host_ptr or 0, u.storage_dtype, dev, keepalive=u)

    def kernel(aligned=True, programs=None, sort=False):
        pos, ids_k = None, ids
        if sort:
            ids_k, pos = torch.sort(ids)
        gt.gather(
            src,
            host_ptr,
            d=d,
            stride=d,
            ids=ids_k,
            out=out,
            pos=pos,
            aligned=aligned,
            max_programs=programs,
        )

    def cpu_then_copy():
        u.gather(ids_cpu, out=out_pinned)
        out.copy_(out_pinned, non_blocking=True)

    methods = {}
    if host_ptr is not None:
        methods["triton_aligned"] = lambda: kernel(True)
        methods["triton_unaligned"] = lambda: kernel(False)
        methods["triton_aligned_with_sort"] = lambda: kernel(True, sort=True)
        methods[f"triton_aligned_{args.overlap_programs}_programs"] = lambda: kernel(
            True, programs=args.overlap_programs
        )
    methods["unified_getitem_end_to_end"] = lambda: u[ids]
    methods["cpu_gather_pinned_plus_h2d"] = cpu_then_copy
    if uva is not None:
        methods["torch_index_select_uva"] = lambda: torch.index_select(uva, 0, ids)
    res = {}
    for name, fn in methods.items():
        try:
            t = cuda_time(fn, args.repeats)
        except Exception as e:
            emit({**common, "method": name, "error": repr(e)[:500]})
            continue
        res[name] = gbps = nbytes / t / 1e9
        emit(
            {
                **common,
                "method": name,
                "storage_dtype": str(u.storage_dtype).replace("torch.", ""),
                "seconds": round(t, 6),
                "gbps": round(gbps, 3),
                "vs_h2d": round(gbps / h2d, 3),
            }
        )
    summary = {**common, "method": "summary"}
    if host_ptr is not None:  # correctness of the timed kernel against the CPU gather
        kernel(True)
        torch.cuda.synchronize()
        summary["correct"] = bool(torch.equal(out.cpu(), u.gather(ids_cpu)))
    if "triton_aligned" in res:
        a = res["triton_aligned"]
        summary["aligned_vs_h2d"] = round(a / h2d, 3)
        for peer in ("cpu_gather_pinned_plus_h2d", "triton_unaligned", "torch_index_select_uva"):
            if peer in res:
                summary[f"aligned_vs_{peer}"] = round(a / res[peer], 3)
    emit(summary)


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
