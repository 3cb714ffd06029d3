"""One function per Snakemake rule, called by the thin scripts under workflow/scripts."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from heterodiff import aggregate, data, evaluation, image_steps, plots, runtime, training

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
    }
    runtime.write_yaml(spec_out, runtime.run_spec(run["params"], identity, facts["device"], extra))


def evaluate(
    params: dict, run_id: str, dataset_path: str, checkpoints: str, metrics_out: str, samples_out: str, spec_out: str, threads: int,
    classifier_model: str | None = None,
) -> None:
    """Evaluate one run and write evaluate.yaml, the evaluation's counterpart of spec.yaml.

    Image runs come with the path of their classifier and are evaluated by image_steps.
    """
    if classifier_model:
        return image_steps.evaluate(params, run_id, dataset_path, checkpoints, classifier_model, metrics_out, samples_out, spec_out, threads)
    torch.set_num_threads(threads)
    dataset = data.MixtureDataset.load(dataset_path)
    device = evaluation.evaluate_run(params, dataset, checkpoints, run_id, metrics_out, samples_out)
    runtime.write_yaml(spec_out, runtime.run_spec({"evaluate": params}, {"run_id": run_id}, device))


def aggregate_study(specs, evaluate_specs, metrics, train_logs, runs_out, metrics_out, train_log_out) -> None:
    aggregate.aggregate(specs, evaluate_specs, metrics, train_logs, runs_out, metrics_out, train_log_out)
    log.info("aggregated %d runs into %s", len(specs), Path(runs_out).parent)


def figures(runs_path: str, metrics_path: str, train_log_path: str, outputs: dict) -> None:
    runs = pd.read_parquet(runs_path)
    metrics = pd.read_parquet(metrics_path)
    train_log = pd.read_parquet(train_log_path)
    plots.plot_memorisation(metrics, runs, outputs["memorisation"])
    plots.plot_class_share(metrics, runs, outputs["class_share"])
    plots.plot_mean_error(metrics, runs, outputs["mean_error"])
    plots.plot_loss(train_log, runs, outputs["loss"])
