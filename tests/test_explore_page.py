"""The explorer's page end to end, in headless Chromium driven by playwright.

The server runs in this process (uvicorn in a thread, the engine warmed for a normal q and 2-D);
one browser serves the module. Chromium is Debian's (``/usr/bin/chromium``; ``python3 dev.py
test`` installs it where it can); playwright's own browsers are never downloaded. Without
Chromium or playwright the module is skipped, saying which is missing.

The numbers the page shows (its DOM text and ``window.kullback.state``) are checked against
``kb.fit`` and ``kb.estimate_kl`` / ``kb.estimate_entropy`` / ``kb.estimate_cross_entropy`` on
the same p, built as a numpyro distribution from the state: to 1e-6 (the page prints six
decimals; the engine and kullback's quadrature agree to about 1e-9).
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
import numpyro.distributions as dist
import pytest

import kullback as kb

pytest.importorskip("starlette", reason="the explorer needs the 'explore' extra (starlette)")
pytest.importorskip("uvicorn", reason="the explorer needs the 'explore' extra (uvicorn)")
pytest.importorskip("plotly", reason="the explorer needs the 'explore' extra (plotly)")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need the playwright package")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no Chromium on this machine (Debian: apt-get install chromium; python3 dev.py test tries it)",
                allow_module_level=True)

ARTIFACTS = Path(__file__).with_name("artifacts")
TOL = 1e-6
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    import jax
    import uvicorn

    jax.config.update("jax_enable_x64", True)
    from kullback.cli.explore import _engine
    from kullback.cli.explore._server import address, bind, create_app

    _engine.warm_up(("normal",), two_d=True)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(export_dir=tmp_path_factory.mktemp("exports")),
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    yield address(sock)
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                   args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        except Exception as e:  # a Chromium that cannot start here (no shared memory, missing libraries)
            pytest.skip(f"Chromium at {CHROMIUM} does not start: {e}")
        yield b
        b.close()


class Page:
    """A page of the explorer with its console errors collected."""

    def __init__(self, browser, url: str):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)
        self.drawn = self.ready()

    def ready(self) -> dict:
        """``window.kullback.state`` once the current state is drawn."""
        return self.page.evaluate("() => window.kullback.ready")

    def after(self, action) -> dict:
        """Do ``action()`` (which changes the state), then wait for the new state's result to be drawn."""
        n = self.page.evaluate("() => window.kullback.draws")
        action()
        self.page.wait_for_function(f"() => window.kullback.draws > {n}", timeout=30_000)
        self.drawn = self.ready()
        return self.drawn

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector)

    def number(self, selector: str) -> float:
        return float(self.text(selector))

    def slide(self, id_: str, value: float) -> dict:
        return self.after(lambda: self.page.fill(f"#{id_}", str(value)))


@pytest.fixture(scope="module")
def page(browser, url):
    p = Page(browser, url)
    yield p
    p.page.close()


def p_of(components: list[dict]):
    """p as numpyro builds it from the page's (normalised) components."""
    def one(c):
        if c["kind"] == "normal":
            return dist.Normal(c["loc"], c["scale"])
        if c["kind"] == "laplace":
            return dist.Laplace(c["loc"], c["scale"])
        return dist.StudentT(c["df"], c["loc"], c["scale"])

    if len(components) == 1:
        return one(components[0])
    probs = np.array([c["weight"] for c in components])
    return dist.MixtureGeneral(dist.Categorical(probs=probs), [one(c) for c in components])


def normal(params: dict):
    return dist.Normal(params["loc"], params["scale"])


