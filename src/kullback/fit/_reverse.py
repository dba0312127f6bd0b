"""Reverse fits: argmin_θ KL(q_θ‖p) = argmax_θ ELBO(θ) = E_q[log p̃(x)] + H(q_θ).

Default ``method="fixed_draws"``: the expectation is a sample average over one fixed set of
standardised base draws ε (x = T_θ(ε), reparameterised), minimised by L-BFGS; deterministic, so a
seed fixes the result and the gradient-norm test is a real convergence test. ``method="adam"``:
fresh draws every step (stochastic reparameterisation gradients), the loop in one ``lax.scan``.

Start: a key-dependent random point, moved uphill on log p̃ by a short L-BFGS mode search, with
spread 1/√(−∂²log p̃/∂x_i²) there (1 where that is not positive). A random start avoids the saddle
at the symmetry point of a symmetric multimodal p, where the ELBO gradient is zero.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions import constraints

from .._errors import FitError
from ..families import AbstractFamily, NumpyroFamily
from ..measure import Estimate
from . import _compiled as C
from ._loop import _descend, adam_solve, describe, lbfgs_solve
from ._objectives import log_density_values, neg_elbo, neg_elbo_fresh, neg_log_density
from ._result import FitResult

__all__ = ["fit_reverse", "REVERSE_OPTIONS", "METHODS"]

METHODS = ("fixed_draws", "adam")
REVERSE_OPTIONS = (
    "method", "num_draws", "max_iter", "gtol", "num_steps", "learning_rate", "init",
    "init_scale", "init_steps", "num_elbo_draws", "dim",
)
_neg_elbo = jax.jit(neg_elbo, static_argnums=0)


def _real_support(p: dist.Distribution) -> bool:
    c = p.support
    while isinstance(c, constraints.independent):
        c = c.base_constraint
    return type(c) is type(constraints.real)


def _target(target: Any, family: AbstractFamily, dim: int | None) -> tuple[Callable | None, Any, tuple]:
    """(static log density or None, dynamic target distribution or None, event shape of x)."""
    if isinstance(target, dist.Distribution):
        if target.batch_shape:
            raise ValueError(f"Expected target to be a single distribution (batch shape ()); got {target.batch_shape}.")
        if not _real_support(target):
            raise ValueError(
                f"Expected target to have real support (all of R^d) for a reverse fit; "
                f"{type(target).__name__} has support {target.support}."
            )
        return None, target, tuple(target.event_shape)
    if callable(target):
        if isinstance(family, NumpyroFamily):
            event = () if dim is None else (int(dim),)
        else:
            event = tuple(family.event_shape)
        return target, None, event
    raise TypeError(
        "Expected target of a reverse fit to be a log density (a JAX callable x -> scalar) or a numpyro "
        f"distribution; got {type(target).__name__}. Data are a forward-fit target: direction='forward'."
    )


def _check_log_density(log_density: Callable | None, p: Any, event: tuple) -> None:
    """Shape check by tracing (no compile): log_density must map one x to a scalar."""
    if log_density is None:
        return
    x = jax.ShapeDtypeStruct(event, jnp.result_type(float))
    try:
        out = jax.eval_shape(log_density, x)
    except Exception as err:
        raise FitError(f"log_density raised {type(err).__name__} at x of shape {event}: {err}") from err
    if getattr(out, "shape", None) != ():
        raise FitError(
            f"Expected log_density to return a scalar for x of shape {event}; got shape "
            f"{getattr(out, 'shape', type(out).__name__)}. Check that it sums over coordinates "
            "(e.g. jnp.sum(...)) and takes one point, not a batch."
        )


def _curvature(log_density: Callable | None, x: jax.Array, p: Any) -> jax.Array:
    flat = x.reshape(-1)
    f = lambda v: log_density_values(log_density, p, v.reshape(x.shape)[None])[0]  # noqa: E731
    return -jnp.diagonal(jax.hessian(f)(flat)).reshape(x.shape)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _prepare(family, log_density, steps, num, standardize, key, p, init_scale):
    """The start in one program: random point, short descent on −log p̃, spread from the
    curvature there, initial parameters, base draws and the objective at the start."""
    event = tuple(family.event_shape)
    k_start, k_draws = jax.random.split(key)
    x0 = init_scale * jax.random.normal(k_start, event)
    log_p0 = log_density_values(log_density, p, x0[None])[0]
    x = x0
    if steps > 0:
        moved, value = _descend(neg_log_density, (log_density,), x0, (p,), num_steps=steps)
        x = jnp.where(jnp.isfinite(value) & jnp.all(jnp.isfinite(moved)), moved, x0)
    scale = jnp.ones(event)
    if int(np.prod(event, dtype=int)) <= 200:
        curv = _curvature(log_density, x, p)
        ok = jnp.isfinite(curv) & (curv > 0)
        scale = jnp.where(ok, jnp.clip(1.0 / jnp.sqrt(jnp.where(ok, curv, 1.0)), 1e-4, 1e4), 1.0)
    params = family.init_at(x, scale)
    noise = family.base_noise(k_draws, num, standardize=standardize)
    start = neg_elbo((family, log_density, num), params, noise, p) if standardize else jnp.nan
    return x0, log_p0, params, noise, start


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _finish(family: AbstractFamily, log_density: Callable | None, num: int, params: Any, key: jax.Array, p: Any):
    """The fitted q, its constrained parameters, and log p̃, log q at fresh draws (for the ELBO)."""
    x = family.draws(params, family.base_noise(key, num, standardize=False), num)
    log_p = log_density_values(log_density, p, x)
    q = family.distribution(params)
    return q, family.constrained(params), log_p, q.log_prob(x), family.entropy(params, x)


def _elbo_estimate(q, log_p, log_q, entropy) -> Estimate:
    log_p, log_q = np.asarray(log_p), np.asarray(log_q)
    try:
        q.entropy()
        closed = True
    except NotImplementedError:
        closed = False
    terms = log_p if closed else log_p - log_q  # with a closed-form entropy only log p̃ is random
    num = len(log_p)
    return Estimate(value=float(log_p.mean() + float(entropy)), stderr=float(terms.std(ddof=1) / np.sqrt(num)),
                    method="monte_carlo", num_samples=int(num))


def _with_init(family: AbstractFamily, params: Any, init: dict | None) -> Any:
    if not init:
        return params
    values = {k: np.asarray(v) for k, v in C.constrained(family, params).items()}
    unknown = sorted(set(init) - set(values))
    if unknown:
        raise ValueError(f"Expected init to name parameters of {family.name} {tuple(values)}; got {unknown}.")
    values.update(init)
    return C.from_constrained(family, values)


def fit_reverse(family: AbstractFamily, target: Any, *, key: jax.Array | None, options: dict) -> FitResult:
    """argmin_θ KL(q_θ‖p) for an unnormalised log density p̃ (or a numpyro distribution p)."""
    if key is None:
        raise ValueError("Reverse fits draw from q: pass key= (an int seed or a jax.random key).")
    method = options.get("method", "fixed_draws")
    if method not in METHODS:
        raise ValueError(f"Expected method to be one of {METHODS}; got {method!r}.")
    log_density, p, event = _target(target, family, options.get("dim"))
    family = family.with_event_shape(event)
    _check_log_density(log_density, p, event)
    fixed = method == "fixed_draws"
    num = int(options.get("num_draws", 1000 if fixed else 32))
    k_prepare, k_adam, k_elbo = jax.random.split(key, 3)
    x0, log_p0, params, noise, start = _prepare(
        family, log_density, int(options.get("init_steps", 50)), num, fixed, k_prepare, p,
        float(options.get("init_scale", 1.0)),
    )
    if not np.isfinite(float(log_p0)):
        raise FitError(
            f"log_density is {float(log_p0)} at the starting point x = {np.asarray(x0).round(4).tolist()}. "
            "Check that it is finite on all of R^d: no log of a negative number, parameters with "
            "constraints transformed to unconstrained space, no division by zero."
        )
    if not getattr(jax.eval_shape(family.distribution, params), "has_rsample", False):
        raise TypeError(f"Reverse fits need reparameterised draws; {family.name} has no rsample.")
    if options.get("init"):
        params = _with_init(family, params, options["init"])
        start = float(_neg_elbo((family, log_density, num), params, noise, p)) if fixed else start
    statics = (family, log_density, num)
    if fixed:
        if not np.isfinite(float(start)):
            raise FitError(
                f"The negative ELBO is {float(start)} at the starting q: log_density is NaN or inf at some "
                "draws from it. Check log_density on all of R^d, or start elsewhere with init={...}."
            )
        max_iter = int(options.get("max_iter", 500))
        sol = lbfgs_solve(neg_elbo, statics, params, (noise, p), max_iter=max_iter, gtol=options.get("gtol"))
        message = describe(sol, solver="lbfgs", max_iter=max_iter) + f" Objective on {num} fixed draws."
    else:
        sol = adam_solve(neg_elbo_fresh, statics, params, (p,), k_adam,
                         num_steps=int(options.get("num_steps", 2000)),
                         learning_rate=float(options.get("learning_rate", 0.02)))
        message = describe(sol, solver="adam", max_iter=0) + f" {num} fresh draws per step."
    num_elbo = int(options.get("num_elbo_draws", 4000))
    q, values, log_p, log_q, entropy = _finish(family, log_density, num_elbo, sol.params, k_elbo, p)
    order = jax.eval_shape(family.constrained, sol.params)
    elbo = _elbo_estimate(q, log_p, log_q, entropy)
    return FitResult(
        q=q,
        params={k: np.asarray(values[k]) for k in order},
        direction="reverse",
        objective=float(sol.value),
        history=sol.history,
        converged=sol.converged,
        num_iterations=sol.num_iterations,
        message=message,
        family=family.name,
        method=method,
        elbo=elbo,
    )
