"""partial_fit is transactional: every call works, and a call that fails or is
interrupted leaves the estimator exactly as it was before it."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skdim_dm import Gaussianizer, NoiseInjectedInfoMax

KW = dict(hidden_layer_sizes=(16,), batch_size=64, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:300]


def _state(est) -> dict:
    """Everything the estimator holds, as comparable copies."""
    out = {}
    for name, value in vars(est).items():
        if isinstance(value, torch.nn.Module):
            value = {k: v.detach().clone() for k, v in value.state_dict().items()}
        elif isinstance(value, np.ndarray):
            value = value.copy()
        elif isinstance(value, (list, dict)):
            value = repr(value)
        out[name] = value
    return out


def _assert_same_state(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        x, y = a[name], b[name]
        if isinstance(x, dict):
            assert x.keys() == y.keys(), name
            assert all(torch.equal(x[k], y[k]) for k in x), name
        elif isinstance(x, np.ndarray):
            assert np.array_equal(x, y), name
        else:
            assert x is y or x == y, name


def test_partial_fit_refits_the_gaussianizer_at_every_call(digits):
    est = NoiseInjectedInfoMax(gaussianize=2, **KW)
    maps = []
    for k, chunk in enumerate(np.array_split(digits, 3)):
        est.partial_fit(chunk)
        assert est.n_iter_ == k + 1 and est.n_samples_seen_ == (k + 1) * 100
        assert isinstance(est.gaussianizer_, Gaussianizer)
        maps.append(est.gaussianizer_)
    assert maps[0] is not maps[1] and maps[1] is not maps[2]
    Z = est.transform(digits)
    assert Z.shape == (300, 2) and np.isfinite(Z).all()
    # Refitted on the latest call's rows, through the latest encoder.
    plain = copy.deepcopy(est)
    del plain.gaussianizer_
    latest = plain.transform(digits[200:].astype(np.float32)).astype(np.float64)
    seed = est.gaussianizer_.random_state
    refit = Gaussianizer(2, random_state=seed).fit(latest)
    assert np.allclose(refit.transform(plain.transform(digits)), Z, atol=1e-3)


def test_a_partial_fit_that_fails_after_training_leaves_the_estimator_as_it_was(
    digits, monkeypatch
):
    est = NoiseInjectedInfoMax(gaussianize=2, **KW).partial_fit(digits[:150])
    before = _state(est)

    def broken(self, X, y=None):
        raise ValueError("injected failure")

    monkeypatch.setattr(Gaussianizer, "fit", broken)
    with pytest.raises(ValueError, match="injected failure"):
        est.partial_fit(digits[150:])
    _assert_same_state(_state(est), before)


def test_a_partial_fit_that_fails_while_training_leaves_the_estimator_as_it_was(
    digits,
):
    est = NoiseInjectedInfoMax(**KW).partial_fit(digits[:150])
    before = _state(est)

    def fail(epoch, logs):
        raise RuntimeError("injected failure")

    est.set_params(callbacks=[fail])
    with pytest.raises(RuntimeError, match="injected failure"):
        est.partial_fit(digits[150:])
    est.set_params(callbacks=None)
    _assert_same_state(_state(est), before)


def _interrupt(epoch, logs):
    raise KeyboardInterrupt


def test_an_interrupted_partial_fit_propagates_and_leaves_the_estimator_as_it_was(
    digits,
):
    est = NoiseInjectedInfoMax(**KW).partial_fit(digits[:150])
    before = _state(est)
    est.set_params(callbacks=[_interrupt])
    with pytest.raises(KeyboardInterrupt):
        est.partial_fit(digits[150:])
    est.set_params(callbacks=None)
    _assert_same_state(_state(est), before)
    # The next call draws the seeds of the interrupted one, as if it never ran.
    after = est.partial_fit(digits[150:]).transform(digits)
    fresh = NoiseInjectedInfoMax(**KW).partial_fit(digits[:150])
    assert np.array_equal(fresh.partial_fit(digits[150:]).transform(digits), after)


def test_an_interrupted_first_partial_fit_leaves_the_estimator_unfitted(digits):
    est = NoiseInjectedInfoMax(callbacks=[_interrupt], **KW)
    with pytest.raises(KeyboardInterrupt):
        est.partial_fit(digits)
    assert not hasattr(est, "encoder_") and not hasattr(est, "n_features_in_")
