"""One function per Snakemake rule of image studies; steps.py hands image runs to these."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from heterodiff import classifier, image_plots, image_sources, images, plots, runtime, tables, training
from heterodiff.image_evaluation import evaluate_image_run

log = logging.getLogger("heterodiff")


def fetch_dataset(name: str, attribute: str | None, output: str) -> None:
    image_sources.fetch(name, attribute, output)


def make_dataset(params: dict, dataset_out: str) -> None:
    dataset = images.make_image_dataset(params)
    dataset.save(dataset_out)
    log.info(
        "dataset %s: %s images, train class counts %s, held-out class counts %s",
        dataset_out, "x".join(map(str, dataset.image_shape)),
        np.bincount(dataset.y_train, minlength=dataset.n_classes).tolist(),
        np.bincount(dataset.y_heldout, minlength=dataset.n_classes).tolist(),
    )


def train_classifier(images_params: dict, settings: dict, model_out: str, reference_out: str, spec_out: str, threads: int) -> None:
    """Train the classifier of one source, then write its reference features and classifier.yaml."""
    torch.set_num_threads(threads)
    source = image_sources.load_source(images_params)
    model, facts = classifier.train_classifier(source, settings)
    trusted = classifier.check_accuracy(facts["accuracy"], settings)
    classifier.save(model_out, model, source.images.shape[1:], source.n_classes, settings["feature_dim"])

    features, labels = classifier.reference_features(model, source, settings["reference_per_class"], np.random.default_rng(settings["seed"]))
    temporary = Path(reference_out).with_name(Path(reference_out).name + ".partial.npz")
    np.savez(temporary, features=features, labels=labels)
    temporary.replace(reference_out)

    spec = {"source_id": image_sources.source_id(images_params), "class_names": source.class_names, "trusted": trusted, **facts}
    runtime.write_yaml(spec_out, runtime.run_spec({"images": images_params, "classifier": settings}, spec, runtime.select_device(settings["device"])))


def train(run: dict, dataset_path: str, checkpoints_out: str, train_log_out: str, spec_out: str, threads: int) -> None:
    """Train one image run with the shared training loop and write spec.yaml last."""
    torch.set_num_threads(threads)
    dataset = images.ImageDataset.load(dataset_path)
    facts = training.train_run(run["params"], dataset, Path(spec_out).parent, checkpoints_out, train_log_out)
    identity = {key: run[key] for key in ("study", "run_id", "data_id", "seed", "grid_axes")}
    extra = {
        "class_weights": dataset.weights.tolist(),
        "class_counts_train": np.bincount(dataset.y_train, minlength=dataset.n_classes).tolist(),
        "class_counts_heldout": np.bincount(dataset.y_heldout, minlength=dataset.n_classes).tolist(),
        "class_names": dataset.class_names.tolist(),
        "image_shape": dataset.image_shape.tolist(),
        "train_sha256": dataset.train_sha256(),
        "n_parameters": facts["n_parameters"],
        "checkpoint_steps": facts["checkpoint_steps"],
    }
    runtime.write_yaml(spec_out, runtime.run_spec(run["params"], identity, facts["device"], extra))


def evaluate(params: dict, run_id: str, dataset_path: str, checkpoints: str, classifier_model: str, outputs: dict, threads: int) -> None:
    """Evaluate one image run and write evaluate.yaml with the classifier's accuracy beside the parameters.

    params contains the evaluation sections, of which images use the evaluate section. Sample tracking comes from the
    nearest training images and the classifier's labels. Reverse trajectories need the exact mixture, so
    the trajectories table of an image run is empty.
    """
    started_at = runtime.utc_now()
    torch.set_num_threads(threads)
    dataset = images.ImageDataset.load(dataset_path)
    classifier_dir = Path(classifier_model).parent
    evaluate = params["evaluate"]
    device = evaluate_image_run(evaluate, dataset, checkpoints, classifier_dir, run_id, outputs["metrics"], outputs["samples"])

    with np.load(outputs["samples"]) as saved:
        steps, nearest, ratio, predicted = (saved[name] for name in ("steps", "nearest_train", "ratio_train", "predicted"))
    tracking = pd.concat(
        pd.DataFrame(
            {
                "step": int(step),
                "sample": np.arange(nearest.shape[1]),
                "assigned_class": predicted[index],
                "nearest_train": nearest[index],
                "nearest_train_class": dataset.y_train[nearest[index]],
                "distance_ratio": ratio[index],
                "memorised": ratio[index] < evaluate["memorisation_ratio"],
            }
        )
        for index, step in enumerate(steps)
    )
    tables.write_table(tracking.assign(run_id=run_id), tables.TRACKING, outputs["tracking"])
    tables.write_table(tables.TRAJECTORIES.empty_table(), tables.TRAJECTORIES, outputs["trajectories"])

    with open(classifier_dir / "classifier.yaml") as handle:
        classifier_spec = yaml.safe_load(handle)
    extra = {
        "started_at": started_at,
        "classifier": {key: classifier_spec[key] for key in ("source_id", "accuracy", "accuracy_per_class", "trusted")},
    }
    runtime.write_yaml(outputs["spec"], runtime.run_spec(params, {"run_id": run_id}, device, extra))


def figures(runs_path: str, metrics_path: str, train_log_path: str, outputs: dict) -> None:
    runs = pd.read_parquet(runs_path)
    metrics = pd.read_parquet(metrics_path)
    train_log = pd.read_parquet(train_log_path)
    plots.plot_memorisation(metrics, runs, outputs["memorisation"])
    image_plots.plot_class_share(metrics, runs, outputs["class_share"])
    image_plots.plot_precision_recall(metrics, runs, outputs["precision_recall"])
    image_plots.plot_frechet_distance(metrics, runs, outputs["frechet_distance"])
    plots.plot_loss(train_log, runs, outputs["loss"])


def sample_grid(samples_path: str, dataset_path: str, evaluate_params: dict, run_id: str, output: str) -> None:
    dataset = images.ImageDataset.load(dataset_path)
    with np.load(samples_path) as arrays:
        saved = {name: arrays[name] for name in arrays.files}
    image_plots.plot_sample_grid(saved, dataset, evaluate_params, run_id, output)
