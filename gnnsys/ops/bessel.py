"""Logarithms of the modified Bessel functions, ``log I_v(x)`` and ``log K_v(x)``, in log space.

Public: ``log_iv``, ``log_kv`` and the scaled ``log_ive`` (= log I - x), ``log_kve`` (= log K + x).

Why: ``I_v`` and ``K_v`` under- and overflow long before their logarithms do. SciPy's ``ive``
returns exactly 0 at (v, x) = (600, 1) and (2047, 2048), ``kv`` overflows from order ~170 at
x = 1, ``ive``/``kve`` return NaN for x > 2^30, and ``torch.special`` has orders 0 and 1 only.
Von Mises-Fisher models in high dimension (``gnnsys.ops.vmf``) need ``log I_{p/2-1}(kappa)``
for p in the thousands. Following Plesner, Sorensen and Hauberg (2024), every formula here is
evaluated in log space, re-derived from the DLMF (no port of another implementation).

Methods, per element (v >= 0 after the reflections below; x > 0 finite):

========================  ===========================  ===================================
region                    log I_v(x)                   log K_v(x)
========================  ===========================  ===================================
v >= 15                   Debye, DLMF 10.41.3          Debye, DLMF 10.41.4
v < 15, x >= max(25, v²/3) Hankel, 10.40.1             Hankel, 10.40.2
v < 15, 25 <= x < v²/3    ascending series, 10.25.2    Hankel
v < 15, x < 25            ascending series             integral 10.32.9 around its peak
========================  ===========================  ===================================

* Debye (uniform large order): ``log I = v*eta - log(2 pi v)/2 + log(p)/2 + log sum_k U_k(p)/v^k``
  and ``log K = -v*eta + log(pi/(2v))/2 + log(p)/2 + log sum_k (-1)^k U_k(p)/v^k``, with
  z = x/v, p = 1/sqrt(1+z^2), v*eta = sqrt(v^2+x^2) - v*asinh(v/x). The U_k polynomials come
  from the recurrence 10.41.10, generated exactly (rational arithmetic) at import. Terms: the
  first K with ``max_[0,1] |U_K| / v^K <= 2^-56`` (so the first omitted term is below 1/60 ulp):
  20 terms at v = 15, 9 at v = 100, 4 at v = 1e4, 3 from v = 1.1e5, 2 from v = 4.9e7
  (table ``_DEBYE_VMIN``).
  Below v = 15 more than 20 terms would be needed and the series stops converging near
  v = 10 (max |U_k| grows like k!/4.8^k), hence the threshold.
* The term ``v*eta`` is O(v) while the answer can be O(1) (log I_v(x) crosses 0 near
  x = 0.66 v): in double it would lose log2(v) bits there. For 0.1 <= x/v <= 1.5 (where
  |eta| < 0.8) it is computed in double-double: Dekker products and a double-double log
  (reduction to m in [1/sqrt2, sqrt2), then log m = log c + 2 atanh((m-c)/(m+c)) with c the
  nearest of a 92-entry table of 1 + k/128, exact decimal logs). The result keeps full relative
  accuracy for orders up to ~1e10. Outside the band the double formula loses < 2 ulp.
* Hankel (large argument): ``log I = x - log(2 pi x)/2 + log sum (-1)^k a_k(v)/x^k`` and
  ``log K = -x + log(pi/(2x))/2 + log sum a_k(v)/x^k``; a_k from a_k = a_{k-1} (4v^2-(2k-1)^2)/(8k),
  summed until a term is below 2^-56 of the sum (at most ~45 terms) or the terms start to grow.
  For v < 15 the smallest term is below 2^-60 once x >= 25 (ignored e^{-2x} part of I: < 2e-22).
  The I series alternates; its cancellation grows like exp(v^2/x), hence x >= v^2/3 (<= 75).
* Ascending series for I: ``log I = v log(x/2) - log Gamma(v+1) + log sum_k t_k``,
  t_k = t_{k-1} (x^2/4)/(k(v+k)), t_0 = 1, until t_k < 2^-56 sum and the ratio < 1/2. All terms
  are positive. Normalising by the first term is the log-sum-exp: in this region x < 75 so the
  sum is below e^75 and cannot overflow; at most ~100 terms. The prefactor
  ``v log(x/2) - log Gamma(v+1)`` is again computed in double-double (Stirling series, 9 terms,
  after shifting the argument to >= 10 with a product tree of at most 9 factors). The scaled
  form uses log(sum e^-x) so that ulp(x) does not enter.
* Integral for K (10.32.9): ``K_v(x) = 1/2 int exp(-x cosh t + v t) dt`` over the real line.
  Centred at its peak t* = asinh(v/x) it is ``exp(-v*eta) / 2 * int exp(-E(u)) du`` with
  ``E(u) = d (cosh u - 1) + v (e^u - 1 - u) >= 0``, d = sqrt(v^2+x^2) - v (both terms
  non-negative, no cancellation). The trapezoid rule on the whole line converges geometrically
  for this entire integrand: step h = min(2 pi / (27 + 5.5 sqrt(v)), 0.66 / sqrt(v^2+x^2)).
  The first bound makes the aliasing error ``2|Gamma(v + 2 pi i/h)/Gamma(v)|`` (the exact
  Fourier transform of the x -> 0 limit) below 2^-58; the second does the same for the Gaussian
  core of width (v^2+x^2)^(-1/4). Nodes are added outward until E > 45 on each side:
  25-75 nodes, up to ~270 for x ~ 1e-10 and v < 2, growing like log(1/x) as x -> 0.

Accuracy (float64; tests/test_ops_bessel.py against mpmath at 50 digits over v in [0, 1e5],
x in [1e-10, 1e6], x = v*{0.5, 0.9, 1, 1.1, 2} and both sides of every threshold above):
absolute error of the log at most ``16 eps max(1, |ref|)`` everywhere; the observed maximum is
about 2 eps for log I and log K and 5 eps for the scaled forms. float32 and float16 inputs are
computed in float64 and rounded once. The CPU path is numba (parallel over elements, serial
below 2048 of them); the GPU path (``_bessel_triton``) is the same algorithm in Triton.

Special values: x = 0 gives log I_0 = 0, log I_v = -inf (v > 0), log K_v = +inf; NaN in v or
x, or x < 0, gives NaN; x = +inf gives +inf (I) and -inf (K). K is even in v. Negative orders of
I use I_{-v} = I_v + (2/pi) sin(v pi) K_v as a signed sum of logs; where I_{-v}(x) < 0 the log is
NaN unless ``return_sign=True`` (then log|I| and the sign are returned).

Gradients (x only): d/dx log I_v = v/x + I_{v+1}/I_v and d/dx log K_v = -v/x - K_{v-1}/K_v
(= v/x - K_{v+1}/K_v by the recurrence, but without cancellation).
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Tuple, Union

import numpy as np
import torch
from numba import njit, prange

from gnnsys._checks import as_cpu_tensor

Number = Union[int, float]
TensorLike = Union[torch.Tensor, np.ndarray, Number]

# ----------------------------------------------------------------------------- region thresholds
V_DEBYE = 15.0  # v >= V_DEBYE: uniform (Debye) expansion for I and K
X_HANKEL = 25.0  # v < V_DEBYE and x >= X_HANKEL: Hankel for K (and for I if also x >= v^2/3)
HANKEL_I_V2 = 1.0 / 3.0  # Hankel for I needs x >= v^2 * HANKEL_I_V2
DEBYE_KMAX = 20  # terms needed at v = V_DEBYE = 15 (see _DEBYE_VMIN)
_TOL_EXP = -56  # series stop when a term is below 2^_TOL_EXP of the sum
DD_LO, DD_HI = 0.1, 1.5  # v*eta in double-double for DD_LO <= x/v <= DD_HI (see _v_eta)
LGAMMA_SHIFT = 10.0  # Stirling's series for log Gamma(y) is used at y >= LGAMMA_SHIFT

_LN2_HI = 0.6931471805599453
_LN2_LO = 2.3190468138462996e-17
_HLOG2PI_HI = 0.9189385332046728  # log(2 pi) / 2
_HLOG2PI_LO = -3.8782941580672414e-17
_LOG_PI = 1.1447298858494002
_SQRT_HALF = 0.7071067811865476
_TWO_PI = 6.283185307179586
_LOG_2_OVER_PI = -0.45158270528945486


def _debye_polynomials(kmax: int) -> list:
    """U_0..U_{kmax-1} of DLMF 10.41.10 as {power: Fraction}: U_{k+1}(p) = p^2 (1-p^2) U_k'(p)/2
    + 1/8 int_0^p (1 - 5 t^2) U_k(t) dt."""
    polys = [{0: Fraction(1)}]
    for _ in range(kmax - 1):
        u = polys[-1]
        nxt: dict = {}
        for n, c in u.items():
            if n:
                nxt[n + 1] = nxt.get(n + 1, 0) + c * n / 2
                nxt[n + 3] = nxt.get(n + 3, 0) - c * n / 2
            nxt[n + 1] = nxt.get(n + 1, 0) + c / (8 * (n + 1))
            nxt[n + 3] = nxt.get(n + 3, 0) - 5 * c / (8 * (n + 3))
        polys.append({n: c for n, c in nxt.items() if c})
    return polys


def _debye_coefficients(kmax: int = DEBYE_KMAX) -> np.ndarray:
    """coef[k, j] with U_k(p) = p^k sum_j coef[k, j] p^(2j), k < kmax."""
    coef = np.zeros((kmax, kmax), dtype=np.float64)
    for k, poly in enumerate(_debye_polynomials(kmax)):
        for n, c in poly.items():
            coef[k, (n - k) // 2] = float(c)
    return coef


# _DEBYE_VMIN[K]: K terms (U_0..U_{K-1}) are used when v >= _DEBYE_VMIN[K], i.e.
# (max_[0,1] |U_K| * 2^56)^(1/K), rounded up. The maxima (at p ~ 0.83 for even K, ~0.8 for odd)
# were found with mpmath (1001-point grid, then golden-section refinement); the test
# test_debye_term_table re-derives them. Evaluating the U_K in double to get them would be
# wrong: their coefficients reach 1e23 with alternating signs.
_DEBYE_VMIN = np.array(
    [
        math.inf,
        6.0048e15,
        4.8513e7,
        1.0568e5,
        6173.8,
        1083.7,
        377.85,
        173.40,
        102.62,
        67.087,
        49.557,
        38.246,
        31.607,
        26.682,
        23.503,
        20.929,
        19.174,
        17.664,
        16.604,
        15.649,
        14.968,
    ]
)


_DEBYE_COEF = _debye_coefficients()

# B_2k / (2k (2k-1)), k = 9..1: Stirling series log Gamma(y) ~ (y-1/2) log y - y + log(2 pi)/2
# + sum_k B_2k / (2k (2k-1) y^(2k-1)); at y >= 10 the next term is below 2e-19 (lgamma(10) = 12.8).
_STIRLING = (
    43867.0 / 244188.0,
    -3617.0 / 122400.0,
    1.0 / 156.0,
    -691.0 / 360360.0,
    1.0 / 1188.0,
    -1.0 / 1680.0,
    1.0 / 1260.0,
    -1.0 / 360.0,
    1.0 / 12.0,
)


def _log_table() -> np.ndarray:
    """log(1 + k/128), k = -38..53, as double-double rows (hi, lo) (exact decimal logs)."""
    rows = []
    with localcontext() as ctx:
        ctx.prec = 50
        for k in range(_LOG_K0, _LOG_K0 + 92):
            d = (Decimal(1) + Decimal(k) / Decimal(128)).ln()
            hi = float(d)
            rows.append((hi, float(d - Decimal(hi))))
    return np.array(rows, dtype=np.float64)


_LOG_K0 = -38
_LOG_TABLE = _log_table()
# 1/(n(n-1)) for the nested Taylor forms cosh u - 1 = u^2/2 (1 + u^2/12 (1 + u^2/30 (...)))
# (n = 20, 18, .., 4) and sinh u - u = u^3/6 (1 + u^2/20 (1 + u^2/42 (...))) (n = 21, .., 5)
_COSH_RECIP = tuple(1.0 / (n * (n - 1)) for n in range(20, 3, -2))
_SINH_RECIP = tuple(1.0 / (n * (n - 1)) for n in range(21, 4, -2))

_J = dict(nogil=True, cache=True, error_model="numpy")
# Outside the double-double helpers, FMA contraction is allowed (faster Horner loops, and only
# ever more accurate); the double-double helpers are compiled without it (Dekker's algorithms
# need every product rounded).
_JF = dict(_J, fastmath={"contract"})


# ----------------------------------------------------------------------------- double-double
@njit(**_J)
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(**_J)
def _fast_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


@njit(**_J)
def _two_prod(a, b):
    # Dekker: exact a*b = p + e (no FMA contraction: numba does not use fastmath here)
    p = a * b
    t = 134217729.0 * a
    ah = t - (t - a)
    al = a - ah
    t = 134217729.0 * b
    bh = t - (t - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@njit(**_J)
def _dd_add(ah, al, bh, bl):
    s, e = _two_sum(ah, bh)
    t, f = _two_sum(al, bl)
    e += t
    s, e = _fast_two_sum(s, e)
    e += f
    return _fast_two_sum(s, e)


@njit(**_J)
def _dd_mul(ah, al, bh, bl):
    p, e = _two_prod(ah, bh)
    e += ah * bl + al * bh
    return _fast_two_sum(p, e)


@njit(**_J)
def _dd_mul_d(ah, al, b):
    p, e = _two_prod(ah, b)
    e += al * b
    return _fast_two_sum(p, e)


@njit(**_J)
def _dd_div(ah, al, bh, bl):
    q1 = ah / bh
    p, e = _two_prod(q1, bh)
    r = (((ah - p) - e) + al) - q1 * bl
    return _fast_two_sum(q1, r / bh)


@njit(**_J)
def _dd_sqrt(ah, al):
    s = math.sqrt(ah)
    p, e = _two_prod(s, s)
    return _fast_two_sum(s, (((ah - p) - e) + al) / (2.0 * s))


@njit(**_J)
def _dd_log(ah, al):
    """log(ah + al) for ah > 0 finite, to ~1e-25 absolute. m = (ah + al) 2^-e in [1/sqrt2, sqrt2),
    c = 1 + k/128 the nearest table point, u = (m - c)/(m + c) (|u| < 0.0028, double-double),
    log m = log c + 2 atanh(u) with atanh(u) = u + u^3 (1/3 + u^2/5 + u^4/7 + u^6/9): that
    correction is below 7e-9, so double precision suffices for it."""
    m, ex = math.frexp(ah)
    if m < _SQRT_HALF:
        m *= 2.0
        ex -= 1
    ml = math.ldexp(al, -ex)
    idx = int((m - 1.0) * 128.0 - _LOG_K0 + 0.5)
    c = 1.0 + (idx + _LOG_K0) * 0.0078125
    nh, nl = _two_sum(m - c, ml)  # m - c is exact (Sterbenz)
    dh, dl = _two_sum(m, c)
    dh, dl = _dd_add(dh, dl, ml, 0.0)
    uh, ul = _dd_div(nh, nl, dh, dl)
    w = uh * uh
    t = uh * w * (((w * (1.0 / 9.0) + 1.0 / 7.0) * w + 0.2) * w + 1.0 / 3.0)
    sh, sl = _fast_two_sum(uh, t)
    sh, sl = _dd_add(sh, sl, ul, 0.0)
    kh, kl = _two_prod(float(ex), _LN2_HI)
    kl += ex * _LN2_LO
    kh, kl = _dd_add(kh, kl, _LOG_TABLE[idx, 0], _LOG_TABLE[idx, 1])
    return _dd_add(kh, kl, 2.0 * sh, 2.0 * sl)


# ----------------------------------------------------------------------------- building blocks
@njit(**_J)
def _v_eta(v, x, s):
    """v*eta = s - v*asinh(v/x), s = sqrt(v^2+x^2), as an unevaluated sum hi + lo (v >= 0,
    x > 0 finite).

    Near x = v the two terms cancel (v*eta crosses 0 at x = 0.66 v) and log I, log K can be
    O(1) while v is large: for DD_LO <= x/v <= DD_HI it is computed in double-double (v scaled
    to [0.5, 1), exactly). Outside that band |eta| > 0.8 and the double formula is accurate to
    ~2 ulp of the result. For x > DD_HI v the pair is (x, v^2/(s+x) - v asinh(v/x)), so that
    ``hi - x`` is exact (the scaled functions need it)."""
    if v == 0.0:
        return x, 0.0
    if x > DD_HI * v:
        return x, v * (v / (s + x)) - v * math.asinh(v / x)
    if x < DD_LO * v:
        r = v / x
        big = r > 1e300
        lr = _LN2_HI + math.log(v) - math.log(x) if big else math.asinh(r)
        return s - v * lr, 0.0
    m, ex = math.frexp(v)
    xs = math.ldexp(x, -ex)
    ah, al = _two_prod(m, m)
    bh, bl = _two_prod(xs, xs)
    ah, al = _dd_add(ah, al, bh, bl)
    sh, sl = _dd_sqrt(ah, al)
    nh, nl = _dd_add(sh, sl, m, 0.0)
    qh, ql = _dd_div(nh, nl, xs, 0.0)
    lh, ll = _dd_log(qh, ql)
    lh, ll = _dd_mul_d(lh, ll, m)
    rh, rl = _dd_add(sh, sl, -lh, -ll)
    return math.ldexp(rh, ex), math.ldexp(rl, ex)


@njit(**_J)
def _finish(hi, lo, rest, shift):
    """(hi - shift) + lo + rest with hi - shift exact (two_sum): shift = x for the scaled forms."""
    h, e = _two_sum(hi, -shift)
    return h + ((e + lo) + rest)


@njit(**_JF)
def _debye(v, x, sign, shift, coef, vmin):
    """Debye expansion: log I (sign = +1) or log K (sign = -1), v >= V_DEBYE, minus ``shift``."""
    big = max(v, x)
    small = min(v, x)
    r = small / big
    s = big * math.sqrt(1.0 + r * r)
    p = v / s
    p2 = p * p
    t = sign * p / v
    nterms = 1
    while nterms < vmin.shape[0] - 1 and v < vmin[nterms]:
        nterms += 1
    acc = 0.0
    for k in range(nterms - 1, -1, -1):
        q = 0.0
        for j in range(k, -1, -1):
            q = q * p2 + coef[k, j]
        acc = acc * t + q
    eh, el = _v_eta(v, x, s)
    lv = math.log(v)
    if sign > 0:
        rest = -0.5 * lv - _HLOG2PI_HI + 0.5 * math.log(p) + math.log(acc)
        return _finish(eh, el, rest, shift)
    rest = 0.5 * (_LOG_PI - _LN2_HI - lv) + 0.5 * math.log(p) + math.log(acc)
    return _finish(-eh, -el, rest, shift)


@njit(**_JF)
def _hankel(v, x, sign, scaled):
    """Hankel expansion: log I (sign = -1, alternating) or log K (sign = +1), x >= X_HANKEL;
    without the exponential factor e^{+-x} when ``scaled``."""
    mu = 4.0 * v * v
    t = 1.0
    acc = 1.0
    prev = 1.0
    for k in range(1, 80):
        t *= sign * (mu - (2.0 * k - 1.0) ** 2) / (8.0 * k * x)
        a = abs(t)
        if a > prev and 2.0 * k - 1.0 > 2.0 * v:  # past the smallest term of the asymptotic tail
            break
        acc += t
        prev = a
        if a <= 2.0**_TOL_EXP * abs(acc):
            break
    if sign < 0:
        rest = -0.5 * math.log(x) - _HLOG2PI_HI + math.log(acc)
        return rest if scaled else x + rest
    rest = 0.5 * (_LOG_PI - _LN2_HI - math.log(x)) + math.log(acc)
    return rest if scaled else rest - x


@njit(**_J)
def _factor(v, j, n):
    """v + j as double-double if j <= n, else 1."""
    if j <= n:
        return _two_sum(v, float(j))
    return 1.0, 0.0


@njit(**_J)
def _lgamma1p_dd(v):
    """log Gamma(1 + v) as (hi, lo) for 0 <= v < V_DEBYE: Stirling series at y = v + 1 + n >= 10
    (remainder < 2e-19), minus log((v+1)(v+2)...(v+n)), all large terms in double-double."""
    n = 0
    if v < LGAMMA_SHIFT - 1.0:
        n = int(math.ceil(LGAMMA_SHIFT - 1.0 - v))
    yh, yl = _two_sum(v, 1.0 + n)
    # (v+1)(v+2)...(v+n), n <= 9, as a product tree (shorter dependency chain than a loop)
    ah, al = _factor(v, 1, n)
    bh, bl = _factor(v, 2, n)
    p1h, p1l = _dd_mul(ah, al, bh, bl)
    ah, al = _factor(v, 3, n)
    bh, bl = _factor(v, 4, n)
    p2h, p2l = _dd_mul(ah, al, bh, bl)
    ah, al = _factor(v, 5, n)
    bh, bl = _factor(v, 6, n)
    p3h, p3l = _dd_mul(ah, al, bh, bl)
    ah, al = _factor(v, 7, n)
    bh, bl = _factor(v, 8, n)
    p4h, p4l = _dd_mul(ah, al, bh, bl)
    p1h, p1l = _dd_mul(p1h, p1l, p2h, p2l)
    p3h, p3l = _dd_mul(p3h, p3l, p4h, p4l)
    p1h, p1l = _dd_mul(p1h, p1l, p3h, p3l)
    ah, al = _factor(v, 9, n)
    ph, pl = _dd_mul(p1h, p1l, ah, al)
    lyh, lyl = _dd_log(yh, yl)
    ah, al = _dd_add(yh, yl, -0.5, 0.0)
    mh, ml = _dd_mul(ah, al, lyh, lyl)
    mh, ml = _dd_add(mh, ml, -yh, -yl)
    mh, ml = _dd_add(mh, ml, _HLOG2PI_HI, _HLOG2PI_LO)
    iy2 = 1.0 / (yh * yh)
    c = 0.0
    for b in _STIRLING:
        c = c * iy2 + b
    mh, ml = _dd_add(mh, ml, c / yh, 0.0)
    if n > 0:
        lph, lpl = _dd_log(ph, pl)
        mh, ml = _dd_add(mh, ml, -lph, -lpl)
    return mh, ml


@njit(**_JF)
def _series_i(v, x, shift):
    """Ascending series 10.25.2 for log I - shift, v < V_DEBYE and x < max(X_HANKEL, v^2/3)."""
    q = 0.25 * x * x
    t = 1.0
    acc = 1.0
    for k in range(1, 1000):
        d = k * (v + k)
        t *= q / d
        acc += t
        if t <= 2.0**_TOL_EXP * acc and q < 0.5 * d:
            break
    lh, ll = _dd_log(x, 0.0)
    lh, ll = _dd_add(lh, ll, -_LN2_HI, -_LN2_LO)
    lh, ll = _dd_mul_d(lh, ll, v)
    gh, gl = _lgamma1p_dd(v)
    lh, ll = _dd_add(lh, ll, -gh, -gl)
    # scaled: log(acc e^-x) rather than log(acc) - x, whose rounding is worth ulp(x) (x < 75)
    return _finish(lh, ll, math.log(acc * math.exp(-shift)), 0.0)


@njit(**_JF)
def _e_of_u(u, d, v):
    """E(u) = d (cosh u - 1) + v (e^u - 1 - u): Taylor series for |u| <= 1, else from exp."""
    if abs(u) <= 1.0:
        u2 = u * u
        c = 1.0
        for b in _COSH_RECIP:
            c = c * u2 * b + 1.0
        c = c * u2 * 0.5  # cosh u - 1
        o = 1.0
        for b in _SINH_RECIP:
            o = o * u2 * b + 1.0
        o = o * (1.0 / 6.0)  # (sinh u - u) / u^3
        return d * c + v * (c + o * u2 * u)
    ea = math.exp(abs(u))
    iea = 1.0 / ea
    c = 0.5 * (ea + iea) - 1.0
    m = ((ea if u > 0.0 else iea) - 1.0) - u
    dc = d * c if d > 0.0 else 0.0
    vm = v * m if v > 0.0 else 0.0
    return dc + vm


@njit(**_JF)
def _integral_k(v, x, shift):
    """log K - shift from 10.32.9 by the trapezoid rule around the peak; v < V_DEBYE,
    x < X_HANKEL."""
    big = max(v, x)
    r = min(v, x) / big
    s = big * math.sqrt(1.0 + r * r)
    d = x * (x / (s + v))
    h = min(_TWO_PI / (27.0 + 5.5 * math.sqrt(v)), 0.66 / math.sqrt(s))
    acc = 1.0
    for side in (1.0, -1.0):
        for j in range(1, 100000):
            e = _e_of_u(side * j * h, d, v)
            acc += math.exp(-e)
            if e > 45.0:
                break
    eh, el = _v_eta(v, x, s)
    return _finish(-eh, -el, math.log(0.5 * h * acc), shift)


@njit(**_J)
def _log_iv_scalar(v, x, scaled, coef, vmin):
    """log I_v(x) (log I_v(x) - x when ``scaled``) for v >= 0; callers reflect negative orders."""
    if math.isnan(v) or math.isnan(x) or x < 0.0 or v < 0.0:
        return math.nan
    if x == 0.0:
        return 0.0 if v == 0.0 else -math.inf
    if math.isinf(x):
        return math.nan if math.isinf(v) else (-math.inf if scaled else math.inf)
    if math.isinf(v):
        return -math.inf
    shift = x if scaled else 0.0
    if v >= V_DEBYE:
        return _debye(v, x, 1.0, shift, coef, vmin)
    if x >= X_HANKEL and x >= HANKEL_I_V2 * v * v:
        return _hankel(v, x, -1.0, scaled)
    return _series_i(v, x, shift)


@njit(**_J)
def _log_kv_scalar(v, x, scaled, coef, vmin):
    """log K_v(x) (log K_v(x) + x when ``scaled``) for v >= 0 (K is even in v)."""
    if math.isnan(v) or math.isnan(x) or x < 0.0 or v < 0.0:
        return math.nan
    if x == 0.0:
        return math.inf
    if math.isinf(x):
        return math.nan if math.isinf(v) else -math.inf
    if math.isinf(v):
        return math.inf
    shift = -x if scaled else 0.0
    if v >= V_DEBYE:
        return _debye(v, x, -1.0, shift, coef, vmin)
    if x >= X_HANKEL:
        return _hankel(v, x, 1.0, scaled)
    return _integral_k(v, x, shift)


@njit(nogil=True, parallel=True, cache=True, error_model="numpy")
def _log_iv_kernel(v, x, out, scaled, coef, vmin):
    for i in prange(out.shape[0]):
        out[i] = _log_iv_scalar(v[i], x[i], scaled, coef, vmin)


@njit(nogil=True, parallel=True, cache=True, error_model="numpy")
def _log_kv_kernel(v, x, out, scaled, coef, vmin):
    for i in prange(out.shape[0]):
        out[i] = _log_kv_scalar(v[i], x[i], scaled, coef, vmin)


# Serial twins for small inputs: starting the thread pool costs more than a few elements.
@njit(**_J)
def _log_iv_serial(v, x, out, scaled, coef, vmin):
    for i in range(out.shape[0]):
        out[i] = _log_iv_scalar(v[i], x[i], scaled, coef, vmin)


@njit(**_J)
def _log_kv_serial(v, x, out, scaled, coef, vmin):
    for i in range(out.shape[0]):
        out[i] = _log_kv_scalar(v[i], x[i], scaled, coef, vmin)


_PARALLEL_MIN = 2048  # elements; below this the serial kernel is faster


# ----------------------------------------------------------------------------- dispatch
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _as_tensor(name: str, value: object, like: object) -> torch.Tensor:
    """A real number becomes a float64 scalar on ``like``'s device; arrays go through the shared
    ``as_cpu_tensor`` (tensor, numpy array or sequence)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number or tensor, got a bool ({value!r})")
    if isinstance(value, (int, float, np.integer, np.floating)):
        device = like.device if isinstance(like, torch.Tensor) else None
        return torch.tensor(float(value), dtype=torch.float64, device=device)
    t = as_cpu_tensor(name, value)
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
    return t


