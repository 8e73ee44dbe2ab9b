"""Benchmark gnnsys.ops.conv.im2win_conv2d against F.conv2d and an im2col + GEMM baseline.

The 12 conv layers of the im2win paper (Lu et al., 2023; the list in the authors' benchmark
code, seth-lu/Im2win benchmarks/benchmarks.h), all three methods measured in the same run on the
same tensors: forward time (min and median of ``--repeat`` runs after a warm-up), GFLOP/s, and
peak memory above the inputs. Prints one JSON object per line: one per (layer, method), one
summary per layer, and a final summary.

    python benchmarks/conv_im2win.py                          # batch 1, all layers, ~1-2 min CPU
    python benchmarks/conv_im2win.py --layers 5,9 --repeat 3  # a quick look
    python benchmarks/conv_im2win.py --device cuda --batch 32 # the GPU check

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` above what was allocated before the
call (cuDNN's workspace goes through the caching allocator, so it is counted). On CPU (Linux),
the process's resident high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs``)
above the resident size before the call, with glibc's mmap threshold pinned so that large
buffers are returned to the OS when freed: it counts oneDNN's scratch buffers too. Both include
the output tensor. ``transform_mb`` is the exact size of the window (im2win) or column (im2col)
buffer, from the formulas.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import numba
import torch
import torch.nn.functional as F

from gnnsys.ops.conv import im2win_conv2d, window_size

# (C, H, W, K, F, stride): F x F filters, no padding, as in the paper's benchmark code.
PAPER_LAYERS = [
    (3, 227, 227, 96, 11, 4),
    (3, 231, 231, 96, 11, 4),
    (3, 227, 227, 64, 7, 2),
    (32, 224, 224, 64, 7, 2),
    (96, 24, 24, 256, 5, 1),
    (256, 12, 12, 512, 3, 1),
    (3, 224, 224, 64, 3, 1),
    (64, 112, 112, 128, 3, 1),
    (64, 56, 56, 64, 3, 1),
    (128, 28, 28, 128, 3, 1),
    (256, 14, 14, 256, 3, 1),
    (512, 7, 7, 512, 3, 1),
]


def im2col_conv2d(x: torch.Tensor, w: torch.Tensor, stride: int) -> torch.Tensor:
    """The im2col + GEMM baseline: torch's unfold (im2col) then one batched matmul."""
    n, _, h, wd = x.shape
    k, _, fh, fw = w.shape
    oh, ow = (h - fh) // stride + 1, (wd - fw) // stride + 1
    cols = F.unfold(x, (fh, fw), stride=stride)  # [N, C*FH*FW, OH*OW]
    return torch.matmul(w.reshape(k, -1), cols).view(n, k, oh, ow)


METHODS = ("im2win", "torch", "im2col")
_MIN_PEAK_MB = 0.5  # below this a CPU RSS delta says more about malloc's free lists than the op


def run_method(name: str, x: torch.Tensor, w: torch.Tensor, stride: int) -> torch.Tensor:
    if name == "im2win":
        return im2win_conv2d(x, w, stride=stride)
    if name == "torch":
        return F.conv2d(x, w, stride=stride)
    return im2col_conv2d(x, w, stride)


def _fwd_bwd(name: str, x: torch.Tensor, w: torch.Tensor, stride: int) -> None:
    run_method(name, x, w, stride).sum().backward()


# ------------------------------------------------------------------------------ memory
class _CpuPeak:
    """Peak resident bytes of one call above the resident size before it (Linux only)."""

    def __init__(self) -> None:
        self.ok = os.path.exists("/proc/self/clear_refs")
        if self.ok:
            try:  # a fixed mmap threshold: freed large buffers leave RSS, so peaks don't hide
                ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
            except OSError:
                pass

    @staticmethod
    def _status(key: str) -> int:
        with open("/proc/self/status") as f:
            return int(re.search(key + r":\s+(\d+)", f.read()).group(1)) * 1024

    def measure(self, fn: Callable[[], object]) -> Optional[int]:
        if not self.ok:
            return None
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
        except OSError:
            self.ok = False
            return None
        base = self._status("VmRSS")
        out = fn()
        peak = self._status("VmHWM") - base
        del out
        return peak


