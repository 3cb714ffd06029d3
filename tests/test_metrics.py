"""Memorisation statistics: nearest neighbours, the d1/d2 criterion and bootstrap intervals."""

import numpy as np
import pytest

from heterodiff.evaluation import memorisation_rows
from heterodiff.metrics import bootstrap_interval, distance_ratio, nearest_two

EVALUATE = {"memorisation_ratio": 1 / 3, "bootstrap_samples": 2000, "confidence_level": 0.95}


def brute_force(queries, reference):
    distances = np.linalg.norm(queries[:, None, :] - reference[None], axis=2) / np.sqrt(queries.shape[1])
    order = np.argsort(distances, axis=1)
    rows = np.arange(len(queries))
    return distances[rows, order[:, 0]], distances[rows, order[:, 1]], order[:, 0]


@pytest.mark.parametrize("block_size", [1, 7, 1000])
def test_blocked_search_matches_brute_force(block_size):
    rng = np.random.default_rng(1)
    queries, reference = rng.standard_normal((50, 6)), rng.standard_normal((40, 6))
    d1, d2, nearest = nearest_two(queries, reference, block_size=block_size)
    expected_d1, expected_d2, expected_nearest = brute_force(queries, reference)
    assert np.allclose(d1, expected_d1)
    assert np.allclose(d2, expected_d2)
    assert np.array_equal(nearest, expected_nearest)


def test_planted_copies_flagged_and_heldout_not():
    rng = np.random.default_rng(2)
    train = rng.standard_normal((200, 8))
    heldout = rng.standard_normal((200, 8))
    copies = train[:30] + 1e-4 * rng.standard_normal((30, 8))
    fresh = rng.standard_normal((70, 8))
    generated = np.concatenate([copies, fresh])

    d1, d2, nearest = nearest_two(generated, train)
    ratio = distance_ratio(d1, d2)
    assert np.all(ratio[:30] < 1 / 3)
    assert np.array_equal(nearest[:30], np.arange(30))
    assert (ratio[30:] < 1 / 3).mean() < 0.1

    h1, h2, _ = nearest_two(generated, heldout)
    assert (distance_ratio(h1, h2) < 1 / 3).mean() < 0.1


def test_exact_duplicate_in_reference_counts_as_memorised():
    reference = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0]])
    d1, d2, _ = nearest_two(np.array([[0.0, 0.0]]), reference)
    assert d1[0] == 0.0
    assert d2[0] == 0.0
    assert distance_ratio(d1, d2)[0] == 0.0


def test_distances_scaled_by_sqrt_dim():
    d1, d2, _ = nearest_two(np.zeros((1, 4)), np.array([[2.0, 0, 0, 0], [0, 0, 0, 4.0]]))
    assert d1[0] == pytest.approx(1.0)
    assert d2[0] == pytest.approx(2.0)


def test_bootstrap_interval_covers_mean():
    flags = np.r_[np.ones(30), np.zeros(70)]
    low, high = bootstrap_interval(flags, 5000, 0.95, np.random.default_rng(0))
    # Normal approximation of the binomial: 0.3 +- 1.96 * sqrt(0.3 * 0.7 / 100) = [0.21, 0.39].
    assert low == pytest.approx(0.21, abs=0.02)
    assert high == pytest.approx(0.39, abs=0.02)


def test_memorised_fraction_per_class():
    ratio = np.array([0.1, 0.2, 0.9, 0.9, 0.1, 0.9])
    labels = np.array([0, 0, 0, 0, 1, 1])
    rows = memorisation_rows(5, ratio, labels, 3, EVALUATE, "memorised_fraction", np.random.default_rng(0))
    values = {row["class"]: row["value"] for row in rows}
    assert values[None] == pytest.approx(0.5)
    assert values[0] == pytest.approx(0.5)
    assert values[1] == pytest.approx(0.5)
    assert values[2] is None  # no generated sample is nearest to a class-2 point
