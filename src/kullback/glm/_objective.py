"""The softmax (multinomial) cross-entropy of a linear model, its gradient and Hessian: pure JAX.

One parameterisation serves both estimators. With K classes, q = p + [intercept] coefficients
per free class and M free classes, the parameters are a flat vector θ of length M·q, class
after class (each class: intercept first, then the p slopes). The logits of row i are

    L_i = [0, θ_1ᵀx̃_i, …, θ_{K−1}ᵀx̃_i] + o_i      (reference class 0: M = K − 1), or
    L_i = [θ_0ᵀx̃_i, …, θ_{K−1}ᵀx̃_i] + o_i          (all classes free:  M = K),

x̃ = [1, x] with an intercept, o_i an offset. Binary logistic regression is K = 2 with a
reference class. The mean objective, weights w summing to 1, is

    f(θ) = Σ_i w_i ℓ_i(θ) + ½ Σ_j r_j θ_j² + ½ μ (Σ_k b_k)²,   ℓ_i = −log softmax(L_i)_{y_i},

r a ridge weight per parameter (0 on intercepts) and the last term (μ > 0 only when all classes
are free and there is an intercept) pins the unpenalised intercepts to sum to 0, which changes
no prediction. With P = softmax(L) and Y the one-hot labels,

    ∇_{θ_k} f = Σ_i w_i (P_ik − Y_ik) x̃_i + r ⊙ θ_k,
    ∇²_{θ_k θ_l} f = Σ_i w_i P_ik (δ_kl − P_il) x̃_i x̃_iᵀ + diag(r) δ_kl.

The per-row loss is softplus(logsumexp_{k ≠ y} L_k − L_y), exact (no cancellation) for any
finite logits: e.g. 4.25e-18 for a binary logit of 40, 1e4 for a logit of −1e4.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["linear", "logits", "row_loss", "objective", "gradient", "hessian"]


def linear(X: jax.Array, theta: jax.Array, num_free: int, intercept: bool) -> jax.Array:
    """The free logits X̃Θᵀ, shape ``(n, M)``; the intercept is added, never concatenated to X."""
    Theta = theta.reshape(num_free, -1)
    eta = X @ Theta[:, int(intercept):].T
    return eta + Theta[:, 0] if intercept else eta


def logits(eta: jax.Array, offset: jax.Array, reference: bool) -> jax.Array:
    """All K logits: a zero column for the reference class (if any), plus the offset."""
    if reference:
        eta = jnp.concatenate([jnp.zeros_like(eta[:, :1]), eta], axis=1)
    return eta + offset


def row_loss(L: jax.Array, Y: jax.Array) -> jax.Array:
    """−log softmax(L_i)_{y_i} for one-hot rows Y, as softplus(logsumexp_{k≠y} L_k − L_y)."""
    chosen = jnp.sum(jnp.where(Y > 0, L, 0.0), axis=1)
    others = jax.nn.logsumexp(jnp.where(Y > 0, -jnp.inf, L), axis=1)
    return jax.nn.softplus(others - chosen)


def _center_term(theta: jax.Array, num_free: int, mu: jax.Array, intercept: bool) -> jax.Array:
    if not intercept:
        return jnp.zeros((), theta.dtype)
    return 0.5 * mu * jnp.sum(theta.reshape(num_free, -1)[:, 0]) ** 2


def objective(
    L: jax.Array, Y: jax.Array, w: jax.Array, r: jax.Array, mu: jax.Array, theta: jax.Array,
    num_free: int, intercept: bool,
) -> jax.Array:
    """f(θ) given the logits L at θ (the smooth part; an L1 term is added by the solver)."""
    return (
        jnp.sum(w * row_loss(L, Y))
        + 0.5 * jnp.sum(r * theta * theta)
        + _center_term(theta, num_free, mu, intercept)
    )


def _free_columns(A: jax.Array, reference: bool) -> jax.Array:
    return A[:, 1:] if reference else A


def gradient(
    X: jax.Array, L: jax.Array, Y: jax.Array, w: jax.Array, r: jax.Array, mu: jax.Array,
    theta: jax.Array, reference: bool, intercept: bool,
) -> jax.Array:
    """∇f(θ), flat, length M·q."""
    R = _free_columns(w[:, None] * (jax.nn.softmax(L, axis=1) - Y), reference)  # (n, M)
    g = R.T @ X  # (M, p)
    if intercept:
        g = jnp.concatenate([jnp.sum(R, axis=0)[:, None], g], axis=1)
    g = g.reshape(-1) + r * theta
    if intercept:
        M = R.shape[1]
        b_sum = jnp.sum(theta.reshape(M, -1)[:, 0])
        g = g.reshape(M, -1).at[:, 0].add(mu * b_sum).reshape(-1)
    return g


def _gram(X: jax.Array, a: jax.Array, intercept: bool) -> jax.Array:
    """X̃ᵀ diag(a) X̃ without forming X̃ = [1, X]."""
    G = (X.T * a) @ X
    if not intercept:
        return G
    v = X.T @ a
    top = jnp.concatenate([jnp.sum(a)[None], v])[None, :]
    return jnp.concatenate([top, jnp.concatenate([v[:, None], G], axis=1)], axis=0)


def _not_k(L: jax.Array, k: int) -> jax.Array:
    """1 − P_k as a probability of its own (no cancellation when P_k is near 1)."""
    lse = jax.nn.logsumexp(L, axis=1)
    rest = jax.nn.logsumexp(L.at[:, k].set(-jnp.inf), axis=1)
    return jnp.exp(rest - lse)


def hessian(
    X: jax.Array, L: jax.Array, w: jax.Array, r: jax.Array, mu: jax.Array,
    reference: bool, intercept: bool,
) -> jax.Array:
    """∇²f(θ), shape ``(M·q, M·q)``, symmetric; blocks assembled from weighted Gram matrices."""
    P = jax.nn.softmax(L, axis=1)
    free = list(range(1, L.shape[1])) if reference else list(range(L.shape[1]))
    M = len(free)
    blocks = [[None] * M for _ in range(M)]
    for a, k in enumerate(free):
        for b in range(a, M):
            l = free[b]
            weight = w * P[:, k] * (_not_k(L, k) if a == b else -P[:, l])
            blocks[a][b] = _gram(X, weight, intercept)
            blocks[b][a] = blocks[a][b].T if a != b else blocks[a][b]
    H = jnp.block(blocks) + jnp.diag(r)
    if intercept:
        q = H.shape[0] // M
        e = jnp.zeros(M * q, H.dtype).at[::q].set(1.0)  # the intercepts' positions
        H = H + mu * jnp.outer(e, e)
    return H
