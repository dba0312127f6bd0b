"""Reverse fits that used to fail or to call nonsense converged ("Honest numbers everywhere", 8 and 9).

Real posteriors, data generated here, references from NUTS (numpyro, 2 chains × 1000 draws after
1000 warm-up: Monte Carlo error of a mean ≈ 0.03 sd) or exact where the model is conjugate. Before
the Laplace start (Newton steps to the mode, the solve whitened by the Hessian there): the badly
scaled regression ended not converged after 14 000 gradients, 0.7 sd off, sds 85 % off; now exact
in 182 gradients. Improper targets ended with converged=True or without saying why.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import initialize_model

import kullback as kb
from kullback.families import Gaussian


def nuts_reference(model, args):
    """Mean and sd of the flat unconstrained vector (kullback's coordinates for a model)."""
    info = initialize_model(jax.random.PRNGKey(0), model, model_args=args)
    _, unravel = ravel_pytree(info.param_info.z)
    dim = ravel_pytree(info.param_info.z)[0].shape[0]
    kernel = NUTS(potential_fn=lambda v: info.potential_fn(unravel(v)), target_accept_prob=0.9)
    mcmc = MCMC(kernel, num_warmup=1000, num_samples=1000, num_chains=2, chain_method="sequential",
                progress_bar=False)
    mcmc.run(jax.random.PRNGKey(1), init_params=jnp.zeros((2, dim)))
    draws = np.asarray(mcmc.get_samples())
    return draws.mean(axis=0), draws.std(axis=0)


def moments(r):
    return np.asarray(r.params["loc"]), np.sqrt(np.diag(np.asarray(r.params["covariance"])))


def assert_close(r, mean, sd, coords=slice(None)):
    loc, scale = moments(r)
    np.testing.assert_array_less(np.abs(loc - mean)[coords] / sd[coords], 0.1)
    np.testing.assert_allclose(scale[coords], sd[coords], rtol=0.15)


def linear_regression(x, y):
    beta = numpyro.sample("beta", dist.Normal(0.0, 2.0).expand([x.shape[1]]).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    numpyro.sample("y", dist.Normal(x @ beta, sigma), obs=y)


@pytest.mark.timeout(300)
def test_bayesian_linear_regression_with_half_normal_sigma_matches_nuts():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 3))
    y = x @ np.array([1.0, -0.5, 0.25]) + 0.7 * rng.standard_normal(30)
    mean, sd = nuts_reference(linear_regression, (x, y))
    for seed in (0, 1):
        r = kb.fit(Gaussian(4, "full"), linear_regression, direction="reverse", key=seed, model_args=(x, y))
        assert r.converged, r.message
        assert_close(r, mean, sd)  # σ's log included: before, its sd came out at 0.26× in one report
        assert r.num_grad_evals < 2000  # 2767 and 3175 before the whitened solve


def test_badly_scaled_regression_is_exact():
    # coefficients whose posterior sds differ by 1e7 (features scaled 1e-3, 1, 1e3): the Laplace
    # start whitens the problem, and the Gaussian posterior (known σ, normal prior) is found exactly
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 3)) * np.array([1e-3, 1.0, 1e3])
    y = x @ np.array([500.0, 1.0, 1e-3]) + 0.5 * rng.standard_normal(40)
    prior = np.array([1e4, 10.0, 1e-2])
    X, Y = jnp.asarray(x), jnp.asarray(y)

    def log_density(b):
        return -0.5 * jnp.sum((Y - X @ b) ** 2) / 0.25 - 0.5 * jnp.sum((b / prior) ** 2)

    cov = np.linalg.inv(x.T @ x / 0.25 + np.diag(prior**-2.0))
    mean, sd = cov @ (x.T @ y / 0.25), np.sqrt(np.diag(cov))
    for seed in (0, 1):
        r = kb.fit(Gaussian(3, "full"), log_density, direction="reverse", key=seed)
        assert r.converged, r.message
        loc, scale = moments(r)
        np.testing.assert_array_less(np.abs(loc - mean) / sd, 1e-3)
        np.testing.assert_allclose(scale, sd, rtol=1e-3)
        assert r.num_grad_evals < 1000  # 14 000 before, not converged


