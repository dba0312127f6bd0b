"""The explorer's Export: the figure (PNG) and table (JSON) of a state, as ``kullback demo`` writes them.

1-D: the demo's panels (:func:`kullback.plot.plot_fits`): p filled in grey, q forward (red,
dashed) and q reverse (blue, dash-dot), on a linear axis (the modes) and a log axis (the tails).
2-D: contours of p, q forward and q reverse in the same colours. The JSON holds, like
``kullback demo --json``, the target's label and each fit's parameters with KL(p‖q) and KL(q‖p)
(value, stderr, method), and also H(p), H(p, q), the reverse fit's local optima, the state and
its URL fragment. Files are named by a hash of the state, so exporting one state twice writes
the same two files.
"""

from __future__ import annotations

import hashlib
import json
import types
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["p_label", "p_distribution", "q_distribution", "write_export"]

_KIND_LABEL = {"normal": "N", "student_t": "t", "laplace": "Laplace"}
_FAMILY_LABEL = {"normal": "N", "student_t": "Student-t", "laplace": "Laplace", "mixture2": "2-normal mixture"}


def _g(x: float) -> str:
    return f"{round(float(x), 3) + 0.0:g}".replace("-", "−")


def _component_label(c: dict) -> str:
    args = [_g(c["loc"]), _g(c["scale"])]
    if c["kind"] == "student_t":
        args.insert(0, f"ν={_g(c['df'])}")
    return f"{_KIND_LABEL[c['kind']]}({', '.join(args)})"


def p_label(state: dict) -> str:
    """``p = 0.5 N(−3, 1) + 0.5 N(3, 1)`` (1-D) or ``p = 0.5 N₂((−2, −1), …) + …`` (2-D)."""
    if state["mode"] == "2d":
        parts = [f"{_g(c['weight'])} N₂(({_g(c['mean'][0])}, {_g(c['mean'][1])}), sd ({_g(c['sd'][0])}, "
                 f"{_g(c['sd'][1])}), ρ {_g(c['corr'])})" for c in state["p2"]]
    else:
        comps = state["p"]
        parts = [_component_label(c) if len(comps) == 1 else f"{_g(c['weight'])} {_component_label(c)}" for c in comps]
    return "p = " + " + ".join(parts)


def _one(kind: str, loc: float, scale: float, df: float):
    import numpyro.distributions as dist

    if kind == "normal":
        return dist.Normal(np.float64(loc), np.float64(scale))
    if kind == "laplace":
        return dist.Laplace(np.float64(loc), np.float64(scale))
    return dist.StudentT(np.float64(df), np.float64(loc), np.float64(scale))


def p_distribution(components: list[dict]):
    """The numpyro distribution of a normalised list of 1-D components (a mixture when several)."""
    import numpyro.distributions as dist

    parts = [_one(c["kind"], c["loc"], c["scale"], c["df"]) for c in components]
    if len(parts) == 1:
        return parts[0]
    probs = np.array([c["weight"] for c in components], dtype=np.float64)
    return dist.MixtureGeneral(dist.Categorical(probs=probs), parts)


def q_distribution(family: str, params: dict):
    """The numpyro distribution of a fitted q from the engine's ``params``."""
    import numpyro.distributions as dist

    if family == "mixture2":
        return dist.MixtureSameFamily(dist.Categorical(probs=np.asarray(params["weights"], dtype=np.float64)),
                                      dist.Normal(np.asarray(params["locs"], dtype=np.float64),
                                                  np.asarray(params["scales"], dtype=np.float64)))
    return _one(family, params["loc"], params["scale"], params.get("df", 0.0))


def _params_label(family: str, params: dict) -> str:
    if family == "mixture2":
        return " + ".join(f"{_g(w)} N({_g(m)}, {_g(s)}²)" for w, m, s in
                          zip(params["weights"], params["locs"], params["scales"]))
    if family == "student_t":
        return f"Student-t(ν={_g(params['df'])}, {_g(params['loc'])}, {_g(params['scale'])})"
    if family == "laplace":
        return f"Laplace({_g(params['loc'])}, {_g(params['scale'])})"
    return f"N({_g(params['loc'])}, {_g(params['scale'])}²)"


def _estimate(e: dict | None) -> Any:
    """An engine estimate for the JSON: value (inf when infinite), stderr, method."""
    if e is None:
        return None
    value = float("inf") if e.get("infinite") else e["value"]
    return {"value": value, "stderr": e["stderr"], "method": e["method"]}


