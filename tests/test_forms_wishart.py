"""Wishart closed forms against scipy.stats.wishart: entropy exactly, KL by seeded Monte Carlo."""

import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import stats

import kullback as kb

V0 = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]])
V1 = np.array([[1.0, -0.1, 0.0], [-0.1, 1.5, 0.4], [0.0, 0.4, 0.8]])


def test_entropy_matches_scipy():
    for n, v in ((5.0, V0), (7.5, V1)):
        ours = float(kb.entropy(dist.Wishart(n, scale_matrix=v)))
        np.testing.assert_allclose(ours, stats.wishart(df=n, scale=v).entropy(), rtol=1e-10)


@pytest.mark.parametrize("n0, n1", [(5.0, 5.0), (6.0, 9.0), (8.0, 4.0)])
def test_kl_matches_monte_carlo_with_scipy(n0, n1):
    p, q = stats.wishart(df=n0, scale=V0), stats.wishart(df=n1, scale=V1)
    x = p.rvs(size=40_000, random_state=np.random.default_rng(int(n0 * 10 + n1)))
    log_ratio = p.logpdf(np.moveaxis(x, 0, -1)) - q.logpdf(np.moveaxis(x, 0, -1))
    mc, se = log_ratio.mean(), log_ratio.std(ddof=1) / np.sqrt(len(log_ratio))
    ours = float(kb.kl(dist.Wishart(n0, scale_matrix=V0), dist.Wishart(n1, scale_matrix=V1)))
    assert abs(ours - mc) < 5 * se, (ours, mc, se)


def test_identities_and_batching():
    p = dist.Wishart(np.array([5.0, 6.0]), scale_matrix=np.stack([V0, V1]))
    q = dist.Wishart(6.0, scale_matrix=V1)
    np.testing.assert_allclose(np.asarray(kb.kl(p, p)), 0.0, atol=1e-12)
    kl, ce, h = kb.kl(p, q), kb.cross_entropy(p, q), kb.entropy(p)
    assert kl.shape == (2,) and float(kl[1]) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(np.asarray(ce), np.asarray(h + kl), rtol=1e-12)
