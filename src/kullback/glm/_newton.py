"""Newton's method (IRLS) with a backtracking line search, and its proximal form for L1.

Minimises F(θ) = f(θ) + Σ_j λ_j |θ_j|, f the smooth softmax objective of
:mod:`kullback.glm._objective` (cross-entropy + ridge), λ ≥ 0 an L1 weight per parameter.

- Smooth (λ = 0): each step solves H d = −g by one Cholesky factorisation (a tiny diagonal
  shift is added only if H is numerically singular, as under separation).
- L1 (proximal Newton, as glmnet): d minimises the local model gᵀd + ½dᵀHd + Σ λ_j|θ_j + d_j|,
  solved by cyclic coordinate descent to rounding level.

Both then halve the step length until the Armijo condition F(θ + t d) ≤ F(θ) + c t Δ holds on
the exact objective, Δ = gᵀd + Σ λ_j(|θ_j + d_j| − |θ_j|) < 0. The loop stops when the
optimality violation max_j v_j ≤ tol, v_j = |g_j + λ_j sign θ_j| where θ_j ≠ 0 and
max(|g_j| − λ_j, 0) where θ_j = 0 (|g_j| when unpenalised), or when no step length decreases F
while |Δ| is at rounding level (converged: nothing left to gain), or at ``max_iter`` steps.

One jitted program per shape and structure; values and settings never recompile.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_solve

from . import _objective as obj

__all__ = ["SolverResult", "newton", "violation", "CONVERGED", "MAX_ITER", "LINE_SEARCH_FAILED"]

RUNNING, CONVERGED, MAX_ITER, LINE_SEARCH_FAILED = -1, 0, 1, 2

_ARMIJO = 1e-4
_MAX_HALVINGS = 40  # step lengths down to 2⁻⁴⁰ ≈ 1e-12
_CD_SWEEPS = 500


class SolverResult(NamedTuple):
    """What a solver returns: the parameters and how it ended.

    Attributes:
        params: θ at the last accepted step, flat, length M·q.
        objective: F(θ), the weighted mean loss plus the penalty.
        violation: the optimality violation max_j v_j at θ (max |g_j| when unpenalised).
        num_steps: steps taken.
        status: ``CONVERGED`` (0), ``MAX_ITER`` (1) or ``LINE_SEARCH_FAILED`` (2).
    """

    params: jax.Array
    objective: jax.Array
    violation: jax.Array
    num_steps: jax.Array
    status: jax.Array


def violation(g: jax.Array, theta: jax.Array, lam: jax.Array) -> jax.Array:
    """max_j of the distance of 0 from the subdifferential of F along θ_j."""
    at_zero = jnp.maximum(jnp.abs(g) - lam, 0.0)
    off_zero = jnp.abs(g + lam * jnp.sign(theta))
    return jnp.max(jnp.where(theta == 0, at_zero, off_zero))


def _cholesky_direction(H: jax.Array, g: jax.Array) -> jax.Array:
    L = jnp.linalg.cholesky(H)
    singular = ~jnp.all(jnp.isfinite(L))
    # Only if the first factorisation failed: shift the diagonal (depends on L, so the two
    # factorisations are sequential, never two independent ones in one program).
    shift = 1e-10 * (1.0 + jnp.max(jnp.abs(jnp.diag(H))))
    L = jax.lax.cond(
        singular, lambda: jnp.linalg.cholesky(H + shift * jnp.eye(H.shape[0], dtype=H.dtype)), lambda: L
    )
    d = -cho_solve((L, True), g)
    usable = jnp.all(jnp.isfinite(d)) & (jnp.dot(g, d) < 0)
    return jnp.where(usable, d, -g)  # steepest descent as the last resort


def _soft(u: jax.Array, lam: jax.Array) -> jax.Array:
    return jnp.sign(u) * jnp.maximum(jnp.abs(u) - lam, 0.0)


def _prox_direction(H: jax.Array, g: jax.Array, theta: jax.Array, lam: jax.Array) -> jax.Array:
    """argmin_d gᵀd + ½dᵀHd + Σ λ_j|θ_j + d_j| by cyclic coordinate descent on z = θ + d."""
    c = g - H @ theta  # the model is cᵀz + ½zᵀHz + Σ λ|z| up to a constant
    h = jnp.diag(H)
    m = theta.shape[0]

    def coordinate(j, carry):
        z, Hz = carry
        u = h[j] * z[j] - (c[j] + Hz[j])
        new = jnp.where(h[j] > 0, _soft(u, lam[j]) / jnp.where(h[j] > 0, h[j], 1.0), z[j])
        Hz = Hz + (new - z[j]) * H[:, j]
        return z.at[j].set(new), Hz

    def sweep(carry):
        z, Hz, k, _ = carry
        z_new, Hz = jax.lax.fori_loop(0, m, coordinate, (z, Hz))
        return z_new, Hz, k + 1, jnp.max(jnp.abs(z_new - z))

    def going(carry):
        z, _, k, change = carry
        return (change > 1e-15 * (1.0 + jnp.max(jnp.abs(z)))) & (k < _CD_SWEEPS)

    init = (theta, H @ theta, jnp.asarray(0, jnp.int32), jnp.asarray(jnp.inf, theta.dtype))
    z, _, _, _ = jax.lax.while_loop(going, sweep, init)
    return z - theta


@partial(jax.jit, static_argnames=("num_free", "reference", "intercept", "use_l1"))
def newton(
    X: jax.Array,
    Y: jax.Array,
    w: jax.Array,
    offset: jax.Array,
    r: jax.Array,
    lam: jax.Array,
    mu: jax.Array,
    theta0: jax.Array,
    tol: jax.Array,
    max_iter: jax.Array,
    *,
    num_free: int,
    reference: bool,
    intercept: bool,
    use_l1: bool,
) -> SolverResult:
    """Minimise the weighted softmax cross-entropy plus ridge (and L1) by damped Newton steps.

    Args:
        X: features, shape ``(n, p)`` (no intercept column: ``intercept`` adds it).
        Y: one-hot labels, shape ``(n, K)``.
        w: example weights summing to 1, shape ``(n,)``.
        offset: added to the logits, shape ``(n, K)``.
        r: ridge weight per parameter, shape ``(M·q,)`` (0: unpenalised).
        lam: L1 weight per parameter, shape ``(M·q,)``; used only with ``use_l1``.
        mu: weight of the intercept-centring term (see :mod:`kullback.glm._objective`).
        theta0: starting point, shape ``(M·q,)``.
        tol: stop when the optimality violation is at most ``tol``.
        max_iter: the most Newton steps.
        num_free, reference, intercept: the parameterisation (static).
        use_l1: proximal Newton steps (static).

    Returns:
        A :class:`SolverResult`.
    """
    dtype = X.dtype
    eps = jnp.finfo(dtype).eps
    lam = lam if use_l1 else jnp.zeros_like(lam)

    def composite(L, theta):
        smooth = obj.objective(L, Y, w, r, mu, theta, num_free, intercept)
        return smooth + jnp.sum(lam * jnp.abs(theta))

    def logits_at(eta):
        return obj.logits(eta, offset, reference)

    def evaluate(theta):
        eta = obj.linear(X, theta, num_free, intercept)
        L = logits_at(eta)
        g = obj.gradient(X, L, Y, w, r, mu, theta, reference, intercept)
        H = obj.hessian(X, L, w, r, mu, reference, intercept)
        return eta, composite(L, theta), g, H

    def step(state):
        theta, eta, f, g, H, k, _ = state
        d = _prox_direction(H, g, theta, lam) if use_l1 else _cholesky_direction(H, g)
        slope = jnp.dot(g, d) + jnp.sum(lam * (jnp.abs(theta + d) - jnp.abs(theta)))
        eta_d = obj.linear(X, d, num_free, intercept)

        def trial(t):
            return composite(logits_at(eta + t * eta_d), theta + t * d)

        def ls_cond(c):
            t, f_t, m = c
            return (~(f_t <= f + _ARMIJO * t * slope)) & (m < _MAX_HALVINGS)

        def ls_body(c):
            t, _, m = c
            t = 0.5 * t
            return t, trial(t), m + 1

        one = jnp.asarray(1.0, dtype)
        t, f_t, _ = jax.lax.while_loop(ls_cond, ls_body, (one, trial(one), 0))
        accepted = (f_t <= f + _ARMIJO * t * slope) & jnp.isfinite(f_t) & (slope < 0)
        new_theta = jnp.where(accepted, theta + t * d, theta)
        new_eta, new_f, new_g, new_H = evaluate(new_theta)
        at_noise_floor = -slope <= 100 * eps * (1 + jnp.abs(f))
        status = jnp.where(
            violation(new_g, new_theta, lam) <= tol,
            CONVERGED,
            jnp.where(
                ~accepted,
                jnp.where(at_noise_floor, CONVERGED, LINE_SEARCH_FAILED),
                jnp.where(k + 1 >= max_iter, MAX_ITER, RUNNING),
            ),
        ).astype(jnp.int32)
        return new_theta, new_eta, new_f, new_g, new_H, k + accepted.astype(k.dtype), status

    eta0, f0, g0, H0 = evaluate(theta0)
    status0 = jnp.where(violation(g0, theta0, lam) <= tol, CONVERGED, RUNNING).astype(jnp.int32)
    state = (theta0, eta0, f0, g0, H0, jnp.asarray(0, jnp.int32), status0)
    theta, _, f, g, _, k, status = jax.lax.while_loop(lambda s: s[-1] == RUNNING, step, state)
    return SolverResult(params=theta, objective=f, violation=violation(g, theta, lam), num_steps=k, status=status)


@partial(jax.jit, static_argnames=("num_free", "reference", "intercept"))
def hessian_at(
    X: jax.Array, w: jax.Array, offset: jax.Array, theta: jax.Array, *, num_free: int, reference: bool, intercept: bool
) -> jax.Array:
    """The Hessian of the unpenalised mean cross-entropy at θ (for standard errors)."""
    L = obj.logits(obj.linear(X, theta, num_free, intercept), offset, reference)
    zero = jnp.zeros_like(theta)
    return obj.hessian(X, L, w, zero, jnp.zeros((), X.dtype), reference, intercept)
