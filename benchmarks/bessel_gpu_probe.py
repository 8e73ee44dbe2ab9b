"""Which step of the Triton log-Bessel kernel goes wrong on a GPU: each double-double building
block and each branch, compiled, against its numba twin on the CPU.

The first H200 run found the GPU log I_v off by up to 1.8e-6 relative in the Debye and series
branches (the Hankel branch exact) while the same Triton code, interpreted on CPU tensors, agrees
with numba to a few eps. This runs every helper of ``gnnsys/ops/_bessel_triton.py`` through one
probe kernel (one compile per step) on the same inputs as the numba helpers of
``gnnsys/ops/bessel.py`` and prints, per step, the largest difference of hi + lo relative to the
reference and the input where it happens: the first step that is off is the defect.
(Session 22 found the defect without a GPU: ``tl.fma`` with a float constant, see
``tests/test_triton_constants.py``; the probe stays as the check on the next GPU run.)

Under ``TRITON_INTERPRET=1`` on CPU tensors (``--device cpu``) every step agrees (the probe's own
test); Triton 3.6's interpreter does not fuse ``tl.fma`` (its two-product error is 0), so use a
newer Triton there.

Example:
    python benchmarks/bessel_gpu_probe.py --device cuda --n 4096
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Dict, List, Tuple

import numpy as np
import torch
import triton
import triton.language as tl
from numba import njit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from gnnsys.ops import _bessel_triton as bt  # noqa: E402
from gnnsys.ops import bessel as b  # noqa: E402

STEPS = (
    "two_sum",
    "two_prod",
    "dd_add",
    "dd_mul",
    "dd_div",
    "dd_sqrt",
    "frexp_ldexp",
    "dd_log",
    "v_eta_band",
    "debye_i",
    "debye_k",
    "lgamma1p",
    "series_i",
    "log_i_kernel",
    "log_k_kernel",
)


@triton.jit
def _probe(v_ptr, x_ptr, hi_ptr, lo_ptr, coef_ptr, vmin_ptr, ltab_ptr, n, STEP: tl.constexpr):
    i = tl.program_id(0) * 128 + tl.arange(0, 128)
    m = i < n
    v = tl.load(v_ptr + i, mask=m, other=20.0)
    x = tl.load(x_ptr + i, mask=m, other=1.0)
    lo = v * 0.0
    if STEP == 0:
        hi, lo = bt._two_sum(v, x)
    elif STEP == 1:
        hi, lo = bt._two_prod(v, x)
    elif STEP == 2:
        hi, lo = bt._dd_add(v, v * 1.1e-17, -x, x * 3.1e-17)
    elif STEP == 3:
        hi, lo = bt._dd_mul(v, v * 1.1e-17, x, x * 3.1e-17)
    elif STEP == 4:
        hi, lo = bt._dd_div(v, v * 1.1e-17, x, x * 3.1e-17)
    elif STEP == 5:
        hi, lo = bt._dd_sqrt(x, x * 3.1e-17)
    elif STEP == 6:
        mm, ex = bt._frexp(x)
        hi = bt._ldexp(mm, ex) - x
    elif STEP == 7:
        hi, lo = bt._dd_log(x, x * 3.1e-17, ltab_ptr)
    elif STEP == 8:
        s = v * tl.sqrt(1.0 + (x / v) * (x / v))
        hi, lo = bt._v_eta(v, x, s, ltab_ptr)
    elif STEP == 9:
        hi = bt._debye(v, x, 1.0, x * 0.0, coef_ptr, vmin_ptr, ltab_ptr)
    elif STEP == 10:
        hi = bt._debye(v, x, -1.0, x * 0.0, coef_ptr, vmin_ptr, ltab_ptr)
    elif STEP == 11:
        hi, lo = bt._lgamma1p_dd(v, ltab_ptr)
    elif STEP == 12:
        hi = bt._series_i(v, x, x * 0.0, ltab_ptr)
    elif STEP == 13:
        hi = x * 0.0  # the whole kernel: run through log_bessel below
    else:
        hi = x * 0.0
    tl.store(hi_ptr + i, hi, mask=m)
    tl.store(lo_ptr + i, lo, mask=m)


@njit(cache=False)
def _reference(step: int, v: np.ndarray, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The numba twins of the probe's steps, element by element."""
    n = v.size
    hi = np.zeros(n)
    lo = np.zeros(n)
    for j in range(n):
        a = v[j]
        c = x[j]
        h = 0.0
        e = 0.0
        if step == 0:
            h, e = b._two_sum(a, c)
        elif step == 1:
            h, e = b._two_prod(a, c)
        elif step == 2:
            h, e = b._dd_add(a, a * 1.1e-17, -c, c * 3.1e-17)
        elif step == 3:
            h, e = b._dd_mul(a, a * 1.1e-17, c, c * 3.1e-17)
        elif step == 4:
            h, e = b._dd_div(a, a * 1.1e-17, c, c * 3.1e-17)
        elif step == 5:
            h, e = b._dd_sqrt(c, c * 3.1e-17)
        elif step == 6:
            h = 0.0
        elif step == 7:
            h, e = b._dd_log_v(c, c * 3.1e-17)
        elif step == 8:
            s = a * math.sqrt(1.0 + (c / a) * (c / a))
            h, e = b._v_eta(a, c, s)
        elif step == 9:
            h = b._debye(a, c, 1.0, 0.0, b._DEBYE_COEF, b._DEBYE_VMIN)
        elif step == 10:
            h = b._debye(a, c, -1.0, 0.0, b._DEBYE_COEF, b._DEBYE_VMIN)
        elif step == 11:
            h, e = b._lgamma1p_hl(a)
        hi[j] = h
        lo[j] = e
    return hi, lo


