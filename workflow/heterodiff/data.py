"""Gaussian-mixture datasets with exact class counts and their true parameters."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def class_weights(params: dict) -> np.ndarray:
    """Return the class proportions from explicit weights or from the imbalance ratio rho."""
    k = params["n_classes"]
    if params.get("weights") is not None:
        weights = np.asarray(params["weights"], dtype=np.float64)
        return weights / weights.sum()
    rho = float(params["imbalance_ratio"])
    if params.get("imbalance_profile", "exponential") == "step":
        weights = np.where(np.arange(k) < (k + 1) // 2, rho, 1.0)
    else:
        # Long-tailed profile: class 0 is the majority, class k - 1 has rho times fewer samples.
        weights = rho ** (-np.arange(k) / (k - 1))
    return weights / weights.sum()


def class_counts(n: int, weights: np.ndarray) -> np.ndarray:
    """Split n into exact integer counts by largest remainder, ties going to the lower class index."""
    quotas = n * np.asarray(weights, dtype=np.float64)
    counts = np.floor(quotas + 1e-9).astype(np.int64)
    remainders = quotas - counts
    order = np.lexsort((np.arange(len(weights)), -np.round(remainders, 9)))
    counts[order[: n - counts.sum()]] += 1
    return counts


def class_means(params: dict, rng: np.random.Generator) -> np.ndarray:
    """Place the class means as data.geometry specifies; the schema describes each option."""
    k, dim, geometry = params["n_classes"], params["dim"], params["geometry"]
    if geometry == "explicit":
        return np.asarray(params["means"], dtype=np.float64)

    if geometry == "simplex":
        # Centred one-hot vectors span a regular simplex in the (k - 1)-dimensional subspace orthogonal to
        # the all-ones vector. An orthonormal basis of that subspace maps it into the first k - 1 axes.
        vertices = np.eye(k) - 1.0 / k
        basis, _, _ = np.linalg.svd(vertices.T @ vertices)
        coordinates = vertices @ basis[:, : k - 1]
        unit_distance = np.sqrt(2.0)
    elif geometry == "orthogonal":
        coordinates = np.eye(k)
        unit_distance = np.sqrt(2.0)
    else:
        directions = rng.standard_normal((k, dim))
        coordinates = directions / np.linalg.norm(directions, axis=1, keepdims=True)
        unit_distance = np.sqrt(2.0)

    means = np.zeros((k, dim))
    means[:, : coordinates.shape[1]] = coordinates
    norms = np.linalg.norm(means, axis=1)
    if params.get("centroid_norm") is not None:
        return means / norms[:, None] * params["centroid_norm"]
    if geometry == "random":
        return means * params["centroid_distance"] / unit_distance
    pairwise = np.linalg.norm(means[0] - means[1])
    return means / pairwise * params["centroid_distance"]


def class_variances(params: dict) -> np.ndarray:
    variance = params["variance"]
    k = params["n_classes"]
    values = np.asarray(variance if isinstance(variance, list) else [variance], dtype=np.float64)
    return np.broadcast_to(values, (k,)).copy()


class SavedDataset:
    """Shared behaviour of the dataset dataclasses: sizes, the training-set hash, and the .npz file.

    Subclasses are dataclasses whose fields are arrays with x_train, y_train and weights among them.
    MARKERS are extra arrays written with the fields, to tell file kinds apart.
    """

    MARKERS: dict = {}

    @property
    def n_classes(self) -> int:
        return len(self.weights)

    @property
    def dim(self) -> int:
        return self.x_train.shape[1]

    def train_sha256(self) -> str:
        """Hash of the exact training set (values and labels), recorded next to memorisation metrics."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.x_train, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(self.y_train, dtype=np.int64).tobytes())
        return digest.hexdigest()

    def save(self, path: str | Path) -> None:
        """Write all arrays to one .npz file, through a temporary name so no reader sees half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".partial.npz")
        np.savez(temporary, **self.MARKERS, **{name: getattr(self, name) for name in self.__dataclass_fields__})
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: str | Path):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"dataset file {path} not found; it is written by the make_dataset rule")
        try:
            with np.load(path) as arrays:
                return cls(**{name: arrays[name] for name in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"dataset file {path} is unreadable or incomplete ({error}); delete it and rerun") from error


@dataclass
class MixtureDataset(SavedDataset):
    """A training set, a held-out set and the mixture they were drawn from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_heldout: np.ndarray
    y_heldout: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray


def _sample(counts: np.ndarray, means: np.ndarray, variances: np.ndarray, rng: np.random.Generator):
    labels = np.repeat(np.arange(len(counts)), counts)
    noise = rng.standard_normal((len(labels), means.shape[1]))
    x = means[labels] + np.sqrt(variances[labels])[:, None] * noise
    return x.astype(np.float32), labels.astype(np.int64)


def make_mixture(params: dict) -> MixtureDataset:
    """Draw a mixture dataset: exact class counts, true weights, means and covariances stored with it."""
    rng = np.random.default_rng(params["seed"])
    weights = class_weights(params)
    means = class_means(params, rng)
    variances = class_variances(params)
    counts = class_counts(params["n_train"], weights)
    if (counts == 0).any():
        empty = np.flatnonzero(counts == 0).tolist()
        raise ValueError(
            f"data.n_train = {params['n_train']} leaves classes {empty} without samples at weights "
            f"{np.round(weights, 6).tolist()}; raise n_train or lower imbalance_ratio"
        )
    heldout_counts = counts if params.get("n_heldout") is None else class_counts(params["n_heldout"], weights)

    # Separate streams for the two sets: the training set does not change when only n_heldout changes.
    train_rng, heldout_rng = (np.random.default_rng(s) for s in rng.bit_generator.seed_seq.spawn(2))
    x_train, y_train = _sample(counts, means, variances, train_rng)
    x_heldout, y_heldout = _sample(heldout_counts, means, variances, heldout_rng)
    covariances = variances[:, None, None] * np.eye(params["dim"])[None]
    return MixtureDataset(x_train, y_train, x_heldout, y_heldout, weights, means, covariances)
