"""kb.kl / kb.cross_entropy / kb.entropy and kb.logits.* on Dask arrays chunked along rows.

Reference: the same functions on the NumPy arrays. Tolerance: 1e-12 relative per row (the
same per-row math, block by block; observed: equal to rounding) and 1e-10 for the reductions
(a float64 tree sum against the in-memory sum).
"""

import jax
import numpy as np
import pytest

pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import kullback as kb  # noqa: E402
from _dask_cluster import client  # noqa: E402, F401  (the shared LocalCluster)

jax.config.update("jax_enable_x64", True)

ROWS = (13, 40, 7, 60)  # 120 rows in unequal blocks


def _probabilities(rng, shape):
    p = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    p[0, 0] = 0.0  # a zero of p: 0 log 0 = 0
    return p / p.sum(-1, keepdims=True)


def test_probability_measures_are_lazy_and_equal(client):
    rng = np.random.default_rng(0)
    p, q = _probabilities(rng, (120, 5)), _probabilities(rng, (120, 5)) + 0.0
    q[0] = 0.2
    pd, qd = da.from_array(p, chunks=(ROWS, 5)), da.from_array(q, chunks=(60, 5))
    for got, want in [(kb.kl(pd, qd), kb.kl(p, q)), (kb.cross_entropy(pd, qd, base=2), kb.cross_entropy(p, q, base=2)),
                      (kb.entropy(pd), kb.entropy(p))]:
        assert isinstance(got, da.Array) and got.shape == (120,) and got.dtype == np.float64
        np.testing.assert_allclose(got.compute(), np.asarray(want), rtol=1e-12, atol=1e-15)
    # the outcome axis first, chunked: moved and made whole per block
    pt = da.from_array(p.T.copy(), chunks=(2, ROWS))
    qt = da.from_array(q.T.copy(), chunks=(5, 30))
    np.testing.assert_allclose(kb.kl(pt, qt, axis=0).compute(), np.asarray(kb.kl(p, q)), rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="sum to 1"):
        kb.kl(pd * 2, qd).compute()  # validated per block, as in memory


@pytest.mark.parametrize("measure", ["kl", "cross_entropy", "entropy"])
def test_logits_reductions(client, measure):
    rng = np.random.default_rng(1)
    lp, lq = rng.normal(size=(120, 7)) * 3, rng.normal(size=(120, 7))
    where = rng.uniform(size=120) > 0.3
    fn = getattr(kb.logits, measure)
    args = (lp, lq) if measure != "entropy" else (lp,)
    dargs = tuple(da.from_array(a, chunks=(ROWS, 7)) for a in args)
    lazy = fn(*dargs, temperature=2.0)
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), np.asarray(fn(*args, temperature=2.0)), rtol=1e-12, atol=1e-15)
    for reduction, mask in [("mean", None), ("mean", where), ("sum", where), ("batchmean", None)]:
        dmask = None if mask is None else da.from_array(mask, chunks=50)
        got = fn(*dargs, reduction=reduction, where=dmask)
        assert isinstance(got, np.float64)
        np.testing.assert_allclose(got, float(fn(*args, reduction=reduction, where=mask)), rtol=1e-10)
    with pytest.raises(ValueError, match="reduction"):
        fn(*dargs, reduction="max")


@pytest.mark.parametrize("measure", ["kl", "cross_entropy", "entropy"])
def test_probability_reductions(client, measure):
    rng = np.random.default_rng(2)
    p, q = rng.dirichlet(np.ones(5), size=(120, 3)), rng.dirichlet(np.ones(5), size=(120, 3))
    fn = getattr(kb, measure)
    args = (p, q) if measure != "entropy" else (p,)
    dargs = tuple(da.from_array(a, chunks=(ROWS, 3, 5)) for a in args)
    want = np.asarray(fn(*args, base=2))  # (120, 3): the in-memory per-row values
    lazy = fn(*dargs, base=2, reduction="none")
    assert isinstance(lazy, da.Array) and lazy.shape == (120, 3)
    np.testing.assert_allclose(lazy.compute(), want, rtol=1e-12, atol=1e-15)
    for reduction, reference in [("sum", want.sum()), ("mean", want.mean())]:
        got = fn(*dargs, base=2, reduction=reduction)
        assert isinstance(got, np.float64)
        np.testing.assert_allclose(got, reference, rtol=1e-10)
    with pytest.raises(ValueError, match="reduction"):
        fn(*dargs, reduction="batchmean")


def test_probability_reduction_keeps_inf(client):
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    q = np.array([[0.5, 0.5], [0.0, 1.0]])  # row 1: p > 0 where q = 0
    got = kb.kl(da.from_array(p, chunks=1), da.from_array(q, chunks=1), reduction="mean")
    assert got == np.inf


def test_blocks_too_large_for_the_workers_fail_at_the_call(client, monkeypatch):
    """The measures ask the workers as the fits do (see test_dask_glm): here a block counts as
    10¹² in flight, so no worker can hold it, and the call says so before any task runs."""
    from kullback.distributed import _protocol

    monkeypatch.setattr(_protocol, "BLOCKS_IN_FLIGHT", 10**12)
    logits = da.from_array(np.zeros((60, 5), dtype=np.float32), chunks=(25, 5))
    with pytest.raises(ValueError, match=r"row blocks of logits_p .* blocks of 25 rows \(0\.001 MB each\)"):
        kb.logits.kl(logits, logits, reduction="none")
