"""Checkpoints and resume of streamed runs: bit-exact from any checkpoint, changed shards refused.

The buffer holds 65 rows (a load is one 37-row block), so an epoch of the 781 training rows is
over twenty loads and a resume mid-epoch lands inside a partly consumed load.
"""

import json
import os
import shutil
import signal
import types

import numpy as np
import pytest
from stream_helpers import blobs, row_id_shards, write_csv

import sgdlab
from reliability.rel_helpers import assert_same_arrays, assert_same_run
from sgdlab.cli.main import main
from sgdlab.data.stream import ShardStream
from sgdlab.engine.checkpoint import CheckpointStore
from sgdlab.errors import ConfigError

JOB = dict(model="mlp", hidden=(8,), optimizer="momentum", lr=0.05, batch_size=16, epochs=3,
           chunk_steps=4, eval_every="1 epoch", seed=1, checkpoint_every="5 steps, 1 epoch",
           keep_checkpoints=100, buffer_mb=0.002, validation_fraction=0.2, plots=False)


def _recording(seen: dict):
    """A ``ShardStream.take`` that also records ``{global step: real row ids}`` in ``seen``."""
    original = ShardStream.take

    def take(self, k, pad_to=None):
        g0 = self.epoch * self.steps_per_epoch + self.step_in_epoch
        X, y, w, count = original(self, k, pad_to)
        for r in range(k):
            seen[g0 + r] = X[r, :, 0][w[r] > 0].astype(int).tolist()
        return X, y, w, count

    return take


@pytest.fixture
def trace(monkeypatch):
    seen = {}
    monkeypatch.setattr(ShardStream, "take", _recording(seen))
    return seen


@pytest.fixture(scope="module")
def ids(tmp_path_factory):
    return row_id_shards(tmp_path_factory.mktemp("ids"))


@pytest.fixture(scope="module")
def reference(ids, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    trace, original = {}, ShardStream.take
    ShardStream.take = _recording(trace)
    try:
        result = sgdlab.fit(str(ids.path), out=out, **JOB)
    finally:
        ShardStream.take = original
    return out, result, trace


def _back_to(ref_dir, dst, pick):
    """A copy of the reference run whose newest checkpoint is the first one ``pick`` accepts."""
    shutil.copytree(ref_dir, dst)
    store = CheckpointStore(dst)
    for step in store.steps():
        meta = store.read(step).meta
        if meta["status"] == "running" and pick(meta["position"]):
            return step
        for p in store.paths(step):
            p.unlink()
    raise AssertionError("no checkpoint matches")


def test_reference_sees_every_training_row_once_per_epoch(reference):
    _, result, trace = reference
    spe = result.steps_per_epoch
    assert result.steps == 3 * spe == len(trace) and result.extra["load_rows"] == 65
    epochs = [[i for g in range(e * spe, (e + 1) * spe) for i in trace[g]] for e in range(3)]
    for rows in epochs:  # the held-out blocks' rows never, every training row exactly once
        assert len(rows) == len(set(rows)) == result.examples // 3 == 781
        assert set(rows) == set(epochs[0])


@pytest.mark.parametrize("where, pick", [
    ("first epoch", lambda p: p["epoch"] == 0 and p["step_in_epoch"] > 0),
    ("mid-epoch", lambda p: p["epoch"] == 1 and 10 < p["step_in_epoch"] < 40),
    ("epoch boundary", lambda p: p["epoch"] == 2 and p["step_in_epoch"] == 0),
])
def test_resume_from_a_checkpoint_is_bit_identical(reference, tmp_path, trace, where, pick):
    ref_dir, _, ref_trace = reference
    run = tmp_path / "run"
    step = _back_to(ref_dir, run, pick)
    r = sgdlab.fit(resume=run, plots=False)
    assert r.extra["resumed_from_step"] == step and r.status == "completed"
    assert_same_run(run, ref_dir)
    # the resumed stream hands out the very batches the reference did from that step on
    assert min(trace) == step and trace == {g: ref_trace[g] for g in range(step, r.steps)}


def test_sigint_saves_at_the_next_chunk_boundary_then_resume_is_exact(ids, reference, tmp_path):
    ref_dir = reference[0]
    chunks = []

    def interrupt(event):
        if event["event"] == "chunk":
            chunks.append(event["step"])
            if len(chunks) == 9:
                os.kill(os.getpid(), signal.SIGINT)  # handled: no KeyboardInterrupt

    run = tmp_path / "run"
    r = sgdlab.fit(str(ids.path), out=run, callback=interrupt, **JOB)
    assert r.status == "interrupted" and r.steps == chunks[-1]
    assert CheckpointStore(run).latest().step == r.steps
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    sgdlab.fit(resume=run, plots=False)
    assert_same_run(run, ref_dir)


def test_changed_shards_are_refused_naming_the_files(tmp_path, capsys):
    X, y = blobs(n=300)
    data = tmp_path / "data"
    from sgdlab.data.convert import convert
    convert(write_csv(tmp_path / "a.csv", X, y), data, block_rows=40, shard_blocks=4)
    run = tmp_path / "run"
    job = ["--model", "logistic", "--batch-size", "16", "--epochs", "2", "--quiet",
           "--checkpoint-every", "7 steps", "--buffer-mb", "0.01"]
    assert main(["train", "--data", str(data), "--out", str(run), *job]) == 0
    shutil.rmtree(data)
    X[250:] += 1.0  # rows of the second shard only
    convert(write_csv(tmp_path / "b.csv", X, y), data, block_rows=40, shard_blocks=4)
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "shard file X-00001.npy changed" in err and "X-00000.npy" not in err
    assert "--force" in err
    assert main(["train", "--resume", str(run), "--epochs", "3", "--force", "--quiet"]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert [c["field"] for c in m["forced_changes"]] == ["shard file X-00001.npy"]
    assert m["steps"] == 3 * m["steps_per_epoch"]


def test_devices_of_one_process_and_halve_lr_over_processes_are_refused(ids, capsys):
    from sgdlab.engine.batched import MeshPlacement
    with pytest.raises(ConfigError, match="halve-lr.* needs a single process"):
        sgdlab.fit(str(ids.path), placement=MeshPlacement(), on_divergence="halve-lr")
    two_devices = types.SimpleNamespace(world=1, rank=0, n_devices=2, is_writer=True)
    with pytest.raises(ConfigError, match="not over several devices of one process"):
        sgdlab.fit(str(ids.path), placement=two_devices, checkpoint_every="1 epoch")
    assert main(["train", "--data", str(ids.path), "--resume", "runs/x", "--devices",
                 "all"]) == 2
    assert "not over several devices of one process (--devices)" in capsys.readouterr().err
    assert main(["train", "--data", str(ids.path), "--processes", "2", "--on-divergence",
                 "halve-lr"]) == 2
    assert "needs a single process" in capsys.readouterr().err


def test_halve_lr_restarts_a_streamed_run_from_its_last_checkpoint(ids):
    job = dict(JOB, model="linreg", optimizer="sgd", lr=8.0, checkpoint_every="end")
    r = sgdlab.fit(str(ids.path), on_divergence="halve-lr", max_retries=6, **job)
    retries = r.extra["divergence_retries"]
    assert r.status == "completed" and retries
    assert all(t["restart_step"] == 0 for t in retries)
    # restarted from step 0 with the stream back at (0, 0): a fresh run at the final rate
    fresh = sgdlab.fit(str(ids.path), **dict(job, lr=retries[-1]["lr_to"]))
    assert_same_arrays({k: np.asarray(v) for k, v in r.params.items()},
                       {k: np.asarray(v) for k, v in fresh.params.items()})
