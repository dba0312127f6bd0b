"""EM for Gaussian mixtures (full, diagonal, spherical covariance) and k-means++ seeding.

E step: r_ij ∝ π_j N(x_i | μ_j, Σ_j). M step with frequency weights s_i (Σ s_i = 1), R_ij = s_i r_ij,
N_j = Σ_i R_ij: π_j = N_j, μ_j = Σ_i R_ij x_i / N_j, Σ_j = Σ_i R_ij (x_i − μ_j)(x_i − μ_j)ᵀ / N_j + εI
(its diagonal, or the mean of its diagonal). Each iteration raises the weighted mean
log-likelihood ℓ_t = Σ_i s_i log Σ_j π_j N(x_i | μ_j, Σ_j) (up to the ε regularisation).

Convergence test: Δ_t = ℓ_t − ℓ_{t−1} < tol *and* the Aitken estimate of the gain still to come,
Δ_t a_t / (1 − a_t) with a_t = Δ_t / Δ_{t−1}, is < tol. A slow start (small Δ that is growing,
a_t ≥ 1) is not mistaken for convergence; nor is a long slow crawl (a_t close to 1).

Two implementations of the same iteration: ``em_gaussian_mixture`` (one compiled program) and
``em_gaussian_mixture_host`` (NumPy, nothing to compile: a first call pays no XLA compile). The
NumPy one makes one pass over the rows per iteration, in blocks small enough that OpenBLAS runs
each product on one thread (its threads stall behind other busy threads on a small machine: a
(2e5, 5) @ (5, 5) product took 80 ms threaded, 1 ms blocked), with the data transposed so that
elementwise work runs along rows. Full covariances: each component's moments about its current
mean (no cancellation when the means are far from 0); diagonal ones: moments about the data's
mean, all components in two products (the compiled EM takes them about 0). Subnormal
responsibilities are flushed to 0 as XLA does (NumPy arithmetic on them is ~100× slower).
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

from ._progress import report

__all__ = ["GaussianMixtureParams", "em_converged", "kmeans_plus_plus", "lloyd", "seeded_rng", "em_gaussian_mixture",
           "em_gaussian_mixture_host", "em_loop", "log_densities"]


class GaussianMixtureParams(NamedTuple):
    """Weights (k,), means (k, d), covariances (k, d, d) for "full", (k, d) "diag", (k,) "spherical"."""

    weights: jax.Array
    means: jax.Array
    covariances: jax.Array


def _sq_dists(xt: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """‖x_i − c_j‖² (m, n) from the transposed data ``xt`` (d, n) and centres (m, d): elementwise
    along rows (a BLAS product would be threaded by OpenBLAS, and stalls on a busy machine), in
    blocks of rows that stay in cache (1e6 × 10: 3× faster than whole columns)."""
    d, n = xt.shape
    out = np.empty((centers.shape[0], n))
    step = max(256, 2**16 // d)
    buf = np.empty((d, min(step, n)))
    for start in range(0, n, step):
        xb = xt[:, start:start + step]
        diff = buf[:, :xb.shape[1]]
        for j, c in enumerate(centers):
            np.subtract(xb, c[:, None], out=diff)
            np.einsum("ib,ib->b", diff, diff, out=out[j, start:start + xb.shape[1]])
    return out


def _nearest_host(xt: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """The index of each row's nearest centre (the first of equals, as ``argmin``)."""
    d2 = _sq_dists(xt, centers)
    best, labels = d2[0], np.zeros(d2.shape[1], dtype=np.intp)
    for j in range(1, centers.shape[0]):
        closer = d2[j] < best
        labels[closer] = j
        np.minimum(best, d2[j], out=best)
    return labels


