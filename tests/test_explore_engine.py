"""The explorer's engine (``kullback.cli.explore``): state validation, fits and measures against
scipy (quad with breakpoints at the kinks, optimize), against kullback's public API, and one
compiled program per (mode, q family).

Tolerances: 1-D measures 1e-8 absolute against scipy.integrate.quad (both sides are accurate to
~1e-10; quad's own estimate is asserted small). Reverse optima: the scipy objective's central-
difference gradient below 1e-6 (its step 1e-4 and quad's noise set that floor). Against kb.fit /
kb.estimate_kl: the issue's 1e-6. 2-D: the engine's own error estimate (reported) plus 1e-6
against an independent dense trapezoid reference.
"""

from __future__ import annotations

import math

import numpy as np
import numpyro.distributions as dist
import pytest
import scipy.integrate as si
import scipy.optimize as so
import scipy.stats as ss
from scipy.special import logsumexp

import kullback as kb
from kullback._compile import count_compiles
from kullback.cli.explore import _engine, _state

pytestmark = pytest.mark.timeout(600)


# ---------------------------------------------------------------- state
@pytest.mark.parametrize("raw, field", [
    ({"p": [{"scale": -1.0}]}, "p[0].scale must be > 0; got -1"),
    ({"p": [{"kind": "normal"}, {"kind": "cauchy"}]}, "p[1].kind"),
    ({"p": [{"weight": 0.0}]}, "p[0].weight must be > 0"),
    ({"p": [{"df": 0.1, "kind": "student_t"}]}, "p[0].df must be in"),
    ({"p": [{}] * 5}, "p must be a list of 1 to 4"),
    ({"q": "gamma"}, "q must be one of"),
    ({"mode": "3d"}, "mode must be one of"),
    ({"p": [{"loc": "a"}]}, "p[0].loc must be a number"),
    ({"p2": [{"corr": 1.0}]}, "p2[0].corr must be in"),
    ({"p2": [{"sd": [1.0, 0.0]}]}, "p2[0].sd[1] must be > 0"),
    ({"colour": 1}, "unknown keys ['colour']"),
])
def test_state_errors_name_the_field(raw, field):
    with pytest.raises(ValueError) as e:
        _state.normalise(raw)
    assert field in str(e.value)


@pytest.mark.parametrize("name", sorted(_state.PRESETS))
def test_presets_are_valid_normalised_and_survive_the_url(name):
    s = _state.preset(name)
    assert _state.normalise(s) == s
    assert math.isclose(sum(c["weight"] for c in s["p"]), 1.0)
    assert _state.from_fragment("#" + _state.to_fragment(s)) == s
    assert _state.default_state()["p"] == _state.preset("bimodal")["p"]


# ---------------------------------------------------------------- scipy truth
# scipy.integrate.quad calls its integrand once per point: the log densities are scalar formulas
# in pure Python (a frozen scipy.stats distribution costs ~20 µs a call, and quad makes thousands),
# checked against scipy.stats in test_the_reference_densities_equal_scipy_stats.
_LOG_2PI = math.log(2 * math.pi)


class _Density:
    """One component's log density and CDF (the CDF is scipy.stats')."""

    def __init__(self, kind, loc, scale, df=None):
        self.kind, self.loc, self.scale, self.df = kind, loc, scale, df
        if kind == "normal":
            self._c = -math.log(scale) - 0.5 * _LOG_2PI
        elif kind == "laplace":  # scipy's laplace.logpdf is log(pdf): −inf beyond ~745 scales
            self._c = -math.log(2 * scale)
        else:
            self._c = (math.lgamma(0.5 * (df + 1)) - math.lgamma(0.5 * df) - 0.5 * math.log(df * math.pi)
                       - math.log(scale))

    def logpdf(self, x):
        z = (x - self.loc) / self.scale
        if self.kind == "normal":
            return self._c - 0.5 * z * z
        if self.kind == "laplace":
            return self._c - abs(z)
        return self._c - 0.5 * (self.df + 1) * math.log1p(z * z / self.df)

    def cdf(self, x):
        frozen = {"normal": lambda: ss.norm(self.loc, self.scale), "laplace": lambda: ss.laplace(self.loc, self.scale),
                  "student_t": lambda: ss.t(self.df, self.loc, self.scale)}[self.kind]()
        return frozen.cdf(x)


