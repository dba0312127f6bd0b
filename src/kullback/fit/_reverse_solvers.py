"""The solvers of a reverse fit, each returning the same record (:class:`Solve`).

``solve(plan, params, key)`` runs the plan's method vmapped over starts (natural gradient,
fixed-draw L-BFGS, Adam or sgd); ``one_program(plan)`` and ``quadrature(plan)`` run the start,
the solve and the diagnostics of a one-start Gaussian fit as one compiled program. A record holds
one entry per start; fields a method does not produce stay None.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from numpyro.distributions.distribution import validation_enabled

from .._compile import call_small
from .._errors import FitError
from . import _compiled as C
from . import _vi_auto as AUTO
from . import _vi_natural as NG
from ._diagnostics import importance_diagnostics_host
from ._loop import _adam, _capacity, default_gtol, lbfgs_core
from ._progress import report
from ._reverse_start import host_normals, not_finite_at_start
from ._vi_objectives import vi_loss, vi_loss_fresh
from ._vi_sgd import DEFAULT_RATES, _sgd

__all__ = ["Solve", "solve", "then_fixed_draws", "one_program", "quadrature"]


@dataclasses.dataclass
class Solve:
    """What a solver did, one entry per start (host arrays).

    ``method`` is the solver whose record this is (its message reads these fields); ``num_draws``
    the draws per objective evaluation; ``before`` what an earlier stage did (leads the message).
    ``diagnostics``, ``q`` and ``values`` are set by the one-program solvers, which compute them."""

    method: str
    params: Any
    value: np.ndarray
    history: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    evals: np.ndarray
    skipped: np.ndarray
    failed: np.ndarray
    num_draws: int
    grad_norm: np.ndarray | None = None
    stalled: np.ndarray | None = None
    noise: np.ndarray | None = None
    averaged: np.ndarray | None = None
    rate: np.ndarray | None = None
    windows: np.ndarray | None = None
    window: int | None = None
    max_iter: int | None = None
    tol: float | None = None
    num_nodes: int | None = None
    before: str = ""
    start_scales: np.ndarray | None = None
    unused: np.ndarray | None = None
    diagnostics: Any = None
    q: Any = None
    values: dict | None = None

    @property
    def steps_run(self) -> np.ndarray:
        """Entries of ``history`` that hold values, by start (index 0: the start, for the
        iterative solvers; one per window for sgd, one per step for Adam)."""
        if self.method == "sgd":
            return self.windows
        if self.method == "adam":
            return self.iterations
        return self.iterations + 1


def _gtol(options) -> float:
    return default_gtol() if options.gtol is None else float(options.gtol)


def _natural(plan, params, key) -> Solve:
    family, tgt, options = plan.family, plan.target, plan.options
    max_iter = options.max_iter or 100
    mu0, chol0 = jax.vmap(lambda prm: NG.to_natural(family, prm))(params)
    keys = jax.random.split(key, plan.num_starts)
    out = jax.vmap(lambda m, c, k: NG.natural_core(family.covariance, tgt.log_density, plan.num, m, c, k, tgt.dist,
                                                   options.tol, max_iter, capacity=_capacity(max_iter),
                                                   report=plan.report))(mu0, chol0, keys)
    mu, chol, history, it, conv, evals, skipped, noise, averaged, failed = out
    history, it = np.asarray(history), np.asarray(it)
    return Solve("natural", jax.vmap(lambda m, c: NG.from_natural(family, m, c))(mu, chol),
                 value=np.array([-h[i] for h, i in zip(history, it)]), history=-history, iterations=it,
                 converged=np.asarray(conv), evals=np.asarray(evals), skipped=np.asarray(skipped),
                 failed=np.asarray(failed), num_draws=plan.num, noise=np.asarray(noise), averaged=np.asarray(averaged),
                 max_iter=max_iter, tol=options.tol)


def _fixed_draws(plan, params, key, num: int, max_iter: int | None) -> Solve:
    family, tgt = plan.family, plan.target
    noise = C.base_noise(family, key, num, True)
    max_iter = max_iter or 500
    gtol = _gtol(plan.options)
    statics = (family, tgt.log_density, num, plan.alpha, False)
    out = jax.vmap(lambda prm: lbfgs_core(vi_loss, statics, prm, (noise, tgt.dist), gtol, max_iter,
                                          capacity=_capacity(max_iter), report=plan.report))(params)
    params, value, history, it, grad_norm, conv, stalled, evals = out
    start_values = np.asarray(history[:, 0])
    if not np.all(np.isfinite(start_values)):
        raise FitError(
            f"The negative ELBO is {float(start_values[~np.isfinite(start_values)][0])} at the starting q: "
            "log_density is NaN or inf at some draws from it. Check log_density on all of R^d, start "
            "elsewhere with init={...}, or use method='sgd', which skips such draws' steps."
        )
    n = plan.num_starts
    return Solve("fixed_draws", params, value=np.asarray(value), history=np.asarray(history), iterations=np.asarray(it),
                 converged=np.asarray(conv), evals=np.asarray(evals) * num, skipped=np.zeros(n, int),
                 failed=np.zeros(n, bool), num_draws=num, grad_norm=np.asarray(grad_norm),
                 stalled=np.asarray(stalled), max_iter=max_iter)


def _adam_solve(plan, params, key) -> Solve:
    tgt, options, n = plan.target, plan.options, plan.num_starts
    steps = options.num_steps
    rate = 0.02 if options.learning_rate is None else float(options.learning_rate)
    statics = (plan.family, tgt.log_density, plan.num, plan.alpha, True)
    params, history = jax.vmap(lambda prm, k: _adam(vi_loss_fresh, statics, prm, (tgt.dist,), k, rate,
                                                    num_steps=steps, report=plan.report))(params, jax.random.split(key, n))
    history = np.asarray(history)
    tenth = max(steps // 10, 2)
    last, before = history[:, -tenth:], history[:, -2 * tenth:-tenth]
    spread = np.sqrt(last.var(axis=1, ddof=1) / tenth + before.var(axis=1, ddof=1) / tenth)
    conv = np.isfinite(last).all(axis=1) & (np.abs(last.mean(axis=1) - before.mean(axis=1)) <= 3 * spread + 1e-12)
    return Solve("adam", params, value=last.mean(axis=1), history=history, iterations=np.full(n, steps), converged=conv,
                 evals=np.full(n, steps * plan.num), skipped=np.zeros(n, int), failed=~np.isfinite(last).all(axis=1),
                 num_draws=plan.num)


def _sgd_solve(plan, params, key) -> Solve:
    tgt, options = plan.target, plan.options
    rates = np.asarray(DEFAULT_RATES if options.learning_rate is None else (float(options.learning_rate),), dtype=float)
    window, pilot = options.window, 40
    max_windows = max(3, -(-options.max_steps // window))
    statics = (plan.family, tgt.log_density, plan.num, plan.alpha, True)
    out = jax.vmap(lambda prm, k: _sgd(vi_loss_fresh, statics, prm, (tgt.dist,), k, rates, window=window,
                                       max_windows=max_windows, pilot=pilot, num_stages=3, report=plan.report))(
        params, jax.random.split(key, plan.num_starts))
    params, means, windows, skipped, conv, failed, chosen = out
    windows, means = np.asarray(windows), np.asarray(means)
    steps = windows * window + pilot * len(rates)
    value = np.array([m[w - 1] if w else np.nan for m, w in zip(means, windows)])
    return Solve("sgd", params, value=value, history=means, iterations=steps, converged=np.asarray(conv),
                 evals=steps * plan.num, skipped=np.asarray(skipped), failed=np.asarray(failed), num_draws=plan.num,
                 rate=np.asarray(chosen), windows=windows, window=window)


def solve(plan, params, key) -> Solve:
    """Run ``plan.method`` from ``params`` (stacked by start)."""
    if plan.method == "natural":
        return _natural(plan, params, key)
    if plan.method == "fixed_draws":
        return _fixed_draws(plan, params, key, plan.num, plan.options.max_iter)
    if plan.method == "adam":
        return _adam_solve(plan, params, key)
    return _sgd_solve(plan, params, key)


def then_fixed_draws(plan, first: Solve, before: str, num: int, key, max_iter: int | None) -> Solve:
    """A fixed-draw L-BFGS stage on ``num`` draws from where ``first`` ended: its evaluations
    added to the first's, ``before`` (what the first did) to lead the message."""
    s = _fixed_draws(plan, first.params, key, num, max_iter)
    s.evals = s.evals + first.evals
    s.before = before
    return s


