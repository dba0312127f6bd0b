"""Set up the project in .venv and run it: ``python3 dev.py demo`` or ``python3 dev.py test``.

Each command creates ``.venv`` at the project root if it is missing, installs the package
(editable) with what the command needs, and then runs it. A stamp file records what was
installed, so a second run skips the install unless ``pyproject.toml`` changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
EXTRAS = {"demo": "", "test": "test", "bench": "test,bench"}


def _ensure_env(extras: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"kullback needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print(f"[dev] creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    spec = f".[{extras}]" if extras else "."
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + spec.encode()).hexdigest()
    stamp = VENV / f".installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"[dev] installing kullback{spec[1:]} into {VENV}", flush=True)
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", spec],
        cwd=ROOT,
        check=True,
    )
    stamp.write_text(digest)


def _ensure_chromium() -> None:
    """The explorer's browser tests drive Debian's chromium: install it where this is a Debian-like
    machine run as root; otherwise (or if the install fails) those tests skip and say why."""
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        return
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        print("[dev] no chromium here (and no root apt-get): the explorer's browser tests will skip", flush=True)
        return
    print("[dev] installing Debian's chromium for the explorer's browser tests", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            print(f"[dev] {' '.join(cmd)} failed: the explorer's browser tests will skip", flush=True)
            return


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in EXTRAS:
        print(__doc__.strip())
        print("\nusage: python3 dev.py {demo|test|bench} [args passed on]")
        return 2
    command, rest = argv[0], argv[1:]
    if command == "bench" and not rest:
        scripts = sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))
        print("usage: python3 dev.py bench benchmarks/<script> [args]; scripts:", *scripts, sep="\n  ")
        return 2
    _ensure_env(EXTRAS[command])
    if command == "demo":
        args = [str(BIN / "kullback"), "demo", *rest]
    elif command == "test":
        _ensure_chromium()
        # two workers, each test module on one of them: a module's fixtures (compiled explorer
        # programs, a Dask LocalCluster, fitted models) are then built once, not once per worker
        workers = ["-n", "2", "--dist", "loadscope"] if os.cpu_count() and os.cpu_count() >= 2 else []
        args = [str(PYTHON), "-m", "pytest", *workers, *rest]
    else:
        args = [str(PYTHON), *rest]
    return subprocess.run(args, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
