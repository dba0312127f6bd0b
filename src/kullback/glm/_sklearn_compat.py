"""scikit-learn's estimator base classes when it is installed; a small stand-in when it is not.

scikit-learn is a test dependency of kullback, not a runtime one. With it installed the GLM
estimators are genuine scikit-learn estimators (``clone``, pipelines, grid search, its
``ConvergenceWarning``). Without it they keep the same conventions: parameters from the
``__init__`` signature (``get_params`` / ``set_params``), ``score`` as (weighted) accuracy.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

__all__ = ["BaseEstimator", "ClassifierMixin", "ConvergenceWarning", "NotFittedError", "HAVE_SKLEARN"]

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import ConvergenceWarning, NotFittedError

    HAVE_SKLEARN = True
except ImportError:  # the stand-in below
    HAVE_SKLEARN = False

    class ConvergenceWarning(UserWarning):  # type: ignore[no-redef]
        """The solver stopped before meeting its tolerance."""

    class NotFittedError(ValueError, AttributeError):  # type: ignore[no-redef]
        """The estimator is used before ``fit``."""

    class BaseEstimator:  # type: ignore[no-redef]
        """Parameters are the keyword arguments of ``__init__``, stored unchanged."""

        @classmethod
        def _get_param_names(cls) -> list[str]:
            signature = inspect.signature(cls.__init__)
            return sorted(
                name
                for name, p in signature.parameters.items()
                if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            )

        def get_params(self, deep: bool = True) -> dict[str, Any]:
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params: Any) -> BaseEstimator:
            valid = self._get_param_names()
            for name, value in params.items():
                if name not in valid:
                    raise ValueError(
                        f"Invalid parameter {name!r} for {type(self).__name__}; expected one of {valid}."
                    )
                setattr(self, name, value)
            return self

        def __repr__(self) -> str:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
            return f"{type(self).__name__}({args})"

    class ClassifierMixin:  # type: ignore[no-redef]
        """``score`` is the (weighted) fraction of correct predictions."""

        _estimator_type = "classifier"

        def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
            correct = np.asarray(self.predict(X)) == np.asarray(y)  # type: ignore[attr-defined]
            return float(np.average(correct, weights=sample_weight))
