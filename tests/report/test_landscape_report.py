"""The landscape run directory and HTML page, and ``sgdlab landscape`` on the command line."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers import help_of

from sgdlab import TrainConfig
from sgdlab.cli.main import main
from sgdlab.data import from_arrays
from sgdlab.lab import run_landscape
from sgdlab.report.landscape import landscape_page, write_landscape

TINY = dict(seeds=range(2), grid=5, path_steps=4, convexity_segments=2)


@pytest.fixture(scope="module")
def tiny_result():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3)).astype(np.float32)
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(np.int32)
    ds = from_arrays(X, y, name="<script>alert(1)</script>")
    cfg = TrainConfig(model="softmax", batch_size=16, epochs=2, l2=0.01)
    return run_landscape(ds, cfg, saddles=["saddle"], **TINY)


def test_run_dir_holds_numbers_plots_and_page(tiny_result, tmp_path):
    out = write_landscape(tmp_path / "land", tiny_result)
    for name in ("landscape.json", "restarts.csv", "interpolation.csv", "slice_random.csv",
                 "slice_paths.csv", "paths.csv", "params_seed0.npz", "params_seed1.npz",
                 "restarts.png", "interpolation.png", "slice_random.png", "slice_paths.png",
                 "saddle_saddle.png", "landscape.html"):
        assert (out / name).is_file(), name
    numbers = json.loads((out / "landscape.json").read_text())
    assert numbers["restarts"]["seeds"] == [0, 1]
    assert numbers["saddles"][0]["kind"] == "saddle"
    assert len(numbers["random_slice"]["loss"]) == 5
    rows = pd.read_csv(out / "interpolation.csv")
    assert rows["t"].iloc[0] == -0.25 and rows["t"].iloc[-1] == 1.25
    assert len(pd.read_csv(out / "slice_random.csv")) == 25
    assert set(pd.read_csv(out / "paths.csv")["path"]) == set(tiny_result.path_slice.paths)


def test_html_is_self_contained_and_escaped(tiny_result):
    page = landscape_page(tiny_result, {})
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert tiny_result.restarts.kind in page and "Hessian eigenvalues" in page


def test_html_embeds_images(tiny_result, tmp_path):
    out = write_landscape(tmp_path / "land", tiny_result)
    page = (out / "landscape.html").read_text()
    assert page.count("data:image/png;base64,") == 5
    assert "src=\"http" not in page and "<link" not in page


def test_cli_landscape_writes_run_dir(tmp_path):
    out = tmp_path / "cli"
    code = main(["landscape", "--model", "softmax", "--epochs", "1", "--seeds", "2",
                 "--grid", "5", "--path-steps", "4", "--segments", "2", "--saddle", "monkey",
                 "--no-slices", "--out", str(out), "--quiet"])
    assert code == 0
    numbers = json.loads((out / "landscape.json").read_text())
    assert numbers["info"]["model"] == "linear" and numbers["info"]["loss"] == "softmax"
    assert "random_slice" not in numbers and numbers["saddles"][0]["name"] == "monkey"
    assert (out / "saddle_monkey.png").is_file() and not (out / "slice_random.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--seeds", "1"], "--seeds must be at least 2"),
    (["--saddle", "horse"], "unknown saddle demo 'horse'"),
    (["--grid", "2"], "grid must be a whole number >= 3"),
    (["--directions", "filter", "--span", "0"], "slice span must be > 0"),
])
def test_cli_errors_are_messages(args, message, tmp_path, capsys):
    code = main(["landscape", "--epochs", "0.1", "--seeds", "2", "--segments", "0",
                 "--path-steps", "2", "--quiet", "--out", str(tmp_path / "e"), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and err.startswith("sgdlab landscape: error:")
    assert not (tmp_path / "e").exists()  # checked before any training or writing


def test_help_has_examples():
    text = help_of("landscape")
    assert "examples:" in text and "--grid 51" in text
