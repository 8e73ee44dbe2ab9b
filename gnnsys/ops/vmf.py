"""Von Mises-Fisher helpers built on ``log_iv``: normaliser, mean resultant length, MLE, sampler.

The vMF density on the unit sphere S^{p-1} in R^p is ``C_p(kappa) exp(kappa mu^T x)`` with
``C_p(kappa) = kappa^(p/2-1) / ((2 pi)^(p/2) I_{p/2-1}(kappa))``. In high dimension
``I_{p/2-1}(kappa)`` under- or overflows double precision (SciPy's ``vonmises_fisher.fit``
returns kappa = 1e-8 for p = 2048 when the true kappa is 2048), so everything here works with
``log_iv``, which does not.

Example:
    >>> X = sample_vmf(torch.eye(2048, dtype=torch.float64)[0], 2048.0, 5000, seed=0)
    >>> mu, kappa = fit_vmf(X)   # kappa close to 2048
"""

from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import numpy as np
import torch

from gnnsys._checks import check_data_device
from gnnsys.ops.bessel import log_iv, log_ive

Number = Union[int, float]


def _check_p(p: object) -> int:
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
        raise TypeError(f"p must be an int (the dimension of the ambient space), got {p!r}")
    if p < 2:
        raise ValueError(f"p must be >= 2 (the sphere S^(p-1) in R^p), got {p}")
    if p > _P_MAX:  # p/2 - 1 is a float64 order: beyond it, an OverflowError deep inside
        raise ValueError(
            f"p must be at most 2**1010 (larger p overflow float64), got a {p.bit_length()}-bit int"
        )
    return int(p)


_P_MAX = 2**1010  # lgamma(p/2) (the value at kappa = 0) overflows float64 near 2**1016


def _as_kappa(kappa: Union[torch.Tensor, Number]) -> torch.Tensor:
    if isinstance(kappa, torch.Tensor):
        k = kappa
    elif isinstance(kappa, (int, float, np.integer, np.floating)) and not isinstance(kappa, bool):
        k = torch.tensor(float(kappa), dtype=torch.float64)
    else:
        raise TypeError(f"kappa must be a tensor or a real number, got {type(kappa).__name__}")
    if k.dtype == torch.bool or k.is_complex():
        raise TypeError(f"kappa must hold real numbers, got dtype {k.dtype}")
    check_data_device("kappa", k)
    if not k.is_floating_point():
        k = k.to(torch.get_default_dtype())
    if k.numel() and bool((k.detach() < 0).any()):
        bad = float(k.detach()[k.detach() < 0].reshape(-1)[0])
        raise ValueError(f"kappa must be >= 0 (a concentration), got {bad}")
    return k


class _VmfLogNormalizer(torch.autograd.Function):
    """log C_p(kappa), with the exact derivative -A_p(kappa) (differentiating the formula would
    subtract two terms of size (p/2-1)/kappa and lose digits for small kappa)."""

    @staticmethod
    def forward(ctx, k, p):
        kd = k.detach().to(torch.float64)
        nu = p / 2.0 - 1.0
        zero = kd == 0
        inf = torch.isposinf(kd)
        ks = torch.where(zero | inf, torch.ones_like(kd), kd)
        val = nu * torch.log(ks) - (p / 2.0) * math.log(2.0 * math.pi) - log_iv(nu, ks)
        at0 = math.lgamma(p / 2.0) - math.log(2.0) - (p / 2.0) * math.log(math.pi)
        val = torch.where(zero, torch.full_like(val, at0), val)
        # The limit at infinity: log C_p(k) ~ -k + ((p-1)/2) log k + const -> -inf (the formula
        # would give inf - inf = NaN). NaN kappa stays NaN.
        val = torch.where(inf, torch.full_like(val, -math.inf), val)
        ctx.save_for_backward(k)
        ctx.p = p
        return val.to(k.dtype)

    @staticmethod
    def backward(ctx, g):
        (k,) = ctx.saved_tensors
        return -g * vmf_mean_resultant_length(k.detach(), ctx.p).to(g.dtype), None


