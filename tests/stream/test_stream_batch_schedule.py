"""Batch-size schedules on streamed shard sets: the stream goes on at the new batch size where
it was (every row once per epoch), a stream sought to a position in any phase continues it
exactly, and a streamed run resumes bit-identically from a checkpoint in each phase."""

import shutil

import numpy as np
import pytest
from helpers import back_to_a_middle_checkpoint
from stream_helpers import row_id_shards

import sgdlab
from reliability.rel_helpers import assert_same_run
from sgdlab.data.stream import ShardStream
from sgdlab.engine.batch_schedule import BatchSchedule, PhaseTable

#: 65 rows per load (one 37-row block), so phases change inside loads and inside epochs.
TINY_MB = 0.002


@pytest.fixture(scope="module")
def ids(tmp_path_factory):
    return row_id_shards(tmp_path_factory.mktemp("ids"))


def _stream(shards, batch_size, **kw):
    kw = {"sampling": "shuffle", "seed": 4, "buffer_mb": TINY_MB, **kw}
    return ShardStream(shards, np.arange(shards.n_blocks), batch_size, **kw)


def _run(stream, table, steps, t0=0):
    """Take steps ``t0 .. steps - 1`` one at a time, each at its phase's batch size: ``->
    [(epoch, row ids of the step, count)]`` and the position before each step."""
    out, positions = [], []
    for t in range(t0, steps):
        b = table.phases[table.index_at(t)].batch_size
        if b != stream.batch_size:
            stream.set_batch_size(b)
        positions.append(stream.position)
        epoch = stream.epoch
        X, y, w, count = stream.take(1)
        out.append((epoch, X[0, :, 0][w[0] > 0].astype(int).tolist(), int(count[0])))
    return out, positions


@pytest.mark.parametrize("kw", [dict(), dict(sampling="sequential", drop_last=True),
                                dict(rank=1, world=2)])
def test_a_schedule_streams_every_row_once_per_epoch_and_seeks_in_any_phase(ids, kw):
    schedule = BatchSchedule.parse("16:0,48:300,96:1500")
    first = _stream(ids, 16, **kw)
    table = PhaseTable.build(schedule, first.epoch_rows, lr=0.1,
                             processes=kw.get("world", 1))
    steps = table.phases[-1].step + 2 * first.epoch_rows.steps_left(0, 96)
    whole, positions = _run(first, table, steps)
    first.close()
    # the counts of every rank's real rows are the table's examples, step by step
    counts = np.cumsum([0] + [c for _, _, c in whole])
    assert counts.tolist() == [table.examples_at(t) for t in range(steps + 1)]
    if "world" not in kw and not kw.get("drop_last"):
        for e in range(max(e for e, _, _ in whole)):
            rows = [i for epoch, ids_, _ in whole if epoch == e for i in ids_]
            assert sorted(rows) == list(range(ids.n))  # every row once, whatever the batch
    # a fresh stream sought to any position goes on exactly as the whole one did
    for t in (5, table.phases[1].step + 3, table.phases[2].step + 2, steps - 4):
        s = _stream(ids, 16, **kw)
        s.set_batch_size(table.phases[table.index_at(t)].batch_size)
        s.seek(**positions[t])
        rest, _ = _run(s, table, steps, t)
        s.close()
        assert rest == whole[t:]


JOB = dict(model="mlp", hidden=(8,), optimizer="momentum", lr=0.05, epochs=3, chunk_steps=4,
           eval_every="10 steps", seed=1, checkpoint_every="6 steps", keep_checkpoints=100,
           buffer_mb=TINY_MB, validation_fraction=0.2, plots=False,
           batch_schedule="16:0,32@0.08:500,64:1400")


@pytest.fixture(scope="module")
def reference(ids, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    result = sgdlab.fit(str(ids.path), out=out, **JOB)
    assert result.status == "completed" and result.examples == 3 * 781
    assert [p["batch_size"] for p in result.extra["batch_phases"]] == [16, 32, 64]
    return out, result


@pytest.mark.parametrize("phase", [0, 1, 2])
def test_a_streamed_run_resumes_bit_identically_from_a_checkpoint_in_each_phase(
        reference, tmp_path, phase):
    ref_dir, ref = reference
    starts = [p["start_step"] for p in ref.extra["batch_phases"]] + [ref.steps]
    run = tmp_path / "run"
    shutil.copytree(ref_dir, run)
    step = back_to_a_middle_checkpoint(run, starts[phase + 1], after=starts[phase])
    r = sgdlab.fit(resume=run, plots=False)
    assert r.extra["resumed_from_step"] == step and r.status == "completed"
    assert_same_run(run, ref_dir)
