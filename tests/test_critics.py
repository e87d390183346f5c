"""The critics (``skdim_dm._core.critics``): every registered critic scores all
pairs of a batch and bounds by log N; the sliced critic's rotation comes from the
step's generator; the Student-t kernel tends to the exact one."""

import math

import pytest
import torch

from skdim_dm._core.bases import get_base
from skdim_dm._core.critics import CRITICS, AnalyticCritic, SlicedCritic, StudentCritic
from skdim_dm._core.networks import build_networks

SMALL = dict(noise_level=0.5, hidden_layer_sizes=(8,))


@pytest.mark.parametrize("name", sorted(CRITICS))
def test_every_registered_critic_scores_all_pairs_and_bounds_by_log_n(name):
    nets = build_networks(6, 2, critic=name, seed=0, **SMALL)
    gen = torch.Generator().manual_seed(0)
    e = nets.encoder(torch.randn(32, 6, generator=gen))
    y = nets.channel(e, gen)
    nets.critic.observe(e, e, gen)
    assert nets.critic(y, e).shape == (32, 32)
    assert nets.critic.bound(y, e).item() <= math.log(32) + 1e-5


def test_sliced_critic_draws_its_rotation_from_the_step_generator():
    channel = get_base("gaussian").channel(0.5)
    critic = SlicedCritic(4, channel, AnalyticCritic)
    e = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    critic.observe(e, e, torch.Generator().manual_seed(1))
    first = critic(e, e)
    critic.observe(e, e, torch.Generator().manual_seed(1))
    assert torch.equal(first, critic(e, e))
    assert first.shape == (4, 32, 32)
    q = critic._rotation
    assert torch.allclose(q.T @ q, torch.eye(4), atol=1e-5)
    critic.observe(e, e, torch.Generator().manual_seed(2))
    assert not torch.equal(first, critic(e, e))


def test_student_critic_tends_to_the_exact_critic():
    channel = get_base("gaussian").channel(0.4)
    g = torch.Generator().manual_seed(0)
    y, e = (
        torch.randn(16, 3, generator=g, dtype=torch.float64),
        torch.randn(16, 3, generator=g, dtype=torch.float64),
    )
    exact = AnalyticCritic(3, channel)(y, e)
    student = StudentCritic(3, channel)
    student.dof = 1e9
    assert torch.allclose(student(y, e), exact, atol=1e-5)
    student.dof = 5.0
    heavy = student(y, e)
    # The heavy tail penalizes far pairs less than the Gaussian kernel does.
    assert (heavy - exact).max() > 1.0
