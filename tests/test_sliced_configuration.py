"""The parts of the sliced configuration in a fit: whitened latents, the sliced
bound beyond ``log(batch_size)``, the Student-t critic, step budgets, and the
choices that cannot go together."""

import math

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skdim_dm import NoiseInjectedInfoMax

FAST = dict(hidden_layer_sizes=(32,), device="cpu", random_state=0)


@pytest.fixture(scope="module")
def X():
    return load_digits().data


@pytest.mark.parametrize("objective", ["joint", "sliced"])
def test_whitening_makes_training_latents_exactly_white(X, objective):
    est = NoiseInjectedInfoMax(
        n_components=6, whiten=True, objective=objective, max_steps=30, **FAST
    ).fit(X)
    Z = est.transform(X)  # float64 input: float64 inference
    assert np.abs(Z.mean(0)).max() < 1e-6
    cov = np.cov(Z, rowvar=False, bias=True)
    assert np.abs(cov - np.eye(6)).max() < 1e-6
    # Per-component batch normalization standardizes but does not decorrelate.
    plain = NoiseInjectedInfoMax(
        n_components=6, objective="joint", whiten=False, max_steps=30, **FAST
    ).fit(X)
    cov_plain = np.cov(plain.transform(X), rowvar=False, bias=True)
    assert np.abs(cov_plain - np.eye(6)).max() > 1e-3


# Twelve steps: whether MI was found is not what this test checks.
@pytest.mark.filterwarnings(
    "ignore:the final MI estimate is negative:sklearn.exceptions.ConvergenceWarning"
)
@pytest.mark.parametrize(
    "params",
    [
        {"whiten": True},
        {"objective": "sliced", "whiten": True},
        {"critic": "student", "augmentation": "neighbors"},
        {"objective": "sliced", "critic": "student"},
    ],
    ids=repr,
)
def test_new_parts_are_deterministic_under_random_state(X, params):
    a = NoiseInjectedInfoMax(n_components=3, max_steps=12, **FAST, **params).fit(X)
    b = NoiseInjectedInfoMax(n_components=3, max_steps=12, **FAST, **params).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.mutual_info_ == b.mutual_info_
    c = NoiseInjectedInfoMax(
        n_components=3, max_steps=12, **{**FAST, "random_state": 1}, **params
    ).fit(X)
    assert not np.array_equal(a.transform(X), c.transform(X))


# The last fit takes one step, to read capacity_: its MI estimate is not the point.
@pytest.mark.filterwarnings(
    "ignore:the final MI estimate is negative:sklearn.exceptions.ConvergenceWarning"
)
def test_sliced_objective_measures_beyond_log_batch(X):
    # d = 8 at 1.15 nats per component is 9.2 nats, more than log(64) = 4.16:
    # one joint InfoNCE bound cannot exceed log N, eight sliced bounds can.
    params = dict(n_components=8, batch_size=64, noise_level=0.4, max_steps=150, **FAST)
    # Same-sample views and no matching term: the bound alone, as in the paper.
    sliced = NoiseInjectedInfoMax(
        objective="sliced",
        augmentation="gaussian",
        match_weight=0.0,
        radial_weight=0.0,
        learning_rate_schedule="constant",
        **params,
    ).fit(X)
    with pytest.warns(UserWarning, match="exceeds log"):
        joint = NoiseInjectedInfoMax(objective="joint", **params).fit(X)
    assert joint.mutual_info_ <= math.log(64) + 1e-6
    assert sliced.mutual_info_ > math.log(64) + 1.0
    assert sliced.mutual_info_ <= sliced.capacity_ + 0.5
    # "auto" for the sliced objective: 0.3 nats per component, not capped by
    # log(batch) as a whole (the joint "auto" would be min(1.15 d, 0.5 log N)).
    auto = NoiseInjectedInfoMax(
        objective="sliced", **{**params, "noise_level": "auto", "max_steps": 1}
    ).fit(X)
    assert auto.capacity_ == pytest.approx(0.3 * 8)


def test_max_steps_is_the_budget_whatever_the_data_size(X):
    for n in (100, 1500):
        est = NoiseInjectedInfoMax(
            max_steps=7, batch_size=64, learning_rate_schedule="cosine", **FAST
        ).fit(X[:n])
        assert est.n_steps_ == 7
        assert est.n_iter_ == math.ceil(7 / (n // 64))
        # The cosine schedule spans the steps: the last step's rate is near 0.
        assert est.history_[-1]["learning_rate"] < 0.1 * est.learning_rate


@pytest.mark.parametrize(
    "params, match",
    [
        ({"whiten": True, "prior": "uniform"}, "Gaussian prior"),
        ({"objective": "sliced", "critic": "separable"}, "sliced"),
        ({"critic": "student", "prior": "uniform"}, "Gaussian prior"),
        ({"gaussianize": 5, "prior": "uniform"}, "Gaussian prior"),
        ({"objective": "sliced", "prior": "uniform", "n_components": 3}, "Gaussian"),
        ({"whiten": True, "n_components": 8, "batch_size": 8}, "more rows than n_c"),
    ],
)
def test_incompatible_choices_fail_before_training(X, params, match):
    epochs = []
    est = NoiseInjectedInfoMax(
        max_steps=5, callbacks=[lambda e, logs: epochs.append(e)], **FAST, **params
    )
    with pytest.raises(ValueError, match=match):
        est.fit(X)
    assert epochs == []
    with pytest.raises(NotFittedError):
        check_is_fitted(est)


def test_whiten_refuses_a_partial_fit_chunk_smaller_than_a_batch(X):
    est = NoiseInjectedInfoMax(
        4, whiten=True, batch_size=64, augmentation="gaussian", **FAST
    )
    est.partial_fit(X[:100])
    Z = est.transform(X[:50])
    with pytest.raises(ValueError, match="more rows than n_components=4"):
        est.partial_fit(X[100:104])
    assert est.n_iter_ == 1 and np.array_equal(est.transform(X[:50]), Z)
    est.partial_fit(X[100:105])  # five rows are enough for four components
    assert est.n_iter_ == 2


# Ten steps: whether MI was found is not what this test checks.
@pytest.mark.filterwarnings(
    "ignore:the final MI estimate is negative:sklearn.exceptions.ConvergenceWarning"
)
@pytest.mark.parametrize(
    "params",
    [{"whiten": True, "objective": "sliced", "critic": "student"}],
    ids=repr,
)
def test_new_options_round_trip_through_save_and_load(tmp_path, X, params):
    est = NoiseInjectedInfoMax(n_components=3, max_steps=10, **FAST, **params).fit(X)
    loaded = NoiseInjectedInfoMax.load(est.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
    assert loaded.get_params()["objective"] == "sliced"