def _one_start(a) -> np.ndarray:
    return np.asarray(a)[None]


def one_program(plan) -> Solve:
    """``method="auto"`` for a small Gaussian family as one compiled program
    (``_vi_auto.auto_program``): the start, L-BFGS on whitened fixed draws, the refinement on
    fresh draws when the first solve was cheap, and the diagnostics."""
    family, tgt, options, num = plan.family, plan.target, plan.options, plan.num
    max_iter, gtol = options.max_iter or 500, _gtol(options)
    refine = NG.refine_num_draws(family)
    normals = host_normals(plan.key, AUTO.normals_needed(family, num, refine, options.num_elbo_draws))
    with validation_enabled(False):  # tracing: numpyro's checks would run eager ops (compiles)
        target = None if plan.traced is not None else tgt.dist
        out = call_small(AUTO.auto_program, plan.consts, target, normals, float(options.init_scale), gtol, max_iter,
                         family=family, traced=plan.traced, num=num, refine=refine, num_elbo=options.num_elbo_draws,
                         steps=options.init_steps, capacity=_capacity(max_iter), report=plan.report)
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
    before = (f"L-BFGS on {num} whitened fixed draws converged in {int(it[0])} iterations; "
              f"refined on {refine} fresh draws: ") if i else ""
    return Solve("fixed_draws", jax.tree.map(_one_start, host["params"]), value=_one_start(value[i]),
                 history=_one_start(history[i]), iterations=_one_start(it[i]), converged=_one_start(conv[i]),
                 evals=np.array([evals[0] * num + (evals[1] * refine if i else 0)]), skipped=np.zeros(1, int),
                 failed=np.zeros(1, bool), num_draws=refine if i else num, grad_norm=_one_start(grad_norm[i]),
                 stalled=_one_start(stalled[i]), max_iter=max_iter, before=before,
                 start_scales=_one_start(host["start_scales"]), unused=_one_start(host["unused"]),
                 diagnostics=jax.tree.map(_one_start, importance_diagnostics_host(*host["log_ratio"])),
                 q=out["q"], values={k: out["values"][k] for k in jax.eval_shape(family.constrained, out["params"])})


