"""How many XLA programs the main reverse-fit calls compile (a first call is dominated by them).

Counted in-process with ``count_compiles`` and the persistent compilation cache switched off
inside each test (a cache hit emits no compile event). Earlier tests in the same process may
already have compiled some of these programs, so the assertions are upper bounds: about twice
what a fresh process measured (stated at each), tight enough to catch a regression to the many
small programs of before (77 for the d = 10 default fit, most of them eager ops).
"""

from __future__ import annotations

import jax
import numpy as np
import numpyro.distributions as dist
import pytest
import scipy.integrate as si
import scipy.optimize as so
import scipy.stats as ss

import kullback as kb
from kullback._compile import count_compiles


def gaussian_log_density(mean, prec):
    mean, prec = np.asarray(mean), np.asarray(prec)

    def log_p(x):
        r = x - mean
        return -0.5 * r @ prec @ r

    return log_p


@pytest.mark.timeout(300)
def test_default_full_gaussian_fit_is_one_program_and_a_new_closure_reuses_it(no_persistent_cache):
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, 3))
    prec = np.linalg.inv(a @ a.T / 3 + np.eye(3))
    family = kb.families.Gaussian(3, covariance="full")
    with count_compiles() as first:
        r = kb.fit(family, gaussian_log_density(rng.normal(size=3), prec), direction="reverse", key=0)
    mean = rng.normal(size=3)  # a NEW closure of the same kind, other constants
    with count_compiles() as second:
        r2 = kb.fit(family, gaussian_log_density(mean, prec), direction="reverse", key=1)
    # fresh process: 3 (the fit's one program, and the int seed's PRNGKey: 2 tiny ones)
    assert first.count <= 6, first.count
    # fresh process: 0 (the program is keyed by the traced log density, its constants are arguments)
    assert second.count <= 1, second.count
    assert r.converged and r2.converged
    np.testing.assert_allclose(r2.params["loc"], mean, atol=1e-6)


@pytest.mark.timeout(300)
def test_quadrature_fit_of_a_scalar_target_is_one_program(no_persistent_cache):
    p = dist.StudentT(4.0, 0.5, 2.0)
    with count_compiles() as c:
        r = kb.fit(dist.Normal, p, direction="reverse", key=0)
    assert r.method == "quadrature" and r.elbo.method == "quadrature" and r.converged
    assert c.count <= 4, c.count  # fresh process: 1 (+ 2 tiny ones for an int seed's PRNGKey)


@pytest.mark.timeout(300)
def test_run_demo_compiles_few_programs(no_persistent_cache):
    from kullback.cli._demo import run_demo

    with count_compiles() as c:
        out = run_demo()
    assert set(out) == {"bimodal", "heavy_tail"}
    # fresh process: 61 (2 reverse-fit programs, 3 log-density programs of the quadrature KLs,
    # the rest tiny eager ops of the forward fits and closed forms outside the demo's own code)
    assert c.count <= 120, c.count


def _bimodal_log_p(x):
    return np.logaddexp(ss.norm.logpdf(x, -3.0, 1.0), ss.norm.logpdf(x, 3.0, 1.0)) + np.log(0.5)


def _reverse_kl(theta):
    m, s = theta[0], np.exp(theta[1])
    integrand = lambda x: ss.norm.pdf(x, m, s) * (ss.norm.logpdf(x, m, s) - _bimodal_log_p(x))  # noqa: E731
    return si.quad(integrand, m - 40 * s, m + 40 * s, epsabs=1e-14, epsrel=1e-14, limit=500)[0]


@pytest.mark.timeout(300)
def test_demo_reverse_fit_reaches_the_exact_optimum():
    from kullback.cli._demo import default_targets

    p = default_targets()[0].p  # ½ N(−3, 1) + ½ N(3, 1)
    r = kb.fit(dist.Normal, p, direction="reverse", key=0)
    assert r.method == "quadrature" and r.converged
    m, s = float(r.params["loc"]), float(r.params["scale"])
    best = so.minimize(_reverse_kl, [np.sign(m) * 3.0, 0.0], method="Nelder-Mead",
                       options={"xatol": 1e-10, "fatol": 1e-15, "maxiter": 4000})
    ours = _reverse_kl([m, np.log(s)])
    assert ours - best.fun < 1e-8 and abs(ours - best.fun) < 1e-8, (ours, best.fun)
    # the ELBO is the quadrature value (log Z = 0 here): −KL(q‖p) to its stated error
    assert abs(float(r.elbo) + best.fun) <= max(float(r.elbo.stderr), 1e-8)
    est = kb.estimate_kl(r.q, p)
    assert est.method == "quadrature" and abs(float(est) - best.fun) < 1e-8


@pytest.mark.parametrize("seed", [0, 1, 7, 12345, 2**31 + 5, 2**32 - 1])
def test_an_integer_seed_is_jaxs_key_without_a_compile(seed):
    """An int seed becomes the same key as jax.random.PRNGKey(seed), built on the host (jax's
    seeding is a program of its own: one compile, about 0.1 s, in every fresh process)."""
    from kullback.fit._api import as_key

    key = as_key(seed)
    np.testing.assert_array_equal(np.asarray(key), np.asarray(jax.random.PRNGKey(seed)))


@pytest.mark.timeout(300)
def test_a_target_with_new_scalar_parameters_reuses_the_program(no_persistent_cache):
    """Scalar (Python or 0-d NumPy) parameters of a distribution target are arguments of the
    program, not literals in it: a new value compiles nothing (it used to recompile: 1.5 s)."""
    def target(a):
        return dist.MixtureGeneral(dist.Categorical(probs=np.array([0.4, 0.3, 0.3])),
                                   [dist.Normal(-a, 1.0), dist.StudentT(3.0, a, 1.0), dist.Normal(0.0, 0.5)])

    first = kb.fit(dist.Normal, target(3.0), direction="reverse", key=0)
    with count_compiles() as c:
        second = kb.fit(dist.Normal, target(2.5), direction="reverse", key=0)
    assert c.count == 0, c.count
    assert first.converged and second.converged
    assert float(first.params["loc"]) != float(second.params["loc"])
