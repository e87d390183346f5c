"""The training loop: batching, optimizer, early stopping, callbacks, progress, history.

Knows nothing about scikit-learn. Data arrive as tensors already on the training
device and stay there for the whole fit: each step gathers a batch by index, so
there is no per-batch host-to-device copy and no Python work per sample.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from ._augment import neighbor_partners
from ._objective import Channel, infonce

__all__ = ["TrainConfig", "TrainResult", "train", "estimate_mi", "calibrate_norm"]

logger = logging.getLogger(__name__)

Callback = Callable[[int, dict], bool]


@dataclass
class TrainConfig:
    batch_size: int
    max_epochs: int
    learning_rate: float
    learning_rate_schedule: str = "constant"
    early_stopping: bool = False
    n_iter_no_change: int = 10
    tol: float = 1e-3
    verbose: bool = False
    callbacks: Sequence[Callback] = ()


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    n_iter: int = 0
    interrupted: bool = False
    stopped_by: str = "max_epochs"


def _pair_mi(
    encoder: nn.Module,
    critic: nn.Module,
    channel: Channel,
    augment,
    xb: torch.Tensor,
    generator: torch.Generator,
    partner: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE estimate on one batch: two views, noise on one branch only.

    The second view is made from ``partner`` rows (a neighbor of each row) when
    given, from ``xb`` itself otherwise; the channel noise goes on ``xb``'s view.
    """
    n = xb.shape[0]
    other = xb if partner is None else partner
    views = torch.cat([augment(xb, generator), augment(other, generator)])
    e = encoder(views)
    if getattr(critic, "adaptive", False):
        critic.observe(e[:n], e[n:])
    y = channel(e[:n], generator)
    return infonce(critic(y, e[n:]))


