"""Inference (``skdim_dm._core.inference``): rows standardized and encoded in
chunks, overflow reported by row count, and the encoder's copy for another
precision rebuilt when the weights change."""

import numpy as np
import pytest
import torch

from skdim_dm._core import inference
from skdim_dm._core.inference import encode_rows, encode_tensor, inference_encoder
from skdim_dm._core.networks import build_networks
from skdim_dm._core.sources import RowSource


def _encoder():
    nets = build_networks(4, 2, noise_level=0.5, hidden_layer_sizes=(8,), seed=0)
    return nets.encoder.eval()


class _Rows(RowSource):
    def __init__(self, X):
        self.X, self.dtype = X, X.dtype
        self.n_rows, self.n_features = X.shape

    def read(self, rows):
        return self.X[rows]


def test_rows_are_standardized_and_encoded_in_chunks(monkeypatch):
    encoder = _encoder()
    X = np.random.default_rng(0).normal(3.0, 2.0, (50, 4)).astype(np.float32)
    mean, scale = np.full(4, 3.0), np.full(4, 2.0)
    cpu = torch.device("cpu")
    with torch.no_grad():
        want = encoder(torch.as_tensor((X - 3.0) / 2.0)).numpy()
    monkeypatch.setattr(inference, "TRANSFORM_CHUNK", 16)  # four chunks
    for rows in (X, _Rows(X)):
        Z = encode_rows(encoder, rows, mean, scale, 2, cpu, torch.float32)
        assert Z.dtype == np.float32
        np.testing.assert_allclose(Z, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        encode_tensor(encoder, torch.as_tensor((X - 3.0) / 2.0)), want, rtol=1e-5
    )


def test_rows_whose_latents_overflow_are_counted_in_the_error():
    encoder = _encoder()
    X = np.zeros((5, 4), dtype=np.float32)
    X[[1, 3]] = 3e38
    with pytest.raises(ValueError, match="2 row\\(s\\) of X gave non-finite"):
        encode_rows(
            encoder, X, np.zeros(4), np.full(4, 1e-3), 2, torch.device("cpu"),
            torch.float32,
        )  # fmt: skip


def test_the_encoders_copy_is_kept_until_its_weights_change():
    encoder, cache = _encoder(), {}
    cpu = torch.device("cpu")
    assert inference_encoder(encoder, cpu, torch.float32, cache) is encoder
    copy = inference_encoder(encoder, cpu, torch.float64, cache)
    assert copy is not encoder and next(copy.parameters()).dtype == torch.float64
    assert inference_encoder(encoder, cpu, torch.float64, cache) is copy
    with torch.no_grad():
        next(encoder.parameters()).add_(1.0)
    fresh = inference_encoder(encoder, cpu, torch.float64, cache)
    assert fresh is not copy and len(cache) == 1