def kmeans_plus_plus(rng: np.random.Generator, x: np.ndarray, sample_weight: np.ndarray, k: int) -> np.ndarray:
    """k centres (k, d) by greedy D² sampling (Arthur & Vassilvitskii 2007; the variant
    scikit-learn uses), in NumPy: each next centre is the best of 2 + ⌊log k⌋ candidates drawn
    with probability ∝ s_i · min_j ‖x_i − c_j‖², "best" meaning the lowest weighted potential
    Σ_i s_i min_j ‖x_i − c_j‖² once it is added; the first is drawn ∝ s_i. Rows of weight 0 are
    never chosen. A few passes of elementwise arithmetic: no compile."""
    x, s = np.asarray(x, dtype=float), np.asarray(sample_weight, dtype=float)
    xt = np.ascontiguousarray(x.T)
    n, trials = x.shape[0], 2 + int(math.log(k))
    first = rng.choice(n, p=s / s.sum())
    centers = [x[first]]
    d2 = _sq_dists(xt, x[first][None])[0]
    for _ in range(1, k):
        mass = s * d2
        total = mass.sum()
        p = mass / total if total > 0 else s / s.sum()  # every weighted row on a centre already
        candidates = rng.choice(n, size=trials, p=p)
        pots = np.minimum(d2, _sq_dists(xt, x[candidates]))
        best = int(np.argmin([np.einsum("i,i->", pot, s) for pot in pots]))
        centers.append(x[candidates[best]])
        d2 = pots[best]
    return np.stack(centers)


def lloyd(x: np.ndarray, sample_weight: np.ndarray, centers: np.ndarray, *, max_iter: int = 100,
          tol: float = 1e-4) -> np.ndarray:
    """Weighted k-means (Lloyd's iterations) from ``centers``, in NumPy, until the centres move by
    less than ``tol`` × the data's mean coordinate variance (the rule scikit-learn's KMeans uses,
    which starts its GaussianMixture by default). A centre left without rows stays where it is."""
    xt = np.ascontiguousarray(np.asarray(x, dtype=float).T)
    s = np.asarray(sample_weight, dtype=float)
    k, d = centers.shape
    mean = np.einsum("ib,b->i", xt, s) / s.sum()
    scale = tol * float(np.einsum("i,i->", s, _sq_dists(xt, mean[None])[0])) / s.sum() / d
    centers = np.array(centers, dtype=float)
    for _ in range(max_iter):
        labels = _nearest_host(xt, centers)
        mass = np.bincount(labels, weights=s, minlength=k)
        sums = np.stack([np.bincount(labels, weights=s * xt[j], minlength=k) for j in range(d)], axis=1)
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


def em_converged(delta: jax.Array, prev_delta: jax.Array, tol: float, xp=jnp) -> jax.Array:
    """The stopping test: |Δ_t| < tol and the Aitken-projected remaining gain Δ_t a/(1 − a) < tol,
    a = Δ_t / Δ_{t−1} (a ≥ 1, a growing gain, is never converged; Δ_t ≤ 0 is). ``xp``: ``jnp``
    inside the compiled loop, ``np`` for the NumPy one."""
    a = delta / prev_delta
    remaining = xp.where((a >= 0) & (a < 1), delta * a / (1 - a), xp.where(a < 0, 0.0, xp.inf))
    return (xp.abs(delta) < tol) & ((remaining < tol) | (delta <= 0))


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


_TINY = np.finfo(float).tiny


