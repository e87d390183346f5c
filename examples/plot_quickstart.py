"""
=======================================================
Quickstart: Gaussian latents for the digits in a minute
=======================================================

:class:`~skdim_dm.NoiseInjectedInfoMax` is a scikit-learn transformer. ``fit``
trains a small encoder so that its 2-D outputs keep as much information about the
images as a noisy channel lets through; the latents that pass most information are
distributed as the prior, here ``N(0, I)``. No decoder, discriminator or extra loss.

We fit on 8x8 digits, check the match on held-out images with
:func:`skdim_dm.metrics.dm_report`, and draw the latents over the prior's contours
next to a QQ plot of ``||z||^2`` against ``chi2(2)`` (a straight diagonal means the
squared norms have exactly the law they would have under ``N(0, I)``).

Set ``SKDIM_DM_EXAMPLE_FAST=1`` for a quick smoke run with fewer epochs, and
``SKDIM_DM_EXAMPLE_OUT=DIR`` to write the figure to ``DIR``.
"""

# %%
# Fit
# ---
import os

import numpy as np
from scipy import stats
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdim_dm import NoiseInjectedInfoMax
from skdim_dm.metrics import dm_report

FAST = os.environ.get("SKDIM_DM_EXAMPLE_FAST") == "1"
OUT = os.environ.get("SKDIM_DM_EXAMPLE_OUT")  # write the figure here when set

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
est = NoiseInjectedInfoMax(
    n_components=2, max_epochs=5 if FAST else 100, device="cpu", random_state=0
)
est.fit(X_train)
print(f"capacity C = {est.capacity_:.2f} nats, MI estimate = {est.mutual_info_:.2f}")
print(f"C - MI (bound on the KL of the noisy latents) = {est.kl_upper_bound_:.3f}")

# %%
# How well do held-out latents match N(0, I)?
# -------------------------------------------
# The bootstrap p-values follow the paper's protocol (mean over subsamples of 64;
# about 0.5 is ideal); the remaining rows compare with exactly ``N(0, I)``.
Z = est.transform(X_test)
print(dm_report(Z, n_subsamples=64 if FAST else 1024, random_state=0))

# %%
# Latents over the prior, and a QQ plot
# -------------------------------------
import matplotlib.pyplot as plt  # noqa: E402

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4.5))
grid = np.linspace(-3.5, 3.5, 200)
G0, G1 = np.meshgrid(grid, grid)
density = stats.norm.pdf(G0) * stats.norm.pdf(G1)
# Density levels enclosing 50%, 90% and 99% of N(0, I): exp(-r^2 / 2) / (2 pi)
# with r^2 the chi2(2) quantile.
masses = [0.99, 0.9, 0.5]
levels = np.exp(-stats.chi2(2).ppf(masses) / 2) / (2 * np.pi)
cs = ax0.contour(G0, G1, density, levels=levels, colors="0.3")
ax0.clabel(cs, fmt={lv: f"{m:.0%}" for lv, m in zip(cs.levels, masses)}, fontsize=8)
points = ax0.scatter(Z[:, 0], Z[:, 1], c=y_test, cmap="tab10", s=8)
fig.colorbar(points, ax=ax0, label="digit")
ax0.set(xlabel="z[0]", ylabel="z[1]", title="test latents over N(0, I) contours")
ax0.set_aspect("equal")

r2 = np.sort(np.sum(Z**2, axis=1))
q = stats.chi2(2).ppf((np.arange(1, len(r2) + 1) - 0.5) / len(r2))
ax1.plot(q, r2, ".", ms=3)
ax1.plot([0, q[-1]], [0, q[-1]], "k--", lw=1)
ax1.set(
    xlabel="chi2(2) quantiles",
    ylabel="sorted ||z||^2",
    title="QQ plot of squared norms",
)
fig.tight_layout()
if OUT:
    fig.savefig(os.path.join(OUT, "plot_quickstart.png"), dpi=100)
plt.show()
