"""Families: parameter maps, densities against scipy, base draws, wrapping numpyro classes."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
import scipy.stats as st

import kullback as kb
from kullback.families import AbstractFamily, Gaussian, NumpyroFamily, as_family
from kullback.families._base import base_normals
from kullback.families._init import default_value

COV = np.array([[2.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 0.5]])
MEAN = np.array([1.0, -2.0, 0.5])
X = np.array([[0.3, -1.0, 0.2], [1.5, -2.5, 1.0], [2.0, 0.0, -0.4]])


def test_public_names():
    for name in kb.families.__all__:
        assert getattr(kb.families, name) is not None
    assert issubclass(Gaussian, AbstractFamily) and issubclass(NumpyroFamily, AbstractFamily)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_gaussian_log_prob_and_entropy_match_scipy(covariance):
    g = Gaussian(3, covariance=covariance)
    cov = COV if covariance == "full" else np.diag(np.diag(COV))
    values = {"loc": MEAN, "covariance": cov}
    params = g.from_constrained(values)
    out = g.constrained(params)
    np.testing.assert_allclose(out["loc"], MEAN, rtol=1e-12)
    np.testing.assert_allclose(out["covariance"], cov, rtol=1e-12, atol=1e-14)
    ref = st.multivariate_normal(MEAN, cov)
    np.testing.assert_allclose(g.distribution(params).log_prob(X), ref.logpdf(X), rtol=1e-10)
    np.testing.assert_allclose(g.entropy(params, None), ref.entropy(), rtol=1e-12)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_gaussian_draws_with_standardised_noise_have_exact_moments(covariance):
    g = Gaussian(3, covariance=covariance)
    cov = COV if covariance == "full" else np.diag(np.diag(COV))
    params = g.from_constrained({"loc": MEAN, "covariance": cov})
    noise = g.base_noise(jax.random.PRNGKey(0), 101, standardize=True)
    x = np.asarray(g.draws(params, noise, 101))
    np.testing.assert_allclose(x.mean(axis=0), MEAN, atol=1e-12)
    np.testing.assert_allclose(np.cov(x.T, bias=True), cov, atol=1e-12)


def test_base_normals_standardised_and_plain():
    key = jax.random.PRNGKey(3)
    eps = np.asarray(base_normals(key, (200, 2), standardize=True))
    np.testing.assert_allclose(eps.mean(axis=0), 0.0, atol=1e-13)
    np.testing.assert_allclose(eps.T @ eps / 200, np.eye(2), atol=1e-12)
    plain = np.asarray(base_normals(key, (4000, 2), standardize=False))
    # iid N(0, 1): the sample mean is within 5 standard errors (5 / sqrt(4000) ≈ 0.08) of 0
    assert np.all(np.abs(plain.mean(axis=0)) < 0.08)
    scalar = np.asarray(base_normals(key, (50,), standardize=True))
    assert scalar.shape == (50,) and abs(scalar.mean()) < 1e-13 and abs(np.mean(scalar**2) - 1) < 1e-12


def test_gaussian_rejects_bad_settings():
    with pytest.raises(ValueError, match="dim"):
        Gaussian(0)
    with pytest.raises(ValueError, match="covariance"):
        Gaussian(2, covariance="lowrank-ish")
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        Gaussian(2).with_event_shape((3,))


def test_gaussian_is_hashable_value():
    assert Gaussian(2, "full") == Gaussian(2, "full") and hash(Gaussian(2)) == hash(Gaussian(2, "diag"))


def test_numpyro_family_chooses_one_parameterisation():
    mvn = NumpyroFamily(dist.MultivariateNormal).with_event_shape((3,))
    assert mvn.param_names == ("loc", "scale_tril")
    params = mvn.from_constrained({"loc": MEAN, "scale_tril": np.linalg.cholesky(COV)})
    assert params["scale_tril"].shape == (6,)  # unconstrained: the d(d+1)/2 free entries
    ref = st.multivariate_normal(MEAN, COV)
    np.testing.assert_allclose(mvn.distribution(params).log_prob(X), ref.logpdf(X), rtol=1e-10)
    assert NumpyroFamily(dist.CategoricalLogits).param_names == ("logits",)


def test_numpyro_family_univariate_class_on_vectors_is_independent():
    fam = NumpyroFamily(dist.StudentT).with_event_shape((3,))
    params = fam.from_constrained({"df": 4.0, "loc": MEAN, "scale": [1.0, 2.0, 0.5]})
    q = fam.distribution(params)
    assert q.event_shape == (3,)
    ref = st.t.logpdf(X, 4.0, MEAN, [1.0, 2.0, 0.5]).sum(axis=1)
    np.testing.assert_allclose(q.log_prob(X), ref, rtol=1e-10)


def test_numpyro_family_fixed_parameters():
    fam = NumpyroFamily(dist.StudentT, fixed={"df": 3.0})
    assert fam.param_names == ("loc", "scale") and "df=3.0" in fam.name
    q = fam.distribution(fam.init_at(0.5, 2.0))
    assert float(q.df) == 3.0 and float(q.loc) == 0.5 and float(q.scale) == 2.0
    with pytest.raises(ValueError, match="fixed"):
        NumpyroFamily(dist.StudentT, fixed={"nu": 3.0})


def test_numpyro_family_errors():
    with pytest.raises(TypeError, match="depends on other parameters"):
        NumpyroFamily(dist.Uniform)
    with pytest.raises(TypeError, match="cls"):
        NumpyroFamily(3)
    with pytest.raises(TypeError, match="Pass the class"):
        as_family(dist.Normal(0.0, 1.0))
    with pytest.raises(TypeError, match="family"):
        as_family("normal")
    with pytest.raises(ValueError, match=r"vector draws"):
        NumpyroFamily(dist.MultivariateNormal).with_event_shape(())


def test_gamma_start_is_method_of_moments():
    x = st.gamma.rvs(2.5, scale=1 / 0.7, size=500, random_state=0)
    m, v = x.mean(), x.var()
    fam = as_family(dist.Gamma).with_event_shape(())
    start = fam.constrained(fam.init_from_data(jnp.asarray(x)))
    np.testing.assert_allclose(start["concentration"], m**2 / v, rtol=1e-10)
    np.testing.assert_allclose(start["rate"], m / v, rtol=1e-10)


def test_default_values_fall_back_inside_the_constraint():
    assert float(default_value(dist.StudentT, "df", (), None)) == 5.0
    assert float(default_value(dist.Gamma, "rate", (), None)) == pytest.approx(1.0)  # biject_to(positive)(0)
    beta = default_value(dist.Beta, "concentration1", (2,), np.array([[0.2, 0.5], [0.4, 0.7], [0.3, 0.6]]))
    assert beta.shape == (2,) and np.all(beta > 0)


@pytest.mark.parametrize("law, truth, cls", [(st.gamma, (2.5, 3.0, 2.0), dist.Gamma),
                                             (st.weibull_min, (2.5, 1.0, 2.0), dist.Weibull)])
def test_locscale_start_is_method_of_moments_inside_the_support(law, truth, cls):
    # the three-parameter start matches the data's mean, variance and skewness (closed forms of
    # scipy's law at the start), and keeps loc below the smallest row
    from kullback.families import LocScale

    x = law.rvs(*truth, size=2000, random_state=0)
    fam = LocScale(cls).with_event_shape(())
    start = {k: float(v) for k, v in fam.constrained(fam.init_from_data(jnp.asarray(x))).items()}
    assert start["loc"] < x.min()
    mean, var, skew = law.stats(start["concentration"], start["loc"], start["scale"], moments="mvs")
    if start["loc"] < x.min() - 0.05 * x.std() - 1e-12:  # not clipped: the moments are the data's
        np.testing.assert_allclose([mean, var, skew], [x.mean(), x.var(), st.skew(x)], rtol=1e-8)
    np.testing.assert_allclose(start["concentration"], truth[0], rtol=0.3)  # skewness of 2000 rows: ±20%
    held = LocScale(cls, fixed={"loc": 0.0}).with_event_shape(())  # a fixed loc: the generic start
    assert set(held.constrained(held.init_from_data(jnp.asarray(x)))) == {"concentration", "scale"}
