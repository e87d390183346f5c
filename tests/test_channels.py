"""The noise channels (what they add, their log density ratio) and the encoder's
whitening layer (``skdim_dm._core.channels``)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skdim_dm._core.channels import (
    GaussianChannel,
    UniformChannel,
    WhiteningNormalization,
)


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


def test_whitening_statistics_stay_float64():
    norm = WhiteningNormalization(3).float()
    assert norm.running_cov.dtype == torch.float64
    h = torch.randn(500, 3, generator=torch.Generator().manual_seed(0)) @ torch.tensor(
        [[2.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.1]]
    )
    norm.calibrate(h)
    norm.eval()
    z = norm(h.double()).numpy()
    assert np.abs(np.cov(z, rowvar=False, bias=True) - np.eye(3)).max() < 1e-9
    # Batch whitening while training: L^{-1} (h - mean), L L^T = cov + ridge I.
    norm.train()
    zt = norm(h.double()).detach().numpy()
    hn = h.double().numpy()
    hc = hn - hn.mean(0)
    cov = hc.T @ hc / len(hn)
    chol = np.linalg.cholesky(cov + norm.eps * np.trace(cov) / 3 * np.eye(3))
    np.testing.assert_allclose(zt, np.linalg.solve(chol, hc.T).T, atol=1e-10)
