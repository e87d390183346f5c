"""NoiseInjectedInfoMax: the scikit-learn face of noise-injected Deep InfoMax."""

from __future__ import annotations

import copy
import io
import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from ._augment import (
    make_augmentation,
    nearest_neighbors,
    neighbor_partners,
    principal_projection,
)
from ._metrics import prior_match_score
from ._networks import ConvNet, Encoder, make_critic, mlp
from ._objective import capacity_to_noise_level, make_channel, make_normalization
from ._priors import PRIOR_CONSTRAINTS, resolve_prior
from ._training import TrainConfig, calibrate_norm, estimate_mi, train
from ._validation import (
    Interval,
    StrOptions,
    _fit_context,
    derive_seeds,
    resolve_device,
)

__all__ = ["NoiseInjectedInfoMax", "CapacityWarning"]

#: Capacity per latent component used by ``noise_level="auto"`` (nats), and the cap
#: as a multiple of ``log(batch_size)``. Gaussian: the paper's best-matching MNIST
#: row (d = 2) is C = 2.30, i.e. 1.15 nats per component. Uniform: continuous
#: ``U([0, 1])`` is the small-noise limit, so the noise must be small (2.4 nats per
#: component is eps = 0.05; on the synthetic data of tests/test_infomax.py eps =
#: 0.2 and 0.1 left mass piled at the edges, kNN KL 0.29 and 0.15 nats, against
#: 0.07 at eps = 0.05).
AUTO_CAPACITY = {"gaussian": (1.15, 0.5), "uniform": (2.4, 0.8)}
#: Rows per chunk in ``transform``.
TRANSFORM_CHUNK = 16384
#: Batches used for the final MI estimate.
MI_EVAL_BATCHES = 20

_FITTED = (
    "encoder_",
    "critic_",
    "n_features_in_",
    "feature_names_in_",
    "n_iter_",
    "history_",
    "mutual_info_",
    "capacity_",
    "kl_upper_bound_",
    "noise_level_",
    "mean_",
    "scale_",
    "_n_features_out",
    "_cache",
)


class CapacityWarning(UserWarning):
    """The channel capacity exceeds what InfoNCE can measure with this batch size."""


