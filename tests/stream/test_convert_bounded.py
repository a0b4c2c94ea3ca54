"""``data convert`` holds a bounded slice of any input: chunks sized by a byte budget, Parquet
row groups read a batch at a time, LibSVM widths capped unless given; bad input is one message."""

import importlib
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
from stream_helpers import blobs, write_csv

from sgdlab.cli.main import main
from sgdlab.data import load_csv, load_parquet
from sgdlab.data.convert import convert
from sgdlab.data.shards import ShardSet
from sgdlab.errors import ConfigError, DataError

readers = importlib.import_module("sgdlab.data.readers")
convert_module = importlib.import_module("sgdlab.data.convert")


# -- LibSVM ----------------------------------------------------------------------------------

def test_libsvm_without_features_is_one_error(tmp_path, capsys):
    (tmp_path / "labels.svm").write_text("1\n0 # a comment\n\n1 qid:3\n")
    with pytest.raises(DataError, match=r"labels.svm: no line has a feature: 3 line\(s\) hold "
                                        r"a label only; a LibSVM line is 'label index:value"):
        convert(tmp_path / "labels.svm", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert main(["data", "convert", str(tmp_path / "labels.svm"), str(tmp_path / "out"),
                 "--quiet"]) == 2
    assert "no line has a feature" in capsys.readouterr().err
    # declared, the width is known: all-zero rows
    shards = ShardSet(convert(tmp_path / "labels.svm", tmp_path / "zeros", n_features=3))
    X, y = shards.read_all()
    np.testing.assert_array_equal(X, np.zeros((3, 3), np.float32))
    assert list(y) == [1, 0, 1]


def test_one_huge_index_is_refused_at_its_line_before_any_allocation(tmp_path):
    (tmp_path / "huge.svm").write_text("1 1:2 3:1\n0 2000000000:1\n")
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"huge.svm, line 2, token '2000000000:1': index "
                                            r"2000000000 means at least 2,000,000,000 features, "
                                            r"more than the 1,000,000 .*pass --features N"):
            convert(tmp_path / "huge.svm", tmp_path / "out")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20  # the old converter allocated rows x 2e9 float64 here
    assert os.listdir(tmp_path) == ["huge.svm"]


def test_beyond_the_cap_the_width_must_be_given(tmp_path):
    cap = readers.MAX_FEATURES
    (tmp_path / "wide.svm").write_text(f"1 1:2\n0 {cap + 5}:-1.5\n")
    with pytest.raises(DataError, match=r"wide.svm, line 2, .*more than the 1,000,000"):
        convert(tmp_path / "wide.svm", tmp_path / "out")
    with pytest.raises(DataError, match=r"wide.svm, line 2, token '1000005:-1.5': index 1000005 "
                                        r"is beyond the 1,000,000 features given with --features"):
        convert(tmp_path / "wide.svm", tmp_path / "out", n_features=cap)
    shards = ShardSet(convert(tmp_path / "wide.svm", tmp_path / "out", n_features=cap + 5))
    assert shards.d == cap + 5 and len(shards.feature_names) == cap + 5
    X, y = shards.read_all()
    assert X.shape == (2, cap + 5) and list(y) == [1, 0]
    nz = np.nonzero(X)
    assert list(zip(*nz)) == [(0, 0), (1, cap + 4)]
    assert X[0, 0] == 2 and X[1, cap + 4] == -1.5


def test_feature_count_must_be_positive(tmp_path, capsys):
    (tmp_path / "s.svm").write_text("1 1:2\n")
    for bad in (0, -3, 2.5):
        with pytest.raises(ConfigError, match="--features must be a whole number >= 1"):
            convert(tmp_path / "s.svm", tmp_path / "out", n_features=bad)
    assert main(["data", "convert", str(tmp_path / "s.svm"), str(tmp_path / "out"),
                 "--features", "0", "--quiet"]) == 2
    assert "--features must be >= 1, got 0" in capsys.readouterr().err


