"""Views: how the two inputs of each positive pair are made.

Pure torch. A :class:`Views` object is fitted once per ``fit`` on the training
rows (on the training device), then asked for the two views of a batch of rows.
The training loop, the validation estimate and the final MI estimate only call
its interface; a new kind of view is a subclass registered in :data:`VIEWS`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch

from .neighbors import nearest_neighbors, principal_projection

__all__ = [
    "GaussianView",
    "Views",
    "SameSampleViews",
    "NeighborViews",
    "VIEWS",
    "make_views",
]

#: An input channel: ``(X_batch, generator) -> X_view``.
Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class GaussianView:
    """The paper's input channel: ``sqrt(1 - s^2) x + s xi``, ``xi ~ N(0, I)``.

    Applied to standardized features it keeps each feature's variance at one.
    """

    def __init__(self, strength: float):
        self.strength = float(strength)
        self._keep = math.sqrt(1.0 - self.strength**2)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.strength == 0.0:
            return x
        xi = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return self._keep * x + self.strength * xi


class Views:
    """The two views of each sample: a *source* row for each, then an input channel.

    ``fit(X, X_val, generator)`` sees the training rows (and the validation rows)
    once; ``sources(rows, generator)`` gives the rows of ``X`` each view starts
    from, and ``view(x, generator)`` applies the input channel to a batch of
    sources. Validation uses fixed sources (``validation_sources``), so its
    estimate is comparable from epoch to epoch.

    Parameters
    ----------
    augment : callable
        The input channel ``(X_batch, generator) -> X_view``; all randomness must
        come from ``generator``.
    """

    def __init__(self, augment: Augmentation):
        self.augment = augment

    def check_n_samples(self, n_train: int, *, after_split: bool = False) -> None:
        """Raise ``ValueError`` before any work when ``n_train`` rows are too few
        (``after_split``: they are what is left after the validation split)."""

    def fit(
        self,
        X: torch.Tensor,
        X_val: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        shard=None,
    ) -> Views:
        """See the training rows ``X`` (a tensor, or rows read on demand from a
        larger source) and the validation rows once; ``shard``: this process's
        part in a data-parallel fit (every process passes the same rows)."""
        self.X = X
        self.X_val = X_val
        return self

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    def sources(self, rows: torch.Tensor, generator: torch.Generator):
        """Source rows ``(a, b)`` of the two views of training ``rows``."""
        raise NotImplementedError

    def validation_sources(self):
        """Fixed sources ``(a, b)`` of the validation rows, or ``None``."""
        raise NotImplementedError

    def view(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.augment(x, generator)

    def sample(self, rows: torch.Tensor, generator: torch.Generator):
        """The two views ``(view_a, view_b)`` of training ``rows``."""
        a, b = self.sources(rows, generator)
        return self.view(a, generator), self.view(b, generator)


class SameSampleViews(Views):
    """Both views from the same sample, each through its own draw of the channel."""

    def sources(self, rows, generator):
        x = self.X[rows]
        return x, x

    def validation_sources(self):
        return None if self.X_val is None else (self.X_val, self.X_val)


class NeighborViews(Views):
    """The second view from one of the sample's ``n_neighbors`` nearest training rows.

    Neighbors are found once, at :meth:`fit`: Euclidean distance on the top
    ``NEIGHBOR_DIMS`` (:mod:`skdim_dm._core.neighbors`) principal components of the
    training rows. A neighbor is
    drawn afresh for each row at each step; validation rows get one fixed partner
    among their training-set neighbors. Both views go through the input channel.
    """

    def __init__(self, augment: Augmentation, n_neighbors: int = 10):
        super().__init__(augment)
        self.n_neighbors = int(n_neighbors)

    def check_n_samples(self, n_train: int, *, after_split: bool = False) -> None:
        k = self.n_neighbors
        if n_train <= k:
            raise ValueError(
                f"augmentation='neighbors' with n_neighbors={k} needs more than {k} "
                f"training samples; got {n_train}"
                + (" after the validation split" if after_split else "")
                + ". Lower n_neighbors or pass more samples."
            )

    @torch.no_grad()
    def fit(self, X, X_val=None, generator=None, shard=None):
        super().fit(X, X_val)
        k = self.n_neighbors
        # Rows read on demand (or shared among processes) are searched in
        # smaller blocks, the heap given back as it goes.
        low_memory = shard is not None or not isinstance(X, torch.Tensor)
        others = () if X_val is None else (X_val,)
        proj = principal_projection(X, *others, generator=generator, shard=shard)
        search = dict(shard=shard, low_memory=low_memory)
        self.neighbors = nearest_neighbors(
            proj[0], proj[0], k, exclude_self=True, **search
        )
        self._val_partners = None
        if X_val is not None:
            val_nbr = nearest_neighbors(
                proj[1], proj[0], k, exclude_self=False, **search
            )
            rows = torch.arange(X_val.shape[0], device=X.device)
            self._val_partners = self._partners(val_nbr, rows, generator)
        return self

    def _partners(self, neighbors, rows, generator):
        pick = torch.randint(
            neighbors.shape[1], rows.shape, generator=generator, device=rows.device
        )
        return self.X[neighbors[rows, pick]]

    def sources(self, rows, generator):
        return self.X[rows], self._partners(self.neighbors, rows, generator)

    def validation_sources(self):
        return None if self.X_val is None else (self.X_val, self._val_partners)


#: ``augmentation=`` names and their view classes, built as
#: ``cls(GaussianView(input_noise), **options)`` with the options they accept.
VIEWS: dict[str, type[Views]] = {
    "gaussian": SameSampleViews,
    "neighbors": NeighborViews,
}


def make_views(augmentation, input_noise: float, **options) -> Views:
    """Views for ``augmentation=``: a name from :data:`VIEWS` (each view through
    the Gaussian input channel of strength ``input_noise``; ``options`` such as
    ``n_neighbors`` go to the classes that take them) or a callable input channel
    ``(X_batch, generator) -> X_view`` applied to the same sample twice."""
    if callable(augmentation):
        return SameSampleViews(augmentation)
    if augmentation not in VIEWS:
        raise ValueError(f"unknown augmentation {augmentation!r}")
    cls = VIEWS[augmentation]
    params = inspect.signature(cls.__init__).parameters
    kept = {k: v for k, v in options.items() if k in params}
    return cls(GaussianView(input_noise), **kept)
