"""NoiseInjectedInfoMax: the scikit-learn face of noise-injected Deep InfoMax.

The estimator validates its parameters and delegates: the planner
(:mod:`skdim_dm._planning`) checks the data and parameters and resolves them
into a plan, :mod:`skdim_dm._fitting` builds, trains and assembles the fitted
state, and the numeric work is in the torch-only core (:mod:`skdim_dm._core`).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._core.channels import MAX_NOISE_LEVEL, MIN_NOISE_LEVEL
from ._core.critics import CRITICS
from ._core.objectives import OBJECTIVES
from ._core.sources import is_streamed
from ._core.threads import auto_threads, thread_limit, training_environment
from ._core.views import VIEWS
from ._fitted import clear_fitted
from ._fitting import MatchWarning, diagnose, fit_networks, transform_rows
from ._metrics import prior_match_score
from ._persistence import (
    blobs_to_modules,
    load_estimator,
    modules_to_blobs,
    save_estimator,
)
from ._planning import MAX_WIDTH, CapacityWarning, check_input, plan_fit
from ._priors import PRIOR_CONSTRAINTS
from ._validation import (
    Interval,
    RegisteredNames,
    StrOptions,
    _fit_context,
    derive_seeds,
)

__all__ = ["NoiseInjectedInfoMax", "CapacityWarning", "MatchWarning"]

#: Largest ``learning_rate``: Adam's step is about the learning rate itself, and
#: torch refuses rates that overflow float32.
MAX_LEARNING_RATE = 10.0


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
        An objective registered in ``skdim_dm._core.objectives.OBJECTIVES`` is
        accepted by its name and takes the joint configuration's ``"auto"``
        settings.

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
        "critic": [StrOptions(RegisteredNames(CRITICS))],
        "objective": [StrOptions(RegisteredNames(OBJECTIVES, "auto"))],
        "whiten": ["boolean", StrOptions({"auto"})],
        "match_weight": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "radial_weight": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "gaussianize": [Interval(Integral, 0, None, closed="left")],
        "augmentation": [StrOptions(RegisteredNames(VIEWS, "auto")), callable],
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
        clear_fitted(self)
        try:
            with training_environment(self._threads(), is_streamed(X)):
                plan = plan_fit(self, X)
                fitted, result = fit_networks(plan)
                self.__dict__.update(fitted)  # at once: an interrupt cannot split it
                self.joint_match_ = diagnose(self, plan)
        except BaseException:
            # A failed fit never leaves an estimator that looks fitted.
            clear_fitted(self)
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
            clear_fitted(self)
        try:
            with training_environment(self._threads(), is_streamed(X)):
                plan = plan_fit(self, X, partial=True)
                # A later call trains copies: the estimator changes only here.
                fitted, _ = fit_networks(plan, previous=None if first else self)
                self.__dict__.update(fitted)
            return self
        except BaseException:
            if first:
                clear_fitted(self)
            raise

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
        X = check_input(self, X, reset=False)
        with thread_limit(self._threads()):
            return transform_rows(self, X)

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

    def _threads(self):
        """The thread count inside fit and transform, or None to leave it."""
        return auto_threads(self.n_threads, self.encoder, self.hidden_layer_sizes)
