"""kb.LogisticRegression and kb.glm.binary_cross_entropy against independent references.

References: statsmodels Logit / GLM Binomial (maximum likelihood), scikit-learn (L2 penalty),
mpmath at 50 digits and scipy's log_expit (the loss), sample duplication (weights).
Tolerances: rtol 1e-6 against statsmodels as the brief asks (both solvers stop at a gradient
tolerance; the agreement observed is ~1e-10); 1e-13 relative for the loss against mpmath (a few
ulps: softplus and a product).
"""

import importlib.util
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import expit, log_expit

import kullback as kb
from kullback.glm import LogisticRegression, binary_cross_entropy
from kullback.glm._sklearn_compat import ConvergenceWarning

mpmath = pytest.importorskip("mpmath")
mpmath.mp.dps = 50

N, P = 200, 3


def _simulate(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, P)) * np.array([1.0, 2.0, 0.5]) + np.array([0.0, 1.0, -1.0])
    eta = 0.4 + X @ np.array([0.8, -0.6, 1.1])
    y = (rng.uniform(size=N) < expit(eta)).astype(np.int64)
    return X, y


X_DATA, Y_DATA = _simulate(0)


@pytest.fixture(scope="module")
def fitted():
    return LogisticRegression().fit(X_DATA, Y_DATA)


@pytest.fixture(scope="module")
def fitted_no_intercept():
    return LogisticRegression(fit_intercept=False).fit(X_DATA, Y_DATA)


def test_public_names():
    import kullback.glm as glm

    assert set(glm.__all__) == {
        "LogisticRegression", "SoftmaxRegression", "binary_cross_entropy", "softmax_cross_entropy",
        "Separation", "SeparationWarning", "Summary", "IdentifiabilityWarning",
    }
    assert kb.LogisticRegression is glm.LogisticRegression
    assert kb.glm.binary_cross_entropy is binary_cross_entropy


# --- the loss ---------------------------------------------------------------------------------


def _exact_bce(eta, y):
    """−y log σ(η) − (1 − y) log σ(−η) at 50 digits, in a form with no cancellation."""
    eta, y = mpmath.mpf(eta), mpmath.mpf(y)
    return float(y * mpmath.log1p(mpmath.exp(-eta)) + (1 - y) * mpmath.log1p(mpmath.exp(eta)))


def test_loss_exact_at_1000():
    etas = [1000.0, 1000.0, -1000.0, -1000.0, 1000.0, -1000.0]
    ys = [1.0, 0.0, 1.0, 0.0, 0.25, 0.25]
    got = np.asarray(binary_cross_entropy(jnp.asarray(etas), jnp.asarray(ys)))
    exact = np.array([_exact_bce(e, y) for e, y in zip(etas, ys)])
    np.testing.assert_array_equal(got, exact)  # 0, 1000, 1000, 0, 750, 250 to the last bit
    assert got.dtype == np.float64


def test_loss_matches_mpmath_including_cancellation_region():
    etas = np.array([-700.0, -40.0, -30.0, -1.5, -1e-9, 0.0, 1e-9, 0.3, 30.0, 40.0, 700.0])
    for y in (0.0, 1.0, 0.7):
        got = np.asarray(binary_cross_entropy(etas, np.full_like(etas, y)))
        exact = np.array([_exact_bce(e, y) for e in etas])
        np.testing.assert_allclose(got, exact, rtol=1e-13, atol=0)


def test_loss_matches_scipy_log_expit():
    rng = np.random.default_rng(1)
    eta = rng.normal(scale=20.0, size=300)
    y = rng.uniform(size=300)
    reference = -y * log_expit(eta) - (1 - y) * log_expit(-eta)
    np.testing.assert_allclose(np.asarray(binary_cross_entropy(eta, y)), reference, rtol=1e-12, atol=1e-300)


_grad_bce = jax.jit(jax.vmap(jax.grad(lambda e, y: binary_cross_entropy(e, y)), in_axes=(0, 0)))


