"""Closed forms for discrete distributions: Bernoulli, Categorical, Binomial, Multinomial,
Geometric, Poisson, negative binomial (``GammaPoisson`` and its subclasses), and cross pairs.

numpyro spells most of these as a probs class and a logits class; every combination is
registered, and the formulas work from log-probabilities (``log_sigmoid`` / ``log_softmax`` of
logits, ``log`` / ``log1p(−p)`` of probabilities), so that extreme logits stay exact:

    Categorical:      Σ_k p_k (log p_k − log q_k)       (0 where p_k = 0; +inf where q_k = 0 < p_k)
    Bernoulli:        the two-category Categorical
    Binomial(n):      n · KL(Bernoulli) for equal n;  +inf where n_p > n_q
    Multinomial(n):   n · KL(Categorical) for equal n
    Geometric:        log(p/q) + ((1 − p)/p) log((1 − p)/(1 − q))        (failures before a success)
    Poisson:          λ φ(log(μ/λ)),  φ(t) = eᵗ − 1 − t
    GammaPoisson(r):  r log((1 − π_p)/(1 − π_q)) + E_p[k] log(π_p/π_q)   for equal r, π = 1/(1 + rate)

Cross pairs: Bernoulli ‖ Poisson, Bernoulli ‖ Binomial, Bernoulli ‖ Geometric (finite), and
Poisson, Geometric or negative binomial ‖ Bernoulli or Binomial (+inf: unbounded inside bounded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln
from numpyro.distributions import (
    BernoulliLogits,
    BernoulliProbs,
    BinomialLogits,
    BinomialProbs,
    CategoricalLogits,
    CategoricalProbs,
    GammaPoisson,
    GeometricLogits,
    GeometricProbs,
    MultinomialLogits,
    MultinomialProbs,
    Poisson,
)

from ._discrete import log_ratio, phi
from ._registry import register_entropy, register_kl

__all__ = ["categorical_kl_from_logs", "poisson_kl"]

BERNOULLI = (BernoulliProbs, BernoulliLogits)
CATEGORICAL = (CategoricalProbs, CategoricalLogits)
BINOMIAL = (BinomialProbs, BinomialLogits)
MULTINOMIAL = (MultinomialProbs, MultinomialLogits)
GEOMETRIC = (GeometricProbs, GeometricLogits)


def _register(ps: Iterable[type], qs: Iterable[type], **kw: Any) -> Callable[[Callable], Callable]:
    def decorator(fn: Callable) -> Callable:
        for tp in ps:
            for tq in qs:
                register_kl(tp, tq, **kw)(fn)
        return fn

    return decorator


def _binary_logs(d: Any) -> tuple[jax.Array, jax.Array]:
    """(log p, log(1 − p)) of a Bernoulli/Binomial/Geometric success probability."""
    if type(d).__name__.endswith("Logits"):
        x = jnp.asarray(d.logits)
        return jax.nn.log_sigmoid(x), jax.nn.log_sigmoid(-x)
    p = jnp.asarray(d.probs)
    return jnp.log(p), jnp.log1p(-p)


def _category_logs(d: Any) -> jax.Array:
    if type(d).__name__.endswith("Logits"):
        return jax.nn.log_softmax(jnp.asarray(d.logits), axis=-1)
    return jnp.log(jnp.asarray(d.probs))


def categorical_kl_from_logs(log_p: jax.Array, log_q: jax.Array, axis: int = -1) -> jax.Array:
    """Σ_k p_k (log p_k − log q_k) from log-probabilities; 0·(…) = 0 and +inf where q_k = 0 < p_k.

    Supports are read from the logs, not from exp(log p): p_k = exp(−800) underflows to 0 but is
    positive, so against q_k = 0 the KL is +inf (not 0·inf = NaN). Gradients stay finite at the
    boundary (safe values are substituted before each product), and a NaN stays a NaN.

    Example:
        >>> import jax.numpy as jnp
        >>> round(float(categorical_kl_from_logs(jnp.log(jnp.array([0.5, 0.5])), jnp.log(jnp.array([0.9, 0.1])))), 6)
        0.510826
    """
    positive, q_positive = log_p > -jnp.inf, log_q > -jnp.inf
    both = positive & q_positive
    safe_p, safe_q = jnp.where(both, log_p, 0.0), jnp.where(both, log_q, 0.0)
    terms = jnp.where(both, jnp.exp(safe_p) * (safe_p - safe_q), 0.0)
    escapes = jnp.any(positive & ~q_positive, axis=axis)
    value = jnp.where(escapes, jnp.inf, jnp.maximum(jnp.sum(terms, axis=axis), 0.0))
    return jnp.where(jnp.any(jnp.isnan(log_p) | jnp.isnan(log_q), axis=axis), jnp.nan, value)


def _bernoulli_kl_logs(lp1: jax.Array, lp0: jax.Array, lq1: jax.Array, lq0: jax.Array) -> jax.Array:
    lp1, lp0, lq1, lq0 = jnp.broadcast_arrays(lp1, lp0, lq1, lq0)
    return categorical_kl_from_logs(jnp.stack([lp1, lp0], -1), jnp.stack([lq1, lq0], -1))


def poisson_kl(rate_p: jax.Array, rate_q: jax.Array) -> jax.Array:
    """KL(Poisson(λ) ‖ Poisson(μ)) = λ log(λ/μ) − λ + μ = λ φ(log μ/λ).

    Example:
        >>> round(float(poisson_kl(2.0, 3.0)), 6)
        0.18907
    """
    rate_p, rate_q = jnp.asarray(rate_p), jnp.asarray(rate_q)
    return rate_p * phi(log_ratio(rate_q, rate_p))


def _concrete(x: Any) -> np.ndarray | None:
    try:
        return np.asarray(x)
    except Exception:  # a tracer: assume the caller's counts are compatible
        return None


def _counts_ok(p: Any, q: Any, allow_more: bool) -> bool:
    n_p, n_q = _concrete(p.total_count), _concrete(q.total_count)
    if n_p is None or n_q is None:
        return True
    return bool(np.all((n_p >= n_q) if allow_more else (n_p == n_q)))


@_register(CATEGORICAL, CATEGORICAL)
def _kl_categorical(p: Any, q: Any) -> jax.Array:
    return categorical_kl_from_logs(_category_logs(p), _category_logs(q))


@_register(BERNOULLI, BERNOULLI)
def _kl_bernoulli(p: Any, q: Any) -> jax.Array:
    return _bernoulli_kl_logs(*_binary_logs(p), *_binary_logs(q))


@_register(BINOMIAL, BINOMIAL, when=lambda p, q: _counts_ok(p, q, allow_more=True))
def _kl_binomial(p: Any, q: Any) -> jax.Array:
    n_p, n_q = jnp.asarray(p.total_count), jnp.asarray(q.total_count)
    value = n_p * _bernoulli_kl_logs(*_binary_logs(p), *_binary_logs(q))
    return jnp.where(n_p > n_q, jnp.inf, value)


@_register(MULTINOMIAL, MULTINOMIAL, when=lambda p, q: _counts_ok(p, q, allow_more=False))
def _kl_multinomial(p: Any, q: Any) -> jax.Array:
    return jnp.asarray(p.total_count) * categorical_kl_from_logs(_category_logs(p), _category_logs(q))


@_register(GEOMETRIC, GEOMETRIC)
def _kl_geometric(p: Any, q: Any) -> jax.Array:
    lp1, lp0 = _binary_logs(p)
    lq1, lq0 = _binary_logs(q)
    # log(p/q) + ((1−p)/p) log((1−p)/(1−q)) = Σ_k P(k) log P(k)/Q(k); clipped at 0 against rounding
    return jnp.maximum(lp1 - lq1 + jnp.exp(lp0 - lp1) * (lp0 - lq0), 0.0)


@register_kl(Poisson, Poisson)
def _kl_poisson(p: Poisson, q: Poisson) -> jax.Array:
    return poisson_kl(p.rate, q.rate)


def _nb_logs(d: GammaPoisson) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(r, log π, log(1 − π)) with π = 1/(1 + rate): log pmf = … + r log(1 − π) + k log π."""
    rate = jnp.asarray(d.rate)
    return jnp.asarray(d.concentration), -jnp.log1p(rate), -jnp.log1p(1.0 / rate)


