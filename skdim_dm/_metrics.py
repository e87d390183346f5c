"""Distribution-matching statistics on latents: numpy in, numbers out. No torch.

Two kinds of checks live here, and they answer different questions:

* **composite** tests (Henze-Zirkler, Shapiro-Wilk and D'Agostino-Pearson on random
  projections) ask "is this *some* Gaussian?": they standardize by the sample's own
  mean and covariance, so they are blind to a wrong mean or scale. The paper's
  protocol averages their p-values over small random subsamples.
* **simple** checks ask "is this exactly the prior?": KS of ``||z||^2`` against
  ``chi2(d)``, per-component KS, mean and covariance errors, a nearest-neighbour KL
  estimate in nats and a sliced Wasserstein distance to prior draws.

Every function takes latents of shape ``(n_samples, n_components)`` and validates
them the same way; randomness comes only from a local ``numpy.random.Generator``
derived from ``random_state``.
"""

from __future__ import annotations

import functools
import math
from numbers import Integral
from typing import NamedTuple

import numpy as np
from scipy import stats
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from scipy.special import digamma, gammaln, ndtr

from ._core.bases import BASES, Base, get_base
from ._priors import resolve_prior

__all__ = [
    "DMReport",
    "TestResult",
    "component_ks_test",
    "covariance_error",
    "dm_report",
    "fraction_inside",
    "henze_zirkler",
    "JointMatch",
    "joint_match",
    "knn_kl_divergence",
    "KSResult",
    "marginal_ks",
    "mean_error",
    "norm_ks_test",
    "normality_bootstrap",
    "prior_match_score",
    "sliced_wasserstein",
]

#: Largest latent magnitude the statistics accept: squares and products of
#: larger values overflow float64.
MAX_ABS_LATENT = 1e150
#: Elements per temporary array in the chunked computations (32 MiB of float64).
_BLOCK_ELEMENTS = 1 << 22


class TestResult(NamedTuple):
    """Outcome of a hypothesis test: the statistic and its p-value.

    Attributes
    ----------
    statistic : float
        The test statistic (its meaning depends on the test).
    pvalue : float
        Probability under the null hypothesis of a statistic at least as extreme.

    See Also
    --------
    henze_zirkler, norm_ks_test, component_ks_test : Tests that return it.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm.metrics import norm_ks_test
    >>> result = norm_ks_test(np.random.default_rng(0).standard_normal((200, 2)))
    >>> statistic, pvalue = result
    >>> bool(pvalue == result.pvalue)
    True
    """

    __test__ = False  # not a pytest test class, despite the name

    statistic: float
    pvalue: float


# --------------------------------------------------------------------- helpers
def _check_latents(Z, *, min_samples: int = 3, name: str = "Z") -> np.ndarray:
    """Latents as a finite float64 array of shape (n_samples, n_components)."""
    if np.iscomplexobj(Z):
        raise ValueError(f"{name} is complex; latents must be real numbers")
    try:
        Z = np.asarray(Z, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    if Z.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_components), got shape {Z.shape}; "
            "use Z.reshape(-1, 1) for a single component"
        )
    n, d = Z.shape
    if d < 1:
        raise ValueError(f"{name} has no components (shape {Z.shape})")
    if n < min_samples:
        raise ValueError(
            f"{name} has {n} sample(s); this statistic needs at least {min_samples}"
        )
    if not np.all(np.isfinite(Z)):
        raise ValueError(f"{name} contains NaN or infinity")
    if Z.size and np.abs(Z).max() > MAX_ABS_LATENT:
        raise ValueError(
            f"{name} holds values up to {np.abs(Z).max():.3g}: beyond "
            f"{MAX_ABS_LATENT:g} their squares overflow, and latents this large "
            "are far from any prior (a diverged or unnormalized model?)"
        )
    return Z


def _check_prior(prior) -> Base:
    """The base named by ``prior`` (``"gaussian"`` or ``"uniform"``)."""
    if not (isinstance(prior, Base) or (isinstance(prior, str) and prior in BASES)):
        raise ValueError(f"prior must be 'gaussian' or 'uniform', got {prior!r}")
    return get_base(prior)


def _is_target(prior) -> bool:
    """True for a ``prior=`` value beyond the two base names (scipy dists, maps)."""
    return not (isinstance(prior, Base) or (isinstance(prior, str) and prior in BASES))


def _target(prior, n_components: int):
    if isinstance(prior, str):
        _check_prior(prior)  # an unknown name: the usual error
    return resolve_prior(prior, n_components)


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _rng(random_state) -> np.random.Generator:
    """A local Generator; never touches numpy's global state."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return np.random.default_rng(int(random_state))
    raise ValueError(
        "random_state must be None, an int, a numpy Generator or RandomState, "
        f"got {random_state!r}"
    )


def _fisher(pvalues: np.ndarray) -> TestResult:
    """Fisher's method for independent p-values: ``-2 sum log p ~ chi2(2k)``."""
    p = np.clip(np.asarray(pvalues, dtype=np.float64), np.finfo(np.float64).tiny, 1)
    statistic = float(-2.0 * np.sum(np.log(p)))
    return TestResult(statistic, float(stats.chi2.sf(statistic, 2 * p.size)))


# -------------------------------------------------------------- Henze-Zirkler
def _hz_beta(n, d: int):
    """Henze-Zirkler's smoothing parameter, optimal for a normal alternative."""
    return (
        ((2 * d + 1) / 4) ** (1 / (d + 4))
        * np.asarray(n, float) ** (1 / (d + 4))
        / math.sqrt(2)
    )


def _hz_pvalue(statistic, n, d: int):
    """Upper tail of the lognormal approximation to the HZ null distribution.

    Mean and variance of the statistic under normality are those given by Henze
    and Zirkler (1990); the lognormal with these moments is the usual reference.
    """
    b2 = _hz_beta(n, d) ** 2
    a = 1 + 2 * b2
    w = (1 + b2) * (1 + 3 * b2)
    mu = 1 - a ** (-d / 2) * (1 + d * b2 / a + d * (d + 2) * b2**2 / (2 * a**2))
    var = (
        2 * (1 + 4 * b2) ** (-d / 2)
        + 2
        * a ** (-d)
        * (1 + 2 * d * b2**2 / a**2 + 3 * d * (d + 2) * b2**4 / (4 * a**4))
        - 4
        * w ** (-d / 2)
        * (1 + 3 * d * b2**2 / (2 * w) + d * (d + 2) * b2**4 / (2 * w**2))
    )
    log_sigma2 = np.log1p(var / mu**2)
    log_mu = np.log(mu) - log_sigma2 / 2
    return stats.norm.sf((np.log(statistic) - log_mu) / np.sqrt(log_sigma2))


