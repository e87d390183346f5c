"""Distribution-matched representations by noise-injected Deep InfoMax.

Estimators: :class:`NoiseInjectedInfoMax` (the transformer),
:class:`LatentOutlierDetector` (calibrated p-values on matched latents) and
:class:`Gaussianizer` (invertible joint Gaussianization of any latents). Metrics and
scorers live in :mod:`skdim_dm.metrics`; the most used are re-exported here. Figures
of latents against their prior: :mod:`skdim_dm.plotting` (needs matplotlib, imported
only when drawing). The command line is ``python -m skdim_dm``.
"""

from ._core.bases import capacity_to_noise_level, noise_level_to_capacity
from ._core.networks import build_networks
from ._gaussianize import Gaussianizer
from ._infomax import CapacityWarning, MatchWarning, NoiseInjectedInfoMax
from ._outliers import LatentOutlierDetector, benjamini_hochberg, outlier_embedder
from ._persistence import ModelFileError
from ._priors import FlowPrior, Prior
from ._version import __version__
from .metrics import (
    dm_report,
    gaussianity_scorer,
    make_latent_scorer,
    prior_scorer,
    uniformity_scorer,
)

__all__ = [
    "NoiseInjectedInfoMax",
    "LatentOutlierDetector",
    "Gaussianizer",
    "benjamini_hochberg",
    "outlier_embedder",
    "CapacityWarning",
    "MatchWarning",
    "ModelFileError",
    "Prior",
    "FlowPrior",
    "capacity_to_noise_level",
    "noise_level_to_capacity",
    "build_networks",
    "dm_report",
    "gaussianity_scorer",
    "uniformity_scorer",
    "prior_scorer",
    "make_latent_scorer",
    "__version__",
]
