"""L-BFGS for fixed-draw reverse objectives, counting objective evaluations (line search included).

Same stopping rule as the shared loop (``_loop.lbfgs_solve``): ‖∇f‖₂ ≤ gtol · max(1, |f|),
``max_iter``, a non-finite value, or a value unchanged for five iterations (stalled). It is
separate because the reverse benchmarks report gradient evaluations, which needs the line
search's step count from the optimiser state; it is vmapped over starts by the caller.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
import optax.tree_utils as otu

__all__ = ["lbfgs_counted"]

_STALL_LIMIT = 5


@functools.partial(jax.jit, static_argnames=("objective", "statics", "capacity", "memory_size"))
def lbfgs_counted(objective, statics, params, args, gtol, max_iter, *, capacity=512, memory_size=10):
    """Minimise ``objective(statics, params, *args)``; returns
    ``(params, value, history, iterations, grad_norm, converged, stalled, evaluations)``."""
    fun = lambda p: objective(statics, p, *args)  # noqa: E731
    opt = optax.lbfgs(memory_size=memory_size)
    value_and_grad = optax.value_and_grad_from_state(fun)
    value, grad = jax.value_and_grad(fun)(params)
    history = jnp.full(capacity, jnp.nan, dtype=value.dtype).at[0].set(value)

    def small(value, grad):
        return otu.tree_norm(grad) <= gtol * jnp.maximum(1.0, jnp.abs(value))

    def cond(c):
        _, _, it, value, grad, _, still, _ = c
        return (it < max_iter) & ~small(value, grad) & jnp.isfinite(value) & (still < _STALL_LIMIT)

    def body(c):
        params, state, it, value, _, history, still, evals = c
        v, g = value_and_grad(params, state=state)
        updates, state = opt.update(g, state, params, value=v, grad=g, value_fn=fun)
        params = optax.apply_updates(params, updates)
        new_value, new_grad = otu.tree_get(state, "value"), otu.tree_get(state, "grad")
        steps = otu.tree_get(state, "num_linesearch_steps")
        still = jnp.where(new_value == value, still + 1, 0)
        return (params, state, it + 1, new_value, new_grad, history.at[it + 1].set(new_value), still,
                evals + jnp.maximum(steps, 1))

    carry = (params, opt.init(params), 0, value, grad, history, 0, 1)
    params, _, it, value, grad, history, still, evals = jax.lax.while_loop(cond, body, carry)
    converged = small(value, grad) & jnp.isfinite(value)
    return params, value, history, it, otu.tree_norm(grad), converged, still >= _STALL_LIMIT, evals
