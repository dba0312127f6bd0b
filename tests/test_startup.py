"""Start-up: ``import kullback`` and ``kullback --help`` are cheap; the command line caches compiles.

Each check runs in a fresh interpreter, since this one has imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ["jax", "numpyro", "sklearn", "pandas", "matplotlib", "statsmodels", "pyarrow", "scipy.stats"]
SUBCOMMANDS = ["kl", "fit", "logistic", "demo"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This environment without kullback's or JAX's cache settings, the user cache under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KULLBACK_") and k != "JAX_COMPILATION_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env.update(extra)
    return env


def _python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; fail with its output if it fails."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env=_env(tmp_path, **env), timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _cli(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -m kullback.cli ARGS`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "kullback.cli", *args],
        capture_output=True, text=True, env=_env(tmp_path, **env), timeout=300,
    )


def test_import_kullback_imports_no_heavy_module(tmp_path):
    code = f"""
        import json, sys
        import kullback
        assert kullback.__version__
        assert "fit" in dir(kullback) and "LogisticRegression" in dir(kullback)
        print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
    """
    assert json.loads(_python(code, tmp_path).stdout) == []


def test_import_cli_imports_no_heavy_module(tmp_path):
    code = f"""
        import json, sys
        import kullback.cli
        print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
    """
    assert json.loads(_python(code, tmp_path).stdout) == []


def test_every_help_answers_without_jax(tmp_path):
    code = f"""
        import contextlib, io, json, sys
        from kullback.cli import main

        out = {{}}
        for argv in [["--help"]] + [[name, "--help"] for name in {SUBCOMMANDS!r}]:
            sys.argv = ["kullback", *argv]
            text = io.StringIO()
            with contextlib.redirect_stdout(text):
                try:
                    main()
                except SystemExit as stop:
                    out[" ".join(argv)] = [stop.code, text.getvalue()]
        print(json.dumps({{"help": out, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
    """
    report = json.loads(_python(code, tmp_path, COLUMNS="100").stdout)
    assert report["heavy"] == []
    assert set(report["help"]) == {"--help"} | {f"{name} --help" for name in SUBCOMMANDS}
    for argv, (code_, text) in report["help"].items():
        assert code_ in (0, None), argv
        assert "Usage" in text, argv
    assert "--no-cache" in report["help"]["--help"][1]


def test_module_help_exits_zero(tmp_path):
    done = _cli(["--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout and "kl" in done.stdout


@pytest.mark.parametrize(
    "first",
    [
        "import kullback.fit._api",  # the subpackage before the function is ever looked up
        "kb.LogisticRegression; from kullback import fit; import kullback.fit._api",
    ],
)
def test_fit_is_the_same_callable_whatever_is_imported_first(tmp_path, first):
    code = f"""
        import sys
        import kullback as kb
        {first}
        import kullback.fit
        assert kb.fit is sys.modules["kullback.fit"] and callable(kb.fit), kb.fit
        from kullback import fit, FitResult
        assert fit is kb.fit and FitResult is kb.fit.FitResult
        assert kb.fit.fit is sys.modules["kullback.fit._api"].fit
        r = kb.fit(__import__("numpyro.distributions", fromlist=["Normal"]).Normal, [1.0, 3.0])
        assert isinstance(r, FitResult) and abs(float(r.params["loc"]) - 2.0) < 1e-6
    """
    _python(code, tmp_path)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


KL_ARGS = ["kl", "normal(0,1)", "normal(1,2)"]


def test_cli_caches_in_the_user_cache_folder_by_default(tmp_path):
    done = _cli(KL_ARGS, tmp_path)
    assert done.returncode == 0, done.stderr
    assert _files(tmp_path / "xdg" / "kullback" / "jax")


def test_cli_cache_folder_from_kullback_cache_dir(tmp_path):
    folder = tmp_path / "cache"
    done = _cli(KL_ARGS, tmp_path, KULLBACK_CACHE_DIR=str(folder))
    assert done.returncode == 0, done.stderr
    assert _files(folder)
    assert not _files(tmp_path / "xdg")


@pytest.mark.parametrize("how", ["option", "environment"])
def test_no_cache_turns_the_cli_cache_off(tmp_path, how):
    folder = tmp_path / "cache"
    args, env = (["--no-cache", *KL_ARGS], {}) if how == "option" else (KL_ARGS, {"KULLBACK_NO_CACHE": "1"})
    done = _cli(args, tmp_path, KULLBACK_CACHE_DIR=str(folder), **env)
    assert done.returncode == 0, done.stderr
    assert "0.443" in done.stdout
    assert not _files(folder) and not _files(tmp_path / "xdg")
