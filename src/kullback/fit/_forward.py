"""Forward fits: argmin_θ KL(p‖q_θ) = argmin_θ H(p, q_θ), maximum likelihood when p is data.

Order of attempts: a closed form (Gaussian MLE; moment matching for a distribution target), else
L-BFGS on the mean negative log-likelihood in unconstrained space (data, or draws from p).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from .._errors import FitError
from .._validate import as_float_array
from ..families import AbstractFamily
from . import _compiled as C
from ._loop import describe, lbfgs_solve
from ._objectives import mean_nll
from ._result import FitResult

__all__ = ["fit_forward", "check_data", "FORWARD_OPTIONS"]

FORWARD_OPTIONS = ("max_iter", "gtol", "init", "num_samples")
_mean_nll = jax.jit(mean_nll, static_argnums=0)


def check_data(x: Any) -> jax.Array:
    """Data of shape (n,) or (n, d), n ≥ 1, all finite; errors name ``target`` and the first bad row."""
    arr = as_float_array(x, "target (the data)")
    if arr.ndim not in (1, 2) or arr.shape[0] == 0:
        raise ValueError(f"Expected target (the data) to have shape (n,) or (n, d) with n ≥ 1; got shape {arr.shape}.")
    host = np.asarray(arr)
    bad = ~np.isfinite(host.reshape(host.shape[0], -1)).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"Expected target (the data) to be finite; row {row} is {host[row]} "
            f"({int(bad.sum())} rows with NaN or inf in all)."
        )
    return arr


def _check_support(family: AbstractFamily, params: Any, data: jax.Array) -> None:
    q = C.distribution(family, params)
    inside = np.asarray(q.support(data))
    inside = inside.reshape(data.shape[0], -1).all(axis=1)
    if not inside.all():
        row = int(np.argmin(inside))
        raise ValueError(
            f"Expected target (the data) to lie in the support of {family.name} ({q.support}); "
            f"row {row} is {np.asarray(data[row])} ({int((~inside).sum())} rows outside in all)."
        )


def _result(family, params, *, objective, history, converged, iterations, message, method) -> FitResult:
    q, values = C.finish(family, params)
    return FitResult(
        q=q,
        params={k: np.asarray(v) for k, v in values.items()},
        direction="forward",
        objective=float(objective),
        history=np.atleast_1d(np.asarray(history, dtype=float)),
        converged=bool(converged),
        num_iterations=int(iterations),
        message=message,
        family=family.name,
        method=method,
    )


def _with_init(family: AbstractFamily, params: Any, init: dict | None) -> Any:
    if not init:
        return params
    values = {k: np.asarray(v) for k, v in C.constrained(family, params).items()}
    unknown = sorted(set(init) - set(values))
    if unknown:
        raise ValueError(f"Expected init to name parameters of {family.name} {tuple(values)}; got {unknown}.")
    values.update(init)
    return C.from_constrained(family, values)


def _fit_data(family: AbstractFamily, data: jax.Array, options: dict, *, what: str) -> FitResult:
    if data.ndim == 1 and family.event_shape == (1,):
        data = data[:, None]
    family = family.with_event_shape(data.shape[1:])
    params = family.mle(data) if not options.get("init") else None
    if params is not None:
        value = float(_mean_nll(family, params, data))
        if not np.isfinite(value):
            raise FitError(
                f"The closed-form fit of {family.name} is degenerate (mean negative log-likelihood "
                f"{value}): are some coordinates of target (the data) constant?"
            )
        message = f"Closed form: maximum likelihood ({what})."
        return _result(family, params, objective=value, history=[value], converged=True, iterations=0,
                       message=message, method="closed_form")
    params = _with_init(family, family.init_from_data(data), options.get("init"))
    _check_support(family, params, data)
    start = float(_mean_nll(family, params, data))
    if not np.isfinite(start):
        raise FitError(
            f"The mean negative log-likelihood of {family.name} is {start} at the starting values "
            f"{ {k: np.asarray(v).round(4).tolist() for k, v in family.constrained(params).items()} }; "
            "pass finite-likelihood starting values with init={...}."
        )
    max_iter = int(options.get("max_iter", 500))
    sol = lbfgs_solve(mean_nll, family, params, (data,), max_iter=max_iter, gtol=options.get("gtol"))
    return _result(family, sol.params, objective=sol.value, history=sol.history, converged=sol.converged,
                   iterations=sol.num_iterations, message=describe(sol, solver="lbfgs", max_iter=max_iter),
                   method="lbfgs")


def _fit_distribution(family: AbstractFamily, p: dist.Distribution, key: Any, options: dict) -> FitResult:
    if p.batch_shape:
        raise ValueError(f"Expected target to be a single distribution (batch shape ()); got batch shape {p.batch_shape}.")
    event = tuple(p.event_shape)
    if event == () and family.event_shape == (1,):
        raise ValueError(f"Expected a vector target for {family.name}; target is scalar: use dist.Normal as the family.")
    family = family.with_event_shape(event)
    params = family.moment_match(p) if not options.get("init") else None
    if params is not None:
        q = C.distribution(family, params)
        value = float(jnp.sum(q.entropy()))  # H(p, q) = H(q) for a Gaussian q matching p's moments
        message = "Closed form: moment matching (q has p's mean and covariance); objective = H(p, q) = H(q)."
        return _result(family, params, objective=value, history=[value], converged=True, iterations=0,
                       message=message, method="moment_matching")
    if key is None:
        raise ValueError(
            f"Forward-fitting {family.name} to target {type(p).__name__} has no closed form here: it "
            "minimises the cross-entropy on draws from target. Pass key= (an int seed or a jax.random key)."
        )
    num = int(options.get("num_samples", 2000))
    draws = p.sample(key, (num,))
    if not bool(jnp.all(jnp.isfinite(draws))):
        raise FitError(f"Draws from target {type(p).__name__} are not all finite; cannot fit {family.name} to them.")
    data = jnp.asarray(draws, dtype=float)
    result = _fit_data(family, data, options, what=f"{num} draws from target")
    note = f" Objective: cross-entropy H(p, q) estimated on {num} draws from target."
    return dataclasses.replace(result, message=result.message + note)


def fit_forward(family: AbstractFamily, target: Any, *, key: Any, options: dict) -> FitResult:
    """argmin_θ KL(p‖q_θ) for data (maximum likelihood) or a numpyro distribution p."""
    if isinstance(target, dist.Distribution):
        return _fit_distribution(family, target, key, options)
    if callable(target):
        raise TypeError(
            "Expected target of a forward fit to be data or a numpyro distribution; got a callable. "
            "An unnormalised log density is a reverse-fit target: pass direction='reverse'."
        )
    return _fit_data(family, check_data(target), options, what="data")
