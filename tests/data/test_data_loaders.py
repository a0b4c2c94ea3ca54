"""Loaders: every source gives the same validated Dataset; every bad input a precise DataError."""

from __future__ import annotations

import re

import numpy as np
import pytest

from sgdlab.data import (
    Dataset, digits, from_arrays, load_csv, load_data, load_npy, load_npz, load_parquet,
)
from sgdlab.data.checks import as_finite_float32, encode_labels
from sgdlab.errors import ConfigError, DataError


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


IRIS = """sepal_length,sepal_width,species
5.1,3.5,setosa
4.9,3.0,setosa
6.3,3.3,virginica
5.8,2.7,versicolor
"""


# ------------------------------------------------------------------------------ CSV: happy path


def test_csv_label_last_by_default(tmp_path):
    ds = load_csv(write(tmp_path, "iris.csv", IRIS))
    assert isinstance(ds, Dataset)
    assert ds.X.dtype == np.float32 and ds.X.shape == (4, 2)
    assert ds.feature_names == ("sepal_length", "sepal_width")
    assert ds.task == "classification"
    # Sorted original values; indices follow that order.
    assert ds.classes == ("setosa", "versicolor", "virginica")
    assert ds.y.dtype == np.int32 and ds.y.tolist() == [0, 0, 2, 1]
    assert ds.name == "iris.csv"
    np.testing.assert_allclose(ds.X[2], [6.3, 3.3], rtol=1e-6)


def test_csv_label_by_name_and_index(tmp_path):
    p = write(tmp_path, "a.csv", "y,a,b\n1,0.5,2\n0,1.5,3\n1,2.5,4\n")
    by_name = load_csv(p, label_column="y")
    by_index = load_csv(p, label_column=0)
    by_digit_text = load_csv(p, label_column="0")
    for ds in (by_name, by_index, by_digit_text):
        assert ds.feature_names == ("a", "b")
        assert ds.classes == (0, 1) and isinstance(ds.classes[0], int)
        assert ds.y.tolist() == [1, 0, 1]
        np.testing.assert_array_equal(ds.X[:, 1], [2, 3, 4])


def test_csv_skips_blank_lines_keeps_line_numbers(tmp_path):
    p = write(tmp_path, "blank.csv", "a,b,y\n\n1,2,0\n\n3,x,1\n")
    with pytest.raises(DataError, match=r"blank\.csv, line 5, column 'b': 'x' is not a number"):
        load_csv(p)
    ok = load_csv(write(tmp_path, "ok.csv", "a,b,y\n\n1,2,0\n\n3,4,1\n\n"))
    assert ok.n == 2


def test_csv_tsv_and_bom_and_spaces(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_bytes("\ufeffa\tb\tlabel\n 1 \t2\tcat\n3\t 4\tdog\n".encode("utf-8"))
    ds = load_data(str(p))
    assert ds.feature_names == ("a", "b")
    assert ds.classes == ("cat", "dog")
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4]])


def test_csv_regression_inferred_and_forced(tmp_path):
    rows = "\n".join(f"{i},{i * 0.5 + 0.25}" for i in range(10))
    ds = load_csv(write(tmp_path, "r.csv", "x,target\n" + rows + "\n"))
    assert ds.task == "regression" and ds.y.dtype == np.float32 and ds.classes == ()
    # Integer labels with few values infer classification, unless forced.
    p = write(tmp_path, "c.csv", "x,t\n1,3\n2,5\n3,3\n")
    assert load_csv(p).task == "classification"
    forced = load_csv(p, task="regression")
    assert forced.task == "regression" and forced.y.tolist() == [3.0, 5.0, 3.0]


def test_csv_many_integer_labels_are_regression(tmp_path):
    rows = "\n".join(f"{i},{i}" for i in range(51))
    assert load_csv(write(tmp_path, "m.csv", "x,t\n" + rows + "\n")).task == "regression"
    rows = "\n".join(f"{i},{i}" for i in range(50))
    assert load_csv(write(tmp_path, "f.csv", "x,t\n" + rows + "\n")).task == "classification"


