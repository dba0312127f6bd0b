"""Frozen scipy.stats distributions are accepted by every estimator, with the same answers."""

import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import stats

import kullback as kb


def test_quadrature_with_scipy_matches_numpyro():
    ours = kb.estimate_kl(stats.t(3), stats.norm(0, 1))
    assert ours.method == "quadrature"
    exact = kb.kl(dist.StudentT(3.0), dist.Normal(0.0, 1.0))
    np.testing.assert_allclose(float(ours), float(exact), rtol=1e-8)


def test_mixed_scipy_and_numpyro_and_bounded_support():
    e = kb.estimate_kl(stats.gamma(2.0, scale=1.5), dist.Gamma(2.5, 1.0))
    ref = kb.kl(dist.Gamma(2.0, 1 / 1.5), dist.Gamma(2.5, 1.0))
    np.testing.assert_allclose(float(e), float(ref), rtol=1e-8)
    h = kb.estimate_entropy(stats.norm(1.0, 2.0))
    np.testing.assert_allclose(float(h), stats.norm(1.0, 2.0).entropy(), rtol=1e-10)


def test_monte_carlo_with_multivariate_scipy():
    p = stats.multivariate_normal(np.zeros(2), np.eye(2))
    q = dist.MultivariateNormal(np.ones(2), 2.0 * np.eye(2))
    e = kb.estimate_kl(p, q, method="monte_carlo", key=0, num_samples=20_000)
    truth = float(kb.kl(dist.MultivariateNormal(np.zeros(2), np.eye(2)), q))
    assert e.method == "monte_carlo" and abs(float(e) - truth) < 5 * e.stderr


def test_support_mismatch_with_scipy_is_inf():
    assert float(kb.estimate_kl(stats.norm(0, 1), stats.expon())) == np.inf


def test_non_distributions_are_rejected():
    with pytest.raises(TypeError, match="frozen scipy.stats"):
        kb.estimate_kl(stats.norm, stats.norm(0, 1))  # the family, not a frozen distribution
