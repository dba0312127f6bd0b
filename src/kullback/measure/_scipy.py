"""scipy.stats frozen distributions seen as numpyro distributions, so every estimator takes them.

The log density and the draws run on the host through ``jax.pure_callback`` (no gradients); the
support, mean, variance and quantiles come from the frozen object, so quadrature finds the mass.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import Distribution, constraints


class _LazyModule:
    """A module imported at its first attribute access (``scipy.stats`` costs ~0.4 s)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


stats = _LazyModule("scipy.stats")

__all__ = ["ScipyDistribution", "is_scipy_frozen", "as_distribution"]


def is_scipy_frozen(x: Any) -> bool:
    """True for a frozen scipy.stats distribution (``stats.norm(0, 1)``, ``stats.multivariate_normal(...)``)."""
    if isinstance(x, Distribution) or "scipy.stats" not in sys.modules:
        return False  # none can exist before scipy.stats is imported (and importing it costs 0.4 s)
    if isinstance(x, (stats.rv_continuous, stats.rv_discrete)):
        return False  # a family such as stats.norm is not a distribution until it is frozen
    if type(x).__name__.endswith("_gen"):  # multivariate families (stats.multivariate_normal)
        return False
    family = getattr(x, "dist", None)
    if isinstance(family, (stats.rv_continuous, stats.rv_discrete)):
        return True
    return callable(getattr(x, "logpdf", None)) and callable(getattr(x, "rvs", None))


def _support(frozen: Any, discrete: bool, event_dim: int) -> constraints.Constraint:
    if event_dim:
        return constraints.real_vector
    lo, hi = (float(b) for b in frozen.support())
    if discrete:
        lo_i = int(lo)
        if np.isinf(hi):
            return constraints.integer_greater_than(lo_i - 1)
        return constraints.integer_interval(lo_i, int(hi))
    if np.isinf(lo) and np.isinf(hi):
        return constraints.real
    if np.isinf(hi):
        return constraints.greater_than(lo)
    if np.isinf(lo):
        return constraints.less_than(hi)
    return constraints.interval(lo, hi)


class ScipyDistribution(Distribution):
    """A frozen scipy.stats distribution as a numpyro distribution (batch shape ``()``).

    Example:
        >>> from scipy import stats
        >>> from kullback.measure._scipy import ScipyDistribution
        >>> d = ScipyDistribution(stats.gamma(2.0))
        >>> d.support
        GreaterThan(lower_bound=0.0)
        >>> round(float(d.log_prob(1.0)), 6) == round(float(stats.gamma(2.0).logpdf(1.0)), 6)
        True
    """

    pytree_aux_fields = ("frozen", "_discrete", "_support")

    def __init__(self, frozen: Any) -> None:
        self.frozen = frozen
        self._discrete = isinstance(getattr(frozen, "dist", None), stats.rv_discrete)
        univariate = isinstance(getattr(frozen, "dist", None), (stats.rv_continuous, stats.rv_discrete))
        event_shape = () if univariate else tuple(np.shape(frozen.rvs(random_state=0)))
        self._support = _support(frozen, self._discrete, len(event_shape))
        super().__init__(batch_shape=(), event_shape=event_shape)

    @property
    def support(self) -> constraints.Constraint:
        return self._support

    @property
    def mean(self) -> jax.Array:
        return jnp.asarray(self.frozen.mean())

    @property
    def variance(self) -> jax.Array:
        return jnp.asarray(self.frozen.var())

    def icdf(self, value: Any) -> jax.Array:
        return jnp.asarray(self.frozen.ppf(np.asarray(value)))

    def log_prob(self, value: Any) -> jax.Array:
        value = jnp.asarray(value, dtype=jnp.result_type(float))
        fn = self.frozen.logpmf if self._discrete else self.frozen.logpdf
        ev = len(self.event_shape)

        def host(v: np.ndarray) -> np.ndarray:
            out_shape = v.shape[: v.ndim - ev]
            return np.asarray(fn(np.asarray(v)), dtype=v.dtype).reshape(out_shape)

        out = jax.ShapeDtypeStruct(value.shape[: value.ndim - ev], value.dtype)
        return jax.pure_callback(host, out, value, vmap_method="expand_dims")

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        shape = tuple(sample_shape) + self.event_shape
        dtype = jnp.result_type(float)
        seed = jax.random.randint(key, (), 0, np.iinfo(np.int32).max)

        def host(s: np.ndarray) -> np.ndarray:
            draws = self.frozen.rvs(size=tuple(sample_shape) or None, random_state=int(s))
            return np.asarray(draws, dtype=dtype).reshape(shape)

        return jax.pure_callback(host, jax.ShapeDtypeStruct(shape, dtype), seed)


def as_distribution(x: Any) -> Any:
    """Wrap a scipy.stats frozen distribution; return anything else unchanged."""
    return ScipyDistribution(x) if is_scipy_frozen(x) else x
