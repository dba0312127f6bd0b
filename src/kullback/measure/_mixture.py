"""KL between Gaussian mixtures: the Hershey–Olsen variational approximation and bounds.

For p = Σ_a π_a f_a and q = Σ_b ω_b g_b with Gaussian components (KL and cross-entropies
between components in closed form, CE(f, g) = H(f) + KL(f‖g), and z(f, g) = ∫ f g = N(μ_f; μ_g,
Σ_f + Σ_g)):

    variational approximation:  D_var = Σ_a π_a log[ Σ_a' π_a' e^{−KL(f_a‖f_a')} / Σ_b ω_b e^{−KL(f_a‖g_b)} ]

Bounds, from bounds on ∫ f_a log m for a mixture m = Σ_c w_c h_c:
    Jensen (log of a mean ≥ mean of the log):   ∫ f_a log m ≤ log Σ_c w_c z(f_a, h_c)
    variational (log Σ ≥ Σ with weights):       ∫ f_a log m ≥ log Σ_c w_c e^{−CE(f_a, h_c)}

so that, with KL = ∫ p log p − ∫ p log q,

    lower = Σ_a π_a log Σ_a' π_a' e^{−CE(f_a, f_a')} − Σ_a π_a log Σ_b ω_b z(f_a, g_b)      (and ≥ 0)
    upper = Σ_a π_a log Σ_a' π_a' z(f_a, f_a') − Σ_a π_a log Σ_b ω_b e^{−CE(f_a, g_b)},

and the upper bound is also capped by the variational upper bound of Hershey & Olsen (joint
weights φ_ab, ψ_ab with margins π and ω, by convexity of KL):

    KL ≤ Σ_ab φ_ab [log(φ_ab/ψ_ab) + KL(f_a‖g_b)],  minimised by their alternating updates.

The true KL lies in [lower, upper], so |D_var − KL| ≤ max(upper − D_var, D_var − lower): that
guaranteed error is what the estimates report as ``stderr`` (not a standard error).

References: Hershey & Olsen, "Approximating the Kullback Leibler divergence between Gaussian
mixture models", ICASSP 2007; Durrieu, Thiran & Kelly, "Lower and upper bounds for
approximation of the Kullback-Leibler divergence between Gaussian mixture models", ICASSP 2012.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import logsumexp
from numpyro.distributions import Independent, MixtureSameFamily, MultivariateNormal, Normal

from ._gaussian_forms import gaussian_entropy_tril, gaussian_kl_tril

__all__ = ["MixtureBounds", "is_gaussian_mixture", "gaussian_mixture_kl"]

_VUB_ITERATIONS = 100


class MixtureBounds(NamedTuple):
    variational: jax.Array
    lower: jax.Array
    upper: jax.Array


def _components(m: Any) -> tuple[jax.Array, jax.Array, jax.Array] | None:
    """(log weights (K,), means (K, d), lower Cholesky factors (K, d, d)), or None."""
    if not isinstance(m, MixtureSameFamily) or m.batch_shape != ():
        return None
    c = m.component_distribution
    log_w = jax.nn.log_softmax(jnp.log(jnp.asarray(m.mixing_distribution.probs)), axis=-1)
    k = m.mixture_size
    if isinstance(c, Normal):
        loc = jnp.broadcast_to(c.loc, (k,))[:, None]
        return log_w, loc, jnp.broadcast_to(c.scale, (k,))[:, None, None]
    if isinstance(c, MultivariateNormal):
        d = c.event_shape[0]
        return log_w, jnp.broadcast_to(c.loc, (k, d)), jnp.broadcast_to(c.scale_tril, (k, d, d))
    if isinstance(c, Independent) and c.reinterpreted_batch_ndims == 1 and isinstance(c.base_dist, Normal):
        d = c.event_shape[0]
        scale = jnp.broadcast_to(c.base_dist.scale, (k, d))
        return log_w, jnp.broadcast_to(c.base_dist.loc, (k, d)), scale[..., None] * jnp.eye(d)
    return None


def is_gaussian_mixture(m: Any) -> bool:
    """True for an unbatched ``MixtureSameFamily`` of Normal, diagonal or full Gaussians."""
    return _components(m) is not None


def _pairwise_kl(mu_a: jax.Array, l_a: jax.Array, mu_b: jax.Array, l_b: jax.Array) -> jax.Array:
    return gaussian_kl_tril(mu_a[:, None], l_a[:, None], mu_b[None], l_b[None])


def _log_overlap(mu_a: jax.Array, l_a: jax.Array, mu_b: jax.Array, l_b: jax.Array) -> jax.Array:
    """log ∫ f_a g_b = log N(μ_a; μ_b, Σ_a + Σ_b), for all pairs (one Cholesky, one solve)."""
    cov = lambda t: t @ jnp.swapaxes(t, -1, -2)  # noqa: E731
    s = cov(l_a)[:, None] + cov(l_b)[None]
    chol = jnp.linalg.cholesky(s)
    diff = (mu_a[:, None] - mu_b[None])[..., None]
    z = solve_triangular(chol, diff, lower=True)[..., 0]
    d = mu_a.shape[-1]
    log_det = jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), -1)
    return -0.5 * jnp.sum(z * z, -1) - log_det - 0.5 * d * math.log(2.0 * math.pi)


def _variational_upper_bound(log_pi: jax.Array, log_omega: jax.Array, kl_pq: jax.Array) -> jax.Array:
    """min over joint weights of Σ φ_ab [log(φ_ab/ψ_ab) + KL(f_a‖g_b)] (Hershey–Olsen updates)."""
    log_phi = log_pi[:, None] + log_omega[None]
    log_psi = log_phi

    def step(carry: tuple[jax.Array, jax.Array], _: None) -> tuple[tuple[jax.Array, jax.Array], None]:
        log_phi, log_psi = carry
        t = log_psi - kl_pq
        log_phi = log_pi[:, None] + t - logsumexp(t, axis=1, keepdims=True)
        log_psi = log_omega[None] + log_phi - logsumexp(log_phi, axis=0, keepdims=True)
        return (log_phi, log_psi), None

    (log_phi, log_psi), _ = jax.lax.scan(step, (log_phi, log_psi), None, length=_VUB_ITERATIONS)
    return jnp.sum(jnp.exp(log_phi) * (log_phi - log_psi + kl_pq))


@jax.jit
def _kl_part(
    log_pi: jax.Array, log_omega: jax.Array, mu_p: jax.Array, l_p: jax.Array, mu_all: jax.Array, l_all: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """D_var, the variational lower bound on ∫p log p, that on ∫p log q, and the joint-weight bound."""
    k = mu_p.shape[0]
    kl_all = _pairwise_kl(mu_p, l_p, mu_all, l_all)  # one solve for the p–p and p–q pairs
    kl_pp, kl_pq = kl_all[:, :k], kl_all[:, k:]
    h_p = gaussian_entropy_tril(l_p)[:, None]
    w = jnp.exp(log_pi)
    d_var = jnp.sum(w * (logsumexp(log_pi[None] - kl_pp, axis=1) - logsumexp(log_omega[None] - kl_pq, axis=1)))
    lower_pp = jnp.sum(w * logsumexp(log_pi[None] - (h_p + kl_pp), axis=1))
    lower_pq = jnp.sum(w * logsumexp(log_omega[None] - (h_p + kl_pq), axis=1))
    return d_var, lower_pp, lower_pq, _variational_upper_bound(log_pi, log_omega, kl_pq)


@jax.jit
def _overlap_part(
    log_pi: jax.Array, log_omega: jax.Array, mu_p: jax.Array, l_p: jax.Array, mu_all: jax.Array, l_all: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The Jensen upper bounds on ∫p log q and ∫p log p (log overlaps, one Cholesky and one solve)."""
    k = mu_p.shape[0]
    overlap = _log_overlap(mu_p, l_p, mu_all, l_all)
    w = jnp.exp(log_pi)
    upper_pq = jnp.sum(w * logsumexp(log_omega[None] + overlap[:, k:], axis=1))
    upper_pp = jnp.sum(w * logsumexp(log_pi[None] + overlap[:, :k], axis=1))
    return upper_pq, upper_pp


