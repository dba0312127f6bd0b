"""After a forward fit: standard errors, information criteria and a goodness-of-fit summary.

Observed information I = Σ_i w_i ∇²_u (−log q_u(x_i)) in the unconstrained parameters u (the
weights are frequencies: an integer weight equals repeating the row). Cov(û) ≈ I⁻¹, and by the
delta method Cov(θ̂) ≈ J I⁻¹ Jᵀ with J = ∂θ/∂u, so the standard errors are reported for the
natural (constrained) parameters.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import numpy as np
from jax.flatten_util import ravel_pytree
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln

from ..families import AbstractFamily
from ..measure import Estimate
from ._objectives import weighted_nll

__all__ = ["standard_errors", "information_criteria", "entropy_of_data", "is_discrete"]

_KNN_MAX_ROWS = 20_000


@functools.partial(jax.jit, static_argnums=0)
def _hessian(family: AbstractFamily, params: Any, data: jax.Array, weights: jax.Array) -> jax.Array:
    flat, unravel = ravel_pytree(params)
    return jax.hessian(lambda u: weighted_nll(family, unravel(u), data, weights))(flat)


@functools.partial(jax.jit, static_argnums=0)
def _jacobian(family: AbstractFamily, params: Any) -> jax.Array:
    flat, unravel = ravel_pytree(params)
    return jax.jacfwd(lambda u: ravel_pytree(family.constrained(unravel(u)))[0])(flat)


def standard_errors(family: AbstractFamily, params: Any, data: jax.Array, weights: jax.Array,
                    total_weight: float, hessian: Any = None) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Standard errors of the constrained parameters by name, and the covariance of the flat ones.

    ``weights`` sum to 1 and ``total_weight`` is Σ w (n without weights); ``hessian`` (of the
    weighted mean NLL in the flat unconstrained parameters) is computed when not given. NaN where
    the observed information is singular or not positive definite (a boundary or unidentified
    optimum, or a log-likelihood that is not twice differentiable, such as the Laplace location).
    """
    hess = _hessian(family, params, data, weights) if hessian is None else hessian
    hess, jac = np.asarray(hess) * total_weight, np.asarray(_jacobian(family, params))
    from . import _compiled as C

    # names with their own shapes (C.names is in sorted order, the family's values in its own)
    template = {k: tuple(np.shape(v)) for k, v in C.finish(family, params)[1].items()}
    lam = np.linalg.eigvalsh(hess) if hess.size else np.ones(1)
    if hess.size and np.all(np.isfinite(hess)) and lam.min() > 1e-12 * max(lam.max(), 1e-300):
        cov_u = np.linalg.inv(hess)
        cov = jac @ cov_u @ jac.T
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    else:
        cov = None
        se = np.full(jac.shape[0], np.nan)
    # by name, in jax.tree order (as ravel_pytree flattens), then in the family's order
    names, out, start = sorted(template), {}, 0
    for k in names:
        size = int(np.prod(template[k], dtype=int))
        out[k] = np.reshape(se[start : start + size], template[k])
        start += size
    return {k: out[k] for k in template}, cov


def information_criteria(mean_nll: float, total_weight: float, num_params: int) -> dict[str, float]:
    """log L = −N · mean NLL, AIC = 2k − 2 log L, BIC = k log N − 2 log L (N = Σ w)."""
    log_lik = -total_weight * mean_nll
    return {
        "log_likelihood": log_lik,
        "aic": 2.0 * num_params - 2.0 * log_lik,
        "bic": num_params * math.log(total_weight) - 2.0 * log_lik,
    }


def _vasicek(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """m-spacing estimate (1/n) Σ log(n/(2m) (x₍ᵢ₊ₘ₎ − x₍ᵢ₋ₘ₎)), m = round(√n / 2), order statistics
    clipped at the ends; weighted rows enter by their weight."""
    order = np.argsort(x)
    x, w = x[order], w[order]
    n = len(x)
    m = max(1, int(round(math.sqrt(n) / 2)))
    idx = np.arange(n)
    spacing = x[np.minimum(idx + m, n - 1)] - x[np.maximum(idx - m, 0)]
    positive = spacing > 0
    if not positive.any():
        return float("-inf"), float("nan")
    terms = np.log(n / (2.0 * m) * np.where(positive, spacing, spacing[positive].min()))
    h = float(np.sum(w * terms))
    return h, float(np.sqrt(np.sum(w * (terms - h) ** 2) / n))


def _kozachenko_leonenko(x: np.ndarray) -> tuple[float, float]:
    """1-NN estimate ψ(n) − ψ(1) + log V_d + (d/n) Σ log ρ_i (ρ: distance to the nearest neighbour)."""
    n, d = x.shape
    dist, _ = cKDTree(x).query(x, k=2)
    rho = dist[:, 1]
    rho = np.where(rho > 0, rho, rho[rho > 0].min() if (rho > 0).any() else 1.0)
    log_vd = d / 2 * math.log(math.pi) - gammaln(d / 2 + 1)
    terms = d * np.log(rho)
    return float(digamma(n) - digamma(1) + log_vd + terms.mean()), float(terms.std() / math.sqrt(n))


def entropy_of_data(data: np.ndarray, weights: np.ndarray, *, discrete: bool) -> Estimate | None:
    """An estimate of H(p) from the data, to set beside the fitted cross-entropy H(p̂, q).

    Discrete data: the plug-in entropy of the (weighted) frequencies. Continuous 1-D: the
    Vasicek m-spacing estimate. Continuous d-D: the Kozachenko–Leonenko 1-NN estimate on at most
    20 000 evenly spaced rows (unweighted). Standard errors: the sd of the per-row terms over √n
    (a rough guide for the spacing and k-NN estimators). None if it cannot be formed.
    """
    data, weights = np.asarray(data), np.asarray(weights)
    n = data.shape[0]
    if n < 4:
        return None
    flat = data.reshape(n, -1)
    if discrete:
        _, inverse = np.unique(flat, axis=0, return_inverse=True)
        freq = np.bincount(inverse.ravel(), weights=weights)
        freq = freq[freq > 0]
        h = float(-np.sum(freq * np.log(freq)))
        var = float(np.sum(freq * np.log(freq) ** 2) - h**2)
        return Estimate(value=h, stderr=math.sqrt(max(var, 0.0) / n), method="plug_in", num_samples=n)
    if flat.shape[1] == 1:
        h, se = _vasicek(flat[:, 0], weights)
        if not np.isfinite(h):
            return None
        return Estimate(value=h, stderr=se, method="knn", num_samples=n, info={"estimator": "vasicek m-spacing"})
    rows = flat[np.linspace(0, n - 1, min(n, _KNN_MAX_ROWS)).astype(int)]
    h, se = _kozachenko_leonenko(rows)
    return Estimate(value=h, stderr=se, method="knn", num_samples=len(rows),
                    info={"estimator": "kozachenko-leonenko 1-NN"})


def is_discrete(q: Any) -> bool:
    """Whether q's support is discrete (a pmf, not a density)."""
    support = q.support
    while hasattr(support, "base_constraint"):
        support = support.base_constraint
    return bool(getattr(support, "is_discrete", False))
