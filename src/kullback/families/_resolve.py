"""Turn what the user passed as a family into a family object."""

from __future__ import annotations

import inspect
from typing import Any

import numpyro.distributions as dist

from ._base import AbstractFamily
from ._numpyro import NumpyroFamily

__all__ = ["as_family"]


def as_family(family: Any) -> AbstractFamily:
    """A family object from a ``kb.families`` object or a numpyro distribution class.

    Args:
        family: e.g. ``kb.families.Gaussian(2)``, ``dist.StudentT`` or ``NumpyroFamily(dist.Gamma)``.

    Returns:
        The family object.

    Raises:
        TypeError: for anything else (a distribution instance, a string, ...).

    Example:
        >>> import numpyro.distributions as dist
        >>> from kullback.families import as_family
        >>> as_family(dist.Gamma).param_names
        ('concentration', 'rate')
    """
    if isinstance(family, AbstractFamily):
        return family
    if inspect.isclass(family) and issubclass(family, dist.Distribution):
        return NumpyroFamily(family)
    hint = ""
    if isinstance(family, dist.Distribution):
        hint = f" Pass the class (dist.{type(family).__name__}), not an instance."
    elif callable(family) and getattr(family, "__module__", "").startswith("numpyro"):
        hint = " This numpyro name is a factory function: pass a class such as dist.CategoricalLogits."
    raise TypeError(
        "Expected family to be a numpyro distribution class (e.g. dist.StudentT) or a "
        f"kullback.families object (e.g. Gaussian(2)); got {family!r}.{hint}"
    )
