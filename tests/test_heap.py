"""glibc's allocator keeps freed memory while a fit trains, and gets it back after."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from skdim_dm import NoiseInjectedInfoMax
from skdim_dm._core import heap as _heap
from skdim_dm._core.heap import GLIBC_START, KEEP, M_MMAP_THRESHOLD, keep_heap


class FakeLibc:
    """Records the allocator calls that keep_heap makes."""

    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("trim", pad))
        return 1


@pytest.fixture
def fake(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(_heap, "_libc", libc)
    for variable, _ in _heap._ENV.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    return libc


def _kept(values):
    return sorted(("mallopt", p, v) for p, v in values.items())


def test_overlapping_fits_set_once_and_restore_after_the_last(fake):
    with keep_heap():
        assert sorted(fake.calls) == _kept(KEEP)
        fake.calls.clear()
        with keep_heap():  # nested: nothing changes, nothing is restored
            pass
        assert fake.calls == []
    assert sorted(fake.calls[:-1]) == _kept(GLIBC_START)
    assert fake.calls[-1] == ("trim", 0)  # the kept memory goes back
    assert _heap._depth == 0


def test_a_fit_in_another_thread_does_not_restore_too_early(fake):
    entered, release = threading.Event(), threading.Event()
    done = threading.Event()

    def other_fit():
        with keep_heap():
            entered.set()
            release.wait(10)
        done.set()

    with keep_heap():
        thread = threading.Thread(target=other_fit)
        thread.start()
        assert entered.wait(10)
        fake.calls.clear()
    # This fit ended first: the other is still training, so nothing restored.
    assert fake.calls == []
    release.set()
    thread.join(10)
    assert done.is_set()
    assert sorted(fake.calls[:-1]) == _kept(GLIBC_START)
    assert fake.calls[-1] == ("trim", 0)


def test_a_failing_block_restores_too(fake):
    with pytest.raises(RuntimeError):
        with keep_heap():
            raise RuntimeError("training failed")
    assert fake.calls[-1] == ("trim", 0) and _heap._depth == 0


@pytest.mark.parametrize(
    "variable, value",
    [
        ("MALLOC_MMAP_THRESHOLD_", "4000000000"),
        ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=4000000000"),
    ],
)
def test_settings_given_by_the_environment_are_left_alone(
    fake, monkeypatch, variable, value
):
    monkeypatch.setenv(variable, value)
    with keep_heap():
        pass
    touched = {param for kind, param, *_ in fake.calls if kind == "mallopt"}
    assert touched == set(KEEP) - {M_MMAP_THRESHOLD}


def test_without_glibc_nothing_is_called(monkeypatch):
    monkeypatch.setattr(_heap, "_libc", False)
    with keep_heap():
        assert _heap._depth == 0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_and_partial_fit_keep_the_heap_while_they_train(fake, monkeypatch):
    import skdim_dm._infomax as infomax

    seen = []
    original = infomax.fit_networks

    def spy(*args, **kwargs):
        seen.append((_heap._depth, sorted(fake.calls[-len(KEEP) :])))
        return original(*args, **kwargs)

    monkeypatch.setattr(infomax, "fit_networks", spy)
    X = np.random.default_rng(0).standard_normal((80, 4))
    NoiseInjectedInfoMax(hidden_layer_sizes=(8,), max_steps=2).fit(X)
    NoiseInjectedInfoMax(hidden_layer_sizes=(8,)).partial_fit(X)
    assert seen == [(1, _kept(KEEP))] * 2  # set while each one trains
    assert fake.calls[-1] == ("trim", 0) and _heap._depth == 0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_memmap_fit_leaves_the_allocator_alone(fake, tmp_path):
    # Its memory must stay bounded: a heap keeping blocks raised the peak.
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).standard_normal((80, 4)))
    X = np.load(path, mmap_mode="r")
    NoiseInjectedInfoMax(hidden_layer_sizes=(8,), max_steps=2).fit(X)
    assert fake.calls == []


def _faults_of_allocation(n_bytes: int) -> int:
    """Minor page faults of allocating, touching and freeing ``n_bytes``."""
    import resource  # POSIX only, as is glibc

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.ones(n_bytes // 8)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(
    not _heap._glibc()
    or any(v in os.environ for v, _ in _heap._ENV.values())
    or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""),
    reason="needs glibc with its settings left to the program",
)
def test_glibc_reuses_a_freed_block_inside_and_returns_it_after():
    # A 64 MB block, above glibc's largest dynamic mmap threshold (32 MiB):
    # each allocation maps fresh pages, which fault in one by one.
    size = 64 * 2**20
    outside = _faults_of_allocation(size)
    with keep_heap():
        _faults_of_allocation(size)  # the heap grows once
        inside = _faults_of_allocation(size)  # and the block is reused
    after = _faults_of_allocation(size)
    assert inside < outside / 10, (inside, outside)
    assert after > outside / 2, (after, outside)  # restored: mapped afresh