def _whiten(X: np.ndarray):
    """Centre and whiten each sample of a stack ``(..., n, d)`` by its own moments.

    Returns the whitened stack (Mahalanobis coordinates under the biased
    covariance) and a boolean mask of samples whose covariance is singular.
    """
    Xc = X - X.mean(axis=-2, keepdims=True)
    n, d = X.shape[-2:]
    cov = np.swapaxes(Xc, -1, -2) @ Xc / n
    w, V = np.linalg.eigh(cov)
    wmax = w[..., -1:]
    singular = w[..., 0] <= wmax[..., 0] * d * np.finfo(np.float64).eps
    safe = np.where(w > 0, w, 1.0)
    return (Xc @ V) / np.sqrt(safe)[..., None, :], singular


def _hz_batch(X: np.ndarray) -> np.ndarray:
    """Henze-Zirkler statistics of a stack of samples ``(batch, n, d)``."""
    B, n, d = X.shape
    Y, singular = _whiten(X)
    b2 = _hz_beta(n, d) ** 2
    r = np.einsum("bij,bij->bi", Y, Y)
    G = Y @ np.swapaxes(Y, 1, 2)
    G *= b2
    G -= (b2 / 2) * r[:, :, None]
    G -= (b2 / 2) * r[:, None, :]
    np.exp(G, out=G)
    pair_sum = G.sum(axis=(1, 2))
    self_sum = np.exp(-b2 / (2 * (1 + b2)) * r).sum(axis=1)
    hz = (
        pair_sum / n
        - 2 * (1 + b2) ** (-d / 2) * self_sum
        + n * (1 + 2 * b2) ** (-d / 2)
    )
    # A singular covariance is the limit of ever more degenerate samples, where the
    # statistic tends to 4n; the test then always rejects.
    return np.where(singular, 4.0 * n, hz)


def henze_zirkler(Z, *, block_size: int = 2048) -> TestResult:
    """Henze-Zirkler test of multivariate normality on the whole sample.

    A composite test: the sample is standardized by its own mean and (biased)
    covariance, so any non-degenerate Gaussian passes, whatever its mean and
    scale. The statistic is a weighted L2 distance between the empirical
    characteristic function of the standardized data and that of ``N(0, I)``;
    the p-value uses the lognormal approximation of its null distribution.

    The double sum over pairs is computed block by block, over the upper
    triangle only: time is ``O(n^2 d)`` but memory is ``O(block_size^2)``, so
    ``10^5`` points never build an ``n x n`` matrix.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Latents; needs ``n_samples > n_components`` and at least 3 samples.

    block_size : int, default=2048
        Side of the square blocks of pairs computed at once.

    Returns
    -------
    result : TestResult
        ``statistic`` (HZ) and ``pvalue``. A singular sample covariance gives the
        limiting statistic ``4 n`` and a p-value near 0.

    Raises
    ------
    ValueError
        When ``Z`` is not a finite 2-D array with more samples than components,
        or ``block_size`` is not a positive int.

    See Also
    --------
    normality_bootstrap : The paper's protocol, on small random subsamples.

    References
    ----------
    N. Henze and B. Zirkler, "A class of invariant consistent tests for
    multivariate normality", Communications in Statistics - Theory and Methods,
    19(10), 1990.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm.metrics import henze_zirkler
    >>> Z = np.random.default_rng(0).standard_normal((500, 2))
    >>> bool(henze_zirkler(Z).pvalue > 0.01)
    True
    """
    Z = _check_latents(Z)
    block = _check_int(block_size, "block_size", 1)
    n, d = Z.shape
    if n <= d:
        raise ValueError(
            f"Henze-Zirkler needs more samples than components, got {n} <= {d}"
        )
    Y, singular = _whiten(Z)
    if singular:
        return TestResult(4.0 * n, float(_hz_pvalue(4.0 * n, n, d)))
    b2 = float(_hz_beta(n, d) ** 2)
    # Squared distances by cdist: exact differences, and far faster than a GEMM
    # with a small inner dimension. One reused buffer, upper-triangle blocks only.
    buf = np.empty(min(block, n) ** 2)
    pair_sum = 0.0
    for i in range(0, n, block):
        Yi = Y[i : i + block]
        for j in range(i, n, block):
            Yj = Y[j : j + block]
            E = buf[: len(Yi) * len(Yj)].reshape(len(Yi), len(Yj))
            cdist(Yi, Yj, "sqeuclidean", out=E)
            E *= -b2 / 2
            np.exp(E, out=E)
            pair_sum += (1.0 if i == j else 2.0) * float(E.sum())
    r = np.einsum("ij,ij->i", Y, Y)
    self_sum = float(np.exp(-b2 / (2 * (1 + b2)) * r).sum())
    hz = (
        pair_sum / n
        - 2 * (1 + b2) ** (-d / 2) * self_sum
        + n * (1 + 2 * b2) ** (-d / 2)
    )
    return TestResult(float(hz), float(_hz_pvalue(hz, n, d)))


