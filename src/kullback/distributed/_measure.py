"""``kb.kl`` / ``kb.cross_entropy`` / ``kb.entropy`` and ``kb.logits.*`` on Dask arrays chunked along rows.

Each block of rows (the outcome or vocabulary axis whole within a block) goes through the
in-memory function, its rows padded to a bucket size by copies of its first row (so that blocks
of other sizes reuse one compiled program; the copies are sliced off), so validation, stable
forms and masks are the in-memory ones; a float64
block is computed in float64 whatever the worker's jax x64 flag says (the result's dtype
follows the input). Per-row values stay lazy (a dask array of the batch shape, by
``map_blocks``); ``reduction="mean" | "sum"`` (and the logits' ``"batchmean"``) add them by Dask's
tree reduction in float64 and return a number (a NumPy float64), as the in-memory scalar. The
probability measures take ``reduction=`` on Dask arrays only (in memory they return the per-row
array, and ``.mean()`` of it is the reduction): on Dask the reduction saves a second pass.
"""

from __future__ import annotations

import functools
import importlib
import math
from typing import Any, Callable

import numpy as np

from ._protocol import as_dask_array, check_worker_memory, is_dask_collection, on_worker

__all__ = ["dask_dispatch"]

_PROBABILITIES = "kullback.measure._api"  # kl(p, q, *, axis, base, normalize, where)
_LOGITS = "kullback.measure._logits"  # kl(logits_p, logits_q, *, axis, temperature, where, reduction, base, ...)
_PROBABILITY_REDUCTIONS = ("none", "mean", "sum")  # kb.kl/cross_entropy/entropy on Dask: over every batch entry


def _block_values(*blocks: np.ndarray, module: str, function: str, num_arrays: int, options: dict) -> np.ndarray:
    """The in-memory measure of one block of rows (module-level: pickled by reference)."""
    import jax

    from ..fit._buckets import bucket_size

    on_worker()
    fn = getattr(importlib.import_module(module), function)
    m = blocks[0].shape[0]
    if m == 0:
        return np.zeros(blocks[0].shape[:-1], dtype=np.result_type(blocks[0].dtype, np.float32))
    pad = bucket_size(m) - m  # rows padded by copies of row 0: one compiled program for most blocks
    blocks = [np.concatenate([b, np.broadcast_to(b[:1], (pad, *b.shape[1:]))]) if pad else b for b in blocks]
    arrays, rest = blocks[:num_arrays], blocks[num_arrays:]
    if rest:  # the logits' row mask, carried with a trailing axis of length 1
        options = {**options, "where": np.asarray(rest[0])[..., 0]}
    wide = any(np.asarray(a).dtype == np.float64 for a in arrays)
    with jax.enable_x64(wide):
        return np.asarray(getattr(fn, "__wrapped__", fn)(*arrays, **options))[:m]


def _rows_last(x: Any, name: str, axis: int) -> Any:
    x = as_dask_array(x, name)
    if x.ndim < 2:
        raise ValueError(f"Expected {name} to have rows and outcomes, shape (n, ..., k); got shape {x.shape}.")
    x = x if axis in (-1, x.ndim - 1) else x.swapaxes(axis, -1)
    return x.rechunk({x.ndim - 1: -1})


def _lazy(module: str, name: str, arrays: list, names: list[str], options: dict, where: Any) -> Any:
    import dask.array as da

    axis = options.pop("axis", -1)
    xs = [_rows_last(a, n, axis) for a, n in zip(arrays, names)]
    for other, n in zip(xs[1:], names[1:]):
        if other.shape != xs[0].shape:
            raise ValueError(f"Expected {names[0]} and {n} to have the same shape; got {xs[0].shape} and {other.shape}.")
    xs = [xs[0]] + [x.rechunk(xs[0].chunks) for x in xs[1:]]
    batch_chunks = xs[0].chunks[:-1]
    extra = []
    if where is not None:  # a row mask: the batch shape, chunked as the rows
        mask = as_dask_array(where, "where")
        if mask.shape != xs[0].shape[:-1]:
            raise ValueError(f"Expected where to have the batch shape {xs[0].shape[:-1]}; got shape {mask.shape}.")
        extra = [mask.rechunk(batch_chunks)[..., None]]
    dtype = np.result_type(*[x.dtype for x in xs], np.float32)
    rows = max(batch_chunks[0], default=0) if batch_chunks else 1
    row_bytes = math.prod(max(c, default=0) for c in batch_chunks[1:]) * sum(
        x.shape[-1] * x.dtype.itemsize for x in xs)
    check_worker_memory(rows * row_bytes, rows, row_bytes, names[0])
    return da.map_blocks(_block_values, *xs, *extra, module=module, function=name, num_arrays=len(xs), options=options,
                         dtype=dtype, drop_axis=xs[0].ndim - 1, chunks=batch_chunks)


def _reduced(values: Any, where: Any, reduction: str) -> np.float64:
    """As ``measure._logits._reduce``, over a lazy array of per-row values (masked rows are 0)."""
    import dask
    import dask.array as da

    total = values.astype(np.float64).sum(split_every=8)
    if reduction == "sum":
        return np.float64(total.compute())
    if reduction == "batchmean":
        return np.float64(total.compute()) / values.shape[0]
    count = values.size if where is None else da.count_nonzero(as_dask_array(where, "where"))
    s, c = dask.compute(total, count)
    return np.float64(s) / max(int(c), 1)


def dask_dispatch(module: str, name: str, num_arrays: int) -> Callable:
    """A decorator for a public measure: Dask arrays go to the per-block form above, anything
    else to the function unchanged (no Dask import unless Dask is loaded)."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def dispatch(*args: Any, **kwargs: Any) -> Any:
            arrays = args[:num_arrays]
            if not any(is_dask_collection(a) for a in (*arrays, kwargs.get("where"))):
                return fn(*args, **kwargs)
            if len(args) != num_arrays:
                raise TypeError(f"{name}() takes {num_arrays} positional arguments; pass the options by keyword.")
            names = ["logits_p", "logits_q"][:num_arrays] if module == _LOGITS else ["p", "q"][:num_arrays]
            options = dict(kwargs)
            where = options.pop("where", None)
            reduction = options.pop("reduction", "none")
            if module == _PROBABILITIES:
                if reduction not in _PROBABILITY_REDUCTIONS:
                    raise ValueError(f"Expected reduction to be one of {_PROBABILITY_REDUCTIONS}; got {reduction!r}.")
                if is_dask_collection(where):
                    raise NotImplementedError(
                        f"kb.{name} on Dask arrays takes where= as a NumPy mask of outcomes (broadcast to every "
                        "block), not a Dask array."
                    )
                if where is not None:
                    options["where"] = where
                values = _lazy(module, name, list(arrays), names, options, None)
                return values if reduction == "none" else _reduced(values, None, reduction)
            # the logits' own check of temperature and reduction, at the call rather than inside a task
            from ..measure._logits import _check_options

            _check_options(options.get("temperature", 1.0), reduction)
            values = _lazy(module, name, list(arrays), names, options, where)
            return values if reduction == "none" else _reduced(values, where, reduction)

        return dispatch

    return decorate
