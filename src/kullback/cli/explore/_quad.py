"""The explorer's 1-D quadrature: log densities of a padded mixture p and a composite
double-exponential rule split at the points where the integrands change character.

p is a mixture of up to four slots (arrays of shape (4,): ``kind`` 0 normal / 1 Student-t /
2 Laplace, ``loc``, ``scale``, ``df``, ``logw`` = log weight, −inf for an unused slot), so one
compiled program serves every p of up to four components.

An integral ∫ f(x) dx over ℝ is split at sorted breakpoints b_0 ≤ … ≤ b_K: each finite piece
[b_k, b_{k+1}] by Gauss–Legendre rules of 32, 16 and 8 nodes, the tails (−∞, b_0] and
[b_K, ∞) by the exp-sinh rule x = b ± s·exp(π/2·sinh t) at steps h, 2h, 4h (nested: every
other node), made for algebraic (Student-t) tails. Breakpoints are the kinks (Laplace
locations), loc + scale·a for a in ``ANCHORS`` of every component of p and q (so every piece
is at most a scale and a half long where a density has its mass, and the exponential tails of a
Laplace are covered out to 40 scales), and the points where two of p's components cross (where
log p bends sharply: a pole of log p near the real axis). On each piece the integrand is
analytic; an n-node Gauss rule's error falls like ρ^(−2n) (ρ from the nearest pole), a
double-exponential rule's like exp(−c/h): each level doubles the digits of the one before, so
the three values give the error estimate e = |I₁ − I₂|² / max(|I₂ − I₃|, |I₁ − I₂|) of the finest,
plus the rounding of the sum.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

__all__ = ["ANCHORS", "CORE", "FAR", "component_logs", "log_p", "crossings", "rule", "integrate", "p_arrays"]

CORE = np.array([-3.0, -1.5, 0.0, 1.5, 3.0])  # where a component has its mass
FAR = np.array([-40.0, -16.0, -6.0, 6.0, 16.0, 40.0])  # its tails (a Laplace's reach 40 scales)
ANCHORS = np.sort(np.concatenate([CORE, FAR]))
_H = 1.0 / 8.0
_T_TAIL = 4.5  # exp-sinh t range: out to x − b ≈ s·e^70 (a Student-t(0.5) tail's remainder ≈ e^-35)
_GRID = 400  # the scan for crossings of p's components
_BISECT = 40
LOG_2PI = float(np.log(2.0 * np.pi))


def p_arrays(components: list) -> dict:
    """The padded slot arrays of a normalised list of 1-D components (see the module docstring)."""
    from ._state import KINDS, MAX_COMPONENTS

    n = len(components)
    pad = components + [components[0]] * (MAX_COMPONENTS - n)
    return {
        "kind": np.array([KINDS.index(c["kind"]) for c in pad], dtype=np.int32),
        "loc": np.array([c["loc"] for c in pad], dtype=float),
        "scale": np.array([c["scale"] for c in pad], dtype=float),
        "df": np.array([c["df"] for c in pad], dtype=float),
        "logw": np.array([np.log(c["weight"]) if i < n else -np.inf for i, c in enumerate(pad)], dtype=float),
    }


def normal_log(z, scale):
    return -0.5 * z**2 - jnp.log(scale) - 0.5 * LOG_2PI


def student_log(z, scale, df):
    return (gammaln(0.5 * (df + 1.0)) - gammaln(0.5 * df) - 0.5 * jnp.log(df * jnp.pi) - jnp.log(scale)
            - 0.5 * (df + 1.0) * jnp.log1p(z**2 / df))


def laplace_log(z, scale):
    return -jnp.abs(z) - jnp.log(2.0 * scale)


def component_logs(x, p):
    """log(w_j f_j(x)) for the four slots: shape x.shape + (4,) (−inf for unused slots)."""
    x = jnp.asarray(x)[..., None]
    z = (x - p["loc"]) / p["scale"]
    kind = p["kind"]
    logs = jnp.where(kind == 0, normal_log(z, p["scale"]),
                     jnp.where(kind == 1, student_log(z, p["scale"], p["df"]), laplace_log(z, p["scale"])))
    return jnp.where(jnp.isfinite(p["logw"]), logs + jnp.where(jnp.isfinite(p["logw"]), p["logw"], 0.0), -jnp.inf)


def log_p(x, p):
    """log p(x) of the padded mixture."""
    return jax.nn.logsumexp(component_logs(x, p), axis=-1)


def crossings(p, count: int = 6):
    """Up to ``count`` points where the dominant component of p changes (padded with p's first location).

    Found on a grid over loc ± 10·scale of every used slot, then bisected on the difference of the
    two components' log terms. Inputs are p only: computed once per solve, outside any fit.
    """
    used = jnp.isfinite(p["logw"])
    lo = jnp.min(jnp.where(used, p["loc"] - 10.0 * p["scale"], jnp.inf))
    hi = jnp.max(jnp.where(used, p["loc"] + 10.0 * p["scale"], -jnp.inf))
    grid = jnp.linspace(lo, hi, _GRID)
    top = jnp.argmax(component_logs(grid, p), axis=-1)
    change = top[1:] != top[:-1]
    (idx,) = jnp.nonzero(change, size=count, fill_value=0)
    found = jnp.arange(count) < jnp.sum(change)
    i, j = top[idx], top[idx + 1]

    def diff(x):
        logs = component_logs(x, p)
        return jnp.take_along_axis(logs, i[:, None], -1)[:, 0] - jnp.take_along_axis(logs, j[:, None], -1)[:, 0]

    def step(_, ab):
        a, b = ab
        m = 0.5 * (a + b)
        left = jnp.sign(diff(m)) == jnp.sign(diff(a))
        return jnp.where(left, m, a), jnp.where(left, b, m)

    a, b = jax.lax.fori_loop(0, _BISECT, step, (grid[idx], grid[idx + 1]))
    return jnp.where(found, 0.5 * (a + b), p["loc"][0])


def _ts_table(t_max: float):
    k = np.arange(-int(round(t_max / _H)), int(round(t_max / _H)) + 1)
    t = k * _H
    u = 0.5 * np.pi * np.sinh(t)
    return k, t, u


def _level_weights(k):
    """Weights of the h, 2h and 4h rules on the nodes k·h (the coarser rules use every other node)."""
    w1 = np.ones(k.shape)
    w2 = np.where(k % 2 == 0, 2.0, 0.0)
    w4 = np.where(k % 4 == 0, 4.0, 0.0)
    return np.stack([w1, w2, w4])


def _gauss_levels(orders=(32, 16, 8)):
    """Gauss–Legendre nodes of several orders on [-1, 1], concatenated; weights (levels, nodes)."""
    xs, ws = zip(*(np.polynomial.legendre.leggauss(n) for n in orders))
    x = np.concatenate(xs)
    w = np.zeros((len(orders), x.size))
    start = 0
    for i, wi in enumerate(ws):
        w[i, start:start + wi.size] = wi
        start += wi.size
    return x, w


_FIN_X, _FIN_L = _gauss_levels()
_KT, _TT, _UT = _ts_table(_T_TAIL)
_TAIL_X = np.exp(_UT)  # on (0, ∞)
_TAIL_W = _H * 0.5 * np.pi * np.cosh(_TT) * np.exp(_UT)
_TAIL_L = _level_weights(_KT) * _TAIL_W


def rule(points, tail_scale, *, level: int | None = None):
    """Nodes x (shape (n,)) and weights (shape (3, n): the three levels) over ℝ split at ``points``.

    ``level``: that level alone (weights (1, n); 0 the finest), for objectives that need no error.
    ``points`` need not be sorted (they are, here); repeated points give empty pieces.
    ``tail_scale`` sets the exp-sinh rules' length scale beyond the outermost points. Nodes
    are differentiable in the points: where the points follow q, so do the nodes, and the
    derivatives of Σ w·f are those of the rule that follows q's kink (a Laplace q's Hessian has a
    δ at its location that fixed nodes would miss).
    """
    fin_x, fin_l, tail_l = _FIN_X, _FIN_L, _TAIL_L
    if level is not None:
        keep = _FIN_L[level] > 0
        fin_x, fin_l = _FIN_X[keep], _FIN_L[level : level + 1, keep]
        tail_l = _TAIL_L[level : level + 1]
        if level > 0:  # the tails' coarser levels use every other node: keep those only
            used = tail_l[0] > 0
            return _rule_from(points, tail_scale, fin_x, fin_l, _TAIL_X[used], tail_l[:, used])
    return _rule_from(points, tail_scale, fin_x, fin_l, _TAIL_X, tail_l)


def _rule_from(points, tail_scale, fin_x, fin_l, tail_x, tail_l):
    b, s = jnp.sort(points), tail_scale
    c, r = 0.5 * (b[1:] + b[:-1]), 0.5 * (b[1:] - b[:-1])
    x_fin = (c[:, None] + r[:, None] * fin_x).ravel()
    w_fin = (r[None, :, None] * fin_l[:, None, :]).reshape(fin_l.shape[0], -1)
    x = jnp.concatenate([b[0] - s * tail_x, x_fin, b[-1] + s * tail_x])
    w = jnp.concatenate([s * tail_l, w_fin, s * tail_l], axis=1)
    return x, w


def integrate(values, weights):
    """(value, error estimate) of Σ w·f for f values at the rule's nodes (non-finite f counts as is)."""
    safe = values
    i1, i2, i4 = weights @ safe
    e1, e2 = jnp.abs(i1 - i2), jnp.abs(i2 - i4)
    rounding = 1e-15 * (weights[0] @ jnp.abs(safe))
    err = jnp.where(e1 > 0, e1**2 / jnp.maximum(jnp.maximum(e1, e2), 1e-300), 0.0) + rounding
    return i1, err
