"""The one planner of ``fit`` and ``partial_fit``: the data and parameters of a
:class:`~skdim_dm.NoiseInjectedInfoMax` checked and resolved into a
:class:`FitPlan` before anything is built or trained.

A plan is made of named pieces: the training rows, their scaling, the prior,
where it trains (device and data-parallel shard), the seeds, the effective
settings, the views, the channel, the networks' parameters and the training
loop's configuration. ``fit``, the first ``partial_fit`` call and the later ones
go through the same steps; a later call also checks that the parameters fixed
by the first are unchanged and takes what it continues from (the prior, the
running moments, the channel, Adam's state) from the fitted estimator.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
from sklearn.utils.validation import validate_data

from ._core.distributed import Shard, resolve_shard
from ._core.networks import conv_input_shape, network_params
from ._core.objectives import LOSS_TERMS, get_objective
from ._core.sources import (
    RowSource,
    RowSubset,
    as_source,
    is_streamed,
    moments,
    update_moments,
)
from ._core.training import TrainConfig
from ._core.views import Views, make_views
from ._priors import Prior, resolve_prior
from ._settings import resolve_settings
from ._validation import FitSeeds, resolve_device

__all__ = [
    "CapacityWarning",
    "FitPlan",
    "plan_fit",
    "check_input",
    "structure_params",
    "MAX_WIDTH",
]

#: Largest latent or hidden width.
MAX_WIDTH = 2**16
#: Parameters of the built networks beyond which ``fit`` refuses to allocate.
MAX_PARAMETERS = 2**30
#: Integer parameters, for which a bool (an Integral to Python) is refused.
_INT_PARAMS = (
    "n_components",
    "n_neighbors",
    "batch_size",
    "max_epochs",
    "n_iter_no_change",
)
#: Largest ``|mean| + std`` of a feature with ``standardize=None``: the float32
#: networks see X unscaled, and on a 6-feature table fits at 1e19 times unit
#: scale lost information while at 1e20 the latents collapsed to a constant.
MAX_UNSCALED = 1e19

#: Parameters that ``partial_fit`` may change between calls (the others are fixed
#: by the first call, as the networks and the standardization are).
PARTIAL_FIT_MUTABLE = (
    "augmentation",
    "match_weight",
    "radial_weight",
    "n_neighbors",
    "input_noise",
    "batch_size",
    "learning_rate",
    "learning_rate_schedule",  # must be "constant" for partial_fit
    "device",
    "random_state",
    "n_threads",
    "verbose",
    "callbacks",
    "distributed",
    "max_time",
    # ignored by partial_fit
    "max_steps",
    "max_epochs",
    "early_stopping",
    "validation_fraction",
    "n_iter_no_change",
    "tol",
)


class CapacityWarning(UserWarning):
    """The channel capacity exceeds what InfoNCE can measure with this batch size."""


@dataclass
class TrainingRows:
    """The rows training sees (for a :class:`RowSource`, row numbers into it)."""

    train: np.ndarray | RowSubset
    #: The rows held out by ``early_stopping``, or None.
    val: np.ndarray | RowSubset | None


@dataclass
class Scaling:
    """The input standardization and the running moments it came from."""

    mean: np.ndarray
    scale: np.ndarray
    #: ``count``, ``mean``, ``m2`` (as :func:`update_moments` keeps them) and
    #: ``rows``, the number of rows they cover.
    moments: dict


@dataclass
class Continuation:
    """What a later ``partial_fit`` call takes from the fitted estimator."""

    prior: Prior
    #: The running moments of the input so far (``count``, ``mean``, ``m2``).
    moments: dict
    #: Calls so far (``n_iter_``): the call's seeds are spawned with it.
    call: int
    capacity: float
    noise_level: float
    #: Adam's state as arrays (:func:`optimizer_arrays`), or None.
    optimizer_state: tuple | None


@dataclass
class FitPlan:
    """What ``fit`` or a ``partial_fit`` call resolved before building anything."""

    rows: TrainingRows
    scaling: Scaling
    prior: Prior
    #: The training device (this rank's, in a data-parallel fit).
    device: torch.device
    #: This process's part in a data-parallel fit, or None.
    shard: Shard | None
    seeds: FitSeeds
    #: The effective settings, "auto" resolved (:func:`resolve_settings`).
    settings: dict
    views: Views
    capacity: float
    #: The keyword arguments of :func:`build_networks` (all but the seed).
    network_params: dict
    train_config: TrainConfig
    #: ``gaussianize``: the layers of the Gaussianizer fitted after training.
    gaussianize: int
    #: The parameters the call fixes (:func:`structure_params`).
    structure: dict
    #: A ``partial_fit`` call (Adam's state is kept; nothing of an interrupted
    #: call is).
    partial: bool = False


def plan_fit(est, X, *, partial: bool = False) -> FitPlan:
    """Check the data and parameters of ``est.fit(X)`` (``partial``:
    ``est.partial_fit(X)``) and resolve everything the call needs, before
    anything is built. In a data-parallel fit every process checks its own
    input, and all raise when one fails."""
    device = resolve_device(est.device)
    shard = resolve_shard(est.distributed, device)
    if shard is None:
        return _plan(est, X, device, None, partial)
    try:
        plan = _plan(est, X, shard.device, shard, partial)
    except Exception as exc:
        shard.agree(exc)
        raise
    shard.agree(None)
    return plan


def _plan(est, X, device, shard, partial) -> FitPlan:
    before = _continuation(est) if partial else None
    X = check_input(est, X, reset=before is None, min_samples=2)
    check_params(est, X.shape[1])
    if before is not None:
        _check_structure(est)
    if partial and est.learning_rate_schedule not in ("constant", "auto"):
        raise ValueError(
            "partial_fit has no horizon to anneal over: use "
            "learning_rate_schedule='constant' (or fit)"
        )
    if before is None:
        prior = resolve_prior(est.prior, est.n_components)
    else:
        prior = before.prior
    base = prior.base
    settings = resolve_settings(est.get_params(deep=False), base.gaussian, partial)
    if est.gaussianize and not base.gaussian:
        raise ValueError("gaussianize needs the Gaussian prior")
    get_objective(settings["objective"]).check_base(base.gaussian)
    scaling = standardization(est, X, None if before is None else before.moments)
    seeds = FitSeeds.derive(
        est.random_state, call=None if before is None else before.call
    )
    rows = _split(est, X, seeds.split, hold_out=not partial)
    views = make_views(
        settings["augmentation"], est.input_noise, n_neighbors=est.n_neighbors
    )
    views.check_n_samples(rows.train.shape[0], after_split=rows.val is not None)
    batch = min(settings["batch_size"], rows.train.shape[0])
    _check_batch(est, batch, rows.train.shape[0])
    if shard is not None:
        _check_shards(est, shard, X, scaling, batch)
    if before is None:
        capacity, noise_level = _channel(est, base, settings, batch)
    else:
        capacity, noise_level = before.capacity, before.noise_level
    params = est.get_params(deep=False)
    return FitPlan(
        rows=rows,
        scaling=scaling,
        prior=prior,
        device=device,
        shard=shard,
        seeds=seeds,
        settings=settings,
        views=views,
        capacity=capacity,
        network_params=network_params(
            params, settings, X.shape[1], base.name, noise_level
        ),
        train_config=_train_config(est, settings, batch, partial, before),
        gaussianize=est.gaussianize,
        structure=structure_params(est),
        partial=partial,
    )


def _continuation(est) -> Continuation | None:
    """What a later ``partial_fit`` call continues from; None before the first."""
    if not hasattr(est, "encoder_"):
        return None
    count, mean, m2 = est._input_moments
    previous = {"count": count[0], "mean": mean, "m2": m2}
    if est.standardize == "global":
        previous = {k: v if k == "count" else v[0] for k, v in previous.items()}
    adam = None
    if hasattr(est, "_adam_moments"):
        adam = (est._adam_moments, est._adam_steps, est._adam_index)
    return Continuation(
        prior=est.prior_,
        moments=previous,
        call=est.n_iter_,
        capacity=est.capacity_,
        noise_level=est.noise_level_,
        optimizer_state=adam,
    )


def _check_structure(est) -> None:
    changed = [
        name
        for name, value in structure_params(est).items()
        if est._structure.get(name) != value
    ]
    if changed:
        raise ValueError(
            f"{changed} changed since the networks were built; partial_fit "
            "continues the same model: restore them, or call fit to start over"
        )


def _channel(est, base, settings, batch) -> tuple[float, float]:
    """``(capacity, noise_level)`` of a new model; ``CapacityWarning`` when a
    bound's share of the capacity is beyond what InfoNCE can measure."""
    d = est.n_components
    objective = get_objective(settings["objective"])
    if est.noise_level == "auto":
        capacity = objective.auto_capacity(base, d, batch)
        noise_level = base.noise_level(capacity, d)
    else:
        noise_level = float(est.noise_level)
    capacity = base.capacity(noise_level, d)
    # The capacity is shared among the objective's bounds (one per component
    # for the sliced objective, one in all for the joint one).
    per_bound = capacity / objective.n_bounds(d)
    if per_bound > math.log(batch):
        warnings.warn(
            f"capacity {per_bound:.2f} nats per InfoNCE bound exceeds "
            f"log(batch_size) = {math.log(batch):.2f}: InfoNCE cannot reach it, "
            "so the MI estimate saturates and matching weakens. Raise "
            "noise_level or batch_size.",
            CapacityWarning,
            stacklevel=6,
        )
    return capacity, noise_level


