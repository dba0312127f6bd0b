"""KL from sampled tokens (RL's k1 / k2 / k3 penalties) with a standard error, and the exact
per-token KL from full logits beside it.

Samples x are drawn from p (in RL: the policy π_θ generates; q is the reference π_ref). With the
log-ratio l = log q(x) − log p(x) and r = eˡ:

- k1 = −l: unbiased for KL(p‖q); high variance, negative for many samples.
- k2 = ½ l²: biased (bias −E[l³]/6 − …, third order in l: small when p ≈ q); low variance, ≥ 0.
- k3 = (r − 1) − l = φ(l) ≥ 0: unbiased when q's support lies inside p's (E_p[r] = 1); variance
  O(l⁴) against k1's O(l²) when p ≈ q; heavy-tailed when q ≫ p somewhere (r large).
- abs = |l|: biased (an upper-bound-like surrogate used by verl); ≥ 0.

What autodiff gives (samples held fixed, the gradient through log p = log π_θ(x) only, log q
without gradient), in expectation over x ~ p:

- ∇k1 = ∇log p: E = 0. As a loss k1 gives no KL gradient at all (as a reward, detached, with
  the score function, it does).
- ∇k2 = −l ∇log p = (log p − log q) ∇log p: E = ∇_θ KL(p_θ‖q), the true gradient.
- ∇k3 = (1 − r) ∇log p: E = −E_q[∇log p_θ] = ∇_θ KL(q‖p_θ), the gradient of the *other*
  direction (forward KL to the reference); it agrees with ∇KL(p_θ‖q) only to first order.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import as_float_array, check_mask
from ._discrete import phi
from ._estimate import Estimate

__all__ = ["sampled_kl", "kl_from_log_probs", "kl_from_logits", "ESTIMATORS"]

ESTIMATORS = ("k1", "k2", "k3", "abs")


def sampled_kl(log_p: Any, log_q: Any, *, estimator: str = "k3") -> jax.Array:
    """Per-sample terms of a sampled KL(p‖q) estimator, differentiable (jit / grad safe).

    With l = log q(x) − log p(x) at samples x ~ p: k1 = −l, k2 = ½ l², k3 = eˡ − 1 − l, abs = |l|
    (k3 computed as φ(l) with a series near 0: exact and non-negative). Bias, variance and the
    gradient each one gives: see :func:`kl_from_log_probs`.

    Args:
        log_p: log p(x) at the samples, any shape (tokens; batch × sequence).
        log_q: log q(x) at the same samples, the same shape.
        estimator: ``"k1"``, ``"k2"``, ``"k3"`` or ``"abs"``.

    Returns:
        The per-sample terms, the shape of the inputs.

    Example:
        >>> import kullback as kb
        >>> kb.sampled_kl([-1.0, -2.0], [-1.5, -1.0], estimator="k1").tolist()
        [0.5, -1.0]
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"Expected estimator to be one of {ESTIMATORS}; got {estimator!r}.")
    lp, lq = as_float_array(log_p, "log_p"), as_float_array(log_q, "log_q")
    if lp.shape != lq.shape:
        raise ValueError(f"Expected log_p and log_q to have the same shape; got {lp.shape} and {lq.shape}.")
    lr = lq - lp
    if estimator == "k1":
        return -lr
    if estimator == "k2":
        return 0.5 * lr * lr
    if estimator == "k3":
        return phi(lr)
    return jnp.abs(lr)


