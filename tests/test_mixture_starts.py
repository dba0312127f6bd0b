"""Mixture starts: greedy k-means++ then k-means (scikit-learn's default start), collapse warnings."""

import warnings

import numpy as np
import pytest

import kullback as kb

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_iris, load_wine  # noqa: E402
from sklearn.metrics import adjusted_rand_score  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


@pytest.mark.parametrize("loader", [load_iris, load_wine], ids=["iris", "wine"])
def test_one_start_is_as_good_as_sklearns_one_start(loader):
    """With one start on each side (sklearn n_init=1, its default k-means start), over 8 seeds the
    median mean log-likelihood is at least sklearn's (to 0.01 nats)."""
    x = StandardScaler().fit_transform(loader().data)
    family = kb.families.Mixture(kb.families.Gaussian(x.shape[1], covariance="full"), 3)
    ours, theirs = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(8):
            ours.append(kb.fit(family, x, key=seed, tol=1e-6, max_iter=500).log_likelihood / len(x))
            g = GaussianMixture(3, covariance_type="full", n_init=1, random_state=seed, tol=1e-6, max_iter=500)
            theirs.append(g.fit(x).score(x))
    assert np.median(ours) >= np.median(theirs) - 0.01, (ours, theirs)


def test_two_separated_clusters_are_found_from_every_seed():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0.0, 1.0, (900, 2)), rng.normal(8.0, 0.5, (100, 2))])
    truth = np.repeat([0, 1], [900, 100])
    family = kb.families.Mixture(kb.families.Gaussian(2, covariance="full"), 2)
    for seed in range(6):
        r = kb.fit(family, x, key=seed)
        labels = np.argmax(np.asarray(r.q.component_log_probs(x)), axis=-1)
        assert adjusted_rand_score(truth, labels) == 1.0


def test_a_collapsed_component_is_warned_and_not_preferred():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-4, 1, (300, 2)), rng.normal(4, 1, (300, 2)), np.full((2, 2), 20.0)])
    family = kb.families.Mixture(kb.families.Gaussian(2, covariance="full"), 3)
    with pytest.warns(UserWarning, match="collapsed onto fewer than d"):
        r = kb.fit(family, x, key=0)
    assert "not a better optimum" in r.message
