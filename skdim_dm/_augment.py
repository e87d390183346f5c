"""Views of a batch: pure torch functions ``(batch, generator) -> batch``."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = [
    "GaussianView",
    "make_augmentation",
    "nearest_neighbors",
    "neighbor_partners",
    "principal_projection",
]

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


def make_augmentation(augmentation, strength: float) -> Augmentation:
    """``"gaussian"``, ``"neighbors"`` (the same input channel on both views of a
    neighbor pair) or a user callable ``(X_batch, generator) -> X_view``."""
    if augmentation in ("gaussian", "neighbors"):
        return GaussianView(strength)
    if callable(augmentation):
        return augmentation
    raise ValueError(f"unknown augmentation {augmentation!r}")


#: Neighbor search runs on at most this many principal components of the input.
NEIGHBOR_DIMS = 50
#: Elements of one block of the distance matrix (float32: 128 MB).
NEIGHBOR_BLOCK = 2**25
#: Above this many features the principal axes come from a randomized range finder
#: instead of an eigendecomposition of the full covariance.
EXACT_PCA_MAX_FEATURES = 4096


@torch.no_grad()
def principal_projection(
    X: torch.Tensor,
    *others: torch.Tensor,
    n_dims: int = NEIGHBOR_DIMS,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, ...]:
    """``X`` and ``others``, centered by ``X``'s mean, on ``X``'s top principal axes.

    Up to ``EXACT_PCA_MAX_FEATURES`` features the axes are exact: the covariance is
    accumulated over row blocks in float64 (never a float64 copy of ``X``) and
    eigendecomposed, so nothing random is drawn. With more features, a few steps
    of randomized subspace iteration find them, drawing only from ``generator``.
    With ``n_dims`` features or fewer ``X`` is only centered.
    """
    n, p = X.shape
    mean = X.mean(0)
    if p <= n_dims:
        return (X - mean, *(o - mean for o in others))
    rows = max(1, NEIGHBOR_BLOCK // p)
    if p <= EXACT_PCA_MAX_FEATURES:
        cov = torch.zeros(p, p, dtype=torch.float64, device=X.device)
        for k in range(0, n, rows):
            b = (X[k : k + rows] - mean).double()
            cov += b.T @ b
        _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
        axes = vecs[:, -n_dims:].flip(1).to(X.dtype)
    else:

        def gram(v):  # Xc^T Xc v, over row blocks
            out = torch.zeros_like(v)
            for k in range(0, n, rows):
                b = X[k : k + rows] - mean
                out += b.T @ (b @ v)
            return out

        width = min(p, n_dims + 10)
        v = torch.randn(p, width, generator=generator, device=X.device, dtype=X.dtype)
        for _ in range(4):
            v = torch.linalg.qr(gram(v)).Q
        small = v.T @ gram(v)
        _, vecs = torch.linalg.eigh((small + small.T).double() / 2)
        axes = v @ vecs[:, -n_dims:].flip(1).to(X.dtype)
    return tuple((a - mean) @ axes for a in (X, *others))


@torch.no_grad()
def nearest_neighbors(
    queries: torch.Tensor, points: torch.Tensor, k: int, *, exclude_self: bool
) -> torch.Tensor:
    """Indices ``(n_queries, k)`` into ``points`` of each query's ``k`` nearest.

    Euclidean distance. Blockwise, so about two ``NEIGHBOR_BLOCK``-float blocks are
    alive at a time. The fast ``|q|^2 - 2 q.p + |p|^2`` form loses precision when
    neighbors are much closer than the data's spread, so ``2 k`` candidates are
    taken from it and ranked again by their exact distances. With ``exclude_self``
    the queries are ``points`` itself and each row's own index is skipped.
    """
    n = points.shape[0]
    m = min(2 * k, n - 1 if exclude_self else n)
    sq = (points * points).sum(1)
    block = max(1, NEIGHBOR_BLOCK // max(n, 1))
    out = torch.empty(queries.shape[0], k, dtype=torch.long, device=points.device)
    for start in range(0, queries.shape[0], block):
        q = queries[start : start + block]
        dist = torch.addmm(sq, q, points.T, alpha=-2.0)  # |p|^2 - 2 q.p
        if exclude_self:
            rows = torch.arange(q.shape[0], device=points.device)
            dist[rows, rows + start] = math.inf
        cand = dist.topk(m, dim=1, largest=False).indices
        del dist
        exact = ((points[cand] - q.unsqueeze(1)) ** 2).sum(-1)
        order = exact.topk(k, dim=1, largest=False).indices
        out[start : start + q.shape[0]] = cand.gather(1, order)
    return out


def neighbor_partners(
    X: torch.Tensor,
    neighbors: torch.Tensor,
    rows: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """For each of ``rows``, the row of ``X`` of one of its neighbors, drawn uniformly.

    ``neighbors[r]`` holds row ``r``'s neighbor indices into ``X``.
    """
    pick = torch.randint(
        neighbors.shape[1], rows.shape, generator=generator, device=rows.device
    )
    return X[neighbors[rows, pick]]
