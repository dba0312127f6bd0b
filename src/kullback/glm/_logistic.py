"""Logistic regression as a forward KL fit of p(y | x): a scikit-learn estimator.

Minimising the mean binary cross-entropy of the labels under Bernoulli(σ(xᵀβ)) is minimising
KL(p̂(y | x) ‖ q_β(y | x)) averaged over the rows of X, p̂ the empirical conditional
distribution (its entropy is 0 for 0/1 labels), and is maximum likelihood.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import LinearClassifier

__all__ = ["LogisticRegression"]


class LogisticRegression(LinearClassifier):
    """Binary logistic regression fitted by minimising the cross-entropy (forward KL).

    The model is q_β(y = 1 | x) = σ(η), η = xᵀw + b + offset. ``fit`` minimises

    .. math::

        \\frac{1}{S} \\sum_i s_i \\left[ -y_i η_i + \\mathrm{softplus}(η_i) \\right]
        + \\frac{1}{C S}\\left[\\tfrac{1 - ρ}{2} \\lVert w \\rVert_2^2 + ρ \\lVert w \\rVert_1\\right],
        \\qquad S = \\sum_i s_i,

    the (weighted) mean binary cross-entropy. **Unpenalised by default** (``penalty=None``):
    the result is the cross-entropy minimiser, i.e. the maximum-likelihood estimate, the same as
    statsmodels' ``Logit`` (scikit-learn penalises by default). ``penalty`` ``"l2"`` (ρ = 0),
    ``"l1"`` (ρ = 1) or ``"elasticnet"`` (ρ = ``l1_ratio``) use scikit-learn's ``C``; the
    intercept is never penalised. The loss is evaluated without cancellation, exactly in
    float64 for |η| up to 1e4 and beyond.

    Solvers (on the host, reading the rows through one compiled JAX block kernel that any
    number of rows and any settings reuse; always float64 whatever jax's x64 flag says):
    ``"newton"`` (IRLS with a backtracking Armijo line search; proximal Newton with coordinate
    descent for L1 / elastic-net), ``"lbfgs"`` (scipy's L-BFGS-B, for wide data; smooth penalties only), or
    ``"auto"``: Newton up to 500 parameters or with an L1 term, else L-BFGS. They stop when the
    optimality violation is at most ``tol``: max_j |∂f/∂θ_j| / s_j when unpenalised, s_j the
    root mean square of coefficient j's column (1 for the intercept), so the test does not
    depend on the units of X.

    Standard errors: from the observed information equilibrated to unit diagonal (its inverse
    is unscaled afterwards), so they scale exactly with the units of a column. Linearly
    dependent columns (a constant column besides the intercept, a duplicate): ``fit`` issues
    a :class:`kullback.glm.IdentifiabilityWarning` naming the unidentified coefficients (also
    in ``unidentified_`` and ``summary()``); their standard errors are NaN, the others finite.

    Separation: when some rows are predicted with certainty (or the solver fails, on data of at
    most 5·10^6 cells), a linear program checks for perfect or quasi-complete separation. If found, the maximum-likelihood
    estimates are infinite: ``fit`` issues a :class:`kullback.glm.SeparationWarning` naming the
    separating features, sets ``separation_`` and ``converged_ = False``, and ``summary()``
    shows infinite standard errors for them. The coefficients are where the solver stopped.

    Args:
        penalty: ``None`` (maximum likelihood), ``"l2"``, ``"l1"`` or ``"elasticnet"``.
        C: inverse penalty strength, > 0 (ignored without a penalty).
        l1_ratio: ρ in [0, 1] for ``"elasticnet"``.
        fit_intercept: fit b; without it η = xᵀw + offset.
        solver: ``"auto"``, ``"newton"`` or ``"lbfgs"``.
        tol: stop when the (unit-free) optimality violation of the mean objective is ≤ tol, > 0.
        max_iter: the most solver iterations, ≥ 1.
        stderr: form the exact Hessian at the optimum for standard errors (unpenalised fits;
            ``False`` skips it: a quarter of the time of a tall fit).

    Attributes:
        classes_: the two labels, sorted; the second is the positive class (y = 1).
        coef_: w, shape ``(1, n_features)``; intercept_: b, shape ``(1,)``.
        coef_stderr_, intercept_stderr_: standard errors from the observed information (same
            shapes; ``None`` when penalised), with covariance_ the full matrix (intercept first).
        loglike_: ℓ = Σ_i s_i log q(y_i | x_i) at the fit (no penalty term).
        saturated_loglike_: 0 (the saturated model predicts each 0/1 label with certainty).
        deviance_: 2(ℓ_saturated − ℓ); null_loglike_ and null_deviance_: the same for the
            intercept-only model (closed form 2S·H(ȳ) without an offset; η = offset without an
            intercept).
        aic_, bic_: −2ℓ + 2k and −2ℓ + k log S, k the number of (non-zero, under L1) parameters.
        n_iter_: solver iterations, shape ``(1,)``; solver_: the solver used.
        converged_: whether the tolerance was met (False under separation).
        separation_: ``None``, or a :class:`kullback.glm.Separation`.

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
        >>> round(float(model.coef_stderr_[0, 0]), 4)
        0.9126
        >>> model.predict(np.array([[0.5], [4.5]])).tolist()
        ['no', 'yes']
    """

    _binary = True

    def decision_function(self, X: Any, offset: Any = None) -> np.ndarray:
        """The logit η = Xw + b (+ offset) of the positive class ``classes_[1]``, shape ``(n_samples,)``."""
        L = self._logits(X, offset)
        return L[:, 1] - L[:, 0]

    def __sklearn_tags__(self):  # noqa: ANN204 - scikit-learn's Tags type
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags
