"""Family methods compiled once per family and shape (eager numpyro code dispatches many small ops).

Each takes the (hashable) family as a static argument, so repeated fits reuse the programs.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpyro.distributions as dist

from ..families import AbstractFamily

__all__ = ["mle", "has_mle", "distribution", "constrained", "from_constrained", "init_at", "base_noise", "finish"]


@functools.partial(jax.jit, static_argnums=0)
def mle(family: AbstractFamily, data: jax.Array, weights: jax.Array) -> Any:
    """The closed-form MLE (or None) as one compiled program (the Newton loops inside included)."""
    return family.mle(data, weights)


def has_mle(family: AbstractFamily, data: Any, weights: Any) -> bool:
    """Whether the family has a closed-form MLE for these data (traced, not compiled)."""
    return jax.eval_shape(family.mle, data, weights) is not None


@functools.partial(jax.jit, static_argnums=0)
def distribution(family: AbstractFamily, params: Any) -> dist.Distribution:
    """q_θ (numpyro distributions are pytrees, so they leave jit whole)."""
    return family.distribution(params)


@functools.partial(jax.jit, static_argnums=0)
def _constrained(family: AbstractFamily, params: Any) -> dict[str, jax.Array]:
    return family.constrained(params)


def constrained(family: AbstractFamily, params: Any) -> dict[str, jax.Array]:
    """The constrained parameters by name, in the family's order (jit sorts dict keys)."""
    order = jax.eval_shape(family.constrained, params)
    values = _constrained(family, params)
    return {k: values[k] for k in order}


@functools.partial(jax.jit, static_argnums=0)
def from_constrained(family: AbstractFamily, values: dict[str, Any]) -> Any:
    """Unconstrained parameters from constrained values."""
    return family.from_constrained(values)


@functools.partial(jax.jit, static_argnums=0)
def init_at(family: AbstractFamily, center: jax.Array, scale: jax.Array) -> Any:
    """Starting values centred at ``center`` with spread ``scale``."""
    return family.init_at(center, scale)


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def base_noise(family: AbstractFamily, key: jax.Array, num: int, standardize: bool) -> Any:
    """Base draws for ``num`` reparameterised samples."""
    return family.base_noise(key, num, standardize=standardize)


@functools.partial(jax.jit, static_argnums=0)
def _finish(family: AbstractFamily, params: Any) -> tuple[dist.Distribution, dict[str, jax.Array]]:
    return family.distribution(params), family.constrained(params)


def finish(family: AbstractFamily, params: Any) -> tuple[dist.Distribution, dict[str, jax.Array]]:
    """q_θ and its constrained parameters (in the family's order), from one compiled program."""
    order = jax.eval_shape(family.constrained, params)
    q, values = _finish(family, params)
    return q, {k: values[k] for k in order}
