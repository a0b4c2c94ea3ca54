"""Every registered format converts to the shard set holding what loading it gives: LibSVM,
NumPy .npy and .npz included; options a format does not take are refused."""

import numpy as np
import pytest
from stream_helpers import blobs

from sgdlab.cli.main import main
from sgdlab.data import FORMATS, load_data
from sgdlab.data.convert import convert, detect_format
from sgdlab.data.features import read_features
from sgdlab.data.shards import ShardSet
from sgdlab.errors import ConfigError, DataError


def same_as_loaded(path, out, **options):
    """Convert ``path`` and check the shard set against ``load_data`` of it."""
    shards = ShardSet(convert(path, out, block_rows=16, **options))
    ds = load_data(str(path), **options)
    Xs, ys = shards.read_all()
    assert Xs.dtype == ds.X.dtype and Xs.tobytes() == ds.X.tobytes()
    assert ys.dtype == ds.y.dtype and ys.tobytes() == ds.y.tobytes()
    assert (shards.task, shards.classes, shards.feature_names) == (ds.task, ds.classes,
                                                                   ds.feature_names)
    shards.verify()
    return ds


def write_svm(path, X, y, zero_based=False):
    with open(path, "w") as f:
        for row, t in zip(X, y):
            f.write(f"{t} " + " ".join(f"{j + (0 if zero_based else 1)}:{float(v)!r}"
                                       for j, v in enumerate(row) if v) + "\n")
    return path


def test_libsvm_load_equals_convert_then_read_all(tmp_path):
    X, y = blobs(n=157, d=5)
    X[X < -0.5] = 0  # sparse rows
    ds = same_as_loaded(write_svm(tmp_path / "a.svm", X, y), tmp_path / "a")
    np.testing.assert_array_equal(ds.X, X)
    assert ds.classes == (0, 1) and ds.y.tolist() == y.tolist()
    same_as_loaded(write_svm(tmp_path / "z.svm", X, y, zero_based=True), tmp_path / "z",
                   zero_based=True, n_features=8)
    # comments, qid and text labels go through the per-line parser: the same either way
    (tmp_path / "t.svm").write_text("b 1:0.5 4:2 # c\na qid:3 2:1.5\n\nb 3:-1\n")
    ds = same_as_loaded(tmp_path / "t.svm", tmp_path / "t")
    assert ds.classes == ("a", "b") and ds.X.shape == (3, 4)
    (tmp_path / "r.svm").write_text("".join(f"{i * 0.37} 1:{i} 2:{i % 3}\n" for i in range(80)))
    assert same_as_loaded(tmp_path / "r.svm", tmp_path / "r").task == "regression"


def test_npy_and_npz_convert_then_read_all_equals_the_arrays(tmp_path):
    X, y = blobs(n=203, d=4)
    np.save(tmp_path / "a.npy", np.column_stack([X, y]))
    ds = same_as_loaded(tmp_path / "a.npy", tmp_path / "a")
    np.testing.assert_array_equal(ds.X, X)
    assert ds.y.tolist() == y.tolist()
    np.save(tmp_path / "f.npy", np.asfortranarray(np.column_stack([X, y * 0.5 + 0.1])))
    assert same_as_loaded(tmp_path / "f.npy", tmp_path / "f").task == "regression"

    names = np.array(["no", "yes"])[y]
    np.savez(tmp_path / "a.npz", X=X.astype(np.float64), y=names)
    ds = same_as_loaded(tmp_path / "a.npz", tmp_path / "z")
    assert ds.classes == ("no", "yes")
    np.savez_compressed(tmp_path / "k.npz", feats=X, target=X[:, 0] * 3)
    ds = same_as_loaded(tmp_path / "k.npz", tmp_path / "k", x_key="feats", y_key="target")
    assert ds.task == "regression"
    np.testing.assert_array_equal(ds.y, (X[:, 0] * 3).astype(np.float32))
    np.savez(tmp_path / "b.npz", X=X > 0, y=y.astype(bool))
    assert same_as_loaded(tmp_path / "b.npz", tmp_path / "b").classes == (0, 1)


