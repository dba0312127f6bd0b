"""Mixtures of numpyro component families by EM (``fit/_em_components``): the Normal mixture at the
Gaussian EM's and scikit-learn's optimum, Poisson and Exponential mixtures at a plain NumPy EM's
optimum and no better point for scipy nearby, integer weights as repeated rows, the collapse guard,
and components without a closed-form M step on L-BFGS, saying so.

Tolerances: EM stopped at tol = 1e-12 leaves < 1e-12 of mean log-likelihood to gain (the Aitken
test), so log-likelihoods agree to 1e-10 relative; parameters to 1e-5 (δθ ~ √tol near an optimum).
"""

import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import stats
from scipy.optimize import minimize
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture

import kullback as kb
from kullback._compile import count_compiles
from kullback.families import Gaussian, Mixture, NumpyroFamily
from kullback.fit._em_components import gamma_shape, weighted_median

RNG = np.random.default_rng(0)
X_NORMAL = np.concatenate([RNG.normal(-2.0, 1.0, 300), RNG.normal(3.0, 0.5, 200)])
X_POISSON = np.concatenate([RNG.poisson(2.0, 300), RNG.poisson(9.0, 200)]).astype(float)
X_EXPONENTIAL = np.concatenate([RNG.exponential(1.0, 300), RNG.exponential(8.0, 200)])
COUNTS = RNG.integers(0, 4, 500)  # frequencies, some rows at 0


def _logpdf(name, x, p):
    """log q_j(x) (k, n) by scipy, from the reported parameters."""
    if name == "poisson":
        return stats.poisson.logpmf(x[None], p["rate"][:, None])
    return stats.expon.logpdf(x[None], scale=1.0 / p["rate"][:, None])


def _plain_em(name, x, k=2, iters=20000):
    """A textbook EM from a quantile split, until the mean log-likelihood stops changing (1e-15)."""
    parts = np.array_split(np.sort(x), k)
    weights, mean = np.full(k, 1.0 / k), np.array([p.mean() for p in parts])
    prev = -np.inf
    for _ in range(iters):
        rate = mean if name == "poisson" else 1.0 / mean
        logp = np.log(weights)[:, None] + _logpdf(name, x, {"rate": rate})
        ll = logsumexp(logp, axis=0)
        resp = np.exp(logp - ll)
        weights, mean = resp.mean(axis=1), resp @ x / resp.sum(axis=1)
        if abs(ll.mean() - prev) < 1e-15:
            break
        prev = ll.mean()
    return ll.mean(), {"weights": weights, "rate": rate}


def test_a_normal_mixture_reaches_the_gaussian_em_and_sklearn_optimum():
    r = kb.fit(Mixture(dist.Normal, 2), X_NORMAL, key=0, tol=1e-10, max_iter=1000)
    g = kb.fit(Mixture(Gaussian(1), 2), X_NORMAL, key=0, tol=1e-10, max_iter=1000)
    ref = GaussianMixture(2, tol=1e-10, max_iter=1000, random_state=0).fit(X_NORMAL[:, None])
    assert r.converged and r.method == "em" and "Normal components" in r.message, r.message
    np.testing.assert_allclose(r.objective, g.objective, rtol=1e-12)  # the same EM
    np.testing.assert_allclose(-r.objective, ref.score(X_NORMAL[:, None]), rtol=1e-8)
    assert sorted(r.params) == ["loc", "scale", "weights"] and r.params["loc"].shape == (2,)
    order, theirs = np.argsort(r.params["loc"]), np.argsort(ref.means_[:, 0])
    np.testing.assert_allclose(r.params["loc"][order], ref.means_[theirs, 0], atol=1e-4)
    np.testing.assert_allclose(r.params["scale"][order] ** 2, ref.covariances_[theirs].ravel(), rtol=1e-4)
    assert r.num_params == ref._n_parameters() == 5
    np.testing.assert_allclose(r.bic, ref.bic(X_NORMAL[:, None]), rtol=1e-8)
    np.testing.assert_allclose(-np.mean(np.asarray(r.q.log_prob(X_NORMAL))), r.objective, rtol=1e-12)


