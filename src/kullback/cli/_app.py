"""The ``kullback`` command line: parse, call the public API, print. No math here.

The commands' options are declared here; each command's work is in its own module (``_demo``,
``_kl``, ``_fit``, ``_logistic``), imported when the command runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ._names import FIT_FAMILIES
from ._table import PARQUET_SUFFIXES

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Measure Kullback-Leibler divergence, and fit by minimising it in either direction.",
)

# Nothing heavy at module level: ``kullback --help`` (and every subcommand's) must answer without
# importing JAX, numpyro, pandas or matplotlib. Commands import what they use inside.

NO_CACHE_ENV = "KULLBACK_NO_CACHE"
CACHE_DIR_ENV = "KULLBACK_CACHE_DIR"
_PARQUET = ", ".join(PARQUET_SUFFIXES)

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
    from .._compile import enable_compile_cache

    try:
        enable_compile_cache(os.environ.get(CACHE_DIR_ENV) or None)
    except ValueError as err:
        typer.echo(f"warning: compilation cache off: {err}", err=True)


def _setup() -> None:
    """What every command needs before it computes: float64 and the compilation cache."""
    import jax

    jax.config.update("jax_enable_x64", True)  # the command line reports float64 numbers
    _setup_cache()


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
    from ._demo import demo_command

    typer.echo(demo_command(key=seed, figure_path=None if no_figure else str(output), as_json=as_json))


_DASK_HELP = "Read DATA (a file, glob or folder) with Dask and fit on a cluster (extra kullback[dask])."
_SCHEDULER_HELP = "With --dask: a scheduler's address (default: a LocalCluster for this command)."


def _maybe_cluster(use_dask: bool, scheduler: str | None) -> Any:
    """The cluster of a ``--dask`` command (see ``_dask.cluster``); nothing otherwise."""
    import contextlib

    if not use_dask:
        return contextlib.nullcontext()
    from ._dask import cluster

    return cluster(scheduler)


def _existing(data: Path) -> None:
    """A usage error unless DATA names an existing file."""
    if not data.exists():
        raise typer.BadParameter(f"Expected DATA to be an existing file; {data} does not exist.")


@app.command()
def logistic(
    data: Annotated[Path, typer.Argument(help=f"A CSV or Parquet ({_PARQUET}) file, one row per example.")],
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
    use_dask: Annotated[bool, typer.Option("--dask", help=_DASK_HELP)] = False,
    scheduler: Annotated[str | None, typer.Option(help=_SCHEDULER_HELP)] = None,
) -> None:
    """Logistic (two classes) or softmax (more) regression of TARGET on the other columns: a summary table."""
    from ._logistic import check_options, logistic_command

    problem = check_options(penalty, C, alpha)
    if problem is not None:  # a usage error (exit 2, one line), before any data is read
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(code=2)
    if not use_dask:
        _existing(data)
    _setup()
    with _maybe_cluster(use_dask, scheduler):
        text, messages = logistic_command(
            data, target, features=features, weight=weight, offset=offset, penalty=penalty, C=C,
            fit_intercept=not no_intercept, alpha=alpha, as_json=as_json, dask=use_dask,
        )  # fmt: skip
    typer.echo(text)
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
    from ._kl import kl_command

    _run_text(lambda: kl_command(p, q, as_json=as_json, method=method, seed=seed))


@app.command("fit")
def fit_(
    data: Annotated[Path, typer.Argument(help=f"A CSV or Parquet ({_PARQUET}) file.")],
    family: Annotated[str, typer.Option("--family", "-f", help=f"The family: {', '.join(FIT_FAMILIES)}.")],
    column: Annotated[str | None, typer.Option(help="The column(s) to fit (default: the numeric one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    progress: Annotated[bool, typer.Option(help="A progress bar with the objective on stderr (when it is a terminal).")] = True,
    use_dask: Annotated[bool, typer.Option("--dask", help=_DASK_HELP)] = False,
    scheduler: Annotated[str | None, typer.Option(help=_SCHEDULER_HELP)] = None,
) -> None:
    """Maximum-likelihood (forward KL) fit of a family to a data column: a summary table."""
    if not use_dask:
        _existing(data)
    _setup()
    from ._fit import fit_command

    show = progress and sys.stderr.isatty()
    with _maybe_cluster(use_dask, scheduler):
        _run_text(lambda: fit_command(str(data), family, as_json=as_json, column=column, progress=show, dask=use_dask))


@app.command()
def explore(
    host: Annotated[str, typer.Option(help="The address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="The port (0: a free one).")] = 8050,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser.")] = False,
    export_dir: Annotated[Path, typer.Option(help="Where the page's Export writes its PNG and JSON.")] = Path("."),
) -> None:
    """A local page: build p, fit q by forward and reverse KL live (extra kullback\\[explore]); Ctrl-C stops."""
    from ._explore import explore_command, missing_extra

    if not missing_extra():
        _setup()
    raise typer.Exit(code=explore_command(host=host, port=port, open_browser=not no_browser, export_dir=export_dir))


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
