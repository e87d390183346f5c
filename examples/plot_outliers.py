"""
Calibrated outlier p-values on prior-matched latents
====================================================

:class:`~skdim_dm.LatentOutlierDetector` trains a
:class:`~skdim_dm.NoiseInjectedInfoMax` embedder whose latents follow
``N(0, I_d)``. For an inlier, ``||z||^2`` then follows ``chi2(d)``, so every sample
gets a p-value and the false-positive rate is fixed in advance by ``alpha``, with
no labelled outliers and no guessed contamination.

Here the data are 10-dimensional observations of a 2-dimensional Gaussian latent,
so the embedder can match the prior and the p-values of held-out inliers should be
uniform. The detector only sees what the embedder maps far from the centre: of the
outliers below, those far out along the inliers' plane are caught, while some of
those pushed off the plane land among the inliers' latents. About 10 s on a CPU.
"""

# %%
# Data: inliers from a Gaussian latent, outliers far along and off it
# ------------------------------------------------------------------------
import os

import numpy as np

from skdim_dm import LatentOutlierDetector, NoiseInjectedInfoMax

FAST = os.environ.get("SKDIM_DM_EXAMPLE_FAST") == "1"  # smoke runs in the tests
rng = np.random.default_rng(0)
A = rng.standard_normal((2, 10))


def inliers(n):
    return rng.standard_normal((n, 2)) @ A + 0.05 * rng.standard_normal((n, 10))


X_train, X_test = inliers(2000), inliers(5000)
z = rng.standard_normal((300, 2))
X_out = np.vstack(
    [
        6 * (z / np.linalg.norm(z, axis=1, keepdims=True)) @ A,  # far along
        inliers(300) + 3 * rng.standard_normal((300, 10)),  # off the plane
    ]
)

# %%
# Fit, then read p-values
# -----------------------
det = LatentOutlierDetector(
    NoiseInjectedInfoMax(
        hidden_layer_sizes=(32,),
        critic="gaussian",
        batch_size=256,
        max_epochs=3 if FAST else 20,
    ),
    alpha=0.05,
    random_state=0,
).fit(X_train)
p_in, p_out = det.pvalues(X_test), det.pvalues(X_out)

alphas = np.linspace(0.005, 0.2, 40)
fpr = np.array([np.mean(p_in < a) for a in alphas])
for a in (0.01, 0.05, 0.10):
    print(f"alpha={a:.2f}: held-out FPR {np.mean(p_in < a):.3f}")
print(f"outliers flagged at alpha=0.05: {np.mean(det.predict(X_out) == -1):.3f}")

# %%
# Plot: uniform p-values for inliers, FPR on the diagonal
# -------------------------------------------------------
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # matplotlib is optional
    plt = None

if plt is not None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    bins = np.linspace(0, 1, 21)
    ax1.hist(p_in, bins=bins, density=True, alpha=0.6, label="held-out inliers")
    ax1.hist(p_out, bins=bins, density=True, alpha=0.6, label="outliers")
    ax1.axhline(1.0, color="k", lw=0.8, ls="--")
    ax1.set(xlabel="p-value", ylabel="density", title="p-values")
    ax1.legend()
    ax2.plot(alphas, fpr, marker=".", label="empirical")
    ax2.plot(alphas, alphas, "k--", lw=0.8, label="target")
    ax2.set(xlabel="alpha", ylabel="false-positive rate", title="calibration")
    ax2.legend()
    fig.tight_layout()
    fig.savefig("plot_outliers.png", dpi=100)
