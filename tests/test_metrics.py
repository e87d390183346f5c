"""Distribution-matching metrics: reference values, calibration, power, properties."""

import json
import pickle
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from skdim_dm import metrics as M
from skdim_dm._metrics import (
    _cov_max_error,
    _joint_directions,
    _subsample_indices,
    _wishart_cov_errors,
)
from skdim_dm.metrics import (
    DMReport,
    TestResult,
    component_ks_test,
    covariance_error,
    dm_report,
    fraction_inside,
    henze_zirkler,
    joint_match,
    knn_kl_divergence,
    marginal_ks,
    mean_error,
    norm_ks_test,
    normality_bootstrap,
    prior_match_score,
    sliced_wasserstein,
)

REFERENCE = json.loads(
    (Path(__file__).parent / "data" / "henze_zirkler_reference.json").read_text()
)
PROPERTY = settings(max_examples=15, deadline=None, derandomize=True)


def _normal(seed, n, d):
    return np.random.default_rng(seed).standard_normal((n, d))


def _rotation(seed, d):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


# ------------------------------------------------------------ reference values
@pytest.mark.parametrize("case", REFERENCE["cases"], ids=lambda c: c["name"])
def test_henze_zirkler_matches_reference(case):
    X = np.array(case["X"])
    expected = [case["statistic"], case["pvalue"]]
    for block_size in (2048, 7):
        res = henze_zirkler(X, block_size=block_size)
        np.testing.assert_allclose([res.statistic, res.pvalue], expected, rtol=1e-6)
    # The vectorized bootstrap path: one "subsample" holding every row.
    boot = normality_bootstrap(
        X, n_subsamples=1, subsample_size=len(X), random_state=0, return_pvalues=True
    )
    np.testing.assert_allclose(boot["henze_zirkler"], [case["pvalue"]], rtol=1e-6)


def test_reference_file_covers_normal_and_non_normal_cases():
    pvalues = [c["pvalue"] for c in REFERENCE["cases"]]
    assert min(pvalues) < 1e-6 < 0.1 < max(pvalues)
    assert {c["source"] for c in REFERENCE["cases"]} == {"pingouin", "naive"}


def test_henze_zirkler_is_chunked():
    Z = _normal(0, 4000, 3)
    whole = henze_zirkler(Z, block_size=4000)
    tracemalloc.start()
    try:
        chunked = henze_zirkler(Z, block_size=256)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(chunked, whole, rtol=1e-10)
    assert peak < 0.1 * 4000**2 * 8  # an n x n float64 matrix would be 128 MB


def test_component_ks_is_fisher_combination():
    Z = _normal(1, 300, 4) * [1, 1.1, 0.9, 1]
    per = [stats.kstest(Z[:, j], "norm").pvalue for j in range(4)]
    expected = stats.combine_pvalues(per, method="fisher")
    res = component_ks_test(Z)
    assert isinstance(res, TestResult)
    np.testing.assert_allclose([res.statistic, res.pvalue], list(expected), rtol=1e-9)


def test_simple_errors_by_hand():
    Z = np.array([[1.0, 1.0], [-1.0, -1.0]])
    assert mean_error(Z) == 0.0
    assert covariance_error(Z) == pytest.approx(np.sqrt(10.0))
    U = np.array([[0.5, 1.0], [0.5, 0.0]])  # mean (0.5, 0.5): no mean error
    assert mean_error(U, "uniform") == 0.0
    assert mean_error(U + 0.1, "uniform") == pytest.approx(np.hypot(0.1, 0.1) * 12**0.5)
    assert (
        fraction_inside(np.array([[0.2, 0.9], [0.5, 1.2], [-0.1, 0.3], [0, 1]])) == 0.5
    )


# ---------------------------------------------------------------- calibration
def test_full_sample_tests_are_calibrated():
    """Over 200 seeds of exact prior draws, each p-value is close to U(0, 1)."""
    p = {"hz": [], "norm_ks": [], "ks_gauss": [], "ks_unif": []}
    for seed in range(200):
        rng = np.random.default_rng(seed)
        Z = rng.standard_normal((80, 3))
        p["hz"].append(henze_zirkler(Z).pvalue)
        p["norm_ks"].append(norm_ks_test(Z).pvalue)
        p["ks_gauss"].append(component_ks_test(Z).pvalue)
        p["ks_unif"].append(component_ks_test(rng.random((80, 3)), "uniform").pvalue)
    for name, values in p.items():
        assert stats.kstest(values, "uniform").pvalue > 1e-3, name


