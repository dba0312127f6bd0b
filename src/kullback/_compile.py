"""Compilation: a persistent cache the user switches on, and a counter of what a call compiles.

A first call pays for XLA compiles. Two things keep that small:

* ``enable_compile_cache()`` (or the environment variable ``KULLBACK_CACHE_DIR``, read when a
  first public name of ``kullback`` is used) points JAX's persistent compilation cache at a folder, so a program
  compiled once is loaded from disk by every later process. The folder is shared safely by
  processes running at once: a size cap is set, which makes JAX take a file lock around every
  read and write. The command line turns it on by default (``--no-cache`` or
  ``KULLBACK_NO_CACHE=1`` turn it off); the library only when asked.
* ``count_compiles()`` counts the XLA compilations inside a ``with`` block (JAX's
  ``/jax/core/compile/backend_compile_duration`` monitoring events, one per program compiled or
  loaded, less its ``/jax/compilation_cache/cache_hits``), so tests can assert how many programs
  a public call compiles.
"""

from __future__ import annotations

import contextlib
import math
import dataclasses
import os
import sys
import threading
from pathlib import Path
from typing import Iterator

__all__ = ["enable_compile_cache", "default_cache_dir", "count_compiles", "CompileCount", "cache_from_environment"]

_BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # compiles and cache loads
_CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"
CACHE_MAX_BYTES = 4 * 2**30  # the size cap (it also switches on JAX's file locking)
MIN_COMPILE_SECONDS = 0.01  # programs that compiled faster than this are not worth a disk entry


def default_cache_dir() -> Path:
    """The platform's user cache folder for kullback's compiled programs.

    ``$XDG_CACHE_HOME/kullback/jax`` (``~/.cache/kullback/jax``) on Linux,
    ``~/Library/Caches/kullback/jax`` on macOS, ``%LOCALAPPDATA%\\kullback\\jax`` on Windows.
    """
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "kullback" / "jax"


def enable_compile_cache(path: str | os.PathLike | None = None) -> Path:
    """Keep compiled programs on disk, so later processes skip their compiles.

    Sets JAX's ``jax_compilation_cache_dir`` to ``path`` (default: :func:`default_cache_dir`),
    ``jax_compilation_cache_max_size`` to 4 GiB (least recently used entries are evicted; the cap
    also makes JAX lock the folder, so several processes may share it) and
    ``jax_persistent_cache_min_compile_time_secs`` to 0.01 s. Nothing else is changed. A folder
    the user already gave JAX (``jax_compilation_cache_dir``) is kept and returned as it is.

    Turn it off again with ``jax.config.update("jax_compilation_cache_dir", None)``.

    Args:
        path: the folder; created if missing.

    Returns:
        The folder in use.
    """
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current and path is None:
        return Path(current)
    folder = Path(path) if path is not None else default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"Expected path to be a folder kullback can create and write; {folder}: {err}.") from err
    try:
        import filelock  # noqa: F401  (JAX needs it for a size-capped, locked cache)

        jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)
    except ImportError:  # pragma: no cover - filelock is a dependency
        pass
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    _reset_jax_cache_state()
    return folder


def _reset_jax_cache_state() -> None:
    """JAX decides once per process whether its cache is in use (at the first compile); after a
    compile without a folder it must be told to look again."""
    try:
        from jax._src import compilation_cache
    except ImportError:  # pragma: no cover - a private module of JAX
        return
    if getattr(compilation_cache, "_cache_checked", False) and not getattr(compilation_cache, "_cache_used", True):
        compilation_cache.reset_cache()


def cache_from_environment() -> Path | None:
    """Switch the cache on when ``KULLBACK_CACHE_DIR`` is set (and ``KULLBACK_NO_CACHE`` is not)."""
    folder = os.environ.get("KULLBACK_CACHE_DIR")
    if not folder or os.environ.get("KULLBACK_NO_CACHE", "") not in ("", "0"):
        return None
    return enable_compile_cache(folder)


