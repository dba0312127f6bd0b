"""How far to trust a reverse fit: Pareto-smoothed importance sampling (PSIS) of p̃/q.

For draws x_s ~ q, the log importance ratios are r_s = log p̃(x_s) − log q(x_s). Their mean is
the ELBO; log mean exp(r_s) estimates log Z. The largest M = min(S/5, 3√S) ratios are fitted by a
generalized Pareto distribution (Zhang & Stephens 2009, with the weakly informative prior of
Vehtari et al. 2024); its shape k̂ says how heavy the tail of p/q is: k̂ < 0.5 good, 0.5 ≤ k̂ < 0.7
usable, k̂ ≥ 0.7 unreliable (the IS estimates and q itself then miss mass of p).

Pure JAX: every function here is jit- and vmap-safe (S is taken from the static shape).

References:
    Zhang, J. and Stephens, M. A. (2009). A new and efficient estimation method for the
    generalized Pareto distribution. Technometrics 51(3).
    Vehtari, A., Simpson, D., Gelman, A., Yao, Y. and Gabry, J. (2024). Pareto smoothed importance
    sampling. JMLR 25(72).
    Yao, Y., Vehtari, A., Simpson, D. and Gelman, A. (2018). Yes, but did it work?: Evaluating
    variational inference. ICML.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["gpd_fit", "gpd_quantile", "psis", "psis_host", "pareto_k_verdict", "ImportanceDiagnostics", "importance_diagnostics",
           "importance_diagnostics_host", "pareto_k_stderr", "pareto_k_message",
           "GOOD_K", "RELIABLE_K"]

GOOD_K = 0.5
RELIABLE_K = 0.7


def gpd_fit(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Shape k̂ and scale σ̂ of a generalized Pareto fit to sorted positive exceedances.

    The Zhang–Stephens empirical Bayes estimate: on a grid of m = 30 + ⌊√n⌋ values of
    b = −k/σ, the profile log-likelihood ℓ(b) = n (log(−b/k(b)) − k(b) − 1) with
    k(b) = mean log(1 − b x) weights the grid; b̂ is the weighted mean, k̂ = mean log(1 − b̂ x),
    σ̂ = −k̂ / b̂, and k̂ is then shrunk toward ½ as by 10 prior observations.

    Args:
        x: exceedances over a threshold, shape ``(n,)``, sorted ascending, n ≥ 5.

    Returns:
        ``(k, sigma)``: scalars; k > 0 is a heavy (power-law) tail.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> u = jax.random.uniform(jax.random.PRNGKey(0), (4000,))
        >>> x = jnp.sort(jnp.expm1(-0.5 * jnp.log1p(-u)) / 0.5)   # GPD(k=0.5, sigma=1) draws
        >>> k, sigma = gpd_fit(x)
        >>> bool(abs(k - 0.5) < 0.1), bool(abs(sigma - 1.0) < 0.15)
        (True, True)
    """
    n = x.shape[0]
    m = 30 + int(math.sqrt(n))
    j = jnp.arange(1, m + 1, dtype=x.dtype)
    b = 1.0 / x[-1] + (1.0 - jnp.sqrt(m / (j - 0.5))) / (3.0 * x[int(n / 4 + 0.5) - 1])
    k = jnp.mean(jnp.log1p(-b[:, None] * x[None, :]), axis=1)
    profile = n * (jnp.log(-b / k) - k - 1.0)
    w = jax.nn.softmax(jnp.where(jnp.isfinite(profile), profile, -jnp.inf))
    w = jnp.where(w >= 10 * jnp.finfo(x.dtype).eps, w, 0.0)
    b_post = jnp.sum(b * w) / jnp.sum(w)
    k_post = jnp.mean(jnp.log1p(-b_post * x))
    sigma = -k_post / b_post
    return (n * k_post + 10 * 0.5) / (n + 10), sigma


def gpd_quantile(prob: jax.Array, k: jax.Array, sigma: jax.Array) -> jax.Array:
    """Quantiles of the generalized Pareto distribution: σ ((1 − u)^(−k) − 1) / k (−σ log(1 − u) at k = 0)."""
    small = jnp.abs(k) < 1e-12
    safe_k = jnp.where(small, 1.0, k)
    return jnp.where(small, -sigma * jnp.log1p(-prob), sigma * jnp.expm1(-safe_k * jnp.log1p(-prob)) / safe_k)


