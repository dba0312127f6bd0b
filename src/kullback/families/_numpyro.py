"""Any numpyro distribution class as a family, through its ``arg_constraints`` and ``biject_to``."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to

from ._base import AbstractFamily, Params, base_normals
from ._closed import CLOSED_FORMS
from ._init import default_value

__all__ = ["NumpyroFamily"]

# Redundant parameterisations: when the key is a parameter, the values are dropped.
_PREFERRED = {
    "logits": ("probs",),
    "scale_tril": ("covariance_matrix", "precision_matrix"),
}


def _hashable(value: Any) -> Any:
    a = np.asarray(value, dtype=float)
    return float(a) if a.ndim == 0 else tuple(a.tolist())


def _bound_constraint(cls: type, name: str, low: float | None, high: float | None) -> constraints.Constraint:
    """The parameter's constraint intersected with [low, high] (open at infinite ends)."""
    base = cls.arg_constraints[name]
    floor = {id(constraints.positive): 0.0, id(constraints.nonnegative): 0.0}.get(id(base))
    if floor is None and base is not constraints.real:
        if isinstance(base, constraints.greater_than) and not isinstance(base, constraints.interval):
            floor = float(base.lower_bound)
        else:
            raise TypeError(f"Cannot bound parameter {name!r} of {cls.__name__} (constraint {base}); bound real or positive parameters.")
    if floor is not None:
        low = floor if low is None else max(float(low), floor)
    if low is not None and high is not None:
        if not low < high:
            raise ValueError(f"Expected bounds for {name!r} to satisfy low < high; got ({low}, {high}).")
        return constraints.interval(float(low), float(high))
    if low is not None:
        return constraints.greater_than(float(low))
    if high is not None:
        return constraints.less_than(float(high))
    return base


def _free_names(cls: type, fixed: dict[str, Any]) -> tuple[str, ...]:
    names = list(cls.arg_constraints)
    for keep, drop in _PREFERRED.items():
        if keep in names:
            names = [n for n in names if n not in drop]
    return tuple(n for n in names if n not in fixed)


@functools.partial(jax.jit, static_argnums=1)
def _moments(p: dist.Distribution, scalar: bool) -> tuple[jax.Array, jax.Array]:
    """p's mean and variance (or covariance matrix) as one program: eagerly a mixture's moments are
    a dozen small programs, each traced and looked up in the compilation cache in every process."""
    return p.mean, (p.variance if scalar else p.covariance_matrix)


