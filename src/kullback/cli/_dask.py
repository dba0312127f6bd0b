"""``--dask`` for ``kullback fit`` and ``kullback logistic``: a table read by Dask, fitted on a cluster.

DATA may then be a glob (``"data/*.parquet"``) or a folder of Parquet files, read by the workers.
``--scheduler ADDRESS`` connects to a running scheduler; without it a ``LocalCluster`` of
single-threaded worker processes is started for the command and closed after it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import typer

from ._table import PARQUET_SUFFIXES

__all__ = ["cluster", "read_dask_table"]

_NEEDS_EXTRA = "--dask needs Dask: pip install 'kullback[dask]'."


def read_dask_table(pattern: str | Path) -> Any:
    """A Dask DataFrame of the Parquet or CSV files that ``pattern`` (a path, glob or folder) names."""
    try:
        import dask.dataframe as dd
    except ImportError as err:
        raise typer.BadParameter(_NEEDS_EXTRA) from err
    import fsspec

    text = str(pattern)
    _, _, paths = fsspec.core.get_fs_token_paths(text)
    if not paths:
        raise typer.BadParameter(f"Expected DATA to name existing files (a path, glob or folder); {text} matches none.")
    parquet = Path(text).is_dir() or text.lower().endswith(PARQUET_SUFFIXES)
    try:
        return dd.read_parquet(text) if parquet else dd.read_csv(text)
    except (OSError, ValueError) as err:  # no file matches, or unreadable
        raise typer.BadParameter(f"Expected DATA to name existing files; {text}: {err}") from err


@contextlib.contextmanager
def cluster(scheduler: str | None) -> Iterator[Any]:
    """A ``distributed.Client`` for the command: to ``scheduler``, or to a new LocalCluster."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:
        raise typer.BadParameter(_NEEDS_EXTRA) from err
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(threads_per_worker=1, processes=True, dashboard_address=None) as local, Client(local) as client:
        yield client