def _prepare(v: TensorLike, x: TensorLike) -> Tuple[torch.Tensor, torch.Tensor, torch.dtype]:
    """Validate and broadcast (v, x); returns float64 tensors of one shape and the output dtype."""
    vt = _as_tensor("v", v, x)
    xt = _as_tensor("x", x, vt)
    if vt.device != xt.device:
        raise ValueError(
            f"v and x must be on one device, got v on {vt.device} and x on {xt.device}"
        )
    if vt.device.type not in ("cpu", "cuda"):
        raise ValueError(f"x must be on a cpu or cuda device, got {xt.device}")
    # the floating dtype of the array inputs (Python numbers do not promote, as in torch)
    arrays = (torch.Tensor, np.ndarray, list, tuple, range)
    floats = [
        t.dtype for t, a in ((vt, v), (xt, x)) if isinstance(a, arrays) and t.is_floating_point()
    ]
    out_dtype = floats[0] if floats else torch.get_default_dtype()
    for d in floats[1:]:
        out_dtype = torch.promote_types(out_dtype, d)
    try:
        shape = torch.broadcast_shapes(vt.shape, xt.shape)
    except RuntimeError:
        raise ValueError(
            f"v and x must broadcast, got shapes {tuple(vt.shape)} and {tuple(xt.shape)}"
        ) from None
    vt = vt.to(torch.float64).expand(shape)
    xt = xt.to(torch.float64).expand(shape)
    return vt, xt, out_dtype


