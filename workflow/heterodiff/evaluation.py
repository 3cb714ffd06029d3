"""Evaluation of one run: sample every checkpoint from one fixed noise, then compute the metrics."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from heterodiff import mixture, tables, trajectories
from heterodiff.data import MixtureDataset
from heterodiff.diagnostics import MixtureReference
from heterodiff.metrics import bootstrap_interval, distance_ratio, nearest_two
from heterodiff.models import MLPDenoiser
from heterodiff.runtime import describe_device, select_device

log = logging.getLogger("heterodiff")


def list_checkpoints(checkpoints_dir: str | Path) -> list[tuple[int, Path]]:
    """Return (step, folder) for every checkpoint, in step order."""
    found = []
    for folder in Path(checkpoints_dir).glob("step_*"):
        if folder.is_dir() and folder.name[5:].isdigit():
            found.append((int(folder.name[5:]), folder))
    if not found:
        raise FileNotFoundError(f"no checkpoints (step_* folders) in {checkpoints_dir}; rerun the train rule")
    return sorted(found)


def load_denoiser(folder: Path, device: torch.device, model_class=MLPDenoiser):
    """Load a checkpoint, preferring its EMA weights; a damaged checkpoint is reported with its path."""
    weights = folder / "ema" if (folder / "ema").is_dir() else folder / "model"
    try:
        model = model_class.from_pretrained(weights, low_cpu_mem_usage=False)
    except (OSError, ValueError, RuntimeError, EnvironmentError) as error:
        raise RuntimeError(f"checkpoint {weights} cannot be loaded ({error}); delete the run's checkpoints and retrain") from error
    return model.to(device).eval()


def make_sampler(checkpoints_dir: Path, sampler: str, num_inference_steps: int):
    """Build the reverse-process scheduler from the training scheduler saved with the checkpoints."""
    training_scheduler = DDPMScheduler.from_pretrained(Path(checkpoints_dir) / "scheduler")
    if sampler == "ddim":
        scheduler = DDIMScheduler.from_config(training_scheduler.config)
    else:
        scheduler = training_scheduler
    scheduler.set_timesteps(num_inference_steps)
    return scheduler


@torch.no_grad()
def generate(model, scheduler, initial_noise: torch.Tensor, noise_seed: int) -> torch.Tensor:
    """Run the reverse process from initial_noise; DDPM draws its step noise from a seeded generator."""
    sample = initial_noise.clone()
    generator = torch.Generator(device=initial_noise.device).manual_seed(noise_seed + 1)
    for t in scheduler.timesteps:
        epsilon = model(sample, t)
        if isinstance(scheduler, DDIMScheduler):
            sample = scheduler.step(epsilon, t, sample, eta=0.0).prev_sample
        else:
            sample = scheduler.step(epsilon, t, sample, generator=generator).prev_sample
    return sample


def memorisation_rows(step: int, ratio: np.ndarray, labels: np.ndarray, n_classes: int, evaluate: dict, metric: str, rng) -> list[dict]:
    """Return the memorised fraction overall and per class (class of the nearest reference sample)."""
    flags = ratio < evaluate["memorisation_ratio"]
    rows = []
    for label in [None, *range(n_classes)]:
        selected = flags if label is None else flags[labels == label]
        value = float(selected.mean()) if len(selected) else None
        low, high = bootstrap_interval(selected, evaluate["bootstrap_samples"], evaluate["confidence_level"], rng) if len(selected) else (None, None)
        rows.append({"step": step, "class": label, "metric": metric, "value": value, "ci_low": low, "ci_high": high})
    return rows


def sample_checkpoint(model, folder: Path, step: int, checkpoints_dir: Path, evaluate: dict, initial_noise) -> np.ndarray:
    """Generate one checkpoint's samples from the fixed noise; raise when they are not finite."""
    scheduler = make_sampler(checkpoints_dir, evaluate["sampler"], evaluate["num_inference_steps"])
    samples = generate(model, scheduler, initial_noise, evaluate["noise_seed"]).cpu().numpy().astype(np.float64)
    if not np.isfinite(samples).all():
        raise RuntimeError(f"checkpoint {folder} generated non-finite samples; the run diverged before step {step}")
    return samples


