"""kill -9 of a streamed run, then --resume: it ends exactly as if never killed.

The run streams a shard set of row ids through a buffer of 65 rows (a load per 37-row block),
checkpointing every 6 steps. It is killed from outside while steps run, and once in the middle
of a checkpoint write, then resumed with ``sgdlab train --resume``; parameters, optimiser state
and history (time columns aside) must equal an uninterrupted run's bit for bit, and across the
interruption every training row is streamed exactly once per epoch.
"""

import pytest
from stream.stream_helpers import row_id_shards
from test_rel_kill import _kill_child

from rel_helpers import assert_same_run, metrics, read_trace, resume_here, run_child

TRIALS = [("steps", 9, 0.5), ("steps", 23, 0.5), ("checkpoint", 9, 0.3)]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax-cache")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return str(row_id_shards(tmp_path_factory.mktemp("ids")).path)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache, shards):
    out = tmp_path_factory.mktemp("ref") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REL_SHARDS", shards)  # the child streams this shard set
        done = run_child(out, out.parent / "trace.jsonl", "none", 0, cache_dir=cache)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("mode, n, fraction", TRIALS)
def test_kill_9_of_a_streamed_run_then_resume_is_exact(mode, n, fraction, reference, cache,
                                                        shards, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REL_SHARDS", shards)
    run_dir, trace1, trace2 = tmp_path / "run", tmp_path / "t1.jsonl", tmp_path / "t2.jsonl"
    _kill_child(run_dir, trace1, mode, n, fraction, cache)

    code = resume_here(run_dir, trace2)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err

    assert_same_run(run_dir, reference)
    m = metrics(run_dir)
    spe, total = m["steps_per_epoch"], 3 * m["steps_per_epoch"]  # ceil(training rows / 16)
    assert m["status"] == "completed" and m["steps"] == total

    resumed_from = m["resumed_from_step"]
    assert resumed_from % spe  # mid-epoch: the stream was positioned inside a load
    steps = [t for t in read_trace(trace1) if t["g"] < resumed_from] + read_trace(trace2)
    assert [t["g"] for t in steps] == list(range(total))
    epochs = [sorted(i for t in steps[e * spe:(e + 1) * spe] for i in t["idx"])
              for e in range(3)]
    assert len(epochs[0]) == len(set(epochs[0])) == m["examples"] // 3 > 16 * (spe - 1)
    assert epochs[0] == epochs[1] == epochs[2]