def _cuda_peak(fn: Callable[[], object]) -> int:
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del out
    return peak


# ------------------------------------------------------------------------------ timing
def _times(fn: Callable[[], object], repeat: int, cuda: bool) -> Tuple[List[float], List[float]]:
    """Wall seconds of each repeat, and (CPU) the process CPU seconds: on a shared machine the
    CPU time is what the run itself cost, untouched by waiting for a core."""
    fn()  # warm-up: compilation, oneDNN primitive creation, autotuning
    wall, cpu = [], []
    for _ in range(repeat):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            wall.append(start.elapsed_time(end) / 1e3)
        else:
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return wall, cpu


def _parse_layers(text: str) -> List[int]:
    out = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    bad = [v for v in out if not 1 <= v <= len(PAPER_LAYERS)]
    if bad:
        raise SystemExit(f"--layers must be in 1..{len(PAPER_LAYERS)}, got {bad}")
    return out


def _measure(method: str, args: argparse.Namespace) -> List[dict]:
    """Every requested layer through one method (run in its own process by ``main``)."""
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    cpu_peak = _CpuPeak()
    rows = []
    for layer in _parse_layers(args.layers):
        c, h, w, k, f, s = PAPER_LAYERS[layer - 1]
        gen = torch.Generator().manual_seed(args.seed * 1000 + layer)  # same tensors everywhere
        x = torch.randn(args.batch, c, h, w, generator=gen).to(dev)
        wt = (torch.randn(k, c, f, f, generator=gen) / math.sqrt(c * f * f)).to(dev)
        oh, ow = (h - f) // s + 1, (w - f) // s + 1
        flops = 2.0 * args.batch * k * oh * ow * c * f * f
        elem = x.element_size()
        transform = {
            "im2win": window_size(x.shape, f, s) * elem,
            "im2col": args.batch * c * f * f * oh * ow * elem,
        }.get(method)
        fn = functools.partial(run_method, method, x, wt, s)
        with torch.no_grad():
            err = float((fn().double() - F.conv2d(x.double(), wt.double(), stride=s)).abs().max())
            times, cpu_times = _times(fn, args.repeat, cuda)
            peak = _cuda_peak(fn) if cuda else cpu_peak.measure(fn)
        row = {
            "bench": "conv_im2win",
            "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
            "threads": None if cuda else torch.get_num_threads(),
            "layer": layer,
            "shape": f"N{args.batch} C{c} {h}x{w} K{k} F{f} s{s}",
            "method": method,
            "ms_min": round(min(times) * 1e3, 3),
            "ms_median": round(statistics.median(times) * 1e3, 3),
            "cpu_ms_min": round(min(cpu_times) * 1e3, 3) if cpu_times else None,
            "gflops": round(flops / min(times) / 1e9, 1),
            "peak_mb": None if peak is None else round(peak / 1e6, 2),
            "transform_mb": None if transform is None else round(transform / 1e6, 2),
            "max_abs_err_vs_fp64": err,
        }
        if args.backward:
            xg, wg = x.clone().requires_grad_(), wt.clone().requires_grad_()
            bt, _ = _times(functools.partial(_fwd_bwd, method, xg, wg, s), args.repeat, cuda)
            row["fwd_bwd_ms_min"] = round(min(bt) * 1e3, 3)
        rows.append(row)
    return rows


def _best(rows: List[dict]) -> dict:
    """Merge one (layer, method)'s rows from several rounds: the fastest round's timings."""
    best = dict(min(rows, key=lambda r: r["ms_min"]))
    for key in ("cpu_ms_min", "fwd_bwd_ms_min", "peak_mb"):
        vals = [r[key] for r in rows if r.get(key) is not None]
        if vals:
            best[key] = min(vals)
    best["rounds"] = len(rows)
    return best


