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

    Example:
        >>> vmf_mean_resultant_length(2048.0, 2048)
        tensor(0.6181, dtype=torch.float64)
    """
    p = _check_p(p)
    k = _as_kappa(kappa)
    nu = p / 2.0 - 1.0
    # scaled logs: log I_v(k) is ~k for large k and its rounding would swamp 1 - A_p
    ratio = torch.exp(log_ive(nu + 1.0, k) - log_ive(nu, k))
    ratio = torch.where(torch.isposinf(k), torch.ones_like(ratio), ratio)  # not -inf - -inf
    return torch.where(k == 0, torch.zeros_like(ratio), ratio)


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
