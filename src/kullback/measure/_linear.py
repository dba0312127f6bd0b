"""Divergences fused with the output layer: tiles of h wᵀ + b, never the (N, V) logits.

Each side is either ``(h, w, b)`` (h: (N, D) hidden states, w: (V, D) the output layer as torch
stores it, b: (V,)) or ``(x,)``, logits given whole (a teacher's, say). Rows go in blocks of
``B``, the vocabulary in chunks of ``C``; a tile is (B, C). Three sweeps over the tiles:

A. the log-normalisers of both sides by an online log-sum-exp (running max and rescaled sum);
B. the form's row statistics (:mod:`._terms`) from the exact log-probabilities, hence the value;
C. the gradients: the tile of ∂value/∂logits, then dh += g w_c, dw_c += gᵀ h, db_c += Σ g.

B and C are one sweep when the requested gradients need no row statistic (KL and
cross-entropy with respect to q). With a scalar reduction the forward pass of a gradient
computation does C at once with the reduction's row weights and keeps the gradients; the
backward pass only scales them (no recomputation). With ``reduction="none"`` the backward pass
runs C with the incoming cotangent as row weights. Peak extra memory: a few (B, C) tiles, the
(B, D) gradient block and the gradient outputs themselves.

The last row block and the last vocabulary chunk are shifted back to end at N and V (no padding
copy); rows and columns they share with the previous block are masked out of the sums.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from . import _terms

__all__ = ["Config", "fused_rows", "fused_loss", "default_tiles"]

_TILE_ELEMENTS = 1 << 20  # entries per (B, C) tile: 4 MiB of float32 (2^21: no faster, 16 MiB more)
_MAX_ROWS = 4096


class Config(NamedTuple):
    """Static settings of one fused computation (hashable: a jit static argument)."""

    form: str  # "kl", "cross_entropy", "jensen_shannon" or "labels"
    wrt: str  # "q", "p" or "both"
    p_logits: bool  # side p given as logits
    temperature: float
    block: int
    chunk: int


_FORMS = {"kl": _terms.KL, "cross_entropy": _terms.CROSS_ENTROPY, "jensen_shannon": _terms.JENSEN_SHANNON}


def default_tiles(num_rows: int, vocab: int) -> tuple[int, int]:
    """Rows per block (all rows up to 4096) and vocabulary per chunk (about 2^20 entries a tile)."""
    block = max(1, min(num_rows, _MAX_ROWS))
    chunk = min(vocab, max(128, (_TILE_ELEMENTS // block) // 128 * 128))
    return block, chunk


def _needs_stats(cfg: Config) -> bool:
    return cfg.form == "jensen_shannon" or (cfg.form != "labels" and cfg.wrt != "q")


def _starts(i, size, total):
    """Start of block i (shifted back to end at ``total``) and the mask of its entries not yet seen."""
    start = jnp.minimum(i * size, total - size)
    return start, jnp.arange(size) + start >= i * size


def _dt(side):
    return jnp.float64 if side[0].dtype == jnp.float64 else jnp.float32


def _row_part(side, r0, block):
    return tuple(lax.dynamic_slice_in_dim(a, r0, block, 0) if k == 0 else a for k, a in enumerate(side))


def _tile(side_rows, c0, chunk, inv_t, dt):
    """The (B, C) logits tile / T of one side, from its row block."""
    if len(side_rows) == 1:
        return lax.dynamic_slice_in_dim(side_rows[0], c0, chunk, 1).astype(dt) * inv_t
    h, w, b = side_rows
    wc = lax.dynamic_slice_in_dim(w, c0, chunk, 0)
    x = lax.dot_general(h, wc, (((1,), (1,)), ((), ())), preferred_element_type=dt)
    return (x + lax.dynamic_slice_in_dim(b, c0, chunk, 0).astype(dt)) * inv_t


def _vocab(sides):
    side = sides[1]
    return side[1].shape[0]


def _rows_loop(n, block, body, init):
    """fori_loop over row blocks: ``body(r0, row_valid, carry) -> carry``."""

    def step(i, carry):
        r0, valid = _starts(i, block, n)
        return body(r0, valid, carry)

    return lax.fori_loop(0, -(-n // block), step, init)


def _vocab_loop(v, chunk, body, init):
    def step(c, carry):
        c0, valid = _starts(c, chunk, v)
        return body(c0, valid, carry)

    return lax.fori_loop(0, -(-v // chunk), step, init)


def _online_lse(carry, x, valid):
    m, z = carry
    x = jnp.where(valid, x, -jnp.inf)
    m_new = jnp.maximum(m, jnp.max(x, axis=-1))
    shift = jnp.where(jnp.isfinite(m_new), m_new, 0.0)
    z = z * jnp.exp(m - shift) + jnp.sum(jnp.exp(x - shift[:, None]), axis=-1)
    return m_new, z


def _normalisers(sides, cfg: Config):
    """Sweep A: log Σ exp(logits / T) per row of each side (p's is None for hard labels)."""
    n, v, dt, inv_t = sides[1][0].shape[0], _vocab(sides), _dt(sides[1]), 1.0 / cfg.temperature
    both = cfg.form != "labels"

    def row_block(r0, _, out):
        rows = [None if s is None else _row_part(s, r0, cfg.block) for s in sides]
        start = (jnp.full((cfg.block,), -jnp.inf, dt), jnp.zeros((cfg.block,), dt))

        def chunk(c0, valid, acc):
            acc_t = _online_lse(acc[1], _tile(rows[1], c0, cfg.chunk, inv_t, dt), valid)
            acc_s = _online_lse(acc[0], _tile(rows[0], c0, cfg.chunk, inv_t, dt), valid) if both else acc[0]
            return acc_s, acc_t

        acc = _vocab_loop(v, cfg.chunk, chunk, (start, start))
        return tuple(lax.dynamic_update_slice_in_dim(o, m + jnp.log(z), r0, 0) for o, (m, z) in zip(out, acc))

    out = _rows_loop(n, cfg.block, row_block, (jnp.zeros((n,), dt), jnp.zeros((n,), dt)))
    return (out[0] if both else None), out[1]


def _label_onehot(labels_rows, c0, chunk, valid):
    return ((jnp.arange(chunk) + c0)[None, :] == labels_rows[:, None]) & valid[None, :]


def _tile_grads(rows, lse_rows, stats_rows, params, c0, valid, cfg, labels_rows):
    """The (B, C) tiles of ∂value/∂(logits / T) for p and q (p's is None for hard labels)."""
    dt, inv_t = _dt(rows[1]), 1.0 / cfg.temperature
    lt = _tile(rows[1], c0, cfg.chunk, inv_t, dt) - lse_rows[1][:, None]
    if cfg.form == "labels":
        onehot = _label_onehot(labels_rows, c0, cfg.chunk, valid)
        return None, jnp.where(valid[None, :], jnp.exp(lt), 0.0) - onehot.astype(dt), None
    ls = _tile(rows[0], c0, cfg.chunk, inv_t, dt) - lse_rows[0][:, None]
    form = _FORMS[cfg.form]
    gs, gt = form.grads(ls, lt, stats_rows, params)
    terms = tuple(jnp.sum(jnp.where(valid[None, :], a, 0.0), axis=-1) for a in form.terms(ls, lt, params))
    return jnp.where(valid[None, :], gs, 0.0), jnp.where(valid[None, :], gt, 0.0), terms


def _stats(sides, lse, params, cfg: Config):
    """Sweep B: the form's row statistics from the exact log-probabilities."""
    form = _FORMS[cfg.form]
    n, v, dt, inv_t = sides[1][0].shape[0], _vocab(sides), _dt(sides[1]), 1.0 / cfg.temperature

    def row_block(r0, _, out):
        rows = [_row_part(s, r0, cfg.block) for s in sides]
        ls_r, lt_r = (lax.dynamic_slice_in_dim(x, r0, cfg.block)[:, None] for x in lse)

        def chunk(c0, valid, acc):
            ls = _tile(rows[0], c0, cfg.chunk, inv_t, dt) - ls_r
            lt = _tile(rows[1], c0, cfg.chunk, inv_t, dt) - lt_r
            terms = form.terms(ls, lt, params)
            return tuple(a + jnp.sum(jnp.where(valid[None, :], x, 0.0), axis=-1) for a, x in zip(acc, terms))

        acc = _vocab_loop(v, cfg.chunk, chunk, tuple(jnp.zeros((cfg.block,), dt) for _ in range(form.num_stats)))
        return tuple(lax.dynamic_update_slice_in_dim(o, a, r0, 0) for o, a in zip(out, acc))

    return _rows_loop(n, cfg.block, row_block, tuple(jnp.zeros((n,), dt) for _ in range(form.num_stats)))


def _grad_sides(cfg: Config) -> tuple[bool, bool]:
    return cfg.form != "labels" and cfg.wrt in ("p", "both"), cfg.wrt in ("q", "both")


def _zero_grads(side, dt):
    return tuple(jnp.zeros(a.shape, dt) for a in side)


def _accumulate(acc, rows, g, c0, chunk):
    """Add one tile's gradient g (B, C) to a linear side's (dh block, dw, db)."""
    dh_b, dw, db = acc
    h, w, _ = rows
    wc = lax.dynamic_slice_in_dim(w, c0, chunk, 0)
    dh_b = dh_b + lax.dot_general(g.astype(wc.dtype), wc, (((1,), (0,)), ((), ())), preferred_element_type=dh_b.dtype)
    dwc = lax.dot_general(g.astype(h.dtype), h, (((0,), (0,)), ((), ())), preferred_element_type=dw.dtype)
    dw = lax.dynamic_update_slice_in_dim(dw, lax.dynamic_slice_in_dim(dw, c0, chunk, 0) + dwc, c0, 0)
    db = lax.dynamic_update_slice_in_dim(db, lax.dynamic_slice_in_dim(db, c0, chunk, 0) + jnp.sum(g, 0), c0, 0)
    return dh_b, dw, db


def _grads(sides, lse, stats, params, row_weights, labels, cfg: Config, merged: bool):
    """Sweep C: gradients of Σ_n row_weights_n value_n for the requested sides (and, when
    ``merged``, the row statistics accumulated on the way, which then need no sweep B)."""
    n, v, dt, inv_t = sides[1][0].shape[0], _vocab(sides), _dt(sides[1]), 1.0 / cfg.temperature
    want = _grad_sides(cfg)
    form = None if cfg.form == "labels" else _FORMS[cfg.form]
    n_stats = form.num_stats if merged and form is not None else 0
    start = tuple(_zero_grads(s, dt) if ok else () for s, ok in zip(sides, want))
    stats_out = tuple(jnp.zeros((n,), dt) for _ in range(n_stats))

    def row_block(r0, row_valid, carry):
        grads, stats_acc = carry
        rows = [None if s is None else _row_part(s, r0, cfg.block) for s in sides]
        lse_rows = [None if x is None else lax.dynamic_slice_in_dim(x, r0, cfg.block) for x in lse]
        st_rows = tuple(lax.dynamic_slice_in_dim(x, r0, cfg.block) for x in stats) if not merged else ()
        st_rows = st_rows or tuple(jnp.zeros((cfg.block,), dt) for _ in range(form.num_stats if form else 0))
        lab = None if labels is None else lax.dynamic_slice_in_dim(labels, r0, cfg.block)
        rw = jnp.where(row_valid, lax.dynamic_slice_in_dim(row_weights, r0, cfg.block), 0.0)[:, None] * inv_t

        def chunk(c0, valid, acc):
            side_acc, terms_acc = acc
            gs, gt, terms = _tile_grads(rows, lse_rows, st_rows, params, c0, valid, cfg, lab)
            new = []
            for k, g in enumerate((gs, gt)):
                if not want[k]:
                    new.append(())
                elif len(rows[k]) == 3:
                    new.append(_accumulate(side_acc[k], rows[k], g * rw, c0, cfg.chunk))
                else:  # logits given: write the tile (rows and columns not seen before only)
                    (dx,) = side_acc[k]
                    old = lax.dynamic_slice(dx, (r0, c0), (cfg.block, cfg.chunk))
                    fresh = row_valid[:, None] & valid[None, :]
                    new.append((lax.dynamic_update_slice(dx, jnp.where(fresh, g * rw, old), (r0, c0)),))
            terms_acc = tuple(a + x for a, x in zip(terms_acc, terms[:n_stats])) if n_stats else ()
            return tuple(new), terms_acc

        init = tuple(
            (jnp.zeros((cfg.block, g[0].shape[1]), dt), g[1], g[2]) if len(g) == 3 else g for g in grads
        )
        side_acc, terms_acc = _vocab_loop(v, cfg.chunk, chunk, (init, tuple(jnp.zeros((cfg.block,), dt) for _ in range(n_stats))))
        out = []
        for g, a in zip(grads, side_acc):
            if len(g) == 3:  # write the (B, D) block of dh for the rows not seen before
                old = lax.dynamic_slice_in_dim(g[0], r0, cfg.block, 0)
                a = (lax.dynamic_update_slice_in_dim(g[0], jnp.where(row_valid[:, None], a[0], old), r0, 0), a[1], a[2])
            out.append(a)
        stats_acc = tuple(lax.dynamic_update_slice_in_dim(o, x, r0, 0) for o, x in zip(stats_acc, terms_acc))
        return tuple(out), stats_acc

    grads, stats_out = _rows_loop(n, cfg.block, row_block, (start, stats_out))
    grads = tuple(
        tuple(g.astype(a.dtype) for g, a in zip(gr, side)) if ok else None for gr, side, ok in zip(grads, sides, want)
    )
    return grads, stats_out


def _label_logits(q_side, labels, inv_t):
    """logits_q[n, labels_n] / T without the (N, V) logits: one gathered row of w per row."""
    h, w, b = q_side
    dt = _dt(q_side)
    wl = jnp.take(w, labels, axis=0)
    return (jnp.einsum("nd,nd->n", h.astype(dt), wl.astype(dt)) + jnp.take(b, labels).astype(dt)) * inv_t


def _values(sides, lse, stats, params, labels, cfg: Config):
    if cfg.form == "labels":
        return lse[1] - _label_logits(sides[1], labels, 1.0 / cfg.temperature)
    return _FORMS[cfg.form].value(stats, params)


def _weighted_sum(values, row_weights):
    return jnp.sum(jnp.where(row_weights != 0, row_weights * values, 0.0))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _loss(cfg, sides, params, row_weights, labels):
    lse = _normalisers(sides, cfg)
    stats = () if cfg.form == "labels" else _stats(sides, lse, params, cfg)
    return _weighted_sum(_values(sides, lse, stats, params, labels, cfg), row_weights)


def _loss_fwd(cfg, sides, params, row_weights, labels):
    lse = _normalisers(sides, cfg)
    if _needs_stats(cfg):
        stats = _stats(sides, lse, params, cfg)
        grads, _ = _grads(sides, lse, stats, params, row_weights, labels, cfg, merged=False)
    else:
        grads, stats = _grads(sides, lse, (), params, row_weights, labels, cfg, merged=True)
    return _weighted_sum(_values(sides, lse, stats, params, labels, cfg), row_weights), grads


def _loss_bwd(cfg, grads, g):
    scaled = tuple(None if gr is None else tuple((g * x).astype(x.dtype) for x in gr) for gr in grads)
    return scaled, None, None, None


_loss.defvjp(_loss_fwd, _loss_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _rows(cfg, sides, params, labels):
    return _rows_fwd(cfg, sides, params, labels)[0]


def _rows_fwd(cfg, sides, params, labels):
    lse = _normalisers(sides, cfg)
    stats = () if cfg.form == "labels" else _stats(sides, lse, params, cfg)
    return _values(sides, lse, stats, params, labels, cfg), (sides, params, labels, lse, stats)


def _rows_bwd(cfg, saved, g):
    sides, params, labels, lse, stats = saved
    grads, _ = _grads(sides, lse, stats, params, g, labels, cfg, merged=False)
    return grads, None, None


_rows.defvjp(_rows_fwd, _rows_bwd)


@functools.partial(jax.jit, static_argnums=(0,))
def fused_loss(cfg: Config, sides, params, row_weights, labels):
    """Σ_n row_weights_n value_n; its gradient is computed in the forward pass of a grad."""
    return _loss(cfg, sides, params, row_weights, labels)


@functools.partial(jax.jit, static_argnums=(0,))
def fused_rows(cfg: Config, sides, params, labels):
    """Per-row values (N,); the backward pass recomputes the tiles with the cotangent as weights."""
    return _rows(cfg, sides, params, labels)
