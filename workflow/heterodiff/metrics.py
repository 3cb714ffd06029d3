"""Memorisation statistics: blocked nearest-neighbour search, the d1/d2 criterion and bootstrap intervals."""

from __future__ import annotations

import numpy as np
import torch


def nearest_two(
    queries: np.ndarray | torch.Tensor,
    reference: np.ndarray | torch.Tensor,
    block_size: int = 4096,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find each query's nearest and second-nearest reference rows.

    Returns (d1, d2, index of the nearest), distances divided by sqrt(dim). Squared distances come from
    the blocked product |x|^2 - 2 x.y + |y|^2 with a top-2 per block, so memory stays at
    block_size x len(reference) and no full distance matrix is formed. Float64 on the CPU keeps exact
    copies at distance 0; accelerators use float32.
    """
    device = torch.device(device)
    dtype = torch.float64 if device.type == "cpu" else torch.float32
    reference = torch.as_tensor(reference).reshape(len(reference), -1).to(device, dtype)
    queries = torch.as_tensor(queries).reshape(len(queries), -1)
    if len(reference) < 2:
        raise ValueError(f"the reference set needs at least 2 rows for d1/d2, got {len(reference)}")
    reference_norms = (reference * reference).sum(dim=1)
    dim = reference.shape[1]

    d1, d2, nearest = [], [], []
    for start in range(0, len(queries), block_size):
        block = queries[start : start + block_size].to(device, dtype)
        squared = (block * block).sum(dim=1, keepdim=True) - 2.0 * block @ reference.T + reference_norms
        values, indices = torch.topk(squared.clamp_min_(0.0), k=2, dim=1, largest=False)
        d1.append(values[:, 0].sqrt().cpu())
        d2.append(values[:, 1].sqrt().cpu())
        nearest.append(indices[:, 0].cpu())
    scale = float(np.sqrt(dim))
    return (
        (torch.cat(d1) / scale).numpy(),
        (torch.cat(d2) / scale).numpy(),
        torch.cat(nearest).numpy(),
    )


def distance_ratio(d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """Return d1 / d2, with 0 where the two nearest references coincide with the query (d2 = 0)."""
    ratio = np.zeros_like(d1, dtype=np.float64)
    positive = d2 > 0
    ratio[positive] = d1[positive] / d2[positive]
    return ratio


def bootstrap_interval(flags: np.ndarray, resamples: int, level: float, rng: np.random.Generator) -> tuple[float, float]:
    """Return the percentile bootstrap interval of the mean of 0/1 flags."""
    flags = np.asarray(flags, dtype=np.float64)
    if len(flags) == 0:
        return float("nan"), float("nan")
    # Resampling a 0/1 vector only changes how many ones are drawn: a binomial count per resample.
    means = rng.binomial(len(flags), flags.mean(), size=resamples) / len(flags)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)
