"""Inputs larger than memory (np.memmap, torch Dataset) read as row sources
(``skdim_dm._core.sources``), and partial_fit over chunks."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skdim_dm import NoiseInjectedInfoMax
from skdim_dm._core.sources import RowSource, StreamedRows, as_source, moments

KW = dict(hidden_layer_sizes=(16,), batch_size=64, max_epochs=2, random_state=0)


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:400]


def _memmap(tmp_path, X, dtype=np.float32):
    path = tmp_path / "X.npy"
    np.save(path, X.astype(dtype))
    return np.load(path, mmap_mode="r")


# Tiny fits: their ConvergenceWarning (a poor MI estimate) is not the point.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
@pytest.mark.parametrize(
    "config",
    [
        {},
        {"augmentation": "neighbors", "n_neighbors": 4},
        {"early_stopping": True, "n_iter_no_change": 2},
    ],
    ids=["default", "neighbors", "early_stopping"],
)
def test_a_memmap_fits_exactly_as_the_array(tmp_path, digits, dtype, config):
    X = digits.astype(dtype)
    mm = _memmap(tmp_path, X, dtype)
    a = NoiseInjectedInfoMax(**KW, **config).fit(X)
    b = NoiseInjectedInfoMax(**KW, **config).fit(mm)
    assert np.array_equal(a.mean_, b.mean_) and np.array_equal(a.scale_, b.scale_)
    Z = b.transform(mm)
    assert Z.dtype == (np.float32 if dtype == np.float32 else np.float64)
    assert np.array_equal(a.transform(X), Z)
    assert b.n_features_in_ == X.shape[1] and not hasattr(b, "feature_names_in_")


class _ComputedRows(RowSource):
    """A toy input source, defined here alone: row ``i`` is computed from ``i``
    when it is read, and no row is ever stored."""

    def __init__(self, n_rows, n_features):
        self.n_rows, self.n_features = n_rows, n_features
        self.dtype = np.dtype(np.float64)
        self.rows_read = 0

    def read(self, rows):
        i = np.asarray(rows, dtype=np.float64)[:, None]
        k = np.arange(1, self.n_features + 1)
        self.rows_read += len(i)
        return np.sin(0.37 * i * k) + k * np.cos(0.11 * i)

    def whole(self):
        return self.read(np.arange(self.n_rows))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_row_source_of_ones_own_fits_exactly_as_the_array_it_stands_for():
    source = _ComputedRows(300, 6)
    X = source.whole()
    config = dict(KW, augmentation="neighbors", n_neighbors=4)
    a = NoiseInjectedInfoMax(**config).fit(X)
    source.rows_read = 0
    b = NoiseInjectedInfoMax(**config).fit(source)
    assert source.rows_read > 0  # read through its interface, not converted
    assert np.array_equal(a.mean_, b.mean_) and np.array_equal(a.scale_, b.scale_)
    assert np.array_equal(a.transform(X), b.transform(source))
    b.partial_fit(source)
    assert b.n_samples_seen_ == 600


def test_a_memmap_whose_file_was_replaced_is_read_through_its_map(tmp_path, digits):
    X = digits.astype(np.float64)
    mm = _memmap(tmp_path, X, np.float64)
    assert as_source(mm)._fd is not None  # the file is read with pread...
    fresh = tmp_path / "fresh.npy"
    np.save(fresh, X * 3 + 100)
    fresh.replace(tmp_path / "X.npy")  # ...until another writer replaces it
    assert as_source(mm)._fd is None
    est = NoiseInjectedInfoMax(**KW).fit(mm)
    assert np.array_equal(est.mean_, X.mean(0))
    assert np.array_equal(est.transform(mm), est.transform(X))


class _LaterRowComplex(torch.utils.data.Dataset):
    def __init__(self, X, bad):
        self.X, self.bad = X, bad

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i] + (1j if i == self.bad else 0)


def test_a_dataset_with_a_later_complex_row_is_refused(digits):
    est = NoiseInjectedInfoMax(**KW)
    with pytest.raises(ValueError, match="item 100 is complex"):
        est.fit(_LaterRowComplex(digits, 100))
    assert not hasattr(est, "encoder_")


def test_chunked_moments_equal_numpys(tmp_path, monkeypatch, digits):
    import skdim_dm._core.sources as data

    monkeypatch.setattr(data, "CHUNK_ELEMENTS", 64 * 37)  # many small chunks
    X = digits.astype(np.float32) + np.float32(100)
    source = as_source(_memmap(tmp_path, X))
    mean, std = moments(source, 0)
    assert np.array_equal(mean, X.mean(axis=0, dtype=np.float64))
    assert np.array_equal(std, X.std(axis=0, dtype=np.float64))
    mean, std = moments(source, None)
    assert mean == pytest.approx(X.mean(dtype=np.float64), rel=1e-14)
    assert std == pytest.approx(X.std(dtype=np.float64), rel=1e-12)


def test_a_dataset_of_rows_fits_as_the_array(digits):
    X = digits.astype(np.float32)
    ds = torch.utils.data.TensorDataset(torch.as_tensor(X), torch.zeros(len(X)))
    a = NoiseInjectedInfoMax(**KW).fit(X)
    b = NoiseInjectedInfoMax(**KW).fit(ds)
    assert np.array_equal(a.transform(X), b.transform(ds))


class _Stream(torch.utils.data.IterableDataset):
    def __iter__(self):
        return iter(())


class _Rows(torch.utils.data.Dataset):
    def __init__(self, X):
        self.X = X

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i]


def test_bad_streamed_input_is_refused_before_training(tmp_path, digits):
    bad = digits.copy()
    bad[150, 3] = np.nan
    est = NoiseInjectedInfoMax(**KW)
    with pytest.raises(ValueError, match="NaN"):
        est.fit(_memmap(tmp_path, bad, np.float64))
    assert not hasattr(est, "encoder_")
    with pytest.raises(ValueError, match="2D"):
        est.fit(_memmap(tmp_path, digits[:, 0]))
    with pytest.raises(ValueError, match="IterableDataset"):
        est.fit(_Stream())
    with pytest.raises(ValueError, match="one row"):
        est.fit(_Rows(digits.reshape(-1, 8, 8)))
    with pytest.raises(ValueError, match="minimum of 2"):
        est.fit(_Rows(digits[:1]))
    est.fit(_Rows(digits))
    with pytest.raises(ValueError, match="expecting 64 features"):
        est.transform(_Rows(digits[:, :10]))
    inf = digits.copy()
    inf[3, 3] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        est.transform(_memmap(tmp_path, inf, np.float64))


def _rss_bytes():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise KeyError("VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux")
def test_memmap_rows_are_read_without_mapping_the_file(tmp_path, digits):
    big = np.tile(digits.astype(np.float32), (400, 1))  # 160,000 rows, 41 MB
    mm = _memmap(tmp_path, big)
    source = as_source(mm)
    assert source._fd is not None  # pread, not the map
    rows = np.random.default_rng(0).integers(0, len(big), 4096)
    before = _rss_bytes()
    got = source.read(rows)
    chunks = [c.sum() for _, c in source.chunks()]
    # 1 MB of rows read at random, the file once in order: through the map this
    # made tens of MB resident (the kernel maps whole folios around each row)
    assert _rss_bytes() - before < 8 * 2**20
    assert np.array_equal(got, big[rows]) and len(chunks) > 1
    # views of a map: rows offset in the file, rows not contiguous in it
    for view in (mm[7:], mm[:, 3:9], mm[::3]):
        part = as_source(view)
        assert np.array_equal(
            part.read(np.array([5, 0, 2])), np.asarray(view)[[5, 0, 2]]
        )
        assert np.array_equal(part.read_range(1, 4), np.asarray(view)[1:4])


def test_copy_on_write_maps_are_read_through_the_map(tmp_path, monkeypatch, digits):
    _memmap(tmp_path, digits)
    cow = np.load(tmp_path / "X.npy", mmap_mode="c")
    cow[0, 0] = 123.0  # a change that lives only in the map's pages
    source = as_source(cow)
    assert source._fd is None and source._mmap is None  # never dropped
    assert source.read(np.array([0]))[0, 0] == 123.0


def test_streamed_rows_index_like_the_standardized_tensor(tmp_path, digits):
    mm = _memmap(tmp_path, digits, np.float64)
    mean, scale = digits.mean(0), digits.std(0) + 1.0
    full = torch.as_tensor(((digits - mean) / scale).astype(np.float32))
    index = np.random.default_rng(0).permutation(len(digits))[:300]
    rows = StreamedRows(as_source(mm), index, mean, scale, "cpu")
    sub = full[torch.as_tensor(index)]
    assert rows.shape == sub.shape and len(rows) == 300
    pick = torch.tensor([5, 0, 299, 5])
    assert torch.equal(rows[pick], sub[pick])
    assert torch.equal(rows[10:20], sub[10:20])
    grid = torch.tensor([[1, 2], [3, 4]])
    assert torch.equal(rows[grid], sub[grid])


# ------------------------------------------------------------------ partial_fit
def test_the_first_partial_fit_is_a_one_epoch_fit(digits):
    a = NoiseInjectedInfoMax(**{**KW, "max_epochs": 1}).fit(digits)
    b = NoiseInjectedInfoMax(**KW).partial_fit(digits)
    assert np.array_equal(a.transform(digits), b.transform(digits))
    assert b.n_iter_ == 1 and b.n_steps_ == a.n_steps_


def test_partial_fit_keeps_the_optimizer_statistics_and_counters(digits):
    est = NoiseInjectedInfoMax(**KW)
    chunks = np.array_split(digits, 4)
    for chunk in chunks:
        est.partial_fit(chunk)
    assert est.n_iter_ == 4 and len(est.history_) == 4
    assert [h["epoch"] for h in est.history_] == [1, 2, 3, 4]
    assert est.n_steps_ == sum(len(c) // 64 for c in chunks)
    assert est.n_samples_seen_ == len(digits)
    # running statistics of every row seen, as StandardScaler.partial_fit
    assert np.allclose(est.mean_, digits.mean(0))
    varying = digits.std(0) > 0
    assert np.allclose(est.scale_[varying], digits.std(0)[varying])
    # Adam resumes: a fresh optimizer would take a different step
    fresh = NoiseInjectedInfoMax(**KW)
    fresh.partial_fit(chunks[0])
    resumed = pickle.loads(pickle.dumps(fresh))
    resumed.partial_fit(chunks[1])
    fresh.partial_fit(chunks[1])
    assert np.array_equal(resumed.transform(digits), fresh.transform(digits))
    del resumed._adam_moments, resumed._adam_steps, resumed._adam_index
    resumed.partial_fit(chunks[2])
    fresh.partial_fit(chunks[2])
    assert not np.array_equal(resumed.transform(digits), fresh.transform(digits))


def test_partial_fit_state_survives_save_and_load(tmp_path, digits):
    est = NoiseInjectedInfoMax(**KW).partial_fit(digits[:200])
    est.save(tmp_path / "m")
    loaded = NoiseInjectedInfoMax.load(tmp_path / "m")
    est.partial_fit(digits[200:])
    loaded.partial_fit(digits[200:])
    assert np.array_equal(est.transform(digits), loaded.transform(digits))


# One pass per call: whether MI was found is not what this test checks.
@pytest.mark.filterwarnings(
    "ignore:the final MI estimate is negative:sklearn.exceptions.ConvergenceWarning"
)
def test_partial_fit_refuses_changed_structure_and_keeps_the_model(digits):
    est = NoiseInjectedInfoMax(**KW).partial_fit(digits[:200])
    Z = est.transform(digits)
    est.set_params(n_components=3)
    with pytest.raises(ValueError, match="n_components"):
        est.partial_fit(digits[200:])
    est.set_params(n_components=2, learning_rate_schedule="cosine")
    with pytest.raises(ValueError, match="constant"):
        est.partial_fit(digits[200:])
    est.set_params(learning_rate_schedule="constant")
    with pytest.raises(ValueError, match="expecting 64 features"):
        est.partial_fit(digits[200:, :10])
    assert np.array_equal(est.transform(digits), Z) and est.n_iter_ == 1
    with pytest.raises(ValueError, match="constant"):
        NoiseInjectedInfoMax(learning_rate_schedule="cosine").partial_fit(digits)
    # mutable parameters may change; neighbors come from each call's rows
    est.set_params(learning_rate=1e-4, augmentation="neighbors", n_neighbors=3)
    est.partial_fit(digits[200:])
    assert est.n_iter_ == 2
    with pytest.raises(ValueError, match="n_neighbors=3"):
        est.partial_fit(digits[:3])


def test_partial_fit_after_fit_continues_its_model(digits):
    est = NoiseInjectedInfoMax(**KW).fit(digits[:300])
    steps, seen = est.n_steps_, est.n_samples_seen_
    est.partial_fit(digits[300:])
    assert est.n_steps_ == steps + 1 and est.n_samples_seen_ == seen + 100
    assert est.n_iter_ == 3


@pytest.mark.parametrize("kind", ["memmap", "dataset"])
def test_every_partial_fit_call_reads_a_memmap_or_dataset_as_the_array(
    tmp_path, digits, kind
):
    X = digits.astype(np.float32)
    if kind == "memmap":
        streamed = _memmap(tmp_path, X)
    else:
        streamed = torch.utils.data.TensorDataset(torch.as_tensor(X))
    a, b = NoiseInjectedInfoMax(**KW), NoiseInjectedInfoMax(**KW)
    for rows in (slice(0, 200), slice(200, 400)):
        a.partial_fit(X[rows])
        b.partial_fit(streamed[rows] if kind == "memmap" else _subset(streamed, rows))
    assert b.n_iter_ == 2 and b.n_samples_seen_ == 400
    assert np.array_equal(a.mean_, b.mean_) and np.array_equal(a.scale_, b.scale_)
    assert np.array_equal(a.transform(X), b.transform(X))


def _subset(dataset, rows):
    return torch.utils.data.Subset(dataset, range(rows.start, rows.stop))


def test_partial_fit_reads_a_memmap_chunk(tmp_path, digits):
    mm = _memmap(tmp_path, digits, np.float64)
    a = NoiseInjectedInfoMax(**KW).partial_fit(digits[:200]).partial_fit(digits[200:])
    b = NoiseInjectedInfoMax(**KW).partial_fit(digits[:200]).partial_fit(mm[200:])
    assert np.allclose(a.transform(digits), b.transform(digits), atol=1e-6)
