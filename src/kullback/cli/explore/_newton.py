"""A small bounded Newton solver that runs inside a compiled program (one start at a time).

Each iteration: the gradient g and Hessian H of f at θ; variables at a bound whose gradient
points outward are held (their rows of H replaced by the identity, their g by 0); the direction
d = −V |Λ|₊⁻¹ Vᵀ g from H's symmetric eigendecomposition (Newton where H curves up, a
unit-curvature gradient step elsewhere); then backtracking from t = 1 until the projected point
θ' = clip(θ + t d, lo, hi) satisfies Armijo's condition f(θ') ≤ f(θ) + 10⁻⁴ gᵀ(θ' − θ). It stops
when the projected gradient's norm is below ``gtol``·max(1, |f|) where H has no negative
curvature, after ``max_iter`` iterations, or when three iterations in a row fail to lower f
(rounding: the quadrature's own noise). Where H has negative curvature and a unit step down it
promises a larger decrease than the Newton step (by the quadratic model), it takes that step
instead: at a saddle, and on the way to one from a symmetric start (whose gradient has no
component along the curvature that breaks the symmetry).

kullback's own Newton (``kullback.fit._newton``) drives its loop from the host over data blocks;
here the whole multi-start must be one program, so the loop is a ``while_loop``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["minimize"]


def _free(theta, g, lo, hi):
    return ~(((theta <= lo) & (g > 0)) | ((theta >= hi) & (g < 0)))


def minimize(f, theta0, lo, hi, *, gtol: float = 1e-9, max_iter: int = 60):
    """Minimise f from θ0 within [lo, hi]: returns (θ, f(θ), projected gradient norm, iterations, converged)."""
    value_grad = jax.value_and_grad(f)
    hess = jax.hessian(f)
    theta0 = jnp.clip(theta0, lo, hi)

    def pgnorm(theta, g):
        return jnp.sqrt(jnp.sum(jnp.where(_free(theta, g, lo, hi), g, 0.0) ** 2))

    def small(theta, v, g):
        return pgnorm(theta, g) <= gtol * jnp.maximum(1.0, jnp.abs(v))

    def cond(c):
        theta, v, g, it, still, curved = c
        return (it < max_iter) & ~(small(theta, v, g) & curved) & jnp.isfinite(v) & (still < 3)

    def body(c):
        theta, v, g, it, still, _ = c
        free = _free(theta, g, lo, hi)
        both = free[:, None] & free[None, :]
        h = hess(theta)
        h = jnp.where(both, 0.5 * (h + h.T), jnp.eye(theta.size))
        gf = jnp.where(free, g, 0.0)
        evals, vecs = jnp.linalg.eigh(h)
        floor = 1e-8 * jnp.maximum(1.0, jnp.max(jnp.abs(evals)))
        coef = -(vecs.T @ gf) / jnp.where(evals > floor, evals, 1.0)
        # down the most negative curvature, a unit step on the side the gradient prefers, where
        # that promises more than the Newton step (by the quadratic model gᵀd + ½dᵀHd): at a
        # saddle, and on the way to one, where a symmetric start's gradient has no component
        # along the curvature that would break the symmetry (a mixture's components merging)
        curved = evals[0] >= -floor
        down = vecs[:, 0] * jnp.where(jnp.dot(gf, vecs[:, 0]) > 0, -1.0, 1.0)
        newton = vecs @ coef
        gain_newton = -(jnp.dot(gf, newton) + 0.5 * newton @ h @ newton)
        gain_down = -(jnp.dot(gf, down) + 0.5 * evals[0])
        saddle = ~curved & (small(theta, v, g) | (gain_down > gain_newton))
        step = jnp.where(free, jnp.where(saddle, down, newton), 0.0)

        # near the optimum f's rounding hides the decrease of a Newton step (gᵀH⁻¹g below 1e-13·|f|):
        # take the full step there without the test
        flat = ~saddle & (-jnp.dot(gf, step) <= 1e-13 * jnp.maximum(1.0, jnp.abs(v)))

        def decreased(new_v, trial, k):
            armijo = new_v <= v + 1e-4 * jnp.dot(g, trial - theta)
            return jnp.where(saddle, new_v < v, armijo | (flat & (k == 1) & jnp.isfinite(new_v)))

        def worse(s):
            _, new_v, _, trial, k = s
            return (k == 0) | (~decreased(new_v, trial, k) & (k < 40))

        def halve(s):
            t, _, _, _, k = s
            t = jnp.where(k == 0, t, 0.5 * t)
            trial = jnp.clip(theta + t * step, lo, hi)
            new_v, new_g = value_grad(trial)
            return t, new_v, new_g, trial, k + 1

        init = (jnp.asarray(1.0, theta.dtype), jnp.asarray(jnp.inf, theta.dtype), g, theta, 0)
        _, new_v, new_g, trial, k = jax.lax.while_loop(worse, halve, init)
        ok = decreased(new_v, trial, k)
        return (jnp.where(ok, trial, theta), jnp.where(ok, new_v, v), jnp.where(ok, new_g, g), it + 1,
                jnp.where(ok & ~flat, 0, still + 1), curved)

    v0, g0 = value_grad(theta0)
    theta, v, g, it, _, curved = jax.lax.while_loop(cond, body, (theta0, v0, g0, 0, 0, jnp.asarray(False)))
    return theta, v, pgnorm(theta, g), it, small(theta, v, g) & curved & jnp.isfinite(v)
