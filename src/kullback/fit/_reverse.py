"""Reverse fits: argmin_θ KL(q_θ‖p) = argmax_θ ELBO(θ) = E_q[log p̃(x)] + H(q_θ).

Methods (``method=``):
- ``"auto"`` (default): for a Gaussian family (ELBO objective), fixed draws as below on
  max(24, 2d + 2) whitened draws up to 100 free parameters, refined by a second solve on
  max(64, 4d + 4) fresh draws when the first took under 1500 gradient evaluations; natural
  gradient above, handed to fixed draws when it has not converged (``_vi_natural``). Other
  families: ``"fixed_draws"`` with 1000 draws. A normal q (``dist.Normal``,
  ``Gaussian(1)``) on a scalar target: ``"quadrature"``. The Gaussian default with one start runs
  as ONE compiled program (``_vi_auto.auto_program``), keyed by the log density's traced
  program (``_traced.TracedLogDensity``), so a new closure of the same kind compiles nothing.
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

import dataclasses
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
from . import _reverse_solvers as S
from . import _vi_natural as NG
from ._diagnostics import importance_diagnostics, pareto_k_message, pareto_k_stderr, pareto_k_verdict
from ._multistart import combined_q, group_modes, mixture_weights
from ._objectives import log_density_values
from ._options import ReverseOptions
from ._progress import active
from ._result import FitResult
from ._reverse_result import honest_outcome, message as _message, sampler as _sampler, scales_of
from ._reverse_start import start_evals, starts
from ._targets import Target, push_back, resolve_target
from ._traced import trace_log_density

__all__ = ["fit_reverse"]


def _scalar_to_device(leaf: Any) -> Any:
    """A 0-d NumPy or Python float leaf as a device array (tracing keeps it a constant, not a literal)."""
    if isinstance(leaf, (float, np.floating)) or (isinstance(leaf, np.ndarray) and leaf.ndim == 0
                                                   and np.issubdtype(leaf.dtype, np.floating)):
        return jnp.asarray(leaf)
    return leaf


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
                # scalar NumPy/Python parameters would be inlined as literals, so a new value would
                # be a new program: as device arrays they are constants, i.e. arguments
                target = jax.tree.map(_scalar_to_device, tgt.dist)
                traced, consts, out = trace_log_density(target.log_prob, tgt.event_shape)
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

def _start_scales(family, params, num_starts: int):
    """q's per-coordinate scales at each start (host), or None for a family without scales."""
    try:
        values = jax.device_get(jax.vmap(family.constrained)(params))
    except Exception:  # noqa: BLE001 - a family whose parameters do not vmap: no runaway test
        return None
    scales = scales_of(values)
    return None if scales is None else scales.reshape(num_starts, -1)


@dataclasses.dataclass(frozen=True)
class Plan:
    """A reverse fit before it runs: the target on R^d, the family shaped to it, and what runs.

    ``route``: ``"quadrature"`` or ``"one_program"`` (one compiled program, one start) or
    ``"vmapped"`` (starts, then :func:`_reverse_solvers.solve` vmapped over them); ``method`` the
    solver; ``num`` its draws per evaluation; ``gaussian`` whether the auto stages for a Gaussian
    family (refinement, natural-gradient polish) apply."""

    family: Any
    target: Target
    options: ReverseOptions
    key: jax.Array
    traced: Any
    consts: list
    method: str
    route: str
    num: int
    auto: bool
    gaussian: bool
    alpha: float
    report: bool = False

    @property
    def num_starts(self) -> int:
        return self.options.num_starts


def _method(family, options: ReverseOptions) -> tuple[str, bool]:
    """The solver ``method="auto"`` picks for the family (before the target is known), and
    whether the family is a Gaussian with the ELBO objective (natural gradient possible)."""
    gaussian = NG.supports(family) and options.objective == "kl"
    if options.method == "auto":
        return (NG.auto_method(family) if gaussian else "fixed_draws"), gaussian
    if options.method == "natural" and not gaussian:
        raise ValueError("method='natural' fits a kb.families.Gaussian with objective='kl'; "
                         f"got {family.name} with objective={options.objective!r}. Use 'fixed_draws' or 'sgd'.")
    return options.method, gaussian


