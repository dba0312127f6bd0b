"""Objectives as pure functions ``objective(statics, params, *args) -> scalar``.

forward:  mean negative log-likelihood  −(1/n) Σ_i log q_θ(x_i)   (= cross-entropy H(p̂, q_θ))
reverse:  negative ELBO  −E_q[log p̃(x)] − H(q_θ),  x = T_θ(ε) reparameterised draws
          (= KL(q_θ‖p) − log Z for p = p̃ / Z)

``statics`` are hashable compile-time constants (the family, a log-density callable, a draw
count); arrays and distributions travel in ``args``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from ..families import AbstractFamily

__all__ = ["mean_nll", "weighted_nll", "RowLogDensity", "neg_elbo", "neg_elbo_fresh", "neg_log_density", "log_density_values"]

LogDensity = Callable[[jax.Array], jax.Array]


def mean_nll(family: AbstractFamily, params: Any, data: jax.Array) -> jax.Array:
    """−(1/n) Σ_i log q_θ(x_i) for data of shape ``(n, *event_shape)``."""
    return -jnp.mean(family.distribution(params).log_prob(data))


def weighted_nll(family: AbstractFamily, params: Any, data: jax.Array, weights: jax.Array) -> jax.Array:
    """−Σ_i w_i log q_θ(x_i) for weights ``w`` of shape ``(n,)`` summing to 1 (the weighted mean NLL)."""
    log_q = family.distribution(params).log_prob(data)
    return -jnp.dot(weights, jnp.where(weights > 0, log_q, 0.0))


class RowLogDensity:
    """ℓ(θ, x) = log q_θ(x) for one row x: a hashable callable (equal for equal families)."""

    def __init__(self, family: AbstractFamily) -> None:
        self.family = family

    def __call__(self, params: Any, row: jax.Array) -> jax.Array:
        return self.family.distribution(params).log_prob(row)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RowLogDensity) and other.family == self.family

    def __hash__(self) -> int:
        return hash((RowLogDensity, self.family))


def log_density_values(log_density: LogDensity | None, target: dist.Distribution | None, x: jax.Array) -> jax.Array:
    """log p̃ at each of the draws ``x`` (shape ``(num, *event)``): a callable, vmapped, or ``target.log_prob``."""
    if log_density is None:
        return target.log_prob(x)
    return jax.vmap(log_density)(x)


def neg_elbo(statics: tuple, params: Any, noise: Any, target: dist.Distribution | None) -> jax.Array:
    """−mean_s log p̃(T_θ(ε_s)) − H(q_θ) on fixed base draws ε (a deterministic sample average)."""
    family, log_density, num = statics
    x = family.draws(params, noise, num)
    return -jnp.mean(log_density_values(log_density, target, x)) - family.entropy(params, x)


def neg_elbo_fresh(statics: tuple, params: Any, key: jax.Array, target: dist.Distribution | None) -> jax.Array:
    """The negative ELBO on fresh draws from ``key`` (for stochastic optimisers)."""
    family, _, num = statics
    return neg_elbo(statics, params, family.base_noise(key, num, standardize=False), target)


def neg_log_density(statics: tuple, x: jax.Array, target: dist.Distribution | None) -> jax.Array:
    """−log p̃(x) at one point (mode search for a starting value)."""
    (log_density,) = statics
    return -log_density_values(log_density, target, x[None])[0]
