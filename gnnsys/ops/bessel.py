"""Logarithms of the modified Bessel functions, ``log I_v(x)`` and ``log K_v(x)``, in log space.

Public: ``log_iv``, ``log_kv`` and the scaled ``log_ive`` (= log I - x), ``log_kve`` (= log K + x).

Why: ``I_v`` and ``K_v`` under- and overflow long before their logarithms do. SciPy's ``ive``
returns exactly 0 at (v, x) = (600, 1) and (2047, 2048), ``kv`` overflows from order ~170 at
x = 1, ``ive``/``kve`` return NaN for x > 2^30, and ``torch.special`` has orders 0 and 1 only.
Von Mises-Fisher models in high dimension (``gnnsys.ops.vmf``) need ``log I_{p/2-1}(kappa)``
for p in the thousands. Following Plesner, Sorensen and Hauberg (2024), every formula here is
evaluated in log space, re-derived from the DLMF (no port of another implementation).

Methods, per element (v >= 0 after the reflections below; x > 0 finite), CPU path:

========================== =============================  =================================
region                     log I_v(x)                     log K_v(x)
========================== =============================  =================================
v >= 15                    Debye, DLMF 10.41.3            Debye, DLMF 10.41.4
v < 15, x >= max(25, v²/3) Hankel, 10.40.1                Hankel, 10.40.2
v < 15, 25 <= x < v²/3     ascending series, 10.25.2      Hankel
v < 15, 1 <= x < 25        ascending series               Miller + Temme's sum, recurrence
v < 15, x < 1              ascending series               Temme's series, recurrence
========================== =============================  =================================

* Debye (uniform large order): ``log I = v*eta - log(2 pi v)/2 + log(p)/2 + log sum_k U_k(p)/v^k``
  and ``log K = -v*eta + log(pi/(2v))/2 + log(p)/2 + log sum_k (-1)^k U_k(p)/v^k``, with
  z = x/v, p = 1/sqrt(1+z^2), v*eta = sqrt(v^2+x^2) - v*asinh(v/x). The U_k polynomials come
  from the recurrence 10.41.10, generated exactly (rational arithmetic) at import. Terms: K with
  ``max_[0,1] |U_K| / v^K <= 2^-56`` (the first omitted term is below 1/60 ulp; table
  ``_DEBYE_VMIN``), taken from the classes 20, 14, 10, 7, 5, 4, 3, 2 (20 terms from v = 15,
  14 from 23.5, 10 from 49.6, 7 from 173, 5 from 1084, 4 from 6174, 3 from 1.06e5, 2 from
  4.85e7: more terms than needed never hurt, the series still decreases there). Below v = 15
  more than 20 terms would be needed and the series stops converging near v = 10 (max |U_k|
  grows like k!/4.8^k), hence the threshold. The sum's logarithm and those of p and v are one
  log: ``log(sum / sqrt(sqrt(v^2+x^2)))``.
* The term ``v*eta`` is O(v) while the answer can be O(1) (log I_v(x) crosses 0 near
  x = 0.66 v). For x <= 1.5 v it is ``s - v log((v + s)/x)`` with s = sqrt(v^2+x^2) and every
  large part an unevaluated sum hi + lo (exact products by fma, s with one Newton correction, a
  log accurate to 2^-55.5 relative, ``_log_hl``): measured error below 0.03 v eps. Where even that
  is too much, 0.1 <= x/v <= 1.5 and |log I| (|log K|) < v/32 (``DD_FRAC``), v*eta is redone in
  double-double (a double-double log: m in [1/sqrt2, sqrt2), log m = log c + 2 atanh((m-c)/(m+c))
  with c the nearest of a 92-entry table of 1 + k/128, exact decimal logs): full relative
  accuracy for orders up to ~1e10. For x > 1.5 v the pair is (x, v (rho - asinh(v/x))),
  rho = v/(x+s), so that the scaled forms subtract x exactly. Orders or arguments outside
  [2^-400, 2^400] take the scalar Debye code of the GPU path (below), whose formulas avoid
  overflow there.
* Hankel (large argument): ``log I = x - log(2 pi x)/2 + log sum (-1)^k a_k(v)/x^k`` and
  ``log K = -x + log(pi/(2x))/2 + log sum a_k(v)/x^k``, a_k/a_{k-1} = (4v^2-(2k-1)^2)/(8k),
  in Horner form with a fixed number of terms: 32 for x < 64, 24 below 128, 16 below 4096,
  8 beyond. For v < 15 the first omitted term is then below 2^-60, and the terms still
  decrease (they do up to k ~ 2x; ignored e^{-2x} part of I: < 2e-22). The I series
  alternates; its cancellation grows like exp(v^2/x), hence x >= v^2/3 (<= 75), where its sum
  stays above 1/5.
* Ascending series for I: ``log I = v log(x/2) - log Gamma(v+1) + log sum_k t_k``,
  t_k = t_{k-1} (x^2/4)/(k(v+k)), t_0 = 1, all positive; the number of terms by the binary
  exponent of x (the tail below 2^-58 of the sum at v = 0 and the top of the octave: none
  below x = 2^-28, 11 below 2, 30 below 16, 80 below 75), four per division (so rounded up to
  a multiple of 4). The two large parts, which cancel where log I ~ 0, are extended-precision:
  ``v log(x/2)`` with ``_log_hl`` and an exact product, ``log Gamma(1+v)`` as
  ``log(Gamma(1+mu) (mu+1)...(mu+n))``, n = round(v), mu = v - n in [-1/2, 1/2] (each factor
  exact, the product compensated, 1/Gamma(1+mu) by its Taylor series, DLMF 5.7.1).
* K, v < 15, x < 25: K_mu and K_{mu+1} for mu = v - round(v) in [-1/2, 1/2], then the upward
  recurrence 10.29.1 to v (at most 14 steps; K grows with the order, so it is stable), as
  y_k = K_{mu+k}(x) (x/2)^k / K_mu(x), y_{k+1} = (mu+k) y_k + (x/2)^2 y_{k-1} (positive terms,
  no overflow), and ``log K_v = log K_mu + log y_n + n log(2/x)`` with the large parts in
  extended precision.
  - x < 1: Temme's series (10.31.1 rearranged): K_mu = sum c_k f_k, K_{mu+1} = (2/x)
    sum c_k (p_k - k f_k), c_k = (x^2/4)^k/k!, f_k = (k f_{k-1} + p_{k-1} + q_{k-1})/(k^2-mu^2),
    p_k = p_{k-1}/(k-mu), q_k = q_{k-1}/(k+mu), with f_0, p_0, q_0 from 1/Gamma(1 +- mu) (its
    even and odd parts), (x/2)^-+mu, cosh, sinh(s)/s and mu pi/sin(mu pi) (power series);
    1 to 11 terms (by the exponent of x). From x ~ 1.5 its first term cancels the others (at
    x = 2, 27 eps were measured), hence x < 1.
  - 1 <= x < 25: with u_k = U(mu+1/2+k, 2mu+1, 2x) (10.39.6: K_mu = sqrt(pi) (2x)^mu e^-x u_0),
    the recurrence u_{k-1} = 2(k+x) u_k - ((k+1/2)^2 - mu^2) u_{k+1} (13.3.7) is run backward
    from k = N (Miller's algorithm) together with Temme's normalisation
    sum_k C_k u_k = (2x)^(-mu-1/2), C_k = prod_{j<k} ((j+1/2)^2 - mu^2)/(j+1) (from the
    binomial series of (1+t)^(mu-1/2) in U's integral), summed in Horner form in the same pass:
    K_mu = sqrt(pi/(2x)) e^-x u_0 / sum C_k u_k and, from 13.3.22 and integration by parts,
    K_{mu+1}/K_mu = (x + mu + 1/2 + (mu^2 - 1/4) u_1/u_0)/x. The sum converges like
    exp(-2 sqrt(2 x N)): N = 180 steps from x = 1, 96 from 2, 56 from 4, 32 from 8, 20 from 24.

Computation: elements are classified (region and term count), grouped by class with a
counting sort in chunks of 8192, computed one class at a time in blocks of 512, and scattered
back. Inside a class the loops over elements have no branches (log, exp and the double-double
helpers are written with bit operations and polynomials, not libm calls), so that they
vectorise (4 to 8 elements per instruction); a loop whose length varies per element is run
as passes over the elements, several steps per pass. Large inputs are split over threads
(``numba.get_num_threads()``). Every element's result depends on its own (v, x) only: the same
whatever the chunking or the thread count. Each region's kernels compile (or load from numba's
cache) on the first call that needs them, into a C callback that the small chunk driver calls
through its address, so that a first call compiles only the regions its elements fall in
(6-7.5 s of CPU for three regions on the 2-core test machine, against 14-17 s when every region
compiled; 0.6-0.8 s from the cache: benchmarks/cold_start.py).

The GPU path (``_bessel_triton``) is the previous algorithm in Triton: the same Debye and Hankel
expansions (Debye's v*eta in double-double over the whole band 0.1 <= x/v <= 1.5, terms summed
until below 2^-56), the ascending series with a double-double prefactor (Stirling), and for K at
v < 15, x < 25 the trapezoid rule on 10.32.9 around its peak, ``K_v(x) = exp(-v*eta)/2
int exp(-E(u)) du``, E(u) = d (cosh u - 1) + v (e^u - 1 - u), d = sqrt(v^2+x^2) - v, step
h = min(2 pi / (27 + 5.5 sqrt(v)), 0.66 / sqrt(v^2+x^2)), nodes until E > 45 (25-75 nodes).
It was not moved to the CPU algorithm: no GPU was available to measure such a change. Both
paths meet the same accuracy bound and are tested against each other under TRITON_INTERPRET=1.
Compiled on an H200 (session 21), however, the Triton kernel was off by up to 1.8e-6 relative in
its Debye and series branches (the Hankel branch exact). Cause (session 22): Triton 3.6 turns a
Python float passed to ``tl.fma`` into a float32 constant, so the double-double log's
``two_prod(e, ln 2)`` used ln 2 rounded to float32 (error e * 1.9e-9); the CPU path emulating
that rounding reproduces the H200's maximum errors (1.847e-6 for I, 3.544e-6 for K), and the
sm_90 PTX from Triton 3.6 no longer holds the rounded constant after the fix
(tests/test_triton_constants.py checks every Triton kernel's source for such constants). The
next H200 run (session 24) found one more GPU-only error, up to 1e-11 relative in the
double-double v*eta (27 of 4096 points in the band, ``benchmarks/bessel_gpu_probe.py``): Triton
compiles with ``a*b + c`` contracted to fused multiply-adds by default, which changes the
rounding that the double-double steps rely on. The kernel is compiled with
``enable_fp_fusion=False`` since (explicit ``tl.fma`` stays fused): every probe step then agrees
with numba to 1e-15, and ``test_cuda_matches_cpu`` passes on the H200, so ``backend='auto'``
computes CUDA tensors with the Triton kernel.

Accuracy (float64; tests/test_ops_bessel.py against mpmath at 50 digits over v in [0, 1e5],
x in [1e-10, 1e6], x = v*{0.5, 0.9, 1, 1.1, 2} and both sides of every threshold above):
absolute error of the log at most ``16 eps max(1, |ref|)`` everywhere; the observed maximum of
the CPU path (the 3138 reference points, and 1980 random ones over every region) is 3.0 eps for
log I and log K and 4.4 eps for the scaled forms. float32 and float16 inputs are computed in
float64 and rounded once.

Special values: x = 0 gives log I_0 = 0, log I_v = -inf (v > 0), log K_v = +inf; NaN in v or
x, or x < 0, gives NaN; x = +inf gives +inf (I) and -inf (K). K is even in v. Negative orders of
I use I_{-v} = I_v + (2/pi) sin(v pi) K_v as a signed sum of logs; where I_{-v}(x) < 0 the log is
NaN unless ``return_sign=True`` (then log|I| and the sign are returned).

Gradients (x only): d/dx log I_v = v/x + I_{v+1}/I_v and d/dx log K_v = -v/x - K_{v-1}/K_v
(= v/x - K_{v+1}/K_v by the recurrence, but without cancellation).
"""

