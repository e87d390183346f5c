"""The settings a fit runs under (``skdim_dm._core.threads``): which thread count
``n_threads="auto"`` picks, each setting restored on the way out, and torch's
global generator forked only for a user's module. Overlapping fits in several
Python threads and the flush-to-zero mode inside a fit are tested through the
estimator in test_global_state.py."""

import torch
from torch import nn

from skdim_dm._core.threads import (
    AUTO_ONE_THREAD_WIDTH,
    auto_threads,
    denormals_flushed,
    flush_denormals,
    global_rng_for_user_modules,
    thread_limit,
)


def test_auto_threads_is_one_for_small_mlps_and_leaves_the_rest_alone():
    assert auto_threads("auto", "mlp", (64, AUTO_ONE_THREAD_WIDTH)) == 1
    assert auto_threads("auto", "mlp", (AUTO_ONE_THREAD_WIDTH + 1,)) is None
    assert auto_threads("auto", "conv", (64,)) is None
    assert auto_threads("auto", nn.Linear(3, 2), (64,)) is None
    assert auto_threads(3, "mlp", (64,)) == 3 and auto_threads(None, "mlp", ()) is None


def test_a_thread_limit_applies_inside_and_restores_the_callers_count():
    before = torch.get_num_threads()
    inside = 2 if before == 1 else 1
    with thread_limit(inside):
        assert torch.get_num_threads() == inside
    assert torch.get_num_threads() == before
    with thread_limit(None):  # leaves the settings alone
        assert torch.get_num_threads() == before


def test_flushing_subnormals_restores_the_previous_mode():
    if not torch.set_flush_denormal(False):
        return  # a CPU without the mode: nothing to flush or restore
    with flush_denormals():
        assert denormals_flushed()
    assert not denormals_flushed()


def test_the_global_generator_is_forked_and_seeded_only_for_a_user_module():
    cpu, module = torch.device("cpu"), nn.Linear(2, 2)
    state = torch.random.get_rng_state()
    with global_rng_for_user_modules(module, cpu, seed=3):
        first = torch.rand(3)
    with global_rng_for_user_modules(module, cpu, seed=3):
        assert torch.equal(torch.rand(3), first)  # seeded: reproducible
    assert torch.equal(torch.random.get_rng_state(), state)  # and restored
    with global_rng_for_user_modules("mlp", cpu, seed=3):
        assert torch.equal(torch.random.get_rng_state(), state)  # untouched
