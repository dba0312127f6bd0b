"""The explorer's 1-D fits: one compiled program per q family, p's slots as traced inputs.

The program takes p (four padded slots, see :mod:`._quad`), the breakpoints of p, the starts of
the reverse multi-start and of the forward fit (built on the host from p), the parameter bounds
and the plotting grid, and returns the forward fit, every reverse start's local optimum, the
quadrature measures at each of them and the densities on the grid. New values of the same
family never recompile it.

q families, by their unconstrained parameters θ:
  normal (μ, log σ); laplace (μ, log b); student_t (μ, log σ, 1/ν: the normal limit ν → ∞ is the bound 1/ν = 10⁻⁴, reached in a step or two, where log ν walks one unit a step);
  mixture2 (logit w₁, μ₁, log σ₁, μ₂, log σ₂), a two-component normal mixture.

Forward fits (argmin KL(p‖q) = argmax E_p[log q]): normal by p's moments, Laplace by p's median
(bisection on p's CDF) and mean absolute deviation about it (exact), Student-t by Newton on the
quadrature of E_p[log q], mixture2 by EM with p's quadrature nodes as weighted points, polished
by Newton. Reverse fits (argmin KL(q‖p) = ∫ q (log q − log p)): Newton on the quadrature from
every start.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.scipy.special import betainc, ndtr

from . import _quad
from ._newton import minimize

__all__ = ["FAMILIES", "log_q", "q_params", "program"]

FAMILIES = ("normal", "student_t", "laplace", "mixture2")
_EM_STEPS = 200


def _mix2(theta):
    w1 = jax.nn.sigmoid(theta[0])
    return w1, theta[1], jnp.exp(theta[2]), theta[3], jnp.exp(theta[4])


def log_q(family: str, x, theta):
    """log q_θ(x) of a family (θ unconstrained, see the module docstring)."""
    if family == "mixture2":
        w1, m1, s1, m2, s2 = _mix2(theta)
        a = jnp.log(w1) + _quad.normal_log((x - m1) / s1, s1)
        b = jnp.log1p(-w1) + _quad.normal_log((x - m2) / s2, s2)
        return jnp.logaddexp(a, b)
    z = (x - theta[0]) * jnp.exp(-theta[1])
    if family == "normal":
        return _quad.normal_log(z, jnp.exp(theta[1]))
    if family == "laplace":
        return _quad.laplace_log(z, jnp.exp(theta[1]))
    return _quad.student_log(z, jnp.exp(theta[1]), 1.0 / theta[2])


def q_params(family: str, theta) -> dict:
    """The constrained parameters of θ (arrays), as the result reports them."""
    if family == "mixture2":
        w1, m1, s1, m2, s2 = _mix2(theta)
        return {"weights": jnp.stack([w1, 1.0 - w1]), "locs": jnp.stack([m1, m2]), "scales": jnp.stack([s1, s2])}
    out = {"loc": theta[0], "scale": jnp.exp(theta[1])}
    if family == "student_t":
        out["df"] = 1.0 / theta[2]
    return out


def _mix2_crossings(theta):
    """The (up to two) points where q's two weighted components are equal (m₁ where there are none).

    They are breakpoints only: where the two components (nearly) coincide the roots are
    ill-conditioned (a and b vanish) and their derivatives are not finite, so they are taken at
    θ held fixed. The quadrature of a smooth integrand does not depend on where a piece is split
    (beyond the rule's own error), so this changes no derivative that matters.
    """
    w1, m1, s1, m2, s2 = _mix2(jax.lax.stop_gradient(theta))
    a = 0.5 / s2**2 - 0.5 / s1**2
    b = m1 / s1**2 - m2 / s2**2
    c = jnp.log(w1 / s1) - jnp.log1p(-w1) + jnp.log(s2) - 0.5 * m1**2 / s1**2 + 0.5 * m2**2 / s2**2
    disc = b**2 - 4.0 * a * c
    root = jnp.sqrt(jnp.maximum(disc, 0.0))
    qq = -0.5 * (b + jnp.where(b >= 0, root, -root))
    linear = jnp.abs(a) < 1e-12 * (jnp.abs(b) + 1e-300)
    r1 = jnp.where(linear, -c / jnp.where(b == 0, 1.0, b), qq / jnp.where(a == 0, 1.0, a))
    r2 = jnp.where(linear, m1, c / jnp.where(qq == 0, 1.0, qq))
    return jnp.where((disc >= 0) & jnp.isfinite(jnp.stack([r1, r2])), jnp.stack([r1, r2]), m1)


def _q_points(family: str, theta, anchors=_quad.ANCHORS):
    """Breakpoints that follow q: loc + scale·anchors (both components, and their two crossings)."""
    if family != "mixture2":
        return theta[0] + jnp.exp(theta[1]) * anchors, jnp.exp(theta[1])
    w1, m1, s1, m2, s2 = _mix2(theta)
    pts = jnp.concatenate([m1 + s1 * anchors, m2 + s2 * anchors, _mix2_crossings(theta)])
    return pts, jnp.maximum(s1, s2)


def _nodes(family, theta, p_points, p_scale, anchors=_quad.ANCHORS, level=None):
    q_pts, q_scale = _q_points(family, theta, anchors)
    return _quad.rule(jnp.concatenate([p_points, q_pts]), jnp.maximum(p_scale, q_scale), level=level)


def measures(family, theta, p, pts, p_scale):
    """(value, error) of KL(p‖q), KL(q‖p), H(p, q) and H(p) by the quadrature at θ (all breakpoints)."""
    x, w = _nodes(family, theta, pts["all"], p_scale)
    lp, lq = _quad.log_p(x, p), log_q(family, x, theta)
    dp, dq = jnp.exp(lp), jnp.exp(lq)
    safe_lq = jnp.where(jnp.isfinite(lq), lq, 0.0)
    terms = {
        "kl_p_q": jnp.where(dp > 0, dp * (lp - safe_lq), 0.0),
        "kl_q_p": jnp.where(dq > 0, dq * (lq - jnp.where(jnp.isfinite(lp), lp, 0.0)), 0.0),
        "cross_entropy_p_q": jnp.where(dp > 0, -dp * safe_lq, 0.0),
        "entropy_p": jnp.where(dp > 0, -dp * lp, 0.0),
    }
    return {k: _quad.integrate(v, w) for k, v in terms.items()}


def _reverse_objective(family, p, pts, p_scale, level, theta):
    """KL(q‖p) by one level of the rule on q's breakpoints and p's core ones (where log p has structure)."""
    x, w = _nodes(family, theta, pts["core"], p_scale, level=level)
    lq = log_q(family, x, theta)
    dq = jnp.exp(lq)
    return w[0] @ jnp.where(dq > 0, dq * (lq - _quad.log_p(x, p)), 0.0)


def _forward_objective(family, p, pts, p_scale, level, theta):
    """−E_p[log q] by one level of the rule on p's breakpoints and q's core ones."""
    x, w = _nodes(family, theta, pts["all"], p_scale, _quad.CORE, level=level)
    dp = jnp.exp(_quad.log_p(x, p))
    return -(w[0] @ jnp.where(dp > 0, dp * log_q(family, x, theta), 0.0))


def _cdf(x, p):
    z = (x - p["loc"]) / p["scale"]
    df = p["df"]
    tail = 0.5 * betainc(0.5 * df, 0.5, df / (df + z**2))
    cdfs = jnp.where(p["kind"] == 0, ndtr(z),
                     jnp.where(p["kind"] == 1, jnp.where(z > 0, 1.0 - tail, tail),
                               0.5 + 0.5 * jnp.sign(z) * -jnp.expm1(-jnp.abs(z))))
    return jnp.sum(jnp.where(jnp.isfinite(p["logw"]), jnp.exp(p["logw"]) * cdfs, 0.0))


def _median(p):
    """p's median by bisection on its CDF between the least and the largest component median."""
    used = jnp.isfinite(p["logw"])
    lo = jnp.min(jnp.where(used, p["loc"], jnp.inf))
    hi = jnp.max(jnp.where(used, p["loc"], -jnp.inf))

    def step(_, ab):
        a, b = ab
        m = 0.5 * (a + b)
        below = _cdf(m, p) < 0.5
        return jnp.where(below, m, a), jnp.where(below, b, m)

    a, b = jax.lax.fori_loop(0, 100, step, (lo, hi))
    return 0.5 * (a + b)


def _moments(p):
    w = jnp.where(jnp.isfinite(p["logw"]), jnp.exp(p["logw"]), 0.0)
    s2 = p["scale"] ** 2
    var = jnp.where(p["kind"] == 0, s2, jnp.where(p["kind"] == 2, 2.0 * s2, s2 * p["df"] / (p["df"] - 2.0)))
    mean = w @ p["loc"]
    return mean, w @ (var + p["loc"] ** 2) - mean**2


def _em(p, pts, p_scale, theta):
    x, w = _quad.rule(pts["all"], p_scale, level=1)
    a = w[0] * jnp.exp(_quad.log_p(x, p))

    def step(_, th):
        w1, m1, s1, m2, s2 = _mix2(th)
        l1 = jnp.log(w1) + _quad.normal_log((x - m1) / s1, s1)
        l2 = jnp.log1p(-w1) + _quad.normal_log((x - m2) / s2, s2)
        r1 = jax.nn.sigmoid(l1 - l2)
        n1, n2 = a @ r1, a @ (1.0 - r1)
        m1, m2 = (a * r1) @ x / n1, (a * (1.0 - r1)) @ x / n2
        v1, v2 = (a * r1) @ (x - m1) ** 2 / n1, (a * (1.0 - r1)) @ (x - m2) ** 2 / n2
        w1 = jnp.clip(n1 / (n1 + n2), 1e-6, 1.0 - 1e-6)
        return jnp.stack([jnp.log(w1) - jnp.log1p(-w1), m1, 0.5 * jnp.log(v1), m2, 0.5 * jnp.log(v2)])

    return jax.lax.fori_loop(0, _EM_STEPS, step, theta)


def _forward(family, p, pts, p_scale, starts, lo, hi):
    """θ of the forward fit, its objective, converged flag and iterations (moment/median fits: exact)."""
    if family == "normal":
        mean, var = _moments(p)
        theta = jnp.stack([mean, 0.5 * jnp.log(var)])
        return theta, jnp.asarray(True), jnp.asarray(0)
    if family == "laplace":
        med = _median(p)
        x, w = _quad.rule(jnp.concatenate([pts["all"], med[None]]), p_scale)
        dp = jnp.exp(_quad.log_p(x, p))
        mad = w[0] @ (dp * jnp.abs(x - med))
        return jnp.stack([med, jnp.log(mad)]), jnp.asarray(True), jnp.asarray(0)
    prepare = functools.partial(_em, p, pts, p_scale) if family == "mixture2" else None
    theta, value, iters, ok = _search_polish(functools.partial(_forward_objective, family, p, pts, p_scale),
                                             starts, lo, hi, prepare=prepare)
    best = jnp.argmin(jnp.where(jnp.isfinite(value), value, jnp.inf))
    return theta[best], ok[best], iters[best]


def _distinct_map(fn, xs, source):
    """``fn`` over the rows of ``xs`` one after another (``lax.map``), each distinct row once.

    ``source`` (n,): the index of each row's first copy; a copy takes its first copy's result.
    A vmapped ``while_loop`` steps every row until the slowest has converged, and a repeated row
    (p padded to a fixed count of starts) costs as much as a new one; here a row costs its own
    iterations and a copy none.
    """
    shapes = jax.eval_shape(fn, xs[0])
    skip = lambda x: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)  # noqa: E731
    first = source == jnp.arange(source.shape[0])
    out = jax.lax.map(lambda a: jax.lax.cond(a[1], fn, skip, a[0]), (xs, first))
    return jax.tree.map(lambda a: a[source], out)


