"""Logistic and softmax regression on Dask collections: the in-memory solvers over per-block sums.

The solvers of :mod:`kullback.glm` (Newton with its Armijo search, L-BFGS) read the data only
through an object with ``step(η, d)`` (one pass: the gradient parts, the loss and optionally the
Hessian at θ + d) and ``trial(η, X̃d, t)`` (the loss at θ + t·d). :class:`DaskBlocks` is that
object over a cluster: its "logits" are the parameters θ themselves (the logits X̃θ are
recomputed in each block, nothing per row is kept between passes), and each pass runs
:func:`_step_kernel` per row block, which builds the in-memory :class:`~kullback.glm._blocks.Blocks`
of its rows and calls the same ``step`` and ``trial``, so the math is the in-memory one, summed
in float64 by :func:`~kullback.distributed._protocol.map_reduce`. While line searches halve
their steps, a pass also evaluates the loss at the first two halvings, so that such a step costs
one pass (the next halvings, rarely needed, or a halving after full steps cost one more pass).

Tall binary data take the in-memory path: pass 0 also gathers every k-th row (``X[::k]``) for
the in-memory pilot start and subsampled Hessian, so the steps are the same. Differences from the
in-memory fit, none of which changes the optimum: softmax fits use the exact Hessian at every step,
and columns are not padded.

The private ``glm`` names imported below (the pilot and subsample strides, the start, the penalty
embedding, the certainty threshold and LP size of the separation check, the feature names) are
the in-memory fit's own choices; the Dask fit takes the same steps only by reading the same
ones, so they are imported rather than restated (a copy would drift).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..glm._base import _CERTAIN, _LP_MAX_CELLS, SeparationWarning, _feature_names
from ..glm import _blocks
from ..glm._blocks import Blocks
from ..glm._data import _two_values, check_design, check_labels, check_offset
from ..glm._fit import _PILOT_ROWS, SE_MAX_WIDTH, Problem, Solution, _embed, _start, _subsample, choose_solver, null_loglike
from ..glm._lbfgs import lbfgs
from ..glm._newton import CONVERGED, newton
from ..glm._separation import find_separation
from ..glm._sklearn_compat import as_raised
from ._protocol import as_block, as_dask_array, block_weights, map_reduce, on_worker, row_blocks, tree_add

__all__ = ["DaskBlocks", "fit_linear_classifier"]

_LADDER = (0.5, 0.25)  # step lengths whose loss each pass with a step also returns
_MORE_HALVINGS = 12  # halvings evaluated by the pass a deeper line search needs


@dataclass(frozen=True)
class Setup:
    """What every block kernel needs besides its rows: the classes and the parameterisation."""

    classes: np.ndarray
    total: float  # Σ sample weights: the kernel's weights are s / total, as in memory
    num_classes: int
    num_free: int
    reference: bool
    intercept: bool
    binary: bool
    null: bool = False  # the null model: X replaced by one zero column


def _stats_kernel(x: Any, y: Any, w: Any, off: Any, start: int, owner: str, strides: tuple) -> dict:
    """Pass 0 of a fit, per block: checks, the weight of each label, Σ w and Σ w x² per column,
    and for each stride k the rows whose index in the whole data (``start`` + local) is a
    multiple of k: the in-memory fit's subsamples (``X[::k]``), for its pilot start and its
    subsampled Hessian."""
    x = as_block(x)
    m = x.shape[0]
    if m:
        x = check_design(x, "X", owner=owner)
    if off is not None and not np.all(np.isfinite(np.asarray(off, dtype=np.float64))):
        raise ValueError("Expected offset to be finite; it has NaN or infinite entries.")
    w = block_weights(w, m)
    y = np.asarray(y).reshape(-1)
    two = _two_values(y)  # the common binary block without sorting its labels
    values, inverse = two if two is not None else np.unique(y, return_inverse=True)
    per_label = np.bincount(inverse.reshape(-1), weights=w, minlength=values.shape[0])
    off = np.zeros(m) if off is None else np.asarray(off, dtype=np.float64)
    samples = {k: tuple(a[(-start) % k::k] for a in (x, y, w, off)) for k in strides}
    return {"labels": dict(zip(values.tolist(), per_label.tolist())), "weight": float(w.sum()),
            "sq": _weighted_squares(x, w), "rows": m, "samples": samples}


def _weighted_squares(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Σ w x² per column, in row chunks through one buffer (no block-sized temporary: workers
    whose malloc trims (Dask sets MALLOC_TRIM_THRESHOLD_) map and fault in every large one)."""
    out = np.zeros(x.shape[1])
    buf = np.empty((min(x.shape[0], _blocks.HOST_CHUNK), x.shape[1]))
    for start in range(0, x.shape[0], _blocks.HOST_CHUNK):
        xs = x[start:start + _blocks.HOST_CHUNK]
        out += w[start:start + xs.shape[0]] @ np.square(xs, out=buf[:xs.shape[0]])
    return out


