"""Closed forms for pairs of scalar continuous distributions of the same family.

Each KL is written, where it can be, as a sum of non-negative terms built from
φ(t) = eᵗ − 1 − t ≥ 0, so that near-identical pairs give small non-negative values:

    Exponential(a) ‖ Exponential(b):  φ(log b/a)
    HalfNormal(s) ‖ HalfNormal(t):    ½ φ(2 log s/t)
    Laplace(m, b) ‖ Laplace(n, c):    φ(log b/c) + (b/c) φ(−|m − n|/b)
    Pareto(s, a) ‖ Pareto(t, c):      c log(s/t) + φ(log c/a)          (+inf where s < t)
    Cauchy(m, g) ‖ Cauchy(n, h):      log1p(((g − h)² + (m − n)²) / (4gh))
    LogNormal ‖ LogNormal:            the KL of the underlying normals
    Uniform(a, b) ‖ Uniform(c, d):    log((d − c)/(b − a))               (+inf unless [a, b] ⊂ [c, d])

and, less compactly, Gamma, Beta, Gumbel, Weibull and von Mises (formulas at each function).
Entropies are added for the families numpyro has none for (Gumbel, HalfNormal, von Mises).

References: Gil, Alajaji & Linder, "Rényi divergence measures for commonly used univariate
continuous distributions", Information Sciences 249 (2013); Bauckhage, "Computing the KL
divergence between two Weibull distributions", arXiv:1310.3713; Kitagawa & Rowley, "von Mises-
Fisher distributions and their statistical divergence", arXiv:2202.05192.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln, i0e, i1e
from numpyro.distributions import (
    Beta,
    Cauchy,
    Exponential,
    Gamma,
    Gumbel,
    HalfNormal,
    Laplace,
    LogNormal,
    Pareto,
    Poisson,
    StudentT,
    Uniform,
    VonMises,
    Weibull,
)

from .._special import beta_entropy, betaln, digamma_half_difference, stirling_remainder, t_normaliser
from ._discrete import log_ratio, phi
from ._gaussian_forms import normal_kl
from ._registry import register_entropy, register_kl

__all__ = [
    "exponential_kl",
    "gamma_kl",
    "beta_kl",
    "laplace_kl",
    "gumbel_kl",
    "weibull_kl",
    "von_mises_kl",
    "cauchy_kl",
    "pareto_kl",
    "uniform_kl",
]

EULER_GAMMA = 0.5772156649015329


def _a(x: jax.Array) -> jax.Array:
    return jnp.asarray(x)


def exponential_kl(rate_p: jax.Array, rate_q: jax.Array) -> jax.Array:
    """KL(Exp(a) ‖ Exp(b)) = b/a − 1 − log(b/a) = φ(log b/a).

    Example:
        >>> round(float(exponential_kl(1.0, 2.0)), 6)
        0.306853
    """
    return phi(log_ratio(_a(rate_q), _a(rate_p)))


def gamma_kl(conc_p: jax.Array, rate_p: jax.Array, conc_q: jax.Array, rate_q: jax.Array) -> jax.Array:
    """KL(Gamma(α, β) ‖ Gamma(a, b)) (rates), with t = log(b/β):

        log Γ(a) − log Γ(α) + (α − a)ψ(α) + a log(β/b) + α(b − β)/β
          = [log Γ(a) − log Γ(α) − (a − α)ψ(α)] + α φ(t) + (α − a) t.

    Example:
        >>> round(float(gamma_kl(2.0, 1.0, 3.0, 2.0)), 6)
        0.190921
    """
    conc_p, rate_p, conc_q, rate_q = map(_a, (conc_p, rate_p, conc_q, rate_q))
    t = log_ratio(rate_q, rate_p)  # log b/β
    shape_part = gammaln(conc_q) - gammaln(conc_p) - (conc_q - conc_p) * digamma(conc_p)
    return shape_part + conc_p * phi(t) + (conc_p - conc_q) * t


def beta_kl(a_p: jax.Array, b_p: jax.Array, a_q: jax.Array, b_q: jax.Array) -> jax.Array:
    """KL(Beta(α, β) ‖ Beta(a, b)) = log B(a, b) − log B(α, β) + (α − a)ψ(α) + (β − b)ψ(β)
    + (a − α + b − β)ψ(α + β).

    Example:
        >>> round(float(beta_kl(2.0, 3.0, 1.0, 1.0)), 6)
        0.234907
    """
    a_p, b_p, a_q, b_q = map(_a, (a_p, b_p, a_q, b_q))
    value = (
        betaln(a_q, b_q)
        - betaln(a_p, b_p)
        + (a_p - a_q) * digamma(a_p)
        + (b_p - b_q) * digamma(b_p)
        + (a_q - a_p + b_q - b_p) * digamma(a_p + b_p)
    )
    return jnp.maximum(value, 0.0)


def laplace_kl(loc_p: jax.Array, scale_p: jax.Array, loc_q: jax.Array, scale_q: jax.Array) -> jax.Array:
    """KL(Laplace(m, b) ‖ Laplace(n, c)) = φ(log b/c) + (b/c)·φ(−|m − n|/b).

    Example:
        >>> round(float(laplace_kl(0.0, 1.0, 1.0, 2.0)), 6)
        0.377087
    """
    loc_p, scale_p, loc_q, scale_q = map(_a, (loc_p, scale_p, loc_q, scale_q))
    t = log_ratio(scale_p, scale_q)
    return phi(t) + jnp.exp(t) * phi(-jnp.abs(loc_p - loc_q) / scale_p)


def gumbel_kl(loc_p: jax.Array, scale_p: jax.Array, loc_q: jax.Array, scale_q: jax.Array) -> jax.Array:
    """KL(Gumbel(m, b) ‖ Gumbel(n, c)) with r = b/c, δ = (m − n)/c:

        −log r + γ(r − 1) + δ + e^{−δ} Γ(1 + r) − 1.

    Example:
        >>> round(float(gumbel_kl(0.0, 1.0, 1.0, 2.0)), 6)
        0.365681
    """
    loc_p, scale_p, loc_q, scale_q = map(_a, (loc_p, scale_p, loc_q, scale_q))
    log_r = log_ratio(scale_p, scale_q)
    r = jnp.exp(log_r)
    delta = (loc_p - loc_q) / scale_q
    # δ + e^{−δ}Γ(1+r) − 1 = φ(−δ + lgamma(1+r)) + lgamma(1+r)
    lg = gammaln(1.0 + r)
    value = -log_r + EULER_GAMMA * (r - 1.0) + phi(lg - delta) + lg
    return jnp.maximum(value, 0.0)


def weibull_kl(
    scale_p: jax.Array, conc_p: jax.Array, scale_q: jax.Array, conc_q: jax.Array
) -> jax.Array:
    """KL(Weibull(λ, k) ‖ Weibull(μ, m)) (scale, concentration):

        log(k/m) − m log(λ/μ) − γ(k − m)/k + (λ/μ)^m Γ(1 + m/k) − 1
          = log(k/m) − γ(k − m)/k + log Γ(1 + m/k) + φ(m log(λ/μ) + log Γ(1 + m/k)).

    Example:
        >>> round(float(weibull_kl(1.0, 2.0, 1.5, 1.0)), 6)
        0.400822
    """
    lam, k, mu, m = map(_a, (scale_p, conc_p, scale_q, conc_q))
    log_rho = log_ratio(lam, mu)  # log λ/μ
    lg = gammaln(1.0 + m / k)
    s = m * log_rho + lg
    value = jnp.log(k / m) - EULER_GAMMA * (k - m) / k + phi(s) + lg
    return jnp.maximum(value, 0.0)


def von_mises_kl(loc_p: jax.Array, conc_p: jax.Array, loc_q: jax.Array, conc_q: jax.Array) -> jax.Array:
    """KL(vM(μ, κ) ‖ vM(ν, λ)) = log I₀(λ) − log I₀(κ) + A(κ)(κ − λ cos(μ − ν)), A = I₁/I₀.

    Exponentially scaled Bessel functions keep large concentrations finite.

    Example:
        >>> round(float(von_mises_kl(0.0, 2.0, 1.0, 1.0)), 6)
        0.430461
    """
    mu, kappa, nu, lam = map(_a, (loc_p, conc_p, loc_q, conc_q))
    a = i1e(kappa) / i0e(kappa)
    log_i0_ratio = jnp.log(i0e(lam)) - jnp.log(i0e(kappa)) + (lam - kappa)
    # λ − λcos(Δ) = 2λ sin²(Δ/2) keeps the near-identical case accurate
    value = log_i0_ratio + a * (kappa - lam) + a * 2.0 * lam * jnp.sin(0.5 * (mu - nu)) ** 2
    return jnp.maximum(value, 0.0)


def cauchy_kl(loc_p: jax.Array, scale_p: jax.Array, loc_q: jax.Array, scale_q: jax.Array) -> jax.Array:
    """KL(Cauchy(m, g) ‖ Cauchy(n, h)) = log1p(((g − h)² + (m − n)²)/(4gh)) (symmetric).

    Example:
        >>> round(float(cauchy_kl(0.0, 1.0, 1.0, 2.0)), 6)
        0.223144
    """
    m, g, n, h = map(_a, (loc_p, scale_p, loc_q, scale_q))
    return jnp.log1p(((g - h) ** 2 + (m - n) ** 2) / (4.0 * g * h))


def pareto_kl(scale_p: jax.Array, alpha_p: jax.Array, scale_q: jax.Array, alpha_q: jax.Array) -> jax.Array:
    """KL(Pareto(s, a) ‖ Pareto(t, c)) = c log(s/t) + φ(log c/a) where s ≥ t, else +inf.

    Example:
        >>> round(float(pareto_kl(2.0, 3.0, 1.0, 2.0)), 6)
        1.458426
    """
    s, a, t, c = map(_a, (scale_p, alpha_p, scale_q, alpha_q))
    inside = s >= t
    value = c * jnp.log(jnp.where(inside, s / t, 1.0)) + phi(log_ratio(c, a))
    return jnp.where(inside, value, jnp.inf)


def uniform_kl(low_p: jax.Array, high_p: jax.Array, low_q: jax.Array, high_q: jax.Array) -> jax.Array:
    """KL(U(a, b) ‖ U(c, d)) = log((d − c)/(b − a)) if c ≤ a and b ≤ d, else +inf.

    Example:
        >>> round(float(uniform_kl(0.0, 1.0, -1.0, 1.0)), 6)
        0.693147
    """
    a, b, c, d = map(_a, (low_p, high_p, low_q, high_q))
    inside = (c <= a) & (b <= d)
    value = jnp.log(jnp.where(inside, (d - c) / (b - a), 1.0))
    return jnp.where(inside, jnp.maximum(value, 0.0), jnp.inf)


@register_kl(Exponential, Exponential)
def _kl_exponential(p: Exponential, q: Exponential) -> jax.Array:
    return exponential_kl(p.rate, q.rate)


@register_kl(Gamma, Gamma)
def _kl_gamma(p: Gamma, q: Gamma) -> jax.Array:
    return gamma_kl(p.concentration, p.rate, q.concentration, q.rate)


@register_kl(Beta, Beta)
def _kl_beta(p: Beta, q: Beta) -> jax.Array:
    return beta_kl(p.concentration1, p.concentration0, q.concentration1, q.concentration0)


@register_kl(Laplace, Laplace)
def _kl_laplace(p: Laplace, q: Laplace) -> jax.Array:
    return laplace_kl(p.loc, p.scale, q.loc, q.scale)


@register_kl(Gumbel, Gumbel)
def _kl_gumbel(p: Gumbel, q: Gumbel) -> jax.Array:
    return gumbel_kl(p.loc, p.scale, q.loc, q.scale)


@register_kl(Weibull, Weibull)
def _kl_weibull(p: Weibull, q: Weibull) -> jax.Array:
    return weibull_kl(p.scale, p.concentration, q.scale, q.concentration)


@register_kl(VonMises, VonMises)
def _kl_von_mises(p: VonMises, q: VonMises) -> jax.Array:
    return von_mises_kl(p.loc, p.concentration, q.loc, q.concentration)


@register_kl(Cauchy, Cauchy)
def _kl_cauchy(p: Cauchy, q: Cauchy) -> jax.Array:
    return cauchy_kl(p.loc, p.scale, q.loc, q.scale)


@register_kl(Pareto, Pareto)
def _kl_pareto(p: Pareto, q: Pareto) -> jax.Array:
    return pareto_kl(p.scale, p.alpha, q.scale, q.alpha)


@register_kl(Uniform, Uniform)
def _kl_uniform(p: Uniform, q: Uniform) -> jax.Array:
    return uniform_kl(p.low, p.high, q.low, q.high)


@register_kl(HalfNormal, HalfNormal)
def _kl_half_normal(p: HalfNormal, q: HalfNormal) -> jax.Array:
    return normal_kl(0.0, _a(p.scale), 0.0, _a(q.scale))


@register_kl(LogNormal, LogNormal)
def _kl_log_normal(p: LogNormal, q: LogNormal) -> jax.Array:
    return normal_kl(p.loc, p.scale, q.loc, q.scale)


@register_entropy(Gumbel)
def _entropy_gumbel(p: Gumbel) -> jax.Array:
    return jnp.log(_a(p.scale)) + EULER_GAMMA + 1.0


@register_entropy(HalfNormal)
def _entropy_half_normal(p: HalfNormal) -> jax.Array:
    return 0.5 * math.log(0.5 * math.pi * math.e) + jnp.log(_a(p.scale))


@register_entropy(VonMises)
def _entropy_von_mises(p: VonMises) -> jax.Array:
    kappa = _a(p.concentration)
    return math.log(2.0 * math.pi) + jnp.log(i0e(kappa)) + kappa - kappa * i1e(kappa) / i0e(kappa)


@register_entropy(Beta)
def _entropy_beta(p: Beta) -> jax.Array:
    """H = log B(a, b) − (a − 1)ψ(a) − (b − 1)ψ(b) + (a + b − 2)ψ(a + b), with an exact log B
    (jax's betaln, which numpyro's entropy uses, is ~1e-7 off for arguments ≥ 8) and, for large
    a and b, the terms combined before they cancel (see ``kullback._special.beta_entropy``)."""
    return beta_entropy(_a(p.concentration1), _a(p.concentration0))


@register_entropy(StudentT)
def _entropy_student_t(p: StudentT) -> jax.Array:
    """H = (ν + 1)/2 · (ψ((ν + 1)/2) − ψ(ν/2)) + ½ log ν + log B(ν/2, ½) + log σ; the last three
    terms but log σ are the t normaliser c(ν), and both ν-parts are computed without the
    cancellation of their log-gamma and digamma differences (exact to rounding for all ν)."""
    nu = _a(p.df)
    return 0.5 * (nu + 1.0) * digamma_half_difference(0.5 * nu) + t_normaliser(nu) + jnp.log(_a(p.scale))


_POISSON_WINDOW = 2_720  # terms of the entropy sum: ±13.5 sd around the mode up to rate 10^4
_POISSON_ASYMPTOTIC = 1e4  # from this rate on the asymptotic series (its next term < 1e-16)


def _g(delta: jax.Array) -> jax.Array:
    """g(δ) = (1 + δ) log1p(δ) − δ, by its series Σ_{j≥2} (−δ)^j / (j(j − 1)) for |δ| < 0.1
    (where the two terms cancel), directly elsewhere."""
    small = jnp.abs(delta) < 0.1
    d = jnp.where(small, delta, 0.0)
    series = sum((-d) ** j / (j * (j - 1)) for j in range(2, 18))
    far = jnp.where(small, 1.0, delta)
    return jnp.where(small, series, (1.0 + far) * jnp.log1p(far) - far)


def _poisson_log_pmf(k: jax.Array, lam: jax.Array) -> jax.Array:
    """log p_k = k log λ − λ − log k!. For n = k + 1 ≥ 10, with n = λ(1 + δ) and Stirling's
    log Γ(n) (remainder c), log p_k = −λ g(δ) + log1p(δ) − ½ log(2πn) − c(n): no cancellation of
    terms of size λ log λ (the direct form loses 1e-11 at λ = 10⁴, Loader's point)."""
    n = k + 1.0
    big = n >= 10.0
    nb = jnp.where(big, n, 10.0)
    delta = (nb - lam) / lam
    stable = -lam * _g(delta) + jnp.log1p(delta) - 0.5 * jnp.log(2.0 * math.pi * nb) - stirling_remainder(nb)
    return jnp.where(big, stable, k * jnp.log(lam) - lam - gammaln(n))


@register_entropy(Poisson)
def _entropy_poisson(p: Poisson) -> jax.Array:
    """H = −Σ_k p_k log p_k: for λ < 10⁴ the sum over a fixed window of 2 720 terms around the
    mode (the mass outside is below 1e-40; log p_k without cancellation, see
    :func:`_poisson_log_pmf`); above, the series ½ log(2πeλ) − 1/(12λ) − 1/(24λ²) − 19/(360λ³)
    (error < 1e-16)."""
    lam = _a(p.rate)
    big = lam >= _POISSON_ASYMPTOTIC
    lb = jnp.where(big, lam, _POISSON_ASYMPTOTIC)
    series = 0.5 * jnp.log(2.0 * math.pi * math.e * lb) - 1.0 / (12 * lb) - 1.0 / (24 * lb**2) - 19.0 / (360 * lb**3)
    ls = jnp.where(big, 1.0, lam)[..., None]
    start = jnp.maximum(0.0, jnp.floor(ls) - _POISSON_WINDOW // 2)
    log_pmf = _poisson_log_pmf(start + jnp.arange(_POISSON_WINDOW, dtype=ls.dtype), ls)
    direct = -jnp.sum(jnp.exp(log_pmf) * log_pmf, axis=-1)
    return jnp.where(big, series, direct)
