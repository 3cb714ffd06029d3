"""Reverse-process times: the exact population process against the closed form for two symmetric classes."""

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from scipy.special import expit

from heterodiff import trajectories
from heterodiff.data import MixtureDataset

NORM = 3.0  # |mu|: classes at +mu and -mu with unit variance are well separated


def two_symmetric_classes(dim=2):
    means = np.zeros((2, dim))
    means[0, 0], means[1, 0] = NORM, -NORM
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, dim)) + np.repeat(means, 20, axis=0)
    labels = np.repeat([0, 1], 20)
    return MixtureDataset(x, labels, x, labels, np.array([0.5, 0.5]), means, np.stack([np.eye(dim)] * 2))


def analytic_agreement(alpha_bar: float) -> float:
    """Return E[p(+|x_t)^2 + p(-|x_t)^2]: the chance that two exact reverse runs from x_t end in one class.

    Along mu, x_t is a mixture of N(+a, s^2) and N(-a, s^2) with a = sqrt(alpha_bar) |mu| and
    s^2 = alpha_bar + 1 - alpha_bar = 1, and p(+|x_t) = sigmoid(2 a u / s^2). By symmetry the
    expectation over the mixture equals the one over the + component.
    """
    a, variance = np.sqrt(alpha_bar) * NORM, 1.0
    u = np.linspace(a - 12, a + 12, 20001)
    density = np.exp(-((u - a) ** 2) / (2 * variance)) / np.sqrt(2 * np.pi * variance)
    plus = expit(2 * a * u / variance)
    return float(np.trapezoid(density * (plus**2 + (1 - plus) ** 2), u))


@pytest.fixture(scope="module")
def population_curves():
    dataset = two_symmetric_classes()
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False)
    scheduler.set_timesteps(100)
    denoiser = trajectories.ExactDenoiser("population", dataset, scheduler.alphas_cumprod)
    settings = {"restart_points": 12, "n_trajectories": 300, "clones": 8, "seed": 0}
    curves = trajectories.agreement_curves(denoiser, scheduler, dataset, settings, 1 / 3, "cpu")
    return curves, scheduler.alphas_cumprod.double().numpy()


def test_population_agreement_matches_closed_form(population_curves):
    curves, alphas_cumprod = population_curves
    simulated = curves["same_class"].mean(axis=1)
    expected = np.array([analytic_agreement(alphas_cumprod[t]) for t in curves["timesteps"]])
    assert np.abs(simulated - expected).max() < 0.05
    assert expected[0] == pytest.approx(0.5, abs=0.01)  # from pure noise the class is a coin flip
    assert expected[-1] > 0.99


def test_population_speciation_time_matches_closed_form(population_curves):
    curves, alphas_cumprod = population_curves
    threshold = 0.9
    rows = trajectories.commitment_times(curves, 2, threshold, alphas_cumprod)
    agreement = np.array([analytic_agreement(alphas_cumprod[t]) for t in curves["timesteps"]])
    expected = (agreement - 0.5) / 0.5  # above chance: each class ends half of the trajectories
    expected_timestep = int(curves["timesteps"][trajectories.committed_from(expected, threshold)])
    for row in rows:
        if row["quantity"] == "speciation":
            assert row["timestep"] == expected_timestep
            assert row["n_trajectories"] > 100


def test_committed_from_requires_staying_above():
    assert trajectories.committed_from(np.array([0.5, 0.95, 0.7, 0.92, 1.0]), 0.9) == 3
    assert trajectories.committed_from(np.array([0.5, 0.6, 0.95]), 0.9) == 2
    assert trajectories.committed_from(np.array([0.95, 0.96]), 0.9) == 0
    assert trajectories.committed_from(np.array([0.95, 0.5]), 0.9) is None


def test_empirical_process_collapses_onto_training_points():
    dataset = two_symmetric_classes()
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False)
    scheduler.set_timesteps(50)
    denoiser = trajectories.ExactDenoiser("empirical", dataset, scheduler.alphas_cumprod)
    settings = {"restart_points": 6, "n_trajectories": 40, "clones": 4, "seed": 1}
    curves = trajectories.agreement_curves(denoiser, scheduler, dataset, settings, 1 / 3, "cpu")
    assert curves["memorised"].mean() > 0.9  # the empirical score regenerates training points
    assert curves["same_point"][-1].mean() > 0.9
    rows = trajectories.commitment_times(curves, 2, 0.9, scheduler.alphas_cumprod.double().numpy())
    collapse = [row for row in rows if row["quantity"] == "collapse"]
    speciation = {row["class"]: row["timestep"] for row in rows if row["quantity"] == "speciation"}
    for row in collapse:
        # A trajectory commits to a class before (at a larger timestep than) it commits to one point.
        assert row["timestep"] is not None
        assert row["timestep"] <= speciation[row["class"]]


def test_exact_denoiser_rejects_unknown_process():
    with pytest.raises(ValueError, match="unknown exact process"):
        trajectories.ExactDenoiser("exact", two_symmetric_classes(), torch.ones(10))
