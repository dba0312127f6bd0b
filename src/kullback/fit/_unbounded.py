"""Maximum-likelihood fits whose maximum does not exist: say so, and what to change instead.

Two common cases, where the likelihood rises without end and no iteration count can help:

* Student-t on data with tails no heavier than a normal's: the likelihood increases toward the
  normal limit ν → ∞ (ν runs to 10⁶ and beyond while the fit crawls).
* A free location under a density that is unbounded at the edge of its support (gamma or
  Weibull with shape < 1, beta with a concentration < 1 at that end): the likelihood grows
  without bound as the edge moves onto the smallest (or largest) data value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpyro.distributions as dist

__all__ = ["unbounded_message", "NORMAL_LIMIT_DF"]

NORMAL_LIMIT_DF = 1e6  # a fitted Student-t ν above this is the normal limit, not a finite maximum
_EDGE = 1e-6  # loc within this many scales of the data's minimum: on the edge


def _student_t(family: Any, values: dict) -> str | None:
    if getattr(family, "cls", None) is not dist.StudentT or "df" not in values:
        return None
    df = float(np.max(values["df"]))
    if df <= NORMAL_LIMIT_DF:
        return None
    return (f"No finite maximum: the likelihood rises toward the normal limit (df → ∞; the fit stopped at "
            f"df = {df:.3g}). The data show tails no heavier than a normal's: fit dist.Normal instead, "
            "or hold df fixed (e.g. kb.fit(dist.StudentT, x, df=30.0)). A larger max_iter cannot help.")


_SHAPES = {dist.Gamma: ("concentration", None), dist.Weibull: ("concentration", None),
           dist.Beta: ("concentration1", "concentration0")}


def _edge(family: Any, values: dict, data: np.ndarray) -> str | None:
    from ..families import LocScale

    if not isinstance(family, LocScale) or family.cls not in _SHAPES or "loc" not in values:
        return None
    if "loc" in dict(family.fixed) or data.ndim != 1:
        return None
    lower, upper = _SHAPES[family.cls]
    loc, scale = float(values["loc"]), float(values["scale"])
    low_edge = float(np.min(data)) - loc <= _EDGE * scale and float(values[lower]) < 1.0
    high_edge = (upper is not None and loc + scale - float(np.max(data)) <= _EDGE * scale
                 and float(values[upper]) < 1.0)
    if not (low_edge or high_edge):
        return None
    end = "smallest" if low_edge else "largest"
    return (f"No finite maximum: {family.cls.__name__} with a shape below 1 has a density that is infinite "
            f"at the edge of its support, and the likelihood grows without bound as that edge moves onto the "
            f"{end} data value ({float(np.min(data) if low_edge else np.max(data)):.6g}). Hold loc fixed "
            "(e.g. loc=0, or a value just beyond the data) or fit a family without a free location. "
            "A larger max_iter cannot help.")


def unbounded_message(family: Any, values: dict, data: np.ndarray) -> str | None:
    """Why this fit's likelihood has no finite maximum, and what to do, or None."""
    return _student_t(family, values) or _edge(family, values, np.asarray(data))
