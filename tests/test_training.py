"""The training loop (``skdim_dm._core.training``): step budgets and schedules,
early stopping that restores the best weights, callbacks that stop, interrupts
and non-finite losses, the MI estimates, and Adam's state kept to resume."""

import copy
import math

import numpy as np
import pytest
import torch

from skdim_dm._core.networks import build_networks
from skdim_dm._core.training import (
    TrainConfig,
    _adam_state,
    estimate_mi,
    final_mi,
    optimizer_arrays,
    train,
)
from skdim_dm._core.views import make_views

N_FEATURES = 6


def _setup(n_rows=64, n_val=0, seed=0, critic="separable"):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n_rows + n_val, N_FEATURES, generator=gen)
    X[:, 1] += X[:, 0]  # some shared structure to find
    nets = build_networks(
        N_FEATURES, 2, noise_level=0.5, hidden_layer_sizes=(8,), critic=critic
    )
    X_val = X[n_rows:] if n_val else None
    views = make_views("gaussian", 0.2).fit(X[:n_rows], X_val)
    return nets, views


def _train(nets, views, generator=None, **config):
    config = TrainConfig(
        **{"batch_size": 16, "max_epochs": 2, "learning_rate": 1e-2, **config}
    )
    generator = generator or torch.Generator().manual_seed(1)
    return train(nets.encoder, nets.critic, nets.channel, views, config, generator)


def _weights(nets):
    return {
        f"{role}.{k}": v.detach().clone()
        for role in ("encoder", "critic")
        for k, v in getattr(nets, role).state_dict().items()
    }


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_max_steps_is_exact_and_the_cosine_schedule_anneals_to_zero():
    nets, views = _setup(n_rows=50)  # 3 batches of 16 per epoch
    result = _train(
        nets, views, max_epochs=100, max_steps=7, learning_rate_schedule="cosine"
    )
    assert result.n_steps == 7 and result.n_iter == 3
    rates = [h["learning_rate"] for h in result.history]
    assert rates == sorted(rates, reverse=True) and rates[-1] < 0.05 * 1e-2
    constant = _train(*_setup(n_rows=50), max_epochs=3)
    assert constant.n_steps == 9
    assert {h["learning_rate"] for h in constant.history} == {1e-2}


def test_resuming_from_adams_state_continues_exactly_as_one_run():
    one_run, views = _setup()
    _train(one_run, views, max_epochs=2, generator=torch.Generator().manual_seed(1))
    split, views = _setup()
    gen = torch.Generator().manual_seed(1)
    first = _train(split, views, max_epochs=1, generator=gen)
    arrays = optimizer_arrays(first.optimizer_state)
    _train(split, views, max_epochs=1, generator=gen, optimizer_state=arrays)
    assert _same(_weights(split), _weights(one_run))
    # Without the state, Adam starts afresh and the weights differ.
    fresh, views = _setup()
    gen = torch.Generator().manual_seed(1)
    _train(fresh, views, max_epochs=1, generator=gen)
    _train(fresh, views, max_epochs=1, generator=gen)
    assert not _same(_weights(fresh), _weights(one_run))


def test_adams_state_as_arrays_round_trips_and_must_fit_the_networks():
    nets, views = _setup()
    result = _train(nets, views, max_epochs=1)
    moments, steps, index = optimizer_arrays(result.optimizer_state)
    assert moments.dtype == np.float32 and steps == 4 and index.dtype == np.int64
    params = [p for m in (nets.encoder, nets.critic) for p in m.parameters()]
    optimizer = torch.optim.Adam(params)
    state = _adam_state(optimizer, (moments, steps, index))["state"]
    for i, entry in result.optimizer_state["state"].items():
        assert torch.equal(state[i]["exp_avg"], entry["exp_avg"])
        assert torch.equal(state[i]["exp_avg_sq"], entry["exp_avg_sq"])
        assert float(state[i]["step"]) == float(entry["step"])
    with pytest.raises(ValueError, match="does not fit the networks"):
        _adam_state(optimizer, (moments[:-1], steps, index))


