"""The explorer's 2-D mode: p a mixture of up to four 2-D Gaussians, q a full-covariance Gaussian.

Forward: moment matching (exact): q's mean and covariance are p's. Reverse: Newton on
KL(q‖p) = −H(q) − E_q[log p] over θ = (μ₁, μ₂, log L₁₁, L₂₁, log L₂₂) (Σ = L Lᵀ), E_q[log p] by
the Gauss–Hermite product rule (24 × 24 nodes) in q's whitened coordinates x = μ + L z, from
every component of p and from p's moments; distinct optima kept, the global first.

Measures: H(p) = −Σ_j w_j E_{p_j}[log p] and KL(q‖p) by the trapezoidal product rule with step
1/6 on z ∈ [−8, 8]² in each Gaussian's whitened coordinates (the rule converges geometrically for
these analytic, Gaussian-weighted integrands; the nested rules at 2h and 4h give the error
estimate as in :mod:`._quad`); H(p, q) = −E_p[log q] in closed form (log q is quadratic), and
KL(p‖q) = H(p, q) − H(p). Every 2×2 factor and inverse is written out (no batched Cholesky:
see the DESIGN's note on 2-core deadlocks).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ._newton import minimize

__all__ = ["program", "inputs_2d", "solve_2d", "REVERSE_STARTS_2D", "GRID_2D"]

REVERSE_STARTS_2D = 5
GRID_2D = 81
_GH = 24
_H, _Z = 1.0 / 6.0, 8.0
LOG_2PI = math.log(2.0 * math.pi)


def _trapezoid_levels():
    z = np.arange(-_Z, _Z + 1e-12, _H)
    k = np.arange(z.size)
    levels = []
    for step in (1, 2, 4):
        w = np.where(k % step == 0, step * _H, 0.0)
        w[[0, -1]] *= 0.5  # the end points (the integrand is ~e^-32 there)
        levels.append(w)
    zz = np.stack(np.meshgrid(z, z, indexing="ij"), -1).reshape(-1, 2)
    phi = np.exp(-0.5 * np.sum(zz**2, -1)) / (2 * np.pi)
    w = np.stack([np.outer(l, l).ravel() for l in levels]) * phi
    return zz, w


_TZ, _TW = _trapezoid_levels()
_gz, _gw = np.polynomial.hermite_e.hermegauss(_GH)
_GZ = np.stack(np.meshgrid(_gz, _gz, indexing="ij"), -1).reshape(-1, 2)
_GW = np.outer(_gw, _gw).ravel() / np.sum(_gw) ** 2


def _chol(sd, corr):
    """L of [[s1², r s1 s2], [r s1 s2, s2²]] (shape (..., 2, 2)), written out."""
    zero = jnp.zeros_like(sd[..., 0])
    return jnp.stack([jnp.stack([sd[..., 0], zero], -1),
                      jnp.stack([corr * sd[..., 1], sd[..., 1] * jnp.sqrt(1.0 - corr**2)], -1)], -2)


def _lower(theta):
    """(μ, L) of θ = (μ₁, μ₂, log L₁₁, L₂₁, log L₂₂)."""
    zero = jnp.zeros_like(theta[0])
    L = jnp.stack([jnp.stack([jnp.exp(theta[2]), zero]), jnp.stack([theta[3], jnp.exp(theta[4])])])
    return theta[:2], L


def _gauss_log(x, mean, L):
    """log N(x; mean, L Lᵀ) for lower-triangular 2×2 L (forward substitution written out)."""
    r = x - mean
    z0 = r[..., 0] / L[..., 0, 0]
    z1 = (r[..., 1] - L[..., 1, 0] * z0) / L[..., 1, 1]
    return -0.5 * (z0**2 + z1**2) - jnp.log(L[..., 0, 0] * L[..., 1, 1]) - LOG_2PI


def log_p(x, p):
    """log p(x) of the padded 2-D mixture: x (..., 2)."""
    logs = _gauss_log(x[..., None, :], p["mean"], p["L"])
    used = jnp.isfinite(p["logw"])
    return jax.nn.logsumexp(jnp.where(used, logs + jnp.where(used, p["logw"], 0.0), -jnp.inf), axis=-1)


def _reverse_objective(p, theta):
    mean, L = _lower(theta)
    x = mean + _GZ @ L.T
    entropy_q = 1.0 + LOG_2PI + jnp.log(L[0, 0] * L[1, 1])
    return -entropy_q - _GW @ log_p(x, p)


def _integrate(values):
    i1, i2, i4 = _TW @ values
    e1, e2 = jnp.abs(i1 - i2), jnp.abs(i2 - i4)
    err = jnp.where(e1 > 0, e1**2 / jnp.maximum(jnp.maximum(e1, e2), 1e-300), 0.0) + 1e-15 * (_TW[0] @ jnp.abs(values))
    return i1, err


def _kl_q_p(p, mean, L):
    x = mean + _TZ @ L.T
    lq, lp = _gauss_log(x, mean, L), log_p(x, p)
    return _integrate(lq - lp)


def _entropy_p(p):
    x = p["mean"][:, None, :] + jnp.einsum("jab,nb->jna", p["L"], _TZ)  # (4, n, 2)
    vals = jax.vmap(lambda xs: _integrate(-log_p(xs, p)))(x)
    w = jnp.where(jnp.isfinite(p["logw"]), jnp.exp(p["logw"]), 0.0)
    return w @ vals[0], w @ vals[1]


def _cross_entropy(p, mean, cov):
    """−E_p[log N(mean, cov)] in closed form."""
    det = cov[0, 0] * cov[1, 1] - cov[0, 1] ** 2
    inv = jnp.array([[cov[1, 1], -cov[0, 1]], [-cov[1, 0], cov[0, 0]]]) / det
    w = jnp.where(jnp.isfinite(p["logw"]), jnp.exp(p["logw"]), 0.0)
    r = p["mean"] - mean
    second = jnp.einsum("ab,jba->j", inv, p["cov"]) + jnp.einsum("ja,ab,jb->j", r, inv, r)
    return 0.5 * (LOG_2PI * 2 + jnp.log(det)) + 0.5 * w @ second


def _measures(p, mean, L, h_p):
    cov = L @ L.T
    ce = _cross_entropy(p, mean, cov)
    kl_qp = _kl_q_p(p, mean, L)
    return {"kl_p_q": (ce - h_p[0], h_p[1]), "kl_q_p": kl_qp, "cross_entropy_p_q": (ce, jnp.zeros_like(ce))}


@jax.jit
def program(p, reverse_starts, bounds, gx, gy):
    """The whole 2-D solve (see the module docstring); returns a dict of arrays."""
    p = dict(p, L=_chol(p["sd"], p["corr"]))
    p["cov"] = p["L"] @ jnp.swapaxes(p["L"], -1, -2)
    w = jnp.where(jnp.isfinite(p["logw"]), jnp.exp(p["logw"]), 0.0)
    mean_f = w @ p["mean"]
    second = jnp.einsum("j,jab->ab", w, p["cov"] + p["mean"][:, :, None] * p["mean"][:, None, :])
    cov_f = second - jnp.outer(mean_f, mean_f)
    l00 = jnp.sqrt(cov_f[0, 0])
    l10 = cov_f[1, 0] / l00
    L_f = jnp.array([[l00, 0.0], [l10, jnp.sqrt(cov_f[1, 1] - l10**2)]])
    h_p = _entropy_p(p)
    lo, hi = bounds
    f = functools.partial(_reverse_objective, p)
    theta_r, value_r, _, it_r, ok_r = jax.vmap(lambda t: minimize(f, t, lo, hi))(reverse_starts)
    means, Ls = jax.vmap(_lower)(theta_r)
    m_r = jax.vmap(lambda m, L: _measures(p, m, L, h_p))(means, Ls)
    best = jnp.argmin(jnp.where(jnp.isfinite(m_r["kl_q_p"][0]), m_r["kl_q_p"][0], jnp.inf))
    xy = jnp.stack(jnp.meshgrid(gx, gy, indexing="xy"), -1)  # rows are y, columns x
    return {
        "forward": {"mean": mean_f, "cov": cov_f, "measures": _measures(p, mean_f, L_f, h_p)},
        "reverse": {"mean": means, "cov": Ls @ jnp.swapaxes(Ls, -1, -2), "objective": value_r, "iterations": it_r,
                    "converged": ok_r, "measures": m_r, "best": best, "theta": theta_r},
        "entropy_p": h_p,
        "grid": {"p": jnp.exp(log_p(xy, p)), "forward": jnp.exp(_gauss_log(xy, mean_f, L_f)),
                 "reverse": jnp.exp(_gauss_log(xy, means[best], Ls[best]))},
    }


def _theta_of(mean, cov) -> list:
    l00 = math.sqrt(cov[0][0])
    l10 = cov[1][0] / l00
    return [mean[0], mean[1], math.log(l00), l10, 0.5 * math.log(cov[1][1] - l10**2)]


def _cov_of(c: dict) -> list:
    (s1, s2), r = c["sd"], c["corr"]
    return [[s1 * s1, r * s1 * s2], [r * s1 * s2, s2 * s2]]


def p_moments_2d(comps: list) -> tuple[list, list]:
    mean = [sum(c["weight"] * c["mean"][a] for c in comps) for a in range(2)]
    cov = [[sum(c["weight"] * (_cov_of(c)[a][b] + c["mean"][a] * c["mean"][b]) for c in comps) - mean[a] * mean[b]
            for b in range(2)] for a in range(2)]
    return mean, cov


def inputs_2d(state: dict) -> dict:
    from ._state import MAX_COMPONENTS

    comps = state["p2"]
    n = len(comps)
    pad = comps + [comps[0]] * (MAX_COMPONENTS - n)
    p = {"mean": np.array([c["mean"] for c in pad], dtype=float), "sd": np.array([c["sd"] for c in pad], dtype=float),
         "corr": np.array([c["corr"] for c in pad], dtype=float),
         "logw": np.array([math.log(c["weight"]) if i < n else -math.inf for i, c in enumerate(pad)])}
    starts = [_theta_of(c["mean"], _cov_of(c)) for c in comps] + [_theta_of(*p_moments_2d(comps))]
    starts += [starts[0]] * (REVERSE_STARTS_2D - len(starts))
    lo = np.array([-1e4, -1e4, math.log(1e-4), -1e4, math.log(1e-4)])
    hi = np.array([1e4, 1e4, math.log(1e4), 1e4, math.log(1e4)])
    reach = [(min(c["mean"][a] - 3.5 * c["sd"][a] for c in comps), max(c["mean"][a] + 3.5 * c["sd"][a] for c in comps))
             for a in range(2)]
    return {"p": p, "reverse_starts": np.array(starts[:REVERSE_STARTS_2D]), "bounds": (lo, hi),
            "gx": np.linspace(*reach[0], GRID_2D), "gy": np.linspace(*reach[1], GRID_2D)}


def _names(comps: list) -> list[str]:
    names = [f"p2[{i}]" for i in range(len(comps))] + ["moments"]
    return (names + [names[0]] * REVERSE_STARTS_2D)[:REVERSE_STARTS_2D]


def _fit(mean, cov, measures, i=None) -> dict:
    from ._records import estimate

    pick = (lambda a: np.asarray(a)) if i is None else (lambda a: np.asarray(a)[i])
    m = measures
    return {"family": "gaussian_full", "params": {"mean": pick(mean).tolist(), "cov": pick(cov).tolist()},
            "kl_p_q": estimate(pick(m["kl_p_q"][0]), pick(m["kl_p_q"][1])),
            "kl_q_p": estimate(pick(m["kl_q_p"][0]), pick(m["kl_q_p"][1])),
            "cross_entropy_p_q": estimate(pick(m["cross_entropy_p_q"][0]), 0.0, kl=False, method="closed_form")}


def _drawn(density) -> list:
    """A grid of densities for the contours, to 10⁻⁹ of its peak: 3 × 81² numbers at 17 digits
    took 18 ms to write as JSON (and 430 kB to send and parse); none of them is a reported number."""
    a = np.asarray(density, dtype=float)
    peak = float(np.max(a)) if a.size else 0.0
    digits = 9 - math.ceil(math.log10(peak)) if peak > 0 else 0
    return np.round(a, digits).tolist()


def solve_2d(state: dict) -> dict:
    from ._records import estimate

    inputs = inputs_2d(state)
    out = jax.device_get(program(**inputs))
    comps, names = state["p2"], _names(state["p2"])
    fwd, rev = out["forward"], out["reverse"]
    forward = _fit(fwd["mean"], fwd["cov"], fwd["measures"])
    forward.update(method="moment_matching", status="exact", message="the Gaussian with p's mean and covariance (exact)")
    kl = np.asarray(rev["measures"]["kl_q_p"][0])
    found = []
    for i in np.argsort(kl, kind="stable"):
        th = np.asarray(rev["theta"][i])
        if np.isfinite(kl[i]) and not any(abs(kl[i] - kl[j]) <= 1e-8 * (1 + abs(kl[i]))
                                          and np.all(np.abs(th - np.asarray(rev["theta"][j])) <= 1e-3 * (1 + np.abs(th)))
                                          for j in found):
            found.append(int(i))
    optima = [dict(_fit(rev["mean"], rev["cov"], rev["measures"], i), **{"global": k == 0, "start": names[i],
                   "converged": bool(rev["converged"][i]), "iterations": int(rev["iterations"][i])})
              for k, i in enumerate(found)]
    optima = [{k: o[k] for k in ("params", "kl_q_p", "global", "start", "converged", "iterations")} for o in optima]
    g = found[0]
    reverse = _fit(rev["mean"], rev["cov"], rev["measures"], g)
    reverse.update(method="gauss_hermite_newton", status="converged" if rev["converged"][g] else "not_converged",
                   optima=optima, message=f"{len(optima)} distinct local optim{'um' if len(optima) == 1 else 'a'} "
                                          f"from {len(dict.fromkeys(names))} starts; the global one is first")
    mean, cov = p_moments_2d(comps)
    return {
        "mode": "2d",
        "p": {"components": comps, "mean": mean, "cov": cov,
              "entropy": estimate(out["entropy_p"][0], out["entropy_p"][1], kl=False, method="trapezoid")},
        "grid": {"x": inputs["gx"].tolist(), "y": inputs["gy"].tolist(),
                 **{k: _drawn(v) for k, v in out["grid"].items()}},
        "forward": forward, "reverse": reverse,
    }
