"""Fit q_θ by minimising KL in either direction."""

from ._api import DIRECTIONS, fit
from ._diagnostics import importance_diagnostics, pareto_k_verdict, psis
from ._result import FitResult

__all__ = [
    "fit",
    "FitResult",
    "DIRECTIONS",
    "psis",
    "importance_diagnostics",
    "pareto_k_verdict",
]