def _train_config(est, settings, batch, partial, before) -> TrainConfig:
    """The training loop's configuration; ``partial_fit`` takes one pass, with
    no step budget nor early stopping, from Adam's state of the call before."""
    config = TrainConfig(
        batch_size=batch,
        max_epochs=est.max_epochs,
        max_steps=settings["max_steps"],
        max_time=None if est.max_time is None else float(est.max_time),
        learning_rate=est.learning_rate,
        learning_rate_schedule=settings["learning_rate_schedule"],
        objective=settings["objective"],
        # each registered loss term is weighted by its setting "<name>_weight"
        loss_weights={name: settings.get(f"{name}_weight", 0.0) for name in LOSS_TERMS},
        early_stopping=est.early_stopping,
        n_iter_no_change=est.n_iter_no_change,
        tol=est.tol,
        verbose=bool(est.verbose),
        callbacks=tuple(est.callbacks or ()),
    )
    if partial:
        config.max_epochs, config.max_steps, config.early_stopping = 1, None, False
        config.optimizer_state = None if before is None else before.optimizer_state
    return config


def structure_params(est) -> dict:
    """The parameters that the first fit or partial_fit call fixes, in a
    form that JSON keeps (objects by their type's name)."""

    def key(value):
        if isinstance(value, (list, tuple)) and all(
            isinstance(v, (str, int, float, bool, type(None))) for v in value
        ):
            return tuple(value)
        if isinstance(value, (str, int, float, bool, type(None))):
            return value
        return type(value).__name__

    params = est.get_params(deep=False)
    return {
        name: key(value)
        for name, value in params.items()
        if name not in PARTIAL_FIT_MUTABLE
    }


