"""Gaussian-mixture EM in NumPy (the CPU path: nothing compiled) against the compiled EM, scipy's
densities and the compiled constructor of q."""

import jax
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.datasets import make_blobs

import kullback as kb
from kullback._compile import count_compiles
from kullback.families import Gaussian, Mixture
from kullback.fit import _compiled as C
from kullback.fit import _mixture
from kullback.fit._buckets import pad_rows
from kullback.fit._em import em_gaussian_mixture, em_gaussian_mixture_host, kmeans_plus_plus, lloyd

X, _ = make_blobs(n_samples=700, centers=3, n_features=3, random_state=1, cluster_std=[1.0, 2.0, 0.6])
X = X + 50.0  # far from 0: the shifted moments must not cancel
W = np.random.default_rng(2).integers(0, 4, len(X)).astype(float)  # frequencies, some rows at 0


def _logpdf(x, params, covariance):
    """log Σ_j π_j N(x | μ_j, Σ_j) by scipy, from the reported (constrained) parameters."""
    terms = [np.log(params["weights"][j]) + stats.multivariate_normal(params["loc"][j], params["covariance"][j]).logpdf(x)
             for j in range(len(params["weights"]))]
    return logsumexp(terms, axis=0)


@pytest.mark.parametrize("covariance", ["full", "diag", "spherical"])
def test_numpy_em_equals_the_compiled_em_from_the_same_start(covariance):
    s = W / W.sum()
    centers = lloyd(X, s, kmeans_plus_plus(np.random.default_rng(0), X, s, 3))
    host = em_gaussian_mixture_host(centers, X, s, 1e-10, 1e-6, 500, covariance=covariance)
    ref = em_gaussian_mixture(centers, *pad_rows(X, s), 1e-10, 1e-6, 500, covariance=covariance, capacity=512)
    assert host[4] and bool(ref[4]) and host[3] == int(ref[3])
    np.testing.assert_allclose(host[1], float(ref[1]), rtol=0, atol=1e-8)
    np.testing.assert_allclose(host[2], np.asarray(ref[2])[: host[3]], rtol=0, atol=1e-8)
    for ours, theirs in zip(host[0], ref[0]):
        np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("covariance", ["full", "diag", "spherical"])
def test_a_fit_on_the_cpu_compiles_nothing_and_reports_scipys_likelihood(no_persistent_cache, covariance):
    family = Mixture(Gaussian(3, covariance), 3)
    with count_compiles() as c:
        r = kb.fit(family, X, key=0, sample_weight=W, tol=1e-8, num_restarts=2)
    assert c.count == 0, f"{c.count} programs compiled"
    assert r.converged and r.method == "em" and "NumPy" in r.message, r.message
    np.testing.assert_allclose(r.log_likelihood, np.sum(W * _logpdf(X, r.params, covariance)), rtol=1e-12)
    np.testing.assert_allclose(-np.sum(W * np.asarray(r.q.log_prob(X))) / W.sum(), r.objective, rtol=1e-12)


@pytest.mark.parametrize("covariance", ["full", "diag", "spherical"])
def test_q_built_without_a_compile_equals_the_compiled_constructor(covariance):
    family = Mixture(Gaussian(3, covariance), 3)
    r = kb.fit(family, X, key=1)
    values = {k: np.asarray(v) for k, v in r.params.items()}
    ref = C.finish_constrained(family, values)[1]
    assert jax.tree.structure(r.q) == jax.tree.structure(ref)
    for ours, theirs in zip(jax.tree.leaves(r.q), jax.tree.leaves(ref)):
        assert isinstance(ours, jax.Array)
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(r.q.log_prob(X)), np.asarray(ref.log_prob(X)), rtol=1e-12)


def test_the_compiled_em_reaches_the_same_fit(monkeypatch):
    """The accelerator path (the compiled EM) on a CPU: the NumPy fit's optimum and results."""
    family = Mixture(Gaussian(3, "full"), 3)
    host = kb.fit(family, X, key=3, sample_weight=W, tol=1e-10, max_iter=500)
    monkeypatch.setattr(_mixture, "_use_host", lambda n, d, k: False)
    compiled = kb.fit(family, X, key=3, sample_weight=W, tol=1e-10, max_iter=500)
    assert "NumPy" not in compiled.message and compiled.converged
    assert compiled.num_iterations == host.num_iterations and compiled.num_params == host.num_params
    np.testing.assert_allclose(compiled.log_likelihood, host.log_likelihood, rtol=1e-12)
    for name in host.params:
        np.testing.assert_allclose(compiled.params[name], host.params[name], rtol=1e-6, atol=1e-9)
