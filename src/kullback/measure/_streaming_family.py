"""Row-streamed Jensen-Shannon, skew KL, total variation and Rényi from logits, custom gradients.

As in :mod:`._streaming`: ``(N, V)`` logits, blocks of ``B`` rows visited by a ``fori_loop``,
float32 compute (float64 for float64 input), a few ``(B, V)`` temporaries and no extra ``(N, V)``
array in the forward or the backward pass. Each divergence is a :class:`._terms.Form`; the
forward pass keeps per row the two log-normalisers and the form's statistics (a few numbers),
from which the backward pass recomputes its gradient block by block.

The Rényi divergence of order α uses the same log-space forms as :func:`kullback.renyi`; its
gradient is ∂D/∂s = α/(α − 1) (ρ − p), ∂D/∂t = q − ρ with ρ ∝ p^α q^(1−α) on the common support
(α = ∞: ρ is the indicator of argmax p/q, and α/(α − 1) = 1).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from . import _terms
from ._divergences import renyi_from_logs
from ._streaming import _blocked, _compute_dtype, _lse_rows

__all__ = ["streamed_form", "streamed_renyi"]


def _scaled(x, inv_t):
    return x.astype(_compute_dtype(x.dtype)) * inv_t


def _make_form(form: _terms.Form):
    """custom_vjp of (N, V) logits and a tuple of traced scalar parameters; static T and block."""

    @functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
    def f(xp, xq, params, temperature, block):
        return _fwd(xp, xq, params, temperature, block)[0]

    def _fwd(xp, xq, params, temperature, block):
        inv_t = 1.0 / temperature

        def rows(bp, bq):
            s, t = _scaled(bp, inv_t), _scaled(bq, inv_t)
            ls, lt = _lse_rows(s), _lse_rows(t)
            stats = tuple(jnp.sum(a, axis=-1) for a in form.terms(s - ls, t - lt, params))
            return (form.value(stats, params), ls[:, 0], lt[:, 0], *stats)

        dt = _compute_dtype(xp.dtype)
        outs = [jnp.zeros((xp.shape[0],), dt) for _ in range(3 + form.num_stats)]
        res = _blocked(rows, (xp, xq), (), outs, block)
        return res[0], (xp, xq, params, res[1:])

    def _bwd(temperature, block, saved, g):
        xp, xq, params, rows_saved = saved
        inv_t = 1.0 / temperature

        def grads(bp, bq, gb, ls, lt, *stats):
            s, t = _scaled(bp, inv_t), _scaled(bq, inv_t)
            gs, gt = form.grads(s - ls[:, None], t - lt[:, None], stats, params)
            scale = (gb * inv_t)[:, None]
            return gs * scale, gt * scale

        outs = [jnp.zeros(xp.shape, xp.dtype), jnp.zeros(xq.shape, xq.dtype)]
        dp, dq = _blocked(grads, (xp, xq), (g, *rows_saved), outs, block)
        return dp, dq, jax.tree_util.tree_map(jnp.zeros_like, params)

    f.defvjp(_fwd, _bwd)
    return f


_FORMS = {
    "jensen_shannon": _make_form(_terms.JENSEN_SHANNON),
    "skew_kl": _make_form(_terms.SKEW_KL),
    "total_variation": _make_form(_terms.TOTAL_VARIATION),
}


@functools.partial(jax.jit, static_argnames=("name", "temperature", "block"))
def streamed_form(logits_p, logits_q, params, *, name: str, temperature: float, block: int) -> jax.Array:
    """Per-row divergence ``name`` of ``(N, V)`` logits; ``params``: a tuple of scalars (weights)."""
    dt = _compute_dtype(logits_p.dtype)
    params = tuple(jnp.asarray(x, dt) for x in params)
    return _FORMS[name](logits_p, logits_q, params, temperature, block)


def _renyi_rows(bp, bq, alpha, inv_t):
    s, t = _scaled(bp, inv_t), _scaled(bq, inv_t)
    ls, lt = _lse_rows(s), _lse_rows(t)
    log_p, log_q = s - ls, t - lt
    p_pos, q_pos = s > -jnp.inf, t > -jnp.inf
    both = p_pos & q_pos
    safe_p, safe_q = jnp.where(both, log_p, 0.0), jnp.where(both, log_q, 0.0)
    d = renyi_from_logs(jnp.exp(log_p), jnp.exp(log_q), safe_p, safe_q, p_pos, q_pos, alpha, -1)
    d = jnp.where(jnp.any(jnp.isnan(s) | jnp.isnan(t), axis=-1), jnp.nan, d)
    return d, ls[:, 0], lt[:, 0]


def _tilted(log_p, log_q, alpha):
    """ρ ∝ p^α q^(1−α) on the common support (α = ∞: the indicator of the first argmax of p/q)."""
    both = (log_p > -jnp.inf) & (log_q > -jnp.inf)
    if math.isinf(alpha):
        r = jnp.where(both, log_p - log_q, -jnp.inf)
        return jax.nn.one_hot(jnp.argmax(r, axis=-1), r.shape[-1], dtype=r.dtype)
    u = jnp.where(both, alpha * jnp.where(both, log_p, 0.0) + (1 - alpha) * jnp.where(both, log_q, 0.0), -jnp.inf)
    return jnp.exp(u - _lse_rows(u))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _renyi(xp, xq, alpha, temperature, block):
    return _renyi_fwd(xp, xq, alpha, temperature, block)[0]


def _renyi_fwd(xp, xq, alpha, temperature, block):
    dt = _compute_dtype(xp.dtype)
    outs = [jnp.zeros((xp.shape[0],), dt) for _ in range(3)]
    res = _blocked(lambda a, b: _renyi_rows(a, b, alpha, 1.0 / temperature), (xp, xq), (), outs, block)
    return res[0], (xp, xq, res[1], res[2])


def _renyi_bwd(alpha, temperature, block, saved, g):
    xp, xq, lse_s, lse_t = saved
    inv_t = 1.0 / temperature
    coef = 1.0 if math.isinf(alpha) else alpha / (alpha - 1.0)

    def grads(bp, bq, gb, ls, lt):
        log_p = _scaled(bp, inv_t) - ls[:, None]
        log_q = _scaled(bq, inv_t) - lt[:, None]
        rho = _tilted(log_p, log_q, alpha)
        scale = (gb * inv_t)[:, None]
        return coef * (rho - jnp.exp(log_p)) * scale, (jnp.exp(log_q) - rho) * scale

    outs = [jnp.zeros(xp.shape, xp.dtype), jnp.zeros(xq.shape, xq.dtype)]
    return _blocked(grads, (xp, xq), (g, lse_s, lse_t), outs, block)


_renyi.defvjp(_renyi_fwd, _renyi_bwd)


@functools.partial(jax.jit, static_argnames=("alpha", "temperature", "block"))
def streamed_renyi(logits_p, logits_q, *, alpha: float, temperature: float, block: int) -> jax.Array:
    """Per-row Rényi divergence of order α ≠ 1 (a static number in [0, ∞]) of ``(N, V)`` logits."""
    return _renyi(logits_p, logits_q, alpha, temperature, block)
