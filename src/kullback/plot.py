"""Figures: a target density p beside its forward and reverse KL fits; a fit beside its data.

Figures are ``matplotlib.figure.Figure`` objects made without pyplot: no backend is chosen or
changed (it works without a display; a notebook shows the returned figure; ``fig.savefig``
writes it).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_fits", "demo_figure", "plot_result"]

_STYLE = {
    "forward": {"color": "#c0392b", "ls": "--", "label": "q forward: argmin KL(p‖q)"},
    "reverse": {"color": "#2471a3", "ls": "-.", "label": "q reverse: argmin KL(q‖p)"},
}
_DATA = "0.78"  # grey of the data and of target draws


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
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
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
    return path


def _panels(n: int, title: str) -> tuple[Figure, list]:
    """A figure of n panels, at most 4 a row."""
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(3.3 * ncols, 2.7 * nrows + 0.4), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        fig.delaxes(ax)
    for ax in axes[:n]:
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(title, fontsize=11)
    return fig, axes[:n]


def _marginals(fig_title: str, cols: Any, ref: dict | None, max_panels: int, bins: int,
               ref_label: str = "target draws") -> Figure:
    """One histogram panel per coordinate of ``cols`` (a ``DrawColumns``), ``ref`` columns by
    label drawn beneath (grey)."""
    labels = cols.labels[:max_panels]
    if len(cols.labels) > max_panels:
        fig_title += f" (the first {max_panels} of {len(cols.labels)} coordinates)"
    fig, axes = _panels(len(labels), fig_title)
    for j, (ax, label) in enumerate(zip(axes, labels)):
        x = cols.matrix[:, j]
        both = x if ref is None else np.concatenate([x, ref[label]])
        edges = np.histogram_bin_edges(both[np.isfinite(both)], bins)
        if ref is not None:
            ax.hist(ref[label], bins=edges, density=True, color=_DATA, label=ref_label)
        ax.hist(x, bins=edges, density=True, histtype="step", color=_STYLE["reverse"]["color"], lw=1.6, label="q")
        ax.set_title(label, fontsize=10)
        ax.set_yticks([])
    axes[0].legend(frameon=False, fontsize=8)
    return fig


def _reverse_figure(r: Any, target_draws: Any, key: Any, num: int, bins: int, max_panels: int) -> Figure:
    from .fit._summary import draw_columns

    cols = draw_columns(r.draws(key, num))
    ref = None
    if target_draws is not None:
        t = draw_columns(target_draws)
        missing = [label for label in cols.labels[:max_panels] if label not in t.labels]
        if missing:
            raise ValueError(f"Expected target_draws to have the coordinates of draws() ({', '.join(cols.labels[:6])}"
                             f"{', ...' if len(cols.labels) > 6 else ''}); it lacks {missing[:6]} (it has "
                             f"{t.labels[:6]}{'...' if len(t.labels) > 6 else ''}).")
        ref = {label: t.matrix[:, t.labels.index(label)] for label in cols.labels[:max_panels]}
    title = f"{r.family} fitted by reverse KL ({r.method}): marginals of q, {num} draws"
    return _marginals(title, cols, ref, max_panels, bins)


def _density(q: Any, grid: np.ndarray) -> np.ndarray:
    """q's density (or pmf) on a 1-D grid; 0 where it is not finite (outside the support)."""
    x = grid[:, None] if tuple(q.event_shape) == (1,) else grid
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.exp(np.asarray(_log_prob(q, jnp.asarray(x)), dtype=float))
    return np.where(np.isfinite(d), d, 0.0)


def _quantiles(q: Any, probs: np.ndarray, key: Any, num: int) -> np.ndarray:
    """q's quantiles: its icdf where numpyro has one, else those of max(num, 20000) draws."""
    if tuple(q.event_shape) == ():
        try:
            return np.asarray(q.icdf(jnp.asarray(probs)), dtype=float)
        except (NotImplementedError, ImportError):  # numpyro's StudentT / Gamma icdf need tensorflow-probability
            pass
    from .fit._keys import as_key

    x = np.asarray(q.sample(as_key(key), (max(num, 20_000),)), dtype=float).reshape(-1)
    return np.quantile(x, probs)


