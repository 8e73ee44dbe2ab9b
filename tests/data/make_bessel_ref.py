"""Generate tests/data/bessel_ref.npz: log I_v(x), log K_v(x) (and log I_v(x) - x, log K_v(x) + x)
at 50 digits with mpmath, rounded to float64.

Run once (about 20 minutes on 2 idle cores): ``python tests/data/make_bessel_ref.py``; with
``--incremental`` only the points not yet in the stored file are computed (after adding
thresholds). The tests read the stored file and never recompute it.

The references are computed from the definitions, independently of gnnsys's double-precision
algorithms:

* log I_v(x): the ascending series (DLMF 10.25.2), summed outward from its largest term
  (found from k(v+k) = x^2/4) until the terms fall below 1e-60 of the sum, at 70 digits.
* log K_v(x): DLMF 10.32.9, K_v(x) = 1/2 int exp(-x cosh t + v t) dt, by mpmath's tanh-sinh
  quadrature at 70 digits, split at the peak and at the points where the integrand has fallen
  by e^-0.5 .. e^-170 (beyond the last one it is below 1e-74 of the peak).
* negative orders: log|I_{-v}(x)| and its sign from I_{-v} = I_v + (2/pi) sin(v pi) K_v,
  evaluated at 70 digits.

Checks run here (the script fails if one does not hold): agreement with mpmath's own besseli /
besselk on a subset where those are fast, and the Wronskian I_v K_{v+1} + I_{v+1} K_v = 1/x on
another subset, both to 1e-40 relative.

The grid: v in {0} and 30 log-spaced orders in [1e-3, 1e5] (plus half-integers and orders on
both sides of every Debye term-count boundary), x in 30 log-spaced values in [1e-10, 1e6], and
for each v the points x = v*{0.5, 0.9, 1, 1.1, 2} and both sides (``nextafter``) of each region
threshold: v = 15, x = 25, x = v^2/3, x/v = 0.1 and 1.5 (the double-double band), v = 9 (the
log Gamma shift of the GPU path's series), and those of the CPU path (``cpu_threshold_points``:
x = 1, the term-count classes, half-integer orders, x = 2^-400, and the x where |log I| or
|log K| = v/32). Most points are float32-exact (``f32`` flag), so the same references test
float32 inputs.
"""

from __future__ import annotations

import math
import multiprocessing as mproc
import os
import random
import sys

import mpmath as mp
import numpy as np

DPS = 50
WORK = DPS + 20
HERE = os.path.dirname(os.path.abspath(__file__))


def log_iv_mp(v, x):
    """log I_v(x), v >= 0, x > 0: the ascending series summed outward from its peak term."""
    with mp.workdps(WORK):
        v = mp.mpf(v)
        x = mp.mpf(x)
        q = x * x / 4
        kpk = int(mp.floor((mp.sqrt(v * v + x * x) - v) / 2))
        lt = 2 * kpk * mp.log(x / 2) - mp.loggamma(kpk + 1) - mp.loggamma(v + kpk + 1)
        tol = mp.mpf(10) ** (-(DPS + 10))
        total = mp.mpf(1)
        t = mp.mpf(1)
        k = kpk
        while True:
            t = t * q / ((k + 1) * (v + k + 1))
            k += 1
            total += t
            if t < tol * total:
                break
        t = mp.mpf(1)
        k = kpk
        while k > 0:
            t = t * (k * (v + k)) / q
            k -= 1
            total += t
            if t < tol * total:
                break
        return v * mp.log(x / 2) + lt + mp.log(total)


def log_kv_mp(v, x):
    """log K_v(x), v >= 0, x > 0: K = exp(-v eta)/2 int exp(-E(u)) du, E(u) = -x cosh(t*+u)
    + v (t*+u) + v eta, t* = asinh(v/x) the peak (DLMF 10.32.9)."""
    with mp.workdps(WORK):
        v = mp.mpf(v)
        x = mp.mpf(x)
        s = mp.sqrt(v * v + x * x)
        veta = s - v * mp.asinh(v / x)

        def energy(u):
            return s * (mp.cosh(u) - 1) + v * (mp.sinh(u) - u)

        def edge(sign, level):
            lo, hi = mp.mpf(0), mp.mpf(1) / 64
            while energy(sign * hi) < level:
                hi *= 2
            for _ in range(60):
                mid = (lo + hi) / 2
                if energy(sign * mid) < level:
                    lo = mid
                else:
                    hi = mid
            return sign * hi

        levels = (0.5, 3, 12, 40, 170)
        pts = sorted({edge(-1, lv) for lv in levels} | {mp.mpf(0)} | {edge(1, lv) for lv in levels})
        val = mp.quad(lambda u: mp.exp(-energy(u)), pts)
        return -veta + mp.log(val / 2)