def _frozen(c):
    return _Density(c["kind"], c["loc"], c["scale"], c["df"] if c["kind"] == "student_t" else None)


def _mixture_log(parts):
    logs = [(math.log(w), d.logpdf) for w, d in parts]

    def log(x):
        terms = [lw + f(x) for lw, f in logs]
        top = max(terms)
        return top + math.log(sum(math.exp(t - top) for t in terms))
    return log


def p_log(comps):
    return _mixture_log([(c["weight"], _frozen(c)) for c in comps])


def test_the_reference_densities_equal_scipy_stats():
    x = np.linspace(-60.0, 60.0, 241)
    for kind, ref in [("normal", ss.norm(0.3, 1.7)), ("laplace", ss.laplace(0.3, 1.7)), ("student_t", ss.t(2.5, 0.3, 1.7))]:
        d = _Density(kind, 0.3, 1.7, 2.5 if kind == "student_t" else None)
        np.testing.assert_allclose([d.logpdf(v) for v in x], ref.logpdf(x), rtol=1e-13, atol=1e-13)
    comps = [{"kind": "normal", "loc": -1.0, "scale": 0.5, "weight": 0.3, "df": 3.0},
             {"kind": "student_t", "loc": 2.0, "scale": 1.5, "weight": 0.7, "df": 4.0}]
    ref = logsumexp([np.log(0.3) + ss.norm(-1.0, 0.5).logpdf(x), np.log(0.7) + ss.t(4.0, 2.0, 1.5).logpdf(x)], axis=0)
    np.testing.assert_allclose([p_log(comps)(v) for v in x], ref, rtol=1e-13, atol=1e-13)


def p_pdf(comps):
    log = p_log(comps)
    return lambda x: math.exp(log(x))


def q_log(family, params):
    if family == "mixture2":
        return _mixture_log([(w, _Density("normal", m, s))
                             for w, m, s in zip(params["weights"], params["locs"], params["scales"])])
    return _Density(family, params["loc"], params["scale"], params.get("df")).logpdf


def quad(f, breaks):
    """∫ f over ℝ by scipy.quad split at the breakpoints (tight tolerances)."""
    edges = [-np.inf] + sorted(set(float(b) for b in breaks)) + [np.inf]
    total, err = 0.0, 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        v, e = si.quad(f, a, b, epsabs=1e-13, epsrel=1e-12, limit=400)
        total, err = total + v, err + e
    return total, err


def breaks_of(comps, family=None, params=None):
    b = [c["loc"] + k * c["scale"] for c in comps for k in (-3, 0, 3)]
    if params is not None:
        locs = params["locs"] if family == "mixture2" else [params["loc"]]
        scales = params["scales"] if family == "mixture2" else [params["scale"]]
        b += [m + k * s for m, s in zip(locs, scales) for k in (-3, 0, 3)]
    return b


def kl_integrand(log_a, log_b):
    """a (log a − log b) from log densities (no underflow to log 0)."""
    def f(x):
        la = log_a(x)
        return 0.0 if la < -745 else math.exp(la) * (la - log_b(x))
    return f


def ce_integrand(log_a, log_b):
    def f(x):
        la = log_a(x)
        return 0.0 if la < -745 else -math.exp(la) * log_b(x)
    return f


def truth(comps, family, params):
    lp, lq = p_log(comps), q_log(family, params)
    br = breaks_of(comps, family, params)
    out = {
        "kl_p_q": quad(kl_integrand(lp, lq), br),
        "kl_q_p": quad(kl_integrand(lq, lp), br),
        "cross_entropy_p_q": quad(ce_integrand(lp, lq), br),
        "entropy": quad(ce_integrand(lp, lp), breaks_of(comps)),
    }
    for v, e in out.values():
        assert e < 1e-9, out  # quad's own estimate: the reference is good to far below the tolerance
    return {k: v for k, (v, _) in out.items()}