@dataclasses.dataclass(frozen=True)
class NumpyroFamily(AbstractFamily):
    """A numpyro distribution class as a family q_θ; ``kb.fit`` wraps classes in this automatically.

    Each free parameter (from ``cls.arg_constraints``; of ``probs``/``logits`` the logits, of the
    covariance forms ``scale_tril``) is mapped to R^k by ``biject_to(constraint)``. A univariate
    class fitted to vectors x ∈ R^d gets parameters of shape (d,) (independent coordinates).

    Args:
        cls: a numpyro distribution class, e.g. ``dist.StudentT``.
        fixed: parameters held at given values, e.g. ``{"df": 4.0}``.
        bounds: box constraints on free parameters, e.g. ``{"df": (1.0, None)}`` (None: unbounded
            on that side); the parameter is then mapped through ``biject_to`` of the interval.
        event_shape: the shape of one draw; ``kb.fit`` sets it from the target.

    Example:
        >>> import numpyro.distributions as dist
        >>> import kullback as kb
        >>> fam = kb.families.NumpyroFamily(dist.StudentT, fixed={"df": 4.0})
        >>> fam.param_names
        ('loc', 'scale')
        >>> q = fam.distribution(fam.init_at(1.0, 2.0))
        >>> float(q.df), float(q.loc), float(q.scale)
        (4.0, 1.0, 2.0)
    """

    cls: type
    fixed: Any = ()
    event_shape: tuple[int, ...] = ()
    bounds: Any = ()

    def __post_init__(self) -> None:
        if not (inspect.isclass(self.cls) and issubclass(self.cls, dist.Distribution)):
            raise TypeError(f"Expected cls to be a numpyro distribution class; got {self.cls!r}.")
        fixed = dict(self.fixed)
        unknown = sorted(set(fixed) - set(self.cls.arg_constraints))
        if unknown:
            raise ValueError(
                f"Expected fixed to name parameters of {self.cls.__name__} "
                f"{tuple(self.cls.arg_constraints)}; got {unknown}."
            )
        object.__setattr__(self, "fixed", tuple(sorted((k, _hashable(v)) for k, v in fixed.items())))
        bounds = self.bounds if isinstance(self.bounds, dict) else {t[0]: tuple(t[1:]) for t in self.bounds}
        unknown = sorted(set(bounds) - set(self.param_names))
        if unknown:
            raise ValueError(f"Expected bounds to name free parameters of {self.cls.__name__} {self.param_names}; got {unknown}.")
        cleaned = []
        for k, pair in sorted(bounds.items()):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise ValueError(f"Expected bounds[{k!r}] to be a pair (low, high); got {pair!r}.")
            low, high = (None if v is None or not np.isfinite(v) else float(v) for v in pair)
            _bound_constraint(self.cls, k, low, high)
            cleaned.append((k, low, high))
        object.__setattr__(self, "bounds", tuple(cleaned))
        object.__setattr__(self, "event_shape", tuple(int(s) for s in self.event_shape))
        for name in self.param_names:
            c = self.cls.arg_constraints[name]
            if isinstance(c, type(constraints.dependent)):
                raise TypeError(
                    f"Cannot fit parameter {name!r} of {self.cls.__name__}: its constraint depends on "
                    f"other parameters. Hold it with fixed={{{name!r}: value}}."
                )

    @property
    def name(self) -> str:
        fixed = "".join(f", {k}={v}" for k, v in self.fixed)
        bounds = "".join(f", {k} in [{lo}, {hi}]" for k, lo, hi in self.bounds)
        return f"{self.cls.__name__}{fixed}{bounds}"

    @property
    def param_names(self) -> tuple[str, ...]:
        """The free parameters, in ``arg_constraints`` order."""
        return _free_names(self.cls, dict(self.fixed))

    @property
    def _univariate(self) -> bool:
        support = self.cls.__dict__.get("support", getattr(self.cls, "support", None))
        return not isinstance(support, constraints.Constraint) or support.event_dim == 0

    def with_event_shape(self, event_shape: tuple[int, ...]) -> NumpyroFamily:
        event_shape = tuple(int(s) for s in event_shape)
        if not self._univariate and len(event_shape) != 1:
            raise ValueError(
                f"Expected vector draws of shape (d,) for {self.cls.__name__}; got shape {event_shape}."
            )
        return dataclasses.replace(self, fixed=dict(self.fixed), event_shape=event_shape,
                                   bounds={k: (lo, hi) for k, lo, hi in self.bounds})

    def _shape(self, name: str) -> tuple[int, ...]:
        event_dim = self.cls.arg_constraints[name].event_dim
        if self._univariate:
            if event_dim:
                raise TypeError(
                    f"Cannot infer the shape of parameter {name!r} of {self.cls.__name__} from the "
                    f"target; hold it with fixed={{{name!r}: value}}."
                )
            return self.event_shape
        return self.event_shape[-1:] * event_dim

    def _transform(self, name: str) -> Any:
        for k, low, high in self.bounds:
            if k == name:
                return biject_to(_bound_constraint(self.cls, name, low, high))
        return biject_to(self.cls.arg_constraints[name])

    def constrained(self, params: Params) -> dict[str, jax.Array]:
        return {n: self._transform(n)(params[n]) for n in self.param_names}

    def from_constrained(self, values: dict[str, Any]) -> Params:
        out = {}
        for n in self.param_names:
            value = jnp.broadcast_to(jnp.asarray(values[n], dtype=float), self._shape(n))
            out[n] = self._transform(n).inv(value)
        return out

    def distribution(self, params: Params) -> dist.Distribution:
        values = {n: jnp.asarray(v, dtype=float) for n, v in self.fixed}
        values.update(self.constrained(params))
        # matrix parameters come out of their bijection valid; numpyro's check of them builds
        # constant masks eagerly (a dozen tiny compiles per trace), so it is skipped for them
        matrix = any(jnp.ndim(v) >= 2 for v in values.values())
        q = self.cls(**values, validate_args=False) if matrix else self.cls(**values)
        if self._univariate and self.event_shape:
            q = q.to_event(len(self.event_shape))
        return q

    def init_from_data(self, data: jax.Array) -> Params:
        host = np.asarray(data, dtype=float)
        values = {n: default_value(self.cls, n, self._shape(n), host) for n in self.param_names}
        for n, low, high in self.bounds:  # a start outside the bounds: the point the bijection maps 0 to
            inside = _bound_constraint(self.cls, n, low, high).check(jnp.asarray(values[n]))
            if not bool(jnp.all(inside)):
                transform = self._transform(n)
                values[n] = np.asarray(transform(jnp.zeros(transform.inverse_shape(self._shape(n)))))
        return self.from_constrained(values)

    def init_at(self, center: Any, scale: Any) -> Params:
        center = jnp.broadcast_to(jnp.asarray(center, dtype=float), self.event_shape)
        scale = jnp.broadcast_to(jnp.asarray(scale, dtype=float), self.event_shape)
        values = {}
        for n in self.param_names:
            if n == "loc":
                values[n] = center
            elif n == "scale":
                values[n] = scale
            elif n == "scale_tril":
                values[n] = jnp.diag(scale)
            else:
                values[n] = default_value(self.cls, n, self._shape(n), None)
        return self.from_constrained(values)

    # Closed forms: the normal classes (moment matching) and exponential families (MLE).
    def _normal_kind(self) -> str | None:
        if self.fixed or self.bounds:
            return None
        return {dist.Normal: "normal", dist.MultivariateNormal: "mvn"}.get(self.cls)

    def mle(self, data: jax.Array, weights: jax.Array | None = None) -> Params | None:
        """Closed-form MLE from weighted sufficient statistics (no fixed or bounded parameter), or None."""
        solve = CLOSED_FORMS.get(self.cls)
        if solve is None or self.fixed or self.bounds:
            return None
        if weights is None:
            weights = jnp.full(data.shape[0], 1.0 / data.shape[0], dtype=data.dtype)
        return self.from_constrained(solve(data, weights))

    def moment_match(self, p: dist.Distribution) -> Params | None:
        kind = self._normal_kind()
        if kind is None:
            return None
        try:
            mean, second = _moments(p, kind == "normal")
        except (NotImplementedError, AttributeError):
            return None
        mean, second = np.asarray(mean, dtype=float), np.asarray(second, dtype=float)
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(second))):
            return None
        if kind == "normal":
            return self.from_constrained({"loc": jnp.asarray(mean), "scale": jnp.asarray(np.sqrt(second))})
        return self.from_constrained({"loc": jnp.asarray(mean), "scale_tril": jnp.asarray(np.linalg.cholesky(second))})

    def base_noise(self, key: jax.Array, num: int, *, standardize: bool) -> Any:
        if self.cls in (dist.Normal, dist.MultivariateNormal):
            return base_normals(key, (num, *self.event_shape), standardize=standardize)
        return key

    def draws(self, params: Params, noise: Any, num: int) -> jax.Array:
        values = dict(self.fixed)
        values.update(self.constrained(params))
        if self.cls is dist.Normal:
            return values["loc"] + noise * values["scale"]
        if self.cls is dist.MultivariateNormal:
            return values["loc"] + noise @ values["scale_tril"].T
        return super().draws(params, noise, num)