def test_loss_gradient_is_sigmoid_minus_y_and_finite_at_extremes():
    eta = jnp.array([-1000.0, -1000.0, 1000.0, 1000.0, 0.0, 0.0, 2.0])
    y = jnp.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.5])
    grad = np.asarray(_grad_bce(eta, y))
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, expit(np.asarray(eta)) - np.asarray(y), rtol=1e-15, atol=1e-300)


def test_loss_mask_equals_slice_and_hides_nan():
    eta = jnp.array([0.5, jnp.nan, -2.0, jnp.inf])
    y = jnp.array([1.0, jnp.nan, 0.0, 1.0])
    mask = jnp.array([True, False, True, False])
    got = binary_cross_entropy(eta, y, where=mask)
    np.testing.assert_array_equal(np.asarray(got)[[1, 3]], 0.0)
    np.testing.assert_allclose(np.asarray(got)[[0, 2]], np.asarray(binary_cross_entropy(eta[::2], y[::2])), rtol=1e-15)
    grad = jax.grad(lambda e: jnp.sum(binary_cross_entropy(e, y, where=mask)))(eta)
    assert np.isfinite(np.asarray(grad)).all()
    assert float(grad[1]) == 0.0 and float(grad[3]) == 0.0


def test_loss_float32_stays_finite_and_non_negative():
    eta = jnp.array([-1000.0, -30.0, 0.0, 30.0, 1000.0], dtype=jnp.float32)
    for y in (0.0, 1.0):
        got = binary_cross_entropy(eta, jnp.full(5, y, dtype=jnp.float32))
        assert got.dtype == jnp.float32
        assert np.isfinite(np.asarray(got)).all() and (np.asarray(got) >= 0).all()


def test_loss_bad_inputs():
    with pytest.raises(ValueError, match=r"Expected y to hold labels or probabilities in \[0, 1\]"):
        binary_cross_entropy([0.0, 1.0], [0.0, 2.0])
    with pytest.raises(ValueError, match="Expected logits and y to have broadcastable shapes"):
        binary_cross_entropy(jnp.zeros(3), jnp.zeros(2))


# --- the fit against statsmodels ---------------------------------------------------------------


@pytest.mark.timeout(60)
def test_fit_with_intercept_matches_statsmodels(fitted):
    exog = sm.add_constant(X_DATA)
    ref = sm.Logit(Y_DATA, exog).fit(method="newton", tol=1e-14, maxiter=100, disp=0)
    np.testing.assert_allclose(fitted.intercept_, ref.params[:1], rtol=1e-6)
    np.testing.assert_allclose(fitted.coef_, ref.params[None, 1:], rtol=1e-6)
    np.testing.assert_allclose(fitted.loglike_, ref.llf, rtol=1e-6)
    glm = sm.GLM(Y_DATA, exog, family=sm.families.Binomial()).fit(tol=1e-14)
    np.testing.assert_allclose(fitted.deviance_, glm.deviance, rtol=1e-6)
    np.testing.assert_allclose(fitted.null_deviance_, glm.null_deviance, rtol=1e-12)  # closed form
    assert fitted.converged_ and 1 <= fitted.n_iter_[0] <= 10  # Newton: a handful of steps
    assert fitted.coef_.shape == (1, P) and fitted.intercept_.shape == (1,) and fitted.n_iter_.shape == (1,)
    assert fitted.n_features_in_ == P
    np.testing.assert_array_equal(fitted.classes_, [0, 1])


