"""``kb.fit`` of Beta, Weibull and Student-t on a Dask array or column: the in-memory fits over per-block sums.

Each fit is the in-memory one (``kullback.fit._host_mle`` and, for the Beta, the closed form of
``kullback.families._closed``) with every sum over rows taken by one Dask pass; the client keeps
the iteration. Pass 0 (one for all three) returns per block the weighted moments of x and log x,
Σ s log(1 − x), the smallest and largest value and every ``stride``-th row (the Student-t's start).

- **Beta(α, β)**: an exponential family: its log-likelihood depends on the data only through
  N, s₁ = mean log x and s₀ = mean log(1 − x), so pass 0 is the only pass. Newton on the concave
  log-likelihood from the method-of-moments start (as in memory), to rounding; the observed
  information N [[ψ′(α) − ψ′(α+β), −ψ′(α+β)], [−ψ′(α+β), ψ′(β) − ψ′(α+β)]] does not depend on the rows.
- **Weibull(k, λ)**: the in-memory Newton on the profile equation g(k) = 0 from the same start,
  one pass per step for S_j = Σ s e^{k y} y^j (j = 0, 1, 2; y = log x − max log x, so nothing
  overflows): these are the profile log-likelihood's value, gradient and Hessian parts. One more
  pass gives the observed information in (k, λ).
- **Student-t(ν, μ, σ)**: the in-memory Newton in (log ν, μ, log σ) with its exact derivatives,
  Levenberg shift, Armijo backtracking and stopping rule; each block returns Σ s (value, gradient,
  Hessian) of the log-likelihood (``_host_mle._t_terms`` on its rows), and each pass evaluates the
  three first step lengths of the line search (1, ½, ¼) with their derivatives, so a step costs
  one pass. The start is the in-memory one (weighted median, MAD, kurtosis) computed on the sample
  (every row when there are at most ``SAMPLE_ROWS``: then the whole fit is the in-memory one).

Standard errors from the summed Hessian; the same :class:`~kullback.FitResult` as in memory, less
the data's entropy estimate (``data_entropy`` is ``None``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import numpyro.distributions as dist

from ._protocol import block_moments as _moments
from ._protocol import merge_moments as _merge
from ._protocol import as_block, as_dask_array, block_weights, map_reduce, row_blocks

__all__ = ["SCALAR", "SAMPLE_ROWS", "fit_scalar_dask"]

SCALAR = (dist.Beta, dist.Weibull, dist.StudentT)
SAMPLE_ROWS = 2**16  # rows the Student-t's start (medians) is computed on
_LADDER = (1.0, 0.5, 0.25)  # step lengths one Student-t pass evaluates


def _rows(x: Any) -> np.ndarray:
    x = as_block(x).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"Expected target (the data) to be finite; it has {int(np.sum(~np.isfinite(x)))} NaN or inf rows.")
    return x


def _stats_kernel(x: Any, w: Any, start: int, stride: int) -> dict:
    """Pass 0, per block (see the module's docstring)."""
    x = _rows(x)
    s = block_weights(w, x.shape[0])
    positive, below_one = bool(np.all(x > 0)), bool(np.all(x < 1))
    pick = slice((-start) % stride, None, stride)
    return {"moments": _moments(x, s), "min": float(x.min()) if x.size else math.inf,
            "max": float(x.max()) if x.size else -math.inf,
            "log_moments": _moments(np.log(np.where(x > 0, x, 1.0)), s) if positive else None,
            "log1m": float(s @ np.log1p(-x)) if positive and below_one else None,
            "sample": x[pick], "sample_weight": s[pick]}


def _combine(a: dict, b: dict) -> dict:
    """The combine of :func:`_stats_kernel` (a before b in row order)."""
    both = a["log_moments"] is not None and b["log_moments"] is not None
    log1m = a["log1m"] is not None and b["log1m"] is not None
    return {"moments": _merge(a["moments"], b["moments"]), "min": min(a["min"], b["min"]),
            "max": max(a["max"], b["max"]), "log_moments": _merge(a["log_moments"], b["log_moments"]) if both else None,
            "log1m": a["log1m"] + b["log1m"] if log1m else None,
            "sample": np.concatenate([a["sample"], b["sample"]]),
            "sample_weight": np.concatenate([a["sample_weight"], b["sample_weight"]])}


# --- Beta: pass 0 only -------------------------------------------------------------------------

def _beta(stats: dict, total: float):
    from scipy.special import betaln, digamma, polygamma

    from ..fit._host_mle import HostFit

    _, mean, m2 = stats["moments"]
    s1, s0 = stats["log_moments"][1], stats["log1m"] / total
    var = m2 / total
    if not var > 0:
        raise ValueError("Expected target (the data) to vary; all rows with positive weight are equal.")
    common = max(mean * (1.0 - mean) / var - 1.0, 1e-3)  # the in-memory start (method of moments)
    a, b = mean * common, (1.0 - mean) * common
    converged = False
    for _ in range(100):  # Newton on the concave log-likelihood, steps kept inside α, β > 0
        t = float(polygamma(1, a + b))
        g1, g0 = float(digamma(a) - digamma(a + b)) - s1, float(digamma(b) - digamma(a + b)) - s0
        h11, h00 = float(polygamma(1, a)) - t, float(polygamma(1, b)) - t
        det = h11 * h00 - t * t
        da, db = -(h00 * g1 + t * g0) / det, -(t * g1 + h11 * g0) / det
        limits = [-v / dv for v, dv in ((a, da), (b, db)) if dv < 0]
        shrink = min([1.0] + [0.5 * v for v in limits])
        a, b = a + shrink * da, b + shrink * db
        if abs(da) <= 4e-16 * a and abs(db) <= 4e-16 * b:
            converged = True
            break
    nll = -((a - 1.0) * s1 + (b - 1.0) * s0 - float(betaln(a, b)))
    t = float(polygamma(1, a + b))
    info = total * np.array([[float(polygamma(1, a)) - t, -t], [-t, float(polygamma(1, b)) - t]])  # (α, β)
    cov = np.linalg.inv(info)
    se = np.sqrt(np.diag(cov))
    # numpyro's order (α = concentration1 first), as the in-memory fit's params and summary
    return HostFit({"concentration1": np.asarray(a), "concentration0": np.asarray(b)}, nll,
                   {"concentration1": np.asarray(se[0]), "concentration0": np.asarray(se[1])}, cov, 0,
                   converged and math.isfinite(nll), "closed_form")


# --- Weibull: one pass per profile Newton step ---------------------------------------------------

def _weibull_kernel(x: Any, w: Any, total: float, k: float, top: float, log_lam: float | None) -> tuple:
    """S0, S1, S2 = Σ s e^{k y} y^j (y = log x − top, s = w / total); with ``log_lam``: the sums
    of the observed information, Σ s z, Σ s z log z, Σ s z log² z (z = (x/λ)^k)."""
    log_x = np.log(_rows(x))
    s = block_weights(w, log_x.shape[0]) / total
    if log_lam is not None:
        logz = log_x - log_lam
        z = s * np.exp(k * logz)
        return float(z.sum()), float(z @ logz), float(z @ (logz * logz))
    y = log_x - top
    e = s * np.exp(k * y)
    return float(e.sum()), float(e @ y), float(e @ (y * y))


def _weibull(blocks: list, stats: dict, total: float, counter: list):
    """``_host_mle._weibull`` with its sums over rows taken by Dask passes."""
    from ..fit._host_mle import weibull_result, weibull_shape

    def sums(k, top, log_lam=None):
        counter[0] += 1
        return map_reduce(_weibull_kernel, blocks, total, k, top, log_lam)

    _, mean_log, m2_log = stats["log_moments"]
    top = math.log(stats["max"])
    mean_y = mean_log - top
    sd = math.sqrt(max(m2_log / total, 0.0))
    if not sd > 0:
        raise ValueError("Expected target (the data) to vary; all rows with positive weight are equal.")
    last = [None, None]  # (k, its sums) of the latest pass

    def shape_sums(k):
        last[:] = k, sums(k, top)
        return last[1]

    k, converged, it = weibull_shape(shape_sums, mean_y, sd)
    s0 = (last[1] if last[0] == k else sums(k, top))[0]  # converged: the last pass was at k
    log_lam = top + math.log(s0) / k
    lam = math.exp(log_lam)
    c, b, a = sums(k, top, log_lam)
    mean_nll = -(math.log(k) - k * log_lam + (k - 1.0) * mean_log - c)
    return weibull_result(k, lam, mean_nll, (a, b, c), total, it, converged)


# --- Student-t: one pass per Newton step -----------------------------------------------------------

def _t_kernel(x: Any, w: Any, total: float, thetas: np.ndarray, order: int) -> np.ndarray:
    """Σ s (ℓ, ∇ℓ, ∇²ℓ) over the block's rows at each θ = (ν, μ, σ) in ``thetas`` (s = w / total):
    ``_t_terms`` on the rows with weights s / Σ s, times Σ s (its constants then add up to the
    whole data's). Row j: [value, 3 gradient, 9 Hessian entries] (zeros past the value for order 0)."""
    from ..fit._host_mle import _t_terms

    x = _rows(x)
    s = block_weights(w, x.shape[0]) / total
    share = float(s.sum())
    out = np.zeros((len(thetas), 13))
    if not share > 0:
        return out
    for j, theta in enumerate(thetas):
        terms = _t_terms(np.asarray(theta, dtype=np.float64), x, s / share, order)
        out[j, 0] = terms if order == 0 else terms[0]
        if order:
            out[j, 1:4], out[j, 4:] = terms[1], np.ravel(terms[2])
    return out * share


def _student_t(blocks: list, stats: dict, total: float, max_iter: int, counter: list):
    """``_host_mle._student_t`` with its sums over rows taken by Dask passes (ladder of step lengths)."""
    from ..fit._host_mle import _T_MAX_DF, HostFit, t_newton_step, t_start

    sample_w = stats["sample_weight"]
    start = t_start(stats["sample"], sample_w / sample_w.sum())
    if start is None:
        raise ValueError("Expected target (the data) to vary; all rows with positive weight are equal.")

    def unpack(e):
        return np.array([math.exp(e[0]), e[1], math.exp(e[2])])

    def evaluate(points):
        counter[0] += 1
        out = map_reduce(_t_kernel, blocks, total, np.array([unpack(e) for e in points]), 2)
        return [(row[0], row[1:4], row[4:].reshape(3, 3)) for row in out]

    def failed(why):
        return ValueError(f"The Student-t fit on Dask {why}; the compiled in-memory fit (on a sample, x.compute()) "
                          "reports why, or the data are close to normal: fit dist.Normal.")

    eta = np.array([math.log(start[0]), start[1], math.log(start[2])])
    value, g, h = evaluate([eta])[0]
    history, converged = [-value], False
    for it in range(max_iter + 1):
        step, decrement, shift = t_newton_step(unpack(eta), g, h)
        if decrement <= 1e-13 * max(1.0, abs(value)) and shift == 0.0:
            eta = eta + step  # the last Newton step, as in memory: from ~√1e-13 off to rounding
            value, g, h = evaluate([eta])[0]
            converged = True
            break
        if it == max_iter:
            break
        ladder, accepted = _LADDER, None
        while accepted is None and ladder[0] > 1e-10:
            inside = [t for t in ladder if t > 1e-10 and abs((eta + t * step)[0]) < 700 and abs((eta + t * step)[2]) < 700]
            for t, terms in zip(inside, evaluate([eta + t * step for t in inside]) if inside else []):
                if np.isfinite(terms[0]) and terms[0] >= value + 1e-4 * t * decrement:
                    accepted = t, terms
                    break
            ladder = tuple(ladder[-1] * 0.5 ** (j + 1) for j in range(30))
        if accepted is None:
            raise failed("found no step that raises the log-likelihood")
        t, (value, g, h) = accepted
        eta = eta + t * step
        history.append(-value)
        if eta[0] > math.log(_T_MAX_DF):
            raise failed(f"ran to df > {_T_MAX_DF:g}")
    theta = unpack(eta)
    if not (converged and theta[2] > 0):
        raise failed(f"did not converge in max_iter={max_iter} Newton steps")
    info = -total * h
    cov = np.linalg.inv(info) if np.all(np.linalg.eigvalsh(info) > 0) else np.full((3, 3), np.nan)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    names = ("df", "loc", "scale")
    return HostFit({n: np.asarray(v) for n, v in zip(names, theta)}, -value,
                   {n: np.asarray(e) for n, e in zip(names, se)}, cov, len(history) - 1, math.isfinite(value),
                   description="Newton on the log-likelihood in (log df, loc, log scale), exact derivatives",
                   history=tuple(history))


def fit_scalar_dask(family: Any, target: Any, options: Any):
    """Beta, Weibull or Student-t maximum likelihood on a Dask array or column (module docstring)."""
    from ..fit._forward import _host_result

    cls = family.cls
    if options.init or options.solver != "auto":
        raise NotImplementedError(f"kb.fit of dist.{cls.__name__} on a Dask collection takes no init= or solver=.")
    x = as_dask_array(target, "target")
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"Expected target (the data) to have shape (n,) with n ≥ 1 for {family.name}; got shape {x.shape}.")
    n = x.shape[0]
    stride = max(1, -(-n // SAMPLE_ROWS)) if cls is dist.StudentT else n
    blocks = row_blocks({"target": x, "sample_weight": options.sample_weight})
    starts = np.cumsum([0] + list(x.chunks[0][:-1]))
    stats = map_reduce(_stats_kernel, [(*b, int(i)) for b, i in zip(blocks, starts)], stride, combine=_combine)
    total = float(stats["moments"][0])
    if not total > 0:
        raise ValueError("Expected sample_weight to have a positive sum; all weights are zero.")
    counter = [1]
    if cls is dist.Beta:
        if not (stats["min"] > 0 and stats["max"] < 1):
            raise ValueError(f"Expected target (the data) to lie in (0, 1) for Beta; its values span "
                             f"[{stats['min']:.6g}, {stats['max']:.6g}].")
        host = _beta(stats, total)
    elif cls is dist.Weibull:
        if not stats["min"] > 0:
            raise ValueError(f"Expected target (the data) to be positive for Weibull; its smallest value is "
                             f"{stats['min']:.6g}.")
        host = _weibull(blocks, stats, total, counter)
    else:
        if not stats["sample_weight"].sum() > 0:
            raise ValueError(f"Expected the rows sampled for the Student-t's start (every {stride}th) to have a "
                             "positive weight; they all have weight 0.")
        host = _student_t(blocks, stats, total, options.max_iter or 100, counter)
    result = _host_result(family.with_event_shape(()), host, None, None, total, options, True)
    return dataclasses.replace(result, data_entropy=None, message=result.message + f" On Dask: {counter[0]} pass{'es' if counter[0] > 1 else ''} over the rows.")
