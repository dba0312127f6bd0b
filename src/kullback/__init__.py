"""kullback: measure Kullback-Leibler divergence between anything, and fit by minimising it.

KL(P‖Q) = H(P, Q) − H(P) ≥ 0, and KL(P‖Q) ≠ KL(Q‖P).
"""

from . import families
from ._errors import FitError, NoClosedFormError
from .fit import FitResult, fit
from .glm import LogisticRegression
from .measure import (
    Estimate,
    cross_entropy,
    entropy,
    estimate_cross_entropy,
    estimate_entropy,
    estimate_kl,
    kl,
)

__version__ = "0.1.0"

__all__ = [
    "kl",
    "cross_entropy",
    "entropy",
    "Estimate",
    "estimate_kl",
    "estimate_cross_entropy",
    "estimate_entropy",
    "fit",
    "FitResult",
    "families",
    "LogisticRegression",
    "NoClosedFormError",
    "FitError",
]
