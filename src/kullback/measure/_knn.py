"""k-nearest-neighbour estimates from sample sets: KL (Wang–Kulkarni–Verdú) and entropy
(Kozachenko–Leonenko). Neighbours come from ``scipy.spatial.cKDTree`` (Euclidean).

With x_1..x_n ~ p and y_1..y_m ~ q in d dimensions, ρ_k(i) the distance from x_i to its k-th
nearest neighbour among the other x, ν_k(i) that to its k-th nearest among the y:

    KL(p‖q) ≈ (d/n) Σ_i log(ν_k(i)/ρ_k(i)) + log(m/(n − 1))                       (WKV 2009, eq. 5)

The bias-corrected variant (WKV 2009, eq. 17) takes, per point, ε_i = max(ρ_k(i), ν_k(i)),
l_i = #{x_j within ε_i}, k_i = #{y_j within ε_i}, and

    KL(p‖q) ≈ (d/n) Σ_i log(ν_{k_i}(i)/ρ_{l_i}(i)) + (1/n) Σ_i [ψ(l_i) − ψ(k_i)] + log(m/(n − 1)).

Entropy (Kozachenko–Leonenko, with radii): H(p) ≈ ψ(n) − ψ(k) + log V_d + (d/n) Σ_i log ρ_k(i),
V_d = π^{d/2}/Γ(d/2 + 1) the volume of the unit ball.

Ties: a distance of 0 (duplicated points) has no logarithm; neighbours at distance 0 are
skipped, so ρ_k and ν_k are the k-th *positive* distances (a warning says how many points had
duplicates). The standard error comes by default from disjoint subsamples (batch means: the
estimate on each of B blocks of x and y, sd/√B); s/√n of the per-point terms is offered as a
cheaper but too-small alternative.

References: Wang, Kulkarni & Verdú, "Divergence estimation for multidimensional densities via
k-nearest-neighbor distances", IEEE Trans. Inf. Theory 55 (2009); Kozachenko & Leonenko,
"Sample estimate of the entropy of a random vector", Probl. Inf. Transm. 23 (1987).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax.numpy as jnp
import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln

from ._estimate import Estimate

__all__ = ["kl_from_samples", "entropy_from_samples", "knn_distances"]

_KNN_ERROR = "s/sqrt(n) of the per-point terms (ignores the noise of y and overlapping neighbourhoods)"
_SUBSAMPLE_ERROR = "sd of the estimates on {} disjoint subsamples / sqrt(number of subsamples)"


def _as_points(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"Expected {name} to be an array of shape (n,) or (n, d); got shape {a.shape}.")
    if a.shape[0] < 2:
        raise ValueError(f"Expected {name} to hold at least 2 samples; got {a.shape[0]}.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"Expected {name} to hold finite values; got NaN or inf.")
    return a


def _check_k(k: Any, n: int, name: str) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"Expected k to be a positive int; got {k!r}.")
    if k >= n:
        raise ValueError(f"Expected k to be smaller than the number of samples in {name} ({n}); got {k}.")


def knn_distances(
    tree: cKDTree, points: np.ndarray, k: int, *, skip_self: bool, workers: int = 1
) -> tuple[np.ndarray, int]:
    """The k-th smallest *positive* distance from each point to the tree's points.

    Returns the distances and the number of points that had neighbours at distance 0 (besides
    themselves when ``skip_self``). Duplicates are skipped by querying further until k positive
    distances are found.
    """
    extra = 0
    n_tree = tree.n
    while True:
        kk = min(k + extra + (1 if skip_self else 0), n_tree)
        dist, _ = tree.query(points, k=kk, workers=workers)
        dist = dist.reshape(len(points), -1)
        positive = dist > 0
        counts = positive.sum(axis=1)
        if np.all(counts >= k) or kk == n_tree:
            break
        extra = max(2 * extra, 4)
    if np.any(counts < k):
        raise ValueError(
            f"Expected at least {k} distinct neighbours for every point; some points have fewer "
            "(too many duplicated samples). Use a smaller k or de-duplicate the samples."
        )
    # index of the k-th positive distance in each row (distances are sorted ascending)
    idx = np.argmax(np.cumsum(positive, axis=1) >= k, axis=1)
    kth = dist[np.arange(len(points)), idx]
    zero_neighbours = (~positive).sum(axis=1) - (1 if skip_self else 0)
    return kth, int(np.sum(zero_neighbours > 0))


def _warn_reliability(n: int, m: int | None, d: int, ties: int) -> None:
    smallest = n if m is None else min(n, m)
    if d > 10 or smallest < 20 * d:
        warnings.warn(
            f"k-NN estimate with d = {d} and {smallest} samples may be unreliable: its bias decays "
            "like n^(-1/d). Use more samples, or fewer dimensions.",
            UserWarning,
            stacklevel=3,
        )
    if ties:
        warnings.warn(
            f"{ties} sample points have duplicates (distance 0); those neighbours were skipped.",
            UserWarning,
            stacklevel=3,
        )


def _kl_terms(
    x: np.ndarray, y: np.ndarray, k: int, bias_correction: bool, workers: int = 1
) -> tuple[np.ndarray, int]:
    d = x.shape[1]
    tree_x, tree_y = cKDTree(x), cKDTree(y)
    rho, ties_x = knn_distances(tree_x, x, k, skip_self=True, workers=workers)
    nu, ties_y = knn_distances(tree_y, x, k, skip_self=False, workers=workers)
    if not bias_correction:
        return d * (np.log(nu) - np.log(rho)), ties_x + ties_y
    eps = np.maximum(rho, nu) * (1.0 + 1e-12)
    l_i = np.asarray(tree_x.query_ball_point(x, eps, return_length=True)) - 1
    k_i = np.asarray(tree_y.query_ball_point(x, eps, return_length=True))
    l_i, k_i = np.maximum(l_i, k), np.maximum(k_i, k)
    rho_l = _kth_positive(tree_x, x, l_i, skip_self=True)
    nu_k = _kth_positive(tree_y, x, k_i, skip_self=False)
    return d * (np.log(nu_k) - np.log(rho_l)) + digamma(l_i) - digamma(k_i), ties_x + ties_y


def _kl_value(
    x: np.ndarray, y: np.ndarray, k: int, bias_correction: bool, workers: int = 1
) -> tuple[float, np.ndarray, int]:
    terms, ties = _kl_terms(x, y, k, bias_correction, workers)
    return float(terms.mean() + math.log(y.shape[0] / (x.shape[0] - 1))), terms, ties


def _blocks(n: int, num_blocks: int) -> list[np.ndarray]:
    return np.array_split(np.arange(n), num_blocks)


def _subsample_stderr(values: list[float]) -> float:
    """std of the B disjoint-subsample estimates / √B: the stderr of a full-sample estimate whose
    variance falls like 1/n (batch means)."""
    v = np.asarray(values)
    return float(v.std(ddof=1) / math.sqrt(len(v)))


def _check_error(error: Any, num_blocks: Any) -> None:
    if error not in ("subsample", "terms"):
        raise ValueError(f"Expected error to be 'subsample' or 'terms'; got {error!r}.")
    if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or num_blocks < 2:
        raise ValueError(f"Expected num_blocks to be an int of at least 2; got {num_blocks!r}.")


def kl_from_samples(
    x: Any,
    y: Any,
    *,
    k: int = 1,
    bias_correction: bool = False,
    error: str = "subsample",
    num_blocks: int = 10,
    workers: int = 1,
) -> Estimate:
    """Estimate KL(p‖q) from samples x ~ p and y ~ q by k-nearest-neighbour distances.

        KL ≈ (d/n) Σ_i log(ν_k(i)/ρ_k(i)) + log(m/(n − 1))

    (formula and the bias-corrected variant in the module docstring).

    Args:
        x: samples of p, shape ``(n,)`` or ``(n, d)``.
        y: samples of q, shape ``(m,)`` or ``(m, d)``.
        k: the neighbour order (default 1).
        bias_correction: use the adaptive-k, bias-corrected estimator of WKV (2009, eq. 17).
        error: ``"subsample"`` (default): the estimate is repeated on ``num_blocks`` disjoint
            subsamples (block b of x against block b of y) and stderr = sd/√num_blocks, which
            counts the noise of both samples (about the cost of one more estimate; within ~15% of
            the spread over repeats in our checks); ``"terms"``: s/√n of the per-point terms,
            cheaper, but it ignores y's noise and overlapping neighbourhoods (~30% too small).
        num_blocks: subsamples for ``error="subsample"``.
        workers: threads for the k-d tree queries (``-1``: all cores), as in ``cKDTree.query``.

    Returns:
        An :class:`Estimate` with method ``"knn"``; ``info`` holds k, d, the counts, the error
        kind and the number of tied points. Estimates may be negative (noise around a small
        KL); they are not clipped.

    Raises:
        ValueError: mismatched dimensions, too few samples, bad k, non-finite values.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.normal(0, 1, 5000), rng.normal(1, 1, 5000)
        >>> e = kl_from_samples(x, y)   # truth 0.5
        >>> e.method, abs(float(e) - 0.5) < 4 * float(e.stderr)
        ('knn', True)
    """
    x, y = _as_points(x, "x"), _as_points(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"Expected x and y to have the same dimension; got {x.shape[1]} and {y.shape[1]}.")
    (n, d), m = x.shape, y.shape[0]
    _check_k(k, n, "x")
    _check_k(k, m + 1, "y")
    _check_error(error, num_blocks)
    value, terms, ties = _kl_value(x, y, k, bias_correction, workers)
    _warn_reliability(n, m, d, ties)
    if error == "terms":
        stderr = terms.std(ddof=1) / math.sqrt(n)
        kind = _KNN_ERROR
    else:
        _check_k(k, n // num_blocks, "each subsample of x")
        bx, by = _blocks(n, num_blocks), _blocks(m, num_blocks)
        stderr = _subsample_stderr([_kl_value(x[ix], y[iy], k, bias_correction, workers)[0] for ix, iy in zip(bx, by)])
        kind = _SUBSAMPLE_ERROR.format(num_blocks)
    info = {"k": k, "d": d, "n": n, "m": m, "bias_correction": bias_correction, "tied_points": ties,
            "stderr_kind": kind}  # fmt: skip
    return Estimate(jnp.asarray(value), jnp.asarray(stderr), "knn", n + m, info)


def _kth_positive(tree: cKDTree, points: np.ndarray, ks: np.ndarray, *, skip_self: bool) -> np.ndarray:
    """Per-point k_i-th positive distance (k_i varies by point): grouped by k_i."""
    out = np.empty(len(points))
    for kk in np.unique(ks):
        rows = np.nonzero(ks == kk)[0]
        out[rows], _ = knn_distances(tree, points[rows], int(kk), skip_self=skip_self)
    return out


def _entropy_value(x: np.ndarray, k: int) -> tuple[float, np.ndarray, int]:
    n, d = x.shape
    rho, ties = knn_distances(cKDTree(x), x, k, skip_self=True)
    log_unit_ball = 0.5 * d * math.log(math.pi) - gammaln(0.5 * d + 1.0)
    terms = d * np.log(rho)
    return float(digamma(n) - digamma(k) + log_unit_ball + terms.mean()), terms, ties


def entropy_from_samples(x: Any, *, k: int = 1, error: str = "subsample", num_blocks: int = 10) -> Estimate:
    """Estimate the differential entropy H(p) from samples by Kozachenko–Leonenko.

        H ≈ ψ(n) − ψ(k) + log V_d + (d/n) Σ_i log ρ_k(i),   V_d = π^{d/2}/Γ(d/2 + 1)

    Args:
        x: samples of p, shape ``(n,)`` or ``(n, d)``.
        k: the neighbour order (default 1).
        error, num_blocks: the standard error, as in :func:`kl_from_samples`.

    Returns:
        An :class:`Estimate` with method ``"knn"`` and a standard error.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=5000)
        >>> e = entropy_from_samples(x)   # truth 1.418939
        >>> abs(float(e) - 1.418939) < 4 * float(e.stderr)
        True
    """
    x = _as_points(x, "x")
    n, d = x.shape
    _check_k(k, n, "x")
    _check_error(error, num_blocks)
    value, terms, ties = _entropy_value(x, k)
    _warn_reliability(n, None, d, ties)
    if error == "terms":
        stderr, kind = terms.std(ddof=1) / math.sqrt(n), _KNN_ERROR
    else:
        _check_k(k, n // num_blocks, "each subsample of x")
        stderr = _subsample_stderr([_entropy_value(x[ix], k)[0] for ix in _blocks(n, num_blocks)])
        kind = _SUBSAMPLE_ERROR.format(num_blocks)
    info = {"k": k, "d": d, "n": n, "tied_points": ties, "stderr_kind": kind}
    return Estimate(jnp.asarray(value), jnp.asarray(stderr), "knn", n, info)
