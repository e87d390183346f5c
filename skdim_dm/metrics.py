"""Distribution-matching metrics and scorers for latents.

The metric functions take latents of shape ``(n_samples, n_components)`` (numpy in,
numbers out); the scorers take a fitted estimator, or a Pipeline containing a
:class:`~skdim_dm.NoiseInjectedInfoMax`, and data, for ``GridSearchCV(scoring=...)``.
"""

from ._metrics import (
    DMReport,
    JointMatch,
    KSResult,
    TestResult,
    component_ks_test,
    covariance_error,
    dm_report,
    fraction_inside,
    henze_zirkler,
    joint_match,
    knn_kl_divergence,
    marginal_ks,
    mean_error,
    norm_ks_test,
    normality_bootstrap,
    prior_match_score,
    sliced_wasserstein,
)
from ._scorers import (
    LATENT_METRICS,
    gaussianity_scorer,
    joint_match_scorer,
    make_latent_scorer,
    prior_scorer,
    uniformity_scorer,
)

__all__ = [
    "DMReport",
    "JointMatch",
    "KSResult",
    "LATENT_METRICS",
    "TestResult",
    "component_ks_test",
    "covariance_error",
    "dm_report",
    "fraction_inside",
    "gaussianity_scorer",
    "henze_zirkler",
    "joint_match",
    "joint_match_scorer",
    "knn_kl_divergence",
    "make_latent_scorer",
    "marginal_ks",
    "mean_error",
    "norm_ks_test",
    "normality_bootstrap",
    "prior_match_score",
    "prior_scorer",
    "sliced_wasserstein",
    "uniformity_scorer",
]
