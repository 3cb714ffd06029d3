"""Exact mixture quantities against sampling and known closed forms."""

import numpy as np
import pytest

from heterodiff import mixture


def two_class_mixture():
    weights = np.array([0.7, 0.3])
    means = np.array([[1.0, 0.0, 0.5], [-1.0, 0.5, 0.0]])
    covariances = np.stack([0.5 * np.eye(3), np.diag([1.0, 2.0, 0.3])])
    return weights, means, covariances


@pytest.mark.parametrize("alpha_bar", [1.0, 0.6, 0.1])
def test_posterior_matches_monte_carlo(alpha_bar):
    """Draw (class, x_t) pairs, bin x_t along the first axis and compare class frequencies per bin."""
    weights, means, covariances = two_class_mixture()
    rng = np.random.default_rng(0)
    n = 400_000
    labels = rng.choice(2, size=n, p=weights)
    x0 = means[labels] + np.einsum("nij,nj->ni", np.linalg.cholesky(covariances)[labels], rng.standard_normal((n, 3)))
    xt = np.sqrt(alpha_bar) * x0 + np.sqrt(1 - alpha_bar) * rng.standard_normal((n, 3))
    exact = mixture.posterior(xt, weights, means, covariances, alpha_bar)[:, 0]

    # E[1{k=0} | x] = p(0 | x): within any region, the mean of the exact posterior equals the class frequency.
    edges = np.quantile(xt[:, 0], np.linspace(0, 1, 11))
    bins = np.clip(np.digitize(xt[:, 0], edges) - 1, 0, 9)
    for b in range(10):
        inside = bins == b
        assert exact[inside].mean() == pytest.approx((labels[inside] == 0).mean(), abs=0.01)


def test_posterior_rows_sum_to_one_far_from_means():
    weights, means, covariances = two_class_mixture()
    x = np.array([[1e3, -1e3, 50.0], [0.0, 0.0, 0.0]])
    posterior = mixture.posterior(x, weights, means, covariances)
    assert np.all(np.isfinite(posterior))
    assert np.allclose(posterior.sum(axis=1), 1.0)


def test_log_density_of_single_gaussian():
    means = np.array([[0.0, 0.0]])
    covariances = np.array([np.eye(2) * 2.0])
    x = np.array([[1.0, -1.0]])
    expected = -0.5 * (2 / 2.0) - np.log(2 * np.pi * 2.0)
    assert mixture.log_density(x, np.array([1.0]), means, covariances)[0] == pytest.approx(expected)


def test_noised_covariance_at_full_noise_is_identity():
    weights, means, covariances = two_class_mixture()
    noised_means, noised_covariances = mixture.noised_components(means, covariances, alpha_bar=0.0)
    assert np.allclose(noised_means, 0.0)
    assert np.allclose(noised_covariances, np.eye(3))
