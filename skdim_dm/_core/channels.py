"""Noise channels and the encoder's normalization layers.

Pure, differentiable torch code. The bounds the critics compute through a channel
are in :mod:`skdim_dm._core.bounds`.

Notation follows the paper (Butakov et al., ICLR 2025, section 2). A channel mixes
a normalized latent ``e`` with independent noise at mixing weight ``p``:

* Gaussian target: ``y = sqrt(1 - p^2) * e + p * xi``, ``xi ~ N(0, I)``; the noise
  level is ``sigma = p / sqrt(1 - p^2)`` relative to unit-variance latents.
* Uniform target: ``y = (1 - p) * e + p * u``, ``u ~ U([0, 1]^d)``; the noise level is
  ``eps = p / (2 (1 - p))`` relative to ``[0, 1]`` latents.

Both have capacity ``-log p`` nats per component. Which channel and which
normalization belong to which target is decided once, by the base objects of
:mod:`skdim_dm._core.bases`.
"""

from __future__ import annotations

import math
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Channel",
    "GaussianChannel",
    "UniformChannel",
    "Normalization",
    "BatchNormalization",
    "SigmoidNormalization",
    "WhiteningNormalization",
    "MIN_NOISE_LEVEL",
    "MAX_NOISE_LEVEL",
]

#: Range of ``noise_level``: beyond it the channel's capacity and the analytic
#: critic's ``1/noise^2`` scale leave float32 (and 1 - p^2 rounds to 0 or 1).
MIN_NOISE_LEVEL, MAX_NOISE_LEVEL = 1e-6, 1e6


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    v = float(value)
    if not v > 0 or not math.isfinite(v):
        raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    return v


def _dimension(n_components) -> int:
    if isinstance(n_components, bool) or not isinstance(n_components, Integral):
        raise ValueError(f"n_components must be a positive int, got {n_components!r}")
    if n_components < 1:
        raise ValueError(f"n_components must be a positive int, got {n_components!r}")
    return int(n_components)


def _checked(value: float, what: str) -> float:
    """``value`` when it is a positive finite float; a clear error otherwise
    (extreme arguments overflow or underflow the formulas)."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"{what} is out of the representable range ({value!r}); use a "
            "moderate value"
        )
    return value


class Channel:
    """An additive-noise channel applied to one branch of the InfoMax objective.

    Subclasses define the mixing weight ``p`` of a noise level, the capacity
    (``-log p`` nats per component) and its inverse, the noise draw
    (``__call__``) and the channel's log density ratio (the analytic critic).
    """

    def __init__(self, noise_level: float):
        self.noise_level = float(noise_level)
        self.p = self.mixing(noise_level)

    @staticmethod
    def mixing(noise_level: float) -> float:
        """Mixing weight ``p`` in (0, 1) for a given noise level."""
        raise NotImplementedError

    @staticmethod
    def capacity_for(noise_level: float, n_components: int) -> float:
        """Capacity in nats of ``n_components`` channels at ``noise_level``."""
        raise NotImplementedError

    @staticmethod
    def noise_level_for(capacity: float, n_components: int) -> float:
        """Inverse of :meth:`capacity_for`."""
        raise NotImplementedError

    def capacity(self, n_components: int) -> float:
        return self.capacity_for(self.noise_level, n_components)

    def __call__(self, e: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def log_density_ratio(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """Scores ``T[i, j]`` for all pairs ``(y_i, e_j)``, shape ``(N, N)``."""
        raise NotImplementedError


class GaussianChannel(Channel):
    """``y = sqrt(1 - p^2) e + p xi``: keeps unit variance when ``e`` has it."""

    @staticmethod
    def mixing(noise_level: float) -> float:
        s = _positive(noise_level, "noise_level")
        return s / math.sqrt(1.0 + s * s)

    @staticmethod
    def capacity_for(noise_level: float, n_components: int) -> float:
        s = _positive(noise_level, "noise_level")
        d = _dimension(n_components)
        if s < 1e-100:  # s * s would underflow: 0.5 log(1 + 1/s^2) = -log s + ...
            return _checked(d * -math.log(s), f"the capacity at noise_level={s!r}")
        c = 0.5 * d * math.log1p(1.0 / (s * s))
        return _checked(c, f"the capacity at noise_level={s!r}")

    @staticmethod
    def noise_level_for(capacity: float, n_components: int) -> float:
        per = _positive(capacity, "capacity") / _dimension(n_components)
        what = f"the noise level for capacity {capacity!r}"
        try:
            return _checked(1.0 / math.sqrt(math.expm1(2.0 * per)), what)
        except (OverflowError, ZeroDivisionError):
            raise ValueError(f"{what} is out of the representable range") from None

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
        # Batched over leading dimensions (the slices of a sliced critic).
        rho = math.sqrt(1.0 - self.p**2)
        inv = 1.0 / self.p**2
        yy = (y * y).sum(-1, keepdim=True)  # (..., N, 1)
        ee = (e * e).sum(-1).unsqueeze(-2)  # (..., 1, N)
        ye = y @ e.transpose(-1, -2)
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

    @staticmethod
    def mixing(noise_level: float) -> float:
        s = _positive(noise_level, "noise_level")
        return 2.0 * s / (1.0 + 2.0 * s)

    @staticmethod
    def capacity_for(noise_level: float, n_components: int) -> float:
        s = _positive(noise_level, "noise_level")
        c = _dimension(n_components) * math.log1p(1.0 / (2.0 * s))
        return _checked(c, f"the capacity at noise_level={s!r}")

    @staticmethod
    def noise_level_for(capacity: float, n_components: int) -> float:
        per = _positive(capacity, "capacity") / _dimension(n_components)
        what = f"the noise level for capacity {capacity!r}"
        try:
            return _checked(1.0 / (2.0 * math.expm1(per)), what)
        except (OverflowError, ZeroDivisionError):
            raise ValueError(f"{what} is out of the representable range") from None

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


class Normalization(nn.Module):
    """The layer that puts encoder outputs on the prior's scale.

    ``calibrate(h)`` receives the pre-normalization outputs of the whole training
    set after training, for layers whose inference statistics should be exact;
    ``needs_statistics`` says whether it wants them (computing them costs a pass
    over the data).
    """

    needs_statistics = False

    def calibrate(self, h: torch.Tensor) -> None:
        """Set inference statistics from the training set's outputs ``h``."""

    def reset_parameters(self) -> None:
        """Fresh statistics (nothing random)."""


