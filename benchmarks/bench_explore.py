"""Benchmark (issue 15): `kullback explore`'s latency, from a change of p to the new fits drawn.

Three layers, each cold and warm:
- **engine**: ``_engine.solve(state)`` in this process (cold = the first solve of a q family in a
  fresh process with no persistent compilation cache: its one program compiled; warm = compiled);
- **HTTP**: POST /api/solve on a local uvicorn server (engine + JSON + the round trip);
- **browser**: in headless Chromium (Debian's, driven by playwright), a slider change → the request
  → ``Plotly.react`` done, timed by the page itself (``window.kullback.timings``: performance.now()
  from the input event to the redraw).
Per q family on the ``asymmetric_bimodal`` preset (1-D) and the 2-D preset. Goal: a drag answers in
under 100 ms (warm). Run: python benchmarks/bench_explore.py [--repeats 30]
"""

import argparse
import json
import os
import shutil
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=30)
    a = ap.parse_args()
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
    print(f"HTTP POST /api/solve (ms, warm), server at {url}")
    for name, st in states.items():
        times = []
        for k in range(a.repeats):
            body = json.dumps(_nudged(st, k)).encode()
            t0 = time.perf_counter()
            req = urllib.request.Request(url.rstrip("/") + "/api/solve", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req) as r:
                r.read()
            times.append(1e3 * (time.perf_counter() - t0))
        med, p95 = _quantiles(times)
        print(f"  {name:14s} median {med:6.1f}  p95 {p95:6.1f}")

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("browser: skipped (no chromium)")
    else:
        from playwright.sync_api import sync_playwright

        print("browser: slider input -> fits drawn (ms, warm; the page's own performance.now())")
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=chromium, headless=True,
                                   args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            page = b.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.evaluate("() => window.kullback.ready")
            for name, st in states.items():
                page.evaluate("(s) => window.kullback.set(s)", st)
                page.evaluate("() => window.kullback.ready")
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
                totals = page.evaluate(f"() => window.kullback.timings.slice({first}).map((t) => t.total)")
                med, p95 = _quantiles(totals)
                print(f"  {name:14s} median {med:6.1f}  p95 {p95:6.1f}  ({len(totals)} redraws)  "
                      f"{'<100: met' if p95 < 100 else '>=100'}")
            page.screenshot(path=os.environ.get("BENCH_EXPLORE_SHOT", "/tmp/explore_bench.png"))
            b.close()
    server.should_exit = True
    thread.join(timeout=10)


if __name__ == "__main__":
    main()