def vmf_log_normalizer(kappa: Union[torch.Tensor, Number], p: int) -> torch.Tensor:
    """``log C_p(kappa)``: the log of the vMF normalising constant on S^(p-1), for any p and kappa.

    ``log C_p = (p/2-1) log kappa - (p/2) log(2 pi) - log I_{p/2-1}(kappa)``; at kappa = 0 it is
    minus the log surface area, ``lgamma(p/2) - log 2 - (p/2) log pi``; at kappa = inf its limit,
    -inf (the density concentrates on a point); NaN gives NaN and a negative kappa is an error.
    Differentiable in kappa (d/dkappa log C_p = -A_p(kappa), computed as such; -1 at inf).

    Example:
        >>> vmf_log_normalizer(torch.tensor([0.0, 2048.0], dtype=torch.float64), 2048)
        tensor([4898.3839, 4125.3323], dtype=torch.float64)
    """
    p = _check_p(p)
    return _VmfLogNormalizer.apply(_as_kappa(kappa), p)


def vmf_mean_resultant_length(kappa: Union[torch.Tensor, Number], p: int) -> torch.Tensor:
    """``A_p(kappa) = I_{p/2}(kappa) / I_{p/2-1}(kappa)``, the expected |E x| of vMF(mu, kappa).

    0 at kappa = 0, its limit 1 at kappa = inf; NaN gives NaN; a negative kappa is an error.
    Accurate to ~1e-13 relative for every p and kappa whose result is a normal float64 (checked
    against mpmath, p up to 2**60; see ``_bessel_ratio``).

    Example:
        >>> vmf_mean_resultant_length(2048.0, 2048)
        tensor(0.6181, dtype=torch.float64)
    """
    p = _check_p(p)
    k = _as_kappa(kappa)
    kd = k.to(torch.float64)
    finite = torch.isfinite(kd) & (kd > 0)
    ratio = torch.where(torch.isposinf(kd), torch.ones_like(kd), kd)  # NaN stays NaN
    ratio = torch.where(kd == 0, torch.zeros_like(kd), ratio)
    if bool(finite.any()):
        ratio = ratio.masked_scatter(finite, _bessel_ratio(p / 2.0 - 1.0, kd[finite]))
    return ratio.to(k.dtype)


# Orders from which the ratio uses Debye's uniform expansion (4 terms: truncation below 1e-16).
_DEBYE_MIN_ORDER = 1000.0
_CF_STEPS = 80  # backward-recurrence steps where x <= 2 (nu + 1): error factor < 0.39 a step


def _bessel_ratio(nu: float, x: torch.Tensor) -> torch.Tensor:
    """``I_{nu+1}(x) / I_nu(x)`` for nu >= 0 and finite x > 0 (float64), without cancellation.

    ``exp(log_ive(nu + 1, x) - log_ive(nu, x))`` subtracts two logs of size up to ~nu log nu
    and keeps only ~16 - log10(that) digits (relative error 0.77 at p = 1e15, kappa = 1). So:
    - nu >= 1000: the difference of Debye's expansions of log I_{nu+1} and log I_nu, written
      so that no large terms cancel (``_ratio_debye``);
    - nu < 1000, x <= 2 (nu + 1): Gauss's continued fraction by backward recurrence
      ``R_{k-1} = x / (2k + x R_k)`` from Amos's bound at k = nu + 80;
    - nu < 1000, x larger: the log_ive difference, whose logs are then below ~300.
    """
    if nu >= _DEBYE_MIN_ORDER:
        return _ratio_debye(nu, x)
    small = x <= 2.0 * (nu + 1.0)
    out = torch.empty_like(x)
    if bool(small.any()):
        xs = x[small]
        k = nu + _CF_STEPS
        r = xs / (k + 1.0 + torch.sqrt((k + 1.0) ** 2 + xs * xs))
        for j in range(_CF_STEPS, 0, -1):
            r = xs / (2.0 * (nu + j) + xs * r)
        out[small] = r
    if not bool(small.all()):
        xb = x[~small]
        out[~small] = torch.exp(log_ive(nu + 1.0, xb) - log_ive(nu, xb))
    return out