def _raw(
    kind: str, v: torch.Tensor, x: torch.Tensor, scaled: bool = False, backend: str = "auto"
) -> torch.Tensor:
    """log I (kind 'i', v >= 0) or log K (kind 'k', any v), minus x (I) or plus x (K) when
    ``scaled``, on float64 tensors of one shape."""
    if kind == "k":
        v = v.abs()
    shape = v.shape
    vf = v.detach().contiguous().reshape(-1)
    xf = x.detach().contiguous().reshape(-1)
    if backend == "auto":
        backend = "triton" if vf.device.type == "cuda" else "numba"
    if backend == "triton":
        try:
            from gnnsys.ops import _bessel_triton
        except ImportError as err:  # triton is the optional extra `gpu`
            raise RuntimeError(
                "log_iv/log_kv on CUDA tensors need Triton: pip install 'gnnsys[gpu]'"
            ) from err
        out = _bessel_triton.log_bessel(kind, vf, xf, scaled)
    elif backend == "numba":
        if vf.device.type != "cpu":
            raise ValueError(f"the numba backend needs cpu tensors, got {vf.device}")
        out = torch.empty_like(xf)
        if out.numel():
            if out.numel() >= _PARALLEL_MIN:
                kernel = _log_iv_kernel if kind == "i" else _log_kv_kernel
            else:
                kernel = _log_iv_serial if kind == "i" else _log_kv_serial
            kernel(vf.numpy(), xf.numpy(), out.numpy(), scaled, _DEBYE_COEF, _DEBYE_VMIN)
    else:
        raise ValueError(f"backend must be 'auto', 'numba' or 'triton', got {backend!r}")
    return out.reshape(shape)


