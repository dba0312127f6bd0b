"""A normalising-flow family for reverse fits: numpyro's inverse autoregressive flows, then an affine layer."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.example_libraries import stax
from jax.flatten_util import ravel_pytree
from numpyro.distributions.flows import InverseAutoregressiveTransform
from numpyro.distributions.transforms import AffineTransform, IndependentTransform, PermuteTransform
from numpyro.nn import AutoregressiveNN

from ._base import AbstractFamily, Params, base_normals, check_positive_ints

__all__ = ["Flow"]

ACTIVATIONS = {"tanh": stax.Tanh, "elu": stax.Elu}

# (x, params, log q(x)) of the last Flow.draws call: Flow.entropy of exactly those draws reuses it


@functools.lru_cache(maxsize=None)
def _made(dim: int, hidden_dims: tuple[int, ...], activation: str) -> tuple[Any, Any]:
    """numpyro's MADE network (init_fn, apply_fn), built once per shape (its masks are constants)."""
    with jax.ensure_compile_time_eval():
        return AutoregressiveNN(dim, list(hidden_dims), permutation=jnp.arange(dim), skip_connections=True,
                                nonlinearity=ACTIVATIONS[activation])


@dataclasses.dataclass(frozen=True)
class _Net:
    """A hashable handle on one MADE shape: the static part of an IAF layer."""

    dim: int
    hidden_dims: tuple[int, ...]
    activation: str

    def init(self, key: jax.Array) -> Any:
        return _made(self.dim, self.hidden_dims, self.activation)[0](key, (self.dim,))[1]

    def __call__(self, weights: Any, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return _made(self.dim, self.hidden_dims, self.activation)[1](weights, x)


class _IAF(InverseAutoregressiveTransform):
    """numpyro's IAF with the network weights as pytree leaves (so q can leave a jitted function)."""

    def __init__(self, net: _Net, weights: Any) -> None:
        self.net, self.weights = net, weights
        self.log_scale_min_clip, self.log_scale_max_clip = -5.0, 3.0

    @property
    def arn(self) -> Any:  # the parent's autoregressive network, (mean, log_scale) = arn(x)
        return functools.partial(self.net, self.weights)

    def tree_flatten(self):
        return (self.weights, self.log_scale_min_clip, self.log_scale_max_clip), (
            ("weights", "log_scale_min_clip", "log_scale_max_clip"), {"net": self.net})

    def eq(self, other: object, static: bool = False) -> Any:
        return self is other


@functools.lru_cache(maxsize=64)
def _identity_layers(net: _Net, num_layers: int, seed: int) -> tuple:
    """Concrete initial weights (constants inside any trace), computed once per shape and seed."""
    with jax.ensure_compile_time_eval():
        layers = []
        for key in jax.random.split(jax.random.PRNGKey(seed), num_layers):
            _, (main, skip), _ = net.init(key)  # stax: FanOut, parallel(main, skip), FanInSum
            main = list(main)
            main[-1] = jax.tree.map(jnp.zeros_like, main[-1])
            layers.append(((), (tuple(main), jnp.zeros_like(skip)), ()))
        return tuple(layers)


@dataclasses.dataclass(frozen=True)
class Flow(AbstractFamily):
    """q_θ = the law of x = μ + σ ⊙ f_K ∘ … ∘ f_1(ε), ε ~ N(0, I_d): an inverse autoregressive flow.

    Each layer f_k is numpyro's ``InverseAutoregressiveTransform``, z ↦ m(z) + exp(s(z)) ⊙ z with
    (m, s) from a masked autoregressive network (``numpyro.nn.AutoregressiveNN``, MADE, with its
    linear skip connections) so that coordinate i depends on z_<i only; the coordinate order is
    reversed between layers, as in numpyro's ``AutoIAFNormal``. Then
        log q(x) = log N(ε; 0, I) − Σ_k Σ_i s_k,i − Σ_i log σ_i.
    The output and skip weights of every network start at zero, so each f_k starts as the
    identity and the flow as the diagonal Gaussian N(μ, diag σ²) (``init_at``). The skip
    connections make m linear when the hidden units are off: the flow contains every Gaussian
    (a triangular affine map), and more.

    Draws are reparameterised and cheap (one network pass per layer). log q at a given x inverts
    each layer by d network passes (numpyro's fixed-point inverse, exact for autoregressive
    maps): the entropy −mean log q on draws, and PSIS diagnostics, cost O(d) passes. Meant for
    small to moderate d. q has no closed-form mean or variance (use ``FitResult.draws``).

    Unconstrained parameters: ``{"loc": μ, "log_scale": log σ, "layers": (network weights, …)}``;
    constrained ones (``FitResult.params``): ``loc``, ``scale`` and ``weights`` (all network
    weights, flattened).

    Args:
        dim: the dimension d ≥ 1 of x.
        num_layers: the number K ≥ 1 of IAF layers.
        hidden_dims: hidden layer sizes of each network (each ≥ d); default ``(max(16, 2d),)``.
        activation: ``"tanh"`` (smooth, the default; suits L-BFGS) or ``"elu"``.
        seed: the seed of the hidden layers' random initial weights.

    Example:
        >>> import jax.numpy as jnp
        >>> from kullback.families import Flow
        >>> f = Flow(2, num_layers=2, hidden_dims=(8,))
        >>> params = f.init_at(jnp.array([1.0, -1.0]), jnp.array([2.0, 0.5]))
        >>> q = f.distribution(params)                   # starts as N(μ, diag σ²)
        >>> round(float(q.log_prob(jnp.array([1.0, -1.0]))), 6)    # −log(2π · 2 · 0.5)
        -1.837877
        >>> f == Flow(2, num_layers=2, hidden_dims=[8]), q.event_shape
        (True, (2,))
    """

    dim: int
    num_layers: int = 2
    hidden_dims: tuple[int, ...] | None = None
    activation: str = "tanh"
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive_ints(self, "dim", "num_layers")
        hidden = (max(16, 2 * self.dim),) if self.hidden_dims is None else self.hidden_dims
        try:
            hidden = tuple(hidden)
        except TypeError:
            hidden = (hidden,)
        if not hidden or not all(isinstance(h, int) and not isinstance(h, bool) and h >= self.dim for h in hidden):
            raise ValueError(
                f"Expected hidden_dims to be a non-empty sequence of integers ≥ dim = {self.dim} (a MADE "
                f"network needs a unit per input coordinate); got {self.hidden_dims!r}."
            )
        object.__setattr__(self, "hidden_dims", hidden)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"Expected activation to be one of {tuple(ACTIVATIONS)}; got {self.activation!r}.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"Expected seed to be an integer; got {self.seed!r}.")

    @property
    def event_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return (self.dim,)

    @property
    def name(self) -> str:
        return f"Flow({self.dim}, num_layers={self.num_layers}, hidden_dims={self.hidden_dims})"

    @property
    def _net(self) -> _Net:
        return _Net(self.dim, tuple(self.hidden_dims or ()), self.activation)

    def _identity_layers(self) -> tuple:
        """Random hidden weights from ``seed``, zero output and skip weights: identity layers."""
        return _identity_layers(self._net, self.num_layers, self.seed)

    def _transforms(self, params: Params) -> list:
        reverse = jnp.arange(self.dim)[::-1]
        out: list = []
        for k, weights in enumerate(params["layers"]):
            if k:
                out.append(PermuteTransform(reverse))
            out.append(_IAF(self._net, weights))
        out.append(IndependentTransform(AffineTransform(params["loc"], jnp.exp(params["log_scale"])), 1))
        return out

    def distribution(self, params: Params) -> dist.Distribution:
        base = dist.Normal(jnp.zeros(self.dim), 1.0).to_event(1)
        return dist.TransformedDistribution(base, self._transforms(params))

    def constrained(self, params: Params) -> dict[str, jax.Array]:
        return {"loc": params["loc"], "scale": jnp.exp(params["log_scale"]),
                "weights": ravel_pytree(params["layers"])[0]}

    def from_constrained(self, values: dict[str, Any]) -> Params:
        loc = jnp.broadcast_to(jnp.asarray(values["loc"], dtype=float), (self.dim,))
        scale = jnp.broadcast_to(jnp.asarray(values["scale"], dtype=float), (self.dim,))
        layers = self._identity_layers()
        if values.get("weights") is not None:
            flat, unravel = ravel_pytree(layers)
            weights = jnp.asarray(values["weights"], dtype=float)
            if weights.shape != flat.shape:
                raise ValueError(f"Expected weights of shape {flat.shape} for {self.name}; got {weights.shape}.")
            layers = unravel(weights)
        return {"loc": loc, "log_scale": jnp.log(scale), "layers": layers}

    def init_from_data(self, data: jax.Array) -> Params:
        return self.init_at(jnp.mean(data, axis=0), jnp.std(data, axis=0))

    def init_at(self, center: jax.Array, scale: jax.Array) -> Params:
        """The diagonal Gaussian N(center, diag scale²): identity layers after that affine map."""
        return self.from_constrained({"loc": center, "scale": scale})

    def base_noise(self, key: jax.Array, num: int, *, standardize: bool) -> jax.Array:
        return base_normals(key, (num, self.dim), standardize=standardize)

    def draws_and_log_prob(self, params: Params, noise: jax.Array, num: int) -> tuple[jax.Array, jax.Array]:
        """x = T_θ(ε) for base draws ε = ``noise``, and log q(x) = log N(ε) − log|det ∂T/∂ε| from the
        same forward pass (the reverse-fit objective uses it instead of inverting the flow)."""
        x = noise
        log_q = dist.Normal(0.0, 1.0).log_prob(noise).sum(-1)
        for t in self._transforms(params):
            y, inter = t.call_with_intermediates(x)
            log_q = log_q - t.log_abs_det_jacobian(x, y, inter)
            x = y
        return x, log_q

    def draws(self, params: Params, noise: jax.Array, num: int) -> jax.Array:
        """x = T_θ(ε) for base draws ε = ``noise``."""
        return self.draws_and_log_prob(params, noise, num)[0]

    def entropy(self, params: Params, x: jax.Array) -> jax.Array:
        """−mean log q(x) on draws ``x`` from q (no closed form for a flow; inverts the flow, d passes
        a layer; the reverse-fit objective avoids that through :meth:`draws_and_log_prob`)."""
        return -jnp.mean(self.distribution(params).log_prob(x))
