"""progress=True and callback=: the solvers report (iteration, objective) as they go."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import kullback as kb


def log_p(x):  # a skewed 3-d target: the Laplace start is not the optimum, so L-BFGS iterates
    return -0.5 * jnp.sum((x - 1.0) ** 2 / jnp.arange(1.0, 4.0)) - jnp.sum(jnp.log1p(jnp.exp(x)))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("method", ["fixed_draws", "natural", "sgd"])
def test_a_callback_sees_the_objective_fall(method):
    seen = []
    r = kb.fit(kb.families.Gaussian(3, "full"), log_p, direction="reverse", key=0, method=method,
               callback=lambda i, v: seen.append((i, v)))
    iterations = [i for i, _ in seen]
    values = np.array([v for _, v in seen])
    assert len(seen) >= 3 and iterations == sorted(set(iterations))  # each iteration once, in order
    assert np.all(np.isfinite(values))
    if method == "fixed_draws":  # deterministic: the solver's own history, never up (a line search)
        np.testing.assert_allclose(values, r.history[1:len(values) + 1], rtol=1e-6)
        assert np.all(np.diff(values) <= 1e-9) and values[-1] < r.history[0]
    elif method == "sgd":  # window means: noisy, but the last is below the first
        assert values[-1] < values[0]
    else:  # natural gradient: each iteration's ELBO on fresh draws, within its noise of the fit's
        assert abs(values[-1] - r.objective) < 0.05


@pytest.mark.timeout(120)
def test_forward_fits_report_too_and_a_closed_form_reports_once():
    x = np.random.default_rng(0).gamma(2.0, 1.5, 400)
    seen = []
    r = kb.fit(dist.Weibull, x, solver="newton", callback=lambda i, v: seen.append((i, v)))
    assert r.converged and len(seen) >= 2 and seen[-1][0] == r.num_iterations
    np.testing.assert_allclose(seen[-1][1], r.objective, rtol=1e-10)
    assert all(b[1] <= a[1] + 1e-12 for a, b in zip(seen, seen[1:]))  # Newton with a line search: never up
    once = []
    kb.fit(dist.Normal, x, callback=lambda i, v: once.append((i, v)))
    assert once == [(0, pytest.approx(kb.fit(dist.Normal, x).objective))]


@pytest.mark.timeout(120)
def test_progress_bar_draws_on_stderr_and_changes_nothing(capsys):
    plain = kb.fit(kb.families.Gaussian(3, "full"), log_p, direction="reverse", key=0)
    shown = kb.fit(kb.families.Gaussian(3, "full"), log_p, direction="reverse", key=0, progress=True)
    np.testing.assert_allclose(shown.params["loc"], plain.params["loc"], rtol=1e-6)
    err = capsys.readouterr().err
    assert "objective" in err and "Gaussian" in err
    with pytest.raises(ValueError, match="callback"):
        kb.fit(dist.Normal, [1.0, 2.0], callback=3)


@pytest.mark.timeout(120)
def test_mixture_em_reports_each_iteration():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(-2.0, 1.0, 300), rng.normal(2.0, 1.0, 300)]
    seen = []
    r = kb.fit(kb.families.Mixture(dist.Normal, 2), x, key=0, tol=1e-8, callback=lambda i, v: seen.append((i, v)))
    values = np.array([v for _, v in seen])
    assert r.method == "em" and [i for i, _ in seen] == list(range(1, r.num_iterations + 1))
    assert np.all(np.diff(values) <= 1e-12)  # EM never lowers the likelihood
    np.testing.assert_allclose(values[-1], r.objective, rtol=1e-12)
