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

Tall data (``subsample`` k > 1, chosen in :mod:`kullback.glm._fit`): the steps use the
Hessian of every k-th row, while the objective, gradient and line search stay exact, so the
minimiser and the stopping rule are the same; a step then costs a pass over X instead of a
Gram matrix, and the exact Hessian is formed once, at the end, for the standard errors. While
the subsampled steps gain 20× or more, the subsampled Hessian is kept rather than re-formed
(its sampling error, not the move of θ, limits the gain).

The logits X θ are updated as η + t·Xd, never recomputed from X, and one block loop over X
gives both Xd and the gradient at the full step t = 1 (see
:func:`kullback.glm._objective.step_pass`): an accepted full step reads X once.

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
        row_loss: the unweighted loss of each example at θ, shape ``(n,)``.
        hessian: the exact Hessian of the unpenalised mean loss at θ, shape ``(M·q, M·q)``
            (Newton with ``exact_final`` only; else ``None``).
        exact_hessian: whether ``hessian`` was formed (always exact when it is).
    """

    params: jax.Array
    objective: jax.Array
    violation: jax.Array
    num_steps: jax.Array
    status: jax.Array
    row_loss: jax.Array
    hessian: jax.Array | None = None
    exact_hessian: jax.Array | bool = False


def violation(g: jax.Array, theta: jax.Array, lam: jax.Array) -> jax.Array:
    """max_j of the distance of 0 from the subdifferential of F along θ_j."""
    at_zero = jnp.maximum(jnp.abs(g) - lam, 0.0)
    off_zero = jnp.abs(g + lam * jnp.sign(theta))
    return jnp.max(jnp.where(theta == 0, at_zero, off_zero))


def _cholesky_direction(H: jax.Array, g: jax.Array) -> jax.Array:
    # One factorisation in the program, in a loop: H first, and only if that fails H plus a
    # tiny diagonal shift (separation). Never two independent factorisations in one program,
    # and one copy of the (slow to compile) Cholesky code.
    shift = 1e-10 * (1.0 + jnp.max(jnp.abs(jnp.diag(H))))
    eye = jnp.eye(H.shape[0], dtype=H.dtype)

    def factor(c):
        _, tries = c
        return jnp.linalg.cholesky(H + jnp.where(tries > 0, shift, 0.0) * eye), tries + 1

    def failed(c):
        L, tries = c
        return (tries == 0) | ((tries < 2) & ~jnp.all(jnp.isfinite(L)))

    L, _ = jax.lax.while_loop(failed, factor, (jnp.zeros_like(H), jnp.asarray(0, jnp.int32)))
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


@partial(jax.jit, static_argnames=("num_free", "reference", "intercept", "use_l1", "subsample", "exact_final"))
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
    subsample: int = 1,
    exact_final: bool = False,
) -> SolverResult:
    """Minimise the weighted softmax cross-entropy plus ridge (and L1) by damped Newton steps.

    With ``subsample`` k > 1 (tall data) the steps use the Hessian of every k-th row, rescaled:
    the gradient, objective and line search stay exact, so the fixed point and the stopping rule
    are unchanged, while a step costs one pass over X instead of a full Gram matrix. The
    solver switches to the exact Hessian for good as soon as a step reduces the optimality
    violation by less than a factor 4.

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
        subsample: k, the row stride of the Hessian's subsample (static; 1: exact Newton).
        exact_final: return the exact Hessian at the final θ (static; for standard errors:
            one Gram matrix X̃ᵀ diag(a) X̃ after the loop).

    Returns:
        A :class:`SolverResult`; with ``exact_final`` its ``hessian`` is the exact unpenalised
        one at θ.
    """
    dtype = obj.dtype_of(X)
    eps = jnp.finfo(dtype).eps
    lam = lam if use_l1 else jnp.zeros_like(lam)
    zero_r, zero_mu = jnp.zeros_like(r), jnp.zeros((), dtype)
    penalty_H = jnp.diag(r)
    if intercept:
        q = theta0.shape[0] // num_free
        e = jnp.zeros(theta0.shape[0], dtype).at[::q].set(1.0)  # the intercepts' positions
        penalty_H = penalty_H + mu * jnp.outer(e, e)
    if subsample > 1:  # every k-th row, its weights rescaled to sum to 1 (if they can)
        h = X[0].shape[0] if isinstance(X, tuple) else 0  # from the last block of rows
        X_sub, offset_sub = (X[-1] if h else X)[::subsample], offset[h::subsample]
        w_total = jnp.sum(w[h::subsample])
        w_sub = w[h::subsample] / jnp.where(w_total > 0, w_total, 1.0)
        exact0 = ~(w_total > 0)
    else:
        exact0 = jnp.asarray(True)

    def composite(L, theta):
        smooth = obj.objective(L, Y, w, r, mu, theta, num_free, intercept)
        return smooth + jnp.sum(lam * jnp.abs(theta))

    def from_loss(loss, theta):  # F(θ) from the data part Σ w ℓ
        return loss + obj.penalty(r, mu, theta, num_free, intercept) + jnp.sum(lam * jnp.abs(theta))

    def logits_at(eta):
        return obj.logits(eta, offset, reference)

    def data_hessian(eta, L, exact):
        full = lambda: obj.hessian(X, L, w, zero_r, zero_mu, reference, intercept)  # noqa: E731
        if subsample == 1:
            return full()
        L_sub = obj.logits(eta[h::subsample], offset_sub, reference)
        part = lambda: obj.hessian(X_sub, L_sub, w_sub, zero_r, zero_mu, reference, intercept)  # noqa: E731
        return jax.lax.cond(exact, full, part)

    def evaluate(theta):  # from θ alone: X̃θ and the gradient in one pass (η = 0 + X̃θ)
        zero_eta = jnp.zeros_like(offset[:, :num_free])
        eta, RtX, R_sum, loss = obj.step_pass(X, zero_eta, theta, offset, Y, w, num_free, reference, intercept)
        g = obj.assemble_gradient(RtX, R_sum, r, mu, theta, intercept)
        return eta, from_loss(loss, theta), g

    def step(state):
        theta, eta, f, g, H, keep_H, exact, k, _ = state
        # The Hessian at θ, formed here only (one copy of its code in the program), unless the
        # last step kept the previous one.
        H = jax.lax.cond(keep_H, lambda: H, lambda: data_hessian(eta, logits_at(eta), exact))
        H_f = H + penalty_H
        d = _prox_direction(H_f, g, theta, lam) if use_l1 else _cholesky_direction(H_f, g)
        slope = jnp.dot(g, d) + jnp.sum(lam * (jnp.abs(theta + d) - jnp.abs(theta)))
        # One pass: the direction's logits, the gradient and the objective at the full step t = 1.
        eta_d, RtX, R_sum, loss_1 = obj.step_pass(X, eta, d, offset, Y, w, num_free, reference, intercept)

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
        t, f_t, _ = jax.lax.while_loop(ls_cond, ls_body, (one, from_loss(loss_1, theta + d), 0))
        accepted = (f_t <= f + _ARMIJO * t * slope) & jnp.isfinite(f_t) & (slope < 0)
        new_theta = jnp.where(accepted, theta + t * d, theta)
        v_old = violation(g, theta, lam)
        new_g = jax.lax.cond(  # a shorter step than t = 1 needs a pass of its own
            accepted & (t < 1.0),
            lambda: obj.gradient(X, logits_at(eta + t * eta_d), Y, w, r, mu, new_theta, reference, intercept),
            lambda: jnp.where(accepted, obj.assemble_gradient(RtX, R_sum, r, mu, new_theta, intercept), g),
        )
        # A step that gains little with the subsampled Hessian: exact Hessians from here on.
        v_new = violation(new_g, new_theta, lam)
        new_exact = exact | ~accepted | (v_new > 0.25 * v_old)
        new_eta = jnp.where(accepted, eta + t * eta_d, eta)
        new_f = jnp.where(accepted, f_t, f)
        v_new = jnp.where(accepted, v_new, v_old)
        converged = v_new <= tol
        # Subsampled Hessians gain a fixed factor per step (their sampling error, not the move
        # of θ, limits them): while a step gains 20× or more, keep the one we have.
        keep_H = (subsample > 1) & ~new_exact & accepted & (t == 1.0) & (v_new <= 0.05 * v_old)
        at_noise_floor = -slope <= 100 * eps * (1 + jnp.abs(f))
        retry = ~accepted & ~exact  # the subsampled direction failed: retry with the exact one
        status = jnp.where(
            converged,
            CONVERGED,
            jnp.where(
                ~accepted & ~retry,
                jnp.where(at_noise_floor, CONVERGED, LINE_SEARCH_FAILED),
                jnp.where(k + 1 >= max_iter, MAX_ITER, RUNNING),
            ),
        ).astype(jnp.int32)
        return new_theta, new_eta, new_f, new_g, H, keep_H, new_exact, k + accepted.astype(k.dtype), status

    eta0, f0, g0 = evaluate(theta0)
    status0 = jnp.where(violation(g0, theta0, lam) <= tol, CONVERGED, RUNNING).astype(jnp.int32)
    width = theta0.shape[0]
    H0 = jnp.zeros((width, width), dtype)
    state = (theta0, eta0, f0, g0, H0, jnp.asarray(False), exact0, jnp.asarray(0, jnp.int32), status0)
    theta, eta, f, g, _, _, _, k, status = jax.lax.while_loop(lambda s: s[-1] == RUNNING, step, state)
    L = logits_at(eta)
    # The loop forms each Hessian before its step, so the one at the final θ is formed here.
    H = obj.hessian(X, L, w, zero_r, zero_mu, reference, intercept) if exact_final else None
    return SolverResult(
        params=theta, objective=f, violation=violation(g, theta, lam), num_steps=k, status=status,
        row_loss=obj.row_loss(L, Y), hessian=H, exact_hessian=exact_final,
    )


@partial(jax.jit, static_argnames=("num_free", "reference", "intercept"))
def hessian_at(
    X: jax.Array, w: jax.Array, offset: jax.Array, theta: jax.Array, *, num_free: int, reference: bool, intercept: bool
) -> jax.Array:
    """The Hessian of the unpenalised mean cross-entropy at θ (for standard errors)."""
    L = obj.logits(obj.linear(X, theta, num_free, intercept), offset, reference)
    zero = jnp.zeros_like(theta)
    return obj.hessian(X, L, w, zero, jnp.zeros((), obj.dtype_of(X)), reference, intercept)
