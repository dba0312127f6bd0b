"""A location-scale extension x = loc + scale · y, y ~ base: scipy's ``loc`` and ``scale`` for any class."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions.transforms import AffineTransform
from scipy.special import gammaln

from ._base import AbstractFamily, Params
from ._numpyro import NumpyroFamily

__all__ = ["LocScale"]

_UNIT = ("scale", "rate")  # a base parameter made redundant by the outer scale: held at 1
_MOMENT_ROWS = 100_000  # the moment start reads every k-th row, k = n // this


def _unit_fixed(cls: type) -> tuple:
    return tuple(sorted((k, 1.0) for k in _UNIT if k in getattr(cls, "arg_constraints", {})))


def _weibull_skewness(k: np.ndarray) -> np.ndarray:
    """Skewness of the Weibull law of shape k: (Γ₃ − 3Γ₁Γ₂ + 2Γ₁³) / (Γ₂ − Γ₁²)^{3/2}, Γᵢ = Γ(1 + i/k)."""
    g1, g2, g3 = (np.exp(gammaln(1.0 + i / k)) for i in (1, 2, 3))
    return (g3 - 3.0 * g1 * g2 + 2.0 * g1**3) / (g2 - g1**2) ** 1.5


def _moment_start(cls: type, host: np.ndarray) -> dict[str, np.ndarray] | None:
    """Method-of-moments (shape, loc, scale) of the three-parameter gamma or Weibull, or None.

    The sample skewness γ fixes the shape (gamma: a = 4/γ²; Weibull: the k whose skewness is γ,
    by bisection in log k), the variance the scale and the mean the loc; the shape is clipped to
    [0.5, 200] (gamma) or [0.3, 50] (Weibull), and loc is kept below the smallest row by at least
    5% of the standard deviation, so that every row lies inside the support. The moments are
    those of at most about 2·_MOMENT_ROWS evenly spaced rows (the minimum is over all rows)."""
    if cls not in (dist.Gamma, dist.Weibull):
        return None
    rows = host[:: max(1, len(host) // _MOMENT_ROWS)]  # evenly spaced rows: a start needs no more
    mean = rows.mean(axis=0)
    centred = rows - mean
    squares = centred * centred
    var = np.mean(squares, axis=0)
    if not np.all(var > 0):
        return None
    sd = np.sqrt(var)
    skew = np.mean(squares * centred, axis=0) / sd**3
    if cls is dist.Gamma:
        shape = np.clip(4.0 / np.maximum(skew, 1e-6) ** 2, 0.5, 200.0)
        scale = sd / np.sqrt(shape)
        loc, name = mean - shape * scale, "concentration"
    else:
        lo, hi = np.full_like(skew, np.log(0.3)), np.full_like(skew, np.log(50.0))
        for _ in range(40):  # the skewness decreases in k over [0.3, 50]
            mid = 0.5 * (lo + hi)
            above = _weibull_skewness(np.exp(mid)) > skew
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        shape = np.exp(0.5 * (lo + hi))
        g1, g2 = np.exp(gammaln(1.0 + 1.0 / shape)), np.exp(gammaln(1.0 + 2.0 / shape))
        scale = sd / np.sqrt(g2 - g1**2)
        loc, name = mean - scale * g1, "concentration"
    loc = np.minimum(loc, host.min(axis=0) - 0.05 * sd)
    return {name: shape, "loc": loc, "scale": scale}


@dataclasses.dataclass(frozen=True)
class LocScale(AbstractFamily):
    """q_θ = law of loc + scale · Y with Y ~ ``cls`` (the scipy convention ``loc``/``scale``).

    log q(x) = log p_Y((x − loc) / scale) − log scale. A base parameter named ``scale`` or
    ``rate`` is held at 1 (the outer scale replaces it), so ``LocScale(dist.Gamma)`` is the
    three-parameter gamma (shape, loc, scale), ``LocScale(dist.Beta)`` the four-parameter beta and
    ``LocScale(dist.Weibull)`` scipy's ``weibull_min``. Unconstrained parameters: ``loc``,
    ``log_scale`` and the base's own. The support moves with loc and scale, so the data must lie
    inside it at the starting values (chosen from the data range; for gamma and Weibull with all
    three parameters free, by the method of moments, skewness included); the solvers never step out.

    Args:
        cls: a univariate numpyro distribution class.
        fixed: parameters held at given values: ``loc``, ``scale`` (outer) or a base parameter.
        event_shape: the shape of one draw; ``kb.fit`` sets it from the target.

    Example:
        >>> import numpyro.distributions as dist
        >>> from kullback.families import LocScale
        >>> fam = LocScale(dist.Gamma)
        >>> fam.param_names
        ('concentration', 'loc', 'scale')
        >>> q = fam.distribution(fam.from_constrained({"concentration": 2.0, "loc": 1.0, "scale": 3.0}))
        >>> import scipy.stats as st                      # scipy's gamma(a, loc, scale)
        >>> round(float(q.log_prob(5.0)), 10) == round(float(st.gamma.logpdf(5.0, 2.0, 1.0, 3.0)), 10)
        True
    """

    cls: type
    fixed: Any = ()
    event_shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        fixed = dict(self.fixed)
        outer = {k: fixed.pop(k) for k in ("loc", "scale") if k in fixed}
        base_fixed = {k: 1.0 for k in _UNIT if k in getattr(self.cls, "arg_constraints", {})}
        base_fixed.update(fixed)
        base = NumpyroFamily(self.cls, fixed=base_fixed, event_shape=self.event_shape)
        if not base._univariate:
            raise TypeError(f"Expected a univariate class for LocScale; got {self.cls.__name__}.")
        user = {**{k: float(v) for k, v in outer.items()}, **{k: v for k, v in base.fixed if k in fixed}}
        object.__setattr__(self, "fixed", tuple(sorted(user.items())))
        object.__setattr__(self, "event_shape", tuple(int(s) for s in self.event_shape))
        object.__setattr__(self, "_base", base)
        object.__setattr__(self, "_outer_fixed", tuple(sorted(outer.items())))

    @property
    def name(self) -> str:
        return f"LocScale({self.cls.__name__}{''.join(f', {k}={v}' for k, v in self._outer_fixed)})"

    @property
    def param_names(self) -> tuple[str, ...]:
        outer = tuple(k for k in ("loc", "scale") if k not in dict(self._outer_fixed))
        return self._base.param_names + outer

    def with_event_shape(self, event_shape: tuple[int, ...]) -> LocScale:
        return LocScale(self.cls, fixed=dict(self.fixed), event_shape=tuple(event_shape))

    def _outer(self, params: Params) -> tuple[jax.Array, jax.Array]:
        fixed = dict(self._outer_fixed)
        loc = jnp.asarray(fixed["loc"], dtype=float) if "loc" in fixed else params["loc"]
        scale = jnp.asarray(fixed["scale"], dtype=float) if "scale" in fixed else jnp.exp(params["log_scale"])
        return loc, scale

    def distribution(self, params: Params) -> dist.Distribution:
        base = self._base.distribution({k: params[k] for k in self._base.param_names})
        if self.event_shape:
            base = base.base_dist if isinstance(base, dist.Independent) else base
        loc, scale = self._outer(params)
        q = dist.TransformedDistribution(base, AffineTransform(loc, scale))
        return q.to_event(len(self.event_shape)) if self.event_shape else q

    def constrained(self, params: Params) -> dict[str, jax.Array]:
        out = self._base.constrained({k: params[k] for k in self._base.param_names})
        loc, scale = self._outer(params)
        fixed = dict(self._outer_fixed)
        if "loc" not in fixed:
            out["loc"] = loc
        if "scale" not in fixed:
            out["scale"] = scale
        return out

    def from_constrained(self, values: dict[str, Any]) -> Params:
        out = self._base.from_constrained({k: values[k] for k in self._base.param_names})
        fixed = dict(self._outer_fixed)
        if "loc" not in fixed:
            out["loc"] = jnp.broadcast_to(jnp.asarray(values["loc"], dtype=float), self.event_shape)
        if "scale" not in fixed:
            out["log_scale"] = jnp.log(jnp.broadcast_to(jnp.asarray(values["scale"], dtype=float), self.event_shape))
        return out

    def init_from_data(self, data: jax.Array) -> Params:
        host = np.asarray(data, dtype=float)
        fixed = dict(self._outer_fixed)
        start = None if fixed or self._base.fixed != _unit_fixed(self.cls) else _moment_start(self.cls, host)
        if start is not None:
            return self.from_constrained(start)
        low, high = host.min(axis=0), host.max(axis=0)
        spread = np.where(high > low, high - low, 1.0)
        support = self.cls.support
        bounded_above = hasattr(support, "upper_bound") and np.isfinite(np.asarray(support.upper_bound)).all()
        bounded_below = hasattr(support, "lower_bound") and np.isfinite(np.asarray(support.lower_bound)).all()
        if bounded_below and bounded_above:  # e.g. Beta on (0, 1): a box a little wider than the data
            loc, scale = low - 0.05 * spread, 1.1 * spread
        elif bounded_below:
            loc, scale = low - 0.05 * spread, host.std(axis=0) + 1e-12
        else:
            loc, scale = np.median(host, axis=0), host.std(axis=0) + 1e-12
        loc = fixed.get("loc", loc)
        scale = fixed.get("scale", scale)
        standardized = jnp.asarray((host - loc) / scale)
        values = self._base.constrained(self._base.init_from_data(standardized))
        values.update(loc=loc, scale=scale)
        return self.from_constrained(values)

    def init_at(self, center: Any, scale: Any) -> Params:
        values = self._base.constrained(self._base.init_at(0.0, 1.0))
        values.update(loc=center, scale=scale)
        return self.from_constrained(values)
