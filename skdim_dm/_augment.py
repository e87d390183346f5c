"""Views of a batch: pure torch functions ``(batch, generator) -> batch``."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["GaussianView", "make_augmentation"]

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class GaussianView:
    """The paper's input channel: ``sqrt(1 - s^2) x + s xi``, ``xi ~ N(0, I)``.

    Applied to standardized features it keeps each feature's variance at one.
    """

    def __init__(self, strength: float):
        self.strength = float(strength)
        self._keep = math.sqrt(1.0 - self.strength**2)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.strength == 0.0:
            return x
        xi = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return self._keep * x + self.strength * xi


def make_augmentation(augmentation, strength: float) -> Augmentation:
    """``"gaussian"`` or a user callable ``(X_batch, generator) -> X_view``."""
    if augmentation == "gaussian":
        return GaussianView(strength)
    if callable(augmentation):
        return augmentation
    raise ValueError(f"unknown augmentation {augmentation!r}")
