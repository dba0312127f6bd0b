"""A mixture of K diagonal Gaussians as q for reverse fits, with stratified reparameterised draws."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from ._base import AbstractFamily, Params, base_normals, check_positive_ints

__all__ = ["GaussianMixtureQ"]


@dataclasses.dataclass(frozen=True)
class GaussianMixtureQ(AbstractFamily):
    """q_θ(x) = Σ_k π_k N(x; μ_k, diag(σ_k²)), K components on R^d, for reverse fits.

    A draw's component is discrete, so draws are stratified instead: the same base draws ε_s go
    through every component, x_ks = μ_k + σ_k ⊙ ε_s, and E_q[f] = Σ_k π_k (1/S) Σ_s f(x_ks) is
    reparameterised in (π, μ, σ). Unconstrained parameters ``{"logits", "loc", "log_scale"}``;
    constrained: ``weights`` (π), ``loc`` (K, d) and ``scale`` (K, d).

    Args:
        dim: the dimension d ≥ 1.
        num_components: K ≥ 1.

    Example:
        >>> import jax.numpy as jnp
        >>> from kullback.families import GaussianMixtureQ
        >>> g = GaussianMixtureQ(1, num_components=2)
        >>> p = g.from_constrained({"weights": jnp.array([0.5, 0.5]), "loc": jnp.array([[-3.0], [3.0]]),
        ...                         "scale": jnp.ones((2, 1))})
        >>> x, w = g.weighted_draws(p, g.base_noise(jnp.zeros(2, dtype=jnp.uint32), 4, standardize=True), 4)
        >>> x.shape, round(float(w.sum()), 6), round(float(jnp.dot(w, x[:, 0])), 6)
        ((8, 1), 1.0, 0.0)
    """

    dim: int
    num_components: int = 2

    def __post_init__(self) -> None:
        check_positive_ints(self, "dim", "num_components")

    @property
    def event_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return (self.dim,)

    @property
    def name(self) -> str:
        return f"GaussianMixtureQ({self.dim}, num_components={self.num_components})"

    def distribution(self, params: Params) -> dist.Distribution:
        components = dist.Normal(params["loc"], jnp.exp(params["log_scale"])).to_event(1)
        return dist.MixtureSameFamily(dist.Categorical(logits=params["logits"]), components)

    def constrained(self, params: Params) -> dict[str, jax.Array]:
        return {"weights": jax.nn.softmax(params["logits"]), "loc": params["loc"],
                "scale": jnp.exp(params["log_scale"])}

    def from_constrained(self, values: dict[str, Any]) -> Params:
        shape = (self.num_components, self.dim)
        weights = jnp.broadcast_to(jnp.asarray(values["weights"], dtype=float), (self.num_components,))
        return {"logits": jnp.log(weights / jnp.sum(weights)),
                "loc": jnp.broadcast_to(jnp.asarray(values["loc"], dtype=float), shape),
                "log_scale": jnp.log(jnp.broadcast_to(jnp.asarray(values["scale"], dtype=float), shape))}

    def init_from_data(self, data: jax.Array) -> Params:
        return self.init_at(jnp.mean(data, axis=0), jnp.std(data, axis=0))

    def init_at(self, center: jax.Array, scale: jax.Array) -> Params:
        """Equal weights; component k at ``center + scale ⊙ u_k`` for fixed spread-out offsets u_k
        (one component exactly at ``center``), each with spread ``scale``."""
        scale = jnp.broadcast_to(jnp.asarray(scale, dtype=float), (self.dim,))
        offsets = 1.5 * jax.random.normal(jax.random.PRNGKey(20260), (self.num_components, self.dim))
        offsets = offsets.at[0].set(0.0)
        return self.from_constrained({"weights": jnp.ones(self.num_components),
                                      "loc": center + offsets * scale, "scale": jnp.broadcast_to(scale, offsets.shape)})

    def base_noise(self, key: jax.Array, num: int, *, standardize: bool) -> jax.Array:
        return base_normals(key, (num, self.dim), standardize=standardize)

    def weighted_draws(self, params: Params, noise: jax.Array, num: int) -> tuple[jax.Array, jax.Array]:
        """Stratified draws, shape ``(K·num, d)``, with weights π_k / num (summing to 1)."""
        x = params["loc"][:, None, :] + jnp.exp(params["log_scale"])[:, None, :] * noise[None]
        weights = jnp.repeat(jax.nn.softmax(params["logits"]) / num, num)
        return x.reshape(-1, self.dim), weights

    def draws(self, params: Params, noise: jax.Array, num: int) -> jax.Array:
        """Plain draws of q (not reparameterised in π): ``noise`` is a key here."""
        return self.distribution(params).sample(noise, (num,))

    def entropy(self, params: Params, x: jax.Array) -> jax.Array:
        """−E_q[log q] on the stratified draws of ``x`` (no closed form for a mixture)."""
        num = x.shape[0] // self.num_components
        weights = jnp.repeat(jax.nn.softmax(params["logits"]) / num, num)
        return -jnp.dot(weights, self.distribution(params).log_prob(x))
