"""What forward fits compile: a new data size reuses the compiled programs.

Counts are XLA compilations in this process (cache hits of the persistent cache emit none, so it
is switched off here). First-call counts are upper bounds (another test in the same worker may
have compiled a shared program already); refits on a new number of rows must compile nothing.
"""

import numpy as np
import numpyro.distributions as dist
import pytest

import kullback as kb
from kullback._compile import count_compiles


RNG = np.random.default_rng(7)


@pytest.mark.parametrize(
    "cls, draw, first_bound",
    [
        (dist.StudentT, lambda n: RNG.standard_t(5, n) * 2.0 + 1.0, 12),
        (dist.Weibull, lambda n: RNG.weibull(1.7, n) * 2.0, 12),
        (dist.Gamma, lambda n: RNG.gamma(2.5, 1.5, n), 12),
        (dist.Normal, lambda n: RNG.normal(1.0, 2.0, n), 12),
    ],
    ids=["student_t", "weibull", "gamma", "normal"],
)
def test_a_new_data_size_compiles_nothing(no_persistent_cache, cls, draw, first_bound):
    with count_compiles() as first:
        r1 = kb.fit(cls, draw(3_000))
    assert r1.converged
    assert first.count <= first_bound, f"{cls.__name__}: {first.count} programs on the first call"
    # Newton (Student-t, Weibull): any size, the subsample stage included; closed forms (normal,
    # gamma): any size in the same power-of-two bucket (3 000 and 2 100 rows: 4 096)
    sizes = [2_100] if cls in (dist.Normal, dist.Gamma) else [2_100, 700, 30_000]
    for n in sizes:
        with count_compiles() as again:
            r2 = kb.fit(cls, draw(n))
        assert r2.converged
        assert again.count == 0, f"{cls.__name__} on {n} rows compiled {again.count} programs"


@pytest.mark.parametrize("compiled", [False, True], ids=["numpy", "compiled"])
def test_mixture_em_refit_on_a_new_size_compiles_nothing(no_persistent_cache, monkeypatch, compiled):
    """EM on a CPU runs in NumPy and compiles nothing (q is built from a traced structure); the
    compiled EM (an accelerator's path) is one program, reused for a new size in its bucket."""
    from kullback.fit import _mixture

    if compiled:
        monkeypatch.setattr(_mixture, "_use_host", lambda n, d, k: False)
    centers = np.array([[-4.0, 0.0], [4.0, 1.0]])
    x = centers[RNG.integers(0, 2, 3_000)] + RNG.standard_normal((3_000, 2))
    family = kb.families.Mixture(kb.families.Gaussian(2, covariance="full"), 2)
    with count_compiles() as first:
        kb.fit(family, x, key=0)
    assert first.count <= (1 if compiled else 0)
    with count_compiles() as again:
        r = kb.fit(family, x[:2_500], key=1)
    assert again.count == 0
    assert r.converged


