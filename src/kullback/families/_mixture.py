"""Finite mixtures q_θ(x) = Σ_j π_j q_j(x) of one component family."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from ._base import AbstractFamily, Params
from ._gaussian import Gaussian
from ._resolve import as_family

__all__ = ["Mixture"]


@dataclasses.dataclass(frozen=True)
class Mixture(AbstractFamily):
    """A mixture of ``num_components`` members of one family: q(x) = Σ_j π_j q_{θ_j}(x).

    Forward fits run expectation–maximisation (in NumPy, from k-means++ starts with restarts;
    ``result.method == "em"``) where the component's weighted MLE is exact: :class:`Gaussian`
    components (``"full"``, ``"diag"`` or ``"spherical"`` covariance) and the numpyro classes
    ``Normal``, ``LogNormal``, ``MultivariateNormal``, ``Poisson``, ``Exponential``,
    ``BernoulliProbs``/``BernoulliLogits``, ``Laplace`` (weighted median) and ``Gamma`` (shape by
    Newton), with no fixed or bounded parameter. Any other component (``dist.StudentT``, ...) is
    fitted by L-BFGS on the mean negative log-likelihood from the same starts (``"lbfgs"``; the
    message says so). Unconstrained parameters:
    ``{"logits": (k,), "components": the component's parameters stacked on a leading axis k}``;
    constrained ones: ``weights`` π (k,) and each component parameter with a leading axis k.

    Args:
        component: the component family: a ``kb.families`` object or a numpyro class.
        num_components: k ≥ 1.

    Example:
        >>> import jax.numpy as jnp, kullback as kb
        >>> fam = kb.families.Mixture(kb.families.Gaussian(1), 2)
        >>> params = fam.from_constrained({"weights": jnp.array([0.5, 0.5]),
        ...                                "loc": jnp.array([[-1.0], [1.0]]), "scale": jnp.ones((2, 1))})
        >>> round(float(fam.distribution(params).log_prob(jnp.array([0.0]))), 6)
        -1.418939
    """

    component: Any
    num_components: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "component", as_family(self.component))
        k = self.num_components
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"Expected num_components to be a positive integer; got {k!r}.")

    @property
    def event_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return tuple(self.component.event_shape)

    @property
    def name(self) -> str:
        return f"Mixture({self.component.name}, {self.num_components})"

    @property
    def is_gaussian(self) -> bool:
        """``kb.families.Gaussian`` components (EM also runs for other components: see the class)."""
        return isinstance(self.component, Gaussian)

    def fit_data(self) -> None:
        """Marker: forward fits of mixtures run their own solvers (``kullback.fit._mixture``)."""

    def with_event_shape(self, event_shape: tuple[int, ...]) -> Mixture:
        return dataclasses.replace(self, component=self.component.with_event_shape(tuple(event_shape)))

    def distribution(self, params: Params) -> dist.Distribution:
        mixing = dist.Categorical(logits=params["logits"])
        return dist.MixtureSameFamily(mixing, self.component.distribution(params["components"]))

    def constrained(self, params: Params) -> dict[str, jax.Array]:
        out = {"weights": jax.nn.softmax(params["logits"])}
        out.update(jax.vmap(self.component.constrained)(params["components"]))
        return out

    def from_constrained(self, values: dict[str, Any]) -> Params:
        weights = jnp.asarray(values["weights"], dtype=float)
        rest = {k: jnp.asarray(v, dtype=float) for k, v in values.items() if k != "weights"}
        return {"logits": jnp.log(weights), "components": jax.vmap(self.component.from_constrained)(rest)}

    def stack(self, weights: Any, components: list[Params]) -> Params:
        """Parameters from weights (k,) and a list of k unconstrained component parameters."""
        return {"logits": jnp.log(jnp.asarray(weights, dtype=float)),
                "components": jax.tree_util.tree_map(lambda *a: jnp.stack(a), *components)}

    def init_from_data(self, data: jax.Array) -> Params:
        """Components started at evenly spaced quantiles of the first coordinate (no randomness);
        forward fits use k-means++ starts instead."""
        host = np.asarray(data, dtype=float)
        order = np.argsort(host.reshape(len(host), -1)[:, 0], kind="stable")
        parts = np.array_split(order, self.num_components)
        comps = [self.component.init_from_data(jnp.asarray(host[idx if len(idx) > 1 else order])) for idx in parts]
        return self.stack(np.full(self.num_components, 1.0 / self.num_components), comps)

    def init_at(self, center: jax.Array, scale: jax.Array) -> Params:
        comp = self.component.init_at(center, scale)
        return self.stack(np.full(self.num_components, 1.0 / self.num_components), [comp] * self.num_components)
