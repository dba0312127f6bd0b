"""Newton's ``final_hessian``: with subsampled steps, the read of the step predicted to converge
forms the exact Hessian there, so standard errors cost no read of X of their own; and the host
blocks built from binary labels directly (what a Dask kernel builds per pass) read as the
general constructor's.

References: the exact Hessian from a separate read at the returned parameters (``Blocks.step``
with ``hessian=True``), and the optimum of an exact-Newton fit at tol 1e-13.
"""

import numpy as np

from kullback.glm._blocks import Blocks
from kullback.glm._newton import CONVERGED, newton


def _data(n=60_000, p=4, seed=0, offset=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    off = rng.normal(size=n) * 0.3 if offset else np.zeros(n)
    eta = X @ rng.normal(size=p) * 0.7 + 0.2 + off
    labels = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    w = rng.uniform(0.5, 2.0, size=n)
    return X, labels, w / w.sum(), np.stack([np.zeros(n), off], axis=1)


def _blocks(X, labels, w, off):
    return Blocks(X, labels, w, off, num_classes=2, num_free=1, reference=True, intercept=True)


class _Counting:
    """The blocks, counting the reads of X (``step``) and those that formed the Hessian."""

    def __init__(self, blocks):
        self.blocks, self.reads, self.hessians = blocks, 0, 0

    def __getattr__(self, name):
        return getattr(self.blocks, name)

    def step(self, eta, d, *, hessian):
        self.reads += 1
        self.hessians += int(hessian)
        return self.blocks.step(eta, d, hessian=hessian)


def test_the_last_read_forms_the_exact_hessian_at_the_result():
    X, labels, w, off = _data()
    k = 20
    sub = _blocks(X[::k], labels[::k], w[::k] / w[::k].sum(), off[::k])
    zeros = np.zeros(X.shape[1] + 1)
    plain, wanting = _Counting(_blocks(X, labels, w, off)), _Counting(_blocks(X, labels, w, off))
    a = newton(plain, zeros, zeros, 0.0, zeros, 1e-10, 50, intercept=True, sub=sub)
    b = newton(wanting, zeros, zeros, 0.0, zeros, 1e-10, 50, intercept=True, sub=sub, final_hessian=True)
    assert a.status == b.status == CONVERGED
    assert a.hessian is None and b.hessian is not None  # without it, SEs need one more read
    assert wanting.reads <= plain.reads and 1 <= wanting.hessians <= 2
    blocks = _blocks(X, labels, w, off)
    exact = blocks.step(blocks.zero_eta, b.params, hessian=True)[5]
    np.testing.assert_allclose(b.hessian, exact, rtol=1e-12, atol=1e-15)
    optimum = newton(blocks, zeros, zeros, 0.0, zeros, 1e-13, 50, intercept=True)
    scale = np.max(np.abs(optimum.params))
    assert np.max(np.abs(b.params - optimum.params)) / scale < 1e-9
    assert np.max(np.abs(a.params - optimum.params)) / scale < 1e-9


def test_binary_blocks_read_as_the_general_ones():
    X, labels, w, off = _data(n=10_000, offset=True)
    general = _blocks(X, labels, w, off)
    direct = Blocks.binary(X, (labels == 1).astype(float), w, off[:, 1], intercept=True)
    rng = np.random.default_rng(1)
    theta, d = rng.normal(size=5) * 1.5, rng.normal(size=5) * 0.1
    for hessian in (False, True):
        want = general.host_pass(None, d, hessian, theta=theta, ladder=(0.5, 0.25))
        got = direct.host_pass(None, d, hessian, theta=theta, ladder=(0.5, 0.25), certain_below=0.1)
        for u, v in zip(want[:7], got[:7]):
            if u is None:
                assert v is None
            else:
                np.testing.assert_array_equal(np.concatenate([np.ravel(x) for x in u]) if isinstance(u, list) else u,
                                              np.concatenate([np.ravel(x) for x in v]) if isinstance(v, list) else v)
        e = X @ (theta + d)[1:] + (theta + d)[0] + off[:, 1]
        ell = np.logaddexp(0.0, np.where(labels == 1, -e, e))
        assert got[7] == np.count_nonzero(ell < 0.1) > 0
        assert want[7] == 0  # nothing counted unless asked
    np.testing.assert_array_equal(direct.row_loss([np.zeros((10_000, 1))]), general.row_loss([np.zeros((10_000, 1))]))
