"""``kullback explore``: a local page where p is built by hand and q is fitted both ways, live.

The package holds the state schema (``_state``: validation, presets, the URL fragment), the
engine (``_engine``: ``solve(state)``, the compiled fits and measures), the export (``_export``:
the PNG and JSON of a state, as ``kullback demo`` writes them), the server (``_server``: a
Starlette app, run by uvicorn) and the page itself (``static/``: our HTML, JavaScript and CSS;
plotly.js is served from the installed ``plotly`` package, nothing is fetched at run time).

Nothing is re-exported here: the command imports what it needs when it runs, so that
``kullback --help`` imports neither JAX nor the web stack.
"""
