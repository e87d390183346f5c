"""Views (``skdim_dm._core.views``): how the two inputs of a positive pair are
made. The input channel keeps standardized features at unit variance and draws
only from the generator it is given; ``make_views`` resolves ``augmentation=`` from
the ``VIEWS`` registry. The neighbor views' search is in tests/test_neighbors.py."""

import math

import pytest
import torch

from skdim_dm._core import views as core_views
from skdim_dm._core.views import (
    GaussianView,
    NeighborViews,
    SameSampleViews,
    Views,
    make_views,
)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_the_gaussian_channel_keeps_unit_variance_and_mixes_in_noise():
    x = torch.randn(200_000, 2, generator=_gen(0), dtype=torch.float64)
    view = GaussianView(0.6)
    y = view(x, _gen(1))
    assert y.var(0).sub(1).abs().max() < 0.02
    # y = sqrt(1 - s^2) x + s xi: the correlation with x is sqrt(1 - s^2).
    corr = torch.corrcoef(torch.stack([x[:, 0], y[:, 0]]))[0, 1].item()
    assert corr == pytest.approx(math.sqrt(1 - 0.36), abs=0.01)
    assert GaussianView(0.0)(x, _gen(1)) is x


def test_views_draw_only_from_the_generator_they_are_given():
    X = torch.randn(50, 3, generator=_gen(0))
    views = make_views("gaussian", 0.3).fit(X)
    rows = torch.arange(10)
    torch_state = torch.get_rng_state()
    a1, b1 = views.sample(rows, _gen(7))
    a2, b2 = views.sample(rows, _gen(7))
    a3, _ = views.sample(rows, _gen(8))
    assert torch.equal(a1, a2) and torch.equal(b1, b2)
    assert not torch.equal(a1, a3)
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_same_sample_views_start_both_views_from_the_row_itself():
    X = torch.randn(20, 3, generator=_gen(0))
    X_val = torch.randn(6, 3, generator=_gen(1))
    views = SameSampleViews(GaussianView(0.5)).fit(X, X_val)
    rows = torch.tensor([3, 7, 3])
    a, b = views.sources(rows, _gen(0))
    assert torch.equal(a, X[rows]) and torch.equal(b, X[rows])
    view_a, view_b = views.sample(rows, _gen(0))
    assert not torch.equal(view_a, view_b)  # each through its own noise draw
    val_a, val_b = views.validation_sources()
    assert torch.equal(val_a, X_val) and torch.equal(val_b, X_val)
    assert SameSampleViews(GaussianView(0.5)).fit(X).validation_sources() is None
    assert views.n_samples == 20


def test_make_views_resolves_names_callables_and_options():
    neighbors = make_views("neighbors", 0.2, n_neighbors=7)
    assert isinstance(neighbors, NeighborViews) and neighbors.n_neighbors == 7
    assert neighbors.augment.strength == 0.2
    # Options a view class does not take are not passed to it.
    plain = make_views("gaussian", 0.2, n_neighbors=7)
    assert type(plain) is SameSampleViews and not hasattr(plain, "n_neighbors")

    def flip(x, generator):
        return -x

    custom = make_views(flip, 0.2)
    assert type(custom) is SameSampleViews and custom.augment is flip
    with pytest.raises(ValueError, match="unknown augmentation 'mixup'"):
        make_views("mixup", 0.2)


def test_a_view_class_registered_in_views_is_made_by_name(monkeypatch):
    class ShiftedViews(Views):
        """The second view from the next row (a toy kind of view)."""

        def __init__(self, augment, shift=1):
            super().__init__(augment)
            self.shift = shift

        def sources(self, rows, generator):
            return self.X[rows], self.X[(rows + self.shift) % self.n_samples]

        def validation_sources(self):
            return None

    monkeypatch.setitem(core_views.VIEWS, "shifted", ShiftedViews)
    views = make_views("shifted", 0.0, shift=2, n_neighbors=5).fit(torch.eye(4))
    assert isinstance(views, ShiftedViews) and views.shift == 2
    a, b = views.sample(torch.tensor([0, 3]), _gen(0))
    assert torch.equal(b, torch.eye(4)[[2, 1]])


def test_neighbor_views_need_more_rows_than_neighbors():
    views = NeighborViews(GaussianView(0.2), n_neighbors=5)
    views.check_n_samples(6)
    with pytest.raises(ValueError, match="n_neighbors=5 needs more than 5"):
        views.check_n_samples(5)
    with pytest.raises(ValueError, match="after the validation split"):
        views.check_n_samples(5, after_split=True)
    make_views("gaussian", 0.2).check_n_samples(1)  # same-sample views need one
