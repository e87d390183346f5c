"""The terms of the training loss (``skdim_dm._core.bounds``): the InfoNCE bound
never exceeds ``log N``, the fused sliced bound has the value and gradient of
InfoNCE over the kernel's scores, and the Epps-Pulley statistic sees departures
from ``N(0, 1)``."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skdim_dm._core.bounds import infonce
from skdim_dm._core.channels import GaussianChannel


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


@pytest.mark.parametrize("scale", [1.0, 4.0])
@pytest.mark.parametrize("kernel", ["gaussian", "student"])
def test_fused_sliced_bound_equals_infonce_over_the_kernel_scores(kernel, scale):
    """Value and gradient of the fused bound are those of ``infonce`` over the
    kernel's (slices, N, N) scores, which autograd differentiates."""
    from skdim_dm._core.bounds import sliced_gaussian_infonce, sliced_student_infonce
    from skdim_dm._core.critics import AnalyticCritic, StudentCritic

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
    from skdim_dm._core.critics import AnalyticCritic, SlicedCritic, StudentCritic

    kind = AnalyticCritic if kernel == "gaussian" else StudentCritic
    critic = SlicedCritic(5, GaussianChannel(0.8), kind)
    gen = torch.Generator().manual_seed(0)
    e = torch.randn(32, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(32, 5, generator=gen, dtype=torch.float64)
    critic.observe(e, e, gen)
    torch.testing.assert_close(critic.bound(y, e), infonce(critic(y, e)))


def test_epps_pulley_is_near_zero_for_normal_data_and_grows_with_departure():
    from skdim_dm._core.bounds import epps_pulley

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

    from skdim_dm._core.bounds import radial_normal_score

    gen = torch.Generator().manual_seed(0)
    for d in (3, 8, 64):
        z = torch.randn(20000, d, generator=gen, dtype=torch.float64)
        u = radial_normal_score(z).squeeze(1).numpy()
        assert stats.kstest(u, "norm").statistic < 0.015, d


def test_radial_penalty_sees_a_scale_mixture_that_projections_hardly_see():
    from skdim_dm._core.bounds import epps_pulley
    from skdim_dm._core.objectives import radial_penalty

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
