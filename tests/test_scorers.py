"""Latent scorers: on bare estimators, inside pipelines, and in GridSearchCV."""

import pickle

import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skdim_dm import Gaussianizer, NoiseInjectedInfoMax
from skdim_dm.metrics import (
    LATENT_METRICS,
    TestResult,
    gaussianity_scorer,
    henze_zirkler,
    joint_match,
    joint_match_scorer,
    knn_kl_divergence,
    make_latent_scorer,
    norm_ks_test,
    prior_scorer,
    sliced_wasserstein,
    uniformity_scorer,
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


def _small(**params):
    return NoiseInjectedInfoMax(
        hidden_layer_sizes=(16,), max_epochs=2, device="cpu", random_state=0, **params
    )


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    return {
        "gaussian": _small().fit(X),
        "uniform": _small(prior="uniform").fit(X),
        "pipeline": make_pipeline(
            StandardScaler(), _small(), LogisticRegression(max_iter=200)
        ).fit(X, y),
    }


def test_prior_scorer_maps_target_latents_back_to_the_base(digits):
    # With a scipy target, the latents must go back through the prior's inverse
    # map before the KL to the base is estimated, as NoiseInjectedInfoMax.score
    # does; on the target-space latents the number is a different one.
    X, y = digits
    est = _small(prior=stats.expon()).fit(X)
    Z = est.transform(X)
    expected = -knn_kl_divergence(est.prior_.from_target(Z), "gaussian")
    assert prior_scorer(est, X) == expected == est.score(X)
    assert abs(expected + knn_kl_divergence(Z, "gaussian")) > 0.1
    pipe = make_pipeline(StandardScaler(), _small(prior=stats.expon())).fit(X)
    Zp = pipe.transform(X)
    assert prior_scorer(pipe, X) == -knn_kl_divergence(
        pipe[-1].prior_.from_target(Zp), "gaussian"
    )


def test_prior_scorer_equals_estimator_score(fitted, digits):
    X, _ = digits
    for prior in ("gaussian", "uniform"):
        est = fitted[prior]
        value = prior_scorer(est, X)
        assert np.isfinite(value)
        assert value == est.score(X)
        assert value == -knn_kl_divergence(est.transform(X), prior)


def test_prior_scorer_uses_the_fitted_prior_after_set_params(digits):
    X, _ = digits
    est = _small(prior=stats.expon()).fit(X[:300])
    before = prior_scorer(est, X[300:])
    for prior in ("gaussian", "uniform", stats.beta(2, 5)):
        est.set_params(prior=prior)  # no effect until the next fit
        assert prior_scorer(est, X[300:]) == before == est.score(X[300:])


def test_gaussianity_and_uniformity_scorers(fitted, digits):
    X, _ = digits
    Zg = fitted["gaussian"].transform(X)
    Zu = fitted["uniform"].transform(X)
    assert gaussianity_scorer(fitted["gaussian"], X) == -knn_kl_divergence(Zg)
    assert uniformity_scorer(fitted["uniform"], X) == -knn_kl_divergence(Zu, "uniform")
    assert gaussianity_scorer(fitted["uniform"], X) == -knn_kl_divergence(Zu)
    # Gaussian latents leave the unit cube: infinitely far from uniform.
    assert uniformity_scorer(fitted["gaussian"], X) == -np.inf
    assert repr(prior_scorer) == "prior_scorer"


def test_scorers_transform_up_to_the_infomax_step(fitted, digits):
    X, y = digits
    pipe = fitted["pipeline"]
    Z = pipe[1].transform(pipe[0].transform(X))
    assert prior_scorer(pipe, X, y) == -knn_kl_divergence(Z)
    assert gaussianity_scorer(pipe, X) == -knn_kl_divergence(Z)
    # Nested: the pipeline inside another pipeline, after a further step.
    outer = Pipeline([("noop", "passthrough"), ("inner", pipe[:2])])
    assert prior_scorer(outer, X) == -knn_kl_divergence(Z)


def test_scorers_take_the_latents_of_any_transformer_or_pipeline(digits):
    X, y = digits
    # A transformer: its output.
    two_stage = make_pipeline(
        PCA(3, whiten=True, random_state=0), Gaussianizer(random_state=0)
    ).fit(X)
    Z = two_stage.transform(X)
    assert gaussianity_scorer(two_stage, X) == -knn_kl_divergence(Z)
    # Latents not made by NoiseInjectedInfoMax are compared with N(0, I).
    assert prior_scorer(two_stage, X) == -knn_kl_divergence(Z)
    assert make_latent_scorer("norm_ks")(two_stage[-1], two_stage[0].transform(X)) == (
        norm_ks_test(Z).pvalue
    )
    # A pipeline ending in a classifier: what the classifier is fed.
    clf = make_pipeline(
        PCA(3, whiten=True, random_state=0),
        Gaussianizer(random_state=0),
        LogisticRegression(max_iter=200),
    ).fit(X, y)
    assert prior_scorer(clf, X, y) == -knn_kl_divergence(clf[:-1].transform(X))
    # ... also when the classifier sits in a nested pipeline of its own.
    nested = Pipeline(
        [
            ("pca", PCA(3, whiten=True, random_state=0)),
            (
                "model",
                make_pipeline(Gaussianizer(random_state=0), LogisticRegression()),
            ),
        ]
    ).fit(X, y)
    Zn = nested["model"][0].transform(nested["pca"].transform(X))
    assert prior_scorer(nested, X, y) == -knn_kl_divergence(Zn)
    scaled = make_pipeline(StandardScaler(), LogisticRegression(max_iter=50)).fit(X, y)
    assert gaussianity_scorer(scaled, X) == -knn_kl_divergence(scaled[0].transform(X))


@pytest.mark.parametrize(
    "scorer",
    [prior_scorer, gaussianity_scorer, uniformity_scorer]
    + [make_latent_scorer(name) for name in sorted(LATENT_METRICS)],
    ids=repr,
)
def test_latent_scorers_refuse_complex_latents(digits, scorer):
    X, _ = digits
    complex_latents = FunctionTransformer(lambda A: A[:, :2] + 1j * A[:, 2:4])
    with pytest.raises(ValueError, match="complex"):
        scorer(complex_latents.fit(X), X)


def test_scorers_need_latents(digits):
    X, y = digits
    bare = LogisticRegression(max_iter=2000).fit(X, y)
    alone = Pipeline([("clf", LogisticRegression(max_iter=2000))]).fit(X, y)
    for est in (bare, alone):
        for scorer in (prior_scorer, gaussianity_scorer, make_latent_scorer("knn_kl")):
            with pytest.raises(TypeError, match="no transform"):
                scorer(est, X, y)


def test_infomax_latents_take_precedence_in_a_pipeline(fitted, digits):
    X, y = digits
    pipe = fitted["pipeline"]
    after = Pipeline(
        [("embed", pipe[:2]), ("gauss", Gaussianizer(n_layers=2, random_state=0))]
    ).fit(X)
    # The NoiseInjectedInfoMax output is scored, not the Gaussianizer's.
    Z = pipe[:2].transform(X)
    assert prior_scorer(after, X) == -knn_kl_divergence(Z)


def test_one_search_compares_infomax_with_a_two_stage_pipeline():
    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    pipe = Pipeline([("embed", None), ("clf", LogisticRegression(max_iter=300))])
    embeddings = [
        NoiseInjectedInfoMax(
            2, hidden_layer_sizes=(32,), max_epochs=3, device="cpu", random_state=0
        ),
        make_pipeline(
            PCA(2, whiten=True, random_state=0), Gaussianizer(random_state=0)
        ),
    ]
    cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=0)
    search = GridSearchCV(
        pipe,
        {"embed": embeddings},
        scoring={"accuracy": "accuracy", "matching": gaussianity_scorer},
        refit="accuracy",
        cv=cv,
    ).fit(X, y)
    res = search.cv_results_
    acc, match = res["mean_test_accuracy"], res["mean_test_matching"]
    assert np.all(np.isfinite(match)) and np.all((acc > 0.1) & (acc <= 1))
    assert search.best_index_ == int(np.argmax(acc))
    # Each recorded score is the scorer on the held-out fold, latents included.
    train, test = next(cv.split(X, y))
    for i, embed in enumerate(embeddings):
        again = clone(pipe).set_params(embed=clone(embed)).fit(X[train], y[train])
        Z = again[:-1].transform(X[test])
        assert res["split0_test_matching"][i] == pytest.approx(
            -knn_kl_divergence(Z), rel=1e-9
        )
        assert res["split0_test_accuracy"][i] == pytest.approx(
            again.score(X[test], y[test])
        )


