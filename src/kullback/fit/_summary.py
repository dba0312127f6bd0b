"""The table of a fit: ``FitResult.summary()`` as text, a pandas DataFrame or HTML.

Forward fits: one row per coordinate of each fitted parameter, with its estimate, standard error
and Wald interval (see ``FitResult.conf_int``). Reverse fits: one row per coordinate of the
target's space, named as the target names it (a numpyro model's sites ``beta[0]``, ``sigma``; a
pytree's leaves by path; ``x[0]``, ``x[1]``, ... on R^d), with the mean, standard deviation,
quantiles and the Monte Carlo standard error of the mean sd/√num of ``num`` draws of q, as
ArviZ's ``summary`` reports a posterior. Both are followed by the fit's statistics and its message.
"""

from __future__ import annotations

import html
import math
from typing import Any, NamedTuple

import jax
import numpy as np

__all__ = ["FitSummary", "DrawColumns", "draw_columns", "coordinate_labels", "forward_summary", "reverse_summary"]


def coordinate_labels(name: str, shape: tuple) -> list[str]:
    """``name`` for a scalar, ``name[i]`` / ``name[i, j]`` for each coordinate in row-major order.

    Example:
        >>> coordinate_labels("beta", (2,)), coordinate_labels("sigma", ())
        (['beta[0]', 'beta[1]'], ['sigma'])
    """
    if not shape:
        return [name]
    return [f"{name}[{', '.join(map(str, idx))}]" for idx in np.ndindex(*shape)]


def _path_name(path: tuple) -> str:
    """A pytree path as a name: dict keys and attributes joined by dots, sequence indices as ``[i]``;
    ``x`` for the root (a plain array) or a path that starts with an index."""
    out = ""
    for k in path:
        if isinstance(k, jax.tree_util.DictKey):
            out += ("." if out else "") + str(k.key)
        elif isinstance(k, jax.tree_util.GetAttrKey):
            out += ("." if out else "") + k.name
        elif isinstance(k, jax.tree_util.SequenceKey):
            out += f"[{k.idx}]"
        else:
            out += f"[{k}]"
    return out if out and not out.startswith("[") else "x" + out


class DrawColumns(NamedTuple):
    """Draws by name: ``sites`` maps each leaf's name to its draws ``(num, *shape)``; ``labels`` and
    the columns of ``matrix`` ``(num, D)`` are its coordinates (leaves in ``jax.tree`` order)."""

    sites: dict[str, np.ndarray]
    labels: list[str]
    matrix: np.ndarray


def draw_columns(draws: Any) -> DrawColumns:
    """The coordinates of ``draws`` (an array with a leading draw axis, or a pytree of them: a
    dict of model sites, the example's pytree) as named columns.

    Example:
        >>> import numpy as np
        >>> c = draw_columns({"sigma": np.ones(5), "beta": np.zeros((5, 2))})
        >>> c.labels, c.matrix.shape
        (['beta[0]', 'beta[1]', 'sigma'], (5, 3))
    """
    sites = {_path_name(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(draws)[0]}
    labels = [label for name, a in sites.items() for label in coordinate_labels(name, a.shape[1:])]
    matrix = np.concatenate([a.reshape(a.shape[0], -1).astype(float) for a in sites.values()], axis=1)
    return DrawColumns(sites, labels, matrix)


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):  # (value, stderr)
        return f"{float(value[0]):.10g} ± {float(value[1]):.2g}"
    return f"{float(value):.10g}"