def inputs(step: str, n: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Inputs in each step's domain (v, x)."""
    g = np.random.default_rng(seed)
    u = g.uniform(size=n)
    v = np.exp(g.uniform(-3.0, 7.0, n))
    x = np.exp(g.uniform(-3.0, 7.0, n))
    if step == "v_eta_band":  # the double-double band DD_LO <= x/v <= DD_HI
        x = v * (b.DD_LO + (b.DD_HI - b.DD_LO) * u)
    elif step in ("debye_i", "debye_k"):
        v = b.V_DEBYE + np.exp(g.uniform(-2.0, 7.0, n))
    elif step == "lgamma1p":
        v = u * b.V_DEBYE
    elif step == "series_i":
        v = u * b.V_DEBYE
        x = np.minimum(x, 20.0)
    elif step in ("log_i_kernel", "log_k_kernel"):
        v = np.where(u < 0.5, u * 30.0, v)
    return v, x


def run_step(
    step: str, v: np.ndarray, x: np.ndarray, device: torch.device, fp_fusion: bool = False
) -> Dict:
    k = STEPS.index(step)
    vt = torch.from_numpy(v).to(device)
    xt = torch.from_numpy(x).to(device)
    if step in ("log_i_kernel", "log_k_kernel"):
        got_hi = bt.log_bessel(step[4], vt, xt).cpu().numpy()
        got_lo = np.zeros_like(got_hi)
        fn = b.log_iv if step == "log_i_kernel" else b.log_kv
        ref_hi = fn(torch.from_numpy(v), torch.from_numpy(x)).numpy()
        ref_lo = np.zeros_like(ref_hi)
    else:
        hi = torch.empty_like(xt)
        lo = torch.empty_like(xt)
        coef, vmin, ltab = bt._tables(device)
        _probe[(triton.cdiv(v.size, 128),)](
            vt, xt, hi, lo, coef, vmin, ltab, v.size, STEP=k, enable_fp_fusion=fp_fusion
        )
        got_hi, got_lo = hi.cpu().numpy(), lo.cpu().numpy()
        if step == "series_i":  # no numba twin of the series alone: the whole log I there
            ref_hi = b.log_iv(torch.from_numpy(v), torch.from_numpy(x)).numpy()
            ref_lo = np.zeros_like(ref_hi)
        else:
            ref_hi, ref_lo = _reference(k, v, x)
    got = got_hi + got_lo
    ref = ref_hi + ref_lo
    scale = np.maximum(
        np.abs(ref), 1.0 if step.endswith(("_i", "_k", "kernel", "lgamma1p")) else 1e-300
    )
    rel = np.abs(got - ref) / scale
    rel = np.where(np.isnan(got) & np.isnan(ref), 0.0, rel)
    # the low words where the reference carries one: their error relative to hi's ulp
    lo_ulps = np.abs(got_lo - ref_lo) / np.maximum(np.spacing(np.abs(ref_hi)), 1e-300)
    w = int(np.nanargmax(rel)) if np.isfinite(rel).any() else 0
    return {
        "step": step,
        "points": int(v.size),
        "max_rel": float(np.nanmax(rel)),
        "points_rel_over_1e-14": int((rel > 1e-14).sum()),
        "max_lo_error_in_hi_ulps": float(np.nanmax(lo_ulps)),
        "worst": {"v": float(v[w]), "x": float(x[w]), "got": float(got[w]), "ref": float(ref[w])},
    }


def main(argv: List[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda (compiled) or cpu (TRITON_INTERPRET=1)")
    p.add_argument("--n", type=int, default=4096, help="points per step")
    p.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset")
    p.add_argument(
        "--fp-fusion",
        type=int,
        choices=(0, 1),
        default=0,
        help="compile the probe steps with a*b+c contracted to FMAs (1) or not (0, as the kernel "
        "is compiled since session 24); the whole-kernel steps always run as shipped",
    )
    a = p.parse_args(argv)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA device"}))
        return
    if device.type == "cpu" and not bt.INTERPRETED:
        raise SystemExit("--device cpu needs TRITON_INTERPRET=1 (set before Triton is imported)")
    info = {"triton": triton.__version__, "torch": torch.__version__, "device": str(device),
            "fp_fusion": bool(a.fp_fusion)}  # fmt: skip
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    print(json.dumps({"probe": "bessel", **info}), flush=True)
    for step in a.steps.split(","):
        if step not in STEPS:
            raise SystemExit(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
        v, x = inputs(step, a.n)
        print(json.dumps(run_step(step, v, x, device, bool(a.fp_fusion))), flush=True)


if __name__ == "__main__":
    main()
