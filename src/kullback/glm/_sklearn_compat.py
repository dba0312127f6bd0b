"""scikit-learn's estimator protocol, written out so that using the estimators never imports it.

scikit-learn is a test dependency of kullback, not a runtime one, and ``import sklearn.base``
alone costs 0.6 s (its ``__init__`` pulls in scipy.stats and more). The GLM estimators follow its
protocol by duck typing instead: parameters from the ``__init__`` signature (``get_params`` /
``set_params``, nested ``a__b`` names), ``__repr__``, ``__sklearn_tags__`` (built by importing
``sklearn.utils`` inside the method, which only scikit-learn calls), ``score`` as (weighted)
accuracy. ``clone``, pipelines, grid search and ``check_estimator`` use exactly these.

Warnings and errors: :class:`ConvergenceWarning`, :class:`NotFittedError` and
:class:`DataConversionWarning` are ours; :func:`as_raised` gives the class to raise, which with
scikit-learn installed also derives from scikit-learn's class of the same name (imported then,
when something actually goes wrong), so that filters and ``except`` clauses written for either
catch it.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import sys
from collections import defaultdict
from typing import Any

import numpy as np

__all__ = [
    "BaseEstimator",
    "ClassifierMixin",
    "ConvergenceWarning",
    "DataConversionWarning",
    "NotFittedError",
    "HAVE_SKLEARN",
    "as_raised",
]

HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None  # looks on the path, imports nothing


# --- warnings and errors -------------------------------------------------------------------------


class ConvergenceWarning(UserWarning):
    """The solver stopped before meeting its tolerance."""

    _sklearn_name = "ConvergenceWarning"


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit``."""

    _sklearn_name = "NotFittedError"


class DataConversionWarning(UserWarning):
    """The input was converted, e.g. a column-vector y flattened."""

    _sklearn_name = "DataConversionWarning"


@functools.cache
def as_raised(cls: type) -> type:
    """The class to raise for ``cls``: ``cls`` itself, or with scikit-learn installed a subclass
    of both ``cls`` and scikit-learn's class of the same role (``cls._sklearn_name``).

    Imports ``sklearn.exceptions`` on the first call, so call it only when raising.
    """
    name = getattr(cls, "_sklearn_name", None)
    try:
        counterpart = getattr(importlib.import_module("sklearn.exceptions"), name) if name else None
    except (ImportError, AttributeError):
        counterpart = None
    if counterpart is None or issubclass(cls, counterpart):
        return cls
    namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    namespace["__reduce__"] = lambda self: (_rebuild, (cls, self.args), self.__dict__ or None)
    return type(cls.__name__, (cls, counterpart), namespace)


def _rebuild(cls: type, args: tuple) -> BaseException:
    """Unpickle an exception raised as ``as_raised(cls)`` (that class is made, not importable)."""
    return as_raised(cls)(*args)


# --- the estimator protocol ----------------------------------------------------------------------


def _print_changed_only() -> bool:
    """scikit-learn's ``print_changed_only`` (read only if it is imported; its default is True).
    Without scikit-learn installed every parameter is shown."""
    if not HAVE_SKLEARN:
        return False
    get_config = getattr(sys.modules.get("sklearn"), "get_config", None)
    return bool(get_config()["print_changed_only"]) if get_config is not None else True


def _same(a: Any, b: Any) -> bool:
    """Whether a parameter value equals its default, as scikit-learn's repr judges (by repr; NaN = NaN)."""
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return a is b or repr(a) == repr(b)


class BaseEstimator:
    """Parameters are the keyword arguments of ``__init__``, stored unchanged under their names."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The ``__init__`` parameter names, sorted (no ``*args``: a parameter must have a name)."""
        if cls.__init__ is object.__init__:
            return []
        signature = inspect.signature(cls.__init__)
        names = []
        for name, p in signature.parameters.items():
            if p.kind == p.VAR_POSITIONAL:
                raise RuntimeError(
                    f"Expected {cls.__name__}.__init__ to name every parameter; got *{name} in {signature}."
                )
            if name != "self" and p.kind != p.VAR_KEYWORD:
                names.append(name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The parameters by name; with ``deep``, also ``name__sub`` for an estimator-valued one."""
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{sub}", v) for sub, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> BaseEstimator:
        """Set parameters by name (``name__sub`` sets one of an estimator-valued parameter); returns ``self``."""
        if not params:
            return self
        valid = self.get_params(deep=True)
        nested: dict[str, dict[str, Any]] = defaultdict(dict)
        for key, value in params.items():
            name, delim, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {self}. "
                    f"Valid parameters are: {self._get_param_names()!r}."
                )
            if delim:
                nested[name][sub] = value
            else:
                setattr(self, name, value)
                valid[name] = value
        for name, sub_params in nested.items():
            valid[name].set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        params = self.get_params(deep=False)
        if _print_changed_only():
            defaults = {
                name: p.default
                for name, p in inspect.signature(type(self).__init__).parameters.items()
                if p.default is not p.empty
            }
            params = {k: v for k, v in params.items() if k not in defaults or not _same(v, defaults[k])}
        args = ", ".join(f"{k}={v!r}" for k, v in params.items())
        return f"{type(self).__name__}({args})"

    def __sklearn_tags__(self):  # noqa: ANN204 - scikit-learn's Tags type
        """scikit-learn's default tags (only scikit-learn calls this, so it is imported here)."""
        from sklearn.utils import Tags, TargetTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=None,
            regressor_tags=None,
            classifier_tags=None,
        )


class ClassifierMixin:
    """A classifier: ``score`` is the (weighted) fraction of correct predictions; y is required."""

    _estimator_type = "classifier"

    def __sklearn_tags__(self):  # noqa: ANN204 - scikit-learn's Tags type
        from sklearn.utils import ClassifierTags

        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        return tags

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The accuracy of ``predict(X)`` against y, weighted by ``sample_weight`` if given."""
        predicted = np.asarray(self.predict(X))  # type: ignore[attr-defined]
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.shape != predicted.shape:
            raise ValueError(f"Expected y to have one label per row of X ({predicted.shape[0]}); got shape {y.shape}.")
        return float(np.average(predicted == y, weights=sample_weight))