CASES = [("bimodal", "normal"), ("bimodal", "laplace"), ("bimodal", "student_t"), ("bimodal", "mixture2"),
         ("heavy_tail", "student_t"), ("skewed_pair", "mixture2"), ("asymmetric_bimodal", "normal"),
         ("laplace_mix", "laplace"), ("laplace_mix", "normal")]


@pytest.fixture(scope="module")
def results():
    out = {}
    for name, family in CASES:
        state = _state.preset(name) | {"q": family}
        out[name, family] = (state, _engine.solve(state))
    return out


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_measures_equal_scipy_quad_at_the_reported_parameters(results, case):
    state, r = results[case]
    ref_h = None
    for direction in ("forward", "reverse"):
        fit = r[direction]
        ref = truth(state["p"], state["q"], fit["params"])
        ref_h = ref["entropy"]
        for key in ("kl_p_q", "kl_q_p", "cross_entropy_p_q"):
            est = fit[key]
            assert not est["infinite"] and est["value"] >= 0.0 or key == "cross_entropy_p_q"
            assert est["value"] == pytest.approx(ref[key], abs=1e-8), (direction, key, est, ref[key])
            assert est["stderr"] < 1e-8
        # the identity KL = H(p, q) − H(p), each side evaluated on its own
        assert fit["kl_p_q"]["value"] == pytest.approx(fit["cross_entropy_p_q"]["value"] - r["p"]["entropy"]["value"],
                                                       abs=1e-10)
    assert r["p"]["entropy"]["value"] == pytest.approx(ref_h, abs=1e-8)


def _theta(family, params):
    if family == "mixture2":
        w = params["weights"][0]
        return np.array([math.log(w / (1 - w)), params["locs"][0], math.log(params["scales"][0]),
                         params["locs"][1], math.log(params["scales"][1])])
    t = [params["loc"], math.log(params["scale"])]
    return np.array(t + ([math.log(params["df"])] if family == "student_t" else []))


def _params(family, theta):
    if family == "mixture2":
        w = 1 / (1 + math.exp(-theta[0]))
        return {"weights": [w, 1 - w], "locs": [theta[1], theta[3]], "scales": [math.exp(theta[2]), math.exp(theta[4])]}
    out = {"loc": theta[0], "scale": math.exp(theta[1])}
    if family == "student_t":
        out["df"] = math.exp(theta[2])
    return out


def scipy_reverse(comps, family):
    lp = p_log(comps)

    def f(theta):
        params = _params(family, theta)
        return quad(kl_integrand(q_log(family, params), lp), breaks_of(comps, family, params))[0]
    return f


def scipy_forward(comps, family):
    lp = p_log(comps)

    def f(theta):
        params = _params(family, theta)
        return quad(ce_integrand(lp, q_log(family, params)), breaks_of(comps, family, params))[0]
    return f


def num_grad(f, theta, h=1e-4):
    g = np.zeros_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        g[i] = (f(theta + e) - f(theta - e)) / (2 * h)
    return g


@pytest.mark.parametrize("case", [("bimodal", "normal"), ("bimodal", "laplace"), ("asymmetric_bimodal", "normal"),
                                  ("heavy_tail", "student_t"), ("skewed_pair", "mixture2")], ids="-".join)
def test_reverse_optima_are_stationary(results, case):
    state, r = results[case]
    family = state["q"]
    f = scipy_reverse(state["p"], family)
    for opt in r["reverse"]["optima"]:
        g = num_grad(f, _theta(family, opt["params"]))
        assert np.max(np.abs(g)) < 1e-6, (opt, g)


@pytest.mark.parametrize("case", [("asymmetric_bimodal", "normal")], ids="-".join)
def test_the_global_reverse_optimum_beats_scipy_from_the_same_starts(results, case):
    state, r = results[case]
    f = scipy_reverse(state["p"], state["q"])
    starts = np.unique(_engine.reverse_starts(state["q"], state["p"])[1], axis=0)
    best = min(so.minimize(f, s, method="L-BFGS-B", options={"ftol": 1e-13, "gtol": 1e-9}).fun for s in starts)
    assert r["reverse"]["kl_q_p"]["value"] <= best + 1e-10


