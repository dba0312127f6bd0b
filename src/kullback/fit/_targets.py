"""What a reverse fit can target, brought to an unnormalised log density on R^d.

- a JAX callable x -> log p̃(x) on R^d (as is);
- a numpyro distribution with real support (its ``log_prob``);
- a numpyro distribution with constrained support (Gamma, Beta, Dirichlet, ...): fitted in
  unconstrained space u = T⁻¹(x), T = ``biject_to(p.support)``, with density
  p_u(u) = p(T(u)) |det ∂T/∂u|; the fitted q is reported back as the law of T(u), u ~ q_u;
- a numpyro model (a function with ``numpyro.sample`` sites): its potential energy on the
  flattened unconstrained sites; draws are reported back as constrained sites by name;
- a JAX callable on a pytree of arrays (``{"mu": scalar, "beta": (3,)}``), with ``example=`` a
  pytree of that structure: fitted over the flattened x ∈ R^d (d = total size, leaves in
  ``jax.tree`` order, as ``jax.flatten_util.ravel_pytree``); draws are reported back as that
  pytree, each leaf with a leading draw axis.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple

import jax
import numpy as np
import numpyro.distributions as dist
from jax.flatten_util import ravel_pytree
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to

from ._options import ReverseOptions
from ._unravel import Unravel

__all__ = ["Target", "PytreeLogDensity", "resolve_target", "is_model", "push_back", "unit_log_prob"]


class Target(NamedTuple):
    """A reverse-fit target on R^d: a static callable or a dynamic distribution, and the way back."""

    log_density: Callable | None   # x (event) -> scalar, static
    dist: Any                      # a distribution with log_prob on R^d (dynamic), or None
    event_shape: tuple
    transform: Any = None          # constrained distributions: T, pushing q's draws back
    postprocess: Callable | None = None  # models: flat unconstrained draws -> constrained sites
    kind: str = "log_density"      # "log_density" | "distribution" | "constrained" | "model" | "pytree"


class PytreeLogDensity:
    """x ∈ R^d -> log_density(unravel(x)): the flat log density of a pytree target (hashable, so
    fits of the same function and structure share compiled programs)."""

    def __init__(self, log_density: Callable, unravel: Unravel) -> None:
        self.log_density, self.unravel = log_density, unravel

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.log_density(self.unravel(x))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, PytreeLogDensity) and other.log_density is self.log_density
                and other.unravel == self.unravel)

    def __hash__(self) -> int:
        return hash((PytreeLogDensity, id(self.log_density), self.unravel))


def _pytree_target(log_density: Callable, family: Any, example: Any, options: ReverseOptions) -> Target:
    leaves = jax.tree.leaves(example)
    if not leaves:
        raise ValueError("Expected example to be a pytree of arrays (e.g. {'mu': 0.0, 'beta': jnp.zeros(3)}); "
                         "got one with no leaves.")
    for leaf in leaves:
        a = np.asarray(leaf)
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)) or a.dtype == bool:
            raise ValueError(f"Expected example's leaves to be real arrays or numbers; got a leaf of dtype {a.dtype}.")
    unravel = Unravel(example)
    d = unravel.size
    from ..families import NumpyroFamily

    dim = options.dim
    if dim is not None and int(dim) != d:
        raise ValueError(f"Expected dim to equal the size of example ({d}: {unravel.describe()}); got dim={dim}.")
    if not isinstance(family, NumpyroFamily) and tuple(family.event_shape) != (d,):
        raise ValueError(
            f"Expected the family's dimension to equal the size of example: {family.name} draws shape "
            f"{tuple(family.event_shape)}, example flattens to ({d},) ({unravel.describe()}). Use a family of "
            f"dimension {d}."
        )
    return Target(PytreeLogDensity(log_density, unravel), None, (d,), postprocess=unravel, kind="pytree")


def _real_support(p: dist.Distribution) -> bool:
    c = p.support
    while isinstance(c, constraints.independent):
        c = c.base_constraint
    return type(c) is type(constraints.real)


def is_model(target: Any, options: ReverseOptions) -> bool:
    """A callable is a numpyro model when ``model_args``/``model_kwargs`` are given or it takes no
    required positional argument (a log density takes x)."""
    if not callable(target) or isinstance(target, dist.Distribution):
        return False
    if options.has_model_arguments:
        return True
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return False
    required = [p for p in sig.parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return not required


def _model_target(model: Callable, key: jax.Array, options: ReverseOptions) -> Target:
    from numpyro.infer.util import initialize_model

    from ._model_target import model_log_density

    args = tuple(options.model_args or ())
    kwargs = dict(options.model_kwargs or {})
    traced = model_log_density(model, args, kwargs)
    if traced is not None:
        log_density, constrained_sites, event = traced
        return Target(log_density, None, event, postprocess=constrained_sites, kind="model")
    try:
        info = initialize_model(key, model, model_args=args, model_kwargs=kwargs)
    except Exception as err:  # numpyro's own message is precise: keep it
        from .._errors import FitError
        raise FitError(f"Could not initialise the numpyro model {getattr(model, '__name__', model)!r}: {err}") from err
    example = info.param_info.z
    flat, unravel = ravel_pytree(example)
    potential = info.potential_fn
    postprocess = info.postprocess_fn

    def log_density(x):
        return -potential(unravel(x))

    def constrained_sites(x):
        return jax.vmap(lambda v: postprocess(unravel(v)))(x)

    return Target(log_density, None, tuple(flat.shape), postprocess=constrained_sites, kind="model")


def resolve_target(target: Any, family: Any, key: jax.Array, options: ReverseOptions) -> Target:
    """The target as a log density on R^d with the shape of one draw (see the module doc)."""
    if options.example is not None:
        if not callable(target) or isinstance(target, dist.Distribution) or is_model(target, options):
            raise TypeError("example= describes the pytree argument of a log density callable; the target is a "
                            f"{type(target).__name__}, which brings its own shape. Drop example=.")
        return _pytree_target(target, family, options.example, options)
    if isinstance(target, dist.Distribution):
        if target.batch_shape:
            raise ValueError(f"Expected target to be a single distribution (batch shape ()); got {target.batch_shape}.")
        if _real_support(target):
            return Target(None, target, tuple(target.event_shape), kind="distribution")
        try:
            transform = biject_to(target.support)
        except NotImplementedError as err:
            raise ValueError(
                f"Expected target to have real support or a support numpyro can map to R^d (biject_to); "
                f"{type(target).__name__} has support {target.support}."
            ) from err
        pulled = dist.TransformedDistribution(target, transform.inv)
        event = tuple(transform.inverse_shape(target.event_shape))
        return Target(None, pulled, event, transform=transform, kind="constrained")
    if is_model(target, options):
        return _model_target(target, key, options)
    if callable(target):
        from ..families import NumpyroFamily

        if isinstance(family, NumpyroFamily):
            dim = options.dim
            event = () if dim is None else (int(dim),)
        else:
            event = tuple(family.event_shape)
        return Target(target, None, event)
    raise TypeError(
        "Expected target of a reverse fit to be a log density (a JAX callable x -> scalar), a numpyro "
        f"distribution or a numpyro model; got {type(target).__name__}. Data are a forward-fit target: "
        "direction='forward'."
    )


def push_back(target: Target, q: dist.Distribution) -> dist.Distribution:
    """q in the target's original space: the law of T(u), u ~ q, for a constrained target."""
    if target.transform is None:
        return q
    return dist.TransformedDistribution(q, target.transform)


def unit_log_prob(target: Target, x: jax.Array) -> jax.Array:
    """log p̃ at a batch of draws on R^d (for diagnostics outside the solvers)."""
    if target.log_density is None:
        return target.dist.log_prob(x)
    return jax.vmap(target.log_density)(x)
