"""The training loop: batching, optimizer, early stopping, callbacks, progress, history.

Knows nothing about scikit-learn. Data arrive as tensors already on the training
device and stay there for the whole fit: each step gathers a batch by index, so
there is no per-batch host-to-device copy and no Python work per sample.

:func:`train` runs epochs (:func:`_epoch`) of steps (:func:`_forward` and
:func:`_backward`); each epoch's logs are then checked for a reason to stop
(:func:`_stop_reason`: early stopping, a callback, the time budget). The loss of
a batch is the objective's (:class:`~skdim_dm._core.objectives.Loss`), in one
process or many.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .channels import Channel
from .critics import Critic
from .distributed import Shard
from .objectives import Loss, Objective
from .views import Views

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "batch_latents",
    "estimate_mi",
    "final_mi",
    "optimizer_arrays",
]

logger = logging.getLogger(__name__)

Callback = Callable[[int, dict], bool]

#: Batches used for the final MI estimate.
MI_EVAL_BATCHES = 20


@dataclass
class TrainConfig:
    batch_size: int
    max_epochs: int
    learning_rate: float
    learning_rate_schedule: str = "constant"
    #: When set, train exactly this many steps (max_epochs is then ignored).
    max_steps: int | None = None
    early_stopping: bool = False
    #: Wall-clock budget of the loop in seconds (None: none). One process
    #: checks it after every step and anneals a cosine schedule by the larger of
    #: the step and time fractions; a data-parallel fit checks it at epoch ends
    #: (all ranks agree) and anneals by steps only, so that ranks stay equal.
    max_time: float | None = None
    n_iter_no_change: int = 10
    tol: float = 1e-3
    verbose: bool = False
    callbacks: Sequence[Callback] = ()
    #: Adam's state to resume from, as :func:`optimizer_arrays` gives it
    #: (``partial_fit``); ``None``: a fresh optimizer.
    optimizer_state: tuple | None = None
    #: The objective, a name in :data:`~skdim_dm._core.objectives.OBJECTIVES`
    #: (the critic must be the one it builds).
    objective: str = "joint"
    #: Weights of the loss terms by name
    #: (:data:`~skdim_dm._core.objectives.LOSS_TERMS`: ``"match"``,
    #: ``"radial"``), each added to minus the bound; absent or 0: off.
    loss_weights: Mapping[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    n_iter: int = 0
    n_steps: int = 0
    interrupted: bool = False
    stopped_by: str = "max_epochs"
    #: Adam's final state, to resume from (``partial_fit``).
    optimizer_state: dict | None = None


def batch_latents(
    encoder: nn.Module,
    view_a: torch.Tensor,
    view_b: torch.Tensor,
    shard: Shard | None = None,
    n_total: int | None = None,
) -> torch.Tensor:
    """The clean latents of a batch's two views, ``view_a``'s rows first. With
    a ``shard`` the views are this rank's share of a global batch of ``n_total``
    pairs and the latents are those of the whole global batch
    (:meth:`Shard.latents`)."""
    if shard is not None:
        return shard.latents(encoder, view_a, view_b, n_total)
    return encoder(torch.cat([view_a, view_b]))


@torch.no_grad()
def estimate_mi(
    encoder: nn.Module,
    critic: Critic,
    channel: Channel,
    views: Views,
    sources: tuple[torch.Tensor, torch.Tensor],
    batch_size: int,
    generator: torch.Generator,
    shard: Shard | None = None,
    local_gen: torch.Generator | None = None,
    *,
    objective: str | Objective,
) -> float:
    """Mean bound (nats) of ``objective`` over full batches of ``sources`` in
    eval mode.

    ``sources`` are the two views' source rows (see :meth:`Views.sources`); the
    views' input channel is applied batch by batch. With a ``shard`` each rank
    makes the views of its share of every batch with ``local_gen``.
    """
    loss = Loss(objective)
    was_training = encoder.training, critic.training
    encoder.eval()
    critic.eval()
    a, b = sources
    n = a.shape[0]
    bs = min(batch_size, n)
    total = torch.zeros((), device=a.device)
    n_batches = max(n // bs, 1)
    for k in range(n_batches):
        rows = slice(k * bs, (k + 1) * bs)
        if shard is not None:
            lo, hi = shard.bounds(bs)
            rows = slice(k * bs + lo, k * bs + hi)
            va = views.view(a[rows], local_gen)
            vb = views.view(b[rows], local_gen)
            latents = batch_latents(encoder, va, vb, shard, bs)
        else:
            va = views.view(a[rows], generator)
            vb = views.view(b[rows], generator)
            latents = batch_latents(encoder, va, vb)
        total += loss.bound(critic, channel, latents, generator)
    encoder.train(was_training[0])
    critic.train(was_training[1])
    return float(total) / n_batches


def final_mi(
    encoder: nn.Module,
    critic: Critic,
    channel: Channel,
    views: Views,
    batch_size: int,
    generator: torch.Generator,
    max_batches: int = MI_EVAL_BATCHES,
    shard: Shard | None = None,
    local_gen: torch.Generator | None = None,
    *,
    objective: str | Objective,
) -> float:
    """The bound of ``objective`` for the trained model on up to
    ``max_batches`` batches of random training rows (the first rows of sorted
    data would bias it: digits sorted by label gave 0.88 against 1.72 nats)."""
    n = views.n_samples
    rows = torch.randperm(n, generator=generator, device=views.X.device)
    rows = rows[: min(n, max_batches * batch_size)]
    sources = views.sources(rows, generator)
    return estimate_mi(
        encoder,
        critic,
        channel,
        views,
        sources,
        batch_size,
        generator,
        *(() if shard is None else (shard, local_gen)),
        objective=objective,
    )


class _Clock:
    """The wall-clock budget (``max_time``). One process reads the clock after
    every step; the ranks of a data-parallel fit would each read their own, so
    there it is read at epoch ends and agreed on."""

    def __init__(self, max_time: float | None, shard: Shard | None):
        self.max_time = max_time
        self.shard = shard
        self.deadline = None if max_time is None else time.perf_counter() + max_time
        self.per_step = self.deadline is not None and shard is None

    def anneal(self, done: float) -> float:
        """How far along a cosine schedule is: the fraction of steps ``done``,
        or of the time budget when that is further along."""
        if not self.per_step:
            return done
        left = (self.deadline - time.perf_counter()) / self.max_time
        return min(max(done, 1.0 - left), 1.0)

    def step_over(self) -> bool:
        return self.per_step and time.perf_counter() >= self.deadline

    def epoch_over(self, step_over: bool) -> bool:
        """Whether the budget is spent at an epoch's end (on every rank alike)."""
        if self.deadline is not None and self.shard is not None:
            return self.shard.any(time.perf_counter() >= self.deadline)
        return step_over


