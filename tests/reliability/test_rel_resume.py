"""Resume in one process: fallback past corrupt checkpoints, refused changes, signals."""

import json
import os
import signal

import jax
import numpy as np
import pytest

import sgdlab
from sgdlab.cli.main import main
from sgdlab.engine.checkpoint import CheckpointStore, CheckpointWarning
from sgdlab.errors import ConfigError, RunDirError

from rel_helpers import assert_same_arrays, history_without_time, npz_arrays

DATA = "gaussian:n=300,d=5,n_classes=3"
JOB = dict(model="mlp", hidden=(8,), optimizer="momentum", lr=0.05, batch_size=16, epochs=3,
           chunk_steps=4, eval_every="10 steps", seed=1, checkpoint_every="5 steps",
           keep_checkpoints=4, plots=False)


def _fit(out, **changes):
    return sgdlab.fit(DATA, out=out, **{**JOB, **changes})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    result = _fit(out)
    return out, result


def _same_run(run_dir, reference):
    ref_dir, _ = reference
    assert history_without_time(run_dir / "history.csv") == \
        history_without_time(ref_dir / "history.csv")
    assert_same_arrays(npz_arrays(run_dir / "params.npz"), npz_arrays(ref_dir / "params.npz"))
    assert_same_arrays(CheckpointStore(run_dir).latest().arrays,
                       CheckpointStore(ref_dir).latest().arrays)


def _copy_run(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return dst


def test_truncated_newest_checkpoint_falls_back_and_finishes_identically(reference, tmp_path):
    run = _copy_run(reference[0], tmp_path / "run")
    store = CheckpointStore(run)
    newest, previous = store.steps()[:2]
    npz, _ = store.paths(newest)
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])  # truncated
    with pytest.warns(CheckpointWarning, match=f"{npz.name}.*fail their checksum"):
        r = sgdlab.fit(resume=run, plots=False)
    assert r.extra["resumed_from_step"] == previous
    _same_run(run, reference)


def test_corrupt_manifest_is_skipped_with_its_name(reference, tmp_path):
    run = _copy_run(reference[0], tmp_path / "run")
    store = CheckpointStore(run)
    newest, previous = store.steps()[:2]
    _, manifest = store.paths(newest)
    manifest.write_text(manifest.read_text().replace('"examples": ', '"examples": 1'))
    with pytest.warns(CheckpointWarning, match=f"{manifest.name}: checkpoint manifest fails"):
        assert store.latest().step == previous
    with pytest.warns(CheckpointWarning):
        sgdlab.fit(resume=run, plots=False)
    _same_run(run, reference)


def test_no_valid_checkpoint_is_a_clear_error(reference, tmp_path, capsys):
    run = _copy_run(reference[0], tmp_path / "run")
    store = CheckpointStore(run)
    for step in store.steps():
        store.paths(step)[0].write_bytes(b"")
    with pytest.warns(CheckpointWarning), \
            pytest.raises(RunDirError, match="no valid checkpoint .* all 4 failed"):
        sgdlab.fit(resume=run, plots=False)
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no valid checkpoint" in err and "Traceback" not in err
    assert "warning: skipping bad checkpoint" in err


def test_resume_without_checkpoints_or_directory(tmp_path):
    with pytest.raises(RunDirError, match="no such run directory"):
        sgdlab.fit(resume=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="no checkpoint in"):
        sgdlab.fit(resume=tmp_path / "empty")


@pytest.mark.parametrize("change, field", [
    (dict(batch_size=32), "batch_size"),
    (dict(hidden=(16,)), "hidden"),
    (dict(seed=2), "seed"),
])
def test_changed_settings_are_refused_naming_the_field(reference, tmp_path, change, field):
    run = _copy_run(reference[0], tmp_path / "run")
    with pytest.raises(ConfigError, match=f"cannot resume .*: {field} changed since the "
                                          f"checkpoint .*--force"):
        sgdlab.fit(resume=run, **change)


def test_changed_data_is_refused_and_force_is_recorded(reference, tmp_path, capsys):
    run = _copy_run(reference[0], tmp_path / "run")
    other = "gaussian:n=300,d=5,n_classes=3,seed=9"
    code = main(["train", "--resume", str(run), "--data", other, "--quiet"])
    assert code == 2 and "data fingerprint changed" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--batch-size", "32", "--force",
                 "--quiet"]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["forced_changes"][0] == {"field": "batch_size", "was": 16, "now": 32}


def test_resume_may_extend_a_finished_run(tmp_path):
    job = dict(JOB, eval_every="1 epoch")
    short = sgdlab.fit(DATA, out=tmp_path / "a", **dict(job, epochs=2))
    longer = sgdlab.fit(resume=tmp_path / "a", epochs=3)
    whole = sgdlab.fit(DATA, out=tmp_path / "b", **job)
    assert short.steps < longer.steps == whole.steps
    assert longer.history.without_time().__repr__() == whole.history.without_time().__repr__()
    for a, b in zip(jax.tree_util.tree_leaves((longer.params, longer.opt_state)),
                    jax.tree_util.tree_leaves((whole.params, whole.opt_state))):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_sigint_saves_at_the_next_chunk_boundary_then_resume_is_exact(reference, tmp_path):
    run = tmp_path / "run"
    chunks = []

    def interrupt(event):
        if event["event"] == "chunk":
            chunks.append(event["step"])
            if len(chunks) == 7:
                os.kill(os.getpid(), signal.SIGINT)  # handled: no KeyboardInterrupt

    r = _fit(run, callback=interrupt)
    assert r.status == "interrupted" and r.extra["signal"] == signal.SIGINT
    # The signal came while chunk 7 was being booked: stopped at that chunk's boundary.
    assert len(chunks) == 7 and r.steps == chunks[-1]
    assert CheckpointStore(run).latest().step == r.steps
    assert json.loads((run / "metrics.json").read_text())["status"] == "interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    # A torn last line (as a kill would leave) is cut away on resume.
    with open(run / "history.csv", "a") as f:
        f.write("999,0.5,12")
    sgdlab.fit(resume=run, plots=False)
    _same_run(run, reference)


def test_python_api_resume_of_arrays_needs_the_arrays(tmp_path):
    from sgdlab.data import load_data
    ds = load_data(DATA)
    sgdlab.fit(ds.X, ds.y, out=tmp_path / "r", **dict(JOB, epochs=1))
    with pytest.raises(ConfigError, match=r"in-memory arrays.*pass the same X, y .*again, or "
                                          r"on the command line .*--resume RUN --data FILE"):
        sgdlab.fit(resume=tmp_path / "r")
    r = sgdlab.fit(ds.X, ds.y, resume=tmp_path / "r", epochs=2)
    assert r.extra["resumed_from_step"] > 0 and r.status == "completed"
