"""The one optimisation loop both directions share: L-BFGS (deterministic) or Adam (stochastic).

An objective is a pure function ``objective(statics, params, *args) -> scalar`` where
``statics`` is hashable (families, log densities: compile-time constants) and ``args`` are arrays
or pytrees (data, base draws, a target distribution). The jitted solvers take the objective and
``statics`` as static arguments, so a second fit with the same family, shapes and log density
reuses the compiled program.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu

from ._progress import active, in_loop

__all__ = ["Solution", "lbfgs_solve", "descend", "descend_steps", "default_gtol", "describe"]

Objective = Callable[..., jax.Array]
_STALL_LIMIT = 5  # iterations without any change of the value before giving up


class Solution(NamedTuple):
    """What a solver returns (host values, except ``params``)."""

    params: Any
    value: float
    history: np.ndarray
    num_iterations: int
    grad_norm: float
    converged: bool
    stalled: bool
    hessian: Any = None  # Newton: the Hessian of the objective at the solution (flat parameters)


def default_gtol() -> float:
    """Gradient-norm tolerance: 1e-6 in float64, 1e-3 in float32 (relative to max(1, |f|))."""
    return 1e-6 if jax.config.read("jax_enable_x64") else 1e-3


def _capacity(max_iter: int) -> int:
    """History buffer length: a power of two ≥ max_iter + 1 (at least 512), so that changing
    max_iter rarely recompiles."""
    return max(512, 1 << int(max_iter).bit_length())


@functools.partial(jax.jit, static_argnames=("objective", "statics", "capacity", "memory_size", "report"))
def lbfgs_core(objective, statics, params, args, gtol, max_iter, *, capacity=512, memory_size=10, report=False):
    """The jitted L-BFGS loop (vmappable over ``params``). Returns ``(params, value, history,
    iterations, grad_norm, converged, stalled, evaluations)``; ``evaluations`` counts objective
    and gradient evaluations, line-search steps included. ``report``: each iteration's value
    goes to the fit's progress (:mod:`._progress`)."""
    fun = lambda p: objective(statics, p, *args)  # noqa: E731
    opt = optax.lbfgs(memory_size=memory_size)
    value_and_grad = optax.value_and_grad_from_state(fun)
    value, grad = jax.value_and_grad(fun)(params)
    history = jnp.full(capacity, jnp.nan, dtype=value.dtype).at[0].set(value)

    def small(value, grad):
        return otu.tree_norm(grad) <= gtol * jnp.maximum(1.0, jnp.abs(value))

    def cond(carry):
        _, _, it, value, grad, _, still, _ = carry
        return (it < max_iter) & ~small(value, grad) & jnp.isfinite(value) & (still < _STALL_LIMIT)

    def body(carry):
        params, state, it, value, _, history, still, evals = carry
        v, g = value_and_grad(params, state=state)
        updates, state = opt.update(g, state, params, value=v, grad=g, value_fn=fun)
        params = optax.apply_updates(params, updates)
        new_value, new_grad = otu.tree_get(state, "value"), otu.tree_get(state, "grad")
        steps = otu.tree_get(state, "num_linesearch_steps")
        still = jnp.where(new_value == value, still + 1, 0)
        in_loop(report, it + 1, new_value)
        return (params, state, it + 1, new_value, new_grad, history.at[it + 1].set(new_value), still,
                evals + jnp.maximum(steps, 1))

    carry = (params, opt.init(params), 0, value, grad, history, 0, 1)
    params, _, it, value, grad, history, still, evals = jax.lax.while_loop(cond, body, carry)
    converged = small(value, grad) & jnp.isfinite(value)
    return params, value, history, it, otu.tree_norm(grad), converged, still >= _STALL_LIMIT, evals


def _two_loop(grad, ss, ys, rho, count, m: int):
    """The L-BFGS direction −H g from the last min(count, m) curvature pairs (s, y) kept in ring
    buffers ``ss``, ``ys`` (with ρ = 1 / sᵀy), by the two-loop recursion; H₀ = γ I with
    γ = sᵀy / yᵀy of the newest pair (1 / max(1, ‖g‖) before any)."""

    def back(i, c):  # newest to oldest
        q, alpha = c
        j = (count - 1 - i) % m
        a = jnp.where(i < jnp.minimum(count, m), rho[j] * jnp.dot(ss[j], q), 0.0)
        return q - a * ys[j], alpha.at[j].set(a)

    q, alpha = jax.lax.fori_loop(0, m, back, (grad, jnp.zeros(m, grad.dtype)))
    last = (count - 1) % m
    gamma = jnp.where(count > 0, jnp.dot(ss[last], ys[last]) / jnp.dot(ys[last], ys[last]),
                      1.0 / jnp.maximum(1.0, jnp.sqrt(jnp.sum(grad**2))))
    r = gamma * q

    def forward(i, r):  # oldest to newest
        j = (count - jnp.minimum(count, m) + i) % m
        b = rho[j] * jnp.dot(ys[j], r)
        return jnp.where(i < jnp.minimum(count, m), r + ss[j] * (alpha[j] - b), r)

    return -jax.lax.fori_loop(0, m, forward, r)


