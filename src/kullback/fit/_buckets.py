"""Rows padded to a ladder of sizes, so that compiled programs are reused across data sizes.

A program compiled for an array of n rows is compiled again for n + 1. Programs that take all
rows at once see them padded to the next power of two (at least ``MIN_BUCKET``) with weight-0
copies of the first row: finite and inside the support, so values and gradients stay finite and
every weighted sum is unchanged. A new data size then reuses a compiled program unless it
crosses a power of two (at most 2× the rows, 1.4× on average).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = ["bucket_size", "pad_rows", "MIN_BUCKET"]

MIN_BUCKET = 1024


def bucket_size(n: int) -> int:
    """The padded row count for n rows: the next power of two ≥ max(n, MIN_BUCKET)."""
    return max(MIN_BUCKET, 1 << max(0, int(n) - 1).bit_length())


def pad_rows(data: Any, weights: Any) -> tuple[jax.Array, jax.Array]:
    """(rows, weights) padded to ``bucket_size(n)`` rows, the extra rows copies of row 0 with
    weight 0, as device arrays."""
    host, w = np.asarray(data), np.asarray(weights)
    n = host.shape[0]
    pad = bucket_size(n) - n
    if pad:
        host = np.concatenate([host, np.broadcast_to(host[:1], (pad, *host.shape[1:]))])
        w = np.concatenate([w, np.zeros(pad, w.dtype)])
    return jax.device_put(host), jax.device_put(w)