@torch.no_grad()
def estimate_mi(
    encoder: nn.Module,
    critic: nn.Module,
    channel: Channel,
    augment,
    X: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    partners: torch.Tensor | None = None,
) -> float:
    """Mean InfoNCE estimate (nats) over full batches of ``X`` in eval mode.

    ``partners`` (same shape as ``X``) holds each row's second-view source.
    """
    was_training = encoder.training, critic.training
    encoder.eval()
    critic.eval()
    n = X.shape[0]
    bs = min(batch_size, n)
    total = torch.zeros((), device=X.device)
    n_batches = max(n // bs, 1)
    for k in range(n_batches):
        rows = slice(k * bs, (k + 1) * bs)
        partner = None if partners is None else partners[rows]
        total += _pair_mi(
            encoder, critic, channel, augment, X[rows], generator, partner
        )
    encoder.train(was_training[0])
    critic.train(was_training[1])
    return float(total) / n_batches


@torch.no_grad()
def calibrate_norm(encoder: nn.Module, X: torch.Tensor, batch_size: int) -> None:
    """Replace running BatchNorm statistics by statistics of the whole of ``X``.

    Running averages taken while the weights moved lag behind the final encoder,
    which shifts latents between training (batch statistics) and inference
    (running statistics). Hidden BatchNorm layers get the cumulative average of
    batch statistics over one pass; the final normalization layer (if it is a
    BatchNorm) gets the exact mean and population variance of its inputs, so
    ``transform(X_train)`` has zero mean and unit variance per component.
    """
    norm = getattr(encoder, "norm", None)
    hidden = [
        m
        for m in encoder.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m is not norm
    ]
    n = X.shape[0]
    bs = max(min(batch_size, n), 2)
    if hidden:  # the train-mode pass is needed only for hidden BatchNorm layers
        saved = [(m, m.momentum) for m in hidden]
        for m in hidden:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average
        encoder.train()
        for k in range(0, n, bs):
            xb = X[k : k + bs]
            if xb.shape[0] > 1:
                encoder(xb)
        for m, momentum in saved:
            m.momentum = momentum
    encoder.eval()
    if isinstance(norm, nn.BatchNorm1d):
        h = torch.cat([encoder.pre_norm(X[k : k + bs]) for k in range(0, n, bs)])
        norm.running_mean.copy_(h.mean(0))
        # BatchNorm divides by sqrt(running_var + eps): subtract eps so that the
        # training latents come out with exactly unit variance.
        norm.running_var.copy_((h.var(0, unbiased=False) - norm.eps).clamp_min(0.0))


def train(
    encoder: nn.Module,
    critic: nn.Module,
    channel: Channel,
    augment,
    X: torch.Tensor,
    X_val: torch.Tensor | None,
    config: TrainConfig,
    generator: torch.Generator,
    val_seed: int = 0,
    neighbors: torch.Tensor | None = None,
    val_partners: torch.Tensor | None = None,
) -> TrainResult:
    """Maximize the InfoNCE bound through the noisy channel. Modifies modules in place.

    ``neighbors`` (``(n, k)`` row indices into ``X``) makes the second view of each
    row one of its ``k`` neighbors, drawn afresh every step; ``val_partners`` are
    the fixed second-view sources of the ``X_val`` rows.

    Raises ``FloatingPointError`` when the loss becomes non-finite. A
    ``KeyboardInterrupt`` ends training early and is reported in the result.
    """
    params = [p for m in (encoder, critic) for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.learning_rate)
    n = X.shape[0]
    bs = min(config.batch_size, n)
    n_batches = max(n // bs, 1)
    # "cosine": anneal from learning_rate to 0 over max_epochs, set per step.
    total_steps = config.max_epochs * n_batches
    cosine = config.learning_rate_schedule == "cosine"
    result = TrainResult()
    best_val, best_state, since_best = -math.inf, None, 0
    val_generator = torch.Generator(device=X.device)
    # On the CPU a finiteness check per step is free; on an accelerator it would
    # force a sync every step, so there the check runs once per epoch.
    check_each_step = X.device.type == "cpu"

    bar = tqdm(
        range(config.max_epochs), disable=not config.verbose, desc="fit", unit="epoch"
    )
    try:
        for epoch in bar:
            t0 = time.perf_counter()
            encoder.train()
            critic.train()
            order = torch.randperm(n, generator=generator, device=X.device)
            total = torch.zeros((), device=X.device)
            for k in range(n_batches):
                if cosine:
                    done = (epoch * n_batches + k) / total_steps
                    lr = 0.5 * config.learning_rate * (1.0 + math.cos(math.pi * done))
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                rows = order[k * bs : (k + 1) * bs]
                partner = None
                if neighbors is not None:
                    partner = neighbor_partners(X, neighbors, rows, generator)
                mi = _pair_mi(
                    encoder, critic, channel, augment, X[rows], generator, partner
                )
                if check_each_step and not torch.isfinite(mi):
                    break  # reported below, before a poisoned step is taken
                optimizer.zero_grad(set_to_none=True)
                (-mi).backward()
                optimizer.step()
                total += mi.detach()
            mi_epoch = float(total) / n_batches
            if not (math.isfinite(mi_epoch) and math.isfinite(float(mi.detach()))):
                raise FloatingPointError(
                    f"the InfoNCE loss became non-finite at epoch {epoch + 1}. Likely "
                    "causes: a learning_rate too high for this data, or a noise_level "
                    "so small that the critic's scores overflow (the analytic critic "
                    "scales as 1/noise^2); also check the input for extreme values."
                )
            logs = {
                "epoch": epoch + 1,
                "loss": -mi_epoch,
                "mi": mi_epoch,
                "learning_rate": optimizer.param_groups[0]["lr"],
            }
            if X_val is not None:
                val_generator.manual_seed(val_seed)
                logs["val_mi"] = estimate_mi(
                    encoder,
                    critic,
                    channel,
                    augment,
                    X_val,
                    bs,
                    val_generator,
                    val_partners,
                )
            logs["time"] = time.perf_counter() - t0
            result.history.append(logs)
            result.n_iter = epoch + 1
            bar.set_postfix(
                {
                    k: f"{v:.3f}"
                    for k, v in logs.items()
                    if k in ("loss", "mi", "val_mi")
                }
            )
            logger.debug("epoch %d: %s", epoch + 1, logs)

            if config.early_stopping and X_val is not None:
                if logs["val_mi"] > best_val + config.tol:
                    best_val, since_best = logs["val_mi"], 0
                    best_state = _snapshot(encoder, critic)
                else:
                    since_best += 1
                if since_best >= config.n_iter_no_change:
                    result.stopped_by = "early_stopping"
                    break
            # Every callback runs (no short-circuit); each gets its own copy of the
            # logs plus the modules under training, to inspect or snapshot them.
            extra = {"encoder": encoder, "critic": critic}
            stops = [bool(cb(epoch + 1, {**logs, **extra})) for cb in config.callbacks]
            if any(stops):
                result.stopped_by = "callback"
                break
    except KeyboardInterrupt:
        result.interrupted = True
        result.stopped_by = "interrupt"
    finally:
        bar.close()
    if best_state is not None:
        encoder.load_state_dict(best_state[0])
        critic.load_state_dict(best_state[1])
    return result


def _snapshot(encoder: nn.Module, critic: nn.Module):
    return (
        copy.deepcopy(encoder.state_dict()),
        copy.deepcopy(critic.state_dict()),
    )
