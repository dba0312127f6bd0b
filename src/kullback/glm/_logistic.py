"""Logistic regression as a forward KL fit of p(y | x): a scikit-learn estimator.

Minimising the mean binary cross-entropy of the labels under Bernoulli(σ(xᵀβ)) is minimising
KL(p̂(y | x) ‖ q_β(y | x)) averaged over the rows of X, p̂ the empirical conditional
distribution (its entropy is 0 for 0/1 labels), and is maximum likelihood.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import expit, log_expit, xlogy

from ._data import check_design, check_labels, check_sample_weight
from ._losses import _bce
from ._newton import CONVERGED, LINE_SEARCH_FAILED, newton_logistic
from ._sklearn_compat import HAVE_SKLEARN, BaseEstimator, ClassifierMixin, ConvergenceWarning, NotFittedError

__all__ = ["LogisticRegression"]

_PENALTIES = (None, "l2")


class LogisticRegression(ClassifierMixin, BaseEstimator):
    """Binary logistic regression fitted by minimising the cross-entropy (forward KL).

    The model is q_β(y = 1 | x) = σ(η), η = xᵀw + b. ``fit`` minimises

    .. math::

        \\frac{1}{S} \\sum_i s_i \\left[ -y_i η_i + \\mathrm{softplus}(η_i) \\right]
        + \\frac{\\lVert w \\rVert^2}{2 C S} [\\text{penalty} = \\text{"l2"}],
        \\qquad S = \\sum_i s_i,

    the (weighted) mean binary cross-entropy: with ``penalty=None`` (the default) the result is
    the cross-entropy minimiser, i.e. the maximum-likelihood estimate, the same as
    ``statsmodels`` ``Logit``. With ``penalty="l2"``, ``C`` has scikit-learn's meaning (the
    inverse strength of ½‖w‖² against the summed loss); the intercept is never penalised.

    The solver is Newton's method (IRLS) with a backtracking Armijo line search on the exact
    objective, one jitted JAX program. It always runs in float64, whatever jax's x64 flag says
    (inside ``jax.enable_x64(True)``; data are converted to float64 NumPy arrays first), so
    the fitted values do not depend on that flag. It stops when the largest absolute entry of
    the objective's gradient is at most ``tol``; Newton converges quadratically, so the
    coefficients are then accurate to about ``tol`` times the inverse Hessian's scale.

    Learned attributes are NumPy arrays, as in scikit-learn.

    Args:
        penalty: ``None`` (maximum likelihood) or ``"l2"``.
        C: inverse L2 strength, > 0; used only with ``penalty="l2"``.
        fit_intercept: fit b; without it η = xᵀw.
        tol: stop when max_j |∂f/∂β_j| ≤ tol (f the mean objective above), > 0.
        max_iter: the most Newton steps, ≥ 1.

    Attributes:
        classes_: the two labels, sorted; the second is the positive class (y = 1).
        coef_: w, shape ``(1, n_features)``.
        intercept_: b, shape ``(1,)`` (zeros without ``fit_intercept``).
        n_features_in_: the number of columns of X seen in ``fit``.
        loglike_: ℓ = Σ_i s_i log q(y_i | x_i) at the fit (no penalty term).
        deviance_: 2(ℓ_saturated − ℓ) = −2ℓ (ℓ_saturated = 0 for 0/1 labels).
        null_deviance_: the deviance of the intercept-only model, 2S·H(ȳ) with ȳ the weighted
            share of the positive class (closed form); without ``fit_intercept`` the null model
            is η = 0, giving 2S·log 2.
        n_iter_: Newton steps taken, shape ``(1,)`` as in scikit-learn.
        converged_: whether the gradient tolerance was met (or the remaining decrease was at
            rounding level). A ``ConvergenceWarning`` is issued when not, and when the data
            are perfectly separated (the maximum-likelihood coefficients are then infinite).

    Example:
        >>> import numpy as np
        >>> import kullback as kb
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
        >>> y = np.array(["no", "no", "yes", "no", "yes", "yes"])
        >>> model = kb.LogisticRegression().fit(X, y)
        >>> model.classes_.tolist(), model.converged_
        (['no', 'yes'], True)
        >>> round(float(model.coef_[0, 0]), 4), round(float(model.intercept_[0]), 4)
        (1.214, -3.0351)
        >>> model.predict(np.array([[0.5], [4.5]])).tolist()
        ['no', 'yes']
    """

    def __init__(
        self,
        *,
        penalty: str | None = None,
        C: float = 1.0,
        fit_intercept: bool = True,
        tol: float = 1e-8,
        max_iter: int = 100,
    ) -> None:
        self.penalty = penalty
        self.C = C
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter

    def _check_settings(self) -> None:
        if self.penalty not in _PENALTIES:
            raise ValueError(f"Expected penalty to be None or 'l2'; got {self.penalty!r}.")
        if self.penalty == "l2" and not (isinstance(self.C, (int, float, np.number)) and 0 < self.C < np.inf):
            raise ValueError(f"Expected C to be a positive finite number; got {self.C!r}.")
        if not (isinstance(self.tol, (int, float, np.number)) and 0 < self.tol < np.inf):
            raise ValueError(f"Expected tol to be a positive finite number; got {self.tol!r}.")
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise ValueError(f"Expected max_iter to be an integer ≥ 1; got {self.max_iter!r}.")

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegression:
        """Fit β by Newton's method on the (weighted) mean cross-entropy.

        Args:
            X: features, shape ``(n_samples, n_features)``, finite.
            y: labels, shape ``(n_samples,)``, exactly two distinct values (any sortable type).
            sample_weight: optional non-negative weights, shape ``(n_samples,)``; a weight of k
                counts as k copies of the row.

        Returns:
            ``self``, fitted.
        """
        self._check_settings()
        X = check_design(X, "X", owner=type(self).__name__)
        n, n_features = X.shape
        classes, y01 = check_labels(y, n, owner=type(self).__name__)
        s = check_sample_weight(sample_weight, n)
        total = float(s.sum())

        design = np.hstack([np.ones((n, 1)), X]) if self.fit_intercept else X
        k0 = 1 if self.fit_intercept else 0
        ridge = np.zeros(design.shape[1])
        if self.penalty == "l2":
            ridge[k0:] = 1.0 / (float(self.C) * total)
        beta0 = np.zeros(design.shape[1])
        y_mean = float(np.dot(s, y01) / total)
        if self.fit_intercept:  # start at the intercept-only fit
            clipped = min(max(y_mean, 1e-12), 1 - 1e-12)
            beta0[0] = np.log(clipped / (1 - clipped))

        with jax.enable_x64(True):
            result = newton_logistic(
                jnp.asarray(design),
                jnp.asarray(y01),
                jnp.asarray(s / total),
                jnp.asarray(ridge),
                jnp.asarray(beta0),
                jnp.asarray(float(self.tol)),
                jnp.asarray(int(self.max_iter)),
            )
            beta = np.asarray(result.params)
            eta = design @ beta
            losses = np.asarray(_bce(jnp.asarray(eta), jnp.asarray(y01)))
            status, steps = int(result.status), int(result.num_steps)
            grad_max = float(result.grad_max)

        self.classes_ = classes
        self.n_features_in_ = n_features
        self.coef_ = beta[k0:].reshape(1, n_features)
        self.intercept_ = beta[:1].copy() if self.fit_intercept else np.zeros(1)
        self.n_iter_ = np.array([steps], dtype=np.int32)
        self.converged_ = status == CONVERGED
        self.loglike_ = -float(np.dot(s, losses))
        self.deviance_ = -2.0 * self.loglike_
        if self.fit_intercept:
            null_loglike = total * float(xlogy(y_mean, y_mean) + xlogy(1 - y_mean, 1 - y_mean))
        else:
            null_loglike = -total * np.log(2.0)
        self.null_deviance_ = -2.0 * null_loglike
        self._warn(status, steps, grad_max, eta, y01, s)
        return self

    def _warn(
        self, status: int, steps: int, grad_max: float, eta: np.ndarray, y01: np.ndarray, s: np.ndarray
    ) -> None:
        if status != CONVERGED:
            why = (
                "the line search found no decrease"
                if status == LINE_SEARCH_FAILED
                else f"it reached max_iter={self.max_iter}"
            )
            warnings.warn(
                f"LogisticRegression did not converge: {why} after {steps} Newton steps, with "
                f"max |gradient| = {grad_max:.3g} > tol = {self.tol:g}. Increase max_iter, "
                "rescale X, or use penalty='l2'.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if self.penalty is None:
            margin = np.where(y01 > 0.5, eta, -eta)[s > 0]
            if (margin > 0).all():
                warnings.warn(
                    "The data are perfectly separated: every example is classified correctly, so "
                    "the maximum-likelihood coefficients are infinite and the reported ones only "
                    "reflect where the solver stopped. Use penalty='l2' for finite coefficients.",
                    ConvergenceWarning,
                    stacklevel=3,
                )

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call fit(X, y) first."
            )

    def decision_function(self, X: Any) -> np.ndarray:
        """The logit η = Xw + b of the positive class ``classes_[1]``, shape ``(n_samples,)``."""
        self._check_fitted()
        X = check_design(X, "X", n_features=self.n_features_in_, owner=type(self).__name__)
        return X @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities [σ(−η), σ(η)], shape ``(n_samples, 2)``, columns in ``classes_`` order."""
        eta = self.decision_function(X)
        return np.stack([expit(-eta), expit(eta)], axis=1)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log class probabilities [log σ(−η), log σ(η)], exact for large |η|, shape ``(n_samples, 2)``."""
        eta = self.decision_function(X)
        return np.stack([log_expit(-eta), log_expit(eta)], axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """The more probable class (``classes_[1]`` where η > 0), shape ``(n_samples,)``."""
        eta = self.decision_function(X)
        return self.classes_[(eta > 0).astype(np.intp)]

    if HAVE_SKLEARN:

        def __sklearn_tags__(self):  # noqa: ANN204 - scikit-learn's Tags type
            tags = super().__sklearn_tags__()
            tags.classifier_tags.multi_class = False
            return tags
