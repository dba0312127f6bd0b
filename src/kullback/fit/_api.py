"""``kb.fit``: one entry point for both directions of KL."""

from __future__ import annotations

from typing import Any

from ..families import LocScale, NumpyroFamily, as_family
from ._forward import fit_forward
from ._keys import as_key
from ._options import make_options, option_names
from ._progress import progress
from ._result import FitResult
from ._reverse import fit_reverse

__all__ = ["fit", "DIRECTIONS", "as_key"]

DIRECTIONS = ("forward", "reverse")


def fit(family: Any, target: Any, *, direction: str = "forward", key: Any = None, **options: Any) -> FitResult:
    """Fit q_θ from ``family`` to ``target`` by minimising KL in the given direction.

    forward:  θ* = argmin_θ KL(p‖q_θ) = argmin_θ H(p, q_θ)  (maximum likelihood for data)
    reverse:  θ* = argmin_θ KL(q_θ‖p) = argmax_θ E_q[log p̃(x)] + H(q_θ)  (the ELBO)

    Forward fits use a closed form where there is one (Gaussian MLE; moment matching for a
    distribution target with finite mean and variance), else L-BFGS on the mean negative
    log-likelihood in unconstrained space. Reverse fits maximise the ELBO; ``method="auto"``
    (the default) picks, for a ``kb.families.Gaussian``, L-BFGS on max(24, 2d + 2) whitened fixed
    draws while the family has at most 100 free parameters (when that took under 1500 gradient
    evaluations, a second L-BFGS solve on max(64, 4d + 4) fresh draws from its optimum cuts the Monte
    Carlo error), natural-gradient Newton steps above
    (``method="natural"``: exact in one step on a Gaussian target; finished by fixed-draw L-BFGS
    when it has not converged after ``max_iter`` iterations), and for other families L-BFGS on
    1000 fixed draws (``"fixed_draws"``); ``"sgd"`` (fresh draws, sticking-the-landing, step-size
    search, averaging) and ``"adam"`` are there to choose.

    Args:
        family: a numpyro distribution class (``dist.StudentT``) or a ``kb.families`` object
            (``Gaussian(d, covariance="full")``).
        target: forward: data of shape (n,) or (n, d), or a numpyro distribution p. Reverse: an
            unnormalised log density (JAX callable: x of shape (d,), or a scalar for a scalar
            numpyro family, to a scalar), or a numpyro distribution with real support.
        direction: ``"forward"`` or ``"reverse"``.
        key: an int seed or a jax.random key; required for reverse fits, and for forward fits to
            a distribution without a closed form (draws from p).
        **options: the options of the direction, each documented once in
            :class:`~kullback.fit.ForwardOptions` (``sample_weight``, ``solver``, ``max_iter``,
            ``gtol``, ``init``, ``stderr``, ``num_samples``, ``method``, mixtures' ``num_restarts``,
            ``tol``, ``reg_covar``) and :class:`~kullback.fit.ReverseOptions` (``method``,
            ``num_draws``, ``max_iter``, ``num_starts``, ``objective``, ``model_args``, ``example``,
            ...); both take ``progress`` and ``callback``. Forward fits also take ``bounds`` (e.g.
            ``{"df": (1.0, None)}``) and, for numpyro classes, ``fixed`` parameters (e.g.
            ``{"df": 4.0}``, or as keywords: ``kb.fit(dist.StudentT, x, df=4.0)``). An unknown option
            is a TypeError that lists the allowed ones.

    Returns:
        A :class:`kullback.FitResult`.

    Raises:
        TypeError: an unknown family or option. ValueError: an unknown direction, bad data, a
            missing key. kullback.FitError: a log density that is not finite or not scalar.

    Example:
        >>> import jax.numpy as jnp, numpyro.distributions as dist, kullback as kb
        >>> p = dist.MixtureSameFamily(dist.Categorical(probs=jnp.array([0.5, 0.5])),
        ...                            dist.Normal(jnp.array([-3.0, 3.0]), jnp.array([1.0, 1.0])))
        >>> fwd = kb.fit(dist.Normal, p)                      # covers both modes
        >>> round(float(fwd.params["loc"]), 6), round(float(fwd.params["scale"]) ** 2, 6)
        (0.0, 10.0)
        >>> rev = kb.fit(dist.Normal, p, direction="reverse", key=0)   # sits in one mode
        >>> round(abs(float(rev.params["loc"])), 1), round(float(rev.params["scale"]), 1), rev.converged
        (3.0, 1.0, True)
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"Expected direction to be one of {DIRECTIONS}; got {direction!r}.")
    fam = as_family(family)
    fixed = dict(options.pop("fixed", None) or {})
    if isinstance(fam, (NumpyroFamily, LocScale)):  # friendly form: kb.fit(dist.StudentT, x, df=4.0)
        names = set(fam.cls.arg_constraints) | ({"loc", "scale"} if isinstance(fam, LocScale) else set())
        fixed.update({k: options.pop(k) for k in list(options) if k in names and k not in option_names(direction)})
    bounds = options.pop("bounds", None) if direction == "forward" else None
    if fixed or bounds:
        if isinstance(fam, LocScale) and not bounds:
            fam = LocScale(fam.cls, fixed={**dict(fam.fixed), **fixed}, event_shape=fam.event_shape)
        elif not isinstance(fam, NumpyroFamily):
            raise TypeError(f"fixed= and bounds= apply to numpyro distribution classes; got family {fam.name}.")
        else:
            old = {k: (lo, hi) for k, lo, hi in fam.bounds}
            fam = NumpyroFamily(fam.cls, fixed={**dict(fam.fixed), **fixed}, event_shape=fam.event_shape,
                                bounds={**old, **dict(bounds or {})})
    typed = make_options(direction, options)
    key = as_key(key)
    solve = fit_forward if direction == "forward" else fit_reverse
    with progress(typed.progress, typed.callback, total=typed.max_iter, description=f"{fam.name} ({direction})") as done:
        result = solve(fam, target, key=key, options=typed)
        done(result.num_iterations, result.objective)
    return result
