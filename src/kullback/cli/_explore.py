"""``kullback explore``: serve the explorer's page on a local address until Ctrl-C.

The work is in :mod:`kullback.cli.explore` (the state, the engine, the server and the page);
this module checks that the ``explore`` extra is installed, compiles the engine's programs,
prints the address, opens a browser and runs uvicorn.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

__all__ = ["EXTRA_MISSING", "missing_extra", "explore_command"]

EXTRA_MISSING = "kullback explore needs the 'explore' extra: pip install 'kullback[explore]'"
_EXTRA = ("starlette", "uvicorn", "plotly")


def missing_extra() -> list[str]:
    """The modules of the ``explore`` extra that cannot be imported."""
    return [name for name in _EXTRA if importlib.util.find_spec(name) is None]


def explore_command(*, host: str, port: int, open_browser: bool, export_dir: Path) -> int:
    """Run the explorer until interrupted; the exit status (0 after Ctrl-C, 1 when it cannot start).

    Messages go to stderr but the address, which goes to stdout (one line, flushed) once the
    programs are compiled and the socket listens.
    """
    if missing_extra():
        print(EXTRA_MISSING, file=sys.stderr)
        return 1
    import uvicorn

    from .explore._engine import warm_up
    from .explore._server import address, bind, create_app

    try:
        sock = bind(host, port)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    url = address(sock)
    try:
        print("kullback explore: compiling the fits…", file=sys.stderr, flush=True)
        warm_up()
        app = create_app(export_dir=export_dir)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        print(f"kullback explore: {url} (Ctrl-C stops)", flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        server.run(sockets=[sock])  # returns on SIGINT / SIGTERM, after closing connections
    except KeyboardInterrupt:  # a second Ctrl-C, or one during the compile; uvicorn re-raises the first
        pass
    finally:
        sock.close()
    print("kullback explore: stopped", file=sys.stderr)
    return 0
