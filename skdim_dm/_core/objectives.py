"""Objectives and the training loss: how a batch's scores become what training
maximizes.

Pure torch. An :class:`Objective` is how the critic's scores of a batch become
the bound that training maximizes, and what the planner asks of it: the prior
it needs, the critics it accepts, the critic it trains
(:meth:`~Objective.make_critic`), its ``"auto"`` capacity and how many InfoNCE
bounds share the capacity. ``"joint"`` (one bound on the whole latent vector)
and ``"sliced"`` (one bound per random one-dimensional slice) are registered in
:data:`OBJECTIVES`; a new one is a subclass registered with
:func:`register_objective`, and ``objective=`` accepts its name at once.

A :class:`LossTerm` is a matching term on the clean latents of a batch, added to
the loss with a weight (the setting ``<name>_weight``) and logged per epoch
under its name; they are registered in :data:`LOSS_TERMS`. The terms are kept
apart from the objectives: each has its own weight, whatever the objective, and
a new objective gets them without knowing of them.

:class:`Loss` computes a batch's training loss from the clean latents of both
views, the one place for one process and for many (a data-parallel shard
gathers the latents of the global batch first, then calls the same
:class:`Loss`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch

from .bases import Base
from .bounds import epps_pulley, radial_normal_score
from .channels import Channel
from .critics import CRITICS, SLICEABLE, Critic, SlicedCritic

__all__ = [
    "Objective",
    "JointObjective",
    "SlicedObjective",
    "OBJECTIVES",
    "register_objective",
    "get_objective",
    "LossTerm",
    "LOSS_TERMS",
    "register_loss_term",
    "match_penalty",
    "radial_penalty",
    "Loss",
]


class Objective:
    """How the critic's scores of a batch become the bound training maximizes.

    Subclasses set ``name`` (the ``objective=`` value) and override what
    differs from the joint InfoNCE bound; they are built without arguments.
    """

    name: ClassVar[str] = ""
    #: Why the objective needs a Gaussian base (the message of the refusal), or
    #: None when any base will do.
    gaussian_only: ClassVar[str | None] = None

    def check_base(self, gaussian: bool) -> None:
        """``ValueError`` when the objective cannot train on this base."""
        if self.gaussian_only is not None and not gaussian:
            raise ValueError(
                f"objective={self.name!r} needs the Gaussian prior: "
                f"{self.gaussian_only}"
            )

    def check_critic(self, critic: str) -> None:
        """``ValueError`` when the objective cannot use the critic named
        ``critic`` (a key of :data:`CRITICS`)."""

    def make_critic(self, critic: str, n_components: int, channel: Channel) -> Critic:
        """The critic module this objective trains (not yet initialized when
        built on torch's ``meta`` device)."""
        return CRITICS[critic](n_components, channel)

    def auto_capacity(self, base: Base, n_components: int, batch_size: int) -> float:
        """The channel capacity (nats) that ``noise_level="auto"`` picks."""
        return base.auto_capacity(n_components, batch_size)

    def n_bounds(self, n_components: int) -> int:
        """The InfoNCE bounds that share the capacity, each capped by
        ``log(batch_size)`` (``CapacityWarning`` beyond it)."""
        return 1

    def bound(self, critic: Critic, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """The bound (nats) of a batch: noisy latents ``y`` against clean ``e``."""
        return critic.bound(y, e)


#: ``objective=`` names and their classes. A new objective is an
#: :class:`Objective` subclass registered here (:func:`register_objective`).
OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(cls: type[Objective]) -> type[Objective]:
    """Make ``cls`` available as ``objective=cls.name`` (a class decorator)."""
    OBJECTIVES[cls.name] = cls
    return cls


def get_objective(objective: str | Objective) -> Objective:
    """The objective registered as ``objective`` (an instance passes through);
    ``ValueError`` for an unknown name."""
    if isinstance(objective, Objective):
        return objective
    try:
        return OBJECTIVES[objective]()
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown objective {objective!r}; choose from {sorted(OBJECTIVES)}"
        ) from None


@register_objective
class JointObjective(Objective):
    """One InfoNCE bound on the whole latent vector through the noisy channel
    (the paper's objective)."""

    name = "joint"


@register_objective
class SlicedObjective(Objective):
    """One InfoNCE bound per random one-dimensional slice of the latents,
    summed (:class:`SlicedCritic`): each slice's capacity is capped separately,
    so the total is not."""

    name = "sliced"
    gaussian_only = (
        "a law whose every projection is Gaussian is Gaussian, while "
        "projections of a uniform law are not uniform"
    )

    def check_critic(self, critic: str) -> None:
        if critic not in SLICEABLE:
            raise ValueError(
                f"objective='sliced' needs one of the critics {SLICEABLE}, "
                f"got {critic!r}"
            )

    def make_critic(self, critic, n_components, channel):
        return SlicedCritic(n_components, channel, CRITICS[critic])

    def auto_capacity(self, base, n_components, batch_size):
        return base.auto_capacity(n_components, batch_size, sliced=True)

    def n_bounds(self, n_components):
        return n_components


# --------------------------------------------------------------------------------
# Matching terms on the clean latents.

#: Directions per step of the joint-matching term (a random orthonormal frame).
MATCH_DIRECTIONS = 16


def match_penalty(e: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``n_components`` times the mean Epps-Pulley distance to N(0, 1) of the
    latents ``e`` projected on a fresh random orthonormal frame (up to
    ``MATCH_DIRECTIONS`` directions). Scaled like the sliced bound, which sums one
    term per component, so one weight suits every dimension."""
    d = e.shape[1]
    z = torch.randn((d, d), generator=generator, device=e.device, dtype=e.dtype)
    q, r = torch.linalg.qr(z)
    q = (q * torch.sign(torch.diagonal(r)))[:, : min(d, MATCH_DIRECTIONS)]
    return d * epps_pulley(e @ q)


def radial_penalty(e: torch.Tensor) -> torch.Tensor:
    """``n_components`` times the Epps-Pulley distance to N(0, 1) of the normal
    score of ``||e||^2`` against ``chi2(n_components)``
    (:func:`radial_normal_score`). The projections of :func:`match_penalty` see
    the radial law only weakly: a scale mixture of Gaussians has nearly Gaussian
    projections and a far too wide (or narrow) law of the norm."""
    return e.shape[1] * epps_pulley(radial_normal_score(e))


class LossTerm:
    """A matching term on the clean latents of a batch (both views), added to
    the loss times its weight (the setting ``<name>_weight``) and logged per
    epoch under ``name``. Built without arguments."""

    name: ClassVar[str] = ""

    def __call__(self, latents: torch.Tensor, generator: torch.Generator):
        raise NotImplementedError


#: Loss-term names and their classes, in the order they enter the loss (and
#: draw from the step's generator).
LOSS_TERMS: dict[str, type[LossTerm]] = {}


def register_loss_term(cls: type[LossTerm]) -> type[LossTerm]:
    """Make ``cls`` a loss term weighted by ``<cls.name>_weight`` (a class
    decorator)."""
    LOSS_TERMS[cls.name] = cls
    return cls


@register_loss_term
class MatchTerm(LossTerm):
    """Random one-dimensional projections against N(0, 1)
    (:func:`match_penalty`)."""

    name = "match"

    def __call__(self, latents, generator):
        return match_penalty(latents, generator)


@register_loss_term
class RadialTerm(LossTerm):
    """The law of the norm against ``chi2(d)`` (:func:`radial_penalty`)."""

    name = "radial"

    def __call__(self, latents, generator):
        return radial_penalty(latents)


class Loss:
    """A batch's training loss: minus the objective's bound, plus the weighted
    loss terms.

    Parameters
    ----------
    objective : str or Objective, default="joint"
        A name in :data:`OBJECTIVES`, or an objective.
    weights : mapping or None, default=None
        Weights of the loss terms by name (keys of :data:`LOSS_TERMS`); a term
        absent or weighted 0 is off.
    """

    def __init__(
        self,
        objective: str | Objective = "joint",
        weights: Mapping[str, float] | None = None,
    ):
        self.objective = get_objective(objective)
        weights = {} if weights is None else weights
        unknown = sorted(set(weights) - set(LOSS_TERMS))
        if unknown:
            raise ValueError(
                f"unknown loss terms {unknown}; choose from {sorted(LOSS_TERMS)}"
            )
        self.terms = tuple(
            (cls(), float(weights[name]))
            for name, cls in LOSS_TERMS.items()
            if weights.get(name, 0) > 0
        )

    def bound(
        self,
        critic: Critic,
        channel: Channel,
        latents: torch.Tensor,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """The objective's bound of a batch of pairs from the clean ``latents``
        of both views (the first half: view a's, whose copy gets the noise)."""
        n = latents.shape[0] // 2
        critic.observe(latents[:n], latents[n:], generator)
        y = channel(latents[:n], generator)
        return self.objective.bound(critic, y, latents[n:])

    def __call__(
        self,
        critic: Critic,
        channel: Channel,
        latents: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, bound, terms)`` of a batch: the loss to minimize, the bound
        and each loss term's value by name. Draws from ``generator`` in a fixed
        order: the critic's and the channel's draws, then the terms'."""
        mi = self.bound(critic, channel, latents, generator)
        loss = -mi
        values = {}
        for term, weight in self.terms:
            value = term(latents, generator)
            loss = loss + weight * value
            values[term.name] = value
        return loss, mi, values
