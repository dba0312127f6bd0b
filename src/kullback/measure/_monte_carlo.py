"""Monte Carlo estimates of KL, cross-entropy and entropy from draws of p.

With x_1..x_n ~ p and v_i = log p(x_i) − log q(x_i) (KL), −log q(x_i) (cross-entropy) or
−log p(x_i) (entropy), the estimate is the mean v̄ and its standard error s/√n (s the sample
standard deviation, ddof = 1). Draws are made and reduced in chunks inside one ``lax.scan``, so
memory stays bounded for any ``num_samples``; chunk moments are merged with Chan's pairwise
update (no sum-of-squares cancellation).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpyro.distributions import Distribution

__all__ = ["MonteCarloResult", "as_key", "moments", "DEFAULT_NUM_SAMPLES"]

DEFAULT_NUM_SAMPLES = 100_000
_CHUNK_ELEMENTS = 1 << 20  # values per chunk (draws × batch × event): about 8 MB in float64


class MonteCarloResult(NamedTuple):
    mean: jax.Array
    stderr: jax.Array
    num_samples: int
    chunk_size: int


def as_key(key: Any, *, purpose: str = "Monte Carlo estimate") -> jax.Array:
    """A jax PRNG key from an int seed or a key; a clear error when it is missing."""
    if key is None:
        raise ValueError(
            f"Expected key (an int seed or a jax.random key) for the {purpose}; got None. "
            "Pass key=0 or key=jax.random.key(0)."
        )
    if isinstance(key, (bool, np.bool_)):
        raise TypeError(f"Expected key to be an int seed or a jax.random key; got {type(key).__name__}.")
    if isinstance(key, (int, np.integer)):
        return jax.random.PRNGKey(int(key))
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key) if key.shape == () else _bad_key(key)
    arr = jnp.asarray(key) if isinstance(key, (jax.Array, np.ndarray)) else None
    if arr is not None and arr.dtype == jnp.uint32 and arr.shape == (2,):
        return arr
    return _bad_key(key)


def _bad_key(key: Any) -> jax.Array:
    shape = getattr(key, "shape", None)
    raise TypeError(
        "Expected key to be an int seed or a single jax.random key; got "
        f"{type(key).__name__}" + ("" if shape is None else f" of shape {shape}") + "."
    )


def _log_density(d: Any, x: jax.Array) -> jax.Array:
    """log d(x), and −inf outside d's support (numpyro does not mask it under jit)."""
    log_d = d.log_prob(x)
    support = getattr(d, "support", None)
    if support is None or not hasattr(support, "check"):
        return log_d
    return jnp.where(support.check(x), log_d, -jnp.inf)


def _values(kind: str, p: Any, q: Any, x: jax.Array) -> jax.Array:
    log_p = p.log_prob(x) if kind != "cross_entropy" else None
    if kind == "entropy":
        return -log_p
    log_q = _log_density(q, x)
    return -log_q if kind == "cross_entropy" else log_p - log_q


def _draw(p: Any, q: Any, key: jax.Array, n: int) -> jax.Array:
    """n draws of p, with singleton axes so that they broadcast against q's larger batch shape."""
    x = p.sample(key, (n,))
    batch_p = tuple(getattr(p, "batch_shape", ()))
    extra = len(getattr(q, "batch_shape", ())) - len(batch_p) if q is not None else 0
    if extra <= 0:
        return x
    return x.reshape((n,) + (1,) * extra + x.shape[1:])


def _moments(
    kind: str, p: Any, q: Any, key: jax.Array, num_samples: int, chunk_size: int
) -> tuple[jax.Array, jax.Array]:
    num_chunks = -(-num_samples // chunk_size)
    keys = jax.random.split(key, num_chunks)

    Carry = tuple[jax.Array, jax.Array, jax.Array, jax.Array]

    def step(carry: Carry, inputs: tuple[jax.Array, jax.Array]) -> tuple[Carry, None]:
        count, mean, m2, saw_inf = carry
        k, index = inputs
        v = _values(kind, p, q, _draw(p, q, k, chunk_size))
        mask = (index * chunk_size + jnp.arange(chunk_size)) < num_samples
        mask = mask.reshape((chunk_size,) + (1,) * (v.ndim - 1))
        inf = v == jnp.inf  # q = 0 where p > 0: the whole expectation is +inf
        saw_inf = saw_inf | jnp.any(mask & inf, axis=0)
        v = jnp.where(inf, 0.0, v)
        n_b = jnp.sum(mask).astype(v.dtype)
        mean_b = jnp.sum(jnp.where(mask, v, 0.0), axis=0) / n_b
        dev = jnp.where(mask, v - mean_b, 0.0)
        total = count + n_b
        delta = mean_b - mean
        mean = mean + delta * (n_b / total)
        m2 = m2 + jnp.sum(dev * dev, axis=0) + delta * delta * (count * n_b / total)
        return (total, mean, m2, saw_inf), None

    v0 = jax.eval_shape(lambda k: _values(kind, p, q, _draw(p, q, k, 1)), key)
    zeros = jnp.zeros(v0.shape[1:], v0.dtype)
    init = (jnp.zeros((), v0.dtype), zeros, zeros, jnp.zeros(v0.shape[1:], bool))
    (count, mean, m2, saw_inf), _ = lax.scan(step, init, (keys, jnp.arange(num_chunks)))
    if num_samples > 1:
        stderr = jnp.sqrt(m2 / (count - 1.0) / count)
    else:
        stderr = jnp.full_like(mean, jnp.inf)
    return jnp.where(saw_inf, jnp.inf, mean), jnp.where(saw_inf, 0.0, stderr)


_moments_jit = jax.jit(_moments, static_argnames=("kind", "num_samples", "chunk_size"))


def _chunk_size(p: Any, q: Any, num_samples: int, chunk_size: int | None) -> int:
    if chunk_size is not None:
        return min(chunk_size, num_samples)
    shapes = [getattr(d, "batch_shape", ()) + getattr(d, "event_shape", ()) for d in (p, q) if d is not None]
    per_draw = max(1, max(math.prod(s) for s in shapes))
    return max(1, min(num_samples, _CHUNK_ELEMENTS // per_draw))


def moments(
    kind: str, p: Any, q: Any | None, key: Any, *, num_samples: int, chunk_size: int | None = None
) -> MonteCarloResult:
    """Mean and standard error of the per-draw values of ``kind`` over ``num_samples`` draws of p."""
    chunk = _chunk_size(p, q, num_samples, chunk_size)
    pytrees = isinstance(p, Distribution) and (q is None or isinstance(q, Distribution))
    run = _moments_jit if pytrees else _moments
    mean, stderr = run(kind, p, q, key, num_samples, chunk)
    return MonteCarloResult(mean, stderr, num_samples, chunk)
