"""Array files of the command line: ``.npy`` and ``.csv`` tables, one row per sample.

:func:`read_table` returns a finite float64 array of shape ``(n_samples,
n_features)`` or raises :class:`DataFileError` with a message that names the file;
:func:`write_table` writes latents. No estimator code: numpy and the standard
library only.

Header rows of CSV files are detected from the text, not guessed by
:class:`csv.Sniffer`: the first row is a header when one of its fields is not a
number, is quoted where the data below are not, or when it is written as integers
in every column whose data are all written as non-integers (``0,1,2`` above
``0.25,1.5e-3,...``: the column names of ``pandas.DataFrame.to_csv`` for an
unnamed frame). A UTF-8 byte-order mark is removed first.
"""

from __future__ import annotations

import csv
import re
from itertools import islice
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["DataFileError", "Table", "check_out_path", "read_table", "write_table"]

#: Data rows, after the first, whose format decides whether the first is a header.
_HEADER_SAMPLE_ROWS = 200

_INT = re.compile(r"[+-]?\d+")


class DataFileError(ValueError):
    """A data file that cannot be read as a non-empty, finite, real 2-D table."""


class Table(NamedTuple):
    """A table read by :func:`read_table`."""

    #: float64 array of shape (n_samples, n_features).
    values: np.ndarray
    #: The CSV header's field names, or None (no header, or a ``.npy`` file).
    header: list[str] | None


def read_table(path, what: str = "DATA") -> Table:
    """Read a ``.npy`` array or a ``.csv`` table as a finite float64 2-D array.

    A 1-D array becomes one column. Complex, non-numeric, empty and non-finite
    data are refused: :class:`DataFileError` (a ``ValueError``) whose message
    starts with ``what`` and the path.
    """
    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"cannot read {what} {str(path)!r}: no such file")
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise DataFileError(
            f"cannot read {what} {str(path)!r}: expected a .npy or .csv file, got "
            f"{suffix or 'no extension'!r}"
        )
    header = None
    try:
        if suffix == ".npy":
            _check_npy_size(p)
            X = np.load(p, allow_pickle=False)
        else:
            X, header = _read_csv(p)
    except (OSError, ValueError, UnicodeDecodeError, EOFError, csv.Error) as exc:
        raise DataFileError(f"cannot read {what} {str(path)!r}: {exc}") from None
    except MemoryError:
        raise DataFileError(
            f"cannot read {what} {str(path)!r}: not enough memory to hold it"
        ) from None
    X = np.asarray(X)
    if np.iscomplexobj(X):
        raise DataFileError(
            f"{what} {str(path)!r} holds complex numbers ({X.dtype}); only real "
            "values are accepted: store the real and imaginary parts as separate "
            "columns, e.g. np.column_stack([X.real, X.imag])"
        )
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] == 0 or not np.issubdtype(X.dtype, np.number):
        raise DataFileError(
            f"{what} {str(path)!r} must hold a non-empty 2-D numeric table, got "
            f"shape {X.shape} of {X.dtype}"
        )
    X = X.astype(np.float64, copy=False)
    if not np.all(np.isfinite(X)):
        raise DataFileError(f"{what} {str(path)!r} contains missing or infinite values")
    return Table(X, header)


