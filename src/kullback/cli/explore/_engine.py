"""The explorer's engine: ``solve(state) -> result`` (JSON-able), fits and measures of kullback's own.

1-D: q in {normal, Student-t, Laplace, 2-component normal mixture} fitted to p by forward KL
(argmin KL(p‖q), mode-covering) and by reverse KL (argmin KL(q‖p), mode-seeking, every local
optimum of a multi-start), with KL(p‖q), KL(q‖p), H(p, q) and H(p) by deterministic quadrature
(:mod:`._quad`, :mod:`._fit1d`). 2-D: p a mixture of Gaussians, q a full-covariance Gaussian
(:mod:`._engine2d`). One compiled program per (mode, q family), p padded to four slots, so new
values never recompile; :func:`warm_up` compiles them (the first now, the others in the background).

Every KL reported is evaluated afresh at the reported parameters and is never below 0; "stderr"
in an estimate is the quadrature's own error estimate (the change from the coarser nested rule,
see :mod:`._quad`), not a standard error; +∞ is ``"value": None`` with ``"infinite": True``.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from typing import Any

import numpy as np

from . import _state
from ._records import estimate

__all__ = ["solve", "warm_up", "time_solve", "REVERSE_STARTS", "FORWARD_STARTS", "BOUNDS"]

REVERSE_STARTS = {"normal": 5, "laplace": 5, "student_t": 5, "mixture2": 7}
FORWARD_STARTS = {"normal": 1, "laplace": 1, "student_t": 2, "mixture2": 3}
GRID_POINTS = 401
SCALE_BOUNDS = (1e-4, 1e4)
DF_MAX = 1e4
LOC_BOUND = 1e4
_DF_MIN_REVERSE = {"normal": 2.5, "laplace": 1.5, "student_t": 0.5}  # by p's heaviest tail: KL(q‖p) = ∞ below 2 / 1
_DF_MIN_FORWARD = 0.2


def _heaviest_tail(comps: list) -> str:
    kinds = {c["kind"] for c in comps}
    return "student_t" if "student_t" in kinds else ("laplace" if "laplace" in kinds else "normal")


def _min_df(comps: list) -> float:
    return min((c["df"] for c in comps if c["kind"] == "student_t"), default=math.inf)


def p_moments(comps: list) -> tuple[float | None, float | None]:
    """p's mean and variance (None where they do not exist: a Student-t with df ≤ 1, resp. ≤ 2)."""
    df = _min_df(comps)
    if df <= 1:
        return None, None
    mean = sum(c["weight"] * c["loc"] for c in comps)
    if df <= 2:
        return mean, None
    var = {"normal": lambda c: c["scale"] ** 2, "laplace": lambda c: 2 * c["scale"] ** 2,
           "student_t": lambda c: c["scale"] ** 2 * c["df"] / (c["df"] - 2)}
    second = sum(c["weight"] * (var[c["kind"]](c) + c["loc"] ** 2) for c in comps)
    return mean, second - mean**2


def _theta(family: str, loc: float, scale: float, df: float = 10.0) -> list:
    if family == "student_t":
        return [loc, math.log(scale), 1.0 / df]
    return [loc, math.log(scale)]


def _bounds(family: str, comps: list) -> dict:
    n = {"normal": 2, "laplace": 2, "student_t": 3, "mixture2": 5}[family]
    ls = [math.log(SCALE_BOUNDS[0]), math.log(SCALE_BOUNDS[1])]
    if family == "mixture2":
        lo, hi = [-15.0, -LOC_BOUND, ls[0], -LOC_BOUND, ls[0]], [15.0, LOC_BOUND, ls[1], LOC_BOUND, ls[1]]
        return {"forward": (np.array(lo), np.array(hi)), "reverse": (np.array(lo), np.array(hi))}
    lo, hi = [-LOC_BOUND, ls[0]], [LOC_BOUND, ls[1]]
    out = {}
    for direction, df_min in (("forward", _DF_MIN_FORWARD), ("reverse", _DF_MIN_REVERSE[_heaviest_tail(comps)])):
        extra_lo, extra_hi = ([1.0 / DF_MAX], [1.0 / df_min]) if n == 3 else ([], [])
        out[direction] = (np.array(lo + extra_lo), np.array(hi + extra_hi))
    return out