from __future__ import annotations

import importlib.util
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Optional, Tuple, Union

import numpy as np
import torch
from llvmlite import ir as llvm_ir
from numba import carray, cfunc, get_num_threads, njit, types
from numba.extending import intrinsic

from gnnsys._checks import as_cpu_tensor, triton_device_error

Number = Union[int, float]
TensorLike = Union[torch.Tensor, np.ndarray, Number]

# ----------------------------------------------------------------------------- region thresholds
V_DEBYE = 15.0  # v >= V_DEBYE: uniform (Debye) expansion for I and K
X_HANKEL = 25.0  # v < V_DEBYE and x >= X_HANKEL: Hankel for K (and for I if also x >= v^2/3)
HANKEL_I_V2 = 1.0 / 3.0  # Hankel for I needs x >= v^2 * HANKEL_I_V2
DEBYE_KMAX = 20  # terms needed at v = V_DEBYE = 15 (see _DEBYE_VMIN)
DD_LO, DD_HI = 0.1, 1.5  # the cancellation band of v*eta (double-double inside, see _v_eta)
# used by the GPU path only (_bessel_triton): series stop when a term is below 2^_TOL_EXP of the
# sum; Stirling's series for log Gamma(y) at y >= LGAMMA_SHIFT
_TOL_EXP = -56
LGAMMA_SHIFT = 10.0

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

# ----------------------------------------------------------------------------- CPU constants
X_TEMME = 1.0  # K, v < V_DEBYE: Temme's series below, Miller's algorithm from here to X_HANKEL
DD_FRAC = 1.0 / 32.0  # Debye band: double-double v*eta only where |log I|, |log K| < DD_FRAC v
# Debye term classes: K terms (U_0..U_{K-1}) for v >= _DEBYE_VMIN[K] (so 20 terms from V_DEBYE)
_DEB_K = np.array([20, 14, 10, 7, 5, 4, 3, 2], dtype=np.int64)
_DEB_VLO = np.array([V_DEBYE] + [float(_DEBYE_VMIN[k]) for k in _DEB_K[1:]])
_EXT = 2.0**400  # v or x beyond [2^-400, 2^400] (v >= V_DEBYE): the scalar Debye code

# Term counts (checked by the tests of tests/test_ops_bessel.py, which re-derive them).
# Hankel (x >= X_HANKEL, v < V_DEBYE): 32 terms: the first omitted term is below 2^-60 (at
# x = 25, v = 15; less beyond) while the terms still decrease (they do up to k ~ 2x); fewer for
# larger x: 24 from x = 2^6, 16 from 2^7, 8 from 2^12 (multiples of 8, unrolled loops).
_HANK_TERMS = 32
_HANK_T, _HANK_N = np.array([6, 7, 12], dtype=np.int64), np.array([32, 24, 16, 8], np.int64)
_HANK_C = np.array([(2.0 * k - 1.0) ** 2 for k in range(_HANK_TERMS, 0, -1)])
_HANK_D = np.array([1.0 / (8.0 * k) for k in range(_HANK_TERMS, 0, -1)])
# By the binary exponent e of x (x in [2^e, 2^(e+1))):
# ascending series for I (x < 75): the tail after N terms is below 2^-58 of the sum at v = 0 and
# x = min(2^(e+1), 75), e = -41..6 (e < -41 as e = -41)
_SERIES_N_BY_E = (0,) * 13 + (1,) * 15 + (2,) * 5 + (3, 3, 4, 4, 5, 6, 7, 9, 11, 15, 21, 30, 46)
_SERIES_N_BY_E = _SERIES_N_BY_E + (72, 80)
# Temme's series for K (x < X_TEMME = 1): one more than the terms after which the next five are
# below 2^-58 of the sums, |mu| <= 1/2, x = 2^(e+1); e = -64..-1 (e < -64 as e = -64)
_TEMME_N_BY_E = (1,) * 5 + (2,) * 40 + (3,) * 8 + (4,) * 4 + (5, 5, 6, 6, 7, 9, 11)
# Miller's backward recurrence for K (1 <= x < 25): steps for the classes [1, 1.5), [1.5, 2),
# [2, 3), ..., [16, 24), [24, 25); 1.15 times the steps after which the result no longer
# changes, plus 2 (the recurrence converges like exp(-2 sqrt(2 x N))); run in passes of 4.
_MILLER_N = (180, 124, 94, 67, 53, 39, 32, 25, 21, 17)
_RECIP = np.array([0.0] + [1.0 / k for k in range(1, 257)])  # 1/k, for the recurrences


def _classes(by_e, e0):
    """(thresholds, terms per class) for a table of term counts by exponent (by_e[i] for
    e = e0 + i): the class of e is the number of thresholds <= e (e below e0 falls in the first
    class, above the table in the last), so that classifying needs no table lookup."""
    cut = [i for i in range(1, len(by_e)) if by_e[i] != by_e[i - 1]]
    return (
        np.array([e0 + i for i in cut], dtype=np.int64),
        np.array([by_e[0]] + [by_e[i] for i in cut], dtype=np.int64),
    )


