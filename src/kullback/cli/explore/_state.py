"""The explorer's state: one JSON value that says what the page shows (and is its URL).

A state is ``{"mode": "1d"|"2d", "q": family, "p": [components], "p2": [2-D components], "log": bool}``
(see the contract in the package docstring). :func:`normalise` validates a raw state with errors
that name the field (``p[1].scale must be > 0; got -1``), fills defaults and renormalises the
weights; :data:`PRESETS` hold the built-in targets; :func:`to_fragment` / :func:`from_fragment`
turn a state into the URL fragment the page keeps in ``location.hash`` and back.

Ranges (the page's sliders keep inside them; the engine's quadrature is exact to about 1e-10
there): |loc| ≤ 1000, scale in [1e-3, 1e3], df in [0.5, 1000], weight > 0, |corr| ≤ 0.99.
"""

from __future__ import annotations

import copy
import json
import math
import urllib.parse
from typing import Any

__all__ = [
    "MODES",
    "Q_FAMILIES",
    "KINDS",
    "MAX_COMPONENTS",
    "PRESETS",
    "default_state",
    "preset",
    "normalise",
    "to_fragment",
    "from_fragment",
]

MODES = ("1d", "2d")
Q_FAMILIES = ("normal", "student_t", "laplace", "mixture2")
KINDS = ("normal", "student_t", "laplace")  # the integer code of a kind is its index here
MAX_COMPONENTS = 4

LOC_MAX = 1e3
SCALE_RANGE = (1e-3, 1e3)
DF_RANGE = (0.5, 1e3)
CORR_MAX = 0.99
_DEFAULT_DF = 3.0


def _c(kind: str, loc: float, scale: float, weight: float, df: float = _DEFAULT_DF) -> dict:
    return {"kind": kind, "loc": loc, "scale": scale, "weight": weight, "df": df}


def _c2(mean, sd, corr, weight) -> dict:
    return {"mean": list(mean), "sd": list(sd), "corr": corr, "weight": weight}


_P2_DEFAULT = [_c2((-2.0, -1.0), (1.0, 0.6), 0.5, 0.5), _c2((2.0, 1.5), (0.8, 1.2), -0.4, 0.5)]

PRESETS: dict[str, dict] = {
    "bimodal": {"mode": "1d", "q": "normal", "p": [_c("normal", -3.0, 1.0, 0.5), _c("normal", 3.0, 1.0, 0.5)]},
    "heavy_tail": {"mode": "1d", "q": "normal", "p": [_c("student_t", 0.0, 1.0, 1.0, 3.0)]},
    "skewed_pair": {"mode": "1d", "q": "normal", "p": [_c("normal", 0.0, 1.0, 0.7), _c("normal", 2.5, 0.5, 0.3)]},
    "asymmetric_bimodal": {"mode": "1d", "q": "normal",
                           "p": [_c("normal", -2.0, 0.7, 0.7), _c("normal", 3.0, 1.5, 0.3)]},
    "laplace_mix": {"mode": "1d", "q": "normal",
                    "p": [_c("laplace", -1.5, 0.6, 0.4), _c("student_t", 2.0, 0.8, 0.4, 4.0), _c("normal", 0.0, 2.0, 0.2)]},
    "2d_bimodal": {"mode": "2d", "p2": copy.deepcopy(_P2_DEFAULT)},
}


def default_state() -> dict:
    """The bimodal preset with a normal q, normalised."""
    return preset("bimodal")


