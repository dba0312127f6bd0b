"""The low-rank-plus-diagonal Gaussian N(μ, W Wᵀ + diag(δ²)) on R^d, for reverse fits in high dimension."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from ._base import AbstractFamily, Params, base_normals, check_positive_ints

__all__ = ["LowRankGaussian"]


def _pattern(dim: int, rank: int) -> jax.Array:
    """A fixed, full-rank (d, r) pattern with entries in [−1, 1]: W = 0 is a saddle of the ELBO."""
    i = jnp.arange(dim)[:, None]
    j = jnp.arange(rank)[None, :]
    return jnp.cos(1.0 + 2.3 * i * (j + 1) + 0.7 * j)


@dataclasses.dataclass(frozen=True)
class LowRankGaussian(AbstractFamily):
    """Gaussian q_θ = N(μ, W Wᵀ + diag(δ²)) with a d × r factor W: O(d r) parameters and work.

    Between mean field (r = 0) and a full covariance (r = d − 1 and more): the r directions of W
    carry the strongest correlations. Draws x = μ + W z + δ ⊙ ε with (z, ε) ~ N(0, I_{r+d}).
    Entropy in closed form: H = ½ d log(2πe) + Σ_i log δ_i + ½ log det(I_r + Wᵀ diag(δ⁻²) W).
    Unconstrained parameters ``{"loc", "cov_factor", "log_diag"}``; constrained ones: ``loc``,
    ``cov_factor``, ``cov_diag`` (δ²) and ``covariance``.

    Args:
        dim: the dimension d ≥ 1.
        rank: the rank r ≥ 1 of W.

    Example:
        >>> import jax.numpy as jnp
        >>> from kullback.families import LowRankGaussian
        >>> g = LowRankGaussian(3, rank=1)
        >>> q = g.distribution(g.from_constrained({"loc": jnp.zeros(3), "cov_factor": jnp.ones((3, 1)),
        ...                                         "cov_diag": jnp.ones(3)}))
        >>> [round(float(v), 4) for v in q.covariance_matrix[0]], round(float(g.entropy(g.from_constrained(
        ...     {"loc": jnp.zeros(3), "cov_factor": jnp.ones((3, 1)), "cov_diag": jnp.ones(3)}), None)), 4)
        ([2.0, 1.0, 1.0], 4.9499)
    """

    dim: int
    rank: int = 1

    def __post_init__(self) -> None:
        check_positive_ints(self, "dim", "rank")

    @property
    def event_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return (self.dim,)

    @property
    def name(self) -> str:
        return f"LowRankGaussian({self.dim}, rank={self.rank})"

    def distribution(self, params: Params) -> dist.Distribution:
        return dist.LowRankMultivariateNormal(params["loc"], params["cov_factor"], jnp.exp(2 * params["log_diag"]))

    def constrained(self, params: Params) -> dict[str, jax.Array]:
        w, diag = params["cov_factor"], jnp.exp(2 * params["log_diag"])
        return {"loc": params["loc"], "cov_factor": w, "cov_diag": diag, "covariance": w @ w.T + jnp.diag(diag)}

    def from_constrained(self, values: dict[str, Any]) -> Params:
        loc = jnp.broadcast_to(jnp.asarray(values["loc"], dtype=float), (self.dim,))
        w = jnp.broadcast_to(jnp.asarray(values["cov_factor"], dtype=float), (self.dim, self.rank))
        diag = jnp.broadcast_to(jnp.asarray(values["cov_diag"], dtype=float), (self.dim,))
        return {"loc": loc, "cov_factor": w, "log_diag": 0.5 * jnp.log(diag)}

    def init_from_data(self, data: jax.Array) -> Params:
        return self.init_at(jnp.mean(data, axis=0), jnp.std(data, axis=0))

    def init_at(self, center: jax.Array, scale: jax.Array) -> Params:
        """Mean ``center``, variances ``scale²`` of which a tenth in the small fixed factor W."""
        scale = jnp.broadcast_to(jnp.asarray(scale, dtype=float), (self.dim,))
        w = 0.3 * scale[:, None] * _pattern(self.dim, self.rank) / math.sqrt(self.rank)
        diag = jnp.maximum(scale**2 - jnp.sum(w**2, axis=1), 0.5 * scale**2)
        return self.from_constrained({"loc": center, "cov_factor": w, "cov_diag": diag})

    def base_noise(self, key: jax.Array, num: int, *, standardize: bool) -> jax.Array:
        return base_normals(key, (num, self.rank + self.dim), standardize=standardize)

    def draws(self, params: Params, noise: jax.Array, num: int) -> jax.Array:
        z, eps = noise[:, : self.rank], noise[:, self.rank :]
        return params["loc"] + z @ params["cov_factor"].T + eps * jnp.exp(params["log_diag"])

    def entropy(self, params: Params, x: Any) -> jax.Array:
        w, log_diag = params["cov_factor"], params["log_diag"]
        scaled = w * jnp.exp(-log_diag)[:, None]
        capacitance = jnp.eye(self.rank) + scaled.T @ scaled
        log_det = 2 * jnp.sum(log_diag) + 2 * jnp.sum(jnp.log(jnp.diagonal(jnp.linalg.cholesky(capacitance))))
        return 0.5 * self.dim * (1.0 + math.log(2 * math.pi)) + 0.5 * log_det
