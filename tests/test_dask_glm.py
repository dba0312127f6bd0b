"""LogisticRegression / SoftmaxRegression on Dask collections equal the in-memory fits.

Reference: the same estimator on the same data in NumPy. Tolerance: 1e-10 relative for
coefficients, standard errors, log-likelihoods and AIC (observed: ~1e-15; both run the same
Newton iterations on the same sums, added in another order). The cluster is a LocalCluster of
two single-threaded worker processes started here (no network beyond localhost).
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import kullback as kb  # noqa: E402
from _dask_cluster import client  # noqa: E402, F401  (the shared LocalCluster)

RTOL = 1e-10
CHUNKS = (70, 230, 41, 159)  # unequal row blocks, 500 rows




def _close(a, b, rtol=RTOL):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=rtol, atol=0)


def _same(dask_fit, memory_fit):
    for name in ["coef_", "intercept_", "loglike_", "null_loglike_", "deviance_", "null_deviance_", "aic_", "bic_"]:
        _close(getattr(dask_fit, name), getattr(memory_fit, name))
    for name in ["coef_stderr_", "intercept_stderr_", "covariance_"]:
        a, b = getattr(dask_fit, name), getattr(memory_fit, name)
        assert (a is None) == (b is None), name
        if a is not None:
            _close(a, b)
    assert dask_fit.converged_ == memory_fit.converged_
    assert dask_fit.n_iter_[0] == memory_fit.n_iter_[0]
    np.testing.assert_array_equal(dask_fit.classes_, memory_fit.classes_)


def _data(seed=0, n=500, p=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * [1.0, 3.0, 0.1][:p]
    off = 0.5 * rng.normal(size=n)
    w = rng.uniform(0.2, 3.0, size=n)
    eta = X @ np.array([0.8, -0.2, 4.0])[:p] + 0.3 + off
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    return X, y, w, off


def _chunked(*arrays):
    return [None if a is None else da.from_array(a, chunks=(CHUNKS,) + a.shape[1:]) for a in arrays]


@pytest.mark.parametrize("settings", [
    {},
    {"penalty": "l2", "C": 0.3},
    {"penalty": "l1", "C": 0.05},
    {"penalty": "elasticnet", "C": 0.05, "l1_ratio": 0.3},
    {"solver": "lbfgs"},
    {"fit_intercept": False},
])
def test_logistic_weights_offset_unequal_chunks(client, settings):
    X, y, w, off = _data()
    Xd, yd, wd, od = _chunked(X, y, w, off)
    wd = wd.rechunk(100)  # other chunks than X's: aligned to X's rows
    memory = kb.LogisticRegression(**settings).fit(X, y, sample_weight=w, offset=off)
    on_dask = kb.LogisticRegression(**settings).fit(Xd, yd, sample_weight=wd, offset=od)
    _same(on_dask, memory)
    assert str(on_dask.summary()) == str(memory.summary())
    # Newton: one pass over X per step, plus the first read and the final pass (statistics and
    # null model not counted); L-BFGS: one per function evaluation
    steps = memory.n_iter_[0]
    assert on_dask.num_passes_ <= (2 * steps + 2 if settings.get("solver") == "lbfgs" else steps + 2)


@pytest.mark.filterwarnings("ignore:Sending large graph")  # the test's NumPy data travel in the graph
def test_logistic_tall_data_takes_the_in_memory_path(client):
    """270,000 rows: the in-memory fit starts from a pilot fit to every 16th row and steps with
    the Hessian of every 4th; the Dask fit gathers the same rows in its first pass, so it takes
    the same steps."""
    rng = np.random.default_rng(4)
    n = 270_000
    X = rng.normal(size=(n, 2))
    off = 0.2 * rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(X @ [1.0, -0.5] + 0.3 + off)))).astype(int)
    w = rng.uniform(0.5, 2.0, size=n)
    memory = kb.LogisticRegression().fit(X, y, sample_weight=w, offset=off)
    chunks = (60_000, 100_001, 50_000, 59_999)
    on_dask = kb.LogisticRegression().fit(*[da.from_array(a, chunks=(chunks,) + a.shape[1:]) for a in (X, y)],
                                          sample_weight=da.from_array(w, chunks=(chunks,)),
                                          offset=da.from_array(off, chunks=(chunks,)))
    _same(on_dask, memory)
    assert on_dask.num_passes_ <= memory.n_iter_[0] + 2


def test_logistic_summary_and_dataframe(client):
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    X, y, w, _ = _data(seed=1)
    frame = pd.DataFrame(X, columns=["age", "dose", "level"]).assign(y=y, w=w)
    ddf = dd.from_pandas(frame, npartitions=3)
    memory = kb.LogisticRegression().fit(frame[["age", "dose", "level"]], frame["y"], sample_weight=frame["w"])
    on_dask = kb.LogisticRegression().fit(ddf[["age", "dose", "level"]], ddf["y"], sample_weight=ddf["w"])
    _same(on_dask, memory)
    assert str(on_dask.summary()) == str(memory.summary())
    assert "dose" in str(on_dask.summary())


def test_logistic_separated(client):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 2))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0.1).astype(int)
    Xd, yd = _chunked(X, y)
    with warnings.catch_warnings(record=True) as memory_warnings:
        warnings.simplefilter("always")
        memory = kb.LogisticRegression().fit(X, y)
    with warnings.catch_warnings(record=True) as dask_warnings:
        warnings.simplefilter("always")
        on_dask = kb.LogisticRegression().fit(Xd, yd)
    assert on_dask.separation_ is not None and not on_dask.converged_
    assert str(on_dask.separation_) == str(memory.separation_)
    np.testing.assert_array_equal(on_dask.separation_.direction, memory.separation_.direction)
    np.testing.assert_array_equal(on_dask.coef_stderr_, memory.coef_stderr_)  # inf along the separation
    assert [type(m.message) for m in dask_warnings] == [type(m.message) for m in memory_warnings]
    assert any("separation" in str(m.message) for m in dask_warnings)


def test_separation_on_data_too_large_for_the_check_warns(client, monkeypatch):
    import kullback.distributed._glm as dask_glm

    monkeypatch.setattr(dask_glm, "_LP_MAX_CELLS", 100)  # as if X had more than 5·10⁶ cells
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 2))
    Xd, yd = _chunked(X, (X[:, 0] > 0.1).astype(int))
    with pytest.warns(UserWarning, match="may be separated.*needs them in memory"):
        on_dask = kb.LogisticRegression().fit(Xd, yd)
    assert on_dask.separation_ is None  # not checked: the solver's own status stands


def test_softmax(client):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 2))
    y = np.array(["cat", "dog", "eel"])[np.argmax(X @ [[1.0, -1.0, 0.0], [0.0, 0.5, -0.5]] + rng.gumbel(size=(500, 3)), 1)]
    w = rng.uniform(0.5, 2.0, size=500)
    Xd, yd, wd = _chunked(X, y, w)
    off = 0.3 * rng.normal(size=(500, 3))
    od = da.from_array(off, chunks=(CHUNKS, 3))
    for settings, o, od_ in (({}, None, None), ({"penalty": "l2", "C": 1.0}, off, od)):
        memory = kb.SoftmaxRegression(**settings).fit(X, y, sample_weight=w, offset=o)
        on_dask = kb.SoftmaxRegression(**settings).fit(Xd, yd, sample_weight=wd, offset=od_)
        _same(on_dask, memory)
    # compiled programs per worker: blocks of 41 to 230 rows share one padded shape, so the
    # block kernel exists with and without the Hessian for each of the three problems: the
    # unpenalised fit (reference class), the L2 fit (all classes free) and its null model with
    # an offset (one zero column)
    counts = client.run(lambda: __import__("kullback.glm._blocks", fromlist=["_"])._pass_kernel._cache_size())
    assert len(counts) == 2 and all(1 <= c <= 6 for c in counts.values()), counts
    kb.SoftmaxRegression().fit(Xd.rechunk(250), yd.rechunk(250), sample_weight=wd)  # other blocks: no new program
    assert client.run(lambda: __import__("kullback.glm._blocks", fromlist=["_"])._pass_kernel._cache_size()) == counts


def test_errors(client):
    X, y, _, _ = _data()
    Xd, yd = _chunked(X, y)
    unknown = Xd[Xd[:, 0] > -10]  # a boolean mask: NaN chunk sizes
    with pytest.raises(ValueError, match=r"compute_chunk_sizes\(\).*lengths=True"):
        kb.LogisticRegression().fit(unknown, yd)
    with pytest.raises(ValueError, match="one entry per row of X"):
        kb.LogisticRegression().fit(Xd, yd[:-1])
    bad = Xd.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Expected X to be finite"):
        kb.LogisticRegression().fit(bad, yd)
    with pytest.raises(ValueError, match="two classes"):
        kb.LogisticRegression().fit(Xd, yd * 0)


def test_blocks_too_large_for_the_workers_fail_at_the_start(client, monkeypatch):
    """A worker paused on memory takes no tasks, so a fit whose blocks cannot fit would wait
    forever: the check asks every worker (Client.run) for its limit, pause fraction and resident
    size before the first pass. Here a block counts as 10¹² in flight, so no worker can hold it."""
    from kullback.distributed import _protocol

    X, y, _, _ = _data(6)
    Xd, yd = _chunked(X, y)
    monkeypatch.setattr(_protocol, "BLOCKS_IN_FLIGHT", 10**12)
    with pytest.raises(ValueError, match=r"memory_limit .* pauses at 80% .* 10{12} blocks of 230 rows .* larger memory_limit"):
        kb.LogisticRegression().fit(Xd, yd)
    # as many blocks in flight as fill a worker's pause threshold at 125 rows each (X and y: 4
    # float64 a row): blocks of 250 rows need twice that, and the error suggests a little under
    # 125 rows (the worker's resident memory takes the rest)
    monkeypatch.setattr(_protocol, "RUNTIME_BYTES", 0.0)
    room = min(0.8 * w["memory_limit"] for w in client.scheduler_info()["workers"].values())
    monkeypatch.setattr(_protocol, "BLOCKS_IN_FLIGHT", int(room / (125 * 4 * 8)))
    Xd = da.from_array(X, chunks=(250, 3))
    with pytest.raises(ValueError, match=r"Use blocks of at most 1[0-2]\d rows \(X\.rechunk\(\{0: 1[0-2]\d\}\)"):
        kb.LogisticRegression().fit(Xd, da.from_array(y, chunks=250))
    # a DataFrame: checked from its first partition before the pass that counts its rows
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    frame = dd.from_pandas(pd.DataFrame(X, columns=["a", "b", "c"]), npartitions=2)
    monkeypatch.setattr(_protocol, "BLOCKS_IN_FLIGHT", 10**12)
    counted = []
    monkeypatch.setattr(_protocol, "_partition_lengths", lambda f: counted.append(f) or (250, 250))
    with pytest.raises(ValueError, match=r"row blocks of X .* blocks of 250 rows \(0\.006 MB each\)"):
        kb.LogisticRegression().fit(frame, yd)
    assert counted == []  # the rows were not counted: the error came first


def test_parquet_partitions_counted_from_metadata_fit_as_in_memory(client, tmp_path):
    """Files of unequal row counts: the array's chunks are the files' rows (dask reads them from
    the Parquet footers), and the fit equals the in-memory one."""
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y, w, _ = _data(7)
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=y, w=w)
    edges = [0, 120, 131, 390, 500]
    for i in range(4):
        frame.iloc[edges[i]:edges[i + 1]].to_parquet(tmp_path / f"part{i}.parquet")
    data = dd.read_parquet(str(tmp_path / "*.parquet"))
    from kullback.distributed import as_dask_array

    assert as_dask_array(data[["a", "b", "c"]], "X").chunks[0] == (120, 11, 259, 110)
    on_dask = kb.LogisticRegression().fit(data[["a", "b", "c"]], data["y"], sample_weight=data["w"])
    _same(on_dask, kb.LogisticRegression().fit(frame[["a", "b", "c"]], y, sample_weight=w))


def test_misaligned_blocks_are_read_from_an_aligned_copy():
    """A block deserialised from a task graph can start at an odd address (seen: 44 mod 64 for
    a persisted ``da.from_array`` block), where NumPy and BLAS run several times slower: the
    kernels read an aligned copy, aligned blocks are read in place."""
    from kullback.distributed._protocol import as_block

    raw = np.frombuffer(np.arange(8 * 30 + 4, dtype=np.uint8).tobytes(), dtype=np.float64, count=30, offset=4)
    assert not raw.flags.aligned
    block = as_block(raw.reshape(10, 3))
    assert block.flags.aligned and block.flags.c_contiguous
    np.testing.assert_array_equal(block, raw.reshape(10, 3))
    aligned = np.ones((10, 3))
    assert as_block(aligned) is aligned


def test_kernels_run_with_the_mmap_threshold_on_workers_that_trim(client, monkeypatch):
    """Dask's workers set MALLOC_TRIM_THRESHOLD_ (which fixes glibc's mmap threshold at 128 kB:
    each larger chunk temporary is mapped and faulted in anew): a kernel task sets the mmap
    threshold once per process; a process without that setting, or with a threshold of its
    own, is left alone."""
    from kullback.distributed import _protocol

    X = da.from_array(np.random.default_rng(0).normal(size=(400, 2)), chunks=(200, 2))
    y = (X[:, 0] > 0).astype(int)
    kb.LogisticRegression(penalty="l2").fit(X, y)
    state = client.run(lambda: (_protocol._malloc_tuned, "MALLOC_TRIM_THRESHOLD_" in __import__("os").environ))
    assert all(tuned for tuned, _ in state.values()) and all(trims for _, trims in state.values())

    calls = []

    class FakeLibc:
        def mallopt(self, option, value):
            calls.append((option, value))

    monkeypatch.setattr("ctypes.CDLL", lambda name: FakeLibc())
    for env, expected in [({"MALLOC_TRIM_THRESHOLD_": "65536"}, [(-3, 8 << 20)]), ({}, []),
                          ({"MALLOC_TRIM_THRESHOLD_": "65536", "MALLOC_MMAP_THRESHOLD_": "1000000"}, [])]:
        calls.clear()
        monkeypatch.setattr(_protocol, "_malloc_tuned", False)
        for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
            monkeypatch.delenv(k, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        _protocol.tune_malloc()
        _protocol.tune_malloc()  # once per process
        assert calls == (expected if sys.platform.startswith("linux") else [])


def test_public_names():
    import kullback.distributed as dist

    assert dist.__all__
    for name in dist.__all__:
        assert getattr(dist, name) is not None


def test_dask_is_not_imported_for_numpy_fits():
    code = (
        "import sys, numpy as np, kullback as kb\n"
        "X = np.random.default_rng(0).normal(size=(50, 2)); y = (X[:, 0] > 0.3).astype(int) ^ (X[:, 1] > 1)\n"
        "kb.LogisticRegression().fit(X, y)\n"
        "assert not any(m == 'dask' or m.startswith('dask.') for m in sys.modules), 'dask imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
