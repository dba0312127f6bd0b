"""Public ``kl`` / ``cross_entropy`` / ``entropy``: probability arrays or distributions."""

from __future__ import annotations

from typing import Any

import jax
from numpyro.distributions import Distribution

from ..distributed._measure import dask_dispatch
from . import _closed_form, _discrete

__all__ = ["kl", "cross_entropy", "entropy"]


def _is_distribution(x: Any) -> bool:
    return isinstance(x, Distribution)


def _no_scipy(**named: Any) -> None:
    """A frozen scipy.stats distribution has no closed form here: say where it is accepted."""
    from ._scipy import is_scipy_frozen

    for name, x in named.items():
        if is_scipy_frozen(x):
            raise TypeError(
                f"Expected {name} to be a probability array or a numpyro distribution; got a frozen scipy.stats "
                f"distribution ({type(x).__name__}). kb.estimate_kl / kb.estimate_cross_entropy / "
                "kb.estimate_entropy accept it (quadrature or Monte Carlo, with an error), or pass the numpyro "
                "equivalent (e.g. numpyro.distributions.Normal(0, 1) for scipy.stats.norm(0, 1)) for a closed form."
            )


def _check_pair(p: Any, q: Any) -> bool:
    _no_scipy(p=p, q=q)
    dp, dq = _is_distribution(p), _is_distribution(q)
    if dp != dq:
        raise TypeError(
            "Expected p and q to be both probability arrays or both numpyro distributions; "
            f"got {type(p).__name__} and {type(q).__name__}."
        )
    return dp


@dask_dispatch(__name__, "kl", 2)  # Dask arrays: per block of rows (kullback.distributed)
def kl(p: Any, q: Any, *, axis: int = -1, base: float | None = None, normalize: bool = False, where: Any = None) -> jax.Array:
    """KL(p‖q) = E_p[log p − log q]: exact, between probability arrays or two distributions.

    With probability arrays (outcomes along ``axis``) this is Σ p log(p/q), validated and computed
    in a form that is never negative (see :mod:`kullback.measure`). With numpyro distributions it
    is the closed form for the pair, batched over their batch shapes; a pair without one raises
    :class:`kullback.NoClosedFormError`, which points to :func:`kullback.estimate_kl`.

    Args:
        p, q: probability arrays of shape ``(..., n)``, or numpyro distributions.
        axis: the outcome axis of probability arrays (ignored for distributions).
        base: logarithm base (``None`` for nats, 2 for bits).
        normalize: for arrays, divide counts by their sum instead of requiring sums of 1.
        where: for arrays, a boolean mask of outcomes to keep (as if the others were sliced away).

    Returns:
        KL(p‖q) in nats (or ``base`` units) over the broadcast batch shape; +inf where the support
        of p is not inside that of q.

    Example:
        >>> import kullback as kb
        >>> import numpyro.distributions as dist
        >>> round(float(kb.kl(dist.Normal(0.0, 1.0), dist.Normal(1.0, 2.0))), 6)
        0.443147
        >>> round(float(kb.kl([0.2, 0.8], [0.5, 0.5], base=2)), 6)
        0.278072
    """
    if _check_pair(p, q):
        return _discrete._scale(_closed_form.kl_closed_form(p, q), base)
    return _discrete.kl(p, q, axis=axis, base=base, normalize=normalize, where=where)


@dask_dispatch(__name__, "cross_entropy", 2)  # Dask arrays: per block of rows (kullback.distributed)
def cross_entropy(
    p: Any, q: Any, *, axis: int = -1, base: float | None = None, normalize: bool = False, where: Any = None
) -> jax.Array:
    """Cross-entropy H(p, q) = −E_p[log q] = H(p) + KL(p‖q), for arrays or distributions.

    Example:
        >>> import kullback as kb
        >>> import numpyro.distributions as dist
        >>> round(float(kb.cross_entropy(dist.Normal(0.0, 1.0), dist.Normal(0.0, 1.0))), 6)
        1.418939
    """
    if _check_pair(p, q):
        return _discrete._scale(_closed_form.cross_entropy_closed_form(p, q), base)
    return _discrete.cross_entropy(p, q, axis=axis, base=base, normalize=normalize, where=where)


@dask_dispatch(__name__, "entropy", 1)  # Dask arrays: per block of rows (kullback.distributed)
def entropy(p: Any, *, axis: int = -1, base: float | None = None, normalize: bool = False, where: Any = None) -> jax.Array:
    """Entropy H(p) = −E_p[log p] (differential entropy for continuous distributions).

    Example:
        >>> import kullback as kb
        >>> round(float(kb.entropy([0.25, 0.25, 0.25, 0.25], base=2)), 6)
        2.0
    """
    _no_scipy(p=p)
    if _is_distribution(p):
        return _discrete._scale(_closed_form.entropy_closed_form(p), base)
    return _discrete.entropy(p, axis=axis, base=base, normalize=normalize, where=where)
