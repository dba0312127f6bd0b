"""The explorer's server: a small Starlette app that serves the page and runs the engine.

Routes:

* ``GET /``: the page (``static/index.html``); ``GET /static/...``: its script and style, and
  ``/static/plotly.min.js`` from the installed ``plotly`` package (nothing is fetched at run time).
* ``GET /api/meta``: what the page's menus offer: the presets, the default state, q's families,
  p's kinds and the ranges the state accepts.
* ``POST /api/solve``: a state (JSON) in, the engine's result out (``_engine.solve``); a bad
  state is answered with 400 and the engine's message, ``{"error": "p[1].scale must be > 0; got -1"}``.
* ``POST /api/export``: a state in; the PNG and JSON of ``kullback demo`` for it written to the
  export folder; their names and download addresses (``GET /api/export/NAME``) out.

The engine runs in a worker thread (the event loop stays free), one solve at a time: JAX
programs do not gain from running side by side on a small machine, and the page keeps at most one
request in flight anyway.
"""

from __future__ import annotations

import json
import math
import re
import socket
import threading
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC", "plotly_js", "create_app", "bind", "address"]

STATIC = Path(__file__).with_name("static")
_EXPORT_NAME = re.compile(r"^kullback-explore-[0-9a-f]{12}\.(png|json)$")


def plotly_js() -> Path:
    """plotly.min.js as the ``plotly`` Python package ships it."""
    import plotly

    path = Path(plotly.__file__).with_name("package_data") / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"the plotly package at {Path(plotly.__file__).parent} lacks package_data/plotly.min.js")
    return path


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no inf or NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class _JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:  # most results are finite: no walk over every number first
            text = json.dumps(content, separators=(",", ":"), allow_nan=False)
        except ValueError:
            text = json.dumps(_finite(content), separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8")


def _error(message: str, status: int = 400) -> _JSON:
    return _JSON({"error": message}, status_code=status)


async def _state_of(request: Request) -> Any:
    """The request's JSON body; ValueError with a message when it is not JSON."""
    body = await request.body()
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"the request body must be a JSON state; {e}") from None


def create_app(*, export_dir: str | Path | None = None) -> Starlette:
    """The explorer's ASGI app.

    Args:
        export_dir: where ``POST /api/export`` writes its PNG and JSON (created when missing);
            the current folder by default, as ``kullback demo`` writes its figure.

    The engine is imported here (JAX and numpyro with it); call ``_engine.warm_up()`` before
    serving so that the first request is warm (it compiles the default state's program; the
    others follow in a background thread while the page answers).
    """
    from . import _engine, _state

    folder = Path(export_dir if export_dir is not None else ".").resolve()
    lock = threading.Lock()

    def locked(fn, *args):
        with lock:
            return fn(*args)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def plotly(request: Request) -> Response:
        return FileResponse(plotly_js(), media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    async def meta(request: Request) -> Response:
        return _JSON({
            "presets": {name: _state.preset(name) for name in _state.PRESETS},
            "default": _state.default_state(),
            "families": list(_state.Q_FAMILIES),
            "kinds": list(_state.KINDS),
            "max_components": _state.MAX_COMPONENTS,
            "ranges": {"loc": _state.LOC_MAX, "scale": list(_state.SCALE_RANGE), "df": list(_state.DF_RANGE),
                       "corr": _state.CORR_MAX},
        })

    async def solve(request: Request) -> Response:
        try:
            state = await _state_of(request)
            result = await run_in_threadpool(locked, _engine.solve, state)
        except ValueError as e:
            return _error(str(e))
        return _JSON(result)

    async def export(request: Request) -> Response:
        from ._export import write_export

        try:
            state = await _state_of(request)
            written = await run_in_threadpool(locked, lambda s: write_export(s, _engine.solve(s), folder), state)
        except ValueError as e:
            return _error(str(e))
        return _JSON({kind: {"path": str(path), "url": f"/api/export/{path.name}"} for kind, path in written.items()})

    async def exported(request: Request) -> Response:
        name = request.path_params["name"]
        path = folder / name
        if not _EXPORT_NAME.match(name) or not path.is_file():
            return _error(f"no exported file named {name!r}", status=404)
        return FileResponse(path, filename=name)

    routes = [
        Route("/", page),
        Route("/static/plotly.min.js", plotly),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        Route("/api/meta", meta),
        Route("/api/solve", solve, methods=["POST"]),
        Route("/api/export", export, methods=["POST"]),
        Route("/api/export/{name}", exported),
    ]
    return Starlette(routes=routes)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free port), for ``uvicorn.Server.run(sockets=...)``.

    Binding here, before uvicorn starts, tells the caller the port at once; an address that
    cannot be had raises ValueError naming it.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, proto, _, sockaddr = infos[0]
    # the protocol named (IPPROTO_TCP, not 0): asyncio sets TCP_NODELAY only on sockets that say
    # so, and accepted connections inherit it; without it a response's headers and body, two
    # writes, wait on the client's delayed ACK (about 40 ms a request on a kept-alive connection)
    sock = socket.socket(family, socket.SOCK_STREAM, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(sockaddr)
    except OSError as e:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def address(sock: socket.socket) -> str:
    """The page's address for a bound socket: ``http://HOST:PORT/`` (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"
