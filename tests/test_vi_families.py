"""Reverse-fit families: low-rank-plus-diagonal Gaussian and the Gaussian-mixture q.

References: numpyro's LowRankMultivariateNormal (entropy, covariance), closed-form Gaussian
targets (a low-rank q is exact on a low-rank-plus-diagonal Gaussian), and the masses and
normalising constant of a known two-component mixture.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import kullback as kb
from kullback.families import GaussianMixtureQ, LowRankGaussian

W = jnp.array([[1.5], [1.0], [-0.5]])
DIAG = jnp.array([0.5, 0.2, 0.3])
COV = W @ W.T + jnp.diag(DIAG)
PREC = jnp.linalg.inv(COV)
MEAN = jnp.array([0.5, -1.0, 2.0])
LOG_Z = 1.0 + 0.5 * np.log(np.linalg.det(2 * np.pi * np.asarray(COV)))


def log_lowrank(x):
    r = x - MEAN
    return -0.5 * r @ PREC @ r + 1.0


WEIGHTS = jnp.array([0.3, 0.7])
BIMODAL = dist.MixtureSameFamily(dist.Categorical(probs=WEIGHTS), dist.Normal(jnp.array([-3.0, 3.0]), 1.0))


def log_bimodal(x):
    return BIMODAL.log_prob(x[0]) + 2.0  # log Z = 2


def test_lowrank_entropy_draws_and_params_match_numpyro():
    g = LowRankGaussian(3, rank=1)
    params = g.from_constrained({"loc": MEAN, "cov_factor": W, "cov_diag": DIAG})
    q = g.distribution(params)
    np.testing.assert_allclose(g.entropy(params, None), q.entropy(), rtol=1e-12)
    np.testing.assert_allclose(g.constrained(params)["covariance"], COV, rtol=1e-12)
    x = g.draws(params, g.base_noise(jax.random.PRNGKey(0), 40, standardize=True), 40)
    # standardised base draws: the sample covariance of the draws is Σ exactly
    np.testing.assert_allclose(np.cov(np.asarray(x), rowvar=False, bias=True), COV, atol=1e-12)
    with pytest.raises(ValueError, match="rank to be a positive integer"):
        LowRankGaussian(3, rank=0)


@pytest.mark.timeout(300)
def test_lowrank_fit_is_exact_on_a_lowrank_plus_diagonal_gaussian():
    r = kb.fit(LowRankGaussian(3, rank=1), log_lowrank, direction="reverse", key=0)
    assert r.converged and r.family == "LowRankGaussian(3, rank=1)"
    # fixed standardised draws integrate the quadratic log p̃ exactly: optimiser tolerance only
    np.testing.assert_allclose(r.params["loc"], MEAN, atol=1e-5)
    np.testing.assert_allclose(r.params["covariance"], COV, atol=1e-5)
    # q = p: the log ratios are constant, k̂ = −inf (good), log Z exact, ESS = all draws
    assert r.pareto_k_verdict == "good" and r.ess > 0.99 * 4000
    np.testing.assert_allclose(float(r.log_z), LOG_Z, atol=1e-5)


def test_mixture_q_stratified_draws_are_weighted_means():
    g = GaussianMixtureQ(1, num_components=2)
    params = g.from_constrained({"weights": WEIGHTS, "loc": jnp.array([[-3.0], [3.0]]), "scale": jnp.ones((2, 1))})
    x, w = g.weighted_draws(params, g.base_noise(jax.random.PRNGKey(1), 50, standardize=True), 50)
    assert x.shape == (100, 1) and w.shape == (100,)
    # E_q[x] = Σ π_k μ_k and E_q[x²] = Σ π_k (μ_k² + 1), exact with standardised draws
    np.testing.assert_allclose(jnp.dot(w, x[:, 0]), 0.3 * -3 + 0.7 * 3, atol=1e-12)
    np.testing.assert_allclose(jnp.dot(w, x[:, 0] ** 2), 10.0, atol=1e-12)
    with pytest.raises(ValueError, match="num_components"):
        GaussianMixtureQ(2, num_components=0)


@pytest.mark.timeout(300)
def test_mixture_q_covers_both_modes_with_their_masses():
    r = kb.fit(GaussianMixtureQ(1, num_components=2), log_bimodal, direction="reverse", key=3)
    order = np.argsort(r.params["loc"][:, 0])
    # q = p is in the family: masses 0.3 / 0.7, means ∓3, sds 1 (Monte Carlo objective on
    # 1000 stratified draws: a few percent)
    np.testing.assert_allclose(r.params["weights"][order], WEIGHTS, atol=0.03)
    np.testing.assert_allclose(r.params["loc"][order, 0], [-3.0, 3.0], atol=0.1)
    np.testing.assert_allclose(r.params["scale"][order, 0], [1.0, 1.0], atol=0.1)
    assert r.pareto_k_verdict == "good"
    assert abs(float(r.log_z) - 2.0) < 0.02
    x = np.asarray(r.draws(0, 2000))
    assert x.shape == (2000, 1) and abs(np.mean(x > 0) - 0.7) < 0.05
