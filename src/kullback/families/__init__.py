"""Parameterised families q_θ: unconstrained parameters <-> numpyro distributions."""

from .. import _stable_pytrees  # noqa: F401  (numpyro leaves in a fixed order: cache hits across processes)
from ._base import AbstractFamily
from ._flow import Flow
from ._gaussian import Gaussian
from ._gaussian_mixture_q import GaussianMixtureQ
from ._locscale import LocScale
from ._mixture import Mixture
from ._lowrank import LowRankGaussian
from ._numpyro import NumpyroFamily
from ._resolve import as_family

__all__ = [
    "AbstractFamily",
    "Flow",
    "Gaussian",
    "GaussianMixtureQ",
    "LocScale",
    "Mixture",
    "LowRankGaussian",
    "NumpyroFamily",
    "as_family",
]
