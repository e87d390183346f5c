"""Objectives and the training loss (``skdim_dm._core.objectives``): what each
objective tells the planner, the loss as minus the bound plus the weighted
terms, and an objective registered from this file alone, used by name through
``NoiseInjectedInfoMax(objective=...)``, saved and loaded."""

import math

import numpy as np
import pytest
import torch

from skdim_dm import NoiseInjectedInfoMax
from skdim_dm._core.bases import get_base
from skdim_dm._core.networks import build_networks
from skdim_dm._core.objectives import (
    OBJECTIVES,
    JointObjective,
    Loss,
    get_objective,
    register_objective,
)


def test_the_objectives_tell_the_planner_their_bounds_capacity_and_needs():
    gaussian = get_base("gaussian")
    joint, sliced = get_objective("joint"), get_objective("sliced")
    # One bound in all, or one per component, each capped by log(batch_size).
    assert joint.n_bounds(8) == 1 and sliced.n_bounds(8) == 8
    assert joint.auto_capacity(gaussian, 8, 256) == pytest.approx(0.5 * math.log(256))
    assert sliced.auto_capacity(gaussian, 8, 256) == pytest.approx(0.3 * 8)
    joint.check_base(gaussian=False)
    with pytest.raises(ValueError, match="objective='sliced' needs the Gaussian"):
        sliced.check_base(gaussian=False)
    with pytest.raises(ValueError, match="needs one of the critics"):
        sliced.check_critic("dense")
    with pytest.raises(ValueError, match=r"unknown objective 'nope'; choose from \["):
        get_objective("nope")


def test_the_loss_is_minus_the_bound_plus_the_weighted_terms():
    nets = build_networks(
        6, 3, noise_level=0.5, hidden_layer_sizes=(8,), objective="sliced"
    )
    latents = nets.encoder(
        torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    )

    def loss_of(weights):
        generator = torch.Generator().manual_seed(1)
        return Loss("sliced", weights)(nets.critic, nets.channel, latents, generator)

    loss, mi, terms = loss_of({"match": 2.0, "radial": 0.5})
    assert list(terms) == ["match", "radial"]
    assert all(value > 0 for value in terms.values())
    assert torch.allclose(loss, -mi + 2.0 * terms["match"] + 0.5 * terms["radial"])
    # The bound draws from the generator before the terms do: the same bound
    # with the terms off, and terms weighted 0 are off.
    plain_loss, plain_mi, plain_terms = loss_of({"match": 0.0})
    assert plain_terms == {} and torch.equal(plain_mi, mi)
    assert torch.equal(plain_loss, -mi)
    with pytest.raises(ValueError, match=r"unknown loss terms \['matching'\]"):
        Loss("joint", {"matching": 1.0})


class _DoubledBound(JointObjective):
    """A toy objective: twice the joint bound."""

    name = "test-doubled-bound"

    def bound(self, critic, y, e):
        return 2.0 * super().bound(critic, y, e)


@pytest.fixture
def doubled_bound():
    register_objective(_DoubledBound)
    try:
        yield _DoubledBound.name
    finally:
        OBJECTIVES.pop(_DoubledBound.name)


def test_an_objective_registered_from_a_test_is_usable_by_name(doubled_bound, tmp_path):
    X = np.random.default_rng(0).standard_normal((128, 5))
    X[:, 1] += X[:, 0]
    kw = dict(
        hidden_layer_sizes=(8,),
        batch_size=32,
        max_steps=6,
        device="cpu",
        n_threads=1,
        random_state=0,
    )
    joint = NoiseInjectedInfoMax(objective="joint", **kw).fit(X)
    toy = NoiseInjectedInfoMax(objective=doubled_bound, **kw).fit(X)
    # Unknown to the "auto" tables: it takes the joint configuration's settings.
    assert toy.settings_ == {**joint.settings_, "objective": doubled_bound}
    # Trained and estimated through its bound: Adam's steps do not depend on the
    # gradient's scale (but for its eps), so it trains as the joint objective
    # does and every estimate is twice the joint one's.
    assert [h["mi"] for h in toy.history_] == pytest.approx(
        [2.0 * h["mi"] for h in joint.history_], rel=1e-3
    )
    assert toy.mutual_info_ == pytest.approx(2.0 * joint.mutual_info_, rel=1e-3)
    # Saved by name and rebuilt from the registry.
    loaded = NoiseInjectedInfoMax.load(toy.save(tmp_path / "toy"))
    assert loaded.settings_["objective"] == doubled_bound
    np.testing.assert_array_equal(loaded.transform(X), toy.transform(X))


def test_an_unregistered_objective_is_refused_before_training():
    X = np.random.default_rng(0).standard_normal((40, 3))
    with pytest.raises(ValueError, match="'objective' parameter") as info:
        NoiseInjectedInfoMax(objective="test-doubled-bound").fit(X)
    assert "'joint'" in str(info.value) and "'sliced'" in str(info.value)