@pytest.mark.parametrize("d", [1, 2, 4])
def test_bootstrap_pvalues_are_calibrated(d):
    # 200 subsamples of 64 from 20,000 exact N(0, I) draws hardly overlap: each
    # subsample is a fresh N(0, I) sample, so each test's p-values are ~U(0, 1).
    Z = _normal(d, 20000, d)
    per = normality_bootstrap(Z, n_subsamples=200, random_state=d, return_pvalues=True)
    for name, values in per.items():
        assert values.shape == (200,)
        assert stats.kstest(values, "uniform").pvalue > 1e-3, name


def test_bootstrap_means_near_half():
    res = normality_bootstrap(_normal(5, 5000, 2), random_state=0)
    assert set(res) == {"henze_zirkler", "shapiro_wilk", "dagostino_pearson"}
    for name, value in res.items():
        assert abs(value - 0.5) < 0.05, name


def test_bootstrap_is_fast_on_10000_points():
    Z = _normal(0, 10000, 2)
    start = time.perf_counter()
    normality_bootstrap(Z, n_subsamples=1024, subsample_size=64, random_state=0)
    assert time.perf_counter() - start < 5.0


# ---------------------------------------------------------------------- power
def _mixture(rng, n, d):
    Z = rng.standard_normal((n, d))
    Z[: n // 2, 0] += 2.5
    Z[n // 2 :, 0] -= 2.5
    return Z


@pytest.mark.parametrize(
    "make",
    [_mixture, lambda rng, n, d: rng.standard_t(3, size=(n, d))],
    ids=["mixture", "student_t3"],
)
def test_non_normal_latents_are_rejected(make):
    Z = make(np.random.default_rng(0), 1000, 2)
    assert henze_zirkler(Z).pvalue < 1e-6
    boot = normality_bootstrap(Z, random_state=0)
    assert boot["henze_zirkler"] < 0.1
    assert max(boot.values()) < 0.3  # well below the ~0.5 of normal data
    assert norm_ks_test(Z).pvalue < 1e-3
    assert knn_kl_divergence(Z) > 0.3


def test_simple_checks_see_wrong_mean_and_scale_that_composite_tests_miss():
    Z = _normal(3, 1000, 2)
    W = 1.3 * Z + 0.4  # still Gaussian, but not N(0, I)
    # Composite tests are affine-invariant: identical results, nothing to see.
    np.testing.assert_allclose(henze_zirkler(W), henze_zirkler(Z), rtol=1e-8)
    bz = normality_bootstrap(Z, random_state=0)
    bw = normality_bootstrap(W, random_state=0)
    for name in bz:
        assert bw[name] == pytest.approx(bz[name], rel=1e-6)
    assert bz["henze_zirkler"] > 0.3
    # Simple checks reject it.
    assert norm_ks_test(Z).pvalue > 1e-3
    assert norm_ks_test(W).pvalue < 1e-6
    assert component_ks_test(W).pvalue < 1e-6
    assert mean_error(W) > 0.4 > 0.1 > mean_error(Z)
    assert covariance_error(W) > 0.7 > 0.2 > covariance_error(Z)
    assert knn_kl_divergence(W) > 0.1 > knn_kl_divergence(Z)
    assert sliced_wasserstein(W, random_state=0) > 3 * sliced_wasserstein(
        Z, random_state=0
    )


def test_sliced_wasserstein_has_the_right_scale():
    # Against a point mass at c, every projected W_2^2 is E[(u.(p - c))^2]: 1 for
    # N(0, I) around c = 0 and 1/12 for U([0, 1]^2) around its centre, whatever
    # the direction u. With 4000 prior draws the estimate's sd is about 1%; the
    # uniform case also tells the distance from its square.
    zeros = np.zeros((4000, 2))
    assert sliced_wasserstein(zeros, random_state=0) == pytest.approx(1.0, rel=0.1)
    centre = np.full((4000, 2), 0.5)
    assert sliced_wasserstein(centre, "uniform", random_state=0) == pytest.approx(
        np.sqrt(1 / 12), rel=0.1
    )


def test_uniform_checks_reject_non_uniform_latents():
    rng = np.random.default_rng(4)
    U = rng.random((1000, 2))
    B = rng.beta(2, 2, size=(1000, 2))  # inside the cube, wrong shape
    assert component_ks_test(U, "uniform").pvalue > 1e-3
    assert component_ks_test(B, "uniform").pvalue < 1e-6
    assert knn_kl_divergence(B, "uniform") > knn_kl_divergence(U, "uniform") + 0.1
    assert fraction_inside(U) == 1.0
    assert fraction_inside(U + 0.1) < 0.9
    assert knn_kl_divergence(U + 0.1, "uniform") == np.inf
    assert sliced_wasserstein(B, "uniform", random_state=0) > sliced_wasserstein(
        U, "uniform", random_state=0
    )


def test_singular_sample_is_rejected():
    Z = _normal(0, 200, 2)
    Z[:, 1] = 2 * Z[:, 0]
    res = henze_zirkler(Z)
    assert res.statistic == 4 * 200
    assert res.pvalue < 1e-10
    assert normality_bootstrap(Z, n_subsamples=64, random_state=0)[
        "henze_zirkler"
    ] == pytest.approx(0.0, abs=1e-10)


# ----------------------------------------------------------------- properties
@PROPERTY
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(25, 150),
    d=st.integers(1, 4),
)
def test_composite_tests_invariant_to_permutation_and_rotation(seed, n, d):
    Z = _normal(seed, n, d)
    rng = np.random.default_rng(seed + 1)
    permuted = Z[rng.permutation(n)]
    rotated = Z @ _rotation(seed + 2, d)
    base = henze_zirkler(Z)
    for other in (permuted, rotated):
        np.testing.assert_allclose(henze_zirkler(other), base, rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(norm_ks_test(other), norm_ks_test(Z), rtol=1e-7)
        assert knn_kl_divergence(other) == pytest.approx(
            knn_kl_divergence(Z), rel=1e-7, abs=1e-9
        )
    # With the same subsample positions, rotation leaves every HZ p-value unchanged.
    kw = {"n_subsamples": 256, "subsample_size": 20, "return_pvalues": True}
    hz = normality_bootstrap(Z, random_state=seed, **kw)["henze_zirkler"]
    hz_rot = normality_bootstrap(rotated, random_state=seed, **kw)["henze_zirkler"]
    np.testing.assert_allclose(hz_rot, hz, rtol=1e-6, atol=1e-12)


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 3))
def test_bootstrap_means_invariant_in_distribution(seed, d):
    # Permuting rows or rotating changes which points and projections are drawn,
    # so the means move only by Monte Carlo error (sd about 0.013 here).
    Z = _normal(seed, 300, d)
    rng = np.random.default_rng(seed + 1)
    kw = {"n_subsamples": 512, "random_state": seed}
    base = normality_bootstrap(Z, **kw)
    permuted = normality_bootstrap(Z[rng.permutation(300)], **kw)
    rotated = normality_bootstrap(Z @ _rotation(seed + 2, d), **kw)
    for name in base:
        assert abs(permuted[name] - base[name]) < 0.08, name
        assert abs(rotated[name] - base[name]) < 0.08, name


