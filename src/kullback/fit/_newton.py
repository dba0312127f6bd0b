"""A damped Newton solver for small parameter vectors on data: one compiled block kernel, any n.

The objective is f(θ) = −Σ_i w_i ℓ(θ, x_i) (weights summing to 1). Its value, gradient and
Hessian are sums over rows, so one compiled kernel computes them for a block of BLOCK_ROWS rows
(see :func:`._forward_fast.pass_derivatives`; it loops only over the part of the block that holds
data, a traced count), and a pass over n rows calls it on ⌈n / BLOCK_ROWS⌉ blocks (the last
padded with weight-0 copies of a real row) and adds the results on the host in float64. The kernel's shapes depend on the family and the row shape only: a fit on a new number
of rows compiles nothing, and every fit of a family shares one program.

Each iteration: the direction d = −V |Λ|₊⁻¹ Vᵀ g from the symmetric eigendecomposition H = V Λ Vᵀ
with |λ| floored at 1e-8·max|λ| (a descent direction also where H is indefinite, far from the
optimum); then backtracking until the Armijo condition f(θ + t d) ≤ f(θ) + 10⁻⁴ t gᵀd holds (a NaN
or inf value fails it, so a step never leaves the region where the likelihood is finite). Every
evaluation returns f, ∇f and ∇²f together, so an accepted trial point's derivatives are at hand
for the next iteration: near the optimum an iteration costs exactly one pass. The loop itself
runs on the host (a few microseconds of NumPy per iteration on a handful of parameters).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ._progress import report
from ._forward_fast import pass_derivatives
from ._loop import Solution

__all__ = ["newton_solve", "NEWTON_MAX_PARAMS", "BLOCK_ROWS", "Blocks", "ParamSpec"]

NEWTON_MAX_PARAMS = 64  # above this many unconstrained parameters, L-BFGS is cheaper
BLOCK_ROWS = 1 << 18  # rows per kernel call; inside, a loop over the 1 024-row blocks that hold data
_MAX_HALVINGS = 50
_FLAT = 1e-13  # gᵀH⁻¹g below this (relative to max(1, |f|)): at the optimum to rounding


class ParamSpec:
    """The structure of a parameter pytree (hashable): flat host vectors ↔ pytrees inside jit."""

    def __init__(self, params: Any) -> None:
        leaves, self.treedef = jax.tree.flatten(params)
        self.shapes = tuple(tuple(np.shape(leaf)) for leaf in leaves)
        self.sizes = tuple(int(np.prod(s, dtype=int)) for s in self.shapes)

    def ravel(self, params: Any) -> np.ndarray:
        """The flat host vector of ``params`` (leaves in ``jax.tree`` order, as ``ravel_pytree``)."""
        leaves = jax.tree.leaves(params)
        return np.concatenate([np.ravel(np.asarray(leaf, dtype=float)) for leaf in leaves]) if leaves else np.zeros(0)

    def unravel(self, flat: Any) -> Any:
        """The pytree of a flat vector (jnp inside jit, NumPy on the host)."""
        xp = jnp if isinstance(flat, jax.Array) else np
        pieces, start = [], 0
        for shape, size in zip(self.shapes, self.sizes):
            pieces.append(xp.reshape(flat[start : start + size], shape))
            start += size
        return jax.tree.unflatten(self.treedef, pieces)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSpec) and (self.treedef, self.shapes) == (other.treedef, other.shapes)

    def __hash__(self) -> int:
        return hash((ParamSpec, self.treedef, self.shapes))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _block_derivatives(row_log_density, spec, x, rows, weights, count):
    """f, ∇f, ∇²f of −Σ_i w_i ℓ(θ, x_i) over the first ``count`` rows of a block (the rest have
    weight 0; the compiled kernel, traced ``count``)."""
    return pass_derivatives(row_log_density, spec.unravel, x, ((rows, weights),), 0, count)


class Blocks:
    """Rows and weights cut into blocks of BLOCK_ROWS rows on the device, the last one padded
    with weight-0 copies of the first row (finite, inside the support: values and gradients stay
    finite). Built once per fit; every pass reuses them."""

    def __init__(self, data: Any, weights: Any) -> None:
        host, w = np.asarray(data), np.asarray(weights)
        n = host.shape[0]
        count = max(1, -(-n // BLOCK_ROWS))
        pad = count * BLOCK_ROWS - n
        if pad:
            host = np.concatenate([host, np.broadcast_to(host[:1], (pad, *host.shape[1:]))])
            w = np.concatenate([w, np.zeros(pad, w.dtype)])
        self.num_rows = n
        self.blocks = [
            (jax.device_put(host[i * BLOCK_ROWS : (i + 1) * BLOCK_ROWS]), jax.device_put(w[i * BLOCK_ROWS : (i + 1) * BLOCK_ROWS]),
             np.int32(min(BLOCK_ROWS, n - i * BLOCK_ROWS)))
            for i in range(count)
        ]

    def derivatives(self, row_log_density: Any, spec: ParamSpec, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """f, ∇f, ∇²f at the flat parameters x: one pass (the blocks run while the host adds)."""
        xs = jnp.asarray(x)
        outs = [_block_derivatives(row_log_density, spec, xs, rows, w, used) for rows, w, used in self.blocks]
        value, grad, hess = 0.0, 0.0, 0.0
        for f, g, h in outs:
            value, grad, hess = value + float(f), grad + np.asarray(g, float), hess + np.asarray(h, float)
        return value, np.asarray(grad), np.asarray(hess)


def _eigh(hess: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    if not np.all(np.isfinite(hess)):
        return None
    return np.linalg.eigh(0.5 * (hess + hess.T))


def _decrement(grad: np.ndarray, hess: np.ndarray) -> float:
    """The Newton decrement gᵀH⁻¹g (≈ 2 × the decrease still to gain); inf unless H ≻ 0."""
    eig = _eigh(hess)
    if eig is None or not np.all(eig[0] > 0):
        return float("inf")
    lam, vec = eig
    return float(np.sum((vec.T @ grad) ** 2 / lam))


def _direction(grad: np.ndarray, hess: np.ndarray) -> np.ndarray:
    eig = _eigh(hess)
    if eig is None:
        return -grad
    lam, vec = eig
    mag = np.abs(lam)
    mag = np.maximum(mag, 1e-8 * np.max(mag, initial=0.0) + 1e-300)
    return -vec @ ((vec.T @ grad) / mag)


def _scale(value: float) -> float:
    return max(1.0, abs(value))


def _at_optimum(value: float, grad: np.ndarray, hess: np.ndarray, gtol: float) -> bool:
    return bool(np.isfinite(value)) and (
        float(np.linalg.norm(grad)) <= gtol * _scale(value) or _decrement(grad, hess) <= _FLAT * _scale(value)
    )


def _newton(evaluate: Callable, x: np.ndarray, *, max_iter: int, gtol: float, dtol: float, first=None):
    """Damped Newton from x; stops at ‖g‖ ≤ gtol·max(1, |f|), gᵀH⁻¹g ≤ dtol·max(1, |f|), a
    non-finite value, max_iter iterations or a stuck line search. Returns (x, f, g, H, history,
    iterations, stuck)."""
    value, grad, hess = evaluate(x) if first is None else first
    history, it, stuck = [value], 0, False
    while np.isfinite(value) and it < max_iter:
        if np.linalg.norm(grad) <= gtol * _scale(value) or _decrement(grad, hess) <= dtol * _scale(value):
            break
        d, t = _direction(grad, hess), 1.0
        slope = float(grad @ d)
        for halvings in range(_MAX_HALVINGS + 1):
            trial = evaluate(x + t * d)
            if trial[0] <= value + 1e-4 * t * slope:  # NaN fails
                break
            if _decrement(grad, hess) <= _FLAT * _scale(value) or halvings == _MAX_HALVINGS:
                stuck = True
                break
            t /= 2
        if stuck:
            break
        x = x + t * d
        value, grad, hess = trial
        it += 1
        history.append(value)
        report(it, value)
    return x, value, grad, hess, history, it, stuck


def newton_solve(
    row_log_density: Any,
    params: Any,
    data: Any,
    weights: Any,
    *,
    max_iter: int = 100,
    gtol: float | None = None,
    dtol: float = 0.0,
    sub: tuple | None = None,
) -> tuple[Solution, int]:
    """Minimise f(θ) = −Σ_i w_i ℓ(θ, x_i) by damped Newton with backtracking.

    Converged when ‖∇f‖₂ ≤ gtol · max(1, |f|) (default 1e-11 in float64, 1e-4 in float32), or,
    once a step no longer lowers f (rounding noise in a sum over many rows can keep the gradient
    above gtol), when the Hessian is positive definite and the Newton decrement gᵀH⁻¹g, the
    decrease still to gain, is ≤ 1e-13 · max(1, |f|).

    ``sub`` = (rows, weights), a subsample of the data: Newton on it first (to the optimum), then
    on all rows from there, stopping also as soon as gᵀH⁻¹g ≤ ``dtol`` · max(1, |f|) (a polish
    from a close start: no pass over the data is spent on a gain below that). If the subsample
    stage fails, or the polish starts at a non-finite value, all rows are fitted from ``params``.
    Returns the solution and the subsample stage's iterations (−1 when there was none, or when it
    failed).

    ``row_log_density`` (hashable, a :class:`~kullback.fit._forward_fast.FastRowLogDensity`) gives
    ℓ; f, ∇f and ∇²f come from one pass over the rows in blocks of BLOCK_ROWS.
    """
    if gtol is None:
        gtol = 1e-11 if jax.config.read("jax_enable_x64") else 1e-4
    if int(max_iter) < 0:
        raise ValueError(f"Expected max_iter to be a non-negative integer; got {max_iter}.")
    max_iter, gtol = int(max_iter), float(gtol)
    spec = ParamSpec(params)
    start = spec.ravel(params)
    full = Blocks(data, weights)
    on_all = functools.partial(full.derivatives, row_log_density, spec)
    sub_it, history = -1, []
    x, first, tol = start, None, 0.0
    if sub is not None and max_iter > 0:
        on_sub = functools.partial(Blocks(*sub).derivatives, row_log_density, spec)
        xs, value, grad, hess, _, it, _ = _newton(on_sub, start, max_iter=max_iter, gtol=gtol, dtol=0.0)
        if _at_optimum(value, grad, hess, gtol):
            first = on_all(xs)
            if np.isfinite(first[0]):
                x, tol, sub_it = xs, float(dtol), it
            else:
                first = None
    x, value, grad, hess, hist, it, stuck = _newton(on_all, x, max_iter=max_iter, gtol=gtol, dtol=tol, first=first)
    history.extend(hist)
    converged = _at_optimum(value, grad, hess, gtol)
    return Solution(
        params=spec.unravel(np.asarray(x)),
        value=float(value),
        history=np.asarray(history, dtype=float),
        num_iterations=it,
        grad_norm=float(np.linalg.norm(grad)),
        converged=converged,
        stalled=stuck and not converged,
        hessian=hess,
    ), sub_it


def start_value(row_log_density: Any, params: Any, rows: Any, weights: Any) -> float:
    """f at ``params`` on the given rows (one kernel pass; the fit's start check)."""
    spec = ParamSpec(params)
    return Blocks(rows, weights).derivatives(row_log_density, spec, spec.ravel(params))[0]
