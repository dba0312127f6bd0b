"""``kb.fit(family, x)`` on a Dask array or column: maximum likelihood from one pass of sufficient statistics.

Each block returns its weighted moments (Σ w, the weighted mean and Σ w (x − mean)², of x and
where needed of log x), its smallest value, whether it holds integers only, and Σ w log Γ(x + 1)
for the Poisson. Moments combine by the pairwise update of Chan, Golub and LeVeque (exact in
exact arithmetic, and free of the cancellation of Σx² − (Σx)²/n); the rest by min, and, sum.
The client then applies the in-memory closed forms of :mod:`kullback.fit._host_mle` to the
totals (N = Σ w, w normalised to sum to 1):

    Normal:       μ = mean, σ² = M₂ / N;            se = σ/√N, σ/√(2N)
    LogNormal:    the same on log x, objective + mean of log x
    Exponential:  λ = 1 / mean;                       se = λ/√N
    Poisson:      λ = mean;                           se = √(λ/N)
    Gamma(α, β):  log α − ψ(α) = log mean − mean of log x, by the same 12 Newton steps from the
                  same start as in memory; β = α / mean; information N [[ψ′(α), −1/β], [−1/β, α/β²]]

and returns the same :class:`~kullback.FitResult` (the data's entropy estimate, which sorts all
rows, is left out: ``data_entropy`` is ``None``).

References:
    Chan, Golub, LeVeque (1979), Updating formulae and a pairwise algorithm for computing
    sample variances.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import numpyro.distributions as dist

from ._protocol import as_block, as_dask_array, block_weights, map_reduce, row_blocks
from ._protocol import merge_moments as _merge
from ._protocol import block_moments as _moments

__all__ = ["fit_dask", "SUPPORTED", "MAX_DISTINCT"]

SUPPORTED = (dist.Normal, dist.LogNormal, dist.Exponential, dist.Poisson, dist.Gamma)
_LOGS = (dist.LogNormal, dist.Gamma)
MAX_DISTINCT = 100_000  # distinct values a discrete fit gathers on the client


def _vector_kernel(x: Any, w: Any) -> tuple:
    """One block's moments of d-dimensional rows (the Gaussian families)."""
    x = as_block(x)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"Expected target (the data) to be finite; it has {int(np.sum(~np.isfinite(x)))} NaN or inf entries.")
    return _moments(x, block_weights(w, x.shape[0]))


def _stats_kernel(x: Any, w: Any, logs: bool, lgamma: bool) -> dict:
    """One block's sufficient statistics (see the module's docstring)."""
    x = as_block(x).reshape(-1)
    s = block_weights(w, x.shape[0])
    if not np.all(np.isfinite(x)):
        raise ValueError(f"Expected target (the data) to be finite; it has {int(np.sum(~np.isfinite(x)))} NaN or inf rows.")
    out = {"moments": _moments(x, s), "min": float(x.min()) if x.size else math.inf,
           "integer": bool(np.all(np.floor(x) == x))}
    if logs:
        out["log_moments"] = _moments(np.log(np.where(x > 0, x, 1.0)), s)
    if lgamma:
        from scipy.special import gammaln

        out["lgamma"] = float(s @ gammaln(np.maximum(x, 0.0) + 1.0))
    return out


def _combine(a: dict, b: dict) -> dict:
    out = {"moments": _merge(a["moments"], b["moments"]), "min": min(a["min"], b["min"]),
           "integer": a["integer"] and b["integer"]}
    if "log_moments" in a:
        out["log_moments"] = _merge(a["log_moments"], b["log_moments"])
    if "lgamma" in a:
        out["lgamma"] = a["lgamma"] + b["lgamma"]
    return out


def _outside(name: str, what: str, smallest: float) -> ValueError:
    return ValueError(f"Expected target (the data) to be {what} for {name}; its smallest value is {smallest:.6g}.")


def _gaussian(mean: float, m2: float, total: float):
    from ..fit._host_mle import _fit

    var = m2 / total
    if not var > 0:
        raise ValueError("Expected target (the data) to vary; all rows with positive weight are equal (σ = 0).")
    sd = math.sqrt(var)
    return _fit({"loc": mean, "scale": sd}, 0.5 * math.log(2 * math.pi * var) + 0.5,
                [sd / math.sqrt(total), sd / math.sqrt(2 * total)])


