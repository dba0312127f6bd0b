"""The one table of distribution names of the command line: ``kl`` and ``fit`` read it alike.

Plain data, no numpyro import: ``kullback --help`` lists the names without loading JAX. A row
names its numpyro class as a string; :func:`numpyro_class` and :func:`fit_family` look it up
on first use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["Name", "DISTRIBUTIONS", "ALIASES", "FIT_FAMILIES", "canonical", "numpyro_class", "fit_family"]


@dataclasses.dataclass(frozen=True)
class Name:
    """One distribution name: its numpyro class and the parameters a spec gives it.

    Attributes:
        cls: the class in ``numpyro.distributions``, e.g. ``"StudentT"``.
        params: the parameters in the order a spec such as ``student_t(3, 0, 1)`` gives them
            (each is also the class's keyword).
        defaults: values of parameters a spec may leave out.
        arrays: pass every parameter as a ``jax.numpy`` array (vector-valued distributions).
    """

    cls: str
    params: tuple[str, ...]
    defaults: Mapping[str, float] = dataclasses.field(default_factory=dict)
    arrays: bool = False


_LOC_SCALE = {"loc": 0.0, "scale": 1.0}

DISTRIBUTIONS: dict[str, Name] = {
    "normal": Name("Normal", ("loc", "scale"), _LOC_SCALE),
    "student_t": Name("StudentT", ("df", "loc", "scale"), _LOC_SCALE),
    "laplace": Name("Laplace", ("loc", "scale"), _LOC_SCALE),
    "cauchy": Name("Cauchy", ("loc", "scale"), _LOC_SCALE),
    "logistic": Name("Logistic", ("loc", "scale"), _LOC_SCALE),
    "gumbel": Name("Gumbel", ("loc", "scale"), _LOC_SCALE),
    "exponential": Name("Exponential", ("rate",), {"rate": 1.0}),
    "gamma": Name("Gamma", ("concentration", "rate"), {"rate": 1.0}),
    "inverse_gamma": Name("InverseGamma", ("concentration", "rate"), {"rate": 1.0}),
    "chi2": Name("Chi2", ("df",)),
    "beta": Name("Beta", ("concentration1", "concentration0")),
    "uniform": Name("Uniform", ("low", "high"), {"low": 0.0, "high": 1.0}),
    "lognormal": Name("LogNormal", ("loc", "scale"), _LOC_SCALE),
    "half_normal": Name("HalfNormal", ("scale",), {"scale": 1.0}),
    "half_cauchy": Name("HalfCauchy", ("scale",), {"scale": 1.0}),
    "weibull": Name("Weibull", ("scale", "concentration")),
    "pareto": Name("Pareto", ("scale", "alpha")),
    "von_mises": Name("VonMises", ("loc", "concentration")),
    "poisson": Name("Poisson", ("rate",)),
    "negative_binomial": Name("NegativeBinomial2", ("mean", "concentration")),
    "bernoulli": Name("BernoulliProbs", ("probs",)),
    "binomial": Name("BinomialProbs", ("total_count", "probs")),
    "geometric": Name("GeometricProbs", ("probs",)),
    "categorical": Name("CategoricalProbs", ("probs",), arrays=True),
    "dirichlet": Name("Dirichlet", ("concentration",), arrays=True),
    "mvn": Name("MultivariateNormal", ("loc", "covariance_matrix"), arrays=True),
}
ALIASES = {"gaussian": "normal", "t": "student_t", "studentt": "student_t", "log_normal": "lognormal",
           "halfnormal": "half_normal", "vonmises": "von_mises", "multivariate_normal": "mvn",
           "exp": "exponential", "invgamma": "inverse_gamma"}  # fmt: skip

# `kullback fit --family` names, in the order --help lists them: rows of DISTRIBUTIONS (or
# aliases), and three that free the location and scale of a row (kullback.families.LocScale).
_FREE_LOC_SCALE = {"gamma_loc": "gamma", "beta_4": "beta", "weibull_min": "weibull"}
FIT_FAMILIES = ("normal", "student_t", "cauchy", "laplace", "lognormal", "exponential", "gamma", "gamma_loc",
                "beta", "beta_4", "weibull", "weibull_min", "poisson", "negative_binomial", "multivariate_normal")


def canonical(name: str) -> str:
    """The row of :data:`DISTRIBUTIONS` that ``name`` (any case, or an alias) names; may be absent."""
    name = name.lower()
    return ALIASES.get(name, name)


def numpyro_class(name: str) -> type:
    """The numpyro class of the row ``name`` (a key of :data:`DISTRIBUTIONS` or an alias)."""
    import numpyro.distributions as dist

    return getattr(dist, DISTRIBUTIONS[canonical(name)].cls)


def fit_family(name: str) -> Any:
    """What ``kullback fit --family NAME`` fits: a numpyro class, or one with a free loc and scale.

    Raises:
        ValueError: ``name`` is not one of :data:`FIT_FAMILIES`.
    """
    if name not in FIT_FAMILIES:
        raise ValueError(f"Expected family to be one of {sorted(FIT_FAMILIES)}; got {name!r}.")
    if name in _FREE_LOC_SCALE:
        from ..families import LocScale

        return LocScale(numpyro_class(_FREE_LOC_SCALE[name]))
    return numpyro_class(name)
