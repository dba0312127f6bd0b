"""Family methods compiled once per family and shape (eager numpyro code dispatches many small ops).

Each takes the (hashable) family as a static argument, so repeated fits reuse the programs.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpyro.distributions as dist

from ..families import AbstractFamily

__all__ = ["mle", "has_mle", "names", "finish_constrained", "distribution", "constrained", "from_constrained", "init_at", "base_noise", "finish"]


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


# The family's parameter order, recorded while a program traces (jit returns dicts with sorted
# keys; an eval_shape to learn the order would run numpyro's constant index arithmetic eagerly,
# a dozen tiny compiles on a first call).
_ORDER: dict[Any, tuple[str, ...]] = {}


def _ordered(family: AbstractFamily, values: dict[str, jax.Array]) -> tuple[jax.Array, ...]:
    _ORDER[family] = tuple(values)
    return tuple(values.values())


def names(family: AbstractFamily, params: Any) -> tuple[str, ...]:
    """The names of the constrained parameters, in the family's order."""
    if family not in _ORDER:
        _ORDER[family] = tuple(jax.eval_shape(family.constrained, params))
    return _ORDER[family]


@functools.partial(jax.jit, static_argnums=0)
def _constrained(family: AbstractFamily, params: Any) -> tuple[jax.Array, ...]:
    return _ordered(family, family.constrained(params))


def constrained(family: AbstractFamily, params: Any) -> dict[str, jax.Array]:
    """The constrained parameters by name, in the family's order."""
    values = _constrained(family, params)
    return dict(zip(_ORDER[family], values))


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
def _finish(family: AbstractFamily, params: Any) -> tuple[dist.Distribution, tuple[jax.Array, ...]]:
    return family.distribution(params), _ordered(family, family.constrained(params))


def finish(family: AbstractFamily, params: Any) -> tuple[dist.Distribution, dict[str, jax.Array]]:
    """q_θ and its constrained parameters (in the family's order), from one compiled program."""
    q, values = _finish(family, params)
    return q, dict(zip(_ORDER[family], values))


@functools.partial(jax.jit, static_argnums=0)
def _finish_constrained(family: AbstractFamily, values: dict[str, Any]) -> tuple[Any, dist.Distribution, tuple]:
    params = family.from_constrained(values)
    return params, family.distribution(params), _ordered(family, family.constrained(params))


def finish_constrained(family: AbstractFamily, values: dict[str, Any]) -> tuple[Any, dist.Distribution, dict]:
    """From constrained values: the unconstrained parameters, q_θ and the constrained parameters
    (in the family's order), from one compiled program."""
    params, q, out = _finish_constrained(family, values)
    return params, q, dict(zip(_ORDER[family], out))
