"""LatentOutlierDetector: calibration, detection, sklearn semantics, errors."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import ndtr
from scipy.stats import chi2, kstest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdim_dm import (
    LatentOutlierDetector,
    NoiseInjectedInfoMax,
    benjamini_hochberg,
    outlier_embedder,
)
from skdim_dm._outliers import (
    STATISTICS,
    TIE_RTOL,
    UNIFORM_CLIP,
    ConformalCalibration,
    LatentStatistic,
    chi2_logsf,
    conditional_calibration_rows,
    conditional_pvalue_table,
    probit,
    register_statistic,
    shrunk_whitening,
    simes_bounds,
)
from skdim_dm._validation import DetectorSeeds, derive_seeds

ALPHAS = (0.01, 0.05, 0.10)
EXPON = stats.expon()


def _tiny_infomax():
    return NoiseInjectedInfoMax(hidden_layer_sizes=(16,), max_epochs=3, device="cpu")


@parametrize_with_checks(
    [LatentOutlierDetector(embedder=_tiny_infomax())],
    expected_failed_checks=lambda est: {},
)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        # Tiny check data: "the smallest conformal p-value is ... > alpha", and
        # random tables with no information for the embedder to find.
        warnings.filterwarnings("ignore", message="the smallest conformal p-value")
        warnings.filterwarnings("ignore", message="the final MI estimate is negative")
        check(estimator)


@pytest.mark.slow
@parametrize_with_checks(
    [
        LatentOutlierDetector(embedder=_tiny_infomax(), calibration="cross-conformal"),
        LatentOutlierDetector(
            embedder=_tiny_infomax(), statistic="mahalanobis", calibration="prior"
        ),
        # alpha = 0.1: the checks' 300 rows calibrate on 60, and
        # fpr_confidence=0.9 needs 44 to flag anything at 0.1 (90 at 0.05).
        LatentOutlierDetector(embedder=_tiny_infomax(), alpha=0.1, fpr_confidence=0.9),
    ],
    expected_failed_checks=lambda est: (
        {
            name: (
                "cross-conformal scores a training row in-sample in n_folds - 1 "
                "models, so predict on the training set itself flags nothing at "
                "contamination='auto' (documented)"
            )
            for name in ("check_outliers_train", "check_outliers_fit_predict")
        }
        if est.calibration == "cross-conformal"
        else {}
    ),
)
def test_sklearn_compatible_other_calibrations(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="the smallest conformal p-value")
        warnings.filterwarnings("ignore", message="the final MI estimate is negative")
        check(estimator)


# ---------------------------------------------------------------- helpers
class _UniformLatents(TransformerMixin, BaseEstimator):
    """Exact uniform latents: ``Phi`` of standard normal inputs."""

    def __init__(self, prior="uniform"):
        self.prior = prior

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):
        return ndtr(np.asarray(X, dtype=np.float64))


class _ExponentialLatents(TransformerMixin, BaseEstimator):
    """Exact latents for a non-built-in target: ``Exp(1)`` per component."""

    def __init__(self, prior=EXPON):
        self.prior = prior

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):
        return stats.expon.isf(ndtr(-np.asarray(X, dtype=np.float64)))


class _Spy(TransformerMixin, BaseEstimator):
    """Identity latents that remember the rows they were fitted on."""

    def fit(self, X, y=None):
        self.fit_rows_ = np.array(X, dtype=np.float64, copy=True)
        self.n_features_in_ = self.fit_rows_.shape[1]
        return self

    def transform(self, X):
        return np.asarray(X, dtype=np.float64)


class _SeededSpy(_Spy):
    def __init__(self, random_state=None):
        self.random_state = random_state


def test_the_folds_and_each_folds_embedder_draw_from_their_own_seeds():
    X = np.random.default_rng(3).standard_normal((60, 3))
    det = LatentOutlierDetector(
        _SeededSpy(), calibration="cross-conformal", n_folds=3, random_state=11
    ).fit(X)
    seeds = DetectorSeeds.derive(11, 3)
    # The roles are derived as they were numbered: the folds' seed first.
    first, *rest = derive_seeds(11, 4)
    assert seeds == (first, tuple(rest))
    folds = ConformalCalibration(n_folds=3).folds(
        60, np.random.default_rng(seeds.folds), True
    )
    for embedder, seed, (train, _) in zip(det.embedders_, seeds.embedders, folds):
        assert embedder.random_state == seed & 0xFFFFFFFF
        np.testing.assert_array_equal(embedder.fit_rows_, X[train])
    assert len({e.random_state for e in det.embedders_}) == 3


class _MustNotFit(TransformerMixin, BaseEstimator):
    """Fails loudly if the detector trains before validating its inputs."""

    def fit(self, X, y=None):
        raise AssertionError("the embedder was fitted before input validation")

    def transform(self, X):
        raise AssertionError("the embedder was used before input validation")


def _identity():
    # Latents = inputs: isolates the detector's statistics from training.
    return FunctionTransformer()


def _row_set(A):
    return {tuple(r) for r in np.asarray(A)}


def _linear_gaussian(rng, n, A, noise=0.05):
    """Samples whose true latent is ``N(0, I_d)``, embedded linearly in ``D`` dims."""
    z = rng.standard_normal((n, A.shape[0]))
    return z @ A + noise * rng.standard_normal((n, A.shape[1]))


@pytest.fixture(scope="module")
def trained():
    """A detector trained end to end on data whose true latent is Gaussian."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 8))
    X_train = _linear_gaussian(rng, 2000, A)
    X_test = _linear_gaussian(rng, 20000, A)
    emb = NoiseInjectedInfoMax(
        hidden_layer_sizes=(16,),
        critic="gaussian",
        batch_size=256,
        max_epochs=15,
        device="cpu",
    )
    det = LatentOutlierDetector(emb, random_state=0).fit(X_train)
    return det, A, X_train, X_test


# -------------------------------------------------------------- numerics
@settings(max_examples=60, deadline=None)
@given(
    df=st.integers(1, 300),
    q=st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
)
def test_chi2_logsf_matches_scipy_and_stays_finite(df, q):
    got = float(chi2_logsf(q, df))
    ref = float(chi2.logsf(q, df))
    assert np.isfinite(got)
    assert got <= 0
    if np.isfinite(ref):
        assert got == ref
    # Monotone across the switch to the continued fraction.
    assert float(chi2_logsf(q * 1.01 + 1.0, df)) < got or got == 0


def test_chi2_logsf_continued_fraction_agrees_near_underflow():
    from skdim_dm._outliers import _log_gammaincc_cf

    for df in (1, 2, 7, 16, 100):
        q = np.array([300.0, 800.0, 1300.0]) + 2 * df
        ref = chi2.logsf(q, df)
        assert np.all(np.isfinite(ref))
        np.testing.assert_allclose(_log_gammaincc_cf(df / 2, q / 2), ref, rtol=1e-10)
    # Where scipy underflows, the tail keeps ordering: no ties among far outliers.
    q = np.array([2e3, 1e4, 1e5, 1e7])
    assert np.all(np.isinf(chi2.logsf(q, 8)))
    assert np.all(np.diff(chi2_logsf(q, 8)) < 0)
    # df = 2: log sf is exactly -q / 2.
    np.testing.assert_allclose(chi2_logsf(q, 2), -q / 2, rtol=1e-12)
    assert chi2_logsf(np.inf, 3) == -np.inf


