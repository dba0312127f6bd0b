"""The options of a fit, as typed values: ``kb.fit(..., **options)`` builds one of these.

Each option has one default and one line of documentation here; a misspelt or unknown option is
an error at once that lists the allowed names, and a value of the wrong kind is an error that
names the option. The solvers read attributes (``options.max_iter``), never a dict.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any, Callable

from ._multistart import COMBINE

__all__ = ["ForwardOptions", "ReverseOptions", "make_options", "option_names"]

FORWARD_SOLVERS = ("auto", "newton", "lbfgs")
FORWARD_METHODS = ("auto", "samples", "quadrature")
REVERSE_METHODS = ("auto", "natural", "fixed_draws", "sgd", "adam", "quadrature")
OBJECTIVES = ("kl", "renyi")
STARTS = ("mode", "pathfinder")



def _choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"Expected {name} to be one of {allowed}; got {value!r}.")


def _positive_int(name: str, value: Any, *, allow_none: bool = True, minimum: int = 1) -> None:
    if value is None and allow_none:
        return
    try:
        if isinstance(value, bool):
            raise TypeError
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"Expected {name} to be an integer ≥ {minimum}; got {value!r}.") from None
    if v < minimum:
        raise ValueError(f"Expected {name} to be an integer ≥ {minimum}; got {value!r}.")


def _positive(name: str, value: Any, *, allow_none: bool = True, zero: bool = False) -> None:
    if value is None and allow_none:
        return
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Expected {name} to be a positive number; got {value!r}.") from None
    if not (v >= 0 if zero else v > 0):
        raise ValueError(f"Expected {name} to be a {'non-negative' if zero else 'positive'} number; got {value!r}.")


def _callback(value: Any) -> None:
    if value is not None and not callable(value):
        raise ValueError(f"Expected callback to be a callable (iteration, objective) -> None; got {type(value).__name__}.")


@dataclasses.dataclass(frozen=True)
class ForwardOptions:
    """Options of a forward fit, ``argmin_θ KL(p‖q_θ)`` (maximum likelihood on data).

    Attributes:
        sample_weight: frequency weights of the rows, shape (n,) (None: all 1).
        solver: ``"auto"`` (closed form or Newton up to 64 free parameters, else L-BFGS),
            ``"newton"`` or ``"lbfgs"``.
        max_iter: the most iterations (None: 100 Newton, 500 L-BFGS, 100 EM).
        gtol: the gradient tolerance (None: 1e-11 Newton, 1e-6 L-BFGS in float64).
        init: starting values by parameter name (None: from the data).
        stderr: standard errors from the observed information.
        num_samples: draws from a distribution target without a closed form or quadrature.
        method: a distribution target: ``"auto"`` (moment matching where it is exact, else
            quadrature or draws), ``"samples"`` or ``"quadrature"`` (a scalar target by Gauss–Legendre).
        num_nodes: the quadrature's nodes.
        num_restarts: mixtures: EM runs from different starts, the best kept.
        tol: mixtures: EM stops when the mean log-likelihood gains less than this.
        reg_covar: mixtures: added to the diagonal of each Gaussian covariance; for other EM
            components the floor of their scale, rate, probability or Gamma spread.
        progress: draw a progress bar with the objective (long fits).
        callback: called as ``callback(iteration, objective)`` as the fit goes.
    """

    sample_weight: Any = None
    solver: str = "auto"
    max_iter: int | None = None
    gtol: float | None = None
    init: dict | None = None
    stderr: bool = True
    num_samples: int = 2000
    method: str = "auto"
    num_nodes: int = 512
    num_restarts: int = 1
    tol: float = 1e-3
    reg_covar: float = 1e-6
    progress: bool = False
    callback: Callable | None = None

    def __post_init__(self) -> None:
        _choice("solver", self.solver, FORWARD_SOLVERS)
        _choice("method", self.method, FORWARD_METHODS)
        _positive_int("max_iter", self.max_iter)
        _positive("gtol", self.gtol)
        _positive_int("num_samples", self.num_samples, allow_none=False)
        _positive_int("num_nodes", self.num_nodes, allow_none=False, minimum=2)
        _positive_int("num_restarts", self.num_restarts, allow_none=False)
        _positive("tol", self.tol, allow_none=False)
        _positive("reg_covar", self.reg_covar, allow_none=False, zero=True)
        if self.init is not None and not isinstance(self.init, dict):
            raise ValueError(f"Expected init to be a dict of starting values by parameter name; got {self.init!r}.")
        _callback(self.callback)


@dataclasses.dataclass(frozen=True)
class ReverseOptions:
    """Options of a reverse fit, ``argmin_θ KL(q_θ‖p)`` (variational inference).

    Attributes:
        method: ``"auto"``, ``"natural"``, ``"fixed_draws"``, ``"sgd"``, ``"adam"`` or
            ``"quadrature"`` (see :mod:`kullback.fit._reverse`).
        num_draws: draws per objective evaluation (None: the method's default).
        max_iter: the most iterations (None: 500 L-BFGS, 100 natural gradient).
        gtol: L-BFGS's gradient tolerance (None: 1e-6 in float64).
        tol: natural gradient: the Monte Carlo error of the fitted moments to reach, in sd.
        num_steps: Adam's steps.
        learning_rate: Adam's (None: 0.02) or sgd's initial step size (None: chosen by pilot runs).
        window: sgd: steps per window of its stopping rule.
        max_steps: sgd: the most steps.
        init: starting values of q's parameters by name.
        init_scale: the random start's spread, relative to the Laplace approximation's.
        init_steps: steps of the start's mode search.
        start: ``"mode"`` or ``"pathfinder"``.
        num_starts: fits from different starts (vmapped), combined by ``combine``.
        combine: ``"best"`` (the highest ELBO) or ``"mixture"`` (weighted by exp(ELBO)).
        objective: ``"kl"`` (the ELBO) or ``"renyi"`` (the Rényi bound of order ``alpha``).
        alpha: Rényi order in [0, 1) (None: 0.5 for ``"renyi"``).
        num_elbo_draws: fresh draws of the diagnostics (ELBO, k̂, ESS, log Z).
        dim: the dimension of a log density's argument for a numpyro class family.
        model_args, model_kwargs: the arguments of a numpyro model target (its data).
        example: a pytree describing the argument of a pytree log density.
        progress: draw a progress bar with the objective (long fits).
        callback: called as ``callback(iteration, objective)`` as the fit goes.
    """

    method: str = "auto"
    num_draws: int | None = None
    max_iter: int | None = None
    gtol: float | None = None
    tol: float = 0.01
    num_steps: int = 2000
    learning_rate: float | None = None
    window: int = 50
    max_steps: int = 5000
    init: dict | None = None
    init_scale: float = 1.0
    init_steps: int = 50
    start: str = "mode"
    num_starts: int = 1
    combine: str = "best"
    objective: str = "kl"
    alpha: float | None = None
    num_elbo_draws: int = 4000
    dim: int | None = None
    model_args: tuple | None = None
    model_kwargs: dict | None = None
    example: Any = None
    progress: bool = False
    callback: Callable | None = None

    def __post_init__(self) -> None:
        _choice("method", self.method, REVERSE_METHODS)
        _choice("objective", self.objective, OBJECTIVES)
        _choice("start", self.start, STARTS)
        _choice("combine", self.combine, COMBINE)
        for name in ("num_draws", "max_iter", "dim"):
            _positive_int(name, getattr(self, name))
        for name in ("num_steps", "max_steps", "num_starts", "num_elbo_draws"):
            _positive_int(name, getattr(self, name), allow_none=False)
        _positive_int("window", self.window, allow_none=False, minimum=4)
        _positive_int("init_steps", self.init_steps, allow_none=False, minimum=0)
        for name in ("gtol", "learning_rate"):
            _positive(name, getattr(self, name))
        _positive("tol", self.tol, allow_none=False)
        _positive("init_scale", self.init_scale, allow_none=False)
        if self.objective == "renyi" and not 0.0 <= self.renyi_alpha < 1.0:
            raise ValueError(f"Expected alpha in [0, 1) for objective='renyi' (alpha → 1 is the ELBO); got {self.alpha}.")
        if self.init is not None and not isinstance(self.init, dict):
            raise ValueError(f"Expected init to be a dict of q's starting parameters by name; got {self.init!r}.")
        if self.model_kwargs is not None and not isinstance(self.model_kwargs, dict):
            raise ValueError(f"Expected model_kwargs to be a dict; got {type(self.model_kwargs).__name__}.")
        _callback(self.callback)

    @property
    def renyi_alpha(self) -> float:
        """The order of the objective: ``alpha`` (0.5 by default) for Rényi, 1 for the ELBO."""
        if self.objective != "renyi":
            return 1.0
        return 0.5 if self.alpha is None else float(self.alpha)

    @property
    def has_model_arguments(self) -> bool:
        return self.model_args is not None or self.model_kwargs is not None

    @property
    def plain_start(self) -> bool:
        """One start at the mode, no ``init``: the start the single compiled programs make."""
        return self.num_starts == 1 and not self.init and self.start == "mode"


def option_names(direction: str) -> tuple[str, ...]:
    """The option names of a fit in ``direction``."""
    cls = ForwardOptions if direction == "forward" else ReverseOptions
    return tuple(f.name for f in dataclasses.fields(cls))


def make_options(direction: str, options: dict) -> ForwardOptions | ReverseOptions:
    """The typed options of a fit in ``direction`` from ``kb.fit``'s keywords."""
    allowed = option_names(direction)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"Unknown options {unknown} for a {direction} fit; allowed: "
                        f"{tuple(sorted(allowed + ('fixed',) + (('bounds',) if direction == 'forward' else ())))}.")
    cls = ForwardOptions if direction == "forward" else ReverseOptions
    return cls(**options)
