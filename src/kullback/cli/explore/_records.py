"""The explorer's estimate record, shared by the 1-D and the 2-D engine."""

from __future__ import annotations

from typing import Any

__all__ = ["estimate"]


def estimate(value: Any, err: Any, *, infinite: bool = False, kl: bool = True, method: str = "quadrature") -> dict:
    """The result's estimate record: a KL is clipped at 0 (its quadrature can round below it)."""
    if infinite:
        return {"value": None, "stderr": 0.0, "method": method, "infinite": True}
    v = float(value)
    return {"value": max(v, 0.0) if kl else v, "stderr": float(err), "method": method, "infinite": False}