def test_probit_is_symmetric_and_clipped():
    u = np.array([0.0, 1e-12, 0.2, 0.5, 0.8, 1.0])
    z = probit(u)
    assert np.all(np.isfinite(z))
    np.testing.assert_allclose(z, -probit(1.0 - u), atol=1e-6)
    assert z[0] == z[1] == probit(UNIFORM_CLIP)
    assert z[3] == 0.0


def test_shrunk_whitening_whitens_and_stays_finite_when_rows_are_few():
    rng = np.random.default_rng(20)
    cov = np.array([[4.0, 1.5], [1.5, 1.0]])
    G = rng.standard_normal((20000, 2)) @ np.linalg.cholesky(cov).T
    loc, W = shrunk_whitening(G)
    np.testing.assert_allclose(W @ np.cov(G.T) @ W.T, np.eye(2), atol=0.01)
    np.testing.assert_allclose(W, W.T)
    # 64 components on 10 rows: singular sample covariance, finite whitening.
    loc, W = shrunk_whitening(rng.standard_normal((10, 64)))
    assert np.all(np.isfinite(W)) and W.shape == (64, 64)


# ------------------------------------------- conformal p-values, by the book
@pytest.mark.parametrize("statistic", ["prior", "mahalanobis", "knn"])
def test_split_conformal_pvalues_match_a_reference(statistic):
    rng = np.random.default_rng(21)
    X = rng.standard_normal((50, 3))
    X_new = 1.5 * rng.standard_normal((40, 3))
    det = LatentOutlierDetector(  # alpha=0.2: 15 calibration rows can flag
        _Spy(), statistic=statistic, calibration_size=0.3, alpha=0.2, random_state=0
    ).fit(X)
    train = _row_set(det.embedder_.fit_rows_)
    cal = np.array([x for x in X if tuple(x) not in train])
    assert len(train) == 35 and len(cal) == 15 == det.n_calibration_
    # The statistic, by hand, fitted on the training rows only.
    T = det.embedder_.fit_rows_
    if statistic == "prior":
        s = lambda A: np.sum(A**2, axis=1)  # noqa: E731
    elif statistic == "mahalanobis":
        loc, W = shrunk_whitening(T)
        s = lambda A: np.sum(((A - loc) @ W.T) ** 2, axis=1)  # noqa: E731
    else:
        loc, W = shrunk_whitening(T)
        WT = (T - loc) @ W.T

        def s(A):
            D = np.linalg.norm(((A - loc) @ W.T)[:, None, :] - WT[None], axis=2)
            return np.sort(D, axis=1)[:, :5].mean(axis=1)

    s_cal, s_new = s(cal), s(X_new)
    ref = (1 + (s_cal[None, :] >= s_new[:, None]).sum(axis=1)) / (len(cal) + 1)
    np.testing.assert_allclose(det.pvalues(X_new), ref)
    np.testing.assert_allclose(np.sort(det.calibration_.scores_[0]), np.sort(s_cal))


# ------------------------------------------------- the statistics registry
class _FarthestCoordinate(LatentStatistic):
    """A toy statistic: the largest absolute coordinate, beyond ``n_neighbors``
    training rows (the option it takes from the detector)."""

    name = "farthest-coordinate"

    def __init__(self, n_neighbors):
        self.n_neighbors = n_neighbors

    def check_n_train(self, n_train, n_samples):
        if n_train < 10 * self.n_neighbors:
            raise ValueError(f"farthest-coordinate: {n_train} of {n_samples} rows")

    def fit(self, G):
        return self

    def score(self, G):
        return np.abs(G).max(axis=1)


@pytest.fixture
def farthest_coordinate():
    register_statistic(_FarthestCoordinate)
    yield _FarthestCoordinate.name
    del STATISTICS[_FarthestCoordinate.name]


def test_a_registered_statistic_is_usable_by_name(farthest_coordinate):
    rng = np.random.default_rng(23)
    X, X_new = rng.standard_normal((50, 3)), 1.5 * rng.standard_normal((40, 3))
    det = LatentOutlierDetector(
        _Spy(),
        statistic=farthest_coordinate,
        n_neighbors=2,
        calibration_size=0.3,
        alpha=0.2,
        random_state=0,
    ).fit(X)
    (stat,) = det.statistics_
    assert isinstance(stat, _FarthestCoordinate) and stat.n_neighbors == 2
    train = _row_set(det.embedder_.fit_rows_)
    s_cal = np.abs(np.array([x for x in X if tuple(x) not in train])).max(axis=1)
    s_new = np.abs(X_new).max(axis=1)
    ref = (1 + (s_cal[None, :] >= s_new[:, None]).sum(axis=1)) / (len(s_cal) + 1)
    np.testing.assert_allclose(det.pvalues(X_new), ref)
    # Its own check on the training rows runs before anything is fitted.
    with pytest.raises(ValueError, match="farthest-coordinate: 40 of 50 rows"):
        LatentOutlierDetector(
            _MustNotFit(), statistic=farthest_coordinate, n_neighbors=5
        ).fit(X)
    # Not chi-square under the prior: refused by calibration="prior", which
    # names the registered statistics that are.
    with pytest.raises(ValueError, match=r"\('prior' or 'mahalanobis'\), got stat"):
        LatentOutlierDetector(
            _Spy(), statistic=farthest_coordinate, calibration="prior"
        ).fit(X)


def test_an_unknown_statistic_is_refused_naming_the_registered_ones():
    with pytest.raises(ValueError, match="'statistic' parameter") as info:
        LatentOutlierDetector(_MustNotFit(), statistic="nope").fit(np.eye(5))
    assert all(name in str(info.value) for name in STATISTICS)


def test_cross_conformal_pvalues_match_a_reference():
    rng = np.random.default_rng(22)
    X = rng.standard_normal((23, 2))
    X_new = 2 * rng.standard_normal((30, 2))
    det = LatentOutlierDetector(
        _Spy(), statistic="mahalanobis", calibration="cross-conformal", n_folds=4
    ).fit(X)
    assert det.n_calibration_ == 23 and len(det.embedders_) == 4
    count = np.zeros(len(X_new))
    held_out = []
    for emb in det.embedders_:
        seen = _row_set(emb.fit_rows_)
        fold = np.array([x for x in X if tuple(x) not in seen])
        held_out.append(fold)
        loc, W = shrunk_whitening(emb.fit_rows_)
        s = lambda A: np.sum(((A - loc) @ W.T) ** 2, axis=1)  # noqa: E731, B023
        count += (s(fold)[None, :] >= s(X_new)[:, None]).sum(axis=1)
    # The folds partition the rows.
    assert sum(len(f) for f in held_out) == 23
    assert set().union(*map(_row_set, held_out)) == _row_set(X)
    np.testing.assert_allclose(det.pvalues(X_new), (1 + count) / 24)