def _check_npy_size(path: Path) -> None:
    """Refuse a ``.npy`` file whose header claims more data than the file holds,
    before anything is allocated (a 200-byte file can claim 60 GiB)."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:  # newer formats: np.load reads (or refuses) them itself
            return
        offset = fh.tell()
    if dtype.hasobject:
        return  # np.load refuses it (allow_pickle=False) with its own message
    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    held = path.stat().st_size - offset
    if claimed > held:
        raise DataFileError(
            f"its header claims an array of shape {tuple(shape)} ({dtype}, "
            f"{claimed:,} bytes) but the file holds {held:,} bytes of data"
        )


def _content_lines(fh):
    """``(line index, text)`` of the lines that are neither blank nor comments."""
    for i, line in enumerate(fh):
        text = line.strip()
        if text and not text.startswith("#"):
            yield i, text


def _cells(line: str) -> list[tuple[str, bool]]:
    """The fields of one CSV line as ``(text, quoted)`` pairs."""
    fields = next(csv.reader([line], skipinitialspace=True))
    # QUOTE_NONNUMERIC returns quoted fields as str and converts the others to
    # float, so it tells which fields were quoted; an unquoted word raises.
    try:
        kinds = next(
            csv.reader([line], skipinitialspace=True, quoting=csv.QUOTE_NONNUMERIC)
        )
    except ValueError:
        kinds = [None] * len(fields)
    quoted = [isinstance(k, str) for k in kinds]
    return [(f.strip(), q) for f, q in zip(fields, quoted)]


def _kind(text: str) -> str:
    """``"int"``, ``"float"`` (any other float literal) or ``"text"``."""
    if _INT.fullmatch(text):
        return "int"
    try:
        float(text)
    except ValueError:
        return "text"
    return "float"


def _is_header(first: list[tuple[str, bool]], rows: list[list[tuple[str, bool]]]):
    """Whether the first content line of a CSV file is a header row."""
    if any(_kind(text) == "text" for text, _ in first):
        return True
    if not rows:
        return False
    width = len(first)
    columns = [[row[j] for row in rows if len(row) == width] for j in range(width)]
    # A quoted number above unquoted data is a column name.
    for (_, quoted), column in zip(first, columns):
        if quoted and column and not any(q for _, q in column):
            return True
    # Numbers: a header of integers above columns written only as non-integers.
    votes = []
    for (text, _), column in zip(first, columns):
        kinds = {_kind(t) for t, _ in column}
        if kinds == {"float"}:  # an informative column
            votes.append(_kind(text) == "int")
    return bool(votes) and all(votes)


def _read_csv(path: Path) -> tuple[np.ndarray, list[str] | None]:
    # "utf-8-sig" drops a byte-order mark, which would otherwise glue itself to
    # the first number and make the first data row look like a header.
    with open(path, encoding="utf-8-sig", newline="") as fh:
        lines = _content_lines(fh)
        first = next(lines, None)
        sample = [_cells(text) for _, text in islice(lines, _HEADER_SAMPLE_ROWS)]
    if first is None:
        raise DataFileError("the file has no rows")
    first_index, first_text = first
    first_cells = _cells(first_text)
    header = _is_header(first_cells, sample)
    if header and not sample:
        raise DataFileError("the file has a header row but no data rows")
    skip = first_index + 1 if header else 0
    try:
        X = np.loadtxt(
            path,
            delimiter=",",
            skiprows=skip,
            ndmin=2,
            encoding="utf-8-sig",
            quotechar='"',
        )
    except ValueError:
        _raise_first_bad_cell(path, skip)
        raise
    return X, [text for text, _ in first_cells] if header else None


def _raise_first_bad_cell(path: Path, skip: int) -> None:
    """A precise message for a table that numpy could not parse (the slow path)."""
    width = None
    with open(path, encoding="utf-8-sig", newline="") as fh:
        lines = [(i, text) for i, text in _content_lines(fh) if i >= skip]
    for i, text in lines:
        cells = _cells(text)
        if width is None:
            width = len(cells)
        elif len(cells) != width:
            raise DataFileError(
                f"line {i + 1} has {len(cells)} fields where the first data row "
                f"has {width}"
            )
        for j, (cell, _) in enumerate(cells):
            if _kind(cell) != "text":
                continue
            try:
                complex(cell.replace(" ", ""))
            except ValueError:
                raise DataFileError(
                    f"line {i + 1}, column {j + 1}: {cell!r} is not a number"
                ) from None
            raise DataFileError(
                f"line {i + 1}, column {j + 1}: {cell!r} is a complex number; "
                "only real values are accepted (store the real and imaginary "
                "parts as separate columns)"
            )


def check_out_path(path) -> None:
    """Raise :class:`DataFileError` unless ``path`` ends in ``.npy`` or ``.csv``."""
    if Path(path).suffix.lower() not in (".npy", ".csv"):
        raise DataFileError(f"--out must end in .npy or .csv, got {str(path)!r}")


def write_table(path, Z: np.ndarray, names=None) -> None:
    """Write ``Z`` to a ``.npy`` file, or a ``.csv`` file with a header of ``names``.

    Raises :class:`DataFileError` for another extension or an unwritable path.
    """
    check_out_path(path)
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix.lower() == ".csv":
            header = ",".join(names) if names is not None else ""
            np.savetxt(p, Z, delimiter=",", header=header, comments="")
        else:
            np.save(p, Z)
    except OSError as exc:
        raise DataFileError(f"cannot write {str(path)!r}: {exc}") from None
