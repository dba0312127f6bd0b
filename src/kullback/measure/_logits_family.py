"""Jensen-Shannon, Rényi, skew KL, total variation and TRL's generalised JSD from logits, streamed.

Each streams over blocks of rows with a custom gradient (see :mod:`._streaming_family`): no extra
rows × vocabulary array in the forward or the backward pass. Arguments as :func:`kb.logits.kl
<kullback.logits.kl>`: ``axis``, ``temperature`` (dividing both logits), a row mask ``where=``,
``reduction`` (``"none" | "mean" | "sum" | "batchmean"``), ``base`` and ``chunk_size``;
bfloat16 / float16 logits are computed in float32.
"""

from __future__ import annotations

import math
from typing import Any

import jax

from .._validate import is_traced
from . import _streaming_family
from ._divergences import _check_unit
from ._logits import _streamed, kl

__all__ = ["jensen_shannon", "generalized_jsd", "renyi", "skew_kl", "total_variation"]


def _form(name: str, params: tuple):
    def fn(lp, lq, *, temperature, block):
        return _streaming_family.streamed_form(lp, lq, params, name=name, temperature=temperature, block=block)

    return fn


def jensen_shannon(
    logits_p: Any, logits_q: Any, *, weight: float = 0.5, axis: int = -1, temperature: float = 1.0,
    where: Any = None, reduction: str = "none", base: float | None = None, chunk_size: int | None = None,
) -> jax.Array:
    """Generalised Jensen-Shannon divergence JS_π of p = softmax(logits_p / T), q = softmax(logits_q / T).

    JS_π(p‖q) = π KL(p‖m) + (1 − π) KL(q‖m),  m = π p + (1 − π) q,  in [0, h(π)]

    (h the binary entropy: log 2 for π = ½), computed as Σ π p φ(log m/p) + (1 − π) q φ(log m/q)
    with φ(a) = eᵃ − 1 − a ≥ 0: never negative. Streamed; gradients ∂/∂s = π p (log(p/m) −
    KL(p‖m)) / T and ∂/∂t = (1 − π) q (log(q/m) − KL(q‖m)) / T. ``weight`` may be traced (a new
    value compiles nothing) and gets no gradient.

    Args:
        logits_p, logits_q: logits of shape ``(..., V)``, the vocabulary along ``axis``.
        weight: π in [0, 1], the weight of p in the mixture.
        axis, temperature, where, reduction, base, chunk_size: as in :func:`kl`.

    Returns:
        Per-row JS_π (the batch shape) or its reduction.

    Example:
        >>> import kullback as kb
        >>> round(float(kb.logits.jensen_shannon([0.0, -1e4], [-1e4, 0.0], base=2)), 6)
        1.0
    """
    w = _check_unit(weight, "weight")
    return _streamed(_form("jensen_shannon", (w,)), (logits_p, logits_q), axis, temperature, where, reduction, base, chunk_size)


def generalized_jsd(
    logits_p: Any, logits_q: Any, *, beta: float = 0.5, axis: int = -1, temperature: float = 1.0,
    where: Any = None, reduction: str = "none", base: float | None = None, chunk_size: int | None = None,
) -> jax.Array:
    """TRL's generalised JSD distillation loss (GKD), teacher p first: β = 0 and 1 are the two KLs.

    L_β(p, q) = KL(p‖q) for β = 0 (forward KL, mode-covering), KL(q‖p) for β = 1 (reverse KL,
    mode-seeking), and JS_β(p‖q) = β KL(p‖m) + (1 − β) KL(q‖m) with m = β p + (1 − β) q between.
    This is TRL's ``GKDTrainer.generalized_jsd_loss(student_logits, teacher_logits, beta=β)``
    with the arguments in math order (teacher p first; TRL takes the student first), and Agarwal
    et al.'s (2024) convention. JS_β itself tends to 0 at both ends, so the loss jumps there:
    JS_β / β → KL(p‖q) as β → 0 and JS_β / (1 − β) → KL(q‖p) as β → 1; TRL switches to the KLs
    exactly at 0 and 1, as here. ``beta`` is a static Python number (its ends change formula).

    Args:
        logits_p: teacher logits, shape ``(..., V)``.
        logits_q: student logits, the same shape.
        beta: β in [0, 1].
        axis, temperature, where, reduction, base, chunk_size: as in :func:`kl`. TRL's default
            ``reduction="batchmean"`` with labels is ``reduction="mean", where=labels != -100``.

    Returns:
        Per-row loss (the batch shape) or its reduction.

    Example:
        >>> import kullback as kb
        >>> t, s = [[2.0, 0.0, -1.0]], [[0.0, 1.0, 0.0]]
        >>> bool(kb.logits.generalized_jsd(t, s, beta=0.0)[0] == kb.logits.kl(t, s)[0])
        True
        >>> bool(kb.logits.generalized_jsd(t, s, beta=1.0)[0] == kb.logits.kl(s, t)[0])
        True
        >>> round(float(kb.logits.generalized_jsd(t, s, beta=0.5)[0]), 6)
        0.216673
    """
    if is_traced(beta):
        raise TypeError("Expected beta to be a Python number (its end points 0 and 1 change the formula); got a traced value.")
    beta = float(_check_unit(beta, "beta"))
    options = dict(axis=axis, temperature=temperature, where=where, reduction=reduction, base=base, chunk_size=chunk_size)
    if beta == 0.0:
        return kl(logits_p, logits_q, **options)
    if beta == 1.0:
        return kl(logits_q, logits_p, **options)
    return jensen_shannon(logits_p, logits_q, weight=beta, **options)


