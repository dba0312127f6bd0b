"""L-BFGS for wide data: the smooth softmax objective without ever forming the Hessian.

Each iteration costs a read of X (logits, gradient and objective in one block pass) instead of
Newton's n·(Mq)² Hessian, so it wins when M·q is large. scipy's L-BFGS-B (memory 20, its
Moré–Thuente line search for the strong Wolfe conditions, no bounds) drives the iterations
on the host, the blocks of :mod:`kullback.glm._blocks` evaluate f and ∇f: nothing compiled
depends on the number of rows or on the settings. It runs in the scaled parameters u = s ⊙ θ
(s_j the root mean square of parameter j's column), where X's columns all have unit root mean
square: its iterates and its test max_j |g_j| / s_j ≤ tol do not depend on the units of X.
It stops at that test, when the
objective's decrease reaches rounding level (converged: nothing left to gain) or the line
search finds no decrease (a failure unless at that level), or at ``max_iter`` iterations.
Only for the smooth objective (no L1: see :mod:`kullback.glm._newton`).
"""

from __future__ import annotations

import numpy as np

from ._blocks import Blocks
from ._newton import CONVERGED, LINE_SEARCH_FAILED, MAX_ITER, SolverResult, gradient, penalty

__all__ = ["lbfgs"]

_MEMORY = 20
_EPS = np.finfo(np.float64).eps


def lbfgs(
    data: Blocks, r: np.ndarray, mu: float, theta0: np.ndarray, tol: float, max_iter: int, *, intercept: bool,
    scale: np.ndarray | float = 1.0,
) -> SolverResult:
    """Minimise the weighted softmax cross-entropy plus ridge by L-BFGS (same arguments as
    :func:`kullback.glm._newton.newton`, without the L1 weights and the subsample)."""
    M = data.num_free
    best: dict = {}
    trace: list[float] = []

    scale = np.broadcast_to(np.asarray(scale, dtype=float), np.shape(theta0))

    def fun(u):
        theta = u / scale
        eta, _, RtX, R_sum, loss, _ = data.step(data.zero_eta, theta, hessian=False)
        f = loss + penalty(r, mu, theta, M, intercept)
        g = gradient(RtX, R_sum, r, mu, theta, intercept) / scale  # ∂f/∂u
        if not best or f <= best["f"]:
            best.update(f=f, g=g, theta=theta.copy(), eta=eta)
        return f, g

    from scipy.optimize import minimize  # on first use: 0.1 s to import

    res = minimize(
        fun, np.asarray(theta0, dtype=float) * scale, jac=True, method="L-BFGS-B",
        callback=lambda xk: trace.append(best["f"]),
        options=dict(maxcor=_MEMORY, gtol=float(tol), ftol=100 * _EPS, maxiter=int(max_iter), maxls=40,
                     maxfun=max(15000, 50 * int(max_iter))),
    )
    f, g = best["f"], best["g"]
    at_noise_floor = len(trace) >= 2 and abs(trace[-2] - trace[-1]) <= 100 * _EPS * (1 + abs(f))
    if np.max(np.abs(g)) <= tol:
        status = CONVERGED
    elif res.status == 1:
        status = MAX_ITER
    elif res.status == 0 or at_noise_floor:  # 0 without the gradient test: the decrease hit rounding level
        status = CONVERGED
    else:
        status = LINE_SEARCH_FAILED
    return SolverResult(
        params=best["theta"], objective=f, violation=float(np.max(np.abs(g))), num_steps=int(res.nit),
        status=status, eta=best["eta"],
    )
