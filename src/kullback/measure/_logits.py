"""KL, cross-entropy and entropy from logits (unnormalised log-probabilities): streamed, masked.

They stream over blocks of rows (see :mod:`kullback.measure._streaming`): no extra rows ×
vocabulary array is made in the forward or the backward pass. The rest of the family (Jensen-
Shannon, Rényi, skew KL, total variation, TRL's generalised JSD) is in :mod:`._logits_family`
and shares the checks, the mask and the reductions defined here.

Reductions: ``"none"`` (the batch shape), ``"sum"``, ``"mean"`` (over the rows kept by
``where``) and ``"batchmean"``: torch's ``kl_div(..., reduction="batchmean")``, the sum divided
by the size of the first batch axis (rows kept or not), so that for ``(batch, seq, V)`` logits it
is the per-sequence sum averaged over the batch; for ``(rows, V)`` without a mask it equals
``"mean"``. TRL's ``"batchmean"`` with ``labels`` divides by the kept tokens: that is ``"mean"``
with ``where=labels != -100`` here.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..distributed._measure import dask_dispatch
from .._validate import as_float_array, check_mask, is_traced
from . import _streaming
from ._discrete import _scale

__all__ = ["kl", "cross_entropy", "entropy"]

_REDUCTIONS = ("none", "mean", "sum", "batchmean")


def _as_logits(x: Any, name: str, axis: int = -1) -> jax.Array:
    arr = as_float_array(x, name)
    if arr.ndim == 0:
        raise ValueError(f"Expected {name} to have at least one axis (the vocabulary); got a scalar.")
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(f"axis={axis} is out of range for {name} of shape {arr.shape}.")
    if arr.shape[axis] == 0:
        raise ValueError(f"Expected {name} to have a non-empty vocabulary along axis {axis}; got shape {arr.shape}.")
    return arr


def _check_options(temperature: float, reduction: str) -> None:
    if not isinstance(temperature, (int, float)) or not temperature > 0 or not np.isfinite(temperature):
        raise ValueError(f"Expected temperature to be a positive finite number; got {temperature!r}.")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"Expected reduction to be one of {_REDUCTIONS}; got {reduction!r}.")


def _diagnose(values: jax.Array, arrays: dict[str, jax.Array], axis: int) -> None:
    """Validation after the fact: a NaN result means a NaN or +inf logit, or a row of −inf only.

    Outside jit each is an error that names the argument and where; inside jit the NaN stays.
    """
    if is_traced(values, *arrays.values()) or not np.isnan(np.asarray(values)).any():
        return
    for name, arr in arrays.items():
        host = np.asarray(arr, dtype=np.float32) if arr.dtype.itemsize < 4 else np.asarray(arr)
        bad = np.isnan(host) | np.isposinf(host)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"Expected {name} to contain no NaN or +inf (-inf is allowed, for probability 0); "
                f"it has {int(bad.sum())} such entries (the first at index {first})."
            )
    for name, arr in arrays.items():
        host = np.asarray(arr, dtype=np.float32) if arr.dtype.itemsize < 4 else np.asarray(arr)
        dead = np.all(np.isneginf(host), axis=axis)
        if dead.any():
            first = tuple(int(i) for i in np.argwhere(dead)[0])
            raise ValueError(
                f"Expected every row of {name} to have a finite logit (all -inf is no distribution); "
                f"{int(dead.sum())} rows are all -inf along axis {axis} (the first at batch index {first})."
            )


def _reduce(values: jax.Array, where: Any, reduction: str) -> jax.Array:
    if where is not None:
        mask = check_mask(where)
        try:
            mask = jnp.broadcast_to(mask, values.shape)
        except ValueError as err:
            raise ValueError(
                f"Expected where to broadcast to the batch shape {values.shape}; got shape {mask.shape}."
            ) from err
        values = jnp.where(mask, values, 0.0)
    if reduction == "none":
        return values
    if reduction == "sum":
        return jnp.sum(values)
    if reduction == "batchmean":  # torch's: divided by the first batch axis, kept rows or not
        return jnp.sum(values) / (values.shape[0] if values.ndim else 1)
    count = values.size if where is None else jnp.sum(mask)
    return jnp.sum(values) / jnp.maximum(count, 1)


def _rows(x: jax.Array, axis: int) -> tuple[jax.Array, tuple[int, ...]]:
    x = jnp.moveaxis(x, axis, -1) if axis not in (-1, x.ndim - 1) else x
    return x.reshape(-1, x.shape[-1]), x.shape[:-1]


def _pair(logits_p: Any, logits_q: Any, axis: int) -> tuple[jax.Array, jax.Array]:
    lp, lq = _as_logits(logits_p, "logits_p", axis), _as_logits(logits_q, "logits_q", axis)
    if lp.shape != lq.shape:
        raise ValueError(f"Expected logits_p and logits_q to have the same shape; got {lp.shape} and {lq.shape}.")
    if lp.dtype != lq.dtype:
        dtype = jnp.result_type(lp.dtype, lq.dtype)
        lp, lq = lp.astype(dtype), lq.astype(dtype)
    return lp, lq


def _block(chunk_size: int | None, n: int, v: int) -> int:
    if chunk_size is None:
        return _streaming.default_block(n, v)
    if int(chunk_size) < 1:
        raise ValueError(f"Expected chunk_size to be a positive number of rows; got {chunk_size}.")
    return min(int(chunk_size), n)


@dask_dispatch(__name__, "kl", 2)  # Dask arrays: per block of rows (kullback.distributed)
def kl(
    logits_p: Any,
    logits_q: Any,
    *,
    axis: int = -1,
    temperature: float = 1.0,
    where: Any = None,
    reduction: str = "none",
    base: float | None = None,
    chunk_size: int | None = None,
) -> jax.Array:
    """KL(p‖q) between p = softmax(logits_p / T) and q = softmax(logits_q / T), streamed.

    KL(p‖q) = Σ_i p_i (log p_i − log q_i), computed as log(1 + Σ p φ(x)) with x the centred
    log-ratio and φ(x) = eˣ − 1 − x ≥ 0: never negative, accurate for near-identical rows.
    Argument order is the math order (teacher first for forward distillation); torch's
    ``kl_div(input, target)`` is KL(target‖input).

    Args:
        logits_p: logits of p, shape ``(..., V)`` (vocabulary along ``axis``); any float dtype,
            bfloat16/float16 are computed in float32. ``-inf`` marks probability 0.
        logits_q: logits of q, the same shape.
        axis: the vocabulary axis.
        temperature: T > 0, dividing both logits (a static Python number).
        where: boolean mask of rows (shape of the batch axes): False rows (padding) give 0 and
            are left out of ``"mean"``.
        reduction: ``"none"`` (per row, the batch shape), ``"mean"`` (over kept rows), ``"sum"``
            or ``"batchmean"`` (torch's: the sum over the size of the first batch axis).
        base: logarithm base (``None`` for nats).
        chunk_size: rows per streamed block (default: about 2^18 entries per block).

    Returns:
        Per-row KL (batch shape) or its mean / sum over kept rows, float32 or float64.

    Example:
        >>> import kullback as kb
        >>> round(float(kb.logits.kl([0.0, 0.0], [1.0, -1.0])), 6)
        0.433781
        >>> kb.logits.kl([[0.0, 0.0], [5.0, 5.0]], [[1.0, -1.0], [2.0, 2.0]], reduction="mean").round(6)
        Array(0.21689, dtype=float64)
    """
    return _streamed(_streaming.streamed_kl, (logits_p, logits_q), axis, temperature, where, reduction, base, chunk_size)


@dask_dispatch(__name__, "cross_entropy", 2)  # Dask arrays: per block of rows (kullback.distributed)
def cross_entropy(
    logits_p: Any,
    logits_q: Any,
    *,
    axis: int = -1,
    temperature: float = 1.0,
    where: Any = None,
    reduction: str = "none",
    base: float | None = None,
    chunk_size: int | None = None,
) -> jax.Array:
    """Cross-entropy H(p, q) = −Σ p log q from logits, streamed; H(p, q) = H(p) + KL(p‖q).

    With one-hot p (logits_p of −inf but one 0) this is the usual token loss. Args as :func:`kl`.

    Example:
        >>> import kullback as kb
        >>> round(float(kb.logits.cross_entropy([0.0, 0.0], [1.0, -1.0])), 6)
        1.126928
    """
    return _streamed(
        _streaming.streamed_cross_entropy, (logits_p, logits_q), axis, temperature, where, reduction, base, chunk_size
    )


@dask_dispatch(__name__, "entropy", 1)  # Dask arrays: per block of rows (kullback.distributed)
def entropy(
    logits_p: Any,
    *,
    axis: int = -1,
    temperature: float = 1.0,
    where: Any = None,
    reduction: str = "none",
    base: float | None = None,
    chunk_size: int | None = None,
) -> jax.Array:
    """Entropy H(p) = −Σ p log p of p = softmax(logits_p / T), streamed. Args as :func:`kl`.

    Example:
        >>> import kullback as kb
        >>> round(float(kb.logits.entropy([0.0, 0.0, 0.0, 0.0], base=2)), 6)
        2.0
    """
    return _streamed(_streaming.streamed_entropy, (logits_p,), axis, temperature, where, reduction, base, chunk_size)


def _streamed(fn, logits, axis, temperature, where, reduction, base, chunk_size, **options) -> jax.Array:
    _check_options(temperature, reduction)
    if len(logits) == 2:
        arrays = _pair(*logits, axis)
        names = ("logits_p", "logits_q")
    else:
        arrays = (_as_logits(logits[0], "logits_p", axis),)
        names = ("logits_p",)
    flat = [_rows(a, axis) for a in arrays]
    batch = flat[0][1]
    n, v = flat[0][0].shape
    values = fn(*(f[0] for f in flat), temperature=float(temperature), block=_block(chunk_size, n, v), **options)
    _diagnose(values, dict(zip(names, arrays)), axis)
    return _scale(_reduce(values.reshape(batch), where, reduction), base)