def test_a_lognormal_mixture_is_the_normal_mixture_of_log_x():
    normal = kb.fit(Mixture(dist.Normal, 2), X_NORMAL, key=1, tol=1e-10)
    r = kb.fit(Mixture(dist.LogNormal, 2), np.exp(X_NORMAL), key=1, tol=1e-10)
    assert r.method == "em" and "on log x" in r.message, r.message
    np.testing.assert_allclose(r.objective, normal.objective + X_NORMAL.mean(), rtol=1e-12)  # Jacobian Σ log x
    np.testing.assert_allclose(-np.mean(np.asarray(r.q.log_prob(np.exp(X_NORMAL)))), r.objective, rtol=1e-12)


@pytest.mark.parametrize("name, cls, x", [("poisson", dist.Poisson, X_POISSON),
                                          ("exponential", dist.Exponential, X_EXPONENTIAL)])
def test_poisson_and_exponential_mixtures_reach_a_plain_ems_optimum(no_persistent_cache, name, cls, x):
    with count_compiles() as c:
        r = kb.fit(Mixture(cls, 2), x, key=0, tol=1e-12, max_iter=5000, num_restarts=2)
    assert c.count == 0, f"{c.count} programs compiled"
    assert r.converged and r.method == "em" and "closed-form M step" in r.message, r.message
    ref_ll, ref = _plain_em(name, x)
    np.testing.assert_allclose(-r.objective, ref_ll, rtol=1e-10)
    order, theirs = np.argsort(r.params["rate"]), np.argsort(ref["rate"])
    np.testing.assert_allclose(r.params["rate"][order], ref["rate"][theirs], rtol=1e-5)
    np.testing.assert_allclose(r.params["weights"][order], ref["weights"][theirs], atol=1e-5)
    # the reported log-likelihood is scipy's of the reported parameters, and of q
    p = r.params
    ll = logsumexp(np.log(p["weights"])[:, None] + _logpdf(name, x, p), axis=0)
    np.testing.assert_allclose(r.log_likelihood, ll.sum(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(r.q.log_prob(x)), ll, rtol=1e-12)
    assert r.num_params == 3 and (np.diff(r.history) <= 1e-12).all()

    def nll(z):  # an independent optimiser from our optimum finds nothing better
        w = 1.0 / (1.0 + np.exp(-z[0]))
        rates = np.exp(z[1:])
        return -np.mean(logsumexp(np.log([[w], [1.0 - w]]) + _logpdf(name, x, {"rate": rates}), axis=0))

    z0 = [np.log(p["weights"][0] / p["weights"][1]), *np.log(p["rate"])]
    np.testing.assert_allclose(nll(z0), r.objective, rtol=1e-12)
    assert minimize(nll, z0, method="BFGS").fun >= r.objective - 1e-11 * abs(r.objective)


@pytest.mark.parametrize("cls, x", [(dist.Poisson, X_POISSON), (dist.Laplace, X_NORMAL), (dist.Gamma, X_EXPONENTIAL)])
def test_integer_weights_equal_repeated_rows(cls, x):
    mix = Mixture(cls, 2)
    weighted = kb.fit(mix, x, key=3, sample_weight=COUNTS, tol=1e-12, max_iter=3000)
    repeated = kb.fit(mix, np.repeat(x, COUNTS), key=3, tol=1e-12, max_iter=3000)
    assert weighted.method == repeated.method == "em"
    np.testing.assert_allclose(weighted.objective, repeated.objective, rtol=1e-10)
    np.testing.assert_allclose(weighted.log_likelihood, repeated.log_likelihood, rtol=1e-10)
    for name in weighted.params:
        np.testing.assert_allclose(np.sort(weighted.params[name]), np.sort(repeated.params[name]), rtol=1e-5)


@pytest.mark.parametrize("cls, x", [(dist.Laplace, X_NORMAL), (dist.Gamma, X_EXPONENTIAL)])
def test_exact_but_not_closed_form_m_steps_reach_an_optimum(cls, x):
    r = kb.fit(Mixture(cls, 2), x, key=0, tol=1e-12, max_iter=3000)
    assert r.converged and r.method == "em" and "exact M step" in r.message, r.message
    names = [n for n in r.params if n != "weights"]
    family = Mixture(cls, 2).with_event_shape(())

    def nll(z):  # Nelder–Mead: the Laplace likelihood has kinks at the data
        values = {"weights": np.array([1.0, np.exp(z[0])]) / (1.0 + np.exp(z[0]))}
        values.update({n: np.array(z[1 + 2 * i:3 + 2 * i]) for i, n in enumerate(names)})
        values.update({n: np.exp(v) for n, v in values.items() if n in ("scale", "concentration", "rate")})
        return -float(np.mean(family.distribution(family.from_constrained(values)).log_prob(x)))

    p = r.params
    z0 = [np.log(p["weights"][1] / p["weights"][0])]
    for n in names:
        z0 += list(p[n] if n == "loc" else np.log(p[n]))
    np.testing.assert_allclose(nll(z0), r.objective, rtol=1e-12)
    # EM's stop leaves an estimated < tol = 1e-12 to gain (Aitken); a slow EM (Gamma: ~300 steps) a few times that
    assert minimize(nll, z0, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14}).fun >= r.objective - 1e-11


