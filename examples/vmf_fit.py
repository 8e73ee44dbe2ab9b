"""Fit von Mises-Fisher distributions in 2048, 8192 and 32768 dimensions, where SciPy cannot.

The vMF normaliser needs log I_{p/2-1}(kappa); in double precision I_{1023}(2048) and its
neighbours under- or overflow, and SciPy's ``vonmises_fisher.fit`` returns a wrong kappa (or
fails). ``gnnsys.ops.fit_vmf`` works in log space (``gnnsys.ops.bessel.log_ive``).

For each p: draw n samples of vMF(mu, kappa) (Wood's algorithm, ``sample_vmf``), fit them with
gnnsys and with SciPy, and print both next to the truth. Because a finite sample's mean
resultant length is biased upward in high dimension, the exact check is the population one:
``vmf_kappa_from_rbar(A_p(kappa), p)`` must give kappa back.

Run: python examples/vmf_fit.py [--n 1000]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from gnnsys.ops.vmf import (
    fit_vmf,
    sample_vmf,
    vmf_kappa_from_rbar,
    vmf_log_normalizer,
    vmf_mean_resultant_length,
)


def scipy_fit(X: np.ndarray):
    try:
        from scipy.stats import vonmises_fisher
    except ImportError:
        return None, "scipy.stats.vonmises_fisher needs SciPy >= 1.11"
    try:
        with np.errstate(all="ignore"):
            _, kappa = vonmises_fisher.fit(X)
        return float(kappa), ""
    except Exception as err:  # SciPy raises for some of these inputs
        return None, f"{type(err).__name__}: {err}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="samples per dimension")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"{'p':>6} {'kappa':>8} {'gnnsys fit':>12} {'scipy fit':>12} {'population':>12}  note")
    for p, kappa in ((2048, 2048.0), (8192, 8192.0), (32768, 32768.0)):
        mu = torch.zeros(p, dtype=torch.float64)
        mu[0] = 1.0
        n = args.n if p < 32768 else max(100, args.n // 4)  # keep the 32768-d sample small
        X = sample_vmf(mu, kappa, n, seed=args.seed)
        t = time.perf_counter()
        mu_hat, k_ours = fit_vmf(X)
        t_ours = time.perf_counter() - t
        k_scipy, why = scipy_fit(X.numpy())
        # population check: invert A_p exactly
        k_pop = vmf_kappa_from_rbar(float(vmf_mean_resultant_length(kappa, p)), p)
        scipy_txt = f"{k_scipy:12.6g}" if k_scipy is not None else f"{'failed':>12}"
        note = f"n={n}, mu.mu_hat={float(mu_hat @ mu):.4f}, fit {t_ours * 1e3:.0f} ms"
        if why:
            note += f"; scipy: {why[:60]}"
        print(f"{p:6d} {kappa:8.0f} {float(k_ours):12.6g} {scipy_txt} {k_pop:12.10g}  {note}")
        assert math.isclose(k_pop, kappa, rel_tol=1e-10)
    print("log C_p(kappa) at kappa = p:", end=" ")
    for p in (2048, 8192, 32768):
        print(f"p={p}: {float(vmf_log_normalizer(float(p), p)):.6f}", end="  ")
    print()


if __name__ == "__main__":
    main()
