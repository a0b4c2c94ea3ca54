"""Every malformed input is refused before step 1 with a located message; inputs untouched.

A table of fixtures: each writes one bad input (file or arrays), names the message it must
produce, and is run through the real entry points (``sgdlab train`` for files: exit code 2,
one message, no traceback; ``sgdlab.fit`` for arrays: a :class:`DataError`/:class:`ConfigError`).
The file's sha256 before and after proves the input is never modified, and the absence of a
checkpoint proves nothing was trained. The number of fixtures is printed in the test summary.
"""

import pickle

import numpy as np
import pytest

import sgdlab
from sgdlab.cli.main import main
from sgdlab.errors import SgdlabError

from rel_helpers import file_digest

REFUSED: set[str] = set()


def refused(name: str) -> None:
    """Count the malformed-input fixture ``name`` as refused with its message (the count is
    printed at the end of the session)."""
    REFUSED.add(name)
    pytest.reliability_counts["malformed-input fixtures (each refused with its message)"] = \
        len(REFUSED)


def text(name, body, encoding="utf-8"):
    def make(d):
        p = d / name
        p.write_bytes(body.encode(encoding) if isinstance(body, str) else body)
        return p
    return make


def npy(name, arr, **kw):
    def make(d):
        p = d / name
        np.save(p, arr, **kw)
        return p
    return make


def npz(name, **arrays):
    def make(d):
        p = d / name
        np.savez(p, **arrays)
        return p
    return make


def parquet(name, columns: dict):
    def make(d):
        import pyarrow as pa
        import pyarrow.parquet as pq
        p = d / name
        pq.write_table(pa.table(columns), p)
        return p
    return make


