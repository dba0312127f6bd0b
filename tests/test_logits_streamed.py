"""kb.logits: every streamed divergence equals its plain log_softmax formula, values and gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kullback as kb

RNG = np.random.default_rng(13)
S = RNG.standard_normal((7, 40)) * 3
T = RNG.standard_normal((7, 40)) * 3


def _logs(s, t, temperature=1.0):
    return jax.nn.log_softmax(s / temperature), jax.nn.log_softmax(t / temperature)


def _plain_js(s, t, w, temperature=1.0):
    lp, lq = _logs(s, t, temperature)
    lm = jnp.log(w * jnp.exp(lp) + (1 - w) * jnp.exp(lq))
    return w * jnp.sum(jnp.exp(lp) * (lp - lm), -1) + (1 - w) * jnp.sum(jnp.exp(lq) * (lq - lm), -1)


def _plain_kl(s, t, temperature=1.0):
    lp, lq = _logs(s, t, temperature)
    return jnp.sum(jnp.exp(lp) * (lp - lq), -1)


def _plain_skew(s, t, a, temperature=1.0):
    lp, lq = _logs(s, t, temperature)
    return jnp.sum(jnp.exp(lp) * (lp - jnp.log(a * jnp.exp(lq) + (1 - a) * jnp.exp(lp))), -1)


def _plain_tv(s, t, temperature=1.0):
    lp, lq = _logs(s, t, temperature)
    return 0.5 * jnp.sum(jnp.abs(jnp.exp(lp) - jnp.exp(lq)), -1)


def _plain_renyi(s, t, alpha, temperature=1.0):
    lp, lq = _logs(s, t, temperature)
    if math.isinf(alpha):
        return jnp.max(lp - lq, -1)
    return jax.nn.logsumexp(alpha * lp + (1 - alpha) * lq, -1) / (alpha - 1)


def _plain_gjsd(s, t, beta, temperature=1.0):
    if beta == 0:
        return _plain_kl(s, t, temperature)
    if beta == 1:
        return _plain_kl(t, s, temperature)
    return _plain_js(s, t, beta, temperature)


CASES = [
    ("js 0.5", lambda s, t, **k: kb.logits.jensen_shannon(s, t, **k), lambda s, t, T=1.0: _plain_js(s, t, 0.5, T)),
    ("js 0.2", lambda s, t, **k: kb.logits.jensen_shannon(s, t, weight=0.2, **k), lambda s, t, T=1.0: _plain_js(s, t, 0.2, T)),
    ("skew 0.7", lambda s, t, **k: kb.logits.skew_kl(s, t, alpha=0.7, **k), lambda s, t, T=1.0: _plain_skew(s, t, 0.7, T)),
    ("tv", lambda s, t, **k: kb.logits.total_variation(s, t, **k), _plain_tv),
    ("renyi 0.5", lambda s, t, **k: kb.logits.renyi(s, t, 0.5, **k), lambda s, t, T=1.0: _plain_renyi(s, t, 0.5, T)),
    ("renyi 2", lambda s, t, **k: kb.logits.renyi(s, t, 2.0, **k), lambda s, t, T=1.0: _plain_renyi(s, t, 2.0, T)),
    ("renyi inf", lambda s, t, **k: kb.logits.renyi(s, t, math.inf, **k), lambda s, t, T=1.0: _plain_renyi(s, t, math.inf, T)),
    ("gjsd 0", lambda s, t, **k: kb.logits.generalized_jsd(s, t, beta=0.0, **k), lambda s, t, T=1.0: _plain_gjsd(s, t, 0.0, T)),
    ("gjsd 0.3", lambda s, t, **k: kb.logits.generalized_jsd(s, t, beta=0.3, **k), lambda s, t, T=1.0: _plain_gjsd(s, t, 0.3, T)),
    ("gjsd 1", lambda s, t, **k: kb.logits.generalized_jsd(s, t, beta=1.0, **k), lambda s, t, T=1.0: _plain_gjsd(s, t, 1.0, T)),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name, ours, plain", CASES, ids=IDS)
def test_streamed_values_and_gradients_equal_plain_formula(name, ours, plain):
    np.testing.assert_allclose(ours(S, T), plain(S, T), rtol=1e-12)  # one block
    np.testing.assert_allclose(ours(S, T, chunk_size=3, temperature=1.5), plain(S, T, 1.5), rtol=1e-12)  # 3 blocks
    weights = jnp.asarray(RNG.uniform(0.5, 1.5, 7))  # a non-constant cotangent per row
    got = jax.grad(lambda s, t: jnp.sum(weights * ours(s, t, chunk_size=3, temperature=1.5)), (0, 1))(S, T)
    want = jax.grad(lambda s, t: jnp.sum(weights * plain(s, t, 1.5)), (0, 1))(S, T)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_reductions_mask_and_batchmean():
    s3, t3 = S[:6].reshape(2, 3, 40), T[:6].reshape(2, 3, 40)
    rows = kb.logits.jensen_shannon(s3, t3)
    assert rows.shape == (2, 3)
    mask = np.array([[True, False, True], [True, True, False]])
    np.testing.assert_allclose(kb.logits.jensen_shannon(s3, t3, reduction="batchmean"), rows.sum() / 2, rtol=1e-12)
    np.testing.assert_allclose(kb.logits.jensen_shannon(s3, t3, where=mask, reduction="mean"), rows[mask].mean(), rtol=1e-12)
    np.testing.assert_allclose(kb.logits.jensen_shannon(s3, t3, where=mask, reduction="batchmean"), rows[mask].sum() / 2, rtol=1e-12)
    np.testing.assert_allclose(kb.logits.kl(S, T, reduction="batchmean"), kb.logits.kl(S, T, reduction="mean"), rtol=1e-12)
    np.testing.assert_allclose(kb.logits.total_variation(S.T, T.T, axis=0), kb.logits.total_variation(S, T), rtol=1e-12)


def test_short_floats_computed_in_float32_and_weight_traced():
    s16, t16 = jnp.asarray(S, jnp.bfloat16), jnp.asarray(T, jnp.bfloat16)
    got = kb.logits.jensen_shannon(s16, t16)
    assert got.dtype == jnp.float32
    ref = _plain_js(jnp.asarray(s16, jnp.float64), jnp.asarray(t16, jnp.float64), 0.5)
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    assert kb.logits.renyi(jnp.asarray(S, jnp.float16), jnp.asarray(T, jnp.float16), 2.0).dtype == jnp.float32
    f = jax.jit(lambda w: kb.logits.jensen_shannon(S, T, weight=w, reduction="sum"))
    np.testing.assert_allclose(f(0.2), _plain_js(S, T, 0.2).sum(), rtol=1e-12)
    np.testing.assert_allclose(f(1.0), 0.0, atol=1e-15)


def test_near_identical_float32_non_negative():
    s32 = S.astype(np.float32)
    t32 = (S + 1e-3 * T).astype(np.float32)
    for fn in (kb.logits.jensen_shannon, lambda a, b: kb.logits.skew_kl(a, b, alpha=0.5)):
        got, truth = fn(s32, t32), fn(s32.astype(np.float64), t32.astype(np.float64))
        assert bool(jnp.all(got >= 0))
        np.testing.assert_allclose(got, truth, rtol=1e-3)


def test_supports_from_logits_and_bounds():
    p = np.array([[0.0, -np.inf, 1.0], [0.0, 0.0, 0.0]])
    q = np.array([[-np.inf, 0.0, 1.0], [0.0, 0.0, 0.0]])
    js = kb.logits.jensen_shannon(p, q)
    assert bool(jnp.all(jnp.isfinite(js))) and float(js[1]) == pytest.approx(0.0, abs=1e-15)
    assert float(kb.logits.jensen_shannon([0.0, -1e4], [-1e4, 0.0], weight=0.3)) == pytest.approx(
        -(0.3 * math.log(0.3) + 0.7 * math.log(0.7)), rel=1e-12)
    assert math.isinf(float(kb.logits.renyi(p, q, 2.0)[0]))
    assert math.isfinite(float(kb.logits.skew_kl(p, q, alpha=0.5)[0]))
    g = jax.grad(lambda a: kb.logits.jensen_shannon(a, q).sum())(p)
    assert bool(jnp.all(jnp.isfinite(g)))
    with pytest.raises(ValueError, match="weight"):
        kb.logits.jensen_shannon(S, T, weight=1.5)
    with pytest.raises(ValueError, match="logits_q to contain no NaN"):
        kb.logits.skew_kl(S, np.where(S > 2, np.nan, T))
