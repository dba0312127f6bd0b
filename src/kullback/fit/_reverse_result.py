"""The record of a reverse fit: its message, its sampler, and an honest verdict on what it found.

A fit is never called converged when its ELBO or q's parameters are not finite, or when q's scale
ran away (grew a million-fold past the start's Laplace spread, or to 10¹⁵⁰): then the target is
improper (∫ p̃ = ∞ along those coordinates: a flat prior, a coordinate the log density does not
use, e.g. an index past the dimension, which JAX clamps) or log p̃ is not finite where q puts mass.
The message names which, and the coordinates.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._sampler import Sampler
from ._targets import Target

__all__ = ["message", "sampler", "honest_outcome", "scales_of"]

_RUNAWAY = 1e6  # final scale / start spread past which q is running off to infinity
_HUGE = 1e150


def scales_of(values: dict) -> np.ndarray | None:
    """q's per-coordinate scales from its constrained parameters (None for a family without them)."""
    if "covariance" in values:
        cov = np.asarray(values["covariance"], dtype=float)
        return np.sqrt(np.abs(np.diagonal(cov, axis1=-2, axis2=-1))) if cov.ndim >= 2 else np.sqrt(np.abs(cov))
    if "scale" in values:
        return np.abs(np.asarray(values["scale"], dtype=float))
    return None


def honest_outcome(values: dict, elbo: float, num_nonfinite: int, num_elbo: int,
                   start_scales: np.ndarray | None, unused: np.ndarray | None = None) -> tuple[str, str] | None:
    """(status, why) a fit with these parameters and diagnostics cannot be converged, or None;
    status ``"improper"`` (q ran off) or ``"not_finite"``. ``unused``
    (given for fits that did not converge): coordinates with no slope and no curvature at the mode."""
    leaves = [np.asarray(v, dtype=float) for v in values.values() if np.size(v)]
    scales = scales_of(values)
    finite = all(np.all(np.isfinite(v)) for v in leaves)
    runaway = np.zeros(0, int)
    if scales is not None:
        scales = scales.reshape(-1)
        big = ~np.isfinite(scales) | (scales > _HUGE)
        if start_scales is not None and np.size(start_scales) == scales.size:
            ref = np.where(np.isfinite(start_scales) & (start_scales > 0), start_scales, 1.0).reshape(-1)
            big |= scales > _RUNAWAY * ref
        runaway = np.flatnonzero(big)
    if not runaway.size and unused is not None and np.any(unused):
        runaway = np.flatnonzero(np.asarray(unused).reshape(-1))
    if runaway.size:
        shown = runaway[:10].tolist()
        return "improper", (f"Not converged: q's scale ran off to infinity along coordinate{'s' if runaway.size > 1 else ''} "
                f"{shown}{'…' if runaway.size > 10 else ''} (ELBO {elbo:.4g}): the target is improper, not "
                "normalisable along them (∫ p̃ dx = ∞), so no q minimises KL(q‖p). Check for a flat (improper) prior, "
                "a coordinate the log density does not use (an index past its dimension is clamped by JAX), or the "
                "wrong dim=.")
    if num_nonfinite:
        return "not_finite", (f"Not converged: log p̃ is not finite at {num_nonfinite} of {num_elbo} draws of the fitted q (ELBO "
                f"{elbo:.4g}): the log density is NaN or inf where q puts mass. Check log_density on all of R^d "
                "(constrained parameters must be transformed: pass a numpyro model or distribution), start elsewhere "
                "with init={...}, or use method='sgd', which skips such draws.")
    if not finite:
        return "not_finite", (f"Not converged: q's parameters are not finite (ELBO {elbo:.4g}); the target may be improper "
                "(not normalisable) or its log density not finite where q went. Check log_density on all of R^d.")
    if not np.isfinite(elbo):
        return "not_finite", (f"Not converged: the ELBO is {elbo} at the fitted q: " + (
            "+inf means the target is improper (not normalisable)." if elbo > 0 else
            "the log density is not finite at draws of q.") + " Check log_density on all of R^d.")
    return None


