"""Reverse-KL objectives for every family: the ELBO (exact-entropy, sticking-the-landing) and Rényi-α.

With r(x) = log p̃(x) − log q_θ(x) and reparameterised draws x_s = T_θ(ε_s) with weights w_s
(1/S; π_k/S for a mixture's stratified draws):

    −ELBO      = −Σ_s w_s r(x_s)                                  (α = 1: reverse KL − log Z)
    −L_α       = −1/(1−α) mean_g log (1/K) Σ_{s∈g} exp((1−α) r(x_s))  (variational Rényi bound)

over groups g of K = 8 draws (one weighted group of all draws for stratified mixtures, or when
the draw count is not a multiple of K). A single group of many fixed draws would be degenerate
(the optimiser could raise the bound by moving one draw onto the mode), hence the groups.

L_α decreases in α from log Z-like (α = 0: the importance-weighted bound on all S draws) to the
ELBO (α → 1): small α covers more mass of p. Sticking the landing (Roeder et al. 2017): in the
ELBO, log q is evaluated at stopped-gradient parameters, so that the score term (zero in
expectation, not in a sample) leaves the gradient, whose variance then vanishes as q → p.

``statics = (family, log_density, num, alpha, stl)``, all hashable compile-time constants.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._objectives import log_density_values

GROUP = 8

__all__ = ["weighted_draws", "log_ratios", "vi_loss", "vi_loss_fresh", "closed_entropy"]


def weighted_draws(family: Any, params: Any, noise: Any, num: int) -> tuple[jax.Array, jax.Array]:
    """Reparameterised draws and their weights (stratified for families that define them)."""
    if hasattr(family, "weighted_draws"):
        return family.weighted_draws(params, noise, num)
    x = family.draws(params, noise, num)
    return x, jnp.full(x.shape[0], 1.0 / x.shape[0], dtype=x.dtype)


def closed_entropy(family: Any) -> bool:
    """Whether the family's entropy is exact (a closed form that does not use the draws)."""
    return not hasattr(family, "weighted_draws")


def log_ratios(family: Any, log_density: Any, params: Any, x: jax.Array, target: Any, *, stl: bool) -> tuple:
    """(log p̃(x), log q(x)); log q at stopped-gradient parameters when ``stl``."""
    log_p = log_density_values(log_density, target, x)
    q = family.distribution(jax.lax.stop_gradient(params) if stl else params)
    return log_p, q.log_prob(x)


def vi_loss(statics: tuple, params: Any, noise: Any, target: Any) -> jax.Array:
    """The negative ELBO (α = 1) or the negative Rényi bound −L_α on the base draws ``noise``."""
    family, log_density, num, alpha, stl = statics
    if alpha == 1.0 and not stl and hasattr(family, "draws_and_log_prob"):  # log q from the forward pass
        x, log_q = family.draws_and_log_prob(params, noise, num)
        return -jnp.mean(log_density_values(log_density, target, x) - log_q)
    x, w = weighted_draws(family, params, noise, num)
    if alpha == 1.0 and not stl and closed_entropy(family):
        return -jnp.dot(w, log_density_values(log_density, target, x)) - family.entropy(params, x)
    log_p, log_q = log_ratios(family, log_density, params, x, target, stl=stl and alpha == 1.0)
    r = log_p - log_q
    if alpha == 1.0:
        return -jnp.dot(w, r)
    if hasattr(family, "weighted_draws") or r.shape[0] % GROUP:  # one group of all draws, weighted
        return -jax.nn.logsumexp((1.0 - alpha) * r, b=w) / (1.0 - alpha)
    groups = ((1.0 - alpha) * r).reshape(-1, GROUP)  # the VR bound with K = GROUP draws, averaged
    return -jnp.mean(jax.nn.logsumexp(groups, axis=1) - jnp.log(GROUP)) / (1.0 - alpha)


def vi_loss_fresh(statics: tuple, params: Any, key: jax.Array, target: Any) -> jax.Array:
    """:func:`vi_loss` on fresh base draws from ``key`` (stochastic optimisers)."""
    family, _, num, _, _ = statics
    return vi_loss(statics, params, family.base_noise(key, num, standardize=False), target)
