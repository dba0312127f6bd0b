"""The start of a reverse fit: a finite point, the mode near it, and the curvature there.

1. A finite start: the key's random point x₀, else 0.1·x₀, else 0 (the first where log p̃ is finite).
2. A short descent on −log p̃ (``init_steps``), then up to ``_NEWTON`` Newton steps with the full
   Hessian (d ≤ 200; each step halved until log p̃ rises, none taken where −∇² log p̃ is not
   positive definite): on a badly scaled target the descent alone stops far from the mode (a
   regression whose coefficients differ by 1e3 in scale has a condition number of 1e12).
3. The Laplace curvature H = −∇² log p̃ there gives the start's spread: S with S Sᵀ = H⁻¹ for a
   full covariance, 1/√H_ii for a diagonal one (the mean-field optimum on a Gaussian target); where
   H is not positive definite, 1/√H_ii on the coordinates where that is positive, 1 elsewhere.

The one-program fit (``_vi_auto.auto_program``) solves in the whitened coordinates
u = S⁻¹(x − x̂), where the start is N(0, I) and every badly scaled problem looks like a unit one.
A random start avoids the saddle at the symmetry point of a symmetric multimodal p, where the
ELBO gradient is zero.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import FitError
from . import _compiled as C
from ._loop import descend_steps
from ._objectives import log_density_values, neg_log_density
from ._options import ReverseOptions
from ._targets import Target

__all__ = ["start_point", "laplace_start", "start_evals", "starts", "host_normals", "SHRINK"]

_NEWTON = 4  # Newton steps after the descent
_MAX_HESSIAN_DIM = 200
SHRINK = (1.0, 0.5, 0.25, 0.1, 0.03, 0.01)  # spreads tried at the start until log p̃ is finite at every draw


def _hessian(log_density: Callable | None, x: jax.Array, p: Any, event: tuple) -> tuple[jax.Array, jax.Array, jax.Array]:
    """log p̃, its gradient and its Hessian at a flat point (forward over reverse)."""
    f = lambda v: log_density_values(log_density, p, v.reshape(event)[None])[0]  # noqa: E731
    value, grad = jax.value_and_grad(f)(x)
    return value, grad, jax.hessian(f)(x)


def _newton(log_density: Callable | None, x: jax.Array, p: Any, event: tuple) -> jax.Array:
    """``_NEWTON`` damped Newton steps uphill on log p̃ (a step where −∇² is not positive definite is skipped)."""
    f = lambda v: log_density_values(log_density, p, v.reshape(event)[None])[0]  # noqa: E731
    fractions = jnp.asarray([1.0, 0.5, 0.25, 0.125, 1.0 / 16.0], dtype=x.dtype)

    def step(x, _):
        value, grad, hess = _hessian(log_density, x, p, event)
        chol = jnp.linalg.cholesky(-hess)
        good = jnp.all(jnp.isfinite(chol)) & jnp.all(jnp.isfinite(grad)) & jnp.isfinite(value)
        direction = jax.scipy.linalg.cho_solve((jnp.where(good, chol, jnp.eye(x.shape[0], dtype=x.dtype)), True),
                                               jnp.where(good, grad, 0.0))
        trial = x[None, :] + fractions[:, None] * direction[None, :]
        values = jax.vmap(f)(trial)
        values = jnp.where(jnp.isfinite(values), values, -jnp.inf)
        best = jnp.argmax(values)
        move = good & (values[best] > value)
        return jnp.where(move, trial[best], x), None

    x, _ = jax.lax.scan(step, x, None, length=_NEWTON)
    return x


def _full_gaussian(family: Any) -> bool:
    from ..families import Gaussian

    return type(family) is Gaussian and family.covariance == "full"


def laplace_start(family, log_density, steps, p, init_scale, x0):
    """The finite start, the mode near it and the spread there (traceable).

    Returns ``(x0, log p̃(x0), x̂, S, unused)``: S is lower triangular with S Sᵀ = H⁻¹ for a full
    covariance family, a vector of per-coordinate scales otherwise; ``unused`` marks coordinates
    along which log p̃ has neither slope nor curvature at x̂ (an improper target's flat directions).
    """
    event = tuple(family.event_shape)
    dim = int(np.prod(event, dtype=int))
    flat0 = x0.reshape(-1)
    candidates = jnp.stack([flat0, 0.1 * flat0, jnp.zeros_like(flat0)])
    values = log_density_values(log_density, p, candidates.reshape((3,) + event))
    first = jnp.argmax(jnp.isfinite(values))
    x0, log_p0 = candidates[first].reshape(event), values[first]
    x = x0
    if steps > 0:
        moved, value = descend_steps(neg_log_density, (log_density,), x0, (p,), num_steps=steps)
        x = jnp.where(jnp.isfinite(value) & jnp.all(jnp.isfinite(moved)), moved, x0)
    full = _full_gaussian(family)
    if dim > _MAX_HESSIAN_DIM:
        scale = jnp.ones(dim, dtype=x.dtype)
        return x0, log_p0, x, jnp.diag(scale) if full else scale, jnp.zeros(dim, dtype=bool)
    flat = _newton(log_density, x.reshape(-1), p, event)
    _, grad, hess = _hessian(log_density, flat, p, event)
    unused = (grad == 0) & jnp.all(hess == 0, axis=1)  # log p̃ has neither slope nor curvature along these
    curv = -jnp.diagonal(hess)
    ok = jnp.isfinite(curv) & (curv > 0)
    diag = jnp.where(ok, jnp.clip(1.0 / jnp.sqrt(jnp.where(ok, curv, 1.0)), 1e-8, 1e8), 1.0)
    x = flat.reshape(event)
    if not full:
        return x0, log_p0, x, diag, unused
    eye = jnp.eye(dim, dtype=flat.dtype)
    chol = jnp.linalg.cholesky(-hess)
    cov = jax.scipy.linalg.cho_solve((jnp.where(jnp.all(jnp.isfinite(chol)), chol, eye), True), eye)
    spread = jnp.linalg.cholesky(0.5 * (cov + cov.T))
    good = jnp.all(jnp.isfinite(chol)) & jnp.all(jnp.isfinite(spread))
    return x0, log_p0, x, jnp.where(good, spread, jnp.diag(diag)), unused


def start_point(family, log_density, steps, key, p, init_scale, x0=None):
    """Initial θ at :func:`laplace_start`'s mode and spread (``x0``, else drawn from ``key``).
    Returns ``(x0, log p̃(x0), θ)`` (traceable; :func:`starts` compiles it)."""
    event = tuple(family.event_shape)
    x0 = init_scale * jax.random.normal(key, event) if x0 is None else x0.reshape(event)
    x0, log_p0, x, spread, _ = laplace_start(family, log_density, steps, p, init_scale, x0)
    if spread.ndim == 2:
        return x0, log_p0, family.from_constrained({"loc": x, "scale_tril": spread})
    return x0, log_p0, family.init_at(x, spread.reshape(event))


_start = jax.jit(start_point, static_argnums=(0, 1, 2))


def start_evals(family, options: ReverseOptions) -> int:
    """Gradient evaluations of log p̃ spent by one start: the descent's steps (and its first point),
    the Newton steps' Hessians (d each, d ≤ 200) and their line searches, plus Pathfinder's path."""
    steps = options.init_steps
    dim = int(np.prod(family.event_shape, dtype=int))
    path = 31 if options.start == "pathfinder" else 0
    newton = (_NEWTON + 1) * (dim + 1) + 5 * _NEWTON if dim <= _MAX_HESSIAN_DIM else 0
    return 3 + (steps + 1 if steps > 0 else 0) + newton + path


def starts(family, tgt: Target, key, num_starts: int, options: ReverseOptions):
    """Initial θ of ``num_starts`` starts (vmapped), Pathfinder's or ``init=``'s where asked."""
    steps, scale = options.init_steps, float(options.init_scale)
    keys = jax.random.split(key, num_starts)
    x0, log_p0, params = jax.vmap(lambda k: _start(family, tgt.log_density, steps, k, tgt.dist, scale))(keys)
    bad = ~np.isfinite(np.asarray(log_p0))
    if bad.any():
        i = int(np.argmax(bad))
        raise FitError(not_finite_at_start(log_p0[i], x0[i]))
    if options.start == "pathfinder":
        from ._pathfinder import pathfinder_init
        params = jax.vmap(lambda prm, k: pathfinder_init(family, tgt.log_density, prm, k, tgt.dist))(params, keys)
    if options.init:
        values = {k: np.asarray(v) for k, v in C.constrained(family, jax.tree.map(lambda a: a[0], params)).items()}
        unknown = sorted(set(options.init) - set(values))
        if unknown:
            raise ValueError(f"Expected init to name parameters of {family.name} {tuple(values)}; got {unknown}.")
        one = C.from_constrained(family, {**values, **options.init})
        params = jax.tree.map(lambda a: jnp.broadcast_to(a, (num_starts,) + a.shape), one)
    return params


def not_finite_at_start(log_p0, x0) -> str:
    return (f"log_density is {float(log_p0)} at the starting point x = {np.asarray(x0).round(4).tolist()}, at a tenth "
            "of it and at 0. Check that it is finite on all of R^d: no log of a negative number, parameters with "
            "constraints transformed to unconstrained space (pass a numpyro model or distribution), no division by "
            "zero, no index past the dimension; or give a finite start with init={'loc': ...}.")


def host_normals(key, num: int) -> np.ndarray:
    """``num`` standard normals from NumPy's PCG64 seeded by the key's bits: the randomness of the
    one-program fits, drawn on the host (a JAX generator inside a program compiles its own copy,
    ~0.4 s), reproducible from the key on every platform."""
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    seed = np.asarray(data, dtype=np.uint32).ravel().tolist()
    return np.random.default_rng(seed).standard_normal(num).astype(jnp.result_type(float))
