"""Closed forms between scalar continuous distributions of different families.

For p and q of different families the KL is a cross-entropy minus an entropy,

    KL(p‖q) = H(p, q) − H(p),   H(p, q) = −E_p[log q(X)],

and −log q(x) is, for the families here, a combination of a few functions of x whose
expectations under p are known in closed form:

    q Normal(μ, σ):     ½ log(2πσ²) + (Var_p X + (E_p X − μ)²)/(2σ²)
    q Exponential(λ):   −log λ + λ E_p X
    q Gamma(a, b):      −a log b + log Γ(a) − (a − 1) E_p log X + b E_p X
    q Gumbel(m, c):     log c + (E_p X − m)/c + exp(L_p(−1/c; m))        (L_p(t; m) = log E_p e^{t(X − m)})
    q Laplace(m, c):    log 2c + E_p|X − m| / c
    q Beta(a, b):       log B(a, b) − (a − 1) E_p log X − (b − 1) E_p log(1 − X)
    q Uniform(l, h):    log(h − l)
    q Pareto(s, α):     −log α − α log s + (α + 1) E_p log X

valid where p's support lies inside q's; elsewhere the KL is +inf (for example Normal ‖
Exponential, or Uniform(0, 2) ‖ Beta). A pair is registered when p's family supplies the
expectations q's family needs, or when its support can never lie inside q's (then it is +inf).
Infinite moments propagate: KL(Cauchy ‖ Normal) = +inf, KL(Pareto(α ≤ 2) ‖ Normal) = +inf.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammainc, gammaln, log_ndtr, ndtr, xlogy

from .._special import betaln
from numpyro.distributions import (
    Beta,
    Cauchy,
    Exponential,
    Gamma,
    Gumbel,
    HalfNormal,
    Laplace,
    LogNormal,
    Normal,
    Pareto,
    StudentT,
    Uniform,
    Weibull,
)

from .._errors import NoClosedFormError
from ._registry import dispatch_entropy, register_kl

__all__ = ["cross_family_pairs", "moments_of"]

_EULER = 0.5772156649015329
_INF = jnp.inf
Moments = dict[str, Any]


def _a(x: Any) -> jax.Array:
    return jnp.asarray(x)


# -- expectations under p -----------------------------------------------------------------------


def _normal(d: Normal) -> Moments:
    loc, s = _a(d.loc), _a(d.scale)

    def eabs(c: jax.Array) -> jax.Array:
        delta = loc - c
        return s * math.sqrt(2.0 / math.pi) * jnp.exp(-0.5 * (delta / s) ** 2) + delta * (1.0 - 2.0 * ndtr(-delta / s))

    return {"kind": "real", "lo": -_INF, "hi": _INF, "mean": loc, "var": s * s,
            "lmgf": lambda t, c: (loc - c) * t + 0.5 * (s * t) ** 2, "eabs": eabs}


def _laplace(d: Laplace) -> Moments:
    m, b = _a(d.loc), _a(d.scale)

    def lmgf(t: jax.Array, c: jax.Array) -> jax.Array:
        ok = jnp.abs(b * t) < 1.0
        return jnp.where(ok, (m - c) * t - jnp.log1p(-(b * jnp.where(ok, t, 0.0)) ** 2), _INF)

    def eabs(c: jax.Array) -> jax.Array:
        delta = jnp.abs(m - c)
        return delta + b * jnp.exp(-delta / b)

    return {"kind": "real", "lo": -_INF, "hi": _INF, "mean": m, "var": 2.0 * b * b, "lmgf": lmgf, "eabs": eabs}


def _gumbel(d: Gumbel) -> Moments:
    m, b = _a(d.loc), _a(d.scale)

    def lmgf(t: jax.Array, c: jax.Array) -> jax.Array:
        ok = b * t < 1.0
        return jnp.where(ok, (m - c) * t + gammaln(jnp.where(ok, 1.0 - b * t, 1.0)), _INF)

    return {"kind": "real", "lo": -_INF, "hi": _INF, "mean": m + _EULER * b,
            "var": (math.pi * b) ** 2 / 6.0, "lmgf": lmgf}


def _cauchy(d: Cauchy) -> Moments:
    inf = jnp.full_like(_a(d.loc) * _a(d.scale), _INF)
    return {"kind": "real", "lo": -_INF, "hi": _INF, "mean": _a(d.loc), "var": inf,
            "lmgf": lambda t, c: inf, "eabs": lambda c: inf}


def _student_t(d: StudentT) -> Moments:
    nu, loc, s = _a(d.df), _a(d.loc), _a(d.scale)
    var = jnp.where(nu > 2.0, s * s * nu / jnp.where(nu > 2.0, nu - 2.0, 1.0), _INF)
    return {"kind": "real", "lo": -_INF, "hi": _INF, "mean": loc, "var": var,
            "lmgf": lambda t, c: jnp.full_like(var, _INF)}


def _exponential(d: Exponential) -> Moments:
    lam = _a(d.rate)

    def lmgf(t: jax.Array, c: jax.Array) -> jax.Array:
        ok = t < lam
        return jnp.where(ok, -c * t - jnp.log1p(-jnp.where(ok, t, 0.0) / lam), _INF)

    def eabs(c: jax.Array) -> jax.Array:
        return jnp.where(c <= 0.0, 1.0 / lam - c, c - 1.0 / lam + 2.0 * jnp.exp(-lam * jnp.maximum(c, 0.0)) / lam)

    return {"kind": "positive", "lo": 0.0, "hi": _INF, "mean": 1.0 / lam, "var": 1.0 / lam**2,
            "elog": -_EULER - jnp.log(lam), "lmgf": lmgf, "eabs": eabs}


def _gamma(d: Gamma) -> Moments:
    a, b = _a(d.concentration), _a(d.rate)

    def lmgf(t: jax.Array, c: jax.Array) -> jax.Array:
        ok = t < b
        return jnp.where(ok, -c * t - a * jnp.log1p(-jnp.where(ok, t, 0.0) / b), _INF)

    def eabs(c: jax.Array) -> jax.Array:
        cp = jnp.maximum(c, 0.0)  # E|X − c| = E X − c + 2 E(c − X)+,  E(c − X)+ = c F_a(c) − (a/b) F_{a+1}(c)
        below = cp * gammainc(a, b * cp) - a / b * gammainc(a + 1.0, b * cp)
        return a / b - c + 2.0 * below

    return {"kind": "positive", "lo": 0.0, "hi": _INF, "mean": a / b, "var": a / b**2,
            "elog": digamma(a) - jnp.log(b), "lmgf": lmgf, "eabs": eabs}


def _half_normal(d: HalfNormal) -> Moments:
    s = _a(d.scale)
    return {"kind": "positive", "lo": 0.0, "hi": _INF, "mean": s * math.sqrt(2.0 / math.pi),
            "var": s * s * (1.0 - 2.0 / math.pi), "elog": jnp.log(s) - 0.5 * (_EULER + math.log(2.0)),
            "lmgf": lambda t, c: math.log(2.0) + 0.5 * (s * t) ** 2 + log_ndtr(s * t) - c * t}


def _log_normal(d: LogNormal) -> Moments:
    mu, s = _a(d.loc), _a(d.scale)
    return {"kind": "positive", "lo": 0.0, "hi": _INF, "mean": jnp.exp(mu + 0.5 * s * s),
            "var": jnp.expm1(s * s) * jnp.exp(2.0 * mu + s * s), "elog": mu}


def _weibull(d: Weibull) -> Moments:
    lam, k = _a(d.scale), _a(d.concentration)
    m1 = lam * jnp.exp(gammaln(1.0 + 1.0 / k))
    m2 = lam * lam * jnp.exp(gammaln(1.0 + 2.0 / k))
    return {"kind": "positive", "lo": 0.0, "hi": _INF, "mean": m1, "var": m2 - m1 * m1,
            "elog": jnp.log(lam) - _EULER / k}


def _beta(d: Beta) -> Moments:
    a, b = _a(d.concentration1), _a(d.concentration0)
    n = a + b
    return {"kind": "unit", "lo": 0.0, "hi": 1.0, "mean": a / n, "var": a * b / (n * n * (n + 1.0)),
            "elog": digamma(a) - digamma(n), "elog1m": digamma(b) - digamma(n)}


def _pareto(d: Pareto) -> Moments:
    s, al = _a(d.scale), _a(d.alpha)
    mean = jnp.where(al > 1.0, al * s / jnp.where(al > 1.0, al - 1.0, 1.0), _INF)
    safe = jnp.where(al > 2.0, al, 3.0)
    var = jnp.where(al > 2.0, safe * s * s / ((safe - 1.0) ** 2 * (safe - 2.0)), _INF)
    return {"kind": "pareto", "lo": s, "hi": _INF, "mean": mean, "var": var, "elog": jnp.log(s) + 1.0 / al}


def _uniform(d: Uniform) -> Moments:
    lo, hi = _a(d.low), _a(d.high)
    w = hi - lo

    def mean_log(a: jax.Array, b: jax.Array) -> jax.Array:  # E log X for X ~ U(a, b), 0 ≤ a < b
        a, b = jnp.maximum(a, 0.0), jnp.maximum(b, 1e-300)
        return (xlogy(b, b) - xlogy(a, a)) / (b - a) - 1.0

    def lmgf(t: jax.Array, c: jax.Array) -> jax.Array:
        u = t * w  # log E e^{t(X − c)} = t(lo − c) + log((e^u − 1)/u), in log space for large |u|
        small = jnp.abs(u) < 1e-8
        us = jnp.where(small, 1.0, u)
        pos = us + jnp.log1p(-jnp.exp(-jnp.abs(us))) - jnp.log(jnp.abs(us))
        neg = jnp.log(-jnp.expm1(-jnp.abs(us))) - jnp.log(jnp.abs(us))
        return t * (lo - c) + jnp.where(small, 0.5 * u, jnp.where(us > 0, pos, neg))

    def eabs(c: jax.Array) -> jax.Array:
        inside = ((c - lo) ** 2 + (hi - c) ** 2) / (2.0 * w)
        return jnp.where(c <= lo, (lo + hi) / 2.0 - c, jnp.where(c >= hi, c - (lo + hi) / 2.0, inside))

    return {"kind": "interval", "lo": lo, "hi": hi, "mean": (lo + hi) / 2.0, "var": w * w / 12.0,
            "elog": mean_log(lo, hi), "elog1m": mean_log(1.0 - hi, 1.0 - lo), "lmgf": lmgf, "eabs": eabs}


_P_FAMILIES: dict[type, Callable[[Any], Moments]] = {
    Normal: _normal, Laplace: _laplace, Gumbel: _gumbel, Cauchy: _cauchy, StudentT: _student_t,
    Exponential: _exponential, Gamma: _gamma, HalfNormal: _half_normal, LogNormal: _log_normal,
    Weibull: _weibull, Beta: _beta, Pareto: _pareto, Uniform: _uniform,
}  # fmt: skip


def moments_of(d: Any) -> Moments:
    """The expectations under ``d`` used by the cross-family forms (keys by need)."""
    return _lookup(_P_FAMILIES, type(d))(d)


def _lookup(table: dict, cls: type) -> Any:
    for t in cls.__mro__:
        if t in table:
            return table[t]
    raise KeyError(cls.__name__)


# -- −E_p log q for each family of q ------------------------------------------------------------


def _ce_normal(m: Moments, q: Normal) -> jax.Array:
    mu, s = _a(q.loc), _a(q.scale)
    return 0.5 * jnp.log(2.0 * math.pi * s * s) + (m["var"] + (m["mean"] - mu) ** 2) / (2.0 * s * s)


def _ce_exponential(m: Moments, q: Exponential) -> jax.Array:
    lam = _a(q.rate)
    return -jnp.log(lam) + lam * m["mean"]


def _ce_gamma(m: Moments, q: Gamma) -> jax.Array:
    a, b = _a(q.concentration), _a(q.rate)
    return -a * jnp.log(b) + gammaln(a) - (a - 1.0) * m["elog"] + b * m["mean"]


def _ce_gumbel(m: Moments, q: Gumbel) -> jax.Array:
    loc, c = _a(q.loc), _a(q.scale)
    return jnp.log(c) + (m["mean"] - loc) / c + jnp.exp(m["lmgf"](-1.0 / c, loc))  # no e^{m/c} · e^{−m/c}


def _ce_laplace(m: Moments, q: Laplace) -> jax.Array:
    loc, c = _a(q.loc), _a(q.scale)
    return jnp.log(2.0 * c) + m["eabs"](loc) / c


def _ce_beta(m: Moments, q: Beta) -> jax.Array:
    a, b = _a(q.concentration1), _a(q.concentration0)
    return betaln(a, b) - (a - 1.0) * m["elog"] - (b - 1.0) * m["elog1m"]


def _ce_uniform(m: Moments, q: Uniform) -> jax.Array:
    return jnp.log(_a(q.high) - _a(q.low))


def _ce_pareto(m: Moments, q: Pareto) -> jax.Array:
    s, al = _a(q.scale), _a(q.alpha)
    return -jnp.log(al) - al * jnp.log(s) + (al + 1.0) * m["elog"]


# q family: (cross-entropy, expectations it needs, support kind, bounds)
_Q_FAMILIES: dict[type, tuple[Callable[..., jax.Array], tuple[str, ...], str]] = {
    Normal: (_ce_normal, ("mean", "var"), "real"),
    Gumbel: (_ce_gumbel, ("mean", "lmgf"), "real"),
    Laplace: (_ce_laplace, ("eabs",), "real"),
    Exponential: (_ce_exponential, ("mean",), "positive"),
    Gamma: (_ce_gamma, ("mean", "elog"), "positive"),
    Beta: (_ce_beta, ("elog", "elog1m"), "unit"),
    Uniform: (_ce_uniform, (), "interval"),
    Pareto: (_ce_pareto, ("elog",), "pareto"),
}


def _q_bounds(q: Any) -> tuple[Any, Any]:
    if isinstance(q, Uniform):
        return _a(q.low), _a(q.high)
    if isinstance(q, Pareto):
        return _a(q.scale), _INF
    kind = _lookup(_Q_FAMILIES, type(q))[2]
    return {"real": (-_INF, _INF), "positive": (0.0, _INF), "unit": (0.0, 1.0)}[kind]


def _never_inside(kind_p: str, kind_q: str) -> bool:
    """True if a p of this support kind can never lie inside a q of that kind (KL = +inf)."""
    if kind_q == "real":
        return False
    if kind_p == "real":
        return True
    if kind_q == "positive":
        return False
    if kind_q in ("unit", "interval"):
        return kind_p in ("positive", "pareto")
    return kind_p in ("positive", "unit")  # q Pareto(s > 0): p has mass near 0


def _entropy(p: Any) -> jax.Array:
    h = dispatch_entropy(p)
    return p.entropy() if h is None else h


def _cross_family_kl(p: Any, q: Any) -> jax.Array:
    m = moments_of(p)
    ce_fn, needs, kind_q = _lookup(_Q_FAMILIES, type(q))
    lo_q, hi_q = _q_bounds(q)
    inside = (lo_q <= m["lo"]) & (m["hi"] <= hi_q)
    if not _never_inside(m["kind"], kind_q) and not all(k in m for k in needs):
        raise NoClosedFormError(f"No cross-family closed form for {type(p).__name__} and {type(q).__name__}.")
    if _never_inside(m["kind"], kind_q):
        shape = jnp.broadcast_shapes(jnp.shape(inside), p.batch_shape, q.batch_shape)
        return jnp.full(shape, _INF)
    ce = ce_fn(m, q)
    value = jnp.maximum(ce - _entropy(p), 0.0)
    value = jnp.where(jnp.isnan(value) & jnp.isinf(ce), _INF, value)
    return jnp.where(inside, value, _INF)


def cross_family_pairs() -> list[tuple[type, type]]:
    """The (p family, q family) pairs given a cross-family closed form (finite or +inf)."""
    pairs = []
    for tp in _P_FAMILIES:
        for tq, (_, needs, kind_q) in _Q_FAMILIES.items():
            if tp is tq:
                continue
            probe_keys = _PROBE_KEYS[tp]
            if _never_inside(_KIND[tp], kind_q) or all(k in probe_keys for k in needs):
                pairs.append((tp, tq))
    return pairs


_KIND = {Normal: "real", Laplace: "real", Gumbel: "real", Cauchy: "real", StudentT: "real",
         Exponential: "positive", Gamma: "positive", HalfNormal: "positive", LogNormal: "positive",
         Weibull: "positive", Beta: "unit", Pareto: "pareto", Uniform: "interval"}  # fmt: skip
_PROBE_KEYS = {
    Normal: ("mean", "var", "lmgf", "eabs"), Laplace: ("mean", "var", "lmgf", "eabs"),
    Gumbel: ("mean", "var", "lmgf"), Cauchy: ("mean", "var", "lmgf", "eabs"), StudentT: ("mean", "var", "lmgf"),
    Exponential: ("mean", "var", "elog", "lmgf", "eabs"), Gamma: ("mean", "var", "elog", "lmgf", "eabs"),
    HalfNormal: ("mean", "var", "elog", "lmgf"), LogNormal: ("mean", "var", "elog"),
    Weibull: ("mean", "var", "elog"), Beta: ("mean", "var", "elog", "elog1m"),
    Pareto: ("mean", "var", "elog"), Uniform: ("mean", "var", "elog", "elog1m", "lmgf", "eabs"),
}  # fmt: skip

for _tp, _tq in cross_family_pairs():
    register_kl(_tp, _tq)(_cross_family_kl)
