"""Mixtures: Gaussian EM (full, diag, spherical) against scikit-learn's optimum, weights, the
convergence test, and mixtures of other families by gradient."""

import numpy as np
import numpyro.distributions as dist
import pytest
import scipy.stats as st
from scipy.optimize import minimize
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture

import kullback as kb
from kullback.families import Gaussian, Mixture
from kullback.fit._em import em_converged

X, _ = make_blobs(n_samples=600, centers=3, n_features=2, random_state=0, cluster_std=[1.0, 2.0, 0.6])
N = len(X)
W = np.random.default_rng(0).multinomial(N, np.full(N, 1.0 / N))  # frequencies summing to N


@pytest.mark.timeout(120)
@pytest.mark.parametrize("covariance", ["full", "diag", "spherical"])
def test_em_reaches_sklearns_optimum(covariance):
    r = kb.fit(Mixture(Gaussian(2, covariance), 3), X, key=0, num_restarts=3, tol=1e-10, max_iter=1000)
    ref = GaussianMixture(3, covariance_type=covariance, init_params="k-means++", n_init=3, tol=1e-10,
                          max_iter=1000, random_state=0).fit(X)
    assert r.converged and r.method == "em", r.message
    ours, theirs = -r.objective, ref.score(X)  # mean log-likelihood, same reg_covar = 1e-6
    assert ours >= theirs - 1e-9 * abs(theirs), (ours, theirs)
    # the objective is the mean NLL of the returned distribution, and the same optimum is found
    np.testing.assert_allclose(-np.mean(np.asarray(r.q.log_prob(X))), r.objective, rtol=1e-12)
    np.testing.assert_allclose(np.sort(r.params["weights"]), np.sort(ref.weights_), atol=1e-4)  # EM: δθ ~ √(2 tol)
    assert r.num_params == ref._n_parameters()
    np.testing.assert_allclose(r.bic, ref.bic(X), rtol=1e-8)  # BIC = k log n − 2 log L, as sklearn
    assert (np.diff(r.history) <= 1e-12).all()  # EM never raises the mean NLL


def test_weights_equal_repeated_rows():
    mix = Mixture(Gaussian(2, "full"), 3)
    weighted = kb.fit(mix, X, key=1, sample_weight=W, tol=1e-12, max_iter=2000, num_restarts=2)
    repeated = kb.fit(mix, np.repeat(X, W, axis=0), key=1, tol=1e-12, max_iter=2000, num_restarts=2)
    np.testing.assert_allclose(weighted.objective, repeated.objective, rtol=1e-10)
    order_w, order_r = np.argsort(weighted.params["loc"][:, 0]), np.argsort(repeated.params["loc"][:, 0])
    np.testing.assert_allclose(weighted.params["loc"][order_w], repeated.params["loc"][order_r], rtol=1e-6)
    np.testing.assert_allclose(weighted.log_likelihood, repeated.log_likelihood, rtol=1e-10)


def test_convergence_test_is_not_fooled_by_a_slow_start():
    tol = 1e-3
    assert not bool(em_converged(2e-4, 1e-4, tol))  # small but growing gains: a slow start
    assert not bool(em_converged(5e-4, 5.1e-4, tol))  # a crawl: ≈ 0.025 still to come
    assert bool(em_converged(5e-4, 5e-3, tol))  # shrinking tenfold per step: ≈ 5.6e-5 to come
    assert bool(em_converged(-1e-12, 1e-6, tol))  # rounding-level decrease at the optimum
    assert not bool(em_converged(2e-3, 1e-2, tol))


def test_mixture_of_student_t_by_gradient():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_t(3, size=360) - 4.0, 0.5 * rng.standard_t(5, size=240) + 3.0])
    r = kb.fit(Mixture(dist.StudentT, 2), x, key=0, num_restarts=2)
    assert r.converged and r.method == "lbfgs", r.message
    order = np.argsort(r.params["loc"])
    np.testing.assert_allclose(r.params["loc"][order], [-4.0, 3.0], atol=0.3)
    np.testing.assert_allclose(r.params["weights"][order], [0.6, 0.4], atol=0.05)

    def nll(z):  # an independent optimiser from our optimum finds nothing better (scipy density)
        w = 1 / (1 + np.exp(-z[0]))
        a = st.t.pdf(x, np.exp(z[1]), z[2], np.exp(z[3]))
        b = st.t.pdf(x, np.exp(z[4]), z[5], np.exp(z[6]))
        return -np.mean(np.log(w * a + (1 - w) * b))

    p = r.params
    i, j = order
    z0 = [np.log(p["weights"][i] / p["weights"][j]), np.log(p["df"][i]), p["loc"][i], np.log(p["scale"][i]),
          np.log(p["df"][j]), p["loc"][j], np.log(p["scale"][j])]
    np.testing.assert_allclose(nll(z0), r.objective, rtol=1e-12)
    assert minimize(nll, z0, method="BFGS").fun >= r.objective - 1e-9 * abs(r.objective)


def test_mixture_errors_and_names():
    with pytest.raises(ValueError, match="num_components"):
        Mixture(Gaussian(2), 0)
    with pytest.raises(ValueError, match="key="):
        kb.fit(Mixture(Gaussian(2), 2), X)
    assert Mixture(dist.Normal, 2).name == "Mixture(Normal, 2)"
