"""Predicting with a model of images: ``sgdlab predict`` takes an ``.npy`` array
``(N, 8, 8, 1)`` (no labels) or a flat ``(N, 64)`` one; the exported ``predict.py``, run
where sgdlab cannot be imported, reads ``.npy``, ``.npz`` and CSV alike, names the example
shape in its ``--help``, and reports bad input as one message with exit code 2."""

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sgdlab.cli.main import main

#: runs predict.py as a script in a process where importing sgdlab fails
WITHOUT_SGDLAB = ("import runpy, sys; sys.modules['sgdlab'] = None; "
                  "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A cnn trained one epoch on the digits as images, its export, and 12 images."""
    root = tmp_path_factory.mktemp("images")
    assert main(["train", "--data", "digits-images", "--model", "cnn", "--channels", "4",
                 "--kernel", "3", "--hidden", "16", "--epochs", "1", "--quiet",
                 "--out", str(root / "run")]) == 0
    assert main(["export", str(root / "run"), str(root / "exported")]) == 0
    images = load_digits().images[:12, :, :, None].astype(np.float32)
    return root, images


def _sgdlab_predict(run, data, capsys):
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "prediction"
    return lines[1:]


def _predict_py(exported_dir, *args):
    return subprocess.run([sys.executable, "-c", WITHOUT_SGDLAB,
                           str(exported_dir / "predict.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_sgdlab_predict_takes_an_npy_of_images_without_labels(exported, tmp_path, capsys):
    root, images = exported
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "flat.npy", images.reshape(len(images), -1))
    np.savez(tmp_path / "images.npz", X=images)
    from_npy = _sgdlab_predict(root / "run", tmp_path / "images.npy", capsys)
    assert len(from_npy) == len(images)
    assert from_npy == _sgdlab_predict(root / "run", tmp_path / "images.npz", capsys)
    assert from_npy == _sgdlab_predict(root / "run", tmp_path / "flat.npy", capsys)
    np.save(tmp_path / "small.npy", images[:, :4, :4])
    assert main(["predict", str(root / "run"), "--data", str(tmp_path / "small.npy")]) == 2
    err = capsys.readouterr().err
    assert "small.npy" in err and "(4, 4, 1)" in err and err.count("\n") == 1


def test_predict_py_reads_npz_npy_and_csv_like_sgdlab_predict(exported, tmp_path, capsys):
    root, images = exported
    np.savez(tmp_path / "images.npz", X=images, y=load_digits().target[:len(images)])
    np.save(tmp_path / "flat.npy", images.reshape(len(images), -1))
    names = json.loads((root / "exported" / "export.json").read_text())["feature_names"]
    np.savetxt(tmp_path / "flat.csv", images.reshape(len(images), -1), delimiter=",",
               header=",".join(names), comments="")
    expected = _sgdlab_predict(root / "run", tmp_path / "images.npz", capsys)
    for name in ("images.npz", "flat.npy", "flat.csv"):
        p = _predict_py(root / "exported", tmp_path / name)
        assert p.returncode == 0, p.stderr
        assert p.stdout.split() == expected, name


def test_predict_py_help_names_the_example_shape(exported):
    root, _ = exported
    p = _predict_py(root / "exported", "--help")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("usage: predict.py") and "(n, 8, 8, 1)" in p.stdout
    assert "(n, 64)" in p.stdout and ".npz" in p.stdout
    doc = (root / "exported" / "predict.py").read_text().split('"""')[1]
    assert "(n, 8, 8, 1)" in doc and "(n, d)" not in doc


@pytest.mark.parametrize("case", ["text", "damaged-npy", "wrong-shape", "no-X", "missing",
                                  "csv-header"])
def test_predict_py_refuses_bad_input_in_one_message(exported, tmp_path, case):
    root, images = exported
    path = tmp_path / {"text": "notes.md", "damaged-npy": "X.npy", "wrong-shape": "X.npy",
                       "no-X": "X.npz", "missing": "absent.npy", "csv-header": "X.csv"}[case]
    if case == "text":
        path.write_text("not numbers\n")
    elif case == "damaged-npy":
        path.write_bytes(b"\x93NUMPY garbage")
    elif case == "wrong-shape":
        np.save(path, images[:, :4])
    elif case == "no-X":
        np.savez(path, a=images, b=images)
    elif case == "csv-header":
        path.write_text("a,b\n1,2\n")
    p = _predict_py(root / "exported", path)
    assert p.returncode == 2 and p.stdout == ""
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1, p.stderr
    assert p.stderr.startswith(f"predict.py: error: {path}: ")
    if case == "wrong-shape":
        assert "(n, 8, 8, 1)" in p.stderr
