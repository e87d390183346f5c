"""LatentOutlierDetector: outlier p-values on learned latents.

An embedder maps samples to latents. A statistic scores how far a latent lies from
the inliers' (its squared norm, its Mahalanobis distance, or its distance to the
nearest training latents), and a calibration turns the statistic into p-values:

- split conformal (the default): held-out calibration inliers; the rank of a new
  score among theirs is a p-value whose false-positive guarantee holds for any
  exchangeable inliers, whatever the law of the latents (Bates et al., 2023);
  with ``fpr_confidence``, the rank goes through Bates et al.'s Simes-type bound
  instead, and the guarantee holds for the calibration set in hand with that
  probability rather than on average over calibration sets;
- cross-conformal: K models, each fitted without one fold and calibrated on it,
  so that every row both trains and calibrates; its guarantee is weaker in theory
  (about 2 alpha); in the benchmark it ranked best and kept the false-positive
  rate;
- prior: ``||z||^2 ~ chi2(d)``, exact only when the latents follow ``N(0, I_d)``.

Each statistic and each calibration is a small object behind one interface; the
estimator resolves its parameters into them at fit. Everything here is numpy,
scipy and scikit-learn on the latents; the embedder does the torch work.
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import gammaln
from scipy.stats import chi2
from sklearn.base import BaseEstimator, OutlierMixin, clone
from sklearn.covariance import LedoitWolf
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted, validate_data

from ._core.bases import UNIFORM_CLIP, get_base  # noqa: F401  (UNIFORM_CLIP re-exported)
from ._infomax import CapacityWarning, NoiseInjectedInfoMax
from ._priors import resolve_prior
from ._validation import (
    DetectorSeeds,
    HasMethods,
    Interval,
    StrOptions,
    _fit_context,
)

__all__ = [
    "LatentOutlierDetector",
    "LatentStatistic",
    "STATISTICS",
    "benjamini_hochberg",
    "outlier_embedder",
    "chi2_logsf",
    "make_statistic",
    "probit",
    "register_statistic",
]

#: Iterations and tolerance of the continued fraction in :func:`chi2_logsf`.
_CF_MAX_ITER = 500
_CF_TOL = 1e-15


def chi2_logsf(q, df: int) -> np.ndarray:
    """Log survival function of ``chi2(df)``, finite far into the tail.

    ``scipy.stats.chi2.logsf`` takes the log of a survival function that
    underflows to 0 near ``q = 1500``, returning ``-inf`` and tying every
    extreme sample. There, ``log Q(a, x)`` (``a = df / 2``, ``x = q / 2``, ``Q``
    the regularized upper incomplete gamma function) is computed as
    ``a log x - x - log Gamma(a) + log CF``, ``CF`` being the Legendre continued
    fraction evaluated by the modified Lentz method (Numerical Recipes, 6.2).

    Parameters
    ----------
    q : array-like of float
        Non-negative statistics.

    df : int
        Degrees of freedom.

    Returns
    -------
    logsf : ndarray of float64
        ``log P(chi2(df) >= q)``; ``-inf`` only where ``q`` is infinite.
    """
    q = np.asarray(q, dtype=np.float64)
    out = np.asarray(chi2.logsf(q, df), dtype=np.float64)
    tail = ~np.isfinite(out) & np.isfinite(q)
    if np.any(tail):
        out = out.copy()
        out[tail] = _log_gammaincc_cf(0.5 * df, 0.5 * q[tail])
    return out


def _log_gammaincc_cf(a: float, x: np.ndarray) -> np.ndarray:
    """``log Q(a, x)`` by the continued fraction; accurate for ``x > a + 1``."""
    tiny = 1e-300
    b = x + 1.0 - a
    c = np.full_like(x, 1.0 / tiny)
    d = 1.0 / np.where(np.abs(b) < tiny, tiny, b)
    log_h = np.log(np.abs(d))
    done = np.zeros(x.shape, dtype=bool)
    for i in range(1, _CF_MAX_ITER + 1):
        an = -i * (i - a)
        b = b + 2.0
        d = an * d + b
        d = 1.0 / np.where(np.abs(d) < tiny, tiny, d)
        c = b + an / c
        c = np.where(np.abs(c) < tiny, tiny, c)
        delta = d * c
        log_h = np.where(done, log_h, log_h + np.log(np.abs(delta)))
        done |= np.abs(delta - 1.0) < _CF_TOL
        if done.all():
            break
    return a * np.log(x) - x - gammaln(a) + log_h


def probit(u) -> np.ndarray:
    """``Phi^{-1}`` of uniform latents, clipped to ``[UNIFORM_CLIP, 1 - UNIFORM_CLIP]``.

    Maps ``U([0, 1]^d)`` to ``N(0, I_d)`` component by component (the uniform
    base's ``to_gaussian``), so that uniform latents are scored by the Gaussian
    rule.
    """
    return get_base("uniform").to_gaussian(u)


# ------------------------------------------------------------------ the embedder
#: The detector's default embedder, measured in ``benchmarks/bench_outliers.py``
#: (one rule for every data set; see ``outlier_embedder``).
MAX_COMPONENTS = 64
DETECTION_NOISE_LEVEL = 0.1
NEIGHBOR_VIEWS_MIN_SAMPLES = 1000
TARGET_STEPS = 200
MIN_EPOCHS = 20


def outlier_embedder(n_samples: int, n_features: int, **params) -> NoiseInjectedInfoMax:
    """The embedder that :class:`LatentOutlierDetector` trains when ``embedder=None``.

    A :class:`NoiseInjectedInfoMax` set for detection rather than matching, by one
    rule of the training size ``n_samples`` and width ``n_features``:

    - ``n_components = min(64, n_features)``: a code of a few dimensions cannot
      see an outlier that differs from the inliers off their manifold;
    - ``noise_level = 0.1`` with the analytic ``"gaussian"`` critic: a capacity of
      ``d/2 log(1 + 1/0.1^2) = 2.3 d`` nats, far above what InfoNCE measures, so
      the latents keep much more of the input than the matching default
      (``noise_level="auto"``) does, and match ``N(0, I)`` worse. Conformal
      calibration does not need matched latents;
    - ``augmentation="neighbors"`` (views of nearest-neighbor pairs) from 1000
      training rows on, the input-noise views below, where neighbors are too far
      apart to share more than the data set;
    - ``max_epochs = max(20, ceil(200 / n_batches))``: about 200 gradient steps.

    With these settings the InfoNCE estimate ``mutual_info_`` is meaningless and
    often negative (the analytic critic assumes views that differ by the channel
    noise only; at this noise level it acts as a low-temperature contrastive loss
    that pulls neighbors together), and ``NoiseInjectedInfoMax`` warns about it.
    The detector silences that warning and the capacity one for its default
    embedder; its own measure of quality is ``benchmarks/bench_outliers.py``.
    On MNIST one-class validation splits (4000 training images of a digit; 1900
    other images of it and 2000 of other digits, all from the MNIST training
    set), the 5-NN distance on whitened latents reached mean ROC-AUC 0.967 over
    the 10 digits with this rule, against 0.944 with the matching defaults
    (``noise_level="auto"``, input-noise views, same ``d`` and epochs).

    Parameters
    ----------
    n_samples : int
        Rows the embedder will be trained on.

    n_features : int
        Input width.

    **params
        Overrides for any :class:`NoiseInjectedInfoMax` parameter (for instance
        ``standardize="global"`` for images, whose pixels share one scale).

    Returns
    -------
    embedder : NoiseInjectedInfoMax
        Unfitted.
    """
    n_samples, n_features = int(n_samples), int(n_features)
    if n_samples < 1 or n_features < 1:
        raise ValueError(
            f"n_samples and n_features must be positive, got {n_samples} and "
            f"{n_features}"
        )
    batch_size = params.get("batch_size", 512)
    n_batches = math.ceil(n_samples / batch_size)
    rule = {
        "n_components": min(MAX_COMPONENTS, n_features),
        # The joint objective the detection benchmark measured (RESULTS.md,
        # "Outliers"), not the estimator's "auto" configuration.
        "objective": "joint",
        "critic": "gaussian",
        "noise_level": DETECTION_NOISE_LEVEL,
        "augmentation": (
            "neighbors" if n_samples >= NEIGHBOR_VIEWS_MIN_SAMPLES else "gaussian"
        ),
        "max_epochs": max(MIN_EPOCHS, math.ceil(TARGET_STEPS / n_batches)),
    }
    rule.update(params)
    return NoiseInjectedInfoMax(**rule)


#: Largest latent magnitude the statistics take: Ledoit-Wolf's shrinkage sums
#: fourth powers (NaN from 1e77 on), and the prior statistic's squared norms
#: overflow from 1e154 on.
MAX_LATENT = 1e75


def _gaussian_latents(embedder, X, n_samples: int) -> np.ndarray:
    """The embedder's latents on ``N(0, I)`` for inliers of a matched embedder.

    Target-space latents are mapped back to the base; uniform latents then go
    through the probit.
    """
    Z = embedder.transform(X)
    if np.iscomplexobj(Z):
        raise ValueError("the embedder returned complex latents; they must be real")
    Z = np.asarray(Z, dtype=np.float64)
    if Z.size and np.abs(Z).max() > MAX_LATENT:
        raise ValueError(
            f"the embedder returned latents as large as {np.abs(Z).max():.3g}: "
            f"beyond {MAX_LATENT:g} the statistics overflow float64 (a matched "
            "embedder's latents are of order 1; an unnormalized embedder?)"
        )
    if Z.ndim != 2 or Z.shape[0] != n_samples:
        raise ValueError(
            f"the embedder must return latents of shape (n_samples, d); got {Z.shape}"
        )
    prior = resolve_prior(getattr(embedder, "prior", "gaussian"))
    Z = np.asarray(prior.from_target(Z), dtype=np.float64)
    if not np.all(np.isfinite(Z)):
        raise ValueError("the embedder returned NaN or infinite latents")
    return prior.base.to_gaussian(Z)


def _take_rows(X, idx: np.ndarray):
    """Rows of ``X`` in its own container (pandas keeps its column names)."""
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    if type(X).__module__.split(".")[0] == "polars":
        return X[idx]
    return np.asarray(X)[idx]


# ------------------------------------------------------------------ statistics
def shrunk_whitening(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and symmetric inverse square root of the Ledoit-Wolf covariance of ``G``.

    The shrinkage toward a scaled identity keeps the whitening stable when the
    latents are many for the rows (64 components on 70 training rows); with many
    rows it is the plug-in covariance.
    """
    G = np.asarray(G, dtype=np.float64)
    lw = LedoitWolf().fit(G)
    eigval, eigvec = np.linalg.eigh(lw.covariance_)
    top = float(eigval.max()) if eigval.max() > 0 else 1.0
    eigval = np.maximum(eigval, 1e-12 * top)
    return lw.location_, (eigvec / np.sqrt(eigval)) @ eigvec.T


class LatentStatistic:
    """A nonconformity statistic on Gaussianized latents: larger is more outlying.

    ``fit(G)`` learns from training latents and returns ``self``;
    ``score(G)`` returns one non-negative value per row. ``chi2_null`` says
    whether the statistic follows ``chi2(d)`` when the latents follow
    ``N(0, I_d)`` (needed by ``calibration="prior"``). A statistic is made
    available as ``statistic=name`` by :func:`register_statistic`; its
    constructor may take options named like the detector's parameters
    (``KNNDistance(n_neighbors)``).
    """

    name = "base"
    chi2_null = False
    #: Whether ``fit`` uses the training latents (otherwise no training rows are
    #: needed, e.g. with a prefit embedder).
    needs_training = True

    def check_n_train(self, n_train: int, n_samples: int) -> None:
        """Raise ``ValueError`` before any training when the smallest training
        part, ``n_train`` of the ``n_samples`` rows, is too small to fit on."""

    def fit(self, G: np.ndarray) -> LatentStatistic:
        raise NotImplementedError

    def score(self, G: np.ndarray) -> np.ndarray:
        raise NotImplementedError


#: ``statistic=`` names and their classes, in registration order.
STATISTICS: dict[str, type[LatentStatistic]] = {}


def register_statistic(cls: type[LatentStatistic]) -> type[LatentStatistic]:
    """Make ``cls`` available as ``statistic=cls.name`` (a class decorator)."""
    STATISTICS[cls.name] = cls
    return cls


def make_statistic(name: str, **options) -> LatentStatistic:
    """The statistic registered as ``name``, built with the ``options`` (such as
    ``n_neighbors``) its constructor takes."""
    try:
        cls = STATISTICS[name]
    except KeyError:
        raise ValueError(
            f"unknown statistic {name!r}; choose from {list(STATISTICS)}"
        ) from None
    accepted = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in options.items() if k in accepted})