class NoiseInjectedInfoMax(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Learn latents distributed as a chosen prior by noise-injected Deep InfoMax.

    The encoder output is normalized (BatchNorm without affine parameters for the
    Gaussian prior, a sigmoid for the uniform prior), independent noise of level
    ``noise_level`` is added on one branch, and the InfoNCE bound on the mutual
    information between two views of each sample is maximized. Among normalized
    encoders, the one that passes most information through the noisy channel has
    latents distributed as the prior, so matching needs no discriminator, decoder
    or extra loss (Butakov et al., ICLR 2025).

    Parameters
    ----------
    n_components : int, default=2
        Latent dimension ``d``.

    prior : {"gaussian", "uniform"}, scipy.stats distribution, list or FlowPrior, \
default="gaussian"
        Target distribution of the latents.

        - ``"gaussian"``: ``N(0, I)``; ``"uniform"``: ``U([0, 1]^d)``.
        - A frozen ``scipy.stats`` continuous distribution, e.g.
          ``scipy.stats.expon()``: independent components, each distributed as it.
          A list of them gives one distribution per component (its length must
          equal ``n_components``). Training runs on the Gaussian base and latents
          are mapped by the probability integral transform ``F^{-1}(Phi(z))``.
        - A :class:`FlowPrior` ``(forward, inverse)``, a ``(forward, inverse)``
          tuple, or an object with ``forward`` and ``inverse`` methods (e.g. a
          normalizing-flow ``torch.nn.Module``): an invertible map from ``N(0, I)``
          to the target.

        ``transform`` and ``sample`` return target-space latents; ``score`` maps
        them back to the base. Mutual information is invariant under the map, so
        training is the same as for the base.

    noise_level : float or "auto", default="auto"
        Injected noise: the standard deviation ``sigma`` relative to unit-variance
        latents (Gaussian prior) or the half-width ``eps`` relative to ``[0, 1]``
        latents (uniform prior). Sets the channel capacity
        ``C = d/2 log(1 + 1/sigma^2)`` or ``C = d log(1 + 1/(2 eps))`` nats; see
        :func:`capacity_to_noise_level`. ``"auto"`` picks
        ``C = min(1.15 d, 0.5 log(batch_size))`` for the Gaussian prior (1.15 nats
        per component is the paper's best-matching setting) and
        ``C = min(2.4 d, 0.8 log(batch_size))`` for the uniform prior (uniform
        latents are the small-noise limit; 2.4 nats per component is
        ``eps = 0.05``). InfoNCE cannot measure more than ``log(batch_size)``.
        The uniform prior also wants mild ``input_noise`` (0.05 or less): a sigmoid
        does not force spread, and strong input noise piles latents in the middle.

    encoder : {"mlp", "conv"} or torch.nn.Module, default="mlp"
        ``"mlp"``: fully connected with ``hidden_layer_sizes``. ``"conv"``: the
        authors' small ConvNet for images of ``input_shape``. A module is used as
        the backbone (deep-copied; its weights are the starting point); a linear
        head is added when its output width differs from ``n_components``. The
        normalization layer is always this estimator's.

    hidden_layer_sizes : tuple of int, default=(256, 256)
        Hidden widths of the MLP encoder.

    input_shape : tuple of int or None, default=None
        ``(channels, height, width)`` of the flattened images for
        ``encoder="conv"``; ``None`` means one square channel.

    critic : {"gaussian", "gaussian-adaptive", "separable", "dense"}, \
            default="gaussian"
        Scores ``T(y, e)`` of all ``N x N`` pairs in a batch. ``"gaussian"``: the
        channel's own log density ratio (for the uniform prior, the
        box-over-trapezoid ratio with soft edges), no parameters, ``O(N^2 d)``
        cost; exact when the encoder is invariant to the augmentation.
        ``"gaussian-adaptive"`` (Gaussian prior): the same ratio for the channel
        as seen from the clean branch, using the two views' per-component
        correlation measured on each batch (no gradient, no parameters); it
        equals ``"gaussian"`` at the optimum and stays sound at high capacity,
        where the exact critic's ``1/noise_level^2`` sharpness punishes every
        mismatch between views (digits at 6 nats: MI 4.58 vs 3.66 nats).
        ``"separable"``: two small learned heads and a scaled dot product,
        ``O(N d h + N^2 m)``. ``"dense"``: the authors' MLP on concatenated pairs,
        ``O(N^2 h^2)``: it dominates a training step (about 4 s per step at batch
        512 on 2 CPU cores). Measured costs are in ``benchmarks/RESULTS.md``.

    augmentation : {"gaussian", "neighbors"} or callable, default="gaussian"
        How the two views are made. ``"gaussian"`` is the paper's input channel
        ``sqrt(1 - s^2) x + s xi`` with ``s = input_noise`` on standardized
        features, applied twice to the same sample. ``"neighbors"`` makes the
        second view from one of the sample's ``n_neighbors`` nearest training
        samples (drawn afresh at every step; Euclidean distance on the top 50
        principal components of the input as the encoder sees it, computed once
        at the start of ``fit``), both views through the same input channel.
        The views then share what neighbors share, which on images is mostly the
        class:
        on MNIST at d = 2 the downstream MLP accuracy of the latents rose from
        0.41 to 0.77 in under 3 minutes on one CPU thread and to 0.83 in 8.5
        minutes (``hidden_layer_sizes=(256, 256, 256)``, cosine schedule, 3
        seeds). Matching weakened: the bootstrap Henze-Zirkler mean p stayed
        about 0.41 (0.47 with the paper's views), but the kNN KL to the prior
        rose from 0.03 to about 0.3 nats. No encoder is invariant to a
        neighbor, so the MI stays below the capacity. Above about 3.5 nats of
        capacity use ``critic="gaussian-adaptive"`` with these views. The search costs
        ``O(n^2)``: 18 to 47 s for 60,000 MNIST images on one CPU thread.
        A callable ``(X_batch, generator) -> X_view`` receives float32
        tensors on the training device (standardized when ``standardize`` is set)
        and a ``torch.Generator`` it must draw all randomness from.

    n_neighbors : int, default=10
        Neighbors per sample for ``augmentation="neighbors"`` (ignored otherwise);
        must be smaller than the number of training samples (after the
        validation split with ``early_stopping``).

    input_noise : float in [0, 1), default=0.2
        Strength ``s`` of the input channel of the ``"gaussian"`` and
        ``"neighbors"`` augmentations.

    standardize : {"features", "global"} or None, default="features"
        Input scaling learned in ``fit``: per feature (zero mean, unit variance),
        one mean and scale for all features (suits images), or none.

    batch_size : int, default=512
        Pairs per InfoNCE batch (capped at the training set size).

    max_epochs : int, default=100
        Maximum passes over the training data.

    learning_rate : float, default=1e-3
        Adam step size for the encoder and critic.

    learning_rate_schedule : {"constant", "cosine"}, default="constant"
        ``"cosine"`` anneals the step size from ``learning_rate`` to 0 over
        ``max_epochs`` (set at every step); the schedule assumes the fit runs all
        ``max_epochs``, so early stopping or a stopping callback ends it part way.

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when the validation
        MI estimate has not improved by ``tol`` for ``n_iter_no_change`` epochs;
        the best weights are restored.

    validation_fraction : float in (0, 1), default=0.1

    n_iter_no_change : int, default=10

    tol : float, default=1e-3
        In nats, on the validation MI estimate.

    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, batching, views, noise and the validation
        split through local generators; the global numpy and torch states are left
        untouched.

    verbose : bool, default=False
        Show a progress bar with the loss and MI per epoch.

    callbacks : list of callable or None, default=None
        Each called as ``callback(epoch, logs)`` after every epoch; returning True
        stops training (all callbacks still run that epoch). ``logs`` holds the
        epoch's ``history_`` entry plus ``"encoder"`` and ``"critic"``, the modules
        under training (in train mode, on the training device), e.g. to snapshot
        latents at wall-clock budgets.

    Attributes
    ----------
    encoder_ : torch.nn.Module
        Trained encoder (backbone and normalization) on CPU, in eval mode.

    critic_ : torch.nn.Module
        Trained critic on CPU; absent for the parameter-free ``"gaussian"`` critic.

    n_features_in_ : int

    feature_names_in_ : ndarray of str
        Defined only when ``X`` has string feature names.

    n_iter_ : int
        Epochs run.

    history_ : list of dict
        Per epoch: ``epoch``, ``loss``, ``mi`` (train InfoNCE estimate, nats),
        ``learning_rate`` (at the epoch's last step), ``val_mi`` (with early
        stopping), ``time`` (seconds).

    mutual_info_ : float
        InfoNCE estimate (nats) of the trained model on the training data.

    capacity_ : float
        Channel capacity in nats.

    noise_level_ : float
        The noise level used (resolved from ``"auto"``).

    kl_upper_bound_ : float or None
        ``capacity_ - mutual_info_``: an upper bound on the KL divergence from the
        noise-smoothed latent to the scaled prior (Gaussian prior only).

    mean_, scale_ : ndarray of shape (n_features_in_,)
        Input standardization.

    See Also
    --------
    sklearn.decomposition.PCA : Linear projection, with whitening.

    References
    ----------
    I. Butakov et al., "Efficient Distribution Matching of Representations via
    Noise-Injected Deep InfoMax", ICLR 2025, arXiv:2410.06993.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skdim_dm import NoiseInjectedInfoMax
    >>> X, _ = load_digits(return_X_y=True)
    >>> est = NoiseInjectedInfoMax(n_components=2, max_epochs=5, random_state=0)
    >>> Z = est.fit_transform(X)
    >>> Z.shape
    (1797, 2)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "prior": PRIOR_CONSTRAINTS,
        "noise_level": [
            Interval(Real, 0, None, closed="neither"),
            StrOptions({"auto"}),
        ],
        "encoder": [StrOptions({"mlp", "conv"}), nn.Module],
        "hidden_layer_sizes": [tuple, list],
        "input_shape": ["array-like", None],
        "critic": [StrOptions({"separable", "gaussian", "gaussian-adaptive", "dense"})],
        "augmentation": [StrOptions({"gaussian", "neighbors"}), callable],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "input_noise": [Interval(Real, 0, 1, closed="left")],
        "standardize": [StrOptions({"features", "global"}), None],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "learning_rate_schedule": [StrOptions({"constant", "cosine"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str],
        "random_state": ["random_state", np.random.Generator],
        "verbose": ["verbose"],
        "callbacks": [list, tuple, None],
    }

    def __init__(
        self,
        n_components=2,
        *,
        prior="gaussian",
        noise_level="auto",
        encoder="mlp",
        hidden_layer_sizes=(256, 256),
        input_shape=None,
        critic="gaussian",
        augmentation="gaussian",
        n_neighbors=10,
        input_noise=0.2,
        standardize="features",
        batch_size=512,
        max_epochs=100,
        learning_rate=1e-3,
        learning_rate_schedule="constant",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-3,
        device="auto",
        random_state=None,
        verbose=False,
        callbacks=None,
    ):
        self.n_components = n_components
        self.prior = prior
        self.noise_level = noise_level
        self.encoder = encoder
        self.hidden_layer_sizes = hidden_layer_sizes
        self.input_shape = input_shape
        self.critic = critic
        self.augmentation = augmentation
        self.n_neighbors = n_neighbors
        self.input_noise = input_noise
        self.standardize = standardize
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the encoder on ``X`` (``y`` is ignored). Returns ``self``."""
        self._clear_fitted()
        try:
            return self._fit(X)
        except BaseException:
            # A failed fit never leaves an estimator that looks fitted.
            self._clear_fitted()
            raise

    def _fit(self, X):
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        n_samples, n_features = X.shape
        self._check_params(n_features)
        device = resolve_device(self.device)
        prior = resolve_prior(self.prior, self.n_components)
        seeds = derive_seeds(self.random_state, 6)

        mean, scale = self._standardization(X)
        X_train, X_val = self._split(X, seeds[2])
        self._check_neighbors(X_train.shape[0], X_val is not None)
        batch = min(self.batch_size, X_train.shape[0])
        noise_level = self._resolve_noise_level(batch)
        channel = make_channel(prior.base, noise_level)
        capacity = channel.capacity(self.n_components)
        if capacity > math.log(batch):
            warnings.warn(
                f"capacity {capacity:.2f} nats exceeds log(batch_size) = "
                f"{math.log(batch):.2f}: InfoNCE cannot reach it, so the MI estimate "
                "saturates and matching weakens. Raise noise_level or batch_size.",
                CapacityWarning,
                stacklevel=2,
            )

        encoder, critic = self._build(n_features, channel, prior.base, seeds[0])
        encoder.to(device)
        critic.to(device)
        to_t = lambda a: torch.as_tensor(  # noqa: E731
            ((a - mean) / scale).astype(np.float32), device=device
        )
        X_train_t = to_t(X_train)
        X_val_t = to_t(X_val) if X_val is not None else None
        augment = make_augmentation(self.augmentation, self.input_noise)
        generator = torch.Generator(device=device).manual_seed(seeds[1])
        neighbors, val_partners = self._neighbor_pairs(X_train_t, X_val_t, seeds[5])
        config = TrainConfig(
            batch_size=batch,
            max_epochs=self.max_epochs,
            learning_rate=self.learning_rate,
            learning_rate_schedule=self.learning_rate_schedule,
            early_stopping=self.early_stopping,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            verbose=bool(self.verbose),
            callbacks=tuple(self.callbacks or ()),
        )
        # Modules that draw from torch's global generator (a user's Dropout, say)
        # get a seeded, forked one: reproducible, and the caller's state is kept.
        fork_devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seeds[4])
            result = train(
                encoder,
                critic,
                channel,
                augment,
                X_train_t,
                X_val_t,
                config,
                generator,
                val_seed=seeds[3],
                neighbors=neighbors,
                val_partners=val_partners,
            )
            if result.interrupted:
                warnings.warn(
                    f"fit interrupted after {result.n_iter} epoch(s); keeping the "
                    "weights trained so far",
                    UserWarning,
                    stacklevel=2,
                )
            try:
                calibrate_norm(encoder, X_train_t, max(batch, 4096))
                # The MI estimate uses random rows: the first rows of sorted data
                # would bias it (digits sorted by label: 0.88 vs 1.72 nats).
                eval_gen = torch.Generator(device=device).manual_seed(seeds[3])
                n = X_train_t.shape[0]
                rows = torch.randperm(n, generator=eval_gen, device=device)
                rows = rows[: min(n, MI_EVAL_BATCHES * batch)]
                partners = None
                if neighbors is not None:
                    partners = neighbor_partners(X_train_t, neighbors, rows, eval_gen)
                mutual_info = estimate_mi(
                    encoder,
                    critic,
                    channel,
                    augment,
                    X_train_t[rows],
                    batch,
                    eval_gen,
                    partners,
                )
            except KeyboardInterrupt:
                if not result.interrupted:
                    raise
                # A second interrupt while finishing: keep the weights anyway.
                mutual_info = float("nan")

        if mutual_info < 0:
            warnings.warn(
                f"the final MI estimate is negative ({mutual_info:.3g} nats): training "
                "found no usable information and the latents are likely degenerate. "
                "With the analytic critic a tiny noise_level makes scores scale as "
                "1/noise_level^2 (on MNIST, noise_level=0.001 ended at -124 nats); "
                "raise noise_level, lower learning_rate or use critic='separable'.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.encoder_ = encoder.cpu().eval()
        if any(True for _ in critic.parameters()):
            self.critic_ = critic.cpu().eval()
        self.mean_, self.scale_ = mean, scale
        self.n_iter_ = result.n_iter
        self.history_ = result.history
        self.noise_level_ = noise_level
        self.capacity_ = capacity
        self.mutual_info_ = mutual_info
        self.kl_upper_bound_ = (
            capacity - mutual_info if prior.base == "gaussian" else None
        )
        self._n_features_out = self.n_components
        self._cache = {}
        return self

    def _check_neighbors(self, n_train, has_val):
        k = self.n_neighbors
        if self.augmentation == "neighbors" and n_train <= k:
            raise ValueError(
                f"augmentation='neighbors' with n_neighbors={k} needs more than {k} "
                f"training samples; got {n_train}"
                + (" after the validation split" if has_val else "")
                + ". Lower n_neighbors or pass more samples."
            )

    def _neighbor_pairs(self, X_train, X_val, seed):
        """Neighbor indices of the training rows, and the validation rows' partners.

        Only for ``augmentation="neighbors"``; ``(None, None)`` otherwise. Distances
        are Euclidean on the top principal components of the input as the encoder
        sees it (standardized when ``standardize`` is set).
        """
        if self.augmentation != "neighbors":
            return None, None
        k = self.n_neighbors
        gen = torch.Generator(device=X_train.device).manual_seed(seed)
        proj = principal_projection(
            X_train, *(() if X_val is None else (X_val,)), generator=gen
        )
        neighbors = nearest_neighbors(proj[0], proj[0], k, exclude_self=True)
        if X_val is None:
            return neighbors, None
        val_nbr = nearest_neighbors(proj[1], proj[0], k, exclude_self=False)
        rows = torch.arange(X_val.shape[0], device=X_train.device)
        return neighbors, neighbor_partners(X_train, val_nbr, rows, gen)

    def _clear_fitted(self):
        for name in _FITTED:
            self.__dict__.pop(name, None)

    def _check_params(self, n_features):
        sizes = self.hidden_layer_sizes
        if not (
            isinstance(sizes, (tuple, list))
            and all(isinstance(h, Integral) and h > 0 for h in sizes)
        ):
            raise ValueError(
                f"hidden_layer_sizes must be a tuple of positive ints, got {sizes!r}"
            )
        if self.callbacks is not None and not all(callable(c) for c in self.callbacks):
            raise ValueError(
                "callbacks must be a list of callables (epoch, logs) -> bool"
            )
        if isinstance(self.encoder, str) and self.encoder == "conv":
            shape = self._conv_shape(n_features)
            if int(np.prod(shape)) != n_features:
                raise ValueError(
                    f"input_shape {tuple(shape)} holds {int(np.prod(shape))} values "
                    f"but X has {n_features} features"
                )

    def _conv_shape(self, n_features):
        if self.input_shape is not None:
            shape = tuple(int(s) for s in self.input_shape)
            if len(shape) != 3:
                raise ValueError(
                    f"input_shape must be (channels, height, width), got {shape}"
                )
            return shape
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"encoder='conv' needs input_shape: {n_features} features is not a "
                "square image"
            )
        return (1, side, side)

    def _standardization(self, X):
        n_features = X.shape[1]
        if self.standardize is None:
            return np.zeros(n_features), np.ones(n_features)
        if self.standardize == "global":
            mean = np.full(n_features, X.mean(dtype=np.float64))
            scale = np.full(n_features, X.std(dtype=np.float64))
        else:
            mean = X.mean(axis=0, dtype=np.float64)
            scale = X.std(axis=0, dtype=np.float64)
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        scale = np.where(scale <= tiny, 1.0, scale)
        return mean, scale

    def _split(self, X, seed):
        if not self.early_stopping:
            return X, None
        n = X.shape[0]
        n_val = int(round(self.validation_fraction * n))
        if n_val < 2 or n - n_val < 2:
            raise ValueError(
                f"early_stopping with validation_fraction={self.validation_fraction} "
                f"leaves {n - n_val} training and {n_val} validation samples; both "
                "need at least 2"
            )
        order = np.random.default_rng(seed).permutation(n)
        return X[order[n_val:]], X[order[:n_val]]

    def _resolve_noise_level(self, batch):
        if self.noise_level != "auto":
            return float(self.noise_level)
        per_component, cap = AUTO_CAPACITY[self._base]
        capacity = min(per_component * self.n_components, cap * math.log(batch))
        return capacity_to_noise_level(capacity, self.n_components, self._base)

    @property
    def _base(self):
        return resolve_prior(self.prior, self.n_components).base

    def _build(self, n_features, channel, base, seed):
        """Encoder and critic, initialized from ``seed`` without global RNG side effects."""
        d = self.n_components
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            head = None
            if isinstance(self.encoder, nn.Module):
                backbone = copy.deepcopy(self.encoder).cpu().float()
                width = self._backbone_width(backbone, n_features)
                if width != d:
                    head = nn.Linear(width, d)
            elif self.encoder == "conv":
                backbone = ConvNet(self._conv_shape(n_features), d)
            else:
                backbone = mlp(n_features, self.hidden_layer_sizes, d)
            encoder = Encoder(backbone, make_normalization(base, d), head)
            critic = make_critic(self.critic, d, channel)
        return encoder, critic

    @staticmethod
    def _backbone_width(backbone, n_features):
        was = backbone.training
        backbone.eval()
        with torch.no_grad():
            out = backbone(torch.zeros(2, n_features))
        backbone.train(was)
        if out.ndim != 2 or out.shape[0] != 2:
            raise ValueError(
                "a custom encoder must map (n_samples, n_features) to "
                f"(n_samples, width); it returned shape {tuple(out.shape)}"
            )
        return int(out.shape[1])

    # ------------------------------------------------------------ inference
    def transform(self, X):
        """Latents of ``X``: deterministic, no noise, batch-invariant.

        Computed in the precision of ``X`` (float32 stays float32, anything else
        runs and returns float64) in chunks on the resolved device.
        """
        check_is_fitted(self, "encoder_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        device = self._inference_device()
        # float64 input runs in float64 on the CPU, so results do not depend on how
        # rows are batched; on CUDA the network always runs in float32.
        double = X.dtype != np.float32 and device.type == "cpu"
        dtype = torch.float64 if double else torch.float32
        encoder = self._inference_encoder(device, dtype)
        # Standardize chunk by chunk in the input's precision: no float64 copy of
        # a large float32 input (that copy made batch 65,536 four times slower
        # per row than batch 256).
        mean = self.mean_.astype(X.dtype)
        scale = self.scale_.astype(X.dtype)
        out = np.empty((X.shape[0], self._n_features_out), dtype=X.dtype)
        with torch.no_grad():
            for k in range(0, X.shape[0], TRANSFORM_CHUNK):
                xs = (X[k : k + TRANSFORM_CHUNK] - mean) / scale
                xb = torch.as_tensor(xs, device=device, dtype=dtype)
                out[k : k + TRANSFORM_CHUNK] = encoder(xb).cpu().numpy()
        return resolve_prior(self.prior).to_target(out)

    def _inference_device(self):
        try:
            return resolve_device(self.device)
        except ValueError:
            # A model fitted on a GPU and used where there is none: fall back.
            warnings.warn(
                f"device={self.device!r} is not available here; transforming on the "
                "CPU (set_params(device='cpu') silences this)",
                UserWarning,
                stacklevel=3,
            )
            return torch.device("cpu")

    def _inference_encoder(self, device, dtype):
        if device.type == "cpu" and dtype == torch.float32:
            return self.encoder_
        # Keyed on the weights' version counters, so in-place edits of encoder_
        # (fine-tuning, loading a state dict) never leave a stale copy behind.
        tensors = list(self.encoder_.parameters()) + list(self.encoder_.buffers())
        key = (
            str(device),
            dtype,
            id(self.encoder_),
            tuple(t._version for t in tensors),
        )
        if key not in self._cache:
            self._cache.clear()
            self._cache[key] = copy.deepcopy(self.encoder_).to(device, dtype).eval()
        return self._cache[key]

    def sample(self, n_samples=1, random_state=None):
        """Draw ``n_samples`` latents from the prior, shape ``(n_samples, d)``."""
        check_is_fitted(self, "encoder_")
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        rng = np.random.default_rng(derive_seeds(random_state, 1)[0])
        return resolve_prior(self.prior).sample(int(n_samples), self.n_components, rng)

    def score(self, X, y=None):
        """Distribution match of ``transform(X)`` to the prior; higher is better.

        Minus the k-nearest-neighbour estimate of ``KL(latents || prior)`` in nats
        (0 is a perfect match), so a plain ``GridSearchCV`` over ``noise_level``
        selects the best-matching setting.
        """
        Z = resolve_prior(self.prior).from_target(self.transform(X))
        return prior_match_score(Z, prior=self._base)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ---------------------------------------------------------- persistence
    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        state.pop("_cache", None)
        for name, value in list(state.items()):
            if isinstance(value, nn.Module):
                buf = io.BytesIO()
                torch.save(value, buf)
                state[name] = _TorchBlob(buf.getvalue())
        return state

    def __setstate__(self, state):
        state = dict(state)
        for name, value in list(state.items()):
            if isinstance(value, _TorchBlob):
                state[name] = value.load()
                if name.endswith("_"):
                    state[name].eval()
        if "encoder_" in state:
            state["_cache"] = {}
        super().__setstate__(state)

    def save(self, path):
        """Save to the directory ``path``: ``config.json`` and ``weights.pt``.

        Parameters and fitted scalars go to JSON, network weights and arrays to a
        ``torch.save`` file of tensors, with the ``skdim_dm`` version recorded.
        :meth:`load` reads it back without unpickling any code. A user-supplied
        ``torch.nn.Module`` encoder, a callable augmentation or a ``FlowPrior``
        cannot be rebuilt from JSON and raise ``TypeError``: use ``joblib.dump``
        (or pickle) for such models. Returns the path.
        """
        from ._persistence import save_estimator

        return save_estimator(self, path)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save`; safe on untrusted files.

        Weights are read with ``torch.load(..., weights_only=True)``. Raises
        ``ValueError`` (``ModelFileError``) for a corrupt, incompatible or unsafe
        directory and ``FileNotFoundError`` when ``path`` does not exist.
        """
        from ._persistence import load_estimator

        return load_estimator(cls, path)


class _TorchBlob:
    """A module serialized by ``torch.save``; loads onto the CPU on any machine."""

    def __init__(self, data: bytes):
        self.data = data

    def load(self):
        # Same trust as the surrounding pickle: full modules need weights_only=False.
        return torch.load(io.BytesIO(self.data), map_location="cpu", weights_only=False)
