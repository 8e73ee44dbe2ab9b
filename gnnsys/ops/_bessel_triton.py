"""Triton kernels for ``log I_v(x)`` and ``log K_v(x)`` (the GPU path of ``gnnsys.ops.bessel``).

The algorithm is the one described under "The GPU path" in ``bessel.py``'s docstring: the same
regions and Debye/Hankel expansions as the CPU path, but the Debye v*eta in double-double over
the whole band 0.1 <= x/v <= 1.5, series summed until their terms fall below 2^-56, a
double-double Stirling prefactor for the ascending series, and the trapezoid rule on DLMF
10.32.9 for K at v < 15, x < 25 (the CPU path uses Temme's series and Miller's algorithm
there). Written for blocks: each region's formula runs only when some element of the block
falls in it, and per-element loops run until every element of the block has converged, with
the finished ones masked. Everything is float64 inside.

Imported lazily (triton is the optional ``gpu`` extra); runs under ``TRITON_INTERPRET=1`` on CPU
tensors, which is how the tests check it against the numba path.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gnnsys.ops import bessel as _b

# tl.fma is Triton >= 3.0; Triton 2.x has tl.math.fma
HAS_FMA = tl.constexpr(hasattr(tl, "fma"))

BLOCK = 128

V_DEBYE = tl.constexpr(_b.V_DEBYE)
X_HANKEL = tl.constexpr(_b.X_HANKEL)
HANKEL_I_V2 = tl.constexpr(_b.HANKEL_I_V2)
KMAX = tl.constexpr(_b.DEBYE_KMAX)
TOL = tl.constexpr(2.0**_b._TOL_EXP)
LN2_HI = tl.constexpr(_b._LN2_HI)
LN2_LO = tl.constexpr(_b._LN2_LO)
HLOG2PI_HI = tl.constexpr(_b._HLOG2PI_HI)
HLOG2PI_LO = tl.constexpr(_b._HLOG2PI_LO)
LOG_PI = tl.constexpr(_b._LOG_PI)
SQRT_HALF = tl.constexpr(_b._SQRT_HALF)
TWO_PI = tl.constexpr(_b._TWO_PI)
S0 = tl.constexpr(_b._STIRLING[0])
S1 = tl.constexpr(_b._STIRLING[1])
S2 = tl.constexpr(_b._STIRLING[2])
S3 = tl.constexpr(_b._STIRLING[3])
S4 = tl.constexpr(_b._STIRLING[4])
S5 = tl.constexpr(_b._STIRLING[5])
S6 = tl.constexpr(_b._STIRLING[6])
S7 = tl.constexpr(_b._STIRLING[7])
S8 = tl.constexpr(_b._STIRLING[8])
DD_LO = tl.constexpr(_b.DD_LO)
DD_HI = tl.constexpr(_b.DD_HI)
LGAMMA_SHIFT = tl.constexpr(_b.LGAMMA_SHIFT)
LOG_K0 = tl.constexpr(_b._LOG_K0)


# ----------------------------------------------------------------------------- double-double
@triton.jit
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@triton.jit
def _fast_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


@triton.jit
def _two_prod(a, b):
    p = a * b
    if HAS_FMA:
        e = tl.fma(a, b, -p)
    else:
        e = tl.math.fma(a, b, -p)
    return p, e


@triton.jit
def _dd_add(ah, al, bh, bl):
    s, e = _two_sum(ah, bh)
    t, f = _two_sum(al, bl)
    e += t
    s, e = _fast_two_sum(s, e)
    e += f
    return _fast_two_sum(s, e)


@triton.jit
def _dd_mul(ah, al, bh, bl):
    p, e = _two_prod(ah, bh)
    e += ah * bl + al * bh
    return _fast_two_sum(p, e)


@triton.jit
def _dd_mul_d(ah, al, b):
    p, e = _two_prod(ah, b)
    e += al * b
    return _fast_two_sum(p, e)


@triton.jit
def _dd_div(ah, al, bh, bl):
    q1 = ah / bh
    p, e = _two_prod(q1, bh)
    r = (((ah - p) - e) + al) - q1 * bl
    return _fast_two_sum(q1, r / bh)


@triton.jit
def _dd_sqrt(ah, al):
    s = tl.sqrt(ah)
    p, e = _two_prod(s, s)
    return _fast_two_sum(s, (((ah - p) - e) + al) / (2.0 * s))


@triton.jit
def _pow2(n):
    """2^n for integer n in [-1022, 1023], exactly."""
    return ((n.to(tl.int64) + 1023) << 52).to(tl.float64, bitcast=True)


@triton.jit
def _ldexp(y, n):
    n1 = n // 2
    return y * _pow2(n1) * _pow2(n - n1)


@triton.jit
def _frexp(a):
    """(m, e) with a = m 2^e, m in [0.5, 1), for a > 0 finite (subnormals included)."""
    sub = a < 2.2250738585072014e-308
    a = tl.where(sub, a * 18446744073709551616.0, a)
    bits = a.to(tl.int64, bitcast=True)
    e = ((bits >> 52) & 0x7FF) - 1022
    m = ((bits & 0x000FFFFFFFFFFFFF) | 0x3FE0000000000000).to(tl.float64, bitcast=True)
    e = tl.where(sub, e - 64, e)
    return m, e.to(tl.int32)


@triton.jit
def _dd_log(ah, al, ltab_ptr):
    """log(ah + al), ah > 0 finite (see bessel._dd_log_v): table point c = 1 + k/128 plus a short
    atanh series; ltab_ptr holds log(1 + k/128), k = -38..53, as (hi, lo) pairs."""
    m, ex = _frexp(ah)
    low = m < tl.full(m.shape, SQRT_HALF, tl.float64)  # a bare constant: float32 in Triton 3.6
    m = tl.where(low, m * 2.0, m)
    ex = tl.where(low, ex - 1, ex)
    ml = _ldexp(al, -ex)
    idx = ((m - 1.0) * 128.0 - LOG_K0 + 0.5).to(tl.int32)
    c = 1.0 + (idx + LOG_K0).to(tl.float64) * 0.0078125
    nh, nl = _two_sum(m - c, ml)
    dh, dl = _two_sum(m, c)
    dh, dl = _dd_add(dh, dl, ml, 0.0)
    uh, ul = _dd_div(nh, nl, dh, dl)
    w = uh * uh
    t = uh * w * (((w * (1.0 / 9.0) + 1.0 / 7.0) * w + 0.2) * w + 1.0 / 3.0)
    sh, sl = _fast_two_sum(uh, t)
    sh, sl = _dd_add(sh, sl, ul, 0.0)
    exf = ex.to(tl.float64)
    # ln 2 as a float64 tensor, not the constexpr: Triton <= 3.6 makes a Python float argument of
    # tl.fma a float32 constant, and the two-product error term then carries ex * 1.9e-9 (the
    # H200's log I/K errors up to 1.8e-6, session 21; tests/test_triton_constants.py).
    kh, kl = _two_prod(exf, tl.full(exf.shape, LN2_HI, tl.float64))
    kl += exf * LN2_LO
    th = tl.load(ltab_ptr + 2 * idx)
    tlo = tl.load(ltab_ptr + 2 * idx + 1)
    kh, kl = _dd_add(kh, kl, th, tlo)
    return _dd_add(kh, kl, 2.0 * sh, 2.0 * sl)


# ----------------------------------------------------------------------------- building blocks
@triton.jit
def _any(mask):
    return tl.max(mask.to(tl.int32), axis=0) > 0


@triton.jit
def _asinh(r):
    """asinh(r), r >= 0 (no asinh in Triton's core): for r < 1 as 2 atanh(y), y = r/(1+sqrt(1+r^2))
    < 0.42, by its series (21 terms, y^2 < 0.172); else log(r + sqrt(r^2+1))."""
    rs = tl.minimum(r, 1.0)
    y = rs / (1.0 + tl.sqrt(1.0 + rs * rs))
    y2 = y * y
    t = y * 0.0
    for i in tl.static_range(21):
        t = t * y2 + 1.0 / (41 - 2 * i)
    small = 2.0 * y * t
    rb = tl.maximum(r, 1.0)
    large = tl.log(rb + tl.sqrt(rb * rb + 1.0))
    return tl.where(r < 1.0, small, large)


@triton.jit
def _v_eta(v, x, s, ltab_ptr):
    """v*eta = s - v*asinh(v/x) as hi + lo; v >= 0, x > 0 finite (see bessel._v_eta)."""
    vpos = tl.where(v > 0.0, v, 1.0)
    above = (x > DD_HI * v) | (v == 0.0)
    below = (x < DD_LO * v) & (v > 0.0)
    # x > DD_HI v: (x, v^2/(s+x) - v asinh(v/x))
    lo_above = v * (v / (s + x)) - v * _asinh(v / x)
    # x < DD_LO v: (s - v asinh(v/x), 0); asinh(r) = log(2r) for r > 1e300
    r = vpos / x
    rr = tl.where(r > 1e300, 1.0, r)
    lr = tl.where(r > 1e300, LN2_HI + tl.log(vpos) - tl.log(x), _asinh(rr))
    hi_below = s - v * lr
    # double-double band (v scaled to [0.5, 1)); safe inputs elsewhere
    mid = (~above) & (~below)
    vm = tl.where(mid, v, 1.0)
    xm = tl.where(mid, x, 1.0)
    m, ex = _frexp(vm)
    xs = _ldexp(xm, -ex)
    ah, al = _two_prod(m, m)
    bh, bl = _two_prod(xs, xs)
    ah, al = _dd_add(ah, al, bh, bl)
    sh, sl = _dd_sqrt(ah, al)
    nh, nl = _dd_add(sh, sl, m, 0.0)
    qh, ql = _dd_div(nh, nl, xs, 0.0)
    lh, ll = _dd_log(qh, ql, ltab_ptr)
    lh, ll = _dd_mul_d(lh, ll, m)
    rh, rl = _dd_add(sh, sl, -lh, -ll)
    hi = tl.where(mid, _ldexp(rh, ex), tl.where(above, x, hi_below))
    lo = tl.where(mid, _ldexp(rl, ex), tl.where(above & (v > 0.0), lo_above, 0.0))
    return hi, lo


@triton.jit
def _finish(hi, lo, rest, shift):
    h, e = _two_sum(hi, -shift)
    return h + ((e + lo) + rest)


@triton.jit
def _debye(v, x, sign, shift, coef_ptr, vmin_ptr, ltab_ptr):
    """Debye expansion for log I (sign = +1) or log K (sign = -1) minus ``shift``; v >= V_DEBYE."""
    big = tl.maximum(v, x)
    r = tl.minimum(v, x) / big
    s = big * tl.sqrt(1.0 + r * r)
    p = v / s
    p2 = p * p
    t = sign * p / v
    nterms = tl.full(v.shape, 1, tl.int32)
    for kk in tl.static_range(1, KMAX):
        nterms += (v < tl.load(vmin_ptr + kk)).to(tl.int32)
    kmax = tl.max(nterms, axis=0)
    acc = v * 0.0
    for i in range(0, kmax):
        k = kmax - 1 - i
        q = v * 0.0
        for jj in range(0, k + 1):
            q = q * p2 + tl.load(coef_ptr + k * KMAX + (k - jj))
        acc = tl.where(k < nterms, acc * t + q, acc)
    eh, el = _v_eta(v, x, s, ltab_ptr)
    lv = tl.log(v)
    if sign > 0:
        rest = -0.5 * lv - HLOG2PI_HI + 0.5 * tl.log(p) + tl.log(acc)
        res = _finish(eh, el, rest, shift)
    else:
        rest = 0.5 * (LOG_PI - LN2_HI - lv) + 0.5 * tl.log(p) + tl.log(acc)
        res = _finish(-eh, -el, rest, shift)
    return res


@triton.jit
def _hankel(v, x, sign, SCALED: tl.constexpr):
    """Hankel expansion for log I (sign = -1) or log K (sign = +1); x >= X_HANKEL."""
    mu = 4.0 * v * v
    t = v * 0.0 + 1.0
    acc = v * 0.0 + 1.0
    prev = v * 0.0 + 1.0
    active = v == v
    k = tl.full((), 1, tl.int32)
    while _any(active) & (k < 80):
        kf = k.to(tl.float64)
        tn = t * (sign * (mu - (2.0 * kf - 1.0) * (2.0 * kf - 1.0)) / (8.0 * kf * x))
        a = tl.abs(tn)
        grow = (a > prev) & (2.0 * kf - 1.0 > 2.0 * v)
        active = active & (~grow)
        acc = tl.where(active, acc + tn, acc)
        prev = tl.where(active, a, prev)
        t = tl.where(active, tn, t)
        active = active & (a > TOL * tl.abs(acc))
        k += 1
    if sign < 0:
        res = -0.5 * tl.log(x) - HLOG2PI_HI + tl.log(acc)
        if not SCALED:
            res = x + res
    else:
        res = 0.5 * (LOG_PI - LN2_HI - tl.log(x)) + tl.log(acc)
        if not SCALED:
            res = res - x
    return res


@triton.jit
def _factor(v, j, n):
    """v + j as double-double where j <= n, else 1."""
    fh, fl = _two_sum(v, j * 1.0)
    return tl.where(j <= n, fh, 1.0), tl.where(j <= n, fl, 0.0)


@triton.jit
def _lgamma1p_dd(v, ltab_ptr):
    """log Gamma(1+v) as (hi, lo), 0 <= v < V_DEBYE (see bessel._lgamma1p_dd)."""
    a = tl.maximum(LGAMMA_SHIFT - 1.0 - v, 0.0)
    n = a.to(tl.int32).to(tl.float64)
    n = tl.where(n < a, n + 1.0, n)  # ceil(LGAMMA_SHIFT - 1 - v), or 0
    yh, yl = _two_sum(v, 1.0 + n)
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
    lyh, lyl = _dd_log(yh, yl, ltab_ptr)
    ah, al = _dd_add(yh, yl, -0.5, 0.0)
    mh, ml = _dd_mul(ah, al, lyh, lyl)
    mh, ml = _dd_add(mh, ml, -yh, -yl)
    mh, ml = _dd_add(mh, ml, HLOG2PI_HI, HLOG2PI_LO)
    iy2 = 1.0 / (yh * yh)
    c = S0 * iy2 + S1
    c = c * iy2 + S2
    c = c * iy2 + S3
    c = c * iy2 + S4
    c = c * iy2 + S5
    c = c * iy2 + S6
    c = c * iy2 + S7
    c = c * iy2 + S8
    mh, ml = _dd_add(mh, ml, c / yh, 0.0)
    lph, lpl = _dd_log(ph, pl, ltab_ptr)
    nh, nl = _dd_add(mh, ml, -lph, -lpl)
    mh = tl.where(n > 0.0, nh, mh)
    ml = tl.where(n > 0.0, nl, ml)
    return mh, ml


@triton.jit
def _series_i(v, x, shift, ltab_ptr):
    """Ascending series for log I; v < V_DEBYE, x < max(X_HANKEL, v^2/3)."""
    q = 0.25 * x * x
    t = v * 0.0 + 1.0
    acc = v * 0.0 + 1.0
    active = v == v
    k = tl.full((), 1, tl.int32)
    while _any(active) & (k < 1000):
        kf = k.to(tl.float64)
        d = kf * (v + kf)
        tn = t * (q / d)
        accn = acc + tn
        acc = tl.where(active, accn, acc)
        t = tl.where(active, tn, t)
        active = active & ((tn > TOL * accn) | (q >= 0.5 * d))
        k += 1
    lh, ll = _dd_log(x, v * 0.0, ltab_ptr)
    lh, ll = _dd_add(lh, ll, -LN2_HI, -LN2_LO)
    lh, ll = _dd_mul_d(lh, ll, v)
    gh, gl = _lgamma1p_dd(v, ltab_ptr)
    lh, ll = _dd_add(lh, ll, -gh, -gl)
    return _finish(lh, ll, tl.log(acc * tl.exp(-shift)), 0.0)


@triton.jit
def _e_of_u(u, d, v):
    """E(u) = d (cosh u - 1) + v (e^u - 1 - u) (see bessel._e_of_u)."""
    u2 = u * u
    c = u * 0.0 + 1.0
    for i in tl.static_range(9):
        c = c * u2 * (1.0 / ((20 - 2 * i) * (19 - 2 * i))) + 1.0
    c = c * u2 * 0.5
    o = u * 0.0 + 1.0
    for i in tl.static_range(9):
        o = o * u2 * (1.0 / ((21 - 2 * i) * (20 - 2 * i))) + 1.0
    o = o * (1.0 / 6.0)
    series = d * c + v * (c + o * u2 * u)
    ea = tl.exp(tl.abs(u))
    iea = 1.0 / ea
    cb = 0.5 * (ea + iea) - 1.0
    mb = (tl.where(u > 0.0, ea, iea) - 1.0) - u
    dc = tl.where(d > 0.0, d * cb, 0.0)
    vm = tl.where(v > 0.0, v * mb, 0.0)
    return tl.where(tl.abs(u) <= 1.0, series, dc + vm)


@triton.jit
def _integral_k(v, x, shift, ltab_ptr):
    """log K by the trapezoid rule for 10.32.9 around its peak; v < V_DEBYE, x < X_HANKEL."""
    big = tl.maximum(v, x)
    r = tl.minimum(v, x) / big
    s = big * tl.sqrt(1.0 + r * r)
    d = x * (x / (s + v))
    h = tl.minimum(TWO_PI / (27.0 + 5.5 * tl.sqrt(v)), 0.66 / tl.sqrt(s))
    acc = v * 0.0 + 1.0
    for side in tl.static_range(2):
        sgn = 1.0 - 2.0 * side
        active = v == v
        j = tl.full((), 1, tl.int32)
        while _any(active) & (j < 100000):
            e = _e_of_u(sgn * j.to(tl.float64) * h, d, v)
            acc = tl.where(active, acc + tl.exp(-e), acc)
            active = active & (e <= 45.0)
            j += 1
    eh, el = _v_eta(v, x, s, ltab_ptr)
    return _finish(-eh, -el, tl.log(0.5 * h * acc), shift)


@triton.jit
def _log_bessel_kernel(
    v_ptr,
    x_ptr,
    out_ptr,
    coef_ptr,
    vmin_ptr,
    ltab_ptr,
    n,
    IS_I: tl.constexpr,
    SCALED: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
):
    offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    inb = offs < n
    v = tl.load(v_ptr + offs, mask=inb, other=20.0)
    x = tl.load(x_ptr + offs, mask=inb, other=1.0)
    nan = v * 0.0 + float("nan")
    inf = v * 0.0 + float("inf")
    bad = (v != v) | (x != x) | (x < 0.0) | (v < 0.0)
    vinf = v == float("inf")
    xinf = x == float("inf")
    xzero = x == 0.0
    if IS_I:
        res = tl.where(xzero, tl.where(v == 0.0, 0.0, -inf), nan)
        if SCALED:
            res = tl.where(xinf, tl.where(vinf, nan, -inf), res)
        else:
            res = tl.where(xinf, tl.where(vinf, nan, inf), res)
        res = tl.where(vinf & ~xinf & ~xzero, -inf, res)
    else:
        res = tl.where(xzero, inf, nan)
        res = tl.where(xinf, tl.where(vinf, nan, -inf), res)
        res = tl.where(vinf & ~xinf & ~xzero, inf, res)
    ok = inb & ~bad & ~vinf & ~xinf & ~xzero
    res = tl.where(bad, nan, res)
    if SCALED:
        if IS_I:
            shift = x
        else:
            shift = -x
    else:
        shift = x * 0.0

    deb = ok & (v >= V_DEBYE)
    if _any(deb):
        vs = tl.where(deb, v, 20.0)
        xs = tl.where(deb, x, 1.0)
        shs = tl.where(deb, shift, 0.0)
        if IS_I:
            val = _debye(vs, xs, 1.0, shs, coef_ptr, vmin_ptr, ltab_ptr)
        else:
            val = _debye(vs, xs, -1.0, shs, coef_ptr, vmin_ptr, ltab_ptr)
        res = tl.where(deb, val, res)
    if IS_I:
        han = ok & (v < V_DEBYE) & (x >= X_HANKEL) & (x >= HANKEL_I_V2 * v * v)
    else:
        han = ok & (v < V_DEBYE) & (x >= X_HANKEL)
    if _any(han):
        vs = tl.where(han, v, 0.0)
        xs = tl.where(han, x, 100.0)
        if IS_I:
            val = _hankel(vs, xs, -1.0, SCALED)
        else:
            val = _hankel(vs, xs, 1.0, SCALED)
        res = tl.where(han, val, res)
    rest = ok & (v < V_DEBYE) & ~han
    if _any(rest):
        vs = tl.where(rest, v, 1.0)
        xs = tl.where(rest, x, 1.0)
        shs = tl.where(rest, shift, 0.0)
        if IS_I:
            val = _series_i(vs, xs, shs, ltab_ptr)
        else:
            val = _integral_k(vs, xs, shs, ltab_ptr)
        res = tl.where(rest, val, res)
    tl.store(out_ptr + offs, res, mask=inb)


_TABLES: dict = {}


def _tables(device: torch.device):
    key = str(device)
    if key not in _TABLES:
        coef = torch.from_numpy(_b._DEBYE_COEF.reshape(-1).copy()).to(device)
        vmin = torch.from_numpy(_b._DEBYE_VMIN.copy()).to(device)
        ltab = torch.from_numpy(_b._LOG_TABLE.reshape(-1).copy()).to(device)
        _TABLES[key] = (coef, vmin, ltab)
    return _TABLES[key]


def log_bessel(kind: str, v: torch.Tensor, x: torch.Tensor, scaled: bool = False) -> torch.Tensor:
    """log I_v(x) (kind 'i') or log K_v(x) (kind 'k') for 1-D float64 tensors, v >= 0; minus x
    (I) or plus x (K) when ``scaled``."""
    if kind not in ("i", "k"):
        raise ValueError(f"kind must be 'i' or 'k', got {kind!r}")
    if v.dtype != torch.float64 or x.dtype != torch.float64:
        raise TypeError(f"v and x must be float64, got {v.dtype} and {x.dtype}")
    if v.shape != x.shape or v.dim() != 1:
        raise ValueError(
            f"v and x must be 1-D of one shape, got {tuple(v.shape)}, {tuple(x.shape)}"
        )
    v = v.contiguous()
    x = x.contiguous()
    out = torch.empty_like(x)
    n = out.numel()
    if n == 0:
        return out
    coef, vmin, ltab = _tables(x.device)
    grid = (triton.cdiv(n, BLOCK),)
    _log_bessel_kernel[grid](
        v,
        x,
        out,
        coef,
        vmin,
        ltab,
        n,
        IS_I=(kind == "i"),
        SCALED=bool(scaled),
        BLOCK_SIZE=BLOCK,
        enable_fp_fusion=False,  # no contracted a*b+c: the double-double steps round as numba's
    )
    return out


# True when TRITON_INTERPRET=1 was set as the kernel was defined: it then runs on CPU tensors.
INTERPRETED = not isinstance(_log_bessel_kernel, triton.runtime.jit.JITFunction)
