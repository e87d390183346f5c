"""A fit leaves the process as it found it: torch's global random generator (never
seeded, and seeding it elsewhere changes no fit), the thread counts and the CPU's
subnormal-float mode, also when fits overlap in several threads."""

import sys
import threading

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skdim_dm import NoiseInjectedInfoMax

SMALL = dict(hidden_layer_sizes=(16,), max_epochs=2, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def X():
    return load_digits().data[:200]


def test_fit_never_seeds_torch_global_generator(X, monkeypatch):
    # Seeding the shared global generator is what let fits in two threads change
    # each other's weights; our networks draw only from local generators.
    def refuse(*args, **kwargs):
        raise AssertionError("fit seeded torch's global generator")

    monkeypatch.setattr(torch, "manual_seed", refuse)
    monkeypatch.setattr(torch.random, "manual_seed", refuse)
    state = torch.get_rng_state()
    for kw in ({}, {"critic": "separable"}, {"prior": "uniform"}, {"encoder": "conv"}):
        NoiseInjectedInfoMax(**{**SMALL, **kw}).fit(X)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.slow
def test_fit_ignores_global_seeding_in_other_threads(X):
    params = dict(SMALL, hidden_layer_sizes=(256, 256, 256), max_epochs=1)
    alone = NoiseInjectedInfoMax(**params).fit(X).transform(X)
    done = threading.Event()

    def reseed():  # another thread that keeps seeding the global generator
        i = 0
        while not done.is_set():
            torch.random.manual_seed(i)
            i += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so the two interleave
    t = threading.Thread(target=reseed)
    t.start()
    try:
        together = [
            NoiseInjectedInfoMax(**params).fit(X).transform(X) for _ in range(3)
        ]
    finally:
        done.set()
        t.join()
        sys.setswitchinterval(interval)
    for Z in together:
        np.testing.assert_array_equal(Z, alone)


# threads ------------------------------------------------------------------------
def test_thread_setting_applies_inside_fit_and_is_restored(X):
    before = torch.get_num_threads()
    seen = []
    est = NoiseInjectedInfoMax(
        n_threads=1,
        callbacks=[lambda e, logs: seen.append(torch.get_num_threads())],
        **SMALL,
    )
    torch.set_num_threads(2)
    try:
        est.fit(X)
        assert seen == [1, 1] and torch.get_num_threads() == 2
        est.set_params(n_threads=None, callbacks=None).fit(X)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_overlapping_fits_restore_the_thread_count_in_any_order(X):
    # Fit A starts first and ends first, while fit B runs: B used to save A's
    # count and restore it after A had restored the caller's.
    from threadpoolctl import threadpool_info

    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()
    errors = []

    def wait(event):
        if not event.wait(timeout=120):  # a guard against a hang, not a timing
            raise RuntimeError("the other fit never got there")

    def fit(n_threads, callback):
        try:
            est = NoiseInjectedInfoMax(**{**SMALL, "n_threads": n_threads})
            est.set_params(callbacks=[callback]).fit(X)
        except Exception as exc:  # reported in the main thread
            errors.append(exc)
            for event in (a_in, b_in, a_done):
                event.set()

    def a_callback(epoch, logs):
        a_in.set()
        wait(b_in)  # A ends only once B is inside its own thread limit

    def b_callback(epoch, logs):
        b_in.set()
        wait(a_done)

    def new_thread_count():  # the count a new thread starts with
        out = []
        t = threading.Thread(target=lambda: out.append(torch.get_num_threads()))
        t.start()
        t.join()
        return out[0]

    before, blas_before = torch.get_num_threads(), threadpool_info()
    new_before = new_thread_count()
    a = threading.Thread(target=fit, args=(2, a_callback))
    b = threading.Thread(target=fit, args=(3, b_callback))
    try:
        a.start()
        wait(a_in)  # A is inside its thread limit
        b.start()
        a.join()
        a_done.set()  # only now may B finish
        b.join()
        assert not errors
        assert torch.get_num_threads() == before
        assert new_thread_count() == new_before
        assert threadpool_info() == blas_before
    finally:
        for event in (a_in, b_in, a_done):
            event.set()
        torch.set_num_threads(before)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_training_flushes_subnormals_and_restores_the_callers_mode():
    # Small-noise fits underflow into subnormal floats (10x slower on x86,
    # benchmarks/bench_denormals.py); fit and partial_fit flush them in the
    # training thread and leave the caller's mode as it was.
    from skdim_dm._core.threads import denormals_flushed as _denormals_flushed

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero mode")
    X = np.random.default_rng(0).standard_normal((80, 5))
    seen = []
    kw = dict(hidden_layer_sizes=(8,), max_epochs=2, random_state=0)
    kw["callbacks"] = [lambda epoch, logs: seen.append(_denormals_flushed())]
    try:
        for before in (False, True):
            torch.set_flush_denormal(before)
            NoiseInjectedInfoMax(**kw).fit(X)
            assert _denormals_flushed() is before
            NoiseInjectedInfoMax(**kw).partial_fit(X)
            assert _denormals_flushed() is before
    finally:
        torch.set_flush_denormal(False)
    assert seen and all(seen)
