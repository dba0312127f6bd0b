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
    coefficient: Any = None  # the control-variate coefficient, when one was used
    target_met: bool | None = None  # rtol/atol target reached (None: no target)
    rounds: int = 1


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


def _streams(kind: str, p: Any, q: Any, x: jax.Array, control_variate: bool) -> jax.Array:
    """Per-draw values, stacked on a leading axis: [v] or, with the control variate, [v, r − 1]."""
    v = _values(kind, p, q, x)
    if not control_variate:
        return v[None]
    r_minus_1 = jnp.expm1(-jnp.where(v == jnp.inf, 0.0, v))  # r = q/p, E_p[r] = 1
    return jnp.stack([v, r_minus_1])


def _moments(
    kind: str, p: Any, q: Any, key: jax.Array, num_samples: int, chunk_size: int, control_variate: bool = False
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(count, means (S, ...), co-moments (S, S, ...), saw_inf) of S value streams over the draws."""
    num_chunks = -(-num_samples // chunk_size)
    keys = jax.random.split(key, num_chunks)

    Carry = tuple[jax.Array, jax.Array, jax.Array, jax.Array]

    def step(carry: Carry, inputs: tuple[jax.Array, jax.Array]) -> tuple[Carry, None]:
        count, mean, comoment, saw_inf = carry
        k, index = inputs
        v = _streams(kind, p, q, _draw(p, q, k, chunk_size), control_variate)
        mask = (index * chunk_size + jnp.arange(chunk_size)) < num_samples
        mask = mask.reshape((1, chunk_size) + (1,) * (v.ndim - 2))
        inf = v[0] == jnp.inf  # q = 0 where p > 0: the whole expectation is +inf
        saw_inf = saw_inf | jnp.any(mask[0] & inf, axis=0)
        v = jnp.where(jnp.isinf(v), 0.0, v)
        n_b = jnp.sum(mask).astype(v.dtype)
        mean_b = jnp.sum(jnp.where(mask, v, 0.0), axis=1) / n_b
        dev = jnp.where(mask, v - mean_b[:, None], 0.0)
        total = count + n_b
        delta = mean_b - mean
        mean = mean + delta * (n_b / total)
        outer = jnp.einsum("s n ..., t n ... -> s t ...", dev, dev)
        comoment = comoment + outer + delta[:, None] * delta[None, :] * (count * n_b / total)
        return (total, mean, comoment, saw_inf), None

    v0 = jax.eval_shape(lambda k: _streams(kind, p, q, _draw(p, q, k, 1), control_variate), key)
    s, batch = v0.shape[0], v0.shape[2:]
    init = (
        jnp.zeros((), v0.dtype),
        jnp.zeros((s,) + batch, v0.dtype),
        jnp.zeros((s, s) + batch, v0.dtype),
        jnp.zeros(batch, bool),
    )
    (count, mean, comoment, saw_inf), _ = lax.scan(step, init, (keys, jnp.arange(num_chunks)))
    return count, mean, comoment, saw_inf


def merge(a: tuple, b: tuple) -> tuple:
    """Merge two ``(count, means, co-moments, saw_inf)`` summaries (Chan's pairwise update)."""
    n_a, m_a, c_a, i_a = a
    n_b, m_b, c_b, i_b = b
    total = n_a + n_b
    delta = m_b - m_a
    mean = m_a + delta * (n_b / total)
    comoment = c_a + c_b + delta[:, None] * delta[None, :] * (n_a * n_b / total)
    return total, mean, comoment, i_a | i_b


def finish(summary: tuple) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """(mean, standard error, control-variate coefficient or None) from a summary.

    With the control variate the estimate is mean(v) + c·mean(r − 1), c = −Cov(v, r)/Var(r)
    (the variance-minimising coefficient, estimated from the same draws), and its standard error
    is √(Var(v + c r)/n).
    """
    count, mean, comoment, saw_inf = summary
    if mean.shape[0] == 1:
        value, m2, coef = mean[0], comoment[0, 0], None
    else:
        var_r = comoment[1, 1]
        coef = jnp.where(var_r > 0, -comoment[0, 1] / jnp.where(var_r > 0, var_r, 1.0), 0.0)
        value = mean[0] + coef * mean[1]
        m2 = jnp.maximum(comoment[0, 0] + 2.0 * coef * comoment[0, 1] + coef * coef * var_r, 0.0)
    stderr = jnp.sqrt(m2 / (count - 1.0) / count) if float(count) > 1 else jnp.full_like(value, jnp.inf)
    return jnp.where(saw_inf, jnp.inf, value), jnp.where(saw_inf, 0.0, stderr), coef


_moments_jit = jax.jit(_moments, static_argnames=("kind", "num_samples", "chunk_size", "control_variate"))


def _chunk_size(p: Any, q: Any, num_samples: int, chunk_size: int | None) -> int:
    if chunk_size is not None:
        return min(chunk_size, num_samples)
    shapes = [getattr(d, "batch_shape", ()) + getattr(d, "event_shape", ()) for d in (p, q) if d is not None]
    per_draw = max(1, max(math.prod(s) for s in shapes))
    return max(1, min(num_samples, _CHUNK_ELEMENTS // per_draw))


def moments(
    kind: str,
    p: Any,
    q: Any | None,
    key: Any,
    *,
    num_samples: int,
    chunk_size: int | None = None,
    control_variate: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
    max_num_samples: int | None = None,
) -> MonteCarloResult:
    """Mean and standard error of the per-draw values of ``kind`` over draws of p.

    Without a target, exactly ``num_samples`` draws. With ``rtol`` and/or ``atol``, rounds of
    ``num_samples`` draws (fresh keys, one compiled program) are merged until every batch entry
    has stderr ≤ max(atol, rtol·|mean|) or ``max_num_samples`` draws are spent.
    """
    chunk = _chunk_size(p, q, num_samples, chunk_size)
    pytrees = isinstance(p, Distribution) and (q is None or isinstance(q, Distribution))
    run = _moments_jit if pytrees else _moments
    summary = run(kind, p, q, key, num_samples, chunk, control_variate)
    mean, stderr, coef = finish(summary)
    if rtol is None and atol is None:
        return MonteCarloResult(mean, stderr, num_samples, chunk, coef)
    budget = max(num_samples, max_num_samples or 100 * num_samples)
    drawn, rounds = num_samples, 1

    def met(mean: jax.Array, stderr: jax.Array) -> bool:
        goal = jnp.maximum(0.0 if atol is None else atol, (0.0 if rtol is None else rtol) * jnp.abs(mean))
        return bool(jnp.all((stderr <= goal) | jnp.isinf(mean)))

    while not met(mean, stderr) and drawn + num_samples <= budget:
        key = jax.random.fold_in(key, rounds)
        summary = merge(summary, run(kind, p, q, key, num_samples, chunk, control_variate))
        mean, stderr, coef = finish(summary)
        drawn, rounds = drawn + num_samples, rounds + 1
    return MonteCarloResult(mean, stderr, drawn, chunk, coef, met(mean, stderr), rounds)
