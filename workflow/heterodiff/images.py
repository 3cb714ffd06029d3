"""Rebalanced image datasets: exact, seeded class subsets of a source, with a disjoint held-out set."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from heterodiff.data import SavedDataset
from heterodiff.image_sources import SourceImages, load_source

log = logging.getLogger("heterodiff")


def split_pools(labels: np.ndarray, n_classes: int, heldout_fraction: float, rng: np.random.Generator):
    """Shuffle each class and split it into a training pool and a held-out pool.

    The held-out pool gets ceil(size * heldout_fraction) images of each class, so with a fraction of 0.5
    it is never smaller than the training pool and a held-out set with the training counts always fits.
    Returns two lists of index arrays, one array per class.
    """
    train_pools, heldout_pools = [], []
    for label in range(n_classes):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_heldout = int(np.ceil(len(members) * heldout_fraction))
        heldout_pools.append(members[:n_heldout])
        train_pools.append(members[n_heldout:])
    return train_pools, heldout_pools


def _full_count(available: np.ndarray, classes: list[int]) -> int:
    return int(min(available[c] for c in classes))


def rebalanced_counts(rebalance: dict, rho: float, available: np.ndarray) -> np.ndarray:
    """Return the training count of every class for a rebalancing mode; see the schema for each mode.

    `available` is the size of each class's training pool. n_max null means the smallest pool among the
    chosen classes (for long_tail, the largest n_max whose counts fit every pool). Classes that a mode
    leaves out get 0.
    """
    n_classes = len(available)
    counts = np.zeros(n_classes, dtype=np.int64)
    mode = rebalance["mode"]
    for key in ("majority", "minority", "classes"):
        unknown = [c for c in rebalance.get(key) or [] if c >= n_classes]
        if unknown:
            raise ValueError(f"data.images.rebalance.{key} names classes {unknown}; the source has classes 0 to {n_classes - 1}")
    if mode == "counts":
        if len(rebalance["counts"]) != n_classes:
            raise ValueError(
                f"data.images.rebalance.counts has {len(rebalance['counts'])} values; the source has {n_classes} classes"
            )
        counts[:] = rebalance["counts"]
        return counts

    if mode == "ratio":
        majority = rebalance["majority"] if rebalance["majority"] is not None else list(range((n_classes + 1) // 2))
        minority = rebalance["minority"] if rebalance["minority"] is not None else [c for c in range(n_classes) if c not in majority]
        # The smallest pool of all chosen classes, so that the majority count is the same at every rho.
        n_max = rebalance["n_max"] if rebalance["n_max"] is not None else _full_count(available, majority + minority)
        counts[majority] = n_max
        counts[minority] = max(1, int(np.floor(n_max / rho + 0.5)))
        return counts

    classes = rebalance["classes"] if rebalance["classes"] is not None else list(range(n_classes))
    if mode == "subset":
        counts[classes] = rebalance["n_max"] if rebalance["n_max"] is not None else _full_count(available, classes)
        return counts

    # Long tail: the class of rank r gets n_max * rho^(-r / (C - 1)), rounded to the nearest integer.
    ranks = np.arange(len(classes))
    shares = rho ** (-ranks / max(len(classes) - 1, 1))
    if rebalance["n_max"] is not None:
        n_max = rebalance["n_max"]
    else:
        # The largest n_max whose rounded counts fit every pool: n_max * share_r <= available_r.
        n_max = int(min(np.floor(available[c] / share + 1e-9) for c, share in zip(classes, shares)))
    counts[classes] = np.maximum(1, np.floor(n_max * shares + 0.5)).astype(np.int64)
    return counts


def check_available(counts: np.ndarray, available: np.ndarray, class_names: list[str], pool: str) -> None:
    """Raise ValueError naming every class whose request exceeds its pool."""
    problems = [
        f"class {c} ({class_names[c]}): requested {int(counts[c])}, the {pool} pool has {int(available[c])}"
        for c in range(len(counts))
        if counts[c] > available[c]
    ]
    if problems:
        raise ValueError(f"not enough images for the requested class counts: {'; '.join(problems)}")


@dataclass
class ImageDataset(SavedDataset):
    """A rebalanced training set and a held-out set of images, flattened to rows in [-1, 1].

    `weights` are the training class proportions over all classes of the source, zero for classes left
    out. `train_index` and `heldout_index` point into the source dataset as loaded.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_heldout: np.ndarray
    y_heldout: np.ndarray
    weights: np.ndarray
    image_shape: np.ndarray
    class_names: np.ndarray
    train_index: np.ndarray
    heldout_index: np.ndarray

    MARKERS = {"kind": "images"}


def to_model_range(images: np.ndarray) -> np.ndarray:
    """Flatten images in [0, 1] to rows in [-1, 1], the range the diffusion model and the metrics use."""
    return (images.reshape(len(images), -1) * 2.0 - 1.0).astype(np.float32)


def make_image_dataset(params: dict, source: SourceImages | None = None) -> ImageDataset:
    """Draw the rebalanced training set and the held-out set with the same class counts.

    The split into pools and the selection inside each pool are seeded by data.seed. Each class is drawn
    as a prefix of one fixed permutation, so with the same seed a smaller count selects a subset of a
    larger one.
    """
    images = params["images"]
    source = source if source is not None else load_source(images)
    rng = np.random.default_rng(params["seed"])
    train_pools, heldout_pools = split_pools(source.labels, source.n_classes, images["heldout_fraction"], rng)

    available = np.array([len(pool) for pool in train_pools])
    counts = rebalanced_counts(images["rebalance"], float(params["imbalance_ratio"]), available)
    check_available(counts, available, source.class_names, "training")
    check_available(counts, np.array([len(pool) for pool in heldout_pools]), source.class_names, "held-out")

    train_index = np.concatenate([pool[:n] for pool, n in zip(train_pools, counts)])
    heldout_index = np.concatenate([pool[:n] for pool, n in zip(heldout_pools, counts)])
    return ImageDataset(
        x_train=to_model_range(source.images[train_index]),
        y_train=source.labels[train_index],
        x_heldout=to_model_range(source.images[heldout_index]),
        y_heldout=source.labels[heldout_index],
        weights=counts / counts.sum(),
        image_shape=np.array(source.images.shape[1:]),
        class_names=np.array(source.class_names),
        train_index=train_index,
        heldout_index=heldout_index,
    )
