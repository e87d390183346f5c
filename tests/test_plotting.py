"""skdim_dm.plotting: the public figure of latents against their prior."""

import sys

import numpy as np
import pytest
from scipy import stats

from skdim_dm.plotting import plot_latents


@pytest.fixture
def plt():
    # matplotlib is the optional `plot` extra; the `test` extra (and CI) has it.
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


@pytest.mark.parametrize(
    "prior, draw",
    [
        ("gaussian", lambda rng, n: rng.standard_normal((n, 2))),
        ("uniform", lambda rng, n: rng.random((n, 2))),
        (stats.expon(), lambda rng, n: rng.exponential(size=(n, 2))),
    ],
    ids=["gaussian", "uniform", "expon"],
)
def test_qq_panel_maps_latents_drawn_from_the_prior_onto_chi2(plt, prior, draw):
    Z = draw(np.random.default_rng(0), 2000)
    fig = plot_latents(Z, prior)
    q, r2 = (np.asarray(a) for a in fig.axes[1].lines[0].get_data())
    # Latents drawn from the prior, mapped back to N(0, I): ||z||^2 ~ chi2(2), so
    # the QQ points follow the diagonal (medians within 10%).
    assert np.median(r2) == pytest.approx(np.median(q), rel=0.1)
    assert np.median(q) == pytest.approx(stats.chi2(2).median(), rel=0.01)


def test_labels_path_and_one_component(plt, tmp_path):
    rng = np.random.default_rng(0)
    fig = plot_latents(
        rng.standard_normal((300, 2)),
        labels=rng.integers(0, 3, 300),
        path=tmp_path / "f.png",
    )
    assert (tmp_path / "f.png").stat().st_size > 10_000
    assert len(fig.axes) == 3  # the two panels and the colour bar
    one = plot_latents(rng.standard_normal((300, 1)))
    assert one.axes[1].get_xlabel() == "chi2(1) quantiles"


def test_bad_latents_are_clear_errors():
    with pytest.raises(ValueError, match="2-D"):
        plot_latents(np.zeros(10))
    with pytest.raises(ValueError, match="NaN or infinity"):
        plot_latents(np.full((10, 2), np.nan))


def test_without_matplotlib_the_error_says_what_to_install(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"needs matplotlib.*pip install matplotlib"):
        plot_latents(np.random.default_rng(0).standard_normal((50, 2)))
