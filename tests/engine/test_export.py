"""``sgdlab export``: a fresh process without sgdlab runs the exported forward function and
gets the trained model's predictions."""

import json
import subprocess
import sys

import numpy as np
import pytest

import sgdlab
from sgdlab.cli.main import main
from sgdlab.errors import RunDirError

#: runs predict.py as a script in a process where importing sgdlab fails
WITHOUT_SGDLAB = ("import runpy, sys; sys.modules['sgdlab'] = None; "
                  "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def _run_export(out, X_file):
    p = subprocess.run([sys.executable, "-c", WITHOUT_SGDLAB, str(out / "predict.py"),
                        str(X_file)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


@pytest.mark.parametrize("kind", ["mlp-classes", "linreg-units"])
def test_an_export_predicts_like_the_model_in_a_process_without_sgdlab(tmp_path, kind):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 4)).astype(np.float32) * 5 + 10
    if kind == "mlp-classes":
        y = np.where(X[:, 0] + X[:, 1] > 20, "high", "low")
        settings = {"model": "mlp", "hidden": (8,)}
    else:
        y = (500 + 40 * X[:, 0] - 7 * X[:, 3]).astype(np.float32)
        settings = {"model": "linreg", "task": "regression"}
    sgdlab.fit(X, y, epochs=5, out=tmp_path / "run", plots=False, **settings)
    model = sgdlab.load(tmp_path / "run")
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "exported")]) == 0
    meta = json.loads((tmp_path / "exported" / "export.json").read_text())
    assert meta["n_features"] == 4 and meta["feature_names"] == ["x0", "x1", "x2", "x3"]
    np.save(tmp_path / "X.npy", X[:37])  # a row count the export never saw
    printed = _run_export(tmp_path / "exported", tmp_path / "X.npy")
    expected = model.predict(X[:37])
    if kind == "mlp-classes":
        assert printed == [str(v) for v in expected]
        # a CSV whose header names the features takes its columns by name, in any order
        np.savetxt(tmp_path / "X.csv", X[:37, [3, 0, 2, 1]], delimiter=",", fmt="%.9g",
                   header="x3,x0,x2,x1", comments="")
        assert _run_export(tmp_path / "exported", tmp_path / "X.csv") == printed
    else:
        np.testing.assert_allclose(np.array(printed, float), expected, rtol=1e-5)
        assert abs(np.mean(expected) - np.mean(y[:37])) < 50  # original units


def test_export_never_overwrites(tmp_path, capsys):
    X = np.random.default_rng(1).standard_normal((60, 2)).astype(np.float32)
    sgdlab.fit(X, (X[:, 0] > 0).astype(int), epochs=1, out=tmp_path / "run", plots=False)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep")
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "taken")]) == 2
    assert "exists" in capsys.readouterr().err
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "taken"]  # no leftovers
    with pytest.raises(RunDirError, match="holds no model.json"):
        sgdlab.load(tmp_path / "taken")
