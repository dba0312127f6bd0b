"""The command line: `kullback demo` shows forward vs reverse, as a table, JSON and a figure."""

import json
import math

import pytest
from typer.testing import CliRunner

from kullback.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_json(tmp_path_factory):
    figure = tmp_path_factory.mktemp("demo") / "figure.png"
    result = runner.invoke(app, ["demo", "--json", "--output", str(figure)])
    assert result.exit_code == 0, result.output
    return json.loads(result.output), figure


def test_demo_writes_a_png(demo_json):
    payload, figure = demo_json
    assert payload["figure"] == str(figure)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure.stat().st_size > 20_000


def test_demo_forward_is_moment_matched(demo_json):
    payload, _ = demo_json
    fwd = payload["bimodal"]["fits"]["forward"]
    # p = ½ N(−3, 1) + ½ N(3, 1): mean 0, variance 1 + 9 = 10.
    assert abs(fwd["mean"]) < 1e-6
    assert fwd["sd"] == pytest.approx(math.sqrt(10.0), rel=1e-6)
    # Student-t(3): variance df / (df − 2) = 3.
    tail = payload["heavy_tail"]["fits"]
    assert tail["forward"]["sd"] == pytest.approx(math.sqrt(3.0), rel=1e-6)


def test_demo_reverse_sits_on_a_mode(demo_json):
    payload, _ = demo_json
    rev = payload["bimodal"]["fits"]["reverse"]
    assert abs(abs(rev["mean"]) - 3.0) < 0.1 * 1.0  # within 0.1 sd of a component mean
    assert rev["sd"] == pytest.approx(1.0, abs=0.05)
    tail = payload["heavy_tail"]["fits"]
    assert tail["reverse"]["sd"] < tail["forward"]["sd"]


def test_demo_kls_are_honest(demo_json):
    payload, _ = demo_json
    for target in ("bimodal", "heavy_tail"):
        fits = payload[target]["fits"]
        for direction, s in fits.items():
            for key in ("kl_p_q", "kl_q_p"):
                e = s[key]
                assert e["value"] >= 0 and e["stderr"] >= 0 and e["method"]
            assert s["converged"], (target, direction)
        # Each fit is the better one in its own direction.
        assert fits["forward"]["kl_p_q"]["value"] < fits["reverse"]["kl_p_q"]["value"]
        assert fits["reverse"]["kl_q_p"]["value"] < fits["forward"]["kl_q_p"]["value"]


def test_demo_table_is_printed(tmp_path):
    result = runner.invoke(app, ["demo", "--no-figure"])
    assert result.exit_code == 0, result.output
    assert "KL(p‖q)" in result.output and "forward" in result.output and "reverse" in result.output


def test_unknown_command_fails_cleanly():
    result = runner.invoke(app, ["nonsense"])
    assert result.exit_code != 0
