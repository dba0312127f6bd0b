"""Detect perfect and quasi-complete separation by a linear program on the signs.

The maximum-likelihood logistic (or softmax) coefficients are finite iff no direction d ≠ 0
raises every observed label's logit against every other class's, weakly, and some strictly:

    a_rᵀd ≥ 0 for every constraint row r,  a_r = x̃_i ⊗ (e_{y_i} − e_k),  k ≠ y_i,

(a binary model has one row per example, ±x̃_i). Along such a d the likelihood increases for
ever, so the estimates diverge. Following Konis (2007), the linear program

    maximise Σ_r a_rᵀd  subject to  a_rᵀd ≥ 0 for all r,  −1 ≤ d_j ≤ 1,

has optimum 0 iff there is no separation. The optimal d names the separating direction: the
features (columns of X) with a non-zero entry in it; the rows with a_rᵀd > 0 are the
separated examples (all of them: complete separation; some: quasi-complete). Columns are
scaled to max |x| = 1 first, so the tolerances are relative. Runs on the host with scipy's
HiGHS, only when the fit shows signs of divergence.

The features reported are an irreducible set: with S the separated rows, the direction of
least ‖d‖₁ with a_rᵀd ≥ 1 on S and ≥ 0 elsewhere (one more LP) gives a sparse support; then
each of its features in turn (smallest |d_j| first) is dropped while a direction on the
remaining ones still separates all of S. No reported feature can be left out (the intercept
is always allowed and shown only if the direction uses it); a feature that merely correlates
with the separating ones is not named.

References:
    Konis, K. (2007). Linear programming algorithms for detecting separated data in binary
    logistic regression models. DPhil thesis, University of Oxford.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Separation", "find_separation"]

_TOL = 1e-7


@dataclass(frozen=True)
class Separation:
    """A separating direction: where the maximum-likelihood estimate is infinite.

    Attributes:
        kind: ``"complete"`` (every example separated) or ``"quasi-complete"``.
        features: indices of the separating features (columns of X; the intercept is -1).
        feature_names: their names (``"intercept"`` for the intercept).
        direction: the direction d, shape ``(M, q)`` like the free parameters (intercept first).
        num_separated: examples whose label the direction predicts with certainty.
    """

    kind: str
    features: tuple[int, ...]
    feature_names: tuple[str, ...]
    direction: np.ndarray
    num_separated: int

    def __str__(self) -> str:
        names = ", ".join(self.feature_names)
        return (
            f"{self.kind} separation: {self.num_separated} examples are predicted with certainty along a "
            f"direction in the features [{names}]"
        )


def _constraints(Xt: np.ndarray, labels: np.ndarray, K: int, reference: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows a_r (flattened over (M, q)) and the example each row belongs to."""
    n, q = Xt.shape
    if K == 2 and reference:
        sign = np.where(labels == 1, 1.0, -1.0)
        return Xt * sign[:, None], np.arange(n)
    free = list(range(1, K)) if reference else list(range(K))
    index = {k: a for a, k in enumerate(free)}
    rows, owner = [], []
    for k in range(K):
        mask = labels != k
        if not mask.any():
            continue
        sub = Xt[mask]
        A = np.zeros((sub.shape[0], len(free), q))
        y_sub = labels[mask]
        for c in range(K):  # + x̃ on the observed label's block, − on class k's
            if c in index:
                A[y_sub == c, index[c], :] += sub[y_sub == c]
        if k in index:
            A[:, index[k], :] -= sub
        rows.append(A.reshape(sub.shape[0], -1))
        owner.append(np.flatnonzero(mask))
    return np.concatenate(rows), np.concatenate(owner)


def _sparse_stack(A: np.ndarray):
    from scipy import sparse

    return sparse.hstack([sparse.csr_matrix(-A), sparse.identity(A.shape[0], format="csr")], format="csr")


def _l1_direction(A: np.ndarray, strict: np.ndarray, allowed: np.ndarray) -> np.ndarray | None:
    """argmin ‖d‖₁ over d supported on ``allowed`` with a_rᵀd ≥ 1 (strict rows), ≥ 0 (others);
    ``None`` if infeasible. As an LP in d = d⁺ − d⁻, d± ≥ 0."""
    cols = np.flatnonzero(allowed)
    A_sub = A[:, cols]
    k = cols.shape[0]
    A_ub = np.hstack([-A_sub, A_sub])
    if A_ub.shape[0] > 2000:
        from scipy import sparse

        A_ub = sparse.csr_matrix(A_ub)
    from scipy.optimize import linprog  # on first use: 0.1 s to import

    result = linprog(
        np.ones(2 * k), A_ub=A_ub, b_ub=-strict.astype(float), bounds=[(0.0, None)] * (2 * k), method="highs"
    )
    if result.status != 0:
        return None
    d = np.zeros(A.shape[1])
    d[cols] = result.x[:k] - result.x[k:]
    return d