@dataclasses.dataclass
class CompileCount:
    """What a ``with count_compiles() as c:`` block compiled: ``c.count`` programs compiled by
    XLA, ``c.loaded`` programs loaded from the persistent cache instead, in ``c.seconds`` seconds
    of compile-or-load time (tracing and lowering not included)."""

    events: int = 0
    loaded: int = 0
    seconds: float = 0.0

    @property
    def count(self) -> int:
        """Programs XLA compiled (cache loads not included)."""
        return self.events - self.loaded


_lock = threading.Lock()
_active: list[CompileCount] = []
_registered = False


def _listener(event: str, duration: float, **_: object) -> None:
    if event != _BACKEND_COMPILE_EVENT:
        return
    with _lock:
        for counter in _active:
            counter.events += 1
            counter.seconds += duration


def _hit_listener(event: str, **_: object) -> None:
    if event != _CACHE_HIT_EVENT:
        return
    with _lock:
        for counter in _active:
            counter.loaded += 1


@contextlib.contextmanager
def count_compiles() -> Iterator[CompileCount]:
    """Count the XLA compilations in a block (all threads of this process).

    Example:
        >>> import jax, numpy as np
        >>> from kullback._compile import count_compiles
        >>> f = jax.jit(lambda x: x * 2.0 + 1.0)
        >>> with count_compiles() as c:
        ...     _ = f(np.ones(3)); _ = f(np.ones(3)); _ = f(np.ones(4))
        >>> c.count  # one program per shape
        2
    """
    global _registered
    from jax import monitoring

    with _lock:
        if not _registered:
            monitoring.register_event_duration_secs_listener(_listener)
            monitoring.register_event_listener(_hit_listener)
            _registered = True
        counter = CompileCount()
        _active.append(counter)
    try:
        yield counter
    finally:
        with _lock:
            _active.remove(counter)


# --- compile-dominated programs: XLA's backend optimisation off ---------------------------------

SMALL_PASS_FLOPS = 2e7  # below this (and 1e5 transcendentals) one pass of a program runs in
SMALL_PASS_TRANSCENDENTALS = 1e5  # milliseconds: LLVM's optimisation passes cost more than they save
_AOT_CAPACITY = 64
_aot: dict = {}
_aot_lock = threading.Lock()


def _signature(x: object) -> object:
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    if shape is not None and dtype is not None:
        return (tuple(shape), str(dtype), bool(getattr(x, "weak_type", False)))
    return type(x)


def call_small(jitted, *args, **static):
    """``jitted(*args, **static)``, compiled ahead of time with XLA's backend optimisation level 0
    when the lowered program is small per pass.

    XLA's HLO cost analysis gives the flops and transcendentals of one pass of the program (a
    loop's body counted once). Where both are small the run takes microseconds while LLVM's
    optimisation passes take a third of the compile (a 10-dimensional reverse fit: 1.0 s of 2.7 s),
    so those are skipped; larger programs (a target holding data: 1.7-3.6x slower unoptimised)
    compile as ``jax.jit`` would. ``static`` are ``jitted``'s static keyword arguments (hashable);
    executables are kept in memory by (function, static values, argument structure, shapes and
    dtypes), and the persistent cache, when on, keys them with their compiler options.
    """
    import jax

    leaves, tree = jax.tree_util.tree_flatten(args)
    key = (jitted, tuple(sorted(static.items())), tree, tuple(_signature(x) for x in leaves))
    with _aot_lock:
        run = _aot.get(key)
    if run is None:
        lowered = jitted.lower(*args, **static)
        options = {}
        try:
            cost = lowered.cost_analysis()
            cost = cost[0] if isinstance(cost, (list, tuple)) else cost
            if (float(cost.get("flops", math.inf)) < SMALL_PASS_FLOPS
                    and float(cost.get("transcendentals", math.inf)) < SMALL_PASS_TRANSCENDENTALS):
                options = {"xla_backend_optimization_level": 0}
        except Exception:  # noqa: BLE001 - no cost analysis on this backend: compile as jit would
            options = {}
        run = lowered.compile(options) if options else lowered.compile()
        with _aot_lock:
            if len(_aot) >= _AOT_CAPACITY:
                _aot.pop(next(iter(_aot)))
            _aot[key] = run
    return run(*args)