def test_heavy_tail_mixture_reverse_is_a_scale_mixture_not_the_merged_saddle(results):
    # p = Student-t(3): the best 2-normal q by KL(q‖p) puts both components at 0 with different
    # scales. Merged components (one normal) are a saddle the symmetric "moments split" start
    # slides towards: its gradient had no component along the scale split that leaves it, and
    # the crossings of two coinciding components made the gradient NaN (it stopped unconverged).
    state = _state.preset("heavy_tail") | {"q": "mixture2"}
    r = _engine.solve(state)
    rev = r["reverse"]
    assert rev["status"] == "converged" and all(o["converged"] and o["iterations"] < 30 for o in rev["optima"])
    f = scipy_reverse(state["p"], "mixture2")
    assert np.max(np.abs(num_grad(f, _theta("mixture2", rev["params"])))) < 1e-6
    normal = results["heavy_tail", "student_t"][0] | {"q": "normal"}
    merged = _engine.solve(normal)["reverse"]["kl_q_p"]["value"]  # a mixture of coinciding components
    assert rev["kl_q_p"]["value"] < 0.5 * merged, (rev, merged)
    lo, hi = sorted(rev["params"]["scales"])
    assert hi > 2 * lo and np.allclose(rev["params"]["locs"], 0.0, atol=1e-6)


def test_the_mixture_objective_has_a_finite_gradient_where_the_components_coincide():
    import functools

    import jax
    from kullback.cli.explore import _fit1d, _quad

    inputs = _engine.inputs_1d(_state.preset("heavy_tail") | {"q": "mixture2"})
    p = inputs["p"]
    core = np.concatenate([inputs["p_points"]["core"], np.asarray(_quad.crossings(p))])
    pts = {"core": core, "all": np.concatenate([core, inputs["p_points"]["far"]])}
    f = functools.partial(_fit1d._reverse_objective, "mixture2", p, pts, inputs["p_scale"], 0)
    grad = jax.jit(jax.grad(f))  # one compile (op by op it took 8 s)
    for theta in ([0.0, 0.1, 0.2, 0.1, 0.2], [3.0, -0.5, 0.0, -0.5, 0.0]):
        g = np.asarray(grad(np.array(theta)))
        assert np.all(np.isfinite(g)), (theta, g)


def test_forward_fits_equal_their_exact_or_scipy_optima(results):
    # normal: p's moments; Laplace: the exact median and mean absolute deviation
    state, r = results["asymmetric_bimodal", "normal"]
    mean, var = _engine.p_moments(state["p"])
    assert r["forward"]["params"]["loc"] == pytest.approx(mean, abs=1e-12)
    assert r["forward"]["params"]["scale"] == pytest.approx(math.sqrt(var), abs=1e-12)
    state, r = results["laplace_mix", "laplace"]
    cdf = lambda x: sum(c["weight"] * _frozen(c).cdf(x) for c in state["p"])
    med = so.brentq(lambda x: cdf(x) - 0.5, -10, 10, xtol=1e-14)
    mad = quad(lambda x: p_pdf(state["p"])(x) * abs(x - med), breaks_of(state["p"]) + [med])[0]
    assert r["forward"]["params"]["loc"] == pytest.approx(med, abs=1e-10)
    assert r["forward"]["params"]["scale"] == pytest.approx(mad, abs=1e-9)
    # Student-t and mixture2: scipy's minimum of −E_p[log q] from the engine's fit is no lower
    for case in (("heavy_tail", "student_t"), ("skewed_pair", "mixture2")):
        state, r = results[case]
        f = scipy_forward(state["p"], state["q"])
        theta = _theta(state["q"], r["forward"]["params"])
        res = so.minimize(f, theta, method="L-BFGS-B", options={"ftol": 1e-14, "gtol": 1e-10})
        assert f(theta) <= res.fun + 1e-9, (case, f(theta), res.fun)
        assert np.max(np.abs(num_grad(f, theta))) < 1e-6
    state, r = results["heavy_tail", "student_t"]  # p is a Student-t(3): the fit is p itself
    assert r["forward"]["params"]["df"] == pytest.approx(3.0, abs=1e-6)
    assert r["forward"]["kl_p_q"]["value"] < 1e-12


