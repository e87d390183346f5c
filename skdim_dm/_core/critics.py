"""Critics: the scores ``T(y_i, e_j)`` of all pairs of a batch.

Small ``nn.Module``s, each registered in :data:`CRITICS` under its ``critic=``
name and built as ``cls(n_components, channel)``: learned ones (dense,
separable) and the channel's own log density ratio (the analytic critics).
:class:`SlicedCritic` applies an analytic critic to random one-dimensional
slices of the latents (the sliced objective's critic). None of them knows about
the training loop.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .bounds import infonce, sliced_gaussian_infonce, sliced_student_infonce
from .channels import Channel, GaussianChannel

__all__ = [
    "Critic",
    "DenseCritic",
    "SeparableCritic",
    "AnalyticCritic",
    "AdaptiveGaussianCritic",
    "StudentCritic",
    "SlicedCritic",
    "CRITICS",
    "SLICEABLE",
]


def _head(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    """``n_in -> hidden -> n_out`` with a LeakyReLU between (a one-hidden-layer
    MLP, as the encoders' ``mlp`` builds it)."""
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, n_out)
    )


class Critic(nn.Module):
    """Scores ``T(y_i, e_j)`` of all pairs in a batch, shape ``(N, N)``.

    ``y`` is the noisy branch, ``e`` the clean one. :meth:`observe` sees both
    branches' latents before the noise on every batch (a no-op unless the critic
    adapts to them), so the training loop never asks which critic it holds.
    Subclasses are built as ``cls(n_components, channel)``.
    """

    def observe(
        self,
        e_noisy: torch.Tensor,
        e_clean: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> None:
        """See the two branches' latents of a batch before the noise is added
        (and the step's generator, for critics that draw something per batch)."""

    def bound(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """The InfoNCE bound (nats) of the batch's scores; critics with a faster
        exact route to the same number override it."""
        return infonce(self(y, e))


class DenseCritic(Critic):
    """The authors' joint critic: an MLP on the concatenated pair ``[y_i, e_j]``.

    ``2d -> hidden -> hidden -> 1`` with LeakyReLU, evaluated on all ``N x N`` pairs.
    The first layer is split as ``A y_i + B e_j`` so it costs ``O(N h)`` rather than
    ``O(N^2 d h)``; the second layer still costs ``N^2 h^2`` multiply-adds per batch,
    which dominates a training step.
    """

    def __init__(self, n_components: int, channel: Channel | None = None, hidden=256):
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


class SeparableCritic(Critic):
    """Two projection heads and a scaled dot product: ``<g(y_i), k(e_j)> / sqrt(m)``.

    Costs ``O(N d h + N^2 m)`` per batch: a few percent of the encoder's cost.
    """

    def __init__(
        self, n_components: int, channel: Channel | None = None, hidden=128, embed=64
    ):
        super().__init__()
        self.g = _head(n_components, hidden, embed)
        self.k = _head(n_components, hidden, embed)
        self.scale = 1.0 / math.sqrt(embed)

    def forward(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return (self.g(y) @ self.k(e).T) * self.scale


class AnalyticCritic(Critic):
    """The channel's own log density ratio: no parameters, exact at the optimum."""

    def __init__(self, n_components: int, channel: Channel):
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

    def __init__(self, n_components: int, channel: Channel):
        if not isinstance(channel, GaussianChannel):
            raise ValueError("critic='gaussian-adaptive' needs the Gaussian prior")
        super().__init__(n_components, channel)

    def observe(self, e_noisy, e_clean, generator=None) -> None:
        a, b = e_noisy.detach(), e_clean.detach()
        cov = (a * b).mean(0) - a.mean(0) * b.mean(0)
        c = cov / (a.var(0, unbiased=False) * b.var(0, unbiased=False)).sqrt()
        self._corr = torch.nan_to_num(c, nan=0.0).clamp(0.0, 1.0 - 1e-6)

    def forward(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.channel.log_density_ratio(y, e, corr=self._corr)


class StudentCritic(AnalyticCritic):
    """The Gaussian channel's ratio with a heavy-tailed (Student-t) kernel.

    ``T(y, e) = -(nu + d)/2 log(1 + ||y - rho e||^2 / (nu p^2)) + ||y||^2 / 2``:
    the exact critic's Gaussian kernel ``exp(-||y - rho e||^2 / (2 p^2))``
    replaced by a Student-t kernel of the same scale and ``nu = dof`` degrees of
    freedom (``nu -> inf`` gives the exact critic back). With neighbor views the
    positive pairs are neighbors, not noisy copies: the Gaussian kernel's
    quadratic penalty lets the few pairs that cross between classes pull classes
    together (the crowding of SNE), while the heavy tail tolerates them and keeps
    classes apart, as t-SNE and UMAP do (Damrich et al., ICLR 2023). It is still
    a critic of the same InfoNCE bound through the same noisy channel.
    """

    dof = 5.0

    def __init__(self, n_components: int, channel: Channel):
        if not isinstance(channel, GaussianChannel):
            raise ValueError("critic='student' needs the Gaussian prior")
        super().__init__(n_components, channel)

    def forward(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        p = self.channel.p
        rho = math.sqrt(1.0 - p * p)
        dist2 = _sq_distances(y, rho * e)
        nu, d = self.dof, y.shape[-1]
        yy = 0.5 * (y * y).sum(-1, keepdim=True)
        return yy - 0.5 * (nu + d) * torch.log1p(dist2 / (nu * p * p))


def _sq_distances(y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """``||y_i - e_j||^2`` for all pairs, over the last dimension (batched)."""
    yy = (y * y).sum(-1, keepdim=True)
    ee = (e * e).sum(-1).unsqueeze(-2)
    return (yy + ee - 2.0 * y @ e.transpose(-1, -2)).clamp_min(0.0)


class SlicedCritic(Critic):
    """An analytic critic applied to random one-dimensional slices of the latents.

    At every batch the latents are rotated by a fresh random orthogonal matrix
    (drawn from the step's generator) and ``kernel`` scores each rotated
    coordinate on its own: the scores have shape ``(slices, N, N)`` and the
    InfoNCE bound is summed over slices. Each slice is a one-dimensional channel
    whose capacity is capped by ``log N`` separately, so the total capacity is no
    longer capped by ``log(batch_size)``; each one-dimensional channel is maximized
    by a Gaussian input, and a law whose every projection is Gaussian is jointly
    Gaussian (Cramer-Wold). The rotation commutes with the isotropic channel
    noise, so rotating after the noise is the same as before it. With more than
    ``max_slices`` components, that many orthonormal directions are drawn per
    batch and the sum is rescaled to all ``d``.
    """

    max_slices = 16

    def __init__(self, n_components: int, channel: Channel, kernel: type[Critic]):
        super().__init__()
        self.kernel = kernel(1, channel)
        self.n_components = int(n_components)
        self._rotation = None

    def observe(self, e_noisy, e_clean, generator=None) -> None:
        self.kernel.observe(e_noisy, e_clean, generator)
        d = self.n_components
        z = torch.randn(
            (d, d), generator=generator, device=e_noisy.device, dtype=e_noisy.dtype
        )
        q, r = torch.linalg.qr(z)
        q = q * torch.sign(torch.diagonal(r))  # Haar-distributed
        self._rotation = q[:, : min(d, self.max_slices)]

    def forward(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        if self._rotation is None:  # scoring outside training: the identity frame
            eye = torch.eye(self.n_components, device=y.device, dtype=y.dtype)
            self._rotation = eye[:, : min(self.n_components, self.max_slices)]
        q = self._rotation
        ys = (y @ q).T.unsqueeze(-1)  # (slices, N, 1)
        es = (e @ q).T.unsqueeze(-1)
        scale = self.n_components / q.shape[1]
        return scale * self.kernel(ys, es)

    def bound(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        # The exact Gaussian and Student kernels have a fused bound of the same
        # value and gradient (see bounds); other kernels go through scores.
        kind = type(self.kernel)
        gaussian = isinstance(getattr(self.kernel, "channel", None), GaussianChannel)
        if not gaussian or kind not in (AnalyticCritic, StudentCritic):
            return infonce(self(y, e))
        if self._rotation is None:
            return infonce(self(y, e))  # sets the identity frame
        q = self._rotation
        ys, es = (y @ q).T, (e @ q).T  # (slices, N)
        scale = self.n_components / q.shape[1]
        p = self.kernel.channel.p
        if kind is StudentCritic:
            return sliced_student_infonce(ys, es, p, self.kernel.dof, scale)
        return sliced_gaussian_infonce(ys, es, p, scale)


#: ``critic=`` names and their classes. A new critic is a :class:`Critic`
#: subclass registered here.
CRITICS: dict[str, type[Critic]] = {
    "gaussian": AnalyticCritic,
    "gaussian-adaptive": AdaptiveGaussianCritic,
    "student": StudentCritic,
    "separable": SeparableCritic,
    "dense": DenseCritic,
}
#: Critics that ``objective="sliced"`` can apply slice by slice.
SLICEABLE = ("gaussian", "student")
