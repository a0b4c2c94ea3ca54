"""Time to target counts training time only: evaluating ten times as often, on a validation
set made expensive on purpose, changes it far less than counting evaluation would.

The two schedules run interleaved (A B A B ...) with the same chunk length, so the only
difference is the evaluations. Their time is excluded from the clock, but they can still
perturb the machine between chunks (caches, thread pools, the OS scheduler on a busy machine),
which an honest training clock sees; so the bound is loose on purpose: the change must stay
within a factor 3, and on a log scale below half of what counting the evaluation time spent
before the crossing would have caused (that counterfactual is checked to be large).
"""

import math

import numpy as np

from sgdlab.data import Dataset, split
from sgdlab.engine import TrainConfig
from sgdlab.lab.measure import crossing
from sgdlab.lab.sweep import SweepConfig, run_sweep

TARGET = 0.93


def _one(train, val, every, seed):
    # A small fixed learning rate makes the target take ~850 steps (~0.1 s of training), long
    # enough that one scheduler time slice is not the whole measurement.
    sweep = SweepConfig(batch_sizes=(256,), seeds=1, target=TARGET, lr=0.03, lr_scaling="none",
                        budget="1500 steps", eval_every=every, probe=False, noise=False)
    result = run_sweep(train, sweep, TrainConfig(model="softmax", chunk_steps=6, seed=seed),
                       validation=val)
    return result.per_run[0], result.records[0]["history"]


def test_more_frequent_evaluation_does_not_change_time_to_target(digits_ds, compile_cache):
    parts = split(digits_ds, 0.2, 0.0, seed=0)
    v = parts.validation
    # 100 copies of the validation set: one evaluation costs far more than a training step.
    big_val = Dataset(np.tile(v.X, (100, 1)), np.tile(v.y, 100), v.task, v.classes,
                      v.feature_names, "validation x100")
    rare, freq, eval_before = [], [], []
    for seed in range(4):
        rare.append(_one(parts.train, big_val, "60 steps", seed)[0]["time_to_target"])
        run, history = _one(parts.train, big_val, "6 steps", seed)
        freq.append(run["time_to_target"])
        c = crossing(history, TARGET)
        eval_before.append(next(r for r in history if r["step"] >= c["step"])["eval_seconds"])
    assert all(math.isfinite(t) for t in rare + freq)

    m_rare, m_freq = float(np.median(rare)), float(np.median(freq))
    measured = abs(math.log(m_freq / m_rare))
    counted = math.log((m_freq + float(np.median(eval_before))) / m_rare)
    assert counted > math.log(4), (eval_before, freq)   # evaluation really is expensive
    assert measured < counted / 2, (rare, freq, eval_before)
    assert 1 / 3 < m_freq / m_rare < 3, (rare, freq)
