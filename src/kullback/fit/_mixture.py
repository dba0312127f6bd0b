"""Forward fits of mixtures: EM for Gaussian components, L-BFGS for any other family.

Both start from greedy k-means++ centres (``key``; see ``_em.kmeans_plus_plus``), run ``num_restarts`` times and keep the run with the
highest mean log-likelihood.

EM runs in NumPy on a CPU (nothing to compile: a first call on 2e5 × 5 rows, 4 components, took
1.0 s with its two XLA compiles, now ~0.3 s; and faster per iteration than the compiled program at
every size measured, up to 1e6 × 10 with 8 components and d = 100), and as one compiled program
on an accelerator above ``ACCELERATOR_HOST_WORK`` = n·k·(d + 1)². The result (q, its parameters)
is built from NumPy values either way, without a compile.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from ..families import Gaussian
from ..families._mixture import Mixture
from . import _compiled as C
from ._buckets import pad_rows
from ._em import (GaussianMixtureParams, em_gaussian_mixture, em_gaussian_mixture_host, kmeans_plus_plus, lloyd,
                  seeded_rng)
from ._inference import entropy_of_data, information_criteria
from ._loop import _capacity, describe, lbfgs_solve
from ._objectives import weighted_nll
from ._options import ForwardOptions
from ._result import FitResult

__all__ = ["fit_mixture", "ACCELERATOR_HOST_WORK"]

# n·k·(d + 1)²: on an accelerator, EM in NumPy up to this (2e5 × 5 rows, 4 components: ~50 ms, a
# compile ~0.5 s), the compiled program above (not measured on a GPU: a conservative guess)
ACCELERATOR_HOST_WORK = 3e7


def _key(key: Any, family: Mixture) -> jax.Array:
    if key is None:
        raise ValueError(
            f"Fitting {family.name} starts from random k-means++ centres: pass key= (an int seed or a jax.random key)."
        )
    return key


def _gaussian_values(family: Mixture, p: GaussianMixtureParams) -> dict[str, np.ndarray]:
    """The constrained parameters in the family's order (``Mixture.constrained``), in NumPy."""
    weights, means, covs = (np.asarray(a, dtype=float) for a in p)
    k, d = means.shape
    values = {"weights": weights, "loc": means}
    if family.component.covariance == "full":
        tril = np.linalg.cholesky(covs)
        values.update(scale_tril=tril, covariance=tril @ np.swapaxes(tril, 1, 2))
    else:
        scale = np.sqrt(covs)  # (k, d) diag, (k,) spherical
        sd = scale if scale.ndim == 2 else np.broadcast_to(scale[:, None], (k, d))
        values.update(scale=scale, covariance=sd[:, :, None] ** 2 * np.eye(d))
    return values


