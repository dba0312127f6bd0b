"""Softmax (multinomial logistic) regression as a forward KL fit of p(y | x)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import LinearClassifier

__all__ = ["SoftmaxRegression"]


class SoftmaxRegression(LinearClassifier):
    """Multinomial logistic regression fitted by minimising the softmax cross-entropy (forward KL).

    The model is q_Θ(y = k | x) = softmax(L)_k with logits L_k = xᵀw_k + b_k + offset_k over the
    K classes. ``fit`` minimises

    .. math::

        \\frac{1}{S} \\sum_i s_i \\left[ -L_{i,y_i} + \\log \\sum_k e^{L_{ik}} \\right]
        + \\frac{1}{C S}\\left[\\tfrac{1 - ρ}{2} \\lVert W \\rVert_F^2 + ρ \\lVert W \\rVert_1\\right],

    the (weighted) mean cross-entropy, evaluated as softplus(logsumexp_{k≠y} L_k − L_y), which is
    exact for any finite logits. **Unpenalised by default**: the result is the cross-entropy
    minimiser (maximum likelihood), the same as statsmodels' ``MNLogit``. The softmax is unchanged
    by adding one vector to every class, so the unpenalised fit is made identifiable with a
    reference class: ``classes_[0]`` has w_0 = 0, b_0 = 0, and the other classes' coefficients are
    log-odds against it (as in ``MNLogit``). A penalised fit (``"l2"``, ``"l1"``, ``"elasticnet"``,
    scikit-learn's ``C`` and ``l1_ratio``) is identifiable without one and uses all K classes,
    with intercepts centred to sum to 0, as scikit-learn does. Intercepts are never penalised.

    Solvers, separation, standard errors and statistics are as in
    :class:`kullback.LogisticRegression`; the separation check solves its linear program over
    every (example, other class) pair.

    Args:
        penalty, C, l1_ratio, fit_intercept, solver, tol, max_iter, stderr: as in
            :class:`kullback.LogisticRegression`.

    Attributes:
        classes_: the K labels, sorted; classes_[0] is the reference when unpenalised.
        coef_: W, shape ``(K, n_features)``; intercept_: b, shape ``(K,)``.
        coef_stderr_, intercept_stderr_: standard errors (NaN in the reference row; ``None`` when
            penalised); covariance_: of the free parameters, class after class, intercept first.
        loglike_, saturated_loglike_, deviance_, null_loglike_, null_deviance_, aic_, bic_,
        n_iter_, solver_, converged_, separation_: as in :class:`kullback.LogisticRegression`.

    Example:
        >>> import numpy as np
        >>> from kullback.glm import SoftmaxRegression
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0], [8.0]])
        >>> y = np.array(["a", "a", "b", "a", "b", "c", "b", "c", "c"])
        >>> model = SoftmaxRegression().fit(X, y)
        >>> model.coef_.shape, model.converged_
        ((3, 1), True)
        >>> [round(float(v), 3) for v in model.coef_[:, 0]]
        [0.0, 1.168, 2.336]
        >>> model.predict(np.array([[0.0], [4.0], [8.0]])).tolist()
        ['a', 'b', 'c']
    """

    _binary = False

    def decision_function(self, X: Any, offset: Any = None) -> np.ndarray:
        """The logits, shape ``(n_samples, n_classes)``; with two classes the log-odds
        L_1 − L_0 of ``classes_[1]``, shape ``(n_samples,)`` (scikit-learn's convention)."""
        L = self._logits(X, offset)
        return L[:, 1] - L[:, 0] if L.shape[1] == 2 else L