def _num_draws(family, method: str, auto_gaussian: bool, options: ReverseOptions) -> int:
    if options.num_draws is not None:
        num = options.num_draws
    elif method == "natural":
        num = NG.default_num_draws(family)
    else:
        num = {"fixed_draws": NG.polish_num_draws(family) if auto_gaussian else 1000, "sgd": 16, "adam": 32,
               "quadrature": 0}[method]
    if method == "natural" and (num < 4 or num % 2):
        raise ValueError(f"Expected num_draws to be an even integer ≥ 4 for method='natural' (antithetic pairs); got {num}.")
    return num


def _plan(family, target, key, options: ReverseOptions) -> Plan:
    """Resolve the target, trace its log density (no compile) and choose the route and solver."""
    method, gaussian = _method(family, options)
    auto = options.method == "auto"
    tgt = resolve_target(target, family, key, options)  # a model's key: numpyro's own initialisation, if it runs
    family = family.with_event_shape(tgt.event_shape)
    traced, consts = _check_log_density(tgt)
    if not hasattr(family, "weighted_draws") and not _has_rsample(family, tgt.event_shape):
        raise TypeError(f"Reverse fits need reparameterised draws; {family.name} has no rsample.")
    from ._vi_quadrature import supports_quadrature

    programmable = options.plain_start and (tgt.log_density is None or traced is not None)
    can_quad = (options.objective == "kl" and programmable and supports_quadrature(family, tgt.event_shape))
    if options.method == "quadrature" and not can_quad:
        raise ValueError("method='quadrature' fits a normal q (dist.Normal, kb.families.Gaussian(1)) to a scalar "
                         "target with objective='kl', one start and no init=; "
                         f"got {family.name} on a target of shape {tgt.event_shape}. Use method='auto'.")
    if options.method == "quadrature" or (auto and can_quad and options.num_draws is None):
        method, route = "quadrature", "quadrature"
    elif auto and method == "fixed_draws" and gaussian and programmable:
        route = "one_program"
    else:
        route = "vmapped"
    num = _num_draws(family, method, auto and gaussian, options)
    return Plan(family, tgt, options, key, traced, consts, method, route, num, auto, gaussian, options.renyi_alpha)


def _vmapped(plan: Plan) -> S.Solve:
    """Starts, the solver vmapped over them, and the auto stages that follow a Gaussian fit."""
    k_start, k_solve = jax.random.split(plan.key, 4)[1:3]
    params = starts(plan.family, plan.target, k_start, plan.num_starts, plan.options)
    start_scales = _start_scales(plan.family, params, plan.num_starts)
    s = S.solve(plan, params, k_solve)
    if (plan.auto and plan.gaussian and s.method == "fixed_draws" and np.all(s.converged)
            and np.max(s.evals) <= NG.REFINE_BELOW):
        # The first solve was cheap: a second one on more fresh draws, from its optimum, cuts the Monte
        # Carlo error of the few-draw fit (about halves it) for a few hundred evaluations more.
        refine = NG.refine_num_draws(plan.family)
        before = (f"L-BFGS on {s.num_draws} whitened fixed draws converged in {int(s.iterations[0])} iterations; "
                  f"refined on {refine} fresh draws: ")
        s = S.then_fixed_draws(plan, s, before, refine, jax.random.fold_in(k_solve, 2), plan.options.max_iter)
    if plan.auto and s.method == "natural" and not np.all(s.converged | s.failed):
        # Natural-gradient steps crawl along curved valleys (funnels): finish by L-BFGS on fixed draws.
        before = (f"{int(s.iterations[0])} natural-gradient iterations of {s.num_draws} draws did not converge "
                  f"(Monte Carlo error {float(s.noise[0]):.2g} sd); then ")
        s = S.then_fixed_draws(plan, s, before, NG.polish_num_draws(plan.family), jax.random.fold_in(k_solve, 1), None)
        s.method = "natural+fixed_draws"
    s.start_scales = start_scales
    return s


def _solve(plan: Plan) -> S.Solve:
    s = {"quadrature": S.quadrature, "one_program": S.one_program, "vmapped": _vmapped}[plan.route](plan)
    if np.all(s.failed):
        raise FitError(
            f"No progress possible: every step of a window had a non-finite objective or gradient "
            f"({int(s.skipped.sum())} steps skipped). log_density is NaN or inf where q puts mass. Check it on "
            "all of R^d (constrained parameters must be transformed, e.g. pass a numpyro model or distribution), "
            "start elsewhere with init={...}, or try a smaller learning_rate."
        )
    return s


