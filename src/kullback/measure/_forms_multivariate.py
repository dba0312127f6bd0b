"""Closed forms for multivariate families: low-rank Gaussians (with full and diagonal ones) and
the Dirichlet.

Gaussians go through :func:`gaussian_kl_cov` / :func:`gaussian_kl_tril` (termwise
non-negative). A low-rank Gaussian's covariance W Wᵀ + D is formed and factored here; when both
sides need a factorisation they share ONE batched Cholesky call (two independent ones in one
jitted program can deadlock XLA on a 2-core CPU, see DESIGN.md).

    Dirichlet(α) ‖ Dirichlet(β) = log Γ(α₀) − Σ log Γ(α_k) − log Γ(β₀) + Σ log Γ(β_k)
                                  + Σ (α_k − β_k)(ψ(α_k) − ψ(α₀)),   α₀ = Σ α_k, β₀ = Σ β_k.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln
from numpyro.distributions import Dirichlet, Independent, LowRankMultivariateNormal, MultivariateNormal

from ._gaussian_forms import _diagonal_as_tril, _is_diagonal_normal, gaussian_kl_cov, gaussian_kl_tril
from ._registry import register_kl

__all__ = ["dirichlet_kl"]


def dirichlet_kl(alpha: jax.Array, beta: jax.Array) -> jax.Array:
    """KL(Dirichlet(α) ‖ Dirichlet(β)) over the last axis (formula in the module docstring).

    Example:
        >>> import jax.numpy as jnp
        >>> round(float(dirichlet_kl(jnp.array([1.0, 2.0, 3.0]), jnp.ones(3))), 6)
        0.551197
    """
    alpha, beta = jnp.asarray(alpha), jnp.asarray(beta)
    a0, b0 = jnp.sum(alpha, -1), jnp.sum(beta, -1)
    value = (
        gammaln(a0)
        - jnp.sum(gammaln(alpha), -1)
        - gammaln(b0)
        + jnp.sum(gammaln(beta), -1)
        + jnp.sum((alpha - beta) * (digamma(alpha) - digamma(a0)[..., None]), -1)
    )
    return jnp.maximum(value, 0.0)


def _low_rank_cov(d: LowRankMultivariateNormal) -> jax.Array:
    w, diag = jnp.asarray(d.cov_factor), jnp.asarray(d.cov_diag)
    return w @ jnp.swapaxes(w, -1, -2) + diag[..., :, None] * jnp.eye(diag.shape[-1], dtype=diag.dtype)



@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
def _kl_low_rank(p: LowRankMultivariateNormal, q: LowRankMultivariateNormal) -> jax.Array:
    return gaussian_kl_cov(p.loc, _low_rank_cov(p), q.loc, _low_rank_cov(q))


@register_kl(LowRankMultivariateNormal, MultivariateNormal)
def _kl_low_rank_mvn(p: LowRankMultivariateNormal, q: MultivariateNormal) -> jax.Array:
    tril_p = jnp.linalg.cholesky(_low_rank_cov(p))
    return gaussian_kl_tril(p.loc, tril_p, q.loc, q.scale_tril)


@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _kl_mvn_low_rank(p: MultivariateNormal, q: LowRankMultivariateNormal) -> jax.Array:
    tril_q = jnp.linalg.cholesky(_low_rank_cov(q))
    return gaussian_kl_tril(p.loc, p.scale_tril, q.loc, tril_q)


@register_kl(Independent, LowRankMultivariateNormal, when=lambda p, q: _is_diagonal_normal(p))
def _kl_diagonal_low_rank(p: Independent, q: LowRankMultivariateNormal) -> jax.Array:
    loc_p, tril_p = _diagonal_as_tril(p)
    return gaussian_kl_tril(loc_p, tril_p, q.loc, jnp.linalg.cholesky(_low_rank_cov(q)))


@register_kl(LowRankMultivariateNormal, Independent, when=lambda p, q: _is_diagonal_normal(q))
def _kl_low_rank_diagonal(p: LowRankMultivariateNormal, q: Independent) -> jax.Array:
    loc_q, tril_q = _diagonal_as_tril(q)
    return gaussian_kl_tril(p.loc, jnp.linalg.cholesky(_low_rank_cov(p)), loc_q, tril_q)


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet(p: Dirichlet, q: Dirichlet) -> jax.Array:
    return dirichlet_kl(p.concentration, q.concentration)
