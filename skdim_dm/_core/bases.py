"""The base distributions training runs on: ``N(0, I)`` and ``U([0, 1]^d)``.

One object per base carries everything that depends on which base is in use: its
moments, sampling, CDF and the probit onto ``N(0, I)``, log density, the channel
and the normalization layer of the encoder, and the ``"auto"`` capacity. Code
elsewhere asks the object; it never compares base names. Every other target
(``prior=``) is a fixed bijection from one of these (:mod:`skdim_dm._priors`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from .channels import (
    BatchNormalization,
    Channel,
    GaussianChannel,
    Normalization,
    SigmoidNormalization,
    UniformChannel,
    WhiteningNormalization,
)

__all__ = [
    "Base",
    "GaussianBase",
    "UniformBase",
    "BASES",
    "get_base",
    "noise_level_to_capacity",
    "capacity_to_noise_level",
    "UNIFORM_CLIP",
]

#: Uniform latents are clipped to ``[UNIFORM_CLIP, 1 - UNIFORM_CLIP]`` before the
#: probit. The encoder trains in float32, whose resolution just below 1 is
#: ``2**-24``; clipping both tails there treats them alike (``|probit| <= 5.3``).
UNIFORM_CLIP = float(np.finfo(np.float32).epsneg)


class Base:
    """A base distribution: what training matches before any bijection.

    Attributes
    ----------
    name : str
        ``"gaussian"`` or ``"uniform"``, the value of ``prior=`` that selects it.
    target : str
        Human-readable name of the distribution.
    mean, std : float
        Per-component moments.
    channel_type : type of Channel
        The noise channel whose capacity-achieving input is this distribution.
    bounds_kl : bool
        Whether ``capacity - MI`` bounds the KL divergence of the noise-smoothed
        latents from the (scaled) base.
    gaussian : bool
        Whether the base is ``N(0, I)``, so that normality tests and the
        ``chi2(d)`` law of ``||z||^2`` apply to it directly.
    bounded : bool
        Whether the base lives on the unit cube (latents outside it are
        impossible under the base).
    """

    name = ""
    target = ""
    mean = 0.0
    std = 1.0
    channel_type: type[Channel] = Channel
    bounds_kl = False
    gaussian = False
    bounded = False
    #: ``"auto"`` capacity: this many nats per component, capped at this multiple
    #: of ``log(batch_size)`` (InfoNCE cannot measure more than ``log N``).
    auto_per_component = 1.0
    auto_cap = 0.5
    #: ``"auto"`` capacity per component of the sliced objective.
    auto_sliced_per_component = 1.0

    # ------------------------------------------------------------- channel
    def channel(self, noise_level: float) -> Channel:
        return self.channel_type(noise_level)

    def normalization(self, n_components: int, whiten: bool = False) -> Normalization:
        """The encoder's last layer; ``whiten`` asks for decorrelated components."""
        raise NotImplementedError

    def capacity(self, noise_level: float, n_components: int) -> float:
        return self.channel_type.capacity_for(noise_level, n_components)

    def noise_level(self, capacity: float, n_components: int) -> float:
        return self.channel_type.noise_level_for(capacity, n_components)

    def auto_capacity(
        self, n_components: int, batch_size: int, sliced: bool = False
    ) -> float:
        """The ``"auto"`` capacity. InfoNCE cannot measure more than
        ``log(batch_size)`` per bound: the joint objective has one bound for all
        components, the sliced objective one per component."""
        cap = self.auto_cap * math.log(batch_size)
        if sliced:
            return n_components * min(self.auto_sliced_per_component, cap)
        return min(self.auto_per_component * n_components, cap)

    # --------------------------------------------------------- distribution
    def sample(self, rng: np.random.Generator, shape) -> np.ndarray:
        raise NotImplementedError

    def cdf(self, z: np.ndarray) -> np.ndarray:
        """Per-component CDF."""
        raise NotImplementedError

    def to_gaussian(self, z: np.ndarray) -> np.ndarray:
        """``Phi^{-1}(cdf(z))`` per component: the map of this base onto ``N(0, I)``."""
        raise NotImplementedError

    def logpdf(self, z: np.ndarray) -> np.ndarray:
        """Log density of the rows of ``z``, shape ``(n,)``."""
        raise NotImplementedError

    # ------------------------------------------------------------ identity
    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self).__name__)

    def __reduce__(self):
        return (get_base, (self.name,))