def _summarise(terms: np.ndarray, where: Any, axis: Any, estimator: str) -> Estimate:
    """Mean over kept samples (axis None) or over sequences of their sums along ``axis``."""
    mask = np.ones(terms.shape, bool) if where is None else np.broadcast_to(np.asarray(check_mask(where)), terms.shape)
    values = np.where(mask, terms, 0.0)
    if axis is None:
        units, unit = values[mask], "token"
    else:
        axes = tuple(np.atleast_1d(axis))
        sums, kept = values.sum(axis=axes), mask.any(axis=axes)
        units, unit = sums[kept], "sequence"
    n = int(units.size)
    if n == 0:
        raise ValueError("Expected at least one kept sample; where= leaves none.")
    value = float(units.mean())
    stderr = float(units.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    return Estimate(value=value, stderr=stderr, method="monte_carlo", num_samples=n,
                    info={"estimator": estimator, "unit": unit})


def kl_from_log_probs(
    log_p: Any, log_q: Any, *, estimator: str = "k3", where: Any = None, axis: Any = None
) -> Estimate:
    """KL(p‖q) from log-probabilities at samples drawn from p, with a standard error.

    KL(p‖q) = E_p[k] for k1 and k3 (unbiased), ≈ for k2 and abs (biased); the estimate is the
    mean of :func:`sampled_kl`'s terms over the kept samples and its standard error s/√n. Samples
    in a sequence are not independent: with ``axis`` (the token axis, or axes) the terms are
    summed over it per sequence, the sequence-level KL(p(y|x) ‖ q(y|x)) of autoregressive models
    (the chain rule), and averaged over sequences with the error between sequences.

    Bias and variance (l = log q − log p at x ~ p, r = eˡ): k1 = −l unbiased, high variance;
    k2 = ½ l² biased by −E[l³]/6 − … (small when p ≈ q), low variance; k3 = r − 1 − l unbiased
    when q's support lies inside p's, ≥ 0, variance O(l⁴) near p = q, heavy-tailed where q ≫ p;
    abs = |l| biased. Autodiff of the terms (samples fixed, gradient through log p = log π_θ,
    log q fixed) gives in expectation: k1 → 0 (no KL gradient), k2 → ∇_θ KL(π_θ‖q) (the true
    one), k3 → ∇_θ KL(q‖π_θ) (the other direction's; not KL(π_θ‖q)'s).

    Args:
        log_p: log p(x) at samples x ~ p (the policy's log-probabilities of its own tokens).
        log_q: log q(x) at the same samples (the reference's), the same shape.
        estimator: ``"k3"`` (default), ``"k1"``, ``"k2"`` or ``"abs"``.
        where: boolean mask of kept samples (False: padding, the prompt), broadcastable.
        axis: None (every kept token an independent sample) or the token axis / axes whose sums
            are the per-sequence KL.

    Returns:
        :class:`kullback.Estimate` (``method="monte_carlo"``; ``num_samples``: tokens or
        sequences; ``info``: the estimator and the unit).

    Example (a GRPO-style penalty: the loss uses the terms, the report uses the estimate):
        >>> import jax, jax.numpy as jnp, numpy as np, kullback as kb
        >>> rng = np.random.default_rng(0)
        >>> theta = jnp.asarray(rng.normal(size=(8, 16, 50)))   # policy logits (batch, seq, V)
        >>> ref = theta + jnp.asarray(rng.normal(size=theta.shape)) * 0.3
        >>> tokens = jax.random.categorical(jax.random.key(0), theta)    # sampled from the policy
        >>> def log_probs(logits):
        ...     return jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[..., None], -1)[..., 0]
        >>> def penalty(theta):                                  # mean k3 over tokens
        ...     return kb.sampled_kl(log_probs(theta), log_probs(ref), estimator="k3").mean()
        >>> grad = jax.grad(penalty)(theta)                      # E: ∇ KL(ref‖policy), see above
        >>> est = kb.kl_from_log_probs(log_probs(theta), log_probs(ref), estimator="k3")
        >>> exact = kb.kl_from_logits(theta, ref)                # per-token exact, same contexts
        >>> abs(est.value - exact.value) < 3 * est.stderr
        True
    """
    terms = np.asarray(sampled_kl(log_p, log_q, estimator=estimator), dtype=np.float64)
    return _summarise(terms, where, axis, estimator)


def kl_from_logits(
    logits_p: Any, logits_q: Any, *, where: Any = None, axis: Any = None, temperature: float = 1.0
) -> Estimate:
    """The exact per-token KL(p‖q) from full logits at the sampled positions, averaged with an error.

    At each position the KL over the whole vocabulary (:func:`kullback.logits.kl`) replaces the
    one-token estimate: no vocabulary sampling noise remains, only the spread over contexts
    (positions, or sequences with ``axis``), which the standard error reports. What verl's
    ``kl_penalty="full"`` leaves unimplemented.

    Args:
        logits_p, logits_q: logits of shape ``(..., V)``, the vocabulary last.
        where, axis: as in :func:`kl_from_log_probs`, over the batch shape ``...``.
        temperature: T dividing both logits.

    Returns:
        :class:`kullback.Estimate` (``method="monte_carlo"`` over contexts; ``info["estimator"]``
        is ``"exact"``).

    Example:
        >>> import kullback as kb
        >>> e = kb.kl_from_logits([[0.0, 0.0], [1.0, 0.0]], [[1.0, -1.0], [0.0, 0.0]])
        >>> round(e.value, 6), e.num_samples
        (0.272362, 2)
    """
    from ._logits import kl

    terms = np.asarray(kl(logits_p, logits_q, temperature=temperature), dtype=np.float64)
    return _summarise(terms, where, axis, "exact")
