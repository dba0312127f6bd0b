"""Relatives of the KL between probability arrays: Jensen-Shannon, Rényi, skew KL, total variation.

All take ``axis``, ``base``, ``normalize`` and a ``where=`` mask as :func:`kullback.kl` does, are
batched over the other axes, and are built from the same non-negative KL terms.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from ._discrete import _kl_terms, _prepare, _scale, _sum, phi

__all__ = ["jensen_shannon", "renyi", "skew_kl", "total_variation"]


def _check_unit(value: float, name: str) -> float:
    if isinstance(value, jax.core.Tracer):
        return value
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"Expected {name} to be in [0, 1]; got {value}.")
    return value


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
    js = w * _sum(_kl_terms(p, m), axis, mask) + (1 - w) * _sum(_kl_terms(q, m), axis, mask)
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
    return _scale(_sum(_kl_terms(p, a * q + (1 - a) * p), axis, mask), base)


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
    twice the Bhattacharyya distance. Near α = 1 (and for near-identical p, q) the sum is taken as
    Σ p φ(βl) + β KL with β = α − 1, l = log(p/q), φ(t) = eᵗ − 1 − t: no cancellation.

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
    p_pos, q_pos = (p > 0) & keep, (q > 0) & keep
    both = p_pos & q_pos
    only_p = jnp.any(p_pos & ~q_pos, axis=axis)
    if alpha == 1.0:
        return _scale(_sum(_kl_terms(p, q), axis, mask), base)
    if alpha == 0.0:
        return _scale(-jnp.log(jnp.sum(jnp.where(p_pos, q, 0.0), axis=axis)), base)
    ps, qs = jnp.where(both, p, 1.0), jnp.where(both, q, 1.0)
    log_r = jnp.log(ps) - jnp.log(qs)
    if math.isinf(alpha):
        top = jnp.max(jnp.where(both, log_r, -jnp.inf), axis=axis)
        return _scale(jnp.where(only_p, jnp.inf, jnp.maximum(top, 0.0)), base)
    beta = alpha - 1.0
    # split form: S − 1 = Σ_both p φ(βl) + β (Σ_both p l) − P0, with Σ_both p l from the KL terms
    p0 = jnp.sum(jnp.where(p_pos & ~q_pos, p, 0.0), axis=axis)
    q0 = jnp.sum(jnp.where(q_pos & ~p_pos, q, 0.0), axis=axis)
    kl_both = jnp.sum(jnp.where(both, _kl_terms(ps, qs), 0.0), axis=axis) + q0 - p0
    bl = jnp.where(both, beta * log_r, 0.0)
    moderate = jnp.max(bl, axis=axis) < 30.0
    safe_bl = jnp.where(jnp.expand_dims(moderate, axis), bl, 0.0)
    a = jnp.sum(jnp.where(both, ps * phi(safe_bl), 0.0), axis=axis)
    s_minus_1 = a + beta * kl_both - p0
    split = jnp.log1p(jnp.maximum(s_minus_1, -1.0)) / beta
    # log-space form for large β l: log S = logsumexp(log p + β l)
    log_s = jax.nn.logsumexp(jnp.where(both, jnp.log(ps) + bl, -jnp.inf), axis=axis)
    value = jnp.where(moderate, split, log_s / beta)
    if beta > 0:
        value = jnp.where(only_p, jnp.inf, value)
    return _scale(jnp.maximum(value, 0.0), base)
