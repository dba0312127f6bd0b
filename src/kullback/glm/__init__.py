"""Conditional models fitted by forward KL: the log loss of p(y | x)."""

from ._base import IdentifiabilityWarning, SeparationWarning
from ._logistic import LogisticRegression
from ._losses import binary_cross_entropy, softmax_cross_entropy
from ._separation import Separation
from ._softmax import SoftmaxRegression
from ._summary import Summary

__all__ = [
    "IdentifiabilityWarning",
    "LogisticRegression",
    "SoftmaxRegression",
    "binary_cross_entropy",
    "softmax_cross_entropy",
    "Separation",
    "SeparationWarning",
    "Summary",
]