def _same_concentration(p: Any, q: Any) -> bool:
    r_p, r_q = _concrete(p.concentration), _concrete(q.concentration)
    return r_p is None or r_q is None or bool(np.all(r_p == r_q))


@register_kl(GammaPoisson, GammaPoisson, when=_same_concentration)
def _kl_negative_binomial(p: GammaPoisson, q: GammaPoisson) -> jax.Array:
    r, lp1, lp0 = _nb_logs(p)
    _, lq1, lq0 = _nb_logs(q)
    mean = r / jnp.asarray(p.rate)
    return jnp.maximum(r * (lp0 - lq0) + mean * (lp1 - lq1), 0.0)


@_register(BERNOULLI, (Poisson,))
def _kl_bernoulli_poisson(p: Any, q: Poisson) -> jax.Array:
    lam = jnp.asarray(q.rate)
    log_lam = jnp.log(lam)
    return _bernoulli_kl_logs(*_binary_logs(p), log_lam - lam, -lam * jnp.ones_like(log_lam))


@_register(BERNOULLI, BINOMIAL)
def _kl_bernoulli_binomial(p: Any, q: Any) -> jax.Array:
    n = jnp.asarray(q.total_count)
    lq1, lq0 = _binary_logs(q)
    # Bin(n, π) at 1 and 0: log n + log π + (n − 1) log(1 − π), and n log(1 − π)
    return _bernoulli_kl_logs(*_binary_logs(p), jnp.log(n) + lq1 + (n - 1) * lq0, n * lq0)