@dataclasses.dataclass
class Outcome:
    """The chosen fit: its q (on R^d) and values, its diagnostics (floats), the start it came
    from, and the multistart report."""

    q: Any
    values: dict
    diag: Any
    best: int
    family_name: str
    info: dict



def _diagnose_fits(plan: Plan, s: S.Solve) -> Outcome:
    """Diagnostics of every start's q (PSIS on fresh draws), the best start, and the mixture of
    the modes found when ``combine="mixture"``."""
    family, tgt, options = plan.family, plan.target, plan.options
    num_elbo = options.num_elbo_draws
    k_diag = functools.cache(lambda: jax.random.split(plan.key, 4)[3])  # split when needed: an eager op compiles
    diag = s.diagnostics
    if diag is None:
        diag = jax.vmap(lambda prm: _diagnose(family, tgt.log_density, num_elbo, prm, k_diag(), tgt.dist))(s.params)
    elbos = np.where(s.failed, -np.inf, np.asarray(diag.elbo))
    best = int(np.argmax(np.where(np.isfinite(elbos), elbos, -np.inf)))
    q_unit, values = (s.q, s.values) if s.q is not None else C.finish(family, jax.tree.map(lambda a: a[best], s.params))
    d = jax.tree.map(lambda a: float(a[best]), diag)
    info: dict = {"objective": options.objective, "alpha": plan.alpha, "num_draws": s.num_draws}
    name = family.name
    if plan.num_starts > 1:
        moments = jax.vmap(lambda prm: (family.distribution(prm).mean, family.distribution(prm).variance))(s.params)
        means = np.asarray(moments[0]).reshape(plan.num_starts, -1)
        sds = np.sqrt(np.asarray(moments[1])).reshape(plan.num_starts, -1)
        reps = group_modes(means, sds, elbos)
        info["multistart"] = {"num_starts": plan.num_starts, "combine": options.combine, "elbos": elbos.tolist(),
                              "num_modes": len(reps), "modes": reps}
        if options.combine == "mixture" and len(reps) > 1:
            weights = mixture_weights(elbos[reps])
            q_unit = combined_q(family, s.params, reps, weights)
            values = {"weights": weights, **C.constrained(family, jax.tree.map(lambda a: a[np.asarray(reps)], s.params))}
            d = jax.tree.map(float, _diagnose_q(tgt.log_density, num_elbo, q_unit, k_diag(), tgt.dist))
            name = f"mixture of {len(reps)} {family.name}"
    return Outcome(q_unit, values, d, best, name, info)


