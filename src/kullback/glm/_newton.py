"""Newton's method (IRLS) with a backtracking line search, and its proximal form for L1.

Minimises F(θ) = f(θ) + Σ_j λ_j |θ_j|, f the smooth softmax objective of
:mod:`kullback.glm._objective` (cross-entropy + ridge), λ ≥ 0 an L1 weight per parameter.

- Smooth (λ = 0): each step solves H d = −g by one Cholesky factorisation of H in the units
  of the column scales s (a tiny shift is added only if H is numerically singular, as under
  separation or with collinear columns).
- L1 (proximal Newton, as glmnet): d minimises the local model gᵀd + ½dᵀHd + Σ λ_j|θ_j + d_j|,
  solved by cyclic coordinate descent to rounding level (one small compiled program).

Both then halve the step length until the Armijo condition F(θ + t d) ≤ F(θ) + c t Δ holds on
the exact objective, Δ = gᵀd + Σ λ_j(|θ_j + d_j| − |θ_j|) < 0. The loop stops when the
optimality violation max_j v_j / s_j ≤ tol, v_j = |g_j + λ_j sign θ_j| where θ_j ≠ 0 and
max(|g_j| − λ_j, 0) where θ_j = 0 (|g_j| when unpenalised), s_j the root mean square of
parameter j's column (1 for intercepts): v_j / s_j is the gradient with respect to the
coefficient of the column rescaled to unit root mean square, so the test does not depend on
the units of X (the Newton steps do not either); or at ``max_iter`` steps. Where |Δ| is
below the rounding of F, F cannot tell θ from θ + d (Armijo's test would accept steps that
change nothing, until ``max_iter``): the full step is then taken if it lowers the violation,
and otherwise the loop stops, converged (nothing left to gain that F or the gradient can see).

The loop runs on the host in NumPy (microseconds per step on a few hundred parameters); the
data are read through the block kernels of :mod:`kullback.glm._blocks`, so a fit compiles
nothing that depends on the number of rows. One read of X per accepted full step gives X̃d,
the gradient and objective at θ + d and (exact Newton) the Hessian there; the line search
moves the logits as η + t·X̃d without reading X.

Tall data (``sub``, a :class:`~kullback.glm._blocks.Blocks` of every k-th row, chosen in
:mod:`kullback.glm._fit`): the steps use the Hessian of the subsample, while the objective,
gradient and line search stay exact, so the minimiser and the stopping rule are the same; a
step then costs a pass over X instead of a Gram matrix. The solver switches to the exact
Hessian for good as soon as a step reduces the optimality violation by less than a factor 4;
while subsampled steps gain 20× or more, the subsampled Hessian is kept rather than re-formed.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.linalg import cho_solve

from ._blocks import Blocks

__all__ = [
    "SolverResult", "newton", "violation", "penalty", "gradient", "CONVERGED", "MAX_ITER", "LINE_SEARCH_FAILED",
]

RUNNING, CONVERGED, MAX_ITER, LINE_SEARCH_FAILED = -1, 0, 1, 2

_ARMIJO = 1e-4
_MAX_HALVINGS = 40  # step lengths down to 2⁻⁴⁰ ≈ 1e-12
_CD_SWEEPS = 500
_EPS = np.finfo(np.float64).eps


def _noise(f: float) -> float:
    """The rounding level of the objective F near the value f: decreases below it are not seen."""
    return 100 * _EPS * (1 + abs(f))


class SolverResult(NamedTuple):
    """What a solver returns: the parameters and how it ended (host values).

    Attributes:
        params: θ at the last accepted step, flat, length M·q.
        objective: F(θ), the weighted mean loss plus the penalty.
        violation: the optimality violation max_j v_j / s_j at θ (max |g_j| / s_j unpenalised).
        num_steps: steps taken.
        status: ``CONVERGED`` (0), ``MAX_ITER`` (1) or ``LINE_SEARCH_FAILED`` (2).
        eta: the free logits at θ, per block (device arrays).
        hessian: the exact Hessian of the unpenalised mean loss at θ, ``(M·q, M·q)``, when the
            last read of X formed it; else ``None``.
    """

    params: np.ndarray
    objective: float
    violation: float
    num_steps: int
    status: int
    eta: list
    hessian: np.ndarray | None = None


def violation(g: np.ndarray, theta: np.ndarray, lam: np.ndarray, scale: np.ndarray | float = 1.0) -> float:
    """max_j v_j / s_j, v_j the distance of 0 from the subdifferential of F along θ_j and s_j
    the scale of parameter j (the root mean square of its column: a unit-free test)."""
    at_zero = np.maximum(np.abs(g) - lam, 0.0)
    off_zero = np.abs(g + lam * np.sign(theta))
    return float(np.max(np.where(theta == 0, at_zero, off_zero) / scale))


def _intercepts(width: int, num_free: int) -> np.ndarray:
    e = np.zeros(width)
    e[:: width // num_free] = 1.0
    return e


def penalty(r: np.ndarray, mu: float, theta: np.ndarray, num_free: int, intercept: bool) -> float:
    """½ Σ_j r_j θ_j² + ½ μ (Σ_k b_k)²: the part of f(θ) that does not depend on the data."""
    centre = 0.5 * mu * float(np.sum(theta[:: theta.shape[0] // num_free])) ** 2 if intercept else 0.0
    return 0.5 * float(np.sum(r * theta * theta)) + centre


def gradient(RtX, R_sum, r, mu, theta, intercept: bool) -> np.ndarray:
    """∇f(θ), flat, from the data part RᵀX (M, p) and Σ_i R_i (M,), plus ridge and centring."""
    g = np.concatenate([R_sum[:, None], RtX], axis=1) if intercept else np.array(RtX)
    g = g.reshape(-1) + r * theta
    if intercept:
        M = RtX.shape[0]
        g[:: g.shape[0] // M] += mu * np.sum(theta[:: theta.shape[0] // M])
    return g


def _cholesky_direction(H: np.ndarray, g: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    """d = −H⁻¹g, solved as S⁻¹(J + δI)⁻¹(−S⁻¹g) with J = S⁻¹HS⁻¹, S = diag(s): unit-free.

    s are the parameters' column scales (see :func:`violation`), so J, and the step, do not
    change when a column of X is multiplied by a constant. δ = 0 first, and only if that fails
    δ = 1e-10 (1 + max_j J_jj) (J singular: separation, collinear columns)."""
    scale = np.broadcast_to(np.asarray(scale, dtype=float), g.shape)
    J = H / np.outer(scale, scale)
    rhs = -g / scale
    shift = 1e-10 * (1.0 + np.max(np.abs(np.diag(J))))
    d = None
    for extra in (0.0, shift):
        try:
            L = np.linalg.cholesky(J + extra * np.eye(H.shape[0]))
        except np.linalg.LinAlgError:
            continue
        if np.all(np.isfinite(L)):
            d = cho_solve((L, True), rhs) / scale
            break
    usable = d is not None and np.all(np.isfinite(d)) and float(np.dot(g, d)) < 0
    return d if usable else -g  # steepest descent as the last resort


def _soft(u, lam):
    return jnp.sign(u) * jnp.maximum(jnp.abs(u) - lam, 0.0)


@jax.jit
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


def _prox(H, g, theta, lam) -> np.ndarray:
    with jax.enable_x64(True):
        return np.asarray(_prox_direction(H, g, theta, lam))


class _Objective:
    """F(θ) = Σ w ℓ + ridge + L1 for the Newton loop below, its one-pass reads of X and its
    Armijo line search (halvings read no X: the logits move along X̃d)."""

    def __init__(self, data: Blocks, r, lam, mu, M: int, intercept: bool, sub: Blocks | None) -> None:
        self.data, self.r, self.lam, self.mu, self.M, self.intercept, self.sub = data, r, lam, mu, M, intercept, sub

    def value(self, loss: float, theta: np.ndarray) -> float:
        return loss + penalty(self.r, self.mu, theta, self.M, self.intercept) + float(np.sum(self.lam * np.abs(theta)))

    def read(self, eta, d, hessian: bool):
        """One pass: the logits at η + X̃d, X̃d, the loss and gradient parts there (and H)."""
        new_eta, eta_d, RtX, R_sum, loss, H = self.data.step(eta, d, hessian=hessian)
        return new_eta, eta_d, loss, (RtX, R_sum), H

    def sub_hessian(self, theta):
        return self.sub.step(self.sub.zero_eta, theta, hessian=True)[5]

    def search(self, eta, theta, f: float, d, slope: float, exact: bool, v_old: float, scale):
        """(accepted, t, F at θ + t d, the logits there, the full step's gradient parts and H).

        Where the predicted decrease t·|Δ| is below the rounding of F (``_noise``), F cannot
        tell the points apart, and Armijo's test would accept any step that leaves F's last bit
        unchanged: there the full step is taken if it lowers the optimality violation (the
        gradient, accurate to far below that level, decides), and no shorter step is tried."""
        eta_1, eta_d, loss_1, parts_1, H_1 = self.read(eta, d, exact)
        t, f_t, m = 1.0, self.value(loss_1, theta + d), 0
        noise = _noise(f)
        if -slope <= noise:
            g_1 = gradient(*parts_1, self.r, self.mu, theta + d, self.intercept)
            gains = violation(g_1, theta + d, self.lam, scale) < v_old
            return bool(gains and np.isfinite(f_t) and slope < 0), t, f_t, eta_1, parts_1, H_1
        eta_t = eta_1
        while not (f_t <= f + _ARMIJO * t * slope) and m < _MAX_HALVINGS and -0.5 * t * slope > noise:
            t, m = 0.5 * t, m + 1
            loss_t, eta_t, _ = self.data.trial(eta, eta_d, t)
            f_t = self.value(loss_t, theta + t * d)
        accepted = bool((f_t <= f + _ARMIJO * t * slope) and np.isfinite(f_t) and slope < 0)
        return accepted, t, f_t, eta_t, parts_1, H_1


def newton(
    data: Blocks, r: np.ndarray, lam: np.ndarray, mu: float, theta0: np.ndarray, tol: float, max_iter: int, *,
    intercept: bool, sub: Blocks | None = None, scale: np.ndarray | float = 1.0, final_hessian: bool = False,
) -> SolverResult:
    """Minimise the weighted softmax cross-entropy plus ridge (and L1) by damped Newton steps.

    Args:
        data: the rows (weights summing to 1), as blocks.
        r: ridge weight per parameter, shape ``(M·q,)`` (0: unpenalised).
        lam: L1 weight per parameter, shape ``(M·q,)`` (all 0: smooth Newton).
        mu: weight of the intercept-centring term (see :mod:`kullback.glm._objective`).
        theta0: starting point, shape ``(M·q,)``.
        tol: stop when the optimality violation (scaled by ``scale``) is at most ``tol``.
        max_iter: the most Newton steps.
        intercept: whether θ holds intercepts.
        sub: every k-th row (weights summing to 1, or all 0: exact steps), for the steps'
            Hessians on tall data; ``None``: exact Newton.
        scale: s_j > 0 per parameter, shape ``(M·q,)``: the violation's units (see above).
        final_hessian: the caller wants the exact Hessian at the result (standard errors). With
            subsampled steps, the read of a step that the last step's gain predicts to converge
            forms it too (``SolverResult.hessian``), instead of a read of its own afterwards;
            a step that then does not converge uses it (an exact step).

    Returns:
        A :class:`SolverResult`.
    """
    M, use_l1, exact = data.num_free, bool(np.any(lam > 0)), sub is None or not sub.has_weight
    e = _intercepts(theta0.shape[0], M) if intercept else np.zeros(theta0.shape[0])
    penalty_H = np.diag(r) + mu * np.outer(e, e)
    obj = _Objective(data, r, lam, mu, M, intercept, sub)
    read = obj.read
    theta = np.asarray(theta0, dtype=float).copy()
    eta, _, loss, parts, H_here = read(data.zero_eta, theta, exact)
    f, g = obj.value(loss, theta), gradient(*parts, r, mu, theta, intercept)
    status = CONVERGED if violation(g, theta, lam, scale) <= tol else RUNNING
    H, keep_H, k, gain = None, False, 0, None
    while status == RUNNING:
        if H_here is not None and not exact:  # formed by the last read (see final_hessian): exact here
            H = H_here
        elif not keep_H:
            if exact:
                if H_here is None:  # just switched to exact steps: the Hessian at θ
                    _, _, _, _, H_here = read(eta, np.zeros_like(theta), True)
                H = H_here
            else:
                H = obj.sub_hessian(theta)
        H_f = H + penalty_H
        d = _prox(H_f, g, theta, lam) if use_l1 else _cholesky_direction(H_f, g, scale)
        slope = float(np.dot(g, d) + np.sum(lam * (np.abs(theta + d) - np.abs(theta))))
        v_old = violation(g, theta, lam, scale)
        # the last step's gain (v_new / v_old, the subsampled steps' rate) predicts this one's
        ends = final_hessian and gain is not None and v_old * gain <= tol
        accepted, t, f_t, eta_t, parts_1, H_1 = obj.search(eta, theta, f, d, slope, exact or ends, v_old, scale)
        if accepted:
            new_theta = theta + t * d
            if t < 1.0:  # a shorter step than t = 1 needs a read of its own
                eta_t, _, _, parts_t, H_t = read(eta_t, np.zeros_like(theta), exact)
                new_g, H_new = gradient(*parts_t, r, mu, new_theta, intercept), H_t
            else:
                new_g, H_new = gradient(*parts_1, r, mu, new_theta, intercept), H_1
            v_new = violation(new_g, new_theta, lam, scale)
        else:
            new_theta, new_g, v_new, H_new = theta, g, v_old, H_here
        gain = v_new / v_old if accepted and t == 1.0 and v_old > 0 else None
        # A step that gains little with the subsampled Hessian: exact Hessians from here on.
        new_exact = exact or not accepted or v_new > 0.25 * v_old
        converged = v_new <= tol
        # Subsampled Hessians gain a fixed factor per step (their sampling error, not the move
        # of θ, limits them): while a step gains 20× or more, keep the one we have.
        keep_H = sub is not None and not new_exact and accepted and t == 1.0 and v_new <= 0.05 * v_old
        at_noise_floor = -slope <= _noise(f)
        retry = not accepted and not exact  # the subsampled direction failed: retry with the exact one
        if converged:
            status = CONVERGED
        elif not accepted and not retry:
            status = CONVERGED if at_noise_floor else LINE_SEARCH_FAILED
        else:
            status = MAX_ITER if k + 1 >= max_iter else RUNNING
        if accepted:
            theta, eta, f, g, k = new_theta, eta_t, f_t, new_g, k + 1
        H_here = H_new if (exact or (ends and accepted)) else None
        exact = new_exact
    return SolverResult(params=theta, objective=f, violation=violation(g, theta, lam, scale), num_steps=k,
                        status=status, eta=eta, hessian=H_here)