@register_statistic
class PriorNorm(LatentStatistic):
    """``||z||^2``: distance from the centre of the prior; ``chi2(d)`` under it."""

    name = "prior"
    chi2_null = True
    needs_training = False

    def fit(self, G):
        return self

    def score(self, G):
        return np.einsum("ij,ij->i", G, G)


@register_statistic
class Mahalanobis(LatentStatistic):
    """Squared Mahalanobis distance from the training latents' mean.

    Plug-in Ledoit-Wolf mean and covariance of the training latents (see
    :func:`shrunk_whitening`). It removes the correlations that per-component
    normalization leaves; ``chi2(d)`` under ``N(0, I_d)`` up to the estimate.
    """

    name = "mahalanobis"
    chi2_null = True

    def fit(self, G):
        self.location_, self.whitening_ = shrunk_whitening(G)
        return self

    def score(self, G):
        W = (G - self.location_) @ self.whitening_.T
        return np.einsum("ij,ij->i", W, W)


@register_statistic
class KNNDistance(LatentStatistic):
    """Mean distance to the ``n_neighbors`` nearest training latents, whitened.

    Distances are taken after the Ledoit-Wolf whitening of the training latents
    (the Mahalanobis metric), so that no latent direction dominates by scale
    alone; on latents that match ``N(0, I)`` the whitening is close to the
    identity. Exact search (scikit-learn's ``NearestNeighbors``).
    """

    name = "knn"

    def __init__(self, n_neighbors: int = 5):
        self.n_neighbors = n_neighbors

    def check_n_train(self, n_train, n_samples):
        if n_train < self.n_neighbors:
            raise ValueError(
                f"statistic={self.name!r} with n_neighbors={self.n_neighbors} needs "
                f"at least {self.n_neighbors} training rows; the calibration leaves "
                f"{n_train} of {n_samples}"
            )

    def fit(self, G):
        self.location_, self.whitening_ = shrunk_whitening(G)
        self.neighbors_ = NearestNeighbors(n_neighbors=self.n_neighbors).fit(
            self._whiten(G)
        )
        return self

    def _whiten(self, G):
        return (G - self.location_) @ self.whitening_.T

    def score(self, G):
        dist, _ = self.neighbors_.kneighbors(self._whiten(G))
        return dist.mean(axis=1)


