"""Inputs that are not copied whole: memory-mapped arrays and torch Datasets.

``fit`` and ``transform`` accept an ``np.memmap`` (e.g. ``np.load(path,
mmap_mode="r")``) or a map-style ``torch.utils.data.Dataset`` whose items are
rows (a tensor or array of ``n_features`` values, or a tuple whose first element
is one, as ``TensorDataset`` gives). They are read through a :class:`RowSource`,
chunk by chunk or a batch of rows at a time, and never converted as a whole:

* the standardization statistics and the finiteness check take one pass each
  over row chunks (:func:`moments`); the per-feature statistics are those numpy
  computes on the whole array, bit for bit (the accumulation order is the same);
* training reads the rows of each batch when it needs them
  (:class:`StreamedRows`), so only the batch is standardized and moved to the
  device;
* the neighbor search of ``augmentation="neighbors"`` projects row chunks on the
  principal axes and searches blocks of the projection
  (:mod:`skdim_dm._core.neighbors`).

Pages of a memory map that were read count in the process's resident memory
until the kernel reclaims them, so :class:`MemmapSource` reads the file with
``pread`` instead (the page cache serves it, and nothing is mapped), or, where it
cannot, drops the map's pages (``madvise MADV_DONTNEED``) as it goes.

Pure numpy and torch; the data-parallel helpers take an optional
:class:`~skdim_dm._core.distributed.Shard`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
from numbers import Integral
from typing import NamedTuple

import numpy as np
import torch

__all__ = [
    "RowSource",
    "MemmapSource",
    "DatasetSource",
    "StreamedRows",
    "RowSubset",
    "as_source",
    "check_finite",
    "is_streamed",
    "moments",
    "update_moments",
]

#: Elements (of the source's dtype) read per chunk in sequential passes.
CHUNK_ELEMENTS = 2**22
#: A memory map's pages are dropped after this many bytes of random row reads.
RELEASE_BYTES = 32 * 2**20


_MALLOC_TRIM = None


def release_heap() -> None:
    """Give the heap memory that chunked passes freed back to the system.

    glibc raises its mmap threshold after freeing a large block, so the next
    chunks come from the heap, which it then keeps: on our machine the passes of
    the neighbor search over 60,000 MNIST rows left 166 MB resident (30 MB with
    a fixed threshold). ``malloc_trim`` returns it; a no-op without glibc.
    """
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _MALLOC_TRIM = libc.malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


def is_streamed(X) -> bool:
    """Whether ``fit``/``transform`` read ``X`` through a :class:`RowSource`: a
    memory map, a Dataset, or a :class:`RowSource` itself."""
    if isinstance(X, np.memmap):
        return getattr(X, "_mmap", None) is not None
    return isinstance(X, (RowSource, torch.utils.data.Dataset))


def as_source(X) -> RowSource:
    """The :class:`RowSource` of a memory map or Dataset (a :class:`RowSource` is
    its own); ``ValueError`` for one that cannot be used (checked before any row
    is read)."""
    if isinstance(X, RowSource):
        return X
    if isinstance(X, np.memmap):
        return MemmapSource(X)
    if isinstance(X, torch.utils.data.IterableDataset):
        raise ValueError(
            "an IterableDataset has no random access to its rows: pass a map-style "
            "Dataset, an array or a np.memmap, or feed chunks to partial_fit"
        )
    return DatasetSource(X)


class RowSource:
    """Random access to the rows of a 2-D input that is never copied whole.

    ``dtype`` is the working precision: float32 input stays float32, anything
    else is read as float64 (what ``fit`` does with an in-memory array). A
    subclass instance can be passed to ``fit``, ``partial_fit`` and
    ``transform`` as it is: a new kind of input needs no other change.
    """

    n_rows: int
    n_features: int
    dtype: np.dtype

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, self.n_features)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (any order, repeats allowed) in the working dtype."""
        raise NotImplementedError

    def read_range(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start`` to ``stop`` in the working dtype."""
        return self.read(np.arange(start, stop))

    def release(self) -> None:
        """Drop what reading left resident (a no-op unless memory-mapped)."""

    def chunk_rows(self) -> int:
        return max(1, CHUNK_ELEMENTS // max(self.n_features, 1))

    def chunks(self, start: int = 0, stop: int | None = None):
        """``(start, rows)`` chunks of the rows ``[start, stop)``, released after use."""
        stop = self.n_rows if stop is None else stop
        step = self.chunk_rows()
        for k in range(start, stop, step):
            block = self.read_range(k, min(k + step, stop))
            yield k, block
            del block
            self.release()
            release_heap()


def _working_dtype(dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def _mapped_file(address: int) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the file mapped at ``address`` in this process,
    from ``/proc/self/maps``; ``None`` where that is unknown (no ``/proc``)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split()
                low, high = (int(a, 16) for a in fields[0].split("-"))
                if low <= address < high:
                    major, minor = (int(n, 16) for n in fields[3].split(":"))
                    return os.makedev(major, minor), int(fields[4])
    except (OSError, ValueError, IndexError):
        return None
    return None


class MemmapSource(RowSource):
    """The rows of an ``np.memmap`` (2-D, real numbers).

    Rows are read from the file with ``pread`` into ordinary memory when the
    rows are contiguous in it, the map writes through to the file (modes
    ``r``, ``r+``, ``w+``) and the file's name still leads to the mapped file
    (same device and inode, from ``/proc/self/maps``; not after the file was
    replaced): page-cache pages are then never mapped into the process. (Reading through the map is not only resident until released: on
    our kernel one batch of 512 random MNIST rows mapped 300 MB of a 360 MB
    file, whole large folios at a time.) Otherwise rows are read through the map
    and its pages dropped after each chunk and every ``RELEASE_BYTES`` of random
    reads, except for a copy-on-write map (``mode="c"``), whose changes live only
    in its pages.
    """

    def __init__(self, X: np.memmap):
        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2D array, got a memory map of shape {X.shape}: reshape "
                "it to (n_samples, n_features)"
            )
        if X.dtype.kind == "c":
            raise ValueError("Complex data not supported")
        if X.dtype.kind not in "biuf":
            raise ValueError(f"a memory map of dtype {X.dtype} is not numeric data")
        self.X = X
        self.n_rows, self.n_features = X.shape
        self.dtype = _working_dtype(X.dtype)
        mode = getattr(X, "mode", "c")
        # Dropping pages of a private (copy-on-write) map would lose its changes.
        self._mmap = getattr(X, "_mmap", None) if mode != "c" else None
        self._unreleased = 0
        self._row_bytes = X.dtype.itemsize * max(self.n_features, 1)
        self._fd, self._start = None, None
        if mode != "c":
            self._open_file()

    def _open_file(self):
        X, mm = self.X, self._mmap
        filename = getattr(X, "filename", None)
        if mm is None or filename is None or X.size == 0:
            return
        if X.shape[1] > 1 and X.strides[1] != X.dtype.itemsize:
            return  # rows are not contiguous in the file: read through the map
        try:
            map_address = np.frombuffer(mm, dtype=np.uint8).ctypes.data
            map_offset = X.offset - X.offset % mmap.ALLOCATIONGRANULARITY
            self._start = map_offset + (X.ctypes.data - map_address)
            self._fd = os.open(filename, os.O_RDONLY)
        except (OSError, ValueError, TypeError, AttributeError):
            self._fd, self._start = None, None
            return
        # The name may now lead to another file (replaced by write-then-rename
        # after np.load): read it only when it is the file the map holds.
        st = os.fstat(self._fd)
        if _mapped_file(map_address) != (st.st_dev, st.st_ino):
            os.close(self._fd)
            self._fd, self._start = None, None

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)

    def _pread(self, out: np.ndarray, offset: int) -> None:
        view = memoryview(out.reshape(-1).view(np.uint8))
        done = 0
        while done < view.nbytes:
            n = os.preadv(self._fd, [view[done:]], offset + done)
            if n <= 0:
                raise OSError(f"could not read {self.X.filename} at byte {offset}")
            done += n

    def read(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")  # ascending: kind to the disk
        out = np.empty((rows.shape[0], self.n_features), dtype=self.dtype)
        if self._fd is None:
            out[order] = self.X[rows[order]]
            self._count(rows.shape[0])
            return out
        raw = np.empty((rows.shape[0], self.n_features), dtype=self.X.dtype)
        stride = self.X.strides[0]
        for i, r in enumerate(rows):
            self._pread(raw[i], self._start + int(r) * stride)
        out[...] = raw
        return out

    def read_range(self, start, stop):
        if self._fd is None or (
            stop - start > 1 and self.X.strides[0] != self._row_bytes
        ):
            out = np.array(self.X[start:stop], dtype=self.dtype)
            self._count(stop - start)
            return out
        raw = np.empty((stop - start, self.n_features), dtype=self.X.dtype)
        if raw.size:
            self._pread(raw, self._start + start * self.X.strides[0])
        return raw.astype(self.dtype, copy=False)

    def _count(self, n_rows):
        # A row spans at most two pages more than its bytes.
        self._unreleased += n_rows * (self._row_bytes + 2 * mmap.PAGESIZE)
        if self._unreleased >= RELEASE_BYTES:
            self.release()

    def release(self):
        self._unreleased = 0
        if self._mmap is None or self._fd is not None:
            return
        try:
            self._mmap.madvise(mmap.MADV_DONTNEED)
        except (AttributeError, OSError, ValueError):
            self._mmap = None  # not supported here (or the map was closed)


class DatasetSource(RowSource):
    """The rows of a map-style ``torch.utils.data.Dataset``: ``dataset[i]`` is a
    row (tensor, array or sequence of numbers) or a tuple whose first element is
    one."""

    def __init__(self, dataset):
        try:
            n = len(dataset)
        except TypeError:
            raise ValueError(
                "a Dataset passed as X must have a length (a map-style Dataset)"
            ) from None
        if n < 1:
            raise ValueError(
                "Found array with 0 sample(s) (shape=(0, ?)) while a minimum of 1 "
                "is required."
            )
        self.dataset = dataset
        first = self._row(dataset[0])
        if first.ndim != 1:
            raise ValueError(
                f"each item of the Dataset must be one row of features; item 0 has "
                f"shape {tuple(first.shape)}"
            )
        if first.dtype.kind == "c":
            raise ValueError("Complex data not supported")
        if first.dtype.kind not in "biuf":
            raise ValueError(f"Dataset items of dtype {first.dtype} are not numeric")
        self.n_rows, self.n_features = n, first.shape[0]
        self.dtype = _working_dtype(first.dtype)

    @staticmethod
    def _row(item) -> np.ndarray:
        if (
            isinstance(item, (tuple, list))
            and item
            and not isinstance(item[0], (int, float, np.generic))
        ):
            item = item[0]
        if isinstance(item, torch.Tensor):
            return item.detach().cpu().numpy()
        return np.asarray(item)

    def read(self, rows):
        rows = [int(r) for r in np.asarray(rows)]
        getitems = getattr(self.dataset, "__getitems__", None)
        items = (
            getitems(rows) if getitems is not None else [self.dataset[r] for r in rows]
        )
        out = np.empty((len(rows), self.n_features), dtype=self.dtype)
        for i, item in enumerate(items):
            row = self._row(item)
            if row.shape != (self.n_features,):
                raise ValueError(
                    f"Dataset item {rows[i]} has shape {row.shape}; item 0 has "
                    f"({self.n_features},)"
                )
            if row.dtype.kind not in "biuf":  # complex would be cast silently
                what = "complex" if row.dtype.kind == "c" else f"of dtype {row.dtype}"
                raise ValueError(
                    f"Dataset item {rows[i]} is {what}; rows must be real numbers"
                )
            out[i] = row
        return out


def check_finite(block: np.ndarray) -> None:
    if not np.isfinite(block).all():
        what = "NaN" if np.isnan(block).any() else "infinity or a value too large"
        raise ValueError(f"Input X contains {what}.")


def moments(source: RowSource, axis) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation in float64 over rows (``axis=0``) or over all
    values (``axis=None``), in two passes of chunks; ``ValueError`` for a
    non-finite value. With two or more features and ``axis=0`` they equal
    numpy's ``X.mean(0, dtype=float64)`` and ``X.std(0, dtype=float64)`` bit for
    bit (numpy adds the rows in order; so does this); otherwise to float64
    rounding."""
    n = source.n_rows * (1 if axis == 0 else source.n_features)
    sequential = axis == 0 and source.n_features > 1
    total = np.zeros(source.n_features if axis == 0 else ())

    def add(acc, values):
        if sequential:  # numpy's order: acc + row0 + row1 + ...
            return np.add.reduce(np.concatenate([acc[None], values]), axis=0)
        return acc + values.sum(axis=axis, dtype=np.float64)

    for _, block in source.chunks():
        check_finite(block)
        total = add(total, block.astype(np.float64, copy=False))
    mean = total / n
    total = np.zeros_like(mean)
    for _, block in source.chunks():
        dev = block - mean
        total = add(total, dev * dev)
    return mean, np.sqrt(total / n)


def update_moments(state: dict | None, X, axis) -> dict:
    """Running ``count``, ``mean`` and ``m2`` (sum of squared deviations) after
    more rows ``X`` (an array or a :class:`RowSource`), by Chan et al.'s pairwise
    update; ``axis`` as in :func:`moments`."""
    if isinstance(X, RowSource):
        mean, std = moments(X, axis)
        count = X.n_rows * (1 if axis == 0 else X.n_features)
    else:
        mean = X.mean(axis=axis, dtype=np.float64)
        std = X.std(axis=axis, dtype=np.float64)
        count = X.shape[0] * (1 if axis == 0 else X.shape[1])
    m2 = std * std * count
    if state is None:
        return {"count": count, "mean": mean, "m2": m2}
    n_a, n_b = state["count"], count
    total = n_a + n_b
    delta = mean - state["mean"]
    return {
        "count": total,
        "mean": state["mean"] + delta * (n_b / total),
        "m2": state["m2"] + m2 + delta * delta * (n_a * n_b / total),
    }


class RowSubset(NamedTuple):
    """Rows ``index`` of a :class:`RowSource` (``None``: all, in order)."""

    source: RowSource
    index: np.ndarray | None

    @property
    def shape(self) -> tuple[int, int]:
        n = self.source.n_rows if self.index is None else len(self.index)
        return (n, self.source.n_features)


class StreamedRows:
    """The standardized training rows of a :class:`RowSource`, read on demand.

    Stands in for the ``(n, n_features)`` float32 tensor on the training device
    wherever views and the training loop use it: ``shape``, ``device``,
    ``dtype``, ``len`` and indexing by a slice or a tensor of row numbers, which
    reads those rows, standardizes them as ``fit`` standardizes an array
    (``((x - mean) / scale)`` in the working precision, then float32) and moves
    them to the device.

    Parameters
    ----------
    source : RowSource
    index : ndarray of int or None
        The source rows that make these rows (the training part of a validation
        split), or ``None`` for all rows in order.
    mean, scale : ndarray of shape (n_features,)
    device : torch.device
    """

    dtype = torch.float32

    def __init__(self, source, index, mean, scale, device):
        self.source = source
        self.index = None if index is None else np.asarray(index, dtype=np.int64)
        self.mean, self.scale = mean, scale
        self.device = torch.device(device)
        n = source.n_rows if index is None else len(self.index)
        self.shape = torch.Size((n, source.n_features))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step == 1 and self.index is None:
                raw = self.source.read_range(start, max(start, stop))
                return self._tensor(raw)
            positions = np.arange(start, stop, step)
        elif isinstance(key, torch.Tensor):
            positions = key.detach().cpu().numpy().astype(np.int64, copy=False)
        elif isinstance(key, Integral):
            return self[key : key + 1][0]
        else:
            positions = np.asarray(key, dtype=np.int64)
        if positions.ndim != 1:
            shape = positions.shape
            return self[positions.reshape(-1)].reshape(*shape, self.shape[1])
        rows = positions if self.index is None else self.index[positions]
        return self._tensor(self.source.read(rows))

    def _tensor(self, raw: np.ndarray) -> torch.Tensor:
        # ((raw - mean) / scale).astype(float32), with one temporary
        centered = np.subtract(raw, self.mean)
        np.divide(centered, self.scale, out=centered)
        return torch.as_tensor(centered.astype(np.float32), device=self.device)
