"""FitResult's methods for its users: summary(), to_arviz(), covariance, conf_int, plot(), pickle.

Reverse summaries are checked against numpy on the very draws they summarise (same key: equal to
rounding); intervals against statsmodels' GenericLikelihoodModel (its Hessian is numerical).
"""

import dataclasses
import json
import pickle

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from scipy import stats

import kullback as kb
from kullback.fit._sampler import ModelSites, Sampler

X = np.array([[1.0, 0.5, -0.2], [0.3, -1.0, 0.8], [1.2, 0.1, 0.4], [-0.5, 0.7, 1.0], [0.2, 0.2, -0.9]])
Y = np.array([0.5, -0.3, 1.1, 0.2, -0.4])
LABELS = ["beta[0]", "beta[1]", "beta[2]", "sigma"]  # sites in jax.tree order, coordinates row-major
UNCONSTRAINED = {"beta": np.zeros(3), "sigma": np.zeros(())}


def regression(x, y=None):
    """A module-level model (pickle finds it by name): a constrained scalar and a vector site."""
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([3]))
    numpyro.sample("y", dist.Normal(x @ beta, sigma), obs=y)


def log_p(x):
    return -0.5 * jnp.sum(((x - jnp.array([1.0, -2.0])) / jnp.array([0.5, 2.0])) ** 2)


@pytest.fixture(scope="module")
def rev():
    return kb.fit(kb.families.Gaussian(4), regression, direction="reverse", key=0, model_args=(X, Y))


@pytest.fixture(scope="module")
def gamma_data():
    return np.random.default_rng(5).gamma(2.5, 1.0 / 1.7, 400)


def _matrix(draws):
    return np.column_stack([draws["beta"], draws["sigma"]])


