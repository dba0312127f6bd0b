"""Wishart: KL divergence and entropy in closed form.

For W_p(n, V) with density ∝ |X|^((n−p−1)/2) exp(−tr(V⁻¹X)/2), and A = V₁⁻¹V₀:

    KL(W(n₀, V₀) ‖ W(n₁, V₁)) = n₁/2 · [tr A − p − log|A|] + (n₀ − n₁)/2 · (tr A − p)
                                + log Γ_p(n₁/2) − log Γ_p(n₀/2) − (n₁ − n₀)/2 · ψ_p(n₀/2),

where Γ_p is the multivariate gamma function and ψ_p(a) = Σ_{i<p} ψ(a − i/2) its log-derivative.
The first bracket is Σ_i (λ_i − 1 − log λ_i) ≥ 0 over the eigenvalues of A; tr A and log|A| come
from one triangular solve with the stored Cholesky factors (no Cholesky factorisation here).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import digamma, multigammaln
from numpyro.distributions import Wishart

from ._registry import register_entropy, register_kl

__all__ = ["wishart_kl", "wishart_entropy"]


def _multidigamma(a: jax.Array, p: int) -> jax.Array:
    return jnp.sum(digamma(a[..., None] - 0.5 * jnp.arange(p)), axis=-1)


def _log_det_from_tril(tril: jax.Array) -> jax.Array:
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(tril, axis1=-2, axis2=-1)), axis=-1)


def wishart_kl(n0: jax.Array, tril0: jax.Array, n1: jax.Array, tril1: jax.Array) -> jax.Array:
    """KL(W(n₀, L₀L₀ᵀ) ‖ W(n₁, L₁L₁ᵀ)) from degrees of freedom and scale Cholesky factors.

    Args:
        n0, n1: degrees of freedom (concentration), batch shape.
        tril0, tril1: lower Cholesky factors of the scale matrices, shape ``(..., p, p)``.

    Returns:
        The divergence over the broadcast batch shape (never negative).
    """
    p = tril0.shape[-1]
    shape = jnp.broadcast_shapes(tril0.shape, tril1.shape)
    m = solve_triangular(jnp.broadcast_to(tril1, shape), jnp.broadcast_to(tril0, shape), lower=True)
    trace = jnp.sum(m * m, axis=(-2, -1))
    log_det = _log_det_from_tril(tril0) - _log_det_from_tril(tril1)
    excess = trace - p
    gaussian_part = 0.5 * n1 * (excess - log_det)
    gamma_part = (
        multigammaln(0.5 * n1, p) - multigammaln(0.5 * n0, p) - 0.5 * (n1 - n0) * _multidigamma(0.5 * n0, p)
    )
    return jnp.maximum(gaussian_part + 0.5 * (n0 - n1) * excess + gamma_part, 0.0)


def wishart_entropy(n: jax.Array, tril: jax.Array) -> jax.Array:
    """Differential entropy of W_p(n, LLᵀ):
    (p+1)/2·log|V| + p(p+1)/2·log 2 + log Γ_p(n/2) − (n−p−1)/2·ψ_p(n/2) + np/2."""
    p = tril.shape[-1]
    return (
        0.5 * (p + 1) * _log_det_from_tril(tril)
        + 0.5 * p * (p + 1) * jnp.log(2.0)
        + multigammaln(0.5 * n, p)
        - 0.5 * (n - p - 1) * _multidigamma(0.5 * n, p)
        + 0.5 * n * p
    )


@register_kl(Wishart, Wishart)
def _kl_wishart(p: Wishart, q: Wishart) -> jax.Array:
    return wishart_kl(p.concentration, p.scale_tril, q.concentration, q.scale_tril)


@register_entropy(Wishart)
def _entropy_wishart(p: Wishart) -> jax.Array:
    return wishart_entropy(p.concentration, p.scale_tril)