@pytest.mark.timeout(60)
def test_fit_without_intercept_matches_statsmodels(fitted_no_intercept):
    model = fitted_no_intercept
    ref = sm.Logit(Y_DATA, X_DATA).fit(method="newton", tol=1e-14, maxiter=100, disp=0)
    np.testing.assert_allclose(model.coef_[0], ref.params, rtol=1e-6)
    np.testing.assert_allclose(model.loglike_, ref.llf, rtol=1e-6)
    np.testing.assert_array_equal(model.intercept_, [0.0])
    glm = sm.GLM(Y_DATA, X_DATA, family=sm.families.Binomial()).fit(tol=1e-14)
    np.testing.assert_allclose(model.deviance_, glm.deviance, rtol=1e-6)
    # The null model is η = 0 here (statsmodels' null_deviance always refits an intercept).
    null = sm.families.Binomial().deviance(Y_DATA.astype(float), np.full(N, 0.5))
    np.testing.assert_allclose(model.null_deviance_, null, rtol=1e-12)
    np.testing.assert_allclose(model.null_deviance_, 2 * N * np.log(2), rtol=1e-14)


def test_gradient_vanishes_at_the_fit(fitted):
    eta = fitted.decision_function(X_DATA)
    grad = np.concatenate([[np.mean(expit(eta) - Y_DATA)], X_DATA.T @ (expit(eta) - Y_DATA) / N])
    assert np.max(np.abs(grad)) <= fitted.tol


@pytest.mark.timeout(60)
def test_fit_is_float64_even_with_x64_off(fitted):
    with jax.enable_x64(False):
        model = LogisticRegression().fit(X_DATA, Y_DATA)
        assert jnp.ones(1).dtype == jnp.float32  # the flag really is off here
    assert model.coef_.dtype == np.float64
    np.testing.assert_allclose(model.coef_, fitted.coef_, rtol=1e-12)
    np.testing.assert_allclose(model.loglike_, fitted.loglike_, rtol=1e-13)


# --- predictions -------------------------------------------------------------------------------


def test_predictions_are_consistent(fitted):
    proba = fitted.predict_proba(X_DATA)
    eta = fitted.decision_function(X_DATA)
    assert proba.shape == (N, 2) and eta.shape == (N,)
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(proba[:, 1], expit(eta), rtol=1e-15)
    np.testing.assert_allclose(fitted.predict_log_proba(X_DATA), np.log(proba), rtol=1e-12)
    pred = fitted.predict(X_DATA)
    np.testing.assert_array_equal(pred, fitted.classes_[np.argmax(proba, axis=1)])
    assert fitted.score(X_DATA, Y_DATA) == pytest.approx(np.mean(pred == Y_DATA))
    # the log-likelihood is the sum of the log-probabilities of the observed labels
    np.testing.assert_allclose(fitted.loglike_, fitted.predict_log_proba(X_DATA)[np.arange(N), Y_DATA].sum(), rtol=1e-12)


def test_extreme_logits_give_exact_probabilities(fitted):
    far = np.array([[1e4, 0.0, 0.0], [-1e4, 0.0, 0.0]])
    proba = fitted.predict_proba(far)
    np.testing.assert_array_equal(proba, [[0.0, 1.0], [1.0, 0.0]])
    assert np.isfinite(fitted.predict_log_proba(far)).all()


@pytest.mark.timeout(60)
def test_string_labels_and_positive_class(fitted):
    names = np.where(Y_DATA == 1, "spam", "ham")
    model = LogisticRegression().fit(X_DATA, names)
    np.testing.assert_array_equal(model.classes_, ["ham", "spam"])
    np.testing.assert_allclose(model.coef_, fitted.coef_, rtol=1e-12)
    assert set(model.predict(X_DATA)) <= {"ham", "spam"}
    np.testing.assert_array_equal(model.predict(X_DATA) == "spam", fitted.predict(X_DATA) == 1)
    # The second sorted label is the positive class: relabelling flips the signs.
    flipped = LogisticRegression().fit(X_DATA, np.where(Y_DATA == 1, "a", "b"))
    np.testing.assert_allclose(flipped.coef_, -fitted.coef_, rtol=1e-10)
    np.testing.assert_allclose(flipped.intercept_, -fitted.intercept_, rtol=1e-10)