@pytest.mark.parametrize("calibration", ["conformal", "cross-conformal"])
def test_calibration_rows_never_train_the_embedder(calibration):
    rng = np.random.default_rng(23)
    X = rng.standard_normal((60, 3))
    det = LatentOutlierDetector(
        _Spy(), calibration=calibration, n_folds=3, alpha=0.2, random_state=1
    ).fit(X)
    calibrated = []
    for emb, stat, cal_scores in zip(
        det.embedders_, det.statistics_, det.calibration_.scores_
    ):
        seen = _row_set(emb.fit_rows_)
        rest = np.array([x for x in X if tuple(x) not in seen])
        # What calibrates this model is exactly what it was not fitted on ...
        np.testing.assert_allclose(np.sort(stat.score(rest)), cal_scores)
        # ... and nothing it was fitted on (the statistic's neighbors included).
        assert len(seen) + len(rest) == len(X)
        assert stat.neighbors_.n_samples_fit_ == len(seen)
        np.testing.assert_allclose(stat.location_, emb.fit_rows_.mean(axis=0))
        calibrated.append(rest)
    assert sum(len(c) for c in calibrated) == det.n_calibration_


# ------------------------------------------- calibration over many draws
def _draws(calibration, statistic, sampler, n_draws=200, n=60, n_test=400):
    """Per draw: the FPR on fresh inliers at each alpha, and one fresh p-value."""
    fpr = {a: [] for a in ALPHAS}
    single = []
    for i in range(n_draws):
        rng = np.random.default_rng([24, i])
        X, X_test = sampler(rng, n), sampler(rng, n_test)
        det = LatentOutlierDetector(
            StandardScaler(),
            statistic=statistic,
            calibration=calibration,
            calibration_size=0.5,
            n_folds=5,
            random_state=i,
        ).fit(X)
        p = det.pvalues(X_test)
        for a in ALPHAS:
            fpr[a].append(np.mean(p <= a))
        single.append(p[0])
    return {a: np.array(v) for a, v in fpr.items()}, np.array(single)


def _gauss(rng, n):
    return rng.standard_normal((n, 3)) @ np.array([[1, 0.8, 0], [0, 1, 0], [0, 0, 3]])


def _heavy(rng, n):
    return rng.standard_t(2, size=(n, 3))


@pytest.mark.parametrize(
    "statistic, sampler",
    [
        ("knn", _heavy),
        ("prior", _heavy),
        pytest.param("knn", _gauss, marks=pytest.mark.slow),
        pytest.param("mahalanobis", _gauss, marks=pytest.mark.slow),
    ],
)
def test_split_conformal_fpr_over_many_draws(statistic, sampler):
    """The FPR of a fitted detector is Beta(l, n_cal + 1 - l), mean l / (n_cal + 1)."""
    fpr, single = _draws("conformal", statistic, sampler)
    n_cal = 30
    for a in ALPHAS:
        ell = int(np.floor(a * (n_cal + 1)))
        mean = ell / (n_cal + 1)  # <= alpha
        var = mean * (1 - mean) / (n_cal + 2) + mean * (1 - mean) / 400
        se = np.sqrt(var / len(fpr[a]))
        assert abs(fpr[a].mean() - mean) < 4 * se + 1e-12, a
        if ell:
            ratio = fpr[a].var() / var
            assert 0.5 < ratio < 1.8, (a, ratio)
    # Marginally, over draws of calibration set and test point: P(p <= alpha).
    for a in ALPHAS:
        assert np.mean(single <= a) <= a + 3 * np.sqrt(a * (1 - a) / len(single))


def test_split_conformal_fpr_is_beta_distributed_exactly():
    """Prior statistic on exact N(0, I) rows: the FPR given the calibration set is
    ``chi2.sf(threshold)``, with no test sampling: compare it to its Beta law."""
    n_cal, alpha = 39, 0.1
    ell = int(np.floor(alpha * (n_cal + 1)))
    fprs = []
    for i in range(200):
        X = np.random.default_rng([25, i]).standard_normal((n_cal, 4))
        det = LatentOutlierDetector(
            FunctionTransformer().fit(X),
            prefit=True,
            statistic="prior",
            calibration="conformal",
            alpha=alpha,
        ).fit(X)
        assert det.n_calibration_ == n_cal  # nothing to train: all rows calibrate
        # Flagged exactly beyond the ell-th largest calibration score.
        threshold = np.sort(det.calibration_.scores_[0])[::-1][ell - 1]
        fprs.append(chi2.sf(threshold, 4))
    assert kstest(fprs, stats.beta(ell, n_cal + 1 - ell).cdf).pvalue > 1e-3


@pytest.mark.parametrize(
    "sampler", [_heavy, pytest.param(_gauss, marks=pytest.mark.slow)]
)
def test_cross_conformal_fpr_over_many_draws(sampler):
    """At most 2 alpha in theory; close to alpha in practice."""
    fpr, single = _draws("cross-conformal", "knn", sampler, n_draws=100)
    for a in ALPHAS:
        se = np.sqrt(a * (1 - a) / 61 / len(fpr[a]))
        assert fpr[a].mean() <= a + 4 * se, a
        if a * 61 >= 1:  # else nothing can be flagged
            assert fpr[a].mean() >= 0.5 * a, a  # not vacuously conservative
    assert np.mean(single <= 0.1) <= 2 * 0.1


# ------------------------------------- calibration-conditional p-values
def _simes_reference(n, delta):
    """Bates et al. (2023), Section 3, written out with products."""
    k = max(1, n // 2)
    b = np.ones(n)
    for i in range(k, n + 1):
        ratio = np.prod([(i - t) / (n - t) for t in range(k)])
        b[n - i] = 1 - delta ** (1 / k) * ratio ** (1 / k)  # b_{n+1-i}
    return b


@pytest.mark.parametrize("n", [1, 2, 7, 10, 31, 200])
@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.99])
def test_simes_bounds_follow_the_papers_formula(n, confidence):
    b = simes_bounds(n, confidence)
    np.testing.assert_allclose(b, _simes_reference(n, 1 - confidence), rtol=1e-12)
    assert np.all(np.diff(b) >= 0) and np.all((b > 0) & (b <= 1))


@pytest.mark.parametrize("n, confidence", [(5, 0.9), (60, 0.9), (201, 0.8)])
def test_simes_bounds_hold_with_probability_exactly_fpr_confidence(n, confidence):
    """``P(U_(j) <= b_j for every j) = 1 - delta`` for i.i.d. uniforms: neither
    less (invalid) nor more (needlessly conservative)."""
    b = simes_bounds(n, confidence)
    U = np.sort(np.random.default_rng([27, n]).random((20000, n)), axis=1)
    held = np.mean(np.all(U <= b, axis=1))
    se = np.sqrt(confidence * (1 - confidence) / 20000)
    assert abs(held - confidence) < 4 * se, held


