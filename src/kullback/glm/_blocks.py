"""The rows of a GLM fit as equal-shaped device blocks, and the two compiled kernels that read them.

A compiled program is specialised to its array shapes, so a solver that takes all n rows at
once compiles again for every new n. Here the rows are cut into blocks of one shape and the
solvers (:mod:`kullback.glm._newton`, :mod:`kullback.glm._lbfgs`) run on the host, calling a
per-block kernel and adding the blocks' sums in float64 NumPy:

- up to ``BLOCK_ROWS`` rows: one block, padded to the next power of two of at least
  ``MIN_ROWS`` rows (and the columns to a multiple of 4, see :mod:`kullback.glm._fit`);
- more: blocks of ``BLOCK_ROWS`` rows that are views of X (no copy when their start is 64-byte
  aligned: a few head rows are moved to the last block to make it so), and one or two padded
  blocks for the rows left over.

Padding rows are zeros with weight 0 and label 0: finite, so values and gradients stay finite,
and every weighted sum is unchanged. Two classes with a reference (logistic regression)
are read in NumPy instead, one block of all rows (:meth:`Blocks.host_pass`): as fast, and nothing to
compile. Otherwise a fit compiles one kernel per (block shape, number of
classes, parameterisation): any number of rows above ``BLOCK_ROWS`` shares one, and so do all
the values (θ, step lengths, penalties, tolerances), which are arguments, never constants.

The kernel, :func:`_pass_kernel`: from the logits η of a block and a step d, the logits X̃d of
the step, the data parts of the gradient and of the objective at η + X̃d and, optionally, the
data Hessian there: one read of the block, written plainly (one matrix product each: XLA's
compile time grows with every product and loop in a program). Line searches move the logits
as η + t·X̃d and evaluate the loss in NumPy (:func:`row_loss`), without reading X.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import _objective as obj

__all__ = ["Blocks", "BLOCK_ROWS", "MIN_ROWS", "block_rows"]

BLOCK_ROWS = 16_384  # rows per kernel call on tall data
MIN_ROWS = 1024  # small data all share a few row counts (powers of two from here)
HOST_CHUNK = 4096  # rows per chunk of the NumPy pass (a chunk of X stays in L2 cache)
HOST_BINARY = True  # two classes against a reference are read in NumPy (see Blocks); False: device blocks


def block_rows(n: int) -> int:
    """Rows of each block for n rows: ``BLOCK_ROWS``, or the next power of two ≥ max(n, MIN_ROWS)."""
    return BLOCK_ROWS if n > BLOCK_ROWS else max(MIN_ROWS, 1 << max(0, n - 1).bit_length())


def _block_hessian(x: jax.Array, L: jax.Array, w: jax.Array, reference: bool, intercept: bool) -> jax.Array:
    """Σ_i w_i A_i ⊗ x̃_i x̃_iᵀ, A_i = diag(P_i) − P_i P_iᵀ on the free classes: one contraction.

    The diagonal 1 − P_k is computed as a probability of its own (no cancellation when P_k is
    near 1); two classes with a reference: the weights σ(η) σ(−η).
    """
    xt = jnp.concatenate([jnp.ones((x.shape[0], 1), x.dtype), x], axis=1) if intercept else x
    K = L.shape[1]
    if K == 2 and reference:
        eta = L[:, 1] - L[:, 0]
        a = w * jax.nn.sigmoid(eta) * jax.nn.sigmoid(-eta)
        return (xt * a[:, None]).T @ xt
    lse = jax.nn.logsumexp(L, axis=1, keepdims=True)
    P = jnp.exp(L - lse)
    others = jnp.where(jnp.eye(K, dtype=bool), -jnp.inf, 0.0)  # row k masks class k
    not_P = jnp.exp(jax.nn.logsumexp(L[:, None, :] + others, axis=2) - lse)  # 1 − P_k
    A = -P[:, :, None] * P[:, None, :]
    A = jnp.where(jnp.eye(K, dtype=bool), (P * not_P)[:, :, None], A)
    if reference:
        A = A[:, 1:, 1:]
    M = A.shape[1]
    q = xt.shape[1]
    V = (w[:, None, None, None] * A[:, :, :, None] * xt[:, None, None, :]).reshape(x.shape[0], M * M * q)
    H = (V.T @ xt).reshape(M, M, q, q)  # [k, l, i, j]
    return H.transpose(0, 2, 1, 3).reshape(M * q, M * q)


@partial(jax.jit, static_argnames=("num_free", "reference", "intercept", "hessian"))
def _pass_kernel(x, eta, d, offset, Y, w, *, num_free, reference, intercept, hessian):
    D = d.reshape(num_free, -1)
    W = D[:, int(intercept):].T
    eta_d = x @ W + D[:, 0] if intercept else x @ W
    new_eta = eta + eta_d
    L = obj.logits(new_eta, offset, reference)
    R, loss = obj.residuals_and_loss(L, Y, w, reference)
    H = _block_hessian(x, L, w, reference, intercept) if hessian else None
    return new_eta, eta_d, R.T @ x, jnp.sum(R, axis=0), loss, H


def row_loss(eta: np.ndarray, offset: np.ndarray, Y: np.ndarray, reference: bool) -> np.ndarray:
    """−log softmax(L_i)_{y_i} in NumPy, as :func:`kullback.glm._objective.row_loss` (the same
    cancellation-free forms), for the free logits η: host work, nothing to compile."""
    L = np.concatenate([np.zeros((eta.shape[0], 1)), eta], axis=1) + offset if reference else eta + offset
    if L.shape[1] == 2:
        e = L[:, 1] - L[:, 0]
        return np.maximum(np.where(Y[:, 1] > 0, -e, e), 0.0) + np.log1p(np.exp(-np.abs(e)))
    chosen = np.sum(np.where(Y > 0, L, 0.0), axis=1)
    masked = np.where(Y > 0, -np.inf, L)
    top = masked.max(axis=1)
    others = top + np.log(np.sum(np.exp(masked - top[:, None]), axis=1))
    u = others - chosen
    return np.maximum(u, 0.0) + np.log1p(np.exp(-np.abs(u)))


def _binary_row_loss(e: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """:func:`row_loss` of two classes: e the logit of class 1 against class 0 (offsets added),
    y1 whether the label is class 1, both shape ``(n,)``."""
    return np.maximum(np.where(y1 > 0, -e, e), 0.0) + np.log1p(np.exp(-np.abs(e)))


def _aligned_head(X: np.ndarray) -> int:
    """Rows h < 64 after which X's data start on a 64-byte boundary (jax then takes the rows
    without a copy); 0 if X is aligned already or no such h exists."""
    start, row = X.ctypes.data, X.strides[0]
    for h in range(64):
        if (start + h * row) % 64 == 0:
            return h
    return 0


class Blocks:
    """The rows of a fit on the device: X, one-hot labels, weights and offset in equal blocks.

    Args:
        X: features, shape ``(n, p)``, float64 (the columns already padded if wanted).
        labels: class indices, shape ``(n,)``; weights: shape ``(n,)`` (normalised by the caller).
        offset: shape ``(n, K)``; num_classes: K.
        num_free, reference, intercept: the parameterisation (see :mod:`kullback.glm._objective`).
    """

    def __init__(
        self, X: np.ndarray, labels: np.ndarray, weights: np.ndarray, offset: np.ndarray, *,
        num_classes: int, num_free: int, reference: bool, intercept: bool,
    ) -> None:
        X = np.require(X, dtype=np.float64, requirements=["C", "A"])  # aligned: NumPy and BLAS run slowly on odd addresses
        n, p = X.shape
        # Two classes against a reference (logistic regression, the binomial GLM): each pass is
        # two matrix-vector products and one Gram matrix, as fast in NumPy (BLAS) as compiled,
        # so these fits read X on the host and compile nothing.
        self.host = HOST_BINARY and num_classes == 2 and reference and num_free == 1
        if self.host:
            offset = np.asarray(offset, dtype=np.float64)
            self._binary(X, (np.asarray(labels) == 1).astype(np.float64), weights, offset[:, 1] - offset[:, 0], intercept)
            return
        B = block_rows(n)
        self.num_rows, self.rows, self.num_free = n, B, num_free
        self.statics = dict(num_free=num_free, reference=reference, intercept=intercept)
        self.reference = reference
        self.has_weight = bool(np.sum(weights) > 0)
        if n <= BLOCK_ROWS:
            h, full = 0, 0
        else:
            h = _aligned_head(X)
            full = (n - h) // B
        # Full blocks: rows h + i·B ... h + (i + 1)·B of X, as views. The rest (the head rows and
        # the remainder) go, copied, into padded blocks.
        self._h, self._full = h, full
        self._rest = np.r_[np.arange(h), np.arange(h + full * B, n)]
        onehot = np.zeros((n, num_classes))
        onehot[np.arange(n), labels] = 1.0
        self.X, self.Y, self.w, self.offset = [], [], [], []
        self._Y, self._w, self._offset = [], [], []  # host copies, for the line search
        with jax.enable_x64(True):
            for i in range(full):
                rows = slice(h + i * B, h + (i + 1) * B)
                self._add(X[rows], onehot[rows], weights[rows], offset[rows])
            rest = self._rest
            for start in range(0, rest.shape[0], B):
                idx = rest[start:start + B]
                self._add(*self._padded(X[idx], onehot[idx], weights[idx], offset[idx], B))
            self._zero_eta = jax.device_put(np.zeros((B, num_free)))

    @classmethod
    def binary(cls, X: np.ndarray, y1: np.ndarray, weights: np.ndarray, offset: np.ndarray | None, *,
               intercept: bool) -> Blocks:
        """The host blocks of two classes against a reference (what ``Blocks(...)`` builds for
        them) from the rows' labels as y1 = 1.0 (class 1) or 0.0, and the offset of the class-1
        logit (None: 0), without the (n, 2) one-hot labels and offsets of the general layout: a
        caller that builds blocks for every pass (a Dask kernel) saves their construction."""
        blocks = cls.__new__(cls)
        X = np.require(X, dtype=np.float64, requirements=["C", "A"])
        blocks._binary(X, y1, weights, offset, intercept)
        return blocks

    def _binary(self, X: np.ndarray, y1: np.ndarray, weights: np.ndarray, off_d: np.ndarray | None,
                intercept: bool) -> None:
        n = X.shape[0]
        self.host, self.num_rows, self.rows, self.num_free = True, n, n, 1
        self.statics = dict(num_free=1, reference=True, intercept=intercept)
        self.reference, self.intercept = True, intercept
        w = np.ascontiguousarray(weights, dtype=np.float64)
        self.has_weight = bool(np.sum(w) > 0)
        self._h, self._full, self._rest = 0, 1, np.zeros(0, dtype=int)
        # what a pass reads per row, contiguous: the label and the offsets' difference (None: 0)
        self._y1 = np.ascontiguousarray(y1, dtype=np.float64)
        self._off_d = None if off_d is None or not np.any(off_d) else np.ascontiguousarray(off_d, dtype=np.float64)
        self._w, self.X, self.w = [w], [X], [w]
        self._zero_eta = np.zeros((n, 1))

    @staticmethod
    def _padded(X, Y, w, off, B):
        m = X.shape[0]
        Xp = np.zeros((B, X.shape[1]))
        Xp[:m] = X
        Yp = np.zeros((B, Y.shape[1]))
        Yp[:m] = Y
        Yp[m:, 0] = 1.0
        wp = np.zeros(B)
        wp[:m] = w
        offp = np.zeros((B, off.shape[1]))
        offp[:m] = off
        return Xp, Yp, wp, offp

    def _add(self, X, Y, w, off) -> None:
        Y, w, off = (np.ascontiguousarray(a) for a in (Y, w, off))
        self._Y.append(Y)
        self._w.append(w)
        self._offset.append(off)
        self.X.append(jax.device_put(X))
        self.Y.append(jax.device_put(Y))
        self.w.append(jax.device_put(w))
        self.offset.append(jax.device_put(off))

    @property
    def zero_eta(self) -> list:
        return [self._zero_eta] * len(self.X)

    def rows_of(self, blocks: list) -> np.ndarray:
        """The per-row values of the blocks (each of leading size B) in the original row order."""
        parts = [np.asarray(b) for b in blocks]
        out = np.empty((self.num_rows,) + parts[0].shape[1:], parts[0].dtype)
        h, B, full = self._h, self.rows, self._full
        for i in range(full):
            out[h + i * B:h + (i + 1) * B] = parts[i]
        if self._rest.shape[0]:
            out[self._rest] = np.concatenate(parts[full:])[:self._rest.shape[0]]
        return out

    def step(self, eta: list, d: np.ndarray, *, hessian: bool):
        """One read of every block: (η + X̃d and X̃d per block, RᵀX, Σ R, Σ w ℓ at η + X̃d, and the
        data Hessian there if ``hessian``), the sums in float64 on the host."""
        if self.host:
            return self.host_pass(eta[0], np.asarray(d, dtype=np.float64), hessian)[:6]
        with jax.enable_x64(True):
            d = np.asarray(d, dtype=np.float64)
            outs = [
                _pass_kernel(x, e, d, o, y, w, hessian=hessian, **self.statics)
                for x, e, o, y, w in zip(self.X, eta, self.offset, self.Y, self.w)
            ]
            new_eta = [o[0] for o in outs]
            eta_d = [o[1] for o in outs]
            RtX = sum(np.asarray(o[2]) for o in outs)
            R_sum = sum(np.asarray(o[3]) for o in outs)
            loss = float(sum(float(o[4]) for o in outs))
            H = sum(np.asarray(o[5]) for o in outs) if hessian else None
        return new_eta, eta_d, RtX, R_sum, loss, H

    def host_pass(self, eta: np.ndarray | None, d: np.ndarray, hessian: bool, *, theta: np.ndarray | None = None,
                  ladder: tuple = (), certain_below: float = 0.0):
        """:func:`_pass_kernel` for two classes with a reference, in NumPy, in row chunks of
        ``HOST_CHUNK`` rows: each chunk of X is read once while it sits in cache (its logits, the
        loss, the gradient and the Gram matrix), and no n × p temporary is made.

        Args:
            eta: the free logits now, shape ``(n, 1)``; or None with ``theta``, the parameters
                whose logits X̃θ each chunk computes (for a caller that keeps nothing per row).
            d: the step; the pass is at η + X̃d.
            ladder: step lengths t whose loss Σ w ℓ at η + t·X̃d the pass also returns (a line
                search's first trials, without another read of the rows).
            certain_below: count the rows of positive weight whose loss ℓ at η + X̃d is below it.

        Returns:
            As :meth:`step`, the losses at the ``ladder`` (an array) and that count.
        """
        x, off, y1, w = self.X[0], self._off_d, self._y1, self._w[0]
        b0, beta = (d[0], d[1:]) if self.intercept else (0.0, d)
        n, p = x.shape
        moved = bool(np.any(d))
        if theta is not None:  # the products X θ and X d at once: one read of each chunk
            c0 = theta[0] if self.intercept else 0.0
            both = np.stack([theta[1:] if self.intercept else theta, beta], axis=1)
            eta_now = np.empty(n)
        else:
            eta_now = eta[:, 0]
        eta_d = np.empty(n)
        RtX, a_x, Hxx = np.zeros(p), np.zeros(p), np.zeros((p, p))
        trials = np.zeros(len(ladder))
        loss = R_sum = a_sum = 0.0
        certain = 0
        # the Gram matrix's scaled rows, one buffer for every chunk: a fresh chunk-sized array
        # each time is mapped and unmapped by malloc where its trim threshold is set (Dask's
        # workers set MALLOC_TRIM_THRESHOLD_), which made the Hessian pass nearly twice as slow
        xa_buf = np.empty((min(n, HOST_CHUNK), p)) if hessian else None
        for start in range(0, n, HOST_CHUNK):
            rows = slice(start, start + HOST_CHUNK)
            xs, ws, ys = x[rows], w[rows], y1[rows]
            if theta is not None:
                prod = xs @ both
                eta_now[rows] = now = prod[:, 0] + c0
                ed = prod[:, 1] + b0
            else:
                now = eta_now[rows]
                ed = xs @ beta + b0 if moved else np.zeros(xs.shape[0])
            eta_d[rows] = ed
            base = now if off is None else now + off[rows]
            e = base + ed
            z = np.exp(-np.abs(e))
            one_z = 1.0 + z
            sigma = np.where(e >= 0, 1.0, z) / one_z
            ell = np.maximum(np.where(ys > 0, -e, e), 0.0) + np.log1p(z)
            loss += float(ws @ ell)
            if certain_below > 0:
                certain += int(np.count_nonzero((ell < certain_below) & (ws > 0)))
            for j, t in enumerate(ladder):
                et = base + t * ed
                trials[j] += float(ws @ _binary_row_loss(et, ys))
            R = ws * (sigma - ys)
            RtX += R @ xs
            R_sum += float(R.sum())
            if hessian:
                a = ws * z / one_z**2  # w σ(e) σ(−e), without the cancellation of σ(1 − σ)
                a_sum += float(a.sum())
                a_x += a @ xs
                xa = np.multiply(xs, np.sqrt(a)[:, None], out=xa_buf[:xs.shape[0]])
                Hxx += xa.T @ xa
        H = None
        if hessian:
            if self.intercept:
                H = np.empty((p + 1, p + 1))
                H[0, 0] = a_sum
                H[0, 1:] = H[1:, 0] = a_x
                H[1:, 1:] = Hxx
            else:
                H = Hxx
        eta_now, eta_d = eta_now[:, None], eta_d[:, None]
        return [eta_now + eta_d], [eta_d], RtX[None, :], np.array([R_sum]), loss, H, trials, certain

    def trial(self, eta: list, eta_d: list, t: float):
        """(Σ w ℓ at η + t·X̃d, the logits there per block, the row losses there per block), in
        NumPy on the host (no read of X)."""
        if self.host:
            e_t = eta[0] + t * eta_d[0]
            ell = self._binary_loss(e_t[:, 0])
            return float(np.dot(self._w[0], ell)), [e_t], [ell]
        new_eta, losses, total = [], [], 0.0
        for e, ed, o, y, w in zip(eta, eta_d, self._offset, self._Y, self._w):
            e_t = np.asarray(e) + t * np.asarray(ed)
            ell = row_loss(e_t, o, y, self.reference)
            new_eta.append(e_t)
            losses.append(ell)
            total += float(np.dot(w, ell))
        return total, new_eta, losses

    def _binary_loss(self, e: np.ndarray) -> np.ndarray:
        """:func:`row_loss` of two classes from the free logit e (shape ``(n,)``), the pass's
        contiguous labels and offset difference: no (n, 2) temporaries."""
        return _binary_row_loss(e if self._off_d is None else e + self._off_d, self._y1)

    def row_loss(self, eta: list) -> np.ndarray:
        """The unweighted loss of each row at the logits η, shape ``(n,)``."""
        if self.host:
            return self._binary_loss(np.asarray(eta[0])[:, 0])
        return self.rows_of(
            [row_loss(np.asarray(e), o, y, self.reference) for e, o, y in zip(eta, self._offset, self._Y)]
        )