def preset(name: str) -> dict:
    """A normalised copy of ``PRESETS[name]``."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}; got {name!r}")
    return normalise(copy.deepcopy(PRESETS[name]))


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field} must be a number; got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{field} must be finite; got {value!r}")
    return x


def _in(value: Any, field: str, lo: float, hi: float) -> float:
    x = _number(value, field)
    if not lo <= x <= hi:
        raise ValueError(f"{field} must be in [{lo:g}, {hi:g}]; got {x:g}")
    return x


def _positive(value: Any, field: str) -> float:
    x = _number(value, field)
    if not x > 0:
        raise ValueError(f"{field} must be > 0; got {x:g}")
    return x


def _components(raw: Any, field: str) -> list:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_COMPONENTS:
        got = f"{len(raw)} components" if isinstance(raw, list) else repr(raw)
        raise ValueError(f"{field} must be a list of 1 to {MAX_COMPONENTS} components; got {got}")
    for i, c in enumerate(raw):
        if not isinstance(c, dict):
            raise ValueError(f"{field}[{i}] must be an object; got {c!r}")
    return raw


def _weights(comps: list) -> list:
    total = sum(c["weight"] for c in comps)
    for c in comps:
        c["weight"] = c["weight"] / total
    return comps


def _known(obj: dict, field: str, keys: tuple) -> None:
    unknown = set(obj) - set(keys)
    if unknown:
        raise ValueError(f"{field} has unknown keys {sorted(unknown)}; expected {', '.join(keys)}")


def _component_1d(c: dict, field: str) -> dict:
    _known(c, field, ("kind", "loc", "scale", "weight", "df"))
    kind = c.get("kind", "normal")
    if kind not in KINDS:
        raise ValueError(f"{field}.kind must be one of {list(KINDS)}; got {kind!r}")
    return {
        "kind": kind,
        "loc": _in(c.get("loc", 0.0), f"{field}.loc", -LOC_MAX, LOC_MAX),
        "scale": _in(_positive(c.get("scale", 1.0), f"{field}.scale"), f"{field}.scale", *SCALE_RANGE),
        "weight": _positive(c.get("weight", 1.0), f"{field}.weight"),
        "df": _in(_positive(c.get("df", _DEFAULT_DF), f"{field}.df"), f"{field}.df", *DF_RANGE),
    }


def _pair(value: Any, field: str) -> list:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{field} must be a list of 2 numbers; got {value!r}")
    return [_number(v, f"{field}[{i}]") for i, v in enumerate(value)]


def _component_2d(c: dict, field: str) -> dict:
    _known(c, field, ("mean", "sd", "corr", "weight"))
    mean = _pair(c.get("mean", [0.0, 0.0]), f"{field}.mean")
    for i, m in enumerate(mean):
        _in(m, f"{field}.mean[{i}]", -LOC_MAX, LOC_MAX)
    sd = _pair(c.get("sd", [1.0, 1.0]), f"{field}.sd")
    for i, s in enumerate(sd):
        _in(_positive(s, f"{field}.sd[{i}]"), f"{field}.sd[{i}]", *SCALE_RANGE)
    corr = _number(c.get("corr", 0.0), f"{field}.corr")
    if not abs(corr) <= CORR_MAX:
        raise ValueError(f"{field}.corr must be in [{-CORR_MAX}, {CORR_MAX}]; got {corr:g}")
    return {"mean": mean, "sd": sd, "corr": corr, "weight": _positive(c.get("weight", 1.0), f"{field}.weight")}


def normalise(raw: Any) -> dict:
    """A validated state with defaults filled and the weights of p (and p2) summing to 1.

    Raises ValueError naming the field (``p[1].scale must be > 0; got -1``).
    """
    if not isinstance(raw, dict):
        raise ValueError(f"state must be an object; got {raw!r}")
    _known(raw, "state", ("mode", "q", "p", "p2", "log"))
    mode = raw.get("mode", "1d")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}; got {mode!r}")
    q = raw.get("q", "normal")
    if q not in Q_FAMILIES:
        raise ValueError(f"q must be one of {list(Q_FAMILIES)}; got {q!r}")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"log must be true or false; got {log!r}")
    p = raw.get("p", PRESETS["bimodal"]["p"])
    p = _weights([_component_1d(c, f"p[{i}]") for i, c in enumerate(_components(p, "p"))])
    p2 = raw.get("p2", _P2_DEFAULT)
    p2 = _weights([_component_2d(c, f"p2[{i}]") for i, c in enumerate(_components(p2, "p2"))])
    return {"mode": mode, "q": q, "p": p, "p2": p2, "log": log}


def to_fragment(state: dict) -> str:
    """The URL fragment of a state: compact JSON, percent-encoded (what the page puts after ``#``)."""
    text = json.dumps(normalise(state), separators=(",", ":"), allow_nan=False)
    return urllib.parse.quote(text, safe="")


def from_fragment(fragment: str) -> dict:
    """The state in a URL fragment (with or without the leading ``#``), normalised."""
    text = urllib.parse.unquote(fragment[1:] if fragment.startswith("#") else fragment)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"fragment must be a URI-encoded JSON state; {e}") from None
    return normalise(raw)
