"""A damped Newton solver for small parameter vectors: exact Hessians by jax, one jitted loop.

Each iteration: g, H of f at θ (flattened); the direction d = −V |Λ|₊⁻¹ Vᵀ g from the symmetric
eigendecomposition H = V Λ Vᵀ with |λ| floored at 1e-8·max|λ| (a descent direction also where H is
indefinite, far from the optimum); then backtracking until the Armijo condition
f(θ + t d) ≤ f(θ) + 10⁻⁴ t gᵀd holds (a NaN or inf value fails it, so a step never leaves the
region where the likelihood is finite). Quadratic convergence near a regular optimum.

Every evaluation is one pass that returns f, ∇f and ∇²f together, so an accepted trial point's
derivatives are already at hand for the next iteration: near the optimum, where the full step is
taken, an iteration costs exactly one pass over the data.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._forward_fast import pass_derivatives
from ._loop import Objective, Solution, _capacity

__all__ = ["newton_solve", "NEWTON_MAX_PARAMS"]

NEWTON_MAX_PARAMS = 64  # above this many unconstrained parameters, L-BFGS is cheaper
_MAX_HALVINGS = 50
_FLAT = 1e-13  # gᵀH⁻¹g below this (relative to max(1, |f|)): at the optimum to rounding


def _decrement(grad, hess):
    """The Newton decrement gᵀH⁻¹g (≈ 2 × the decrease still to gain); inf unless H ≻ 0."""
    lam, vec = jnp.linalg.eigh(hess)
    return jnp.where(jnp.all(lam > 0), jnp.sum((vec.T @ grad) ** 2 / jnp.where(lam > 0, lam, 1.0)), jnp.inf)


def _direction(grad, hess):
    lam, vec = jnp.linalg.eigh(hess)
    mag = jnp.abs(lam)
    mag = jnp.maximum(mag, 1e-8 * jnp.max(mag) + 1e-300)
    return -vec @ ((vec.T @ grad) / mag)


@functools.partial(jax.jit, static_argnames=("objective", "statics", "capacity", "row_log_density"))
def _newton(objective, statics, params, args, sub, gtol, max_iter, dtol, *, capacity, row_log_density=None):
    flat, unravel = ravel_pytree(params)
    if row_log_density is None:
        fun = lambda x: objective(statics, unravel(x), *args)  # noqa: E731
        derivatives = lambda x, src: (*jax.value_and_grad(fun)(x), jax.hessian(fun)(x))  # noqa: E731
    else:
        sources = (args,) if sub is None else (sub, args)
        derivatives = lambda x, src: pass_derivatives(row_log_density, unravel, x, sources, src)  # noqa: E731
    dtype = jnp.result_type(flat.dtype, float)
    full = 0 if sub is None else 1  # the source index of all rows

    def scale(value):
        return jnp.maximum(1.0, jnp.abs(value))

    def at_optimum(value, grad, hess):
        return (jnp.linalg.norm(grad) <= gtol * scale(value)) | (_decrement(grad, hess) <= _FLAT * scale(value))

    def settle(c, ok):
        """After an evaluation: the stopping tests, the next direction, and the switch between stages."""
        value, grad, hess = c["value"], c["grad"], c["hess"]
        small = jnp.linalg.norm(grad) <= gtol * scale(value)
        close = _decrement(grad, hess) <= c["tol"] * scale(value)
        done = c["stuck"] | (ok & ((c["it"] >= max_iter) | small | close | ~jnp.isfinite(value)))
        c = dict(c, done=done, restart=jnp.asarray(False), d=jnp.where(ok, _direction(grad, hess), c["d"]),
                 t=jnp.where(ok, jnp.ones((), dtype), c["t"] / 2), halvings=jnp.where(ok, 0, c["halvings"] + 1))
        if sub is None:
            return c
        # the subsample stage ends: polish from its optimum (decrement tolerance dtol), or, if it
        # failed or the polish starts at a non-finite value, all rows from the start (tolerance 0)
        good = at_optimum(value, grad, hess) & jnp.isfinite(value)
        polish = done & (c["src"] == 0) & good
        anew = (done & (c["src"] == 0) & ~good) | (c["fresh"] & ~jnp.isfinite(value) & ~c["anew"])
        switch = polish | anew
        return dict(
            c, x=jnp.where(anew, flat, c["x"]), d=jnp.where(switch, 0.0, c["d"]), t=jnp.where(switch, 0.0, c["t"]),
            src=jnp.where(switch, full, c["src"]), tol=jnp.where(anew, 0.0, jnp.where(polish, dtol, c["tol"])),
            restart=switch, anew=c["anew"] | anew, stuck=c["stuck"] & ~switch,
            sub_it=jnp.where(polish & (c["src"] == 0), c["it"], c["sub_it"]), it=jnp.where(switch, 0, c["it"]),
            done=done & ~switch,
        )

    # One call site of the pass: each loop turn evaluates the trial point x + t·d and accepts it
    # (a new iteration) or halves t. A restart turn (t = 0 on the other rows) is always accepted.
    def body(c):
        trial = derivatives(c["x"] + c["t"] * c["d"], c["src"])
        ok = c["restart"] | (trial[0] <= c["value"] + 1e-4 * c["t"] * (c["grad"] @ c["d"]))
        x = jnp.where(ok, c["x"] + c["t"] * c["d"], c["x"])
        value, grad, hess = jax.tree.map(lambda new, old: jnp.where(ok, new, old), trial, (c["value"], c["grad"], c["hess"]))
        it = jnp.where(ok & ~c["restart"], c["it"] + 1, c["it"])
        history = jnp.where(c["restart"], jnp.full_like(c["history"], jnp.nan), c["history"])
        history = jnp.where(ok, history.at[it].set(value), history)
        # a failed trial at a point already flat to rounding, or too many halvings: stuck
        stuck = ~ok & ((_decrement(grad, hess) <= _FLAT * scale(value)) | (c["halvings"] >= _MAX_HALVINGS))
        c = dict(c, x=x, value=value, grad=grad, hess=hess, it=it, history=history, stuck=stuck, fresh=c["restart"])
        return settle(c, ok)

    value, grad, hess = derivatives(flat, 0)
    carry = dict(x=flat, value=value, grad=grad, hess=hess, d=jnp.zeros_like(flat), t=jnp.ones((), dtype),
                 halvings=0, it=0, history=jnp.full(capacity, jnp.nan, dtype=dtype).at[0].set(value),
                 done=jnp.asarray(False), stuck=jnp.asarray(False), src=0, restart=jnp.asarray(False),
                 fresh=jnp.asarray(False), anew=jnp.asarray(False), sub_it=-1,
                 tol=jnp.asarray(0.0, dtype))
    carry = jax.lax.while_loop(lambda c: ~c["done"], body, settle(carry, jnp.asarray(True)))
    value, grad, hess = carry["value"], carry["grad"], carry["hess"]
    return (unravel(carry["x"]), value, carry["history"], carry["it"], jnp.linalg.norm(grad),
            at_optimum(value, grad, hess), carry["stuck"], hess, carry["sub_it"], carry["anew"])


def newton_solve(
    objective: Objective,
    statics: Any,
    params: Any,
    args: tuple,
    *,
    max_iter: int = 100,
    gtol: float | None = None,
    row_log_density: Any = None,
    dtol: float = 0.0,
    sub: tuple | None = None,
) -> tuple[Solution, int]:
    """Minimise ``objective(statics, params, *args)`` by damped Newton with backtracking.

    Converged when ‖∇f‖₂ ≤ gtol · max(1, |f|) (default 1e-11 in float64, 1e-4 in float32), or,
    once a step no longer lowers f (rounding noise in a sum over many rows can keep the gradient
    above gtol), when the Hessian is positive definite and the Newton decrement gᵀH⁻¹g, the
    decrease still to gain, is ≤ 1e-13 · max(1, |f|).

    ``sub`` = (rows, weights), a subsample of ``args``: Newton on it first (to the optimum), then
    on all rows from there, stopping also as soon as gᵀH⁻¹g ≤ ``dtol`` · max(1, |f|) (a polish
    from a close start: no pass over the data is spent on a gain below that). Returns the
    solution and the subsample stage's iterations (−1 when there was none, or when it failed
    and the fit on all rows began again from ``params``).

    ``row_log_density`` (hashable, a :class:`~kullback.fit._forward_fast.FastRowLogDensity`),
    when given for an objective of the form −Σ_i w_i ℓ(θ, x_i) with ``args = (data, weights)``,
    computes f, ∇f and ∇²f in one pass over the rows in blocks.
    """
    if gtol is None:
        gtol = 1e-11 if jax.config.read("jax_enable_x64") else 1e-4
    if int(max_iter) < 0:
        raise ValueError(f"Expected max_iter to be a non-negative integer; got {max_iter}.")
    if sub is not None and row_log_density is None:
        raise ValueError("A subsample stage needs row_log_density.")
    out = _newton(objective, statics, params, args, sub, float(gtol), int(max_iter), float(dtol),
                  capacity=_capacity(max_iter), row_log_density=row_log_density)
    params, value, history, it, grad_norm, at_optimum, stuck, hess, sub_it, anew = out
    it = int(it)
    sub_it = -1 if sub is None or bool(anew) else int(sub_it)
    return Solution(
        params=params,
        value=float(value),
        history=np.asarray(history[: it + 1]),
        num_iterations=it,
        grad_norm=float(grad_norm),
        converged=bool(at_optimum) and bool(np.isfinite(float(value))),
        stalled=bool(stuck) and not bool(at_optimum),
        hessian=np.asarray(hess),
    ), sub_it
