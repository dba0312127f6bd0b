"""Reverse fits: argmin_θ KL(q_θ‖p) = argmax_θ ELBO(θ) = E_q[log p̃(x)] + H(q_θ).

Methods (``method=``):
- ``"auto"`` (default): for a Gaussian family (ELBO objective), fixed draws as below on
  max(24, 2d + 2) whitened draws up to 100 free parameters, refined by a second solve on
  max(64, 4d + 4) fresh draws when the first took under 1500 gradient evaluations; natural
  gradient above, handed to fixed draws when it has not converged (``_vi_natural``). Other
  families: ``"fixed_draws"`` with 1000 draws. A normal q (``dist.Normal``,
  ``Gaussian(1)``) on a scalar target: ``"quadrature"``. The Gaussian default with one start runs
  as ONE compiled program (``_vi_natural.auto_program``), keyed by the log density's traced
  program (``_targets.TracedLogDensity``), so a new closure of the same kind compiles nothing.
- ``"quadrature"``: Gauss–Hermite quadrature of the ELBO minimised by Newton's method
  (``_vi_quadrature``): deterministic and exact up to the quadrature error, for a normal q on a
  scalar target; the ELBO it reports is the quadrature value.
- ``"natural"``: natural-gradient Newton steps for a Gaussian q (``_vi_natural``).
- ``"fixed_draws"``: the expectation is a sample average over one fixed set of
  standardised base draws ε (x = T_θ(ε), reparameterised), minimised by L-BFGS: deterministic,
  so the gradient-norm test is a real convergence test, and exact for a Gaussian q on a
  Gaussian p (the draws integrate quadratics exactly).
- ``"sgd"``: fresh draws every step, sticking-the-landing gradients, Adam with a step size
  chosen by pilot runs, a stopping rule on the ELBO and iterate averaging (``_vi_sgd``).
- ``"adam"``: plain Adam with a fixed learning rate and step count (a baseline).

``objective="renyi"`` with ``alpha`` in [0, 1) minimises the Rényi bound −L_α instead (mass
covering; α = 0 is the importance-weighted bound). ``num_starts > 1`` runs several fits from
different starts in one vmapped program; ``combine`` keeps the best or mixes them
(``_multistart``). ``start="pathfinder"`` starts from the best Gaussian along an L-BFGS path on
−log p̃ (``_pathfinder``). Every result carries PSIS diagnostics of p̃/q on fresh draws
(``_diagnostics``): ELBO ± stderr, k̂ with its verdict, the IS effective sample size, log Z.

Start: a key-dependent random point, moved uphill on log p̃ by a short descent, with spread
1/√(−∂²log p̃/∂x_i²) there (1 where that is not positive). A random start avoids the saddle at
the symmetry point of a symmetric multimodal p, where the ELBO gradient is zero.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions.distribution import validation_enabled

from .._errors import FitError
from ..families import AbstractFamily
from ..measure import Estimate
from . import _compiled as C
from ._diagnostics import importance_diagnostics, importance_diagnostics_host, pareto_k_verdict
from ._loop import _adam, _capacity, default_gtol, lbfgs_core
from ._multistart import COMBINE, combined_q, group_modes, mixture_weights
from ._objectives import log_density_values
from ._result import FitResult
from ._reverse_result import honest_outcome, message as _message, sampler as _sampler, scales_of
from ._reverse_start import host_normals, not_finite_at_start, start_evals, start_point, starts
from ._targets import Target, is_model, push_back, resolve_target, trace_log_density
from ._vi_objectives import vi_loss, vi_loss_fresh
from ._vi_sgd import DEFAULT_RATES, _sgd
from .._compile import call_small
from . import _vi_natural as NG

__all__ = ["fit_reverse", "REVERSE_OPTIONS", "METHODS"]

METHODS = ("auto", "natural", "fixed_draws", "sgd", "adam", "quadrature")
OBJECTIVES = ("kl", "renyi")
STARTS = ("mode", "pathfinder")
REVERSE_OPTIONS = (
    "method", "num_draws", "max_iter", "gtol", "num_steps", "learning_rate", "init",
    "init_scale", "init_steps", "num_elbo_draws", "dim", "objective", "alpha", "num_starts",
    "combine", "start", "window", "max_steps", "model_args", "model_kwargs", "tol", "example",
)


def _check_log_density(tgt: Target) -> tuple:
    """Shape check by tracing (no compile): log_density must map one x to a scalar. Returns the
    traced log density and its constants (:func:`trace_log_density`), ``(None, [])`` when there is
    no log density or it cannot be traced to one program (then it is used as it is)."""
    if tgt.log_density is None:
        # A distribution target is traced too: its log_prob's jaxpr and constants are canonical,
        # while passing the distribution itself as a pytree is not (numpyro orders some leaves by
        # a set of names, so a program's argument order, hence its persistent-cache key, varies
        # between processes).
        try:
            with validation_enabled(False):
                traced, consts, out = trace_log_density(tgt.dist.log_prob, tgt.event_shape)
        except Exception:  # noqa: BLE001 - used as it is
            return None, []
        return (traced, consts) if getattr(out, "shape", None) == () else (None, [])
    try:
        traced, consts, out = trace_log_density(tgt.log_density, tgt.event_shape)
    except Exception as err:
        raise FitError(f"log_density raised {type(err).__name__} at x of shape {tgt.event_shape}: {err}") from err
    if getattr(out, "shape", None) != ():
        raise FitError(
            f"Expected log_density to return a scalar for x of shape {tgt.event_shape}; got shape "
            f"{getattr(out, 'shape', type(out).__name__)}. Check that it sums over coordinates "
            "(e.g. jnp.sum(...)) and takes one point, not a batch."
        )
    return traced, consts


def _has_rsample(family, event_shape: tuple) -> bool:
    """Whether q_θ has reparameterised draws, read while tracing (rebuilding a numpyro distribution
    from ``eval_shape``'s output would run eager ops, each a compile)."""
    flag: list = []

    def probe(center):  # a traced argument: numpyro's argument validation stays off the device
        flag.append(bool(getattr(family.distribution(family.init_at(center, 1.0)), "has_rsample", False)))
        return jnp.zeros(())

    with validation_enabled(False):  # its checks build index masks eagerly, each a compile
        jax.eval_shape(probe, jax.ShapeDtypeStruct(tuple(event_shape), jnp.result_type(float)))
    return flag[0]


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _diagnose(family: AbstractFamily, log_density: Callable | None, num: int, params: Any, key: jax.Array, p: Any):
    """PSIS diagnostics of q_θ against p̃ on ``num`` fresh draws (vmapped over starts by callers)."""
    q = family.distribution(params)
    x = q.sample(key, (num,))
    return importance_diagnostics(log_density_values(log_density, p, x), q.log_prob(x))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _diagnose_q(log_density: Callable | None, num: int, q: Any, key: jax.Array, p: Any):
    x = q.sample(key, (num,))
    return importance_diagnostics(log_density_values(log_density, p, x), q.log_prob(x))


def _solve(method, statics, params, tgt: Target, key, options, num_starts):
    """Run the solver vmapped over starts. Returns host arrays by start and the parameters."""
    p = tgt.dist
    family, num = statics[0], statics[2]
    if method == "natural":
        max_iter = int(options.get("max_iter") or 100)
        tol = float(options.get("tol", 0.01))
        mu0, chol0 = jax.vmap(lambda prm: NG.to_natural(family, prm))(params)
        keys = jax.random.split(key, num_starts)
        out = jax.vmap(lambda m, c, k: NG.natural_core(family.covariance, tgt.log_density, num, m, c, k, p, tol,
                                                       max_iter, capacity=_capacity(max_iter)))(mu0, chol0, keys)
        mu, chol, history, it, conv, evals, skipped, noise, averaged, failed = out
        params = jax.vmap(lambda m, c: NG.from_natural(family, m, c))(mu, chol)
        history = np.asarray(history)
        it = np.asarray(it)
        value = np.array([-h[i] for h, i in zip(history, it)])
        return params, dict(value=value, history=-history, iterations=it, converged=np.asarray(conv),
                            evals=np.asarray(evals), skipped=np.asarray(skipped), failed=np.asarray(failed),
                            noise=np.asarray(noise), averaged=np.asarray(averaged), max_iter=max_iter, tol=tol)
    if method == "fixed_draws":
        noise = C.base_noise(family, key, num, True)
        max_iter = int(options.get("max_iter") or 500)
        gtol = default_gtol() if options.get("gtol") is None else float(options["gtol"])
        out = jax.vmap(lambda prm: lbfgs_core(vi_loss, statics, prm, (noise, p), gtol, max_iter,
                                              capacity=_capacity(max_iter)))(params)
        params, value, history, it, grad_norm, conv, stalled, evals = out
        start_values = np.asarray(history[:, 0])
        if not np.all(np.isfinite(start_values)):
            raise FitError(
                f"The negative ELBO is {float(start_values[~np.isfinite(start_values)][0])} at the starting q: "
                "log_density is NaN or inf at some draws from it. Check log_density on all of R^d, start "
                "elsewhere with init={...}, or use method='sgd', which skips such draws' steps."
            )
        return params, dict(value=np.asarray(value), history=np.asarray(history), iterations=np.asarray(it),
                            grad_norm=np.asarray(grad_norm), converged=np.asarray(conv), stalled=np.asarray(stalled),
                            evals=np.asarray(evals) * num, skipped=np.zeros(num_starts, int),
                            failed=np.zeros(num_starts, bool), max_iter=max_iter)
    keys = jax.random.split(key, num_starts)
    if method == "adam":
        steps = int(options.get("num_steps", 2000))
        rate = float(options.get("learning_rate", 0.02))
        params, history = jax.vmap(lambda prm, k: _adam(vi_loss_fresh, statics, prm, (p,), k, rate,
                                                        num_steps=steps))(params, keys)
        history = np.asarray(history)
        tenth = max(steps // 10, 2)
        last, before = history[:, -tenth:], history[:, -2 * tenth:-tenth]
        spread = np.sqrt(last.var(axis=1, ddof=1) / tenth + before.var(axis=1, ddof=1) / tenth)
        conv = np.isfinite(last).all(axis=1) & (np.abs(last.mean(axis=1) - before.mean(axis=1)) <= 3 * spread + 1e-12)
        return params, dict(value=last.mean(axis=1), history=history, iterations=np.full(num_starts, steps),
                            converged=conv, evals=np.full(num_starts, steps * num), skipped=np.zeros(num_starts, int),
                            failed=~np.isfinite(last).all(axis=1))
    rate = options.get("learning_rate")
    rates = jnp.asarray(DEFAULT_RATES if rate is None else (float(rate),), dtype=float)
    window, pilot = int(options.get("window", 50)), 40
    max_windows = max(3, -(-int(options.get("max_steps", 5000)) // window))
    out = jax.vmap(lambda prm, k: _sgd(vi_loss_fresh, statics, prm, (p,), k, rates, window=window,
                                       max_windows=max_windows, pilot=pilot, num_stages=3))(params, keys)
    params, means, windows, skipped, conv, failed, chosen = out
    steps = np.asarray(windows) * window + pilot * len(rates)
    means = np.asarray(means)
    value = np.array([m[w - 1] if w else np.nan for m, w in zip(means, np.asarray(windows))])
    return params, dict(value=value, history=means, iterations=steps, converged=np.asarray(conv),
                        evals=steps * num, skipped=np.asarray(skipped), failed=np.asarray(failed),
                        rate=np.asarray(chosen), windows=np.asarray(windows), window=window)


def _start_scales(family, params, num_starts: int):
    """q's per-coordinate scales at each start (host), or None for a family without scales."""
    try:
        values = jax.device_get(jax.vmap(family.constrained)(params))
    except Exception:  # noqa: BLE001 - a family whose parameters do not vmap: no runaway test
        return None
    scales = scales_of(values)
    return None if scales is None else scales.reshape(num_starts, -1)


def _then_fixed_draws(first: dict, before: str, family, tgt: Target, alpha: float, num: int, params, key,
                      options: dict, num_starts: int):
    """A fixed-draw L-BFGS stage on ``num`` draws from ``params`` after a first stage: its evaluations
    added to the first's, ``before`` (what the first did) to lead the message."""
    params, s = _solve("fixed_draws", (family, tgt.log_density, num, alpha, False), params, tgt, key, options,
                       num_starts)
    s["evals"] = s["evals"] + first["evals"]
    s["before"] = before
    return params, s


def _one_program(family, tgt: Target, traced, consts, key, options: dict, num: int):
    """``method="auto"`` for a small Gaussian family as one compiled program (``_vi_natural.auto_program``):
    host results shaped as :func:`_solve`'s for one start, the diagnostics, q and its parameters."""
    max_iter = int(options.get("max_iter") or 500)
    gtol = default_gtol() if options.get("gtol") is None else float(options["gtol"])
    refine = NG.refine_num_draws(family)
    num_elbo = int(options.get("num_elbo_draws", 4000))
    normals = host_normals(key, NG.normals_needed(family, num, refine, num_elbo))
    with validation_enabled(False):  # tracing: numpyro's checks would run eager ops (compiles)
        target = None if traced is not None else tgt.dist
        out = call_small(NG.auto_program, consts, target, normals, float(options.get("init_scale", 1.0)), gtol,
                         max_iter, family=family, traced=traced, num=num, refine=refine, num_elbo=num_elbo,
                         steps=int(options.get("init_steps", 50)), capacity=_capacity(max_iter))
    host = jax.device_get({k: out[k] for k in ("x0", "log_p0", "stages", "log_ratio", "params", "start_scales", "unused")})
    if not np.isfinite(host["log_p0"]):
        raise FitError(not_finite_at_start(host["log_p0"], host["x0"]))
    value, history, it, grad_norm, conv, stalled, evals, ran = host["stages"]
    if not np.isfinite(history[0, 0]):
        raise FitError(
            f"The negative ELBO is {float(history[0, 0])} at the starting q, even with its spread shrunk to a "
            "hundredth of the Laplace approximation's: log_density is NaN or inf at draws next to its mode. Check "
            "log_density on all of R^d (constrained parameters transformed, e.g. pass a numpyro model), start "
            "elsewhere with init={'loc': ...}, or use method='sgd', which skips such draws' steps."
        )
    i = 1 if ran[1] else 0
    conv = conv.copy()
    conv[1] = np.isfinite(value[1]) & (grad_norm[1] <= gtol * max(1.0, abs(value[1])))  # it polished further
    stalled = stalled & ~conv
    one = lambda a: np.asarray(a[i])[None]  # noqa: E731
    s = dict(value=one(value), history=one(history), iterations=one(it), grad_norm=one(grad_norm),
             converged=one(conv), stalled=one(stalled), evals=np.array([evals[0] * num + (evals[1] * refine if i else 0)]),
             skipped=np.zeros(1, int), failed=np.zeros(1, bool), max_iter=max_iter,
             start_scales=np.asarray(host["start_scales"])[None], unused=np.asarray(host["unused"])[None])
    if i:
        s["before"] = (f"L-BFGS on {num} whitened fixed draws converged in {int(it[0])} iterations; "
                       f"refined on {refine} fresh draws: ")
    params = jax.tree.map(lambda a: np.asarray(a)[None], host["params"])
    diag = jax.tree.map(lambda a: np.asarray(a)[None], importance_diagnostics_host(*host["log_ratio"]))
    values = {k: out["values"][k] for k in jax.eval_shape(family.constrained, out["params"])}
    return params, s, diag, out["q"], values, refine if i else num


def _quadrature(family, tgt: Target, traced, consts, key, options: dict):
    """``method="quadrature"`` (``_vi_quadrature``) as one compiled program: host results shaped as
    :func:`_solve`'s for one start, the diagnostics, q, its parameters and the ELBO's error."""
    from ._vi_quadrature import quadrature_program, rules

    gtol = default_gtol() if options.get("gtol") is None else float(options["gtol"])
    rule, half = rules()
    num_elbo = int(options.get("num_elbo_draws", 4000))
    with validation_enabled(False):
        target = None if traced is not None else tgt.dist
        out = quadrature_program(consts, target, host_normals(key, 1 + num_elbo), float(options.get("init_scale", 1.0)),
                                 gtol, rule, half,
                                 family=family, traced=traced, steps=int(options.get("init_steps", 50)),
                                 num_elbo=num_elbo)
    host = jax.device_get({k: v for k, v in out.items() if k not in ("q", "values")})
    if not np.isfinite(host["log_p0"]):
        raise FitError(
            f"log_density is {float(host['log_p0'])} at the starting point x = {np.asarray(host['x0']).round(4).tolist()}. "
            "Check that it is finite on all of R^d: no log of a negative number, parameters with "
            "constraints transformed to unconstrained space, no division by zero."
        )
    it = int(host["iterations"])
    s = dict(value=np.array([host["value"]]), history=np.asarray(host["history"])[None], iterations=np.array([it]),
             grad_norm=np.array([host["grad_norm"]]), converged=np.array([bool(host["converged"])]),
             evals=np.array([(it + 1) * rule[0].shape[0] * 3]), skipped=np.zeros(1, int), failed=np.zeros(1, bool),
             num_nodes=rule[0].shape[0])
    diag = jax.tree.map(lambda a: np.asarray(a)[None], importance_diagnostics_host(*host["log_ratio"]))
    error = abs(float(host["value"]) - float(host["value_half"]))
    diag = diag._replace(elbo=-s["value"], elbo_stderr=np.array([error]))
    params = jax.tree.map(lambda a: np.asarray(a)[None], host["params"])
    values = {k: out["values"][k] for k in jax.eval_shape(family.constrained, out["params"])}
    return params, s, diag, out["q"], values, rule[0].shape[0]


def fit_reverse(family: AbstractFamily, target: Any, *, key: jax.Array | None, options: dict) -> FitResult:
    """argmin_θ KL(q_θ‖p) for an unnormalised log density p̃, a numpyro distribution or model."""
    if key is None:
        raise ValueError("Reverse fits draw from q: pass key= (an int seed or a jax.random key).")
    method = options.get("method", "auto")
    if method not in METHODS:
        raise ValueError(f"Expected method to be one of {METHODS}; got {method!r}.")
    objective_kl = options.get("objective", "kl") == "kl"
    auto = method == "auto"
    quadrature = method == "quadrature"
    if auto:
        method = NG.auto_method(family) if NG.supports(family) and objective_kl else "fixed_draws"
    elif method == "natural" and not (NG.supports(family) and objective_kl):
        raise ValueError("method='natural' fits a kb.families.Gaussian with objective='kl'; "
                         f"got {family.name} with objective={options.get('objective', 'kl')!r}. Use 'fixed_draws' or 'sgd'.")
    objective = options.get("objective", "kl")
    if objective not in OBJECTIVES:
        raise ValueError(f"Expected objective to be one of {OBJECTIVES}; got {objective!r}.")
    alpha = float(options.get("alpha", 0.5 if objective == "renyi" else 1.0))
    if objective == "renyi" and not 0.0 <= alpha < 1.0:
        raise ValueError(f"Expected alpha in [0, 1) for objective='renyi' (alpha → 1 is the ELBO); got {alpha}.")
    combine = options.get("combine", "best")
    if combine not in COMBINE:
        raise ValueError(f"Expected combine to be one of {COMBINE}; got {combine!r}.")
    if options.get("start", "mode") not in STARTS:
        raise ValueError(f"Expected start to be one of {STARTS}; got {options.get('start')!r}.")
    num_starts = int(options.get("num_starts", 1))
    if num_starts < 1:
        raise ValueError(f"Expected num_starts to be a positive integer; got {options.get('num_starts')!r}.")
    keys = functools.cache(lambda: jax.random.split(key, 4))  # split when needed (an eager op compiles)
    tgt = resolve_target(target, family, keys()[0] if is_model(target, options) else None, options)
    family = family.with_event_shape(tgt.event_shape)
    traced, consts = _check_log_density(tgt)
    if not hasattr(family, "weighted_draws") and not _has_rsample(family, tgt.event_shape):
        raise TypeError(f"Reverse fits need reparameterised draws; {family.name} has no rsample.")
    from ._vi_quadrature import supports_quadrature

    can_quad = objective_kl and num_starts == 1 and not options.get("init") and options.get("start", "mode") == "mode" \
        and (tgt.log_density is None or traced is not None) and supports_quadrature(family, tgt.event_shape)
    if quadrature and not can_quad:
        raise ValueError("method='quadrature' fits a normal q (dist.Normal, kb.families.Gaussian(1)) to a scalar "
                         "target with objective='kl', one start and no init=; "
                         f"got {family.name} on a target of shape {tgt.event_shape}. Use method='auto'.")
    if auto and can_quad and options.get("num_draws") is None:
        quadrature = True
    if quadrature:
        method = "quadrature"
    defaults = {"fixed_draws": 1000, "sgd": 16, "adam": 32, "quadrature": 0}
    if auto and NG.supports(family) and objective_kl:
        defaults["fixed_draws"] = NG.polish_num_draws(family)
    num = int(options.get("num_draws") or (NG.default_num_draws(family) if method == "natural" else defaults[method]))
    if method == "natural" and (num < 4 or num % 2):
        raise ValueError(f"Expected num_draws to be an even integer ≥ 4 for method='natural' (antithetic pairs); got {num}.")
    evals_at_start = num_starts * start_evals(family, options)
    one_program = (auto and method == "fixed_draws" and NG.supports(family) and objective_kl and num_starts == 1
                   and not options.get("init") and options.get("start", "mode") == "mode"
                   and (tgt.log_density is None or traced is not None))
    start_scales = None  # q's scales at the start, by start: the reference of the runaway test
    if quadrature:
        params, s, diag, q_unit, values, num = _quadrature(family, tgt, traced, consts, key, options)
        one_program = True
    elif one_program:
        params, s, diag, q_unit, values, num = _one_program(family, tgt, traced, consts, key, options, num)
        start_scales = s.pop("start_scales")
    else:
        _, k_start, k_solve, k_diag = keys()
        statics = (family, tgt.log_density, num, alpha, method != "fixed_draws")
        params = starts(family, tgt, k_start, num_starts, options)
        start_scales = _start_scales(family, params, num_starts)
        params, s = _solve(method, statics, params, tgt, k_solve, options, num_starts)
    if (not one_program and auto and method == "fixed_draws" and NG.supports(family) and objective_kl
            and np.all(s["converged"])
            and np.max(s["evals"]) <= NG.REFINE_BELOW):
        # The first solve was cheap: a second one on more fresh draws, from its optimum, cuts the
        # Monte Carlo error of the few-draw fit (about halves it) for a few hundred evaluations more.
        refine = NG.refine_num_draws(family)
        before = (f"L-BFGS on {num} whitened fixed draws converged in {int(s['iterations'][0])} iterations; "
                  f"refined on {refine} fresh draws: ")
        params, s = _then_fixed_draws(s, before, family, tgt, alpha, refine, params, jax.random.fold_in(k_solve, 2),
                                      options, num_starts)
        num = refine
    if auto and method == "natural" and not np.all(s["converged"] | s["failed"]):
        # Natural-gradient steps crawl along curved valleys (funnels): finish by L-BFGS on fixed draws.
        polish = NG.polish_num_draws(family)
        before = (f"{int(s['iterations'][0])} natural-gradient iterations of {num} draws did not converge "
                  f"(Monte Carlo error {float(s['noise'][0]):.2g} sd); then ")
        params, s = _then_fixed_draws(s, before, family, tgt, alpha, polish, params, jax.random.fold_in(k_solve, 1),
                                      {**options, "max_iter": None}, num_starts)
        method, num = "natural+fixed_draws", polish
    if np.all(s["failed"]):
        raise FitError(
            f"No progress possible: every step of a window had a non-finite objective or gradient "
            f"({int(s['skipped'].sum())} steps skipped). log_density is NaN or inf where q puts mass. Check it on "
            "all of R^d (constrained parameters must be transformed, e.g. pass a numpyro model or distribution), "
            "start elsewhere with init={...}, or try a smaller learning_rate."
        )
    num_elbo = int(options.get("num_elbo_draws", 4000))
    if not one_program:
        diag = jax.vmap(lambda prm: _diagnose(family, tgt.log_density, num_elbo, prm, k_diag, tgt.dist))(params)
    elbos = np.where(s["failed"], -np.inf, np.asarray(diag.elbo))
    best = int(np.argmax(np.where(np.isfinite(elbos), elbos, -np.inf)))
    pick = lambda a: a[best]  # noqa: E731
    if not one_program:
        q_unit, values = C.finish(family, jax.tree.map(pick, params))
    d = jax.tree.map(lambda a: float(a[best]), diag)
    info: dict = {"objective": objective, "alpha": alpha, "num_draws": num}
    family_name = family.name
    if num_starts > 1:
        moments = jax.vmap(lambda prm: (family.distribution(prm).mean, family.distribution(prm).variance))(params)
        means, sds = np.asarray(moments[0]), np.sqrt(np.asarray(moments[1]))
        means, sds = means.reshape(num_starts, -1), sds.reshape(num_starts, -1)
        reps = group_modes(means, sds, elbos)
        info["multistart"] = {"num_starts": num_starts, "combine": combine, "elbos": elbos.tolist(),
                              "num_modes": len(reps), "modes": reps}
        if combine == "mixture" and len(reps) > 1:
            weights = mixture_weights(elbos[reps])
            q_unit = combined_q(family, params, reps, weights)
            stacked = C.constrained(family, jax.tree.map(lambda a: a[np.asarray(reps)], params))
            values = {"weights": weights, **stacked}
            d = jax.tree.map(float, _diagnose_q(tgt.log_density, num_elbo, q_unit, k_diag, tgt.dist))
            family_name = f"mixture of {len(reps)} {family.name}"
    message = s.get("before", "") + _message(method.split("+")[-1], s, best, num)
    if num_starts > 1:
        modes = info["multistart"]["num_modes"]
        message += (f" {num_starts} starts found {modes} mode{'s' if modes > 1 else ''}; "
                    + (f"combined into a mixture weighted by exp(ELBO)." if family_name.startswith("mixture")
                       else f"kept the best (start {best})."))
    skipped = int(s["skipped"][best])
    if skipped:
        message += f" {skipped} steps skipped (non-finite objective or gradient)."
    if d.num_nonfinite:
        message += f" log p̃ was not finite at {int(d.num_nonfinite)} of {num_elbo} diagnostic draws."
    verdict = pareto_k_verdict(d.pareto_k, d.elbo)
    if verdict == "unreliable":
        message += (f" Pareto k̂ = {d.pareto_k:.2f}: q misses mass of p (unreliable); try a richer family "
                    "(covariance='full', LowRankGaussian, GaussianMixtureQ), objective='renyi', or num_starts > 1.")
    converged = bool(s["converged"][best])
    why_not = honest_outcome(values, d.elbo, int(d.num_nonfinite), num_elbo,
                             None if start_scales is None else np.asarray(start_scales)[best],
                             unused=None if converged or "unused" not in s else s["unused"][best])
    if why_not is not None:  # a non-finite or runaway q is never converged, whatever the solver said
        converged, verdict = False, "unreliable"
        before = s.get("before", "").rstrip(": ")
        message = why_not + (f" (Before: {before}.)" if before else "") + (
            f" {skipped} steps skipped (non-finite objective or gradient)." if skipped else "")
    if method == "sgd" and converged and num_starts == 1:
        # The stopping rule sees window means only; check the returned q on the fresh diagnostic draws
        # against the best window (both estimate −ELBO): a q far worse than a point the run passed
        # through is no optimum, whatever the windows said (a step size too large for the family).
        seen = np.asarray(s["history"][best][: int(s["windows"][best])], dtype=float)
        best_seen = float(np.nanmin(seen)) if np.isfinite(seen).any() else np.inf
        if -d.elbo > best_seen + 10.0 * d.elbo_stderr + 1e-3 * abs(best_seen):
            converged = False
            message = (f"Not converged: the averaged iterate's ELBO ({d.elbo:.6g} ± {d.elbo_stderr:.2g}) is far below "
                       f"the best window's ({-best_seen:.6g}); the step size was too large for this family. Try a "
                       "smaller learning_rate, method='auto' or 'fixed_draws'." + message[message.find(". ") + 1:])
    return FitResult(
        q=push_back(tgt, q_unit),
        params={k: np.asarray(v) for k, v in values.items()},
        direction="reverse",
        objective=float(s["value"][best]),
        history=np.asarray(s["history"][best][: int(s["iterations"][best]) + 1] if method.split("+")[-1] in ("fixed_draws", "natural", "quadrature")
                           else s["history"][best][: int(s.get("windows", s["iterations"])[best])]),
        converged=converged,
        num_iterations=int(s["iterations"][best]),
        message=message,
        family=family_name,
        method=method,
        elbo=(Estimate(value=d.elbo, stderr=d.elbo_stderr, method="quadrature") if method == "quadrature"
              else Estimate(value=d.elbo, stderr=d.elbo_stderr, method="monte_carlo", num_samples=num_elbo)),
        pareto_k=d.pareto_k,
        pareto_k_verdict=verdict,
        ess=d.ess,
        log_z=Estimate(value=d.log_z, stderr=d.log_z_stderr, method="monte_carlo", num_samples=num_elbo),
        num_skipped=skipped,
        num_grad_evals=int(np.sum(s["evals"])) + evals_at_start,
        info=info,
        sampler=_sampler(family, tgt, q_unit),
    )
