"""The ``kullback`` command line: parse, call the public API, print. No math here."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Measure Kullback-Leibler divergence, and fit by minimising it in either direction.",
)

# Nothing heavy at module level: ``kullback --help`` (and every subcommand's) must answer without
# importing JAX, numpyro, pandas or matplotlib. Commands import what they use inside.

NO_CACHE_ENV = "KULLBACK_NO_CACHE"
CACHE_DIR_ENV = "KULLBACK_CACHE_DIR"

# ``main()`` (the ``kullback`` program) caches compiled programs by default; ``app`` run inside
# another process (``typer.testing.CliRunner``) leaves that process's JAX settings alone unless
# KULLBACK_CACHE_DIR asks. ``no_cache`` is set by every invocation (``--no-cache``).
_cache_options = {"by_default": False, "no_cache": False}


def _cache_wanted() -> bool:
    """False with ``--no-cache`` or ``KULLBACK_NO_CACHE`` (anything but 0); else True for the
    ``kullback`` program, and for ``app`` in another process only when KULLBACK_CACHE_DIR is set."""
    if _cache_options["no_cache"] or os.environ.get(NO_CACHE_ENV, "") not in ("", "0"):
        return False
    return _cache_options["by_default"] or bool(os.environ.get(CACHE_DIR_ENV))


def _setup_cache() -> None:
    """The persistent compilation cache in ``KULLBACK_CACHE_DIR`` or the user cache folder. A
    folder that cannot be used leaves the cache off with a warning, not an error."""
    import kullback

    kullback._cache_checked = True  # the command line decides; the package's own switch stays out
    if not _cache_wanted():
        return
    from ._compile import enable_compile_cache

    try:
        enable_compile_cache(os.environ.get(CACHE_DIR_ENV) or None)
    except ValueError as err:
        typer.echo(f"warning: compilation cache off: {err}", err=True)


def _setup() -> None:
    """What every command needs before it computes: float64 and the compilation cache."""
    import jax

    jax.config.update("jax_enable_x64", True)  # the command line reports float64 numbers
    _setup_cache()


def _fmt_estimate(e: dict[str, Any]) -> str:
    value = e["value"]
    text = "inf" if math.isinf(value) else f"{value:.5f}"
    if e["method"] == "closed_form":
        return f"{text} (closed form)"
    return f"{text} ± {e['stderr']:.1e} ({e['method']})"


def _demo_table(demo: dict[str, Any]) -> str:
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


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the figure (PNG).")] = Path(
        "kullback-demo.png"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the reverse fits.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
    no_figure: Annotated[bool, typer.Option("--no-figure", help="Skip the figure.")] = False,
) -> None:
    """Forward vs reverse KL: fit a normal to a bimodal and to a heavy-tailed target."""
    _setup()
    from ._demo import run_demo
    from .plot import demo_figure

    result = run_demo(key=seed)
    figure = None if no_figure else demo_figure(result, str(output))
    if as_json:
        payload = {
            name: {"target": entry["label"], "fits": entry["fits"]} for name, entry in result.items()
        }
        payload["figure"] = figure
        typer.echo(json.dumps(payload, indent=2, allow_nan=True))
        return
    typer.echo(_demo_table(result))
    if figure:
        typer.echo(f"figure: {figure}")


def _logistic_read_table(path: Path) -> Any:
    """A CSV or Parquet file as a pandas DataFrame (by suffix)."""
    try:
        import pandas as pd
    except ImportError as err:  # pragma: no cover - pandas is installed with the test extra
        raise typer.BadParameter("Reading data files needs pandas: pip install pandas.") from err
    if not path.exists():
        raise typer.BadParameter(f"Expected DATA to be an existing file; {path} does not exist.")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except ImportError as err:
            raise typer.BadParameter("Reading Parquet needs pyarrow: pip install pyarrow.") from err
    return pd.read_csv(path)


@app.command()
def logistic(
    data: Annotated[Path, typer.Argument(help="A CSV or Parquet (.parquet, .pq) file, one row per example.")],
    target: Annotated[str, typer.Option("--target", "-y", help="The label column.")],
    features: Annotated[
        str | None, typer.Option("--features", "-x", help="Comma-separated feature columns (default: all others).")
    ] = None,
    weight: Annotated[str | None, typer.Option(help="A column of non-negative sample weights.")] = None,
    offset: Annotated[str | None, typer.Option(help="A column added to the logit (binary targets only).")] = None,
    penalty: Annotated[str, typer.Option(help="none, l2, l1 or elasticnet.")] = "none",
    C: Annotated[float, typer.Option("--C", help="Inverse penalty strength (with --penalty).")] = 1.0,
    no_intercept: Annotated[bool, typer.Option("--no-intercept", help="Fit without an intercept.")] = False,
    alpha: Annotated[float, typer.Option(help="Intervals cover 1 − alpha.")] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Logistic (two classes) or softmax (more) regression of TARGET on the other columns: a summary table."""
    penalties = ("none", "l2", "l1", "elasticnet")
    problems = [
        (penalty not in penalties, f"Expected --penalty to be one of {', '.join(penalties)}; got {penalty!r}."),
        (not (0 < C < math.inf), f"Expected --C to be a positive finite number; got {C!r}."),
        (not (0 < alpha < 1), f"Expected --alpha to be in (0, 1); got {alpha!r}."),
    ]
    for bad, message in problems:  # a usage error (exit 2, one line), before any data is read
        if bad:
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(code=2)
    _setup()
    import warnings

    from .glm import LogisticRegression, SoftmaxRegression

    frame = _logistic_read_table(data)
    if target not in frame.columns:
        raise typer.BadParameter(f"Expected --target to name a column of {data}; got {target!r} (columns: {list(frame.columns)}).")
    used = {target} | {c for c in (weight, offset) if c is not None}
    for option, column in (("--weight", weight), ("--offset", offset)):
        if column is not None and column not in frame.columns:
            raise typer.BadParameter(f"Expected {option} to name a column of {data}; got {column!r}.")
    names = [c.strip() for c in features.split(",")] if features else [c for c in frame.columns if c not in used]
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise typer.BadParameter(f"Expected --features to name columns of {data}; not found: {missing}.")
    non_numeric = [c for c in names if frame[c].dtype.kind not in "biuf"]
    if non_numeric:
        raise typer.BadParameter(f"Expected numeric feature columns; {non_numeric} are not (encode them first, or pass --features).")
    rows = frame[[target] + names].notna().all(axis=1)
    frame = frame[rows]
    y = frame[target].to_numpy()
    binary = len(set(y.tolist())) <= 2
    if offset is not None and not binary:
        raise typer.BadParameter("Expected --offset only with a binary target; the target has more than two classes.")
    model_type = LogisticRegression if binary else SoftmaxRegression
    model = model_type(penalty=None if penalty == "none" else penalty, C=C, fit_intercept=not no_intercept)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            frame[names],
            y,
            sample_weight=None if weight is None else frame[weight].to_numpy(),
            offset=None if offset is None else frame[offset].to_numpy(),
        )
    summary = model.summary(alpha=alpha)
    summary.header["rows used"] = int(rows.sum())
    messages = [str(w.message) for w in caught]
    if as_json:
        payload = summary.to_dict()
        payload["warnings"] = messages
        payload["separation"] = None if model.separation_ is None else {
            "kind": model.separation_.kind,
            "features": list(model.separation_.feature_names),
            "num_separated": model.separation_.num_separated,
        }
        typer.echo(json.dumps(payload, indent=2, allow_nan=False))
        return
    typer.echo(str(summary))
    for message in messages:
        typer.echo(f"warning: {message}", err=True)


