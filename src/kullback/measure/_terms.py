"""Per-entry terms and logit gradients of the divergences from log-probabilities, on a tile.

Shared by the row-streamed divergences (:mod:`._streaming_family`, a tile is a block of whole
rows) and the fused output-layer losses (:mod:`._linear`, a tile is rows × a vocabulary chunk).
Each divergence is a :class:`Form`: ``terms(lp, lq, params)`` gives per-entry arrays whose row
sums are its statistics (the value is ``value(stats, params)``), and ``grads(lp, lq, stats,
params)`` the gradients of the row value with respect to the logits (softmax Jacobian included),
before division by the temperature. ``lp = s − logsumexp(s)`` and ``lq = t − logsumexp(t)`` are
the log-probabilities of p and q, ``−inf`` where a probability is 0.

KL-type terms are written as ``p φ(log(m/p))`` with φ(a) = eᵃ − 1 − a ≥ 0: a row sum of them is
KL(p‖m) (Σ m = Σ p), and each term is non-negative and free of cancellation (a series where
|a| < ½), so near-identical rows give small non-negative values in float32 too.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax.numpy as jnp

from ._streaming import _phi_series

__all__ = ["Form", "KL", "CROSS_ENTROPY", "JENSEN_SHANNON", "SKEW_KL", "TOTAL_VARIATION", "phi_terms"]

_SERIES_BELOW = 0.5


class Form(NamedTuple):
    """A divergence as per-entry statistics, their combination, and its logit gradients."""

    terms: Callable  # (lp, lq, params) -> tuple of per-entry arrays (row-summed to statistics)
    value: Callable  # (stats, params) -> per-row value; stats: tuple of (B,) row sums
    grads: Callable  # (lp, lq, stats, params) -> (d value / d s, d value / d t), per entry
    num_stats: int = 1


def phi_terms(lp, lm):
    """p φ(log m − log p) per entry: m − p − p log(m/p) ≥ 0, m where p = 0, +inf where m = 0 < p."""
    live = lp > -jnp.inf
    a = jnp.where(live, lm - lp, 0.0)
    small = live & (jnp.abs(a) < _SERIES_BELOW)
    p, m = jnp.exp(lp), jnp.exp(lm)
    near = p * _phi_series(jnp.where(small, a, 0.0))
    far = m - p - p * a
    return jnp.where(small, near, jnp.where(live & (lm == -jnp.inf), jnp.inf, far))


def _times_p(lp, x):
    """p x, 0 where p = 0 (x may be ±inf or NaN there)."""
    return jnp.where(lp > -jnp.inf, jnp.exp(lp) * jnp.where(lp > -jnp.inf, x, 0.0), 0.0)


# KL(p‖q) = Σ p φ(log q − log p); ∂/∂s = −p (log q − log p + KL), ∂/∂t = q − p
KL = Form(
    terms=lambda lp, lq, params: (phi_terms(lp, lq),),
    value=lambda st, params: jnp.maximum(st[0], 0.0),
    grads=lambda lp, lq, st, params: (-_times_p(lp, lq - lp + st[0][:, None]), jnp.exp(lq) - jnp.exp(lp)),
)


def _ce_terms(lp, lq, params):
    live = lp > -jnp.inf
    return (jnp.where(live, jnp.where(lq == -jnp.inf, jnp.inf, -jnp.exp(lp) * lq), 0.0),)


# H(p, q) = −Σ p log q; ∂/∂s = −p (log q + H), ∂/∂t = q − p
CROSS_ENTROPY = Form(
    terms=_ce_terms,
    value=lambda st, params: st[0],
    grads=lambda lp, lq, st, params: (-_times_p(lp, lq + st[0][:, None]), jnp.exp(lq) - jnp.exp(lp)),
)


def _log_mix(lp, lq, w):
    """log(w p + (1 − w) q) from log p and log q."""
    return jnp.logaddexp(jnp.log(w) + lp, jnp.log1p(-w) + lq)


def _js_terms(lp, lq, params):
    (w,) = params
    lm = _log_mix(lp, lq, w)
    return phi_terms(lp, lm), phi_terms(lq, lm)


def _js_value(st, params):
    (w,) = params
    h = -(jnp.where(w > 0, w * jnp.log(jnp.where(w > 0, w, 1.0)), 0.0)
          + jnp.where(w < 1, (1 - w) * jnp.log1p(-jnp.where(w < 1, w, 0.0)), 0.0))
    js = jnp.where(w > 0, w * st[0], 0.0) + jnp.where(w < 1, (1 - w) * st[1], 0.0)  # 0·inf = 0 here
    return jnp.clip(js, 0.0, h)


def _js_grads(lp, lq, st, params):
    (w,) = params
    lm = _log_mix(lp, lq, w)
    return w * _times_p(lp, lp - lm - st[0][:, None]), (1 - w) * _times_p(lq, lq - lm - st[1][:, None])


# JS_π(p‖q) = π KL(p‖m) + (1 − π) KL(q‖m), m = π p + (1 − π) q;
# ∂/∂s = π p (log(p/m) − KL(p‖m)), ∂/∂t = (1 − π) q (log(q/m) − KL(q‖m))
JENSEN_SHANNON = Form(terms=_js_terms, value=_js_value, grads=_js_grads, num_stats=2)


def _skew_parts(lp, lq, a):
    lm = _log_mix(lq, lp, a)  # m = α q + (1 − α) p
    r = jnp.where(lm > -jnp.inf, jnp.exp(lp - jnp.where(lm > -jnp.inf, lm, 0.0)), 0.0)  # p / m
    return lm, r


def _skew_terms(lp, lq, params):
    (a,) = params
    lm, r = _skew_parts(lp, lq, a)
    return phi_terms(lp, lm), jnp.exp(lp) * r, jnp.exp(lq) * r


def _skew_grads(lp, lq, st, params):
    # D = KL(p‖m): ∂D/∂p = log(p/m) + 1 − (1 − α) p/m, ∂D/∂q = −α p/m, then the softmax Jacobians
    (a,) = params
    d, e_p, e_q = (x[:, None] for x in st)
    lm, r = _skew_parts(lp, lq, a)
    gs = _times_p(lp, lp - lm - (1 - a) * r - d + (1 - a) * e_p)
    return gs, -a * jnp.exp(lq) * (r - e_q)


# skew KL(p ‖ α q + (1 − α) p)
SKEW_KL = Form(terms=_skew_terms, value=lambda st, params: jnp.maximum(st[0], 0.0), grads=_skew_grads, num_stats=3)


def _tv_terms(lp, lq, params):
    p, q = jnp.exp(lp), jnp.exp(lq)
    sign = jnp.sign(p - q)
    return 0.5 * jnp.abs(p - q), p * sign, q * sign


def _tv_grads(lp, lq, st, params):
    p, q = jnp.exp(lp), jnp.exp(lq)
    sign = jnp.sign(p - q)
    return 0.5 * p * (sign - st[1][:, None]), -0.5 * q * (sign - st[2][:, None])


# TV = ½ Σ |p − q|; ∂/∂s = ½ p (σ − E_p σ), ∂/∂t = −½ q (σ − E_q σ), σ = sign(p − q)
TOTAL_VARIATION = Form(terms=_tv_terms, value=lambda st, params: st[0], grads=_tv_grads, num_stats=3)