@PROPERTY
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(1, 3),
    prior=st.sampled_from(["gaussian", "uniform"]),
)
def test_knn_kl_near_zero_on_prior_draws(seed, d, prior):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((2000, d)) if prior == "gaussian" else rng.random((2000, d))
    assert abs(knn_kl_divergence(Z, prior)) < 0.12
    assert prior_match_score(Z, prior) == -knn_kl_divergence(Z, prior)


@PROPERTY
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(1, 3),
    shift=st.floats(0.3, 3.0),
)
def test_knn_kl_grows_with_shift(seed, d, shift):
    Z = _normal(seed, 1000, d)
    direction = _rotation(seed, d)[0]
    kl = [knn_kl_divergence(Z + s * direction) for s in (0.0, shift, 2 * shift)]
    assert kl[0] < kl[1] < kl[2]
    # The true KL of a shift is |s|^2 / 2; the entropy term does not move.
    assert kl[1] - kl[0] == pytest.approx(shift**2 / 2, abs=0.15 * shift)


# ---------------------------------------------------------------------- report
def test_dm_report_gaussian():
    Z = _normal(0, 600, 2)
    report = dm_report(Z, random_state=0)
    assert isinstance(report, DMReport) and isinstance(report, dict)
    assert report["n_samples"] == 600 and report["n_components"] == 2
    boot = normality_bootstrap(Z, random_state=0)
    assert report["hz_bootstrap_pvalue"] == boot["henze_zirkler"]
    assert report["shapiro_bootstrap_pvalue"] == boot["shapiro_wilk"]
    assert report["hz_pvalue"] == henze_zirkler(Z).pvalue
    assert report["norm_ks_pvalue"] == norm_ks_test(Z).pvalue
    assert report["knn_kl"] == knn_kl_divergence(Z)
    assert report["mean_error"] == mean_error(Z)
    joint = joint_match(Z, random_state=0)
    for key in ("sliced_ratio", "sliced_max_ratio", "radial_ratio", "cov_ratio"):
        assert report[key] == getattr(joint, key)
        assert key in str(report)
    assert report["sliced_ratio_q95"] == joint.sliced_ratio_q95
    assert "fraction_inside" not in report
    assert all(np.isfinite(v) for v in report.values())
    text = str(report)
    assert repr(report) == text
    assert text.startswith("Distribution match to N(0, I) (bootstrap 1024 x 64)")
    for key in report:
        assert key in text
    assert dm_report(Z, random_state=0) == report
    again = pickle.loads(pickle.dumps(report))
    assert again == report and str(again) == text


