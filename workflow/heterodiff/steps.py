"""One function per Snakemake rule, called by the thin scripts under workflow/scripts."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from heterodiff import aggregate, data, dynamics_plots, evaluation, image_steps, plots, runtime, training

log = logging.getLogger("heterodiff")


def make_dataset(params: dict, dataset_out: str) -> None:
    if params["kind"] == "images":
        return image_steps.make_dataset(params, dataset_out)
    dataset = data.make_mixture(params)
    dataset.save(dataset_out)
    counts = np.bincount(dataset.y_train, minlength=dataset.n_classes)
    log.info("dataset %s: train class counts %s, weights %s", dataset_out, counts.tolist(), np.round(dataset.weights, 6).tolist())


def train(run: dict, dataset_path: str, checkpoints_out: str, train_log_out: str, spec_out: str, threads: int) -> None:
    """Train one run and write its spec.yaml last, so a spec.yaml marks a finished training."""
    started_at = runtime.utc_now()
    if run["params"]["data"]["kind"] == "images":
        return image_steps.train(run, dataset_path, checkpoints_out, train_log_out, spec_out, threads)
    torch.set_num_threads(threads)
    dataset = data.MixtureDataset.load(dataset_path)
    run_dir = Path(spec_out).parent
    facts = training.train_run(run["params"], dataset, run_dir, checkpoints_out, train_log_out)
    identity = {key: run[key] for key in ("study", "run_id", "data_id", "seed", "grid_axes")}
    extra = {
        "class_weights": dataset.weights.tolist(),
        "class_counts_train": np.bincount(dataset.y_train, minlength=dataset.n_classes).tolist(),
        "train_sha256": dataset.train_sha256(),
        "n_parameters": facts["n_parameters"],
        "checkpoint_steps": facts["checkpoint_steps"],
        "started_at": started_at,
    }
    runtime.write_yaml(spec_out, runtime.run_spec(run["params"], identity, facts["device"], extra))


def evaluate(
    params: dict, run_id: str, dataset_path: str, checkpoints: str, outputs: dict, threads: int, classifier_model: str | None = None
) -> None:
    """Evaluate one run and write evaluate.yaml, the evaluation's counterpart of spec.yaml.

    params contains the evaluation sections. Image runs come with the path of their classifier and are
    evaluated by image_steps.
    """
    if classifier_model:
        return image_steps.evaluate(params, run_id, dataset_path, checkpoints, classifier_model, outputs, threads)
    started_at = runtime.utc_now()
    torch.set_num_threads(threads)
    dataset = data.MixtureDataset.load(dataset_path)
    device = evaluation.evaluate_run(params, dataset, checkpoints, run_id, outputs)
    runtime.write_yaml(outputs["spec"], runtime.run_spec(params, {"run_id": run_id}, device, {"started_at": started_at}))


def aggregate_study(inputs, outputs: dict, timescale_settings: dict) -> None:
    aggregate.aggregate(inputs, outputs, timescale_settings)
    log.info("aggregated %d runs into %s", len(inputs["specs"]), Path(outputs["runs"]).parent)


def figures(inputs: dict, outputs: dict) -> None:
    runs = pd.read_parquet(inputs["runs"])
    metrics = pd.read_parquet(inputs["metrics"])
    train_log = pd.read_parquet(inputs["train_log"])
    timescales = pd.read_parquet(inputs["timescales"])
    plots.plot_memorisation(metrics, runs, outputs["memorisation"])
    plots.plot_class_share(metrics, runs, outputs["class_share"])
    plots.plot_mean_error(metrics, runs, outputs["mean_error"])
    plots.plot_loss(train_log, runs, outputs["loss"])
    dynamics_plots.plot_timescale_heatmaps(timescales, runs, outputs["timescales"])
    dynamics_plots.plot_tau_mem_against_n(timescales, runs, outputs["tau_mem_vs_n"])
    dynamics_plots.plot_learning_order(timescales, runs, outputs["learning_order"])
    dynamics_plots.plot_score_errors(metrics, runs, outputs["score_errors"])
    dynamics_plots.plot_reverse_times(pd.read_parquet(inputs["trajectories"]), runs, outputs["reverse_times"])
    dynamics_plots.plot_copy_order(pd.read_parquet(inputs["copies"]), runs, outputs["copy_order"])