def test_bimodal_reverse_sits_on_a_mode_and_forward_covers_both(results):
    state, r = results["bimodal", "normal"]
    assert r["forward"]["params"] == pytest.approx({"loc": 0.0, "scale": math.sqrt(10.0)}, abs=1e-12)
    assert r["forward"]["status"] == "exact"
    rev = r["reverse"]
    assert abs(rev["params"]["loc"]) == pytest.approx(2.9843, abs=1e-3)
    assert rev["params"]["scale"] == pytest.approx(1.0234, abs=1e-3)
    modes = [o for o in rev["optima"] if abs(o["params"]["loc"]) > 1]
    assert len(modes) == 2 and sum(o["global"] for o in rev["optima"]) == 1 and rev["optima"][0]["global"]
    a, b = sorted(modes, key=lambda o: o["params"]["loc"])
    assert a["params"]["loc"] == pytest.approx(-b["params"]["loc"], abs=1e-7)
    assert a["kl_q_p"]["value"] == pytest.approx(b["kl_q_p"]["value"], abs=1e-10)
    # every optimum is a minimum of the scipy objective (a symmetric wide one exists as well: its Hessian is PD)
    f = scipy_reverse(state["p"], "normal")
    for o in rev["optima"]:
        t = _theta("normal", o["params"])
        h = np.array([num_grad(f, t + e) - num_grad(f, t - e) for e in np.eye(2) * 1e-3]) / 2e-3
        assert np.all(np.linalg.eigvalsh(0.5 * (h + h.T)) > 0), (o, h)
    assert len(r["grid"]["x"]) == 401 and len(r["grid"]["p"]) == 401


def test_infinite_variance_gives_no_forward_normal():
    state = _state.normalise({"q": "normal", "p": [{"kind": "student_t", "df": 1.5, "loc": 0.0, "scale": 1.0}]})
    r = _engine.solve(state)
    assert r["forward"]["status"] == "no_optimum" and r["forward"]["kl_p_q"]["infinite"]
    assert r["forward"]["params"] is None and r["grid"]["forward"] is None
    assert r["p"]["variance"] is None and r["p"]["variance_infinite"]
    assert r["reverse"]["kl_q_p"]["value"] >= 0 and r["reverse"]["kl_p_q"]["infinite"]
    assert "df = 1.5" in r["forward"]["message"]


# ---------------------------------------------------------------- kullback's public API
def numpyro_p(comps):
    kinds = {c["kind"] for c in comps}
    probs = np.array([c["weight"] for c in comps])
    if kinds == {"normal"}:
        return dist.MixtureSameFamily(dist.Categorical(probs=probs),
                                      dist.Normal(np.array([c["loc"] for c in comps]), np.array([c["scale"] for c in comps])))
    make = {"normal": lambda c: dist.Normal(c["loc"], c["scale"]), "laplace": lambda c: dist.Laplace(c["loc"], c["scale"]),
            "student_t": lambda c: dist.StudentT(c["df"], c["loc"], c["scale"])}
    return dist.MixtureGeneral(dist.Categorical(probs=probs), [make[c["kind"]](c) for c in comps])


@pytest.mark.parametrize("case", [("bimodal", "normal"), ("asymmetric_bimodal", "normal"), ("laplace_mix", "normal")],
                         ids="-".join)
def test_forward_normal_and_kl_equal_kullback(results, case):
    state, r = results[case]
    p = numpyro_p(state["p"])
    fit = kb.fit(dist.Normal, p, direction="forward")
    for k in ("loc", "scale"):
        assert r["forward"]["params"][k] == pytest.approx(float(fit.params[k]), abs=1e-6)
    for direction in ("forward", "reverse"):
        q = dist.Normal(r[direction]["params"]["loc"], r[direction]["params"]["scale"])
        e = kb.estimate_kl(p, q)
        tol = max(1e-6, 3 * float(e.stderr))
        assert r[direction]["kl_p_q"]["value"] == pytest.approx(float(e.value), abs=tol), (direction, e)