def test_dm_report_uniform():
    U = np.random.default_rng(0).random((500, 3))
    report = dm_report(U, prior="uniform")
    assert report["fraction_inside"] == 1.0
    assert "hz_pvalue" not in report and "hz_bootstrap_pvalue" not in report
    assert report["component_ks_pvalue"] == component_ks_test(U, "uniform").pvalue
    assert report["sliced_ratio"] == joint_match(U, "uniform").sliced_ratio
    two = np.column_stack([U[:, :2], U[:, :1]])  # a repeated column: dependent
    assert dm_report(two, prior="uniform")["sliced_ratio"] > 2
    assert "U([0, 1]^d)" in str(report) and "fraction_inside" in str(report)


# ------------------------------------------------------------ seeding, inputs
def test_random_state_is_local_and_reproducible():
    Z = _normal(0, 500, 2)
    # Reading numpy's global state (never setting it) to show it is untouched.
    legacy = np.random.get_state()[1].copy()  # noqa: NPY002
    a = normality_bootstrap(Z, n_subsamples=64, random_state=3)
    b = normality_bootstrap(Z, n_subsamples=64, random_state=np.random.default_rng(3))
    c = normality_bootstrap(Z, n_subsamples=64, random_state=4)
    normality_bootstrap(Z, n_subsamples=64, random_state=None)
    sliced_wasserstein(Z, random_state=None)
    assert a == b and a != c
    assert sliced_wasserstein(Z, random_state=1) == sliced_wasserstein(
        Z, random_state=1
    )
    np.testing.assert_array_equal(np.random.get_state()[1], legacy)  # noqa: NPY002


@pytest.mark.parametrize("n", [30, 64, 100, 4096, 50000])
def test_subsamples_have_distinct_indices(n):
    idx = _subsample_indices(np.random.default_rng(0), n, 300, 30)
    assert idx.shape == (300, 30)
    assert idx.min() >= 0 and idx.max() < n
    assert all(len(np.unique(row)) == 30 for row in idx)


_GOOD = np.random.default_rng(0).standard_normal((100, 2))