def renyi(
    logits_p: Any, logits_q: Any, alpha: float, *, axis: int = -1, temperature: float = 1.0,
    where: Any = None, reduction: str = "none", base: float | None = None, chunk_size: int | None = None,
) -> jax.Array:
    """Rényi divergence of order α from logits, streamed (see :func:`kullback.renyi`).

    D_α(p‖q) = log(Σ p^α q^(1−α)) / (α − 1); α = 1 is the KL, α = 0 gives −log Σ_{p>0} q,
    α = ∞ log max p/q. Gradients: ∂D/∂s = α/(α − 1) (ρ − p) / T and ∂D/∂t = (q − ρ) / T with
    ρ ∝ p^α q^(1−α). ``alpha`` is a static number in [0, ∞].

    Example:
        >>> import kullback as kb
        >>> round(float(kb.logits.renyi([0.0, 0.0], [1.0, -1.0], 1.0)), 6)
        0.433781
        >>> round(float(kb.logits.renyi([0.0, 0.0], [1.0, -1.0], 2.0)), 6)
        0.867562
    """
    alpha = float(alpha)
    if math.isnan(alpha) or alpha < 0:
        raise ValueError(f"Expected alpha to be in [0, inf]; got {alpha}.")
    options = dict(axis=axis, temperature=temperature, where=where, reduction=reduction, base=base, chunk_size=chunk_size)
    if alpha == 1.0:
        return kl(logits_p, logits_q, **options)
    fn = _streaming_family.streamed_renyi
    return _streamed(fn, (logits_p, logits_q), axis, temperature, where, reduction, base, chunk_size, alpha=alpha)


def skew_kl(
    logits_p: Any, logits_q: Any, *, alpha: float = 0.99, axis: int = -1, temperature: float = 1.0,
    where: Any = None, reduction: str = "none", base: float | None = None, chunk_size: int | None = None,
) -> jax.Array:
    """Skew divergence KL(p ‖ α q + (1 − α) p) from logits, streamed (see :func:`kullback.skew_kl`).

    ``alpha`` in [0, 1] may be traced and gets no gradient.

    Example:
        >>> import kullback as kb
        >>> round(float(kb.logits.skew_kl([0.0, 0.0], [1.0, -1.0], alpha=1.0)), 6)
        0.433781
    """
    a = _check_unit(alpha, "alpha")
    return _streamed(_form("skew_kl", (a,)), (logits_p, logits_q), axis, temperature, where, reduction, base, chunk_size)


def total_variation(
    logits_p: Any, logits_q: Any, *, axis: int = -1, temperature: float = 1.0,
    where: Any = None, reduction: str = "none", chunk_size: int | None = None,
) -> jax.Array:
    """Total variation ½ Σ |p − q| from logits, streamed (see :func:`kullback.total_variation`).

    Gradients (a subgradient where p = q): ∂/∂s = ½ p (σ − E_p σ) / T, ∂/∂t = −½ q (σ − E_q σ) / T
    with σ = sign(p − q).

    Example:
        >>> import kullback as kb
        >>> round(float(kb.logits.total_variation([0.0, -1e4], [-1e4, 0.0])), 6)
        1.0
    """
    fn = _form("total_variation", ())
    return _streamed(fn, (logits_p, logits_q), axis, temperature, where, reduction, None, chunk_size)
