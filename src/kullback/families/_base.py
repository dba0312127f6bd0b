"""The family interface: unconstrained parameters θ (a pytree) <-> a numpyro distribution q_θ.

A family is an immutable, hashable value (so jitted solvers compile once per family and shape).
The fit code talks to families only through the methods below; each method is a pure function of
its arguments.
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

__all__ = ["AbstractFamily", "base_normals"]

Params = dict[str, jax.Array]


class AbstractFamily(abc.ABC):
    """A parameterised family q_θ. Subclasses are frozen dataclasses (hashable, comparable).

    ``event_shape`` is the shape of one draw of q (``()`` for a scalar, ``(d,)`` for a vector).
    """

    event_shape: tuple[int, ...]

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """A short readable name, e.g. ``"Gaussian(2, 'full')"``."""

    @abc.abstractmethod
    def distribution(self, params: Params) -> dist.Distribution:
        """q_θ as a numpyro distribution with event shape ``event_shape`` (traceable)."""

    @abc.abstractmethod
    def constrained(self, params: Params) -> dict[str, jax.Array]:
        """The parameters in their natural (constrained) form, by name (traceable)."""

    @abc.abstractmethod
    def from_constrained(self, values: dict[str, Any]) -> Params:
        """The inverse of :meth:`constrained` (host side, for initial values)."""

    @abc.abstractmethod
    def init_from_data(self, data: jax.Array) -> Params:
        """Data-driven starting values for a forward fit; ``data`` has shape ``(n, *event_shape)``."""

    @abc.abstractmethod
    def init_at(self, center: jax.Array, scale: jax.Array) -> Params:
        """Starting values centred at ``center`` with per-coordinate spread ``scale`` (reverse fits)."""

    def with_event_shape(self, event_shape: tuple[int, ...]) -> AbstractFamily:
        """This family for draws of the given shape (raises ValueError when it cannot be)."""
        if tuple(event_shape) != tuple(self.event_shape):
            raise ValueError(
                f"Expected target draws of shape {self.event_shape} for {self.name}; got {tuple(event_shape)}."
            )
        return self

    # Closed forms: None when the family has none.
    def mle(self, data: jax.Array, weights: jax.Array | None = None) -> Params | None:
        """The maximum-likelihood parameters in closed form, or None.

        ``weights`` (shape ``(n,)``, summing to 1) weight the observations; None: all equal.
        """
        return None

    def moment_match(self, p: dist.Distribution) -> Params | None:
        """argmin_θ KL(p‖q_θ) in closed form from p's moments, or None."""
        return None

    # Reparameterised draws for reverse fits.
    def base_noise(self, key: jax.Array, num: int, *, standardize: bool) -> Any:
        """Parameter-free noise for ``num`` draws; :meth:`draws` maps it through θ."""
        return key

    def draws(self, params: Params, noise: Any, num: int) -> jax.Array:
        """``num`` reparameterised draws x = T_θ(noise), shape ``(num, *event_shape)``."""
        return self.distribution(params).rsample(noise, (num,))

    def entropy(self, params: Params, x: jax.Array) -> jax.Array:
        """H(q_θ): closed form where numpyro has one, else −mean log q_θ(x) on the draws ``x``."""
        q = self.distribution(params)
        try:
            return jnp.sum(q.entropy())
        except NotImplementedError:
            return -jnp.mean(q.log_prob(x))


def check_positive_ints(obj: Any, *names: str) -> None:
    """Raise a ValueError naming the first of ``obj``'s attributes that is not a positive int."""
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"Expected {name} to be a positive integer; got {value!r}.")


def base_normals(key: jax.Array, shape: tuple[int, ...], *, standardize: bool) -> jax.Array:
    """Standard normal draws of shape ``(num, *event)``; standardised if asked.

    Standardised draws come in antithetic pairs (exact sample mean 0) and are whitened so that
    their sample second moment is exactly the identity. A fixed-draw objective then integrates
    every quadratic function exactly, so a Gaussian fitted to a Gaussian target is exact; for
    other targets the draws are still a Monte Carlo sample of N(0, I).
    """
    num, event = shape[0], shape[1:]
    dim = int(np.prod(event, dtype=int))
    if not standardize or num < 2 * dim + 2:
        return jax.random.normal(key, shape)
    half = jax.random.normal(key, ((num + 1) // 2, dim))
    eps = jnp.concatenate([half, -half])[:num]
    if num % 2:  # an odd count: drop the last antithetic partner, keep the mean at 0
        eps = eps - jnp.mean(eps, axis=0)
    second = eps.T @ eps / num
    chol = jnp.linalg.cholesky(second)
    eps = jax.scipy.linalg.solve_triangular(chol, eps.T, lower=True).T
    return eps.reshape(shape)
