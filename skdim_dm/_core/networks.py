"""Encoders, and the networks of a fit built from plain hyper-parameters.

Small ``nn.Module``s defined bottom-up. None of them knows about the training loop.
:func:`network_params` is the one place that reads the estimator's parameters for
the networks and :func:`build_networks` the one place that turns them into modules
(the encoder, the critic its objective trains, the channel); ``fit``,
``partial_fit`` and ``load`` call both. The critics are in
:mod:`~skdim_dm._core.critics`, the objectives in :mod:`~skdim_dm._core.objectives`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import Any, NamedTuple

import torch
from torch import nn

from .bases import Base, get_base
from .channels import Channel, Normalization
from .critics import CRITICS, Critic
from .objectives import Objective, get_objective

__all__ = [
    "mlp",
    "ConvNet",
    "Encoder",
    "Networks",
    "build_networks",
    "conv_input_shape",
    "network_params",
]

#: BatchNorm layers whose running statistics ``Encoder.calibrate`` recomputes.
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


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
    """The authors' small MNIST ConvNet.

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

    def __init__(
        self, backbone: nn.Module, norm: Normalization, head: nn.Module | None
    ):
        super().__init__()
        self.backbone = backbone
        self.head = head if head is not None else nn.Identity()
        self.norm = norm

    def pre_norm(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.pre_norm(x))

    @torch.no_grad()
    def calibrate(self, X: torch.Tensor, batch_size: int, shard=None) -> None:
        """Set inference statistics from the whole of ``X``; leaves eval mode.

        Running averages taken while the weights moved lag behind the final
        encoder, which shifts latents between training (batch statistics) and
        inference (running statistics). Hidden BatchNorm layers get the cumulative
        average of batch statistics over one pass; the normalization layer gets
        the exact statistics of its inputs (:meth:`Normalization.calibrate`).
        With a data-parallel ``shard``, each process passes its share of the rows
        and the statistics are combined across processes.
        """
        hidden = [
            m
            for m in self.modules()
            if isinstance(m, _BATCH_NORMS) and m is not self.norm
        ]
        n = X.shape[0]
        bs = max(min(batch_size, n), 2)
        lo, hi = (0, n) if shard is None else shard.bounds(n)
        if hidden:  # the train-mode pass is needed only for hidden BatchNorm layers
            saved = [(m, m.momentum) for m in hidden]
            for m in hidden:
                m.reset_running_stats()
                m.momentum = None  # cumulative moving average
            self.train()
            for k in range(lo, hi, bs):
                xb = X[k : min(k + bs, hi)]
                if xb.shape[0] > 1:
                    self(xb)
            for m, momentum in saved:
                m.momentum = momentum
            if shard is not None:
                shard.average_running_stats(hidden)
        self.eval()
        if self.norm.needs_statistics:
            h = torch.cat(
                [self.pre_norm(X[k : min(k + bs, hi)]) for k in range(lo, hi, bs)]
            )
            if shard is not None:
                h = shard.gather_rows(h, n)
            self.norm.calibrate(h)


def conv_input_shape(input_shape, n_features: int) -> tuple[int, int, int]:
    """``(channels, height, width)`` of the ConvNet's input; checked against
    ``n_features``. ``None`` means one square channel."""
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 3:
            raise ValueError(
                f"input_shape must be (channels, height, width), got {shape}"
            )
    else:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"encoder='conv' needs input_shape: {n_features} features is not a "
                "square image"
            )
        shape = (1, side, side)
    if math.prod(shape) != n_features:
        raise ValueError(
            f"input_shape {shape} holds {math.prod(shape)} values "
            f"but X has {n_features} features"
        )
    return shape


def _backbone_width(backbone: nn.Module, n_features: int) -> int:
    was = backbone.training
    backbone.eval()
    with torch.no_grad():
        out = backbone(torch.zeros(2, n_features))
    backbone.train(was)
    if out.ndim != 2 or out.shape[0] != 2:
        raise ValueError(
            "a custom encoder must map (n_samples, n_features) to "
            f"(n_samples, width); it returned shape {tuple(out.shape)}"
        )
    return int(out.shape[1])


class Networks(NamedTuple):
    """What :func:`build_networks` returns."""

    encoder: Encoder
    critic: Critic
    channel: Channel


def _initialize(module: nn.Module, generator: torch.Generator) -> None:
    """Set the parameters and buffers of a freshly materialized ``module`` as
    torch's default initializers would, drawing only from ``generator``.

    Layers are visited in registration order, which is construction order for the
    modules built here, so the weights equal those of a default construction after
    ``torch.manual_seed(seed)``, without touching torch's global generator (which
    threads share: fits in two threads used to change each other's weights).
    """
    for m in module.modules():
        if isinstance(m, _DEFAULT_INIT):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                fan_in = m.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif isinstance(m, (*_BATCH_NORMS, Normalization)):
            m.reset_parameters()  # ones, zeros and fresh statistics: nothing random
        elif any(True for _ in m.parameters(recurse=False)) or any(
            True for _ in m.buffers(recurse=False)
        ):
            raise TypeError(f"no deterministic initializer for {type(m).__name__}")


