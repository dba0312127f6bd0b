"""Fit q_θ by minimising KL in either direction.

``kullback.fit`` is this subpackage, and calling it calls :func:`kullback.fit.fit`:
``kb.fit(family, target, direction=..., key=..., **options)``. Its parts are reachable by name:
``kb.fit.FitResult``, ``kb.fit.ForwardOptions``, ``kb.fit.ReverseOptions``, ``kb.fit.psis``, ...

Example:
    >>> import kullback as kb
    >>> kb.fit.ReverseOptions().num_elbo_draws, callable(kb.fit), kb.fit.FitResult is kb.FitResult
    (4000, True, True)
"""

import inspect as _inspect
import sys as _sys
import types as _types

from ._api import DIRECTIONS, fit
from ._diagnostics import importance_diagnostics, pareto_k_verdict, psis
from ._options import ForwardOptions, ReverseOptions
from ._result import FitResult
from ._summary import FitSummary

__all__ = [
    "fit",
    "FitResult",
    "FitSummary",
    "ForwardOptions",
    "ReverseOptions",
    "DIRECTIONS",
    "psis",
    "importance_diagnostics",
    "pareto_k_verdict",
]


class _CallableModule(_types.ModuleType):
    """This subpackage's module type: calling the module is calling :func:`fit`."""

    def __call__(self, *args, **kwargs):
        return fit(*args, **kwargs)


__signature__ = _inspect.signature(fit)  # inspect.signature(kb.fit) and help() show fit's
_sys.modules[__name__].__class__ = _CallableModule
