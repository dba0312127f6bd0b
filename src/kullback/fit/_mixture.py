"""Forward fits of mixtures: EM where the components' weighted MLE has a closed form, else L-BFGS.

EM (``result.method == "em"``) for ``kb.families.Gaussian`` components and numpyro's Normal,
LogNormal and MultivariateNormal (the Gaussian EM of ``_em``), and for Poisson, Exponential,
Bernoulli, Laplace and Gamma (``_em_components``); L-BFGS on the mixture log-likelihood
(``"lbfgs"``) for any other component (StudentT, ...), and the message says so.

Both start from greedy k-means++ centres (``key``; see ``_em.kmeans_plus_plus``), run ``num_restarts`` times and keep the run with the
highest mean log-likelihood.

The Gaussian EM runs in NumPy on a CPU (nothing to compile: a first call on 2e5 × 5 rows, 4 components, took
1.0 s with its two XLA compiles, now ~0.3 s; and faster per iteration than the compiled program at
every size measured, up to 1e6 × 10 with 8 components and d = 100), and as one compiled program
on an accelerator above ``ACCELERATOR_HOST_WORK`` = n·k·(d + 1)². The result (q, its parameters)
is built from NumPy values either way, without a compile. The other components' EM always runs
in NumPy.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, NamedTuple

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
from ._em_components import (ComponentEM, collapsed_components, component_em, em_components_host, gaussian_values,
                             gaussian_view)
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


def _num_params(k: int, kind: str, d: int) -> int:
    """Free parameters: k − 1 weights, k means and k covariances (sklearn's ``_n_parameters``)."""
    per = {"full": d * (d + 1) // 2, "diag": d, "spherical": 1}[kind]
    return k - 1 + k * (d + per)


_MIXING = "<mixing logits>"  # the name of the mixing distribution's leaf in a template
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

        def walk(node, mixing):
            for name in type(node).gather_pytree_data_fields():
                value = node.__dict__.get(name)
                if isinstance(value, dist.Distribution):
                    walk(value, mixing or name == "_mixing_distribution")
                elif jax.tree.leaves(value):  # not None, nor a leafless field (LogNormal's transforms)
                    names.append(_MIXING if mixing else name)

        walk(template, False)
        _TEMPLATES[key] = (jax.tree.structure(template), tuple(names), [a.shape for a in jax.tree.leaves(template)])
    return _TEMPLATES[key]


def _component_leaves(family: Mixture, values: dict[str, np.ndarray]) -> dict[str, Any]:
    """The components' pytree leaves by field name (Gaussian: scale as (k, d), whatever its kind)."""
    if not isinstance(family.component, Gaussian):
        return {name: v for name, v in values.items() if name != "weights"}
    k, d = values["loc"].shape
    sd = values.get("scale")
    return {"loc": values["loc"], "scale_tril": values.get("scale_tril"),
            "scale": None if sd is None else np.broadcast_to(sd if sd.ndim == 2 else sd[:, None], (k, d))}


def _distribution(family: Mixture, values: dict[str, np.ndarray], dtype) -> dist.Distribution:
    """q from NumPy values without running numpyro's constructors eagerly (15 tiny XLA programs on a
    first call, 0.3 s): the leaves, named by the distributions' pytree fields, fill a traced
    structure. Falls back on the compiled constructor if a field is not one of the fitted values."""
    leaves = {_MIXING: np.log(values["weights"]), **_component_leaves(family, values)}
    tree, names, shapes = _template(family, values, dtype)
    filled = [leaves.get(name) for name in names]
    if len(filled) != len(shapes) or any(v is None or np.shape(v) != shape for v, shape in zip(filled, shapes)):
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


class _Plan(NamedTuple):
    """One EM fit of a mixture, whatever its component: the rows its starts and iterations see, a
    run from k-means centres, and how its parameters are read."""

    x: np.ndarray  # (n, d)
    run: Callable  # centres (k, d) -> (params, mean log-likelihood, history, iterations, converged)
    values: Callable  # params -> the family's constrained values, in NumPy
    collapsed: Callable  # params -> the collapsed components
    note: str  # what a collapsed component is, for the message
    num_params: int
    numpy: bool = True  # the NumPy EM (else the compiled one)
    shift: float = 0.0  # added to the mean log-likelihood (LogNormal: the Jacobian −Σ s log x)
    what: str = ""  # the components' M step in words, for the message


def _check_support(family: Mixture, x: np.ndarray, inside: np.ndarray, words: str) -> None:
    inside = np.asarray(inside).reshape(x.shape[0], -1).all(axis=1)
    if not inside.all():
        row = int(np.argmin(inside))
        raise ValueError(f"Expected target (the data) to lie in the support of {family.name} ({words}); row {row} "
                         f"is {x[row]} ({int((~inside).sum())} rows outside in all).")


def _gaussian_plan(family: Mixture, data, w, total, options) -> _Plan:
    """Gaussian components, and numpyro's Normal, LogNormal (on log x) and MultivariateNormal."""
    comp, k, reg, tol = family.component, family.num_components, float(options.reg_covar), float(options.tol)
    max_iter = options.max_iter or 100
    if isinstance(comp, Gaussian):
        if data.ndim != 2:
            raise ValueError(f"Expected data of shape (n, {comp.dim}) for {family.name}; got {data.shape}.")
        kind, x, shift, what = comp.covariance, data, 0.0, ""
        values = functools.partial(_gaussian_values, family)
    else:
        kind, x, shift = gaussian_view(comp), np.asarray(data, dtype=float).reshape(len(data), -1), 0.0
        what = f" {comp.name} components: the Gaussian EM ({'full' if kind == 'full' else 'diagonal'} covariance"
        if comp.cls is dist.LogNormal:
            _check_support(family, x, x > 0, "x > 0")
            x = np.log(x)
            shift, what = -float(np.asarray(w, dtype=float) @ x.sum(axis=1)), what + ") on log x."
        else:
            what += ")."

        def values(p):
            return {"weights": np.asarray(p.weights, dtype=float), **gaussian_values(comp.cls, p, family.event_shape)}
    d = x.shape[1]
    host = _use_host(x.shape[0], d, k)
    if host:
        run = functools.partial(em_gaussian_mixture_host, x=x, sample_weight=w, tol=tol, reg=reg, max_iter=max_iter,
                                covariance=kind)
    else:
        padded = pad_rows(x, w)  # one compiled EM for every data size within a power of two

        def run(centers):
            return em_gaussian_mixture(centers, *padded, tol, reg, max_iter, covariance=kind,
                                       capacity=_capacity(max_iter))
    note = f"collapsed onto fewer than d + 1 = {d + 1} points (covariance at the reg_covar={reg:g} floor)"
    return _Plan(x, run, values, lambda p: _collapsed(p, total, reg, kind), note, _num_params(k, kind, d),
                 host, shift, what)


def _component_plan(family: Mixture, spec: ComponentEM, data, w, total, options) -> _Plan:
    """Components with a closed-form M step (``_em_components``): the NumPy EM."""
    comp, k, reg = family.component, family.num_components, float(options.reg_covar)
    x = np.asarray(data, dtype=float).reshape(len(data), -1)
    _check_support(family, x, spec.in_support(x), spec.support)
    run = functools.partial(em_components_host, spec, x=x, sample_weight=w, tol=float(options.tol), eps=reg,
                            max_iter=options.max_iter or 100)

    def values(p):
        weights, params = p
        shaped = {name: v.reshape(k, *family.event_shape) for name, v in spec.values(params).items()}
        return {"weights": weights, **shaped}

    note = (f"collapsed onto a point (a {spec.floor_param} at the reg_covar={reg:g} floor) or onto less than one "
            "row's weight")
    return _Plan(x, run, values, lambda p: collapsed_components(spec, p, total, reg), note,
                 k - 1 + k * x.shape[1] * spec.per_coordinate, what=f" {comp.name} components: {spec.description}.")


def _plan(family: Mixture, data, w, total, options) -> _Plan | None:
    """The EM of the family's components, or None (no closed-form M step: L-BFGS)."""
    if isinstance(family.component, Gaussian) or gaussian_view(family.component):
        return _gaussian_plan(family, data, w, total, options)
    spec = component_em(family.component)
    return None if spec is None else _component_plan(family, spec, data, w, total, options)


def _em(family: Mixture, plan: _Plan, w, options, key):
    restarts, tol, max_iter = options.num_restarts, options.tol, options.max_iter or 100
    best = None
    for r in range(restarts):
        centers = lloyd(plan.x, w, kmeans_plus_plus(seeded_rng(key, r), plan.x, w, family.num_components))
        out = plan.run(centers)
        ll, collapsed = float(out[1]), plan.collapsed(out[0])
        # a run with a collapsed component is no better optimum, whatever its log-likelihood
        if best is None or (not collapsed, ll) > (not best[1], best[0]):
            best = (ll, collapsed, out)
    ll, collapsed, (params, _, history, it, done) = best
    it, ll = int(it), ll + plan.shift
    history = -(np.asarray(history)[:it] + plan.shift)
    converged = bool(done) and np.isfinite(ll)
    message = (f"Converged: EM change of the mean log-likelihood and its Aitken-projected remainder < tol={tol} "
               f"after {it} iterations (best of {restarts} starts: greedy k-means++, then k-means"
               f"{'; NumPy' if plan.numpy else ''})." if converged else
               f"Not converged after max_iter={max_iter} EM iterations: try a larger max_iter or num_restarts.")
    message += plan.what
    if collapsed:
        note = (f" Components {collapsed} {plan.note}: the log-likelihood is that of a singular fit, not a better "
                "optimum. Try more num_restarts, another key, or fewer components.")
        message += note
        warnings.warn(note.strip(), UserWarning, stacklevel=5)
    return plan.values(params), -ll, np.append(history, -ll), it, converged, message, "em"


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
    message = (describe(best, solver="lbfgs", max_iter=max_iter) + f" Best of {restarts} k-means++ starts. "
               f"{family.component.name} components have no closed-form M step: L-BFGS on the mixture "
               "log-likelihood, not EM.")
    return best.params, best.value, best.history, best.num_iterations, best.converged, message, "lbfgs"


def fit_mixture(family: Mixture, data, w, total: float, options: ForwardOptions, key: Any, *,
                statistics: bool, engine: Callable | None = None) -> FitResult:
    """Maximum likelihood for a mixture on data (weights ``w`` sum to 1, ``total`` = Σ raw weights):
    EM where the components have a closed-form M step, else L-BFGS.

    ``engine``: an EM plan → the plan whose ``run`` makes the passes elsewhere (the Dask adapter:
    ``data`` is then the sample the k-means++ starts are drawn from, the iterations read all rows
    on a cluster); None: in memory."""
    key = _key(key, family)
    plan = _plan(family, data, w, total, options)
    if engine is not None and plan is not None:
        plan = engine(plan)
    out = _gradient(family, data, w, options, key) if plan is None else _em(family, plan, w, options, key)
    params, value, history, it, converged, message, method = out
    if method == "em":  # EM gives constrained values, in NumPy
        values, q = params, _distribution(family, params, data.dtype)
        num_params = plan.num_params
    else:
        q, values = C.finish(family, params)
        num_params = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(params)) - 1  # weights: k − 1 free
    extra = {}
    if statistics:
        extra = {"num_observations": float(total), "num_params": num_params,
                 **information_criteria(value, total, num_params),
                 "data_entropy": functools.partial(entropy_of_data, np.asarray(data), np.asarray(w),
                                                  discrete=bool(getattr(q.support, "is_discrete", False)))}
    return FitResult(q=q, params={k: np.asarray(v, dtype=data.dtype) for k, v in values.items()}, direction="forward",
                     objective=float(value), history=np.asarray(history, dtype=float), converged=converged,
                     num_iterations=it, message=message, family=family.name, method=method,
                     status="converged" if converged else "max_iter" if np.isfinite(value) else "not_finite", **extra)
