"""The terms of the training loss: the InfoNCE bound and the matching statistic.

Pure, differentiable torch code. :func:`infonce` turns a critic's score matrix
into the InfoNCE lower bound on mutual information; the sliced objective's bound
of one-dimensional slices has a fused form (:func:`sliced_gaussian_infonce`,
:func:`sliced_student_infonce`) with the same value and gradient; and
:func:`epps_pulley` measures how far one-dimensional projections of the latents
are from ``N(0, 1)`` (the joint-matching term).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "infonce",
    "sliced_gaussian_infonce",
    "sliced_student_infonce",
    "epps_pulley",
    "radial_normal_score",
]


def infonce(scores: torch.Tensor) -> torch.Tensor:
    """InfoNCE lower bound on MI (nats) from a ``(..., N, N)`` score array.

    ``scores[..., i, j] = T(y_i, e_j)`` with positives on the diagonal. Returns
    ``I_hat = log N - mean_j [logsumexp_i T(y_i, e_j) - T(y_j, e_j)]``, which never
    exceeds ``log N``, summed over any leading dimensions (the slices of a sliced
    critic). The training loss is ``-I_hat``.
    """
    n = scores.shape[-1]
    lse = torch.logsumexp(scores, dim=-2)
    diag = scores.diagonal(dim1=-2, dim2=-1)
    return (math.log(n) - (lse - diag).mean(-1)).sum()


# --------------------------------------------------------------------------------
# The InfoNCE bound of one-dimensional slices, fused.
#
# ``objective="sliced"`` scores ``S`` one-dimensional slices of a batch of ``N``
# pairs: ``S`` score matrices of ``N x N``. Written with autograd, each matrix is
# built, exponentiated and reduced in a dozen separate passes forward and as many
# backward. Here the forward pass builds the matrix once, exponentiates it in place
# and keeps it; the backward pass needs only row and column sums of it, taken as
# batched vector-matrix products. Same value and gradient as ``infonce`` over the
# kernel's scores (tests/test_bounds.py checks both against autograd).
#
# Layout: ``B[s, j, i]`` is the score of noisy ``y_i`` against clean ``e_j``; the
# bound takes, for each ``j``, a log-sum-exp over ``i`` (the last, contiguous axis).


def _vector_matrix(v: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``(S, N) x (S, N, K) -> (S, K)``: ``sum_n v[s, n] m[s, n, k]``, one batched
    GEMM (torch's batched matrix-vector product is many times slower on CPU)."""
    return torch.bmm(v.unsqueeze(-2), m).squeeze(-2)


def _bound_from_exp(y, lse, diag):
    n = y.shape[-1]
    return (math.log(n) - (lse - diag).mean(-1)).sum()


class _SlicedGaussianBound(torch.autograd.Function):
    """Scores ``B[s, j, i] = a y_i^2 + b e_j y_i`` (terms in ``e_j`` alone cancel
    in the bound)."""

    @staticmethod
    def forward(ctx, y, e, a, b):
        scores = torch.addcmul(
            (a * y * y).unsqueeze(-2), (b * e).unsqueeze(-1), y.unsqueeze(-2)
        )
        top = scores.amax(-1, keepdim=True)
        expd = scores.sub_(top).exp_()
        total = expd.sum(-1)
        lse = top.squeeze(-1) + total.log()
        ctx.save_for_backward(y, e, expd, total)
        ctx.coefficients = (a, b)
        return _bound_from_exp(y, lse, a * y * y + b * y * e)

    @staticmethod
    def backward(ctx, grad):
        y, e, expd, total = ctx.saved_tensors
        a, b = ctx.coefficients
        inv = 1.0 / total
        # P[j, i] = expd[j, i] / total[j]: softmax over i for each clean e_j.
        p_y = _vector_matrix(y, expd.transpose(-1, -2)) * inv  # sum_i P[j, i] y_i
        col = _vector_matrix(inv, expd)  # sum_j P[j, i]
        col_e = _vector_matrix(e * inv, expd)  # sum_j P[j, i] e_j
        c = -grad / y.shape[-1]
        grad_y = c * (2.0 * a * y * (col - 1.0) + b * (col_e - e))
        grad_e = c * (b * (p_y - y))
        return grad_y, grad_e, None, None