def log_iv_neg_mp(v, x):
    """(log|I_v(x)|, sign) for v < 0 from I_{-n} = I_n + (2/pi) sin(n pi) K_n, n = -v."""
    with mp.workdps(WORK):
        n = -mp.mpf(v)
        val = mp.exp(log_iv_mp(n, x)) + 2 / mp.pi * mp.sinpi(n) * mp.exp(log_kv_mp(n, x))
        return mp.log(abs(val)), int(mp.sign(val))


def _job(args):
    kind, v, x = args
    if kind == "neg":
        la, sg = log_iv_neg_mp(v, x)
        return float(la), float(sg)
    li, lk = log_iv_mp(v, x), log_kv_mp(v, x)
    with mp.workdps(WORK):
        return float(li), float(lk), float(li - mp.mpf(x)), float(lk + mp.mpf(x))


def thresholds():
    sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
    from gnnsys.ops import bessel

    vmin = [float(b) for b in bessel._DEBYE_VMIN[1:] if bessel.V_DEBYE <= b <= 1e9]
    return bessel, vmin


def f32(a):
    return float(np.float32(a))


def dd_crossings(bessel, v):
    """x where log I_v(x) or log K_v(x) equals +-DD_FRAC v (the switch to double-double of the
    CPU path's Debye v*eta), found by bisection on gnnsys's own values; both sides."""
    import torch

    up = lambda a: float(np.nextafter(a, np.inf))  # noqa: E731
    pts = []
    for fn in (bessel.log_iv, bessel.log_kv):

        def f(x, fn=fn):
            t = torch.tensor([x], dtype=torch.float64)
            return float(fn(torch.tensor([v], dtype=torch.float64), t)[0])

        for target in (-bessel.DD_FRAC * v, bessel.DD_FRAC * v):
            lo, hi = bessel.DD_LO * v, bessel.DD_HI * v
            flo, fhi = f(lo) - target, f(hi) - target
            if flo * fhi > 0:
                continue
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                if mid in (lo, hi):
                    break
                fm = f(mid) - target
                if (fm > 0) == (flo > 0):
                    lo, flo = mid, fm
                else:
                    hi = mid
            pts += [(v, lo, False), (v, up(lo), False)]
    return pts


def cpu_threshold_points(bessel):
    """Both sides of the thresholds of the CPU path: X_TEMME, the classes of Miller's, Temme's,
    the series' and Hankel's term counts, half-integer orders (where mu = v - round(v) jumps
    from 1/2 to -1/2), the extreme-argument switch of Debye and the double-double switch."""
    up = lambda a: float(np.nextafter(a, np.inf))  # noqa: E731
    down = lambda a: float(np.nextafter(a, -np.inf))  # noqa: E731
    pts = []

    def both(v, b):
        return [(v, down(b), False), (v, b, False)]

    small_v = (0.0, 0.3, down(0.5), 0.5, 1.0, 2.7, 7.5, 11.2, 14.9)
    for v in small_v:
        pts += both(v, bessel.X_TEMME)
        for b in (1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0):  # Miller's classes
            pts += both(v, b)
        for e in bessel._TEM_T:
            pts += both(v, 2.0 ** int(e))
        for e in bessel._SER_T:
            pts += both(v, 2.0 ** int(e))
        for e in bessel._HANK_T:
            pts += both(v, 2.0 ** int(e))
    for k in range(15):  # mu jumps at half-integers
        b = k + 0.5
        for x in (1e-9, 0.3, 0.99, 1.7, 7.0, 22.0, 40.0):
            pts += [(down(b), x, False), (b, x, False), (up(b), x, False)]
    for v in (20.0, 1e3):  # Debye: the vectorised formulas within [2^-400, 2^400]
        pts += both(v, 2.0**-400) + [(v, up(2.0**-400), False)]
    for v in (15.5, 20.0, 100.0, 1e3, 1e4, 1e5):
        pts += dd_crossings(bessel, v)
    return pts


def build_grid():
    bessel, vmin = thresholds()
    vdebye = bessel.V_DEBYE
    up = lambda a: float(np.nextafter(a, np.inf))  # noqa: E731
    down = lambda a: float(np.nextafter(a, -np.inf))  # noqa: E731
    vs = [0.0] + [f32(a) for a in np.logspace(-3, 5, 30)]
    vs += [0.5, 1.0, 1.5, 2.5, 7.5, 10.0, 12.5, 14.5]
    lg = bessel.LGAMMA_SHIFT - 1.0  # the series' log Gamma shifts its argument below this v
    vs_f64 = [down(vdebye), vdebye, up(vdebye), down(lg), up(lg)]
    for b in vmin:
        vs_f64 += [down(b), up(b)]
    xs = [f32(a) for a in np.logspace(-10, 6, 30)]
    pts = []  # (v, x, f32_exact)
    for v in vs:
        for x in xs:
            pts.append((v, x, True))
    for v in vs + vs_f64:
        exact = v in vs
        if v > 0:
            for z in (0.5, 0.9, 1.0, 1.1, 2.0):
                pts.append((v, f32(v * z) if exact else v * z, exact))
            for z in (bessel.DD_LO, bessel.DD_HI):  # the double-double band of v*eta
                b = v * z
                pts += [(v, down(b), False), (v, b, False), (v, up(b), False)]
    for v in vs_f64:
        for x in (1e-10, 0.7, 25.0, 1e3, 1e6):
            pts.append((v, x, False))
    # x = X_HANKEL (v < V_DEBYE) and x = v^2/3 (where that is above X_HANKEL), both sides
    for v in [0.0, 0.3, 1.0, 3.5, 8.0, 8.66, 9.0, 11.0, 13.7, 14.9, down(vdebye)]:
        for b in (bessel.X_HANKEL, v * v * bessel.HANKEL_I_V2):
            if b >= bessel.X_HANKEL:
                pts += [(v, down(b), False), (v, b, False), (v, up(b), False)]
    pts += cpu_threshold_points(bessel)
    seen = set()
    out = []
    for p in pts:
        if (p[0], p[1]) not in seen and p[1] > 0:
            seen.add((p[0], p[1]))
            out.append(p)
    neg = []
    for v in (-0.25, -0.5, -1.0, -1.5, -2.3, -7.7, -14.9, -15.1, -20.5, -100.25):
        for x in (1e-3, 0.5, 3.0, 10.0, 30.0, 100.0):
            neg.append((v, x))
    return out, neg


