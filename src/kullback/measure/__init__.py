"""Measure: KL divergence, cross-entropy and entropy, exact or estimated with an error."""

from .. import _stable_pytrees  # noqa: F401  (numpyro leaves in a fixed order: cache hits across processes)
from ._api import cross_entropy, entropy, kl
from ._divergences import jensen_shannon, renyi, skew_kl, total_variation
from ._estimate import Estimate
from ._registry import register_entropy, register_kl
from ._estimators import estimate_cross_entropy, estimate_entropy, estimate_kl
from ._expfam import bregman_kl
from ._knn import entropy_from_samples, kl_from_samples
from ._plugin import plugin_entropy, plugin_kl
from ._sampled import kl_from_log_probs, kl_from_logits, sampled_kl

__all__ = [
    "kl",
    "cross_entropy",
    "entropy",
    "Estimate",
    "estimate_kl",
    "estimate_cross_entropy",
    "estimate_entropy",
    "register_kl",
    "register_entropy",
    "jensen_shannon",
    "renyi",
    "skew_kl",
    "total_variation",
    "kl_from_samples",
    "entropy_from_samples",
    "plugin_kl",
    "plugin_entropy",
    "bregman_kl",
    "kl_from_log_probs",
    "kl_from_logits",
    "sampled_kl",
]