@pytest.mark.parametrize("name", ["bimodal", "asymmetric_bimodal"])
def test_reverse_normal_equals_kullbacks_quadrature_fit(results, name):
    state, r = results[name, "normal"]
    fit = kb.fit(dist.Normal, numpyro_p(state["p"]), direction="reverse", key=0)
    assert fit.method == "quadrature"
    loc, scale = float(fit.params["loc"]), float(fit.params["scale"])
    near = min(r["reverse"]["optima"], key=lambda o: abs(o["params"]["loc"] - loc))  # kb finds one local optimum
    assert near["params"]["loc"] == pytest.approx(loc, abs=1e-6)
    assert near["params"]["scale"] == pytest.approx(scale, abs=1e-6)


# ---------------------------------------------------------------- 2-D
def test_2d_fits_and_measures_against_dense_references():
    from kullback.cli.explore import _engine2d

    state = _state.preset("2d_bimodal")
    r = _engine.solve(state)
    comps = state["p2"]
    mvn = [(c["weight"], ss.multivariate_normal(c["mean"], _engine2d._cov_of(c))) for c in comps]
    mean, cov = _engine2d.p_moments_2d(comps)
    np.testing.assert_allclose(r["forward"]["params"]["mean"], mean, atol=1e-12)
    np.testing.assert_allclose(r["forward"]["params"]["cov"], cov, atol=1e-12)
    # dense trapezoid reference on a box (step 0.02: converged far below the tolerance)
    g = np.arange(-12, 12, 0.02)
    xx = np.stack(np.meshgrid(g, g, indexing="ij"), -1)
    dp = sum(w * d.pdf(xx) for w, d in mvn)
    lp = np.log(np.maximum(dp, 1e-300))
    area = 0.02**2
    h_p = -np.sum(dp * lp) * area
    assert r["p"]["entropy"]["value"] == pytest.approx(h_p, abs=1e-6 + 3 * r["p"]["entropy"]["stderr"])
    for direction in ("forward", "reverse"):
        q = ss.multivariate_normal(r[direction]["params"]["mean"], r[direction]["params"]["cov"])
        dq = q.pdf(xx)
        lq = q.logpdf(xx)
        kl_pq = np.sum(dp * (lp - lq)) * area
        kl_qp = np.sum(np.where(dq > 0, dq * (lq - lp), 0.0)) * area
        est = r[direction]
        assert est["kl_p_q"]["value"] == pytest.approx(kl_pq, abs=1e-6 + 3 * est["kl_p_q"]["stderr"])
        assert est["kl_q_p"]["value"] == pytest.approx(kl_qp, abs=1e-6 + 3 * est["kl_q_p"]["stderr"])
    assert len(r["reverse"]["optima"]) >= 2 and r["reverse"]["optima"][0]["global"]
    assert np.shape(r["grid"]["p"]) == (81, 81)


# ---------------------------------------------------------------- compile once
@pytest.mark.parametrize("family", ["normal", "mixture2"])
def test_a_drag_compiles_nothing(results, family, no_persistent_cache):
    state = _state.preset("bimodal") | {"q": family}
    _engine.solve(state)
    dragged = _state.normalise(state | {"p": [dict(c, loc=c["loc"] + 0.37, scale=c["scale"] * 1.2) for c in state["p"]]
                                        + [{"kind": "laplace", "loc": 1.0, "scale": 0.5, "weight": 0.2}]})
    with count_compiles() as c:
        r = _engine.solve(dragged)
    assert c.count == 0, c.count
    assert r["reverse"]["kl_q_p"]["value"] >= 0
    out = _engine.time_solve(dragged, repeats=2)
    assert out["repeats"] == 2 and out["warm_median_ms"] > 0
