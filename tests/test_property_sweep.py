"""A seeded property sweep of the exact measures against 50-digit mpmath references.

Inputs: float64 and float32 rows with exact zeros, subnormals, entries down to 1e-300 / 1e-38,
identical and near-identical pairs, and logits with -inf and wide ranges. Each hypothesis example
is a batch of rows (the functions are batched), so a few dozen examples cover hundreds of cases.

Checked: values >= 0; within the stated tolerance of the reference (TOL: |got - ref| <= tol *
max(1, |ref|), plus 8 ε max|logit| for logits, the rounding of log_softmax itself); +inf exactly where the supports demand it; jax.grad never NaN, and finite where
the inputs are at least 1e-150 (float64) / 1e-18 (float32) (below, a true gradient such as
p^2/q^3 can exceed the float range: inf there is honest); NaN in gives NaN out under jit.

The rules the references follow: XLA on CPU reads subnormal numbers as 0 (flush-to-zero), so the
references flush them too; the KL family off the simplex by rounding is the generalised form
Σ p log(p/q) − p + q; Rényi is referenced on the exactly normalised inputs (its sensitivity to
mass off the simplex is 1/|α − 1|, and the library's form gives the normalised value).
"""

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kullback as kb

mp.mp.dps = 50
ALPHAS = (0.5, 2.0, 0.999, 1.001, math.inf, 0.0)
TOL = {np.float64: 1e-12, np.float32: 1e-5}
ROWS = 16


# ---- references -----------------------------------------------------------------------------

def _flush(x):
    x = np.asarray(x)
    return np.where(np.abs(x) < np.finfo(x.dtype).tiny, 0, x).astype(x.dtype)


def _mp(x):
    return [mp.mpf(float(v)) for v in np.asarray(_flush(x), np.float64)]


def _ref_kl(p, q):
    total = mp.mpf(0)
    for a, b in zip(p, q):
        if a > 0 and b == 0:
            return mp.inf
        total += a * mp.log(a / b) - a + b if a > 0 else b
    return total


def _ref_ce(p, q):
    if any(a > 0 and b == 0 for a, b in zip(p, q)):
        return mp.inf
    return -sum((a * mp.log(b) for a, b in zip(p, q) if a > 0), mp.mpf(0))


def _ref_entropy(p, q):
    return -sum((a * mp.log(a) for a in p if a > 0), mp.mpf(0))


def _ref_js(p, q):
    total = mp.mpf(0)
    for a, b in zip(p, q):
        m = (a + b) / 2
        total += (a * mp.log(a / m) if a > 0 else 0) / 2 + (b * mp.log(b / m) if b > 0 else 0) / 2
    return total


def _ref_skew(p, q, alpha=0.99):
    return _ref_kl(p, [alpha * b + (1 - alpha) * a for a, b in zip(p, q)])


def _ref_tv(p, q):
    return sum((abs(a - b) for a, b in zip(p, q)), mp.mpf(0)) / 2


def _ref_renyi(p, q, alpha):
    sp, sq = sum(p), sum(q)
    p, q = [a / sp for a in p], [b / sq for b in q]
    escape = any(a > 0 and b == 0 for a, b in zip(p, q))
    both = [(a, b) for a, b in zip(p, q) if a > 0 and b > 0]
    if alpha == 0:
        return -mp.log(sum((b for _, b in both), mp.mpf(0))) if both else mp.inf
    if math.isinf(alpha):
        return mp.inf if escape else max(mp.log(a / b) for a, b in both)
    if alpha > 1 and escape or not both:
        return mp.inf
    return mp.log(sum(a**alpha * b ** (1 - alpha) for a, b in both)) / (alpha - 1)


def _softmax(x):
    x = [mp.mpf(float(v)) for v in x]
    top = max(v for v in x if v != -mp.inf)
    lse = top + mp.log(sum(mp.exp(v - top) for v in x if v != -mp.inf))
    return [mp.mpf(0) if v == -mp.inf else mp.exp(v - lse) for v in x]


def _renyi_pair(a):
    return lambda p, q: kb.renyi(p, q, a), lambda p, q: _ref_renyi(p, q, a)


def _logits_renyi_pair(a):
    return lambda s, t: kb.logits.renyi(s, t, a), lambda p, q: _ref_renyi(p, q, a)


PROBABILITY_FUNCTIONS = {
    "kl": (kb.kl, _ref_kl),
    "cross_entropy": (kb.cross_entropy, _ref_ce),
    "entropy": (lambda p, q: kb.entropy(p), _ref_entropy),
    "jensen_shannon": (kb.jensen_shannon, _ref_js),
    "skew_kl": (kb.skew_kl, _ref_skew),
    "total_variation": (kb.total_variation, _ref_tv),
    **{f"renyi({a})": _renyi_pair(a) for a in ALPHAS},
}
LOGIT_FUNCTIONS = {
    "kl": (kb.logits.kl, _ref_kl),
    "cross_entropy": (kb.logits.cross_entropy, _ref_ce),
    "entropy": (lambda s, t: kb.logits.entropy(s), _ref_entropy),
    "jensen_shannon": (kb.logits.jensen_shannon, _ref_js),
    "skew_kl": (kb.logits.skew_kl, _ref_skew),
    "total_variation": (kb.logits.total_variation, _ref_tv),
    **{f"renyi({a})": _logits_renyi_pair(a) for a in ALPHAS},
}


# ---- inputs ---------------------------------------------------------------------------------