def test_diagonal_family_on_a_26_dimensional_regression_is_the_mean_field_optimum():
    # known σ: the posterior is N(m, Λ⁻¹) and the best diagonal Gaussian is N(m, diag(Λ)⁻¹) exactly
    rng = np.random.default_rng(5)
    x = rng.standard_normal((100, 26))
    x[:, 1:] += 0.3 * x[:, :1]
    y = x @ rng.normal(0.0, 1.0, 26) + rng.standard_normal(100)
    X, Y = jnp.asarray(x), jnp.asarray(y)

    def log_density(b):
        return -0.5 * jnp.sum((Y - X @ b) ** 2) - 0.5 * jnp.sum(b**2) / 4.0

    prec = x.T @ x + np.eye(26) / 4.0
    mean = np.linalg.solve(prec, x.T @ y)
    r = kb.fit(Gaussian(26, "diag"), log_density, direction="reverse", key=0)
    assert r.converged, r.message
    loc = np.asarray(r.params["loc"])
    np.testing.assert_array_less(np.abs(loc - mean) * np.sqrt(np.diag(prec)), 0.05)
    np.testing.assert_allclose(np.asarray(r.params["scale"]), 1.0 / np.sqrt(np.diag(prec)), rtol=0.05)
    assert r.num_grad_evals < 5000  # 30 000 without converging in one report


def poisson_glm(x, y):
    a = numpyro.sample("a", dist.Normal(0.0, 2.0))
    tau = numpyro.sample("tau", dist.HalfNormal(1.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, tau).expand([x.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Poisson(jnp.exp(a + x @ beta)), obs=y)


@pytest.mark.timeout(300)
def test_poisson_glm_with_a_hierarchical_scale_matches_nuts_on_its_coefficients():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 4))
    y = rng.poisson(np.exp(0.5 + x @ np.array([0.4, -0.3, 0.2, 0.1]))).astype(float)
    mean, sd = nuts_reference(poisson_glm, (x, y))
    r = kb.fit(Gaussian(6, "full"), poisson_glm, direction="reverse", key=0, model_args=(x, y))
    assert r.converged, r.message
    # flat order: a, beta (4), log tau. The coefficients are near-Gaussian; log τ (4 groups) is
    # skewed, and a Gaussian q's reverse KL fit of it is not the posterior's sd
    assert_close(r, mean, sd, coords=slice(0, 5))
    loc, _ = moments(r)
    assert abs(loc[5] - mean[5]) / sd[5] < 0.5


def test_start_is_finite_where_the_random_point_is_not():
    # log p̃ is -inf outside |x| < 3 coordinatewise: a start drawn with init_scale=10 is usually
    # outside; a tenth of it or 0 is inside
    def log_density(x):
        return jnp.where(jnp.all(jnp.abs(x) < 3.0), -0.5 * jnp.sum(x**2 / 0.01), -jnp.inf)

    r = kb.fit(Gaussian(2, "diag"), log_density, direction="reverse", key=0, init_scale=10.0)
    np.testing.assert_allclose(np.asarray(r.params["scale"]), 0.1, rtol=0.05)


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_improper_flat_target_is_never_converged(covariance):
    r = kb.fit(Gaussian(2, covariance), lambda x: 0.0 * jnp.sum(x), direction="reverse", key=0)
    assert not r.converged
    assert "improper" in r.message and "[0, 1]" in r.message
    assert r.pareto_k_verdict == "unreliable"


def test_a_coordinate_the_density_does_not_use_is_named():
    # x[1] unused (as when a target indexes past its dimension and JAX clamps): q's scale runs off there
    r = kb.fit(Gaussian(2, "full"), lambda x: -0.5 * x[0] ** 2, direction="reverse", key=0)
    assert not r.converged and "coordinate [1]" in r.message and "improper" in r.message
    assert r.pareto_k_verdict != "good"


def test_pareto_k_verdict_is_not_good_with_a_nonfinite_elbo():
    from kullback.fit._diagnostics import pareto_k_verdict

    assert pareto_k_verdict(-np.inf, 1.0) == "good"  # q = p up to the normaliser
    assert pareto_k_verdict(-np.inf, np.nan) == "unreliable"
    assert pareto_k_verdict(0.1, np.inf) == "unreliable"
