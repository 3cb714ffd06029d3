"""Shared helpers: tiny configurations that train in seconds on a CPU."""

import copy

import pytest

from heterodiff.config import expand, validate

TINY_STUDY = {
    "seeds": [0],
    "data": {"n_classes": 2, "dim": 4, "n_train": 32, "imbalance_ratio": 3},
    "model": {"width": 32, "depth": 2, "time_embedding_dim": 16},
    "diffusion": {"num_train_timesteps": 100},
    "train": {"steps": 60, "batch_size": 16, "checkpoints": 3, "checkpoint_first": 10, "log_every": 10, "state_every": 20, "device": "cpu"},
    "evaluate": {"n_samples": 64, "num_inference_steps": 10, "bootstrap_samples": 100, "device": "cpu"},
}


def tiny_run(**sections):
    study = copy.deepcopy(TINY_STUDY)
    for section, values in sections.items():
        study[section] = {**study.get(section, {}), **values}
    config = validate({"studies": {"tiny": study}})
    return next(iter(expand(config)["tiny"].runs.values()))


@pytest.fixture
def run():
    return tiny_run()


TINY_IMAGE_STUDY = {
    "seeds": [0],
    "data": {"kind": "images", "images": {"source": "digits", "rebalance": {"n_max": 20}}},
    "model": {"unet": {"block_channels": [16, 32]}},
    "diffusion": {"num_train_timesteps": 100, "clip_sample": True},
    "train": {"steps": 20, "batch_size": 16, "checkpoints": 2, "checkpoint_first": 10, "log_every": 10, "state_every": 10, "device": "cpu"},
    "evaluate": {"n_samples": 32, "num_inference_steps": 5, "bootstrap_samples": 100, "device": "cpu"},
}


def tiny_image_run(**sections):
    """Return the run of a tiny digits study; each section's keys override the tiny defaults."""
    study = copy.deepcopy(TINY_IMAGE_STUDY)
    for section, values in sections.items():
        study[section] = {**study.get(section, {}), **values}
    config = validate({"studies": {"tiny": study}})
    return next(iter(expand(config)["tiny"].runs.values()))
