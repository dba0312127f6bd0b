"""Flat draws on R^d and back to a pytree of arrays (a pytree target's or a model's sites)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Unravel"]


class Unravel:
    """Flat draws (..., d) -> the example's pytree, each leaf with the leading axes (hashable, by structure)."""

    def __init__(self, example: Any) -> None:
        with_paths, self.treedef = jax.tree_util.tree_flatten_with_path(example)
        leaves = [leaf for _, leaf in with_paths]
        self.names = tuple(jax.tree_util.keystr(path) for path, _ in with_paths)
        self.shapes = tuple(tuple(jnp.shape(a)) for a in leaves)
        self.sizes = tuple(int(np.prod(s, dtype=int)) for s in self.shapes)
        self.size = sum(self.sizes)

    def __call__(self, x: jax.Array) -> Any:
        lead = x.shape[:-1]
        splits = np.cumsum(self.sizes)[:-1].tolist()
        parts = jnp.split(x, splits, axis=-1) if splits else [x]
        return jax.tree.unflatten(self.treedef, [p.reshape(lead + s) for p, s in zip(parts, self.shapes)])

    def describe(self) -> str:
        """``['mu']: (), ['beta']: (3,)``: each leaf's path and shape."""
        return ", ".join(f"{name or 'x'}: {shape}" for name, shape in zip(self.names, self.shapes))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unravel) and (self.treedef, self.shapes) == (other.treedef, other.shapes)

    def __hash__(self) -> int:
        return hash((Unravel, self.treedef, self.shapes))
