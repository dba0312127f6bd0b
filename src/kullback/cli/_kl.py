"""The text of ``kullback kl P Q``: parse two distribution specs, estimate KL(P‖Q), format.

No math here: parsing is :mod:`kullback.cli._syntax`, the estimate is
:func:`kullback.measure.estimate_kl` (closed form, else quadrature, else Monte Carlo).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..measure import estimate_kl
from ._syntax import parse_distribution

__all__ = ["kl_command"]


def _number(x: Any) -> float | list:
    a = np.asarray(x, dtype=float)
    return float(a) if a.ndim == 0 else a.tolist()


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.6g}"


def kl_command(p: str, q: str, as_json: bool = False, method: str = "auto", seed: int = 0) -> str:
    """The text that ``kullback kl P Q`` prints: KL(P‖Q), how it was computed, and its error.

    Args:
        p, q: distribution specs such as ``"normal(0, 1)"`` or ``"student_t(3)"``.
        as_json: a JSON object instead of text.
        method: as in :func:`kullback.estimate_kl`.
        seed: the Monte Carlo seed.

    Returns:
        The text (or JSON) to print.

    Example:
        >>> print(kl_command("normal(0, 1)", "normal(1, 2)"))
        KL(normal(0, 1) ‖ normal(1, 2)) = 0.443147 nats
        method: closed_form (exact)
    """
    P, Q = parse_distribution(p), parse_distribution(q)
    e = estimate_kl(P, Q, method=method, key=seed)
    value, stderr = _number(e.value), _number(e.stderr)
    if as_json:
        info = {k: _number(v) if hasattr(v, "shape") or isinstance(v, float) else v for k, v in e.info.items()
                if isinstance(v, (int, float, str, bool)) or hasattr(v, "shape")}  # fmt: skip
        payload = {"p": p, "q": q, "kl": value, "stderr": stderr, "method": e.method, "num_samples": e.num_samples,
                   "info": info}  # fmt: skip
        return json.dumps(payload, allow_nan=True)
    if isinstance(value, list):
        head = f"KL({p} ‖ {q}) = {np.array2string(np.asarray(value), precision=6)} nats"
    else:
        head = f"KL({p} ‖ {q}) = {_fmt(value)} nats"
    if e.method == "closed_form":
        return f"{head}\nmethod: closed_form (exact)"
    kind = e.info.get("stderr_kind", "error")
    err = _fmt(stderr) if not isinstance(stderr, list) else np.array2string(np.asarray(stderr), precision=3)
    extra = f", {e.num_samples} draws" if e.method == "monte_carlo" else ""
    return f"{head}\nmethod: {e.method}{extra}\nerror: ±{err} ({kind})"