@pytest.mark.parametrize("name", sorted(LATENT_METRICS))
def test_named_metrics_score_with_their_direction(name, fitted, digits):
    X, _ = digits
    est = fitted["gaussian"]
    scorer = make_latent_scorer(name)
    value = scorer(est, X)
    assert isinstance(value, float) and not np.isnan(value)
    metric, greater_is_better = LATENT_METRICS[name]
    flipped = make_latent_scorer(name, greater_is_better=not greater_is_better)
    assert flipped(est, X) == -value
    assert pickle.loads(pickle.dumps(scorer))(est, X) == value


def test_make_latent_scorer_values(fitted, digits):
    X, _ = digits
    est = fitted["gaussian"]
    Z = est.transform(X)
    sw = make_latent_scorer("sliced_wasserstein", n_projections=32, random_state=5)
    assert sw(est, X) == -sliced_wasserstein(Z, n_projections=32, random_state=5)
    assert "n_projections=32" in repr(sw)
    # A test result scores by its p-value.
    assert make_latent_scorer(henze_zirkler)(est, X) == henze_zirkler(Z).pvalue
    # An explicit prior overrides the estimator's.
    kl_u = make_latent_scorer(
        knn_kl_divergence, greater_is_better=False, prior="uniform"
    )
    assert kl_u(fitted["uniform"], X) == uniformity_scorer(fitted["uniform"], X)


