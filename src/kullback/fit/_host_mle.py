"""Maximum likelihood in NumPy for the small problems where compiling costs more than solving.

Closed forms (scalar rows, frequency weights w summing to 1, N = Σ raw weights), with the exact
observed information for the standard errors:

    Normal:       μ = Σ w x, σ² = Σ w (x − μ)²;          se = σ/√N, σ/√(2N)
    LogNormal:    the same on log x
    Exponential:  λ = 1 / Σ w x;                           se = λ/√N
    Poisson:      λ = Σ w x;                               se = √(λ/N)
    Gamma(α, β):  log α − ψ(α) = log Σ w x − Σ w log x (Minka's Newton), β = α / Σ w x;
                  information N [[ψ′(α), −1/β], [−1/β, α/β²]]

A scalar StudentT(ν, μ, σ) is fitted by Newton in (log ν, μ, log σ) with its exact gradient and
Hessian (see :func:`_t_terms`), c(ν) as in ``_special.t_normaliser``; a fit that runs to
ν > 1e6 (the normal limit) or does not converge goes to the compiled path and its messages.

A scalar Weibull(k, λ) has a one-dimensional profile likelihood: for fixed k the MLE of λ is
λ̂(k)^k = Σ_i w_i x_i^k, and k̂ solves

    g(k) = 1/k + Σ_i w_i log x_i − Σ_i w_i x_i^k log x_i / Σ_i w_i x_i^k = 0,

with g decreasing in k (the profile log-likelihood is concave in k). Newton on g, safeguarded by
a bracket, needs a handful of passes of one exp per row; no XLA program is compiled. The
standard errors come from the exact observed information in (k, λ).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

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
    description: str = "Newton on the profile likelihood (the other parameter in closed form)"
    history: tuple = ()  # the objective at the start and after each step, where iterated


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
    k, converged, it = weibull_shape(lambda k: _weibull_sums(k, y, w), mean_y, sd)
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
    return weibull_result(k, lam, mean_nll, (a, b, c), total, it, converged)


def weibull_shape(sums: Callable, mean_y: float, sd: float) -> tuple[float, bool, int]:
    """The Weibull shape k̂ solving 1/k + mean(y) − S1/S0 = 0 (y = log x − max log x), by Newton
    kept inside a bracket, from the Gumbel moment start π/(√6 sd); ``sums(k)`` gives (S0, S1, S2)
    (in memory or by one pass over blocks). Returns (k, converged, iterations)."""
    k = math.pi / (math.sqrt(6.0) * sd)  # the moments of log x (Gumbel): a close start
    lo, hi = 0.0, math.inf
    converged, it = False, 0
    for it in range(1, _MAX_ITER + 1):
        s0, s1, s2 = sums(k)
        g = 1.0 / k + mean_y - s1 / s0
        dg = -1.0 / k**2 - (s2 / s0 - (s1 / s0) ** 2)
        if g > 0:
            lo = max(lo, k)
        else:
            hi = min(hi, k)
        new = k - g / dg
        if not (lo < new < hi):  # outside the bracket: bisect (or double while unbounded)
            new = 0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * k
        if abs(new - k) <= 1e-15 * k:
            converged = True
            break
        k = new
    return k, converged, it


def weibull_result(k: float, lam: float, mean_nll: float, z_sums: tuple, total: float, it: int,
                   converged: bool) -> HostFit:
    """The Weibull fit at (k, λ) with its observed information from ``z_sums`` = (Σ w z log² z,
    Σ w z log z, Σ w z), z = (x/λ)^k, w summing to 1."""
    a, b, c = z_sums
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


def _half_difference(x: float) -> tuple[float, float]:
    """ψ(x + ½) − ψ(x) and its derivative ψ′(x + ½) − ψ′(x), for x > 0 (the series of
    ``_special`` from x = 50, where scipy's difference would cancel; scipy's below)."""
    from scipy.special import digamma, polygamma

    from .._special import _half_series

    if x < 50.0:
        return float(digamma(x + 0.5) - digamma(x)), float(polygamma(1, x + 0.5) - polygamma(1, x))
    r = 1.0 / x
    r2 = r * r
    # the derivative of _half_series' ψ(x + ½) − ψ(x) series, term by term (dr/dx = −r²)
    slope = -r2 * (0.5 + r * (0.25 + r2 * (-1.0 / 16 + r2 * (6.0 / 128 - r2 * 8.0 * 119.0 / 14336))))
    return float(_half_series(x)[1]), slope


def _t_normaliser(df: float) -> float:
    """c(ν) = ½ log(νπ) + log Γ(ν/2) − log Γ((ν + 1)/2), as ``_special.t_normaliser`` (in floats)."""
    from scipy.special import gammaln

    from .._special import _half_series

    x = 0.5 * df
    if x >= 50.0:
        return 0.5 * math.log(2.0 * math.pi) - float(_half_series(x)[0])
    return 0.5 * math.log(2.0 * x * math.pi) + float(gammaln(x) - gammaln(x + 0.5))


def _t_terms(theta: np.ndarray, x: np.ndarray, w: np.ndarray, order: int):
    """The weighted mean log-likelihood of StudentT(ν, μ, σ) and, for order ≥ 1, its gradient and
    Hessian in (ν, μ, σ). With r = (x − μ)/σ, D = ν + r², a = ν + 1:

        ℓ = −c(ν) − log σ − (a/2) log1p(r²/ν)
        ∂ν ℓ = −c′(ν) − ½ log1p(r²/ν) + (a/2) r²/(νD),  c′(ν) = 1/(2ν) − ½[ψ((ν+1)/2) − ψ(ν/2)]
        ∂μ ℓ = a r/(σD),  ∂σ ℓ = −1/σ + a r²/(σD)

    and the second derivatives of these (written out below)."""
    df, loc, scale = theta
    r = (x - loc) / scale
    r2 = r * r
    value = -_t_normaliser(df) - math.log(scale) - 0.5 * (df + 1.0) * float(w @ np.log1p(r2 / df))
    if order == 0:
        return value
    a = df + 1.0
    inv_d = 1.0 / (df + r2)
    wd, wd2 = w * inv_d, w * inv_d * inv_d
    dhd, dhd_slope = _half_difference(0.5 * df)
    c1 = 0.5 / df - 0.5 * dhd
    c2 = -0.5 / df**2 - 0.25 * dhd_slope
    s_r2d = float(wd @ r2)
    g = np.array([
        -c1 - 0.5 * float(w @ np.log1p(r2 / df)) + 0.5 * a * s_r2d / df,
        a * float(wd @ r) / scale,
        -1.0 / scale + a * s_r2d / scale,
    ])
    s_rd2, s_r2d2, s_r3d2, s_r4d2 = (float(wd2 @ v) for v in (r, r2, r2 * r, r2 * r2))
    h = np.empty((3, 3))
    h[0, 0] = -c2 + s_r2d / df - 0.5 * a * (2.0 * df * s_r2d2 + s_r4d2) / df**2
    h[1, 1] = a * (s_r2d2 - df * float(wd2.sum())) / scale**2
    h[1, 2] = h[2, 1] = -2.0 * a * df * s_rd2 / scale**2
    h[0, 1] = h[1, 0] = (s_r3d2 - s_rd2) / scale
    h[2, 2] = 1.0 / scale**2 + a * (2.0 * s_r4d2 - 3.0 * s_r2d) / scale**2
    h[0, 2] = h[2, 0] = (s_r4d2 - s_r2d2) / scale
    return value, g, h


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    return float(x[order][min(int(np.searchsorted(cum, 0.5 * cum[-1])), x.size - 1)])


_T_MAX_DF = 1e6  # beyond it the t is the normal to the data's resolution: the compiled path says so


def t_start(x: np.ndarray, w: np.ndarray) -> tuple[float, float, float] | None:
    """The Student-t Newton's start (ν, μ, σ) from weighted rows (w sums to 1): the median, 1.4826
    MAD, and ν from the excess kurtosis; None when the rows do not vary."""
    loc = _weighted_median(x, w)
    mad = _weighted_median(np.abs(x - loc), w)
    mean = float(w @ x)
    sd = math.sqrt(max(float(w @ (x - mean) ** 2), 0.0))
    scale = 1.4826 * mad if mad > 0 else sd
    if not scale > 0:
        return None
    excess = float(w @ ((x - mean) / sd) ** 4) - 3.0 if sd > 0 else 0.0
    df = min(max(4.0 + 6.0 / excess, 2.0), 50.0) if excess > 0 else 50.0
    return df, loc, scale


def t_newton_step(theta: np.ndarray, g: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The ascent step in η = (log ν, μ, log σ) from the gradient g and Hessian h in θ = (ν, μ, σ),
    its Newton decrement, and the Levenberg shift that made −H positive definite (0: none)."""
    jac = np.array([theta[0], 1.0, theta[2]])  # d theta / d eta
    ge = g * jac
    he = h * np.outer(jac, jac)
    he[0, 0] += g[0] * theta[0]
    he[2, 2] += g[2] * theta[2]
    shift = 0.0
    while True:
        try:
            np.linalg.cholesky(-(he - shift * np.eye(3)))
            break
        except np.linalg.LinAlgError:
            shift = max(2.0 * shift, 1e-8 * (1.0 + np.abs(he).max()))
    step = np.linalg.solve(-(he - shift * np.eye(3)), ge)
    return step, float(ge @ step), shift


