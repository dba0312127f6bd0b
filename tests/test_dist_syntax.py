"""The distribution syntax of ``kullback kl`` and the command's text."""

from __future__ import annotations

import json

import numpy as np
import numpyro.distributions as dist
import pytest

import kullback as kb
from kullback.cli._kl import kl_command
from kullback.cli._syntax import DistributionSyntaxError, parse_distribution


@pytest.mark.parametrize(
    "text, cls, params",
    [
        ("normal(0, 1)", dist.Normal, {"loc": 0.0, "scale": 1.0}),
        ("normal()", dist.Normal, {"loc": 0.0, "scale": 1.0}),
        ("Gaussian(-1.5, scale=2)", dist.Normal, {"loc": -1.5, "scale": 2.0}),
        ("student_t(3)", dist.StudentT, {"df": 3.0, "loc": 0.0, "scale": 1.0}),
        ("gamma(2, rate=0.5)", dist.Gamma, {"concentration": 2.0, "rate": 0.5}),
        ("beta(2, 3)", dist.Beta, {"concentration1": 2.0, "concentration0": 3.0}),
        ("poisson(4)", dist.Poisson, {"rate": 4.0}),
        ("negative_binomial(3, 2)", dist.NegativeBinomial2, {"mean": 3.0, "concentration": 2.0}),
        ("uniform(-inf, 1)", dist.Uniform, {"low": -np.inf, "high": 1.0}),
    ],
)
def test_parses_families(text, cls, params):
    d = parse_distribution(text)
    assert isinstance(d, cls)
    for k, v in params.items():
        np.testing.assert_allclose(np.asarray(getattr(d, k)), v)


def test_parses_mixtures_and_multivariate():
    m = parse_distribution("mixture([0.25, 0.75], [normal(-3, 1), normal(3, 2)])")
    assert isinstance(m, dist.MixtureSameFamily) and m.mixture_size == 2
    np.testing.assert_allclose(m.mixing_distribution.probs, [0.25, 0.75])
    np.testing.assert_allclose(m.component_distribution.loc, [-3.0, 3.0])
    np.testing.assert_allclose(m.component_distribution.scale, [1.0, 2.0])
    g = parse_distribution("mixture([0.5, 0.5], [normal(0, 1), laplace(1, 2)])")
    assert isinstance(g, dist.MixtureGeneral)
    mvn = parse_distribution("mvn([0, 1], [[1, 0.5], [0.5, 2]])")
    np.testing.assert_allclose(mvn.covariance_matrix, [[1, 0.5], [0.5, 2]])


@pytest.mark.parametrize(
    "text, match",
    [
        ("norml(0, 1)", "Unknown distribution 'norml'.*normal"),
        ("normal(0, 1, 2)", "at most 2 arguments"),
        ("normal(0, -1)", "normal.*invalid scale"),
        ("normal(0, x)", "Expected a number"),
        ("beta(2)", "value for concentration0"),
        ("normal(0, 1", "could not parse"),
        ("mixture([0.5, 0.6], [normal(), normal()])", "sum to 1"),
        ("mixture([1.0], [normal(), normal()])", "as many mixture weights"),
        ("__import__('os')", "Expected a number|Unknown distribution"),
        ("", "Expected a distribution"),
    ],
)
def test_errors_say_what_was_expected(text, match):
    with pytest.raises(DistributionSyntaxError, match=match):
        parse_distribution(text)


def test_kl_command_text_and_json():
    text = kl_command("normal(0, 1)", "normal(1, 2)", as_json=False, method="auto", seed=0)
    assert "0.443147" in text and "closed_form" in text
    quad = kl_command("normal(0, 1)", "student_t(3)", as_json=False, method="auto", seed=0)
    assert "quadrature" in quad and "error: ±" in quad
    payload = json.loads(kl_command("exponential(1)", "gamma(2, 1)", as_json=True, method="auto", seed=0))
    truth = float(kb.kl(dist.Exponential(1.0), dist.Gamma(2.0, 1.0)))
    assert payload["method"] == "closed_form" and payload["kl"] == pytest.approx(truth, rel=1e-12)
    mc = json.loads(kl_command("normal(0, 1)", "normal(1, 2)", as_json=True, method="monte_carlo", seed=3))
    assert mc["method"] == "monte_carlo" and mc["stderr"] > 0
    assert abs(mc["kl"] - float(kb.kl(dist.Normal(0.0, 1.0), dist.Normal(1.0, 2.0)))) < 4 * mc["stderr"]
