"""Newton's method (IRLS) with a backtracking line search for the logistic log loss.

The objective, in the parameters β (intercept included as a column of ones in X):

    f(β) = Σ_i w_i ℓ(x_iᵀβ, y_i) + ½ Σ_j r_j β_j²,     Σ_i w_i = 1,

with ℓ the binary cross-entropy and r_j ≥ 0 a ridge weight per coefficient (0 for the
intercept and for an unpenalised fit). Its gradient and Hessian are

    g = Xᵀ(w ⊙ (σ(η) − y)) + r ⊙ β,     H = Xᵀ diag(w ⊙ σ(η)σ(−η)) X + diag(r).

Each step solves H d = −g through one Cholesky factorisation (a tiny diagonal shift is added
only if H is numerically singular, as under separation), then halves the step length until the
Armijo condition f(β + t d) ≤ f(β) + c t gᵀd holds on the exact objective. The loop stops when
max_j |g_j| ≤ tol (converged), when no step length decreases f while the Newton decrement
λ² = −gᵀd is already at rounding level (converged, nothing left to gain), when the line search
fails otherwise, or after ``max_iter`` steps.

One jitted program; a new shape of X compiles once, values and settings never recompile.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_solve

from ._losses import _bce

__all__ = ["NewtonResult", "newton_logistic", "CONVERGED", "MAX_ITER", "LINE_SEARCH_FAILED"]

RUNNING, CONVERGED, MAX_ITER, LINE_SEARCH_FAILED = -1, 0, 1, 2

_ARMIJO = 1e-4
_MAX_HALVINGS = 40  # step lengths down to 2⁻⁴⁰ ≈ 1e-12


class NewtonResult(NamedTuple):
    """What the solver returns: the parameters and how it ended.

    Attributes:
        params: β at the last accepted step, shape ``(p,)``.
        objective: f(β), the weighted mean loss plus the ridge term.
        grad_max: max_j |g_j| at β.
        num_steps: Newton steps taken.
        status: ``CONVERGED`` (0), ``MAX_ITER`` (1) or ``LINE_SEARCH_FAILED`` (2).
    """

    params: jax.Array
    objective: jax.Array
    grad_max: jax.Array
    num_steps: jax.Array
    status: jax.Array


def _objective(eta: jax.Array, y: jax.Array, w: jax.Array, r: jax.Array, beta: jax.Array) -> jax.Array:
    return jnp.sum(w * _bce(eta, y)) + 0.5 * jnp.sum(r * beta * beta)


def _grad_hess(
    X: jax.Array, eta: jax.Array, y: jax.Array, w: jax.Array, r: jax.Array, beta: jax.Array
) -> tuple[jax.Array, jax.Array]:
    residual = jax.nn.sigmoid(eta) - y
    curvature = w * jax.nn.sigmoid(eta) * jax.nn.sigmoid(-eta)  # σ(1 − σ) without cancellation
    g = X.T @ (w * residual) + r * beta
    H = (X.T * curvature) @ X + jnp.diag(r)
    return g, H


def _newton_direction(H: jax.Array, g: jax.Array) -> jax.Array:
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


@jax.jit
def newton_logistic(
    X: jax.Array,
    y: jax.Array,
    w: jax.Array,
    r: jax.Array,
    beta0: jax.Array,
    tol: jax.Array,
    max_iter: jax.Array,
) -> NewtonResult:
    """Minimise the weighted logistic loss plus ridge by damped Newton steps.

    Args:
        X: design matrix, shape ``(n, p)`` (a column of ones for an intercept).
        y: labels in {0, 1} (or probabilities), shape ``(n,)``.
        w: example weights summing to 1, shape ``(n,)``.
        r: ridge weight per coefficient, shape ``(p,)`` (0: unpenalised).
        beta0: starting point, shape ``(p,)``.
        tol: stop when max_j |g_j| ≤ tol.
        max_iter: the most Newton steps.

    Returns:
        A :class:`NewtonResult`.
    """
    dtype = X.dtype
    eps = jnp.finfo(dtype).eps

    def evaluate(beta):
        eta = X @ beta
        g, H = _grad_hess(X, eta, y, w, r, beta)
        return eta, _objective(eta, y, w, r, beta), g, H

    def step(state):
        beta, eta, f, g, H, k, _ = state
        d = _newton_direction(H, g)
        slope = jnp.dot(g, d)  # < 0; −slope is the squared Newton decrement for a Newton d
        eta_d = X @ d

        def trial(t):
            return _objective(eta + t * eta_d, y, w, r, beta + t * d)

        def ls_cond(c):
            t, f_t, m = c
            return (f_t > f + _ARMIJO * t * slope) & (m < _MAX_HALVINGS)

        def ls_body(c):
            t, _, m = c
            t = 0.5 * t
            return t, trial(t), m + 1

        one = jnp.asarray(1.0, dtype)
        t, f_t, m = jax.lax.while_loop(ls_cond, ls_body, (one, trial(one), 0))
        accepted = (f_t <= f + _ARMIJO * t * slope) & jnp.isfinite(f_t)
        new_beta = jnp.where(accepted, beta + t * d, beta)
        new_eta, new_f, new_g, new_H = evaluate(new_beta)
        at_noise_floor = -0.5 * slope <= 100 * eps * (1 + jnp.abs(f))
        status = jnp.where(
            jnp.max(jnp.abs(new_g)) <= tol,
            CONVERGED,
            jnp.where(
                ~accepted,
                jnp.where(at_noise_floor, CONVERGED, LINE_SEARCH_FAILED),
                jnp.where(k + 1 >= max_iter, MAX_ITER, RUNNING),
            ),
        ).astype(jnp.int32)
        return new_beta, new_eta, new_f, new_g, new_H, k + accepted.astype(k.dtype), status

    eta0, f0, g0, H0 = evaluate(beta0)
    status0 = jnp.where(jnp.max(jnp.abs(g0)) <= tol, CONVERGED, RUNNING).astype(jnp.int32)
    state = (beta0, eta0, f0, g0, H0, jnp.asarray(0, jnp.int32), status0)
    beta, _, f, g, _, k, status = jax.lax.while_loop(lambda s: s[-1] == RUNNING, step, state)
    return NewtonResult(params=beta, objective=f, grad_max=jnp.max(jnp.abs(g)), num_steps=k, status=status)
