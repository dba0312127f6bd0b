"""Per-row log densities for the Newton passes, and the blocked passes that sum their derivatives.

A Newton iteration on n rows needs f = −Σ w_i ℓ(θ, x_i), ∇f and ∇²f. Each pass takes the rows in
blocks of BLOCK (a loop; a block's intermediates stay in cache) and differentiates the block's
weighted sum: ∇ by reverse mode, ∇² by forward mode over it (jacfwd of grad), so XLA fuses the
per-row work of a block into a few loops and no per-row Hessian is ever stored.

The cost of a pass is set by how ℓ is written: its derivatives repeat its transcendental
functions. For a few numpyro classes, ℓ is rewritten here in a form whose derivatives share them
(the same values as numpyro's ``log_prob`` to rounding; a test checks it):

    Weibull(k, λ):   log k − k log λ + (k − 1) u − exp(k (u − log λ)),   u = log v
    Gamma(α, β):     (α − 1) log v − β v − log Γ(α) + α log β
    Beta(α, β):      (α − 1) log v + (β − 1) log(1 − v) − log B(α, β)
    StudentT(ν, μ, σ): −(ν + 1)/2 · log(1 + y²/ν) − log σ − ½ log(νπ) − log Γ(ν/2) + log Γ((ν + 1)/2)

each also under an affine map x = loc + scale · v (``LocScale``: ℓ = log p_V((x − loc)/scale) − log
scale) and with ``Independent`` event dimensions summed. Any other distribution uses its own
``log_prob`` unchanged. The parameter-only terms are split off and added once per pass; log Γ
there has derivatives ψ and a short trigamma series (cheaper to compile than jax's polygamma).
log B keeps jax's ``betaln`` and its autodiff derivatives: they agree with numpyro's value, which
for an argument ≥ 8 is off by up to ~1e-7 from the exact log B.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import betaln, digamma, gammaln, xlogy
from numpyro.distributions.transforms import AffineTransform

from ..families import AbstractFamily

__all__ = ["FastRowLogDensity", "split_log_prob", "pass_derivatives", "BLOCK"]

BLOCK = 1024  # rows per block of a pass (measured: 1024 beats 256–16384 for these densities)


def _trigamma(x: jax.Array) -> jax.Array:
    """ψ′(x) for x > 0: ψ′(x) = Σ_{k<10} 1/(x+k)² + ψ′(x+10), the last by its asymptotic series
    (relative error below 1e-12). Only Hessians use it: cheaper to compile than jax's polygamma."""
    shift = sum(1.0 / (x + k) ** 2 for k in range(10))
    y = x + 10.0
    r = 1.0 / (y * y)
    series = (1.0 + (0.5 + (1.0 / 6 + (-1.0 / 30 + (1.0 / 42 + (-1.0 / 30 + 5.0 / 66 * r) * r) * r) * r) / y) / y) / y
    return shift + series


@jax.custom_jvp
def _digamma(x):
    return digamma(x)


@_digamma.defjvp
def _digamma_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _digamma(x), _trigamma(x) * t


@jax.custom_jvp
def _lgamma(x):
    """log Γ(x) (jax's value) whose derivatives are ψ (jax's) and the ψ′ above."""
    return gammaln(x)


@_lgamma.defjvp
def _lgamma_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _lgamma(x), _digamma(x) * t


def _weibull(q: dist.Weibull, v: jax.Array) -> tuple[jax.Array, jax.Array]:
    k, log_lam = q.concentration, jnp.log(q.scale)
    u = jnp.log(v)
    return (k - 1.0) * u - jnp.exp(k * (u - log_lam)), jnp.log(k) - k * log_lam


def _gamma(q: dist.Gamma, v: jax.Array) -> tuple[jax.Array, jax.Array]:
    a, rate = q.concentration, q.rate
    return xlogy(a - 1.0, v) - rate * v, a * jnp.log(rate) - _lgamma(a)


def _beta(q: dist.Beta, v: jax.Array) -> tuple[jax.Array, jax.Array]:
    a, b = q.concentration1, q.concentration0
    return (a - 1.0) * jnp.log(v) + (b - 1.0) * jnp.log1p(-v), -betaln(a, b)


def _student_t(q: dist.StudentT, v: jax.Array) -> tuple[jax.Array, jax.Array]:
    df = q.df
    y = (v - q.loc) / q.scale
    const = jnp.log(q.scale) + 0.5 * jnp.log(df * jnp.pi) + _lgamma(0.5 * df) - _lgamma(0.5 * (df + 1.0))
    return -0.5 * (df + 1.0) * jnp.log1p(y * y / df), -const


_FORMS = {dist.Weibull: _weibull, dist.Gamma: _gamma, dist.Beta: _beta, dist.StudentT: _student_t}


