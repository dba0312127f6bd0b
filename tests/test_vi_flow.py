"""The normalising-flow family (numpyro IAF) in reverse fits.

References: exact banana moments and log Z (x1 ~ N(0, 1), x2 | x1 ~ N(c x1 + b x1², s²):
E x2 = b, Var x2 = c² + 2b² + s², Cov = c, Z = 1), a Gaussian target (b = 0), scipy's normal
log density, and log q by the change of variables with a numerical Jacobian (jax.jacfwd).
Both targets are one distribution class with the curvature b as data, so that the flow's
compiled fit is shared between them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
import scipy.stats
from numpyro.distributions import constraints

import kullback as kb
from kullback.families import Flow

C, S = 0.8, 0.5
FLOW = Flow(2, num_layers=1, hidden_dims=(8,))


class Banana(dist.Distribution):
    """x1 ~ N(0, 1), x2 | x1 ~ N(C x1 + b x1², S²); normalised (log Z = 0)."""

    support = constraints.real_vector
    arg_constraints = {"b": constraints.real}

    def __init__(self, b):
        self.b = jnp.asarray(b, dtype=float)
        super().__init__(batch_shape=(), event_shape=(2,))

    def log_prob(self, x):
        x1, x2 = x[..., 0], x[..., 1]
        return dist.Normal(0.0, 1.0).log_prob(x1) + dist.Normal(C * x1 + self.b * x1**2, S).log_prob(x2)


def true_moments(b):
    return np.array([0.0, b]), np.array([[1.0, C], [C, C**2 + 2 * b**2 + S**2]])


def moments(r):
    x = np.asarray(r.draws(1, 20000))
    return x.mean(axis=0), np.cov(x, rowvar=False)


def test_flow_starts_as_the_diagonal_gaussian_and_is_a_hashable_value():
    f = Flow(3, num_layers=2, hidden_dims=[6, 6], seed=3)
    assert f == Flow(3, num_layers=2, hidden_dims=(6, 6), seed=3) and hash(f) == hash(Flow(3, 2, (6, 6), seed=3))
    assert f != Flow(3, num_layers=2, hidden_dims=(6, 6), seed=4)
    center, scale = jnp.array([1.0, -2.0, 0.5]), jnp.array([0.5, 2.0, 1.5])
    params = f.init_at(center, scale)
    x = jnp.array([[0.3, -1.0, 2.0], [1.5, 0.0, -0.4]])
    ref = scipy.stats.norm(np.asarray(center), np.asarray(scale)).logpdf(np.asarray(x)).sum(axis=1)
    np.testing.assert_allclose(f.distribution(params).log_prob(x), ref, rtol=1e-12)
    values = f.constrained(params)
    back = f.from_constrained(values)
    assert jax.tree.structure(back) == jax.tree.structure(params)
    np.testing.assert_allclose(f.constrained(back)["weights"], values["weights"], rtol=0)
    assert f.name == "Flow(3, num_layers=2, hidden_dims=(6, 6))"


def test_log_q_is_the_change_of_variables_from_the_forward_pass_and_the_inverse():
    f = Flow(3, num_layers=2, hidden_dims=(6,))
    params = f.init_at(jnp.array([0.2, -0.1, 0.3]), jnp.array([1.2, 0.7, 1.1]))
    flat, unravel = jax.flatten_util.ravel_pytree(params)  # move every weight off the identity
    params = unravel(flat + 0.3 * jax.random.normal(jax.random.PRNGKey(1), flat.shape))
    eps = f.base_noise(jax.random.PRNGKey(2), 16, standardize=False)

    @jax.jit
    def everything(params):  # one program: eager numpyro dispatch would be slow
        x = f.draws(params, eps, 16)
        jac = jax.vmap(jax.jacfwd(lambda e: f.draws(params, e[None], 1)[0]))(eps)
        grad_fwd = jax.grad(lambda p: -jnp.mean(f.draws_and_log_prob(p, eps, 16)[1]))(params)
        grad_inv = jax.grad(lambda p: f.entropy(p, f.draws(p, eps, 16)))(params)
        return (jac, f.distribution(params).log_prob(x), -jnp.mean(f.draws_and_log_prob(params, eps, 16)[1]),
                f.entropy(params, x), grad_fwd, grad_inv)

    jac, log_q, ent_fwd, ent_inv, grad_fwd, grad_inv = everything(params)
    ref = scipy.stats.norm.logpdf(np.asarray(eps)).sum(axis=1) - np.log(np.abs(np.linalg.det(np.asarray(jac))))
    # via the inverse (numpyro's fixed-point inversion) and via the forward pass of the draws
    np.testing.assert_allclose(log_q, ref, rtol=1e-10)
    np.testing.assert_allclose(ent_fwd, -ref.mean(), rtol=1e-10)
    np.testing.assert_allclose(ent_inv, -ref.mean(), rtol=1e-10)  # other x: the inverse
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12), grad_fwd, grad_inv)


@pytest.mark.parametrize("kwargs, match", [
    (dict(dim=0), "dim to be a positive integer"),
    (dict(dim=3, hidden_dims=(2,)), "hidden_dims to be a non-empty sequence of integers ≥ dim = 3"),
    (dict(dim=2, num_layers=0), "num_layers to be a positive integer"),
    (dict(dim=2, activation="relu6"), "activation to be one of"),
])
def test_flow_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Flow(**kwargs)


@pytest.mark.timeout(300)
def test_flow_beats_the_full_gaussian_on_a_banana_and_recovers_a_gaussian():
    banana = Banana(1.0)
    flow = kb.fit(FLOW, banana, direction="reverse", key=0)
    # 20 000 diagnostic draws: k̂ of the Gaussian from 4000 scatters by ±0.15 (see test_fit_reverse_targets)
    gauss = kb.fit(kb.families.Gaussian(2, covariance="full"), banana, direction="reverse", key=0,
                   num_elbo_draws=20_000)
    assert flow.family == FLOW.name and set(flow.params) == {"loc", "scale", "weights"}
    # ELBO = log Z − KL(q‖p) with log Z = 0: the flow's KL is a small fraction of the Gaussian's
    assert gauss.elbo.value < -0.3 and flow.elbo.value > -0.1 and flow.elbo.value <= 4 * flow.elbo.stderr
    assert flow.pareto_k < gauss.pareto_k - 0.1
    mean, cov = true_moments(1.0)
    (m_f, c_f), (m_g, c_g) = moments(flow), moments(gauss)
    assert np.abs(m_f - mean).max() < 0.1 < np.abs(m_g - mean).max()
    assert np.abs(c_f - cov).max() < 0.3 and np.abs(c_g - cov).max() > 1.0  # Var x2 = 2.89
    # a Gaussian target (b = 0): the same compiled fit; the flow contains it (skip connections)
    exact = kb.fit(FLOW, Banana(0.0), direction="reverse", key=0)
    mean, cov = true_moments(0.0)
    m, c = moments(exact)
    np.testing.assert_allclose(m, mean, atol=0.05)  # MC error of 2e4 draws ≈ 0.007; fit error dominates
    np.testing.assert_allclose(c, cov, atol=0.06)
    assert exact.elbo.value > -0.03


@pytest.mark.timeout(300)
def test_flow_sgd_fit_recovers_a_gaussian_target():
    r = kb.fit(FLOW, Banana(0.0), direction="reverse", key=1, method="sgd", max_steps=1500)
    mean, cov = true_moments(0.0)
    m, c = moments(r)
    np.testing.assert_allclose(m, mean, atol=0.08)
    np.testing.assert_allclose(c, cov, atol=0.1)
    assert r.elbo.value > -0.05 and r.method == "sgd"
