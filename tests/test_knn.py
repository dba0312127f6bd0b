"""k-NN (Wang–Kulkarni–Verdú, Kozachenko–Leonenko) and plug-in estimates from sample sets.

References: the universal-divergence package (same estimator, independent code) to 1e-10; the
Gaussian closed forms for convergence. The k-NN bias decays like n^(−1/d), so the tolerances
grow with d: they are stated per case below from that rate, not tuned to pass.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import kullback as kb
from kullback.measure._knn import entropy_from_samples, kl_from_samples
from kullback.measure._plugin import plugin_entropy, plugin_kl


def _gaussians(d, n, seed):
    rng = np.random.default_rng(seed)
    mu, s = np.full(d, 0.5 / math.sqrt(d)), 1.3
    truth = 0.5 * (d / s**2 + mu @ mu / s**2 - d + 2 * d * math.log(s))
    return rng.normal(size=(n, d)), mu + s * rng.normal(size=(n, d)), truth


@pytest.mark.parametrize("k", [1, 3])
def test_matches_universal_divergence(k):
    ud = pytest.importorskip("universal_divergence")
    x, y, _ = _gaussians(2, 300, seed=1)
    y = y[:250]
    np.testing.assert_allclose(float(kl_from_samples(x, y, k=k)), ud.estimate(x, y, k=k), rtol=1e-10)


def test_bias_corrected_matches_universal_divergence_adaptive():
    ud = pytest.importorskip("universal_divergence")
    x, y, _ = _gaussians(2, 200, seed=2)
    got = kl_from_samples(x, y, bias_correction=True)
    np.testing.assert_allclose(float(got), ud.estimate(x, y), rtol=1e-8)


# (d, n_small, n_large, tolerance at n_large): 1-D and 5-D near the stderr, 10-D by the rate
CONVERGENCE = [(1, 1000, 16000, 0.05), (5, 1000, 16000, 0.08), (10, 1000, 16000, 0.25)]


@pytest.mark.parametrize("d, n_small, n_large, tol", CONVERGENCE)
def test_knn_kl_converges_for_gaussians(d, n_small, n_large, tol):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the small-n end is meant to be rough
        errors = []
        for n in (n_small, n_large):
            x, y, truth = _gaussians(d, n, seed=d)
            e = kl_from_samples(x, y, error="terms")  # the value only: skip the subsample error
            assert e.method == "knn" and e.info["d"] == d
            errors.append(abs(float(e) - truth))
    assert errors[1] < errors[0] or errors[1] < 0.02
    assert errors[1] < tol


@pytest.mark.parametrize("d", [1, 5])
def test_bias_corrected_variant_is_close(d):
    x, y, truth = _gaussians(d, 4000, seed=10 + d)
    e = kl_from_samples(x, y, bias_correction=True)
    assert abs(float(e) - truth) < 0.1 and e.info["bias_correction"]


@pytest.mark.parametrize("d", [1, 5, 10])
def test_kozachenko_leonenko_entropy(d):
    x = np.random.default_rng(d).normal(size=(8000, d))
    e = entropy_from_samples(x, k=2)
    truth = 0.5 * d * math.log(2 * math.pi * math.e)
    assert abs(float(e) - truth) < 4 * float(e.stderr) + 0.02 * d


def test_subsample_standard_error_matches_the_spread_over_repeats():
    values, errors = [], []
    for seed in range(40):
        x, y, truth = _gaussians(2, 1000, seed=100 + seed)
        e = kl_from_samples(x, y)
        values.append(float(e))
        errors.append(float(e.stderr))
    spread = np.std(values, ddof=1)  # its own sampling error at 40 repeats is ~11%
    assert 0.7 < np.mean(errors) / spread < 1.4
    assert abs(np.mean(values) - truth) < 3 * spread / math.sqrt(40) + 0.02


def test_duplicates_are_skipped_with_a_warning():
    x, y, _ = _gaussians(2, 500, seed=3)
    x_dup = np.concatenate([x, x[:20]])
    y_dup = np.concatenate([y, x[:5]])  # some y coincide with x: ν would be 0
    with pytest.warns(UserWarning, match="duplicates"):
        e = kl_from_samples(x_dup, y_dup)
    assert np.isfinite(float(e)) and e.info["tied_points"] > 0
    with pytest.warns(UserWarning, match="duplicates"):
        assert np.isfinite(float(entropy_from_samples(np.repeat(x, 2, axis=0))))


def test_warns_when_dimension_or_sample_size_makes_it_unreliable():
    x, y, _ = _gaussians(10, 60, seed=4)
    with pytest.warns(UserWarning, match="unreliable"):
        kl_from_samples(x, y)


def test_bad_inputs():
    x, y, _ = _gaussians(2, 50, seed=5)
    with pytest.raises(ValueError, match="same dimension"):
        kl_from_samples(x, y[:, :1])
    with pytest.raises(ValueError, match="Expected k"):
        kl_from_samples(x, y, k=0)
    with pytest.raises(ValueError, match="at least 2"):
        entropy_from_samples(x[:1])
    with pytest.raises(ValueError, match="finite"):
        kl_from_samples(np.full((5, 2), np.nan), y)


def test_plugin_entropy_miller_madow_reduces_the_bias():
    rng = np.random.default_rng(6)
    probs = rng.dirichlet(np.ones(10))
    truth = -np.sum(probs * np.log(probs))
    draws = rng.choice(10, size=(400, 60), p=probs)
    raw = np.mean([float(plugin_entropy(x, bias_correction=False)) for x in draws])
    mm = np.mean([float(plugin_entropy(x)) for x in draws])
    assert abs(mm - truth) < 0.5 * abs(raw - truth)
    e = plugin_entropy(draws[0])
    assert e.method == "plug_in" and float(e.stderr) > 0


def test_plugin_kl_correction_and_inf():
    rng = np.random.default_rng(7)
    p, q = np.array([0.2, 0.5, 0.3]), np.array([0.4, 0.4, 0.2])
    truth = float(kb.kl(p, q))
    xs, ys = rng.choice(3, size=(300, 100), p=p), rng.choice(3, size=(300, 100), p=q)
    raw = np.mean([float(plugin_kl(x, y, bias_correction=False)) for x, y in zip(xs, ys)])
    fixed = np.mean([float(plugin_kl(x, y)) for x, y in zip(xs, ys)])
    assert abs(fixed - truth) < 0.5 * abs(raw - truth)
    big = plugin_kl(rng.choice(3, 50_000, p=p), rng.choice(3, 50_000, p=q))
    assert abs(float(big) - truth) < 4 * float(big.stderr) + 1e-3
    assert float(plugin_kl([0, 1, 2, 2], [0, 1, 1, 0])) == np.inf
