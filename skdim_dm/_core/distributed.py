"""Data-parallel training over ``torch.distributed``: one process per device.

Pure torch. Every process (rank) calls ``fit`` with the same data and parameters,
as under ``torchrun``. A :class:`Shard` is what one rank knows of the others:

* each global batch (the same rows on every rank, drawn from the shared
  generator) is split into contiguous shares, one per rank, and each rank makes
  the views of its share with a generator of its own (per-rank input noise) and
  runs the encoder's backbone on them: the expensive part is shared out;
* the backbone outputs are gathered across ranks **with gradients**
  (:meth:`Shard.gather`), and every rank then runs the rest of the step on the
  whole global batch, as one process would: the normalization layer (so its
  statistics, batch-norm moments or whitening covariance, are those of the
  global batch), the adaptive critic's correlation, the sliced critic's
  rotation and the channel noise (drawn from the shared generator), the
  critic and the InfoNCE bound with all negatives;
* hidden ``BatchNorm`` layers of the backbone (the ConvNet's) take their batch
  statistics over all ranks, with the backward pass of a batch norm over all
  ranks (:class:`_GlobalBatchNorm`: torch's fused CPU kernels and one
  all-reduce each way; torch's ``SyncBatchNorm`` needs CUDA);
* the backbone's parameter gradients are summed over ranks (those of the
  parts run on the whole batch, already whole, are averaged).

Why that is the gradient of one process: every rank computes the same loss ``L``
from the same gathered tensor ``G``, so ``dL/dG`` is the same on every rank and
the gather's backward pass gives each rank its own rows of it, with no
communication (the widely copied ``GatherLayer`` went wrong by doing this when
each rank computed a *different*, local loss). An all-reduce's result feeds
rows that differ by rank, so its backward pass sums over ranks. Each rank's
parameter gradient is then the part of ``dL/dtheta`` that flows through its own
rows, and their sum is ``dL/dtheta`` (the parameters of the replicated part get
all of it on every rank): one process's gradient on the same global
batch, to float rounding (``tests/test_distributed.py`` checks it on asymmetric
data, in float64 to 1e-10). A step costs two collectives (the gather and the
gradients) plus two per hidden BatchNorm layer.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import types
import warnings

import numpy as np
import torch
from torch import nn

__all__ = ["Shard", "resolve_shard", "launched_distributed", "rank_generator"]

#: Set in the environment of a process that initialized the process group from
#: ``WORLD_SIZE``/``RANK``, so that processes it starts (joblib or dask workers,
#: which inherit the variables) do not try to join the group themselves.
_OWNER_ENV = "SKDIM_DM_DISTRIBUTED_PID"
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def launched_distributed() -> bool:
    """Whether this process is a rank of a multi-process launch: a process group
    of more than one process exists, or ``torchrun``'s variables say one should
    (``WORLD_SIZE`` > 1 with ``RANK`` set), and this process is not a worker that
    a rank started (a joblib or dask worker inherits those variables)."""
    import torch.distributed as dist

    if not dist.is_available():
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return False
    if world <= 1 or "RANK" not in os.environ:
        return False
    owner = os.environ.get(_OWNER_ENV)
    if owner is not None and owner != str(os.getpid()):
        return False
    return multiprocessing.parent_process() is None


def resolve_shard(distributed, device: torch.device) -> Shard | None:
    """The :class:`Shard` of this process for ``distributed=`` (``"auto"``,
    ``True`` or ``False``), or ``None`` for a single-process fit.

    ``"auto"`` trains data-parallel when :func:`launched_distributed`; ``True``
    requires it. When no process group exists yet, one is initialized from the
    environment (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``):
    NCCL for CUDA, gloo for the CPU. It is kept for later fits and destroyed at
    exit.
    """
    if distributed is False:
        return None
    if not launched_distributed():
        if distributed is True:
            raise ValueError(
                "distributed=True but this process is not part of a multi-process "
                "launch: start the script with torchrun --nproc_per_node K (or "
                "initialize a torch.distributed process group of more than one "
                "process) or use distributed='auto'"
            )
        return None
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
        if missing:
            raise ValueError(
                f"WORLD_SIZE={os.environ['WORLD_SIZE']} asks for a data-parallel fit "
                f"but {' and '.join(missing)} is not set: launch with torchrun, or "
                "pass distributed=False"
            )
        _check_launch_env()
        if device.type == "cuda":
            torch.cuda.set_device(local_device(device))
        dist.init_process_group(backend=backend, init_method="env://")
        os.environ[_OWNER_ENV] = str(os.getpid())
        # A group left alive at exit can abort the process as it shuts down
        # ("terminate called without an active exception", seen with gloo).
        atexit.register(_destroy_group)
    return Shard(device=local_device(device))


def _check_launch_env() -> None:
    """``ValueError`` for launch variables that cannot describe a process of the
    group: ``init_process_group`` would wait (for ever, or its long timeout) for
    peers that never come, e.g. ``RANK=5`` with ``WORLD_SIZE=2``."""
    values = {}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_PORT"):
        text = os.environ.get(name)
        if text is None:
            continue
        try:
            values[name] = int(text)
        except ValueError:
            raise ValueError(
                f"{name}={text!r} is not an integer: the launch variables of a "
                "data-parallel fit are inconsistent (launch with torchrun, or pass "
                "distributed=False)"
            ) from None
    world, rank = values["WORLD_SIZE"], values.get("RANK", -1)
    problems = []
    if not 0 <= rank < world:
        problems.append(f"RANK={rank} must be in [0, WORLD_SIZE={world})")
    if not 0 <= values.get("LOCAL_RANK", 0) < world:
        problems.append(f"LOCAL_RANK={values['LOCAL_RANK']} must be in [0, {world})")
    if not 0 < values.get("MASTER_PORT", 1) < 65536:
        problems.append(f"MASTER_PORT={values['MASTER_PORT']} is not a TCP port")
    if problems:
        raise ValueError(
            "the launch variables of this data-parallel fit are inconsistent: "
            + "; ".join(problems)
            + " (launch with torchrun, or pass distributed=False)"
        )


def _destroy_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """A CUDA device without an index means this rank's GPU (``LOCAL_RANK``)."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def rank_generator(seed: int, rank: int, device="cpu") -> torch.Generator:
    """The generator of ``rank`` for ``seed``: its views and channel noise."""
    state = np.random.SeedSequence(int(seed), spawn_key=(int(rank),))
    local_seed = int(state.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    return torch.Generator(device=device).manual_seed(local_seed)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; its backward sums the incoming gradients over ranks."""

    @staticmethod
    def forward(ctx, x, shard):
        ctx.shard = shard
        return shard.all_reduce_(x.detach().clone())

    @staticmethod
    def backward(ctx, grad):
        return ctx.shard.all_reduce_(grad.detach().clone()), None


class _Gather(torch.autograd.Function):
    """Rows of every rank concatenated in rank order, for a loss that every rank
    computes alike from them; backward: this rank's rows of the gradient, which
    is the same on every rank (see the module docstring)."""

    @staticmethod
    def forward(ctx, x, shard, n_total):
        ctx.rows = shard.bounds(n_total)
        return shard.gather_rows(x.detach(), n_total)

    @staticmethod
    def backward(ctx, grad):
        lo, hi = ctx.rows
        return grad[lo:hi], None, None


class Shard:
    """This process's share of a data-parallel fit (see the module docstring).

    Parameters
    ----------
    device : torch.device
        The training device of this rank.
    group : ProcessGroup or None
        The process group (``None``: the default, world group).
    """

    def __init__(self, device: torch.device, group=None):
        import torch.distributed as dist

        self._dist = dist
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        self.device = device
        # gloo moves CPU tensors; collectives on another device go through the CPU.
        self._via_cpu = dist.get_backend(group) == "gloo" and device.type != "cpu"

    def __deepcopy__(self, memo):  # a module copied while it trains keeps the group
        return self

    def __reduce__(self):
        raise TypeError("a Shard (a process group handle) cannot be pickled")

    # ----------------------------------------------------------- row shares
    def bounds(self, n: int, rank: int | None = None) -> tuple[int, int]:
        """Contiguous share ``[lo, hi)`` of ``n`` rows; shares differ by at most one."""
        r = self.rank if rank is None else rank
        return (n * r) // self.world_size, (n * (r + 1)) // self.world_size

    def local(self, rows):
        """This rank's share of a global batch of rows (same order everywhere)."""
        lo, hi = self.bounds(len(rows))
        return rows[lo:hi]

    def generator(self, seed: int, device=None) -> torch.Generator:
        """A generator for this rank only: seeded from ``seed`` and the rank."""
        return rank_generator(
            seed, self.rank, self.device if device is None else device
        )

    # ---------------------------------------------------------- collectives
    def all_reduce_(self, x: torch.Tensor) -> torch.Tensor:
        """Sum ``x`` over ranks in place (no gradient); returns it."""
        if self._via_cpu:
            y = x.cpu()
            self._dist.all_reduce(y, group=self.group)
            return x.copy_(y)
        self._dist.all_reduce(x, group=self.group)
        return x

    def all_reduce(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable sum of ``x`` over ranks (normalization statistics)."""
        return _AllReduceSum.apply(x, self)

    def gather(self, x: torch.Tensor, n_total: int) -> torch.Tensor:
        """Differentiable concatenation of every rank's rows (this rank holds the
        rows ``bounds(n_total)`` of the result), for a loss that every rank
        computes alike from the result."""
        return _Gather.apply(x, self, n_total)

    def gather_rows(self, x: torch.Tensor, n_total: int) -> torch.Tensor:
        """Every rank's share of ``n_total`` rows, concatenated (no gradient)."""
        sizes = [
            hi - lo for lo, hi in map(self._bounds_of(n_total), range(self.world_size))
        ]
        if x.shape[0] != sizes[self.rank]:
            raise RuntimeError(
                f"rank {self.rank} holds {x.shape[0]} rows, expected {sizes[self.rank]}"
            )
        width = max(sizes)
        src = x.cpu() if self._via_cpu else x
        pad = src.new_zeros((width, *src.shape[1:]))
        pad[: src.shape[0]] = src
        parts = [torch.empty_like(pad) for _ in range(self.world_size)]
        self._dist.all_gather(parts, pad.contiguous(), group=self.group)
        out = torch.cat([p[:s] for p, s in zip(parts, sizes)])
        return out.to(x.device) if self._via_cpu else out

    def _bounds_of(self, n):
        return lambda r: self.bounds(n, r)

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank."""
        t = torch.tensor([1.0 if flag else 0.0], device=self._comm_device)
        return bool(self.all_reduce_(t).item() > 0)

    @property
    def _comm_device(self):
        return torch.device("cpu") if self._via_cpu else self.device

    def all_gather_object(self, obj) -> list:
        out = [None] * self.world_size
        self._dist.all_gather_object(out, obj, group=self.group)
        return out

    def broadcast_object(self, obj, src: int = 0):
        box = [obj]
        self._dist.broadcast_object_list(box, src=src, group=self.group)
        return box[0]

    def agree(self, error: BaseException | None) -> None:
        """Raise on every rank when any rank failed (``error``): a check that
        fails on one rank only would otherwise leave the others waiting."""
        reports = self.all_gather_object(
            None if error is None else f"{type(error).__name__}: {error}"
        )
        if error is not None:
            raise error
        failed = [(r, m) for r, m in enumerate(reports) if m is not None]
        if failed:
            rank, message = failed[0]
            raise ValueError(f"rank {rank} of the data-parallel fit failed: {message}")

    def check_same(self, what: str, value) -> None:
        """``ValueError`` on every rank unless ``value`` is equal on all ranks."""
        values = self.all_gather_object(value)
        if any(v != values[0] for v in values):
            raise ValueError(
                f"every rank of a data-parallel fit must pass the same {what}; they "
                f"differ ({values}). Pass distributed=False to fit each process "
                "on its own data."
            )

    # ------------------------------------------------------------- training
    def reduce_gradients(self, encoder: nn.Module, critic: nn.Module) -> None:
        """Make every gradient that of the global batch's loss, with one
        collective: the backbone's (computed on this rank's rows) are summed over
        ranks; those of the parts every rank runs on the whole gathered batch
        (the normalization layer, the critic) are already whole on each rank,
        so they are averaged (see the module docstring)."""
        norm = getattr(encoder, "norm", None)
        whole = {id(p) for m in (norm, critic) if m is not None for p in m.parameters()}
        params = [p for m in (encoder, critic) for p in m.parameters()]
        grads = [(p.grad, id(p) in whole) for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat(
            [g.reshape(-1) / self.world_size if w else g.reshape(-1) for g, w in grads]
        )
        self.all_reduce_(flat)
        k = 0
        for g, _ in grads:
            g.copy_(flat[k : k + g.numel()].view_as(g))
            k += g.numel()

    def latents(self, encoder, view_a, view_b, n_total):
        """The clean latents of a global batch of ``n_total`` pairs (view a's
        rows first) from this rank's share of its views: the backbone runs on
        the share, the normalization on the gathered global batch exactly as
        one process runs it. The loss is then computed from them on every rank
        alike (:class:`~skdim_dm._core.objectives.Loss`), drawing from the
        generator every rank holds in the same state."""
        n = view_a.shape[0]
        h = encoder.pre_norm(torch.cat([view_a, view_b]))
        d = h.shape[1]
        both = self.gather(torch.cat([h[:n], h[n:]], dim=1), n_total)
        return encoder.norm(torch.cat([both[:, :d], both[:, d:]]))

    def attach(self, encoder: nn.Module) -> list:
        """Make the batch statistics of the backbone's hidden BatchNorm layers
        global while it trains; returns what :meth:`detach` undoes. (The
        normalization layer runs on the gathered global batch: nothing to do.)"""
        norm = getattr(encoder, "norm", None)
        attached = []
        for m in encoder.modules():
            if isinstance(m, _BATCH_NORMS) and m is not norm:
                m.forward = types.MethodType(_synced_batch_norm(self), m)
                attached.append(m)
        return attached

    @staticmethod
    def detach(attached: list) -> None:
        for m in attached:
            m.__dict__.pop("forward", None)

    @torch.no_grad()
    def average_running_stats(self, layers) -> None:
        """Hidden BatchNorm running statistics averaged over ranks, weighted by
        the batches each rank saw (the cumulative average of all batches)."""
        for m in layers:
            count = m.num_batches_tracked.to(m.running_mean.dtype)
            stats = torch.cat(
                [m.running_mean * count, m.running_var * count, count.reshape(1)]
            )
            stats = self.all_reduce_(stats)
            total = stats[-1].clamp_min(1.0)
            c = m.running_mean.numel()
            m.running_mean.copy_(stats[:c] / total)
            m.running_var.copy_(stats[c : 2 * c] / total)
            m.num_batches_tracked.copy_(stats[-1].round().long())

    @torch.no_grad()
    def check_replicas(self, *modules: nn.Module) -> None:
        """Warn when the ranks' parameters differ (they should not: every rank
        applies the same averaged gradients), then copy rank 0's parameters and
        buffers to all ranks so that every rank stores the same model."""
        tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
        if not tensors:
            return
        digest = [float(t.double().sum()) for t in tensors if t.is_floating_point()]
        digests = self.all_gather_object(digest)
        if any(d != digests[0] for d in digests):
            warnings.warn(
                "the ranks of the data-parallel fit ended with different weights; "
                "keeping rank 0's",
                RuntimeWarning,
                stacklevel=3,
            )
        for t in tensors:
            src = t.cpu() if self._via_cpu else t
            self._dist.broadcast(src, src=0, group=self.group)
            if self._via_cpu:
                t.copy_(src)


class _GlobalBatchNorm(torch.autograd.Function):
    """Batch normalization by statistics of the global batch (``mean``, ``var``:
    biased, over all ranks), with the backward pass of a batch norm over all
    ranks: the two per-channel sums it needs (of the incoming gradient, and of
    the gradient times the normalized input) are summed over ranks in one
    all-reduce. Both passes run torch's fused CPU kernels (the eval-mode batch
    norm and its backward) plus one in-place correction."""

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, eps, shard, count):
        ctx.save_for_backward(x, weight, mean, var)
        ctx.eps, ctx.shard, ctx.count = eps, shard, count
        return nn.functional.batch_norm(
            x, mean, var, weight, bias, training=False, momentum=0.0, eps=eps
        )

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, var = ctx.saved_tensors
        c = x.shape[1]
        w = weight if weight is not None else x.new_ones(c)
        # Eval-mode backward: grad * w * invstd, and the local sums
        # sum(grad * xhat) (as weight's gradient) and sum(grad) (as bias's).
        dx, sum_gx, sum_g = torch.ops.aten.native_batch_norm_backward(
            grad.contiguous(), x, w, mean, var, None, None, False, ctx.eps,
            [True, True, True],
        )  # fmt: skip
        sums = ctx.shard.all_reduce_(torch.cat([sum_g, sum_gx]).double())
        invstd = (var.double() + ctx.eps).rsqrt()
        scale = w.double() * invstd / ctx.count
        # dx -= w * invstd * (mean of grad + xhat * mean of grad * xhat),
        # over the global batch
        shape = [1, -1] + [1] * (x.dim() - 2)
        slope = (-scale * invstd * sums[c:]).to(x.dtype).view(shape)
        offset = (-scale * sums[:c]).to(x.dtype).view(shape)
        dx.addcmul_(x - mean.view(shape), slope).add_(offset)
        grad_w = sum_gx if weight is not None else None
        grad_b = sum_g if ctx.needs_input_grad[2] else None
        return dx, grad_w, grad_b, None, None, None, None, None


def _synced_batch_norm(shard: Shard):
    """``forward`` for a hidden BatchNorm layer: batch statistics of all ranks in
    training mode (torch's ``SyncBatchNorm`` needs CUDA); eval mode unchanged.
    One all-reduce forward (count, sum and sum of squares, in float64, from
    each rank's exact mean and variance) and one backward."""

    def forward(self, x):
        if not self.training:
            return type(self).forward(self, x)
        dims = [0, *range(2, x.dim())]
        with torch.no_grad():
            var_local, mean_local = torch.var_mean(x, dims, correction=0)
            n_local = x.numel() / x.shape[1]
            m, v = mean_local.double(), var_local.double()
            stats = torch.cat([m * n_local, (v + m * m) * n_local])
            stats = shard.all_reduce_(torch.cat([stats, stats.new_tensor([n_local])]))
            n = float(stats[-1])
            c = x.shape[1]
            mean64 = stats[:c] / n
            var64 = (stats[c : 2 * c] / n - mean64 * mean64).clamp_min(0.0)
            mean, var = mean64.to(x.dtype), var64.to(x.dtype)
        out = _GlobalBatchNorm.apply(
            x, self.weight, self.bias, mean, var, self.eps, shard, n
        )
        if self.running_mean is None:  # no running statistics kept
            return out
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            momentum = self.momentum
            if momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
            unbiased = var * (n / max(n - 1.0, 1.0))
            self.running_mean.mul_(1 - momentum).add_(momentum * mean)
            self.running_var.mul_(1 - momentum).add_(momentum * unbiased)
        return out

    return forward