def _row(rng, n, dtype):
    """A probability row summing to 1 (to rounding) with zeros, subnormals and tiny entries."""
    lowest = 1e-300 if dtype == np.float64 else 1e-38
    kind = rng.integers(0, 5, size=n)
    x = rng.uniform(0, 1, n)
    x = np.where(kind == 0, 0.0, x)
    x = np.where(kind == 1, 10.0 ** rng.uniform(np.log10(lowest), -5, n), x)
    x = np.where(kind == 2, np.finfo(dtype).tiny * rng.uniform(0.01, 1, n), x)
    if not (kind >= 3).any():
        x[rng.integers(n)] = 1.0
    return _close_to_one(x / x.sum(), dtype)


def _close_to_one(x, dtype):
    x = x.astype(dtype)
    big = np.argmax(x)
    x[big] = 0
    x[big] = 1 - x.sum(dtype=np.float64)
    return x


def _pairs(rng, n, dtype):
    p = np.stack([_row(rng, n, dtype) for _ in range(ROWS)])
    q = np.stack([_row(rng, n, dtype) for _ in range(ROWS)])
    q[0] = p[0]  # identical
    for i in (1, 2):  # near-identical
        noise = 10.0 ** rng.uniform(-8, -2) * rng.standard_normal(n)
        q[i] = _close_to_one(p[i].astype(np.float64) * (1 + noise), dtype)
    return p, q


def _logits(rng, n, dtype):
    scale = 10.0 ** rng.uniform(-1, 3, size=(2 * ROWS, 1))
    x = rng.standard_normal((2 * ROWS, n)) * scale
    x[rng.uniform(size=x.shape) < 0.15] = -np.inf
    x[np.all(np.isneginf(x), -1), 0] = 0.0
    s, t = x[:ROWS].astype(dtype), x[ROWS:].astype(dtype)
    t[0] = s[0]
    t[1] = (s[1] + 1e-4 * rng.standard_normal(n)).astype(dtype)
    return s, t


CASES = st.tuples(st.sampled_from([np.float64, np.float32]), st.integers(2, 6), st.integers(0, 2**32 - 1))


# ---- checks ---------------------------------------------------------------------------------

def _check_values(name, got, want, dtype, atol=None):
    got = np.asarray(got, np.float64)
    atol = np.zeros(len(got)) if atol is None else atol
    for g, w, extra in zip(got, want, atol):
        w = float(w)
        assert not math.isnan(g), name
        assert math.isinf(g) == math.isinf(w), f"{name}: got {g}, reference {w}"
        assert g >= 0, f"{name}: negative {g}"
        if math.isfinite(w):
            assert abs(g - w) <= TOL[dtype] * max(1.0, abs(w)) + extra, f"{name}: got {g}, reference {w}"


def _check_grads(name, fn, a, b, values, dtype):
    grads = jax.grad(lambda a, b: jnp.sum(jnp.where(jnp.isfinite(values), fn(a, b), 0.0)), (0, 1))(a, b)
    floor = 1e-150 if dtype == np.float64 else 1e-18
    for g, x in zip(grads, (a, b)):
        g = np.asarray(g)
        assert not np.isnan(g[np.isfinite(values)]).any(), f"NaN gradient of {name}"
        x = np.asarray(x)
        ok = np.isfinite(values) & np.all((x == 0) | (np.abs(x) >= floor) | np.isneginf(x), axis=-1)
        assert np.isfinite(g[ok]).all(), f"non-finite gradient of {name}"


@settings(max_examples=8)
@given(CASES)
def test_probability_sweep(case):
    dtype, n, seed = case
    p, q = _pairs(np.random.default_rng(seed), n, dtype)
    refs = [(_mp(a), _mp(b)) for a, b in zip(p, q)]
    for name, (fn, ref) in PROBABILITY_FUNCTIONS.items():
        values = fn(p, q)
        assert values.dtype == dtype
        _check_values(name, values, [ref(a, b) for a, b in refs], dtype)
        _check_grads(name, fn, jnp.asarray(p), jnp.asarray(q), np.asarray(values), dtype)


@settings(max_examples=4)
@given(CASES)
def test_logits_sweep(case):
    dtype, n, seed = case
    s, t = _logits(np.random.default_rng(seed), n, dtype)
    refs = [(_softmax(a), _softmax(b)) for a, b in zip(s, t)]
    # log_softmax of logits near L rounds by ε L in absolute terms: inherent, allowed for
    finite = np.where(np.isfinite(np.concatenate([s, t], -1)), np.concatenate([s, t], -1), 0)
    atol = 8 * np.finfo(dtype).eps * np.abs(finite).max(-1)
    for name, (fn, ref) in LOGIT_FUNCTIONS.items():
        values = fn(s, t)
        _check_values("logits." + name, values, [ref(a, b) for a, b in refs], dtype, atol)
        _check_grads("logits." + name, fn, jnp.asarray(s), jnp.asarray(t), np.asarray(values), dtype)


def _all_values(functions):
    return jax.jit(lambda a, b: {name: fn(a, b) for name, (fn, _) in functions.items()})


_JITTED = {"probabilities": _all_values(PROBABILITY_FUNCTIONS), "logits": _all_values(LOGIT_FUNCTIONS)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("family", ["probabilities", "logits"])
def test_nan_in_nan_out_under_jit(family, dtype):
    rng = np.random.default_rng(3)
    a, b = (_pairs(rng, 5, dtype) if family == "probabilities" else _logits(rng, 5, dtype))
    a, b = a.copy(), b.copy()
    a[3, 2] = np.nan  # a NaN in the first argument of row 3
    b[5, 0] = np.nan  # and in the second of row 5
    for name, values in _JITTED[family](a, b).items():
        values = np.asarray(values)
        assert np.isnan(values[3]), f"{family} {name}: a NaN in the first argument was swallowed"
        if name != "entropy":
            assert np.isnan(values[5]), f"{family} {name}: a NaN in the second argument was swallowed"
        assert not np.isnan(np.delete(values, [3, 5])).any(), f"{family} {name}: NaN leaked to other rows"
