"""Separation: detected on constructed cases, reported with the separating features, never silent.

Constructed cases: complete separation (one feature splits the classes), quasi-complete (a
tie at the boundary), a multinomial class cut off by a feature, and ordinary overlapping data
(no false alarm). The linear program's verdicts are checked against the construction.
"""

import warnings

import numpy as np
import pytest

from kullback.glm import LogisticRegression, SeparationWarning, SoftmaxRegression

RNG = np.random.default_rng(5)
NOISE = RNG.normal(size=(40, 2))


@pytest.mark.timeout(60)
def test_complete_separation_names_the_feature():
    X = NOISE.copy()
    y = (X[:, 1] > 0).astype(int)  # the second feature alone separates
    with pytest.warns(SeparationWarning, match=r"complete separation.*\[.*x1.*\]"):
        model = LogisticRegression().fit(X, y)
    sep = model.separation_
    assert sep.kind == "complete" and sep.num_separated == 40
    assert 1 in sep.features and "x1" in sep.feature_names
    assert not model.converged_
    margins = np.where(y == 1, 1, -1) * (X @ sep.direction[0, 1:] + sep.direction[0, 0])
    assert (margins > 0).all()  # the reported direction really separates
    table = model.summary()
    assert np.isinf(table.stderr[table.rows.index("x1")])
    assert "separation" in str(table)


@pytest.mark.timeout(60)
def test_quasi_complete_separation():
    X = NOISE.copy()
    X[:, 1] = np.round(X[:, 1])
    y = (X[:, 1] > 0).astype(int)
    tie = np.flatnonzero(X[:, 1] == 0)
    y[tie[::2]] = 1  # both classes at x1 = 0: only a weak inequality holds there
    with pytest.warns(SeparationWarning, match="quasi-complete separation"):
        model = LogisticRegression().fit(X, y)
    assert model.separation_.kind == "quasi-complete"
    assert model.separation_.num_separated == 40 - len(tie)
    assert "x1" in model.separation_.feature_names


@pytest.mark.timeout(60)
def test_multinomial_class_cut_off_by_a_feature():
    X = NOISE.copy()
    y = np.where(X[:, 0] > 0.8, 2, RNG.integers(0, 2, size=40))  # class 2 iff x0 > 0.8
    with pytest.warns(SeparationWarning, match="quasi-complete separation"):
        model = SoftmaxRegression().fit(X, y)
    assert "x0" in model.separation_.feature_names
    assert model.separation_.num_separated == int((y == 2).sum())


@pytest.mark.timeout(60)
def test_no_false_alarm_on_overlapping_data():
    X = NOISE.copy()
    y = (X[:, 0] + X[:, 1] + RNG.normal(size=40) > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LogisticRegression().fit(X, y)
    assert model.separation_ is None and model.converged_


@pytest.mark.timeout(60)
def test_penalised_fit_is_finite_and_not_flagged():
    X = NOISE.copy()
    y = (X[:, 1] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LogisticRegression(penalty="l2", C=1.0).fit(X, y)
    assert model.separation_ is None and np.isfinite(model.coef_).all()


def test_non_convergence_on_big_data_does_not_start_the_lp(monkeypatch):
    import kullback.glm._base as base

    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 2))
    y = (rng.uniform(size=400) < 1 / (1 + np.exp(-X @ [1.0, -1.0]))).astype(int)
    calls = []
    monkeypatch.setattr(base, "find_separation", lambda *a, **k: calls.append(1))
    with pytest.warns(base.ConvergenceWarning, match="did not converge"):
        first = LogisticRegression(max_iter=1).fit(X, y)  # not converged, no certain rows: the LP runs
    assert calls == [1] and not first.converged_
    monkeypatch.setattr(base, "_LP_MAX_CELLS", 100)  # "big" data: a mere non-convergence does not
    with pytest.warns(base.ConvergenceWarning, match="did not converge"):
        model = LogisticRegression(max_iter=1).fit(X, y)
    assert calls == [1] and model.separation_ is None and not model.converged_


@pytest.mark.timeout(60)
def test_separation_names_the_one_separating_feature_among_five():
    """x3 alone separates; x0 is x3 plus noise (correlated, not needed), the rest are noise. The
    report names x3 only (it used to list every feature the LP's direction happened to touch)."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(200, 5))
    y = (X[:, 3] > 0.2).astype(int)
    X[:, 0] = X[:, 3] + 0.3 * rng.normal(size=200)
    with pytest.warns(SeparationWarning, match=r"complete separation.*\[intercept, x3\]"):
        model = LogisticRegression().fit(X, y)
    sep = model.separation_
    assert sep.kind == "complete" and sep.num_separated == 200
    assert sep.features == (-1, 3) and sep.feature_names == ("intercept", "x3")
    margins = np.where(y == 1, 1, -1) * (X @ sep.direction[0, 1:] + sep.direction[0, 0])
    assert (margins > 0).all()
    assert np.all(sep.direction[0, [1, 2, 3, 5]] == 0)


def _separable(X, y, columns):
    """An independent check: is there (b, w) on these columns with ±(b + xᵀw) ≥ 1 on every row?"""
    from scipy.optimize import linprog

    Z = np.c_[np.ones(len(y)), X[:, columns] / np.abs(X[:, columns]).max(axis=0)]
    A = Z * np.where(y == 1, 1.0, -1.0)[:, None]
    res = linprog(np.zeros(Z.shape[1]), A_ub=-A, b_ub=-np.ones(len(y)), bounds=[(None, None)] * Z.shape[1],
                  method="highs")
    return res.status == 0


@pytest.mark.timeout(120)
def test_breast_cancer_separation_names_an_irreducible_set():
    """Real data (scikit-learn's breast cancer, 569 × 30, completely separable): the named
    features separate, and leaving out any one of them does not (checked by a separate LP)."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    with pytest.warns(SeparationWarning, match="complete separation"):
        model = LogisticRegression().fit(X, y)
    named = [j for j in model.separation_.features if j >= 0]
    assert len(named) < X.shape[1]
    assert _separable(X, y, named)
    assert not any(_separable(X, y, [j for j in named if j != k]) for k in named)
