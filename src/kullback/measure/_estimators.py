"""``estimate_kl``, ``estimate_cross_entropy``, ``estimate_entropy``: any pair, with an honest error.

Method ``"auto"`` takes the first that applies:

1. ``"closed_form"``: a registered closed form (exact; stderr 0);
2. ``"quadrature"``: adaptive Gauss-Kronrod over p's support, for scalar continuous
   distributions (``event_shape == ()``, support an interval); stderr is the quadrature's
   estimated absolute error bound;
3. ``"monte_carlo"``: the mean over draws of p, with the standard error s/√n; needs ``key``.

These functions choose and validate in Python and return an :class:`Estimate`; the numerical
kernels they call are jitted once per distribution type and shape and shared between calls.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import jax.numpy as jnp
from numpyro.distributions import Distribution

from .._errors import NoClosedFormError
from ._closed_form import cross_entropy_closed_form, entropy_closed_form, kl_closed_form
from ._estimate import Estimate
from ._mixture import gaussian_mixture_kl
from ._monte_carlo import DEFAULT_NUM_SAMPLES, as_key, moments
from ._quadrature import integrate, supports_quadrature
from ._scipy import as_distribution

__all__ = ["estimate_kl", "estimate_cross_entropy", "estimate_entropy"]

_METHODS = ("auto", "closed_form", "quadrature", "monte_carlo", "variational", "bounds")
_NAMES = {"kl": "KL", "cross_entropy": "cross-entropy", "entropy": "entropy"}
_QUADRATURE_ERROR = (
    "absolute error bound estimated by adaptive Gauss-Kronrod quadrature (quadax.quadgk); not a standard error"
)
_MONTE_CARLO_ERROR = "Monte Carlo standard error s/sqrt(n), s the sample standard deviation (ddof=1)"
_CONTROL_VARIATE_ERROR = (
    "Monte Carlo standard error sqrt(Var(v + c r)/n) of the log-ratio control-variate estimate "
    "mean(v) + c mean(r - 1), v = log p - log q, r = q/p, c = -Cov(v, r)/Var(r)"
)


def _check_method(method: Any) -> None:
    if method not in _METHODS:
        raise ValueError(f"Expected method to be one of {_METHODS}; got {method!r}.")


def _check_density(x: Any, name: str) -> None:
    if isinstance(x, Distribution):
        return
    if callable(getattr(x, "log_prob", None)):
        return
    hint = " For probability arrays use kb.kl(p, q)." if hasattr(x, "__len__") or hasattr(x, "shape") else ""
    raise TypeError(
        f"Expected {name} to be a numpyro distribution, a frozen scipy.stats distribution, "
        "or an object with log_prob and sample; "
        f"got {type(x).__name__}.{hint}"
    )


def _check_options(num_samples: Any, epsabs: Any, epsrel: Any, chunk_size: Any) -> None:
    for name, value in (("num_samples", num_samples), ("chunk_size", chunk_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 2):
            raise ValueError(f"Expected {name} to be an int of at least 2; got {value!r}.")
    for name, value in (("epsabs", epsabs), ("epsrel", epsrel)):
        if value is not None and not value > 0:
            raise ValueError(f"Expected {name} to be positive; got {value!r}.")


def _mixture_estimate(kind: str, p: Any, q: Any, method: str) -> Estimate:
    if kind != "kl":
        raise ValueError(f"Expected method={method!r} only for the KL (Gaussian mixtures); got the {_NAMES[kind]}.")
    b = gaussian_mixture_kl(p, q)
    info = {"lower": b.lower, "upper": b.upper, "variational": b.variational}
    if method == "bounds":
        info["stderr_kind"] = "half-width of [lower, upper], a guaranteed bound on the error (not a standard error)"
        return Estimate(0.5 * (b.lower + b.upper), 0.5 * (b.upper - b.lower), "bound", None, info)
    info["stderr_kind"] = (
        "max distance from the approximation to the guaranteed bounds [lower, upper] (not a standard error)"
    )
    err = jnp.maximum(b.upper - b.variational, b.variational - b.lower)
    return Estimate(jnp.maximum(b.variational, 0.0), jnp.maximum(err, 0.0), "approximation", None, info)


def _check_targets(rtol: Any, atol: Any, max_num_samples: Any) -> None:
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and not value > 0:
            raise ValueError(f"Expected {name} to be positive; got {value!r}.")
    if max_num_samples is not None and (not isinstance(max_num_samples, int) or max_num_samples < 2):
        raise ValueError(f"Expected max_num_samples to be an int of at least 2; got {max_num_samples!r}.")


def _same_support(p: Any, q: Any) -> bool:
    """True if p and q have provably the same support (so E_p[q/p] = 1 for the control variate)."""
    sp, sq = getattr(p, "support", None), getattr(q, "support", None)
    if sp is None or sq is None or type(sp) is not type(sq):
        return False
    try:
        for attr in ("lower_bound", "upper_bound"):
            a, b = getattr(sp, attr, None), getattr(sq, attr, None)
            if (a is None) != (b is None) or (a is not None and not np.array_equal(np.asarray(a), np.asarray(b))):
                return False
    except Exception:  # traced bounds: cannot tell
        return False
    return True


def _check_event_shapes(p: Any, q: Any) -> None:
    ep, eq = getattr(p, "event_shape", None), getattr(q, "event_shape", None)
    if ep is not None and eq is not None and tuple(ep) != tuple(eq):
        raise ValueError(f"Expected p and q to have the same event shape; got {ep} and {eq}.")


def _closed(kind: str, p: Any, q: Any) -> jax.Array:
    if kind == "kl":
        return kl_closed_form(p, q)
    if kind == "cross_entropy":
        return cross_entropy_closed_form(p, q)
    return entropy_closed_form(p)


def _estimate(
    kind: str,
    p: Any,
    q: Any,
    *,
    method: str,
    key: Any,
    num_samples: int | None,
    epsabs: float | None,
    epsrel: float | None,
    chunk_size: int | None,
    control_variate: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
    max_num_samples: int | None = None,
) -> Estimate:
    _check_method(method)
    p, q = as_distribution(p), as_distribution(q)
    _check_density(p, "p")
    if kind != "entropy":
        _check_density(q, "q")
        _check_event_shapes(p, q)
    _check_options(num_samples, epsabs, epsrel, chunk_size)
    _check_targets(rtol, atol, max_num_samples)
    if control_variate and kind != "kl":
        raise ValueError(f"Expected control_variate=False for the {_NAMES[kind]}; the log-ratio control variate is for the KL.")
    name = _NAMES[kind]
    if method in ("variational", "bounds"):
        return _mixture_estimate(kind, p, q, method)

    reason = None  # why there is no closed form, kept in the estimate's info
    if method in ("auto", "closed_form"):
        exact, reason = _closed_form_stage(kind, p, q, method, name)
        if exact is not None:
            return exact
    quadrature_fits = supports_quadrature(p, q)
    if method == "quadrature" and not quadrature_fits:
        raise ValueError(
            "Expected scalar continuous distributions (event_shape == () and a support that is an "
            f"interval) for method='quadrature'; got {type(p).__name__}"
            + ("" if q is None else f" and {type(q).__name__}")
            + ". Use method='monte_carlo' with a key."
        )
    if method == "quadrature" or (method == "auto" and quadrature_fits):
        return _quadrature_stage(kind, p, q, epsabs, epsrel, reason)
    why = "" if method == "monte_carlo" else " (no closed form, and not scalar continuous for quadrature)"
    key = as_key(key, purpose=f"Monte Carlo estimate of the {name}{why}")
    return _monte_carlo_stage(kind, p, q, key, num_samples, chunk_size, control_variate, rtol, atol,
                              max_num_samples, reason)


def _closed_form_stage(kind: str, p: Any, q: Any, method: str, name: str) -> tuple[Estimate | None, str | None]:
    """(the exact value as an Estimate, None), or (None, why there is no closed form)."""
    if isinstance(p, Distribution) and (q is None or isinstance(q, Distribution)):
        try:
            value = _closed(kind, p, q)
        except NoClosedFormError as err:
            if method == "closed_form":
                raise
            return None, str(err).split(". Use")[0]
        return Estimate(value, jnp.zeros_like(value), "closed_form", None, {"exact": True}), None
    if method == "closed_form":
        raise NoClosedFormError(
            f"Closed forms exist only for numpyro distributions; got {type(p).__name__}"
            + ("" if q is None else f" and {type(q).__name__}")
            + f". Use method='monte_carlo' (or 'auto') for an estimated {name}."
        )
    return None, None


def _never_negative(kind: str, value: Any, info: dict, raw: str, reason: str | None) -> Any:
    """A KL clipped at 0 (its unclipped value kept in ``info[raw]``), and why no closed form ran."""
    if kind == "kl":
        info[raw] = value
        value = jnp.maximum(value, 0.0)
    if reason:
        info["reason"] = reason
    return value


def _quadrature_stage(kind: str, p: Any, q: Any, epsabs, epsrel, reason: str | None) -> Estimate:
    import quadax  # on first use: its import is 0.3 s

    r = integrate(kind, p, q, epsabs=epsabs, epsrel=epsrel)
    info = {
        "stderr_kind": _QUADRATURE_ERROR,
        "status": r.status,
        "status_message": str(quadax.STATUS(r.status)),
        "converged": r.status == 0,
        "breakpoints": r.breakpoints,
    }
    if r.diverges is not None:
        info.update(diverges=r.diverges, status_message=f"the integral diverges: {r.diverges}")
    return Estimate(_never_negative(kind, r.value, info, "raw_value", reason), r.err, "quadrature", r.neval, info)


def _monte_carlo_stage(kind: str, p: Any, q: Any, key, num_samples, chunk_size, control_variate, rtol, atol,
                       max_num_samples, reason: str | None) -> Estimate:
    n = DEFAULT_NUM_SAMPLES if num_samples is None else num_samples
    use_cv = bool(control_variate) and _same_support(p, q)
    r = moments(
        kind, p, q, key, num_samples=n, chunk_size=chunk_size, control_variate=use_cv, rtol=rtol, atol=atol,
        max_num_samples=max_num_samples,
    )
    value = r.mean
    info = {"stderr_kind": _MONTE_CARLO_ERROR, "chunk_size": r.chunk_size, "control_variate": use_cv}
    if control_variate and not use_cv:
        info["control_variate_skipped"] = "p and q do not have the same support, so E_p[q/p] = 1 is not known"
    if use_cv:
        info["stderr_kind"] = _CONTROL_VARIATE_ERROR
        info["coefficient"] = r.coefficient
    if r.target_met is not None:
        info.update(target_met=r.target_met, rounds=r.rounds, rtol=rtol, atol=atol)
        info["stopped"] = "target met" if r.target_met else "budget spent (max_num_samples) before the target"
    return Estimate(_never_negative(kind, value, info, "raw_mean", reason), r.stderr, "monte_carlo", r.num_samples, info)


def estimate_kl(
    p: Any,
    q: Any,
    *,
    method: str = "auto",
    key: Any = None,
    num_samples: int | None = None,
    epsabs: float | None = None,
    epsrel: float | None = None,
    chunk_size: int | None = None,
    control_variate: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
    max_num_samples: int | None = None,
) -> Estimate:
    """Estimate KL(p‖q) = E_p[log p(x) − log q(x)] for any two distributions, with its error.

    ``method="auto"`` uses the closed form where one is registered (exact, stderr 0); else
    adaptive quadrature of p(x)(log p(x) − log q(x)) over p's support for scalar continuous
    distributions (stderr: the estimated absolute error bound, with ``info["status"]``); else
    Monte Carlo over ``num_samples`` draws of p (stderr: s/√n). Where p's support is not inside
    q's the KL is +inf (decided from the supports for quadrature, from a draw with q = 0 for
    Monte Carlo).

    A KL is never reported below zero: quadrature and Monte Carlo values that come out slightly
    negative (noise or rounding around a true value near 0) are clipped at 0, and the unclipped
    number is kept in ``info["raw_value"]`` (quadrature) or ``info["raw_mean"]`` (Monte Carlo).

    Args:
        p, q: numpyro distributions with the same event shape and broadcastable batch shapes (or,
            for Monte Carlo, any objects with ``log_prob`` and, for p, ``sample(key, shape)``).
        method: ``"auto"``, ``"closed_form"``, ``"quadrature"`` or ``"monte_carlo"``; for
            Gaussian mixtures also ``"variational"`` (Hershey–Olsen approximation, method
            ``"approximation"``) and ``"bounds"`` (midpoint of guaranteed lower/upper bounds,
            method ``"bound"``); both put ``lower`` and ``upper`` in ``info`` and report as
            ``stderr`` a guaranteed error bound (see :mod:`kullback.measure._mixture`).
        key: an int seed or ``jax.random`` key; required when Monte Carlo is used.
        num_samples: Monte Carlo draws (default 100_000), made in chunks of bounded memory.
        epsabs, epsrel: quadrature tolerances (default 1e-10 in float64, 1e-5 in float32):
            the target is |error| ≤ max(epsabs, epsrel·|KL|).
        chunk_size: Monte Carlo draws per chunk (default: about 10⁶ values per chunk).
        control_variate: Monte Carlo with the log-ratio control variate (off by default: where q has
            heavier tails than p, r = q/p has infinite variance; for comparable tails, e.g. near-identical
            p and q): with v = log p − log q and E_p[r] = 1, mean(v) + c·mean(r − 1) is unbiased, c the
            variance-minimising −Cov(v, r)/Var(r) from the draws (``info["coefficient"]``).
            Used only where p and q provably share a support (else skipped, and ``info`` says so).
            KL only; the cross-entropy and entropy accept False.
        rtol, atol: a Monte Carlo target: rounds of ``num_samples`` draws are added until
            stderr ≤ max(atol, rtol·|value|) or ``max_num_samples`` (default 100·num_samples) are
            spent; ``info["target_met"]``, ``info["stopped"]`` and ``info["rounds"]`` say which.
        max_num_samples: the Monte Carlo budget for a target.

    Returns:
        An :class:`Estimate` with ``value`` and ``stderr`` over the broadcast batch shape,
        ``method``, ``num_samples`` (draws, or integrand evaluations for quadrature) and ``info``.

    Raises:
        NoClosedFormError: ``method="closed_form"`` for a pair without one.
        ValueError: unknown method, Monte Carlo without key, quadrature for a pair it cannot do.
        TypeError: p or q is not a distribution.

    Example:
        >>> import kullback as kb
        >>> import numpyro.distributions as dist
        >>> e = kb.estimate_kl(dist.Normal(0.0, 1.0), dist.Normal(1.0, 2.0))
        >>> e.method, round(float(e), 6)
        ('closed_form', 0.443147)
        >>> e = kb.estimate_kl(dist.Normal(0.0, 1.0), dist.StudentT(5.0))
        >>> e.method, bool(e.stderr < 1e-8)
        ('quadrature', True)
        >>> e = kb.estimate_kl(dist.Normal(0.0, 1.0), dist.Normal(1.0, 2.0), method="monte_carlo", key=0)
        >>> bool(abs(float(e) - 0.443147) < 4 * e.stderr)
        True
    """
    return _estimate("kl", p, q, method=method, key=key, num_samples=num_samples, epsabs=epsabs, epsrel=epsrel,
                     chunk_size=chunk_size, control_variate=control_variate, rtol=rtol, atol=atol,
                     max_num_samples=max_num_samples)


def estimate_cross_entropy(
    p: Any,
    q: Any,
    *,
    method: str = "auto",
    key: Any = None,
    num_samples: int | None = None,
    epsabs: float | None = None,
    epsrel: float | None = None,
    chunk_size: int | None = None,
    control_variate: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
    max_num_samples: int | None = None,
) -> Estimate:
    """Estimate the cross-entropy H(p, q) = −E_p[log q(x)] = H(p) + KL(p‖q), with its error.

    Methods, arguments and the meaning of ``stderr`` as in :func:`estimate_kl`; the value may be
    negative (differential cross-entropy) and is never clipped; +inf where p's support is not
    inside q's.

    Example:
        >>> import kullback as kb
        >>> import numpyro.distributions as dist
        >>> e = kb.estimate_cross_entropy(dist.Normal(0.0, 1.0), dist.Normal(1.0, 2.0))
        >>> e.method, round(float(e), 6)
        ('closed_form', 1.862086)
    """
    return _estimate(
        "cross_entropy",
        p,
        q,
        method=method,
        key=key,
        num_samples=num_samples,
        epsabs=epsabs,
        epsrel=epsrel,
        chunk_size=chunk_size,
        control_variate=control_variate,
        rtol=rtol,
        atol=atol,
        max_num_samples=max_num_samples,
    )


def estimate_entropy(
    p: Any,
    *,
    method: str = "auto",
    key: Any = None,
    num_samples: int | None = None,
    epsabs: float | None = None,
    epsrel: float | None = None,
    chunk_size: int | None = None,
    control_variate: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
    max_num_samples: int | None = None,
) -> Estimate:
    """Estimate the (differential) entropy H(p) = −E_p[log p(x)], with its error.

    Closed form where known (registered, or numpyro's own ``entropy``); else quadrature of
    −p log p over p's support for scalar continuous p; else Monte Carlo of −log p. Arguments as
    in :func:`estimate_kl`; the value may be negative and is never clipped.

    Example:
        >>> import kullback as kb
        >>> import numpyro.distributions as dist
        >>> e = kb.estimate_entropy(dist.Normal(0.0, 1.0), method="quadrature")
        >>> e.method, round(float(e), 6)
        ('quadrature', 1.418939)
    """
    return _estimate(
        "entropy", p, None, method=method, key=key, num_samples=num_samples, epsabs=epsabs, epsrel=epsrel,
        chunk_size=chunk_size,
        control_variate=control_variate,
        rtol=rtol,
        atol=atol,
        max_num_samples=max_num_samples,
    )