def message(method: str, s: Any, i: int, num: int) -> str:
    """How the solver ``method`` ended for start ``i`` (``s``: its :class:`~kullback.fit._reverse_solvers.Solve`)."""
    if method == "quadrature":
        it, g = int(s.iterations[i]), float(s.grad_norm[i])
        if s.converged[i]:
            return (f"Converged: gradient norm {g:.2g} after {it} Newton iterations on a {num}-node Gauss–Hermite "
                    "quadrature of the ELBO (deterministic: the exact optimum up to the quadrature error).")
        return (f"Not converged after {it} Newton iterations on a {num}-node Gauss–Hermite quadrature of the ELBO "
                f"(gradient norm {g:.2g}). Try method='fixed_draws', or init={{...}}.")
    if method == "natural":
        it, j, noise = int(s.iterations[i]), int(s.averaged[i]), float(s.noise[i])
        if s.converged[i] and j == 0:
            return (f"Converged: the natural-gradient (Newton) steps stopped moving q after {it} iteration"
                    f"{'s' if it != 1 else ''} of {num} "
                    "whitened draws (exact for a Gaussian target).")
        if s.converged[i]:
            return (f"Converged: {it} natural-gradient iterations of {num} draws, the last {j} averaged; the Monte "
                    f"Carlo error of the fitted moments is about {noise:.2g} posterior sd (tol={s.tol:g}).")
        return (f"Not converged after max_iter={s.max_iter} natural-gradient iterations: the Monte Carlo error "
                f"of the fitted moments is about {noise:.2g} sd (> tol={s.tol:g}), or q still drifts. Try "
                "method='fixed_draws' (L-BFGS follows curved valleys such as funnels faster), a larger max_iter "
                "or num_draws, or a looser tol.")
    if method == "fixed_draws":
        it, g = int(s.iterations[i]), float(s.grad_norm[i])
        if s.converged[i]:
            return f"Converged: gradient norm {g:.2g} after {it} L-BFGS iterations on {num} fixed draws."
        if not np.isfinite(s.value[i]):
            return ("Not converged: the objective became NaN or inf. Check the target for regions where it is not "
                    "finite, pass starting values with init={...}, or use method='sgd' (skips such steps).")
        if s.stalled[i]:
            return (f"Not converged: the line search made no progress (gradient norm {g:.2g}); the objective may be "
                    "flat, non-smooth or badly scaled here. Try more num_draws, init={...} or method='sgd'.")
        return (f"Not converged after max_iter={s.max_iter} L-BFGS iterations (gradient norm {g:.2g}). "
                "Try a larger max_iter or init={...}.")
    steps = int(s.iterations[i])
    if method == "adam":
        if s.converged[i]:
            return f"Converged: no trend left in the objective over the last Adam steps ({steps} steps)."
        return (f"Not converged: the objective still trends after {steps} Adam steps. Try more num_steps, a "
                "smaller learning_rate, or method='sgd' (chooses both).")
    rate = float(s.rate[i])
    if s.converged[i]:
        return (f"Converged: the ELBO stopped improving beyond its noise at the last of 3 step-size stages "
                f"({steps} steps, {num} draws each, initial learning rate {rate:g}); the iterates of the last "
                f"{2 * s.window} steps averaged.")
    return (f"Not converged: the ELBO still improved after {steps} steps (initial learning rate {rate:g}). "
            "Try a larger max_steps, more num_draws, or method='fixed_draws'.")


def sampler(family, tgt: Target, q_unit) -> Sampler:
    """``(key, num, resample) -> draws`` in the target's original space: a picklable
    :class:`~kullback.fit._sampler.Sampler` (``family`` is not needed: q is given)."""
    return Sampler(q_unit, tgt.dist, tgt.log_density, tgt.transform, tgt.postprocess)