def quadrature(plan) -> Solve:
    """``method="quadrature"`` (``_vi_quadrature``) as one compiled program; the ELBO's error is
    the difference to the half-size rule's."""
    from ._vi_quadrature import quadrature_program, rules

    family, tgt, options = plan.family, plan.target, plan.options
    rule, half = rules()
    with validation_enabled(False):
        target = None if plan.traced is not None else tgt.dist
        out = quadrature_program(plan.consts, target, host_normals(plan.key, 1 + options.num_elbo_draws),
                                 float(options.init_scale), _gtol(options), rule, half, family=family,
                                 traced=plan.traced, steps=options.init_steps, num_elbo=options.num_elbo_draws)
    host = jax.device_get({k: v for k, v in out.items() if k not in ("q", "values")})
    if not np.isfinite(host["log_p0"]):
        raise FitError(not_finite_at_start(host["log_p0"], host["x0"]))
    it, nodes = int(host["iterations"]), rule[0].shape[0]
    for i, value in enumerate(np.asarray(host["history"])[1:it + 1], start=1):  # a few Newton steps: after the fact
        report(i, value)
    diag = jax.tree.map(_one_start, importance_diagnostics_host(*host["log_ratio"]))
    error = abs(float(host["value"]) - float(host["value_half"]))
    return Solve("quadrature", jax.tree.map(_one_start, host["params"]), value=np.array([host["value"]]),
                 history=np.asarray(host["history"])[None], iterations=np.array([it]),
                 converged=np.array([bool(host["converged"])]), evals=np.array([(it + 1) * nodes * 3]),
                 skipped=np.zeros(1, int), failed=np.zeros(1, bool), num_draws=nodes,
                 grad_norm=np.array([host["grad_norm"]]), num_nodes=nodes,
                 diagnostics=diag._replace(elbo=-np.array([host["value"]]), elbo_stderr=np.array([error])),
                 q=out["q"], values={k: out["values"][k] for k in jax.eval_shape(family.constrained, out["params"])})
