"""kb.logits.linear_*: fused with the output layer, equal to the unfused losses, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kullback as kb

RNG = np.random.default_rng(31)
BATCH, D_P, D_Q, V = (3, 3), 6, 5, 70
H_P, H_Q = RNG.standard_normal(BATCH + (D_P,)), RNG.standard_normal(BATCH + (D_Q,))
W_P, W_Q = RNG.standard_normal((V, D_P)), RNG.standard_normal((V, D_Q))
B_P, B_Q = RNG.standard_normal(V), RNG.standard_normal(V)
LABELS = RNG.integers(0, V, BATCH)
LABELS[1, 2] = -100
MASK = np.array([[True, True, False], [True, False, True], [True, True, True]])
TILES = dict(block_rows=4, block_vocab=32)  # remainders in both directions


def _unfused(form, h_p, w_p, b_p, h_q, w_q, b_q, reduction, T=1.3):
    s = h_p @ w_p.T + b_p if w_p is not None else h_p
    t = h_q @ w_q.T + b_q
    k = dict(temperature=T, where=MASK, reduction=reduction)
    if form == "kl":
        return kb.logits.kl(s, t, **k)
    if form == "cross_entropy":
        return kb.logits.cross_entropy(s, t, **k)
    if form == "jensen_shannon":
        return kb.logits.jensen_shannon(s, t, weight=0.3, **k)
    keep = MASK & (LABELS != -100)
    nll = -jnp.take_along_axis(jax.nn.log_softmax(t / T), np.where(keep, LABELS, 0)[..., None], -1)[..., 0]
    return kb.logits.kl(jnp.zeros(BATCH + (1,)), jnp.zeros(BATCH + (1,)), where=keep, reduction=reduction) + (
        jnp.where(keep, nll, 0.0).sum() / keep.sum() if reduction == "mean" else jnp.where(keep, nll, 0.0))


def _fused(form, h_p, w_p, b_p, h_q, w_q, b_q, reduction, wrt="q", **tiles):
    k = dict(bias_q=b_q, temperature=1.3, where=MASK, reduction=reduction, **tiles)
    if form == "labels":
        return kb.logits.linear_cross_entropy(LABELS, None, h_q, w_q, **k)
    k.update(bias_p=b_p, wrt=wrt)
    fn = {"kl": kb.logits.linear_kl, "cross_entropy": kb.logits.linear_cross_entropy}.get(form)
    if form == "jensen_shannon":
        return kb.logits.linear_jensen_shannon(h_p, w_p, h_q, w_q, weight=0.3, **k)
    return fn(h_p, w_p, h_q, w_q, **k)


ARGS = (H_P, W_P, B_P, H_Q, W_Q, B_Q)
FORMS = ["kl", "cross_entropy", "jensen_shannon", "labels"]


def _check(form, args, wrt, reduction, rtol, tiles):
    """Value and gradients (for q's h, w, b; for p's too with wrt="both") in one compiled call."""
    argnums = (3, 4, 5) if wrt == "q" else (0, 1, 2, 3, 4, 5)
    weights = jnp.asarray(RNG.uniform(0.5, 1.5, BATCH)) if reduction == "none" else 1.0
    value, got = jax.value_and_grad(lambda *a: jnp.sum(weights * _fused(form, *a, reduction, wrt=wrt, **tiles)), argnums)(*args)
    ref = jnp.asarray(_unfused(form, *ARGS, reduction))
    np.testing.assert_allclose(value, jnp.sum(weights * ref), rtol=rtol)
    want = jax.grad(lambda *a: jnp.sum(weights * _unfused(form, *a, reduction)), argnums)(*ARGS)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(jnp.max(jnp.abs(b))))


@pytest.mark.parametrize("form", FORMS)
def test_fused_equals_unfused_float64(form):
    _check(form, ARGS, "q", "mean", 1e-12, TILES)  # KL, CE: one sweep for value and gradients
    if form != "labels":
        _check(form, ARGS, "both", "mean", 1e-12, TILES)  # a sweep of row statistics first
    if form in ("kl", "jensen_shannon"):
        _check(form, ARGS, "q", "none", 1e-12, TILES)  # gradients recomputed in the backward pass
        np.testing.assert_allclose(_fused(form, *ARGS, "sum"), _unfused(form, *ARGS, "sum"), rtol=1e-12)  # one tile


@pytest.mark.parametrize("form", FORMS)
def test_fused_equals_unfused_float32(form):
    args32 = tuple(np.asarray(a, np.float32) for a in ARGS)
    assert _fused(form, *args32, "mean", **TILES).dtype == jnp.float32
    _check(form, args32, "q" if form == "labels" else "both", "mean", 1e-5, TILES)


def test_teacher_as_logits_and_bfloat16():
    s = H_P @ W_P.T + B_P
    got = kb.logits.linear_kl(s, None, H_Q, W_Q, bias_q=B_Q, temperature=1.3, where=MASK, **TILES)
    np.testing.assert_allclose(got, _unfused("kl", s, None, None, H_Q, W_Q, B_Q, "mean"), rtol=1e-12)
    g = jax.grad(lambda x, h: kb.logits.linear_kl(x, None, h, W_Q, bias_q=B_Q, temperature=1.3, where=MASK, wrt="both", **TILES), (0, 1))(s, H_Q)
    r = jax.grad(lambda x, h: _unfused("kl", x, None, None, h, W_Q, B_Q, "mean"), (0, 1))(s, H_Q)
    for a, b in zip(g, r):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    bf = [jnp.asarray(a, jnp.bfloat16) for a in (H_P, W_P, H_Q, W_Q)]
    out = kb.logits.linear_jensen_shannon(*bf, reduction="batchmean")
    ref = kb.logits.jensen_shannon(*(jnp.asarray(x, jnp.float32) @ jnp.asarray(w, jnp.float32).T for x, w in zip(bf[::2], bf[1::2])), reduction="batchmean")
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, ref, rtol=1e-4)
    assert jax.grad(lambda w: kb.logits.linear_kl(bf[0], bf[1], bf[2], w))(bf[3]).dtype == jnp.bfloat16


def test_no_rows_by_vocabulary_array_in_the_compiled_program():
    n, d, v = 64, 8, 4096
    h, w = jnp.zeros((n, d), jnp.float32), jnp.zeros((v, d), jnp.float32)
    for fn in (kb.logits.linear_kl, kb.logits.linear_jensen_shannon):
        f = jax.jit(jax.value_and_grad(lambda hq, wq: fn(h, w, hq, wq, block_vocab=512), (0, 1)))
        text = f.lower(h, w).compile().as_text()
        assert f"f32[{n},{v}]" not in text and f"f32[{v},{n}]" not in text
        assert f"f32[{n},512]" in text  # the tiles


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="w_q of shape"):
        kb.logits.linear_kl(H_P, W_P, H_Q, W_P)
    with pytest.raises(ValueError, match="p's side"):
        kb.logits.linear_kl(H_P[:2], W_P, H_Q, W_Q)
    with pytest.raises(ValueError, match="wrt"):
        kb.logits.linear_kl(H_P, W_P, H_Q, W_Q, wrt="student")
    with pytest.raises(ValueError, match="h_q to contain no NaN"):
        kb.logits.linear_kl(H_P, W_P, np.where(H_Q > 1, np.nan, H_Q), W_Q)
