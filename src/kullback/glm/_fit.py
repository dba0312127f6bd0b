"""From checked data to fitted parameters: penalty weights, padding, solver choice, statistics.

Host-side glue between the estimators and the jitted solvers. Everything runs in float64
(inside ``jax.enable_x64(True)``) whatever jax's x64 flag says. Small data are padded (rows
with weight 0 up to a power of two, at least 256, zero columns with a unit ridge up to a multiple of 4) so
that refits on similar shapes reuse one compiled program; padding changes no result.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._lbfgs import lbfgs
from ._newton import CONVERGED, hessian_at, newton

__all__ = ["Problem", "Solution", "solve", "choose_solver", "NEWTON_MAX_WIDTH"]

NEWTON_MAX_WIDTH = 500  # parameters M·q up to which "auto" picks Newton over L-BFGS
_PAD_ROWS_UP_TO = 1 << 16
_MIN_ROWS = 256  # small data all share one row count: fewer programs to compile
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


def _padded(problem: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    X, n, p = problem.X, *problem.X.shape
    if n > _PAD_ROWS_UP_TO:
        onehot = np.zeros((n, problem.num_classes))
        onehot[np.arange(n), problem.labels] = 1.0
        return X, onehot, problem.weights, problem.offset, p
    rows = max(_MIN_ROWS, 1 << (n - 1).bit_length())
    cols = -(-p // 4) * 4
    Xp = np.zeros((rows, cols))
    Xp[:n, :p] = X
    onehot = np.zeros((rows, problem.num_classes))
    onehot[np.arange(n), problem.labels] = 1.0
    onehot[n:, 0] = 1.0
    w = np.zeros(rows)
    w[:n] = problem.weights
    off = np.zeros((rows, problem.num_classes))
    off[:n] = problem.offset
    return Xp, onehot, w, off, cols


def _embed(values_per_slope: float, M: int, p_pad: int, p: int, intercept: bool, pad_value: float) -> np.ndarray:
    q = p_pad + int(intercept)
    v = np.full((M, q), values_per_slope)
    if intercept:
        v[:, 0] = 0.0
    v[:, int(intercept) + p:] = pad_value
    return v.reshape(-1)


def _device_rows(X: np.ndarray):
    """X for jax without copying it where possible.

    jax takes a host array without a copy only if its data are 64-byte aligned; NumPy's large
    arrays usually start 16 bytes past a page, and copying 400 MB costs 0.1 s on a quiet
    machine and seconds on a loaded one. An unaligned X is passed as (a few head rows, the
    aligned rest), which the objective treats as one matrix (see ``_objective.Rows``).
    """
    X = np.ascontiguousarray(X)
    start, row = X.ctypes.data, X.strides[0]
    if start % 64 == 0 or X.shape[0] <= _PAD_ROWS_UP_TO:
        return jax.device_put(X)
    for h in range(1, 64):
        if (start + h * row) % 64 == 0:
            return jax.device_put(X[:h]), jax.device_put(X[h:])
    return jax.device_put(X)  # no aligned row start (e.g. a 16-byte offset, 32-byte rows): copied


def _subsample(n: int, width: int) -> int:
    """Row stride k of the Newton steps' Hessian: 1 (exact) unless the data are tall enough
    that every k-th row still gives at least ``_SUBSAMPLE_ROWS`` rows and 100 per parameter."""
    target = max(_SUBSAMPLE_ROWS, 100 * width)
    return n // target if n >= 4 * target else 1


def solve(problem: Problem, *, solver: str, tol: float, max_iter: int, want_hessian: bool) -> Solution:
    """Run the chosen solver; unpad; compute the log-likelihood and (optionally) the Hessian."""
    n, p = problem.X.shape
    M, K, intercept = problem.num_free, problem.num_classes, problem.intercept
    use_l1 = problem.l1 > 0
    Xp, Y, w, off, p_pad = _padded(problem)
    q_pad, q = p_pad + int(intercept), p + int(intercept)
    total = float(problem.weights.sum())
    r = _embed(problem.ridge, M, p_pad, p, intercept, 1.0)
    lam = _embed(problem.l1, M, p_pad, p, intercept, 0.0)
    mu = 1.0 if (intercept and not problem.reference) else 0.0
    theta0 = np.zeros((M, q_pad))
    theta0[:, :q] = _start(problem, q).reshape(M, q)
    statics = dict(num_free=M, reference=problem.reference, intercept=intercept)
    with jax.enable_x64(True):
        args = (_device_rows(Xp), jnp.asarray(Y), jnp.asarray(w / total), jnp.asarray(off))
        settings = (jnp.asarray(theta0.reshape(-1)), jnp.asarray(float(tol)), jnp.asarray(int(max_iter)))
        if solver == "newton":
            result = newton(
                *args, jnp.asarray(r), jnp.asarray(lam), jnp.asarray(mu), *settings, use_l1=use_l1,
                subsample=_subsample(Xp.shape[0], problem.width), exact_final=want_hessian, **statics,
            )
        else:
            result = lbfgs(*args, jnp.asarray(r), jnp.asarray(mu), *settings, **statics)
        theta = result.params
        losses = np.asarray(result.row_loss)[:n]
        hessian = None
        if want_hessian:
            if result.hessian is not None and bool(result.exact_hessian):
                H = np.asarray(result.hessian)  # the last Newton step's: at θ, unpenalised
            else:
                H = np.asarray(hessian_at(args[0], args[2], args[3], theta, **statics))
            keep = np.zeros((M, q_pad), dtype=bool)
            keep[:, :q] = True
            keep = keep.reshape(-1)
            hessian = H[np.ix_(keep, keep)]
        Theta = np.asarray(theta).reshape(M, q_pad)[:, :q].copy()
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