# ------------------------------------------------------------------------------ CSV: errors


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("sepal_length,sepal_width,y\n1,2,0\n" + "1,2,1\n" * 14 + "5,abc,1\n",
         r"my\.csv, line 17, column 'sepal_width': 'abc' is not a number"),
        ("a,b,y\n1,,0\n", r"my\.csv, line 2, column 'b': empty cell"),
        ("a,b,y\n1,2,0\n1,2\n", r"my\.csv, line 3: found 2 cells but the header has 3 \(missing 'y'\)"),
        ("a,b,y\n1,2,0,9\n", r"my\.csv, line 2: found 4 cells .*\(1 extra cell\(s\) after column 'y'"),
        ("", r"my\.csv: file is empty"),
        ("\n\n", r"my\.csv: file is empty"),
        ("a,b,y\n", r"my\.csv: has a header \(line 1\) but no data rows"),
        ("a,b,y\n1,2,0\n1,nan,1\n", r"my\.csv, line 3, column 'b': value is NaN"),
        ("a,b,y\n1,2,0\ninf,2,1\n", r"my\.csv, line 3, column 'a': value is inf"),
        ("a,b,y\n1e300,2,0\n", r"my\.csv, line 2, column 'a': value 1e\+300 is too large for float32"),
        ("a;b;y\n1;2;0\n", r"my\.csv, line 1: the header has 1 column .* is that the delimiter"),
        ("1,2,3\n4,5,6\n", r"my\.csv, line 1: .*looks like data; a header row"),
        ("a,b,y\n1,2,\n", r"my\.csv, line 2, column 'y': label is missing"),
        ("a,b,y\n1,2,nan\n", r"my\.csv, line 2, column 'y': label is missing \(NaN\)"),
    ],
)
def test_csv_errors_name_file_line_column(tmp_path, text, pattern):
    with pytest.raises(DataError, match=pattern):
        load_csv(write(tmp_path, "my.csv", text))


def test_csv_missing_label_column_lists_available(tmp_path):
    p = write(tmp_path, "my.csv", "a,b,y\n1,2,0\n")
    with pytest.raises(DataError, match=r"my\.csv: label column 'label' not found; available columns: 'a', 'b', 'y'"):
        load_csv(p, label_column="label")
    with pytest.raises(DataError, match=r"index 3 is out of range for 3 columns .*'a', 'b', 'y'"):
        load_csv(p, label_column=3)


def test_csv_regression_needs_numeric_labels(tmp_path):
    p = write(tmp_path, "my.csv", "a,y\n1,2.5\n2,cat\n")
    with pytest.raises(DataError, match=r"my\.csv, line 3, column 'y': label 'cat' is not a number"):
        load_csv(p, task="regression")


def test_csv_other_errors(tmp_path):
    with pytest.raises(DataError, match=r"file not found: .*nope\.csv"):
        load_csv(tmp_path / "nope.csv")
    p = tmp_path / "bin.csv"
    p.write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(DataError, match=r"bin\.csv.*not UTF-8"):
        load_csv(p)
    with pytest.raises(DataError, match="task must be one of"):
        load_csv(write(tmp_path, "ok.csv", "a,y\n1,0\n"), task="ranking")
    with pytest.raises(DataError, match="delimiter must be a single character"):
        load_csv(tmp_path / "ok.csv", delimiter=";;")


# ------------------------------------------------------------------------------ Parquet


def write_parquet(tmp_path, name, columns):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / name
    pq.write_table(pa.table(columns), p)
    return p


def test_parquet_matches_csv(tmp_path):
    p = write_parquet(tmp_path, "iris.parquet", {
        "sepal_length": [5.1, 4.9, 6.3, 5.8],
        "sepal_width": [3.5, 3.0, 3.3, 2.7],
        "species": ["setosa", "setosa", "virginica", "versicolor"],
    })
    a, b = load_parquet(p), load_csv(write(tmp_path, "iris.csv", IRIS))
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert (a.classes, a.feature_names, a.task) == (b.classes, b.feature_names, b.task)
    assert load_data(str(p)).n == 4