def test_reverse_summary_is_the_draws_summarised(rev):
    s = rev.summary(alpha=0.1, key=3, num=2000)
    x = _matrix(rev.draws(3, 2000))
    frame = s.to_frame()
    assert list(frame.index) == LABELS and list(frame.columns) == ["mean", "sd", "5%", "50%", "95%", "mcse_mean"]
    np.testing.assert_allclose(frame["mean"], x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(frame["sd"], x.std(axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(frame[["5%", "50%", "95%"]].T, np.quantile(x, [0.05, 0.5, 0.95], axis=0), rtol=1e-12)
    np.testing.assert_allclose(frame["mcse_mean"], x.std(axis=0, ddof=1) / np.sqrt(2000), rtol=1e-12)
    assert (frame.loc["sigma", ["5%", "50%", "95%"]] > 0).all()  # the constrained space
    # the default (key 0, 4000 draws) is deterministic; the text carries the statistics and the message
    assert str(rev.summary()) == str(rev.summary())
    text = str(s)
    for piece in ("beta[2]", "sigma", "elbo", "pareto_k", "pareto_k_verdict", "ess", "log_z", rev.message):
        assert piece in text
    assert s.statistics["pareto_k_verdict"] == rev.pareto_k_verdict
    json.dumps(s.to_dict())
    assert "<table" in s._repr_html_() and "beta[0]" in s._repr_html_()


def test_reverse_covariance_and_to_arviz_hold_the_draws(rev):
    x = _matrix(rev.draws(0, 4000))
    np.testing.assert_allclose(rev.covariance, np.cov(x, rowvar=False), rtol=1e-12)
    idata = rev.to_arviz(key=1, num=500)
    d = rev.draws(1, 500)
    assert idata.posterior["beta"].shape == (1, 500, 3) and idata.posterior["sigma"].shape == (1, 500)
    np.testing.assert_array_equal(idata.posterior["beta"].values[0], d["beta"])
    np.testing.assert_array_equal(idata.posterior["sigma"].values[0], d["sigma"])
    assert idata.posterior.attrs["pareto_k_verdict"] == rev.pareto_k_verdict
    import arviz as az

    ref = az.summary(idata, kind="stats", round_to="none")  # ArviZ on the same draws
    ours = rev.summary(key=1, num=500).to_frame()
    np.testing.assert_allclose(ref.loc[LABELS, "mean"], ours.loc[LABELS, "mean"], rtol=1e-12)
    np.testing.assert_allclose(ref.loc[LABELS, "sd"], ours.loc[LABELS, "sd"], rtol=1e-12)


class _StudentT(pytest.importorskip("statsmodels.base.model").GenericLikelihoodModel):
    """StudentT(df, loc, scale), numpyro's parameterisation."""

    def loglike(self, params):
        df, loc, scale = params
        return float(np.sum(stats.t.logpdf(self.endog, df, loc, scale)))


def test_conf_int_and_covariance_match_statsmodels():
    x = 1.0 + 2.0 * np.random.default_rng(7).standard_t(5.0, 600)
    r = kb.fit(dist.StudentT, x)
    names = ["df", "loc", "scale"]
    start = [float(r.params[k]) for k in names]
    model = _StudentT(x, extra_params_names=names)
    ref = model.fit(start_params=start, method="nm", xtol=1e-12, ftol=1e-14, maxiter=2000, disp=False)
    np.testing.assert_allclose(ref.params, start, rtol=1e-5)  # the same optimum (Nelder-Mead's own tolerance)
    ours = np.array([r.conf_int(0.1)[k] for k in names])
    # statsmodels' Hessian is a finite-difference one at its own optimum: ~2e-6 relative here
    np.testing.assert_allclose(ours, ref.conf_int(alpha=0.1), rtol=1e-4)
    np.testing.assert_allclose(r.covariance, ref.cov_params(), rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(np.diag(r.covariance), [float(r.stderr[k]) ** 2 for k in names], rtol=1e-12)


def test_forward_summary_table_keeps_its_text(gamma_data):
    r = kb.fit(dist.Gamma, gamma_data)
    s = r.summary(alpha=0.1)
    lines = str(s).splitlines()
    assert lines[0] == "Gamma fitted by closed_form (forward KL): converged"
    assert lines[1].split() == ["parameter", "estimate", "std.", "error", "[0.05", "0.95]"]
    assert "log_likelihood" in s and "KL(p||q) est." in s and s.endswith(r.message)  # still a str
    frame = s.to_frame()
    assert list(frame.columns) == ["estimate", "stderr", "ci_low", "ci_high"]
    np.testing.assert_allclose(frame.loc["rate", ["ci_low", "ci_high"]], r.conf_int(0.1)["rate"], rtol=1e-15)
    assert s.statistics["aic"] == r.aic


def test_forward_to_arviz_draws_the_asymptotic_normal(gamma_data):
    r = kb.fit(dist.Gamma, gamma_data)
    se = np.array([float(r.stderr["rate"]), float(r.stderr["concentration"])])
    cov = np.diag(se**2) + np.array([[0.0, 0.8], [0.8, 0.0]]) * se[0] * se[1]
    # stored in another order than params: the property reorders to (concentration, rate)
    r = dataclasses.replace(r, info={"covariance": cov, "covariance_names": ("rate", "concentration")})
    np.testing.assert_allclose(r.covariance, cov[::-1, ::-1], rtol=1e-15)
    idata = r.to_arviz(key=0, num=20000)
    assert idata.posterior["rate"].shape == (1, 20000)
    np.testing.assert_allclose(idata.mle["covariance"].values, r.covariance, rtol=1e-15)
    assert list(idata.mle["covariance"].coords["coordinate"].values) == ["concentration", "rate"]
    draws = np.column_stack([idata.posterior[k].values[0] for k in ("concentration", "rate")])
    np.testing.assert_allclose(np.cov(draws, rowvar=False), r.covariance, rtol=0.05)  # MC: ~1% error
    assert "not a Bayesian posterior" in idata.posterior.attrs["kind"]
    with pytest.raises(ValueError, match="covariance"):
        kb.fit(dist.Normal, dist.Normal(0.0, 1.0)).to_arviz()


def _same_fields(a, b):
    for f in dataclasses.fields(a):
        if f.name in ("q", "sampler", "info"):
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, dict):
            assert x.keys() == y.keys()
            for k in x:
                np.testing.assert_array_equal(x[k], y[k])
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y, f.name
    assert type(a.q) is type(b.q)


def test_forward_results_pickle_losslessly(gamma_data):
    for r in (kb.fit(dist.Gamma, gamma_data), kb.fit(dist.StudentT, gamma_data, solver="newton")):
        back = pickle.loads(pickle.dumps(r))
        _same_fields(r, back)  # data_entropy computed at dumps: equal, not deferred
        assert str(back.summary()) == str(r.summary())
        np.testing.assert_array_equal(back.q.log_prob(gamma_data[:5]), r.q.log_prob(gamma_data[:5]))


def test_reverse_results_pickle_and_draw_again():
    constrained = kb.fit(dist.Normal, dist.Gamma(3.0, 2.0), direction="reverse", key=0)  # through T = exp
    flat = kb.fit(kb.families.Gaussian(2), log_p, direction="reverse", key=0)  # a module-level log density
    for r in (constrained, flat):
        back = pickle.loads(pickle.dumps(r))
        _same_fields(r, back)
        np.testing.assert_array_equal(back.draws(4, 300), r.draws(4, 300))
        np.testing.assert_array_equal(back.draws(4, 300, resample=True), r.draws(4, 300, resample=True))
        assert str(back.summary(num=500)) == str(r.summary(num=500))
    assert np.all(np.asarray(constrained.draws(0, 100)) > 0)
    lam = kb.fit(kb.families.Gaussian(2), lambda x: log_p(x), direction="reverse", key=0)
    back = pickle.loads(pickle.dumps(lam))  # a lambda: left out, and only resampling needs it
    np.testing.assert_array_equal(back.draws(1, 50), lam.draws(1, 50))
    with pytest.raises(ValueError, match="needs the target's log density"):
        back.draws(1, 50, resample=True)


def _with_model_sites(r, model):
    q = r.sampler.q
    return dataclasses.replace(r, sampler=Sampler(q, None, None, None, ModelSites(model, (X, Y), {}, UNCONSTRAINED)))


def test_model_sites_draw_as_the_fit_does_and_pickle(rev):
    r = _with_model_sites(rev, regression)
    expected = rev.draws(2, 50)
    for got in (r.draws(2, 50), pickle.loads(pickle.dumps(r)).draws(2, 50)):
        assert got.keys() == expected.keys()
        for k in expected:
            np.testing.assert_allclose(got[k], expected[k], rtol=1e-12)
    back = pickle.loads(pickle.dumps(r))
    np.testing.assert_allclose(back.draws(2, 50, resample=True)["beta"], rev.draws(2, 50, resample=True)["beta"],
                               rtol=1e-10)  # the model's own (unpadded) log density

    def local(x, y=None):
        regression(x, y)

    with pytest.raises(pickle.PicklingError, match="module level"):
        pickle.dumps(_with_model_sites(rev, local))


def test_a_module_level_model_fit_round_trips(rev):
    assert isinstance(rev.sampler.postprocess, ModelSites)
    back = pickle.loads(pickle.dumps(rev))
    _same_fields(rev, back)
    np.testing.assert_array_equal(back.draws(0, 100)["beta"], rev.draws(0, 100)["beta"])
    assert str(back.summary()) == str(rev.summary())


def test_plots_have_a_panel_per_view(rev, gamma_data):
    from matplotlib.figure import Figure

    fwd = kb.fit(dist.Gamma, gamma_data)
    fig = fwd.plot(gamma_data)
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # histogram with the density; Q-Q
    assert len(fwd.plot().axes) == 1
    assert len(kb.fit(dist.Poisson, np.arange(20.0) % 5).plot(np.arange(20.0) % 5).axes) == 2
    two = np.random.default_rng(0).normal(size=(100, 2))
    assert len(kb.fit(dist.MultivariateNormal, two).plot(two).axes) == 2
    assert len(rev.plot(num=500).axes) == 4  # one per coordinate: beta[0..2], sigma
    assert len(rev.plot(target_draws=rev.draws(9, 300), num=500).axes) == 4
    with pytest.raises(ValueError, match="target_draws"):
        rev.plot(target_draws={"beta": np.zeros((10, 3))}, num=500)
    with pytest.raises(TypeError, match="target_draws"):
        rev.plot(gamma_data)


def test_every_result_has_a_status_from_the_list():
    from kullback.fit._result import STATUSES

    x = np.random.default_rng(0).gamma(2.0, 1.0, 200)
    assert kb.fit(dist.Normal, x).status == "exact"
    assert kb.fit(dist.Weibull, x, solver="newton").status == "converged"
    assert kb.fit(dist.Weibull, x, solver="lbfgs", max_iter=1).status == "max_iter"
    rev = kb.fit(kb.families.Gaussian(2), lambda z: -0.5 * jnp.sum(z**2), direction="reverse", key=0)
    assert rev.status == "converged" and rev.status in STATUSES
    flat = kb.fit(kb.families.Gaussian(2), lambda z: -0.5 * z[0] ** 2, direction="reverse", key=0)  # z[1] improper
    assert not flat.converged and flat.status == "improper"
