"""`kullback kl P Q`: value, method and error; bad specs are usage errors."""

import json
import math

from scipy import integrate, stats
from typer.testing import CliRunner

from kullback.cli import app

runner = CliRunner()


def test_kl_closed_form_matches_scipy_quadrature():
    result = runner.invoke(app, ["kl", "student_t(3)", "normal(0, 1)", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["method"] == "closed_form" and payload["stderr"] == 0.0

    def integrand(x):
        return stats.t.pdf(x, 3) * (stats.t.logpdf(x, 3) - stats.norm.logpdf(x))

    ref = sum(integrate.quad(integrand, a, b, epsabs=1e-13, epsrel=1e-12)[0]
              for a, b in [(-math.inf, 0.0), (0.0, math.inf)])
    assert math.isclose(payload["kl"], ref, rel_tol=1e-8)


def test_kl_text_names_method_and_error():
    result = runner.invoke(app, ["kl", "normal(0, 1)", "student_t(3)"])
    assert result.exit_code == 0, result.output
    assert "quadrature" in result.output and "±" in result.output


def test_kl_bad_spec_is_a_usage_error():
    result = runner.invoke(app, ["kl", "normal(0, 1)", "nonsense(2)"])
    assert result.exit_code == 2
    assert "nonsense" in result.output


def test_fit_command_prints_the_mle(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("x\n1.0\n2.5\n3.1\n0.2\n1.7\n")
    result = runner.invoke(app, ["fit", str(path), "--family", "normal", "--json"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "1.7" in text  # the sample mean of the column


def test_fit_command_missing_file_fails_cleanly(tmp_path):
    result = runner.invoke(app, ["fit", str(tmp_path / "missing.csv"), "--family", "normal"])
    assert result.exit_code == 2