def check_numbers_against_kullback(page: Page) -> None:
    """The page's numbers for a normal q (DOM and window.kullback.state) against kb.fit and kb.estimate_*."""
    result = page.drawn["result"]
    assert result["q"] == "normal"
    p = p_of(result["p"]["components"])
    forward = kb.fit(dist.Normal, p, direction="forward")
    reverse = kb.fit(dist.Normal, p, direction="reverse", key=0)
    shown = {d: {k: page.number(f"#num-{d}-{k}") for k in ("loc", "scale")} for d in ("forward", "reverse")}
    for k in ("loc", "scale"):
        assert shown["forward"][k] == pytest.approx(float(forward.params[k]), abs=TOL)
        assert result["forward"]["params"][k] == pytest.approx(float(forward.params[k]), abs=TOL)
    # reverse: kb.fit's optimum is one of the page's local optima, and the page's global one is no worse
    fitted = {k: float(reverse.params[k]) for k in ("loc", "scale")}
    optima = result["reverse"]["optima"]
    assert any(all(abs(o["params"][k] - fitted[k]) <= TOL for k in fitted) for o in optima), (fitted, optima)
    assert optima[0]["global"] and result["reverse"]["params"] == optima[0]["params"]
    assert result["reverse"]["kl_q_p"]["value"] <= float(kb.estimate_kl(reverse.q, p)) + TOL
    for k in ("loc", "scale"):
        assert shown["reverse"][k] == pytest.approx(result["reverse"]["params"][k], abs=TOL)
    # each KL, H(p, q) and H(p) at the page's own parameters
    for d in ("forward", "reverse"):
        q = normal(result[d]["params"])
        expected = {"kl_p_q": kb.estimate_kl(p, q), "kl_q_p": kb.estimate_kl(q, p),
                    "cross_entropy": kb.estimate_cross_entropy(p, q)}
        key = {"kl_p_q": "kl_p_q", "kl_q_p": "kl_q_p", "cross_entropy": "cross_entropy_p_q"}
        for name, e in expected.items():
            assert page.number(f"#num-{d}-{name} .value") == pytest.approx(float(e), abs=TOL), (d, name)
            assert result[d][key[name]]["value"] == pytest.approx(float(e), abs=TOL), (d, name)
            assert result[d][key[name]]["method"] in page.text(f"#num-{d}-{name}")
    h = kb.estimate_entropy(p)
    assert page.number("#num-entropy .value") == pytest.approx(float(h), abs=TOL)
    assert result["p"]["entropy"]["value"] == pytest.approx(float(h), abs=TOL)


def test_loads_without_console_errors_and_shows_the_default(page):
    assert page.errors == []
    state = page.drawn["state"]
    assert state["mode"] == "1d" and state["q"] == "normal" and len(state["p"]) == 2
    traces = page.page.evaluate("() => document.getElementById('plot').data.map((t) => t.name)")
    assert traces[0] == "p (target)"
    assert any(name.startswith("q forward") for name in traces) and any(name.startswith("q reverse") for name in traces)


def test_numbers_equal_kullback_on_the_default(page):
    check_numbers_against_kullback(page)


def test_a_slider_changes_both_fits_and_the_numbers_follow(page):
    before = page.drawn["result"]
    page.slide("loc-1", 2.0)  # component 2 from 3 to 2
    after = page.drawn["result"]
    assert after["p"]["components"][1]["loc"] == pytest.approx(2.0)
    for d in ("forward", "reverse"):
        assert after[d]["params"] != before[d]["params"], d
        assert after[d]["kl_q_p"]["value"] != before[d]["kl_q_p"]["value"], d
    check_numbers_against_kullback(page)
    assert page.errors == []


def _handle_centre(page: Page, i: int) -> tuple[float, float]:
    """The pixel centre of the i-th component's handle on the plot."""
    return tuple(page.page.evaluate(f"""() => {{
        const gd = document.getElementById('plot'), s = gd._fullLayout.shapes[{i}], L = gd._fullLayout;
        const box = gd.getBoundingClientRect();
        const px = (v, ax, ref) => ref === 'paper' ? null : ax.l2p(v) + ax._offset;
        const x = (px(s.x0, L.xaxis) + px(s.x1, L.xaxis)) / 2;
        const y = s.yref === 'paper' ? L._size.t + (1 - (s.y0 + s.y1) / 2) * L._size.h
                                     : (L.yaxis.l2p(s.y0) + L.yaxis.l2p(s.y1)) / 2 + L.yaxis._offset;
        return [box.left + x, box.top + y];
    }}"""))


def _drag(page: Page, start: tuple[float, float], dx: float, dy: float = 0.0) -> None:
    mouse = page.page.mouse
    mouse.move(*start)
    mouse.down()
    for k in range(1, 11):
        mouse.move(start[0] + dx * k / 10, start[1] + dy * k / 10)
    mouse.up()


def test_dragging_a_component_on_the_plot_moves_it_and_both_fits(page):
    before = page.drawn
    loc0 = before["state"]["p"][0]["loc"]
    x_per_px = page.page.evaluate("() => 1 / document.getElementById('plot')._fullLayout.xaxis._m")
    after = page.after(lambda: _drag(page, _handle_centre(page, 0), -80))
    moved = after["state"]["p"][0]["loc"] - loc0
    assert moved == pytest.approx(-80 * x_per_px, rel=0.1)
    assert after["state"]["p"][0]["scale"] == pytest.approx(before["state"]["p"][0]["scale"], rel=1e-6)
    for d in ("forward", "reverse"):
        assert after["result"][d]["params"] != before["result"][d]["params"], d
    assert abs(float(page.page.input_value("#loc-0")) - after["state"]["p"][0]["loc"]) <= 0.005  # the slider followed
    check_numbers_against_kullback(page)


