"""NoiseInjectedInfoMax: the scikit-learn face of noise-injected Deep InfoMax."""

from __future__ import annotations

import contextlib
import copy
import math
import threading
import warnings
from dataclasses import dataclass
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
from threadpoolctl import threadpool_limits
from torch import nn

from ._core.channels import MAX_NOISE_LEVEL, MIN_NOISE_LEVEL
from ._core.distributed import Shard, resolve_shard
from ._core.heap import keep_heap
from ._core.networks import CRITICS, Networks, build_networks, conv_input_shape
from ._core.networks import network_params as network_params_of
from ._core.sources import (
    RowSource,
    RowSubset,
    StreamedRows,
    as_source,
    check_finite,
    is_streamed,
    moments,
    update_moments,
)
from ._core.training import TrainConfig, final_mi, optimizer_arrays, train
from ._core.views import VIEWS, Views, make_views
from ._fitted import FITTED as _FITTED
from ._gaussianize import Gaussianizer
from ._metrics import joint_match, prior_match_score
from ._persistence import (
    blobs_to_modules,
    load_estimator,
    modules_to_blobs,
    save_estimator,
)
from ._priors import PRIOR_CONSTRAINTS, Prior, resolve_prior
from ._settings import resolve_settings
from ._validation import (
    FitSeeds,
    Interval,
    StrOptions,
    _fit_context,
    derive_seeds,
    import_lazy_torch_modules,
    resolve_device,
)

__all__ = ["NoiseInjectedInfoMax", "CapacityWarning"]

#: Largest ``learning_rate``: Adam's step is about the learning rate itself, and
#: torch refuses rates that overflow float32.
MAX_LEARNING_RATE = 10.0
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
#: ``n_threads="auto"`` runs MLP encoders up to this hidden width on one thread.
AUTO_ONE_THREAD_WIDTH = 512
#: Rows per chunk in ``transform``.
TRANSFORM_CHUNK = 16384

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
def _thread_limit(n_threads):
    """Run with ``n_threads`` torch and BLAS threads; the settings are restored
    when the last overlapping call ends."""
    if n_threads is None:
        yield
        return
    with _THREAD_LIMITS.limit(int(n_threads)):
        yield


def _denormals_flushed() -> bool:
    """Whether this thread's CPU flushes subnormal floats to zero (FTZ/DAZ)."""
    return bool((torch.tensor(1e-39, dtype=torch.float32) * 2.0).item() == 0.0)


@contextlib.contextmanager
def _flush_denormals():
    """Flush subnormal floats to zero in this thread while training, as
    ``torch.set_flush_denormal(True)``, and restore the previous mode afterwards.

    The analytic critics' logits scale as ``1 / noise_level^2``, so the softmax
    of a small-noise fit underflows into subnormal floats, which x86 CPUs handle
    in microcode: a 480-row MNIST fit with ``noise_level=0.1`` took 48 s instead
    of 5 s (200 full-batch steps, one thread). Values below ``1.2e-38`` change
    no InfoNCE estimate. The mode is per thread; with ``n_threads="auto"`` an MLP
    trains in the calling thread."""
    before = _denormals_flushed()
    if before or not torch.set_flush_denormal(True):
        yield  # already on, or a CPU without the mode
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextlib.contextmanager
def _global_rng_for_user_modules(encoder, device, seed):
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


@dataclass
class _FitPlan:
    """What ``fit`` resolved from the data and parameters before building anything."""

    X_train: np.ndarray | RowSubset
    X_val: np.ndarray | RowSubset | None
    mean: np.ndarray
    scale: np.ndarray
    prior: Prior
    device: torch.device
    seeds: FitSeeds
    batch_size: int
    capacity: float
    views: Views
    #: The keyword arguments of :func:`build_networks` (all but the seed).
    network_params: dict
    #: This process's part in a data-parallel fit, or None.
    shard: Shard | None = None
    #: Running moments of the input (``count``, ``mean``, ``m2``) for partial_fit.
    moments: dict | None = None
    #: TrainConfig fields that differ from the parameters (partial_fit).
    train_overrides: dict | None = None
    #: The effective settings, "auto" resolved (:func:`resolve_settings`).
    settings: dict | None = None


class CapacityWarning(UserWarning):
    """The channel capacity exceeds what InfoNCE can measure with this batch size."""


class MatchWarning(UserWarning):
    """The fitted latents are far from the prior by the graded joint measure."""


