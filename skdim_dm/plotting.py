"""Figures of latents against their prior (needs matplotlib: ``pip install matplotlib``).

:func:`plot_latents` is the figure that ``python -m skdim_dm demo`` and
``report --figure`` draw. matplotlib is imported only when a figure is drawn, so
this module imports without it.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["plot_latents"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "skdim_dm.plotting needs matplotlib, which is not installed: "
            "pip install matplotlib (or pip install 'skdim_dm[plot]')"
        ) from exc
    return plt


def plot_latents(Z, prior="gaussian", labels=None, path=None):
    """Latents over the prior's density contours, and a QQ plot of ``||z||^2``.

    The left panel scatters the first two components over the contours of the
    prior's density that enclose 50%, 90% and 99% of its mass (the boundary of
    the support for a flat density such as the uniform prior's; no contours for a
    :class:`~skdim_dm.FlowPrior`, whose density is not known in closed form, nor
    for one component, drawn against a zero second axis). The right panel maps
    the latents back to the Gaussian base (the prior's ``from_target``, then the
    base's probit for the uniform prior) and plots their sorted squared norms
    against the quantiles of ``chi2(d)``: points on the diagonal mean that
    ``||z||^2`` has the law it has under ``N(0, I)``.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Latents in the target's space, as ``NoiseInjectedInfoMax.transform``
        returns them.

    prior : {"gaussian", "uniform"} or target prior, default="gaussian"
        Any ``prior=`` value that :class:`~skdim_dm.NoiseInjectedInfoMax`
        accepts; usually the fitted estimator's ``prior``.

    labels : array-like of shape (n_samples,) or None, default=None
        Colours the points (e.g. class labels), with a colour bar.

    path : str, path-like or None, default=None
        When given, the figure is also saved there (format from the extension).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure, with two axes; close it with ``matplotlib.pyplot.close(fig)``
        when drawing many.

    Raises
    ------
    ImportError
        When matplotlib is not installed.
    ValueError
        When ``Z`` is not a finite 2-D array, or ``prior`` is invalid for its
        number of components.

    See Also
    --------
    skdim_dm.metrics.dm_report : The same comparison as numbers.
    skdim_dm.metrics.norm_ks_test : KS test of ``||z||^2`` against ``chi2(d)``.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib.pyplot as plt
    >>> from skdim_dm.plotting import plot_latents
    >>> Z = np.random.default_rng(0).standard_normal((500, 2))
    >>> fig = plot_latents(Z, prior="gaussian")
    >>> [ax.get_title() for ax in fig.axes]
    ['latents over prior contours', 'QQ plot of squared norms']
    >>> plt.close(fig)
    """
    from ._priors import resolve_prior

    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[0] < 2 or Z.shape[1] < 1:
        raise ValueError(
            f"Z must be 2-D (n_samples >= 2, n_components >= 1), got shape {Z.shape}"
        )
    if not np.all(np.isfinite(Z)):
        raise ValueError("Z contains NaN or infinity")
    p = resolve_prior(prior, Z.shape[1])
    plt = _pyplot()

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4.5))
    Z2 = Z[:, :2] if Z.shape[1] >= 2 else np.column_stack([Z[:, 0], np.zeros(len(Z))])
    lo, hi = np.percentile(Z2, [0.5, 99.5], axis=0)
    pad = 0.15 * (hi - lo)
    g0 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], 120)
    g1 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], 120)
    G0, G1 = np.meshgrid(g0, g1)
    if Z.shape[1] >= 2:
        _prior_contours(ax0, prior[:2] if isinstance(prior, list) else prior, G0, G1)
    scatter = ax0.scatter(
        Z2[:, 0], Z2[:, 1], c=labels, s=4, cmap="tab10" if labels is not None else None
    )
    if labels is not None:
        fig.colorbar(scatter, ax=ax0, label="label")
    ax0.set(xlabel="z[0]", ylabel="z[1]", title="latents over prior contours")

    zb = p.base.to_gaussian(p.from_target(Z))
    r2 = np.sort(np.sum(zb * zb, axis=1))
    q = stats.chi2(Z.shape[1]).ppf((np.arange(1, len(r2) + 1) - 0.5) / len(r2))
    ax1.plot(q, r2, ".", ms=3)
    top = max(q[-1], r2[-1])
    ax1.plot([0, top], [0, top], "k--", lw=1)
    ax1.set(
        xlabel=f"chi2({Z.shape[1]}) quantiles",
        ylabel="sorted ||z||^2 (base space)",
        title="QQ plot of squared norms",
    )
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _prior_contours(ax, prior, G0, G1) -> None:
    """Contours of the 2-D prior density enclosing 50%, 90% and 99% of its mass."""
    from ._priors import resolve_prior

    p = resolve_prior(prior, 2)
    try:
        draws = p.sample(20000, 2, np.random.default_rng(0))
        levels = np.exp(np.quantile(p.logpdf(draws), [0.01, 0.1, 0.5]))
        dens = np.exp(p.logpdf(np.column_stack([G0.ravel(), G1.ravel()])))
    except NotImplementedError:  # a FlowPrior has no closed-form density
        return
    dens = dens.reshape(G0.shape)
    if not np.all(np.diff(levels) > 0):
        # A flat density (the uniform prior) has no such contours: draw the
        # boundary of its support instead.
        if dens.max() > 0 and dens.min() == 0:
            support = (dens > 0).astype(float)
            ax.contour(G0, G1, support, levels=[0.5], colors="0.25", linestyles="--")
        return
    cs = ax.contour(G0, G1, dens, levels=levels, colors="0.25")
    ax.clabel(cs, fmt=dict(zip(cs.levels, ["99%", "90%", "50%"])), fontsize=8)
