"""Exact mixture references: scores against finite differences, the empirical denoiser, distances."""

import numpy as np
import pytest
from scipy.special import logsumexp

from heterodiff import diagnostics, mixture


def mixture_parameters():
    weights = np.array([0.6, 0.4])
    means = np.array([[2.0, -1.0, 0.5], [-1.5, 1.0, 0.0]])
    covariances = np.stack([np.diag([0.5, 1.0, 2.0]), 0.7 * np.eye(3)])
    return weights, means, covariances


def finite_difference_gradient(function, x, h=1e-5):
    gradient = np.zeros_like(x)
    for i in range(x.shape[1]):
        step = np.zeros(x.shape[1])
        step[i] = h
        gradient[:, i] = (function(x + step) - function(x - step)) / (2 * h)
    return gradient


@pytest.mark.parametrize("alpha_bar", [0.999, 0.5, 0.05])
def test_population_score_is_gradient_of_log_density(alpha_bar):
    weights, means, covariances = mixture_parameters()
    x = np.random.default_rng(0).standard_normal((20, 3)) * 2
    expected = finite_difference_gradient(lambda y: mixture.log_density(y, weights, means, covariances, alpha_bar), x)
    score = diagnostics.population_score(x, weights, means, covariances, alpha_bar)
    assert np.allclose(score, expected, atol=1e-5)


@pytest.mark.parametrize("alpha_bar", [0.99, 0.6, 0.1])
def test_empirical_score_is_gradient_of_smoothed_training_density(alpha_bar):
    rng = np.random.default_rng(1)
    points = rng.standard_normal((15, 3))
    x = rng.standard_normal((10, 3))

    def log_density(y):
        squared = ((y[:, None, :] - np.sqrt(alpha_bar) * points[None]) ** 2).sum(-1)
        return logsumexp(-squared / (2 * (1 - alpha_bar)), axis=1)

    expected = finite_difference_gradient(log_density, x)
    assert np.allclose(diagnostics.empirical_score(x, points, alpha_bar), expected, atol=1e-5)


def test_empirical_denoiser_is_softmax_weighted_average():
    rng = np.random.default_rng(2)
    points = rng.standard_normal((30, 4))
    x = rng.standard_normal((7, 4))
    alpha_bar = 0.3
    logits = -((x[:, None, :] - np.sqrt(alpha_bar) * points[None]) ** 2).sum(-1) / (2 * (1 - alpha_bar))
    weights = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    assert np.allclose(diagnostics.empirical_denoiser(x, points, alpha_bar, block_size=3), weights @ points)


def test_empirical_score_stable_at_low_noise():
    points = np.array([[0.0, 0.0], [100.0, 100.0]])
    score = diagnostics.empirical_score(np.array([[50.0, 40.0]]), points, alpha_bar=1 - 1e-6)
    assert np.all(np.isfinite(score))


def test_empirical_denoiser_returns_training_point_near_it():
    points = np.array([[0.0, 0.0], [3.0, 3.0]])
    denoised = diagnostics.empirical_denoiser(np.array([[2.9, 3.1]]), points, alpha_bar=0.999)
    assert np.allclose(denoised, [[3.0, 3.0]])


def test_sliced_wasserstein_of_shifted_sample():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 2))
    directions = diagnostics.random_directions(2, 500, seed=0)
    # A shift by s along every projection moves each 1-D distribution by s * cos(angle): SW2^2 = s^2 / 2 in 2-D.
    assert diagnostics.sliced_wasserstein(x, x + np.array([2.0, 0.0]), directions) == pytest.approx(np.sqrt(2.0), rel=0.03)
    assert diagnostics.sliced_wasserstein(x, x, directions) == 0.0


def test_region_samples_are_in_their_class():
    weights, means, covariances = mixture_parameters()
    rng = np.random.default_rng(4)
    region = diagnostics.sample_region(500, 1, weights, means, covariances, rng)
    assert region.shape == (500, 3)
    assert np.all(mixture.posterior(region, weights, means, covariances).argmax(axis=1) == 1)


def test_floor_shrinks_with_sample_size():
    weights, means, covariances = mixture_parameters()
    dataset = type("Data", (), {"weights": weights, "means": means, "covariances": covariances, "n_classes": 2, "dim": 3, "x_train": means})
    settings = {"floor_repeats": 3, "projections": 32, "score_timesteps": [10], "score_samples": 8}
    reference = diagnostics.MixtureReference(dataset, settings, 800, np.linspace(0.99, 0.01, 100), seed=0)
    assert reference.floor(0, 800) < reference.floor(0, 50)
    # A sample of the true class distribution has a distance near its floor; a shifted one far above.
    member = diagnostics.sample_region(400, 0, weights, means, covariances, np.random.default_rng(9))
    assert reference.gen_ratio(member, 0) < 2.0
    assert reference.gen_ratio(member + 1.0, 0) > 5.0
