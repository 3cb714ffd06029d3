"""Exact quantities of a Gaussian mixture under the variance-preserving forward process.

With x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps, the mixture sum_k w_k N(mu_k, Sigma_k) stays a
mixture with means sqrt(alpha_bar) mu_k and covariances alpha_bar Sigma_k + (1 - alpha_bar) I.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def noised_components(means: np.ndarray, covariances: np.ndarray, alpha_bar: float = 1.0):
    """Return the component means and covariances of the mixture at noise level alpha_bar."""
    dim = means.shape[1]
    noised_means = np.sqrt(alpha_bar) * means
    noised_covariances = alpha_bar * covariances + (1.0 - alpha_bar) * np.eye(dim)[None]
    return noised_means, noised_covariances


def component_log_densities(x: np.ndarray, means: np.ndarray, covariances: np.ndarray) -> np.ndarray:
    """Return log N(x; mu_k, Sigma_k) for every row of x and component k, shape (n, k)."""
    x = np.asarray(x, dtype=np.float64)
    n, dim = x.shape
    out = np.empty((n, len(means)))
    for k, (mean, covariance) in enumerate(zip(means, covariances)):
        cholesky = np.linalg.cholesky(covariance)
        whitened = np.linalg.solve(cholesky, (x - mean).T)
        log_det = 2.0 * np.log(np.diag(cholesky)).sum()
        out[:, k] = -0.5 * (np.einsum("ij,ij->j", whitened, whitened) + log_det + dim * np.log(2 * np.pi))
    return out


def log_joint(x, weights, means, covariances, alpha_bar: float = 1.0) -> np.ndarray:
    """Return log w_k + log p_t(x | k), shape (n, k)."""
    noised_means, noised_covariances = noised_components(means, covariances, alpha_bar)
    return np.log(weights)[None] + component_log_densities(x, noised_means, noised_covariances)


def log_density(x, weights, means, covariances, alpha_bar: float = 1.0) -> np.ndarray:
    """Return the exact log-density log p_t(x) of the noised mixture, shape (n,)."""
    return logsumexp(log_joint(x, weights, means, covariances, alpha_bar), axis=1)


def posterior(x, weights, means, covariances, alpha_bar: float = 1.0) -> np.ndarray:
    """Return the exact class posterior p_t(k | x), shape (n, k), computed with log-sum-exp."""
    joint = log_joint(x, weights, means, covariances, alpha_bar)
    return np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
