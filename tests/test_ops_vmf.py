"""Tests for gnnsys.ops.vmf: vMF log normaliser, mean resultant length, MLE, sampler."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch

from gnnsys.ops.vmf import (
    fit_vmf,
    sample_vmf,
    vmf_kappa_from_rbar,
    vmf_log_normalizer,
    vmf_mean_resultant_length,
)

mp.mp.dps = 50


def _log_iv_mp(v, x):
    """log I_v(x) at 50 digits from the ascending series, summed outward from its largest term
    (mpmath's besseli does not converge for v ~ x ~ 1e4)."""
    with mp.workdps(70):
        v, x = mp.mpf(v), mp.mpf(x)
        q = x * x / 4
        k0 = int(mp.floor((mp.sqrt(v * v + x * x) - v) / 2))
        lead = 2 * k0 * mp.log(x / 2) - mp.loggamma(k0 + 1) - mp.loggamma(v + k0 + 1)
        total, tol = mp.mpf(1), mp.mpf(10) ** -60
        t, k = mp.mpf(1), k0
        while t >= tol * total:  # terms above the peak
            t = t * q / ((k + 1) * (v + k + 1))
            k += 1
            total += t
        t, k = mp.mpf(1), k0
        while k > 0 and t >= tol * total:  # and below it
            t = t * (k * (v + k)) / q
            k -= 1
            total += t
        return v * mp.log(x / 2) + lead + mp.log(total)


def _a_mp(kappa, p):
    nu = mp.mpf(p) / 2 - 1
    return mp.exp(_log_iv_mp(nu + 1, kappa) - _log_iv_mp(nu, kappa))


# (p, kappa): low and very high dimension, weak and strong concentration
CASES = [
    (2, 0.5),
    (3, 10.0),
    (16, 5.0),
    (100, 1e3),
    (2048, 2048.0),
    (8192, 4096.0),
    (32768, 32768.0),
    (32768, 100.0),
]


@pytest.mark.parametrize("p,kappa", CASES)
def test_population_mle_recovers_kappa(p, kappa):
    rbar = float(_a_mp(kappa, p))
    got = vmf_kappa_from_rbar(rbar, p)
    assert abs(got - kappa) <= 1e-10 * kappa


@pytest.mark.parametrize("p,kappa", [(3, 10.0), (2048, 2048.0), (32768, 30000.0)])
def test_fit_on_population_rows(p, kappa):
    """Two rows whose mean is exactly rbar * mu: fit_vmf returns mu and the population kappa."""
    rbar = float(_a_mp(kappa, p))
    mu = torch.zeros(p, dtype=torch.float64)
    mu[1] = 1.0
    perp = torch.zeros(p, dtype=torch.float64)
    perp[0] = 1.0
    side = math.sqrt(1.0 - rbar * rbar)
    X = torch.stack([rbar * mu + side * perp, rbar * mu - side * perp])
    mu_hat, k_hat = fit_vmf(X)
    torch.testing.assert_close(mu_hat, mu, rtol=0, atol=1e-15)
    assert abs(float(k_hat) - kappa) <= 1e-10 * kappa


def test_mean_resultant_length_matches_mpmath():
    # A = exp(log_ive(nu+1) - log_ive(nu)): each log is rounded to double, so the relative error
    # of A is a few ulp of |log_ive| (about 1e-13 at p = 8192, kappa = 4096)
    for p, kappa in CASES + [(3, 1e6), (5, 1e-6)]:
        got = float(vmf_mean_resultant_length(torch.tensor(kappa, dtype=torch.float64), p))
        want = float(_a_mp(kappa, p))
        nu = mp.mpf(p) / 2 - 1
        size = max(1.0, abs(float(_log_iv_mp(nu, kappa) - kappa)))
        assert abs(got - want) <= 8 * 2.0**-52 * size * want, (p, kappa)
    assert float(vmf_mean_resultant_length(0.0, 7)) == 0.0


def _ratio_debye_mp(nu, x):
    # I_{nu+1}(x) / I_nu(x) from Debye's expansion in 50-digit arithmetic: for nu >= 1e6 its
    # truncation (u_5 / nu^5) is below 1e-30; mpmath's besseli does not converge there
    nu, x = mp.mpf(nu), mp.mpf(x)

    def log_i(m):
        s = mp.sqrt(m * m + x * x)
        t = m / s
        u = [
            t * (3 - 5 * t**2) / 24,
            t**2 * (81 - 462 * t**2 + 385 * t**4) / 1152,
            t**3 * (30375 - 369603 * t**2 + 765765 * t**4 - 425425 * t**6) / 414720,
            t**4 * (4465125 - 94121676 * t**2 + 349922430 * t**4 - 446185740 * t**6
                    + 185910725 * t**8) / 39813120,
        ]  # fmt: skip
        tail = sum(c / m ** (i + 1) for i, c in enumerate(u))
        return s + m * mp.log(x / (m + s)) - mp.log(2 * mp.pi * s) / 2 + mp.log(1 + tail)

    return mp.exp(log_i(nu + 1) - log_i(nu))


@pytest.mark.parametrize("p", [2, 3, 10, 1999, 2003, 10**4, 10**6, 10**9, 10**12, 10**15, 2**60])
def test_mean_resultant_length_is_accurate_for_every_order(p):
    # The log_ive difference lost every digit at huge p (0.77 relative at p = 1e15, kappa = 1;
    # 113 at 2**53): now ~1e-13 wherever the result is a normal float64
    with mp.workdps(50):
        nu = p / 2 - 1  # the order the function computes with (p = 2**60: 2**59, rounded)
        kappas = [1e-8, 1e-3, 0.5, 1.0, 3.0, 100.0, 1e3, 1e4, 1e6, 1e9, 1e12, 1e15, 1e18]
        got = vmf_mean_resultant_length(torch.tensor(kappas, dtype=torch.float64), p)
        for kappa, a in zip(kappas, got.tolist()):
            if nu >= 1e6:
                want = _ratio_debye_mp(nu, kappa)
            else:
                try:
                    want = mp.besseli(nu + 1, kappa) / mp.besseli(nu, kappa)
                except mp.libmp.NoConvergence:
                    want = _ratio_debye_mp(nu, kappa)
            assert abs(a / float(want) - 1) < 2e-13, (p, kappa, a, float(want))


def test_debye_reference_agrees_with_mpmath_where_both_work():
    with mp.workdps(50):
        for nu, x in [(1e4, 1.0), (1e4, 1e4), (1e5, 1e3), (1e6, 1e4)]:
            ratio = _ratio_debye_mp(nu, x) / (mp.besseli(nu + 1, x) / mp.besseli(nu, x))
            assert abs(ratio - 1) < 1e-20, (nu, x)


def test_log_normalizer_matches_mpmath():
    for p, kappa in CASES + [(2048, 1e-8), (3, 1e5)]:
        nu = mp.mpf(p) / 2 - 1
        want = nu * mp.log(kappa) - mp.mpf(p) / 2 * mp.log(2 * mp.pi) - _log_iv_mp(nu, kappa)
        got = float(vmf_log_normalizer(torch.tensor(kappa, dtype=torch.float64), p))
        assert abs(got - float(want)) <= 16 * 2.0**-52 * max(1.0, abs(float(want))), (p, kappa)
    # kappa = 0: minus the log area of S^(p-1); continuous from above
    for p in (2, 3, 2048):
        area = mp.log(2) + mp.mpf(p) / 2 * mp.log(mp.pi) - mp.loggamma(mp.mpf(p) / 2)
        at0 = float(vmf_log_normalizer(0.0, p))
        assert abs(at0 + float(area)) <= 1e-12 * max(1.0, abs(float(area)))
        assert abs(float(vmf_log_normalizer(1e-12, p)) - at0) <= 1e-9


def test_infinite_and_nan_kappa():
    # log C_p(k) = -k + ((p-1)/2) log k - ((p-1)/2) log(2 pi) + O(1/k) -> -inf: the limit, not
    # inf - inf = NaN. A_p -> 1 and the gradient -A_p -> -1. NaN propagates, in a batch too.
    for p in (2, 3, 2048):
        lc = vmf_log_normalizer(torch.tensor([1e6, math.inf], dtype=torch.float64), p)
        assert -1e6 < float(lc[0]) < -0.95e6 and lc[1].item() == -math.inf, p
        assert vmf_log_normalizer(math.inf, p).item() == -math.inf
        assert float(vmf_mean_resultant_length(math.inf, p)) == 1.0
    assert vmf_log_normalizer(torch.tensor(math.inf), 5).item() == -math.inf  # float32
    k = torch.tensor([2.0, math.inf, math.nan, 0.0], dtype=torch.float64, requires_grad=True)
    lc = vmf_log_normalizer(k, 4)
    assert torch.isfinite(lc[[0, 3]]).all() and lc[1] == -math.inf and torch.isnan(lc[2])
    (g,) = torch.autograd.grad(lc.sum(), k)
    assert g[1].item() == -1.0 and torch.isnan(g[2]) and torch.isfinite(g[[0, 3]]).all()
    a = vmf_mean_resultant_length(k.detach(), 4)
    assert a.tolist()[1] == 1.0 and math.isnan(a.tolist()[2])
    for bad in (-1.0, -math.inf):
        with pytest.raises(ValueError, match=r"kappa must be >= 0 .*got -"):
            vmf_log_normalizer(torch.tensor([1.0, bad]), 3)
        with pytest.raises(ValueError, match="kappa must be >= 0"):
            vmf_mean_resultant_length(bad, 3)


def test_log_normalizer_gradient_is_minus_a():
    k = torch.tensor([0.3, 50.0, 2048.0, 1e5], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(vmf_log_normalizer(k, 2048).sum(), k)
    want = -vmf_mean_resultant_length(k.detach(), 2048)
    torch.testing.assert_close(g, want, rtol=0, atol=0)
    k0 = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    (g0,) = torch.autograd.grad(vmf_log_normalizer(k0, 5).sum(), k0)
    assert torch.isfinite(g0).all()


def test_sampler_is_deterministic_and_on_the_sphere():
    mu = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64) / 3.0
    a = sample_vmf(mu, 4.0, 3000, seed=7)
    b = sample_vmf(mu, 4.0, 3000, seed=7)
    assert torch.equal(a, b) and a.shape == (3000, 3)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(3000, dtype=torch.float64))
    assert not torch.equal(a, sample_vmf(mu, 4.0, 3000, seed=8))