def _search_polish(objective, starts, lo, hi, *, prepare=None):
    """Newton from every distinct start on the finest level of the rule (one solver: one copy to compile).

    ``starts``: {"theta": (n, k) starts, "source": (n,) the index of each start's first copy}.
    """
    fine = functools.partial(objective, 0)

    def solve(t):
        t = t if prepare is None else prepare(t)
        theta, value, _, it, ok = minimize(fine, t, lo, hi)
        return theta, value, it, ok

    return _distinct_map(solve, starts["theta"], starts["source"])


@functools.partial(jax.jit, static_argnames=("family",))
def program(p, p_points, p_scale, reverse_starts, forward_starts, bounds, grid, *, family):
    """The whole 1-D solve for one q family (see the module docstring); returns a dict of arrays.

    ``p_points``: {"core": loc + scale·CORE, "far": loc + scale·FAR} of p's slots;
    ``reverse_starts`` / ``forward_starts``: {"theta": (n, k), "source": (n,)} (see :func:`_search_polish`).
    """
    cross = _quad.crossings(p)
    core = jnp.concatenate([p_points["core"], cross])
    p_points = {"core": core, "all": jnp.concatenate([core, p_points["far"]])}
    theta_f, ok_f, it_f = _forward(family, p, p_points, p_scale, forward_starts, *bounds["forward"])
    lo, hi = bounds["reverse"]
    theta_r, value_r, it_r, ok_r = _search_polish(functools.partial(_reverse_objective, family, p, p_points, p_scale),
                                                  reverse_starts, lo, hi)
    m_f = measures(family, theta_f, p, p_points, p_scale)
    m_r = _distinct_map(lambda t: measures(family, t, p, p_points, p_scale), theta_r, reverse_starts["source"])
    best = jnp.argmin(jnp.where(jnp.isfinite(m_r["kl_q_p"][0]), m_r["kl_q_p"][0], jnp.inf))
    return {
        "forward": {"theta": theta_f, "params": q_params(family, theta_f), "converged": ok_f, "iterations": it_f,
                    "measures": m_f},
        "reverse": {"theta": theta_r, "params": jax.vmap(functools.partial(q_params, family))(theta_r),
                    "objective": value_r, "iterations": it_r, "converged": ok_r,
                    "measures": m_r, "best": best},
        "grid": {"p": jnp.exp(_quad.log_p(grid, p)), "forward": jnp.exp(log_q(family, grid, theta_f)),
                 "reverse": jnp.exp(log_q(family, grid, theta_r[best]))},
        "crossings": p_points,
    }