def test_parquet_label_kinds(tmp_path):
    pa = pytest.importorskip("pyarrow")
    p = write_parquet(tmp_path, "k.pq", {
        "flag": [True, False, True],
        "n": [1, 2, 3],
        "lab": pa.array(["b", "a", "b"]).dictionary_encode(),
        "r": [0.5, 1.5, 2.25],
    })
    ds = load_parquet(p, label_column="lab")
    assert ds.classes == ("a", "b") and ds.y.tolist() == [1, 0, 1]
    assert ds.feature_names == ("flag", "n", "r")
    np.testing.assert_array_equal(ds.X[:, 0], [1, 0, 1])
    p = write_parquet(tmp_path, "r.pq", {"n": [1, 2, 3], "r": [0.5, 1.5, 2.25]})
    assert load_parquet(p).task == "regression"


def test_parquet_errors(tmp_path):
    p = write_parquet(tmp_path, "s.parquet", {"a": [1.0, 2.0], "b": ["x", "y"], "y": [0, 1]})
    with pytest.raises(DataError, match=r"s\.parquet, column 'b': type string is not numeric"):
        load_parquet(p)
    p = write_parquet(tmp_path, "n.parquet", {"a": [1.0, None, 3.0], "y": [0, 1, 0]})
    with pytest.raises(DataError, match=r"n\.parquet, row index 1, column 'a': 1 null feature"):
        load_parquet(p)
    p = write_parquet(tmp_path, "f.parquet", {"a": [1.0, 2.0, 3.0], "b": [0.0, 0.0, float("inf")],
                                              "y": [0, 1, 0]})
    with pytest.raises(DataError, match=r"f\.parquet, row index 2, column 'b': value is inf"):
        load_parquet(p)
    p = write_parquet(tmp_path, "l.parquet", {"a": [1.0, 2.0], "y": [0, None]})
    with pytest.raises(DataError, match=r"l\.parquet, row index 1, column 'y': 1 null label"):
        load_parquet(p)
    with pytest.raises(DataError, match=r"label column 'z' not found; available columns: 'a', 'y'"):
        load_parquet(p, label_column="z")
    p = write_parquet(tmp_path, "e.parquet", {"a": np.zeros(0), "y": np.zeros(0)})
    with pytest.raises(DataError, match=r"e\.parquet: has columns but no rows"):
        load_parquet(p)
    bad = write(tmp_path, "bad.parquet", "not parquet at all")
    with pytest.raises(DataError, match=r"bad\.parquet: cannot read as Parquet"):
        load_parquet(bad)


# ------------------------------------------------------------------------------ NumPy files


def test_npy_last_column_is_label(tmp_path):
    arr = np.array([[0.5, 1.0, 0], [1.5, 2.0, 1], [2.5, 3.0, 2]])
    np.save(tmp_path / "a.npy", arr)
    ds = load_npy(tmp_path / "a.npy")
    np.testing.assert_array_equal(ds.X, arr[:, :2].astype(np.float32))
    assert ds.classes == (0, 1, 2) and ds.y.tolist() == [0, 1, 2]


def test_npz_round_trip_and_keys(tmp_path):
    X = np.arange(12, dtype=np.float64).reshape(4, 3)
    y = np.array(["b", "a", "b", "c"])
    np.savez(tmp_path / "a.npz", X=X, y=y, extra=np.zeros(2))
    ds = load_data(str(tmp_path / "a.npz"))
    np.testing.assert_array_equal(ds.X, X)
    assert ds.classes == ("a", "b", "c")
    np.savez(tmp_path / "k.npz", feats=X, target=y)
    assert load_npz(tmp_path / "k.npz", x_key="feats", y_key="target").n == 4
    with pytest.raises(DataError, match=r"k\.npz: no array named 'X'; arrays in the file: 'feats', 'target'"):
        load_npz(tmp_path / "k.npz")


