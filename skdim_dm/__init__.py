"""Distribution-matched representations by noise-injected Deep InfoMax."""

from ._infomax import CapacityWarning, NoiseInjectedInfoMax
from ._objective import capacity_to_noise_level, noise_level_to_capacity

__version__ = "0.1.0.dev0"

__all__ = [
    "NoiseInjectedInfoMax",
    "CapacityWarning",
    "capacity_to_noise_level",
    "noise_level_to_capacity",
    "__version__",
]
