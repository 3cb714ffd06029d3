"""Sample-quality metrics in a feature space: k-NN precision and recall, and the Fréchet distance."""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg


def _squared_distances(a: np.ndarray, b: np.ndarray) -> torch.Tensor:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return torch.cdist(a, b).pow(2)


def knn_radii(features: np.ndarray, k: int) -> np.ndarray:
    """Return each point's squared distance to its k-th nearest neighbour in the same set, itself excluded."""
    if len(features) <= k:
        raise ValueError(f"a k-NN manifold with k = {k} needs more than {k} points, got {len(features)}")
    distances = _squared_distances(features, features)
    # The smallest distance of each row is the point to itself (0), so the k-th neighbour is at k + 1.
    return torch.kthvalue(distances, k + 1, dim=1).values.numpy()


def coverage_fraction(queries: np.ndarray, manifold: np.ndarray, radii: np.ndarray) -> float:
    """Return the share of queries that lie inside at least one ball of the manifold (boundary included)."""
    inside = (_squared_distances(queries, manifold) <= torch.as_tensor(radii)[None, :]).any(dim=1)
    return float(inside.double().mean())


def precision_recall(real: np.ndarray, generated: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Return the improved precision and recall of Kynkäänniemi et al. 2019 (arXiv 1904.06991).

    Each set's manifold is the union of balls around its points, with radius the distance to the point's
    k-th nearest neighbour in that set. Precision is the share of generated points inside the real
    manifold; recall is the share of real points inside the generated manifold.
    """
    precision = coverage_fraction(generated, real, knn_radii(real, k))
    recall = coverage_fraction(real, generated, knn_radii(generated, k))
    return precision, recall


def frechet_distance(first: np.ndarray, second: np.ndarray) -> float:
    """Return |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)) between Gaussians fitted to two sets.

    This is the Fréchet (2-Wasserstein) distance of Heusel et al. 2017 (arXiv 1706.08500) without their
    Inception features: the caller chooses the feature space. Each set needs at least two points.
    """
    if len(first) < 2 or len(second) < 2:
        raise ValueError(f"the Fréchet distance needs at least 2 points per set, got {len(first)} and {len(second)}")
    mean_difference = first.mean(axis=0) - second.mean(axis=0)
    cov_first = np.atleast_2d(np.cov(first, rowvar=False))
    cov_second = np.atleast_2d(np.cov(second, rowvar=False))
    root = linalg.sqrtm(cov_first @ cov_second)
    if not np.isfinite(root).all():
        # A singular product (fewer points than dimensions) can fail; a small ridge makes it regular.
        ridge = np.eye(len(cov_first)) * 1e-6
        root = linalg.sqrtm((cov_first + ridge) @ (cov_second + ridge))
    trace = np.trace(cov_first) + np.trace(cov_second) - 2.0 * np.trace(root.real)
    # Rounding can leave a trace of about -1e-12 for identical sets; the distance itself is never negative.
    return float(mean_difference @ mean_difference + max(trace, 0.0))
