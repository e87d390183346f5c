"""Target distributions: what ``prior=`` means, how to sample it.

A prior names a *base* on which training runs (``"gaussian"``: ``N(0, I)``, or
``"uniform"``: ``U([0, 1]^d)``) and a fixed bijection from the base to the target.
For the two built-in priors the bijection is the identity.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Prior", "resolve_prior"]


class Prior:
    """A target distribution reached from a base by a fixed bijection."""

    def __init__(self, base: str):
        if base not in ("gaussian", "uniform"):
            raise ValueError(f"base must be 'gaussian' or 'uniform', got {base!r}")
        self.base = base

    def sample_base(
        self, n_samples: int, n_components: int, rng: np.random.Generator
    ) -> np.ndarray:
        if self.base == "gaussian":
            return rng.standard_normal((n_samples, n_components))
        return rng.random((n_samples, n_components))

    def to_target(self, z: np.ndarray) -> np.ndarray:
        """Map base latents to the target's space (identity for built-ins)."""
        return z

    def from_target(self, t: np.ndarray) -> np.ndarray:
        """Map target-space latents back to the base (identity for built-ins)."""
        return t

    def sample(
        self, n_samples: int, n_components: int, rng: np.random.Generator
    ) -> np.ndarray:
        return self.to_target(self.sample_base(n_samples, n_components, rng))


def resolve_prior(prior) -> Prior:
    if isinstance(prior, Prior):
        return prior
    if prior in ("gaussian", "uniform"):
        return Prior(prior)
    raise ValueError(f"prior must be 'gaussian' or 'uniform', got {prior!r}")