class BatchNormalization(nn.BatchNorm1d, Normalization):
    """Zero mean and unit variance per component: ``BatchNorm1d`` without affine.

    Batch statistics while training, running statistics at inference;
    :meth:`calibrate` replaces the running averages (which lag behind the moving
    weights) by the exact statistics of the training set, so ``transform(X_train)``
    has zero mean and unit variance per component.
    """

    needs_statistics = True

    def __init__(self, n_components: int):
        super().__init__(n_components, affine=False)

    @torch.no_grad()
    def calibrate(self, h: torch.Tensor) -> None:
        self.running_mean.copy_(h.mean(0))
        # BatchNorm divides by sqrt(running_var + eps): subtract eps so that the
        # training latents come out with exactly unit variance.
        self.running_var.copy_((h.var(0, unbiased=False) - self.eps).clamp_min(0.0))


class SigmoidNormalization(Normalization):
    """A sigmoid onto ``[0, 1]``: no statistics."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h)


class WhiteningNormalization(Normalization):
    """Zero mean and identity covariance: the components are decorrelated, not only
    standardized.

    While training, each batch is whitened by its own statistics (Cholesky:
    ``e = L^{-1} (h - mean)`` with ``L L^T`` the batch covariance), with the
    gradient flowing through them, as batch normalization does per component;
    running averages of the mean and covariance serve inference during training
    (the validation estimate). :meth:`calibrate` replaces them by the exact
    statistics of the training set, so ``transform(X_train)`` has zero mean and
    identity covariance.

    The statistics are kept in float64 whatever dtype the network runs in (and the
    inference whitening is applied in float64), so the identity holds to float64
    rounding of the statistics rather than float32's.
    """

    needs_statistics = True
    #: Ridge added to the batch covariance, relative to its mean variance.
    eps = 1e-5
    momentum = 0.1
    _float64 = ("running_mean", "running_cov")

    def __init__(self, n_components: int):
        super().__init__()
        self.n_components = int(n_components)
        d = self.n_components
        self.register_buffer("running_mean", torch.zeros(d, dtype=torch.float64))
        self.register_buffer("running_cov", torch.eye(d, dtype=torch.float64))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.running_mean.zero_()
            self.running_cov.copy_(torch.eye(self.n_components, dtype=torch.float64))

    def _apply(self, fn, recurse=True):
        # Keep the statistics in float64 through .float(), .half() and the like;
        # moves between devices (and to_empty) still apply.
        saved = {name: getattr(self, name) for name in self._float64}
        super()._apply(fn, recurse)
        for name, before in saved.items():
            after = getattr(self, name)
            if after.dtype != torch.float64:
                setattr(self, name, before.to(device=after.device, dtype=torch.float64))
        return self

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = h.mean(0)
            hc = h - mean
            cov = hc.T @ hc / h.shape[0]
            ridge = self.eps * cov.diagonal().mean().detach().clamp_min(1e-12)
            eye = torch.eye(h.shape[1], device=h.device, dtype=h.dtype)
            chol = torch.linalg.cholesky(cov + ridge * eye)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.detach().double())
                self.running_cov.mul_(1 - m).add_(m * cov.detach().double())
            return torch.linalg.solve_triangular(chol, hc.T, upper=False).T
        mean, cov = self.running_mean, self.running_cov
        ridge = self.eps * cov.diagonal().mean().clamp_min(1e-12)
        eye = torch.eye(cov.shape[0], device=cov.device, dtype=cov.dtype)
        chol = torch.linalg.cholesky(cov + ridge * eye)
        hc = (h.to(torch.float64) - mean).T
        return torch.linalg.solve_triangular(chol, hc, upper=False).T.to(h.dtype)

    @torch.no_grad()
    def calibrate(self, h: torch.Tensor) -> None:
        h = h.to(torch.float64)
        mean = h.mean(0)
        hc = h - mean
        cov = hc.T @ hc / h.shape[0]
        # forward adds eps * mean variance: store cov minus that ridge, so the
        # training latents come out with exactly identity covariance.
        ridge = self.eps * cov.diagonal().mean()
        eye = torch.eye(cov.shape[0], device=cov.device, dtype=cov.dtype)
        self.running_mean.copy_(mean)
        self.running_cov.copy_(cov - ridge / (1.0 + self.eps) * eye)
