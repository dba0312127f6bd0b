"""The binary cross-entropy of a Bernoulli label against logits: the per-example forward KL term.

For a label y ∈ [0, 1] and a logit η (the model says P(Y = 1) = σ(η)):

    ℓ(η, y) = −y log σ(η) − (1 − y) log σ(−η) = −yη + softplus(η).

Written as ``−yη + softplus(η)`` the two terms cancel for confident correct predictions
(y = 1, η = 40 loses every digit), so it is evaluated in the equivalent branch form

    η ≤ 0:  softplus(η) − yη,        η > 0:  softplus(−η) + (1 − y)η,

where each softplus argument is ≤ 0 (no overflow, no cancellation) and, for y ∈ {0, 1}, the
linear term is an exact product. Both branches are the same analytic function, so the gradient
σ(η) − y is exact on either side of 0 as well.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import as_float_array, is_traced
from ._objective import row_loss

__all__ = ["binary_cross_entropy", "softmax_cross_entropy"]


def _bce(logits: jax.Array, y: jax.Array) -> jax.Array:
    positive = logits > 0
    # Each branch is finite for every finite logit, so the unselected one cannot poison gradients.
    negative_branch = jax.nn.softplus(logits) - y * logits
    positive_branch = jax.nn.softplus(-logits) + (1 - y) * logits
    return jnp.where(positive, positive_branch, negative_branch)


def binary_cross_entropy(logits: Any, y: Any, *, where: Any = None) -> jax.Array:
    """Binary cross-entropy of labels ``y`` under Bernoulli(σ(logits)), per element.

    .. math::

        ℓ(η, y) = −y \\log σ(η) − (1 − y) \\log σ(−η) = −yη + \\mathrm{softplus}(η),

    the cross-entropy H(Bernoulli(y), Bernoulli(σ(η))); its mean over examples is the forward
    KL objective of logistic regression (up to the labels' own entropy, which is 0 for 0/1
    labels). Evaluated without cancellation: exact in float64 for |η| in the thousands, and the
    gradient with respect to ``logits`` is σ(η) − y, finite everywhere.

    Args:
        logits: the log-odds η of the positive class, any shape.
        y: labels or target probabilities in [0, 1], broadcastable with ``logits``.
        where: optional boolean mask broadcastable with both; masked-out elements give 0 (and a
            zero gradient, whatever their logits hold).

    Returns:
        The per-element loss in nats, shape of the broadcast of ``logits`` and ``y``; ≥ 0.

    Example:
        >>> import kullback as kb
        >>> [round(float(v), 6) for v in kb.glm.binary_cross_entropy([0.0, 2.0, -1000.0], [1, 1, 1])]
        [0.693147, 0.126928, 1000.0]
    """
    logits = as_float_array(logits, "logits")
    y = as_float_array(y, "y")
    try:
        shape = jnp.broadcast_shapes(logits.shape, y.shape)
    except ValueError as err:
        raise ValueError(
            f"Expected logits and y to have broadcastable shapes; got {logits.shape} and {y.shape}."
        ) from err
    if not is_traced(y, where):
        host = np.asarray(y)
        if where is not None:  # masked-out labels may hold anything (padding)
            full = np.broadcast_shapes(shape, np.shape(where))
            host = np.broadcast_to(host, full)[np.broadcast_to(np.asarray(where, dtype=bool), full)]
        if np.isnan(host).any() or (host < 0).any() or (host > 1).any():
            raise ValueError(
                f"Expected y to hold labels or probabilities in [0, 1]; got values in "
                f"[{np.nanmin(host):.6g}, {np.nanmax(host):.6g}]"
                f"{' and NaN' if np.isnan(host).any() else ''}."
            )
    dtype = jnp.result_type(logits.dtype, y.dtype)
    logits, y = logits.astype(dtype), y.astype(dtype)
    if where is None:
        return _bce(logits, y)
    mask = jnp.broadcast_to(jnp.asarray(where, dtype=bool), jnp.broadcast_shapes(shape, jnp.shape(where)))
    safe_logits = jnp.where(mask, logits, 0.0)  # double-where: masked-out NaN/inf stay out of grads
    safe_y = jnp.where(mask, y, 0.0)
    return jnp.where(mask, _bce(safe_logits, safe_y), 0.0)


def softmax_cross_entropy(logits: Any, labels: Any, *, where: Any = None) -> jax.Array:
    """Softmax cross-entropy of integer class labels under Categorical(softmax(logits)), per row.

    .. math::

        ℓ(L, y) = −\\log \\mathrm{softmax}(L)_y = \\mathrm{softplus}\\Big(\\log \\sum_{k ≠ y} e^{L_k} − L_y\\Big),

    the cross-entropy of the one-hot label against the model; its mean is the forward KL
    objective of softmax regression. The softplus form has no cancellation: a confident correct
    row gives its tiny loss to full relative precision, and the gradient softmax(L) − onehot(y)
    is finite everywhere. With two classes and logits [0, η] it equals
    :func:`binary_cross_entropy`.

    Args:
        logits: shape ``(..., K)``, the classes on the last axis, K ≥ 2.
        labels: integer class indices in [0, K), shape ``(...)``.
        where: optional boolean mask of shape ``(...)``; masked-out rows give 0.

    Returns:
        The per-row loss in nats, shape ``(...)``; ≥ 0.

    Example:
        >>> import kullback as kb
        >>> loss = kb.glm.softmax_cross_entropy([[0.0, 0.0, 0.0], [1000.0, 0.0, -1000.0]], [1, 2])
        >>> [round(float(v), 6) for v in loss]
        [1.098612, 2000.0]
    """
    logits = as_float_array(logits, "logits")
    if logits.ndim < 1 or logits.shape[-1] < 2:
        raise ValueError(f"Expected logits to have at least 2 classes on the last axis; got shape {logits.shape}.")
    K = logits.shape[-1]
    labels_arr = jnp.asarray(labels)
    if not jnp.issubdtype(labels_arr.dtype, jnp.integer):
        raise TypeError(f"Expected labels to be integer class indices; got dtype {labels_arr.dtype}.")
    if labels_arr.shape != logits.shape[:-1]:
        raise ValueError(
            f"Expected labels to have shape {logits.shape[:-1]}, one per row of logits; got {labels_arr.shape}."
        )
    if not is_traced(labels_arr, where):
        host = np.asarray(labels_arr)
        if where is not None:
            host = host[np.broadcast_to(np.asarray(where, dtype=bool), host.shape)]
        if host.size and (host.min() < 0 or host.max() >= K):
            raise ValueError(f"Expected labels in [0, {K}); got values in [{host.min()}, {host.max()}].")
    onehot = jax.nn.one_hot(labels_arr, K, dtype=logits.dtype)
    flat_L, flat_Y = logits.reshape(-1, K), onehot.reshape(-1, K)
    if where is None:
        return row_loss(flat_L, flat_Y).reshape(logits.shape[:-1])
    mask = jnp.broadcast_to(jnp.asarray(where, dtype=bool), logits.shape[:-1]).reshape(-1)
    safe = jnp.where(mask[:, None], flat_L, 0.0)
    return jnp.where(mask, row_loss(safe, flat_Y), 0.0).reshape(logits.shape[:-1])
