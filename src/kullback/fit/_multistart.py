"""Several reverse fits from different starts (vmapped by the caller): keep the best, or combine them.

Reverse KL is mode seeking: on a multimodal p each start settles in one mode. The fits are
grouped into modes (two fits are the same mode when their means differ by less than half a
standard deviation in every coordinate); the best fit of each mode is its representative.

- ``combine="best"``: the representative with the highest ELBO.
- ``combine="mixture"``: q = Σ_m π_m q_m over the representatives, π_m ∝ exp(ELBO_m). When the
  modes barely overlap, ELBO_m ≈ log Z_m − KL(q_m‖p_m), so π_m estimates the mass of mode m
  (the stacking weights of Yao et al. 2022 in this limit).

Reference:
    Yao, Y., Vehtari, A. and Gelman, A. (2022). Stacking for non-mixing Bayesian computations:
    the curse and blessing of multimodal posteriors. JMLR 23(79).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import numpyro.distributions as dist

__all__ = ["COMBINE", "group_modes", "mixture_weights", "combined_q"]

COMBINE = ("best", "mixture")


def group_modes(means: np.ndarray, sds: np.ndarray, elbos: np.ndarray, *, tol: float = 0.5) -> list[int]:
    """Indices of one representative per mode (the highest ELBO first).

    Args:
        means, sds: each fit's mean and standard deviation, shape ``(K, d)``.
        elbos: each fit's ELBO, shape ``(K,)`` (non-finite: the fit is dropped).
        tol: same mode when |μ_i − μ_j| < tol · max(σ_i, σ_j) in every coordinate.

    Example:
        >>> import numpy as np
        >>> group_modes(np.array([[-3.0], [3.0], [-2.9]]), np.ones((3, 1)), np.array([-1.0, -0.5, -1.2]))
        [1, 0]
    """
    order = [int(i) for i in np.argsort(-np.where(np.isfinite(elbos), elbos, -np.inf)) if np.isfinite(elbos[i])]
    reps: list[int] = []
    for i in order:
        same = any(np.all(np.abs(means[i] - means[j]) < tol * np.maximum(sds[i], sds[j])) for j in reps)
        if not same:
            reps.append(i)
    return reps


def mixture_weights(elbos: np.ndarray) -> np.ndarray:
    """π_m ∝ exp(ELBO_m), computed stably."""
    e = np.asarray(elbos, dtype=float)
    w = np.exp(e - e.max())
    return w / w.sum()


def combined_q(family: Any, params: Any, reps: list[int], weights: np.ndarray) -> dist.Distribution:
    """The mixture Σ_m π_m q_m of the representatives (``params`` stacked along axis 0)."""
    if hasattr(family, "weighted_draws"):
        raise ValueError(f"Expected a family with one component to combine starts into a mixture; got {family.name}. "
                         "Use combine='best'.")
    chosen = jax.tree.map(lambda a: a[np.asarray(reps)], params)
    components = family.distribution(chosen)
    return dist.MixtureSameFamily(dist.Categorical(probs=weights), components)