def memorisation_against_sets(step: int, samples: np.ndarray, dataset, evaluate: dict, device, rng) -> tuple:
    """Measure memorisation against the exact training set and, as the control, against held-out data.

    Returns the metric rows, the d1/d2 ratios to the training set and each sample's nearest training index.
    """
    d1, d2, nearest = nearest_two(samples, dataset.x_train, evaluate["block_size"], device)
    ratio = distance_ratio(d1, d2)
    rows = memorisation_rows(step, ratio, dataset.y_train[nearest], dataset.n_classes, evaluate, "memorised_fraction", rng)
    h1, h2, heldout_nearest = nearest_two(samples, dataset.x_heldout, evaluate["block_size"], device)
    rows += memorisation_rows(
        step, distance_ratio(h1, h2), dataset.y_heldout[heldout_nearest], dataset.n_classes, evaluate, "memorised_fraction_heldout", rng
    )
    rows.append({"step": step, "class": None, "metric": "nearest_distance_median", "value": float(np.median(d1))})
    return rows, ratio, nearest


def mixture_rows(step: int, samples: np.ndarray, posterior: np.ndarray, dataset: MixtureDataset) -> list[dict]:
    """Return the class share (mean exact posterior) and the per-class error of the generated mean."""
    assigned = posterior.argmax(axis=1)
    rows = []
    for k in range(dataset.n_classes):
        rows.append({"step": step, "class": k, "metric": "class_share", "value": float(posterior[:, k].mean())})
        members = samples[assigned == k]
        error = float(np.linalg.norm(members.mean(axis=0) - dataset.means[k]) / np.sqrt(dataset.dim)) if len(members) else None
        rows.append({"step": step, "class": k, "metric": "mean_error", "value": error})
        rows.append({"step": step, "class": k, "metric": "assigned_count", "value": float(len(members))})
    return rows


def _select_trajectory_steps(setting, steps: list[int]) -> list[int]:
    """Return the checkpoint steps that trajectories.checkpoints names."""
    if setting == "none":
        return []
    if setting == "last":
        return [steps[-1]]
    if setting == "all":
        return list(steps)
    unknown = sorted(set(setting) - set(steps))
    if unknown:
        raise ValueError(f"trajectories.checkpoints names steps {unknown} that are not checkpoints; checkpoints: {steps}")
    return sorted(setting)


def _bootstrap_replicates(samples, classes, ratio, nearest_classes, reference, indices, memorisation_ratio) -> tuple:
    """Return per-class gen-error ratios and memorised fractions of each bootstrap resample at one checkpoint."""
    n_classes = reference.dataset.n_classes
    gen = np.full((n_classes, len(indices)), np.nan)
    memorised = np.full((n_classes, len(indices)), np.nan)
    flags = ratio < memorisation_ratio
    for b, index in enumerate(indices):
        for k in range(n_classes):
            gen[k, b] = reference.gen_ratio(samples[index][classes[index] == k], k)
            of_class = nearest_classes[index] == k
            if of_class.any():
                memorised[k, b] = flags[index][of_class].mean()
    return gen, memorised


