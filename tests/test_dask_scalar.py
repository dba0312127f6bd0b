"""kb.fit of Beta, Weibull and Student-t on a Dask array: the in-memory fits over per-block sums.

References: kb.fit on the same NumPy rows and weights, and scipy.stats' own MLE (beta.fit with
loc 0 and scale 1, weibull_min.fit with loc 0, t.fit) on unweighted rows. Tolerances: 1e-10
relative against kb.fit (observed ≤ 1e-13: the same iterations, the per-block sums added in another
order; from the Student-t's sample start the path differs but both end one Newton step past a
decrement of 1e-13, at rounding); against scipy, whose optimisers stop earlier, the log-likelihood
is at least scipy's (less 1e-9 relative) and the parameters agree to scipy's accuracy (1e-6
relative for beta.fit, which solves the likelihood equations; 1e-4 for weibull_min.fit and t.fit,
whose optimisers stop ~1e-5 from the optimum: observed 1.4e-5 for the Weibull shape).
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

jax.config.update("jax_enable_x64", True)

RTOL = 1e-10
CHUNKS = ((90, 310, 7, 193),)  # 600 rows in unequal blocks


def _data(cls, rng):
    if cls is dist.Beta:
        return rng.beta(2.5, 0.7, size=600)
    if cls is dist.Weibull:
        return rng.weibull(1.7, size=600) * 3.0
    return rng.standard_t(4.0, size=600) * 2.0 + 1.0


def _assert_same_fit(on_dask, memory):
    assert list(on_dask.params) == list(memory.params)
    for name in memory.params:
        np.testing.assert_allclose(on_dask.params[name], memory.params[name], rtol=RTOL)
        np.testing.assert_allclose(on_dask.stderr[name], memory.stderr[name], rtol=RTOL)
    np.testing.assert_allclose(on_dask.covariance, memory.covariance, rtol=RTOL)
    for name in ["objective", "log_likelihood", "aic", "bic", "num_observations"]:
        np.testing.assert_allclose(getattr(on_dask, name), getattr(memory, name), rtol=RTOL)
    assert (on_dask.status, on_dask.method, on_dask.converged) == (memory.status, memory.method, memory.converged)


@pytest.mark.parametrize("cls", [dist.Beta, dist.Weibull, dist.StudentT])
@pytest.mark.parametrize("weighted", [False, True])
def test_equals_in_memory(client, cls, weighted):
    rng = np.random.default_rng(11)
    x = _data(cls, rng)
    w = rng.uniform(0.0, 3.0, size=600) if weighted else None
    memory = kb.fit(cls, x, sample_weight=w)
    on_dask = kb.fit(cls, da.from_array(x, chunks=CHUNKS), sample_weight=None if w is None else da.from_array(w, chunks=250))
    _assert_same_fit(on_dask, memory)
    assert on_dask.num_iterations == memory.num_iterations and type(on_dask.q) is cls
    assert on_dask.data_entropy is None
    # passes: the Beta's sufficient statistics only; Weibull: one per profile Newton step and one
    # for the information; Student-t (no backtracking here): the start, one per step, the last step
    passes = {dist.Beta: 1, dist.Weibull: 2 + memory.num_iterations, dist.StudentT: 3 + memory.num_iterations}[cls]
    assert on_dask.message.endswith(f"On Dask: {passes} pass{'es' if passes > 1 else ''} over the rows.")
    lines = [line for line in str(on_dask.summary()).splitlines() if "On Dask" not in line]  # less the message
    assert len(lines) > 5 and set(lines) <= set(str(memory.summary()).splitlines())


@pytest.mark.parametrize("cls, scipy_fit, names, rtol", [
    (dist.Beta, lambda x: stats.beta.fit(x, floc=0, fscale=1)[:2], ("concentration1", "concentration0"), 1e-6),
    (dist.Weibull, lambda x: (lambda f: (f[0], f[2]))(stats.weibull_min.fit(x, floc=0)), ("concentration", "scale"),
     1e-4),
    (dist.StudentT, stats.t.fit, ("df", "loc", "scale"), 1e-4),
], ids=["beta", "weibull", "t"])
def test_agrees_with_scipy(client, cls, scipy_fit, names, rtol):
    x = _data(cls, np.random.default_rng(12))
    on_dask = kb.fit(cls, da.from_array(x, chunks=CHUNKS))
    reference = scipy_fit(x)
    np.testing.assert_allclose([float(on_dask.params[n]) for n in names], reference, rtol=rtol)
    frozen = {dist.Beta: lambda f: stats.beta(*f), dist.Weibull: lambda f: stats.weibull_min(f[0], scale=f[1]),
              dist.StudentT: lambda f: stats.t(*f)}[cls]
    scipy_loglike = float(frozen(reference).logpdf(x).sum())
    assert on_dask.log_likelihood >= scipy_loglike - 1e-9 * abs(scipy_loglike)
    ours = float(frozen([float(on_dask.params[n]) for n in names]).logpdf(x).sum())
    np.testing.assert_allclose(on_dask.log_likelihood, ours, rtol=1e-12)


def test_student_t_from_a_sample_start(client, monkeypatch):
    """Only every 6th row for the start's medians: another Newton path to the same optimum."""
    from kullback.distributed import _scalar

    monkeypatch.setattr(_scalar, "SAMPLE_ROWS", 100)
    rng = np.random.default_rng(1)
    x, w = _data(dist.StudentT, rng), rng.uniform(0.0, 3.0, size=600)
    memory = kb.fit(dist.StudentT, x, sample_weight=w)
    on_dask = kb.fit(dist.StudentT, da.from_array(x, chunks=CHUNKS), sample_weight=da.from_array(w, chunks=CHUNKS))
    _assert_same_fit(on_dask, memory)


def test_errors(client):
    x = da.from_array(np.random.default_rng(0).normal(size=100), chunks=30)
    with pytest.raises(ValueError, match=r"in \(0, 1\) for Beta"):
        kb.fit(dist.Beta, x)
    with pytest.raises(ValueError, match="positive for Weibull"):
        kb.fit(dist.Weibull, x)
    with pytest.raises(ValueError, match="finite"):
        kb.fit(dist.StudentT, x * np.nan)
    with pytest.raises(NotImplementedError, match="init="):
        kb.fit(dist.StudentT, x, init={"df": 3.0})
