"""The neighbor search of neighbor views: one PCA and one kNN search.

Pure torch. Rows come as a tensor on the training device or as
:class:`~skdim_dm._core.sources.StreamedRows` (read from a memory map or a Dataset on
demand); both are read in row chunks, so the two give the same projection bit for
bit. With a data-parallel :class:`~skdim_dm._core.distributed.Shard` each process takes
its share of the rows (or queries), the sums are added across processes and the
results gathered, so every process ends with all of them.
"""

from __future__ import annotations

import math

import torch

from .sources import CHUNK_ELEMENTS, StreamedRows, release_heap

__all__ = [
    "NEIGHBOR_DIMS",
    "principal_projection",
    "nearest_neighbors",
]

#: Neighbor search runs on at most this many principal components of the input.
NEIGHBOR_DIMS = 50
#: Elements of one block of the distance matrix (float32: 128 MB).
NEIGHBOR_BLOCK = 2**25
#: The same with ``low_memory`` (for rows read on demand): 32 MB, the heap
#: given back to the system every ``TRIM_EVERY`` blocks.
LOW_MEMORY_NEIGHBOR_BLOCK = 2**23
TRIM_EVERY = 8
#: Above this many features the principal axes come from a randomized range finder
#: instead of an eigendecomposition of the full covariance.
EXACT_PCA_MAX_FEATURES = 4096


def _chunks(X, start: int, stop: int, rows: int):
    """Row chunks ``[start, stop)`` of a tensor or of :class:`StreamedRows` (whose
    source pages and heap are released after each chunk)."""
    streamed = isinstance(X, StreamedRows)
    for k in range(start, stop, rows):
        yield X[k : min(k + rows, stop)]
        if streamed:
            X.source.release()
            release_heap()


@torch.no_grad()
def principal_projection(
    X,
    *others,
    n_dims: int = NEIGHBOR_DIMS,
    generator: torch.Generator | None = None,
    shard=None,
) -> tuple[torch.Tensor, ...]:
    """``X`` and ``others``, centered by ``X``'s mean, on ``X``'s top principal axes.

    ``X`` and ``others`` are tensors or :class:`StreamedRows`, read in chunks of
    ``CHUNK_ELEMENTS`` values. The mean and the covariance are summed in float64
    over the chunks (and across the processes of a ``shard``). Up to
    ``EXACT_PCA_MAX_FEATURES`` features the axes are exact: the covariance is
    eigendecomposed, so nothing random is drawn. With more features, a few steps of
    randomized subspace iteration find them, drawing only from ``generator``
    (the same on every process). With ``n_dims`` features or fewer ``X`` is only
    centered. Returns in-memory tensors in ``X``'s dtype, on its device.
    """
    n, p = X.shape
    device, dtype = X.device, X.dtype
    lo, hi = (0, n) if shard is None else shard.bounds(n)
    rows = max(1, CHUNK_ELEMENTS // p)

    def reduce(t):
        return t if shard is None else shard.all_reduce_(t)

    total = torch.zeros(p, dtype=torch.float64, device=device)
    for b in _chunks(X, lo, hi, rows):
        total += b.sum(0, dtype=torch.float64)
    mean = (reduce(total) / n).to(dtype)
    axes = None
    if p > n_dims and p <= EXACT_PCA_MAX_FEATURES:
        cov = torch.zeros(p, p, dtype=torch.float64, device=device)
        for b in _chunks(X, lo, hi, rows):
            b = (b - mean).double()
            cov += b.T @ b
        _, vecs = torch.linalg.eigh(reduce(cov))  # ascending eigenvalues
        axes = vecs[:, -n_dims:].flip(1).to(dtype)
    elif p > n_dims:

        def gram(v):  # Xc^T Xc v, over row chunks
            out = torch.zeros(v.shape, dtype=torch.float64, device=device)
            for b in _chunks(X, lo, hi, rows):
                b = b - mean
                out += (b.T @ (b @ v)).double()
            return reduce(out).to(dtype)

        width = min(p, n_dims + 10)
        v = torch.randn(p, width, generator=generator, device=device, dtype=dtype)
        for _ in range(4):
            v = torch.linalg.qr(gram(v)).Q
        small = v.T @ gram(v)
        _, vecs = torch.linalg.eigh((small + small.T).double() / 2)
        axes = v @ vecs[:, -n_dims:].flip(1).to(dtype)

    def projected(A):
        m = A.shape[0]
        a, b = (0, m) if shard is None else shard.bounds(m)
        parts = [
            (c - mean) if axes is None else (c - mean) @ axes
            for c in _chunks(A, a, b, rows)
        ]
        width = p if axes is None else axes.shape[1]
        local = (
            torch.cat(parts)
            if parts
            else torch.empty(0, width, device=device, dtype=dtype)
        )
        return local if shard is None else shard.gather_rows(local, m)

    return tuple(projected(A) for A in (X, *others))


@torch.no_grad()
def nearest_neighbors(
    queries: torch.Tensor,
    points: torch.Tensor,
    k: int,
    *,
    exclude_self: bool,
    shard=None,
    low_memory: bool = False,
) -> torch.Tensor:
    """Indices ``(n_queries, k)`` into ``points`` of each query's ``k`` nearest.

    Euclidean distance. Blockwise, so about two blocks of ``NEIGHBOR_BLOCK``
    floats are alive at a time (``LOW_MEMORY_NEIGHBOR_BLOCK`` with
    ``low_memory``, which also gives the heap back to the system as it goes).
    The fast ``|q|^2 - 2 q.p + |p|^2`` form loses precision when neighbors are
    much closer than the data's spread, so ``2 k`` candidates are taken from it
    and ranked again by their exact distances. With ``exclude_self`` the queries
    are the rows of ``points`` and each row's own index is skipped. With a
    ``shard`` each process searches its share of the queries and the table is
    gathered, so every process holds all of it.
    """
    n, n_queries = points.shape[0], queries.shape[0]
    lo, hi = (0, n_queries) if shard is None else shard.bounds(n_queries)
    m = min(2 * k, n - 1 if exclude_self else n)
    sq = (points * points).sum(1)
    block_elements = LOW_MEMORY_NEIGHBOR_BLOCK if low_memory else NEIGHBOR_BLOCK
    block = max(1, block_elements // max(n, 1))
    out = torch.empty(hi - lo, k, dtype=torch.long, device=points.device)
    for i, start in enumerate(range(lo, hi, block)):
        q = queries[start : min(start + block, hi)]
        dist = torch.addmm(sq, q, points.T, alpha=-2.0)  # |p|^2 - 2 q.p
        if exclude_self:
            rows = torch.arange(q.shape[0], device=points.device)
            dist[rows, rows + start] = math.inf
        cand = dist.topk(m, dim=1, largest=False).indices
        del dist
        exact = ((points[cand] - q.unsqueeze(1)) ** 2).sum(-1)
        order = exact.topk(k, dim=1, largest=False).indices
        out[start - lo : start - lo + q.shape[0]] = cand.gather(1, order)
        if low_memory and (i + 1) % TRIM_EVERY == 0:
            release_heap()
    if low_memory:
        release_heap()
    return out if shard is None else shard.gather_rows(out, n_queries)
