"""The ``Estimate`` type: a value with its standard error and how it was computed."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["Estimate", "METHODS"]

METHODS = ("closed_form", "quadrature", "monte_carlo", "knn", "plug_in", "approximation", "bound")


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A measured quantity with an honest error.

    Attributes:
        value: the estimate (a float, or a numpy array for batched inputs).
        stderr: its standard error; 0 for exact methods (closed form), the estimated absolute
            error bound for quadrature, the Monte Carlo standard error otherwise.
        method: how it was computed: one of ``"closed_form"``, ``"quadrature"``,
            ``"monte_carlo"``, ``"knn"``, ``"plug_in"``, ``"approximation"``, ``"bound"``.
        num_samples: draws (Monte Carlo, k-NN) or function evaluations (quadrature) used.
        info: method-specific details (e.g. whether a requested tolerance was met).

    ``float(e)`` and ``numpy.asarray(e)`` give the value.

    Example:
        >>> import kullback as kb
        >>> e = kb.Estimate(value=0.5, stderr=0.01, method="monte_carlo", num_samples=1000)
        >>> float(e), e.stderr
        (0.5, 0.01)
        >>> e
        Estimate(value=0.5, stderr=0.01, method='monte_carlo', num_samples=1000)
    """

    value: Any
    stderr: Any
    method: str
    num_samples: int | None = None
    info: dict = dataclasses.field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("value", "stderr"):  # host values: scalars as float, batches as numpy
            host = np.asarray(getattr(self, name), dtype=float)
            object.__setattr__(self, name, float(host) if host.ndim == 0 else host)
        if self.method not in METHODS:
            raise ValueError(f"Expected method to be one of {METHODS}; got {self.method!r}.")

    def __float__(self) -> float:
        return float(np.asarray(self.value))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.value, dtype=dtype)

    def interval(self, level: float = 0.95) -> tuple[Any, Any]:
        """A normal-approximation confidence interval ``value ± z·stderr`` (exact methods: a point)."""
        if not 0 < level < 1:
            raise ValueError(f"Expected level to be between 0 and 1; got {level}.")
        from scipy.stats import norm

        z = norm.ppf(0.5 + level / 2)
        v, s = np.asarray(self.value), np.asarray(self.stderr)
        return v - z * s, v + z * s

    def __repr__(self) -> str:
        def fmt(x: Any) -> str:
            a = np.asarray(x)
            return repr(float(a)) if a.ndim == 0 else np.array2string(a, precision=6)

        extra = "" if self.num_samples is None else f", num_samples={self.num_samples}"
        return (
            f"Estimate(value={fmt(self.value)}, stderr={fmt(self.stderr)}, "
            f"method={self.method!r}{extra})"
        )