# --- weights and penalty -----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_integer_weights_equal_duplicated_rows():
    rng = np.random.default_rng(3)
    X, y = X_DATA[:100], Y_DATA[:100]
    counts = rng.integers(0, 4, size=100)
    counts[:2] = (1, 2)
    weighted = LogisticRegression().fit(X, y, sample_weight=counts)
    repeated = LogisticRegression().fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-9)
    np.testing.assert_allclose(weighted.intercept_, repeated.intercept_, rtol=1e-9)
    np.testing.assert_allclose(weighted.loglike_, repeated.loglike_, rtol=1e-10)
    np.testing.assert_allclose(weighted.null_deviance_, repeated.null_deviance_, rtol=1e-12)


@pytest.mark.timeout(60)
def test_l2_penalty_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression as SkLogisticRegression

    ours = LogisticRegression(penalty="l2", C=0.05).fit(X_DATA, Y_DATA)
    ref = SkLogisticRegression(C=0.05, tol=1e-12, solver="newton-cholesky", max_iter=200).fit(X_DATA, Y_DATA)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-7)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-7)
    assert ours.converged_


# --- convergence warnings ----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_max_iter_reached_warns():
    with pytest.warns(ConvergenceWarning, match="did not converge: it reached max_iter=1"):
        model = LogisticRegression(max_iter=1).fit(X_DATA, Y_DATA)
    assert not model.converged_ and model.n_iter_[0] == 1


@pytest.mark.timeout(60)
def test_perfect_separation_warns():
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    y = np.array([0, 0, 0, 1, 1, 1])
    with pytest.warns(ConvergenceWarning, match="complete separation"):
        LogisticRegression().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LogisticRegression(penalty="l2", C=1.0).fit(X, y)  # finite: no warning
    assert model.converged_ and np.isfinite(model.coef_).all()


# --- bad input ---------------------------------------------------------------------------------

_X3 = X_DATA[:6]
_Y3 = np.array([0, 1, 0, 1, 1, 0])


def _with(array, index, value):
    array = np.array(array, dtype=float)
    array[index] = value
    return array


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(X=_with(_X3, (2, 1), np.nan)), ValueError, r"Expected X to be finite.*\(2, 1\)"),
        (dict(X=_with(_X3, (0, 0), np.inf)), ValueError, "Expected X to be finite"),
        (dict(y=_with(_Y3, 3, np.nan)), ValueError, "Expected y to hold labels, not NaN"),
        (dict(y=_Y3[:5]), ValueError, r"Expected y to have one label per row of X \(6\); got 5"),
        (dict(X=_X3[:, 0]), ValueError, "Expected X to be 2-D"),
        (dict(X=_X3[None]), ValueError, "Expected X to be 2-D"),
        (dict(y=np.stack([_Y3, _Y3], axis=1)), ValueError, "Expected y to be 1-D"),
        (dict(y=np.zeros(6, dtype=int)), ValueError, "Expected y to have two classes; got one class"),
        (dict(y=np.array([0, 1, 2, 0, 1, 2])), ValueError, "Only binary classification is supported"),
        (dict(y=_Y3 + 0.5), ValueError, "Expected y to hold class labels; got continuous"),
        (dict(y=None), ValueError, "requires y to be passed"),
        (dict(y=np.array(["a", None, "b", "a", "b", "a"], dtype=object)), ValueError, "missing"),
        (dict(X=np.full((6, 2), "x")), ValueError, "Expected X to be a 2-D array of numbers"),
        (dict(sample_weight=-np.ones(6)), ValueError, "Expected sample_weight to be non-negative"),
        (dict(sample_weight=np.ones(5)), ValueError, r"Expected sample_weight to have shape \(6,\)"),
        (dict(sample_weight=np.zeros(6)), ValueError, "Expected sample_weight to have a positive total"),
        (dict(sample_weight=_with(np.ones(6), 0, np.nan)), ValueError, "Expected sample_weight to be finite"),
        (dict(settings=dict(penalty="l3")), ValueError, "Expected penalty to be one of None"),
        (dict(settings=dict(solver="sag")), ValueError, "Expected solver to be one of"),
        (dict(settings=dict(penalty="elasticnet", l1_ratio=2.0)), ValueError, "Expected l1_ratio to be a number in"),
        (dict(settings=dict(penalty="l1", solver="lbfgs")), ValueError, "Expected solver to be 'newton' or 'auto'"),
        (dict(offset=np.ones(5)), ValueError, r"Expected offset to have shape \(6,\)"),
        (dict(settings=dict(penalty="l2", C=0.0)), ValueError, "Expected C to be a positive finite number"),
        (dict(settings=dict(tol=-1.0)), ValueError, "Expected tol to be a positive finite number"),
        (dict(settings=dict(max_iter=0)), ValueError, "Expected max_iter to be an integer"),
    ],
)
def test_fit_bad_input(kwargs, error, match):
    settings = kwargs.pop("settings", {})
    args = dict(X=_X3, y=_Y3, sample_weight=None, offset=None) | kwargs
    with pytest.raises(error, match=match):
        LogisticRegression(**settings).fit(args["X"], args["y"], sample_weight=args["sample_weight"], offset=args["offset"])