def test_numpy_refuses_object_arrays(tmp_path):
    np.save(tmp_path / "o.npy", np.array([[1, "a"], [2, "b"]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"o\.npy: .*object arrays are refused"):
        load_npy(tmp_path / "o.npy")
    np.savez(tmp_path / "o.npz", X=np.ones((2, 2)), y=np.array([1, "a"], dtype=object))
    with pytest.raises(DataError, match=r"o\.npz: array 'y' has dtype=object; object arrays are refused"):
        load_npz(tmp_path / "o.npz")


def test_numpy_shape_errors(tmp_path):
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    with pytest.raises(DataError, match=r"cube\.npy: expected a 2-D array .* 3-D array of shape "
                                        r"\(2, 3, 4\); .* \.npz archive"):
        load_npy(tmp_path / "cube.npy")
    np.savez(tmp_path / "cube.npz", X=np.zeros((2, 3, 4)), y=np.zeros(2))
    assert load_npz(tmp_path / "cube.npz").example_shape == (3, 4)  # examples of any shape
    np.savez(tmp_path / "len.npz", X=np.zeros((5, 2)), y=np.zeros(3))
    with pytest.raises(DataError, match=r"len\.npz: X has 5 rows but y has 3 labels"):
        load_npz(tmp_path / "len.npz")
    np.save(tmp_path / "nan.npy", np.array([[1.0, 0], [np.nan, 1]]))
    with pytest.raises(DataError, match=r"nan\.npy, row index 1, column 'x0': value is NaN"):
        load_npy(tmp_path / "nan.npy")
    np.save(tmp_path / "one.npy", np.zeros((3, 1)))
    with pytest.raises(DataError, match=r"one\.npy: has 1 column"):
        load_npy(tmp_path / "one.npy")
    write(tmp_path, "junk.npy", "nope")
    with pytest.raises(DataError, match=r"junk\.npy: cannot read as a NumPy file"):
        load_npy(tmp_path / "junk.npy")


# ------------------------------------------------------------------------------ from_arrays


def test_from_arrays_converts_and_validates():
    ds = from_arrays([[1, 2], [3, 4], [5, 6]], [True, False, True])
    assert ds.X.dtype == np.float32 and ds.classes == (0, 1) and ds.y.tolist() == [1, 0, 1]
    ds = from_arrays(np.ones((3, 2)), np.array([[0.5], [1.5], [2.5]]), task="regression")
    assert ds.y.dtype == np.float32 and ds.y.shape == (3,)
    assert from_arrays(np.ones((2, 1)), [1.5, 2.5], task="classification").classes == (1.5, 2.5)
    with pytest.raises(DataError, match=r"features must be 2-D .*X.reshape\(-1, 1\)"):
        from_arrays(np.ones(3), [0, 1, 0])
    assert from_arrays(np.ones((2, 2, 2)), [0, 1]).X.shape == (2, 2, 2)  # any example shape
    with pytest.raises(DataError, match=r"X has 3 rows but y has 2 labels"):
        from_arrays(np.ones((3, 2)), [0, 1])
    with pytest.raises(DataError, match=r"mine, row index 1, column 'x1': value is inf"):
        from_arrays([[1, 2], [3, np.inf]], [0, 1], name="mine")
    with pytest.raises(DataError, match=r"row index 0, column 'x1': 'abc' is not a number"):
        from_arrays(np.array([[1, "abc"]], dtype=object), [0])
    with pytest.raises(DataError, match=r"row index 1, column 'label': label is missing"):
        from_arrays(np.ones((2, 1)), np.array(["a", None], dtype=object))
    with pytest.raises(DataError, match=r"labels must be 1-D .*y.argmax\(axis=1\)"):
        from_arrays(np.ones((2, 1)), np.eye(2))
    with pytest.raises(DataError, match=r"3 feature names for 2 feature columns"):
        from_arrays(np.ones((2, 2)), [0, 1], feature_names=["a", "b", "c"])
    with pytest.raises(DataError, match=r"no rows"):
        from_arrays(np.ones((0, 2)), [])


def test_from_arrays_accepts_pandas():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"height": [1.0, 2.0, 3.0], "weight": [4, 5, 6]})
    ds = from_arrays(df, pd.Series(["x", "y", "x"]))
    assert ds.feature_names == ("height", "weight")
    assert ds.classes == ("x", "y") and ds.y.tolist() == [0, 1, 0]
    np.testing.assert_array_equal(ds.X[:, 1], [4, 5, 6])


