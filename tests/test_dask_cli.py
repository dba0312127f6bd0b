"""``kullback fit ... --dask`` and ``kullback logistic ... --dask`` print what the in-memory commands print.

Reference: the same command without ``--dask`` on one file holding all rows. The Dask commands
read a glob of three Parquet files and connect to the shared LocalCluster (``--scheduler``).
Tolerance: 1e-10 relative on every number of the JSON output.
"""

import json

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")
from typer.testing import CliRunner  # noqa: E402

from _dask_cluster import client  # noqa: E402, F401  (the shared LocalCluster)
from kullback.cli import app  # noqa: E402


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    rng = np.random.default_rng(5)
    n = 600
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "w": rng.uniform(0.5, 2.0, n),
                          "x": rng.gamma(2.0, 1.5, size=n)})
    frame["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-(frame.a - 0.5 * frame.b)))).astype(int)
    frame.loc[7, "a"] = np.nan  # a row with a missing feature: dropped by both
    folder = tmp_path_factory.mktemp("parts")
    for i, part in enumerate(np.array_split(np.arange(n), [150, 420])):
        frame.iloc[part].to_parquet(folder / f"part{i}.parquet")
    whole = folder.parent / "whole.parquet"
    frame.to_parquet(whole)
    return str(whole), str(folder / "*.parquet")


def _numbers(a, b):
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            _numbers(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _numbers(u, v)
    elif isinstance(a, float) and isinstance(b, float):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    else:
        assert a == b


def _run(*args):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_logistic_dask(client, tables):
    whole, parts = tables
    memory = _run("logistic", whole, "--target", "y", "--features", "a,b", "--weight", "w", "--json")
    on_dask = _run("logistic", parts, "--target", "y", "--features", "a,b", "--weight", "w", "--json",
                   "--dask", "--scheduler", client.scheduler.address)
    _numbers(on_dask, memory)


def test_fit_dask(client, tables):
    whole, parts = tables
    memory = _run("fit", whole, "--family", "gamma", "--column", "x", "--json")
    on_dask = _run("fit", parts, "--family", "gamma", "--column", "x", "--json", "--dask",
                   "--scheduler", client.scheduler.address)
    memory.pop("data_entropy", None)
    memory.pop("kl_estimate", None)
    for key in ("file",):
        memory.pop(key), on_dask.pop(key)
    _numbers({k: on_dask[k] for k in memory}, memory)
    assert on_dask["params"] == pytest.approx(memory["params"], rel=1e-10)


def test_dask_needs_existing_files(client, tmp_path):
    result = CliRunner().invoke(app, ["fit", str(tmp_path / "none*.parquet"), "--family", "gamma", "--dask",
                                      "--scheduler", client.scheduler.address])
    assert result.exit_code == 2 and "Expected DATA" in result.output
