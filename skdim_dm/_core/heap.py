"""glibc's allocator told to keep freed memory while a fit trains.

glibc's ``malloc`` serves each block of 128 KiB or more (a threshold it raises,
after larger blocks are freed, to 32 MiB at most) with a fresh ``mmap`` and
gives it back with ``munmap`` when freed, and it trims the top of the heap when
more than 128 KiB of it is free. A training step allocates and frees the same
large tensors every time, so the kernel maps, zeroes page by page and unmaps
them again at every step: a third of a ConvNet fit's CPU time was system time
(``benchmarks/RESULTS.md``, "Speed: allocator and data parallelism").

:func:`keep_heap` raises the mmap and trim thresholds (and the heap's top pad)
for the duration of ``fit`` and ``partial_fit`` (``mallopt`` through
``ctypes``), so that freed blocks are reused, and afterwards restores them and
gives the kept memory back (``malloc_trim``). glibc has no getter for these
settings, so "restore" means: glibc's documented start values (mallopt(3):
128 KiB each), or leave alone a setting that the environment gave at start
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_`` or
the same ``glibc.malloc.*`` names in ``GLIBC_TUNABLES``): those are the user's
and are never changed. Setting any of them turns off glibc's dynamic raising of
the mmap threshold for the rest of the process, as it does for any program that
calls ``mallopt``. Fits that overlap (nested, or in several threads) share one
setting: the first to start applies it, the last to finish restores it.

Elsewhere (musl, macOS, Windows) :func:`keep_heap` does nothing. Pure standard
library.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading

__all__ = ["keep_heap", "KEEP", "GLIBC_START"]

# The parameter numbers of glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

#: What ``fit`` sets: blocks below 1 GiB come from the heap and are reused; up
#: to 1 GiB of free heap top is kept; the heap grows 16 MiB beyond each request.
KEEP = {
    M_MMAP_THRESHOLD: 2**30,
    M_TRIM_THRESHOLD: 2**30,
    M_TOP_PAD: 16 * 2**20,
}
#: glibc's values when nothing set them (mallopt(3)): what ``fit`` restores.
GLIBC_START = {
    M_MMAP_THRESHOLD: 128 * 1024,
    M_TRIM_THRESHOLD: 128 * 1024,
    M_TOP_PAD: 128 * 1024,
}
#: The environment variable and the ``GLIBC_TUNABLES`` name of each setting.
_ENV = {
    M_MMAP_THRESHOLD: ("MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold"),
    M_TRIM_THRESHOLD: ("MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold"),
    M_TOP_PAD: ("MALLOC_TOP_PAD_", "glibc.malloc.top_pad"),
}

_lock = threading.Lock()
_depth = 0  # fits in progress
_libc = None  # the C library when it is glibc, else False (resolved once)


def _glibc():
    """The process's C library when it is glibc, else ``False``."""
    global _libc
    if _libc is None:
        try:
            libc = ctypes.CDLL(None)  # the libc this process runs on
            libc.gnu_get_libc_version  # noqa: B018  (glibc only)
            libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            libc.mallopt.restype = ctypes.c_int
            libc.malloc_trim.argtypes = [ctypes.c_size_t]
            libc.malloc_trim.restype = ctypes.c_int
            _libc = libc
        except (OSError, TypeError, AttributeError):  # musl, macOS, Windows
            _libc = False
    return _libc


def _user_settings() -> set[int]:
    """The settings that the environment gave glibc at start."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return {
        param
        for param, (variable, tunable) in _ENV.items()
        if variable in os.environ or f"{tunable}=" in tunables
    }


def _set(libc, values: dict[int, int]) -> None:
    for param in values.keys() - _user_settings():
        libc.mallopt(param, values[param])


@contextlib.contextmanager
def keep_heap(enabled: bool = True):
    """Keep freed memory for reuse while the block runs (glibc only).

    The first of overlapping blocks sets :data:`KEEP`; the last restores
    :data:`GLIBC_START` and gives the kept memory back; settings given by the
    environment are left alone (see the module docstring). ``enabled=False``
    changes nothing: fits of a ``np.memmap`` or a ``Dataset`` pass it, because
    a heap that keeps blocks of every size raises their peak memory (a memmap
    fit with neighbor views grew by 0.68x the file instead of 0.52x), and
    bounded memory is why such input is used.
    """
    global _depth
    libc = _glibc()
    if not (libc and enabled):
        yield
        return
    with _lock:
        if _depth == 0:
            _set(libc, KEEP)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _set(libc, GLIBC_START)
                libc.malloc_trim(0)
