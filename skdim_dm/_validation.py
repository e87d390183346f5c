"""Parameter constraints, device resolution and seed derivation.

The one module that imports scikit-learn's private helpers, so that a change in
their location touches a single file.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.base import _fit_context  # noqa: F401  (re-exported)
from sklearn.utils._param_validation import (  # noqa: F401  (re-exported)
    HasMethods,
    Interval,
    StrOptions,
)

__all__ = [
    "Interval",
    "StrOptions",
    "HasMethods",
    "_fit_context",
    "resolve_device",
    "derive_seeds",
]


def resolve_device(device) -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; explicit CUDA is checked."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        ) from exc
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this "
                "machine; use device='auto' or 'cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} does not exist: {torch.cuda.device_count()} CUDA "
                "device(s) visible"
            )
        return dev
    raise ValueError(
        f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
    )


def derive_seeds(random_state, n: int) -> list[int]:
    """``n`` independent 63-bit seeds from ``random_state`` without global state.

    ``None`` draws fresh OS entropy (not numpy's global ``RandomState``); an int is
    expanded through ``SeedSequence``; a ``RandomState`` or ``Generator`` passed by
    the caller is advanced, as scikit-learn does.
    """
    if random_state is None:
        entropy = None
    elif isinstance(random_state, numbers.Integral):
        entropy = int(random_state)
    elif isinstance(random_state, np.random.RandomState):
        entropy = int(random_state.randint(np.iinfo(np.int32).max))
    elif isinstance(random_state, np.random.Generator):
        entropy = int(random_state.integers(np.iinfo(np.int64).max))
    else:
        raise ValueError(
            f"random_state must be None, an int, a numpy RandomState or Generator; "
            f"got {random_state!r}"
        )
    state = np.random.SeedSequence(entropy).generate_state(n, dtype=np.uint64)
    return [int(s >> np.uint64(1)) for s in state]