def test_the_m_step_helpers():
    x = np.array([[3.0], [1.0], [2.0], [10.0]])
    resp = np.array([[1.0, 1.0, 1.0, 0.0], [0.1, 0.1, 0.1, 5.0]])
    np.testing.assert_array_equal(weighted_median(x, np.argsort(x, axis=0), resp), [[2.0], [10.0]])
    s = np.array([1e-4, 0.1, 1.0, 5.0])
    a = gamma_shape(s)
    from scipy.special import digamma

    np.testing.assert_allclose(np.log(a) - digamma(a), s, rtol=1e-13, atol=1e-14)  # log a − ψ(a) cancels


def test_bernoulli_mixtures_of_binary_vectors():
    truth = np.repeat([0, 1], [300, 200])
    x = (RNG.random((500, 5)) < np.where(truth[:, None] == 0, 0.15, 0.8)).astype(float)
    probs = kb.fit(Mixture(dist.BernoulliProbs, 2), x, key=0, tol=1e-10)
    logits = kb.fit(Mixture(dist.BernoulliLogits, 2), x, key=0, tol=1e-10)
    assert probs.method == logits.method == "em" and probs.params["probs"].shape == (2, 5)
    np.testing.assert_allclose(probs.objective, logits.objective, rtol=1e-12)
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-logits.params["logits"])), probs.params["probs"], rtol=1e-10)
    assert probs.num_params == 2 - 1 + 2 * 5


def test_a_collapsed_component_is_warned():
    x = np.concatenate([X_NORMAL, np.full(3, 40.0)])
    with pytest.warns(UserWarning, match="collapsed onto a point"):
        r = kb.fit(Mixture(dist.Laplace, 3), x, key=0)
    assert "not a better optimum" in r.message


def test_data_outside_the_support_is_an_error():
    with pytest.raises(ValueError, match="support of Mixture\\(Poisson, 2\\).*row 1"):
        kb.fit(Mixture(dist.Poisson, 2), np.array([1.0, 2.5, 3.0]), key=0)


def test_components_without_a_closed_form_m_step_say_they_ran_lbfgs():
    fixed = NumpyroFamily(dist.Normal, fixed={"scale": 1.0})  # a fixed parameter: no closed-form M step here
    r = kb.fit(Mixture(fixed, 2), X_NORMAL[:200], key=0)
    assert r.method == "lbfgs" and "no closed-form M step: L-BFGS" in r.message and "not EM" in r.message, r.message


def test_the_compiled_em_of_a_normal_mixture_reaches_the_same_fit(monkeypatch):
    """The accelerator path (the compiled Gaussian EM) for numpyro Normal components, on a CPU."""
    from kullback.fit import _mixture

    host = kb.fit(Mixture(dist.Normal, 2), X_NORMAL, key=2, tol=1e-10, max_iter=500)
    monkeypatch.setattr(_mixture, "_use_host", lambda n, d, k: False)
    compiled = kb.fit(Mixture(dist.Normal, 2), X_NORMAL, key=2, tol=1e-10, max_iter=500)
    assert compiled.method == "em" and "NumPy" not in compiled.message and compiled.converged
    assert compiled.num_iterations == host.num_iterations
    np.testing.assert_allclose(compiled.log_likelihood, host.log_likelihood, rtol=1e-12)
    for name in host.params:
        np.testing.assert_allclose(compiled.params[name], host.params[name], rtol=1e-6, atol=1e-9)
