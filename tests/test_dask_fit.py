"""kb.fit(family, x) on a Dask array equals the in-memory fit (one pass of sufficient statistics).

Reference: kb.fit on the same NumPy data and weights. Tolerance: 1e-10 relative for parameters,
standard errors, covariance, objective, log-likelihood and AIC/BIC (observed ~1e-15: the same
closed forms on moments combined pairwise instead of summed in one dot product).
"""

import jax
import numpy as np
import numpyro.distributions as dist
import pytest

pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import kullback as kb  # noqa: E402
from _dask_cluster import client  # noqa: E402, F401  (the shared LocalCluster)

jax.config.update("jax_enable_x64", True)

RTOL = 1e-10
CHUNKS = ((90, 310, 7, 193),)  # 600 rows in unequal blocks




def _data(cls, rng):
    if cls is dist.Normal:
        return rng.normal(1e3, 2.0, size=600)  # a mean far from 0: the moments must not cancel
    if cls is dist.Poisson:
        return rng.poisson(3.5, size=600).astype(float)
    return rng.gamma(1.7, 2.0, size=600)


@pytest.mark.parametrize("cls", [dist.Normal, dist.LogNormal, dist.Exponential, dist.Poisson, dist.Gamma])
@pytest.mark.parametrize("weighted", [False, True])
def test_equals_in_memory(client, cls, weighted):
    rng = np.random.default_rng(7)
    x = _data(cls, rng)
    w = rng.uniform(0.0, 3.0, size=x.shape[0]) if weighted else None
    memory = kb.fit(cls, x, sample_weight=w)
    xd = da.from_array(x, chunks=CHUNKS)
    on_dask = kb.fit(cls, xd, sample_weight=None if w is None else da.from_array(w, chunks=250))
    assert set(on_dask.params) == set(memory.params)
    for name in memory.params:
        np.testing.assert_allclose(on_dask.params[name], memory.params[name], rtol=RTOL)
        np.testing.assert_allclose(on_dask.stderr[name], memory.stderr[name], rtol=RTOL)
    np.testing.assert_allclose(on_dask.covariance, memory.covariance, rtol=RTOL)
    for name in ["objective", "log_likelihood", "aic", "bic", "num_observations"]:
        np.testing.assert_allclose(getattr(on_dask, name), getattr(memory, name), rtol=RTOL)
    assert (on_dask.status, on_dask.method, on_dask.converged) == (memory.status, memory.method, memory.converged)
    assert type(on_dask.q) is cls
    assert on_dask.data_entropy is None
    # the same table, less the entropy estimate's lines
    lines = str(on_dask.summary()).splitlines()
    assert len(lines) > 5 and set(lines) <= set(str(memory.summary()).splitlines())


def test_errors(client):
    x = da.from_array(np.random.default_rng(0).normal(size=100), chunks=30)
    with pytest.raises(ValueError, match="positive for Gamma"):
        kb.fit(dist.Gamma, x)
    with pytest.raises(ValueError, match="counts"):
        kb.fit(dist.Poisson, x)
    with pytest.raises(NotImplementedError, match="dist.Gamma"):
        kb.fit(dist.Laplace, x)
    with pytest.raises(ValueError, match=r"compute_chunk_sizes\(\)"):
        kb.fit(dist.Normal, x[x > 0])


@pytest.mark.parametrize("family", [dist.MultivariateNormal, kb.families.Gaussian(3, covariance="full"),
                                    kb.families.Gaussian(3, covariance="diag")], ids=["mvn", "full", "diag"])
def test_gaussian_families_equal_in_memory(client, family):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(600, 3)) @ np.array([[2.0, 0.0, 0.0], [0.7, 0.5, 0.0], [-0.3, 0.2, 1.5]]) + [5.0, -1.0, 0.0]
    w = rng.uniform(0.0, 2.0, size=600)
    memory = kb.fit(family, x, sample_weight=w)
    on_dask = kb.fit(family, da.from_array(x, chunks=(CHUNKS[0], 3)), sample_weight=da.from_array(w, chunks=200))
    for name in memory.params:
        np.testing.assert_allclose(on_dask.params[name], memory.params[name], rtol=RTOL, atol=1e-14)
    assert memory.stderr and set(on_dask.stderr) == set(memory.stderr)
    for name in memory.stderr:
        np.testing.assert_allclose(on_dask.stderr[name], memory.stderr[name], rtol=RTOL, atol=1e-14)
    for name in ["objective", "log_likelihood", "aic", "num_observations"]:
        np.testing.assert_allclose(getattr(on_dask, name), getattr(memory, name), rtol=RTOL)
    assert on_dask.converged and on_dask.data_entropy is None


@pytest.mark.parametrize("family, options", [(dist.NegativeBinomial2, {}), (dist.GeometricProbs, {}),
                                             (dist.BinomialProbs, {"total_count": 10}),
                                             (dist.Poisson, {"bounds": {"rate": (1.0, 10.0)}})],
                         ids=["negbin", "geometric", "binomial-fixed-n", "poisson-bounded"])
def test_discrete_families_from_value_counts(client, family, options):
    rng = np.random.default_rng(9)
    x = (rng.binomial(10, 0.3, size=600) if family is dist.BinomialProbs else rng.negative_binomial(3, 0.4, size=600))
    w = rng.uniform(0.0, 2.0, size=600)
    memory = kb.fit(family, x, sample_weight=w, **options)
    on_dask = kb.fit(family, da.from_array(x, chunks=CHUNKS), sample_weight=da.from_array(w, chunks=CHUNKS), **options)
    # Iterative fits (Newton, stopped by its gradient test and a polish to an objective gain of
    # 1e-14) reach the same optimum from rows and from value counts: parameters and standard
    # errors to 1e-8 relative (observed ≤ 3e-10), the log-likelihood to 1e-10; closed forms to 1e-10.
    rtol = 1e-10 if memory.method == "closed_form" else 1e-8
    assert memory.stderr and set(on_dask.stderr) == set(memory.stderr)
    for name in memory.params:
        np.testing.assert_allclose(on_dask.params[name], memory.params[name], rtol=rtol)
        np.testing.assert_allclose(on_dask.stderr[name], memory.stderr[name], rtol=rtol)
    for name in ["objective", "log_likelihood", "aic", "num_observations"]:
        np.testing.assert_allclose(getattr(on_dask, name), getattr(memory, name), rtol=1e-10)
    assert (on_dask.status, on_dask.method, on_dask.converged) == (memory.status, memory.method, memory.converged)
