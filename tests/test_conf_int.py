"""Forward-fit intervals against statsmodels' GenericLikelihoodModel; kb.kl points scipy inputs on."""

import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import stats

import kullback as kb

sm = pytest.importorskip("statsmodels.base.model")


class _GammaRate(sm.GenericLikelihoodModel):
    """Gamma(α, β) with rate β, the numpyro parametrisation."""

    def loglike(self, params):
        a, b = params
        return float(np.sum(stats.gamma.logpdf(self.endog, a, scale=1.0 / b)))


def test_conf_int_matches_statsmodels():
    x = np.random.default_rng(5).gamma(2.5, 1.0 / 1.7, 800)
    r = kb.fit(dist.Gamma, x)
    ours = np.array([r.conf_int(0.1)["concentration"], r.conf_int(0.1)["rate"]])
    ref = _GammaRate(x, exog=np.ones((len(x), 1))).fit(
        start_params=[float(r.params["concentration"]), float(r.params["rate"])], method="bfgs", disp=False, gtol=1e-10)
    np.testing.assert_allclose(ref.params, [r.params["concentration"], r.params["rate"]], rtol=1e-6)
    np.testing.assert_allclose(ours, ref.conf_int(alpha=0.1), rtol=1e-4)  # statsmodels' Hessian is numerical


def test_conf_int_checks_alpha_and_needs_standard_errors():
    r = kb.fit(dist.Normal, np.arange(10.0))
    with pytest.raises(ValueError, match="alpha"):
        r.conf_int(1.5)
    p = dist.MixtureSameFamily(dist.Categorical(probs=np.array([0.5, 0.5])), dist.Normal(np.array([-3.0, 3.0]), 1.0))
    with pytest.raises(ValueError, match="standard errors"):
        kb.fit(dist.Normal, p).conf_int()


def test_kl_of_a_frozen_scipy_distribution_points_to_estimate_kl():
    with pytest.raises(TypeError, match="estimate_kl"):
        kb.kl(stats.norm(0, 1), stats.norm(1, 2))
    with pytest.raises(TypeError, match="estimate_entropy"):
        kb.entropy(stats.t(3))