_SER_T, _SER_N = _classes(_SERIES_N_BY_E, -41)
_TEM_T, _TEM_N = _classes(_TEMME_N_BY_E, -64)
_MIL_N = np.array([-(-n // 4) * 4 for n in _MILLER_N], dtype=np.int64)  # whole passes
# class ids: Debye 0..15 (term class, + 8 for x > DD_HI v), Debye extremes 16, then Hankel, then
# Miller + Temme (K) or series (I)
_C_EXT = 2 * len(_DEB_K)
_C_HANK = _C_EXT + 1
_C_MIL = _C_HANK + len(_HANK_N)
_C_TEM = _C_MIL + len(_MIL_N)
_NCLS_K = _C_TEM + len(_TEM_N)
_C_SER = _C_MIL
_NCLS_I = _C_SER + len(_SER_N)
_NCLS = max(_NCLS_K, _NCLS_I)

# 1/Gamma(1+z) = sum_k _RGAMMA[k] z^k (DLMF 5.7.1; mpmath, 40 digits); |z| <= 1/2: the terms
# after k = 21 are below 2^-65.
_RGAMMA = (
    1.0,
    0.5772156649015329,
    -0.6558780715202539,
    -0.04200263503409524,
    0.16653861138229148,
    -0.04219773455554433,
    -0.009621971527876973,
    0.0072189432466631,
    -0.0011651675918590652,
    -0.00021524167411495098,
    0.0001280502823881162,
    -2.013485478078824e-05,
    -1.2504934821426706e-06,
    1.133027231981696e-06,
    -2.056338416977607e-07,
    6.116095104481416e-09,
    5.002007644469223e-09,
    -1.18127457048702e-09,
    1.0434267116911005e-10,
    7.782263439905071e-12,
    -3.696805618642206e-12,
    5.100370287454476e-13,
)
_RG_ODD = _RGAMMA[21:0:-2]  # a21, a19, .., a1 (Horner order in mu^2)
_RG_EVEN = _RGAMMA[20::-2]  # a20, a18, .., a0
# ln 2 with 42 significant bits (k * _L2H is exact for |k| < 2^11) and the rest
_L2H = 0.6931471805598903
_L2L = 5.497923018708371e-14
_HLOGPI2 = 0.22579135264472744  # log(pi/2) / 2
# log(1+f) = f - f^2/2 + s (f^2/2 + R), s = f/(2+f), R = sum_k 2 s^2k/(2k+1), k = 10..1
_LOGR = tuple(2.0 / (2 * k + 1) for k in range(10, 0, -1))
_EXPC = tuple(1.0 / math.factorial(k) for k in range(13, 1, -1))  # e^r - 1 - r, |r| <= ln2/2
_SINC = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(12, 0, -1))  # sin(y)/y
_SHC = tuple(1.0 / math.factorial(2 * k + 1) for k in range(8, 0, -1))  # sinh(y)/y, |y| < 1/2

_J = dict(nogil=True, cache=True, error_model="numpy")
# FMA contraction is allowed everywhere: the double-double helpers form exact products with an
# explicit fma (below), and only contract would otherwise change.
_JF = dict(_J, fastmath={"contract"}, no_cpython_wrapper=True, no_cfunc_wrapper=True)
_JI = dict(_J, no_cpython_wrapper=True, no_cfunc_wrapper=True)


# ----------------------------------------------------------------------------- intrinsics
@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c with one rounding (llvm.fma: the FMA instruction, or libm's fma)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@intrinsic
def _bits(typingctx, a):
    """The IEEE bits of a float64 as an int64 (a bit cast, vectorisable)."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.IntType(64))

    return sig, codegen


@intrinsic
def _from_bits(typingctx, a):
    """The float64 with IEEE bits a (int64)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.DoubleType())

    return sig, codegen


# ----------------------------------------------------------------------------- double-double
@njit(**_JF)
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(**_JF)
def _fast_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


@njit(**_JF)
def _two_prod(a, b):
    p = a * b
    return p, _fma(a, b, -p)


@njit(**_JF)
def _dd_add(ah, al, bh, bl):
    s, e = _two_sum(ah, bh)
    t, f = _two_sum(al, bl)
    e += t
    s, e = _fast_two_sum(s, e)
    e += f
    return _fast_two_sum(s, e)


@njit(**_JF)
def _dd_mul(ah, al, bh, bl):
    p, e = _two_prod(ah, bh)
    e += ah * bl + al * bh
    return _fast_two_sum(p, e)


@njit(**_JF)
def _dd_mul_d(ah, al, b):
    p, e = _two_prod(ah, b)
    e += al * b
    return _fast_two_sum(p, e)


@njit(**_JF)
def _dd_div(ah, al, bh, bl):
    q1 = ah / bh
    p, e = _two_prod(q1, bh)
    r = (((ah - p) - e) + al) - q1 * bl
    return _fast_two_sum(q1, r / bh)


@njit(**_JF)
def _dd_sqrt(ah, al):
    s = math.sqrt(ah)
    p, e = _two_prod(s, s)
    return _fast_two_sum(s, (((ah - p) - e) + al) / (2.0 * s))


# ----------------------------------------------------------------------------- elementary functions
# Branch-free versions of log and exp (bit manipulation and polynomials): unlike calls to libm,
# loops over them vectorise (AVX2/AVX-512), 4-8 elements per instruction.
@njit(**_JF)
def _log_hl(x):
    """log(x) as hi + lo, relative error below 2^-55.5 (x > 0 finite, subnormals included).

    x = m 2^k with m in [1/sqrt2, sqrt2) (bit arithmetic), f = m - 1 (exact), s = f/(2+f):
    log m = 2 atanh(s) = f - f^2/2 + s (f^2/2 + R(s^2)), R = sum_k 2 s^2k/(2k+1) (10 terms,
    s^2 <= 0.0295). The large parts k ln2 (ln2 split so that k * _L2H is exact), f and f^2/2
    (an exact product) and the correction s (...) are added without rounding; only the
    correction itself is rounded.
    """
    sub = x < 2.2250738585072014e-308
    b = _bits(x * 18446744073709551616.0 if sub else x)
    k = (b - 0x3FE6A09E667F3BCD) >> 52
    m = _from_bits(b - (k << 52))
    e = float(k - (64 if sub else 0))
    f = m - 1.0
    s = f / (2.0 + f)
    w = s * s
    r = 0.0
    for c in _LOGR:
        r = (r + c) * w
    g = 0.5 * f
    hf = g * f
    hfl = _fma(g, f, -hf)
    a, al = _fast_two_sum(f, -hf)
    a, ac = _fast_two_sum(a, s * (hf + r))
    hi, lo = _two_sum(e * _L2H, a)
    lo += ((al - hfl) + ac) + e * _L2L
    return _fast_two_sum(hi, lo)


@njit(**_JF)
def _log(x):
    """log(x), x > 0 finite (within ~0.6 ulp)."""
    return _log_hl(x)[0]


@njit(**_JF)
def _log1p(y):
    """log(1 + y), y > -1 finite (the rounding of 1 + y is corrected to first order)."""
    u = 1.0 + y
    return _log(u) + (y - (u - 1.0)) / u


@njit(**_JF)
def _exp(x):
    """e^x for |x| <= 708 (within ~0.6 ulp): x = k ln2 + r, |r| <= ln2/2, r exact in two parts,
    e^r = 1 + r + r^2 (1/2 + r/6 + ...) (13 terms), times 2^k from the exponent bits."""
    kd = _fma(x, 1.4426950408889634, 6755399441055744.0)
    k = kd - 6755399441055744.0
    rh = _fma(-k, _L2H, x)  # exact: k * _L2H is exact and close to x
    rl = -k * _L2L
    r = rh + rl
    p = 0.0
    for c in _EXPC:
        p = (p + c) * r
    p = p * r  # r^2 (1/2 + r/6 + ...)
    ki = _bits(kd) - _bits(6755399441055744.0)
    return (1.0 + (rh + (rl + p))) * _from_bits((ki + 1023) << 52)


@njit(**_JF)
def _rgamma1p(mu):
    """1/Gamma(1+mu), |mu| <= 1/2 (the Taylor series, 22 terms)."""
    g = 0.0
    for i in range(21, -1, -1):
        g = g * mu + _RGAMMA[i]
    return g


@njit(inline="always", **_JF)
def _lgamma1p_hl(v):
    """log Gamma(1+v) as hi + lo for 0 <= v < V_DEBYE: Gamma(1+v) = Gamma(1+mu) (mu+1)..(mu+n),
    n = round(v), mu = v - n in [-1/2, 1/2); each factor mu + j = v - (n - j) is exact, the
    product is compensated (fma), 1/Gamma(1+mu) is a power series, one double-double division."""
    n = math.floor(v + 0.5)
    mu = v - n
    ph = 1.0
    pl = 0.0
    for j in range(1, 16):
        f = mu + j if j <= n else 1.0
        p = ph * f
        pl = pl * f + _fma(ph, f, -p)
        ph = p
    g = _rgamma1p(mu)
    q1 = ph / g
    q2 = (_fma(-q1, g, ph) + pl) / g
    lh, ll = _log_hl(q1)
    return _fast_two_sum(lh, ll + q2 / q1)


@njit(**_JF)
def _finish(hi, lo, rest, shift):
    """(hi - shift) + lo + rest with hi - shift exact (two_sum): shift = x for the scaled forms."""
    h, e = _two_sum(hi, -shift)
    return h + ((e + lo) + rest)


@njit(**_JF)
def _finish2(hi, lo, rh, rl, shift):
    """(hi + lo) + (rh + rl) - shift, rounded once: the large parts hi, rh and shift are added
    exactly (two_sum), so that a result much smaller than them keeps its relative accuracy."""
    h, e = _two_sum(hi, -shift)
    h, f = _two_sum(h, rh)
    return h + (((e + f) + lo) + rl)


# ----------------------------------------------------------------------------- scalar Debye
# Used for the elements of the Debye region with v or x outside [2^-400, 2^400] (where the
# vectorised formula could overflow) and for the double-double v*eta of the cancellation band.
@njit(**_JF)
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
    rh, rl = _v_eta_scaled(m, math.ldexp(x, -ex))
    return math.ldexp(rh, ex), math.ldexp(rl, ex)


@njit(**_JF)
def _debye(v, x, sign, shift, coef, vmin):
    """Debye expansion (scalar): log I (sign = +1) or log K (sign = -1), v >= V_DEBYE, minus
    ``shift``."""
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


@njit(**_JI)
def _exponent(x):
    """floor(log2 x) for x > 0 finite normal (-1023 for subnormals)."""
    return ((_bits(x) >> 52) & 0x7FF) - 1023


@njit(**_JF)
def _pow2(k):
    """2^k for integer |k| <= 1022 (exponent bits)."""
    return _from_bits((k + 1023) << 52)


@njit(inline="always", **_JF)
def _dd_log_v(ah, al):
    """log(ah + al) for ah > 0 normal, to ~1e-25 absolute, without branches or libm calls
    (vectorisable). m = (ah + al) 2^-k in [1/sqrt2, sqrt2) by bit manipulation, c = 1 + k/128
    the nearest table point, u = (m - c)/(m + c) (|u| < 0.0028, double-double),
    log m = log c + 2 atanh(u) with atanh(u) = u + u^3 (1/3 + u^2/5 + u^4/7 + u^6/9): that
    correction is below 7e-9, so double precision suffices for it."""
    b = _bits(ah)
    k = (b - 0x3FE6A09E667F3BCD) >> 52
    m = _from_bits(b - (k << 52))  # in [1/sqrt2, sqrt2)
    ml = al * _pow2(-k)
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
    kf = float(k)
    kh, kl = _two_prod(kf, _LN2_HI)
    kl += kf * _LN2_LO
    kh, kl = _dd_add(kh, kl, _LOG_TABLE[idx, 0], _LOG_TABLE[idx, 1])
    return _dd_add(kh, kl, 2.0 * sh, 2.0 * sl)


@njit(inline="always", **_JF)
def _v_eta_scaled(m, xs):
    """sqrt(m^2+xs^2) - m*asinh(m/xs) in double-double for m in [0.5, 1) and m/xs in
    [1/DD_HI, 1/DD_LO] (v and x scaled by the same power of two), branch-free: shared by the
    scalar ``_v_eta`` and the vectorised ``_v_eta_dd``. The quotient is O(1), so the
    branch-free ``_dd_log_v`` applies."""
    ah, al = _two_prod(m, m)
    bh, bl = _two_prod(xs, xs)
    ah, al = _dd_add(ah, al, bh, bl)
    sh, sl = _dd_sqrt(ah, al)
    nh, nl = _dd_add(sh, sl, m, 0.0)
    qh, ql = _dd_div(nh, nl, xs, 0.0)
    lh, ll = _dd_log_v(qh, ql)
    lh, ll = _dd_mul_d(lh, ll, m)
    return _dd_add(sh, sl, -lh, -ll)


@njit(inline="always", **_JF)
def _v_eta_dd(v, x):
    """v*eta = sqrt(v^2+x^2) - v*asinh(v/x) in double-double (the branch of _v_eta for
    DD_LO <= x/v <= DD_HI, written without branches): v and x scaled by 2^-e, v = m 2^e,
    m in [0.5, 1); v, x in [2^-400, 2^400]."""
    e = _exponent(v) + 1
    sc = _pow2(-e)
    rh, rl = _v_eta_scaled(v * sc, x * sc)
    up = _pow2(e)
    return rh * up, rl * up


# ----------------------------------------------------------------------------- region kernels
# Each works on the elements of one class (one region, one term count), gathered into contiguous
# float64 rows. Each is a region's entry, compiled on first need into a C callback (see
# _build_entries) with the signature of every entry: fb (5, ncols) float64 rows v, x, result of
# the gathered elements, tb (11, _BLOCK) float64 and ib (3, ncols) int64 scratch (addresses);
# it computes the elements first..last-1, all of class cls. Its body is the kernel itself: a
# kernel in a function of its own would be compiled there and then again into the entry. Loops whose trip count varies per element are turned inside out: a pass over all
# elements per term, so that the inner loop runs over elements and vectorises.
def _debye_seg(fbp, tbp, ibp, ncols, first, last, cls, is_i, scaled_i, coefp, vminp):
    """Debye expansion (DLMF 10.41.3/4), ``nterms`` terms, v >= V_DEBYE, v and x in
    [2^-400, 2^400]; ``far``: every x > DD_HI v, else every x <= DD_HI v.
    v*eta = s - v asinh(v/x) in double; where that cancels (DD_LO <= x/v <= DD_HI and
    |log I|, |log K| < DD_FRAC v) it is redone in double-double."""
    vb, xb, ob, tb, ib = _entry_arrays(fbp, tbp, ibp, ncols, first, last)
    scaled = scaled_i != 0
    m0 = last - first
    coef = carray(_f64_ptr(coefp), (DEBYE_KMAX, DEBYE_KMAX))
    far = cls >= len(_DEB_K)
    nterms = _DEB_K[cls - len(_DEB_K)] if far else _DEB_K[cls]
    sign = 1.0 if is_i else -1.0
    p2, t, acc, q, sr, slr = tb[0, :m0], tb[1, :m0], tb[2, :m0], tb[3, :m0], tb[4, :m0], tb[5, :m0]
    idx = ib[2, :m0]
    n = vb.shape[0]
    for i in range(n):  # s = sqrt(v^2 + x^2) as s + sl (exact squares, one Newton correction)
        v = vb[i]
        x = xb[i]
        ah, al = _two_prod(v, v)
        bh, bl = _two_prod(x, x)
        ssh, e = _two_sum(ah, bh)
        s = math.sqrt(ssh)
        si = 1.0 / s
        p = v * si
        p2[i] = p * p
        t[i] = sign * si  # p/v
        sr[i] = s
        slr[i] = (_fma(-s, s, ssh) + (e + al + bl)) * (0.5 * si)
        acc[i] = 0.0
    # acc = sum_k t^k q_k(p2), q_k = sum_j coef[k, j] p2^j: Horner in t, each q_k by Horner in
    # p2, four coefficients per pass over the elements
    for k in range(nterms - 1, -1, -1):
        c0 = coef[k, k]
        for i in range(n):
            q[i] = c0
        j = k - 1
        while j >= 3:
            c3, c2, c1, c0 = coef[k, j], coef[k, j - 1], coef[k, j - 2], coef[k, j - 3]
            for i in range(n):
                y = p2[i]
                q[i] = (((q[i] * y + c3) * y + c2) * y + c1) * y + c0
            j -= 4
        while j >= 0:
            c0 = coef[k, j]
            for i in range(n):
                q[i] = q[i] * p2[i] + c0
            j -= 1
        for i in range(n):
            acc[i] = acc[i] * t[i] + q[i]
    const = -_HLOG2PI_HI if sign > 0 else _HLOGPI2
    if far:
        # v*eta = x + lo, lo = v (rho - asinh(r)), r = v/x < 2/3, rho = v/(x+s) (so that the
        # scaled forms subtract x exactly); asinh(r) = log1p(r + r rho). rho - asinh(r) ~ -r/2
        # cancels one bit, and log K + x = -lo + ... can cancel more: all as pairs hi + lo.
        for i in range(n):
            v = vb[i]
            x = xb[i]
            s = sr[i]
            ix = 1.0 / x
            r = v * ix
            rl = _fma(-r, x, v) * ix  # v/x = r + rl
            dh, e = _two_sum(x, s)
            dl = e + slr[i]
            rho = v / dh
            rhol = (_fma(-rho, dh, v) - rho * dl) / dh  # v/(x+s) = rho + rhol
            ph, pl = _two_prod(r, rho)
            pl += r * rhol + rl * rho
            yh, e = _two_sum(r, ph)  # y = r + r rho
            uh, ul = _fast_two_sum(1.0, yh)  # 1 + y
            ul += e + rl + pl
            lh, ll = _log_hl(uh)
            ll += ul / uh
            dh, e = _two_sum(rho, -lh)  # rho - asinh(r)
            dl = e + (rhol - ll)
            loh, lol = _two_prod(v, dh)
            lol += v * dl
            rh, rl = _log_hl(acc[i] / math.sqrt(s))
            rh, e = _fast_two_sum(const, rh)
            rl += e
            shift = (x if sign > 0 else -x) if scaled else 0.0
            if sign > 0:
                ob[i] = _finish2(x, loh, rh, rl + lol, shift)
            else:
                ob[i] = _finish2(-x, -loh, rh, rl - lol, shift)
        return
    # v*eta = s - v asinh(v/x), asinh(v/x) = log(q), q = (v + s)/x >= 1.8, all as unevaluated
    # sums hi + lo (exact products, log_hl): the error is below 0.03 v eps (measured)
    for i in range(n):
        v = vb[i]
        x = xb[i]
        s = sr[i]
        nh, e = _two_sum(v, s)
        nl = e + slr[i]
        ix = 1.0 / x
        qh = nh * ix
        ql = (_fma(-qh, x, nh) + nl) * ix
        lh, ll = _log_hl(qh)
        ph, pl = _two_prod(v, lh)
        pl += v * (ll + ql / qh)
        hi, e = _two_sum(s, -ph)
        lo = e + (slr[i] - pl)
        rh, rl = _log_hl(acc[i] / math.sqrt(s))
        rh, e = _fast_two_sum(const, rh)
        rl += e
        shift = (x if sign > 0 else -x) if scaled else 0.0
        if sign > 0:
            ob[i] = _finish2(hi, lo, rh, rl, shift)
        else:
            ob[i] = _finish2(-hi, -lo, rh, rl, shift)
        acc[i] = rh + rl
    # the cancellation band: gather the elements that need the double-double v*eta
    m = 0
    for i in range(n):
        v = vb[i]
        x = xb[i]
        shift = (x if sign > 0 else -x) if scaled else 0.0
        if x >= DD_LO * v and x <= DD_HI * v and abs(ob[i] + shift) < DD_FRAC * v:
            p2[m] = v
            t[m] = x
            q[m] = acc[i]
            idx[m] = i
            m += 1
    for k in range(m):
        v = p2[k]
        x = t[k]
        eh, el = _v_eta_dd(v, x)
        shift = (x if sign > 0 else -x) if scaled else 0.0
        if sign > 0:
            q[k] = _finish(eh, el, q[k], shift)
        else:
            q[k] = _finish(-eh, -el, q[k], shift)
    for k in range(m):
        ob[idx[k]] = q[k]


@njit(inline="always", **_JF)
def _hankel8(h, mu, ix, base):
    """Eight steps of the Hankel sum in Horner form, h = 1 + a_k h, from k = 32 - base down."""
    for j in range(8):
        h = _fma((mu - _HANK_C[base + j]) * (ix * _HANK_D[base + j]), h, 1.0)
    return h


def _hankel_seg(fbp, tbp, ibp, ncols, first, last, cls, is_i, scaled_i, coefp, vminp):
    """Hankel expansion (DLMF 10.40.1/2): log I (sign = -1) or log K (sign = +1), v < V_DEBYE,
    x >= X_HANKEL: sum_k a_k(v) (sign/x)^k, ``nterms`` (8, 16, 24 or 32) terms in Horner form
    1 + a_1 (1 + a_2 (...)), a_k = sign (4v^2 - (2k-1)^2) / (8k x), unrolled (vectorises)."""
    vb, xb, ob, tb, ib = _entry_arrays(fbp, tbp, ibp, ncols, first, last)
    scaled = scaled_i != 0
    nterms = _HANK_N[cls - _C_HANK]
    sign = -1.0 if is_i else 1.0  # the sign of the expansion's terms
    const = -_HLOG2PI_HI if sign < 0 else _HLOGPI2
    for i in range(vb.shape[0]):
        x = xb[i]
        mu = 4.0 * vb[i] * vb[i]
        ix = sign / x
        h = 1.0
        if nterms >= 32:
            h = _hankel8(h, mu, ix, 0)
        if nterms >= 24:
            h = _hankel8(h, mu, ix, 8)
        if nterms >= 16:
            h = _hankel8(h, mu, ix, 16)
        h = _hankel8(h, mu, ix, 24)
        rest = _log(h / math.sqrt(x)) + const
        if scaled:
            ob[i] = rest
        else:
            ob[i] = x + rest if sign < 0 else rest - x


def _series_seg(fbp, tbp, ibp, ncols, first, last, cls, is_i, scaled_i, coefp, vminp):
    """Ascending series (DLMF 10.25.2) for log I with ``nterms`` terms after the first (rounded
    up to a multiple of 4):
    log I = v log(x/2) - log Gamma(v+1) + log sum_k t_k, t_k = t_{k-1} (x^2/4)/(k(v+k)), t_0 = 1.
    The two large parts are formed in extended precision (they cancel where log I ~ 0)."""
    vb, xb, ob, tb, ib = _entry_arrays(fbp, tbp, ibp, ncols, first, last)
    scaled = scaled_i != 0
    m0 = last - first
    nterms = _SER_N[cls - _C_SER]
    q, t, acc = tb[0, :m0], tb[1, :m0], tb[2, :m0]
    n = vb.shape[0]
    for i in range(n):
        q[i] = 0.25 * xb[i] * xb[i]
        t[i] = 1.0
        acc[i] = 1.0
    # four terms per pass and one division: with d_j = j (v + j), the terms after t (= t_k0)
    # sum to t q (d2 d3 d4 + q (d3 d4 + q (d4 + q))) / (d1 d2 d3 d4), and t_{k0+4} = t q^4 / P
    for k0 in range(0, nterms, 4):
        k1 = k0 + 1.0
        k2 = k0 + 2.0
        k3 = k0 + 3.0
        k4 = k0 + 4.0
        for i in range(n):
            v = vb[i]
            qq = q[i]
            d4 = k4 * (v + k4)
            d34 = k3 * (v + k3) * d4
            d234 = k2 * (v + k2) * d34
            r = t[i] / (k1 * (v + k1) * d234)
            acc[i] += r * (qq * (d234 + qq * (d34 + qq * (d4 + qq))))
            q2 = qq * qq
            t[i] = r * (q2 * q2)
    for i in range(n):
        v = vb[i]
        x = xb[i]
        lh, ll = _log_hl(x)
        lh, e = _two_sum(lh, -_L2H)
        ll += e - _L2L
        ah, al = _two_prod(v, lh)
        al += v * ll
        gh, gl = _lgamma1p_hl(v)
        ch, e = _two_sum(ah, -gh)
        sh, sl = _log_hl(acc[i])
        ob[i] = _finish2(ch, e + (al - gl), sh, sl, x if scaled else 0.0)


@njit(inline="always", **_JF)
def _recur7(y0, y1, mu, w, nn, k0):
    """Seven masked steps k = k0..k0+6 of _recur_seg's recurrence (in registers)."""
    for j in range(7):
        kf = k0 + j
        y2 = _fma(mu + kf, y1, w * y0)
        upd = kf < nn
        y0 = y1 if upd else y0
        y1 = y2 if upd else y1
    return y0, y1


@njit(**_JF)
def _recur_seg(mu, nn, w, y0, y1):
    """y_k = K_{mu+k}(x) (x/2)^k / K_mu(x) upward to k = n: y_{k+1} = (mu+k) y_k + (x/2)^2 y_{k-1}
    (DLMF 10.29.1; all terms positive, no overflow for x < 25). On entry y0 = 1 and y1 = y_1;
    on exit y1 = y_n (n >= 1) and y0 = y_{n-1}. n <= 15 (v < V_DEBYE): 14 masked steps."""
    for i in range(mu.shape[0]):
        a, b = _recur7(y0[i], y1[i], mu[i], w[i], nn[i], 1.0)
        y0[i], y1[i] = _recur7(a, b, mu[i], w[i], nn[i], 8.0)


@njit(**_JF)
def _k_finish(ob, xb, nn, lk, y0, y1, scaled):
    """log K_v = log K_mu + log y_n - n log(x/2) (+ x when scaled), the large parts in extended
    precision; lk holds log K_mu + x."""
    for i in range(ob.shape[0]):
        x = xb[i]
        n = nn[i]
        yn = y1[i] if n >= 1.0 else y0[i]
        yh, yl = _log_hl(yn)
        lh, ll = _log_hl(x)
        lh, e = _two_sum(_L2H, -lh)  # log(2/x)
        ll = e + (_L2L - ll)
        ah, al = _two_prod(n, lh)
        al += n * ll
        h, e = _two_sum(ah, yh)
        lo = e + al + yl + lk[i]
        if scaled:
            ob[i] = h + lo
        else:
            h, e = _two_sum(h, -x)
            ob[i] = h + (e + lo)


def _temme_seg(fbp, tbp, ibp, ncols, first, last, cls, is_i, scaled_i, coefp, vminp):
    """K for v < V_DEBYE, x < X_TEMME: Temme's series for K_mu and K_{mu+1}, mu = v - round(v)
    (DLMF 10.31.1 rearranged: K_mu = sum c_k f_k, K_{mu+1} = (2/x) sum c_k (p_k - k f_k),
    c_k = (x^2/4)^k / k!, f_k = (k f_{k-1} + p_{k-1} + q_{k-1}) / (k^2 - mu^2),
    p_k = p_{k-1}/(k - mu), q_k = q_{k-1}/(k + mu), f_0, p_0, q_0 from Gamma(1 +- mu) and
    (x/2)^-+mu), then the upward recurrence in the order."""
    vb, xb, ob, tb, ib = _entry_arrays(fbp, tbp, ibp, ncols, first, last)
    scaled = scaled_i != 0
    m0 = last - first
    nterms = _TEM_N[cls - _C_TEM]
    mu, nn, w, f, p, qq = tb[0, :m0], tb[1, :m0], tb[2, :m0], tb[3, :m0], tb[4, :m0], tb[5, :m0]
    c, s0, s1, y0, y1 = tb[6, :m0], tb[7, :m0], tb[8, :m0], tb[9, :m0], tb[10, :m0]
    n = vb.shape[0]
    for i in range(n):
        v = vb[i]
        x = xb[i]
        nv = math.floor(v + 0.5)
        m = v - nv
        lh, ll = _log_hl(x)
        lh, e = _two_sum(_L2H, -lh)
        ell = lh + (e + (_L2L - ll))  # log(2/x)
        sig = m * ell
        es = _exp(sig)
        ies = 1.0 / es
        m2 = m * m
        g1 = 0.0
        for a in _RG_ODD:
            g1 = g1 * m2 + a
        g2 = 0.0
        for a in _RG_EVEN:
            g2 = g2 * m2 + a
        g1 = -g1  # (1/Gamma(1-mu) - 1/Gamma(1+mu)) / (2 mu)
        y = (math.pi * m) ** 2
        sn = 0.0
        for a in _SINC:
            sn = (sn + a) * y
        y2 = sig * sig
        sh = 0.0
        for a in _SHC:
            sh = (sh + a) * y2
        shc = sh + 1.0 if abs(sig) < 0.5 else 0.5 * (es - ies) / sig
        f[i] = (g1 * (0.5 * (es + ies)) + shc * ell * g2) / (sn + 1.0)
        p[i] = 0.5 * es / (g2 - m * g1)
        qq[i] = 0.5 * ies / (g2 + m * g1)
        c[i] = 1.0
        s0[i] = f[i]
        s1[i] = p[i]
        mu[i] = m
        nn[i] = nv
        w[i] = 0.25 * x * x
    for k in range(1, nterms + 1):
        kf = float(k)
        ik = 1.0 / kf
        for i in range(n):
            m = mu[i]
            dd = 1.0 / ((kf - m) * (kf + m))
            d1 = (kf + m) * dd  # 1/(k - mu)
            d2 = (kf - m) * dd  # 1/(k + mu)
            fk = (kf * f[i] + p[i] + qq[i]) * dd
            pk = p[i] * d1
            ck = c[i] * w[i] * ik
            s0[i] += ck * fk
            s1[i] += ck * (pk - kf * fk)
            f[i] = fk
            p[i] = pk
            qq[i] = qq[i] * d2
            c[i] = ck
    for i in range(n):
        y0[i] = 1.0
        y1[i] = s1[i] / s0[i]
    _recur_seg(mu, nn, w, y0, y1)
    for i in range(n):
        s0[i] = _log(s0[i]) + xb[i]  # log K_mu + x
    _k_finish(ob, xb, nn, s0, y0, y1, scaled)


@njit(inline="always", **_JF)
def _miller4(u0, u1, tt, x, m2, k):
    """Four steps k, k-1, k-2, k-3 of Miller's backward recurrence with the Horner sum of
    Temme's normalisation (see _miller_seg); m2 = mu^2."""
    for j in range(4):
        kf = k - j
        up = 2.0 * (kf + x) * u0 - ((kf + 0.5) * (kf + 0.5) - m2) * u1
        tt = up + (((kf - 0.5) * (kf - 0.5) - m2) * _RECIP[int(kf)]) * tt
        u1 = u0
        u0 = up
    return u0, u1, tt


def _miller_seg(fbp, tbp, ibp, ncols, first, last, cls, is_i, scaled_i, coefp, vminp):
    """K for v < V_DEBYE, X_TEMME <= x < X_HANKEL: with u_k = U(mu+1/2+k, 2mu+1, 2x) (DLMF
    10.39.6), u_{k-1} = 2(k+x) u_k - ((k+1/2)^2 - mu^2) u_{k+1} (13.3.7) run backward from
    k = nsteps (Miller), sum_k C_k u_k = (2x)^(-mu-1/2) with C_k = prod_{j<k} ((j+1/2)^2-mu^2)/(j+1)
    (Temme's normalisation) summed by Horner in the same pass, so K_mu = sqrt(pi/2x) e^-x u_0 /
    sum C_k u_k and K_{mu+1}/K_mu = (x + mu + 1/2 + (mu^2 - 1/4) u_1/u_0) / x; then the upward
    recurrence in the order. ``nsteps`` is a multiple of 4."""
    vb, xb, ob, tb, ib = _entry_arrays(fbp, tbp, ibp, ncols, first, last)
    scaled = scaled_i != 0
    m0 = last - first
    nsteps = _MIL_N[cls - _C_MIL]
    mu, nn, w, u0, u1, tt = tb[0, :m0], tb[1, :m0], tb[2, :m0], tb[3, :m0], tb[4, :m0], tb[5, :m0]
    y0, y1 = tb[6, :m0], tb[7, :m0]
    n = vb.shape[0]
    for i in range(n):
        v = vb[i]
        nv = math.floor(v + 0.5)
        m = v - nv
        mu[i] = m * m
        nn[i] = nv
        u0[i] = 9.332636185032189e-302  # 2^-1000: room for the growth of u over nsteps steps
        u1[i] = 0.0
        tt[i] = 9.332636185032189e-302
    for k in range(nsteps, 0, -4):  # four steps per pass, in registers
        kf = float(k)
        for i in range(n):
            u0[i], u1[i], tt[i] = _miller4(u0[i], u1[i], tt[i], xb[i], mu[i], kf)
    for i in range(n):
        x = xb[i]
        m = vb[i] - nn[i]
        h = u1[i] / u0[i]
        # log K_mu + x = log(pi/(2x))/2 - log(sum/u_0)
        tt[i] = _log(u0[i] / (tt[i] * math.sqrt(x))) + _HLOGPI2
        y0[i] = 1.0
        y1[i] = 0.5 * (x + m + 0.5 + (mu[i] - 0.25) * h)
        mu[i] = m
        w[i] = 0.25 * x * x
    _recur_seg(mu, nn, w, y0, y1)
    _k_finish(ob, xb, nn, tt, y0, y1, scaled)


# ----------------------------------------------------------------------------- chunk drivers
_CHUNK = 8192  # elements per task: classified, grouped by class, computed, scattered back
_BLOCK = 512  # elements per call of a region kernel
_PAD = 32  # class runs are padded to a multiple of this (the vector loops' step)
_LANES = 4  # interleaved counters of the counting sort


@njit(inline="always", **_J)
def _count_ge(e, thresholds):
    """The number of thresholds <= e (a class index; unrolled compares, no lookup)."""
    c = 0
    for k in range(len(thresholds)):
        c += e >= thresholds[k]
    return c


@njit(inline="always", **_J)
def _debye_class(v, x):
    """Debye class (term count, and which side of DD_HI) of v >= V_DEBYE, or _C_EXT."""
    c = 0
    for k in range(1, len(_DEB_K)):
        c += v >= _DEB_VLO[k]
    c += len(_DEB_K) if x > DD_HI * v else 0
    ext = (x < 1.0 / _EXT) | (x > _EXT) | (v > _EXT)
    return _C_EXT if ext else c


# The classifiers compute every candidate and select without branches: the classes of random
# inputs are unpredictable, and the loop over them vectorises.
@njit(inline="always", **_J)
def _class_k(v, x):
    """Class id for log K (v >= 0, x > 0 finite)."""
    e = _exponent(x)
    deb = _debye_class(v, x)
    mil = _C_MIL + min(max(2 * e + ((_bits(x) >> 51) & 1), 0), len(_MIL_N) - 1)
    tem = _C_TEM + _count_ge(e, _TEM_T)
    hank = _C_HANK + _count_ge(e, _HANK_T)
    small = hank if x >= X_HANKEL else (mil if x >= X_TEMME else tem)
    return deb if v >= V_DEBYE else small


@njit(inline="always", **_J)
def _class_i(v, x):
    """Class id for log I (v >= 0, x > 0 finite)."""
    e = _exponent(x)
    deb = _debye_class(v, x)
    ser = _C_SER + _count_ge(e, _SER_T)
    hank = _C_HANK + _count_ge(e, _HANK_T)
    small = hank if (x >= X_HANKEL) & (x >= HANKEL_I_V2 * v * v) else ser
    return deb if v >= V_DEBYE else small


@njit(**_JI)
def _special_i(v, x, scaled):
    """log I (minus x when ``scaled``) where x is not positive and finite or v (>= 0) is not
    finite: NaN for NaN inputs and x < 0; log I_v(0) = 0 (v = 0) or -inf; +inf (-inf scaled) at
    x = inf; -inf for v = inf."""
    if math.isnan(v) or math.isnan(x) or x < 0.0:
        return math.nan
    if x == 0.0:
        return 0.0 if v == 0.0 else -math.inf
    if math.isinf(x):
        return math.nan if math.isinf(v) else (-math.inf if scaled else math.inf)
    return -math.inf


@njit(**_JI)
def _special_k(v, x):
    """log K (scaled or not) at the same special values: NaN, +inf at x = 0, -inf at x = inf,
    +inf for v = inf."""
    if math.isnan(v) or math.isnan(x) or x < 0.0:
        return math.nan
    if x == 0.0:
        return math.inf
    if math.isinf(x):
        return math.nan if math.isinf(v) else -math.inf
    return math.inf


# ----------------------------------------------------------------------------- region entries
# Each region's kernels compile on first need, into a C callback (cfunc) that the chunk driver
# calls through its address. A direct call would link every region's code into the driver and
# optimise and compile it there again (and in every caller above it): the first call compiled
# all of them, four times over, whatever its inputs. Now it compiles the small driver and the
# regions its elements fall in; each piece is cached (numba's cache) on its own.
_R_DEBYE, _R_EXT, _R_HANK, _R_SER, _R_MIL, _R_TEM = range(6)
_NREG = 6


def _region_table(is_i: bool) -> np.ndarray:
    """Region of each class id (-1: no such class) for log I or log K."""
    reg = np.full(_NCLS, -1, np.int64)
    reg[:_C_EXT] = _R_DEBYE
    reg[_C_EXT] = _R_EXT
    reg[_C_HANK:_C_MIL] = _R_HANK
    if is_i:
        reg[_C_SER:_NCLS_I] = _R_SER
    else:
        reg[_C_MIL:_C_TEM] = _R_MIL
        reg[_C_TEM:_NCLS_K] = _R_TEM
    return reg


_REGION_I = _region_table(True)
_REGION_K = _region_table(False)


@intrinsic
def _f64_ptr(typingctx, addr):
    """The float64 pointer at address ``addr`` (int64)."""
    sig = types.CPointer(types.float64)(types.int64)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@intrinsic
def _i64_ptr(typingctx, addr):
    """The int64 pointer at address ``addr`` (int64)."""
    sig = types.CPointer(types.int64)(types.int64)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


_ENTRY_ARGS = 11  # fb, tb, ib (addresses), ncols, a, b, c, is_i, scaled, coef, vmin


@intrinsic
def _call_entry(typingctx, fn, args):
    """Call the C function at address ``fn`` (int64) with the int64 tuple ``args``: a region
    entry, ``void(int64 x _ENTRY_ARGS)``."""
    if not (isinstance(args, types.UniTuple) and args.dtype == types.int64):
        return None
    sig = types.void(types.int64, args)

    def codegen(context, builder, signature, cargs):
        i64 = llvm_ir.IntType(64)
        fnty = llvm_ir.FunctionType(llvm_ir.VoidType(), [i64] * args.count)
        ptr = builder.inttoptr(cargs[0], fnty.as_pointer())
        builder.call(ptr, [builder.extract_value(cargs[1], i) for i in range(args.count)])
        return context.get_dummy_value()

    return sig, codegen


@njit(inline="always", **_J)
def _entry_arrays(fbp, tbp, ibp, ncols, a, b):
    """An entry's arrays from its addresses: the rows v, x, result of elements a..b-1, and the
    scratch tb and ib."""
    fb = carray(_f64_ptr(fbp), (5, ncols))
    tb = carray(_f64_ptr(tbp), (11, _BLOCK))
    ib = carray(_i64_ptr(ibp), (3, ncols))
    return fb[0, a:b], fb[1, a:b], fb[2, a:b], tb, ib


def _ext_seg(fbp, tbp, ibp, ncols, first, last, cls, is_i, scaled_i, coefp, vminp):
    """The Debye elements with v or x outside [2^-400, 2^400]: the scalar ``_debye``."""
    vb, xb, ob, tb, ib = _entry_arrays(fbp, tbp, ibp, ncols, first, last)
    coef = carray(_f64_ptr(coefp), (DEBYE_KMAX, DEBYE_KMAX))
    vmin = carray(_f64_ptr(vminp), (len(_DEBYE_VMIN),))
    sign = 1.0 if is_i else -1.0
    for i in range(last - first):
        shift = (xb[i] if is_i else -xb[i]) if scaled_i else 0.0
        ob[i] = _debye(vb[i], xb[i], sign, shift, coef, vmin)


_ENTRIES = (_debye_seg, _ext_seg, _hankel_seg, _series_seg, _miller_seg, _temme_seg)
_ENTRY_SIG = types.void(*([types.int64] * _ENTRY_ARGS))
_ENTRY_FNS = np.zeros(_NREG, np.int64)  # the entries' addresses, 0 until compiled
_ENTRY_CFUNCS: list = [None] * _NREG  # keeps the compiled entries alive
_ENTRY_LOCK = threading.Lock()


def _build_entries(missing: int) -> None:
    """Compile (or load from numba's cache) the entries of the regions in bit mask ``missing``."""
    with _ENTRY_LOCK:
        for r in range(_NREG):
            if (missing >> r) & 1 and _ENTRY_CFUNCS[r] is None:
                f = cfunc(_ENTRY_SIG, cache=True, error_model="numpy", fastmath={"contract"})(
                    _ENTRIES[r]
                )
                _ENTRY_CFUNCS[r] = f
                _ENTRY_FNS[r] = f.address


# ----------------------------------------------------------------------------- chunk driver
@njit(**_J)
def _kernel(is_i, v, x, out, vstep, xstep, scaled, coef, vmin, fns, first, fb, tb, ib, cs):
    """log I_|v| (is_i) or log K_v of the elements of ``out`` from ``first`` on, chunk by
    chunk.
    v[i * vstep], x[i * xstep]: a step of 0 broadcasts one value. fns: the region entries'
    addresses (0: not compiled yet). Scratch, reused across chunks: fb (5, _CHUNK + _PAD _NCLS)
    float64, tb (11, _BLOCK) float64, ib (3, _CHUNK + _PAD _NCLS) int64, cs (4, _NCLS + 1,
    _LANES) int64.

    Per chunk, the elements are classified (region and term count), grouped by class (a
    counting sort), computed class by class in blocks of _BLOCK, and scattered back.

    Returns (negative orders (I), where it stopped, missing regions): it stops at the first
    chunk that needs a region whose entry is not compiled yet (a bit mask of those regions,
    the chunk left unfinished), else at the end (missing = 0)."""
    n = out.shape[0]
    cid = ib[0]
    perm = ib[1]
    vb = fb[0]
    xb = fb[1]
    ob = fb[2]
    counts = cs[0]
    pos = cs[1]
    start = cs[2, :, 0]
    total = cs[3, :, 0]
    region = _REGION_I if is_i else _REGION_K
    ncols = fb.shape[1]
    ptrs = (np.int64(fb.ctypes.data), np.int64(tb.ctypes.data), np.int64(ib.ctypes.data))
    tail = (np.int64(is_i), np.int64(scaled), np.int64(coef.ctypes.data))
    tail = tail + (np.int64(vmin.ctypes.data),)
    nneg = 0
    for lo in range(first, n, _CHUNK):
        m = min(n - lo, _CHUNK)
        rv = fb[3, :m]
        rx = fb[4, :m]
        if vstep == 1 and xstep == 1:  # read the inputs (float32 or float64) as float64
            for i in range(m):
                rv[i] = float(v[lo + i])
                rx[i] = float(x[lo + i])
        else:  # a single value broadcast (step 0)
            for i in range(m):
                rv[i] = float(v[(lo + i) * vstep])
                rx[i] = float(x[(lo + i) * xstep])
        k = 0
        for i in range(m):
            k += rv[i] < 0.0
            rv[i] = abs(rv[i])
        # classify in loops of their own: without branches they vectorise
        if is_i:
            for i in range(m):
                va = rv[i]
                xa = rx[i]
                normal = (xa > 0.0) & (xa < math.inf) & (va < math.inf)  # False for NaN too
                cid[i] = _class_i(va, xa) if normal else -1
        else:
            for i in range(m):
                va = rv[i]
                xa = rx[i]
                normal = (xa > 0.0) & (xa < math.inf) & (va < math.inf)
                cid[i] = _class_k(va, xa) if normal else -1
        # counting sort by class; counts per (class, i % _LANES), so that neighbouring elements
        # of one class do not wait for each other's counter update
        for c in range(_NCLS):
            for lane in range(_LANES):
                counts[c, lane] = 0
        for i in range(m):
            c = cid[i]
            if c >= 0:
                counts[c, i % _LANES] += 1
            elif is_i:
                out[lo + i] = _special_i(rv[i], rx[i], scaled)
            else:
                out[lo + i] = _special_k(rv[i], rx[i])
        # each class gets a run of the buffer padded to a multiple of _PAD (copies of its first
        # element), so that the vectorised loops never fall back to scalar remainder iterations
        missing = 0
        start[0] = 0
        for c in range(_NCLS):
            a = start[c]
            for lane in range(_LANES):
                pos[c, lane] = a
                a += counts[c, lane]
            total[c] = a - start[c]
            start[c + 1] = start[c] + (total[c] + _PAD - 1) // _PAD * _PAD
            if total[c] > 0 and fns[region[c]] == 0:
                missing |= 1 << region[c]
        if missing:
            return nneg, lo, missing
        nneg += k
        for i in range(m):
            c = cid[i]
            if c >= 0:
                lane = i % _LANES
                a = pos[c, lane]
                pos[c, lane] = a + 1
                perm[a] = i
                vb[a] = rv[i]
                xb[a] = rx[i]
        for c in range(_NCLS):
            a0 = start[c]
            a1 = start[c + 1]
            if a1 == a0:
                continue
            for a in range(a0 + total[c], a1):
                vb[a] = vb[a0]
                xb[a] = xb[a0]
            fn = fns[region[c]]
            for a in range(a0, a1, _BLOCK):
                b = min(a + _BLOCK, a1)
                _call_entry(
                    fn, ptrs + (np.int64(ncols), np.int64(a), np.int64(b), np.int64(c)) + tail
                )
            for a in range(a0, a0 + total[c]):
                out[lo + perm[a]] = ob[a]
    return nneg, n, 0


def _run(is_i: bool, v: np.ndarray, x: np.ndarray, out: np.ndarray, vstep: int, xstep: int,
         scaled: bool) -> int:  # fmt: skip
    """_kernel over ``out``, compiling the region entries it asks for on the way; returns the
    number of negative orders."""
    cols = min(out.shape[0], _CHUNK) + _PAD * _NCLS
    scratch = (
        np.empty((5, cols)),
        np.empty((11, _BLOCK)),
        np.empty((3, cols), np.int64),
        np.empty((4, _NCLS + 1, _LANES), np.int64),
    )
    lo, nneg = 0, 0
    while True:
        k, lo, missing = _kernel(
            is_i, v, x, out, vstep, xstep, scaled, _DEBYE_COEF, _DEBYE_VMIN, _ENTRY_FNS, lo,
            *scratch,
        )  # fmt: skip
        nneg += k
        if not missing:
            return nneg
        _build_entries(missing)
        if any((missing >> r) & 1 and _ENTRY_FNS[r] == 0 for r in range(_NREG)):
            raise RuntimeError(f"log_iv/log_kv: region kernels {missing:#x} did not build")


_WORKER_MIN = 2 * _CHUNK  # elements per thread at least
_POOL: Optional[ThreadPoolExecutor] = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """A persistent thread pool for the kernel (it releases the GIL). Threads rather than
    numba's prange: on a busy machine a parallel region waits at its barriers for threads that
    are not running, which made it slower than one thread; independent pieces do not wait."""
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE < workers:
            if _POOL is not None:
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gnnsys-bessel")
            _POOL_SIZE = workers
        return _POOL


# ----------------------------------------------------------------------------- dispatch
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_KERNEL_DTYPES = (torch.float32, torch.float64)  # what the numba kernels read and write


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


def _broadcast_shape(a: torch.Size, b: torch.Size) -> torch.Size:
    """The broadcast shape of ``a`` and ``b`` (ValueError if they do not broadcast). numpy's,
    not ``torch.broadcast_shapes``: its first call imports sympy, about 1 s."""
    return torch.Size(np.broadcast_shapes(tuple(a), tuple(b)))


def _prepare(
    v: TensorLike, x: TensorLike
) -> Tuple[torch.Tensor, torch.Tensor, torch.dtype, torch.Size]:
    """Validate (v, x); returns them as tensors (not yet broadcast, not copied), the output dtype
    and the broadcast shape."""
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
        shape = _broadcast_shape(vt.shape, xt.shape)
    except ValueError:
        raise ValueError(
            f"v and x must broadcast, got shapes {tuple(vt.shape)} and {tuple(xt.shape)}"
        ) from None
    return vt, xt, out_dtype, shape


def _flat(t: torch.Tensor, shape: torch.Size) -> Tuple[np.ndarray, int]:
    """A 1-D float32/float64 numpy view of ``t`` broadcast to ``shape``, and its step: 0 for a
    single value (no copy), else 1 (copied only when broadcast or not contiguous)."""
    t = t.detach()
    if t.dtype not in _KERNEL_DTYPES:
        t = t.to(torch.float64)  # float16/bfloat16 (exact) or integers
    if t.numel() == 1:
        return t.reshape(1).numpy(), 0
    return t.expand(shape).contiguous().reshape(-1).numpy(), 1


def _auto_backend(device: torch.device) -> str:
    """What ``backend='auto'`` runs on ``device``: numba for CPU tensors; Triton for CUDA
    tensors, or, where Triton is not installed (it is the optional extra ``gpu``), the CPU
    kernels through a copy each way ("numba-copy")."""
    if device.type != "cuda":
        return "numba"
    return "triton" if importlib.util.find_spec("triton") is not None else "numba-copy"


def _raw(
    kind: str,
    v: torch.Tensor,
    x: torch.Tensor,
    scaled: bool = False,
    backend: str = "auto",
    out_dtype: torch.dtype = torch.float64,
) -> Tuple[torch.Tensor, int]:
    """(log I_|v| (kind 'i') or log K_v (kind 'k'), minus x (I) or plus x (K) when ``scaled``,
    of the broadcast shape and dtype ``out_dtype``; the number of negative orders)."""
    shape = _broadcast_shape(v.shape, x.shape)
    cuda = x.device if x.device.type == "cuda" else v.device
    if backend == "auto":
        backend = _auto_backend(cuda)
        if backend == "numba-copy":  # 'auto' only: a caller's backend is taken as given
            out, nneg = _raw(kind, v.cpu(), x.cpu(), scaled, "numba", out_dtype)
            return out.to(cuda), nneg
    if backend == "triton":
        try:
            from gnnsys.ops import _bessel_triton
        except ImportError as err:  # triton is the optional extra `gpu`
            raise RuntimeError(
                "log_iv/log_kv on CUDA tensors need Triton: pip install 'gnnsys[gpu]'"
            ) from err
        if x.device.type != "cuda" and not _bessel_triton.INTERPRETED:
            raise RuntimeError(triton_device_error("log_iv/log_kv backend='triton'", x.device))
        vf = v.detach().to(torch.float64).expand(shape).reshape(-1)
        xf = x.detach().to(torch.float64).expand(shape).reshape(-1)
        nneg = int((vf < 0).sum()) if kind == "i" else 0
        out = _bessel_triton.log_bessel(kind, vf.abs().contiguous(), xf.contiguous(), scaled)
        return out.reshape(shape).to(out_dtype), nneg
    if backend != "numba":
        raise ValueError(f"backend must be 'auto', 'numba' or 'triton', got {backend!r}")
    if x.device.type != "cpu":
        raise ValueError(f"the numba backend needs cpu tensors, got {x.device}")
    n = math.prod(shape)
    odt = out_dtype if out_dtype in _KERNEL_DTYPES else torch.float64
    out = torch.empty(n, dtype=odt)
    nneg = 0
    if n:
        va, vstep = _flat(v, shape)
        xa, xstep = _flat(x, shape)
        o = out.numpy()
        workers = min(get_num_threads(), n // _WORKER_MIN)
        if workers <= 1:
            nneg = _run(kind == "i", va, xa, o, vstep, xstep, scaled)
        else:  # contiguous pieces, whole chunks each; the last one on this thread
            step = -(-n // workers // _CHUNK) * _CHUNK
            pieces = []
            for a in range(0, n, step):
                vp = va[a : a + step] if vstep else va
                xp = xa[a : a + step] if xstep else xa
                pieces.append((kind == "i", vp, xp, o[a : a + step], vstep, xstep, scaled))
            futures = [_pool(workers).submit(_run, *p) for p in pieces[:-1]]
            nneg = _run(*pieces[-1]) + sum(f.result() for f in futures)
    return out.reshape(shape).to(out_dtype), int(nneg)


def _sinpi(v: torch.Tensor) -> torch.Tensor:
    """sin(pi v), exactly 0 at integers and accurate for large |v| (reduction is exact)."""
    n = torch.round(v)
    r = v - n
    odd = torch.remainder(n, 2.0) != 0
    s = torch.sin(math.pi * r)
    return torch.where(odd, -s, s)


def _log_iv_signed(
    v: torch.Tensor, x: torch.Tensor, scaled: bool, backend: str, out_dtype: torch.dtype
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(log |I_v(x)| [- x], sign I_v(x)) for any real v; the sign is None when every order is
    non-negative (then it is +1 everywhere).

    Negative orders: I_{-n} = I_n + (2/pi) sin(n pi) K_n (DLMF 10.27.2) as a signed sum of logs;
    scaled, the K term carries e^{-2x}."""
    la, nneg = _raw("i", v, x, scaled, backend, out_dtype)
    if nneg == 0:
        return la, None
    if la.dtype != torch.float64:  # combine the two terms in float64, round once
        la, _ = _raw("i", v, x, scaled, backend)
    shape = la.shape
    v = v.detach().to(torch.float64).expand(shape)
    x = x.detach().to(torch.float64).expand(shape)
    neg = v < 0
    la_n = la[neg]
    vn, xn = -v[neg], x[neg]
    sn = _sinpi(vn)
    c = _LOG_2_OVER_PI + torch.log(sn.abs()) + _raw("k", vn, xn, scaled, backend)[0]
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
    sign = torch.ones_like(la)
    sign[neg] = s_n
    return la.to(out_dtype), sign.to(out_dtype)


# ----------------------------------------------------------------------------- autograd
class _LogIv(torch.autograd.Function):
    """log|I_v(x)| [- x]; d/dx log|I_v| = v/x + I_{v+1}/I_v (signed ratio) [- 1]. The sign goes
    to ``holder["sign"]`` (None: all +1), so that the common case allocates no sign tensor."""

    @staticmethod
    def forward(ctx, v, x, scaled, out_dtype, backend, holder):
        la, sign = _log_iv_signed(v, x, scaled, backend, out_dtype)
        holder["sign"] = sign
        ctx.save_for_backward(v, x, la)
        ctx.sign = sign
        ctx.args = (scaled, out_dtype, backend)
        return la

    @staticmethod
    def backward(ctx, g):
        v, x, la = ctx.saved_tensors
        scaled = ctx.args[0]
        holder: dict = {}
        la1 = _LogIv.apply(v.to(torch.float64) + 1.0, x, *ctx.args, holder)
        ratio = torch.exp(la1 - la)
        for s in (ctx.sign, holder["sign"]):
            if s is not None:
                ratio = ratio * s
        ratio = torch.where(x == 0, torch.zeros_like(ratio), ratio)
        term = torch.where(v == 0, torch.zeros_like(ratio), v / x)
        grad = term + ratio - 1.0 if scaled else term + ratio
        return None, (g * grad).to(x.dtype), None, None, None, None


class _LogKv(torch.autograd.Function):
    """log K_v(x) [+ x]; d/dx log K_v = -|v|/x - K_{|v|-1}/K_{|v|} [+ 1]."""

    @staticmethod
    def forward(ctx, v, x, scaled, out_dtype, backend):
        out, _ = _raw("k", v, x, scaled, backend, out_dtype)
        ctx.save_for_backward(v, x, out)
        ctx.args = (scaled, out_dtype, backend)
        return out

    @staticmethod
    def backward(ctx, g):
        v, x, out = ctx.saved_tensors
        scaled = ctx.args[0]
        av = v.to(torch.float64).abs()
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
    vt, xt, out_dtype, shape = _prepare(v, x)
    if isinstance(x, torch.Tensor) and x.requires_grad:
        xt = x.expand(shape)  # keep the autograd link to the caller's x
    return vt, xt, out_dtype


def _log_i(v, x, scaled, return_sign, backend):
    vt, xt, out_dtype = _inputs(v, x)
    holder: dict = {}
    la = _LogIv.apply(vt, xt, scaled, out_dtype, backend, holder)
    sign = holder["sign"]
    if return_sign:
        return la, (torch.ones_like(la) if sign is None else sign)
    if sign is None:
        return la
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
    'numba', 'triton') is for testing; 'auto' uses numba for CPU tensors and Triton for CUDA
    tensors (the CPU kernels through a copy where Triton is not installed).

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
