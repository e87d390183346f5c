"""
Conformal outlier p-values on learned latents
=============================================

:class:`~skdim_dm.LatentOutlierDetector` trains an embedder (a
:class:`~skdim_dm.NoiseInjectedInfoMax` set for detection, see
:func:`~skdim_dm.outlier_embedder`), scores each sample by the distance of its
latent to the nearest training latents (``statistic="knn"``, the default), and turns
that score into a conformal p-value against calibration rows held out before
anything is trained:

``p(x) = (1 + #{calibration scores >= s(x)}) / (n_cal + 1)``.

For inliers exchangeable with the calibration rows, ``P(p <= alpha) <= alpha``
whatever the law of the latents, so ``predict`` (``p <= alpha``) fixes the
false-positive rate in advance, on average over calibration sets;
``fpr_confidence=0.9`` makes it hold for the calibration set in hand with
probability 0.9. The chi-square p-values of the prior (``calibration="prior"``)
hold only for latents that follow ``N(0, I)`` exactly.

The data here are heavy-tailed on purpose: 10-dimensional observations of a
2-dimensional Student t latent. Outliers sit far out along the inliers' plane or
off it. About 40 s of CPU. Set ``SKDIM_DM_EXAMPLE_FAST=1`` for a quick smoke run,
and ``SKDIM_DM_EXAMPLE_OUT=DIR`` to write the figure to ``DIR``.
"""

# %%
# Data: heavy-tailed inliers, outliers along and off their plane
# --------------------------------------------------------------
import os
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skdim_dm import (
    CapacityWarning,
    LatentOutlierDetector,
    benjamini_hochberg,
    outlier_embedder,
)

# The detection embedder's capacity is far above what InfoNCE can measure, on
# purpose (it keeps information; conformal calibration does not need matching),
# and its MI estimate is meaningless (see outlier_embedder): silence both warnings,
# as the detector does for its default embedder.
warnings.filterwarnings("ignore", category=CapacityWarning)
warnings.filterwarnings("ignore", category=ConvergenceWarning)

FAST = os.environ.get("SKDIM_DM_EXAMPLE_FAST") == "1"  # smoke runs in the tests
OUT = os.environ.get("SKDIM_DM_EXAMPLE_OUT")  # write the figure here when set
rng = np.random.default_rng(0)
A = rng.standard_normal((2, 10))


def inliers(n):
    z = rng.standard_t(3, size=(n, 2))
    return z @ A + 0.05 * rng.standard_normal((n, 10))


X_train, X_test = inliers(2000), inliers(5000)
z = rng.standard_normal((300, 2))
X_out = np.vstack(
    [
        25 * (z / np.linalg.norm(z, axis=1, keepdims=True)) @ A,  # far along
        inliers(300) + 1.0 * rng.standard_normal((300, 10)),  # off the plane
    ]
)
fast = {"max_epochs": 3} if FAST else {}

# %%
# Fit with the defaults, then read conformal p-values
# ---------------------------------------------------
# ``embedder=None`` trains ``outlier_embedder(1600, 10)`` on 80% of the rows; the
# other 20% (``calibration_size=0.2``) only calibrate.
det = LatentOutlierDetector(
    outlier_embedder(1600, 10, **fast) if FAST else None, alpha=0.05, random_state=0
).fit(X_train)
p_in, p_out = det.pvalues(X_test), det.pvalues(X_out)
print(f"{det.n_calibration_} calibration rows; smallest p = 1/{det.n_calibration_ + 1}")
for a in (0.01, 0.05, 0.10):
    print(f"alpha={a:.2f}: held-out FPR {np.mean(p_in <= a):.3f}")
print(f"outliers flagged at alpha=0.05: {np.mean(det.predict(X_out) == -1):.3f}")

# %%
# The statistic, and chi-square against conformal calibration
# -----------------------------------------------------------
# One embedder, trained once on half of the training rows; ``prefit=True``
# detectors then fit their statistic on 80% of the other half and calibrate on the
# remaining 200 rows, which the embedder never saw. The prior statistic
# ``||z||^2`` against ``chi2(d)`` is the rule that needs matched latents. A
# conformal FPR is at most alpha on average over calibration sets; one detector's
# FPR varies around that by about ``sqrt(alpha (1 - alpha) / n_cal)`` (0.015 at
# alpha = 0.05 and 200 calibration rows).
emb = outlier_embedder(1000, 10, random_state=0, **fast).fit(X_train[:1000])
X_fresh = X_train[1000:]
labels = np.r_[np.zeros(len(X_test)), np.ones(len(X_out))]
X_eval = np.vstack([X_test, X_out])
rows = {}
for name, params in {
    "knn, conformal": {"statistic": "knn"},
    "mahalanobis, conformal": {"statistic": "mahalanobis"},
    "prior, conformal": {"statistic": "prior"},
    "prior, chi2 (calibration='prior')": {"statistic": "prior", "calibration": "prior"},
}.items():
    d = LatentOutlierDetector(emb, prefit=True, random_state=0, **params).fit(X_fresh)
    score = -d.score_samples(X_eval)
    # ROC-AUC by ranks: P(score of an outlier > score of an inlier).
    ranks = score.argsort().argsort()
    n_in, n_out = len(X_test), len(X_out)
    auc = (ranks[n_in:].sum() - n_out * (n_out - 1) / 2) / (n_in * n_out)
    rows[name] = d.pvalues(X_test)
    print(f"{name:36s} ROC-AUC {auc:.3f}  FPR@0.05 {np.mean(rows[name] <= 0.05):.3f}")

