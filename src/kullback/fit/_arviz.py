"""``FitResult.to_arviz()``: a fit as an ``arviz.InferenceData`` (arviz is imported here).

Reverse fits: a ``posterior`` group of ``num`` draws of q (one chain), named as the target names
its coordinates (a numpyro model's sites, a pytree's leaves by path, ``x`` on R^d); its attrs hold
the fit's statistics (ELBO, Pareto k̂, ESS, log Z), as are the InferenceData's. These are draws of the variational
approximation q, not of p: trust them as far as ``pareto_k_verdict`` allows.

Forward fits to data: the maximum-likelihood estimate θ̂ with its covariance Σ (the inverse
observed information, as ``FitResult.covariance``) in an ``mle`` group: one variable per
parameter, and ``covariance`` over the coordinates ``coordinate`` × ``coordinate_bis`` (labels as
in ``summary()``); and a ``posterior`` group of ``num`` draws from the asymptotic normal
N(θ̂, Σ) of the estimator, in the same (natural) parameterisation, so that ArviZ's summaries and
plots apply. It is a sampling distribution, not a Bayesian posterior; its attrs say so. Near a
boundary of the parameter space (a scale near 0) its draws can leave the support.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ._summary import coordinate_labels, draw_columns

__all__ = ["to_arviz"]


def _import_arviz() -> Any:
    try:
        with warnings.catch_warnings():  # arviz 0.2x announces its refactor on import
            warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor", category=FutureWarning)
            import arviz
    except ImportError as err:
        raise ImportError("FitResult.to_arviz() needs arviz: pip install arviz") from err
    if int(arviz.__version__.split(".")[0]) >= 1:
        raise ImportError(f"FitResult.to_arviz() builds an arviz.InferenceData, which arviz {arviz.__version__} "
                          "replaced by xarray's DataTree: pip install 'arviz>=0.17,<1'")
    return arviz


def _attrs(r: Any, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"inference_library": "kullback", "family": r.family, "method": r.method,
                           "direction": r.direction, "converged": int(r.converged), **extra}
    for name in ("pareto_k", "pareto_k_verdict", "ess", "log_likelihood", "aic", "bic", "num_observations"):
        if getattr(r, name) is not None:
            out[name] = getattr(r, name)
    for name in ("elbo", "log_z"):
        if getattr(r, name) is not None:
            out[name], out[name + "_stderr"] = float(getattr(r, name).value), float(getattr(r, name).stderr)
    return out


def _reverse(az: Any, r: Any, key: Any, num: int) -> Any:
    sites = draw_columns(r.draws(key, num)).sites
    posterior = {name: a[None] for name, a in sites.items()}
    kind = "draws of the fitted q (variational approximation to p, reverse KL), one chain"
    attrs = _attrs(r, kind=kind)
    return az.from_dict(posterior=posterior, attrs=dict(attrs), posterior_attrs=attrs)


def _normal_draws(mean: np.ndarray, cov: np.ndarray, key: Any, num: int) -> np.ndarray:
    """``num`` draws of N(mean, cov) (cov positive semi-definite: its symmetric square root)."""
    import jax

    from ._keys import as_key

    vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    z = np.asarray(jax.random.normal(as_key(key), (num, mean.size)), dtype=float)
    return mean + z @ root.T


def _forward(az: Any, r: Any, key: Any, num: int) -> Any:
    import xarray as xr

    cov = r.covariance
    if cov is None:
        raise ValueError("to_arviz() of a forward fit needs the covariance of the estimates: a forward fit to data "
                         "with stderr=True (a fit to a distribution has no sampling distribution).")
    if not np.all(np.isfinite(cov)):
        raise ValueError("to_arviz(): the covariance of the estimates is not finite (the observed information is "
                         "singular at the estimate: a boundary or unidentified optimum); see r.stderr.")
    shapes = {k: np.shape(v) for k, v in r.params.items()}
    mean = np.concatenate([np.asarray(v, dtype=float).reshape(-1) for v in r.params.values()])
    flat = _normal_draws(mean, cov, key, num)
    posterior, start = {}, 0
    for k, shape in shapes.items():
        size = math.prod(shape)
        posterior[k] = flat[:, start:start + size].reshape((1, num, *shape))
        start += size
    kind = ("draws from the asymptotic normal N(estimate, covariance) of the maximum-likelihood estimator (a "
            "sampling distribution, not a Bayesian posterior); covariance: the inverse observed information")
    attrs = _attrs(r, kind=kind)
    idata = az.from_dict(posterior=posterior, attrs=dict(attrs), posterior_attrs=attrs)
    labels = [label for k, shape in shapes.items() for label in coordinate_labels(k, shape)]
    mle = {k: ([f"{k}_dim_{i}" for i in range(len(shape))], np.asarray(r.params[k], dtype=float))
           for k, shape in shapes.items()}
    mle["covariance"] = (["coordinate", "coordinate_bis"], cov)
    group = xr.Dataset(mle, coords={"coordinate": labels, "coordinate_bis": labels},
                       attrs={"kind": "maximum-likelihood estimate and the inverse observed information"})
    with warnings.catch_warnings():  # "mle" is a group of our own, outside ArviZ's scheme
        warnings.simplefilter("ignore", UserWarning)
        idata.add_groups({"mle": group})
    return idata


def to_arviz(r: Any, key: Any, num: int) -> Any:
    """The fit as an ``arviz.InferenceData`` (see the module doc)."""
    if not isinstance(num, int) or isinstance(num, bool) or num < 1:
        raise ValueError(f"Expected num to be a positive integer; got {num!r}.")
    az = _import_arviz()
    return _reverse(az, r, key, num) if r.direction == "reverse" else _forward(az, r, key, num)