def test_wide_libsvm_memory_does_not_grow_with_rows(tmp_path):
    """200 rows x 50,000 features: the old converter parsed 4,096-row chunks dense in float64
    (200 x 50,000 x 8 = 80 MB at once); chunks are now ~8 MiB whatever the width."""
    rng = np.random.default_rng(0)
    with open(tmp_path / "w.svm", "w") as f:
        for r in range(200):
            idx = np.sort(rng.choice(50_000, 20, replace=False)) + 1
            f.write(f"{r % 2} " + " ".join(f"{i}:{rng.normal():.3f}" for i in idx) + "\n")
    tracemalloc.start()
    try:
        shards = ShardSet(convert(tmp_path / "w.svm", tmp_path / "out", n_features=50_000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 60 << 20, peak / 2**20
    assert shards.n == 200 and shards.d == 50_000
    X, _ = shards.read_block(0)
    assert (X != 0).sum(axis=1).tolist() == [20] * len(X)
    stats = np.load(tmp_path / "out" / "stats.npy")
    assert stats.shape == (shards.n_blocks, 2, 50_000)
    np.testing.assert_allclose(stats[0, 0], X.astype(np.float64).mean(axis=0), atol=1e-12)


# -- chunk sizes follow the byte budget, results do not change -------------------------------

def test_small_chunk_budget_gives_the_same_shards(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq
    X, y = blobs(n=301, d=5)
    csv = write_csv(tmp_path / "a.csv", X, y)
    pq.write_table(pa.table({**{f"x{j}": X[:, j] for j in range(5)}, "label": y}),
                   tmp_path / "a.parquet", row_group_size=1000)
    (tmp_path / "a.svm").write_text("".join(
        f"{label} " + " ".join(f"{j + 1}:{float(v)!r}" for j, v in enumerate(row)) + "\n"
        for row, label in zip(X, y)))
    sizes = []
    real = convert_module.LabelCoder.encode

    def encode(self, raw, where):
        sizes.append(len(raw))
        return real(self, raw, where)

    monkeypatch.setattr(convert_module.LabelCoder, "encode", encode)
    monkeypatch.setattr(readers, "CHUNK_BYTES", 40 * 5 * 7)  # 7 CSV rows, 35 float64 rows
    expected = {"a.csv": 7, "a.svm": 35, "a.parquet": 29}  # Parquet: 6 columns
    for name, rows in expected.items():
        sizes.clear()
        shards = ShardSet(convert(tmp_path / name, tmp_path / f"out-{name}", block_rows=16))
        Xs, ys = shards.read_all()
        np.testing.assert_array_equal(Xs, X)
        np.testing.assert_array_equal(ys, y)
        assert max(sizes) == rows and sum(sizes) == 301, (name, sizes[:3])
    assert np.array_equal(load_csv(csv).X, X)


def test_parquet_null_label_is_named_by_its_row_in_the_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    n = 70_000  # more than one 65,536-row batch
    labels = pa.array([i % 2 if i != 69_000 else None for i in range(n)], pa.int64())
    pq.write_table(pa.table({"a": np.arange(n, dtype=np.float64), "y": labels}),
                   tmp_path / "n.parquet")
    with pytest.raises(DataError, match=r"n.parquet, row index 69000, column 'y': null label"):
        convert(tmp_path / "n.parquet", tmp_path / "out")


def test_parquet_bool_and_text_columns_convert_as_loaded(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.table({"flag": [True, False, True, True], "i8": pa.array([1, -2, 3, 4], pa.int8()),
                      "h": pa.array([0.5, 1.5, -2.0, 8.0], pa.float16()),
                      "kind": pa.array(["b", "a", "b", "c"]).dictionary_encode()})
    pq.write_table(table, tmp_path / "t.parquet")
    shards = ShardSet(convert(tmp_path / "t.parquet", tmp_path / "out"))
    ref = load_parquet(tmp_path / "t.parquet")
    Xs, ys = shards.read_all()
    np.testing.assert_array_equal(Xs, ref.X)
    np.testing.assert_array_equal(ys, ref.y)
    assert shards.classes == ref.classes == ("a", "b", "c")


def test_one_huge_parquet_row_group_is_read_a_slice_at_a_time(tmp_path):
    """2,000,000 rows in one row group (31 MB). pyarrow's default pre-buffers the row group's
    column chunks whole (40 MB in Arrow's pool); a bounded buffer decodes a page at a time.
    Measured in a fresh process, Arrow's own allocator's peak (not RSS): 11 MB."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    n = 2_000_000
    rng = np.random.default_rng(0)
    pq.write_table(pa.table({"a": rng.standard_normal(n), "b": rng.standard_normal(n),
                             "y": rng.integers(0, 2, n)}), tmp_path / "big.parquet",
                   row_group_size=n)
    assert pq.ParquetFile(tmp_path / "big.parquet").metadata.num_row_groups == 1
    code = textwrap.dedent(f"""
        import json, pyarrow as pa
        from sgdlab.data.convert import convert
        convert({str(tmp_path / 'big.parquet')!r}, {str(tmp_path / 'out')!r})
        print(json.dumps(pa.default_memory_pool().max_memory()))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    arrow_peak = json.loads(done.stdout.strip().splitlines()[-1])
    assert arrow_peak < 20 << 20, arrow_peak / 2**20
    shards = ShardSet(tmp_path / "out")
    assert shards.n == n and shards.d == 2
    shards.verify()


# -- text that is not UTF-8 ------------------------------------------------------------------

@pytest.mark.parametrize("name, data, match", [
    ("h.csv", b"a,b,l\xe9\n1,2,0\n", r"h.csv, line 1: not UTF-8 text"),
    ("r.csv", b"a,b,label\n" + b"1,2,0\n" * 5000 + b"1,2,\xe9\n", r"r.csv, line 5002: not UTF-8"),
    ("s.svm", b"1 1:2\n0 2:\xe9\n", r"s.svm, line 2: not UTF-8 text"),
], ids=["csv-header", "csv-row", "libsvm"])
def test_text_that_is_not_utf8_names_the_line(tmp_path, name, data, match):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError, match=match + r".*save the file as UTF-8"):
        convert(tmp_path / name, tmp_path / "out")
    assert not (tmp_path / "out").exists()
