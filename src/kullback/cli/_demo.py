"""The main job: forward vs reverse KL fits on built-in targets, as numbers.

Two targets, each fitted by a single normal q in both directions:

* ``bimodal``: p = ½ N(−3, 1) + ½ N(3, 1). Forward KL (mode-covering) gives the moment-matched
  normal N(0, 10); reverse KL (mode-seeking) sits on one mode, close to N(±3, 1).
* ``heavy_tail``: p = Student-t(3). Forward KL matches its variance 3 (a wider q); reverse KL gives
  a narrower q that stays where p has its mass.

The reverse fits are exact (``method="quadrature"``, which ``"auto"`` picks for a normal q on a
scalar target: Gauss–Hermite quadrature of the ELBO, minimised by Newton's method). Every KL is
reported with its method and error (``kb.estimate_kl``: quadrature in 1-D).

:func:`demo_command` is what ``kullback demo`` prints; the figure is :func:`kullback.plot.demo_figure`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np
import numpyro.distributions as dist

from ..fit import FitResult, fit
from ..measure import Estimate, estimate_kl

__all__ = ["DemoTarget", "default_targets", "run_demo", "demo_table", "demo_command"]


@dataclasses.dataclass(frozen=True)
class DemoTarget:
    """A named 1-D target p for the demo, with a label for tables and figures."""

    name: str
    label: str
    p: dist.Distribution


def default_targets() -> tuple[DemoTarget, ...]:
    """The built-in targets: an equal mixture of N(−3, 1) and N(3, 1), and Student-t with 3 df."""
    # NumPy parameters: numpyro validates them in NumPy (jnp arrays would run a dozen tiny XLA programs)
    bimodal = dist.MixtureSameFamily(
        dist.Categorical(probs=np.array([0.5, 0.5])),
        dist.Normal(np.array([-3.0, 3.0]), np.array([1.0, 1.0])),
    )
    heavy = dist.StudentT(np.array(3.0), np.array(0.0), np.array(1.0))
    return (
        DemoTarget("bimodal", "p = ½ N(−3, 1) + ½ N(3, 1)", bimodal),
        DemoTarget("heavy_tail", "p = Student-t(3)", heavy),
    )


def _estimate_dict(e: Estimate) -> dict[str, Any]:
    return {"value": float(e), "stderr": float(e.stderr), "method": e.method}


def _fit_summary(result: FitResult, p: dist.Distribution) -> dict[str, Any]:
    q = result.q
    return {
        "mean": float(q.loc),
        "sd": float(q.scale),
        "kl_p_q": _estimate_dict(estimate_kl(p, q)),
        "kl_q_p": _estimate_dict(estimate_kl(q, p)),
        "converged": bool(result.converged),
        "num_iterations": int(result.num_iterations),
        "objective": float(result.objective),
    }


def run_demo(*, key: int = 0, targets: tuple[DemoTarget, ...] | None = None) -> dict[str, Any]:
    """Fit a normal q to each target by forward and by reverse KL and measure both KLs.

    Args:
        key: the seed of the reverse fits (their only randomness).
        targets: the targets; the built-in ones by default.

    Returns:
        ``{name: {"label", "fits": {"forward": {...}, "reverse": {...}}, "results": {...}}}`` where
        each fit summary has ``mean``, ``sd``, ``kl_p_q`` and ``kl_q_p`` (value, stderr, method),
        ``converged``, ``num_iterations`` and ``objective``; ``results`` holds the
        :class:`kullback.FitResult` objects (not JSON).
    """
    out: dict[str, Any] = {}
    for target in targets or default_targets():
        results = {
            "forward": fit(dist.Normal, target.p, direction="forward"),
            "reverse": fit(dist.Normal, target.p, direction="reverse", key=key),
        }
        out[target.name] = {
            "label": target.label,
            "p": target.p,
            "fits": {d: _fit_summary(r, target.p) for d, r in results.items()},
            "results": results,
        }
    return out


def _fmt_estimate(e: dict[str, Any]) -> str:
    value = e["value"]
    text = "inf" if math.isinf(value) else f"{value:.5f}"
    if e["method"] == "closed_form":
        return f"{text} (closed form)"
    return f"{text} ± {e['stderr']:.1e} ({e['method']})"


def demo_table(demo: dict[str, Any]) -> str:
    """The text table of :func:`run_demo`'s result: per target, each fit's mean, sd and both KLs."""
    lines = []
    header = f"  {'fit':<9}{'mean':>9}{'sd':>9}   {'KL(p‖q)':<31}{'KL(q‖p)':<31}"
    for entry in demo.values():
        lines.append(entry["label"])
        lines.append(header)
        for direction, s in entry["fits"].items():
            flag = "" if s["converged"] else "  (not converged)"
            lines.append(
                f"  {direction:<9}{round(s['mean'], 4) + 0.0:>9.4f}{s['sd']:>9.4f}   "
                f"{_fmt_estimate(s['kl_p_q']):<31}{_fmt_estimate(s['kl_q_p']):<31}{flag}"
            )
        lines.append("")
    lines.append("forward = argmin_q KL(p‖q): mode-covering, heavier tails (maximum likelihood).")
    lines.append("reverse = argmin_q KL(q‖p): mode-seeking, thinner tails (variational inference).")
    return "\n".join(lines)


def demo_command(*, key: int = 0, figure_path: str | None = None, as_json: bool = False) -> str:
    """The text that ``kullback demo`` prints: the table (or JSON) of :func:`run_demo`.

    Args:
        key: the seed of the reverse fits.
        figure_path: where to write the figure (PNG); None: no figure.
        as_json: a JSON object (per target its label and fits, and the figure's path) instead.
    """
    result = run_demo(key=key)
    figure = None
    if figure_path is not None:
        from ..plot import demo_figure

        figure = demo_figure(result, figure_path)
    if as_json:
        payload: dict[str, Any] = {
            name: {"target": entry["label"], "fits": entry["fits"]} for name, entry in result.items()
        }
        payload["figure"] = figure
        return json.dumps(payload, indent=2, allow_nan=True)
    return demo_table(result) + (f"\nfigure: {figure}" if figure else "")
