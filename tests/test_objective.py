"""Property tests for the pure torch pieces: channels, capacity, InfoNCE."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skdim_dm import capacity_to_noise_level, noise_level_to_capacity
from skdim_dm._objective import GaussianChannel, UniformChannel, infonce

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


@settings(max_examples=25, deadline=None)
@given(noise=st.floats(0.01, 10.0), seed=st.integers(0, 2**31))
def test_gaussian_channel_keeps_unit_variance_and_adds_sigma(noise, seed):
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(200_000, 1, generator=g, dtype=torch.float64)
    ch = GaussianChannel(noise)
    y = ch(e, g)
    assert y.var().item() == pytest.approx(1.0, abs=0.02)
    # y / sqrt(1 - p^2) = e + Z with Z ~ N(0, sigma^2)
    z = y / math.sqrt(1 - ch.p**2) - e
    assert z.std().item() == pytest.approx(noise, rel=0.02)


@settings(max_examples=25, deadline=None)
@given(noise=st.floats(0.01, 10.0), seed=st.integers(0, 2**31))
def test_uniform_channel_stays_in_cube_with_half_width_eps(noise, seed):
    g = torch.Generator().manual_seed(seed)
    e = torch.rand(100_000, 2, generator=g, dtype=torch.float64)
    ch = UniformChannel(noise)
    y = ch(e, g)
    assert y.min() >= 0 and y.max() <= 1
    z = y / (1 - ch.p) - e  # = U([0, 2 eps]): width 2 eps
    assert (z.max() - z.min()).item() == pytest.approx(2 * noise, rel=0.01)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 64), scale=st.floats(0.0, 1e4), seed=st.integers(0, 2**31))
def test_infonce_never_exceeds_log_n(n, scale, seed):
    g = torch.Generator().manual_seed(seed)
    scores = scale * torch.randn(n, n, generator=g, dtype=torch.float64)
    assert infonce(scores).item() <= math.log(n) + 1e-9


def test_infonce_limits():
    n = 16
    assert infonce(torch.zeros(n, n)).item() == pytest.approx(0.0, abs=1e-6)
    assert infonce(1e4 * torch.eye(n)).item() == pytest.approx(math.log(n), abs=1e-6)


def test_analytic_critic_is_the_log_density_ratio():
    """T(y, e) differs from log N(y; rho e, p^2) - log N(y; 0, 1) by a constant."""
    ch = GaussianChannel(0.5)
    g = torch.Generator().manual_seed(0)
    y = torch.randn(5, 3, generator=g, dtype=torch.float64)
    e = torch.randn(5, 3, generator=g, dtype=torch.float64)
    rho, p = math.sqrt(1 - ch.p**2), ch.p
    exact = (
        -((y[:, None] - rho * e[None]) ** 2).sum(-1) / (2 * p**2)
        + (y[:, None] ** 2).sum(-1) / 2
    )
    diff = (ch.log_density_ratio(y, e) - exact).numpy()
    np.testing.assert_allclose(diff, 0.0, atol=1e-9)


def test_adaptive_ratio_reduces_to_exact_when_views_agree():
    ch = GaussianChannel(0.3)
    g = torch.Generator().manual_seed(0)
    y = torch.randn(6, 2, generator=g, dtype=torch.float64)
    e = torch.randn(6, 2, generator=g, dtype=torch.float64)
    ones = torch.ones(2, dtype=torch.float64)
    np.testing.assert_allclose(
        ch.log_density_ratio(y, e, corr=ones).numpy(),
        ch.log_density_ratio(y, e).numpy(),
        atol=1e-9,
    )


def test_adaptive_ratio_is_the_linear_gaussian_channel():
    """With view correlation c: log N(y; rho c e, 1 - rho^2 c^2) - log N(y; 0, 1)."""
    ch = GaussianChannel(0.2)
    g = torch.Generator().manual_seed(1)
    y = torch.randn(5, 3, generator=g, dtype=torch.float64)
    e = torch.randn(5, 3, generator=g, dtype=torch.float64)
    c = torch.tensor([0.9, 0.5, 0.0], dtype=torch.float64)
    rho = math.sqrt(1 - ch.p**2)
    v = 1 - rho**2 * c**2
    exact = (
        -(((y[:, None] - rho * c * e[None]) ** 2) / (2 * v)).sum(-1)
        + (y[:, None] ** 2).sum(-1) / 2
        - 0.5 * torch.log(v).sum()
    )
    diff = (ch.log_density_ratio(y, e, corr=c) - exact).numpy()
    np.testing.assert_allclose(diff, diff[0, 0], atol=1e-9)  # equal up to a constant


# ---------------------------------------------------------------- fused sliced bounds
@pytest.mark.parametrize("scale", [1.0, 4.0])
@pytest.mark.parametrize("kernel", ["gaussian", "student"])
def test_fused_sliced_bound_equals_infonce_over_the_kernel_scores(kernel, scale):
    """Value and gradient of the fused bound are those of ``infonce`` over the
    kernel's (slices, N, N) scores, which autograd differentiates."""
    from skdim_dm._networks import AnalyticCritic, StudentCritic
    from skdim_dm._objective import sliced_gaussian_infonce, sliced_student_infonce

    gen = torch.Generator().manual_seed(3)
    y = torch.randn(3, 9, generator=gen, dtype=torch.float64, requires_grad=True)
    e = torch.randn(3, 9, generator=gen, dtype=torch.float64, requires_grad=True)
    channel = GaussianChannel(0.7)
    if kernel == "gaussian":
        critic = AnalyticCritic(1, channel)
        fused = sliced_gaussian_infonce(y, e, channel.p, scale)
    else:
        critic = StudentCritic(1, channel)
        fused = sliced_student_infonce(y, e, channel.p, critic.dof, scale)
    reference = infonce(scale * critic(y.unsqueeze(-1), e.unsqueeze(-1)))
    torch.testing.assert_close(fused, reference)
    g_fused = torch.autograd.grad(fused, (y, e))
    g_ref = torch.autograd.grad(reference, (y, e))
    for a, b in zip(g_fused, g_ref):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kernel", ["gaussian", "student"])