def test_early_stopping_restores_the_weights_of_the_best_epoch():
    nets, views = _setup(n_val=32)
    seen = []

    def record(epoch, logs):
        seen.append((logs["val_mi"], _weights(nets)))

    # tol=10: no epoch after the first counts as an improvement.
    result = _train(
        nets,
        views,
        max_epochs=20,
        early_stopping=True,
        n_iter_no_change=2,
        tol=10.0,
        callbacks=[record],
    )
    assert result.stopped_by == "early_stopping" and result.n_iter == 3
    assert all("val_mi" in h for h in result.history)
    assert _same(_weights(nets), seen[0][1])
    assert not _same(_weights(nets), seen[1][1])


def test_a_callback_stops_training_and_every_callback_sees_each_epoch():
    nets, views = _setup()
    calls = []

    def stop_at_two(epoch, logs):
        calls.append(("stop", epoch))
        assert logs["encoder"] is nets.encoder and logs["critic"] is nets.critic
        return epoch == 2

    def watch(epoch, logs):
        calls.append(("watch", epoch))
        return False

    result = _train(nets, views, max_epochs=10, callbacks=[stop_at_two, watch])
    assert result.stopped_by == "callback" and result.n_iter == 2
    assert calls == [("stop", 1), ("watch", 1), ("stop", 2), ("watch", 2)]
    assert [h["epoch"] for h in result.history] == [1, 2]


def test_an_interrupt_ends_training_with_what_was_done():
    nets, views = _setup()

    def interrupt(epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    result = _train(nets, views, max_epochs=10, callbacks=[interrupt])
    assert result.interrupted and result.stopped_by == "interrupt"
    assert result.n_iter == 2 and len(result.history) == 2
    assert result.optimizer_state is not None


def test_a_non_finite_loss_raises_before_the_poisoned_step_is_taken():
    nets, views = _setup()
    views.X[:] = float("nan")

    def parameters():  # not the buffers: the forward pass updates BatchNorm's
        return {k: v.detach().clone() for k, v in nets.encoder.named_parameters()}

    before = parameters()
    with pytest.raises(FloatingPointError, match="non-finite at epoch 1"):
        _train(nets, views)
    assert _same(parameters(), before)


def test_the_matching_term_is_weighted_into_the_loss_and_logged():
    nets, views = _setup()
    result = _train(nets, views, loss_weights={"match": 3.0})
    for h in result.history:
        assert h["match"] > 0
        assert h["loss"] == pytest.approx(-h["mi"] + 3.0 * h["match"])
    plain = _train(*_setup())
    assert all("match" not in h and h["loss"] == -h["mi"] for h in plain.history)
    # The weight scales the term's gradient: twice the weight trains otherwise.
    heavier, views = _setup()
    _train(heavier, views, loss_weights={"match": 6.0})
    assert not _same(_weights(heavier), _weights(nets))


def test_mi_estimates_are_seeded_bounded_and_leave_the_modes_as_they_were():
    nets, views = _setup(n_val=32)
    nets.encoder.train()
    nets.critic.eval()
    sources = views.validation_sources()

    def estimate(seed):
        gen = torch.Generator().manual_seed(seed)
        args = (nets.encoder, nets.critic, nets.channel, views)
        return estimate_mi(*args, sources, 16, gen, objective="joint")

    assert estimate(0) == estimate(0) != estimate(1)
    assert estimate(0) <= math.log(16)
    assert nets.encoder.training and not nets.critic.training
    gen = torch.Generator().manual_seed(0)
    args = (nets.encoder, nets.critic, nets.channel, views, 16, gen)
    assert final_mi(*args, max_batches=2, objective="joint") <= math.log(16)


def test_the_final_estimate_pairs_random_rows_not_the_first_ones():
    nets, views = _setup(n_rows=64)
    asked = []
    sources = views.sources

    def spy(rows, generator):
        asked.append(rows.clone())
        return sources(rows, generator)

    views.sources = spy
    final_mi(
        nets.encoder,
        nets.critic,
        nets.channel,
        views,
        16,
        torch.Generator().manual_seed(0),
        max_batches=2,
        objective="joint",
    )
    (rows,) = asked
    assert rows.shape == (32,) and not torch.equal(rows, torch.arange(32))
    assert len(set(rows.tolist())) == 32


def test_training_changes_no_module_it_was_not_given():
    nets, views = _setup()
    other = copy.deepcopy(nets.encoder)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    _train(nets, views)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())
