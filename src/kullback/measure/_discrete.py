"""KL divergence, cross-entropy and entropy between probability arrays.

The KL is computed in the form that cannot go negative:

    KL(p‖q) = Σ_i p_i ψ(u_i) + Σ_{i: p_i = 0} q_i,    u_i = (q_i − p_i)/p_i,    ψ(u) = u − log(1 + u) ≥ 0,

which equals Σ p log(p/q) when p and q each sum to 1, but is a sum of non-negative terms: no
cancellation between a cross-entropy and an entropy, so near-identical distributions give small
non-negative values in float32 too. Where |u| is small, ψ is a short power series in the exact
difference q − p; elsewhere p ψ(u) = (q − p) + p log(p/q). Zeros are safe for values and gradients
(a safe value is substituted before each ``log``, then ``where`` picks 0 or +inf).

Speed (``kl`` on concrete float32/float64 arrays, outcomes on the last axis, no mask): each row is
first computed by one fused pass with one ``log`` per entry, −Σ p log(q/p), plus Σ q − Σ p from
the validation sums (so that both paths compute the same quantity off the simplex). Its rounding
error is at most about ε (3 + 4.3/√KL + 2/KL) in relative terms (ε the machine epsilon;
Σ p |log(p/q)| ≤ KL + √(2 KL) by Pinsker), so rows with KL ≥ 1/16 keep it (relative error below
~60 ε plus the summation error that every form has); rows below 1/16, rows with a NaN or a
negative value, and rows holding a zero or subnormal entry are recomputed with the form above.
Rows go to XLA in blocks of about 2^18 entries; validation (row sums, minimum, NaN) runs on the
host on each block while XLA computes. Blocks not 64-byte aligned (``device_put`` aliases only
aligned memory) are copied into two reused aligned buffers: no full copy of a NumPy input.

Every function takes ``where=``, a boolean mask broadcastable to the inputs: entries where it is
False are left out, exactly as if they had been sliced away (the kept entries must sum to 1).
Integer masks of 0 and 1 are accepted as booleans; other dtypes are an error.

Inside ``jax.jit`` nothing is validated, so the terms carry every NaN of p or q to the result
(and its gradient): a NaN is never taken for a probability of 0.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from .._validate import check_mask, check_probabilities, check_probability_stats, check_same_shape, is_traced

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


def _nan_in(p: jax.Array, q: jax.Array | None = None) -> jax.Array:
    """Where an input is NaN: the terms are NaN there (a NaN is never read as "probability 0")."""
    return jnp.isnan(p) if q is None else jnp.isnan(p) | jnp.isnan(q)


def _kl_values(p: jax.Array, q: jax.Array) -> jax.Array:
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
    terms = jnp.where(p_pos & ~q_pos, jnp.inf, terms)
    return jnp.where(_nan_in(p, q), jnp.nan, terms)


@jax.custom_jvp
def _kl_terms(p: jax.Array, q: jax.Array) -> jax.Array:
    """Non-negative terms p ψ((q − p)/p) (+ q where p = 0, +inf where p > 0 = q, NaN where NaN).

    The derivatives are written out, ∂/∂p = log(p/q) and ∂/∂q = (q − p)/q (0 and 1 where p = 0,
    0 where the term is +inf): differentiating ``(q − p)/p`` itself squares p, which is 0 in
    floating point below ~1e-154 (float64) and gave NaN gradients at tiny but exact inputs.
    """
    return _kl_values(p, q)


def _kl_terms_jvp(primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    p, q = primals
    dp, dq = tangents
    value = _kl_values(p, q)
    p_pos, q_pos, nan = p > 0, q > 0, _nan_in(p, q)
    both = p_pos & q_pos
    ps, qs = jnp.where(both, p, 1.0), jnp.where(both, q, 1.0)
    out = jnp.zeros_like(value)
    # a zero tangent (an argument not differentiated) is skipped: a huge ∂/∂q must not meet 0·inf
    if not isinstance(dp, SymbolicZero):
        gp = jnp.where(nan, jnp.nan, jnp.where(both, -log_ratio(qs, ps), 0.0))
        out = out + gp * dp
    if not isinstance(dq, SymbolicZero):
        gq = jnp.where(both, (qs - ps) / qs, jnp.where(p_pos, 0.0, 1.0))
        out = out + jnp.where(nan, jnp.nan, gq) * dq
    return value, out


_kl_terms.defjvp(_kl_terms_jvp, symbolic_zeros=True)


def _ce_terms(p: jax.Array, q: jax.Array) -> jax.Array:
    p_pos, q_pos = p > 0, q > 0
    terms = jnp.where(p_pos, -p * jnp.log(jnp.where(q_pos, q, 1.0)), 0.0)
    terms = jnp.where(p_pos & ~q_pos, jnp.inf, terms)
    return jnp.where(_nan_in(p, q), jnp.nan, terms)


def _entropy_terms(p: jax.Array) -> jax.Array:
    p_pos = p > 0
    terms = jnp.where(p_pos, -p * jnp.log(jnp.where(p_pos, p, 1.0)), 0.0)
    return jnp.where(_nan_in(p), jnp.nan, terms)


def _compute_dtype(*arrays: jax.Array) -> Any:
    dtype = jnp.result_type(*(a.dtype for a in arrays))
    return jnp.float32 if jnp.finfo(dtype).bits < 32 else dtype


def _mask(where: Any, shape: tuple[int, ...]) -> jax.Array | None:
    """Validate ``where`` (a boolean or 0/1 mask broadcastable to ``shape``) and return it as bool."""
    if where is None:
        return None
    mask = check_mask(where)
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
    where = None if where is None else check_mask(where)  # before the sums: a bad mask is named as such
    p = check_probabilities(p, "p", axis=axis, normalize=normalize, where=where)
    q = check_probabilities(q, "q", axis=axis, normalize=normalize, where=where)
    check_same_shape(p, q, axis=axis)
    mask = _mask(where, jnp.broadcast_shapes(p.shape, q.shape))
    compute = _compute_dtype(p, q)
    return p.astype(compute), q.astype(compute), mask


@functools.partial(jax.jit, static_argnames=("axis",))
def _kl_kernel(p: jax.Array, q: jax.Array, axis: int) -> jax.Array:
    return jnp.sum(_kl_terms(p, q), axis=axis)


# ---- fast path for concrete arrays (see the module docstring) -------------------------------

_FAST_KEEP_ABOVE = 1.0 / 16.0  # rows with a fast value below are recomputed with the stable form
_BLOCK_ELEMENTS = 1 << 18  # entries per block and input (2 MiB of float64): measured best of 2^16..2^21


@jax.jit
def _fast_rows(p: jax.Array, q: jax.Array) -> jax.Array:
    """Σ p log(p/q) along the last axis, one log per entry (NaN where p = 0)."""
    return -jnp.sum(p * jnp.log(q / p), axis=-1)


def _eligible(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return x.dtype in (np.float32, np.float64) and x.flags.c_contiguous
    if isinstance(x, jax.Array) and not is_traced(x):
        return x.dtype in (jnp.float32, jnp.float64) and all(d.platform == "cpu" for d in x.devices())
    return False


def _aligned_empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An empty array whose data start at a 64-byte boundary, which ``jax.device_put`` aliases."""
    n = math.prod(shape)
    buf = np.empty(n + 64 // np.dtype(dtype).itemsize, dtype)
    start = (-buf.ctypes.data % 64) // buf.itemsize
    return buf[start : start + n].reshape(shape)


def _host_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.sum(axis=-1), x.min(axis=-1)


def _fast_blocks(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fast rows of host (M, V) arrays, block by block, with the host statistics of each block.

    A block that starts on a 64-byte boundary is handed to XLA in place (``device_put`` aliases
    it); any other is first copied into one of two reused aligned buffers. Small blocks keep the
    statistics pass in cache and overlap it with XLA's work on the previous block.
    """
    m, v = p.shape
    rows = max(1, min(m, _BLOCK_ELEMENTS // max(v, 1)))
    buffers: list = [None, None]
    pending: list = [None, None]
    stats = np.empty((4, m), p.dtype)  # sums and minima of p, then of q, per row
    results = []
    for i, start in enumerate(range(0, m, rows)):
        start = min(start, m - rows)  # the last block overlaps the previous one: no padding
        blocks = [p[start : start + rows], q[start : start + rows]]
        if any(b.ctypes.data % 64 for b in blocks):
            if buffers[i % 2] is None:
                buffers[i % 2] = [_aligned_empty((rows, v), p.dtype) for _ in blocks]
            elif pending[i % 2] is not None:
                pending[i % 2].block_until_ready()  # XLA reads this buffer in place
            for k, b in enumerate(blocks):
                if b.ctypes.data % 64:
                    np.copyto(buffers[i % 2][k], b)
                    blocks[k] = buffers[i % 2][k]
        out = _fast_rows(jax.device_put(blocks[0]), jax.device_put(blocks[1]))
        pending[i % 2] = out
        results.append((start, out))
        part = stats[:, start : start + rows]
        part[0], part[1] = _host_stats(blocks[0])
        part[2], part[3] = _host_stats(blocks[1])
    values = np.empty(m, p.dtype)
    for start, out in results:
        values[start : start + rows] = np.asarray(out)
    return values, stats


def _kl_fast(p: Any, q: Any, axis: int) -> jax.Array | None:
    """KL rows of concrete float arrays by the one-log pass with stable recomputation, or None."""
    if not (_eligible(p) and _eligible(q)) or p.shape != q.shape or p.dtype != q.dtype:
        return None
    if p.ndim == 0 or p.size == 0 or axis not in (-1, p.ndim - 1):
        return None
    if p.dtype == np.float64 and not jax.config.jax_enable_x64:
        return None
    shape, v = p.shape[:-1], p.shape[-1]
    hp, hq = np.asarray(p).reshape(-1, v), np.asarray(q).reshape(-1, v)  # views, no copies
    values, (sp, mp, sq, mq) = _fast_blocks(hp, hq)
    for name, sums, mins, host in (("p", sp, mp, hp), ("q", sq, mq, hq)):
        check_probability_stats(sums, mins.min(), name, axis=axis, dtype=p.dtype, host=host)
    values = values + (sq - sp)  # the Σ q − Σ p of the stable form: both paths agree off the simplex
    tiny = 4 * np.finfo(p.dtype).tiny  # zero or subnormal entries: the ratio q/p may lose digits
    redo = np.flatnonzero(~(values >= _FAST_KEEP_ABOVE) | (mp < tiny) | (mq < tiny))
    if redo.size:
        size = 1 << int(redo.size - 1).bit_length()  # pad to a power of two: few compilations
        take = np.concatenate([redo, np.full(size - redo.size, redo[0])])
        again = _kl_kernel(jnp.asarray(hp[take]), jnp.asarray(hq[take]), -1)
        values[redo] = np.asarray(again)[: redo.size]
    return jnp.asarray(values.reshape(shape))


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
    if where is None and not normalize:
        fast = _kl_fast(p, q, axis)
        if fast is not None:
            return _scale(fast, base)
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
    where = None if where is None else check_mask(where)
    p = check_probabilities(p, "p", axis=axis, normalize=normalize, where=where)
    mask = _mask(where, p.shape)
    p = p.astype(_compute_dtype(p))
    return _scale(_sum(_entropy_terms(p), axis, mask), base)
