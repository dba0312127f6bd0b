"""EM for mixtures of numpyro component families whose weighted MLE has a closed form, in NumPy.

With responsibilities R_ji = s_i r_ji (frequency weights s, Σ s_i = 1) and N_j = Σ_i R_ji, the M step
of each component j maximises Σ_i R_ji log q_j(x_i) exactly, coordinate by coordinate (a univariate
class fitted to vectors has independent coordinates), with m_j = Σ_i R_ji x_i / N_j:

- ``dist.Normal``, ``dist.LogNormal``, ``dist.MultivariateNormal``: the Gaussian EM of ``_em``
  (``gaussian_view``; LogNormal on log x, whose Jacobian −Σ log x is a constant: the same iterations,
  the log-likelihood shifted by it);
- ``dist.Poisson``: λ_j = max(m_j, ε); ``dist.Exponential``: 1/λ_j = max(m_j, ε);
- ``dist.BernoulliProbs`` / ``dist.BernoulliLogits``: p_j = m_j clipped to [ε, 1 − ε];
- ``dist.Laplace``: μ_j the weighted median (exact: it minimises Σ_i R_ji |x_i − μ|; not a formula,
  one sort of the data and a cumulative sum per iteration), b_j = max(Σ_i R_ji |x_i − μ_j| / N_j, ε);
- ``dist.Gamma``: the shape a from log a − ψ(a) = max(log m_j − Σ_i R_ji log x_i / N_j, ε) by Newton
  to rounding (Minka's iteration; an exact M step, not a formula), the rate a / m_j.

ε = reg_covar: each is the maximiser over the parameters on the far side of that floor (the EM stays
monotone). A scale (Exponential, Laplace) or a Gamma spread at the floor is a component collapsed
onto a point, whose likelihood is unbounded: no better optimum (``ComponentEM.floor_param``).
Poisson and Bernoulli likelihoods are bounded; their floors only keep the parameters inside their
constraints. ``dist.StudentT`` and other classes have no closed-form M step (``component_em`` is None).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import numpyro.distributions as dist

from ._em import GaussianMixtureParams, _e_weights, _nearest_host, em_loop

__all__ = ["ComponentEM", "collapsed_components", "component_em", "em_components_host", "gamma_shape",
           "gaussian_values", "gaussian_view", "weighted_median"]


@dataclasses.dataclass(frozen=True)
class ComponentEM:
    """The closed-form M step of one component class, on rows x (n, d) and parameters (k, d).

    Attributes:
        description: the M step in words (for the fit's message).
        support: the support in words (for the error on data outside it).
        in_support: x (n, d) → a boolean (n, d).
        prepare: x (n, d) → what ``log_prob`` and ``m_step`` read besides x (computed once).
        log_prob: (x, prepared, params) → Σ_l log q_j(x_il), shape (k, n).
        m_step: (x, prepared, R (k, n), N (k,), ε) → params by name, each (k, d).
        values: params → the class's parameters by name (its ``arg_constraints`` names).
        per_coordinate: free parameters per coordinate of one component.
        floor_param: the parameter whose floor ε marks a collapsed component (None: bounded likelihood).
    """

    description: str
    support: str
    in_support: Callable
    log_prob: Callable
    m_step: Callable
    per_coordinate: int
    prepare: Callable = lambda x: None
    values: Callable = lambda params: params
    floor_param: str | None = None


def _mean(x, resp, nk):
    return np.einsum("kn,nd->kd", resp, x) / nk[:, None]


def _poisson_log_prob(x, log_fact, p):
    rate = p["rate"]
    return np.einsum("kd,nd->kn", np.log(rate), x) - rate.sum(axis=1)[:, None] - log_fact[None]


def _log_factorials(x):
    from scipy.special import gammaln

    return gammaln(x + 1.0).sum(axis=1)


def _exponential_log_prob(x, _, p):
    rate = p["rate"]
    return np.log(rate).sum(axis=1)[:, None] - np.einsum("kd,nd->kn", rate, x)


def _bernoulli_log_prob(x, _, p):
    probs = p["probs"]
    return np.einsum("kd,nd->kn", np.log(probs) - np.log1p(-probs), x) + np.log1p(-probs).sum(axis=1)[:, None]


def _laplace_log_prob(x, _, p):
    loc, scale = p["loc"], p["scale"]
    dev = np.abs(x[None] - loc[:, None, :]) / scale[:, None, :]
    return -dev.sum(axis=2) - np.log(2.0 * scale).sum(axis=1)[:, None]


def weighted_median(x: np.ndarray, order: np.ndarray, resp: np.ndarray) -> np.ndarray:
    """The lowest minimiser of Σ_i R_ji |x_il − μ| for each component j and coordinate l: the first
    sorted value whose cumulative weight reaches half the total (``order``: x's argsort per column)."""
    k, d = resp.shape[0], x.shape[1]
    loc = np.empty((k, d))
    for col in range(d):
        cum = np.cumsum(resp[:, order[:, col]], axis=1)
        first = np.argmax(cum >= 0.5 * cum[:, -1:], axis=1)
        loc[:, col] = x[order[first, col], col]
    return loc


def _laplace_m_step(x, order, resp, nk, eps):
    loc = weighted_median(x, order, resp)
    spread = np.stack([np.abs(x - m) for m in loc])  # (k, n, d)
    return {"loc": loc, "scale": np.maximum(np.einsum("kn,knd->kd", resp, spread) / nk[:, None], eps)}


def gamma_shape(s: np.ndarray) -> np.ndarray:
    """The solution a of log a − ψ(a) = s > 0 (elementwise), by Minka's Newton iteration in 1/a
    from his closed-form start, to rounding (quadratic convergence: 4–6 steps)."""
    from scipy.special import digamma, polygamma

    a = (3.0 - s + np.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)
    for _ in range(20):
        f = np.log(a) - digamma(a) - s
        new = 1.0 / (1.0 / a + f / (a * a * (1.0 / a - polygamma(1, a))))
        done = np.all(np.abs(new - a) <= 4 * np.finfo(float).eps * a)
        a = new
        if done:
            break
    return a


def _gamma_m_step(x, log_x, resp, nk, eps):
    mean = np.maximum(_mean(x, resp, nk), np.finfo(float).tiny)
    a = gamma_shape(np.maximum(np.log(mean) - _mean(log_x, resp, nk), eps))
    return {"concentration": a, "rate": a / mean}


def _gamma_log_prob(x, log_x, p):
    from scipy.special import gammaln

    a, rate = p["concentration"], p["rate"]
    const = (a * np.log(rate) - gammaln(a)).sum(axis=1)[:, None]
    return const + np.einsum("kd,nd->kn", a - 1.0, log_x) - np.einsum("kd,nd->kn", rate, x)


def _bernoulli(logits: bool) -> ComponentEM:
    def values(p):
        return {"logits": np.log(p["probs"]) - np.log1p(-p["probs"])} if logits else p

    return ComponentEM(
        "closed-form M step: p_j = the weighted mean", "0 or 1", lambda x: (x == 0) | (x == 1), _bernoulli_log_prob,
        lambda x, _, r, nk, eps: {"probs": np.clip(_mean(x, r, nk), eps, 1.0 - eps)}, 1, values=values)


_COMPONENTS: dict[type, ComponentEM] = {
    dist.Poisson: ComponentEM(
        "closed-form M step: λ_j = the weighted mean", "non-negative integers",
        lambda x: (x >= 0) & (np.floor(x) == x), _poisson_log_prob,
        lambda x, _, r, nk, eps: {"rate": np.maximum(_mean(x, r, nk), eps)}, 1, prepare=_log_factorials),
    dist.Exponential: ComponentEM(
        "closed-form M step: 1/λ_j = the weighted mean", "x ≥ 0", lambda x: x >= 0, _exponential_log_prob,
        lambda x, _, r, nk, eps: {"rate": 1.0 / np.maximum(_mean(x, r, nk), eps)}, 1, floor_param="scale"),
    dist.BernoulliProbs: _bernoulli(logits=False),
    dist.BernoulliLogits: _bernoulli(logits=True),
    dist.Laplace: ComponentEM(
        "exact M step: μ_j the weighted median, b_j the weighted mean |x − μ_j|", "real numbers", np.isfinite,
        _laplace_log_prob, _laplace_m_step, 2, prepare=lambda x: np.argsort(x, axis=0, kind="stable"),
        floor_param="scale"),
    dist.Gamma: ComponentEM(
        "exact M step: the shape by Newton on log a − ψ(a) = log m_j − mean log x, to rounding", "x > 0",
        lambda x: x > 0, _gamma_log_prob, _gamma_m_step, 2, prepare=np.log, floor_param="spread"),
}

# numpyro classes whose mixture is a Gaussian mixture (of log x for LogNormal): covariance kind
_GAUSSIAN = {dist.Normal: "diag", dist.LogNormal: "diag", dist.MultivariateNormal: "full"}


def _plain_class(component: Any) -> type | None:
    """The numpyro class of a ``NumpyroFamily`` component with no fixed or bounded parameter."""
    from ..families import NumpyroFamily

    if isinstance(component, NumpyroFamily) and not component.fixed and not component.bounds:
        return component.cls
    return None


def gaussian_view(component: Any) -> str | None:
    """The Gaussian EM's covariance kind for a Normal, LogNormal or MultivariateNormal component."""
    return _GAUSSIAN.get(_plain_class(component))


def gaussian_values(cls: type, p: GaussianMixtureParams, event_shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The class's parameters (loc, scale or scale_tril; leading axis k) from Gaussian EM params."""
    means, covs = np.asarray(p.means, dtype=float), np.asarray(p.covariances, dtype=float)
    k = means.shape[0]
    if cls is dist.MultivariateNormal:
        return {"loc": means, "scale_tril": np.linalg.cholesky(covs)}
    return {"loc": means.reshape(k, *event_shape), "scale": np.sqrt(covs).reshape(k, *event_shape)}


def component_em(component: Any) -> ComponentEM | None:
    """The closed-form M step of a component family, or None (no closed form: L-BFGS)."""
    return _COMPONENTS.get(_plain_class(component))


def collapsed_components(spec: ComponentEM, p: tuple, total: float, eps: float) -> list[int]:
    """Components on less than one row's weight (π_j · total < 1) or whose ``floor_param`` sits
    within 10 ε of its floor ε (collapsed onto a point: an unbounded likelihood)."""
    weights, params = p
    low = np.full(len(weights), np.inf)
    if spec.floor_param == "scale":
        low = (params["scale"] if "scale" in params else 1.0 / params["rate"]).min(axis=1)
    elif spec.floor_param == "spread":  # Gamma: log a − ψ(a) ≈ 1/(2a) at the floor ε
        low = 1.0 / (2.0 * params["concentration"].max(axis=1))
    return [j for j in range(len(weights)) if weights[j] * total < 1.0 or low[j] <= 10.0 * eps]


def em_components_host(spec: ComponentEM, centers, x, sample_weight, tol, eps, max_iter):
    """EM for a mixture of ``spec`` components in NumPy: each row starts in its nearest centre's
    component (hard responsibilities), then E and M steps with ``_em``'s stopping rule.

    Returns ((weights (k,), params by name (k, d)), mean log-likelihood, history, iterations, converged).
    """
    x = np.asarray(x, dtype=float)
    s = np.asarray(sample_weight, dtype=float)
    prepared = spec.prepare(x)
    k = centers.shape[0]
    labels = _nearest_host(np.ascontiguousarray(x.T), np.asarray(centers, dtype=float))

    def m_step(resp):
        nk = resp.sum(axis=1) + 10 * np.finfo(float).eps
        return nk / nk.sum(), spec.m_step(x, prepared, resp, nk, eps)

    def e_step(p):
        weights, params = p
        return _e_weights(np.log(weights)[:, None] + spec.log_prob(x, prepared, params), s)

    start = m_step((labels == np.arange(k)[:, None]) * s)
    return em_loop(e_step, m_step, start, tol, max_iter)
