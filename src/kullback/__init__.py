"""kullback: measure Kullback-Leibler divergence between anything, and fit by minimising it.

KL(P‖Q) = H(P, Q) − H(P) ≥ 0, and KL(P‖Q) ≠ KL(Q‖P).

``import kullback`` is cheap: it imports neither JAX nor numpyro. Each public name is imported
from its submodule the first time it is used (PEP 562), and the first such import switches the
persistent compilation cache on when ``KULLBACK_CACHE_DIR`` is set.

Example:
    >>> import kullback as kb
    >>> kb.__version__
    '0.1.0'
    >>> callable(kb.fit) and callable(kb.kl)
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    "kl_from_log_probs",
    "kl_from_logits",
    "sampled_kl",
    "enable_compile_cache",
]

_MEASURE_NAMES = (
    "bregman_kl",
    "entropy_from_samples",
    "kl_from_samples",
    "plugin_entropy",
    "plugin_kl",
    "register_entropy",
    "register_kl",
    "Estimate",
    "cross_entropy",
    "entropy",
    "estimate_cross_entropy",
    "estimate_entropy",
    "estimate_kl",
    "jensen_shannon",
    "kl",
    "renyi",
    "skew_kl",
    "total_variation",
    "kl_from_log_probs",
    "kl_from_logits",
    "sampled_kl",
)

# public name -> the submodule that defines it
_ORIGIN: dict[str, str] = {
    **{name: ".measure" for name in _MEASURE_NAMES},
    "FitError": "._errors",
    "NoClosedFormError": "._errors",
    "enable_compile_cache": "._compile",
    "FitResult": ".fit",
    "LogisticRegression": ".glm",
    "SoftmaxRegression": ".glm",
}

# subpackages reachable as attributes (``kb.logits.kl``, ``kb.glm.Summary``); ``kb.fit`` is the
# subpackage too, and calling it calls ``kullback.fit.fit``
_SUBPACKAGES = ("families", "logits", "measure", "glm", "fit")

_cache_checked = False

if TYPE_CHECKING:  # for type checkers and IDEs; nothing below runs at import
    from . import families, logits
    from ._compile import enable_compile_cache
    from ._errors import FitError, NoClosedFormError
    from . import fit
    from .fit import FitResult
    from .glm import LogisticRegression, SoftmaxRegression
    from .measure import (
        Estimate,
        bregman_kl,
        cross_entropy,
        entropy,
        entropy_from_samples,
        estimate_cross_entropy,
        estimate_entropy,
        estimate_kl,
        jensen_shannon,
        kl,
        kl_from_log_probs,
        kl_from_logits,
        kl_from_samples,
        plugin_entropy,
        plugin_kl,
        register_entropy,
        register_kl,
        renyi,
        sampled_kl,
        skew_kl,
        total_variation,
    )


def _cache_once() -> None:
    """Before the first heavy import: the compilation cache from ``KULLBACK_CACHE_DIR``, once."""
    global _cache_checked
    if _cache_checked:
        return
    _cache_checked = True
    from ._compile import cache_from_environment

    cache_from_environment()


def _load(name: str) -> Any:
    """Import what ``name`` refers to, bind it on the package and return it."""
    _cache_once()
    if name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        value = getattr(importlib.import_module(_ORIGIN[name], __name__), name)
    globals()[name] = value
    return value


def __getattr__(name: str) -> Any:
    """PEP 562: a public name is imported from its submodule on first use."""
    if name in _ORIGIN or name in _SUBPACKAGES:
        return _load(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The names already bound plus every public name, loaded or not."""
    return sorted(set(globals()) | set(__all__) | set(_SUBPACKAGES))