@pytest.mark.parametrize(
    "func",
    [
        henze_zirkler,
        normality_bootstrap,
        norm_ks_test,
        component_ks_test,
        mean_error,
        covariance_error,
        fraction_inside,
        knn_kl_divergence,
        sliced_wasserstein,
        dm_report,
    ],
)
@pytest.mark.parametrize(
    ("Z", "match"),
    [
        (np.where(np.arange(200).reshape(100, 2) == 7, np.nan, _GOOD), "NaN"),
        (np.where(np.arange(200).reshape(100, 2) == 7, np.inf, _GOOD), "infinity"),
        (_GOOD[:, 0], "2-D"),
        (_GOOD.reshape(100, 2, 1), "2-D"),
        (np.empty((100, 0)), "no components"),
        (np.empty((0, 2)), "sample"),
        ([["a", "b"]] * 100, "numeric"),
    ],
    ids=["nan", "inf", "1d", "3d", "no_columns", "no_rows", "strings"],
)
def test_invalid_latents_raise(func, Z, match):
    with pytest.raises(ValueError, match=match):
        func(Z)


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="prior"):
        knn_kl_divergence(_GOOD, prior="laplace")
    with pytest.raises(ValueError, match="prior"):
        dm_report(_GOOD, prior="gauss")
    with pytest.raises(ValueError, match="k must"):
        knn_kl_divergence(_GOOD, k=0)
    with pytest.raises(ValueError, match="at least 6"):
        knn_kl_divergence(_GOOD[:5], k=5)
    with pytest.raises(ValueError, match="at least 64"):
        normality_bootstrap(_GOOD[:50])
    with pytest.raises(ValueError, match="subsample_size must be an int >= 20"):
        normality_bootstrap(_GOOD, subsample_size=10)
    with pytest.raises(ValueError, match="must exceed n_components"):
        normality_bootstrap(np.ones((100, 30)), subsample_size=25)
    with pytest.raises(ValueError, match="n_subsamples"):
        normality_bootstrap(_GOOD, n_subsamples=0)
    with pytest.raises(ValueError, match="random_state"):
        normality_bootstrap(_GOOD, random_state="seed")
    with pytest.raises(ValueError, match="more samples than components"):
        henze_zirkler(_GOOD[:3, :] @ np.ones((2, 3)))
    with pytest.raises(ValueError, match="block_size"):
        henze_zirkler(_GOOD, block_size=0)
    with pytest.raises(ValueError, match="n_projections"):
        sliced_wasserstein(_GOOD, n_projections=0)


def test_component_ks_and_sliced_wasserstein_accept_target_priors():
    from scipy import stats as st

    rng = np.random.default_rng(0)
    Z = np.column_stack([rng.exponential(size=3000), rng.laplace(size=3000)])
    target = [st.expon(), st.laplace()]
    assert component_ks_test(Z, prior=target).pvalue > 0.01
    assert component_ks_test(Z, prior="gaussian").pvalue < 1e-6
    swd_right = sliced_wasserstein(Z, prior=target, random_state=0)
    swd_wrong = sliced_wasserstein(Z, prior="gaussian", random_state=0)
    assert swd_right < 0.2 < swd_wrong


