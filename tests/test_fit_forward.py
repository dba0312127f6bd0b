"""Forward fits, argmin KL(p‖q) = maximum likelihood: closed forms, scipy optima, moment matching."""

import importlib

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
import scipy.special as sp
import scipy.stats as st

import kullback as kb
from kullback.families import Gaussian

RNG = np.random.default_rng(20240611)
X1 = RNG.normal(1.5, 2.0, size=300)
COV = np.array([[2.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 0.5]])
X3 = RNG.multivariate_normal([1.0, -2.0, 0.5], COV, size=400)
# 500 rows like the data of test_fit_forward_mle and test_cli_fit: the compiled programs are shared
T_DATA = st.t.rvs(4.0, loc=1.0, scale=2.0, size=500, random_state=1)
G_DATA = st.gamma.rvs(2.5, scale=1 / 0.7, size=500, random_state=2)
BIMODAL = dist.MixtureSameFamily(
    dist.Categorical(probs=jnp.array([0.5, 0.5])), dist.Normal(jnp.array([-3.0, 3.0]), jnp.array([1.0, 1.0]))
)


def test_public_names():
    fit_pkg = importlib.import_module("kullback.fit")  # the attribute kb.fit is the function
    for name in fit_pkg.__all__:
        assert getattr(fit_pkg, name) is not None
    assert fit_pkg.DIRECTIONS == ("forward", "reverse")


def test_normal_mle_is_mean_and_ddof0_sd():
    r = kb.fit(dist.Normal, X1)
    assert r.method == "closed_form" and r.converged and r.num_iterations == 0
    np.testing.assert_allclose(r.params["loc"], X1.mean(), rtol=1e-12)
    np.testing.assert_allclose(r.params["scale"], X1.std(ddof=0), rtol=1e-12)
    # objective = mean NLL = −mean log N(x; μ̂, σ̂) (scipy reference)
    np.testing.assert_allclose(r.objective, -st.norm.logpdf(X1, X1.mean(), X1.std()).mean(), rtol=1e-12)
    assert isinstance(r.q, dist.Normal)


