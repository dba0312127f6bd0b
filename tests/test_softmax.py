"""kb.SoftmaxRegression and kb.glm.softmax_cross_entropy against independent references.

References: statsmodels MNLogit (maximum likelihood, observed-information standard errors),
mpmath at 50 digits (the loss), sample duplication (weights), the exact shift an offset
implies (offsets), scipy's log_softmax. Tolerances: rtol 1e-6 against statsmodels as the brief
asks (both stop at a gradient tolerance; ~1e-10 is observed); 1e-13 relative for the loss.
One shape of data throughout, so one compiled program per parameterisation.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import log_softmax

from kullback.glm import LogisticRegression, SoftmaxRegression, softmax_cross_entropy

mpmath = pytest.importorskip("mpmath")
mpmath.mp.dps = 50

N, P, K = 240, 3, 3


def _simulate(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, P)) * np.array([1.0, 2.0, 0.5])
    B = np.array([[0.0, 0.8, -0.5], [0.0, -0.4, 0.3], [0.0, 1.2, 0.9]])
    L = X @ B + np.array([0.0, 0.3, -0.2])
    prob = np.exp(log_softmax(L, axis=1))
    y = (rng.uniform(size=(N, 1)) > np.cumsum(prob, axis=1)).sum(axis=1)
    return X, y


X_DATA, Y_DATA = _simulate(0)
NAMES = np.array(["cat", "dog", "eel"])[Y_DATA]


@pytest.fixture(scope="module")
def fitted():
    return SoftmaxRegression().fit(X_DATA, NAMES)


@pytest.fixture(scope="module")
def mnlogit():
    return sm.MNLogit(Y_DATA, sm.add_constant(X_DATA)).fit(method="newton", tol=1e-14, maxiter=100, disp=0)


# --- the loss ---------------------------------------------------------------------------------


def _exact(logits, label):
    L = [mpmath.mpf(v) for v in logits]
    return float(mpmath.log(sum(mpmath.exp(v - L[label]) for v in L)))


def test_loss_matches_mpmath_for_logits_up_to_1e4():
    logits = np.array([
        [0.0, 0.0, 0.0], [40.0, 0.0, -3.0], [1e4, 0.0, -1e4], [-1e4, 1e4, 0.0], [2.5, 2.5 + 1e-9, -1.0],
        [-700.0, 30.0, 29.0],
    ])
    for label in range(3):
        got = np.asarray(softmax_cross_entropy(logits, np.full(len(logits), label)))
        exact = np.array([_exact(row, label) for row in logits])
        np.testing.assert_allclose(got, exact, rtol=1e-13, atol=0)
    # e.g. a confident correct row keeps its tiny loss: log(1 + e⁻⁴⁰ + e⁻⁴³)
    assert float(softmax_cross_entropy(logits[1:2], np.array([0]))[0]) == pytest.approx(4.4574e-18, rel=1e-4)


def test_loss_two_classes_is_binary_cross_entropy():
    from kullback.glm import binary_cross_entropy

    eta = np.array([-1e4, -40.0, -1.0, 0.0, 3.0, 40.0, 1e4])
    for label in (0, 1):
        two = softmax_cross_entropy(np.stack([np.zeros_like(eta), eta], axis=1), np.full(7, label))
        np.testing.assert_allclose(np.asarray(two), np.asarray(binary_cross_entropy(eta, np.full(7, float(label)))),
                                   rtol=1e-15, atol=0)


def test_loss_gradient_is_softmax_minus_onehot_and_mask():
    L = jnp.array([[1e4, 0.0, -1e4], [0.5, -0.2, 0.1], [jnp.nan, 0.0, 1.0]])
    labels = jnp.array([2, 1, 0])
    mask = jnp.array([True, True, False])
    grad = jax.grad(lambda x: jnp.sum(softmax_cross_entropy(x, labels, where=mask)))(L)
    expected = np.exp(log_softmax(np.asarray(L[:2]), axis=1)) - np.eye(3)[[2, 1]]
    np.testing.assert_allclose(np.asarray(grad[:2]), expected, rtol=1e-12, atol=1e-300)
    assert np.all(np.asarray(grad[2]) == 0.0)
    value = softmax_cross_entropy(L, labels, where=mask)
    assert float(value[2]) == 0.0 and float(value[0]) == 2e4


def test_loss_bad_inputs():
    with pytest.raises(ValueError, match=r"Expected labels in \[0, 3\)"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="Expected labels to be integer class indices"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="Expected labels to have shape"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        softmax_cross_entropy(np.zeros((2, 1)), np.array([0, 0]))


# --- the fit against statsmodels MNLogit ----------------------------------------------------------


@pytest.mark.timeout(60)
def test_fit_matches_mnlogit(fitted, mnlogit):
    params = np.asarray(mnlogit.params).T  # (K − 1, 1 + P): classes 1.. against class 0
    bse = np.asarray(mnlogit.bse).T
    np.testing.assert_array_equal(fitted.classes_, ["cat", "dog", "eel"])
    np.testing.assert_array_equal(fitted.coef_[0], 0.0)  # the reference class
    assert fitted.intercept_[0] == 0.0
    np.testing.assert_allclose(fitted.intercept_[1:], params[:, 0], rtol=1e-6)
    np.testing.assert_allclose(fitted.coef_[1:], params[:, 1:], rtol=1e-6)
    np.testing.assert_allclose(fitted.intercept_stderr_[1:], bse[:, 0], rtol=1e-6)
    np.testing.assert_allclose(fitted.coef_stderr_[1:], bse[:, 1:], rtol=1e-6)
    assert np.isnan(fitted.coef_stderr_[0]).all()
    np.testing.assert_allclose(fitted.loglike_, mnlogit.llf, rtol=1e-10)
    np.testing.assert_allclose(fitted.null_loglike_, mnlogit.llnull, rtol=1e-8)
    np.testing.assert_allclose(fitted.aic_, mnlogit.aic, rtol=1e-10)
    np.testing.assert_allclose(fitted.bic_, mnlogit.bic, rtol=1e-10)
    np.testing.assert_allclose(fitted.deviance_, -2 * mnlogit.llf, rtol=1e-10)
    assert fitted.converged_ and fitted.separation_ is None and fitted.solver_ == "newton"


def test_summary_table_matches_mnlogit(fitted, mnlogit):
    table = fitted.summary(alpha=0.1)
    params, bse = np.asarray(mnlogit.params).T.ravel(), np.asarray(mnlogit.bse).T.ravel()
    np.testing.assert_allclose(table.coef, params, rtol=1e-6)
    np.testing.assert_allclose(table.stderr, bse, rtol=1e-6)
    np.testing.assert_allclose(table.z, np.asarray(mnlogit.tvalues).T.ravel(), rtol=1e-6)
    np.testing.assert_allclose(table.p_value, np.asarray(mnlogit.pvalues).T.ravel(), rtol=1e-5)
    ci = np.asarray(mnlogit.conf_int(alpha=0.1)).reshape(-1, 2)  # class blocks, then (lower, upper)
    np.testing.assert_allclose(np.c_[table.ci_low, table.ci_high], ci, rtol=1e-6)
    assert table.rows[:2] == ["dog: intercept", "dog: x0"] and len(table.rows) == 8
    text = str(table)
    assert "reference class 'cat'" in text and "P>|z|" in text and "[90%" in text


def test_predictions(fitted):
    proba = fitted.predict_proba(X_DATA)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-14)
    logits = fitted.decision_function(X_DATA)
    assert logits.shape == (N, K)
    np.testing.assert_allclose(fitted.predict_log_proba(X_DATA), log_softmax(logits, axis=1), rtol=1e-13)
    np.testing.assert_array_equal(fitted.predict(X_DATA), fitted.classes_[np.argmax(proba, axis=1)])
    ll = fitted.predict_log_proba(X_DATA)[np.arange(N), Y_DATA].sum()
    np.testing.assert_allclose(fitted.loglike_, ll, rtol=1e-12)


@pytest.mark.timeout(60)
def test_lbfgs_reaches_the_same_optimum(fitted):
    model = SoftmaxRegression(solver="lbfgs", tol=1e-10, max_iter=500).fit(X_DATA, NAMES)
    assert model.solver_ == "lbfgs" and model.converged_
    np.testing.assert_allclose(model.coef_, fitted.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.loglike_, fitted.loglike_, rtol=1e-12)


@pytest.mark.timeout(60)
def test_weights_equal_repeated_rows(fitted):
    counts = np.random.default_rng(2).integers(0, 3, size=N)
    weighted = SoftmaxRegression().fit(X_DATA, NAMES, sample_weight=counts)
    keep = np.repeat(np.arange(N), counts)
    repeated = SoftmaxRegression().fit(X_DATA[keep], NAMES[keep])
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weighted.coef_stderr_[1:], repeated.coef_stderr_[1:], rtol=1e-9)
    np.testing.assert_allclose(weighted.loglike_, repeated.loglike_, rtol=1e-10)
    np.testing.assert_allclose(weighted.null_deviance_, repeated.null_deviance_, rtol=1e-10)


@pytest.mark.timeout(60)
def test_offset_shifts_the_coefficients(fitted):
    """An offset X c on class k is a known part of w_k: the fit returns w_k − c, ℓ unchanged."""
    c = np.array([0.5, -1.0, 0.25])
    offset = np.zeros((N, K))
    offset[:, 2] = X_DATA @ c
    model = SoftmaxRegression().fit(X_DATA, NAMES, offset=offset)
    np.testing.assert_allclose(model.coef_[2], fitted.coef_[2] - c, rtol=1e-7)
    np.testing.assert_allclose(model.coef_[1], fitted.coef_[1], rtol=1e-7)
    np.testing.assert_allclose(model.loglike_, fitted.loglike_, rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X_DATA, offset=offset), fitted.predict_proba(X_DATA), rtol=1e-7)
    with pytest.raises(ValueError, match=r"Expected offset to have shape \(240, 3\)"):
        SoftmaxRegression().fit(X_DATA, NAMES, offset=np.zeros(N))


@pytest.mark.timeout(60)
def test_two_classes_equal_logistic_regression():
    y = (Y_DATA == 2).astype(int)
    soft = SoftmaxRegression().fit(X_DATA, y)
    logit = LogisticRegression().fit(X_DATA, y)
    np.testing.assert_allclose(soft.coef_[1], logit.coef_[0], rtol=1e-10)
    np.testing.assert_allclose(soft.decision_function(X_DATA), logit.decision_function(X_DATA), rtol=1e-10)
    assert soft.decision_function(X_DATA).shape == (N,)


def test_bad_input():
    with pytest.raises(ValueError, match="Expected y to have at least two classes; got one class"):
        SoftmaxRegression().fit(X_DATA, np.zeros(N, dtype=int))
    with pytest.raises(ValueError, match="Expected penalty to be one of"):
        SoftmaxRegression(penalty="l0").fit(X_DATA, Y_DATA)
