"""Relatives of the KL between probability arrays: Jensen-Shannon, Rényi, skew KL, total variation.

All take ``axis``, ``base``, ``normalize`` and a ``where=`` mask as :func:`kullback.kl` does, are
batched over the other axes, and are built from the same non-negative KL terms.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from ._discrete import _kl_terms, _prepare, _scale, _sum, log_ratio, phi

__all__ = ["jensen_shannon", "renyi", "renyi_from_logs", "skew_kl", "total_variation"]


def _check_unit(value: float, name: str) -> float:
    if isinstance(value, jax.core.Tracer):
        return value
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"Expected {name} to be in [0, 1]; got {value}.")
    return value


def _mixture_terms(p: jax.Array, m: jax.Array, w: Any) -> jax.Array:
    """KL terms of p against a mixture m that holds p with a positive weight w (m ≥ w p).

    Where m underflows to 0 (w p below the smallest normal number, which XLA flushes to 0) the
    exact term is at most p log(1/w), below 1e-36 for w ≥ 0.01: it is taken as 0, not +inf.
    """
    return jnp.where((m == 0) & (p > 0) & (w > 0), 0.0, _kl_terms(p, m))


def jensen_shannon(
    p: Any,
    q: Any,
    *,
    weight: float = 0.5,
    axis: int = -1,
    base: float | None = None,
    normalize: bool = False,
    where: Any = None,
) -> jax.Array:
    """Generalised Jensen-Shannon divergence with mixing weight π (a divergence, not its root).

    JS_π(p‖q) = π KL(p‖m) + (1 − π) KL(q‖m),    m = π p + (1 − π) q,

    bounded by the binary entropy h(π) (log 2 nats for π = ½) and symmetric for π = ½.
    ``scipy.spatial.distance.jensenshannon`` returns the square root of JS_½.

    Args:
        p, q: probabilities of shape ``(..., n)``, broadcastable, outcomes along ``axis``.
        weight: π in [0, 1], the weight of ``p`` in the mixture.
        axis, base, normalize, where: as in :func:`kullback.kl`.

    Returns:
        JS_π over the broadcast batch shape, in [0, h(π)].

    Example:
        >>> import kullback as kb
        >>> round(float(kb.jensen_shannon([1.0, 0.0], [0.0, 1.0], base=2)), 6)
        1.0
    """
    w = _check_unit(weight, "weight")
    p, q, mask = _prepare(p, q, axis, normalize, where)
    m = w * p + (1 - w) * q
    kl_p = _sum(_mixture_terms(p, m, w), axis, mask)
    kl_q = _sum(_mixture_terms(q, m, 1 - w), axis, mask)
    js = jnp.where(w > 0, w * kl_p, 0.0) + jnp.where(w < 1, (1 - w) * kl_q, 0.0)  # 0·inf = 0 here
    h = -(jax.scipy.special.xlogy(w, w) + jax.scipy.special.xlogy(1 - w, 1 - w))
    return _scale(jnp.clip(js, 0.0, h), base)


def skew_kl(
    p: Any,
    q: Any,
    *,
    alpha: float = 0.99,
    axis: int = -1,
    base: float | None = None,
    normalize: bool = False,
    where: Any = None,
) -> jax.Array:
    """Skew divergence (Lee, 1999): KL(p ‖ α q + (1 − α) p), finite for α < 1 even where q = 0.

    Args:
        p, q: probabilities of shape ``(..., n)``.
        alpha: α in [0, 1]; α = 1 is KL(p‖q), α = 0 gives 0. At most −log(1 − α).
        axis, base, normalize, where: as in :func:`kullback.kl`.

    Returns:
        The skew divergence over the broadcast batch shape.

    Example:
        >>> import kullback as kb
        >>> round(float(kb.skew_kl([0.5, 0.5], [1.0, 0.0], alpha=0.5)), 6)
        0.143841
    """
    a = _check_unit(alpha, "alpha")
    p, q, mask = _prepare(p, q, axis, normalize, where)
    terms = _mixture_terms(p, a * q + (1 - a) * p, 1 - a)
    return _scale(_sum(terms, axis, mask), base)


def total_variation(
    p: Any, q: Any, *, axis: int = -1, normalize: bool = False, where: Any = None
) -> jax.Array:
    """Total variation distance TV(p, q) = ½ Σ |p − q| = max over events |P(A) − Q(A)|.

    Pinsker: TV ≤ sqrt(KL / 2) (KL in nats).

    Example:
        >>> import kullback as kb
        >>> round(float(kb.total_variation([0.5, 0.5], [0.9, 0.1])), 6)
        0.4
    """
    p, q, mask = _prepare(p, q, axis, normalize, where)
    return 0.5 * _sum(jnp.abs(p - q), axis, mask)


def renyi(
    p: Any,
    q: Any,
    alpha: float,
    *,
    axis: int = -1,
    base: float | None = None,
    normalize: bool = False,
    where: Any = None,
) -> jax.Array:
    """Rényi divergence of order α: D_α(p‖q) = log(Σ p^α q^(1−α)) / (α − 1).

    The limits are exact: α = 0 gives −log Σ_{p>0} q, α = 1 the KL, α = ∞ log max p/q; α = ½ is
    twice the Bhattacharyya distance. log S, S = Σ p^α q^(1−α), is a logsumexp of
    α log p + (1 − α) log q: no underflow of S (a sum of 1e-300 gives D, not inf). Where S is near
    1 (α near 1, or near-identical p, q) S − 1 is taken as Σ p φ(βl) + β KL with β = α − 1,
    l = log(p/q), φ(t) = eᵗ − 1 − t: no cancellation. Off the simplex by rounding, that form gives
    the divergence of the normalised inputs to first order. As everywhere on XLA's CPU backend,
    subnormal inputs (below the smallest normal number) are read as 0.

    Args:
        p, q: probabilities of shape ``(..., n)``.
        alpha: the order, a number in [0, ∞] (``math.inf`` for the max-divergence).
        axis, base, normalize, where: as in :func:`kullback.kl`.

    Returns:
        D_α over the broadcast batch shape; non-negative, non-decreasing in α.

    Example:
        >>> import math
        >>> import kullback as kb
        >>> round(float(kb.renyi([0.5, 0.5], [0.9, 0.1], 2.0)), 6)
        1.021651
        >>> round(float(kb.renyi([0.5, 0.5], [0.9, 0.1], math.inf)), 6)
        1.609438
    """
    alpha = float(alpha)
    if math.isnan(alpha) or alpha < 0:
        raise ValueError(f"Expected alpha to be in [0, inf]; got {alpha}.")
    p, q, mask = _prepare(p, q, axis, normalize, where)
    keep = jnp.ones(jnp.broadcast_shapes(p.shape, q.shape), bool) if mask is None else mask
    if alpha == 1.0:
        return _scale(_sum(_kl_terms(p, q), axis, mask), base)
    p_pos, q_pos = (p > 0) & keep, (q > 0) & keep
    both = p_pos & q_pos
    log_p, log_q = jnp.log(jnp.where(both, p, 1.0)), jnp.log(jnp.where(both, q, 1.0))
    log_r = None
    if math.isinf(alpha):  # log(p/q) exact where p and q are close; its gradient from log p − log q
        # (q − p)/p only where q − p cannot be subnormal (XLA reads those as 0)
        finfo = jnp.finfo(p.dtype)
        normal = both & (p > finfo.tiny / finfo.eps) & (q > finfo.tiny / finfo.eps)
        close = -log_ratio(jnp.where(normal, q, 1.0), jnp.where(normal, p, 1.0))
        log_r = log_p - log_q + jax.lax.stop_gradient(jnp.where(normal, close - (log_p - log_q), 0.0))
    value = renyi_from_logs(p, q, log_p, log_q, p_pos, q_pos, alpha, axis, log_r)
    nan = jnp.any((jnp.isnan(p) | jnp.isnan(q)) & keep, axis=axis)  # NaN in, NaN out (under jit)
    return _scale(jnp.where(nan, jnp.nan, value), base)


def renyi_from_logs(p, q, log_p, log_q, p_pos, q_pos, alpha: float, axis: int, log_r=None) -> jax.Array:
    """D_α (α ≠ 1) from p, q, their logs (read only where both are positive) and their supports.

    The supports are given, not read from p and q, so that callers with logits decide them from
    the logits: a probability that underflowed to 0 is still positive.
    """
    both = p_pos & q_pos
    if alpha == 0.0:
        return jnp.maximum(-_log_sum_exp(log_q, both, axis), 0.0)
    only_p = jnp.any(p_pos & ~q_pos, axis=axis)
    if math.isinf(alpha):
        log_r = log_p - log_q if log_r is None else log_r
        top = jnp.max(jnp.where(both, log_r, -jnp.inf), axis=axis)
        return jnp.where(only_p, jnp.inf, jnp.maximum(top, 0.0))
    ps, qs = jnp.where(both, p, 1.0), jnp.where(both, q, 1.0)
    value = _renyi_finite(p, q, ps, qs, log_p, log_q, p_pos, q_pos, alpha - 1.0, axis)
    if alpha > 1.0:
        value = jnp.where(only_p, jnp.inf, value)
    return jnp.maximum(value, 0.0)


def _log_sum_exp(x: jax.Array, keep: jax.Array, axis: int) -> jax.Array:
    """log Σ_keep eˣ, −inf for an empty sum, with gradients that stay finite (0) there."""
    top = jnp.max(jnp.where(keep, x, -jnp.inf), axis=axis, keepdims=True)
    top = jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0.0))
    total = jnp.sum(jnp.where(keep, jnp.exp(jnp.where(keep, x - top, 0.0)), 0.0), axis=axis)
    positive = total > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, total, 1.0)) + jnp.squeeze(top, axis), -jnp.inf)


def _renyi_finite(p, q, ps, qs, log_p, log_q, p_pos, q_pos, beta, axis):
    """D_α for 0 < α < ∞, α ≠ 1 (β = α − 1), from whichever of two forms is exact here.

    The log form, log S = logsumexp(α log p + (1 − α) log q), holds S from 1e-300 to 1e300 with
    a relative error of a few ε in log S; it loses D to cancellation only when S is near 1. There
    the split form, S − 1 = Σ p φ(βl) + β Σ (p l − p + q) − P₀ (l = log p/q, P₀ the mass of p off
    q's support), has no cancellation, and log1p(S − 1) / β keeps D in relative terms.
    """
    both = p_pos & q_pos
    log_r = log_p - log_q
    log_s = _log_sum_exp(log_p + beta * log_r, both, axis)
    log_form = log_s / beta
    p0 = jnp.sum(jnp.where(p_pos & ~q_pos, p, 0.0), axis=axis)
    q0 = jnp.sum(jnp.where(q_pos & ~p_pos, q, 0.0), axis=axis)
    # p l − p + q where q underflowed to 0 inside its support (callers with logits): no ψ there
    kl_t = jnp.where(qs > 0, _kl_terms(ps, jnp.where(qs > 0, qs, 1.0)), ps * log_r - ps)
    kl_both = jnp.sum(jnp.where(both, kl_t, 0.0), axis=axis) + q0 - p0
    bl = jnp.where(both, beta * log_r, 0.0)
    moderate = jnp.max(bl, axis=axis) < 30.0
    safe_bl = jnp.where(jnp.expand_dims(moderate, axis), bl, 0.0)
    a = jnp.sum(jnp.where(both, ps * phi(safe_bl), 0.0), axis=axis)
    s_minus_1 = a + beta * kl_both - p0
    near_one = moderate & (jnp.abs(s_minus_1) < 0.5) & (jnp.abs(log_s) < 1.0)
    split = jnp.log1p(jnp.where(near_one, s_minus_1, 0.0)) / beta
    return jnp.where(near_one, split, log_form)