def _combine_stats(a: dict, b: dict) -> dict:
    """The associative combine of :func:`_stats_kernel` (a before b in row order): label weights
    merged, samples concatenated, the rest added."""
    labels = dict(a["labels"])
    for k, v in b["labels"].items():
        labels[k] = labels.get(k, 0.0) + v
    samples = {k: tuple(np.concatenate([u, v]) for u, v in zip(a["samples"][k], b["samples"][k])) for k in a["samples"]}
    special = ("labels", "samples")
    rest = tree_add({k: a[k] for k in a if k not in special}, {k: b[k] for k in b if k not in special})
    return {"labels": labels, "samples": samples, **rest}


def _step_kernel(x, y, w, off, setup: Setup, theta, d, ladder, hessian: bool, final: bool) -> dict:
    """One block of one pass: the in-memory ``Blocks.step`` at θ + d (and ``trial`` at θ + t·d
    for t in ``ladder``), weights s / total; ``final`` adds Σ s ℓ and the count of certain rows."""
    x = as_block(x)
    m = x.shape[0]
    if setup.null:
        x = np.zeros((m, 1))
    s = block_weights(w, m)
    M, q = setup.num_free, x.shape[1] + int(setup.intercept)
    out = {"RtX": np.zeros((M, x.shape[1])), "R_sum": np.zeros(M), "loss": 0.0, "trials": np.zeros(len(ladder)),
           "H": np.zeros((M * q, M * q)) if hessian else None}
    if final:
        out.update(loglike=0.0, certain=0)
    if m == 0:
        return out
    if not np.any(d):  # a read at θ itself
        theta, d = np.zeros_like(theta), theta
    if _blocks.HOST_BINARY and setup.num_classes == 2 and setup.reference:  # in NumPy, one read of the rows
        return _binary_pass(x, y, s, off, setup, theta, d, ladder, hessian, final, out)
    on_worker()  # compiled kernels
    labels = np.searchsorted(setup.classes, np.asarray(y).reshape(-1))
    offset = check_offset(off, m, setup.num_classes, binary=setup.binary)
    blk = Blocks(x, labels, s / setup.total, offset, num_classes=setup.num_classes, num_free=M,
                 reference=setup.reference, intercept=setup.intercept)
    base = blk.step(blk.zero_eta, theta, hessian=False)[0] if np.any(theta) else blk.zero_eta
    new_eta, eta_d, RtX, R_sum, loss, H = blk.step(base, d, hessian=hessian)
    trials = [blk.trial(base, eta_d, t)[0] for t in ladder]
    out.update(RtX=np.asarray(RtX), R_sum=np.asarray(R_sum), loss=float(loss), H=None if H is None else np.asarray(H))
    out["trials"] = np.asarray(trials, dtype=np.float64).reshape(len(ladder))
    if final:
        ell = blk.row_loss(new_eta)
        out.update(loglike=-float(s @ ell), certain=int(np.count_nonzero((ell < _CERTAIN) & (s > 0))))
    return out


def _binary_pass(x, y, s, off, setup: Setup, theta, d, ladder, hessian: bool, final: bool, out: dict) -> dict:
    """:func:`_step_kernel` for two classes against a reference: the host blocks built from the
    labels directly (no one-hot rows), X̃θ, X̃d, the ladder's losses and the certain rows counted
    in :meth:`~kullback.glm._blocks.Blocks.host_pass`'s one read of the rows."""
    m = x.shape[0]
    y1 = (np.asarray(y).reshape(-1) == setup.classes[1]).astype(np.float64)
    if off is None:
        off_d = None
    else:
        offset = check_offset(off, m, 2, binary=setup.binary)
        off_d = offset[:, 1] - offset[:, 0]
    blk = Blocks.binary(x, y1, s / setup.total, off_d, intercept=setup.intercept)
    _, _, RtX, R_sum, loss, H, trials, certain = blk.host_pass(
        None, d, hessian, theta=theta, ladder=ladder, certain_below=_CERTAIN if final else 0.0)
    out.update(RtX=np.asarray(RtX), R_sum=np.asarray(R_sum), loss=float(loss), H=H,
               trials=np.asarray(trials, dtype=np.float64).reshape(len(ladder)))
    if final:  # Σ s ℓ = total · Σ (s / total) ℓ
        out.update(loglike=-float(loss) * setup.total, certain=certain)
    return out