@_register(BERNOULLI, GEOMETRIC)
def _kl_bernoulli_geometric(p: Any, q: Any) -> jax.Array:
    lq1, lq0 = _binary_logs(q)
    # Geometric(π) at 1 and 0: log π + log(1 − π), and log π
    return _bernoulli_kl_logs(*_binary_logs(p), lq1 + lq0, lq1)


def _infinite(p: Any, q: Any) -> jax.Array:
    return jnp.full(jnp.broadcast_shapes(p.batch_shape, q.batch_shape), jnp.inf)


_register((Poisson, GammaPoisson) + GEOMETRIC, BERNOULLI + BINOMIAL)(_infinite)


def _static_count(d: Any) -> int | None:
    n = _concrete(d.total_count)
    return None if n is None else int(np.max(n))


@register_entropy(BinomialProbs, when=lambda p: _static_count(p) is not None)
@register_entropy(BinomialLogits, when=lambda p: _static_count(p) is not None)
def _entropy_binomial(p: Any) -> jax.Array:
    """−Σ_{k=0}^{n} P(k) log P(k), an exact finite sum (total_count known outside jit)."""
    n_max = _static_count(p)
    n = jnp.asarray(p.total_count)
    lp1, lp0 = _binary_logs(p)
    k = jnp.arange(n_max + 1, dtype=lp1.dtype).reshape((-1,) + (1,) * jnp.ndim(lp1 + n))
    log_choose = gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(jnp.maximum(n - k, 0.0) + 1.0)
    safe = lambda c, lg: jnp.where(c == 0, 0.0, c * lg)  # noqa: E731  0·log 0 = 0
    log_pmf = log_choose + safe(k, lp1) + safe(n - k, lp0)
    inside = k <= n
    terms = jnp.where(inside & (log_pmf > -jnp.inf), -jnp.exp(log_pmf) * log_pmf, 0.0)
    return jnp.sum(terms, axis=0)