def lbfgs_backtracking(objective, statics, params, args, gtol, max_iter, *, capacity=512, memory_size=10, report=False):
    """:func:`lbfgs_core`'s loop with a backtracking (Armijo) line search instead of optax's zoom
    search: the same stopping rules and return values, about a third of the compiled size, for
    programs whose compile time counts (the default reverse fit). Curvature pairs with
    sᵀy ≤ 1e-10 |s| |y| are skipped (Armijo alone does not guarantee sᵀy > 0); a direction that
    is not downhill is replaced by the gradient's. Traceable, not jitted itself."""
    from jax.flatten_util import ravel_pytree

    flat0, unravel = ravel_pytree(params)
    fun = lambda x: objective(statics, unravel(x), *args)  # noqa: E731
    value_and_grad = jax.value_and_grad(fun)
    value, grad = value_and_grad(flat0)
    n, m = flat0.shape[0], int(memory_size)
    history = jnp.full(capacity, jnp.nan, dtype=value.dtype).at[0].set(value)

    def small(value, grad):
        return jnp.sqrt(jnp.sum(grad**2)) <= gtol * jnp.maximum(1.0, jnp.abs(value))

    def cond(c):
        _, value, grad, it, still, *_ = c
        return (it < max_iter) & ~small(value, grad) & jnp.isfinite(value) & (still < _STALL_LIMIT)

    def body(c):
        x, value, grad, it, still, history, evals, ss, ys, rho, count = c
        d = _two_loop(grad, ss, ys, rho, count, m)
        slope = jnp.dot(grad, d)
        d = jnp.where(slope < 0, d, -grad / jnp.maximum(1.0, jnp.sqrt(jnp.sum(grad**2))))
        slope = jnp.dot(grad, d)

        def worse(s):  # the first pass (k = 0) always evaluates: the objective appears once here
            t, v, _, k = s
            return (k == 0) | (~(v <= value + 1e-4 * t * slope) & (k < 41))

        def halve(s):
            t, _, _, k = s
            t = jnp.where(k == 0, t, 0.5 * t)
            v, g = value_and_grad(x + t * d)
            return t, v, g, k + 1

        t, new_value, new_grad, k = jax.lax.while_loop(
            worse, halve, (jnp.asarray(1.0, x.dtype), jnp.asarray(jnp.inf, x.dtype), grad, 0))
        k = k - 1
        ok = new_value <= value
        step, dy = t * d, new_grad - grad
        sy = jnp.dot(step, dy)
        keep = ok & (sy > 1e-10 * jnp.sqrt(jnp.sum(step**2) * jnp.sum(dy**2)))
        slot = count % m
        ss = jnp.where(keep, ss.at[slot].set(step), ss)
        ys = jnp.where(keep, ys.at[slot].set(dy), ys)
        rho = jnp.where(keep, rho.at[slot].set(1.0 / jnp.where(keep, sy, 1.0)), rho)
        count = count + keep.astype(count.dtype)
        x = jnp.where(ok, x + step, x)
        new_value, new_grad = jnp.where(ok, new_value, value), jnp.where(ok, new_grad, grad)
        still = jnp.where(new_value == value, still + 1, 0)
        in_loop(report, it + 1, new_value)
        return (x, new_value, new_grad, it + 1, still, history.at[it + 1].set(new_value), evals + k + 1,
                ss, ys, rho, count)

    zeros = jnp.zeros((m, n), flat0.dtype)
    carry = (flat0, value, grad, 0, 0, history, 1, zeros, zeros, jnp.zeros(m, flat0.dtype), 0)
    x, value, grad, it, still, history, evals, *_ = jax.lax.while_loop(cond, body, carry)
    converged = small(value, grad) & jnp.isfinite(value)
    return (unravel(x), value, history, it, jnp.sqrt(jnp.sum(grad**2)), converged, still >= _STALL_LIMIT, evals)