def _sinpi(v: torch.Tensor) -> torch.Tensor:
    """sin(pi v), exactly 0 at integers and accurate for large |v| (reduction is exact)."""
    n = torch.round(v)
    r = v - n
    odd = torch.remainder(n, 2.0) != 0
    s = torch.sin(math.pi * r)
    return torch.where(odd, -s, s)


def _log_iv_signed(
    v: torch.Tensor, x: torch.Tensor, scaled: bool, backend: str
) -> Tuple[torch.Tensor, torch.Tensor]:
    """(log |I_v(x)| [- x], sign I_v(x)) for any real v (float64 tensors of one shape).

    Negative orders: I_{-n} = I_n + (2/pi) sin(n pi) K_n (DLMF 10.27.2) as a signed sum of logs;
    scaled, the K term carries e^{-2x}."""
    av = v.abs()
    la = _raw("i", av, x, scaled, backend)
    sign = torch.ones_like(la)
    neg = v < 0
    if not bool(neg.any()):
        return la, sign
    la_n = la[neg]
    vn, xn = av[neg], x[neg]
    sn = _sinpi(vn)
    c = _LOG_2_OVER_PI + torch.log(sn.abs()) + _raw("k", vn, xn, scaled, backend)
    if scaled:
        c = c - 2.0 * xn
    c = torch.where(sn == 0, torch.full_like(c, -math.inf), c)
    plus = torch.logaddexp(la_n, c)
    big = torch.maximum(la_n, c)
    small = torch.minimum(la_n, c)
    minus = big + torch.log1p(-torch.exp(small - big))
    minus = torch.where(big == -math.inf, big, minus)
    out_n = torch.where(sn >= 0, plus, minus)
    one = torch.ones_like(c)
    s_n = torch.where((sn >= 0) | (la_n > c), one, torch.where(la_n < c, -one, torch.zeros_like(c)))
    s_n = torch.where(torch.isnan(out_n), torch.full_like(s_n, math.nan), s_n)
    la = la.clone()
    la[neg] = out_n
    sign[neg] = s_n
    return la, sign


