"""Parameter constraints, device resolution and seed derivation.

The one module that imports scikit-learn's private helpers, so that a change in
their location touches a single file.
"""

from __future__ import annotations

import importlib
import numbers
import sys
from collections.abc import Iterable, Iterator, Mapping, Set
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import _fit_context  # noqa: F401  (re-exported)
from sklearn.utils._param_validation import (  # noqa: F401  (re-exported)
    HasMethods,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils._param_validation import Interval as _Interval

__all__ = [
    "Interval",
    "StrOptions",
    "RegisteredNames",
    "HasMethods",
    "_fit_context",
    "validate_parameter_constraints",
    "resolve_device",
    "derive_seeds",
    "FitSeeds",
    "DetectorSeeds",
    "import_lazy_torch_modules",
]

#: Modules that torch imports lazily, the first time a network is built (on the
#: ``meta`` device and moved with ``to_empty``): they pull in sympy, which takes
#: about a second and a half.
LAZY_TORCH_MODULES = ("torch.fx.experimental.symbolic_shapes",)


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


class Interval(_Interval):
    """scikit-learn's ``Interval`` constraint, refusing bools: ``True`` is an
    ``Integral`` to Python, so ``gaussianize=True`` or ``max_steps=True`` would
    pass as 1. The error is scikit-learn's ``InvalidParameterError`` (a
    ``ValueError``): "must be an int in the range [0, inf). Got True instead"."""

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


class RegisteredNames(Set):
    """The keys of a registry, plus some fixed names, as a live read-only set:
    ``StrOptions(RegisteredNames(OBJECTIVES, "auto"))`` accepts a name
    registered after the constraint was built (a registered objective, critic
    or kind of view is usable by name at once)."""

    def __init__(self, registry: Mapping, *fixed: str):
        self._registry = registry
        self._fixed = fixed

    def __contains__(self, name) -> bool:
        return name in self._fixed or name in self._registry

    def __iter__(self) -> Iterator[str]:
        yield from self._fixed
        yield from (k for k in self._registry if k not in self._fixed)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @classmethod
    def _from_iterable(cls, names: Iterable) -> frozenset:
        return frozenset(names)  # set operations give plain, fixed sets


def import_lazy_torch_modules() -> None:
    """Import :data:`LAZY_TORCH_MODULES` all or nothing.

    An exception in the middle of an import (Ctrl-C during the first fit of a
    session) leaves the modules imported so far in ``sys.modules``, some of them
    half initialized, and every later import of them fails (``module 'sympy' has
    no attribute 'printing'``). Here, any failure removes every module the
    attempt added, so the next attempt starts from scratch."""
    missing = [name for name in LAZY_TORCH_MODULES if name not in sys.modules]
    if not missing:
        return
    before = set(sys.modules)
    try:
        for name in missing:
            importlib.import_module(name)
    except BaseException:
        for name in set(sys.modules) - before:
            sys.modules.pop(name, None)
        raise


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


class FitSeeds(NamedTuple):
    """The seeds of one ``fit`` or ``partial_fit`` call, one per random role.

    Every role draws from its own generator, so adding a role never moves the
    draws of another. The order of the fields is the order in which they are
    derived (:meth:`derive`): a new role goes at the end, and the golden tests
    (``tests/test_golden.py``) pin the latents the existing roles give.
    """

    #: Initial weights of the networks built for the call.
    weights: int
    #: The training loop: batch order, views, noise (and each rank's share of
    #: the views in a data-parallel fit).
    training: int
    #: The validation split of ``early_stopping``.
    split: int
    #: The validation MI estimates and the final MI estimate.
    evaluation: int
    #: Torch's global generator, forked, for a user module (e.g. Dropout).
    user_modules: int
    #: Fitting the views (the neighbor search's random projection).
    views: int
    #: The ``gaussianize`` step's Gaussianizer.
    gaussianizer: int

    @classmethod
    def derive(cls, random_state, call: int | None = None) -> FitSeeds:
        """The seeds of ``fit`` (``call=None``), or of the ``partial_fit`` call
        that follows ``call`` earlier ones: each role's seed of ``fit`` spawned
        with the key ``(call,)``, so each call draws afresh and a sequence of
        calls is reproducible."""
        seeds = derive_seeds(random_state, len(cls._fields))
        if call is not None:
            seeds = [
                int(
                    np.random.SeedSequence(seed, spawn_key=(call,)).generate_state(
                        1, dtype=np.uint64
                    )[0]
                    >> np.uint64(1)
                )
                for seed in seeds
            ]
        return cls(*seeds)


class DetectorSeeds(NamedTuple):
    """The seeds of one :class:`~skdim_dm.LatentOutlierDetector` ``fit``, one per
    random role (derived as they always were: the folds' seed first, then one
    per embedder)."""

    #: The split of the rows into training and calibration folds.
    folds: int
    #: The ``random_state`` of each fold's embedder, in fold order (as many as
    #: ``max(n_folds, 1)``; a split-conformal fit uses the first).
    embedders: tuple[int, ...]

    @classmethod
    def derive(cls, random_state, n_folds: int) -> DetectorSeeds:
        folds, *embedders = derive_seeds(random_state, 1 + max(n_folds, 1))
        return cls(folds, tuple(embedders))
