"""Parameterised families q_θ: unconstrained parameters <-> numpyro distributions."""

from ._gaussian import Gaussian

__all__ = ["Gaussian"]