# ----------------------------------------------------------------------------- autograd
class _LogIv(torch.autograd.Function):
    """(log|I_v(x)| [- x], sign); d/dx log|I_v| = v/x + I_{v+1}/I_v (signed ratio) [- 1]."""

    @staticmethod
    def forward(ctx, v, x, scaled, out_dtype, backend):
        la, sign = _log_iv_signed(v.to(torch.float64), x.to(torch.float64), scaled, backend)
        la = la.to(out_dtype)
        sign = sign.to(out_dtype)
        ctx.save_for_backward(v, x, la, sign)
        ctx.args = (scaled, out_dtype, backend)
        ctx.mark_non_differentiable(sign)
        return la, sign

    @staticmethod
    def backward(ctx, g, _gsign):
        v, x, la, sign = ctx.saved_tensors
        scaled = ctx.args[0]
        la1, sign1 = _LogIv.apply(v + 1.0, x, *ctx.args)
        ratio = sign * sign1 * torch.exp(la1 - la)
        ratio = torch.where(x == 0, torch.zeros_like(ratio), ratio)
        term = torch.where(v == 0, torch.zeros_like(ratio), v / x)
        grad = term + ratio - 1.0 if scaled else term + ratio
        return None, (g * grad).to(x.dtype), None, None, None


class _LogKv(torch.autograd.Function):
    """log K_v(x) [+ x]; d/dx log K_v = -|v|/x - K_{|v|-1}/K_{|v|} [+ 1]."""

    @staticmethod
    def forward(ctx, v, x, scaled, out_dtype, backend):
        out = _raw("k", v.to(torch.float64), x.to(torch.float64), scaled, backend)
        out = out.to(out_dtype)
        ctx.save_for_backward(v, x, out)
        ctx.args = (scaled, out_dtype, backend)
        return out

    @staticmethod
    def backward(ctx, g):
        v, x, out = ctx.saved_tensors
        scaled = ctx.args[0]
        av = v.abs()
        lk1 = _LogKv.apply(av - 1.0, x, *ctx.args)
        ratio = torch.exp(lk1 - out)
        term = torch.where(av == 0, torch.zeros_like(ratio), av / x)
        grad = 1.0 - (term + ratio) if scaled else -(term + ratio)
        grad = torch.where(x == 0, torch.full_like(grad, -math.inf), grad)
        return None, (g * grad).to(x.dtype), None, None, None