def psis(log_ratios: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Pareto-smoothed importance sampling: normalised log weights and the tail shape k̂.

    The M = min(⌊S/5⌋, ⌊3√S⌋) largest ratios w_s = exp(r_s − max r) are replaced by the
    expected order statistics of the fitted generalized Pareto tail (capped at the largest raw
    ratio); the weights are then normalised to sum to 1. Non-finite ratios count as weight 0.

    Args:
        log_ratios: log p̃(x_s) − log q(x_s) for S draws x_s ~ q, shape ``(S,)``, S ≥ 25.

    Returns:
        ``(log_weights, k)``: smoothed normalised log weights, shape ``(S,)``, and k̂ (a scalar;
        −inf when the ratios are constant to 1e-8, i.e. q = p up to the normalising constant).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> r = 0.1 * jax.random.normal(jax.random.PRNGKey(0), (1000,))   # q close to p
        >>> log_w, k = psis(r)
        >>> round(float(jnp.sum(jnp.exp(log_w))), 6), bool(k < 0.5)
        (1.0, True)
    """
    num = log_ratios.shape[0]
    if num < 25:
        raise ValueError(f"Expected at least 25 log_ratios for a Pareto tail fit; got {num}.")
    tail = int(min(num // 5, math.floor(3 * math.sqrt(num))))
    r = jnp.where(jnp.isnan(log_ratios), -jnp.inf, log_ratios)
    r = r - jnp.max(r)
    order = jnp.argsort(r)
    ranked = r[order]
    cutoff = ranked[num - tail - 1]
    top = ranked[num - tail:]
    exceed = jnp.exp(top) - jnp.exp(cutoff)
    k, sigma = gpd_fit(jnp.maximum(exceed, jnp.finfo(r.dtype).tiny))
    probs = (jnp.arange(tail, dtype=r.dtype) + 0.5) / tail
    smooth = jnp.log(jnp.exp(cutoff) + gpd_quantile(probs, k, sigma))
    smooth = jnp.minimum(smooth, top[-1])
    ok = jnp.isfinite(k) & (sigma > 0) & jnp.all(jnp.isfinite(smooth))
    flat = exceed[-1] <= 1e-8  # the ratios are constant to 1e-8: q = p up to the constant
    k = jnp.where(flat, -jnp.inf, jnp.where(jnp.isfinite(k), k, jnp.inf))
    ranked = ranked.at[num - tail:].set(jnp.where(ok, smooth, top))
    smoothed = jnp.empty_like(r).at[order].set(ranked)
    return smoothed - jax.nn.logsumexp(smoothed), k


def pareto_k_verdict(k: float, elbo: float | None = None) -> str:
    """``"good"`` (k̂ < 0.5), ``"usable"`` (0.5 ≤ k̂ < 0.7) or ``"unreliable"`` (k̂ ≥ 0.7, or NaN).

    k̂ = −inf (constant log weights: q is p up to its normaliser) is good, unless the ELBO that
    comes with it is not finite (``elbo``): then the weights are constant because log p̃ or log q is
    infinite at every draw, and nothing about q is known.

    Example:
        >>> pareto_k_verdict(0.3), pareto_k_verdict(0.6), pareto_k_verdict(1.2), pareto_k_verdict(0.1, float("nan"))
        ('good', 'usable', 'unreliable', 'unreliable')
    """
    k = float(k)
    if elbo is not None and not np.isfinite(float(elbo)):
        return "unreliable"
    if k < GOOD_K:
        return "good"
    if k < RELIABLE_K:
        return "usable"
    return "unreliable"


class ImportanceDiagnostics(NamedTuple):
    """Importance-sampling summaries of draws from q against p̃ (device scalars)."""

    elbo: jax.Array            # mean of r_s
    elbo_stderr: jax.Array     # sd(r_s) / √S
    log_z: jax.Array           # log mean exp(r_s)
    log_z_stderr: jax.Array    # delta method: sd(w) / (√S mean(w))
    pareto_k: jax.Array
    ess: jax.Array             # (Σ w̃)² / Σ w̃² of the smoothed weights
    num_nonfinite: jax.Array   # draws where log p̃ was not finite


def importance_diagnostics(log_p: jax.Array, log_q: jax.Array) -> ImportanceDiagnostics:
    """ELBO, log Z, k̂ and the effective sample size from log p̃ and log q at S draws from q.

    ELBO ≈ (1/S) Σ r_s,  Z ≈ (1/S) Σ exp(r_s),  ESS = 1 / Σ w̃_s²  (w̃: smoothed, normalised),
    with r_s = log p̃(x_s) − log q(x_s). A draw where log p̃ is not finite has ratio 0 (−inf);
    it makes the ELBO −inf, which is what it is.

    Args:
        log_p: log p̃ at the draws, shape ``(S,)``.
        log_q: log q at the same draws, shape ``(S,)``.

    Returns:
        An :class:`ImportanceDiagnostics`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = jax.random.normal(jax.random.PRNGKey(1), (2000,))
        >>> log_q = -0.5 * x**2 - 0.5 * jnp.log(2 * jnp.pi)
        >>> d = importance_diagnostics(-0.5 * x**2 + 1.0, log_q)   # p̃ = e · √(2π) N(0, 1)
        >>> round(float(d.log_z), 4), round(float(d.ess)), bool(d.pareto_k < 0.5)
        (1.9189, 2000, True)
    """
    num = log_p.shape[0]
    r = jnp.where(jnp.isnan(log_p), -jnp.inf, log_p) - log_q
    finite = jnp.isfinite(r)
    log_w, k = psis(r)
    shift = jnp.max(jnp.where(finite, r, -jnp.inf))
    w = jnp.exp(r - shift)
    mean_w = jnp.mean(w)
    return ImportanceDiagnostics(
        elbo=jnp.mean(r),
        elbo_stderr=jnp.std(r, ddof=1) / math.sqrt(num),
        log_z=shift + jnp.log(mean_w),
        log_z_stderr=jnp.std(w, ddof=1) / (math.sqrt(num) * mean_w),
        pareto_k=k,
        ess=1.0 / jnp.sum(jnp.exp(2 * log_w)),
        num_nonfinite=jnp.sum(~jnp.isfinite(log_p)),
    )


def _gpd_fit_host(x: np.ndarray) -> tuple[float, float]:
    """:func:`gpd_fit` in NumPy (same formulas, for host-side diagnostics without a compile)."""
    n = x.shape[0]
    m = 30 + int(math.sqrt(n))
    j = np.arange(1, m + 1, dtype=x.dtype)
    b = 1.0 / x[-1] + (1.0 - np.sqrt(m / (j - 0.5))) / (3.0 * x[int(n / 4 + 0.5) - 1])
    with np.errstate(all="ignore"):
        k = np.mean(np.log1p(-b[:, None] * x[None, :]), axis=1)
        profile = n * (np.log(-b / k) - k - 1.0)
        profile = np.where(np.isfinite(profile), profile, -np.inf)
        w = np.exp(profile - np.max(profile)) if np.isfinite(profile).any() else np.full(m, np.nan)
        w = w / np.sum(w)
        w = np.where(w >= 10 * np.finfo(x.dtype).eps, w, 0.0)
        b_post = np.sum(b * w) / np.sum(w)
        k_post = np.mean(np.log1p(-b_post * x))
        sigma = -k_post / b_post
    return (n * k_post + 10 * 0.5) / (n + 10), sigma


def psis_host(log_ratios: np.ndarray) -> tuple[np.ndarray, float]:
    """:func:`psis` in NumPy: normalised smoothed log weights and k̂, computed on the host (no XLA
    compile: a fit's diagnostics of a few thousand draws take well under a millisecond here)."""
    r = np.asarray(log_ratios, dtype=float)
    num = r.shape[0]
    if num < 25:
        raise ValueError(f"Expected at least 25 log_ratios for a Pareto tail fit; got {num}.")
    tail = int(min(num // 5, math.floor(3 * math.sqrt(num))))
    r = np.where(np.isnan(r), -np.inf, r)
    with np.errstate(all="ignore"):
        r = r - np.max(r)
        order = np.argsort(r, kind="stable")
        ranked = r[order]
        cutoff = ranked[num - tail - 1]
        top = ranked[num - tail:]
        exceed = np.exp(top) - np.exp(cutoff)
        k, sigma = _gpd_fit_host(np.maximum(exceed, np.finfo(r.dtype).tiny))
        probs = (np.arange(tail, dtype=r.dtype) + 0.5) / tail
        small = abs(k) < 1e-12
        quant = -sigma * np.log1p(-probs) if small else sigma * np.expm1(-k * np.log1p(-probs)) / k
        smooth = np.minimum(np.log(np.exp(cutoff) + quant), top[-1])
        ok = np.isfinite(k) and sigma > 0 and np.all(np.isfinite(smooth))
        k = -np.inf if exceed[-1] <= 1e-8 else (k if np.isfinite(k) else np.inf)
        ranked = ranked.copy()
        ranked[num - tail:] = smooth if ok else top
        smoothed = np.empty_like(r)
        smoothed[order] = ranked
        shift = np.max(smoothed)
        return smoothed - (shift + np.log(np.sum(np.exp(smoothed - shift)))), float(k)


def importance_diagnostics_host(log_p: np.ndarray, log_q: np.ndarray) -> ImportanceDiagnostics:
    """:func:`importance_diagnostics` in NumPy on host arrays (fields are NumPy scalars)."""
    log_p, log_q = np.asarray(log_p, dtype=float), np.asarray(log_q, dtype=float)
    num = log_p.shape[0]
    r = np.where(np.isnan(log_p), -np.inf, log_p) - log_q
    finite = np.isfinite(r)
    log_w, k = psis_host(r)
    with np.errstate(all="ignore"):
        shift = np.max(np.where(finite, r, -np.inf))
        w = np.exp(r - shift)
        mean_w = np.mean(w)
        return ImportanceDiagnostics(
            elbo=np.mean(r),
            elbo_stderr=np.std(r, ddof=1) / math.sqrt(num),
            log_z=shift + np.log(mean_w),
            log_z_stderr=np.std(w, ddof=1) / (math.sqrt(num) * mean_w),
            pareto_k=np.float64(k),
            ess=1.0 / np.sum(np.exp(2 * log_w)),
            num_nonfinite=np.sum(~np.isfinite(log_p)),
        )


def pareto_k_stderr(k: float, num: int) -> float:
    """The standard error of k̂ from ``num`` draws: √((1 + k)² / M) for the M = min(num/5, 3√num)
    largest ratios PSIS fits (the asymptotic variance of a generalised Pareto shape estimate,
    k > −1/2). With 4000 draws, M = 189: about ±0.13 at k̂ = 0.7, so a k̂ of 0.6 or 0.8 is within
    one standard error of the 0.7 threshold, and its verdict can change with the draws.

    Example:
        >>> round(pareto_k_stderr(0.7, 4000), 3)
        0.124
    """
    tail = int(min(num // 5, math.floor(3 * math.sqrt(num))))
    if k == -np.inf:  # constant weights: q is p up to its normaliser, nothing to be unsure of
        return 0.0
    if not np.isfinite(k) or tail < 1:
        return float("nan")
    return float((1.0 + max(k, -0.5)) / math.sqrt(tail))


def pareto_k_message(k: float, stderr: float, verdict: str, num: int) -> str:
    """What the k̂ verdict means, in words: for q's means and sds, and for tail quantities."""
    band = f" ± {stderr:.2f} (from {num} draws)" if np.isfinite(stderr) and np.isfinite(k) else ""
    near = np.isfinite(stderr) and abs(k - RELIABLE_K) < 2.0 * stderr
    note = " (borderline: within two standard errors of 0.7, the verdict can change with the draws)" if near else ""
    head = f" Pareto k̂ = {k:.2f}{band}: {verdict}{note}"
    if verdict == "good":
        return head + "; q covers p's bulk and tails, and importance-weighted estimates (log Z, resample=True) hold."
    if verdict == "usable":
        return (head + "; q's means and sds are reliable, while tail quantities (extreme quantiles, log Z, "
                "resampled draws) carry more error than their standard errors say.")
    return (head + ": the ratios p̃/q are heavy-tailed, so q misses mass of p in the tails. Estimates that reweight "
            "q toward p (log Z, resample=True) are not to be trusted, nor are q's extreme quantiles; q's means and "
            "sds can still be close (k̂ measures the worst tail, not the bulk). Before relying on tails, try a "
            "richer family (covariance='full', LowRankGaussian, GaussianMixtureQ), objective='renyi', "
            "num_starts > 1, or compare with MCMC.")