def test_predict_bad_input(fitted):
    with pytest.raises(ValueError, match="Expected X to have 3 features, as in fit"):
        fitted.predict(X_DATA[:, :2])
    with pytest.raises(ValueError, match="Expected X to be finite"):
        fitted.predict_proba(_with(X_DATA[:4], (1, 1), np.nan))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted yet"):
        LogisticRegression().predict(X_DATA)


# --- scikit-learn conventions ------------------------------------------------------------------


def test_scikit_learn_conventions():
    from sklearn.base import clone, is_classifier

    model = LogisticRegression(penalty="l2", C=2.0, tol=1e-9)
    assert is_classifier(model)
    assert model.get_params() == dict(
        penalty="l2", C=2.0, l1_ratio=0.5, fit_intercept=True, solver="auto", tol=1e-9, max_iter=100, stderr=True
    )
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "coef_")
    assert model.set_params(C=3.0) is model and model.C == 3.0


def test_stand_in_base_classes_without_scikit_learn(monkeypatch):
    """The fallback used when scikit-learn is not installed: loaded fresh with sklearn hidden."""
    for name in ("sklearn", "sklearn.base", "sklearn.exceptions"):
        monkeypatch.setitem(sys.modules, name, None)
    path = sys.modules["kullback.glm._sklearn_compat"].__file__
    spec = importlib.util.spec_from_file_location("_compat_without_sklearn", path)
    compat = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compat)
    assert not compat.HAVE_SKLEARN and issubclass(compat.ConvergenceWarning, UserWarning)

    class Majority(compat.ClassifierMixin, compat.BaseEstimator):
        def __init__(self, *, label=1, weight=0.5):
            self.label = label
            self.weight = weight

        def predict(self, X):
            return np.full(len(X), self.label)

    model = Majority(label=0)
    assert model.get_params() == {"label": 0, "weight": 0.5}
    assert repr(model) == "Majority(label=0, weight=0.5)"
    assert model.set_params(weight=2.0) is model and model.weight == 2.0
    with pytest.raises(ValueError, match="Invalid parameter 'size'"):
        model.set_params(size=3)
    assert model.score(np.zeros((4, 1)), np.array([0, 0, 1, 0])) == 0.75
    assert model.score(np.zeros((4, 1)), np.array([0, 0, 1, 0]), sample_weight=[1, 1, 2, 0]) == 0.5


# --- tall data: subsampled Newton steps, X passed without a copy -------------------------------


