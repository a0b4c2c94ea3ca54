"""``sgdlab predict``: one row per input row in the original labels, columns by name, the
label column scored and never used; every bad input one message with exit code 2."""

import csv

import numpy as np
import pytest

from sgdlab.cli.main import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 240)
    X = np.column_stack([y * 3 + rng.standard_normal(240), rng.standard_normal(240)])
    labels = np.array(["no", "yes"])[y]
    with open(root / "train.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["signal", "noise", "answer"])
        w.writerows([f"{a:.5f}", f"{b:.5f}", c] for (a, b), c in zip(X, labels))
    assert main(["train", "--data", str(root / "train.csv"), "--model", "logistic",
                 "--epochs", "5", "--out", str(root / "run"), "--quiet"]) == 0
    return root, X, labels


def _write(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def test_predict_matches_columns_by_name_and_scores_the_labels(trained, tmp_path, capsys):
    root, X, labels = trained
    data = _write(tmp_path / "new.csv", ["answer", "noise", "signal"],
                  [[c, f"{b:.5f}", f"{a:.5f}"] for (a, b), c in zip(X, labels)])
    out = tmp_path / "preds.csv"
    assert main(["predict", str(root / "run"), "--data", data, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "accuracy" in err and "labels from 'answer', not used to predict" in err
    accuracy = float(err.split("accuracy ")[1].split()[0])
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["prediction"] and len(rows) == len(X) + 1
    predicted = np.array([r[0] for r in rows[1:]])
    assert set(predicted) <= {"no", "yes"}
    assert abs(np.mean(predicted == labels) - accuracy) < 1e-4 and accuracy > 0.9


def test_predict_without_labels_to_stdout_and_probabilities(trained, tmp_path, capsys):
    root, X, _ = trained
    data = _write(tmp_path / "features.csv", ["noise", "signal"],
                  [[f"{b:.5f}", f"{a:.5f}"] for a, b in X[:10]])
    assert main(["predict", str(root / "run"), "--data", data]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "prediction" and len(captured.out.splitlines()) == 11
    assert "accuracy" not in captured.err
    assert main(["predict", str(root / "run"), "--data", data, "--proba"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "p_no,p_yes"
    assert all(abs(sum(map(float, line.split(","))) - 1) < 1e-5 for line in lines[1:])


@pytest.mark.parametrize("header,needle", [
    (["signal"], "missing feature column(s) 'noise'"),
    (["signal", "noise", "answer", "extra"], "unexpected column(s) 'answer', 'extra'"),
])
def test_mismatched_columns_are_one_message(trained, tmp_path, capsys, header, needle):
    root, _, _ = trained
    data = _write(tmp_path / "bad.csv", header, [["1"] * len(header)])
    assert main(["predict", str(root / "run"), "--data", data]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_bad_run_directories_exit_2(tmp_path, capsys):
    data = _write(tmp_path / "d.csv", ["a", "b"], [["1", "2"]])
    assert main(["predict", str(tmp_path), "--data", data]) == 2
    assert "holds no model.json" in capsys.readouterr().err


def test_array_models_take_columns_by_position(tmp_path, capsys):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 3))
    y = (X[:, 0] - X[:, 2] > 0).astype(float)
    np.save(tmp_path / "train.npy", np.column_stack([X, y]))
    assert main(["train", "--data", str(tmp_path / "train.npy"), "--model", "softmax",
                 "--epochs", "5", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    np.save(tmp_path / "features.npy", X)
    assert main(["predict", str(tmp_path / "run"), "--data", str(tmp_path / "features.npy"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    assert "accuracy" not in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "run"), "--data", str(tmp_path / "train.npy")]) == 0
    assert "accuracy 0.9" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("sgdlab ")


def test_train_init_continues_from_a_run(trained, tmp_path):
    import json
    root, _, _ = trained
    out = tmp_path / "tuned"
    assert main(["train", "--data", str(root / "train.csv"), "--init", str(root / "run"),
                 "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "linear" and config["loss"] == "logistic"
    assert config["extra"]["init"] == str((root / "run").resolve())
    assert json.loads((out / "metrics.json").read_text())["val_accuracy"] > 0.9
