"""Reverse fits of a normal q to a 1-D target by quadrature: the exact optimum, deterministically.

For q = N(μ, σ²) and a scalar log density log p̃, Gauss–Hermite quadrature (probabilists' nodes
z_i and weights w_i, Σ w_i = 1) turns the expectation in the ELBO into a fixed weighted sum

    ELBO(θ) = E_q[log p̃(x)] + H(q) ≈ Σ_i w_i log p̃(μ + σ z_i) + ½ log(2π e σ²),

exact for polynomial log p̃ up to degree 2n − 1 and converging fast (geometrically in √n) for
log densities analytic near the real line. There is no Monte Carlo error: the optimum of this
smooth function of (μ, log σ) is found by Newton's method (a 2 × 2 Hessian, backtracking line
search, a gradient step where the Hessian is not positive definite) until the gradient norm is
1e-3 · gtol (converged: gtol), or the value stops falling (rounding).

The reported ELBO is the quadrature value; its "stderr" is the change from the rule with half
the nodes (an error indication, 0 when the two agree to rounding). k̂, the ESS and log Z still
come from PSIS on fresh draws of q (they describe p̃/q in the tails, which a quadrature cannot).

Used by ``method="quadrature"``, and by ``method="auto"`` for a normal q on a scalar target.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._objectives import log_density_values

__all__ = ["supports_quadrature", "quadrature_program", "NUM_NODES"]

NUM_NODES = 200  # Gauss–Hermite nodes: ~1e-10 relative accuracy where log p̃ has poles ≈ 0.5 σ off the axis
_MAX_ITER = 100


def _normal_of(q: Any) -> Any | None:
    """The numpyro Normal behind q (a Normal, or a 1-D ``Independent`` of one), else None."""
    import numpyro.distributions as dist

    if type(q) is dist.Normal:
        return q
    if type(q) is dist.Independent and type(q.base_dist) is dist.Normal and tuple(q.event_shape) in ((1,),):
        return q.base_dist
    return None


def supports_quadrature(family: Any, event_shape: tuple) -> bool:
    """Whether ``family`` gives a normal q on a scalar (or one-element) target, read by tracing."""
    if tuple(event_shape) not in ((), (1,)):
        return False
    from numpyro.distributions.distribution import validation_enabled

    found: list = []

    def probe(center):
        q = family.distribution(family.init_at(center, 1.0))
        found.append(_normal_of(q) is not None and tuple(q.event_shape) == tuple(event_shape))
        return jnp.zeros(())

    try:
        with validation_enabled(False):
            jax.eval_shape(probe, jax.ShapeDtypeStruct(tuple(event_shape), jnp.result_type(float)))
    except Exception:  # noqa: BLE001 - a family that cannot even be probed is not a normal one
        return False
    return bool(found and found[0])


@functools.lru_cache(maxsize=8)
def _rule(num: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss–Hermite nodes and weights normalised to sum 1 (E over N(0, 1))."""
    z, w = np.polynomial.hermite_e.hermegauss(num)
    return z.astype(dtype), (w / w.sum()).astype(dtype)


def _neg_elbo(family, log_density, target, unravel, theta, z, w):
    q = _normal_of(family.distribution(unravel(theta)))
    x = q.loc + q.scale * z
    values = log_density_values(log_density, target, x.reshape((-1,) + tuple(family.event_shape)))
    return -(jnp.dot(w, values) + 0.5 * jnp.log(2 * jnp.pi * jnp.e) + jnp.sum(jnp.log(q.scale)))


@functools.partial(jax.jit, static_argnames=("family", "traced", "steps", "num_elbo"))
def quadrature_program(consts, target, normals, init_scale, gtol, rule, half, *, family, traced, steps, num_elbo):
    """Start, Newton on the Gauss–Hermite negative ELBO, and log p̃, log q at ``num_elbo`` fresh
    draws of the fit, as one compiled program (``traced``/``consts``: see ``auto_program``).

    ``rule`` and ``half``: (nodes, weights) of the rule and of its half-size companion (traced, so
    the node count does not enter the program's key beyond its shape).
    """
    from ._reverse_start import start_point

    log_density = None if traced is None else traced.bind(consts)
    draws = normals  # 1 + num_elbo standard normals from the host: the start and the diagnostic draws
    event = tuple(family.event_shape)
    x0, log_p0, params = start_point(family, log_density, steps, None, target, init_scale,
                                     x0=init_scale * draws[0])
    theta0, unravel = ravel_pytree(params)
    f = functools.partial(_neg_elbo, family, log_density, target, unravel)
    value_grad = jax.value_and_grad(lambda t: f(t, *rule))
    hess = jax.hessian(lambda t: f(t, *rule))

    def small(v, g, tol):
        return jnp.sqrt(jnp.sum(g**2)) <= tol * jnp.maximum(1.0, jnp.abs(v))

    def cond(c):
        theta, v, g, it, still, _ = c
        return (it < _MAX_ITER) & ~small(v, g, 1e-3 * gtol) & jnp.isfinite(v) & (still < 3)

    def body(c):
        theta, v, g, it, still, history = c
        h = hess(theta)
        evals, vecs = jnp.linalg.eigh(0.5 * (h + h.T))
        floor = 1e-8 * jnp.maximum(1.0, jnp.max(jnp.abs(evals)))
        newton = evals > floor  # Newton where curved up, a unit-curvature gradient step elsewhere
        coef = -(vecs.T @ g) / jnp.where(newton, evals, 1.0)
        step = vecs @ coef
        slope = jnp.dot(g, step)

        def worse(s):  # the first pass (k = 0) always evaluates: one copy of the objective here
            t, new_v, _, k = s
            return (k == 0) | (~(new_v <= v + 1e-4 * t * slope) & (k < 51))

        def halve(s):
            t, _, _, k = s
            t = jnp.where(k == 0, t, 0.5 * t)
            new_v, new_g = value_grad(theta + t * step)
            return t, new_v, new_g, k + 1

        t, new_v, new_g, _ = jax.lax.while_loop(worse, halve, (jnp.asarray(1.0, theta.dtype), jnp.asarray(jnp.inf, theta.dtype), g, 0))
        ok = new_v <= v
        theta = jnp.where(ok, theta + t * step, theta)
        new_v, new_g = jnp.where(ok, new_v, v), jnp.where(ok, new_g, g)
        return (theta, new_v, new_g, it + 1, jnp.where(new_v >= v, still + 1, 0),
                history.at[it + 1].set(new_v))

    v0, g0 = value_grad(theta0)
    history = jnp.full(_MAX_ITER + 1, jnp.nan, dtype=v0.dtype).at[0].set(v0)
    theta, value, grad, it, _, history = jax.lax.while_loop(cond, body, (theta0, v0, g0, 0, 0, history))
    params = unravel(theta)
    q = family.distribution(params)
    x = (_normal_of(q).loc + _normal_of(q).scale * draws[1:]).reshape((num_elbo,) + event)
    log_ratio = (log_density_values(log_density, target, x), q.log_prob(x))
    return dict(x0=x0, log_p0=log_p0, params=params, q=q, values=family.constrained(params), value=value,
                value_half=f(theta, *half), history=history, grad_norm=jnp.sqrt(jnp.sum(grad**2)), iterations=it,
                converged=small(value, grad, gtol) & jnp.isfinite(value), log_ratio=log_ratio)


def rules(num: int = NUM_NODES) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The Gauss–Hermite rule with ``num`` nodes and its companion with ``num // 2``."""
    dtype = str(jnp.result_type(float))
    return _rule(num, dtype), _rule(num // 2, dtype)
