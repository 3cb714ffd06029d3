"""Reverse trajectories with restarts: when a trajectory commits to a class and to a training point.

A trajectory of the stochastic reverse process is kept at a few timesteps. From each kept point the
process is restarted several times with fresh noise. Speciation: from that point on, the restarts end in
the trajectory's own final class. Collapse: from that point on, they end memorised on the trajectory's
own final training point. The same measurement runs for the network and for two exact processes of
the true mixture: the population process (the true score) and the empirical process (the score of the
training set), which bracket generalisation and memorisation.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DDPMScheduler

from heterodiff import diagnostics, mixture
from heterodiff.data import MixtureDataset
from heterodiff.metrics import distance_ratio, nearest_two


class ExactDenoiser:
    """Noise prediction eps = -sqrt(1 - alpha_bar) * score of an exact process, with a model's call signature."""

    def __init__(self, process: str, dataset: MixtureDataset, alphas_cumprod: torch.Tensor):
        if process not in ("population", "empirical"):
            raise ValueError(f"unknown exact process {process!r}; expected population or empirical")
        self.process = process
        self.dataset = dataset
        self.alphas_cumprod = alphas_cumprod.double().cpu().numpy()

    def __call__(self, sample: torch.Tensor, timestep) -> torch.Tensor:
        alpha_bar = float(self.alphas_cumprod[int(timestep)])
        x = sample.detach().cpu().double().numpy()
        if self.process == "population":
            data = self.dataset
            score = diagnostics.population_score(x, data.weights, data.means, data.covariances, alpha_bar)
        else:
            score = diagnostics.empirical_score(x, self.dataset.x_train, alpha_bar)
        epsilon = -np.sqrt(1.0 - alpha_bar) * score
        return torch.from_numpy(epsilon).to(sample.device, sample.dtype)


@torch.no_grad()
def reverse(denoiser, scheduler: DDPMScheduler, sample: torch.Tensor, start: int, generator: torch.Generator, keep=()) -> tuple:
    """Run the reverse process from scheduler.timesteps[start] to the end; return the end and kept points."""
    kept = {}
    for index in range(start, len(scheduler.timesteps)):
        if index in keep:
            kept[index] = sample.clone()
        t = scheduler.timesteps[index]
        sample = scheduler.step(denoiser(sample, t), t, sample, generator=generator).prev_sample
    return sample, kept


def _endpoints(samples: torch.Tensor, dataset: MixtureDataset, memorisation_ratio: float):
    """Return the class (exact posterior argmax), nearest training index and memorised flag of end points."""
    x = samples.cpu().double().numpy()
    classes = mixture.posterior(x, dataset.weights, dataset.means, dataset.covariances).argmax(axis=1)
    d1, d2, nearest = nearest_two(x, dataset.x_train)
    return classes, nearest, distance_ratio(d1, d2) < memorisation_ratio


def committed_from(agreement: np.ndarray, threshold: float) -> int | None:
    """Return the first index from which every later agreement is at least threshold, or None.

    agreement is ordered along the reverse process (from noise towards data); NaN counts as below.
    """
    above = np.nan_to_num(agreement, nan=-1.0) >= threshold
    if not above[-1]:
        return None
    below = np.flatnonzero(~above)
    return int(below[-1] + 1) if len(below) else 0