def evaluate_run(
    params: dict, dataset: MixtureDataset, checkpoints_dir: str | Path, run_id: str, outputs: dict
) -> torch.device:
    """Sample every checkpoint from the same noise, compute all metrics and write the outputs.

    params contains the sections evaluate, diagnostics, trajectories. outputs names the files metrics,
    samples, tracking and trajectories. Returns the device used.
    """
    evaluate, settings = params["evaluate"], params["diagnostics"]
    device = select_device(evaluate["device"])
    checkpoints = list_checkpoints(checkpoints_dir)
    trajectory_steps = _select_trajectory_steps(params["trajectories"]["checkpoints"], [step for step, _ in checkpoints])
    log.info(
        "run %s: %d checkpoints, %d samples each, %s with %d steps, device %s",
        run_id, len(checkpoints), evaluate["n_samples"], evaluate["sampler"], evaluate["num_inference_steps"], describe_device(device),
    )
    noise_generator = torch.Generator().manual_seed(evaluate["noise_seed"])
    initial_noise = torch.randn((evaluate["n_samples"], dataset.dim), generator=noise_generator).to(device)
    rng = np.random.default_rng(evaluate["noise_seed"])
    training_scheduler = DDPMScheduler.from_pretrained(Path(checkpoints_dir) / "scheduler")
    reference = MixtureReference(dataset, settings, evaluate["n_samples"], training_scheduler.alphas_cumprod.double().numpy(), evaluate["noise_seed"])
    bootstrap_indices = rng.integers(0, evaluate["n_samples"], size=(settings["bootstrap_samples"], evaluate["n_samples"]))

    rows, tracking, trajectory_rows, exact_processes = [], [], [], {}
    kept = {"steps": [], "samples": [], "nearest_train": [], "ratio_train": [], "gen_ratio": [], "memorised": []}
    for step, folder in checkpoints:
        model = load_denoiser(folder, device)
        samples = sample_checkpoint(model, folder, step, Path(checkpoints_dir), evaluate, initial_noise)
        memorisation, ratio, nearest = memorisation_against_sets(step, samples, dataset, evaluate, device, rng)
        rows += memorisation

        # Exact references of the true mixture: class shares, distances to each class, likelihood, scores.
        posterior = mixture.posterior(samples, dataset.weights, dataset.means, dataset.covariances)
        classes = posterior.argmax(axis=1)
        rows += mixture_rows(step, samples, posterior, dataset)
        rows += reference.class_rows(step, samples, classes)
        rows += reference.score_rows(step, model, device)
        gen, memorised = _bootstrap_replicates(
            samples, classes, ratio, dataset.y_train[nearest], reference, bootstrap_indices, evaluate["memorisation_ratio"]
        )
        if step in trajectory_steps:
            trajectory_rows += trajectories.trajectory_rows(
                model, step, training_scheduler, dataset, params["trajectories"], evaluate["memorisation_ratio"], device, exact_processes
            )

        log.info("step %d: memorised fraction %.3f", step, float((ratio < evaluate["memorisation_ratio"]).mean()))
        tracking.append(
            pd.DataFrame(
                {
                    "step": step,
                    "sample": np.arange(len(samples)),
                    "assigned_class": classes,
                    "nearest_train": nearest,
                    "nearest_train_class": dataset.y_train[nearest],
                    "distance_ratio": ratio,
                    "memorised": ratio < evaluate["memorisation_ratio"],
                }
            )
        )
        for name, value in (
            ("steps", step), ("samples", samples.astype(np.float32)), ("nearest_train", nearest),
            ("ratio_train", ratio), ("gen_ratio", gen), ("memorised", memorised),
        ):
            kept[name].append(value)

    tables.write_table(pd.DataFrame(rows).assign(run_id=run_id), tables.METRICS, outputs["metrics"])
    tables.write_table(pd.concat(tracking).assign(run_id=run_id), tables.TRACKING, outputs["tracking"])
    tables.write_table(pd.DataFrame(trajectory_rows, columns=tables.TRAJECTORIES.names).assign(run_id=run_id), tables.TRAJECTORIES, outputs["trajectories"])
    samples_out = Path(outputs["samples"])
    temporary = samples_out.with_name(samples_out.name + ".partial.npz")
    np.savez(temporary, **{name: np.stack(values) for name, values in kept.items()})
    os.replace(temporary, samples_out)
    return device