@pytest.mark.parametrize("p,kappa", [(3, 4.0), (50, 20.0), (1024, 1024.0)])
def test_sampler_mean_matches_population(p, kappa):
    n = 20000 if p < 1000 else 4000
    mu = torch.zeros(p, dtype=torch.float64)
    mu[p // 2] = 1.0
    X = sample_vmf(mu, kappa, n, seed=0)
    mean = X.mean(0)
    a = float(vmf_mean_resultant_length(kappa, p))
    # |mean| concentrates at A_p(kappa); the along-mu component has sd <= 1/sqrt(n)
    assert abs(float(mean @ mu) - a) <= 5.0 / math.sqrt(n)
    assert float((mean / mean.norm()) @ mu) > 0.99


def test_fit_on_samples_high_dimension():
    p, kappa = 2048, 2048.0
    mu = torch.zeros(p, dtype=torch.float64)
    mu[0] = 1.0
    X = sample_vmf(mu, kappa, 4000, seed=1)
    mu_hat, k_hat = fit_vmf(X)
    assert abs(float(k_hat) - kappa) <= 0.05 * kappa
    assert float(mu_hat @ mu) > 0.999


def test_kappa_edge_cases():
    assert vmf_kappa_from_rbar(0.0, 5) == 0.0
    assert vmf_kappa_from_rbar(1.0, 5) == math.inf
    tiny = vmf_kappa_from_rbar(1e-12, 3)
    assert abs(tiny - 3e-12) <= 1e-20


def test_bad_inputs():
    with pytest.raises(ValueError, match="p must be >= 2"):
        vmf_log_normalizer(1.0, 1)
    with pytest.raises(TypeError, match="p must be an int"):
        vmf_log_normalizer(1.0, 3.0)
    with pytest.raises(ValueError, match="kappa must be >= 0"):
        vmf_log_normalizer(torch.tensor([1.0, -2.0]), 3)
    with pytest.raises(ValueError, match="rbar"):
        vmf_kappa_from_rbar(1.5, 3)
    with pytest.raises(ValueError, match="shape"):
        fit_vmf(torch.ones(5))
    with pytest.raises(ValueError, match="row 1"):
        fit_vmf(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(TypeError, match="floating"):
        fit_vmf(torch.ones(3, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="kappa"):
        sample_vmf(torch.tensor([1.0, 0.0]), -1.0, 5)
    with pytest.raises(ValueError, match="mu"):
        sample_vmf(torch.zeros(3), 1.0, 5)


@pytest.mark.parametrize(
    "kappa,exc,match",
    [
        (torch.tensor([1j]), TypeError, "kappa must hold real numbers, got dtype torch.complex64"),
        (torch.tensor([True]), TypeError, "kappa must hold real numbers, got dtype torch.bool"),
        (torch.ones(2, device="meta"), ValueError, "kappa must be on a cpu or cuda device"),
    ],
)
def test_bad_kappa_tensors(kappa, exc, match):
    # Before: a complex kappa lost its imaginary part (a warning, then a result), a bool one
    # became 1.0, a meta one raised torch's "Tensor.item() cannot be called on meta tensors".
    with pytest.raises(exc, match=match):
        vmf_log_normalizer(kappa, 3)


def test_huge_p_is_an_error_not_an_overflow():
    with pytest.raises(ValueError, match="p must be at most 2\\*\\*1010"):
        vmf_log_normalizer(1.0, 10**400)


def test_fit_rejects_meta_and_accepts_extreme_row_scales():
    with pytest.raises(ValueError, match="X must be on a cpu or cuda device"):
        fit_vmf(torch.ones(3, 3, device="meta"))
    X = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    mu, kappa = fit_vmf(X)
    # Before: rows of 1e-200 were "norm 0.0" and rows of 1e200 "norm inf" (ValueError).
    for s in (1e-200, 1e200):
        mu_s, kappa_s = fit_vmf(X * s)
        assert torch.allclose(mu_s, mu, rtol=1e-15) and math.isclose(kappa_s, kappa, rel_tol=1e-12)


def test_scipy_agrees_where_it_works():
    stats = pytest.importorskip("scipy.stats")
    if not hasattr(stats, "vonmises_fisher"):
        pytest.skip("scipy < 1.11")
    mu = np.array([0.0, 0.6, 0.8])
    X = stats.vonmises_fisher(mu, 12.0).rvs(500, random_state=np.random.default_rng(0))
    mu_s, k_s = stats.vonmises_fisher.fit(X)
    mu_g, k_g = fit_vmf(torch.from_numpy(X))
    assert abs(float(k_g) - k_s) <= 1e-6 * k_s
    np.testing.assert_allclose(mu_g.numpy(), mu_s, atol=1e-10)