def _fit_json(fit: dict) -> dict:
    out = {
        "family": fit["family"],
        "params": fit["params"],
        "method": fit["method"],
        "status": fit["status"],
        "kl_p_q": _estimate(fit["kl_p_q"]),
        "kl_q_p": _estimate(fit["kl_q_p"]),
        "cross_entropy_p_q": _estimate(fit.get("cross_entropy_p_q")),
    }
    if "optima" in fit:
        out["optima"] = [{**o, "kl_q_p": _estimate(o["kl_q_p"])} for o in fit["optima"]]
    return out


def _figure_1d(state: dict, result: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    from ...plot import _STYLE, plot_fits

    p = p_distribution(result["p"]["components"])
    family = result["q"]
    fits = {d: types.SimpleNamespace(q=q_distribution(family, result[d]["params"])) for d in ("forward", "reverse")}
    grid = result["grid"]["x"]
    x = np.linspace(grid[0], grid[-1], 721)
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    label = p_label(state)
    for ax, log_scale, headline in zip(fig.subplots(1, 2), (False, True), ("Modes", "Tails (log scale)")):
        plot_fits(ax, p, fits, x=x, log_scale=log_scale, title=f"{headline}\n{label}")
        for line in ax.get_lines():  # plot_fits names any q with a loc and scale N(·); say the family
            for direction, style in _STYLE.items():
                if line.get_label().startswith(style["label"]):
                    line.set_label(f"{style['label']}\n   = {_params_label(family, result[direction]['params'])}")
        ax.legend(frameon=False, fontsize=8, loc="lower center" if log_scale else "upper left")
    fig.suptitle(f"Fitting a {_FAMILY_LABEL[family]} q to p by forward and reverse KL", fontsize=12)
    fig.savefig(path, dpi=130)


def _figure_2d(state: dict, result: dict, path: Path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from ...plot import _STYLE

    grid = result["grid"]
    x, y = np.asarray(grid["x"]), np.asarray(grid["y"])
    density = np.asarray(grid["p"], dtype=float)
    top = float(np.nanmax(density))
    fig = Figure(figsize=(6.4, 5.6), layout="constrained")
    ax = fig.subplots()
    ax.contourf(x, y, density, levels=np.linspace(0.04 * top, top, 7), cmap="Greys", alpha=0.75)
    handles = [Line2D([], [], color="0.45", lw=6, alpha=0.5, label="p (target)")]
    for direction in ("forward", "reverse"):
        style = _STYLE[direction]
        q = np.asarray(grid[direction], dtype=float)
        q_top = float(np.nanmax(q))
        ls = "--" if direction == "forward" else "-."
        ax.contour(x, y, q, levels=q_top * np.array([0.05, 0.25, 0.6]), colors=style["color"], linestyles=ls,
                   linewidths=1.8)
        mean = result[direction]["params"]["mean"]
        ax.plot(*mean, marker="+", color=style["color"], ms=10, mew=2)
        handles.append(Line2D([], [], color=style["color"], ls=ls, lw=1.8, label=style["label"]))
    ax.set_aspect("equal")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.legend(handles=handles, frameon=False, fontsize=8, loc="upper left")
    ax.set_title(f"Full-covariance Gaussian q, forward and reverse KL\n{p_label(state)}", fontsize=9)
    fig.savefig(path, dpi=130)


def write_export(state: dict, result: dict, folder: str | Path) -> dict[str, Path]:
    """Write the figure and the table of ``result`` (``_engine.solve(state)``) into ``folder``.

    Returns ``{"png": path, "json": path}``; files ``kullback-explore-<hash of the state>.png/.json``.
    """
    from . import _state

    state = _state.normalise(state)
    fragment = _state.to_fragment(state)
    stem = "kullback-explore-" + hashlib.sha256(fragment.encode()).hexdigest()[:12]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    png, table = folder / f"{stem}.png", folder / f"{stem}.json"
    (_figure_2d if state["mode"] == "2d" else _figure_1d)(state, result, png)
    payload = {
        "explore": {
            "target": p_label(state),
            "mode": state["mode"],
            "q": result["q"],
            "entropy_p": _estimate(result["p"]["entropy"]),
            "fits": {d: _fit_json(result[d]) for d in ("forward", "reverse")},
        },
        "state": state,
        "url_fragment": "#" + fragment,
        "figure": str(png),
    }
    table.write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n")
    return {"png": png, "json": table}
