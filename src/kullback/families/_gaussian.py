"""The Gaussian family N(μ, Σ) on R^d, with a diagonal or a full covariance."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
import numpy as np

from ._base import AbstractFamily, Params, base_normals, check_positive_ints

__all__ = ["Gaussian"]

COVARIANCES = ("diag", "full", "spherical")


class _LowerCholesky:
    """numpyro's ``biject_to(constraints.lower_cholesky)``: R^{d(d+1)/2} → lower triangular L with
    a positive diagonal (the strictly lower part row by row, then log diag L), the same vector
    layout. Its index arithmetic is done in NumPy: numpyro's runs a dozen tiny XLA programs at
    every first trace."""

    @staticmethod
    def _dim(size: int) -> int:
        return round((math.sqrt(1 + 8 * size) - 1) / 2)

    def __call__(self, x: jax.Array) -> jax.Array:
        n = self._dim(x.shape[-1])
        rows, cols = np.tril_indices(n, -1)
        z = jnp.zeros((*x.shape[:-1], n, n), x.dtype).at[..., rows, cols].set(x[..., : x.shape[-1] - n])
        return z + jnp.exp(x[..., x.shape[-1] - n :])[..., None] * np.eye(n, dtype=x.dtype)

    def inv(self, y: jax.Array) -> jax.Array:
        n = y.shape[-1]
        rows, cols = np.tril_indices(n, -1)
        return jnp.concatenate([y[..., rows, cols], jnp.log(jnp.diagonal(y, axis1=-2, axis2=-1))], axis=-1)


_TRIL = _LowerCholesky()


@dataclasses.dataclass(frozen=True)
class Gaussian(AbstractFamily):
    """Gaussian q_θ = N(μ, Σ) on R^d, the workhorse family for both fit directions.

    Σ = diag(σ²) with σ = exp(log σ) for ``covariance="diag"`` (mean field), Σ = σ² I with one
    σ for ``covariance="spherical"``, Σ = L Lᵀ with
    L lower triangular (positive diagonal) for ``covariance="full"``. Unconstrained parameters:
    ``{"loc": μ, "log_scale": log σ}`` or ``{"loc": μ, "tril": vec(L)}``; constrained ones
    (``FitResult.params``): ``loc`` and ``scale`` or ``scale_tril``, plus ``covariance``.
    Entropy in closed form: H = ½ d log(2πe) + Σ_i log L_ii.

    Args:
        dim: the dimension d ≥ 1 of x.
        covariance: ``"diag"``, ``"spherical"`` or ``"full"``.

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
        check_positive_ints(self, "dim")
        if self.covariance not in COVARIANCES:
            raise ValueError(f"Expected covariance to be one of {COVARIANCES}; got {self.covariance!r}.")

    @property
    def event_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return (self.dim,)

    @property
    def name(self) -> str:
        return f"Gaussian({self.dim}, covariance={self.covariance!r})"

    def _scale(self, params: Params) -> jax.Array:
        """The per-coordinate σ (diag, spherical), broadcast against the loc (batched params too)."""
        log_scale = params["log_scale"]
        if self.covariance == "spherical":
            log_scale = log_scale[..., None]
        return jnp.broadcast_to(jnp.exp(log_scale), params["loc"].shape)

    def _tril(self, params: Params) -> jax.Array:
        if self.covariance != "full":
            return jnp.diag(self._scale(params))
        return _TRIL(params["tril"])

    def distribution(self, params: Params) -> dist.Distribution:
        if self.covariance != "full":
            return dist.Normal(params["loc"], self._scale(params)).to_event(1)
        # validate_args=False: L is lower triangular with a positive diagonal by construction, and
        # numpyro's check builds its triangular mask eagerly (a dozen tiny compiles per trace)
        return dist.MultivariateNormal(params["loc"], scale_tril=_TRIL(params["tril"]), validate_args=False)

    def constrained(self, params: Params) -> dict[str, jax.Array]:
        out = {"loc": params["loc"]}
        if self.covariance != "full":  # batch-safe (mixtures stack parameters on a leading axis)
            out["scale"] = jnp.exp(params["log_scale"])
            out["covariance"] = self._scale(params)[..., :, None] ** 2 * jnp.eye(self.dim)
        else:
            tril = _TRIL(params["tril"])
            out["scale_tril"] = tril
            out["covariance"] = tril @ jnp.swapaxes(tril, -1, -2)
        return out

    def from_constrained(self, values: dict[str, Any]) -> Params:
        loc = jnp.broadcast_to(jnp.asarray(values["loc"], dtype=float), (self.dim,))
        if self.covariance != "full":
            if "scale" in values:
                scale = jnp.asarray(values["scale"], dtype=float)
            else:
                cov = jnp.asarray(values["covariance"], dtype=float)
                scale = jnp.sqrt(jnp.diagonal(cov) if cov.ndim == 2 else cov)
            if self.covariance == "spherical":
                return {"loc": loc, "log_scale": jnp.log(jnp.sqrt(jnp.mean(jnp.broadcast_to(scale, (self.dim,)) ** 2)))}
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
        if self.covariance != "full":
            return self.from_constrained({"loc": center, "scale": scale})
        return self.from_constrained({"loc": center, "scale_tril": jnp.diag(scale)})

    def mle(self, data: jax.Array, weights: jax.Array | None = None) -> Params:
        """(Weighted) sample mean and the ML (ddof=0) covariance, its diagonal for ``"diag"``, its
        mean variance for ``"spherical"``."""
        if weights is None:
            weights = jnp.full(data.shape[0], 1.0 / data.shape[0], dtype=data.dtype)
        mean = weights @ data
        centered = data - mean
        if self.covariance != "full":
            return self.from_constrained({"loc": mean, "scale": jnp.sqrt(weights @ centered**2)})
        cov = (centered * weights[:, None]).T @ centered
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
        if self.covariance != "full":
            return params["loc"] + noise * self._scale(params)
        return params["loc"] + noise @ _TRIL(params["tril"]).T

    def entropy(self, params: Params, x: jax.Array) -> jax.Array:
        log_diag = (
            jnp.log(self._scale(params))
            if self.covariance != "full"
            else jnp.log(jnp.diagonal(_TRIL(params["tril"])))
        )
        return 0.5 * self.dim * (1.0 + math.log(2 * math.pi)) + jnp.sum(log_diag)
