"""The Gaussian family N(μ, Σ) on R^d, with a diagonal or a full covariance."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to

from ._base import AbstractFamily, Params, base_normals

__all__ = ["Gaussian"]

COVARIANCES = ("diag", "full")
_TRIL = biject_to(constraints.lower_cholesky)


@dataclasses.dataclass(frozen=True)
class Gaussian(AbstractFamily):
    """Gaussian q_θ = N(μ, Σ) on R^d, the workhorse family for both fit directions.

    Σ = diag(σ²) with σ = exp(log σ) for ``covariance="diag"`` (mean field), Σ = L Lᵀ with
    L lower triangular (positive diagonal) for ``covariance="full"``. Unconstrained parameters:
    ``{"loc": μ, "log_scale": log σ}`` or ``{"loc": μ, "tril": vec(L)}``; constrained ones
    (``FitResult.params``): ``loc`` and ``scale`` or ``scale_tril``, plus ``covariance``.
    Entropy in closed form: H = ½ d log(2πe) + Σ_i log L_ii.

    Args:
        dim: the dimension d ≥ 1 of x.
        covariance: ``"diag"`` or ``"full"``.

    Example:
        >>> import jax.numpy as jnp
        >>> import kullback as kb
        >>> g = kb.families.Gaussian(2, covariance="full")
        >>> q = g.distribution(g.init_at(jnp.zeros(2), jnp.ones(2)))
        >>> q.event_shape, round(float(q.entropy()), 4)
        ((2,), 2.8379)
    """

    dim: int
    covariance: str = "diag"

    def __post_init__(self) -> None:
        if not isinstance(self.dim, int) or isinstance(self.dim, bool) or self.dim < 1:
            raise ValueError(f"Expected dim to be a positive integer; got {self.dim!r}.")
        if self.covariance not in COVARIANCES:
            raise ValueError(f"Expected covariance to be one of {COVARIANCES}; got {self.covariance!r}.")

    @property
    def event_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return (self.dim,)

    @property
    def name(self) -> str:
        return f"Gaussian({self.dim}, covariance={self.covariance!r})"

    def _tril(self, params: Params) -> jax.Array:
        if self.covariance == "diag":
            return jnp.diag(jnp.exp(params["log_scale"]))
        return _TRIL(params["tril"])

    def distribution(self, params: Params) -> dist.Distribution:
        if self.covariance == "diag":
            return dist.Normal(params["loc"], jnp.exp(params["log_scale"])).to_event(1)
        return dist.MultivariateNormal(params["loc"], scale_tril=_TRIL(params["tril"]))

    def constrained(self, params: Params) -> dict[str, jax.Array]:
        tril = self._tril(params)
        out = {"loc": params["loc"]}
        if self.covariance == "diag":
            out["scale"] = jnp.exp(params["log_scale"])
        else:
            out["scale_tril"] = tril
        out["covariance"] = tril @ tril.T
        return out

    def from_constrained(self, values: dict[str, Any]) -> Params:
        loc = jnp.broadcast_to(jnp.asarray(values["loc"], dtype=float), (self.dim,))
        if self.covariance == "diag":
            if "scale" in values:
                scale = jnp.asarray(values["scale"], dtype=float)
            else:
                scale = jnp.sqrt(jnp.diagonal(jnp.asarray(values["covariance"], dtype=float)))
            return {"loc": loc, "log_scale": jnp.log(jnp.broadcast_to(scale, (self.dim,)))}
        if "scale_tril" in values:
            tril = jnp.asarray(values["scale_tril"], dtype=float)
        else:
            cov = jnp.asarray(values["covariance"], dtype=float)
            tril = jnp.linalg.cholesky(cov) if cov.ndim == 2 else jnp.diag(jnp.sqrt(cov))
        return {"loc": loc, "tril": _TRIL.inv(tril)}

    def init_from_data(self, data: jax.Array) -> Params:
        params = self.mle(data)
        assert params is not None
        return params

    def init_at(self, center: jax.Array, scale: jax.Array) -> Params:
        scale = jnp.broadcast_to(jnp.asarray(scale, dtype=float), (self.dim,))
        if self.covariance == "diag":
            return self.from_constrained({"loc": center, "scale": scale})
        return self.from_constrained({"loc": center, "scale_tril": jnp.diag(scale)})

    def mle(self, data: jax.Array) -> Params:
        """Sample mean and the ML (ddof=0) covariance, or its diagonal for ``"diag"``."""
        mean = jnp.mean(data, axis=0)
        centered = data - mean
        if self.covariance == "diag":
            return self.from_constrained({"loc": mean, "scale": jnp.sqrt(jnp.mean(centered**2, axis=0))})
        cov = centered.T @ centered / data.shape[0]
        return self.from_constrained({"loc": mean, "covariance": cov})

    def moment_match(self, p: dist.Distribution) -> Params | None:
        """Mean and covariance of p (its variances for ``"diag"``), when p exposes them."""
        try:
            mean = jnp.broadcast_to(jnp.asarray(p.mean, dtype=float), (self.dim,))
            if self.covariance == "full" and self.dim > 1:
                cov = jnp.asarray(p.covariance_matrix, dtype=float)
            else:
                cov = jnp.broadcast_to(jnp.asarray(p.variance, dtype=float), (self.dim,))
        except (NotImplementedError, AttributeError):
            return None
        if not (jnp.all(jnp.isfinite(mean)) and jnp.all(jnp.isfinite(cov))):
            return None
        if cov.ndim == 1 and self.covariance == "full":
            cov = jnp.diag(cov)
        values = {"loc": mean, "covariance": cov} if cov.ndim == 2 else {"loc": mean, "scale": jnp.sqrt(cov)}
        return self.from_constrained(values)

    def base_noise(self, key: jax.Array, num: int, *, standardize: bool) -> jax.Array:
        return base_normals(key, (num, self.dim), standardize=standardize)

    def draws(self, params: Params, noise: jax.Array, num: int) -> jax.Array:
        if self.covariance == "diag":
            return params["loc"] + noise * jnp.exp(params["log_scale"])
        return params["loc"] + noise @ _TRIL(params["tril"]).T

    def entropy(self, params: Params, x: jax.Array) -> jax.Array:
        log_diag = (
            params["log_scale"]
            if self.covariance == "diag"
            else jnp.log(jnp.diagonal(_TRIL(params["tril"])))
        )
        return 0.5 * self.dim * (1.0 + math.log(2 * math.pi)) + jnp.sum(log_diag)
