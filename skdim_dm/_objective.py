"""Normalization, noise channels and the InfoNCE bound.

Pure, differentiable torch code. Nothing here knows about scikit-learn.

Notation follows ``PAPER.md`` section 2. A channel mixes a normalized latent ``e``
with independent noise at mixing weight ``p``:

* Gaussian target: ``y = sqrt(1 - p^2) * e + p * xi``, ``xi ~ N(0, I)``; the noise
  level is ``sigma = p / sqrt(1 - p^2)`` relative to unit-variance latents.
* Uniform target: ``y = (1 - p) * e + p * u``, ``u ~ U([0, 1]^d)``; the noise level is
  ``eps = p / (2 (1 - p))`` relative to ``[0, 1]`` latents.

Both have capacity ``-log p`` nats per component.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "noise_level_to_capacity",
    "capacity_to_noise_level",
    "noise_level_to_mixing",
    "Channel",
    "GaussianChannel",
    "UniformChannel",
    "make_channel",
    "make_normalization",
    "infonce",
]

_PRIORS = ("gaussian", "uniform")


def _check_prior(prior: str) -> None:
    if prior not in _PRIORS:
        raise ValueError(f"prior must be one of {_PRIORS}, got {prior!r}")


def noise_level_to_mixing(noise_level: float, prior: str = "gaussian") -> float:
    """Mixing weight ``p`` in (0, 1) of the channel for a given noise level."""
    _check_prior(prior)
    s = float(noise_level)
    if not s > 0 or not math.isfinite(s):
        raise ValueError(f"noise_level must be a positive finite number, got {s!r}")
    if prior == "gaussian":
        return s / math.sqrt(1.0 + s * s)
    return 2.0 * s / (1.0 + 2.0 * s)


def noise_level_to_capacity(
    noise_level: float, n_components: int, prior: str = "gaussian"
) -> float:
    """Capacity in nats of the noise channel for ``n_components`` latents.

    ``C = d/2 log(1 + 1/sigma^2)`` for the Gaussian prior and
    ``C = d log(1 + 1/(2 eps))`` for the uniform prior.
    """
    _check_prior(prior)
    s = float(noise_level)
    if not s > 0 or not math.isfinite(s):
        raise ValueError(f"noise_level must be a positive finite number, got {s!r}")
    d = int(n_components)
    if prior == "gaussian":
        return 0.5 * d * math.log1p(1.0 / (s * s))
    return d * math.log1p(1.0 / (2.0 * s))


def capacity_to_noise_level(
    capacity: float, n_components: int, prior: str = "gaussian"
) -> float:
    """Inverse of :func:`noise_level_to_capacity`."""
    _check_prior(prior)
    c = float(capacity)
    if not c > 0 or not math.isfinite(c):
        raise ValueError(f"capacity must be a positive finite number, got {c!r}")
    per = c / int(n_components)
    if prior == "gaussian":
        return 1.0 / math.sqrt(math.expm1(2.0 * per))
    return 1.0 / (2.0 * math.expm1(per))


class Channel:
    """An additive-noise channel applied to one branch of the InfoMax objective."""

    prior: str = ""

    def __init__(self, noise_level: float):
        self.noise_level = float(noise_level)
        self.p = noise_level_to_mixing(noise_level, self.prior)

    def capacity(self, n_components: int) -> float:
        return noise_level_to_capacity(self.noise_level, n_components, self.prior)

    def __call__(self, e: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def log_density_ratio(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """Scores ``T[i, j]`` for all pairs ``(y_i, e_j)``, shape ``(N, N)``."""
        raise NotImplementedError


class GaussianChannel(Channel):
    """``y = sqrt(1 - p^2) e + p xi``: keeps unit variance when ``e`` has it."""

    prior = "gaussian"

    def __call__(self, e: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        xi = torch.randn(e.shape, generator=generator, device=e.device, dtype=e.dtype)
        return math.sqrt(1.0 - self.p**2) * e + self.p * xi

    def log_density_ratio(
        self, y: torch.Tensor, e: torch.Tensor, corr: torch.Tensor | None = None
    ) -> torch.Tensor:
        if corr is not None:
            return self._adaptive_ratio(y, e, corr)
        # log p(y | e) - log N(y; 0, I), up to constants:
        # (||y||^2 - ||y - rho e||^2 / p^2) / 2, expanded to use one matmul.
        rho = math.sqrt(1.0 - self.p**2)
        inv = 1.0 / self.p**2
        yy = (y * y).sum(1, keepdim=True)  # (N, 1)
        ee = (e * e).sum(1).unsqueeze(0)  # (1, N)
        ye = y @ e.T
        return 0.5 * yy * (1.0 - inv) + inv * rho * ye - 0.5 * inv * rho**2 * ee

    def _adaptive_ratio(self, y, e, corr):
        # The channel seen from the clean branch: y = rho e' + p xi with e' the
        # other view's latent. With per-component correlation c between the views,
        # the best Gaussian model is y | e ~ N(rho c e, 1 - rho^2 c^2); c = 1 (an
        # invariant encoder) gives back the exact ratio above.
        rho2 = 1.0 - self.p**2
        a = math.sqrt(rho2) * corr  # (d,)
        v = 1.0 - rho2 * corr * corr
        yy = (y * y * (0.5 - 0.5 / v)).sum(1, keepdim=True)
        ee = (e * e * (0.5 * a * a / v)).sum(1).unsqueeze(0)
        return yy + (y * (a / v)) @ e.T - ee


class UniformChannel(Channel):
    """``y = (1 - p) e + p u`` with ``u ~ U([0, 1]^d)``: stays inside the unit cube."""

    prior = "uniform"

    def __call__(self, e: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(e.shape, generator=generator, device=e.device, dtype=e.dtype)
        return (1.0 - self.p) * e + self.p * u

    #: Edge softness of the box, as a fraction of its width ``p``.
    softness = 0.1

    def log_density_ratio(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        # Exact: log p(y | e) - log p(y) with p(y | e) = 1/p on the box
        # [(1-p) e, (1-p) e + p] and p(y) the trapezoid density of (1-p) U + p U'
        # (the output law when e is uniform). The box indicator has no gradient,
        # so its edges are softened by logistic ramps of width softness * p.
        p, a = self.p, 1.0 - self.p
        tau = self.softness * p
        r = (y.unsqueeze(1) - a * e.unsqueeze(0)) / tau  # (N, N, d)
        inside = F.logsigmoid(r) + F.logsigmoid(p / tau - r)
        lo = min(a, p)
        q = torch.minimum(torch.minimum(y, 1.0 - y), torch.full_like(y, lo))
        log_q = torch.log(q.clamp_min(1e-6 * lo) / (a * p))  # (N, d)
        return (inside - math.log(p)).sum(-1) - log_q.sum(-1, keepdim=True)


def make_channel(prior: str, noise_level: float) -> Channel:
    _check_prior(prior)
    return (GaussianChannel if prior == "gaussian" else UniformChannel)(noise_level)


class _Sigmoid(nn.Module):
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h)


def make_normalization(prior: str, n_components: int) -> nn.Module:
    """The layer that puts encoder outputs on the prior's scale.

    Gaussian: ``BatchNorm1d`` without affine parameters (zero mean, unit variance per
    component). Uniform: a sigmoid onto ``[0, 1]``.
    """
    _check_prior(prior)
    if prior == "gaussian":
        return nn.BatchNorm1d(n_components, affine=False)
    return _Sigmoid()


def infonce(scores: torch.Tensor) -> torch.Tensor:
    """InfoNCE lower bound on MI (nats) from an ``(N, N)`` score matrix.

    ``scores[i, j] = T(y_i, e_j)`` with positives on the diagonal. Returns
    ``I_hat = log N - mean_j [logsumexp_i T(y_i, e_j) - T(y_j, e_j)]``, which never
    exceeds ``log N``. The training loss is ``-I_hat``.
    """
    n = scores.shape[0]
    lse = torch.logsumexp(scores, dim=0)
    return math.log(n) - (lse - scores.diagonal()).mean()
