"""KL divergence, cross-entropy and entropy between probability arrays.

The KL is computed in the form that cannot go negative:

    KL(p‖q) = Σ_i p_i φ(log q_i − log p_i) + Σ_{i: p_i = 0} q_i,    φ(t) = eᵗ − 1 − t ≥ 0,

which equals Σ p log(p/q) when p and q each sum to 1, but is a sum of non-negative terms: no
cancellation between a cross-entropy and an entropy, so near-identical distributions give small
non-negative values in float32 too. Zeros are safe for values and gradients (a safe value is
substituted before each ``log``, then ``where`` picks 0 or +inf).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from .._validate import check_probabilities, check_same_shape

__all__ = ["kl", "cross_entropy", "entropy", "phi", "log_ratio"]

# Taylor coefficients 1/k! for k = 2..9: φ(t) = t² Σ c_k t^(k-2), accurate to ~5e-15 for |t| ≤ 0.1.
_PHI_COEFFS = tuple(1.0 / math.factorial(k) for k in range(9, 1, -1))
_PHI_SERIES_BELOW = 0.1


def phi(t: jax.Array) -> jax.Array:
    """φ(t) = eᵗ − 1 − t, accurate in relative terms near 0 and +inf at t = −inf."""
    small = jnp.abs(t) < _PHI_SERIES_BELOW
    ts = jnp.where(small, t, 0.0)
    series = jnp.zeros_like(ts)
    for c in _PHI_COEFFS:
        series = series * ts + c
    series = series * ts * ts
    tl = jnp.where(small, 1.0, t)
    return jnp.where(small, series, jnp.expm1(tl) - tl)


def log_ratio(q: jax.Array, p: jax.Array) -> jax.Array:
    """log(q/p) for positive q, p: via log1p of the exact difference when they are close."""
    close = jnp.abs(q - p) < 0.5 * p
    near = jnp.log1p(jnp.where(close, (q - p) / p, 0.0))
    far = jnp.log(jnp.where(close, 1.0, q)) - jnp.log(jnp.where(close, 1.0, p))
    return jnp.where(close, near, far)


def _scale(x: jax.Array, base: float | None) -> jax.Array:
    if base is None:
        return x
    if not base > 0 or base == 1:
        raise ValueError(f"Expected base to be positive and not 1; got {base}.")
    return x / jnp.log(jnp.asarray(base, dtype=x.dtype))


def _kl_terms(p: jax.Array, q: jax.Array) -> jax.Array:
    p_pos, q_pos = p > 0, q > 0
    both = p_pos & q_pos
    t = log_ratio(jnp.where(both, q, 1.0), jnp.where(both, p, 1.0))
    terms = jnp.where(both, p * phi(t), 0.0)
    terms = jnp.where(p_pos, terms, q)  # p = 0: contributes q (the Σq − Σp bookkeeping)
    return jnp.where(p_pos & ~q_pos, jnp.inf, terms)


def _prepare(p: Any, q: Any, axis: int, normalize: bool) -> tuple[jax.Array, jax.Array]:
    p = check_probabilities(p, "p", axis=axis, normalize=normalize)
    q = check_probabilities(q, "q", axis=axis, normalize=normalize)
    check_same_shape(p, q, axis=axis)
    dtype = jnp.result_type(p.dtype, q.dtype)
    compute = jnp.float32 if jnp.finfo(dtype).bits < 32 else dtype
    return p.astype(compute), q.astype(compute)


def kl(
    p: Any, q: Any, *, axis: int = -1, base: float | None = None, normalize: bool = False
) -> jax.Array:
    """Kullback-Leibler divergence KL(p‖q) = Σ p log(p/q) between probability arrays.

    Args:
        p: probabilities, shape ``(..., n)`` (the outcomes along ``axis``).
        q: probabilities broadcastable with ``p``, the same ``n`` along ``axis``.
        axis: the axis of outcomes.
        base: logarithm base (``None`` for nats, 2 for bits).
        normalize: divide non-negative counts by their sum instead of requiring sums of 1.

    Returns:
        The divergence, shape of the broadcast batch axes; ``+inf`` where some p_i > 0 = q_i.
        Never negative.

    Example:
        >>> import kullback as kb
        >>> round(float(kb.kl([0.5, 0.5], [0.9, 0.1])), 10)
        0.5108256238
        >>> float(kb.kl([0.5, 0.5], [1.0, 0.0]))
        inf
    """
    p, q = _prepare(p, q, axis, normalize)
    return _scale(jnp.sum(_kl_terms(p, q), axis=axis), base)


def cross_entropy(
    p: Any, q: Any, *, axis: int = -1, base: float | None = None, normalize: bool = False
) -> jax.Array:
    """Cross-entropy H(p, q) = −Σ p log q = H(p) + KL(p‖q) between probability arrays.

    Args and Returns as :func:`kl`; 0·log 0 = 0 and +inf where some p_i > 0 = q_i.

    Example:
        >>> import kullback as kb
        >>> round(float(kb.cross_entropy([0.5, 0.5], [0.9, 0.1])), 6)
        1.203973
    """
    p, q = _prepare(p, q, axis, normalize)
    p_pos, q_pos = p > 0, q > 0
    terms = jnp.where(p_pos, -p * jnp.log(jnp.where(q_pos, q, 1.0)), 0.0)
    terms = jnp.where(p_pos & ~q_pos, jnp.inf, terms)
    return _scale(jnp.sum(terms, axis=axis), base)


def entropy(p: Any, *, axis: int = -1, base: float | None = None, normalize: bool = False) -> jax.Array:
    """Shannon entropy H(p) = −Σ p log p of a probability array (0·log 0 = 0).

    Example:
        >>> import kullback as kb
        >>> float(kb.entropy([0.5, 0.5], base=2))
        1.0
    """
    p = check_probabilities(p, "p", axis=axis, normalize=normalize)
    if jnp.finfo(p.dtype).bits < 32:
        p = p.astype(jnp.float32)
    p_pos = p > 0
    terms = jnp.where(p_pos, -p * jnp.log(jnp.where(p_pos, p, 1.0)), 0.0)
    return _scale(jnp.sum(terms, axis=axis), base)
