"""Encoders and critics, built from plain hyper-parameters.

Small ``nn.Module``s defined bottom-up. None of them knows about the training loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._objective import Channel

__all__ = [
    "mlp",
    "ConvNet",
    "Encoder",
    "DenseCritic",
    "SeparableCritic",
    "AnalyticCritic",
    "make_critic",
]


def mlp(
    n_in: int, hidden: Sequence[int], n_out: int, *, batch_norm: bool = False
) -> nn.Sequential:
    """``n_in -> hidden... -> n_out`` with LeakyReLU between layers."""
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers.append(nn.Linear(width, int(h)))
        if batch_norm:
            layers.append(nn.BatchNorm1d(int(h)))
        layers.append(nn.LeakyReLU(0.2))
        width = int(h)
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class ConvNet(nn.Module):
    """The authors' small MNIST ConvNet (PAPER.md section 3).

    Three 3x3 conv blocks (32/64/128 channels, BatchNorm2d, LeakyReLU, 2x2 pooling),
    then dense ``128 -> 128 -> n_out``. Rows of ``X`` are flattened images of
    ``input_shape = (channels, height, width)``.
    """

    def __init__(self, input_shape: Sequence[int], n_out: int):
        super().__init__()
        c, h, w = (int(s) for s in input_shape)
        self.input_shape = (c, h, w)
        blocks: list[nn.Module] = []
        for c_out in (32, 64, 128):
            blocks += [
                nn.Conv2d(c, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2),
                nn.MaxPool2d(2),
            ]
            c = c_out
        self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(128, 128), nn.LeakyReLU(0.2), nn.Linear(128, n_out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], *self.input_shape)
        return self.head(self.features(x))


class Encoder(nn.Module):
    """``backbone`` (user's or ours), an optional linear head, and our normalization."""

    def __init__(self, backbone: nn.Module, norm: nn.Module, head: nn.Module | None):
        super().__init__()
        self.backbone = backbone
        self.head = head if head is not None else nn.Identity()
        self.norm = norm

    def pre_norm(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.pre_norm(x))


class DenseCritic(nn.Module):
    """The authors' joint critic: an MLP on the concatenated pair ``[y_i, e_j]``.

    ``2d -> hidden -> hidden -> 1`` with LeakyReLU, evaluated on all ``N x N`` pairs.
    The first layer is split as ``A y_i + B e_j`` so it costs ``O(N h)`` rather than
    ``O(N^2 d h)``; the second layer still costs ``N^2 h^2`` multiply-adds per batch,
    which dominates a training step (about 17 GFLOP forward at ``N = 512``,
    ``h = 256``).
    """

    def __init__(self, n_components: int, hidden: int = 256):
        super().__init__()
        self.a = nn.Linear(n_components, hidden)
        self.b = nn.Linear(n_components, hidden, bias=False)
        self.rest = nn.Sequential(
            nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2)
        )
        self.out = nn.Linear(hidden, 1)

    def forward(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.a(y).unsqueeze(1) + self.b(e).unsqueeze(0)  # (N, N, hidden)
        return self.out(self.rest(h)).squeeze(-1)


class SeparableCritic(nn.Module):
    """Two projection heads and a scaled dot product: ``<g(y_i), k(e_j)> / sqrt(m)``.

    Costs ``O(N d h + N^2 m)`` per batch: a few percent of the encoder's cost.
    """

    def __init__(self, n_components: int, hidden: int = 128, embed: int = 64):
        super().__init__()
        self.g = mlp(n_components, (hidden,), embed)
        self.k = mlp(n_components, (hidden,), embed)
        self.scale = 1.0 / math.sqrt(embed)

    def forward(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return (self.g(y) @ self.k(e).T) * self.scale


class AnalyticCritic(nn.Module):
    """The channel's own log density ratio: no parameters, exact at the optimum."""

    adaptive = False

    def __init__(self, channel: Channel):
        super().__init__()
        self.channel = channel

    def forward(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.channel.log_density_ratio(y, e)


class AdaptiveGaussianCritic(AnalyticCritic):
    """The Gaussian channel's ratio with the views' measured correlation.

    The exact critic assumes the encoder is invariant to the augmentation
    (``e' = e''``); early in training, or at high capacity, it is not, and the
    exact critic's ``1/p^2`` sharpness punishes every mismatch. Here the channel
    from the clean latent ``e''`` to ``y`` is modelled as linear-Gaussian with the
    per-component correlation ``c`` of the two views, measured on each batch (no
    gradient, no parameters): ``y | e'' ~ N(rho c e'', 1 - rho^2 c^2)``. At the
    optimum ``c = 1`` and it is the exact critic.
    """

    adaptive = True

    def observe(self, e_noisy: torch.Tensor, e_clean: torch.Tensor) -> None:
        a, b = e_noisy.detach(), e_clean.detach()
        cov = (a * b).mean(0) - a.mean(0) * b.mean(0)
        c = cov / (a.var(0, unbiased=False) * b.var(0, unbiased=False)).sqrt()
        self._corr = torch.nan_to_num(c, nan=0.0).clamp(0.0, 1.0 - 1e-6)

    def forward(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.channel.log_density_ratio(y, e, corr=self._corr)


def make_critic(kind: str, n_components: int, channel: Channel) -> nn.Module:
    if kind == "dense":
        return DenseCritic(n_components)
    if kind == "separable":
        return SeparableCritic(n_components)
    if kind == "gaussian":
        return AnalyticCritic(channel)
    if kind == "gaussian-adaptive":
        if channel.prior != "gaussian":
            raise ValueError("critic='gaussian-adaptive' needs the Gaussian prior")
        return AdaptiveGaussianCritic(channel)
    raise ValueError(f"unknown critic {kind!r}")