# ------------------------------------------------------------------ bootstrap
def _subsample_indices(
    rng: np.random.Generator, n: int, n_subsamples: int, size: int
) -> np.ndarray:
    """``n_subsamples`` rows of ``size`` distinct indices in ``range(n)``."""
    if size * size <= n:
        # Collisions are rare: draw with replacement and redraw the rows that have one.
        idx = rng.integers(0, n, size=(n_subsamples, size))
        while True:
            s = np.sort(idx, axis=1)
            bad = np.any(s[:, 1:] == s[:, :-1], axis=1)
            if not bad.any():
                return idx
            idx[bad] = rng.integers(0, n, size=(int(bad.sum()), size))
    # Small n: the first `size` of a random ordering, a few rows at a time.
    rows = max(1, _BLOCK_ELEMENTS // n)
    out = np.empty((n_subsamples, size), dtype=np.intp)
    for a in range(0, n_subsamples, rows):
        keys = rng.random((min(rows, n_subsamples - a), n))
        out[a : a + rows] = np.argpartition(keys, size - 1, axis=1)[:, :size]
    return out


def normality_bootstrap(
    Z,
    *,
    n_subsamples: int = 1024,
    subsample_size: int = 64,
    random_state=None,
    return_pvalues: bool = False,
) -> dict:
    """The paper's Gaussianity protocol: mean p-values over random subsamples.

    For each of ``n_subsamples`` subsamples of ``subsample_size`` distinct
    latents: the Henze-Zirkler test on the subsample, and Shapiro-Wilk and
    D'Agostino-Pearson on its projection onto one random unit direction (drawn
    per subsample, shared by the two). Under exact normality every p-value is
    uniform, so each mean is about **0.5**: 0.5 is ideal, not 1. The tests are
    composite (they standardize by the subsample's own moments) and see shape
    only; pair this with the simple checks (:func:`norm_ks_test`,
    :func:`knn_kl_divergence`) to see a wrong mean or scale.

    Henze-Zirkler runs vectorized over all subsamples at once, so the default
    1024 x 64 takes a fraction of a second.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Latents, with ``n_samples >= subsample_size``.

    n_subsamples : int, default=1024
        Number of random subsamples; the means' Monte Carlo error shrinks like
        ``n_subsamples^(-1/2)``.

    subsample_size : int, default=64
        At least 20 (D'Agostino-Pearson's kurtosis test needs it) and more than
        ``n_components``.

    random_state : int, numpy Generator or None, default=None
        Seeds the subsamples and projections through a local generator.

    return_pvalues : bool, default=False
        Return the per-subsample p-values (arrays of shape ``(n_subsamples,)``)
        instead of their means.

    Returns
    -------
    result : dict
        Keys ``"henze_zirkler"``, ``"shapiro_wilk"``, ``"dagostino_pearson"``:
        mean p-values (floats), or arrays with ``return_pvalues=True``.

    Raises
    ------
    ValueError
        When ``Z`` is not finite and 2-D, has fewer than ``subsample_size``
        samples, or ``subsample_size`` is below 20 or not above ``n_components``.

    See Also
    --------
    henze_zirkler : The same test on the full sample (far more power).
    dm_report : This protocol and the simple checks in one table.

    References
    ----------
    I. Butakov et al., "Efficient Distribution Matching of Representations via
    Noise-Injected Deep InfoMax", ICLR 2025 (their evaluation protocol).

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm.metrics import normality_bootstrap
    >>> Z = np.random.default_rng(0).standard_normal((2000, 2))
    >>> res = normality_bootstrap(Z, random_state=0)
    >>> sorted(res)
    ['dagostino_pearson', 'henze_zirkler', 'shapiro_wilk']
    >>> bool(abs(res["henze_zirkler"] - 0.5) < 0.05)
    True
    """
    n_sub = _check_int(n_subsamples, "n_subsamples", 1)
    size = _check_int(subsample_size, "subsample_size", 20)
    Z = _check_latents(Z, min_samples=size)
    n, d = Z.shape
    if size <= d:
        raise ValueError(
            f"subsample_size={size} must exceed n_components={d} (the subsample "
            "covariance must be invertible)"
        )
    rng = _rng(random_state)
    idx = _subsample_indices(rng, n, n_sub, size)
    u = rng.standard_normal((n_sub, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)

    hz_p = np.empty(n_sub)
    rows = max(1, _BLOCK_ELEMENTS // (size * size))
    for a in range(0, n_sub, rows):
        hz_p[a : a + rows] = _hz_pvalue(_hz_batch(Z[idx[a : a + rows]]), size, d)

    proj = np.einsum("bmd,bd->bm", Z[idx], u)
    flat = np.ptp(proj, axis=1) <= 1e-12 * np.max(np.abs(proj), axis=1)
    sw_p = np.zeros(n_sub)
    dp_p = np.zeros(n_sub)
    if not flat.all():
        ok = proj[~flat]
        sw_p[~flat] = stats.shapiro(ok, axis=1).pvalue
        dp_p[~flat] = stats.normaltest(ok, axis=1).pvalue
    pvalues = {"henze_zirkler": hz_p, "shapiro_wilk": sw_p, "dagostino_pearson": dp_p}
    if return_pvalues:
        return pvalues
    return {name: float(p.mean()) for name, p in pvalues.items()}


# ------------------------------------------------------------- simple checks
def norm_ks_test(Z) -> TestResult:
    """KS test of ``||z||^2`` against ``chi2(n_components)``.

    A simple-hypothesis check of exactly ``N(0, I)``: it sees a wrong scale (the
    squared norms shift) and a wrong mean (they grow), which the composite tests
    cannot. Rotation-invariant.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)

    Returns
    -------
    result : TestResult
        KS statistic and p-value.

    Raises
    ------
    ValueError
        When ``Z`` is not a finite 2-D array of at least 3 samples.

    See Also
    --------
    component_ks_test : The per-component marginals instead of the norm.
    skdim_dm.LatentOutlierDetector : Outliers from the same ``chi2(d)`` law.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm.metrics import norm_ks_test
    >>> Z = 1.3 * np.random.default_rng(0).standard_normal((2000, 2))
    >>> bool(norm_ks_test(Z).pvalue < 1e-6)
    True
    """
    Z = _check_latents(Z)
    sq = np.einsum("ij,ij->i", Z, Z)
    res = stats.ks_1samp(sq, stats.chi2(Z.shape[1]).cdf)
    return TestResult(float(res.statistic), float(res.pvalue))


def component_ks_test(Z, prior: str = "gaussian") -> TestResult:
    """Per-component KS tests against the prior's marginal, combined by Fisher.

    Each component is tested against ``N(0, 1)`` or ``U(0, 1)``; under the prior
    the components are independent, so Fisher's ``-2 sum log p`` is
    ``chi2(2 d)``. For the uniform prior this is the paper's uniformity test.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)

    prior : {"gaussian", "uniform"} or target prior, default="gaussian"
        Any ``prior=`` value that :class:`~skdim_dm.NoiseInjectedInfoMax` accepts
        (a frozen ``scipy.stats`` distribution, a list of them, ...): components
        are then tested against the target's marginal CDFs.

    Returns
    -------
    result : TestResult
        Fisher's statistic and the combined p-value.

    Raises
    ------
    ValueError
        When ``Z`` is not a finite 2-D array, or ``prior`` is invalid for its
        number of components.

    See Also
    --------
    marginal_ks : The per-component statistics and p-values themselves.
    norm_ks_test : KS of ``||z||^2``, which also sees the joint law.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm.metrics import component_ks_test
    >>> Z = np.random.default_rng(0).random((1000, 3))
    >>> bool(component_ks_test(Z, prior="uniform").pvalue > 0.01)
    True
    """
    return _fisher(marginal_ks(Z, prior).pvalue)


class KSResult(NamedTuple):
    """Per-component Kolmogorov-Smirnov tests: arrays of shape ``(n_components,)``.

    Attributes
    ----------
    statistic : ndarray of shape (n_components,)
        KS statistic of each component.
    pvalue : ndarray of shape (n_components,)
        Its p-value.

    See Also
    --------
    marginal_ks : The function that returns it.
    """

    statistic: np.ndarray
    pvalue: np.ndarray


def marginal_ks(Z, prior="gaussian") -> KSResult:
    """Kolmogorov-Smirnov test of each component against the prior's marginal.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Latents in the target's space (as ``transform`` returns them).

    prior : {"gaussian", "uniform"} or target prior, default="gaussian"
        Any ``prior=`` value that :class:`~skdim_dm.NoiseInjectedInfoMax` accepts.
        For a :class:`~skdim_dm.FlowPrior` the components are tested in the base
        space, after its ``inverse``.

    Returns
    -------
    result : KSResult
        ``statistic`` and ``pvalue`` arrays, one entry per component.

    Raises
    ------
    ValueError
        When ``Z`` is not a finite 2-D array, or ``prior`` is invalid for its
        number of components.

    See Also
    --------
    component_ks_test : The same tests, combined into one p-value.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> from skdim_dm.metrics import marginal_ks
    >>> Z = np.random.default_rng(0).exponential(size=(1000, 2))
    >>> result = marginal_ks(Z, prior=stats.expon())
    >>> result.pvalue.shape
    (2,)
    >>> bool(np.all(result.pvalue > 0.01))
    True
    >>> bool(np.all(marginal_ks(Z, prior="gaussian").pvalue < 1e-6))
    True
    """
    Z = _check_latents(Z, min_samples=1)
    # Probability integral transform through the marginal CDFs, then KS vs U(0, 1).
    U = _target(prior, Z.shape[1]).marginal_cdf(Z)
    res = stats.ks_1samp(U, stats.uniform.cdf, axis=0)
    return KSResult(np.atleast_1d(res.statistic), np.atleast_1d(res.pvalue))


def mean_error(Z, prior: str = "gaussian") -> float:
    """Distance of the sample mean from the prior's, in prior standard deviations.

    ``||(mean(Z) - mu) / sigma||_2`` with ``mu, sigma`` the prior's per-component
    mean and standard deviation (0 and 1 for ``N(0, I)``; 1/2 and ``1/sqrt(12)``
    for ``U([0,1]^d)``). Under the prior it is about ``sqrt(d / n)``.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Latents.

    prior : {"gaussian", "uniform"}, default="gaussian"
        The base whose moments are compared.

    Returns
    -------
    error : float
        0 is a perfect match of the means.

    Raises
    ------
    ValueError
        When ``Z`` is not a finite 2-D array or ``prior`` is another value.

    See Also
    --------
    covariance_error : The same comparison for the covariance.
    dm_report : All the checks in one table.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm.metrics import mean_error
    >>> Z = np.random.default_rng(0).standard_normal((10000, 2))
    >>> bool(mean_error(Z) < 0.05 < mean_error(Z + 0.1))
    True
    """
    Z = _check_latents(Z, min_samples=1)
    base = _check_prior(prior)
    return float(np.linalg.norm((Z.mean(axis=0) - base.mean) / base.std))


def covariance_error(Z, prior: str = "gaussian") -> float:
    """Frobenius distance of the standardized sample covariance from the identity.

    ``||Cov((Z - mu) / sigma) - I||_F`` with the prior's ``mu, sigma`` (see
    :func:`mean_error`) and the unbiased sample covariance. Under the prior it
    is about ``d / sqrt(n)``.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Latents, at least 2 of them.

    prior : {"gaussian", "uniform"}, default="gaussian"
        The base whose moments are compared.

    Returns
    -------
    error : float
        0 is a perfect match of the covariances.

    Raises
    ------
    ValueError
        When ``Z`` is not a finite 2-D array of at least 2 samples or ``prior``
        is another value.

    See Also
    --------
    mean_error : The same comparison for the mean.
    dm_report : All the checks in one table.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm.metrics import covariance_error
    >>> Z = np.random.default_rng(0).standard_normal((10000, 2))
    >>> bool(covariance_error(Z) < 0.05 < covariance_error(1.1 * Z))
    True
    """
    Z = _check_latents(Z, min_samples=2)
    base = _check_prior(prior)
    cov = np.atleast_2d(np.cov((Z - base.mean) / base.std, rowvar=False))
    return float(np.linalg.norm(cov - np.eye(Z.shape[1])))


def fraction_inside(Z) -> float:
    """Fraction of latents inside the unit cube ``[0, 1]^d`` (1 is ideal).

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Latents.

    Returns
    -------
    fraction : float
        Share of the rows with every component in ``[0, 1]``.

    Raises
    ------
    ValueError
        When ``Z`` is not a finite 2-D array.

    See Also
    --------
    component_ks_test : The paper's uniformity test (with ``prior="uniform"``).

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm.metrics import fraction_inside
    >>> fraction_inside(np.array([[0.2, 0.5], [0.9, 1.2]]))
    0.5
    """
    Z = _check_latents(Z, min_samples=1)
    return float(np.mean(np.all((Z >= 0) & (Z <= 1), axis=1)))


def knn_kl_divergence(Z, prior: str = "gaussian", k: int = 5) -> float:
    """Kozachenko-Leonenko estimate of ``KL(law of Z || prior)`` in nats.

    ``KL = -h(Z) + E[-log prior(Z)]``, with the k-nearest-neighbour entropy
    estimate ``h = psi(n) - psi(k) + log V_d + d mean(log eps_k)`` (``eps_k``:
    distance to the k-th neighbour, ``V_d``: volume of the unit ball) and the
    cross-entropy term averaged exactly over the sample. For the uniform prior
    on the unit cube ``KL = -h(Z)``, infinite when a point lies outside the cube;
    it is estimated as the Gaussian KL of ``Phi^{-1}(Z)`` (the same number, as KL
    is invariant under a bijection of both laws), which avoids the downward bias
    that the cube's faces cause in a direct entropy estimate.
    An effect size in nats, comparable to the channel capacity and to
    ``NoiseInjectedInfoMax.kl_upper_bound_``; estimation noise makes values
    slightly below 0 possible near a perfect match.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Latents, more than ``k`` of them.

    prior : {"gaussian", "uniform"}, default="gaussian"

    k : int, default=5
        Neighbour rank: larger means less variance and more bias.

    Returns
    -------
    kl : float
        Nats; 0 is a perfect match.

    Raises
    ------
    ValueError
        When ``Z`` is not a finite 2-D array of more than ``k`` samples, ``k``
        is not a positive int or ``prior`` is another value.

    See Also
    --------
    prior_match_score : Its negative, higher is better.
    skdim_dm.NoiseInjectedInfoMax.score : The same estimate on fitted latents.

    References
    ----------
    L. F. Kozachenko and N. N. Leonenko, "Sample estimate of the entropy of a
    random vector", Problems of Information Transmission, 23(2), 1987.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm.metrics import knn_kl_divergence
    >>> Z = np.random.default_rng(0).standard_normal((5000, 2))
    >>> bool(abs(knn_kl_divergence(Z)) < 0.05)
    True
    """
    k = _check_int(k, "k", 1)
    Z = _check_latents(Z, min_samples=k + 1)
    base = _check_prior(prior)
    if base.bounded and np.any((Z < 0) | (Z > 1)):
        return float("inf")
    # KL is invariant under a bijection applied to both laws: map the base onto
    # R^d by its probit and compare with N(0, I) there. For the cube, the direct
    # -h(Z) is biased low by its faces (about -0.12 nats at d = 3, n = 2000 on
    # exact uniform draws); this form has no boundary. Latents on a face (a
    # saturated sigmoid) are clipped inside by the probit.
    Z = base.to_gaussian(Z)
    n, d = Z.shape
    eps = _kth_neighbor_distance(Z, k)
    # Ties (duplicate latents) give eps = 0 and log 0; floor at a tiny distance.
    eps = np.maximum(eps, 1e-12 * max(1.0, float(np.abs(Z).max())))
    log_vd = 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1.0)
    h = digamma(n) - digamma(k) + log_vd + d * np.mean(np.log(eps))
    cross = 0.5 * np.mean(np.sum(Z * Z, axis=1)) + 0.5 * d * np.log(2 * np.pi)
    return float(cross - h)


def _kth_neighbor_distance(Z: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its ``k``-th nearest other row.

    With duplicate rows a KD-tree query degrades towards quadratic time (1e5
    identical rows took 17 s), so duplicates are grouped first: a row with ``m``
    copies has ``m - 1`` neighbours at distance 0, then those of its unique row.
    """
    U, inverse, counts = np.unique(Z, axis=0, return_inverse=True, return_counts=True)
    if U.shape[0] == Z.shape[0]:
        return cKDTree(Z).query(Z, k=k + 1)[0][:, -1]
    kk = min(k + 1, U.shape[0])
    dist, idx = cKDTree(U).query(U, k=kk)
    dist, idx = dist.reshape(U.shape[0], kk), idx.reshape(U.shape[0], kk)
    # Column 0 is the unique row itself: its other copies sit at distance 0.
    weight = counts[idx]
    weight[:, 0] = counts - 1
    reached = np.cumsum(weight, axis=1) >= k
    first = reached.argmax(axis=1)  # every row reaches k: n > k rows in all
    eps_unique = np.where(first == 0, 0.0, dist[np.arange(U.shape[0]), first])
    return eps_unique[inverse.ravel()]


def prior_match_score(Z, prior: str = "gaussian") -> float:
    """Higher is better: ``-KL(latents || prior)`` estimated by nearest neighbours.

    The default score of ``NoiseInjectedInfoMax`` and of the package's scorers;
    0 is a perfect match. See :func:`knn_kl_divergence`.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Latents, more than 5 of them.

    prior : {"gaussian", "uniform"}, default="gaussian"
        The base to compare with.

    Returns
    -------
    score : float
        Nats; at most about 0, higher is better.

    Raises
    ------
    ValueError
        As :func:`knn_kl_divergence`.

    See Also
    --------
    knn_kl_divergence : The estimate itself.
    prior_scorer : The same number from a fitted estimator, for ``GridSearchCV``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm.metrics import prior_match_score
    >>> rng = np.random.default_rng(0)
    >>> near = prior_match_score(rng.standard_normal((2000, 2)))
    >>> far = prior_match_score(2 * rng.standard_normal((2000, 2)))
    >>> bool(far < near)
    True
    """
    return -knn_kl_divergence(Z, prior=prior)


def sliced_wasserstein(
    Z, prior: str = "gaussian", *, n_projections: int = 128, random_state=None
) -> float:
    """Sliced 2-Wasserstein distance between the latents and as many prior draws.

    ``sqrt(mean_u W_2^2(u.Z, u.P))`` over ``n_projections`` random unit
    directions ``u``, where ``P`` holds ``n_samples`` fresh draws from the prior
    and each 1-D ``W_2`` compares sorted projections. In the latents' units; it
    shrinks like ``n^(-1/2)`` at a perfect match (the prior draws are noisy
    too), so compare values at equal ``n_samples``.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)

    prior : {"gaussian", "uniform"} or target prior, default="gaussian"
        Any ``prior=`` value that :class:`~skdim_dm.NoiseInjectedInfoMax` accepts:
        the reference draws then come from the target.

    n_projections : int, default=128
        Number of random directions.

    random_state : int, numpy Generator or None, default=None
        Seeds the directions and the prior draws through a local generator.

    Returns
    -------
    distance : float
        In the latents' units; 0 only when the sorted projections coincide.

    Raises
    ------
    ValueError
        When ``Z`` is not a finite 2-D array of at least 2 samples,
        ``n_projections`` is not a positive int or ``prior`` is invalid.

    See Also
    --------
    knn_kl_divergence : A divergence in nats instead of a distance.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm.metrics import sliced_wasserstein
    >>> rng = np.random.default_rng(0)
    >>> near = sliced_wasserstein(rng.standard_normal((2000, 2)), random_state=0)
    >>> far = sliced_wasserstein(rng.standard_normal((2000, 2)) + 1, random_state=0)
    >>> bool(near < 0.1 < far)
    True
    """
    Z = _check_latents(Z, min_samples=2)
    n_proj = _check_int(n_projections, "n_projections", 1)
    n, d = Z.shape
    rng = _rng(random_state)
    if _is_target(prior):
        P = np.asarray(_target(prior, d).sample(n, d, rng), dtype=np.float64)
    else:
        P = _check_prior(prior).sample(rng, (n, d))
    U = rng.standard_normal((d, n_proj))
    U /= np.linalg.norm(U, axis=0, keepdims=True)
    total = 0.0
    step = max(1, _BLOCK_ELEMENTS // (2 * n))
    for a in range(0, n_proj, step):
        zp = np.sort(Z @ U[:, a : a + step], axis=0)
        pp = np.sort(P @ U[:, a : a + step], axis=0)
        total += float(np.sum((zp - pp) ** 2))
    return float(np.sqrt(total / (n * n_proj)))


# ---------------------------------------------------------------- joint match
class JointMatch(NamedTuple):
    """Graded joint match of latents to the prior, against exact prior samples.

    Made by :func:`joint_match`. Each view has the latents' statistic, the
    *floor* (the median of the same statistic over exact prior samples of the
    same shape), their ratio (1.0: as good as an exact sample; larger is worse)
    and the 95% quantile of that ratio over the exact samples (a ratio below it
    is within the floor).

    Attributes
    ----------
    sliced_ratio : float
        ``sliced_ks_mean / floor_sliced_ks_mean``: the headline joint measure.
    sliced_max_ratio : float
        ``sliced_ks_max / floor_sliced_ks_max``: the worst direction.
    radial_ratio : float
        ``radial_ks / floor_radial_ks``: the law of ``||z||^2``.
    cov_ratio : float
        ``cov_max_error / floor_cov_max_error``.
    worst_ratio : float
        The largest of ``sliced_ratio``, ``radial_ratio`` and ``cov_ratio``.
    sliced_ks_mean, sliced_ks_max : float
        Mean and largest Kolmogorov distance of the latents' projections on the
        random unit directions to ``N(0, 1)``.
    radial_ks : float
        Kolmogorov distance of ``||z||^2`` to ``chi2(n_components)``.
    cov_max_error : float
        Largest entry of ``|Cov(Z) - I|`` (unbiased sample covariance).
    floor_sliced_ks_mean, floor_sliced_ks_max, floor_radial_ks, floor_cov_max_error : float
        The same statistics' medians on exact prior samples.
    sliced_ratio_q95, sliced_max_ratio_q95, radial_ratio_q95, cov_ratio_q95 : float
        95% quantile of each ratio on exact prior samples: 95% of exact samples
        score below it.
    n_directions, n_reference : int
        Number of directions and of exact samples behind the floor.

    See Also
    --------
    joint_match : The function that makes it.
    """

    sliced_ratio: float
    sliced_max_ratio: float
    radial_ratio: float
    cov_ratio: float
    worst_ratio: float
    sliced_ks_mean: float
    sliced_ks_max: float
    radial_ks: float
    cov_max_error: float
    floor_sliced_ks_mean: float
    floor_sliced_ks_max: float
    floor_radial_ks: float
    floor_cov_max_error: float
    sliced_ratio_q95: float
    sliced_max_ratio_q95: float
    radial_ratio_q95: float
    cov_ratio_q95: float
    n_directions: int
    n_reference: int


def _joint_directions(n_components: int, n_directions: int, seed: int) -> np.ndarray:
    """``(n_directions, n_components)`` unit rows from ``(seed, n_components)`` only;
    the first rows do not depend on ``n_directions``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0, n_components]))
    U = rng.standard_normal((n_directions, n_components))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    return U


