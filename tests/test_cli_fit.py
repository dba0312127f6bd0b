"""``kullback fit`` text: CSV and Parquet in, a summary table or JSON out."""

import json

import numpy as np
import numpyro.distributions as dist
import pandas as pd
import pytest
import scipy.stats as st

from kullback.cli._fit import fit_command
from kullback.cli._names import FIT_FAMILIES, fit_family

X = st.t.rvs(4.0, loc=1.0, scale=2.0, size=500, random_state=1)  # the same data as test_fit_forward_mle


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    frame = pd.DataFrame({"x": X, "label": ["a"] * len(X)})
    frame.to_csv(d / "t.csv", index=False)
    frame.to_parquet(d / "t.parquet")
    two = pd.DataFrame({"x": X, "y": np.concatenate([[np.nan], X[1:] * 2])})
    two.to_csv(d / "two.csv", index=False)
    return d


def test_table_from_csv_matches_scipy(files):
    text = fit_command(str(files / "t.csv"), "student_t", False, None)
    assert text.startswith("StudentT fitted to t.csv column x (500 rows)")
    for word in ("df", "loc", "scale", "std. error", "log_likelihood", "aic", "bic", "KL(p||q) est."):
        assert word in text
    log_lik = float(next(line.split()[-1] for line in text.splitlines() if line.startswith("log_likelihood")))
    ref = st.t.logpdf(X, *st.t.fit(X)).sum()
    assert log_lik >= ref - 1e-6 * abs(ref)  # printed to 10 significant digits


def test_json_from_parquet(files):
    out = json.loads(fit_command(str(files / "t.parquet"), "student_t", True, "x"))
    assert out["rows"] == 500 and out["converged"] and out["family"] == "StudentT"
    assert set(out["params"]) == {"df", "loc", "scale"} and set(out["stderr"]) == {"df", "loc", "scale"}
    ref = st.t.logpdf(X, *st.t.fit(X)).sum()
    assert out["log_likelihood"] >= ref - 1e-9 * abs(ref)


def test_columns_rows_and_errors(files):
    text = fit_command(str(files / "two.csv"), "normal", False, "y")
    assert "(499 rows, 1 dropped)" in text
    mvn = json.loads(fit_command(str(files / "two.csv"), "multivariate_normal", True, None))
    assert mvn["columns"] == ["x", "y"] and mvn["rows"] == 499
    with pytest.raises(ValueError, match="--column"):
        fit_command(str(files / "two.csv"), "normal", False, None)
    with pytest.raises(ValueError, match="family to be one of"):
        fit_command(str(files / "t.csv"), "studentt", False, None)
    with pytest.raises(ValueError, match="columns of the file"):
        fit_command(str(files / "t.csv"), "normal", False, "z")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fit_command(str(files / "nope.csv"), "normal", False, None)
    assert "student_t" in FIT_FAMILIES and "gamma_loc" in FIT_FAMILIES


def test_help_lists_every_family():
    from typer.testing import CliRunner

    from kullback.cli import app
    from kullback.families import LocScale

    text = CliRunner().invoke(app, ["fit", "--help"]).output
    for name in FIT_FAMILIES:
        assert name in text
        family = fit_family(name)  # every name --help lists is a numpyro class, or one with a free loc
        assert isinstance(family, LocScale) or issubclass(family, dist.Distribution), name


def test_the_table_has_intervals(tmp_path):
    import numpy as np

    path = tmp_path / "x.csv"
    np.savetxt(path, np.random.default_rng(0).normal(1.0, 2.0, 400), header="x", comments="")
    text = fit_command(str(path), "normal", False, None)
    assert "[0.025" in text and "0.975]" in text