#: Diagnostics after fit: at most this many rows are encoded and measured, and
#: none below ``DIAGNOSTIC_MIN_ROWS`` (too few to tell anything from the floor).
DIAGNOSTIC_MAX_ROWS = 2000
DIAGNOSTIC_MIN_ROWS = 200
#: ``MatchWarning`` when a ratio exceeds this multiple of its exact-sample 95%
#: quantile.
DIAGNOSTIC_TOLERANCE = 2.0


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
        ``eps = 0.05``). InfoNCE cannot measure more than ``log(batch_size)``
        per bound; with ``objective="sliced"`` each component has its own bound
        and ``"auto"`` is 0.3 nats per component (``C = 0.3 d``).
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

    critic : {"gaussian", "gaussian-adaptive", "student", "separable", "dense"}, \
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
        mismatch between views (measured on digits and MNIST in
        ``benchmarks/RESULTS.md``, "The adaptive analytic critic at high
        capacity"). ``"separable"``: two small learned heads and a scaled dot
        product, ``O(N d h + N^2 m)``. ``"dense"``: the authors' MLP on
        concatenated pairs, ``O(N^2 h^2)``: it dominates a training step. The
        measured cost per step of each critic is in ``benchmarks/RESULTS.md``
        ("Throughput").
        ``"student"`` (Gaussian prior): the exact critic with its Gaussian kernel
        replaced by a heavy-tailed Student-t kernel of the same scale (5 degrees
        of freedom); with ``augmentation="neighbors"`` it keeps classes apart
        where the Gaussian kernel crowds them (see ``benchmarks/RESULTS.md``).

    objective : {"auto", "joint", "sliced"}, default="auto"
        ``"auto"`` picks ``"sliced"`` for a Gaussian-based prior with more than
        two components and ``"joint"`` otherwise, and with it the configuration
        that every other ``"auto"`` parameter takes (``settings_`` holds the
        result; see Notes). ``"joint"``: one InfoNCE bound on the mutual information of the whole
        latent vector through the noisy channel, the paper's objective; its
        capacity is capped by ``log(batch_size)``. ``"sliced"`` (Gaussian prior,
        critic ``"gaussian"`` or ``"student"``): at every step the latents are
        rotated by a random orthogonal matrix and each coordinate gets its own
        one-dimensional bound through its own channel; the bounds are summed.
        Each slice's capacity is capped separately, so the total is not, and a
        law whose every one-dimensional projection is Gaussian is jointly
        Gaussian. ``mutual_info_`` is then the sum of the slices' estimates and
        ``kl_upper_bound_`` bounds the summed KL of the noise-smoothed slices.

    whiten : bool or "auto", default="auto"
        ``"auto"``: True with the sliced objective, False otherwise.
        Gaussian prior: whiten the encoder output (zero mean, identity
        covariance, by batch Cholesky whitening while training and the exact
        statistics of the training set after it) instead of standardizing each
        component (batch normalization), so that components are decorrelated.

    match_weight : float >= 0 or "auto", default="auto"
        Weight of a joint-matching term added to the loss: the Epps-Pulley
        distance (between the empirical characteristic function and the
        prior's) of the clean latents of each batch projected on a fresh random
        orthonormal frame, times ``n_components``, as LeJEPA's SIGReg
        regularizes random projections (Balestriero and LeCun, 2025). A law
        whose every projection matches is the prior (Cramer-Wold), so the term
        pulls the joint law of the latents themselves toward ``N(0, I)``; the
        InfoMax bound alone sees them only through the noise, which at the
        sliced objective's low capacity per component hides most of their
        shape. ``0`` turns it off; ``"auto"``: ``AUTO_SLICED["match_weight"]``
        with the sliced objective and a Gaussian-based prior, 0 otherwise. Larger
        weights match more closely and keep less (``benchmarks/RESULTS.md``,
        "Defaults"). Logged per epoch as ``history_[i]["match"]``.

    radial_weight : float >= 0 or "auto", default="auto"
        Weight of a radial matching term added to the loss: the Epps-Pulley
        distance to ``N(0, 1)`` of the Wilson-Hilferty normal score of
        ``||z||^2`` against ``chi2(n_components)`` for the clean latents of each
        batch, times ``n_components``. Random projections see the law of the
        norm only weakly (a scale mixture of Gaussians has nearly Gaussian
        projections), and without this term the held-out ``||z||^2`` fails its
        chi-square test. ``0`` turns it off; ``"auto"``:
        ``AUTO_SLICED["radial_weight"]`` with the sliced objective and a
        Gaussian-based prior, 0 otherwise. Logged per epoch as
        ``history_[i]["radial"]``.

    gaussianize : int, default=0
        Gaussian prior: after training, fit a :class:`Gaussianizer` with this
        many layers on the training latents and apply it in ``transform``
        (0 turns it off). The map is invertible, so it changes no information
        the latents carry; it removes the non-Gaussianity the objective leaves
        at scales finer than its noise, which an InfoNCE bound through a noisy
        channel cannot see. This is the exact-statistics step that ``whiten``
        does for the covariance, carried to the whole law; the fitted map is
        ``gaussianizer_``. With ``partial_fit`` it is refitted at every call on
        that call's rows.

    augmentation : {"auto", "gaussian", "neighbors"} or callable, default="auto"
        How the two views are made. ``"auto"``: ``"neighbors"`` with the sliced
        objective and a Gaussian-based prior, ``"gaussian"`` otherwise. ``"gaussian"`` is the paper's input channel
        ``sqrt(1 - s^2) x + s xi`` with ``s = input_noise`` on standardized
        features, applied twice to the same sample. ``"neighbors"`` makes the
        second view from one of the sample's ``n_neighbors`` nearest training
        samples (drawn afresh at every step; Euclidean distance on the top 50
        principal components of the input as the encoder sees it, computed once
        at the start of ``fit``), both views through the same input channel.
        The views then share what neighbors share, which on images is mostly the
        class: the latents keep much more class information and match the prior
        less closely (MNIST accuracies, matching scores and times in
        ``benchmarks/RESULTS.md``, "Neighbor views"). No encoder is invariant to
        a neighbor, so the MI stays below the capacity. Above about 3.5 nats of
        capacity use ``critic="gaussian-adaptive"`` with these views. The search
        costs ``O(n^2)`` time, once per fit.
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

    batch_size : int or "auto", default="auto"
        Pairs per InfoNCE batch (capped at the training set size). ``"auto"``:
        256 with the sliced configuration (each slice's bound is capped by
        ``log(256) = 5.5`` nats, far above its capacity, and a step costs a
        quarter of 512's in the critic), 512 otherwise.

    max_steps : int, None or "auto", default="auto"
        ``"auto"``: ``AUTO_SLICED["max_steps"]`` with the sliced configuration
        (``None`` in ``partial_fit``), ``None`` otherwise. When set, training runs exactly this many optimizer steps, whatever the
        data size (``max_epochs`` is then ignored, and the cosine schedule spans
        the steps): small data sets get enough updates, large ones a bounded
        budget.

    max_epochs : int, default=100
        Maximum passes over the training data.

    max_time : float > 0 or None, default=None
        Wall-clock budget of the training loop in seconds: training stops at the
        first step that ends past it (``None``: no budget). The cosine schedule
        then anneals by whichever is further along, the steps or the time, so a
        budget shorter than the step count still ends at a small step size. The
        number of steps taken depends on the machine's speed, so a fit that hits
        its budget is not reproducible step for step; ``n_steps_`` says how many
        it took. In a data-parallel fit the budget is checked at the end of each
        epoch, on all ranks together, and the schedule follows the steps only.

    learning_rate : float, default=1e-3
        Adam step size for the encoder and critic.

    learning_rate_schedule : {"auto", "constant", "cosine"}, default="auto"
        ``"auto"``: ``"cosine"`` with the sliced configuration, ``"constant"``
        otherwise and in ``partial_fit``.
        ``"cosine"`` anneals the step size from ``learning_rate`` to 0 over
        ``max_epochs`` (over ``max_steps`` when that is set; set at every step);
        the schedule assumes the fit runs to the end, so early stopping or a
        stopping callback ends it part way.

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

    n_threads : int, "auto" or None, default="auto"
        Torch (and BLAS) threads used inside ``fit`` and ``transform`` on the
        CPU; the previous settings are restored afterwards. ``"auto"`` uses one
        thread for the MLP encoder with hidden widths up to 512, whose matrix
        products are too small to split profitably (on a busy 2-core machine the
        README snippet took 38 to 68 s with two threads and 13 s with one) and
        leaves the settings alone otherwise; ``None`` never changes them. The
        count changes how float sums are split, so results agree only to float
        rounding at first, and training amplifies the difference: with 1
        against 2 threads, latents differed by up to 3.8e-7 after 2 epochs of
        a small fit, 7e-3 after 20 epochs and 1.1 (median 0.036) after the
        default 100 epochs on digits. Set ``n_threads`` and ``random_state``
        for repeatable results. Torch's thread count is process-wide, so fits
        running in several Python threads at once share it; the settings from
        before the first of them are restored when the last one ends.

    verbose : bool, default=False
        Show a progress bar with the loss and MI per epoch.

    callbacks : list of callable or None, default=None
        Each called as ``callback(epoch, logs)`` after every epoch; returning True
        stops training (all callbacks still run that epoch). ``logs`` holds the
        epoch's ``history_`` entry plus ``"encoder"`` and ``"critic"``, the modules
        under training (in train mode, on the training device), e.g. to snapshot
        latents at wall-clock budgets.

    distributed : "auto" or bool, default="auto"
        Data-parallel training when the script runs as several processes
        (``torchrun --nproc_per_node K``: ``WORLD_SIZE`` > 1, or an initialized
        ``torch.distributed`` process group of more than one process). Every
        process must call ``fit`` with the same data and parameters; each takes
        its share of every batch and runs the encoder on it; the rest of the
        step (normalization statistics, critic, noise, the InfoNCE negatives)
        covers the whole batch, so each step takes the gradient one process
        would on the same batch, and every process ends with the same fitted
        model (on the CPU). A process group
        is initialized from the environment when none exists (NCCL on CUDA,
        gloo on the CPU). ``"auto"``: data-parallel exactly then; ``True``:
        raise unless launched so; ``False``: always train in this process alone
        (e.g. a fit run on one rank only). See the README, "Scaling out".

    Attributes
    ----------
    encoder_ : torch.nn.Module
        Trained encoder (backbone and normalization) on CPU, in eval mode.

    critic_ : torch.nn.Module
        Trained critic on CPU; absent for the parameter-free ``"gaussian"`` critic.

    n_features_in_ : int

    feature_names_in_ : ndarray of str
        Defined only when ``X`` has string feature names.

    n_steps_ : int
        Optimizer steps taken.

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
        **noise-smoothed** latent ``sqrt(1 - p^2) f(X) + p xi`` to the prior
        (Gaussian prior only; per slice, summed, with the sliced objective). It
        says nothing about the clean latents ``f(X)`` at scales finer than the
        noise: at the low capacities the defaults use, a small value is
        compatible with latents far from the prior. Judge the latents themselves
        with ``joint_match_`` or :func:`skdim_dm.metrics.joint_match`.

    joint_match_ : dict or None
        The graded joint measure of the fitted latents
        (:func:`~skdim_dm.metrics.joint_match`: sliced, radial and covariance
        ratios to exact prior samples of the same size, with their 95%
        quantiles), measured at the end of ``fit`` on the validation rows when
        ``early_stopping`` holds some out (``"held_out": True``), else on up to
        2,000 training rows, which flatter the fit; ``None`` with fewer than
        200 rows, row-source input, or after ``partial_fit``. A
        ``MatchWarning`` is raised when a ratio exceeds twice its 95% quantile.

    settings_ : dict
        The effective ``objective``, ``whiten``, ``augmentation``,
        ``match_weight``, ``radial_weight``, ``max_steps`` and
        ``learning_rate_schedule``, with
        every ``"auto"`` resolved (see Notes).

    mean_, scale_ : ndarray of shape (n_features_in_,)
        Input standardization.

    n_samples_seen_ : int
        Rows that the standardization statistics were computed from (all of
        ``X`` for ``fit``; the sum over calls for :meth:`partial_fit`).

    See Also
    --------
    sklearn.decomposition.PCA : Linear projection, with whitening.
    Gaussianizer : Post-hoc joint Gaussianization, e.g. after PCA or UMAP.

    Notes
    -----
    The ``"auto"`` defaults resolve together (``settings_`` holds the result):

    The sliced configuration applies to a Gaussian-based prior with more than two
    components, the joint (paper's) one otherwise:

    ==========================  ===================  ======================
    setting                     sliced               joint
    ==========================  ===================  ======================
    ``objective``               ``"sliced"``         ``"joint"``
    ``whiten``                  True                 False
    ``augmentation``            ``"neighbors"``      ``"gaussian"``
    ``match_weight``            30                   0
    ``radial_weight``           7.5                  0
    ``batch_size``              256                  512
    ``max_steps``               600                  None (``max_epochs``)
    ``learning_rate_schedule``  ``"cosine"``         ``"constant"``
    ==========================  ===================  ======================

    Set ``objective="joint"`` for the paper's configuration at any dimension;
    any parameter given explicitly overrides its ``"auto"`` value. Measured on
    held-out latents against ``PCA(d, whiten=True)`` and PCA followed by
    Gaussianization in ``benchmarks/RESULTS.md``, "Defaults"; the recipes for
    images at d = 2 and when a two-stage pipeline is the better choice are in
    the README, "Choosing settings".

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
        "n_components": [Interval(Integral, 1, MAX_WIDTH, closed="both")],
        "prior": PRIOR_CONSTRAINTS,
        "noise_level": [
            Interval(Real, MIN_NOISE_LEVEL, MAX_NOISE_LEVEL, closed="both"),
            StrOptions({"auto"}),
        ],
        "encoder": [StrOptions({"mlp", "conv"}), nn.Module],
        "hidden_layer_sizes": [tuple, list],
        "input_shape": ["array-like", None],
        "critic": [StrOptions(set(CRITICS))],
        "objective": [StrOptions({"auto", "joint", "sliced"})],
        "whiten": ["boolean", StrOptions({"auto"})],
        "match_weight": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "radial_weight": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "gaussianize": [Interval(Integral, 0, None, closed="left")],
        "augmentation": [StrOptions({"auto", *VIEWS}), callable],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "input_noise": [Interval(Real, 0, 1, closed="left")],
        "standardize": [StrOptions({"features", "global"}), None],
        "batch_size": [
            Interval(Integral, 2, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "max_steps": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, MAX_LEARNING_RATE, closed="right")],
        "learning_rate_schedule": [StrOptions({"auto", "constant", "cosine"})],
        "early_stopping": ["boolean"],
        "max_time": [Interval(Real, 0, None, closed="neither"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str],
        "random_state": ["random_state", np.random.Generator],
        "n_threads": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
        "verbose": ["verbose"],
        "callbacks": [list, tuple, None],
        "distributed": [StrOptions({"auto"}), "boolean"],
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
        objective="auto",
        whiten="auto",
        match_weight="auto",
        radial_weight="auto",
        gaussianize=0,
        augmentation="auto",
        n_neighbors=10,
        input_noise=0.2,
        standardize="features",
        batch_size="auto",
        max_steps="auto",
        max_epochs=100,
        max_time=None,
        learning_rate=1e-3,
        learning_rate_schedule="auto",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-3,
        device="auto",
        random_state=None,
        n_threads="auto",
        verbose=False,
        callbacks=None,
        distributed="auto",
    ):
        self.n_components = n_components
        self.prior = prior
        self.noise_level = noise_level
        self.encoder = encoder
        self.hidden_layer_sizes = hidden_layer_sizes
        self.input_shape = input_shape
        self.critic = critic
        self.objective = objective
        self.whiten = whiten
        self.match_weight = match_weight
        self.radial_weight = radial_weight
        self.gaussianize = gaussianize
        self.augmentation = augmentation
        self.n_neighbors = n_neighbors
        self.input_noise = input_noise
        self.standardize = standardize
        self.batch_size = batch_size
        self.max_steps = max_steps
        self.max_epochs = max_epochs
        self.max_time = max_time
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose
        self.callbacks = callbacks
        self.distributed = distributed

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the encoder on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), np.memmap or Dataset
            Training data; float32 data is trained on as is, anything else is
            converted to float64 first (the networks run in float32). A
            ``np.memmap`` or a map-style ``torch.utils.data.Dataset`` of rows is
            not copied: statistics, checks and the neighbor search take passes
            over row chunks, and each batch's rows are read when it is drawn
            (the result equals that of the same data in memory; the memory used
            is measured in ``benchmarks/RESULTS.md``, "Scaling out").

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : NoiseInjectedInfoMax
            The fitted estimator.

        Raises
        ------
        ValueError
            For invalid data or parameters, before anything is built or trained.
        FloatingPointError
            When the loss becomes non-finite; the estimator is left unfitted.
        KeyboardInterrupt
            When training is interrupted (Ctrl-C, or a callback raising it): the
            weights trained so far are kept, the estimator is fitted with them,
            and the interrupt propagates so that the caller stops too.
        """
        self._clear_fitted()
        try:
            with (
                _thread_limit(self._threads()),
                _flush_denormals(),
                keep_heap(not is_streamed(X)),
            ):
                result = self._fit(X)
        except BaseException:
            # A failed fit never leaves an estimator that looks fitted.
            self._clear_fitted()
            raise
        if result.interrupted:
            raise KeyboardInterrupt(
                f"fit interrupted after {result.n_iter} epoch(s); the weights "
                "trained so far are kept"
            )
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train on one more chunk of a stream: one pass over ``X``.

        The semantics follow scikit-learn's mini-batch estimators
        (``SGDClassifier``, ``MiniBatchKMeans``, ``IncrementalPCA``):

        - **First call** (unfitted estimator): exactly ``fit(X)`` with one pass
          over ``X`` (``max_epochs=1``, no ``max_steps``, no early stopping):
          parameters are checked, ``noise_level`` is resolved, the networks are
          built and the standardization statistics are those of ``X``.
        - **Later calls** take one more pass over their ``X`` in batches of
          ``batch_size`` (``len(X) // batch_size`` steps, at least one), from
          where the previous call stopped. Kept between calls: the weights,
          Adam's moments and step count (also through ``save``/``load`` and
          pickling), the standardization statistics as a running mean and
          variance of every row seen (as ``StandardScaler.partial_fit`` keeps
          them: each call standardizes its rows by the statistics including
          them, and ``mean_``/``scale_`` are those of all rows seen),
          ``n_samples_seen_``, and the counters: ``n_steps_`` adds up,
          ``n_iter_`` and ``history_`` get one entry per call.
        - **Not kept**: the views. With ``augmentation="neighbors"`` each call
          searches neighbors among its own rows (so it needs more than
          ``n_neighbors`` of them). The normalization's inference statistics and
          ``mutual_info_`` are computed on the latest call's rows.
        - **Fixed by the first call**: ``n_components``, ``prior``,
          ``noise_level``, ``encoder``, ``hidden_layer_sizes``, ``input_shape``,
          ``critic``, ``objective``, ``whiten`` and ``standardize``; changing one
          raises ``ValueError`` (call ``fit`` to start over). The others may change between calls;
          ``max_epochs``, ``max_steps`` and the early-stopping settings are
          ignored, and ``learning_rate_schedule`` must be ``"constant"``.
        - **Randomness**: each call draws from seeds derived from
          ``random_state`` and the number of calls so far, so a sequence of calls
          on the same chunks is reproducible.
        - After ``fit``, ``partial_fit`` continues from the fitted weights and
          statistics with a fresh optimizer; ``fit`` always starts over.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), np.memmap or Dataset
            The next chunk (at least 2 rows), read as ``fit`` reads ``X``.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : NoiseInjectedInfoMax
            The estimator, trained one pass further.

        Raises
        ------
        ValueError
            For invalid data or parameters, or a parameter fixed by the first
            call that has changed; the estimator is left as it was.
        KeyboardInterrupt
            When the call is interrupted; the estimator is left as it was
            before the call (unfitted, for the first call).

        See Also
        --------
        fit : Train from scratch on all of ``X`` (also a ``np.memmap`` or a
            ``Dataset`` larger than memory).

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_digits
        >>> from skdim_dm import NoiseInjectedInfoMax
        >>> X, _ = load_digits(return_X_y=True)
        >>> est = NoiseInjectedInfoMax(batch_size=128, random_state=0)
        >>> for chunk in np.array_split(X, 4):
        ...     est = est.partial_fit(chunk)
        >>> est.n_iter_, est.n_samples_seen_
        (4, 1797)
        """
        first = not hasattr(self, "encoder_")
        if first:
            self._clear_fitted()
        try:
            with (
                _thread_limit(self._threads()),
                _flush_denormals(),
                keep_heap(not is_streamed(X)),
            ):
                if first:
                    self._fit(X, partial=True)
                else:
                    self._fit_more(X)
            return self
        except BaseException:
            if first:
                self._clear_fitted()
            raise

    def _fit_more(self, X):
        """A later partial_fit call: one pass over ``X`` from the current state,
        trained on copies and stored in one step at the end, so that a failure
        or an interrupt leaves the estimator as it was."""
        device = resolve_device(self.device)
        shard = resolve_shard(self.distributed, device)
        if shard is None:
            plan = self._plan_more(X, device, None)
        else:
            try:
                plan = self._plan_more(X, shard.device, shard)
            except Exception as exc:
                shard.agree(exc)
                raise
            shard.agree(None)
        import_lazy_torch_modules()
        built = build_networks(seed=plan.seeds.weights, **plan.network_params)
        critic = (
            copy.deepcopy(self.critic_) if hasattr(self, "critic_") else built.critic
        )
        nets = Networks(copy.deepcopy(self.encoder_), critic, built.channel)
        views = self._fit_views(plan)
        result, mutual_info = self._train(nets, views, plan)
        fitted = self._fitted_state(nets, views, plan, result, mutual_info)
        for entry in fitted["history_"]:
            entry["epoch"] += self.n_iter_
        fitted["n_iter_"] += self.n_iter_
        fitted["n_steps_"] += self.n_steps_
        fitted["history_"] = self.history_ + fitted["history_"]
        self._store(fitted)

    def _plan_more(self, X, device, shard) -> _FitPlan:
        X = self._validated(X, reset=False, min_samples=2)
        self._check_params(X.shape[1])
        changed = [
            name
            for name, value in self._structure_params().items()
            if self._structure.get(name) != value
        ]
        if changed:
            raise ValueError(
                f"{changed} changed since the networks were built; partial_fit "
                "continues the same model: restore them, or call fit to start over"
            )
        if self.learning_rate_schedule not in ("constant", "auto"):
            raise ValueError(
                "partial_fit has no horizon to anneal over: use "
                "learning_rate_schedule='constant' (or fit)"
            )
        count, mean, m2 = self._input_moments
        previous = {"count": count[0], "mean": mean, "m2": m2}
        if self.standardize == "global":
            previous = {k: v if k == "count" else v[0] for k, v in previous.items()}
        mean, scale, raw = self._standardization(X, previous)
        seeds = FitSeeds.derive(self.random_state, call=self.n_iter_)
        settings = resolve_settings(
            self.get_params(deep=False), self.prior_.base.gaussian, partial=True
        )
        views = make_views(
            settings["augmentation"], self.input_noise, n_neighbors=self.n_neighbors
        )
        views.check_n_samples(X.shape[0])
        batch = min(settings["batch_size"], X.shape[0])
        self._check_batch(batch, X.shape[0])
        if shard is not None:
            self._check_shards(shard, X, mean, scale, batch)
        network_params = network_params_of(
            self.get_params(deep=False),
            settings,
            self.n_features_in_,
            self.prior_.base.name,
            self.noise_level_,
        )
        adam = None
        if hasattr(self, "_adam_moments"):
            adam = (self._adam_moments, self._adam_steps, self._adam_index)
        overrides = dict(
            max_epochs=1, max_steps=None, early_stopping=False, optimizer_state=adam
        )
        X_train = RowSubset(X, None) if isinstance(X, RowSource) else X
        return _FitPlan(
            X_train,
            None,
            mean,
            scale,
            self.prior_,
            device,
            seeds,
            batch,
            self.capacity_,
            views,
            network_params,
            shard,
            raw,
            overrides,
            settings,
        )

    def _structure_params(self) -> dict:
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

        params = self.get_params(deep=False)
        return {
            name: key(value)
            for name, value in params.items()
            if name not in PARTIAL_FIT_MUTABLE
        }

    def _fit(self, X, partial=False):
        """Fit from scratch; returns the training result (``interrupted`` when
        ``fit`` was interrupted: the weights trained so far are stored)."""
        plan = self._plan(X, partial)
        import_lazy_torch_modules()
        nets = build_networks(seed=plan.seeds.weights, **plan.network_params)
        views = self._fit_views(plan)
        result, mutual_info = self._train(nets, views, plan)
        self._store(self._fitted_state(nets, views, plan, result, mutual_info))
        if not partial:
            self.joint_match_ = self._diagnose(plan)
        return result

    def _diagnose(self, plan: _FitPlan) -> dict | None:
        """The graded joint measure (:func:`~skdim_dm.metrics.joint_match`) of
        the fitted latents, on the validation rows when ``early_stopping`` held
        some out, else on training rows (up to ``DIAGNOSTIC_MAX_ROWS`` of either);
        a ``MatchWarning`` names what helps when a view is far from its floor."""
        held_out = plan.X_val is not None
        rows = plan.X_val if held_out else plan.X_train
        if isinstance(rows, RowSubset) or rows.shape[0] < DIAGNOSTIC_MIN_ROWS:
            return None
        if rows.shape[0] > DIAGNOSTIC_MAX_ROWS:
            pick = np.random.default_rng(plan.seeds.evaluation).choice(
                rows.shape[0], DIAGNOSTIC_MAX_ROWS, replace=False
            )
            rows = rows[np.sort(pick)]
        # In the base's coordinates (N(0, I) or U([0,1]^d)), where the floor is.
        Z = plan.prior.from_target(self._transform(rows))
        result = joint_match(Z, plan.prior.base.name, n_directions=128, n_reference=8)
        report = {k: float(v) for k, v in result._asdict().items()}
        report.update(rows=int(Z.shape[0]), held_out=held_out)
        far = [
            view
            for view in ("sliced", "radial", "cov")
            if report[f"{view}_ratio"]
            > DIAGNOSTIC_TOLERANCE * report[f"{view}_ratio_q95"]
        ]
        if far:
            where = "held-out" if held_out else "training"
            warnings.warn(
                f"the {where} latents are far from the prior: "
                + ", ".join(f"{v}_ratio {report[f'{v}_ratio']:.2f}" for v in far)
                + " (1.0 is an exact sample; "
                + ", ".join(f"{report[f'{v}_ratio_q95']:.2f}" for v in far)
                + " its 95% quantile). The defaults (objective='auto') match "
                "jointly above two components; raise match_weight (the sliced "
                "view) or radial_weight (the radial view) to match more closely, "
                "or set gaussianize=10 (see joint_match_).",
                MatchWarning,
                stacklevel=5,
            )
        return report

    def _plan(self, X, partial=False) -> _FitPlan:
        """Validate the data and parameters and resolve everything ``fit`` needs,
        before anything is built. In a data-parallel fit every process checks
        its own input, and all raise when one fails."""
        device = resolve_device(self.device)
        shard = resolve_shard(self.distributed, device)
        if shard is None:
            return self._plan_local(X, device, None, partial)
        try:
            plan = self._plan_local(X, shard.device, shard, partial)
        except Exception as exc:
            shard.agree(exc)
            raise
        shard.agree(None)
        return plan

    def _plan_local(self, X, device, shard, partial) -> _FitPlan:
        X = self._validated(X, reset=True, min_samples=2)
        n_features = X.shape[1]
        self._check_params(n_features)
        if partial and self.learning_rate_schedule not in ("constant", "auto"):
            raise ValueError(
                "partial_fit has no horizon to anneal over: use "
                "learning_rate_schedule='constant' (or fit)"
            )
        prior = resolve_prior(self.prior, self.n_components)
        base = prior.base
        seeds = FitSeeds.derive(self.random_state)
        if self.gaussianize and not base.gaussian:
            raise ValueError("gaussianize needs the Gaussian prior")
        if self.objective == "sliced" and not base.gaussian:
            raise ValueError(
                "objective='sliced' needs the Gaussian prior: a law whose every "
                "projection is Gaussian is Gaussian, while projections of a "
                "uniform law are not uniform"
            )
        mean, scale, raw = self._standardization(X)
        X_train, X_val = self._split(X, seeds.split, hold_out=not partial)
        if isinstance(X, RowSource):
            X_train = RowSubset(X, X_train)
            X_val = None if X_val is None else RowSubset(X, X_val)
        settings = resolve_settings(self.get_params(deep=False), base.gaussian, partial)
        views = make_views(
            settings["augmentation"], self.input_noise, n_neighbors=self.n_neighbors
        )
        views.check_n_samples(X_train.shape[0], after_split=X_val is not None)
        batch = min(settings["batch_size"], X_train.shape[0])
        self._check_batch(batch, X_train.shape[0])
        if shard is not None:
            self._check_shards(shard, X, mean, scale, batch)
        sliced = settings["objective"] == "sliced"
        if self.noise_level == "auto":
            capacity = base.auto_capacity(self.n_components, batch, sliced=sliced)
            noise_level = base.noise_level(capacity, self.n_components)
        else:
            noise_level = float(self.noise_level)
        capacity = base.capacity(noise_level, self.n_components)
        # The sliced objective has one bound per component, the joint one in all.
        per_bound = capacity / self.n_components if sliced else capacity
        if per_bound > math.log(batch):
            warnings.warn(
                f"capacity {per_bound:.2f} nats per InfoNCE bound exceeds "
                f"log(batch_size) = {math.log(batch):.2f}: InfoNCE cannot reach it, "
                "so the MI estimate saturates and matching weakens. Raise "
                "noise_level or batch_size.",
                CapacityWarning,
                stacklevel=5,
            )
        network_params = network_params_of(
            self.get_params(deep=False), settings, n_features, base.name, noise_level
        )
        overrides = None
        if partial:
            overrides = dict(max_epochs=1, max_steps=None, early_stopping=False)
        return _FitPlan(
            X_train,
            X_val,
            mean,
            scale,
            prior,
            device,
            seeds,
            batch,
            capacity,
            views,
            network_params,
            shard,
            raw,
            overrides,
            settings,
        )

    def _check_batch(self, batch, n_rows):
        """``whiten=True`` whitens each batch by its own covariance, which has
        rank at most ``batch - 1``."""
        if self.whiten and batch <= self.n_components:
            raise ValueError(
                f"whiten=True whitens each batch by its covariance, which needs "
                f"more rows than n_components={self.n_components}; batches have "
                f"{batch} (batch_size={self.batch_size}, {n_rows} training rows): "
                "raise batch_size, pass more rows, or lower n_components"
            )

    def _check_shards(self, shard, X, mean, scale, batch):
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
            for k, v in self.get_params(deep=False).items()
        }
        shard.check_same("parameters", params)
        digest = (tuple(X.shape), float(np.sum(mean)), float(np.sum(scale)))
        shard.check_same("data (shape, sum of means, sum of scales)", digest)

    def _fit_views(self, plan: _FitPlan) -> Views:
        """The standardized training (and validation) rows on the training device,
        and the views fitted on them."""

        def to_tensor(a):
            if isinstance(a, RowSubset):  # read batch by batch, never whole
                return StreamedRows(
                    a.source, a.index, plan.mean, plan.scale, plan.device
                )
            a = ((a - plan.mean) / plan.scale).astype(np.float32)
            return torch.as_tensor(a, device=plan.device)

        X_val = None if plan.X_val is None else to_tensor(plan.X_val)
        gen = torch.Generator(device=plan.device).manual_seed(plan.seeds.views)
        if plan.shard is None:
            return plan.views.fit(to_tensor(plan.X_train), X_val, gen)
        return plan.views.fit(to_tensor(plan.X_train), X_val, gen, shard=plan.shard)

    def _train(self, nets: Networks, views: Views, plan: _FitPlan):
        """Train on the device; calibrate the normalization; estimate the MI."""
        encoder = nets.encoder.to(plan.device)
        critic = nets.critic.to(plan.device)
        config = TrainConfig(
            batch_size=plan.batch_size,
            max_epochs=self.max_epochs,
            max_steps=plan.settings["max_steps"],
            max_time=None if self.max_time is None else float(self.max_time),
            learning_rate=self.learning_rate,
            learning_rate_schedule=plan.settings["learning_rate_schedule"],
            match_weight=plan.settings["match_weight"],
            radial_weight=plan.settings["radial_weight"],
            early_stopping=self.early_stopping,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            verbose=bool(self.verbose),
            callbacks=tuple(self.callbacks or ()),
        )
        for name, value in (plan.train_overrides or {}).items():
            setattr(config, name, value)
        device, seeds, shard = plan.device, plan.seeds, plan.shard
        generator = torch.Generator(device=device).manual_seed(seeds.training)
        dist = {} if shard is None else {"shard": shard, "local_seed": seeds.training}
        with _global_rng_for_user_modules(self.encoder, device, seeds.user_modules):
            result = train(
                encoder,
                critic,
                nets.channel,
                views,
                config,
                generator,
                seeds.evaluation,
                **dist,
            )
            if result.interrupted and plan.train_overrides is not None:
                # partial_fit keeps nothing of an interrupted call.
                raise KeyboardInterrupt("partial_fit interrupted")
            try:
                if shard is None:
                    encoder.calibrate(views.X, max(plan.batch_size, 4096))
                else:
                    encoder.calibrate(views.X, max(plan.batch_size, 4096), shard)
                eval_gen = torch.Generator(device=device).manual_seed(seeds.evaluation)
                extra = {}
                if shard is not None:
                    extra = {
                        "shard": shard,
                        "local_gen": shard.generator(seeds.evaluation),
                    }
                mutual_info = final_mi(
                    encoder,
                    critic,
                    nets.channel,
                    views,
                    plan.batch_size,
                    eval_gen,
                    **extra,
                )
                if shard is not None:
                    shard.check_replicas(encoder, critic)
                    result.history = shard.broadcast_object(result.history)
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
                stacklevel=5,
            )
        return result, mutual_info

    def _fitted_state(
        self, nets: Networks, views: Views, plan: _FitPlan, result, mutual_info
    ) -> dict:
        """The fitted attributes (on the CPU) that a call stores, computed
        without touching the estimator."""
        fitted = {"encoder_": nets.encoder.cpu().eval()}
        if any(True for _ in nets.critic.parameters()):
            fitted["critic_"] = nets.critic.cpu().eval()
        fitted["prior_"] = plan.prior
        fitted["settings_"] = {
            k: v if isinstance(v, (str, bool, int, float, type(None))) else "callable"
            for k, v in plan.settings.items()
        }
        fitted["joint_match_"] = None
        if self.gaussianize:
            fitted["gaussianizer_"] = self._fit_gaussianizer(
                fitted["encoder_"], views.X, plan.seeds.gaussianizer
            )
        fitted["mean_"], fitted["scale_"] = plan.mean, plan.scale
        fitted["n_iter_"] = result.n_iter
        fitted["n_steps_"] = result.n_steps
        fitted["history_"] = result.history
        fitted["n_samples_seen_"] = int(plan.moments["rows"])
        raw = plan.moments
        fitted["_input_moments"] = np.stack(
            [np.broadcast_to(np.float64(raw["count"]), np.shape(raw["m2"]) or (1,))]
            + [np.atleast_1d(raw[k]).astype(np.float64) for k in ("mean", "m2")]
        )
        if plan.train_overrides is not None:  # partial_fit: Adam resumes next call
            arrays = optimizer_arrays(result.optimizer_state)
            keys = ("_adam_moments", "_adam_steps", "_adam_index")
            fitted.update(zip(keys, arrays))
        fitted["noise_level_"] = plan.network_params["noise_level"]
        fitted["capacity_"] = plan.capacity
        fitted["mutual_info_"] = mutual_info
        fitted["kl_upper_bound_"] = (
            plan.capacity - mutual_info if plan.prior.base.bounds_kl else None
        )
        fitted["_n_features_out"] = self.n_components
        fitted["_cache"] = {}
        fitted["_structure"] = self._structure_params()
        return fitted

    def _store(self, fitted: dict) -> None:
        """Assign the fitted attributes all at once (one dict update, which an
        interrupt cannot split)."""
        self.__dict__.update(fitted)

    def _threads(self):
        """The thread count to use inside fit and transform, or None to leave it."""
        if self.n_threads != "auto":
            return self.n_threads
        small_mlp = (
            isinstance(self.encoder, str)
            and self.encoder == "mlp"
            and all(int(h) <= AUTO_ONE_THREAD_WIDTH for h in self.hidden_layer_sizes)
        )
        return 1 if small_mlp else None

    def _fit_gaussianizer(self, encoder, X: torch.Tensor, seed: int) -> Gaussianizer:
        """The ``gaussianize`` step: a Gaussianizer fitted on the training latents
        of ``encoder`` (on the CPU, in eval mode)."""
        with torch.no_grad():
            Z = torch.cat(
                [
                    encoder(X[k : k + TRANSFORM_CHUNK].cpu())
                    for k in range(0, X.shape[0], TRANSFORM_CHUNK)
                ]
            )
        return Gaussianizer(self.gaussianize, random_state=seed % 2**32).fit(
            Z.double().numpy()
        )

    def _clear_fitted(self):
        for name in _FITTED:
            self.__dict__.pop(name, None)

    def _check_params(self, n_features):
        for name in _INT_PARAMS:
            if isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be an int, got {getattr(self, name)!r}")
        sizes = self.hidden_layer_sizes
        if not (
            isinstance(sizes, (tuple, list))
            and all(
                isinstance(h, Integral)
                and not isinstance(h, bool)
                and 0 < h <= MAX_WIDTH
                for h in sizes
            )
        ):
            raise ValueError(
                f"hidden_layer_sizes must be a tuple of ints in [1, {MAX_WIDTH}], "
                f"got {sizes!r}"
            )
        if isinstance(self.encoder, str) and self.encoder == "mlp":
            widths = [n_features, *sizes, self.n_components]
            n_params = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))
            if n_params > MAX_PARAMETERS:
                raise ValueError(
                    f"the MLP encoder would have {n_params:,} parameters "
                    f"({4 * n_params / 2**30:.0f} GiB in float32), more than "
                    f"{MAX_PARAMETERS:,}: lower hidden_layer_sizes or n_components"
                )
        if self.callbacks is not None and not all(callable(c) for c in self.callbacks):
            raise ValueError(
                "callbacks must be a list of callables (epoch, logs) -> bool"
            )
        if isinstance(self.encoder, str) and self.encoder == "conv":
            conv_input_shape(self.input_shape, n_features)

    def _standardization(self, X, previous=None):
        """``(mean, scale, moments)``: the input scaling and the running moments
        it came from, over ``X`` (and the ``previous`` moments of partial_fit)."""
        axis = None if self.standardize == "global" else 0
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
        return (*self._scaling(mean, std, n_rows, X.shape[1]), raw)

    def _scaling(self, mean, scale, n_samples, n_features):
        magnitude = float(np.max(np.abs(mean) + scale))
        if self.standardize is None and not magnitude <= MAX_UNSCALED:
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
        if self.standardize is None:
            if _is_constant(scale, mean, n_samples).all():
                raise ValueError(
                    "every feature of X is constant (or varies only at the level "
                    "of floating-point rounding): there is no information to encode"
                )
            return np.zeros(n_features), np.ones(n_features)
        if self.standardize == "global":
            mean = np.full(n_features, mean)
            scale = np.full(n_features, scale)
        constant = _is_constant(scale, mean, n_samples)
        if constant.all():
            raise ValueError(
                "every feature of X is constant (or varies only at the level of "
                "floating-point rounding): there is no information to encode"
            )
        return mean, np.where(constant, 1.0, scale)

    def _split(self, X, seed, hold_out=True):
        """Training and validation rows (for a RowSource, their row numbers);
        none are held out without ``early_stopping`` (or ``hold_out``)."""
        if not (self.early_stopping and hold_out):
            return (None, None) if isinstance(X, RowSource) else (X, None)
        n = X.shape[0]
        n_val = int(round(self.validation_fraction * n))
        if n_val < 2 or n - n_val < 2:
            raise ValueError(
                f"early_stopping with validation_fraction={self.validation_fraction} "
                f"leaves {n - n_val} training and {n_val} validation samples; both "
                "need at least 2"
            )
        order = np.random.default_rng(seed).permutation(n)
        if isinstance(X, RowSource):
            return order[n_val:], order[:n_val]
        return X[order[n_val:]], X[order[:n_val]]

    def _validated(self, X, *, reset, min_samples=1):
        """``X`` checked as ``fit`` and ``transform`` need it: an array (through
        scikit-learn's ``validate_data``), or for a memory map or Dataset a
        :class:`RowSource` whose shape and dtype are checked here and whose values
        are checked chunk by chunk as they are read."""
        if not is_streamed(X):
            return validate_data(
                self,
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
            self.n_features_in_ = p
            self.__dict__.pop("feature_names_in_", None)
        elif p != self.n_features_in_:
            raise ValueError(
                f"X has {p} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return source

    # ------------------------------------------------------------ inference
    def transform(self, X):
        """Latents of ``X``: deterministic, no noise, batch-invariant.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), np.memmap or Dataset
            Data with the features seen in ``fit``. A ``np.memmap`` or a
            map-style ``torch.utils.data.Dataset`` of rows is read chunk by chunk,
            never copied whole.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Latents in the target's space (``prior_``). Computed in the precision
            of ``X`` (float32 stays float32; anything else runs and returns
            float64, exactly batch-invariant on the CPU) in chunks on the
            resolved device.
        """
        check_is_fitted(self, "encoder_")
        X = self._validated(X, reset=False)
        with _thread_limit(self._threads()):
            return self._transform(X)

    def _transform(self, X):
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
        streamed = isinstance(X, RowSource)  # checked chunk by chunk
        largest = 0.0
        # Overflow (float32 input near its limit) is reported below, once.
        with torch.no_grad(), np.errstate(over="ignore", invalid="ignore"):
            for k in range(0, X.shape[0], TRANSFORM_CHUNK):
                if streamed:
                    block = X.read_range(k, min(k + TRANSFORM_CHUNK, X.shape[0]))
                    X.release()
                    check_finite(block)
                    largest = max(largest, float(np.abs(block).max()))
                else:
                    block = X[k : k + TRANSFORM_CHUNK]
                xs = (block - mean) / scale
                xb = torch.as_tensor(xs, device=device, dtype=dtype)
                out[k : k + TRANSFORM_CHUNK] = encoder(xb).cpu().numpy()
        if not np.isfinite(out).all():
            bad = int((~np.isfinite(out)).any(axis=1).sum())
            largest = largest if streamed else np.abs(X).max()
            raise ValueError(
                f"{bad} row(s) of X gave non-finite latents: their values overflow "
                f"the network's arithmetic in {out.dtype} (input as large as "
                f"{largest:.3g}, while training data had scale "
                f"{self.scale_.max():.3g}); pass float64 or rescale the data"
            )
        if getattr(self, "gaussianizer_", None) is not None:
            out = self.gaussianizer_.transform(out)
        return self.prior_.to_target(out)

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
        """Draw latents from the prior the model was fitted for.

        Parameters
        ----------
        n_samples : int, default=1
            Number of draws.

        random_state : int, RandomState instance, Generator or None, default=None
            Seeds the draws through a local generator; ``None`` uses fresh OS
            entropy.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Draws from ``prior_``, in the same space as :meth:`transform`'s output
            (e.g. conditions for a generative model trained on the latents).
        """
        check_is_fitted(self, "encoder_")
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        rng = np.random.default_rng(derive_seeds(random_state, 1)[0])
        return self.prior_.sample(int(n_samples), self.n_components, rng)

    def score(self, X, y=None):
        """How well the latents of ``X`` match the prior; higher is better.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, usually held out.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            Minus the k-nearest-neighbour estimate of ``KL(latents || prior)`` in
            nats, on latents mapped back to the base (0 is a perfect match), so a
            plain ``GridSearchCV`` over ``noise_level`` selects the best-matching
            setting.
        """
        Z = self.prior_.from_target(self.transform(X))
        return prior_match_score(Z, prior=self.prior_.base.name)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ---------------------------------------------------------- persistence
    def __getstate__(self):
        return modules_to_blobs(super().__getstate__(), transient=("_cache",))

    def __setstate__(self, state):
        state = blobs_to_modules(state)
        if "encoder_" in state:
            state["_cache"] = {}
        super().__setstate__(state)

    def save(self, path):
        """Save the fitted model to a directory, without pickled code.

        Parameters
        ----------
        path : str or path-like
            Directory to write (created if needed): ``config.json`` (parameters
            and fitted scalars, human-readable) and ``weights.pt`` (a
            ``torch.save`` file of tensors only), with the ``skdim_dm`` version.

        Returns
        -------
        path : pathlib.Path

        Raises
        ------
        TypeError
            When a parameter holds code that JSON cannot describe: a user
            ``torch.nn.Module`` encoder, a callable augmentation or a
            ``FlowPrior``. Such models can be stored with ``joblib.dump`` or
            ``pickle``, but **loading a pickle or joblib file runs code from it**:
            load those only from sources you trust.

        See Also
        --------
        load : Read a model written by ``save``.
        """
        return save_estimator(self, path)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save`; safe on untrusted files.

        Parameters
        ----------
        path : str or path-like
            A directory written by :meth:`save`.

        Returns
        -------
        estimator : NoiseInjectedInfoMax
            The fitted model, on the CPU.

        Raises
        ------
        ModelFileError
            (a ``ValueError``) for a corrupt, incompatible or unsafe directory.
            Weights are read with ``torch.load(..., weights_only=True)``, so
            nothing in the files is executed; compressed entries are refused
            before they are inflated, and every fitted attribute is checked.
        FileNotFoundError
            When ``path`` does not exist.
        """
        return load_estimator(cls, path)