def test_bimodal_preset_reverse_on_a_mode_forward_moment_matched(page):
    result = page.after(lambda: page.page.select_option("#preset", "bimodal"))["result"]
    assert [c["loc"] for c in result["p"]["components"]] == [-3.0, 3.0]
    fwd, rev = result["forward"]["params"], result["reverse"]["params"]
    assert abs(fwd["loc"]) < TOL and fwd["scale"] ** 2 == pytest.approx(10.0, abs=TOL)  # p's mean 0, variance 10
    assert abs(abs(rev["loc"]) - 3.0) < 0.1 and rev["scale"] == pytest.approx(1.0, abs=0.05)  # on a mode
    assert abs(page.number("#num-forward-loc")) < TOL
    assert page.number("#num-forward-scale") == pytest.approx(math.sqrt(10.0), abs=TOL)
    optima = result["reverse"]["optima"]
    locs = sorted(round(o["params"]["loc"], 3) for o in optima)
    assert locs[0] < -2.9 and locs[-1] > 2.9  # both modes found by the multi-start
    assert sum(o["global"] for o in optima) == 1
    assert "★ global" in page.text("#optima")
    check_numbers_against_kullback(page)


def test_log_scale_toggle_draws_the_tails(page):
    page.page.check("#log-scale")
    page.page.wait_for_function("() => document.getElementById('plot').layout.yaxis.type === 'log'")
    assert page.ready()["state"]["log"] is True
    page.page.uncheck("#log-scale")
    page.page.wait_for_function("() => document.getElementById('plot').layout.yaxis.type !== 'log'")


def test_the_url_holds_the_state(page, browser):
    page.slide("scale-0", 1.5)
    state = page.drawn["state"]
    fragment = urllib.parse.urlparse(page.page.url).fragment
    assert json.loads(urllib.parse.unquote(fragment)) == state
    other = Page(browser, page.page.url)  # the shared address restores the state
    try:
        assert other.drawn["state"] == state
        assert other.drawn["result"]["forward"]["params"] == page.drawn["result"]["forward"]["params"]
        assert other.errors == []
    finally:
        other.page.close()


def test_export_offers_png_and_json(page):
    page.page.click("#export")
    page.page.wait_for_selector("#export-json", timeout=60_000)
    def fetch(selector):
        return page.page.request.get(urllib.parse.urljoin(page.page.url, page.page.get_attribute(selector, "href")))

    png, table = fetch("#export-png"), fetch("#export-json")
    assert png.ok and png.body()[:8] == b"\x89PNG\r\n\x1a\n" and len(png.body()) > 20_000
    payload = json.loads(table.body())
    result = page.drawn["result"]
    for d in ("forward", "reverse"):
        fit = payload["explore"]["fits"][d]
        assert fit["params"] == pytest.approx(result[d]["params"], abs=1e-12)
        assert fit["kl_p_q"]["value"] == pytest.approx(result[d]["kl_p_q"]["value"], abs=1e-12)
    assert payload["state"]["p"] == result["p"]["components"]


def test_2d_mode_draws_contours_and_drags_a_mean(page):
    drawn = page.after(lambda: page.page.check("#mode-2d"))
    assert drawn["result"]["mode"] == "2d"
    contours = page.page.evaluate(
        "() => document.getElementById('plot').data.filter((t) => t.type === 'contour').map((t) => t.name)")
    assert contours[0] == "p (target)" and len(contours) == 3
    assert page.page.locator("#plot .contourlayer path").count() > 0
    assert page.page.locator("#q-family").is_hidden()
    fwd = drawn["result"]["forward"]["params"]
    assert len(fwd["mean"]) == 2 and np.asarray(fwd["cov"]).shape == (2, 2)
    mean0 = drawn["state"]["p2"][0]["mean"]
    after = page.after(lambda: _drag(page, _handle_centre(page, 0), 60, -40))
    moved = np.subtract(after["state"]["p2"][0]["mean"], mean0)
    assert moved[0] > 0.3 and moved[1] > 0.3  # right and up (pixels grow downwards)
    assert after["result"]["forward"]["params"]["mean"] != fwd["mean"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.page.screenshot(path=str(ARTIFACTS / "explore-2d.png"))
    page.after(lambda: page.page.check("#mode-1d"))
    assert page.errors == []


def test_screenshot_is_kept(page):
    page.after(lambda: page.page.select_option("#preset", "bimodal"))
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "explore.png"
    page.page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.errors == []
