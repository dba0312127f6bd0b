"""Row-streamed KL, cross-entropy and entropy from logits, with frugal custom gradients.

Inputs are ``(N, V)`` logits (rows × vocabulary). A ``fori_loop`` visits blocks of ``B`` rows;
each block is sliced from the input inside the loop (no copy of the whole array), computed in
float32 (float64 for float64 input) and reduced to one number per row. Peak extra memory is a few
``(B, V)`` temporaries, never an extra ``(N, V)`` array. The last block is shifted back to end at
row ``N`` (it overlaps the previous one and rewrites identical values), so no padding copy is made.

The KL of a row, with s = logits_p / T, t = logits_q / T, w = exp(s − max s), W = Σ w,
c = Σ w (t − s) / W and x = t − s − c, is

    KL = log(1 + G / W),    G = Σ w φ(x),    φ(x) = eˣ − 1 − x ≥ 0,

exact (KL = log E_p[e^(x)] and E_p[x] = 0) and a sum of non-negative terms: no cancellation of
H(p, q) − H(p), so near-identical rows give small non-negative values in float32. When
max t − max s − c > 30 the sum is shifted by that amount against overflow.

Supports are read from the logits: a row with some finite s where t = −inf has KL and H(p, q)
+inf even where exp(s − max s) underflows to 0. A row whose logits are all −inf (in either
input) is no distribution and gives NaN; so does a NaN logit. The public functions turn those
NaNs into errors outside jit.

Gradients (``jax.custom_vjp``) are recomputed block by block from the inputs and two numbers
per row saved by the forward pass: ∂KL/∂s = −p x, ∂KL/∂t = q − p (then divided by T).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["streamed_kl", "streamed_cross_entropy", "streamed_entropy", "default_block"]

_BLOCK_ELEMENTS = 1 << 18  # entries per block and input: 1 MiB of float32
_SHIFT_ABOVE = 30.0
_SERIES_BELOW = 0.5


def default_block(num_rows: int, vocab: int) -> int:
    """Rows per block: about 2^18 entries, at least one row, at most all rows."""
    return max(1, min(num_rows, _BLOCK_ELEMENTS // max(vocab, 1)))


def _compute_dtype(dtype) -> jnp.dtype:
    return jnp.float64 if jnp.dtype(dtype) == jnp.float64 else jnp.float32


def _blocked(fn, arrays, rows, outs, block):
    """Apply ``fn(*array_blocks, *row_blocks) -> outputs`` over row blocks, writing into ``outs``."""
    n = arrays[0].shape[0]
    if block >= n:
        return tuple(r.astype(o.dtype) for o, r in zip(outs, fn(*arrays, *rows)))

    def body(i, outs):
        start = jnp.minimum(i * block, n - block)
        xs = [lax.dynamic_slice_in_dim(a, start, block, 0) for a in arrays]
        rs = [lax.dynamic_slice_in_dim(r, start, block, 0) for r in rows]
        res = fn(*xs, *rs)
        return tuple(lax.dynamic_update_slice_in_dim(o, r.astype(o.dtype), start, 0) for o, r in zip(outs, res))

    return lax.fori_loop(0, -(-n // block), body, tuple(outs))


def _softmax_parts(s):
    """max, weights w = exp(s − max) (0 at −inf), W = Σ w and log W, per row."""
    m = jnp.max(s, axis=-1, keepdims=True)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    w = jnp.exp(s - m)
    big_w = jnp.sum(w, axis=-1, keepdims=True)
    return m, w, big_w


def _phi_series(x):
    """φ(x) = Σ_{k≥2} x^k / k! for |x| < 0.5, terms to the precision of the dtype."""
    last = 16 if x.dtype == jnp.float64 else 9
    acc = jnp.zeros_like(x)
    for k in range(last, 1, -1):
        acc = acc * x + 1.0 / math.factorial(k)
    return acc * x * x


def _kl_rows(xp, xq, inv_t):
    s = xp.astype(_compute_dtype(xp.dtype)) * inv_t
    t = xq.astype(s.dtype) * inv_t
    m, w, big_w = _softmax_parts(s)
    live = w > 0
    d = jnp.where(live, t - s, 0.0)
    c = jnp.sum(w * d, axis=-1, keepdims=True) / big_w
    mt = jnp.max(t, axis=-1, keepdims=True)
    k = jnp.maximum(mt - m - c, 0.0)
    h = jnp.where(k > _SHIFT_ABOVE, k, 0.0)
    x = d - c
    small = live & (jnp.abs(x) < _SERIES_BELOW)
    scale = jnp.exp(-h)
    near = w * scale * _phi_series(jnp.where(small, x, 0.0))
    # far: w φ(x) = e^(t − c − m) − w (1 + x); where p underflows (w = 0) only q's share remains
    far = jnp.exp(jnp.where(small, 0.0, t - (c + m + h))) - w * scale * (1.0 + x)
    g = jnp.sum(jnp.where(small, near, far), axis=-1, keepdims=True)
    kl = jnp.where(h > 0, h + jnp.log(big_w * scale + g) - jnp.log(big_w), jnp.log1p(g / big_w))
    kl = jnp.where(jnp.isneginf(c) | jnp.isposinf(g) | _escapes(s, t), jnp.inf, jnp.maximum(kl, 0.0))
    kl = jnp.where(jnp.isneginf(mt) | (big_w == 0), jnp.nan, kl)  # an all −inf row is no distribution
    kl = jnp.where(jnp.isnan(mt) | jnp.isnan(big_w), jnp.nan, kl)  # a NaN logit: NaN, never inf
    return kl[..., 0], (m + jnp.log(big_w))[..., 0], c[..., 0]


def _escapes(s, t):
    """Per row: some p_i > 0 = q_i, read from the logits (s > −inf), not from exp(s − max), which
    underflows to 0 for s − max below about −745 (float64) or −104 (float32)."""
    return jnp.any((s > -jnp.inf) & (t == -jnp.inf), axis=-1, keepdims=True)


def _lse_rows(t):
    m, _, big_w = _softmax_parts(t)
    return m + jnp.log(big_w)


def _make(forward_rows, backward_rows, n_inputs):
    """custom_vjp function of ``n_inputs`` (N, V) logits with static temperature and block."""

    @functools.partial(jax.custom_vjp, nondiff_argnums=(n_inputs, n_inputs + 1))
    def f(*args):
        return _fwd(*args)[0]

    def _fwd(*args):
        xs, (temperature, block) = args[:n_inputs], args[n_inputs:]
        n = xs[0].shape[0]
        dt = _compute_dtype(xs[0].dtype)
        outs = [jnp.zeros((n,), dt) for _ in range(3)]
        res = _blocked(lambda *b: forward_rows(*b, 1.0 / temperature), xs, (), outs, block)
        return res[0], (xs, res[1], res[2])

    def _bwd(temperature, block, saved, g):
        xs, r1, r2 = saved
        outs = [jnp.zeros(x.shape, x.dtype) for x in xs]
        fn = lambda *b: backward_rows(*b, 1.0 / temperature)  # noqa: E731
        return _blocked(fn, xs, (r1, r2, g), outs, block)

    f.defvjp(lambda *args: _fwd(*args), _bwd)
    return f


def _kl_back(xp, xq, lse_s, c, g, inv_t):
    s = xp.astype(_compute_dtype(xp.dtype)) * inv_t
    t = xq.astype(s.dtype) * inv_t
    p = jnp.exp(s - lse_s[:, None])
    q = jnp.exp(t - _lse_rows(t))
    x = jnp.where(p > 0, t - s - c[:, None], 0.0)
    gs = (g * inv_t)[:, None]
    return -p * x * gs, (q - p) * gs


def _ce_rows(xp, xq, inv_t):
    s = xp.astype(_compute_dtype(xp.dtype)) * inv_t
    t = xq.astype(s.dtype) * inv_t
    _, w, big_w = _softmax_parts(s)
    mt, wt, big_wt = _softmax_parts(t)
    e = jnp.sum(jnp.where(w > 0, w * (mt - t), 0.0), axis=-1, keepdims=True) / big_w
    ce = jnp.where(_escapes(s, t), jnp.inf, jnp.log(big_wt) + e)
    ce = jnp.where((big_w == 0) | (big_wt == 0), jnp.nan, ce)  # an all −inf row is no distribution
    ce = jnp.where(jnp.isnan(big_w) | jnp.isnan(big_wt), jnp.nan, ce)  # a NaN logit: NaN, never inf
    lse_s = jnp.log(big_w) + jnp.max(s, axis=-1, keepdims=True)
    return ce[..., 0], lse_s[..., 0], (mt + jnp.log(big_wt))[..., 0]


def _ce_back(xp, xq, lse_s, lse_t, g, inv_t):
    s = xp.astype(_compute_dtype(xp.dtype)) * inv_t
    t = xq.astype(s.dtype) * inv_t
    p = jnp.exp(s - lse_s[:, None])
    q = jnp.exp(t - lse_t[:, None])
    dev = jnp.where(p > 0, t, 0.0)
    e_t = jnp.sum(p * dev, axis=-1, keepdims=True)
    gs = (g * inv_t)[:, None]
    return -p * (dev - e_t) * gs, (q - p) * gs


def _entropy_rows(xp, inv_t):
    s = xp.astype(_compute_dtype(xp.dtype)) * inv_t
    m, w, big_w = _softmax_parts(s)
    e = jnp.sum(jnp.where(w > 0, w * (m - s), 0.0), axis=-1, keepdims=True) / big_w
    h = jnp.where(big_w == 0, jnp.nan, jnp.log(big_w) + e)  # an all −inf row is no distribution
    return h[..., 0], (m + jnp.log(big_w))[..., 0], e[..., 0]


def _entropy_back(xp, lse_s, e, g, inv_t):
    del e
    s = xp.astype(_compute_dtype(xp.dtype)) * inv_t
    p = jnp.exp(s - lse_s[:, None])
    dev = jnp.where(p > 0, s, 0.0)
    e_s = jnp.sum(p * dev, axis=-1, keepdims=True)
    gs = (g * inv_t)[:, None]
    return (-p * (dev - e_s) * gs,)


_kl = _make(_kl_rows, _kl_back, 2)
_ce = _make(_ce_rows, _ce_back, 2)
_entropy = _make(_entropy_rows, _entropy_back, 1)


@functools.partial(jax.jit, static_argnames=("temperature", "block"))
def streamed_kl(logits_p: jax.Array, logits_q: jax.Array, *, temperature: float, block: int) -> jax.Array:
    """Per-row KL(softmax(logits_p / T) ‖ softmax(logits_q / T)) of ``(N, V)`` logits."""
    return _kl(logits_p, logits_q, temperature, block)


@functools.partial(jax.jit, static_argnames=("temperature", "block"))
def streamed_cross_entropy(
    logits_p: jax.Array, logits_q: jax.Array, *, temperature: float, block: int
) -> jax.Array:
    """Per-row H(softmax(logits_p / T), softmax(logits_q / T)) of ``(N, V)`` logits."""
    return _ce(logits_p, logits_q, temperature, block)


@functools.partial(jax.jit, static_argnames=("temperature", "block"))
def streamed_entropy(logits_p: jax.Array, *, temperature: float, block: int) -> jax.Array:
    """Per-row H(softmax(logits_p / T)) of ``(N, V)`` logits."""
    return _entropy(logits_p, temperature, block)
