"""``kullback fit data.csv --family student_t``: read a column, fit by maximum likelihood, print a table.

Parsing and printing only: the fit is ``kb.fit(..., direction="forward")``.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from ..fit import fit
from ._names import fit_family
from ._table import read_table

__all__ = ["fit_command"]

_MULTIVARIATE = ("multivariate_normal",)


def _columns(frame, column: str | None, multivariate: bool) -> tuple[list[str], np.ndarray]:
    import pandas as pd

    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    if column is not None:
        names = [c.strip() for c in column.split(",")]
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise ValueError(f"Expected column to name columns of the file {list(frame.columns)}; got {missing}.")
    elif multivariate:
        names = numeric
    elif len(numeric) == 1:
        names = numeric
    else:
        raise ValueError(f"Expected one numeric column, or --column to choose one; the file has {numeric}.")
    if not names:
        raise ValueError("Expected at least one numeric column in the file; found none.")
    if hasattr(frame, "dask"):  # a Dask DataFrame: rows with NaN dropped lazily, row counts known
        from ..distributed import as_dask_array

        values = as_dask_array(frame[names].astype(float).replace([np.inf, -np.inf], np.nan).dropna(), "target")
        return names, values if multivariate else values[:, 0]
    values = frame[names].to_numpy(dtype=float)
    keep = np.isfinite(values).all(axis=1)
    return names, values[keep] if multivariate else values[keep, 0]


def fit_command(path: str, family: str, as_json: bool, column: str | None, progress: bool = False,
                dask: bool = False) -> str:
    """The text that ``kullback fit PATH --family FAMILY [--column C] [--json]`` prints.

    Rows with a missing or non-finite value are dropped (and counted in the output).

    Args:
        path: a CSV file, or Parquet (``.parquet``/``.pq``).
        family: one of :data:`kullback.cli._names.FIT_FAMILIES` (e.g. ``"student_t"``, ``"gamma_loc"``, ``"beta_4"``).
        as_json: print a JSON object instead of the table.
        column: the column to fit (comma-separated names for ``multivariate_normal``); None:
            the only numeric column (all numeric columns for ``multivariate_normal``).
        progress: draw the fit's progress bar on stderr.
        dask: read ``path`` (a glob or folder too) with Dask and fit on the current cluster.

    Returns:
        The summary table (parameters, standard errors, log-likelihood, AIC, BIC, the fitted
        cross-entropy beside the data's estimated entropy), or its JSON form.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "x.csv")
        >>> with open(path, "w") as f:
        ...     _ = f.write("x\\n1.0\\n2.0\\n3.0\\n4.0\\n")
        >>> print(fit_command(path, "normal", False, None).splitlines()[0])
        Normal fitted to x.csv column x (4 rows)
    """
    q_family = fit_family(family)
    if dask:
        from ._dask import read_dask_table
    frame = read_dask_table(path) if dask else read_table(path)
    names, data = _columns(frame, column, family in _MULTIVARIATE)
    dropped = len(frame) - len(data)
    result = fit(q_family, data, direction="forward", progress=progress)
    where = f"{pathlib.Path(path).name} column{'s' if len(names) > 1 else ''} {', '.join(names)}"
    if as_json:
        out = {"file": str(path), "columns": names, "rows": int(len(data)), "rows_dropped": int(dropped),
               "family_option": family, **result.to_dict()}
        return json.dumps(out, indent=2, allow_nan=True)
    head = f"{result.family} fitted to {where} ({len(data)} rows" + (f", {dropped} dropped)" if dropped else ")")
    return head + "\n" + result.summary()