def _host_block(rows: int) -> int:
    """Rows of data per block of the NumPy EM: each BLAS product of a block ((d + 1, b) @ (b, d + 1)
    per component for full covariances, (k, 2d + 1) @ (2d + 1, b) for diagonal ones) stays under
    OpenBLAS's one-thread size (m·n·k ≤ 2^18), and a block's working copies stay in cache."""
    return int(min(8192, max(256, 2**18 // rows // 256 * 256)))


def _e_weights(logp, sb):
    """Σ_i s_i log Σ_j exp(logp_ji) and R_ji = s_i softmax_j(logp_ji), from logp (k, b)."""
    top = logp.max(axis=0)
    resp = np.exp(logp - top)
    tot = resp.sum(axis=0)
    ll = float(np.einsum("b,b->", sb, np.log(tot) + top))
    resp *= sb / tot
    resp[resp < _TINY] = 0.0  # flush subnormals to 0, as XLA does: arithmetic on them is ~100x slower
    return ll, resp


def _full_pass(xt, s, shift, p=None):
    """One pass over the rows for full covariances (``xt``: the data transposed, (d, n), so that
    elementwise operations run along rows). With params ``p``: the E step (weighted log-likelihood
    Σ s_i log Σ_j π_j N(x_i | μ_j, Σ_j), responsibilities R_ij = s_i r_ij); without: R_ij = s_i
    for the nearest of the centres ``shift``. Returns the log-likelihood and the R-weighted
    moments of δ_ij = x_i − shift_j (each component about its own centre: no cancellation):
    N_j = Σ_i R_ij, Σ_i R_ij δ_ij, Σ_i R_ij δ_ij δ_ijᵀ."""
    d, n = xt.shape
    k = shift.shape[0]
    if p is not None:
        chol = np.linalg.cholesky(p.covariances)
        whiten = np.linalg.inv(chol)  # ‖L_j⁻¹ δ‖² = δᵀ Σ_j⁻¹ δ
        log_det = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        const = np.log(p.weights) - 0.5 * d * math.log(2 * math.pi) - log_det
    ll, moments = 0.0, np.zeros((k, d + 1, d + 1))
    step = _host_block((d + 1) ** 2)
    buf = np.ones((k, d + 1, min(step, n)))  # (δ_ij, 1) for a block of rows
    for start in range(0, n, step):
        xb, sb = xt[:, start:start + step], s[start:start + step]
        aug = buf[..., :sb.shape[0]]
        centred = aug[:, :d]
        np.subtract(xb[None], shift[..., None], out=centred)
        if p is None:
            near = np.argmin(np.einsum("kib,kib->kb", centred, centred), axis=0)
            resp = (near == np.arange(k)[:, None]) * sb
        else:
            white = whiten @ centred
            part, resp = _e_weights(const[:, None] - 0.5 * np.einsum("kib,kib->kb", white, white), sb)
            ll += part
        for j in range(k):
            moments[j] += (aug[j] * resp[j]) @ aug[j].T
    return ll, moments[:, d, d], moments[:, :d, d], moments[:, :d, :d]


def _diag_pass(xt, s, origin, covariance, p=None, centers=None):
    """``_full_pass`` for diagonal and spherical covariances: moments of δ_i = x_i − ``origin``
    (the data's mean) and δ_i², and Mahalanobis distances Σ_l (δ_il − m_jl)²/σ_jl² expanded into
    two products for all components at once (as the compiled EM, about the mean instead of 0)."""
    d, n = xt.shape
    if p is None:
        m = centers - origin
        prec = np.ones_like(m)
        const = -0.5 * np.sum(m**2, axis=1)
    else:
        k = p.means.shape[0]
        var = p.covariances if covariance == "diag" else np.broadcast_to(p.covariances[:, None], (k, d))
        prec, m = 1.0 / var, p.means - origin
        const = (np.log(p.weights) - 0.5 * d * math.log(2 * math.pi) - 0.5 * np.log(var).sum(axis=1)
                 - 0.5 * np.sum(prec * m**2, axis=1))
    k = m.shape[0]
    coef = np.concatenate([prec * m, -0.5 * prec], axis=1)  # logp = const + coef @ (δ, δ²)
    ll, moments = 0.0, np.zeros((k, 2 * d + 1))
    step = _host_block(k * (2 * d + 1))
    buf = np.ones((2 * d + 1, min(step, n)))  # (δ_i, δ_i², 1) for a block of rows
    for start in range(0, n, step):
        xb, sb = xt[:, start:start + step], s[start:start + step]
        aug = buf[:, :sb.shape[0]]
        np.subtract(xb, origin[:, None], out=aug[:d])
        np.multiply(aug[:d], aug[:d], out=aug[d:2 * d])
        logp = coef @ aug[:2 * d] + const[:, None]
        if p is None:
            resp = (np.argmax(logp, axis=0) == np.arange(k)[:, None]) * sb
        else:
            part, resp = _e_weights(logp, sb)
            ll += part
        moments += resp @ aug.T
    return ll, moments[:, 2 * d], moments[:, :d], moments[:, d:2 * d]


def _host_m_step(moments, shift, reg, covariance) -> GaussianMixtureParams:
    """π, μ, Σ from the moments about the centres c_j = ``shift``: μ_j = c_j + Σ R δ / N_j,
    Σ_j = Σ R δδᵀ / N_j − (μ_j − c_j)(μ_j − c_j)ᵀ + εI (diag: the diagonal; spherical: its mean)."""
    count, first, second = moments
    nk = count + 10 * np.finfo(float).eps
    step = first / nk[:, None]
    if covariance == "full":
        covs = second / nk[:, None, None] - step[:, :, None] * step[:, None, :] + reg * np.eye(shift.shape[1])
    else:
        covs = second / nk[:, None] - step**2 + reg
        if covariance == "spherical":
            covs = covs.mean(axis=1)
    return GaussianMixtureParams(nk / nk.sum(), shift + step, covs)


def em_loop(e_step, m_step, p, tol, max_iter):
    """The NumPy EM iteration and its stopping rule (``em_converged``, from the third iteration, as
    the compiled loop): ``e_step(p)`` → (mean log-likelihood of p, statistics), ``m_step(statistics)``
    → the next p. The returned p is the one whose log-likelihood was computed last.

    Returns (p, its mean log-likelihood, history (iterations,), iterations, converged).
    """
    prev, prev_delta, history, done, ll, it = -np.inf, np.inf, [], False, -np.inf, 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for it in range(1, max_iter + 1):
            try:
                ll, stats = e_step(p)
            except np.linalg.LinAlgError:  # a covariance no longer positive definite
                ll = np.nan
            history.append(ll)
            report(it, -ll)  # the objective: the mean negative log-likelihood
            delta = np.float64(ll) - prev  # NumPy floats: 0/0 is nan, x/0 inf, as in the compiled test
            done = bool(it > 2 and em_converged(delta, prev_delta, tol, np)) or not np.isfinite(ll)
            if done or it >= max_iter:
                break
            p = m_step(stats)
            prev, prev_delta = ll, delta
    return p, ll, np.asarray(history), it, done


def em_gaussian_mixture_host(centers, x, sample_weight, tol, reg, max_iter, *, covariance):
    """``em_gaussian_mixture`` in NumPy: the same start (each row in its nearest centre's
    component), iteration and stopping rule, nothing compiled; float64 throughout.

    Returns (params (NumPy), mean log-likelihood of the returned params, history (iterations,),
    iterations, converged).
    """
    xt = np.ascontiguousarray(np.asarray(x, dtype=float).T)
    s, centers = np.asarray(sample_weight, dtype=float), np.asarray(centers, dtype=float)
    if covariance == "full":
        def e_step(p):
            ll, *moments = _full_pass(xt, s, p.means, p)
            return ll, (moments, p.means)
        start = _full_pass(xt, s, centers)[1:], centers
    else:
        origin = np.einsum("ib,b->i", xt, s) / s.sum()
        around = np.broadcast_to(origin, centers.shape)

        def e_step(p):
            ll, *moments = _diag_pass(xt, s, origin, covariance, p)
            return ll, (moments, around)
        start = _diag_pass(xt, s, origin, covariance, centers=centers)[1:], around

    def m_step(stats):
        return _host_m_step(*stats, reg, covariance)

    return em_loop(e_step, m_step, m_step(start), tol, max_iter)