def test_normal_on_vectors_fits_each_column():
    r = kb.fit(dist.Normal, X3)
    np.testing.assert_allclose(r.params["loc"], X3.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(r.params["scale"], X3.std(axis=0), rtol=1e-12)
    assert r.q.event_shape == (3,)


def test_mvn_mle_is_mean_and_ml_covariance():
    r = kb.fit(dist.MultivariateNormal, X3)
    np.testing.assert_allclose(r.params["loc"], X3.mean(axis=0), rtol=1e-12)
    cov = np.asarray(r.params["scale_tril"]) @ np.asarray(r.params["scale_tril"]).T
    np.testing.assert_allclose(cov, np.cov(X3.T, bias=True), rtol=1e-11)
    ref = st.multivariate_normal(X3.mean(axis=0), np.cov(X3.T, bias=True)).logpdf(X3).mean()
    np.testing.assert_allclose(-r.objective, ref, rtol=1e-12)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_gaussian_family_mle(covariance):
    r = kb.fit(Gaussian(3, covariance), X3)
    ml = np.cov(X3.T, bias=True)
    expected = ml if covariance == "full" else np.diag(np.diag(ml))
    np.testing.assert_allclose(r.params["loc"], X3.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(r.params["covariance"], expected, rtol=1e-11, atol=1e-15)
    one = kb.fit(Gaussian(1), X1)  # (n,) data for a 1-d Gaussian
    np.testing.assert_allclose(one.params["covariance"], [[X1.var()]], rtol=1e-12)


def test_student_t_at_least_as_good_as_scipy():
    r = kb.fit(dist.StudentT, T_DATA)
    df, loc, scale = st.t.fit(T_DATA)
    ours, theirs = -r.objective, st.t.logpdf(T_DATA, df, loc, scale).mean()
    assert r.converged and r.method == "newton" and r.num_iterations > 0
    assert ours >= theirs - 1e-9 * abs(theirs)
    # the reported objective is the mean NLL at the reported parameters (scipy's density)
    p = r.params
    np.testing.assert_allclose(-st.t.logpdf(T_DATA, p["df"], p["loc"], p["scale"]).mean(), r.objective, rtol=1e-12)
    np.testing.assert_allclose([p["df"], p["loc"], p["scale"]], [df, loc, scale], rtol=1e-3)
    assert r.history[0] >= r.history[-1] and len(r.history) == r.num_iterations + 1


def test_gamma_matches_scipy_and_the_likelihood_equations():
    r = kb.fit(dist.Gamma, G_DATA)
    a_ref, _, scale_ref = st.gamma.fit(G_DATA, floc=0)
    a, rate = float(r.params["concentration"]), float(r.params["rate"])
    ours, theirs = -r.objective, st.gamma.logpdf(G_DATA, a_ref, 0, scale_ref).mean()
    assert r.converged and ours >= theirs - 1e-9 * abs(theirs)
    # score equations of the gamma MLE: rate = a / mean, log a − ψ(a) = log mean − mean log x
    np.testing.assert_allclose(rate, a / G_DATA.mean(), rtol=1e-6)
    np.testing.assert_allclose(np.log(a) - sp.digamma(a), np.log(G_DATA.mean()) - np.log(G_DATA).mean(), rtol=1e-6)


def test_fixed_parameter():
    r = kb.fit(dist.StudentT, T_DATA, fixed={"df": 4.0})
    assert "df" not in r.params and float(r.q.df) == 4.0
    ref = st.t.fit(T_DATA, fix_df=4.0)
    assert -r.objective >= st.t.logpdf(T_DATA, *ref).mean() - 1e-9


def test_moment_matching_of_a_mixture():
    r = kb.fit(dist.Normal, BIMODAL)
    assert r.method == "moment_matching" and r.converged
    np.testing.assert_allclose(r.params["loc"], 0.0, atol=1e-12)
    np.testing.assert_allclose(r.params["scale"] ** 2, 10.0, rtol=1e-12)  # 1 + 3² (within + between)
    np.testing.assert_allclose(r.objective, st.norm(0, np.sqrt(10)).entropy(), rtol=1e-12)
    t = kb.fit(Gaussian(1), dist.MultivariateNormal(jnp.array([2.0]), jnp.array([[3.0]])))
    np.testing.assert_allclose(t.params["covariance"], [[3.0]], rtol=1e-12)
    s = kb.fit(dist.Normal, dist.StudentT(5.0, 1.0, 2.0))
    np.testing.assert_allclose([s.params["loc"], s.params["scale"] ** 2], [1.0, 4.0 * 5 / 3], rtol=1e-12)


def test_distribution_target_without_closed_form_uses_draws():
    p = dist.Gamma(3.0, 2.0)
    r = kb.fit(dist.Gamma, p, key=0, num_samples=len(G_DATA))  # same shape as G_DATA: no recompile
    assert r.converged and "draws from target" in r.message
    # MLE from n = 800 draws: asymptotic sd of the shape sqrt(a / (n (a ψ'(a) − 1))) ≈ 0.14 and
    # of the rate ≈ 0.1; allow 5 sd
    np.testing.assert_allclose(r.params["concentration"], 3.0, atol=0.7)
    np.testing.assert_allclose(r.params["rate"], 2.0, atol=0.5)
    again = kb.fit(dist.Gamma, p, key=0, num_samples=len(G_DATA))
    assert float(again.params["rate"]) == float(r.params["rate"])
    with pytest.raises(ValueError, match="key="):
        kb.fit(dist.Gamma, p)


def test_bad_data_names_target_and_row():
    bad = X1.copy()
    bad[7] = np.nan
    bad[20] = np.inf
    with pytest.raises(ValueError, match=r"target \(the data\).*row 7.*2 rows"):
        kb.fit(dist.Normal, bad)
    with pytest.raises(ValueError, match=r"shape \(n,\) or \(n, d\)"):
        kb.fit(dist.Normal, np.zeros((2, 2, 2)))


def test_data_outside_the_support():
    with pytest.raises(ValueError, match=r"support of Gamma.*row 3"):
        kb.fit(dist.Gamma, np.array([1.0, 2.0, 0.5, -1.0, 3.0]))


def test_unknown_family_direction_option():
    with pytest.raises(TypeError, match="family"):
        kb.fit("normal", X1)
    with pytest.raises(ValueError, match=r"direction.*'forward', 'reverse'"):
        kb.fit(dist.Normal, X1, direction="sideways")
    with pytest.raises(TypeError, match="Unknown options"):
        kb.fit(dist.Normal, X1, learning_rat=0.1)
    with pytest.raises(TypeError, match="direction='reverse'"):
        kb.fit(dist.Normal, lambda x: -(x**2))


def test_fit_result_fields_and_repr():
    r = kb.fit(dist.StudentT, T_DATA)
    assert r.direction == "forward" and r.elbo is None and r.family == "StudentT"
    assert isinstance(r.history, np.ndarray) and np.isclose(r.history[-1], r.objective)
    assert "Converged" in r.message
    text = repr(r)
    assert text.startswith("FitResult(direction='forward'") and "df=" in text and "converged=True" in text
    with pytest.raises(AttributeError):
        r.objective = 0.0  # frozen


def test_not_converged_says_what_to_try():
    r = kb.fit(dist.StudentT, T_DATA, max_iter=2)
    assert not r.converged and r.num_iterations == 2 and "max_iter" in r.message
