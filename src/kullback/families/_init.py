"""Starting values for numpyro-class parameters: moments of the data where they say something.

Method-of-moments values for common classes, then rules by parameter name, then the point that
``biject_to(constraint)`` maps 0 to (1 for positive, ½ for the unit interval, ...). Only a start:
the solver does the fitting.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions.transforms import biject_to

__all__ = ["default_value"]


def _moments(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = data.mean(axis=0)
    var = data.var(axis=0)
    return mean, np.where(var > 0, var, 1.0)


def _robust_scale(data: np.ndarray) -> np.ndarray:
    median = np.median(data, axis=0)
    mad = 1.4826 * np.median(np.abs(data - median), axis=0)
    std = data.std(axis=0)
    return np.where(mad > 0, mad, np.where(std > 0, std, 1.0))


def _by_class(cls: type, name: str, data: np.ndarray) -> Any:
    mean, var = _moments(data)
    if cls is dist.Gamma:
        return {"concentration": mean**2 / var, "rate": mean / var}.get(name)
    if cls is dist.InverseGamma:
        concentration = mean**2 / var + 2.0
        return {"concentration": concentration, "rate": mean * (concentration - 1.0)}.get(name)
    if cls is dist.Beta:
        common = np.maximum(mean * (1.0 - mean) / var - 1.0, 1e-3)
        return {"concentration1": mean * common, "concentration0": (1.0 - mean) * common}.get(name)
    if cls is dist.LogNormal and np.all(data > 0):
        logs = np.log(data)
        return {"loc": logs.mean(axis=0), "scale": np.maximum(logs.std(axis=0), 1e-6)}.get(name)
    if cls is dist.Weibull:
        return {"scale": mean, "concentration": np.ones_like(mean)}.get(name)
    if cls in (dist.HalfNormal, dist.HalfCauchy) and name == "scale":
        return np.sqrt(np.mean(data**2, axis=0)) if cls is dist.HalfNormal else np.median(np.abs(data), axis=0)
    return None


def _by_name(name: str, data: np.ndarray | None, univariate: bool) -> Any:
    if name == "df":
        return 5.0
    if data is None:
        return None
    if name == "loc":
        return np.median(data, axis=0) if univariate else data.mean(axis=0)
    if name == "scale":
        return _robust_scale(data)
    if name == "scale_tril":
        d = data.shape[-1]
        cov = np.atleast_2d(np.cov(data, rowvar=False, bias=True)) + 1e-9 * np.eye(d)
        return np.linalg.cholesky(cov)
    if name == "rate":
        mean = np.abs(data).mean(axis=0)
        return 1.0 / np.where(mean > 0, mean, 1.0)
    return None


def default_value(cls: type, name: str, shape: tuple[int, ...], data: np.ndarray | None) -> np.ndarray:
    """A starting value of parameter ``name`` of ``cls`` with shape ``shape``.

    Args:
        cls: the numpyro distribution class.
        name: the parameter, a key of ``cls.arg_constraints``.
        shape: the parameter's (constrained) shape.
        data: observations of shape ``(n, *event_shape)``, or None (reverse fits).

    Returns:
        A NumPy array of shape ``shape`` inside the parameter's constraint.
    """
    univariate = cls.arg_constraints[name].event_dim == 0
    value = _by_class(cls, name, data) if data is not None else None
    if value is None:
        value = _by_name(name, data, univariate)
    transform = biject_to(cls.arg_constraints[name])
    # Constants, also when called while a fit's program is traced: evaluate them now, not staged
    with jax.ensure_compile_time_eval():
        if value is not None:
            value = np.broadcast_to(np.asarray(value, dtype=float), shape)
            if np.all(np.isfinite(np.asarray(transform.inv(jnp.asarray(value))))):
                return value
        origin = jnp.zeros(transform.inverse_shape(shape))
        return np.asarray(transform(origin))
