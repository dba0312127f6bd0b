"""EM for Gaussian mixtures (full, diagonal, spherical covariance) and k-means++ seeding.

E step: r_ij ∝ π_j N(x_i | μ_j, Σ_j). M step with frequency weights s_i (Σ s_i = 1), R_ij = s_i r_ij,
N_j = Σ_i R_ij: π_j = N_j, μ_j = Σ_i R_ij x_i / N_j, Σ_j = Σ_i R_ij (x_i − μ_j)(x_i − μ_j)ᵀ / N_j + εI
(its diagonal, or the mean of its diagonal). Each iteration raises the weighted mean
log-likelihood ℓ_t = Σ_i s_i log Σ_j π_j N(x_i | μ_j, Σ_j) (up to the ε regularisation).

Convergence test: Δ_t = ℓ_t − ℓ_{t−1} < tol *and* the Aitken estimate of the gain still to come,
Δ_t a_t / (1 − a_t) with a_t = Δ_t / Δ_{t−1}, is < tol. A slow start (small Δ that is growing,
a_t ≥ 1) is not mistaken for convergence; nor is a long slow crawl (a_t close to 1).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import logsumexp

__all__ = ["GaussianMixtureParams", "em_converged", "kmeans_plus_plus", "em_gaussian_mixture", "log_densities"]


class GaussianMixtureParams(NamedTuple):
    """Weights (k,), means (k, d), covariances (k, d, d) for "full", (k, d) "diag", (k,) "spherical"."""

    weights: jax.Array
    means: jax.Array
    covariances: jax.Array


def kmeans_plus_plus(key: jax.Array, x: jax.Array, sample_weight: jax.Array, k: int) -> jax.Array:
    """k centres by D² sampling (Arthur & Vassilvitskii 2007): each next centre is row i with
    probability ∝ s_i · min_j ‖x_i − c_j‖²; the first ∝ s_i. Returns (k, d)."""
    keys = jax.random.split(key, k)
    first = jax.random.categorical(keys[0], jnp.log(sample_weight))
    centers = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
    d2 = jnp.sum((x - x[first]) ** 2, axis=1)

    def body(j, carry):
        centers, d2 = carry
        logits = jnp.log(sample_weight) + jnp.log(jnp.maximum(d2, 1e-300))
        i = jax.random.categorical(keys[j], logits)
        centers = centers.at[j].set(x[i])
        return centers, jnp.minimum(d2, jnp.sum((x - x[i]) ** 2, axis=1))

    centers, _ = jax.lax.fori_loop(1, k, body, (centers, d2))
    return centers


def _nearest(x: jax.Array, centers: jax.Array) -> jax.Array:
    d2 = jnp.sum(x**2, axis=1)[:, None] - 2 * x @ centers.T + jnp.sum(centers**2, axis=1)[None]
    return jax.nn.one_hot(jnp.argmin(d2, axis=1), centers.shape[0], dtype=x.dtype)


def log_densities(x: jax.Array, p: GaussianMixtureParams, covariance: str) -> jax.Array:
    """log π_j + log N(x_i | μ_j, Σ_j), shape (n, k)."""
    n, d = x.shape
    const = -0.5 * d * math.log(2 * math.pi)
    if covariance == "full":
        chol = jnp.linalg.cholesky(p.covariances)  # one batched factorisation, one batched solve
        eye = jnp.broadcast_to(jnp.eye(d, dtype=x.dtype), p.covariances.shape)
        inv_chol = solve_triangular(chol, eye, lower=True)  # L⁻¹, (k, d, d)
        shift = jnp.einsum("kde,ke->kd", inv_chol, p.means)

        def quad(args):
            a, b = args
            return jnp.sum((x @ a.T - b) ** 2, axis=1)

        maha = jax.lax.map(quad, (inv_chol, shift)).T  # (n, k), one (n, d) product at a time
        log_det = jnp.sum(jnp.log(jnp.diagonal(chol, axis1=1, axis2=2)), axis=1)
    else:
        var = p.covariances if covariance == "diag" else jnp.broadcast_to(p.covariances[:, None], p.means.shape)
        prec = 1.0 / var
        maha = (x**2) @ prec.T - 2 * x @ (p.means * prec).T + jnp.sum(p.means**2 * prec, axis=1)
        log_det = 0.5 * jnp.sum(jnp.log(var), axis=1)
    return jnp.log(p.weights) + const - log_det - 0.5 * maha


def em_converged(delta: jax.Array, prev_delta: jax.Array, tol: float) -> jax.Array:
    """The stopping test: |Δ_t| < tol and the Aitken-projected remaining gain Δ_t a/(1 − a) < tol,
    a = Δ_t / Δ_{t−1} (a ≥ 1, a growing gain, is never converged; Δ_t ≤ 0 is)."""
    a = delta / prev_delta
    remaining = jnp.where((a >= 0) & (a < 1), delta * a / (1 - a), jnp.where(a < 0, 0.0, jnp.inf))
    return (jnp.abs(delta) < tol) & ((remaining < tol) | (delta <= 0))


def _m_step(x: jax.Array, resp: jax.Array, reg: float, covariance: str) -> GaussianMixtureParams:
    eps = 10 * jnp.finfo(x.dtype).eps
    nk = jnp.sum(resp, axis=0) + eps
    means = resp.T @ x / nk[:, None]
    if covariance == "full":
        def cov(args):
            r, m, nj = args
            diff = x - m
            return (diff * r[:, None]).T @ diff / nj

        covs = jax.lax.map(cov, (resp.T, means, nk)) + reg * jnp.eye(x.shape[1], dtype=x.dtype)
    else:
        covs = resp.T @ (x**2) / nk[:, None] - means**2 + reg
        if covariance == "spherical":
            covs = jnp.mean(covs, axis=1)
    return GaussianMixtureParams(nk / jnp.sum(nk), means, covs)


def _e_step(x, sample_weight, p, covariance):
    logp = log_densities(x, p, covariance)
    norm = logsumexp(logp, axis=1)
    return sample_weight @ norm, jnp.exp(logp - norm[:, None])


@functools.partial(jax.jit, static_argnames=("k", "covariance", "capacity"))
def em_gaussian_mixture(key, x, sample_weight, tol, reg, max_iter, *, k, covariance, capacity):
    """One EM run from a k-means++ start. ``sample_weight`` sums to 1.

    Returns (params, mean log-likelihood of the returned params, history, iterations, converged).
    """
    centers = kmeans_plus_plus(key, x, sample_weight, k)
    params = _m_step(x, _nearest(x, centers) * sample_weight[:, None], reg, covariance)
    history = jnp.full(capacity, jnp.nan, dtype=x.dtype)

    def cond(c):
        _, _, _, it, _, done = c
        return (it < max_iter) & ~done

    def body(c):
        p, prev, prev_delta, it, history, _ = c
        ll, resp = _e_step(x, sample_weight, p, covariance)
        delta = ll - prev
        done = (it > 1) & em_converged(delta, prev_delta, tol) | ~jnp.isfinite(ll)
        p = _m_step(x, resp * sample_weight[:, None], reg, covariance)
        return p, ll, delta, it + 1, history.at[it].set(ll), done

    carry = (params, -jnp.inf, jnp.inf, 0, history, False)
    params, _, _, it, history, done = jax.lax.while_loop(cond, body, carry)
    ll, _ = _e_step(x, sample_weight, params, covariance)
    return params, ll, history, it, done