def _gamma(mean: float, mean_log: float, total: float):
    from scipy.special import digamma, gammaln, polygamma

    from ..fit._host_mle import HostFit

    s = math.log(mean) - mean_log
    if not s > 0:
        raise ValueError("Expected target (the data) to vary; all rows with positive weight are equal.")
    a = (3.0 - s + math.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)  # as in memory: start, 12 steps
    for _ in range(12):
        f, fp = math.log(a) - float(digamma(a)) - s, 1.0 / a - float(polygamma(1, a))
        a = 1.0 / (1.0 / a + f / (a * a * fp))
    rate = a / mean
    nll = -(a * math.log(rate) - float(gammaln(a)) + (a - 1.0) * mean_log - rate * mean)
    cov = np.linalg.inv(total * np.array([[float(polygamma(1, a)), -1.0 / rate], [-1.0 / rate, a / rate**2]]))
    se = np.sqrt(np.diag(cov))
    return HostFit({"concentration": np.asarray(a), "rate": np.asarray(rate)}, nll,
                   {"concentration": np.asarray(se[0]), "rate": np.asarray(se[1])}, cov, 0, bool(np.isfinite(nll)),
                   "closed_form")


def _finalize(cls: type, stats: dict):
    """The in-memory closed form of ``cls`` from the combined statistics."""
    from ..fit._host_mle import _fit

    total, mean, m2 = stats["moments"]
    name, smallest = cls.__name__, stats["min"]
    if cls is dist.Normal:
        return _gaussian(mean, m2, total)
    if cls is dist.LogNormal or cls is dist.Gamma:
        if not smallest > 0:
            raise _outside(name, "positive", smallest)
        _, mean_log, m2_log = stats["log_moments"]
        if cls is dist.Gamma:
            return _gamma(mean, mean_log, total)
        fit = _gaussian(mean_log, m2_log, total)
        return fit._replace(objective=fit.objective + mean_log)
    if cls is dist.Exponential:
        if not (smallest >= 0 and mean > 0):
            raise _outside(name, "non-negative with a positive mean", smallest)
        rate = 1.0 / mean
        return _fit({"rate": rate}, -math.log(rate) + 1.0, [rate / math.sqrt(total)])
    if not (smallest >= 0 and stats["integer"] and mean > 0):
        raise _outside(name, "counts (non-negative integers, not all 0)", smallest)
    return _fit({"rate": mean}, mean - mean * math.log(mean) + stats["lgamma"] / total, [math.sqrt(mean / total)])


def fit_dask(family: Any, target: Any, options: Any, key: Any = None):
    """Forward fit (maximum likelihood) of ``family`` to a Dask array or column ``target``
    (``key``: the k-means++ starts of a mixture)."""
    from ..families import Gaussian, Mixture, NumpyroFamily
    from ..fit._forward import _host_result

    if isinstance(family, Mixture):
        from ._mixture import fit_mixture_dask

        return fit_mixture_dask(family, target, options, key)
    cls = getattr(family, "cls", None)
    from ._scalar import SCALAR

    if type(family) is NumpyroFamily and cls in SCALAR and not family.fixed and not family.bounds:
        from ._scalar import fit_scalar_dask

        return fit_scalar_dask(family, target, options)
    if isinstance(family, Gaussian) or (type(family) is NumpyroFamily and cls is dist.MultivariateNormal
                                        and not family.fixed and not family.bounds):
        return _fit_gaussian(family, target, options)
    if type(family) is NumpyroFamily and getattr(getattr(cls, "support", None), "is_discrete", False) is True and (
            cls not in SUPPORTED or family.fixed or family.bounds):
        return _fit_discrete(family, target, options)
    if type(family) is not NumpyroFamily or cls not in SUPPORTED or family.fixed or family.bounds:
        names = ", ".join(f"dist.{c.__name__}" for c in SUPPORTED + SCALAR + (dist.MultivariateNormal,))
        names += ", kb.families.Gaussian, Gaussian mixtures, any discrete numpyro class (by its value counts)"
        raise NotImplementedError(
            f"kb.fit on a Dask collection fits {names} (sufficient statistics or per-block sums), with nothing "
            f"fixed or bounded; got {getattr(family, 'name', family)!r}. Fit a sample in memory "
            "(x.compute() or a random subset), or use the in-memory data."
        )
    if options.init or options.solver != "auto":
        raise NotImplementedError("kb.fit on a Dask collection takes no init= or solver=: its fits are closed forms.")
    x = as_dask_array(target, "target")
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"Expected target (the data) to have shape (n,) with n ≥ 1 for {family.name}; got shape {x.shape}.")
    blocks = row_blocks({"target": x, "sample_weight": options.sample_weight})
    stats = map_reduce(_stats_kernel, blocks, cls in _LOGS, cls is dist.Poisson, combine=_combine)
    total = stats["moments"][0]
    if not total > 0:
        raise ValueError("Expected sample_weight to have a positive sum; all weights are zero.")
    host = _finalize(cls, stats)
    result = _host_result(family.with_event_shape(()), host, None, None, float(total), options, True)
    return dataclasses.replace(result, data_entropy=None)