class Trap:
    """Unpickling this would create the file ``UNPICKLED`` next to the data: proof of a load."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def object_npy(d):
    p = d / "objects.npy"
    arr = np.empty((2, 2), dtype=object)
    arr[:] = Trap(d / "UNPICKLED")
    np.save(p, arr, allow_pickle=True)
    return p


def object_npz(d):
    p = d / "objects.npz"
    y = np.empty(3, dtype=object)
    y[:] = Trap(d / "UNPICKLED")
    np.savez(p, X=np.ones((3, 2)), y=y)
    return p


def truncated_npy(d):
    p = d / "cut.npy"
    np.save(p, np.ones((50, 3)))
    p.write_bytes(p.read_bytes()[:200])
    return p


def absurd_npy(d):
    """A damaged header declaring 24 TB of data: refused before NumPy allocates anything."""
    p = d / "absurd.npy"
    with open(p, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 12, 3)})
        f.write(b"\0" * 64)
    return p


GOOD = "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n"
FILES = [
    ("csv-nan", text("nan.csv", "a,b,y\n1,2,0\n1,nan,1\n"), r"nan.csv, line 3, column 'b': value is NaN"),
    ("csv-inf", text("inf.csv", "a,b,y\n1,2,0\n-inf,2,1\n"), r"line 3, column 'a': value is -inf"),
    ("csv-huge", text("huge.csv", "a,b,y\n1,2,0\n1,1e39,1\n"), r"line 3, column 'b': value 1e\+39 is too large for float32"),
    ("csv-text-cell", text("word.csv", "a,b,y\n1,2,0\n3,abc,1\n"), r"word.csv, line 3, column 'b': 'abc' is not a number"),
    ("csv-empty-cell", text("hole.csv", "a,b,y\n1,,0\n"), r"line 2, column 'b': empty cell"),
    ("csv-short-row", text("short.csv", "a,b,y\n1,2,0\n3,4\n"), r"short.csv, line 3: found 2 cells but the header has 3 \(missing 'y'\)"),
    ("csv-long-row", text("long.csv", "a,b,y\n1,2,0,9\n"), r"line 2: found 4 cells but the header has 3 \(1 extra cell"),
    ("csv-empty-file", text("empty.csv", ""), r"empty.csv: file is empty"),
    ("csv-blank-lines-only", text("blank.csv", "\n\n  \n"), r"blank.csv: file is empty"),
    ("csv-header-only", text("header.csv", "a,b,y\n"), r"header.csv: has a header \(line 1\) but no data rows"),
    ("csv-no-header", text("nohead.csv", "1,2,0\n3,4,1\n"), r"nohead.csv, line 1: the first line holds only numbers"),
    ("csv-one-column", text("one.csv", "a;b;y\n1;2;0\n"), r"line 1: the header has 1 column .*';'"),
    ("csv-missing-label", text("nolabel.csv", "a,b,y\n1,2,\n3,4,1\n"), r"line 2, column 'y': label is missing"),
    ("csv-not-utf8", text("latin.csv", "a,b,y\n1,2,caf\xe9\n", "latin-1"), r"latin.csv.*not UTF-8 text"),
    ("csv-nul-byte", text("nul.csv", b"a,b,y\n1,\x002,0\n"), r"nul.csv, line 2, column 'b': '\\x002' is not a number"),
    ("csv-unknown-label", text("lab.csv", GOOD), r"label column 'species' not found; available columns: 'a', 'b', 'y'", ["--label-column", "species"]),
    ("csv-text-regression", text("reg.csv", "a,b,y\n1,2,cat\n3,4,dog\n"), r"line 2, column 'y': label 'cat' is not a number; regression", ["--task", "regression"]),
    ("csv-real-labels-softmax", text("real.csv", "a,b,y\n" + "".join(f"{i},{i % 3},{i * 0.37}\n" for i in range(60))), r"loss 'softmax' needs class labels but .* real-valued labels"),
    ("csv-3-classes-hinge", text("three.csv", "a,b,y\n" + "".join(f"{i},{i % 5},{i % 3}\n" for i in range(30))), r"loss 'hinge' needs 2 classes, the data has 3", ["--model", "svm", "--batch-size", "8"]),
    ("parquet-null", parquet("null.parquet", {"a": [1.0, None, 3.0], "y": [0, 1, 0]}), r"null.parquet, row index 1, column 'a': 1 null feature value"),
    ("parquet-nan", parquet("nan.parquet", {"a": [1.0, 2.0, float("nan")], "y": [0, 1, 0]}), r"nan.parquet, row index 2, column 'a': value is NaN"),
    ("parquet-text-feature", parquet("txt.parquet", {"a": ["x", "y", "z"], "y": [0, 1, 0]}), r"column 'a': type string is not numeric"),
    ("parquet-no-rows", parquet("norows.parquet", {"a": np.array([], np.float64), "y": np.array([], np.int64)}), r"norows.parquet: has columns but no rows"),
    ("parquet-one-column", parquet("onecol.parquet", {"a": [1.0, 2.0]}), r"has 1 column\(s\) \['a'\]; need at least one feature column"),
    ("parquet-garbage", text("junk.parquet", b"PAR1 definitely not parquet"), r"junk.parquet: cannot read as Parquet"),
    ("npy-object-never-unpickled", object_npy, r"objects.npy: the array has dtype=object; object arrays are refused"),
    ("npy-3d", npy("cube.npy", np.ones((4, 3, 2))), r"cube.npy: expected a 2-D array .* 3-D array of shape \(4, 3, 2\)"),
    ("npy-nan", npy("nan.npy", np.array([[1, 0], [2, 1], [np.nan, 0]], np.float64)), r"nan.npy, row index 2, column 'x0': value is NaN"),
    ("npy-inf-label", npy("inflab.npy", np.array([[1, 0], [2, np.inf]])), r"inflab.npy, row index 1, column 'label': label is inf \(not finite\)"),
    ("npy-one-column", npy("col.npy", np.ones((5, 1))), r"col.npy: has 1 column\(s\); need at least one feature column"),
    ("npy-not-numpy", text("fake.npy", b"hello, world"), r"fake.npy: cannot read as a NumPy file: it is not in .npy or .npz format"),
    ("npy-empty-file", text("zero.npy", b""), r"zero.npy: cannot read as a NumPy file"),
    ("npy-truncated", truncated_npy, r"cut.npy: the array is truncated or damaged: its header declares shape \(50, 3\) of float64 \(1,200 bytes\) but only 72 bytes follow"),
    ("npy-absurd-shape", absurd_npy, r"absurd.npy: the array is truncated or damaged: its header declares shape \(1000000000000, 3\)"),
    ("npy-text-dtype", npy("str.npy", np.array([["1", "0"]] * 6 + [["z", "1"]] * 4)), r"str.npy, row index 6, column 'x0': 'z' is not a number"),
    ("npz-object-never-unpickled", object_npz, r"objects.npz: array 'y' has dtype=object; object arrays are refused"),
    ("npz-missing-key", npz("nokey.npz", X=np.ones((3, 2))), r"nokey.npz: no array named 'y'; arrays in the file: 'X'"),
    ("npz-length-mismatch", npz("len.npz", X=np.ones((5, 2)), y=np.arange(4)), r"len.npz: X has 5 rows but y has 4 labels"),
    ("npz-3d-nan", npz("img.npz", X=np.where(np.arange(16).reshape(4, 2, 2) == 10, np.nan, 1.0), y=np.arange(4) % 2), r"img.npz, row index 2, column 'x2' \(index \(1, 0\) of each example of shape \(2, 2\)\): value is NaN"),
    ("npz-2d-labels", npz("onehot.npz", X=np.ones((4, 2)), y=np.eye(4)), r"onehot.npz: labels must be 1-D \(N,\), got shape \(4, 4\); for one-hot"),
    ("npz-empty", npz("none.npz", X=np.ones((0, 2)), y=np.ones(0)), r"none.npz: there are no rows"),
    ("npz-garbage-zip", text("bad.npz", b"PK\x03\x04 this is not a zip archive"), r"bad.npz: cannot read as a NumPy file"),
    ("unknown-extension", text("data.xlsx", b"..."), r"data.xlsx: unsupported file type '.xlsx'"),
]


@pytest.mark.parametrize("case", FILES, ids=[c[0] for c in FILES])
def test_bad_file_is_refused_before_training(case, tmp_path, capsys):
    name, make, message = case[:3]
    extra = case[3] if len(case) > 3 else []
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    path = make(data_dir)
    before = file_digest(path)
    out = tmp_path / "out"
    code = main(["train", "--data", str(path), "--quiet", "--epochs", "1", "--out", str(out),
                 *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert __import__("re").search(message, err), err
    assert file_digest(path) == before  # never modified
    assert not (data_dir / "UNPICKLED").exists()  # never unpickled
    assert not (out / "checkpoints").exists()  # refused before step 0
    refused(name)


ARRAYS = [
    ("arrays-ragged-rows", lambda: ([[1.0, 2.0], [3.0]], [0, 1]), r"array, row index 1: features row has 1 value\(s\) but row index 0 has 2; .*ragged"),
    ("arrays-nan", lambda: (np.array([[1.0, 2.0], [np.nan, 1.0]]), [0, 1]), r"row index 1, column 'x0': value is NaN"),
    ("arrays-inf", lambda: (np.array([[1.0, np.inf]]), [0]), r"row index 0, column 'x1': value is inf"),
    ("arrays-text", lambda: (np.array([["1", "2"], ["3", "x"]], dtype=object), [0, 1]), r"row index 1, column 'x1': 'x' is not a number"),
    ("arrays-complex", lambda: (np.ones((2, 2), complex), [0, 1]), r"features of dtype complex128 are not supported"),
    ("arrays-3d-inf", lambda: (np.where(np.arange(12).reshape(3, 2, 2) == 5, np.inf, 1.0), [0, 1, 0]), r"row index 1, column 'x1' \(index \(0, 1\) of each example of shape \(2, 2\)\): value is inf"),
    ("arrays-1d", lambda: (np.ones(3), [0, 1, 0]), r"features must be 2-D \(N, d\), got 1-D shape \(3,\)"),
    ("arrays-length-mismatch", lambda: (np.ones((3, 2)), [0, 1]), r"X has 3 rows but y has 2 labels"),
    ("arrays-missing-label", lambda: (np.ones((2, 2)), np.array(["a", None], dtype=object)), r"row index 1, column 'label': label is missing"),
    ("arrays-nan-label", lambda: (np.ones((2, 2)), [0.5, np.nan]), r"row index 1, column 'label': label is missing \(NaN\)"),
    ("arrays-no-rows", lambda: (np.ones((0, 2)), []), r"there are no rows"),
    ("arrays-no-columns", lambda: (np.ones((3, 0)), [0, 1, 0]), r"no feature columns"),
]


@pytest.mark.parametrize("case", ARRAYS, ids=[c[0] for c in ARRAYS])
def test_bad_arrays_are_refused(case):
    name, make, message = case
    X, y = make()
    X_copy = pickle.dumps(X)
    with pytest.raises(SgdlabError, match=message):
        sgdlab.fit(X, y, epochs=1)
    assert pickle.dumps(X) == X_copy
    refused(name)


def test_labels_out_of_range_for_the_classes_are_refused():
    with pytest.raises(SgdlabError, match=r"row index 2: class index 5 is out of range "
                                          r"for 2 classes"):
        sgdlab.Dataset(np.ones((3, 2), np.float32), np.array([0, 1, 5], np.int32),
                       classes=(0, 1))
    with pytest.raises(SgdlabError, match=r"class indices must be whole numbers"):
        sgdlab.Dataset(np.ones((2, 2), np.float32), np.array([0.5, 1.0], np.float32),
                       classes=(0, 1))
    refused("dataset-label-out-of-range")
    refused("dataset-label-wrong-kind")


def test_validation_labels_unknown_to_training_are_refused():
    X = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    with pytest.raises(SgdlabError, match=r"validation labels \[7\] do not occur"):
        sgdlab.fit(X, np.arange(20) % 2, validation=(X[:4], [0, 1, 7, 1]), epochs=1)
    refused("validation-unknown-label")