def test_conditional_pvalue_table_is_monotone_and_never_below_the_marginal():
    for n in (1, 3, 50, 999):
        for confidence in (0.01, 0.5, 0.9):
            t = conditional_pvalue_table(n, confidence)
            marginal = (1.0 + np.arange(n + 1)) / (n + 1.0)
            assert t.shape == (n + 1,) and t[-1] == 1.0
            assert np.all(t >= marginal) and np.all(np.diff(t) >= 0)
    # A low confidence makes the bound smaller than the marginal p-value: the
    # marginal one is kept.
    assert conditional_pvalue_table(10, 0.01)[0] == 1 / 11


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1, 0.3])
@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95])
def test_conditional_calibration_rows_is_the_first_size_that_can_flag(
    alpha, confidence
):
    need = conditional_calibration_rows(alpha, confidence)
    first = next(
        n for n in range(1, 5000) if conditional_pvalue_table(n, confidence)[0] <= alpha
    )
    assert need == first


def test_documented_calibration_rows_match_the_code():
    doc = LatentOutlierDetector.__doc__
    for confidence in (0.9, 0.95):
        line = next(
            r for r in doc.splitlines() if r.strip().startswith(f"``{confidence}``")
        )
        documented = [int(v) for v in line.split()[1:]]
        assert documented == [
            conditional_calibration_rows(a, confidence) for a in ALPHAS
        ]


def _exact_fpr(det, d):
    """The FPR of ``p <= t`` given the calibration set, for every level ``t``.

    Prior statistic on exact ``N(0, I_d)`` rows: the statistic is ``chi2(d)``.
    The detector is probed at each calibration score (and beyond them all):
    flagging ``p <= t`` flags the statistics above the largest probe it does
    not flag, so the FPR is ``chi2.sf`` of that probe. Returns the levels, their
    FPR, and the probes.
    """
    cal = np.sort(det.calibration_.scores_[0])[::-1]
    s = np.r_[2 * cal[0] + 10, cal]
    probes = np.zeros((len(s), d))
    probes[:, 0] = np.sqrt(s)
    p = det.pvalues(probes)
    levels = np.unique(p[p < 1])
    fpr = np.array([0.0 if p[0] > t else chi2.sf(s[p > t].max(), d) for t in levels])
    return levels, fpr, probes


