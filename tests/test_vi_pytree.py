"""Reverse fits of a log density on a pytree of arrays (``example=``), against a closed form.

The target is Gaussian in (mu, beta) with known mean and independent coordinates, so a
diagonal Gaussian q is exact: fixed standardised draws integrate the quadratic exactly.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import kullback as kb
from kullback.families import Gaussian

MU, BETA = 1.5, jnp.array([-1.0, 0.5, 2.0])
SD_MU, SD_BETA = 0.5, jnp.array([1.0, 2.0, 0.3])
EXAMPLE = {"mu": 0.0, "beta": jnp.zeros(3)}


def log_p(theta):
    return (-0.5 * ((theta["mu"] - MU) / SD_MU) ** 2
            - 0.5 * jnp.sum(((theta["beta"] - BETA) / SD_BETA) ** 2) + 3.0)


@pytest.mark.timeout(120)
def test_pytree_target_fits_over_the_flattened_vector_and_draws_back_the_pytree():
    r = kb.fit(Gaussian(4), log_p, direction="reverse", key=0, example=EXAMPLE)
    assert r.converged
    # leaves in jax.tree order (dict keys sorted): beta (3,), then mu
    np.testing.assert_allclose(r.params["loc"], np.r_[BETA, MU], atol=1e-6)
    np.testing.assert_allclose(r.params["scale"], np.r_[SD_BETA, SD_MU], atol=1e-6)
    draws = r.draws(1, 5000)
    assert set(draws) == {"mu", "beta"} and draws["mu"].shape == (5000,) and draws["beta"].shape == (5000, 3)
    np.testing.assert_allclose(np.std(draws["beta"], axis=0), SD_BETA, rtol=0.05)  # MC: ~1% sd error
    means = r.means(key=2, num=20000)
    np.testing.assert_allclose(means["mu"], MU, atol=4 * SD_MU / np.sqrt(20000))
    np.testing.assert_allclose(means["beta"], BETA, atol=4 * float(SD_BETA.max()) / np.sqrt(20000))
    # log Z = 3 + Σ log(√(2π) sd): exact up to the optimiser
    log_z = 3.0 + 0.5 * 4 * np.log(2 * np.pi) + np.log(SD_MU) + np.sum(np.log(SD_BETA))
    np.testing.assert_allclose(float(r.log_z), log_z, atol=1e-5)


def test_pytree_and_family_dimension_must_agree():
    with pytest.raises(ValueError, match=r"family's dimension to equal the size of example.*\(4,\)"):
        kb.fit(Gaussian(3), log_p, direction="reverse", key=0, example=EXAMPLE)
    with pytest.raises(TypeError, match="example= describes the pytree argument of a log density"):
        kb.fit(Gaussian(4), kb.families.Gaussian(4).distribution(Gaussian(4).init_at(jnp.zeros(4), 1.0)),
               direction="reverse", key=0, example=EXAMPLE)