def test_sliced_critic_bound_takes_the_fused_route_with_the_same_value(kernel):
    from skdim_dm._networks import AnalyticCritic, SlicedCritic, StudentCritic

    kind = AnalyticCritic if kernel == "gaussian" else StudentCritic
    critic = SlicedCritic(5, GaussianChannel(0.8), kind)
    gen = torch.Generator().manual_seed(0)
    e = torch.randn(32, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(32, 5, generator=gen, dtype=torch.float64)
    critic.observe(e, e, gen)
    torch.testing.assert_close(critic.bound(y, e), infonce(critic(y, e)))


def test_epps_pulley_is_near_zero_for_normal_data_and_grows_with_departure():
    from skdim_dm._objective import epps_pulley

    gen = torch.Generator().manual_seed(0)
    normal = torch.randn(4096, 4, generator=gen, dtype=torch.float64)
    exact = float(epps_pulley(normal))
    bimodal = torch.sign(normal) * (0.3 + 0.1 * normal.abs())
    bimodal = bimodal / bimodal.std(0)
    assert exact < 1e-3
    assert float(epps_pulley(bimodal)) > 20 * exact
    assert float(epps_pulley(1.5 * normal)) > 20 * exact


def test_radial_normal_score_is_standard_normal_for_gaussian_rows():
    from scipy import stats

    from skdim_dm._objective import radial_normal_score

    gen = torch.Generator().manual_seed(0)
    for d in (3, 8, 64):
        z = torch.randn(20000, d, generator=gen, dtype=torch.float64)
        u = radial_normal_score(z).squeeze(1).numpy()
        assert stats.kstest(u, "norm").statistic < 0.015, d


def test_radial_penalty_sees_a_scale_mixture_that_projections_hardly_see():
    from skdim_dm._objective import epps_pulley
    from skdim_dm._training import radial_penalty

    gen = torch.Generator().manual_seed(0)
    normal = torch.randn(4096, 8, generator=gen, dtype=torch.float64)
    # Each row scaled by 0.7 or 1.25: a unit-variance scale mixture whose
    # one-dimensional projections are only mildly heavy-tailed.
    scale = torch.where(torch.rand(4096, 1, generator=gen) < 0.5, 0.7, 1.25)
    mixture = normal * scale / (scale**2).mean().sqrt()
    exact = float(radial_penalty(normal))
    assert exact < 0.01
    assert float(radial_penalty(mixture)) > 20 * exact
    # The slices' statistic moves far less than the radial one.
    ratio_radial = float(radial_penalty(mixture)) / exact
    ratio_slices = float(epps_pulley(mixture)) / float(epps_pulley(normal))
    assert ratio_radial > 5 * ratio_slices