class _EarlyStopping:
    """Stop when the validation estimate has not improved by ``tol`` for
    ``patience`` epochs; the best epoch's weights are restored at the end."""

    def __init__(self, patience: int, tol: float):
        self.patience, self.tol = patience, tol
        self.best, self.state, self.since_best = -math.inf, None, 0

    def update(self, val_mi: float, encoder: nn.Module, critic: nn.Module) -> bool:
        """Record an epoch's estimate; True when training should stop."""
        if val_mi > self.best + self.tol:
            self.best, self.since_best = val_mi, 0
            self.state = (
                copy.deepcopy(encoder.state_dict()),
                copy.deepcopy(critic.state_dict()),
            )
        else:
            self.since_best += 1
        return self.since_best >= self.patience

    def restore(self, encoder: nn.Module, critic: nn.Module) -> None:
        if self.state is not None:
            encoder.load_state_dict(self.state[0])
            critic.load_state_dict(self.state[1])


@dataclass
class _Run:
    """What the epochs and steps of one training run read and update."""

    encoder: nn.Module
    critic: Critic
    channel: Channel
    views: Views
    config: TrainConfig
    loss: Loss
    optimizer: torch.optim.Adam
    #: Draws the batches (the same on every rank) and what one process draws.
    generator: torch.Generator
    shard: Shard | None
    #: This rank's generator for the views of its share (data-parallel).
    local_gen: torch.Generator | None
    val_seed: int
    val_sources: tuple | None
    batch_size: int
    n_batches: int
    total_steps: int
    max_epochs: int
    clock: _Clock
    result: TrainResult = field(default_factory=TrainResult)


