"""Every registered closed form against an independent reference, in one table.

References (all computed from scipy.stats densities, never from the formulas under test):
- scalar continuous pairs: scipy.integrate.quad of p(x)[log p(x) − log q(x)] over p's support,
  split at p's quantiles; rtol 1e-7 (quad's own error at epsabs = epsrel = 1e-12 is ~1e-10 here,
  the margin covers the heavy Pareto and Cauchy tails);
- discrete pairs: the exact sum over the support (truncated where the tail mass is < 1e-16);
  rtol 1e-9;
- multivariate Gaussians: the textbook formula in numpy (rtol 1e-9); Dirichlet: 2e5 seeded
  Monte Carlo draws, |error| < 5 standard errors;
- +inf pairs: p's support (scipy's) not inside q's, or a moment of p that
  diverges (declared per pair below, e.g. Cauchy ‖ Normal needs E X² = ∞).
Identities over the table × batch shapes: KL(p‖p) = 0, CE = H + KL, batch = elementwise.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import integrate, special, stats

import kullback as kb
from kullback.measure import _forms_cross
from kullback.measure._expfam import bregman_kl, exponential_families
from kullback.measure._registry import kl_rules

# family: (numpyro constructor, scipy constructor, params of p, params of q)
_logit = lambda p: np.asarray(special.logit(p))  # noqa: E731
CONTINUOUS = {
    dist.Normal: (dist.Normal, lambda m, s: stats.norm(m, s), (0.3, 1.2), (-0.5, 2.0)),
    dist.Laplace: (dist.Laplace, lambda m, b: stats.laplace(m, b), (0.2, 0.8), (-0.4, 1.5)),
    dist.Gumbel: (dist.Gumbel, lambda m, b: stats.gumbel_r(m, b), (0.1, 0.9), (0.5, 1.7)),
    dist.Cauchy: (dist.Cauchy, lambda m, s: stats.cauchy(m, s), (0.0, 1.0), (0.5, 2.0)),
    dist.StudentT: (dist.StudentT, lambda n, m, s: stats.t(n, m, s), (5.0, 0.2, 1.1), (4.0, 0.0, 1.0)),
    dist.Exponential: (dist.Exponential, lambda r: stats.expon(scale=1 / r), (1.3,), (0.7,)),
    dist.Gamma: (dist.Gamma, lambda a, b: stats.gamma(a, scale=1 / b), (2.5, 1.5), (1.8, 0.9)),
    dist.HalfNormal: (dist.HalfNormal, lambda s: stats.halfnorm(scale=s), (1.1,), (1.9,)),
    dist.LogNormal: (dist.LogNormal, lambda m, s: stats.lognorm(s, scale=math.exp(m)), (0.1, 0.5), (-0.2, 0.8)),
    dist.Weibull: (dist.Weibull, lambda lam, k: stats.weibull_min(k, scale=lam), (1.2, 1.8), (1.5, 1.3)),
    dist.Beta: (dist.Beta, lambda a, b: stats.beta(a, b), (2.0, 3.0), (1.5, 1.2)),
    dist.Pareto: (dist.Pareto, lambda s, a: stats.pareto(a, scale=s), (1.5, 3.0), (0.1, 1.5)),
    dist.Uniform: (dist.Uniform, lambda lo, hi: stats.uniform(lo, hi - lo), (0.2, 0.7), (-0.5, 2.0)),
    dist.VonMises: (dist.VonMises, lambda m, k: stats.vonmises(k, loc=m), (0.3, 2.0), (-0.5, 0.8)),
    dist.InverseGamma: (dist.InverseGamma, lambda a, b: stats.invgamma(a, scale=b), (3.0, 2.0), (2.0, 1.0)),
}
DISCRETE = {
    dist.BernoulliProbs: (lambda p: dist.BernoulliProbs(p), lambda p: stats.bernoulli(p), (0.3,), (0.65,)),
    dist.BernoulliLogits: (lambda p: dist.BernoulliLogits(_logit(p)), lambda p: stats.bernoulli(p), (0.3,), (0.65,)),
    dist.BinomialProbs: (lambda n, p: dist.BinomialProbs(p, n), lambda n, p: stats.binom(n, p), (5, 0.3), (5, 0.6)),
    dist.BinomialLogits: (lambda n, p: dist.BinomialLogits(_logit(p), n), lambda n, p: stats.binom(n, p), (5, 0.3), (5, 0.6)),
    dist.GeometricProbs: (lambda p: dist.GeometricProbs(p), lambda p: stats.geom(p, loc=-1), (0.3,), (0.55,)),
    dist.GeometricLogits: (lambda p: dist.GeometricLogits(_logit(p)), lambda p: stats.geom(p, loc=-1), (0.3,), (0.55,)),
    dist.Poisson: (dist.Poisson, lambda r: stats.poisson(r), (2.0,), (3.5,)),
    dist.GammaPoisson: (dist.GammaPoisson, lambda a, b: stats.nbinom(a, b / (1 + b)), (4.0, 1.5), (4.0, 0.8)),
}  # fmt: skip
CATEGORICAL = {
    dist.CategoricalProbs: lambda p: dist.CategoricalProbs(np.asarray(p)),
    dist.CategoricalLogits: lambda p: dist.CategoricalLogits(np.log(p) + 0.7),
}
MULTINOMIAL = {
    dist.MultinomialProbs: lambda p: dist.MultinomialProbs(np.asarray(p), total_count=3),
    dist.MultinomialLogits: lambda p: dist.MultinomialLogits(np.log(p) - 0.2, total_count=3),
}
CAT_P, CAT_Q = [0.2, 0.5, 0.3], [0.4, 0.4, 0.2]
# +inf because a moment of p diverges (not a support mismatch): checked by declaration
HEAVY_TAILED = {(dist.Cauchy, dist.Normal), (dist.Cauchy, dist.Gumbel), (dist.Cauchy, dist.Laplace),
                (dist.StudentT, dist.Gumbel)}  # fmt: skip
STRUCTURAL = {(dist.Independent, dist.Independent), (dist.ExpandedDistribution, dist.Distribution),
              (dist.Distribution, dist.ExpandedDistribution)}  # fmt: skip


def _pair(tp, tq):
    table = {**CONTINUOUS, **DISCRETE}
    p_ctor, p_ref, p_par, _ = table[tp]
    q_ctor, q_ref, _, q_par = table[tq]
    return p_ctor(*p_par), q_ctor(*q_par), p_ref(*p_par), q_ref(*q_par)


def _scalar_pairs(table):
    return [(tp, tq) for tp, tq in kl_rules() if tp in table and tq in {**CONTINUOUS, **DISCRETE}]


def _quad_kl(sp, sq):
    if sp.dist.name == "vonmises":  # circular: integrate one period of the periodic densities
        (k_p,), (k_q,) = sp.args, sq.args
        m_p, m_q = sp.kwds["loc"], sq.kwds["loc"]

        def log_vm(x, m, k):
            return k * math.cos(x - m) - math.log(2 * math.pi * special.i0(k))

        def g(x):
            return math.exp(log_vm(x, m_p, k_p)) * (log_vm(x, m_p, k_p) - log_vm(x, m_q, k_q))

        return integrate.quad(g, -math.pi, math.pi, epsabs=1e-13, epsrel=1e-13, limit=200)[0]
    lo, hi = sp.support()
    cuts = [lo] + list(sp.ppf([1e-9, 1e-4, 0.05, 0.5, 0.95, 1 - 1e-4, 1 - 1e-9])) + [hi]
    cuts = sorted(set(float(c) for c in cuts))

    def f(x):
        lp = sp.logpdf(x)
        return 0.0 if lp == -np.inf else math.exp(lp) * (lp - sq.logpdf(x))

    return sum(integrate.quad(f, a, b, epsabs=1e-12, epsrel=1e-12, limit=400)[0] for a, b in itertools.pairwise(cuts))


def _support_mismatch(sp, sq, discrete):
    if sp.dist.name == "vonmises":
        return False
    if discrete:
        k = np.arange(0, 200)
        return bool(np.any((sp.pmf(k) > 0) & (sq.pmf(k) == 0)))
    (lo_p, hi_p), (lo_q, hi_q) = sp.support(), sq.support()
    return bool(lo_p < lo_q or hi_p > hi_q)


@pytest.mark.parametrize("tp, tq", _scalar_pairs(CONTINUOUS), ids=lambda t: t.__name__)
def test_continuous_closed_form_matches_quadrature(tp, tq):
    p, q, sp, sq = _pair(tp, tq)
    got = float(kb.kl(p, q))
    if math.isinf(got):
        assert (tp, tq) in HEAVY_TAILED or _support_mismatch(sp, sq, discrete=False)
        return
    assert not _support_mismatch(sp, sq, discrete=False)
    np.testing.assert_allclose(got, _quad_kl(sp, sq), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("tp, tq", _scalar_pairs(DISCRETE), ids=lambda t: t.__name__)
def test_discrete_closed_form_matches_sum(tp, tq):
    p, q, sp, sq = _pair(tp, tq)
    got = float(kb.kl(p, q))
    k = np.arange(0, 400)
    pk = sp.pmf(k)
    assert pk.sum() > 1 - 1e-15
    if _support_mismatch(sp, sq, discrete=True):
        assert got == np.inf
        return
    ref = np.sum(special.rel_entr(pk, sq.pmf(k)))
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("tp, tq", list(itertools.product(CATEGORICAL, CATEGORICAL)), ids=lambda t: t.__name__)
def test_categorical_and_multinomial(tp, tq):
    ref = np.sum(special.rel_entr(CAT_P, CAT_Q))
    np.testing.assert_allclose(kb.kl(CATEGORICAL[tp](CAT_P), CATEGORICAL[tq](CAT_Q)), ref, rtol=1e-12)
    mp, mq = list(MULTINOMIAL.values())[list(CATEGORICAL).index(tp)], list(MULTINOMIAL.values())[list(CATEGORICAL).index(tq)]
    outcomes = [c for c in itertools.product(range(4), repeat=3) if sum(c) == 3]
    pk = stats.multinomial(3, CAT_P).pmf(outcomes)
    qk = stats.multinomial(3, CAT_Q).pmf(outcomes)
    np.testing.assert_allclose(kb.kl(mp(CAT_P), mq(CAT_Q)), np.sum(special.rel_entr(pk, qk)), rtol=1e-12)


def _textbook_kl(mu_p, cov_p, mu_q, cov_q):
    inv_q = np.linalg.inv(cov_q)
    diff = mu_q - mu_p
    return 0.5 * (np.trace(inv_q @ cov_p) + diff @ inv_q @ diff - len(mu_p)
                  + np.linalg.slogdet(cov_q)[1] - np.linalg.slogdet(cov_p)[1])  # fmt: skip


RNG = np.random.default_rng(7)
_W, _D = RNG.normal(size=(3, 1)), np.array([0.5, 0.8, 1.1])
_A = RNG.normal(size=(3, 3))
GAUSSIANS = {
    "lowrank": (dist.LowRankMultivariateNormal(np.array([0.1, -0.2, 0.3]), _W, _D), _W @ _W.T + np.diag(_D)),
    "mvn": (dist.MultivariateNormal(np.array([0.0, 0.4, -0.1]), _A @ _A.T / 3 + np.eye(3)), _A @ _A.T / 3 + np.eye(3)),
    "diag": (dist.Normal(np.array([0.2, 0.0, 0.5]), np.array([0.9, 1.3, 0.7])).to_event(1),
             np.diag(np.array([0.9, 1.3, 0.7]) ** 2)),
}  # fmt: skip


@pytest.mark.timeout(60)
@pytest.mark.parametrize("a, b", [(a, b) for a in GAUSSIANS for b in GAUSSIANS if "lowrank" in (a, b)])
def test_low_rank_gaussian_pairs(a, b):
    (p, cov_p), (q, cov_q) = GAUSSIANS[a], GAUSSIANS[b]
    ref = _textbook_kl(np.asarray(p.mean), cov_p, np.asarray(q.mean), cov_q)
    np.testing.assert_allclose(kb.kl(p, q), ref, rtol=1e-9)


def test_dirichlet_against_monte_carlo():
    a, b = np.array([1.5, 2.0, 0.7]), np.array([1.0, 3.0, 1.2])
    x = stats.dirichlet(a).rvs(size=200_000, random_state=np.random.default_rng(1))
    x = np.clip(x, 1e-300, None)
    x /= x.sum(-1, keepdims=True)
    v = stats.dirichlet(a).logpdf(x.T) - stats.dirichlet(b).logpdf(x.T)
    err = v.std(ddof=1) / math.sqrt(len(v))
    assert abs(float(kb.kl(dist.Dirichlet(a), dist.Dirichlet(b))) - v.mean()) < 5 * err


def test_every_registered_pair_is_in_the_table():
    scalar = {**CONTINUOUS, **DISCRETE}
    covered = {(tp, tq) for tp, tq in kl_rules() if tp in scalar and tq in scalar}
    covered |= set(itertools.product(CATEGORICAL, CATEGORICAL)) | set(itertools.product(MULTINOMIAL, MULTINOMIAL))
    covered |= {(dist.Dirichlet, dist.Dirichlet), (dist.Normal, dist.Normal), (dist.MultivariateNormal, dist.MultivariateNormal),
                (dist.Independent, dist.MultivariateNormal), (dist.MultivariateNormal, dist.Independent),  # test_closed_form.py
                (dist.Wishart, dist.Wishart)}  # test_forms_wishart.py
    gaussian = {dist.LowRankMultivariateNormal, dist.MultivariateNormal, dist.Independent}
    covered |= {(tp, tq) for tp in gaussian for tq in gaussian if dist.LowRankMultivariateNormal in (tp, tq)}
    # Only the library's own rules: other tests register toy subclasses in the same process.
    library = [(tp, tq) for tp, tq in kl_rules() if tp.__module__.startswith("numpyro") and tq.__module__.startswith("numpyro")]
    missing = [(tp.__name__, tq.__name__) for tp, tq in library if (tp, tq) not in covered | STRUCTURAL]
    assert missing == []
    assert len(kl_rules()) >= 100


# -- identities over the table × batch shapes -------------------------------------------------

FACTOR = np.array([[1.0, 1.1, 0.9], [1.2, 0.95, 1.05]])


def _batched(tp):
    ctor, _, par, _ = {**CONTINUOUS, **DISCRETE}[tp]
    fixed = [isinstance(v, int) or (tp is dist.GammaPoisson and i == 0) for i, v in enumerate(par)]
    scaled = [v if c else np.asarray(v) * FACTOR for v, c in zip(par, fixed)]
    singles = [ctor(*[v if c else v * f for v, c in zip(par, fixed)]) for f in FACTOR.ravel()[[0, -1]]]
    return ctor(*scaled), singles


SAME_FAMILY = [tp for tp in {**CONTINUOUS, **DISCRETE} if (tp, tp) in kl_rules()]


@pytest.mark.parametrize("tp", SAME_FAMILY, ids=lambda t: t.__name__)
def test_identities_over_batch_shapes(tp):
    p, singles = _batched(tp)
    q = _pair(tp, tp)[1]
    np.testing.assert_allclose(kb.kl(p, p), np.zeros((2, 3)), atol=1e-12)
    kl = kb.kl(p, q)
    assert kl.shape == (2, 3) and np.all(np.asarray(kl) >= 0)
    np.testing.assert_allclose(np.asarray(kl).ravel()[[0, -1]], [float(kb.kl(s, q)) for s in singles], rtol=1e-12)
    try:
        h = kb.entropy(p)
    except NotImplementedError:  # Poisson, negative binomial: no closed-form entropy
        return
    np.testing.assert_allclose(kb.cross_entropy(p, q), h + kl, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tp", [t for t in exponential_families() if t in {**CONTINUOUS, **DISCRETE}], ids=lambda t: t.__name__)
def test_bregman_form_agrees_with_reference(tp):
    p, q, sp, sq = _pair(tp, tp)
    ref = float(kb.kl(p, q)) if tp is not dist.InverseGamma else _quad_kl(sp, sq)
    np.testing.assert_allclose(bregman_kl(p, q), ref, rtol=1e-9)


def test_bregman_rejects_mixed_families():
    with pytest.raises(kb.NoClosedFormError, match="one exponential family"):
        bregman_kl(dist.Normal(0.0, 1.0), dist.LogNormal(0.0, 1.0))


@pytest.mark.timeout(60)
def test_near_identical_200_dimensional_gaussians_in_float32():
    """True KL 5e-7 (mean shift only: ½‖δ/σ‖² with σ = 1): never negative, close in float32."""
    import jax.numpy as jnp

    d = 200
    shift = np.zeros(d, np.float32)
    shift[0] = math.sqrt(2 * 5e-7)
    tril = jnp.eye(d, dtype=jnp.float32)
    p = dist.MultivariateNormal(jnp.zeros(d, jnp.float32), scale_tril=tril)
    q = dist.MultivariateNormal(jnp.asarray(shift), scale_tril=tril * jnp.float32(1.0))
    got = kb.kl(p, q)
    assert got.dtype == jnp.float32 and float(got) >= 0
    np.testing.assert_allclose(float(got), 5e-7, rtol=1e-3)
