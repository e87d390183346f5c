"""Encoders and the networks of a fit (``skdim_dm._core.networks``): built from
plain parameters, deterministically from a seed and without allocating on
``meta``; ``network_params`` reads an estimator's parameters for them; the
encoder's calibration. The critics are tested in test_critics.py."""

import pytest
import torch
from torch import nn

from skdim_dm._core.channels import WhiteningNormalization
from skdim_dm._core.critics import SlicedCritic, StudentCritic
from skdim_dm._core.networks import build_networks, conv_input_shape, network_params

SMALL = dict(noise_level=0.5, hidden_layer_sizes=(8,))


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_the_seed_alone_decides_the_initial_weights():
    torch_state = torch.get_rng_state()
    a = build_networks(10, 3, critic="separable", seed=4, **SMALL)
    b = build_networks(10, 3, critic="separable", seed=4, **SMALL)
    c = build_networks(10, 3, critic="separable", seed=5, **SMALL)
    for role in ("encoder", "critic"):
        sa, sb, sc = (_state(getattr(n, role)) for n in (a, b, c))
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    # Drawn from a local generator: torch's global one is not read or moved.
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_a_meta_build_allocates_nothing_and_has_the_real_shapes():
    params = dict(critic="dense", encoder="conv", **SMALL)
    meta = build_networks(64, 2, device="meta", **params)
    real = build_networks(64, 2, **params)
    for role in ("encoder", "critic"):
        m, r = getattr(meta, role).state_dict(), getattr(real, role).state_dict()
        assert m.keys() == r.keys()
        assert all(t.device.type == "meta" for t in m.values())
        assert all(m[k].shape == r[k].shape and m[k].dtype == r[k].dtype for k in m)


def test_network_params_reads_parameters_and_the_resolved_settings():
    params = dict(
        n_components=3,
        encoder="mlp",
        hidden_layer_sizes=[16, 8],
        input_shape=None,
        critic="student",
        objective="auto",  # what the estimator holds: not read
        whiten="auto",
        batch_size=32,  # not a network parameter: ignored
    )
    kwargs = network_params(
        params, {"objective": "sliced", "whiten": True}, 12, "gaussian", 0.4
    )
    assert kwargs == dict(
        n_features=12,
        n_components=3,
        base="gaussian",
        noise_level=0.4,
        encoder="mlp",
        hidden_layer_sizes=(16, 8),
        input_shape=None,
        critic="student",
        objective="sliced",
        whiten=True,
    )
    nets = build_networks(**kwargs)
    assert isinstance(nets.critic, SlicedCritic)
    assert isinstance(nets.critic.kernel, StudentCritic)
    assert isinstance(nets.encoder.norm, WhiteningNormalization)
    conv = network_params(
        {**params, "encoder": "conv", "input_shape": [1.0, 4, 4]},
        {"objective": "joint", "whiten": False},
        16,
        "uniform",
        0.1,
    )
    assert conv["input_shape"] == (1, 4, 4) and conv["objective"] == "joint"


@pytest.mark.parametrize(
    "params, match",
    [
        ({"critic": "nope"}, "unknown critic 'nope'; choose from"),
        ({"objective": "sliced", "critic": "dense"}, "needs one of the critics"),
        ({"objective": "auto"}, "unknown objective 'auto'; choose from"),
        ({"encoder": "rnn"}, "encoder must be 'mlp', 'conv'"),
        ({"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes entries"),
        ({"critic": "student", "base": "uniform"}, "needs the Gaussian prior"),
    ],
)
def test_bad_choices_are_refused_by_name(params, match):
    with pytest.raises(ValueError, match=match):
        build_networks(10, 2, **{**SMALL, **params})


def test_the_conv_input_shape_is_inferred_or_checked():
    assert conv_input_shape(None, 64) == (1, 8, 8)
    assert conv_input_shape((3, 4, 2), 24) == (3, 4, 2)
    with pytest.raises(ValueError, match="not a square image"):
        conv_input_shape(None, 60)
    with pytest.raises(ValueError, match="holds 32 values but X has 24"):
        conv_input_shape((2, 4, 4), 24)
    with pytest.raises(ValueError, match=r"\(channels, height, width\)"):
        conv_input_shape((4, 6), 24)


def test_a_user_module_is_copied_and_given_a_head_to_n_components():
    backbone = nn.Sequential(nn.Linear(10, 7), nn.Tanh())
    before = _state(backbone)
    nets = build_networks(10, 3, encoder=backbone, **SMALL)
    assert nets.encoder.backbone is not backbone
    assert isinstance(nets.encoder.head, nn.Linear)
    assert nets.encoder.head.in_features == 7 and nets.encoder.head.out_features == 3
    nets.encoder(torch.randn(5, 10)).sum().backward()
    with torch.no_grad():
        for p in nets.encoder.parameters():
            p.add_(1.0)
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())
    same_width = build_networks(10, 7, encoder=backbone, **SMALL)
    assert isinstance(same_width.encoder.head, nn.Identity)


def test_calibrate_sets_the_inference_statistics_of_the_whole_input():
    nets = build_networks(5, 2, seed=0, **SMALL)
    X = 3.0 + 2.0 * torch.randn(300, 5, generator=torch.Generator().manual_seed(1))
    nets.encoder.calibrate(X, batch_size=64)
    assert not nets.encoder.training
    with torch.no_grad():
        Z = nets.encoder(X)
    # Batch-normalized latents: the whole input's mean 0 and variance 1.
    assert Z.mean(0).abs().max() < 1e-4
    assert (Z.var(0, unbiased=False) - 1).abs().max() < 1e-3
