"""Dask adapters: the same fits and measures on collections chunked along their rows.

One protocol (:mod:`kullback.distributed._protocol`): a per-block kernel returning a pytree of
float64 sums, an associative combine, a finalize on the client. Nothing here imports Dask until
a Dask collection is passed (the extra ``kullback[dask]`` installs it).
"""

from ._protocol import SPLIT_EVERY, as_dask_array, is_dask_collection, map_reduce, row_blocks, tree_add

__all__ = [
    "SPLIT_EVERY",
    "as_dask_array",
    "is_dask_collection",
    "map_reduce",
    "row_blocks",
    "tree_add",
]
