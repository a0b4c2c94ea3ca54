"""A checkpoint edited by hand (checksums recomputed, so only the content is wrong) is refused on
resume with one message naming the file and the entry: never a traceback, never a run that
continues from a wrong step, and never NaN parameters reported as a divergence."""

import io
import shutil
import zipfile

import numpy as np
import pytest

import sgdlab
from sgdlab.cli.main import main
from sgdlab.engine.checkpoint import CheckpointWarning
from sgdlab.errors import ConfigError, RunDirError

from rel_helpers import rewrite_checkpoint

RUN = dict(model="mlp", hidden=(8,), batch_size=16, epochs=2, checkpoint_every="5 steps",
           plots=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck") / "run"
    sgdlab.fit("gaussian:n=200,d=4", out=out, **RUN)
    return out


def _huge_member(data: bytes) -> bytes:
    """The .npz with the first layer's header claiming a shape of 3.2e15 values."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            member = zin.read(info)
            if info.filename == "params/layers/0/W.npy":
                member = member.replace(b"(8, 4)", b"(800000000, 4000000)")
            zout.writestr(info.filename, member)
    return out.getvalue()


W = "params/layers/0/W"
EDITS = {  # what the reproducers did, each a traceback or a silent wrong run before
    "truncated": (dict(raw=lambda d: d[:len(d) // 2]),
                  r"ckpt-\d+\.npz: cannot read as an \.npz archive \(damaged\?\)"),
    "huge shape": (dict(raw=_huge_member),
                   r"array 'params/layers/0/W' is truncated or damaged: its header declares "
                   r"shape \(800000000, 4000000\)"),
    "non-finite": (dict(arrays=lambda a: {**a, W: np.full_like(a[W], np.nan)}),
                   r"the array 'params/layers/0/W' holds NaN or infinite values"),
    "no step array": (dict(arrays=lambda a: {k: v for k, v in a.items() if k != "step"}),
                      r"the array 'step' is missing"),
    "step array -5": (dict(arrays=lambda a: {**a, "step": np.array(-5, np.int32)}),
                      r"the array 'step' is int32 \(\) -5, not the whole number \d+"),
    "step array float": (dict(arrays=lambda a: {**a, "step": np.array(3.5)}),
                         r"the array 'step' is float64"),
    "step text": (dict(body=lambda b: b.update(step="x")), r"'step' is 'x', the file name says"),
    "step 10^12": (dict(body=lambda b: b.update(step=10 ** 12)),
                   r"'step' is 1000000000000, the file name says \d+"),
    "position": (dict(body=lambda b: b.update(position={"epoch": -1})), r"'position' is"),
    "history": (dict(body=lambda b: b.update(history=5)), r"'history' is 5, not a list"),
    "history row": (dict(body=lambda b: b["history"].append([1, 2])), r"history row \d+ is"),
    "examples": (dict(body=lambda b: b.update(examples="many")), r"'examples' is 'many'"),
    "since_row": (dict(body=lambda b: b.update(since_row=None)), r"'since_row' is None"),
    "seconds": (dict(body=lambda b: b.update(train_seconds=-1)), r"'train_seconds' is -1"),
    "last_eval": (dict(body=lambda b: b.update(last_eval={"step": "a"})), r"'last_eval' is"),
    "status": (dict(body=lambda b: b.update(status="great")), r"'status' is 'great'"),
    "object array": (dict(arrays=lambda a: {**a, "note": np.array(["x"])}),
                     r"the array 'note' holds <U1 values, not numbers"),
}
#: shapes and dtypes are compared with the model when the run is rebuilt
MODEL_EDITS = {
    "dtype": (dict(arrays=lambda a: {**a, W: a[W].astype(np.float64)}),
              r"parameter 'params/layers/0/W' has shape \(8, 4\) \(float64\) in the checkpoint "
              r"but \(8, 4\) \(float32\) now"),
    "shape": (dict(arrays=lambda a: {**a, W: np.zeros((5, 4), np.float32)}),
              r"parameter 'params/layers/0/W' has shape \(5, 4\)"),
    "missing array": (dict(arrays=lambda a: {k: v for k, v in a.items()
                                             if k != "params/layers/1/b"}),
                      r"the checkpoint has no parameter array 'params/layers/1/b'"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_checkpoint_is_refused_naming_the_entry(finished, tmp_path, edit):
    run = shutil.copytree(finished, tmp_path / "run")
    how, message = EDITS[edit]
    rewrite_checkpoint(run, **how)
    with pytest.warns(CheckpointWarning, match=message), \
            pytest.raises(RunDirError, match=r"no valid checkpoint in .*: all 1 failed their "
                                             r"checks"):
        sgdlab.fit(resume=run, epochs=3, plots=False)


@pytest.mark.parametrize("edit", list(MODEL_EDITS))
def test_an_edited_checkpoint_that_does_not_fit_the_model_is_refused(finished, tmp_path, edit):
    run = shutil.copytree(finished, tmp_path / "run")
    how, message = MODEL_EDITS[edit]
    rewrite_checkpoint(run, **how)
    with pytest.raises(ConfigError, match=message):
        sgdlab.fit(resume=run, epochs=3, plots=False)


@pytest.mark.parametrize("edit", ["truncated", "non-finite", "position", "dtype"])
def test_resuming_an_edited_checkpoint_is_exit_code_2_without_a_traceback(finished, tmp_path,
                                                                          capsys, edit):
    run = shutil.copytree(finished, tmp_path / "run")
    how, message = {**EDITS, **MODEL_EDITS}[edit]
    rewrite_checkpoint(run, **how)
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "learning rate" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err


def test_an_edited_newest_checkpoint_falls_back_to_an_older_good_one(finished, tmp_path):
    run = shutil.copytree(finished, tmp_path / "run")
    from sgdlab.engine.checkpoint import CheckpointStore
    newest, previous = CheckpointStore(run).steps()[:2]
    npz, manifest = CheckpointStore(run).paths(newest)
    keep = {p: p.read_bytes() for p in CheckpointStore(run).paths(previous)}
    rewrite_checkpoint(run, body=lambda b: b.update(examples=-3))  # removes the older ones
    for p, data in keep.items():
        p.write_bytes(data)
    with pytest.warns(CheckpointWarning, match=r"'examples' is -3"):
        assert CheckpointStore(run).latest().step == previous