def _irreducible(A: np.ndarray, strict: np.ndarray, q: int, intercept: bool) -> np.ndarray | None:
    """A separating direction on an irreducible set of features (see the module docstring).

    A's columns are flattened over (M, q); feature j owns column j of every class block."""
    owner = np.tile(np.arange(q), A.shape[1] // q)  # the feature of each entry of d
    allowed = np.ones(A.shape[1], dtype=bool)
    d = _l1_direction(A, strict, allowed)
    if d is None:
        return None
    D = np.abs(d).reshape(-1, q).max(axis=0)
    support = [j for j in np.argsort(D, kind="stable") if D[j] > 0 and not (intercept and j == 0)]
    allowed = np.isin(owner, np.flatnonzero(D > 0) if not intercept else np.r_[0, np.flatnonzero(D > 0)])
    for j in support:
        trial = allowed & (owner != j)
        d_trial = _l1_direction(A, strict, trial)
        if d_trial is not None:
            allowed, d = trial, d_trial
    return d


def find_separation(
    X: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    *,
    num_classes: int,
    reference: bool,
    intercept: bool,
    names: list[str],
) -> Separation | None:
    """Solve the linear program above; ``None`` when the estimates are finite.

    Args:
        X: features, shape ``(n, p)``; labels: class indices, shape ``(n,)``; weights: rows with
            weight 0 are left out.
        num_classes: K; reference: class 0 is the reference; intercept: x̃ = [1, x].
        names: the p feature names.
    """
    keep = weights > 0
    X, labels = X[keep], labels[keep]
    Xt = np.hstack([np.ones((X.shape[0], 1)), X]) if intercept else X
    scale = np.max(np.abs(Xt), axis=0)
    scale[scale == 0] = 1.0
    Xs = Xt / scale
    A, owner = _constraints(Xs, labels, num_classes, reference)
    R, m = A.shape
    # Variables [d, s]: maximise Σ s_r subject to a_rᵀd ≥ s_r, 0 ≤ s_r ≤ 1, d free. The rows
    # that some direction separates strictly form one maximal set (the cone is convex), and
    # scaling d lets each reach s_r = 1: the optimum counts them, 0 without separation.
    from scipy.optimize import linprog  # on first use: 0.1 s to import

    result = linprog(
        np.concatenate([np.zeros(m), -np.ones(R)]),
        A_ub=np.hstack([-A, np.eye(R)]) if R <= 2000 else _sparse_stack(A),
        b_ub=np.zeros(R),
        bounds=[(None, None)] * m + [(0.0, 1.0)] * R,
        method="highs",
    )
    if result.status != 0 or -result.fun < 0.5:
        return None
    d = result.x[:m] / np.max(np.abs(result.x[:m]))
    margins = A @ d
    if margins.min() < -_TOL:  # not a clean separating direction
        return None
    strict = result.x[m:] > 0.5
    separated = np.ones(X.shape[0], dtype=bool)  # every row of the example strictly separated
    np.logical_and.at(separated, owner, strict)
    q = Xt.shape[1]
    sparse_d = _irreducible(A, strict, q, intercept)
    if sparse_d is not None and (A @ sparse_d).min() >= -_TOL:
        d = sparse_d / np.max(np.abs(sparse_d))
    D = d.reshape(-1, q)
    D[np.abs(D) <= 1e3 * _TOL] = 0.0
    active = np.flatnonzero(np.any(D != 0, axis=0))
    features = tuple(int(j) - 1 if intercept else int(j) for j in active)
    labelled = ["intercept"] + list(names) if intercept else list(names)
    # Report the direction in the original units of X (the LP ran on scaled columns).
    direction = D / scale
    return Separation(
        kind="complete" if separated.all() else "quasi-complete",
        features=features,
        feature_names=tuple(labelled[j] for j in active),
        direction=direction,
        num_separated=int(separated.sum()),
    )
