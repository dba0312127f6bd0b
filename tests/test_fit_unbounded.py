"""Likelihoods without a finite maximum are reported as such; the Student-t normaliser is exact."""

import mpmath
import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import stats

import kullback as kb
from kullback.families import LocScale
from kullback._special import t_normaliser

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("df", [0.3, 1.0, 7.5, 99.0, 100.0, 101.0, 1e3, 1e6, 1e9, 1e11, 1e15])
def test_t_normaliser_against_mpmath(df):
    """½ log(νπ) + log Γ(ν/2) − log Γ((ν+1)/2) to 1e-13 (the series above ν = 100, exact below)."""
    mpmath.mp.dps = 50
    nu = mpmath.mpf(df)
    ref = 0.5 * mpmath.log(nu * mpmath.pi) + mpmath.loggamma(nu / 2) - mpmath.loggamma((nu + 1) / 2)
    assert abs(float(t_normaliser(df)) - float(ref)) <= 1e-13


def test_student_t_on_normal_data_reports_the_normal_limit():
    x = 0.5 + 2.0 * stats.norm.ppf((np.arange(5_000) + 0.5) / 5_000)  # normal quantiles: no heavier tails
    r = kb.fit(dist.StudentT, x)
    assert not r.converged
    assert "normal limit" in r.message and "dist.Normal" in r.message and "max_iter cannot help" in r.message
    # the reported log-likelihood is scipy's at the reported parameters, and no fake gain over the normal
    ours = np.sum(stats.t.logpdf(x, r.params["df"], r.params["loc"], r.params["scale"]))
    np.testing.assert_allclose(r.log_likelihood, ours, rtol=1e-12)
    normal = np.sum(stats.norm.logpdf(x, *stats.norm.fit(x)))
    assert r.log_likelihood <= normal + 1e-6


def test_student_t_with_df_held_fixed_converges():
    x = RNG.normal(0.0, 1.0, 2_000)
    r = kb.fit(dist.StudentT, x, df=30.0)
    assert r.converged and "No finite maximum" not in r.message


def test_free_location_with_an_infinite_density_at_the_edge():
    y = RNG.weibull(0.7, 3_000) + 2.0
    r = kb.fit(LocScale(dist.Weibull), y)
    assert not r.converged
    assert "No finite maximum" in r.message and "loc" in r.message and "max_iter cannot help" in r.message
    assert "Try a larger max_iter" not in r.message


def test_heavy_tailed_data_keep_a_finite_t_maximum():
    x = RNG.standard_t(3.0, 5_000)
    r = kb.fit(dist.StudentT, x)
    assert r.converged and 2.0 < float(r.params["df"]) < 5.0
    np.testing.assert_allclose(
        r.log_likelihood, np.sum(stats.t.logpdf(x, r.params["df"], r.params["loc"], r.params["scale"])), rtol=1e-12)
