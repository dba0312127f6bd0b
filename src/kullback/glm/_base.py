"""What logistic and softmax regression share: settings, ``fit``, statistics, the summary table.

A thin scikit-learn adapter over :mod:`kullback.glm._fit`: settings in ``__init__``, checks at
the boundary, learned values in ``name_`` attributes (NumPy arrays), ``fit`` returns ``self``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import log_softmax, softmax

from ._data import check_design, check_labels, check_offset, check_sample_weight
from ._fit import SE_MAX_WIDTH, Problem, choose_solver, null_loglike, solve
from ._newton import CONVERGED, LINE_SEARCH_FAILED
from ._separation import Separation, find_separation
from ._sklearn_compat import BaseEstimator, ClassifierMixin, ConvergenceWarning, NotFittedError, as_raised
from ._summary import Summary, covariance, make_summary

__all__ = ["IdentifiabilityWarning", "LinearClassifier", "SeparationWarning"]

_PENALTIES = (None, "l2", "l1", "elasticnet")
_SOLVERS = ("auto", "newton", "lbfgs")
_CERTAIN = 1e-9  # a row whose label gets probability > 1 − this triggers the separation check
_LP_MAX_CELLS = 5_000_000  # above this many X cells, only certain rows (not a mere non-convergence) trigger the LP


class SeparationWarning(ConvergenceWarning):
    """The data are (quasi-)separated: some maximum-likelihood coefficients are infinite.

    Raised as ``as_raised(SeparationWarning)``: with scikit-learn installed, also its ConvergenceWarning.
    """


class IdentifiabilityWarning(UserWarning):
    """The design's columns are linearly dependent: some coefficients are not identified."""


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _feature_names(columns: Any, p: int) -> list[str]:
    if columns is not None and len(columns) == p and all(isinstance(c, str) for c in columns):
        return [str(c) for c in columns]
    return [f"x{j}" for j in range(p)]