def _conditional_draws(confidence, alphas, n_draws=300, n_cal=100, d=4):
    """Per calibration draw: the exact FPR of ``predict`` at each alpha, and
    whether ``FPR(t) > t`` for some level ``t`` of the p-values."""
    fpr = {a: [] for a in alphas}
    anywhere = []
    for i in range(n_draws):
        X = np.random.default_rng([28, i]).standard_normal((n_cal + 10, d))
        det = LatentOutlierDetector(
            _identity(),
            statistic="prior",
            calibration_size=n_cal,
            fpr_confidence=confidence,
            random_state=i,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # too few rows for alpha: tested apart
            det.fit(X)
        levels, level_fpr, probes = _exact_fpr(det, d)
        anywhere.append(bool(np.any(level_fpr > levels)))
        for a in alphas:
            det.set_params(alpha=a)
            det.offset_ = det.calibration_.offset(a)  # what fit sets for alpha
            flagged = det.predict(probes) == -1
            # Flagged: the statistics above the largest unflagged probe.
            s = probes[:, 0] ** 2
            fpr[a].append(0.0 if not flagged[0] else chi2.sf(s[~flagged].max(), d))
    return {a: np.array(v) for a, v in fpr.items()}, np.array(anywhere)


def test_conditional_fpr_exceeds_alpha_in_at_most_delta_of_calibration_draws():
    """The promise of ``fpr_confidence``: over calibration draws, the fitted
    detector's FPR exceeds alpha in at most ``delta`` of them, for every alpha
    at once, while marginal p-values exceed it about half the time."""
    confidence, alphas, n_draws = 0.9, (0.05, 0.1, 0.2), 300
    delta = 1 - confidence
    se = np.sqrt(delta * confidence / n_draws)
    fpr, anywhere = _conditional_draws(confidence, alphas, n_draws)
    for a in alphas:
        assert np.mean(fpr[a] > a) <= delta + 2 * se, a
    # Simultaneously over every threshold: exactly delta (the Simes bound is
    # exact), so not needlessly conservative either.
    assert abs(anywhere.mean() - delta) < 3 * se, anywhere.mean()
    # Not kept by flagging nothing: mean FPR m / (n_cal + 1) when ranks 1..m
    # are flagged (m = 5 at alpha = 0.1, 14 at 0.2 with 100 calibration rows).
    assert fpr[0.1].mean() > 0.4 * 0.1 and fpr[0.2].mean() > 0.5 * 0.2
    marginal, anywhere_marginal = _conditional_draws(None, alphas, n_draws)
    for a in alphas:
        assert np.mean(marginal[a] > a) > 0.3, a
        assert marginal[a].mean() <= a + 4 * marginal[a].std() / np.sqrt(n_draws)
        assert np.mean(fpr[a]) < np.mean(marginal[a])
    assert anywhere_marginal.mean() > 0.9


def test_conditional_fpr_over_draws_with_a_trained_statistic():
    """The same promise when the statistic is fitted on the training rows (knn
    on standardized latents) and the FPR is measured on fresh inliers."""
    confidence, alpha, n_draws, n_test = 0.9, 0.1, 150, 4000
    fpr, fpr_marginal, auc_equal = [], [], []
    for i in range(n_draws):
        rng = np.random.default_rng([29, i])
        X, X_test = _heavy(rng, 300), _heavy(rng, n_test)
        kw = dict(calibration_size=150, alpha=alpha, random_state=i)
        cond = LatentOutlierDetector(
            StandardScaler(), fpr_confidence=confidence, **kw
        ).fit(X)
        marg = LatentOutlierDetector(StandardScaler(), **kw).fit(X)
        fpr.append(np.mean(cond.predict(X_test) == -1))
        fpr_marginal.append(np.mean(marg.predict(X_test) == -1))
        auc_equal.append(
            np.array_equal(cond.score_samples(X_test), marg.score_samples(X_test))
        )
    fpr, fpr_marginal = np.array(fpr), np.array(fpr_marginal)
    # The test set's own sampling noise (sd 0.005) blurs "FPR > alpha": count a
    # draw as above alpha beyond one such sd.
    noise = np.sqrt(alpha * (1 - alpha) / n_test)
    delta, se = 1 - confidence, np.sqrt(0.09 / n_draws)
    assert np.mean(fpr > alpha + noise) <= delta + 2 * se
    assert np.mean(fpr_marginal > alpha + noise) > 0.25
    assert 0.4 * alpha < fpr.mean() < fpr_marginal.mean()
    assert all(auc_equal)


def test_fpr_confidence_changes_pvalues_and_threshold_not_scores():
    rng = np.random.default_rng(30)
    X = rng.standard_t(3, (600, 4))
    X_eval = np.vstack([rng.standard_t(3, (500, 4)), 4 + rng.standard_t(3, (50, 4))])
    y = np.r_[np.zeros(500), np.ones(50)]
    kw = dict(alpha=0.1, random_state=0)
    marg = LatentOutlierDetector(StandardScaler(), **kw).fit(X)
    cond = LatentOutlierDetector(StandardScaler(), fpr_confidence=0.9, **kw).fit(X)
    np.testing.assert_array_equal(
        cond.score_samples(X_eval), marg.score_samples(X_eval)
    )
    assert roc_auc_score(y, -cond.score_samples(X_eval)) == roc_auc_score(
        y, -marg.score_samples(X_eval)
    )
    p_m, p_c = marg.pvalues(X_eval), cond.pvalues(X_eval)
    n = cond.n_calibration_
    assert n == 120
    # The conditional p-value of a sample is the table's entry at its rank.
    rank = np.rint(p_m * (n + 1)).astype(int)
    np.testing.assert_array_equal(p_c, conditional_pvalue_table(n, 0.9)[rank - 1])
    assert np.all(p_c >= p_m) and np.any(p_c > p_m)
    for det, p in ((marg, p_m), (cond, p_c)):
        np.testing.assert_array_equal(det.predict(X_eval) == -1, p <= 0.1)
        np.testing.assert_array_equal(det.decision_function(X_eval) < 0, p <= 0.1)
    assert 0 < np.sum(p_c <= 0.1) < np.sum(p_m <= 0.1)


def test_marginal_pvalues_are_the_conformal_formula_bit_for_bit():
    rng = np.random.default_rng(31)
    X, X_new = rng.standard_normal((80, 3)), 1.3 * rng.standard_normal((50, 3))
    det = LatentOutlierDetector(  # alpha=0.2: 16 calibration rows can flag
        _identity(), statistic="prior", fpr_confidence=None, alpha=0.2, random_state=0
    ).fit(X)
    cal = det.calibration_.scores_[0]
    s = np.sum(X_new**2, axis=1)
    count = (cal[None, :] >= s[:, None]).sum(axis=1)
    np.testing.assert_array_equal(det.pvalues(X_new), (1.0 + count) / (len(cal) + 1.0))
    assert det.get_params()["fpr_confidence"] is None
    assert type(det.calibration_).__name__ == "ConformalCalibration"


def test_warns_before_training_when_calibration_is_too_small_for_the_pair():
    X = np.random.default_rng(32).standard_normal((200, 2))
    kw = dict(statistic="prior", alpha=0.05, fpr_confidence=0.9)
    assert conditional_calibration_rows(0.05, 0.9) == 90
    # The warning comes before the embedder is fitted.
    with pytest.warns(UserWarning, match="need at least 90 calibration rows"):
        with pytest.raises(AssertionError, match="fitted before"):
            LatentOutlierDetector(_MustNotFit(), calibration_size=89, **kw).fit(X)
    with pytest.warns(UserWarning, match="n_cal = 89 calibration rows"):
        small = LatentOutlierDetector(_identity(), calibration_size=89, **kw).fit(X)
    assert not np.any(small.predict(100 * X) == -1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enough = LatentOutlierDetector(_identity(), calibration_size=90, **kw).fit(X)
        # contamination sets the threshold: alpha is not used, nothing to warn.
        LatentOutlierDetector(
            _identity(), calibration_size=10, contamination=0.1, **kw
        ).fit(X)
    assert np.all(enough.predict(100 * X) == -1)


@pytest.mark.parametrize(
    "value", [True, False, 0, 1, 0.0, 1.0, -0.1, 1.5, "0.9", np.nan]
)
def test_fpr_confidence_must_be_none_or_a_float_in_the_open_unit_interval(value):
    det = LatentOutlierDetector(_MustNotFit(), fpr_confidence=value)
    with pytest.raises(ValueError, match="fpr_confidence. parameter .* must be"):
        det.fit(np.zeros((20, 2)))
    with pytest.raises(NotFittedError):
        det.predict(np.zeros((2, 2)))


@pytest.mark.parametrize("calibration", ["cross-conformal", "prior"])
def test_fpr_confidence_refuses_calibrations_the_theory_does_not_cover(calibration):
    det = LatentOutlierDetector(
        _MustNotFit(),
        statistic="mahalanobis",
        calibration=calibration,
        fpr_confidence=0.9,
    )
    with pytest.raises(ValueError, match="needs calibration='conformal'"):
        det.fit(np.random.default_rng(33).standard_normal((50, 2)))
    with pytest.raises(NotFittedError):
        det.pvalues(np.zeros((2, 2)))


def test_prior_pvalues_exact_under_the_prior():
    """With latents exactly N(0, I), chi2 p-values are uniform and FPR equals alpha."""
    rng = np.random.default_rng(1)
    det = LatentOutlierDetector(
        _identity(), statistic="prior", calibration="prior"
    ).fit(rng.standard_normal((50, 3)))
    X_test = rng.standard_normal((20000, 3))
    p = det.pvalues(X_test)
    assert kstest(p, "uniform").pvalue > 1e-3
    for alpha in ALPHAS:
        det.set_params(alpha=alpha).fit(X_test[:10])
        fpr = np.mean(det.predict(X_test) == -1)
        # Four binomial standard deviations at n = 20000.
        assert abs(fpr - alpha) < 4 * np.sqrt(alpha * (1 - alpha) / 20000)


def test_prior_pvalues_break_on_heavy_tails_conformal_ones_do_not():
    rng = np.random.default_rng(26)
    X, X_test = rng.standard_t(2, (2000, 2)), rng.standard_t(2, (20000, 2))
    fpr = {}
    for calibration in ("prior", "conformal"):
        det = LatentOutlierDetector(
            _identity(), statistic="prior", calibration=calibration, random_state=0
        ).fit(X)
        fpr[calibration] = np.mean(det.pvalues(X_test) <= 0.01)
    assert fpr["prior"] > 0.05  # about 8 alpha
    assert fpr["conformal"] < 0.01 + 0.01  # within a few sd of n_cal = 400


def test_uniform_prior_matches_gaussian_rule():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((1000, 4))
    kw = dict(statistic="prior", calibration="prior")
    gauss = LatentOutlierDetector(_identity(), **kw).fit(X)
    unif = LatentOutlierDetector(_UniformLatents(), **kw).fit(X)
    assert unif.prior_ == "uniform" and gauss.prior_ == "gaussian"
    inner = np.all(np.abs(X) < 4, axis=1)
    np.testing.assert_allclose(
        unif.score_samples(X)[inner], gauss.score_samples(X)[inner], rtol=1e-6
    )
    # Saturated latents (exactly 0 or 1) stay finite and maximally extreme.
    far = np.array([[40.0, 0, 0, 0], [-40.0, 0, 0, 0]])
    s = unif.score_samples(far)
    assert np.all(np.isfinite(s))
    assert s[0] == pytest.approx(s[1], rel=1e-6)
    assert s.max() <= unif.score_samples(X).min()


def test_other_targets_are_mapped_back_to_the_base():
    """A prior reached by a bijection (here Exp(1)) is scored on its Gaussian base."""
    rng = np.random.default_rng(12)
    X = rng.standard_normal((500, 3))
    kw = dict(statistic="knn", random_state=0)
    gauss = LatentOutlierDetector(_identity(), **kw).fit(X)
    expo = LatentOutlierDetector(_ExponentialLatents(), **kw).fit(X)
    assert expo.prior_ == "gaussian"
    np.testing.assert_allclose(
        expo.score_samples(X), gauss.score_samples(X), rtol=1e-6, atol=1e-9
    )


def test_mahalanobis_recalibrates_correlated_latents_under_prior_calibration():
    rng = np.random.default_rng(3)
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])  # unit variances, correlated
    L = np.linalg.cholesky(cov)
    X_train = rng.standard_normal((5000, 2)) @ L.T
    X_test = rng.standard_normal((20000, 2)) @ L.T
    kw = dict(calibration="prior")
    raw = LatentOutlierDetector(_identity(), statistic="prior", **kw).fit(X_train)
    maha = LatentOutlierDetector(_identity(), statistic="mahalanobis", **kw).fit(
        X_train
    )
    fpr_raw = np.mean(raw.pvalues(X_test) < 0.05)
    fpr_maha = np.mean(maha.pvalues(X_test) < 0.05)
    # Correlation fattens the tail of ||z||^2: P(1.9 x1 + 0.1 x2 > chi2_2(0.95))
    # is 0.078 for independent chi2(1) variables x1 and x2.
    assert fpr_raw > 0.07
    assert abs(fpr_maha - 0.05) < 0.01
    # Scoring follows the fitted state, not a parameter changed after fit.
    p_raw = raw.pvalues(X_test)
    np.testing.assert_array_equal(
        raw.set_params(statistic="knn", calibration="conformal").pvalues(X_test),
        p_raw,
    )


