"""A batch schedule over two real processes on 127.0.0.1: every phase's batch is shared
equally, and ``sgdlab train --resume`` from a checkpoint in a later phase (which relaunches two
processes) ends bit-identical to the uninterrupted two-process run."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import back_to_a_middle_checkpoint

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "reliability"))
from rel_helpers import assert_same_run, child_env, metrics  # noqa: E402

#: digits, 1,438 training rows: batch 16 to 704 examples (step 44), 32 to 2,014 (step 85, a
#: boundary inside epoch 1), then 64 to the end of epoch 2 (step 99); momentum, so the
#: optimiser state matters, and checkpoints every 10 steps.
JOB = ["--data", "digits", "--model", "softmax", "--optimizer", "momentum", "--lr", "0.1",
       "--batch-schedule", "16:0,32@0.15:700,64:2000", "--seed", "0", "--eval-every",
       "1 epoch", "--epochs", "2", "--chunk-steps", "5", "--checkpoint-every", "10 steps",
       "--keep-checkpoints", "100", "--quiet"]
STARTS = [0, 44, 85]
TOTAL = 99


def _cli(*args, cache):
    return subprocess.run([sys.executable, "-m", "sgdlab.cli.main", "train", *map(str, args)],
                          capture_output=True, text=True, timeout=240, env=child_env(cache))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax-cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("ref") / "run"
    done = _cli(*JOB, "--processes", "2", "--out", out, cache=cache)
    assert done.returncode == 0, done.stderr[-3000:]
    m = metrics(out)
    assert m["processes"] == 2 and m["steps"] == TOTAL and m["examples"] == 2 * 1438
    assert [p["start_step"] for p in m["batch_phases"]] == STARTS
    return out


def test_a_two_process_run_resumes_bit_identically_from_a_later_phase(reference, cache,
                                                                      tmp_path):
    # from the middle of the second phase (at 32), so the resumed run crosses the boundary
    # to 64 itself; checkpoints fall at chunk boundaries, which a phase boundary moves: the
    # middle one of those strictly inside the phase
    phase = 1
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    step = back_to_a_middle_checkpoint(run, (STARTS + [TOTAL])[phase + 1], after=STARTS[phase])
    done = _cli("--resume", run, "--quiet", cache=cache)  # relaunches two processes
    assert done.returncode == 0, done.stderr[-3000:]
    m = metrics(run)
    assert m["status"] == "completed" and m["processes"] == 2
    assert m["resumed_from_step"] == step
    assert_same_run(run, reference)
