"""Evaluation of one image run: the mixture run's sampling and memorisation, plus classifier-based metrics."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from heterodiff import classifier as classifier_module
from heterodiff import tables
from heterodiff.evaluation import list_checkpoints, load_denoiser, memorisation_against_sets, sample_checkpoint
from heterodiff.image_metrics import frechet_distance, precision_recall
from heterodiff.image_models import UNetDenoiser
from heterodiff.images import ImageDataset
from heterodiff.runtime import describe_device, select_device

log = logging.getLogger("heterodiff")


def class_rows(step: int, predicted: np.ndarray, features: np.ndarray, reference: dict, present: np.ndarray, k: int) -> list[dict]:
    """Return the class share of the generated samples and, per class, precision, recall and Fréchet distance.

    A generated sample belongs to the class the classifier predicts. The real set of a class is the
    reference features of that class. Classes absent from the training set get only their share. A metric
    is null when a set is too small: precision and recall need more than k points in each set, the
    Fréchet distance two generated samples.
    """
    n_classes = len(present)
    rows = []
    for label in range(n_classes):
        members = features[predicted == label]
        rows.append({"step": step, "class": label, "metric": "class_share", "value": float((predicted == label).mean())})
        rows.append({"step": step, "class": label, "metric": "assigned_count", "value": float(len(members))})
        if not present[label]:
            continue
        real = reference["features"][reference["labels"] == label]
        precision, recall = precision_recall(real, members, k) if min(len(members), len(real)) > k else (None, None)
        distance = frechet_distance(members, real) if len(members) >= 2 else None
        rows.append({"step": step, "class": label, "metric": "precision", "value": precision})
        rows.append({"step": step, "class": label, "metric": "recall", "value": recall})
        rows.append({"step": step, "class": label, "metric": "frechet_distance", "value": distance})

    # Over all classes, the real set is the reference of the classes in the training set.
    real = reference["features"][present[reference["labels"]]]
    precision, recall = precision_recall(real, features, k) if min(len(features), len(real)) > k else (None, None)
    rows.append({"step": step, "class": None, "metric": "precision", "value": precision})
    rows.append({"step": step, "class": None, "metric": "recall", "value": recall})
    rows.append({"step": step, "class": None, "metric": "frechet_distance", "value": frechet_distance(features, real)})
    return rows


def evaluate_image_run(
    evaluate: dict,
    dataset: ImageDataset,
    checkpoints_dir: str | Path,
    classifier_dir: str | Path,
    run_id: str,
    metrics_out: str | Path,
    samples_out: str | Path,
) -> torch.device:
    """Sample every checkpoint from the same noise, compute the metrics, write both outputs; return the device."""
    device = select_device(evaluate["device"])
    settings = evaluate["images"]
    checkpoints = list_checkpoints(checkpoints_dir)
    image_classifier = classifier_module.load(Path(classifier_dir) / "classifier.pt")
    with np.load(Path(classifier_dir) / "reference.npz") as arrays:
        reference = {"features": arrays["features"], "labels": arrays["labels"]}
    present = np.bincount(dataset.y_train, minlength=dataset.n_classes) > 0
    log.info(
        "run %s: %d checkpoints, %d samples of shape %s each, %s with %d steps, device %s",
        run_id, len(checkpoints), evaluate["n_samples"], dataset.image_shape.tolist(), evaluate["sampler"],
        evaluate["num_inference_steps"], describe_device(device),
    )
    noise_generator = torch.Generator().manual_seed(evaluate["noise_seed"])
    initial_noise = torch.randn((evaluate["n_samples"], dataset.dim), generator=noise_generator).to(device)
    rng = np.random.default_rng(evaluate["noise_seed"])

    rows, saved = [], {"steps": [], "samples": [], "nearest_train": [], "ratio_train": [], "predicted": []}
    for step, folder in checkpoints:
        model = load_denoiser(folder, device, UNetDenoiser)
        samples = sample_checkpoint(model, folder, step, Path(checkpoints_dir), evaluate, initial_noise)

        # Memorisation in pixel space against the exact training set, and the held-out control.
        memorisation, ratio, nearest = memorisation_against_sets(step, samples, dataset, evaluate, device, rng)
        rows += memorisation

        # Class of each sample and its features, from the classifier; samples are clipped to the data range.
        predicted, features = classifier_module.predict(image_classifier, np.clip(samples, -1.0, 1.0), dataset.image_shape)
        rows += class_rows(step, predicted, features, reference, present, settings["nearest_k"])

        log.info(
            "step %d: memorised fraction %.3f, class shares %s",
            step, float((ratio < evaluate["memorisation_ratio"]).mean()),
            np.round(np.bincount(predicted, minlength=dataset.n_classes) / len(predicted), 3).tolist(),
        )
        saved["steps"].append(step)
        saved["samples"].append(samples.astype(np.float32))
        saved["nearest_train"].append(nearest)
        saved["ratio_train"].append(ratio)
        saved["predicted"].append(predicted)

    frame = pd.DataFrame(rows).assign(run_id=run_id)
    for column in ("ci_low", "ci_high"):
        if column not in frame:
            frame[column] = None
    tables.write_table(frame, tables.METRICS, metrics_out)
    samples_out = Path(samples_out)
    temporary = samples_out.with_name(samples_out.name + ".partial.npz")
    np.savez(temporary, **{name: np.stack(values) for name, values in saved.items()})
    os.replace(temporary, samples_out)
    return device
