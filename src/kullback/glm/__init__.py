"""Conditional models fitted by forward KL: the log loss of p(y | x)."""

from ._logistic import LogisticRegression
from ._losses import binary_cross_entropy

__all__ = [
    "LogisticRegression",
    "binary_cross_entropy",
]
