"""Adaptive quadrature for KL, cross-entropy and entropy of scalar continuous distributions.

    KL(p‖q) = ∫ p(x) [log p(x) − log q(x)] dx,   H(p, q) = −∫ p log q dx,   H(p) = −∫ p log p dx,

integrated over the support of p by adaptive Gauss-Kronrod quadrature (the algorithm of
QUADPACK's QAGI/QAGP, infinite limits allowed). A single pair (batch shape ()) is integrated by a
host-driven G7-K15 rule: the only compiled program evaluates log p and log q at a fixed-size batch
of nodes (one small program per distribution type, reused by every pair and every round), the
subdivision and the sums run in NumPy. Batched pairs use ``quadax.quadgk`` inside one program. The integrand is 0 where p(x) = 0
(no NaN from −inf − (−inf)) and points outside a support are masked, never evaluated into the
result. Where p's support is not inside q's the answer is +inf, decided from the supports
before any integration. Breakpoints at p's support bounds and at anchors where p has its mass
(mean ± k·sd, mixture components, quantiles) let the subdivision find narrow or distant modes.

The reported error is QUADPACK's estimate of the absolute error bound (as quadax's), not a
standard error.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import Distribution, constraints

from ._quadrature_host import _BATCH, _divergent_tail, _integrate_host, _log_density

__all__ = ["QuadratureResult", "scalar_support", "supports_quadrature", "integrate", "default_tolerance"]

_ANCHOR_SDS = (-10.0, -4.0, -1.0, 0.0, 1.0, 4.0, 10.0)
_ANCHOR_QUANTILES = (1e-6, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0 - 1e-6)
_MAX_BREAKPOINTS = 128
_EXTRA_INTERVALS = 100


class QuadratureResult(NamedTuple):
    value: jax.Array
    err: jax.Array
    neval: int
    status: int
    breakpoints: tuple[float, ...]
    diverges: str | None = None  # why the integral is infinite (value ±inf), found by the tail test


def default_tolerance(dtype: Any) -> float:
    """Requested absolute and relative error: 1e-10 in float64, 1e-5 in float32."""
    return 1e-10 if jnp.finfo(dtype).bits >= 64 else 1e-5


def _bounds(support: Any) -> tuple[Any, Any] | None:
    if getattr(support, "is_discrete", True) or getattr(support, "event_dim", 1) != 0:
        return None
    if isinstance(support, constraints._Real):
        return -np.inf, np.inf
    if isinstance(support, constraints._Interval):
        return support.lower_bound, support.upper_bound
    if isinstance(support, constraints._GreaterThan):
        return support.lower_bound, np.inf
    if isinstance(support, constraints._LessThan):
        return -np.inf, support.upper_bound
    return None


def scalar_support(d: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Lower and upper support bounds over the batch shape, or None if d is not scalar continuous."""
    if getattr(d, "event_shape", None) != () or not hasattr(d, "support"):
        return None
    bounds = _bounds(d.support)
    if bounds is None:
        return None
    try:
        lo, hi = (np.broadcast_to(np.asarray(b, dtype=float), d.batch_shape) for b in bounds)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        return None  # traced or odd-shaped bounds
    return lo, hi


def supports_quadrature(p: Any, q: Any | None = None) -> bool:
    """True if p (and q) are scalar continuous distributions with a known support interval."""
    return scalar_support(p) is not None and (q is None or scalar_support(q) is not None)


