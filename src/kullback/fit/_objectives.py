"""Objectives as pure functions ``objective(statics, params, *args) -> scalar``.

forward:  mean negative log-likelihood  −(1/n) Σ_i log q_θ(x_i)   (= cross-entropy H(p̂, q_θ))
reverse:  log p̃ at draws, and −log p̃ at a point (the reverse objectives, the negative ELBO and
          the Rényi bound on reparameterised draws, are in ``_vi_objectives``)

``statics`` are hashable compile-time constants (the family, a log-density callable, a draw
count); arrays and distributions travel in ``args``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from ..families import AbstractFamily

__all__ = ["weighted_nll", "neg_log_density", "log_density_values"]

LogDensity = Callable[[jax.Array], jax.Array]


def weighted_nll(family: AbstractFamily, params: Any, data: jax.Array, weights: jax.Array) -> jax.Array:
    """−Σ_i w_i log q_θ(x_i) for weights ``w`` of shape ``(n,)`` summing to 1 (the weighted mean NLL)."""
    log_q = family.distribution(params).log_prob(data)
    return -jnp.dot(weights, jnp.where(weights > 0, log_q, 0.0))


def log_density_values(log_density: LogDensity | None, target: dist.Distribution | None, x: jax.Array) -> jax.Array:
    """log p̃ at each of the draws ``x`` (shape ``(num, *event)``): a callable, vmapped, or ``target.log_prob``."""
    if log_density is None:
        return target.log_prob(x)
    return jax.vmap(log_density)(x)


def neg_log_density(statics: tuple, x: jax.Array, target: dist.Distribution | None) -> jax.Array:
    """−log p̃(x) at one point (mode search for a starting value)."""
    (log_density,) = statics
    return -log_density_values(log_density, target, x[None])[0]