class _SlicedStudentBound(torch.autograd.Function):
    """Scores ``B[s, j, i] = k y_i^2 / 2 - c k log(1 + (y_i - rho e_j)^2 / w)``."""

    @staticmethod
    def forward(ctx, y, e, rho, width, c, k):
        diff = y.unsqueeze(-2) - rho * e.unsqueeze(-1)
        slope = diff / (diff * diff + width)  # d/dy of log(1 + diff^2 / w), halved
        scores = diff.square_().div_(width).log1p_().mul_(-c * k)
        scores.add_((0.5 * k) * (y * y).unsqueeze(-2))
        top = scores.amax(-1, keepdim=True)
        expd = scores.sub_(top).exp_()
        total = expd.sum(-1)
        lse = top.squeeze(-1) + total.log()
        diag = 0.5 * k * y * y - c * k * torch.log1p((y - rho * e) ** 2 / width)
        ctx.save_for_backward(y, e, expd, total, slope)
        ctx.constants = (rho, c, k)
        return _bound_from_exp(y, lse, diag)

    @staticmethod
    def backward(ctx, grad):
        y, e, expd, total, slope = ctx.saved_tensors
        rho, c, k = ctx.constants
        prob = expd / total.unsqueeze(-1)
        weighted = prob * slope
        col = prob.sum(-2)
        col_slope = weighted.sum(-2)
        row_slope = weighted.sum(-1)
        own = slope.diagonal(dim1=-2, dim2=-1)
        g = -grad / y.shape[-1]
        grad_y = g * (k * y * (col - 1.0) - 2.0 * c * k * (col_slope - own))
        grad_e = g * (2.0 * c * k * rho * (row_slope - own))
        return grad_y, grad_e, None, None, None, None


def sliced_gaussian_infonce(
    y: torch.Tensor, e: torch.Tensor, p: float, scale: float = 1.0
) -> torch.Tensor:
    """``infonce(scale * GaussianChannel ratio)`` over one-dimensional slices.

    ``y`` (noisy) and ``e`` (clean) have shape ``(slices, N)``; ``p`` is the
    channel's mixing weight. Returns the bound summed over slices.
    """
    inv = 1.0 / (p * p)
    rho = math.sqrt(1.0 - p * p)
    a, b = scale * 0.5 * (1.0 - inv), scale * inv * rho
    return _SlicedGaussianBound.apply(y.contiguous(), e.contiguous(), a, b)


def sliced_student_infonce(
    y: torch.Tensor, e: torch.Tensor, p: float, dof: float, scale: float = 1.0
) -> torch.Tensor:
    """The Student-t kernel's bound (see ``StudentCritic``) over one-dimensional
    slices of shape ``(slices, N)``, summed over slices."""
    rho = math.sqrt(1.0 - p * p)
    return _SlicedStudentBound.apply(
        y.contiguous(), e.contiguous(), rho, dof * p * p, 0.5 * (dof + 1.0), scale
    )


# --------------------------------------------------------------------------------
# A joint-matching term: the Epps-Pulley statistic of one-dimensional projections.

#: Quadrature nodes on [0, 5] for the Epps-Pulley integral (the integrand is even).
_EP_NODES = 9
_EP_LIMIT = 5.0


def epps_pulley(projections: torch.Tensor) -> torch.Tensor:
    """Mean over columns of the Epps-Pulley distance of each column to N(0, 1).

    ``projections`` has shape ``(N, M)``: ``N`` rows projected on ``M`` unit
    directions. For each column, ``int |phi_N(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt``
    with ``phi_N`` the empirical characteristic function (Epps and Pulley 1983;
    LeJEPA's SIGReg, Balestriero and LeCun 2025, regularizes the same statistic of
    random projections). Zero in expectation up to ``O(1/N)`` for an exact
    N(0, 1) column, positive otherwise; differentiable, bounded gradients.
    """
    t = torch.linspace(
        0.0, _EP_LIMIT, _EP_NODES, device=projections.device, dtype=projections.dtype
    )
    arg = projections.unsqueeze(-1) * t  # (N, M, T)
    real = torch.cos(arg).mean(0)
    imag = torch.sin(arg).mean(0)
    gauss = torch.exp(-0.5 * t * t)
    integrand = ((real - gauss) ** 2 + imag**2) * gauss
    # Twice the integral over [0, limit] (the integrand is even in t).
    return 2.0 * torch.trapezoid(integrand, t, dim=-1).mean()


def radial_normal_score(latents: torch.Tensor) -> torch.Tensor:
    """The Wilson-Hilferty normal score of ``||z||^2`` against ``chi2(d)``, shape
    ``(N, 1)``: ``((||z||^2 / d)^(1/3) - (1 - 2/(9d))) / sqrt(2/(9d))``, about
    N(0, 1) when the rows of ``latents`` (N, d) are N(0, I) (Wilson and
    Hilferty 1931; its Kolmogorov error is below 0.01 from d = 3 and shrinks
    as 1/d). A closed form with bounded gradients away from 0, so the radial
    law can be matched by the same one-dimensional statistic as the slices."""
    d = latents.shape[1]
    mean, var = 1.0 - 2.0 / (9.0 * d), 2.0 / (9.0 * d)
    r2 = (latents * latents).sum(1) / d
    return ((r2.clamp_min(1e-12) ** (1.0 / 3.0) - mean) / math.sqrt(var)).unsqueeze(1)