def _ratio_debye(nu: float, x: torch.Tensor) -> torch.Tensor:
    """The ratio from log I_m(x) = f(m) - log(2 pi s_m) / 2 + log S_m (Debye, s_m =
    hypot(m, x), f(m) = s_m + m log(x / (m + s_m)), S_m = 1 + sum_k u_k(m / s_m) / m^k), its
    difference between m = nu + 1 and nu taken term by term: s_{nu+1} - s_nu =
    (2 nu + 1) / (s_{nu+1} + s_nu), the logs through log1p."""
    s0 = torch.hypot(torch.full_like(x, nu), x)
    s1 = torch.hypot(torch.full_like(x, nu + 1.0), x)
    d = (2.0 * nu + 1.0) / (s1 + s0)
    f = d + torch.log(x) - torch.log(nu + 1.0 + s1) - nu * torch.log1p((1.0 + d) / (nu + s0))
    e0, e1 = _debye_tail(nu, nu / s0), _debye_tail(nu + 1.0, (nu + 1.0) / s1)
    return torch.exp(f - 0.5 * torch.log1p(d / s0) + torch.log1p((e1 - e0) / (1.0 + e0)))


def _debye_tail(m: float, t: torch.Tensor) -> torch.Tensor:
    """``S_m - 1 = u_1(t)/m + ... + u_4(t)/m^4``, Debye's polynomials (DLMF 10.41.10)."""
    t2 = t * t
    u1 = t * (3.0 - 5.0 * t2) / 24.0
    u2 = t2 * (81.0 + t2 * (-462.0 + 385.0 * t2)) / 1152.0
    u3 = t * t2 * (30375.0 + t2 * (-369603.0 + t2 * (765765.0 - 425425.0 * t2))) / 414720.0
    u4 = (
        t2
        * t2
        * (
            4465125.0
            + t2 * (-94121676.0 + t2 * (349922430.0 + t2 * (-446185740.0 + 185910725.0 * t2)))
        )
        / 39813120.0
    )
    inv = 1.0 / m
    return inv * (u1 + inv * (u2 + inv * (u3 + inv * u4)))


def _a_and_slope(kappa: float, p: int) -> Tuple[float, float]:
    """A_p(kappa) and A_p'(kappa) = 1 - A^2 - (p-1) A / kappa."""
    a = float(vmf_mean_resultant_length(torch.tensor(kappa, dtype=torch.float64), p))
    return a, 1.0 - a * a - (p - 1) * a / kappa


def vmf_kappa_from_rbar(rbar: float, p: int, *, max_iter: int = 200) -> float:
    """Solve ``A_p(kappa) = rbar`` for kappa (the vMF MLE of the concentration).

    Safeguarded Newton from Banerjee et al.'s start ``rbar (p - rbar^2) / (1 - rbar^2)``: every
    iterate keeps a bracket [lo, hi] with A(lo) < rbar < A(hi) (A is increasing), and a Newton
    step that would leave it is replaced by bisection (geometric once the bracket is wide).
    Stops when the bracket or the step is within 4 ulp of kappa.

    Example:
        >>> vmf_kappa_from_rbar(0.5, 3)
        1.7967559847237136
    """
    p = _check_p(p)
    rbar = float(rbar)
    if not (0.0 <= rbar <= 1.0):
        raise ValueError(f"rbar must be in [0, 1], got {rbar}")
    if rbar == 0.0:
        return 0.0
    if rbar == 1.0:
        return math.inf
    kappa = rbar * (p - rbar * rbar) / (1.0 - rbar * rbar)
    lo, hi = 0.0, math.inf
    tol = 4.0 * 2.0**-52
    for _ in range(max_iter):
        a, slope = _a_and_slope(kappa, p)
        f = a - rbar
        if f == 0.0:
            return kappa
        if f < 0.0:
            lo = kappa
        else:
            hi = kappa
        step = f / slope if slope > 0.0 else math.nan
        new = kappa - step
        if not (lo < new < hi):  # also catches NaN
            if math.isinf(hi):
                new = 2.0 * kappa + 1.0
            elif lo == 0.0:
                new = 0.5 * hi
            elif hi > 4.0 * lo:
                new = math.sqrt(lo * hi)
            else:
                new = 0.5 * (lo + hi)
        if abs(new - kappa) <= tol * kappa or (math.isfinite(hi) and hi - lo <= tol * hi):
            return new
        kappa = new
    return kappa


