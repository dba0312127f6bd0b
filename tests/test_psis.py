"""PSIS: the generalized Pareto fit, smoothed weights, k̂ verdicts and importance diagnostics.

References: scipy.stats.genpareto (draws with known shape), closed-form log Z of Gaussians, and
arviz-stats' PSIS (when installed) for the same algorithm.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from kullback.fit._diagnostics import gpd_fit, gpd_quantile, importance_diagnostics, pareto_k_verdict, psis

_psis = jax.jit(psis)
_gpd = jax.jit(gpd_fit)
S = 4000  # one draw count for every test: one compile of each jitted function
_diag = jax.jit(importance_diagnostics)


@pytest.mark.parametrize("k_true", [0.2, 0.6, 0.9])
def test_gpd_fit_recovers_known_shape(k_true):
    x = np.sort(stats.genpareto.rvs(k_true, scale=2.0, size=S, random_state=1))
    k, sigma = _gpd(jnp.asarray(x))
    # the estimate's sd at n = 4000 is about (1 + k)/√n ≈ 0.03; the prior shrinks by 10/4010
    assert abs(float(k) - k_true) < 0.1
    assert abs(float(sigma) - 2.0) < 0.2


def test_gpd_quantile_matches_scipy():
    u = jnp.linspace(0.01, 0.99, 7)
    for k in (-0.3, 0.0, 0.7):
        np.testing.assert_allclose(gpd_quantile(u, jnp.asarray(k), 1.5), stats.genpareto.ppf(u, k, scale=1.5),
                                   rtol=1e-10)


def test_psis_weights_normalised_and_match_arviz_stats():
    rng = np.random.default_rng(0)
    r = rng.standard_t(3, size=S) * 1.5
    log_w, k = _psis(jnp.asarray(r))
    np.testing.assert_allclose(float(jax.nn.logsumexp(log_w)), 0.0, atol=1e-12)
    # smoothing keeps the order of the weights and never raises the largest
    assert np.all(np.diff(np.asarray(log_w)[np.argsort(r)]) >= -1e-12)
    arviz = pytest.importorskip("arviz_stats.base.array")
    ref_w, ref_k = arviz.array_stats.psislw(-r)  # arviz's PSIS-LOO convention negates its input
    np.testing.assert_allclose(float(k), float(ref_k), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(log_w), ref_w, atol=1e-10)


def test_psis_constant_ratios_are_perfect_and_short_input_raises():
    _, k = _psis(jnp.full(S, 2.5))
    assert float(k) == -np.inf and pareto_k_verdict(k) == "good"
    with pytest.raises(ValueError, match="at least 25 log_ratios"):
        psis(jnp.zeros(10))


def test_verdict_thresholds():
    assert [pareto_k_verdict(k) for k in (0.0, 0.49, 0.5, 0.69, 0.7, np.inf, np.nan)] == [
        "good", "good", "usable", "usable", "unreliable", "unreliable", "unreliable"]


@pytest.mark.parametrize("sd_p", [0.7, 3.0])
def test_importance_diagnostics_gaussian_proposal(sd_p):
    # q = N(0, 1), p̃ = exp(2) · N(0, sd_p²) unnormalised: log Z = 2; k = 1 − 1/sd_p² (> 0.7 for sd_p = 3)
    x = jax.random.normal(jax.random.PRNGKey(3), (S,))
    log_q = stats.norm.logpdf(np.asarray(x))
    log_p = stats.norm.logpdf(np.asarray(x), scale=sd_p) + 2.0
    d = _diag(jnp.asarray(log_p), jnp.asarray(log_q))
    kl_qp = np.log(sd_p) + 1 / (2 * sd_p**2) - 0.5
    if sd_p < 1:  # q wider than p: light-tailed ratios, everything is reliable
        assert pareto_k_verdict(d.pareto_k) == "good" and float(d.ess) > 1000
        assert abs(float(d.log_z) - 2.0) < 4 * float(d.log_z_stderr) + 1e-3
    else:  # q much narrower: the verdict says so
        assert pareto_k_verdict(d.pareto_k) == "unreliable" and float(d.ess) < 400
    # ELBO = log Z − KL(q‖p), a plain sample mean
    assert abs(float(d.elbo) - (2.0 - kl_qp)) < 4 * float(d.elbo_stderr)
    assert int(d.num_nonfinite) == 0


def test_nonfinite_log_density_counted_as_zero_weight():
    log_q = jnp.zeros(S)
    log_p = jnp.zeros(S).at[:40].set(jnp.nan)
    d = _diag(log_p, log_q)
    assert int(d.num_nonfinite) == 40 and float(d.elbo) == -np.inf
    np.testing.assert_allclose(float(d.log_z), np.log(0.99), rtol=1e-12)
