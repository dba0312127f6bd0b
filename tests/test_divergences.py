"""Jensen-Shannon, Rényi, skew KL and total variation against scipy and closed forms."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.spatial.distance
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import kullback as kb

RNG = np.random.default_rng(1)
P = RNG.dirichlet(np.ones(12), size=4)
Q = RNG.dirichlet(np.ones(12), size=4)


def _renyi_ref(p, q, a):
    return np.log(np.sum(p**a * q ** (1 - a), -1)) / (a - 1)


def test_jensen_shannon_matches_scipy():
    ref = scipy.spatial.distance.jensenshannon(P, Q, axis=-1) ** 2
    np.testing.assert_allclose(kb.jensen_shannon(P, Q), ref, rtol=1e-10)
    w = 0.3
    m = w * P + (1 - w) * Q
    ref_w = w * scipy.special.rel_entr(P, m).sum(-1) + (1 - w) * scipy.special.rel_entr(Q, m).sum(-1)
    np.testing.assert_allclose(kb.jensen_shannon(P, Q, weight=w), ref_w, rtol=1e-12)


def test_jensen_shannon_bounded_by_log2():
    assert float(kb.jensen_shannon([1.0, 0.0], [0.0, 1.0])) == pytest.approx(math.log(2), rel=1e-15)
    assert float(kb.jensen_shannon([1.0, 0.0], [0.0, 1.0])) <= math.log(2)


@pytest.mark.parametrize("alpha", [0.25, 0.5, 2.0, 5.0])
def test_renyi_matches_formula(alpha):
    np.testing.assert_allclose(kb.renyi(P, Q, alpha), _renyi_ref(P, Q, alpha), rtol=1e-11)


def test_renyi_limits():
    kl = scipy.special.rel_entr(P, Q).sum(-1)
    np.testing.assert_allclose(kb.renyi(P, Q, 1.0), kl, rtol=1e-12)
    np.testing.assert_allclose(kb.renyi(P, Q, 1 + 1e-7), kl, rtol=1e-5)
    np.testing.assert_allclose(kb.renyi(P, Q, 1 - 1e-7), kl, rtol=1e-5)
    np.testing.assert_allclose(kb.renyi(P, Q, math.inf), np.log(np.max(P / Q, -1)), rtol=1e-12)
    np.testing.assert_allclose(kb.renyi(P, Q, 500.0), np.log(np.max(P / Q, -1)), rtol=0.02)
    p0 = np.array([0.5, 0.5, 0.0]); q0 = np.array([0.2, 0.3, 0.5])
    np.testing.assert_allclose(kb.renyi(p0, q0, 0.0), -np.log(0.5), rtol=1e-12)
    assert float(kb.renyi([0.5, 0.5], [1.0, 0.0], 2.0)) == np.inf
    with pytest.raises(ValueError, match="alpha"):
        kb.renyi(P, Q, -1.0)


def test_renyi_near_identical_float32():
    q = P * (1 + 1e-3 * RNG.standard_normal(P.shape)); q /= q.sum(-1, keepdims=True)
    p32, q32 = P.astype(np.float32), q.astype(np.float32)
    truth = kb.renyi(p32.astype(np.float64), q32.astype(np.float64), 2.0, normalize=True)
    got = kb.renyi(p32, q32, 2.0, normalize=True)  # float32 rounding of the sums: ~1e-4 relative
    assert bool(jnp.all(got >= 0))
    np.testing.assert_allclose(got, truth, rtol=1e-3)


def test_skew_and_total_variation():
    a = 0.7
    ref = scipy.special.rel_entr(P, a * Q + (1 - a) * P).sum(-1)
    np.testing.assert_allclose(kb.skew_kl(P, Q, alpha=a), ref, rtol=1e-12)
    np.testing.assert_allclose(kb.skew_kl(P, Q, alpha=1.0), scipy.special.rel_entr(P, Q).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(kb.total_variation(P, Q), 0.5 * np.abs(P - Q).sum(-1), rtol=1e-12)
    assert bool(jnp.all(kb.total_variation(P, Q) <= jnp.sqrt(kb.kl(P, Q) / 2)))  # Pinsker


def test_masks_and_gradients():
    mask = np.arange(12) < 8
    pm = P[:, :8] / P[:, :8].sum(-1, keepdims=True); qm = Q[:, :8] / Q[:, :8].sum(-1, keepdims=True)
    pf = np.concatenate([pm, P[:, 8:]], -1); qf = np.concatenate([qm, Q[:, 8:]], -1)
    np.testing.assert_allclose(kb.jensen_shannon(pf, qf, where=mask), kb.jensen_shannon(pm, qm), rtol=1e-12)
    np.testing.assert_allclose(kb.renyi(pf, qf, 2.0, where=mask), kb.renyi(pm, qm, 2.0), rtol=1e-12)
    g = jax.grad(lambda p: kb.jensen_shannon(p, jnp.array([0.0, 1.0, 0.0])))(jnp.array([0.5, 0.5, 0.0]))
    assert bool(jnp.all(jnp.isfinite(g)))


def _dists(n):
    return arrays(np.float64, n, elements=st.floats(0.0, 1.0)).filter(lambda x: x.sum() > 1e-3).map(lambda x: x / x.sum())


@settings(max_examples=25)
@given(st.integers(2, 6).flatmap(lambda n: st.tuples(_dists(n), _dists(n))))
def test_js_properties(pq):
    p, q = pq
    js = float(kb.jensen_shannon(p, q))
    assert 0 <= js <= math.log(2)
    assert js == pytest.approx(float(kb.jensen_shannon(q, p)), rel=1e-12, abs=1e-15)
    assert float(kb.total_variation(p, q)) == pytest.approx(float(kb.total_variation(q, p)))


def test_renyi_log_space_regressions():
    # Σ p^α q^(1−α) = 1e-15: the split form cancelled to inf; the truth is 30 log 10 = 69.08
    np.testing.assert_allclose(kb.renyi([1.0, 0.0], [1e-30, 1 - 1e-30], 0.5), 30 * np.log(10), rtol=1e-12)
    g = jax.grad(lambda p: kb.renyi(p, jnp.array([0.9, 0.1]), 0.5))(jnp.array([1e-70, 1.0]))
    assert bool(jnp.all(jnp.isfinite(g)))  # was NaN (log1p at −1 in the unused branch)
    assert float(kb.renyi([0.5, 0.5, 0.0], [0.0, 0.0, 1.0], 0.5)) == np.inf  # disjoint supports
    assert bool(jnp.isnan(jax.jit(lambda p: kb.renyi(p, jnp.array([0.5, 0.5]), 2.0))(jnp.array([jnp.nan, 0.5]))))
    # α = ∞ keeps the log ratio exact for close entries
    p = np.array([0.3, 0.7]); q = p * np.array([1 + 1e-9, 1 - 3e-9 / 7])
    np.testing.assert_allclose(kb.renyi(p, q, math.inf), np.max(-np.log1p(q / p - 1)), rtol=1e-6)


def test_mixtures_do_not_underflow_to_inf():
    # m = ½p + ½q with entries near the smallest normal float32 was flushed to 0: JS gave log 2
    p = np.array([1.0, 1.3746898e-38, 0.0], np.float32); q = np.array([1.0, 1.3746896e-38, 0.0], np.float32)
    assert float(kb.jensen_shannon(p, q)) < 1e-30
    p = np.array([0.0, 3.1807418e-38, 1.0], np.float32); q = np.array([0.0, 1.0, 0.0], np.float32)
    assert np.isfinite(float(kb.skew_kl(p, q)))
