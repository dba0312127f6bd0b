"""What GLM fits compile: one block kernel per (block shape, classes, parameterisation), reused
across numbers of rows and values of the settings; padding rows (weight 0) change nothing.

Counts are XLA compilations in this process (cache hits of the persistent cache emit none, so it
is switched off here). First-call counts are upper bounds (another test in the same worker may
have compiled a shared kernel already); refits on a new number of rows must compile nothing.
Equalities: rtol 1e-10 (the same sums, added in another order or with zero terms).
"""

import numpy as np
import pytest

from kullback._compile import count_compiles
from kullback.glm import LogisticRegression, SoftmaxRegression

RNG = np.random.default_rng(3)
N, P = 3000, 13  # 13 columns (padded to 16) and 4096-row blocks: a shape other tests do not use


def _data(n, K):
    X = RNG.normal(size=(n, P))
    B = 0.4 * RNG.normal(size=(P, K))
    L = X @ B
    P_ = np.exp(L - L.max(axis=1, keepdims=True))
    P_ /= P_.sum(axis=1, keepdims=True)
    y = (P_.cumsum(axis=1) < RNG.uniform(size=(n, 1))).sum(axis=1)
    return X, y


X2, Y2 = _data(N, 2)
X3, Y3 = _data(N, 3)


@pytest.mark.parametrize(
    "cls, X, y, first_bound",
    [(LogisticRegression, X2, Y2, 0), (SoftmaxRegression, X3, Y3, 2)],
    ids=["logistic", "softmax"],
)
def test_refit_on_new_rows_and_settings_compiles_nothing(no_persistent_cache, cls, X, y, first_bound):
    """First fit: logistic regression (two classes against a reference) is read in NumPy and
    compiles nothing; softmax compiles one block kernel (with the Hessian). A refit on 2,500 of the rows with another
    tol, and penalised fits on 2,200 and 2,300 with other C, reuse it (2,049 to 4,096 rows share
    one block shape)."""
    with count_compiles() as first:
        cls().fit(X, y)
    assert first.count <= first_bound
    with count_compiles() as refit:
        cls(tol=1e-9, max_iter=50).fit(X[:2500], y[:2500])
    assert refit.count == 0
    if cls is LogisticRegression:  # binary: penalised fits keep the reference class, same kernel
        with count_compiles() as penalised:
            cls(penalty="l2", C=0.3).fit(X[:2200], y[:2200])
            cls(penalty="l2", C=3.0).fit(X[:2300], y[:2300])
        assert penalised.count == 0
    else:  # softmax: penalised fits free all classes: one more kernel, then reused
        with count_compiles() as penalised:
            cls(penalty="l2", C=0.3).fit(X[:2200], y[:2200])
        assert penalised.count <= first_bound
        with count_compiles() as again:
            cls(penalty="l2", C=3.0).fit(X[:2300], y[:2300])
        assert again.count == 0


def _same_fit(a, b):
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=1e-10, atol=1e-12)
    if a.coef_stderr_ is not None or b.coef_stderr_ is not None:
        np.testing.assert_allclose(a.coef_stderr_, b.coef_stderr_, rtol=1e-10)
        np.testing.assert_allclose(a.intercept_stderr_, b.intercept_stderr_, rtol=1e-10)
    for name in ("loglike_", "deviance_", "null_loglike_", "aic_", "bic_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-10, err_msg=name)
    assert a.converged_ and b.converged_


@pytest.mark.parametrize("cls, X, y", [(LogisticRegression, X2, Y2), (SoftmaxRegression, X3, Y3)],
                         ids=["logistic", "softmax"])
@pytest.mark.parametrize("penalty", [None, "l1"])
def test_padding_equals_explicit_zero_weight_rows(cls, X, y, penalty):
    """3,000 rows (padded inside to a 4,096-row block) against the same rows plus 1,096 given
    rows of weight 0 (random, so not zeros: nothing to pad): the same fit and statistics."""
    extra = 4096 - N
    X_full = np.vstack([X, RNG.normal(size=(extra, P))])
    y_full = np.r_[y, RNG.integers(0, y.max() + 1, size=extra)]
    w_full = np.r_[np.ones(N), np.zeros(extra)]
    settings = dict(penalty=penalty, C=0.5, tol=1e-10) if penalty else dict(tol=1e-10)
    padded = cls(**settings).fit(X, y)
    given = cls(**settings).fit(X_full, y_full, sample_weight=w_full)
    _same_fit(padded, given)


@pytest.mark.parametrize("cls, X, y", [(LogisticRegression, X2, Y2), (SoftmaxRegression, X3, Y3)],
                         ids=["logistic", "softmax"])
def test_blocks_of_rows_equal_one_block(monkeypatch, cls, X, y):
    """Blocks of 1,024 rows (two views of X, the rest in padded blocks) against one block."""
    from kullback.glm import _blocks

    whole = cls(tol=1e-10).fit(X, y)
    monkeypatch.setattr(_blocks, "BLOCK_ROWS", 1024)
    blocked = cls(tol=1e-10).fit(X, y)
    _same_fit(whole, blocked)