class DaskBlocks:
    """The interface of :class:`~kullback.glm._blocks.Blocks` that the solvers use, one Dask pass
    per ``step``; the "logits" η passed around are the parameters θ (flat, float64)."""

    def __init__(self, blocks: list[tuple], setup: Setup, width: int) -> None:
        self.blocks, self.setup, self.width = blocks, setup, width
        self.num_free, self.has_weight, self.host = setup.num_free, True, False
        self.num_passes = 0
        self.halved = True  # whether the last line search halved its step (the first one may)
        self._trials: dict[tuple, dict[float, float]] = {}
        self.at: dict[bytes, dict] = {}  # θ + d → Σ s ℓ and the certain rows there, from its pass

    @property
    def zero_eta(self) -> np.ndarray:
        return np.zeros(self.width)

    def run(self, theta, d, ladder=(), *, hessian: bool, final: bool = False) -> dict:
        """One pass over the rows (see :func:`_step_kernel`)."""
        self.num_passes += 1
        theta, d = np.asarray(theta, dtype=np.float64), np.asarray(d, dtype=np.float64)
        return map_reduce(_step_kernel, self.blocks, self.setup, theta, d, tuple(ladder), hessian, final)

    def step(self, eta, d, *, hessian: bool):
        theta, d = np.asarray(eta, dtype=np.float64), np.asarray(d, dtype=np.float64)
        # the first halvings' losses, while line searches need them (once full steps are taken,
        # Newton's model is accurate: they would cost a quarter of each read for nothing)
        # (none in the solvers' first read, at their start θ₀ as 0 + θ₀: no search follows it)
        ladder = _LADDER if np.any(d) and self.halved and self.num_passes > 0 else ()
        if ladder:
            self.halved = False
        out = self.run(theta, d, ladder, hessian=hessian, final=True)
        self._trials[(theta.tobytes(), d.tobytes())] = dict(zip(ladder, out["trials"].tolist()))
        self.at[(theta + d).tobytes()] = {"loglike": out["loglike"], "certain": out["certain"], "H": out["H"]}
        return theta + d, d, out["RtX"], out["R_sum"], out["loss"], out["H"]

    def trial(self, eta, eta_d, t: float):
        theta, d = np.asarray(eta, dtype=np.float64), np.asarray(eta_d, dtype=np.float64)
        known = self._trials.setdefault((theta.tobytes(), d.tobytes()), {})
        self.halved = True
        if t not in known:  # a deeper line search: the next halvings in one pass
            ladder = tuple(t * 0.5**j for j in range(_MORE_HALVINGS))
            known.update(zip(ladder, self.run(theta, d, ladder, hessian=False)["trials"].tolist()))
        return known[t], theta + t * d, None


def _scale(sq: np.ndarray, total: float, M: int, intercept: bool) -> np.ndarray:
    """The solvers' unit per parameter, as ``glm._fit._column_scale``, from Σ s x² and Σ s."""
    rms = np.sqrt(sq / total)
    rms = np.where(np.isfinite(rms) & (rms > 0), rms, 1.0)
    return np.tile(np.r_[1.0, rms] if intercept else rms, M)


def _classes(labels: dict, dtype: Any, owner: str, binary: bool) -> tuple[np.ndarray, np.ndarray]:
    """The sorted classes (checked as in memory) and the weight of each."""
    keys = sorted(labels)
    values = np.array(keys, dtype=dtype if isinstance(dtype, np.dtype) else object)
    classes, _ = check_labels(values, values.shape[0], owner=owner, binary=binary)
    return classes, np.array([labels[k] for k in keys])


def _strides(n: int, p: int, binary: bool, intercept: bool) -> dict[str, int]:
    """The in-memory fit's subsample strides for n rows of a binary fit (``glm._fit``): the pilot's
    (n // 2¹⁴, used from 4) and the subsampled Hessian's; none for softmax (K is not known yet)."""
    if not binary:
        return {}
    out = {}
    if n // _PILOT_ROWS >= 4:
        out["pilot"] = n // _PILOT_ROWS
    k = _subsample(n, p + int(intercept))
    if k > 1:
        out["sub"] = k
    return out


