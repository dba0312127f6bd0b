"""The default reverse fit of a small Gaussian family as ONE compiled program (``auto_program``).

The start (a Laplace approximation at the mode), L-BFGS on whitened fixed draws, the refinement on
fresh draws, and log p̃ and log q at the diagnostic draws: see :func:`auto_program`. The solve runs
in whitened coordinates u = S⁻¹(x − x̂), where the Laplace start is N(0, I).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._objectives import log_density_values
from ._vi_natural import REFINE_BELOW

__all__ = ["auto_program", "normals_needed"]


def _counts(dim: int, num: int, refine: int, num_elbo: int) -> tuple[int, ...]:
    return dim, (num + 1) // 2 * dim, (refine + 1) // 2 * dim, num_elbo * dim


def normals_needed(family: Any, num: int, refine: int, num_elbo: int) -> int:
    """How many standard normals :func:`auto_program` takes."""
    return sum(_counts(family.dim, num, refine, num_elbo))


def _whitened(half: jax.Array, num: int) -> jax.Array:
    """``num`` antithetic draws from the normal ``half``, whitened to sample second moment I when
    ``num ≥ 2d + 2`` (as ``families.base_normals(..., standardize=True)``, from given normals)."""
    eps = jnp.concatenate([half, -half])[:num]
    if num < 2 * half.shape[1] + 2:
        return eps
    if num % 2:
        eps = eps - jnp.mean(eps, axis=0)
    chol = jnp.linalg.cholesky(eps.T @ eps / num)
    return jax.scipy.linalg.solve_triangular(chol, eps.T, lower=True).T


def _weighted_elbo(statics: tuple, params: Any, noise: jax.Array, weights: jax.Array, white: tuple, consts: Any,
                   target: Any):
    """−Σ_s w_s log p̃(x̂ + S T_θ(ε_s)) − H(q_θ) − log|S| on fixed base draws ε, rows of weight 0 left
    out (padding): the negative ELBO of q = x̂ + S q_θ, θ in the whitened coordinates ``white = (x̂, S)``."""
    family, traced = statics
    log_density = None if traced is None else traced.bind(consts)
    u, entropy = _draws_and_entropy(family, params, noise)
    x = _unwhiten(white, u)
    values = log_density_values(log_density, target, x)
    return -jnp.dot(weights, jnp.where(weights > 0, values, 0.0)) - entropy - _log_det(white)


def _unwhiten(white: tuple, u: jax.Array) -> jax.Array:
    """x = x̂ + S u for rows u (S lower triangular, or a vector of scales)."""
    shift, spread = white
    return shift + (u @ spread.T if spread.ndim == 2 else u * spread)


def _log_det(white: tuple) -> jax.Array:
    spread = white[1]
    return jnp.sum(jnp.log(jnp.abs(jnp.diagonal(spread) if spread.ndim == 2 else spread)))


def _whitened_params(family: Any, white: tuple, params: Any) -> Any:
    """θ of q = x̂ + S q_θ in the original coordinates (a Gaussian family: exact)."""
    shift, spread = white
    values = family.constrained(params)
    loc = _unwhiten(white, values["loc"][None])[0]
    if family.covariance == "full":
        return family.from_constrained({"loc": loc, "scale_tril": spread @ values["scale_tril"]})
    return family.from_constrained({"loc": loc, "scale": spread * values["scale"]})


_EMBED_MAX = 2**17  # entries of the 0/1 embedding matrix below which it is used (d ≤ 22)


def _draws_and_entropy(family: Any, params: Any, noise: jax.Array) -> tuple[jax.Array, jax.Array]:
    """x = μ + L ε and H(q). For a full covariance L is built from its vector (the strictly lower
    part row by row, then log diag L, as the family's ``_LowerCholesky``) by a product with a 0/1
    embedding matrix: the same L as the family's scatter, but a dot and its transpose compile in a
    fraction of a scatter's and its gradient's time. Past d = 22 the matrix (d⁴/2 constants: 400 MB
    at d = 100) costs more to compile than it saves, and L is gathered from fixed indices."""
    if family.covariance != "full":
        x = family.draws(params, noise, noise.shape[0])
        return x, family.entropy(params, x)
    n, vec = family.dim, params["tril"]
    rows, cols = np.tril_indices(n, -1)
    log_diag = vec[rows.size:]
    if n * n * rows.size <= _EMBED_MAX:
        embed = np.zeros((n * n, rows.size), dtype=vec.dtype)
        embed[rows * n + cols, np.arange(rows.size)] = 1.0
        strict = (embed @ vec[: rows.size]).reshape(n, n)
    else:  # the embedding (n² × n(n−1)/2 constants) would dwarf the program: a gather from fixed indices
        index = np.full((n, n), rows.size, dtype=np.int32)  # the upper triangle reads the appended 0
        index[rows, cols] = np.arange(rows.size, dtype=np.int32)
        strict = jnp.concatenate([vec[: rows.size], jnp.zeros((1,), vec.dtype)])[index]
    tril = strict + np.eye(n, dtype=vec.dtype) * jnp.exp(log_diag)[None, :]
    entropy = 0.5 * n * (1.0 + math.log(2 * math.pi)) + jnp.sum(log_diag)
    return params["loc"] + noise @ tril.T, entropy


@functools.partial(jax.jit, static_argnames=("family", "traced", "num", "refine", "num_elbo", "steps", "capacity",
                                             "report"))
def auto_program(consts, target, normals, init_scale, gtol, max_iter, *, family, traced, num, refine, num_elbo, steps,
                 capacity, report=False):
    """``method="auto"`` for a Gaussian family with few parameters, start to diagnostics, as ONE program.

    The start (:func:`start_point`), L-BFGS on ``num`` whitened fixed draws, the refinement on
    ``refine`` fresh draws (to 1e-2 · gtol) when the first solve converged within ``REFINE_BELOW`` evaluations, and
    log p̃ and log q at ``num_elbo`` draws from the fit (for PSIS diagnostics on the host). Both solves run through one compiled
    L-BFGS loop (a two-step scan; the smaller draw set padded with zero weight), and the log
    density enters as a :class:`~kullback.fit._traced.TracedLogDensity` with its constants
    ``consts`` traced, so a new closure of the same kind reuses the program. ``None`` as ``traced``:
    the target is the distribution ``target``.
    """
    from ._loop import lbfgs_backtracking
    from ._reverse_start import SHRINK, laplace_start

    log_density = None if traced is None else traced.bind(consts)
    dim, size = family.dim, max(num, refine)
    # All randomness is one vector of standard normals drawn on the host (:func:`normals_needed`
    # of them; a generator inside would compile its own copy, ~0.4 s): the start, both draw sets
    # (antithetic halves) and the diagnostic draws are slices of it.
    counts = _counts(dim, num, refine, num_elbo)
    parts = jnp.split(normals, np.cumsum(counts)[:-1].tolist())
    x0, log_p0, shift, spread, unused = laplace_start(family, log_density, steps, target, init_scale, init_scale * parts[0])
    if family.covariance == "spherical":
        spread = jnp.full(dim, jnp.exp(jnp.mean(jnp.log(spread))))
    white = (shift, spread)  # the solve runs in u = S⁻¹(x − x̂): the Laplace start is N(0, I) there

    def padded(half, count):
        noise = _whitened(half.reshape(-1, dim), count)
        extra = jnp.broadcast_to(noise[:1], (size - count,) + noise.shape[1:])  # copies of a real draw
        weights = jnp.concatenate([jnp.full(count, 1.0 / count), jnp.zeros(size - count)]).astype(noise.dtype)
        return jnp.concatenate([noise, extra]), weights

    stages = jax.tree.map(lambda a, b: jnp.stack([a, b]), padded(parts[1], num), padded(parts[2], refine))
    # The widest start spread c·I (c in SHRINK) at which log p̃ is finite at every first-stage draw:
    # a Laplace spread can reach where the target is not defined (a GP's kernel at a huge scale).
    shrink = jnp.asarray(SHRINK, dtype=normals.dtype)
    trial = _unwhiten(white, (shrink[:, None, None] * stages[0][0][None]).reshape(-1, dim))
    finite = jnp.all(jnp.isfinite(log_density_values(log_density, target, trial)).reshape(len(SHRINK), -1), axis=1)
    width = jnp.where(jnp.any(finite), shrink[jnp.argmax(finite)], shrink[-1])
    params = family.init_at(jnp.zeros(dim, dtype=normals.dtype), width)

    def stage(carry, xs):
        params, go = carry
        *draws, tol = xs
        out = lbfgs_backtracking(_weighted_elbo, (family, traced), params, (*draws, white, consts, target), tol,
                                 jnp.where(go, max_iter, 0), capacity=capacity, report=report)
        new, _, _, _, _, conv, _, evals = out
        params = jax.tree.map(lambda a, b: jnp.where(go, a, b), new, params)
        return (params, go & conv & (evals * num <= REFINE_BELOW)), out[1:] + (go,)

    # The refinement polishes to 1e-2 · gtol (the callers test convergence at gtol): its L-BFGS
    # iterations are cheap, and they take the optimisation error well below the Monte Carlo error.
    tols = jnp.stack([jnp.asarray(gtol), 1e-2 * jnp.asarray(gtol)])
    (params, _), outs = jax.lax.scan(stage, (params, jnp.asarray(True)), (*stages, tols))
    params = _whitened_params(family, white, params)
    q = family.distribution(params)
    x = family.draws(params, parts[3].reshape(num_elbo, dim), num_elbo)
    log_ratio = (log_density_values(log_density, target, x), q.log_prob(x))  # PSIS on the host: no compile
    return dict(x0=x0, log_p0=log_p0, params=params, stages=outs, log_ratio=log_ratio, q=q,
                values=family.constrained(params), width=width, unused=unused,
                start_scales=width * (jnp.sqrt(jnp.sum(spread**2, axis=1)) if spread.ndim == 2 else spread))