def _inputs(v: TensorLike, x: TensorLike) -> Tuple[torch.Tensor, torch.Tensor, torch.dtype]:
    if isinstance(v, torch.Tensor) and v.requires_grad:
        raise NotImplementedError(
            "the gradient with respect to the order v is not implemented; pass v.detach()"
        )
    vt, xt, out_dtype = _prepare(v, x)
    if isinstance(x, torch.Tensor) and x.requires_grad:
        xt = x.expand(vt.shape)  # keep the autograd link to the caller's x
    return vt, xt, out_dtype


def _log_i(v, x, scaled, return_sign, backend):
    vt, xt, out_dtype = _inputs(v, x)
    la, sign = _LogIv.apply(vt, xt, scaled, out_dtype, backend)
    if return_sign:
        return la, sign
    negative = sign < 0
    return la.masked_fill(negative, math.nan) if bool(negative.any()) else la


def log_iv(
    v: TensorLike, x: TensorLike, *, return_sign: bool = False, backend: str = "auto"
) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """``log I_v(x)``, the log of the modified Bessel function of the first kind.

    Never under- or overflows: computed in log space to near machine precision for any real
    order and any x >= 0 (method, regions and accuracy in the module docstring). ``v`` and ``x``
    broadcast; float32/float64 (float16/bfloat16 too) on CPU (numba) or CUDA (Triton); the
    result has the floating dtype of the inputs. Differentiable in ``x``.

    For v < 0, ``I_v(x)`` can be negative: the log is then NaN, unless ``return_sign=True``,
    which returns ``(log|I_v(x)|, sign)`` with sign in {-1, 0, +1}. ``backend`` ('auto',
    'numba', 'triton') is for testing; 'auto' picks by device.

    Example:
        >>> log_iv(torch.tensor([0.0, 600.0, 2047.0]), torch.tensor([1.0, 1.0, 2048.0]))
        tensor([ 2.3591e-01, -3.6582e+03,  1.0872e+03])
    """
    return _log_i(v, x, False, return_sign, backend)


