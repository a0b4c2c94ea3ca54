"""``sgdlab gradcheck`` and ``sgdlab compare-methods`` end to end, and their error paths."""

import json

import pandas as pd
import pytest

from sgdlab.cli.main import main


def test_gradcheck_passes_for_autodiff_and_closed_form(tmp_path, capsys):
    assert main(["gradcheck", "--examples", "8", "--l2", "0.01", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gradcheck.json").read_text())
    assert report["passed"] and [t["tensor"] for t in report["tensors"]] == ["W", "b"]
    assert all(t["max_rel_error"] < 1e-6 for t in report["tensors"])
    assert main(["gradcheck", "--examples", "8", "--gradient", "closed-form",
                 "--coords", "30"]) == 0
    assert "PASSED" in capsys.readouterr().out


def test_gradcheck_table_shows_every_tensor_name_whole(capsys):
    """Piped, the table keeps the names apart ('layers/0/W', not 'layers/…') and its last
    column."""
    assert main(["gradcheck", "--data", "digits-images", "--model", "cnn", "--examples", "4",
                 "--coords", "5"]) == 0
    out = capsys.readouterr().out
    for name in ("layers/0/W", "layers/0/b", "layers/1/W", "layers/1/b"):
        assert name in out
    assert "…" not in out and out.count("good") + out.count("ok") >= 4


def test_gradcheck_bad_input_exits_2(capsys):
    assert main(["gradcheck", "--gradient", "symbolic"]) == 2
    assert "unknown gradient 'symbolic'" in capsys.readouterr().err
    assert main(["gradcheck", "--model", "mlp", "--gradient", "closed-form"]) == 2
    assert "closed-form gradients exist for the built-in linear" in capsys.readouterr().err
    assert main(["gradcheck", "--h", "0"]) == 2
    assert "step h must be in (0, 1)" in capsys.readouterr().err


def test_compare_methods_writes_its_run_dir(tmp_path):
    out = tmp_path / "m"
    assert main(["compare-methods", "--methods", "random-global,numerical", "--budget", "0.2s",
                 "--trace-steps", "5", "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "comparison.csv")
    assert list(table["method"]) == ["random-global", "numerical"]
    assert (out / "accuracy_vs_time.png").is_file() and (out / "loss_vs_steps.png").is_file()


def test_compare_methods_bad_input_exits_2(tmp_path, capsys):
    assert main(["compare-methods", "--methods", "newton", "--out", str(tmp_path)]) == 2
    assert "unknown method 'newton'" in capsys.readouterr().err
    assert main(["compare-methods", "--budget", "soon", "--out", str(tmp_path)]) == 2
    assert "cannot read duration 'soon'" in capsys.readouterr().err


def test_train_with_closed_form_and_numerical_gradients(tmp_path):
    for kind in ("closed-form", "numerical"):
        out = tmp_path / kind
        assert main(["train", "--gradient", kind, "--epochs", "1", "--out", str(out),
                     "--quiet"]) == 0
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["gradient"] == kind
        assert pd.read_csv(out / "history.csv")["val_accuracy"].iloc[-1] > 0.8


@pytest.mark.parametrize("model, data", [("logistic", "blobs"), ("svm", "blobs"),
                                         ("linreg", "linreg")])
def test_without_data_a_verb_picks_built_in_data_that_fits_the_model(model, data, capsys):
    assert main(["gradcheck", "--model", model, "--examples", "8"]) == 0
    err = capsys.readouterr().err
    assert f"using the built-in '{data}' data" in err and "Traceback" not in err