def test_trained_detector_is_calibrated_on_held_out_inliers(trained):
    det, _, _, X_test = trained
    assert det.n_calibration_ == 400
    p = det.pvalues(X_test)
    for alpha in ALPHAS:
        # Given its 400 calibration rows, the FPR is Beta-distributed around
        # floor(401 alpha) / 401 <= alpha, with this sd (0.011 at alpha = 0.05).
        sd = np.sqrt(alpha * (1 - alpha) / 402)
        assert alpha - 3 * sd <= np.mean(p <= alpha) <= alpha + 3 * sd, alpha


def test_trained_detector_flags_obvious_outliers(trained):
    det, A, _, X_test = trained
    rng = np.random.default_rng(4)
    # Far along the data's own latent directions: 8 sigma.
    z = rng.standard_normal((500, 2))
    far = 8 * (z / np.linalg.norm(z, axis=1, keepdims=True)) @ A
    assert np.mean(det.predict(far) == -1) > 0.95
    scores = np.r_[det.score_samples(X_test[:2000]), det.score_samples(far)]
    labels = np.r_[np.zeros(2000), np.ones(500)]
    assert roc_auc_score(labels, -scores) > 0.99


# ------------------------------------------------------------- semantics
@pytest.mark.parametrize("calibration", ["conformal", "cross-conformal"])
def test_score_samples_refines_the_pvalue_and_predict_is_p_le_alpha(calibration):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((97, 3))
    X_new = np.r_[rng.standard_normal((300, 3)), 5 + rng.standard_normal((50, 3))]
    for alpha in (0.02, 0.05, 0.1, 0.5):
        det = LatentOutlierDetector(
            _identity(), calibration=calibration, alpha=alpha, random_state=0
        )
        if calibration == "conformal" and alpha < 0.05:
            # 19 calibration rows: no p-value reaches 0.02, which fit says
            with pytest.warns(UserWarning, match="smallest conformal p-value"):
                det.fit(X)
        else:
            det.fit(X)
        n1 = det.n_calibration_ + 1
        p, s = det.pvalues(X_new), det.score_samples(X_new)
        assert np.all((p > 0) & (p <= 1))
        assert np.all(np.exp(s) >= p * (1 - 1e-12))
        assert np.all(np.exp(s) < p + 0.5 / n1 + 1e-12)
        np.testing.assert_array_equal(det.predict(X_new) == -1, p <= alpha)
        np.testing.assert_allclose(det.decision_function(X_new), s - det.offset_)
    # The far cluster shares the smallest p-value but is still ranked.
    far = s[300:]
    assert np.all(p[300:] == 1 / n1) and len(np.unique(far)) == 50
    S = np.array([m.score(X_new[300:]) for m in det.statistics_])
    stat = np.mean(S / det.calibration_.scales_[:, None], axis=0)
    assert np.all(np.diff(far[np.argsort(stat)]) < 0)


def test_prior_calibration_threshold_is_alpha():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((400, 3))
    det = LatentOutlierDetector(
        _identity(), statistic="prior", calibration="prior", alpha=0.1
    ).fit(X)
    assert det.offset_ == np.log(0.1) and det.n_calibration_ == 0
    p = det.pvalues(X)
    np.testing.assert_allclose(det.score_samples(X), np.log(p))
    np.testing.assert_array_equal(det.predict(X), np.where(p >= 0.1, 1, -1))
    np.testing.assert_array_equal(det.fit_predict(X), det.predict(X))


def test_exact_ties_count_as_at_least_as_extreme():
    """Integer-valued data tie often; a tie counts against the sample (>=)."""
    X = np.repeat(np.arange(5.0), [1, 2, 3, 4, 5])[:, None]  # 15 rows
    emb = FunctionTransformer().fit(X)
    det = LatentOutlierDetector(emb, prefit=True, statistic="prior", alpha=0.2)
    det.fit(X)
    assert det.n_calibration_ == 15
    # Values 0..4 have 15, 14, 12, 9 and 5 calibration rows at least as far out.
    np.testing.assert_allclose(
        det.pvalues(np.arange(5.0)[:, None]), np.array([16, 15, 13, 10, 6]) / 16
    )


def test_ties_within_float_rounding_count_as_ties():
    X = np.random.default_rng(6).standard_normal((50, 2))
    det = LatentOutlierDetector(
        _identity(),
        statistic="prior",
        calibration="conformal",
        alpha=0.2,
        random_state=0,
    ).fit(X)
    cal = det.calibration_.scores_[0]
    top = cal[-1]
    # A statistic a rounding error above the largest calibration score ties it.
    G = np.array([[np.sqrt(top * (1 + 1e-12)), 0.0]])
    assert det.pvalues(G)[0] == 2 / (det.n_calibration_ + 1)
    G = np.array([[np.sqrt(top * (1 + 100 * TIE_RTOL)), 0.0]])
    assert det.pvalues(G)[0] == 1 / (det.n_calibration_ + 1)