def test_shared_helpers():
    y, task, classes = encode_labels(np.array(["3", "1", "3"]))
    assert (task, classes, y.tolist()) == ("classification", (1, 3), [1, 0, 1])
    with pytest.raises(DataError, match=r"src, line 9, column 'c': value is NaN"):
        as_finite_float32(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, np.nan]]), source="src",
                          columns=["a", "b", "c"], where=lambda i: f"line {i + 8}")


# ------------------------------------------------------------------------------ load_data


def test_load_data_builtins_and_specs():
    ds = load_data("digits")
    assert (ds.n, ds.d, ds.n_classes, ds.name) == (1797, 64, 10, "digits")
    assert ds.X.dtype == np.float32 and ds.classes == tuple(range(10))
    assert digits().feature_names[0] == "pixel_0_0"
    b = load_data("blobs:n=200,d=5", seed=3)
    assert (b.n, b.d, b.name) == (200, 5, "blobs:n=200,d=5")
    assert b.meta["params"]["seed"] == 3
    assert load_data("blobs:n=50,seed=7", seed=1).meta["params"]["seed"] == 7
    assert load_data("xor", n=30).n == 30
    assert load_data("linreg", task="regression").task == "regression"


def test_digits_are_scikit_learns_read_without_importing_it(tmp_path):
    import subprocess
    import sys

    from sklearn.datasets import load_digits
    ours, theirs = digits(), load_digits()
    np.testing.assert_array_equal(ours.X, theirs.data.astype(np.float32))
    np.testing.assert_array_equal(ours.y, theirs.target)
    assert list(ours.feature_names) == list(theirs.feature_names)
    code = ("import sys; from sgdlab.data import digits; digits(); "
            "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("content", [b"not gzip", "1,2,3\n", "1,2\n" * 1797])
def test_a_damaged_digits_file_is_one_message(content, tmp_path, monkeypatch):
    import gzip

    import sgdlab.data.builtin as builtin
    path = tmp_path / "digits.csv.gz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(gzip.compress(content.encode()))
    monkeypatch.setattr(builtin, "digits_file", lambda: path)
    with pytest.raises(DataError, match=r"the digits file .*digits\.csv\.gz.* reinstall "
                                        r"scikit-learn"):
        digits()


def test_load_data_errors(tmp_path):
    with pytest.raises(DataError, match=r"file not found: .*missing\.csv"):
        load_data(str(tmp_path / "missing.csv"))
    with pytest.raises(DataError, match=r"unknown data 'iris'.*digits, digits-images, blobs, gaussian, linreg, xor, mnist-like.*\.csv, \.tsv, \.parquet, \.pq, \.npy, \.npz"):
        load_data("iris")
    write(tmp_path, "data.txt", "a,b\n")
    with pytest.raises(DataError, match=r"unsupported file type '\.txt'; supported extensions: \.csv"):
        load_data(str(tmp_path / "data.txt"))
    with pytest.raises(DataError, match="digits' is a classification task, not regression"):
        load_data("digits", task="regression")
    with pytest.raises(ConfigError, match=r"blobs: unknown parameter 'k'; valid parameters: n, d, seed, margin"):
        load_data("blobs:k=3")
    with pytest.raises(ConfigError, match="label_column applies to CSV and Parquet"):
        load_data("digits", label_column="y")
    p = write(tmp_path, "a.csv", "a,y\n1,0\n")
    with pytest.raises(ConfigError, match=r"option 'x_key' does not apply to \.csv files; valid options: delimiter, label_column"):
        load_data(str(p), x_key="X")
    assert load_data(str(p), label_column="a").feature_names == ("y",)


def test_load_data_same_bits_for_csv_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    lines = ["a,b,c,y"] + [",".join(repr(float(v)) for v in row) + f",{t}" for row, t in zip(X, y)]
    p = write(tmp_path, "rt.csv", "\n".join(lines) + "\n")
    np.savez(tmp_path / "rt.npz", X=X, y=y)
    a, b = load_data(str(p)), load_data(str(tmp_path / "rt.npz"))
    assert a.X.tobytes() == b.X.tobytes() and a.y.tobytes() == b.y.tobytes()
    assert re.fullmatch(r"rt\.(csv|npz)", a.name)
