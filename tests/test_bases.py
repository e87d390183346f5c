"""The base distributions (``skdim_dm._core.bases``): capacity and noise level
convert exactly and refuse what they cannot represent, sampling, CDF and probit
agree, and code asks a base object rather than comparing names."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from skdim_dm import capacity_to_noise_level, noise_level_to_capacity
from skdim_dm._core.bases import BASES, GaussianBase, UniformBase, get_base
from skdim_dm._core.channels import GaussianChannel, UniformChannel

priors = st.sampled_from(["gaussian", "uniform"])
dims = st.integers(1, 64)


@given(noise=st.floats(1e-4, 1e3), d=dims, prior=priors)
def test_capacity_round_trip(noise, d, prior):
    c = noise_level_to_capacity(noise, d, prior)
    assert c > 0
    assert capacity_to_noise_level(c, d, prior) == pytest.approx(noise, rel=1e-9)


@given(noise=st.floats(1e-3, 1e2), d=dims, prior=priors)
def test_capacity_matches_paper_formulas(noise, d, prior):
    c = noise_level_to_capacity(noise, d, prior)
    if prior == "gaussian":
        expected = d / 2 * math.log(1 + 1 / noise**2)
    else:
        expected = d * math.log(1 + 1 / (2 * noise))
    assert c == pytest.approx(expected, rel=1e-9)
    # both channels: capacity is -log p per component
    channel = (GaussianChannel if prior == "gaussian" else UniformChannel)(noise)
    assert c == pytest.approx(-d * math.log(channel.p), rel=1e-9)


@pytest.mark.parametrize(
    "call",
    [
        lambda: noise_level_to_capacity(1e300, 2),
        lambda: noise_level_to_capacity(0.5, 0),
        lambda: capacity_to_noise_level(-1.0, 2),
        lambda: capacity_to_noise_level(2.0, 0),
        lambda: capacity_to_noise_level(1e5, 2),
        lambda: noise_level_to_capacity(1e-320, 2, "uniform"),
    ],
)
def test_capacity_helpers_raise_value_error_at_extremes(call):
    with pytest.raises(ValueError):
        call()


def test_capacity_helpers_stay_finite_for_tiny_noise():
    # 0.5 d log(1 + 1/s^2) for s = 1e-200: s * s underflows, the capacity doesn't.
    assert noise_level_to_capacity(1e-200, 2) == pytest.approx(2 * 200 * np.log(10))


@pytest.mark.parametrize("name", ["gaussian", "uniform"])
def test_a_base_is_one_object_per_name_through_copies_and_pickles(name):
    import copy
    import pickle

    base = get_base(name)
    assert base is BASES[name] and get_base(base) is base
    assert pickle.loads(pickle.dumps(base)) is base
    assert copy.deepcopy(base) is base
    with pytest.raises(ValueError, match=r"one of \('gaussian', 'uniform'\)"):
        get_base("laplace")


@pytest.mark.parametrize("base", [GaussianBase(), UniformBase()], ids=repr)
def test_samples_have_the_bases_moments_and_map_onto_the_standard_normal(base):
    rng = np.random.default_rng(0)
    z = base.sample(rng, (100_000, 2))
    assert z.mean() == pytest.approx(base.mean, abs=0.01)
    assert z.std() == pytest.approx(base.std, rel=0.01)
    # The probit of the CDF is to_gaussian, and it sends the base to N(0, 1).
    g = base.to_gaussian(z)
    np.testing.assert_allclose(g, torch.special.ndtri(torch.as_tensor(base.cdf(z))))
    assert g.mean() == pytest.approx(0.0, abs=0.02)
    assert g.std() == pytest.approx(1.0, rel=0.02)
    assert base.logpdf(z).shape == (100_000,) and np.isfinite(base.logpdf(z)).all()


def test_the_uniform_base_is_bounded_and_clips_its_probit():
    base = get_base("uniform")
    outside = np.array([[0.5, 1.5], [-0.1, 0.5], [0.2, 0.3]])
    np.testing.assert_array_equal(base.logpdf(outside), [-np.inf, -np.inf, 0.0])
    ends = base.to_gaussian(np.array([[0.0, 1.0]]))
    assert np.isfinite(ends).all() and ends[0, 0] == -ends[0, 1] < -5


def test_each_base_brings_its_channel_and_normalization():
    gauss, unif = get_base("gaussian"), get_base("uniform")
    assert isinstance(gauss.channel(0.5), GaussianChannel)
    assert isinstance(unif.channel(0.5), UniformChannel)
    assert gauss.bounds_kl and gauss.gaussian and not unif.bounds_kl
    assert (
        type(gauss.normalization(3, whiten=True)).__name__ == "WhiteningNormalization"
    )
    assert type(gauss.normalization(3)).__name__ == "BatchNormalization"
    with pytest.raises(ValueError, match="whiten=True needs the Gaussian prior"):
        unif.normalization(3, whiten=True)


def test_auto_capacity_stays_within_what_infonce_can_measure():
    gauss = get_base("gaussian")
    # Joint: one bound, capped at half of log(batch_size).
    assert gauss.auto_capacity(2, 512) == pytest.approx(2 * 1.15)
    assert gauss.auto_capacity(50, 512) == pytest.approx(0.5 * math.log(512))
    # Sliced: one bound per component, each capped on its own.
    assert gauss.auto_capacity(50, 512, sliced=True) == pytest.approx(50 * 0.3)
    # The noise level that gives a capacity gives that capacity back.
    c = gauss.auto_capacity(4, 256)
    assert gauss.capacity(gauss.noise_level(c, 4), 4) == pytest.approx(c)