class LinearClassifier(ClassifierMixin, BaseEstimator):
    """Base of :class:`LogisticRegression` and :class:`SoftmaxRegression` (not public)."""

    _binary = True

    def __init__(
        self,
        *,
        penalty: str | None = None,
        C: float = 1.0,
        l1_ratio: float = 0.5,
        fit_intercept: bool = True,
        solver: str = "auto",
        tol: float = 1e-8,
        max_iter: int = 100,
        stderr: bool = True,
    ) -> None:
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.stderr = stderr

    def _check_settings(self) -> None:
        if self.penalty not in _PENALTIES:
            raise ValueError(f"Expected penalty to be one of None, 'l2', 'l1', 'elasticnet'; got {self.penalty!r}.")
        if self.penalty is not None and not (_is_number(self.C) and 0 < self.C < np.inf):
            raise ValueError(f"Expected C to be a positive finite number; got {self.C!r}.")
        if self.penalty == "elasticnet" and not (_is_number(self.l1_ratio) and 0 <= self.l1_ratio <= 1):
            raise ValueError(f"Expected l1_ratio to be a number in [0, 1]; got {self.l1_ratio!r}.")
        if self.solver not in _SOLVERS:
            raise ValueError(f"Expected solver to be one of 'auto', 'newton', 'lbfgs'; got {self.solver!r}.")
        if not (_is_number(self.tol) and 0 < self.tol < np.inf):
            raise ValueError(f"Expected tol to be a positive finite number; got {self.tol!r}.")
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise ValueError(f"Expected max_iter to be an integer ≥ 1; got {self.max_iter!r}.")
        if not isinstance(self.stderr, (bool, np.bool_)):
            raise ValueError(f"Expected stderr to be True or False; got {self.stderr!r}.")

    def _penalty_weights(self, total: float) -> tuple[float, float]:
        """(ridge, l1) per slope on the mean objective: scikit-learn's C, divided by C·S."""
        if self.penalty is None:
            return 0.0, 0.0
        scale = 1.0 / (float(self.C) * total)
        rho = {"l2": 0.0, "l1": 1.0, "elasticnet": float(self.l1_ratio)}[self.penalty]
        return (1.0 - rho) * scale, rho * scale

    def fit(self, X: Any, y: Any, sample_weight: Any = None, offset: Any = None) -> LinearClassifier:
        """Fit by minimising the (weighted) mean cross-entropy, plus the penalty if any.

        Args:
            X: features, shape ``(n_samples, n_features)``, finite. A pandas DataFrame's column
                names label the summary table.
            y: labels, shape ``(n_samples,)``, any sortable type.
            sample_weight: optional non-negative weights, shape ``(n_samples,)``; a weight of k
                counts as k copies of the row (also for standard errors).
            offset: optional known part of the logits, added to the linear predictor.

        Returns:
            ``self``, fitted.

        Dask arrays or DataFrames (extra ``kullback[dask]``) are fitted on their cluster, one pass
        per step, to the same results (:mod:`kullback.distributed`).
        """
        from ..distributed import is_dask_collection

        if any(is_dask_collection(a) for a in (X, y, sample_weight, offset)):
            from ..distributed._glm import fit_linear_classifier

            return fit_linear_classifier(self, X, y, sample_weight, offset)
        self._check_settings()
        owner = type(self).__name__
        columns = getattr(X, "columns", None)
        X = check_design(X, "X", owner=owner)
        n, p = X.shape
        names = _feature_names(columns, p)
        classes, labels = check_labels(y, n, owner=owner, binary=self._binary)
        K = classes.shape[0]
        s = check_sample_weight(sample_weight, n)
        off = check_offset(offset, n, K, binary=self._binary)
        total = float(s.sum())
        ridge, l1 = self._penalty_weights(total)
        reference = self.penalty is None or K == 2
        problem = Problem(X, labels, s, off, K, reference, bool(self.fit_intercept), ridge, l1)
        solver = choose_solver(self.solver, problem.width, l1 > 0)
        want_se = bool(self.stderr) and self.penalty is None and problem.width <= SE_MAX_WIDTH
        sol = solve(problem, solver=solver, tol=self.tol, max_iter=self.max_iter, want_hessian=want_se)

        self._store(sol, problem, classes, names)
        self.null_loglike_ = null_loglike(problem, tol=self.tol, max_iter=self.max_iter)
        self.null_deviance_ = 2.0 * (self.saturated_loglike_ - self.null_loglike_)
        self.separation_ = None
        certain = np.any((sol.row_loss < _CERTAIN) & (s > 0))
        small = X.shape[0] * (X.shape[1] + 1) <= _LP_MAX_CELLS  # the LP takes minutes on 10^6 × 50
        if self.penalty is None and (certain or (sol.status != CONVERGED and small)):
            self.separation_ = find_separation(
                X, labels, s, num_classes=K, reference=reference, intercept=problem.intercept, names=names
            )
        self._inference(sol, total)
        self._warn(sol)
        return self

    def _store(self, sol: Any, problem: Problem, classes: np.ndarray, names: list[str]) -> None:
        k0, Theta = int(problem.intercept), sol.Theta
        K, p = problem.num_classes, problem.X.shape[1]
        if self._binary:
            coef, intercept = Theta[:, k0:], (Theta[:, 0] if k0 else np.zeros(1))
        else:
            coef = np.zeros((K, p))
            intercept = np.zeros(K)
            rows = slice(1, K) if problem.reference else slice(0, K)
            coef[rows] = Theta[:, k0:]
            if k0:
                intercept[rows] = Theta[:, 0]
                if not problem.reference:
                    intercept -= intercept.mean()  # already ≈ 0-sum: exactly, without changing predictions
        self.classes_ = classes
        self.n_features_in_ = p
        self.coef_ = np.ascontiguousarray(coef)
        self.intercept_ = np.asarray(intercept, dtype=float).copy()
        self.n_iter_ = np.array([sol.num_steps], dtype=np.int32)
        self.converged_ = sol.status == CONVERGED
        self.solver_ = sol.solver
        self.loglike_ = sol.loglike
        self.saturated_loglike_ = 0.0  # hard labels: the saturated model predicts each one surely
        self.deviance_ = 2.0 * (self.saturated_loglike_ - self.loglike_)
        self.n_params_ = int(np.count_nonzero(Theta)) if problem.l1 > 0 else int(Theta.size)
        self.aic_ = -2.0 * self.loglike_ + 2.0 * self.n_params_
        self.bic_ = -2.0 * self.loglike_ + self.n_params_ * np.log(float(problem.weights.sum()))
        self._status, self._violation = sol.status, sol.violation
        self._names, self._reference, self._intercept = names, problem.reference, problem.intercept

    def _inference(self, sol: Any, total: float) -> None:
        self.covariance_ = None
        self.coef_stderr_ = None
        self.intercept_stderr_ = None
        self.unidentified_ = ()
        if sol.hessian is None:
            return
        M, q = sol.Theta.shape
        if self.separation_ is not None:
            se = np.where(self.separation_.direction != 0, np.inf, np.nan)
            cov = np.full((M * q, M * q), np.nan)
            cov[np.diag_indices_from(cov)] = se.reshape(-1) ** 2
        else:
            cov, identified = covariance(sol.hessian, total)
            se = np.sqrt(np.diag(cov)).reshape(M, q)
            labels = self._coefficient_labels()
            self.unidentified_ = tuple(labels[j] for j in np.flatnonzero(~identified))
        self.covariance_ = cov
        k0 = int(self._intercept)
        slopes, icpt = se[:, k0:], (se[:, 0] if k0 else np.zeros(M))
        if self._binary:
            self.coef_stderr_, self.intercept_stderr_ = slopes.copy(), icpt.copy()
        else:
            K = self.classes_.shape[0]
            self.coef_stderr_ = np.full((K, slopes.shape[1]), np.nan)
            self.intercept_stderr_ = np.full(K, np.nan) if k0 else np.zeros(K)
            self.coef_stderr_[K - M:] = slopes
            if k0:
                self.intercept_stderr_[K - M:] = icpt

    def _coefficient_labels(self) -> list[str]:
        """One label per free parameter, in the order of the flat θ (as the summary rows)."""
        K = self.classes_.shape[0]
        labels = (["intercept"] if self._intercept else []) + list(self._names)
        free = range(1, K) if (self._binary or self._reference) else range(K)
        out = []
        for k in free:
            prefix = "" if self._binary or K == 2 and self._reference else f"{self.classes_[k]}: "
            out.extend(prefix + label for label in labels)
        return out

    def _warn(self, sol: Any) -> None:
        name = type(self).__name__
        if self.unidentified_:
            warnings.warn(
                f"{name}: the coefficients of [{', '.join(self.unidentified_)}] are not identified (their columns "
                "are linearly dependent, with each other or with the intercept); their standard errors are NaN. "
                "Drop one column of each dependent set.",
                IdentifiabilityWarning,
                stacklevel=3,
            )
        if self.separation_ is not None:
            sep = self.separation_
            self.converged_ = False
            warnings.warn(
                f"{name}: the data show {sep}. The maximum-likelihood coefficients along it are infinite; "
                "the reported ones only show where the solver stopped (see separation_ and summary()). "
                "Drop or merge those features, or use penalty='l2' for finite estimates.",
                as_raised(SeparationWarning),
                stacklevel=3,
            )
        elif sol.status != CONVERGED:
            why = "the line search found no decrease" if sol.status == LINE_SEARCH_FAILED else (
                f"it reached max_iter={self.max_iter}"
            )
            warnings.warn(
                f"{name} did not converge: {why} after {sol.num_steps} {sol.solver} steps, with "
                f"optimality violation {sol.violation:.3g} > tol = {self.tol:g}. Increase max_iter, "
                "rescale X, or use penalty='l2'.",
                as_raised(ConvergenceWarning),
                stacklevel=3,
            )

    # --- prediction ------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            name = type(self).__name__
            raise as_raised(NotFittedError)(f"This {name} instance is not fitted yet; call fit(X, y) first.")

    def _logits(self, X: Any, offset: Any) -> np.ndarray:
        """All K logits, shape (n, K)."""
        self._check_fitted()
        X = check_design(X, "X", n_features=self.n_features_in_, owner=type(self).__name__)
        K = self.classes_.shape[0]
        off = check_offset(offset, X.shape[0], K, binary=self._binary)
        if self._binary:
            eta = X @ self.coef_[0] + self.intercept_[0]
            return np.stack([np.zeros_like(eta), eta], axis=1) + off
        return X @ self.coef_.T + self.intercept_ + off

    def predict_proba(self, X: Any, offset: Any = None) -> np.ndarray:
        """Class probabilities softmax(logits), shape ``(n_samples, n_classes)``, in ``classes_`` order."""
        L = self._logits(X, offset)
        if L.shape[1] == 2:  # σ(±η) from one e^{−|η|}: each column exact, also where it is near 0
            eta = L[:, 1] - L[:, 0]
            z = np.exp(-np.abs(eta))
            big = 1.0 / (1.0 + z)
            small = z * big
            upper = eta >= 0
            return np.stack([np.where(upper, small, big), np.where(upper, big, small)], axis=1)
        return softmax(L, axis=1)

    def predict_log_proba(self, X: Any, offset: Any = None) -> np.ndarray:
        """Log class probabilities (log-softmax, exact for large logits), shape ``(n_samples, n_classes)``."""
        return log_softmax(self._logits(X, offset), axis=1)

    def predict(self, X: Any, offset: Any = None) -> np.ndarray:
        """The most probable class for each row, shape ``(n_samples,)``."""
        L = self._logits(X, offset)
        return self.classes_[np.argmax(L, axis=1)]

    # --- inference -------------------------------------------------------------------------

    def summary(self, alpha: float = 0.05) -> Summary:
        """The coefficient table: estimate, standard error, z, p-value, (1 − alpha) interval.

        Wald inference from the observed information, for unpenalised fits; a penalised fit's
        table has the estimates only (standard errors of penalised estimates are not available).
        Under separation the separating coefficients show an infinite standard error.
        """
        self._check_fitted()
        K = self.classes_.shape[0]
        k0 = int(self._intercept)
        labels = (["intercept"] if k0 else []) + list(self._names)
        free = range(1, K) if (self._binary or self._reference) else range(K)
        rows, coef, se = [], [], []
        for k in free:
            row = 0 if self._binary else k
            prefix = "" if self._binary or K == 2 and self._reference else f"{self.classes_[k]}: "
            values = ([self.intercept_[row]] if k0 else []) + list(self.coef_[row])
            rows.extend(prefix + name for name in labels)
            coef.extend(values)
            if self.coef_stderr_ is not None:
                se.extend(([self.intercept_stderr_[row]] if k0 else []) + list(self.coef_stderr_[row]))
        header: dict[str, Any] = {
            "model": type(self).__name__,
            "classes": ", ".join(str(c) for c in self.classes_),
            "penalty": str(self.penalty),
            "solver": f"{self.solver_} ({int(self.n_iter_[0])} steps, converged: {self.converged_})",
            "log-likelihood": self.loglike_,
            "null log-likelihood": self.null_loglike_,
            "deviance": self.deviance_,
            "null deviance": self.null_deviance_,
            "AIC": self.aic_,
            "BIC": self.bic_,
        }
        notes = []
        if not self._binary and self._reference:
            notes.append(f"Coefficients are log-odds against the reference class {str(self.classes_[0])!r}.")
        if self.penalty is not None:
            notes.append("Penalised fit: standard errors are not available (the penalty biases the estimates).")
        elif self.coef_stderr_ is None:
            notes.append(f"Standard errors are not computed for more than {SE_MAX_WIDTH} parameters.")
        if self.separation_ is not None:
            notes.append(f"Warning: {self.separation_}; those estimates are infinite (std err inf).")
        if getattr(self, "unidentified_", ()):
            notes.append(
                f"Warning: not identified (linearly dependent columns): {', '.join(self.unidentified_)}; "
                "their estimates are arbitrary (std err —)."
            )
        return make_summary(
            rows, np.array(coef), np.array(se) if se else None, alpha=alpha, header=header, notes=notes
        )