#: Layers whose default initialization ``_initialize`` reproduces.
_DEFAULT_INIT = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def build_networks(
    n_features: int,
    n_components: int,
    *,
    base: Base | str = "gaussian",
    noise_level: float,
    encoder: str | nn.Module = "mlp",
    hidden_layer_sizes: Sequence[int] = (256, 256),
    input_shape: Sequence[int] | None = None,
    critic: str = "gaussian",
    objective: str | Objective = "joint",
    whiten: bool = False,
    seed: int = 0,
    device: str = "cpu",
) -> Networks:
    """The encoder, critic and channel of a :class:`NoiseInjectedInfoMax`.

    Parameters mean what the estimator's parameters of the same names mean;
    ``base`` is the base distribution the latents are trained to match
    (``"gaussian"`` or ``"uniform"``). A module given as ``encoder`` is
    deep-copied (its weights are the starting point) and a linear head is added
    when its output width differs from ``n_components``.

    Parameters
    ----------
    n_features, n_components : int
        Input width and latent dimension.
    base : {"gaussian", "uniform"} or Base, default="gaussian"
    noise_level : float
        The channel's noise level (see :func:`noise_level_to_capacity`).
    encoder : {"mlp", "conv"} or torch.nn.Module, default="mlp"
    hidden_layer_sizes : sequence of int, default=(256, 256)
    input_shape : (channels, height, width) or None, default=None
    critic : str, default="gaussian"
        A name from ``CRITICS``.
    objective : str or Objective, default="joint"
        A name from ``OBJECTIVES`` (:mod:`~skdim_dm._core.objectives`): it
        checks the critic and builds the critic module it trains (``"sliced"``
        applies the critic, one of ``SLICEABLE``, to random one-dimensional
        slices of the latents).
    whiten : bool, default=False
        Gaussian base only: whiten the encoder output (identity covariance)
        instead of standardizing each component.
    seed : int, default=0
        Seeds the initial weights through a local ``torch.Generator``; torch's
        global random state is neither read nor changed, so fits in several
        threads do not interfere.
    device : {"cpu", "meta"}, default="cpu"
        ``"meta"`` builds the modules without allocating or initializing
        anything, to check shapes (our layers only; a module ``encoder`` is
        copied as it is).

    Returns
    -------
    Networks
        ``(encoder, critic, channel)``, in float32.

    Raises
    ------
    ValueError
        For invalid sizes, shapes or names, before anything is allocated.

    Examples
    --------
    >>> from skdim_dm import build_networks
    >>> nets = build_networks(64, 2, noise_level=0.5, hidden_layer_sizes=(32,))
    >>> nets.encoder(torch.zeros(3, 64)).shape
    torch.Size([3, 2])
    """
    base = get_base(base)
    n_features = _positive_int(n_features, "n_features")
    d = _positive_int(n_components, "n_components")
    sizes = tuple(
        _positive_int(h, "hidden_layer_sizes entries") for h in hidden_layer_sizes
    )
    if critic not in CRITICS:
        raise ValueError(f"unknown critic {critic!r}; choose from {sorted(CRITICS)}")
    objective = get_objective(objective)
    objective.check_critic(critic)
    if device not in ("cpu", "meta"):
        raise ValueError(f"device must be 'cpu' or 'meta', got {device!r}")
    channel = base.channel(noise_level)
    custom = isinstance(encoder, nn.Module)
    if custom:
        backbone = copy.deepcopy(encoder).cpu().float()
        width = _backbone_width(backbone, n_features)
    elif encoder == "conv":
        shape = conv_input_shape(input_shape, n_features)
    elif encoder != "mlp":
        raise ValueError(
            f"encoder must be 'mlp', 'conv' or a torch.nn.Module, got {encoder!r}"
        )
    with torch.device("meta"):  # shapes only: no memory, no random draws
        head = None
        if custom:
            if width != d:
                head = nn.Linear(width, d)
        elif encoder == "conv":
            backbone = ConvNet(shape, d)
        else:
            backbone = mlp(n_features, sizes, d)
        norm = base.normalization(d, whiten=whiten)
        critic_module = objective.make_critic(critic, d, channel)
    fresh = [
        m
        for m in (None if custom else backbone, head, norm, critic_module)
        if m is not None
    ]
    if device == "cpu":
        generator = torch.Generator().manual_seed(int(seed))
        for m in fresh:  # in the order a default construction draws them
            m.to_empty(device="cpu")
            _initialize(m, generator)
    return Networks(Encoder(backbone, norm, head), critic_module, channel)


def network_params(
    params: Mapping[str, Any],
    settings: Mapping[str, Any],
    n_features: int,
    base: str,
    noise_level: float,
) -> dict:
    """The keyword arguments of :func:`build_networks` (all but ``seed`` and
    ``device``) for an estimator's parameters.

    Parameters
    ----------
    params : mapping
        The estimator's ``get_params(deep=False)``: ``n_components``,
        ``encoder``, ``hidden_layer_sizes``, ``input_shape`` and ``critic`` are
        read.
    settings : mapping
        The effective settings, ``"auto"`` resolved
        (:func:`~skdim_dm._settings.resolve_settings`): ``objective`` and
        ``whiten`` are read.
    n_features : int
        Input width.
    base : str
        Name of the base distribution (``prior_.base.name``).
    noise_level : float
        The channel's noise level (``noise_level_``).

    Returns
    -------
    dict
    """
    return {
        "n_features": n_features,
        "n_components": params["n_components"],
        "base": base,
        "noise_level": noise_level,
        "encoder": params["encoder"],
        "hidden_layer_sizes": tuple(int(h) for h in params["hidden_layer_sizes"]),
        "input_shape": None
        if params["input_shape"] is None
        else tuple(int(s) for s in params["input_shape"]),
        "critic": params["critic"],
        "objective": settings["objective"],
        "whiten": settings["whiten"],
    }


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)