def _num_params(family: Mixture, d: int) -> int:
    """Free parameters: k − 1 weights, k means and k covariances (sklearn's ``_n_parameters``)."""
    k, kind = family.num_components, family.component.covariance
    per = {"full": d * (d + 1) // 2, "diag": d, "spherical": 1}[kind]
    return k - 1 + k * (d + per)


_TEMPLATES: dict = {}  # (family, dtype) -> q's pytree structure and its leaves' field names


def _template(family: Mixture, values: dict[str, np.ndarray], dtype) -> tuple:
    """The structure of q and the pytree field name of each leaf, traced once per family (a few
    ms, nothing compiled): the unconstrained parameters of one component, stacked k times."""
    key = (family, np.dtype(dtype).str)
    if key not in _TEMPLATES:
        one = jax.eval_shape(family.component.from_constrained,
                             {name: v[0].astype(dtype) for name, v in values.items() if name != "weights"})
        k = family.num_components
        shapes = {"logits": jax.ShapeDtypeStruct((k,), dtype),
                  "components": jax.tree.map(lambda a: jax.ShapeDtypeStruct((k, *a.shape), a.dtype), one)}
        template = jax.eval_shape(family.distribution, shapes)
        names: list[str] = []

        def walk(node):
            for name in type(node).gather_pytree_data_fields():
                value = node.__dict__.get(name)
                if isinstance(value, dist.Distribution):
                    walk(value)
                elif value is not None:
                    names.append(name)

        walk(template)
        _TEMPLATES[key] = (jax.tree.structure(template), tuple(names), [a.shape for a in jax.tree.leaves(template)])
    return _TEMPLATES[key]


def _distribution(family: Mixture, values: dict[str, np.ndarray], dtype) -> dist.Distribution:
    """q from NumPy values without running numpyro's constructors eagerly (15 tiny XLA programs on a
    first call, 0.3 s): the leaves, named by the distributions' pytree fields, fill a traced
    structure. Falls back on the compiled constructor if a field is not one of the fitted values."""
    k, d = values["loc"].shape
    sd = values.get("scale")
    leaves = {"logits": np.log(values["weights"]), "loc": values["loc"], "scale_tril": values.get("scale_tril"),
              "scale": None if sd is None else np.broadcast_to(sd if sd.ndim == 2 else sd[:, None], (k, d))}
    tree, names, shapes = _template(family, values, dtype)
    filled = [leaves.get(name) for name in names]
    if len(filled) != len(shapes) or any(v is None or v.shape != shape for v, shape in zip(filled, shapes)):
        return C.finish_constrained(family, values)[1]
    return jax.tree.unflatten(tree, [jax.device_put(np.asarray(v, dtype=dtype)) for v in filled])


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


def _use_host(n: int, d: int, k: int) -> bool:
    """EM in NumPy: always on a CPU, for small problems on an accelerator."""
    return jax.default_backend() == "cpu" or n * k * (d + 1) ** 2 <= ACCELERATOR_HOST_WORK


def _em(family: Mixture, data, w, total, options, key):
    restarts, tol, reg = options.num_restarts, float(options.tol), float(options.reg_covar)
    max_iter = options.max_iter or 100
    kind, k = family.component.covariance, family.num_components
    host = _use_host(data.shape[0], data.shape[1], k)
    if not host:
        padded = pad_rows(data, w)  # one compiled EM for every data size within a power of two
    best = None
    for r in range(restarts):
        centers = lloyd(data, w, kmeans_plus_plus(seeded_rng(key, r), data, w, k))
        if host:
            out = em_gaussian_mixture_host(centers, data, w, tol, reg, max_iter, covariance=kind)
        else:
            out = em_gaussian_mixture(centers, *padded, tol, reg, max_iter, covariance=kind, capacity=_capacity(max_iter))
        ll, collapsed = float(out[1]), _collapsed(out[0], total, reg, kind)
        # a run with a collapsed component is no better optimum, whatever its log-likelihood
        if best is None or (not collapsed, ll) > (not best[1], best[0]):
            best = (ll, collapsed, out)
    ll, collapsed, (params, _, history, it, done) = best
    it = int(it)
    history = -np.asarray(history)[:it]
    converged = bool(done) and np.isfinite(ll)
    message = (f"Converged: EM change of the mean log-likelihood and its Aitken-projected remainder < tol={tol} "
               f"after {it} iterations (best of {restarts} starts: greedy k-means++, then k-means"
               f"{'; NumPy' if host else ''})." if converged else
               f"Not converged after max_iter={max_iter} EM iterations: try a larger max_iter or num_restarts.")
    if collapsed:
        note = (f" Components {collapsed} collapsed onto fewer than d + 1 = {np.asarray(params.means).shape[1] + 1} "
                f"points (covariance at the reg_covar={reg:g} floor): the log-likelihood is that of a singular fit, "
                "not a better optimum. Try more num_restarts, another key, or fewer components.")
        message += note
        warnings.warn(note.strip(), UserWarning, stacklevel=5)
    return _gaussian_values(family, params), -ll, np.append(history, -ll), it, converged, message, "em"


def _gradient(family: Mixture, data, w, options, key):
    restarts, max_iter = options.num_restarts, options.max_iter or 500
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
        sol = lbfgs_solve(weighted_nll, family, start, padded, max_iter=max_iter, gtol=options.gtol)
        if best is None or sol.value < best.value:
            best = sol
    message = describe(best, solver="lbfgs", max_iter=max_iter) + f" Best of {restarts} k-means++ starts."
    return best.params, best.value, best.history, best.num_iterations, best.converged, message, "lbfgs"


def fit_mixture(family: Mixture, data, w, total: float, options: ForwardOptions, key: Any, *,
                statistics: bool) -> FitResult:
    """Maximum likelihood for a mixture on data (weights ``w`` sum to 1, ``total`` = Σ raw weights)."""
    key = _key(key, family)
    if isinstance(family.component, Gaussian):
        if data.ndim != 2:
            raise ValueError(f"Expected data of shape (n, {family.component.dim}) for {family.name}; got {data.shape}.")
        out = _em(family, data, w, total, options, key)
    else:
        out = _gradient(family, data, w, options, key)
    params, value, history, it, converged, message, method = out
    if method == "em":  # EM gives constrained values, in NumPy
        values, q = params, _distribution(family, params, data.dtype)
        num_params = _num_params(family, data.shape[1])
    else:
        q, values = C.finish(family, params)
        num_params = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(params)) - 1  # weights: k − 1 free
    extra = {}
    if statistics:
        extra = {"num_observations": float(total), "num_params": num_params,
                 **information_criteria(value, total, num_params),
                 "data_entropy": functools.partial(entropy_of_data, np.asarray(data), np.asarray(w), discrete=False)}
    return FitResult(q=q, params={k: np.asarray(v, dtype=data.dtype) for k, v in values.items()}, direction="forward",
                     objective=float(value), history=np.asarray(history, dtype=float), converged=converged,
                     num_iterations=it, message=message, family=family.name, method=method, **extra)