def _spread(comps: list) -> tuple[float, float]:
    """A centre and a scale of p that always exist (the moments, else the weighted locs and scales)."""
    mean, var = p_moments(comps)
    if var is not None:
        return mean, math.sqrt(var)
    loc = sum(c["weight"] * c["loc"] for c in comps)
    return loc, math.sqrt(sum(c["weight"] * (c["scale"] ** 2 + (c["loc"] - loc) ** 2) for c in comps))


def _pair_theta(a: dict, b: dict) -> list:
    w = a["weight"] / (a["weight"] + b["weight"])
    return [math.log(w / (1 - w)), a["loc"], math.log(a["scale"]), b["loc"], math.log(b["scale"])]


def _split_theta(comps: list) -> list:
    m, s = _spread(comps)
    return [0.0, m - 0.5 * s, math.log(0.8 * s), m + 0.5 * s, math.log(0.8 * s)]


def reverse_starts(family: str, comps: list) -> tuple[list[str], np.ndarray]:
    """Names and θ of the reverse multi-start: every component of p (every pair, for mixture2) and
    p's moments, padded to the family's fixed count by repeating the first."""
    names, starts = [], []
    if family == "mixture2":
        for (i, a), (j, b) in itertools.combinations(enumerate(comps), 2):
            names.append(f"p[{i}]+p[{j}]")
            starts.append(_pair_theta(a, b))
        names.append("moments split")
        starts.append(_split_theta(comps))
    else:
        for i, c in enumerate(comps):
            names.append(f"p[{i}]")
            starts.append(_theta(family, c["loc"], c["scale"], c["df"] if c["kind"] == "student_t" else 10.0))
        names.append("moments")
        starts.append(_theta(family, *_spread(comps)))
    count = REVERSE_STARTS[family]
    names, starts = names[:count], starts[:count]
    while len(starts) < count:
        names.append(names[0])
        starts.append(starts[0])
    return names, np.array(starts, dtype=float)


def forward_starts(family: str, comps: list) -> np.ndarray:
    m, s = _spread(comps)
    if family == "student_t":
        return np.array([_theta(family, m, s, 30.0), _theta(family, m, s / 1.5, 3.0)])
    if family == "mixture2":
        by_weight = sorted(comps, key=lambda c: -c["weight"])
        by_loc = sorted(comps, key=lambda c: c["loc"])
        pairs = [_split_theta(comps)]
        if len(comps) > 1:
            pairs += [_pair_theta(*by_weight[:2]), _pair_theta(by_loc[0], by_loc[-1])]
        while len(pairs) < FORWARD_STARTS[family]:
            pairs.append(pairs[0])
        return np.array(pairs)
    return np.zeros((1, 2))


def grid_1d(comps: list) -> np.ndarray:
    reach = {"normal": 5.0, "laplace": 7.0, "student_t": 8.0}
    lo = min(c["loc"] - reach[c["kind"]] * c["scale"] for c in comps)
    hi = max(c["loc"] + reach[c["kind"]] * c["scale"] for c in comps)
    return np.linspace(lo, hi, GRID_POINTS)


def _with_source(starts: np.ndarray) -> dict:
    """The starts and, for each, the index of its first identical row (the program runs that one only)."""
    source = np.array([next(j for j in range(i + 1) if np.array_equal(starts[j], starts[i]))
                       for i in range(len(starts))], dtype=np.int32)
    return {"theta": starts, "source": source}


def inputs_1d(state: dict) -> dict:
    """The traced inputs of the 1-D program for a normalised state (NumPy arrays, fixed shapes)."""
    from . import _quad

    comps, family = state["p"], state["q"]
    p = _quad.p_arrays(comps)
    return {
        "p": p,
        "p_points": {name: (p["loc"][:, None] + p["scale"][:, None] * a).ravel()
                     for name, a in (("core", _quad.CORE), ("far", _quad.FAR))},
        "p_scale": np.asarray(max(c["scale"] for c in comps)),
        "reverse_starts": _with_source(reverse_starts(family, comps)[1]),
        "forward_starts": _with_source(forward_starts(family, comps)),
        "bounds": _bounds(family, comps),
        "grid": grid_1d(comps),
    }


def _params(family: str, params: dict, i: int | None = None) -> dict:
    pick = (lambda a: np.asarray(a)) if i is None else (lambda a: np.asarray(a)[i])
    if family != "mixture2":
        return {k: float(pick(v)) for k, v in params.items()}
    w, m, s = (pick(params[k]) for k in ("weights", "locs", "scales"))
    order = np.argsort(m, kind="stable")  # components in the order of their locations
    return {"weights": [float(w[k]) for k in order], "locs": [float(m[k]) for k in order],
            "scales": [float(s[k]) for k in order]}


