"""Gaussian-mixture generation: exact counts, weights and centroid geometry."""

import numpy as np
import pytest

from heterodiff.config import expand, validate
from heterodiff.data import MixtureDataset, class_counts, class_weights, make_mixture


def data_params(**overrides):
    config = validate({"studies": {"s": {"data": overrides}}})
    return next(iter(expand(config)["s"].runs.values())).params["data"]


def test_counts_exact_for_ratio_three():
    dataset = make_mixture(data_params(n_train=512, imbalance_ratio=3))
    assert np.bincount(dataset.y_train).tolist() == [384, 128]
    assert np.bincount(dataset.y_heldout).tolist() == [384, 128]
    assert dataset.weights.tolist() == [0.75, 0.25]


def test_counts_sum_to_n_with_largest_remainder():
    counts = class_counts(10, np.array([1 / 3, 1 / 3, 1 / 3]))
    assert counts.tolist() == [4, 3, 3]
    counts = class_counts(1000, class_weights({"n_classes": 5, "imbalance_ratio": 100, "imbalance_profile": "exponential"}))
    assert counts.sum() == 1000
    assert counts[0] / counts[-1] == pytest.approx(100, rel=0.05)


def test_exponential_profile_is_long_tailed():
    weights = class_weights({"n_classes": 3, "imbalance_ratio": 16, "imbalance_profile": "exponential"})
    assert weights[0] / weights[1] == pytest.approx(4)
    assert weights[0] / weights[2] == pytest.approx(16)


def test_step_profile_has_two_levels():
    weights = class_weights({"n_classes": 4, "imbalance_ratio": 5, "imbalance_profile": "step"})
    assert weights.tolist() == pytest.approx([5 / 12, 5 / 12, 1 / 12, 1 / 12])


def test_explicit_weights_normalised():
    dataset = make_mixture(data_params(n_classes=3, weights=[2, 1, 1], n_train=100))
    assert np.bincount(dataset.y_train).tolist() == [50, 25, 25]


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_simplex_means_equidistant_and_centred(n_classes):
    dataset = make_mixture(data_params(n_classes=n_classes, dim=8, geometry="simplex", centroid_distance=3.0))
    distances = [np.linalg.norm(a - b) for i, a in enumerate(dataset.means) for b in dataset.means[i + 1 :]]
    assert np.allclose(distances, 3.0)
    assert np.allclose(dataset.means.mean(axis=0), 0.0)


def test_two_class_simplex_plus_minus_mu():
    dataset = make_mixture(data_params(geometry="simplex", centroid_norm=2.5))
    assert np.allclose(dataset.means[0], -dataset.means[1])
    assert np.allclose(np.linalg.norm(dataset.means, axis=1), 2.5)


def test_orthogonal_means():
    dataset = make_mixture(data_params(n_classes=3, dim=4, geometry="orthogonal", centroid_distance=2.0))
    gram = dataset.means @ dataset.means.T
    assert np.allclose(gram - np.diag(np.diag(gram)), 0.0)
    assert np.allclose(np.linalg.norm(dataset.means[0] - dataset.means[2]), 2.0)


def test_random_means_have_requested_norm():
    dataset = make_mixture(data_params(n_classes=4, dim=16, geometry="random", centroid_norm=3.0))
    assert np.allclose(np.linalg.norm(dataset.means, axis=1), 3.0)


def test_explicit_means_and_per_class_variance():
    means = [[0.0, 0.0], [10.0, 0.0]]
    dataset = make_mixture(data_params(dim=2, geometry="explicit", means=means, variance=[0.01, 4.0], n_train=4000))
    assert np.array_equal(dataset.means, means)
    assert np.allclose(dataset.covariances[0], 0.01 * np.eye(2))
    assert np.allclose(dataset.covariances[1], 4.0 * np.eye(2))
    assert dataset.x_train[dataset.y_train == 0].var(axis=0).mean() == pytest.approx(0.01, rel=0.1)
    assert dataset.x_train[dataset.y_train == 1].var(axis=0).mean() == pytest.approx(4.0, rel=0.1)


def test_same_seed_same_data(tmp_path):
    first = make_mixture(data_params(seed=3))
    first.save(tmp_path / "d.npz")
    second = MixtureDataset.load(tmp_path / "d.npz")
    assert first.train_sha256() == second.train_sha256()
    assert make_mixture(data_params(seed=4)).train_sha256() != first.train_sha256()


def test_heldout_size_does_not_change_training_set():
    small = make_mixture(data_params(n_heldout=10))
    large = make_mixture(data_params(n_heldout=1000))
    assert small.train_sha256() == large.train_sha256()


def test_empty_class_rejected():
    with pytest.raises(ValueError, match="without samples"):
        make_mixture(data_params(n_train=10, imbalance_ratio=100))


def test_corrupt_dataset_file_named(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="broken.npz"):
        MixtureDataset.load(path)
