"""L-BFGS for wide data: the smooth softmax objective without ever forming the Hessian.

Each iteration costs two passes over X (logits and gradient) instead of Newton's n·(Mq)²
Hessian, so it wins when M·q is large. optax's L-BFGS with its zoom line search (strong Wolfe
conditions) runs inside one jitted ``while_loop``; it stops when max_j |g_j| ≤ tol, when an
iteration no longer moves θ (the line search found nothing: converged if the objective's
remaining decrease is at rounding level, else a line-search failure), or at ``max_iter``.
Only for the smooth objective (no L1: see :mod:`kullback.glm._newton`).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import optax

from . import _objective as obj
from ._newton import CONVERGED, LINE_SEARCH_FAILED, MAX_ITER, RUNNING, SolverResult

__all__ = ["lbfgs"]

_MEMORY = 20


@partial(jax.jit, static_argnames=("num_free", "reference", "intercept"))
def lbfgs(
    X: jax.Array,
    Y: jax.Array,
    w: jax.Array,
    offset: jax.Array,
    r: jax.Array,
    mu: jax.Array,
    theta0: jax.Array,
    tol: jax.Array,
    max_iter: jax.Array,
    *,
    num_free: int,
    reference: bool,
    intercept: bool,
) -> SolverResult:
    """Minimise the weighted softmax cross-entropy plus ridge by L-BFGS (same arguments as
    :func:`kullback.glm._newton.newton`, without the L1 weights)."""
    eps = jnp.finfo(obj.dtype_of(X)).eps

    def fun(theta):
        L = obj.logits(obj.linear(X, theta, num_free, intercept), offset, reference)
        return obj.objective(L, Y, w, r, mu, theta, num_free, intercept)

    def fun_and_grad(theta):
        L = obj.logits(obj.linear(X, theta, num_free, intercept), offset, reference)
        f = obj.objective(L, Y, w, r, mu, theta, num_free, intercept)
        return f, obj.gradient(X, L, Y, w, r, mu, theta, reference, intercept)

    solver = optax.lbfgs(
        memory_size=_MEMORY, linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=40)
    )

    def step(carry):
        theta, state, f, g, k, _ = carry
        updates, state = solver.update(g, state, theta, value=f, grad=g, value_fn=fun)
        new_theta = optax.apply_updates(theta, updates)
        new_f, new_g = fun_and_grad(new_theta)
        moved = jnp.any(new_theta != theta)
        stalled = ~moved | ~(new_f <= f)
        at_noise_floor = jnp.abs(f - new_f) <= 100 * eps * (1 + jnp.abs(f))
        status = jnp.where(
            jnp.max(jnp.abs(new_g)) <= tol,
            CONVERGED,
            jnp.where(
                stalled,
                jnp.where(at_noise_floor, CONVERGED, LINE_SEARCH_FAILED),
                jnp.where(k + 1 >= max_iter, MAX_ITER, RUNNING),
            ),
        ).astype(jnp.int32)
        keep = new_f <= f
        theta = jnp.where(keep, new_theta, theta)
        f, g = jnp.where(keep, new_f, f), jnp.where(keep, new_g, g)
        return theta, state, f, g, k + 1, status

    f0, g0 = fun_and_grad(theta0)
    status0 = jnp.where(jnp.max(jnp.abs(g0)) <= tol, CONVERGED, RUNNING).astype(jnp.int32)
    init = (theta0, solver.init(theta0), f0, g0, jnp.asarray(0, jnp.int32), status0)
    theta, _, f, g, k, status = jax.lax.while_loop(lambda c: c[-1] == RUNNING, step, init)
    L = obj.logits(obj.linear(X, theta, num_free, intercept), offset, reference)
    return SolverResult(
        params=theta, objective=f, violation=jnp.max(jnp.abs(g)), num_steps=k, status=status,
        row_loss=obj.row_loss(L, Y),
    )