def _fit_record(family: str, params: dict | None, measures: dict, i: int | None, inf_pq: bool) -> dict:
    def get(name):
        value, err = measures[name]
        return (value, err) if i is None else (np.asarray(value)[i], np.asarray(err)[i])

    if params is None:
        return {"family": family, "params": None, "kl_p_q": estimate(0, 0, infinite=True), "kl_q_p": None,
                "cross_entropy_p_q": estimate(0, 0, infinite=True, kl=False)}
    return {"family": family, "params": _params(family, params, i),
            "kl_p_q": estimate(*get("kl_p_q"), infinite=inf_pq),
            "kl_q_p": estimate(*get("kl_q_p")),
            "cross_entropy_p_q": estimate(*get("cross_entropy_p_q"), infinite=inf_pq, kl=False)}


def _same(a: dict, b: dict, family: str) -> bool:
    if abs(a["kl"] - b["kl"]) > 1e-8 * (1.0 + abs(a["kl"])):
        return False
    va, vb = _flat(a["params"], family), _flat(b["params"], family)
    return bool(np.all(np.abs(va - vb) <= 1e-3 * (1.0 + np.abs(va))))


def _flat(params: dict, family: str) -> np.ndarray:
    if family == "mixture2":
        return np.concatenate([params["weights"], params["locs"], np.log(params["scales"])])
    return np.array([params["loc"], math.log(params["scale"])])


def _solve_1d(state: dict) -> dict:
    from . import _fit1d

    comps, family = state["p"], state["q"]
    names = reverse_starts(family, comps)[0]
    out = _fit1d.program(**inputs_1d(state), family=family)
    import jax

    out = jax.device_get(out)
    df = _min_df(comps)
    inf_pq = (family in ("normal", "mixture2") and df <= 2) or (family == "laplace" and df <= 1)
    mean, var = p_moments(comps)
    fwd, rev = out["forward"], out["reverse"]

    # forward
    if inf_pq:
        need = "variance" if family != "laplace" else "mean absolute deviation"
        forward = _fit_record(family, None, fwd["measures"], None, True)
        forward.update(method={"laplace": "median_mad"}.get(family, "moment_matching" if family == "normal" else "em_newton"),
                       status="no_optimum",
                       message=f"p has a Student-t component with df = {df:g}: its {need} is infinite, so "
                               f"KL(p‖q) = +∞ for every {family} q; no forward fit exists")
    else:
        forward = _fit_record(family, fwd["params"], fwd["measures"], None, False)
        if family == "normal":
            forward.update(method="moment_matching", status="exact",
                           message="the normal with p's mean and variance (exact)")
        elif family == "laplace":
            forward.update(method="median_mad", status="exact",
                           message="location p's median, scale p's mean absolute deviation about it (exact)")
        else:
            method = "quadrature_newton" if family == "student_t" else "quadrature_em_newton"
            at_cap = family == "student_t" and fwd["params"]["df"] >= 0.999 * DF_MAX
            status = "boundary" if at_cap else ("converged" if fwd["converged"] else "not_converged")
            message = {"boundary": f"df reached its bound {DF_MAX:g}: p's tails are lighter than any Student-t's, "
                                   "the best one is the normal limit (df → ∞)",
                       "converged": f"maximum of E_p[log q] by quadrature ({int(fwd['iterations'])} Newton steps)",
                       "not_converged": "Newton stopped before the gradient vanished"}[status]
            forward.update(method=method, status=status, message=message)

    # reverse: distinct optima, global first
    kl = np.asarray(rev["measures"]["kl_q_p"][0])
    found = []
    for i in np.argsort(kl, kind="stable"):
        if not np.isfinite(kl[i]):
            continue
        cand = {"i": int(i), "kl": float(kl[i]), "params": _params(family, rev["params"], int(i))}
        if not any(_same(cand, f, family) for f in found):
            found.append(cand)
    optima = []
    for k, f in enumerate(found):
        i = f["i"]
        optima.append({"params": f["params"], "kl_q_p": estimate(*(np.asarray(a)[i] for a in rev["measures"]["kl_q_p"])),
                       "global": k == 0, "start": names[i], "converged": bool(rev["converged"][i]),
                       "iterations": int(rev["iterations"][i])})
    g = found[0]["i"]
    reverse = _fit_record(family, rev["params"], rev["measures"], g, inf_pq)
    at_cap = family == "student_t" and reverse["params"]["df"] >= 0.999 * DF_MAX
    status = "boundary" if at_cap else ("converged" if rev["converged"][g] else "not_converged")
    n_starts = len(dict.fromkeys(names))
    reverse.update(method="quadrature_newton", status=status, optima=optima,
                   message=(f"{len(optima)} distinct local optim{'um' if len(optima) == 1 else 'a'} from {n_starts} "
                            f"starts; the global one is first"
                            + (f"; df reached its bound {DF_MAX:g} (the normal limit)" if at_cap else "")))
    h_value, h_err = (np.asarray(a) for a in fwd["measures"]["entropy_p"])
    if inf_pq:  # the forward measures were at no fit: take H(p) from the reverse fit's nodes
        h_value, h_err = (np.asarray(a)[g] for a in rev["measures"]["entropy_p"])
    return {
        "mode": "1d", "q": family,
        "p": {"components": comps, "mean": mean, "variance": var, "variance_infinite": var is None and mean is not None,
              "entropy": estimate(h_value, h_err, kl=False)},
        "grid": {"x": inputs_1d_grid(comps), "p": _floats(out["grid"]["p"]),
                 "forward": None if inf_pq else _floats(out["grid"]["forward"]), "reverse": _floats(out["grid"]["reverse"])},
        "forward": forward, "reverse": reverse,
    }


