"""Inference: a fitted encoder run on rows, in chunks, without noise.

Pure numpy and torch. :func:`encode_rows` standardizes and encodes an array or a
:class:`~skdim_dm._core.sources.RowSource` chunk by chunk, in the input's
precision; :func:`inference_encoder` keeps the encoder's copy for a device and
precision; :func:`encode_tensor` encodes rows already on the training device.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .sources import RowSource, check_finite

__all__ = ["TRANSFORM_CHUNK", "encode_rows", "encode_tensor", "inference_encoder"]

#: Rows per chunk in ``transform``.
TRANSFORM_CHUNK = 16384


def inference_encoder(
    encoder: nn.Module, device: torch.device, dtype: torch.dtype, cache: dict
) -> nn.Module:
    """``encoder`` itself on the CPU in float32, else an eval-mode copy on
    ``device`` in ``dtype``, kept in ``cache`` until the weights change."""
    if device.type == "cpu" and dtype == torch.float32:
        return encoder
    # Keyed on the weights' version counters, so in-place edits of the encoder
    # (fine-tuning, loading a state dict) never leave a stale copy behind.
    tensors = list(encoder.parameters()) + list(encoder.buffers())
    key = (str(device), dtype, id(encoder), tuple(t._version for t in tensors))
    if key not in cache:
        cache.clear()
        cache[key] = copy.deepcopy(encoder).to(device, dtype).eval()
    return cache[key]


def encode_rows(
    encoder: nn.Module,
    X,
    mean: np.ndarray,
    scale: np.ndarray,
    n_out: int,
    device: torch.device,
    dtype: torch.dtype,
) -> np.ndarray:
    """Latents ``(n_rows, n_out)`` of the rows of ``X`` (an array or a
    :class:`RowSource`, whose values are checked chunk by chunk) standardized
    by ``mean`` and ``scale``, in ``X``'s dtype; ``encoder`` runs on ``device``
    in ``dtype`` (:func:`inference_encoder`). ``ValueError`` when a row's latents are
    not finite (its values overflow the network's arithmetic)."""
    # Standardize chunk by chunk in the input's precision: no float64 copy of
    # a large float32 input (that copy made batch 65,536 four times slower
    # per row than batch 256).
    mean_x, scale_x = mean.astype(X.dtype), scale.astype(X.dtype)
    out = np.empty((X.shape[0], n_out), dtype=X.dtype)
    streamed = isinstance(X, RowSource)  # checked chunk by chunk
    largest = 0.0
    # Overflow (float32 input near its limit) is reported below, once.
    with torch.no_grad(), np.errstate(over="ignore", invalid="ignore"):
        for k in range(0, X.shape[0], TRANSFORM_CHUNK):
            if streamed:
                block = X.read_range(k, min(k + TRANSFORM_CHUNK, X.shape[0]))
                X.release()
                check_finite(block)
                largest = max(largest, float(np.abs(block).max()))
            else:
                block = X[k : k + TRANSFORM_CHUNK]
            xs = (block - mean_x) / scale_x
            xb = torch.as_tensor(xs, device=device, dtype=dtype)
            out[k : k + TRANSFORM_CHUNK] = encoder(xb).cpu().numpy()
    if not np.isfinite(out).all():
        bad = int((~np.isfinite(out)).any(axis=1).sum())
        largest = largest if streamed else np.abs(X).max()
        raise ValueError(
            f"{bad} row(s) of X gave non-finite latents: their values overflow "
            f"the network's arithmetic in {out.dtype} (input as large as "
            f"{largest:.3g}, while training data had scale "
            f"{scale.max():.3g}); pass float64 or rescale the data"
        )
    return out


@torch.no_grad()
def encode_tensor(encoder: nn.Module, X) -> torch.Tensor:
    """Latents of the rows of ``X`` (a tensor, or streamed rows that index like
    one), encoded on the CPU in chunks."""
    return torch.cat(
        [
            encoder(X[k : k + TRANSFORM_CHUNK].cpu())
            for k in range(0, X.shape[0], TRANSFORM_CHUNK)
        ]
    )
