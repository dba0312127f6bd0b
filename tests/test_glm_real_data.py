"""Logistic regression on real data that ships with statsmodels: estimates and standard errors
against statsmodels, and their behaviour when a column changes units.

star98 (statsmodels.datasets; 303 California school districts, 20 covariates with interactions,
the binomial counts NABOVE / NBELOW): a frequency-weighted binary problem (each district twice,
label 1 with weight NABOVE and label 0 with weight NBELOW), whose likelihood is that of
statsmodels' GLM(Binomial) on the counts. Its information matrix has cond ≈ 1e14 in its own
units (≈ 1e7 equilibrated). spector (32 students, 3 covariates) against sm.Logit.

Tolerances: coefficients and standard errors 1e-6 relative to statsmodels (measured: ≈ 1e-9 and
2e-10; the covariance used to be an eigen-inverse of the unscaled information, 1.2e-2 off, and
inf with a column in other units). Under a column ×c (1e-3 … 1e6): the coefficient and its
standard error ×1/c, and every z-value unchanged, to 1e-8 relative (measured: ≈ 3e-10).
"""

import warnings

import numpy as np
import pandas as pd
import pytest

sm = pytest.importorskip("statsmodels.api")
from statsmodels.datasets import spector, star98  # noqa: E402

from kullback.glm import IdentifiabilityWarning, LogisticRegression  # noqa: E402

RTOL_REF = 1e-6
RTOL_SCALE = 1e-8


def _star98():
    data = star98.load_pandas()
    return data.exog, data.endog["NABOVE"].to_numpy(float), data.endog["NBELOW"].to_numpy(float)


STAR_X, STAR_SUCC, STAR_FAIL = _star98()


def _fit_star(X, **settings):
    """Fit the frequency-weighted binary form of star98; fail on any warning."""
    n = X.shape[0]
    rows = pd.concat([X, X], ignore_index=True)
    y = np.r_[np.ones(n), np.zeros(n)]
    w = np.r_[STAR_SUCC, STAR_FAIL]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return LogisticRegression(**settings).fit(rows, y, sample_weight=w)


def _params(model):
    return np.r_[model.intercept_, model.coef_[0]], np.r_[model.intercept_stderr_, model.coef_stderr_[0]]


@pytest.fixture(scope="module")
def star_fit():
    return _fit_star(STAR_X)


@pytest.fixture(scope="module")
def star_ref():
    counts = np.c_[STAR_SUCC, STAR_FAIL]
    return sm.GLM(counts, sm.add_constant(STAR_X), family=sm.families.Binomial()).fit(tol=1e-13, maxiter=100)


def test_star98_matches_statsmodels_glm_binomial(star_fit, star_ref):
    coef, se = _params(star_fit)
    assert star_fit.converged_
    np.testing.assert_allclose(coef, star_ref.params.to_numpy(), rtol=RTOL_REF)
    np.testing.assert_allclose(se, star_ref.bse.to_numpy(), rtol=RTOL_REF)
    np.testing.assert_allclose(star_fit.loglike_, star_ref.llf - _log_binomial_coefficients(), rtol=1e-12)


def _log_binomial_coefficients():
    """statsmodels' binomial log-likelihood includes Σ log C(n, k); ours (Bernoulli rows) does not."""
    from scipy.special import gammaln

    n = STAR_SUCC + STAR_FAIL
    return float(np.sum(gammaln(n + 1) - gammaln(STAR_SUCC + 1) - gammaln(STAR_FAIL + 1)))


