"""``--init`` / ``init=`` starts from any saved run whose network the run directory rebuilds:
an architecture with its options (cnn), a user network by import path; a setting that
contradicts the network is named as the command line or Python spells it."""

import json
import sys

import numpy as np
import pytest

import sgdlab
from sgdlab.errors import ConfigError
from sgdlab.cli.main import main

NET = '''
def make_pair():
    import sgdlab
    m = sgdlab.models.mlp(hidden=(5,))
    return m.init, m.apply
'''


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cnn")
    assert main(["train", "--data", "digits-images", "--model", "cnn", "--channels", "3",
                 "--kernel", "3", "--hidden", "8", "--epochs", "1", "--out", str(root / "run"),
                 "--quiet"]) == 0
    return root / "run"


def test_train_init_from_a_cnn_run_takes_its_network(cnn_run, tmp_path):
    out = tmp_path / "tuned"
    assert main(["train", "--data", "digits-images", "--init", str(cnn_run), "--epochs", "1",
                 "--out", str(out), "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["model"], config["channels"], config["kernel"], config["hidden"]) == \
        ("cnn", [3], 3, [8])
    assert config["extra"]["init"] == str(cnn_run.resolve())
    first, tuned = sgdlab.load(cnn_run), sgdlab.load(out)
    shapes = [np.shape(a) for a in first.params["conv"][0].values()]
    assert [np.shape(a) for a in tuned.params["conv"][0].values()] == shapes


def test_a_setting_that_contradicts_the_initial_network_names_its_flag(cnn_run, tmp_path,
                                                                      capsys):
    assert main(["train", "--data", "digits-images", "--init", str(cnn_run), "--hidden", "9",
                 "--epochs", "1", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--init" in err and "--hidden" in err and "hidden is (8,)" in err, err
    assert "Traceback" not in err and "pass model=" not in err


def test_init_from_a_user_network_by_import_path(tmp_path, monkeypatch):
    name = f"initnets_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(NET)
    monkeypatch.chdir(tmp_path)
    try:
        first = sgdlab.fit("blobs", model=f"{name}:make_pair", epochs=2, out=tmp_path / "run",
                           plots=False)
        # the run directory names code to import: refused unless the user trusts it
        with pytest.raises(ConfigError, match="--trust-code"):
            sgdlab.fit("blobs", init=tmp_path / "run", epochs=1, lr=1e-12)
        tuned = sgdlab.fit("blobs", init=tmp_path / "run", epochs=1, lr=1e-12,
                           trust_code=True)
        assert tuned.config.model == f"{name}:make_pair"
        X = sgdlab.load_data("blobs").X
        np.testing.assert_allclose(tuned.predict_proba(X), first.predict_proba(X), atol=1e-6)
        assert main(["train", "--data", "blobs", "--init", str(tmp_path / "run"), "--epochs",
                     "1", "--out", str(tmp_path / "cli"), "--quiet", "--trust-code"]) == 0
        assert json.loads((tmp_path / "cli" / "config.json").read_text())["model"] == \
            f"{name}:make_pair"
    finally:
        sys.modules.pop(name, None)


def test_init_from_a_model_given_as_an_object_trains_that_object(tmp_path):
    def init(key, n_in, n_out, dtype="float32"):
        return sgdlab.models.linear().init(key, n_in, n_out)

    apply = sgdlab.models.linear().apply
    first = sgdlab.fit("blobs", model=(init, apply), epochs=2)
    tuned = sgdlab.fit("blobs", init=first, epochs=1, lr=1e-12)
    X = sgdlab.load_data("blobs").X
    np.testing.assert_allclose(tuned.predict_proba(X), first.predict_proba(X), atol=1e-6)
