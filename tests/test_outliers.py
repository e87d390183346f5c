"""LatentOutlierDetector: calibration, detection, sklearn semantics, errors."""

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
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdim_dm import LatentOutlierDetector, NoiseInjectedInfoMax
from skdim_dm._outliers import UNIFORM_CLIP, chi2_logsf, probit

ALPHAS = (0.01, 0.05, 0.10)
EXPON = stats.expon()


@parametrize_with_checks(
    [
        LatentOutlierDetector(
            embedder=NoiseInjectedInfoMax(
                hidden_layer_sizes=(16,), max_epochs=3, device="cpu"
            )
        )
    ],
    expected_failed_checks=lambda est: {},
)
def test_sklearn_compatible_estimator(estimator, check):
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


class _MustNotFit(TransformerMixin, BaseEstimator):
    """Fails loudly if the detector trains before validating its inputs."""

    def fit(self, X, y=None):
        raise AssertionError("the embedder was fitted before input validation")

    def transform(self, X):
        raise AssertionError("the embedder was used before input validation")


def _identity():
    # Latents = inputs: isolates the detector's statistics from training.
    return FunctionTransformer()


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


# ----------------------------------------------------------- calibration
def test_pvalues_exact_under_the_prior():
    """With latents exactly N(0, I), p-values are uniform and FPR equals alpha."""
    rng = np.random.default_rng(1)
    det = LatentOutlierDetector(_identity()).fit(rng.standard_normal((50, 3)))
    X_test = rng.standard_normal((20000, 3))
    p = det.pvalues(X_test)
    assert kstest(p, "uniform").pvalue > 1e-3
    for alpha in ALPHAS:
        det.set_params(alpha=alpha).fit(X_test[:10])
        fpr = np.mean(det.predict(X_test) == -1)
        # Four binomial standard deviations at n = 20000.
        assert abs(fpr - alpha) < 4 * np.sqrt(alpha * (1 - alpha) / 20000)


def test_uniform_prior_matches_gaussian_rule():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((1000, 4))
    gauss = LatentOutlierDetector(_identity()).fit(X)
    unif = LatentOutlierDetector(_UniformLatents()).fit(X)
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
    gauss = LatentOutlierDetector(_identity()).fit(X)
    expo = LatentOutlierDetector(_ExponentialLatents()).fit(X)
    assert expo.prior_ == "gaussian"
    np.testing.assert_allclose(
        expo.score_samples(X), gauss.score_samples(X), rtol=1e-6, atol=1e-9
    )


def test_whiten_recalibrates_correlated_latents():
    rng = np.random.default_rng(3)
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])  # unit variances, correlated
    L = np.linalg.cholesky(cov)
    X_train = rng.standard_normal((5000, 2)) @ L.T
    X_test = rng.standard_normal((20000, 2)) @ L.T
    raw = LatentOutlierDetector(_identity()).fit(X_train)
    white = LatentOutlierDetector(_identity(), whiten=True).fit(X_train)
    assert not hasattr(raw, "whitening_")
    np.testing.assert_allclose(
        white.whitening_ @ np.cov(X_train.T) @ white.whitening_.T,
        np.eye(2),
        atol=1e-10,
    )
    fpr_raw = np.mean(raw.pvalues(X_test) < 0.05)
    fpr_white = np.mean(white.pvalues(X_test) < 0.05)
    # Correlation fattens the tail of ||z||^2: P(1.9 x1 + 0.1 x2 > chi2_2(0.95))
    # is 0.078 for independent chi2(1) variables x1 and x2.
    assert fpr_raw > 0.07
    assert abs(fpr_white - 0.05) < 0.01
    G = white.latents(X_test)
    np.testing.assert_allclose(np.cov(G.T), np.eye(2), atol=0.05)
    # Scoring follows the fitted state, not a parameter changed after fit.
    p_raw = raw.pvalues(X_test)
    np.testing.assert_array_equal(raw.set_params(whiten=True).pvalues(X_test), p_raw)


