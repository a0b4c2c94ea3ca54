"""Run-directory lock, safe run names, the checkpoint store and the live history file."""

import os
import signal
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sgdlab import TrainState
from sgdlab.cli.main import main
from sgdlab.engine.checkpoint import (CheckpointStore, Snapshot, state_from_arrays,
                                      state_to_arrays)
from sgdlab.engine.historylog import HistoryLog, read_history, trim_torn_line
from sgdlab.engine.lock import RunLock, check_run_name, run_dir_for_name
from sgdlab.errors import ConfigError, RunDirError

from rel_helpers import child_env

# ------------------------------------------------------------------------------------ lock


def test_second_writer_is_refused_naming_the_holder(tmp_path):
    with RunLock(tmp_path):
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
        with pytest.raises(RunDirError, match=f"in use by process {os.getpid()} .*kill"):
            RunLock(tmp_path).acquire()
    assert not (tmp_path / ".lock").exists()
    RunLock(tmp_path).acquire().release()  # free again


def test_lock_held_by_another_process_then_taken_over_after_kill_9(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from sgdlab.engine.lock import RunLock; "
         f"RunLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(60)"],
        env=child_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=f"in use by process {holder.pid}"):
            RunLock(tmp_path).acquire()
        code = main(["train", "--out", str(tmp_path), "--epochs", "1", "--quiet"])
        assert code == 2
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / ".lock").exists()  # stale, its process is dead: taken over
    with RunLock(tmp_path):
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", ".hidden", "a\\b", "",
                                  "x..y", "sp ace", "a" * 129])
def test_unsafe_run_names_are_refused(name):
    with pytest.raises(RunDirError, match="run name"):
        check_run_name(name)


def test_safe_run_names_map_under_the_root(tmp_path):
    assert run_dir_for_name("mlp-b64_lr=0.1", tmp_path) == tmp_path / "mlp-b64_lr=0.1"


def test_cli_refuses_a_bad_run_name(capsys):
    assert main(["train", "--name", "../../etc", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "path separator" in err and "Traceback" not in err


# -------------------------------------------------------------------------------- checkpoints


def _adam_state(scale=1.0):
    params = {"layers": [{"W": jnp.ones((3, 2)) * scale, "b": jnp.zeros(2)}], "s": jnp.ones(())}
    opt = optax.adam(0.1)
    return TrainState(params, opt.init(params), jnp.asarray(7, jnp.int32)), opt


def _snap(state, step):
    arrays = state_to_arrays(state)
    arrays["step"] = np.asarray(step, np.int32)
    # the loop state every checkpoint holds (a resume checks it: checkpoint_check)
    return Snapshot(arrays, {"step": step, "history": [{"step": step, "loss": float("nan")}],
                             "position": {"epoch": 0, "step_in_epoch": step}, "examples": 0,
                             "train_seconds": 0.0, "eval_seconds": 0.0, "wall_seconds": 0.0,
                             "since_row": [0.0, 0], "last_eval": {"step": 0, "time": 0.0},
                             "status": "running"})


def test_optimiser_state_round_trips_by_name(tmp_path):
    state, opt = _adam_state(2.0)
    arrays = state_to_arrays(state)
    assert "opt/0/mu/layers/0/W" in arrays and "params/layers/0/b" in arrays
    store = CheckpointStore(tmp_path)
    store.save(_snap(state, 7))
    back = state_from_arrays(store.latest().arrays, _adam_state(0.0)[0])
    for a, b in zip(*(map(np.asarray, __import__("jax").tree_util.tree_leaves(s))
                      for s in (state, back))):
        assert np.array_equal(a, b) and a.dtype == b.dtype
    with np.load(store.paths(7)[0], allow_pickle=False) as z:  # readable without pickle
        assert z["params/s"].shape == ()


def test_restore_into_a_different_model_names_the_array(tmp_path):
    state, _ = _adam_state()
    other = {"layers": [{"W": jnp.ones((4, 2)), "b": jnp.zeros(2)}], "s": jnp.ones(())}
    like = TrainState(other, optax.adam(0.1).init(other), jnp.asarray(0, jnp.int32))
    with pytest.raises(ConfigError, match=r"parameter 'params/layers/0/W' has shape \(3, 2\)"):
        state_from_arrays(state_to_arrays(state), like)


def test_keep_last_k_and_clean_leftovers(tmp_path):
    store = CheckpointStore(tmp_path, keep=2)
    state, _ = _adam_state()
    (store.dir).mkdir(parents=True)
    (store.dir / ".ckpt-000000099.npz.tmp").write_bytes(b"torn")       # killed mid-write
    (store.dir / "ckpt-000000098.npz").write_bytes(b"no manifest")      # killed before commit
    for step in (1, 2, 3):
        store.save(_snap(state, step))
    assert store.steps() == [3, 2]
    assert sorted(p.name for p in store.dir.iterdir()) == [
        "ckpt-000000002.json", "ckpt-000000002.npz", "ckpt-000000003.json",
        "ckpt-000000003.npz"]
    assert store.latest().meta["history"][0]["loss"] != store.latest().meta["history"][0]["loss"]


def test_a_non_finite_state_is_never_checkpointed(tmp_path):
    state, _ = _adam_state(float("nan"))
    with pytest.raises(ValueError, match="non-finite"):
        CheckpointStore(tmp_path).save(_snap(state, 1))
    assert CheckpointStore(tmp_path).steps() == []


# ---------------------------------------------------------------------------- history file


def test_history_is_appended_row_by_row_and_torn_lines_are_trimmed(tmp_path):
    path = tmp_path / "history.csv"
    log = HistoryLog(path)
    log.reset([])
    log.append({"step": 0, "loss": float("nan"), "acc": 0.5})
    assert path.read_text() == "step,loss,acc\n0,nan,0.5\n"  # on disk before the next row
    log.append({"step": 10, "loss": 0.1 + 0.2, "acc": 0.75})
    log.close()
    with open(path, "a") as f:
        f.write("20,0.2")  # a kill in the middle of a line
    assert [r["step"] for r in read_history(path)] == [0, 10]
    assert read_history(path)[1]["loss"] == 0.1 + 0.2  # exact float round trip
    assert trim_torn_line(path) and path.read_text().endswith("0.75\n")
    assert not trim_torn_line(path)