@pytest.mark.parametrize("contamination", [0.05, 0.1, 0.5])
def test_contamination_sets_training_quantile(contamination):
    rng = np.random.default_rng(6)
    X = rng.standard_normal((300, 3))
    det = LatentOutlierDetector(
        _identity(), contamination=contamination, alpha=0.5, random_state=0
    ).fit(X)
    scores = det.score_samples(X)
    assert det.offset_ == pytest.approx(np.percentile(scores, 100 * contamination))
    assert np.sum(det.predict(X) == -1) == round(contamination * 300)
    # alpha is not used when contamination is a number.
    det2 = LatentOutlierDetector(
        _identity(), contamination=contamination, alpha=0.01, random_state=0
    ).fit(X)
    assert det2.offset_ == det.offset_


def test_warns_when_nothing_can_be_flagged():
    X = np.random.default_rng(7).standard_normal((100, 2))
    with pytest.warns(UserWarning, match="1/21 > alpha = 0.01"):
        det = LatentOutlierDetector(
            _identity(), calibration="conformal", alpha=0.01
        ).fit(X)
    assert not np.any(det.predict(100 * X) == -1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LatentOutlierDetector(_identity(), calibration="conformal", alpha=0.05).fit(X)
        LatentOutlierDetector(  # 1/101 <= 0.01
            _identity(), calibration="cross-conformal", alpha=0.01
        ).fit(X)


def test_prefit_uses_embedder_as_is(trained):
    det, _, X_train, X_test = trained
    emb = det.embedder_
    state = {k: v.clone() for k, v in emb.encoder_.state_dict().items()}
    pre = LatentOutlierDetector(
        emb, prefit=True, statistic="prior", calibration="prior"
    ).fit(X_train[:5])
    assert pre.embedder_ is not emb  # a copy ...
    G = det.latents(X_test)
    np.testing.assert_allclose(pre.pvalues(X_test), chi2.sf(np.sum(G**2, axis=1), 2))
    for k, v in emb.encoder_.state_dict().items():  # ... and the original untouched
        assert torch.equal(v, state[k])
    assert pre.embedder_.n_iter_ == emb.n_iter_
    # Conformal with a prefit embedder: the statistic still trains on its part.
    knn = LatentOutlierDetector(
        emb, prefit=True, calibration="conformal", random_state=0
    ).fit(X_train[:100])
    assert knn.n_calibration_ == 20
    cc = LatentOutlierDetector(
        emb, prefit=True, calibration="cross-conformal", random_state=0
    ).fit(X_train[:100])
    assert all(e is cc.embedder_ for e in cc.embedders_)  # one copy, shared


def test_prefit_errors():
    X = np.random.default_rng(7).standard_normal((20, 3))
    kw = dict(prefit=True, alpha=0.5)  # 4 calibration rows: alpha=0.05 flags nothing
    with pytest.raises(NotFittedError):
        LatentOutlierDetector(NoiseInjectedInfoMax(), **kw).fit(X)
    with pytest.raises(ValueError, match="prefit=True needs a fitted embedder"):
        LatentOutlierDetector(**kw).fit(X)
    emb = NoiseInjectedInfoMax(hidden_layer_sizes=(4,), max_epochs=1, device="cpu")
    emb.fit(X)
    with pytest.raises(ValueError, match="features"):
        LatentOutlierDetector(emb, **kw).fit(X[:, :2])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": "0.05"}, "alpha"),
        ({"contamination": 0.0}, "contamination"),
        ({"contamination": 0.6}, "contamination"),
        ({"contamination": "0.1"}, "contamination"),
        ({"prefit": "yes"}, "prefit"),
        ({"embedder": "mlp"}, "embedder"),
        ({"embedder": object()}, "embedder"),
        ({"statistic": "lof"}, "statistic"),
        ({"statistic": None}, "statistic"),
        ({"calibration": "jackknife"}, "calibration"),
        ({"calibration_size": 0.0}, "calibration_size"),
        ({"calibration_size": 1.0}, "calibration_size"),
        ({"calibration_size": 0}, "calibration_size"),
        ({"calibration_size": -3}, "calibration_size"),
        ({"calibration_size": "20%"}, "calibration_size"),
        ({"n_folds": 1}, "n_folds"),
        ({"n_folds": 2.5}, "n_folds"),
        ({"n_neighbors": 0}, "n_neighbors"),
        ({"n_neighbors": 1.5}, "n_neighbors"),
        ({"n_neighbors": True}, "'n_neighbors' parameter .* Got True"),
        ({"calibration_size": True}, "'calibration_size' parameter .* Got True"),
        ({"random_state": "0"}, "random_state"),
        ({"calibration": "prior"}, "chi-square law"),
        ({"calibration_size": 19}, "leaves 1 training and 19 calibration"),
        ({"n_neighbors": 17}, "needs at least 17 training rows"),
        ({"calibration": "cross-conformal", "n_folds": 21}, "n_folds=21"),
    ],
)
def test_bad_parameters_raise_before_training(params, match):
    params = {"embedder": _MustNotFit(), **params}
    X = np.random.default_rng(8).standard_normal((20, 3))
    with pytest.raises(ValueError, match=match):
        LatentOutlierDetector(**params).fit(X)


@pytest.mark.parametrize(
    "X",
    [
        np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 0.5]]),
        np.array([[0.0, 1.0], [np.inf, 2.0], [1.0, 0.5]]),
        np.ones((1, 3)),
        np.ones(5),
        np.ones((4, 0)),
    ],
)
def test_bad_input_raises_before_training(X):
    with pytest.raises(ValueError):
        LatentOutlierDetector(_MustNotFit()).fit(X)


@pytest.mark.parametrize("calibration", ["conformal", "cross-conformal"])
def test_random_state_reproducible_without_global_state(calibration):
    X = np.random.default_rng(10).standard_normal((200, 5))
    emb = NoiseInjectedInfoMax(hidden_layer_sizes=(8,), max_epochs=2, device="cpu")
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state)
    torch_state = torch.random.get_rng_state().clone()
    kw = dict(calibration=calibration, n_folds=2)
    a = LatentOutlierDetector(emb, random_state=3, **kw).fit(X)
    b = LatentOutlierDetector(emb, random_state=3, **kw).fit(X)
    c = LatentOutlierDetector(emb, random_state=4, **kw).fit(X)
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    for sa, sb in zip(a.calibration_.scores_, b.calibration_.scores_):
        np.testing.assert_array_equal(sa, sb)
    assert not np.array_equal(a.score_samples(X), c.score_samples(X))
    assert emb.random_state is None  # the user's embedder is not mutated
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_an_interrupt_stops_the_detector_fit_at_once():
    X = np.random.default_rng(12).standard_normal((120, 5))
    epochs = []

    def interrupt(epoch, logs):
        epochs.append(epoch)
        if epoch == 2:
            raise KeyboardInterrupt

    emb = NoiseInjectedInfoMax(
        hidden_layer_sizes=(8,), max_epochs=5, device="cpu", callbacks=[interrupt]
    )
    det = LatentOutlierDetector(emb, calibration="cross-conformal", n_folds=3)
    with pytest.raises(KeyboardInterrupt):
        det.fit(X)
    assert epochs == [1, 2]  # no later epoch, no other fold
    assert not hasattr(det, "embedders_")


