"""``kullback logistic data.csv --target y``: read a table, fit logistic or softmax regression, print a summary.

Parsing and printing only: the fit is :class:`kullback.LogisticRegression` (two classes) or
:class:`kullback.SoftmaxRegression` (more).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import typer

from ._table import read_table

__all__ = ["PENALTIES", "check_options", "logistic_command"]

PENALTIES = ("none", "l2", "l1", "elasticnet")


def check_options(penalty: str, C: float, alpha: float) -> str | None:
    """The first problem with the settings, as a message naming the option; None if they are fine."""
    problems = [
        (penalty not in PENALTIES, f"Expected --penalty to be one of {', '.join(PENALTIES)}; got {penalty!r}."),
        (not (0 < C < math.inf), f"Expected --C to be a positive finite number; got {C!r}."),
        (not (0 < alpha < 1), f"Expected --alpha to be in (0, 1); got {alpha!r}."),
    ]
    return next((message for bad, message in problems if bad), None)


def _feature_names(
    frame: Any, data: Path, target: str, features: str | None, weight: str | None, offset: str | None
) -> list[str]:
    """The feature columns: those named by --features, else every column but target, weight and offset."""
    if target not in frame.columns:
        raise typer.BadParameter(f"Expected --target to name a column of {data}; got {target!r} (columns: {list(frame.columns)}).")
    used = {target} | {c for c in (weight, offset) if c is not None}
    for option, column in (("--weight", weight), ("--offset", offset)):
        if column is not None and column not in frame.columns:
            raise typer.BadParameter(f"Expected {option} to name a column of {data}; got {column!r}.")
    names = [c.strip() for c in features.split(",")] if features else [c for c in frame.columns if c not in used]
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise typer.BadParameter(f"Expected --features to name columns of {data}; not found: {missing}.")
    non_numeric = [c for c in names if frame[c].dtype.kind not in "biuf"]
    if non_numeric:
        raise typer.BadParameter(f"Expected numeric feature columns; {non_numeric} are not (encode them first, or pass --features).")
    return names


def _separation(model: Any) -> dict[str, Any] | None:
    s = model.separation_
    return None if s is None else {"kind": s.kind, "features": list(s.feature_names), "num_separated": s.num_separated}


def logistic_command(
    data: Path,
    target: str,
    *,
    features: str | None = None,
    weight: str | None = None,
    offset: str | None = None,
    penalty: str = "none",
    C: float = 1.0,
    fit_intercept: bool = True,
    alpha: float = 0.05,
    as_json: bool = False,
    dask: bool = False,
) -> tuple[str, list[str]]:
    """What ``kullback logistic DATA --target TARGET ...`` prints: the text, and warnings for stderr.

    Rows with a missing target or feature are dropped (the summary counts the rows used). A
    binary target is fitted by logistic regression, more classes by softmax regression.
    ``dask``: DATA is read by Dask (a glob or folder too) and fitted on the current cluster.

    Returns:
        The summary table (or its JSON, which holds the fit's warnings and any separation), and
        the warnings to print on stderr (none with ``as_json``).
    """
    from ..glm import LogisticRegression, SoftmaxRegression

    if dask:
        from ._dask import read_dask_table
    frame = read_dask_table(data) if dask else read_table(data)
    names = _feature_names(frame, data, target, features, weight, offset)
    rows = ~frame[[target] + names].isna().any(axis=1)
    frame = frame[rows]
    column = (lambda name: frame[name]) if dask else (lambda name: frame[name].to_numpy())  # noqa: E731
    y = column(target)
    binary = (int(y.nunique().compute()) if dask else len(set(y.tolist()))) <= 2
    if offset is not None and not binary:
        raise typer.BadParameter("Expected --offset only with a binary target; the target has more than two classes.")
    model_type = LogisticRegression if binary else SoftmaxRegression
    model = model_type(penalty=None if penalty == "none" else penalty, C=C, fit_intercept=fit_intercept)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            frame[names],
            y,
            sample_weight=None if weight is None else column(weight),
            offset=None if offset is None else column(offset),
        )
    summary = model.summary(alpha=alpha)
    summary.header["rows used"] = int(rows.sum().compute() if dask else rows.sum())
    messages = [str(w.message) for w in caught]
    if as_json:
        payload = {**summary.to_dict(), "warnings": messages, "separation": _separation(model)}
        return json.dumps(payload, indent=2, allow_nan=False), []
    return str(summary), messages
