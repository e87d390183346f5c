"""LatentOutlierDetector: calibrated outlier scores on prior-matched latents.

When latents follow ``N(0, I_d)``, ``||z||^2`` follows ``chi2(d)``, so every sample
gets a p-value without labelled outliers, and a threshold on it fixes the
false-positive rate in advance. Everything here is numpy and scipy on the
latents; the embedder does the torch work.
"""

from __future__ import annotations

import copy
from numbers import Real

import numpy as np
from scipy.special import gammaln, ndtri
from scipy.stats import chi2
from sklearn.base import BaseEstimator, OutlierMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from ._infomax import NoiseInjectedInfoMax
from ._priors import resolve_prior
from ._validation import HasMethods, Interval, StrOptions, _fit_context

__all__ = ["LatentOutlierDetector", "chi2_logsf", "probit"]

#: Uniform latents are clipped to ``[UNIFORM_CLIP, 1 - UNIFORM_CLIP]`` before the
#: probit. The encoder trains in float32, whose resolution just below 1 is
#: ``2**-24``; clipping both tails there treats them alike (``|probit| <= 5.3``).
UNIFORM_CLIP = float(np.finfo(np.float32).epsneg)
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

    Maps ``U([0, 1]^d)`` to ``N(0, I_d)`` component by component, so that uniform
    latents are scored by the Gaussian rule.
    """
    u = np.clip(np.asarray(u, dtype=np.float64), UNIFORM_CLIP, 1.0 - UNIFORM_CLIP)
    return ndtri(u)


class LatentOutlierDetector(OutlierMixin, BaseEstimator):
    """Outlier detection with calibrated p-values on prior-matched latents.

    An embedder (by default :class:`NoiseInjectedInfoMax`) maps samples to latents
    that follow its prior. For the Gaussian prior ``N(0, I_d)`` the squared norm
    ``||z||^2`` of an inlier follows ``chi2(d)``, so the p-value
    ``P(chi2(d) >= ||z||^2)``, the probability under the prior of a latent at
    least as extreme, is calibrated without labelled outliers: predicting
    outliers where the p-value is below ``alpha`` has a false-positive rate of
    ``alpha`` on inliers, to the extent that the latents match the prior. Uniform
    latents on ``[0, 1]^d`` are first mapped to ``N(0, I_d)`` by the probit
    ``Phi^{-1}`` per component (the probability integral transform), then scored
    the same way: the uniform density is flat, so extremeness has to be defined,
    and this choice calls samples extreme when they sit near the faces and
    corners of the cube.

    Parameters
    ----------
    embedder : estimator or None, default=None
        A transformer whose output should follow a prior: a
        :class:`NoiseInjectedInfoMax` or any object with ``fit`` and
        ``transform``. Its ``prior`` parameter (``"gaussian"`` when it has none)
        names the distribution of the latents. ``None`` means
        ``NoiseInjectedInfoMax()``. Cloned and fitted on ``X`` unless ``prefit``.

    prefit : bool, default=False
        Use a fitted ``embedder`` as is (a copy is stored in ``embedder_``); ``fit``
        then only sets the threshold, and with ``contamination="auto"`` and
        ``whiten=False`` learns nothing from ``X`` beyond its shape.

    alpha : float in (0, 1), default=0.05
        Target false-positive rate when ``contamination="auto"``: ``predict``
        returns -1 exactly where ``pvalues(X) < alpha``.

    contamination : "auto" or float in (0, 0.5], default="auto"
        ``"auto"``: threshold at the p-value ``alpha``. A float: the proportion of
        outliers in the training set, as in scikit-learn; the threshold is that
        quantile of the training scores and ``alpha`` is not used.

    whiten : bool, default=False
        Estimate the mean and covariance of the training latents and whiten
        with them before scoring; p-values then refer to ``chi2(d)`` of the
        Mahalanobis distance. This removes the correlations that per-component
        normalization leaves (BatchNorm standardizes but does not decorrelate),
        at the price of a plug-in estimate. It also amplifies the directions in
        which the training latents vary little. That tends to raise detection
        power, and with it the false-positive rate of inliers whose latents
        deviate along those directions (``benchmarks/bench_outliers.py``).

    random_state : int, RandomState instance or None, default=None
        When not None, set as the ``random_state`` of the cloned embedder (if it
        has one), so that fitting is reproducible. ``None`` keeps the embedder's
        own. Not used with ``prefit=True``.

    Attributes
    ----------
    embedder_ : estimator
        The fitted embedder.

    prior_ : {"gaussian", "uniform"}
        Base distribution of the latents.

    n_components_ : int
        Latent dimension ``d``, the degrees of freedom of the chi-square.

    offset_ : float
        ``decision_function = score_samples - offset_``: ``log(alpha)`` with
        ``contamination="auto"``, otherwise the ``contamination`` quantile of the
        training scores.

    location_ : ndarray of shape (n_components_,)
        Mean of the training latents (after the probit for the uniform prior).
        Only with ``whiten=True``.

    whitening_ : ndarray of shape (n_components_, n_components_)
        ``W`` with ``W @ cov @ W.T = I`` for the training latent covariance.
        Only with ``whiten=True``.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of str
        Defined only when ``X`` has string feature names.

    See Also
    --------
    sklearn.covariance.EllipticEnvelope : Robust Gaussian fit on the raw features,
        thresholded at a contamination quantile.
    sklearn.ensemble.IsolationForest : Isolation-depth scores, not calibrated.
    NoiseInjectedInfoMax : The default embedder.

    References
    ----------
    I. Butakov et al., "Efficient Distribution Matching of Representations via
    Noise-Injected Deep InfoMax", ICLR 2025, arXiv:2410.06993.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm import LatentOutlierDetector, NoiseInjectedInfoMax
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 2)) @ rng.standard_normal((2, 6))
    >>> det = LatentOutlierDetector(
    ...     NoiseInjectedInfoMax(hidden_layer_sizes=(16,), max_epochs=5),
    ...     random_state=0,
    ... ).fit(X)
    >>> p = det.pvalues(X)
    >>> bool(((p >= 0) & (p <= 1)).all())
    True
    >>> bool(np.array_equal(det.predict(X) == -1, p < det.alpha))
    True
    """

    _parameter_constraints: dict = {
        "embedder": [HasMethods(["fit", "transform"]), None],
        "prefit": ["boolean"],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "contamination": [
            StrOptions({"auto"}),
            Interval(Real, 0, 0.5, closed="right"),
        ],
        "whiten": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        embedder=None,
        *,
        prefit=False,
        alpha=0.05,
        contamination="auto",
        whiten=False,
        random_state=None,
    ):
        self.embedder = embedder
        self.prefit = prefit
        self.alpha = alpha
        self.contamination = contamination
        self.whiten = whiten
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    # Not skipped: the embedder's fit validates the embedder's own parameters.
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the embedder (unless ``prefit``) and set the threshold.

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
        n_samples = validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_min_samples=2
        ).shape[0]
        if self.prefit:
            if self.embedder is None:
                raise ValueError("prefit=True needs a fitted embedder, got None")
            check_is_fitted(self.embedder)
            embedder = copy.deepcopy(self.embedder)
        else:
            embedder = clone(
                NoiseInjectedInfoMax() if self.embedder is None else self.embedder
            )
            if self.random_state is not None and "random_state" in embedder.get_params(
                deep=False
            ):
                embedder.set_params(random_state=self.random_state)
            # The original X, so that the embedder sees the feature names too.
            embedder.fit(X)
        self.embedder_ = embedder
        self.prior_ = resolve_prior(getattr(embedder, "prior", "gaussian")).base.name

        Z = self._base_latents(X, n_samples)
        d = Z.shape[1]
        self.n_components_ = d
        for name in ("location_", "whitening_"):
            self.__dict__.pop(name, None)
        if self.whiten:
            if n_samples <= d:
                raise ValueError(
                    f"whiten=True estimates a {d}x{d} covariance and needs more "
                    f"than {d} samples, got {n_samples}"
                )
            self.location_, self.whitening_ = _whitening(Z)

        if self.contamination == "auto":
            self.offset_ = float(np.log(self.alpha))
        else:
            scores = self._scores_from_latents(Z)
            self.offset_ = float(np.percentile(scores, 100.0 * self.contamination))
        return self

    # ------------------------------------------------------------ inference
    def _base_latents(self, X, n_samples: int) -> np.ndarray:
        """Latents on the base distribution (``N(0, I)`` or ``U([0, 1]^d)``)."""
        Z = self.embedder_.transform(X)
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim != 2 or Z.shape[0] != n_samples:
            raise ValueError(
                "the embedder must return latents of shape (n_samples, d); got "
                f"{Z.shape}"
            )
        prior = getattr(self.embedder_, "prior", "gaussian")
        Z = np.asarray(resolve_prior(prior).from_target(Z), dtype=np.float64)
        if not np.all(np.isfinite(Z)):
            raise ValueError("the embedder returned NaN or infinite latents")
        return Z

    def _gaussian_latents(self, Z: np.ndarray) -> np.ndarray:
        if self.prior_ == "uniform":
            Z = probit(Z)
        # The fitted state, not the parameter: set_params after fit changes nothing.
        if hasattr(self, "whitening_"):
            Z = (Z - self.location_) @ self.whitening_.T
        return Z

    def _scores_from_latents(self, Z: np.ndarray) -> np.ndarray:
        G = self._gaussian_latents(Z)
        return chi2_logsf(np.einsum("ij,ij->i", G, G), G.shape[1])

    def _n_samples(self, X) -> int:
        """Check ``X`` against the fit (the embedder converts it again)."""
        check_is_fitted(self)
        return validate_data(
            self, X, dtype=[np.float64, np.float32], reset=False
        ).shape[0]

    def latents(self, X):
        """Latents scored by the detector, on ``N(0, I_d)`` for inliers.

        The embedder's output, mapped through the probit for the uniform prior and
        whitened when ``whiten=True``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components_)
            Gaussianized latents.
        """
        return self._gaussian_latents(self._base_latents(X, self._n_samples(X)))

    def score_samples(self, X):
        """Log p-values: higher is more normal.

        ``log P(chi2(d) >= ||z||^2)`` for the Gaussianized latent ``z``: 0 at the
        centre of the prior, decreasing with distance from it, finite far into the
        tail (no ties among extreme samples).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``log(pvalues(X))``.
        """
        return self._scores_from_latents(self._base_latents(X, self._n_samples(X)))

    def pvalues(self, X):
        """Probability under the prior of a latent at least as extreme.

        ``P(chi2(d) >= ||z||^2)``: uniform on ``[0, 1]`` for inliers whose latents
        follow the prior.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        pvalues : ndarray of shape (n_samples,)
            Values in ``[0, 1]``; small means outlying.
        """
        return np.exp(self.score_samples(X))

    def decision_function(self, X):
        """Shifted scores: negative for outliers, non-negative for inliers.

        With ``contamination="auto"`` this is ``log(pvalue / alpha)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
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


def _whitening(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and symmetric inverse square root of the covariance of ``Z``."""
    location = Z.mean(axis=0)
    cov = np.atleast_2d(np.cov(Z, rowvar=False))
    eigval, eigvec = np.linalg.eigh(cov)
    top = float(eigval.max()) if eigval.max() > 0 else 1.0
    eigval = np.maximum(eigval, 1e-12 * top)
    whitening = (eigvec / np.sqrt(eigval)) @ eigvec.T
    return location, whitening