def _run_text(make_text: Any) -> None:
    """Print what ``make_text()`` returns; a bad argument becomes a usage error, not a traceback."""
    try:
        text = make_text()
    except (ValueError, TypeError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(text)


@app.command("kl")
def kl_(
    p: Annotated[str, typer.Argument(help='The first distribution, e.g. "normal(0, 1)".')],
    q: Annotated[str, typer.Argument(help='The second, e.g. "student_t(3)" or "mixture(\\[0.5, 0.5], \\[normal(-3, 1), normal(3, 1)])".')],
    method: Annotated[str, typer.Option(help="auto, closed_form, quadrature or monte_carlo.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for Monte Carlo.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """KL(P‖Q) between two distributions: value, method and error."""
    _setup()
    from ._cli_kl import kl_command

    _run_text(lambda: kl_command(p, q, as_json=as_json, method=method, seed=seed))


# The names `kullback fit --family` accepts (those of _cli_fit.FAMILIES, kept here so that --help
# needs no import of numpyro; a test checks the two agree).
FIT_FAMILIES = ("normal", "student_t", "cauchy", "laplace", "lognormal", "exponential", "gamma", "gamma_loc",
                "beta", "beta_4", "weibull", "weibull_min", "poisson", "negative_binomial", "multivariate_normal")


@app.command("fit")
def fit_(
    data: Annotated[Path, typer.Argument(help="A CSV or Parquet (.parquet, .pq) file.")],
    family: Annotated[str, typer.Option("--family", "-f", help=f"The family: {', '.join(FIT_FAMILIES)}.")],
    column: Annotated[str | None, typer.Option(help="The column(s) to fit (default: the numeric one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Maximum-likelihood (forward KL) fit of a family to a data column: a summary table."""
    _setup()
    from ._cli_fit import fit_command

    if not data.exists():
        raise typer.BadParameter(f"Expected DATA to be an existing file; {data} does not exist.")
    _run_text(lambda: fit_command(str(data), family, as_json=as_json, column=column))


@app.callback()
def _main(
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help=f"Do not keep compiled programs on disk (same as {NO_CACHE_ENV}=1). By default they are "
            f"cached in {CACHE_DIR_ENV} or the user cache folder (~/.cache/kullback/jax on Linux), so "
            "later runs skip their compiles.",
        ),
    ] = False,
) -> None:
    """kullback: KL(P‖Q) = H(P,Q) − H(P) ≥ 0, and KL(P‖Q) ≠ KL(Q‖P).

    Compiled programs are cached on disk between runs (KULLBACK_CACHE_DIR, default
    ~/.cache/kullback/jax); --no-cache or KULLBACK_NO_CACHE=1 turn that off.
    """
    _cache_options["no_cache"] = no_cache


def main() -> None:
    """Entry point of the ``kullback`` script: compiled programs are cached by default."""
    _cache_options["by_default"] = True
    app()


if __name__ == "__main__":
    main()
