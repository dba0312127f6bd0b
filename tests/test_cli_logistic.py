"""`kullback logistic data.csv --target y`: CSV and Parquet in, the summary table (or JSON) out.

Reference: statsmodels Logit on the same file (rtol 1e-6 on coefficients and standard errors).
"""

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from typer.testing import CliRunner

from kullback.cli import app

runner = CliRunner()
RNG = np.random.default_rng(3)
FRAME = pd.DataFrame({"age": RNG.normal(size=150), "dose": RNG.normal(size=150)})
FRAME["y"] = (RNG.uniform(size=150) < 1 / (1 + np.exp(-(0.2 + FRAME.age - 0.7 * FRAME.dose)))).astype(int)


@pytest.mark.timeout(120)
def test_logistic_json_matches_statsmodels(tmp_path):
    path = tmp_path / "data.csv"
    FRAME.to_csv(path, index=False)
    result = runner.invoke(app, ["logistic", str(path), "--target", "y", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    ref = sm.Logit(FRAME.y, sm.add_constant(FRAME[["age", "dose"]])).fit(method="newton", tol=1e-14, disp=0)
    rows = {c["name"]: c for c in payload["coefficients"]}
    assert list(rows) == ["intercept", "age", "dose"]
    np.testing.assert_allclose([rows[k]["coef"] for k in rows], ref.params.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose([rows[k]["stderr"] for k in rows], ref.bse.to_numpy(), rtol=1e-6)
    assert payload["separation"] is None and payload["warnings"] == []


@pytest.mark.timeout(120)
def test_logistic_table_from_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "data.parquet"
    FRAME.to_parquet(path)
    result = runner.invoke(app, ["logistic", str(path), "--target", "y", "--features", "age"])
    assert result.exit_code == 0, result.output
    assert "P>|z|" in result.output and "age" in result.output and "dose" not in result.output


def test_logistic_bad_target(tmp_path):
    path = tmp_path / "data.csv"
    FRAME.to_csv(path, index=False)
    result = runner.invoke(app, ["logistic", str(path), "--target", "nope"])
    assert result.exit_code != 0 and "Expected --target to name a column" in result.output


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("--penalty", "lasso", "Expected --penalty to be one of none, l2, l1, elasticnet; got 'lasso'."),
        ("--C", "-1", "Expected --C to be a positive finite number; got -1.0."),
        ("--C", "inf", "Expected --C to be a positive finite number; got inf."),
        ("--alpha", "2", "Expected --alpha to be in (0, 1); got 2.0."),
    ],
)
def test_logistic_bad_option_is_a_usage_error(tmp_path, option, value, expected):
    """A bad setting exits 2 with one line naming the option and what it accepts (it was a
    traceback and exit 1)."""
    path = tmp_path / "data.csv"
    FRAME.to_csv(path, index=False)
    result = runner.invoke(app, ["logistic", str(path), "--target", "y", option, value])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.strip() == f"error: {expected}"