def _verdict(plan: Plan, s: S.Solve, out: Outcome) -> tuple[bool, str, str, str | None]:
    """(converged, message, k̂ verdict, status where the diagnostics decide it): the solver's word,
    checked against the diagnostics."""
    d, best, num_elbo = out.diag, out.best, plan.options.num_elbo_draws
    message = s.before + _message(s.method.split("+")[-1], s, best, s.num_draws)
    if plan.num_starts > 1:
        modes = out.info["multistart"]["num_modes"]
        message += (f" {plan.num_starts} starts found {modes} mode{'s' if modes > 1 else ''}; "
                    + ("combined into a mixture weighted by exp(ELBO)." if out.family_name.startswith("mixture")
                       else f"kept the best (start {best})."))
    skipped = int(s.skipped[best])
    if skipped:
        message += f" {skipped} steps skipped (non-finite objective or gradient)."
    if d.num_nonfinite:
        message += f" log p̃ was not finite at {int(d.num_nonfinite)} of {num_elbo} diagnostic draws."
    verdict = pareto_k_verdict(d.pareto_k, d.elbo)
    if np.isfinite(d.elbo):
        message += pareto_k_message(d.pareto_k, pareto_k_stderr(d.pareto_k, num_elbo), verdict, num_elbo)
    converged = bool(s.converged[best])
    start = None if s.start_scales is None else np.asarray(s.start_scales)[best]
    why_not = honest_outcome(out.values, d.elbo, int(d.num_nonfinite), num_elbo, start,
                             unused=None if converged or s.unused is None else s.unused[best])
    if why_not is not None:  # a non-finite or runaway q is never converged, whatever the solver said
        status, why = why_not
        before = s.before.rstrip(": ")
        return False, why + (f" (Before: {before}.)" if before else "") + (
            f" {skipped} steps skipped (non-finite objective or gradient)." if skipped else ""), "unreliable", status
    if s.method == "sgd" and converged and plan.num_starts == 1:
        # The stopping rule sees window means only; check the returned q on the fresh diagnostic draws
        # against the best window (both estimate −ELBO): a q far worse than a point the run passed
        # through is no optimum, whatever the windows said (a step size too large for the family).
        seen = np.asarray(s.history[best][: int(s.windows[best])], dtype=float)
        best_seen = float(np.nanmin(seen)) if np.isfinite(seen).any() else np.inf
        if -d.elbo > best_seen + 10.0 * d.elbo_stderr + 1e-3 * abs(best_seen):
            return False, (f"Not converged: the averaged iterate's ELBO ({d.elbo:.6g} ± {d.elbo_stderr:.2g}) is far "
                           f"below the best window's ({-best_seen:.6g}); the step size was too large for this family. "
                           "Try a smaller learning_rate, method='auto' or 'fixed_draws'."
                           + message[message.find(". ") + 1:]), verdict, None
    return converged, message, verdict, None


def _status(s: S.Solve, best: int, converged: bool, decided: str | None) -> str:
    """The result's status (see :data:`~kullback.fit._result.STATUSES`): the diagnostics' where
    they decided it (``decided``), else from the solver's record."""
    if converged:
        return "converged"
    if decided is not None:
        return decided
    if not np.isfinite(s.value[best]):
        return "not_finite"
    if s.stalled is not None and s.stalled[best]:
        return "stalled"
    if s.max_iter is not None and s.iterations[best] >= s.max_iter:
        return "max_iter"
    return "not_converged"


def _result(plan: Plan, s: S.Solve, out: Outcome, converged: bool, message: str, verdict: str,
            decided: str | None) -> FitResult:
    d, best, num_elbo = out.diag, out.best, plan.options.num_elbo_draws
    elbo_method = "quadrature" if s.method == "quadrature" else "monte_carlo"
    return FitResult(
        q=push_back(plan.target, out.q),
        params={k: np.asarray(v) for k, v in out.values.items()},
        direction="reverse",
        objective=float(s.value[best]),
        history=np.asarray(s.history[best][: int(s.steps_run[best])]),
        converged=converged,
        num_iterations=int(s.iterations[best]),
        message=message,
        family=out.family_name,
        method=s.method,
        elbo=Estimate(value=d.elbo, stderr=d.elbo_stderr, method=elbo_method,
                      **({} if elbo_method == "quadrature" else {"num_samples": num_elbo})),
        pareto_k=d.pareto_k,
        pareto_k_verdict=verdict,
        pareto_k_stderr=pareto_k_stderr(d.pareto_k, num_elbo),
        ess=d.ess,
        log_z=Estimate(value=d.log_z, stderr=d.log_z_stderr, method="monte_carlo", num_samples=num_elbo),
        num_skipped=int(s.skipped[best]),
        num_grad_evals=int(np.sum(s.evals)) + plan.num_starts * start_evals(plan.family, plan.options),
        info=out.info,
        sampler=_sampler(plan.family, plan.target, out.q),
        status=_status(s, best, converged, decided),
    )


def fit_reverse(family: AbstractFamily, target: Any, *, key: jax.Array | None, options: ReverseOptions) -> FitResult:
    """argmin_θ KL(q_θ‖p) for an unnormalised log density p̃, a numpyro distribution or model:
    plan (target, family, route), solve, diagnose, report."""
    if key is None:
        raise ValueError("Reverse fits draw from q: pass key= (an int seed or a jax.random key).")
    plan = _plan(family, target, key, options)
    s = _solve(dataclasses.replace(plan, report=active()))
    outcome = _diagnose_fits(plan, s)
    converged, message, verdict, decided = _verdict(plan, s, outcome)
    return _result(plan, s, outcome, converged, message, verdict, decided)
