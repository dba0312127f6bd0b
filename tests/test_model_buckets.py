"""numpyro models holding data: rows padded to a bucket and masked, so a refit on a new number of
rows reuses the compiled fit; padding refused where it would change the model.

Known answers: with μ ~ N(0, 1) and y_ij | μ ~ N(μ, 1), the posterior is
N(Σy / (m + 1), 1 / (m + 1)) for m observations.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import kullback as kb
from kullback._compile import count_compiles
from kullback.families import Gaussian
from kullback.fit._model_target import model_log_density

FAMILY = Gaussian(2, "full")


def conjugate(y, extra=0.0):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("tau", dist.Exponential(1.0))  # no data: its prior, on (0, inf)
    with numpyro.plate("rows", y.shape[0]):
        numpyro.deterministic("residual", y - mu)
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)
    if extra:  # reads the number of rows outside the plate: padding would change the model
        numpyro.factor("tilt", extra * y.shape[0] * mu)


def grid(y):  # rows × 3 columns, the rows' plate at dim -2
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("tau", dist.Exponential(1.0))
    with numpyro.plate("rows", y.shape[0], dim=-2), numpyro.plate("cols", y.shape[1], dim=-1):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def local_latents(y):  # a latent site per row: the rows are not data only
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    with numpyro.plate("rows", y.shape[0]):
        z = numpyro.sample("z", dist.Normal(mu, 1.0))
        numpyro.sample("y", dist.Normal(z, 1.0), obs=y)


def posterior(y, extra=0.0):
    m = np.size(y)
    return (np.sum(y) + extra * np.shape(y)[0]) / (m + 1), 1.0 / (m + 1)


def _rows_of(model, *args) -> int:
    """The most rows of any array the model's log density holds."""
    log_density, _, event = model_log_density(model, args, {})
    closed = jax.make_jaxpr(log_density)(jnp.zeros(event))
    return max((np.shape(c)[0] for c in closed.consts if np.ndim(c) >= 1), default=0)


@pytest.mark.timeout(300)
def test_a_new_number_of_rows_reuses_the_compiled_fit_and_the_answer_is_exact(no_persistent_cache):
    rng = np.random.default_rng(0)
    fits = []
    with count_compiles() as first:
        y = rng.normal(1.0, 1.0, 300)
        fits.append((y, kb.fit(FAMILY, conjugate, direction="reverse", key=0, model_args=(y,))))
    with count_compiles() as second:
        y = rng.normal(1.0, 1.0, 450)  # same bucket (1024 rows)
        fits.append((y, kb.fit(FAMILY, conjugate, direction="reverse", key=0, model_args=(y,))))
    # fresh process: about 10, then 1 (the exact-size check of the padding, one small program)
    assert second.count <= 2 < first.count, (first.count, second.count)
    for y, r in fits:
        mean, var = posterior(y)
        assert r.converged
        np.testing.assert_allclose(r.params["loc"][0], mean, atol=2e-3)
        np.testing.assert_allclose(r.params["covariance"][0, 0], var, rtol=0.03)
        draws = r.draws(0, 50)  # sites by name at their true sizes: the deterministic one has n rows
        assert draws["mu"].shape == (50,) and draws["residual"].shape == (50, y.shape[0])
        np.testing.assert_allclose(draws["residual"], y - np.asarray(draws["mu"])[:, None], atol=1e-5)


@pytest.mark.timeout(300)
def test_padding_is_refused_where_it_would_change_the_model():
    y = np.random.default_rng(1).normal(0.5, 1.0, 200)
    assert _rows_of(conjugate, y) == 1024
    tilted = lambda y: conjugate(y, extra=0.1)  # noqa: E731 - len(y) outside the plate
    assert _rows_of(tilted, y) == 200
    assert _rows_of(local_latents, y) == 200
    r = kb.fit(FAMILY, tilted, direction="reverse", key=0, model_args=(y,))
    mean, var = posterior(y, extra=0.1)
    np.testing.assert_allclose(r.params["loc"][0], mean, atol=2e-3)
    np.testing.assert_allclose(r.params["covariance"][0, 0], var, rtol=0.03)


@pytest.mark.timeout(300)
def test_a_plate_at_dim_minus_two_is_masked_along_its_rows():
    y = np.random.default_rng(2).normal(-0.5, 1.0, (70, 3))
    assert _rows_of(grid, y) == 1024
    r = kb.fit(FAMILY, grid, direction="reverse", key=0, model_args=(y,))
    mean, var = posterior(y)
    np.testing.assert_allclose(r.params["loc"][0], mean, atol=2e-3)
    np.testing.assert_allclose(r.params["covariance"][0, 0], var, rtol=0.03)
