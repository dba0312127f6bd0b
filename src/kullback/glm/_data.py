"""Checks of the data given to the GLM estimators: float64 NumPy arrays out, errors that name the
argument. Host-side on purpose: the solver runs in float64 whatever jax's x64 flag says, so the
data must not pass through a float32 JAX array on the way in."""

from __future__ import annotations

from typing import Any

import warnings

import numpy as np
from scipy import sparse

from ._sklearn_compat import DataConversionWarning, as_raised

__all__ = ["check_design", "check_labels", "check_sample_weight", "check_offset"]


def _first_bad(bad: np.ndarray) -> str:
    return f"{int(bad.sum())} NaN or infinite entries (the first at index {tuple(int(i) for i in np.argwhere(bad)[0])})"


def check_design(
    X: Any, name: str = "X", *, n_features: int | None = None, owner: str = "the estimator"
) -> np.ndarray:
    """X as a finite float64 array of shape (n_samples, n_features), both at least 1.

    The messages also carry scikit-learn's phrases ("Reshape your data", "sparse", "Complex data
    not supported", "X has k features, but ... is expecting m features") so that its estimator
    checks recognise them.
    """
    if sparse.issparse(X):
        raise ValueError(f"Expected {name} to be a dense array; sparse input is not supported. Use {name}.toarray().")
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Expected {name} to be a 2-D array of numbers; got {type(X).__name__}.") from err
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"Expected {name} to be real. Complex data not supported; got dtype {arr.dtype}.")
    if arr.ndim != 2:
        raise ValueError(
            f"Expected {name} to be 2-D (n_samples, n_features); got shape {arr.shape}. Reshape your data: "
            f"{name}.reshape(-1, 1) for a single feature, {name}.reshape(1, -1) for a single sample."
        )
    if arr.shape[1] < 1:
        raise ValueError(
            f"Expected {name} to have at least one feature; found array with 0 feature(s) "
            f"(shape={arr.shape}) while a minimum of 1 is required."
        )
    if arr.shape[0] < 1:
        raise ValueError(
            f"Expected {name} to have at least one sample; found array with 0 sample(s) "
            f"(shape={arr.shape}) while a minimum of 1 is required."
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"Expected {name} to have {n_features} features, as in fit: {name} has {arr.shape[1]} features, "
            f"but {owner} is expecting {n_features} features as input."
        )
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool or arr.dtype == object):
        raise ValueError(f"Expected {name} to be a 2-D array of numbers; got dtype {arr.dtype}.")
    try:
        arr = np.asarray(arr, dtype=np.float64)  # no copy for float64 input
    except TypeError as err:  # e.g. a dict in an object array: the kind of the input is wrong
        raise TypeError(f"Expected {name} to be a 2-D array of numbers; some entries are not ({err}).") from err
    except ValueError as err:  # e.g. the string "abc"
        raise ValueError(f"Expected {name} to be a 2-D array of numbers; some entries are not ({err}).") from err
    with np.errstate(over="ignore", invalid="ignore"):
        total = arr.sum()  # NaN or ±inf if any entry is: one cheap pass instead of a mask of X
    if not np.isfinite(total):  # some entry is not finite, or the sum overflowed: look closer
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(f"Expected {name} to be finite; it has {_first_bad(bad)}.")
    return arr