def crosscheck(pts, rng):
    """mpmath's besseli/besselk where they are fast, and the Wronskian, to 1e-40."""
    worst = 0.0
    cheap = [p for p in pts if p[0] <= 20 and 1e-3 <= p[1] <= 50]
    for v, x, _ in rng.sample(cheap, min(30, len(cheap))):
        with mp.workdps(WORK):
            ri = mp.log(mp.besseli(mp.mpf(v), mp.mpf(x)))
            rk = mp.log(mp.besselk(mp.mpf(v), mp.mpf(x)))
            worst = max(worst, abs(ri - log_iv_mp(v, x)) / max(1, abs(ri)))
            worst = max(worst, abs(rk - log_kv_mp(v, x)) / max(1, abs(rk)))
    for v, x, _ in rng.sample(pts, 30):
        with mp.workdps(WORK):
            v1 = mp.mpf(v) + 1
            w = x * (
                mp.exp(log_iv_mp(v, x) + log_kv_mp(v1, x))
                + mp.exp(log_iv_mp(v1, x) + log_kv_mp(v, x))
            )
            worst = max(worst, abs(w - 1))
    return float(worst)


def load_known(path):
    """The values already in the fixture, by job ((kind, v, x) -> result); --incremental
    computes only the points that are not (same code and precision, so the same values)."""
    if not os.path.exists(path):
        return {}
    d = np.load(path)
    known = {}
    for i, (v, x) in enumerate(zip(d["v"], d["x"])):
        known[("pos", float(v), float(x))] = (
            float(d["log_i"][i]),
            float(d["log_k"][i]),
            float(d["log_ie"][i]),
            float(d["log_ke"][i]),
        )
    for i, (v, x) in enumerate(zip(d["neg_v"], d["neg_x"])):
        known[("neg", float(v), float(x))] = (
            float(d["neg_log_abs_i"][i]),
            float(d["neg_sign_i"][i]),
        )
    return known


def main():
    mp.mp.dps = DPS
    pts, neg = build_grid()
    worst = crosscheck(pts, random.Random(0))
    print(f"cross-check worst relative difference: {worst:.2e}", flush=True)
    if not worst < 1e-40:
        raise SystemExit("reference cross-check failed")
    jobs = [("pos", v, x) for v, x, _ in pts] + [("neg", v, x) for v, x in neg]
    out = os.path.join(HERE, "bessel_ref.npz")
    known = load_known(out) if "--incremental" in sys.argv else {}
    todo = [j for j in jobs if j not in known]
    print(f"{len(jobs)} points, {len(jobs) - len(todo)} already in {out}", flush=True)
    with mproc.Pool(int(os.environ.get("JOBS", os.cpu_count() or 1))) as pool:
        done = dict(zip(todo, pool.map(_job, todo, chunksize=8)))
    res = [known[j] if j in known else done[j] for j in jobs]
    n = len(pts)
    np.savez_compressed(
        out,
        v=np.array([p[0] for p in pts]),
        x=np.array([p[1] for p in pts]),
        f32=np.array([p[2] for p in pts]),
        log_i=np.array([r[0] for r in res[:n]]),
        log_k=np.array([r[1] for r in res[:n]]),
        log_ie=np.array([r[2] for r in res[:n]]),
        log_ke=np.array([r[3] for r in res[:n]]),
        neg_v=np.array([p[0] for p in neg]),
        neg_x=np.array([p[1] for p in neg]),
        neg_log_abs_i=np.array([r[0] for r in res[n:]]),
        neg_sign_i=np.array([r[1] for r in res[n:]]),
        digits=np.array(DPS),
    )
    print(f"wrote {out}: {n} points, {len(neg)} negative orders", flush=True)
    assert math.isfinite(worst)


if __name__ == "__main__":
    main()