def log_ive(
    v: TensorLike, x: TensorLike, *, return_sign: bool = False, backend: str = "auto"
) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """``log I_v(x) - x`` (the log of SciPy's ``ive``), without forming ``log I_v(x)``.

    Differences such as ``log I_{v+1}(x) - log I_v(x)`` keep full accuracy for large x this way
    (``log I_v(x)`` itself is ~x and its last bit is worth ulp(x)). Same conventions as
    ``log_iv``.

    Example:
        >>> log_ive(torch.tensor([0.0], dtype=torch.float64), torch.tensor([1e40], dtype=torch.float64))
        tensor([-46.9706], dtype=torch.float64)
    """
    return _log_i(v, x, True, return_sign, backend)


def log_kv(v: TensorLike, x: TensorLike, *, backend: str = "auto") -> torch.Tensor:
    """``log K_v(x)``, the log of the modified Bessel function of the second kind.

    Never under- or overflows (K is even in v; log K_v(0) = +inf). ``v`` and ``x`` broadcast;
    float32/float64 on CPU (numba) or CUDA (Triton). Differentiable in ``x``.

    Example:
        >>> log_kv(torch.tensor([0.5, 200.0]), torch.tensor([1.0, 1.0]))
        tensor([-7.7421e-01,  9.9587e+02])
    """
    vt, xt, out_dtype = _inputs(v, x)
    return _LogKv.apply(vt, xt, False, out_dtype, backend)


def log_kve(v: TensorLike, x: TensorLike, *, backend: str = "auto") -> torch.Tensor:
    """``log K_v(x) + x`` (the log of SciPy's ``kve``), without forming ``log K_v(x)``.

    Example:
        >>> log_kve(torch.tensor([0.5], dtype=torch.float64), torch.tensor([1e40], dtype=torch.float64))
        tensor([-45.8259], dtype=torch.float64)
    """
    vt, xt, out_dtype = _inputs(v, x)
    return _LogKv.apply(vt, xt, True, out_dtype, backend)
