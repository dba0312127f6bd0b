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
import numpy as np
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import logsumexp

__all__ = ["GaussianMixtureParams", "em_converged", "kmeans_plus_plus", "lloyd", "seeded_rng", "em_gaussian_mixture", "log_densities"]


class GaussianMixtureParams(NamedTuple):
    """Weights (k,), means (k, d), covariances (k, d, d) for "full", (k, d) "diag", (k,) "spherical"."""

    weights: jax.Array
    means: jax.Array
    covariances: jax.Array


def kmeans_plus_plus(rng: np.random.Generator, x: np.ndarray, sample_weight: np.ndarray, k: int) -> np.ndarray:
    """k centres (k, d) by greedy D² sampling (Arthur & Vassilvitskii 2007; the variant
    scikit-learn uses), in NumPy: each next centre is the best of 2 + ⌊log k⌋ candidates drawn
    with probability ∝ s_i · min_j ‖x_i − c_j‖², "best" meaning the lowest weighted potential
    Σ_i s_i min_j ‖x_i − c_j‖² once it is added; the first is drawn ∝ s_i. Rows of weight 0 are
    never chosen. A few passes of elementwise arithmetic: no compile."""
    x, s = np.asarray(x, dtype=float), np.asarray(sample_weight, dtype=float)
    n, trials = x.shape[0], 2 + int(math.log(k))
    first = rng.choice(n, p=s / s.sum())
    centers = [x[first]]
    d2 = np.sum((x - x[first]) ** 2, axis=1)
    for _ in range(1, k):
        mass = s * d2
        total = mass.sum()
        p = mass / total if total > 0 else s / s.sum()  # every weighted row on a centre already
        candidates = rng.choice(n, size=trials, p=p)
        pots = [np.minimum(d2, np.sum((x - x[c]) ** 2, axis=1)) for c in candidates]
        best = int(np.argmin([pot @ s for pot in pots]))
        centers.append(x[candidates[best]])
        d2 = pots[best]
    return np.stack(centers)


def lloyd(x: np.ndarray, sample_weight: np.ndarray, centers: np.ndarray, *, max_iter: int = 100,
          tol: float = 1e-4) -> np.ndarray:
    """Weighted k-means (Lloyd's iterations) from ``centers``, in NumPy, until the centres move by
    less than ``tol`` × the data's mean coordinate variance (the rule scikit-learn's KMeans uses,
    which starts its GaussianMixture by default). A centre left without rows stays where it is."""
    x, s = np.asarray(x, dtype=float), np.asarray(sample_weight, dtype=float)
    k, d = centers.shape
    mean = s @ x / s.sum()
    scale = tol * float(s @ ((x - mean) ** 2).sum(axis=1)) / s.sum() / d
    centers = np.array(centers, dtype=float)
    for _ in range(max_iter):
        d2 = np.stack([np.sum((x - c) ** 2, axis=1) for c in centers], axis=1)
        labels = np.argmin(d2, axis=1)
        mass = np.bincount(labels, weights=s, minlength=k)
        sums = np.stack([np.bincount(labels, weights=s * x[:, j], minlength=k) for j in range(d)], axis=1)
        new = np.where(mass[:, None] > 0, sums / np.where(mass > 0, mass, 1.0)[:, None], centers)
        shift = float(np.sum((new - centers) ** 2))
        centers = new
        if shift <= scale:
            break
    return centers


def seeded_rng(key: jax.Array, restart: int) -> np.random.Generator:
    """A NumPy generator determined by a jax.random key and a restart index."""
    data = key if key.dtype == jnp.uint32 else jax.random.key_data(key)
    return np.random.default_rng([*np.asarray(data).ravel().tolist(), int(restart)])


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


@functools.partial(jax.jit, static_argnames=("covariance", "capacity"))
def em_gaussian_mixture(centers, x, sample_weight, tol, reg, max_iter, *, covariance, capacity):
    """One EM run from k-means ``centers`` (k, d) (each row starts in its nearest centre's
    component). ``sample_weight`` sums to 1.

    Returns (params, mean log-likelihood of the returned params, history, iterations, converged).
    """
    params = _m_step(x, _nearest(x, centers) * sample_weight[:, None], reg, covariance)
    history = jnp.full(capacity, jnp.nan, dtype=x.dtype)

    def cond(c):
        _, _, _, it, _, done = c
        return (it < max_iter) & ~done

    # One E step per turn: the log-likelihood of the current params, then (unless converged) the M
    # step. The returned params are those whose log-likelihood was computed last: no second copy
    # of the E step after the loop (it would double the program that compiles).
    def body(c):
        p, prev, prev_delta, it, history, _ = c
        ll, resp = _e_step(x, sample_weight, p, covariance)
        delta = ll - prev
        done = (it > 1) & em_converged(delta, prev_delta, tol) | ~jnp.isfinite(ll)
        new = _m_step(x, resp * sample_weight[:, None], reg, covariance)
        last = done | (it + 1 >= max_iter)
        p = jax.tree.map(lambda old, fresh: jnp.where(last, old, fresh), p, new)
        return p, ll, delta, it + 1, history.at[it].set(ll), done

    carry = (params, -jnp.inf, jnp.inf, 0, history, False)
    params, ll, _, it, history, done = jax.lax.while_loop(cond, body, carry)
    return params, ll, history, it, done