def test_numpy_conversion_errors_name_the_row_as_loading_does(tmp_path):
    X, y = blobs(n=300, d=3)
    X = X.astype(np.float64)
    X[250, 2] = np.inf
    np.save(tmp_path / "inf.npy", np.column_stack([X, y]))
    for run in (lambda: load_data(str(tmp_path / "inf.npy")),
                lambda: convert(tmp_path / "inf.npy", tmp_path / "o", block_rows=16)):
        with pytest.raises(DataError, match=r"inf\.npy, row index 250, column 'x2': value is "
                                            r"inf"):
            run()
    assert not (tmp_path / "o").exists()
    np.savez(tmp_path / "nan.npz", X=np.zeros((70_000, 1)), y=np.r_[np.zeros(69_999), np.nan])
    with pytest.raises(DataError, match=r"nan\.npz, row index 69999, column 'label': label is "
                                        r"missing"):
        convert(tmp_path / "nan.npz", tmp_path / "o")
    np.savez(tmp_path / "s.npz", X=np.array([["1", "2"], ["3", "x"]]), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"s\.npz, row index 1, column 'x1': 'x' is not a number"):
        convert(tmp_path / "s.npz", tmp_path / "o")
    np.savez(tmp_path / "len.npz", X=np.zeros((5, 2)), y=np.zeros(3))
    with pytest.raises(DataError, match=r"len\.npz: X has 5 rows but y has 3 labels"):
        convert(tmp_path / "len.npz", tmp_path / "o")


def test_options_a_format_does_not_take_are_refused(tmp_path, capsys):
    X, y = blobs(n=20, d=2)
    np.save(tmp_path / "a.npy", np.column_stack([X, y]))
    with pytest.raises(DataError, match=r"a\.npy: npy files take no label column \(the label "
                                        r"is the last column\); drop label_column"):
        convert(tmp_path / "a.npy", tmp_path / "o", label_column="y")
    (tmp_path / "a.svm").write_text("1 1:2\n")
    with pytest.raises(DataError, match=r"libsvm files take no label column \(the label comes "
                                        r"first on each line\)"):
        convert(tmp_path / "a.svm", tmp_path / "o", label_column=0)
    (tmp_path / "a.csv").write_text("a,y\n1,0\n")
    with pytest.raises(ConfigError, match=r"a\.csv: --features applies to libsvm files, not "
                                          r"to csv"):
        convert(tmp_path / "a.csv", tmp_path / "o", n_features=3)
    assert main(["data", "convert", str(tmp_path / "a.csv"), str(tmp_path / "o"),
                 "--zero-based", "--quiet"]) == 2
    assert "--zero-based applies to libsvm files" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_formats_by_extension_and_on_the_command_line(tmp_path, capsys):
    assert detect_format("x.txt") == "libsvm" and detect_format("X.PQ") == "parquet"
    with pytest.raises(DataError, match=r"cannot tell the format from the extension '\.dat'; "
                                        r"pass --format one of csv, tsv, parquet, npy, npz, libsvm"):
        detect_format("x.dat")
    X, y = blobs(n=40, d=3)
    np.save(tmp_path / "a.npy", np.column_stack([X, y]))
    assert main(["data", "convert", str(tmp_path / "a.npy"), str(tmp_path / "o"), "--verify",
                 "--quiet"]) == 0
    write_svm(tmp_path / "a.dat", X, y)
    assert main(["data", "convert", str(tmp_path / "a.dat"), str(tmp_path / "s"), "--format",
                 "libsvm", "--quiet"]) == 0
    assert ShardSet(tmp_path / "s").n == 40
    with pytest.raises(SystemExit):
        main(["data", "convert", "--help"])
    help_text = capsys.readouterr().out
    for name, fmt in FORMATS.items():
        assert name in help_text and all(ext in help_text for ext in fmt.extensions)


def test_predicting_on_a_libsvm_file_reads_it_model_wide(tmp_path):
    X, y = blobs(n=30, d=6)
    X[:, 5] = 0  # the file's largest index is 5; the model takes 6 features
    write_svm(tmp_path / "p.svm", X, y)
    got = read_features(tmp_path / "p.svm", [f"x{j}" for j in range(6)], 6, task="classification")
    np.testing.assert_array_equal(got.X, X)
    assert got.label == "label" and got.y.tolist() == y.tolist()
    with pytest.raises(DataError, match=r"p\.svm, line 1, .*beyond the 4 features given with "
                                        r"n_features"):
        read_features(tmp_path / "p.svm", [f"x{j}" for j in range(4)], 4)
