"""Conditional models fitted by forward KL: the log loss of p(y | x)."""

from ._logistic import LogisticRegression

__all__ = ["LogisticRegression"]
