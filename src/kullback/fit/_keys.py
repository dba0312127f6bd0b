"""Randomness from an explicit key: an int seed or a jax.random key."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["as_key"]


def as_key(key: Any) -> jax.Array | None:
    """A jax.random key from an int seed or a key (None stays None)."""
    if key is None:
        return None
    if isinstance(key, (int,)) and not isinstance(key, bool):
        if 0 <= key < 2**32 and jax.config.jax_default_prng_impl == "threefry2x32" and not jax.config.jax_enable_custom_prng:
            # PRNGKey(seed) is [0, seed] for these seeds: built without compiling jax's seeding program
            return jax.device_put(np.array([0, key], dtype=np.uint32))
        return jax.random.PRNGKey(key)
    try:
        arr = jnp.asarray(key)
    except TypeError as err:
        raise TypeError(f"Expected key to be an int seed or a jax.random key; got {type(key).__name__}.") from err
    if jnp.issubdtype(arr.dtype, jax.dtypes.prng_key) or (arr.dtype == jnp.uint32 and arr.shape == (2,)):
        return arr
    raise TypeError(f"Expected key to be an int seed or a jax.random key; got an array {arr.dtype}{arr.shape}.")