def test_trained_detector_is_calibrated_on_held_out_inliers(trained):
    det, _, _, X_test = trained
    p = det.pvalues(X_test)
    for alpha in ALPHAS:
        assert abs(np.mean(p < alpha) - alpha) <= 0.02, alpha


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
def test_auto_threshold_is_alpha():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((400, 3))
    det = LatentOutlierDetector(_identity(), alpha=0.1).fit(X)
    assert det.offset_ == np.log(0.1)
    p = det.pvalues(X)
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(det.score_samples(X), np.log(p))
    np.testing.assert_allclose(det.decision_function(X), np.log(p / 0.1))
    np.testing.assert_array_equal(det.predict(X), np.where(p >= 0.1, 1, -1))
    np.testing.assert_array_equal(det.fit_predict(X), det.predict(X))


@pytest.mark.parametrize("contamination", [0.05, 0.1, 0.5])
def test_contamination_sets_training_quantile(contamination):
    rng = np.random.default_rng(6)
    X = rng.standard_normal((300, 3))
    det = LatentOutlierDetector(
        _identity(), contamination=contamination, alpha=0.5
    ).fit(X)
    scores = det.score_samples(X)
    assert det.offset_ == pytest.approx(np.percentile(scores, 100 * contamination))
    assert np.sum(det.predict(X) == -1) == round(contamination * 300)
    # alpha is not used when contamination is a number.
    det2 = LatentOutlierDetector(
        _identity(), contamination=contamination, alpha=0.01
    ).fit(X)
    assert det2.offset_ == det.offset_


def test_prefit_uses_embedder_as_is(trained):
    det, _, X_train, X_test = trained
    emb = det.embedder_
    state = {k: v.clone() for k, v in emb.encoder_.state_dict().items()}
    pre = LatentOutlierDetector(emb, prefit=True).fit(X_train[:5])
    assert pre.embedder_ is not emb  # a copy ...
    np.testing.assert_array_equal(pre.pvalues(X_test), det.pvalues(X_test))
    for k, v in emb.encoder_.state_dict().items():  # ... and the original untouched
        assert torch.equal(v, state[k])
    assert pre.embedder_.n_iter_ == emb.n_iter_


def test_prefit_errors():
    X = np.random.default_rng(7).standard_normal((20, 3))
    with pytest.raises(NotFittedError):
        LatentOutlierDetector(NoiseInjectedInfoMax(), prefit=True).fit(X)
    with pytest.raises(ValueError, match="prefit=True needs a fitted embedder"):
        LatentOutlierDetector(prefit=True).fit(X)
    emb = NoiseInjectedInfoMax(hidden_layer_sizes=(4,), max_epochs=1, device="cpu")
    emb.fit(X)
    with pytest.raises(ValueError, match="features"):
        LatentOutlierDetector(emb, prefit=True).fit(X[:, :2])


@pytest.mark.parametrize(
    "params",
    [
        {"alpha": 0.0},
        {"alpha": 1.0},
        {"alpha": "0.05"},
        {"contamination": 0.0},
        {"contamination": 0.6},
        {"contamination": "0.1"},
        {"prefit": "yes"},
        {"embedder": "mlp"},
        {"embedder": object()},
    ],
)
def test_bad_parameters_raise_before_training(params):
    params = {"embedder": _MustNotFit(), **params}
    X = np.random.default_rng(8).standard_normal((20, 3))
    with pytest.raises(ValueError):
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


def test_whiten_needs_more_samples_than_components():
    X = np.random.default_rng(9).standard_normal((3, 3))
    with pytest.raises(ValueError, match="more than 3 samples"):
        LatentOutlierDetector(_identity(), whiten=True).fit(X)


def test_random_state_reproducible_without_global_state():
    X = np.random.default_rng(10).standard_normal((200, 5))
    emb = NoiseInjectedInfoMax(hidden_layer_sizes=(8,), max_epochs=2, device="cpu")
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state)
    torch_state = torch.random.get_rng_state().clone()
    a = LatentOutlierDetector(emb, random_state=3).fit(X).score_samples(X)
    b = LatentOutlierDetector(emb, random_state=3).fit(X).score_samples(X)
    np.testing.assert_array_equal(a, b)
    assert emb.random_state is None  # the user's embedder is not mutated
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_uniform_embedder_end_to_end():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((300, 6))
    emb = NoiseInjectedInfoMax(
        prior="uniform", hidden_layer_sizes=(16,), max_epochs=3, device="cpu"
    )
    det = LatentOutlierDetector(emb, random_state=0).fit(X)
    assert det.prior_ == "uniform" and det.n_components_ == 2
    p = det.pvalues(np.r_[X, 1e6 * X[:5]])
    assert np.all((p >= 0) & (p <= 1))