def _sample_blocks(sample: tuple, setup: Setup) -> Blocks | None:
    """In-memory blocks of a subsample, its weights s / total rescaled to sum to 1 (if they can)."""
    x, y, s, off = sample
    w = s / setup.total
    share = w.sum()
    labels = np.searchsorted(setup.classes, y)
    offset = check_offset(off, x.shape[0], setup.num_classes, binary=setup.binary)
    return Blocks(x, labels, w / share if share > 0 else w, offset, num_classes=setup.num_classes,
                  num_free=setup.num_free, reference=setup.reference, intercept=setup.intercept)


def _pilot_start(blocks: Blocks, r, lam, mu, theta0: np.ndarray, scale, intercept: bool) -> np.ndarray:
    """Newton's start: the fit to the pilot rows when it converges to finite values, else ``theta0``."""
    if not blocks.has_weight:
        return theta0
    fit = newton(blocks, r, lam, mu, theta0, 1e-6, 50, intercept=intercept, scale=scale)
    usable = fit.status == CONVERGED and np.all(np.isfinite(fit.params))
    return np.asarray(fit.params) if usable else theta0


def _solve(blocks, setup: Setup, p: int, ridge: float, l1: float, solver: str, tol: float, max_iter: int,
           theta0: np.ndarray, scale: np.ndarray, samples: dict | None = None,
           final_hessian: bool = False) -> tuple[Any, DaskBlocks]:
    """The in-memory solver over :class:`DaskBlocks`; ``samples`` (stride → rows), as in memory
    for tall binary data: a pilot fit to every k-th row as the start, every k′-th row's Hessian
    for the steps (``glm._fit._pilot`` and ``_subsample``)."""
    M, intercept = setup.num_free, setup.intercept
    data = DaskBlocks(blocks, setup, M * (p + int(intercept)))
    r = _embed(ridge, M, p, p, intercept, 1.0)
    mu = 1.0 if (intercept and not setup.reference) else 0.0
    if solver == "newton":
        lam = _embed(l1, M, p, p, intercept, 0.0)
        pilot, sub = (samples or {}).get("pilot"), (samples or {}).get("sub")
        if pilot is not None and not np.any(lam > 0):
            theta0 = _pilot_start(_sample_blocks(pilot, setup), r, lam, mu, theta0, scale, intercept)
        sub = None if sub is None else _sample_blocks(sub, setup)
        result = newton(data, r, lam, mu, theta0, float(tol), int(max_iter), intercept=intercept, scale=scale, sub=sub,
                        final_hessian=final_hessian)
    else:
        data.halved = False  # L-BFGS reads at points, it never asks a pass for a halving
        result = lbfgs(data, r, mu, theta0, float(tol), int(max_iter), intercept=intercept, scale=scale)
    return result, data


def _null_loglike(blocks, setup: Setup, shares: np.ndarray, has_offset: bool, tol: float, max_iter: int) -> float:
    """As ``glm._fit.null_loglike``: closed form without an offset, else a fit (or a pass) on one zero column."""
    K = setup.num_classes
    if not has_offset:
        summary = Problem(np.zeros((K, 1)), np.arange(K), shares, np.zeros((K, K)), K, True, setup.intercept, 0.0, 0.0)
        return null_loglike(summary, tol=tol, max_iter=max_iter)
    null = Setup(setup.classes, setup.total, K, K - 1, True, setup.intercept, setup.binary, null=True)
    q = 1 + int(setup.intercept)
    theta = np.zeros((K - 1) * q)
    if setup.intercept:
        theta0 = np.zeros((K - 1, q))
        log_share = np.log(np.maximum(shares / shares.sum(), 1e-12))
        theta0[:, 0] = log_share[1:] - log_share[0]
        theta = _solve(blocks, null, 1, 1.0, 0.0, "newton", tol, max_iter, theta0.reshape(-1), 1.0)[0].params
    data = DaskBlocks(blocks, null, theta.shape[0])
    return float(data.run(theta, np.zeros_like(theta), hessian=False, final=True)["loglike"])