def agreement_curves(denoiser, scheduler, dataset: MixtureDataset, settings: dict, memorisation_ratio: float, device) -> dict:
    """Run trajectories and restarts for one process; return per-trajectory agreements and end points."""
    steps = len(scheduler.timesteps)
    keep = sorted({int(round(i)) for i in np.linspace(0, steps - 1, settings["restart_points"])})
    generator = torch.Generator().manual_seed(settings["seed"])
    start_noise = torch.randn((settings["n_trajectories"], dataset.dim), generator=generator).to(device)
    final, kept = reverse(denoiser, scheduler, start_noise, 0, torch.Generator(device=device).manual_seed(settings["seed"] + 1), keep)
    classes, nearest, memorised = _endpoints(final, dataset, memorisation_ratio)

    clones = settings["clones"]
    same_class = np.empty((len(keep), len(classes)))
    same_point = np.empty((len(keep), len(classes)))
    for row, index in enumerate(keep):
        restarts = kept[index].repeat_interleave(clones, dim=0)
        restart_generator = torch.Generator(device=device).manual_seed(settings["seed"] + 2 + index)
        ends, _ = reverse(denoiser, scheduler, restarts, index, restart_generator)
        restart_classes, restart_nearest, restart_memorised = _endpoints(ends, dataset, memorisation_ratio)
        same_class[row] = (restart_classes.reshape(-1, clones) == classes[:, None]).mean(axis=1)
        at_same_point = restart_memorised & (restart_nearest == np.repeat(nearest, clones))
        same_point[row] = at_same_point.reshape(-1, clones).mean(axis=1)
    timesteps = scheduler.timesteps[keep].cpu().numpy()
    return {"timesteps": timesteps, "classes": classes, "memorised": memorised, "same_class": same_class, "same_point": same_point}


def commitment_times(curves: dict, n_classes: int, threshold: float, alphas_cumprod: np.ndarray) -> list[dict]:
    """Turn agreement curves into per-class speciation and collapse times.

    Speciation averages over the trajectories that end in the class, and corrects for chance. A restart
    that carries no information still ends in class k with probability w_k, the class's share of the
    process's end points, so the agreement a becomes (a - w_k) / (1 - w_k). Without it a majority
    class of weight 0.95 would count as speciated from pure noise. Collapse averages over the
    trajectories that end memorised in the class (others never collapse), whose chance level of about
    1/n is negligible. The time is the kept timestep from which the class's mean agreement stays at or
    above threshold; None when it does not.
    """
    rows = []
    for k in range(n_classes):
        chance = float((curves["classes"] == k).mean())
        above_chance = (curves["same_class"] - chance) / (1.0 - chance) if chance < 1 else np.ones_like(curves["same_class"])
        for quantity, members, agreement in (
            ("speciation", curves["classes"] == k, above_chance),
            ("collapse", (curves["classes"] == k) & curves["memorised"], curves["same_point"]),
        ):
            count = int(members.sum())
            index = committed_from(agreement[:, members].mean(axis=1), threshold) if count else None
            timestep = int(curves["timesteps"][index]) if index is not None else None
            rows.append(
                {
                    "class": k,
                    "quantity": quantity,
                    "timestep": timestep,
                    "alpha_bar": float(alphas_cumprod[timestep]) if timestep is not None else None,
                    "threshold": threshold,
                    "n_trajectories": count,
                }
            )
    return rows


def trajectory_rows(
    model, step: int, training_scheduler: DDPMScheduler, dataset: MixtureDataset, settings: dict, memorisation_ratio: float, device,
    exact_cache: dict | None = None,
) -> list[dict]:
    """Measure speciation and collapse for the network at one checkpoint and for both exact processes.

    The exact processes do not depend on the checkpoint: pass the same exact_cache dict to compute them once.
    """
    scheduler = DDPMScheduler.from_config(training_scheduler.config)
    scheduler.set_timesteps(settings["num_inference_steps"])
    alphas_cumprod = scheduler.alphas_cumprod.double().numpy()
    exact_cache = {} if exact_cache is None else exact_cache
    for name in ("population", "empirical"):
        if name not in exact_cache:
            denoiser = ExactDenoiser(name, dataset, scheduler.alphas_cumprod)
            curves = agreement_curves(denoiser, scheduler, dataset, settings, memorisation_ratio, "cpu")
            exact_cache[name] = commitment_times(curves, dataset.n_classes, settings["agreement"], alphas_cumprod)
    curves = agreement_curves(model, scheduler, dataset, settings, memorisation_ratio, device)
    network = commitment_times(curves, dataset.n_classes, settings["agreement"], alphas_cumprod)
    rows = [{"step": step, "process": "network", **row} for row in network]
    for name in ("population", "empirical"):
        rows += [{"step": step, "process": name, **row} for row in exact_cache[name]]
    return rows
