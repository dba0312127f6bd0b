"""Benchmark (issue 15): `kullback explore`'s latency, from a change of p to the new fits drawn.

Three layers, each cold and warm:
- **engine**: ``_engine.solve(state)`` in this process (cold = the first solve of a q family in a
  fresh process with no persistent compilation cache: its one program compiled; warm = compiled);
- **HTTP**: POST /api/solve on a local uvicorn server over one kept-alive connection, as the page
  sends them (engine + JSON + the round trip);
- **browser**: in headless Chromium (Debian's, driven by playwright), a slider change → the request
  → ``Plotly.react`` done ("drawn"), and → the next frame painted ("painted"), timed by the page
  itself (``window.kullback.timings``: performance.now() from the input event);
- **start**: ``kullback explore --no-cache`` in a fresh process: seconds to its address, to the
  first answer, and to an answer from every program (the others compile in the background).
Per q family on the ``asymmetric_bimodal`` preset (1-D), the 2-normal mixture on ``heavy_tail``
(engine only) and the 2-D preset. Goal: a drag answers in under 100 ms (warm).
Run: python benchmarks/bench_explore.py [--repeats 30] [--no-start]
"""

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import statistics
import threading
import time
import urllib.request


def _quantiles(values):
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]


def _states():
    from kullback.cli.explore import _state

    base = _state.normalise(_state.PRESETS["asymmetric_bimodal"])
    out = {f"1d {q}": {**base, "q": q} for q in ("normal", "laplace", "student_t", "mixture2")}
    out["1d mixture2 ht"] = {**_state.normalise(_state.PRESETS["heavy_tail"]), "q": "mixture2"}
    two = [k for k in _state.PRESETS if _state.PRESETS[k].get("mode") == "2d"]
    out["2d"] = _state.normalise(_state.PRESETS[two[0]])
    return out


def _nudged(state, k):
    """The state with component 1's location moved by a small step (a drag's next position)."""
    s = json.loads(json.dumps(state))
    if s.get("mode") == "2d":
        s["p2"][0]["mean"][0] += 0.01 * (k % 7 + 1)
    else:
        s["p"][0]["loc"] += 0.01 * (k % 7 + 1)
    return s


def _start():
    """A cold ``kullback explore`` (no persistent cache): seconds to the address, the first answer, every program."""
    from kullback.cli.explore import _state

    env = {**os.environ, "KULLBACK_NO_CACHE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "kullback.cli", "explore", "--port", "0", "--no-browser",
                             "--export-dir", "/tmp"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        url = proc.stdout.readline().split()[2]
        at = {"address": time.perf_counter() - t0}
        for q in _state.Q_FAMILIES + ("2d",):
            state = _state.preset("2d_bimodal") if q == "2d" else {"q": q}
            req = urllib.request.Request(url + "api/solve", data=json.dumps(state).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=600) as r:
                r.read()
            at[q] = time.perf_counter() - t0
    finally:
        proc.send_signal(2)
        proc.wait(120)
    return at


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--no-start", action="store_true", help="skip the cold start of the command")
    a = ap.parse_args()
    if not a.no_start:
        at = _start()
        print(f"start (kullback explore --no-cache, load {os.getloadavg()[0]:.2f}): address after {at['address']:.1f} s, "
              + ", ".join(f"{k} answered at {v:.1f} s" for k, v in at.items() if k != "address"))
    os.environ.pop("KULLBACK_CACHE_DIR", None)
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_compilation_cache_dir", None)
    from kullback.cli.explore import _engine

    states = _states()
    print(f"jax {jax.__version__}; load {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores; repeats {a.repeats}")
    print("engine solve (ms): cold = first solve of the family in this process (compile included)")
    for name, st in states.items():
        t0 = time.perf_counter()
        _engine.solve(st)
        cold = 1e3 * (time.perf_counter() - t0)
        warm = []
        for k in range(a.repeats):
            t0 = time.perf_counter()
            _engine.solve(_nudged(st, k))
            warm.append(1e3 * (time.perf_counter() - t0))
        med, p95 = _quantiles(warm)
        print(f"  {name:14s} cold {cold:8.0f}   warm median {med:6.1f}  p95 {p95:6.1f}  {'<100: met' if p95 < 100 else '>=100'}")

    import uvicorn

    from kullback.cli.explore._server import address, bind, create_app

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(export_dir="/tmp"), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = address(sock)
    print(f"HTTP POST /api/solve (ms, warm, one kept-alive connection), server at {url}")
    conn = http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=60)
    for name, st in states.items():
        times = []
        for k in range(a.repeats):
            body = json.dumps(_nudged(st, k)).encode()
            t0 = time.perf_counter()
            conn.request("POST", "/api/solve", body=body, headers={"Content-Type": "application/json"})
            conn.getresponse().read()
            times.append(1e3 * (time.perf_counter() - t0))
        med, p95 = _quantiles(times)
        print(f"  {name:14s} median {med:6.1f}  p95 {p95:6.1f}")
    conn.close()

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("browser: skipped (no chromium)")
    else:
        from playwright.sync_api import sync_playwright

        print("browser: slider input -> fits drawn / frame painted (ms, warm; the page's own performance.now())")
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=chromium, headless=True,
                                   args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            page = b.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.evaluate("() => window.kullback.ready")
            painted = "() => window.kullback.timings.every((t) => t.painted !== null)"
            for name, st in states.items():
                if name.endswith(" ht"):
                    continue  # engine only
                page.evaluate("(s) => window.kullback.set(s)", st)
                page.evaluate("() => window.kullback.ready")
                page.wait_for_function(painted)
                first = page.evaluate("() => window.kullback.timings.length")
                slider = "#mean0-0" if st.get("mode") == "2d" else "#loc-0"
                if page.query_selector(slider) is None:
                    print(f"  {name:14s} no slider {slider}: skipped")
                    continue
                value = float(page.input_value(slider))
                for k in range(a.repeats):
                    n = page.evaluate("() => window.kullback.draws")
                    page.fill(slider, f"{value + 0.01 * (k % 7 + 1):.4f}")
                    page.wait_for_function(f"() => window.kullback.draws > {n}")
                    page.evaluate("() => window.kullback.ready")
                    page.wait_for_function(painted)
                timings = page.evaluate(f"() => window.kullback.timings.slice({first})")
                med, p95 = _quantiles([t["total"] for t in timings])
                pmed, pp95 = _quantiles([t["painted"] for t in timings])
                print(f"  {name:14s} drawn median {med:6.1f}  p95 {p95:6.1f}   painted median {pmed:6.1f}  p95 {pp95:6.1f}"
                      f"  ({len(timings)} redraws)  {'<100: met' if pp95 < 100 else '>=100'}")
            page.screenshot(path=os.environ.get("BENCH_EXPLORE_SHOT", "/tmp/explore_bench.png"))
            b.close()
    server.should_exit = True
    thread.join(timeout=10)
    print(f"load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
