"""Forward fits of mixtures: EM for Gaussian components, L-BFGS for any other family.

Both start from greedy k-means++ centres (``key``; see ``_em.kmeans_plus_plus``), run ``num_restarts`` times and keep the run with the
highest mean log-likelihood.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ..families import Gaussian
from ..families._mixture import Mixture
from . import _compiled as C
from ._buckets import pad_rows
from ._em import GaussianMixtureParams, em_gaussian_mixture, kmeans_plus_plus, lloyd, seeded_rng
from ._inference import entropy_of_data, information_criteria
from ._loop import _capacity, describe, lbfgs_solve
from ._objectives import weighted_nll
from ._result import FitResult

__all__ = ["fit_mixture"]


def _key(options: dict, family: Mixture) -> jax.Array:
    key = options.get("_key")
    if key is None:
        raise ValueError(
            f"Fitting {family.name} starts from random k-means++ centres: pass key= (an int seed or a jax.random key)."
        )
    return key


def _gaussian_params(family: Mixture, p: GaussianMixtureParams):
    cov = np.asarray(p.covariances)
    kind = family.component.covariance
    values = {"weights": p.weights, "loc": p.means}
    if kind == "full":
        values["scale_tril"] = np.linalg.cholesky(cov)
    else:
        values["scale"] = np.sqrt(cov if kind == "diag" else cov[:, None] * np.ones(p.means.shape))
    return values


def _collapsed(p: GaussianMixtureParams, total: float, reg: float, covariance: str) -> list[int]:
    """Components that sit on fewer than d + 1 points (Σ w · total < d + 1) or whose covariance
    is at the reg_covar floor: a singular fit whose log-likelihood is no better optimum."""
    weights, covs = np.asarray(p.weights), np.asarray(p.covariances)
    d = np.asarray(p.means).shape[1]
    if covariance == "full":
        floor = np.linalg.eigvalsh(covs).min(axis=1)
    else:
        floor = covs.min(axis=1) if covariance == "diag" else covs
    return [j for j in range(len(weights)) if weights[j] * total < d + 1 or floor[j] <= 10.0 * reg]


def _em(family: Mixture, data, w, total, options, key):
    restarts = int(options.get("num_restarts", 1))
    tol, reg = float(options.get("tol", 1e-3)), float(options.get("reg_covar", 1e-6))
    max_iter = int(options.get("max_iter", 100))
    kind = family.component.covariance
    best = None
    data, w = pad_rows(data, w)  # one compiled EM for every data size within a power of two
    for r in range(restarts):
        centers = lloyd(data, w, kmeans_plus_plus(seeded_rng(key, r), data, w, family.num_components))
        out = em_gaussian_mixture(centers, data, w, tol, reg, max_iter,
                                  covariance=kind, capacity=_capacity(max_iter))
        ll, collapsed = float(out[1]), _collapsed(out[0], total, reg, kind)
        # a run with a collapsed component is no better optimum, whatever its log-likelihood
        if best is None or (not collapsed, ll) > (not best[1], best[0]):
            best = (ll, collapsed, out)
    ll, collapsed, (params, _, history, it, done) = best
    it = int(it)
    history = -np.asarray(history)[:it]
    converged = bool(done) and np.isfinite(ll)
    message = (f"Converged: EM change of the mean log-likelihood and its Aitken-projected remainder < tol={tol} "
               f"after {it} iterations (best of {restarts} starts: greedy k-means++, then k-means)." if converged else
               f"Not converged after max_iter={max_iter} EM iterations: try a larger max_iter or num_restarts.")
    if collapsed:
        note = (f" Components {collapsed} collapsed onto fewer than d + 1 = {np.asarray(params.means).shape[1] + 1} "
                f"points (covariance at the reg_covar={reg:g} floor): the log-likelihood is that of a singular fit, "
                "not a better optimum. Try more num_restarts, another key, or fewer components.")
        message += note
        warnings.warn(note.strip(), UserWarning, stacklevel=5)
    return _gaussian_params(family, params), -ll, np.append(history, -ll), it, converged, message, "em"


def _gradient(family: Mixture, data, w, options, key):
    restarts = int(options.get("num_restarts", 1))
    max_iter = int(options.get("max_iter", 500))
    host, weights = np.asarray(data), np.asarray(w)
    flat = host.reshape(len(host), -1)
    padded = pad_rows(data, w)
    best = None
    for r in range(restarts):
        centers = kmeans_plus_plus(seeded_rng(key, r), flat, weights, family.num_components)
        labels = np.argmin(((flat[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
        comps, mass = [], []
        for j in range(family.num_components):
            rows = host[labels == j] if np.sum(labels == j) > 2 else host
            comps.append(family.component.init_from_data(jnp.asarray(rows)))
            mass.append(max(weights[labels == j].sum(), 1e-3))
        start = family.stack(np.asarray(mass) / np.sum(mass), comps)
        sol = lbfgs_solve(weighted_nll, family, start, padded, max_iter=max_iter, gtol=options.get("gtol"))
        if best is None or sol.value < best.value:
            best = sol
    message = describe(best, solver="lbfgs", max_iter=max_iter) + f" Best of {restarts} k-means++ starts."
    return best.params, best.value, best.history, best.num_iterations, best.converged, message, "lbfgs"


def fit_mixture(family: Mixture, data, w, total: float, options: dict, *, statistics: bool) -> FitResult:
    """Maximum likelihood for a mixture on data (weights ``w`` sum to 1, ``total`` = Σ raw weights)."""
    key = _key(options, family)
    if isinstance(family.component, Gaussian):
        if data.ndim != 2:
            raise ValueError(f"Expected data of shape (n, {family.component.dim}) for {family.name}; got {data.shape}.")
        out = _em(family, data, w, total, options, key)
    else:
        out = _gradient(family, data, w, options, key)
    params, value, history, it, converged, message, method = out
    if method == "em":  # EM gives constrained values
        params, q, values = C.finish_constrained(family, params)
    else:
        q, values = C.finish(family, params)
    extra = {}
    if statistics:
        num_params = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(params)) - 1  # weights: k − 1 free
        extra = {"num_observations": float(total), "num_params": num_params,
                 **information_criteria(value, total, num_params),
                 "data_entropy": entropy_of_data(np.asarray(data), np.asarray(w), discrete=False)}
    return FitResult(q=q, params={k: np.asarray(v) for k, v in values.items()}, direction="forward",
                     objective=float(value), history=np.asarray(history, dtype=float), converged=converged,
                     num_iterations=it, message=message, family=family.name, method=method, **extra)