def train(
    encoder: nn.Module,
    critic: Critic,
    channel: Channel,
    views: Views,
    config: TrainConfig,
    generator: torch.Generator,
    val_seed: int = 0,
    shard: Shard | None = None,
    local_seed: int = 0,
) -> TrainResult:
    """Maximize the objective's bound through the noisy channel (minus the
    weighted loss terms). Modifies modules in place.

    ``views`` is fitted: it holds the training rows (and the validation rows, whose
    estimate is logged as ``val_mi`` after every epoch).

    With a ``shard`` (data-parallel): ``generator`` is the same on every rank and
    draws the batches (and what one process draws after the encoder); each rank
    makes the views of its share of each batch with a generator of its own (from
    ``local_seed`` and the rank), and the gradients are summed over ranks before
    each step (see :mod:`skdim_dm._core.distributed`).

    Raises ``FloatingPointError`` when the loss becomes non-finite. A
    ``KeyboardInterrupt`` ends training early and is reported in the result.
    """
    run = _start(
        encoder, critic, channel, views, config, generator, val_seed, shard, local_seed
    )
    result = run.result
    stopper = _EarlyStopping(config.n_iter_no_change, config.tol)
    attached = [] if shard is None else shard.attach(encoder)
    bar = tqdm(
        range(run.max_epochs), disable=not config.verbose, desc="fit", unit="epoch"
    )
    try:
        for epoch in bar:
            logs, out_of_time = _epoch(run, epoch)
            result.history.append(logs)
            result.n_iter = epoch + 1
            shown = ("loss", "mi", "val_mi")
            bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if k in shown})
            logger.debug("epoch %d: %s", epoch + 1, logs)
            reason = _stop_reason(run, stopper, logs, out_of_time)
            if reason is not None:
                result.stopped_by = reason
                break
    except KeyboardInterrupt:
        result.interrupted = True
        result.stopped_by = "interrupt"
    finally:
        bar.close()
        if shard is not None:
            shard.detach(attached)
    stopper.restore(encoder, critic)
    result.optimizer_state = run.optimizer.state_dict()
    return result


