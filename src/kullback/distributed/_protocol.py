"""The one protocol of every Dask path: a per-block kernel, an associative combine, a finalize.

A fit or a measure over rows that do not fit one machine is written as three pure functions:

- a **kernel** ``kernel(*blocks, *args) -> sums``: the blocks of one row range (NumPy arrays)
  in, a pytree (dicts, tuples, NumPy arrays, floats) of float64 *sums* over those rows out;
- a **combine** ``combine(a, b) -> sums``: associative (and commutative), so that the partial
  sums can be added in any tree; the default :func:`tree_add` adds leaf by leaf;
- a **finalize** on the client: the total sums to the answer (a solver's step, a statistic).

:func:`map_reduce` runs one pass: one kernel task per row block, combined by a tree of
``split_every`` partials at a time (Dask's scheduler places them next to their inputs), one
small result to the client. Nothing in it is Dask-specific but the three lines that build and
compute the task graph: a Ray or Spark adapter replaces :func:`map_reduce` (and
:func:`row_blocks`) and reuses every kernel (see ``docs/dask.md``).

Kernels are module-level functions (pickled by reference: workers import them, nothing is
shipped but their name) and accumulate in float64 whatever the input dtype.
"""

from __future__ import annotations

import math
import os
import sys
import uuid
from functools import reduce
from typing import Any, Callable

import numpy as np

__all__ = ["is_dask_collection", "row_blocks", "map_reduce", "tree_add", "on_worker", "block_weights", "block_moments", "merge_moments",
           "check_worker_memory", "as_block", "SPLIT_EVERY"]

SPLIT_EVERY = 8  # partial sums combined per task of the tree
# What a worker needs besides the Dask worker itself, for the memory check of row_blocks:
RUNTIME_BYTES = 230e6  # the resident size the kernels' imports (JAX, NumPyro) add to a process, measured
BLOCKS_IN_FLIGHT = 4  # row blocks a worker holds at once: the one read (e.g. from Parquet), its float64
# copy, the kernel's temporaries and the next one being read. A 10^7 x 50 Parquet fit in blocks of
# 127 MB ran on 2 GB workers (peak 1.5 GB) and stalled on 1 GB ones, paused at 0.81 GB
# (benchmarks/bench_dask_stream.py); this estimate separates the two.


# Dask's workers start with MALLOC_TRIM_THRESHOLD_ set, which also fixes glibc's mmap threshold
# at 128 kB (it adapts otherwise): every larger temporary of a kernel's row chunk is then mapped,
# faulted in page by page and unmapped again, chunk after chunk (a Gaussian-mixture EM block:
# 46 ms in a task instead of 13). Kernels run with this threshold instead (see tune_malloc).
MMAP_THRESHOLD = 8 << 20
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_malloc_tuned = False


def tune_malloc() -> None:
    """Once per process, on Linux where the environment sets ``MALLOC_TRIM_THRESHOLD_`` (as Dask's
    nanny does for its workers) and not ``MALLOC_MMAP_THRESHOLD_``: allocations below
    :data:`MMAP_THRESHOLD` come from malloc's heap instead of a fresh mapping each. Freed memory
    is still trimmed (the trim threshold is left as set). Set ``MALLOC_MMAP_THRESHOLD_`` in the
    workers' environment to keep a threshold of your own."""
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    if not sys.platform.startswith("linux") or "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    import ctypes

    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the process's C library (musl: a no-op)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def _run_kernel(kernel: Callable, *args: Any) -> Any:
    """A kernel task of :func:`map_reduce`: the process's malloc tuned first (:func:`tune_malloc`)."""
    tune_malloc()
    return kernel(*args)


def is_dask_collection(x: Any) -> bool:
    """Whether x is a Dask collection, without importing Dask when nothing has loaded it (a Dask
    collection cannot exist before ``dask`` is imported)."""
    if "dask" not in sys.modules:
        return False
    import dask

    return bool(dask.is_dask_collection(x))


