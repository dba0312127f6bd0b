// kullback explore: the page. The state (what p is, which q family, the log toggle) lives here and
// in location.hash; every change posts it to /api/solve and draws the engine's answer. At most one
// request is in flight: changes made meanwhile are merged and sent when it returns (latest wins).
//
// window.kullback (for tests and benchmarks):
//   state    {state, result}: the state last drawn and the engine's result for it
//   ready    a promise resolved with `state` once the current state is drawn (replaced on each change)
//   draws    how many results were drawn;  timings  [{total, request, draw, engine, painted}] in ms:
//            total input → drawn (plotly done), painted input → the frame that shows it (null until then)
//   set(s)   load a state (as a URL would); returns the new `ready`
"use strict";
(() => {
  const COLOR = { p: "#595959", pFill: "rgba(0,0,0,0.13)", forward: "#c0392b", reverse: "#2471a3" };
  const DASH = { forward: "dash", reverse: "dashdot" };
  const NAME = { forward: "q forward: argmin KL(p‖q)", reverse: "q reverse: argmin KL(q‖p)" };
  const HANDLE = ["#7d3c98", "#117a65", "#b9770e", "#5d6d7e"];
  const PRESET_LABEL = {
    bimodal: "bimodal: ½N(−3,1) + ½N(3,1) (the demo's)",
    heavy_tail: "heavy tail: Student-t(3)",
    skewed_pair: "skewed pair",
    asymmetric_bimodal: "asymmetric bimodal",
    laplace_mix: "Laplace + Student-t + normal",
    "2d_bimodal": "2-D: two Gaussians",
  };
  const FAMILY_LABEL = { normal: "normal", student_t: "Student-t", laplace: "Laplace", mixture2: "2-normal mixture" };
  const SLIDERS_1D = [
    { key: "loc", label: "loc", min: -10, max: 10, step: 0.01 },
    { key: "scale", label: "scale", min: 0.05, max: 6, step: 0.01 },
    { key: "weight", label: "weight", min: 0.01, max: 1, step: 0.01 },
    { key: "df", label: "df ν", min: 0.5, max: 30, step: 0.1, only: "student_t" },
  ];
  const SLIDERS_2D = [
    { key: "mean", index: 0, label: "mean x₁", min: -6, max: 6, step: 0.01 },
    { key: "mean", index: 1, label: "mean x₂", min: -6, max: 6, step: 0.01 },
    { key: "sd", index: 0, label: "sd x₁", min: 0.1, max: 4, step: 0.01 },
    { key: "sd", index: 1, label: "sd x₂", min: 0.1, max: 4, step: 0.01 },
    { key: "corr", label: "corr ρ", min: -0.95, max: 0.95, step: 0.01 },
    { key: "weight", label: "weight", min: 0.01, max: 1, step: 0.01 },
  ];
  const $ = (id) => document.getElementById(id);
  const clone = (x) => JSON.parse(JSON.stringify(x));
  const plot = $("plot");

  let meta = null;      // /api/meta
  let state = null;     // the current input state
  let inflight = false; // a request is out
  let pending = false;  // the state changed since the last request was sent
  let firstInput = null; // performance.now() of the oldest change not yet sent
  let resolveReady = null;

  const kb = (window.kullback = { state: null, ready: null, draws: 0, timings: [], errors: 0 });
  function newReady() {
    if (resolveReady) return; // the previous promise is still open: it will resolve with the newer state
    kb.ready = new Promise((resolve) => { resolveReady = resolve; });
  }
  function settle() {
    if (resolveReady && !pending && !inflight) {
      const r = resolveReady;
      resolveReady = null;
      r(kb.state);
    }
  }

  // --- formatting -------------------------------------------------------------------------------
  const num = (x, d = 6) => (x === null || x === undefined ? "—" : (Math.round(x * 10 ** d) / 10 ** d + 0).toFixed(d));
  function estimate(e) {
    if (!e) return "—";
    if (e.infinite) return `<span class="value">inf</span>`;
    const err = e.method === "closed_form" || e.method === "exact" ? "" : ` ± ${Number(e.stderr).toExponential(1)}`;
    return `<span class="value">${num(e.value)}</span>${err} <span class="method">(${e.method})</span>`;
  }
  function paramsHtml(params, dir) {
    if (!params) return `<span id="num-${dir}-none">no fit</span>`;
    return Object.entries(params).map(([k, v]) => {
      const text = Array.isArray(v)
        ? "[" + v.map((r) => (Array.isArray(r) ? "[" + r.map((c) => num(c)).join(", ") + "]" : num(r))).join(", ") + "]"
        : num(v);
      return `<span class="param">${k} <span id="num-${dir}-${k}">${text}</span></span>`;
    }).join("<br>");
  }

  // --- the URL ----------------------------------------------------------------------------------
  function writeHash() {
    history.replaceState(null, "", "#" + encodeURIComponent(JSON.stringify(state)));
  }
  function readHash() {
    if (location.hash.length < 2) return null;
    try { return JSON.parse(decodeURIComponent(location.hash.slice(1))); }
    catch (e) { showError(`the address's state is not JSON (${e.message}); showing the default`); return null; }
  }

  // --- requests ---------------------------------------------------------------------------------
  function showError(message) {
    const box = $("error");
    box.hidden = !message;
    box.textContent = message || "";
  }
  function changed() {
    if (firstInput === null) firstInput = performance.now();
    pending = true;
    newReady();
    pump(); // the request goes out first; the address (history.replaceState, a few ms) follows
    writeHash();
  }
  async function pump() {
    if (inflight || !pending) return;
    pending = false;
    inflight = true;
    const sent = clone(state);
    const started = firstInput;
    firstInput = null;
    const t0 = performance.now();
    try {
      const response = await fetch("/api/solve", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(sent),
      });
      const body = await response.json();
      const t1 = performance.now();
      if (!response.ok) {
        kb.errors += 1;
        showError(body.error || `the server answered ${response.status}`);
      } else {
        showError("");
        draw(sent, body);
        const t2 = performance.now();
        const timing = { total: t2 - started, request: t1 - t0, draw: t2 - t1, engine: body.timing_ms, painted: null };
        kb.timings.push(timing);
        requestAnimationFrame(() => setTimeout(() => { timing.painted = performance.now() - started; }, 0));
        $("timing").textContent = `drawn ${Math.round(t2 - started)} ms after the change (engine ${Math.round(body.timing_ms)} ms)`;
      }
    } catch (e) {
      kb.errors += 1;
      showError(`no answer from the server (${e.message}); is kullback explore still running?`);
    }
    inflight = false;
    if (pending) pump(); else settle();
  }

  // --- drawing ----------------------------------------------------------------------------------
  function draw(sent, result) {
    kb.state = { state: sent, result };
    kb.draws += 1;
    if (result.mode === "2d") draw2d(result); else draw1d(result);
    table(result);
    optima(result);
  }
  function redraw() { // the log toggle: no new numbers, the same result drawn again
    if (!kb.state) return;
    kb.state = { state: clone(state), result: kb.state.result };
    if (!resolveReady) kb.ready = Promise.resolve(kb.state); // nothing in flight: the redrawn state is the ready one
    if (kb.state.result.mode === "1d") draw1d(kb.state.result);
  }

  function handles1d() {
    return state.p.map((c, i) => ({
      type: "rect", xref: "x", yref: "paper", x0: c.loc - c.scale, x1: c.loc + c.scale, y0: 0.015, y1: 0.075,
      editable: true, fillcolor: HANDLE[i], opacity: 0.35, line: { color: HANDLE[i], width: 2 },
      label: { text: String(i + 1), font: { color: "#fff", size: 12 } },
    }));
  }
  const DISC = 0.28; // the radius of a 2-D handle (data units): a disc at the component's mean
  function handles2d() {
    return state.p2.map((c, i) => ({
      type: "circle", xref: "x", yref: "y", editable: true,
      x0: c.mean[0] - DISC, x1: c.mean[0] + DISC, y0: c.mean[1] - DISC, y1: c.mean[1] + DISC,
      line: { color: HANDLE[i], width: 2 }, fillcolor: HANDLE[i], opacity: 0.55,
      label: { text: String(i + 1), font: { color: "#fff", size: 12 } },
    }));
  }

  // The 1-D axes keep their range while the curves stay inside it and fill most of it: a drag's
  // small steps then redraw the curves, not the axes and their tick labels (which were most of
  // plotly's time: a range that moves on every step re-lays out every label).
  let range = { x: null, y: null };
  function steadyX(lo, hi) {
    const width = hi - lo, cur = range.x;
    if (!(cur && cur[0] <= lo + 0.05 * width && cur[1] >= hi - 0.05 * width && width >= 0.75 * (cur[1] - cur[0]))) {
      range.x = [lo - 0.04 * width, hi + 0.04 * width];
    }
    return range.x.slice();
  }
  function steadyY(peak) { // the top between 1.1 and 1.6 times the highest density, 1.3 when it is set anew
    const top = range.y && range.y[1];
    if (!(top && peak * 1.1 <= top && top <= peak * 1.6)) range.y = [0, 1.3 * peak];
    return range.y.slice();
  }

  function draw1d(result) {
    const g = result.grid;
    const log = state.log;
    const ys = (v) => (log ? v.map((d) => (d > 1e-300 ? d : null)) : v);
    const traces = [
      { x: g.x, y: ys(g.p), name: "p (target)", mode: "lines", line: { color: COLOR.p, width: 1.4 },
        fill: "tozeroy", fillcolor: COLOR.pFill, hovertemplate: "p(%{x:.3f}) = %{y:.4g}<extra></extra>" },
    ];
    for (const dir of ["forward", "reverse"]) {
      if (!g[dir]) continue; // no fit (KL = ∞ for every q of the family)
      traces.push({ x: g.x, y: ys(g[dir]), name: `${NAME[dir]}, ${FAMILY_LABEL[result.q] || result.q}`, mode: "lines",
        line: { color: COLOR[dir], dash: DASH[dir], width: 2.4 },
        hovertemplate: `q ${dir}(%{x:.3f}) = %{y:.4g}<extra></extra>` });
    }
    const local = (result.reverse.optima || []).filter((o) => !o.global && typeof o.params.loc === "number");
    if (local.length) {
      traces.push({ x: local.map((o) => o.params.loc), y: local.map(() => 0), yaxis: "y", mode: "markers",
        name: "other local optima of the reverse fit (loc)", cliponaxis: false,
        marker: { symbol: "triangle-up-open", size: 12, color: COLOR.reverse, line: { width: 2 } },
        hovertemplate: "local optimum: loc %{x:.3f}<extra></extra>" });
      if (log) traces[traces.length - 1].y = local.map(() => 1e-6);
    }
    let peak = 0;
    for (const v of [g.p, g.forward, g.reverse]) for (const d of v || []) if (d > peak) peak = d;
    const layout = {
      uirevision: "1d", margin: { l: 64, r: 24, t: 8, b: 46 }, hovermode: "x unified",
      xaxis: { title: { text: "x" }, range: steadyX(g.x[0], g.x[g.x.length - 1]), zeroline: false, ...TICKS },
      yaxis: log ? { title: { text: "density (log scale)" }, type: "log", range: [-6, 0.2], exponentformat: "power", ...TICKS }
                 : { title: { text: "density" }, range: steadyY(peak), rangemode: "tozero", ...TICKS },
      legend: LEGEND,
      shapes: handles1d(),
    };
    Plotly.react(plot, traces, layout, CONFIG);
  }

  function draw2d(result) {
    const g = result.grid;
    let top = 0;
    for (const row of g.p) for (const d of row) if (d > top) top = d;
    const traces = [{
      type: "contour", x: g.x, y: g.y, z: g.p, name: "p (target)", showlegend: true, showscale: false,
      colorscale: [[0, "rgba(255,255,255,0)"], [1, "rgba(60,60,60,0.85)"]],
      contours: { coloring: "fill", start: 0.04 * top, end: top, size: top / 7, showlines: false },
      line: { width: 0 }, hoverinfo: "skip",
    }];
    for (const dir of ["forward", "reverse"]) {
      let qt = 0;
      for (const row of g[dir]) for (const d of row) if (d > qt) qt = d;
      traces.push({
        type: "contour", x: g.x, y: g.y, z: g[dir], name: NAME[dir], showlegend: true, showscale: false,
        colorscale: [[0, COLOR[dir]], [1, COLOR[dir]]],
        contours: { coloring: "lines", start: 0.05 * qt, end: 0.65 * qt, size: 0.3 * qt },
        line: { color: COLOR[dir], dash: DASH[dir], width: 2 }, hoverinfo: "skip",
      });
      const mean = result[dir].params.mean;
      traces.push({ x: [mean[0]], y: [mean[1]], mode: "markers", showlegend: false, hoverinfo: "skip",
        marker: { symbol: "cross-thin-open", size: 14, line: { color: COLOR[dir], width: 2.5 } } });
    }
    const layout = {
      uirevision: "2d", margin: { l: 56, r: 24, t: 8, b: 46 },
      xaxis: { title: { text: "x₁" }, range: [g.x[0], g.x[g.x.length - 1]], zeroline: false },
      yaxis: { title: { text: "x₂" }, range: [g.y[0], g.y[g.y.length - 1]], scaleanchor: "x", zeroline: false },
      legend: LEGEND,
      shapes: handles2d(),
    };
    Plotly.react(plot, traces, layout, CONFIG);
  }

  function table(result) {
    const rows = ["forward", "reverse"].map((dir) => {
      const f = result[dir];
      const status = f.status && f.status !== "exact" && f.status !== "converged" ? ` · ${f.status}` : "";
      return `<tr class="${dir}" id="row-${dir}" title="${(f.message || "").replace(/"/g, "&quot;")}">
        <td class="fit">${dir}<br><span class="method">${f.method}${status}</span></td>
        <td>${paramsHtml(f.params, dir)}</td>
        <td><span id="num-${dir}-kl_p_q">${estimate(f.kl_p_q)}</span></td>
        <td><span id="num-${dir}-kl_q_p">${estimate(f.kl_q_p)}</span></td>
        <td><span id="num-${dir}-cross_entropy">${estimate(f.cross_entropy_p_q)}</span></td></tr>`;
    }).join("");
    const p = result.p;
    const moments = result.mode === "1d"
      ? ` · mean of p <span id="num-p-mean">${num(p.mean)}</span>, variance <span id="num-p-variance">${p.variance === null ? "does not exist" : num(p.variance)}</span>`
      : "";
    $("numbers").innerHTML = `
      <p class="summary">H(p) = <span id="num-entropy">${estimate(p.entropy)}</span>${moments}</p>
      <table class="numbers"><thead><tr><th>fit</th><th>q's parameters</th><th>KL(p‖q)</th><th>KL(q‖p)</th>
        <th>H(p, q)</th></tr></thead><tbody>${rows}</tbody></table>`;
  }

  function optima(result) {
    const list = result.reverse.optima || [];
    if (list.length < 2) { $("optima").innerHTML = list.length ? `<p class="small">The reverse fit's multi-start found one optimum.</p>` : ""; return; }
    const items = list.map((o, i) => {
      const vec = (v) => "[" + v.map((c) => (Array.isArray(c) ? vec(c) : num(c, 4))).join(", ") + "]"; // 2-D: cov is a matrix
      const params = Object.entries(o.params).map(([k, v]) => `${k} ${Array.isArray(v) ? vec(v) : num(v, 4)}`).join(", ");
      return `<li class="${o.global ? "global" : ""}" id="optimum-${i}">${params}: KL(q‖p) = ${estimate(o.kl_q_p)}${o.global ? " ★ global" : " (local)"}${o.start ? ` <span class="method">from ${o.start}</span>` : ""}</li>`;
    }).join("");
    $("optima").innerHTML = `<p class="summary">Reverse KL has ${list.length} local optima here (multi-start); the global one is marked:</p><ol>${items}</ol>`;
  }

  // --- controls ---------------------------------------------------------------------------------
  function slider(spec, value, onInput, id) {
    const row = document.createElement("label");
    row.className = "slider";
    const clamped = Math.min(spec.max, Math.max(spec.min, value));
    row.innerHTML = `<span class="name">${spec.label}</span><input type="range" id="${id}" min="${spec.min}" max="${spec.max}" step="${spec.step}" value="${clamped}"><output>${num(value, 2)}</output>`;
    const input = row.querySelector("input");
    const out = row.querySelector("output");
    input.addEventListener("input", () => { const v = Number(input.value); out.textContent = num(v, 2); onInput(v); });
    return row;
  }

  function buildControls() {
    const box = $("components");
    box.innerHTML = "";
    const is2d = state.mode === "2d";
    const comps = is2d ? state.p2 : state.p;
    comps.forEach((c, i) => {
      const fs = document.createElement("fieldset");
      fs.className = "component";
      fs.style.borderColor = HANDLE[i];
      const legend = document.createElement("legend");
      legend.innerHTML = `<span style="color:${HANDLE[i]}">component ${i + 1}</span>`;
      if (!is2d) {
        const kind = document.createElement("select");
        kind.id = `kind-${i}`;
        for (const k of meta.kinds) kind.add(new Option(FAMILY_LABEL[k], k, false, k === c.kind));
        kind.addEventListener("change", () => { c.kind = kind.value; buildControls(); changed(); });
        legend.appendChild(kind);
      }
      if (comps.length > 1) {
        const remove = document.createElement("button");
        remove.type = "button"; remove.textContent = "×"; remove.title = "remove this component"; remove.id = `remove-${i}`;
        remove.addEventListener("click", () => { comps.splice(i, 1); buildControls(); changed(); });
        legend.appendChild(remove);
      }
      fs.appendChild(legend);
      for (const spec of is2d ? SLIDERS_2D : SLIDERS_1D) {
        if (spec.only && spec.only !== c.kind) continue;
        const id = `${spec.key}${spec.index === undefined ? "" : spec.index}-${i}`;
        const value = spec.index === undefined ? c[spec.key] : c[spec.key][spec.index];
        fs.appendChild(slider(spec, value, (v) => {
          if (spec.index === undefined) c[spec.key] = v; else c[spec.key][spec.index] = v;
          changed();
        }, id));
      }
      box.appendChild(fs);
    });
    $("add-component").disabled = comps.length >= meta.max_components;
    $(`mode-${state.mode}`).checked = true;
    $("q-family").value = state.q;
    $("log-scale").checked = state.log;
    for (const el of document.querySelectorAll(".only-1d")) el.hidden = is2d;
    const presets = $("preset");
    presets.innerHTML = "";
    presets.add(new Option("choose a preset…", ""));
    for (const [name, s] of Object.entries(meta.presets)) if (s.mode === state.mode) presets.add(new Option(PRESET_LABEL[name] || name, name));
  }

  // a handle dragged on the plot: plotly reports the shape's new corners
  function onRelayout(event) {
    const comps = state.mode === "2d" ? state.p2 : state.p;
    let moved = false;
    comps.forEach((c, i) => {
      const x0 = event[`shapes[${i}].x0`], x1 = event[`shapes[${i}].x1`];
      if (x0 === undefined || x1 === undefined) return;
      const lo = Math.min(x0, x1), hi = Math.max(x0, x1);
      if (state.mode === "2d") {
        const y0 = event[`shapes[${i}].y0`], y1 = event[`shapes[${i}].y1`];
        c.mean = [(lo + hi) / 2, (y0 + y1) / 2]; // a move (a resize of the disc only moves it too)
      } else {
        c.loc = (lo + hi) / 2;
        const half = (hi - lo) / 2; // a move keeps the scale (plotly rounds each edge to its pixel)
        if (Math.abs(half - c.scale) > 1e-3 * c.scale) c.scale = Math.min(1000, Math.max(0.02, half));
      }
      moved = true;
    });
    if (moved) { buildControls(); changed(); }
  }

  function load(s) {
    state = clone(s);
    buildControls();
    changed();
    return kb.ready;
  }
  kb.set = (s) => load({ ...clone(meta.default), ...clone(s) });

  async function exportFiles() {
    const links = $("export-links");
    links.textContent = "writing…";
    try {
      const response = await fetch("/api/export", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(state) });
      const body = await response.json();
      if (!response.ok) { links.textContent = ""; showError(body.error); return; }
      links.innerHTML = `written: <a id="export-png" href="${body.png.url}" download>PNG</a> · <a id="export-json" href="${body.json.url}" download>JSON</a><br>${body.png.path}`;
      kb.exported = body;
    } catch (e) { links.textContent = ""; showError(`export failed: ${e.message}`); }
  }

  // tick labels that may overflow the div (plotly's default hides them, measuring every label's box
  // on every redraw): ours stay inside the margins
  const TICKS = { ticklabeloverflow: "allow" };
  const LEGEND = { orientation: "h", x: 0, y: 1.01, yanchor: "bottom", font: { size: 12 } };
  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"],
                   edits: { shapePosition: true } };  // the handles drag (a per-shape editable alone leaves them under the zoom layer)

  async function start() {
    meta = await (await fetch("/api/meta")).json();
    for (const radio of document.querySelectorAll("input[name=mode]")) {
      radio.addEventListener("change", () => { state.mode = radio.value; buildControls(); changed(); });
    }
    $("q-family").addEventListener("change", (e) => { state.q = e.target.value; changed(); });
    $("log-scale").addEventListener("change", (e) => { state.log = e.target.checked; writeHash(); redraw(); });
    $("preset").addEventListener("change", (e) => {
      const name = e.target.value;
      if (!name) return;
      const s = clone(meta.presets[name]);
      load({ ...s, q: state.q, log: state.log });
    });
    $("add-component").addEventListener("click", () => {
      if (state.mode === "2d") state.p2.push({ mean: [0, 0], sd: [1, 1], corr: 0, weight: 0.3 });
      else state.p.push({ kind: "normal", loc: 0, scale: 1, weight: 0.3, df: 3 });
      buildControls(); changed();
    });
    $("export").addEventListener("click", exportFiles);
    $("copy-link").addEventListener("click", async () => {
      try { await navigator.clipboard.writeText(location.href); $("export-links").textContent = "link copied"; }
      catch (e) { $("export-links").textContent = location.href; }
    });
    window.addEventListener("hashchange", () => { const s = readHash(); if (s) load({ ...clone(meta.default), ...s }); });
    bindPlot();
    const fromUrl = readHash();
    load(fromUrl ? { ...clone(meta.default), ...fromUrl } : meta.default);
  }
  function bindPlot() {
    Plotly.newPlot(plot, [], { margin: { t: 28 } }, CONFIG).then(() => plot.on("plotly_relayout", onRelayout));
  }
  kb.ready = new Promise((resolve) => { resolveReady = resolve; });
  start().catch((e) => showError(`the page could not start: ${e.message}`));
})();