# %%
# Scanning many points: Benjamini-Hochberg on conformal p-values
# --------------------------------------------------------------
# Split-conformal p-values are PRDS (Bates et al., 2023), so BH controls the false
# discovery rate of a scan at ``alpha``.
batch = np.vstack([X_test[:900], X_out[:100]])
reject = benjamini_hochberg(det.pvalues(batch), alpha=0.1)
false = reject[:900].sum()
print(f"BH at 0.1: {reject.sum()} flagged, {false} inliers among them")

# %%
# One detector's false-positive rate: on average, or with confidence
# ------------------------------------------------------------------
# The conformal promise is an average over calibration sets. Calibrate the
# embedder above again and again on fresh inliers (400 calibration rows each):
# one detector's FPR at alpha = 0.05 spreads around a mean of at most 0.05, and
# exceeds 0.05 for about half of the calibration sets. With
# ``fpr_confidence=0.9`` (Bates et al., 2023) the p-values go up just enough
# that the FPR exceeds alpha for at most 10% of them; the scores, and so the
# ranking, do not change. The price is power: fewer outliers flagged at the same
# alpha.
n_draws = 10 if FAST else 40
X_held = inliers(20000)  # many held-out inliers: little noise in each FPR
draws = {None: ([], []), 0.9: ([], [])}  # fpr_confidence -> (FPR, TPR) per draw
for i in range(n_draws):
    X_cal = inliers(1000)  # 600 rows fit the statistic, 400 calibrate
    for conf, (fprs, tprs) in draws.items():
        d = LatentOutlierDetector(
            emb, prefit=True, calibration_size=400, fpr_confidence=conf, random_state=i
        ).fit(X_cal)
        fprs.append(np.mean(d.predict(X_held) == -1))
        tprs.append(np.mean(d.predict(X_out) == -1))
for conf, (fprs, tprs) in draws.items():
    print(
        f"fpr_confidence={conf}: mean FPR@0.05 {np.mean(fprs):.3f}, above 0.05 in "
        f"{np.mean(np.array(fprs) > 0.05):.0%} of {n_draws} calibration sets, "
        f"mean TPR {np.mean(tprs):.3f}"
    )

# %%
# Plot: p-values, FPR against alpha, and FPR over calibration sets
# ----------------------------------------------------------------
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # matplotlib is optional
    plt = None

if plt is not None:
    alphas = np.linspace(0.005, 0.2, 40)
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 3.5))
    bins = np.linspace(0, 1, 21)
    ax1.hist(p_in, bins=bins, density=True, alpha=0.6, label="held-out inliers")
    ax1.hist(p_out, bins=bins, density=True, alpha=0.6, label="outliers")
    ax1.axhline(1.0, color="k", lw=0.8, ls="--")
    ax1.set(xlabel="conformal p-value", ylabel="density", title="p-values (knn)")
    ax1.legend()
    curves = {
        "knn, conformal (default)": p_in,
        "prior, chi2 (calibration='prior')": rows["prior, chi2 (calibration='prior')"],
    }
    for name, p in curves.items():
        ax2.plot(alphas, [np.mean(p <= a) for a in alphas], label=name)
    ax2.plot(alphas, alphas, "k--", lw=0.8, label="target")
    ax2.set(xlabel="alpha", ylabel="false-positive rate", title="calibration")
    ax2.legend(fontsize=8)
    bins = np.linspace(0, 0.1, 26)
    for conf, (fprs, _) in draws.items():
        label = "marginal (None)" if conf is None else f"fpr_confidence={conf}"
        above = np.mean(np.array(fprs) > 0.05)
        ax3.hist(fprs, bins=bins, alpha=0.6, label=f"{label}: {above:.0%} > alpha")
    ax3.axvline(0.05, color="k", lw=0.8, ls="--")
    ax3.set(
        xlabel="FPR at alpha = 0.05 on held-out inliers",
        ylabel="calibration sets",
        title="one detector per calibration set",
    )
    ax3.set_ylim(top=1.4 * ax3.get_ylim()[1])  # room for the legend
    ax3.legend(fontsize=8)
    fig.tight_layout()
    if OUT:
        fig.savefig(os.path.join(OUT, "plot_outliers.png"), dpi=100)
