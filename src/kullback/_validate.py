"""Checks at the public boundary: each error names the argument and what was expected.

Checks run on concrete values only. Inside ``jax.jit`` (tracers) they are skipped: the caller
vouches for traced inputs, as with any jitted function.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "is_traced",
    "as_float_array",
    "check_probabilities",
    "check_probability_stats",
    "check_same_shape",
    "check_mask",
    "sum_tolerance",
]

_SUM_TOLERANCE = {
    np.dtype(np.float64): 1e-8,
    np.dtype(np.float32): 1e-4,
    np.dtype(np.float16): 1e-2,
}


def is_traced(*xs: Any) -> bool:
    """True if any argument is a JAX tracer (we are inside jit, grad or vmap)."""
    return any(isinstance(x, jax.core.Tracer) for x in xs)


def sum_tolerance(dtype: Any) -> float:
    """How far from 1 a probability vector of this dtype may sum: looser for fewer bits."""
    dtype = np.dtype(dtype)
    if dtype in _SUM_TOLERANCE:
        return _SUM_TOLERANCE[dtype]
    return 5e-2  # bfloat16 and other short floats


def as_float_array(x: Any, name: str) -> jax.Array:
    """Convert to a floating JAX array (integers become the default float dtype)."""
    if is_traced(x) or isinstance(x, jax.Array):
        arr = x
    else:
        try:
            # device_put, unlike asarray, aliases a 64-byte aligned NumPy array instead of copying
            arr = jax.device_put(x) if isinstance(x, np.ndarray) and x.dtype.kind == "f" else jnp.asarray(x)
        except (TypeError, ValueError) as err:
            raise TypeError(f"Expected {name} to be an array of numbers; got {type(x).__name__}.") from err
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        if jnp.issubdtype(arr.dtype, jnp.complexfloating):
            raise TypeError(f"Expected {name} to be real; got dtype {arr.dtype}.")
        arr = arr.astype(jnp.result_type(float))
    return arr


def check_mask(where: Any, name: str = "where") -> jax.Array:
    """A keep-mask as a boolean array: booleans as they are, integers only if every entry is 0 or 1.

    A traced integer mask is compared with 0 (its values cannot be checked inside jit). Floats and
    other dtypes are rejected: a float "mask" is more often a weight array passed by mistake.
    """
    mask = where if is_traced(where) or isinstance(where, jax.Array) else jnp.asarray(where)
    if mask.dtype == jnp.bool_:
        return mask
    if not jnp.issubdtype(mask.dtype, jnp.integer):
        raise TypeError(
            f"Expected {name} to be a boolean mask (or integers 0 and 1); got dtype {mask.dtype}."
        )
    if not is_traced(mask):
        host = np.asarray(mask)
        bad = (host != 0) & (host != 1)
        if bad.any():
            raise ValueError(
                f"Expected {name} to be a boolean mask (or integers 0 and 1); it has {int(bad.sum())} "
                f"other entries, e.g. {host[bad].flat[0]}."
            )
    return mask != 0


def _range(x: np.ndarray) -> str:
    return f"[{np.min(x):.6g}, {np.max(x):.6g}]"


def check_probabilities(
    x: Any, name: str, *, axis: int, normalize: bool = False, where: Any = None
) -> jax.Array:
    """Validate a probability array along ``axis`` and return it as a JAX float array.

    Expected: no NaN, no negative entry, and (unless ``normalize``) sums within a dtype-dependent
    tolerance of 1. With ``normalize=True`` non-negative finite counts are divided by their sum.
    With a boolean mask ``where`` (broadcastable to ``x``) only the kept entries are checked,
    summed and normalised; the others are left as they are.
    """
    arr = as_float_array(x, name)
    if arr.ndim == 0:
        raise ValueError(f"Expected {name} to have at least one axis (the outcomes); got a scalar.")
    if is_traced(arr) or is_traced(where):
        if normalize:
            kept = arr if where is None else jnp.where(where, arr, 0)
            arr = arr / jnp.sum(kept, axis=axis, keepdims=True)
        return arr
    host = np.asarray(arr)
    if host.dtype.itemsize < 4:  # short floats: check in float32
        host = host.astype(np.float32)
    if where is not None:
        try:
            host = np.where(np.asarray(check_mask(where)), host, 0)
        except ValueError as err:
            raise ValueError(
                f"Expected where to broadcast to the shape of {name}, {host.shape}; got shape {np.shape(where)}."
            ) from err
    try:
        sums = host.sum(axis=axis)
    except np.exceptions.AxisError as err:
        raise ValueError(f"axis={axis} is out of range for {name} with shape {host.shape}.") from err
    if host.size == 0:
        raise ValueError(f"Expected {name} to be non-empty; got shape {host.shape}.")
    lowest = host.min()  # NaN propagates through min and sum: two passes check all three things
    check_probability_stats(sums, lowest, name, axis=axis, dtype=arr.dtype, normalize=normalize, host=host)
    if normalize:
        return arr / jnp.asarray(np.expand_dims(sums, axis), dtype=arr.dtype)
    return arr


def check_probability_stats(
    sums: np.ndarray, lowest: Any, name: str, *, axis: int, dtype: Any, normalize: bool = False, host: Any = None
) -> None:
    """Raise the errors of :func:`check_probabilities` from precomputed sums along ``axis`` and the minimum.

    ``host`` (the values, NumPy) is read only to count NaN entries for the message.
    """
    if np.isnan(lowest) or np.isnan(sums).any():
        if host is None:
            raise ValueError(f"Expected {name} to contain no NaN.")
        raise ValueError(f"Expected {name} to contain no NaN; it has {int(np.isnan(np.asarray(host)).sum())} NaN entries.")
    if lowest < 0:
        raise ValueError(f"Expected {name} to be non-negative; its smallest entry is {lowest:.6g}.")
    if not np.isfinite(sums).all():
        raise ValueError(f"Expected {name} to be finite; it has infinite entries.")
    if normalize:
        if (sums <= 0).any():
            raise ValueError(f"Expected {name} to have a positive total along axis {axis} to normalize; some sums are 0.")
        return
    tol = sum_tolerance(dtype)
    if np.abs(sums - 1).max() > tol:
        raise ValueError(
            f"Expected {name} to sum to 1 along axis {axis} (within {tol:g} for {np.dtype(dtype)}); "
            f"got sums in {_range(sums)}. Pass normalize=True for counts or weights."
        )


def check_same_shape(
    p: jax.Array, q: jax.Array, *, axis: int, names: tuple[str, str] = ("p", "q")
) -> None:
    """p and q must agree on the event axis and broadcast against each other on the others."""
    a, b = names
    try:
        size_p, size_q = p.shape[axis], q.shape[axis]
    except IndexError as err:
        raise ValueError(f"axis={axis} is out of range for {a} {p.shape} or {b} {q.shape}.") from err
    if size_p != size_q:
        raise ValueError(
            f"Expected {a} and {b} to have the same number of outcomes along axis {axis}; "
            f"got {size_p} and {size_q} (shapes {p.shape} and {q.shape})."
        )
    try:
        jnp.broadcast_shapes(p.shape, q.shape)
    except ValueError as err:
        raise ValueError(
            f"Expected {a} and {b} to have broadcastable shapes; got {p.shape} and {q.shape}."
        ) from err