def _separation(est, arrays: dict, setup: Setup, names: list[str], n: int, p: int):
    """The in-memory separation check (a linear program on the rows), when they fit in memory."""
    if n * (p + 1) > _LP_MAX_CELLS:
        warnings.warn(
            f"{type(est).__name__}: some rows are predicted with certainty, so the data may be separated, but the "
            f"separation check (a linear program on all {n} rows) needs them in memory and was not run. Use "
            "penalty='l2' for finite estimates, or check a sample in memory.",
            as_raised(SeparationWarning), stacklevel=4,
        )
        return None
    import dask

    X, y, w = dask.compute(arrays["X"], arrays["y"], arrays["sample_weight"])
    s = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    labels = np.searchsorted(setup.classes, np.asarray(y).reshape(-1))
    return find_separation(np.asarray(X, dtype=np.float64), labels, s, num_classes=setup.num_classes,
                           reference=setup.reference, intercept=setup.intercept, names=names)


def fit_linear_classifier(est, X: Any, y: Any, sample_weight: Any = None, offset: Any = None):
    """``LinearClassifier.fit`` on Dask collections (see :meth:`kullback.LogisticRegression.fit`)."""
    est._check_settings()
    owner = type(est).__name__
    if y is None:
        raise ValueError(f"{owner} requires y to be passed, but the target y is None.")
    columns = getattr(X, "columns", None)
    X = as_dask_array(X, "X")
    if X.ndim != 2:
        raise ValueError(f"Expected X to be 2-D (n_samples, n_features); got shape {X.shape}.")
    n, p = X.shape
    y = as_dask_array(y, "y")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if sample_weight is not None and np.ndim(sample_weight) == 0 and not hasattr(sample_weight, "dask"):
        import dask.array as da

        sample_weight = da.full(n, float(sample_weight), chunks=(X.chunks[0],))
    arrays = {"X": X, "y": y, "sample_weight": sample_weight, "offset": offset}
    blocks = row_blocks(arrays)
    strides = _strides(n, p, est._binary, bool(est.fit_intercept))
    starts = np.cumsum([0] + list(X.chunks[0][:-1]))
    stats = map_reduce(_stats_kernel, [(*b, int(i)) for b, i in zip(blocks, starts)], owner,
                       tuple(sorted(set(strides.values()))), combine=_combine_stats)
    classes, shares = _classes(stats["labels"], y.dtype, owner, est._binary)
    K, total = classes.shape[0], float(stats["weight"])
    if not total > 0:
        raise ValueError("Expected sample_weight to have a positive total; all weights are zero.")
    ridge, l1 = est._penalty_weights(total)
    reference = est.penalty is None or K == 2
    M, q = (K - 1 if reference else K), p + int(est.fit_intercept)
    setup = Setup(classes, total, K, M, reference, bool(est.fit_intercept), est._binary)
    solver = choose_solver(est.solver, M * q, l1 > 0)
    want_se = bool(est.stderr) and est.penalty is None and M * q <= SE_MAX_WIDTH
    shape_only = Problem(np.zeros((K, p)), np.arange(K), shares, np.zeros((K, K)), K, reference,
                         setup.intercept, ridge, l1)
    samples = {name: stats["samples"][k] for name, k in strides.items()}
    result, data = _solve(blocks, setup, p, ridge, l1, solver, est.tol, est.max_iter, _start(shape_only, q),
                          _scale(stats["sq"], total, M, setup.intercept), samples, want_se)
    final = data.at.get(np.asarray(result.params, dtype=np.float64).tobytes())
    if final is None or (want_se and result.hessian is None and final["H"] is None):  # one more pass
        final = data.run(result.params, np.zeros_like(result.params), hessian=want_se and result.hessian is None,
                         final=True)
    hessian = (result.hessian if result.hessian is not None else final["H"]) if want_se else None
    sol = Solution(Theta=np.asarray(result.params).reshape(M, q), objective=float(result.objective),
                   violation=float(result.violation), num_steps=int(result.num_steps), status=int(result.status),
                   solver=solver, loglike=float(final["loglike"]), row_loss=np.zeros(0), hessian=hessian)
    shape_only.weights = np.array([total])
    names = _feature_names(columns, p)
    est._store(sol, shape_only, classes, names)
    est.num_passes_ = data.num_passes
    est.null_loglike_ = _null_loglike(blocks, setup, shares, offset is not None, est.tol, est.max_iter)
    est.null_deviance_ = 2.0 * (est.saturated_loglike_ - est.null_loglike_)
    est.separation_ = None
    small = n * (p + 1) <= _LP_MAX_CELLS
    if est.penalty is None and (final["certain"] > 0 or (sol.status != CONVERGED and small)):
        est.separation_ = _separation(est, arrays, setup, names, n, p)
    est._inference(sol, total)
    est._warn(sol)
    return est