def split_log_prob(q: dist.Distribution, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """log q(x) = terms + const for rows x: ``terms`` per row, ``const`` a scalar that depends on
    the parameters only (so a pass adds it once, not once per block). The rewritten forms above
    where one applies, else q.log_prob(x) and 0."""
    fallback = lambda: (q_given.log_prob(x_given), jnp.zeros((), x_given.dtype))  # noqa: E731
    q_given, x_given, ndims = q, x, 0
    if isinstance(q, dist.Independent):
        ndims, q = q.reinterpreted_batch_ndims, q.base_dist
    shift = 0.0
    if isinstance(q, dist.TransformedDistribution):
        if len(q.transforms) != 1 or not isinstance(q.transforms[0], AffineTransform) or q.base_dist.event_shape:
            return fallback()
        t, q = q.transforms[0], q.base_dist
        x = (x - t.loc) / t.scale
        shift = -jnp.log(jnp.abs(t.scale))
    form = _FORMS.get(type(q))
    if form is None or q.event_shape:
        return fallback()
    terms, const = form(q, x)
    event = x.shape[x.ndim - ndims :]
    const = jnp.sum(jnp.broadcast_to(const + shift, jnp.broadcast_shapes(jnp.shape(const + shift), event)))
    return (jnp.sum(terms, axis=tuple(range(-ndims, 0))) if ndims else terms), const


class FastRowLogDensity:
    """ℓ(θ, x) = log q_θ(x) for rows x (hashable: equal for equal families), in a rewritten form
    when one exists (see the module docstring), else by ``q.log_prob``."""

    def __init__(self, family: AbstractFamily) -> None:
        self.family = family

    def split(self, params: Any, rows: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(per-row terms, parameter-only constant): see :func:`split_log_prob`."""
        return split_log_prob(self.family.distribution(params), rows)

    def __call__(self, params: Any, rows: jax.Array) -> jax.Array:
        terms, const = self.split(params, rows)
        return terms + const

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FastRowLogDensity) and other.family == self.family

    def __hash__(self) -> int:
        return hash((FastRowLogDensity, self.family))


def _terms_nll(row_log_density, unravel, x, rows, w):
    terms, _ = row_log_density.split(unravel(x), rows)
    return -jnp.dot(w, jnp.where(w > 0, terms, 0.0))


def _value_grad_hess(fun):
    """f, ∇f, ∇²f of a scalar function of a flat vector: forward mode over reverse mode."""

    def grad_and_aux(x):
        value, grad = jax.value_and_grad(fun)(x)
        return grad, (value, grad)

    def all_three(x):
        hess, (value, grad) = jax.jacfwd(grad_and_aux, has_aux=True)(x)
        return value, grad, hess

    return all_three


def _pass(derivative, row_log_density, unravel, x, sources, src):
    """``derivative`` (a map from a scalar function to its value or derivatives) of
    f(θ) = −Σ_i w_i ℓ(θ, x_i) over the rows of ``sources[src]``, summed block by block.

    ``sources``: (data, weights) pairs; ``src`` may be traced: each block is read from the chosen
    source, so one compiled body serves all of them. Block i covers rows [min(i·B, n − B), +B)
    with the weights of rows before i·B set to 0: every block has B rows (B = the fewest rows of
    any source, at most BLOCK) and no padded copy of the data is made; the last block overlaps
    its neighbour instead of running past the end. The parameter-only part of ℓ is added once."""
    sizes = [data.shape[0] for data, _ in sources]
    block = min(BLOCK, *sizes)

    def pick(values):
        return values[0] if len(values) == 1 else jax.lax.select_n(jnp.asarray(src, jnp.int32), *values)

    n = pick([jnp.asarray(size) for size in sizes])
    total_weight = pick([jnp.sum(w) for _, w in sources])

    def const_nll(x):
        _, const = row_log_density.split(unravel(x), sources[0][0][:1])
        return -const * total_weight

    def add_block(i, acc):
        start = jnp.minimum(i * block, n - block)
        rows = pick([jax.lax.dynamic_slice_in_dim(data, start, block) for data, _ in sources])
        w = pick([jax.lax.dynamic_slice_in_dim(w, start, block) for _, w in sources])
        w = jnp.where(start + jnp.arange(block) >= i * block, w, 0.0)
        sums = derivative(lambda x: _terms_nll(row_log_density, unravel, x, rows, w))(x)
        return jax.tree.map(jnp.add, acc, sums)

    total = derivative(const_nll)(x)
    if len(sources) == 1 and sizes[0] == block:
        return add_block(0, total)
    return jax.lax.fori_loop(0, (n + block - 1) // block, add_block, total)


def pass_derivatives(row_log_density, unravel, x, sources, src=0):
    """f, ∇f, ∇²f of f(θ) = −Σ_i w_i ℓ(θ, x_i) at the flat parameters x, in one pass over the
    rows of ``sources[src]`` (a tuple of (data, weights) pairs)."""
    return _pass(_value_grad_hess, row_log_density, unravel, x, sources, src)
