"""PLACEHOLDER until estimate_kl lands (being written now)."""
from __future__ import annotations
def estimate_kl(p, q, *, method="auto", key=None, num_samples=None):
    raise NotImplementedError("placeholder")
def estimate_cross_entropy(p, q, *, method="auto", key=None, num_samples=None):
    raise NotImplementedError("placeholder")
def estimate_entropy(p, *, method="auto", key=None, num_samples=None):
    raise NotImplementedError("placeholder")
