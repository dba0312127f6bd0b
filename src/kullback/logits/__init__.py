"""The KL family from logits: ``kb.logits.kl(logits_p, logits_q)`` is KL(softmax p ‖ softmax q).

``kl``, ``cross_entropy`` and ``entropy`` stream over blocks of rows with custom gradients, so
vocabulary-scale inputs need no extra rows × vocabulary array.
"""

from ..measure._logits import (
    cross_entropy,
    entropy,
    jensen_shannon,
    kl,
    renyi,
    skew_kl,
    total_variation,
)

__all__ = [
    "kl",
    "cross_entropy",
    "entropy",
    "jensen_shannon",
    "renyi",
    "skew_kl",
    "total_variation",
]
