"""Fit q_θ by minimising KL in either direction."""

from ._api import DIRECTIONS, fit
from ._result import FitResult

__all__ = [
    "fit",
    "FitResult",
    "DIRECTIONS",
]
