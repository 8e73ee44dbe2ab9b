"""Speed and accuracy of gnnsys.ops.bessel against SciPy, measured in the same run.

SciPy peer: ``log(ive(v, x)) + x`` for log I and ``log(kve(v, x)) - x`` for log K (the most
robust SciPy forms; ``iv``/``kv`` over- and underflow much earlier). SciPy's ufuncs run on one
thread, so gnnsys is timed with numba's default thread count and with one thread.

Accuracy: absolute error of the log in units of eps * max(1, |ref|) on a random subsample,
against mpmath at 50 digits (the references of tests/data/make_bessel_ref.py). Points where
SciPy returns a non-finite value for a finite reference count as SciPy failures (they are left
out of SciPy's error statistics).

Prints one JSON object per line: the machine (CPU count, numba threads, load average: other
processes slow the threaded runs most), one row per function and distribution and implementation,
then a summary row per distribution and one over all ("dist": "all"; total times of the
functions, speedup = SciPy's time / gnnsys's, with gnnsys on all numba threads and on one).

``--device cuda`` adds the Triton kernels on the GPU (inputs already on the device, timed to a
synchronisation; the first call compiles) against SciPy and against the numba CPU kernels on
all threads (the one-thread run is skipped), with the GPU results in the accuracy check.
Without mpmath (the accuracy references) the accuracy rows are skipped with a message.
Example (short run):
    python benchmarks/bessel_speed.py --n 100000 --repeat 2 --sub 20
    python benchmarks/bessel_speed.py --device cuda --n 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numba
import numpy as np
import torch
from scipy import special

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "data"))

from gnnsys.ops.bessel import log_iv, log_kv  # noqa: E402

EPS = 2.0**-52


def points(dist: str, n: int, rng: np.random.Generator):
    """(v, x) float64 arrays. 'mixed': v = 10^U(-2, 4), x = 10^U(-3, 5) (every region);
    'small': v ~ U(0, 15), x ~ U(0, 50) (series / integral / Hankel: gnnsys's slowest);
    'large': v = 10^U(1.2, 4), x = v 10^U(-1, 1) (the Debye region around x ~ v, as in vMF)."""
    if dist == "mixed":
        return 10 ** rng.uniform(-2, 4, n), 10 ** rng.uniform(-3, 5, n)
    if dist == "small":
        return rng.uniform(0, 15, n), rng.uniform(0, 50, n)
    if dist == "large":
        v = 10 ** rng.uniform(1.2, 4, n)
        return v, v * 10 ** rng.uniform(-1, 1, n)
    raise SystemExit(f"unknown --dist {dist!r} (mixed, small, large)")


def scipy_log(fn: str, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        if fn == "log_iv":
            return np.log(special.ive(v, x)) + x
        return np.log(special.kve(v, x)) - x


def gnnsys_log(fn: str, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    f = log_iv if fn == "log_iv" else log_kv
    return f(torch.from_numpy(v), torch.from_numpy(x)).numpy()


def gnnsys_log_device(fn: str, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The kernels on ``v``'s device (on CUDA the Triton kernel itself: 'auto' would route CUDA
    tensors to the CPU kernels while the GPU kernel is not accurate); returns once the result is
    complete (synchronised)."""
    f = log_iv if fn == "log_iv" else log_kv
    out = f(v, x, backend="triton" if v.is_cuda else "auto")
    if out.is_cuda:
        torch.cuda.synchronize(out.device)
    return out


def best_time(repeat: int, call, *args) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        call(*args)
        best = min(best, time.perf_counter() - t)
    return best


def reference(fn: str, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    import make_bessel_ref as ref  # mpmath, 50 digits

    f = ref.log_iv_mp if fn == "log_iv" else ref.log_kv_mp
    return np.array([float(f(a, b)) for a, b in zip(v, x)])


def emit(**row) -> None:
    print(json.dumps(row), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="points per distribution")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs (best is reported)")
    ap.add_argument("--dist", default="mixed,small,large", help="comma list: mixed, small, large")
    ap.add_argument("--fns", default="log_iv,log_kv", help="comma list: log_iv, log_kv")
    ap.add_argument("--sub", type=int, default=40, help="accuracy subsample size (0: skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: add the Triton kernels on the GPU (vs SciPy and the numba CPU kernels)",
    )
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        emit(bench="bessel_speed", device="cuda", error="CUDA is not available")
        return 2
    if args.sub > 0:
        try:
            import mpmath  # noqa: F401  (the accuracy references)
        except ImportError:
            emit(bench="bessel_speed", note="mpmath is not installed: accuracy rows skipped")
            args.sub = 0
    threads = numba.get_num_threads()
    rng = np.random.default_rng(args.seed)
    # other processes on the machine slow the threaded runs most: say how busy it was
    emit(
        bench="bessel_speed",
        machine=dict(cpus=os.cpu_count(), numba_threads=threads, loadavg_1min=os.getloadavg()[0]),
    )
    totals: dict = {}  # dist -> [scipy s, gnnsys s, gnnsys 1-thread s, worst err, scipy worst]
    for dist in args.dist.split(","):
        v, x = points(dist, args.n, rng)
        for fn in args.fns.split(","):
            gnnsys_log(fn, v[:4096], x[:4096])  # load / compile the kernels
            gnnsys_log(fn, v[: 4 * 16384], x[: 4 * 16384])  # start the threads
            t_scipy = best_time(args.repeat, scipy_log, fn, v, x)
            t_ours = best_time(args.repeat, gnnsys_log, fn, v, x)
            if dev.type == "cuda":
                t_ours1 = float("nan")  # the GPU run takes its time instead
            else:
                numba.set_num_threads(1)
                t_ours1 = best_time(args.repeat, gnnsys_log, fn, v, x)
                numba.set_num_threads(threads)
            ours, theirs = gnnsys_log(fn, v, x), scipy_log(fn, v, x)
            tot = totals.setdefault(dist, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
            tot[0] += t_scipy
            tot[1] += t_ours
            tot[2] += t_ours1
            common = dict(bench="bessel_speed", fn=fn, dist=dist, n=args.n)
            gpu = None
            if dev.type == "cuda":
                vd, xd = torch.from_numpy(v).to(dev), torch.from_numpy(x).to(dev)
                t_c = time.perf_counter()
                gnnsys_log_device(fn, vd[:4096], xd[:4096])  # compile (or load from the cache)
                emit(**common, impl="gnnsys_triton", phase="first_call",
                     seconds=time.perf_counter() - t_c)  # fmt: skip
                t_gpu = best_time(args.repeat, gnnsys_log_device, fn, vd, xd)
                gpu = gnnsys_log_device(fn, vd, xd).cpu().numpy()
                tot[5] += t_gpu
                emit(
                    **common,
                    impl="gnnsys_triton",
                    device=torch.cuda.get_device_name(dev),
                    seconds=t_gpu,
                    mpts_per_s=args.n / t_gpu / 1e6,
                    speedup_vs_scipy=t_scipy / t_gpu,
                    speedup_vs_numba_cpu=t_ours / t_gpu,
                    nonfinite=int((~np.isfinite(gpu)).sum()),
                    max_abs_diff_vs_numba=float(np.nanmax(np.abs(gpu - ours))),
                )
            emit(
                **common,
                impl="scipy",
                threads=1,
                seconds=t_scipy,
                mpts_per_s=args.n / t_scipy / 1e6,
                nonfinite=int((~np.isfinite(theirs)).sum()),
            )
            emit(
                **common,
                impl="gnnsys",
                threads=threads,
                seconds=t_ours,
                mpts_per_s=args.n / t_ours / 1e6,
                speedup_vs_scipy=t_scipy / t_ours,
                nonfinite=int((~np.isfinite(ours)).sum()),
            )
            if dev.type == "cpu":
                emit(
                    **common,
                    impl="gnnsys",
                    threads=1,
                    seconds=t_ours1,
                    mpts_per_s=args.n / t_ours1 / 1e6,
                    speedup_vs_scipy=t_scipy / t_ours1,
                )
            if args.sub > 0:
                idx = rng.choice(args.n, size=min(args.sub, args.n), replace=False)
                want = reference(fn, v[idx], x[idx])
                scale = EPS * np.maximum(1.0, np.abs(want))
                e_ours = np.abs(ours[idx] - want) / scale
                ok = np.isfinite(theirs[idx])
                e_scipy = np.abs(theirs[idx][ok] - want[ok]) / scale[ok]
                fails_ours = int((~np.isfinite(ours[idx])).sum())
                rows = [("gnnsys", e_ours, fails_ours), ("scipy", e_scipy, int((~ok).sum()))]
                if gpu is not None:
                    e_gpu = np.abs(gpu[idx] - want) / scale
                    rows.append(("gnnsys_triton", e_gpu, int((~np.isfinite(gpu[idx])).sum())))
                for impl, e, fails in rows:
                    emit(
                        **common,
                        impl=impl,
                        accuracy_points=int(idx.size),
                        max_err_eps=float(e.max()) if e.size else None,
                        median_err_eps=float(np.median(e)) if e.size else None,
                        failures=fails,
                    )
                tot[3] = max(tot[3], float(e_ours.max()))
                tot[4] = max(tot[4], float(e_scipy.max()) if e_scipy.size else 0.0)
    # per distribution (log_iv and log_kv together: total time) and over all of them
    rows = list(totals.items())
    if len(rows) > 1:
        tot_all = [sum(t[i] for t in totals.values()) for i in range(6)]
        tot_all[3] = max(t[3] for t in totals.values())
        tot_all[4] = max(t[4] for t in totals.values())
        rows.append(("all", tot_all))
    for dist, (t_s, t_o, t_o1, err, err_s, t_gpu) in rows:
        row = dict(
            bench="bessel_speed",
            fn=args.fns,
            dist=dist,
            n=args.n,
            summary=True,
            scipy_seconds=t_s,
            gnnsys_seconds=t_o,
            speedup_vs_scipy=t_s / t_o,
            threads=threads,
            max_err_eps=err if args.sub > 0 else None,
            scipy_max_err_eps=err_s if args.sub > 0 else None,
        )
        if dev.type == "cuda":
            row.update(
                gnnsys_triton_seconds=t_gpu,
                triton_speedup_vs_scipy=t_s / t_gpu,
                triton_speedup_vs_numba_cpu=t_o / t_gpu,
            )
        else:
            row.update(gnnsys_1thread_seconds=t_o1, speedup_vs_scipy_1thread=t_s / t_o1)
        emit(**row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