# ----------------------------------------------------------------- calibrations
class Calibration:
    """How statistic values become p-values.

    ``folds(n, rng)`` says which rows train each model and which calibrate it;
    after every model is fitted, ``fit(calibration_scores)`` stores what it
    needs. ``log_pvalues``, ``pvalues`` and ``score_samples`` take ``S`` of shape
    ``(n_models, n_samples)``: each model's statistic on the samples.
    ``offset(alpha)`` is the threshold on ``score_samples`` below which exactly
    the samples with ``p <= alpha`` lie.
    """

    def folds(self, n_samples, rng, needs_training):
        raise NotImplementedError

    def fit(self, calibration_scores, n_components):
        raise NotImplementedError


class PriorCalibration(Calibration):
    """``P(chi2(d) >= s)``: exact when the latents follow ``N(0, I_d)``, and only then."""

    name = "prior"

    def folds(self, n_samples, rng, needs_training):
        return [(np.arange(n_samples), np.arange(0))]

    def fit(self, calibration_scores, n_components):
        self.df_ = int(n_components)
        self.n_calibration_ = 0
        return self

    def score_samples(self, S):
        return chi2_logsf(S[0], self.df_)

    def pvalues(self, S):
        return np.exp(self.score_samples(S))

    def offset(self, alpha):
        return float(np.log(alpha))


#: Statistic values this close (relative to the larger of the value and the
#: calibration scores' median) count as ties in conformal p-values.
TIE_RTOL = 1e-9


class ConformalCalibration(Calibration):
    """Conformal p-values: split (``n_folds=None``) or cross-conformal.

    ``p(x) = (1 + sum_k #{i in fold k : s_k(X_i) >= s_k(x)}) / (n_cal + 1)``, the
    statistic ``s_k`` being fitted without fold ``k``. With one held-out fold this
    is the split-conformal p-value of Bates et al. (2023).
    """

    def __init__(self, calibration_size=0.2, n_folds=None):
        self.calibration_size = calibration_size
        self.n_folds = n_folds

    @property
    def name(self):
        return "conformal" if self.n_folds is None else "cross-conformal"

    def folds(self, n_samples, rng, needs_training):
        order = rng.permutation(n_samples)
        if self.n_folds is None:
            if not needs_training:
                # Nothing to train (a prefit embedder and the prior statistic):
                # every row calibrates.
                return [(np.arange(0), order)]
            size = self.calibration_size
            if isinstance(size, Integral):
                n_cal = int(size)
            else:  # rounded first: 0.3 * 50 is 15.000000000000002
                n_cal = math.ceil(round(size * n_samples, 9))
            if n_cal < 1 or n_samples - n_cal < 2:
                raise ValueError(
                    f"calibration_size={size!r} of {n_samples} samples leaves "
                    f"{n_samples - n_cal} training and {n_cal} calibration rows; "
                    "at least 2 and 1 are needed"
                )
            return [(np.sort(order[n_cal:]), np.sort(order[:n_cal]))]
        if n_samples < self.n_folds or (
            needs_training and n_samples - math.ceil(n_samples / self.n_folds) < 2
        ):
            raise ValueError(
                f"calibration='cross-conformal' with n_folds={self.n_folds} needs at "
                f"least {max(self.n_folds, 3)} samples and 2 training rows per fold; "
                f"got {n_samples}"
            )
        parts = np.array_split(order, self.n_folds)
        return [
            (np.sort(np.concatenate(parts[:k] + parts[k + 1 :])), np.sort(parts[k]))
            for k in range(self.n_folds)
        ]

    def fit(self, calibration_scores, n_components):
        self.scores_ = [
            np.sort(np.asarray(s, dtype=np.float64)) for s in calibration_scores
        ]
        self.n_calibration_ = int(sum(s.size for s in self.scores_))
        # Scale of each model's statistic, for the tie-break in score_samples.
        self.scales_ = np.array(
            [np.median(s) if s.size and np.median(s) > 0 else 1.0 for s in self.scores_]
        )
        return self

    def _counts(self, S):
        """``sum_k #{calibration scores of model k >= s_k(x)}`` per sample.

        Scores equal up to float rounding (relative ``TIE_RTOL``) count as ties:
        a calibration row scored again, in another batch, keeps its p-value.
        Counting more ties only raises p-values, so validity is kept.
        """
        counts = 0
        for cal, s, scale in zip(self.scores_, S, self.scales_):
            s = np.asarray(s, dtype=np.float64)
            s = s - TIE_RTOL * np.maximum(np.abs(s), scale)
            counts = counts + cal.size - np.searchsorted(cal, s, side="left")
        return counts

    def pvalues(self, S):
        return (1.0 + self._counts(S)) / (self.n_calibration_ + 1.0)

    def score_samples(self, S):
        # The p-value steps, broken by a term in (0, 1/2] that decreases with every
        # model's statistic: no ties, and exp(score) lies in [p, p + 1/(2(n+1))].
        t = np.mean(np.asarray(S) / self.scales_[:, None], axis=0)
        u = 0.5 / (1.0 + t)
        return np.log((1.0 + self._counts(S) + u) / (self.n_calibration_ + 1.0))

    def offset(self, alpha):
        n1 = self.n_calibration_ + 1.0
        # The largest count m with m / (n + 1) <= alpha, in the floats pvalues uses.
        m = math.floor(alpha * n1)
        while (m + 1) / n1 <= alpha:
            m += 1
        while m > 0 and m / n1 > alpha:
            m -= 1
        return float(np.log((m + 1.0) / n1))


