"""Time to target counts training time only: evaluating ten times as often changes nothing in
it, however expensive an evaluation is (the sweep replays each run's steps to the target with no
evaluation in between, and evaluation time is kept apart in the evaluated runs too).

Deterministic: a fake clock replaces ``time.perf_counter``; it moves only when the training
kernel runs (``DT`` per active step) or the validation set is evaluated (``EVAL`` per
evaluation). Both runs train the same steps in the same chunks (``chunk_steps=6``), so their
parameters and metrics agree at every step they both evaluate; only the evaluations differ.
"""

import math
import time

import pytest

from sgdlab.data import split
from sgdlab.engine import TrainConfig, cache
from sgdlab.engine.evaluate import Validator
from sgdlab.lab.measure import crossing
from sgdlab.lab.sweep import SweepConfig, run_sweep

TARGET = 0.93
DT = 2.0 ** -10   # fake seconds per training step (a power of 2: sums of it are exact)
EVAL = 0.5        # fake seconds per evaluation: ~500 training steps' worth


@pytest.fixture
def fake_clock(monkeypatch):
    now = [1000.0]
    counts = {"steps": 0, "evaluations": 0}
    original_build = cache.get_or_build

    def get_or_build(kind, key, build):
        program = original_build(kind, key, build)
        if kind != "chunk":
            return program

        def run(state, X, T, idx, w, n_active, lr):
            out = program(state, X, T, idx, w, n_active, lr)
            now[0] += DT * int(n_active)
            counts["steps"] += int(n_active)
            return out
        return run

    original_call = Validator.__call__

    def evaluate(self, params):
        now[0] += EVAL
        counts["evaluations"] += 1
        return original_call(self, params)

    monkeypatch.setattr(cache, "get_or_build", get_or_build)
    monkeypatch.setattr(Validator, "__call__", evaluate)
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])
    return counts


def _one(train, val, every):
    # A small fixed learning rate makes the target take ~850 steps.
    sweep = SweepConfig(batch_sizes=(256,), seeds=1, target=TARGET, lr=0.03, lr_scaling="none",
                        lr_search=False, confirm=False, budget="1500 steps",
                        eval_every=every, probe=False, noise=False, timing_rounds=1)
    result = run_sweep(train, sweep, TrainConfig(model="softmax", seed=0), validation=val)
    assert len(result.records) == len(result.runs) == 1
    return result.runs[0], result.records[0].history


def test_more_frequent_evaluation_does_not_change_time_to_target(digits_ds, fake_clock):
    parts = split(digits_ds, 0.2, 0.0, seed=0)
    rare_run, rare = _one(parts.train, parts.validation, "60 steps")
    rare_evals, steps = fake_clock["evaluations"], fake_clock["steps"]
    freq_run, freq = _one(parts.train, parts.validation, "6 steps")
    freq_evals = fake_clock["evaluations"] - rare_evals
    assert freq_evals > 8 * rare_evals > 8 * 10  # evaluation really was ten times as frequent
    assert 60 * 6 < steps < 2 * 1500  # the evaluated run, then its replay

    for history in (rare, freq):
        for i, row in enumerate(history):
            assert row["train_seconds"] == row["step"] * DT   # every step's time, nothing else
            assert row["eval_seconds"] == (i + 1) * EVAL      # every evaluation's, apart
            assert row["wall_seconds"] >= row["train_seconds"] + row["eval_seconds"]
    # the same training: equal rows wherever both evaluated (train_loss, a mean since the
    # previous row, differs by construction)
    at = {r["step"]: r for r in freq}
    assert all(r["step"] in at for r in rare)
    for r in rare:
        keys = ["train_seconds", "examples"] + [k for k in r if k.startswith("val_")]
        assert "val_accuracy" in keys
        for key in keys:
            assert r[key] == at[r["step"]][key] or (math.isnan(r[key]) and math.isnan(
                at[r["step"]][key])), (key, r, at[r["step"]])

    # time to target is the replay of the crossing's whole steps: steps times DT in both,
    # though the frequent run spent about ten times as long evaluating before it
    for run, history in ((rare_run, rare), (freq_run, freq)):
        c = crossing(history, TARGET)
        assert c["reached"] and run.time_to_target == math.ceil(c["step"] - 1e-9) * DT
    assert abs(freq_run.time_to_target - rare_run.time_to_target) <= 60 * DT
    assert freq[-1]["eval_seconds"] > 5 * rare[-1]["eval_seconds"] > \
        20 * freq_run.time_to_target
