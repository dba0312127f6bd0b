"""Closed-form KL / entropy / cross-entropy between numpyro distributions, and the registry.

References: scipy.integrate.quad of the defining integral (1-D, rtol 1e-9: quad's own accuracy
at epsabs = epsrel = 1e-13 is about 1e-11 here), a numpy implementation of the textbook
Gaussian KL formula (rtol 1e-10), scipy.stats entropies (rtol 1e-12).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

import kullback as kb
from kullback.measure import _closed_form, _gaussian_forms
from kullback.measure._registry import describe, dispatch_kl, register_kl

RNG = np.random.default_rng(20240607)


def _textbook_kl(mu_p, cov_p, mu_q, cov_q):
    """½[tr(Σq⁻¹Σp) + (μq−μp)ᵀΣq⁻¹(μq−μp) − d + log det Σq − log det Σp], in numpy float64."""
    d = mu_p.shape[-1]
    inv_q = np.linalg.inv(cov_q)
    diff = mu_q - mu_p
    trace = np.einsum("...ij,...ji->...", inv_q, cov_p)
    maha = np.einsum("...i,...ij,...j->...", diff, inv_q, diff)
    logdet = np.linalg.slogdet(cov_q)[1] - np.linalg.slogdet(cov_p)[1]
    return 0.5 * (trace + maha - d + logdet)


def _spd(shape, d, jitter=0.5):
    a = RNG.normal(size=shape + (d, d))
    return a @ np.swapaxes(a, -1, -2) / d + jitter * np.eye(d)


# -- univariate normal ------------------------------------------------------------------------

NORMAL_PAIRS = [(0.0, 1.0, 1.0, 2.0), (-2.0, 0.3, 1.5, 1.0), (0.5, 3.0, 0.0, 0.7), (0.0, 1.0, 0.0, 1.0)]


@pytest.mark.parametrize("mp, sp, mq, sq", NORMAL_PAIRS)
def test_normal_kl_matches_scipy_quad(mp, sp, mq, sq):
    def integrand(x):
        return stats.norm.pdf(x, mp, sp) * (stats.norm.logpdf(x, mp, sp) - stats.norm.logpdf(x, mq, sq))

    ref = sum(
        integrate.quad(integrand, a, b, epsabs=1e-13, epsrel=1e-13, limit=200)[0]
        for a, b in [(-np.inf, mp - 10 * sp), (mp - 10 * sp, mp + 10 * sp), (mp + 10 * sp, np.inf)]
    )
    got = kb.kl(dist.Normal(mp, sp), dist.Normal(mq, sq))
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mp, sp, mq, sq", NORMAL_PAIRS)
def test_normal_entropy_and_cross_entropy(mp, sp, mq, sq):
    p, q = dist.Normal(mp, sp), dist.Normal(mq, sq)
    np.testing.assert_allclose(kb.entropy(p), stats.norm(mp, sp).entropy(), rtol=1e-12)
    ref_ce = stats.norm(mp, sp).entropy() + kb.kl(p, q)
    np.testing.assert_allclose(kb.cross_entropy(p, q), ref_ce, rtol=1e-12)


def test_normal_batches_broadcast():
    loc_p, scale_p = RNG.normal(size=(2, 1)), RNG.uniform(0.5, 2.0, size=(2, 1))
    loc_q, scale_q = RNG.normal(size=(3,)), RNG.uniform(0.5, 2.0, size=(3,))
    got = kb.kl(dist.Normal(loc_p, scale_p), dist.Normal(loc_q, scale_q))
    assert got.shape == (2, 3)
    ref = np.log(scale_q / scale_p) + (scale_p**2 + (loc_p - loc_q) ** 2) / (2 * scale_q**2) - 0.5
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    expanded = kb.kl(dist.Normal(0.0, 1.0).expand([4]), dist.Normal(1.0, 2.0))
    np.testing.assert_allclose(expanded, np.full(4, 0.5 * (np.log(4) + 2 / 4 - 1)), rtol=1e-12)


def test_normal_kl_is_stable_for_close_scales_in_float32():
    sp = jnp.float32(1.0)
    sq = jnp.float32(1.0) + jnp.float32(1e-3)
    got = kb.kl(dist.Normal(jnp.float32(0.0), sp), dist.Normal(jnp.float32(0.0), sq))
    exact = np.log1p(1e-3) + 0.5 / (1 + 1e-3) ** 2 - 0.5  # ≈ 1e-6, all of it cancellation naively
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, exact, rtol=1e-3)


def test_normal_kl_gradient_is_finite_and_zero_at_equality():
    grad = jax.grad(lambda s, m: kb.kl(dist.Normal(m, s), dist.Normal(0.0, 1.0)), argnums=(0, 1))(1.0, 0.0)
    np.testing.assert_allclose(np.array(grad), 0.0, atol=1e-12)


# -- multivariate normal ----------------------------------------------------------------------


def test_mvn_kl_matches_textbook_batched():
    d = 4
    mu_p, mu_q = RNG.normal(size=(2, 3, d)), RNG.normal(size=(3, d))
    cov_p, cov_q = _spd((2, 3), d), _spd((3,), d)
    p = dist.MultivariateNormal(mu_p, covariance_matrix=cov_p)
    q = dist.MultivariateNormal(mu_q, covariance_matrix=cov_q)
    got = kb.kl(p, q)
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, _textbook_kl(mu_p, cov_p, mu_q, cov_q), rtol=1e-10)
    np.testing.assert_allclose(kb.kl(q, p), _textbook_kl(mu_q, cov_q, mu_p, cov_p), rtol=1e-10)


def test_mvn_entropy_and_cross_entropy():
    d = 4
    mu_p, mu_q = RNG.normal(size=(3, d)), RNG.normal(size=(d,))
    cov_p, cov_q = _spd((3,), d), _spd((), d)
    p = dist.MultivariateNormal(mu_p, covariance_matrix=cov_p)
    q = dist.MultivariateNormal(mu_q, covariance_matrix=cov_q)
    ref_h = np.array([stats.multivariate_normal(mu_p[i], cov_p[i]).entropy() for i in range(3)])
    np.testing.assert_allclose(kb.entropy(p), ref_h, rtol=1e-12)
    np.testing.assert_allclose(kb.cross_entropy(p, q), ref_h + _textbook_kl(mu_p, cov_p, mu_q, cov_q), rtol=1e-10)


def test_diagonal_gaussians_and_mixed_pairs_match_textbook():
    d = 3
    mu_p, mu_q = RNG.normal(size=(2, d)), RNG.normal(size=(d,))
    s_p, s_q = RNG.uniform(0.5, 2.0, size=(2, d)), RNG.uniform(0.5, 2.0, size=(d,))
    cov_full = _spd((), d)
    diag_p = dist.Normal(mu_p, s_p).to_event(1)
    diag_q = dist.Normal(mu_q, s_q).to_event(1)
    full_q = dist.MultivariateNormal(mu_q, covariance_matrix=cov_full)
    cov_p, cov_q = s_p[..., None] * np.eye(d) * s_p[..., None, :], np.diag(s_q**2)
    np.testing.assert_allclose(kb.kl(diag_p, diag_q), _textbook_kl(mu_p, cov_p, mu_q, cov_q), rtol=1e-10)
    np.testing.assert_allclose(kb.kl(diag_p, full_q), _textbook_kl(mu_p, cov_p, mu_q, cov_full), rtol=1e-10)
    full_p = dist.MultivariateNormal(mu_q, covariance_matrix=cov_full)
    np.testing.assert_allclose(kb.kl(full_p, diag_p), _textbook_kl(mu_q, cov_full, mu_p, cov_p), rtol=1e-10)
    ref_h = [stats.multivariate_normal(mu_p[i], cov_p[i]).entropy() for i in range(2)]
    np.testing.assert_allclose(kb.entropy(diag_p), ref_h, rtol=1e-12)
    # a scalar base expanded into the event, and two reinterpreted axes
    expanded = dist.Normal(0.0, 1.0).expand([d]).to_event(1)
    np.testing.assert_allclose(kb.kl(expanded, full_q), _textbook_kl(np.zeros(d), np.eye(d), mu_q, cov_full), rtol=1e-10)
    two = dist.Normal(np.zeros((2, d)), 1.0).to_event(2)
    np.testing.assert_allclose(kb.kl(two, dist.Normal(np.ones((2, d)), 1.0).to_event(2)), 0.5 * 2 * d, rtol=1e-12)


def test_near_identical_mvn_in_float32_is_small_non_negative_and_accurate():
    d = 50
    cov_p = _spd((), d, jitter=1.0)
    lp = np.linalg.cholesky(cov_p)
    lq = lp * (1.0 + 1e-3 * np.tril(RNG.normal(size=(d, d))))
    mu_p, mu_q = RNG.normal(size=d), None
    mu_q = mu_p + 1e-3 * RNG.normal(size=d)
    ref = float(_gaussian_forms.gaussian_kl_tril(mu_p, lp, mu_q, lq))
    np.testing.assert_allclose(ref, _textbook_kl(mu_p, lp @ lp.T, mu_q, lq @ lq.T), rtol=1e-6)
    f32 = [jnp.asarray(a, dtype=jnp.float32) for a in (mu_p, lp, mu_q, lq)]
    p32 = dist.MultivariateNormal(f32[0], scale_tril=f32[1])
    q32 = dist.MultivariateNormal(f32[2], scale_tril=f32[3])
    got = kb.kl(p32, q32)
    assert got.dtype == jnp.float32
    assert float(got) >= 0.0
    # the terms are computed from L_p − L_q, so the float32 error is relative to the KL itself
    # (measured 5e-6 here; the textbook formula in float32 is off by ~7% at this distance)
    np.testing.assert_allclose(float(got), ref, rtol=1e-4)
    assert float(kb.kl(p32, p32)) == 0.0


@pytest.mark.timeout(60)
def test_batched_mvn_kl_under_jit_does_not_hang():
    d = 5
    mu = jnp.asarray(RNG.normal(size=(2, 6, d)))
    cov = jnp.asarray(_spd((2, 6), d))

    @jax.jit
    def batched(mu, cov):
        tril = jnp.linalg.cholesky(cov)  # p's and q's covariances stacked through ONE factorisation
        p = dist.MultivariateNormal(mu[0], scale_tril=tril[0])
        q = dist.MultivariateNormal(mu[1], scale_tril=tril[1])
        return kb.kl(p, q), _gaussian_forms.gaussian_kl_cov(mu[0], cov[0], mu[1], cov[1])

    from_tril, from_cov = jax.block_until_ready(batched(mu, cov))
    ref = _textbook_kl(np.asarray(mu[0]), np.asarray(cov[0]), np.asarray(mu[1]), np.asarray(cov[1]))
    np.testing.assert_allclose(from_tril, ref, rtol=1e-10)
    np.testing.assert_allclose(from_cov, ref, rtol=1e-10)
    p = dist.MultivariateNormal(mu[0], covariance_matrix=cov[0])
    q = dist.MultivariateNormal(mu[1], covariance_matrix=cov[1])
    np.testing.assert_allclose(jax.jit(kb.kl)(p, q), ref, rtol=1e-10)
    grad = jax.jit(jax.grad(lambda m: jnp.sum(kb.kl(dist.MultivariateNormal(m, scale_tril=q.scale_tril), q))))(mu[0])
    assert np.isfinite(np.asarray(grad)).all()


# -- invariants (hypothesis) ------------------------------------------------------------------

finite = st.floats(-5.0, 5.0, allow_nan=False)
positive = st.floats(0.05, 5.0, allow_nan=False)


@given(finite, positive, finite, positive)
def test_normal_invariants(mp, sp, mq, sq):
    p, q = dist.Normal(mp, sp), dist.Normal(mq, sq)
    kl = float(kb.kl(p, q))
    assert kl >= 0.0
    assert float(kb.kl(p, p)) == 0.0
    np.testing.assert_allclose(float(kb.cross_entropy(p, q)), float(kb.entropy(p)) + kl, rtol=1e-12, atol=1e-12)


tril_entries = st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=6, max_size=6)
diag_entries = st.lists(positive, min_size=3, max_size=3)
locs = st.lists(finite, min_size=3, max_size=3)


def _tril(off, diag):
    m = np.zeros((3, 3))
    m[np.tril_indices(3, -1)] = off[:3]
    return m + np.diag(diag)


@given(locs, tril_entries, diag_entries, locs, tril_entries, diag_entries)
def test_mvn_invariants(mp, op, dp, mq, oq, dq):
    lp, lq = _tril(op, dp), _tril(oq, dq)
    p = dist.MultivariateNormal(np.array(mp), scale_tril=lp)
    q = dist.MultivariateNormal(np.array(mq), scale_tril=lq)
    kl = float(kb.kl(p, q))
    assert kl >= 0.0
    assert float(kb.kl(p, p)) == 0.0
    np.testing.assert_allclose(kl, _textbook_kl(np.array(mp), lp @ lp.T, np.array(mq), lq @ lq.T), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(float(kb.cross_entropy(p, q)), float(kb.entropy(p)) + kl, rtol=1e-12, atol=1e-12)


# -- registry and errors ----------------------------------------------------------------------


def test_no_closed_form_error_names_both_types_and_points_to_estimate_kl():
    with pytest.raises(kb.NoClosedFormError, match=r"StudentT.*Logistic.*kb\.estimate_kl\(p, q\)"):
        kb.kl(dist.StudentT(3.0), dist.Logistic(0.0, 1.0))
    with pytest.raises(kb.NoClosedFormError, match=r"Independent\(ExpandedDistribution\(StudentT\), 1\)"):
        kb.kl(dist.StudentT(3.0).expand([2]).to_event(1), dist.Logistic(jnp.zeros(2), 1.0).to_event(1))
    with pytest.raises(kb.NoClosedFormError, match="estimate_entropy"):
        kb.entropy(dist.MixtureSameFamily(dist.Categorical(jnp.ones(2) / 2), dist.Normal(jnp.zeros(2), 1.0)))
    assert issubclass(kb.NoClosedFormError, NotImplementedError)


def test_shape_and_type_errors():
    with pytest.raises(ValueError, match="same event shape"):
        kb.kl(dist.Normal(0.0, 1.0), dist.MultivariateNormal(jnp.zeros(2), jnp.eye(2)))
    with pytest.raises(ValueError, match="broadcastable batch shapes"):
        kb.kl(dist.Normal(jnp.zeros(2), 1.0), dist.Normal(jnp.zeros(3), 1.0))
    with pytest.raises(TypeError, match="Expected q to be a numpyro distribution"):
        _closed_form.kl_closed_form(dist.Normal(0.0, 1.0), [0.5, 0.5])


class _MyNormal(dist.Normal):
    pass


class _Special(dist.Normal):
    pass


@register_kl(_Special, dist.Normal)
def _kl_special(p, q):
    return jnp.full(jnp.broadcast_shapes(p.batch_shape, q.batch_shape), 7.0)


@register_kl(_Special, _Special, when=lambda p, q: False)
def _kl_never(p, q):
    raise AssertionError("a rule whose predicate is false must not run")


def test_registry_dispatches_through_subclasses_most_specific_first():
    # a subclass with no rule of its own uses Normal–Normal
    np.testing.assert_allclose(kb.kl(_MyNormal(0.0, 1.0), dist.Normal(1.0, 2.0)), 0.443147180559945, rtol=1e-12)
    # the more specific (_Special, Normal) beats (Normal, Normal); the declined rule is skipped
    assert float(dispatch_kl(_Special(0.0, 1.0), dist.Normal(1.0, 2.0))) == 7.0
    assert float(dispatch_kl(_Special(0.0, 1.0), _Special(1.0, 2.0))) == 7.0
    assert describe(dist.Normal(0.0, 1.0).to_event(0)) in ("Normal", "Independent(Normal, 0)")
    with pytest.raises(TypeError, match="Expected a class"):
        register_kl("Normal", dist.Normal)