def on_worker() -> None:
    """What a kernel that compiles calls first: on a worker process, the persistent compilation
    cache from ``KULLBACK_CACHE_DIR``, as ``import kullback`` users get it (once per process)."""
    from .. import _cache_once

    _cache_once()


def as_block(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """A block as the kernels read it: C-contiguous and aligned, float64 unless told. A block
    deserialised from a task graph or sent by another worker can start at an address that is
    not a multiple of its item size, and NumPy and BLAS then run several times slower on it
    (a logistic pass over 125,000 × 50 rows: 80 ms instead of 24): such a block is copied."""
    return np.require(x, dtype=dtype, requirements=["C", "A"])


def block_weights(w: Any, m: int) -> np.ndarray:
    """A block's sample weights as float64 (all 1 when ``w`` is None), checked finite and non-negative."""
    if w is None:
        return np.ones(m)
    w = as_block(w).reshape(-1)
    if not np.all(np.isfinite(w)):
        raise ValueError(f"Expected sample_weight to be finite; it has {int(np.sum(~np.isfinite(w)))} NaN or infinite entries.")
    if np.any(w < 0):
        raise ValueError(f"Expected sample_weight to be non-negative; its smallest entry is {w.min():.6g}.")
    return w


def tree_add(a: Any, b: Any) -> Any:
    """The default combine: leaf-by-leaf sum of two pytrees of the same structure (``None``
    leaves stay ``None``)."""
    if a is None:
        return None
    if isinstance(a, dict):
        return {k: tree_add(a[k], b[k]) for k in a}
    if isinstance(a, (tuple, list)):
        return type(a)(tree_add(u, v) for u, v in zip(a, b))
    return np.add(a, b)


def _combine_many(combine: Callable, *parts: Any) -> Any:
    return reduce(combine, parts)


def _unknown_chunks(name: str) -> ValueError:
    return ValueError(
        f"Expected {name} to have known chunk sizes along its rows; they are unknown (NaN), as after "
        f"a boolean mask or DataFrame.values. Call {name}.compute_chunk_sizes() first, or build it "
        "with DataFrame.to_dask_array(lengths=True)."
    )


def as_dask_array(x: Any, name: str) -> Any:
    """A dask array of x, rows in chunks, one chunk across the columns; DataFrames and Series
    one block per partition, their lengths from Parquet metadata where dask can (else one pass
    over the partitions to count rows)."""
    import dask.array as da

    if hasattr(x, "to_dask_array"):
        # optimised first: dask-expr may fuse small Parquet partitions when few columns are read,
        # and the row counts must be those of the partitions the array is built from
        x = x.optimize() if hasattr(x, "optimize") else x
        _check_partition_memory(x, name)  # before counting: the count reads rows where metadata cannot
        x = _frame_array(x, _partition_lengths(x))  # row_blocks checks the largest block of all arrays
    elif not isinstance(x, da.Array):
        x = da.asarray(x)
    if x.ndim and any(np.isnan(c) for c in x.chunks[0]):
        raise _unknown_chunks(name)
    if x.ndim == 2 and len(x.chunks[1]) > 1:
        x = x.rechunk({1: -1})
    return x


def _worker_memory(dask_worker: Any = None) -> tuple:
    """On a worker (``Client.run``): (its resident bytes, memory_limit, the fraction of it at which
    it stops taking tasks, whether the kernels' runtime is loaded there: JAX, which the kernels
    import, not just kullback, which unpickling this function imports)."""
    import psutil

    manager = dask_worker.memory_manager
    fraction = manager.memory_pause_fraction or None
    return psutil.Process().memory_info().rss, manager.memory_limit, fraction, "jax" in sys.modules


def _gb(b: float) -> str:
    return f"{b / 1e9:.2f} GB" if b >= 1e9 else f"{b / 1e6:.3g} MB"


def _client() -> Any:
    """The current distributed client, or None (no client: a local scheduler, nothing paused)."""
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


def check_worker_memory(block_bytes: float, rows: int, row_bytes: float, name: str, frame: bool = False) -> None:
    """Fail at the start, not stall later: each worker of the current distributed client must
    hold about :data:`BLOCKS_IN_FLIGHT` row blocks and kullback's runtime below the memory at
    which Dask pauses it (a paused worker takes no tasks, and a fit then waits forever).

    Nothing is checked without a distributed client or on workers without a memory limit.

    Args:
        block_bytes: the largest row block's size (as the kernels hold it: float64 for the fits);
            rows: its rows; row_bytes: its bytes per row.
        name: the first argument's name, for the error; frame: whether it is a DataFrame
            (the error then suggests ``repartition`` rather than ``rechunk``).
    """
    client = _client()
    if client is None:
        return
    for address, (rss, limit, fraction, loaded) in client.run(_worker_memory).items():
        if not limit or not fraction:
            continue
        room = fraction * limit - rss - (0.0 if loaded else RUNTIME_BYTES)
        if BLOCKS_IN_FLIGHT * block_bytes <= room:
            continue
        fits = int(max(room, 0.0) // (BLOCKS_IN_FLIGHT * row_bytes))
        how = (f"{name}.repartition(partition_size=\"{max(fits * row_bytes / 1e6, 1):.0f}MB\")" if frame
               else f"{name}.rechunk({{0: {fits}}})")
        smaller = f"blocks of at most {fits} rows ({how}, or smaller Parquet files), or " if fits else ""
        raise ValueError(
            f"Expected the row blocks of {name} to fit the Dask workers' memory: worker {address} has "
            f"memory_limit {_gb(limit)} and pauses at {fraction:.0%} of it ({_gb(fraction * limit)}), uses "
            f"{_gb(rss)}{'' if loaded else f' and needs about {_gb(RUNTIME_BYTES)} more for kullback'}, "
            f"so it cannot hold {BLOCKS_IN_FLIGHT} blocks of {rows} rows ({_gb(block_bytes)} each) at once; "
            f"a paused worker would stall the computation. Use {smaller}workers with a larger "
            f"memory_limit (at least {_gb((BLOCKS_IN_FLIGHT * block_bytes + rss + RUNTIME_BYTES) / fraction)})."
        )


def _partition_lengths(frame: Any) -> tuple[int, ...]:
    """A DataFrame's rows per partition, in one computation of their lengths: dask-expr answers
    them from Parquet metadata without reading the rows where it can (32 files, 4.44 GB: 0.8 s,
    where ``to_dask_array(lengths=True)`` reads every partition: 9.4 s), and reads them otherwise."""
    import dask

    return tuple(int(v) for v in dask.compute(*[frame.partitions[i].shape[0] for i in range(frame.npartitions)]))


def _partition_values(part: Any, rows: int) -> np.ndarray:
    """A partition's values in row order (C-contiguous: pandas gives the columns' order, which
    every kernel would copy again on every pass), checked to have the rows its length said (a
    block of other rows would pair them with the wrong labels)."""
    values = np.ascontiguousarray(part.to_numpy())
    if values.shape[0] != rows:
        raise ValueError(f"Expected a DataFrame partition of {rows} rows, as its length said; it has {values.shape[0]}.")
    return values


def _frame_array(frame: Any, lengths: tuple[int, ...]) -> Any:
    """The dask array of a DataFrame's or Series' values, one block per partition of
    ``lengths`` rows, built from the partitions themselves (``to_dask_array(lengths=...)`` can
    lower a Parquet read to other partitions than it counted, and its blocks then go missing)."""
    import dask.array as da
    from dask import compute, delayed

    parts = frame.to_delayed()
    if len(parts) != len(lengths):  # partitioned otherwise than counted: count these
        lengths = tuple(int(v) for v in compute(*[delayed(len)(p) for p in parts]))
    dtype = frame._meta.to_numpy().dtype
    columns = () if frame.ndim == 1 else (len(frame.columns),)
    blocks = [da.from_delayed(delayed(_partition_values)(p, n), shape=(n, *columns), dtype=dtype)
              for p, n in zip(parts, lengths)]
    return da.concatenate(blocks) if blocks else da.zeros((0, *columns), dtype=dtype)


def _check_partition_memory(frame: Any, name: str) -> None:
    """:func:`check_worker_memory` for a DataFrame's first partition (one length to compute),
    before anything reads them all (a worker can pause in the first pass already)."""
    if frame.npartitions == 0 or _client() is None:
        return
    dtypes = [frame.dtype] if frame.ndim == 1 else list(frame.dtypes)
    row_bytes = float(sum(max(np.dtype(t).itemsize, 8) if isinstance(t, np.dtype) else 8 for t in dtypes))
    rows = len(frame.partitions[0])
    check_worker_memory(rows * row_bytes, rows, row_bytes, name, frame=True)


def row_blocks(arrays: dict[str, Any]) -> list[tuple]:
    """The arrays' blocks of the same rows, as tuples of delayed NumPy blocks (``None`` stays
    ``None``): all rechunked along their rows as the first one.

    Args:
        arrays: name → dask collection (or ``None``), the first one sets the row chunks; names
            appear in the errors.
    """
    named = {k: (None if v is None else as_dask_array(v, k)) for k, v in arrays.items()}
    first_name = next(iter(named))
    rows = named[first_name].chunks[0]
    n = sum(rows)
    columns = []
    for name, x in named.items():
        if x is None:
            columns.append(None)
            continue
        if x.ndim == 0 or x.shape[0] != n:
            shape = () if x.ndim == 0 else x.shape
            raise ValueError(f"Expected {name} to have one entry per row of {first_name} ({n}); got shape {shape}.")
        if x.chunks[0] != rows:
            x = x.rechunk({0: rows})
        delayed = x.to_delayed()
        columns.append(list(delayed.reshape(delayed.shape[0], -1)[:, 0]))
    row_bytes = sum(max(x.dtype.itemsize, 8) * math.prod(x.shape[1:]) for x in named.values() if x is not None)
    check_worker_memory(max(rows, default=0) * row_bytes, max(rows, default=0), row_bytes, first_name)
    return [tuple(None if c is None else c[i] for c in columns) for i in range(len(rows))]


def map_reduce(
    kernel: Callable, blocks: list[tuple], *args: Any, combine: Callable = tree_add,
    split_every: int = SPLIT_EVERY,
) -> Any:
    """One pass: ``kernel(*block, *args)`` per row block, combined in a tree, computed.

    Args:
        kernel: a module-level function returning a pytree of float64 sums.
        blocks: tuples of delayed blocks, from :func:`row_blocks`.
        args: small NumPy values passed to every kernel call (θ, a step, options).
        combine: associative combine of two kernel results.
        split_every: results combined per task.

    Returns:
        The combined result, on the client (the caller finalizes it).
    """
    import dask
    from dask import delayed

    name = getattr(kernel, "__name__", "kernel")  # the tasks' keys name the kernel, not the wrapper
    parts = [delayed(_run_kernel, pure=False)(kernel, *block, *args, dask_key_name=f"{name}-{uuid.uuid4().hex}")
             for block in blocks]
    while len(parts) > 1:
        parts = [
            delayed(_combine_many, pure=False)(combine, *parts[i:i + split_every])
            for i in range(0, len(parts), split_every)
        ]
    (total,) = dask.compute(parts[0])
    return total


def block_moments(x: np.ndarray, s: np.ndarray) -> tuple:
    """(Σ s, Σ s x / Σ s, Σ s (x − mean)(x − mean)ᵀ) of one block: rows x of shape (m,) or (m, d)."""
    total = float(s.sum())
    mean = (s @ x) / total if total > 0 else np.zeros(x.shape[1:])
    centred = x - mean
    scatter = float(s @ np.square(centred)) if x.ndim == 1 else centred.T @ (s[:, None] * centred)
    return total, mean, scatter


def merge_moments(a: tuple, b: tuple) -> tuple:
    """Chan et al.'s pairwise update of two blocks' moments (associative)."""
    (wa, ma, qa), (wb, mb, qb) = a, b
    total = wa + wb
    if not total > 0:
        return a
    delta = mb - ma
    return total, ma + delta * (wb / total), qa + qb + np.multiply.outer(delta, delta) * (wa * wb / total)