def _one_dimensional(r: Any, x: np.ndarray, key: Any, num: int, bins: int) -> Figure:
    from .fit._inference import is_discrete

    q = r.q
    fig, (ax, qq) = _panels(2, f"{r.family} fitted by {r.method} (forward KL) to {len(x)} rows")
    if is_discrete(q):
        values, counts = np.unique(x, return_counts=True)
        ax.bar(values, counts / len(x), width=0.8, color=_DATA, label="data")
        k = np.arange(np.floor(values.min()), np.ceil(values.max()) + 1)
        ax.plot(k, _density(q, k), "o-", color=_STYLE["forward"]["color"], ms=3, lw=1.2, label="q (pmf)")
        ax.set_ylabel("frequency")
    else:
        ax.hist(x, bins=bins, density=True, color=_DATA, label="data")
        pad = 0.05 * (x.max() - x.min() or 1.0)
        grid = np.linspace(x.min() - pad, x.max() + pad, 400)
        ax.plot(grid, _density(q, grid), color=_STYLE["forward"]["color"], lw=2.0, label="q (density)")
        ax.set_ylabel("density")
    ax.set_xlabel("x")
    ax.legend(frameon=False, fontsize=8)
    m = min(len(x), 1000)
    probs = (np.arange(m) + 0.5) / m
    theory, empirical = _quantiles(q, probs, key, num), np.quantile(x, probs)
    qq.plot(theory, empirical, "o", ms=2.5, color=_STYLE["forward"]["color"])
    finite = np.isfinite(theory)
    ends = [min(theory[finite].min(), empirical.min()), max(theory[finite].max(), empirical.max())]
    qq.plot(ends, ends, color="0.4", lw=1.0)
    qq.set_xlabel("quantiles of q")
    qq.set_ylabel("quantiles of the data")
    qq.set_title("Q-Q", fontsize=10)
    return fig


def _forward_figure(r: Any, data: Any, key: Any, num: int, bins: int, max_panels: int) -> Figure:
    from .fit._inference import is_discrete
    from .fit._keys import as_key
    from .fit._summary import draw_columns

    q = r.q
    draws = np.asarray(q.sample(as_key(key), (num,)), dtype=float)
    if data is None:
        if tuple(q.event_shape) in ((), (1,)) and not is_discrete(q):
            lo, hi = np.quantile(draws.reshape(-1), [0.001, 0.999])
            grid = np.linspace(lo, hi, 400)
            fig, (ax,) = _panels(1, f"{r.family} fitted by {r.method} (forward KL)")
            ax.plot(grid, _density(q, grid), color=_STYLE["forward"]["color"], lw=2.0, label="q (density)")
            ax.set_xlabel("x")
            ax.legend(frameon=False, fontsize=8)
            return fig
        return _marginals(f"{r.family} fitted by {r.method} (forward KL): marginals of q, {num} draws",
                          draw_columns(draws), None, max_panels, bins)
    x = np.asarray(data, dtype=float)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim == 1:
        return _one_dimensional(r, x, key, num, bins)
    if x.ndim != 2 or x.shape[1] != draws.reshape(num, -1).shape[1]:
        raise ValueError(f"Expected data of shape (n,) or (n, d) like the fitted rows (q draws {draws.shape[1:]}); "
                         f"got shape {x.shape}.")
    data_cols = draw_columns(x)
    ref = dict(zip(data_cols.labels, data_cols.matrix.T))
    return _marginals(f"{r.family} fitted by {r.method} (forward KL): data (grey) and q, by coordinate",
                      draw_columns(draws.reshape(num, -1)), ref, max_panels, bins, ref_label="data")


def plot_result(result: Any, data: Any = None, *, target_draws: Any = None, key: Any = 0, num: int = 4000,
                bins: int = 40, max_panels: int = 16) -> Figure:
    """A figure of a fit (``FitResult.plot``).

    Forward fits, given ``data`` (shape (n,) or (n, d); a result keeps no reference to its data,
    so that it stays small and pickles cheaply): 1-D data, a histogram (discrete data:
    frequencies) with q's density (pmf) and a Q-Q panel of the data's quantiles against q's (its
    icdf, else quantiles of 20 000 draws); d-D data, one panel per coordinate, the data's
    histogram beneath that of ``num`` draws of q. Without data: q's density (1-D) or its
    marginals. Reverse fits: one panel per coordinate of the target's space (as ``summary()``
    names them) with the histogram of ``draws(key, num)``; ``target_draws`` (the structure of
    ``draws()``: a dict of sites for a model, an array ``(n, *event)``, a pytree), e.g. NUTS
    draws, is drawn beneath in grey.

    Args:
        result: a :class:`kullback.FitResult`.
        data: forward fits: the data fitted.
        target_draws: reverse fits: draws of p to compare with.
        key, num: the draws of q (an int seed or a jax.random key; deterministic for a given key).
        bins: histogram bins.
        max_panels: the most coordinates shown.

    Returns:
        A ``matplotlib.figure.Figure``.

    Example:
        >>> import numpy as np, numpyro.distributions as dist, kullback as kb
        >>> r = kb.fit(dist.Normal, np.random.default_rng(0).normal(size=200))
        >>> len(r.plot(np.random.default_rng(0).normal(size=200)).axes)
        2
    """
    if not isinstance(num, int) or isinstance(num, bool) or num < 2:
        raise ValueError(f"Expected num to be an integer ≥ 2; got {num!r}.")
    if result.direction == "reverse":
        if data is not None:
            raise TypeError("plot(data) shows the data beside a forward fit; a reverse fit has none: pass "
                            "target_draws= (draws of p, e.g. from NUTS) to compare q with.")
        return _reverse_figure(result, target_draws, key, num, bins, max_panels)
    if target_draws is not None:
        raise TypeError("target_draws= overlays draws of p on a reverse fit; for a forward fit pass the data: plot(data).")
    return _forward_figure(result, data, key, num, bins, max_panels)
