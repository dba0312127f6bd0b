"""Progress of a fit: a bar with the objective as it falls, and the user's ``callback``.

``kb.fit(..., progress=True)`` draws a bar (rich, on stderr) and ``callback=fn`` is called as
``fn(iteration, objective)`` after each iteration of the solver. Host loops (Newton, EM) call
:func:`report` directly; compiled loops call :func:`in_loop`, which, when reporting is on (a
static flag of the program: a fit without progress compiles the same program as before), puts a
``jax.debug.callback`` into the loop body. Several starts fitted at once (vmapped) report the
highest iteration and the lowest objective among them. Iterations restart at 0 in each stage of
a fit (a refinement after a first solve); the reported iteration keeps counting.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator

import jax
import numpy as np

__all__ = ["progress", "report", "in_loop", "active"]

# The active reporters, innermost last: one list for the process, as compiled loops call back on
# XLA's own threads, not the caller's.
_STACK: list = []
_LOCK = threading.Lock()


class _Reporter:
    def __init__(self, callback: Callable | None, show: bool, total: int | None, description: str) -> None:
        self.callback, self.total = callback, total
        self._last, self._offset = -1, 0
        self.reported = False
        self._bar = self._task = None
        if show:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("objective {task.fields[objective]}"), TimeElapsedColumn(),
                                 console=Console(stderr=True))
            self._task = self._bar.add_task(description, total=total, objective="…")
            self._bar.start()

    def update(self, iteration: int, objective: float) -> None:
        if iteration < self._last - self._offset:  # a new stage starts counting at 0 again
            self._offset = self._last + 1
        if iteration + self._offset == self._last:
            return
        self._last = iteration + self._offset
        self.reported = True
        if self.callback is not None:
            self.callback(self._last, objective)
        if self._bar is not None:
            total = self.total if self.total is None or self._last <= self.total else self._last
            self._bar.update(self._task, completed=self._last, total=total, objective=f"{objective:.8g}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def report(iteration: Any, objective: Any) -> None:
    """Tell the active reporter (if any) that ``iteration`` reached ``objective`` (host values;
    arrays of several starts: the highest iteration, the lowest finite objective)."""
    with _LOCK:
        reporter = _STACK[-1] if _STACK else None
    if reporter is None:
        return
    values = np.asarray(objective, dtype=float).reshape(-1)
    finite = values[np.isfinite(values)]
    reporter.update(int(np.max(iteration)), float(finite.min()) if finite.size else float("nan"))


def active() -> bool:
    """Whether a fit's progress is being reported (compiled loops then include the callback)."""
    with _LOCK:
        return bool(_STACK)


def in_loop(enabled: bool, iteration: jax.Array, objective: jax.Array) -> None:
    """Inside a compiled loop body: report (iteration, objective) to the host when ``enabled``
    (a static flag: nothing is added to the program otherwise)."""
    if enabled:
        jax.debug.callback(report, iteration, objective)


@contextlib.contextmanager
def progress(show: bool, callback: Callable | None, *, total: int | None, description: str) -> Iterator[Any]:
    """Report the fit's iterations inside the block. Yields a function ``done(iterations,
    objective)`` to call with the fit's result: it reports the final state when the solver
    reported nothing (closed forms, NumPy solvers without a loop to watch)."""
    if not show and callback is None:
        yield lambda iterations, objective: None
        return
    reporter = _Reporter(callback, show, total, description)
    with _LOCK:
        _STACK.append(reporter)
    def done(iterations: int, objective: float) -> None:
        jax.effects_barrier()  # callbacks still on their way arrive first
        if not reporter.reported:
            reporter.update(int(iterations), float(objective))

    try:
        yield done
    finally:
        with _LOCK:
            _STACK.remove(reporter)
        reporter.close()
