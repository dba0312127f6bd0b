"""`kullback explore`: the command starts a server on a free port, serves the page, its files and
the engine, answers a bad state with 400 and the engine's message, and stops cleanly on Ctrl-C.

The server runs as the real command in a subprocess (``python -m kullback.cli explore --port 0
--no-browser``), once for the module; requests go over HTTP with the standard library.
"""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("starlette", reason="kullback explore needs the 'explore' extra (starlette)")
pytest.importorskip("uvicorn", reason="kullback explore needs the 'explore' extra (uvicorn)")
pytest.importorskip("plotly", reason="kullback explore needs the 'explore' extra (plotly)")

STARTUP_S = 240  # the first start compiles the engine's programs (one per q family, and 2-D)


def _request(url: str, body: object | None = None, raw: bytes | None = None) -> tuple[int, bytes, dict]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


class _Server:
    def __init__(self, tmp: Path):
        env = {k: v for k, v in os.environ.items() if k != "KULLBACK_NO_CACHE"}
        self.export_dir = tmp / "exports"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kullback.cli", "explore", "--port", "0", "--no-browser",
             "--export-dir", str(self.export_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        self.lines: queue.Queue = queue.Queue()
        self.err: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err.append), daemon=True).start()
        try:
            self.first_line = self.lines.get(timeout=STARTUP_S)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"no address printed within {STARTUP_S} s; stderr: {''.join(self.err)}") from None
        self.url = self.first_line.split()[2]

    @staticmethod
    def _pump(stream, put):
        for line in stream:
            put(line)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
        return self.proc.returncode


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = _Server(tmp_path_factory.mktemp("explore"))
    yield s
    s.stop()


def test_prints_its_address_on_a_free_port(server):
    assert server.first_line.startswith("kullback explore: http://127.0.0.1:")
    assert server.first_line.rstrip().endswith("(Ctrl-C stops)")
    port = int(server.url.rstrip("/").rsplit(":", 1)[1])
    assert 0 < port < 65536  # --port 0: a free port, not the default 8050 (which may be taken)


def test_serves_the_page_and_its_files(server):
    status, body, headers = _request(server.url)
    assert status == 200 and headers["content-type"].startswith("text/html")
    html = body.decode()
    assert "/static/plotly.min.js" in html and "/static/explore.js" in html
    for name, kind in [("explore.js", "javascript"), ("explore.css", "text/css")]:
        status, body, headers = _request(server.url + "static/" + name)
        assert status == 200 and kind in headers["content-type"] and len(body) > 500, name
    status, body, headers = _request(server.url + "static/plotly.min.js")
    import plotly

    shipped = Path(plotly.__file__).with_name("package_data") / "plotly.min.js"
    assert status == 200 and "javascript" in headers["content-type"]
    assert body == shipped.read_bytes()  # served from the installed package, not a copy of ours
    assert _request(server.url + "static/no-such-file.js")[0] == 404


def test_meta_lists_presets_and_families(server):
    status, body, _ = _request(server.url + "api/meta")
    meta = json.loads(body)
    assert status == 200
    assert {"bimodal", "heavy_tail", "skewed_pair", "asymmetric_bimodal"} <= set(meta["presets"])
    assert meta["families"] == ["normal", "student_t", "laplace", "mixture2"]
    assert meta["default"]["mode"] == "1d" and meta["default"]["q"] == "normal"


def test_solve_answers_the_bimodal(server):
    from kullback.cli.explore import _state

    status, body, _ = _request(server.url + "api/solve", _state.default_state())
    assert status == 200
    result = json.loads(body)
    fwd, rev = result["forward"], result["reverse"]
    # p = ½ N(−3, 1) + ½ N(3, 1): the forward fit is the moment-matched N(0, 10)
    assert abs(fwd["params"]["loc"]) < 1e-9
    assert fwd["params"]["scale"] == pytest.approx(math.sqrt(10.0), rel=1e-9)
    assert abs(abs(rev["params"]["loc"]) - 3.0) < 0.1
    assert len(result["grid"]["x"]) == len(result["grid"]["p"]) == len(result["grid"]["forward"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"mode": "1d", "p": [{"loc": 0, "scale": 1}, {"loc": 1, "scale": -1}]}, "p[1].scale must be > 0; got -1"),
        ({"mode": "3d"}, "mode must be one of"),
        ({"q": "cauchy"}, "q must be one of"),
        ([1, 2], "state must be an object"),
    ],
)
def test_a_bad_state_is_a_400_with_the_message(server, body, message):
    status, raw, _ = _request(server.url + "api/solve", body)
    assert status == 400
    assert message in json.loads(raw)["error"]


def test_a_body_that_is_not_json_is_a_400(server):
    status, raw, _ = _request(server.url + "api/solve", raw=b"{not json")
    assert status == 400 and "must be a JSON state" in json.loads(raw)["error"]


