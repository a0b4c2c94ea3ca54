"""``sgdlab predict`` reads its input a block at a time (memory set by --buffer-mb, not the file),
takes shard sets, writes --out whole or not at all, and never replaces what the user owns:
an existing file without --overwrite, the input, or anything inside a run directory."""

import csv
import os

import numpy as np
import pytest

import sgdlab
from sgdlab.cli.main import main
from sgdlab.data.features import BYTES_PER_VALUE, open_features, read_features
from sgdlab.engine.blockwise import RunningScore

N = 203  # not a multiple of any block size used below


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, N)
    X = np.column_stack([y + 0.4 * rng.standard_normal(N), rng.standard_normal(N)])
    with open(root / "d.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["u", "v", "kind"])
        w.writerows([f"{a:.5f}", f"{b:.5f}", ["red", "green", "blue"][c]]
                    for (a, b), c in zip(X, y))
    assert main(["train", "--data", str(root / "d.csv"), "--epochs", "4",
                 "--out", str(root / "run"), "--quiet"]) == 0
    return root


def _predict(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["predict", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predictions_in_small_blocks_equal_one_block(trained, tmp_path, capsys):
    rows = 7  # blocks of 7 rows: 2 features x 16 bytes each
    tiny = rows * 2 * BYTES_PER_VALUE / 2 ** 20
    code, whole, err_whole = _predict(capsys, trained / "run", "--data", trained / "d.csv")
    assert code == 0
    code, blocked, err_blocked = _predict(capsys, trained / "run", "--data", trained / "d.csv",
                                          "--buffer-mb", tiny)
    assert code == 0 and blocked == whole and len(whole.splitlines()) == N + 1
    assert err_blocked == err_whole and "accuracy" in err_whole
    code, _, _ = _predict(capsys, trained / "run", "--data", trained / "d.csv", "--proba",
                          "--buffer-mb", tiny, "--out", tmp_path / "p.csv")
    code, whole_p, _ = _predict(capsys, trained / "run", "--data", trained / "d.csv", "--proba")
    blocked_p = (tmp_path / "p.csv").read_text().splitlines()
    assert blocked_p[0] == whole_p.splitlines()[0] == "p_blue,p_green,p_red"
    # the same to float32 rounding (XLA may sum in another order for another block shape)
    np.testing.assert_allclose(np.loadtxt(blocked_p[1:], delimiter=","),
                               np.loadtxt(whole_p.splitlines()[1:], delimiter=","), atol=1e-6)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "npy", "npz", "npz-no-y", "svm",
                                 "shards"])
def test_every_format_reads_in_blocks_as_it_reads_whole(tmp_path, fmt):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((N, 3)).astype(np.float32)
    y = rng.integers(0, 2, N)
    path = tmp_path / f"d.{fmt.split('-')[0]}"
    if fmt in ("csv", "tsv", "shards"):
        sep = "\t" if fmt == "tsv" else ","
        lines = [sep.join(["x0", "x1", "x2", "y"])]
        lines += [sep.join([*(repr(float(v)) for v in r), str(t)]) for r, t in zip(X, y)]
        (tmp_path / "d.csv" if fmt == "shards" else path).write_text("\n".join(lines) + "\n")
        if fmt == "shards":
            from sgdlab.data.convert import convert
            path = convert(tmp_path / "d.csv", tmp_path / "shards", block_rows=50)
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq
        pq.write_table(pa.table({"x0": X[:, 0], "x1": X[:, 1], "x2": X[:, 2], "y": y}), path)
    elif fmt == "npy":
        np.save(path, np.column_stack([X, y]))
    elif fmt == "npz":
        np.savez_compressed(path, X=X, y=y)
    elif fmt == "npz-no-y":
        np.savez(path, X=X)
    else:
        path.write_text("".join(f"{t} " + " ".join(f"{j + 1}:{v!r}" for j, v in
                                                  enumerate(map(float, r))) + "\n"
                                for r, t in zip(X, y)))
    names = ["x0", "x1", "x2"]
    whole = read_features(path, names, 3, task="classification")
    blocks = list(open_features(path, names, 3, task="classification", block_rows=9))
    assert [len(b.X) for b in blocks] == [9] * (N // 9) + [N % 9]
    np.testing.assert_array_equal(np.concatenate([b.X for b in blocks]), whole.X)
    np.testing.assert_allclose(whole.X, X, rtol=1e-6)
    if fmt == "npz-no-y":
        assert whole.y is None and all(b.y is None for b in blocks)
    else:
        assert np.concatenate([b.y for b in blocks]).tolist() == whole.y.tolist() == y.tolist()


def test_the_running_r2_equals_the_score_of_all_rows():
    rng = np.random.default_rng(2)
    y = 1e4 + rng.standard_normal(1000)  # |mean| >> std: no cancellation in the merge
    pred = y + 0.3 * rng.standard_normal(1000)
    score = RunningScore("regression")
    for lo in range(0, 1000, 77):
        score.add(pred[lo:lo + 77], y[lo:lo + 77])
    expected = 1 - np.sum((pred - y) ** 2) / np.sum((y - y.mean()) ** 2)
    assert score.n == 1000 and score.value == pytest.approx(expected, rel=1e-9)


def test_a_regression_run_is_scored_over_blocks(tmp_path, capsys):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((N, 2))
    y = 3 * X[:, 0] - X[:, 1] + 0.1 * rng.standard_normal(N)
    np.save(tmp_path / "r.npy", np.column_stack([X, y]))
    sgdlab.fit(str(tmp_path / "r.npy"), model="linreg", epochs=5, out=tmp_path / "run",
               plots=False)
    expected = sgdlab.load(tmp_path / "run").score(X.astype(np.float32), y)
    code, _, err = _predict(capsys, tmp_path / "run", "--data", tmp_path / "r.npy",
                            "--buffer-mb", 3 * BYTES_PER_VALUE * 10 / 2 ** 20)
    assert code == 0
    got = float(err.split("R^2 ")[1].split()[0])
    assert got == pytest.approx(expected, abs=1e-4) and got > 0.9


def test_a_shard_set_is_predicted_on_like_its_source(trained, tmp_path, capsys):
    from sgdlab.data.convert import convert
    shards = convert(trained / "d.csv", tmp_path / "shards", block_rows=16)
    code, from_csv, err_csv = _predict(capsys, trained / "run", "--data", trained / "d.csv")
    code, from_shards, err_shards = _predict(capsys, trained / "run", "--data", shards,
                                             "--buffer-mb", 0.0001)
    assert code == 0 and from_shards == from_csv
    assert err_shards.replace("'kind'", "X") == err_csv.replace("'kind'", "X")


def test_a_fifo_or_a_folder_is_named_for_what_it_is(trained, tmp_path, capsys):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    code, out, err = _predict(capsys, trained / "run", "--data", fifo)
    assert code == 2 and out == "" and "pipe.csv: is a FIFO (named pipe); sgdlab reads a data " \
                                        "file more than once" in err
    (tmp_path / "csvs").mkdir()
    (tmp_path / "csvs" / "a.csv").write_text("u,v,kind\n1,2,red\n")
    code, out, err = _predict(capsys, trained / "run", "--data", tmp_path / "csvs")
    assert code == 2 and "csvs: is a directory without a manifest.json, not a shard set (it " \
                         "holds 1 file(s), e.g. 'a.csv'); give one data file, or convert one " \
                         "into a shard set" in err
    assert "file not found" not in err
    code, out, err = _predict(capsys, trained / "run", "--data", tmp_path / "nope.csv")
    assert code == 2 and "file not found: " in err and "nope.csv" in err


def test_out_refuses_what_the_user_owns(trained, tmp_path, capsys):
    run, data = trained / "run", trained / "d.csv"
    model = (run / "model.json").read_bytes()
    out = tmp_path / "p.csv"
    out.write_text("mine\n")
    code, _, err = _predict(capsys, run, "--data", data, "--out", out)
    assert code == 2 and "p.csv exists; pass --overwrite to replace it" in err
    assert out.read_text() == "mine\n"
    assert _predict(capsys, run, "--data", data, "--out", out, "--overwrite")[0] == 0
    assert out.read_text().startswith("prediction\n")
    copy = tmp_path / "copy.csv"
    copy.write_bytes(data.read_bytes())
    code, _, err = _predict(capsys, run, "--data", copy, "--out", copy, "--overwrite")
    assert code == 2 and "copy.csv is the input data" in err
    assert copy.read_bytes() == data.read_bytes()
    for inside in (run / "model.json", run / "new.csv"):
        code, _, err = _predict(capsys, run, "--data", data, "--out", inside, "--overwrite")
        assert code == 2 and "a run directory or shard set; predictions are never written " \
                             "into one" in err
    assert (run / "model.json").read_bytes() == model and not (run / "new.csv").exists()
    code, _, err = _predict(capsys, run, "--data", data, "--out", tmp_path)
    assert code == 2 and "is a directory; give a file name" in err


def test_a_failed_prediction_leaves_out_as_it_was(trained, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    lines = trained.joinpath("d.csv").read_text().splitlines()
    lines[150] = "1.0,oops,red"  # a bad cell after several blocks were written
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "p.csv"
    code, _, err = _predict(capsys, trained / "run", "--data", bad, "--out", out,
                            "--buffer-mb", 0.0001)
    assert code == 2 and "bad.csv, line 151, column 'v': 'oops' is not a number" in err
    assert not out.exists() and os.listdir(tmp_path) == ["bad.csv"]  # no temporary file left
    out.write_text("mine\n")
    code, _, _ = _predict(capsys, trained / "run", "--data", bad, "--out", out, "--overwrite")
    assert code == 2 and out.read_text() == "mine\n"


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_buffer_mb_must_be_positive(trained, capsys, value):
    code, _, err = _predict(capsys, trained / "run", "--data", trained / "d.csv",
                            "--buffer-mb", value)
    assert code == 2 and "--buffer-mb must be a number of MiB > 0" in err