def test_callable_metric_gets_the_estimator_prior(fitted, digits):
    X, _ = digits
    seen = []

    def metric(Z, prior="none", scale=1.0):
        seen.append((Z.shape, prior))
        return scale * float(Z.mean())

    scorer = make_latent_scorer(metric, scale=2.0)
    assert scorer(fitted["uniform"], X) == 2.0 * float(
        fitted["uniform"].transform(X).mean()
    )
    scorer(fitted["gaussian"], X)
    assert seen == [((600, 2), "uniform"), ((600, 2), "gaussian")]
    # Metrics without a prior argument are called without one.
    assert make_latent_scorer(lambda Z: Z.shape[0])(fitted["gaussian"], X) == 600.0
    # ... but a prior given explicitly is passed as given.
    with pytest.raises(TypeError, match="prior"):
        make_latent_scorer(lambda Z: 0.0, prior="uniform")(fitted["gaussian"], X)


def test_make_latent_scorer_rejects_bad_input(fitted, digits):
    X, _ = digits
    with pytest.raises(ValueError, match="unknown latent metric"):
        make_latent_scorer("accuracy")
    with pytest.raises(TypeError, match="name or a callable"):
        make_latent_scorer(3)
    with pytest.raises(TypeError, match="greater_is_better"):
        make_latent_scorer("knn_kl", greater_is_better="yes")
    with pytest.raises(TypeError, match="must return a number"):
        make_latent_scorer(lambda Z: {"a": 1})(fitted["gaussian"], X)
    assert isinstance(henze_zirkler(np.eye(3)[[0, 1, 2, 0, 1, 2, 0]]), TestResult)


def _within_two_points_best_matching(cv_results):
    """Refit rule: best matching among candidates within 0.02 of the best accuracy."""
    acc = np.asarray(cv_results["mean_test_accuracy"])
    match = np.asarray(cv_results["mean_test_matching"])
    ok = acc >= acc.max() - 0.02
    return int(np.flatnonzero(ok)[np.argmax(match[ok])])


