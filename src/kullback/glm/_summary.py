"""The coefficient table of a fitted GLM: estimates, standard errors, z, p-values, intervals.

Standard errors come from the observed information: the inverse Hessian of the summed negative
log-likelihood at the estimate, Σ = (S · ∇²f̄)⁻¹ with f̄ the weighted mean loss and S the
total weight (weights count as repeated rows). Wald: z = β / se, p = 2 Φ(−|z|), interval
β ± Φ⁻¹(1 − α/2) se. Defined for unpenalised fits only; a penalised fit's table keeps the
estimates and says that standard errors are not available.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import norm

__all__ = ["Summary", "covariance", "make_summary"]


def covariance(H_mean: np.ndarray, total_weight: float) -> np.ndarray:
    """(S · H̄)⁻¹ by a symmetric eigen-decomposition: inf variance along singular directions."""
    vals, vecs = np.linalg.eigh(H_mean * total_weight)
    floor = vals.max(initial=0.0) * H_mean.shape[0] * np.finfo(float).eps
    if (vals <= floor).any():  # not identifiable (separation, collinear columns): no finite SE
        cov = np.full_like(H_mean, np.nan)
        singular = vecs[:, vals <= floor]
        touched = np.any(np.abs(singular) > 1e-8, axis=1)
        cov[np.diag_indices_from(cov)] = np.where(touched, np.inf, np.nan)
        good = ~touched
        if good.any():
            sub = np.linalg.inv(H_mean[np.ix_(good, good)] * total_weight)
            cov[np.ix_(good, good)] = sub
        return cov
    return (vecs / vals) @ vecs.T


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
    p_value = np.where(np.isnan(z), np.nan, 2 * norm.sf(np.abs(z)))
    half = norm.ppf(1 - alpha / 2) * se
    return Summary(rows, coef, se, z, p_value, coef - half, coef + half, alpha, header, notes)
