"""Targets beyond N(0, I): scipy.stats marginals, flows, sampling, clone."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.base import clone
from torch import nn

from skdim_dm import NoiseInjectedInfoMax
from skdim_dm._priors import (
    FlowPrior,
    Prior,
    prior_from_config,
    prior_to_config,
    resolve_prior,
)
from skdim_dm.metrics import marginal_ks

DISTS = {
    "expon": stats.expon(),
    "laplace": stats.laplace(loc=1.0, scale=2.0),
    "beta": stats.beta(2, 5),
    "gamma": stats.gamma(0.7),
    "t": stats.t(3),
}


def _g(z):
    """An invertible nonlinear map of R^2 into R^3 (data with 2-D Gaussian factors)."""
    a = z[:, 0] + 0.3 * z[:, 0] ** 3
    b = np.tanh(z[:, 1]) * 2 + 0.5 * z[:, 0]
    return np.column_stack([a, b, np.sinh(0.5 * z[:, 1]) - 0.3 * a])


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(0)
    return _g(rng.standard_normal((2000, 2)))


def _fit(X, prior, **kw):
    params = dict(
        hidden_layer_sizes=(32, 32),
        max_epochs=20,
        batch_size=256,
        random_state=0,
        device="cpu",
    )
    params.update(kw)
    return NoiseInjectedInfoMax(prior=prior, **params).fit(X)


# ------------------------------------------------------------- the bijection
@pytest.mark.parametrize("name", sorted(DISTS))
@settings(max_examples=30, deadline=None)
@given(z=st.lists(st.floats(-7.5, 7.5), min_size=1, max_size=20))
def test_pit_round_trip_and_monotone(name, z):
    prior = resolve_prior(DISTS[name])
    z = np.sort(np.asarray(z))[:, None]
    t = prior.to_target(z)
    assert np.all(np.isfinite(t))
    # Monotone up to rounding where ppf hands over to isf (at z = 0).
    assert np.all(np.diff(t[:, 0]) >= -1e-9 * (1 + np.abs(t[1:, 0])))
    np.testing.assert_allclose(prior.from_target(t), z, atol=1e-6, rtol=1e-6)


def test_pit_tails_are_computed_stably():
    prior = resolve_prior(stats.expon())
    z = np.array([[9.0], [12.0], [-12.0]])
    # The naive F^{-1}(Phi(z)) rounds Phi(9) to 1 and returns inf.
    assert not np.isfinite(stats.expon.ppf(stats.norm.cdf(9.0)))
    t = prior.to_target(z)
    np.testing.assert_allclose(t[:2, 0], -stats.norm.logsf([9.0, 12.0]), rtol=1e-10)
    assert 0 < t[2, 0] < 1e-30
    np.testing.assert_allclose(prior.from_target(t), z, rtol=1e-8)
    # A symmetric target stays symmetric far in both tails.
    lap = resolve_prior(stats.laplace())
    zz = np.array([[-9.0], [9.0]])
    tt = lap.to_target(zz)
    assert np.isfinite(tt).all()
    np.testing.assert_allclose(tt[0], -tt[1], rtol=1e-12)


def test_list_prior_maps_each_component_with_its_own_distribution():
    dists = [stats.expon(), stats.beta(2, 5), stats.norm(3, 2)]
    prior = resolve_prior(dists, 3)
    z = np.random.default_rng(1).standard_normal((50, 3))
    t = prior.to_target(z)
    for j, dist in enumerate(dists):
        np.testing.assert_allclose(t[:, j], dist.ppf(stats.norm.cdf(z[:, j])))
    assert t.dtype == np.float64
    assert prior.to_target(z.astype(np.float32)).dtype == np.float32


def test_sample_draws_from_the_target():
    rng = np.random.default_rng(0)
    draws = resolve_prior([stats.gamma(0.7), stats.beta(2, 5)]).sample(4000, 2, rng)
    ks = marginal_ks(draws, [stats.gamma(0.7), stats.beta(2, 5)])
    assert np.all(ks.pvalue > 1e-3)
    wrong = marginal_ks(draws, [stats.beta(2, 5), stats.gamma(0.7)])
    assert np.all(wrong.pvalue < 1e-6)


def test_resolve_prior_errors():
    with pytest.raises(ValueError, match="list of 3 distributions but n_components=2"):
        resolve_prior([stats.expon()] * 3, 2)
    with pytest.raises(ValueError, match="discrete"):
        resolve_prior(stats.poisson(3))
    with pytest.raises(ValueError, match="item 1"):
        resolve_prior([stats.expon(), "gaussian"])
    with pytest.raises(ValueError, match="empty list"):
        resolve_prior([])
    with pytest.raises(ValueError, match=r"\(forward, inverse\) pair"):
        resolve_prior((np.exp,))
    with pytest.raises(ValueError, match="got 'cauchy'"):
        resolve_prior("cauchy")
    with pytest.raises(TypeError, match="must be callable"):
        FlowPrior(np.exp, 3)


def test_estimator_rejects_bad_priors_clearly():
    X = np.random.default_rng(0).standard_normal((40, 3))
    est = NoiseInjectedInfoMax(prior=[stats.expon()] * 3, max_epochs=1)
    with pytest.raises(ValueError, match="one distribution per component"):
        est.fit(X)
    with pytest.raises(ValueError, match="'prior' parameter of"):
        NoiseInjectedInfoMax(prior=3, max_epochs=1).fit(X)


# ---------------------------------------------------------- through the estimator
SMALL = dict(hidden_layer_sizes=(16,), max_epochs=2)


@pytest.fixture(scope="module")
def gauss_small(synthetic):
    """A small Gaussian fit on the first 500 rows, the reference for the targets."""
    return _fit(synthetic[:500], "gaussian", **SMALL)


# Two-epoch fits: whether MI was found is not what this test checks (the
# gauss_small fixture's fit included).
@pytest.mark.filterwarnings(
    "ignore:the final MI estimate is negative:sklearn.exceptions.ConvergenceWarning"
)
def test_targets_only_relabel_the_gaussian_latents(synthetic, gauss_small):
    """Training runs on the base: same seed, same encoder, mapped latents."""
    X, gauss = synthetic[:500], gauss_small
    dists = [stats.expon(), stats.laplace()]
    est = _fit(X, dists, **SMALL)
    Zg = gauss.transform(X)
    np.testing.assert_allclose(
        est.transform(X), resolve_prior(dists).to_target(Zg), rtol=1e-6
    )
    assert est.score(X) == pytest.approx(gauss.score(X), rel=1e-6)
    s = est.sample(200, random_state=3)
    np.testing.assert_allclose(
        s, resolve_prior(dists).to_target(gauss.sample(200, random_state=3))
    )
    assert np.all(s[:, 0] > 0)
    assert est.get_feature_names_out().tolist() == [
        "noiseinjectedinfomax0",
        "noiseinjectedinfomax1",
    ]


@pytest.fixture(scope="module")
def expon_laplace(synthetic):
    return _fit(synthetic, [stats.expon(), stats.laplace(loc=1.0, scale=2.0)])


@pytest.fixture(scope="module")
def beta_fit(synthetic):
    return _fit(synthetic, stats.beta(2, 5))


def test_exponential_and_laplace_targets_are_matched(synthetic, expon_laplace):
    target = expon_laplace.prior
    Z = expon_laplace.transform(synthetic)
    assert np.all(Z[:, 0] >= 0)
    ks = marginal_ks(Z, target)
    assert np.all(ks.statistic < 0.05), ks
    # The same latents are far from a wrong target: the check can fail.
    swapped = marginal_ks(Z, [stats.laplace(loc=1.0, scale=2.0), stats.expon()])
    assert np.all(swapped.statistic > 0.2), swapped


def test_beta_target_is_matched(synthetic, beta_fit):
    Z = beta_fit.transform(synthetic)
    assert np.all((Z >= 0) & (Z <= 1))
    ks = marginal_ks(Z, stats.beta(2, 5))
    assert np.all(ks.statistic < 0.05), ks
    assert np.all(marginal_ks(Z, stats.beta(5, 2)).statistic > 0.3)
    # An untrained encoder is far from the target.
    raw = _fit(synthetic, stats.beta(2, 5), max_epochs=1, learning_rate=1e-6)
    assert marginal_ks(raw.transform(synthetic), stats.beta(2, 5)).statistic.max() > (
        2 * ks.statistic.max()
    )


class _Affine(nn.Module):
    """A tiny invertible 'flow': z -> z * exp(s) + b, with an inverse method."""

    def __init__(self, d):
        super().__init__()
        self.s = nn.Parameter(torch.tensor([0.5, -1.0][:d]))
        self.b = nn.Parameter(torch.tensor([3.0, -2.0][:d]))

    def forward(self, z):
        return z * self.s.exp() + self.b

    def inverse(self, t):
        return (t - self.b) * (-self.s).exp()


# Two-epoch fits: whether MI was found is not what this test checks.
@pytest.mark.filterwarnings(
    "ignore:the final MI estimate is negative:sklearn.exceptions.ConvergenceWarning"
)
@pytest.mark.parametrize(
    "make",
    [
        lambda: _Affine(2),
        lambda: FlowPrior(np.sinh, np.arcsinh),
        lambda: (np.sinh, np.arcsinh),
    ],
    ids=["module-with-inverse", "FlowPrior", "tuple"],
)
def test_flow_priors(synthetic, gauss_small, make):
    X = synthetic[:500]
    prior = make()
    est = _fit(X, prior, **SMALL)
    flow = resolve_prior(prior)
    assert isinstance(flow, FlowPrior)
    Zg = gauss_small.transform(X)
    Z = est.transform(X)
    np.testing.assert_allclose(Z, flow.to_target(Zg), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(flow.from_target(Z), Zg, rtol=1e-4, atol=1e-5)
    assert est.transform(X.astype(np.float32)).dtype == np.float32
    assert est.sample(7, random_state=0).shape == (7, 2)
    # clone deep-copies the prior (a module is copied, not shared) and refits.
    cloned = clone(est)
    assert type(cloned.prior) is type(prior)
    np.testing.assert_allclose(cloned.fit(X).transform(X), Z, rtol=1e-5, atol=1e-6)


def test_module_flow_keeps_its_dtype_and_shape_checks():
    flow = FlowPrior(nn.Identity(), nn.Identity())
    z = np.zeros((3, 2), dtype=np.float32)
    assert flow.to_target(z).dtype == np.float32
    bad = FlowPrior(lambda z: z[:, :1], lambda t: t)
    with pytest.raises(ValueError, match="keep the shape"):
        bad.to_target(np.zeros((3, 2)))


def test_clone_and_get_params_keep_scipy_priors():
    dists = [stats.expon(scale=2.0), stats.beta(2, 5)]
    est = NoiseInjectedInfoMax(prior=dists)
    assert est.get_params()["prior"] is dists
    cloned = clone(est)
    assert isinstance(cloned.prior, list) and cloned.prior is not dists
    assert resolve_prior(cloned.prior) == resolve_prior(dists)
    assert "prior" in repr(est)


def test_prior_config_round_trip():
    for value in ["gaussian", "uniform", stats.expon(scale=2.0), list(DISTS.values())]:
        cfg = prior_to_config(value)
        back = prior_from_config(cfg)
        assert resolve_prior(back) == resolve_prior(value)
    assert prior_from_config(prior_to_config(Prior("uniform"))) == Prior("uniform")
    for value in [FlowPrior(np.exp, np.log), (np.exp, np.log)]:
        with pytest.raises(TypeError, match="joblib or pickle"):
            prior_to_config(value)
    with pytest.raises(ValueError, match="not a scipy.stats continuous"):
        prior_from_config({"kind": "scipy", "dist": {"name": "__class__"}})
    with pytest.raises(ValueError, match="not a scipy.stats continuous"):
        prior_from_config({"kind": "scipy", "dist": {"name": "poisson"}})


def test_builtin_logpdf_and_marginal_cdf():
    t = np.array([[0.0, 1.0], [2.0, -1.0]])
    np.testing.assert_allclose(Prior("gaussian").logpdf(t), stats.norm.logpdf(t).sum(1))
    np.testing.assert_allclose(
        resolve_prior(stats.expon()).logpdf(np.abs(t)),
        stats.expon.logpdf(np.abs(t)).sum(1),
    )
    assert Prior("uniform").logpdf(np.array([[0.5, 2.0]]))[0] == -np.inf
    np.testing.assert_allclose(Prior("gaussian").marginal_cdf(t), stats.norm.cdf(t))


@pytest.mark.parametrize(
    "prior",
    [stats.beta(-1, 2), stats.norm(scale=-1), stats.expon(scale=0)],
    ids=["beta(-1,2)", "norm(scale=-1)", "expon(scale=0)"],
)
def test_invalid_scipy_prior_is_refused_before_training(prior):
    X = np.random.default_rng(0).standard_normal((100, 5))
    small = dict(hidden_layer_sizes=(16,), max_epochs=2, random_state=0, device="cpu")
    epochs = []
    est = NoiseInjectedInfoMax(
        prior=prior, callbacks=[lambda e, logs: epochs.append(e)], **small
    )
    with pytest.raises(ValueError, match="invalid parameters"):
        est.fit(X)
    assert epochs == []  # refused before any training
    assert not hasattr(est, "encoder_")
    with pytest.raises(ValueError, match="invalid parameters"):
        NoiseInjectedInfoMax(prior=[stats.norm(), prior], **small).fit(X)
