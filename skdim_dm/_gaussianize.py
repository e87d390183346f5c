"""Gaussianizer: invertible, RBIG-style joint Gaussianization of any latents.

Iterative Gaussianization (Laparra, Camps-Valls and Malo, 2011) alternates a
per-dimension Gaussianization with a rotation. Each marginal step leaves the
total correlation unchanged and removes the marginal negentropy; the next
rotation turns part of the remaining dependence into new marginal
non-Gaussianity for the following step to remove, so the iteration converges
to ``N(0, I)``. scikit-learn offers only the marginal step
(``QuantileTransformer(output_distribution="normal")``), which clips at about
``+-5.2`` and so is not invertible on held-out rows outside the training range.

Every layer is fitted on the training rows and only applied to new ones, so its
estimation error moves new rows but not the training rows: layer after layer,
held-out rows drift away from ``N(0, I)`` (their ``||z||^2`` grows) while the
training rows look ever better. Three choices keep that drift small: few knots
per marginal map (a smooth, histogram-like density, ``(2 n)^(1/3)`` of them by
default), the identity for a feature that is already as Gaussian as the
training rows can tell, and a layer count chosen on held-out rows
(``n_layers="auto"``, the held-out negative log-likelihood of the flow).

Everything here is numpy and scipy: no torch, no network, no training loop.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from scipy.special import ndtr, ndtri
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import Interval, StrOptions, _fit_context, derive_seeds

__all__ = ["Gaussianizer"]

_EPS = np.finfo(np.float64).eps
#: Variation below this fraction of a value's magnitude is float rounding, not
#: signal (``0.1 + 0.2`` and ``0.3`` differ by ``0.19`` of it): such a column is
#: constant, and such knots are one knot.
_ROUNDING = 64 * _EPS
#: ``n_layers="auto"``: stop after this many layers without a lower validation
#: negative log-likelihood ...
_PATIENCE = 10
#: ... and never fit more than this many while choosing.
_MAX_AUTO_LAYERS = 500
#: A layer leaves a feature alone (the identity) when its Kolmogorov-Smirnov
#: distance to ``N(0, 1)`` is below this over ``sqrt(n_samples)``: the feature
#: is as Gaussian as the training rows can tell (an exact sample exceeds it
#: with probability 0.27), and fitting it would only add estimation noise that
#: moves new rows.
_SKIP = 1.0


class _MarginalMap:
    """Strictly increasing piecewise-linear maps ``x -> z``, one per column.

    Column ``j`` maps its knots ``x_knots[j]`` (training quantiles, strictly
    increasing) to ``z_knots[j] = Phi^{-1}(p)``, ``p`` the smoothed empirical CDF
    there, interpolates linearly between knots and continues linearly beyond
    the outermost knots with slope ``tail_slopes[j]``. Every piece has a positive
    slope, so the map is a bijection of the real line, and its inverse swaps
    the roles of the knots. A single knot at 0 with image 0 and slope 1 is the
    identity (a column the layer leaves alone).
    """

    def __init__(self, x_knots, z_knots, tail_slopes):
        self.x_knots = x_knots
        self.z_knots = z_knots
        self.tail_slopes = tail_slopes

    @classmethod
    def fit(cls, S: np.ndarray, n_knots: int, ks=None, scale=0.0) -> _MarginalMap:
        """Maps fitted to the training rows, given as ``S``: each column sorted;
        ``ks``: their :func:`_ks_distances` when known; ``scale``: the magnitude
        of the values a rotation mixed into these columns (their rounding error
        is relative to it, not to the columns' own values)."""
        n = S.shape[0]
        m = min(n_knots, n)
        levels = np.linspace(0.0, 1.0, m)
        # Quantiles at fractional ranks r = level (n - 1) of the order statistics
        # (np.quantile's default), interpolated in the sorted columns.
        ranks = levels * (n - 1)
        lo = np.floor(ranks).astype(np.intp)
        hi = np.minimum(lo + 1, n - 1)
        frac = (ranks - lo)[:, None]
        knots = S[lo] + frac * (S[hi] - S[lo])
        ks = _ks_distances(S) if ks is None else ks
        gaussian = np.sqrt(n) * ks < _SKIP
        x_knots, z_knots, slopes = [], [], []
        for j in range(S.shape[1]):
            if gaussian[j]:
                x_knots.append(np.zeros(1))
                z_knots.append(np.zeros(1))
                slopes.append(1.0)
                continue
            col = knots[:, j]
            # Knots closer than float rounding of their magnitude are one knot
            # (an atom, or the same value computed two ways, or what a rotation
            # left of a constant direction): kept apart, they would give a
            # slope of ~1e16 between them. A group collapses to its
            # middle knot at the group's mean rank: the middle of the atom's
            # jump in the empirical CDF.
            tol = _ROUNDING * max(abs(col[0]), abs(col[-1]), scale)
            starts = np.flatnonzero(np.concatenate([[True], np.diff(col) > tol]))
            ends = np.append(starts[1:], m)
            group = np.repeat(np.arange(starts.size), ends - starts)
            xk = col[(starts + ends - 1) // 2]
            r = np.bincount(group, weights=ranks) / (ends - starts)
            # Weibull plotting positions (r + 1) / (n + 1) = E[F(X_(r+1))], the
            # expected CDF at the order statistic: where a new row falls on
            # average. In (0, 1), so z is finite: the training extremes map to
            # +-Phi^{-1}(n / (n + 1)). On held-out digits and breast-cancer PCA
            # latents (d = 8, 5 seeds) they gave a higher ||z||^2 KS p and a
            # smaller max |cov - I| than Hazen's (r + 1/2) / n.
            zk = ndtri((r + 1.0) / (n + 1.0))
            # np.interp would overflow to inf silently on knots a subnormal
            # distance apart.
            with np.errstate(over="ignore"):
                pieces = np.diff(zk) / np.diff(xk)
            if not np.all(np.isfinite(pieces)):
                raise ValueError(_SCALE_ERROR)
            x_knots.append(xk)
            z_knots.append(zk)
            slopes.append(_tail_slope(xk, zk))
        return cls(x_knots, z_knots, np.array(slopes, dtype=np.float64))

    @classmethod
    def embed(cls, sub: _MarginalMap, active: np.ndarray) -> _MarginalMap:
        """``sub``'s maps on the ``active`` columns, the identity on the others."""
        d = active.size
        x_knots = [np.zeros(1) for _ in range(d)]
        z_knots = [np.zeros(1) for _ in range(d)]
        slopes = np.ones(d)
        for i, j in enumerate(np.flatnonzero(active)):
            x_knots[j], z_knots[j] = sub.x_knots[i], sub.z_knots[i]
            slopes[j] = sub.tail_slopes[i]
        return cls(x_knots, z_knots, slopes)

    def forward(self, Y: np.ndarray) -> np.ndarray:
        return self._apply(Y, self.x_knots, self.z_knots, self.tail_slopes)

    def inverse(self, Z: np.ndarray) -> np.ndarray:
        return self._apply(Z, self.z_knots, self.x_knots, 1.0 / self.tail_slopes)

    def log_slope(self, Y: np.ndarray) -> np.ndarray:
        """``log dz/dx`` at each point, summed over columns: the layer's log-det."""
        out = np.zeros(Y.shape[0])
        for j in range(Y.shape[1]):
            x, z, y = self.x_knots[j], self.z_knots[j], Y[:, j]
            tail = np.log(self.tail_slopes[j])
            if x.size < 2:
                out += tail
                continue
            pieces = np.log(np.diff(z) / np.diff(x))
            k = np.clip(np.searchsorted(x, y, side="right") - 1, 0, x.size - 2)
            out += np.where((y < x[0]) | (y > x[-1]), tail, pieces[k])
        return out

    @staticmethod
    def _apply(Y, sources, targets, slopes):
        out = np.empty_like(Y)
        for j in range(Y.shape[1]):
            y, s, t = Y[:, j], sources[j], targets[j]
            if s.size == 1:  # a constant column's map, or the identity
                out[:, j] = t[0] + (y - s[0]) * slopes[j]
                continue
            z = np.interp(y, s, t)
            lo, hi = y < s[0], y > s[-1]
            z[lo] = t[0] + (y[lo] - s[0]) * slopes[j]
            z[hi] = t[-1] + (y[hi] - s[-1]) * slopes[j]
            out[:, j] = z
        return out


def _tail_slope(xk: np.ndarray, zk: np.ndarray) -> float:
    """Slope ``dz/dx`` of both linear tails: a Gaussian fitted to the bulk.

    The secant of the map between the knots nearest ``z = -1`` and ``z = +1``
    (the central 68%), i.e. ``1 / sigma`` of the Gaussian through the 16% and
    84% quantiles; all knots when there are too few. Never steeper than the
    secant through the outermost knots: a tight bulk among far-out rows (most
    of a column at one value up to tiny differences) would otherwise give a
    huge slope and send a new row just beyond the range to a huge ``z``. Tails
    are linear in both directions, so neither ``transform`` nor
    ``inverse_transform`` compounds over layers: a later layer sees nearly
    standard normal data, its slope is about 1, and a held-out outlier passes
    through it about unchanged. (A slope fitted to the extreme quantiles
    amplified outliers layer after layer, and a heavier-than-Gaussian tail made
    ``inverse_transform`` grow doubly exponentially with the number of layers.)
    A single knot (a constant column) gets slope 1.
    """
    if xk.size < 2:
        return 1.0
    lo = int(np.argmin(np.abs(zk + 1.0)))
    hi = int(np.argmin(np.abs(zk - 1.0)))
    if hi <= lo:
        lo, hi = 0, xk.size - 1
    central = (zk[hi] - zk[lo]) / (xk[hi] - xk[lo])
    outer = (zk[-1] - zk[0]) / (xk[-1] - xk[0])
    return float(min(central, outer))


def _n_knots(n_quantiles, n: int, auto_layers: bool) -> int:
    """Knots per marginal map, capped at ``n``: ``n_quantiles``, or for ``"auto"``
    ``ceil((2 n)^(1/3))`` (the Terrell-Scott number of histogram bins) when the
    layer count is chosen on held-out rows, 1000 for a fixed count."""
    if n_quantiles == "auto":
        if not auto_layers:
            n_quantiles = 1000
        else:
            n_quantiles = max(2, math.ceil((2.0 * n) ** (1.0 / 3.0) - 1e-9))
    return int(min(n_quantiles, n))


def _haar_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed orthogonal matrix (QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    return q * signs


def _pca_rotation(Y: np.ndarray) -> np.ndarray:
    """Principal axes of ``Y``, by decreasing variance, with deterministic signs."""
    cov = np.atleast_2d(np.cov(Y, rowvar=False, bias=True))
    _, vecs = np.linalg.eigh(cov)
    vecs = vecs[:, ::-1]
    # Largest-magnitude entry of each axis positive, as sklearn's svd_flip does.
    signs = np.sign(vecs[np.argmax(np.abs(vecs), axis=0), np.arange(vecs.shape[1])])
    signs[signs == 0] = 1.0
    return vecs * signs


def _scaled_moments(X: np.ndarray):
    """``(expo, mean, centered, std)`` of ``X * 2**-expo``, each column scaled
    exactly to magnitude ``[0.5, 1)``: a spread below :data:`_ROUNDING` there is
    float rounding."""
    expo = np.frexp(np.max(np.abs(X), axis=0))[1]
    Xs = np.ldexp(X, -expo)
    mean = Xs.mean(axis=0)
    centered = Xs - mean
    return expo, mean, centered, np.sqrt(np.mean(centered * centered, axis=0))


def _whitening(X: np.ndarray):
    """``(mean, W, W^{-1}, active)`` with ``(X - mean) @ W`` white on ``active``.

    Each column is first scaled by a power of two to magnitude ``[0.5, 1)``
    (exact, so values near the float limits are handled like any others). A
    column whose spread is float rounding of its magnitude is constant: it
    passes through, centered, in units of ``max(1, 2**expo)``, and no layer
    touches it. The others
    are whitened by ZCA of their correlation matrix, ``D^{-1} V Lambda^{-1/2}
    V^T`` (Kessy et al., 2018), which keeps the input axes where the covariance
    is diagonal, so independent inputs are not mixed before the first marginal
    step, and is not thrown off by columns of very different scales. When the
    correlation matrix is singular (collinear columns, fewer rows than
    columns), the directions of (numerically) zero variance are not scaled and
    are left out of the layers too (``active`` False); the others, in principal
    axes, are whitened. Either way the map is invertible.
    """
    n, d = X.shape
    expo, mean_s, centered, std = _scaled_moments(X)
    J = np.flatnonzero(std > _ROUNDING)
    A, A_inv = np.eye(d), np.eye(d)
    active = np.zeros(d, dtype=bool)
    if J.size:
        S = centered[:, J] / std[J]
        lam, V = np.linalg.eigh(np.atleast_2d(S.T @ S / n))
        keep = lam > max(float(lam.max()), 0.0) * J.size * 1e3 * _EPS
        if keep.all():
            A_J = (V / np.sqrt(lam)) @ V.T
            A_J_inv = (V * np.sqrt(lam)) @ V.T
            active[J] = True
        else:
            order = np.concatenate([np.flatnonzero(keep)[::-1], np.flatnonzero(~keep)])
            V, lam, keep = V[:, order], lam[order], keep[order]
            scale = np.where(keep, 1.0 / np.sqrt(np.where(keep, lam, 1.0)), 1.0)
            A_J, A_J_inv = V * scale, (V / scale).T
            active[J[: int(keep.sum())]] = True
        A[np.ix_(J, J)] = A_J / std[J][:, None]
        A_inv[np.ix_(J, J)] = A_J_inv * std[J]
    # Back to the input's units. A constant column's spread gives no scale: it
    # stays in units of its magnitude (the power of two) when that is above 1,
    # so that a new row of a column constant at 1e9 does not land at |z| = 1e9,
    # and unscaled below, so that one constant at 1e-10 does not land at 1e10.
    with np.errstate(over="ignore"):  # subnormal inputs: fit raises on inf
        white = np.ldexp(A, -expo[:, None])
        dewhite = np.ldexp(A_inv, expo[None, :])
    small = np.setdiff1d(np.flatnonzero(expo <= 0), J)
    white[small, small] = dewhite[small, small] = 1.0
    return np.ldexp(mean_s, expo), white, dewhite, active


def _ks_distances(S: np.ndarray) -> np.ndarray:
    """Kolmogorov-Smirnov distance to ``N(0, 1)`` of each column of ``S``, sorted."""
    n = S.shape[0]
    cdf = ndtr(S)
    i = np.arange(1, n + 1, dtype=np.float64)[:, None]
    return np.maximum(i / n - cdf, cdf - (i - 1) / n).max(axis=0)


def _fit_layers(Y, active, n_layers, n_knots, rotation, rng, tol, Y_val=None):
    """Fit up to ``n_layers`` layers on ``Y`` (whitened), acting on ``active``.

    Returns ``(marginals, rotations, non_gaussianity, val_nll, chosen)``. With
    ``Y_val`` (rows held out, whitened alike), ``val_nll[k]`` is their mean
    negative log-likelihood under the flow of the first ``k`` layers (nats per
    row, up to a constant: the whitening's log-determinant and ``d/2 log(2
    pi)``); the fit stops after :data:`_PATIENCE` layers without a new minimum,
    and ``chosen`` is the largest layer count whose held-out negative
    log-likelihood is within one standard error of the minimum (paired over
    the held-out rows): more layers unless the held-out rows say they hurt.
    Without ``Y_val``, ``val_nll`` is empty and ``chosen`` the layers fitted.
    """
    act = np.flatnonzero(active)
    d, k = Y.shape[1], act.size
    marginals, rotations = [], []
    S = np.sort(Y[:, act], axis=0)
    ks = _ks_distances(S)
    non_gaussianity = [float(ks.mean()) if k else 0.0]
    scale = 0.0
    val_nll, since_best = [], []
    if Y_val is not None:
        log_det = np.zeros(Y_val.shape[0])
        row_nll = 0.5 * np.sum(Y_val[:, act] ** 2, axis=1)
        val_nll.append(float(row_nll.mean()))
    for layer in range(1, n_layers + 1):
        sub = _MarginalMap.fit(S, n_knots, ks, scale)
        marginal = _MarginalMap.embed(sub, active)
        Y = marginal.forward(Y)
        # Each entry of Y @ rot sums k products: its rounding error is up to
        # about k ulps of the largest value mixed into it.
        scale = k * float(np.abs(Y[:, act]).max()) if k else 0.0
        rot = np.eye(d)
        if rotation == "random":
            rot[np.ix_(act, act)] = _haar_rotation(k, rng)
        elif k:
            rot[np.ix_(act, act)] = _pca_rotation(Y[:, act])
        Y = Y @ rot
        marginals.append(marginal)
        rotations.append(rot)
        S = np.sort(Y[:, act], axis=0)
        ks = _ks_distances(S)
        non_gaussianity.append(float(ks.mean()) if k else 0.0)
        if Y_val is not None:
            log_det += sub.log_slope(Y_val[:, act])
            Y_val = marginal.forward(Y_val) @ rot
            row_nll = 0.5 * np.sum(Y_val[:, act] ** 2, axis=1) - log_det
            val_nll.append(float(row_nll.mean()))
            if layer == 1 or val_nll[-1] < val_nll[since_best[0][0]]:
                since_best = []
            since_best.append((layer, row_nll))
            if layer - since_best[0][0] >= _PATIENCE:
                break
        if tol is not None and non_gaussianity[-2] - non_gaussianity[-1] < tol:
            break
    chosen = len(marginals)
    if since_best:
        best, best_nll = since_best[0]
        chosen = best
        for layer, row_nll in since_best[1:]:
            diff = row_nll - best_nll
            if diff.mean() <= diff.std() / np.sqrt(diff.size):
                chosen = layer
    return marginals, rotations, non_gaussianity, np.asarray(val_nll), chosen


class _LayerSeeds(NamedTuple):
    """The seeds of one ``fit``, one per random role (derived in this order)."""

    #: The random rotations between layers.
    rotations: int
    #: The held-out rows that choose ``n_layers="auto"``.
    split: int


class Gaussianizer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Invertible joint Gaussianization of any features (RBIG-style).

    Maps data to ``N(0, I)`` jointly, not just per feature, by iterative
    Gaussianization (Laparra et al., 2011): an optional whitening step, then
    layers of [per-feature Gaussianization, rotation], each fitted on the
    training data and applied unchanged to new data. By default the number of
    layers is chosen on rows held out of the fit. Use it after any embedding
    (PCA, UMAP, :class:`NoiseInjectedInfoMax`) whose latents should be
    ``N(0, I)``.

    The per-feature step maps each feature through its interpolated empirical
    CDF and the standard normal quantile function: a few training quantiles
    are knots, ``Phi^{-1}(rank / (n + 1))`` (ranks from 1, the expected CDF at an
    order statistic) are their images, tied quantiles (equal up to float
    rounding) collapse to one knot at their mean rank, and the map is linear
    between knots. Outside the training range each feature continues linearly
    in the normal domain, with the slope of a Gaussian fitted to its central
    quantiles, so held-out rows are never clipped: an outlier stays an outlier
    (``QuantileTransformer`` would put it at ``+-5.2``), and ``max |cov - I|`` of
    held-out latents shows it. Every piece is strictly increasing, hence
    :meth:`inverse_transform` inverts :meth:`transform` exactly up to rounding,
    on any input.

    Each layer is fitted on the training rows, so its estimation error moves
    new rows and not the training rows: with many layers or many knots the
    training latents keep improving while held-out latents drift away from
    ``N(0, I)`` (their ``||z||^2`` grows). Three choices keep the drift small:
    few knots (a smooth map), the identity for a feature whose
    Kolmogorov-Smirnov distance to ``N(0, 1)`` is below ``1 / sqrt(n_samples)``
    (as Gaussian as the training rows can tell: fitting it would only add
    noise), and a layer count chosen on held-out rows. ``benchmarks/RESULTS.md``,
    "Gaussianizer", has the measurements against the ``QuantileTransformer``
    recipe.

    Parameters
    ----------
    n_layers : int or "auto", default="auto"
        Number of [marginal Gaussianization, rotation] layers (at most: ``tol``
        may stop earlier). ``"auto"`` holds out ``validation_fraction`` of the
        rows (drawn from ``random_state``) and fits layers on the others until
        the held-out rows' mean negative log-likelihood under the fitted flow
        has not reached a new minimum for 10 layers (500 at most). It takes the
        largest layer count whose held-out negative log-likelihood is within one
        standard error (paired over the held-out rows) of the minimum: more
        layers, unless the held-out rows show that they hurt. Then it refits the
        whitening and that many layers, with the same rotations, on all rows:
        every row informs the maps, the held-out rows only choose their number.
        No fixed count is good everywhere: after ``PCA(d, whiten=True)``,
        ``"auto"`` picks 18 to 71 layers on 1,257 digits rows at d = 8 and 90
        to 106 on 20,000 MNIST rows at d = 16, where 10 layers under-fit. With
        fewer than 3 rows it fits one layer. More layers match better and warp
        the classes more: held-out ``LogisticRegression`` accuracy was 0.81
        (digits) and 0.70 (MNIST) with ``"auto"``, 0.84 and 0.83 with 10
        layers. Where a linear model must still read the latents, set a small
        count.

    rotation : {"random", "pca"}, default="random"
        Rotation after each marginal step. ``"random"``: a fresh Haar-
        distributed orthogonal matrix per layer, drawn from ``random_state``
        (Laparra et al. prove convergence for random rotations). ``"pca"``: the
        principal axes of the current training data, deterministic.

    n_quantiles : int or "auto", default="auto"
        Knots per feature and layer (capped at the number of training rows).
        ``"auto"``: with ``n_layers="auto"``, ``ceil((2 n)^(1/3))`` for ``n``
        training rows, the Terrell-Scott number of histogram bins (13 for 1,000
        rows, 35 for 20,000), so that the map's slope is a smooth equal-count
        histogram density; with an integer ``n_layers``, 1000 (the earlier
        default). More knots follow the training rows more closely and
        generalize worse: with 1,000 knots every layer moves held-out rows by
        noise that later layers cannot remove, so many layers need few knots,
        while a few layers need detailed maps.

    whiten : bool, default=True
        Start with ZCA whitening of the correlation matrix (center, divide by
        the standard deviations, then ``C^{-1/2}``), so the rotations act on
        decorrelated, unit-scale features. ZCA leaves the axes of independent
        features unmixed. A feature constant up to float rounding (``0.3`` and
        ``0.1 + 0.2``) passes through centered, divided by its magnitude when
        that is above 1 (rounded to a power of two); when
        the features are collinear (or fewer rows than features), the
        directions of zero variance pass through unscaled, in principal axes.
        No layer acts on either. ``False`` is for features that are already
        white (after ``PCA(whiten=True)``): the layers then act on the raw
        features (constant ones are still centered and left alone), and on
        collinear features they can be ill-conditioned.

    tol : float or None, default=None
        Early stopping: stop after the first layer that lowers the
        non-Gaussianity of the training data (the mean over features of the
        Kolmogorov-Smirnov distance to ``N(0, 1)``, measured after the layer's
        rotation) by less than ``tol``. ``None`` never stops on it.
        Under exact normality that distance is about ``0.87 / sqrt(n_samples)``,
        a sensible scale for ``tol``.

    validation_fraction : float in (0, 1), default=0.2
        Share of the rows held out to choose the layer count when
        ``n_layers="auto"`` (at least one row); unused otherwise.

    random_state : int, RandomState instance, Generator or None, default=None
        Seeds the random rotations and the validation rows through local
        ``numpy.random.Generator`` objects; the global random state is left
        untouched. Set it for reproducible results: with ``None`` each fit
        draws other rotations.

    Attributes
    ----------
    n_layers_ : int
        Layers fitted: ``n_layers``, the count chosen by ``"auto"``, or fewer
        when ``tol`` stopped early.

    validation_nll_ : ndarray of shape (n_tried + 1,) or None
        With ``n_layers="auto"``: the held-out rows' mean negative
        log-likelihood (nats per row, up to a constant shared by all entries)
        after whitening (index 0) and after each layer tried. ``None`` for an
        integer ``n_layers`` and for fewer than 3 rows.

    mean_ : ndarray of shape (n_features_in_,)
        Subtracted before whitening (with ``whiten=False``: zeros, except for
        the features constant up to float rounding).

    whitening_ : ndarray of shape (n_features_in_, n_features_in_)
        ``(X - mean_) @ whitening_`` is white on the training data, on the
        features the layers act on (identity when ``whiten=False``).

    marginals_ : list of length ``n_layers_``
        Per layer, the fitted per-feature maps: ``x_knots`` and ``z_knots``
        (lists of strictly increasing arrays, one per feature) and
        ``tail_slopes`` (ndarray of shape (n_features_in_,), the slope ``dz/dx``
        beyond the outermost knots). A feature the layer leaves alone has the
        single knot 0 with image 0 and slope 1: the identity. A feature the layers leave alone has the
        single knot 0 with image 0 and slope 1 (the identity).

    rotations_ : ndarray of shape (``n_layers_``, ``n_features_in_``, ``n_features_in_``)
        Orthogonal matrices; layer ``k`` maps ``Y`` to ``Y @ rotations_[k]``.

    non_gaussianity_ : ndarray of shape (``n_layers_ + 1``,)
        Mean Kolmogorov-Smirnov distance of the training data's features to
        ``N(0, 1)`` after whitening, then after each layer.

    n_features_in_ : int

    feature_names_in_ : ndarray of str
        Defined only when ``X`` has string feature names.

    See Also
    --------
    sklearn.preprocessing.QuantileTransformer : The marginal step alone, clipped
        at the training range.
    sklearn.decomposition.PCA : ``whiten=True`` matches the first two moments.
    NoiseInjectedInfoMax : Learns latents matched to ``N(0, I)`` directly.

    References
    ----------
    V. Laparra, G. Camps-Valls and J. Malo, "Iterative Gaussianization: from ICA
    to Random Rotations", IEEE Transactions on Neural Networks, 22(4), 2011.

    A. Kessy, A. Lewin and K. Strimmer, "Optimal Whitening and
    Decorrelation", The American Statistician, 72(4), 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm import Gaussianizer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.exponential(size=(2000, 3)) @ rng.standard_normal((3, 3))
    >>> gauss = Gaussianizer(random_state=0).fit(X[:1500])
    >>> Z = gauss.transform(X[1500:])  # held-out rows, jointly ~ N(0, I)
    >>> bool(np.allclose(gauss.inverse_transform(Z), X[1500:]))
    True
    >>> gauss.get_feature_names_out()
    array(['gaussianizer0', 'gaussianizer1', 'gaussianizer2'], dtype=object)

    One search compares :class:`NoiseInjectedInfoMax` with the two-stage
    pipeline PCA then Gaussianizer, on accuracy and on matching side by side
    (``gaussianity_scorer`` is minus the kNN KL of the latents to ``N(0, I)``; it
    finds the latents in either pipeline: the steps before the classifier):

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.pipeline import Pipeline, make_pipeline
    >>> from skdim_dm import NoiseInjectedInfoMax, gaussianity_scorer
    >>> X, y = load_digits(return_X_y=True)
    >>> pipe = Pipeline([("embed", None), ("clf", LogisticRegression(max_iter=500))])
    >>> embeddings = [
    ...     NoiseInjectedInfoMax(2, max_epochs=5, device="cpu", random_state=0),
    ...     make_pipeline(PCA(2, whiten=True), Gaussianizer(random_state=0)),
    ... ]
    >>> search = GridSearchCV(
    ...     pipe,
    ...     {"embed": embeddings},
    ...     scoring={"accuracy": "accuracy", "matching": gaussianity_scorer},
    ...     refit="accuracy",
    ...     cv=2,
    ... ).fit(X, y)
    >>> search.cv_results_["mean_test_matching"].shape  # one per embedding
    (2,)
    """

    _parameter_constraints: dict = {
        "n_layers": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "rotation": [StrOptions({"random", "pca"})],
        "n_quantiles": [
            Interval(Integral, 2, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "whiten": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state", np.random.Generator],
    }

    def __init__(
        self,
        n_layers="auto",
        *,
        rotation="random",
        n_quantiles="auto",
        whiten=True,
        tol=None,
        validation_fraction=0.2,
        random_state=None,
    ):
        self.n_layers = n_layers
        self.rotation = rotation
        self.n_quantiles = n_quantiles
        self.whiten = whiten
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _prepare(self, Y):
        """Whitening fitted on ``Y``: ``(mean, white, dewhite, active)``."""
        d = Y.shape[1]
        if self.whiten:
            return _whitening(Y)
        # No whitening, but a feature constant up to float rounding is centered
        # (its value subtracted) and left out of the layers.
        expo, mean, _, std = _scaled_moments(Y)
        active = std > _ROUNDING
        return np.where(active, 0.0, np.ldexp(mean, expo)), np.eye(d), np.eye(d), active

    def _choose_n_layers(self, Y, seeds: _LayerSeeds):
        """``(n_layers, validation_nll)`` chosen on held-out rows of ``Y``."""
        n = Y.shape[0]
        n_val = max(1, round(self.validation_fraction * n))
        if n - n_val < 2:
            return 1, None
        order = np.random.default_rng(seeds.split).permutation(n)
        fit_rows, val_rows = order[n_val:], order[:n_val]
        mean, white, _, active = self._prepare(Y[fit_rows])
        *_, val_nll, chosen = _fit_layers(
            (Y[fit_rows] - mean) @ white,
            active,
            _MAX_AUTO_LAYERS,
            _n_knots(self.n_quantiles, n - n_val, auto_layers=True),
            self.rotation,
            np.random.default_rng(seeds.rotations),
            self.tol,
            Y_val=(Y[val_rows] - mean) @ white,
        )
        return chosen, val_nll

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the whitening and the layers on ``X`` (``y`` is ignored).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        y : None
            Ignored.

        Returns
        -------
        self : Gaussianizer

        Raises
        ------
        ValueError
            When a parameter is invalid, or when ``X``'s features vary on so
            small a scale (differences of subnormal floats, below about
            ``1e-300``) that their whitening or their maps cannot be represented
            in float64 (with ``whiten=True`` any normal float works).
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        Y = X.astype(np.float64)
        # Seed 0 draws the rotations (as before "auto" existed), seed 1 the
        # validation rows.
        seeds = _LayerSeeds(*derive_seeds(self.random_state, len(_LayerSeeds._fields)))
        mean, white, dewhite, active = self._prepare(Y)
        _check_representable(white, dewhite)
        val_nll, n_layers = None, self.n_layers
        try:
            # An overflow while fitting the maps: features too small for their
            # slopes (~1 / spread) to be represented.
            with np.errstate(over="raise", divide="raise"):
                if n_layers == "auto":
                    n_layers, val_nll = self._choose_n_layers(Y, seeds)
                marginals, rotations, non_gaussianity, *_ = _fit_layers(
                    (Y - mean) @ white,
                    active,
                    n_layers,
                    _n_knots(self.n_quantiles, Y.shape[0], self.n_layers == "auto"),
                    self.rotation,
                    np.random.default_rng(seeds.rotations),
                    self.tol,
                )
                for marginal in marginals:
                    _check_representable(
                        marginal.tail_slopes,
                        1.0 / marginal.tail_slopes,
                        *marginal.x_knots,
                    )
        except FloatingPointError:
            raise ValueError(_SCALE_ERROR) from None
        self.mean_ = mean
        self.whitening_ = white
        self._dewhitening = dewhite
        self.marginals_ = marginals
        self.rotations_ = np.stack(rotations)
        self.n_layers_ = len(marginals)
        self.non_gaussianity_ = np.asarray(non_gaussianity)
        self.validation_nll_ = val_nll
        self._n_features_out = Y.shape[1]
        return self

    def transform(self, X):
        """Map ``X`` to ``N(0, I)`` coordinates.

        Computed in float64 and returned in the dtype of ``X`` (float32 stays
        float32). Rows outside the training range follow the linear tails; no
        value is clipped.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features_in_)
        """
        check_is_fitted(self, "rotations_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        Y = (X.astype(np.float64) - self.mean_) @ self.whitening_
        for marginal, rot in zip(self.marginals_, self.rotations_):
            Y = marginal.forward(Y) @ rot
        return Y.astype(X.dtype, copy=False)

    def inverse_transform(self, X):
        """Map ``N(0, I)`` coordinates back to the input space.

        The exact inverse of :meth:`transform` (up to rounding) for any finite
        input, also beyond the training range. So ``inverse_transform`` of
        draws from ``N(0, I)`` samples from the fitted model of the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Gaussianized coordinates.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            In the dtype of ``X``.
        """
        check_is_fitted(self, "rotations_")
        Z = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        Y = Z.astype(np.float64)
        for marginal, rot in zip(self.marginals_[::-1], self.rotations_[::-1]):
            Y = marginal.inverse(Y @ rot.T)
        Y = Y @ self._dewhitening + self.mean_
        return Y.astype(Z.dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


_SCALE_ERROR = (
    "X's features vary on too small a scale (differences near the subnormal "
    "floats, below about 1e-300) for their whitening or their maps (slopes of "
    "about 1 / spread) to be represented in float64; rescale X (e.g. multiply it "
    "by 1e300)"
)


def _check_representable(*arrays):
    """``ValueError`` unless every fitted array is finite in float64."""
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError(_SCALE_ERROR)


# ----------------------------------------------------------------- persistence
def gaussianizer_state(g: Gaussianizer) -> tuple[dict, dict[str, np.ndarray]]:
    """``(params, arrays)`` of a fitted Gaussianizer: plain JSON values and flat
    numeric arrays, so a model file holds no pickled object."""
    arrays = {
        "mean": g.mean_,
        "whitening": g.whitening_,
        "dewhitening": g._dewhitening,
        "rotations": g.rotations_,
        "non_gaussianity": g.non_gaussianity_,
    }
    if getattr(g, "validation_nll_", None) is not None:
        arrays["validation_nll"] = g.validation_nll_
    for i, m in enumerate(g.marginals_):
        arrays[f"layer{i}/tail_slopes"] = m.tail_slopes
        for j in range(len(m.x_knots)):
            arrays[f"layer{i}/x{j}"] = m.x_knots[j]
            arrays[f"layer{i}/z{j}"] = m.z_knots[j]
    return g.get_params(), {
        k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()
    }


def gaussianizer_from_state(params: dict, arrays: dict) -> Gaussianizer:
    """Inverse of :func:`gaussianizer_state`; checks every array (the input may
    come from an untrusted file): ``ValueError`` when anything is inconsistent."""
    g = Gaussianizer(**params)
    g._validate_params()
    try:
        mean, white, dewhite = (
            arrays["mean"],
            arrays["whitening"],
            arrays["dewhitening"],
        )
        rotations = arrays["rotations"]
        non_gaussianity = arrays["non_gaussianity"]
    except KeyError as exc:
        raise ValueError(f"Gaussianizer state lacks {exc}") from None
    d = mean.shape[0] if mean.ndim == 1 else -1
    n_layers = rotations.shape[0] if rotations.ndim == 3 else -1
    if (
        d < 1
        or white.shape != (d, d)
        or dewhite.shape != (d, d)
        or rotations.shape != (n_layers, d, d)
        or n_layers < 1
        or non_gaussianity.ndim != 1
        or arrays.get("validation_nll", np.zeros(0)).ndim != 1
    ):
        raise ValueError("Gaussianizer state has inconsistent shapes")
    marginals = []
    for i in range(n_layers):
        slopes = arrays.get(f"layer{i}/tail_slopes")
        if slopes is None or slopes.shape != (d,) or not np.all(slopes > 0):
            raise ValueError(f"Gaussianizer layer {i}: invalid tail slopes")
        xs, zs = [], []
        for j in range(d):
            x, z = arrays.get(f"layer{i}/x{j}"), arrays.get(f"layer{i}/z{j}")
            if (
                x is None
                or z is None
                or x.ndim != 1
                or x.shape != z.shape
                or x.size < 1
                or np.any(np.diff(x) <= 0)
                or np.any(np.diff(z) <= 0)
            ):
                raise ValueError(f"Gaussianizer layer {i}, column {j}: invalid knots")
            xs.append(x)
            zs.append(z)
        marginals.append(_MarginalMap(xs, zs, slopes))
    if not all(np.all(np.isfinite(a)) for a in arrays.values()):
        raise ValueError("Gaussianizer state holds non-finite values")
    g.mean_, g.whitening_, g._dewhitening = mean, white, dewhite
    g.marginals_, g.rotations_ = marginals, rotations
    g.n_layers_, g.non_gaussianity_ = n_layers, non_gaussianity
    g.validation_nll_ = arrays.get("validation_nll")
    g.n_features_in_ = g._n_features_out = d
    return g
