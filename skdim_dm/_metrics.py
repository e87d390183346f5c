"""Distribution-matching statistics on latents: numpy in, numbers out. No torch."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln

__all__ = ["knn_kl_divergence", "prior_match_score"]


def _as_2d(Z) -> np.ndarray:
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim == 1:
        Z = Z[:, None]
    if Z.ndim != 2:
        raise ValueError(f"latents must be 2-D (n_samples, n_components), got {Z.shape}")
    if not np.all(np.isfinite(Z)):
        raise ValueError("latents contain NaN or infinity")
    return Z


def knn_kl_divergence(Z, prior: str = "gaussian", k: int = 5) -> float:
    """Kozachenko-Leonenko estimate of ``KL(law of Z || prior)`` in nats.

    ``KL = -h(Z) + E[-log prior(Z)]`` with the k-nearest-neighbour entropy estimate
    ``h = psi(n) - psi(k) + log V_d + d mean(log eps_k)``. For the uniform prior on
    the unit cube, ``KL = -h(Z)`` (infinite when a point lies outside the cube).
    """
    Z = _as_2d(Z)
    n, d = Z.shape
    if n <= k:
        raise ValueError(f"need more than k={k} latents, got {n}")
    dist, _ = cKDTree(Z).query(Z, k=k + 1)
    eps = dist[:, -1]
    # Ties (duplicate latents) give eps = 0 and log 0; floor at a tiny distance.
    eps = np.maximum(eps, 1e-12 * max(1.0, float(np.abs(Z).max())))
    log_vd = 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1.0)
    h = digamma(n) - digamma(k) + log_vd + d * np.mean(np.log(eps))
    if prior == "gaussian":
        cross = 0.5 * np.mean(np.sum(Z * Z, axis=1)) + 0.5 * d * np.log(2 * np.pi)
    elif prior == "uniform":
        if np.any((Z < 0) | (Z > 1)):
            return float("inf")
        cross = 0.0
    else:
        raise ValueError(f"prior must be 'gaussian' or 'uniform', got {prior!r}")
    return float(cross - h)


def prior_match_score(Z, prior: str = "gaussian") -> float:
    """Higher is better: ``-KL(latents || prior)`` estimated by nearest neighbours."""
    return -knn_kl_divergence(Z, prior=prior)