def gaussian_mixture_kl(p: Any, q: Any) -> MixtureBounds:
    """The Hershey–Olsen variational approximation of KL(p‖q) and lower/upper bounds on it.

    Args:
        p, q: unbatched ``MixtureSameFamily`` distributions with Normal, diagonal
            (``Independent(Normal)``) or full (``MultivariateNormal``) components, same event shape.

    Returns:
        ``MixtureBounds(variational, lower, upper)``; lower ≤ KL(p‖q) ≤ upper.

    Raises:
        ValueError: p or q is not such a mixture.

    Example:
        >>> import jax.numpy as jnp
        >>> import numpyro.distributions as dist
        >>> mix = lambda w, m: dist.MixtureSameFamily(dist.Categorical(jnp.array(w)), dist.Normal(jnp.array(m), 1.0))
        >>> b = gaussian_mixture_kl(mix([0.5, 0.5], [-2.0, 2.0]), mix([0.3, 0.7], [-1.0, 2.5]))
        >>> bool(b.lower <= b.variational <= b.upper)
        True
    """
    cp, cq = _components(p), _components(q)
    for name, c, d in (("p", cp, p), ("q", cq, q)):
        if c is None:
            raise ValueError(
                f"Expected {name} to be an unbatched MixtureSameFamily of Normal, Independent(Normal) or "
                f"MultivariateNormal components; got {type(d).__name__}."
            )
    (log_pi, mu_p, l_p), (log_omega, mu_q, l_q) = cp, cq
    if mu_p.shape[-1] != mu_q.shape[-1]:
        raise ValueError(f"Expected p and q of one dimension; got {mu_p.shape[-1]} and {mu_q.shape[-1]}.")
    mu_all, l_all = jnp.concatenate([mu_p, mu_q]), jnp.concatenate([l_p, l_q])
    # two compiled programs, one triangular solve each (two in one program can deadlock XLA on 2 cores)
    d_var, lower_pp, lower_pq, vub = _kl_part(log_pi, log_omega, mu_p, l_p, mu_all, l_all)
    upper_pq, upper_pp = _overlap_part(log_pi, log_omega, mu_p, l_p, mu_all, l_all)
    # ∫p log p − ∫p log q, each side bounded the pessimistic or optimistic way
    lower, upper = lower_pp - upper_pq, jnp.minimum(upper_pp - lower_pq, vub)
    return MixtureBounds(d_var, jnp.maximum(lower, 0.0), upper)
