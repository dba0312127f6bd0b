"""Closed-form KL, entropy and cross-entropy between numpyro distributions.

Dispatch goes through the registry (:mod:`kullback.measure._registry`); the per-pair formulas
live in small modules that register themselves on import (Gaussians in ``_gaussian_forms``).
This module adds the structural rules that hold for any family:

    KL(Independent(p, n) ‖ Independent(q, n)) = Σ over the n reinterpreted axes of KL(p‖q),
    KL(p.expand(s) ‖ q) = KL(p‖q) broadcast to s (and the same for q),

and the same for entropies; cross-entropy is H(p, q) = H(p) + KL(p‖q). Every result is
broadcast to the common batch shape of the pair. Entropies not registered here fall back to
numpyro's own ``Distribution.entropy`` where it has one.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from numpyro.distributions import Distribution, ExpandedDistribution, Independent

from .._errors import NoClosedFormError
from . import _gaussian_forms  # noqa: F401  (registers the Gaussian rules)
from . import _expfam, _forms_cross, _forms_discrete, _forms_multivariate, _forms_univariate, _forms_wishart  # noqa: F401
from ._registry import describe, dispatch_entropy, dispatch_kl, register_entropy, register_kl

__all__ = ["kl_closed_form", "entropy_closed_form", "cross_entropy_closed_form"]


def _check_distribution(x: Any, name: str) -> None:
    if not isinstance(x, Distribution):
        raise TypeError(f"Expected {name} to be a numpyro distribution; got {type(x).__name__}.")


def _batch_shape(p: Distribution, q: Distribution) -> tuple[int, ...]:
    if p.event_shape != q.event_shape:
        raise ValueError(
            f"Expected p and q to have the same event shape; got {p.event_shape} for p "
            f"({describe(p)}) and {q.event_shape} for q ({describe(q)})."
        )
    try:
        return jnp.broadcast_shapes(p.batch_shape, q.batch_shape)
    except ValueError as err:
        raise ValueError(
            f"Expected p and q to have broadcastable batch shapes; got {p.batch_shape} and {q.batch_shape}."
        ) from err


def _kl(p: Distribution, q: Distribution) -> jax.Array:
    shape = _batch_shape(p, q)
    return jnp.broadcast_to(dispatch_kl(p, q), shape)


def _entropy(p: Distribution) -> jax.Array:
    value = dispatch_entropy(p)
    if value is None:
        try:
            value = p.entropy()
        except NotImplementedError:
            raise NoClosedFormError(
                f"No closed-form entropy is known for p of type {describe(p)}. "
                "Use kb.estimate_entropy(p) for an estimate with an error (quadrature or Monte Carlo)."
            ) from None
    return jnp.broadcast_to(value, p.batch_shape)


def _no_kl_message(p: Distribution, q: Distribution) -> str:
    return (
        f"No closed-form KL is registered for p of type {describe(p)} and q of type {describe(q)}. "
        "Use kb.estimate_kl(p, q) for an estimate with an error (quadrature or Monte Carlo)."
    )


def _same_reinterpretation(p: Independent, q: Independent) -> bool:
    return p.reinterpreted_batch_ndims == q.reinterpreted_batch_ndims


@register_kl(Independent, Independent, when=_same_reinterpretation)
def _kl_independent(p: Independent, q: Independent) -> jax.Array:
    n = p.reinterpreted_batch_ndims
    return jnp.sum(_kl(p.base_dist, q.base_dist), axis=tuple(range(-n, 0)))


@register_kl(ExpandedDistribution, Distribution)
def _kl_expanded_p(p: ExpandedDistribution, q: Distribution) -> jax.Array:
    return _kl(p.base_dist, q)


@register_kl(Distribution, ExpandedDistribution)
def _kl_expanded_q(p: Distribution, q: ExpandedDistribution) -> jax.Array:
    return _kl(p, q.base_dist)


@register_entropy(Independent)
def _entropy_independent(p: Independent) -> jax.Array:
    n = p.reinterpreted_batch_ndims
    return jnp.sum(_entropy(p.base_dist), axis=tuple(range(-n, 0)))


@register_entropy(ExpandedDistribution)
def _entropy_expanded(p: ExpandedDistribution) -> jax.Array:
    return _entropy(p.base_dist)


def kl_closed_form(p: Any, q: Any) -> jax.Array:
    """KL(p‖q) in closed form between two numpyro distributions, over their batch shapes.

    Args:
        p, q: numpyro distributions with the same event shape and broadcastable batch shapes.

    Returns:
        KL(p‖q) in nats, shape ``broadcast(p.batch_shape, q.batch_shape)``; never negative.

    Raises:
        NoClosedFormError: no registered rule applies to the pair.

    Example:
        >>> import numpyro.distributions as dist
        >>> round(float(kl_closed_form(dist.Normal(0.0, 1.0), dist.Normal(1.0, 2.0))), 6)
        0.443147
    """
    _check_distribution(p, "p")
    _check_distribution(q, "q")
    try:
        return _kl(p, q)
    except NoClosedFormError:
        raise NoClosedFormError(_no_kl_message(p, q)) from None


def entropy_closed_form(p: Any) -> jax.Array:
    """Differential (or Shannon) entropy H(p) = −E_p[log p] in closed form, over the batch shape.

    Example:
        >>> import numpyro.distributions as dist
        >>> round(float(entropy_closed_form(dist.Normal(0.0, 1.0))), 6)
        1.418939
    """
    _check_distribution(p, "p")
    return _entropy(p)


def cross_entropy_closed_form(p: Any, q: Any) -> jax.Array:
    """Cross-entropy H(p, q) = −E_p[log q] = H(p) + KL(p‖q) in closed form.

    Example:
        >>> import numpyro.distributions as dist
        >>> round(float(cross_entropy_closed_form(dist.Normal(0.0, 1.0), dist.Normal(1.0, 2.0))), 6)
        1.862086
    """
    _check_distribution(p, "p")
    _check_distribution(q, "q")
    try:
        return _kl(p, q) + _entropy(p)
    except NoClosedFormError:
        raise NoClosedFormError(_no_kl_message(p, q).replace("estimate_kl", "estimate_cross_entropy")) from None
