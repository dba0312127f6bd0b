"""kl / cross_entropy / entropy of probability arrays: references, invariants, masks, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from jax.test_util import check_grads
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import kullback as kb

RNG = np.random.default_rng(0)
_kl_jit = jax.jit(lambda p, q: kb.kl(p, q))


def _pair(shape, rng=RNG):
    p = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    q = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    return p, q


@pytest.mark.parametrize("shape", [(5,), (4, 30), (2, 3, 17)])
def test_matches_scipy_float64(shape):
    p, q = _pair(shape)
    np.testing.assert_allclose(kb.kl(p, q), scipy.special.rel_entr(p, q).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(kb.entropy(p), scipy.special.entr(p).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(kb.cross_entropy(p, q), -(p * np.log(q)).sum(-1), rtol=1e-12)


def test_axis_and_base():
    p, q = _pair((6, 4))
    np.testing.assert_allclose(kb.kl(p.T, q.T, axis=0, base=2), scipy.special.rel_entr(p, q).sum(-1) / np.log(2), rtol=1e-12)


def test_zeros_and_infinity():
    assert float(kb.kl([0.5, 0.5, 0.0], [0.25, 0.25, 0.5])) == pytest.approx(np.log(2), rel=1e-12)
    assert float(kb.kl([0.5, 0.5], [1.0, 0.0])) == np.inf
    assert float(kb.entropy([1.0, 0.0])) == 0.0


def test_tiny_probabilities():
    p = np.array([1e-300, 1 - 1e-300]); q = np.array([0.5, 0.5])
    np.testing.assert_allclose(kb.kl(p, q), scipy.special.rel_entr(p, q).sum(), rtol=1e-12)


def test_validation_messages():
    with pytest.raises(ValueError, match="Expected p to sum to 1"):
        kb.kl([0.5, 0.6], [0.5, 0.5])
    with pytest.raises(ValueError, match="non-negative"):
        kb.kl([1.5, -0.5], [0.5, 0.5])
    np.testing.assert_allclose(kb.kl([1, 3], [2, 2], normalize=True), scipy.special.rel_entr([0.25, 0.75], [0.5, 0.5]).sum(), rtol=1e-12)


def test_mask_equals_slice():
    p, q = _pair((3, 8))
    mask = np.array([True] * 5 + [False] * 3)
    pm, qm = p.copy(), q.copy()
    pm[:, :5] /= pm[:, :5].sum(-1, keepdims=True)
    qm[:, :5] /= qm[:, :5].sum(-1, keepdims=True)
    pm[:, 5:] = np.nan  # ignored entries may hold anything
    for f in (kb.kl, kb.cross_entropy):
        np.testing.assert_allclose(f(pm, qm, where=mask), f(pm[:, :5], qm[:, :5]), rtol=1e-12)
    np.testing.assert_allclose(kb.entropy(pm, where=mask), kb.entropy(pm[:, :5]), rtol=1e-12)


def test_near_identical_float32_close_to_float64():
    p, _ = _pair((8, 200))
    q = p * (1 + 1e-3 * RNG.standard_normal(p.shape))
    q /= q.sum(-1, keepdims=True)
    p32, q32 = p.astype(np.float32), q.astype(np.float32)
    truth = kb.kl(p32.astype(np.float64), q32.astype(np.float64))  # float64 on the same inputs
    got = kb.kl(p32, q32)
    assert got.dtype == jnp.float32 and bool(jnp.all(got >= 0))
    np.testing.assert_allclose(got, truth, rtol=1e-4)  # float32: ~1e3 ulp of margin


def test_finite_gradients_at_zero():
    p = jnp.array([0.5, 0.5, 0.0]); q = jnp.array([0.25, 0.25, 0.5])
    for f in (lambda p: kb.kl(p, q), lambda p: kb.entropy(p), lambda q: kb.kl(p, q), lambda p: kb.cross_entropy(p, q)):
        assert bool(jnp.all(jnp.isfinite(jax.grad(f)(p))))


def test_gradient_matches_finite_differences():
    p, q = _pair((6,))
    g = jax.grad(lambda q: kb.kl(p, q))(jnp.asarray(q))
    # the non-negative form is Σ p log(p/q) + Σ q − Σ p (equal on the simplex): ∂/∂q = 1 − p/q,
    # the same as −p/q along every direction that keeps Σ q = 1
    np.testing.assert_allclose(g, 1 - p / q, rtol=1e-10)
    check_grads(jax.jit(lambda p: kb.kl(p, q)), (jnp.asarray(p),), order=1, modes=["rev"], eps=1e-6)


def _dists(n):
    return arrays(np.float64, n, elements=st.floats(0.0, 1.0)).filter(lambda x: x.sum() > 1e-3).map(lambda x: x / x.sum())


@settings(max_examples=25)
@given(st.integers(2, 6).flatmap(lambda n: st.tuples(_dists(n), _dists(n))))
def test_properties(pq):
    p, q = pq
    q = 0.9 * q + 0.1 / q.size  # q > 0 everywhere: finite values
    value = float(kb.kl(p, q))
    assert value >= 0
    np.testing.assert_allclose(float(kb.cross_entropy(p, q)), float(kb.entropy(p)) + value, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(float(_kl_jit(jnp.asarray(p), jnp.asarray(q))), value, rtol=1e-12, atol=1e-15)
    assert float(kb.kl(p, p)) == 0.0


# ---- the fast path of kb.kl on concrete arrays (one log per entry, stable recomputation) ----

from kullback.measure import _discrete  # noqa: E402


def _stable_ref(p, q):
    """Σ p ψ(u), u = (q − p)/p, ψ(u) = u − log1p(u): an independent NumPy form without cancellation."""
    u = (q - p) / p
    return np.sum(p * (u - np.log1p(u)), -1)


def _unaligned(x):
    """A copy of x whose data start 8 bytes past a 64-byte boundary (device_put cannot alias it)."""
    buf = np.empty(x.size + 16, x.dtype)
    start = (-buf.ctypes.data % 64) // x.itemsize + 1
    out = buf[start : start + x.size].reshape(x.shape)
    out[...] = x
    assert out.ctypes.data % 64 != 0
    return out


def test_fast_path_blocks_zeros_and_near_identical(monkeypatch):
    monkeypatch.setattr(_discrete, "_BLOCK_ELEMENTS", 3 * 40)  # blocks of 3 rows, the last overlapping
    p, q = _pair((11, 40))
    p[1, :5] = 0.0; p[1] /= p[1].sum()        # zeros in p: recomputed by the stable form
    q[2, 7] = 0.0; q[2] /= q[2].sum()         # a zero in q where p > 0: +inf
    q[4] = p[4] * (1 + 1e-7 * RNG.standard_normal(40)); q[4] /= q[4].sum()  # near-identical
    q[5] = p[5]                                # identical: exactly 0
    p[6, 3] = 1e-310; p[6] /= p[6].sum()       # a subnormal entry
    ref = scipy.special.rel_entr(p, q).sum(-1)
    for a, b in [(p, q), (_unaligned(p), _unaligned(q)), (jnp.asarray(p), jnp.asarray(q))]:
        got = np.asarray(kb.kl(a, b))
        assert got[2] == np.inf and got[5] == 0.0
        keep = np.isfinite(ref) & (np.arange(11) != 4)
        np.testing.assert_allclose(got[keep], ref[keep], rtol=1e-12)
        np.testing.assert_allclose(got[4], _stable_ref(p[4], q[4]), rtol=1e-8)  # 1e-14 KL, no cancellation
        np.testing.assert_allclose(got, _kl_jit(jnp.asarray(p), jnp.asarray(q)), rtol=1e-12)  # fast == stable path


def test_fast_path_batch_shapes_float32_and_errors():
    p, q = _pair((2, 3, 50))
    got = kb.kl(p.astype(np.float32), q.astype(np.float32))
    assert got.shape == (2, 3) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, scipy.special.rel_entr(p, q).sum(-1), rtol=2e-5)  # float32 inputs
    bad = q.copy(); bad[1, 2, 4] = np.nan
    with pytest.raises(ValueError, match="Expected q to contain no NaN; it has 1 NaN entries"):
        kb.kl(p, bad)
    with pytest.raises(ValueError, match="Expected p to be non-negative"):
        kb.kl(np.where(p == p.max(), -p, p), q)
    with pytest.raises(ValueError, match=r"Expected p to sum to 1 along axis -1 \(within 1e-08 for float64\)"):
        kb.kl(1.1 * p, q)


# ---- regressions (issue "Honest numbers everywhere") ----------------------------------------

@pytest.mark.parametrize("dtype,tiny", [(np.float64, 1e-160), (np.float64, 1e-300), (np.float32, 1e-20)])
def test_gradients_finite_at_tiny_probabilities(dtype, tiny):
    # d/dp of (q − p)/p squared p, which is 0 below 1e-154 (float64): the gradient was NaN
    p = jnp.array([tiny, 1 - tiny], dtype); q = jnp.array([0.5, 0.5], dtype)
    for f in (kb.kl, kb.jensen_shannon, lambda p, q: kb.renyi(p, q, 0.5), kb.skew_kl):
        g = jax.grad(f, (0, 1))(p, q)
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in g)
    np.testing.assert_allclose(jax.grad(kb.kl)(p, q)[0], np.log(tiny / 0.5), rtol=1e-5)


def test_nan_in_nan_out_under_jit():
    p = jnp.array([jnp.nan, 0.5]); q = jnp.array([0.5, 0.5])
    for f in (kb.kl, kb.cross_entropy, lambda p, q: kb.entropy(p)):
        assert bool(jnp.isnan(jax.jit(f)(p, q)))  # was 0.5 and a zero gradient
        assert bool(jnp.isnan(jax.jit(f)(q, p))) or f is not kb.kl
    assert bool(jnp.isnan(jax.grad(jax.jit(kb.kl))(p, q)[0]))


def test_integer_masks():
    p = [0.5, 0.5, 0.3]; q = [0.9, 0.1, 0.7]
    want = kb.kl(p, q, where=[True, True, False])
    np.testing.assert_allclose(kb.kl(p, q, where=[1, 1, 0]), want, rtol=1e-15)
    with pytest.raises(ValueError, match="where to be a boolean mask .or integers 0 and 1.; it has 1 other"):
        kb.kl(p, q, where=[1, 2, 0])
    with pytest.raises(TypeError, match="where to be a boolean mask"):
        kb.entropy(p, where=[1.0, 1.0, 0.0])


def test_categorical_closed_form_from_logits():
    import numpyro.distributions as dist

    # p_0 = e^-800 > 0 underflows, q_0 = 0: the KL is +inf (it was 0·inf = NaN)
    p = dist.Categorical(logits=jnp.array([-800.0, 0.0])); q = dist.Categorical(probs=jnp.array([0.0, 1.0]))
    assert float(kb.kl(p, q)) == np.inf
    assert float(kb.kl(q, p)) == 0.0
    assert float(kb.kl(p, dist.Categorical(logits=jnp.array([0.0, -800.0])))) == pytest.approx(800.0, rel=1e-12)
