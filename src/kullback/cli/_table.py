"""The one table reader of the command line: a CSV or Parquet file as a pandas DataFrame.

``kullback fit`` and ``kullback logistic`` read their DATA here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

__all__ = ["PARQUET_SUFFIXES", "read_table"]

PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(path: str | Path) -> Any:
    """The file at ``path`` as a pandas DataFrame: Parquet by suffix (``.parquet``, ``.pq``), else CSV.

    Raises:
        FileNotFoundError: no file at ``path``.
        typer.BadParameter: pandas (or pyarrow, for Parquet) is not installed; the message says
            what to install.
    """
    try:
        import pandas as pd
    except ImportError as err:  # pragma: no cover - pandas is installed with the test extra
        raise typer.BadParameter("Reading data files needs pandas: pip install pandas.") from err
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Expected DATA to be an existing file; {path} does not exist.")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            return pd.read_parquet(path)
        except ImportError as err:
            raise typer.BadParameter("Reading Parquet needs pyarrow: pip install pyarrow.") from err
    return pd.read_csv(path)
