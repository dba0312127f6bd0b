"""Quadrature nodes for a scalar distribution p: H(p, q) = −∫ p(x) log q(x) dx ≈ −Σ_i w_i log q(x_i).

Gauss–Legendre on t ∈ (−1, 1) (or (0, 1)) mapped onto p's support:
real: x = c + s t / (1 − t²); positive: x = a + s u / (1 − u) with u = (t + 1)/2; an interval
(a, b): x = a + (b − a) u. The weights w_i ∝ λ_i p(x_i) |dx/dt| are normalised to sum to 1, so a
forward fit to p becomes a weighted maximum-likelihood fit on the nodes.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions import constraints

__all__ = ["quadrature_nodes"]


def _center_scale(p: dist.Distribution) -> tuple[float, float]:
    try:
        c, s = float(p.mean), float(jnp.sqrt(p.variance))
    except (NotImplementedError, AttributeError, TypeError):
        c, s = 0.0, 1.0
    if not np.isfinite(c):
        c = 0.0
    if not (np.isfinite(s) and s > 0):
        s = 1.0
    return c, s


def quadrature_nodes(p: dist.Distribution, num: int) -> tuple[jnp.ndarray, np.ndarray]:
    """Nodes x_i (shape (m,)) inside p's support and weights w_i ≥ 0 summing to 1.

    Args:
        p: a scalar numpyro distribution with a real, positive or bounded-interval support.
        num: the number of Gauss–Legendre nodes.

    Returns:
        ``(nodes, weights)``; nodes where p's density underflows are dropped.
    """
    if num < 8:
        raise ValueError(f"Expected num_nodes to be at least 8; got {num}.")
    t, lam = np.polynomial.legendre.leggauss(num)
    support = p.support
    c, s = _center_scale(p)
    u = (t + 1.0) / 2.0
    if support is constraints.real:
        x = c + s * t / (1.0 - t**2)
        jac = s * (1.0 + t**2) / (1.0 - t**2) ** 2
    elif isinstance(support, constraints.interval) or support is constraints.unit_interval:
        a, b = float(getattr(support, "lower_bound", 0.0)), float(getattr(support, "upper_bound", 1.0))
        x = a + (b - a) * u
        jac = np.full_like(u, (b - a) / 2.0)
    elif support is constraints.positive or isinstance(support, constraints.greater_than):
        a = float(getattr(support, "lower_bound", 0.0))
        s = max(abs(c - a), s)
        x = a + s * u / (1.0 - u)
        jac = s / (1.0 - u) ** 2 / 2.0
    else:
        raise ValueError(
            f"method='quadrature' supports targets on the real line, a half-line or an interval; "
            f"target {type(p).__name__} has support {support}. Pass key= to fit on draws instead."
        )
    log_p = np.asarray(p.log_prob(jnp.asarray(x)))
    w = lam * np.exp(log_p) * jac
    keep = np.isfinite(w) & (w > 0)
    w = w[keep]
    return jnp.asarray(x[keep]), w / w.sum()
