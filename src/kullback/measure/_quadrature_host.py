"""The host-driven G7-K15 quadrature of a single pair (see :mod:`kullback.measure._quadrature`).

One small compiled program evaluates log p and log q at a fixed-size batch of nodes (reused by
every pair of the same types and every round); the subdivision, the sums and the test for a
divergent tail run in NumPy.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["_BATCH", "_divergent_tail", "_integrate_host", "_log_density"]


def _log_density(d: Any, x: jax.Array) -> jax.Array:
    inside = d.support.check(x)
    return jnp.where(inside, d.log_prob(x), -jnp.inf)


# G7-K15 (QUADPACK qk15): Kronrod nodes on [-1, 1] (the Gauss nodes are every other one) and weights.
_XK = np.array([0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
                0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
                0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
                0.207784955007898467600689403773245, 0.0])
_WK = np.array([0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
                0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
                0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
                0.204432940075298892414161999234649, 0.209482141084727828012999174891714])
_WG = np.array([0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
                0.381830050505118944950369775488975, 0.417959183673469387755102040816327])
_NODES = np.concatenate([-_XK[:-1], _XK[::-1]])  # 15 nodes, ascending
_W15 = np.concatenate([_WK[:-1], _WK[::-1]])
_W7 = np.zeros(15)
_W7[[1, 3, 5, 7, 9, 11, 13]] = np.concatenate([_WG[:-1], _WG[::-1]])
_BATCH = 64  # intervals per evaluation: the node batch has one fixed shape, so one compile per type


@jax.jit
def _log_densities(p: Any, q: Any, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """log p and log q (−inf outside their supports) at a batch of points: the one compiled step."""
    return _log_density(p, x), (jnp.zeros_like(x) if q is None else _log_density(q, x))


_TAIL_WINDOW = 8  # doublings of x over which x·f(x) must shrink by _TAIL_DECAY for the tail to converge
_TAIL_DECAY = 0.9


def _divergent_tail(kind: str, p: Any, q: Any, points: np.ndarray) -> tuple[float, str] | None:
    """The sign and reason of an infinite integral from an unbounded tail, or None.

    ∫^∞ f dx converges only if x·f(x) → 0 (f's contribution over [x, 2x] is about x·f(x)·log 2).
    The integrand f is evaluated at x = a ± s·2^k (a the outermost anchor of p, s a sixteenth of
    the anchors' span, about one sd) out to x ≈ finfo.max^(1/4) (where log densities
    with x² terms are still finite): if x·f(x) is non-zero and has shrunk by less than 10% over the
    last eight doublings (slower than x^−0.015), or p > 0 where q underflowed to 0, the tail's
    contribution grows without bound as the range widens. Example: p = Cauchy, q = Normal, where
    p ∝ x⁻² and log p − log q ≈ x²/2, so x·f(x) ≈ x/2π; a Student-t(2) p gives x·f(x) → constant.
    """
    dtype = jnp.result_type(float)
    x_max = float(jnp.finfo(dtype).max) ** 0.25
    finite = points[np.isfinite(points)]
    per_side = _BATCH * 15 // 2
    tails = []
    for side, edge in ((-1.0, points[0]), (1.0, points[-1])):
        if np.isinf(edge):
            a = (finite.min() if side < 0 else finite.max()) if finite.size else 0.0
            # steps on p's own scale (the span of its anchors), so a narrow p far from 0 is probed
            # where its mass falls off, not first at twice its distance from 0
            s = float(np.ptp(finite)) / 16.0 if finite.size > 1 else 0.0
            if not s > 0.0:
                s = max(1.0, abs(a))
            s = max(s, x_max * 2.0 ** -(per_side - 1))
            k = np.arange(int(np.floor(np.log2(x_max / s))) + 1)
            tails.append((side, a + side * s * 2.0 ** k))
    if not tails:
        return None
    x = np.concatenate([t for _, t in tails])
    flat = np.full(_BATCH * 15, x[0])
    flat[: x.size] = x
    log_p, log_q = (np.asarray(v, dtype=float)[: x.size] for v in _log_densities(p, q, jnp.asarray(flat, dtype=dtype)))
    start = 0
    for side, t in tails:
        lp, lq = log_p[start:start + t.size], log_q[start:start + t.size]
        start += t.size
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            # where p's density underflows in the working precision its contribution is 0 there,
            # whatever log q is (a Gumbel q's log density is -inf in float long before p's mass ends)
            positive = lp > np.log(float(jnp.finfo(dtype).tiny))
            density = np.exp(np.where(positive, lp, 0.0))
            if kind != "entropy" and np.any(positive & (lq == -np.inf)):
                return np.inf, (f"p > 0 where q's density underflows to 0 in the {'upper' if side > 0 else 'lower'} "
                                "tail (q's tail is far lighter than p's), so the integral is +inf")
            terms = {"kl": lp - lq, "cross_entropy": -lq, "entropy": -lp}[kind]
            g = np.where(positive, np.abs(t) * density * np.where(positive, terms, 0.0), 0.0)
        m = min(_TAIL_WINDOW, t.size - 1)
        if m < 2 or np.isnan(g[-1]) or np.isnan(g[-1 - m]):
            continue
        last, before = g[-1], g[-1 - m]
        if last != 0 and np.sign(last) == np.sign(before) and abs(last) >= _TAIL_DECAY * abs(before):
            name = {"kl": "p·(log p − log q)", "cross_entropy": "−p·log q", "entropy": "−p·log p"}[kind]
            side_name = "upper" if side > 0 else "lower"
            return float(np.sign(last)) * np.inf, (
                f"{name} does not decay faster than 1/|x| in the {side_name} tail (|x|·integrand is "
                f"{abs(before):.3g} at x = {t[-1 - m]:.3g} and {abs(last):.3g} at x = {t[-1]:.3g}): p has heavier "
                f"tails than q's log density can cover, so the integral is {'+' if last > 0 else '−'}inf"
            )
    return None


def _host_integrand(kind: str, log_p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """:func:`_integrand` in NumPy (the pair is contained, see :func:`integrate`)."""
    positive = log_p > -np.inf
    safe_log_p = np.where(positive, log_p, 0.0)
    if kind == "entropy":
        terms = -safe_log_p
    else:
        safe_log_q = np.where(log_q > -np.inf, log_q, 0.0)
        terms = safe_log_p - safe_log_q if kind == "kl" else -safe_log_q
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(positive, np.exp(safe_log_p) * terms, 0.0)


def _to_x(lo: np.ndarray, hi: np.ndarray, t: np.ndarray, a: np.ndarray, side: np.ndarray):
    """Points and Jacobians of the substitutions: x = t on finite intervals; x = a + t/(1 − t)
    (side +1) and x = a − t/(1 − t) (side −1) for t in [0, 1) on half-infinite ones."""
    u = lo[:, None] + 0.5 * (hi - lo)[:, None] * (t[None, :] + 1.0)
    inf = side[:, None] != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(inf, a[:, None] + side[:, None] * u / (1.0 - u), u)
        jac = np.where(inf, 1.0 / (1.0 - u) ** 2, 1.0)
    return x, jac * 0.5 * (hi - lo)[:, None]


def _integrate_host(kind: str, p: Any, q: Any, points: np.ndarray, epsabs: float, epsrel: float,
                    max_ninter: int) -> tuple[float, float, int, int]:
    """Adaptive G7-K15 over the breakpoint intervals, bisecting the worst intervals in batches.

    Returns ``(value, error bound, evaluations, status)`` with quadax's status codes (0: the
    tolerance max(epsabs, epsrel |value|) was met; 1: ``max_ninter`` intervals were used up).
    """
    dtype = jnp.result_type(float)
    eps = float(jnp.finfo(dtype).eps)
    lo, hi, a, side = [], [], [], []
    for left, right in zip(points[:-1], points[1:]):
        if np.isinf(left) and np.isinf(right):  # the whole line: split at 0
            lo += [0.0, 0.0]; hi += [1.0, 1.0]; a += [0.0, 0.0]; side += [-1.0, 1.0]  # noqa: E702
        elif np.isinf(left):
            lo.append(0.0); hi.append(1.0); a.append(right); side.append(-1.0)  # noqa: E702
        elif np.isinf(right):
            lo.append(0.0); hi.append(1.0); a.append(left); side.append(1.0)  # noqa: E702
        else:
            lo.append(left); hi.append(right); a.append(0.0); side.append(0.0)  # noqa: E702
    pend = [np.asarray(v, dtype=float) for v in (lo, hi, a, side)]
    done = [np.zeros(0) for _ in range(6)]  # lo, hi, a, side, value, error of evaluated intervals
    neval, status = 0, 0
    while True:
        values, errors = [], []
        for start in range(0, pend[0].shape[0], _BATCH):
            chunk = [v[start:start + _BATCH] for v in pend]
            n = chunk[0].shape[0]
            x, jac = _to_x(*chunk[:2], _NODES, *chunk[2:])
            flat = np.zeros(_BATCH * 15)
            flat[: n * 15] = x.ravel()
            flat[n * 15:] = x.ravel()[0]  # padding: a point of the integration range
            log_p, log_q = (np.asarray(v, dtype=float) for v in _log_densities(p, q, jnp.asarray(flat, dtype=dtype)))
            f = _host_integrand(kind, log_p[: n * 15], log_q[: n * 15]).reshape(n, 15) * jac
            f = np.where(np.isfinite(jac), f, 0.0)
            neval += n * 15
            k, g = f @ _W15, f @ _W7
            half = chunk[1] - chunk[0]
            scale = np.where(half > 0, 1.0, 0.0)
            resabs = np.abs(f) @ _W15
            resasc = np.abs(f - (k / 2.0)[:, None]) @ _W15
            err = np.abs(k - g)
            with np.errstate(divide="ignore", invalid="ignore"):
                err = np.where((resasc != 0) & (err != 0), resasc * np.minimum(1.0, (200 * err / resasc) ** 1.5), err)
            err = np.maximum(err, 50 * eps * resabs) * scale
            values.append(k * scale)
            errors.append(err)
        done = [np.concatenate([d, v]) for d, v in zip(done, pend + [np.concatenate(values), np.concatenate(errors)])]
        total, total_err = float(np.sum(done[4])), float(np.sum(done[5]))
        tol = max(epsabs, epsrel * abs(total))
        if not np.isfinite(total) or total_err <= tol:
            break
        room = max_ninter - done[0].shape[0]
        if room <= 0:
            status = 1
            break
        order = np.argsort(-done[5])
        excess = np.cumsum(done[5][order]) - done[5][order]  # error left after the ones before
        worst = order[: max(1, min(int(np.sum(total_err - excess > tol / 2)), room, _BATCH // 2))]
        keep = np.setdiff1d(np.arange(done[0].shape[0]), worst)
        l, h, aa, sd = (d[worst] for d in done[:4])
        mid = 0.5 * (l + h)
        pend = [np.concatenate([l, mid]), np.concatenate([mid, h]), np.concatenate([aa, aa]), np.concatenate([sd, sd])]
        done = [d[keep] for d in done]
    return total, total_err, neval, status
