"""Maximum likelihood in NumPy for the small problems where compiling costs more than solving.

Closed forms (scalar rows, frequency weights w summing to 1, N = Σ raw weights), with the exact
observed information for the standard errors:

    Normal:       μ = Σ w x, σ² = Σ w (x − μ)²;          se = σ/√N, σ/√(2N)
    LogNormal:    the same on log x
    Exponential:  λ = 1 / Σ w x;                           se = λ/√N
    Poisson:      λ = Σ w x;                               se = √(λ/N)
    Gamma(α, β):  log α − ψ(α) = log Σ w x − Σ w log x (Minka's Newton), β = α / Σ w x;
                  information N [[ψ′(α), −1/β], [−1/β, α/β²]]

A scalar Weibull(k, λ) has a one-dimensional profile likelihood: for fixed k the MLE of λ is
λ̂(k)^k = Σ_i w_i x_i^k, and k̂ solves

    g(k) = 1/k + Σ_i w_i log x_i − Σ_i w_i x_i^k log x_i / Σ_i w_i x_i^k = 0,

with g decreasing in k (the profile log-likelihood is concave in k). Newton on g, safeguarded by
a bracket, needs a handful of passes of one exp per row; no XLA program is compiled. The
standard errors come from the exact observed information in (k, λ).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import numpyro.distributions as dist

__all__ = ["HostFit", "host_mle"]

_MAX_ITER = 100


class HostFit(NamedTuple):
    """A NumPy maximum-likelihood fit: constrained values, mean NLL, standard errors by name,
    the covariance of the flat constrained parameters (name order), iterations, convergence,
    and the method ("closed_form" or "newton")."""

    values: dict[str, np.ndarray]
    objective: float
    stderr: dict[str, np.ndarray]
    covariance: np.ndarray
    num_iterations: int
    converged: bool
    method: str = "newton"


def _fit(values: dict, objective: float, se: list[float]) -> HostFit:
    se = np.asarray(se, dtype=float)
    return HostFit({k: np.asarray(v, dtype=float) for k, v in values.items()}, float(objective),
                   {k: np.asarray(e) for k, e in zip(values, se)}, np.diag(se**2), 0,
                   bool(np.isfinite(objective)), "closed_form")


def _normal(x: np.ndarray, w: np.ndarray, total: float) -> HostFit | None:
    mu = float(w @ x)
    var = float(w @ (x - mu) ** 2)
    if not var > 0:
        return None  # constant data: degenerate (the general path says so)
    sd = math.sqrt(var)
    return _fit({"loc": mu, "scale": sd}, 0.5 * math.log(2 * math.pi * var) + 0.5,
                [sd / math.sqrt(total), sd / math.sqrt(2 * total)])


def _lognormal(x: np.ndarray, w: np.ndarray, total: float) -> HostFit | None:
    if not np.all(x > 0):
        return None
    log_x = np.log(x)
    fit = _normal(log_x, w, total)
    if fit is None:
        return None
    return fit._replace(objective=fit.objective + float(w @ log_x))


def _exponential(x: np.ndarray, w: np.ndarray, total: float) -> HostFit | None:
    mean = float(w @ x)
    if not (np.all(x >= 0) and mean > 0):
        return None
    rate = 1.0 / mean
    return _fit({"rate": rate}, -math.log(rate) + 1.0, [rate / math.sqrt(total)])


def _poisson(x: np.ndarray, w: np.ndarray, total: float) -> HostFit | None:
    from scipy.special import gammaln

    rate = float(w @ x)
    if not (np.all(x >= 0) and np.all(np.floor(x) == x) and rate > 0):
        return None
    return _fit({"rate": rate}, rate - rate * math.log(rate) + float(w @ gammaln(x + 1.0)), [math.sqrt(rate / total)])


def _weibull_sums(k: float, y: np.ndarray, w: np.ndarray) -> tuple[float, float, float, float]:
    """S0 = Σ w e^{k y}, S1 = Σ w e^{k y} y, S2 = Σ w e^{k y} y² (y = log x − max log x ≤ 0, so
    e^{k y} ≤ 1 never overflows), and g(k)."""
    e = w * np.exp(k * y)
    s0, s1, s2 = float(e.sum()), float(e @ y), float(e @ (y * y))
    return s0, s1, s2


def _weibull(x: np.ndarray, w: np.ndarray, total: float) -> HostFit | None:
    if x.ndim != 1 or not np.all(x > 0):
        return None
    log_x = np.log(x)
    top = float(log_x.max())
    y = log_x - top
    mean_y = float(w @ y)
    sd = math.sqrt(max(float(w @ (y - mean_y) ** 2), 0.0))
    if not sd > 0:
        return None  # all rows equal: no finite maximum
    k = math.pi / (math.sqrt(6.0) * sd)  # the moments of log x (Gumbel): a close start
    lo, hi = 0.0, math.inf
    converged, it = False, 0
    for it in range(1, _MAX_ITER + 1):
        s0, s1, s2 = _weibull_sums(k, y, w)
        g = 1.0 / k + mean_y - s1 / s0
        dg = -1.0 / k**2 - (s2 / s0 - (s1 / s0) ** 2)
        if g > 0:
            lo = max(lo, k)
        else:
            hi = min(hi, k)
        step = -g / dg
        new = k + step
        if not (lo < new < hi):  # outside the bracket: bisect (or double while unbounded)
            new = 0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * k
        if abs(new - k) <= 1e-15 * k:
            converged = True
            break
        k = new
    s0, s1, s2 = _weibull_sums(k, y, w)
    # λ^k = Σ w x^k = e^{k·top} S0
    log_lam = top + math.log(s0) / k
    lam = math.exp(log_lam)
    z_k = np.exp(k * (log_x - log_lam))  # (x/λ)^k, Σ w z_k = 1 at λ̂
    logz = log_x - log_lam
    mean_nll = -(math.log(k) - k * log_lam + (k - 1.0) * float(w @ log_x) - float(w @ z_k))
    # observed information in (k, λ): −N Σ w ∂²ℓ
    a = float(w @ (z_k * logz * logz))
    b = float(w @ (z_k * logz))
    c = float(w @ z_k)
    h_kk = -1.0 / k**2 - a
    h_kl = (c - 1.0 + k * b) / lam
    h_ll = (k - k * (k + 1.0) * c) / lam**2
    info = -total * np.array([[h_kk, h_kl], [h_kl, h_ll]])
    try:
        cov = np.linalg.inv(info) if np.all(np.linalg.eigvalsh(info) > 0) else np.full((2, 2), np.nan)
    except np.linalg.LinAlgError:
        cov = np.full((2, 2), np.nan)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    values = {"concentration": np.asarray(k), "scale": np.asarray(lam)}
    return HostFit(values, mean_nll, {"concentration": np.asarray(se[0]), "scale": np.asarray(se[1])},
                   cov, it, converged and math.isfinite(mean_nll))


def _gamma(x: np.ndarray, w: np.ndarray, total: float) -> HostFit | None:
    from scipy.special import digamma, gammaln, polygamma

    if not np.all(x > 0):
        return None
    mean, mean_log = float(w @ x), float(w @ np.log(x))
    s = math.log(mean) - mean_log
    if not s > 0:
        return None  # constant data: degenerate
    a = (3.0 - s + math.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)
    for _ in range(12):  # the same 12 steps as the compiled closed form (quadratic convergence)
        f = math.log(a) - float(digamma(a)) - s
        fp = 1.0 / a - float(polygamma(1, a))
        a = 1.0 / (1.0 / a + f / (a * a * fp))
    rate = a / mean
    objective = -(a * math.log(rate) - float(gammaln(a)) + (a - 1.0) * mean_log - rate * mean)
    info = total * np.array([[float(polygamma(1, a)), -1.0 / rate], [-1.0 / rate, a / rate**2]])
    cov = np.linalg.inv(info)
    se = np.sqrt(np.diag(cov))
    return HostFit({"concentration": np.asarray(a), "rate": np.asarray(rate)}, objective,
                   {"concentration": np.asarray(se[0]), "rate": np.asarray(se[1])}, cov, 0,
                   bool(np.isfinite(objective)), "closed_form")


_SOLVERS = {dist.Gamma: _gamma, dist.Weibull: _weibull, dist.Normal: _normal, dist.LogNormal: _lognormal,
            dist.Exponential: _exponential, dist.Poisson: _poisson}


def host_mle(family: Any, data: np.ndarray, weights: np.ndarray, total: float) -> HostFit | None:
    """The NumPy fit where one applies (a scalar numpyro class in ``_SOLVERS`` with nothing fixed
    or bounded, 1-D rows), else None."""
    from ..families import NumpyroFamily

    if type(family) is not NumpyroFamily or family.fixed or family.bounds or family.event_shape:
        return None
    if np.ndim(data) != 1:
        return None
    solve = _SOLVERS.get(family.cls)
    if solve is None:
        return None
    return solve(np.asarray(data, dtype=float), np.asarray(weights, dtype=float), float(total))
