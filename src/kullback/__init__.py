"""kullback: measure Kullback-Leibler divergence between anything, and fit by minimising it.

KL(P‖Q) = H(P, Q) − H(P) ≥ 0, and KL(P‖Q) ≠ KL(Q‖P).
"""

from . import families, logits
from ._errors import FitError, NoClosedFormError
from .fit import FitResult, fit
from .glm import LogisticRegression, SoftmaxRegression
from .measure import (
    bregman_kl,
    entropy_from_samples,
    kl_from_samples,
    plugin_entropy,
    plugin_kl,
    register_entropy,
    register_kl,
    Estimate,
    cross_entropy,
    entropy,
    estimate_cross_entropy,
    estimate_entropy,
    estimate_kl,
    jensen_shannon,
    kl,
    renyi,
    skew_kl,
    total_variation,
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
    "SoftmaxRegression",
    "kl_from_samples",
    "entropy_from_samples",
    "plugin_kl",
    "plugin_entropy",
    "bregman_kl",
    "register_kl",
    "register_entropy",
    "NoClosedFormError",
    "FitError",
    "logits",
    "jensen_shannon",
    "renyi",
    "skew_kl",
    "total_variation",
]
