"""kb.logits: streamed values and gradients equal the direct log_softmax formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from jax.test_util import check_grads

import kullback as kb

RNG = np.random.default_rng(2)
S = RNG.standard_normal((7, 40)) * 3
T = RNG.standard_normal((7, 40)) * 3


def _direct_kl(s, t):
    ls, lt = jax.nn.log_softmax(s), jax.nn.log_softmax(t)
    return jnp.sum(jnp.exp(ls) * (ls - lt), -1)


def test_public_names():
    from kullback.logits import cross_entropy, entropy, jensen_shannon, kl, renyi, skew_kl, total_variation  # noqa: F401


@pytest.mark.parametrize("chunk_size", [None, 2, 3])
def test_streamed_equals_direct(chunk_size):
    ps, qs = scipy.special.softmax(S, -1), scipy.special.softmax(T, -1)
    np.testing.assert_allclose(kb.logits.kl(S, T, chunk_size=chunk_size), scipy.special.rel_entr(ps, qs).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(kb.logits.entropy(S, chunk_size=chunk_size), scipy.special.entr(ps).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(kb.logits.cross_entropy(S, T, chunk_size=chunk_size), -(ps * np.log(qs)).sum(-1), rtol=1e-12)
    for f, ref in [
        (lambda s, t: kb.logits.kl(s, t, chunk_size=chunk_size, temperature=2.0).sum(), lambda s, t: _direct_kl(s / 2, t / 2).sum()),
        (lambda s, t: kb.logits.cross_entropy(s, t, chunk_size=chunk_size).sum(), lambda s, t: -(jax.nn.softmax(s) * jax.nn.log_softmax(t)).sum()),
        (lambda s, t: kb.logits.entropy(s, chunk_size=chunk_size).sum(), lambda s, t: -(jax.nn.softmax(s) * jax.nn.log_softmax(s)).sum()),
    ]:
        for a, b in zip(jax.grad(f, (0, 1))(S, T), jax.grad(ref, (0, 1))(S, T)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_gradient_finite_differences():
    check_grads(lambda s, t: kb.logits.kl(s, t, chunk_size=3).sum(), (S[:4, :6], T[:4, :6]), order=1, modes=["rev"], eps=1e-6)


def test_reductions_mask_temperature_and_batch_shape():
    per_row = kb.logits.kl(S.reshape(7, 2, 20), T.reshape(7, 2, 20), temperature=1.5)
    assert per_row.shape == (7, 2)
    mask = np.array([True, True, False, True, False, True, True])
    rows = kb.logits.kl(S, T)
    np.testing.assert_allclose(kb.logits.kl(S, T, where=mask, reduction="mean"), rows[mask].mean(), rtol=1e-12)
    np.testing.assert_allclose(kb.logits.kl(S, T, where=mask, reduction="sum"), rows[mask].sum(), rtol=1e-12)
    np.testing.assert_allclose(kb.logits.kl(S.T, T.T, axis=0), rows, rtol=1e-12)


def test_extreme_logits_and_short_floats():
    assert float(kb.logits.kl([[1e4, -1e4]], [[-1e4, 1e4]])[0]) == pytest.approx(2e4, rel=1e-12)
    assert float(kb.logits.kl([[0.0, -jnp.inf]], [[0.0, 0.0]])[0]) == pytest.approx(np.log(2), rel=1e-12)
    out = kb.logits.kl(jnp.asarray(S, jnp.bfloat16), jnp.asarray(T, jnp.bfloat16))
    assert out.dtype == jnp.float32
    with pytest.raises(ValueError, match="logits_q to contain no NaN"):
        kb.logits.kl(S, np.where(S > 2, np.nan, T))


def test_near_identical_float32():
    s32 = S.astype(np.float32); t32 = (S + 1e-3 * T).astype(np.float32)
    truth = kb.logits.kl(s32.astype(np.float64), t32.astype(np.float64))
    got = kb.logits.kl(s32, t32)
    assert bool(jnp.all(got >= 0))
    np.testing.assert_allclose(got, truth, rtol=1e-3)


def test_family_members():
    ps, qs = scipy.special.softmax(S, -1), scipy.special.softmax(T, -1)
    np.testing.assert_allclose(kb.logits.jensen_shannon(S, T), kb.jensen_shannon(ps, qs), rtol=1e-10)
    np.testing.assert_allclose(kb.logits.renyi(S, T, 2.0), kb.renyi(ps, qs, 2.0), rtol=1e-10)
    np.testing.assert_allclose(kb.logits.total_variation(S, T), kb.total_variation(ps, qs), rtol=1e-10)
    np.testing.assert_allclose(kb.logits.skew_kl(S, T, alpha=0.5), kb.skew_kl(ps, qs, alpha=0.5), rtol=1e-10)


def test_support_from_logits_not_from_underflowed_softmax():
    s = np.array([0.0, -1.2], np.float32); t = np.array([0.0, -np.inf], np.float32)
    # at T = 0.01 p_1 = e^-120 underflows in float32 but is positive where q_1 = 0: +inf (was 0)
    assert float(kb.logits.kl(s, t, temperature=0.01)) == np.inf
    assert float(kb.logits.cross_entropy(s, t, temperature=0.01)) == np.inf
    assert float(kb.logits.renyi(s, t, 2.0, temperature=0.01)) == np.inf
    assert float(kb.logits.kl([-800.0, 0.0], [-np.inf, 0.0])) == np.inf
    # Rényi from log_softmax: p, q of e^-800 are not read as 0
    np.testing.assert_allclose(kb.logits.renyi([0.0, -800.0], [-800.0, 0.0], 0.5), 800 - 2 * np.log(2), rtol=1e-12)


def test_boundary_errors_and_jit_nan():
    for args, name in [(([-np.inf, -np.inf], [0.0, 0.0]), "logits_p"), (([0.0, 0.0], [-np.inf, -np.inf]), "logits_q")]:
        for f in (kb.logits.kl, kb.logits.cross_entropy, kb.logits.jensen_shannon):
            with pytest.raises(ValueError, match=f"every row of {name} to have a finite logit"):
                f(*args)
        assert bool(jnp.isnan(jax.jit(kb.logits.kl)(*map(jnp.asarray, args))))
        assert bool(jnp.isnan(jax.jit(kb.logits.cross_entropy)(*map(jnp.asarray, args))))
    with pytest.raises(ValueError, match="logits_p to have a non-empty vocabulary"):
        kb.logits.kl(np.zeros((2, 0)), np.zeros((2, 0)))
    rows = kb.logits.kl(S, T)
    np.testing.assert_allclose(kb.logits.kl(S, T, where=[1, 0, 1, 1, 0, 1, 1], reduction="mean"),
                               rows[np.array([1, 0, 1, 1, 0, 1, 1], bool)].mean(), rtol=1e-12)
    with pytest.raises(TypeError, match="where to be a boolean mask"):
        kb.logits.kl(S, T, where=np.ones(7) * 0.5)
    # NaN in either logit: NaN under jit, never inf
    t = T.copy(); t[2, 0] = -np.inf; t[2, 1] = np.nan
    for f in (kb.logits.kl, kb.logits.cross_entropy):
        assert bool(jnp.isnan(jax.jit(f)(S, t)[2]))
