"""Penalised fits (L2, L1, elastic-net) against scikit-learn optima and the optimality conditions.

References: scikit-learn's saga (L1, elastic-net) and lbfgs (L2) at tol 1e-12, and the
Karush-Kuhn-Tucker conditions evaluated in NumPy. Tolerances: 1e-6 absolute on coefficients
(saga and lbfgs stop at their own tolerances; ~1e-9 is observed); the KKT residual ≤ 1e-7.
"""

import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from kullback.glm import LogisticRegression, SoftmaxRegression

RNG = np.random.default_rng(11)
N, P = 200, 3
X = RNG.normal(size=(N, P))
Y3 = np.argmax(X @ RNG.normal(size=(P, 3)) + RNG.gumbel(size=(N, 3)), axis=1)
YB = (Y3 == 2).astype(int)
C = 0.05


def _sklearn(l1_ratio, solver):
    return SkLogisticRegression(C=C, l1_ratio=l1_ratio, solver=solver, tol=1e-12, max_iter=100_000)


def _kkt_binary(model, l1_ratio):
    """Max violation of 0 ∈ ∂(mean loss + penalty) at the fit."""
    r = expit(model.decision_function(X)) - YB
    g = X.T @ r / N + (1 - l1_ratio) * model.coef_[0] / (C * N)
    lam = l1_ratio / (C * N)
    w = model.coef_[0]
    v = np.where(w == 0, np.maximum(np.abs(g) - lam, 0), np.abs(g + lam * np.sign(w)))
    return max(v.max(), abs(r.mean()))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("penalty, l1_ratio", [("l1", 1.0), ("elasticnet", 0.3)])
def test_binary_l1_and_elastic_net_match_saga(penalty, l1_ratio):
    ours = LogisticRegression(penalty=penalty, C=C, l1_ratio=0.3).fit(X, YB)
    ref = _sklearn(l1_ratio, "saga").fit(X, YB)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-6)
    assert _kkt_binary(ours, l1_ratio) <= 1e-7
    assert ours.converged_ and ours.coef_stderr_ is None
    if penalty == "l1":
        assert (ours.coef_ == 0).any()  # a sparse solution, exact zeros
        assert ours.n_params_ == 1 + np.count_nonzero(ours.coef_)


@pytest.mark.timeout(60)
def test_multinomial_l2_matches_lbfgs():
    ours = SoftmaxRegression(penalty="l2", C=C).fit(X, Y3)
    ref = _sklearn(0.0, "lbfgs").fit(X, Y3)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-6)
    assert abs(ours.intercept_.sum()) < 1e-12  # centred, as scikit-learn's
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-7)


@pytest.mark.timeout(60)
def test_multinomial_elastic_net_matches_saga():
    ours = SoftmaxRegression(penalty="elasticnet", C=C, l1_ratio=0.5).fit(X, Y3)
    ref = _sklearn(0.5, "saga").fit(X, Y3)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    # KKT: the gradient of the mean loss + ridge part, against the L1 weight
    R = softmax(ours.decision_function(X), axis=1) - np.eye(3)[Y3]
    g = R.T @ X / N + 0.5 * ours.coef_ / (C * N)
    lam = 0.5 / (C * N)
    W = ours.coef_
    v = np.where(W == 0, np.maximum(np.abs(g) - lam, 0), np.abs(g + lam * np.sign(W)))
    assert v.max() <= 1e-7 and np.abs(R.mean(axis=0)).max() <= 1e-7


@pytest.mark.timeout(60)
def test_penalised_summary_says_no_standard_errors():
    model = LogisticRegression(penalty="l2", C=C).fit(X, YB)
    table = model.summary()
    assert np.isnan(table.stderr).all() and np.isfinite(table.coef).all()
    assert "standard errors are not available" in str(table)
