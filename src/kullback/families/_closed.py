"""Closed-form maximum likelihood from (weighted) sufficient statistics: one pass over the data.

Each function takes data ``x`` of shape ``(n, *event)`` and weights ``w`` of shape ``(n,)``
summing to 1, and returns the constrained MLE by parameter name. Exponential families solve
E_θ[T(X)] = Σ_i w_i T(x_i); where that equation has no explicit root (the gamma shape, the beta
concentrations) a few Newton steps on the sufficient statistics solve it to machine precision.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import digamma, polygamma

__all__ = ["CLOSED_FORMS", "weighted_mean", "gamma_shape", "beta_concentrations"]

Array = jax.Array


def weighted_mean(values: Array, w: Array) -> Array:
    """Σ_i w_i v_i over the leading axis (``w`` sums to 1)."""
    return jnp.tensordot(w, values, axes=(0, 0))


def _trigamma(a: Array) -> Array:
    return polygamma(1, a)


def gamma_shape(s: Array, *, num_steps: int = 12) -> Array:
    """The root a of log a − ψ(a) = s (s = log mean − mean log > 0), Minka's generalised Newton.

    Starts at a₀ = (3 − s + √((s − 3)² + 24 s)) / (12 s) (within 1.5 % of the root) and iterates
    1/a ← 1/a + (log a − ψ(a) − s) / (a² (1/a − ψ'(a))), quadratically convergent.
    """
    a = (3.0 - s + jnp.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)

    def step(_, a):
        f = jnp.log(a) - digamma(a) - s
        fp = 1.0 / a - _trigamma(a)
        return 1.0 / (1.0 / a + f / (a * a * fp))

    return jax.lax.fori_loop(0, num_steps, step, a)


def beta_concentrations(s1: Array, s0: Array, mean: Array, var: Array, *, num_steps: int = 40) -> tuple[Array, Array]:
    """Root (α, β) of ψ(α) − ψ(α+β) = s1, ψ(β) − ψ(α+β) = s0 (s1 = mean log x, s0 = mean log(1−x)).

    Newton on the (concave) log-likelihood from the method-of-moments start, steps shortened to
    keep α, β > 0.
    """
    common = jnp.maximum(mean * (1.0 - mean) / var - 1.0, 1e-3)
    a, b = mean * common, (1.0 - mean) * common

    def step(_, ab):
        a, b = ab
        t = _trigamma(a + b)
        g1 = digamma(a) - digamma(a + b) - s1
        g0 = digamma(b) - digamma(a + b) - s0
        h11, h00 = _trigamma(a) - t, _trigamma(b) - t
        det = h11 * h00 - t * t
        da = -(h00 * g1 + t * g0) / det
        db = -(t * g1 + h11 * g0) / det
        shrink = jnp.minimum(1.0, 0.5 * jnp.minimum(jnp.where(da < 0, -a / da, jnp.inf), jnp.where(db < 0, -b / db, jnp.inf)))
        return a + shrink * da, b + shrink * db

    return jax.lax.fori_loop(0, num_steps, step, (a, b))


def _normal(x: Array, w: Array) -> dict[str, Array]:
    mean = weighted_mean(x, w)
    return {"loc": mean, "scale": jnp.sqrt(weighted_mean((x - mean) ** 2, w))}


def _mvn(x: Array, w: Array) -> dict[str, Array]:
    mean = weighted_mean(x, w)
    centered = x - mean
    cov = (centered * w[:, None]).T @ centered
    return {"loc": mean, "scale_tril": jnp.linalg.cholesky(cov)}


def _lognormal(x: Array, w: Array) -> dict[str, Array]:
    return _normal(jnp.log(x), w)


def _exponential(x: Array, w: Array) -> dict[str, Array]:
    return {"rate": 1.0 / weighted_mean(x, w)}


def _poisson(x: Array, w: Array) -> dict[str, Array]:
    return {"rate": weighted_mean(x, w)}


def _gamma(x: Array, w: Array) -> dict[str, Array]:
    mean = weighted_mean(x, w)
    a = gamma_shape(jnp.log(mean) - weighted_mean(jnp.log(x), w))
    return {"concentration": a, "rate": a / mean}


def _beta(x: Array, w: Array) -> dict[str, Array]:
    mean = weighted_mean(x, w)
    var = weighted_mean((x - mean) ** 2, w)
    a, b = beta_concentrations(weighted_mean(jnp.log(x), w), weighted_mean(jnp.log1p(-x), w), mean, var)
    return {"concentration1": a, "concentration0": b}


def _weighted_median(x: Array, w: Array) -> Array:
    order = jnp.argsort(x, axis=0)
    xs = jnp.take_along_axis(x, order, axis=0)
    ws = w[order] if x.ndim == 1 else jnp.take_along_axis(jnp.broadcast_to(w[:, None], x.shape), order, axis=0)
    cum = jnp.cumsum(ws, axis=0)
    idx = jnp.argmax(cum >= 0.5 - 1e-12, axis=0)
    return jnp.take_along_axis(xs, idx[None], axis=0)[0] if x.ndim > 1 else xs[idx]


def _laplace(x: Array, w: Array) -> dict[str, Array]:
    med = _weighted_median(x, w)
    return {"loc": med, "scale": weighted_mean(jnp.abs(x - med), w)}


def _bernoulli_probs(x: Array, w: Array) -> dict[str, Array]:
    return {"probs": weighted_mean(x, w)}


def _bernoulli_logits(x: Array, w: Array) -> dict[str, Array]:
    p = weighted_mean(x, w)
    return {"logits": jnp.log(p) - jnp.log1p(-p)}


def _geometric_probs(x: Array, w: Array) -> dict[str, Array]:
    return {"probs": 1.0 / (1.0 + weighted_mean(x, w))}


CLOSED_FORMS: dict[type, Callable[[Array, Array], dict[str, Array]]] = {
    dist.Normal: _normal,
    dist.MultivariateNormal: _mvn,
    dist.LogNormal: _lognormal,
    dist.Exponential: _exponential,
    dist.Poisson: _poisson,
    dist.Gamma: _gamma,
    dist.Beta: _beta,
    dist.Laplace: _laplace,
    dist.BernoulliProbs: _bernoulli_probs,
    dist.BernoulliLogits: _bernoulli_logits,
    dist.GeometricProbs: _geometric_probs,
}