def test_an_embedder_with_complex_latents_is_refused():
    X = np.random.default_rng(13).standard_normal((100, 4))
    complex_latents = FunctionTransformer(lambda A: A[:, :2] + 1j * A[:, 2:])
    det = LatentOutlierDetector(complex_latents, statistic="mahalanobis")
    with pytest.raises(ValueError, match="complex"):
        det.fit(X)


@pytest.mark.parametrize("statistic", ["mahalanobis", "knn", "prior"])
def test_an_embedder_with_huge_latents_is_refused_naming_their_scale(statistic):
    X = np.random.default_rng(14).standard_normal((100, 4))
    huge = FunctionTransformer(lambda A: A * 1e200)
    with pytest.raises(ValueError, match="latents as large as .*e\\+200"):
        LatentOutlierDetector(huge, statistic=statistic).fit(X)


def test_folds_follow_random_state_without_an_embedder_seed():
    X = np.random.default_rng(11).standard_normal((40, 2))
    rows = [
        _row_set(
            LatentOutlierDetector(_Spy(), alpha=0.2, random_state=r)
            .fit(X)
            .embedder_.fit_rows_
        )
        for r in (0, 0, 1)
    ]
    assert rows[0] == rows[1] != rows[2]


def test_uniform_embedder_end_to_end():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((300, 6))
    emb = NoiseInjectedInfoMax(
        prior="uniform", hidden_layer_sizes=(16,), max_epochs=3, device="cpu"
    )
    det = LatentOutlierDetector(emb, random_state=0).fit(X)
    assert det.prior_ == "uniform" and det.n_components_ == 2
    p = det.pvalues(np.r_[X, 1e6 * X[:5]])
    assert np.all((p > 0) & (p <= 1))


def test_outlier_embedder_rule():
    small = outlier_embedder(178, 30)
    assert small.n_components == 30 and small.augmentation == "gaussian"
    assert small.noise_level == 0.1 and small.critic == "gaussian"
    assert small.max_epochs == 200  # one batch per epoch: 200 steps
    big = outlier_embedder(4800, 784, standardize="global")
    assert big.n_components == 64 and big.augmentation == "neighbors"
    assert big.max_epochs == 20 and big.standardize == "global"
    assert outlier_embedder(2000, 10).max_epochs == 50  # 4 batches per epoch
    with pytest.raises(ValueError, match="positive"):
        outlier_embedder(0, 3)


def test_default_embedder_follows_the_rule():
    rng = np.random.default_rng(13)
    X = rng.standard_normal((40, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the intended CapacityWarning is muted
        det = LatentOutlierDetector(
            random_state=0, alpha=0.2, calibration="conformal"
        ).fit(X)
    emb = det.embedder_
    assert isinstance(emb, NoiseInjectedInfoMax)
    assert emb.n_components == 3 and emb.noise_level == 0.1
    assert emb.n_iter_ == 200 and det.n_calibration_ == 8
    assert np.all(np.isfinite(det.score_samples(X)))


# -------------------------------------------------------- multiple testing
def _bh_reference(p, alpha, c=1.0):
    """The step-up rule as written: reject H_(1..k), k the largest i with
    p_(i) <= i alpha / (m c)."""
    m = len(p)
    k = 0
    for i, pi in enumerate(sorted(p), start=1):
        if pi <= i * alpha / (m * c):
            k = i
    cut = sorted(p)[k - 1] if k else -1.0
    return np.array([pi <= cut for pi in p])


@settings(max_examples=50, deadline=None)
@given(
    p=st.lists(st.floats(0, 1), min_size=1, max_size=40),
    alpha=st.floats(0.001, 0.999),
)
def test_benjamini_hochberg_matches_reference(p, alpha):
    np.testing.assert_array_equal(benjamini_hochberg(p, alpha), _bh_reference(p, alpha))
    c = np.sum(1.0 / np.arange(1, len(p) + 1))
    np.testing.assert_array_equal(
        benjamini_hochberg(p, alpha, dependence="arbitrary"),
        _bh_reference(p, alpha, c),
    )


def test_benjamini_hochberg_agrees_with_scipy():
    if not hasattr(stats, "false_discovery_control"):
        pytest.skip("scipy.stats.false_discovery_control needs scipy >= 1.11")
    rng = np.random.default_rng(14)
    p = np.r_[rng.uniform(size=900), rng.beta(0.05, 5, size=100)]
    adj = stats.false_discovery_control(p, method="bh")
    np.testing.assert_array_equal(benjamini_hochberg(p, 0.1), adj <= 0.1)
    adj = stats.false_discovery_control(p, method="by")
    np.testing.assert_array_equal(
        benjamini_hochberg(p, 0.1, dependence="arbitrary"), adj <= 0.1
    )
    assert benjamini_hochberg([], 0.1).shape == (0,)


def test_benjamini_hochberg_on_conformal_pvalues_controls_fdr():
    """Bates et al. (2023): split-conformal p-values are PRDS, so BH holds."""
    fdp = []
    for i in range(100):
        rng = np.random.default_rng([15, i])
        X = rng.standard_normal((1000, 2))
        X_test = np.r_[rng.standard_normal((180, 2)), 4 + rng.standard_normal((20, 2))]
        det = LatentOutlierDetector(
            _identity(), calibration="conformal", random_state=i
        ).fit(X)
        reject = benjamini_hochberg(det.pvalues(X_test), alpha=0.2)
        fdp.append(reject[:180].sum() / max(reject.sum(), 1))
        assert reject[180:].mean() > 0.5
    assert np.mean(fdp) <= 0.2 * 180 / 200 + 3 * np.std(fdp) / 10


@pytest.mark.parametrize(
    "args, match",
    [
        (([0.1, 1.2],), r"\[0, 1\]"),
        (([0.1, np.nan],), r"\[0, 1\]"),
        (([[0.1, 0.2]],), "one-dimensional"),
        (([0.1], 0.0), "alpha"),
        (([0.1], 1.0), "alpha"),
        (([0.1], True), "alpha"),
    ],
)
def test_benjamini_hochberg_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        benjamini_hochberg(*args)
    with pytest.raises(ValueError, match="dependence"):
        benjamini_hochberg([0.1], 0.1, dependence="positive")
