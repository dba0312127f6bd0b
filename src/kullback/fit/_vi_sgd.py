"""Stochastic reverse fits: Adam on fresh reparameterised draws, compiled whole, that knows when to stop.

1. Step size: short pilot runs from the same start at several learning rates (vmapped, the
   same draws for all); the rate with the lowest mean objective over the pilot's second half wins,
   and the fit continues from that pilot.
2. Windows of W steps: after each, the window's mean objective m_i and its variance. The objective
   is *stationary* when m_{i−2} − m_i < 2 · SE (no improvement over two windows that noise cannot
   explain) after at least three windows of the stage: a slow start still improves by more than
   its noise and is not stopped, a noisy plateau is.
3. At stationarity the learning rate drops fourfold (up to ``num_stages`` stages); at the last
   stage's stationarity, the result is the average of the iterates over its last two windows
   (Polyak–Ruppert averaging), which removes most of the remaining noise.
4. Divergence (a window mean far above the best so far): back to the best window's average
   iterate with a fresh optimiser state and a fourfold smaller rate.
5. A step whose objective or gradient is not finite is skipped (parameters and optimiser state
   unchanged) and counted; a window in which every step was skipped ends the run as failed.

References:
    Dhaka, A. K. et al. (2020). Robust, accurate stochastic optimization for variational inference. NeurIPS.
    Welandawe, M. et al. (2022). Robust, automated, and accurate black-box variational inference. arXiv:2203.15945.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from ._progress import in_loop

__all__ = ["DEFAULT_RATES"]

DEFAULT_RATES = (0.1, 0.03, 0.01)


def _tree_where(ok, new, old):
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


def _finite(tree) -> jax.Array:
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def _steps(grad_fn, opt, carry, keys, rate):
    """``len(keys)`` Adam steps at ``rate``; non-finite steps skipped. Returns values (NaN: skipped)."""

    def step(c, k):
        params, state, skipped, total = c
        value, grad = grad_fn(params, k)
        ok = jnp.isfinite(value) & _finite(grad)
        grad = jax.tree.map(lambda g: jnp.where(ok, g, 0.0), grad)
        updates, new_state = opt.update(grad, state, params)
        new_params = jax.tree.map(lambda p, u: p + rate * u, params, updates)
        params = _tree_where(ok, new_params, params)
        state = _tree_where(ok, new_state, state)
        total = jax.tree.map(lambda t, p: t + p, total, params)
        return (params, state, skipped + (~ok).astype(jnp.int32), total), jnp.where(ok, value, jnp.nan)

    return jax.lax.scan(step, carry, keys)


def _window_stats(values):
    ok = jnp.isfinite(values)
    n = jnp.maximum(jnp.sum(ok), 1)
    mean = jnp.sum(jnp.where(ok, values, 0.0)) / n
    var = jnp.sum(jnp.where(ok, (values - mean) ** 2, 0.0)) / jnp.maximum(n - 1, 1)
    return mean, var, n


@functools.partial(jax.jit, static_argnames=("objective", "statics", "window", "max_windows", "pilot", "num_stages",
                                             "report"))
def _sgd(objective, statics, params, args, key, rates, *, window, max_windows, pilot, num_stages, report=False):
    opt = optax.adam(1.0)
    grad_fn = jax.value_and_grad(lambda p, k: objective(statics, p, k, *args))
    zeros = jax.tree.map(jnp.zeros_like, params)
    k_pilot, k_main = jax.random.split(key)

    # 1. pilot runs, one per rate, on common draws
    def run_pilot(rate):
        carry = (params, opt.init(params), jnp.int32(0), zeros)
        (p, s, skipped, _), values = _steps(grad_fn, opt, carry, jax.random.split(k_pilot, pilot), rate)
        score = jnp.nanmean(values[pilot // 2 :])
        return p, s, skipped, jnp.where(jnp.isfinite(score), score, jnp.inf)

    pilots = jax.vmap(run_pilot)(rates)
    best = jnp.argmin(pilots[3])
    params, state, skipped = jax.tree.map(lambda a: a[best], pilots[:3])
    rate0 = rates[best]

    # 2.-4. windows until stationary at the last stage
    means = jnp.full(max_windows, jnp.nan)
    variances = jnp.full(max_windows, jnp.nan)

    def cond(c):
        i, done = c[0], c[-2]
        return (i < max_windows) & ~done

    def body(c):
        i, params, state, skipped, rate, stage, start, prev_avg, avg, means, variances, failed, converged, _, best = c
        keys = jax.random.split(jax.random.fold_in(k_main, i), window)
        (params, state, skipped_new, total), values = _steps(grad_fn, opt, (params, state, skipped, zeros), keys, rate)
        mean, var, n = _window_stats(values)
        all_skipped = (skipped_new - skipped) == window
        means = means.at[i].set(jnp.where(all_skipped, jnp.nan, mean))
        in_loop(report, i + 1, mean)  # one report a window: its mean objective
        variances = variances.at[i].set(var / n)
        new_avg = jax.tree.map(lambda t: t / window, total)
        back = jnp.maximum(i - 2, 0)
        drop = means[back] - mean
        se = jnp.sqrt(variances[back] + var / n)
        stationary = (i - start >= 2) & (drop < 2.0 * se + 1e-12 * jnp.abs(mean)) & ~all_skipped
        # divergence: far worse than the best window so far (or not finite): back to the best
        # window's average iterate, a fresh optimiser state, a fourfold smaller rate
        best_mean, best_var, best_params = best
        diverged = ~all_skipped & (~jnp.isfinite(mean) | (mean > best_mean + 10.0 * jnp.sqrt(best_var + var / n)
                                                             + 1e-3 * jnp.abs(best_mean)))
        better = jnp.isfinite(mean) & (mean < best_mean) & ~all_skipped
        best = (jnp.where(better, mean, best_mean), jnp.where(better, var / n, best_var),
                _tree_where(better, new_avg, best_params))
        last = stage >= num_stages - 1
        converged = stationary & last & ~diverged
        decay = (stationary & ~last) | diverged
        rate = jnp.where(decay, rate / 4.0, rate)
        stage = stage + (stationary & ~last & ~diverged).astype(jnp.int32)
        start = jnp.where(decay, i + 1, start)
        params = _tree_where(diverged, best[2], params)
        state = _tree_where(diverged, opt.init(best[2]), state)
        new_avg = _tree_where(diverged, best[2], new_avg)
        done = converged | all_skipped
        return (i + 1, params, state, skipped_new, rate, stage, start, avg, new_avg, means, variances,
                all_skipped, converged, done, best)

    carry = (0, params, state, skipped, rate0, 0, 0, params, params, means, variances,
             jnp.bool_(False), jnp.bool_(False), jnp.bool_(False), (jnp.inf, jnp.inf, params))
    out = jax.lax.while_loop(cond, body, carry)
    i, params, _, skipped, _, _, _, prev_avg, avg, means, _, failed, converged, _, _ = out
    averaged = jax.tree.map(lambda a, b: 0.5 * (a + b), prev_avg, avg)
    averaged = _tree_where(converged & _finite(averaged), averaged, params)
    return averaged, means, i, skipped, converged, failed, rate0
