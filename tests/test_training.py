"""Training: checkpoint schedule, seeded determinism, diffusers save/load, resume and divergence."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_run
from safetensors.torch import load_file

from heterodiff import training
from heterodiff.data import make_mixture
from heterodiff.evaluation import list_checkpoints, load_denoiser
from heterodiff.models import MLPDenoiser


def train(run, folder):
    dataset = make_mixture(run.params["data"])
    training.train_run(run.params, dataset, folder, folder / "checkpoints", folder / "train_log.parquet")
    return folder / "checkpoints"


def weights(checkpoints):
    return {step: load_file(folder / "model" / "diffusion_pytorch_model.safetensors") for step, folder in list_checkpoints(checkpoints)}


def assert_same_weights(first, second):
    assert first.keys() == second.keys()
    for step in first:
        for name in first[step]:
            assert torch.equal(first[step][name], second[step][name]), (step, name)


def test_checkpoint_steps_log_spaced():
    steps = training.checkpoint_steps(
        {"checkpoint_steps": None, "checkpoint_first": 10, "steps": 10000, "checkpoints": 4, "checkpoint_spacing": "log"}
    )
    assert steps == [10, 100, 1000, 10000]


def test_checkpoint_steps_explicit_include_last():
    steps = training.checkpoint_steps({"checkpoint_steps": [5, 50], "steps": 80})
    assert steps == [5, 50, 80]


def test_same_seed_same_checkpoints(run, tmp_path):
    first = weights(train(run, tmp_path / "a"))
    second = weights(train(run, tmp_path / "b"))
    assert sorted(first) == [10, 24, 60]
    assert_same_weights(first, second)


def test_other_seed_other_weights(run, tmp_path):
    other_seed = dataclasses.replace(run, seed=1, params={**run.params, "seed": 1})
    first = weights(train(run, tmp_path / "a"))
    other = weights(train(other_seed, tmp_path / "b"))
    assert not torch.equal(first[60]["input.weight"], other[60]["input.weight"])


def test_checkpoint_loads_with_diffusers(run, tmp_path):
    checkpoints = train(run, tmp_path)
    model = MLPDenoiser.from_pretrained(checkpoints / "step_000000060" / "model")
    assert model.config.width == 32
    assert model.config.dim == 4
    output = model(torch.zeros(3, 4), torch.tensor([5]))
    assert output.shape == (3, 4)
    assert (checkpoints / "scheduler" / "scheduler_config.json").exists()


def test_ema_weights_saved_and_preferred(tmp_path):
    checkpoints = train(tiny_run(train={"ema_decay": 0.9}), tmp_path)
    folder = checkpoints / "step_000000060"
    raw = load_file(folder / "model" / "diffusion_pytorch_model.safetensors")
    averaged = load_file(folder / "ema" / "diffusion_pytorch_model.safetensors")
    assert not torch.equal(raw["input.weight"], averaged["input.weight"])
    loaded = load_denoiser(folder, torch.device("cpu"))
    assert torch.equal(loaded.input.weight.detach(), averaged["input.weight"])


def test_loss_logged_per_bucket(run, tmp_path):
    train(run, tmp_path)
    log = pd.read_parquet(tmp_path / "train_log.parquet")
    assert sorted(log["step"].unique()) == [10, 20, 30, 40, 50, 60]
    per_step = log[log["step"] == 60]
    assert per_step["bucket"].isna().sum() == 1
    buckets = per_step.dropna(subset=["bucket"])
    assert buckets["bucket"].tolist() == list(range(10))
    assert buckets["t_min"].tolist() == list(range(0, 100, 10))
    assert buckets["count"].sum() == 10 * 16  # 10 steps of batch 16 since the last row
    overall = per_step[per_step["bucket"].isna()].iloc[0]
    assert overall["loss"] == pytest.approx((buckets["loss"] * buckets["count"]).sum() / buckets["count"].sum())


def test_resume_after_crash_gives_same_checkpoints(run, tmp_path, monkeypatch):
    reference = weights(train(run, tmp_path / "reference"))

    original = training._save_checkpoint
    calls = []

    def crash_on_second_checkpoint(directory, model, ema):
        calls.append(directory)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated kill")
        original(directory, model, ema)

    monkeypatch.setattr(training, "_save_checkpoint", crash_on_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train(run, tmp_path / "resumed")
    assert (tmp_path / "resumed" / training.STATE_DIR / "state.pt").exists()
    monkeypatch.setattr(training, "_save_checkpoint", original)

    resumed = weights(train(run, tmp_path / "resumed"))
    assert_same_weights(reference, resumed)
    assert not (tmp_path / "resumed" / training.STATE_DIR).exists()


def test_corrupt_state_falls_back_to_previous(run, tmp_path, monkeypatch, caplog):
    reference = weights(train(run, tmp_path / "reference"))
    original = training._save_checkpoint

    def crash_on_last_checkpoint(directory, model, ema):
        if directory.name.endswith("60"):
            raise KeyboardInterrupt("simulated kill")
        original(directory, model, ema)

    monkeypatch.setattr(training, "_save_checkpoint", crash_on_last_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train(run, tmp_path / "run")
    monkeypatch.setattr(training, "_save_checkpoint", original)
    state = tmp_path / "run" / training.STATE_DIR / "state.pt"
    state.write_bytes(state.read_bytes()[:100])  # truncated as by a kill during the write

    resumed = weights(train(run, tmp_path / "run"))
    assert "is corrupt" in caplog.text
    assert str(state) in caplog.text
    assert_same_weights(reference, resumed)


def test_nan_loss_stops_with_step_and_checkpoint(run, tmp_path):
    dataset = make_mixture(run.params["data"])
    dataset.x_train[:] = np.nan
    with pytest.raises(training.TrainingDiverged, match=r"loss is nan at step 10 .*last good checkpoint: none"):
        training.train_run(run.params, dataset, tmp_path, tmp_path / "checkpoints", tmp_path / "log.parquet")
    assert not (tmp_path / "checkpoints").exists()
    assert not (tmp_path / "log.parquet").exists()