@pytest.mark.parametrize("cls, x", [
    (dist.StudentT, RNG.standard_t(4, 500) + 2.0),
    (dist.Gamma, RNG.gamma(3.0, 2.0, 500)),
    (dist.Normal, RNG.normal(0.5, 3.0, 500)),
])
def test_zero_weight_rows_change_nothing(cls, x):
    """Padding works by weight-0 rows: rows given weight 0 by the user must be exactly absent."""
    extra = np.concatenate([x, x[:37] * 1.5 + 0.1])
    w = np.concatenate([np.ones(len(x)), np.zeros(37)])
    a, b = kb.fit(cls, x), kb.fit(cls, extra, sample_weight=w)
    # the starts differ (a start ignores weights), so the two optima agree to the solver's
    # tolerance: 1e-6 in a flat parameter (Student-t df), 1e-12 in the log-likelihood
    for name in a.params:
        np.testing.assert_allclose(b.params[name], a.params[name], rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(b.stderr[name], a.stderr[name], rtol=1e-5)
    np.testing.assert_allclose(b.log_likelihood, a.log_likelihood, rtol=1e-12)


def test_subsample_then_polish_reaches_scipy():
    """n > the subsample (20 000 rows): the subsample fit and the blocked polish reach scipy's optimum
    (the compiled Newton, as for a Student-t with something fixed or bounded; a free one is fitted in NumPy)."""
    from scipy import stats

    x = RNG.standard_t(6, 40_000) * 1.5 - 0.5
    r = kb.fit(dist.StudentT, x, solver="newton")
    df, loc, scale = stats.t.fit(x)
    ours = np.sum(stats.t.logpdf(x, r.params["df"], r.params["loc"], r.params["scale"]))
    assert ours >= np.sum(stats.t.logpdf(x, df, loc, scale)) - 1e-7
    np.testing.assert_allclose(r.log_likelihood, ours, rtol=1e-10)
    assert "polished on all 40000 rows" in r.message


def test_weibull_by_numpy_equals_the_compiled_newton(no_persistent_cache):
    """The 1-D Weibull fit runs in NumPy (profile Newton): same optimum and standard errors as
    the compiled Newton, its log-likelihood equal to scipy's logpdf at its parameters, no kernel."""
    from scipy import stats

    x = RNG.weibull(0.8, 4_000) * 3.0
    w = RNG.integers(1, 4, 4_000).astype(float)
    with count_compiles() as c:
        host = kb.fit(dist.Weibull, x, sample_weight=w)
    assert c.count <= 4 and host.converged and "NumPy" in host.message
    ref = kb.fit(dist.Weibull, x, sample_weight=w, solver="newton")
    for name in ref.params:
        np.testing.assert_allclose(host.params[name], ref.params[name], rtol=1e-6)
        np.testing.assert_allclose(host.stderr[name], ref.stderr[name], rtol=1e-5)
    k, lam = host.params["concentration"], host.params["scale"]
    np.testing.assert_allclose(host.log_likelihood, np.sum(w * stats.weibull_min.logpdf(x, k, 0, lam)), rtol=1e-12)
    assert host.log_likelihood >= ref.log_likelihood - 1e-9 * abs(ref.log_likelihood)


@pytest.mark.parametrize("cls, x, logpdf", [
    (dist.Normal, RNG.normal(1.0, 2.0, 3_000), lambda x, p: __import__("scipy").stats.norm.logpdf(x, p["loc"], p["scale"])),
    (dist.LogNormal, RNG.lognormal(0.3, 0.7, 3_000),
     lambda x, p: __import__("scipy").stats.lognorm.logpdf(x, p["scale"], 0, np.exp(p["loc"]))),
    (dist.Exponential, RNG.exponential(2.0, 3_000), lambda x, p: __import__("scipy").stats.expon.logpdf(x, 0, 1 / p["rate"])),
    (dist.Poisson, RNG.poisson(3.5, 3_000).astype(float), lambda x, p: __import__("scipy").stats.poisson.logpmf(x, p["rate"])),
    (dist.Gamma, RNG.gamma(2.5, 1.5, 3_000), lambda x, p: __import__("scipy").stats.gamma.logpdf(x, p["concentration"], 0, 1 / p["rate"])),
], ids=["normal", "lognormal", "exponential", "poisson", "gamma"])
def test_closed_forms_in_numpy_equal_the_compiled_ones(no_persistent_cache, cls, x, logpdf):
    """Scalar closed-form MLEs run in NumPy (no program but numpyro's eager construction of q: a
    few tiny ones for LogNormal, a transformed distribution); they equal the compiled
    closed form (solver="newton" takes that path), and the log-likelihood equals scipy's."""
    w = RNG.integers(1, 3, len(x)).astype(float)
    with count_compiles() as c:
        host = kb.fit(cls, x, sample_weight=w)
    assert c.count <= 6 and host.method == "closed_form"
    ref = kb.fit(cls, x, sample_weight=w, solver="newton")
    for name in ref.params:
        np.testing.assert_allclose(host.params[name], ref.params[name], rtol=1e-12)
        np.testing.assert_allclose(host.stderr[name], ref.stderr[name], rtol=1e-8)
    np.testing.assert_allclose(host.log_likelihood, np.sum(w * logpdf(x, host.params)), rtol=1e-12)
    np.testing.assert_allclose(float(host.data_entropy), float(ref.data_entropy), rtol=1e-12)


def test_student_t_by_numpy_equals_the_compiled_newton(no_persistent_cache):
    """The free scalar Student-t runs in NumPy (Newton with exact derivatives in (log df, loc, log
    scale)): the compiled Newton's optimum and standard errors, an objective equal to scipy's logpdf
    at the reported parameters, at least scipy's own fit, and only numpyro's eager construction of q
    compiled. The standard errors also equal a central-difference Hessian of scipy's logpdf."""
    from scipy import stats

    x = RNG.standard_t(3.5, 5_000) * 0.7 + 2.0
    w = RNG.integers(1, 4, 5_000).astype(float)
    with count_compiles() as c:
        host = kb.fit(dist.StudentT, x, sample_weight=w)
    assert c.count <= 5 and host.converged and "NumPy" in host.message
    assert len(host.history) == host.num_iterations + 1 and host.history[0] >= host.history[-1]
    ref = kb.fit(dist.StudentT, x, sample_weight=w, solver="newton")
    for name in ref.params:
        np.testing.assert_allclose(host.params[name], ref.params[name], rtol=1e-6)
        np.testing.assert_allclose(host.stderr[name], ref.stderr[name], rtol=1e-5)
    theta = np.array([host.params[k] for k in ("df", "loc", "scale")], dtype=float)

    def loglik(t):
        return np.sum(w * stats.t.logpdf(x, *t))

    np.testing.assert_allclose(host.log_likelihood, loglik(theta), rtol=1e-12)
    assert host.log_likelihood >= loglik(stats.t.fit(np.repeat(x, w.astype(int)))) - 1e-9 * abs(host.log_likelihood)
    h = np.empty((3, 3))
    steps = 1e-4 * np.abs(theta)
    for i in range(3):
        for j in range(3):
            ei, ej = np.eye(3)[i] * steps[i], np.eye(3)[j] * steps[j]
            h[i, j] = (loglik(theta + ei + ej) - loglik(theta + ei - ej) - loglik(theta - ei + ej)
                       + loglik(theta - ei - ej)) / (4 * steps[i] * steps[j])
    se = np.sqrt(np.diag(np.linalg.inv(-h)))
    np.testing.assert_allclose([host.stderr[k] for k in ("df", "loc", "scale")], se, rtol=1e-4)


def test_student_t_budget_and_normal_limit_go_to_the_compiled_path():
    """max_iter is honoured (not converged within it: the compiled path reports the budget), and
    near-normal data whose df runs off gets the compiled path's normal-limit message."""
    x = RNG.standard_t(4, 3_000)
    r = kb.fit(dist.StudentT, x, max_iter=1)
    assert not r.converged and "max_iter" in r.message
    from scipy import stats

    z = stats.norm.ppf((np.arange(3_000) + 0.5) / 3_000)  # normal quantiles: df has no finite optimum
    r = kb.fit(dist.StudentT, z)
    assert not r.converged and "NumPy" not in r.message and "normal limit" in r.message