def inputs_1d_grid(comps: list) -> list:
    return _floats(grid_1d(comps))


def _floats(a: Any) -> Any:
    return np.asarray(a, dtype=float).tolist()


def _program(state: dict) -> str:
    """Which compiled program a normalised state runs: its q family, or "2d"."""
    return "2d" if state["mode"] == "2d" else state["q"]


def _solve_now(state: dict) -> dict:
    if state["mode"] == "2d":
        from ._engine2d import solve_2d

        return solve_2d(state)
    return _solve_1d(state)


_WARM_STATES = {"2d": lambda: _state.preset("2d_bimodal")} | {
    family: (lambda family=family: _state.default_state() | {"q": family}) for family in _state.Q_FAMILIES}
_warmer = None  # the background warm-up of warm_up(), if one runs


def solve(state: dict) -> dict:
    """The explorer's result for a state (raw or normalised; see the contract): JSON-able.

    ``timing_ms`` includes any wait for the background warm-up compiling this state's program.
    """
    start = time.perf_counter()
    state = _state.normalise(state)
    if _warmer is not None:
        _warmer.claim(_program(state))
    result = _solve_now(state)
    result["timing_ms"] = 1e3 * (time.perf_counter() - start)
    return result


def warm_up(families: tuple[str, ...] | None = None, *, two_d: bool = True) -> dict:
    """Compile the programs (one per 1-D q family, and 2-D) by solving a state of each; ms each.

    ``families`` given: those (and 2-D if ``two_d``) now, one after another. ``None`` (the
    command's start): the default state's family now, and the other programs after this returns,
    one at a time in a background thread (:class:`._warm.Warmer`), so the page answers its first
    request meanwhile; a request for a program still compiling there waits for it, one the
    thread has not reached is compiled by the request itself.
    """
    global _warmer

    now = (_state.default_state()["q"],) if families is None else tuple(families)
    now_2d = ("2d",) if two_d and families is not None else ()
    took = {key: solve(_WARM_STATES[key]())["timing_ms"] for key in now + now_2d}
    if families is None and (_warmer is None or _warmer.wait(0)):
        from ._warm import Warmer

        later = [key for key in _state.Q_FAMILIES + ("2d",) * two_d if key not in now]
        _warmer = Warmer(lambda key: _solve_now(_state.normalise(_WARM_STATES[key]())), later).start()
    return took


def time_solve(state: dict, repeats: int = 20) -> dict:
    """Solve ``state`` once (compiling if needed), then ``repeats`` times; prints and returns the ms."""
    first = solve(state)["timing_ms"]
    times = [solve(state)["timing_ms"] for _ in range(repeats)]
    out = {"first_ms": first, "warm_median_ms": statistics.median(times), "warm_min_ms": min(times),
           "repeats": repeats}
    label = state.get("mode", "1d") + ("" if state.get("mode") == "2d" else f" q={state.get('q', 'normal')}")
    print(f"explore solve {label}: first {first:.1f} ms, warm median {out['warm_median_ms']:.2f} ms "
          f"(min {out['warm_min_ms']:.2f}) over {repeats}")
    return out