def _summaries(rows: Dict[tuple, dict], layers: List[int], cuda: bool) -> List[dict]:
    out = []
    acc: Dict[str, List[float]] = {"time": [], "cpu": [], "mem": []}
    for layer in layers:
        r = {m: rows[(layer, m)] for m in METHODS}
        t_ratio = r["im2win"]["ms_min"] / r["torch"]["ms_min"]
        line = {
            "bench": "conv_im2win",
            "summary": "layer",
            "layer": layer,
            "im2win_time_vs_torch": round(t_ratio, 3),
            "im2win_time_vs_im2col": round(r["im2win"]["ms_min"] / r["im2col"]["ms_min"], 3),
        }
        acc["time"].append(t_ratio)
        if not cuda:
            c_ratio = r["im2win"]["cpu_ms_min"] / r["torch"]["cpu_ms_min"]
            line["im2win_cpu_time_vs_torch"] = round(c_ratio, 3)
            acc["cpu"].append(c_ratio)
        peaks = [r[m]["peak_mb"] for m in METHODS]
        if all(v is not None and v >= _MIN_PEAK_MB for v in peaks):
            m_ratio = r["im2win"]["peak_mb"] / r["im2col"]["peak_mb"]
            line["im2win_peak_vs_im2col"] = round(m_ratio, 3)
            line["im2win_peak_vs_torch"] = round(r["im2win"]["peak_mb"] / r["torch"]["peak_mb"], 3)
            acc["mem"].append(m_ratio)
        elif all(v is not None for v in peaks):
            line["peak_below_resolution"] = True  # RSS deltas this small are allocator noise
        out.append(line)
    final = {
        "bench": "conv_im2win",
        "summary": "all",
        "layers": len(layers),
        "max_time_vs_torch": round(max(acc["time"]), 3),
        "geomean_time_vs_torch": round(math.exp(statistics.mean(map(math.log, acc["time"]))), 3),
    }
    if acc["cpu"]:
        final["max_cpu_time_vs_torch"] = round(max(acc["cpu"]), 3)
    if acc["mem"]:
        final["max_peak_vs_im2col"] = round(max(acc["mem"]), 3)
        final["layers_with_peak_measured"] = len(acc["mem"])
    out.append(final)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--layers", default="1-12", help="e.g. 1-12 or 1,5,9")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per layer and round")
    p.add_argument("--rounds", type=int, default=1, help="rounds of all methods; best is kept")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: leave as is)")
    p.add_argument("--backward", action="store_true", help="also time forward+backward")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--in-process", action="store_true", help="all methods in this process")
    p.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.batch < 1 or args.repeat < 1 or args.rounds < 1:
        raise SystemExit("--batch, --repeat and --rounds must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device")
    layers = _parse_layers(args.layers)
    if args.threads:
        torch.set_num_threads(args.threads)
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    if args.worker:
        for row in _measure(args.worker, args):
            print(json.dumps(row), flush=True)
        return 0

    # Each method runs in a process of its own: torch's and numba's OpenMP pools spin-wait after
    # a parallel region, so sharing a process would charge each method for the other's spinning.
    runs: Dict[tuple, List[dict]] = {}
    base = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--in-process"]
    for _ in range(args.rounds):
        for method in METHODS:
            if args.in_process:
                got = _measure(method, args)
            else:
                cmd = [sys.executable, os.path.abspath(__file__), *base, "--worker", method]
                res = subprocess.run(cmd, capture_output=True, text=True)
                if res.returncode:
                    sys.stderr.write(res.stderr)
                    raise SystemExit(f"worker for {method} failed (exit {res.returncode})")
                got = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
            for row in got:
                runs.setdefault((row["layer"], method), []).append(row)
    rows = {key: _best(v) for key, v in runs.items()}
    for layer in layers:
        for method in METHODS:
            print(json.dumps(rows[(layer, method)]), flush=True)
    for line in _summaries(rows, layers, args.device == "cuda"):
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
