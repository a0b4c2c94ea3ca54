"""``data convert``: every input format gives the in-memory loaders' rows; bad input is named."""

import json

import numpy as np
import pytest
from stream_helpers import blobs, write_csv

from sgdlab.cli.main import main
from sgdlab.data import load_csv, load_parquet
from sgdlab.data.convert import convert
from sgdlab.data.shards import ShardSet
from sgdlab.data.split import Standardizer
from sgdlab.errors import DataError


def test_csv_round_trip_matches_the_in_memory_loader(tmp_path):
    X, y = blobs(n=523, d=4)
    labels = np.array(["no", "yes"])[y]
    src = write_csv(tmp_path / "a.csv", X, labels, names=["a", "b", "c", "d"])
    shards = ShardSet(convert(src, tmp_path / "sh", block_rows=40, shard_blocks=3))
    ds = load_csv(src)
    Xs, ys = shards.read_all()
    np.testing.assert_array_equal(Xs, ds.X)
    np.testing.assert_array_equal(ys, ds.y)
    assert shards.classes == ds.classes == ("no", "yes")
    assert shards.feature_names == ("a", "b", "c", "d")
    assert shards.n_blocks == 14 and len(shards.shards) == 5
    shards.verify()
    full = Standardizer().fit(ds.X)
    fromstats = shards.standardizer(np.arange(shards.n_blocks))
    np.testing.assert_allclose(fromstats.mean, full.mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fromstats.scale, full.scale, rtol=1e-12)


def test_parquet_and_libsvm(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    X, y = blobs(n=300, d=3)
    table = pa.table({"f0": X[:, 0], "f1": X[:, 1], "f2": X[:, 2], "target": y * 1.5})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=70)
    shards = ShardSet(convert(tmp_path / "t.parquet", tmp_path / "pq", task="regression",
                              block_rows=64))
    ref = load_parquet(tmp_path / "t.parquet", task="regression")
    Xs, ys = shards.read_all()
    np.testing.assert_array_equal(Xs, ref.X)
    np.testing.assert_array_equal(ys, ref.y)
    assert shards.task == "regression" and shards.y_dtype == np.float32

    (tmp_path / "s.svm").write_text("+1 1:0.5 4:2 # comment\n-1 2:1.5\n\n+1 qid:7 3:-1\n")
    shards = ShardSet(convert(tmp_path / "s.svm", tmp_path / "svm"))
    Xs, ys = shards.read_all()
    np.testing.assert_array_equal(Xs, [[0.5, 0, 0, 2], [0, 1.5, 0, 0], [0, 0, -1, 0]])
    assert shards.classes == (-1, 1) and list(ys) == [1, 0, 1]


@pytest.mark.parametrize("name, text, match", [
    ("bad.csv", "a,b,label\n1,2,x\n3,zz,y\n", r"bad.csv, line 3, column 'b': 'zz' is not a number"),
    ("nan.csv", "a,b,label\n1,2,x\n\n3,nan,y\n", r"nan.csv, line 4, column 'b': value is NaN"),
    ("short.csv", "a,b,label\n1,2\n", r"short.csv, line 2: found 2 cells"),
    ("bad.svm", "1 1:2\n0 3:x\n", r"bad.svm, line 2, token '3:x': expected index:value"),
    ("zero.svm", "1 0:2\n", r"zero.svm, line 1, token '0:2': index 0 is below 1.*--zero-based"),
    ("nolabel.csv", "a,b,label\n1,2,\n", r"nolabel.csv, line 2, column 'label': label is missing"),
])
def test_bad_rows_name_file_line_and_column(tmp_path, name, text, match):
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=match):
        convert(tmp_path / name, tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_parquet_null_row_and_declared_classes(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"a": [1.0, None, 3.0], "y": [0, 1, 0]}), tmp_path / "n.parquet")
    with pytest.raises(DataError, match=r"n.parquet, row index 1, column 'a': null"):
        convert(tmp_path / "n.parquet", tmp_path / "o1")
    write_csv(tmp_path / "c.csv", np.zeros((3, 1)), ["cat", "dog", "emu"])
    with pytest.raises(DataError, match=r"c.csv, line 4, column 'label': label 'emu' is not "):
        convert(tmp_path / "c.csv", tmp_path / "o2", classes=["cat", "dog"])


def test_damaged_shards_and_occupied_output_are_reported(tmp_path, shard_set):
    path, _, _ = shard_set
    with pytest.raises(DataError, match="exists and is not empty.*--overwrite"):
        convert(write_csv(tmp_path / "x.csv", np.zeros((2, 1)), [0, 1]), path)
    bad = tmp_path / "copy"
    import shutil
    shutil.copytree(path, bad)
    x0 = bad / "X-00000.npy"
    data = bytearray(x0.read_bytes())
    data[-1] ^= 0xFF
    x0.write_bytes(bytes(data))
    with pytest.raises(DataError, match="X-00000.npy: checksum does not match"):
        ShardSet(bad).verify()
    with pytest.raises(DataError, match=r"X-00000.npy: rows \d+ to \d+ do not match their "
                                        "checksum"):
        ShardSet(bad).read_all()  # training reads check each block's CRC-32 once
    x0.write_bytes(bytes(data[:-400]))
    with pytest.raises(DataError, match="X-00000.npy: 4,528 bytes, fewer than the 200 rows of 6 "
                                        "float32 features the manifest declares"):
        ShardSet(bad).read_all()
    man = json.loads((bad / "manifest.json").read_text())
    man["version"] = 99
    (bad / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(DataError, match="manifest version 99 is not supported"):
        ShardSet(bad)
    with pytest.raises(DataError, match="no manifest.json.*sgdlab data convert"):
        ShardSet(tmp_path)


def test_cli_convert_then_train_streamed(tmp_path, capsys):
    X, y = blobs(n=400, d=5)
    src = write_csv(tmp_path / "d.csv", X, y)
    assert main(["data", "convert", str(src), str(tmp_path / "sh"), "--block-rows", "25",
                 "--verify", "--quiet"]) == 0
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "sh"), "--model", "logistic", "--epochs", "3",
                 "--buffer-mb", "0.01", "--out", str(out), "--quiet"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert cfg["buffer_mb"] == 0.01 and metrics["streamed"] is True
    assert metrics["val_accuracy"] > 0.85
    assert main(["data", "convert", str(src), str(tmp_path / "sh")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err


def test_values_damaged_after_conversion_stop_training_with_file_and_row(tmp_path, capsys):
    """NaN written into a shard (checksum updated, as a careless tool would) is found at its
    row, before it can look like divergence; the command line exits 2 with that message."""
    import shutil
    import zlib
    X, y = blobs(n=400, d=5)
    src = write_csv(tmp_path / "d.csv", X, y)
    assert main(["data", "convert", str(src), str(tmp_path / "sh"), "--block-rows", "25",
                 "--quiet"]) == 0
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "sh", bad)
    man = json.loads((bad / "manifest.json").read_text())
    x0 = bad / man["shards"][0]["x"]
    arr = np.load(x0)
    arr[30, 2] = np.nan  # block 1 (rows 25..49) of the first shard
    np.save(x0, arr)
    man["shards"][0]["crc32_x"][1] = zlib.crc32(arr[25:50].tobytes())
    (bad / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(DataError, match=r"X-00000.npy, row 30, column 'x2': nan is not a finite"):
        ShardSet(bad).read_all()
    assert main(["train", "--data", str(bad), "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "row 30" in err and "diverged" not in err