# ------------------------------------------------------------------ checks
def check_input(est, X, *, reset, min_samples=1):
    """``X`` checked as ``fit`` and ``transform`` need it: an array (through
    scikit-learn's ``validate_data``), or for a memory map or Dataset a
    :class:`RowSource` whose shape and dtype are checked here and whose values
    are checked chunk by chunk as they are read."""
    if not is_streamed(X):
        return validate_data(
            est,
            X,
            dtype=[np.float64, np.float32],
            reset=reset,
            ensure_min_samples=min_samples,
        )
    source = as_source(X)
    n, p = source.shape
    if n < min_samples:
        raise ValueError(
            f"Found array with {n} sample(s) (shape=({n}, {p})) while a minimum "
            f"of {min_samples} is required."
        )
    if p < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape=({n}, 0)) while a minimum of "
            "1 is required."
        )
    if reset:
        est.n_features_in_ = p
        est.__dict__.pop("feature_names_in_", None)
    elif p != est.n_features_in_:
        raise ValueError(
            f"X has {p} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )
    return source


def check_params(est, n_features) -> None:
    """What the parameter constraints cannot say: bools given as ints, the
    hidden widths, the networks' size, callables and the conv input shape."""
    for name in _INT_PARAMS:
        if isinstance(getattr(est, name), bool):
            raise ValueError(f"{name} must be an int, got {getattr(est, name)!r}")
    sizes = est.hidden_layer_sizes
    if not (
        isinstance(sizes, (tuple, list))
        and all(
            isinstance(h, Integral) and not isinstance(h, bool) and 0 < h <= MAX_WIDTH
            for h in sizes
        )
    ):
        raise ValueError(
            f"hidden_layer_sizes must be a tuple of ints in [1, {MAX_WIDTH}], "
            f"got {sizes!r}"
        )
    if isinstance(est.encoder, str) and est.encoder == "mlp":
        widths = [n_features, *sizes, est.n_components]
        n_params = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))
        if n_params > MAX_PARAMETERS:
            raise ValueError(
                f"the MLP encoder would have {n_params:,} parameters "
                f"({4 * n_params / 2**30:.0f} GiB in float32), more than "
                f"{MAX_PARAMETERS:,}: lower hidden_layer_sizes or n_components"
            )
    if est.callbacks is not None and not all(callable(c) for c in est.callbacks):
        raise ValueError("callbacks must be a list of callables (epoch, logs) -> bool")
    if isinstance(est.encoder, str) and est.encoder == "conv":
        conv_input_shape(est.input_shape, n_features)


def _check_batch(est, batch, n_rows) -> None:
    """``whiten=True`` whitens each batch by its own covariance, which has
    rank at most ``batch - 1``."""
    if est.whiten and batch <= est.n_components:
        raise ValueError(
            f"whiten=True whitens each batch by its covariance, which needs "
            f"more rows than n_components={est.n_components}; batches have "
            f"{batch} (batch_size={est.batch_size}, {n_rows} training rows): "
            "raise batch_size, pass more rows, or lower n_components"
        )


