"""Images and your own networks on the command line: every verb takes ``--model cnn`` on the
digits as 8x8x1 images, and a network named by import path trains, resumes, saves and
predicts; a path that does not import is one message."""

import json
import textwrap

import numpy as np
import pytest
from sklearn.datasets import load_digits

import sgdlab
from sgdlab.cli.main import main

CNN = ["--data", "digits-images", "--model", "cnn", "--channels", "4,8", "--kernel", "3",
       "--hidden", "32"]
#: For the lab verbs, which compile many programs of the network: one convolution of two
#: channels and 8 hidden units (much less to compile); the sweep's target is one it
#: reaches, so it goes on to the noise scale at the target and the confirmation.
SMALL_CNN = ["--data", "digits-images", "--model", "cnn", "--channels", "2", "--kernel", "3",
             "--hidden", "8"]

NETWORK = textwrap.dedent("""
    import flax.linen as nn

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Conv(4, (3, 3))(x)
            x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))
            return nn.Dense(10)(x.reshape((x.shape[0], -1)))

    def make():
        return Net()
""")


@pytest.fixture
def images_npz(tmp_path):
    d = load_digits()
    path = tmp_path / "images.npz"
    np.savez(path, X=d.images[:40, :, :, None].astype(np.float32), y=d.target[:40])
    return path


def test_train_then_predict_a_cnn_on_images(tmp_path, images_npz, capsys):
    run = tmp_path / "run"
    assert main(["train", *CNN, "--epochs", "3", "--out", str(run), "--quiet"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["val_accuracy"] > 0.6
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "--data", str(images_npz), "--out", str(out)]) == 0
    assert len(out.read_text().strip().splitlines()) == 41  # header + one row per image
    unlabeled = tmp_path / "unlabeled.npz"
    np.savez(unlabeled, X=np.load(images_npz)["X"][:7])  # images to predict need no labels
    assert main(["predict", str(run), "--data", str(unlabeled), "--out", str(out),
                 "--overwrite"]) == 0
    assert len(out.read_text().strip().splitlines()) == 8
    # the export checks its own scores against the model's on random images of that shape
    assert main(["export", str(run), str(tmp_path / "exported")]) == 0


@pytest.mark.parametrize("verb, args", [
    ("gradcheck", ["--examples", "8", "--coords", "30"]),
    ("sweep", ["--batch-sizes", "32", "--seeds", "1", "--budget", "2 epochs",
               "--target-accuracy", "0.3", "--no-probe", "--noise-batches", "16,128",
               "--compile-cache", "off"]),
    ("landscape", ["--seeds", "2", "--grid", "3", "--segments", "3", "--path-steps", "4",
                   "--epochs", "1", "--saddle", "saddle"]),
])
def test_every_lab_verb_takes_the_cnn(verb, args, tmp_path, capsys):
    quiet = [] if verb == "gradcheck" else ["--quiet"]
    code = main([verb, *SMALL_CNN, *args, "--out", str(tmp_path / verb), *quiet])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err


def test_a_network_by_import_path_trains_resumes_and_predicts(tmp_path, monkeypatch,
                                                             images_npz, capsys):
    (tmp_path / "mynet.py").write_text(NETWORK)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    common = ["--data", "digits-images", "--model", "mynet:make", "--out", str(run), "--quiet"]
    assert main(["train", *common, "--epochs", "1", "--checkpoint-every", "10 steps"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "mynet:make"  # recorded, so a resume rebuilds it
    # the checkpoint names code: imported on resume only with the user's opt-in
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 2
    assert "importing the module 'mynet'" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet",
                 "--trust-code"]) == 0
    with pytest.raises(sgdlab.ConfigError, match="pass --trust-code"):
        sgdlab.load(run)
    model = sgdlab.load(run, trust_code=True)
    assert model.predict(np.load(images_npz)["X"]).shape == (40,)


def test_a_model_path_that_does_not_import_is_one_message(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--data", "digits-images", "--model", "nosuchpkg.nets:make",
                 "--quiet", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "nosuchpkg" in err
