"""Parameterised families q_θ: unconstrained parameters <-> numpyro distributions."""

from ._base import AbstractFamily
from ._gaussian import Gaussian
from ._numpyro import NumpyroFamily
from ._resolve import as_family

__all__ = [
    "AbstractFamily",
    "Gaussian",
    "NumpyroFamily",
    "as_family",
]
