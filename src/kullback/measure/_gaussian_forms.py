"""Closed forms for Gaussians: univariate, diagonal (``Independent(Normal)``) and full covariance.

All KLs are written as sums of non-negative terms, so that they cannot cancel to a negative
value, in float32 too. For the univariate pair, with t = log(σ_p²/σ_q²) and φ(t) = eᵗ − 1 − t,

    KL(N(μ_p, σ_p²) ‖ N(μ_q, σ_q²)) = ½ [φ(t) + ((μ_p − μ_q)/σ_q)²].

For d-dimensional Gaussians with lower Cholesky factors L_p, L_q, let A = L_q⁻¹ L_p (lower
triangular, diagonal a_i = L_p,ii / L_q,ii) and δ = L_q⁻¹(μ_p − μ_q). Then
tr(Σ_q⁻¹Σ_p) = ‖A‖²_F and log det(Σ_p)/det(Σ_q) = Σ 2 log a_i, so

    KL = ½ [Σ_{i>j} A_ij² + Σ_i φ(2 log a_i) + ‖δ‖²].

The off-diagonal part of A equals that of L_q⁻¹(L_p − L_q), computed from the difference of the
factors (accurate when the pair is close), and p's and q's data go through ONE triangular solve
with the right-hand side [L_p − L_q | μ_p − μ_q]: a jitted program with two independent batched
solves or Cholesky factorisations can deadlock XLA on a 2-core CPU (see DESIGN.md).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from numpyro.distributions import ExpandedDistribution, Independent, MultivariateNormal, Normal

from ._discrete import log_ratio, phi
from ._registry import register_entropy, register_kl

__all__ = [
    "normal_kl",
    "normal_entropy",
    "gaussian_kl_tril",
    "gaussian_kl_cov",
    "gaussian_entropy_tril",
]

_HALF_LOG_2PI_E = 0.5 * (1.0 + math.log(2.0 * math.pi))


@jax.jit
def normal_kl(loc_p: jax.Array, scale_p: jax.Array, loc_q: jax.Array, scale_q: jax.Array) -> jax.Array:
    """KL between univariate normals, ½[φ(log σ_p²/σ_q²) + ((μ_p − μ_q)/σ_q)²], broadcast.

    Example:
        >>> round(float(normal_kl(0.0, 1.0, 1.0, 2.0)), 6)
        0.443147
    """
    t = 2.0 * log_ratio(jnp.asarray(scale_p), jnp.asarray(scale_q))
    z = (loc_p - loc_q) / scale_q
    return 0.5 * (phi(t) + z * z)


@jax.jit
def normal_entropy(scale: jax.Array) -> jax.Array:
    """Differential entropy of a normal, ½ log(2πe σ²)."""
    return _HALF_LOG_2PI_E + jnp.log(scale)


@jax.jit
def gaussian_kl_tril(
    loc_p: jax.Array, tril_p: jax.Array, loc_q: jax.Array, tril_q: jax.Array
) -> jax.Array:
    """KL between Gaussians given by means ``(..., d)`` and lower Cholesky factors ``(..., d, d)``.

    Batch axes broadcast. One triangular solve, on [L_p − L_q | μ_p − μ_q].

    Example:
        >>> import jax.numpy as jnp
        >>> round(float(gaussian_kl_tril(jnp.zeros(2), jnp.eye(2), jnp.ones(2), 2 * jnp.eye(2))), 6)
        0.886294
    """
    tril_p, tril_q = jnp.tril(tril_p), jnp.tril(tril_q)
    d = tril_q.shape[-1]
    batch = jnp.broadcast_shapes(loc_p.shape[:-1], tril_p.shape[:-2], loc_q.shape[:-1], tril_q.shape[:-2])
    rhs = jnp.concatenate(
        [
            jnp.broadcast_to(tril_p - tril_q, batch + (d, d)),
            jnp.broadcast_to((loc_p - loc_q)[..., None], batch + (d, 1)),
        ],
        axis=-1,
    )
    x = solve_triangular(jnp.broadcast_to(tril_q, batch + (d, d)), rhs, lower=True)
    off_diagonal = jnp.sum(jnp.tril(x[..., :d], -1) ** 2, axis=(-2, -1))
    diag_p = jnp.diagonal(tril_p, axis1=-2, axis2=-1)
    diag_q = jnp.diagonal(tril_q, axis1=-2, axis2=-1)
    diagonal = jnp.sum(phi(2.0 * log_ratio(diag_p, diag_q)), axis=-1)
    mahalanobis = jnp.sum(x[..., d] ** 2, axis=-1)
    return 0.5 * (off_diagonal + jnp.broadcast_to(diagonal, batch) + mahalanobis)


@jax.jit
def gaussian_kl_cov(loc_p: jax.Array, cov_p: jax.Array, loc_q: jax.Array, cov_q: jax.Array) -> jax.Array:
    """KL between Gaussians given by covariance matrices: both factored by ONE Cholesky call.

    Use this, not two separate factorisations, inside jit (the 2-core deadlock, DESIGN.md).

    Example:
        >>> import jax.numpy as jnp
        >>> round(float(gaussian_kl_cov(jnp.zeros(2), jnp.eye(2), jnp.ones(2), 4 * jnp.eye(2))), 6)
        0.886294
    """
    shape = jnp.broadcast_shapes(cov_p.shape, cov_q.shape)
    both = jnp.linalg.cholesky(jnp.stack([jnp.broadcast_to(cov_p, shape), jnp.broadcast_to(cov_q, shape)]))
    return gaussian_kl_tril(loc_p, both[0], loc_q, both[1])


@jax.jit
def gaussian_entropy_tril(tril: jax.Array) -> jax.Array:
    """Entropy of a d-dimensional Gaussian, d/2·(1 + log 2π) + Σ log L_ii."""
    d = tril.shape[-1]
    diag = jnp.diagonal(tril, axis1=-2, axis2=-1)
    return d * _HALF_LOG_2PI_E + jnp.sum(jnp.log(diag), axis=-1)


def _normal_base(d: Any) -> Normal | None:
    """The Normal inside ``Independent(Normal)`` or ``Independent(Normal.expand(...))``."""
    base = d.base_dist
    while isinstance(base, ExpandedDistribution):
        base = base.base_dist
    return base if isinstance(base, Normal) else None


def _is_diagonal_normal(d: Any) -> bool:
    return isinstance(d, Independent) and d.reinterpreted_batch_ndims == 1 and _normal_base(d) is not None


def _diagonal_as_tril(d: Independent) -> tuple[jax.Array, jax.Array]:
    base = _normal_base(d)
    shape = d.base_dist.batch_shape
    loc = jnp.broadcast_to(base.loc, shape)
    scale = jnp.broadcast_to(base.scale, shape)
    return loc, scale[..., :, None] * jnp.eye(shape[-1], dtype=scale.dtype)


@register_kl(Normal, Normal)
def _kl_normal_normal(p: Normal, q: Normal) -> jax.Array:
    return normal_kl(p.loc, p.scale, q.loc, q.scale)


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p: MultivariateNormal, q: MultivariateNormal) -> jax.Array:
    return gaussian_kl_tril(p.loc, p.scale_tril, q.loc, q.scale_tril)


@register_kl(Independent, MultivariateNormal, when=lambda p, q: _is_diagonal_normal(p))
def _kl_diagonal_mvn(p: Independent, q: MultivariateNormal) -> jax.Array:
    loc_p, tril_p = _diagonal_as_tril(p)
    return gaussian_kl_tril(loc_p, tril_p, q.loc, q.scale_tril)


@register_kl(MultivariateNormal, Independent, when=lambda p, q: _is_diagonal_normal(q))
def _kl_mvn_diagonal(p: MultivariateNormal, q: Independent) -> jax.Array:
    loc_q, tril_q = _diagonal_as_tril(q)
    return gaussian_kl_tril(p.loc, p.scale_tril, loc_q, tril_q)


@register_entropy(Normal)
def _entropy_normal(p: Normal) -> jax.Array:
    return normal_entropy(jnp.asarray(p.scale))


@register_entropy(MultivariateNormal)
def _entropy_mvn(p: MultivariateNormal) -> jax.Array:
    return gaussian_entropy_tril(p.scale_tril)
