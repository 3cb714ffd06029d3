"""Exact references for mixture runs: population and empirical scores, likelihood, per-class distances.

Scores are those of the variance-preserving process x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps.
The population score is that of the true mixture after noising. The empirical score is that of the
training set after noising: a mixture of n Gaussians of variance 1 - alpha_bar centred on the scaled
training points. A network that reproduces it can only regenerate training points.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import logsumexp

from heterodiff import mixture


def population_score(x, weights, means, covariances, alpha_bar: float) -> np.ndarray:
    """Return grad_x log p_t(x) of the noised mixture: sum_k p_t(k | x) C_k^-1 (sqrt(alpha_bar) mu_k - x)."""
    x = np.asarray(x, dtype=np.float64)
    noised_means, noised_covariances = mixture.noised_components(means, covariances, alpha_bar)
    joint = np.log(weights)[None] + mixture.component_log_densities(x, noised_means, noised_covariances)
    posterior = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
    score = np.zeros_like(x)
    for k in range(len(weights)):
        score += posterior[:, k : k + 1] * np.linalg.solve(noised_covariances[k], (noised_means[k] - x).T).T
    return score


def empirical_denoiser(x, training_points, alpha_bar: float, block_size: int = 2048) -> np.ndarray:
    """Return E[x_0 | x_t = x] under the training set: a softmax-weighted average of training points."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    points = torch.as_tensor(np.asarray(training_points), dtype=torch.float64)
    scaled = np.sqrt(alpha_bar) * points
    variance = 1.0 - alpha_bar
    out = []
    for start in range(0, len(x), block_size):
        block = x[start : start + block_size]
        squared = (block * block).sum(1, keepdim=True) - 2 * block @ scaled.T + (scaled * scaled).sum(1)
        weights = torch.softmax(-squared / (2 * variance), dim=1)
        out.append(weights @ points)
    return torch.cat(out).numpy()


def empirical_score(x, training_points, alpha_bar: float) -> np.ndarray:
    """Return the score of the noised training set: (sqrt(alpha_bar) E[x_0 | x] - x) / (1 - alpha_bar)."""
    x = np.asarray(x, dtype=np.float64)
    return (np.sqrt(alpha_bar) * empirical_denoiser(x, training_points, alpha_bar) - x) / (1.0 - alpha_bar)


