"""Distribution-matched representations by noise-injected Deep InfoMax.

Estimators: :class:`NoiseInjectedInfoMax` (the transformer) and
:class:`LatentOutlierDetector` (calibrated p-values on matched latents). Metrics and
scorers live in :mod:`skdim_dm.metrics`; the most used are re-exported here.
"""

from ._infomax import CapacityWarning, NoiseInjectedInfoMax
from ._objective import capacity_to_noise_level, noise_level_to_capacity
from ._outliers import LatentOutlierDetector, benjamini_hochberg, outlier_embedder
from ._persistence import ModelFileError
from ._priors import FlowPrior, Prior
from .metrics import (
    dm_report,
    gaussianity_scorer,
    make_latent_scorer,
    prior_scorer,
    uniformity_scorer,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "NoiseInjectedInfoMax",
    "LatentOutlierDetector",
    "benjamini_hochberg",
    "outlier_embedder",
    "CapacityWarning",
    "ModelFileError",
    "Prior",
    "FlowPrior",
    "capacity_to_noise_level",
    "noise_level_to_capacity",
    "dm_report",
    "gaussianity_scorer",
    "uniformity_scorer",
    "prior_scorer",
    "make_latent_scorer",
    "__version__",
]