def _student_t(x: np.ndarray, w: np.ndarray, total: float, max_iter: int = _MAX_ITER) -> HostFit | None:
    """Newton in (log ν, μ, log σ) with exact derivatives and a backtracking line search; a
    Hessian that is not negative definite is shifted (Levenberg) until it is. None (the compiled
    path, with its messages) when ν leaves (0, 1e6] or the scale collapses."""
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        return None
    start = t_start(x, w)
    if start is None:
        return None
    eta = np.array([math.log(start[0]), start[1], math.log(start[2])])

    def unpack(e):
        return np.array([math.exp(e[0]), e[1], math.exp(e[2])])

    value = _t_terms(unpack(eta), x, w, 0)
    history = [-value]
    converged = False
    for it in range(max_iter + 1):
        theta = unpack(eta)
        value, g, h = _t_terms(theta, x, w, 2)
        step, decrement, shift = t_newton_step(theta, g, h)
        if decrement <= 1e-13 * max(1.0, abs(value)) and shift == 0.0:
            # the last Newton step too: the test above passes up to ~√1e-13 from the optimum (3e-7
            # relative in ν measured), one quadratic step from there lands at rounding
            eta = eta + step
            converged = True
            break
        if it == max_iter:
            break
        t = 1.0
        while t > 1e-10:
            trial = eta + t * step
            if abs(trial[0]) < 700 and abs(trial[2]) < 700:
                new = _t_terms(unpack(trial), x, w, 0)
                if np.isfinite(new) and new >= value + 1e-4 * t * decrement:
                    break
            t *= 0.5
        else:
            return None
        eta = trial
        history.append(-new)
        if eta[0] > math.log(_T_MAX_DF):
            return None
    theta = unpack(eta)
    if not (converged and theta[0] <= _T_MAX_DF and theta[2] > 0):
        return None
    value, g, h = _t_terms(theta, x, w, 2)
    info = -total * h
    try:
        cov = np.linalg.inv(info) if np.all(np.linalg.eigvalsh(info) > 0) else np.full((3, 3), np.nan)
    except np.linalg.LinAlgError:
        cov = np.full((3, 3), np.nan)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    names = ("df", "loc", "scale")
    return HostFit({n: np.asarray(v) for n, v in zip(names, theta)}, -value,
                   {n: np.asarray(e) for n, e in zip(names, se)}, cov, len(history) - 1, math.isfinite(value),
                   description="Newton on the log-likelihood in (log df, loc, log scale), exact derivatives",
                   history=tuple(history))


_SOLVERS = {dist.StudentT: _student_t, dist.Gamma: _gamma, dist.Weibull: _weibull, dist.Normal: _normal, dist.LogNormal: _lognormal,
            dist.Exponential: _exponential, dist.Poisson: _poisson}


def host_mle(family: Any, data: np.ndarray, weights: np.ndarray, total: float,
             max_iter: int | None = None) -> HostFit | None:
    """The NumPy fit where one applies (a scalar numpyro class in ``_SOLVERS`` with nothing fixed
    or bounded, 1-D rows), else None. An iterative one given ``max_iter`` that does not converge
    within it is None too (the compiled path then reports the same budget)."""
    from ..families import NumpyroFamily

    if type(family) is not NumpyroFamily or family.fixed or family.bounds or family.event_shape:
        return None
    if np.ndim(data) != 1:
        return None
    solve = _SOLVERS.get(family.cls)
    if solve is None:
        return None
    args = (np.asarray(data, dtype=float), np.asarray(weights, dtype=float), float(total))
    if max_iter is not None and solve is _student_t:
        return solve(*args, max_iter=int(max_iter))
    return solve(*args)
