"""The "auto" settings: which configuration the defaults resolve to, and the
joint-matching term they switch on."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from skdim_dm import MatchWarning, NoiseInjectedInfoMax
from skdim_dm._core.bounds import epps_pulley
from skdim_dm._settings import AUTO_JOINT, AUTO_SLICED, resolve_settings


def _params(**kw):
    return {**NoiseInjectedInfoMax(**kw).get_params(deep=False)}


@pytest.fixture(scope="module")
def digits():
    X = load_digits().data[:600]
    return StandardScaler().fit_transform(X).astype(np.float32)


def test_auto_picks_the_sliced_configuration_above_two_gaussian_components():
    settings = resolve_settings(_params(n_components=8), gaussian=True)
    assert settings == AUTO_SLICED


@pytest.mark.parametrize(
    "params, gaussian",
    [({"n_components": 2}, True), ({"n_components": 8}, False)],
    ids=["two-components", "uniform-base"],
)
def test_auto_keeps_the_papers_configuration_elsewhere(params, gaussian):
    assert resolve_settings(_params(**params), gaussian=gaussian) == AUTO_JOINT


def test_an_explicit_objective_picks_its_configuration_and_explicit_values_win():
    joint = resolve_settings(_params(n_components=8, objective="joint"), True)
    assert joint == AUTO_JOINT
    mixed = _params(n_components=8, match_weight=0.0, augmentation="gaussian")
    settings = resolve_settings(mixed, True)
    assert settings["match_weight"] == 0.0
    assert settings["augmentation"] == "gaussian"
    assert settings["objective"] == "sliced" and settings["whiten"] is True


def test_partial_fit_resolves_auto_to_no_budget_and_a_constant_rate():
    settings = resolve_settings(_params(n_components=8), True, partial=True)
    assert settings["max_steps"] is None
    assert settings["learning_rate_schedule"] == "constant"


def test_fit_stores_the_resolved_settings_and_logs_the_matching_term(digits):
    est = NoiseInjectedInfoMax(n_components=4, max_steps=20, random_state=0)
    est.fit(digits)
    assert est.settings_ == {**AUTO_SLICED, "max_steps": 20}
    assert all("match" in entry and "radial" in entry for entry in est.history_)
    off = NoiseInjectedInfoMax(
        n_components=4,
        max_steps=20,
        match_weight=0.0,
        radial_weight=0.0,
        random_state=0,
    ).fit(digits)
    assert not any("match" in entry or "radial" in entry for entry in off.history_)


def _latents(X, **weights):
    """Latents (float64) of a short default fit on ``X`` with these weights."""
    est = NoiseInjectedInfoMax(n_components=4, max_steps=150, random_state=0, **weights)
    return est.fit(X).transform(X).astype(np.float64)


def test_the_matching_term_brings_training_latents_closer_to_the_prior(digits):
    import torch

    def statistic(match_weight):
        Z = torch.as_tensor(_latents(digits, match_weight=match_weight))
        rot = torch.linalg.qr(
            torch.randn(
                4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64
            )
        )[0]
        return float(epps_pulley(Z @ rot))

    assert statistic(40.0) < 0.5 * statistic(0.0)


def test_the_radial_term_brings_the_law_of_the_norm_to_chi2(digits):
    from scipy import stats

    def distance(radial_weight):
        Z = _latents(digits, radial_weight=radial_weight)
        return stats.kstest((Z**2).sum(1), stats.chi2(4).cdf).statistic

    assert distance(10.0) < 0.6 * distance(0.0)


def test_partial_fit_works_with_the_defaults(digits):
    est = NoiseInjectedInfoMax(n_components=4, batch_size=128, random_state=0)
    est.partial_fit(digits[:300]).partial_fit(digits[300:])
    assert est.settings_["learning_rate_schedule"] == "constant"
    assert np.isfinite(est.transform(digits)).all()


def test_the_papers_configuration_is_one_setting_away(digits):
    est = NoiseInjectedInfoMax(
        n_components=4, objective="joint", max_epochs=2, random_state=0
    ).fit(digits)
    assert est.settings_ == AUTO_JOINT
    assert est.history_[-1]["epoch"] == 2


def test_fit_measures_its_latents_and_warns_when_far_from_the_prior():
    # The paper's configuration at d = 8 on digits: its latents fail the radial
    # view (issue 17), and the fitted estimator says so instead of only
    # reporting a small kl_upper_bound_.
    X = StandardScaler().fit_transform(load_digits().data)
    with pytest.warns(MatchWarning, match="far from the prior: radial_ratio"):
        est = NoiseInjectedInfoMax(
            n_components=8, objective="joint", max_epochs=20, random_state=0
        ).fit(X)
    report = est.joint_match_
    assert report["rows"] == 1797 and report["held_out"] is False
    assert report["radial_ratio"] > 2 * report["radial_ratio_q95"]


def test_joint_match_is_measured_on_held_out_rows_with_early_stopping():
    X = StandardScaler().fit_transform(load_digits().data)
    est = NoiseInjectedInfoMax(
        n_components=4,
        max_steps=10,
        early_stopping=True,
        validation_fraction=0.2,
        random_state=0,
    ).fit(X)
    assert est.joint_match_["held_out"] is True
    assert est.joint_match_["rows"] == round(0.2 * len(X))
