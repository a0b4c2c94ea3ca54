"""Time to target counts training time only: evaluating ten times as often, on a validation
set made expensive on purpose, changes it by no more than timing noise.

The two schedules run interleaved (A B A B ...), with the same chunk length so that the only
difference is the evaluations, and "noise" is measured, not assumed: the spread of the repeats
of each schedule. Had evaluation been counted, the frequent schedule would add many times the
whole time to target (asserted too), far outside that spread.
"""

import math

import numpy as np

from sgdlab.data import Dataset, split
from sgdlab.engine import TrainConfig
from sgdlab.lab.measure import crossing
from sgdlab.lab.sweep import SweepConfig, run_sweep

TARGET = 0.93


def _one(train, val, every, seed):
    sweep = SweepConfig(batch_sizes=(256,), seeds=1, target=TARGET, budget="300 steps",
                        eval_every=every, probe=False, noise=False)
    result = run_sweep(train, sweep, TrainConfig(model="softmax", chunk_steps=6, seed=seed),
                       validation=val)
    return result.per_run[0], result.records[0]["history"]


def test_more_frequent_evaluation_does_not_change_time_to_target(digits_ds, compile_cache):
    parts = split(digits_ds, 0.2, 0.0, seed=0)
    v = parts.validation
    # 200 copies of the validation set: one evaluation costs far more than a training step.
    big_val = Dataset(np.tile(v.X, (200, 1)), np.tile(v.y, 200), v.task, v.classes,
                      v.feature_names, "validation x200")
    rare, freq, eval_before = [], [], []
    for seed in range(3):
        rare.append(_one(parts.train, big_val, "60 steps", seed)[0]["time_to_target"])
        run, history = _one(parts.train, big_val, "6 steps", seed)
        freq.append(run["time_to_target"])
        c = crossing(history, TARGET)
        eval_before.append(next(r for r in history if r["step"] >= c["step"])["eval_seconds"])
    assert all(math.isfinite(t) for t in rare + freq)

    m_rare, m_freq = float(np.median(rare)), float(np.median(freq))
    noise = max(math.log(max(ts) / min(ts)) for ts in (rare, freq))
    assert abs(math.log(m_freq / m_rare)) <= max(math.log(2.0), noise), (rare, freq)
    # What counting evaluation would have added: many times the time to target itself.
    assert float(np.median(eval_before)) > 3 * max(m_freq, m_rare), (eval_before, freq)