@pytest.mark.timeout(60)
def test_tall_data_path_matches_statsmodels(monkeypatch):
    """The tall-data path on small data: thresholds lowered so that 4096 rows take it.

    Newton steps then use the Hessian of every 10th row (the gradient and line search stay
    exact), X (made 16 bytes off a 64-byte boundary, like NumPy's large arrays) reaches jax as
    blocks of 1024 rows that are views of it (2 head rows of 24 bytes go to the padded last
    block), and the standard errors come from the exact Hessian. Newton starts from a pilot fit
    on every 8th row, and the NumPy pass reads X in chunks of 1000 rows (a remainder of 96).
    Reference: statsmodels Logit, rtol 1e-6 as above.
    """
    from kullback.glm import _blocks, _fit

    monkeypatch.setattr(_blocks, "BLOCK_ROWS", 1024)
    monkeypatch.setattr(_fit, "_SUBSAMPLE_ROWS", 256)
    monkeypatch.setattr(_fit, "_PILOT_ROWS", 512)
    monkeypatch.setattr(_blocks, "HOST_CHUNK", 1000)
    n, p = 4096, 3
    buf = np.empty(n * p + 16)
    start = (16 - buf.ctypes.data % 64) % 64 // 8
    X = buf[start:start + n * p].reshape(n, p)
    assert X.ctypes.data % 64 == 16
    rng = np.random.default_rng(7)
    X[:] = rng.normal(size=(n, p))
    y = (rng.uniform(size=n) < expit(0.3 + X @ np.array([0.9, -0.5, 0.2]))).astype(int)
    # the device blocks (more than two classes; two against a reference are read on the host, in
    # chunks of BLOCK_ROWS: the fit below)
    blocks = _blocks.Blocks(X, y, np.full(n, 1.0 / n), np.zeros((n, 3)), num_classes=3, num_free=2,
                            reference=True, intercept=True)
    assert _blocks._aligned_head(X) == 2 and len(blocks.X) == 4  # 3 views + (2 head rows, 1022 rest)
    assert _blocks.Blocks(X, y, np.full(n, 1.0 / n), np.zeros((n, 2)), num_classes=2, num_free=1,
                          reference=True, intercept=True).host
    assert blocks.X[0].unsafe_buffer_pointer() == X[2:].ctypes.data
    np.testing.assert_array_equal(blocks.rows_of([np.asarray(b)[:, 0] for b in blocks.X]), X[:, 0])
    assert _fit._subsample(n, p + 1) == 10
    model = LogisticRegression().fit(X, y)
    ref = sm.Logit(y, sm.add_constant(X)).fit(method="newton", tol=1e-14, maxiter=100, disp=0)
    assert model.converged_
    np.testing.assert_allclose(np.r_[model.intercept_, model.coef_[0]], ref.params, rtol=1e-6)
    np.testing.assert_allclose(np.r_[model.intercept_stderr_, model.coef_stderr_[0]], ref.bse, rtol=1e-6)
    np.testing.assert_allclose(model.loglike_, ref.llf, rtol=1e-12)


# --- the block passes over X: several chunks, head rows and a remainder --------------------------