# Five-epoch fits at the smallest noise level find no information (negative MI
# estimate); the search over the trade-off is what this test checks.
@pytest.mark.filterwarnings(
    "ignore:the final MI estimate is negative:sklearn.exceptions.ConvergenceWarning"
)
def test_grid_search_trades_accuracy_for_matching():
    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]  # small: every fit is a handful of steps
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "infomax",
                NoiseInjectedInfoMax(
                    hidden_layer_sizes=(64,), max_epochs=5, device="cpu", random_state=0
                ),
            ),
            ("clf", LogisticRegression(max_iter=300)),
        ]
    )
    cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=0)
    levels = [0.1, 0.5, 2.0]
    search = GridSearchCV(
        pipe,
        {"infomax__noise_level": levels},
        scoring={"accuracy": "accuracy", "matching": prior_scorer},
        refit=_within_two_points_best_matching,
        cv=cv,
    ).fit(X, y)
    res = search.cv_results_
    match = res["mean_test_matching"]
    assert np.all(np.isfinite(match)) and np.all(match < 1.0)
    assert np.ptp(match) > 0.01  # the noise level changes how well latents match
    best = search.best_index_
    assert search.best_params_ == {"infomax__noise_level": levels[best]}
    # Every recorded score is the scorer on its held-out fold, recomputed here from
    # independent fits; the refit rule then picks the same candidate from them.
    mine = {name: np.zeros((2, len(levels))) for name in ("accuracy", "matching")}
    for k, (train, test) in enumerate(cv.split(X, y)):
        for i, level in enumerate(levels):
            again = clone(pipe).set_params(infomax__noise_level=level)
            again.fit(X[train], y[train])
            mine["accuracy"][k, i] = again.score(X[test], y[test])
            mine["matching"][k, i] = prior_scorer(again, X[test])
    for name, values in mine.items():
        for k in range(2):
            np.testing.assert_allclose(
                res[f"split{k}_test_{name}"], values[k], rtol=1e-9
            )
    recomputed = {f"mean_test_{name}": v.mean(axis=0) for name, v in mine.items()}
    assert _within_two_points_best_matching(recomputed) == best
    assert search.best_estimator_[1].noise_level == levels[best]
    assert np.isfinite(prior_scorer(search.best_estimator_, X))


# ----------------------------------------------------------------- joint match
def test_joint_match_scorer_is_minus_the_worst_ratio(fitted, digits):
    X, _ = digits
    for prior in ("gaussian", "uniform"):
        est = fitted[prior]
        res = joint_match(est.transform(X), prior)
        assert joint_match_scorer(est, X) == -res.worst_ratio
        assert make_latent_scorer("sliced_ratio")(est, X) == -res.sliced_ratio
        assert make_latent_scorer("radial_ratio")(est, X) == -res.radial_ratio
    assert repr(joint_match_scorer) == "joint_match_scorer"
    est = fitted["gaussian"]
    assert pickle.loads(pickle.dumps(joint_match_scorer))(est, X) == (
        joint_match_scorer(est, X)
    )
    # Latents of another transformer are judged against N(0, I).
    pca = PCA(3, whiten=True, random_state=0).fit(X)
    assert joint_match_scorer(pca, X) == -joint_match(pca.transform(X)).worst_ratio


def test_joint_match_scorer_prefers_jointly_gaussian_latents():
    rng = np.random.default_rng(0)
    gaussian = rng.standard_normal((2000, 4))
    x = rng.standard_normal((2000, 2))
    sign = rng.choice([-1.0, 1.0], size=(2000, 2))
    dependent = np.column_stack([x, sign * x])  # N(0, 1) columns, not joint
    identity = FunctionTransformer()
    good = joint_match_scorer(identity.fit(gaussian), gaussian)
    bad = joint_match_scorer(identity.fit(dependent), dependent)
    assert good > -1.5 and bad < 2 * good
    sliced = make_latent_scorer("sliced_ratio")
    assert sliced(identity, gaussian) > sliced(identity, dependent)


def test_joint_match_scorer_in_grid_search_with_a_pipeline(digits):
    X, y = digits
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("infomax", _small()),
            ("clf", LogisticRegression(max_iter=200)),
        ]
    )
    cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=0)
    search = GridSearchCV(
        pipe,
        {"infomax__noise_level": [0.3, 1.0]},
        scoring={"accuracy": "accuracy", "joint": joint_match_scorer},
        refit="joint",
        cv=cv,
    ).fit(X, y)
    res = search.cv_results_
    assert np.all(res["mean_test_joint"] < 0)
    assert search.best_index_ == int(np.argmax(res["mean_test_joint"]))
    train, test = next(cv.split(X, y))
    again = clone(pipe).set_params(infomax__noise_level=0.3).fit(X[train], y[train])
    Z = again[:2].transform(X[test])
    assert res["split0_test_joint"][0] == pytest.approx(
        -joint_match(Z).worst_ratio, rel=1e-9
    )
