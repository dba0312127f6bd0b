"""KL divergence, cross-entropy and entropy between probability arrays.

The KL is computed in the form that cannot go negative:

    KL(p‖q) = Σ_i p_i ψ(u_i) + Σ_{i: p_i = 0} q_i,    u_i = (q_i − p_i)/p_i,    ψ(u) = u − log(1 + u) ≥ 0,

which equals Σ p log(p/q) when p and q each sum to 1, but is a sum of non-negative terms: no
cancellation between a cross-entropy and an entropy, so near-identical distributions give small
non-negative values in float32 too. Where |u| is small, ψ is a short power series in the exact
difference q − p; elsewhere p ψ(u) = (q − p) + p log(p/q). Zeros are safe for values and gradients
(a safe value is substituted before each ``log``, then ``where`` picks 0 or +inf).

Every function takes ``where=``, a boolean mask broadcastable to the inputs: entries where it is
False are left out, exactly as if they had been sliced away (the kept entries must sum to 1).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import check_probabilities, check_same_shape

__all__ = ["kl", "cross_entropy", "entropy", "phi", "psi", "log_ratio"]

# Taylor coefficients 1/k! for k = 2..9: φ(t) = t² Σ c_k t^(k-2), accurate to ~5e-15 for |t| ≤ 0.1.
_PHI_COEFFS = tuple(1.0 / math.factorial(k) for k in range(9, 1, -1))
_PHI_SERIES_BELOW = 0.1
# ψ(u) = Σ_{k≥2} (−u)^k / k for |u| < 0.05: 13 terms reach float64 precision, 7 float32.
_PSI_SERIES_BELOW = 0.05


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


def _psi_series(u: jax.Array) -> jax.Array:
    """Σ_{k≥2} (−u)^k / k, Horner form; enough terms for the dtype when |u| < 0.05."""
    n_terms = 13 if jnp.finfo(u.dtype).bits > 32 else 7
    series = jnp.zeros_like(u)
    for k in range(n_terms + 1, 1, -1):
        series = series * u + (1.0 if k % 2 == 0 else -1.0) / k
    return series * u * u


def psi(u: jax.Array) -> jax.Array:
    """ψ(u) = u − log(1 + u) ≥ 0 for u > −1, accurate in relative terms near 0."""
    small = jnp.abs(u) < _PSI_SERIES_BELOW
    series = _psi_series(jnp.where(small, u, 0.0))
    ul = jnp.where(small, 1.0, u)
    return jnp.where(small, series, ul - jnp.log1p(ul))


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
    """Non-negative terms p ψ((q − p)/p) (+ q where p = 0, +inf where p > 0 = q)."""
    p_pos, q_pos = p > 0, q > 0
    both = p_pos & q_pos
    ps, qs = jnp.where(both, p, 1.0), jnp.where(both, q, 1.0)
    d = qs - ps
    u = d / ps
    small = jnp.abs(u) < _PSI_SERIES_BELOW
    near = ps * _psi_series(jnp.where(small, u, 0.0))
    far = d + ps * (jnp.log(ps) - jnp.log(qs))
    terms = jnp.where(both, jnp.maximum(jnp.where(small, near, far), 0.0), 0.0)
    terms = jnp.where(p_pos, terms, q)  # p = 0: contributes q (the Σq − Σp bookkeeping)
    return jnp.where(p_pos & ~q_pos, jnp.inf, terms)


def _ce_terms(p: jax.Array, q: jax.Array) -> jax.Array:
    p_pos, q_pos = p > 0, q > 0
    terms = jnp.where(p_pos, -p * jnp.log(jnp.where(q_pos, q, 1.0)), 0.0)
    return jnp.where(p_pos & ~q_pos, jnp.inf, terms)


def _entropy_terms(p: jax.Array) -> jax.Array:
    p_pos = p > 0
    return jnp.where(p_pos, -p * jnp.log(jnp.where(p_pos, p, 1.0)), 0.0)


def _compute_dtype(*arrays: jax.Array) -> Any:
    dtype = jnp.result_type(*(a.dtype for a in arrays))
    return jnp.float32 if jnp.finfo(dtype).bits < 32 else dtype


def _mask(where: Any, shape: tuple[int, ...]) -> jax.Array | None:
    """Validate ``where`` (a boolean mask broadcastable to ``shape``) and return it as an array."""
    if where is None:
        return None
    mask = where if isinstance(where, jax.core.Tracer) else jnp.asarray(where)
    if mask.dtype != jnp.bool_:
        raise TypeError(f"Expected where to be a boolean mask; got dtype {mask.dtype}.")
    try:
        np.broadcast_shapes(mask.shape, shape)
    except ValueError as err:
        raise ValueError(f"Expected where to broadcast to shape {shape}; got shape {mask.shape}.") from err
    return mask


def _sum(terms: jax.Array, axis: int, mask: jax.Array | None) -> jax.Array:
    if mask is not None:
        terms = jnp.where(mask, terms, 0.0)
    return jnp.sum(terms, axis=axis)


def _prepare(
    p: Any, q: Any, axis: int, normalize: bool, where: Any = None
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    p = check_probabilities(p, "p", axis=axis, normalize=normalize, where=where)
    q = check_probabilities(q, "q", axis=axis, normalize=normalize, where=where)
    check_same_shape(p, q, axis=axis)
    mask = _mask(where, jnp.broadcast_shapes(p.shape, q.shape))
    compute = _compute_dtype(p, q)
    return p.astype(compute), q.astype(compute), mask


@functools.partial(jax.jit, static_argnames=("axis",))
def _kl_kernel(p: jax.Array, q: jax.Array, axis: int) -> jax.Array:
    return jnp.sum(_kl_terms(p, q), axis=axis)


def kl(
    p: Any,
    q: Any,
    *,
    axis: int = -1,
    base: float | None = None,
    normalize: bool = False,
    where: Any = None,
) -> jax.Array:
    """Kullback-Leibler divergence KL(p‖q) = Σ p log(p/q) between probability arrays.

    Args:
        p: probabilities, shape ``(..., n)`` (the outcomes along ``axis``).
        q: probabilities broadcastable with ``p``, the same ``n`` along ``axis``.
        axis: the axis of outcomes.
        base: logarithm base (``None`` for nats, 2 for bits).
        normalize: divide non-negative counts by their sum instead of requiring sums of 1.
        where: optional boolean mask broadcastable to ``p``; entries where it is False are left
            out as if sliced away (the kept entries must sum to 1, or ``normalize=True``).

    Returns:
        The divergence, shape of the broadcast batch axes; ``+inf`` where some p_i > 0 = q_i.
        Never negative.

    Example:
        >>> import kullback as kb
        >>> round(float(kb.kl([0.5, 0.5], [0.9, 0.1])), 10)
        0.5108256238
        >>> float(kb.kl([0.5, 0.5], [1.0, 0.0]))
        inf
        >>> round(float(kb.kl([0.5, 0.5, 0.3], [0.9, 0.1, 0.7], where=[True, True, False])), 6)
        0.510826
    """
    p, q, mask = _prepare(p, q, axis, normalize, where)
    if mask is None and p.shape == q.shape:
        return _scale(_kl_kernel(p, q, axis), base)
    return _scale(_sum(_kl_terms(p, q), axis, mask), base)


def cross_entropy(
    p: Any,
    q: Any,
    *,
    axis: int = -1,
    base: float | None = None,
    normalize: bool = False,
    where: Any = None,
) -> jax.Array:
    """Cross-entropy H(p, q) = −Σ p log q = H(p) + KL(p‖q) between probability arrays.

    Args and Returns as :func:`kl`; 0·log 0 = 0 and +inf where some p_i > 0 = q_i.

    Example:
        >>> import kullback as kb
        >>> round(float(kb.cross_entropy([0.5, 0.5], [0.9, 0.1])), 6)
        1.203973
    """
    p, q, mask = _prepare(p, q, axis, normalize, where)
    return _scale(_sum(_ce_terms(p, q), axis, mask), base)


def entropy(
    p: Any,
    *,
    axis: int = -1,
    base: float | None = None,
    normalize: bool = False,
    where: Any = None,
) -> jax.Array:
    """Shannon entropy H(p) = −Σ p log p of a probability array (0·log 0 = 0).

    Args:
        p: probabilities, shape ``(..., n)``.
        axis, base, normalize, where: as in :func:`kl`.

    Returns:
        The entropy, shape of the batch axes; never negative.

    Example:
        >>> import kullback as kb
        >>> float(kb.entropy([0.5, 0.5], base=2))
        1.0
    """
    p = check_probabilities(p, "p", axis=axis, normalize=normalize, where=where)
    mask = _mask(where, p.shape)
    p = p.astype(_compute_dtype(p))
    return _scale(_sum(_entropy_terms(p), axis, mask), base)
