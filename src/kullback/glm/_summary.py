"""The coefficient table of a fitted GLM: estimates, standard errors, z, p-values, intervals.

Standard errors come from the observed information: the inverse Hessian of the summed negative
log-likelihood at the estimate, Σ = (S · ∇²f̄)⁻¹ with f̄ the weighted mean loss and S the
total weight (weights count as repeated rows), computed from the equilibrated information so
that it does not depend on the units of the columns (:func:`covariance`); coefficients that the
data do not identify (collinear or constant columns) get NaN. Wald: z = β / se, p = 2 Φ(−|z|), interval
β ± Φ⁻¹(1 − α/2) se. Defined for unpenalised fits only; a penalised fit's table keeps the
estimates and says that standard errors are not available.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.linalg import lapack, solve_triangular
from scipy.special import ndtr, ndtri  # the normal's cdf and quantile: scipy.stats costs 0.25 s to import

__all__ = ["Summary", "covariance", "make_summary"]


_RANK_RTOL = 1e-11  # pivots of the equilibrated information below this (its diagonal is 1): rank lost
_NULL_TOL = 1e-6  # a coefficient with a null-space component above this (equilibrated units) is unidentified


def _equilibrate(info: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(J, d) with J = D⁻¹ I D⁻¹, D = diag(d), d_j = √I_jj (1 where I_jj is 0): unit diagonal.

    J does not change when a column of X is multiplied by c ≠ 0 (I_jk scales by c along that
    column, d_j by |c|), so neither does anything computed from it but the final unscaling."""
    diag = np.diag(info)
    d = np.where(np.isfinite(diag) & (diag > 0), np.sqrt(np.abs(diag)), 1.0)
    J = info / np.outer(d, d)
    return 0.5 * (J + J.T), d


def covariance(H_mean: np.ndarray, total_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Σ = I⁺ with I = S · H̄ the observed information, and which coefficients it identifies.

    Computed from the equilibrated matrix J = D⁻¹ I D⁻¹ (see :func:`_equilibrate`):
    Σ = D⁻¹ J⁻¹ D⁻¹, so the standard errors scale exactly as the columns of X and their
    accuracy depends on cond(J), not on the units (cond(I) grows as c² with a column ×c).
    A pivoted Cholesky factorisation of J gives its numerical rank r (pivots ≤ ``_RANK_RTOL``
    end it). Full rank: J⁻¹ from the factor. Rank r < m: the m − r smallest eigenvectors
    V₀ of J span its null space; coefficient j is identified iff ‖V₀ᵀe_j‖ = 0 (to
    ``_NULL_TOL``), and for those Σ = D⁻¹ J⁺ D⁻¹ (the variance of any identified
    combination cᵀθ is cᵀI⁺c, whichever generalised inverse); the rows and columns of the
    others are NaN.

    Args:
        H_mean: Hessian of the weighted mean loss, shape ``(m, m)``.
        total_weight: S, the sum of the sample weights.

    Returns:
        (Σ, identified): shape ``(m, m)``, and a boolean mask, shape ``(m,)``.
    """
    J, d = _equilibrate(np.asarray(H_mean, dtype=float) * float(total_weight))
    m = J.shape[0]
    if not np.all(np.isfinite(J)):
        return np.full((m, m), np.nan), np.zeros(m, dtype=bool)
    factor, piv, rank, info = lapack.dpstrf(J, tol=_RANK_RTOL, lower=1)
    if info == 0 and rank == m:  # full rank: J[piv][:, piv] = L Lᵀ
        L = np.tril(factor)
        inv_L = solve_triangular(L, np.eye(m), lower=True)
        J_inv = np.empty((m, m))
        order = piv - 1
        J_inv[np.ix_(order, order)] = inv_L.T @ inv_L
        return J_inv / np.outer(d, d), np.ones(m, dtype=bool)
    vals, vecs = np.linalg.eigh(J)
    null = max(m - int(rank), 1)
    identified = np.linalg.norm(vecs[:, :null], axis=1) <= _NULL_TOL
    J_pinv = (vecs[:, null:] / vals[null:]) @ vecs[:, null:].T
    cov = J_pinv / np.outer(d, d)
    cov[~identified, :] = np.nan
    cov[:, ~identified] = np.nan
    return cov, identified


@dataclass
class Summary:
    """A coefficient table; ``str()`` formats it, ``to_dict()`` gives plain lists (for JSON).

    Attributes:
        rows: one label per coefficient (``"class: feature"`` with more than one free class).
        coef, stderr, z, p_value, ci_low, ci_high: float arrays, one entry per row (NaN where
            not available).
        alpha: the intervals cover 1 − alpha.
        header: name / value pairs shown above the table (log-likelihood, deviance, AIC, ...).
        notes: sentences shown below it (separation, penalty).
    """

    rows: list[str]
    coef: np.ndarray
    stderr: np.ndarray
    z: np.ndarray
    p_value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    alpha: float
    header: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def clean(a: np.ndarray) -> list[float | str | None]:
            # JSON has no NaN or inf: NaN (not available) becomes null, ±inf the strings "inf", "-inf"
            return [float(v) if np.isfinite(v) else (None if np.isnan(v) else ("inf" if v > 0 else "-inf")) for v in a]

        return {
            "header": {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in self.header.items()},
            "coefficients": [
                {
                    "name": name, "coef": c, "stderr": s, "z": z, "p_value": p, "ci_low": lo, "ci_high": hi,
                }
                for name, c, s, z, p, lo, hi in zip(
                    self.rows, clean(self.coef), clean(self.stderr), clean(self.z), clean(self.p_value),
                    clean(self.ci_low), clean(self.ci_high),
                )
            ],
            "alpha": self.alpha,
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        width = max([len(r) for r in self.rows] + [9])
        level = f"{100 * (1 - self.alpha):g}%"
        lines = [f"{k + ':':<24}{_fmt(v) if not isinstance(v, str) else v}" for k, v in self.header.items()]
        lines.append("")
        lines.append(
            f"{'':<{width}}  {'coef':>11}  {'std err':>10}  {'z':>8}  {'P>|z|':>8}  "
            f"{'[' + level:>11}  {'interval]':>11}"
        )
        for i, name in enumerate(self.rows):
            lines.append(
                f"{name:<{width}}  {_fmt(self.coef[i]):>11}  {_fmt(self.stderr[i]):>10}  {_fmt(self.z[i], 3):>8}  "
                f"{_fmt(self.p_value[i], 3):>8}  {_fmt(self.ci_low[i]):>11}  {_fmt(self.ci_high[i]):>11}"
            )
        lines.extend(self.notes)
        return "\n".join(lines)

    __repr__ = __str__


def _fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if np.isnan(v):
        return "—"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 10 ** (-digits)):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}f}"


def make_summary(
    rows: list[str], coef: np.ndarray, stderr: np.ndarray | None, *, alpha: float,
    header: dict[str, Any], notes: list[str],
) -> Summary:
    """Build the table; ``stderr=None`` (penalised) leaves the inference columns NaN."""
    if not 0 < alpha < 1:
        raise ValueError(f"Expected alpha to be in (0, 1); got {alpha!r}.")
    coef = np.asarray(coef, dtype=float)
    se = np.full_like(coef, np.nan) if stderr is None else np.asarray(stderr, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(np.isfinite(se) & (se > 0), coef / se, np.where(np.isinf(se), 0.0, np.nan))
    p_value = np.where(np.isnan(z), np.nan, 2 * ndtr(-np.abs(z)))
    half = ndtri(1 - alpha / 2) * se
    return Summary(rows, coef, se, z, p_value, coef - half, coef + half, alpha, header, notes)
