"""From checked data to fitted parameters: penalty weights, blocks of rows, solver choice, statistics.

Host-side glue between the estimators and the solvers. Everything runs in float64 (inside
``jax.enable_x64(True)``) whatever jax's x64 flag says. The rows reach the solvers as blocks of
one shape (:mod:`kullback.glm._blocks`: zero rows with weight 0 pad the last block; small data
also get zero columns with a unit ridge up to a multiple of 4), so refits on other numbers of
rows reuse the compiled block kernels; padding changes no result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _blocks
from ._blocks import Blocks
from ._lbfgs import lbfgs
from ._newton import CONVERGED, newton

__all__ = ["Problem", "Solution", "solve", "choose_solver", "NEWTON_MAX_WIDTH"]

NEWTON_MAX_WIDTH = 500  # parameters M·q up to which "auto" picks Newton over L-BFGS
SE_MAX_WIDTH = 2000
_SUBSAMPLE_ROWS = 1 << 16  # rows of the subsampled Hessian of tall data (see _newton.newton)


@dataclass
class Problem:
    """A fit to run: data, parameterisation and penalty, all float64 NumPy."""

    X: np.ndarray  # (n, p)
    labels: np.ndarray  # (n,) class indices
    weights: np.ndarray  # (n,) ≥ 0, not normalised
    offset: np.ndarray  # (n, K)
    num_classes: int
    reference: bool
    intercept: bool
    ridge: float  # per slope, on the mean objective
    l1: float  # per slope, on the mean objective

    @property
    def num_free(self) -> int:
        return self.num_classes - 1 if self.reference else self.num_classes

    @property
    def width(self) -> int:
        return self.num_free * (self.X.shape[1] + int(self.intercept))


@dataclass
class Solution:
    """Fitted parameters (M, q) and statistics on the original, unpadded problem."""

    Theta: np.ndarray
    objective: float
    violation: float
    num_steps: int
    status: int
    solver: str
    loglike: float
    row_loss: np.ndarray  # per example, unweighted
    hessian: np.ndarray | None  # of the mean unpenalised loss, (M·q, M·q)


def choose_solver(solver: str, width: int, use_l1: bool) -> str:
    """``"auto"``: Newton for L1 or up to ``NEWTON_MAX_WIDTH`` parameters, else L-BFGS."""
    if solver == "auto":
        return "newton" if use_l1 or width <= NEWTON_MAX_WIDTH else "lbfgs"
    if solver == "lbfgs" and use_l1:
        raise ValueError(
            "Expected solver to be 'newton' or 'auto' with an L1 or elastic-net penalty; "
            "got 'lbfgs' (L-BFGS needs a smooth objective)."
        )
    return solver


def _start(problem: Problem, q: int) -> np.ndarray:
    """The intercept-only fit (no offset) as the starting point."""
    Theta = np.zeros((problem.num_free, q))
    if problem.intercept:
        share = np.bincount(problem.labels, weights=problem.weights, minlength=problem.num_classes)
        log_share = np.log(np.maximum(share / share.sum(), 1e-12))
        b = log_share[1:] - log_share[0] if problem.reference else log_share - log_share.mean()
        Theta[:, 0] = b
    return Theta.reshape(-1)


def _padded_columns(X: np.ndarray) -> np.ndarray:
    """Small data: zero columns up to a multiple of 4 (one kernel for several widths)."""
    n, p = X.shape
    if n > _blocks.BLOCK_ROWS or p % 4 == 0:
        return X
    Xp = np.zeros((n, -(-p // 4) * 4))
    Xp[:, :p] = X
    return Xp


def _embed(values_per_slope: float, M: int, p_pad: int, p: int, intercept: bool, pad_value: float) -> np.ndarray:
    q = p_pad + int(intercept)
    v = np.full((M, q), values_per_slope)
    if intercept:
        v[:, 0] = 0.0
    v[:, int(intercept) + p:] = pad_value
    return v.reshape(-1)


def _column_scale(X: np.ndarray, w: np.ndarray, M: int, intercept: bool) -> np.ndarray:
    """s per parameter, flat (M·q,): s_j = √(Σ_i w_i x_ij²) for the slopes (w summing to 1),
    1 for intercepts and all-zero columns. The solvers measure their optimality violation
    in these units (∂f/∂θ_j / s_j: a column ×c scales both by c), so they stop at the same
    point whatever the units of X."""
    sq = np.zeros(X.shape[1])
    for start in range(0, X.shape[0], 4096):  # chunks: no n × p temporary (einsum took 4× longer)
        rows = slice(start, start + 4096)
        sq += w[rows] @ np.square(X[rows])
    rms = np.sqrt(sq)
    rms = np.where(np.isfinite(rms) & (rms > 0), rms, 1.0)
    per_class = np.r_[1.0, rms] if intercept else rms
    return np.tile(per_class, M)


def _subsample(n: int, width: int) -> int:
    """Row stride k of the Newton steps' Hessian: 1 (exact) unless the data are tall enough
    that every k-th row still gives at least ``_SUBSAMPLE_ROWS`` rows and 100 per parameter."""
    target = max(_SUBSAMPLE_ROWS, 100 * width)
    return n // target if n >= 4 * target else 1


_PILOT_ROWS = 1 << 14  # rows of the pilot fit that starts Newton on tall data (see _pilot)


def _pilot(problem: Problem, Xp: np.ndarray, w: np.ndarray, r, lam, mu, theta0, scale, host: bool) -> np.ndarray:
    """Newton's start on tall data read in NumPy: the fit to every k-th row (about
    ``_PILOT_ROWS``), when it converges; else ``theta0``. It is within a few standard errors of
    the full fit, where Newton converges quadratically: two or three full passes fewer (a pass
    reads X; the pilot costs a fraction of one). L1 fits keep ``theta0``."""
    n = Xp.shape[0]
    k = n // _PILOT_ROWS
    if not host or k < 4 or np.any(lam > 0):
        return theta0
    w_sub = w[::k]
    total = w_sub.sum()
    if not total > 0:
        return theta0
    rows = slice(None, None, k)
    pilot = newton(_make_blocks(problem, Xp[rows], rows, w_sub / total), r, lam, mu, theta0, 1e-6, 50,
                   intercept=problem.intercept, scale=scale)
    good = pilot.status == CONVERGED and np.all(np.isfinite(pilot.params))
    return np.asarray(pilot.params) if good else theta0


def _make_blocks(problem: Problem, X: np.ndarray, rows, w: np.ndarray) -> Blocks:
    return Blocks(
        X, problem.labels[rows], w, problem.offset[rows], num_classes=problem.num_classes,
        num_free=problem.num_free, reference=problem.reference, intercept=problem.intercept,
    )


def solve(problem: Problem, *, solver: str, tol: float, max_iter: int, want_hessian: bool) -> Solution:
    """Run the chosen solver; unpad; compute the log-likelihood and (optionally) the Hessian."""
    n, p = problem.X.shape
    M, intercept = problem.num_free, problem.intercept
    Xp = _padded_columns(problem.X)
    p_pad = Xp.shape[1]
    q_pad, q = p_pad + int(intercept), p + int(intercept)
    total = float(problem.weights.sum())
    w = problem.weights / total
    data = _make_blocks(problem, Xp, slice(None), w)
    r = _embed(problem.ridge, M, p_pad, p, intercept, 1.0)
    lam = _embed(problem.l1, M, p_pad, p, intercept, 0.0)
    mu = 1.0 if (intercept and not problem.reference) else 0.0
    theta0 = np.zeros((M, q_pad))
    theta0[:, :q] = _start(problem, q).reshape(M, q)
    theta0 = theta0.reshape(-1)
    scale = _column_scale(Xp, w, M, intercept)
    if solver == "newton":
        k = _subsample(n, problem.width)
        sub = None
        if k > 1:  # every k-th row, its weights rescaled to sum to 1 (if they can)
            w_sub = w[::k]
            s = w_sub.sum()
            sub = _make_blocks(problem, Xp[::k], slice(None, None, k), w_sub / s if s > 0 else w_sub)
        theta0 = _pilot(problem, Xp, w, r, lam, mu, theta0, scale, data.host)
        result = newton(data, r, lam, mu, theta0, float(tol), int(max_iter), intercept=intercept, sub=sub,
                        scale=scale, final_hessian=want_hessian)
    else:
        result = lbfgs(data, r, mu, theta0, float(tol), int(max_iter), intercept=intercept, scale=scale)
    losses = data.row_loss(result.eta)
    hessian = None
    if want_hessian:
        H = result.hessian
        if H is None:  # the exact Hessian at θ: one more read of X
            H = data.step(result.eta, np.zeros_like(result.params), hessian=True)[5]
        keep = np.zeros((M, q_pad), dtype=bool)
        keep[:, :q] = True
        keep = keep.reshape(-1)
        hessian = H[np.ix_(keep, keep)]
    Theta = np.asarray(result.params).reshape(M, q_pad)[:, :q].copy()
    return Solution(
        Theta=Theta,
        objective=float(result.objective),
        violation=float(result.violation),
        num_steps=int(result.num_steps),
        status=int(result.status),
        solver=solver,
        loglike=-float(np.dot(problem.weights, losses)),
        row_loss=losses,
        hessian=hessian,
    )


def null_loglike(problem: Problem, *, tol: float, max_iter: int) -> float:
    """ℓ of the null model: intercept only (closed form without an offset), or the offset alone."""
    total = float(problem.weights.sum())
    if not problem.intercept:
        return -float(np.dot(problem.weights, _row_loss_host(problem)))
    if not problem.offset.any():
        share = np.bincount(problem.labels, weights=problem.weights, minlength=problem.num_classes) / total
        nonzero = share[share > 0]
        return total * float(np.sum(nonzero * np.log(nonzero)))
    # Intercept plus offset: a fit. One all-zero slope column held at 0 by a unit ridge keeps
    # the shapes legal and changes nothing (its gradient and penalty vanish there).
    null = Problem(np.zeros((problem.X.shape[0], 1)), problem.labels, problem.weights, problem.offset,
                   problem.num_classes, True, True, 1.0, 0.0)
    return solve(null, solver="newton", tol=tol, max_iter=max_iter, want_hessian=False).loglike


def _row_loss_host(problem: Problem) -> np.ndarray:
    """−log softmax(offset)_y per row: the loss of the model with all parameters 0."""
    n = problem.X.shape[0]
    L = problem.offset.copy()
    L = L - L.max(axis=1, keepdims=True)
    log_p = L - np.log(np.exp(L).sum(axis=1, keepdims=True))
    return -log_p[np.arange(n), problem.labels]


def converged(status: int) -> bool:
    return status == CONVERGED