def _start(
    encoder, critic, channel, views, config, generator, val_seed, shard, local_seed
) -> _Run:
    """The optimizer (resumed from ``config.optimizer_state``), the loss, the
    step budget (``max_steps`` when set, else ``max_epochs`` full passes) and
    the time budget."""
    params = [p for m in (encoder, critic) for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.learning_rate)
    if config.optimizer_state is not None:
        optimizer.load_state_dict(_adam_state(optimizer, config.optimizer_state))
    n = views.X.shape[0]
    bs = min(config.batch_size, n)
    n_batches = max(n // bs, 1)
    if config.max_steps is None:
        max_epochs, total_steps = config.max_epochs, config.max_epochs * n_batches
    else:
        total_steps = config.max_steps
        max_epochs = -(-total_steps // n_batches)
    return _Run(
        encoder=encoder,
        critic=critic,
        channel=channel,
        views=views,
        config=config,
        loss=Loss(config.objective, config.loss_weights),
        optimizer=optimizer,
        generator=generator,
        shard=shard,
        local_gen=None
        if shard is None
        else shard.generator(local_seed, views.X.device),
        val_seed=val_seed,
        val_sources=views.validation_sources(),
        batch_size=bs,
        n_batches=n_batches,
        total_steps=total_steps,
        max_epochs=max_epochs,
        clock=_Clock(config.max_time, shard),
    )


def _epoch(run: _Run, epoch: int) -> tuple[dict, bool]:
    """One pass over the training rows in a fresh random order; returns the
    epoch's logs and whether the time budget ran out during it."""
    t0 = time.perf_counter()
    run.encoder.train()
    run.critic.train()
    X, bs = run.views.X, run.batch_size
    order = torch.randperm(X.shape[0], generator=run.generator, device=X.device)
    mi_total = torch.zeros((), device=X.device)
    term_totals = {t.name: torch.zeros((), device=X.device) for t, _ in run.loss.terms}
    # On the CPU a finiteness check per step is free; on an accelerator it would
    # force a sync every step, so there the check runs once per epoch.
    check_each_step = X.device.type == "cpu"
    cosine = run.config.learning_rate_schedule == "cosine"
    taken, out_of_time = 0, False
    for k in range(min(run.n_batches, run.total_steps - run.result.n_steps)):
        if cosine:  # anneal from learning_rate to 0 over all steps
            _set_learning_rate(run, (epoch * run.n_batches + k) / run.total_steps)
        loss, mi, values = _forward(run, order[k * bs : (k + 1) * bs])
        for name, value in values.items():
            term_totals[name] += value.detach()
        if check_each_step and not torch.isfinite(loss):
            break  # reported below, before a poisoned step is taken
        _backward(run, loss)
        taken += 1
        mi_total += mi.detach()
        if run.clock.step_over():
            out_of_time = True
            break
    logs = _epoch_logs(run, epoch, loss, mi_total, term_totals, max(taken, 1))
    if run.val_sources is not None:
        logs["val_mi"] = _validation_mi(run)
    logs["time"] = time.perf_counter() - t0
    return logs, out_of_time


def _set_learning_rate(run: _Run, done: float) -> None:
    done = run.clock.anneal(done)
    lr = 0.5 * run.config.learning_rate * (1.0 + math.cos(math.pi * done))
    for group in run.optimizer.param_groups:
        group["lr"] = lr


def _forward(run: _Run, rows: torch.Tensor):
    """``(loss, bound, terms)`` of the batch ``rows`` (global row numbers; a
    rank makes the views of its share)."""
    if run.shard is None:
        view_a, view_b = run.views.sample(rows, run.generator)
        latents = batch_latents(run.encoder, view_a, view_b)
    else:
        view_a, view_b = run.views.sample(run.shard.local(rows), run.local_gen)
        latents = batch_latents(run.encoder, view_a, view_b, run.shard, len(rows))
    return run.loss(run.critic, run.channel, latents, run.generator)


def _backward(run: _Run, loss: torch.Tensor) -> None:
    """One optimizer step on ``loss`` (gradients summed over ranks first)."""
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if run.shard is not None:
        run.shard.reduce_gradients(run.encoder, run.critic)
    run.optimizer.step()
    run.result.n_steps += 1


def _epoch_logs(run: _Run, epoch, loss, mi_total, term_totals, steps) -> dict:
    """The epoch's ``history_`` entry, bar validation and time;
    ``FloatingPointError`` when the loss became non-finite."""
    mi_epoch = float(mi_total) / steps
    if not (math.isfinite(mi_epoch) and math.isfinite(float(loss.detach()))):
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
        "learning_rate": run.optimizer.param_groups[0]["lr"],
    }
    for term, weight in run.loss.terms:
        value = float(term_totals[term.name]) / steps
        logs[term.name] = value
        logs["loss"] += weight * value
    return logs


def _validation_mi(run: _Run) -> float:
    """The validation estimate, from the same generator state every epoch."""
    X = run.views.X
    generator = torch.Generator(device=X.device).manual_seed(run.val_seed)
    extra = ()
    if run.shard is not None:
        extra = (run.shard, run.shard.generator(run.val_seed, X.device))
    return estimate_mi(
        run.encoder,
        run.critic,
        run.channel,
        run.views,
        run.val_sources,
        run.batch_size,
        generator,
        *extra,
        objective=run.loss.objective,
    )


def _stop_reason(run: _Run, stopper, logs: dict, out_of_time: bool) -> str | None:
    """Why training stops after this epoch, or None: early stopping, a
    callback, or the time budget."""
    if run.config.early_stopping and run.val_sources is not None:
        if stopper.update(logs["val_mi"], run.encoder, run.critic):
            return "early_stopping"
    # Every callback runs (no short-circuit); each gets its own copy of the
    # logs plus the modules under training, to inspect or snapshot them.
    extra = {"encoder": run.encoder, "critic": run.critic}
    callbacks = run.config.callbacks
    stops = [bool(cb(logs["epoch"], {**logs, **extra})) for cb in callbacks]
    if run.shard is not None and callbacks:
        stops = [run.shard.any(any(stops))]  # a stop on one rank stops all
    if any(stops):
        return "callback"
    if run.clock.epoch_over(out_of_time):
        logger.info("fit stopped at its max_time after %d steps", run.result.n_steps)
        return "max_time"
    return None


def optimizer_arrays(state: dict) -> tuple[np.ndarray, int, np.ndarray]:
    """Adam's ``state_dict()`` as plain arrays, to keep as fitted state:
    ``(moments, steps, index)``, the first and second moments of every parameter
    (in ``index`` order) in one float32 array and the step count."""
    entries = state["state"]
    index = sorted(entries)
    parts = [
        entries[i][name].detach().reshape(-1).float().cpu()
        for i in index
        for name in ("exp_avg", "exp_avg_sq")
    ]
    moments = torch.cat(parts).numpy() if parts else np.zeros(0, dtype=np.float32)
    steps = int(entries[index[0]]["step"]) if index else 0
    return moments, steps, np.asarray(index, dtype=np.int64)


def _adam_state(optimizer: torch.optim.Adam, arrays) -> dict:
    """Inverse of :func:`optimizer_arrays` for ``optimizer``'s parameters."""
    moments, steps, index = arrays
    params = [p for group in optimizer.param_groups for p in group["params"]]
    moments = np.asarray(moments, dtype=np.float32).reshape(-1)
    index = [int(i) for i in np.asarray(index).reshape(-1)]
    expected = sum(2 * params[i].numel() for i in index if 0 <= i < len(params))
    if any(not 0 <= i < len(params) for i in index) or expected != moments.size:
        raise ValueError(
            "the stored optimizer state does not fit the networks (a different "
            "architecture?); call fit to start over"
        )
    state, k = {}, 0
    for i in index:
        n = params[i].numel()
        exp_avg = torch.from_numpy(moments[k : k + n].copy()).view_as(params[i])
        exp_avg_sq = torch.from_numpy(moments[k + n : k + 2 * n].copy())
        state[i] = {
            "step": torch.tensor(float(steps)),
            "exp_avg": exp_avg,
            "exp_avg_sq": exp_avg_sq.view_as(params[i]),
        }
        k += 2 * n
    return {"state": state, "param_groups": optimizer.state_dict()["param_groups"]}
