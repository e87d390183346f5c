"""The thread and floating-point settings a fit or a transform runs under.

Pure torch (and threadpoolctl for the BLAS pools). Each setting is restored
when the call ends, whatever the interleaving of calls in several Python
threads: :func:`thread_limit` for the torch and BLAS thread counts,
:func:`flush_denormals` for the CPU's flush-to-zero mode,
:func:`global_rng_for_user_modules` for torch's global generator, and
:func:`training_environment` for what ``fit`` and ``partial_fit`` run under.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

import torch
from threadpoolctl import threadpool_limits
from torch import nn

from .heap import keep_heap

__all__ = [
    "AUTO_ONE_THREAD_WIDTH",
    "auto_threads",
    "thread_limit",
    "denormals_flushed",
    "flush_denormals",
    "global_rng_for_user_modules",
    "training_environment",
]

#: ``n_threads="auto"`` runs MLP encoders up to this hidden width on one thread.
AUTO_ONE_THREAD_WIDTH = 512


def auto_threads(n_threads, encoder, hidden_layer_sizes: Sequence[int]):
    """The thread count for the estimator's ``n_threads``, or None to leave the
    settings alone: ``"auto"`` means one thread for an MLP encoder of hidden
    widths up to :data:`AUTO_ONE_THREAD_WIDTH`, whose matrix products are too
    small to split profitably."""
    if n_threads != "auto":
        return n_threads
    small_mlp = (
        isinstance(encoder, str)
        and encoder == "mlp"
        and all(int(h) <= AUTO_ONE_THREAD_WIDTH for h in hidden_layer_sizes)
    )
    return 1 if small_mlp else None


def _in_new_thread(function):
    """``function()`` run in a new thread: torch's thread count there is the
    one new threads start with."""
    out = []
    thread = threading.Thread(target=lambda: out.append(function()))
    thread.start()
    thread.join()
    return out[0]


class _ThreadLimits:
    """The thread settings while fits and transforms run, restored whatever the
    interleaving of overlapping calls (fits in several Python threads).

    Three settings change: the BLAS pools' sizes (per process), the calling
    thread's torch count (OpenMP keeps one per thread) and the count new
    threads start with (the last one set anywhere). Each call restores its own
    thread's count; the first call in saves the other two and the last call out
    restores them. Saving all three per call, interleaved, left them at one
    call's count instead of the caller's."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active = 0
        self.saved = None

    @contextlib.contextmanager
    def limit(self, n_threads: int):
        own = torch.get_num_threads()
        with self.lock:
            if self.active == 0:
                default = _in_new_thread(torch.get_num_threads)
                self.saved = (default, threadpool_limits(limits=n_threads))
            else:
                threadpool_limits(limits=n_threads)  # restored by the first
            self.active += 1
            torch.set_num_threads(n_threads)
        try:
            yield
        finally:
            with self.lock:
                torch.set_num_threads(own)
                self.active -= 1
                if self.active == 0:
                    default, blas = self.saved
                    self.saved = None
                    blas.restore_original_limits()
                    if default != own:
                        _in_new_thread(lambda: torch.set_num_threads(default))


_THREAD_LIMITS = _ThreadLimits()


@contextlib.contextmanager
def thread_limit(n_threads):
    """Run with ``n_threads`` torch and BLAS threads; the settings are restored
    when the last overlapping call ends. ``None`` leaves them alone."""
    if n_threads is None:
        yield
        return
    with _THREAD_LIMITS.limit(int(n_threads)):
        yield


def denormals_flushed() -> bool:
    """Whether this thread's CPU flushes subnormal floats to zero (FTZ/DAZ)."""
    return bool((torch.tensor(1e-39, dtype=torch.float32) * 2.0).item() == 0.0)


@contextlib.contextmanager
def flush_denormals():
    """Flush subnormal floats to zero in this thread while training, as
    ``torch.set_flush_denormal(True)``, and restore the previous mode afterwards.

    The analytic critics' logits scale as ``1 / noise_level^2``, so the softmax
    of a small-noise fit underflows into subnormal floats, which x86 CPUs handle
    in microcode, many times slower (``benchmarks/bench_denormals.py``). Values
    below ``1.2e-38`` change no InfoNCE estimate. The mode is per thread; with
    ``n_threads="auto"`` an MLP trains in the calling thread."""
    before = denormals_flushed()
    if before or not torch.set_flush_denormal(True):
        yield  # already on, or a CPU without the mode
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextlib.contextmanager
def training_environment(n_threads, streamed: bool):
    """What ``fit`` and ``partial_fit`` run under: ``n_threads`` threads
    (:func:`thread_limit`), subnormals flushed (:func:`flush_denormals`) and,
    for in-memory input, the heap kept (:func:`~skdim_dm._core.heap.keep_heap`;
    a streamed input's chunks are given back as they are freed)."""
    with thread_limit(n_threads), flush_denormals(), keep_heap(not streamed):
        yield


@contextlib.contextmanager
def global_rng_for_user_modules(encoder, device: torch.device, seed: int):
    """A seeded fork of torch's global generator, only when a user's module might
    draw from it (a Dropout layer, say): then its fit is reproducible and the
    caller's state is restored afterwards. Our own networks draw every random
    number from local generators, so for them the global generator is neither
    read nor written, and fits running in several threads cannot interfere."""
    if not isinstance(encoder, nn.Module):
        yield
        return
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        yield
