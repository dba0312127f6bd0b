"""Gaussian mixtures on a Dask array: the in-memory EM, one pass over the rows per iteration.

``kb.fit(kb.families.Mixture(kb.families.Gaussian(d, covariance), k), x, key=...)`` (and mixtures
of numpyro's Normal, LogNormal and MultivariateNormal, which run the same Gaussian EM):

1. **One pass** gathers every ``stride``-th row (a sample of at most ``SAMPLE_ROWS`` rows, the
   same rows whatever the chunks: a row is kept when its index in the whole array is a multiple
   of the stride) with its weight, the weighted mean of the rows (the diagonal EM's origin), the
   smallest value (LogNormal's support) and Σ s log x (LogNormal's Jacobian).
2. On the client, the in-memory fit (``kullback.fit._mixture.fit_mixture``) draws its starts
   from that sample exactly as it would for the sample in memory: greedy k-means++ (seeded by
   ``key`` and the restart) refined by Lloyd's k-means; each start's EM then reads all rows.
3. **One pass per EM iteration** (and one for the start, each row in its nearest centre's
   component): each block runs the in-memory E step on its rows (``_em._full_pass`` /
   ``_em._diag_pass``) and returns Σ_i s_i log Σ_j π_j N(x_i | μ_j, Σ_j) and the responsibility-
   weighted moments N_j = Σ R_ij, Σ R_ij δ_ij, Σ R_ij δ_ij δ_ijᵀ (δ about each component's current
   mean for full covariances, about the data's mean for diagonal ones); the totals go through the
   in-memory M step (``_em._host_m_step``) and stopping rule (``_em.em_loop``).

So the Dask EM is the in-memory EM started from the same centres: the same iterations, equal to
rounding (the tests: 1e-10 relative), with its convergence message, status and the warning for a
collapsed component. ``num_restarts`` starts each run their own EM on the cluster (their passes add
up); the best by the log-likelihood of all rows is kept, as in memory. Other mixture components
(Poisson, Gamma, Laplace, ...) are not on Dask yet (a weighted median is not a sum).

The private ``_em`` names are the right ones here: the block kernel *is* the in-memory pass over
a block of rows, and reusing it is what makes the two fits equal.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np
import numpyro.distributions as dist

from ._protocol import block_moments as _moments
from ._protocol import merge_moments as _merge
from ._protocol import as_block, as_dask_array, block_weights, map_reduce, row_blocks

__all__ = ["fit_mixture_dask", "gaussian_kind", "SAMPLE_ROWS"]

SAMPLE_ROWS = 2**15  # rows the k-means++ starts are drawn from (every stride-th row)


def gaussian_kind(family: Any) -> str | None:
    """The Gaussian EM's covariance kind of a mixture's components, or None (no Dask EM)."""
    from ..families import Gaussian
    from ..fit._em_components import gaussian_view

    comp = family.component
    if isinstance(comp, Gaussian):
        return comp.covariance if comp.covariance in ("full", "diag", "spherical") else None
    return gaussian_view(comp)


def _rows(x: Any, logs: bool) -> np.ndarray:
    x = as_block(x)
    x = x.reshape(x.shape[0], -1)
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(f"Expected target (the data) to be finite; it has {int(bad.sum())} NaN or inf entries.")
    return np.log(x) if logs else x


def _sample_kernel(x: Any, w: Any, start: int, stride: int, logs: bool) -> dict:
    """Pass 0, per block: the sample rows (global index a multiple of ``stride``) with their
    weights, the weighted moments of the rows (of log x for LogNormal), the smallest value and
    Σ s Σ_l log x_il."""
    raw = as_block(x)
    raw = raw.reshape(raw.shape[0], -1)
    smallest = float(raw.min()) if raw.size else math.inf
    if logs and not smallest > 0:
        return {"min": smallest}  # the client says which support was left
    rows = _rows(raw, logs)
    s = block_weights(w, rows.shape[0])
    pick = slice((-start) % stride, None, stride)
    return {"moments": _moments(rows, s), "min": smallest, "log_sum": float(s @ rows.sum(axis=1)) if logs else 0.0,
            "sample": raw[pick], "sample_weight": s[pick]}


def _combine_samples(a: dict, b: dict) -> dict:
    """The combine of :func:`_sample_kernel` (a before b in row order)."""
    if "moments" not in a or "moments" not in b:
        return {"min": min(a["min"], b["min"])}
    return {"moments": _merge(a["moments"], b["moments"]), "min": min(a["min"], b["min"]),
            "log_sum": a["log_sum"] + b["log_sum"], "sample": np.concatenate([a["sample"], b["sample"]]),
            "sample_weight": np.concatenate([a["sample_weight"], b["sample_weight"]])}


def _em_kernel(x: Any, w: Any, total: float, logs: bool, kind: str, shift: np.ndarray, params: Any,
               centers: np.ndarray | None) -> tuple:
    """One block of one EM pass: the in-memory pass over its rows (weights s / total).

    With ``params``: (Σ s log p(x), N_j, Σ R δ, Σ R δδᵀ or Σ R δ²), δ about ``shift``; without: the
    same moments with each row in its nearest centre's component (the EM's start)."""
    from ..fit._em import _diag_pass, _full_pass

    rows = _rows(x, logs)
    xt = np.ascontiguousarray(rows.T)
    s = block_weights(w, rows.shape[0]) / total
    if kind == "full":
        return tuple(_full_pass(xt, s, shift, params))
    return tuple(_diag_pass(xt, s, shift, kind, params, centers))


class _Passes:
    """The EM of ``em_gaussian_mixture_host`` whose passes are Dask passes (the plan's ``run``)."""

    def __init__(self, blocks: list, total: float, logs: bool, kind: str, origin: np.ndarray, options: Any) -> None:
        self.blocks, self.total, self.logs, self.kind, self.origin = blocks, total, logs, kind, origin
        self.tol, self.reg, self.max_iter = float(options.tol), float(options.reg_covar), options.max_iter or 100
        self.num_passes = 0

    def _pass(self, shift, params=None, centers=None) -> tuple:
        self.num_passes += 1
        return map_reduce(_em_kernel, self.blocks, self.total, self.logs, self.kind, shift, params, centers)

    def __call__(self, centers: np.ndarray):
        from ..fit._em import _host_m_step, em_loop

        centers = np.asarray(centers, dtype=np.float64)
        kind = self.kind
        if kind == "full":
            def e_step(p):
                ll, *moments = self._pass(p.means, p)
                return ll, (moments, p.means)
            start = self._pass(centers)[1:], centers
        else:
            around = np.broadcast_to(self.origin, centers.shape)

            def e_step(p):
                ll, *moments = self._pass(self.origin, p)
                return ll, (moments, around)
            start = self._pass(self.origin, None, centers)[1:], around

        def m_step(stats):
            return _host_m_step(*stats, self.reg, kind)

        return em_loop(e_step, m_step, m_step(start), self.tol, self.max_iter)


def _engine(passes: _Passes, shift: float, note: str, plan: Any) -> Any:
    """The in-memory plan (built on the sample) with its EM run on the cluster."""
    return plan._replace(run=passes, shift=shift, what=plan.what + note)


def fit_mixture_dask(family: Any, target: Any, options: Any, key: Any):
    """EM for a Gaussian mixture on a Dask array (see the module's docstring)."""
    from ..fit._mixture import fit_mixture

    kind = gaussian_kind(family)
    if kind is None:
        raise NotImplementedError(
            f"kb.fit of a mixture on a Dask collection runs the Gaussian EM (kb.families.Gaussian components with "
            f"full, diag or spherical covariance, or dist.Normal, dist.LogNormal, dist.MultivariateNormal); got "
            f"{family.name}. Fit a sample in memory (x.compute() or a random subset)."
        )
    if options.init or options.solver != "auto":
        raise NotImplementedError("kb.fit of a mixture on a Dask collection takes no init= or solver=.")
    x = as_dask_array(target, "target")
    if x.ndim == 1 and family.event_shape == (1,):
        x = x[:, None]
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"Expected target (the data) to have n ≥ 1 rows for {family.name}; got shape {x.shape}.")
    family = family.with_event_shape(x.shape[1:])
    n = x.shape[0]
    flat = x.reshape(n, -1) if x.ndim != 2 else x
    logs = getattr(family.component, "cls", None) is dist.LogNormal
    stride = max(1, -(-n // SAMPLE_ROWS))
    blocks = row_blocks({"target": flat, "sample_weight": options.sample_weight})
    starts = np.cumsum([0] + list(flat.chunks[0][:-1]))
    stats = map_reduce(_sample_kernel, [(*b, int(i)) for b, i in zip(blocks, starts)], stride, logs,
                       combine=_combine_samples)
    if "moments" not in stats:
        raise ValueError(f"Expected target (the data) to lie in the support of {family.name} (x > 0); its smallest "
                         f"value is {stats['min']:.6g}.")
    total, origin, _ = stats["moments"]
    if not total > 0:
        raise ValueError("Expected sample_weight to have a positive sum; all weights are zero.")
    sample, raw = stats["sample"], stats["sample_weight"]
    if not raw.sum() > 0:
        raise ValueError(f"Expected the rows sampled for the k-means++ starts (every {stride}th) to have a positive "
                         "weight; they all have weight 0.")
    sample = sample.reshape(sample.shape[0], *x.shape[1:])
    passes = _Passes(blocks, float(total), logs, kind, np.asarray(origin, dtype=np.float64), options)
    drawn = f"all {n} rows" if stride == 1 else f"{sample.shape[0]} rows (every {stride}th)"
    note = f" On Dask: starts drawn from {drawn}, one pass over all {n} rows per EM iteration."
    engine = functools.partial(_engine, passes, -stats["log_sum"] / total if logs else 0.0, note)
    local = dataclasses.replace(options, sample_weight=None)
    result = fit_mixture(family, sample, raw / raw.sum(), float(total), local, key, statistics=True, engine=engine)
    return dataclasses.replace(result, data_entropy=None,
                               message=result.message + f" {passes.num_passes + 1} passes over the rows.")
