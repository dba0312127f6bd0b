"""Figures: a target density p beside its forward and reverse KL fits."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen needed; callers that want one can switch back
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_fits", "demo_figure"]

_STYLE = {
    "forward": {"color": "#c0392b", "ls": "--", "label": "q forward: argmin KL(p‖q)"},
    "reverse": {"color": "#2471a3", "ls": "-.", "label": "q reverse: argmin KL(q‖p)"},
}


@jax.jit
def _log_prob(d: Any, x: jax.Array) -> jax.Array:
    """d.log_prob on the grid as one program (eagerly, a mixture's log_prob is some fifty small
    programs, each traced and looked up in the compilation cache in every process)."""
    return d.log_prob(x)


def plot_fits(
    ax: Any,
    p: Any,
    fits: dict[str, Any],
    *,
    x: np.ndarray,
    title: str = "",
    log_scale: bool = False,
) -> Any:
    """Draw the density of ``p`` (filled) and of each fitted ``q`` on ``ax``.

    Args:
        ax: a matplotlib Axes.
        p: the target, anything with a ``log_prob`` on scalars.
        fits: ``{"forward": FitResult, "reverse": FitResult}`` (either may be missing).
        x: the grid, shape (n,).
        title: the panel's title.
        log_scale: draw the densities on a log axis (to show the tails).

    Returns:
        ``ax``.
    """
    grid = jnp.asarray(x)
    density = np.exp(np.asarray(_log_prob(p, grid)))
    ax.fill_between(x, density, color="0.85", label="p (target)")
    ax.plot(x, density, color="0.35", lw=1.2)
    peak = float(np.max(density))
    for direction, result in fits.items():
        style = _STYLE[direction]
        q = result.q
        q_density = np.exp(np.asarray(_log_prob(q, grid)))
        label = style["label"]
        if hasattr(q, "loc") and hasattr(q, "scale") and np.ndim(q.loc) == 0:
            label += f"\n   = N({round(float(q.loc), 2) + 0.0:.2f}, {float(q.scale):.2f}²)"
        ax.plot(x, q_density, color=style["color"], ls=style["ls"], lw=2.2, label=label)
        peak = max(peak, float(np.max(q_density)))
    if log_scale:
        ax.set_yscale("log")
        ax.set_ylim(1e-6, 1.0)
    else:
        ax.set_ylim(0, 1.45 * peak)  # headroom for the legend
    ax.set_xlim(x[0], x[-1])
    ax.set_xlabel("x")
    ax.set_ylabel("density (log scale)" if log_scale else "density")
    ax.set_title(title, fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8, loc="upper left" if not log_scale else "upper right")
    return ax


def demo_figure(demo: dict[str, Any], path: str) -> str:
    """Write the demo's two-panel figure (bimodal: modes; Student-t: tails) to ``path``."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    panels = [
        ("bimodal", np.linspace(-9, 9, 721), False, "Mode-covering vs mode-seeking"),
        ("heavy_tail", np.linspace(-12, 12, 961), True, "Tails: forward wider, reverse narrower"),
    ]
    for ax, (name, x, log_scale, headline) in zip(axes, panels):
        entry = demo[name]
        plot_fits(ax, entry["p"], entry["results"], x=x, log_scale=log_scale,
                  title=f"{headline}\n{entry['label']}")
    fig.suptitle("Fitting a normal q to p by forward and reverse KL", fontsize=12)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