def _sliced_ks(G: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Kolmogorov distance to ``N(0, 1)`` of the projections of ``G`` on each row
    of ``U``: shape ``(n_directions,)``. Blocks of directions bound the memory."""
    n = G.shape[0]
    hi = np.arange(1, n + 1) / n
    lo = np.arange(0, n) / n
    out = np.empty(U.shape[0])
    step = max(1, _BLOCK_ELEMENTS // n)
    for a in range(0, U.shape[0], step):
        P = U[a : a + step] @ G.T  # (block, n): contiguous rows to sort
        P.sort(axis=1)
        F = ndtr(P, out=P)
        out[a : a + step] = np.maximum((hi - F).max(axis=1), (F - lo).max(axis=1))
    return out


def _cov_max_error(G: np.ndarray) -> float:
    Gc = G - G.mean(axis=0)
    cov = Gc.T @ Gc / (G.shape[0] - 1)
    cov[np.diag_indices_from(cov)] -= 1.0
    return float(np.abs(cov).max())


#: Most exact covariance draws behind the covariance floor, and the flops they
#: may cost (Bartlett's ``d x d`` factor is cheap: 1024 draws at d = 64).
_COV_FLOOR_DRAWS = 1024
_COV_FLOOR_FLOPS = 1 << 28


def _wishart_cov_errors(n: int, d: int, draws: int, seed: int) -> np.ndarray:
    """``max |S - I|`` for ``draws`` exact sample covariances ``S`` of ``n`` points
    of ``N(0, I_d)``: ``(n - 1) S`` is ``Wishart(n - 1, I)``, drawn by Bartlett's
    decomposition ``A A^T`` (``A`` lower triangular, ``A_ii^2 ~ chi2(n - 1 - i)``,
    ``A_ij ~ N(0, 1)`` below the diagonal). Needs ``n - 1 >= d``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2, n, d]))
    out = np.empty(draws)
    lower = np.tri(d, k=-1, dtype=bool)
    step = max(1, _BLOCK_ELEMENTS // (d * d))
    for a in range(0, draws, step):
        b = min(step, draws - a)
        A = rng.standard_normal((b, d, d)) * lower
        diag = np.sqrt(rng.chisquare(n - 1 - np.arange(d), size=(b, d)))
        A[:, np.arange(d), np.arange(d)] = diag
        S = A @ np.swapaxes(A, 1, 2) / (n - 1)
        S[:, np.arange(d), np.arange(d)] -= 1.0
        out[a : a + b] = np.abs(S).max(axis=(1, 2))
    return out


@functools.lru_cache(maxsize=32)
def _joint_floor(
    n: int, d: int, n_directions: int, seed: int, n_reference: int
) -> tuple[np.ndarray, np.ndarray]:
    """The exact samples' statistics: sliced mean and max of ``n_reference``
    ``N(0, I)`` samples of shape ``(n, d)`` (``(n_reference, 2)``), and the cov
    errors of as many or more exact sample covariances; read-only arrays.

    Pure in its arguments, so cached: benchmarks judge many latent sets of one
    shape, and the exact draws cost far more than the latents' own statistics.
    The covariance floor comes from the exact (Wishart) law of the sample
    covariance, up to ``_COV_FLOOR_DRAWS`` draws: its largest entry varies more
    from sample to sample than the sliced mean, and 16 draws misplaced its 95%
    quantile (1.08 against 1.23 over 200 samples at n = 10,000, d = 16).
    """
    U = _joint_directions(d, n_directions, seed)
    sliced = np.empty((n_reference, 2))
    cov = np.empty(n_reference)
    wishart = n - 1 >= d
    for r in range(n_reference):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1, r]))
        G = rng.standard_normal((n, d))
        ks = _sliced_ks(G, U)
        sliced[r] = ks.mean(), ks.max()
        if not wishart:
            cov[r] = _cov_max_error(G)
    if wishart:
        draws = max(n_reference, min(_COV_FLOOR_DRAWS, _COV_FLOOR_FLOPS // d**3))
        cov = _wishart_cov_errors(n, d, draws, seed)
    sliced.flags.writeable = False
    cov.flags.writeable = False
    return sliced, cov


def _seed(random_state) -> int:
    """A non-negative int seed: the int itself, or one drawn from a generator."""
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state!r}")
        return int(random_state)
    return int(_rng(random_state).integers(np.iinfo(np.int64).max))


def joint_match(
    Z,
    prior: str = "gaussian",
    *,
    n_directions: int = 256,
    n_reference: int = 16,
    random_state=0,
) -> JointMatch:
    """Graded joint match to the prior: sliced, radial and covariance ratios.

    Three views of how far the latents are from exactly the prior, each divided
    by what an exact prior sample of the same shape scores (its *floor*), so
    that **1.0 is as good as an exact sample** and larger is worse, at any
    ``n_samples`` and ``n_components``:

    * **sliced**: project the latents on ``n_directions`` fixed random unit
      directions and take the Kolmogorov (KS) distance of each projection to
      ``N(0, 1)`` (the law of any unit projection of ``N(0, I)``); report the
      mean and the largest over directions. It sees the joint law, not just
      the marginals: a law whose every coordinate is ``N(0, 1)`` but whose
      coordinates are dependent fails it.
    * **radial**: the KS distance of ``||z||^2`` to ``chi2(n_components)``.
    * **covariance**: the largest entry of ``|Cov(Z) - I|``.

    The floor is the median of each statistic over ``n_reference`` exact
    ``N(0, I)`` samples of shape ``(n_samples, n_components)``, projected on the
    same directions. The radial and covariance floors use exact laws instead:
    the radial KS distance of an exact sample follows the Kolmogorov law of
    ``n_samples`` points (``scipy.stats.kstwo``) whatever the dimension, and the
    covariance floor comes from up to 1024 draws of the exact (Wishart) law of
    the sample covariance (from the ``n_reference`` samples when
    ``n_samples <= n_components``). The
    ``*_q95`` fields give the 95% quantile of each ratio on exact samples: a
    ratio below it is within sampling noise. Directions and exact samples
    depend only on ``random_state``, the shape and ``n_directions``, so two
    latent sets of one shape are judged on the same directions against the same
    floor; the floor is cached in-process for each shape and seed.

    For the uniform prior each coordinate is first mapped by the probit
    ``Phi^{-1}`` (an exact uniform sample becomes an exact ``N(0, I)`` sample),
    after clipping it to ``[eps, 1 - eps]`` with ``eps = 2**-24`` (float32's
    resolution below 1, as the encoder's sigmoid saturates there): latents on
    the cube's faces land at about ``+-5.3`` and latents outside the cube are
    treated as on its faces, both far out in the tails where the KS distances
    see them.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Latents, at least 3 of them.

    prior : {"gaussian", "uniform"}, default="gaussian"
        The base to compare with.

    n_directions : int, default=256
        Number of random unit directions.

    n_reference : int, default=16
        Number of exact prior samples behind the sliced floor and its 95%
        quantile (more draws make ``sliced_ratio_q95`` and
        ``sliced_max_ratio_q95`` less noisy).

    random_state : int, numpy Generator or None, default=0
        Seeds the directions and the exact samples. Keep it fixed to compare
        latent sets; an int also keys the floor's cache.

    Returns
    -------
    result : JointMatch
        The ratios (``sliced_ratio`` first), the statistics, their floors and
        the floors' 95% quantiles.

    Raises
    ------
    ValueError
        When ``Z`` is not a finite real 2-D array of at least 3 samples,
        ``prior`` is neither ``"gaussian"`` nor ``"uniform"``, or
        ``n_directions``, ``n_reference`` or ``random_state`` is invalid.

    See Also
    --------
    norm_ks_test : The radial KS test as a p-value.
    component_ks_test : Per-coordinate KS, blind to dependence between them.
    dm_report : These ratios beside the other checks.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm.metrics import joint_match
    >>> rng = np.random.default_rng(0)
    >>> exact = joint_match(rng.standard_normal((2000, 4)))
    >>> bool(exact.sliced_ratio < exact.sliced_ratio_q95)
    True
    >>> x = rng.standard_normal(2000)
    >>> sign = rng.choice([-1.0, 1.0], 2000)
    >>> Z = np.column_stack([x, sign * x])  # both columns N(0, 1), not jointly
    >>> bool(joint_match(Z).sliced_ratio > 3)
    True
    """
    n_dir = _check_int(n_directions, "n_directions", 1)
    n_ref = _check_int(n_reference, "n_reference", 1)
    base = _check_prior(prior)
    Z = _check_latents(Z)
    seed = _seed(random_state)
    G = base.to_gaussian(Z)
    n, d = G.shape
    U = _joint_directions(d, n_dir, seed)
    ks = _sliced_ks(G, U)
    sliced_mean, sliced_max = float(ks.mean()), float(ks.max())
    sq = np.einsum("ij,ij->i", G, G)
    radial = float(stats.ks_1samp(sq, stats.chi2(d).cdf).statistic)
    cov = _cov_max_error(G)

    sliced_floor, cov_floor = _joint_floor(n, d, n_dir, seed, n_ref)
    med = [*np.median(sliced_floor, axis=0), np.median(cov_floor)]
    q95 = [
        *(np.quantile(sliced_floor, 0.95, axis=0) / med[:2]),
        np.quantile(cov_floor, 0.95) / med[2],
    ]
    kolmogorov = stats.kstwo(n)
    radial_floor = float(kolmogorov.median())
    radial_q95 = float(kolmogorov.ppf(0.95)) / radial_floor
    ratios = (
        sliced_mean / med[0],
        sliced_max / med[1],
        radial / radial_floor,
        cov / med[2],
    )
    return JointMatch(
        sliced_ratio=float(ratios[0]),
        sliced_max_ratio=float(ratios[1]),
        radial_ratio=float(ratios[2]),
        cov_ratio=float(ratios[3]),
        worst_ratio=float(max(ratios[0], ratios[2], ratios[3])),
        sliced_ks_mean=sliced_mean,
        sliced_ks_max=sliced_max,
        radial_ks=radial,
        cov_max_error=cov,
        floor_sliced_ks_mean=float(med[0]),
        floor_sliced_ks_max=float(med[1]),
        floor_radial_ks=radial_floor,
        floor_cov_max_error=float(med[2]),
        sliced_ratio_q95=float(q95[0]),
        sliced_max_ratio_q95=float(q95[1]),
        radial_ratio_q95=radial_q95,
        cov_ratio_q95=float(q95[2]),
        n_directions=n_dir,
        n_reference=n_ref,
    )


# --------------------------------------------------------------------- report
_ROWS = {
    # key: (label, ideal)
    "n_samples": ("samples", ""),
    "n_components": ("components", ""),
    "hz_bootstrap_pvalue": ("Henze-Zirkler, mean p over subsamples", "~0.5"),
    "shapiro_bootstrap_pvalue": ("Shapiro-Wilk (random projection), mean p", "~0.5"),
    "dagostino_bootstrap_pvalue": ("D'Agostino-Pearson (projection), mean p", "~0.5"),
    "hz_statistic": ("Henze-Zirkler on all samples, statistic", "small"),
    "hz_pvalue": ("Henze-Zirkler on all samples, p", "> 0.05"),
    "norm_ks_pvalue": ("KS of ||z||^2 vs chi2(d), p", "> 0.05"),
    "component_ks_pvalue": ("per-component KS, Fisher-combined p", "> 0.05"),
    "mean_error": ("mean error, prior std units", "0"),
    "cov_error": ("covariance error (Frobenius), standardized", "0"),
    "fraction_inside": ("fraction inside [0,1]^d", "1"),
    "knn_kl": ("kNN KL(latents || prior), nats", "0"),
    "sliced_wasserstein": ("sliced Wasserstein to prior draws", "0"),
    "sliced_ratio": ("sliced KS, mean / exact samples' (joint_match)", "~1"),
    "sliced_ratio_q95": ("  95% of exact samples' sliced ratio below", ""),
    "sliced_max_ratio": ("sliced KS, worst direction / exact samples'", "~1"),
    "radial_ratio": ("KS of ||z||^2 vs chi2(d) / exact samples'", "~1"),
    "radial_ratio_q95": ("  95% of exact samples' radial ratio below", ""),
    "cov_ratio": ("max |cov - I| / exact samples'", "~1"),
    "cov_ratio_q95": ("  95% of exact samples' cov ratio below", ""),
}
#: The :class:`JointMatch` fields that :func:`dm_report` shows, in order.
_REPORT_JOINT = (
    "sliced_ratio",
    "sliced_ratio_q95",
    "sliced_max_ratio",
    "radial_ratio",
    "radial_ratio_q95",
    "cov_ratio",
    "cov_ratio_q95",
)


class DMReport(dict):
    """Distribution-matching metrics as a dict that prints as a table.

    Made by :func:`dm_report`; keys are metric names (the ``key`` column of the
    table).

    Attributes
    ----------
    prior : {"gaussian", "uniform"}
        The base the latents were compared with.
    n_subsamples, subsample_size : int or None
        The bootstrap protocol's size (None for the uniform prior).

    See Also
    --------
    dm_report : The function that makes it.
    """

    def __init__(self, values, *, prior, n_subsamples=None, subsample_size=None):
        super().__init__(values)
        self.prior = prior
        self.n_subsamples = n_subsamples
        self.subsample_size = subsample_size

    def __reduce__(self):
        return (
            _rebuild_report,
            (dict(self), self.prior, self.n_subsamples, self.subsample_size),
        )

    def to_string(self) -> str:
        """The table as text: one row per metric with its key, value and ideal.

        Returns
        -------
        text : str
            A title line naming the prior, a header and one line per metric;
            ``str(report)`` and ``print(report)`` give the same.

        Examples
        --------
        >>> import numpy as np
        >>> from skdim_dm.metrics import dm_report
        >>> Z = np.random.default_rng(0).standard_normal((500, 2))
        >>> print(dm_report(Z, n_subsamples=64).to_string().splitlines()[0])
        Distribution match to N(0, I) (bootstrap 64 x 64)
        """
        target = get_base(self.prior).target
        title = f"Distribution match to {target}"
        if self.n_subsamples:
            title += f" (bootstrap {self.n_subsamples} x {self.subsample_size})"
        rows = [("metric", "key", "value", "ideal")]
        for key, value in self.items():
            label, ideal = _ROWS.get(key, (key, ""))
            rows.append((label, key, _format_value(value), ideal))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [title]
        for i, row in enumerate(rows):
            label, key, value, ideal = row
            lines.append(
                f"{label:<{widths[0]}}  {key:<{widths[1]}}  "
                f"{value:>{widths[2]}}  {ideal}".rstrip()
            )
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    __str__ = to_string
    __repr__ = to_string


def _rebuild_report(values, prior, n_subsamples, subsample_size):
    return DMReport(
        values, prior=prior, n_subsamples=n_subsamples, subsample_size=subsample_size
    )


def _format_value(value) -> str:
    if isinstance(value, Integral):
        return str(value)
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return str(value)
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:.4f}"
    return f"{value:.3e}"


