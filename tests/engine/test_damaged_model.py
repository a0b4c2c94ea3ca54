"""A damaged or hand-edited saved model is one message, never a traceback, a hang or an
allocation the file chose: every field of ``model.json`` is checked before anything is built,
and ``params.npz`` is checked against the shapes the description implies before it is read
(non-float, non-finite, truncated, empty, a FIFO or a directory in its place)."""

import json
import os
import shutil
import threading

import numpy as np
import pytest

import sgdlab
from sgdlab.cli.main import main
from sgdlab.errors import RunDirError, SgdlabError


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("saved") / "run"
    sgdlab.fit("gaussian:n=120,d=4,n_classes=3", model="mlp", hidden=(5,), epochs=1,
               out=out, plots=False, checkpoint_every="end")
    return out


@pytest.fixture
def copy(good_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    return run


def _edit(run, change):
    meta = json.loads((run / "model.json").read_text())
    text = change(meta)
    (run / "model.json").write_text(text if isinstance(text, str) else json.dumps(meta))


def _set(**fields):
    return lambda meta: meta.update(fields)


def _net(**fields):
    return lambda meta: meta["model"].update(fields)


#: (damage, what the message says): each a reproducer of a hostile model.json
DESCRIPTIONS = [
    (_set(classes=[0, 1]), r"classes holds 2 label\(s\), but the softmax loss with 3 output"),
    (_set(classes=[[0], [1], [2]]), "classes must be a list of plain values"),
    (_set(classes=[0, 0, 1]), "classes holds a value twice"),
    (_set(n_features=1e12), "n_features must be a whole number from 1 to"),
    (_set(n_features=10 ** 12), "n_features must be a whole number from 1 to"),
    (_set(n_features="4"), "n_features must be a whole number"),
    (_set(n_features=True), "n_features must be a whole number"),
    (_set(n_outputs=-1), "n_outputs must be a whole number"),
    (_set(n_features=40, feature_names=[], standardizer=None),
     r"array 'layers/0/W' has shape \(5, 4\), the network model.json describes needs "
     r"\(5, 40\)"),
    (_net(hidden=[10 ** 9]), "more than the .* GiB of memory available|has shape"),
    (_net(hidden=[1e9]), "the network it describes cannot be built .hidden layer sizes"),
    (_net(hidden="abc"), "the network it describes cannot be built"),
    (_net(activation=[1]), "the network it describes cannot be built .unknown activation"),
    (_net(builtin="os:system"), "is not a built-in one"),
    (_net(builtin=["mlp"]), "is not a built-in one"),
    (_set(model=[1]), "model must be an object describing the network"),
    (_set(model={"import": {"init": ["x"], "apply": 1}}), "the network's import entry must"),
    (_set(loss=["softmax"]), "loss must name a built-in loss"),
    (_set(loss="nosuch"), "loss must name a built-in loss"),
    (_set(task=3), "task must be 'classification' or 'regression'"),
    (_set(example_shape=[2, 3]), r"example_shape \[2, 3\] holds 6 values per example"),
    (_set(example_shape="x"), "example_shape must be a list"),
    (_set(feature_names=[1, 2, 3, 4]), "feature_names must be 4 strings"),
    (_set(feature_names=["a"]), "feature_names must be 4 strings"),
    (_set(standardizer={"mean": [0.0], "scale": [1.0]}), "standardizer must hold"),
    (_set(standardizer={"mean": [0.0] * 4, "scale": [0.0] * 4}),
     "the saved preprocessing is damaged"),
    (_set(target_scaler={"mean": "a"}), "the saved preprocessing is damaged"),
    (_set(status=5), "status must be text"),
    (_set(format="1"), "not an sgdlab model description"),
    (_set(format=True), "not an sgdlab model description"),
    (lambda meta: meta.pop("n_outputs"), r"incomplete model description \(no n_outputs\)"),
    (lambda meta: "[1, 2]", "a JSON object is expected, the file holds list"),
    (lambda meta: json.dumps(meta).replace('"n_outputs": 3', '"n_outputs": ' + "9" * 5000),
     "cannot read the model description: Exceeds the limit"),
    (lambda meta: json.dumps(meta).replace('"target_scaler": null',
                                           '"target_scaler": ' + "[" * 100000 + "]" * 100000),
     "cannot read the model description: it is nested too deeply"),
    (lambda meta: "{", "cannot read the model description"),
    (lambda meta: "", "cannot read the model description"),
]


@pytest.mark.parametrize("change, message", DESCRIPTIONS)
def test_a_hostile_model_description_is_one_message(copy, change, message):
    _edit(copy, change)
    with pytest.raises(SgdlabError, match=message):
        sgdlab.load(copy)


def _params(run) -> dict:
    with np.load(run / "params.npz") as z:
        return {k: z[k] for k in z.files}


def _save(run, arrays):
    np.savez(run / "params.npz", **arrays)


def _nan(run):
    a = _params(run)
    a["layers/0/W"][1, 2] = np.nan
    _save(run, a)


def _inf(run):
    a = _params(run)
    a["layers/1/b"][0] = -np.inf
    _save(run, a)


def _ints(run):
    _save(run, {k: v.astype(np.int32) for k, v in _params(run).items()})


def _complex(run):
    _save(run, {k: v.astype(np.complex64) for k, v in _params(run).items()})


def _object(run):
    a = _params(run)
    a["layers/0/W"] = np.array([None] * 20, dtype=object).reshape(4, 5)
    np.savez(run / "params.npz", **a)


def _missing_array(run):
    a = _params(run)
    del a["layers/1/W"]
    _save(run, a)


def _truncate(size):
    def cut(run):
        with open(run / "params.npz", "r+b") as f:
            f.truncate(size)
    return cut


def _replace(kind):
    def swap(run):
        p = run / "params.npz"
        p.unlink()
        if kind == "fifo":
            os.mkfifo(p)
        elif kind == "dir":
            p.mkdir()
    return swap


PARAMS = [
    (_nan, "array 'layers/0/W' holds 1 NaN or infinite value .as float32."),
    (_inf, "array 'layers/1/b' holds 1 NaN or infinite value"),
    (_ints, "array 'layers/0/W' holds int32 values; parameters are floating-point"),
    (_complex, "holds complex64 values; parameters are floating-point"),
    (_object, "holds object values; parameters are floating-point"),
    (_missing_array, "has no array 'layers/1/W'"),
    (_truncate(0), r"cannot be read, the file is damaged or truncated \(BadZipFile"),
    (_truncate(300), r"cannot be read, the file is damaged or truncated"),
    (_replace("fifo"), "is not a regular file"),
    (_replace("dir"), "is not a regular file"),
    (_replace("none"), "no such file, so the run directory has no saved parameters"),
]


@pytest.mark.parametrize("damage, message", PARAMS)
def test_a_damaged_parameter_file_is_one_message(copy, damage, message):
    damage(copy)
    outcome = []

    def attempt():  # a FIFO must be refused, not waited on: a thread, so a hang fails
        try:
            sgdlab.load(copy)
            outcome.append("loaded")
        except Exception as e:  # noqa: BLE001
            outcome.append(e)
    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(60)
    assert outcome, "loading hung"
    assert isinstance(outcome[0], RunDirError), outcome
    assert __import__("re").search(message, str(outcome[0])), str(outcome[0])


def test_every_truncation_of_the_parameter_file_is_one_message(copy):
    data = (copy / "params.npz").read_bytes()
    cuts = 0
    for size in range(0, len(data), max(1, len(data) // 60)):
        (copy / "params.npz").write_bytes(data[:size])
        with pytest.raises(RunDirError, match="params.npz"):
            sgdlab.load(copy)
        cuts += 1
    assert cuts >= 60


def test_the_command_line_says_it_in_one_line(copy, tmp_path, capsys):
    _edit(copy, _set(classes=[0]))
    data = tmp_path / "x.npy"
    np.save(data, np.zeros((3, 5), np.float32))
    for argv in (["predict", str(copy), "--data", str(data)],
                 ["export", str(copy), str(tmp_path / "exported")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "classes holds 1 label(s)" in err and "Traceback" not in err


def test_parameters_of_another_float_type_are_converted_or_refused(copy):
    """Found by the parameter fuzzer: a big-endian float16 array reached JAX (TypeError)."""
    a = _params(copy)
    a["layers/1/W"] = a["layers/1/W"].astype(">f2")
    _save(copy, a)
    model = sgdlab.load(copy)
    assert all(np.asarray(leaf).dtype == np.float32 for leaf in
               __import__("jax").tree_util.tree_leaves(model.params))
    assert model.predict(np.zeros((2, 4), np.float32)).shape == (2,)
    a["layers/1/W"] = np.full(a["layers/1/W"].shape, 1e300)  # float64 beyond float32
    _save(copy, a)
    with pytest.raises(RunDirError, match=r"holds 15 NaN or infinite values \(as float32\)"):
        sgdlab.load(copy)
