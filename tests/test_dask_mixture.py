"""kb.fit of a Gaussian mixture on a Dask array: the in-memory EM, one pass per iteration.

References: kb.fit on the same NumPy rows and weights (when every row is in the k-means++ sample,
the starts are the same, hence the whole fit); the in-memory EM (``em_gaussian_mixture_host``)
started from the centres k-means++ and Lloyd give on the sampled rows (when only every k-th row
is sampled); the mixture log-likelihood of the fitted parameters by scipy.stats. Tolerance:
1e-10 relative (observed ≤ 4e-14: the same iterations, the per-block sums added in another order).
"""

import jax
import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import stats

pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import kullback as kb  # noqa: E402
from _dask_cluster import client  # noqa: E402, F401  (the shared LocalCluster)
from kullback.families import Gaussian, Mixture  # noqa: E402

jax.config.update("jax_enable_x64", True)

RTOL = 1e-10
CHUNKS = (90, 310, 7, 193)  # 600 rows in unequal blocks


def _blobs(rng):
    return np.concatenate([rng.normal(size=(250, 2)) @ [[1.0, 0.3], [0.0, 0.7]] + [4.0, 0.0],
                           rng.normal(size=(200, 2)) * 0.5 - [1.0, 2.0], rng.normal(size=(150, 2)) * 0.8 + [0.0, 3.0]])


def _scipy_loglike(family, params, x, w):
    """Σ w log Σ_j π_j q_j(x) by scipy.stats (the outside truth of the reported log-likelihood)."""
    comps = []
    for j, pi in enumerate(params["weights"]):
        if getattr(family.component, "cls", None) is dist.LogNormal:
            comps.append(pi * stats.lognorm.pdf(x, s=params["scale"][j], scale=np.exp(params["loc"][j])))
        else:
            comps.append(pi * stats.multivariate_normal.pdf(x, params["loc"][j], params["covariance"][j]))
    return float(w @ np.log(np.sum(comps, axis=0)))


def _assert_same_fit(on_dask, memory):
    assert set(on_dask.params) == set(memory.params)
    for name in memory.params:
        np.testing.assert_allclose(on_dask.params[name], memory.params[name], rtol=RTOL, atol=1e-13)
    for name in ["objective", "log_likelihood", "aic", "bic", "num_observations"]:
        np.testing.assert_allclose(getattr(on_dask, name), getattr(memory, name), rtol=RTOL)
    np.testing.assert_allclose(on_dask.history, memory.history, rtol=RTOL)
    assert (on_dask.num_iterations, on_dask.status, on_dask.converged, on_dask.method) == (
        memory.num_iterations, memory.status, memory.converged, memory.method)


@pytest.mark.parametrize("covariance", ["full", "diag", "spherical"])
def test_gaussian_mixture_equals_in_memory(client, covariance):
    rng = np.random.default_rng(3)
    x, w = _blobs(rng), rng.uniform(0.0, 2.0, size=600)
    family = Mixture(Gaussian(2, covariance), 3)
    xd, wd = da.from_array(x, chunks=(CHUNKS, 2)), da.from_array(w, chunks=250)
    options = {"key": 5, "tol": 1e-10, "max_iter": 300}
    memory = kb.fit(family, x, sample_weight=w, **options)
    on_dask = kb.fit(family, xd, sample_weight=wd, **options)
    _assert_same_fit(on_dask, memory)
    assert on_dask.data_entropy is None and "On Dask" in on_dask.message
    np.testing.assert_allclose(on_dask.log_likelihood, _scipy_loglike(family, on_dask.params, x, w), rtol=1e-10)
    # restarts: each its own EM on the cluster, the best kept. Two restarts that reach the same
    # optimum with the components in another order tie to rounding, and either may be kept: the
    # comparison is up to the order of the components.
    memory = kb.fit(family, x, sample_weight=w, num_restarts=3, **options)
    on_dask = kb.fit(family, xd, sample_weight=wd, num_restarts=3, **options)
    np.testing.assert_allclose(on_dask.log_likelihood, memory.log_likelihood, rtol=RTOL)
    for name in memory.params:
        got, want = (np.sort(r.params[name].reshape(3, -1), axis=0) for r in (on_dask, memory))
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-13)


