"""``FitResult``: the fitted distribution, its parameters and how the fit went."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import numpyro.distributions as dist

from ..measure import Estimate

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ._summary import FitSummary

__all__ = ["FitResult", "STATUSES"]

STATUSES = ("exact", "converged", "max_iter", "stalled", "not_finite", "improper", "not_converged")


def _fmt(value: Any) -> str:
    a = np.asarray(value)
    if a.ndim == 0:
        return f"{float(a):.6g}"
    return np.array2string(a, precision=4, separator=", ").replace("\n", "")


class _Deferred:
    """A dataclass field whose value may be given as a zero-argument callable: it is called on
    the first read and its result kept (the data's entropy estimate sorts all rows; a fit only
    pays for it when the summary, ``kl_estimate`` or the attribute itself is asked for)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = "_deferred_" + name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return None  # the field's default
        value = obj.__dict__.get(self._slot)
        if callable(value):
            value = value()
            obj.__dict__[self._slot] = value
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self._slot] = value


@dataclasses.dataclass(frozen=True)
class FitResult:
    """The result of ``kb.fit``.

    Attributes:
        q: the fitted numpyro distribution q_θ.
        params: its constrained parameters by name (NumPy arrays).
        direction: ``"forward"`` (min KL(p‖q)) or ``"reverse"`` (min KL(q‖p)).
        objective: the final objective: forward, the mean negative log-likelihood (data) or the
            cross-entropy H(p, q) (a distribution target); reverse, the negative ELBO on the
            optimiser's draws.
        history: the objective per iteration (index 0: the start), a NumPy array.
        converged: whether the stopping test passed (gradient norm for L-BFGS, no remaining
            trend for Adam; a closed form is converged).
        num_iterations: solver iterations (0 for a closed form).
        message: how it ended, and what to try when it did not converge.
        family: the family's name.
        method: ``"closed_form"``, ``"moment_matching"``, ``"lbfgs"``, ``"fixed_draws"`` or ``"adam"``.
        elbo: reverse fits: the ELBO E_q[log p̃ − log q] estimated on fresh draws (a
            :class:`kullback.Estimate` with its Monte Carlo stderr); None for forward fits.
        stderr: forward fits to data: standard errors of ``params`` from the observed
            information (delta method to the natural parameters); None otherwise.
        log_likelihood, aic, bic: forward fits to data: Σ w_i log q(x_i), 2k − 2 log L and
            k log N − 2 log L (k free parameters, N = Σ w_i observations); None otherwise.
        num_observations: N = Σ w_i (the number of rows without weights).
        num_params: k, the number of free (unconstrained) parameters.
        data_entropy: an estimate of the data's entropy H(p) (plug-in for discrete data, spacing
            or k-NN for continuous data) to set beside ``objective`` = H(p̂, q): their difference
            estimates KL(p‖q) (see :meth:`summary`). Computed on first access.
        pareto_k, pareto_k_verdict: reverse fits: the PSIS shape k̂ of the importance ratios p̃/q on
            fresh draws from q, and its verdict: ``"good"`` (k̂ < 0.5), ``"usable"`` (< 0.7) or
            ``"unreliable"`` (q misses mass of p: the ELBO, log Z and draws are not to be trusted).
        pareto_k_stderr: reverse fits: the standard error of k̂ itself, √((1 + k̂)² / M) for the M
            largest ratios its tail fit uses (±0.12 at k̂ = 0.7 from 4000 draws); the message says
            when the verdict is borderline, and what it means for q's means and sds and its tails.
        ess: reverse fits: the importance-sampling effective sample size of those draws.
        log_z: reverse fits: log Z = log ∫ p̃ by importance sampling (an Estimate, delta-method stderr).
        num_skipped: reverse stochastic fits: steps skipped for a non-finite objective or gradient.
        num_grad_evals: reverse fits: gradient evaluations of log p̃ (draws × objective evaluations).
        info: method details (e.g. ``info["multistart"]``: starts, their ELBOs, best or combined).
        status: how the fit ended, one of :data:`STATUSES`: ``"exact"`` (a closed form or
            moment matching), ``"converged"`` (the stopping test passed), ``"max_iter"`` (the
            iterations ran out), ``"stalled"`` (the line search made no progress), ``"not_finite"``
            (the objective or q's parameters became NaN or inf), ``"improper"`` (no optimum: the
            target is not normalisable, or the likelihood grows without bound), ``"not_converged"``
            (any other stop); ``message`` says more and what to try.
        sampler: reverse fits: ``sampler(key, num, resample)`` behind :meth:`draws`
            (a :class:`kullback.fit._sampler.Sampler`).

    A result pickles (``pickle.dumps(r)``): forward fits losslessly; reverse fits with q and the
    map from q's draws to the target's space, so that ``draws``, ``means`` and ``summary`` work
    after loading. That map must be picklable by name (a numpyro model defined at module level);
    otherwise ``pickle.dumps`` raises an error that says so. A target log density that cannot be
    pickled (a lambda) is left out: only ``draws(..., resample=True)`` needs it, and it then
    raises an error that says why.

    Example:
        >>> import numpy as np, numpyro.distributions as dist, kullback as kb
        >>> r = kb.fit(dist.Normal, np.array([1.0, 2.0, 3.0, 4.0]))
        >>> r.converged, float(r.params["loc"]), round(float(r.params["scale"]) ** 2, 4)
        (True, 2.5, 1.25)
    """

    q: dist.Distribution
    params: dict[str, np.ndarray]
    direction: str
    objective: float
    history: np.ndarray
    converged: bool
    num_iterations: int
    message: str
    family: str = ""
    method: str = ""
    elbo: Estimate | None = None
    stderr: dict[str, np.ndarray] | None = None
    log_likelihood: float | None = None
    aic: float | None = None
    bic: float | None = None
    num_observations: float | None = None
    num_params: int | None = None
    data_entropy: Estimate | None = _Deferred()  # type: ignore[assignment]
    pareto_k: float | None = None
    pareto_k_verdict: str | None = None
    pareto_k_stderr: float | None = None
    ess: float | None = None
    log_z: Estimate | None = None
    num_skipped: int | None = None
    num_grad_evals: int | None = None
    info: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)
    sampler: Any = dataclasses.field(default=None, compare=False, repr=False)
    status: str = ""

    def __post_init__(self) -> None:
        if not self.status:  # a path that does not say: the solver's own word
            object.__setattr__(self, "status", "converged" if self.converged else "not_converged")
        if self.status not in STATUSES:
            raise ValueError(f"Expected status to be one of {STATUSES}; got {self.status!r}.")

    def draws(self, key: Any, num: int, *, resample: bool = False) -> Any:
        """``num`` draws from the fitted q (reverse fits), in the target's original space.

        ``resample=True``: sampling-importance-resampling toward p: 4·num (at least 1000) draws
        from q, then ``num`` of them drawn with replacement with their Pareto-smoothed weights
        p̃/q (trust this only when ``pareto_k_verdict`` is not ``"unreliable"``).
        A numpyro model target gives a dict of constrained sites, each with a leading ``num`` axis;
        a pytree target (``example=``) gives that pytree, each leaf with a leading ``num`` axis.
        """
        if self.sampler is None:
            raise ValueError("draws() needs a reverse fit; a forward fit's q draws with q.sample(key, (num,)).")
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise ValueError(f"Expected num to be a positive integer; got {num!r}.")
        return self.sampler(key, num, bool(resample))

    def means(self, key: Any = 0, num: int = 4000) -> Any:
        """E_q[x] in the target's original space, per named leaf (reverse fits), by Monte Carlo.

        mean_s x_s over ``num`` draws of :meth:`draws` (Monte Carlo error sd/√num): an array for
        a target on R^d, a dict by site for a numpyro model, the example's pytree for a pytree
        target (``example=``). The same structure as ``draws(key, num)`` without the draw axis.

        Example:
            >>> import jax.numpy as jnp, kullback as kb
            >>> log_p = lambda t: -0.5 * (t["mu"] - 1.0) ** 2 - 0.5 * jnp.sum((t["beta"] + 2.0) ** 2)
            >>> r = kb.fit(kb.families.Gaussian(3), log_p, direction="reverse", key=0,
            ...            example={"mu": 0.0, "beta": jnp.zeros(2)})
            >>> m = r.means(key=1)
            >>> round(float(m["mu"]), 1), [round(float(b), 1) for b in m["beta"]]
            (1.0, [-2.0, -2.0])
        """
        import jax

        return jax.tree.map(lambda a: np.mean(np.asarray(a), axis=0), self.draws(key, num))

    @property
    def kl_estimate(self) -> float | None:
        """H(p̂, q) − Ĥ(p): the estimated KL(p‖q) left after the fit (None without an entropy estimate).

        A KL is ≥ 0: where the entropy estimate's own error (``data_entropy.stderr``, and the
        spacing or k-NN estimator's bias) makes the difference negative, the estimate is 0 (q fits
        the data to within that error)."""
        if self.data_entropy is None or self.direction != "forward":
            return None
        return max(0.0, float(self.objective) - float(self.data_entropy.value))

    def conf_int(self, alpha: float = 0.05) -> dict[str, np.ndarray]:
        """Wald intervals θ̂ ± z_{1−α/2} · se(θ̂) for the fitted parameters (forward fits to data).

        The standard errors come from the observed information (delta method into the natural
        parameters), as statsmodels' ``conf_int`` for a likelihood model reports them.

        Args:
            alpha: the intervals cover 1 − alpha; 0 < alpha < 1.

        Returns:
            By parameter name, an array of shape ``(*param_shape, 2)``: lower and upper ends.
        """
        if not 0.0 < float(alpha) < 1.0:
            raise ValueError(f"Expected alpha to be between 0 and 1 (exclusive); got {alpha}.")
        if self.stderr is None:
            raise ValueError("conf_int needs standard errors: a forward fit to data (with stderr=True).")
        from scipy.special import ndtri

        z = float(ndtri(1.0 - float(alpha) / 2.0))
        out = {}
        for k, v in self.params.items():
            value, se = np.asarray(v, dtype=float), np.asarray(self.stderr[k], dtype=float)
            if se.shape != value.shape:  # not this parameter's standard errors: not available
                se = np.full(value.shape, np.nan)
            out[k] = np.stack([value - z * se, value + z * se], axis=-1)
        return out

    def summary(self, alpha: float = 0.05, *, key: Any = 0, num: int = 4000) -> FitSummary:
        """The fit's table (a :class:`~kullback.fit._summary.FitSummary`): text, a DataFrame, HTML.

        Forward fits: per parameter coordinate, the estimate, its standard error and the
        (1 − alpha) Wald interval (:meth:`conf_int`); then log-likelihood, AIC, BIC and the
        cross-entropy beside the data's entropy. Reverse fits: per coordinate of the target's
        space (a numpyro model's sites ``beta[0]``, ``sigma``; a pytree's leaves by path;
        ``x[0]``, ... on R^d), the mean, sd (ddof 1), the alpha/2, 0.5 and 1 − alpha/2 quantiles
        and the mean's Monte Carlo error sd/√num of ``draws(key, num)`` (deterministic for a given
        key); then the ELBO ± its error, Pareto k̂ and its verdict, the ESS and log Z.

        The table is a ``str`` (its text: ``print`` it); ``.to_frame()`` gives a pandas
        DataFrame, ``.to_dict()`` JSON-ready values, and notebooks show it as HTML.

        Example:
            >>> import numpy as np, numpyro.distributions as dist, kullback as kb
            >>> s = kb.fit(dist.Normal, np.array([1.0, 2.0, 3.0, 4.0])).summary()
            >>> print(s.splitlines()[0])
            Normal fitted by closed_form (forward KL): converged
            >>> s.to_frame().round(4)
                   estimate  stderr  ci_low  ci_high
            loc      2.5000  0.5590  1.4043   3.5957
            scale    1.1180  0.3953  0.3433   1.8927
        """
        from ._summary import forward_summary, reverse_summary

        if not 0.0 < float(alpha) < 1.0:
            raise ValueError(f"Expected alpha to be between 0 and 1 (exclusive); got {alpha}.")
        if self.direction == "reverse" and self.sampler is not None:
            return reverse_summary(self, float(alpha), key, num)
        return forward_summary(self, float(alpha))

    @property
    def covariance(self) -> np.ndarray | None:
        """The covariance matrix of the fit, rows and columns in the order of ``summary()``'s rows.

        Forward fits to data: the covariance of the estimates, the inverse observed information
        carried to the natural parameters by the delta method (``stderr`` is the root of its
        diagonal); NaN where the information is singular; None without standard errors (a fit to
        a distribution, ``stderr=False``). Reverse fits: the covariance (ddof 1) of 4000 draws of
        q (key 0) in the target's space, flattened as ``summary()`` lists the coordinates.
        """
        if self.direction == "reverse":
            if self.sampler is None:
                return None
            from ._summary import draw_columns

            x = draw_columns(self.draws(0, 4000)).matrix
            return np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
        if "covariance" not in self.info:
            return None
        sizes = {k: int(np.size(v)) for k, v in self.params.items()}
        total = sum(sizes.values())
        cov = self.info["covariance"]
        if cov is None:  # singular information: the standard errors are NaN too
            return np.full((total, total), np.nan)
        names = tuple(self.info.get("covariance_names", tuple(self.params)))  # the stored matrix's order
        offsets, start = {}, 0
        for k in names:
            offsets[k], start = start, start + sizes[k]
        order = np.concatenate([offsets[k] + np.arange(sizes[k]) for k in self.params])
        return np.asarray(cov, dtype=float)[np.ix_(order, order)]

    def to_arviz(self, *, key: Any = 0, num: int = 4000) -> Any:
        """The fit as an ``arviz.InferenceData`` (needs arviz: ``pip install arviz``).

        Reverse fits: a ``posterior`` group of ``draws(key, num)`` (one chain) with the target's
        site names, the fit's statistics in its attrs. Forward fits to data: an ``mle`` group
        with the estimates and their :attr:`covariance`, and a ``posterior`` group of ``num``
        draws from the estimator's asymptotic normal N(θ̂, covariance) (a sampling distribution,
        not a Bayesian posterior: its attrs say so). See ``kullback.fit._arviz``.
        """
        from ._arviz import to_arviz

        return to_arviz(self, key, num)

    def plot(self, data: Any = None, *, target_draws: Any = None, key: Any = 0, num: int = 4000) -> Figure:
        """A matplotlib Figure of the fit (see :func:`kullback.plot.plot_result`).

        Forward fits: given the ``data`` (a result keeps no reference to them), a histogram of
        1-D data with q's density (or frequencies with its pmf) and a Q-Q panel; d-D data, one
        panel per coordinate. Without data, q's density. Reverse fits: one panel per
        coordinate of the target's space (at most 16) with the histogram of ``draws(key, num)``,
        and ``target_draws`` (same structure as :meth:`draws`, e.g. NUTS draws) overlaid.
        """
        from ..plot import plot_result

        return plot_result(self, data, target_draws=target_draws, key=key, num=num)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the values: the deferred data entropy is computed now (it would need the data);
        the sampler pickles itself (``kullback.fit._sampler``)."""
        state = dict(self.__dict__)
        state["_deferred_data_entropy"] = self.data_entropy
        return state

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (lists and floats)."""
        out: dict[str, Any] = {
            "family": self.family, "method": self.method, "direction": self.direction,
            "converged": self.converged, "status": self.status, "num_iterations": self.num_iterations,
            "objective": self.objective,
            "params": {k: np.asarray(v).tolist() for k, v in self.params.items()},
            "message": self.message,
        }
        if self.stderr is not None:
            out["stderr"] = {k: np.asarray(v).tolist() for k, v in self.stderr.items()}
        for name in ("log_likelihood", "aic", "bic", "num_observations", "num_params"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("pareto_k", "pareto_k_stderr", "pareto_k_verdict", "ess", "num_skipped", "num_grad_evals"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("elbo", "log_z"):
            if getattr(self, name) is not None:
                out[name] = {"value": float(getattr(self, name).value), "stderr": float(getattr(self, name).stderr)}
        if self.data_entropy is not None:
            out["data_entropy"] = {"value": float(self.data_entropy.value), "stderr": float(self.data_entropy.stderr),
                                   "method": self.data_entropy.method}
            out["kl_estimate"] = self.kl_estimate
        return out

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        lines = [
            f"FitResult(direction={self.direction!r}, family={self.family}, method={self.method!r},",
            f"  converged={self.converged}, status={self.status!r}, num_iterations={self.num_iterations}, "
            f"objective={_fmt(self.objective)},",
            f"  params: {params},",
        ]
        if self.elbo is not None:
            lines.append(f"  elbo={_fmt(self.elbo.value)} ± {_fmt(self.elbo.stderr)},")
        if self.pareto_k is not None:
            lines.append(f"  pareto_k={_fmt(self.pareto_k)} ({self.pareto_k_verdict}), ess={_fmt(self.ess)},")
        lines.append(f"  message={self.message!r})")
        return "\n".join(lines)