def lbfgs_solve(
    objective: Objective,
    statics: Any,
    params: Any,
    args: tuple,
    *,
    max_iter: int = 500,
    gtol: float | None = None,
    memory_size: int = 10,
) -> Solution:
    """Minimise ``objective(statics, params, *args)`` over ``params`` by L-BFGS with zoom line search.

    Stops when ‖∇f‖₂ ≤ gtol · max(1, |f|) (converged), after ``max_iter`` iterations, when f is
    not finite, or when f has not changed for a few iterations (stalled).
    """
    gtol = default_gtol() if gtol is None else float(gtol)
    if int(max_iter) < 0:
        raise ValueError(f"Expected max_iter to be a non-negative integer; got {max_iter}.")
    out = lbfgs_core(objective, statics, params, args, gtol, int(max_iter),
                     capacity=_capacity(max_iter), memory_size=int(memory_size), report=active())
    params, value, history, it, grad_norm, converged, stalled, _ = out
    it = int(it)
    return Solution(
        params=params,
        value=float(value),
        history=np.asarray(history[: it + 1]),
        num_iterations=it,
        grad_norm=float(grad_norm),
        converged=bool(converged),
        stalled=bool(stalled),
    )


@functools.partial(jax.jit, static_argnames=("objective", "statics", "num_steps", "report"))
def _adam(objective, statics, params, args, key, learning_rate, *, num_steps, report=False):
    opt = optax.adam(learning_rate)
    grad_fn = jax.value_and_grad(lambda p, k: objective(statics, p, k, *args))

    def step(carry, xs):
        params, state = carry
        i, k = xs
        value, grad = grad_fn(params, k)
        updates, state = opt.update(grad, state, params)
        in_loop(report, i + 1, value)
        return (optax.apply_updates(params, updates), state), value

    steps = (jnp.arange(num_steps), jax.random.split(key, num_steps))
    (params, _), history = jax.lax.scan(step, (params, opt.init(params)), steps)
    return params, history


def descend_steps(objective, statics, x, args, *, num_steps):
    """The loop of :func:`descend`, traceable inside a larger program (``_descend`` compiles it alone)."""
    fun = jax.value_and_grad(lambda v: objective(statics, v, *args))

    def step(_, carry):
        x, value, grad, size = carry
        gg = jnp.sum(grad**2)

        def worse(c):  # Armijo test fails (NaN counts as worse): halve the step
            s, v, k = c
            return ~(v <= value - 1e-4 * s * gg) & (k < 40)

        def halve(c):
            s, _, k = c
            return s / 2, objective(statics, x - s / 2 * grad, *args), k + 1

        size = jnp.minimum(2 * size, 1e6)
        size, new_value, _ = jax.lax.while_loop(worse, halve, (size, objective(statics, x - size * grad, *args), 0))
        ok = new_value <= value
        x = jnp.where(ok, x - size * grad, x)
        new_value, new_grad = fun(x)
        return x, new_value, new_grad, size

    value, grad = fun(x)
    size = 1.0 / jnp.maximum(1.0, jnp.sqrt(jnp.sum(grad**2)))
    x, value, _, _ = jax.lax.fori_loop(0, num_steps, step, (x, value, grad, size))
    return x, value


_descend = jax.jit(descend_steps, static_argnames=("objective", "statics", "num_steps"))


def descend(objective: Objective, statics: Any, x: jax.Array, args: tuple, *, num_steps: int) -> tuple[jax.Array, float]:
    """A short gradient descent with backtracking (Armijo) on one array ``x``: a cheap start finder.

    Never accepts a step that raises the objective; returns the point and its value.
    """
    x, value = _descend(objective, statics, x, args, num_steps=int(num_steps))
    return x, float(value)


def describe(sol: Solution, *, solver: str, max_iter: int) -> str:
    """A one-line account of how a solve ended; when it failed, what to try."""
    if solver == "adam":
        if sol.converged:
            return f"Converged: no trend left in the objective over the last Adam steps ({sol.num_iterations} steps)."
        return (
            f"Not converged: the objective still trends after {sol.num_iterations} Adam steps. "
            "Try more num_steps, a smaller learning_rate, or method='fixed_draws'."
        )
    if sol.converged:
        return f"Converged: gradient norm {sol.grad_norm:.2g} after {sol.num_iterations} L-BFGS iterations."
    if not np.isfinite(sol.value):
        return (
            "Not converged: the objective became NaN or inf. Check the target for regions where it "
            "is not finite, or pass starting values with init={...}."
        )
    if sol.stalled:
        return (
            f"Not converged: the line search made no progress (gradient norm {sol.grad_norm:.2g}); "
            "the objective may be flat, non-smooth or badly scaled here. Try init={...}, rescaling "
            "the data, or a looser gtol."
        )
    return (
        f"Not converged after max_iter={max_iter} iterations (gradient norm {sol.grad_norm:.2g}). "
        "Try a larger max_iter, starting values with init={...}, or rescaling the data."
    )
