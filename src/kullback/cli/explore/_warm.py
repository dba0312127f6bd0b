"""The explorer's programs compiled ahead of their first request, one at a time in a background thread.

A cold start compiles one program per 1-D q family and one for 2-D (about 35 s on a 2-core
machine without the persistent compilation cache). The page needs one of them to answer its first
request; :class:`Warmer` compiles the others after the server is up, in a daemon thread, while the
page already answers. A request for a program the thread is compiling waits for it (JAX would
compile it a second time side by side); one the thread has not reached yet is taken off its list
and compiled by the request itself.

At exit the thread is stopped between two compiles: the process waits for the one in progress
(a daemon thread killed inside XLA's compiler aborts the interpreter), then skips the rest.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
from typing import Callable, Hashable, Iterable

__all__ = ["Warmer"]


class Warmer:
    """Compile ``keys`` by calling ``compile_one(key)`` for each, in order, in a background thread.

    ``claim(key)`` before running a key's program: it returns at once unless the thread is
    compiling that key (then it waits until it is done), and the thread skips a key claimed
    before it got there. ``took`` holds the seconds each compile took; ``errors`` what failed
    (the request that needs it fails again, with its own message).
    """

    def __init__(self, compile_one: Callable[[Hashable], object], keys: Iterable[Hashable]):
        self._compile_one = compile_one
        self._todo = list(keys)
        self._busy: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.took: dict[Hashable, float] = {}
        self.errors: dict[Hashable, BaseException] = {}
        self._thread = threading.Thread(target=self._run, name="kullback-explore-warm-up", daemon=True)

    def start(self) -> "Warmer":
        atexit.register(self.stop)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Skip the keys not started and wait for the compile in progress (registered at exit)."""
        with self._lock:
            self._todo.clear()
            busy = list(self._busy)
        if self._thread.is_alive():
            if busy:
                print(f"kullback explore: waiting for the compile in progress ({', '.join(map(str, busy))})",
                      file=sys.stderr, flush=True)
            self._thread.join()

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    if not self._todo:
                        return
                    key = self._todo.pop(0)
                    event = self._busy[key] = threading.Event()
                start = time.perf_counter()
                try:
                    self._compile_one(key)
                except Exception as e:  # noqa: BLE001 (a request for it reports the error)
                    self.errors[key] = e
                finally:
                    self.took[key] = time.perf_counter() - start
                    with self._lock:
                        del self._busy[key]
                    event.set()
        finally:
            self._done.set()

    def claim(self, key: Hashable) -> None:
        """Take ``key`` off the list, or wait while the thread compiles it."""
        with self._lock:
            if key in self._todo:
                self._todo.remove(key)
                return
            event = self._busy.get(key)
        if event is not None:
            event.wait()

    def pending(self) -> list:
        """The keys not compiled yet (being compiled, then waiting), in order."""
        with self._lock:
            return list(self._busy) + list(self._todo)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the thread has gone through its list; False if ``timeout`` ran out first."""
        return self._done.wait(timeout)