@pytest.mark.parametrize("component", [dist.MultivariateNormal, dist.LogNormal], ids=["mvn", "lognormal"])
def test_numpyro_components_equal_in_memory(client, component):
    rng = np.random.default_rng(4)
    if component is dist.LogNormal:
        x = np.concatenate([rng.lognormal(0.0, 0.3, 400), rng.lognormal(2.0, 0.5, 200)])
        xd = da.from_array(x, chunks=(CHUNKS,))
    else:
        x = _blobs(rng)
        xd = da.from_array(x, chunks=(CHUNKS, 2))
    family = Mixture(component, 2)
    memory = kb.fit(family, x, key=2, tol=1e-10)
    on_dask = kb.fit(family, xd, key=2, tol=1e-10)
    _assert_same_fit(on_dask, memory)
    # one pass for the sample, one for the start, one per EM iteration
    assert f" {2 + on_dask.num_iterations} passes over the rows" in on_dask.message
    if component is dist.LogNormal:
        np.testing.assert_allclose(on_dask.log_likelihood, _scipy_loglike(family, on_dask.params, x, np.ones(600)),
                                   rtol=1e-10)


def test_starts_from_a_sample_then_the_in_memory_em(client, monkeypatch):
    """Only every 6th row in the sample: the Dask EM equals the in-memory EM on all rows started
    from the centres the in-memory k-means++ and Lloyd give on those rows."""
    from kullback.distributed import _mixture
    from kullback.fit._em import em_gaussian_mixture_host, kmeans_plus_plus, lloyd, seeded_rng
    from kullback.fit._keys import as_key

    monkeypatch.setattr(_mixture, "SAMPLE_ROWS", 100)
    rng = np.random.default_rng(6)
    x, w = _blobs(rng), rng.uniform(0.5, 2.0, size=600)
    family = Mixture(Gaussian(2, "full"), 3)
    on_dask = kb.fit(family, da.from_array(x, chunks=(CHUNKS, 2)), sample_weight=da.from_array(w, chunks=CHUNKS),
                     key=7, tol=1e-10, max_iter=300)
    sample, ws = x[::6], w[::6] / w[::6].sum()
    centers = lloyd(sample, ws, kmeans_plus_plus(seeded_rng(as_key(7), 0), sample, ws, 3))
    params, ll, history, it, done = em_gaussian_mixture_host(centers, x, w / w.sum(), 1e-10, 1e-6, 300,
                                                             covariance="full")
    np.testing.assert_allclose(on_dask.params["weights"], params.weights, rtol=RTOL)
    np.testing.assert_allclose(on_dask.params["loc"], params.means, rtol=RTOL)
    np.testing.assert_allclose(on_dask.params["covariance"], params.covariances, rtol=RTOL)
    np.testing.assert_allclose(on_dask.log_likelihood, ll * w.sum(), rtol=RTOL)
    assert on_dask.num_iterations == it and on_dask.converged == bool(done)
    assert "100 rows (every 6th)" in on_dask.message


def test_errors(client):
    x = da.from_array(np.random.default_rng(0).normal(size=(100, 2)), chunks=30)
    with pytest.raises(ValueError, match="key="):
        kb.fit(Mixture(Gaussian(2), 2), x)
    with pytest.raises(NotImplementedError, match="Gaussian EM"):
        kb.fit(Mixture(dist.Poisson, 2), x[:, 0], key=0)
    with pytest.raises(ValueError, match=r"support of Mixture\(LogNormal, 2\)"):
        kb.fit(Mixture(dist.LogNormal, 2), x[:, 0], key=0)
    with pytest.raises(ValueError, match="finite"):
        kb.fit(Mixture(Gaussian(2), 2), x * np.nan, key=0)


def _count_compiles():
    """On a worker: count XLA compilations from now on (a jax.monitoring listener)."""
    import builtins

    import jax.monitoring

    if not hasattr(builtins, "_kullback_compiles"):
        builtins._kullback_compiles = [0]

        def listener(event, duration, **kwargs):
            if event == "/jax/core/compile/backend_compile_duration":
                builtins._kullback_compiles[0] += 1

        jax.monitoring.register_event_duration_secs_listener(listener)
    builtins._kullback_compiles[0] = 0


def _compiles():
    import builtins

    return builtins._kullback_compiles[0]


def test_workers_compile_nothing(client):
    """The EM and the Newton fits run NumPy on the workers: no XLA program per block or per fit."""
    rng = np.random.default_rng(9)
    client.run(_count_compiles)
    xd = da.from_array(_blobs(rng), chunks=(CHUNKS, 2))
    kb.fit(Mixture(Gaussian(2, "full"), 3), xd, key=0)
    kb.fit(Mixture(Gaussian(2, "diag"), 3), xd, key=0)
    t = da.from_array(rng.standard_t(5.0, size=600), chunks=CHUNKS)
    kb.fit(dist.StudentT, t)
    kb.fit(dist.Weibull, abs(t) + 0.1)
    kb.fit(dist.Beta, da.from_array(rng.beta(2.0, 3.0, size=600), chunks=CHUNKS))
    assert client.run(_compiles) == {w: 0 for w in client.scheduler_info()["workers"]}
