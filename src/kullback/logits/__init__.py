"""The KL family from logits: ``kb.logits.kl(logits_p, logits_q)`` is KL(softmax p ‖ softmax q).

Every measure streams over blocks of rows with a custom gradient, so vocabulary-scale inputs need
no extra rows × vocabulary array. The ``linear_*`` losses are fused with the output layer: the
logits ``h wᵀ + b`` are never held for all rows and the whole vocabulary at once.
"""

from ..measure._linear_api import linear_cross_entropy, linear_jensen_shannon, linear_kl
from ..measure._logits import cross_entropy, entropy, kl
from ..measure._logits_family import generalized_jsd, jensen_shannon, renyi, skew_kl, total_variation

__all__ = [
    "kl",
    "cross_entropy",
    "entropy",
    "jensen_shannon",
    "generalized_jsd",
    "renyi",
    "skew_kl",
    "total_variation",
    "linear_kl",
    "linear_cross_entropy",
    "linear_jensen_shannon",
]
