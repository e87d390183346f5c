"""The command line's table files (``skdim_dm._io``): ``.npy`` and ``.csv`` read as
finite float64 tables, header rows told apart from data, and every bad file
refused with a message that names it and the problem."""

import numpy as np
import pytest

from skdim_dm._io import DataFileError, check_out_path, read_table, write_table

ROWS = np.array([[0.25, -1.5e-3, 3.0], [1.0, 2.5, -0.75]])


def _csv(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_npy_and_csv_round_trip_with_the_header(tmp_path):
    write_table(tmp_path / "z.npy", ROWS)
    table = read_table(tmp_path / "z.npy")
    assert table.header is None and table.values.dtype == np.float64
    np.testing.assert_array_equal(table.values, ROWS)
    write_table(tmp_path / "out" / "z.csv", ROWS, names=["a", "b", "c"])
    table = read_table(tmp_path / "out" / "z.csv")
    assert table.header == ["a", "b", "c"]
    np.testing.assert_allclose(table.values, ROWS, rtol=1e-15)
    # One dimension is one column.
    np.save(tmp_path / "v.npy", np.arange(4, dtype=np.int32))
    assert read_table(tmp_path / "v.npy").values.shape == (4, 1)


@pytest.mark.parametrize(
    "text, header, n_rows",
    [
        ("x,y\n1,2\n3,4\n", ["x", "y"], 2),  # a word: a header
        ('"1","2"\n1.5,2.5\n', ["1", "2"], 1),  # quoted numbers above unquoted data
        ("0,1\n0.25,1.5e-3\n2.5,3.75\n", ["0", "1"], 2),  # pandas' unnamed columns
        ("\ufeff1,2\n3,4\n", None, 2),  # a byte-order mark is not a header
        ("# comment\n1,2\n\n3,4\n", None, 2),  # comments and blank lines skipped
        ("1,2\n3,4\n", None, 2),  # integers above integers: data
    ],
    ids=["word", "quoted", "integer-names", "bom", "comments", "integers"],
)
def test_the_first_row_is_a_header_only_when_the_text_says_so(
    tmp_path, text, header, n_rows
):
    table = read_table(_csv(tmp_path, text))
    assert table.header == header
    assert table.values.shape == (n_rows, 2)
    assert table.values[-1, 0] in (3.0, 1.5, 2.5)


@pytest.mark.parametrize(
    "text, match",
    [
        ("1,2\n3,abc\n", "line 2, column 2: 'abc' is not a number"),
        ("1,2\n3,4j\n", "line 2, column 2: '4j' is a complex number"),
        ("1,2\n3,4,5\n", "line 2 has 3 fields where the first data row has 2"),
        ("1,2\n3,nan\n", "contains missing or infinite values"),
        ("", "the file has no rows"),
        ("a,b\n", "a header row but no data rows"),
    ],
    ids=["word", "complex", "ragged", "nan", "empty", "header-only"],
)
def test_bad_csv_cells_are_refused_naming_line_and_column(tmp_path, text, match):
    path = _csv(tmp_path, text)
    with pytest.raises(DataFileError, match=match) as info:
        read_table(path, what="DATA")
    assert str(info.value).startswith("DATA") or "cannot read DATA" in str(info.value)
    assert str(path) in str(info.value)


def test_bad_npy_files_are_refused_before_loading(tmp_path):
    np.save(tmp_path / "c.npy", ROWS + 1j)
    with pytest.raises(DataFileError, match="holds complex numbers"):
        read_table(tmp_path / "c.npy")
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    with pytest.raises(DataFileError, match="numeric table"):
        read_table(tmp_path / "s.npy")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataFileError, match="cannot read"):
        read_table(tmp_path / "o.npy")  # never unpickled
    # A header that claims far more data than the file holds: refused from the
    # header, before anything is allocated.
    big = tmp_path / "big.npy"
    with open(big, "wb") as fh:
        header = {"descr": "<f8", "fortran_order": False, "shape": (4 * 10**9, 3)}
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(np.zeros(12).tobytes())
    with pytest.raises(DataFileError, match=r"claims an array of shape \(4000000000"):
        read_table(big)


def test_paths_and_extensions_are_checked(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "t.txt").write_text("1,2\n")
    with pytest.raises(DataFileError, match="expected a .npy or .csv file, got '.txt'"):
        read_table(tmp_path / "t.txt")
    with pytest.raises(DataFileError, match="--out must end in .npy or .csv"):
        check_out_path(tmp_path / "z.parquet")
    with pytest.raises(DataFileError, match="--out must end in .npy or .csv"):
        write_table(tmp_path / "z.json", ROWS)
