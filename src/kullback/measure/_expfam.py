"""The generic closed form for two members of one exponential family: a Bregman divergence.

For densities h(x) exp(⟨η, T(x)⟩ − A(η)) with natural parameters η and log-normaliser A,

    KL(p_η ‖ p_θ) = A(θ) − A(η) − ⟨θ − η, ∇A(η)⟩,

the Bregman divergence of A between θ and η (∇A(η) = E_η[T(X)]). The gradient is taken by
``jax.jvp`` along θ − η, so any family needs only its map to natural parameters and its A. The
table covers Normal, LogNormal, Exponential, Gamma (and Chi2), InverseGamma, Beta, Dirichlet,
von Mises, Poisson, Bernoulli and Geometric; the per-family formulas elsewhere are preferred for
accuracy, and this form is registered for the families that have no other (InverseGamma).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln, i0e
from numpyro.distributions import (
    BernoulliLogits,
    BernoulliProbs,
    Beta,
    Dirichlet,
    Exponential,
    Gamma,
    GeometricLogits,
    GeometricProbs,
    InverseGamma,
    LogNormal,
    Normal,
    Poisson,
    VonMises,
)

from .._errors import NoClosedFormError
from ._registry import describe, register_kl

__all__ = ["bregman_kl", "exponential_families"]

Natural = tuple[jax.Array, ...]


def _a(x: Any) -> jax.Array:
    return jnp.asarray(x)


def _normal_eta(d: Any) -> Natural:
    s2 = _a(d.scale) ** 2
    return _a(d.loc) / s2, -0.5 / s2


def _normal_a(e1: jax.Array, e2: jax.Array) -> jax.Array:
    return -e1 * e1 / (4.0 * e2) - 0.5 * jnp.log(-2.0 * e2)


def _bernoulli_eta(d: Any) -> Natural:
    return (_a(d.logits),) if type(d).__name__.endswith("Logits") else (jnp.log(d.probs) - jnp.log1p(-_a(d.probs)),)


def _geometric_eta(d: Any) -> Natural:
    return (jax.nn.log_sigmoid(-_a(d.logits)),) if type(d).__name__.endswith("Logits") else (jnp.log1p(-_a(d.probs)),)


def _von_mises_a(e1: jax.Array, e2: jax.Array) -> jax.Array:
    k = jnp.sqrt(e1 * e1 + e2 * e2)
    return math.log(2.0 * math.pi) + jnp.log(i0e(k)) + k


_FAMILIES: dict[type, tuple[Callable[[Any], Natural], Callable[..., jax.Array], int]] = {
    # family: (natural parameters, log-normaliser A(η), event dims of η)
    Normal: (_normal_eta, _normal_a, 0),
    LogNormal: (_normal_eta, _normal_a, 0),
    Exponential: (lambda d: (-_a(d.rate),), lambda e: -jnp.log(-e), 0),
    Gamma: (
        lambda d: (_a(d.concentration) - 1.0, -_a(d.rate)),
        lambda e1, e2: gammaln(e1 + 1.0) - (e1 + 1.0) * jnp.log(-e2),
        0,
    ),
    InverseGamma: (
        lambda d: (-_a(d.concentration) - 1.0, -_a(d.rate)),
        lambda e1, e2: gammaln(-e1 - 1.0) + (e1 + 1.0) * jnp.log(-e2),
        0,
    ),
    Beta: (
        lambda d: (_a(d.concentration1) - 1.0, _a(d.concentration0) - 1.0),
        lambda e1, e2: gammaln(e1 + 1.0) + gammaln(e2 + 1.0) - gammaln(e1 + e2 + 2.0),
        0,
    ),
    Dirichlet: (
        lambda d: (_a(d.concentration) - 1.0,),
        lambda e: jnp.sum(gammaln(e + 1.0), -1) - gammaln(jnp.sum(e + 1.0, -1)),
        1,
    ),
    VonMises: (
        lambda d: (_a(d.concentration) * jnp.cos(d.loc), _a(d.concentration) * jnp.sin(d.loc)),
        _von_mises_a,
        0,
    ),
    Poisson: (lambda d: (jnp.log(d.rate),), jnp.exp, 0),
    BernoulliProbs: (_bernoulli_eta, jax.nn.softplus, 0),
    BernoulliLogits: (_bernoulli_eta, jax.nn.softplus, 0),
    GeometricProbs: (_geometric_eta, lambda e: -jnp.log(-jnp.expm1(e)), 0),
    GeometricLogits: (_geometric_eta, lambda e: -jnp.log(-jnp.expm1(e)), 0),
}


_KEY: dict[Any, Any] = {}  # one family, several classes: compare by the log-normaliser
for _t, (_, _a_fn, _) in _FAMILIES.items():
    _KEY.setdefault(_a_fn, _t)
_FAMILIES[LogNormal] = (_normal_eta, lambda e1, e2: _normal_a(e1, e2), 0)  # its own key: not Normal


def exponential_families() -> list[type]:
    """The families :func:`bregman_kl` knows."""
    return list(_FAMILIES)


def _family(d: Any) -> tuple[Callable[[Any], Natural], Callable[..., jax.Array], int] | None:
    for t in type(d).__mro__:
        if t in _FAMILIES:
            return _FAMILIES[t]
    return None


def bregman_kl(p: Any, q: Any) -> jax.Array:
    """KL(p‖q) for two members of one exponential family, A(θ) − A(η) − ⟨θ − η, ∇A(η)⟩.

    Args:
        p, q: numpyro distributions of the same family from :func:`exponential_families`.

    Returns:
        KL(p‖q) over the broadcast batch shape, clipped at 0 against rounding.

    Raises:
        NoClosedFormError: p and q are not members of one known exponential family.

    Example:
        >>> import numpyro.distributions as dist
        >>> round(float(bregman_kl(dist.Gamma(2.0, 1.0), dist.Gamma(3.0, 2.0))), 6)
        0.190921
    """
    fam_p, fam_q = _family(p), _family(q)
    if fam_p is None or fam_q is None or _KEY.get(fam_p[1], fam_p[1]) is not _KEY.get(fam_q[1], fam_q[1]):
        raise NoClosedFormError(
            f"Expected p and q from one exponential family of {[t.__name__ for t in _FAMILIES]}; "
            f"got {describe(p)} and {describe(q)}."
        )
    to_eta, log_normaliser, _ = fam_p
    eta, theta = to_eta(p), fam_q[0](q)
    shape_pairs = [jnp.broadcast_arrays(e, t) for e, t in zip(eta, theta)]
    eta = tuple(e for e, _ in shape_pairs)
    theta = tuple(t for _, t in shape_pairs)
    direction = tuple(t - e for e, t in zip(eta, theta))
    a_eta, slope = jax.jvp(log_normaliser, eta, direction)
    return jnp.maximum(log_normaliser(*theta) - a_eta - slope, 0.0)


@register_kl(InverseGamma, InverseGamma)
def _kl_inverse_gamma(p: InverseGamma, q: InverseGamma) -> jax.Array:
    return bregman_kl(p, q)
