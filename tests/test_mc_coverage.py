"""Monte Carlo standard errors that cover, and the control variate and rtol/atol targets.

Coverage: 400 independent repeats are one batched call (a p with batch shape (400,) draws
independently per batch entry); the 95% interval value ± 1.96·stderr must contain the
closed-form truth in 93–97% of them (binomial sd of the rate at 400 repeats: 1.1%).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import kullback as kb

REPEATS = 400

PAIRS = {
    "normal-plain": (lambda b: dist.Normal(jnp.zeros(b), 1.0), dist.Normal(1.0, 2.0), False),
    "normal-cv": (lambda b: dist.Normal(jnp.zeros(b), 2.0), dist.Normal(0.5, 1.5), True),
    "laplace-cv": (lambda b: dist.Laplace(jnp.zeros(b), 1.0), dist.Laplace(0.3, 0.8), True),
}


@pytest.mark.parametrize("name", list(PAIRS))
def test_95_percent_intervals_cover_the_truth(name):
    make_p, q, cv = PAIRS[name]
    truth = float(kb.kl(make_p(()), q))
    e = kb.estimate_kl(make_p((REPEATS,)), q, method="monte_carlo", key=11, num_samples=1000, control_variate=cv)
    assert e.info["control_variate"] is cv
    lo, hi = e.interval(0.95)
    coverage = np.mean((lo <= truth) & (truth <= hi))
    assert 0.93 <= coverage <= 0.97, coverage


def test_control_variate_reduces_the_standard_error():
    p, q = dist.Normal(0.0, 2.0), dist.Normal(0.5, 1.5)
    plain = kb.estimate_kl(p, q, method="monte_carlo", key=3, num_samples=5000)
    cv = kb.estimate_kl(p, q, method="monte_carlo", key=3, num_samples=5000, control_variate=True)
    truth = float(kb.kl(p, q))
    assert float(cv.stderr) < 0.5 * float(plain.stderr)
    assert abs(float(cv) - truth) < 4 * float(cv.stderr)
    assert 0.0 < float(cv.info["coefficient"]) < 2.0


def test_control_variate_is_skipped_when_supports_differ():
    e = kb.estimate_kl(dist.Exponential(2.0), dist.Normal(0.0, 3.0), method="monte_carlo", key=0,
                       num_samples=1000, control_variate=True)  # fmt: skip
    assert e.info["control_variate"] is False and "support" in e.info["control_variate_skipped"]
    with pytest.raises(ValueError, match="control_variate"):
        kb.estimate_entropy(dist.Normal(0.0, 1.0), method="monte_carlo", key=0, control_variate=True)


def test_rtol_target_is_met_or_the_budget_is_reported():
    p, q = dist.Normal(0.0, 1.0), dist.Normal(1.0, 2.0)
    truth = float(kb.kl(p, q))
    met = kb.estimate_kl(p, q, method="monte_carlo", key=5, num_samples=4000, rtol=0.01)
    assert met.info["target_met"] and met.info["stopped"] == "target met"
    assert float(met.stderr) <= 0.01 * abs(float(met)) and met.num_samples == 4000 * met.info["rounds"] > 4000
    assert abs(float(met) - truth) < 4 * float(met.stderr)
    short = kb.estimate_kl(p, q, method="monte_carlo", key=5, num_samples=4000, atol=1e-6, max_num_samples=12_000)
    assert not short.info["target_met"] and "budget" in short.info["stopped"] and short.num_samples == 12_000
    with pytest.raises(ValueError, match="rtol"):
        kb.estimate_kl(p, q, method="monte_carlo", key=0, rtol=-1.0)