def _fit_gaussian(family: Any, target: Any, options: Any):
    """A Gaussian family's fit from the weighted mean μ and covariance C = LLᵀ of the rows.

    A Gaussian likelihood depends on the data only through (N, μ, C), so the in-memory fit of
    the 2d points μ ± √d·L e_j, each of weight N / (2d), which have the same N, μ and C, is the
    fit to the data: the same estimates, objective and observed information (hence standard
    errors), from the in-memory code. Rounding: about eps·|μ|/σ relative in C.
    """
    from ..fit._forward import fit_data

    x = as_dask_array(target, "target")
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"Expected target (the data) to have shape (n, d) with n ≥ 1 for {family.name}; got shape {x.shape}.")
    if options.init or options.solver != "auto":
        raise NotImplementedError("kb.fit of a Gaussian on a Dask collection takes no init= or solver=.")
    blocks = row_blocks({"target": x, "sample_weight": options.sample_weight})
    total, mean, scatter = map_reduce(_vector_kernel, blocks, combine=_merge)
    if not total > 0:
        raise ValueError("Expected sample_weight to have a positive sum; all weights are zero.")
    d = mean.shape[0]
    try:
        L = np.linalg.cholesky(scatter / total)
    except np.linalg.LinAlgError:
        raise ValueError(
            "Expected target (the data) to span all d dimensions; its covariance is singular "
            "(a constant coordinate, or linearly dependent columns)."
        ) from None
    spread = math.sqrt(d) * L.T  # row j: √d · L e_j
    points = np.concatenate([mean + spread, mean - spread])
    weights = np.full(2 * d, total / (2 * d))
    result = fit_data(family, points, dataclasses.replace(options, sample_weight=None), what="data", weights=weights)
    return dataclasses.replace(result, data_entropy=None)


def _counts_kernel(x: Any, w: Any) -> dict:
    """One block's weight per distinct value (a discrete family's sufficient statistic)."""
    x = as_block(x).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"Expected target (the data) to be finite; it has {int(np.sum(~np.isfinite(x)))} NaN or inf rows.")
    values, inverse = np.unique(x, return_inverse=True)
    return dict(zip(values.tolist(), np.bincount(inverse.reshape(-1), weights=block_weights(w, x.shape[0])).tolist()))


def _merge_counts(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + v
    return out


def _fit_discrete(family: Any, target: Any, options: Any):
    """A discrete family (fixed and bounded parameters allowed) from one pass of value counts.

    The weighted log-likelihood of discrete data is Σ_v W_v log q(v) over the distinct values v
    with total weights W_v, so the in-memory fit of the distinct values weighted by W_v is the
    fit to the data: the same estimates, iterations, standard errors and criteria. Up to
    ``MAX_DISTINCT`` distinct values. ``data_entropy`` is ``None`` (its error counts rows).
    """
    from ..fit._forward import fit_data

    x = as_dask_array(target, "target")
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"Expected target (the data) to have shape (n,) with n ≥ 1 for {family.name}; got shape {x.shape}.")
    counts = map_reduce(_counts_kernel, row_blocks({"target": x, "sample_weight": options.sample_weight}),
                        combine=_merge_counts)
    if len(counts) > MAX_DISTINCT:
        raise ValueError(
            f"Expected at most {MAX_DISTINCT} distinct values for a discrete fit on Dask; target has {len(counts)}."
        )
    values = np.array(sorted(counts))
    weights = np.array([counts[v] for v in values.tolist()])
    if not weights.sum() > 0:
        raise ValueError("Expected sample_weight to have a positive sum; all weights are zero.")
    result = fit_data(family, values, dataclasses.replace(options, sample_weight=None), what="data", weights=weights)
    return dataclasses.replace(result, data_entropy=None)