def simes_bounds(n_calibration: int, fpr_confidence: float) -> np.ndarray:
    """Bates et al.'s Simes-type bounds on the order statistics of uniforms.

    For ``U_(1) <= ... <= U_(n)``, the order statistics of ``n`` i.i.d.
    ``U(0, 1)``, and ``delta = 1 - fpr_confidence``, returns ``b_1 <= ... <= b_n``
    with ``P(U_(j) <= b_j for every j) >= 1 - delta``: the generalized Simes
    inequality (Sarkar, 2008) as used by Bates et al. (2023, Section 3), with
    ``k = max(1, n // 2)`` (their choice):

    ``b_{n+1-i} = 1 - delta^(1/k) (i (i-1) ... (i-k+1) / (n (n-1) ... (n-k+1)))^(1/k)``

    for ``i >= k``, and ``b_{n+1-i} = 1`` for ``i < k``. In a conformal detector,
    ``U_(j)`` is the false-positive rate of flagging the scores above the
    ``j``-th largest calibration score, given the calibration set.

    Parameters
    ----------
    n_calibration : int >= 1
        Number of calibration scores ``n``.

    fpr_confidence : float in (0, 1)
        ``1 - delta``.

    Returns
    -------
    bounds : ndarray of shape (n_calibration,)
        ``b_1, ..., b_n``, non-decreasing, in ``(0, 1]``.
    """
    n = int(n_calibration)
    if n < 1:
        raise ValueError(f"n_calibration must be positive, got {n}")
    if not 0 < fpr_confidence < 1:
        raise ValueError(f"fpr_confidence must lie in (0, 1), got {fpr_confidence!r}")
    delta = 1.0 - float(fpr_confidence)
    k = max(1, n // 2)
    i = np.arange(1, n + 1, dtype=np.float64)
    a = np.zeros(n)
    top = i >= k
    # log(i (i-1) ... (i-k+1)) = log Gamma(i + 1) - log Gamma(i - k + 1).
    log_falling = gammaln(i[top] + 1.0) - gammaln(i[top] - k + 1.0)
    log_full = gammaln(n + 1.0) - gammaln(n - k + 1.0)
    a[top] = np.exp((math.log(delta) + log_falling - log_full) / k)
    # b_j = 1 - a_{n+1-j}; the running maximum only guards against rounding.
    return np.maximum.accumulate(1.0 - a[::-1])


def conditional_pvalue_table(n_calibration: int, fpr_confidence: float) -> np.ndarray:
    """Calibration-conditional p-value of each conformal rank ``j = 1, ..., n + 1``.

    ``max(b_j, j / (n + 1))`` for ``j <= n`` (``b`` from :func:`simes_bounds`)
    and 1 for ``j = n + 1``. A sample whose statistic is exceeded or tied by
    ``c`` of the ``n`` calibration scores has rank ``j = c + 1`` and marginal
    p-value ``j / (n + 1)``; its conditional p-value is entry ``c``. Never below
    the marginal p-value, so the marginal guarantee still holds; non-decreasing
    in ``j``, so ``p <= alpha`` flags the largest statistics.
    """
    n = int(n_calibration)
    marginal = (1.0 + np.arange(n + 1)) / (n + 1.0)
    table = np.ones(n + 1)
    table[:n] = simes_bounds(n, fpr_confidence)
    return np.maximum(table, marginal)


def conditional_calibration_rows(alpha: float, fpr_confidence: float) -> int:
    """The fewest calibration rows with which ``p <= alpha`` can flag anything.

    The smallest calibration-conditional p-value is
    ``max(1 - delta^(1 / k), 1 / (n + 1))`` with ``k = max(1, n // 2)``; this is
    the smallest ``n`` that brings it to ``alpha`` or below (about
    ``2 log(1 / delta) / alpha``). With exactly that many rows a detector flags
    only samples beyond every calibration score; its mean false-positive rate is
    then ``1 / (n + 1)``, well under ``alpha``.
    """

    def smallest(n):
        return conditional_pvalue_table(n, fpr_confidence)[0]

    delta = 1.0 - float(fpr_confidence)
    n = max(1, 2 * math.ceil(math.log(delta) / math.log1p(-alpha)) - 2)
    while smallest(n) > alpha:
        n += 1
    while n > 1 and smallest(n - 1) <= alpha:
        n -= 1
    return n


class ConditionalConformalCalibration(ConformalCalibration):
    """Split-conformal p-values with a calibration-conditional guarantee.

    The marginal rank ``j = 1 + #{calibration scores >= s(x)}`` is mapped to
    :func:`conditional_pvalue_table` (Bates et al., 2023, Section 3): with
    probability at least ``fpr_confidence`` over the calibration set, the
    false-positive rate of ``p <= t`` is at most ``t`` for every ``t`` at once.
    ``score_samples`` is the marginal one, so the ranking does not change; only
    ``pvalues`` and ``offset`` do.
    """

    def __init__(self, calibration_size=0.2, fpr_confidence=0.9):
        super().__init__(calibration_size, n_folds=None)
        self.fpr_confidence = fpr_confidence

    def fit(self, calibration_scores, n_components):
        super().fit(calibration_scores, n_components)
        self.pvalue_table_ = conditional_pvalue_table(
            self.n_calibration_, self.fpr_confidence
        )
        return self

    def pvalues(self, S):
        return self.pvalue_table_[self._counts(S)]

    def offset(self, alpha):
        # Ranks 1..m have p <= alpha (the table is non-decreasing); the score
        # threshold is the one the marginal offset uses for m.
        m = int(np.count_nonzero(self.pvalue_table_ <= alpha))
        return float(np.log((m + 1.0) / (self.n_calibration_ + 1.0)))


# ------------------------------------------------------------ multiple testing
def benjamini_hochberg(pvalues, alpha=0.1, *, dependence="prds"):
    """Benjamini-Hochberg: which of many p-values to reject at FDR level ``alpha``.

    Sorts the ``m`` p-values, finds the largest ``k`` with
    ``p_(k) <= alpha * k / (m * c)`` and rejects the ``k`` smallest; ``c = 1``
    (Benjamini and Hochberg, 1995) or ``c = sum_{i <= m} 1 / i`` for arbitrary
    dependence (Benjamini and Yekutieli, 2001).

    Split-conformal p-values (``LatentOutlierDetector(calibration="conformal")``)
    of many test points share one calibration set, so
    they are dependent; Bates et al. (2023) show that they are PRDS
    (positively regression dependent on the subset of inliers) when the
    calibration rows and the test inliers are i.i.d., the test points are
    independent of one another, and the statistic was fitted on other rows. BH with ``c = 1`` then controls the false discovery rate at
    ``alpha * m_0 / m <= alpha`` (``m_0`` inliers among the ``m`` points). No such
    result covers cross-conformal p-values, and prior (chi2) p-values are valid
    only when the latents match the prior: use ``dependence="arbitrary"`` (BY)
    when unsure.

    Parameters
    ----------
    pvalues : array-like of shape (m,)
        P-values in ``[0, 1]``, for instance ``LatentOutlierDetector.pvalues(X)``.

    alpha : float in (0, 1), default=0.1
        Target false discovery rate.

    dependence : {"prds", "arbitrary"}, default="prds"
        ``"prds"``: Benjamini-Hochberg (independent or PRDS p-values, which
        includes split-conformal ones). ``"arbitrary"``: Benjamini-Yekutieli.

    Returns
    -------
    reject : ndarray of bool, shape (m,)
        True for the points declared outliers.

    References
    ----------
    Y. Benjamini, Y. Hochberg, "Controlling the false discovery rate", JRSS B
    57 (1995). Y. Benjamini, D. Yekutieli, "The control of the false discovery
    rate in multiple testing under dependency", Ann. Stat. 29 (2001). S. Bates,
    E. Candes, L. Lei, Y. Romano, M. Sesia, "Testing for outliers with conformal
    p-values", Ann. Stat. 51 (2023).

    Examples
    --------
    >>> from skdim_dm import benjamini_hochberg
    >>> benjamini_hochberg([0.001, 0.2, 0.012, 0.04], alpha=0.05).tolist()
    [True, False, True, False]
    """
    if not (isinstance(alpha, Real) and not isinstance(alpha, bool) and 0 < alpha < 1):
        raise ValueError(f"alpha must be a float in (0, 1), got {alpha!r}")
    if dependence not in ("prds", "arbitrary"):
        raise ValueError(
            f"dependence must be 'prds' or 'arbitrary', got {dependence!r}"
        )
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be one-dimensional, got shape {p.shape}")
    if not np.all((p >= 0) & (p <= 1)):  # NaN fails too
        raise ValueError("pvalues must lie in [0, 1] (no NaN)")
    m = p.size
    reject = np.zeros(m, dtype=bool)
    if m == 0:
        return reject
    c = 1.0 if dependence == "prds" else float(np.sum(1.0 / np.arange(1, m + 1)))
    order = np.argsort(p, kind="stable")
    below = np.flatnonzero(p[order] <= alpha * np.arange(1, m + 1) / (m * c))
    if below.size:
        reject[order[: below[-1] + 1]] = True
    return reject


# -------------------------------------------------------------------- estimator
class LatentOutlierDetector(OutlierMixin, BaseEstimator):
    """Outlier detection with calibrated p-values on learned latents.

    An embedder (by default a :class:`NoiseInjectedInfoMax` set for detection, see
    :func:`outlier_embedder`) maps samples to latents; a ``statistic`` scores how
    far each latent lies from the inliers'; a ``calibration`` turns the statistic
    into p-values, and ``predict`` flags the samples whose p-value is at most
    ``alpha``. The false-positive rate on inliers is then at most ``alpha``, with
    no labelled outliers, under the assumption each calibration states:

    - ``"cross-conformal"`` (Vovk, 2015): the rows are split into
      ``n_folds`` folds; a model (embedder and statistic) fitted without fold
      ``k`` scores fold ``k``, and
      ``p(x) = (1 + sum_k #{i in fold k: s_k(X_i) >= s_k(x)}) / (n + 1)``, with
      ``s_k(x)`` the statistic of the fold-``k`` model. No row is wasted and the
      ``n_folds`` models vote, at ``n_folds`` times the cost of fit and predict.
      The guarantee is weaker: ``P(p(x) <= alpha) <= 2 alpha`` up to a term of
      order ``n_folds / n`` (Barber et al., 2021, the CV+ bound). In the
      benchmark it ranked best, and its false-positive rate stayed within
      ``alpha`` + 2 binomial sd on every data set and alpha
      (``benchmarks/RESULTS.md``). A training row is in-sample for
      ``n_folds - 1`` of the models (with ``"knn"`` it is its own neighbor), so
      ``predict`` on the training rows themselves flags almost nothing; use
      ``contamination`` or out-of-sample rows.
    - ``"conformal"`` (the default; split conformal; Bates et al., 2023): a random
      ``calibration_size`` of the rows is held out before anything is trained.
      The embedder and the statistic are fitted on the rest, and
      ``p(x) = (1 + #{calibration scores >= s(x)}) / (n_cal + 1)``. If the
      calibration rows and a new inlier are exchangeable (for instance i.i.d.),
      ``P(p(x) <= alpha) <= alpha`` exactly, in finite samples, whatever the law
      of the latents and however poorly they match the prior. The guarantee is
      marginal, over the draw of the calibration set: the false-positive rate
      of one fitted detector fluctuates around its mean ``<= alpha`` by about
      ``sqrt(alpha (1 - alpha) / n_cal)``. The default, for the exact
      guarantee, for :func:`benjamini_hochberg` scans (its p-values are PRDS)
      and for one fit instead of ``n_folds``; cross-conformal ranked a little
      better in the benchmark (ROC-AUC never lower, up to 0.012 higher).
      With ``fpr_confidence`` it gives the stronger, calibration-conditional
      promise below.
    - ``"prior"``: for the Gaussian prior, ``||z||^2 ~ chi2(d)``, so
      ``p = P(chi2(d) >= ||z||^2)`` needs no held-out rows; with
      ``statistic="mahalanobis"`` the same law is used for the Mahalanobis
      distance. Exact only when the latents of inliers follow ``N(0, I_d)``
      jointly, which held-out data often do not: the false-positive rate then
      misses ``alpha`` in either direction (``benchmarks/RESULTS.md``).

    Uniform latents on ``[0, 1]^d`` are first mapped to ``N(0, I_d)`` by the probit
    per component, and latents of other targets are mapped back to their base.

    **Two promises** (split conformal, i.i.d. inliers: the calibration rows and
    the new inliers drawn independently from one law; ties in the statistic only
    make both conservative). Write ``FPR(t) = P(p(X) <= t | calibration set)``
    for a new inlier ``X``: the false-positive rate of the fitted detector that
    flags ``p <= t``.

    - ``fpr_confidence=None`` (marginal, the default): ``E[FPR(alpha)] <= alpha``,
      the expectation taken over the draw of the calibration set. One fitted
      detector's ``FPR(alpha)`` is ``Beta(m, n_cal + 1 - m)``-distributed,
      ``m = floor(alpha (n_cal + 1))``: it exceeds ``alpha`` for about half of
      the calibration sets when ``n_cal`` is large. Flagging anything at
      ``alpha`` needs ``n_cal >= 1 / alpha - 1`` calibration rows.
    - ``fpr_confidence = 1 - delta`` (calibration-conditional; Bates et al.,
      2023, Section 3): ``P(FPR(t) <= t for every t in (0, 1)) >= 1 - delta``,
      the probability taken over the draw of the calibration set. The detector
      you fit is, with that confidence, one whose false-positive rate at
      ``alpha`` (and at any other threshold you apply to ``pvalues``) is at most
      that threshold. The p-values are never below the marginal ones, so the
      marginal promise holds as well. The price is power: the p-values go up,
      and flagging anything at ``alpha`` needs more calibration rows, about
      ``2 log(1 / delta) / alpha`` (see ``fpr_confidence``); ``fit`` warns
      before training when there are fewer.

    Parameters
    ----------
    embedder : estimator or None, default=None
        A transformer with ``fit`` and ``transform``, for instance a
        :class:`NoiseInjectedInfoMax`. Its ``prior`` parameter (``"gaussian"``
        when it has none) names the distribution of the latents. ``None`` means
        ``outlier_embedder(n_train, n_features)``, the rule measured in
        ``benchmarks/bench_outliers.py``. Cloned and fitted on the training rows
        (never on calibration rows) unless ``prefit``.

    prefit : bool, default=False
        Use a fitted ``embedder`` as is (a copy is stored). ``fit`` then fits only
        the statistic and the calibration. The calibration rows of ``X`` must not
        have been used to fit the embedder, or their scores are too small and
        the p-values of new inliers too small (too many false positives).

    statistic : {"knn", "mahalanobis", "prior"}, default="knn"
        The nonconformity score, larger for more outlying latents:
        ``"knn"``: mean distance to the ``n_neighbors`` nearest training latents
        after whitening them (Ledoit-Wolf); ``"mahalanobis"``: squared
        Mahalanobis distance from the training latents' mean (plug-in
        Ledoit-Wolf mean and covariance); ``"prior"``: ``||z||^2``, the distance
        from the prior's centre. ``"knn"`` ranked best in the benchmark. The
        names are those of ``STATISTICS`` (:func:`register_statistic` adds one).

    calibration : {"conformal", "cross-conformal", "prior"}, default="conformal"
        How p-values are computed; see above. ``"prior"`` needs a statistic with a
        chi-square law (``"prior"`` or ``"mahalanobis"``).

    calibration_size : float in (0, 1) or int, default=0.2
        ``calibration="conformal"``: the fraction (float) or number (int) of rows
        held out to calibrate. The smallest conformal p-value is
        ``1 / (n_cal + 1)``, so flagging anything at ``alpha`` needs
        ``n_cal >= 1 / alpha - 1`` calibration rows (99 at ``alpha = 0.01``).
        With ``prefit=True`` and ``statistic="prior"`` nothing is trained and all
        rows calibrate.

    n_folds : int >= 2, default=5
        ``calibration="cross-conformal"``: number of folds and fitted models.

    n_neighbors : int >= 1, default=5
        ``statistic="knn"``: neighbors averaged over.

    alpha : float in (0, 1), default=0.05
        Target false-positive rate when ``contamination="auto"``: ``predict``
        returns -1 exactly where ``pvalues(X) <= alpha`` (conformal) or
        ``pvalues(X) < alpha`` (prior, whose p-values are continuous).

    fpr_confidence : float in (0, 1) or None, default=None
        ``None``: marginal conformal p-values. A value ``1 - delta``:
        calibration-conditional p-values (see "Two promises" above): the
        marginal rank ``j = 1 + #{calibration scores >= s(x)}`` becomes
        ``max(b_j, j / (n_cal + 1))`` (1 for ``j = n_cal + 1``), with ``b`` the
        Simes-type bound of Bates et al. (2023), ``k = n_cal // 2``
        (:func:`~skdim_dm._outliers.simes_bounds`). Simes rather than the
        paper's DKW version (the margin ``sqrt(log(2 / delta) / (2 n_cal))``
        added to every marginal p-value): Simes is exact (the probability is
        ``1 - delta``, not more) and much tighter at the small ranks an outlier
        test uses (at ``0.9``, ``alpha = 0.05`` and 1,200 calibration rows it
        flags the top 41 ranks, DKW the top 17). Only with
        ``calibration="conformal"``: the theorem needs
        calibration scores that are i.i.d. given one fitted model, which
        cross-conformal scores (from ``n_folds`` models, each fitted on the
        others' calibration rows) are not, and ``"prior"`` has no calibration
        rows; both raise ``ValueError``. ``score_samples`` (the ranking, and so
        ROC-AUC) does not change; ``pvalues``, ``offset_``, ``decision_function``
        and ``predict`` do. Calibration rows needed before ``p <= alpha`` can
        flag anything (marginal ``1 / alpha - 1``, for comparison):

        ================  ======  ======  ======
        ``alpha``         0.01    0.05    0.10
        ================  ======  ======  ======
        marginal          99      19      9
        ``0.9``           460     90      44
        ``0.95``          598     118     58
        ================  ======  ======  ======

        At those sizes only samples beyond every calibration score are
        flagged; the mean false-positive rate is ``m / (n_cal + 1)`` when ranks
        ``1..m`` are flagged, and stays at ``alpha / 2`` or above from 1,427,
        282 and 126 rows on for ``fpr_confidence=0.9`` (user guide, "Outlier
        detection").

    contamination : "auto" or float in (0, 0.5], default="auto"
        ``"auto"``: threshold at the p-value ``alpha``. A float: the proportion of
        outliers in the training set, as in scikit-learn; the threshold is that
        quantile of ``score_samples`` on the training rows and ``alpha`` is not
        used.

    random_state : int, RandomState instance or None, default=None
        Seeds the calibration split or folds, and, when not None, the
        ``random_state`` of each cloned embedder that has one, all through local
        generators. ``None`` draws the split from fresh entropy and keeps the
        embedder's own ``random_state``.

    Attributes
    ----------
    embedder_ : estimator
        The fitted embedder (with cross-conformal, the first fold's).

    embedders_ : list of estimators
        One fitted embedder per model: ``n_folds`` with cross-conformal, else one.

    statistics_ : list of LatentStatistic
        The fitted statistic of each model.

    calibration_ : Calibration
        The fitted calibration (``ConformalCalibration`` holds the sorted
        calibration scores of each model in ``scores_``).

    n_calibration_ : int
        Rows whose scores calibrate the p-values (0 for ``"prior"``).
        ``ConditionalConformalCalibration`` (``fpr_confidence`` set) also holds
        ``pvalue_table_``, the p-value of each rank.

    prior_ : {"gaussian", "uniform"}
        Base distribution of the embedder's latents.

    n_components_ : int
        Latent dimension ``d``.

    offset_ : float
        ``decision_function = score_samples - offset_``: the score of a p-value
        just above ``alpha`` with ``contamination="auto"``, otherwise the
        ``contamination`` quantile of the training scores.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of str
        Defined only when ``X`` has string feature names.

    See Also
    --------
    benjamini_hochberg : Flag many points at a false discovery rate.
    outlier_embedder : The default embedder's rule.
    sklearn.neighbors.LocalOutlierFactor : Local density on the raw features.
    sklearn.ensemble.IsolationForest : Isolation-depth scores, not calibrated.

    References
    ----------
    S. Bates, E. Candes, L. Lei, Y. Romano, M. Sesia, "Testing for outliers with
    conformal p-values", Annals of Statistics 51 (2023).
    S. K. Sarkar, "On the Simes inequality and its generalization", IMS
    Collections 1 (2008).
    V. Vovk, "Cross-conformal predictors", Annals of Mathematics and Artificial
    Intelligence 74 (2015).
    R. F. Barber, E. Candes, A. Ramdas, R. Tibshirani, "Predictive inference
    with the jackknife+", Annals of Statistics 49 (2021).
    I. Butakov et al., "Efficient Distribution Matching of Representations via
    Noise-Injected Deep InfoMax", ICLR 2025, arXiv:2410.06993.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm import LatentOutlierDetector, NoiseInjectedInfoMax
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 2)) @ rng.standard_normal((2, 6))
    >>> det = LatentOutlierDetector(
    ...     NoiseInjectedInfoMax(n_components=4, hidden_layer_sizes=(16,), max_epochs=5),
    ...     random_state=0,
    ... ).fit(X)
    >>> det.n_calibration_  # 20% of the rows, held out before training
    100
    >>> p = det.pvalues(X)
    >>> bool(((p > 0) & (p <= 1)).all())
    True
    >>> bool(np.array_equal(det.predict(X) == -1, p <= det.alpha))
    True
    """

    _parameter_constraints: dict = {
        "embedder": [HasMethods(["fit", "transform"]), None],
        "prefit": ["boolean"],
        # a live view of the registry: statistics registered later are accepted
        "statistic": [StrOptions(STATISTICS.keys())],
        "calibration": [StrOptions({"conformal", "cross-conformal", "prior"})],
        "calibration_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "n_folds": [Interval(Integral, 2, None, closed="left")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "fpr_confidence": [Interval(Real, 0, 1, closed="neither"), None],
        "contamination": [
            StrOptions({"auto"}),
            Interval(Real, 0, 0.5, closed="right"),
        ],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        embedder=None,
        *,
        prefit=False,
        statistic="knn",
        calibration="conformal",
        calibration_size=0.2,
        n_folds=5,
        n_neighbors=5,
        alpha=0.05,
        fpr_confidence=None,
        contamination="auto",
        random_state=None,
    ):
        self.embedder = embedder
        self.prefit = prefit
        self.statistic = statistic
        self.calibration = calibration
        self.calibration_size = calibration_size
        self.n_folds = n_folds
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.fpr_confidence = fpr_confidence
        self.contamination = contamination
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    # Not skipped: the embedder's fit validates the embedder's own parameters.
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Split off calibration rows, fit embedder and statistic, calibrate.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, taken to be inliers (up to ``contamination``).

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted detector.
        """
        statistic = make_statistic(self.statistic, n_neighbors=self.n_neighbors)
        calibration = self._make_calibration()
        if self.calibration == "prior" and not statistic.chi2_null:
            chi2 = " or ".join(repr(n) for n, c in STATISTICS.items() if c.chi2_null)
            raise ValueError(
                f"calibration='prior' needs a statistic with a chi-square law under "
                f"the prior ({chi2}), got statistic={self.statistic!r}; use "
                "calibration='conformal'"
            )
        if self.fpr_confidence is not None and self.calibration != "conformal":
            raise ValueError(
                f"fpr_confidence={self.fpr_confidence!r} needs calibration="
                f"'conformal', got calibration={self.calibration!r}: the "
                "calibration-conditional guarantee (Bates et al., 2023) needs "
                "calibration scores that are i.i.d. given one fitted model; "
                "cross-conformal scores come from n_folds models, each fitted on "
                "the others' calibration rows, and 'prior' has no calibration rows"
            )
        if self.prefit and self.embedder is None:
            raise ValueError("prefit=True needs a fitted embedder, got None")
        X_checked = validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_min_samples=2
        )
        n_samples, n_features = X_checked.shape
        if self.prefit:
            check_is_fitted(self.embedder)

        seeds = DetectorSeeds.derive(self.random_state, self.n_folds)
        needs_training = statistic.needs_training or not self.prefit
        folds = calibration.folds(
            n_samples, np.random.default_rng(seeds.folds), needs_training
        )
        statistic.check_n_train(min(len(train) for train, _ in folds), n_samples)
        if self.contamination == "auto" and self.calibration != "prior":
            self._warn_if_nothing_can_be_flagged(sum(len(cal) for _, cal in folds))

        prefit_copy = copy.deepcopy(self.embedder) if self.prefit else None
        embedders, statistics, cal_scores, d = [], [], [], None
        for (train, cal), seed in zip(folds, seeds.embedders):
            if self.prefit:
                embedder = prefit_copy
            else:
                embedder = self._new_embedder(len(train), n_features, seed)
                self._fit_embedder(embedder, _take_rows(X, train))
            stat = copy.deepcopy(statistic)
            if stat.needs_training:
                G = _gaussian_latents(embedder, _take_rows(X, train), len(train))
                stat.fit(G)
                d = G.shape[1]
            if len(cal):
                G = _gaussian_latents(embedder, _take_rows(X, cal), len(cal))
                cal_scores.append(stat.score(G))
                d = G.shape[1]
            else:
                cal_scores.append(np.zeros(0))
            if d is None:  # only the latent width is needed (prior statistic)
                d = _gaussian_latents(embedder, _take_rows(X, train[:1]), 1).shape[1]
            embedders.append(embedder)
            statistics.append(stat)

        self.embedders_ = embedders
        self.embedder_ = embedders[0]
        self.statistics_ = statistics
        self.prior_ = resolve_prior(
            getattr(self.embedder_, "prior", "gaussian")
        ).base.name
        self.n_components_ = int(d)
        self.calibration_ = calibration.fit(cal_scores, self.n_components_)
        self.n_calibration_ = self.calibration_.n_calibration_

        if self.contamination == "auto":
            self.offset_ = self.calibration_.offset(self.alpha)
        else:
            scores = self.calibration_.score_samples(self._statistics(X, n_samples))
            self.offset_ = float(np.percentile(scores, 100.0 * self.contamination))
        return self

    def _make_calibration(self) -> Calibration:
        if self.calibration == "prior":
            return PriorCalibration()
        if self.calibration == "conformal":
            if self.fpr_confidence is not None:
                return ConditionalConformalCalibration(
                    self.calibration_size, self.fpr_confidence
                )
            return ConformalCalibration(self.calibration_size)
        return ConformalCalibration(n_folds=self.n_folds)

    def _warn_if_nothing_can_be_flagged(self, n_cal: int) -> None:
        """Warn, before training, when no p-value can reach ``alpha``."""
        if self.fpr_confidence is None:
            if self.alpha * (n_cal + 1) >= 1:
                return
            msg = (
                f"the smallest conformal p-value is 1/(n_cal + 1) = 1/{n_cal + 1} > "
                f"alpha = {self.alpha}: predict will flag nothing. Calibrate on "
                "more rows (calibration_size, or calibration='cross-conformal') or "
                "raise alpha."
            )
        else:
            smallest = conditional_pvalue_table(n_cal, self.fpr_confidence)[0]
            if smallest <= self.alpha:
                return
            need = conditional_calibration_rows(self.alpha, self.fpr_confidence)
            msg = (
                f"the smallest conformal p-value with fpr_confidence="
                f"{self.fpr_confidence} and n_cal = {n_cal} calibration rows is "
                f"{smallest:.3g} > alpha = {self.alpha}: predict will flag nothing. "
                f"This alpha and fpr_confidence need at least {need} calibration "
                "rows (calibration_size); or raise alpha or lower fpr_confidence."
            )
        warnings.warn(msg, UserWarning, stacklevel=3)

    def _new_embedder(self, n_train: int, n_features: int, seed: int):
        if self.embedder is None:
            embedder = outlier_embedder(n_train, n_features)
        else:
            embedder = clone(self.embedder)
        if self.random_state is not None and "random_state" in embedder.get_params(
            deep=False
        ):
            # scikit-learn's random_state takes 32-bit seeds.
            embedder.set_params(random_state=seed & 0xFFFFFFFF)
        return embedder

    def _fit_embedder(self, embedder, X) -> None:
        if self.embedder is None:
            # The default embedder's capacity exceeds log(batch_size) on purpose,
            # and its final MI estimate is expected to be negative (see
            # outlier_embedder): both warnings would only say so.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CapacityWarning)
                warnings.simplefilter("ignore", ConvergenceWarning)
                embedder.fit(X)
        else:
            embedder.fit(X)

    # ------------------------------------------------------------ inference
    def _n_samples(self, X) -> int:
        """Check ``X`` against the fit (the embedder converts it again)."""
        check_is_fitted(self)
        return validate_data(
            self, X, dtype=[np.float64, np.float32], reset=False
        ).shape[0]

    def _statistics(self, X, n_samples: int) -> np.ndarray:
        """Each model's statistic on ``X``: shape ``(n_models, n_samples)``."""
        cache = {}  # a prefit embedder is shared by every fold: encode once
        rows = []
        for embedder, stat in zip(self.embedders_, self.statistics_):
            key = id(embedder)
            if key not in cache:
                cache[key] = _gaussian_latents(embedder, X, n_samples)
            rows.append(stat.score(cache[key]))
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), n_samples)

    def latents(self, X):
        """Latents of ``embedder_``, on ``N(0, I_d)`` for inliers of a matched embedder.

        The embedder's output, mapped back to the prior's base and through the
        probit for the uniform prior. With cross-conformal, the first fold's
        embedder.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components_)
            Gaussianized latents.
        """
        return _gaussian_latents(self.embedder_, X, self._n_samples(X))

    def pvalues(self, X):
        """Calibrated p-values: small means outlying.

        Conformal: ``(1 + #{calibration scores >= s(x)}) / (n_calibration_ + 1)``,
        summed over the folds with cross-conformal. Prior: ``P(chi2(d) >= s(x))``.
        For an inlier exchangeable with the calibration rows,
        ``P(p <= alpha) <= alpha`` (conformal), ``<= 2 alpha`` up to ``O(K / n)``
        (cross-conformal); exactly ``alpha`` when the latents follow the prior
        (prior). With ``fpr_confidence``, the calibration-conditional p-value of
        the same rank (``calibration_.pvalue_table_``), never smaller: with
        probability ``fpr_confidence`` over the calibration set,
        ``P(p <= t | calibration set) <= t`` for every ``t``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        pvalues : ndarray of shape (n_samples,)
            Values in ``(0, 1]`` (conformal) or ``[0, 1]`` (prior).
        """
        S = self._statistics(X, self._n_samples(X))
        return self.calibration_.pvalues(S)

    def score_samples(self, X):
        """Log p-values without ties: higher is more normal.

        Prior calibration: ``log pvalues(X)``, finite far into the tail.
        Conformal: ``log pvalues(X)`` moved up by less than half a step by a term
        that decreases with the statistic, so that samples beyond every
        calibration score (which share the smallest p-value) are still ranked:
        ``pvalues <= exp(score_samples) < pvalues + 1 / (2 (n_calibration_ + 1))``,
        with the marginal p-values: ``fpr_confidence`` changes neither the
        scores nor their ranking, only ``offset_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Strictly decreasing in the statistic (in each model's, with
            cross-conformal).
        """
        S = self._statistics(X, self._n_samples(X))
        return self.calibration_.score_samples(S)

    def decision_function(self, X):
        """Shifted scores: negative for outliers, non-negative for inliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``; with ``contamination="auto"``
            negative exactly where ``pvalues(X) <= alpha``.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Label samples as inliers (+1) or outliers (-1).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 where ``decision_function(X) < 0``, +1 elsewhere.
        """
        decision = self.decision_function(X)
        labels = np.ones(decision.shape[0], dtype=int)
        labels[decision < 0] = -1
        return labels
