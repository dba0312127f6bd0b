"""Public losses fused with the output layer: ``kb.logits.linear_kl`` and its relatives.

Logits ``h wᵀ + b`` (w in torch's ``(vocab, hidden)`` layout) are computed tile by tile of rows ×
vocabulary and never held whole; see :mod:`._linear` for the sweeps and their gradients.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import as_float_array, check_mask, is_traced
from . import _linear
from ._divergences import _check_unit
from ._logits import _check_options

__all__ = ["linear_kl", "linear_cross_entropy", "linear_jensen_shannon"]

_WRT = ("q", "p", "both")


def _side(h: Any, w: Any, bias: Any, name: str) -> tuple[jax.Array, ...]:
    h = as_float_array(h, f"h_{name}")
    if w is None:
        return (h,)
    w = as_float_array(w, f"w_{name}")
    if w.ndim != 2 or h.ndim < 1 or h.shape[-1] != w.shape[1]:
        raise ValueError(
            f"Expected w_{name} of shape (vocab, hidden) with hidden = h_{name}.shape[-1]; "
            f"got h_{name} {h.shape} and w_{name} {w.shape}."
        )
    b = jnp.zeros((w.shape[0],), w.dtype) if bias is None else as_float_array(bias, f"bias_{name}")
    if b.shape != (w.shape[0],):
        raise ValueError(f"Expected bias_{name} of shape ({w.shape[0]},); got {b.shape}.")
    return h, w, b


def _common_dtype(sides):
    arrays = [a for s in sides if s is not None for a in s]
    if any(a.dtype == jnp.float64 for a in arrays):
        return tuple(None if s is None else tuple(a.astype(jnp.float64) for a in s) for s in sides)
    return sides


def _flatten(sides, labels, batch):
    def rows(a, k):
        return a.reshape((-1,) + a.shape[len(batch):]) if k == 0 else a

    sides = tuple(None if s is None else tuple(rows(a, k) for k, a in enumerate(s)) for s in sides)
    return sides, (None if labels is None else labels.reshape(-1))


def _row_weights(where: Any, batch: tuple[int, ...], reduction: str, dtype) -> jax.Array:
    mask = jnp.ones(batch, bool) if where is None else check_mask(where)
    try:
        mask = jnp.broadcast_to(mask, batch)
    except ValueError as err:
        raise ValueError(f"Expected where to broadcast to the batch shape {batch}; got shape {mask.shape}.") from err
    weights = mask.astype(dtype)
    if reduction == "mean":
        weights = weights / jnp.maximum(jnp.sum(weights), 1.0)
    elif reduction == "batchmean":
        weights = weights / (batch[0] if batch else 1)
    return weights.reshape(-1)


def _check_nan(value: jax.Array, arrays: dict[str, Any]) -> None:
    if is_traced(value, *arrays.values()) or not np.isnan(np.asarray(value)).any():
        return
    for name, arr in arrays.items():
        host = np.asarray(arr, dtype=np.float64)
        if np.isnan(host).any() or np.isposinf(host).any():
            raise ValueError(f"Expected {name} to contain no NaN or +inf; it has {int((np.isnan(host) | np.isposinf(host)).sum())}.")


def _fused(form, p_side, q_side, labels, params, *, temperature, where, reduction, wrt, block_rows, block_vocab):
    _check_options(temperature, reduction)
    if wrt not in _WRT:
        raise ValueError(f"Expected wrt to be one of {_WRT}; got {wrt!r}.")
    h_q, w_q = q_side[0], q_side[1]
    batch, vocab = h_q.shape[:-1], w_q.shape[0]
    if p_side is not None:
        want = batch + (vocab,) if len(p_side) == 1 else batch + (p_side[1].shape[1],)
        if p_side[0].shape != want or (len(p_side) == 3 and p_side[1].shape[0] != vocab):
            raise ValueError(
                f"Expected p's side to match q's rows {batch} and vocabulary {vocab}: logits of shape "
                f"{batch + (vocab,)}, or hidden states {want} with w_p of shape ({vocab}, hidden); got "
                f"{p_side[0].shape}" + ("" if len(p_side) == 1 else f" and w_p {p_side[1].shape}") + "."
            )
    sides, labels = _flatten(_common_dtype((p_side, q_side)), labels, batch)
    n = int(np.prod(batch, dtype=int))
    block, chunk = _linear.default_tiles(n, vocab)
    block = block if block_rows is None else max(1, min(int(block_rows), n))
    chunk = chunk if block_vocab is None else max(1, min(int(block_vocab), vocab))
    p_logits = p_side is not None and len(p_side) == 1
    cfg = _linear.Config(form, wrt, p_logits, float(temperature), block, chunk)
    dt = jnp.float64 if sides[1][0].dtype == jnp.float64 else jnp.float32
    params = tuple(jnp.asarray(x, dt) for x in params)
    if reduction == "none":
        values = _linear.fused_rows(cfg, sides, params, labels)
        if where is not None:
            values = jnp.where(_row_weights(where, batch, "sum", dt) > 0, values, 0.0)
        out = values.reshape(batch)
    else:
        out = _linear.fused_loss(cfg, sides, params, _row_weights(where, batch, reduction, dt), labels)
    names = {"h_q": sides[1][0], "w_q": sides[1][1]}
    if sides[0] is not None:
        names.update({"logits_p" if p_logits else "h_p": sides[0][0]})
    _check_nan(out, names)
    return out


def linear_kl(
    h_p: Any, w_p: Any, h_q: Any, w_q: Any, *, bias_p: Any = None, bias_q: Any = None,
    temperature: float = 1.0, where: Any = None, reduction: str = "mean", wrt: str = "q",
    block_rows: int | None = None, block_vocab: int | None = None,
) -> jax.Array:
    """KL(p‖q) with p = softmax((h_p w_pᵀ + b_p) / T), q = softmax((h_q w_qᵀ + b_q) / T), fused.

    Per row, KL = Σ p φ(log q − log p) with φ(a) = eᵃ − 1 − a ≥ 0 (never negative), from the
    exact log-normalisers of an online log-sum-exp over vocabulary chunks. Gradient with respect
    to q's logits: (q − p) / T, then ∂h_q = g w_q, ∂w_q = gᵀ h_q, ∂b_q = Σ g tile by tile; the
    (rows × V) logits are never held. Forward distillation: teacher p first (the math order;
    torch's ``kl_div(input, target)`` is KL(target‖input)).

    Args:
        h_p: p's hidden states ``(..., D_p)``; or, with ``w_p=None``, p's logits ``(..., V)``.
        w_p: p's output layer ``(V, D_p)`` (torch's ``Linear.weight`` layout), or None.
        h_q: q's hidden states ``(..., D_q)``, the same batch shape ``...`` (rows: tokens).
        w_q: q's output layer ``(V, D_q)``.
        bias_p, bias_q: optional ``(V,)`` biases.
        temperature: T > 0 dividing both sides' logits (a static number).
        where: boolean row mask of the batch shape (False rows: padding, left out).
        reduction: ``"mean"`` (the default here: over kept rows), ``"sum"``, ``"batchmean"``
            (torch's: the sum over the first batch axis) or ``"none"`` (per row; its gradient
            recomputes the tiles in the backward pass, the scalar ones compute it in the forward).
        wrt: whose gradients are computed: ``"q"`` (the default: p is the teacher, held fixed as
            by ``jax.lax.stop_gradient``), ``"p"`` or ``"both"``; the other side's are zero.
        block_rows, block_vocab: tile size (default: all rows up to 4096 × about 2^20 entries).

    Returns:
        The reduced loss (a scalar), or per-row values of the batch shape for ``"none"``;
        float32 (float64 when an input is float64), bfloat16 / float16 inputs computed in float32.

    Example:
        >>> import numpy as np, kullback as kb
        >>> rng = np.random.default_rng(0)
        >>> h_t, w_t = rng.normal(size=(6, 4)), rng.normal(size=(50, 4))
        >>> h_s, w_s = rng.normal(size=(6, 3)), rng.normal(size=(50, 3))
        >>> fused = kb.logits.linear_kl(h_t, w_t, h_s, w_s)
        >>> bool(np.isclose(fused, kb.logits.kl(h_t @ w_t.T, h_s @ w_s.T, reduction="mean"), rtol=1e-12))
        True
    """
    p = _side(h_p, w_p, bias_p, "p")
    return _fused("kl", p, _side(h_q, w_q, bias_q, "q"), None, (), temperature=temperature, where=where,
                  reduction=reduction, wrt=wrt, block_rows=block_rows, block_vocab=block_vocab)


def linear_cross_entropy(
    targets: Any, w_p: Any, h_q: Any, w_q: Any, *, bias_p: Any = None, bias_q: Any = None,
    temperature: float = 1.0, where: Any = None, reduction: str = "mean", wrt: str = "q",
    ignore_index: int = -100, block_rows: int | None = None, block_vocab: int | None = None,
) -> jax.Array:
    """Cross-entropy H(p, q) = −Σ p log q with q = softmax((h_q w_qᵀ + b_q) / T), fused.

    ``targets`` is p: integer class labels ``(...)`` (``w_p=None``: the usual token loss
    log Σ exp(t) − t_label, with labels equal to ``ignore_index`` left out as torch does), soft
    targets as logits ``(..., V)`` (``w_p=None``), or hidden states with ``w_p`` as in
    :func:`linear_kl`. Gradient with respect to q's logits: (q − p) / T. Other args as
    :func:`linear_kl`; with labels, ``wrt`` must be ``"q"``.

    Args:
        targets: integer labels ``(...)``, p's logits ``(..., V)``, or p's hidden states.
        w_p: None (labels or logits) or p's output layer ``(V, D_p)``.
        ignore_index: the label value left out (torch's default, −100).
        h_q, w_q, bias_p, bias_q, temperature, where, reduction, wrt, block_rows, block_vocab:
            as in :func:`linear_kl`.

    Returns:
        As :func:`linear_kl`.

    Example:
        >>> import jax, numpy as np, kullback as kb
        >>> rng = np.random.default_rng(0)
        >>> h, w = rng.normal(size=(6, 3)), rng.normal(size=(50, 3))
        >>> labels = np.array([3, 7, 0, -100, 49, 3])
        >>> loss = kb.logits.linear_cross_entropy(labels, None, h, w)
        >>> logp = np.asarray(jax.nn.log_softmax(h @ w.T))
        >>> keep = labels != -100
        >>> bool(np.isclose(loss, -logp[keep, labels[keep]].mean(), rtol=1e-12))
        True
    """
    labels = None
    t = np.asarray(targets) if not isinstance(targets, jax.Array) else targets
    if w_p is None and jnp.issubdtype(t.dtype, jnp.integer):
        if wrt != "q":
            raise ValueError(f"Expected wrt='q' with integer labels (they have no gradient); got {wrt!r}.")
        labels = jnp.asarray(t)
        keep = labels != ignore_index
        where = keep if where is None else jnp.logical_and(check_mask(where), keep)
        labels = jnp.clip(jnp.where(keep, labels, 0), 0, jnp.asarray(w_q).shape[0] - 1)
        p = None
    else:
        p = _side(targets, w_p, bias_p, "p")
    form = "labels" if labels is not None else "cross_entropy"
    return _fused(form, p, _side(h_q, w_q, bias_q, "q"), labels, (), temperature=temperature, where=where,
                  reduction=reduction, wrt=wrt, block_rows=block_rows, block_vocab=block_vocab)


def linear_jensen_shannon(
    h_p: Any, w_p: Any, h_q: Any, w_q: Any, *, weight: float = 0.5, bias_p: Any = None, bias_q: Any = None,
    temperature: float = 1.0, where: Any = None, reduction: str = "mean", wrt: str = "q",
    block_rows: int | None = None, block_vocab: int | None = None,
) -> jax.Array:
    """Generalised JSD JS_π(p‖q) = π KL(p‖m) + (1 − π) KL(q‖m), m = π p + (1 − π) q, fused.

    p, q as in :func:`linear_kl`; ``weight`` π in [0, 1] is p's weight in the mixture (TRL's β
    with p the teacher; β = 0 / 1 are KLs there, see :func:`kullback.logits.generalized_jsd`).
    Its gradient needs each row's KL(q‖m) first, so the tiles are visited three times (two with
    a forward pass only).

    Args:
        weight: π in [0, 1] (traced values compile nothing new; no gradient).
        h_p, w_p, h_q, w_q, bias_p, bias_q, temperature, where, reduction, wrt, block_rows,
        block_vocab: as in :func:`linear_kl`.

    Returns:
        As :func:`linear_kl`.

    Example:
        >>> import numpy as np, kullback as kb
        >>> rng = np.random.default_rng(0)
        >>> h_t, w_t = rng.normal(size=(6, 4)), rng.normal(size=(50, 4))
        >>> h_s, w_s = rng.normal(size=(6, 3)), rng.normal(size=(50, 3))
        >>> fused = kb.logits.linear_jensen_shannon(h_t, w_t, h_s, w_s, reduction="none")
        >>> np.allclose(fused, kb.logits.jensen_shannon(h_t @ w_t.T, h_s @ w_s.T), rtol=1e-12)
        True
    """
    w = _check_unit(weight, "weight")
    p = _side(h_p, w_p, bias_p, "p")
    return _fused("jensen_shannon", p, _side(h_q, w_q, bias_q, "q"), None, (w,), temperature=temperature, where=where,
                  reduction=reduction, wrt=wrt, block_rows=block_rows, block_vocab=block_vocab)