def sample_mixture(n: int, weights, means, covariances, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw n samples of the true mixture with their component labels."""
    labels = rng.choice(len(weights), size=n, p=weights)
    factors = np.linalg.cholesky(covariances)
    noise = rng.standard_normal((n, means.shape[1]))
    return means[labels] + np.einsum("nij,nj->ni", factors[labels], noise), labels


def sample_region(n: int, k: int, weights, means, covariances, rng: np.random.Generator) -> np.ndarray:
    """Draw n mixture samples whose exact posterior argmax is class k.

    Generated samples are assigned to classes by the same argmax, so this is the distribution a perfect
    generator's class-k samples follow, overlap between classes included.
    """
    kept, found, drawn = [], 0, 0
    while found < n:
        if drawn > 1000 * max(4 * n, 256):
            raise RuntimeError(
                f"class {k} has almost no region of its own ({found} of {drawn} mixture samples fall in it); "
                "its generalisation error is undefined for these class means and variances"
            )
        batch, _ = sample_mixture(max(4 * n, 256), weights, means, covariances, rng)
        drawn += len(batch)
        batch = batch[mixture.posterior(batch, weights, means, covariances).argmax(axis=1) == k]
        kept.append(batch)
        found += len(batch)
    return np.concatenate(kept)[:n]


def random_directions(dim: int, count: int, seed: int) -> np.ndarray:
    directions = np.random.default_rng(seed).standard_normal((count, dim))
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)


def sliced_wasserstein(x: np.ndarray, y: np.ndarray, directions: np.ndarray) -> float:
    """Return the sliced Wasserstein-2 distance between two equal-size samples.

    Each one-dimensional W2 between projections is the mean squared difference of the sorted values.
    The sliced distance is the root of their mean over the directions.
    """
    if len(x) != len(y):
        raise ValueError(f"sliced_wasserstein needs equal sample sizes, got {len(x)} and {len(y)}")
    projected_x = np.sort(x @ directions.T, axis=0)
    projected_y = np.sort(y @ directions.T, axis=0)
    return float(np.sqrt(((projected_x - projected_y) ** 2).mean()))


def covariance_error(x: np.ndarray, covariance: np.ndarray) -> float:
    """Return |Cov(x) - Sigma|_F / |Sigma|_F."""
    return float(np.linalg.norm(np.cov(x, rowvar=False).reshape(covariance.shape) - covariance) / np.linalg.norm(covariance))


def default_score_timesteps(num_train_timesteps: int) -> list[int]:
    """Return five timesteps log-spaced between T/100 and 3T/5."""
    low, high = max(1, num_train_timesteps // 100), max(2, (3 * num_train_timesteps) // 5)
    return sorted({int(round(t)) for t in np.geomspace(low, high, 5)})


class MixtureReference:
    """Everything drawn once per evaluation from the true mixture, and the diagnostics computed with it.

    Reference pools are fixed for the whole evaluation, so differences between checkpoints come from the
    network alone.
    """

    def __init__(self, dataset, settings: dict, n_samples: int, alphas_cumprod, seed: int):
        self.dataset = dataset
        self.settings = settings
        rng = np.random.default_rng(seed)
        data = dataset
        repeats = settings["floor_repeats"]
        # Pool 0 is the yardstick for generated samples; pools 1 .. 2R give R independent pairs for the floor.
        self.pools = [
            [sample_region(n_samples, k, data.weights, data.means, data.covariances, rng) for _ in range(2 * repeats + 1)]
            for k in range(data.n_classes)
        ]
        self.directions = random_directions(data.dim, settings["projections"], seed)
        self.floors: dict[tuple[int, int], float] = {}

        timesteps = settings["score_timesteps"] or default_score_timesteps(len(alphas_cumprod))
        x0, _ = sample_mixture(settings["score_samples"], data.weights, data.means, data.covariances, rng)
        self.score_points = {}
        for t in timesteps:
            alpha_bar = float(alphas_cumprod[t])
            xt = np.sqrt(alpha_bar) * x0 + np.sqrt(1 - alpha_bar) * rng.standard_normal(x0.shape)
            epsilon_population = -np.sqrt(1 - alpha_bar) * population_score(xt, data.weights, data.means, data.covariances, alpha_bar)
            epsilon_empirical = -np.sqrt(1 - alpha_bar) * empirical_score(xt, data.x_train, alpha_bar)
            self.score_points[t] = (xt, epsilon_population, epsilon_empirical)
        population, _ = sample_mixture(n_samples, data.weights, data.means, data.covariances, rng)
        self.reference_log_likelihood = mixture.log_density(population, data.weights, data.means, data.covariances)
        self.class_reference_log_likelihood = [
            float(mixture.log_density(pools[0], data.weights, data.means, data.covariances).mean()) for pools in self.pools
        ]

    def floor(self, k: int, m: int) -> float:
        """Return the mean sliced W2 between two independent size-m samples of class k's region."""
        if (k, m) not in self.floors:
            pools = self.pools[k]
            pairs = [(pools[2 * r + 1][:m], pools[2 * r + 2][:m]) for r in range(self.settings["floor_repeats"])]
            self.floors[k, m] = float(np.mean([sliced_wasserstein(a, b, self.directions) for a, b in pairs]))
        return self.floors[k, m]

    def gen_ratio(self, members: np.ndarray, k: int) -> float:
        """Return sliced W2 to the true class-k distribution divided by its floor; NaN below 2 samples."""
        m = len(members)
        if m < 2:
            return float("nan")
        return sliced_wasserstein(members, self.pools[k][0][:m], self.directions) / self.floor(k, m)

    def class_rows(self, step: int, samples: np.ndarray, classes: np.ndarray) -> list[dict]:
        """Return per-class generalisation errors with their floors, and likelihoods."""
        data = self.dataset
        log_likelihood = mixture.log_density(samples, data.weights, data.means, data.covariances)
        rows = [
            {"step": step, "class": None, "metric": "log_likelihood", "value": float(log_likelihood.mean())},
            {"step": step, "class": None, "metric": "log_likelihood_reference", "value": float(self.reference_log_likelihood.mean())},
        ]
        for k in range(data.n_classes):
            members = samples[classes == k]
            m = len(members)
            reference = self.class_reference_log_likelihood[k]
            rows.append({"step": step, "class": k, "metric": "log_likelihood_reference", "value": reference})
            if m < 2:
                continue
            rows += [
                {"step": step, "class": k, "metric": "log_likelihood", "value": float(log_likelihood[classes == k].mean())},
                {"step": step, "class": k, "metric": "gen_error_sw2", "value": sliced_wasserstein(members, self.pools[k][0][:m], self.directions)},
                {"step": step, "class": k, "metric": "gen_error_floor", "value": self.floor(k, m)},
                {"step": step, "class": k, "metric": "covariance_error", "value": covariance_error(members, data.covariances[k])},
            ]
        return rows

    @torch.no_grad()
    def score_rows(self, step: int, model, device) -> list[dict]:
        """Return the network's score error against the population and the empirical score, per timestep.

        Errors are mean squared differences of noise predictions per dimension, E|eps_net - eps_ref|^2 / d,
        which is (1 - alpha_bar) times the score error. The ratio population / empirical grows above 1
        as the network moves towards the empirical (memorising) score.
        """
        rows = []
        for t, (xt, epsilon_population, epsilon_empirical) in self.score_points.items():
            sample = torch.as_tensor(xt, dtype=torch.float32, device=device)
            epsilon = model(sample, torch.tensor([t], device=device)).double().cpu().numpy()
            error_population = float(((epsilon - epsilon_population) ** 2).mean())
            error_empirical = float(((epsilon - epsilon_empirical) ** 2).mean())
            for metric, value in (
                ("score_error_population", error_population),
                ("score_error_empirical", error_empirical),
                ("score_error_ratio", error_population / error_empirical if error_empirical > 0 else float("nan")),
            ):
                rows.append({"step": step, "class": None, "metric": metric, "value": value, "timestep": t})
        return rows
