"""Ground truth for the reverse-fit (VI) tests and benchmarks: targets on R^d and long NUTS runs.

Targets are unnormalised log densities on R^d (constrained parameters already transformed, with
their log-Jacobians), so that kullback and every peer fit exactly the same function. Targets with
analytic moments need no run; the others get a long NUTS run (numpyro, 4 chains × 5000 draws
after 2000 warm-up, target accept 0.9), saved as a small .npz of posterior means and standard
deviations under tests/fixtures/ together with the data.

Run once (about a minute on 2 CPU cores):  python benchmarks/make_nuts_fixtures.py
"""

from __future__ import annotations

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"


# ---- data (fixed seeds) -------------------------------------------------------------------
def logistic_data(n: int = 200, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An intercept column and d − 1 correlated standard normal features; y ~ Bernoulli(σ(Xβ))."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d - 1))
    z[:, 1:] += 0.5 * z[:, :1]
    x = np.column_stack([np.ones(n), z])
    beta = np.linspace(-1.0, 1.0, d)
    y = (rng.random(n) < 1 / (1 + np.exp(-x @ beta))).astype(float)
    return x, y


SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SCHOOLS_SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


# ---- log densities on R^d -------------------------------------------------------------------
def make_logistic(x: np.ndarray, y: np.ndarray, prior_scale: float = 2.5):
    """log p(β | X, y) + const: N(0, prior_scale²) prior, Bernoulli-logit likelihood."""
    X, Y = jnp.asarray(x), jnp.asarray(y)

    def log_density(beta):
        eta = X @ beta
        return jnp.sum(Y * eta - jax.nn.softplus(eta)) - 0.5 * jnp.sum(beta**2) / prior_scale**2

    return log_density


def schools(z):
    """Eight schools, non-centred: z = (μ, log τ, θ̃_1..8); θ_j = μ + τ θ̃_j; τ ~ HalfCauchy(5)."""
    mu, log_tau, eta = z[0], z[1], z[2:]
    tau = jnp.exp(log_tau)
    theta = mu + tau * eta
    lik = -0.5 * jnp.sum(((jnp.asarray(SCHOOLS_Y) - theta) / jnp.asarray(SCHOOLS_SIGMA)) ** 2)
    prior = -0.5 * (mu / 5.0) ** 2 - jnp.log1p((tau / 5.0) ** 2) + log_tau - 0.5 * jnp.sum(eta**2)
    return lik + prior


def banana(z, b: float = 0.5, s1: float = 2.0):
    """x1 ~ N(0, s1²), x2 | x1 ~ N(b (x1² − s1²), 1): means 0, sds (s1, √(1 + 2 b² s1⁴))."""
    return -0.5 * (z[0] / s1) ** 2 - 0.5 * (z[1] - b * (z[0] ** 2 - s1**2)) ** 2


def funnel(z):
    """Neal's funnel in d = 10: v ~ N(0, 3²), x_i | v ~ N(0, e^v): sds (3, e^{9/4}, …)."""
    v, x = z[0], z[1:]
    return -0.5 * (v / 3.0) ** 2 - 0.5 * jnp.sum(x**2) * jnp.exp(-v) - 0.5 * x.shape[0] * v


def gaussian_target(d: int, seed: int, correlated: bool):
    """N(m, Σ): Σ = D R D with scales D in [0.1, 10] and (if correlated) a random correlation R."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=d)
    scales = np.exp(rng.uniform(np.log(0.1), np.log(10.0), size=d))
    if correlated:
        a = rng.normal(size=(d, d)) / math.sqrt(d)
        c = a @ a.T + 0.5 * np.eye(d)
        corr = c / np.sqrt(np.outer(np.diag(c), np.diag(c)))
    else:
        corr = np.eye(d)
    cov = corr * np.outer(scales, scales)
    prec = jnp.asarray(np.linalg.inv(cov))
    m = jnp.asarray(mean)

    def log_density(z):
        r = z - m
        return -0.5 * r @ prec @ r

    return log_density, mean, np.sqrt(np.diag(cov))


# ---- NUTS --------------------------------------------------------------------------------
def nuts_moments(log_density, dim: int, seed: int, *, num_warmup=2000, num_samples=5000, num_chains=4):
    """Posterior means, sds and split-R̂ from a long NUTS run (chains run one after another)."""
    from numpyro.diagnostics import split_gelman_rubin
    from numpyro.infer import MCMC, NUTS

    kernel = NUTS(potential_fn=lambda z: -log_density(z), target_accept_prob=0.9)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method="sequential", progress_bar=False)
    init = 0.1 * np.random.default_rng(seed).standard_normal((num_chains, dim))
    mcmc.run(jax.random.PRNGKey(seed), init_params=jnp.asarray(init))
    draws = np.asarray(mcmc.get_samples(group_by_chain=True))
    flat = draws.reshape(-1, dim)
    return flat.mean(axis=0), flat.std(axis=0, ddof=1), np.asarray(split_gelman_rubin(draws)), flat.shape[0]


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    x, y = logistic_data()
    mean, sd, rhat, n = nuts_moments(make_logistic(x, y), x.shape[1], seed=1)
    np.savez(FIXTURES / "nuts_logistic5.npz", x=x, y=y, mean=mean, sd=sd, rhat=rhat, num_draws=n)
    print("logistic5", mean.round(3), sd.round(3), "max R-hat", rhat.max().round(4))
    mean, sd, rhat, n = nuts_moments(schools, 10, seed=2)
    np.savez(FIXTURES / "nuts_schools10.npz", mean=mean, sd=sd, rhat=rhat, num_draws=n)
    print("schools10", mean.round(3), sd.round(3), "max R-hat", rhat.max().round(4))
    x, y = logistic_data(n=500, d=25, seed=3)
    mean, sd, rhat, n = nuts_moments(make_logistic(x, y), 25, seed=3, num_samples=2500)
    np.savez(FIXTURES / "nuts_logistic25.npz", x=x, y=y, mean=mean, sd=sd, rhat=rhat, num_draws=n)
    print("logistic25", "max R-hat", rhat.max().round(4))


if __name__ == "__main__":
    main()