def _softmax_np(L):
    e = np.exp(L - L.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("K, reference", [(2, True), (3, False)])
def test_block_passes_match_numpy(K, reference):
    """step_pass (X̃d, the gradient and the mean loss at η + X̃d in one loop) and the Gram matrix X̃ᵀ diag(a) X̃
    (assembled from column halves) against plain NumPy, on X given as (3 head rows, the rest):
    at p = 64 a chunk holds 2048 rows, so 5000 rows take the loop twice plus a remainder.
    Tolerance: rtol 1e-12 (sums of 5000 products in a different order)."""
    from kullback.glm import _objective as obj

    rng = np.random.default_rng(11)
    n, p = 5000, 64
    M = K - 1 if reference else K
    X = rng.normal(size=(n, p))
    eta = rng.normal(size=(n, M))
    d = rng.normal(size=M * (p + 1)) * 0.1
    off = rng.normal(size=(n, K))
    Y = np.eye(K)[rng.integers(0, K, size=n)]
    w = rng.uniform(size=n)
    w /= w.sum()
    rows = (jnp.asarray(X[:3]), jnp.asarray(X[3:]))
    eta_d, RtX, R_sum, loss = jax.jit(obj.step_pass, static_argnums=(6, 7, 8))(
        rows, jnp.asarray(eta), jnp.asarray(d), jnp.asarray(off), jnp.asarray(Y), jnp.asarray(w), M, reference, True
    )
    D = d.reshape(M, p + 1)
    ref_eta_d = X @ D[:, 1:].T + D[:, 0]
    L = eta + ref_eta_d
    L = np.concatenate([np.zeros((n, 1)), L], axis=1) + off if reference else L + off
    P = _softmax_np(L)
    R = (w[:, None] * (P - Y))[:, K - M:]
    np.testing.assert_allclose(eta_d, ref_eta_d, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(RtX, R.T @ X, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(R_sum, R.sum(axis=0), rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(loss, -np.sum(w * np.log(np.sum(P * Y, axis=1))), rtol=1e-12)
    a = rng.uniform(size=n)
    Xt = np.concatenate([np.ones((n, 1)), X], axis=1)
    G = jax.jit(obj._gram, static_argnums=2)(rows, jnp.asarray(a), True)
    np.testing.assert_allclose(G, Xt.T @ (a[:, None] * Xt), rtol=1e-12, atol=1e-12)


def test_stderr_false_skips_the_standard_errors_only():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(300, 3))
    y = (rng.uniform(size=300) < 1 / (1 + np.exp(-(X @ [1.0, -0.5, 0.2])))).astype(int)
    full = LogisticRegression().fit(X, y)
    bare = LogisticRegression(stderr=False).fit(X, y)
    np.testing.assert_allclose(bare.coef_, full.coef_, rtol=1e-10)
    assert bare.coef_stderr_ is None and bare.covariance_ is None and full.coef_stderr_ is not None
    with pytest.raises(ValueError, match="Expected stderr to be True or False"):
        LogisticRegression(stderr="yes").fit(X, y)


@pytest.mark.timeout(60)
def test_host_pass_equals_the_device_pass(monkeypatch):
    """The NumPy pass of two classes (chunks of 1000 rows: 4 and a remainder of 500) against the
    compiled blocks on the same rows, with offsets, logits η ≠ 0 and a step d ≠ 0: the new logits,
    Xᵀ R, Σ R, the loss and the Hessian. Tolerance: rtol 1e-12 (the same sums in another order)."""
    from kullback.glm import _blocks

    monkeypatch.setattr(_blocks, "HOST_CHUNK", 1000)
    rng = np.random.default_rng(5)
    n, p = 4500, 4
    X = rng.normal(size=(n, p))
    y = rng.integers(0, 2, size=n)
    w = rng.uniform(size=n)
    w /= w.sum()
    off = rng.normal(size=(n, 2))
    d = rng.normal(size=p + 1) * 0.3
    args = (X, y, w, off)
    kw = dict(num_classes=2, num_free=1, reference=True, intercept=True)
    host = _blocks.Blocks(*args, **kw)
    monkeypatch.setattr(_blocks, "HOST_BINARY", False)
    device = _blocks.Blocks(*args, **kw)
    assert host.host and not device.host
    eta = rng.normal(size=(n, 1))
    assert len(device.X) == 1 and device.rows >= n  # one padded block, rows in order
    device_eta = [jnp.asarray(np.r_[eta, np.zeros((device.rows - n, 1))])]
    a = host.step([eta], d, hessian=True)
    b = device.step(device_eta, d, hessian=True)
    np.testing.assert_allclose(a[0][0], device.rows_of(b[0]), rtol=1e-12, atol=1e-14)
    for u, v in zip(a[2:], b[2:]):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-16)
