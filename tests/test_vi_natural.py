"""Natural-gradient VI (method="natural") and the automatic method choice for Gaussian families.

References: on a Gaussian target N(m, A⁻¹) the reverse-KL optimum is known exactly (full
covariance: q = p; mean field: mean m, variances 1/diag(A)); on a Bayesian logistic regression
the fixed-draw L-BFGS fit (a deterministic optimum of the same ELBO) and the ELBO itself.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kullback as kb
from kullback.families import Gaussian, LowRankGaussian

D = 16  # full covariance: 16 + 136 free parameters > 100, so method="auto" is natural gradient
rng = np.random.default_rng(5)
_a = rng.normal(size=(D, D))
PREC = _a @ _a.T / D + np.eye(D)
MEAN = rng.normal(size=D)
COV = np.linalg.inv(PREC)
_prec, _mean = jnp.asarray(PREC), jnp.asarray(MEAN)


def log_gauss(x):
    r = x - _mean
    return -0.5 * r @ _prec @ r


_x = rng.normal(size=(60, D)) / np.sqrt(D)
_y = (rng.uniform(size=60) < 1 / (1 + np.exp(-_x @ rng.normal(size=D)))).astype(float)
_xj, _yj = jnp.asarray(_x), jnp.asarray(_y)


def log_logistic(beta):
    eta = _xj @ beta
    return jnp.sum(_yj * eta - jnp.logaddexp(0.0, eta)) - 0.5 * jnp.sum(beta**2)


@pytest.mark.timeout(300)
def test_auto_full_covariance_is_exact_on_a_gaussian_target_in_a_few_iterations():
    r = kb.fit(Gaussian(D, "full"), log_gauss, direction="reverse", key=0)
    assert r.method == "natural" and r.converged and "exact for a Gaussian target" in r.message
    np.testing.assert_allclose(r.params["loc"], MEAN, atol=1e-8)
    np.testing.assert_allclose(r.params["covariance"], COV, atol=1e-8)
    # the start (3 candidates, 50 descent steps + its point, 4 Newton steps and the final curvature:
    # a 16-d Hessian and a gradient each, 5 line-search points a step), then 2d + 2 draws an iteration
    assert r.num_grad_evals == (r.num_iterations + 1) * (2 * D + 2) + 3 + 51 + 5 * (D + 1) + 4 * 5
    assert r.num_iterations <= 3 and abs(r.log_z.value - r.elbo.value) < 1e-8


@pytest.mark.timeout(300)
def test_natural_mean_field_matches_the_precision_diagonal():
    r = kb.fit(Gaussian(D, "diag"), log_gauss, direction="reverse", key=1, method="natural")
    assert r.method == "natural" and r.converged and r.num_skipped == 0
    # mean field on a correlated target: mean m, variances 1/diag(A); the per-coordinate whitened
    # draws leave Monte Carlo noise from their sample correlations, averaged down to tol = 0.01 sd
    sd = 1 / np.sqrt(np.diag(PREC))
    assert np.max(np.abs(r.params["loc"] - MEAN) / sd) < 0.05
    np.testing.assert_allclose(r.params["scale"], sd, rtol=0.05)


@pytest.mark.timeout(300)
def test_natural_on_a_logistic_posterior_matches_the_fixed_draw_optimum():
    nat = kb.fit(Gaussian(D, "full"), log_logistic, direction="reverse", key=2)
    ref = kb.fit(Gaussian(D, "full"), log_logistic, direction="reverse", key=2, method="fixed_draws")
    assert nat.method == "natural" and nat.converged and ref.converged
    sd = np.sqrt(np.diag(ref.params["covariance"]))
    # both are Monte Carlo optima of one ELBO: 1000 fixed draws vs averaged fresh whitened draws
    assert np.max(np.abs(nat.params["loc"] - ref.params["loc"]) / sd) < 0.1
    np.testing.assert_allclose(np.sqrt(np.diag(nat.params["covariance"])), sd, rtol=0.05)
    assert nat.elbo.value > ref.elbo.value - 3 * np.hypot(nat.elbo.stderr, ref.elbo.stderr)
    assert nat.num_grad_evals < ref.num_grad_evals / 5


@pytest.mark.timeout(300)
def test_auto_falls_back_to_fixed_draws_when_natural_steps_do_not_converge():
    r = kb.fit(Gaussian(D, "full"), log_logistic, direction="reverse", key=2, max_iter=2)
    assert r.method == "natural+fixed_draws" and "did not converge" in r.message and r.converged
    assert r.info["num_draws"] == 2 * D + 2


@pytest.mark.timeout(300)
def test_auto_uses_few_whitened_fixed_draws_for_small_families_then_refines():
    r = kb.fit(Gaussian(2, "full"), lambda x: -0.5 * jnp.sum((x - 1.0) ** 2 / jnp.array([1.0, 4.0])),
               direction="reverse", key=3)
    # 24 whitened draws, then (the first solve was cheap) 64 fresh ones from its optimum
    assert r.method == "fixed_draws" and r.info["num_draws"] == 64 and r.converged
    assert r.message.startswith("L-BFGS on 24 whitened fixed draws converged") and r.num_grad_evals < 1500 + 64 * 20
    np.testing.assert_allclose(r.params["covariance"], np.diag([1.0, 4.0]), atol=1e-6)


def test_natural_rejects_other_families_objectives_and_odd_draw_counts():
    with pytest.raises(ValueError, match="method='natural' fits a kb.families.Gaussian"):
        kb.fit(LowRankGaussian(3, 1), lambda x: -jnp.sum(x**2), direction="reverse", key=0, method="natural")
    with pytest.raises(ValueError, match="method='natural' fits a kb.families.Gaussian"):
        kb.fit(Gaussian(3), lambda x: -jnp.sum(x**2), direction="reverse", key=0, method="natural",
               objective="renyi")
    with pytest.raises(ValueError, match="num_draws to be an even integer"):
        kb.fit(Gaussian(3), lambda x: -jnp.sum(x**2), direction="reverse", key=0, method="natural", num_draws=7)


def test_cholesky_factor_by_gather_equals_the_embedding(monkeypatch):
    """Above d = 22 L is gathered from fixed indices instead of a product with the 0/1 embedding
    (d⁴/2 constants): the same draws and entropy, the same gradient."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import kullback as kb
    from kullback.fit import _vi_auto as AUTO

    family = kb.families.Gaussian(6, covariance="full")
    rng = np.random.default_rng(3)
    params = {"loc": jnp.asarray(rng.normal(size=6)), "tril": jnp.asarray(rng.normal(size=21) * 0.3)}
    noise = jnp.asarray(rng.normal(size=(5, 6)))

    def run():
        f = lambda p: jnp.sum(jnp.sin(AUTO._draws_and_entropy(family, p, noise)[0])) + AUTO._draws_and_entropy(family, p, noise)[1]  # noqa: E731
        return AUTO._draws_and_entropy(family, params, noise), jax.grad(f)(params)

    (x1, h1), g1 = run()
    monkeypatch.setattr(AUTO, "_EMBED_MAX", 0)
    (x2, h2), g2 = run()
    np.testing.assert_allclose(x2, x1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h2, h1, rtol=1e-12)
    for k in g1:
        np.testing.assert_allclose(g2[k], g1[k], rtol=1e-12, atol=1e-14)
