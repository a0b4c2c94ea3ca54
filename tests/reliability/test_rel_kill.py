"""kill -9 at seeded random moments, then --resume: the run ends exactly as if never killed.

Six trials, seeded: two killed from outside while steps run, two during a checkpoint write
(part of a temporary file, or between the arrays and the manifest), two while the final
report is written. Each is resumed with ``sgdlab train --resume`` (in this process: the kill
needs a process of its own, the resume does not); the final parameters, optimiser state and
history (time columns aside) must equal an uninterrupted run's bit for bit, and across the
interruption every training example is seen exactly once per epoch.
"""

import random
import signal

import pytest

from rel_helpers import (N_TRAIN, STEPS_PER_EPOCH, TOTAL_STEPS, assert_same_arrays,
                         final_checkpoint_arrays, history_without_time, metrics, npz_arrays,
                         read_trace, resume_here, run_child, start_child)


def _trials(seed=8, n=6):
    rng = random.Random(seed)
    modes = ["steps"] * 2 + ["checkpoint"] * 2 + ["report"] * 2
    out = []
    for mode in modes:
        if mode == "steps":
            out.append((mode, rng.randint(3, 40), 0.5))
        elif mode == "checkpoint":  # write 1-2 are the step-0 checkpoint; kill after it
            out.append((mode, rng.randint(3, 40), rng.choice([0.0, 0.3, 0.9, 1.0])))
        else:  # config, history, metrics, params, two plots
            out.append((mode, rng.randint(1, 6), rng.choice([0.1, 0.5, 0.99])))
    return out[:n]


TRIALS = _trials()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax-cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
    """The uninterrupted run (it also fills the compilation cache the other children load)."""
    out = tmp_path_factory.mktemp("ref") / "run"
    done = run_child(out, out.parent / "trace.jsonl", "none", 0, cache_dir=cache)
    assert done.returncode == 0, done.stderr
    return out


def _kill_child(run_dir, trace, mode, n, fraction, cache):
    child = start_child(run_dir, trace, mode, n, fraction, cache_dir=cache)
    if mode == "steps":
        seen = 0
        for line in child.stdout:
            seen += line.startswith("take ")
            if seen >= n:
                child.send_signal(signal.SIGKILL)  # kill -9 from outside, mid-run
                break
    child.wait(timeout=120)
    err = child.stderr.read()
    assert child.returncode == -signal.SIGKILL, (mode, n, child.returncode, err)


@pytest.mark.parametrize("trial", range(len(TRIALS)))
def test_kill_9_then_resume_is_exact(trial, reference, cache, tmp_path, capsys):
    mode, n, fraction = TRIALS[trial]
    run_dir, trace1, trace2 = tmp_path / "run", tmp_path / "t1.jsonl", tmp_path / "t2.jsonl"
    _kill_child(run_dir, trace1, mode, n, fraction, cache)
    assert (run_dir / ".lock").exists()  # left behind by the dead process: taken over below

    code = resume_here(run_dir, trace2)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err

    assert history_without_time(run_dir / "history.csv") == \
        history_without_time(reference / "history.csv")
    assert_same_arrays(npz_arrays(run_dir / "params.npz"), npz_arrays(reference / "params.npz"))
    assert_same_arrays(final_checkpoint_arrays(run_dir), final_checkpoint_arrays(reference))
    m = metrics(run_dir)
    assert m["status"] == "completed" and m["steps"] == TOTAL_STEPS
    assert not (run_dir / ".lock").exists()

    # Steps the killed process ran after its last checkpoint are redone, not counted twice.
    resumed_from = m["resumed_from_step"]
    steps = [t for t in read_trace(trace1) if t["g"] < resumed_from] + read_trace(trace2)
    assert [t["g"] for t in steps] == list(range(TOTAL_STEPS))
    for epoch in range(TOTAL_STEPS // STEPS_PER_EPOCH):
        seen = [i for t in steps[epoch * STEPS_PER_EPOCH:(epoch + 1) * STEPS_PER_EPOCH]
                for i in t["idx"]]
        assert sorted(seen) == list(range(N_TRAIN)), f"epoch {epoch}"


def test_sigterm_checkpoints_exits_143_and_resumes_exactly(reference, cache, tmp_path, capsys):
    from sgdlab.engine.checkpoint import CheckpointStore
    run_dir = tmp_path / "run"
    child = start_child(run_dir, tmp_path / "t1.jsonl", "none", 0, cache_dir=cache)
    seen = 0
    for line in child.stdout:
        seen += line.startswith("take ")
        if seen == 12:
            child.send_signal(signal.SIGTERM)
            break
    _, err = child.communicate(timeout=120)
    assert child.returncode == 128 + signal.SIGTERM, err
    assert "interrupted by signal 15" in err and f"--resume {run_dir}" in err
    assert "Traceback" not in err
    m = metrics(run_dir)
    assert m["status"] == "interrupted" and 0 < m["steps"] < TOTAL_STEPS
    assert CheckpointStore(run_dir).latest().step == m["steps"]
    assert not (run_dir / ".lock").exists()  # a clean exit releases the lock

    assert resume_here(run_dir, tmp_path / "t2.jsonl") == 0, capsys.readouterr().err
    assert history_without_time(run_dir / "history.csv") == \
        history_without_time(reference / "history.csv")
    assert_same_arrays(final_checkpoint_arrays(run_dir), final_checkpoint_arrays(reference))