# ----------------------------------------------------------------- joint match
def _sign_pairs(seed, n, pairs):
    """Columns ``(x, s * x)`` with an independent random sign ``s``: every column
    is exactly N(0, 1) and each pair uncorrelated, but not jointly Gaussian."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, pairs))
    s = rng.choice([-1.0, 1.0], size=(n, pairs))
    return np.column_stack([x, s * x])


def test_joint_match_statistics_by_hand():
    Z = _normal(3, 300, 3) * [1.0, 1.2, 0.9] + 0.1
    res = joint_match(Z, n_directions=8, n_reference=4, random_state=5)
    U = _joint_directions(3, 8, 5)
    ks = [stats.ks_1samp(Z @ u, stats.norm.cdf).statistic for u in U]
    assert res.sliced_ks_mean == pytest.approx(np.mean(ks), rel=1e-12)
    assert res.sliced_ks_max == pytest.approx(np.max(ks), rel=1e-12)
    assert res.radial_ks == pytest.approx(norm_ks_test(Z).statistic, rel=1e-12)
    cov_err = np.abs(np.cov(Z, rowvar=False) - np.eye(3)).max()
    assert res.cov_max_error == pytest.approx(cov_err, rel=1e-12)
    assert res.sliced_ratio == pytest.approx(
        res.sliced_ks_mean / res.floor_sliced_ks_mean
    )
    assert res.radial_ratio == pytest.approx(res.radial_ks / res.floor_radial_ks)
    assert res.floor_radial_ks == pytest.approx(stats.kstwo(300).median())
    assert res.worst_ratio == max(res.sliced_ratio, res.radial_ratio, res.cov_ratio)
    np.testing.assert_allclose(np.linalg.norm(U, axis=1), 1.0)


def test_wishart_cov_floor_matches_direct_exact_samples():
    # Few points, where a wrong degree of freedom would show.
    rng = np.random.default_rng(0)
    direct = [_cov_max_error(rng.standard_normal((6, 3))) for _ in range(4000)]
    bartlett = _wishart_cov_errors(6, 3, 4000, seed=0)
    qs = [0.1, 0.5, 0.9]
    np.testing.assert_allclose(
        np.quantile(bartlett, qs), np.quantile(direct, qs), rtol=0.04
    )


@pytest.mark.parametrize("prior", ["gaussian", "uniform"])
def test_joint_match_exact_prior_samples_score_about_one(prior):
    draw = {
        "gaussian": lambda rng: rng.standard_normal((2000, 6)),
        "uniform": lambda rng: rng.random((2000, 6)),
    }[prior]
    results = [
        joint_match(draw(np.random.default_rng(100 + seed)), prior) for seed in range(8)
    ]
    for field in ("sliced", "sliced_max", "radial", "cov"):
        ratios = np.array([getattr(r, f"{field}_ratio") for r in results])
        q95 = getattr(results[0], f"{field}_ratio_q95")
        assert 0.8 < np.median(ratios) < 1.2, (field, ratios)
        # About 1 in 20 exact samples scores above the 95% quantile.
        assert np.sum(ratios > q95) <= 2, (field, ratios, q95)


def test_joint_match_sees_dependence_that_marginals_miss():
    Z = _sign_pairs(0, 2000, 2)
    assert np.all(marginal_ks(Z).pvalue > 0.05)
    res = joint_match(Z)
    assert res.sliced_ratio > max(2.0, 1.5 * res.sliced_ratio_q95)
    assert res.sliced_max_ratio > res.sliced_max_ratio_q95


def test_joint_match_radial_view_sees_a_radial_distortion():
    # Uniform on the sphere of radius sqrt(d): projections nearly N(0, 1) at
    # d = 32, but ||z||^2 is d exactly.
    G = _normal(1, 2000, 32)
    Z = np.sqrt(32) * G / np.linalg.norm(G, axis=1, keepdims=True)
    res = joint_match(Z)
    assert res.radial_ratio > 10
    assert res.sliced_ratio < 1.5
    assert res.worst_ratio == res.radial_ratio


def test_joint_match_cov_ratio_sees_a_wrong_scale():
    exact = joint_match(_normal(2, 5000, 4))
    wide = joint_match(np.sqrt(1.1) * _normal(2, 5000, 4))
    assert wide.cov_ratio > 2 * wide.cov_ratio_q95
    assert wide.cov_ratio > 2 * exact.cov_ratio


def test_joint_match_uniform_path_sees_dependence_and_clips_faces():
    rng = np.random.default_rng(4)
    u = rng.random((2000, 2))
    exact = joint_match(u, "uniform")
    dependent = joint_match(np.column_stack([u, u]), "uniform")
    assert exact.sliced_ratio < 1.5
    assert dependent.sliced_ratio > 3
    faces = u.copy()
    faces[:10] = [0.0, 1.0]
    res = joint_match(faces, "uniform")
    assert np.isfinite(res.radial_ratio) and np.isfinite(res.sliced_ratio)
    # 0.5% of the rows on the faces show in the tails: worse than the exact draws.
    assert res.radial_ratio > exact.radial_ratio


def test_joint_match_with_fewer_samples_than_components():
    # No Wishart law: the covariance floor comes from the exact samples.
    res = joint_match(_normal(0, 5, 8), n_reference=4)
    assert all(np.isfinite(v) and v > 0 for v in res[:5])


def test_joint_match_is_deterministic_and_shares_directions_and_floor():
    Z1, Z2 = _normal(5, 500, 3), _normal(6, 500, 3)
    a = joint_match(Z1, random_state=1, n_reference=4)
    assert joint_match(Z1, random_state=1, n_reference=4) == a
    b = joint_match(Z2, random_state=1, n_reference=4)
    assert b.floor_sliced_ks_mean == a.floor_sliced_ks_mean
    assert b.floor_cov_max_error == a.floor_cov_max_error
    other = joint_match(Z1, random_state=2, n_reference=4)
    assert other.sliced_ks_mean != a.sliced_ks_mean
    # The first directions do not depend on how many there are.
    np.testing.assert_array_equal(
        _joint_directions(3, 4, 1), _joint_directions(3, 16, 1)[:4]
    )
    g1 = joint_match(Z1, random_state=np.random.default_rng(9), n_reference=4)
    g2 = joint_match(Z1, random_state=np.random.default_rng(9), n_reference=4)
    assert g1 == g2


@PROPERTY
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(5, 120),
    d=st.integers(1, 4),
)
def test_joint_match_invariant_to_row_order_and_sign(seed, n, d):
    Z = _normal(seed, n, d) * 1.3
    rng = np.random.default_rng(seed + 1)
    base = joint_match(Z, n_directions=16, n_reference=2)
    for other in (Z[rng.permutation(n)], -Z):
        res = joint_match(other, n_directions=16, n_reference=2)
        np.testing.assert_allclose(res, base, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"Z": np.ones((10, 2)) + 1j}, "complex"),
        ({"Z": np.full((10, 2), np.nan)}, "NaN"),
        ({"Z": np.ones(10)}, "2-D"),
        ({"Z": np.ones((2, 2))}, "at least 3"),
        ({"prior": "laplace"}, "prior"),
        ({"n_directions": 0}, "n_directions"),
        ({"n_reference": 1.5}, "n_reference"),
        ({"random_state": -1}, "random_state"),
        ({"random_state": "a"}, "random_state"),
    ],
)
def test_joint_match_invalid_input_raises(kwargs, match):
    kwargs = {"Z": _normal(0, 10, 2), **kwargs}
    with pytest.raises(ValueError, match=match):
        joint_match(**kwargs)


@pytest.mark.parametrize("metric", [M.knn_kl_divergence, M.norm_ks_test, M.mean_error])
def test_metrics_refuse_complex_latents(metric):
    Z = np.random.default_rng(0).normal(size=(50, 2)) + 1j
    with pytest.raises(ValueError, match="complex"):
        metric(Z)


@pytest.mark.parametrize(
    "metric", [M.knn_kl_divergence, M.henze_zirkler, M.prior_match_score]
)
def test_metrics_refuse_overflowing_latents(metric):
    Z = np.full((50, 2), 1e300) * np.arange(1, 51)[:, None] / 50
    with pytest.raises(ValueError, match="overflow"):
        metric(Z)


def test_knn_kl_with_duplicates_equals_the_brute_force_answer():
    rng = np.random.default_rng(0)
    Z = rng.integers(-2, 3, size=(400, 2)).astype(float)  # every row repeated
    D = np.sqrt(((Z[:, None] - Z[None]) ** 2).sum(-1))
    np.fill_diagonal(D, np.inf)
    for k in (1, 5, 30):
        eps = np.maximum(np.sort(D, axis=1)[:, k - 1], 1e-12 * np.abs(Z).max())
        n, d = Z.shape
        from scipy.special import digamma, gammaln

        h = (
            digamma(n)
            - digamma(k)
            + 0.5 * d * np.log(np.pi)
            - gammaln(0.5 * d + 1)
            + d * np.mean(np.log(eps))
        )
        cross = 0.5 * np.mean((Z * Z).sum(1)) + 0.5 * d * np.log(2 * np.pi)
        assert M.knn_kl_divergence(Z, k=k) == pytest.approx(cross - h, rel=1e-12)