def _check_shards(est, shard, X, scaling, batch) -> None:
    """Every process of a data-parallel fit must see the same data and
    parameters (their statistics must agree), and every process needs rows
    in each batch."""
    if batch < shard.world_size:
        raise ValueError(
            f"a batch of {batch} rows cannot be shared among {shard.world_size} "
            "processes: raise batch_size (or pass more samples)"
        )
    params = {
        k: (
            v
            if isinstance(v, (str, int, float, bool, tuple, type(None)))
            else type(v).__name__
        )
        for k, v in est.get_params(deep=False).items()
    }
    shard.check_same("parameters", params)
    digest = (tuple(X.shape), float(np.sum(scaling.mean)), float(np.sum(scaling.scale)))
    shard.check_same("data (shape, sum of means, sum of scales)", digest)


# ---------------------------------------------------------- standardization
def standardization(est, X, previous=None) -> Scaling:
    """The input scaling over ``X`` (and the ``previous`` running moments of
    partial_fit), and the moments it came from."""
    axis = None if est.standardize == "global" else 0
    # Squares of values beyond ~1e154 overflow: reported by _scaling.
    with np.errstate(over="ignore", invalid="ignore"):
        if previous is None:
            mean, std = _moments(X, axis)
            count = X.shape[0] * (1 if axis == 0 else X.shape[1])
            raw = {"count": count, "mean": mean, "m2": std * std * count}
        else:
            raw = update_moments(previous, X, axis)
            mean, std = raw["mean"], np.sqrt(raw["m2"] / raw["count"])
    n_rows = raw["count"] // (1 if axis == 0 else X.shape[1])
    raw["rows"] = n_rows
    mean, scale = _scaling(est.standardize, mean, std, n_rows, X.shape[1])
    return Scaling(mean, scale, raw)


def _moments(X, axis):
    """Mean and standard deviation (float64) of an array or a RowSource."""
    if isinstance(X, RowSource):
        return moments(X, axis)
    return X.mean(axis=axis, dtype=np.float64), X.std(axis=axis, dtype=np.float64)


def _is_constant(scale, mean, n_samples):
    """Features whose spread is within rounding of their mean, as scikit-learn's
    ``StandardScaler`` decides it: relative, so a feature in tiny units (1e-16)
    still counts, while ``1e6 + rounding noise`` does not."""
    eps = np.finfo(np.float64).eps
    var = scale * scale
    return var <= n_samples * eps * var + (n_samples * mean * eps) ** 2


def _scaling(standardize, mean, scale, n_samples, n_features):
    magnitude = float(np.max(np.abs(mean) + scale))
    if standardize is None and not magnitude <= MAX_UNSCALED:
        raise ValueError(
            f"standardize=None feeds X unscaled to the float32 networks, and "
            f"its features reach magnitudes of {magnitude:.3g} (mean + std), "
            f"beyond {MAX_UNSCALED:g}, where their arithmetic overflows; use "
            "standardize='features' or 'global', or rescale X"
        )
    if not np.all(np.isfinite(scale) & np.isfinite(mean)):
        raise ValueError(
            "X is too large to standardize: the variance of its values "
            "overflows float64 (magnitudes beyond about 1e154); rescale X"
        )
    if standardize is None:
        if _is_constant(scale, mean, n_samples).all():
            raise ValueError(
                "every feature of X is constant (or varies only at the level "
                "of floating-point rounding): there is no information to encode"
            )
        return np.zeros(n_features), np.ones(n_features)
    if standardize == "global":
        mean = np.full(n_features, mean)
        scale = np.full(n_features, scale)
    constant = _is_constant(scale, mean, n_samples)
    if constant.all():
        raise ValueError(
            "every feature of X is constant (or varies only at the level of "
            "floating-point rounding): there is no information to encode"
        )
    return mean, np.where(constant, 1.0, scale)


def _split(est, X, seed, hold_out=True) -> TrainingRows:
    """Training and validation rows (for a RowSource, subsets of it); none are
    held out without ``early_stopping`` (or ``hold_out``)."""
    source = X if isinstance(X, RowSource) else None
    if not (est.early_stopping and hold_out):
        return TrainingRows(X if source is None else RowSubset(source, None), None)
    n = X.shape[0]
    n_val = int(round(est.validation_fraction * n))
    if n_val < 2 or n - n_val < 2:
        raise ValueError(
            f"early_stopping with validation_fraction={est.validation_fraction} "
            f"leaves {n - n_val} training and {n_val} validation samples; both "
            "need at least 2"
        )
    order = np.random.default_rng(seed).permutation(n)
    if source is not None:
        return TrainingRows(
            RowSubset(source, order[n_val:]), RowSubset(source, order[:n_val])
        )
    return TrainingRows(X[order[n_val:]], X[order[:n_val]])