def _finite(x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


@jax.jit
def _mean_and_variance(d: Any) -> tuple[jax.Array, jax.Array]:
    """One program (eagerly a mixture's moments are a dozen, each looked up in every process)."""
    return d.mean, d.variance


def _anchors(p: Any) -> np.ndarray:
    """Points where p has its mass: mean ± k·sd, else quantiles, else loc ± k·scale."""
    found = []
    for d in (p, getattr(p, "component_distribution", None)):
        if d is None:
            continue
        try:
            mean, var = _mean_and_variance(d)
            mean, sd = np.asarray(mean, dtype=float), np.sqrt(np.asarray(var, dtype=float))
        except (NotImplementedError, AttributeError, TypeError, ValueError):
            continue
        ok = np.isfinite(mean) & np.isfinite(sd)
        found.extend(_finite(mean[ok][..., None] + sd[ok][..., None] * np.asarray(_ANCHOR_SDS)))
    if found:
        return np.asarray(found)
    try:
        levels = jnp.asarray(_ANCHOR_QUANTILES).reshape((-1,) + (1,) * len(p.batch_shape))
        return _finite(p.icdf(levels))
    except Exception:  # icdf is missing or needs an optional dependency
        pass
    loc, scale = getattr(p, "loc", None), getattr(p, "scale", None)
    if loc is not None and scale is not None:
        loc, scale = np.asarray(loc, dtype=float), np.asarray(scale, dtype=float)
        return _finite(loc[..., None] + scale[..., None] * np.asarray(_ANCHOR_SDS))
    return np.zeros(0)


def _breakpoints(p: Any, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    start, stop = lo.min(), hi.max()
    inner = np.concatenate([_finite(lo), _finite(hi), _anchors(p)])
    inner = np.unique(inner[(inner > start) & (inner < stop)])
    if inner.size > _MAX_BREAKPOINTS:
        inner = np.unique(np.quantile(inner, np.linspace(0.0, 1.0, _MAX_BREAKPOINTS)))
    return np.concatenate([[start], inner, [stop]])


def _integrand(kind: str, x: jax.Array, p: Any, q: Any, contained: jax.Array) -> jax.Array:
    log_p = _log_density(p, x)
    positive = log_p > -jnp.inf
    safe_log_p = jnp.where(positive, log_p, 0.0)
    if kind == "entropy":
        terms = -safe_log_p
    else:
        log_q = jnp.where(contained, _log_density(q, x), 0.0)  # pairs not contained: +inf later
        safe_log_q = jnp.where(log_q > -jnp.inf, log_q, 0.0)
        terms = safe_log_p - safe_log_q if kind == "kl" else -safe_log_q
    return jnp.where(positive, jnp.exp(safe_log_p) * terms, 0.0)


_INTEGRANDS = {kind: functools.partial(_integrand, kind) for kind in ("kl", "cross_entropy", "entropy")}


def _integrate(
    kind: str,
    p: Any,
    q: Any,
    interval: jax.Array,
    contained: jax.Array,
    epsabs: jax.Array,
    epsrel: jax.Array,
    max_ninter: int,
) -> tuple[jax.Array, Any]:
    import quadax  # on first use: its import is 0.3 s

    value, info = quadax.quadgk(
        _INTEGRANDS[kind],
        interval,
        args=(p, q, contained),
        epsabs=epsabs,
        epsrel=epsrel,
        max_ninter=max_ninter,
        extrapolate=False,  # the breakpoints do its job; it would triple compile time
    )
    return value, info


_integrate_jit = jax.jit(_integrate, static_argnames=("kind", "max_ninter"))


def integrate(
    kind: str, p: Any, q: Any | None, *, epsabs: float | None = None, epsrel: float | None = None
) -> QuadratureResult:
    """Integrate the KL (``kind="kl"``), cross-entropy or entropy integrand over p's support.

    ``p`` (and ``q``) must satisfy :func:`supports_quadrature`; values are over the broadcast
    batch shape. Pairs whose supports are not nested give +inf with error 0.
    """
    lo_p, hi_p = scalar_support(p)
    shape = p.batch_shape
    contained = np.ones(shape, dtype=bool)
    if q is not None:
        shape = jnp.broadcast_shapes(p.batch_shape, q.batch_shape)
        lo_q, hi_q = scalar_support(q)
        contained = (lo_q <= lo_p) & (hi_p <= hi_q)
    points = _breakpoints(p, lo_p, hi_p)
    if not contained.any():
        inf = jnp.full(shape, jnp.inf)
        return QuadratureResult(inf, jnp.zeros(shape), 0, 0, tuple(float(x) for x in points))
    dtype = jnp.result_type(float)
    tol = default_tolerance(dtype)
    epsabs = tol if epsabs is None else epsabs
    epsrel = tol if epsrel is None else epsrel
    max_ninter = len(points) - 1 + _EXTRA_INTERVALS
    if shape == () and _is_pytree_pair(p, q):
        why = _divergent_tail(kind, p, q, points)
        if why is not None:
            sign, why = why
            return QuadratureResult(jnp.asarray(sign * np.inf, dtype=dtype), jnp.zeros((), dtype=dtype), _BATCH * 15,
                                    0, tuple(float(x) for x in points), why)
        value, err, neval, status = _integrate_host(kind, p, q, points, float(epsabs), float(epsrel), max_ninter)
        return QuadratureResult(jnp.asarray(value, dtype=dtype), jnp.asarray(err, dtype=dtype), neval, status,
                                tuple(float(x) for x in points))
    run = _integrate_jit if _is_pytree_pair(p, q) else _integrate
    value, info = run(
        kind, p, q, jnp.asarray(points, dtype=dtype), jnp.asarray(contained), epsabs, epsrel, max_ninter
    )
    contained = jnp.broadcast_to(jnp.asarray(contained), shape)
    value = jnp.where(contained, jnp.broadcast_to(value, shape), jnp.inf)
    err = jnp.where(contained, jnp.broadcast_to(info.err, shape), 0.0)
    return QuadratureResult(value, err, int(info.neval), int(info.status), tuple(float(x) for x in points))


def _is_pytree_pair(p: Any, q: Any) -> bool:
    return isinstance(p, Distribution) and (q is None or isinstance(q, Distribution))
