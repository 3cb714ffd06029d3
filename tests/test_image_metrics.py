"""Feature-space metrics on constructed sets: k-NN precision and recall, and the Fréchet distance."""

import numpy as np
import pytest

from heterodiff.image_metrics import frechet_distance, knn_radii, precision_recall


def gaussian(n, dim=4, shift=0.0, scale=1.0, seed=0):
    return np.random.default_rng(seed).normal(shift, scale, (n, dim))


def test_identical_sets_full_precision_and_recall():
    points = gaussian(200)
    precision, recall = precision_recall(points, points.copy(), k=3)
    assert precision == 1.0
    assert recall == 1.0


def test_disjoint_sets_zero_precision_and_recall():
    precision, recall = precision_recall(gaussian(200), gaussian(200, shift=50.0, seed=1), k=3)
    assert precision == 0.0
    assert recall == 0.0


def test_collapsed_generator_precise_but_low_recall():
    real = gaussian(400)
    collapsed = gaussian(400, scale=0.05, seed=1)  # all samples near the real mode
    precision, recall = precision_recall(real, collapsed, k=3)
    assert precision > 0.95
    assert recall < 0.2


def test_knn_radius_excludes_the_point_itself():
    points = np.array([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(points, 1).tolist() == [1.0, 1.0, 4.0, 16.0]  # squared distance to the nearest other point
    assert knn_radii(points, 2).tolist() == [9.0, 4.0, 9.0, 36.0]


def test_knn_radius_needs_more_than_k_points():
    with pytest.raises(ValueError, match="needs more than 3 points, got 3"):
        knn_radii(gaussian(3), 3)


def test_frechet_identical_sets_zero():
    points = gaussian(300, dim=6)
    assert frechet_distance(points, points.copy()) == pytest.approx(0.0, abs=1e-8)


def test_frechet_disjoint_sets_mean_shift():
    first = gaussian(2000, dim=3)
    second = first + np.array([10.0, 0.0, 0.0])  # same covariance, mean moved by 10
    assert frechet_distance(first, second) == pytest.approx(100.0, rel=1e-6)


def test_frechet_scale_matches_closed_form():
    # N(0, I) against N(0, 4 I) in dimension d: Tr(I + 4I - 2 * 2I) = d.
    first = gaussian(20000, dim=2, seed=3)
    second = gaussian(20000, dim=2, scale=2.0, seed=4)
    assert frechet_distance(first, second) == pytest.approx(2.0, rel=0.05)


def test_frechet_fewer_points_than_dimensions_finite():
    value = frechet_distance(gaussian(3, dim=16), gaussian(4, dim=16, seed=1))
    assert np.isfinite(value)
    assert value > 0