class GaussianBase(Base):
    """``N(0, I)``: the capacity-achieving input of the Gaussian channel."""

    name = "gaussian"
    target = "N(0, I)"
    channel_type = GaussianChannel
    bounds_kl = True
    gaussian = True
    # The paper's best-matching MNIST row (d = 2) is C = 2.30 nats.
    auto_per_component = 1.15
    auto_cap = 0.5
    # Sliced: 0.3 nats per component matched held-out latents better than 0.6 and
    # 1.15 at the same accuracy (digits d = 8, MNIST d = 16; benchmarks/RESULTS.md).
    auto_sliced_per_component = 0.3

    def normalization(self, n_components: int, whiten: bool = False) -> Normalization:
        if whiten:
            return WhiteningNormalization(n_components)
        return BatchNormalization(n_components)

    def sample(self, rng, shape):
        return rng.standard_normal(shape)

    def cdf(self, z):
        return stats.norm.cdf(z)

    def to_gaussian(self, z):
        return np.asarray(z, dtype=np.float64)

    def logpdf(self, z):
        return stats.norm.logpdf(np.asarray(z, dtype=np.float64)).sum(axis=1)


class UniformBase(Base):
    """``U([0, 1]^d)``: the small-noise limit of the uniform channel's optimum."""

    name = "uniform"
    target = "U([0, 1]^d)"
    mean = 0.5
    std = math.sqrt(1.0 / 12.0)
    channel_type = UniformChannel
    bounded = True
    # Continuous U([0, 1]) is the small-noise limit, so the noise must be small:
    # 2.4 nats per component is eps = 0.05 (on the synthetic data of
    # tests/test_infomax.py eps = 0.2 and 0.1 left mass piled at the edges, kNN KL
    # 0.29 and 0.15 nats, against 0.07 at eps = 0.05).
    auto_per_component = 2.4
    auto_cap = 0.8

    def normalization(self, n_components: int, whiten: bool = False) -> Normalization:
        if whiten:
            raise ValueError("whiten=True needs the Gaussian prior")
        return SigmoidNormalization()

    def sample(self, rng, shape):
        return rng.random(shape)

    def cdf(self, z):
        return np.clip(z, 0.0, 1.0)

    def to_gaussian(self, z):
        u = np.clip(np.asarray(z, dtype=np.float64), UNIFORM_CLIP, 1.0 - UNIFORM_CLIP)
        return special.ndtri(u)

    def logpdf(self, z):
        z = np.asarray(z, dtype=np.float64)
        inside = np.all((z >= 0) & (z <= 1), axis=1)
        return np.where(inside, 0.0, -np.inf)


BASES: dict[str, Base] = {b.name: b for b in (GaussianBase(), UniformBase())}


def get_base(base) -> Base:
    """The :class:`Base` named ``base`` (``"gaussian"`` or ``"uniform"``), or ``base``
    itself when it already is one."""
    if isinstance(base, Base):
        return base
    if isinstance(base, str) and base in BASES:
        return BASES[base]
    raise ValueError(f"prior must be one of {tuple(BASES)}, got {base!r}")


def noise_level_to_capacity(
    noise_level: float, n_components: int, prior: str = "gaussian"
) -> float:
    """Capacity in nats of the noise channel for ``n_components`` latents.

    ``C = d/2 log(1 + 1/sigma^2)`` for the Gaussian prior and
    ``C = d log(1 + 1/(2 eps))`` for the uniform prior.
    """
    return get_base(prior).capacity(noise_level, n_components)


def capacity_to_noise_level(
    capacity: float, n_components: int, prior: str = "gaussian"
) -> float:
    """Inverse of :func:`noise_level_to_capacity`."""
    return get_base(prior).noise_level(capacity, n_components)