class FitSummary(str):
    """A fit's table. It *is* its text (``print(s)``, ``str(s)``, ``"..." + s`` and ``"aic" in s``
    work as with a string), and it converts: :meth:`to_frame` (a pandas DataFrame, one row per
    coordinate), :meth:`to_dict` (JSON-ready), ``_repr_html_`` (notebooks).

    Attributes:
        title: the first line: family, method, direction, convergence.
        index: the row labels (``loc``, ``beta[0]``, ...).
        columns: the column names of :meth:`to_frame` (forward: ``estimate``, ``stderr``,
            ``ci_low``, ``ci_high``; reverse: ``mean``, ``sd``, quantiles such as ``2.5%``,
            ``50%``, ``97.5%``, and ``mcse_mean``).
        values: the table, a float array of shape ``(len(index), len(columns))``.
        statistics: the fit's statistics by name: a number, a string, or ``(value, stderr)``.
        message: how the fit ended.
    """

    title: str
    index: list[str]
    columns: list[str]
    values: np.ndarray
    statistics: dict[str, Any]
    message: str

    def __new__(cls, text: str = "", **fields: Any) -> "FitSummary":
        self = super().__new__(cls, text)
        self.__dict__.update(fields)
        return self

    def __repr__(self) -> str:
        return str.__str__(self)

    def to_frame(self) -> Any:
        """The table as a pandas DataFrame indexed by coordinate (pandas is imported here)."""
        import pandas as pd

        return pd.DataFrame(np.asarray(self.values, dtype=float), index=list(self.index), columns=list(self.columns))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: rows as ``{"name": ..., column: value}`` (NaN as None), statistics, message."""
        clean = lambda v: float(v) if np.isfinite(v) else None  # noqa: E731
        rows = [{"name": name, **{c: clean(v) for c, v in zip(self.columns, row)}}
                for name, row in zip(self.index, np.asarray(self.values, dtype=float))]
        stats = {k: ({"value": float(v[0]), "stderr": float(v[1])} if isinstance(v, tuple) else
                     (v if isinstance(v, str) else float(v))) for k, v in self.statistics.items()}
        return {"title": self.title, "rows": rows, "statistics": stats, "message": self.message}

    def _repr_html_(self) -> str:
        esc = html.escape
        frame = self.to_frame().to_html(float_format=lambda v: f"{v:.6g}", na_rep="—")
        stats = "".join(f"<tr><th style='text-align:left'>{esc(k)}</th><td>{esc(_render(v))}</td></tr>"
                        for k, v in self.statistics.items())
        return (f"<div><p><b>{esc(self.title)}</b></p>{frame}<table>{stats}</table>"
                f"<p>{esc(self.message)}</p></div>")


def _forward_rows(r: Any, alpha: float) -> tuple[list[str], np.ndarray, list[str]]:
    intervals = r.conf_int(alpha) if r.stderr else None
    index, rows = [], []
    for k, v in r.params.items():
        shape = np.shape(v)
        cols = [np.asarray(v, dtype=float).reshape(-1)]
        if r.stderr:
            se = np.asarray(r.stderr[k], dtype=float)
            cols += [se.reshape(-1) if se.shape == shape else np.full(cols[0].size, np.nan)]  # as conf_int
            cols += list(np.asarray(intervals[k], dtype=float).reshape(-1, 2).T)
        index += coordinate_labels(k, shape) if shape else [k]
        rows.append(np.stack(cols, axis=1))
    columns = ["estimate", "stderr", "ci_low", "ci_high"] if r.stderr else ["estimate"]
    values = np.concatenate(rows) if rows else np.zeros((0, len(columns)))
    return index, values, columns


def forward_summary(r: Any, alpha: float) -> FitSummary:
    """Parameters with standard errors and (1 − alpha) Wald intervals, then fit statistics."""
    index, values, columns = _forward_rows(r, alpha)
    title = (f"{r.family} fitted by {r.method} ({r.direction} KL): "
             f"{'converged' if r.converged else 'NOT converged'}")
    width = max([len(k) for k in r.params] + [9])
    lo, hi = f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"
    lines = [title, f"{'parameter':<{width}}  {'estimate':>14}  {'std. error':>14}"
             + (f"  {lo:>14}  {hi:>14}" if r.stderr else "")]
    for label, row in zip(_flat_labels(r.params), values):
        err = f"{row[1]:>14.6g}" if r.stderr else f"{'':>14}"
        span = f"  {row[2]:>14.6g}  {row[3]:>14.6g}" if r.stderr else ""
        lines.append(f"{label:<{width}}  {row[0]:>14.6g}  {err}{span}")
    stats: dict[str, Any] = {"objective": r.objective}
    for name in ("log_likelihood", "aic", "bic", "num_observations", "num_params"):
        if getattr(r, name) is not None:
            stats[name] = getattr(r, name)
    if r.data_entropy is not None:
        stats["cross_entropy H(p,q)"] = r.objective
        stats["entropy H(p) est."] = r.data_entropy.value
        stats["KL(p||q) est."] = r.kl_estimate
    lines.append("")
    lines += [f"{name:<22} {float(value):.10g}" for name, value in stats.items()]
    lines.append(r.message)
    return FitSummary("\n".join(lines), title=title, index=index, columns=columns, values=values,
                      statistics=stats, message=r.message)


def _flat_labels(params: dict) -> list[str]:
    """The text table's labels: ``k`` for a one-coordinate parameter, else ``k[i]`` over its
    flattened coordinates (the text kept from before the table object)."""
    out = []
    for k, v in params.items():
        size = int(np.size(v))
        out += [k] if size == 1 else [f"{k}[{i}]" for i in range(size)]
    return out


def reverse_summary(r: Any, alpha: float, key: Any, num: int) -> FitSummary:
    """Per coordinate of the target's space: mean, sd, the alpha/2, 0.5 and 1 − alpha/2
    quantiles and the mean's Monte Carlo error sd/√num, from ``r.draws(key, num)``; then the
    fit's statistics (ELBO, Pareto k̂ and its verdict, ESS, log Z) and its message."""
    cols = draw_columns(r.draws(key, num))
    x = cols.matrix
    probs = [alpha / 2, 0.5, 1 - alpha / 2]
    sd = x.std(axis=0, ddof=1) if num > 1 else np.full(x.shape[1], np.nan)
    values = np.column_stack([x.mean(axis=0), sd, *np.quantile(x, probs, axis=0), sd / math.sqrt(num)])
    columns = ["mean", "sd", *[f"{100 * p:g}%" for p in probs], "mcse_mean"]
    title = (f"{r.family} fitted by {r.method} ({r.direction} KL): "
             f"{'converged' if r.converged else 'NOT converged'}; {num} draws of q")
    stats: dict[str, Any] = {"objective": r.objective}
    if r.elbo is not None:
        stats["elbo"] = (r.elbo.value, r.elbo.stderr)
    for name in ("pareto_k", "pareto_k_stderr", "pareto_k_verdict", "ess"):
        if getattr(r, name) is not None:
            stats[name] = getattr(r, name)
    if r.log_z is not None:
        stats["log_z"] = (r.log_z.value, r.log_z.stderr)
    for name in ("num_iterations", "num_grad_evals"):
        if getattr(r, name) is not None:
            stats[name] = getattr(r, name)
    width = max([len(label) for label in cols.labels] + [10])
    lines = [title, f"{'coordinate':<{width}}" + "".join(f"  {c:>12}" for c in columns)]
    lines += [f"{label:<{width}}" + "".join(f"  {v:>12.6g}" for v in row) for label, row in zip(cols.labels, values)]
    lines.append("")
    lines += [f"{name:<22} {_render(value)}" for name, value in stats.items()]
    lines.append(r.message)
    return FitSummary("\n".join(lines), title=title, index=cols.labels, columns=columns, values=values,
                      statistics=stats, message=r.message)