def check_labels(
    y: Any, n_samples: int, name: str = "y", *, owner: str = "the estimator", binary: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Class labels: (classes sorted, int index of each label into them).

    ``binary=True`` requires exactly two classes, otherwise at least two.

    A column vector (n, 1) is flattened with a warning, as scikit-learn does.
    """
    if y is None:
        raise ValueError(f"{owner} requires y to be passed, but the target y is None.")
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        warnings.warn(
            f"A column-vector {name} was passed when a 1d array was expected; flattened it (pass {name}.ravel()).",
            as_raised(DataConversionWarning),
            stacklevel=3,
        )
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"Expected {name} to be 1-D, one label per row of X; got shape {arr.shape}.")
    if arr.shape[0] != n_samples:
        raise ValueError(f"Expected {name} to have one label per row of X ({n_samples}); got {arr.shape[0]}.")
    if np.issubdtype(arr.dtype, np.number):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(f"Expected {name} to hold labels, not NaN or inf; it has {_first_bad(bad)}.")
        if np.issubdtype(arr.dtype, np.floating) and (arr != np.round(arr)).any():
            raise ValueError(
                f"Expected {name} to hold class labels; got continuous values (e.g. {arr[arr != np.round(arr)][0]:.6g}). "
                "Unknown label type: continuous. Round or threshold them first."
            )
    elif arr.dtype == object:
        missing = [i for i, v in enumerate(arr) if v is None or (isinstance(v, float) and np.isnan(v))]
        if missing:
            raise ValueError(
                f"Expected {name} to hold labels; it has {len(missing)} missing (None or NaN) entries "
                f"(the first at index {missing[0]})."
            )
    two = _two_values(arr)
    if two is not None:  # the common binary case without sorting n labels
        return two
    try:
        classes, inverse = np.unique(arr, return_inverse=True)
    except TypeError as err:
        raise ValueError(f"Expected {name} to hold labels of one sortable type; got a mix ({err}).") from err
    if classes.shape[0] < 2 or (binary and classes.shape[0] != 2):
        if classes.shape[0] < 2:
            raise ValueError(
                f"Expected {name} to have {'two' if binary else 'at least two'} classes; got one class ({classes[0]!r}): "
                "a model of p(y | x) needs examples of both outcomes."
            )
        shown = ", ".join(repr(c) for c in classes[:5].tolist()) + (", ..." if classes.shape[0] > 5 else "")
        raise ValueError(
            f"Expected {name} to have two classes. Only binary classification is supported by "
            f"{owner}; got {classes.shape[0]} classes: {shown}. Use kullback.SoftmaxRegression for more."
        )
    return classes, inverse.reshape(-1).astype(np.intp)


def _two_values(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(classes, index) as ``np.unique`` gives them when a numeric arr holds exactly two values."""
    if arr.size == 0 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        return None
    lo, hi = arr.min(), arr.max()
    if lo == hi:
        return None
    is_hi = arr == hi
    if not np.all(is_hi | (arr == lo)):
        return None
    return np.array([lo, hi], dtype=arr.dtype), is_hi.astype(np.intp)


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray:
    """Non-negative finite float64 weights of shape (n_samples,) with a positive total."""
    if sample_weight is None:
        return np.ones(n_samples)
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Expected sample_weight to be numbers; got {type(sample_weight).__name__}.") from err
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.shape != (n_samples,):
        raise ValueError(f"Expected sample_weight to have shape ({n_samples},), one per row of X; got {w.shape}.")
    bad = ~np.isfinite(w)
    if bad.any():
        raise ValueError(f"Expected sample_weight to be finite; it has {_first_bad(bad)}.")
    if (w < 0).any():
        raise ValueError(f"Expected sample_weight to be non-negative; its smallest entry is {w.min():.6g}.")
    if not w.sum() > 0:
        raise ValueError("Expected sample_weight to have a positive total; all weights are zero.")
    return w


def check_offset(offset: Any, n_samples: int, num_classes: int, *, binary: bool) -> np.ndarray:
    """The offset as float64 of shape (n_samples, num_classes), added to the logits.

    A binary model takes one offset per row (added to the logit of the positive class); a
    softmax model one per row and class, shape (n_samples, num_classes).
    """
    if offset is None:
        return np.zeros((n_samples, num_classes))
    try:
        arr = np.asarray(offset, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Expected offset to be numbers; got {type(offset).__name__}.") from err
    expected = (n_samples,) if binary else (n_samples, num_classes)
    if arr.shape != expected:
        raise ValueError(
            f"Expected offset to have shape {expected}, "
            f"{'one per row of X' if binary else 'one per row of X and class'}; got {arr.shape}."
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"Expected offset to be finite; it has {_first_bad(bad)}.")
    if binary:
        return np.stack([np.zeros(n_samples), arr], axis=1)
    return arr