@pytest.mark.parametrize("column", ["AVSALK", "PERMINTE_AVYRSEXP_AVSAL"])
@pytest.mark.parametrize("c", [1e-3, 300.0, 1e3, 1e6])
def test_star98_column_units_change_nothing_but_that_column(star_fit, column, c):
    """A salary in dollars rather than thousands (×1e3), and other units: the same fit, scaled;
    converged, no warning (``_fit_star`` turns warnings into errors)."""
    X = STAR_X.copy()
    X[column] = X[column] * c
    scaled = _fit_star(X)
    j = 1 + list(STAR_X.columns).index(column)
    units = np.ones(STAR_X.shape[1] + 1)
    units[j] = c
    coef0, se0 = _params(star_fit)
    coef, se = _params(scaled)
    assert scaled.converged_
    assert np.all(np.isfinite(se))
    np.testing.assert_allclose(coef * units, coef0, rtol=RTOL_SCALE)
    np.testing.assert_allclose(se * units, se0, rtol=RTOL_SCALE)
    np.testing.assert_allclose(coef / se, coef0 / se0, rtol=RTOL_SCALE)
    assert int(scaled.n_iter_[0]) == int(star_fit.n_iter_[0])  # Newton's steps are unit-free, and so is its test


def test_star98_lbfgs_stops_at_the_optimum_in_any_units(star_fit):
    """L-BFGS runs in column-scaled parameters with a column-scaled test: it converges (it used to
    run out of 5,000 iterations at gradient 0.05 in the data's own units)."""
    for c in (1.0, 1e3):
        X = STAR_X.copy()
        X["AVSALK"] = X["AVSALK"] * c
        model = _fit_star(X, solver="lbfgs", max_iter=5000)
        assert model.converged_
        assert model.loglike_ == pytest.approx(star_fit.loglike_, rel=1e-10)


def test_star98_dependent_columns_are_named_and_the_rest_keep_their_errors(star_fit):
    """A constant column besides the intercept and a copy of AVSALK: rank 21 of 23. The warning
    names the unidentified coefficients (intercept with the constant, AVSALK with its copy);
    every other standard error is finite and equals the full-rank fit's (1e-8)."""
    X = STAR_X.copy()
    X["CONST"] = 7.0
    X["AVSALK_COPY"] = X["AVSALK"]
    n = X.shape[0]
    rows = pd.concat([X, X], ignore_index=True)
    with pytest.warns(IdentifiabilityWarning, match=r"\[intercept, AVSALK, CONST, AVSALK_COPY\]"):
        model = LogisticRegression().fit(rows, np.r_[np.ones(n), np.zeros(n)], sample_weight=np.r_[STAR_SUCC, STAR_FAIL])
    assert model.converged_
    assert model.unidentified_ == ("intercept", "AVSALK", "CONST", "AVSALK_COPY")
    _, se = _params(model)
    _, se0 = _params(star_fit)
    unidentified = np.zeros(se.shape[0], dtype=bool)
    unidentified[[0, 7, 21, 22]] = True
    assert np.all(np.isnan(se[unidentified]))
    assert np.all(np.isfinite(se[~unidentified]))
    np.testing.assert_allclose(se[~unidentified], se0[~unidentified[:21]], rtol=RTOL_SCALE)
    # the fitted probabilities are those of the full-rank model
    np.testing.assert_allclose(model.loglike_, star_fit.loglike_, rtol=1e-12)
    table = str(model.summary())
    assert "not identified" in table and "AVSALK_COPY" in table


def test_spector_matches_statsmodels_logit():
    data = spector.load_pandas()
    X, y = data.exog, data.endog.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LogisticRegression().fit(X, y)
    ref = sm.Logit(y, sm.add_constant(X)).fit(method="newton", tol=1e-14, maxiter=100, disp=0)
    coef, se = _params(model)
    np.testing.assert_allclose(coef, ref.params.to_numpy(), rtol=RTOL_REF)
    np.testing.assert_allclose(se, ref.bse.to_numpy(), rtol=RTOL_REF)
    # GPA ×1e6 (a unit change): the same z-values
    X2 = X.copy()
    X2["GPA"] = X2["GPA"] * 1e6
    coef2, se2 = _params(LogisticRegression().fit(X2, y))
    np.testing.assert_allclose(coef2 / se2, coef / se, rtol=RTOL_SCALE)