def fit_vmf(X: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Maximum-likelihood vMF fit: returns ``(mu, kappa)`` for the rows of ``X`` (n, p).

    Rows are normalised to unit length first (a zero row is an error). mu is the normalised
    mean; kappa solves A_p(kappa) = |mean| (``vmf_kappa_from_rbar``). Works in any dimension,
    including p in the tens of thousands where SciPy's fit fails.

    Example:
        >>> mu, kappa = fit_vmf(sample_vmf(torch.tensor([0.0, 0.0, 1.0]), 10.0, 1000, seed=0))
    """
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X must be a torch.Tensor of shape (n, p), got {type(X).__name__}")
    if X.dim() != 2 or X.shape[0] < 1 or X.shape[1] < 2:
        raise ValueError(f"X must have shape (n >= 1, p >= 2), got {tuple(X.shape)}")
    if not X.is_floating_point():
        raise TypeError(f"X must be floating point, got dtype {X.dtype}")
    check_data_device("X", X)
    Xd = X.detach().to(torch.float64)
    scale = Xd.abs().amax(dim=1)  # largest |entry| per row
    bad = (scale == 0) | ~torch.isfinite(scale)
    if bool(bad.any()):
        row = int(torch.nonzero(bad)[0])
        raise ValueError(
            f"X row {row} has norm {float(Xd[row].norm())}; rows must be nonzero, finite"
        )
    # A row of entries near 1e200 (1e-200) would overflow (underflow) in the sum of squares of
    # its norm: such rows are scaled by their largest |entry| first (others are left as given).
    extreme = (scale > 2.0**500) | (scale < 2.0**-500)
    Xd = torch.where(extreme[:, None], Xd / scale[:, None], Xd)
    norms = Xd.norm(dim=1)
    mean = (Xd / norms[:, None]).mean(dim=0)
    r = float(mean.norm())
    rbar = min(r, 1.0)
    mu = mean / r if r > 0 else torch.zeros_like(mean)
    kappa = vmf_kappa_from_rbar(rbar, X.shape[1])
    return mu.to(X.dtype), torch.tensor(kappa, dtype=X.dtype)


def sample_vmf(
    mu: torch.Tensor, kappa: float, n: int, *, seed: Optional[int] = None
) -> torch.Tensor:
    """``n`` samples of vMF(mu, kappa) on S^(p-1) (Wood 1994: rejection sampling of w = mu^T x).

    Deterministic given ``seed``. Returns (n, p) in mu's dtype.

    Example:
        >>> X = sample_vmf(torch.tensor([0.0, 0.0, 1.0]), 10.0, 1000, seed=0)
    """
    if not isinstance(mu, torch.Tensor) or mu.dim() != 1 or mu.numel() < 2:
        raise ValueError("mu must be a 1-D tensor with p >= 2 entries")
    nrm = float(mu.detach().double().norm())
    if not nrm > 0 or not math.isfinite(nrm):
        raise ValueError(f"mu must be a nonzero finite vector, got norm {nrm}")
    kappa = float(kappa)
    if not kappa >= 0 or not math.isfinite(kappa):
        raise ValueError(f"kappa must be finite and >= 0, got {kappa}")
    if int(n) < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    n = int(n)
    p = mu.numel()
    rng = np.random.default_rng(seed)
    m = p - 1.0
    b = m / (2.0 * kappa + math.sqrt(4.0 * kappa * kappa + m * m))
    x0 = (1.0 - b) / (1.0 + b)
    c = kappa * x0 + m * math.log(1.0 - x0 * x0)
    ws = []
    have = 0
    while have < n:
        want = max(16, int(1.3 * (n - have)))
        z = rng.beta(m / 2.0, m / 2.0, size=want)
        w = (1.0 - (1.0 + b) * z) / (1.0 - (1.0 - b) * z)
        u = rng.random(want)
        ok = kappa * w + m * np.log1p(-x0 * w) - c >= np.log(u)
        ws.append(w[ok])
        have += int(ok.sum())
    w = np.concatenate(ws)[:n] if n else np.zeros(0)
    v = rng.standard_normal((n, p))
    v[:, 0] = 0.0
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
    x = v * np.sqrt(np.maximum(1.0 - w * w, 0.0))[:, None]
    x[:, 0] = w
    # Householder reflection taking e_1 to mu / |mu|
    e = mu.detach().double().cpu().numpy() / nrm
    h = e.copy()
    h[0] -= 1.0
    hn = np.linalg.norm(h)
    if hn > 1e-12:
        h /= hn
        x = x - 2.0 * np.outer(x @ h, h)
    return torch.from_numpy(x).to(mu.dtype)