def dm_report(
    Z,
    prior: str = "gaussian",
    *,
    random_state=0,
    n_subsamples: int = 1024,
    subsample_size: int = 64,
    k: int = 5,
    n_projections: int = 128,
    n_directions: int = 256,
    n_reference: int = 16,
) -> DMReport:
    """Every distribution-matching metric for one set of latents, as a table.

    Gaussian prior: the paper's bootstrap protocol (mean p-values of
    Henze-Zirkler, Shapiro-Wilk and D'Agostino-Pearson; about 0.5 is ideal),
    Henze-Zirkler on the full sample, the simple checks against exactly
    ``N(0, I)`` (KS of ``||z||^2``, per-component KS, mean and covariance
    errors), the kNN KL estimate and the sliced Wasserstein distance. Uniform
    prior: per-component KS (Fisher), fraction inside the cube, mean and
    covariance errors, kNN KL and sliced Wasserstein. Both end with the graded
    joint ratios of :func:`joint_match` (sliced, radial and covariance; 1.0 is
    as good as an exact prior sample of the same shape) and the 95% quantiles
    of the ratios on exact samples.

    Full-sample Henze-Zirkler costs ``O(n^2 d)`` time (chunked, so memory stays
    small): tens of seconds for ``10^5`` latents on two CPU cores.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Latents in the prior's space.

    prior : {"gaussian", "uniform"}, default="gaussian"

    random_state : int, numpy Generator or None, default=0
        Seeds the bootstrap subsamples, projections and prior draws.

    n_subsamples, subsample_size : int, default=1024, 64
        Bootstrap protocol size (Gaussian prior only).

    k : int, default=5
        Neighbour rank of the KL estimate.

    n_projections : int, default=128
        Directions of the sliced Wasserstein distance.

    n_directions, n_reference : int, default=256, 16
        Directions and exact prior samples of :func:`joint_match`. With an int
        ``random_state`` the ratios are those of
        ``joint_match(Z, prior, random_state=random_state)``.

    Returns
    -------
    report : DMReport
        A dict of floats (see the ``key`` column of its table); ``print`` it.

    Raises
    ------
    ValueError
        When ``Z`` is not a finite 2-D array of more than ``k`` samples (and,
        for the Gaussian prior, at least ``subsample_size``), or ``prior`` is
        neither ``"gaussian"`` nor ``"uniform"``.

    See Also
    --------
    normality_bootstrap, henze_zirkler, norm_ks_test, component_ks_test,
    knn_kl_divergence, sliced_wasserstein, joint_match

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm.metrics import dm_report
    >>> report = dm_report(np.random.default_rng(0).standard_normal((500, 2)))
    >>> report["n_samples"], sorted(report)[:2]
    (500, ['component_ks_pvalue', 'cov_error'])
    """
    base = _check_prior(prior)
    prior = base.name
    Z = _check_latents(Z, min_samples=k + 1)
    _check_int(n_directions, "n_directions", 1)
    _check_int(n_reference, "n_reference", 1)
    rng = _rng(random_state)
    n, d = Z.shape
    out = {"n_samples": n, "n_components": d}
    if base.gaussian:
        boot = normality_bootstrap(
            Z,
            n_subsamples=n_subsamples,
            subsample_size=subsample_size,
            random_state=rng,
        )
        out["hz_bootstrap_pvalue"] = boot["henze_zirkler"]
        out["shapiro_bootstrap_pvalue"] = boot["shapiro_wilk"]
        out["dagostino_bootstrap_pvalue"] = boot["dagostino_pearson"]
        hz = henze_zirkler(Z)
        out["hz_statistic"] = hz.statistic
        out["hz_pvalue"] = hz.pvalue
        out["norm_ks_pvalue"] = norm_ks_test(Z).pvalue
    out["component_ks_pvalue"] = component_ks_test(Z, prior).pvalue
    out["mean_error"] = mean_error(Z, prior)
    out["cov_error"] = covariance_error(Z, prior)
    if base.bounded:
        out["fraction_inside"] = fraction_inside(Z)
    out["knn_kl"] = knn_kl_divergence(Z, prior, k=k)
    out["sliced_wasserstein"] = sliced_wasserstein(
        Z, prior, n_projections=n_projections, random_state=rng
    )
    # An int seed is passed as is: the same directions and floor as joint_match.
    seeded = isinstance(random_state, Integral) and not isinstance(random_state, bool)
    joint = joint_match(
        Z,
        prior,
        n_directions=n_directions,
        n_reference=n_reference,
        random_state=random_state if seeded else rng,
    )
    out.update((key, getattr(joint, key)) for key in _REPORT_JOINT)
    return DMReport(
        out,
        prior=prior,
        n_subsamples=n_subsamples if base.gaussian else None,
        subsample_size=subsample_size if base.gaussian else None,
    )
