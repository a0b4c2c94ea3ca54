"""RunDirectory: the lock is held while inside and released after an error, a resume continues
the checkpoint's settings and refuses changed ones unless forced, the final files are written,
and a process that does not write leaves the directory alone."""

import json
import types

import numpy as np
import pytest

import sgdlab
from sgdlab.data import from_arrays, split
from sgdlab.engine.job import Job
from sgdlab.engine.lock import RunLock
from sgdlab.errors import ConfigError, RunDirError
from sgdlab.run_directory import HALVE_LR_ONE_PROCESS, RunDirectory

SETTINGS = dict(epochs=1, batch_size=16, plots=False)


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(int)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A run directory with checkpoints, written by sgdlab.fit."""
    out = tmp_path_factory.mktemp("runs") / "done"
    sgdlab.fit(*_data(), out=out, checkpoint_every="end", keep_checkpoints=2, **SETTINGS)
    return out


def test_the_lock_is_held_inside_and_released_after_an_error(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="training failed"):
        with RunDirectory(out, on_divergence="halve-lr") as run_dir:
            assert run_dir.locked and (out / ".lock").is_file()
            with pytest.raises(RunDirError, match="is in use by process"):
                RunDirectory(out).__enter__()
            session = run_dir.open_session(sgdlab.TrainConfig(), "f", data={}, data_name="x")
            session.on_row({"step": 0})  # opens history.csv
            raise RuntimeError("training failed")
    assert not run_dir.locked and not (out / ".lock").exists()
    assert session.log._fd is None  # the history file was closed too
    with RunLock(out):  # free for the next run
        pass


def test_a_run_that_fails_before_training_leaves_no_directory_it_made(tmp_path):
    with pytest.raises(sgdlab.DataError, match="file not found"):
        sgdlab.fit(str(tmp_path / "missing.csv"), out=tmp_path / "runs" / "new")
    assert not (tmp_path / "runs" / "new").exists()
    X, y = np.random.default_rng(0).normal(size=(60, 4)), np.arange(60) % 2
    with pytest.raises(ConfigError, match="cnn needs image examples"):  # after config.json
        sgdlab.fit(X, y, model="cnn", out=tmp_path / "runs" / "flat")
    assert not (tmp_path / "runs" / "flat").exists()
    mine = tmp_path / "mine"  # a folder of the user's is never written into
    mine.mkdir()
    (mine / "notes.txt").write_text("kept")
    with pytest.raises(RunDirError, match="is not an sgdlab run directory"):
        sgdlab.fit(str(tmp_path / "missing.csv"), out=mine)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    empty = tmp_path / "empty"  # an empty one that was there before stays, empty
    empty.mkdir()
    with pytest.raises(sgdlab.DataError):
        sgdlab.fit(str(tmp_path / "missing.csv"), out=empty)
    assert empty.is_dir() and list(empty.iterdir()) == []


def test_options_that_do_not_go_together_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(RunDirError, match="no such run directory"):
        RunDirectory(resume=tmp_path / "missing")
    (tmp_path / "a").mkdir()
    with pytest.raises(ConfigError, match="names another one: give only one of them"):
        RunDirectory(tmp_path / "b", resume=tmp_path / "a")
    with pytest.raises(ConfigError, match="keep_checkpoints must be a whole number"):
        RunDirectory(tmp_path / "c", keep_checkpoints=0)
    with pytest.raises(ConfigError, match="needs a single process"):
        RunDirectory(tmp_path / "d", placement=types.SimpleNamespace(is_writer=True),
                     on_divergence="halve-lr")
    assert HALVE_LR_ONE_PROCESS == sgdlab.api.HALVE_LR_ONE_PROCESS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_a_session_is_kept_for_a_directory_or_for_divergence_recovery(tmp_path):
    assert not RunDirectory().needs_session
    assert RunDirectory(tmp_path / "r").needs_session
    assert RunDirectory(on_divergence="halve-lr").needs_session


def test_a_resume_continues_the_recorded_settings(finished_run):
    with RunDirectory(resume=finished_run, keep_checkpoints=5) as run_dir:
        snap = run_dir.resume_snapshot()
        assert run_dir.resuming and snap.step > 0
        assert (run_dir.policy.every, run_dir.policy.keep) == ("end", 5)  # recorded, given
        config = run_dir.config({"epochs": 3})
        assert (config.batch_size, config.epochs) == (16, 3)
    assert RunDirectory.recorded_processes(finished_run) == 1
    assert RunDirectory.recorded_processes(finished_run / "missing") is None


def test_a_resume_refuses_changed_settings_unless_forced(finished_run):
    with RunDirectory(resume=finished_run) as run_dir:
        recorded = dict(run_dir.resume_snapshot().meta["data"])
        fp = recorded.pop("fingerprint")
        changed = run_dir.config({"batch_size": 32})
        with pytest.raises(ConfigError, match="batch_size changed since the checkpoint"):
            run_dir.open_session(changed, fp, data=recorded, data_name="array")
        assert run_dir.session is None
    with RunDirectory(resume=finished_run, force=True) as run_dir:
        snap = run_dir.resume_snapshot()
        session = run_dir.open_session(run_dir.config({"batch_size": 32}), fp, data=recorded,
                                       data_name="array")
        assert session.meta["forced_changes"] == [
            {"field": "batch_size", "was": 16, "now": 32}]
        assert session.meta["resumed_from_step"] == snap.step and session.pending is snap
        assert json.loads((finished_run / "config.json").read_text())["batch_size"] == 32
        parts = split(from_arrays(*_data()), validation=0.2, seed=0)  # as fit split them
        result = run_dir.run(Job(parts.train, parts.validation, session=session),
                             run_dir.config({}))
        assert result.status == "completed"
        assert result.extra["forced_changes"] == session.meta["forced_changes"]
        assert result.extra["checkpoints_written"] == session.checkpoints_written == 1  # the end


def test_finish_writes_the_final_files(tmp_path):
    result = sgdlab.fit(*_data(), **SETTINGS)
    out = tmp_path / "run"
    with RunDirectory(out) as run_dir:
        assert run_dir.finish(result, data_name="array", plots=True) == out
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "history.csv", "metrics.json", "params.npz", "model.json"} <= names
    assert json.loads((out / "metrics.json").read_text())["data"] == "array"
    assert ".lock" not in names
    interrupted = tmp_path / "stopped"
    result.status = "interrupted"
    with RunDirectory(interrupted) as run_dir:
        run_dir.finish(result, data_name="array", plots=True)
    assert not list(interrupted.glob("*.png"))  # an interrupted run gets no plots


def test_a_process_that_does_not_write_leaves_the_directory_alone(tmp_path):
    out = tmp_path / "shared"
    placement = types.SimpleNamespace(is_writer=False, world=2, n_devices=2)
    with RunDirectory(out, placement=placement) as run_dir:
        assert not run_dir.locked and run_dir.path is None
        assert run_dir.needs_session  # the same decision as the writer's
        session = run_dir.open_session(sgdlab.TrainConfig(), "f", data={}, data_name="x")
        assert session.store is None and session.meta["processes"] == 2
        assert run_dir.finish(types.SimpleNamespace(status="completed")) is None
    assert not out.exists()