def test_export_writes_png_and_json(server):
    from kullback.cli.explore import _state

    state = _state.preset("heavy_tail")
    status, raw, _ = _request(server.url + "api/export", state)
    assert status == 200, raw
    out = json.loads(raw)
    png, table = Path(out["png"]["path"]), Path(out["json"]["path"])
    assert png.parent == table.parent == server.export_dir.resolve()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    payload = json.loads(table.read_text())
    assert payload["figure"] == str(png) and payload["state"] == state
    fwd = payload["explore"]["fits"]["forward"]
    assert fwd["params"]["scale"] == pytest.approx(math.sqrt(3.0), rel=1e-9)  # Student-t(3)'s variance is 3
    for d in ("forward", "reverse"):
        for key in ("kl_p_q", "kl_q_p"):
            e = payload["explore"]["fits"][d][key]
            assert e["value"] >= 0 and e["stderr"] >= 0 and e["method"]
    status, body, headers = _request(server.url + out["png"]["url"].lstrip("/"))
    assert status == 200 and body == png.read_bytes() and "attachment" in headers["content-disposition"]
    assert _request(server.url + "api/export/..%2Fsecret.json")[0] == 404


def test_stops_cleanly_on_sigint(tmp_path_factory, server):
    # last in the module: a second server would compile nothing new (the cache), so stop this one
    code = server.stop()
    err = "".join(server.err)
    assert code == 0, err
    assert "Traceback" not in err and "stopped" in err


def test_a_port_in_use_is_an_error_naming_it():
    from kullback.cli.explore._server import bind

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind("127.0.0.1", port).close()


def test_responses_write_non_finite_numbers_as_null():
    from kullback.cli.explore._server import _JSON

    assert _JSON({"a": [1.5, float("inf")], "b": {"c": float("nan")}}).body == b'{"a":[1.5,null],"b":{"c":null}}'
    assert _JSON({"a": [1.5, -2.0]}).body == b'{"a":[1.5,-2.0]}'


def test_accepted_connections_do_not_wait_on_delayed_acks():
    # asyncio sets TCP_NODELAY only where the listening socket names IPPROTO_TCP; without it a
    # kept-alive request (the page's) waited ~40 ms between the response's headers and body
    import asyncio

    from kullback.cli.explore._server import bind

    async def accepted_nodelay() -> int:
        sock = bind("127.0.0.1", 0)
        got: asyncio.Future = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                s = transport.get_extra_info("socket")
                got.set_result(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        value = await asyncio.wait_for(got, 10)
        writer.close()
        server.close()
        return value

    assert asyncio.run(accepted_nodelay()) != 0


def _warmer(keys, fail=()):
    """A Warmer over a fake compile that blocks until the test opens its key's gate."""
    from kullback.cli.explore._warm import Warmer

    started, gates = queue.Queue(), {k: threading.Event() for k in keys}

    def compile_one(key):
        started.put(key)
        assert gates[key].wait(10), key
        if key in fail:
            raise RuntimeError(f"no program for {key}")

    return Warmer(compile_one, keys), started, gates


def test_the_background_warm_up_runs_in_order_and_a_request_claims_what_it_needs():
    w, started, gates = _warmer(["a", "b", "c"])
    w.start()
    assert started.get(timeout=10) == "a"
    w.claim("c")  # not reached yet: off the list at once (the request compiles it itself)
    assert w.pending() == ["a", "b"]
    claimed = threading.Event()
    threading.Thread(target=lambda: (w.claim("a"), claimed.set()), daemon=True).start()
    assert not claimed.wait(0.2)  # "a" is compiling: the request waits for it ...
    gates["a"].set()
    assert claimed.wait(10)  # ... and goes on once it is done
    assert started.get(timeout=10) == "b"
    gates["b"].set()
    assert w.wait(10) and w.pending() == [] and set(w.took) == {"a", "b"} and started.empty()
    w.claim("b")  # done: returns at once


def test_the_background_warm_up_stops_between_compiles_and_keeps_going_past_errors():
    w, started, gates = _warmer(["a", "b", "c"], fail=("a",))
    w.start()
    assert started.get(timeout=10) == "a"
    gates["a"].set()
    assert started.get(timeout=10) == "b"  # a failed compile is recorded, the next one starts
    assert isinstance(w.errors["a"], RuntimeError)
    stopper = threading.Thread(target=w.stop, daemon=True)
    stopper.start()
    stopper.join(0.2)
    assert stopper.is_alive()  # stop waits for the compile in progress ...
    gates["b"].set()
    stopper.join(10)
    assert not stopper.is_alive() and w.wait(0) and "c" not in w.took  # ... and skips the rest


def test_missing_extra_says_how_to_install(monkeypatch):
    from kullback.cli import _explore, app

    monkeypatch.setattr(_explore, "_EXTRA", ("starlette", "kullback_no_such_module"))
    result = CliRunner().invoke(app, ["explore", "--no-browser", "--port", "0"])
    assert result.exit_code == 1
    assert "kullback explore needs the 'explore' extra: pip install 'kullback[explore]'" in result.output


def test_explore_help_imports_no_jax_or_web_stack(tmp_path):
    code = textwrap.dedent("""
        import contextlib, io, json, sys
        from kullback.cli import main
        sys.argv = ["kullback", "explore", "--help"]
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            try:
                main()
            except SystemExit as stop:
                code = stop.code
        heavy = [m for m in ("jax", "numpyro", "starlette", "uvicorn", "plotly", "matplotlib") if m in sys.modules]
        print(json.dumps({"code": code, "text": text.getvalue(), "heavy": heavy}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "100"})
    report = json.loads(done.stdout)
    assert report["code"] in (0, None) and report["heavy"] == []
    for option in ("--host", "--port", "--no-browser", "--export-dir"):
        assert option in report["text"]
